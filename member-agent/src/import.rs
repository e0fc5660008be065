//! `member-agent publish --osv FILE|DIR`: publish OSV records (OpenSSF
//! malicious-packages) as signed indicators, idempotently. The agent
//! remembers which statement each (OSV id, package) became: an unchanged
//! record is skipped, a record with a newer `modified` becomes a new signed
//! revision of the same statement, and a `withdrawn` record retracts what an
//! earlier import published.
//!
//! Problems are per record and all named at once: a record that cannot be
//! read (not JSON, a missing or malformed field, a file too large or not
//! UTF-8) or a package that does not make a valid indicator is *invalid*:
//! without `--skip-invalid` the import stops before sending anything and
//! lists every one; with it, the rest is published and they are listed.
//! What carries nothing to publish is *skipped*, named, and never an
//! error: an affected package in an ecosystem we cannot name, a record
//! with no affected package, and a report without an `id`.
//!
//! A report without an `id` (ossf/malicious-packages keeps new reports as
//! `MAL-0000-<package>.json` with an empty id until one is assigned, and
//! osv.dev does not import them either) is skipped, not published under a
//! name made from its file: the imports table is keyed by OSV id, so the
//! same report under its real id would be a second indicator, and the
//! file stem is not stable (the file is renamed when the id comes). Once
//! the id is assigned, the next import publishes it once.

use std::path::Path;

use isac_core::audience::AudienceOpening;
use isac_core::statement::Retraction;
use isac_core::{Body, Envelope, Tlp};

use crate::draft::{new_statement, Prepared};
use crate::error::AgentError;
use crate::osv::{load_osv_path, OsvError};
use crate::publish::publish_batch_noted;
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
    /// Records, packages or objects that carry nothing to publish, each as
    /// `where: why`.
    pub skipped: Vec<String>,
    /// Records, rows or objects that could not be imported, with where and why.
    pub invalid: Vec<String>,
    /// What the scan before signing replaced or let through, with where.
    pub notes: Vec<String>,
}

/// The scan before signing, for one imported item: a refusal makes it
/// invalid (named, nothing sent unless `--skip-invalid`).
fn scrub(
    agent: &Agent,
    prepared: &mut Prepared,
    label: &str,
    notes: &mut Vec<String>,
) -> Result<(), AgentError> {
    let outcome = agent
        .scrub
        .apply(&mut prepared.statement, &agent.scrub_choice)?;
    prepared.overrides = outcome.overrides();
    notes.extend(outcome.notes().into_iter().map(|n| format!("{label}: {n}")));
    Ok(())
}

/// One statement to send and what to remember once accepted.
struct Pending {
    prepared: Prepared,
    /// The record's key in the imports table (OSV id, STIX id).
    osv_id: String,
    /// The part of the record it came from (purl, observable value).
    purl: String,
    modified: String,
    tlp: String,
    retraction: bool,
    /// How to name it in messages.
    label: String,
}

/// Progress on a terminal: `label: done/total` on stderr, redrawn in
/// place, only when stderr is a terminal (never in logs or pipes).
pub struct Progress {
    label: &'static str,
    total: usize,
    done: usize,
    on: bool,
}

impl Progress {
    pub fn new(label: &'static str, total: usize) -> Self {
        use std::io::IsTerminal;
        Progress {
            label,
            total,
            done: 0,
            on: total > 0 && std::io::stderr().is_terminal(),
        }
    }

    pub fn advance(&mut self, n: usize) {
        self.done += n;
        if self.on {
            eprint!("\r{}: {}/{} sent", self.label, self.done, self.total);
        }
    }

    pub fn finish(&self) {
        if self.on {
            eprintln!();
        }
    }
}

/// Signs and sends `pending` in batches, remembering what each accepted
/// statement came from.
async fn send_pending(
    agent: &Agent,
    pending: &[Pending],
    report: &mut ImportReport,
    progress: &mut Progress,
) -> Result<(), AgentError> {
    for chunk in pending.chunks(500) {
        let items: Vec<(Envelope, Vec<AudienceOpening>, Vec<String>)> = chunk
            .iter()
            .map(|p| {
                let env = agent
                    .loaded
                    .signing_key
                    .sign_statement(&p.prepared.statement)?;
                Ok((
                    env,
                    p.prepared.openings.clone(),
                    p.prepared.overrides.clone(),
                ))
            })
            .collect::<Result<_, AgentError>>()?;
        let results = publish_batch_noted(agent, items).await?;
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
                Err(reason) => report.refused.push(format!("{}: {reason}", p.label)),
            }
        }
        progress.advance(chunk.len());
    }
    Ok(())
}

pub async fn import_osv(
    agent: &Agent,
    path: &Path,
    tlp: Tlp,
    audience: &[String],
    skip_invalid: bool,
) -> Result<ImportReport, AgentError> {
    let loaded = load_osv_path(path).map_err(|e| AgentError::Usage(e.to_string()))?;
    let mut report = ImportReport {
        records: loaded.len(),
        ..Default::default()
    };
    let created = isac_core::time::format_rfc3339(crate::now());
    let mut pending = Vec::new();
    let mut invalid = Vec::new();
    let mut records = Vec::new();
    for r in loaded {
        match r {
            Ok(record) => records.push(record),
            Err(OsvError::NoId { at }) => report.skipped.push(format!(
                "{at}: no `id` yet (a report awaiting its id); it is imported once it has one"
            )),
            Err(e) => invalid.push(e.to_string()),
        }
    }
    for record in records {
        if record.withdrawn.is_some() {
            for (purl, statement_id, _revision, row_tlp) in agent
                .store
                .lock()
                .expect("store")
                .imports_of(&record.osv_id)?
            {
                let purl_label = purl.clone();
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
                    label: format!("{} {}", record.osv_id, purl_label),
                });
            }
            continue;
        }
        for (i, why) in &record.skipped {
            report
                .skipped
                .push(format!("{} affected[{i}]: {why}", record.at));
        }
        if record.drafts.is_empty() {
            if record.skipped.is_empty() {
                report.skipped.push(format!(
                    "{}: no affected package that can be imported",
                    record.at
                ));
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
            let label = format!("{} {purl}", record.at);
            let mut prepared = match draft
                .into_prepared(agent.org_id(), created.clone())
                .and_then(|mut p| scrub(agent, &mut p, &label, &mut report.notes).map(|()| p))
            {
                Ok(p) => p,
                Err(e) => {
                    invalid.push(format!("{} {purl}: {e}", record.at));
                    continue;
                }
            };
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
            let label = format!("{} {}", record.osv_id, purl);
            pending.push(Pending {
                prepared,
                osv_id: record.osv_id.clone(),
                purl,
                modified: record.modified.clone(),
                tlp: tlp.as_str().to_owned(),
                retraction: false,
                label,
            });
        }
    }
    if !invalid.is_empty() && !skip_invalid {
        return Err(AgentError::Usage(format!(
            "{} invalid record(s) or package(s), nothing published (use --skip-invalid to publish the rest):\n{}",
            invalid.len(),
            invalid.join("\n")
        )));
    }
    report.invalid = invalid;
    let mut progress = Progress::new("osv import", pending.len());
    send_pending(agent, &pending, &mut report, &mut progress).await?;
    progress.finish();
    Ok(report)
}

/// Publishes every row of a CSV file (see `crate::csv`), all or nothing
/// unless `skip_invalid`: every row is validated before anything is sent.
pub async fn import_csv(
    agent: &Agent,
    path: &Path,
    skip_invalid: bool,
) -> Result<ImportReport, AgentError> {
    let text =
        crate::error::read_input_bounded(path, crate::csv::MAX_CSV_BYTES as u64, "a CSV file")?;
    let rows = crate::csv::drafts_from_csv(&text)?;
    let created = isac_core::time::format_rfc3339(crate::now());
    let mut report = ImportReport {
        records: rows.len(),
        ..Default::default()
    };
    let mut ready = Vec::new();
    let mut invalid = Vec::new();
    for (line, row) in rows {
        let label = format!("{}:{line}", path.display());
        match row.and_then(|d| {
            d.check_versions()
                .and_then(|()| d.into_prepared(agent.org_id(), created.clone()))
                .and_then(|mut p| scrub(agent, &mut p, &label, &mut report.notes).map(|()| p))
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
    report.invalid = invalid;
    let mut progress = Progress::new("csv import", ready.len());
    for chunk in ready.chunks(500) {
        let items = chunk
            .iter()
            .map(|p| {
                let env = agent.loaded.signing_key.sign_statement(&p.statement)?;
                Ok((env, p.openings.clone(), p.overrides.clone()))
            })
            .collect::<Result<Vec<_>, AgentError>>()?;
        for (p, result) in chunk.iter().zip(publish_batch_noted(agent, items).await?) {
            match result {
                Ok(_) => report.published += 1,
                Err(reason) => report
                    .refused
                    .push(format!("{}: {reason}", p.statement.title())),
            }
        }
        progress.advance(chunk.len());
    }
    progress.finish();
    Ok(report)
}

/// Largest STIX bundle file read.
pub const MAX_STIX_BYTES: u64 = 64 * 1024 * 1024;

/// Publishes a STIX 2.1 bundle (see `isac_core::stix_import`): indicators
/// (one per observable), vulnerabilities, software and malware samples as
/// indicators, reports as bulletins (coordinators only), revoked objects as
/// retractions of what an earlier import made. Objects without a TLP
/// marking get `default_tlp`; `audience` applies to AMBER and stricter.
/// Every object is checked before anything is sent; a bad one (named by its
/// path in the bundle) stops the import unless `skip_invalid`. Re-importing
/// the same bundle changes nothing: the agent remembers which statement each
/// (STIX id, observable) became, and a newer `modified` makes a revision.
pub async fn import_stix(
    agent: &Agent,
    path: &Path,
    default_tlp: Option<Tlp>,
    audience: &[String],
    skip_invalid: bool,
) -> Result<ImportReport, AgentError> {
    use isac_core::stix_import::{parse_bundle, Content};
    use isac_core::Observable;

    let size = std::fs::metadata(path)
        .map_err(|e| AgentError::Usage(format!("{}: cannot read: {e}", path.display())))?
        .len();
    if size > MAX_STIX_BYTES {
        return Err(AgentError::Usage(format!(
            "{}: {size} bytes is more than the {MAX_STIX_BYTES} bytes a STIX bundle may hold",
            path.display()
        )));
    }
    let text = crate::error::read_input_bounded(path, MAX_STIX_BYTES, "a STIX bundle")?;
    let json: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| AgentError::Usage(format!("{}: not JSON: {e}", path.display())))?;
    let parsed =
        parse_bundle(&json).map_err(|e| AgentError::Usage(format!("{}: {e}", path.display())))?;
    let file = path.display().to_string();
    let mut report = ImportReport {
        records: parsed.objects.len() + parsed.skipped.len() + parsed.invalid.len(),
        ..Default::default()
    };
    report.skipped = parsed
        .skipped
        .iter()
        .map(|(p, why)| format!("{p}: {why}"))
        .collect();
    let mut invalid: Vec<String> = parsed
        .invalid
        .iter()
        .map(|(p, why)| format!("{file}: {p}: {why}"))
        .collect();
    let created = isac_core::time::format_rfc3339(crate::now());
    let mut indicators = Vec::new();
    let mut bulletins = Vec::new();
    // STIX id -> statement ids it became (for reports' references).
    let mut statement_of: std::collections::HashMap<String, Vec<uuid::Uuid>> = Default::default();
    let mut reports = Vec::new();
    for object in &parsed.objects {
        let Some(tlp) = object.tlp.or(default_tlp) else {
            invalid.push(format!(
                "{file}: {}: no TLP marking; give --tlp for objects without one",
                object.path
            ));
            continue;
        };
        let audience: &[String] = if tlp >= Tlp::Amber { audience } else { &[] };
        let items: Vec<(String, Body)> = match &object.content {
            Content::Revoked => {
                let live = agent
                    .store
                    .lock()
                    .expect("store")
                    .imports_of(&object.stix_id)?;
                if live.is_empty() {
                    report.skipped.push(format!(
                        "{}: revoked, and nothing imported from it",
                        object.path
                    ));
                }
                for (key, statement_id, _revision, row_tlp) in live {
                    let target = uuid::Uuid::parse_str(&statement_id)
                        .map_err(|e| AgentError::Invalid(e.to_string()))?;
                    let row_tlp: Tlp =
                        row_tlp.parse().map_err(|e: isac_core::tlp::UnknownTlp| {
                            AgentError::Invalid(e.to_string())
                        })?;
                    let body = Body::Retraction(Retraction {
                        target,
                        reason: format!("{} was revoked", object.stix_id),
                    });
                    match new_statement(agent.org_id(), created.clone(), row_tlp, &[], false, body)
                    {
                        Ok(prepared) => indicators.push(Pending {
                            prepared,
                            osv_id: object.stix_id.clone(),
                            purl: key,
                            modified: object.version.clone(),
                            tlp: row_tlp.as_str().to_owned(),
                            retraction: true,
                            label: object.path.clone(),
                        }),
                        Err(e) => invalid.push(format!("{file}: {}: {e}", object.path)),
                    }
                }
                continue;
            }
            Content::Indicators(list) => list
                .iter()
                .map(|i| {
                    let key = match &i.observable {
                        Observable::Package { purl, .. } => purl.clone(),
                        o => format!("{}:{}", o.kind(), o.primary_value()),
                    };
                    (key, Body::Indicator(i.clone()))
                })
                .collect(),
            Content::Bulletin { .. } => {
                reports.push((object, tlp, audience));
                continue;
            }
        };
        for (key, body) in items {
            match prepare_import(
                agent,
                &object.stix_id,
                &key,
                &object.version,
                tlp,
                audience,
                &created,
                body,
                &mut report.notes,
            ) {
                Ok(Planned::Unchanged(id)) => {
                    report.unchanged += 1;
                    statement_of
                        .entry(object.stix_id.clone())
                        .or_default()
                        .push(id);
                }
                Ok(Planned::Send(prepared)) => {
                    let prepared = *prepared;
                    statement_of
                        .entry(object.stix_id.clone())
                        .or_default()
                        .push(prepared.statement.id);
                    indicators.push(Pending {
                        prepared,
                        osv_id: object.stix_id.clone(),
                        purl: key,
                        modified: object.version.clone(),
                        tlp: tlp.as_str().to_owned(),
                        retraction: false,
                        label: object.path.clone(),
                    });
                }
                Err(e) => invalid.push(format!("{file}: {}: {e}", object.path)),
            }
        }
    }
    for (object, tlp, audience) in reports {
        let Content::Bulletin {
            title,
            body,
            severity,
            incident_id,
            refs,
        } = &object.content
        else {
            continue;
        };
        let related: Vec<uuid::Uuid> = refs
            .iter()
            .filter_map(|r| statement_of.get(r))
            .flatten()
            .copied()
            .take(isac_core::statement::MAX_LIST_LEN)
            .collect();
        let body = Body::Bulletin(isac_core::statement::Bulletin {
            title: title.clone(),
            body: body.clone(),
            severity: *severity,
            incident_id: incident_id.clone(),
            related,
        });
        match prepare_import(
            agent,
            &object.stix_id,
            "report",
            &object.version,
            tlp,
            audience,
            &created,
            body,
            &mut report.notes,
        ) {
            Ok(Planned::Unchanged(_)) => report.unchanged += 1,
            Ok(Planned::Send(prepared)) => bulletins.push(Pending {
                prepared: *prepared,
                osv_id: object.stix_id.clone(),
                purl: "report".into(),
                modified: object.version.clone(),
                tlp: tlp.as_str().to_owned(),
                retraction: false,
                label: object.path.clone(),
            }),
            Err(e) => invalid.push(format!("{file}: {}: {e}", object.path)),
        }
    }
    if !invalid.is_empty() && !skip_invalid {
        return Err(AgentError::Usage(format!(
            "{} invalid object(s), nothing published (use --skip-invalid to publish the rest):\n{}",
            invalid.len(),
            invalid.join("\n")
        )));
    }
    let mut progress = Progress::new("stix import", bulletins.len() + indicators.len());
    // Bulletins first: only coordinators may send them, and the hub is the
    // one that knows our role. A refusal stops the import before anything
    // else is sent, unless told to skip what is invalid.
    let mut first = ImportReport::default();
    send_pending(agent, &bulletins, &mut first, &mut progress).await?;
    let (role, other): (Vec<String>, Vec<String>) = first
        .refused
        .into_iter()
        .partition(|r| r.contains("PermissionDenied"));
    let role: Vec<String> = role
        .into_iter()
        .map(|r| {
            format!(
                "{file}: {r} (a report becomes a bulletin, which only coordinators may publish)"
            )
        })
        .collect();
    report.published += first.published;
    report.revised += first.revised;
    report.refused.extend(other);
    if !role.is_empty() && !skip_invalid {
        progress.finish();
        return Err(AgentError::Usage(format!(
            "{} report(s) refused, nothing else published (use --skip-invalid to publish the rest):\n{}",
            role.len(),
            role.join("\n")
        )));
    }
    invalid.extend(role);
    report.invalid = invalid;
    send_pending(agent, &indicators, &mut report, &mut progress).await?;
    progress.finish();
    Ok(report)
}

enum Planned {
    /// Imported before from the same version: the statement it became.
    Unchanged(uuid::Uuid),
    Send(Box<Prepared>),
}

/// A statement for (record, key), or nothing when the same version was
/// imported before; a new revision of the earlier statement when the
/// record changed.
#[allow(clippy::too_many_arguments)]
fn prepare_import(
    agent: &Agent,
    record: &str,
    key: &str,
    version: &str,
    tlp: Tlp,
    audience: &[String],
    created: &str,
    body: Body,
    notes: &mut Vec<String>,
) -> Result<Planned, AgentError> {
    let known = agent.store.lock().expect("store").import_row(record, key)?;
    let mut prepared = new_statement(
        agent.org_id(),
        created.to_owned(),
        tlp,
        audience,
        false,
        body,
    )?;
    match known {
        Some((id, _, modified, false)) if modified == version => Ok(Planned::Unchanged(
            uuid::Uuid::parse_str(&id).map_err(|e| AgentError::Invalid(e.to_string()))?,
        )),
        Some((id, revision, _, false)) => {
            prepared.statement.id =
                uuid::Uuid::parse_str(&id).map_err(|e| AgentError::Invalid(e.to_string()))?;
            prepared.statement.revision = revision + 1;
            scrub(agent, &mut prepared, record, notes)?;
            Ok(Planned::Send(Box::new(prepared)))
        }
        _ => {
            scrub(agent, &mut prepared, record, notes)?;
            Ok(Planned::Send(Box::new(prepared)))
        }
    }
}
