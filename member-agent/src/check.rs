//! `member-agent check FILE|DIR...`: every component of a lockfile or an
//! SBOM (CycloneDX JSON, SPDX 2 JSON and tag-value, SPDX 3 JSON-LD, told
//! apart by content) that may be affected by a package indicator held in
//! the verified local store.
//!
//! Components are `isac_packages` components checked through an
//! `exposure::Index` of only the held indicators about them (looked up per
//! package in the store's `item_packages`, not a scan), so names are
//! compared by their purl type's rules and versions in their ecosystem's
//! order. A version that cannot be told either way, a component listed
//! without version, or one known by name only is reported as uncertain,
//! never taken as clean; components the reader could not use are named.

use std::path::{Path, PathBuf};

use isac_packages::exposure::{loose_name, Advisory, Index, Why};
use isac_packages::sbom::{Component, Identity, Inventory};
use isac_packages::{AffectedVersions, Purl};
use serde::Serialize;

use crate::error::AgentError;
use crate::localstore::{ItemSummary, LocalStore};
use crate::lockfile::{is_lockfile_name, parse_lockfile};
use crate::sync::Agent;

/// Lockfiles and SBOMs larger than this are refused rather than read.
pub(crate) const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;
/// Most files one `check` reads from the directories it is given.
const MAX_DIR_FILES: usize = 10_000;

#[derive(Debug, Clone, Serialize)]
pub struct Match {
    /// `ecosystem/namespace/name` of the dependency (lockfiles), or the
    /// component's purl without version, or its name (SBOMs).
    pub dependency: String,
    pub version: String,
    pub indicator_id: String,
    pub indicator_value: String,
    pub title: String,
    pub tlp: String,
    pub severity: String,
    pub source: String,
    /// True when the version is affected for certain; false when it
    /// cannot be told (an unreadable version or range, no version, a
    /// component known by name only).
    pub certain: bool,
    /// Why it matched: the constraint that holds, or why it cannot be told.
    pub why: String,
    /// The component's purl with its version; absent for a component
    /// known by name only (the VEX product).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// From the application to the component, where the SBOM records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Vec<String>>,
}

/// A component that could not be interpreted, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Uninterpreted {
    pub component: String,
    pub why: String,
}

/// One input file checked.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub file: String,
    /// The lockfile format, or the SBOM's format and spec version.
    pub format: String,
    /// The SBOM's subject (name and version), else the file name.
    pub application: String,
    pub components: usize,
    pub matches: Vec<Match>,
    pub uninterpreted: Vec<Uninterpreted>,
}

/// What a finding is reported with: the indicator's facts.
#[derive(Debug, Clone)]
pub struct IndicatorMeta {
    pub item: ItemSummary,
    /// The purl as the indicator gives it.
    pub purl: String,
}

/// The files `paths` name: files as given; directories walked (sorted,
/// hidden entries skipped) for lockfiles by name and SBOMs by extension.
pub fn input_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, AgentError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| AgentError::Usage(format!("{}: cannot read: {e}", path.display())))?;
        if !meta.is_dir() {
            out.push(path.clone());
            continue;
        }
        let mut dirs = vec![path.clone()];
        while let Some(dir) = dirs.pop() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(crate::error::io_err(&dir))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    !p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.') || n == "node_modules")
                })
                .collect();
            entries.sort();
            for entry in entries {
                if entry.is_dir() {
                    dirs.push(entry);
                } else if is_input_name(&entry) {
                    out.push(entry);
                    if out.len() > MAX_DIR_FILES {
                        return Err(AgentError::Usage(format!(
                            "{}: more than {MAX_DIR_FILES} lockfiles and SBOMs",
                            path.display()
                        )));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Lockfiles by name; SBOMs by the extensions generators write.
fn is_input_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    is_lockfile_name(&name)
        || [
            ".cdx.json",
            ".spdx.json",
            ".spdx",
            ".spdx3.json",
            ".jsonld",
            "bom.json",
            "sbom.json",
        ]
        .iter()
        .any(|ext| name.ends_with(ext))
}

pub fn check_file(agent: &Agent, path: &Path) -> Result<Report, AgentError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| AgentError::Usage(format!("{}: cannot read: {e}", path.display())))?;
    if meta.len() > MAX_INPUT_BYTES {
        return Err(AgentError::Usage(format!(
            "{} is larger than 64 MiB",
            path.display()
        )));
    }
    let contents = crate::error::read_input(path)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let mut report = check_contents(agent, name, &contents).map_err(|e| match e {
        AgentError::Usage(m) if !m.contains(name) || name.is_empty() => {
            AgentError::Usage(format!("{}: {m}", path.display()))
        }
        other => other,
    })?;
    report.file = path.display().to_string();
    Ok(report)
}

/// Like [`check_file`], for text already in memory: a lockfile if
/// `file_name` names one (e.g. `package-lock.json`), else an SBOM, told
/// by its content.
pub fn check_contents(
    agent: &Agent,
    file_name: &str,
    contents: &str,
) -> Result<Report, AgentError> {
    if contents.len() as u64 > MAX_INPUT_BYTES {
        return Err(AgentError::Usage(format!(
            "{file_name} is larger than 64 MiB"
        )));
    }
    let now = isac_core::time::format_rfc3339(agent.clock.now());
    let store = agent.store.lock().expect("local store lock");
    check_text(&store, &now, file_name, contents)
}

/// [`check_contents`] against `store` at `now` (RFC 3339).
pub fn check_text(
    store: &LocalStore,
    now: &str,
    file_name: &str,
    contents: &str,
) -> Result<Report, AgentError> {
    let lookup = |keys: &[String], names: &[String]| store.package_indicators_for(keys, names, now);
    if is_lockfile_name(file_name) {
        let deps =
            parse_lockfile(file_name, contents).map_err(|e| AgentError::Usage(e.to_string()))?;
        let components: Vec<(String, Component)> = deps
            .iter()
            .map(|dep| {
                let shown = match &dep.namespace {
                    Some(ns) => format!("{}/{}/{}", dep.ecosystem, ns, dep.name),
                    None => format!("{}/{}", dep.ecosystem, dep.name),
                };
                (shown, dep.component())
            })
            .collect();
        let index = index_for(components.iter().map(|(_, c)| c), lookup)?;
        let matches = components
            .iter()
            .flat_map(|(shown, c)| {
                index
                    .check_component(c)
                    .into_iter()
                    .map(|(a, why)| found(shown.clone(), c, a, &why, None))
            })
            .collect();
        return Ok(Report {
            file: file_name.to_owned(),
            format: file_name.to_owned(),
            application: file_name.to_owned(),
            components: components.len(),
            matches,
            uninterpreted: Vec::new(),
        });
    }
    let inventory = isac_packages::sbom::read(contents.as_bytes()).map_err(|e| {
        AgentError::Usage(format!(
            "{file_name}: neither a lockfile (by its name: package-lock.json, Cargo.lock, \
             poetry.lock, go.sum, requirements*.txt) nor an SBOM we read: {e}"
        ))
    })?;
    let index = index_for(inventory.components.iter(), lookup)?;
    Ok(sbom_report(file_name, &inventory, &index))
}

/// The findings for an SBOM's inventory against `index`.
pub fn sbom_report(file_name: &str, inventory: &Inventory, index: &Index<IndicatorMeta>) -> Report {
    let matches = index
        .check(inventory)
        .into_iter()
        .map(|f| {
            let path = f.path.as_ref().map(|p| path_labels(inventory, p));
            let shown = match &f.component.identity {
                Identity::Purl(p) => p.package().to_string(),
                Identity::NameOnly { .. } => f.component.name.clone(),
            };
            found(shown, f.component, f.advisory, &f.why, path)
        })
        .collect();
    Report {
        file: file_name.to_owned(),
        format: inventory.format.to_string(),
        application: inventory
            .subject
            .clone()
            .unwrap_or_else(|| file_name.to_owned()),
        components: inventory.components.len(),
        matches,
        uninterpreted: inventory
            .skipped
            .iter()
            .map(|s| Uninterpreted {
                component: s.reference.clone(),
                why: s.why.clone(),
            })
            .collect(),
    }
}

/// A dependency path's references as people read them: `name@version`,
/// the SBOM's subject by its name.
pub fn path_labels(inventory: &Inventory, path: &[String]) -> Vec<String> {
    path.iter()
        .map(|reference| match inventory.component(reference) {
            Some(c) => component_label(c),
            None if inventory.subject_ref.as_deref() == Some(reference.as_str()) => inventory
                .subject
                .clone()
                .unwrap_or_else(|| reference.to_owned()),
            None => reference.to_owned(),
        })
        .collect()
}

/// `name@version` (a component without version: its name).
fn component_label(c: &Component) -> String {
    match &c.version {
        Some(v) => format!("{}@{v}", c.name),
        None => c.name.clone(),
    }
}

/// An index of the held indicators about `components` only.
fn index_for<'a>(
    components: impl Iterator<Item = &'a Component>,
    lookup: impl FnOnce(
        &[String],
        &[String],
    ) -> Result<Vec<(ItemSummary, String, Vec<String>)>, AgentError>,
) -> Result<Index<IndicatorMeta>, AgentError> {
    let mut keys = std::collections::BTreeSet::new();
    let mut names = std::collections::BTreeSet::new();
    for c in components {
        match &c.identity {
            Identity::Purl(p) => keys.insert(p.package_key()),
            Identity::NameOnly { .. } => names.insert(loose_name(&c.name)),
        };
    }
    let keys: Vec<String> = keys.into_iter().collect();
    let names: Vec<String> = names.into_iter().collect();
    let mut index = Index::new();
    for (item, purl, versions) in lookup(&keys, &names)? {
        if let Some(a) = advisory(item, purl, &versions) {
            index.insert(a);
        }
    }
    Ok(index)
}

fn found(
    dependency: String,
    component: &Component,
    advisory: &Advisory<IndicatorMeta>,
    why: &Why,
    path: Option<Vec<String>>,
) -> Match {
    let item = &advisory.meta.item;
    Match {
        dependency,
        version: component.version.clone().unwrap_or_default(),
        indicator_id: item.id.clone(),
        indicator_value: advisory.meta.purl.clone(),
        title: item.title.clone(),
        tlp: item.tlp.clone(),
        severity: item.severity.clone(),
        source: item.source.clone(),
        certain: why.is_certain(),
        why: why.to_string(),
        purl: match &component.identity {
            Identity::Purl(p) => Some(p.to_string()),
            Identity::NameOnly { .. } => None,
        },
        path,
    }
}

/// The VEX document formats `check --vex` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VexFormat {
    /// OpenVEX 0.2.
    Openvex,
    /// A CycloneDX 1.6 VEX BOM.
    Cyclonedx,
}

/// The findings of `reports` as one VEX document: `affected` for certain
/// findings, `under_investigation` otherwise; the indicator id as the
/// vulnerability and the component's purl as the product.
pub fn vex_document(
    format: VexFormat,
    reports: &[Report],
    author: &str,
    timestamp: String,
) -> serde_json::Value {
    use isac_packages::vex::{VexEntry, VexMeta, VexStatus};
    let id = uuid::Uuid::new_v4();
    let applications: Vec<&str> = reports.iter().map(|r| r.application.as_str()).collect();
    let meta = VexMeta {
        document_id: format!("urn:uuid:{id}"),
        serial_number: format!("urn:uuid:{id}"),
        author: author.to_owned(),
        timestamp,
        tool_name: "member-agent".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        subject: (applications.len() == 1).then(|| applications[0].to_owned()),
    };
    let entries: Vec<VexEntry> = reports
        .iter()
        .flat_map(|r| &r.matches)
        .map(|m| VexEntry {
            vulnerability: m.indicator_id.clone(),
            description: Some(m.title.clone()),
            purl: m.purl.clone(),
            name: m.dependency.clone(),
            version: (!m.version.is_empty()).then(|| m.version.clone()),
            status: if m.certain {
                VexStatus::Affected
            } else {
                VexStatus::UnderInvestigation
            },
            detail: m.why.clone(),
        })
        .collect();
    match format {
        VexFormat::Openvex => isac_packages::vex::openvex(&meta, &entries),
        VexFormat::Cyclonedx => isac_packages::vex::cyclonedx(&meta, &entries),
    }
}

/// An indicator's package and affected versions; `None` when its purl is
/// not one (it names no package, so nothing can match it).
pub fn advisory(
    item: ItemSummary,
    purl: String,
    versions: &[String],
) -> Option<Advisory<IndicatorMeta>> {
    let package: Purl = purl.parse().ok()?;
    let eco = package.ecosystem();
    Some(Advisory {
        affected: AffectedVersions::from_statement(eco, package.version(), versions),
        package: package.package(),
        meta: IndicatorMeta { item, purl },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-12-02T00:00:00Z";
    const CDXGEN: &str = include_str!("../../packages/fixtures/sbom/cdxgen-cyclonedx.json");
    const SYFT: &str = include_str!("../../packages/fixtures/sbom/syft-cyclonedx.json");

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("agent.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn an_sbom_component_matches_with_its_application_and_path() {
        let (_dir, store) = store();
        store
            .insert_synthetic_package(
                "ind-1",
                1,
                "pkg:npm/flatmap-stream",
                &["0.1.1"],
                "valid",
                None,
            )
            .unwrap();
        // Neighbouring version, other package: no match.
        store
            .insert_synthetic_package("ind-2", 1, "pkg:npm/express", &["4.21.2"], "valid", None)
            .unwrap();
        let report = check_text(&store, NOW, "bom.json", CDXGEN).unwrap();
        assert_eq!(report.application, "online-banking@3.4.0");
        assert!(report.format.starts_with("CycloneDX"), "{}", report.format);
        assert_eq!(report.matches.len(), 1, "{:?}", report.matches);
        let m = &report.matches[0];
        assert_eq!((m.indicator_id.as_str(), m.certain), ("ind-1", true));
        assert_eq!(m.dependency, "pkg:npm/flatmap-stream");
        assert_eq!(m.version, "0.1.1");
        assert!(m.why.contains("0.1.1"), "{}", m.why);
        assert_eq!(
            m.path.as_deref().unwrap().last().map(String::as_str),
            Some("flatmap-stream@0.1.1")
        );
        assert!(m.path.as_ref().unwrap().len() >= 3, "{:?}", m.path);
    }

    #[test]
    fn retracted_expired_and_superseded_indicators_do_not_match() {
        let (_dir, store) = store();
        let purl = "pkg:pypi/Zope_Interface";
        store
            .insert_synthetic_package("gone", 1, purl, &[], "retracted", None)
            .unwrap();
        store
            .insert_synthetic_package("old", 1, purl, &[], "valid", Some("2026-12-01T00:00:00Z"))
            .unwrap();
        store
            .insert_synthetic_package("rev", 1, purl, &["6.0"], "valid", None)
            .unwrap();
        store
            .insert_synthetic_package("rev", 2, purl, &[">=7"], "valid", None)
            .unwrap();
        let report = check_text(&store, NOW, "sbom.json", SYFT).unwrap();
        assert!(report.matches.is_empty(), "{:?}", report.matches);
        // Unreadable components are named, not dropped.
        assert!(
            report
                .uninterpreted
                .iter()
                .any(|u| u.component == "broken-purl"),
            "{:?}",
            report.uninterpreted
        );
        // PyPI names with dots and capitals are one package.
        store
            .insert_synthetic_package("zope", 1, purl, &["<6.1"], "valid", None)
            .unwrap();
        let report = check_text(&store, NOW, "sbom.json", SYFT).unwrap();
        let ids: Vec<_> = report
            .matches
            .iter()
            .map(|m| m.indicator_id.as_str())
            .collect();
        assert_eq!(ids, ["zope"]);
        // A component without purl matches by name, uncertainly.
        store
            .insert_synthetic_package("pad", 1, "pkg:npm/left-pad", &[], "valid", None)
            .unwrap();
        let report = check_text(&store, NOW, "sbom.json", SYFT).unwrap();
        let pad = report
            .matches
            .iter()
            .find(|m| m.indicator_id == "pad")
            .unwrap();
        assert!(!pad.certain, "{pad:?}");
    }

    #[test]
    fn garbage_is_bad_input() {
        let (_dir, store) = store();
        for (name, text) in [
            ("x.json", "{\"not\": \"an sbom\"}"),
            ("bom.json", "garbage"),
        ] {
            let err = check_text(&store, NOW, name, text).unwrap_err();
            assert!(matches!(err, AgentError::Usage(_)), "{err:?}");
        }
    }

    /// `cargo test -p member-agent --lib check_speed -- --ignored --nocapture`:
    /// a 10,000-component SBOM against 100,000 held indicators. Prints
    /// the figures; asserts no time.
    #[test]
    #[ignore]
    fn check_speed() {
        let (_dir, store) = store();
        let started = std::time::Instant::now();
        store.in_one_transaction(|s| {
            for i in 0..100_000 {
                let purl = format!("pkg:npm/evil-{i}");
                s.insert_synthetic_package(
                    &format!("ind-{i}"),
                    1,
                    &purl,
                    &["<2.0.0"],
                    "valid",
                    None,
                )
                .unwrap();
            }
        });
        println!("100000 indicators inserted in {:?}", started.elapsed());
        let components: Vec<String> = (0..10_000)
            .map(|i| {
                // Every tenth component is one the indicators name.
                let name = if i % 10 == 0 { format!("evil-{i}") } else { format!("good-{i}") };
                format!(
                    r#"{{"bom-ref":"c{i}","type":"library","name":"{name}","version":"1.0.0","purl":"pkg:npm/{name}@1.0.0"}}"#
                )
            })
            .collect();
        let sbom = format!(
            r#"{{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"metadata":{{"component":{{"bom-ref":"app","type":"application","name":"app"}}}},"components":[{}]}}"#,
            components.join(",")
        );
        let started = std::time::Instant::now();
        let report = check_text(&store, NOW, "bom.json", &sbom).unwrap();
        println!(
            "10000-component SBOM checked against 100000 indicators in {:?}: {} matches",
            started.elapsed(),
            report.matches.len()
        );
        assert_eq!(report.matches.len(), 1_000);
    }
}
