//! RubyGems version ordering, as `Gem::Version#<=>` does it: `-` reads as
//! `.pre.`, segments are runs of digits (numbers) or letters (strings),
//! trailing zeros of the release and of the pre-release part are dropped,
//! and a string segment sorts before any number (`1.0.a < 1.0`).

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Decimal digits without leading zeros; empty is zero.
    Number(String),
    Text(String),
}

/// A parsed RubyGems version.
#[derive(Debug, Clone)]
pub struct GemVersion {
    canonical: Vec<Segment>,
}

/// Why a string is not a RubyGems version.
pub const GEM_SYNTAX: &str =
    "a RubyGems version is digits, then `.`-separated letters and digits, optionally `-pre`";

impl GemVersion {
    /// `Gem::Version::ANCHORED_VERSION_PATTERN`:
    /// `[0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?`.
    pub fn parse(s: &str) -> Option<GemVersion> {
        let s = s.trim();
        if s.is_empty() {
            // `Gem::Version.new("")` is version 0.
            return Some(GemVersion {
                canonical: Vec::new(),
            });
        }
        let (main, pre) = match s.split_once('-') {
            Some((m, p)) => (m, Some(p)),
            None => (s, None),
        };
        let mut parts = main.split('.');
        let first = parts.next()?;
        if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric())) {
            return None;
        }
        if let Some(pre) = pre {
            if !pre
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            {
                return None;
            }
        }
        let spelled = s.replace('-', ".pre.");
        let mut segments = Vec::new();
        let bytes = spelled.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let digit = bytes[i].is_ascii_digit();
            let alpha = bytes[i].is_ascii_alphabetic();
            if !digit && !alpha {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len()
                && (if digit {
                    bytes[i].is_ascii_digit()
                } else {
                    bytes[i].is_ascii_alphabetic()
                })
            {
                i += 1;
            }
            let run = &spelled[start..i];
            segments.push(if digit {
                Segment::Number(run.trim_start_matches('0').to_owned())
            } else {
                Segment::Text(run.to_owned())
            });
        }
        Some(GemVersion {
            canonical: canonical(segments),
        })
    }

    /// True when the version has letters (`1.0.a`, `1.0-rc1`).
    pub fn is_prerelease(&self) -> bool {
        self.canonical.iter().any(|s| matches!(s, Segment::Text(_)))
    }
}

/// `canonical_segments`: the numeric release and the rest (from the first
/// string), each without trailing zeros.
fn canonical(segments: Vec<Segment>) -> Vec<Segment> {
    let split = segments
        .iter()
        .position(|s| matches!(s, Segment::Text(_)))
        .unwrap_or(segments.len());
    let (release, rest) = segments.split_at(split);
    let trim = |part: &[Segment]| {
        let end = part
            .iter()
            .rposition(|s| *s != Segment::Number(String::new()))
            .map_or(0, |p| p + 1);
        part[..end].to_vec()
    };
    let mut out = trim(release);
    out.extend(trim(rest));
    out
}

impl PartialEq for GemVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for GemVersion {}
impl PartialOrd for GemVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for GemVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let zero = Segment::Number(String::new());
        let n = self.canonical.len().max(other.canonical.len());
        for i in 0..n {
            let a = self.canonical.get(i).unwrap_or(&zero);
            let b = other.canonical.get(i).unwrap_or(&zero);
            let o = match (a, b) {
                (Segment::Number(x), Segment::Number(y)) => {
                    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
                }
                (Segment::Text(_), Segment::Number(_)) => Ordering::Less,
                (Segment::Number(_), Segment::Text(_)) => Ordering::Greater,
                (Segment::Text(x), Segment::Text(y)) => x.cmp(y),
            };
            if o.is_ne() {
                return o;
            }
        }
        Ordering::Equal
    }
}
