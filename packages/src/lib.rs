//! Package semantics, pure (no I/O): package URLs and their per-type
//! normalisation ([`purl`]), version ordering per ecosystem ([`version`]),
//! and which versions an indicator affects ([`range`]): OSV ranges kept as
//! structured events, our own `versions` strings, and one matcher that
//! answers affected, not affected, or unknown. On top: SBOMs read into one
//! inventory ([`sbom`]: CycloneDX, SPDX 2 and 3), the inventory checked
//! against indicators through an index by package ([`exposure`]), and the
//! answer written as OpenVEX or CycloneDX VEX ([`vex`]).
//!
//! Everything here reads attacker-controlled text: inputs are bounded,
//! errors echo at most a short prefix, and nothing panics on any input.

#![forbid(unsafe_code)]

mod ecosystem;
pub mod exposure;
pub mod purl;
pub mod range;
pub mod sbom;
pub mod version;
pub mod vex;
pub mod watch;

pub use ecosystem::Ecosystem;
pub use purl::{Purl, PurlError};
pub use range::{AffectedVersions, Constraint, Event, OsvRange, RangeKind, Verdict};
pub use version::{Version, VersionError};

/// At most a short, escaped prefix of hostile input, for messages.
pub(crate) fn shown(s: &str) -> String {
    let prefix: String = s.chars().take(80).collect();
    prefix.escape_default().to_string()
}
