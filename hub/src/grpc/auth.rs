//! Who is calling: the verified client certificate, looked up in the store.
//! Identity comes from the hub's own record of the certificate it issued,
//! never from names a peer chose; an empty, unknown, replaced or suspended
//! identity maps to no one.

use tonic::Request;

use crate::error::ApiError;
use crate::grpc::HubState;
use crate::tls::PeerInfo;

#[derive(Debug, Clone)]
pub struct Caller {
    pub org_id: String,
    pub agent_name: String,
    pub role: String,
    pub cert_fingerprint: String,
    /// Sharing groups the org belongs to now.
    pub groups: Vec<String>,
}

impl Caller {
    pub fn is_coordinator(&self) -> bool {
        self.role == "coordinator"
    }
}

pub async fn authenticate<T>(state: &HubState, req: &Request<T>) -> Result<Caller, ApiError> {
    let fingerprint = req
        .extensions()
        .get::<PeerInfo>()
        .and_then(|p| p.client_cert_sha256.clone())
        .ok_or_else(|| {
            ApiError::Unauthenticated(
                "no client certificate: enroll first (`member-agent enroll --hub URL --token TOKEN`) and connect with the issued certificate".into(),
            )
        })?;
    caller_for_cert(state, &fingerprint).await
}

/// Also used by open streams to re-check the caller when membership changes.
pub async fn caller_for_cert(state: &HubState, fingerprint: &str) -> Result<Caller, ApiError> {
    let agent = state.store.agent_by_cert(fingerprint).await?.ok_or_else(|| {
        ApiError::Unauthenticated(
            "this client certificate is not registered with the hub; enroll again with a new token".into(),
        )
    })?;
    if agent.superseded {
        return Err(ApiError::Unauthenticated(format!(
            "this certificate for agent `{}` was replaced by a newer enrollment; use the new certificate",
            agent.agent_name
        )));
    }
    if agent.member_status != "active" {
        return Err(ApiError::PermissionDenied(format!(
            "member `{}` is {}; contact the hub operator",
            agent.org_id, agent.member_status
        )));
    }
    let groups = state.store.groups_of(&agent.org_id).await?;
    Ok(Caller {
        groups,
        org_id: agent.org_id,
        agent_name: agent.agent_name,
        role: agent.role,
        cert_fingerprint: fingerprint.to_owned(),
    })
}
