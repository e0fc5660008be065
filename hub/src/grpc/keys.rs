//! `isac.v1.KeyDirectory`: the members' public signing keys.

use crate::error::ApiError;
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
        let keys = self
            .state
            .store
            .keys()
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(crate::grpc::admin::member_key)
            .collect();
        Ok(Response::new(pb::ListKeysResponse {
            keys,
            signed_directory: Some(signed.into()),
        }))
    }
}
