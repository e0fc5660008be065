//! The gRPC layer: thin service impls over the core and the store. One
//! module per service; each handler authenticates, validates, applies, and
//! responds. Status codes are chosen in `crate::error` only.

pub mod admin;
pub mod auth;
pub mod enroll;
pub mod keys;
pub mod lookup;
pub mod membership;
pub mod publish;
pub mod subscribe;

use std::sync::Arc;

use crate::config::HubConfig;
use crate::datadir::HubMaterial;

use crate::store::Store;

/// Shared state of a running hub: a cheap clone.
#[derive(Clone)]
pub struct HubState {
    pub inner: Arc<HubShared>,
}

pub struct HubShared {
    pub store: Store,
    pub material: HubMaterial,
    pub config: HubConfig,
    /// Flips to true when the hub begins shutting down; open streams end.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The signed key directory.
    pub directory: crate::directory::DirectorySigner,
    /// Moves whenever membership or keys change (seen by polling the store,
    /// so changes made by the CLI in another process count too).
    pub epoch: tokio::sync::watch::Receiver<u64>,
    /// Publish rates and stream counts.
    pub limits: crate::limits::Limits,
    /// Counters for the metrics listener.
    pub metrics: crate::metrics::Metrics,
    /// Open connections per source and per listener, with their caps.
    pub connections: std::sync::Arc<crate::tls::ConnLimits>,
}

impl std::ops::Deref for HubState {
    type Target = HubShared;
    fn deref(&self) -> &HubShared {
        &self.inner
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
