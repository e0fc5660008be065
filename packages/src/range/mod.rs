//! Which versions of a package an indicator affects, and whether a given
//! version is among them.
//!
//! [`AffectedVersions`] is a list of [`Constraint`]s, any of which may
//! hold: exact versions, OSV ranges (events kept as the record gave them),
//! comparator sets from our own `versions` strings, and npm/Cargo range
//! sugar. Matching answers [`Verdict::Affected`], [`Verdict::NotAffected`]
//! or [`Verdict::Unknown`]: a version, bound or range that cannot be read
//! is never "not affected", because telling a member it is clean while it
//! runs the malware is the worst answer there is.

mod npm;
mod osv;
mod syntax;

use std::fmt;

pub use osv::{Event, OsvRange, RangeKind};
pub use syntax::{parse_entry, Comparator, Op};

use crate::version::Version;
use crate::Ecosystem;

/// One way a version can be affected.
#[derive(Debug, Clone)]
pub enum Constraint {
    /// Every version.
    Any,
    /// Exactly this version (equal in the ecosystem's order, or as text).
    Exact(String),
    /// An OSV range.
    Osv(OsvRange),
    /// Comparators that must all hold (`>=1.2.0 <1.2.5`, `!=1.0.1`).
    Comparators(Vec<Comparator>),
    /// An npm-style range (`^1.2.3`, `~1.2`, `1.x`, `1.0.0 - 2.0.0`) and
    /// the comparators node-semver desugars it into, pre-releases included.
    NpmRange {
        text: String,
        comparators: Vec<Comparator>,
    },
    /// An entry that could not be read; it matches nothing for certain.
    Unreadable { text: String, reason: String },
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constraint::Any => f.write_str("every version"),
            Constraint::Exact(v) => write!(f, "version {v}"),
            Constraint::Osv(r) => write!(f, "{r}"),
            Constraint::Comparators(cs) => {
                for (i, c) in cs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{c}")?;
                }
                Ok(())
            }
            Constraint::NpmRange { text, .. } => write!(f, "range {text}"),
            Constraint::Unreadable { text, reason } => write!(f, "`{text}` ({reason})"),
        }
    }
}

/// The answer to "is this version affected?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Affected; the string says by which constraint.
    Affected(String),
    NotAffected,
    /// Cannot be told; the string says why.
    Unknown(String),
}

impl Verdict {
    pub fn is_affected(&self) -> bool {
        matches!(self, Verdict::Affected(_))
    }
}

/// The affected versions of one package, any of whose constraints may hold.
#[derive(Debug, Clone, Default)]
pub struct AffectedVersions {
    pub constraints: Vec<Constraint>,
}

impl AffectedVersions {
    /// From an indicator statement: its `versions` entries, read for
    /// `eco`; with none, the purl's version alone, or every version.
    pub fn from_statement(
        eco: Option<Ecosystem>,
        purl_version: Option<&str>,
        versions: &[String],
    ) -> AffectedVersions {
        let constraints = if versions.is_empty() {
            vec![match purl_version {
                Some(v) => Constraint::Exact(v.to_owned()),
                None => Constraint::Any,
            }]
        } else {
            versions
                .iter()
                .flat_map(|entry| parse_entry(eco, entry))
                .collect()
        };
        AffectedVersions { constraints }
    }

    /// From an OSV `affected[]` entry: its `versions` list and `ranges`.
    /// With neither, every version: OSV's malicious-package records name
    /// a package whose every version is the malware.
    pub fn from_osv(versions: &[String], ranges: Vec<OsvRange>) -> AffectedVersions {
        let mut constraints: Vec<Constraint> = versions
            .iter()
            .map(|v| Constraint::Exact(v.clone()))
            .collect();
        constraints.extend(ranges.into_iter().map(Constraint::Osv));
        if constraints.is_empty() {
            constraints.push(Constraint::Any);
        }
        AffectedVersions { constraints }
    }

    /// Whether `version` of a package of `eco` (`None`: an ecosystem we do
    /// not know the rules of) is affected. Affected if any constraint
    /// holds; otherwise unknown if any could not be decided.
    pub fn matches(&self, eco: Option<Ecosystem>, version: &str) -> Verdict {
        if self.constraints.is_empty() {
            return Verdict::Unknown("the indicator names no affected versions".into());
        }
        let mut unknown: Option<String> = None;
        for c in &self.constraints {
            match c.check(eco, version) {
                Ok(true) => return Verdict::Affected(c.to_string()),
                Ok(false) => {}
                Err(why) => {
                    unknown.get_or_insert_with(|| format!("{c}: {why}"));
                }
            }
        }
        match unknown {
            Some(why) => Verdict::Unknown(why),
            None => Verdict::NotAffected,
        }
    }
}

fn ordered(eco: Option<Ecosystem>) -> Result<Ecosystem, String> {
    match eco {
        Some(e) if e.has_ordering() => Ok(e),
        Some(e) => Err(format!("{e} versions have no order we can rely on")),
        None => Err("the package's ecosystem has no version rules we know".into()),
    }
}

impl Constraint {
    /// `Ok(holds)`, or `Err(why it cannot be told)`.
    pub fn check(&self, eco: Option<Ecosystem>, version: &str) -> Result<bool, String> {
        let version = version.trim();
        match self {
            Constraint::Any => Ok(true),
            Constraint::Exact(listed) => {
                let listed = listed.trim();
                if listed == version {
                    return Ok(true);
                }
                match eco {
                    Some(e) if e.has_ordering() => {
                        let found = Version::parse(e, version).map_err(|e| e.to_string())?;
                        let listed = Version::parse(e, listed).map_err(|e| e.to_string())?;
                        Ok(found.is_listed(&listed))
                    }
                    // Tags and unknown schemes: text, give or take a `v`.
                    _ => Ok(listed.trim_start_matches('v') == version.trim_start_matches('v')),
                }
            }
            Constraint::Osv(range) => match range.kind {
                RangeKind::Semver => match eco {
                    // SEMVER ranges are read as SemVer whatever the package.
                    Some(e) => range.contains(e, version),
                    None => range.contains(Ecosystem::Npm, version),
                },
                _ if range.is_every_version() => Ok(true),
                RangeKind::Ecosystem => range.contains(ordered(eco)?, version),
                RangeKind::Git => range.contains(Ecosystem::GitHub, version),
            },
            Constraint::Comparators(cs) => {
                let eco = ordered(eco)?;
                let v = Version::parse(eco, version).map_err(|e| e.to_string())?;
                for c in cs {
                    if !c.holds(eco, &v)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Constraint::NpmRange { comparators, .. } => {
                // The package's ecosystem must read the version (Cargo is
                // stricter than npm) and order it.
                let eco = match eco {
                    Some(e @ (Ecosystem::Npm | Ecosystem::Cargo)) => e,
                    _ => {
                        return Err("an npm-style range for a package outside npm and Cargo".into())
                    }
                };
                let v = Version::parse(eco, version).map_err(|e| e.to_string())?;
                for c in comparators {
                    if !c.holds(eco, &v)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Constraint::Unreadable { reason, .. } => Err(reason.clone()),
        }
    }
}
