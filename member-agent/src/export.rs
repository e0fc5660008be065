//! `member-agent export`: the verified local store as a STIX 2.1 bundle or
//! CSV (the same columns `publish --csv` reads). TLP:RED only when asked;
//! retracted, expired and key-revoked items are left out.

use isac_core::{stix, Body, Observable, Statement};

use crate::error::AgentError;
use crate::sync::Agent;

pub enum Format {
    Stix,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = AgentError;
    fn from_str(s: &str) -> Result<Self, AgentError> {
        match s {
            "stix" => Ok(Format::Stix),
            "csv" => Ok(Format::Csv),
            other => Err(AgentError::Usage(format!(
                "unknown export format `{other}`: use stix or csv"
            ))),
        }
    }
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
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
    Some(f.iter().map(|v| csv_field(v)).collect::<Vec<_>>().join(","))
}

/// One held item as a STIX 2.1 bundle or a CSV document (header and one
/// row), as the whole-store export would write it; `None` for statements
/// CSV has no row for (bulletins, sightings, retractions).
pub fn export_one(row: &crate::localstore::ExportRow, format: Format) -> Option<String> {
    let s = serde_json::from_str::<Statement>(&row.statement_json).ok()?;
    match format {
        Format::Stix => {
            let identity = stix::source_identity(&s, &s.source);
            let identity_id = identity["id"].as_str().unwrap_or_default().to_owned();
            let ctx = stix::StixContext {
                source_identity_id: &identity_id,
                envelope_digest: &row.digest,
                key_id: &row.key_id,
                received_at: &row.item.created,
            };
            let mut objects = vec![identity];
            objects.extend(stix::objects_for(&s, &ctx));
            let seed = format!("member-agent-item-{}-{}", s.id, s.revision);
            serde_json::to_string_pretty(&stix::bundle(&seed, objects)).ok()
        }
        Format::Csv => csv_row(&s).map(|line| format!("{CSV_HEADER}\n{line}\n")),
    }
}

/// Renders the export; returns the text and how many items it holds.
pub fn export(
    agent: &Agent,
    format: Format,
    include_red: bool,
) -> Result<(String, usize), AgentError> {
    let rows = agent.store.lock().expect("store").export_rows()?;
    let mut objects = Vec::new();
    let mut lines = vec![CSV_HEADER.to_owned()];
    let mut count = 0;
    for row in rows {
        let crate::localstore::ExportRow {
            item,
            statement_json,
            key_id,
            digest,
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
                let identity = stix::source_identity(&s, &s.source);
                let identity_id = identity["id"].as_str().unwrap_or_default().to_owned();
                let ctx = stix::StixContext {
                    source_identity_id: &identity_id,
                    envelope_digest: &digest,
                    key_id: &key_id,
                    received_at: &item.created,
                };
                if !objects
                    .iter()
                    .any(|o: &serde_json::Value| o["id"] == identity["id"])
                {
                    objects.push(identity);
                }
                objects.extend(stix::objects_for(&s, &ctx));
                count += 1;
            }
            Format::Csv => {
                if let Some(line) = csv_row(&s) {
                    lines.push(line);
                    count += 1;
                }
            }
        }
    }
    let text = match format {
        Format::Stix => serde_json::to_string_pretty(&stix::bundle("member-agent-export", objects))
            .map_err(|e| AgentError::Invalid(e.to_string()))?,
        Format::Csv => lines.join("\n") + "\n",
    };
    Ok((text, count))
}
