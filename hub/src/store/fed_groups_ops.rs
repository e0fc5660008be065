//! The store's cross-hub sharing group operations (issue 20), dispatched
//! like the rest; SQL in `sqlite_groups.rs` and `postgres_groups.rs`.

use super::{Backend, Store, StoreError};

/// A group shared with a peer (`hub peer share PEER --group NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerGroupRow {
    pub hub_id: String,
    pub group: String,
    pub created_at: i64,
    /// The canonical member set the peer's last verified manifest lists
    /// for this group; `None` when it does not list it (or none came yet).
    pub remote_members: Option<Vec<String>>,
    /// When that manifest was last checked.
    pub checked_at: Option<i64>,
}

impl PeerGroupRow {
    pub(super) fn from_columns(
        hub_id: String,
        group: String,
        created_at: i64,
        remote: Option<String>,
        checked_at: Option<i64>,
    ) -> Result<PeerGroupRow, StoreError> {
        let remote_members = remote
            .map(|json| {
                serde_json::from_str(&json).map_err(|e| {
                    StoreError::Refused(format!(
                        "stored member set of group `{group}` from `{hub_id}`: {e}"
                    ))
                })
            })
            .transpose()?;
        Ok(PeerGroupRow {
            hub_id,
            group,
            created_at,
            remote_members,
            checked_at,
        })
    }
}

impl Store {
    /// Shares group `group` with peer `hub_id` (audited). The group must
    /// exist and `hub_id` be a peer; sharing twice is a conflict.
    pub async fn share_group(
        &self,
        hub_id: &str,
        group: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.share_group(hub_id, group, actor, now))
    }

    /// Stops sharing (audited); NotFound when it was not shared.
    pub async fn unshare_group(
        &self,
        hub_id: &str,
        group: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.unshare_group(hub_id, group, actor, now))
    }

    /// Every group shared with a peer, by peer then group.
    pub async fn peer_groups(&self) -> Result<Vec<PeerGroupRow>, StoreError> {
        dispatch!(self.peer_groups())
    }

    /// Records what `hub_id`'s verified group manifest lists for each group
    /// shared with it (`None`: not listed).
    pub async fn set_peer_manifest(
        &self,
        hub_id: &str,
        groups: Vec<(String, Option<Vec<String>>)>,
        now: i64,
    ) -> Result<(), StoreError> {
        let groups: Vec<(String, Option<String>)> = groups
            .into_iter()
            .map(|(g, m)| {
                (
                    g,
                    m.map(|m| serde_json::to_string(&m).expect("strings serialise")),
                )
            })
            .collect();
        dispatch!(self.set_peer_manifest(hub_id, groups, now))
    }
}
