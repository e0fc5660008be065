//! Continuous exposure: registered applications (their inventories) kept
//! indexed by package, so that a new, revised, expired or retracted
//! indicator is judged against every application in one lookup per
//! indicator, and an inventory change against the held indicators in one
//! lookup per component. What changed comes out as events:
//! `exposure.new` when an (application, component, indicator) finding
//! appears, `exposure.cleared` when it goes (the indicator was retracted,
//! expired or revised to other versions, or the component left the
//! inventory).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::exposure::{Advisory, Index, Why};
use crate::sbom::{Component, Identity, Inventory};

/// One finding: which application's component an indicator concerns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExposureKey {
    pub application: String,
    pub component: String,
    pub indicator: String,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExposureEvent {
    New {
        key: ExposureKey,
        /// The component's purl, or its name for a name-only component.
        component_id: String,
        version: Option<String>,
        why: Why,
        path: Option<Vec<String>>,
    },
    Cleared {
        key: ExposureKey,
    },
}

impl ExposureEvent {
    /// `exposure.new` or `exposure.cleared`: the event's name in sinks.
    pub fn name(&self) -> &'static str {
        match self {
            ExposureEvent::New { .. } => "exposure.new",
            ExposureEvent::Cleared { .. } => "exposure.cleared",
        }
    }

    pub fn key(&self) -> &ExposureKey {
        match self {
            ExposureEvent::New { key, .. } | ExposureEvent::Cleared { key } => key,
        }
    }
}

/// Where a package occurs: (application, component position).
type Occurrences = Vec<(String, usize)>;

/// Registered applications, their findings, and the indicators held. `M`
/// is the caller's indicator metadata; the indicator id is `id(&M)`.
pub struct Watch<M> {
    applications: BTreeMap<String, Inventory>,
    /// package key (purl components) → where it occurs.
    by_package: HashMap<String, Occurrences>,
    /// loose name (name-only components) → where it occurs.
    by_name: HashMap<String, Occurrences>,
    /// The held indicators, each as the advisories (packages) it names.
    indicators: BTreeMap<String, Vec<Advisory<M>>>,
    /// package key and loose name → the indicators naming it.
    indicators_by_package: HashMap<String, BTreeSet<String>>,
    findings: BTreeSet<ExposureKey>,
    /// The same findings by indicator, so one indicator's are found
    /// without a pass over all (an application's are a range of
    /// `findings`, which sorts by application first).
    findings_by_indicator: HashMap<String, BTreeSet<ExposureKey>>,
}

/// Which findings an update replaces.
enum Scope<'a> {
    Indicator(&'a str),
    Application(&'a str),
}

impl<M: Clone> Default for Watch<M> {
    fn default() -> Self {
        Watch {
            applications: BTreeMap::new(),
            by_package: HashMap::new(),
            by_name: HashMap::new(),
            indicators: BTreeMap::new(),
            indicators_by_package: HashMap::new(),
            findings: BTreeSet::new(),
            findings_by_indicator: HashMap::new(),
        }
    }
}

/// Name-only lookups live beside package keys; the prefix keeps the two
/// apart (a package key always starts with its purl type and `/`).
fn name_key(name: &str) -> String {
    format!("name:{}", crate::exposure::loose_name(name))
}

/// Where an advisory is looked up from a component: its package key, and
/// its name for components known by name only.
fn lookup_keys<M>(a: &Advisory<M>) -> [String; 2] {
    [a.package.package_key(), name_key(&a.package.full_name())]
}

fn component_id(c: &Component) -> String {
    match &c.identity {
        Identity::Purl(p) => p.to_string(),
        Identity::NameOnly { .. } => c.name.clone(),
    }
}

impl<M: Clone> Watch<M> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn applications(&self) -> impl Iterator<Item = &str> {
        self.applications.keys().map(String::as_str)
    }

    /// A registered application's inventory.
    pub fn application(&self, name: &str) -> Option<&Inventory> {
        self.applications.get(name)
    }

    /// Every current finding.
    pub fn findings(&self) -> &BTreeSet<ExposureKey> {
        &self.findings
    }

    fn reindex(&mut self) {
        self.by_package.clear();
        self.by_name.clear();
        for (app, inv) in &self.applications {
            for (i, c) in inv.components.iter().enumerate() {
                let slot = match &c.identity {
                    Identity::Purl(p) => self.by_package.entry(p.package_key()).or_default(),
                    Identity::NameOnly { .. } => self
                        .by_name
                        .entry(crate::exposure::loose_name(&c.name))
                        .or_default(),
                };
                slot.push((app.clone(), i));
            }
        }
    }

    /// The findings one indicator's advisories give, over every
    /// application, with their details.
    fn judge_indicator(&self, indicator: &str, advisories: &[Advisory<M>]) -> Vec<ExposureEvent> {
        let mut index = Index::new();
        for a in advisories {
            index.insert(a.clone());
        }
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for a in advisories {
            let places = self
                .by_package
                .get(&a.package.package_key())
                .into_iter()
                .chain(
                    self.by_name
                        .get(&crate::exposure::loose_name(&a.package.full_name())),
                )
                .flatten();
            for (app, i) in places {
                if !seen.insert((app.clone(), *i)) {
                    continue;
                }
                let inv = &self.applications[app];
                let c = &inv.components[*i];
                // The first reason is enough to report the finding.
                if let Some((_, why)) = index.check_component(c).into_iter().next() {
                    out.push(ExposureEvent::New {
                        key: ExposureKey {
                            application: app.clone(),
                            component: c.reference.clone(),
                            indicator: indicator.to_owned(),
                        },
                        component_id: component_id(c),
                        version: c.version.clone(),
                        why,
                        path: inv.dependency_path(&c.reference),
                    });
                }
            }
        }
        out
    }

    /// Replaces what `indicator` says (new or revised): returns the
    /// findings that appear and those that go.
    pub fn upsert_indicator(
        &mut self,
        indicator: &str,
        advisories: Vec<Advisory<M>>,
    ) -> Vec<ExposureEvent> {
        let now = self.judge_indicator(indicator, &advisories);
        self.forget_indicator(indicator);
        for a in &advisories {
            for key in lookup_keys(a) {
                self.indicators_by_package
                    .entry(key)
                    .or_default()
                    .insert(indicator.to_owned());
            }
        }
        self.indicators.insert(indicator.to_owned(), advisories);
        self.apply(Scope::Indicator(indicator), now)
    }

    /// The indicator is retracted or expired.
    pub fn remove_indicator(&mut self, indicator: &str) -> Vec<ExposureEvent> {
        self.forget_indicator(indicator);
        self.apply(Scope::Indicator(indicator), Vec::new())
    }

    fn forget_indicator(&mut self, indicator: &str) {
        if let Some(old) = self.indicators.remove(indicator) {
            for a in &old {
                for key in lookup_keys(a) {
                    if let Some(set) = self.indicators_by_package.get_mut(&key) {
                        set.remove(indicator);
                        if set.is_empty() {
                            self.indicators_by_package.remove(&key);
                        }
                    }
                }
            }
        }
    }

    /// Registers or replaces an application's inventory.
    pub fn set_application(&mut self, name: &str, inventory: Inventory) -> Vec<ExposureEvent> {
        self.applications.insert(name.to_owned(), inventory);
        self.reindex();
        let now = self.judge_application(name);
        self.apply(Scope::Application(name), now)
    }

    pub fn remove_application(&mut self, name: &str) -> Vec<ExposureEvent> {
        self.applications.remove(name);
        self.reindex();
        self.apply(Scope::Application(name), Vec::new())
    }

    /// The findings of one application against the held indicators: one
    /// lookup per component, then only the indicators naming its package.
    fn judge_application(&self, name: &str) -> Vec<ExposureEvent> {
        let Some(inv) = self.applications.get(name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for c in &inv.components {
            let key = match &c.identity {
                Identity::Purl(p) => p.package_key(),
                Identity::NameOnly { .. } => name_key(&c.name),
            };
            for indicator in self.indicators_by_package.get(&key).into_iter().flatten() {
                let mut index = Index::new();
                for a in &self.indicators[indicator] {
                    index.insert(a.clone());
                }
                if let Some((_, why)) = index.check_component(c).into_iter().next() {
                    out.push(ExposureEvent::New {
                        key: ExposureKey {
                            application: name.to_owned(),
                            component: c.reference.clone(),
                            indicator: indicator.clone(),
                        },
                        component_id: component_id(c),
                        version: c.version.clone(),
                        why,
                        path: inv.dependency_path(&c.reference),
                    });
                }
            }
        }
        out
    }

    /// Sets the findings in `scope` to `now`: events for what appeared
    /// (in `now`'s order) and then for what went (sorted).
    fn apply(&mut self, scope: Scope<'_>, now: Vec<ExposureEvent>) -> Vec<ExposureEvent> {
        let now_keys: BTreeSet<&ExposureKey> = now.iter().map(|e| e.key()).collect();
        let in_scope: Vec<&ExposureKey> = match scope {
            Scope::Indicator(id) => self
                .findings_by_indicator
                .get(id)
                .into_iter()
                .flatten()
                .collect(),
            Scope::Application(name) => self
                .findings
                .range(
                    ExposureKey {
                        application: name.to_owned(),
                        component: String::new(),
                        indicator: String::new(),
                    }..,
                )
                .take_while(|k| k.application == name)
                .collect(),
        };
        let gone: Vec<ExposureKey> = in_scope
            .into_iter()
            .filter(|k| !now_keys.contains(k))
            .cloned()
            .collect();
        let mut events: Vec<ExposureEvent> = now
            .into_iter()
            .filter(|e| !self.findings.contains(e.key()))
            .collect();
        for k in &gone {
            self.findings.remove(k);
            if let Some(set) = self.findings_by_indicator.get_mut(&k.indicator) {
                set.remove(k);
                if set.is_empty() {
                    self.findings_by_indicator.remove(&k.indicator);
                }
            }
        }
        for e in &events {
            self.findings.insert(e.key().clone());
            self.findings_by_indicator
                .entry(e.key().indicator.clone())
                .or_default()
                .insert(e.key().clone());
        }
        events.extend(gone.into_iter().map(|key| ExposureEvent::Cleared { key }));
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::range::AffectedVersions;
    use crate::Purl;

    fn advisory(purl: &str, versions: &[&str]) -> Advisory<()> {
        let package: Purl = purl.parse().unwrap();
        let versions: Vec<String> = versions.iter().map(|s| s.to_string()).collect();
        Advisory {
            affected: AffectedVersions::from_statement(
                package.ecosystem(),
                package.version(),
                &versions,
            ),
            package: package.package(),
            meta: (),
        }
    }

    fn inventory() -> Inventory {
        crate::sbom::read(include_bytes!("../fixtures/sbom/cdxgen-cyclonedx.json")).unwrap()
    }

    fn names(events: &[ExposureEvent]) -> Vec<(&'static str, String)> {
        events
            .iter()
            .map(|e| {
                (
                    e.name(),
                    format!("{}|{}", e.key().application, e.key().component),
                )
            })
            .collect()
    }

    #[test]
    fn new_indicator_revision_and_retraction() {
        let mut w = Watch::new();
        assert!(w.set_application("online-banking", inventory()).is_empty());
        let e = w.upsert_indicator(
            "ind-1",
            vec![advisory("pkg:npm/flatmap-stream", &["0.1.1"])],
        );
        assert_eq!(
            names(&e),
            [(
                "exposure.new",
                "online-banking|pkg:npm/flatmap-stream@0.1.1".to_string()
            )]
        );
        match &e[0] {
            ExposureEvent::New { why, path, .. } => {
                assert!(why.is_certain());
                assert_eq!(path.as_ref().map(Vec::len), Some(3));
            }
            other => panic!("{other:?}"),
        }
        // The same again: nothing new.
        assert!(w
            .upsert_indicator(
                "ind-1",
                vec![advisory("pkg:npm/flatmap-stream", &["0.1.1"])]
            )
            .is_empty());
        // Revised to other versions: cleared.
        let e = w.upsert_indicator(
            "ind-1",
            vec![advisory("pkg:npm/flatmap-stream", &["0.1.2"])],
        );
        assert_eq!(names(&e)[0].0, "exposure.cleared");
        let e = w.upsert_indicator("ind-1", vec![advisory("pkg:npm/flatmap-stream", &[])]);
        assert_eq!(names(&e)[0].0, "exposure.new");
        let e = w.remove_indicator("ind-1");
        assert_eq!(names(&e)[0].0, "exposure.cleared");
        assert!(w.findings().is_empty());
    }

    #[test]
    fn inventory_changes_raise_and_clear_findings() {
        let mut w: Watch<()> = Watch::new();
        w.upsert_indicator("ind-2", vec![advisory("pkg:npm/express", &["<4.21.2"])]);
        let e = w.set_application("online-banking", inventory());
        assert_eq!(names(&e)[0].0, "exposure.new");
        let mut upgraded = inventory();
        for c in &mut upgraded.components {
            if c.name == "express" {
                c.version = Some("4.21.2".into());
                c.identity = Identity::Purl("pkg:npm/express@4.21.2".parse().unwrap());
            }
        }
        let e = w.set_application("online-banking", upgraded);
        assert_eq!(
            names(&e),
            [(
                "exposure.cleared",
                "online-banking|pkg:npm/express@4.21.1".to_string()
            )]
        );
        w.set_application("online-banking", inventory());
        let e = w.remove_application("online-banking");
        assert_eq!(names(&e)[0].0, "exposure.cleared");
    }

    #[test]
    fn an_update_replaces_only_its_own_findings() {
        let mut w: Watch<()> = Watch::new();
        // One name a prefix of the other: an application's findings are
        // a range by name, never more.
        w.set_application("app", inventory());
        w.set_application("app-2", inventory());
        w.upsert_indicator("ind-a", vec![advisory("pkg:npm/event-stream", &["3.3.6"])]);
        w.upsert_indicator("ind-b", vec![advisory("pkg:npm/flatmap-stream", &[])]);
        assert_eq!(w.findings().len(), 4);
        let e = w.remove_application("app");
        assert_eq!(e.len(), 2);
        assert!(e.iter().all(|e| e.key().application == "app"));
        let e = w.remove_indicator("ind-a");
        assert_eq!(
            names(&e),
            [(
                "exposure.cleared",
                "app-2|pkg:npm/event-stream@3.3.6".to_string()
            )]
        );
        let left: Vec<&str> = w.findings().iter().map(|k| k.indicator.as_str()).collect();
        assert_eq!(left, ["ind-b"]);
        // Removing it again, or an indicator never held, changes nothing.
        assert!(w.remove_indicator("ind-a").is_empty());
        assert!(w.remove_indicator("ind-z").is_empty());
    }

    #[test]
    fn two_applications_one_indicator() {
        let mut w: Watch<()> = Watch::new();
        w.set_application("a", inventory());
        w.set_application("b", inventory());
        let e = w.upsert_indicator("ind-3", vec![advisory("pkg:npm/event-stream", &["3.3.6"])]);
        assert_eq!(e.len(), 2);
        assert_eq!(w.findings().len(), 2);
    }
}
