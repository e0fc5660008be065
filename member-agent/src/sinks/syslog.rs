//! Syslog (RFC 5424) with a CEF payload, as ArcSight, QRadar and Sentinel's
//! CEF connector read them. TCP uses octet-counting framing (RFC 6587), TLS
//! the same framing inside TLS (RFC 5425, the server verified against the
//! system roots and `--sink-ca`, its name or IP checked); a failure of
//! either holds the cursor like the HTTP sinks. UDP is best effort, as UDP
//! syslog always is.

use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::{Sent, Sink};
use crate::error::AgentError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Clone)]
pub struct SyslogTarget {
    pub transport: Transport,
    /// HOST:PORT
    pub addr: String,
    /// Extra CA trusted for a TLS receiver (`--sink-ca`).
    pub ca: Option<openssl::x509::X509>,
}

impl std::str::FromStr for SyslogTarget {
    type Err = AgentError;
    fn from_str(s: &str) -> Result<Self, AgentError> {
        let usage = || {
            AgentError::Usage(format!(
                "`{s}`: use udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT"
            ))
        };
        let (transport, rest) = if let Some(r) = s.strip_prefix("tcp://") {
            (Transport::Tcp, r)
        } else if let Some(r) = s.strip_prefix("udp://") {
            (Transport::Udp, r)
        } else if let Some(r) = s.strip_prefix("tls://") {
            (Transport::Tls, r)
        } else {
            return Err(usage());
        };
        if !rest.contains(':') || rest.contains('/') {
            return Err(usage());
        }
        Ok(SyslogTarget {
            transport,
            addr: rest.to_owned(),
            ca: None,
        })
    }
}

/// CEF header fields escape `\` and `|`.
fn cef_header(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

/// CEF extension values escape `\`, `=` and line breaks.
fn cef_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('=', "\\=")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

/// CEF severity 0-10 from ours.
fn cef_severity(s: &str) -> u8 {
    match s {
        "critical" => 10,
        "high" => 8,
        "medium" => 5,
        "low" => 3,
        _ => 1,
    }
}

/// The CEF message for one of our JSON Lines records.
pub fn cef_message(line: &Value) -> String {
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    if super::is_exposure(line) {
        return exposure_cef(line);
    }
    // An `expire` record carries its severity itself (no statement).
    let severity = line["statement"]["body"]["severity"]
        .as_str()
        .or_else(|| line["severity"].as_str())
        .unwrap_or_default()
        .to_owned();
    let kind = str_of(&line["kind"]);
    let mut ext = vec![
        format!("externalId={}", cef_value(&str_of(&line["id"]))),
        format!("act={}", cef_value(&str_of(&line["action"]))),
        format!("cs1Label=tlp cs1={}", cef_value(&str_of(&line["tlp"]))),
        format!("cs2Label=value cs2={}", cef_value(&str_of(&line["value"]))),
        format!(
            "cs3Label=source cs3={}",
            cef_value(&str_of(&line["source_name"]))
        ),
        format!(
            "cs4Label=envelopeDigest cs4={}",
            cef_value(&str_of(&line["envelope_digest"]))
        ),
        format!(
            "cn1Label=revision cn1={}",
            line["revision"].as_u64().unwrap_or(0)
        ),
    ];
    let obs = &line["statement"]["body"]["observable"];
    if let Some(d) = obs["domain"].as_str() {
        ext.push(format!("dhost={}", cef_value(d)));
    }
    if let Some(ip) = obs["ip"].as_str() {
        ext.push(format!("dst={}", cef_value(ip)));
    }
    if let Some(u) = obs["url"].as_str() {
        ext.push(format!("request={}", cef_value(u)));
    }
    if let Some(h) = obs["sha256"].as_str() {
        ext.push(format!("fileHash={}", cef_value(h)));
    }
    // The effective expiry: on `act=upsert` when it will lapse, on
    // `act=expire` when it did (a retraction's idiom, `act=retract`).
    if let Some(until) = line["valid_until"].as_str() {
        ext.push(format!("cs5Label=validUntil cs5={}", cef_value(until)));
    }
    // Federation (issue 20): the origin hub and the hubs it came through.
    let provenance = &line["provenance"];
    if let Some(origin) = provenance["origin_hub"].as_str() {
        let path: Vec<&str> = provenance["hub_path"]
            .as_array()
            .map(|a| a.iter().filter_map(|h| h.as_str()).collect())
            .unwrap_or_default();
        ext.push(format!("cs6Label=originHub cs6={}", cef_value(origin)));
        ext.push(format!(
            "flexString1Label=hubPath flexString1={}",
            cef_value(&path.join(">"))
        ));
        if let Some(org) = provenance["origin_org"].as_str() {
            ext.push(format!(
                "flexString2Label=originOrg flexString2={}",
                cef_value(org)
            ));
        }
    }
    format!(
        "CEF:0|ISAC|isac-member-agent|{}|{}|{}|{}|{}",
        env!("CARGO_PKG_VERSION"),
        cef_header(&kind),
        cef_header(&str_of(&line["title"])),
        cef_severity(&severity),
        ext.join(" ")
    )
}

/// An exposure event: class `exposure.new` / `exposure.cleared`, the
/// application as `dhost`-free custom strings (CEF has no field for it).
fn exposure_cef(line: &Value) -> String {
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let i = &line["indicator"];
    let action = str_of(&line["action"]);
    let name = format!(
        "{} {} in {}: {}",
        if action == "exposure.new" {
            "exposed:"
        } else {
            "cleared:"
        },
        str_of(&line["component"]),
        str_of(&line["application"]),
        str_of(&i["title"])
    );
    let ext = [
        format!("externalId={}", cef_value(&str_of(&line["id"]))),
        format!("act={}", cef_value(&action)),
        format!("cs1Label=tlp cs1={}", cef_value(&str_of(&line["tlp"]))),
        format!(
            "cs2Label=component cs2={}",
            cef_value(&str_of(&line["component"]))
        ),
        format!("cs3Label=source cs3={}", cef_value(&str_of(&i["source"]))),
        format!("cs4Label=indicator cs4={}", cef_value(&str_of(&i["id"]))),
        format!(
            "cs5Label=application cs5={}",
            cef_value(&str_of(&line["application"]))
        ),
        format!("cs6Label=why cs6={}", cef_value(&str_of(&line["why"]))),
        format!("cn1Label=event cn1={}", line["event"].as_u64().unwrap_or(0)),
    ];
    format!(
        "CEF:0|ISAC|isac-member-agent|{}|{}|{}|{}|{}",
        env!("CARGO_PKG_VERSION"),
        cef_header(&action),
        cef_header(&name),
        cef_severity(i["severity"].as_str().unwrap_or_default()),
        ext.join(" ")
    )
}

/// The RFC 5424 frame: facility local0, severity from ours.
pub fn syslog_frame(line: &Value, hostname: &str) -> String {
    let severity = if super::is_exposure(line) {
        &line["indicator"]["severity"]
    } else if line["action"] == "expire" {
        &line["severity"]
    } else {
        &line["statement"]["body"]["severity"]
    };
    let sev = match severity.as_str().unwrap_or_default() {
        "critical" => 2,
        "high" => 3,
        "medium" => 4,
        "low" => 5,
        _ => 6,
    };
    let pri = 16 * 8 + sev;
    let ts = line["received_at"]
        .as_str()
        .or_else(|| line["at"].as_str())
        // An expiry happens at its valid_until.
        .or_else(|| line["valid_until"].as_str())
        .unwrap_or("-");
    let msgid = if super::is_exposure(line) {
        "exposure"
    } else {
        "indicator"
    };
    format!(
        "<{pri}>1 {ts} {hostname} isac-member-agent - {msgid} - {}",
        cef_message(line)
    )
}

/// The connector trusting the system roots and `extra_ca`, built once per
/// extra CA: building one reads the system roots (~20 ms), and the syslog
/// sink connects per batch.
fn connector(extra_ca: Option<&openssl::x509::X509>) -> Result<openssl::ssl::SslConnector, String> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    type Built = Vec<(Option<Vec<u8>>, SslConnector)>;
    static BUILT: std::sync::Mutex<Built> = std::sync::Mutex::new(Vec::new());
    let key = match extra_ca {
        Some(ca) => Some(ca.to_der().map_err(|e| e.to_string())?),
        None => None,
    };
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, c)) = built.iter().find(|(k, _)| *k == key) {
        return Ok(c.clone());
    }
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    if let Some(ca) = extra_ca {
        b.cert_store_mut()
            .add_cert(ca.clone())
            .map_err(|e| e.to_string())?;
    }
    b.set_verify(SslVerifyMode::PEER);
    let c = b.build();
    built.push((key, c.clone()));
    Ok(c)
}

/// A TLS client connection over `tcp` to `host` (a name or an IP
/// address), verified against the system roots and `extra_ca`: the
/// certificate chain, and the name (with SNI) or the IP address.
pub async fn tls_connect(
    tcp: tokio::net::TcpStream,
    host: &str,
    extra_ca: Option<&openssl::x509::X509>,
) -> Result<tokio_openssl::SslStream<tokio::net::TcpStream>, String> {
    let mut config = connector(extra_ca)?
        .configure()
        .map_err(|e| e.to_string())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        // An IP literal: checked against the certificate's IP addresses (no SNI).
        config.set_use_server_name_indication(false);
        config.set_verify_hostname(false);
        config.param_mut().set_ip(ip).map_err(|e| e.to_string())?;
    }
    let ssl = config.into_ssl(host).map_err(|e| e.to_string())?;
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| e.to_string())?;
    std::pin::Pin::new(&mut tls)
        .connect()
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    Ok(tls)
}

impl SyslogTarget {
    /// The host part of `addr` (brackets of an IPv6 literal removed).
    fn host(&self) -> &str {
        let h = self
            .addr
            .rsplit_once(':')
            .map_or(self.addr.as_str(), |(h, _)| h);
        h.trim_start_matches('[').trim_end_matches(']')
    }

    /// Sends `lines` in order, over one connection for TCP and TLS.
    pub async fn send_all(&self, lines: &[Value]) -> Result<(), AgentError> {
        let fail = |m: String| AgentError::Invalid(format!("syslog {}: {m}", self.addr));
        if lines.is_empty() {
            return Ok(());
        }
        if self.transport == Transport::Udp {
            let sock = tokio::net::UdpSocket::bind("0.0.0.0:0")
                .await
                .map_err(|e| fail(e.to_string()))?;
            for line in lines {
                let frame = syslog_frame(line, "isac-agent");
                sock.send_to(frame.as_bytes(), &self.addr)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
            }
            return Ok(());
        }
        // RFC 6587 / RFC 5425 octet counting: "LEN SP MSG".
        let mut framed = Vec::new();
        for line in lines {
            let frame = syslog_frame(line, "isac-agent");
            framed.extend_from_slice(format!("{} {}", frame.len(), frame).as_bytes());
        }
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect(&self.addr),
        )
        .await
        .map_err(|_| fail("connect timed out".into()))?
        .map_err(|e| fail(e.to_string()))?;
        let exchange = async {
            if self.transport == Transport::Tls {
                let mut tls = tls_connect(tcp, self.host(), self.ca.as_ref()).await?;
                tls.write_all(&framed).await.map_err(|e| e.to_string())?;
                tls.flush().await.map_err(|e| e.to_string())?;
                tls.shutdown().await.map_err(|e| e.to_string())?;
            } else {
                let mut tcp = tcp;
                tcp.write_all(&framed).await.map_err(|e| e.to_string())?;
                tcp.flush().await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        tokio::time::timeout(Duration::from_secs(30), exchange)
            .await
            .map_err(|_| fail("timed out".into()))?
            .map_err(fail)
    }
}

impl Sink for SyslogTarget {
    fn describe(&self) -> String {
        let proto = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        };
        format!("syslog: {proto}://{}", self.addr)
    }

    /// Every line goes; a receiver cannot reject one for good.
    fn send<'a>(&'a self, lines: &'a [Value]) -> Sent<'a> {
        Box::pin(async move {
            self.send_all(lines).await?;
            Ok(Vec::new())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cef_escapes_headers_and_extensions() {
        let line = json!({
            "id": "i", "action": "upsert", "tlp": "green", "value": "a=b\\c", "source_name": "Acme|Bank",
            "envelope_digest": "sha256:x", "revision": 1, "kind": "network", "title": "C2 | evil\nline",
            "received_at": "2026-11-25T12:00:00Z",
            "statement": {"body": {"severity": "high", "observable": {"domain": "c2.evil.example"}}}
        });
        let m = cef_message(&line);
        assert!(m.starts_with("CEF:0|ISAC|isac-member-agent|"), "{m}");
        assert!(m.contains("|network|C2 \\| evil line|8|"), "{m}");
        assert!(m.contains("cs2=a\\=b\\\\c"), "{m}");
        assert!(m.contains("dhost=c2.evil.example"), "{m}");
        let f = syslog_frame(&line, "h");
        assert!(
            f.starts_with("<131>1 2026-11-25T12:00:00Z h isac-member-agent - indicator - CEF:0|"),
            "{f}"
        );
    }

    /// Federation (issue 20): the origin hub, the path and the origin org
    /// as labelled custom fields; absent for this hub's own items.
    #[test]
    fn a_federated_item_names_its_origin_and_path() {
        let mut line = json!({
            "action": "upsert", "id": "0b0e", "revision": 1, "kind": "network", "title": "C2",
            "tlp": "green", "value": "c2.evil.example", "source_name": "Alice",
            "provenance": {"origin_hub": "hub-a", "hub_path": ["hub-a", "hub-b"],
                           "origin_org": "alice=bank"},
        });
        let m = cef_message(&line);
        assert!(m.contains("cs6Label=originHub cs6=hub-a"), "{m}");
        assert!(
            m.contains("flexString1Label=hubPath flexString1=hub-a>hub-b"),
            "{m}"
        );
        assert!(
            m.contains("flexString2Label=originOrg flexString2=alice\\=bank"),
            "{m}"
        );
        line["provenance"]["origin_org"] = Value::Null;
        assert!(!cef_message(&line).contains("originOrg"));
        line.as_object_mut().unwrap().remove("provenance");
        let m = cef_message(&line);
        assert!(!m.contains("cs6") && !m.contains("hubPath"), "{m}");
    }

    #[test]
    fn an_expiry_is_a_cef_event_like_a_retraction() {
        let line = json!({
            "action": "expire", "id": "0b0e", "revision": 2, "sequence": 7, "kind": "network",
            "value": "c2.evil.example", "title": "C2", "tlp": "green", "severity": "critical",
            "source": "alice-bank", "valid_until": "2026-12-01T00:00:00Z"
        });
        let f = syslog_frame(&line, "h");
        assert!(
            f.starts_with("<130>1 2026-12-01T00:00:00Z h isac-member-agent - indicator - CEF:0|ISAC|isac-member-agent|"),
            "{f}"
        );
        for field in [
            "|network|C2|10|",
            "externalId=0b0e",
            "act=expire",
            "cs2=c2.evil.example",
            "cn1=2",
            "cs5Label=validUntil cs5=2026-12-01T00:00:00Z",
        ] {
            assert!(f.contains(field), "{field} in {f}");
        }
    }

    #[test]
    fn exposure_events_name_application_component_and_indicator() {
        let line = json!({
            "action": "exposure.new", "event": 3, "id": "exposure-ab", "application": "online|banking",
            "component": "pkg:npm/flatmap-stream@0.1.1", "tlp": "amber", "why": "affected: 0.1.1",
            "at": "2026-12-02T10:00:00Z",
            "indicator": {"id": "0b0e", "title": "steals keys", "source": "alice-bank", "severity": "critical"}
        });
        let f = syslog_frame(&line, "h");
        assert!(
            f.starts_with("<130>1 2026-12-02T10:00:00Z h isac-member-agent - exposure - CEF:0|ISAC|isac-member-agent|"),
            "{f}"
        );
        assert!(f.contains("|exposure.new|exposed: pkg:npm/flatmap-stream@0.1.1 in online\\|banking: steals keys|10|"), "{f}");
        for field in [
            "act=exposure.new",
            "cs1=amber",
            "cs4=0b0e",
            "cs5=online|banking",
            "cn1=3",
        ] {
            assert!(f.contains(field), "{field} in {f}");
        }
    }
}
