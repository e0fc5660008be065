//! `member-agent export`: the verified local store as a STIX 2.1 bundle,
//! CSV (the same columns `publish --csv` reads; every cell through
//! `csv::cell`, which neutralises spreadsheet formulas), OSV records (one per
//! package indicator, as ossf/malicious-packages writes them; `publish
//! --osv` reads them back) or a MISP event. TLP:RED only when asked;
//! retracted, expired and key-revoked items are left out.
//!
//! `--format dsse` is different: a directory anyone can verify with the
//! openssl command line (docs/protocol.md), see [`export_dsse`].

use isac_core::{stix, Body, Observable, Statement};

use crate::error::AgentError;
use crate::sync::Agent;

pub enum Format {
    Stix,
    Csv,
    Osv,
    MispJson,
    /// A directory of DSSE envelopes and PEM keys: [`export_dsse`].
    Dsse,
}

impl std::str::FromStr for Format {
    type Err = AgentError;
    fn from_str(s: &str) -> Result<Self, AgentError> {
        match s {
            "stix" => Ok(Format::Stix),
            "csv" => Ok(Format::Csv),
            "osv" => Ok(Format::Osv),
            "misp-json" | "misp" => Ok(Format::MispJson),
            "dsse" => Ok(Format::Dsse),
            other => Err(AgentError::Usage(format!(
                "unknown export format `{other}`: use stix, csv, osv, misp-json or dsse"
            ))),
        }
    }
}

const CSV_HEADER: &str = "kind,purl,versions,sha256,sha512,repo_url,commit,tag,account,domain,ip,url,vuln_id,tlp,title,severity,confidence,description,labels,references,valid_until";

fn csv_row(s: &Statement) -> Option<String> {
    let Body::Indicator(i) = &s.body else {
        return None;
    };
    let mut f = vec![String::new(); 21];
    f[0] = i.observable.kind().to_owned();
    match &i.observable {
        Observable::Package { purl, versions, .. } => {
            f[1] = purl.clone();
            f[2] = versions.join(";");
        }
        Observable::Artifact {
            sha256,
            sha512,
            purl,
            ..
        } => {
            f[1] = purl.clone().unwrap_or_default();
            f[3] = sha256.clone().unwrap_or_default();
            f[4] = sha512.clone().unwrap_or_default();
        }
        Observable::Repository { url, commit, tag } => {
            f[5] = url.clone();
            f[6] = commit.clone().unwrap_or_default();
            f[7] = tag.clone().unwrap_or_default();
        }
        Observable::Account { account } => f[8] = account.clone(),
        Observable::Network { domain, ip, url } => {
            f[9] = domain.clone().unwrap_or_default();
            f[10] = ip.clone().unwrap_or_default();
            f[11] = url.clone().unwrap_or_default();
        }
        Observable::Vulnerability { vuln_id, .. } => f[12] = vuln_id.clone(),
    }
    f[13] = s.tlp.as_str().to_owned();
    f[14] = i.title.clone();
    f[15] = i.severity.as_str().to_owned();
    f[16] = i.confidence.to_string();
    f[17] = i.description.clone();
    f[18] = i.tags.join(";");
    f[19] = i.references.join(";");
    f[20] = i.valid_until.clone().unwrap_or_default();
    Some(
        f.iter()
            .map(|v| crate::csv::cell(v))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// One held item as a STIX 2.1 bundle or a CSV document (header and one
/// row), as the whole-store export would write it; `None` for statements
/// CSV has no row for (bulletins, sightings, retractions).
pub fn export_one(row: &crate::localstore::ExportRow, format: Format) -> Option<String> {
    let s = serde_json::from_str::<Statement>(&row.statement_json).ok()?;
    match format {
        Format::Stix => {
            let identity = stix::source_identity(&s, s.author());
            let identity_id = identity["id"].as_str().unwrap_or_default().to_owned();
            let ctx = stix::StixContext {
                source_identity_id: &identity_id,
                envelope_digest: &row.digest,
                key_id: &row.key_id,
                received_at: &row.received_at,
            };
            let mut objects = vec![identity];
            objects.extend(stix::objects_for(&s, &ctx));
            let seed = format!("member-agent-item-{}-{}", s.id, s.revision);
            serde_json::to_string_pretty(&stix::bundle(&seed, objects)).ok()
        }
        Format::Csv => csv_row(&s).map(|line| format!("{CSV_HEADER}\n{line}\n")),
        Format::Osv => osv_record(&s).and_then(|r| serde_json::to_string_pretty(&[r]).ok()),
        Format::Dsse => Some(format!("{}\n", row.envelope_json)),
        Format::MispJson => {
            let attributes = misp_attributes(&s);
            if attributes.is_empty() {
                return None;
            }
            let event = misp_event(s.author(), attributes, Some(s.tlp), Some(s.severity()));
            serde_json::to_string_pretty(&event).ok()
        }
    }
}

/// Renders the export; returns the text and how many items it holds.
pub fn export(
    agent: &Agent,
    format: Format,
    include_red: bool,
) -> Result<(String, usize), AgentError> {
    if matches!(format, Format::Dsse) {
        return Err(AgentError::Usage(
            "--format dsse writes a directory: give it with --out DIR".into(),
        ));
    }
    let rows = agent.store.lock().expect("store").export_rows()?;
    let mut objects = Vec::new();
    let mut lines = vec![CSV_HEADER.to_owned()];
    let mut records = Vec::new();
    let mut attributes = Vec::new();
    let mut event_tlp = None;
    let mut event_severity = None;
    let mut count = 0;
    for row in rows {
        let crate::localstore::ExportRow {
            item,
            statement_json,
            key_id,
            digest,
            received_at,
            ..
        } = row;
        if item.status != "valid" || (item.tlp == "red" && !include_red) {
            continue;
        }
        let Ok(s) = serde_json::from_str::<Statement>(&statement_json) else {
            continue;
        };
        match format {
            Format::Stix => {
                let identity = stix::source_identity(&s, s.author());
                let identity_id = identity["id"].as_str().unwrap_or_default().to_owned();
                let ctx = stix::StixContext {
                    source_identity_id: &identity_id,
                    envelope_digest: &digest,
                    key_id: &key_id,
                    received_at: &received_at,
                };
                if !objects
                    .iter()
                    .any(|o: &serde_json::Value| o["id"] == identity["id"])
                {
                    objects.push(identity);
                }
                let mut own = stix::objects_for(&s, &ctx);
                // Its effective expiry, as the STIX sink writes it: its own
                // valid_until, else the hub's default lifetime of its kind.
                if let Some(until) = agent.effective_valid_until(&s) {
                    isac_core::lifetime::stix_set_valid_until(&mut own, &until);
                }
                objects.extend(own);
                count += 1;
            }
            Format::Csv => {
                if let Some(line) = csv_row(&s) {
                    lines.push(line);
                    count += 1;
                }
            }
            Format::Osv => {
                if let Some(record) = osv_record(&s) {
                    records.push(record);
                    count += 1;
                }
            }
            Format::Dsse => {}
            Format::MispJson => {
                let new = misp_attributes(&s);
                if !new.is_empty() {
                    attributes.extend(new);
                    event_tlp = event_tlp.max(Some(s.tlp));
                    event_severity = event_severity.max(Some(s.severity()));
                    count += 1;
                }
            }
        }
    }
    let text = match format {
        Format::Stix => serde_json::to_string_pretty(&stix::bundle("member-agent-export", objects))
            .map_err(|e| AgentError::Invalid(e.to_string()))?,
        Format::Csv => lines.join("\n") + "\n",
        Format::Osv => {
            serde_json::to_string_pretty(&records)
                .map_err(|e| AgentError::Invalid(e.to_string()))?
                + "\n"
        }
        Format::Dsse => String::new(),
        Format::MispJson => {
            let event = misp_event(agent.org_id(), attributes, event_tlp, event_severity);
            serde_json::to_string_pretty(&event).map_err(|e| AgentError::Invalid(e.to_string()))?
                + "\n"
        }
    };
    Ok((text, count))
}

// === DSSE bundle ===

/// What [`export_dsse`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsseBundle {
    /// Envelopes written (`<statement-id>.<revision>.dsse.json`).
    pub items: usize,
    /// PEM keys written under `keys/` (signers and the hub's directory key).
    pub keys: usize,
}

/// Largest envelope (DSSE JSON) written to a bundle; the hub accepts none
/// larger, so a bigger one in the store is a damaged store.
const MAX_BUNDLE_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;

/// A statement id fit for a file name: what ids are (UUIDs), nothing that
/// could climb out of the directory.
fn safe_file_stem(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A key id as the directory writes it: 64 lowercase hex digits.
fn is_key_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Writes every held item (every revision, whatever its status now; TLP:RED
/// only with `include_red`) to `out` as a bundle anyone can verify with
/// standard tools (docs/protocol.md, "Verifying an exported bundle"):
///
/// - `<statement-id>.<revision>.dsse.json`: the DSSE JSON envelope exactly
///   as the agent verified and stored it (`payloadType`, base64 `payload`,
///   `signatures` with `keyid` and base64 `sig`);
/// - `keys/<keyid>.pem`: the SubjectPublicKeyInfo PEM of every key that
///   signed one of them, and of the hub's directory key;
/// - `directory.dsse.json`: the signed key directory the agent holds
///   (which org each key signs for and when it was valid), signed by the
///   hub's directory key.
///
/// `out` must not exist or be an empty directory. The bundle is written
/// into a sibling staging directory and renamed into place, so `out` is
/// either absent or whole.
pub fn export_dsse(
    agent: &Agent,
    out: &std::path::Path,
    include_red: bool,
) -> Result<DsseBundle, AgentError> {
    use std::collections::BTreeMap;
    let out_empty = match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(AgentError::Usage(format!(
                    "{}: not empty; a DSSE bundle goes into a new or empty directory",
                    out.display()
                )));
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(crate::error::io_err(out)(e)),
    };
    let directory = agent.directory().ok_or_else(|| {
        AgentError::Usage("no key directory held yet: run `member-agent sync` first".into())
    })?;
    let directory_json = agent
        .store
        .lock()
        .expect("store")
        .directory_json()?
        .ok_or_else(|| AgentError::Usage("no key directory held yet".into()))?;
    let rows = agent.store.lock().expect("store").export_rows()?;

    let mut files: Vec<(String, String)> = Vec::new();
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    let hub_key = &agent.loaded.hub_directory_key;
    keys.insert(hub_key.key_id(), pem_of(hub_key)?);
    files.push(("directory.dsse.json".into(), format!("{directory_json}\n")));
    let mut items = 0;
    for row in rows {
        if row.item.tlp == "red" && !include_red {
            continue;
        }
        let id = &row.item.id;
        if !safe_file_stem(id) {
            return Err(AgentError::Invalid(format!(
                "held statement id {:?} cannot name a file",
                id.escape_default().to_string()
            )));
        }
        if row.envelope_json.len() > MAX_BUNDLE_ENVELOPE_BYTES {
            return Err(AgentError::Invalid(format!(
                "held envelope of {id} is over {MAX_BUNDLE_ENVELOPE_BYTES} bytes"
            )));
        }
        let envelope = isac_core::Envelope::from_json(&row.envelope_json)
            .map_err(|e| AgentError::Invalid(format!("held envelope of {id}: {e}")))?;
        for sig in &envelope.signatures {
            if keys.contains_key(&sig.keyid) {
                continue;
            }
            let record = is_key_id(&sig.keyid)
                .then(|| directory.record(&sig.keyid))
                .flatten()
                .ok_or_else(|| {
                    AgentError::Invalid(format!(
                        "{id} is signed by key {} that the held key directory does not list",
                        sig.keyid.escape_default()
                    ))
                })?;
            keys.insert(sig.keyid.clone(), pem_of(&record.key)?);
        }
        files.push((
            format!("{id}.{}.dsse.json", row.item.revision),
            format!("{}\n", envelope.to_json()),
        ));
        items += 1;
    }

    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(crate::error::io_err(&parent))?;
    let name = out
        .file_name()
        .ok_or_else(|| AgentError::Usage(format!("{}: not a directory name", out.display())))?;
    let staging = parent.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = write_bundle(&staging, &files, &keys).and_then(|()| {
        if out_empty {
            std::fs::remove_dir(out).map_err(crate::error::io_err(out))?;
        }
        std::fs::rename(&staging, out).map_err(crate::error::io_err(out))
    });
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    written?;
    Ok(DsseBundle {
        items,
        keys: keys.len(),
    })
}

fn pem_of(key: &isac_core::VerifyingKey) -> Result<String, AgentError> {
    key.to_pem().map_err(|e| AgentError::Crypto(e.to_string()))
}

/// The bundle's files into `staging` (created afresh), each flushed to
/// disk before the caller renames the directory into place.
fn write_bundle(
    staging: &std::path::Path,
    files: &[(String, String)],
    keys: &std::collections::BTreeMap<String, String>,
) -> Result<(), AgentError> {
    use std::io::Write;
    let _ = std::fs::remove_dir_all(staging);
    let key_dir = staging.join("keys");
    std::fs::create_dir_all(&key_dir).map_err(crate::error::io_err(&key_dir))?;
    let write = |path: std::path::PathBuf, text: &str| -> Result<(), AgentError> {
        let mut f = std::fs::File::create(&path).map_err(crate::error::io_err(&path))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(crate::error::io_err(&path))
    };
    for (name, text) in files {
        write(staging.join(name), text)?;
    }
    for (key_id, pem) in keys {
        write(key_dir.join(format!("{key_id}.pem")), pem)?;
    }
    Ok(())
}

// === OSV ===

/// OSV ecosystem names for purl types (the ones `publish --osv` reads).
fn osv_ecosystem(purl_type: &str) -> Option<&'static str> {
    Some(match purl_type {
        "npm" => "npm",
        "pypi" => "PyPI",
        "cargo" => "crates.io",
        "golang" => "Go",
        "maven" => "Maven",
        "gem" => "RubyGems",
        "nuget" => "NuGet",
        "composer" => "Packagist",
        "hex" => "Hex",
        "pub" => "Pub",
        _ => return None,
    })
}

/// One `versions` entry as OSV: an exact version, or the events of a range
/// written as `publish --osv` writes them (`>=A <B`, `>=A <=B`, `<B`,
/// `<=B`, `>=A`, `*`). Other range syntaxes cannot be expressed.
fn osv_range(v: &str) -> Option<Result<Vec<serde_json::Value>, String>> {
    use serde_json::json;
    let v = v.trim();
    if v == "*" {
        return Some(Ok(vec![json!({"introduced": "0"})]));
    }
    if !v.starts_with(['<', '>', '=']) {
        return None;
    }
    let mut introduced = "0".to_owned();
    let mut end = None;
    for part in v.split_whitespace() {
        if let Some(x) = part.strip_prefix(">=") {
            introduced = x.to_owned();
        } else if let Some(x) = part.strip_prefix("<=") {
            end = Some(json!({"last_affected": x}));
        } else if let Some(x) = part.strip_prefix('<') {
            end = Some(json!({"fixed": x}));
        } else {
            return Some(Err(v.to_owned()));
        }
    }
    let mut events = vec![json!({"introduced": introduced})];
    events.extend(end);
    Some(Ok(events))
}

/// A package's purl type, OSV name, purl without version and the version,
/// read by the packages parser (canonical spelling). A purl signed before
/// sources were held to that parser, which only the lenient receive-side
/// check (`isac_core::observable::parse_purl`) takes, is still exported,
/// as written.
fn osv_package(purl: &str) -> Option<(String, String, String, Option<String>)> {
    if let Ok(p) = purl.parse::<isac_packages::purl::Purl>() {
        return Some((
            p.ty().to_owned(),
            p.full_name(),
            p.package().to_string(),
            p.version().map(str::to_owned),
        ));
    }
    let parsed = isac_core::observable::parse_purl(purl).ok()?;
    let name = isac_core::pct::decode_lossy(&parsed.name);
    let name = match &parsed.namespace {
        Some(ns) if parsed.ty == "maven" => format!("{}:{name}", isac_core::pct::decode_lossy(ns)),
        Some(ns) => format!("{}/{name}", isac_core::pct::decode_lossy(ns)),
        None => name,
    };
    let base = match purl.rfind('@') {
        Some(at) if parsed.version.is_some() && at > "pkg:".len() => &purl[..at],
        _ => purl,
    };
    let version = parsed.version.as_deref().map(isac_core::pct::decode_lossy);
    Some((parsed.ty, name, base.to_owned(), version))
}

/// An OSV record for a package indicator (`None` for anything else). Its id
/// is `ISAC-<statement id>`; an OSV id it was imported from becomes an alias.
fn osv_record(s: &Statement) -> Option<serde_json::Value> {
    use serde_json::json;
    let Body::Indicator(i) = &s.body else {
        return None;
    };
    let Observable::Package {
        purl,
        versions,
        threat,
        imitates,
    } = &i.observable
    else {
        return None;
    };
    let (ty, name, base, version) = osv_package(purl)?;
    let mut package = json!({"name": name, "purl": base});
    package["ecosystem"] = json!(osv_ecosystem(&ty).unwrap_or(ty.as_str()));
    let mut exact = Vec::new();
    let mut ranges = Vec::new();
    let mut unexpressed = Vec::new();
    let listed: Vec<String> = if versions.is_empty() {
        match version {
            Some(v) => vec![v],
            None => vec!["*".into()],
        }
    } else {
        versions.clone()
    };
    for v in &listed {
        match osv_range(v) {
            None => exact.push(v.clone()),
            Some(Ok(events)) => ranges.push(json!({"type": "ECOSYSTEM", "events": events})),
            Some(Err(r)) => unexpressed.push(r),
        }
    }
    if !unexpressed.is_empty() {
        // Flagging too much beats missing an affected version.
        ranges.push(json!({"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}));
    }
    let mut affected = json!({"package": package});
    if !exact.is_empty() {
        affected["versions"] = json!(exact);
    }
    if !ranges.is_empty() {
        affected["ranges"] = json!(ranges);
    }
    let aliases: Vec<&str> = i
        .tags
        .iter()
        .filter_map(|t| t.strip_prefix("osv:"))
        .collect();
    let mut record = json!({
        "schema_version": "1.6.0",
        "id": format!("ISAC-{}", s.id),
        "modified": s.created,
        "published": s.created,
        "summary": i.title,
        "details": i.description,
        "affected": [affected],
        "references": i.references.iter().map(|u| json!({"type": "WEB", "url": u})).collect::<Vec<_>>(),
        "database_specific": {
            "isac": {
                "statement_id": s.id.to_string(),
                "revision": s.revision,
                "source": s.author(),
                "tlp": s.tlp.as_str(),
                "tlp_marking": s.tlp.stix_marking_id(),
                "severity": i.severity.as_str(),
                "confidence": i.confidence,
                "threat": threat,
                "labels": i.tags,
            }
        }
    });
    if !aliases.is_empty() {
        record["aliases"] = json!(aliases);
    }
    if let Some(im) = imitates {
        record["database_specific"]["isac"]["imitates"] = json!(im);
    }
    if !unexpressed.is_empty() {
        record["database_specific"]["isac"]["versions"] = json!(versions);
    }
    Some(record)
}

// === MISP ===

/// A name-based UUID (SHA-256 of `name`, UUIDv5 layout), so re-exports
/// give the same ids.
fn derived_uuid(name: &str) -> uuid::Uuid {
    let digest = openssl::sha::sha256(name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes)
}

/// The MISP taxonomy tag for a TLP level (`tlp:amber+strict` included).
fn misp_tlp_tag(tlp: isac_core::Tlp) -> serde_json::Value {
    serde_json::json!({"name": format!("tlp:{}", tlp.as_str())})
}

/// MISP attributes for one statement: the observable with its MISP type and
/// category (hashes, domain, ip-dst, url, github-repository/username,
/// vulnerability; packages as `text`, MISP has no purl type), plus `link`s
/// for references. Each carries its item's TLP tag.
fn misp_attributes(s: &Statement) -> Vec<serde_json::Value> {
    use serde_json::json;
    let timestamp = isac_core::time::parse_rfc3339(&s.created)
        .unwrap_or(0)
        .to_string();
    let (title, mut values): (String, Vec<(&str, &str, String, bool)>) = match &s.body {
        Body::Indicator(i) => {
            let mut v: Vec<(&str, &str, String, bool)> = Vec::new();
            match &i.observable {
                Observable::Package { purl, .. } => {
                    v.push(("text", "Payload delivery", purl.clone(), false))
                }
                Observable::Artifact {
                    sha256,
                    sha512,
                    filename,
                    purl,
                } => {
                    for (ty, h) in [("sha256", sha256), ("sha512", sha512)] {
                        if let Some(h) = h {
                            match filename {
                                Some(f) => v.push((
                                    if ty == "sha256" {
                                        "filename|sha256"
                                    } else {
                                        "filename|sha512"
                                    },
                                    "Payload delivery",
                                    format!("{f}|{h}"),
                                    true,
                                )),
                                None => v.push((ty, "Payload delivery", h.clone(), true)),
                            }
                        }
                    }
                    if let Some(p) = purl {
                        v.push(("text", "Payload delivery", p.clone(), false));
                    }
                }
                Observable::Repository { url, commit, .. } => {
                    if url.starts_with("https://github.com/") {
                        v.push(("github-repository", "Social network", url.clone(), true));
                    } else {
                        v.push(("url", "Payload delivery", url.clone(), true));
                    }
                    if let Some(c) = commit {
                        v.push(("git-commit-id", "Internal reference", c.clone(), false));
                    }
                }
                Observable::Account { account } => match account.split_once(':') {
                    Some(("github", user)) => {
                        v.push(("github-username", "Social network", user.to_owned(), true))
                    }
                    _ => v.push(("text", "Social network", account.clone(), false)),
                },
                Observable::Network { domain, ip, url } => {
                    if let Some(d) = domain {
                        v.push(("domain", "Network activity", d.clone(), true));
                    }
                    if let Some(a) = ip {
                        v.push(("ip-dst", "Network activity", a.clone(), true));
                    }
                    if let Some(u) = url {
                        v.push(("url", "Network activity", u.clone(), true));
                    }
                }
                Observable::Vulnerability { vuln_id, purls } => {
                    v.push(("vulnerability", "External analysis", vuln_id.clone(), false));
                    for p in purls {
                        v.push(("text", "External analysis", p.clone(), false));
                    }
                }
            }
            for r in &i.references {
                v.push(("link", "External analysis", r.clone(), false));
            }
            (i.title.clone(), v)
        }
        Body::Bulletin(b) => (
            b.title.clone(),
            vec![("text", "Other", b.body.clone(), false)],
        ),
        _ => return Vec::new(),
    };
    values
        .drain(..)
        .enumerate()
        .map(|(n, (ty, category, value, to_ids))| {
            json!({
                "uuid": derived_uuid(&format!("isac-hub/misp/{}/{}/{n}", s.id, s.revision)).to_string(),
                "type": ty,
                "category": category,
                "value": value,
                "to_ids": to_ids,
                "comment": title,
                "timestamp": timestamp,
                "distribution": "5",
                "disable_correlation": false,
                "Tag": [misp_tlp_tag(s.tlp)],
            })
        })
        .collect()
}

/// A MISP event (core format) holding `attributes`: tagged with the
/// strictest TLP among them, threat level from the highest severity,
/// distribution "your organisation only" (TLP decides any further sharing).
fn misp_event(
    org_id: &str,
    attributes: Vec<serde_json::Value>,
    tlp: Option<isac_core::Tlp>,
    severity: Option<isac_core::Severity>,
) -> serde_json::Value {
    use isac_core::Severity;
    use serde_json::json;
    let latest = attributes
        .iter()
        .filter_map(|a| a["timestamp"].as_str()?.parse::<i64>().ok())
        .max()
        .unwrap_or(0);
    let date = isac_core::time::format_rfc3339(latest)[..10].to_owned();
    let seed: Vec<&str> = attributes
        .iter()
        .filter_map(|a| a["uuid"].as_str())
        .collect();
    let threat_level = match severity {
        Some(Severity::Critical | Severity::High) => "1",
        Some(Severity::Medium) => "2",
        Some(Severity::Low) => "3",
        _ => "4",
    };
    json!({
        "Event": {
            "uuid": derived_uuid(&format!("isac-hub/misp-event/{}", seed.join(","))).to_string(),
            "info": format!("isac-hub export from {org_id}: {} attribute(s)", attributes.len()),
            "date": date,
            "timestamp": latest.to_string(),
            "published": false,
            "analysis": "2",
            "threat_level_id": threat_level,
            "distribution": "0",
            "Orgc": {"name": org_id, "uuid": derived_uuid(&format!("isac-hub/org/{org_id}")).to_string()},
            "Tag": tlp.map(misp_tlp_tag).into_iter().collect::<Vec<_>>(),
            "Attribute": attributes,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_file_names_take_only_ids_and_key_ids() {
        for ok in ["0f9c1a8e-7b6d-4c5e-9f00-123456789abc", "a", "ISAC-1"] {
            assert!(safe_file_stem(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            "a.b",
            "a b",
            "é",
            "x\0",
            &"a".repeat(65),
        ] {
            assert!(!safe_file_stem(bad), "{bad:?}");
        }
        assert!(is_key_id(&"ab".repeat(32)));
        for bad in [
            "",
            "AB".repeat(32).as_str(),
            &"a".repeat(63),
            "../../etc/passwd",
        ] {
            assert!(!is_key_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn osv_export_names_packages_as_the_packages_parser_does() {
        for (purl, ty, name, base, version) in [
            (
                "pkg:npm/@Scope/Evil@1.0.0",
                "npm",
                "@scope/evil",
                "pkg:npm/%40scope/evil",
                Some("1.0.0"),
            ),
            (
                "pkg:pypi/Foo.Bar_baz@2.0?os=linux",
                "pypi",
                "foo-bar-baz",
                "pkg:pypi/foo-bar-baz",
                Some("2.0"),
            ),
            (
                "pkg:maven/org.example/app@1.0%2Bbuild",
                "maven",
                "org.example:app",
                "pkg:maven/org.example/app",
                Some("1.0+build"),
            ),
            // Signed before sources were held to the packages parser: only
            // the lenient receive-side check takes it; still exported.
            (
                "pkg:maven/log4j-core@2.14.1",
                "maven",
                "log4j-core",
                "pkg:maven/log4j-core",
                Some("2.14.1"),
            ),
        ] {
            let got = osv_package(purl).unwrap();
            assert_eq!(
                (
                    got.0.as_str(),
                    got.1.as_str(),
                    got.2.as_str(),
                    got.3.as_deref()
                ),
                (ty, name, base, version),
                "{purl}"
            );
        }
        assert!(osv_package("not a purl").is_none());
    }
}
