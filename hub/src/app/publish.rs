//! The publish decision, in core types: verify, check the caller is the
//! source, check the audience and any item it refers to, anonymise if
//! asked, store, then answer. Nothing is stored before every check has
//! passed. gRPC (`grpc/publish.rs`) and TAXII writes (`taxii/write.rs`)
//! are adapters over this module.

use std::collections::BTreeMap;

use isac_core::audience::{check_audience_rules, open_audience, AudienceOpening};
use isac_core::time::parse_rfc3339;
use isac_core::tlp::{derived_tlp_ok, AudienceRef, Channel};
use isac_core::verify::created_not_in_future;
use isac_core::{
    verify_envelope, Body, Envelope, KeyRecord, Statement, Tlp, VerifyError, VerifyingKey,
};

use crate::app::caller::{fresh_caller, Caller};
use crate::app::state::HubState;
use crate::error::ApiError;
use crate::policy;
use crate::store::{AnonymousVersion, KeyRow, NewStatement, StoreError, StoredFacts};

/// The organisation id anonymous statements carry, reserved (defined with
/// the other reserved names in `isac_core::names`).
pub use isac_core::names::ANONYMOUS_ORG;

/// Most statements in one batch.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// One statement to publish: the signed envelope and the audience openings
/// the source sends beside it.
#[derive(Debug, Clone)]
pub struct Submission {
    pub envelope: Envelope,
    pub openings: Vec<AudienceOpening>,
    /// What the member's scan before signing found and the person
    /// published anyway (checked by [`check_overrides`]); audited.
    pub overrides: Vec<String>,
}

/// Most override entries one publish may carry (there are nine names).
pub const MAX_OVERRIDES: usize = 16;

/// The override names a member may report: the scanner's kinds and
/// `benign`. Anything else is refused, so the audit log holds only names.
pub fn check_overrides(overrides: Vec<String>) -> Result<Vec<String>, ApiError> {
    if overrides.len() > MAX_OVERRIDES {
        return Err(ApiError::InvalidArgument(format!(
            "at most {MAX_OVERRIDES} scrub overrides per statement"
        )));
    }
    for o in &overrides {
        if o != "benign" && o.parse::<isac_scrub::Kind>().is_err() {
            return Err(ApiError::InvalidArgument(format!(
                "unknown scrub override `{}`: use a finding kind (email, phone, person, internal-ip, own-host, path-user, secret, pattern) or benign",
                o.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(overrides)
}

/// Writes a member's override of its scan before signing to the audit log.
async fn audit_overrides(
    state: &HubState,
    caller: &Caller,
    id: &str,
    revision: u32,
    overrides: &[String],
) -> Result<(), ApiError> {
    if overrides.is_empty() {
        return Ok(());
    }
    state
        .store
        .audit_note(
            &caller.org_id,
            "publish.scrub-override",
            &format!("{id} revision {revision}"),
            &overrides.join(","),
            state.now(),
        )
        .await?;
    Ok(())
}

/// An accepted statement. The hub's sequence is not part of it: positions
/// leave the hub only sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub id: String,
    pub revision: u32,
    /// Already stored, byte for byte: nothing changed.
    pub duplicate: bool,
}

/// The key's owner org and validity record, as stored.
pub type SigningKey = (String, KeyRecord);

pub fn key_record(row: &KeyRow) -> Option<KeyRecord> {
    Some(KeyRecord {
        key: VerifyingKey::from_spki_der(&row.public_key_der).ok()?,
        org_id: row.org_id.clone(),
        valid_from: row.valid_from,
        retired_at: row.retired_at,
        revoked_at: row.revoked_at,
    })
}

/// Which refusal each verification failure earns.
pub fn refusal(e: VerifyError) -> ApiError {
    let message = e.to_string();
    match e {
        VerifyError::SourceMismatch { .. }
        | VerifyError::LogKey(_)
        | VerifyError::KeyRevoked { .. }
        | VerifyError::KeyRetired { .. } => ApiError::PermissionDenied(message),
        VerifyError::UnknownKey(_) => ApiError::FailedPrecondition(format!(
            "{message}; publish with the signing key registered at enrollment"
        )),
        VerifyError::PayloadType(_)
        | VerifyError::TooLarge
        | VerifyError::SignatureCount(_)
        | VerifyError::BadSignature(_)
        | VerifyError::Malformed(_)
        | VerifyError::KeyNotYetValid { .. } => ApiError::InvalidArgument(message),
    }
}

/// Opens the blinded audience and checks it names only what exists; returns
/// the clear entries and a snapshot of each named group.
async fn resolve_audience(
    state: &HubState,
    statement: &Statement,
    openings: &[AudienceOpening],
) -> Result<(Vec<AudienceRef>, BTreeMap<String, Vec<String>>), ApiError> {
    let entries = open_audience(&statement.audience, openings)
        .map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
    check_audience_rules(statement.tlp, &entries)
        .map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
    let mut snapshot = BTreeMap::new();
    for entry in &entries {
        let known = match entry {
            AudienceRef::Org(org) => state.store.member(org).await?.is_some_and(|m| {
                m.status != isac_core::membership::MemberStatus::Removed && org != ANONYMOUS_ORG
            }),
            AudienceRef::Group(g) => match state.store.group_members(g).await? {
                Some(members) => {
                    snapshot.insert(g.clone(), members);
                    true
                }
                None => false,
            },
            AudienceRef::Person { org, person } => state.store.person_exists(org, person).await?,
        };
        if !known {
            return Err(ApiError::InvalidArgument(format!(
                "unknown audience entry `{entry}`: check `hub member list`, `hub group list` and `hub person list`"
            )));
        }
    }
    Ok((entries, snapshot))
}

/// For a sighting or retraction: the caller must see the item, the
/// statement must not be less restricted, and only the source or a
/// coordinator retracts.
async fn check_target(
    state: &HubState,
    caller: &Caller,
    statement: &Statement,
) -> Result<Option<String>, ApiError> {
    let Some(target) = statement.target() else {
        return Ok(None);
    };
    let target_id = target.to_string();
    let latest = state.store.revisions(&target_id).await?.into_iter().next();
    // "Not found" and "not yours" get the same answer.
    let latest = latest
        .filter(|t| policy::may_see(t, caller, Channel::Get))
        .ok_or_else(|| {
            ApiError::FailedPrecondition(format!("no item {target_id} that you can see"))
        })?;
    let target_tlp: Tlp = latest
        .tlp_level()
        .ok_or_else(|| ApiError::Internal(format!("item {target_id} has an unreadable TLP")))?;
    target_rules(statement, target_tlp, &latest.source_org, caller)?;
    Ok(Some(target_id))
}

/// The pure part of [`check_target`]: level and retraction rights against
/// the target's latest revision (its TLP and source).
pub fn target_rules(
    statement: &Statement,
    target_tlp: Tlp,
    target_source: &str,
    caller: &Caller,
) -> Result<(), ApiError> {
    if !derived_tlp_ok(statement.tlp, target_tlp) {
        return Err(ApiError::InvalidArgument(format!(
            "a {} may not be less restricted than the item it refers to ({target_tlp}); use at least that level",
            statement.kind()
        )));
    }
    if matches!(statement.body, Body::Retraction(_))
        && target_source != caller.org_id
        && !caller.is_coordinator()
    {
        return Err(ApiError::PermissionDenied(
            "only the item's source or a coordinator may retract it".into(),
        ));
    }
    Ok(())
}

/// Re-issues `statement` without its source, signed by the hub's
/// anonymisation key (listed in the key directory as `anonymous`), in the
/// original's format: the store keeps one payload type for both.
fn anonymise(
    state: &HubState,
    statement: &Statement,
    format: isac_core::Format,
) -> Result<AnonymousVersion, ApiError> {
    let mut anon = statement.clone();
    anon.source = ANONYMOUS_ORG.to_owned();
    let key = &state.material.anon_key;
    let env = key
        .sign_statement_as(&anon, format)
        .map_err(|e| ApiError::Internal(format!("anonymising: {e}")))?;
    let sig = env
        .signatures
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("no signature".into()))?;
    Ok(AnonymousVersion {
        payload: env.payload,
        key_id: sig.keyid,
        signature: sig.sig,
    })
}

/// What subscription filters and expiry look at, taken once at publish.
/// `valid_until` is the effective expiry: the signed one, else the
/// hub-wide default lifetime of the kind (`isac_core::lifetime`).
pub fn facts_of(statement: &Statement, lifetimes: &isac_core::lifetime::Lifetimes) -> StoredFacts {
    let purl_type = |p: &str| isac_core::observable::parse_purl(p).ok().map(|p| p.ty);
    let (ecosystem, confidence, tags, valid_until) = match &statement.body {
        Body::Indicator(i) => {
            let eco = match &i.observable {
                isac_core::Observable::Package { purl, .. } => purl_type(purl),
                isac_core::Observable::Artifact { purl, .. } => purl.as_deref().and_then(purl_type),
                isac_core::Observable::Vulnerability { purls, .. } => {
                    purls.first().and_then(|p| purl_type(p))
                }
                _ => None,
            };
            let until = isac_core::lifetime::effective_expiry(statement, lifetimes);
            (eco, i.confidence, i.tags.clone(), until)
        }
        _ => (None, 0, Vec::new(), None),
    };
    StoredFacts {
        ecosystem,
        severity: statement.severity().as_str().to_owned(),
        confidence,
        tags_json: serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()),
        valid_until,
    }
}

/// Checks and stores one statement.
pub async fn publish(
    state: &HubState,
    caller: &Caller,
    submission: Submission,
) -> Result<Published, ApiError> {
    let overrides = submission.overrides.clone();
    // Caller and key as this process last read them (`epoch_cache`): the
    // store checks, in the append's own transaction, that the membership
    // epoch they were read at still holds, else stores nothing.
    let cached = match caller.authorized_at {
        Some(epoch) => {
            let new = prepare(state, caller, submission.clone()).await?;
            let key = (new.id.clone(), new.revision);
            match state.store.append_statement_authorized_at(new, epoch).await {
                Err(StoreError::StaleAuthorization) => None,
                stored => Some((key, stored?)),
            }
        }
        None => None,
    };
    let fresh;
    let (caller, (id, revision), (sequence, duplicate)) = match cached {
        Some((key, stored)) => (caller, key, stored),
        None => {
            // Membership or keys changed meanwhile (or no cache was used):
            // everything again, read from the store now.
            fresh = fresh_caller(state, caller).await?;
            let new = prepare(state, &fresh, submission).await?;
            let key = (new.id.clone(), new.revision);
            (&fresh, key, state.store.append_statement(new).await?)
        }
    };
    audit_overrides(state, caller, &id, revision, &overrides).await?;
    tracing::Span::current().record("seq", sequence);
    tracing::debug!(duplicate, "statement accepted");
    Ok(Published {
        id,
        revision,
        duplicate,
    })
}

/// Verifies every item of a batch concurrently, then stores the accepted
/// ones in request order, in one group commit. An item the edge could not
/// read arrives as its error and is answered with it, in its place.
pub async fn publish_batch(
    state: &HubState,
    caller: &Caller,
    items: Vec<Result<Submission, ApiError>>,
) -> Result<Vec<Result<Published, ApiError>>, ApiError> {
    if items.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::InvalidArgument(format!(
            "a batch holds at most {MAX_BATCH_ITEMS} statements; split it"
        )));
    }
    // A batch is stored without the epoch check (its items may span more
    // than one transaction), so its caller and keys are read from the
    // store now: one read per call, for up to MAX_BATCH_ITEMS statements.
    let caller = &fresh_caller(state, caller).await?;
    // Each distinct signing key once, not once per item.
    let mut keys: std::collections::HashMap<String, Option<SigningKey>> =
        std::collections::HashMap::new();
    for item in items.iter().flatten() {
        if let Some(kid) = signing_key_id(&item.envelope) {
            if !keys.contains_key(kid) && keys.len() < 16 {
                keys.insert(kid.to_owned(), lookup_key(state, kid, None).await?);
            }
        }
    }
    let keys = std::sync::Arc::new(keys);
    let overrides: Vec<Vec<String>> = items
        .iter()
        .map(|i| i.as_ref().map(|s| s.overrides.clone()).unwrap_or_default())
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, item) in items.into_iter().enumerate() {
        let (state, caller, keys) = (state.clone(), caller.clone(), keys.clone());
        tasks.spawn(async move {
            let prepared = match item {
                Ok(item) => match signing_key_id(&item.envelope)
                    .and_then(|kid| keys.get(kid))
                    .cloned()
                {
                    Some(key) => prepare_with_key(&state, &caller, item, key).await,
                    None => prepare(&state, &caller, item).await,
                },
                Err(e) => Err(e),
            };
            (index, prepared)
        });
    }
    let mut prepared: Vec<Option<Result<NewStatement, ApiError>>> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (index, result) = done.map_err(|e| ApiError::Internal(format!("batch task: {e}")))?;
        if prepared.len() <= index {
            prepared.resize_with(index + 1, || None);
        }
        prepared[index] = Some(result);
    }
    let mut accepted = Vec::new();
    let mut slots = Vec::with_capacity(prepared.len());
    for p in prepared {
        match p.expect("every index reported") {
            Ok(new) => {
                slots.push(Ok((new.id.clone(), new.revision, accepted.len())));
                accepted.push(new);
            }
            Err(e) => slots.push(Err(e)),
        }
    }
    let stored = state.store.append_statements(accepted).await;
    let results: Vec<Result<Published, ApiError>> = slots
        .into_iter()
        .map(|slot| {
            slot.and_then(|(id, revision, i)| {
                stored[i]
                    .clone()
                    .map(|(_, duplicate)| Published {
                        id,
                        revision,
                        duplicate,
                    })
                    .map_err(ApiError::from)
            })
        })
        .collect();
    for (r, o) in results.iter().zip(&overrides) {
        if let Ok(p) = r {
            audit_overrides(state, caller, &p.id, p.revision, o).await?;
        }
    }
    Ok(results)
}

/// Every check of a publish, ending in the row to store. Stores nothing.
pub async fn prepare(
    state: &HubState,
    caller: &Caller,
    submission: Submission,
) -> Result<NewStatement, ApiError> {
    let key = match signing_key_id(&submission.envelope) {
        Some(kid) => lookup_key(state, kid, caller.authorized_at).await?,
        None => None,
    };
    prepare_with_key(state, caller, submission, key).await
}

/// The key id an envelope names, if it names exactly one plausible one.
pub fn signing_key_id(envelope: &Envelope) -> Option<&str> {
    match envelope.signatures.as_slice() {
        [sig] if sig.keyid.len() <= 128 => Some(&sig.keyid),
        _ => None,
    }
}

/// The key's owner and validity record, if the directory knows it. At a
/// known epoch (`Caller::authorized_at`), known keys are served from
/// `HubShared::signing_keys` while that epoch holds (a rotation or
/// revocation moves it); otherwise read from the store.
async fn lookup_key(
    state: &HubState,
    kid: &str,
    at: Option<u64>,
) -> Result<Option<SigningKey>, ApiError> {
    if let Some(key) = at.and_then(|epoch| state.signing_keys.get(epoch, kid)) {
        return Ok(Some(key));
    }
    let key = state
        .store
        .key(kid)
        .await?
        .and_then(|row| key_record(&row).map(|rec| (row.org_id, rec)));
    if let (Some(epoch), Some(key)) = (at, &key) {
        state.signing_keys.insert(epoch, kid, key.clone());
    }
    Ok(key)
}

/// A key of another member may not sign for the caller; the hub's
/// attestation key signs TAXII submissions for the caller (the author
/// check then ties them to the caller's org).
pub fn check_key_owner(owner: &str, caller: &Caller) -> Result<(), ApiError> {
    if owner != caller.org_id && owner != isac_core::statement::HUB_ATTESTATION_ORG {
        return Err(ApiError::PermissionDenied(format!(
            "you are authenticated as `{}` but the statement is signed with a key of another member; sign with your own key",
            caller.org_id
        )));
    }
    Ok(())
}

/// The pure checks on a verified statement, before any store lookup:
/// the author is the caller, it is not dated in the future (`now`), and
/// only coordinators broadcast bulletins. Returns its creation time.
pub fn check_statement(statement: &Statement, caller: &Caller, now: i64) -> Result<i64, ApiError> {
    if statement.author() != caller.org_id {
        return Err(ApiError::PermissionDenied(format!(
            "statement claims source `{}` but you are authenticated as `{}`",
            statement.author(),
            caller.org_id
        )));
    }
    let created =
        parse_rfc3339(&statement.created).map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
    if !created_not_in_future(created, now) {
        return Err(ApiError::InvalidArgument(format!(
            "statement is dated {} which is in the future; check the publishing machine's clock",
            statement.created
        )));
    }
    if statement.is_bulletin() && !caller.is_coordinator() {
        return Err(ApiError::PermissionDenied(format!(
            "only coordinators broadcast bulletins; `{}` has role {}",
            caller.org_id, caller.role
        )));
    }
    Ok(created)
}

/// [`prepare`] with the signing key already looked up (owner org, record):
/// a batch looks each distinct key up once, TAXII writes pass the hub's
/// attestation key.
pub async fn prepare_with_key(
    state: &HubState,
    caller: &Caller,
    submission: Submission,
    key: Option<SigningKey>,
) -> Result<NewStatement, ApiError> {
    let Submission {
        envelope,
        openings,
        overrides: _,
    } = submission;
    if let Some((owner, _)) = &key {
        check_key_owner(owner, caller)?;
    }
    let record = key.map(|(_, rec)| rec);
    let verified = verify_envelope(&envelope, |_| record).map_err(refusal)?;
    let statement = &verified.statement;
    tracing::Span::current().record("id", tracing::field::display(statement.id));
    let received_at = state.now();
    let created = check_statement(statement, caller, received_at)?;
    let (entries, snapshot) = resolve_audience(state, statement, &openings).await?;
    let target_id = check_target(state, caller, statement).await?;
    let anonymous = if statement.anonymous {
        Some(anonymise(state, statement, verified.format)?)
    } else {
        None
    };
    let sig = &envelope.signatures[0];
    let sighting_count = match &statement.body {
        Body::Sighting(s) => Some(s.count),
        _ => None,
    };
    let new = NewStatement {
        id: statement.id.to_string(),
        revision: statement.revision,
        source_org: statement.author().to_owned(),
        tlp: statement.tlp.as_str().to_owned(),
        audience_json: serde_json::to_string(&entries)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        kind: statement.kind().to_owned(),
        created_at: created,
        received_at,
        payload_type: envelope.payload_type.clone(),
        payload: envelope.payload.clone(),
        key_id: sig.keyid.clone(),
        signature: sig.sig.clone(),
        digest: verified.digest.clone(),
        openings_json: serde_json::to_string(&openings)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        group_snapshot_json: serde_json::to_string(&snapshot)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        target_id,
        value: statement.primary_value(),
        title: statement.title().to_owned(),
        sighting_count,
        anonymous,
        facts: facts_of(statement, &state.config.default_lifetime),
        stix_ids: isac_core::stix::object_ids(statement),
        references: statement
            .referenced_ids()
            .iter()
            .map(ToString::to_string)
            .collect(),
        provenance: None,
    };
    Ok(new)
}

#[cfg(test)]
mod tests {
    use isac_core::statement::{Bulletin, Retraction, Severity};
    use isac_core::{Indicator, Observable};

    use super::*;

    fn caller(org: &str, role: &str) -> Caller {
        Caller {
            org_id: org.into(),
            agent_name: "agent".into(),
            role: role.parse().expect("a role"),
            cert_fingerprint: String::new(),
            groups: Vec::new(),
            authorized_at: None,
        }
    }

    fn statement(source: &str, tlp: Tlp, body: Body) -> Statement {
        Statement {
            id: uuid::Uuid::new_v4(),
            revision: 1,
            source: source.into(),
            created: "2026-11-25T12:00:00Z".into(),
            tlp,
            audience: Vec::new(),
            anonymous: false,
            body,
            on_behalf_of: None,
            no_forward: false,
        }
    }

    fn indicator(purl: &str, tags: &[&str], valid_until: Option<&str>) -> Body {
        Body::Indicator(Indicator {
            observable: Observable::Package {
                purl: purl.into(),
                versions: vec![],
                threat: isac_core::statement::PackageThreat::Malicious,
                imitates: None,
            },
            title: "evil".into(),
            description: String::new(),
            severity: Severity::High,
            confidence: 80,
            references: vec![],
            tags: tags.iter().map(|t| t.to_string()).collect(),
            valid_from: None,
            valid_until: valid_until.map(str::to_owned),
            related: vec![],
        })
    }

    fn bulletin() -> Body {
        Body::Bulletin(Bulletin {
            title: "t".into(),
            body: "b".into(),
            severity: Severity::Low,
            incident_id: None,
            related: vec![],
        })
    }

    fn retraction() -> Body {
        Body::Retraction(Retraction {
            target: uuid::Uuid::new_v4(),
            reason: "wrong".into(),
        })
    }

    const CREATED: i64 = 1_795_608_000; // 2026-11-25T12:00:00Z

    #[test]
    fn check_statement_table() {
        let ind = || indicator("pkg:npm/evil@1.0.0", &[], None);
        let rows: [(&str, Statement, Caller, i64, Option<&str>); 6] = [
            (
                "own statement",
                statement("acme", Tlp::Green, ind()),
                caller("acme", "member"),
                CREATED,
                None,
            ),
            (
                "another's source",
                statement("other", Tlp::Green, ind()),
                caller("acme", "member"),
                CREATED,
                Some("PermissionDenied"),
            ),
            (
                "dated in the future",
                statement("acme", Tlp::Green, ind()),
                caller("acme", "member"),
                CREATED - 3_600,
                Some("InvalidArgument"),
            ),
            (
                "within the skew",
                statement("acme", Tlp::Green, ind()),
                caller("acme", "member"),
                CREATED - 60,
                None,
            ),
            (
                "bulletin by a member",
                statement("acme", Tlp::Green, bulletin()),
                caller("acme", "member"),
                CREATED,
                Some("PermissionDenied"),
            ),
            (
                "bulletin by a coordinator",
                statement("acme", Tlp::Green, bulletin()),
                caller("acme", "coordinator"),
                CREATED,
                None,
            ),
        ];
        for (name, s, c, now, want) in rows {
            let got = check_statement(&s, &c, now);
            match want {
                None => assert_eq!(got.expect(name), CREATED, "{name}"),
                Some(kind) => {
                    let e = got.expect_err(name);
                    assert!(format!("{e:?}").starts_with(kind), "{name}: {e:?}");
                }
            }
        }
    }

    #[test]
    fn a_hub_attested_statement_is_checked_against_its_member() {
        let mut s = statement(
            isac_core::statement::HUB_ATTESTATION_ORG,
            Tlp::Green,
            indicator("pkg:npm/evil@1.0.0", &[], None),
        );
        s.on_behalf_of = Some("acme".into());
        assert!(check_statement(&s, &caller("acme", "member"), CREATED).is_ok());
        assert!(check_statement(&s, &caller("other", "member"), CREATED).is_err());
    }

    #[test]
    fn only_own_or_attestation_keys_sign() {
        let c = caller("acme", "member");
        assert!(check_key_owner("acme", &c).is_ok());
        assert!(check_key_owner(isac_core::statement::HUB_ATTESTATION_ORG, &c).is_ok());
        assert!(matches!(
            check_key_owner("other", &c),
            Err(ApiError::PermissionDenied(_))
        ));
    }

    #[test]
    fn target_rules_table() {
        let member = caller("acme", "member");
        let coordinator = caller("coord", "coordinator");
        let sighting = |tlp| {
            statement(
                "acme",
                tlp,
                Body::Sighting(isac_core::statement::Sighting {
                    indicator: uuid::Uuid::new_v4(),
                    count: 1,
                    first_seen: "2026-11-25T12:00:00Z".into(),
                    last_seen: "2026-11-25T12:00:00Z".into(),
                }),
            )
        };
        // A derived statement may not be less restricted than its target.
        assert!(target_rules(&sighting(Tlp::Amber), Tlp::Amber, "other", &member).is_ok());
        assert!(target_rules(&sighting(Tlp::Red), Tlp::Amber, "other", &member).is_ok());
        assert!(matches!(
            target_rules(&sighting(Tlp::Green), Tlp::Amber, "other", &member),
            Err(ApiError::InvalidArgument(_))
        ));
        // Only the source or a coordinator retracts.
        let r = statement("acme", Tlp::Green, retraction());
        assert!(target_rules(&r, Tlp::Green, "acme", &member).is_ok());
        assert!(matches!(
            target_rules(&r, Tlp::Green, "other", &member),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(target_rules(&r, Tlp::Green, "other", &coordinator).is_ok());
    }

    #[test]
    fn refusals_name_the_right_kind() {
        assert!(matches!(
            refusal(VerifyError::UnknownKey("k".into())),
            ApiError::FailedPrecondition(_)
        ));
        assert!(matches!(
            refusal(VerifyError::TooLarge),
            ApiError::InvalidArgument(_)
        ));
    }

    #[test]
    fn one_plausible_key_id_or_none() {
        let env = |sigs: Vec<&str>| Envelope {
            payload_type: isac_core::PAYLOAD_TYPE_STATEMENT_V1.into(),
            payload: Vec::new(),
            signatures: sigs
                .into_iter()
                .map(|k| isac_core::Signature {
                    keyid: k.into(),
                    sig: Vec::new(),
                })
                .collect(),
        };
        assert_eq!(signing_key_id(&env(vec!["k1"])), Some("k1"));
        assert_eq!(signing_key_id(&env(vec![])), None);
        assert_eq!(signing_key_id(&env(vec!["k1", "k2"])), None);
        let long = "k".repeat(129);
        assert_eq!(signing_key_id(&env(vec![long.as_str()])), None);
    }

    #[test]
    fn facts_are_taken_from_the_indicator() {
        let s = statement(
            "acme",
            Tlp::Green,
            indicator(
                "pkg:npm/evil@1.0.0",
                &["a", "b"],
                Some("2026-12-01T00:00:00Z"),
            ),
        );
        let none = isac_core::lifetime::Lifetimes::new();
        let f = facts_of(&s, &none);
        assert_eq!(f.ecosystem.as_deref(), Some("npm"));
        assert_eq!(f.confidence, 80);
        assert_eq!(f.severity, "high");
        assert_eq!(f.tags_json, r#"["a","b"]"#);
        assert_eq!(f.valid_until, Some(1_796_083_200));
        // Without its own valid_until: its start plus the kind's default.
        let package_day: isac_core::lifetime::Lifetimes =
            [("package".to_string(), 86_400)].into_iter().collect();
        let open = statement(
            "acme",
            Tlp::Green,
            indicator("pkg:npm/evil@1.0.0", &[], None),
        );
        assert_eq!(facts_of(&open, &none).valid_until, None);
        assert_eq!(
            facts_of(&open, &package_day).valid_until,
            Some(parse_rfc3339(&open.created).unwrap() + 86_400)
        );
        assert_eq!(facts_of(&s, &package_day).valid_until, Some(1_796_083_200));
        let b = facts_of(&statement("acme", Tlp::Green, bulletin()), &package_day);
        assert_eq!(
            (b.ecosystem, b.confidence, b.tags_json.as_str()),
            (None, 0, "[]")
        );
    }
}
