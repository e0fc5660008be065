//! The store's federation operations (issue 20), dispatched like the rest.

use isac_core::membership::StatusChange;

use super::fed_types::{FederatedItem, OriginDirectoryRow, PeerLinkRow};
use super::{Backend, Store, StoreError};

impl Store {
    /// Records a hub this hub now follows (after `hub peer add` enrolled
    /// there). Audited; a hub already followed is a conflict.
    pub async fn add_peer_link(&self, link: PeerLinkRow, actor: &str) -> Result<(), StoreError> {
        dispatch!(self.add_peer_link(link, actor))
    }

    /// Every hub this hub follows, by id.
    pub async fn peer_links(&self) -> Result<Vec<PeerLinkRow>, StoreError> {
        dispatch!(self.peer_links())
    }

    pub async fn peer_link(&self, hub_id: &str) -> Result<Option<PeerLinkRow>, StoreError> {
        dispatch!(self.peer_link(hub_id))
    }

    /// Suspends, resumes or removes both directions with `hub_id` at once:
    /// the link this hub follows and the peer membership `hub_id` holds
    /// here. `None` when this hub only had it as a member.
    pub async fn set_peer_status(
        &self,
        hub_id: &str,
        change: StatusChange,
        actor: &str,
        now: i64,
    ) -> Result<Option<PeerLinkRow>, StoreError> {
        dispatch!(self.set_peer_status(hub_id, change, actor, now))
    }

    /// Records the key `hub_id`'s directory is pinned with, so its last
    /// directory can be kept (retired) when the link is removed.
    pub async fn pin_peer_directory_key(
        &self,
        hub_id: &str,
        key: Vec<u8>,
    ) -> Result<(), StoreError> {
        dispatch!(self.pin_peer_directory_key(hub_id, key))
    }

    /// Pins a peer's verified directory (never below the version held).
    pub async fn pin_peer_directory(
        &self,
        hub_id: &str,
        version: u64,
        directory: String,
    ) -> Result<(), StoreError> {
        dispatch!(self.pin_peer_directory(hub_id, version, directory))
    }

    /// Stores verified items from `hub_id` (each item key once) and its
    /// cursor in one transaction, only while the link is active.
    pub async fn receive_from_peer(
        &self,
        hub_id: &str,
        items: Vec<FederatedItem>,
        cursor: Vec<u8>,
    ) -> Result<u64, StoreError> {
        dispatch!(self.receive_from_peer(hub_id, items, cursor))
    }

    /// Origin directories pinned for relayed items and retired links, by
    /// hub id.
    pub async fn origin_directories(&self) -> Result<Vec<OriginDirectoryRow>, StoreError> {
        dispatch!(self.origin_directories())
    }

    /// Pins an origin's verified directory: a new origin, a newer version,
    /// or a new key the sender lists for it (never a lower version under
    /// the same key).
    pub async fn pin_origin_directory(&self, row: OriginDirectoryRow) -> Result<(), StoreError> {
        dispatch!(self.pin_origin_directory(row))
    }

    pub async fn federated_items(
        &self,
        origin: Option<String>,
    ) -> Result<Vec<FederatedItem>, StoreError> {
        dispatch!(self.federated_items(origin))
    }
}
