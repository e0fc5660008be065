//! TAXII writes: a member with a write-enabled API key POSTs STIX objects
//! to the Indicators (or, for coordinators, Bulletins) collection. The hub
//! reads them with the same importer the agent uses (`isac_core::
//! stix_import`), turns each into statements attributed to the member and
//! marked hub-attested (`on_behalf_of`, signed with the hub's attestation
//! key, listed in the key directory), and runs them through the ordinary
//! publish checks and store. Agents verify them like any statement and show
//! them as hub-attested, not author-signed.
//!
//! A re-sent object version changes nothing; a `revoked` object retracts
//! what earlier submissions of it became. The answer is a TAXII status
//! resource (kept, so `GET status/{id}` returns it again), with one entry
//! per object.

use isac_core::statement::{Body, Bulletin, Retraction, Statement, HUB_ATTESTATION_ORG};
use isac_core::stix_import::{parse_bundle, path_of, Content};
use isac_core::{Tlp, VerifyingKey};
use serde_json::{json, Value};

use super::listing::{Collection, Who};
use crate::app::publish::{prepare_with_key, SigningKey, Submission};
use crate::app::HubState;
use crate::error::{ApiError, RequestId};
use crate::store::{NewStatement, TaxiiWrite};

/// TLP of submitted objects that carry no marking.
pub const DEFAULT_TLP: Tlp = Tlp::Amber;

/// The outcome of one submission, as a TAXII status resource.
pub struct Outcome {
    pub status_id: String,
    pub body: Value,
}

struct Entry {
    id: String,
    version: String,
    message: Option<String>,
}

fn detail(e: &Entry) -> Value {
    let mut v = json!({ "id": e.id, "version": e.version });
    if let Some(m) = &e.message {
        v["message"] = json!(m);
    }
    v
}

/// Why a submission is refused as a whole (400 and 403 by the caller;
/// `Failed` through the one error mapping, so no store text reaches the
/// member).
#[derive(Debug)]
pub enum Refused {
    BadRequest(String),
    Forbidden(String),
    /// The scan before signing found personal data, internal addresses,
    /// secrets or benign observables (422; nothing stored).
    Unsafe(String),
    Failed(ApiError),
}

/// The built-in benign lists, parsed once.
fn benign_lists() -> &'static isac_scrub::benign::Lists {
    static LISTS: std::sync::OnceLock<isac_scrub::benign::Lists> = std::sync::OnceLock::new();
    LISTS.get_or_init(isac_scrub::benign::Lists::builtin)
}

/// What the hub must not sign for a member: every finding of the scan
/// before signing (built-in detectors; the member's own rules live in its
/// agent) and every benign-list hit, named by STIX object. Retractions
/// carry only the hub's own text.
fn unsafe_to_sign<'a>(objects: impl Iterator<Item = (&'a str, &'a Statement)>) -> Vec<String> {
    let rules = isac_scrub::Rules::default();
    let mut problems = Vec::new();
    for (id, s) in objects {
        if matches!(s.body, Body::Retraction(_)) {
            continue;
        }
        match isac_scrub::scan_statement(s, &rules) {
            Ok((findings, _)) => {
                problems.extend(findings.iter().map(|f| format!("{id}: {f}")));
            }
            Err(e) => problems.push(format!("{id}: {e}")),
        }
        if let Body::Indicator(i) = &s.body {
            problems.extend(
                benign_lists()
                    .check(&i.observable)
                    .iter()
                    .map(|h| format!("{id}: {h}: a benign indicator")),
            );
        }
    }
    problems
}

impl From<crate::store::StoreError> for Refused {
    fn from(e: crate::store::StoreError) -> Self {
        Refused::Failed(e.into())
    }
}

/// An object's failure entry text: what the one mapping lets a caller
/// read (the detail is logged with `request_id`).
fn public(e: ApiError, request_id: &RequestId) -> String {
    e.answer(request_id).text(request_id)
}

fn attest_record(state: &HubState) -> Result<SigningKey, Refused> {
    let key: VerifyingKey = state.material.attest_key.verifying_key().map_err(|e| {
        Refused::Failed(ApiError::Internal(format!(
            "the hub's attestation key is unusable: {e}"
        )))
    })?;
    Ok((
        HUB_ATTESTATION_ORG.to_owned(),
        isac_core::KeyRecord {
            key,
            org_id: HUB_ATTESTATION_ORG.to_owned(),
            valid_from: 0,
            retired_at: None,
            revoked_at: None,
        },
    ))
}

fn attested(who: &Who, tlp: Tlp, body: Body, now: i64) -> Statement {
    Statement {
        id: uuid::Uuid::new_v4(),
        revision: 1,
        source: HUB_ATTESTATION_ORG.to_owned(),
        created: isac_core::time::format_rfc3339(now),
        tlp,
        audience: Vec::new(),
        anonymous: false,
        body,
        on_behalf_of: Some(who.caller.org_id.clone()),
        no_forward: false,
    }
}

/// Signs and checks `statement` exactly as a published one.
async fn prepare(
    state: &HubState,
    who: &Who,
    key: &SigningKey,
    statement: &Statement,
) -> Result<NewStatement, ApiError> {
    let envelope = state
        .material
        .attest_key
        .sign_statement(statement)
        .map_err(|e| ApiError::Internal(format!("cannot sign: {e}")))?;
    let submission = Submission {
        envelope,
        openings: Vec::new(),
        overrides: Vec::new(),
    };
    prepare_with_key(state, &who.caller, submission, Some(key.clone())).await
}

/// Handles one POST of a TAXII envelope (`{"objects": [...]}`).
pub async fn add_objects(
    state: &HubState,
    who: &Who,
    collection: &Collection,
    envelope: &Value,
    request_id: &RequestId,
) -> Result<Outcome, Refused> {
    match collection {
        Collection::Indicators => {}
        Collection::Bulletins if who.caller.is_coordinator() => {}
        Collection::Bulletins => {
            return Err(Refused::Forbidden(
                "only coordinators publish bulletins".into(),
            ))
        }
        Collection::Group(_) => {
            return Err(Refused::Forbidden(
                "sharing-group collections are read-only; post to Indicators (audiences are set through the agent)".into(),
            ))
        }
    }
    let objects = envelope
        .get("objects")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Refused::BadRequest("the body must be a TAXII envelope: {\"objects\": [...]}".into())
        })?;
    let bundle = json!({
        "type": "bundle",
        "id": format!("bundle--{}", uuid::Uuid::new_v4()),
        "objects": objects,
    });
    let parsed = parse_bundle(&bundle).map_err(Refused::BadRequest)?;
    let now = state.now();
    let org = who.caller.org_id.clone();
    let version_of = |o: &Value| {
        o.get("modified")
            .or_else(|| o.get("created"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    // The importer names objects it skips or refuses by path only.
    let by_path: std::collections::HashMap<String, &Value> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| (path_of(i, o), o))
        .collect();
    let entry_at = |path: &str, message: String| {
        let o = by_path.get(path).copied().unwrap_or(&Value::Null);
        Entry {
            id: o.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
            version: version_of(o),
            message: Some(message),
        }
    };

    let mut successes: Vec<Entry> = Vec::new();
    let mut failures: Vec<Entry> = Vec::new();
    for (path, problem) in &parsed.invalid {
        failures.push(entry_at(path, problem.clone()));
    }
    for (path, reason) in &parsed.skipped {
        successes.push(entry_at(path, format!("nothing stored: {reason}")));
    }

    // (object entry, statements, write records) per imported object.
    let mut pending: Vec<(Entry, Vec<Statement>, Vec<TaxiiWrite>)> = Vec::new();
    // An object version listed twice in one envelope is one object.
    let mut seen = std::collections::HashSet::new();
    for object in &parsed.objects {
        let entry = Entry {
            id: object.stix_id.clone(),
            version: object.version.clone(),
            message: None,
        };
        if !seen.insert((object.stix_id.as_str(), object.version.as_str())) {
            successes.push(Entry {
                message: Some("listed twice in this envelope; stored once".into()),
                ..entry
            });
            continue;
        }
        let earlier = state.store.taxii_writes_of(&org, &object.stix_id).await?;
        let tlp = object.tlp.unwrap_or(DEFAULT_TLP);
        if matches!(tlp, Tlp::AmberStrict | Tlp::Red) {
            failures.push(Entry {
                message: Some(format!(
                    "{tlp} needs a named audience, which TAXII cannot carry; publish it with your agent (`member-agent publish --stix FILE --audience ...`)"
                )),
                ..entry
            });
            continue;
        }
        let record = |statement: &Statement| TaxiiWrite {
            org_id: org.clone(),
            stix_id: object.stix_id.clone(),
            version: object.version.clone(),
            statement_id: statement.id.to_string(),
            tlp: statement.tlp.as_str().to_owned(),
            created_at: now,
        };
        match &object.content {
            Content::Revoked => {
                // Revocations are recorded against the statement they retract.
                let retracted: std::collections::HashSet<&str> = earlier
                    .iter()
                    .filter(|w| w.version == "revoked")
                    .map(|w| w.statement_id.as_str())
                    .collect();
                let live: Vec<&TaxiiWrite> = earlier
                    .iter()
                    .filter(|w| {
                        w.version != "revoked" && !retracted.contains(w.statement_id.as_str())
                    })
                    .collect();
                if live.is_empty() {
                    let message = if retracted.is_empty() {
                        failures.push(Entry {
                            message: Some("nothing you submitted has this id".into()),
                            ..entry
                        });
                        continue;
                    } else {
                        "already revoked; nothing changed"
                    };
                    successes.push(Entry {
                        message: Some(message.into()),
                        ..entry
                    });
                    continue;
                }
                let mut statements = Vec::new();
                let mut records = Vec::new();
                for w in live {
                    let Ok(target) = uuid::Uuid::parse_str(&w.statement_id) else {
                        continue;
                    };
                    let tlp = w.tlp.parse().unwrap_or(DEFAULT_TLP);
                    let s = attested(
                        who,
                        tlp,
                        Body::Retraction(Retraction {
                            target,
                            reason: format!("{} was revoked over TAXII", object.stix_id),
                        }),
                        now,
                    );
                    records.push(TaxiiWrite {
                        version: "revoked".into(),
                        statement_id: target.to_string(),
                        ..record(&s)
                    });
                    statements.push(s);
                }
                pending.push((entry, statements, records));
            }
            _ if earlier.iter().any(|w| w.version == object.version) => {
                successes.push(Entry {
                    message: Some("already submitted; nothing changed".into()),
                    ..entry
                });
            }
            Content::Indicators(list) => {
                let statements: Vec<Statement> = list
                    .iter()
                    .map(|i| attested(who, tlp, Body::Indicator(i.clone()), now))
                    .collect();
                let records = statements.iter().map(record).collect();
                pending.push((entry, statements, records));
            }
            Content::Bulletin {
                title,
                body,
                severity,
                incident_id,
                refs: _,
            } => {
                if !who.caller.is_coordinator() {
                    failures.push(Entry {
                        message: Some("only coordinators publish bulletins (reports)".into()),
                        ..entry
                    });
                    continue;
                }
                let s = attested(
                    who,
                    tlp,
                    Body::Bulletin(Bulletin {
                        title: title.clone(),
                        body: body.clone(),
                        severity: *severity,
                        incident_id: incident_id.clone(),
                        related: Vec::new(),
                    }),
                    now,
                );
                let records = vec![record(&s)];
                pending.push((entry, vec![s], records));
            }
        }
    }

    // What is signed and shared cannot be unsent: refuse the whole
    // submission, naming every finding, before anything is signed.
    let problems = unsafe_to_sign(
        pending
            .iter()
            .flat_map(|(e, statements, _)| statements.iter().map(move |s| (e.id.as_str(), s))),
    );
    if !problems.is_empty() {
        return Err(Refused::Unsafe(format!(
            "nothing stored: {} problem(s) found before signing:\n{}\nRemove or redact them (placeholders such as [email]), or publish with your agent, which can override (`member-agent publish --stix FILE --redact`, `--allow KIND`, `--force-benign`).",
            problems.len(),
            problems.join("\n")
        )));
    }

    // Check every statement as a publish would, then store the good ones
    // in one group commit.
    let key = attest_record(state)?;
    let mut accepted: Vec<NewStatement> = Vec::new();
    let mut accepted_records: Vec<TaxiiWrite> = Vec::new();
    let mut stored_entries: Vec<(Entry, std::ops::Range<usize>)> = Vec::new();
    for (entry, statements, records) in pending {
        let mut prepared = Vec::new();
        let mut problem = None;
        for s in &statements {
            match prepare(state, who, &key, s).await {
                Ok(n) => prepared.push(n),
                Err(e) => {
                    problem = Some(e);
                    break;
                }
            }
        }
        match problem {
            Some(e) => failures.push(Entry {
                message: Some(public(e, request_id)),
                ..entry
            }),
            None => {
                let start = accepted.len();
                accepted.extend(prepared);
                accepted_records.extend(records);
                stored_entries.push((entry, start..accepted.len()));
            }
        }
    }
    let stored = state.store.append_statements(accepted).await;
    let mut ok_records = Vec::new();
    let mut record_iter = accepted_records.into_iter();
    for (entry, range) in stored_entries {
        let results = &stored[range.clone()];
        let records: Vec<TaxiiWrite> = record_iter.by_ref().take(range.len()).collect();
        match results.iter().find_map(|r| r.as_ref().err()) {
            Some(e) => failures.push(Entry {
                message: Some(public(e.clone().into(), request_id)),
                ..entry
            }),
            None => {
                ok_records.extend(records);
                successes.push(entry);
            }
        }
    }
    state.store.record_taxii_writes(ok_records).await?;

    let status_id = uuid::Uuid::new_v4().to_string();
    let total = successes.len() + failures.len();
    let body = json!({
        "id": status_id,
        "status": "complete",
        "request_timestamp": super::query::format_timestamp_us(now * 1_000_000),
        "total_count": total,
        "success_count": successes.len(),
        "successes": successes.iter().map(detail).collect::<Vec<_>>(),
        "failure_count": failures.len(),
        "failures": failures.iter().map(detail).collect::<Vec<_>>(),
        "pending_count": 0,
        "pendings": [],
    });
    state
        .store
        .save_taxii_status(&status_id, &org, now, body.to_string())
        .await?;
    tracing::info!(org = %org, principal = %who.principal, objects = total,
        succeeded = successes.len(), failed = failures.len(), "TAXII submission");
    Ok(Outcome { status_id, body })
}
