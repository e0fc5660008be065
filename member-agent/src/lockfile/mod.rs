//! Dependency lockfiles, read to answer "do I depend on something a member
//! warned about?" (`member-agent check FILE`).
//!
//! [`parse_lockfile`] turns a package-lock.json / npm-shrinkwrap.json,
//! Cargo.lock, poetry.lock, requirements*.txt or go.sum into a list of
//! [`Dependency`]s (one module per format), and [`matches`] says whether one
//! of them is affected by a package indicator (a purl plus a list of
//! affected versions or ranges), by `isac_packages`' rules: the purl type's
//! name normalisation and the ecosystem's own version order and ranges.
//!
//! Lockfiles come from anywhere (a pull request, a downloaded project), so
//! every parser treats its input as hostile: files over
//! [`MAX_LOCKFILE_BYTES`] are refused, work is linear in the input (no
//! recursion on attacker-controlled nesting), malformed input is an error that
//! says where, and nothing panics. Nothing here touches the disk or network.

mod go;
mod npm;
mod pypi;
#[cfg(test)]
mod tests;
mod toml_lock;

use std::fmt;

use isac_packages::sbom::{Component, Identity};
use isac_packages::{AffectedVersions, Purl, Verdict};

/// Larger lockfiles are refused rather than parsed.
pub const MAX_LOCKFILE_BYTES: usize = 64 * 1024 * 1024;

/// One resolved dependency: a package at an exact version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dependency {
    /// The purl type: `npm`, `cargo`, `pypi` or `golang`.
    pub ecosystem: String,
    /// npm scope (`@scope`) or the Go module path up to its last `/`.
    pub namespace: Option<String>,
    /// The name as the lockfile spells it (not normalised).
    pub name: String,
    /// The version as the lockfile spells it (Go versions keep their `v`).
    pub version: String,
}

impl fmt::Display for Dependency {
    /// `@scope/name@1.2.3 (npm)`, `github.com/foo/bar@v1.2.3 (golang)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        write!(f, "{}@{} ({})", self.name, self.version, self.ecosystem)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockfileError {
    #[error(
        "don't know how to read `{file_name}`: supported lockfiles are package-lock.json, \
         npm-shrinkwrap.json, Cargo.lock, poetry.lock, go.sum, requirements.txt and \
         requirements*.txt (keep the original file name)"
    )]
    UnknownFormat { file_name: String },
    #[error("{file_name} is {size} bytes; lockfiles over {limit} bytes are refused")]
    TooLarge {
        file_name: String,
        size: usize,
        limit: usize,
    },
    #[error(
        "{file_name}, line {}, column {}: not valid JSON: {}",
        .source.line(),
        .source.column(),
        json_problem(.source)
    )]
    Json {
        file_name: String,
        source: serde_json::Error,
    },
    #[error("{file_name}: {message}")]
    Invalid { file_name: String, message: String },
    #[error("{file_name}, line {line}: {message}")]
    Syntax {
        file_name: String,
        line: usize,
        message: String,
    },
}

/// What a JSON parser found wrong, in words, without the position (the
/// message names line and column itself).
fn json_problem(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let what = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(w, _)| w);
    match e.classify() {
        serde_json::error::Category::Eof => format!(
            "the file ends before the JSON is complete ({what}); it may have been cut short"
        ),
        serde_json::error::Category::Syntax => {
            format!("{what}; a comma, quote or bracket may be missing or extra here")
        }
        _ => what.to_owned(),
    }
}

/// The lockfile formats we read, chosen by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Npm,
    Cargo,
    Poetry,
    Requirements,
    GoSum,
}

fn detect(file_name: &str) -> Option<Format> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let lower = base.to_ascii_lowercase();
    match lower.as_str() {
        "package-lock.json" | "npm-shrinkwrap.json" => Some(Format::Npm),
        "cargo.lock" => Some(Format::Cargo),
        "poetry.lock" => Some(Format::Poetry),
        "go.sum" => Some(Format::GoSum),
        _ if lower.starts_with("requirements") && lower.ends_with(".txt") => {
            Some(Format::Requirements)
        }
        _ => None,
    }
}

/// True when [`parse_lockfile`] knows the format of a file with this name
/// (a path is fine: only its last component counts).
pub fn is_lockfile_name(file_name: &str) -> bool {
    detect(file_name).is_some()
}

/// Detects the format from the file name (package-lock.json,
/// npm-shrinkwrap.json, Cargo.lock, poetry.lock, go.sum, requirements.txt
/// and requirements*.txt; only the last path component counts) and parses
/// `contents`. The result is sorted and holds each dependency once.
pub fn parse_lockfile(file_name: &str, contents: &str) -> Result<Vec<Dependency>, LockfileError> {
    let format = detect(file_name).ok_or_else(|| LockfileError::UnknownFormat {
        file_name: shown(file_name),
    })?;
    let file_name = shown(file_name);
    if contents.len() > MAX_LOCKFILE_BYTES {
        return Err(LockfileError::TooLarge {
            file_name,
            size: contents.len(),
            limit: MAX_LOCKFILE_BYTES,
        });
    }
    let contents = contents.strip_prefix('\u{feff}').unwrap_or(contents);
    let cx = Cx { file_name };
    let mut deps = match format {
        Format::Npm => npm::parse(&cx, contents)?,
        Format::Cargo => toml_lock::parse(&cx, contents, "cargo", toml_lock::Flavour::Cargo)?,
        Format::Poetry => toml_lock::parse(&cx, contents, "pypi", toml_lock::Flavour::Poetry)?,
        Format::Requirements => pypi::parse(&cx, contents)?,
        Format::GoSum => go::parse(&cx, contents)?,
    };
    deps.sort();
    deps.dedup();
    Ok(deps)
}

/// Echo at most a short, escaped prefix of attacker-controlled text.
pub(super) fn shown(s: &str) -> String {
    const MAX: usize = 80;
    let head: String = s.chars().take(MAX).collect();
    let mut out = head.escape_debug().to_string();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// What the parsers need to build errors.
pub(super) struct Cx {
    pub(super) file_name: String,
}

impl Cx {
    pub(super) fn invalid(&self, message: impl Into<String>) -> LockfileError {
        LockfileError::Invalid {
            file_name: self.file_name.clone(),
            message: message.into(),
        }
    }

    pub(super) fn syntax(&self, line: usize, message: impl Into<String>) -> LockfileError {
        LockfileError::Syntax {
            file_name: self.file_name.clone(),
            line,
            message: message.into(),
        }
    }
}

// === Matching ===

impl Dependency {
    /// The dependency's purl (with its version), normalised by the purl
    /// type's rules; `None` for a name no purl can carry.
    pub fn purl(&self) -> Option<Purl> {
        Purl::new(&self.ecosystem, self.namespace.as_deref(), &self.name)
            .and_then(|p| p.with_version(&self.version))
            .ok()
    }

    /// The dependency as an inventory component, for `isac_packages::exposure`.
    /// A name no purl can carry stays a name-only component of its
    /// ecosystem, so that it is still compared (uncertainly), not dropped.
    pub fn component(&self) -> Component {
        let reference = self.to_string();
        match self.purl() {
            Some(purl) => Component {
                reference,
                name: purl.full_name(),
                version: Some(self.version.clone()),
                identity: Identity::Purl(purl),
            },
            None => Component {
                reference,
                name: match &self.namespace {
                    Some(ns) => format!("{ns}/{}", self.name),
                    None => self.name.clone(),
                },
                version: Some(self.version.clone()),
                identity: Identity::NameOnly {
                    ecosystem: isac_packages::Ecosystem::from_purl_type(&self.ecosystem),
                },
            },
        }
    }
}

/// Whether `dep` is affected by a package indicator for `purl` whose
/// affected versions are `versions` (the statement's fields).
///
/// The package must be the same once both are normalised by the purl
/// type's rules (`Purl::package_key`: PyPI per PEP 503, npm scopes
/// case-insensitively and with or without percent-encoding, Go module paths
/// whole and case-insensitively, Cargo with `-` and `_` equal).
///
/// Versions are read by `AffectedVersions::from_statement`: with an empty
/// `versions`, a purl version means exactly that version and no purl
/// version every version; otherwise any entry may hold (exact versions,
/// comparators, `||`, npm and Cargo `^`/`~` ranges, PEP 440 `~=` and
/// `==1.4.*`), compared in the ecosystem's own order. A version or entry
/// that cannot be read is [`Verdict::Unknown`], never "not affected"; an
/// unparseable purl is about no package, so it is `NotAffected`.
pub fn matches(purl: &str, versions: &[String], dep: &Dependency) -> Verdict {
    let Ok(purl) = purl.parse::<Purl>() else {
        return Verdict::NotAffected;
    };
    let Some(found) = dep.purl() else {
        return Verdict::NotAffected;
    };
    if !purl.same_package(&found) {
        return Verdict::NotAffected;
    }
    let eco = purl.ecosystem();
    AffectedVersions::from_statement(eco, purl.version(), versions).matches(eco, &dep.version)
}
