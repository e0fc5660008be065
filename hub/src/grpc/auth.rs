//! Who is calling a gRPC service: the verified client certificate the TLS
//! layer put in the request, resolved by `crate::app::caller`.

use tonic::Request;

use crate::app::caller::{caller_for_cert, Caller};
use crate::app::HubState;
use crate::error::ApiError;
use crate::tls::PeerInfo;

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
