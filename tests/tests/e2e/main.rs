//! Every end-to-end test in one binary, one module per subject, so that hub
//! and member agent are linked once instead of once per file. Run one
//! subject with `cargo test -p isac-e2e --test e2e delivery::`.
//!
//! The modules share one process and run in parallel threads: a test must
//! not set process-wide state (environment variables, the current
//! directory, rlimits, a global tracing subscriber: capture logs with
//! `tracing::subscriber::set_default`) and binds only ephemeral ports.

mod cli_reference;
mod console;
mod console_publishing;
mod console_triage;
mod crash;
mod delivery;
mod derived_reads;
mod e2e;
mod expiry;
mod exposure;
mod failover;
mod federation;
mod federation_amber;
mod federation_log;
mod federation_members;
mod federation_peers;
mod federation_relay;
mod fuzz_importers;
mod hardening;
mod hostile;
mod hostile_grpc;
mod interop;
mod lifecycle;
mod pg_tls;
mod processes;
mod protocol;
mod python_client;
mod replicas;
mod retention;
mod scrub;
mod slow;
mod statement_formats;
mod store;
mod taxii;
mod taxii_interop;
mod tlog;
mod tlp;
mod witness;
