//! The hub's application layer: what the hub does, in core and domain
//! types, whichever front door asked. `grpc/` and `taxii/` are adapters
//! over it (they convert wire messages at the edge); nothing here knows
//! protobuf services or HTTP.
//!
//! - `state`: [`HubState`], the shared handle every front door holds.
//! - `clock`: [`Clock`], the injectable "now".
//! - `caller`: [`Caller`], and the one resolver for client certificates
//!   and TAXII API keys. `api_key`: API key minting and checking.
//! - `epoch_cache`: publishers and their signing keys kept for as long as
//!   the membership epoch they were read at (checked again at commit).
//! - `log`: the transparency log's checkpointer and proof questions.
//! - `publish`: the publish decision (`Envelope` and audience openings in,
//!   [`publish::Published`] out).

pub mod admin;
pub mod api_key;
pub mod authenticated;
pub mod caller;
pub mod clock;
pub mod epoch_cache;
pub mod fed_groups;
pub mod fed_sightings;
pub mod federation;
pub mod log;
pub mod publish;
pub mod state;
pub mod witness;

pub use caller::Caller;
pub use clock::Clock;
pub use state::{HubShared, HubState};
