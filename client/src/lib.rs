//! `isac-client`: what anything that talks to the hub as a member needs,
//! and nothing else (no store, no sinks, no console).
//!
//! - [`identity`]: an enrolled agent state dir's identity, client
//!   certificate and key, and the pinned hub CA ([`Credentials::load`]).
//! - [`connect`]: trust (the hub CA only, never the system roots) and the
//!   OpenSSL connector for tonic ([`Connector`]), built once and cloned.
//! - [`error`]: [`ClientError`], whose `Display` is the whole story.
//! - [`process`]: `--log-format`, the log set-up and the usage exit code
//!   both binaries share.
//! - [`files`]: key, certificate and identity files written atomically
//!   with their mode (the hub's data dir uses it too).
//!
//! The member agent, the hub's `--remote` commands and the bench use it.
#![forbid(unsafe_code)]

pub mod connect;
pub mod error;
pub mod files;
pub mod identity;
pub mod process;

pub use connect::{Connector, Trust};
pub use error::ClientError;
pub use identity::{Credentials, Identity};
