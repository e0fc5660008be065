//! `isac.v1.Publisher`: a thin adapter over [`crate::app::publish`]. It
//! authenticates, takes the rate, converts the request to core types once,
//! and converts the answer back.

use isac_core::audience::AudienceOpening;
use isac_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::app::caller::Caller;
use crate::app::publish::{self as domain, Published, Submission};
use crate::app::HubState;
use crate::error::ApiError;
use crate::grpc::auth::{authenticate, authenticate_to_publish};

pub use crate::app::publish::MAX_BATCH_ITEMS;

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
        let caller = authenticate_to_publish(&self.state, &req).await?;
        tracing::Span::current().record("org", caller.org_id.as_str());
        let item = req.into_inner();
        if item.envelope.is_none() {
            return Err(ApiError::InvalidArgument("missing envelope".into()).into());
        }
        self.state
            .limits
            .take_publish(&caller.org_id, 1, std::time::Instant::now())?;
        Ok(Response::new(publish(&self.state, &caller, item).await?))
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

/// A request item in core types. Every field is looked at: a new one
/// breaks the build until someone decides what it means.
fn submission(item: pb::PublishRequest) -> Result<Submission, ApiError> {
    let pb::PublishRequest {
        envelope,
        audience_openings,
        scrub_overrides,
    } = item;
    let envelope = envelope.ok_or_else(|| ApiError::InvalidArgument("missing envelope".into()))?;
    let openings = audience_openings
        .into_iter()
        .map(|o| AudienceOpening::try_from(o).map_err(|e| ApiError::InvalidArgument(e.to_string())))
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Submission {
        envelope: envelope.into(),
        openings,
        overrides: domain::check_overrides(scrub_overrides)?,
    })
}

fn response(p: Published) -> pb::PublishResponse {
    let Published {
        id,
        revision,
        duplicate,
    } = p;
    pb::PublishResponse {
        id,
        revision,
        // Not shown to members: two of them would count the items between.
        sequence: 0,
        duplicate,
    }
}

async fn publish(
    state: &HubState,
    caller: &Caller,
    item: pb::PublishRequest,
) -> Result<pb::PublishResponse, ApiError> {
    Ok(response(
        domain::publish(state, caller, submission(item)?).await?,
    ))
}

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
    let items = items.into_iter().map(submission).collect();
    let results = domain::publish_batch(state, caller, items)
        .await?
        .into_iter()
        .map(|outcome| match outcome {
            Ok(p) => pb::PublishResult {
                accepted: Some(response(p)),
                code: 0,
                message: String::new(),
            },
            Err(e) => {
                let status: Status = e.into();
                pb::PublishResult {
                    accepted: None,
                    code: status.code() as i32,
                    message: status.message().to_owned(),
                }
            }
        })
        .collect();
    Ok(pb::PublishBatchResponse { results })
}
