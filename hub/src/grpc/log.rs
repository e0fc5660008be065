//! `isac.v1.Log`: the transparency log's checkpoint and proofs, for any
//! enrolled member (`app::log` validates and answers).

use isac_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::app::{self, HubState};
use crate::grpc::auth::authenticate;

pub struct LogService {
    pub state: HubState,
}

fn proof(hashes: Vec<isac_core::tlog::Hash>) -> pb::Proof {
    pb::Proof {
        hashes: hashes.iter().map(|h| h.to_vec()).collect(),
    }
}

#[tonic::async_trait]
impl pb::log_server::Log for LogService {
    async fn get_checkpoint(
        &self,
        req: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::Checkpoint>, Status> {
        authenticate(&self.state, &req).await?;
        let pb::GetCheckpointRequest { min_size } = req.into_inner();
        let latest = app::log::served_at_least(&self.state, min_size).await?;
        Ok(Response::new(pb::Checkpoint {
            signed_note: latest.note,
            tree_size: latest.size,
        }))
    }

    async fn get_inclusion_proof(
        &self,
        req: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::Proof>, Status> {
        authenticate(&self.state, &req).await?;
        let pb::GetInclusionProofRequest {
            leaf_index,
            tree_size,
        } = req.into_inner();
        let hashes = app::log::inclusion_proof(&self.state, leaf_index, tree_size).await?;
        Ok(Response::new(proof(hashes)))
    }

    async fn get_consistency_proof(
        &self,
        req: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::Proof>, Status> {
        authenticate(&self.state, &req).await?;
        let pb::GetConsistencyProofRequest {
            first_size,
            second_size,
        } = req.into_inner();
        let hashes = app::log::consistency_proof(&self.state, first_size, second_size).await?;
        Ok(Response::new(proof(hashes)))
    }

    async fn get_inclusion_proofs(
        &self,
        req: Request<pb::GetInclusionProofsRequest>,
    ) -> Result<Response<pb::InclusionProofs>, Status> {
        authenticate(&self.state, &req).await?;
        let pb::GetInclusionProofsRequest {
            tree_size,
            leaf_indices,
        } = req.into_inner();
        let proofs = app::log::inclusion_proofs(&self.state, &leaf_indices, tree_size).await?;
        Ok(Response::new(pb::InclusionProofs {
            proofs: proofs.into_iter().map(proof).collect(),
        }))
    }
}
