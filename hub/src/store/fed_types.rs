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

/// The signed directory of an origin hub this hub does not follow itself
/// but takes items of through a peer (relaying, issue 20), or of a hub it
/// no longer follows whose items remain in its order (`retired`). Served to
/// members by `GetFederatedDirectories` and to peers by
/// `Peering.GetOriginDirectories`, byte for byte as pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginDirectoryRow {
    pub hub_id: String,
    /// The peer whose signed directory listed this origin's key when it was
    /// pinned (the origin itself for a retired link).
    pub via_peer: String,
    /// SPKI DER of the key that signs the origin's directory.
    pub public_key: Vec<u8>,
    /// The origin's signed directory (DSSE JSON), verified with that key.
    pub directory: String,
    pub directory_version: u64,
    /// The link was removed; kept so members can still verify its items.
    pub retired: bool,
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
