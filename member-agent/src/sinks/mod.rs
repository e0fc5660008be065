//! Where verified items go besides the local store: a [`Sink`] per
//! receiver, and the [`Sinks`] set that `sync` and `run` hand them to.
//!
//! A sink takes part in one of two phases of an item's delivery:
//! - **send before commit** (`send`): HTTP receivers, syslog, mail. New
//!   items go out before they are stored; a failure fails the sync, so
//!   nothing is committed, the cursor holds and the items come again. An
//!   item a receiver rejects for good is set aside in the dead-letter file
//!   (or, without one, fails the sync the same way).
//! - **write inside commit** (`write`): the JSON Lines file and the STIX
//!   bundle directory, written inside the item's store transaction, so an
//!   item is in the file exactly when it is stored (the JSON Lines sink
//!   recognises, on reopening, a line whose commit a crash cut off).
//!
//! Exposure events (`exposure.new`, `exposure.cleared`: a watched
//! application's component and an indicator, see `crate::watch`) go the
//! same two ways: `send` takes their lines beside items' (each sender
//! tells them by `action`), and the writers' `write_exposure` runs inside
//! the transaction that records them. An exposure carries its indicator's
//! TLP and is exported under the same rule.
//!
//! [`SinkSettings`] is what `agent.toml` and the flags say; [`Sinks::open`]
//! builds the set from it once.

pub mod http;
pub mod jsonl;
pub mod mail;
pub mod stix;
pub mod syslog;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;

use isac_core::VerifiedStatement;
use serde_json::{json, Value};

use crate::error::{io_err, AgentError};
use crate::localstore::ItemSummary;

/// One new item as the sinks receive it.
#[derive(Clone, Copy)]
pub struct Received<'a> {
    /// Its place in this agent's local order.
    pub sequence: u64,
    pub received_at: &'a str,
    pub verified: &'a VerifiedStatement,
    /// The signing key's organisation name, from the key directory.
    pub signer_org_name: &'a str,
    /// Its effective expiry (RFC 3339): the signed `valid_until`, else the
    /// hub-wide default lifetime of its kind (`isac_core::lifetime`).
    pub valid_until: Option<&'a str>,
    /// For a federated item (issue 20): where it comes from and the hubs
    /// it went through, verified.
    pub provenance: Option<&'a isac_core::federation::Provenance>,
    /// For a retraction: the item it withdraws as this agent holds it
    /// (newest revision), if it holds it. Its record then names it under
    /// `retracted` (the retraction itself carries no severity or title of
    /// the item; mail tells of a retraction only of what it would mail).
    pub retracted: Option<&'a ItemSummary>,
}

impl Received<'_> {
    /// The JSON record of this item, as every sink receives it.
    pub fn line(&self) -> Value {
        let mut line = line_for(
            self.sequence,
            self.received_at,
            self.verified,
            self.signer_org_name,
        );
        if let Some(until) = self.valid_until {
            line["valid_until"] = json!(until);
        }
        if let Some(p) = self.provenance {
            line["provenance"] = provenance_fields(p, &self.verified.statement);
        }
        if let Some(t) = self.retracted {
            line["retracted"] = retracted_fields(t);
        }
        line
    }
}

/// A retraction record's `retracted` object: the withdrawn item as held.
/// A retraction is never labelled less strictly than its target (the hub
/// refuses it otherwise), so it may carry what the target said.
pub fn retracted_fields(t: &ItemSummary) -> Value {
    json!({
        "id": t.id,
        "revision": t.revision,
        "kind": t.kind,
        "value": t.value,
        "title": t.title,
        "severity": t.severity,
        "tlp": t.tlp,
        "source": t.source,
    })
}

/// A held item whose effective expiry has passed: every sink removes it
/// in its own idiom, as for a retraction (JSON Lines, webhook and HEC an
/// `action: expire` record, Elasticsearch a delete, syslog a CEF event
/// with `act=expire`, STIX the indicator at its `valid_until`, mail a
/// notice). A later revision brings it back as an `upsert`.
#[derive(Clone, Copy)]
pub struct Lapsed<'a> {
    pub summary: &'a ItemSummary,
    /// Its effective expiry (RFC 3339).
    pub valid_until: &'a str,
    /// The item as held (what a writer rebuilds its record from).
    pub item: Received<'a>,
}

impl Lapsed<'_> {
    /// Its `action: expire` record.
    pub fn line(&self) -> Value {
        jsonl::expire_line(self.summary, self.valid_until)
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

/// What a send-before-commit phase comes to: the lines rejected for good;
/// an error if the receiver could not be reached (the cursor holds).
pub type Sent<'a> = Pin<Box<dyn Future<Output = Result<Vec<Rejection>, AgentError>> + Send + 'a>>;

/// One receiver of verified items. A sink implements the phase it takes
/// part in (see the module comment); the other phase's methods do nothing.
pub trait Sink: Send + Sync {
    /// For the console's status page: the kind and where (never a secret).
    fn describe(&self) -> String;

    /// Send before commit: new items (`lines`: their JSON records, upsert
    /// or retract), several at once where the receiver takes batches.
    fn send<'a>(&'a self, lines: &'a [Value]) -> Sent<'a> {
        let _ = lines;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Send before commit: an item expired (`line`: its `action: expire`
    /// record). Senders take it like any record by default.
    fn send_expired<'a>(&'a self, line: &'a Value) -> Sent<'a> {
        self.send(std::slice::from_ref(line))
    }

    /// Write inside commit: a new item. An error rolls the item back.
    fn write(&mut self, item: &Received<'_>) -> Result<(), AgentError> {
        let _ = item;
        Ok(())
    }

    /// Write inside commit: an item expired.
    fn write_expired(&mut self, item: &Lapsed<'_>) -> Result<(), AgentError> {
        let _ = item;
        Ok(())
    }

    /// A transparency-log alert (`action: log-alert`, see `crate::tlog`):
    /// senders get it like an item by default, writers write nothing
    /// unless they say how.
    fn send_alert<'a>(&'a self, line: &'a Value) -> Sent<'a> {
        self.send(std::slice::from_ref(line))
    }

    fn write_alert(&mut self, line: &Value) -> Result<(), AgentError> {
        let _ = line;
        Ok(())
    }

    /// Write inside commit: an exposure event (`line`: its record).
    fn write_exposure(&mut self, line: &Value) -> Result<(), AgentError> {
        let _ = line;
        Ok(())
    }
}

/// Every sink named by `agent.toml` and the flags, before any is opened.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// The JSON Lines file (stdout without one).
    pub jsonl: Option<PathBuf>,
    /// Rotate the JSON Lines file past this many bytes, keeping this many
    /// old files.
    pub jsonl_rotate: Option<(u64, u32)>,
    /// One STIX 2.1 bundle file per item in this directory.
    pub stix_dir: Option<PathBuf>,
    /// Write TLP:RED items too (off by default: RED stays in the agent's store).
    pub export_red: bool,
    /// Webhook, Splunk HEC and Elasticsearch receivers.
    pub http: Vec<http::HttpSink>,
    /// Extra CA trusted for https receivers (besides the system roots).
    pub http_ca: Option<openssl::x509::X509>,
    /// How long and how fast HTTP receivers that are down are retried.
    pub http_retry: http::Retry,
    /// Most events in one Splunk HEC request.
    pub hec_batch: usize,
    /// Syslog (RFC 5424, CEF payload) receivers.
    pub syslog: Vec<syslog::SyslogTarget>,
    /// Mail (SMTP with STARTTLS) for bulletins and severe indicators.
    pub mail: Option<mail::MailSink>,
    /// Where items a receiver rejects for good are set aside, one JSON
    /// object a line; without it such a rejection fails the sync and holds
    /// the cursor.
    pub dead_letter: Option<PathBuf>,
}

impl Default for SinkSettings {
    fn default() -> Self {
        SinkSettings {
            jsonl: None,
            jsonl_rotate: None,
            stix_dir: None,
            export_red: false,
            http: Vec::new(),
            http_ca: None,
            http_retry: http::Retry::default(),
            hec_batch: 100,
            syslog: Vec::new(),
            mail: None,
            dead_letter: None,
        }
    }
}

impl SinkSettings {
    /// Only the JSON Lines sink, to `path` (stdout without one).
    pub fn jsonl(path: Option<&std::path::Path>) -> Self {
        SinkSettings {
            jsonl: path.map(ToOwned::to_owned),
            ..SinkSettings::default()
        }
    }
}

/// The sinks of one `sync` or `run`, in the order they are handed items:
/// the writers (JSON Lines, STIX) inside each commit, the senders (HTTP
/// receivers, syslog, mail) before it.
pub struct Sinks {
    export_red: bool,
    writers: Vec<Box<dyn Sink>>,
    senders: Vec<Box<dyn Sink>>,
    dead_letter: Option<PathBuf>,
}

impl Sinks {
    /// Opens every sink `settings` names (the JSON Lines file, and the
    /// clients of HTTP receivers, whose TLS settings are built here once).
    pub fn open(settings: SinkSettings) -> Result<Self, AgentError> {
        let mut jsonl = jsonl::JsonlSink::open(settings.jsonl.as_deref())?;
        if let Some((max, keep)) = settings.jsonl_rotate {
            jsonl.rotate_at(max, keep);
        }
        // The JSON Lines sink writes last: it alone remembers what it wrote
        // (a bundle is rewritten whole when an item comes again), so a
        // failure of another writer never leaves it a line to repeat.
        let mut writers: Vec<Box<dyn Sink>> = Vec::new();
        if let Some(dir) = settings.stix_dir {
            writers.push(Box::new(stix::StixDir::new(dir)));
        }
        writers.push(Box::new(jsonl));
        let mut senders: Vec<Box<dyn Sink>> = Vec::new();
        let opts = http::HttpOptions {
            ca: settings.http_ca.clone(),
            retry: settings.http_retry,
            hec_batch: settings.hec_batch,
        };
        for h in &settings.http {
            senders.push(Box::new(http::HttpReceiver::new(h, opts.clone())?));
        }
        for s in settings.syslog {
            senders.push(Box::new(s));
        }
        if let Some(m) = settings.mail {
            senders.push(Box::new(mail::Mailer::new(m)?));
        }
        Ok(Sinks {
            export_red: settings.export_red,
            writers,
            senders,
            dead_letter: settings.dead_letter,
        })
    }

    /// Only the JSON Lines sink, to `path` (stdout without one).
    pub fn jsonl(path: Option<&std::path::Path>) -> Result<Self, AgentError> {
        Sinks::open(SinkSettings::jsonl(path))
    }

    /// Adds a writer called last inside each item's commit. For embedding
    /// the agent's receive path (`isac-bench` times verified-and-stored
    /// with one); a writer that never fails changes nothing of the
    /// ordering argument in [`Sinks::open`].
    pub fn add_writer(&mut self, sink: Box<dyn Sink>) {
        self.writers.push(sink);
    }

    /// One line per sink for the console's status page, the JSON Lines
    /// file first (never a token or secret).
    pub fn describe(&self) -> Vec<String> {
        // Listed the other way round from how they write.
        let mut out: Vec<String> = self.writers.iter().rev().map(|s| s.describe()).collect();
        out.extend(self.senders.iter().map(|s| s.describe()));
        if let Some(d) = &self.dead_letter {
            out.push(format!("dead letters: {}", d.display()));
        }
        if self.export_red {
            out.push("TLP:RED is exported to the sinks".to_owned());
        }
        out
    }

    fn exported(&self, tlp: isac_core::Tlp) -> bool {
        isac_core::tlp::may_export_to_sink(tlp, self.export_red)
    }

    /// Send before commit: new items to every sender, in order. An item a
    /// receiver rejects for good goes to the dead-letter file; without
    /// one, that fails. Any other failure fails.
    pub async fn send(&self, items: &[Received<'_>]) -> Result<(), AgentError> {
        if self.senders.is_empty() {
            return Ok(());
        }
        let lines: Vec<Value> = items
            .iter()
            .filter(|r| self.exported(r.verified.statement.tlp))
            .map(Received::line)
            .collect();
        if lines.is_empty() {
            return Ok(());
        }
        for sink in &self.senders {
            let rejected = sink.send(&lines).await?;
            self.set_aside(&lines, rejected)?;
        }
        Ok(())
    }

    /// Send before commit: an item expired (webhook and Splunk HEC get an
    /// `action: expire` event, Elasticsearch deletes the document, syslog
    /// a CEF `act=expire` event, mail a notice for what it would mail).
    pub async fn send_expired(&self, item: &Lapsed<'_>) -> Result<(), AgentError> {
        if self.senders.is_empty() || (item.summary.tlp == "red" && !self.export_red) {
            return Ok(());
        }
        let line = [item.line()];
        for sink in &self.senders {
            let rejected = sink.send_expired(&line[0]).await?;
            self.set_aside(&line, rejected)?;
        }
        Ok(())
    }

    /// Send before commit: exposure events (their records, see
    /// `crate::watch::Exposure::line`) to every sender, under their
    /// indicator's TLP.
    pub async fn send_exposures(&self, lines: &[Value]) -> Result<(), AgentError> {
        if self.senders.is_empty() {
            return Ok(());
        }
        let lines: Vec<Value> = lines
            .iter()
            .filter(|l| self.exposure_exported(l))
            .cloned()
            .collect();
        if lines.is_empty() {
            return Ok(());
        }
        for sink in &self.senders {
            let rejected = sink.send(&lines).await?;
            self.set_aside(&lines, rejected)?;
        }
        Ok(())
    }

    /// Write inside commit: exposure events to every writer.
    pub fn write_exposures(&mut self, lines: &[Value]) -> Result<(), AgentError> {
        for line in lines {
            if !self.exposure_exported(line) {
                continue;
            }
            for sink in &mut self.writers {
                sink.write_exposure(line)?;
            }
        }
        Ok(())
    }

    /// An exposure is exported as its indicator would be; a label we
    /// cannot read is not exported (fail closed).
    fn exposure_exported(&self, line: &Value) -> bool {
        line["tlp"]
            .as_str()
            .and_then(|t| t.parse::<isac_core::Tlp>().ok())
            .is_some_and(|t| self.exported(t))
    }

    /// Write inside commit: a new item to every writer.
    pub fn write(&mut self, item: &Received<'_>) -> Result<(), AgentError> {
        let s = &item.verified.statement;
        if !self.exported(s.tlp) {
            tracing::info!(id = %s.id, "TLP:RED item kept in the local store only (RED export is off)");
            return Ok(());
        }
        for sink in &mut self.writers {
            sink.write(item)?;
        }
        Ok(())
    }

    /// Write inside commit: an item expired.
    pub fn write_expired(&mut self, item: &Lapsed<'_>) -> Result<(), AgentError> {
        if item.summary.tlp == "red" && !self.export_red {
            return Ok(());
        }
        for sink in &mut self.writers {
            sink.write_expired(item)?;
        }
        Ok(())
    }

    /// A transparency-log alert to every sink. Best effort, each sink on
    /// its own: the alert is already persisted, and a receiver that is down
    /// must not keep it from the others.
    pub async fn alert(&mut self, line: &Value) {
        for sink in &self.senders {
            if let Err(e) = sink.send_alert(line).await {
                tracing::warn!(sink = %sink.describe(), error = %e, "log alert not delivered");
                eprintln!("warning: {}: log alert not delivered: {e}", sink.describe());
            }
        }
        for sink in &mut self.writers {
            if let Err(e) = sink.write_alert(line) {
                eprintln!("warning: {}: log alert not written: {e}", sink.describe());
            }
        }
    }

    /// Writes lines a receiver rejected for good to the dead-letter file
    /// (synced), or fails when there is none.
    fn set_aside(&self, lines: &[Value], rejected: Vec<Rejection>) -> Result<(), AgentError> {
        let Some(first) = rejected.first() else {
            return Ok(());
        };
        let Some(path) = &self.dead_letter else {
            return Err(AgentError::Invalid(format!(
                "{} {} rejected {} ({} {}); nothing is committed until it is delivered or set aside with --dead-letter FILE",
                first.sink, first.url, first.delivery, first.status, first.answer
            )));
        };
        let mut text = String::new();
        for r in &rejected {
            tracing::warn!(sink = r.sink, delivery = %r.delivery, status = r.status, "rejected for good; dead-lettered");
            text.push_str(
                &serde_json::to_string(&json!({
                    "at": isac_core::time::format_rfc3339(crate::now()),
                    "sink": r.sink,
                    "url": r.url,
                    "status": r.status,
                    "answer": r.answer,
                    "delivery": r.delivery,
                    "item": lines[r.index],
                }))
                .map_err(|e| AgentError::Invalid(e.to_string()))?,
            );
            text.push('\n');
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io_err(path))?;
        eprintln!(
            "warning: {} rejected {} item(s) for good; set aside in {}",
            first.sink,
            rejected.len(),
            path.display()
        );
        Ok(())
    }
}

/// The JSON record of one verified item, as every sink receives it.
pub fn line_for(
    sequence: u64,
    received_at: &str,
    verified: &VerifiedStatement,
    signer_org_name: &str,
) -> Value {
    let s = &verified.statement;
    let statement: Value = serde_json::from_slice(&s.canonical_bytes()).unwrap_or(Value::Null);
    json!({
        "action": action(s),
        "id": s.id,
        "revision": s.revision,
        "sequence": sequence,
        "tlp": s.tlp.as_str(),
        "tlp_marking": s.tlp.stix_marking_id(),
        "tlp_strict": s.tlp == isac_core::Tlp::AmberStrict,
        "kind": s.kind(),
        "value": s.primary_value(),
        "title": s.title(),
        "bulletin": s.is_bulletin(),
        "target": s.target(),
        "source": s.author(),
        "source_name": signer_org_name,
        "created": s.created,
        "received_at": received_at,
        // `hub-attested`: submitted by the source over TAXII and signed by
        // the hub for it, not by the source's own key.
        "signature": {
            "status": if s.on_behalf_of.is_some() { "hub-attested" } else { "verified" },
            "key_id": verified.key_id,
            "algorithm": "ed25519",
        },
        "envelope_digest": isac_core::envelope::digest_ref(&verified.digest),
        "statement": statement,
    })
}

/// A federated item's `provenance` object (issue 20): the origin hub, the
/// author's organisation there (left out for an anonymous item), the
/// hubs it went through (origin first, this agent's hub last) and, once
/// the origin's log is checked, the item's leaf index there.
pub fn provenance_fields(
    p: &isac_core::federation::Provenance,
    statement: &isac_core::Statement,
) -> Value {
    let mut v = json!({
        "origin_hub": p.origin_hub,
        "hub_path": p.hub_path,
    });
    if let Some(index) = p.origin_log_index {
        v["origin_log_index"] = json!(index);
    }
    if !statement.anonymous && statement.source != isac_core::names::ANONYMOUS_ORG {
        v["origin_org"] = json!(statement.author());
    }
    v
}

/// `via HUB-A → HUB-B`: the hub path as people read it (console, mail).
pub fn via_text(hub_path: &[String]) -> String {
    format!("via {}", hub_path.join(" → "))
}

/// `retract` for a retraction, `upsert` for anything else.
fn action(s: &isac_core::Statement) -> &'static str {
    if matches!(s.body, isac_core::Body::Retraction(_)) {
        "retract"
    } else {
        "upsert"
    }
}

/// The id a receiver can recognise a repeat by: `ID:REVISION:ACTION`
/// (an exposure event: `ID:EVENT:ACTION`, its event number).
pub(crate) fn delivery_id(line: &Value) -> String {
    if is_exposure(line) {
        return format!(
            "{}:{}:{}",
            line["id"].as_str().unwrap_or_default(),
            line["event"],
            line["action"].as_str().unwrap_or_default()
        );
    }
    format!(
        "{}:{}:{}",
        line["id"].as_str().unwrap_or_default(),
        line["revision"],
        line["action"].as_str().unwrap_or("upsert")
    )
}

/// An `exposure.new` or `exposure.cleared` record (not an item's).
pub(crate) fn is_exposure(line: &Value) -> bool {
    line["action"]
        .as_str()
        .is_some_and(|a| a.starts_with("exposure."))
}

#[cfg(test)]
mod tests {
    /// Federation (issue 20): the `provenance` object of a JSONL line.
    #[test]
    fn provenance_fields_name_origin_path_and_author_unless_anonymous() {
        let p = isac_core::federation::Provenance {
            origin_hub: "hub-a".into(),
            origin_log_index: None,
            hub_path: vec!["hub-a".into(), "hub-b".into()],
        };
        let mut s = crate::draft::IndicatorDraft {
            domain: Some("c2.evil.example".into()),
            tlp: Some("green".into()),
            title: Some("t".into()),
            ..Default::default()
        }
        .into_statement("alice-bank", "2026-11-25T12:00:00Z".into())
        .unwrap();
        assert_eq!(
            provenance_fields(&p, &s),
            json!({"origin_hub": "hub-a", "hub_path": ["hub-a", "hub-b"],
                   "origin_org": "alice-bank"})
        );
        s.source = isac_core::names::ANONYMOUS_ORG.into();
        assert!(provenance_fields(&p, &s).get("origin_org").is_none());
        assert_eq!(via_text(&p.hub_path), "via hub-a → hub-b");
    }

    use super::*;

    #[test]
    fn the_console_lists_every_sink_in_the_order_it_always_has() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("items.jsonl");
        let settings = SinkSettings {
            stix_dir: Some(dir.path().join("stix")),
            export_red: true,
            http: vec![
                http::HttpSink::Elastic {
                    url: "http://[::1]:9200/".parse().unwrap(),
                    index: "i".into(),
                },
                http::HttpSink::Webhook {
                    url: "https://soar.example/hook".parse().unwrap(),
                    secret: "never shown".into(),
                },
            ],
            syslog: vec!["tls://siem.example:6514".parse().unwrap()],
            mail: Some(mail::MailSink {
                host: "mail.example".into(),
                port: 587,
                from: "a@bank.example".into(),
                to: vec!["soc@bank.example".into(), "cert@bank.example".into()],
                min_severity: isac_core::Severity::High,
                auth: Some(("u".into(), "never shown either".into())),
                ca: None,
            }),
            dead_letter: Some(dir.path().join("dead.jsonl")),
            ..SinkSettings::jsonl(Some(&jsonl))
        };
        let described = Sinks::open(settings).unwrap().describe();
        let at = |name: &str| dir.path().join(name).display().to_string();
        assert_eq!(
            described,
            vec![
                format!("JSON Lines: {}", at("items.jsonl")),
                format!("STIX bundle files: {}", at("stix")),
                "Elasticsearch: [::1]:9200/".to_owned(),
                "webhook: soar.example:443/hook".to_owned(),
                "syslog: tls://siem.example:6514".to_owned(),
                "mail: mail.example:587 to 2 recipient(s), high and above".to_owned(),
                format!("dead letters: {}", at("dead.jsonl")),
                "TLP:RED is exported to the sinks".to_owned(),
            ]
        );
        assert_eq!(
            Sinks::jsonl(None).unwrap().describe(),
            vec!["JSON Lines: stdout".to_owned()]
        );
    }
}
