//! HTTP sinks: a generic webhook (JSON POST per item, HMAC-SHA256 signature
//! header), Splunk HTTP Event Collector (several events per POST), and
//! Elasticsearch/OpenSearch `_bulk` (one request per batch) with Elastic
//! Common Schema `threat.indicator.*` fields.
//!
//! Items are sent before they are committed. While a receiver is down (a
//! network error, 5xx, 408 or 429, or an Elasticsearch item answering 429 or
//! 5xx) the request is retried with exponential backoff; once the retry
//! budget is spent the write fails, the item is not committed, the cursor
//! holds, and the item comes again later (nothing lost). An answer that
//! rejects the item for good (any other 4xx, or an Elasticsearch item error
//! such as a mapping conflict) is a rejection: the caller dead-letters the
//! item or, without a dead-letter file, fails. Each request carries a stable
//! delivery id (`X-ISAC-Delivery`, the Elasticsearch `_id`) so a receiver can
//! drop the rare repeat.

use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::AgentError;

#[derive(Debug, Clone)]
pub struct Url {
    pub https: bool,
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
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (authority, if https { 443 } else { 80 }),
        };
        if host.is_empty() || path.contains([' ', '\r', '\n']) {
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

#[derive(Debug, Clone)]
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

/// One request: the status code, the status line and the body (bounded).
async fn exchange(
    url: &Url,
    headers: &[(&str, String)],
    body: &[u8],
    extra_ca: Option<&X509>,
) -> Result<(u16, String, String), String> {
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: isac-member-agent\r\n",
        url.path,
        url.host,
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        TcpStream::connect((url.host.as_str(), url.port)),
    )
    .await
    .map_err(|_| "connect timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    const MAX_ANSWER: u64 = 4 * 1024 * 1024;
    let exchange = async {
        if url.https {
            let mut b =
                SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
            if let Some(ca) = extra_ca {
                b.cert_store_mut()
                    .add_cert(ca.clone())
                    .map_err(|e| e.to_string())?;
            }
            b.set_verify(SslVerifyMode::PEER);
            let ssl = b
                .build()
                .configure()
                .and_then(|c| c.into_ssl(&url.host))
                .map_err(|e| e.to_string())?;
            let mut tls = tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| e.to_string())?;
            std::pin::Pin::new(&mut tls)
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(body).await.map_err(|e| e.to_string())?;
            (&mut tls)
                .take(MAX_ANSWER)
                .read_to_end(&mut response)
                .await
                .map_err(|e| e.to_string())?;
        } else {
            let mut tcp = tcp;
            tcp.write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            tcp.write_all(body).await.map_err(|e| e.to_string())?;
            (&mut tcp)
                .take(MAX_ANSWER)
                .read_to_end(&mut response)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| "timed out".to_owned())??;
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or_default().to_owned();
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP status in `{status_line}`"))?;
    let answer = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, status_line, answer))
}

/// Posts `body`; Ok with the status when it is 2xx (one attempt).
pub async fn post(
    url: &Url,
    headers: &[(&str, String)],
    body: &[u8],
    extra_ca: Option<&X509>,
) -> Result<u16, AgentError> {
    let fail =
        |m: String| AgentError::Invalid(format!("POST {}:{}{}: {m}", url.host, url.port, url.path));
    let (code, status_line, _) = exchange(url, headers, body, extra_ca).await.map_err(fail)?;
    if !(200..300).contains(&code) {
        return Err(fail(format!("receiver answered {status_line}")));
    }
    Ok(code)
}

/// The usual reading of an answer for a request carrying lines `0..n`:
/// 2xx delivered; 408, 429, 5xx and anything but 4xx transient; other 4xx
/// reject every line for good.
fn classify_plain(n: usize, code: u16, status_line: &str, answer: &str) -> Verdict {
    match code {
        200..=299 => Verdict::Done(Vec::new()),
        408 | 429 => Verdict::Transient(format!("receiver answered {status_line}")),
        400..=499 => Verdict::Done(
            (0..n)
                .map(|i| (i, code, format!("{status_line}: {}", excerpt(answer))))
                .collect(),
        ),
        _ => Verdict::Transient(format!("receiver answered {status_line}")),
    }
}

/// An Elasticsearch `_bulk` answer: `errors: true` names failed items;
/// 429 and 5xx items are retried (the whole request: index by `_id` and
/// delete are idempotent), a 404 on delete is done, other failures reject
/// that item for good.
fn classify_bulk(n: usize, code: u16, status_line: &str, answer: &str) -> Verdict {
    if !(200..300).contains(&code) {
        return classify_plain(n, code, status_line, answer);
    }
    let Ok(v) = serde_json::from_str::<Value>(answer) else {
        return Verdict::Done(Vec::new());
    };
    if v["errors"] != json!(true) {
        return Verdict::Done(Vec::new());
    }
    let mut rejected = Vec::new();
    for (i, item) in v["items"].as_array().into_iter().flatten().enumerate() {
        let Some((op, r)) = item.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let status = r["status"].as_u64().unwrap_or(0) as u16;
        match status {
            200..=299 => {}
            404 if op == "delete" => {}
            429 | 500..=599 => {
                return Verdict::Transient(format!("Elasticsearch answered {status} for item {i}"))
            }
            _ => rejected.push((
                i.min(n.saturating_sub(1)),
                status,
                excerpt(&r["error"].to_string()),
            )),
        }
    }
    Verdict::Done(rejected)
}

/// Posts until the answer is final or the retry budget is spent.
async fn post_with_retry(
    url: &Url,
    headers: &[(&str, String)],
    body: &[u8],
    opts: &HttpOptions,
    n: usize,
    classify: fn(usize, u16, &str, &str) -> Verdict,
) -> Result<Vec<(usize, u16, String)>, AgentError> {
    let fail =
        |m: String| AgentError::Invalid(format!("POST {}:{}{}: {m}", url.host, url.port, url.path));
    let start = tokio::time::Instant::now();
    let mut delay = opts.retry.first;
    loop {
        let verdict = match exchange(url, headers, body, opts.ca.as_ref()).await {
            Err(e) => Verdict::Transient(e),
            Ok((code, status_line, answer)) => classify(n, code, &status_line, &answer),
        };
        match verdict {
            Verdict::Done(rejected) => return Ok(rejected),
            Verdict::Transient(m) => {
                if start.elapsed() + delay > opts.retry.give_up_after {
                    return Err(fail(m));
                }
                tracing::warn!(url = %format!("{}:{}{}", url.host, url.port, url.path), error = %m, retry_in_ms = delay.as_millis() as u64, "receiver unavailable; retrying");
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

/// A line a receiver rejected for good.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub sink: &'static str,
    pub url: String,
    pub status: u16,
    pub answer: String,
    pub delivery: String,
    /// Index into the lines given.
    pub index: usize,
}

fn delivery_id(line: &Value) -> String {
    format!(
        "{}:{}:{}",
        line["id"].as_str().unwrap_or_default(),
        line["revision"],
        line["action"].as_str().unwrap_or("upsert")
    )
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

impl HttpSink {
    fn name(&self) -> &'static str {
        match self {
            HttpSink::Webhook { .. } => "webhook",
            HttpSink::SplunkHec { .. } => "splunk-hec",
            HttpSink::Elastic { .. } => "elastic",
        }
    }

    fn url(&self) -> &Url {
        match self {
            HttpSink::Webhook { url, .. }
            | HttpSink::SplunkHec { url, .. }
            | HttpSink::Elastic { url, .. } => url,
        }
    }

    /// Sends one item (`line` is our JSON Lines record of it), one attempt;
    /// any failure is an error.
    pub async fn send(&self, line: &Value, extra_ca: Option<&X509>) -> Result<(), AgentError> {
        let opts = HttpOptions {
            ca: extra_ca.cloned(),
            retry: Retry::none(),
            ..HttpOptions::default()
        };
        match self
            .deliver(std::slice::from_ref(line), &opts)
            .await?
            .first()
        {
            None => Ok(()),
            Some(r) => Err(AgentError::Invalid(format!(
                "{} {}: rejected: {}",
                r.sink, r.url, r.answer
            ))),
        }
    }

    /// Delivers `lines` (our JSON Lines records: upsert, retract or expire),
    /// retrying while the receiver is down. Returns the lines it rejected
    /// for good; an error when the retry budget ran out.
    pub async fn deliver(
        &self,
        lines: &[Value],
        opts: &HttpOptions,
    ) -> Result<Vec<Rejection>, AgentError> {
        let mut rejected = Vec::new();
        let mut reject = |index: usize, status: u16, answer: String| {
            rejected.push(Rejection {
                sink: self.name(),
                url: format!("{}:{}{}", self.url().host, self.url().port, self.url().path),
                status,
                answer,
                delivery: delivery_id(&lines[index]),
                index,
            })
        };
        match self {
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
                    for (_, status, answer) in
                        post_with_retry(url, &headers, &body, opts, 1, classify_plain).await?
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
                    for (i, status, answer) in
                        post_with_retry(url, &headers, &body, opts, chunk.len(), classify_plain)
                            .await?
                    {
                        reject(c * batch + i, status, answer);
                    }
                }
            }
            HttpSink::Elastic { url, index } => {
                // One document per statement id: a new revision replaces the
                // old one; a retraction or expiry deletes it.
                let mut u = url.clone();
                u.path = format!("{}/_bulk", u.path.trim_end_matches('/'));
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
                            Some("expire") => body.push_str(&format!(
                                "{}\n",
                                json!({"delete": {"_index": index, "_id": id}})
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
                        &u,
                        &headers,
                        body.as_bytes(),
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
