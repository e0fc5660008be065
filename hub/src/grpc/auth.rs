//! Who is calling a gRPC service: the verified client certificate the TLS
//! layer put in the request, resolved by `crate::app::caller`.

use tonic::Request;

use crate::app::caller::{caller_for_cert, caller_for_cert_to_publish, Caller};
use crate::app::HubState;
use crate::error::ApiError;
use crate::tls::PeerInfo;

pub async fn authenticate<T>(state: &HubState, req: &Request<T>) -> Result<Caller, ApiError> {
    caller_for_cert(state, fingerprint(req)?).await
}

/// [`authenticate`] for a single publish: the caller may come from the
/// epoch cache, which the publish's transaction checks.
pub async fn authenticate_to_publish<T>(
    state: &HubState,
    req: &Request<T>,
) -> Result<Caller, ApiError> {
    caller_for_cert_to_publish(state, fingerprint(req)?).await
}

fn fingerprint<T>(req: &Request<T>) -> Result<&str, ApiError> {
    req
        .extensions()
        .get::<PeerInfo>()
        .and_then(|p| p.client_cert_sha256.as_deref())
        .ok_or_else(|| {
            ApiError::Unauthenticated(
                "no client certificate: enroll first (`member-agent enroll --hub URL --token TOKEN`) and connect with the issued certificate".into(),
            )
        })
}
