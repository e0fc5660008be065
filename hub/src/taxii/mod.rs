//! TAXII 2.1 over HTTPS, for SIEMs and platforms that pull (Sentinel,
//! Splunk ES, QRadar, OpenCTI, MISP).
//!
//! The listener shares the gRPC side's TLS handling (`tls::accept_loop`:
//! handshakes off the accept loop, with a timeout) and serves HTTP/1.1 with
//! hyper. Callers authenticate with HTTP Basic API keys (`hub api-key add`)
//! or an enrolled agent's client certificate, before any body is read.
//! Everything they list passes `listing`, which asks the same TLP decision
//! as gRPC; an object outside the caller's entitlement answers exactly like
//! one that does not exist.
//!
//! Layout: one API root `/isac/`; collections `indicators`, `bulletins` and
//! one per sharing group of the caller. Paging uses hub sequence numbers
//! (`next`), and `date_added` is unique per statement, so `added_after`
//! paging is exact too.

pub use crate::app::api_key as keys;
mod listing;
mod log;
pub mod query;
mod write;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tonic::transport::server::Connected;

use crate::app::caller::{caller_for_api_key, caller_for_cert};
use crate::app::HubState;
use crate::cursor::Purpose;
use crate::error::http::{HttpError, REQUEST_ID_HEADER};
use crate::error::{ApiError, RequestId};
use crate::tls::PeerInfo;
use listing::{Collection, Entry, Page, Who};
use query::{accepts_taxii, format_timestamp_us, ObjectQuery, MEDIA_STIX, MEDIA_TAXII};

pub use listing::collection_id;

/// The one API root's path segment.
pub const API_ROOT: &str = "isac";
/// Largest request body accepted (writes); advertised as `max_content_length`.
pub const MAX_CONTENT_LENGTH: usize = 10 * 1024 * 1024;
/// Concurrent TAXII connections at most; more are closed before the
/// handshake (`tls::ConnLimits`, which also counts them against the
/// per-source cap shared with gRPC).
pub const MAX_CONNECTIONS: usize = 1024;
/// How long a POST body may take to arrive: a client trickling it (slow
/// loris) holds a connection and a buffer of up to [`MAX_CONTENT_LENGTH`]
/// bytes no longer than this. (Headers: hyper's header read timeout.)
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a key's `last_used_at` is written at most.
const TOUCH_EVERY_SECS: i64 = 60;

type Body = Full<Bytes>;

struct Taxii {
    hub: HubState,
    /// Last `last_used_at` written per API key, so polling is not a write.
    touched: Mutex<HashMap<String, i64>>,
    /// One write submission at a time per organisation: a client that
    /// re-sends while its first POST is still being stored (a retry after
    /// a lost response) then finds the first one recorded and publishes
    /// nothing twice.
    writing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Serves TAXII on `listener` until the hub shuts down.
pub async fn serve(listener: TcpListener, acceptor: Arc<openssl::ssl::SslAcceptor>, hub: HubState) {
    let mut stop = hub.shutdown.clone();
    let handshake_timeout = hub.config.handshake_timeout();
    let connections = hub.connections.clone();
    let taxii = Arc::new(Taxii {
        hub,
        touched: Mutex::new(HashMap::new()),
        writing: Mutex::new(HashMap::new()),
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let accept = tokio::spawn(crate::tls::accept_loop(
        listener,
        acceptor,
        crate::tls::AcceptOptions {
            listener: crate::tls::Listener::Taxii,
            handshake_timeout,
            // Idle connections are cut by hyper's header read timeout,
            // which also runs between requests.
            no_cert: None,
        },
        connections,
        tx,
        stop.clone(),
    ));
    loop {
        tokio::select! {
            conn = rx.recv() => match conn {
                Some(Ok(conn)) => {
                    tokio::spawn(serve_connection(taxii.clone(), conn, stop.clone()));
                }
                Some(Err(_)) => continue,
                None => break,
            },
            _ = stop.changed() => break,
        }
    }
    accept.abort();
}

async fn serve_connection(
    taxii: Arc<Taxii>,
    conn: crate::tls::TlsConn,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let peer = conn.connect_info();
    let t = taxii.clone();
    let service = hyper::service::service_fn(move |req| {
        let t = t.clone();
        let peer = peer.clone();
        async move { Ok::<_, Infallible>(handle(&t, &peer, req).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(conn), service);
    tokio::pin!(connection);
    tokio::select! {
        result = &mut connection => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "TAXII connection ended");
            }
        }
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
        }
    }
}

fn respond(status: StatusCode, body: &Value, headers: &[(&'static str, String)]) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(MEDIA_TAXII));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(*name, v);
        }
    }
    r
}

/// Why a request is answered with a TAXII error message (section 3.6.1).
/// `handle` renders it once, with the request id, through the one mapping
/// in `error::http`.
enum Failure {
    /// Decided here (unknown path, bad query, ...).
    Http(HttpError),
    /// From the hub's domain or its store.
    Api(ApiError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure::Api(e.into())
    }
}

/// What a route answers: a response, or an error still to be rendered.
type Reply = Result<Response<Body>, Failure>;

fn error(status: StatusCode, title: &str, description: &str) -> Failure {
    Failure::Http(HttpError::new(status, title, description))
}

/// The one place a TAXII error becomes a response.
fn render(failure: Failure, request_id: &RequestId) -> Response<Body> {
    let e = match failure {
        Failure::Http(e) => e,
        Failure::Api(e) => e.into_http(request_id),
    };
    let mut headers = Vec::new();
    if e.status == StatusCode::UNAUTHORIZED {
        headers.push((
            "www-authenticate",
            "Basic realm=\"isac-hub TAXII\", charset=\"UTF-8\"".to_owned(),
        ));
    }
    if let Some(secs) = e.retry_after_secs {
        headers.push(("retry-after", secs.to_string()));
    }
    respond(e.status, &e.taxii_body(request_id), &headers)
}

fn unauthorized() -> Failure {
    error(
        StatusCode::UNAUTHORIZED,
        "Authentication required",
        "Use HTTP Basic with an API key from the hub operator (`hub api-key add ORG_ID`), or your agent's client certificate.",
    )
}

fn not_found() -> Failure {
    error(
        StatusCode::NOT_FOUND,
        "Not found",
        "No such resource that you can see.",
    )
}

/// The caller behind Basic credentials: `Ok(None)` for refused
/// credentials (401), `Err` when the hub cannot tell (its store failed).
async fn caller_for_key(t: &Taxii, header: &HeaderValue) -> Result<Option<Who>, ApiError> {
    let Some((user, password)) = header.to_str().ok().and_then(keys::parse_basic) else {
        return Ok(None);
    };
    let Some(key) = caller_for_api_key(&t.hub, &user, &password).await? else {
        return Ok(None);
    };
    let now = t.hub.now();
    let due = {
        let mut touched = t.touched.lock().expect("touch lock");
        let last = touched.get(&key.username).copied().unwrap_or(i64::MIN);
        let due = now.saturating_sub(last) >= TOUCH_EVERY_SECS;
        if due {
            touched.insert(key.username.clone(), now);
        }
        due
    };
    if due {
        if let Err(e) = t.hub.store.touch_api_key(&key.username, now).await {
            tracing::warn!(error = %e, "TAXII: cannot record key use");
        }
    }
    Ok(Some(Who {
        caller: key.caller,
        person: key.person,
        can_write: key.can_write,
        principal: key.username,
    }))
}

/// Basic credentials when given (a wrong one is refused even if a client
/// certificate came too), else the client certificate. `Ok(None)`: refused
/// credentials (401); `Err`: the hub could not check them (503/500).
async fn authenticate(
    t: &Taxii,
    peer: &PeerInfo,
    req: &Request<Incoming>,
) -> Result<Option<Who>, ApiError> {
    if let Some(h) = req.headers().get(AUTHORIZATION) {
        return caller_for_key(t, h).await;
    }
    let Some(fingerprint) = peer.client_cert_sha256.as_deref() else {
        return Ok(None);
    };
    match caller_for_cert(&t.hub, fingerprint).await {
        Ok(caller) => Ok(Some(Who {
            principal: caller.agent_name.clone(),
            caller,
            person: None,
            can_write: false,
        })),
        Err(e @ (ApiError::Unauthenticated(_) | ApiError::PermissionDenied(_))) => {
            tracing::warn!(error = %e, "TAXII: refused client certificate");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn base_url(req: &Request<Incoming>, t: &Taxii) -> String {
    let sane = |h: &str| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    };
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| sane(h))
        .map(str::to_owned)
        .or_else(|| t.hub.config.taxii_listen.map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    format!("https://{host}")
}

/// One request: a fresh request id, in the log span of everything the
/// request logs and in the `X-Request-Id` header of its answer.
async fn handle(t: &Taxii, peer: &PeerInfo, req: Request<Incoming>) -> Response<Body> {
    use tracing::Instrument;
    let request_id = RequestId::new();
    let span = tracing::info_span!("taxii", request_id = %request_id);
    let mut response = match route(t, peer, req, &request_id)
        .instrument(span.clone())
        .await
    {
        Ok(r) => r,
        Err(failure) => span.in_scope(|| render(failure, &request_id)),
    };
    if let Ok(v) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}

async fn route(t: &Taxii, peer: &PeerInfo, req: Request<Incoming>, id: &RequestId) -> Reply {
    let Some(who) = authenticate(t, peer, &req).await? else {
        return Err(unauthorized());
    };
    // The log's tiles are for tlog tooling, which does not speak TAXII.
    if let Some(rest) = req.uri().path().strip_prefix("/log/") {
        if req.method() != Method::GET {
            return Err(method_not_allowed());
        }
        let rest = rest.to_owned();
        return log::resource(t, &rest).await;
    }
    let accept = req.headers().get(ACCEPT).and_then(|h| h.to_str().ok());
    if !accepts_taxii(accept) {
        return Err(error(
            StatusCode::NOT_ACCEPTABLE,
            "Not acceptable",
            "This server answers application/taxii+json;version=2.1 only.",
        ));
    }
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let q = match query::parse_query(req.uri().query()) {
        Ok(q) => q,
        Err(e) => return Err(error(StatusCode::BAD_REQUEST, "Bad query", &e.0)),
    };
    let method = req.method().clone();
    tracing::debug!(principal = %who.principal, org = %who.caller.org_id, %method, %path, "TAXII request");
    match (segments.as_slice(), &method) {
        (["taxii2"], &Method::GET) => Ok(discovery(&base_url(&req, t))),
        ([API_ROOT], &Method::GET) => Ok(api_root()),
        ([API_ROOT, "collections"], &Method::GET) => Ok(collections(&who)),
        ([API_ROOT, "collections", cid, rest @ ..], _) => {
            let Some(info) = listing::collections_for(&who)
                .into_iter()
                .find(|c| c.id == *cid)
            else {
                return Err(not_found());
            };
            match (rest, &method) {
                ([], &Method::GET) => Ok(respond(
                    StatusCode::OK,
                    &collection_json(&info, &who),
                    &[],
                )),
                (["objects"], &Method::GET) => objects(t, &who, &info.kind, &q, false).await,
                (["manifest"], &Method::GET) => objects(t, &who, &info.kind, &q, true).await,
                (["objects"], &Method::POST) => add_objects(t, &who, &info.kind, req, id).await,
                (["objects", oid], &Method::GET) => object(t, &who, &info.kind, oid, &q).await,
                (["objects", oid, "versions"], &Method::GET) => {
                    versions(t, &who, &info.kind, oid).await
                }
                (["objects", _], &Method::DELETE) => Err(error(
                    StatusCode::FORBIDDEN,
                    "Not allowed",
                    "Objects are retracted by their source through the member agent (`member-agent retract`).",
                )),
                _ if known(rest) => Err(method_not_allowed()),
                _ => Err(not_found()),
            }
        }
        ([API_ROOT, "status", sid], &Method::GET) => status(t, &who, sid).await,
        (["taxii2"] | [API_ROOT] | [API_ROOT, "collections"] | [API_ROOT, "status", _], _) => {
            Err(method_not_allowed())
        }
        _ => Err(not_found()),
    }
}

fn known(rest: &[&str]) -> bool {
    matches!(
        rest,
        [] | ["objects"] | ["manifest"] | ["objects", _] | ["objects", _, "versions"]
    )
}

fn method_not_allowed() -> Failure {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "This resource does not support that method.",
    )
}

fn discovery(base: &str) -> Response<Body> {
    let root = format!("{base}/{API_ROOT}/");
    respond(
        StatusCode::OK,
        &json!({
            "title": "ISAC hub",
            "description": "Signed software-supply-chain threat indicators of the ISAC's members, under TLP 2.0.",
            "default": root,
            "api_roots": [root],
        }),
        &[],
    )
}

fn api_root() -> Response<Body> {
    respond(
        StatusCode::OK,
        &json!({
            "title": "ISAC supply-chain indicators",
            "description": "Every object carries the id and digest of the signed envelope it came from (external reference `isac-envelope`); verify it with a member agent.",
            "versions": [MEDIA_TAXII],
            "max_content_length": MAX_CONTENT_LENGTH,
        }),
        &[],
    )
}

fn writable(kind: &Collection, who: &Who) -> bool {
    who.can_write
        && match kind {
            Collection::Indicators => true,
            Collection::Bulletins => who.caller.is_coordinator(),
            Collection::Group(_) => false,
        }
}

fn collection_json(info: &listing::CollectionInfo, who: &Who) -> Value {
    json!({
        "id": info.id,
        "title": info.title,
        "description": info.description,
        "can_read": true,
        "can_write": writable(&info.kind, who),
        "media_types": [MEDIA_STIX],
    })
}

/// POST objects: the member's submission, attested by the hub (`write`).
async fn add_objects(
    t: &Taxii,
    who: &Who,
    collection: &Collection,
    req: Request<Incoming>,
    request_id: &RequestId,
) -> Reply {
    use http_body_util::BodyExt;
    if !who.can_write {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Read-only key",
            "This API key may not write: ask the hub operator for one made with `hub api-key add ORG_ID --write`, or publish with your member agent (which signs with your own key).",
        ));
    }
    if !writable(collection, who) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Read-only collection",
            "Post indicators to the Indicators collection (coordinators may post reports to Bulletins).",
        ));
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .replace(' ', "")
        .to_ascii_lowercase();
    if !(content_type == "application/taxii+json;version=2.1"
        || content_type == "application/taxii+json")
    {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            "Send a TAXII envelope as application/taxii+json;version=2.1.",
        ));
    }
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too large",
            &format!("The body is larger than max_content_length ({MAX_CONTENT_LENGTH} bytes); send fewer objects per request."),
        )
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_CONTENT_LENGTH) {
        return Err(too_large());
    }
    let body = match tokio::time::timeout(
        BODY_TIMEOUT,
        http_body_util::Limited::new(req.into_body(), MAX_CONTENT_LENGTH).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => return Err(too_large()),
        Err(_) => {
            return Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "Too slow",
                &format!(
                    "The body did not arrive within {} s; send it in one go.",
                    BODY_TIMEOUT.as_secs()
                ),
            ))
        }
    };
    let envelope: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "Bad envelope",
                &format!("The body is not JSON: {e}"),
            ))
        }
    };
    let one_at_a_time = t
        .writing
        .lock()
        .expect("TAXII writers")
        .entry(who.caller.org_id.clone())
        .or_default()
        .clone();
    let (hub, who, collection, request_id) = (
        t.hub.clone(),
        who.clone(),
        collection.clone(),
        request_id.clone(),
    );
    // Its own task: a client that hangs up mid-way (then retries) does not
    // cancel a submission between storing its statements and recording
    // what they came from.
    let written = tokio::spawn(async move {
        let _turn = one_at_a_time.lock().await;
        write::add_objects(&hub, &who, &collection, &envelope, &request_id).await
    })
    .await
    .map_err(|e| ApiError::Internal(format!("TAXII write task: {e}")))?;
    match written {
        Ok(outcome) => {
            tracing::debug!(status = %outcome.status_id, "TAXII status saved");
            Ok(respond(StatusCode::ACCEPTED, &outcome.body, &[]))
        }
        Err(write::Refused::BadRequest(m)) => {
            Err(error(StatusCode::BAD_REQUEST, "Bad envelope", &m))
        }
        Err(write::Refused::Forbidden(m)) => Err(error(StatusCode::FORBIDDEN, "Not allowed", &m)),
        Err(write::Refused::Unsafe(m)) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not safe to share",
            &m,
        )),
        Err(write::Refused::Failed(e)) => Err(e.into()),
    }
}

async fn status(t: &Taxii, who: &Who, id: &str) -> Reply {
    let Some(body) = t.hub.store.taxii_status(id, &who.caller.org_id).await? else {
        return Err(not_found());
    };
    let v = serde_json::from_str::<Value>(&body)
        .map_err(|e| ApiError::Internal(format!("stored TAXII status {id} unreadable: {e}")))?;
    Ok(respond(StatusCode::OK, &v, &[]))
}

fn collections(who: &Who) -> Response<Body> {
    let list: Vec<Value> = listing::collections_for(who)
        .iter()
        .map(|c| collection_json(c, who))
        .collect();
    respond(StatusCode::OK, &json!({ "collections": list }), &[])
}

fn date_headers(entries: &[Entry]) -> Vec<(&'static str, String)> {
    match (entries.first(), entries.last()) {
        (Some(first), Some(last)) => vec![
            (
                "x-taxii-date-added-first",
                format_timestamp_us(first.added_us),
            ),
            (
                "x-taxii-date-added-last",
                format_timestamp_us(last.added_us),
            ),
        ],
        _ => Vec::new(),
    }
}

fn envelope(t: &Taxii, who: &Who, page: &Page, manifest: bool) -> Value {
    let objects: Vec<Value> = if manifest {
        page.entries
            .iter()
            .map(|e| {
                json!({
                    "id": e.id(),
                    "date_added": format_timestamp_us(e.added_us),
                    "version": e.modified(),
                    "media_type": MEDIA_STIX,
                })
            })
            .collect()
    } else {
        page.entries.iter().map(|e| e.object.clone()).collect()
    };
    let mut body = json!({ "more": page.more });
    if !objects.is_empty() {
        body["objects"] = Value::Array(objects);
    }
    if let Some(next) = page.next.filter(|_| page.more) {
        // Sealed: a client must not read how many objects it was not shown.
        let token = t
            .hub
            .material
            .cursors
            .seal_text(Purpose::TaxiiNext, &who.caller.org_id, next);
        body["next"] = json!(token);
    }
    body
}

async fn objects(
    t: &Taxii,
    who: &Who,
    collection: &Collection,
    q: &ObjectQuery,
    manifest: bool,
) -> Reply {
    let mut q = q.clone();
    if let Some(token) = &q.next_token {
        let opened =
            t.hub
                .material
                .cursors
                .open_text(Purpose::TaxiiNext, &who.caller.org_id, token);
        match opened {
            Ok(next) if next <= t.hub.store.head() => q.next = Some(next),
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "Bad next token",
                    "next is not a token this server issued; start again without it.",
                ))
            }
        }
    }
    let page = listing::list(&t.hub.store, who, collection, &q).await?;
    Ok(respond(
        StatusCode::OK,
        &envelope(t, who, &page, manifest),
        &date_headers(&page.entries),
    ))
}

async fn object(
    t: &Taxii,
    who: &Who,
    collection: &Collection,
    object_id: &str,
    q: &ObjectQuery,
) -> Reply {
    let versions = listing::versions_of_object(&t.hub.store, who, collection, object_id).await?;
    if versions.is_empty() {
        return Err(not_found());
    }
    let entries: Vec<Entry> = listing::pick_versions(versions, &q.versions)
        .into_iter()
        .filter(|e| {
            q.spec_2_1
                && (q.types.is_empty()
                    || q.types
                        .iter()
                        .any(|ty| e.id().starts_with(&format!("{ty}--"))))
        })
        .collect();
    let page = Page {
        entries,
        more: false,
        next: None,
    };
    Ok(respond(
        StatusCode::OK,
        &envelope(t, who, &page, false),
        &date_headers(&page.entries),
    ))
}

async fn versions(t: &Taxii, who: &Who, collection: &Collection, object_id: &str) -> Reply {
    let versions = listing::versions_of_object(&t.hub.store, who, collection, object_id).await?;
    if versions.is_empty() {
        return Err(not_found());
    }
    let mut list: Vec<String> = versions.iter().map(|e| e.modified().to_owned()).collect();
    list.dedup();
    Ok(respond(
        StatusCode::OK,
        &json!({ "more": false, "versions": list }),
        &date_headers(&versions),
    ))
}
