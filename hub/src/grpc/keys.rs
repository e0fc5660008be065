//! `isac.v1.KeyDirectory`: the members' public signing keys.
//!
//! The rows are read from the very directory signed for this answer, so
//! they list exactly the keys it lists (members' keys and the hub's
//! anonymisation, attestation and log keys) and can never disagree with it.

use crate::error::ApiError;
use isac_core::directory::{DirectoryKey, KeyDirectory};
use isac_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::app::HubState;
use crate::grpc::auth::authenticate;

pub struct KeyDirectoryService {
    pub state: HubState,
}

#[tonic::async_trait]
impl pb::key_directory_server::KeyDirectory for KeyDirectoryService {
    async fn list_keys(
        &self,
        req: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        authenticate(&self.state, &req).await?;
        let signed = self
            .state
            .directory
            .current()
            .await
            .map_err(ApiError::from)?;
        let directory: KeyDirectory = serde_json::from_slice(&signed.payload)
            .map_err(|e| ApiError::Internal(format!("reading our own key directory: {e}")))?;
        let keys = directory.keys.into_iter().map(row).collect();
        Ok(Response::new(pb::ListKeysResponse {
            keys,
            signed_directory: Some(signed.into()),
        }))
    }

    /// The origin directories this hub pinned from the hubs it follows
    /// (their own envelopes, as verified by `grpc/follower.rs`).
    async fn get_federated_directories(
        &self,
        req: Request<pb::GetFederatedDirectoriesRequest>,
    ) -> Result<Response<pb::GetFederatedDirectoriesResponse>, Status> {
        authenticate(&self.state, &req).await?;
        Ok(Response::new(
            federated_directories(&self.state.store).await?,
        ))
    }
}

/// Every origin directory this hub pinned (followed hubs, origins taken
/// through a peer, retired links whose items remain), each byte for byte:
/// what members get from `GetFederatedDirectories` and peers from
/// `Peering.GetOriginDirectories`.
pub(crate) async fn federated_directories(
    store: &crate::store::Store,
) -> Result<pb::GetFederatedDirectoriesResponse, ApiError> {
    let pinned = crate::app::federation::pinned_origin_directories(store).await?;
    Ok(pb::GetFederatedDirectoriesResponse {
        directories: pinned
            .into_iter()
            .map(|(hub_id, envelope)| pb::FederatedDirectory {
                hub_id,
                signed_directory: Some(envelope.into()),
            })
            .collect(),
    })
}

/// One directory entry as a display row.
fn row(k: DirectoryKey) -> pb::MemberKey {
    use base64::Engine;
    let public_key_der = base64::engine::general_purpose::STANDARD
        .decode(&k.public_key)
        .unwrap_or_default();
    pb::MemberKey {
        state: k.state().to_owned(),
        key_id: k.key_id,
        org_id: k.org_id,
        public_key_der,
        valid_from: k.valid_from,
        revoked_at: k.revoked_at.unwrap_or_default(),
        org_name: k.org_name,
        retired_at: k.retired_at.unwrap_or_default(),
    }
}
