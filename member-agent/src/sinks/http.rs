//! HTTP sinks: a generic webhook (JSON POST per item, HMAC-SHA256 signature
//! header), Splunk HTTP Event Collector (several events per POST), and
//! Elasticsearch/OpenSearch `_bulk` (one request per batch) with Elastic
//! Common Schema `threat.indicator.*` fields.
//!
//! Requests go through hyper's HTTP/1.1 client (every response framing
//! decoded: `Content-Length`, chunked, close-delimited), over OpenSSL for
//! https. Each sink has one [`SinkClient`]: its `SslConnector` is built
//! once, and one connection is kept alive between requests.
//!
//! Items are sent before they are committed. While a receiver is down (a
//! network error, an answer cut short, 5xx, 408 or 429, an Elasticsearch
//! item answering 429 or 5xx, a `_bulk` answer we cannot read, a Splunk HEC
//! "busy" or "unhealthy" code) the request is retried with exponential
//! backoff; once the retry budget is spent the write fails, the item is not
//! committed, the cursor holds, and the item comes again later (nothing
//! lost). An answer that rejects the item for good (any other 4xx, an
//! Elasticsearch item error such as a mapping conflict, another Splunk HEC
//! error code) is a rejection: the caller dead-letters the item or, without
//! a dead-letter file, fails. Each request carries a stable delivery id
//! (`X-ISAC-Delivery`, the Elasticsearch `_id`) so a receiver can drop the
//! rare repeat.

use std::net::Ipv6Addr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use serde_json::{json, Value};
use tokio::net::TcpStream;

use super::{delivery_id, Rejection, Sent, Sink};
use crate::error::AgentError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// A name or an IP address; an IPv6 literal without its brackets.
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl std::str::FromStr for Url {
    type Err = AgentError;
    fn from_str(s: &str) -> Result<Self, AgentError> {
        let bad = || AgentError::Usage(format!("`{s}` is not an http(s)://HOST[:PORT]/PATH URL"));
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // `[v6 address]:port`, or `host:port`.
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or_else(bad)?;
            h.parse::<Ipv6Addr>().map_err(|_| bad())?;
            match after {
                "" => (h, None),
                p => (h, Some(p.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if https => 443,
            None => 80,
        };
        let bracketed = authority.starts_with('[');
        if host.is_empty()
            || (!bracketed && host.contains(':'))
            || host.contains(|c: char| c.is_whitespace() || c.is_control() || "@[]/".contains(c))
            || path.contains(|c: char| c.is_whitespace() || c.is_control())
            || path.parse::<hyper::Uri>().is_err()
        {
            return Err(bad());
        }
        Ok(Url {
            https,
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

impl Url {
    /// The host as written in a URL: an IPv6 literal in brackets.
    fn host_in_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// The `Host` header: the host, and the port unless it is the
    /// scheme's default.
    pub fn authority(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            self.host_in_url()
        } else {
            format!("{}:{}", self.host_in_url(), self.port)
        }
    }

    /// Host, port and path, for logs, the status page and the dead-letter
    /// file (the URL holds no secret).
    pub fn location(&self) -> String {
        format!("{}:{}{}", self.host_in_url(), self.port, self.path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpSink {
    Webhook {
        url: Url,
        secret: String,
    },
    SplunkHec {
        url: Url,
        token: String,
        index: Option<String>,
        sourcetype: String,
    },
    Elastic {
        url: Url,
        index: String,
    },
}

/// How long and how fast a receiver that is down is retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub first: Duration,
    pub max: Duration,
    /// Stop retrying (and fail the write) once this much time has passed.
    pub give_up_after: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            first: Duration::from_millis(200),
            max: Duration::from_secs(30),
            give_up_after: Duration::from_secs(60),
        }
    }
}

impl Retry {
    /// One attempt only.
    pub fn none() -> Self {
        Retry {
            give_up_after: Duration::ZERO,
            ..Retry::default()
        }
    }
}

/// What one attempt amounted to.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Done; these lines (by index) were rejected for good: (index, status, answer).
    Done(Vec<(usize, u16, String)>),
    /// Try again later.
    Transient(String),
}

/// An answer excerpt fit for a log line or the dead-letter file.
fn excerpt(body: &str) -> String {
    let t: String = body.chars().take(500).collect();
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A receiver's answer: status code, status line (`503 Service
/// Unavailable`) and the whole decoded body.
struct Answer {
    code: u16,
    status_line: String,
    body: String,
}

/// The most of an answer we read; a longer one is an error (retried).
const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// Connecting (TCP, TLS, HTTP handshake) gives up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One whole exchange (connect, request, the answer's last byte).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// A kept-alive connection idle longer than this is not reused: receivers
/// close idle connections, and a request racing that close is wasted.
const MAX_IDLE: Duration = Duration::from_secs(20);

type Sender = http1::SendRequest<Full<Bytes>>;

/// One receiver's HTTP client: the TLS settings built once, and the one
/// connection kept alive between requests (sinks send one request at a
/// time).
pub struct HttpClient {
    url: Url,
    tls: Option<SslConnector>,
    idle: Mutex<Option<(Sender, Instant)>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("url", &self.url.location())
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client for the receiver at `url` (its scheme, host and port;
    /// requests name their path), trusting the system roots and `extra_ca`.
    pub fn new(url: &Url, extra_ca: Option<&X509>) -> Result<Self, AgentError> {
        let tls = if url.https {
            let mut b = SslConnector::builder(SslMethod::tls_client())?;
            if let Some(ca) = extra_ca {
                b.cert_store_mut().add_cert(ca.clone())?;
            }
            b.set_verify(SslVerifyMode::PEER);
            b.set_alpn_protos(b"\x08http/1.1")?;
            Some(b.build())
        } else {
            None
        };
        Ok(HttpClient {
            url: url.clone(),
            tls,
            idle: Mutex::new(None),
        })
    }

    /// A new connection, ready for a request.
    async fn connect(&self) -> Result<Sender, String> {
        let connecting = async {
            let tcp = TcpStream::connect((self.url.host.as_str(), self.url.port))
                .await
                .map_err(|e| e.to_string())?;
            let _ = tcp.set_nodelay(true);
            // Each connection runs in its own task, which ends when the
            // sender is dropped or the receiver closes; nothing waits for it.
            let sender = match &self.tls {
                None => {
                    let (sender, conn) = http1::handshake(TokioIo::new(tcp))
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::spawn(conn);
                    sender
                }
                Some(tls) => {
                    // An IP address is checked against the certificate's
                    // IP names (and sent without SNI); a name, its DNS names.
                    let ssl = tls
                        .configure()
                        .and_then(|c| c.into_ssl(&self.url.host))
                        .map_err(|e| format!("TLS: {e}"))?;
                    let mut stream =
                        tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| format!("TLS: {e}"))?;
                    std::pin::Pin::new(&mut stream)
                        .connect()
                        .await
                        .map_err(|e| format!("TLS: {e}"))?;
                    let (sender, conn) = http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::spawn(conn);
                    sender
                }
            };
            Ok::<_, String>(sender)
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| "connect timed out".to_owned())?
    }

    /// The kept-alive connection, if it is still worth using.
    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        match idle.take() {
            Some((s, since)) if !s.is_closed() && since.elapsed() < MAX_IDLE => Some(s),
            _ => None,
        }
    }

    fn request(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &Bytes,
    ) -> Result<hyper::Request<Full<Bytes>>, String> {
        let mut req = hyper::Request::post(path)
            .header(hyper::header::HOST, self.url.authority())
            .header(hyper::header::CONTENT_LENGTH, body.len())
            .header(hyper::header::USER_AGENT, "isac-member-agent")
            .body(Full::new(body.clone()))
            .map_err(|e| format!("bad request: {e}"))?;
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("{k}: {e}"))?;
            let value = HeaderValue::from_str(v).map_err(|e| format!("{k}: {e}"))?;
            req.headers_mut().insert(name, value);
        }
        Ok(req)
    }

    /// Sends the request on `sender` once it is ready; the answer's head.
    async fn send_on(
        &self,
        sender: &mut Sender,
        path: &str,
        headers: &[(&str, String)],
        body: &Bytes,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        tokio::time::timeout(CONNECT_TIMEOUT, sender.ready())
            .await
            .map_err(|_| "connection not ready".to_owned())?
            .map_err(|e| e.to_string())?;
        sender
            .send_request(self.request(path, headers, body)?)
            .await
            .map_err(|e| e.to_string())
    }

    /// One POST to `path`: the status and the whole decoded answer. An
    /// error means no whole answer (refused, timed out, cut short).
    async fn exchange(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &Bytes,
    ) -> Result<Answer, String> {
        let exchange = async {
            // A kept-alive connection the receiver closed before answering
            // (likely while it was idle) gets the request once more on a
            // new one; deliveries are idempotent.
            let reused = match self.take_idle() {
                Some(mut sender) => match self.send_on(&mut sender, path, headers, body).await {
                    Ok(response) => Some((sender, response)),
                    Err(e) => {
                        tracing::debug!(url = %self.url.location(), error = %e, "kept-alive connection closed; reconnecting");
                        None
                    }
                },
                None => None,
            };
            let (sender, response) = match reused {
                Some(r) => r,
                None => {
                    let mut sender = self.connect().await?;
                    let response = self.send_on(&mut sender, path, headers, body).await?;
                    (sender, response)
                }
            };
            let code = response.status().as_u16();
            let reason = response
                .extensions()
                .get::<hyper::ext::ReasonPhrase>()
                .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
                .or_else(|| response.status().canonical_reason().map(str::to_owned))
                .unwrap_or_default();
            let status_line = format!("{code} {reason}").trim_end().to_owned();
            let answer = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("answered {status_line}, then the answer broke off: {e}"))?
                .to_bytes();
            // Kept for the next request unless the receiver closes it.
            if !sender.is_closed() {
                *self.idle.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((sender, Instant::now()));
            }
            Ok(Answer {
                code,
                status_line,
                body: String::from_utf8_lossy(&answer).into_owned(),
            })
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| "timed out".to_owned())?
    }
}

/// The usual reading of an answer for a request carrying lines `0..n`:
/// 2xx delivered; 408, 429, 5xx and anything but 4xx transient; other 4xx
/// reject every line for good.
fn classify_plain(n: usize, code: u16, status_line: &str, answer: &str) -> Verdict {
    match code {
        200..=299 => Verdict::Done(Vec::new()),
        408 | 429 => Verdict::Transient(format!("receiver answered {status_line}")),
        400..=499 => reject_all(n, code, status_line, answer),
        _ => Verdict::Transient(format!("receiver answered {status_line}")),
    }
}

fn reject_all(n: usize, code: u16, status_line: &str, answer: &str) -> Verdict {
    Verdict::Done(
        (0..n)
            .map(|i| (i, code, format!("{status_line}: {}", excerpt(answer))))
            .collect(),
    )
}

/// An Elasticsearch `_bulk` answer (the decoded body) for `n` actions:
/// `errors: true` names failed items; 429 and 5xx items are retried (the
/// whole request: index by `_id` and delete are idempotent), a 404 on
/// delete is done, other failures reject that item for good. A 2xx answer
/// that is not a whole `_bulk` answer (unparseable, cut short, without one
/// result per action) proves nothing was indexed: retried.
fn classify_bulk(n: usize, code: u16, status_line: &str, answer: &str) -> Verdict {
    if !(200..300).contains(&code) {
        return classify_plain(n, code, status_line, answer);
    }
    let unreadable = || {
        Verdict::Transient(format!(
            "Elasticsearch answered {status_line} with no `_bulk` result for each of {n} action(s): {}",
            excerpt(answer)
        ))
    };
    let Ok(v) = serde_json::from_str::<Value>(answer) else {
        return unreadable();
    };
    let (Some(errors), Some(items)) = (v["errors"].as_bool(), v["items"].as_array()) else {
        return unreadable();
    };
    if items.len() != n {
        return unreadable();
    }
    if !errors {
        return Verdict::Done(Vec::new());
    }
    let mut rejected = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some((op, r)) = item.as_object().and_then(|o| o.iter().next()) else {
            return unreadable();
        };
        let Some(status) = r["status"].as_u64().and_then(|s| u16::try_from(s).ok()) else {
            return unreadable();
        };
        match status {
            200..=299 => {}
            404 if op == "delete" => {}
            400..=499 if status != 408 && status != 429 => {
                rejected.push((i, status, excerpt(&r["error"].to_string())))
            }
            _ => {
                return Verdict::Transient(format!(
                    "Elasticsearch answered {status} for item {i}: {}",
                    excerpt(&r["error"].to_string())
                ))
            }
        }
    }
    Verdict::Done(rejected)
}

/// A Splunk HEC answer (the decoded body) for `n` events. Not 2xx: as
/// usual (Splunk's "busy" comes as 503). A 2xx answer must say `code` 0;
/// 8 (internal error), 9 (busy) and 18-20 (unhealthy) are retried, any
/// other code rejects the request's events for good, and an answer
/// without a readable `code` is retried.
fn classify_hec(n: usize, code: u16, status_line: &str, answer: &str) -> Verdict {
    if !(200..300).contains(&code) {
        return classify_plain(n, code, status_line, answer);
    }
    let hec = serde_json::from_str::<Value>(answer).ok().and_then(|v| {
        let text = v["text"].as_str().unwrap_or_default().to_owned();
        Some((v["code"].as_u64()?, text))
    });
    match hec {
        Some((0, _)) => Verdict::Done(Vec::new()),
        Some((8 | 9 | 18..=20, text)) => {
            Verdict::Transient(format!("Splunk HEC answered {status_line}: {text}"))
        }
        Some(_) => reject_all(n, code, status_line, answer),
        None => Verdict::Transient(format!(
            "Splunk HEC answered {status_line} without a status code: {}",
            excerpt(answer)
        )),
    }
}

/// Posts until the answer is final or the retry budget is spent.
async fn post_with_retry(
    client: &HttpClient,
    path: &str,
    headers: &[(&str, String)],
    body: Bytes,
    opts: &HttpOptions,
    n: usize,
    classify: fn(usize, u16, &str, &str) -> Verdict,
) -> Result<Vec<(usize, u16, String)>, AgentError> {
    let where_ = || format!("{}:{}{}", client.url.host_in_url(), client.url.port, path);
    let start = tokio::time::Instant::now();
    let mut delay = opts.retry.first;
    loop {
        let verdict = match client.exchange(path, headers, &body).await {
            Err(e) => Verdict::Transient(e),
            Ok(a) => classify(n, a.code, &a.status_line, &a.body),
        };
        match verdict {
            Verdict::Done(rejected) => return Ok(rejected),
            Verdict::Transient(m) => {
                if start.elapsed() + delay > opts.retry.give_up_after {
                    return Err(AgentError::Invalid(format!("POST {}: {m}", where_())));
                }
                tracing::warn!(url = %where_(), error = %m, retry_in_ms = delay.as_millis() as u64, "receiver unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(opts.retry.max);
            }
        }
    }
}

/// Settings shared by the HTTP sinks.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Extra CA trusted for https receivers.
    pub ca: Option<X509>,
    pub retry: Retry,
    /// Most events in one Splunk HEC request.
    pub hec_batch: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            ca: None,
            retry: Retry::default(),
            hec_batch: 100,
        }
    }
}

fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> Result<String, AgentError> {
    let key = openssl::pkey::PKey::hmac(secret)?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
    signer.update(body)?;
    Ok(isac_core::hex::encode(&signer.sign_to_vec()?))
}

/// ECS `threat.indicator.*` for one JSONL line of ours.
pub fn ecs_document(line: &Value) -> Value {
    let obs = &line["statement"]["body"]["observable"];
    let kind = line["kind"].as_str().unwrap_or_default();
    let mut indicator = json!({
        "description": line["title"],
        "provider": line["source_name"],
        "confidence": match line["statement"]["body"]["confidence"].as_u64().unwrap_or(0) { 0..=33 => "Low", 34..=66 => "Medium", _ => "High" },
        "marking": { "tlp": line["tlp"].as_str().unwrap_or_default().to_uppercase() },
        "first_seen": line["created"],
        "reference": line["statement"]["body"]["references"].get(0).cloned().unwrap_or(Value::Null),
    });
    let ty = match kind {
        "artifact" => {
            indicator["file"] = json!({"hash": {"sha256": obs["sha256"], "sha512": obs["sha512"]}, "name": obs["filename"]});
            "file"
        }
        "network" if !obs["domain"].is_null() => {
            indicator["url"] = json!({"domain": obs["domain"]});
            "domain-name"
        }
        "network" if !obs["ip"].is_null() => {
            indicator["ip"] = obs["ip"].clone();
            if obs["ip"].as_str().unwrap_or_default().contains(':') {
                "ipv6-addr"
            } else {
                "ipv4-addr"
            }
        }
        "network" => {
            indicator["url"] = json!({"full": obs["url"]});
            "url"
        }
        "package" | "vulnerability" => {
            indicator["software"] = json!({"purl": obs["purl"]});
            "software"
        }
        "repository" => {
            indicator["url"] = json!({"full": obs["url"]});
            "url"
        }
        "account" => "user-account",
        _ => "unknown",
    };
    indicator["type"] = json!(ty);
    json!({
        "@timestamp": line["received_at"],
        "event": {"kind": "enrichment", "category": ["threat"], "type": ["indicator"], "dataset": "isac.indicator", "id": line["id"]},
        "threat": {"indicator": indicator, "feed": {"name": "isac-hub"}},
        "tags": line["statement"]["body"]["tags"],
        "isac": {"id": line["id"], "revision": line["revision"], "kind": kind, "value": line["value"], "envelope_digest": line["envelope_digest"], "signature": line["signature"]},
    })
}

/// An ECS document for an `exposure.new` record: the indicator as
/// `threat.indicator.*` (its purl as `software`), what it was found in as
/// `package.*` and `isac.exposure.*`; one document per exposure while it
/// lasts (`exposure.cleared` deletes it).
pub fn ecs_exposure_document(line: &Value) -> Value {
    let i = &line["indicator"];
    json!({
        "@timestamp": line["at"],
        "event": {"kind": "alert", "category": ["threat", "package"], "type": ["indicator"], "dataset": "isac.exposure", "id": line["id"], "action": line["action"], "reason": line["why"], "start": line["since"]},
        "threat": {
            "indicator": {
                "type": "software",
                "description": i["title"],
                "provider": i["source"],
                "marking": {"tlp": line["tlp"].as_str().unwrap_or_default().to_uppercase()},
                "software": {"purl": i["value"]},
            },
            "feed": {"name": "isac-hub"},
        },
        "package": {"name": line["component"], "version": line["version"]},
        "service": {"name": line["application"]},
        "isac": {"id": i["id"], "revision": i["revision"], "severity": i["severity"], "exposure": {"application": line["application"], "component": line["component"], "component_ref": line["component_ref"], "path": line["path"], "certain": line["certain"], "event": line["event"]}},
    })
}

impl HttpSink {
    /// As the dead-letter file names it.
    fn name(&self) -> &'static str {
        match self {
            HttpSink::Webhook { .. } => "webhook",
            HttpSink::SplunkHec { .. } => "splunk-hec",
            HttpSink::Elastic { .. } => "elastic",
        }
    }

    pub fn url(&self) -> &Url {
        match self {
            HttpSink::Webhook { url, .. }
            | HttpSink::SplunkHec { url, .. }
            | HttpSink::Elastic { url, .. } => url,
        }
    }

    /// This sink with its client (TLS settings built here, once; one
    /// connection kept alive), trusting the system roots and `extra_ca`.
    pub fn client(&self, extra_ca: Option<&X509>) -> Result<SinkClient, AgentError> {
        Ok(SinkClient {
            http: HttpClient::new(self.url(), extra_ca)?,
            sink: self.clone(),
        })
    }
}

/// An HTTP sink and its client, kept while the sink is in use.
#[derive(Debug)]
pub struct SinkClient {
    sink: HttpSink,
    http: HttpClient,
}

impl SinkClient {
    pub fn sink(&self) -> &HttpSink {
        &self.sink
    }

    /// Delivers `lines` (our JSON Lines records: upsert, retract or expire),
    /// retrying while the receiver is down. Returns the lines it rejected
    /// for good; an error when the retry budget ran out. (The CA trusted is
    /// the one the client was made with, not `opts.ca`.)
    pub async fn deliver(
        &self,
        lines: &[Value],
        opts: &HttpOptions,
    ) -> Result<Vec<Rejection>, AgentError> {
        let client = &self.http;
        let mut rejected = Vec::new();
        let mut reject = |index: usize, status: u16, answer: String| {
            rejected.push(Rejection {
                sink: self.sink.name(),
                url: self.sink.url().location(),
                status,
                answer,
                delivery: delivery_id(&lines[index]),
                index,
            })
        };
        match &self.sink {
            HttpSink::Webhook { url, secret } => {
                for (i, line) in lines.iter().enumerate() {
                    let body =
                        serde_json::to_vec(line).map_err(|e| AgentError::Invalid(e.to_string()))?;
                    let sig = hmac_sha256_hex(secret.as_bytes(), &body)?;
                    let headers = [
                        ("Content-Type", "application/json".to_owned()),
                        ("X-ISAC-Signature", format!("sha256={sig}")),
                        ("X-ISAC-Delivery", delivery_id(line)),
                    ];
                    let body = Bytes::from(body);
                    for (_, status, answer) in
                        post_with_retry(client, &url.path, &headers, body, opts, 1, classify_plain)
                            .await?
                    {
                        reject(i, status, answer);
                    }
                }
            }
            HttpSink::SplunkHec {
                url,
                token,
                index,
                sourcetype,
            } => {
                // Several events per request, as HEC takes them: JSON
                // objects one after the other.
                let batch = opts.hec_batch.max(1);
                for (c, chunk) in lines.chunks(batch).enumerate() {
                    let mut body = Vec::new();
                    for line in chunk {
                        let mut event = json!({"event": line, "sourcetype": sourcetype, "source": "isac-member-agent"});
                        if let Some(i) = index {
                            event["index"] = json!(i);
                        }
                        if let Some(t) = line["received_at"]
                            .as_str()
                            .or_else(|| line["at"].as_str())
                            .and_then(|t| isac_core::time::parse_rfc3339(t).ok())
                        {
                            event["time"] = json!(t);
                        }
                        serde_json::to_writer(&mut body, &event)
                            .map_err(|e| AgentError::Invalid(e.to_string()))?;
                        body.push(b'\n');
                    }
                    let deliveries: Vec<String> = chunk.iter().map(delivery_id).collect();
                    let headers = [
                        ("Content-Type", "application/json".to_owned()),
                        ("Authorization", format!("Splunk {token}")),
                        (
                            "X-Splunk-Request-Channel",
                            "9f1b2a6e-4b1d-4f7e-9a53-1b2c3d4e5f60".to_owned(),
                        ),
                        ("X-ISAC-Delivery", deliveries.join(",")),
                    ];
                    for (i, status, answer) in post_with_retry(
                        client,
                        &url.path,
                        &headers,
                        Bytes::from(body),
                        opts,
                        chunk.len(),
                        classify_hec,
                    )
                    .await?
                    {
                        reject(c * batch + i, status, answer);
                    }
                }
            }
            HttpSink::Elastic { url, index } => {
                // One document per statement id: a new revision replaces the
                // old one; a retraction or expiry deletes it.
                let path = format!("{}/_bulk", url.path.trim_end_matches('/'));
                const BULK: usize = 500;
                for (c, chunk) in lines.chunks(BULK).enumerate() {
                    let mut body = String::new();
                    for line in chunk {
                        let id = line["id"].as_str().unwrap_or_default();
                        match line["action"].as_str() {
                            Some("retract") => {
                                let target = line["target"].as_str().unwrap_or_default();
                                body.push_str(&format!(
                                    "{}\n",
                                    json!({"delete": {"_index": index, "_id": target}})
                                ));
                            }
                            Some("expire" | "exposure.cleared") => body.push_str(&format!(
                                "{}\n",
                                json!({"delete": {"_index": index, "_id": id}})
                            )),
                            Some("exposure.new") => body.push_str(&format!(
                                "{}\n{}\n",
                                json!({"index": {"_index": index, "_id": id}}),
                                ecs_exposure_document(line)
                            )),
                            _ => body.push_str(&format!(
                                "{}\n{}\n",
                                json!({"index": {"_index": index, "_id": id}}),
                                ecs_document(line)
                            )),
                        }
                    }
                    let headers = [("Content-Type", "application/x-ndjson".to_owned())];
                    for (i, status, answer) in post_with_retry(
                        client,
                        &path,
                        &headers,
                        Bytes::from(body),
                        opts,
                        chunk.len(),
                        classify_bulk,
                    )
                    .await?
                    {
                        reject(c * BULK + i, status, answer);
                    }
                }
            }
        }
        Ok(rejected)
    }
}

/// An HTTP receiver as a sink: its client, made once, and the retry and
/// batch settings.
pub struct HttpReceiver {
    client: SinkClient,
    opts: HttpOptions,
}

impl HttpReceiver {
    /// The receiver `sink`, trusting the system roots and `opts.ca`.
    pub fn new(sink: &HttpSink, opts: HttpOptions) -> Result<Self, AgentError> {
        Ok(HttpReceiver {
            client: sink.client(opts.ca.as_ref())?,
            opts,
        })
    }
}

impl Sink for HttpReceiver {
    fn describe(&self) -> String {
        let what = match self.client.sink() {
            HttpSink::Webhook { .. } => "webhook",
            HttpSink::SplunkHec { .. } => "Splunk HEC",
            HttpSink::Elastic { .. } => "Elasticsearch",
        };
        // Host and path only: never a token or secret.
        format!("{what}: {}", self.client.sink().url().location())
    }

    fn send<'a>(&'a self, lines: &'a [Value]) -> Sent<'a> {
        Box::pin(self.client.deliver(lines, &self.opts))
    }

    /// Webhook and Splunk HEC: an `action: expire` event; Elasticsearch:
    /// the document is deleted.
    fn send_expired<'a>(&'a self, line: &'a Value) -> Sent<'a> {
        Box::pin(self.client.deliver(std::slice::from_ref(line), &self.opts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `_bulk` answer for `statuses` (index actions).
    fn bulk(statuses: &[u16]) -> String {
        let items: Vec<Value> = statuses
            .iter()
            .map(|s| match s {
                200..=299 => json!({"index": {"_id": "x", "status": s}}),
                429 => json!({"index": {"_id": "x", "status": s,
                    "error": {"type": "es_rejected_execution_exception"}}}),
                _ => json!({"index": {"_id": "x", "status": s,
                    "error": {"type": "mapper_parsing_exception"}}}),
            })
            .collect();
        let errors = statuses.iter().any(|s| !(200..300).contains(s));
        json!({"took": 3, "errors": errors, "items": items}).to_string()
    }

    fn transient(v: Verdict) -> bool {
        matches!(v, Verdict::Transient(_))
    }

    #[test]
    fn bulk_item_errors_are_retried_or_rejected_never_delivered() {
        // The decoded body of a chunked answer is the same JSON as a
        // Content-Length one: read the same way.
        assert_eq!(
            classify_bulk(2, 200, "200 OK", &bulk(&[201, 200])),
            Verdict::Done(vec![])
        );
        assert!(transient(classify_bulk(
            2,
            200,
            "200 OK",
            &bulk(&[429, 429])
        )));
        assert!(transient(classify_bulk(
            2,
            200,
            "200 OK",
            &bulk(&[201, 503])
        )));
        let Verdict::Done(rejected) = classify_bulk(3, 200, "200 OK", &bulk(&[201, 400, 201]))
        else {
            panic!("a mapping error is final")
        };
        assert_eq!(rejected.len(), 1);
        assert_eq!((rejected[0].0, rejected[0].1), (1, 400));
        assert!(rejected[0].2.contains("mapper_parsing_exception"));
        // A 404 on delete is done.
        let gone = json!({"errors": true, "items": [{"delete": {"_id": "x", "status": 404}}]});
        assert_eq!(
            classify_bulk(1, 200, "200 OK", &gone.to_string()),
            Verdict::Done(vec![])
        );
    }

    #[test]
    fn a_bulk_answer_that_is_not_whole_is_retried() {
        let whole = bulk(&[429, 429]);
        // Cut short (the server closed mid-body).
        assert!(transient(classify_bulk(
            2,
            200,
            "200 OK",
            &whole[..whole.len() / 2]
        )));
        // Still carrying its chunk sizes (the framing not decoded).
        let mut framed = String::new();
        for c in whole.as_bytes().chunks(16) {
            framed.push_str(&format!(
                "{:x}\r\n{}\r\n",
                c.len(),
                String::from_utf8_lossy(c)
            ));
        }
        framed.push_str("0\r\n\r\n");
        assert!(transient(classify_bulk(2, 200, "200 OK", &framed)));
        // Unparseable, empty, or not a `_bulk` answer at all.
        for body in ["ok", "", "{}", "{\"acknowledged\":true}", "[]"] {
            assert!(transient(classify_bulk(1, 200, "200 OK", body)), "{body:?}");
        }
        // Not one result per action.
        assert!(transient(classify_bulk(
            3,
            200,
            "200 OK",
            &bulk(&[201, 201])
        )));
        // Not 2xx: as usual.
        assert!(transient(classify_bulk(
            1,
            503,
            "503 Service Unavailable",
            ""
        )));
        assert!(matches!(
            classify_bulk(1, 413, "413 Payload Too Large", "too big"),
            Verdict::Done(r) if r.len() == 1
        ));
    }

    #[test]
    fn hec_error_codes_are_retried_or_rejected_never_delivered() {
        let ok = "{\"text\":\"Success\",\"code\":0}";
        assert_eq!(classify_hec(2, 200, "200 OK", ok), Verdict::Done(vec![]));
        for busy in [
            "{\"text\":\"Server is busy\",\"code\":9}",
            "{\"text\":\"Internal server error\",\"code\":8}",
            "{\"text\":\"HEC is unhealthy, queues are full\",\"code\":18}",
        ] {
            assert!(transient(classify_hec(2, 200, "200 OK", busy)), "{busy}");
        }
        let Verdict::Done(rejected) = classify_hec(
            2,
            200,
            "200 OK",
            "{\"text\":\"Incorrect index\",\"code\":7,\"invalid-event-number\":1}",
        ) else {
            panic!("an incorrect index is final")
        };
        assert_eq!(rejected.len(), 2, "every event of the request");
        assert!(rejected[0].2.contains("Incorrect index"));
        // Cut short, unparseable, or without a code: not proof of delivery.
        for body in ["{\"text\":\"Succ", "ok", "", "{\"text\":\"Success\"}"] {
            assert!(transient(classify_hec(1, 200, "200 OK", body)), "{body:?}");
        }
        // Not 2xx: as usual (503 busy retried, 403 invalid token final).
        assert!(transient(classify_hec(
            1,
            503,
            "503 Service Unavailable",
            "{\"text\":\"Server is busy\",\"code\":9}"
        )));
        assert!(matches!(
            classify_hec(1, 403, "403 Forbidden", "{\"text\":\"Invalid token\",\"code\":4}"),
            Verdict::Done(r) if r.len() == 1
        ));
    }

    #[test]
    fn plain_answers_keep_their_reading() {
        assert_eq!(
            classify_plain(1, 204, "204 No Content", ""),
            Verdict::Done(vec![])
        );
        assert!(transient(classify_plain(
            1,
            429,
            "429 Too Many Requests",
            ""
        )));
        assert!(transient(classify_plain(1, 408, "408 Request Timeout", "")));
        assert!(transient(classify_plain(1, 502, "502 Bad Gateway", "")));
        let Verdict::Done(r) = classify_plain(1, 422, "422 Unprocessable Entity", "{\"e\": 1}")
        else {
            panic!("a 422 is final")
        };
        assert_eq!(
            r,
            vec![(0, 422, "422 Unprocessable Entity: {\"e\": 1}".to_owned())]
        );
    }

    #[test]
    fn urls_take_ipv6_literals_and_host_names_a_non_default_port() {
        let u: Url = "https://[::1]:9443/es".parse().unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 9443, "/es")
        );
        assert_eq!(u.authority(), "[::1]:9443");
        assert_eq!(u.location(), "[::1]:9443/es");
        let u: Url = "http://[fe80::1]/hook".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port), ("fe80::1", 80));
        assert_eq!(u.authority(), "[fe80::1]");

        let u: Url = "https://siem.example:8088/services/collector/event"
            .parse()
            .unwrap();
        assert_eq!(u.authority(), "siem.example:8088");
        assert_eq!(u.location(), "siem.example:8088/services/collector/event");
        let u: Url = "https://siem.example/x".parse().unwrap();
        assert_eq!((u.port, u.authority().as_str()), (443, "siem.example"));
        let u: Url = "http://127.0.0.1:80".parse().unwrap();
        assert_eq!(
            (u.authority().as_str(), u.path.as_str()),
            ("127.0.0.1", "/")
        );
        let u: Url = "http://10.0.0.1:443/".parse().unwrap();
        assert_eq!(u.authority(), "10.0.0.1:443", "443 is not http's default");

        for bad in [
            "https://[::1/es",
            "https://[::1]x/es",
            "https://[not-v6]:9200/",
            "https://::1:9200/",
            "https://[::1]:/",
            "https://host:99999/",
            "https://user:pw@host/",
            "https://ho st/",
            "https:///path",
            "ftp://host/",
            "https://host/a b",
        ] {
            assert!(bad.parse::<Url>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_request_names_host_and_port_and_carries_its_headers() {
        let u: Url = "https://[::1]:9443/es".parse().unwrap();
        let c = HttpClient::new(&u, None).unwrap();
        let req = c
            .request(
                "/es/_bulk",
                &[("Content-Type", "application/x-ndjson".into())],
                &Bytes::from_static(b"{}\n"),
            )
            .unwrap();
        assert_eq!(req.uri(), "/es/_bulk");
        assert_eq!(req.headers()["host"], "[::1]:9443");
        assert_eq!(req.headers()["content-length"], "3");
        assert_eq!(req.headers()["content-type"], "application/x-ndjson");
        // A value that would split the header is refused, not sent.
        assert!(c
            .request(
                "/",
                &[("Authorization", "Splunk a\r\nX: y".into())],
                &Bytes::new()
            )
            .is_err());
    }
}
