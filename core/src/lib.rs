//! The pure core shared by the hub and every member agent.
//!
//! Everything security-sensitive lives here as plain functions over plain data:
//! statement types and their validation, canonical bytes, the DSSE envelope,
//! Ed25519 signing and verification (OpenSSL), and the TLP decision.
//!
//! **Invariant:** this crate does no I/O: no files, no sockets, no clock, no
//! SQL, no async runtime. Callers pass "now" in. That keeps every decision
//! testable with a table and identical on both sides of the wire.
#![forbid(unsafe_code)]

pub mod audience;
pub mod clock;
pub mod directory;
pub mod enrollment;
pub mod envelope;
pub mod extract;
pub mod fed_groups;
pub mod fed_log;
pub mod federation;
pub mod filter;
pub mod hex;
pub mod jcs;
pub mod keys;
pub mod lifetime;
pub mod membership;
pub mod names;
pub mod observable;
pub mod pct;
pub mod pg_tls;
pub mod request_id;
pub mod statement;
pub mod stix;
pub mod stix_import;
pub mod time;
pub mod tlog;
pub mod tlp;
pub mod verify;

pub use envelope::{Envelope, Signature, PAYLOAD_TYPE_STATEMENT_V1, PAYLOAD_TYPE_STATEMENT_V2};
pub use keys::{KeyId, SigningKey, VerifyingKey};
pub use statement::{Body, Format, Indicator, Observable, Severity, Statement};
pub use tlp::Tlp;
pub use verify::{verify_envelope, KeyRecord, VerifiedStatement, VerifyError};
