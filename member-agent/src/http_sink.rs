//! HTTP sinks: a generic webhook (JSON POST, HMAC-SHA256 signature header),
//! Splunk HTTP Event Collector, and Elasticsearch/OpenSearch `_bulk` with
//! Elastic Common Schema `threat.indicator.*` fields. One POST per item;
//! a non-2xx answer or a network error fails the write, so the item is not
//! committed, the cursor holds, and the item is sent again later (nothing
//! lost). Each request carries a stable delivery id (`X-ISAC-Delivery`, the
//! Elasticsearch `_id`) so a receiver can drop the rare repeat.

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

/// Posts `body`; Ok with the status when it is 2xx.
pub async fn post(
    url: &Url,
    headers: &[(&str, String)],
    body: &[u8],
    extra_ca: Option<&X509>,
) -> Result<u16, AgentError> {
    let fail =
        |m: String| AgentError::Invalid(format!("POST {}:{}{}: {m}", url.host, url.port, url.path));
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
    .map_err(|_| fail("connect timed out".into()))?
    .map_err(|e| fail(e.to_string()))?;
    let mut response = Vec::new();
    let exchange = async {
        if url.https {
            let mut b =
                SslConnector::builder(SslMethod::tls_client()).map_err(|e| fail(e.to_string()))?;
            if let Some(ca) = extra_ca {
                b.cert_store_mut()
                    .add_cert(ca.clone())
                    .map_err(|e| fail(e.to_string()))?;
            }
            b.set_verify(SslVerifyMode::PEER);
            let ssl = b
                .build()
                .configure()
                .and_then(|c| c.into_ssl(&url.host))
                .map_err(|e| fail(e.to_string()))?;
            let mut tls =
                tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| fail(e.to_string()))?;
            std::pin::Pin::new(&mut tls)
                .connect()
                .await
                .map_err(|e| fail(e.to_string()))?;
            tls.write_all(request.as_bytes())
                .await
                .map_err(|e| fail(e.to_string()))?;
            tls.write_all(body).await.map_err(|e| fail(e.to_string()))?;
            (&mut tls)
                .take(64 * 1024)
                .read_to_end(&mut response)
                .await
                .map_err(|e| fail(e.to_string()))?;
        } else {
            let mut tcp = tcp;
            tcp.write_all(request.as_bytes())
                .await
                .map_err(|e| fail(e.to_string()))?;
            tcp.write_all(body).await.map_err(|e| fail(e.to_string()))?;
            (&mut tcp)
                .take(64 * 1024)
                .read_to_end(&mut response)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        Ok::<(), AgentError>(())
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| fail("timed out".into()))??;
    let status_line = String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| fail(format!("no HTTP status in `{status_line}`")))?;
    if !(200..300).contains(&code) {
        return Err(fail(format!("receiver answered {status_line}")));
    }
    Ok(code)
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
    /// Sends one item (`line` is our JSON Lines record of it).
    pub async fn send(&self, line: &Value, extra_ca: Option<&X509>) -> Result<(), AgentError> {
        let delivery = format!(
            "{}:{}:{}",
            line["id"].as_str().unwrap_or_default(),
            line["revision"],
            line["action"].as_str().unwrap_or("upsert")
        );
        match self {
            HttpSink::Webhook { url, secret } => {
                let body =
                    serde_json::to_vec(line).map_err(|e| AgentError::Invalid(e.to_string()))?;
                let sig = hmac_sha256_hex(secret.as_bytes(), &body)?;
                let headers = [
                    ("Content-Type", "application/json".to_owned()),
                    ("X-ISAC-Signature", format!("sha256={sig}")),
                    ("X-ISAC-Delivery", delivery),
                ];
                post(url, &headers, &body, extra_ca).await?;
            }
            HttpSink::SplunkHec {
                url,
                token,
                index,
                sourcetype,
            } => {
                let mut event =
                    json!({"event": line, "sourcetype": sourcetype, "source": "isac-member-agent"});
                if let Some(i) = index {
                    event["index"] = json!(i);
                }
                let body =
                    serde_json::to_vec(&event).map_err(|e| AgentError::Invalid(e.to_string()))?;
                let headers = [
                    ("Content-Type", "application/json".to_owned()),
                    ("Authorization", format!("Splunk {token}")),
                    (
                        "X-Splunk-Request-Channel",
                        "9f1b2a6e-4b1d-4f7e-9a53-1b2c3d4e5f60".to_owned(),
                    ),
                    ("X-ISAC-Delivery", delivery),
                ];
                post(url, &headers, &body, extra_ca).await?;
            }
            HttpSink::Elastic { url, index } => {
                // One document per statement id: a new revision replaces the
                // old one, and a retraction deletes it.
                let action = if line["action"] == "retract" {
                    let target = line["target"].as_str().unwrap_or_default();
                    format!("{}\n", json!({"delete": {"_index": index, "_id": target}}))
                } else {
                    let id = line["id"].as_str().unwrap_or_default();
                    format!(
                        "{}\n{}\n",
                        json!({"index": {"_index": index, "_id": id}}),
                        ecs_document(line)
                    )
                };
                let mut u = url.clone();
                u.path = format!("{}/_bulk", u.path.trim_end_matches('/'));
                let headers = [("Content-Type", "application/x-ndjson".to_owned())];
                post(&u, &headers, action.as_bytes(), extra_ca).await?;
            }
        }
        Ok(())
    }
}
