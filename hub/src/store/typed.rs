//! Stored rows read back as core types. The store keeps some columns as
//! text (TLP label, JSON of the audience, openings, group snapshot, tags);
//! these accessors are the one place that decodes them, so callers work in
//! `isac_core` types. A value that does not decode is an error (`None`)
//! for the caller to fail closed on.

use std::collections::BTreeMap;

use isac_core::audience::AudienceOpening;
use isac_core::tlp::AudienceRef;
use isac_core::Tlp;

use super::StoredStatement;

impl StoredStatement {
    /// The item's TLP level.
    pub fn tlp_level(&self) -> Option<Tlp> {
        self.tlp.parse().ok()
    }

    /// The clear audience the hub opened at publish.
    pub fn audience(&self) -> Option<Vec<AudienceRef>> {
        serde_json::from_str(&self.audience_json).ok()
    }

    /// Every audience opening the source sent (empty if unreadable).
    pub fn openings(&self) -> Vec<AudienceOpening> {
        serde_json::from_str(&self.openings_json).unwrap_or_default()
    }

    /// Each named group's members when the item was published (empty if
    /// unreadable: entitles no one).
    pub fn group_snapshot(&self) -> BTreeMap<String, Vec<String>> {
        serde_json::from_str(&self.group_snapshot_json).unwrap_or_default()
    }

    /// The indicator's tags, as filters see them (empty if unreadable).
    pub fn tags(&self) -> Vec<String> {
        serde_json::from_str(&self.facts.tags_json).unwrap_or_default()
    }
}

/// The text columns the TLP decision and a delivery need, decoded once.
/// Each field is what the accessor of the same name returns.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub tlp: Option<Tlp>,
    pub audience: Option<Vec<AudienceRef>>,
    pub openings: Vec<AudienceOpening>,
    pub group_snapshot: BTreeMap<String, Vec<String>>,
}

impl StoredStatement {
    pub fn decode(&self) -> Decoded {
        Decoded {
            tlp: self.tlp_level(),
            audience: self.audience(),
            openings: self.openings(),
            group_snapshot: self.group_snapshot(),
        }
    }
}
