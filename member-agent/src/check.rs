//! `member-agent check FILE`: every dependency in a lockfile that matches a
//! package indicator held in the verified local store.

use std::path::Path;

use serde::Serialize;

use crate::error::AgentError;
use crate::lockfile::{matches, parse_lockfile};
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
    let indicators = agent
        .store
        .lock()
        .expect("local store lock")
        .package_indicators()?;
    let mut out = Vec::new();
    for dep in &deps {
        for (item, purl, versions) in &indicators {
            if matches(purl, versions, dep) {
                let dependency = match &dep.namespace {
                    Some(ns) => format!("{}/{}/{}", dep.ecosystem, ns, dep.name),
                    None => format!("{}/{}", dep.ecosystem, dep.name),
                };
                out.push(Match {
                    dependency,
                    version: dep.version.clone(),
                    indicator_id: item.id.clone(),
                    indicator_value: purl.clone(),
                    title: item.title.clone(),
                    tlp: item.tlp.clone(),
                    severity: item.severity.clone(),
                    source: item.source.clone(),
                });
            }
        }
    }
    Ok(out)
}
