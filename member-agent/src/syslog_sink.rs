//! Syslog (RFC 5424) with a CEF payload, as ArcSight, QRadar and Sentinel's
//! CEF connector read them. TCP uses octet-counting framing (RFC 6587) and a
//! failure holds the cursor like the HTTP sinks; UDP is best effort, as UDP
//! syslog always is.

use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::error::AgentError;

#[derive(Debug, Clone)]
pub struct SyslogTarget {
    pub tcp: bool,
    pub addr: String,
}

impl std::str::FromStr for SyslogTarget {
    type Err = AgentError;
    fn from_str(s: &str) -> Result<Self, AgentError> {
        let (tcp, rest) = if let Some(r) = s.strip_prefix("tcp://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("udp://") {
            (false, r)
        } else {
            return Err(AgentError::Usage(format!(
                "`{s}`: use udp://HOST:PORT or tcp://HOST:PORT"
            )));
        };
        if !rest.contains(':') || rest.contains('/') {
            return Err(AgentError::Usage(format!(
                "`{s}`: use udp://HOST:PORT or tcp://HOST:PORT"
            )));
        }
        Ok(SyslogTarget {
            tcp,
            addr: rest.to_owned(),
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
    let severity = str_of(&line["statement"]["body"]["severity"]);
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
    format!(
        "CEF:0|ISAC|isac-member-agent|{}|{}|{}|{}|{}",
        env!("CARGO_PKG_VERSION"),
        cef_header(&kind),
        cef_header(&str_of(&line["title"])),
        cef_severity(&severity),
        ext.join(" ")
    )
}

/// The RFC 5424 frame: facility local0, severity from ours.
pub fn syslog_frame(line: &Value, hostname: &str) -> String {
    let sev = match line["statement"]["body"]["severity"]
        .as_str()
        .unwrap_or_default()
    {
        "critical" => 2,
        "high" => 3,
        "medium" => 4,
        "low" => 5,
        _ => 6,
    };
    let pri = 16 * 8 + sev;
    let ts = line["received_at"].as_str().unwrap_or("-");
    format!(
        "<{pri}>1 {ts} {hostname} isac-member-agent - indicator - {}",
        cef_message(line)
    )
}

impl SyslogTarget {
    pub async fn send(&self, line: &Value) -> Result<(), AgentError> {
        let frame = syslog_frame(line, "isac-agent");
        let fail = |m: String| AgentError::Invalid(format!("syslog {}: {m}", self.addr));
        if self.tcp {
            let mut s = tokio::time::timeout(
                Duration::from_secs(10),
                tokio::net::TcpStream::connect(&self.addr),
            )
            .await
            .map_err(|_| fail("connect timed out".into()))?
            .map_err(|e| fail(e.to_string()))?;
            // RFC 6587 octet counting: "LEN SP MSG".
            let framed = format!("{} {}", frame.len(), frame);
            s.write_all(framed.as_bytes())
                .await
                .map_err(|e| fail(e.to_string()))?;
            s.flush().await.map_err(|e| fail(e.to_string()))?;
        } else {
            let sock = tokio::net::UdpSocket::bind("0.0.0.0:0")
                .await
                .map_err(|e| fail(e.to_string()))?;
            sock.send_to(frame.as_bytes(), &self.addr)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        Ok(())
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
}
