//! Retention and migration: `hub prune` (statements long past their
//! `valid_until`) and `hub export` (every stored envelope as JSON Lines).
//! Both work on the local data dir, also while the hub runs.

use std::io::Write;
use std::path::Path;

use isac_core::{Envelope, Signature};
use serde_json::{json, Value};

use crate::store::{Store, StoreError, StoredStatement};

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Rows read per page while exporting (memory stays bounded).
const PAGE: u32 = 1000;

fn parsed(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or(Value::String(json.to_owned()))
}

/// One export line: the exact signed envelope (DSSE JSON) and what the hub
/// knows about it, enough to migrate to another hub without re-signing.
pub fn export_line(row: &StoredStatement) -> Value {
    let envelope = Envelope {
        payload_type: row.payload_type.clone(),
        payload: row.payload.clone(),
        signatures: vec![Signature {
            keyid: row.key_id.clone(),
            sig: row.signature.clone(),
        }],
    };
    let anonymous = row.anonymous.as_ref().map(|a| {
        parsed(
            &Envelope {
                payload_type: row.payload_type.clone(),
                payload: a.payload.clone(),
                signatures: vec![Signature {
                    keyid: a.key_id.clone(),
                    sig: a.signature.clone(),
                }],
            }
            .to_json(),
        )
    });
    json!({
        "sequence": row.seq,
        "id": row.id,
        "revision": row.revision,
        "kind": row.kind,
        "source_org": row.source_org,
        "tlp": row.tlp,
        "target_id": row.target_id,
        "received_at": isac_core::time::format_rfc3339(row.received_at),
        "date_added_us": row.added_us,
        "envelope_digest": isac_core::envelope::digest_ref(&row.digest),
        "envelope": parsed(&envelope.to_json()),
        "anonymous_envelope": anonymous,
        "audience": parsed(&row.audience_json),
        "audience_openings": parsed(&row.openings_json),
        "group_snapshot": parsed(&row.group_snapshot_json),
    })
}

/// Writes every stored statement, in sequence order, to `path` (created
/// 0600, never overwritten: it holds TLP:RED items and clear audiences).
/// Returns the number of lines.
pub async fn export(store: &Store, path: &Path) -> Result<u64, RetentionError> {
    let io = |source| RetentionError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    let mut after = 0;
    let mut lines = 0;
    loop {
        let page = store.statements_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for row in &page {
            serde_json::to_writer(&mut out, &export_line(row)).map_err(|e| io(e.into()))?;
            out.write_all(b"\n").map_err(io)?;
            lines += 1;
        }
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(lines)
}
