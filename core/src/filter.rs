//! Subscription filters: which of the items a member may receive it wants.
//! Pure: the hub applies it to facts it stored when the item arrived.
//! Filters narrow; they never widen what the TLP decision allows.

use crate::statement::Severity;
use crate::tlp::Tlp;

/// The facts of a stored item a filter looks at.
#[derive(Debug, Clone, Copy)]
pub struct ItemFacts<'a> {
    /// `package`, `artifact`, ..., `bulletin`, `sighting`, `retraction`.
    pub kind: &'a str,
    /// The purl type of the observable, if any (`npm`, `pypi`, ...).
    pub ecosystem: Option<&'a str>,
    pub severity: Severity,
    pub confidence: u8,
    pub tlp: Tlp,
    pub tags: &'a [String],
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Empty: any kind.
    pub kinds: Vec<String>,
    /// Empty: any ecosystem (and items without one).
    pub ecosystems: Vec<String>,
    pub min_severity: Option<Severity>,
    pub min_confidence: Option<u8>,
    /// Empty: any level.
    pub tlp_levels: Vec<Tlp>,
    /// Empty: any; otherwise the item must carry at least one.
    pub tags: Vec<String>,
    pub bulletins_only: bool,
}

/// Kinds that always pass a kind/ecosystem/severity filter, because they
/// change items the subscriber already holds.
fn is_lifecycle(kind: &str) -> bool {
    matches!(kind, "retraction")
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    pub fn matches(&self, item: &ItemFacts<'_>) -> bool {
        if is_lifecycle(item.kind) {
            return !self.bulletins_only;
        }
        if self.bulletins_only && item.kind != "bulletin" {
            return false;
        }
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == item.kind) {
            return false;
        }
        if !self.ecosystems.is_empty()
            && !item
                .ecosystem
                .is_some_and(|e| self.ecosystems.iter().any(|x| x == e))
        {
            return false;
        }
        if self.min_severity.is_some_and(|min| item.severity < min) {
            return false;
        }
        if self.min_confidence.is_some_and(|min| item.confidence < min) {
            return false;
        }
        if !self.tlp_levels.is_empty() && !self.tlp_levels.contains(&item.tlp) {
            return false;
        }
        if !self.tags.is_empty() && !item.tags.iter().any(|t| self.tags.contains(t)) {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(kind: &'a str, eco: Option<&'a str>, tags: &'a [String]) -> ItemFacts<'a> {
        ItemFacts {
            kind,
            ecosystem: eco,
            severity: Severity::High,
            confidence: 80,
            tlp: Tlp::Green,
            tags,
        }
    }

    #[test]
    fn empty_filter_passes_everything() {
        let f = Filter::default();
        assert!(f.is_empty());
        assert!(f.matches(&facts("package", Some("npm"), &[])));
        assert!(f.matches(&facts("network", None, &[])));
    }

    #[test]
    fn each_criterion_narrows() {
        let tags = vec!["c2".to_string()];
        let npm = facts("package", Some("npm"), &tags);
        let pypi = facts("package", Some("pypi"), &[]);
        let domain = facts("network", None, &[]);

        let f = Filter {
            kinds: vec!["package".into()],
            ..Default::default()
        };
        assert!(f.matches(&npm) && !f.matches(&domain));
        let f = Filter {
            ecosystems: vec!["npm".into()],
            ..Default::default()
        };
        assert!(f.matches(&npm) && !f.matches(&pypi) && !f.matches(&domain));
        let f = Filter {
            min_severity: Some(Severity::Critical),
            ..Default::default()
        };
        assert!(!f.matches(&npm));
        let f = Filter {
            min_severity: Some(Severity::High),
            ..Default::default()
        };
        assert!(f.matches(&npm));
        let f = Filter {
            min_confidence: Some(81),
            ..Default::default()
        };
        assert!(!f.matches(&npm));
        let f = Filter {
            tlp_levels: vec![Tlp::Clear],
            ..Default::default()
        };
        assert!(!f.matches(&npm));
        let f = Filter {
            tags: vec!["c2".into()],
            ..Default::default()
        };
        assert!(f.matches(&npm) && !f.matches(&pypi));
        let f = Filter {
            bulletins_only: true,
            ..Default::default()
        };
        assert!(!f.matches(&npm) && f.matches(&facts("bulletin", None, &[])));
    }

    #[test]
    fn retractions_reach_filtered_subscribers() {
        let f = Filter {
            ecosystems: vec!["npm".into()],
            min_severity: Some(Severity::Critical),
            ..Default::default()
        };
        assert!(f.matches(&facts("retraction", None, &[])));
    }
}
