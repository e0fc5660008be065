//! OSV ranges kept as the record gives them, and the schema's evaluation
//! algorithm (<https://ossf.github.io/osv-schema/#evaluation>).

use std::cmp::Ordering;
use std::fmt;

use crate::version::{Version, VersionError};
use crate::Ecosystem;

/// `affected[].ranges[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeKind {
    /// SemVer 2.0 versions, whatever the ecosystem.
    Semver,
    /// The ecosystem's own version order.
    Ecosystem,
    /// Commits of a repository: no version can be placed among them.
    Git,
}

impl RangeKind {
    pub fn from_osv(s: &str) -> Option<RangeKind> {
        Some(match s {
            "SEMVER" => RangeKind::Semver,
            "ECOSYSTEM" => RangeKind::Ecosystem,
            "GIT" => RangeKind::Git,
            _ => return None,
        })
    }

    pub fn as_osv(self) -> &'static str {
        match self {
            RangeKind::Semver => "SEMVER",
            RangeKind::Ecosystem => "ECOSYSTEM",
            RangeKind::Git => "GIT",
        }
    }
}

/// One `affected[].ranges[].events[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// Affected from this version on; `"0"` is before every version.
    Introduced(String),
    /// Not affected from this version on.
    Fixed(String),
    /// Affected up to and including this version.
    LastAffected(String),
    /// Evaluation stops here (`"*"`: no limit); meant for GIT ranges.
    Limit(String),
}

impl Event {
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Event::Introduced(_) => "introduced",
            Event::Fixed(_) => "fixed",
            Event::LastAffected(_) => "last_affected",
            Event::Limit(_) => "limit",
        }
    }
}

/// One OSV range: its type and its events, in the record's order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OsvRange {
    pub kind: RangeKind,
    pub events: Vec<Event>,
}

impl fmt::Display for OsvRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} range", self.kind.as_osv())?;
        for (i, e) in self.events.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            write!(f, "{sep}{} {}", e.name(), e.version())?;
        }
        Ok(())
    }
}

/// A version placed for evaluation: `"0"` (introduced) below every
/// version, `"*"` (limit) above every version.
#[derive(Debug)]
enum Point {
    Zero,
    At(Version),
    Infinity,
}

impl OsvRange {
    /// True when the range says every version: only `introduced: "0"`
    /// events (and limits of `"*"`), decidable without parsing anything.
    pub fn is_every_version(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::Introduced(v) if v == "0"))
            && self.events.iter().all(|e| match e {
                Event::Introduced(v) => v == "0",
                Event::Limit(v) => v == "*",
                _ => false,
            })
    }

    /// Whether `version` lies in this range. `Err` when it cannot be told:
    /// a GIT range, an ecosystem without an order, or a version (ours or
    /// an event's) the scheme does not read.
    pub fn contains(&self, eco: Ecosystem, version: &str) -> Result<bool, String> {
        if self.kind == RangeKind::Git {
            return Err("a GIT range names commits, which no version can be placed among".into());
        }
        if self.is_every_version() {
            return Ok(true);
        }
        // The schema requires one; without it the walk can only say "not
        // affected", which the record never meant.
        if !self
            .events
            .iter()
            .any(|e| matches!(e, Event::Introduced(_)))
        {
            return Err("the range has no `introduced` event".into());
        }
        let parse = |s: &str| -> Result<Version, VersionError> {
            match self.kind {
                RangeKind::Semver => Version::parse_semver(s),
                _ => Version::parse(eco, s),
            }
        };
        let v = parse(version).map_err(|e| e.to_string())?;
        let mut events: Vec<(Point, &Event)> = Vec::with_capacity(self.events.len());
        for e in &self.events {
            let point = match e {
                Event::Introduced(s) if s == "0" => Point::Zero,
                Event::Limit(s) if s == "*" => Point::Infinity,
                _ => Point::At(
                    parse(e.version()).map_err(|err| format!("{} event: {err}", e.name()))?,
                ),
            };
            events.push((point, e));
        }
        let cmp = |a: &Point, b: &Version| -> Ordering {
            match a {
                Point::Zero => Ordering::Less,
                Point::Infinity => Ordering::Greater,
                Point::At(x) => x.compare(b).expect("one range, one scheme"),
            }
        };
        // `BeforeLimits`: with limits, the version must be below one.
        let limits: Vec<&Point> = events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Limit(_)))
            .map(|(p, _)| p)
            .collect();
        if !limits.is_empty() && !limits.iter().any(|p| cmp(p, &v) == Ordering::Greater) {
            return Ok(false);
        }
        // Sorted by version; the sort is stable, so events at one version
        // keep the record's order.
        events.sort_by(|(a, _), (b, _)| match (a, b) {
            (Point::Zero, Point::Zero) | (Point::Infinity, Point::Infinity) => Ordering::Equal,
            (Point::Zero, _) | (_, Point::Infinity) => Ordering::Less,
            (_, Point::Zero) | (Point::Infinity, _) => Ordering::Greater,
            (Point::At(x), Point::At(y)) => x.compare(y).expect("one range, one scheme"),
        });
        let mut vulnerable = false;
        for (point, e) in &events {
            // `v >= point` is `point <= v`.
            let point_vs_v = cmp(point, &v);
            match e {
                Event::Introduced(_) if point_vs_v != Ordering::Greater => vulnerable = true,
                Event::Fixed(_) if point_vs_v != Ordering::Greater => vulnerable = false,
                Event::LastAffected(_) if point_vs_v == Ordering::Less => vulnerable = false,
                _ => {}
            }
        }
        Ok(vulnerable)
    }
}
