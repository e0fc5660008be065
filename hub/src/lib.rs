//! The ISAC hub: verifies, stores and fans out signed threat indicators to
//! member agents over OpenSSL mutual TLS.
//!
//! The caller binds the listener and owns shutdown ([`serve`]), so tests can
//! start many hubs on ephemeral ports. See ARCHITECTURE.md for the codemap.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod cursor;
pub mod datadir;
pub mod directory;
pub mod error;
pub mod grpc;
pub mod limits;
pub mod metrics;
pub mod ops;
pub mod pki;
pub mod policy;
pub mod retention;
pub mod store;
pub mod taxii;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use isac_proto::v1 as pb;
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;

use crate::app::{Clock, HubShared, HubState};
use crate::config::HubConfig;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("data directory: {0}")]
    DataDir(#[from] datadir::DataDirError),
    #[error("TLS setup: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("config: {0}")]
    Config(String),
}

/// Prepares the data directory (creating the CA, keys and database on first
/// start) and returns the CA fingerprint.
pub fn prepare(config: &HubConfig) -> Result<(datadir::HubMaterial, bool), HubError> {
    let prepared = datadir::init(&config.data_dir, &config.server_names)?;
    // Create or migrate the database now, before anyone is told we listen
    // (a PostgreSQL store is migrated when it is opened, under its lock).
    if config.store.is_empty() {
        datadir::open_store(&config.data_dir)?.close();
    }
    Ok(prepared)
}

/// The store `config` names: the data dir's SQLite database, or the
/// PostgreSQL database of `store` (with the configured password).
pub async fn open_configured_store(config: &HubConfig) -> Result<store::Store, HubError> {
    if config.store.is_empty() {
        return Ok(datadir::open_store(&config.data_dir)?);
    }
    let password = config.store_password.as_ref().map(|p| p.0.as_str());
    let target = store::postgres_target(&config.store, password, Some(&config.store_ca_file))
        .map_err(datadir::DataDirError::Store)?;
    Ok(store::Store::open_postgres_target(target)
        .await
        .map_err(datadir::DataDirError::Store)?)
}

/// Refuses whole-database copies (`hub backup`, `hub restore`) of a
/// PostgreSQL store, saying what to use instead.
pub fn sqlite_only(config: &HubConfig, what: &str) -> Result<(), datadir::DataDirError> {
    if config.store.is_empty() {
        return Ok(());
    }
    Err(datadir::DataDirError::Store(
        store::StoreError::Unsupported(format!(
            "`hub {what}` copies the embedded SQLite database; this hub's store is PostgreSQL: \
         use pg_dump / pg_restore for the database, and copy the data dir's key files \
         (ca.*, server.*, hub-*.key) yourself"
        )),
    ))
}

/// The sockets a hub serves on; the caller binds them (so tests bind
/// `127.0.0.1:0` and start many hubs at once).
pub struct Listeners {
    /// gRPC over mutual TLS.
    pub grpc: TcpListener,
    /// TAXII 2.1 over HTTPS, when configured.
    pub taxii: Option<TcpListener>,
    /// Prometheus metrics over plain HTTP, when configured.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    pub fn grpc_only(grpc: TcpListener) -> Self {
        Listeners {
            grpc,
            taxii: None,
            metrics: None,
        }
    }
}

/// What a hub runs on besides its config; the defaults are production's.
#[derive(Default)]
pub struct ServeOptions {
    /// "Now" for the hub (`Clock::system()` unless a test sets the time).
    pub clock: Option<Clock>,
    /// A store the caller opened from the prepared data dir and keeps a
    /// handle on (tests close it under a running hub to see how the hub
    /// answers without its store); otherwise the hub opens its own.
    pub store: Option<store::Store>,
}

/// Serves the hub until `shutdown` resolves, then stops accepting, ends
/// open streams with UNAVAILABLE, and closes the store after every queued
/// write has committed.
pub async fn serve(
    listeners: Listeners,
    config: HubConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), HubError> {
    serve_with(listeners, config, ServeOptions::default(), shutdown).await
}

/// [`serve`] with a test's clock or store.
pub async fn serve_with(
    listeners: Listeners,
    config: HubConfig,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), HubError> {
    let Listeners {
        grpc: listener,
        taxii: taxii_listener,
        metrics: metrics_listener,
    } = listeners;
    let clock = options.clock.unwrap_or_else(Clock::system);
    let store = match options.store {
        Some(store) => store,
        None => {
            prepare(&config)?;
            open_configured_store(&config).await?
        }
    };
    let (material, _) = datadir::init(&config.data_dir, &config.server_names)?;
    let acceptor = Arc::new(tls::build_acceptor(&material, tls::ALPN_H2)?);
    let taxii_acceptor = match &taxii_listener {
        Some(_) => Some(Arc::new(tls::build_acceptor(&material, tls::ALPN_HTTP1)?)),
        None => None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let directory = directory::DirectorySigner::new(
        store.clone(),
        material.hub_signing_key.clone(),
        &material.anon_key,
        &material.attest_key,
        &material.log_key,
        config.directory_ttl_secs,
        clock.clone(),
    )
    .with_default_lifetimes(config.default_lifetime.clone())
    .with_peers_dir(config.data_dir.join("peers"));
    let initial_epoch = store.epoch().await.map_err(datadir::DataDirError::Store)?;
    let (epoch_tx, epoch_rx) = tokio::sync::watch::channel(initial_epoch);
    let state = HubState {
        inner: Arc::new(HubShared {
            store: store.clone(),
            material,
            config: config.clone(),
            clock,
            shutdown: stop_rx,
            directory,
            epoch: epoch_rx,
            limits: limits::Limits::new(
                config.publish_rate_per_s,
                config.publish_burst,
                config.max_streams_per_member,
                config.max_streams_total,
            )
            .with_streams_per_peer(config.max_streams_per_peer),
            metrics: metrics::Metrics::default(),
            connections: Arc::new(tls::ConnLimits::new(
                config.max_connections_per_source,
                config.max_connections_total,
                taxii::MAX_CONNECTIONS,
            )),
            witnesses: app::witness::Board::new(&config).map_err(HubError::Config)?,
            callers: Default::default(),
            signing_keys: Default::default(),
        }),
    };
    if let Err(e) = state.witnesses.init(&state.store).await {
        tracing::warn!(error = %e, "cannot read what the log's witnesses cosigned");
    }
    if let Err(e) = state.directory.current().await {
        tracing::error!(error = %e, "cannot sign the key directory");
    }
    let watcher = tokio::spawn(watch_epoch(state.clone(), epoch_tx));
    // Off the publish path: acknowledgements never wait for a checkpoint.
    let checkpointer = tokio::spawn(app::log::run_checkpointer(state.clone()));
    let witness_tasks = app::log::spawn_witnesses(&state);
    let metrics_task =
        metrics_listener.map(|l| tokio::spawn(metrics::http::serve(l, state.clone())));
    let taxii = match (taxii_listener, taxii_acceptor) {
        (Some(l), Some(a)) => Some(tokio::spawn(taxii::serve(l, a, state.clone()))),
        _ => None,
    };

    let (conn_tx, conn_rx) = tokio::sync::mpsc::channel(64);
    let accept = tokio::spawn(tls::accept_loop(
        listener,
        acceptor,
        tls::AcceptOptions {
            listener: tls::Listener::Grpc,
            handshake_timeout: config.handshake_timeout(),
            no_cert: Some(config.no_cert_timeouts()),
        },
        state.connections.clone(),
        conn_tx,
        state.shutdown.clone(),
    ));

    let max = config.max_message_bytes;
    let enrollment =
        pb::enrollment_server::EnrollmentServer::new(grpc::enroll::EnrollmentService {
            state: state.clone(),
        })
        .max_decoding_message_size(64 * 1024);
    let publisher = pb::publisher_server::PublisherServer::new(grpc::publish::PublisherService {
        state: state.clone(),
    })
    .max_decoding_message_size(max);
    let subscriber =
        pb::subscriber_server::SubscriberServer::new(grpc::subscribe::SubscriberService {
            state: state.clone(),
        })
        .max_decoding_message_size(16 * 1024);
    let keys = pb::key_directory_server::KeyDirectoryServer::new(grpc::keys::KeyDirectoryService {
        state: state.clone(),
    })
    .max_decoding_message_size(16 * 1024);
    let membership =
        pb::membership_server::MembershipServer::new(grpc::membership::MembershipService {
            state: state.clone(),
        })
        .max_decoding_message_size(64 * 1024);
    let lookup = pb::lookup_server::LookupServer::new(grpc::lookup::LookupService {
        state: state.clone(),
    })
    .max_decoding_message_size(16 * 1024);
    let admin = pb::admin_server::AdminServer::new(grpc::admin::AdminService {
        state: state.clone(),
    })
    .max_decoding_message_size(64 * 1024);

    let log = pb::log_server::LogServer::new(grpc::log::LogService {
        state: state.clone(),
    })
    .max_decoding_message_size(16 * 1024);

    let peering = pb::peering_server::PeeringServer::new(grpc::peering::PeeringService {
        state: state.clone(),
    })
    .max_decoding_message_size(16 * 1024);
    // Federation (issue 20): follow the hubs `hub peer add` linked.
    let followers = tokio::spawn(grpc::follower::run_followers(state.clone()));

    let (health, health_service) = ops::health().await;
    let health_follower = tokio::spawn(ops::follow_store(
        health.clone(),
        state.store.watch_unavailable(),
    ));
    let reflection = tonic::service::interceptor::InterceptedService::new(
        ops::reflection().map_err(|e| std::io::Error::other(format!("reflection: {e}")))?,
        ops::require_client_cert,
    );
    let reflection_v1alpha = tonic::service::interceptor::InterceptedService::new(
        ops::reflection_v1alpha()
            .map_err(|e| std::io::Error::other(format!("reflection v1alpha: {e}")))?,
        ops::require_client_cert,
    );

    let stopping = state.shutdown.clone();
    let serving = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .max_concurrent_streams(Some(256))
        .concurrency_limit_per_connection(256)
        // Rapid-reset (CVE-2023-44487) and error-reset floods: shed the
        // connection past these rather than keep spawning work.
        .http2_max_pending_accept_reset_streams(Some(64))
        .http2_max_local_error_reset_streams(Some(256))
        .http2_max_header_list_size(Some(16 * 1024))
        // Counts requests on connections without a client certificate,
        // for their idle timeout (`tls::TlsConn`).
        .layer(tls::TrackRequestsLayer)
        // A request message over its service's limit: RESOURCE_EXHAUSTED
        // naming the limit, rather than tonic's OUT_OF_RANGE.
        .layer(limits::MessageSizeLayer)
        // Request bytes in flight per caller: an unfinished message holds
        // its announced length of the caller's budget.
        .layer(limits::BodyBudgetLayer::new(limits::BodyBudgets::new(max)))
        .add_service(enrollment)
        .add_service(publisher)
        .add_service(subscriber)
        .add_service(keys)
        .add_service(membership)
        .add_service(lookup)
        .add_service(admin)
        .add_service(log)
        .add_service(peering)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(ReceiverStream::new(conn_rx), async move {
            shutdown.await;
            tracing::info!("shutting down: closing streams");
            health_follower.abort();
            ops::shutting_down(health).await;
            let _ = stop_tx.send(true);
        });
    let result = drained_within(serving, stopping, STOP_DRAIN).await;
    accept.abort();
    watcher.abort();
    followers.abort();
    if let Some(m) = metrics_task {
        m.abort();
    }
    if let Some(t) = taxii {
        // It stops on the same shutdown signal; wait for in-flight answers.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), t).await;
    }
    // The last checkpoint covers everything acknowledged before the stop.
    let _ = tokio::time::timeout(app::log::STOP_GRACE, checkpointer).await;
    // Witnesses get the last checkpoint from the next hub run.
    for t in witness_tasks {
        t.abort();
    }
    // Blocking join on the writer: off the async threads.
    let _ = tokio::task::spawn_blocking(move || store.close()).await;
    tracing::info!("hub stopped");
    Ok(result?)
}

/// How long open gRPC connections get to finish after the stop (streams
/// are told at once; a publish is acknowledged only once durable, so
/// nothing acknowledged is lost when a straggler is cut).
pub const STOP_DRAIN: Duration = Duration::from_secs(10);

/// `serving` until it ends, but no longer than `grace` after `stop` turns
/// true: a peer that keeps its connection open (say, half an HTTP/2
/// preface under a client certificate, which no idle timeout covers)
/// cannot hold the stop open.
async fn drained_within<T: Default, E>(
    serving: impl Future<Output = Result<T, E>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    grace: Duration,
) -> Result<T, E> {
    tokio::pin!(serving);
    let cut = async {
        if stop.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = &mut serving => result,
        () = cut => {
            tracing::warn!(grace_secs = grace.as_secs(), "connections still open after the stop grace: closing them");
            Ok(T::default())
        }
    }
}

/// Polls the store's membership epoch; on a change (or as the directory nears
/// expiry) re-signs the key directory, then tells open streams.
async fn watch_epoch(state: HubState, epoch_tx: tokio::sync::watch::Sender<u64>) {
    let period = std::time::Duration::from_millis(state.config.epoch_poll_ms.max(50));
    loop {
        tokio::time::sleep(period).await;
        let epoch = match state.store.epoch().await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read membership epoch");
                continue;
            }
        };
        if let Err(e) = state.directory.current_at(epoch).await {
            tracing::error!(error = %e, "cannot sign the key directory");
            continue;
        }
        epoch_tx.send_if_modified(|current| {
            let changed = *current != epoch;
            *current = epoch;
            changed
        });
    }
}
