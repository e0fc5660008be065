//! `isac.v1.Lookup`: get by id, search, sighting counts. Each answer passes
//! the same TLP decision as the stream; an item the caller may not see is
//! indistinguishable from one that does not exist.

use isac_core::tlp::Channel;
use isac_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::app::HubState;
use crate::error::ApiError;
use crate::grpc::auth::authenticate;
use crate::policy;

pub struct LookupService {
    pub state: HubState,
}

const MAX_QUERY_CHARS: usize = 256;

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no statement {} that you can see",
        id.chars().take(64).collect::<String>()
    ))
}

#[tonic::async_trait]
impl pb::lookup_server::Lookup for LookupService {
    async fn get_statement(
        &self,
        req: Request<pb::GetStatementRequest>,
    ) -> Result<Response<pb::Delivery>, Status> {
        let caller = authenticate(&self.state, &req).await?;
        let id = req.into_inner().id;
        if uuid::Uuid::parse_str(&id).is_err() {
            return Err(not_found(&id).into());
        }
        // The newest revision the caller may see.
        for row in self
            .state
            .store
            .revisions(&id)
            .await
            .map_err(ApiError::from)?
        {
            if policy::may_see_row(&self.state.store, &row, &caller, Channel::Get)
                .await
                .map_err(ApiError::from)?
            {
                return Ok(Response::new(crate::grpc::delivery::delivery(
                    &row,
                    &caller,
                    self.state.directory.version(),
                )));
            }
        }
        Err(not_found(&id).into())
    }

    async fn search(
        &self,
        req: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let caller = authenticate(&self.state, &req).await?;
        let pb::SearchRequest { query, limit } = req.into_inner();
        if query.trim().is_empty() || query.chars().count() > MAX_QUERY_CHARS {
            return Err(ApiError::InvalidArgument(format!(
                "query must be 1 to {MAX_QUERY_CHARS} characters"
            ))
            .into());
        }
        let limit = if limit == 0 { 50 } else { limit.min(500) };
        let mut items = Vec::new();
        // Filter after the SQL match, over a bounded window, so a hidden item
        // never counts toward (or shows through) the caller's results.
        for row in self
            .state
            .store
            .search(query.trim(), 5000)
            .await
            .map_err(ApiError::from)?
        {
            if items.len() as u32 >= limit {
                break;
            }
            if policy::may_see_row(&self.state.store, &row, &caller, Channel::Search)
                .await
                .map_err(ApiError::from)?
            {
                items.push(crate::grpc::delivery::delivery(
                    &row,
                    &caller,
                    self.state.directory.version(),
                ));
            }
        }
        Ok(Response::new(pb::SearchResponse { items }))
    }

    async fn count_sightings(
        &self,
        req: Request<pb::CountSightingsRequest>,
    ) -> Result<Response<pb::SightingCount>, Status> {
        let caller = authenticate(&self.state, &req).await?;
        let id = req.into_inner().indicator_id;
        let target = self
            .state
            .store
            .revisions(&id)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .next()
            .filter(|t| policy::may_see(t, &caller, Channel::Count))
            .ok_or_else(|| not_found(&id))?;
        let mut total = 0u64;
        let mut reports = 0u32;
        for s in self
            .state
            .store
            .sightings_of(&id)
            .await
            .map_err(ApiError::from)?
        {
            if policy::may_see_with_target(&s, Some(&target), &caller, Channel::Count) {
                total += u64::from(s.sighting_count.unwrap_or(0));
                reports += 1;
            }
        }
        Ok(Response::new(pb::SightingCount {
            indicator_id: id,
            total,
            reports,
        }))
    }
}
