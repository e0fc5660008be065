//! Our own `versions` strings, as indicator statements and the CLI carry
//! them: `*`, an exact version (`1.0.0`, `v1.0.0`, `=1.0.0`, `==1.0.0`),
//! comparators that must all hold separated by spaces or commas
//! (`>=1.2.0 <1.2.5`, `>=0, <2.0.0`, `<=3.1`, `!=1.0.1`), `||` between
//! alternatives; for npm and Cargo also node-semver's sugar (`^1.2.3`,
//! `~1.2`, `1.x`, `1.0.0 - 2.0.0`); for PyPI also `~=1.4.5` and `==1.4.*`.

use std::fmt;

use super::Constraint;
use crate::version::Version;
use crate::{shown, Ecosystem};

/// Longest `versions` entry read, in bytes.
pub const MAX_ENTRY_LEN: usize = 1024;
/// Most comparators in one alternative, and alternatives in one entry.
const MAX_PARTS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// `op version`; a version of `*` always holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Comparator {
    pub op: Op,
    pub version: String,
}

impl fmt::Display for Comparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.op.as_str(), self.version)
    }
}

impl Comparator {
    pub(super) fn holds(&self, eco: Ecosystem, v: &Version) -> Result<bool, String> {
        if self.version == "*" {
            return Ok(true);
        }
        let bound = Version::parse(eco, &self.version).map_err(|e| e.to_string())?;
        let ord = v.compare(&bound).ok_or("versions of two schemes")?;
        Ok(match self.op {
            Op::Eq => ord.is_eq(),
            Op::Ne => ord.is_ne(),
            Op::Lt => ord.is_lt(),
            Op::Le => ord.is_le(),
            Op::Gt => ord.is_gt(),
            Op::Ge => ord.is_ge(),
        })
    }
}

fn unreadable(text: &str, reason: impl Into<String>) -> Constraint {
    Constraint::Unreadable {
        text: shown(text),
        reason: reason.into(),
    }
}

const OPS: [(&str, Option<Op>); 9] = [
    ("===", Some(Op::Eq)),
    ("==", Some(Op::Eq)),
    ("!=", Some(Op::Ne)),
    (">=", Some(Op::Ge)),
    ("<=", Some(Op::Le)),
    ("~=", None), // PEP 440 compatible release: desugared below
    (">", Some(Op::Gt)),
    ("<", Some(Op::Lt)),
    ("=", Some(Op::Eq)),
];

fn is_exact_looking(eco: Option<Ecosystem>, s: &str) -> bool {
    let sugar = matches!(eco, Some(Ecosystem::Npm | Ecosystem::Cargo))
        && s.split('.').any(|p| matches!(p, "x" | "X" | "*"));
    !s.is_empty()
        && s != "*"
        && !sugar
        && !s.starts_with(['<', '>', '=', '!', '~', '^'])
        && !s.contains(|c: char| c.is_whitespace() || c == ',' || c == '|')
}

/// PEP 440 `V.*` prefix: `1.4.*` is `>=1.4.dev0, <1.5.dev0`.
fn pep440_prefix(prefix: &str) -> Result<Vec<Comparator>, String> {
    let nums: Vec<u64> = prefix
        .split('.')
        .map(|p| p.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{}.*` is not a release prefix", shown(prefix)))?;
    let mut upper = nums.clone();
    let last = upper.last_mut().ok_or("empty prefix")?;
    *last = last.checked_add(1).ok_or("prefix out of range")?;
    let join = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
    Ok(vec![
        Comparator {
            op: Op::Ge,
            version: format!("{}.dev0", join(&nums)),
        },
        Comparator {
            op: Op::Lt,
            version: format!("{}.dev0", join(&upper)),
        },
    ])
}

/// PEP 440 `~=V.N`: `>=V.N, ==V.*`.
fn pep440_compatible(v: &str) -> Result<Vec<Comparator>, String> {
    let release: Vec<&str> = v
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap_or("")
        .trim_end_matches('.')
        .split('.')
        .collect();
    if release.len() < 2 {
        return Err("`~=` needs at least two release segments (`~=1.4`)".into());
    }
    let mut out = vec![Comparator {
        op: Op::Ge,
        version: v.to_owned(),
    }];
    out.extend(pep440_prefix(&release[..release.len() - 1].join("."))?);
    out.remove(1); // the prefix's lower bound is below `v`
    Ok(out)
}

/// One alternative: comparators that must all hold.
fn comparators(eco: Option<Ecosystem>, alt: &str) -> Result<Vec<Comparator>, String> {
    let mut out = Vec::new();
    let mut tokens = alt
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty());
    while let Some(token) = tokens.next() {
        let (op_text, op, rest) = OPS
            .iter()
            .find_map(|(text, op)| token.strip_prefix(text).map(|rest| (*text, *op, rest)))
            .unwrap_or(("", Some(Op::Eq), token));
        // `>= 1.2.0`: the operator and its version are separate tokens.
        let bound = if rest.is_empty() && !op_text.is_empty() {
            tokens
                .next()
                .ok_or_else(|| format!("`{op_text}` has no version after it"))?
        } else {
            rest
        };
        if bound.starts_with(['<', '>', '=', '!', '~', '^']) {
            return Err(format!("`{}` is not a version", shown(bound)));
        }
        let pypi = eco == Some(Ecosystem::PyPI);
        match (op, bound.strip_suffix(".*")) {
            (None, _) if pypi => out.extend(pep440_compatible(bound)?),
            (None, _) => return Err("`~=` is PEP 440 (PyPI) syntax".into()),
            (Some(Op::Eq), Some(prefix)) if pypi => out.extend(pep440_prefix(prefix)?),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "wildcard `{}` is only read as `==` in PyPI",
                    shown(bound)
                ))
            }
            (Some(op), None) => out.push(Comparator {
                op,
                version: bound.to_owned(),
            }),
        }
        if out.len() > MAX_PARTS {
            return Err(format!("more than {MAX_PARTS} comparators"));
        }
    }
    if out.is_empty() {
        return Err("an empty alternative".into());
    }
    Ok(out)
}

/// An npm-style range for the semver ecosystems, if node-semver's
/// grammar reads it.
fn npm_range(entry: &str) -> Result<Constraint, String> {
    // node-semver has neither `==` nor commas; Cargo writes both.
    let text = entry.replace("==", "=").replace(',', " ");
    Ok(Constraint::NpmRange {
        text: entry.to_owned(),
        comparators: super::npm::desugar(&text)?,
    })
}

/// One `versions` entry of a statement, read for `eco`: one constraint per
/// `||` alternative. What cannot be read becomes [`Constraint::Unreadable`],
/// kept so that matching says "unknown" rather than dropping it.
pub fn parse_entry(eco: Option<Ecosystem>, entry: &str) -> Vec<Constraint> {
    let entry = entry.trim();
    if entry.len() > MAX_ENTRY_LEN {
        return vec![unreadable(
            entry,
            format!("longer than {MAX_ENTRY_LEN} bytes"),
        )];
    }
    if entry.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return vec![unreadable(entry, "holds control characters")];
    }
    if entry.is_empty() {
        return vec![unreadable(entry, "empty")];
    }
    if entry.split("||").count() > MAX_PARTS {
        return vec![unreadable(
            entry,
            format!("more than {MAX_PARTS} alternatives"),
        )];
    }
    entry
        .split("||")
        .map(str::trim)
        .flat_map(|alt| {
            // `1.0.0, 1.0.1`: equalities that cannot all hold are a list.
            if let Ok(cs) = comparators(eco, alt) {
                let plain = |c: &Comparator| {
                    c.op == Op::Eq
                        && c.version != "-"
                        && !c.version.starts_with(['^', '~'])
                        && !c.version.split('.').any(|p| matches!(p, "x" | "X" | "*"))
                };
                if cs.len() > 1 && cs.iter().all(plain) {
                    return cs
                        .iter()
                        .map(|c| alternative(eco, &c.version, entry))
                        .collect();
                }
            }
            vec![alternative(eco, alt, entry)]
        })
        .collect()
}

/// One `||` alternative of `entry`.
fn alternative(eco: Option<Ecosystem>, alt: &str, entry: &str) -> Constraint {
    let semver_family = matches!(eco, Some(Ecosystem::Npm | Ecosystem::Cargo));
    if alt == "*" {
        return Constraint::Any;
    }
    // node-semver reads "" as `*`; an empty alternative is a typo.
    if alt.is_empty() {
        return unreadable(entry, "an empty `||` alternative");
    }
    if is_exact_looking(eco, alt) {
        // npm reads `1` and `1.2` as ranges (`1.x`), not versions.
        let partial = semver_family && nodejs_semver::Version::parse(alt).is_err();
        if let Some(range) = partial.then(|| npm_range(alt).ok()).flatten() {
            return range;
        }
        return Constraint::Exact(alt.to_owned());
    }
    if semver_family {
        // node-semver's grammar first; then our comparators, for `!=`.
        return match (npm_range(alt), comparators(eco, alt)) {
            (Ok(range), _) => range,
            (Err(_), Ok(cs)) => Constraint::Comparators(cs),
            (Err(why), Err(_)) => unreadable(alt, why),
        };
    }
    match comparators(eco, alt) {
        Ok(cs) => {
            if cs.iter().any(|c| c.version == "-") {
                return unreadable(alt, "`A - B` ranges are npm syntax");
            }
            if cs.len() == 1 && cs[0].op == Op::Eq && cs[0].version != "*" {
                return Constraint::Exact(cs[0].version.clone());
            }
            Constraint::Comparators(cs)
        }
        Err(why) => unreadable(alt, why),
    }
}
