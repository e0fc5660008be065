//! Operations endpoints on the gRPC listener: `grpc.health.v1` health
//! checking (for load balancers and probes; no client certificate needed,
//! it reveals nothing but "serving") and gRPC server reflection, `v1` and
//! `v1alpha` (so `grpcurl` and grpcio-reflection work; it needs a client
//! certificate from the hub's CA).

use isac_proto::v1 as pb;
use tonic::{Request, Status};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::error::ApiError;
use crate::tls::PeerInfo;

/// The services the hub reports on, by their gRPC names. The empty name is
/// the whole server.
pub const SERVICES: [&str; 9] = [
    "",
    pb::enrollment_server::SERVICE_NAME,
    pb::publisher_server::SERVICE_NAME,
    pb::subscriber_server::SERVICE_NAME,
    pb::key_directory_server::SERVICE_NAME,
    pb::membership_server::SERVICE_NAME,
    pb::lookup_server::SERVICE_NAME,
    pb::admin_server::SERVICE_NAME,
    pb::log_server::SERVICE_NAME,
];

/// The health service, with every hub service SERVING, and the handle that
/// flips them to NOT_SERVING at shutdown.
pub async fn health() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, service) = tonic_health::server::health_reporter();
    set_all(&reporter, ServingStatus::Serving).await;
    (reporter, service)
}

/// At shutdown: every service NOT_SERVING at once, then, after a moment
/// for probes to see it, forgotten, which ends open `Watch` streams (they
/// would otherwise hold the graceful shutdown open for as long as the
/// watcher stays connected).
pub async fn shutting_down(mut reporter: HealthReporter) {
    set_all(&reporter, ServingStatus::NotServing).await;
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        for name in SERVICES {
            reporter.clear_service_status(name).await;
        }
    });
}

/// Follows the store: every service NOT_SERVING while the database is
/// unavailable (PostgreSQL down), SERVING again when it answers, so a load
/// balancer sends clients to a replica that still has it. Ends when the
/// store goes away; aborted at shutdown before [`shutting_down`].
pub async fn follow_store(
    reporter: HealthReporter,
    mut unavailable: tokio::sync::watch::Receiver<Option<String>>,
) {
    loop {
        let status = if unavailable.borrow_and_update().is_some() {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        set_all(&reporter, status).await;
        if unavailable.changed().await.is_err() {
            return;
        }
    }
}

/// Sets every reported service (and the server as a whole) to `status`.
pub async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    for name in SERVICES {
        reporter.set_service_status(name, status).await;
    }
}

/// The reflection builder both versions share: `isac.v1`,
/// `grpc.health.v1` and both reflection services, so each version lists
/// both (`grpc.reflection.v1.ServerReflection` and
/// `grpc.reflection.v1alpha.ServerReflection`).
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(isac_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

/// gRPC server reflection v1 over `isac.v1` and `grpc.health.v1`.
pub fn reflection() -> Result<
    tonic_reflection::pb::v1::server_reflection_server::ServerReflectionServer<
        impl tonic_reflection::pb::v1::server_reflection_server::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    reflection_builder().build_v1()
}

/// The same reflection as v1alpha, which grpcurl and grpcio-reflection's
/// client still speak.
pub fn reflection_v1alpha() -> Result<
    tonic_reflection::pb::v1alpha::server_reflection_server::ServerReflectionServer<
        impl tonic_reflection::pb::v1alpha::server_reflection_server::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    reflection_builder().build_v1alpha()
}

/// Interceptor: only callers with a client certificate from the hub's CA
/// (any enrolled agent) may use reflection.
pub fn require_client_cert(req: Request<()>) -> Result<Request<()>, Status> {
    let has_cert = req
        .extensions()
        .get::<PeerInfo>()
        .is_some_and(|p| p.client_cert_sha256.is_some());
    if has_cert {
        Ok(req)
    } else {
        Err(ApiError::Unauthenticated(
            "server reflection needs a client certificate from this hub (an enrolled agent's tls.crt and tls.key)".into(),
        )
        .into())
    }
}
