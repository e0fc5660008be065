//! Import of OSV records (<https://ossf.github.io/osv-schema/>), in
//! particular the OpenSSF malicious-packages feed
//! (<https://github.com/ossf/malicious-packages>), as package indicator
//! drafts for `member-agent publish --osv FILE|DIR`.
//!
//! One draft per affected package of a record. Everything here is untrusted
//! input: files and directories are bounded, every string that reaches a
//! draft is cleaned and bounded so that the draft passes
//! [`IndicatorDraft::into_prepared`] once the caller sets a TLP, and the
//! signed statement stays well inside the hub's payload limit. Parts of a
//! record that cannot be imported are left out: an affected package in an
//! unsupported ecosystem (or with an unusable name) is listed in
//! [`OsvImport::skipped`]; a malformed range or a non-http reference is a
//! warning in the log.
//!
//! Problems are per record: [`load_osv_path`] returns every record of a
//! tree, each read or with the error naming its file (and index in an
//! array), so that the caller can publish the good ones and name the
//! others; only problems with the tree itself (too many files, unreadable
//! directory) stop the walk. A record without an `id` (or with an empty
//! one) is [`OsvError::NoId`]: ossf/malicious-packages holds such reports,
//! named `MAL-0000-<package>.json`, until an id is assigned; they are never
//! published under another name (see `import.rs`).
//!
//! A withdrawn record still yields its drafts (with `withdrawn` set on the
//! import) so that the caller can find and retract what it published before;
//! the caller must not publish them as new indicators.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use isac_core::observable::{parse_purl, validate_url, MAX_PURL_LEN};
use serde::Deserialize;

use crate::draft::IndicatorDraft;

/// Largest OSV file read or parsed.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Most files (of any kind) a directory walk looks at.
pub const MAX_DIR_FILES: usize = 100_000;
/// Most directories a directory walk enters.
pub const MAX_DIR_DIRS: usize = 100_000;
/// Most bytes of `*.json` a directory walk reads in all.
pub const MAX_TOTAL_BYTES: u64 = 1024 * 1024 * 1024;
/// Most affected packages one record may list.
pub const MAX_AFFECTED: usize = 1_000;

const MAX_TITLE_CHARS: usize = isac_core::statement::MAX_TITLE_CHARS;
/// Room is left under the statement's 16 KiB for the OSV footer.
const MAX_DETAILS_CHARS: usize = 16_000;
/// Bounds on the JSON-encoded size of what a record can put in a draft, so
/// that the signed statement stays under `MAX_PAYLOAD_BYTES` (64 KiB) with
/// room for a full audience.
const MAX_DETAILS_JSON_BYTES: usize = 20_000;
const MAX_VERSIONS_JSON_BYTES: usize = 16_000;
const MAX_REFERENCES_JSON_BYTES: usize = 12_000;
const MAX_VERSIONS: usize = 256;
const MAX_VERSION_CHARS: usize = 100;
const MAX_REFERENCES: usize = 64;
const MAX_REFERENCE_BYTES: usize = 2048;
const MAX_ALIASES: usize = 8;
const MAX_TAG_CHARS: usize = 64;
/// `osv:<id>` must fit in a tag.
const MAX_ID_CHARS: usize = MAX_TAG_CHARS - "osv:".len();
const MAX_ALIAS_CHARS: usize = MAX_TAG_CHARS - "alias:".len();
const MAX_NAME_BYTES: usize = 512;
const MAX_TIMESTAMP_CHARS: usize = 64;
/// Warnings logged for one record; the rest are counted.
const MAX_WARNINGS: usize = 20;

/// The drafts made from one OSV record.
#[derive(Debug, Clone)]
pub struct OsvImport {
    /// Where the record is: its file, its index in an array, its id.
    pub at: String,
    pub osv_id: String,
    pub modified: String,
    /// When the record was withdrawn: earlier imports should be retracted.
    pub withdrawn: Option<String>,
    pub drafts: Vec<IndicatorDraft>,
    /// Affected packages left out (`affected[i]`, why): an unsupported
    /// ecosystem, a name or purl that is not usable.
    pub skipped: Vec<(usize, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum OsvError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a file or a directory")]
    NotAFile { path: String },
    #[error("{path}: {size} bytes is more than the {MAX_FILE_BYTES} bytes an OSV file may hold")]
    TooLarge { path: String, size: u64 },
    #[error("{dir}: more than {max} files; point --osv at a smaller directory")]
    TooManyFiles { dir: String, max: usize },
    #[error("{dir}: more than {max} directories; point --osv at a smaller directory")]
    TooManyDirs { dir: String, max: usize },
    #[error("{dir}: the *.json files hold more than {max} bytes in all; point --osv at a smaller directory")]
    TooMuchData { dir: String, max: u64 },
    #[error("{dir}: no *.json files found")]
    NoJsonFiles { dir: String },
    #[error("{path}: not UTF-8 text")]
    NotUtf8 { path: String },
    #[error("{file}: not valid OSV JSON: {source}")]
    Json {
        file: String,
        source: serde_json::Error,
    },
    #[error(
        "{file}: expected an OSV record (a JSON object) or an array of records, found {found}"
    )]
    NotARecord { file: String, found: &'static str },
    /// `at` is the file, with the record's index in an array and its id when known.
    #[error("{at}: {problem}")]
    Record { at: String, problem: String },
    /// A record with no `id`, or an empty one: a report still waiting for
    /// its id (ossf/malicious-packages' `MAL-0000-*.json` files).
    #[error("{at}: missing `id` (a report still awaiting its id, as ossf/malicious-packages' MAL-0000-* files are)")]
    NoId { at: String },
}

// ---------------------------------------------------------------------------
// The OSV schema, as far as we read it. Unknown fields are ignored (serde's
// default); serde_json's recursion limit bounds nesting, also inside them.

#[derive(Deserialize)]
#[serde(expecting = "an OSV record (a JSON object)")]
struct RawRecord {
    id: Option<String>,
    modified: Option<String>,
    withdrawn: Option<String>,
    aliases: Option<Vec<String>>,
    summary: Option<String>,
    details: Option<String>,
    affected: Option<Vec<RawAffected>>,
    references: Option<Vec<RawReference>>,
}

#[derive(Deserialize)]
struct RawAffected {
    package: Option<RawPackage>,
    versions: Option<Vec<String>>,
    ranges: Option<Vec<RawRange>>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: Option<String>,
    name: Option<String>,
    purl: Option<String>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    ty: Option<String>,
    events: Option<Vec<RawEvent>>,
}

#[derive(Deserialize)]
struct RawEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    limit: Option<String>,
}

#[derive(Deserialize)]
struct RawReference {
    url: Option<String>,
}

// ---------------------------------------------------------------------------
// Entry points

/// Parses one OSV JSON document (a single record; also accept a JSON array of records and return several).
/// The first problem is the error; [`parse_osv_each`] keeps every record.
pub fn parse_osv(file_name: &str, json: &str) -> Result<Vec<OsvImport>, OsvError> {
    parse_osv_each(file_name, json).into_iter().collect()
}

/// One record read, or why a file or a record could not be.
pub type Loaded = Result<OsvImport, OsvError>;

/// Every record of one OSV JSON document, each read or with its error: a
/// file that is not OSV JSON (or whose array does not hold records) is one
/// error; each record of an array is checked on its own.
pub fn parse_osv_each(file_name: &str, json: &str) -> Vec<Loaded> {
    match parse_raw(file_name, json) {
        Ok(records) => records
            .into_iter()
            .map(|(index, raw)| convert(file_name, index, raw))
            .collect(),
        Err(e) => vec![Err(e)],
    }
}

fn parse_raw(file_name: &str, json: &str) -> Result<Vec<(Option<usize>, RawRecord)>, OsvError> {
    if json.len() as u64 > MAX_FILE_BYTES {
        return Err(OsvError::TooLarge {
            path: file_name.to_owned(),
            size: json.len() as u64,
        });
    }
    let text = json.strip_prefix('\u{feff}').unwrap_or(json);
    let json_err = |source| OsvError::Json {
        file: file_name.to_owned(),
        source,
    };
    let records: Vec<(Option<usize>, RawRecord)> = match text.trim_start().as_bytes().first() {
        Some(b'{') => vec![(None, serde_json::from_str(text).map_err(json_err)?)],
        Some(b'[') => serde_json::from_str::<Vec<RawRecord>>(text)
            .map_err(json_err)?
            .into_iter()
            .enumerate()
            .map(|(i, r)| (Some(i), r))
            .collect(),
        _ => {
            return Err(match serde_json::from_str::<serde_json::Value>(text) {
                Ok(v) => OsvError::NotARecord {
                    file: file_name.to_owned(),
                    found: match v {
                        serde_json::Value::Null => "null",
                        serde_json::Value::Bool(_) => "a boolean",
                        serde_json::Value::Number(_) => "a number",
                        serde_json::Value::String(_) => "a string",
                        serde_json::Value::Array(_) => "an array",
                        serde_json::Value::Object(_) => "an object",
                    },
                },
                Err(e) => json_err(e),
            })
        }
    };
    Ok(records)
}

/// Reads a file or walks a directory (recursively, *.json only, sorted for determinism; skip non-JSON files), bounded: refuse files > 4 MiB and directories with > 100,000 files, with clear errors.
///
/// Every record comes back, read or with the error naming its file: a
/// file that is too large, not UTF-8 or not OSV JSON is one error entry,
/// and the walk goes on. The outer error is for the path or the tree as a
/// whole (missing, too many files or directories, too much data, no JSON).
///
/// Symbolic links to files are followed, to directories not; directories
/// whose name starts with `.` (such as `.git`) are not entered.
pub fn load_osv_path(path: &Path) -> Result<Vec<Loaded>, OsvError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if meta.is_dir() {
        let files = list_json_files(path, MAX_DIR_FILES, MAX_DIR_DIRS, MAX_TOTAL_BYTES)?;
        if files.is_empty() {
            return Err(OsvError::NoJsonFiles {
                dir: shown_path(path),
            });
        }
        let mut out = Vec::new();
        for file in files {
            match read_bounded(&file) {
                Ok(text) => out.extend(parse_osv_each(&shown_path(&file), &text)),
                Err(e) => out.push(Err(e)),
            }
        }
        Ok(out)
    } else if meta.is_file() {
        Ok(match read_bounded(path) {
            Ok(text) => parse_osv_each(&shown_path(path), &text),
            Err(e) => vec![Err(e)],
        })
    } else {
        Err(OsvError::NotAFile {
            path: shown_path(path),
        })
    }
}

fn shown_path(p: &Path) -> String {
    p.display().to_string()
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OsvError + '_ {
    move |source| OsvError::Io {
        path: shown_path(path),
        source,
    }
}

fn read_bounded(path: &Path) -> Result<String, OsvError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    if len > MAX_FILE_BYTES {
        return Err(OsvError::TooLarge {
            path: shown_path(path),
            size: len,
        });
    }
    let mut buf = Vec::with_capacity(len as usize);
    // The file may grow after the check: never read past the limit.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(OsvError::TooLarge {
            path: shown_path(path),
            size: buf.len() as u64,
        });
    }
    String::from_utf8(buf).map_err(|_| OsvError::NotUtf8 {
        path: shown_path(path),
    })
}

fn is_json(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// The `*.json` files under `root`, sorted, within the given bounds.
fn list_json_files(
    root: &Path,
    max_files: usize,
    max_dirs: usize,
    max_total: u64,
) -> Result<Vec<PathBuf>, OsvError> {
    let mut stack = vec![root.to_path_buf()];
    let mut files = Vec::new();
    let (mut seen_files, mut seen_dirs, mut total) = (0usize, 0usize, 0u64);
    while let Some(dir) = stack.pop() {
        seen_dirs += 1;
        if seen_dirs > max_dirs {
            return Err(OsvError::TooManyDirs {
                dir: shown_path(root),
                max: max_dirs,
            });
        }
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let ft = entry.file_type().map_err(io_err(&path))?;
            if ft.is_dir() {
                if !entry.file_name().to_string_lossy().starts_with('.') {
                    stack.push(path);
                }
                continue;
            }
            seen_files += 1;
            if seen_files > max_files {
                return Err(OsvError::TooManyFiles {
                    dir: shown_path(root),
                    max: max_files,
                });
            }
            if !is_json(&path) {
                continue;
            }
            let meta = if ft.is_file() {
                entry.metadata().map_err(io_err(&path))?
            } else if ft.is_symlink() {
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => m,
                    // Dangling, or a link to a directory: not followed.
                    _ => continue,
                }
            } else {
                continue;
            };
            if meta.len() > MAX_FILE_BYTES {
                // Listed, not counted: reading it reports it as too large.
                files.push(path);
                continue;
            }
            total += meta.len();
            if total > max_total {
                return Err(OsvError::TooMuchData {
                    dir: shown_path(root),
                    max: max_total,
                });
            }
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

// ---------------------------------------------------------------------------
// One record

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

fn convert(file: &str, index: Option<usize>, raw: RawRecord) -> Result<OsvImport, OsvError> {
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
        let mut versions = affected_versions(a, &mut notes, i);
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

fn clean_aliases(id: &str, raw: &[String], notes: &mut Vec<String>) -> Vec<String> {
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

fn clean_references(raw: &[RawReference], notes: &mut Vec<String>) -> Vec<String> {
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
fn clean_line(s: &str) -> String {
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

fn truncate_title(title: String) -> String {
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

fn json_len(s: &str) -> usize {
    2 + s.chars().map(json_char_len).sum::<usize>()
}

/// `details` as plain text: newlines normalised, control characters other
/// than newline and tab dropped, bounded in characters and encoded size.
fn clean_details(s: &str) -> String {
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

fn description(
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

/// PEP 503: lowercase, and each run of `-`, `_`, `.` becomes one `-`.
fn pep503(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// A given purl without version, qualifiers or subpath, its type lowercased
/// and an unencoded npm scope (`@scope`) percent-encoded.
fn normalize_purl(given: &str) -> Result<String, String> {
    let bad = |why: &str| format!("purl `{}` {why}", shown(given));
    if given.len() > MAX_PURL_LEN {
        return Err(bad("is too long"));
    }
    let rest = given
        .strip_prefix("pkg:")
        .ok_or_else(|| bad("does not start with `pkg:`"))?
        .trim_start_matches('/');
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (ty, path) = rest
        .split_once('/')
        .ok_or_else(|| bad("has no package name"))?;
    // The version is after the last `@` that does not start a segment.
    let b = path.as_bytes();
    let cut = (1..b.len())
        .rev()
        .find(|&i| b[i] == b'@' && b[i - 1] != b'/');
    let path = match cut {
        Some(i) => &path[..i],
        None => path,
    };
    let path = path
        .trim_end_matches('/')
        .split('/')
        .map(|seg| match seg.strip_prefix('@') {
            Some("") => Err(bad("has an empty npm scope")),
            Some(s) => Ok(format!("%40{s}")),
            None => Ok(seg.to_owned()),
        })
        .collect::<Result<Vec<String>, String>>()?;
    let purl = format!("pkg:{}/{}", ty.to_ascii_lowercase(), path.join("/"));
    let parsed = parse_purl(&purl)
        .map_err(|e| e.reason)
        .map_err(|r| bad(&r))?;
    if parsed.version.is_some() {
        return Err(bad("has more than one version"));
    }
    if json_len(&purl) > MAX_PURL_LEN {
        return Err(bad("is too long"));
    }
    Ok(purl)
}

const ECOSYSTEMS: &str = "npm, PyPI, crates.io, Go, Maven, RubyGems, NuGet, Packagist";

/// The purl for `name` in an OSV ecosystem.
fn ecosystem_purl(ecosystem: &str, name: &str) -> Result<String, String> {
    let bad = |why: &str| format!("{ecosystem} package name `{}` {why}", shown(name));
    if name.len() > MAX_NAME_BYTES {
        return Err(bad("is too long"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("holds whitespace or control characters"));
    }
    let two = |sep: char, what: &str| -> Result<String, String> {
        match name.split_once(sep) {
            Some((a, n)) if !a.is_empty() && !n.is_empty() && !n.contains(sep) => Ok(format!(
                "{}/{}",
                isac_core::pct::encode_unreserved(a),
                isac_core::pct::encode_unreserved(n)
            )),
            _ => Err(bad(&format!("is not `{what}`"))),
        }
    };
    let one = || -> Result<String, String> {
        if name.contains('/') {
            Err(bad("holds `/`"))
        } else {
            Ok(isac_core::pct::encode_unreserved(name))
        }
    };
    let purl = match ecosystem {
        "npm" => match name.strip_prefix('@') {
            Some(scoped) => {
                let rest = scoped
                    .split_once('/')
                    .filter(|(s, n)| !s.is_empty() && !n.is_empty() && !n.contains('/'))
                    .ok_or_else(|| bad("is not `@scope/name`"))?;
                format!(
                    "pkg:npm/%40{}/{}",
                    isac_core::pct::encode_unreserved(rest.0),
                    isac_core::pct::encode_unreserved(rest.1)
                )
            }
            None => format!("pkg:npm/{}", one()?),
        },
        "PyPI" => {
            if name.contains('/') {
                return Err(bad("holds `/`"));
            }
            format!(
                "pkg:pypi/{}",
                isac_core::pct::encode_unreserved(&pep503(name))
            )
        }
        "crates.io" => format!("pkg:cargo/{}", one()?),
        "Go" => {
            if name.split('/').any(str::is_empty) {
                return Err(bad("has an empty path segment"));
            }
            let path: Vec<String> = name
                .split('/')
                .map(isac_core::pct::encode_unreserved)
                .collect();
            format!("pkg:golang/{}", path.join("/"))
        }
        "Maven" => format!("pkg:maven/{}", two(':', "group:artifact")?),
        "RubyGems" => format!("pkg:gem/{}", one()?),
        "NuGet" => format!("pkg:nuget/{}", one()?),
        "Packagist" => format!("pkg:composer/{}", two('/', "vendor/name")?),
        other => {
            return Err(format!(
                "ecosystem `{}` is not supported ({ECOSYSTEMS})",
                shown(other)
            ))
        }
    };
    parse_purl(&purl).map_err(|e| bad(&e.reason))?;
    if purl.len() > MAX_PURL_LEN {
        return Err(bad("is too long"));
    }
    Ok(purl)
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
fn check_version(v: &str) -> Result<&str, String> {
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

fn bounded(lower: Option<&str>, op: &str, upper: &str) -> String {
    match lower {
        None | Some("0") => format!("{op}{upper}"),
        Some(l) => format!(">={l} {op}{upper}"),
    }
}

/// The version ranges of one ECOSYSTEM or SEMVER range, events taken in the
/// order given: `introduced X` then `fixed Y` is `>=X <Y`, then
/// `last_affected Y` is `>=X <=Y`, an open `introduced X` is `>=X`
/// (`introduced 0` means from the first version: `<Y`, `<=Y`, `*`).
fn range_entries(events: &[RawEvent]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut open: Option<&str> = None;
    for ev in events {
        let set = [
            ev.introduced.is_some(),
            ev.fixed.is_some(),
            ev.last_affected.is_some(),
            ev.limit.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if set != 1 {
            return Err(
                "an event must hold exactly one of introduced, fixed, last_affected, limit".into(),
            );
        }
        if let Some(v) = &ev.introduced {
            let v = check_version(v)?;
            open = open.or(Some(v));
        } else if let Some(v) = &ev.fixed {
            out.push(bounded(open.take(), "<", check_version(v)?));
        } else if let Some(v) = &ev.last_affected {
            out.push(bounded(open.take(), "<=", check_version(v)?));
        }
        // `limit` only bounds a search (GIT ranges); nothing to add.
    }
    if let Some(l) = open {
        out.push(if l == "0" {
            "*".into()
        } else {
            format!(">={l}")
        });
    }
    Ok(out)
}

fn affected_versions(a: &RawAffected, notes: &mut Vec<String>, i: usize) -> Vec<String> {
    let mut out = Vec::new();
    for v in a.versions.iter().flatten() {
        match check_version(v) {
            Ok(v) => out.push(v.to_owned()),
            Err(why) => notes.push(format!("affected[{i}]: {why}; left out")),
        }
    }
    for (j, r) in a.ranges.iter().flatten().enumerate() {
        // GIT ranges name commits, not versions.
        if !matches!(r.ty.as_deref(), Some("ECOSYSTEM" | "SEMVER")) {
            continue;
        }
        match range_entries(r.events.as_deref().unwrap_or_default()) {
            Ok(entries) => out.extend(entries),
            Err(why) => notes.push(format!("affected[{i}].ranges[{j}]: {why}; left out")),
        }
    }
    out
}

/// Deduplicated versions; `*` when there are none. When there are more than
/// an indicator holds, every version (`*`): for malicious code, flagging too
/// much beats missing an affected version. The flag says so.
fn finish_versions(versions: Vec<String>) -> (Vec<String>, bool) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const NPM_UNSCOPED: &str = include_str!("../tests/fixtures/osv/real/npm/0-dns/MAL-2022-9.json");
    const NPM_SCOPED_RANGES: &str =
        include_str!("../tests/fixtures/osv/real/npm/@ctrl/tinycolor/MAL-2025-47141.json");
    const PYPI: &str = include_str!("../tests/fixtures/osv/real/pypi/3web-py/MAL-2024-9934.json");
    const CRATES: &str =
        include_str!("../tests/fixtures/osv/real/crates.io/rustdecimal/MAL-2022-1.json");
    const WITHDRAWN: &str =
        include_str!("../tests/fixtures/osv/real/withdrawn/npm/@ctrl/plex/MAL-2026-4377.json");
    const HAND_WRITTEN: &str =
        include_str!("../tests/fixtures/osv/hand-written/ISAC-EXAMPLE-2026-0001.json");

    const ALL: [(&str, &str); 6] = [
        ("MAL-2022-9.json", NPM_UNSCOPED),
        ("MAL-2025-47141.json", NPM_SCOPED_RANGES),
        ("MAL-2024-9934.json", PYPI),
        ("MAL-2022-1.json", CRATES),
        ("MAL-2026-4377.json", WITHDRAWN),
        ("ISAC-EXAMPLE-2026-0001.json", HAND_WRITTEN),
    ];

    fn one(name: &str, json: &str) -> OsvImport {
        let mut v = parse_osv(name, json).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    fn publishable(d: &IndicatorDraft) -> isac_core::Statement {
        let mut d = d.clone();
        d.tlp = Some("clear".into());
        d.clone()
            .into_prepared("acme-bank", "2026-11-25T12:00:00Z".to_string())
            .unwrap_or_else(|e| panic!("{e}: {d:?}"))
            .statement
    }

    #[test]
    fn npm_unscoped_real_record() {
        let imp = one("MAL-2022-9.json", NPM_UNSCOPED);
        assert_eq!(imp.osv_id, "MAL-2022-9");
        assert_eq!(imp.modified, "2022-06-20T20:12:58Z");
        assert_eq!(imp.withdrawn, None);
        assert_eq!(imp.drafts.len(), 1);
        let d = &imp.drafts[0];
        assert_eq!(d.kind.as_deref(), Some("package"));
        assert_eq!(d.purl.as_deref(), Some("pkg:npm/0-dns"));
        assert_eq!(d.versions, strings(&["*"]));
        assert_eq!(d.threat.as_deref(), Some("malicious"));
        assert_eq!(d.title.as_deref(), Some("Malicious code in 0-dns (npm)"));
        assert_eq!(
            d.labels,
            strings(&["osv:MAL-2022-9", "alias:GHSA-8p6v-2gf9-8hhm"])
        );
        assert_eq!(
            d.references,
            strings(&["https://github.com/advisories/GHSA-8p6v-2gf9-8hhm"])
        );
        assert_eq!(d.severity.as_deref(), Some("critical"));
        assert_eq!(d.confidence, Some(90));
        assert_eq!(d.tlp, None);
        assert_eq!(d.vuln_id, None);
        assert_eq!(
            (d.valid_from.as_ref(), d.valid_until.as_ref()),
            (None, None)
        );
        let desc = d.description.as_deref().unwrap();
        assert!(desc.starts_with("---\n_-= Per source details."), "{desc}");
        assert!(
            desc.ends_with("\n\nOSV: MAL-2022-9\nAliases: GHSA-8p6v-2gf9-8hhm"),
            "{desc}"
        );
    }

    #[test]
    fn npm_scoped_with_ranges_real_record() {
        let imp = one("MAL-2025-47141.json", NPM_SCOPED_RANGES);
        let d = &imp.drafts[0];
        assert_eq!(d.purl.as_deref(), Some("pkg:npm/%40ctrl/tinycolor"));
        assert_eq!(d.versions, strings(&["*", ">=4.1.1 <=4.1.2"]));
        assert_eq!(
            d.title.as_deref(),
            Some("Malicious code in @ctrl/tinycolor (npm)")
        );
        assert_eq!(
            d.labels,
            strings(&["osv:MAL-2025-47141", "alias:GHSA-qjqf-7j6f-82c4"])
        );
    }

    #[test]
    fn pypi_with_given_purl_real_record() {
        let imp = one("MAL-2024-9934.json", PYPI);
        assert_eq!(imp.modified, "2025-12-11T09:27:52Z");
        let d = &imp.drafts[0];
        assert_eq!(d.purl.as_deref(), Some("pkg:pypi/3web-py"));
        assert_eq!(d.versions, strings(&["1.0.0"]));
        assert_eq!(d.title.as_deref(), Some("Malicious code in 3web-py (PyPI)"));
        assert_eq!(d.labels, strings(&["osv:MAL-2024-9934"]));
        assert_eq!(
            d.references,
            strings(&[
                "https://www.cert.at/en/blog/2024/3/hobby-hunter-notes-pypi-under-attack",
                "https://blog.phylum.io/typosquatting-campaign-targets-python-developers/",
                "https://bad-packages.kam193.eu/pypi/package/3web-py",
            ])
        );
        assert!(d
            .description
            .as_deref()
            .unwrap()
            .ends_with("- infostealer\n\nOSV: MAL-2024-9934"));
    }

    #[test]
    fn crates_io_real_record() {
        let imp = one("MAL-2022-1.json", CRATES);
        let d = &imp.drafts[0];
        assert_eq!(d.purl.as_deref(), Some("pkg:cargo/rustdecimal"));
        assert_eq!(d.versions, strings(&["*"]));
        assert_eq!(
            d.title.as_deref(),
            Some("Malicious code in rustdecimal (crates.io)")
        );
        assert_eq!(d.references.as_ref().map(Vec::len), Some(5));
        assert!(d
            .description
            .as_deref()
            .unwrap()
            .contains("(an attack called \"typosquatting\")"));
    }

    #[test]
    fn withdrawn_real_record() {
        let imp = one("MAL-2026-4377.json", WITHDRAWN);
        assert_eq!(imp.osv_id, "MAL-2026-4377");
        assert_eq!(imp.withdrawn.as_deref(), Some("2026-05-26T17:12:48Z"));
        let d = &imp.drafts[0];
        assert_eq!(d.purl.as_deref(), Some("pkg:npm/%40ctrl/plex"));
        assert_eq!(d.versions, strings(&["6.0.0"]));
        assert_eq!(d.labels, strings(&["osv:MAL-2026-4377"]));
        assert!(d
            .description
            .as_deref()
            .unwrap()
            .ends_with("\n\nOSV: MAL-2026-4377\nWithdrawn: 2026-05-26T17:12:48Z"));
    }

    #[test]
    fn hand_written_multi_ecosystem() {
        let imports = parse_osv("ISAC-EXAMPLE-2026-0001.json", HAND_WRITTEN).unwrap();
        assert_eq!(imports.len(), 2);
        let first = &imports[0];
        assert_eq!(first.osv_id, "ISAC-EXAMPLE-2026-0001");
        let got: Vec<(&str, Vec<&str>)> = first
            .drafts
            .iter()
            .map(|d| {
                (
                    d.purl.as_deref().unwrap(),
                    d.versions
                        .as_ref()
                        .unwrap()
                        .iter()
                        .map(String::as_str)
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "pkg:pypi/py-crypto-utils",
                    vec![">=1.0 <1.2", ">=2.0 <=2.0.3"]
                ),
                ("pkg:golang/github.com/example-evil/mod", vec!["*"]),
                ("pkg:golang/github.com/example-evil/other", vec!["<1.4.2"]),
                (
                    "pkg:maven/com.example.evil/evil-lib",
                    vec!["1.0.0", "1.0.1"]
                ),
                ("pkg:gem/example-rest-client", vec![">=1.6.10 <1.6.14"]),
                ("pkg:nuget/Example.Evil.Package", vec!["2.0.0"]),
                ("pkg:composer/example-vendor/evil-package", vec!["*"]),
                ("pkg:npm/%40example-evil/pkg", vec!["1.2.3"]),
            ],
            "the Hackage package is skipped"
        );
        assert_eq!(first.skipped.len(), 1, "{:?}", first.skipped);
        assert!(
            first.skipped[0]
                .1
                .contains("ecosystem `Hackage` is not supported"),
            "{:?}",
            first.skipped
        );
        let d = &first.drafts[0];
        assert_eq!(
            d.title.as_deref(),
            Some("Hand-written example: one campaign, many ecosystems")
        );
        assert_eq!(
            d.labels,
            strings(&[
                "osv:ISAC-EXAMPLE-2026-0001",
                "alias:GHSA-xxxx-yyyy-zzzz",
                "alias:MAL-0000-isac-hand-written-1",
            ])
        );
        assert_eq!(
            d.references,
            strings(&["https://example.org/advisories/ISAC-EXAMPLE-2026-0001"])
        );
        assert_eq!(d.severity.as_deref(), Some("high"));
        assert_eq!(d.confidence, Some(70));
        assert_eq!(
            d.description.as_deref(),
            Some(
                "Hand-written test record (not real data).\nLine two.\n\nOSV: ISAC-EXAMPLE-2026-0001\nAliases: GHSA-xxxx-yyyy-zzzz, MAL-0000-isac-hand-written-1"
            )
        );

        let second = &imports[1];
        assert_eq!(second.modified, "2026-11-21T10:00:00.123Z");
        let d = &second.drafts[0];
        assert_eq!(d.purl.as_deref(), Some("pkg:npm/example-evil-typo"));
        assert_eq!(d.versions, strings(&["*"]));
        assert_eq!(
            d.title.as_deref(),
            Some("MAL-0000-isac-hand-written-1: malicious code in example-evil-typo")
        );
        assert_eq!(d.references, None);
        assert_eq!(d.severity.as_deref(), Some("critical"));
        assert_eq!(
            d.description.as_deref(),
            Some("OSV: MAL-0000-isac-hand-written-1")
        );
    }

    #[test]
    fn every_fixture_draft_is_publishable() {
        let mut n = 0;
        for (name, json) in ALL {
            for imp in parse_osv(name, json).unwrap() {
                for d in &imp.drafts {
                    let s = publishable(d);
                    assert_eq!(s.kind(), "package");
                    assert!(s.canonical_bytes().len() <= isac_core::statement::MAX_PAYLOAD_BYTES);
                    n += 1;
                }
            }
        }
        assert_eq!(n, 5 + 8 + 1);
    }

    #[test]
    fn directory_loading_is_recursive_and_sorted() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/osv");
        let imports: Vec<OsvImport> = load_osv_path(&root)
            .unwrap()
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        let ids: Vec<&str> = imports.iter().map(|i| i.osv_id.as_str()).collect();
        // Sorted by path: hand-written/, real/crates.io, real/npm/0-dns,
        // real/npm/@ctrl, real/pypi, real/withdrawn. README.md is skipped.
        assert_eq!(
            ids,
            [
                "ISAC-EXAMPLE-2026-0001",
                "MAL-0000-isac-hand-written-1",
                "MAL-2022-1",
                "MAL-2022-9",
                "MAL-2025-47141",
                "MAL-2024-9934",
                "MAL-2026-4377",
            ]
        );
        // A single file.
        let file = root.join("real/npm/0-dns/MAL-2022-9.json");
        let imports = load_osv_path(&file).unwrap();
        assert_eq!(imports[0].as_ref().unwrap().osv_id, "MAL-2022-9");
        // An error names the file, and the walk goes on.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/bad.json"), "{\"id\":").unwrap();
        std::fs::write(dir.path().join("a/notes.txt"), "not json").unwrap();
        std::fs::write(dir.path().join("a/c.json"), NPM_UNSCOPED).unwrap();
        let loaded = load_osv_path(dir.path()).unwrap();
        assert_eq!(loaded.len(), 2);
        let e = loaded[0].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("bad.json") && e.contains("not valid OSV JSON"),
            "{e}"
        );
        assert_eq!(loaded[1].as_ref().unwrap().osv_id, "MAL-2022-9");
        // No JSON at all.
        let empty = tempfile::tempdir().unwrap();
        std::fs::write(empty.path().join("x.txt"), "").unwrap();
        let e = load_osv_path(empty.path()).unwrap_err();
        assert!(matches!(e, OsvError::NoJsonFiles { .. }), "{e}");
        // Missing path.
        let e = load_osv_path(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(e, OsvError::Io { .. }), "{e}");
    }

    #[test]
    fn oversized_inputs_are_refused() {
        let big = format!(
            "{{\"id\":\"MAL-1\",\"modified\":\"2026-01-01T00:00:00Z\",\"details\":\"{}\"}}",
            "a".repeat(MAX_FILE_BYTES as usize)
        );
        let e = parse_osv("big.json", &big).unwrap_err();
        assert!(matches!(e, OsvError::TooLarge { .. }), "{e}");
        assert!(e.to_string().starts_with("big.json: "), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        std::fs::write(&path, &big).unwrap();
        let e = load_osv_path(&path).unwrap().remove(0).unwrap_err();
        assert!(matches!(e, OsvError::TooLarge { .. }), "{e}");
        // In a directory, the large file is one error and the rest is read.
        std::fs::write(dir.path().join("small.json"), NPM_UNSCOPED).unwrap();
        let loaded = load_osv_path(dir.path()).unwrap();
        assert_eq!(loaded.len(), 2);
        let e = loaded[0].as_ref().unwrap_err();
        assert!(matches!(e, OsvError::TooLarge { .. }), "{e}");
        assert!(loaded[1].is_ok());

        // The directory bounds, with small limits.
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            std::fs::write(dir.path().join(format!("{i}.json")), "[]").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(list_json_files(dir.path(), 5, 2, 100).unwrap().len(), 5);
        let e = list_json_files(dir.path(), 4, 2, 100).unwrap_err();
        assert!(matches!(e, OsvError::TooManyFiles { max: 4, .. }), "{e}");
        let e = list_json_files(dir.path(), 5, 1, 100).unwrap_err();
        assert!(matches!(e, OsvError::TooManyDirs { .. }), "{e}");
        let e = list_json_files(dir.path(), 5, 2, 9).unwrap_err();
        assert!(matches!(e, OsvError::TooMuchData { .. }), "{e}");

        // Too many affected packages in one record.
        let affected = vec![r#"{"package":{"ecosystem":"npm","name":"x"}}"#; MAX_AFFECTED + 1];
        let json = format!(
            r#"{{"id":"MAL-1","modified":"2026-01-01T00:00:00Z","affected":[{}]}}"#,
            affected.join(",")
        );
        let e = parse_osv("many.json", &json).unwrap_err().to_string();
        assert!(e.contains("1001 affected packages"), "{e}");
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        // Nesting where records are expected: a type error, never a deep recursion.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let cases: Vec<(&str, String, &str)> = vec![
            ("empty", String::new(), "not valid OSV JSON"),
            ("garbage", "not json".into(), "not valid OSV JSON"),
            ("truncated", r#"{"id":"MAL-1""#.into(), "not valid OSV JSON"),
            ("number", "42".into(), "found a number"),
            ("string", "\"MAL-1\"".into(), "found a string"),
            ("array of numbers", "[1]".into(), "an OSV record"),
            (
                "no id",
                r#"{"modified":"2026-01-01T00:00:00Z"}"#.into(),
                "missing `id`",
            ),
            (
                "no id in array",
                r#"[{"id":"MAL-1","modified":"2026-01-01T00:00:00Z"},{"modified":"x"}]"#.into(),
                "record 1: missing `id`",
            ),
            (
                "empty id",
                r#"{"id":"","modified":"2026-01-01T00:00:00Z"}"#.into(),
                "missing `id`",
            ),
            (
                "no modified",
                r#"{"id":"MAL-1"}"#.into(),
                "(MAL-1): missing `modified`",
            ),
            (
                "bad id",
                r#"{"id":"MAL 1\n","modified":"2026-01-01T00:00:00Z"}"#.into(),
                "is not an OSV id",
            ),
            (
                "bad modified",
                r#"{"id":"MAL-1","modified":"yesterday"}"#.into(),
                "`modified` is not an RFC 3339 timestamp",
            ),
            (
                "bad withdrawn",
                r#"{"id":"MAL-1","modified":"2026-01-01T00:00:00Z","withdrawn":"\u0000"}"#.into(),
                "`withdrawn` is not",
            ),
            (
                "wrong type",
                r#"{"id":"MAL-1","modified":"2026-01-01T00:00:00Z","affected":{}}"#.into(),
                "not valid OSV JSON",
            ),
            (
                "duplicate id",
                r#"{"id":"MAL-1","id":"MAL-2","modified":"2026-01-01T00:00:00Z"}"#.into(),
                "duplicate field",
            ),
            ("deep nesting", deep, "not valid OSV JSON"),
        ];
        for (what, json, expect) in cases {
            let e = parse_osv("t.json", &json)
                .err()
                .unwrap_or_else(|| panic!("{what}: accepted"))
                .to_string();
            assert!(e.starts_with("t.json"), "{what}: {e}");
            assert!(e.contains(expect), "{what}: {e}");
        }
        // A BOM and unknown fields are fine; an empty array is no records.
        let ok =
            "\u{feff}{\"id\":\"MAL-1\",\"modified\":\"2026-01-01T00:00:00Z\",\"x\":{\"y\":[1]}}";
        assert_eq!(parse_osv("t.json", ok).unwrap()[0].drafts.len(), 0);
        assert!(parse_osv("t.json", " [ ] ").unwrap().is_empty());
        // Deep nesting in an ignored field is skipped without recursion.
        let deep_ignored = format!(
            r#"{{"id":"MAL-1","modified":"2026-01-01T00:00:00Z","database_specific":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(parse_osv("t.json", &deep_ignored).unwrap().len(), 1);
        let deep_unknown = format!(
            r#"{{"id":"MAL-1","modified":"2026-01-01T00:00:00Z","affected":[{{"package":{{"name":"x","ecosystem":"npm","a":{}1{}}}}}]}}"#,
            "{\"a\":".repeat(100_000),
            "}".repeat(100_000)
        );
        assert_eq!(
            parse_osv("t.json", &deep_unknown).unwrap()[0].drafts.len(),
            1
        );
    }

    /// A tree as ossf/malicious-packages publishes it: reports with ids,
    /// reports awaiting one (`MAL-0000-<name>.json`, `"id": ""` or none),
    /// a file that is not JSON, an array with one bad record, a record in
    /// an ecosystem we cannot name. Every record comes back, each good one
    /// read and each bad one named by its file.
    #[test]
    fn every_record_of_a_mixed_tree_is_read_or_named() {
        let dir = tempfile::tempdir().unwrap();
        let npm = dir.path().join("osv/malicious/npm");
        std::fs::create_dir_all(npm.join("0-dns")).unwrap();
        std::fs::create_dir_all(npm.join("evil-new")).unwrap();
        std::fs::write(npm.join("0-dns/MAL-2022-9.json"), NPM_UNSCOPED).unwrap();
        std::fs::write(
            npm.join("evil-new/MAL-0000-evil-new.json"),
            r#"{"id":"","modified":"2026-11-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"evil-new"}}]}"#,
        )
        .unwrap();
        std::fs::write(
            npm.join("evil-new/MAL-0000-evil-older.json"),
            r#"{"modified":"2026-11-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"evil-older"}}]}"#,
        )
        .unwrap();
        std::fs::write(npm.join("broken.json"), "{\"id\": \"MAL-2026-1\",").unwrap();
        std::fs::write(
            npm.join("array.json"),
            r#"[{"id":"MAL-2026-2","modified":"2026-11-01T00:00:00Z"},{"id":"MAL-2026-3"}]"#,
        )
        .unwrap();
        std::fs::write(
            npm.join("hackage.json"),
            r#"{"id":"MAL-2026-4","modified":"2026-11-01T00:00:00Z","affected":[{"package":{"ecosystem":"Hackage","name":"evil"}}]}"#,
        )
        .unwrap();
        let loaded = load_osv_path(dir.path()).unwrap();
        let shown: Vec<String> = loaded
            .iter()
            .map(|r| match r {
                Ok(i) => format!("ok {} {}", i.osv_id, i.drafts.len()),
                Err(OsvError::NoId { at }) => format!("no id {at}"),
                Err(e) => format!("error {e}"),
            })
            .collect();
        let root = dir.path().display().to_string();
        let want = [
            "ok MAL-2022-9 1".to_string(),
            "ok MAL-2026-2 0".to_string(),
            format!("error {root}/osv/malicious/npm/array.json, record 1 (MAL-2026-3): missing `modified`"),
            format!("error {root}/osv/malicious/npm/broken.json: not valid OSV JSON"),
            format!("no id {root}/osv/malicious/npm/evil-new/MAL-0000-evil-new.json"),
            format!("no id {root}/osv/malicious/npm/evil-new/MAL-0000-evil-older.json"),
            "ok MAL-2026-4 0".to_string(),
        ];
        // Sorted by path: 0-dns/, array.json, broken.json, evil-new/, hackage.json.
        assert_eq!(shown.len(), want.len(), "{shown:#?}");
        for (got, want) in shown.iter().zip(&want) {
            assert!(got.starts_with(want.as_str()), "{got}\n  expected {want}");
        }
        let hackage = loaded[6].as_ref().unwrap();
        assert_eq!(hackage.skipped.len(), 1);
        assert!(
            hackage.skipped[0].1.contains("`Hackage` is not supported"),
            "{:?}",
            hackage.skipped
        );
    }

    #[test]
    fn hostile_record_stays_within_statement_limits() {
        let long_version = "9".repeat(MAX_VERSION_CHARS - 10);
        let versions: Vec<String> = (0..2000).map(|i| format!("{long_version}{i}")).collect();
        let short_versions: Vec<String> = (0..300).map(|i| format!("1.0.{i}")).collect();
        let refs: Vec<serde_json::Value> = (0..1000)
            .map(|i| {
                serde_json::json!({"url": format!("https://example.org/{}/{i}", "\"".repeat(1900))})
            })
            .collect();
        let record = serde_json::json!({
            "id": "MAL-2026-1",
            "modified": "2026-01-01T00:00:00Z",
            "aliases": (0..20).map(|i| format!("GHSA-{i}")).collect::<Vec<_>>(),
            "summary": format!("evil\u{202e}\n\t{}\u{0}", "\"\u{1F600}".repeat(500)),
            "details": format!("{}\u{7}\r\n{}", "\u{1F600}".repeat(10_000), "\"".repeat(50_000)),
            "affected": [
                {"package": {"ecosystem": "npm", "name": "evil"}, "versions": versions},
                {"package": {"ecosystem": "npm", "name": "evil2"}, "versions": short_versions},
                {"package": {"ecosystem": "npm", "name": "evil3"},
                 "versions": ["1.0 || *", "", "a,b", "ok-1"],
                 "ranges": [{"type": "SEMVER", "events": [{"introduced": "1", "fixed": "2"}]},
                            {"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}]}]},
                {"package": {"ecosystem": "npm", "name": "@/x"}},
                {"package": {"ecosystem": "npm", "name": "a b"}},
                {"package": {"ecosystem": "PyPI", "name": "x", "purl": "pkg:pypi/a@1@2"}},
                {"package": {"purl": "not a purl"}},
                {},
            ],
            "references": refs,
        })
        .to_string();
        let imp = one("hostile.json", &record);
        let purls: Vec<&str> = imp
            .drafts
            .iter()
            .map(|d| d.purl.as_deref().unwrap())
            .collect();
        assert_eq!(
            purls,
            [
                "pkg:npm/evil",
                "pkg:npm/evil2",
                "pkg:npm/evil3",
                "pkg:pypi/x"
            ]
        );
        assert_eq!(imp.drafts[0].versions, strings(&["*"]), "widened");
        assert_eq!(imp.drafts[1].versions, strings(&["*"]), "more than 256");
        assert_eq!(imp.drafts[2].versions, strings(&["ok-1", ">=2.0"]));
        assert_eq!(imp.drafts[3].versions, strings(&["*"]));
        let d = &imp.drafts[0];
        assert!(d
            .description
            .as_deref()
            .unwrap()
            .contains("covers every version"));
        assert_eq!(d.labels.as_ref().unwrap().len(), 1 + MAX_ALIASES);
        let title = d.title.as_deref().unwrap();
        assert!(title.starts_with("evil \"\u{1F600}"), "{title}");
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
        assert!(title.ends_with('…'));
        for d in &imp.drafts {
            let s = publishable(d);
            let size = s.canonical_bytes().len();
            // Room for a full audience (64 commitments) stays.
            assert!(
                size + 64 * 80 <= isac_core::statement::MAX_PAYLOAD_BYTES,
                "{size}"
            );
        }
    }

    #[test]
    fn given_purls_are_stripped() {
        for (given, want) in [
            ("pkg:npm/%40scope/name@1.0.0", "pkg:npm/%40scope/name"),
            ("pkg:npm/@scope/name@1.0.0", "pkg:npm/%40scope/name"),
            ("pkg:npm/@scope/name", "pkg:npm/%40scope/name"),
            ("pkg:NPM/left-pad@1.3.0?foo=bar#sub/dir", "pkg:npm/left-pad"),
            ("pkg:pypi/requests", "pkg:pypi/requests"),
            (
                "pkg:golang/github.com/a/b@v1.2.3",
                "pkg:golang/github.com/a/b",
            ),
            ("pkg:maven/org.x/y@1?type=jar", "pkg:maven/org.x/y"),
        ] {
            assert_eq!(normalize_purl(given).as_deref(), Ok(want), "{given}");
        }
        for bad in [
            "npm/x",
            "pkg:",
            "pkg:npm",
            "pkg:npm/",
            "pkg:npm/a@b@1",
            "pkg:npm/a b",
            "pkg:9pm/x",
            "pkg:npm/@",
        ] {
            assert!(normalize_purl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ecosystem_purls() {
        for (eco, name, want) in [
            ("npm", "left-pad", "pkg:npm/left-pad"),
            ("npm", "@babel/core", "pkg:npm/%40babel/core"),
            ("PyPI", "Zope_Interface", "pkg:pypi/zope-interface"),
            ("PyPI", "a.__b", "pkg:pypi/a-b"),
            ("crates.io", "serde_json", "pkg:cargo/serde_json"),
            ("Go", "github.com/a/b/v2", "pkg:golang/github.com/a/b/v2"),
            (
                "Maven",
                "org.apache:commons",
                "pkg:maven/org.apache/commons",
            ),
            ("RubyGems", "rails", "pkg:gem/rails"),
            ("NuGet", "Newtonsoft.Json", "pkg:nuget/Newtonsoft.Json"),
            (
                "Packagist",
                "monolog/monolog",
                "pkg:composer/monolog/monolog",
            ),
            ("npm", "weird+name#x", "pkg:npm/weird%2Bname%23x"),
        ] {
            assert_eq!(
                ecosystem_purl(eco, name).as_deref(),
                Ok(want),
                "{eco} {name}"
            );
            publishable(&IndicatorDraft {
                purl: Some(want.into()),
                title: Some("t".into()),
                ..Default::default()
            });
        }
        for (eco, name) in [
            ("npm", "@scope"),
            ("npm", "@scope/"),
            ("npm", "a/b"),
            ("Go", "github.com//b"),
            ("Maven", "no-colon"),
            ("Maven", "a:b:c"),
            ("Packagist", "novendor"),
            ("crates.io", "a\nb"),
            ("Hackage", "x"),
            ("npm", ""),
        ] {
            assert!(ecosystem_purl(eco, name).is_err(), "{eco} {name:?}");
        }
    }

    #[test]
    fn range_events_become_version_ranges() {
        fn ev(kind: &str, v: &str) -> RawEvent {
            let s = Some(v.to_owned());
            RawEvent {
                introduced: (kind == "i").then(|| s.clone()).flatten(),
                fixed: (kind == "f").then(|| s.clone()).flatten(),
                last_affected: (kind == "l").then(|| s.clone()).flatten(),
                limit: (kind == "x").then(|| s.clone()).flatten(),
            }
        }
        let r = |evs: &[(&str, &str)]| {
            range_entries(&evs.iter().map(|(k, v)| ev(k, v)).collect::<Vec<_>>())
        };
        assert_eq!(r(&[("i", "0")]).unwrap(), ["*"]);
        assert_eq!(r(&[("i", "1.0"), ("f", "1.5")]).unwrap(), [">=1.0 <1.5"]);
        assert_eq!(r(&[("i", "0"), ("f", "1.5")]).unwrap(), ["<1.5"]);
        assert_eq!(r(&[("i", "1.0"), ("l", "1.5")]).unwrap(), [">=1.0 <=1.5"]);
        assert_eq!(
            r(&[("i", "1"), ("f", "2"), ("i", "3"), ("f", "4"), ("i", "5")]).unwrap(),
            [">=1 <2", ">=3 <4", ">=5"]
        );
        assert_eq!(r(&[("i", "1"), ("x", "9")]).unwrap(), [">=1"]);
        assert_eq!(r(&[("f", "2")]).unwrap(), ["<2"]);
        assert!(r(&[]).unwrap().is_empty());
        assert!(r(&[("i", "1 2")]).is_err());
        assert_eq!(finish_versions(vec![]), (vec!["*".to_string()], false));
    }

    #[test]
    fn same_package_twice_is_one_draft() {
        let json = r#"{"id":"MAL-1","modified":"2026-01-01T00:00:00Z","affected":[
            {"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]},
            {"package":{"ecosystem":"npm","name":"x","purl":"pkg:npm/x@2.0.0"},"versions":["2.0.0"]},
            {"package":{"ecosystem":"npm","name":"x"}}]}"#;
        let imp = one("t.json", json);
        assert_eq!(imp.drafts.len(), 1);
        assert_eq!(imp.drafts[0].versions, strings(&["1.0.0", "2.0.0", "*"]));
    }

    #[test]
    fn titles_and_details_are_cleaned() {
        assert_eq!(clean_line("  a\n\tb\u{202e}c \u{0} "), "a b c");
        let t = truncate_title("é".repeat(500));
        assert_eq!(t.chars().count(), MAX_TITLE_CHARS);
        assert_eq!(truncate_title("short".into()), "short");
        assert_eq!(
            clean_details("\n a\r\nb\rc\u{0}\u{202e}\td \n"),
            "a\nb\nc\td"
        );
        let long = clean_details(&"x".repeat(20_000));
        assert!(long.ends_with("\n[… truncated]"));
        assert!(long.chars().count() <= MAX_DETAILS_CHARS + 20);
    }
}
