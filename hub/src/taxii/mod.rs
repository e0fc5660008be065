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
/// How often a key's `last_used_at` is written at most.
const TOUCH_EVERY_SECS: i64 = 60;

type Body = Full<Bytes>;

struct Taxii {
    hub: HubState,
    /// Last `last_used_at` written per API key, so polling is not a write.
    touched: Mutex<HashMap<String, i64>>,
}

/// Serves TAXII on `listener` until the hub shuts down.
pub async fn serve(listener: TcpListener, acceptor: Arc<openssl::ssl::SslAcceptor>, hub: HubState) {
    let mut stop = hub.shutdown.clone();
    let handshake_timeout = hub.config.handshake_timeout();
    let connections = hub.connections.clone();
    let taxii = Arc::new(Taxii {
        hub,
        touched: Mutex::new(HashMap::new()),
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

/// A TAXII error message (section 3.6.1).
fn error(status: StatusCode, title: &str, description: &str) -> Response<Body> {
    respond(
        status,
        &json!({
            "title": title,
            "description": description,
            "http_status": status.as_u16().to_string(),
        }),
        &[],
    )
}

fn unauthorized() -> Response<Body> {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "Authentication required",
        "Use HTTP Basic with an API key from the hub operator (`hub api-key add ORG_ID`), or your agent's client certificate.",
    );
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Basic realm=\"isac-hub TAXII\", charset=\"UTF-8\""),
    );
    r
}

fn not_found() -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        "Not found",
        "No such resource that you can see.",
    )
}

fn internal(e: impl std::fmt::Display) -> Response<Body> {
    tracing::error!(error = %e, "TAXII request failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal error",
        "The hub could not answer; try again, and tell the operator if it persists.",
    )
}

async fn caller_for_key(t: &Taxii, header: &HeaderValue) -> Option<Who> {
    let (user, password) = keys::parse_basic(header.to_str().ok()?)?;
    let key = caller_for_api_key(&t.hub, &user, &password).await?;
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
    Some(Who {
        caller: key.caller,
        person: key.person,
        can_write: key.can_write,
        principal: key.username,
    })
}

/// Basic credentials when given (a wrong one is refused even if a client
/// certificate came too), else the client certificate.
async fn authenticate(t: &Taxii, peer: &PeerInfo, req: &Request<Incoming>) -> Option<Who> {
    if let Some(h) = req.headers().get(AUTHORIZATION) {
        return caller_for_key(t, h).await;
    }
    let fingerprint = peer.client_cert_sha256.as_deref()?;
    match caller_for_cert(&t.hub, fingerprint).await {
        Ok(caller) => Some(Who {
            principal: caller.agent_name.clone(),
            caller,
            person: None,
            can_write: false,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "TAXII: refused client certificate");
            None
        }
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

async fn handle(t: &Taxii, peer: &PeerInfo, req: Request<Incoming>) -> Response<Body> {
    let Some(who) = authenticate(t, peer, &req).await else {
        return unauthorized();
    };
    let accept = req.headers().get(ACCEPT).and_then(|h| h.to_str().ok());
    if !accepts_taxii(accept) {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "Not acceptable",
            "This server answers application/taxii+json;version=2.1 only.",
        );
    }
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let q = match query::parse_query(req.uri().query()) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, "Bad query", &e.0),
    };
    let method = req.method().clone();
    tracing::debug!(principal = %who.principal, org = %who.caller.org_id, %method, %path, "TAXII request");
    match (segments.as_slice(), &method) {
        (["taxii2"], &Method::GET) => discovery(&base_url(&req, t)),
        ([API_ROOT], &Method::GET) => api_root(),
        ([API_ROOT, "collections"], &Method::GET) => collections(&who),
        ([API_ROOT, "collections", cid, rest @ ..], _) => {
            let Some(info) = listing::collections_for(&who)
                .into_iter()
                .find(|c| c.id == *cid)
            else {
                return not_found();
            };
            match (rest, &method) {
                ([], &Method::GET) => respond(StatusCode::OK, &collection_json(&info, &who), &[]),
                (["objects"], &Method::GET) => objects(t, &who, &info.kind, &q, false).await,
                (["manifest"], &Method::GET) => objects(t, &who, &info.kind, &q, true).await,
                (["objects"], &Method::POST) => add_objects(t, &who, &info.kind, req).await,
                (["objects", oid], &Method::GET) => object(t, &who, &info.kind, oid, &q).await,
                (["objects", oid, "versions"], &Method::GET) => {
                    versions(t, &who, &info.kind, oid).await
                }
                (["objects", _], &Method::DELETE) => error(
                    StatusCode::FORBIDDEN,
                    "Not allowed",
                    "Objects are retracted by their source through the member agent (`member-agent retract`).",
                ),
                _ if known(rest) => method_not_allowed(),
                _ => not_found(),
            }
        }
        ([API_ROOT, "status", sid], &Method::GET) => status(t, &who, sid).await,
        (["taxii2"] | [API_ROOT] | [API_ROOT, "collections"] | [API_ROOT, "status", _], _) => {
            method_not_allowed()
        }
        _ => not_found(),
    }
}

fn known(rest: &[&str]) -> bool {
    matches!(
        rest,
        [] | ["objects"] | ["manifest"] | ["objects", _] | ["objects", _, "versions"]
    )
}

fn method_not_allowed() -> Response<Body> {
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
) -> Response<Body> {
    use http_body_util::BodyExt;
    if !who.can_write {
        return error(
            StatusCode::FORBIDDEN,
            "Read-only key",
            "This API key may not write: ask the hub operator for one made with `hub api-key add ORG_ID --write`, or publish with your member agent (which signs with your own key).",
        );
    }
    if !writable(collection, who) {
        return error(
            StatusCode::FORBIDDEN,
            "Read-only collection",
            "Post indicators to the Indicators collection (coordinators may post reports to Bulletins).",
        );
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
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            "Send a TAXII envelope as application/taxii+json;version=2.1.",
        );
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
        return too_large();
    }
    let body = match http_body_util::Limited::new(req.into_body(), MAX_CONTENT_LENGTH)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return too_large(),
    };
    let envelope: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Bad envelope",
                &format!("The body is not JSON: {e}"),
            )
        }
    };
    match write::add_objects(&t.hub, who, collection, &envelope).await {
        Ok(outcome) => {
            tracing::debug!(status = %outcome.status_id, "TAXII status saved");
            respond(StatusCode::ACCEPTED, &outcome.body, &[])
        }
        Err(write::Refused::BadRequest(m)) => error(StatusCode::BAD_REQUEST, "Bad envelope", &m),
        Err(write::Refused::Forbidden(m)) => error(StatusCode::FORBIDDEN, "Not allowed", &m),
    }
}

async fn status(t: &Taxii, who: &Who, id: &str) -> Response<Body> {
    match t.hub.store.taxii_status(id, &who.caller.org_id).await {
        Ok(Some(body)) => match serde_json::from_str::<Value>(&body) {
            Ok(v) => respond(StatusCode::OK, &v, &[]),
            Err(e) => internal(e),
        },
        Ok(None) => not_found(),
        Err(e) => internal(e),
    }
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
) -> Response<Body> {
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
                return error(
                    StatusCode::BAD_REQUEST,
                    "Bad next token",
                    "next is not a token this server issued; start again without it.",
                )
            }
        }
    }
    match listing::list(&t.hub.store, who, collection, &q).await {
        Ok(page) => respond(
            StatusCode::OK,
            &envelope(t, who, &page, manifest),
            &date_headers(&page.entries),
        ),
        Err(e) => internal(e),
    }
}

async fn object(
    t: &Taxii,
    who: &Who,
    collection: &Collection,
    object_id: &str,
    q: &ObjectQuery,
) -> Response<Body> {
    let versions = match listing::versions_of_object(&t.hub.store, who, collection, object_id).await
    {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    if versions.is_empty() {
        return not_found();
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
    respond(
        StatusCode::OK,
        &envelope(t, who, &page, false),
        &date_headers(&page.entries),
    )
}

async fn versions(
    t: &Taxii,
    who: &Who,
    collection: &Collection,
    object_id: &str,
) -> Response<Body> {
    let versions = match listing::versions_of_object(&t.hub.store, who, collection, object_id).await
    {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    if versions.is_empty() {
        return not_found();
    }
    let mut list: Vec<String> = versions.iter().map(|e| e.modified().to_owned()).collect();
    list.dedup();
    respond(
        StatusCode::OK,
        &json!({ "more": false, "versions": list }),
        &date_headers(&versions),
    )
}
