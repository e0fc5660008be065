//! Federation's rows (issue 20), shared by both backends: the hubs this hub
//! follows (`peer_links`) and the items they forwarded (`federated_items`,
//! one row per `isac_core::federation::ItemKey`).

use isac_core::membership::MemberStatus;

/// A hub this hub follows: enrolled there as a peer by `hub peer add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLinkRow {
    /// The peer's hub id (what it calls itself, checked at `peer add`).
    pub hub_id: String,
    pub url: String,
    pub status: MemberStatus,
    pub created_at: i64,
    /// The opaque position the peer handed out last (empty: from the start).
    pub cursor: Vec<u8>,
    /// The peer's signed key directory last verified (DSSE JSON), pinned:
    /// a later one must not roll back or rewrite it.
    pub directory: Option<String>,
    pub directory_version: u64,
    /// Items stored from this peer.
    pub received: u64,
}

/// An item a peer forwarded, verified to its author at the origin hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedItem {
    pub origin_hub: String,
    pub id: String,
    pub revision: u32,
    /// The hub it came from (the last of its path before this hub).
    pub from_peer: String,
    pub tlp: String,
    pub kind: String,
    /// The author's DSSE envelope, byte for byte (as DSSE JSON).
    pub envelope_json: String,
    /// The provenance this hub holds (its own id appended), canonical JSON.
    pub provenance: Vec<u8>,
    pub received_at: i64,
    /// The row it becomes in this hub's own order (what Subscribe, TAXII
    /// and retention read), stored in the same transaction when the item
    /// is new; `None` keeps it out of the order. Not read back.
    pub order: Option<super::NewStatement>,
}
