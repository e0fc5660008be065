//! Where verified items go. For now: JSON Lines to a file or stdout, one
//! verified item per line, flushed before the cursor moves past it.
//!
//! Exactly once: the agent writes a line and then commits the item and its
//! cursor. A crash between the two leaves a line whose item comes again; on
//! reopening, the sink remembers the keys of its last lines and does not
//! write that item twice. A line torn by a crash is cut off.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use isac_core::VerifiedStatement;
use serde_json::json;

use crate::error::{io_err, AgentError};

/// (id, revision, action)
type LineKey = (String, u64, String);

pub struct JsonlSink {
    target: Target,
    /// Write TLP:RED items too (off by default: RED stays in the agent's store).
    pub export_red: bool,
    /// Also write one STIX 2.1 bundle file per item here (TLP 2.0 markings,
    /// deterministic ids), for tools that import STIX files.
    pub stix_dir: Option<std::path::PathBuf>,
    /// Webhook, Splunk HEC and Elasticsearch receivers (sent before the
    /// item is committed; a failure holds the cursor).
    pub http: Vec<crate::http_sink::HttpSink>,
    /// Extra CA trusted for https receivers (besides the system roots).
    pub http_ca: Option<openssl::x509::X509>,
    /// How long and how fast HTTP receivers that are down are retried.
    pub http_retry: crate::http_sink::Retry,
    /// Most events in one Splunk HEC request.
    pub hec_batch: usize,
    /// Where items an HTTP receiver rejects for good (4xx other than 408
    /// and 429) are set aside, one JSON object a line; without it such a
    /// rejection fails the write and holds the cursor.
    pub dead_letter: Option<std::path::PathBuf>,
    /// Syslog (RFC 5424, CEF payload) receivers.
    pub syslog: Vec<crate::syslog_sink::SyslogTarget>,
    /// Mail (SMTP with STARTTLS) for bulletins and severe indicators.
    pub mail: Option<crate::mail_sink::MailSink>,
    /// One client per HTTP sink (TLS settings built once, a kept-alive
    /// connection), made at the first delivery and again whenever `http`
    /// or `http_ca` change.
    http_clients: std::sync::Mutex<HttpClients>,
    already_written: HashSet<LineKey>,
    rotate_bytes: Option<u64>,
    keep_rotated: u32,
}

/// The clients of `JsonlSink::http`, and the CA (DER) they trust.
#[derive(Default)]
struct HttpClients {
    ca: Option<Vec<u8>>,
    clients: Vec<std::sync::Arc<crate::http_sink::SinkClient>>,
}

fn rotated_name(path: &Path, k: u32) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    std::path::PathBuf::from(name)
}

/// The keys of the last lines of a rotated file (never modified).
fn resume_read_only(file: &mut File, path: &Path) -> Result<HashSet<LineKey>, AgentError> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata().map_err(io_err(path))?.len();
    let window = len.min(1 << 20);
    file.seek(SeekFrom::Start(len - window))
        .map_err(io_err(path))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io_err(path))?;
    Ok(keys_of_last_lines(&String::from_utf8_lossy(&tail)))
}

fn keys_of_last_lines(text: &str) -> HashSet<LineKey> {
    let mut keys = HashSet::new();
    for line in text.lines().rev().take(RESUME_WINDOW_LINES) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if let (Some(id), Some(rev), Some(action)) = (
                v["id"].as_str(),
                v["revision"].as_u64(),
                v["action"].as_str(),
            ) {
                keys.insert((id.to_owned(), rev, action.to_owned()));
            }
        }
    }
    keys
}

enum Target {
    Stdout,
    File {
        file: File,
        path: std::path::PathBuf,
    },
}

/// How many trailing lines to remember when reopening. One item is in
/// flight at a time, so a handful would do; this leaves margin.
const RESUME_WINDOW_LINES: usize = 64;

/// Cuts a line torn by a crash and returns the keys of the last lines.
fn resume(file: &mut File, path: &Path) -> Result<HashSet<LineKey>, AgentError> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata().map_err(io_err(path))?.len();
    let window = len.min(1 << 20);
    file.seek(SeekFrom::Start(len - window))
        .map_err(io_err(path))?;
    let mut tail = Vec::with_capacity(window as usize);
    file.read_to_end(&mut tail).map_err(io_err(path))?;
    if !tail.is_empty() && tail.last() != Some(&b'\n') {
        let keep = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        file.set_len(len - window + keep as u64)
            .map_err(io_err(path))?;
        tail.truncate(keep);
        tracing::warn!(path = %path.display(), "cut a torn last line in the JSON Lines sink");
    }
    Ok(keys_of_last_lines(&String::from_utf8_lossy(&tail)))
}

/// The `action: expire` line for an item past its `valid_until`.
fn expire_line(item: &crate::localstore::ItemSummary) -> serde_json::Value {
    json!({
        "action": "expire",
        "id": item.id,
        "revision": item.revision,
        "sequence": item.sequence,
        "kind": item.kind,
        "value": item.value,
        "title": item.title,
        "tlp": item.tlp,
    })
}

/// One bundle per item, named by sequence and id and written atomically, so
/// a redelivery after a crash rewrites the same file instead of adding one.
fn write_stix_bundle(
    dir: &Path,
    sequence: u64,
    received_at: &str,
    verified: &VerifiedStatement,
    signer_org_name: &str,
) -> Result<(), AgentError> {
    use isac_core::stix;
    let s = &verified.statement;
    let identity = stix::source_identity(s, signer_org_name);
    let identity_id = identity["id"].as_str().unwrap_or_default().to_owned();
    let ctx = stix::StixContext {
        source_identity_id: &identity_id,
        envelope_digest: &verified.digest,
        key_id: &verified.key_id,
        received_at,
    };
    let mut objects = vec![identity];
    objects.extend(stix::objects_for(s, &ctx));
    let bundle = stix::bundle(&verified.digest, objects);
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let name = format!("{sequence:012}-{}.json", s.id);
    let tmp = dir.join(format!(".{name}.tmp"));
    let text =
        serde_json::to_vec_pretty(&bundle).map_err(|e| AgentError::Invalid(e.to_string()))?;
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&text)
        .and_then(|_| f.sync_all())
        .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, dir.join(&name)).map_err(io_err(dir))
}

/// The JSON record of one verified item, as every sink receives it.
pub fn line_for(
    sequence: u64,
    received_at: &str,
    verified: &VerifiedStatement,
    signer_org_name: &str,
) -> serde_json::Value {
    let s = &verified.statement;
    let action = if matches!(s.body, isac_core::Body::Retraction(_)) {
        "retract"
    } else {
        "upsert"
    };
    let statement: serde_json::Value =
        serde_json::from_slice(&s.canonical_bytes()).unwrap_or(serde_json::Value::Null);
    json!({
        "action": action,
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
        "envelope_digest": format!("sha256:{}", verified.digest),
        "statement": statement,
    })
}

impl JsonlSink {
    pub fn open(path: Option<&Path>) -> Result<Self, AgentError> {
        let mut already_written = HashSet::new();
        let target = match path {
            None => Target::Stdout,
            Some(p) => {
                let mut file = OpenOptions::new()
                    .create(true)
                    .read(true)
                    .append(true)
                    .open(p)
                    .map_err(io_err(p))?;
                already_written = resume(&mut file, p)?;
                // Just rotated before a crash? The last lines are in FILE.1.
                if file.metadata().map_err(io_err(p))?.len() == 0 {
                    let previous = rotated_name(p, 1);
                    if let Ok(mut f) = OpenOptions::new().read(true).open(&previous) {
                        already_written.extend(resume_read_only(&mut f, &previous)?);
                    }
                }
                Target::File {
                    file,
                    path: p.to_owned(),
                }
            }
        };
        Ok(Self {
            target,
            export_red: false,
            stix_dir: None,
            http: Vec::new(),
            http_ca: None,
            http_retry: crate::http_sink::Retry::default(),
            hec_batch: 100,
            dead_letter: None,
            mail: None,
            syslog: Vec::new(),
            http_clients: Default::default(),
            rotate_bytes: None,
            keep_rotated: 5,
            already_written,
        })
    }

    /// Rotates the JSON Lines file once it would grow past `max_bytes`,
    /// keeping `keep` old files (FILE.1 newest).
    pub fn rotate_at(&mut self, max_bytes: u64, keep: u32) {
        self.rotate_bytes = Some(max_bytes.max(1024));
        self.keep_rotated = keep.max(1);
    }

    fn rotate_if_needed(&mut self, incoming: usize) -> Result<(), AgentError> {
        let (Some(max), Target::File { file, path }) = (self.rotate_bytes, &mut self.target) else {
            return Ok(());
        };
        let len = file.metadata().map_err(io_err(path))?.len();
        if len == 0 || len + incoming as u64 <= max {
            return Ok(());
        }
        let path = path.clone();
        let _ = std::fs::remove_file(rotated_name(&path, self.keep_rotated));
        for k in (1..self.keep_rotated).rev() {
            let from = rotated_name(&path, k);
            if from.exists() {
                std::fs::rename(&from, rotated_name(&path, k + 1)).map_err(io_err(&from))?;
            }
        }
        std::fs::rename(&path, rotated_name(&path, 1)).map_err(io_err(&path))?;
        let fresh = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        self.target = Target::File { file: fresh, path };
        Ok(())
    }

    pub fn write(
        &mut self,
        sequence: u64,
        received_at: &str,
        verified: &VerifiedStatement,
        signer_org_name: &str,
    ) -> Result<(), AgentError> {
        let s = &verified.statement;
        if !isac_core::tlp::may_export_to_sink(s.tlp, self.export_red) {
            tracing::info!(id = %s.id, "TLP:RED item kept in the local store only (RED export is off)");
            return Ok(());
        }
        let action = if matches!(s.body, isac_core::Body::Retraction(_)) {
            "retract"
        } else {
            "upsert"
        };
        if let Some(dir) = &self.stix_dir {
            write_stix_bundle(dir, sequence, received_at, verified, signer_org_name)?;
        }
        if self.already_written.remove(&(
            s.id.to_string(),
            u64::from(s.revision),
            action.to_owned(),
        )) {
            tracing::info!(id = %s.id, "already in the sink from before a restart; not written twice");
            return Ok(());
        }
        let line = line_for(sequence, received_at, verified, signer_org_name);
        self.append(&line)
    }

    /// Sends a new item to every HTTP and syslog receiver (see [`Self::send_http_batch`]).
    pub async fn send_http(
        &self,
        sequence: u64,
        received_at: &str,
        verified: &VerifiedStatement,
        signer_org_name: &str,
    ) -> Result<(), AgentError> {
        self.send_http_batch(&[(sequence, received_at, verified, signer_org_name)])
            .await
    }

    /// Sends new items to every HTTP receiver (batched where the receiver
    /// takes batches, retried while it is down) and syslog receiver. An item
    /// a receiver rejects for good goes to the dead-letter file; without
    /// one, that fails the write. Any other failure fails the write.
    pub async fn send_http_batch(
        &self,
        items: &[(u64, &str, &VerifiedStatement, &str)],
    ) -> Result<(), AgentError> {
        if self.http.is_empty() && self.syslog.is_empty() && self.mail.is_none() {
            return Ok(());
        }
        let lines: Vec<serde_json::Value> = items
            .iter()
            .filter(|(_, _, v, _)| {
                isac_core::tlp::may_export_to_sink(v.statement.tlp, self.export_red)
            })
            .map(|(seq, at, v, signer)| line_for(*seq, at, v, signer))
            .collect();
        if lines.is_empty() {
            return Ok(());
        }
        self.deliver_http(&lines).await?;
        for target in &self.syslog {
            target.send_all(&lines).await?;
        }
        if let Some(mail) = &self.mail {
            let wanted: Vec<&serde_json::Value> = lines.iter().filter(|l| mail.wants(l)).collect();
            let refused = mail.send_all(&wanted).await?;
            let url = format!("smtp://{}:{}", mail.host, mail.port);
            let entries = refused
                .into_iter()
                .map(|(i, answer)| {
                    let line = wanted[i];
                    // "RCPT TO:<x>: 550 ..." -> 550
                    let status = answer
                        .rsplit_once(">: ")
                        .or_else(|| answer.split_once(": "))
                        .and_then(|(_, t)| t.get(..3))
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    (
                        "mail",
                        url.clone(),
                        status,
                        answer,
                        format!(
                            "{}:{}:upsert",
                            line["id"].as_str().unwrap_or_default(),
                            line["revision"]
                        ),
                        line.clone(),
                    )
                })
                .collect();
            self.set_aside(entries)?;
        }
        Ok(())
    }

    /// Writes items a receiver rejected for good to the dead-letter file
    /// (synced), or fails when there is none. Entries: (sink, url, status,
    /// answer, delivery id, line).
    fn set_aside(
        &self,
        entries: Vec<(&'static str, String, u16, String, String, serde_json::Value)>,
    ) -> Result<(), AgentError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let Some(path) = &self.dead_letter else {
            return Err(AgentError::Invalid(format!(
                "{} {} rejected {} ({} {}); nothing is committed until it is delivered or set aside with --dead-letter FILE",
                first.0, first.1, first.4, first.2, first.3
            )));
        };
        let mut text = String::new();
        for (sink, url, status, answer, delivery, line) in &entries {
            tracing::warn!(sink, %delivery, status, "rejected for good; dead-lettered");
            text.push_str(
                &serde_json::to_string(&json!({
                    "at": isac_core::time::format_rfc3339(crate::now()),
                    "sink": sink,
                    "url": url,
                    "status": status,
                    "answer": answer,
                    "delivery": delivery,
                    "item": line,
                }))
                .map_err(|e| AgentError::Invalid(e.to_string()))?,
            );
            text.push('\n');
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io_err(path))?;
        eprintln!(
            "warning: {} rejected {} item(s) for good; set aside in {}",
            first.0,
            entries.len(),
            path.display()
        );
        Ok(())
    }

    fn http_options(&self) -> crate::http_sink::HttpOptions {
        crate::http_sink::HttpOptions {
            ca: self.http_ca.clone(),
            retry: self.http_retry,
            hec_batch: self.hec_batch,
        }
    }

    /// The clients for `http`, made again only if the sinks or the CA
    /// changed since the last delivery.
    fn http_clients(
        &self,
    ) -> Result<Vec<std::sync::Arc<crate::http_sink::SinkClient>>, AgentError> {
        let ca = self.http_ca.as_ref().map(|c| c.to_der()).transpose()?;
        let mut cache = self.http_clients.lock().unwrap_or_else(|e| e.into_inner());
        let current = cache.ca == ca
            && cache.clients.len() == self.http.len()
            && cache
                .clients
                .iter()
                .zip(&self.http)
                .all(|(c, h)| c.sink() == h);
        if !current {
            cache.clients = self
                .http
                .iter()
                .map(|h| h.client(self.http_ca.as_ref()).map(std::sync::Arc::new))
                .collect::<Result<_, _>>()?;
            cache.ca = ca;
        }
        Ok(cache.clients.clone())
    }

    async fn deliver_http(&self, lines: &[serde_json::Value]) -> Result<(), AgentError> {
        let opts = self.http_options();
        for target in self.http_clients()? {
            let rejected = target.deliver(lines, &opts).await?;
            if rejected.is_empty() {
                continue;
            }
            self.set_aside(
                rejected
                    .into_iter()
                    .map(|r| {
                        (
                            r.sink,
                            r.url,
                            r.status,
                            r.answer,
                            r.delivery,
                            lines[r.index].clone(),
                        )
                    })
                    .collect(),
            )?;
        }
        Ok(())
    }

    /// Tells HTTP receivers an item expired, in each one's idiom (webhook
    /// and Splunk HEC: an `action: expire` event; Elasticsearch: the
    /// document is deleted). Before the expiry is committed.
    pub async fn send_expired_http(
        &self,
        item: &crate::localstore::ItemSummary,
    ) -> Result<(), AgentError> {
        if self.http.is_empty() || (item.tlp == "red" && !self.export_red) {
            return Ok(());
        }
        self.deliver_http(&[expire_line(item)]).await
    }

    /// Tells the sink an item expired (`action: expire`).
    pub fn write_expired(
        &mut self,
        item: &crate::localstore::ItemSummary,
    ) -> Result<(), AgentError> {
        if item.tlp == "red" && !self.export_red {
            return Ok(());
        }
        if self.already_written.remove(&(
            item.id.clone(),
            u64::from(item.revision),
            "expire".to_owned(),
        )) {
            return Ok(());
        }
        self.append(&expire_line(item))
    }

    fn append(&mut self, line: &serde_json::Value) -> Result<(), AgentError> {
        let mut text =
            serde_json::to_string(line).map_err(|e| AgentError::Invalid(e.to_string()))?;
        text.push('\n');
        self.rotate_if_needed(text.len())?;
        match &mut self.target {
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|_| out.flush())
                    .map_err(io_err(Path::new("<stdout>")))
            }
            Target::File { file, path } => file
                .write_all(text.as_bytes())
                .and_then(|_| file.sync_data())
                .map_err(io_err(path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_cuts_a_torn_line_and_remembers_recent_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        std::fs::write(
            &p,
            "{\"action\":\"upsert\",\"id\":\"a\",\"revision\":1,\"sequence\":1}\n{\"action\":\"upsert\",\"id\":\"b\",\"rev",
        )
        .unwrap();
        let sink = JsonlSink::open(Some(&p)).unwrap();
        assert!(sink
            .already_written
            .contains(&("a".into(), 1, "upsert".into())));
        assert_eq!(sink.already_written.len(), 1);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.ends_with("\"sequence\":1}\n"), "{text}");
    }

    fn summary(n: u64) -> crate::localstore::ItemSummary {
        crate::localstore::ItemSummary {
            sequence: n,
            id: format!("id-{n}"),
            revision: 1,
            source: "a".into(),
            tlp: "green".into(),
            kind: "package".into(),
            value: "pkg:npm/x".into(),
            title: "t".repeat(100),
            severity: "high".into(),
            created: "2026-11-25T12:00:00Z".into(),
            status: "valid".into(),
        }
    }

    #[test]
    fn rotates_keeps_k_files_and_resumes_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        let mut sink = JsonlSink::open(Some(&p)).unwrap();
        sink.rotate_at(1024, 2);
        for n in 0..40 {
            sink.write_expired(&summary(n)).unwrap();
        }
        let count = |path: &Path| {
            std::fs::read_to_string(path)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        assert!(rotated_name(&p, 1).exists() && rotated_name(&p, 2).exists());
        assert!(
            !rotated_name(&p, 3).exists(),
            "only two rotated files are kept"
        );
        assert!(std::fs::metadata(&p).unwrap().len() <= 1024);
        assert!(count(&p) + count(&rotated_name(&p, 1)) + count(&rotated_name(&p, 2)) < 40);
        // A crash right after rotating: the current file is empty, and the
        // last written keys come from FILE.1.
        std::fs::rename(&p, rotated_name(&p, 1)).unwrap();
        std::fs::write(&p, "").unwrap();
        let reopened = JsonlSink::open(Some(&p)).unwrap();
        assert!(reopened
            .already_written
            .contains(&("id-39".into(), 1, "expire".into())));
    }
}
