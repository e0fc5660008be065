//! NuGet version ordering (NuGet.Versioning): up to four numeric parts
//! (`1.0` = `1.0.0` = `1.0.0.0`), an optional `-` pre-release whose labels
//! compare as SemVer 2 but case-insensitively, and `+metadata` ignored.

use std::cmp::Ordering;

#[derive(Debug, Clone)]
pub struct NuGetVersion {
    /// Major, minor, patch, revision: decimal digits without leading zeros.
    release: [String; 4],
    /// Pre-release labels, lowercase; empty for a release.
    pre: Vec<String>,
}

impl NuGetVersion {
    pub fn parse(s: &str) -> Option<NuGetVersion> {
        let s = s.trim();
        let s = s.split_once('+').map_or(s, |(v, _)| v);
        let (main, pre) = match s.split_once('-') {
            Some((m, p)) => (m, Some(p)),
            None => (s, None),
        };
        let parts: Vec<&str> = main.split('.').collect();
        if parts.is_empty()
            || parts.len() > 4
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let mut release: [String; 4] = Default::default();
        for (slot, p) in release.iter_mut().zip(&parts) {
            *slot = p.trim_start_matches('0').to_owned();
        }
        let pre = match pre {
            None => Vec::new(),
            Some(p) => {
                let labels: Vec<String> = p.split('.').map(str::to_ascii_lowercase).collect();
                if labels.iter().any(|l| {
                    l.is_empty() || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }) {
                    return None;
                }
                labels
            }
        };
        Some(NuGetVersion { release, pre })
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

fn cmp_digits(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// SemVer 2 label order: numeric labels numerically and before
/// alphanumeric ones, which compare as (already lowercased) text.
fn cmp_label(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        (true, true) => cmp_digits(a.trim_start_matches('0'), b.trim_start_matches('0')),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

impl PartialEq for NuGetVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for NuGetVersion {}
impl PartialOrd for NuGetVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for NuGetVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let release = self
            .release
            .iter()
            .zip(&other.release)
            .map(|(a, b)| cmp_digits(a, b))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal);
        release.then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self
                .pre
                .iter()
                .zip(&other.pre)
                .map(|(a, b)| cmp_label(a, b))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| self.pre.len().cmp(&other.pre.len())),
        })
    }
}
