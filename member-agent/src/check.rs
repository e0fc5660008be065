//! `member-agent check FILE`: every dependency in a lockfile that may be
//! affected by a package indicator held in the verified local store.
//!
//! Dependencies become `isac_packages` components and are checked through
//! an `exposure::Index` of the held indicators, so names are compared by
//! their purl type's rules and versions in their ecosystem's order. A
//! version that cannot be told either way is reported as uncertain, never
//! taken as clean.

use std::path::Path;

use isac_packages::exposure::{Advisory, Index, Why};
use isac_packages::sbom::Component;
use isac_packages::{AffectedVersions, Purl};
use serde::Serialize;

use crate::error::AgentError;
use crate::localstore::ItemSummary;
use crate::lockfile::parse_lockfile;
use crate::sync::Agent;

/// Lockfiles larger than this are refused rather than read.
const MAX_LOCKFILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
pub struct Match {
    /// `ecosystem/namespace/name` of the dependency.
    pub dependency: String,
    pub version: String,
    pub indicator_id: String,
    pub indicator_value: String,
    pub title: String,
    pub tlp: String,
    pub severity: String,
    pub source: String,
    /// True when the version is affected for certain; false when it
    /// cannot be told (an unreadable version or range).
    pub certain: bool,
    /// Why it matched: the constraint that holds, or why it cannot be told.
    pub why: String,
}

/// What a finding is reported with: the indicator's facts.
#[derive(Debug, Clone)]
pub struct IndicatorMeta {
    pub item: ItemSummary,
    /// The purl as the indicator gives it.
    pub purl: String,
}

pub fn check_file(agent: &Agent, path: &Path) -> Result<Vec<Match>, AgentError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| AgentError::Usage(format!("{}: cannot read: {e}", path.display())))?;
    if meta.len() > MAX_LOCKFILE_BYTES {
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
    check_contents(agent, name, &contents)
}

/// Like [`check_file`], for lockfile text already in memory; `file_name`
/// (e.g. `package-lock.json`) picks the format.
pub fn check_contents(
    agent: &Agent,
    file_name: &str,
    contents: &str,
) -> Result<Vec<Match>, AgentError> {
    if contents.len() as u64 > MAX_LOCKFILE_BYTES {
        return Err(AgentError::Usage(format!(
            "{file_name} is larger than 64 MiB"
        )));
    }
    let deps = parse_lockfile(file_name, contents).map_err(|e| AgentError::Usage(e.to_string()))?;
    let index = held_index(agent)?;
    let mut out = Vec::new();
    for dep in &deps {
        let component = dep.component();
        for (advisory, why) in index.check_component(&component) {
            let dependency = match &dep.namespace {
                Some(ns) => format!("{}/{}/{}", dep.ecosystem, ns, dep.name),
                None => format!("{}/{}", dep.ecosystem, dep.name),
            };
            out.push(found(dependency, &component, advisory, &why));
        }
    }
    Ok(out)
}

fn found(
    dependency: String,
    component: &Component,
    advisory: &Advisory<IndicatorMeta>,
    why: &Why,
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
    }
}

/// The held package indicators, by package.
fn held_index(agent: &Agent) -> Result<Index<IndicatorMeta>, AgentError> {
    let indicators = agent
        .store
        .lock()
        .expect("local store lock")
        .package_indicators()?;
    let mut index = Index::new();
    for (item, purl, versions) in indicators {
        if let Some(advisory) = advisory(item, purl, &versions) {
            index.insert(advisory);
        }
    }
    Ok(index)
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
