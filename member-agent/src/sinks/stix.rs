//! STIX 2.1 bundle files: one per item (TLP 2.0 markings, deterministic
//! ids), for tools that import STIX files. Written inside the item's
//! transaction.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Received, Sink};
use crate::error::{io_err, AgentError};
use serde_json::json;

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

    /// An expired indicator: its later STIX version with `valid_until` at
    /// the expiry (`x_isac_expired`), in a file of its own beside the
    /// item's (`SEQ-ID.expired.json`). A revision that brings it back is a
    /// new item file with a later `modified`.
    fn write_expired(&mut self, lapsed: &super::Lapsed<'_>) -> Result<(), AgentError> {
        let item = &lapsed.item;
        let (identity, objects) = stix_objects(item);
        let mut expired = isac_core::lifetime::stix_expired_version(objects, lapsed.valid_until);
        if expired.is_empty() {
            return Ok(());
        }
        expired.insert(0, identity);
        let bundle = isac_core::stix::bundle(
            &format!("{}/expired/{}", item.verified.digest, lapsed.valid_until),
            expired,
        );
        let name = format!(
            "{:012}-{}.expired.json",
            item.sequence, item.verified.statement.id
        );
        write_atomically(&self.dir, &name, &bundle)
    }

    /// `exposure.new` as a STIX sighting of the indicator (count 1, first
    /// seen when the exposure appeared, the application and component in
    /// `x_isac_*` properties). STIX has no withdrawn sighting, so
    /// `exposure.cleared` writes nothing here.
    fn write_exposure(&mut self, line: &serde_json::Value) -> Result<(), AgentError> {
        if line["action"] != "exposure.new" {
            return Ok(());
        }
        let Some(bundle) = exposure_sighting(line) else {
            return Ok(());
        };
        let name = format!(
            "exposure-{:012}-{}.json",
            line["event"].as_u64().unwrap_or(0),
            line["id"].as_str().unwrap_or_default()
        );
        write_atomically(&self.dir, &name, &bundle)
    }
}

/// The bundle for one `exposure.new` record: a sighting of the
/// indicator's STIX id, under the indicator's TLP marking.
pub fn exposure_sighting(line: &serde_json::Value) -> Option<serde_json::Value> {
    use isac_core::stix;
    let indicator: uuid::Uuid = line["indicator"]["id"].as_str()?.parse().ok()?;
    let tlp: isac_core::Tlp = line["tlp"].as_str()?.parse().ok()?;
    let exposure_id = line["id"].as_str()?;
    let since = stix::stix_timestamp(line["since"].as_str().unwrap_or_default());
    let at = stix::stix_timestamp(line["at"].as_str().unwrap_or_default());
    let sighting = serde_json::json!({
        "type": "sighting",
        "spec_version": "2.1",
        "id": format!("sighting--{}", stix::derived_uuid("sighting", exposure_id)),
        "created": at,
        "modified": at,
        "sighting_of_ref": stix::stix_id("indicator", &indicator),
        "count": 1,
        "first_seen": since,
        "last_seen": at,
        "summary": true,
        "object_marking_refs": [tlp.stix_marking_id()],
        "x_isac_application": line["application"],
        "x_isac_component": line["component"],
        "x_isac_why": line["why"],
    });
    Some(stix::bundle(exposure_id, vec![sighting]))
}

fn write_atomically(dir: &Path, name: &str, value: &serde_json::Value) -> Result<(), AgentError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let text = serde_json::to_vec_pretty(value).map_err(|e| AgentError::Invalid(e.to_string()))?;
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&text)
        .and_then(|_| f.sync_all())
        .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(io_err(dir))
}

/// The source identity and the STIX objects of one item, an indicator
/// with its effective `valid_until`.
fn stix_objects(item: &Received<'_>) -> (serde_json::Value, Vec<serde_json::Value>) {
    use isac_core::stix;
    let Received {
        received_at,
        verified,
        signer_org_name,
        valid_until,
        provenance,
        ..
    } = *item;
    let s = &verified.statement;
    let identity = match provenance {
        // The origin organisation, as an identity of its own: the same
        // org id at another hub is another organisation.
        Some(p) if !s.anonymous && s.source != isac_core::names::ANONYMOUS_ORG => {
            let mut id = stix::identity(
                &stix::federated_org(s.author(), &p.origin_hub),
                signer_org_name,
            );
            id["description"] = json!(format!("Member `{}` of hub `{}`", s.author(), p.origin_hub));
            id
        }
        _ => stix::source_identity(s, signer_org_name),
    };
    let identity_id = identity["id"].as_str().unwrap_or_default().to_owned();
    let ctx = stix::StixContext {
        source_identity_id: &identity_id,
        envelope_digest: &verified.digest,
        key_id: &verified.key_id,
        received_at,
    };
    let mut objects = stix::objects_for(s, &ctx);
    if let Some(until) = valid_until {
        isac_core::lifetime::stix_set_valid_until(&mut objects, until);
    }
    if let Some(p) = provenance {
        stix::set_provenance(&mut objects, &p.origin_hub, &p.hub_path);
    }
    (identity, objects)
}

/// One bundle per item, named by sequence and id and written atomically, so
/// a redelivery after a crash rewrites the same file instead of adding one.
fn write_stix_bundle(dir: &Path, item: &Received<'_>) -> Result<(), AgentError> {
    use isac_core::stix;
    let (sequence, verified) = (item.sequence, item.verified);
    let s = &verified.statement;
    let (identity, rest) = stix_objects(item);
    let mut objects = vec![identity];
    objects.extend(rest);
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
