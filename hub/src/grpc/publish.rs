//! `isac.v1.Publisher`: verify, check the caller is the source, store, then ack.

use isac_core::time::parse_rfc3339;
use isac_core::tlp::accepted_for_publish;
use isac_core::verify::created_not_in_future;
use isac_core::{verify_envelope, Envelope, KeyRecord, Signature, VerifyError, VerifyingKey};
use isac_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::grpc::auth::{authenticate, Caller};
use crate::grpc::{now, HubState};
use crate::store::{KeyRow, NewStatement};

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
        let caller = authenticate(&self.state, &req).await?;
        tracing::Span::current().record("org", caller.org_id.as_str());
        let envelope = req
            .into_inner()
            .envelope
            .ok_or_else(|| ApiError::InvalidArgument("missing envelope".into()))?;
        Ok(Response::new(
            publish(&self.state, &caller, envelope).await?,
        ))
    }
}

pub fn envelope_from_pb(e: pb::Envelope) -> Envelope {
    let pb::Envelope {
        payload_type,
        payload,
        signatures,
    } = e;
    Envelope {
        payload_type,
        payload,
        signatures: signatures
            .into_iter()
            .map(|pb::Signature { keyid, sig }| Signature { keyid, sig })
            .collect(),
    }
}

pub fn envelope_to_pb(e: Envelope) -> pb::Envelope {
    pb::Envelope {
        payload_type: e.payload_type,
        payload: e.payload,
        signatures: e
            .signatures
            .into_iter()
            .map(|s| pb::Signature {
                keyid: s.keyid,
                sig: s.sig,
            })
            .collect(),
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

async fn publish(
    state: &HubState,
    caller: &Caller,
    envelope: pb::Envelope,
) -> Result<pb::PublishResponse, ApiError> {
    let envelope = envelope_from_pb(envelope);
    let key = match envelope.signatures.first() {
        Some(sig) if envelope.signatures.len() == 1 && sig.keyid.len() <= 128 => {
            state.store.key(&sig.keyid).await?
        }
        _ => None,
    };
    if let Some(k) = &key {
        if k.org_id != caller.org_id {
            return Err(ApiError::PermissionDenied(format!(
                "you are authenticated as `{}` but the statement is signed with a key of another member; sign with your own key",
                caller.org_id
            )));
        }
    }
    let record = key.as_ref().and_then(key_record);
    let verified = verify_envelope(&envelope, |_| record).map_err(refusal)?;
    let statement = &verified.statement;
    tracing::Span::current().record("id", tracing::field::display(statement.id));
    if statement.source != caller.org_id {
        return Err(ApiError::PermissionDenied(format!(
            "statement claims source `{}` but you are authenticated as `{}`",
            statement.source, caller.org_id
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
    if !accepted_for_publish(statement.tlp) {
        return Err(ApiError::InvalidArgument(format!(
            "{} is not accepted by this hub yet: audiences for AMBER, AMBER+STRICT and RED are not enforced end to end in this release; publish as TLP:CLEAR or TLP:GREEN, or share it out of band",
            statement.tlp
        )));
    }
    if !statement.audience.is_empty() {
        return Err(ApiError::InvalidArgument(format!(
            "{} goes to the whole community; an audience only applies to AMBER, AMBER+STRICT and RED",
            statement.tlp
        )));
    }
    let sig = &envelope.signatures[0];
    let new = NewStatement {
        id: statement.id.to_string(),
        revision: statement.revision,
        source_org: statement.source.clone(),
        tlp: statement.tlp.as_str().to_owned(),
        audience_json: serde_json_audience(statement),
        kind: statement.kind().to_owned(),
        created_at: created,
        received_at,
        payload_type: envelope.payload_type.clone(),
        payload: envelope.payload.clone(),
        key_id: sig.keyid.clone(),
        signature: sig.sig.clone(),
        digest: verified.digest.clone(),
    };
    let (sequence, duplicate) = state.store.append_statement(new).await?;
    tracing::Span::current().record("seq", sequence);
    tracing::info!(tlp = %statement.tlp, kind = statement.kind(), duplicate, "statement accepted");
    Ok(pb::PublishResponse {
        id: statement.id.to_string(),
        revision: statement.revision,
        sequence,
        duplicate,
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

fn serde_json_audience(s: &isac_core::Statement) -> String {
    serde_json::to_string(&s.audience).unwrap_or_else(|_| "[]".into())
}
