//! The pieces of a transparency log that need no I/O: RFC 9162 Merkle tree
//! hashing and proofs (`merkle`), C2SP signed notes (`note`), checkpoints
//! (`checkpoint`) and the tile layout (`tiles`).
//!
//! The hub builds its append-only log on these (the store keeps the node
//! hashes `merkle::TreeBuilder` hands out and answers `merkle::HashReader`);
//! the agent verifies what the hub serves with the pure `verify_*` functions
//! and `note::open`. Every decoder here is bounded in size and count.

pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod tiles;

pub use merkle::{Hash, HASH_SIZE};
