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

mod convert;
mod read;
#[cfg(test)]
mod tests;

pub use read::{load_osv_path, parse_osv, parse_osv_each, Loaded};

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
