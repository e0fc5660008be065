//! Where verified items go. For now: JSON Lines to a file or stdout, one
//! verified item per line, flushed before the cursor moves past it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use isac_core::VerifiedStatement;
use serde_json::json;

use crate::error::{io_err, AgentError};

pub struct JsonlSink {
    target: Target,
    /// Write TLP:RED items too (off by default: RED stays in the agent's store).
    pub export_red: bool,
}

enum Target {
    Stdout,
    File {
        file: File,
        path: std::path::PathBuf,
    },
}

impl JsonlSink {
    pub fn open(path: Option<&Path>) -> Result<Self, AgentError> {
        let target = match path {
            None => Target::Stdout,
            Some(p) => Target::File {
                file: OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(io_err(p))?,
                path: p.to_owned(),
            },
        };
        Ok(Self {
            target,
            export_red: false,
        })
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
        let statement: serde_json::Value =
            serde_json::from_slice(&s.canonical_bytes()).unwrap_or(serde_json::Value::Null);
        let line = json!({
            "id": s.id,
            "revision": s.revision,
            "sequence": sequence,
            "tlp": s.tlp.as_str(),
            "tlp_marking": s.tlp.stix_marking_id(),
            "kind": s.kind(),
            "value": s.primary_value(),
            "bulletin": s.is_bulletin(),
            "title": s.title(),
            "action": if matches!(s.body, isac_core::Body::Retraction(_)) { "retract" } else { "upsert" },
            "target": s.target(),
            "tlp_strict": s.tlp == isac_core::Tlp::AmberStrict,
            "source": s.source,
            "source_name": signer_org_name,
            "created": s.created,
            "received_at": received_at,
            "signature": {"status": "verified", "key_id": verified.key_id, "algorithm": "ed25519"},
            "envelope_digest": format!("sha256:{}", verified.digest),
            "statement": statement,
        });
        let mut text =
            serde_json::to_string(&line).map_err(|e| AgentError::Invalid(e.to_string()))?;
        text.push('\n');
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
