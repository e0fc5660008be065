//! Cargo.lock and poetry.lock: `[[package]]` tables with `name` and
//! `version`, read by the `toml` crate (whose parser bounds nesting).

use serde::Deserialize;
use toml::{Spanned, Value};

use super::{Cx, Dependency, LockfileError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavour {
    Cargo,
    Poetry,
}

/// What both lockfiles hold, as far as we read them; other keys and
/// tables (`[package.dependencies]`, `files`, ...) are ignored.
#[derive(Deserialize)]
struct LockDocument {
    package: Option<Vec<Spanned<Package>>>,
    metadata: Option<Value>,
}

#[derive(Deserialize)]
struct Package {
    name: Option<Spanned<Value>>,
    version: Option<Spanned<Value>>,
}

/// 1-based line of byte offset `at`.
fn line_of(contents: &str, at: usize) -> usize {
    let at = at.min(contents.len());
    contents.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

pub(super) fn parse(
    cx: &Cx,
    contents: &str,
    ecosystem: &str,
    flavour: Flavour,
) -> Result<Vec<Dependency>, LockfileError> {
    let doc: LockDocument = toml::from_str(contents).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(contents, s.start));
        cx.syntax(line, e.message().to_owned())
    })?;
    let seen_any = doc.package.as_ref().is_some_and(|p| !p.is_empty());
    match flavour {
        Flavour::Cargo if !seen_any => {
            return Err(cx.invalid("no `[[package]]` entries: this does not look like a Cargo.lock"))
        }
        Flavour::Poetry if doc.package.is_none() && doc.metadata.is_none() => return Err(cx
            .invalid(
            "no `[[package]]` entries and no `[metadata]`: this does not look like a poetry.lock",
        )),
        _ => {}
    }
    let mut out = Vec::new();
    for package in doc.package.into_iter().flatten() {
        let block_line = line_of(contents, package.span().start);
        let package = package.into_inner();
        let field = |key: &str, value: Option<Spanned<Value>>| -> Result<String, LockfileError> {
            let value = value.ok_or_else(|| {
                cx.syntax(block_line, format!("this `[[package]]` has no `{key}`"))
            })?;
            let line = line_of(contents, value.span().start);
            match value.into_inner() {
                Value::String(s)
                    if !s.is_empty() && !s.chars().any(|c| c.is_control() || c.is_whitespace()) =>
                {
                    Ok(s)
                }
                Value::String(_) => Err(cx.syntax(
                    line,
                    format!("`{key}` must be non-empty, without spaces or control characters"),
                )),
                _ => Err(cx.syntax(line, format!("`{key}` must be a string"))),
            }
        };
        let name = field("name", package.name)?;
        let version = field("version", package.version)?;
        out.push(Dependency {
            ecosystem: ecosystem.into(),
            namespace: None,
            name,
            version,
        });
    }
    Ok(out)
}
