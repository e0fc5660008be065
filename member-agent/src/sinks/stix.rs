//! STIX 2.1 bundle files: one per item (TLP 2.0 markings, deterministic
//! ids), for tools that import STIX files. Written inside the item's
//! transaction.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Received, Sink};
use crate::error::{io_err, AgentError};

pub struct StixDir {
    dir: PathBuf,
}

impl StixDir {
    pub fn new(dir: PathBuf) -> Self {
        StixDir { dir }
    }
}

impl Sink for StixDir {
    fn describe(&self) -> String {
        format!("STIX bundle files: {}", self.dir.display())
    }

    fn write(&mut self, item: &Received<'_>) -> Result<(), AgentError> {
        write_stix_bundle(&self.dir, item)
    }
}

/// One bundle per item, named by sequence and id and written atomically, so
/// a redelivery after a crash rewrites the same file instead of adding one.
fn write_stix_bundle(dir: &Path, item: &Received<'_>) -> Result<(), AgentError> {
    use isac_core::stix;
    let Received {
        sequence,
        received_at,
        verified,
        signer_org_name,
    } = *item;
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
