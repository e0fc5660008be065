//! The member agent: enroll with the hub, publish signed indicators, and
//! receive, verify end to end, store and forward what the hub relays.
#![forbid(unsafe_code)]

pub mod check;
pub mod client;
pub mod cmd;
pub mod config;
pub mod csv;
pub mod draft;
pub mod enroll;
pub mod error;
pub mod export;
pub mod failover;
pub mod federated;
pub mod import;
pub mod keys;
pub mod localstore;
pub mod lockfile;
pub mod osv;
pub mod publish;
pub mod scrub;
pub mod sinks;
pub mod state;
pub mod sync;
pub mod tlog;
pub mod ui;
pub mod watch;
pub mod witness;

pub use error::AgentError;
pub use sinks::{SinkSettings, Sinks};
pub use state::StateDir;
pub use sync::Agent;

pub fn now() -> i64 {
    isac_core::clock::Clock::system().now()
}
