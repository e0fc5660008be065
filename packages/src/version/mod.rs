//! Version ordering per ecosystem. A version is parsed by its ecosystem's
//! own rules and only compared with versions of the same scheme; a string
//! the ecosystem would not accept is an error, never a guess.
//!
//! - npm: node-semver (`nodejs-semver`), loose as npm reads lockfiles.
//! - Cargo and OSV `SEMVER` ranges: SemVer 2.0 (`semver`), build metadata
//!   ignored as the SemVer spec orders.
//! - PyPI: PEP 440 (`pep440_rs`): epochs, pre/post/dev releases, local.
//! - Go: SemVer with a `v`, `v1`/`v1.2` shorthands, pseudo-versions (which
//!   order by SemVer precedence by design), `+incompatible` ignored.
//! - Maven: `ComparableVersion` ([`maven`]). RubyGems: `Gem::Version`
//!   ([`gem`]). NuGet: NuGet.Versioning ([`nuget`]). Composer: normalised,
//!   then PHP `version_compare` ([`composer`]).

pub mod composer;
pub mod gem;
pub mod maven;
pub mod nuget;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::{shown, Ecosystem};

/// Longest version string we order, in bytes.
pub const MAX_VERSION_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("{0} versions have no order we can rely on: only exact versions match")]
    NoOrdering(Ecosystem),
    #[error("`{version}` is not a {scheme} version")]
    Invalid {
        scheme: &'static str,
        version: String,
    },
    #[error("version is longer than {MAX_VERSION_LEN} bytes")]
    TooLong,
}

/// A version parsed by one scheme's rules.
#[derive(Debug, Clone)]
pub enum Version {
    Npm(nodejs_semver::Version),
    Cargo(semver::Version),
    /// An OSV `SEMVER` range's version: SemVer 2.0 whatever the ecosystem.
    Semver(semver::Version),
    PyPI(pep440_rs::Version),
    Go(GoVersion),
    Maven(maven::MavenVersion),
    RubyGems(gem::GemVersion),
    NuGet(nuget::NuGetVersion),
    Composer(composer::ComposerVersion),
}

fn invalid(scheme: &'static str, version: &str) -> VersionError {
    VersionError::Invalid {
        scheme,
        version: shown(version),
    }
}

/// SemVer precedence: build metadata does not order (SemVer 2.0 §11),
/// unlike `semver::Version`'s own `Ord`, which breaks ties by it.
fn cmp_semver_precedence(a: &semver::Version, b: &semver::Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| a.pre.cmp(&b.pre))
}

/// `1` and `1.2` as `1.0.0` and `1.2.0`, when nothing follows.
fn pad_shorthand(s: &str) -> Option<String> {
    let parts = s.split('.').count();
    let plain = s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    (plain && parts < 3).then(|| format!("{s}{}", ".0".repeat(3 - parts)))
}

/// Lenient SemVer 2.0 for OSV `SEMVER` ranges: a leading `v` and missing
/// minor/patch are accepted, since Go and others write versions so.
fn parse_lenient_semver(s: &str) -> Option<semver::Version> {
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    semver::Version::parse(s)
        .ok()
        .or_else(|| semver::Version::parse(&pad_shorthand(s)?).ok())
}

impl Version {
    /// `s` as a version of `eco`.
    pub fn parse(eco: Ecosystem, s: &str) -> Result<Version, VersionError> {
        let s = s.trim();
        if s.len() > MAX_VERSION_LEN {
            return Err(VersionError::TooLong);
        }
        match eco {
            Ecosystem::Npm => nodejs_semver::Version::parse(s)
                .map(Version::Npm)
                .map_err(|_| invalid("npm (node-semver)", s)),
            // Cargo never writes a `v`, but people quoting versions do.
            Ecosystem::Cargo => semver::Version::parse(s.strip_prefix('v').unwrap_or(s))
                .map(Version::Cargo)
                .map_err(|_| invalid("Cargo (SemVer 2.0)", s)),
            Ecosystem::PyPI => pep440_rs::Version::from_str(s)
                .map(Version::PyPI)
                .map_err(|_| invalid("PEP 440", s)),
            Ecosystem::Go => GoVersion::parse(s)
                .map(Version::Go)
                .ok_or_else(|| invalid("Go module", s)),
            Ecosystem::Maven => {
                // Maven orders any string; one with blanks or control
                // characters is a mistake, not a version.
                if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(invalid("Maven", s));
                }
                Ok(Version::Maven(maven::MavenVersion::parse(s)))
            }
            Ecosystem::RubyGems => gem::GemVersion::parse(s)
                .map(Version::RubyGems)
                .ok_or_else(|| invalid("RubyGems", s)),
            Ecosystem::NuGet => nuget::NuGetVersion::parse(s)
                .map(Version::NuGet)
                .ok_or_else(|| invalid("NuGet", s)),
            Ecosystem::Composer => composer::ComposerVersion::parse(s)
                .map(Version::Composer)
                .ok_or_else(|| invalid("Composer (numbered)", s)),
            Ecosystem::GitHub => Err(VersionError::NoOrdering(eco)),
        }
    }

    /// `s` as a SemVer 2.0 version, for OSV `SEMVER` ranges.
    pub fn parse_semver(s: &str) -> Result<Version, VersionError> {
        let s = s.trim();
        if s.len() > MAX_VERSION_LEN {
            return Err(VersionError::TooLong);
        }
        parse_lenient_semver(s)
            .map(Version::Semver)
            .ok_or_else(|| invalid("SemVer 2.0", s))
    }

    /// Whether `self`, a found version, is the `listed` one: equal in the
    /// order, and for PyPI also a local build of it (`1.0+ubuntu1` is
    /// `==1.0` in PEP 440: a rebuild of the listed release).
    pub fn is_listed(&self, listed: &Version) -> bool {
        if self.compare(listed) == Some(Ordering::Equal) {
            return true;
        }
        match (self, listed) {
            (Version::PyPI(found), Version::PyPI(l)) if !l.is_local() && found.is_local() => {
                found.clone().without_local() == *l
            }
            _ => false,
        }
    }

    /// The order of two versions of one scheme; `None` across schemes.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        use Version::*;
        Some(match (self, other) {
            (Npm(a), Npm(b)) => a.cmp(b),
            (Cargo(a), Cargo(b)) | (Semver(a), Semver(b)) => cmp_semver_precedence(a, b),
            (PyPI(a), PyPI(b)) => a.cmp(b),
            (Go(a), Go(b)) => a.cmp(b),
            (Maven(a), Maven(b)) => a.cmp(b),
            (RubyGems(a), RubyGems(b)) => a.cmp(b),
            (NuGet(a), NuGet(b)) => a.cmp(b),
            (Composer(a), Composer(b)) => a.cmp(b),
            _ => return None,
        })
    }

    /// True for pre-releases (`1.0.0-rc.1`, `1.0a1`, `1.0-SNAPSHOT` is not
    /// one for Maven, which has no such notion).
    pub fn is_prerelease(&self) -> bool {
        match self {
            Version::Npm(v) => v.is_prerelease(),
            Version::Cargo(v) | Version::Semver(v) => !v.pre.is_empty(),
            Version::PyPI(v) => v.any_prerelease(),
            Version::Go(v) => !v.semver.pre.is_empty(),
            Version::Maven(_) => false,
            Version::RubyGems(v) => v.is_prerelease(),
            Version::NuGet(v) => v.is_prerelease(),
            Version::Composer(v) => ["-dev", "-alpha", "-beta", "-RC"]
                .iter()
                .any(|s| v.normalized().contains(s)),
        }
    }
}

/// `a` against `b` in `eco`'s order.
pub fn compare(eco: Ecosystem, a: &str, b: &str) -> Result<Ordering, VersionError> {
    let a = Version::parse(eco, a)?;
    let b = Version::parse(eco, b)?;
    Ok(a.compare(&b).expect("one ecosystem, one scheme"))
}

/// A Go module version: `v` + SemVer, with Go's shorthands.
#[derive(Debug, Clone)]
pub struct GoVersion {
    semver: semver::Version,
}

impl GoVersion {
    /// Go's `semver.IsValid`, except that the `v` may be missing (OSV
    /// writes Go versions without it).
    pub fn parse(s: &str) -> Option<GoVersion> {
        let bare = s.strip_prefix('v').unwrap_or(s);
        let semver = match semver::Version::parse(bare) {
            Ok(v) => v,
            Err(_) => semver::Version::parse(&pad_shorthand(bare)?).ok()?,
        };
        Some(GoVersion { semver })
    }

    /// A pseudo-version (`v0.0.0-20191109021931-daa7c04131f5`,
    /// `v1.2.4-0.20191109021931-daa7c04131f5`,
    /// `v1.2.3-pre.0.20191109021931-daa7c04131f5`): a commit, not a tag.
    pub fn is_pseudo(&self) -> bool {
        let pre = self.semver.pre.as_str();
        let Some((head, rev)) = pre.rsplit_once('-') else {
            return false;
        };
        let stamp = head.rsplit_once('.').map_or(head, |(_, t)| t);
        let before = head.len() - stamp.len();
        let prefix_ok = before == 0 || head[..before].ends_with("0.");
        rev.len() == 12
            && rev.bytes().all(|b| b.is_ascii_hexdigit())
            && stamp.len() == 14
            && stamp.bytes().all(|b| b.is_ascii_digit())
            && prefix_ok
    }

    /// True for `+incompatible` (a v2+ module without a go.mod).
    pub fn is_incompatible(&self) -> bool {
        self.semver.build.as_str() == "incompatible"
    }
}

impl PartialEq for GoVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for GoVersion {}
impl PartialOrd for GoVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for GoVersion {
    /// Go's `semver.Compare`: build metadata (`+incompatible`) ignored.
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_semver_precedence(&self.semver, &other.semver)
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.semver)
    }
}
