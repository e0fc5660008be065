//! `isac.v1.KeyDirectory`: the members' public signing keys.

use isac_core::time::format_rfc3339;
use isac_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::grpc::auth::authenticate;
use crate::grpc::HubState;

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
        let keys = self
            .state
            .store
            .keys()
            .await
            .map_err(crate::error::ApiError::from)?
            .into_iter()
            .map(|k| pb::MemberKey {
                key_id: k.key_id,
                org_id: k.org_id,
                public_key_der: k.public_key_der,
                valid_from: format_rfc3339(k.valid_from),
                revoked_at: k.revoked_at.map(format_rfc3339).unwrap_or_default(),
                org_name: k.org_name,
            })
            .collect();
        Ok(Response::new(pb::ListKeysResponse { keys }))
    }
}
