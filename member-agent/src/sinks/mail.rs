//! Email sink: bulletins, and indicators at or above a severity, as plain
//! text mail over SMTP with STARTTLS (RFC 3207), through lettre's tokio
//! client with native-tls (OpenSSL on Linux). The connection is upgraded
//! to TLS before anything else is said (the server's certificate verified
//! against the system roots and `--sink-ca`, and its name or IP address);
//! a server that does not offer STARTTLS gets nothing. Optional AUTH
//! PLAIN, only inside TLS.
//!
//! Like the HTTP sinks, mail is sent before the item is committed: a server
//! that is down or answers 4xx holds the cursor; a 5xx answer to a message
//! (recipient or content refused) is a rejection for good, which the caller
//! dead-letters. Each message's `Message-ID` is derived from the statement
//! id and revision, so a resend after a crash can be recognised.

use std::time::{Duration, SystemTime};

use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Body, Mailbox, Message};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;
use openssl::x509::X509;
use serde_json::Value;

use super::{delivery_id, Rejection, Sent, Sink};
use crate::error::AgentError;

/// A mail sink as `agent.toml` and the flags name it.
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

/// The whole of one session (connect, STARTTLS, every message) gives up
/// after this long; so does each read or write.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// What we say in EHLO.
const HELLO: &str = "isac-member-agent";

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
    /// Whether this line is mailed: transparency-log alerts, bulletins,
    /// new indicators at or above the minimum severity, and the expiry or
    /// retraction of such an item (not sightings, nor retractions of what
    /// this agent does not hold: a retraction names no severity of its own,
    /// so it goes by the held item's, under `retracted`).
    pub fn wants(&self, line: &Value) -> bool {
        if line["action"] == "log-alert" {
            return true;
        }
        if line["action"] == "retract" {
            let t = &line["retracted"];
            return t["kind"] == "bulletin"
                || (t["kind"] != "sighting"
                    && t["kind"] != "retraction"
                    && self.at_least_minimum(&t["severity"]));
        }
        if line["action"] == "expire" {
            // The indicator lapsed: told like it was announced.
            return line["kind"] != "bulletin"
                && line["severity"]
                    .as_str()
                    .and_then(|s| s.parse::<isac_core::Severity>().ok())
                    .is_some_and(|s| s >= self.min_severity);
        }
        if line["action"] == "exposure.new" {
            // An application found exposed, by its indicator's severity.
            return line["indicator"]["severity"]
                .as_str()
                .and_then(|s| s.parse::<isac_core::Severity>().ok())
                .is_some_and(|s| s >= self.min_severity);
        }
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
        self.at_least_minimum(&line["statement"]["body"]["severity"])
    }

    fn at_least_minimum(&self, severity: &Value) -> bool {
        severity
            .as_str()
            .and_then(|s| s.parse::<isac_core::Severity>().ok())
            .is_some_and(|s| s >= self.min_severity)
    }
}

/// A mail sink ready to send: addresses parsed, TLS settings (roots and
/// the extra CA) built once, credentials.
pub struct Mailer {
    sink: MailSink,
    from: Mailbox,
    to: Vec<Mailbox>,
    tls: TlsParameters,
    credentials: Option<Credentials>,
}

fn mailbox(a: &str) -> Result<Mailbox, AgentError> {
    check_address(a)?;
    let address: Address = a
        .parse()
        .map_err(|e| AgentError::Usage(format!("`{a}` is not a mail address: {e}")))?;
    Ok(Mailbox::new(None, address))
}

impl Mailer {
    pub fn new(sink: MailSink) -> Result<Self, AgentError> {
        let tls_error = |e: lettre::transport::smtp::Error| {
            AgentError::Invalid(format!("smtp {}:{}: TLS: {e}", sink.host, sink.port))
        };
        let mut tls = TlsParameters::builder(sink.host.clone());
        if let Some(ca) = &sink.ca {
            tls = tls.add_root_certificate(Certificate::from_der(ca.to_der()?).map_err(tls_error)?);
        }
        Ok(Mailer {
            from: mailbox(&sink.from)?,
            to: sink
                .to
                .iter()
                .map(|t| mailbox(t))
                .collect::<Result<_, _>>()?,
            tls: tls.build().map_err(tls_error)?,
            credentials: sink
                .auth
                .as_ref()
                .map(|(user, password)| Credentials::new(user.clone(), password.clone())),
            sink,
        })
    }

    /// A session ready for messages: connected, upgraded to TLS, logged in.
    async fn session(&self) -> Result<AsyncSmtpConnection, String> {
        let hello = ClientId::Domain(HELLO.to_owned());
        let mut c = AsyncSmtpConnection::connect_tokio1(
            (self.sink.host.as_str(), self.sink.port),
            Some(IO_TIMEOUT),
            &hello,
            None,
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
        if !c.can_starttls() {
            let _ = c.quit().await;
            return Err("the server does not offer STARTTLS; nothing is sent in clear".to_owned());
        }
        c.starttls(self.tls.clone(), &hello)
            .await
            .map_err(|e| format!("STARTTLS: {e}"))?;
        if let Some(credentials) = &self.credentials {
            c.auth(&[Mechanism::Plain], credentials)
                .await
                .map_err(|e| format!("AUTH PLAIN: {e}"))?;
        }
        Ok(c)
    }

    /// Sends one message per line, over one session (a new one after the
    /// server refused a message, as lettre closes it then). Returns the
    /// lines the server refused for good (5xx), with its answer.
    async fn send_all(
        &self,
        lines: &[&Value],
    ) -> Result<Vec<(usize, lettre::transport::smtp::Error)>, AgentError> {
        let fail = |m: String| {
            AgentError::Invalid(format!("smtp {}:{}: {m}", self.sink.host, self.sink.port))
        };
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let session = async {
            let mut rejected = Vec::new();
            let mut conn: Option<AsyncSmtpConnection> = None;
            for (i, line) in lines.iter().enumerate() {
                let message = self
                    .message(line, crate::now())
                    .map_err(|e| format!("message: {e}"))?;
                if !matches!(&conn, Some(c) if !c.has_broken()) {
                    conn = Some(self.session().await?);
                }
                let c = conn.as_mut().expect("a session was just opened");
                match c.send(message.envelope(), &message.formatted()).await {
                    Ok(_) => {}
                    Err(e) if e.is_permanent() => rejected.push((i, e)),
                    Err(e) => return Err(e.to_string()),
                }
            }
            if let Some(mut c) = conn {
                let _ = c.quit().await;
            }
            Ok::<_, String>(rejected)
        };
        tokio::time::timeout(SESSION_TIMEOUT, session)
            .await
            .map_err(|_| fail("timed out".into()))?
            .map_err(fail)
    }

    /// The message for one of our JSON Lines records (`now`: Unix seconds,
    /// its `Date`): plain text, UTF-8, base64 (so no line of it can be a
    /// lone `.`).
    fn message(&self, line: &Value, now: i64) -> Result<Message, String> {
        let (subject, text) = subject_and_text(line);
        let mut m = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .date(SystemTime::UNIX_EPOCH + Duration::from_secs(now.max(0) as u64))
            .message_id(Some(format!(
                "<{}.{}{}@isac-member-agent>",
                line["id"].as_str().unwrap_or_default(),
                // An exposure event: its event number.
                if super::is_exposure(line) {
                    &line["event"]
                } else {
                    &line["revision"]
                },
                // The expiry notice is a message of its own.
                if line["action"] == "expire" {
                    ".expired"
                } else {
                    ""
                }
            )))
            .header(IsacTlp(
                line["tlp"].as_str().unwrap_or_default().to_uppercase(),
            ))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            m = m.to(to.clone());
        }
        let body = Body::new_with_encoding(text, ContentTransferEncoding::Base64)
            .map_err(|_| "cannot encode the body".to_owned())?;
        m.body(body).map_err(|e| e.to_string())
    }
}

impl Sink for Mailer {
    fn describe(&self) -> String {
        format!(
            "mail: {}:{} to {} recipient(s), {} and above",
            self.sink.host,
            self.sink.port,
            self.sink.to.len(),
            self.sink.min_severity.as_str()
        )
    }

    /// The lines it [wants](MailSink::wants), one message each; a message
    /// the server refuses (5xx) is rejected for good.
    fn send<'a>(&'a self, lines: &'a [Value]) -> Sent<'a> {
        Box::pin(async move {
            let wanted: Vec<usize> = (0..lines.len())
                .filter(|i| self.sink.wants(&lines[*i]))
                .collect();
            let messages: Vec<&Value> = wanted.iter().map(|i| &lines[*i]).collect();
            let refused = self.send_all(&messages).await?;
            let url = format!("smtp://{}:{}", self.sink.host, self.sink.port);
            Ok(refused
                .into_iter()
                .map(|(i, e)| {
                    let index = wanted[i];
                    Rejection {
                        sink: "mail",
                        url: url.clone(),
                        status: e.status().map_or(0, u16::from),
                        answer: e.to_string(),
                        delivery: delivery_id(&lines[index]),
                        index,
                    }
                })
                .collect())
        })
    }
}

/// `X-ISAC-TLP: AMBER`: the label, for mail filters.
#[derive(Clone)]
struct IsacTlp(String);

impl Header for IsacTlp {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-ISAC-TLP")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(IsacTlp(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// The subject (one line) and the plain text of a message for one of our
/// JSON Lines records.
fn subject_and_text(line: &Value) -> (String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let body_json = &line["statement"]["body"];
    let tlp = s(&line["tlp"]).to_uppercase();
    if super::is_exposure(line) {
        return exposure_subject_and_text(line, &tlp);
    }
    if line["action"] == "expire" {
        return expiry_subject_and_text(line, &tlp);
    }
    if line["action"] == "retract" {
        return retraction_subject_and_text(line, &tlp);
    }
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
    let one_line = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    (one_line, text)
}

/// An `expire` message: which indicator lapsed, and when.
fn expiry_subject_and_text(line: &Value, tlp: &str) -> (String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let subject: String = format!(
        "[TLP:{tlp}] expired: {} {} indicator: {}",
        s(&line["severity"]),
        s(&line["kind"]),
        s(&line["title"])
    )
    .chars()
    .map(|c| if c.is_control() { ' ' } else { c })
    .collect();
    let mut text = format!("TLP:{tlp}\n{}", tlp_handling(tlp));
    text.push_str(&format!(
        "This indicator is no longer in force: remove it from blocklists and watchlists.\n\n{}\n\nKind:        {}\nValue:       {}\nSeverity:    {}\nValid until: {}\n\nSource: {}\nId: {} revision {}\n",
        s(&line["title"]),
        s(&line["kind"]),
        s(&line["value"]),
        s(&line["severity"]),
        s(&line["valid_until"]),
        s(&line["source"]),
        s(&line["id"]),
        line["revision"],
    ));
    (subject, text)
}

/// A `retract` message: which held item its source withdrew, and why
/// (`retracted`: the item as held, see `super::retracted_fields`).
fn retraction_subject_and_text(line: &Value, tlp: &str) -> (String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let t = &line["retracted"];
    let bulletin = t["kind"] == "bulletin";
    let what = if bulletin {
        format!("ISAC bulletin ({})", s(&t["severity"]))
    } else {
        format!("{} {} indicator", s(&t["severity"]), s(&t["kind"]))
    };
    let subject: String = format!("[TLP:{tlp}] RETRACTED: {what}: {}", s(&t["title"]))
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut text = format!("TLP:{tlp}\n{}", tlp_handling(tlp));
    text.push_str(if bulletin {
        "Its source withdrew this bulletin.\n\n"
    } else {
        "Its source withdrew this indicator: remove it from blocklists and watchlists.\n\n"
    });
    text.push_str(&format!(
        "{}\n\nKind:        {}\nValue:       {}\nSeverity:    {}\nReason:      {}\nRetracted:   {} revision {}\n\nSource: {}\nId: {} revision {}\nReceived: {}\nSignature: {} (key {})\n",
        s(&t["title"]),
        s(&t["kind"]),
        s(&t["value"]),
        s(&t["severity"]),
        s(&line["statement"]["body"]["reason"]),
        s(&t["id"]),
        t["revision"],
        s(&line["source_name"]),
        s(&line["id"]),
        line["revision"],
        s(&line["received_at"]),
        s(&line["signature"]["status"]),
        s(&line["signature"]["key_id"]),
    ));
    (subject, text)
}

/// The handling line every message starts with after the label.
fn tlp_handling(tlp: &str) -> &'static str {
    match tlp {
        "CLEAR" => "Recipients may share this without restriction.\n\n",
        "GREEN" => "Recipients may share this within their community, not publicly.\n\n",
        "AMBER" => "Recipients may share this only within their organisation and its clients, on a need-to-know basis.\n\n",
        "AMBER+STRICT" => "Recipients may share this only within their organisation.\n\n",
        _ => "For the named recipients only. Do not share.\n\n",
    }
}

/// An `exposure.new` message: which application, component and path,
/// which indicator, and how to report it back.
fn exposure_subject_and_text(line: &Value, tlp: &str) -> (String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let i = &line["indicator"];
    let subject: String = format!(
        "[TLP:{tlp}] {} is exposed: {} ({})",
        s(&line["application"]),
        s(&line["component"]),
        s(&i["title"])
    )
    .chars()
    .map(|c| if c.is_control() { ' ' } else { c })
    .collect();
    let mut text = format!("TLP:{tlp}\n{}", tlp_handling(tlp));
    text.push_str(&format!(
        "Application: {}\nComponent:   {}\n",
        s(&line["application"]),
        s(&line["component"])
    ));
    if let Some(path) = line["path"].as_array() {
        let path: Vec<String> = path.iter().map(s).collect();
        text.push_str(&format!("Path:        {}\n", path.join(" > ")));
    }
    text.push_str(&format!(
        "Why:         {}\n\nIndicator:   {} ({})\nSeverity:    {}\nSource:      {}\nId:          {} revision {}\nSince:       {}\n\nReport it back as a sighting: member-agent exposure report {} {}\n",
        s(&line["why"]),
        s(&i["title"]),
        s(&i["value"]),
        s(&i["severity"]),
        s(&i["source"]),
        s(&i["id"]),
        i["revision"],
        s(&line["since"]),
        s(&line["application"]),
        s(&i["id"]),
    ));
    (subject, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_and_addresses() {
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
        let sink = MailSink {
            host: "h".into(),
            port: 1,
            from: "a@x.example".into(),
            to: vec!["b@y.example".into(), "c@y.example".into()],
            min_severity: isac_core::Severity::High,
            auth: None,
            ca: None,
        };
        let mailer = Mailer::new(sink.clone()).unwrap();
        let m =
            String::from_utf8(mailer.message(&line, 1_795_608_896).unwrap().formatted()).unwrap();
        // A non-ASCII word of the subject as an RFC 2047 encoded word.
        assert!(
            m.contains("Subject: [TLP:AMBER] critical network indicator: C2 =?utf-8?b?ZsO8cg==?="),
            "{m}"
        );
        assert!(m.contains("\r\nTo: b@y.example, c@y.example\r\n"), "{m}");
        assert!(
            m.contains("\r\nDate: Wed, 25 Nov 2026 12:14:56 +0000\r\n"),
            "{m}"
        );
        assert!(m.contains(
            "Message-ID: <6f1f2a8e-3b7c-4c1e-9d2a-5e6f7a8b9c0d.2@isac-member-agent>\r\n"
        ));
        assert!(m.contains("X-ISAC-TLP: AMBER\r\n"));
        assert!(m.contains("Content-Transfer-Encoding: base64\r\n"), "{m}");
        // No line of the message is a lone dot (it would end the data).
        assert!(!m.contains("\r\n.\r\n"));
        let (_, text) = subject_and_text(&line);
        assert!(text.starts_with("TLP:AMBER\n"), "{text}");
        assert!(text.contains("line one\n.\nline three"), "{text}");
        for bad in ["nobody", "a b@x.example"] {
            let mut s = sink.clone();
            s.to = vec![bad.into()];
            assert!(Mailer::new(s).is_err(), "{bad}");
        }
        assert!(sink.wants(&line));
        let mut low = line.clone();
        low["statement"]["body"]["severity"] = json!("medium");
        assert!(!sink.wants(&low));
        let mut retract = line.clone();
        retract["action"] = json!("retract");
        assert!(!sink.wants(&retract));
        let bulletin = json!({"action": "upsert", "statement": {"body": {"type": "bulletin", "severity": "low"}}});
        assert!(sink.wants(&bulletin));

        // An expiry of what it would mail is a notice of its own.
        let expire = json!({
            "action": "expire", "id": "6f1f2a8e-3b7c-4c1e-9d2a-5e6f7a8b9c0d", "revision": 2,
            "sequence": 4, "kind": "network", "value": "c2.evil.example", "title": "C2",
            "tlp": "amber", "severity": "critical", "source": "alice-bank",
            "valid_until": "2026-12-01T00:00:00Z"
        });
        assert!(sink.wants(&expire));
        let mut low_expire = expire.clone();
        low_expire["severity"] = json!("medium");
        assert!(!sink.wants(&low_expire));
        let m =
            String::from_utf8(mailer.message(&expire, 1_795_608_896).unwrap().formatted()).unwrap();
        assert!(
            m.contains("Subject: [TLP:AMBER] expired: critical network indicator: C2\r\n"),
            "{m}"
        );
        assert!(m.contains(
            "Message-ID: <6f1f2a8e-3b7c-4c1e-9d2a-5e6f7a8b9c0d.2.expired@isac-member-agent>\r\n"
        ));
        let (_, text) = subject_and_text(&expire);
        assert!(text.contains("no longer in force"), "{text}");
        assert!(text.contains("Valid until: 2026-12-01T00:00:00Z"), "{text}");
    }

    /// A retraction names no severity: it is mailed when the item it
    /// withdraws (as held, under `retracted`) would be.
    #[test]
    fn retractions_are_mailed_by_the_held_items_severity() {
        let sink = MailSink {
            host: "h".into(),
            port: 1,
            from: "a@x.example".into(),
            to: vec!["b@y.example".into()],
            min_severity: isac_core::Severity::High,
            auth: None,
            ca: None,
        };
        let held = |kind: &str, severity: &str| {
            json!({"id": "6f1f2a8e-3b7c-4c1e-9d2a-5e6f7a8b9c0d", "revision": 3, "kind": kind,
                   "value": "c2.evil.example", "title": "C2", "severity": severity,
                   "tlp": "green", "source": "alice-bank"})
        };
        let retract = |retracted: Option<Value>| {
            let mut line = json!({
                "action": "retract", "id": "0c0ffee0-3b7c-4c1e-9d2a-5e6f7a8b9c0d", "revision": 1,
                "tlp": "amber", "kind": "retraction", "title": "false positive",
                "source_name": "Alice Bank", "received_at": "2026-11-25T12:00:00Z",
                "signature": {"status": "verified", "key_id": "k"},
                "statement": {"body": {"type": "retraction", "reason": "false positive",
                    "target": "6f1f2a8e-3b7c-4c1e-9d2a-5e6f7a8b9c0d"}}
            });
            if let Some(r) = retracted {
                line["retracted"] = r;
            }
            line
        };
        // Not held: nothing to go by, not mailed.
        assert!(!sink.wants(&retract(None)));
        for (kind, severity, wanted) in [
            ("network", "critical", true),
            ("package", "high", true),
            ("network", "medium", false),
            ("network", "info", false),
            ("bulletin", "low", true),
            ("sighting", "critical", false),
            ("retraction", "critical", false),
            ("network", "", false),
        ] {
            assert_eq!(
                sink.wants(&retract(Some(held(kind, severity)))),
                wanted,
                "{kind} {severity}"
            );
        }
        let line = retract(Some(held("network", "critical")));
        let mailer = Mailer::new(sink).unwrap();
        let m =
            String::from_utf8(mailer.message(&line, 1_795_608_896).unwrap().formatted()).unwrap();
        assert!(
            m.contains("Subject: [TLP:AMBER] RETRACTED: critical network indicator: C2\r\n"),
            "{m}"
        );
        assert!(m.contains(
            "Message-ID: <0c0ffee0-3b7c-4c1e-9d2a-5e6f7a8b9c0d.1@isac-member-agent>\r\n"
        ));
        let (_, text) = subject_and_text(&line);
        assert!(text.starts_with("TLP:AMBER\n"), "{text}");
        assert!(
            text.contains("remove it from blocklists and watchlists"),
            "{text}"
        );
        assert!(text.contains("Reason:      false positive\n"), "{text}");
        assert!(
            text.contains("Retracted:   6f1f2a8e-3b7c-4c1e-9d2a-5e6f7a8b9c0d revision 3\n"),
            "{text}"
        );
        // The held title is outside text: it cannot add a header line.
        let mut sneaky = line.clone();
        sneaky["retracted"]["title"] = json!("C2\r\nBcc: x@evil.example");
        let (subject, _) = subject_and_text(&sneaky);
        assert!(!subject.contains(['\r', '\n']), "{subject}");
        let (subject, text) = subject_and_text(&retract(Some(held("bulletin", "low"))));
        assert!(
            subject.starts_with("[TLP:AMBER] RETRACTED: ISAC bulletin (low): C2"),
            "{subject}"
        );
        assert!(text.contains("withdrew this bulletin"), "{text}");
    }
}
