//! The gRPC layer: thin service impls over the application layer
//! (`crate::app`) and the store. One module per service; each handler
//! authenticates, validates, applies, and responds. Protobuf is converted
//! to core types here, once; status codes are chosen in `crate::error` only.

pub mod admin;
pub mod auth;
pub mod delivery;
pub mod enroll;
pub mod fed_groups;
pub mod follower;
pub mod keys;
pub mod log;
pub mod lookup;
pub mod membership;
pub mod peer_enroll;
pub mod peering;
pub mod publish;
pub mod subscribe;
