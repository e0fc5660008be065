//! One OSV record into indicator drafts: cleaned text, the package as a
//! purl, the affected versions as `versions` entries.

use std::collections::HashSet;
use std::fmt::Write as _;

use isac_core::observable::{parse_purl, validate_url, MAX_PURL_LEN};
use isac_packages::{Ecosystem, Event, OsvRange, Purl, PurlError, RangeKind, Version};

use super::*;

/// An untrusted string as it may appear in a message: short and escaped.
fn shown(s: &str) -> String {
    let short: String = s.chars().take(80).collect();
    let mut out = short.escape_default().to_string();
    if s.chars().nth(80).is_some() {
        out.push('…');
    }
    out
}

fn is_plausible_id(s: &str, max_chars: usize) -> bool {
    !s.is_empty()
        && s.len() <= max_chars
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn check_timestamp(field: &str, s: &str) -> Result<(), String> {
    let ok = s.len() <= MAX_TIMESTAMP_CHARS
        && s.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'.' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{field}` is not an RFC 3339 timestamp: `{}`",
            shown(s)
        ))
    }
}

pub(super) fn convert(
    file: &str,
    index: Option<usize>,
    raw: RawRecord,
) -> Result<OsvImport, OsvError> {
    let mut at = match index {
        Some(i) => format!("{file}, record {i}"),
        None => file.to_owned(),
    };
    let bad = |at: &str, problem: String| OsvError::Record {
        at: at.to_owned(),
        problem,
    };
    let id = match raw.id {
        Some(id) if !id.trim().is_empty() => id,
        _ => return Err(OsvError::NoId { at }),
    };
    if !is_plausible_id(&id, MAX_ID_CHARS) {
        return Err(bad(
            &at,
            format!(
                "`id` `{}` is not an OSV id (1 to {MAX_ID_CHARS} letters, digits, `-`, `_`, `.`, `:`)",
                shown(&id)
            ),
        ));
    }
    at = format!("{at} ({id})");
    let modified = raw
        .modified
        .ok_or_else(|| bad(&at, "missing `modified`".into()))?;
    check_timestamp("modified", &modified).map_err(|p| bad(&at, p))?;
    if let Some(w) = &raw.withdrawn {
        check_timestamp("withdrawn", w).map_err(|p| bad(&at, p))?;
    }
    let affected = raw.affected.unwrap_or_default();
    if affected.len() > MAX_AFFECTED {
        return Err(bad(
            &at,
            format!(
                "{} affected packages; at most {MAX_AFFECTED} are imported from one record",
                affected.len()
            ),
        ));
    }

    let mut notes: Vec<String> = Vec::new();
    let is_mal = id.starts_with("MAL-");
    let aliases = clean_aliases(&id, raw.aliases.as_deref().unwrap_or_default(), &mut notes);
    let labels: Vec<String> = std::iter::once(format!("osv:{id}"))
        .chain(aliases.iter().map(|a| format!("alias:{a}")))
        .collect();
    let references = clean_references(raw.references.as_deref().unwrap_or_default(), &mut notes);
    let summary = raw
        .summary
        .as_deref()
        .map(clean_line)
        .filter(|s| !s.is_empty());
    let details = clean_details(raw.details.as_deref().unwrap_or(""));

    // (purl, name for the title, versions), merged by purl.
    let mut packages: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut skipped = Vec::new();
    for (i, a) in affected.iter().enumerate() {
        let (purl, name) = match package_purl(a.package.as_ref(), &mut notes, i) {
            Ok(p) => p,
            Err(why) => {
                skipped.push((i, why));
                continue;
            }
        };
        let eco = purl.parse::<Purl>().ok().and_then(|p| p.ecosystem());
        let mut versions = affected_versions(a, eco, &mut notes, i);
        if versions.is_empty() {
            // Neither versions nor usable ranges: every version.
            versions.push("*".into());
        }
        match packages.iter_mut().find(|p| p.0 == purl) {
            Some(p) => p.2.extend(versions),
            None => packages.push((purl, name, versions)),
        }
    }
    if packages.is_empty() && skipped.is_empty() {
        notes.push("no importable affected package".into());
    }
    for n in notes.iter().take(MAX_WARNINGS) {
        tracing::warn!("{at}: {n}");
    }
    if notes.len() > MAX_WARNINGS {
        tracing::warn!("{at}: {} more warnings", notes.len() - MAX_WARNINGS);
    }

    let drafts = packages
        .into_iter()
        .map(|(purl, name, versions)| {
            let (versions, widened) = finish_versions(versions);
            let title = match &summary {
                Some(s) => s.clone(),
                None => clean_line(&format!("{id}: malicious code in {name}")),
            };
            IndicatorDraft {
                kind: Some("package".into()),
                purl: Some(purl),
                versions: Some(versions),
                threat: Some("malicious".into()),
                title: Some(truncate_title(title)),
                description: Some(description(
                    &details,
                    &id,
                    &aliases,
                    raw.withdrawn.as_deref(),
                    widened,
                )),
                severity: Some(if is_mal { "critical" } else { "high" }.into()),
                confidence: Some(if is_mal { 90 } else { 70 }),
                references: (!references.is_empty()).then(|| references.clone()),
                labels: Some(labels.clone()),
                ..Default::default()
            }
        })
        .collect();
    Ok(OsvImport {
        at,
        osv_id: id,
        modified,
        withdrawn: raw.withdrawn,
        drafts,
        skipped,
    })
}

pub(super) fn clean_aliases(id: &str, raw: &[String], notes: &mut Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in raw {
        let a = a.trim();
        if !is_plausible_id(a, MAX_ALIAS_CHARS) {
            notes.push(format!("alias `{}` left out", shown(a)));
        } else if a != id && !out.iter().any(|x| x == a) {
            if out.len() == MAX_ALIASES {
                notes.push(format!(
                    "more than {MAX_ALIASES} aliases; the rest are left out"
                ));
                break;
            }
            out.push(a.to_owned());
        }
    }
    out
}

pub(super) fn clean_references(raw: &[RawReference], notes: &mut Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut budget = MAX_REFERENCES_JSON_BYTES;
    for url in raw.iter().filter_map(|r| r.url.as_deref()) {
        if url.len() > MAX_REFERENCE_BYTES || validate_url(url).is_err() {
            notes.push(format!(
                "reference `{}` left out (not an http(s) URL)",
                shown(url)
            ));
            continue;
        }
        if out.iter().any(|u| u == url) {
            continue;
        }
        let cost = json_len(url) + 1;
        if out.len() == MAX_REFERENCES || cost > budget {
            notes.push("too many references; the rest are left out".into());
            break;
        }
        budget -= cost;
        out.push(url.to_owned());
    }
    out
}

// ---------------------------------------------------------------------------
// Text

/// Bidirectional-text controls: invisible, and able to make a title read
/// differently from what it holds.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// One line: control characters and runs of whitespace become one space.
pub(super) fn clean_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(4096));
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() || is_bidi_control(c) {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

pub(super) fn truncate_title(title: String) -> String {
    if title.chars().count() <= MAX_TITLE_CHARS {
        return title;
    }
    let mut t: String = title.chars().take(MAX_TITLE_CHARS - 1).collect();
    t.truncate(t.trim_end().len());
    t.push('…');
    t
}

/// Bytes `c` takes inside a JSON string as serde_json writes it.
fn json_char_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\t' | '\r' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

pub(super) fn json_len(s: &str) -> usize {
    2 + s.chars().map(json_char_len).sum::<usize>()
}

/// `details` as plain text: newlines normalised, control characters other
/// than newline and tab dropped, bounded in characters and encoded size.
pub(super) fn clean_details(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_DETAILS_JSON_BYTES));
    let (mut chars, mut bytes) = (0usize, 0usize);
    let mut truncated = false;
    let mut it = s.trim().chars().peekable();
    while let Some(c) = it.next() {
        let c = match c {
            '\r' => {
                if it.peek() == Some(&'\n') {
                    continue;
                }
                '\n'
            }
            '\n' | '\t' => c,
            c if c.is_control() || is_bidi_control(c) => continue,
            c => c,
        };
        if chars == MAX_DETAILS_CHARS || bytes + json_char_len(c) > MAX_DETAILS_JSON_BYTES {
            truncated = true;
            break;
        }
        chars += 1;
        bytes += json_char_len(c);
        out.push(c);
    }
    if truncated {
        out.truncate(out.trim_end().len());
        out.push_str("\n[… truncated]");
    }
    out
}

pub(super) fn description(
    details: &str,
    id: &str,
    aliases: &[String],
    withdrawn: Option<&str>,
    widened: bool,
) -> String {
    let mut d = details.to_owned();
    if !d.is_empty() {
        d.push_str("\n\n");
    }
    let _ = write!(d, "OSV: {id}");
    if !aliases.is_empty() {
        let _ = write!(d, "\nAliases: {}", aliases.join(", "));
    }
    if let Some(w) = withdrawn {
        let _ = write!(d, "\nWithdrawn: {w}");
    }
    if widened {
        d.push_str(
            "\nVersions: the record lists more affected versions than one indicator holds; this indicator covers every version.",
        );
    }
    d
}

// ---------------------------------------------------------------------------
// Packages

/// The canonical purl string, if the statement check takes it and it fits.
/// The purl was read by the packages parser already; the lenient core check
/// is what every receiver runs, so canonical output must pass it as well.
fn finish_purl(purl: &Purl, bad: impl Fn(&str) -> String) -> Result<String, String> {
    let text = purl.to_string();
    parse_purl(&text).map_err(|e| bad(&e.reason))?;
    if json_len(&text) > MAX_PURL_LEN {
        return Err(bad("is too long"));
    }
    Ok(text)
}

/// A given purl as the package alone (no version, qualifiers or subpath),
/// normalised by its type's rules (`isac_packages::Purl`).
pub(super) fn normalize_purl(given: &str) -> Result<String, String> {
    let bad = |why: &str| format!("purl `{}` {why}", shown(given));
    if given.len() > MAX_PURL_LEN {
        return Err(bad("is too long"));
    }
    let purl: Purl = given.parse().map_err(|e: PurlError| bad(&e.to_string()))?;
    finish_purl(&purl.package(), bad)
}

/// The purl for `name` in an OSV ecosystem (`Purl::from_osv`).
pub(super) fn ecosystem_purl(ecosystem: &str, name: &str) -> Result<String, String> {
    let bad = |why: &str| format!("{ecosystem} package name `{}` {why}", shown(name));
    if name.len() > MAX_NAME_BYTES {
        return Err(bad("is too long"));
    }
    let purl = Purl::from_osv(ecosystem, name).map_err(|e| match e {
        PurlError::UnknownOsvEcosystem(_) => format!(
            "ecosystem `{}` is not supported ({})",
            shown(ecosystem),
            supported_ecosystems()
        ),
        other => bad(&other.to_string()),
    })?;
    finish_purl(&purl, bad)
}

fn supported_ecosystems() -> String {
    Ecosystem::ALL
        .iter()
        .map(|e| e.osv_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The purl and a display name for an affected package: the given purl if
/// it is usable, else one built from the ecosystem and name.
fn package_purl(
    pkg: Option<&RawPackage>,
    notes: &mut Vec<String>,
    i: usize,
) -> Result<(String, String), String> {
    let pkg = pkg.ok_or("no `package`")?;
    let name = pkg.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if let Some(given) = pkg.purl.as_deref() {
        match normalize_purl(given) {
            Ok(purl) => {
                let shown_name = clean_line(name.unwrap_or(&purl));
                return Ok((purl, shown_name));
            }
            Err(why) if pkg.ecosystem.is_some() && name.is_some() => {
                notes.push(format!(
                    "affected[{i}]: {why}; using the ecosystem and name instead"
                ));
            }
            Err(why) => return Err(why),
        }
    }
    let ecosystem = pkg
        .ecosystem
        .as_deref()
        .ok_or("no `ecosystem` and no `purl`")?;
    let name = name.ok_or("no package `name`")?;
    Ok((ecosystem_purl(ecosystem, name)?, clean_line(name)))
}

// ---------------------------------------------------------------------------
// Versions

/// A version as given, if it can stand in a version list: no whitespace,
/// commas or `|` (the separators of version ranges), bounded.
pub(super) fn check_version(v: &str) -> Result<&str, String> {
    if v.is_empty()
        || v.chars().count() > MAX_VERSION_CHARS
        || v.chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '|'))
    {
        Err(format!("version `{}` is not usable", shown(v)))
    } else {
        Ok(v)
    }
}

/// One raw event as the crate's [`Event`]: exactly one field set.
fn event(ev: &RawEvent) -> Result<Event, String> {
    let one = |v: &String| check_version(v).map(str::to_owned);
    match (&ev.introduced, &ev.fixed, &ev.last_affected, &ev.limit) {
        (Some(v), None, None, None) => Ok(Event::Introduced(one(v)?)),
        (None, Some(v), None, None) => Ok(Event::Fixed(one(v)?)),
        (None, None, Some(v), None) => Ok(Event::LastAffected(one(v)?)),
        (None, None, None, Some(v)) => Ok(Event::Limit(one(v)?)),
        _ => {
            Err("an event must hold exactly one of introduced, fixed, last_affected, limit".into())
        }
    }
}

/// The record's range as the crate's [`OsvRange`] (GIT ranges are `None`:
/// they name commits, which no `versions` entry can hold).
pub(super) fn osv_range(r: &RawRange) -> Result<Option<OsvRange>, String> {
    let kind = match r.ty.as_deref().and_then(RangeKind::from_osv) {
        Some(RangeKind::Git) | None => return Ok(None),
        Some(kind) => kind,
    };
    let events = r
        .events
        .iter()
        .flatten()
        .map(event)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(OsvRange { kind, events }))
}

fn bounded(lower: Option<&str>, op: &str, upper: &str) -> String {
    match lower {
        None | Some("0") => format!("{op}{upper}"),
        Some(l) => format!(">={l} {op}{upper}"),
    }
}

/// An OSV range as `versions` entries that `isac_packages::range::parse_entry`
/// reads back to the same affected versions: the schema's evaluation
/// (events sorted by version in `eco`'s order, or SemVer's; `introduced`
/// opens an interval, `fixed` closes it below, `last_affected` at its
/// version; limits bound every interval) written as comparators:
/// `>=X <Y`, `>=X <=Y`, an open `>=X`, `*` from `introduced: "0"`. When a
/// version cannot be ordered the events are taken in the record's order.
pub(super) fn range_entries(range: &OsvRange, eco: Option<Ecosystem>) -> Vec<String> {
    let mut events: Vec<&Event> = range.events.iter().collect();
    let parse = |s: &str| match (range.kind, eco) {
        (RangeKind::Semver, _) => Version::parse_semver(s).ok(),
        (_, Some(e)) if e.has_ordering() => Version::parse(e, s).ok(),
        _ => None,
    };
    // `0` is before every version, `*` (a limit) after every one.
    let keyed: Option<Vec<(u8, Option<Version>)>> = events
        .iter()
        .map(|e| match e.version() {
            "0" if matches!(e, Event::Introduced(_)) => Some((0, None)),
            "*" if matches!(e, Event::Limit(_)) => Some((2, None)),
            v => parse(v).map(|v| (1, Some(v))),
        })
        .collect();
    if let Some(keys) = keyed {
        let comparable = keys
            .iter()
            .filter_map(|(_, v)| v.as_ref())
            .collect::<Vec<_>>()
            .windows(2)
            .all(|w| w[0].compare(w[1]).is_some());
        if comparable {
            let mut order: Vec<usize> = (0..events.len()).collect();
            // Stable: events at one version keep the record's order.
            order.sort_by(|&i, &j| {
                let (a, b) = (&keys[i], &keys[j]);
                a.0.cmp(&b.0).then_with(|| match (&a.1, &b.1) {
                    (Some(x), Some(y)) => x.compare(y).unwrap_or(std::cmp::Ordering::Equal),
                    _ => std::cmp::Ordering::Equal,
                })
            });
            events = order.into_iter().map(|i| events[i]).collect();
        }
    }
    let has_introduced = events.iter().any(|e| matches!(e, Event::Introduced(_)));
    let mut out = Vec::new();
    let mut open: Option<&str> = None;
    let mut vulnerable = false;
    let mut limit: Option<&str> = None;
    for ev in events {
        match ev {
            Event::Introduced(v) => {
                if !vulnerable {
                    open = Some(v);
                }
                vulnerable = true;
            }
            Event::Fixed(v) if vulnerable => {
                out.push(bounded(open.take(), "<", v));
                vulnerable = false;
            }
            Event::LastAffected(v) if vulnerable => {
                out.push(bounded(open.take(), "<=", v));
                vulnerable = false;
            }
            // Without a preceding `introduced` the schema affects nothing;
            // the record surely meant "below this", and too much beats
            // too little for malicious code.
            Event::Fixed(v) if !has_introduced => out.push(format!("<{v}")),
            Event::LastAffected(v) if !has_introduced => out.push(format!("<={v}")),
            // The sorted walk meets the greatest limit last.
            Event::Limit(v) if v != "*" => limit = Some(v),
            _ => {}
        }
    }
    if vulnerable {
        out.push(match open {
            Some("0") | None => "*".into(),
            Some(l) => format!(">={l}"),
        });
    }
    if let Some(l) = limit {
        for entry in &mut out {
            *entry = if entry == "*" {
                format!("<{l}")
            } else {
                format!("{entry} <{l}")
            };
        }
    }
    out
}

pub(super) fn affected_versions(
    a: &RawAffected,
    eco: Option<Ecosystem>,
    notes: &mut Vec<String>,
    i: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    for v in a.versions.iter().flatten() {
        match check_version(v) {
            Ok(v) => out.push(v.to_owned()),
            Err(why) => notes.push(format!("affected[{i}]: {why}; left out")),
        }
    }
    for (j, r) in a.ranges.iter().flatten().enumerate() {
        match osv_range(r) {
            Ok(Some(range)) => out.extend(range_entries(&range, eco)),
            Ok(None) => {}
            Err(why) => notes.push(format!("affected[{i}].ranges[{j}]: {why}; left out")),
        }
    }
    out
}

/// Deduplicated versions; `*` when there are none. When there are more than
/// an indicator holds, every version (`*`): for malicious code, flagging too
/// much beats missing an affected version. The flag says so.
pub(super) fn finish_versions(versions: Vec<String>) -> (Vec<String>, bool) {
    let mut seen = HashSet::new();
    let versions: Vec<String> = versions
        .into_iter()
        .filter(|v| seen.insert(v.clone()))
        .collect();
    if versions.is_empty() {
        return (vec!["*".into()], false);
    }
    let size: usize = versions.iter().map(|v| json_len(v) + 1).sum();
    if versions.len() > MAX_VERSIONS || size > MAX_VERSIONS_JSON_BYTES {
        return (vec!["*".into()], true);
    }
    (versions, false)
}
