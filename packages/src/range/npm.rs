//! node-semver's range grammar desugared into comparators, as node-semver
//! (`classes/range.js`) does it with `includePrerelease: true`: caret,
//! tilde (`~`, `~>`), x-ranges (`1.x`, `1.2.*`, `1`, `*`), hyphen ranges
//! and primitives (`>=1.2`, `<2`). With pre-releases included, partial
//! lower bounds take `-0` (`1.x` is `>=1.0.0-0 <2.0.0-0`): a pre-release
//! of a line in the range is in the range.

use super::syntax::{Comparator, Op};

/// A version with parts that may be wildcards (`None`): `1`, `1.x`,
/// `1.2.*`, `1.2.3-rc.1`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: Option<String>,
}

fn part(s: Option<&str>) -> Result<Option<u64>, String> {
    match s {
        None | Some("x" | "X" | "*") => Ok(None),
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("`{n}` is too large")),
        Some(other) => Err(format!("`{other}` is not a version part")),
    }
}

fn partial(s: &str) -> Result<Partial, String> {
    let s = s.trim_start_matches(['v', '=', ' ']);
    let s = s.split_once('+').map_or(s, |(v, _build)| v);
    let (core, pre) = match s.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (s, None),
    };
    let mut parts = core.split('.');
    let (major, minor, patch) = (parts.next(), parts.next(), parts.next());
    if parts.next().is_some() {
        return Err(format!("`{s}` has more than three parts"));
    }
    let p = Partial {
        major: part(major)?,
        minor: part(minor)?,
        patch: part(patch)?,
        pre: pre.map(str::to_owned),
    };
    // A wildcard hides what follows it; a pre-release needs all three parts.
    let wild_then_number = (p.major.is_none() && (p.minor.is_some() || p.patch.is_some()))
        || (p.minor.is_none() && p.patch.is_some());
    if wild_then_number {
        return Err(format!("`{s}` has a number after a wildcard"));
    }
    if let Some(pre) = &p.pre {
        if p.patch.is_none()
            || pre.is_empty()
            || !pre
                .split('.')
                .all(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(format!("`{s}` has a bad pre-release"));
        }
    }
    Ok(p)
}

fn cmp(op: Op, v: String) -> Comparator {
    Comparator { op, version: v }
}

fn bump(n: u64) -> Result<u64, String> {
    n.checked_add(1)
        .ok_or_else(|| "a version part overflows".into())
}

/// `~`: patch-level changes (minor-level if only the major is given).
fn tilde(p: &Partial) -> Result<Vec<Comparator>, String> {
    Ok(match (p.major, p.minor, p.patch) {
        (None, _, _) => vec![],
        (Some(ma), None, _) => vec![
            cmp(Op::Ge, format!("{ma}.0.0")),
            cmp(Op::Lt, format!("{}.0.0-0", bump(ma)?)),
        ],
        (Some(ma), Some(mi), None) => vec![
            cmp(Op::Ge, format!("{ma}.{mi}.0")),
            cmp(Op::Lt, format!("{ma}.{}.0-0", bump(mi)?)),
        ],
        (Some(ma), Some(mi), Some(pa)) => {
            let from = match &p.pre {
                Some(pre) => format!("{ma}.{mi}.{pa}-{pre}"),
                None => format!("{ma}.{mi}.{pa}"),
            };
            vec![
                cmp(Op::Ge, from),
                cmp(Op::Lt, format!("{ma}.{}.0-0", bump(mi)?)),
            ]
        }
    })
}

/// `^`: changes that keep the left-most non-zero part.
fn caret(p: &Partial) -> Result<Vec<Comparator>, String> {
    Ok(match (p.major, p.minor, p.patch) {
        (None, _, _) => vec![],
        (Some(ma), None, _) => vec![
            cmp(Op::Ge, format!("{ma}.0.0-0")),
            cmp(Op::Lt, format!("{}.0.0-0", bump(ma)?)),
        ],
        (Some(0), Some(mi), None) => vec![
            cmp(Op::Ge, format!("0.{mi}.0-0")),
            cmp(Op::Lt, format!("0.{}.0-0", bump(mi)?)),
        ],
        (Some(ma), Some(mi), None) => vec![
            cmp(Op::Ge, format!("{ma}.{mi}.0-0")),
            cmp(Op::Lt, format!("{}.0.0-0", bump(ma)?)),
        ],
        (Some(ma), Some(mi), Some(pa)) => {
            let from = match &p.pre {
                Some(pre) => format!("{ma}.{mi}.{pa}-{pre}"),
                None if ma == 0 => format!("{ma}.{mi}.{pa}-0"),
                None => format!("{ma}.{mi}.{pa}"),
            };
            let to = match (ma, mi) {
                (0, 0) => format!("0.0.{}-0", bump(pa)?),
                (0, _) => format!("0.{}.0-0", bump(mi)?),
                _ => format!("{}.0.0-0", bump(ma)?),
            };
            vec![cmp(Op::Ge, from), cmp(Op::Lt, to)]
        }
    })
}

/// A primitive or x-range comparator: `op` and a partial version.
fn primitive(op: Option<Op>, p: &Partial) -> Result<Vec<Comparator>, String> {
    let any_x = p.patch.is_none();
    let op = match op {
        Some(Op::Eq) if any_x => None,
        other => other,
    };
    let Some(ma) = p.major else {
        return Ok(match op {
            // `>*` and `<*`: nothing.
            Some(Op::Gt | Op::Lt) => vec![cmp(Op::Lt, "0.0.0-0".into())],
            _ => vec![],
        });
    };
    if !any_x {
        let full = match &p.pre {
            Some(pre) => format!(
                "{ma}.{}.{}-{pre}",
                p.minor.unwrap_or(0),
                p.patch.unwrap_or(0)
            ),
            None => format!("{ma}.{}.{}", p.minor.unwrap_or(0), p.patch.unwrap_or(0)),
        };
        return Ok(vec![cmp(op.unwrap_or(Op::Eq), full)]);
    }
    Ok(match (op, p.minor) {
        (Some(op), minor) => {
            let (mut ma, mut mi) = (ma, minor.unwrap_or(0));
            let op = match op {
                Op::Gt => {
                    match minor {
                        None => (ma, mi) = (bump(ma)?, 0),
                        Some(_) => mi = bump(mi)?,
                    }
                    Op::Ge
                }
                Op::Le => {
                    match minor {
                        None => ma = bump(ma)?,
                        Some(_) => mi = bump(mi)?,
                    }
                    Op::Lt
                }
                other => other,
            };
            vec![cmp(op, format!("{ma}.{mi}.0-0"))]
        }
        (None, None) => vec![
            cmp(Op::Ge, format!("{ma}.0.0-0")),
            cmp(Op::Lt, format!("{}.0.0-0", bump(ma)?)),
        ],
        (None, Some(mi)) => vec![
            cmp(Op::Ge, format!("{ma}.{mi}.0-0")),
            cmp(Op::Lt, format!("{ma}.{}.0-0", bump(mi)?)),
        ],
    })
}

/// `A - B`, inclusive, partial ends widened.
fn hyphen(from: &Partial, to: &Partial) -> Result<Vec<Comparator>, String> {
    let mut out = Vec::new();
    match (from.major, from.minor, from.patch) {
        (None, _, _) => {}
        (Some(ma), None, _) => out.push(cmp(Op::Ge, format!("{ma}.0.0-0"))),
        (Some(ma), Some(mi), None) => out.push(cmp(Op::Ge, format!("{ma}.{mi}.0-0"))),
        (Some(ma), Some(mi), Some(pa)) => out.push(cmp(
            Op::Ge,
            match &from.pre {
                Some(pre) => format!("{ma}.{mi}.{pa}-{pre}"),
                None => format!("{ma}.{mi}.{pa}-0"),
            },
        )),
    }
    match (to.major, to.minor, to.patch) {
        (None, _, _) => {}
        (Some(ma), None, _) => out.push(cmp(Op::Lt, format!("{}.0.0-0", bump(ma)?))),
        (Some(ma), Some(mi), None) => out.push(cmp(Op::Lt, format!("{ma}.{}.0-0", bump(mi)?))),
        (Some(ma), Some(mi), Some(pa)) => out.push(match &to.pre {
            Some(pre) => cmp(Op::Le, format!("{ma}.{mi}.{pa}-{pre}")),
            None => cmp(Op::Lt, format!("{ma}.{mi}.{}-0", bump(pa)?)),
        }),
    }
    Ok(out)
}

/// One comparator token (`^1.2`, `~>1`, `>=1.x`, `1.2.3`).
fn token(t: &str) -> Result<Vec<Comparator>, String> {
    if let Some(rest) = t.strip_prefix("~>").or_else(|| t.strip_prefix('~')) {
        return tilde(&partial(rest)?);
    }
    if let Some(rest) = t.strip_prefix('^') {
        return caret(&partial(rest)?);
    }
    const OPS: [(&str, Op); 5] = [
        (">=", Op::Ge),
        ("<=", Op::Le),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
    ];
    let (op, rest) = OPS
        .iter()
        .find_map(|(text, op)| t.strip_prefix(text).map(|rest| (Some(*op), rest)))
        .unwrap_or((None, t));
    primitive(op, &partial(rest)?)
}

/// One `||`-free alternative as comparators that must all hold (none:
/// every version).
pub(super) fn desugar(alt: &str) -> Result<Vec<Comparator>, String> {
    let alt = alt.trim();
    if let Some((from, to)) = alt.split_once(" - ") {
        return hyphen(&partial(from.trim())?, &partial(to.trim())?);
    }
    // node-semver's comparator trim: `>= 1.2` is `>=1.2`, `~ 1` is `~1`.
    let mut tokens: Vec<String> = Vec::new();
    let mut pending_op = String::new();
    for t in alt.split_whitespace() {
        if t.bytes()
            .all(|b| matches!(b, b'<' | b'>' | b'=' | b'~' | b'^'))
        {
            pending_op.push_str(t);
            continue;
        }
        tokens.push(format!("{}{t}", std::mem::take(&mut pending_op)));
    }
    if !pending_op.is_empty() {
        return Err(format!("`{pending_op}` has no version after it"));
    }
    let mut out = Vec::new();
    for t in &tokens {
        out.extend(token(t)?);
    }
    Ok(out)
}
