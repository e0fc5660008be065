//! JSON Lines to a file or stdout, one verified item per line, written
//! inside the item's transaction and flushed before the cursor moves past
//! it; rotated by size if asked.
//!
//! Exactly once: the agent writes a line and then commits the item and its
//! cursor. A crash between the two leaves a line whose item comes again; on
//! reopening, the sink remembers the keys of its last lines and does not
//! write that item twice. A line torn by a crash is cut off.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::{Received, Sink};
use crate::error::{io_err, AgentError};

/// (id, revision, action)
type LineKey = (String, u64, String);

pub struct JsonlSink {
    target: Target,
    already_written: HashSet<LineKey>,
    rotate_bytes: Option<u64>,
    keep_rotated: u32,
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
            // An exposure event is known by its event number.
            if let (Some(id), Some(rev), Some(action)) = (
                v["id"].as_str(),
                v["revision"].as_u64().or_else(|| v["event"].as_u64()),
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

/// The `action: expire` line for an item past its effective `valid_until`.
pub(super) fn expire_line(
    item: &crate::localstore::ItemSummary,
    valid_until: &str,
) -> serde_json::Value {
    json!({
        "action": "expire",
        "id": item.id,
        "revision": item.revision,
        "sequence": item.sequence,
        "kind": item.kind,
        "value": item.value,
        "title": item.title,
        "tlp": item.tlp,
        "severity": item.severity,
        "source": item.source,
        "valid_until": valid_until,
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

impl Sink for JsonlSink {
    fn describe(&self) -> String {
        match &self.target {
            Target::Stdout => "JSON Lines: stdout".to_owned(),
            Target::File { path, .. } => format!("JSON Lines: {}", path.display()),
        }
    }

    fn write(&mut self, item: &Received<'_>) -> Result<(), AgentError> {
        let s = &item.verified.statement;
        if self.already_written.remove(&(
            s.id.to_string(),
            u64::from(s.revision),
            super::action(s).to_owned(),
        )) {
            tracing::info!(id = %s.id, "already in the sink from before a restart; not written twice");
            return Ok(());
        }
        self.append(&item.line())
    }

    fn write_alert(&mut self, line: &serde_json::Value) -> Result<(), AgentError> {
        self.append(line)
    }

    /// The `action: expire` line.
    fn write_expired(&mut self, item: &super::Lapsed<'_>) -> Result<(), AgentError> {
        if self.already_written.remove(&(
            item.summary.id.clone(),
            u64::from(item.summary.revision),
            "expire".to_owned(),
        )) {
            return Ok(());
        }
        self.append(&item.line())
    }

    /// The exposure event's line.
    fn write_exposure(&mut self, line: &serde_json::Value) -> Result<(), AgentError> {
        let key = (
            line["id"].as_str().unwrap_or_default().to_owned(),
            line["event"].as_u64().unwrap_or(0),
            line["action"].as_str().unwrap_or_default().to_owned(),
        );
        if self.already_written.remove(&key) {
            return Ok(());
        }
        self.append(line)
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
            sink.append(&expire_line(&summary(n), "2026-12-01T00:00:00Z"))
                .unwrap();
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
