//! The pieces of a transparency log that need no I/O: RFC 9162 Merkle tree
//! hashing and proofs (`merkle`), C2SP signed notes (`note`), checkpoints
//! (`checkpoint`), the tile layout (`tiles`) and witness cosignatures
//! (`witness`).
//!
//! The hub builds its append-only log on these (the store keeps the node
//! hashes `merkle::TreeBuilder` hands out and answers `merkle::HashReader`;
//! tiles are `tiles::read_tile` over the same reader); the agent verifies
//! what the hub serves with the pure `merkle::verify_*` functions and
//! `checkpoint::open` / `witness::open_cosigned`. Every decoder here is
//! bounded in size and count.

pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod tiles;
pub mod witness;

pub use merkle::{Hash, HASH_SIZE};

/// The bytes a log leaf is: the envelope in its DSSE JSON form
/// (`Envelope::to_json`, deterministic), exactly as a member receives it.
/// For an anonymous statement that is the hub-signed copy everyone but the
/// source is delivered. Hub and agent both compute it here, so they cannot
/// disagree about what a leaf holds.
pub fn envelope_leaf(envelope: &crate::Envelope) -> Vec<u8> {
    envelope.to_json().into_bytes()
}

/// `merkle::leaf_hash` of [`envelope_leaf`].
pub fn envelope_leaf_hash(envelope: &crate::Envelope) -> Hash {
    merkle::leaf_hash(&envelope_leaf(envelope))
}
