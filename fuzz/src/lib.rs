//! Fuzz targets for isac-hub (cargo-fuzz; not a workspace member). The
//! bodies live here so the stable test suite runs the very same code:
//! `core/tests/fuzz_targets.rs`, `packages/tests/fuzz_targets.rs` and
//! `tests/tests/e2e/fuzz_importers.rs` include these files with `#[path]`.
//! Long runs: `scripts/fuzz`.

pub mod agent_targets;
pub mod core_targets;
pub mod packages_targets;
pub mod scrub_targets;
