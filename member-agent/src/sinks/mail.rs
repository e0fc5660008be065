//! Email sink: bulletins, and indicators at or above a severity, as plain
//! text mail over SMTP with STARTTLS (RFC 3207), written over tokio and
//! OpenSSL. The connection is upgraded to TLS before anything else is said
//! (the server's certificate verified against the system roots and
//! `--sink-ca`, and its name or IP address); a server that does not offer
//! STARTTLS gets nothing. Optional AUTH PLAIN, only inside TLS.
//!
//! Like the HTTP sinks, mail is sent before the item is committed: a server
//! that is down or answers 4xx holds the cursor; a 5xx answer to a message
//! (recipient or content refused) is a rejection for good, which the caller
//! dead-letters. Each message's `Message-ID` is derived from the statement
//! id and revision, so a resend after a crash can be recognised.

use std::time::Duration;

use base64::Engine;
use openssl::x509::X509;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{delivery_id, Rejection, Sent, Sink};
use crate::error::AgentError;

#[derive(Debug, Clone)]
pub struct MailSink {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub to: Vec<String>,
    /// Indicators at or above this severity are mailed (bulletins always).
    pub min_severity: isac_core::Severity,
    /// AUTH PLAIN (user, password), sent only inside TLS.
    pub auth: Option<(String, String)>,
    /// Extra CA trusted for the server (`--sink-ca`).
    pub ca: Option<X509>,
}

/// `smtp://HOST[:PORT]` (port 587 by default).
pub fn parse_smtp_url(s: &str) -> Result<(String, u16), AgentError> {
    let bad = || {
        AgentError::Usage(format!(
            "`{s}`: use smtp://HOST[:PORT] (STARTTLS is required)"
        ))
    };
    let rest = s.strip_prefix("smtp://").ok_or_else(bad)?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '@', ' ']) {
        return Err(bad());
    }
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !h.is_empty() => {
            Ok((h.to_owned(), p.parse().map_err(|_| bad())?))
        }
        _ => Ok((rest.to_owned(), 587)),
    }
}

/// A mail address as given on the command line: `local@domain`, no
/// whitespace, angle brackets or line breaks.
pub fn check_address(a: &str) -> Result<(), AgentError> {
    let ok = a.len() <= 254
        && a.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'));
    if ok {
        Ok(())
    } else {
        Err(AgentError::Usage(format!("`{a}` is not a mail address")))
    }
}

impl MailSink {
    /// Whether this line is mailed: bulletins, and new indicators at or
    /// above the minimum severity (not retractions, sightings or expiries).
    pub fn wants(&self, line: &Value) -> bool {
        if line["action"] != "upsert" {
            return false;
        }
        if line["bulletin"] == true
            || line["kind"] == "bulletin"
            || line["statement"]["body"]["type"] == "bulletin"
        {
            return true;
        }
        if line["statement"]["body"]["type"] != "indicator" {
            return false;
        }
        line["statement"]["body"]["severity"]
            .as_str()
            .and_then(|s| s.parse::<isac_core::Severity>().ok())
            .is_some_and(|s| s >= self.min_severity)
    }

    /// Sends one message per line over one session. Returns the indices of
    /// lines the server refused for good, with its answer.
    pub async fn send_all(&self, lines: &[&Value]) -> Result<Vec<(usize, String)>, AgentError> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let fail =
            |m: String| AgentError::Invalid(format!("smtp {}:{}: {m}", self.host, self.port));
        let session = async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| e.to_string())?;
            let mut plain = Conn::new(tcp);
            plain.expect(220).await?;
            plain
                .command("EHLO isac-member-agent", 250)
                .await
                .and_then(|ehlo| {
                    if ehlo.lines().any(|l| {
                        l.get(4..)
                            .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
                    }) {
                        Ok(())
                    } else {
                        Err(
                            "the server does not offer STARTTLS; nothing is sent in clear"
                                .to_owned(),
                        )
                    }
                })?;
            plain.command("STARTTLS", 220).await?;
            let tls =
                super::syslog::tls_connect(plain.stream, &self.host, self.ca.as_ref()).await?;
            let mut c = Conn::new(tls);
            c.command("EHLO isac-member-agent", 250).await?;
            if let Some((user, password)) = &self.auth {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("\0{user}\0{password}"));
                c.command(&format!("AUTH PLAIN {token}"), 235).await?;
            }
            let mut rejected = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                if let Err(answer) = self.transaction(&mut c, line).await? {
                    rejected.push((i, answer));
                    // Start the next message from a clean state.
                    c.command("RSET", 250).await?;
                }
            }
            let _ = c.command("QUIT", 221).await;
            Ok::<_, String>(rejected)
        };
        tokio::time::timeout(Duration::from_secs(60), session)
            .await
            .map_err(|_| fail("timed out".into()))?
            .map_err(fail)
    }

    /// One message. The outer error is a session problem (transient); the
    /// inner one a 5xx refusal of this message.
    async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        c: &mut Conn<S>,
        line: &Value,
    ) -> Result<Result<(), String>, String> {
        let steps = std::iter::once(format!("MAIL FROM:<{}>", self.from))
            .chain(self.to.iter().map(|t| format!("RCPT TO:<{t}>")))
            .chain(std::iter::once("DATA".to_owned()));
        for cmd in steps {
            let want = if cmd == "DATA" { 354 } else { 250 };
            match c.command_code(&cmd).await? {
                (code, _) if code == want || (want == 250 && code == 251) => {}
                (code, text) if code >= 500 => return Ok(Err(format!("{cmd}: {text}"))),
                (_, text) => return Err(format!("{cmd}: {text}")),
            }
        }
        let message = compose(
            &self.from,
            &self.to,
            line,
            isac_core::time::format_rfc3339(crate::now()),
        );
        c.write(&message).await?;
        match c.command_code(".").await? {
            (250, _) => Ok(Ok(())),
            (code, text) if code >= 500 => Ok(Err(format!("DATA: {text}"))),
            (_, text) => Err(format!("DATA: {text}")),
        }
    }
}

impl Sink for MailSink {
    fn describe(&self) -> String {
        format!(
            "mail: {}:{} to {} recipient(s), {} and above",
            self.host,
            self.port,
            self.to.len(),
            self.min_severity.as_str()
        )
    }

    /// The lines it [wants](MailSink::wants), one message each; a message
    /// the server refuses (5xx) is rejected for good.
    fn send<'a>(&'a self, lines: &'a [Value]) -> Sent<'a> {
        Box::pin(async move {
            let wanted: Vec<usize> = (0..lines.len())
                .filter(|i| self.wants(&lines[*i]))
                .collect();
            let messages: Vec<&Value> = wanted.iter().map(|i| &lines[*i]).collect();
            let refused = self.send_all(&messages).await?;
            let url = format!("smtp://{}:{}", self.host, self.port);
            Ok(refused
                .into_iter()
                .map(|(i, answer)| {
                    let index = wanted[i];
                    Rejection {
                        sink: "mail",
                        url: url.clone(),
                        status: reply_code(&answer),
                        delivery: delivery_id(&lines[index]),
                        answer,
                        index,
                    }
                })
                .collect())
        })
    }
}

/// The reply code in a refusal: "RCPT TO:<x>: 550 ..." -> 550 (0 if none).
fn reply_code(answer: &str) -> u16 {
    answer
        .rsplit_once(">: ")
        .or_else(|| answer.split_once(": "))
        .and_then(|(_, t)| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Reads SMTP replies and writes commands on one stream.
struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| e.to_string())?;
        self.stream.flush().await.map_err(|e| e.to_string())
    }

    /// One reply (all its lines): the code and the text.
    async fn reply(&mut self) -> Result<(u16, String), String> {
        let mut lines = Vec::new();
        loop {
            let line = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                    break String::from_utf8_lossy(&line[..i]).into_owned();
                }
                if self.buf.len() > 64 * 1024 {
                    return Err("reply line too long".into());
                }
                let mut chunk = [0u8; 4096];
                let n = self
                    .stream
                    .read(&mut chunk)
                    .await
                    .map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed".into());
                }
                self.buf.extend_from_slice(&chunk[..n]);
            };
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("not an SMTP reply: `{line}`"))?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return Ok((code, lines.join("\n")));
            }
        }
    }

    async fn expect(&mut self, want: u16) -> Result<String, String> {
        match self.reply().await? {
            (code, text) if code == want => Ok(text),
            (_, text) => Err(text),
        }
    }

    async fn command_code(&mut self, cmd: &str) -> Result<(u16, String), String> {
        self.write(format!("{cmd}\r\n").as_bytes()).await?;
        self.reply().await
    }

    async fn command(&mut self, cmd: &str, want: u16) -> Result<String, String> {
        self.write(format!("{cmd}\r\n").as_bytes()).await?;
        let shown = if cmd.starts_with("AUTH") {
            "AUTH PLAIN …"
        } else {
            cmd
        };
        self.expect(want).await.map_err(|e| format!("{shown}: {e}"))
    }
}

/// RFC 2047 encoded word when `s` is not plain ASCII.
fn header_text(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.is_ascii() {
        one_line
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(one_line)
        )
    }
}

/// RFC 5322 date (`Wed, 25 Nov 2026 12:00:00 +0000`) from RFC 3339 UTC.
fn mail_date(rfc3339: &str) -> String {
    let secs = isac_core::time::parse_rfc3339(rfc3339).unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // `2026-11-25T12:00:00Z`
    let (y, m, d) = (&rfc3339[0..4], &rfc3339[5..7], &rfc3339[8..10]);
    let m: usize = m.parse().unwrap_or(1);
    format!(
        "{weekday}, {} {} {y} {:02}:{:02}:{:02} +0000",
        d.trim_start_matches('0'),
        month[m.clamp(1, 12) - 1],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The message for one of our JSON Lines records: headers and a plain
/// text body (base64, UTF-8, so no line of it can be a lone `.`), without
/// the end-of-data line.
pub fn compose(from: &str, to: &[String], line: &Value, now: String) -> Vec<u8> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let body_json = &line["statement"]["body"];
    let tlp = s(&line["tlp"]).to_uppercase();
    let bulletin = body_json["type"] == "bulletin";
    let severity = s(&body_json["severity"]);
    let subject = if bulletin {
        format!(
            "[TLP:{tlp}] ISAC bulletin ({severity}): {}",
            s(&line["title"])
        )
    } else {
        format!(
            "[TLP:{tlp}] {severity} {} indicator: {}",
            s(&line["kind"]),
            s(&line["title"])
        )
    };
    let mut text = String::new();
    text.push_str(&format!("TLP:{tlp}\n"));
    text.push_str(match tlp.as_str() {
        "CLEAR" => "Recipients may share this without restriction.\n\n",
        "GREEN" => "Recipients may share this within their community, not publicly.\n\n",
        "AMBER" => "Recipients may share this only within their organisation and its clients, on a need-to-know basis.\n\n",
        "AMBER+STRICT" => "Recipients may share this only within their organisation.\n\n",
        _ => "For the named recipients only. Do not share.\n\n",
    });
    text.push_str(&format!("{}\n\n", s(&line["title"])));
    if bulletin {
        text.push_str(&format!("{}\n\n", s(&body_json["body"])));
        if let Some(inc) = body_json["incident_id"].as_str() {
            text.push_str(&format!("Incident: {inc}\n"));
        }
    } else {
        text.push_str(&format!("Kind:       {}\n", s(&line["kind"])));
        text.push_str(&format!("Value:      {}\n", s(&line["value"])));
        text.push_str(&format!("Severity:   {severity}\n"));
        text.push_str(&format!("Confidence: {}\n", body_json["confidence"]));
        let description = s(&body_json["description"]);
        if !description.is_empty() {
            text.push_str(&format!("\n{description}\n"));
        }
        for r in body_json["references"].as_array().into_iter().flatten() {
            text.push_str(&format!("Reference:  {}\n", s(r)));
        }
    }
    text.push_str(&format!(
        "\nSource: {}\nId: {} revision {}\nReceived: {}\nSignature: {} (key {})\n",
        s(&line["source_name"]),
        s(&line["id"]),
        line["revision"],
        s(&line["received_at"]),
        s(&line["signature"]["status"]),
        s(&line["signature"]["key_id"]),
    ));
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut out = String::new();
    out.push_str(&format!("From: {from}\r\n"));
    out.push_str(&format!("To: {}\r\n", to.join(", ")));
    out.push_str(&format!("Subject: {}\r\n", header_text(&subject)));
    out.push_str(&format!("Date: {}\r\n", mail_date(&now)));
    out.push_str(&format!(
        "Message-ID: <{}.{}@isac-member-agent>\r\n",
        s(&line["id"]),
        line["revision"]
    ));
    out.push_str(&format!("X-ISAC-TLP: {tlp}\r\n"));
    out.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_addresses_and_dates() {
        assert_eq!(
            parse_smtp_url("smtp://mail.example:2525").unwrap(),
            ("mail.example".into(), 2525)
        );
        assert_eq!(
            parse_smtp_url("smtp://mail.example").unwrap(),
            ("mail.example".into(), 587)
        );
        assert!(parse_smtp_url("smtps://mail.example").is_err());
        assert!(parse_smtp_url("smtp://u@mail.example").is_err());
        assert!(check_address("soc@bank.example").is_ok());
        for bad in ["soc", "a b@x", "<a@b>", "a@b\r\nRCPT TO:<x@y>", "a@"] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
        assert_eq!(
            mail_date("2026-11-25T12:34:56Z"),
            "Wed, 25 Nov 2026 12:34:56 +0000"
        );
        assert_eq!(
            mail_date("1970-01-01T00:00:00Z"),
            "Thu, 1 Jan 1970 00:00:00 +0000"
        );
    }

    #[test]
    fn messages_carry_tlp_and_a_stable_id() {
        let line = json!({
            "action": "upsert", "id": "6f1f2a8e-3b7c-4c1e-9d2a-5e6f7a8b9c0d", "revision": 2,
            "tlp": "amber", "kind": "network", "value": "c2.evil.example", "title": "C2 für Banken",
            "source_name": "Alice Bank", "received_at": "2026-11-25T12:00:00Z",
            "signature": {"status": "verified", "key_id": "k"},
            "statement": {"body": {"type": "indicator", "severity": "critical", "confidence": 90,
                "description": "line one\n.\nline three", "references": []}}
        });
        let m = String::from_utf8(compose(
            "a@x",
            &["b@y".into()],
            &line,
            "2026-11-25T12:00:01Z".into(),
        ))
        .unwrap();
        assert!(m.contains("Subject: =?UTF-8?B?"), "{m}");
        assert!(m.contains(
            "Message-ID: <6f1f2a8e-3b7c-4c1e-9d2a-5e6f7a8b9c0d.2@isac-member-agent>\r\n"
        ));
        assert!(m.contains("X-ISAC-TLP: AMBER\r\n"));
        assert!(m.ends_with("\r\n"));
        // No line of the message is a lone dot (it would end the data).
        assert!(!m.contains("\r\n.\r\n"));
        let sink = MailSink {
            host: "h".into(),
            port: 1,
            from: "a@x".into(),
            to: vec!["b@y".into()],
            min_severity: isac_core::Severity::High,
            auth: None,
            ca: None,
        };
        assert!(sink.wants(&line));
        let mut low = line.clone();
        low["statement"]["body"]["severity"] = json!("medium");
        assert!(!sink.wants(&low));
        let mut retract = line.clone();
        retract["action"] = json!("retract");
        assert!(!sink.wants(&retract));
        let bulletin = json!({"action": "upsert", "statement": {"body": {"type": "bulletin", "severity": "low"}}});
        assert!(sink.wants(&bulletin));
    }
}
