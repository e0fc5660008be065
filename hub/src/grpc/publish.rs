//! `isac.v1.Publisher`: verify, check the caller is the source, check the
//! audience and any item it refers to, anonymise if asked, store, then ack.
//! Nothing is stored before every check has passed.

use std::collections::BTreeMap;

use isac_core::audience::{check_audience_rules, open_audience, AudienceOpening};
use isac_core::time::parse_rfc3339;
use isac_core::tlp::{derived_tlp_ok, AudienceRef, Channel};
use isac_core::verify::created_not_in_future;
use isac_core::{
    verify_envelope, Body, Envelope, KeyRecord, Statement, Tlp, VerifyError, VerifyingKey,
};
use isac_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::grpc::auth::{authenticate, Caller};
use crate::grpc::{now, HubState};
use crate::policy;
use crate::store::{AnonymousVersion, KeyRow, NewStatement, StoredFacts};

/// The organisation id anonymous statements carry, reserved.
pub const ANONYMOUS_ORG: &str = "anonymous";

pub struct PublisherService {
    pub state: HubState,
}

#[tonic::async_trait]
impl pb::publisher_server::Publisher for PublisherService {
    #[tracing::instrument(skip_all, fields(org, id, seq))]
    async fn publish(
        &self,
        req: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let outcome = self.publish_one(req).await;
        match &outcome {
            Ok(_) => self.state.metrics.accepted(1),
            Err(status) => self.state.metrics.refused(status.code(), 1),
        }
        outcome
    }

    #[tracing::instrument(skip_all, fields(org, items))]
    async fn publish_batch(
        &self,
        req: Request<pb::PublishBatchRequest>,
    ) -> Result<Response<pb::PublishBatchResponse>, Status> {
        let items = req.get_ref().items.len() as u64;
        let outcome = self.publish_many(req).await;
        let metrics = &self.state.metrics;
        match &outcome {
            Ok(r) => {
                for item in &r.get_ref().results {
                    match item.accepted {
                        Some(_) => metrics.accepted(1),
                        None => metrics.refused(tonic::Code::from_i32(item.code), 1),
                    }
                }
            }
            Err(status) => metrics.refused(status.code(), items),
        }
        outcome
    }
}

// === impl PublisherService ===

impl PublisherService {
    async fn publish_one(
        &self,
        req: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let caller = authenticate(&self.state, &req).await?;
        tracing::Span::current().record("org", caller.org_id.as_str());
        let pb::PublishRequest {
            envelope,
            audience_openings,
        } = req.into_inner();
        let envelope =
            envelope.ok_or_else(|| ApiError::InvalidArgument("missing envelope".into()))?;
        self.state
            .limits
            .take_publish(&caller.org_id, 1, std::time::Instant::now())?;
        Ok(Response::new(
            publish(&self.state, &caller, envelope, audience_openings).await?,
        ))
    }

    async fn publish_many(
        &self,
        req: Request<pb::PublishBatchRequest>,
    ) -> Result<Response<pb::PublishBatchResponse>, Status> {
        let caller = authenticate(&self.state, &req).await?;
        let items = req.into_inner().items;
        tracing::Span::current().record("org", caller.org_id.as_str());
        tracing::Span::current().record("items", items.len());
        self.state
            .limits
            .take_publish(&caller.org_id, items.len(), std::time::Instant::now())?;
        Ok(Response::new(
            publish_batch(&self.state, &caller, items).await?,
        ))
    }
}

pub fn key_record(row: &KeyRow) -> Option<KeyRecord> {
    Some(KeyRecord {
        key: VerifyingKey::from_spki_der(&row.public_key_der).ok()?,
        org_id: row.org_id.clone(),
        valid_from: row.valid_from,
        retired_at: row.retired_at,
        revoked_at: row.revoked_at,
    })
}

/// Which status each verification failure earns.
fn refusal(e: VerifyError) -> ApiError {
    let message = e.to_string();
    match e {
        VerifyError::SourceMismatch { .. }
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
/// the clear entries, their openings, and a snapshot of each named group.
async fn resolve_audience(
    state: &HubState,
    statement: &Statement,
    openings: Vec<pb::AudienceOpening>,
) -> Result<
    (
        Vec<AudienceRef>,
        Vec<AudienceOpening>,
        BTreeMap<String, Vec<String>>,
    ),
    ApiError,
> {
    let openings = openings
        .into_iter()
        .map(|o| {
            Ok(AudienceOpening {
                entry: o.entry.parse().map_err(|e: isac_core::tlp::BadAudience| {
                    ApiError::InvalidArgument(e.to_string())
                })?,
                salt: o.salt,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let entries = open_audience(&statement.audience, &openings)
        .map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
    check_audience_rules(statement.tlp, &entries)
        .map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
    let mut snapshot = BTreeMap::new();
    for entry in &entries {
        let known = match entry {
            AudienceRef::Org(org) => state
                .store
                .member(org)
                .await?
                .is_some_and(|m| m.status != "removed" && org != ANONYMOUS_ORG),
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
    Ok((entries, openings, snapshot))
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
        .tlp
        .parse()
        .map_err(|_| ApiError::Internal(format!("item {target_id} has an unreadable TLP")))?;
    if !derived_tlp_ok(statement.tlp, target_tlp) {
        return Err(ApiError::InvalidArgument(format!(
            "a {} may not be less restricted than the item it refers to ({target_tlp}); use at least that level",
            statement.kind()
        )));
    }
    if matches!(statement.body, Body::Retraction(_))
        && latest.source_org != caller.org_id
        && !caller.is_coordinator()
    {
        return Err(ApiError::PermissionDenied(
            "only the item's source or a coordinator may retract it".into(),
        ));
    }
    Ok(Some(target_id))
}

/// Re-issues `statement` without its source, signed by the hub's
/// anonymisation key (listed in the key directory as `anonymous`).
fn anonymise(state: &HubState, statement: &Statement) -> Result<AnonymousVersion, ApiError> {
    let mut anon = statement.clone();
    anon.source = ANONYMOUS_ORG.to_owned();
    let key = &state.material.anon_key;
    let env = key
        .sign_envelope(isac_core::PAYLOAD_TYPE_STATEMENT_V1, anon.canonical_bytes())
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
fn facts_of(statement: &Statement) -> StoredFacts {
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
            let until = i.valid_until.as_deref().and_then(|t| parse_rfc3339(t).ok());
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

async fn publish(
    state: &HubState,
    caller: &Caller,
    envelope: pb::Envelope,
    openings: Vec<pb::AudienceOpening>,
) -> Result<pb::PublishResponse, ApiError> {
    let new = prepare(state, caller, envelope, openings).await?;
    let (id, revision) = (new.id.clone(), new.revision);
    let (sequence, duplicate) = state.store.append_statement(new).await?;
    tracing::Span::current().record("seq", sequence);
    tracing::debug!(duplicate, "statement accepted");
    Ok(pb::PublishResponse {
        id,
        revision,
        // Not shown to members: two of them would count the items between.
        sequence: 0,
        duplicate,
    })
}

/// Most statements in one `PublishBatch` call.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// Verifies every item of a batch concurrently, then stores the accepted
/// ones in request order, in one group commit.
pub async fn publish_batch(
    state: &HubState,
    caller: &Caller,
    items: Vec<pb::PublishRequest>,
) -> Result<pb::PublishBatchResponse, ApiError> {
    if items.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::InvalidArgument(format!(
            "a batch holds at most {MAX_BATCH_ITEMS} statements; split it"
        )));
    }
    // Each distinct signing key once, not once per item.
    let mut keys: std::collections::HashMap<String, Option<(String, KeyRecord)>> =
        std::collections::HashMap::new();
    for item in &items {
        if let Some(kid) = item.envelope.as_ref().and_then(signing_key_id) {
            if !keys.contains_key(kid) && keys.len() < 16 {
                keys.insert(kid.to_owned(), lookup_key(state, kid).await?);
            }
        }
    }
    let keys = std::sync::Arc::new(keys);
    let mut tasks = tokio::task::JoinSet::new();
    for (index, item) in items.into_iter().enumerate() {
        let (state, caller, keys) = (state.clone(), caller.clone(), keys.clone());
        tasks.spawn(async move {
            let pb::PublishRequest {
                envelope,
                audience_openings,
            } = item;
            let prepared = match envelope {
                Some(env) => match signing_key_id(&env).and_then(|kid| keys.get(kid)).cloned() {
                    Some(key) => {
                        prepare_with_key(&state, &caller, env, audience_openings, key).await
                    }
                    None => prepare(&state, &caller, env, audience_openings).await,
                },
                None => Err(ApiError::InvalidArgument("missing envelope".into())),
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
    let results = slots
        .into_iter()
        .map(|slot| {
            let outcome = slot.and_then(|(id, revision, i)| {
                stored[i]
                    .clone()
                    .map(|(_, duplicate)| pb::PublishResponse {
                        id,
                        revision,
                        sequence: 0,
                        duplicate,
                    })
                    .map_err(ApiError::from)
            });
            match outcome {
                Ok(r) => pb::PublishResult {
                    accepted: Some(r),
                    code: 0,
                    message: String::new(),
                },
                Err(e) => {
                    let status = Status::from(e);
                    pb::PublishResult {
                        accepted: None,
                        code: status.code() as i32,
                        message: status.message().to_owned(),
                    }
                }
            }
        })
        .collect();
    Ok(pb::PublishBatchResponse { results })
}

/// Every check of a publish, ending in the row to store. Stores nothing.
async fn prepare(
    state: &HubState,
    caller: &Caller,
    envelope: pb::Envelope,
    openings: Vec<pb::AudienceOpening>,
) -> Result<NewStatement, ApiError> {
    let key = match signing_key_id(&envelope) {
        Some(kid) => lookup_key(state, kid).await?,
        None => None,
    };
    prepare_with_key(state, caller, envelope, openings, key).await
}

/// The key id an envelope names, if it names exactly one plausible one.
fn signing_key_id(envelope: &pb::Envelope) -> Option<&str> {
    match envelope.signatures.as_slice() {
        [sig] if sig.keyid.len() <= 128 => Some(&sig.keyid),
        _ => None,
    }
}

/// The key's owner and validity record, if the directory knows it.
async fn lookup_key(state: &HubState, kid: &str) -> Result<Option<(String, KeyRecord)>, ApiError> {
    Ok(state
        .store
        .key(kid)
        .await?
        .and_then(|row| key_record(&row).map(|rec| (row.org_id, rec))))
}

/// `prepare` with the signing key already looked up (owner org, record):
/// a batch looks each distinct key up once.
pub(crate) async fn prepare_with_key(
    state: &HubState,
    caller: &Caller,
    envelope: pb::Envelope,
    openings: Vec<pb::AudienceOpening>,
    key: Option<(String, KeyRecord)>,
) -> Result<NewStatement, ApiError> {
    let envelope = Envelope::from(envelope);
    if let Some((owner, _)) = &key {
        // The hub's attestation key signs TAXII submissions for the caller;
        // the author check below ties them to the caller's org.
        if owner != &caller.org_id && owner != isac_core::statement::HUB_ATTESTATION_ORG {
            return Err(ApiError::PermissionDenied(format!(
                "you are authenticated as `{}` but the statement is signed with a key of another member; sign with your own key",
                caller.org_id
            )));
        }
    }
    let record = key.map(|(_, rec)| rec);
    let verified = verify_envelope(&envelope, |_| record).map_err(refusal)?;
    let statement = &verified.statement;
    tracing::Span::current().record("id", tracing::field::display(statement.id));
    if statement.author() != caller.org_id {
        return Err(ApiError::PermissionDenied(format!(
            "statement claims source `{}` but you are authenticated as `{}`",
            statement.author(),
            caller.org_id
        )));
    }
    let created =
        parse_rfc3339(&statement.created).map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
    let received_at = now();
    if !created_not_in_future(created, received_at) {
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
    let (entries, openings, snapshot) = resolve_audience(state, statement, openings).await?;
    let target_id = check_target(state, caller, statement).await?;
    let anonymous = if statement.anonymous {
        Some(anonymise(state, statement)?)
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
        facts: facts_of(statement),
        stix_ids: isac_core::stix::object_ids(statement),
        references: statement
            .referenced_ids()
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    Ok(new)
}
