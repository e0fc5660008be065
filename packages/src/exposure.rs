//! "Are we affected?": an inventory's components against the packages the
//! held indicators name, through an index by package (not a scan), so an
//! SBOM of ten thousand components against a million indicators costs ten
//! thousand lookups.
//!
//! Each finding says why: the constraint that holds for the listed version
//! ([`Why::Version`]), a version that cannot be told either way
//! ([`Why::Unknown`]: reported, never taken as clean), a component the SBOM
//! names without version ([`Why::NoVersion`]), or a component known by name
//! only, whose ecosystem is a guess ([`Why::NameOnly`]). Only `Version`
//! findings are certain; VEX writes the others as under investigation.

use std::collections::HashMap;

use crate::range::{AffectedVersions, Verdict};
use crate::sbom::{Component, Identity, Inventory};
use crate::{Ecosystem, Purl};

/// One package an indicator is about, and which of its versions.
#[derive(Debug, Clone)]
pub struct Advisory<M> {
    /// The package (its version, qualifiers and subpath are ignored).
    pub package: Purl,
    pub affected: AffectedVersions,
    /// Whatever the caller needs to report it (indicator id, title, TLP,
    /// source): carried through untouched.
    pub meta: M,
}

/// Advisories by package, and by bare name for name-only components.
pub struct Index<M> {
    advisories: Vec<Advisory<M>>,
    by_package: HashMap<String, Vec<usize>>,
    by_name: HashMap<String, Vec<usize>>,
}

impl<M> Default for Index<M> {
    fn default() -> Self {
        Index {
            advisories: Vec::new(),
            by_package: HashMap::new(),
            by_name: HashMap::new(),
        }
    }
}

/// How a name-only component's name is compared (also the key a store
/// indexes names by): case and the separators
/// ecosystems fold (PEP 503, Cargo's `-`/`_`) ignored.
pub fn loose_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_sep {
                out.push('-');
            }
            last_sep = true;
        } else {
            out.extend(c.to_lowercase());
            last_sep = false;
        }
    }
    out
}

impl<M> Index<M> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }

    pub fn insert(&mut self, advisory: Advisory<M>) {
        let at = self.advisories.len();
        self.by_package
            .entry(advisory.package.package_key())
            .or_default()
            .push(at);
        self.by_name
            .entry(loose_name(&advisory.package.full_name()))
            .or_default()
            .push(at);
        self.advisories.push(advisory);
    }

    pub fn advisories(&self) -> &[Advisory<M>] {
        &self.advisories
    }

    /// The advisories about `component`, each with why it may be affected
    /// (advisories under which it is not affected are left out).
    pub fn check_component<'a>(&'a self, component: &Component) -> Vec<(&'a Advisory<M>, Why)> {
        match &component.identity {
            Identity::Purl(purl) => {
                let eco = purl.ecosystem();
                let version = component.version.as_deref().or(purl.version());
                self.by_package
                    .get(&purl.package_key())
                    .into_iter()
                    .flatten()
                    .filter_map(|&i| {
                        let a = &self.advisories[i];
                        judge(&a.affected, eco, version).map(|why| (a, why))
                    })
                    .collect()
            }
            Identity::NameOnly { ecosystem } => self
                .by_name
                .get(&loose_name(&component.name))
                .into_iter()
                .flatten()
                .map(|&i| &self.advisories[i])
                .filter(|a| ecosystem.is_none() || a.package.ecosystem() == *ecosystem)
                .map(|a| {
                    (
                        a,
                        Why::NameOnly {
                            guessed: ecosystem.is_some(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Every finding for an inventory, in component order.
    pub fn check<'a>(&'a self, inventory: &'a Inventory) -> Vec<Finding<'a, M>> {
        let mut out = Vec::new();
        for component in &inventory.components {
            for (advisory, why) in self.check_component(component) {
                out.push(Finding {
                    component,
                    advisory,
                    why,
                    path: inventory.dependency_path(&component.reference),
                });
            }
        }
        out
    }
}

fn judge(
    affected: &AffectedVersions,
    eco: Option<Ecosystem>,
    version: Option<&str>,
) -> Option<Why> {
    let Some(version) = version.filter(|v| !v.trim().is_empty()) else {
        return Some(Why::NoVersion);
    };
    match affected.matches(eco, version) {
        Verdict::Affected(by) => Some(Why::Version(by)),
        Verdict::NotAffected => None,
        Verdict::Unknown(why) => Some(Why::Unknown(why)),
    }
}

/// Why a component may be affected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Its version is affected: by this constraint.
    Version(String),
    /// Whether its version is affected cannot be told (why).
    Unknown(String),
    /// The SBOM lists the package without a version.
    NoVersion,
    /// Known by name only; `guessed`: the generator hinted the ecosystem.
    NameOnly { guessed: bool },
}

impl Why {
    /// Affected for certain (a listed version inside the affected ones).
    pub fn is_certain(&self) -> bool {
        matches!(self, Why::Version(_))
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Version(by) => write!(f, "affected: {by}"),
            Why::Unknown(why) => write!(f, "cannot tell: {why}"),
            Why::NoVersion => f.write_str("listed without a version"),
            Why::NameOnly { guessed: true } => {
                f.write_str("same name, no purl (ecosystem from the generator's hint)")
            }
            Why::NameOnly { guessed: false } => {
                f.write_str("same name, no purl, ecosystem unknown")
            }
        }
    }
}

/// A component that may be affected by an advisory.
#[derive(Debug)]
pub struct Finding<'a, M> {
    pub component: &'a Component,
    pub advisory: &'a Advisory<M>,
    pub why: Why,
    /// From the SBOM's subject to the component, where recorded.
    pub path: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::range::AffectedVersions;

    fn advisory(purl: &str, versions: &[&str], id: &'static str) -> Advisory<&'static str> {
        let package: Purl = purl.parse().unwrap();
        let eco = package.ecosystem();
        let versions: Vec<String> = versions.iter().map(|s| s.to_string()).collect();
        Advisory {
            affected: AffectedVersions::from_statement(eco, package.version(), &versions),
            package: package.package(),
            meta: id,
        }
    }

    fn component(purl: &str) -> Component {
        let p: Purl = purl.parse().unwrap();
        Component {
            reference: purl.into(),
            name: p.full_name(),
            version: p.version().map(str::to_owned),
            identity: Identity::Purl(p),
        }
    }

    fn ids(index: &Index<&'static str>, c: &Component) -> Vec<(&'static str, bool)> {
        index
            .check_component(c)
            .into_iter()
            .map(|(a, why)| (a.meta, why.is_certain()))
            .collect()
    }

    fn index() -> Index<&'static str> {
        let mut i = Index::new();
        i.insert(advisory("pkg:npm/event-stream@3.3.6", &[], "exact"));
        i.insert(advisory(
            "pkg:npm/%40solana/web3.js",
            &[">=1.95.6 <1.95.8"],
            "range",
        ));
        i.insert(advisory("pkg:pypi/Py.YAML", &["<6.0.1"], "pypi"));
        i.insert(advisory("pkg:pypi/ctx", &[], "every"));
        i.insert(advisory(
            "pkg:maven/org.apache.logging.log4j/log4j-core",
            &[">=2.0-beta9 <2.15.0"],
            "maven",
        ));
        i.insert(advisory("pkg:npm/left-pad", &["1.3.0"], "left-pad"));
        i
    }

    #[test]
    fn listed_versions_and_their_neighbours() {
        let i = index();
        assert_eq!(
            ids(&i, &component("pkg:npm/event-stream@3.3.6")),
            [("exact", true)]
        );
        assert!(ids(&i, &component("pkg:npm/event-stream@3.3.5")).is_empty());
        assert!(ids(&i, &component("pkg:npm/event-stream@3.3.7")).is_empty());
    }

    #[test]
    fn ranges_scopes_pypi_names_and_maven_coordinates() {
        let i = index();
        assert_eq!(
            ids(&i, &component("pkg:npm/%40solana/web3.js@1.95.7")),
            [("range", true)]
        );
        assert!(ids(&i, &component("pkg:npm/%40solana/web3.js@1.95.8")).is_empty());
        assert!(
            ids(&i, &component("pkg:npm/web3.js@1.95.7")).is_empty(),
            "scope matters"
        );
        // PEP 503: capitals, dots and underscores name one package.
        assert_eq!(
            ids(&i, &component("pkg:pypi/py_yaml@6.0")),
            [("pypi", true)]
        );
        assert_eq!(
            ids(&i, &component("pkg:pypi/PY-YAML@6.0.1rc1")),
            [("pypi", true)]
        );
        assert!(
            ids(&i, &component("pkg:pypi/pyyaml@6.0")).is_empty(),
            "a different package"
        );
        assert!(ids(&i, &component("pkg:pypi/py.yaml@6.0.1")).is_empty());
        assert_eq!(ids(&i, &component("pkg:pypi/ctx@0.2.6")), [("every", true)]);
        assert_eq!(
            ids(
                &i,
                &component("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1")
            ),
            [("maven", true)]
        );
        assert!(ids(
            &i,
            &component("pkg:maven/org.apache.logging.log4j/log4j-core@2.15.0")
        )
        .is_empty());
        assert!(ids(
            &i,
            &component("pkg:maven/org.apache.logging.log4j/log4j-api@2.14.1")
        )
        .is_empty());
    }

    #[test]
    fn qualifiers_do_not_hide_a_package() {
        let i = index();
        assert_eq!(
            ids(
                &i,
                &component("pkg:npm/event-stream@3.3.6?repository_url=https://r.example")
            ),
            [("exact", true)]
        );
    }

    #[test]
    fn uncertain_answers_are_reported_not_dropped() {
        let i = index();
        let mut c = component("pkg:npm/event-stream");
        c.version = None;
        assert_eq!(
            i.check_component(&c)[0].1,
            Why::NoVersion,
            "no version: reported"
        );
        // Maven orders any text (ComparableVersion), npm does not.
        let garbled = component("pkg:npm/%40solana/web3.js@not.a.version");
        let found = i.check_component(&garbled);
        assert_eq!(found.len(), 1, "an unreadable version is not clean");
        let name_only = Component {
            reference: "x".into(),
            name: "Left_Pad".into(),
            version: Some("9.9.9".into()),
            identity: Identity::NameOnly { ecosystem: None },
        };
        assert_eq!(
            i.check_component(&name_only)[0].1,
            Why::NameOnly { guessed: false }
        );
        let wrong_ecosystem = Component {
            identity: Identity::NameOnly {
                ecosystem: Some(Ecosystem::PyPI),
            },
            ..name_only
        };
        assert!(i.check_component(&wrong_ecosystem).is_empty());
    }

    #[test]
    fn an_inventory_from_an_sbom_reports_paths() {
        let sbom = include_bytes!("../fixtures/sbom/cdxgen-cyclonedx.json");
        let inv = crate::sbom::read(sbom).unwrap();
        let mut i = Index::new();
        i.insert(advisory("pkg:npm/flatmap-stream", &[], "flatmap"));
        let found = i.check(&inv);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].advisory.meta, "flatmap");
        assert_eq!(found[0].path.as_ref().map(Vec::len), Some(3));
    }
}
