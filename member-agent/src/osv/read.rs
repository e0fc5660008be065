//! Reading OSV files and trees, bounded, each record read or named.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::convert::convert;
use super::*;

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
pub(super) fn list_json_files(
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
