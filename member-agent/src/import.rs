//! `member-agent publish --osv FILE|DIR`: publish OSV records (OpenSSF
//! malicious-packages) as signed indicators, idempotently. The agent
//! remembers which statement each (OSV id, package) became: an unchanged
//! record is skipped, a record with a newer `modified` becomes a new signed
//! revision of the same statement, and a `withdrawn` record retracts what an
//! earlier import published.

use std::path::Path;

use isac_core::audience::AudienceOpening;
use isac_core::statement::Retraction;
use isac_core::{Body, Envelope, Tlp, PAYLOAD_TYPE_STATEMENT_V1};

use crate::draft::{new_statement, Prepared};
use crate::error::AgentError;
use crate::osv::load_osv_path;
use crate::publish::publish_batch;
use crate::sync::Agent;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub records: usize,
    pub published: usize,
    pub revised: usize,
    pub unchanged: usize,
    pub retracted: usize,
    /// Items the hub refused, with its reason.
    pub refused: Vec<String>,
}

/// One statement to send and what to remember once accepted.
struct Pending {
    prepared: Prepared,
    osv_id: String,
    purl: String,
    modified: String,
    tlp: String,
    retraction: bool,
}

pub async fn import_osv(
    agent: &Agent,
    path: &Path,
    tlp: Tlp,
    audience: &[String],
) -> Result<ImportReport, AgentError> {
    let records = load_osv_path(path).map_err(|e| AgentError::Usage(e.to_string()))?;
    let mut report = ImportReport {
        records: records.len(),
        ..Default::default()
    };
    let created = isac_core::time::format_rfc3339(crate::now());
    let mut pending = Vec::new();
    for record in records {
        if record.withdrawn.is_some() {
            for (purl, statement_id, _revision, row_tlp) in agent
                .store
                .lock()
                .expect("store")
                .imports_of(&record.osv_id)?
            {
                let target = uuid::Uuid::parse_str(&statement_id)
                    .map_err(|e| AgentError::Invalid(e.to_string()))?;
                let row_tlp: Tlp = row_tlp
                    .parse()
                    .map_err(|e: isac_core::tlp::UnknownTlp| AgentError::Invalid(e.to_string()))?;
                let body = Body::Retraction(Retraction {
                    target,
                    reason: format!("{} was withdrawn", record.osv_id),
                });
                let prepared = new_statement(
                    agent.org_id(),
                    created.clone(),
                    row_tlp,
                    audience,
                    false,
                    body,
                )?;
                pending.push(Pending {
                    prepared,
                    osv_id: record.osv_id.clone(),
                    purl,
                    modified: record.modified.clone(),
                    tlp: row_tlp.as_str().to_owned(),
                    retraction: true,
                });
            }
            continue;
        }
        for mut draft in record.drafts {
            draft.tlp = Some(tlp.as_str().to_owned());
            if !audience.is_empty() {
                draft.audience = Some(audience.to_vec());
            }
            let purl = draft.purl.clone().unwrap_or_default();
            let known = agent
                .store
                .lock()
                .expect("store")
                .import_row(&record.osv_id, &purl)?;
            let mut prepared = draft.into_prepared(agent.org_id(), created.clone())?;
            match known {
                Some((_, _, modified, retracted)) if modified == record.modified && !retracted => {
                    report.unchanged += 1;
                    continue;
                }
                Some((statement_id, revision, _, false)) => {
                    prepared.statement.id = uuid::Uuid::parse_str(&statement_id)
                        .map_err(|e| AgentError::Invalid(e.to_string()))?;
                    prepared.statement.revision = revision + 1;
                }
                _ => {}
            }
            pending.push(Pending {
                prepared,
                osv_id: record.osv_id.clone(),
                purl,
                modified: record.modified.clone(),
                tlp: tlp.as_str().to_owned(),
                retraction: false,
            });
        }
    }
    for chunk in pending.chunks(500) {
        let items: Vec<(Envelope, Vec<AudienceOpening>)> = chunk
            .iter()
            .map(|p| {
                let env = agent.loaded.signing_key.sign_envelope(
                    PAYLOAD_TYPE_STATEMENT_V1,
                    p.prepared.statement.canonical_bytes(),
                )?;
                Ok((env, p.prepared.openings.clone()))
            })
            .collect::<Result<_, AgentError>>()?;
        let results = publish_batch(agent, items).await?;
        for (p, result) in chunk.iter().zip(results) {
            match result {
                Ok(_) => {
                    let s = &p.prepared.statement;
                    let store = agent.store.lock().expect("store");
                    if p.retraction {
                        store.mark_import_retracted(&p.osv_id, &p.purl)?;
                        report.retracted += 1;
                    } else {
                        store.remember_import(
                            &p.osv_id,
                            &p.purl,
                            &s.id.to_string(),
                            s.revision,
                            &p.modified,
                            &p.tlp,
                        )?;
                        if s.revision > 1 {
                            report.revised += 1;
                        } else {
                            report.published += 1;
                        }
                    }
                }
                Err(reason) => report
                    .refused
                    .push(format!("{} {}: {reason}", p.osv_id, p.purl)),
            }
        }
    }
    Ok(report)
}

/// Publishes every row of a CSV file (see `crate::csv`), all or nothing
/// unless `skip_invalid`: every row is validated before anything is sent.
pub async fn import_csv(
    agent: &Agent,
    path: &Path,
    skip_invalid: bool,
) -> Result<ImportReport, AgentError> {
    let text = std::fs::read_to_string(path).map_err(crate::error::io_err(path))?;
    let rows = crate::csv::drafts_from_csv(&text)?;
    let created = isac_core::time::format_rfc3339(crate::now());
    let mut report = ImportReport {
        records: rows.len(),
        ..Default::default()
    };
    let mut ready = Vec::new();
    let mut invalid = Vec::new();
    for (line, row) in rows {
        match row.and_then(|d| {
            d.into_prepared(agent.org_id(), created.clone())
                .map_err(|e| e.to_string())
        }) {
            Ok(p) => ready.push(p),
            Err(e) => invalid.push(format!("{}:{line}: {e}", path.display())),
        }
    }
    if !invalid.is_empty() && !skip_invalid {
        return Err(AgentError::Usage(format!(
            "{} invalid row(s), nothing published (use --skip-invalid to publish the rest):\n{}",
            invalid.len(),
            invalid.join("\n")
        )));
    }
    report.refused = invalid;
    for chunk in ready.chunks(500) {
        let items = chunk
            .iter()
            .map(|p| {
                let env = agent
                    .loaded
                    .signing_key
                    .sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, p.statement.canonical_bytes())?;
                Ok((env, p.openings.clone()))
            })
            .collect::<Result<Vec<_>, AgentError>>()?;
        for (p, result) in chunk.iter().zip(publish_batch(agent, items).await?) {
            match result {
                Ok(_) => report.published += 1,
                Err(reason) => report
                    .refused
                    .push(format!("{}: {reason}", p.statement.title())),
            }
        }
    }
    Ok(report)
}
