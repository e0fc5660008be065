//! Software bills of materials read into one inventory: which application
//! (the SBOM's subject), which components (by purl where the SBOM gives one,
//! by name and version otherwise), and who depends on whom.
//!
//! Formats, detected by content, not by file name: CycloneDX JSON (1.2 to
//! 1.6; syft, cdxgen, Trivy), SPDX 2.2/2.3 JSON (GitHub's dependency-graph
//! export, syft), SPDX 2.x tag-value, SPDX 3.0 JSON-LD. CycloneDX XML is
//! recognised and refused by name.
//!
//! Nothing is dropped silently: a component that cannot be interpreted (no
//! name, a purl that does not parse) is listed in [`Inventory::skipped`]
//! with the reason. The reader is bounded: input size, component count and
//! nesting depth ([`Limits`]); the JSON parser's own recursion limit (128)
//! caps document depth.

mod cyclonedx;
mod spdx;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use crate::{Ecosystem, Purl};

/// How much one SBOM may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_components: usize,
    /// CycloneDX components nest; deeper than this is refused.
    pub max_nesting: usize,
    /// Dependency edges in all.
    pub max_edges: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 256 << 20,
            max_components: 500_000,
            max_nesting: 32,
            max_edges: 5_000_000,
        }
    }
}

/// What an inventory was read from; `Lockfile` is not an SBOM but a
/// lockfile's dependencies (the agent's `lockfile` readers), by file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SbomFormat {
    CycloneDxJson { spec_version: String },
    Spdx2Json { spdx_version: String },
    Spdx2TagValue { spdx_version: String },
    Spdx3JsonLd,
    Lockfile { name: String },
}

impl fmt::Display for SbomFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SbomFormat::CycloneDxJson { spec_version } => {
                write!(f, "CycloneDX {spec_version} JSON")
            }
            SbomFormat::Spdx2Json { spdx_version } => write!(f, "{spdx_version} JSON"),
            SbomFormat::Spdx2TagValue { spdx_version } => write!(f, "{spdx_version} tag-value"),
            SbomFormat::Spdx3JsonLd => f.write_str("SPDX 3.0 JSON-LD"),
            SbomFormat::Lockfile { name } => write!(f, "{name} (lockfile)"),
        }
    }
}

/// How a component is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// By its package URL (with the version the SBOM lists, if any).
    Purl(Purl),
    /// By name (and version) only: the ecosystem is a guess from the
    /// generator's hints, or unknown. Matches on it are uncertain.
    NameOnly { ecosystem: Option<Ecosystem> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The SBOM's own reference (CycloneDX `bom-ref`, SPDX `SPDXID` /
    /// `spdxId`), or `#N` (its position) when it has none.
    pub reference: String,
    pub name: String,
    pub version: Option<String>,
    pub identity: Identity,
}

/// A component the reader could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub reference: String,
    pub why: String,
}

#[derive(Debug, Clone)]
pub struct Inventory {
    pub format: SbomFormat,
    /// The application the SBOM describes (name, and version if given).
    pub subject: Option<String>,
    /// The subject's own reference, where the dependency graph starts.
    pub subject_ref: Option<String>,
    pub components: Vec<Component>,
    pub skipped: Vec<Skipped>,
    /// reference → references it depends on (or contains).
    pub depends_on: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SbomError {
    #[error("the file is {0} bytes; an SBOM may be at most {1}")]
    TooLarge(usize, usize),
    #[error("not a CycloneDX or SPDX document: {0}")]
    NotAnSbom(String),
    #[error("CycloneDX XML is not read; export CycloneDX JSON instead (e.g. `syft -o cyclonedx-json`, `cdxgen --format json`)")]
    CycloneDxXml,
    #[error("malformed {format}: {detail}")]
    Malformed { format: String, detail: String },
    #[error("more than {0} components")]
    TooManyComponents(usize),
    #[error("components nested more than {0} deep")]
    TooDeep(usize),
    #[error("more than {0} dependency edges")]
    TooManyEdges(usize),
}

/// Reads an SBOM in any supported format, with the default limits.
pub fn read(bytes: &[u8]) -> Result<Inventory, SbomError> {
    read_with(bytes, Limits::default())
}

pub fn read_with(bytes: &[u8], limits: Limits) -> Result<Inventory, SbomError> {
    if bytes.len() > limits.max_bytes {
        return Err(SbomError::TooLarge(bytes.len(), limits.max_bytes));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| SbomError::NotAnSbom(format!("not UTF-8 text ({e})")))?;
    let text = text.trim_start_matches('\u{feff}');
    let head = text.trim_start();
    if head.starts_with('<') {
        if head.contains("cyclonedx.org/schema/bom") || head.contains("<bom") {
            return Err(SbomError::CycloneDxXml);
        }
        return Err(SbomError::NotAnSbom(
            "an XML document that is not CycloneDX".into(),
        ));
    }
    if head.starts_with('{') {
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|e| SbomError::Malformed {
                format: "JSON".into(),
                detail: e.to_string(),
            })?;
        if doc.get("bomFormat").and_then(|v| v.as_str()) == Some("CycloneDX") {
            return cyclonedx::read(&doc, limits);
        }
        if doc.get("spdxVersion").is_some() {
            return spdx::read_json2(&doc, limits);
        }
        if is_spdx3(&doc) {
            return spdx::read_json3(&doc, limits);
        }
        return Err(SbomError::NotAnSbom(
            "a JSON document with neither `bomFormat: CycloneDX`, `spdxVersion` nor an SPDX 3 `@context`".into(),
        ));
    }
    if text
        .lines()
        .take(50)
        .any(|l| l.trim_start().starts_with("SPDXVersion:"))
    {
        return spdx::read_tag_value(text, limits);
    }
    Err(SbomError::NotAnSbom(
        "neither JSON nor SPDX tag-value (no `SPDXVersion:` line)".into(),
    ))
}

fn is_spdx3(doc: &serde_json::Value) -> bool {
    let mentions = |v: &serde_json::Value| v.as_str().is_some_and(|s| s.contains("spdx.org/rdf/3"));
    match doc.get("@context") {
        Some(serde_json::Value::Array(a)) => a.iter().any(mentions),
        Some(v) => mentions(v),
        None => false,
    }
}

/// Collects components, enforcing the limits, and turns what each format
/// found into [`Component`]s or [`Skipped`] rows.
pub(crate) struct Builder {
    limits: Limits,
    components: Vec<Component>,
    skipped: Vec<Skipped>,
    depends_on: BTreeMap<String, Vec<String>>,
    edges: usize,
}

/// What a format reader found for one component.
pub(crate) struct Found<'a> {
    pub reference: Option<&'a str>,
    pub name: Option<&'a str>,
    pub group: Option<&'a str>,
    pub version: Option<&'a str>,
    pub purl: Option<&'a str>,
    /// The generator's hint of the ecosystem when there is no purl
    /// (syft's `syft:package:type`, Trivy's `aquasecurity:trivy:PkgType`).
    pub ecosystem_hint: Option<&'a str>,
}

impl Builder {
    pub(crate) fn new(limits: Limits) -> Self {
        Builder {
            limits,
            components: Vec::new(),
            skipped: Vec::new(),
            depends_on: BTreeMap::new(),
            edges: 0,
        }
    }

    fn count(&self) -> usize {
        self.components.len() + self.skipped.len()
    }

    pub(crate) fn add(&mut self, found: Found<'_>) -> Result<(), SbomError> {
        if self.count() >= self.limits.max_components {
            return Err(SbomError::TooManyComponents(self.limits.max_components));
        }
        let reference = found
            .reference
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("#{}", self.count() + 1));
        let version = found
            .version
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "NOASSERTION")
            .map(str::to_owned);
        if let Some(text) = found.purl.map(str::trim).filter(|p| !p.is_empty()) {
            match text.parse::<Purl>() {
                Ok(purl) => {
                    let name = found
                        .name
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned)
                        .unwrap_or_else(|| purl.full_name());
                    let version = version.or_else(|| purl.version().map(str::to_owned));
                    self.components.push(Component {
                        reference,
                        name,
                        version,
                        identity: Identity::Purl(purl),
                    });
                }
                Err(e) => self.skipped.push(Skipped {
                    reference,
                    why: format!("purl does not parse: {e}"),
                }),
            }
            return Ok(());
        }
        let Some(name) = found.name.map(str::trim).filter(|n| !n.is_empty()) else {
            self.skipped.push(Skipped {
                reference,
                why: "no name and no purl".into(),
            });
            return Ok(());
        };
        let name = match found.group.map(str::trim).filter(|g| !g.is_empty()) {
            Some(group) => format!("{group}/{name}"),
            None => name.to_owned(),
        };
        self.components.push(Component {
            reference,
            name,
            version,
            identity: Identity::NameOnly {
                ecosystem: found.ecosystem_hint.and_then(ecosystem_from_hint),
            },
        });
        Ok(())
    }

    pub(crate) fn depends(&mut self, from: &str, to: &str) -> Result<(), SbomError> {
        self.edges += 1;
        if self.edges > self.limits.max_edges {
            return Err(SbomError::TooManyEdges(self.limits.max_edges));
        }
        self.depends_on
            .entry(from.to_owned())
            .or_default()
            .push(to.to_owned());
        Ok(())
    }

    pub(crate) fn nesting_limit(&self) -> usize {
        self.limits.max_nesting
    }

    pub(crate) fn finish(
        self,
        format: SbomFormat,
        subject: Option<String>,
        subject_ref: Option<String>,
    ) -> Inventory {
        let mut depends_on = self.depends_on;
        for children in depends_on.values_mut() {
            children.sort();
            children.dedup();
        }
        Inventory {
            format,
            subject,
            subject_ref,
            components: self.components,
            skipped: self.skipped,
            depends_on,
        }
    }
}

/// syft, Trivy and cdxgen name ecosystems in their own words.
fn ecosystem_from_hint(hint: &str) -> Option<Ecosystem> {
    let h = hint.to_ascii_lowercase();
    Some(match h.as_str() {
        "npm" | "node-pkg" | "yarn" | "pnpm" => Ecosystem::Npm,
        "python" | "python-pkg" | "pip" | "pipenv" | "poetry" | "pypi" => Ecosystem::PyPI,
        "java-archive" | "jar" | "pom" | "gradle" | "maven" => Ecosystem::Maven,
        "go-module" | "gomod" | "gobinary" | "golang" => Ecosystem::Go,
        "gem" | "gemspec" | "bundler" | "rubygems" => Ecosystem::RubyGems,
        "rust-crate" | "cargo" => Ecosystem::Cargo,
        "dotnet" | "nuget" | "packages-lock" => Ecosystem::NuGet,
        "php-composer" | "composer" => Ecosystem::Composer,
        "github-action" | "github-action-workflow" => Ecosystem::GitHub,
        _ => return None,
    })
}

impl Inventory {
    pub fn component(&self, reference: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.reference == reference)
    }

    /// The shortest dependency path from the subject to `reference`
    /// (references, subject first, `reference` last), or `None` when the
    /// SBOM records no path to it.
    pub fn dependency_path(&self, reference: &str) -> Option<Vec<String>> {
        let root = self.subject_ref.as_deref()?;
        if root == reference {
            return Some(vec![root.to_owned()]);
        }
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut queue = VecDeque::from([root]);
        while let Some(at) = queue.pop_front() {
            for child in self.depends_on.get(at).into_iter().flatten() {
                if child == root || parent.contains_key(child.as_str()) {
                    continue;
                }
                parent.insert(child, at);
                if child == reference {
                    let mut path = vec![child.as_str()];
                    let mut cur = child.as_str();
                    while let Some(p) = parent.get(cur) {
                        path.push(p);
                        cur = p;
                    }
                    path.reverse();
                    return Some(path.into_iter().map(str::to_owned).collect());
                }
                queue.push_back(child);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
