//! Shared state of a running hub: what every front door (gRPC, TAXII,
//! metrics) and the application layer reach through one cheap clone.

use std::sync::Arc;

use crate::app::clock::Clock;
use crate::app::epoch_cache::EpochCache;
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
    /// What "now" is: the system clock, or a test's.
    pub clock: Clock,
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
    /// The log's witnesses and how each is doing.
    pub witnesses: crate::app::witness::Board,
    /// Publishing callers by client certificate fingerprint, at the
    /// current epoch (`app::epoch_cache`).
    pub callers: EpochCache<crate::app::authenticated::Caller>,
    /// Publishers' signing keys (owner, record) by key id, at the
    /// current epoch.
    pub signing_keys: EpochCache<(String, isac_core::verify::KeyRecord)>,
}

impl std::ops::Deref for HubState {
    type Target = HubShared;
    fn deref(&self) -> &HubShared {
        &self.inner
    }
}

impl HubShared {
    /// Now, in unix seconds, by the hub's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
