//! Dependency lockfiles, read to answer "do I depend on something a member
//! warned about?" (`member-agent check FILE`).
//!
//! [`parse_lockfile`] turns a package-lock.json / npm-shrinkwrap.json,
//! Cargo.lock, poetry.lock, requirements*.txt or go.sum into a list of
//! [`Dependency`]s, and [`matches`] says whether one of them is affected by a
//! package indicator (a purl plus a list of affected versions or ranges).
//!
//! Lockfiles come from anywhere (a pull request, a downloaded project), so
//! every parser treats its input as hostile: files over
//! [`MAX_LOCKFILE_BYTES`] are refused, work is linear in the input (no
//! recursion on attacker-controlled nesting), malformed input is an error that
//! says where, and nothing panics. Nothing here touches the disk or network.

use std::cmp::Ordering;
use std::fmt;

use isac_core::observable::parse_purl;
use serde_json::{Map, Value};

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
    #[error("{file_name} is not valid JSON: {source}")]
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
        Format::Npm => parse_npm(&cx, contents)?,
        Format::Cargo => parse_toml_packages(&cx, contents, "cargo", TomlFlavour::Cargo)?,
        Format::Poetry => parse_toml_packages(&cx, contents, "pypi", TomlFlavour::Poetry)?,
        Format::Requirements => parse_requirements(&cx, contents)?,
        Format::GoSum => parse_go_sum(&cx, contents)?,
    };
    deps.sort();
    deps.dedup();
    Ok(deps)
}

/// Echo at most a short, escaped prefix of attacker-controlled text.
fn shown(s: &str) -> String {
    const MAX: usize = 80;
    let head: String = s.chars().take(MAX).collect();
    let mut out = head.escape_debug().to_string();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// What the parsers need to build errors.
struct Cx {
    file_name: String,
}

impl Cx {
    fn invalid(&self, message: impl Into<String>) -> LockfileError {
        LockfileError::Invalid {
            file_name: self.file_name.clone(),
            message: message.into(),
        }
    }

    fn syntax(&self, line: usize, message: impl Into<String>) -> LockfileError {
        LockfileError::Syntax {
            file_name: self.file_name.clone(),
            line,
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------
// npm: package-lock.json / npm-shrinkwrap.json

fn parse_npm(cx: &Cx, contents: &str) -> Result<Vec<Dependency>, LockfileError> {
    // serde_json refuses nesting deeper than 128 levels, so hostile nesting
    // is an error, not a stack overflow.
    let root: Value = serde_json::from_str(contents).map_err(|source| LockfileError::Json {
        file_name: cx.file_name.clone(),
        source,
    })?;
    let root = root
        .as_object()
        .ok_or_else(|| cx.invalid("expected a JSON object at the top level"))?;
    let lockfile_version = match root.get("lockfileVersion") {
        None => return Err(cx.invalid(
            "no `lockfileVersion`: this is not an npm lockfile (package.json is not a lockfile; \
                 run `npm install --package-lock-only` to make one)",
        )),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| cx.invalid("`lockfileVersion` must be a whole number"))?,
    };
    if lockfile_version == 0 {
        return Err(cx.invalid("unsupported `lockfileVersion` 0"));
    }
    let mut out = Vec::new();
    if lockfile_version >= 2 {
        if let Some(packages) = root.get("packages") {
            npm_packages(cx, packages, &mut out)?;
            return Ok(out);
        }
    }
    match root.get("dependencies") {
        Some(deps) => npm_v1_dependencies(cx, deps, &mut out)?,
        None if lockfile_version >= 2 => {
            return Err(cx.invalid(format!(
                "`lockfileVersion` is {lockfile_version} but there is no `packages` map"
            )))
        }
        None => {}
    }
    Ok(out)
}

/// lockfileVersion 2 and 3: a flat map from install path to package.
fn npm_packages(cx: &Cx, packages: &Value, out: &mut Vec<Dependency>) -> Result<(), LockfileError> {
    let packages = packages
        .as_object()
        .ok_or_else(|| cx.invalid("`packages` must be an object"))?;
    for (path, entry) in packages {
        if path.is_empty() {
            continue; // the project itself
        }
        let entry = entry.as_object().ok_or_else(|| {
            cx.invalid(format!("packages[\"{}\"] must be an object", shown(path)))
        })?;
        if entry.get("link").and_then(Value::as_bool) == Some(true) {
            continue; // a symlink to a workspace folder, listed on its own
        }
        // Entries outside node_modules are workspace sources, not installed
        // packages.
        let Some((_, folder_name)) = path.rsplit_once("node_modules/") else {
            continue;
        };
        // Aliases (`"x": "npm:real@1"`) install `real` under the folder `x`
        // and record the real name in `name`.
        let name = match entry.get("name") {
            None => folder_name,
            Some(Value::String(name)) => name.as_str(),
            Some(_) => {
                return Err(cx.invalid(format!(
                    "packages[\"{}\"].name must be a string",
                    shown(path)
                )))
            }
        };
        let version = match entry.get("version") {
            None => continue,
            Some(Value::String(v)) => v.as_str(),
            Some(_) => {
                return Err(cx.invalid(format!(
                    "packages[\"{}\"].version must be a string",
                    shown(path)
                )))
            }
        };
        push_npm(cx, path, name, version, out)?;
    }
    Ok(())
}

/// lockfileVersion 1: nested `dependencies` maps, walked with an explicit
/// stack.
fn npm_v1_dependencies(
    cx: &Cx,
    deps: &Value,
    out: &mut Vec<Dependency>,
) -> Result<(), LockfileError> {
    let not_object = || cx.invalid("`dependencies` must be an object");
    let mut stack: Vec<&Map<String, Value>> = vec![deps.as_object().ok_or_else(not_object)?];
    while let Some(map) = stack.pop() {
        for (name, entry) in map {
            let entry = entry.as_object().ok_or_else(|| {
                cx.invalid(format!(
                    "dependencies[\"{}\"] must be an object",
                    shown(name)
                ))
            })?;
            match entry.get("version") {
                None => {}
                Some(Value::String(version)) => {
                    if let Some(real) = version.strip_prefix("npm:") {
                        // An alias: `"version": "npm:real-name@1.2.3"`.
                        match real.rsplit_once('@') {
                            Some((real_name, real_version)) if !real_name.is_empty() => {
                                push_npm(cx, name, real_name, real_version, out)?
                            }
                            _ => push_npm(cx, name, name, version, out)?,
                        }
                    } else if version.starts_with("file:") || version.starts_with("link:") {
                        // A local folder: no registry identity to match.
                    } else {
                        push_npm(cx, name, name, version, out)?;
                    }
                }
                Some(_) => {
                    return Err(cx.invalid(format!(
                        "dependencies[\"{}\"].version must be a string",
                        shown(name)
                    )))
                }
            }
            if let Some(nested) = entry.get("dependencies") {
                stack.push(nested.as_object().ok_or_else(not_object)?);
            }
        }
    }
    Ok(())
}

fn push_npm(
    cx: &Cx,
    key: &str,
    name: &str,
    version: &str,
    out: &mut Vec<Dependency>,
) -> Result<(), LockfileError> {
    let bad = |what: &str| cx.invalid(format!("`{}`: {what}", shown(key)));
    if version.is_empty() {
        return Err(bad("empty version"));
    }
    let (namespace, name) = match name.strip_prefix('@').and_then(|s| s.split_once('/')) {
        Some((scope, pkg)) => {
            if scope.is_empty() || pkg.is_empty() || pkg.contains('/') {
                return Err(bad("bad scoped package name (expected `@scope/name`)"));
            }
            (Some(format!("@{scope}")), pkg)
        }
        None => (None, name),
    };
    if name.is_empty() || name.contains('/') {
        return Err(bad("bad package name"));
    }
    out.push(Dependency {
        ecosystem: "npm".into(),
        namespace,
        name: name.into(),
        version: version.into(),
    });
    Ok(())
}

// ---------------------------------------------------------------------------
// TOML-like lockfiles: Cargo.lock and poetry.lock

/// One item of a TOML document, as far as lockfiles need: table headers and
/// `key = value` lines (a value may span lines: arrays, multi-line strings).
#[derive(Debug)]
enum TomlItem<'a> {
    Header { name: &'a str, array: bool },
    KeyValue { key: &'a str, value: &'a str },
}

/// Splits a TOML document into items, checking its structure (balanced
/// brackets, terminated strings, `key = value` shape) but not types. Linear
/// and without recursion.
fn scan_toml<'a>(cx: &Cx, contents: &'a str) -> Result<Vec<(usize, TomlItem<'a>)>, LockfileError> {
    let mut items = Vec::new();
    let mut lines = contents.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((line_no, raw)) = lines.next() {
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(after_open) = t.strip_prefix('[') {
            let (array, split) = match after_open.strip_prefix('[') {
                Some(inner) => (true, inner.split_once("]]")),
                None => (false, after_open.split_once(']')),
            };
            let (name, rest) =
                split.ok_or_else(|| cx.syntax(line_no, "unterminated `[table]` header"))?;
            let rest = rest.trim_start();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(cx.syntax(line_no, "unexpected text after a `[table]` header"));
            }
            let name = name.trim();
            if name.is_empty() {
                return Err(cx.syntax(line_no, "empty `[table]` header"));
            }
            items.push((line_no, TomlItem::Header { name, array }));
            continue;
        }
        let (key, value) = split_toml_key(t)
            .ok_or_else(|| cx.syntax(line_no, "expected `key = value` or a `[table]` header"))?;
        let mut scan = ValueScan::default();
        let mut complete = scan.feed(value).map_err(|m| cx.syntax(line_no, m))?;
        if !scan.seen_value {
            return Err(cx.syntax(line_no, format!("missing value after `{} =`", shown(key))));
        }
        while !complete {
            let Some((n, more)) = lines.next() else {
                return Err(cx.syntax(
                    line_no,
                    "value never ends (unclosed `[`, `{` or multi-line string)",
                ));
            };
            complete = scan.feed(more).map_err(|m| cx.syntax(n, m))?;
        }
        items.push((line_no, TomlItem::KeyValue { key, value }));
    }
    Ok(items)
}

/// `key = rest` with a bare, quoted or dotted key.
fn split_toml_key(t: &str) -> Option<(&str, &str)> {
    let (key, rest) = match t.as_bytes().first()? {
        q @ (b'"' | b'\'') => {
            let q = char::from(*q);
            let inner = &t[1..];
            let end = inner.find(q)?;
            (&inner[..end], &inner[end + 1..])
        }
        _ => {
            let eq = t.find('=')?;
            let key = t[..eq].trim_end();
            let ok = !key.is_empty()
                && key.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b' ' | b'\t')
                });
            if !ok {
                return None;
            }
            (key, &t[eq..])
        }
    };
    let rest = rest.trim_start().strip_prefix('=')?;
    Some((key, rest))
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum StrState {
    #[default]
    None,
    Basic,
    Literal,
    MultiBasic,
    MultiLiteral,
}

/// Tracks whether a TOML value is complete at the end of a line.
#[derive(Debug, Default)]
struct ValueScan {
    state: StrState,
    depth: usize,
    seen_value: bool,
}

impl ValueScan {
    /// Feeds one line; returns whether the value is complete after it.
    fn feed(&mut self, line: &str) -> Result<bool, &'static str> {
        // Delimiters are ASCII, so walking bytes is safe on UTF-8 text.
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let starts = |pat: &[u8]| b[i..].starts_with(pat);
            match self.state {
                StrState::None => match c {
                    b'#' => break,
                    b'"' if starts(b"\"\"\"") => {
                        self.state = StrState::MultiBasic;
                        i += 2;
                    }
                    b'"' => self.state = StrState::Basic,
                    b'\'' if starts(b"'''") => {
                        self.state = StrState::MultiLiteral;
                        i += 2;
                    }
                    b'\'' => self.state = StrState::Literal,
                    b'[' | b'{' => self.depth += 1,
                    b']' | b'}' => {
                        self.depth = self.depth.checked_sub(1).ok_or("unbalanced `]` or `}`")?;
                    }
                    _ => {}
                },
                StrState::Basic | StrState::MultiBasic if c == b'\\' => i += 1,
                StrState::Basic if c == b'"' => self.state = StrState::None,
                StrState::Literal if c == b'\'' => self.state = StrState::None,
                StrState::MultiBasic if starts(b"\"\"\"") => {
                    self.state = StrState::None;
                    i += 2;
                }
                StrState::MultiLiteral if starts(b"'''") => {
                    self.state = StrState::None;
                    i += 2;
                }
                _ => {}
            }
            if !c.is_ascii_whitespace() {
                self.seen_value = true;
            }
            i += 1;
        }
        match self.state {
            StrState::Basic | StrState::Literal => Err("unterminated string"),
            StrState::MultiBasic | StrState::MultiLiteral => Ok(false),
            StrState::None => Ok(self.depth == 0),
        }
    }
}

/// The text of a single-line TOML string value (`"..."` or `'...'`,
/// optionally followed by a comment); `None` for anything else.
fn toml_string(value: &str) -> Option<String> {
    let v = value.trim();
    if v.starts_with("\"\"\"") || v.starts_with("'''") {
        return None;
    }
    let (text, rest) = if let Some(inner) = v.strip_prefix('\'') {
        let end = inner.find('\'')?;
        (inner[..end].to_owned(), &inner[end + 1..])
    } else {
        let inner = v.strip_prefix('"')?;
        let mut text = String::new();
        let mut chars = inner.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i + 1,
                '\\' => {
                    let (_, e) = chars.next()?;
                    match e {
                        '"' => text.push('"'),
                        '\\' => text.push('\\'),
                        'n' => text.push('\n'),
                        't' => text.push('\t'),
                        'r' => text.push('\r'),
                        'b' => text.push('\u{8}'),
                        'f' => text.push('\u{c}'),
                        'u' | 'U' => {
                            let len = if e == 'u' { 4 } else { 8 };
                            let mut code = 0u32;
                            for _ in 0..len {
                                let (_, h) = chars.next()?;
                                code = code * 16 + h.to_digit(16)?;
                            }
                            text.push(char::from_u32(code)?);
                        }
                        _ => return None,
                    }
                }
                c => text.push(c),
            }
        };
        (text, &inner[end..])
    };
    let rest = rest.trim_start();
    (rest.is_empty() || rest.starts_with('#')).then_some(text)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TomlFlavour {
    Cargo,
    Poetry,
}

/// `[[package]]` tables with `name` and `version` (Cargo.lock, poetry.lock).
/// Keys of other tables, including a package's own sub-tables such as
/// `[package.dependencies]`, are ignored.
fn parse_toml_packages(
    cx: &Cx,
    contents: &str,
    ecosystem: &str,
    flavour: TomlFlavour,
) -> Result<Vec<Dependency>, LockfileError> {
    struct Block {
        line: usize,
        name: Option<String>,
        version: Option<String>,
    }
    let finish = |block: Block, out: &mut Vec<Dependency>| -> Result<(), LockfileError> {
        let name = block
            .name
            .ok_or_else(|| cx.syntax(block.line, "this `[[package]]` has no `name`"))?;
        let version = block
            .version
            .ok_or_else(|| cx.syntax(block.line, "this `[[package]]` has no `version`"))?;
        out.push(Dependency {
            ecosystem: ecosystem.into(),
            namespace: None,
            name,
            version,
        });
        Ok(())
    };

    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    let mut in_package_table = false;
    let mut seen_metadata = false;
    for (line, item) in scan_toml(cx, contents)? {
        match item {
            TomlItem::Header {
                name: "package",
                array: true,
            } => {
                if let Some(block) = current.take() {
                    finish(block, &mut out)?;
                }
                current = Some(Block {
                    line,
                    name: None,
                    version: None,
                });
                in_package_table = true;
            }
            TomlItem::Header { name, .. } => {
                in_package_table = false;
                seen_metadata |= name == "metadata";
            }
            TomlItem::KeyValue { key, value } => {
                let Some(block) = current.as_mut().filter(|_| in_package_table) else {
                    continue;
                };
                let slot = match key {
                    "name" => &mut block.name,
                    "version" => &mut block.version,
                    _ => continue,
                };
                if slot.is_some() {
                    return Err(cx.syntax(line, format!("duplicate `{key}` in this `[[package]]`")));
                }
                let text = toml_string(value).ok_or_else(|| {
                    cx.syntax(line, format!("`{key}` must be a single-line quoted string"))
                })?;
                if text.is_empty() || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    return Err(cx.syntax(
                        line,
                        format!("`{key}` must be non-empty, without spaces or control characters"),
                    ));
                }
                *slot = Some(text);
            }
        }
    }
    let seen_any = current.is_some();
    if let Some(block) = current {
        finish(block, &mut out)?;
    }
    match flavour {
        TomlFlavour::Cargo if !seen_any => {
            Err(cx.invalid("no `[[package]]` entries: this does not look like a Cargo.lock"))
        }
        TomlFlavour::Poetry if !seen_any && !seen_metadata => Err(cx.invalid(
            "no `[[package]]` entries and no `[metadata]`: this does not look like a poetry.lock",
        )),
        _ => Ok(out),
    }
}

// ---------------------------------------------------------------------------
// requirements.txt

/// Exact pins (`name==1.2.3`, `name===1.2.3`) from a pip requirements file.
/// Lines that pin nothing (ranges, bare names, URLs, paths, options) are
/// skipped: there is no version to check. Lines that are not requirements
/// at all are errors, as they are for pip.
fn parse_requirements(cx: &Cx, contents: &str) -> Result<Vec<Dependency>, LockfileError> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start = 0;
    for (i, raw) in contents.lines().enumerate() {
        if logical.is_empty() {
            start = i + 1;
        }
        // `\` at the end of a line continues it on the next one.
        if let Some(head) = raw.trim_end().strip_suffix('\\') {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        logical.push_str(raw);
        requirement_line(cx, start, &logical, &mut out)?;
        logical.clear();
    }
    if !logical.is_empty() {
        requirement_line(cx, start, &logical, &mut out)?;
    }
    Ok(out)
}

fn requirement_line(
    cx: &Cx,
    line_no: usize,
    line: &str,
    out: &mut Vec<Dependency>,
) -> Result<(), LockfileError> {
    // A comment starts with `#` at the beginning or after whitespace (a `#`
    // inside a URL, as in `#egg=`, is not one).
    let mut line = line;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            line = &line[..i];
            break;
        }
        prev_space = c.is_whitespace();
    }
    let line = line.trim();
    if line.is_empty() || line.starts_with('-') {
        return Ok(()); // blank, comment, or an option line (-r, -e, --hash...)
    }
    // Per-requirement options (`--hash=...`) and environment markers.
    let line = cut_options(line);
    let line = line
        .split_once(';')
        .map_or(line, |(req, _marker)| req)
        .trim();
    if line.is_empty() || is_path_or_url(line) {
        return Ok(());
    }
    let bad = |what: String| cx.syntax(line_no, what);
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(name_end);
    let name_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !name_ok {
        return Err(bad(format!(
            "expected a requirement like `name==1.2.3`, found `{}`",
            shown(line)
        )));
    }
    let mut rest = rest.trim_start();
    if let Some(extras) = rest.strip_prefix('[') {
        let (_, after) = extras
            .split_once(']')
            .ok_or_else(|| bad(format!("unclosed `[extras]` after `{}`", shown(name))))?;
        rest = after.trim_start();
    }
    if rest.is_empty() || rest.starts_with('@') {
        return Ok(()); // unpinned, or a direct URL reference
    }
    let specs = rest
        .strip_prefix('(')
        .and_then(|r| r.trim_end().strip_suffix(')'))
        .unwrap_or(rest);
    let mut pinned: Option<&str> = None;
    for spec in specs.split(',') {
        let spec = spec.trim();
        let (op, version) = ["===", "==", "~=", "!=", "<=", ">=", "<", ">"]
            .iter()
            .find_map(|op| spec.strip_prefix(op).map(|v| (*op, v.trim())))
            .ok_or_else(|| {
                bad(format!(
                    "expected a version specifier such as `==1.2.3` after `{}`, found `{}`",
                    shown(name),
                    shown(spec)
                ))
            })?;
        if version.is_empty() || version.contains(char::is_whitespace) {
            return Err(bad(format!(
                "bad version `{}` for `{}`",
                shown(version),
                shown(name)
            )));
        }
        let exact = op == "===" || (op == "==" && !version.contains('*'));
        if exact {
            if pinned.is_some_and(|p| p != version) {
                return Ok(()); // contradictory pins: pip would fail to install
            }
            pinned = Some(version);
        }
    }
    if let Some(version) = pinned {
        out.push(Dependency {
            ecosystem: "pypi".into(),
            namespace: None,
            name: name.into(),
            version: version.into(),
        });
    }
    Ok(())
}

/// Drops per-requirement options: everything from the first whitespace
/// followed by `-`.
fn cut_options(line: &str) -> &str {
    let mut prev_space = false;
    for (i, c) in line.char_indices() {
        if c == '-' && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

fn is_path_or_url(req: &str) -> bool {
    const ARCHIVES: [&str; 6] = [".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"];
    req.contains("://")
        || req.starts_with(['.', '/', '~'])
        || req.contains('\\')
        || ARCHIVES.iter().any(|ext| req.ends_with(ext))
}

// ---------------------------------------------------------------------------
// go.sum

/// `module version hash` lines; `/go.mod`-only entries (modules whose code
/// was not needed) are skipped, `+incompatible` is dropped.
fn parse_go_sum(cx: &Cx, contents: &str) -> Result<Vec<Dependency>, LockfileError> {
    let mut out = Vec::new();
    for (i, line) in contents.lines().enumerate() {
        let line_no = i + 1;
        let mut fields = line.split_whitespace();
        let (module, version, hash) = match (fields.next(), fields.next(), fields.next()) {
            (None, _, _) => continue,
            (Some(m), Some(v), Some(h)) if fields.next().is_none() => (m, v, h),
            _ => {
                return Err(cx.syntax(
                    line_no,
                    "expected `module version hash`, e.g. `golang.org/x/net v0.17.0 h1:...`",
                ))
            }
        };
        let module_ok = module
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'))
            && !module.starts_with('/')
            && !module.ends_with('/')
            && !module.contains("//");
        if !module_ok {
            return Err(cx.syntax(line_no, format!("bad module path `{}`", shown(module))));
        }
        if !version.starts_with('v') {
            return Err(cx.syntax(
                line_no,
                format!(
                    "bad version `{}` (Go versions start with `v`)",
                    shown(version)
                ),
            ));
        }
        if !hash.contains(':') {
            return Err(cx.syntax(line_no, "bad hash (expected `h1:...`)"));
        }
        if version.ends_with("/go.mod") {
            continue;
        }
        let version = version.strip_suffix("+incompatible").unwrap_or(version);
        let (namespace, name) = match module.rsplit_once('/') {
            Some((ns, name)) => (Some(ns.to_owned()), name),
            None => (None, module),
        };
        out.push(Dependency {
            ecosystem: "golang".into(),
            namespace,
            name: name.into(),
            version: version.into(),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Matching

/// True when `dep` is affected by a package indicator for `purl` whose
/// affected versions are `versions`.
///
/// The package must be the same: same ecosystem (purl type), and the same
/// name once normalised (PyPI per PEP 503; npm scopes with or without
/// percent-encoding, case-insensitively; Go module paths whole,
/// case-insensitively; Cargo with `-` and `_` equal).
///
/// Versions: with an empty `versions`, a purl version means exactly that
/// version and no purl version means every version. Otherwise any entry
/// must match: `*`, an exact version (`1.0.0`, `v1.0.0`, `=1.0.0`,
/// `==1.0.0`), or comparators that must all hold, separated by spaces or
/// commas (`>=1.2.0 <1.2.5`, `>=0, <2.0.0`, `<=3.1`, `!=1.0.1`); `||`
/// separates alternatives. An unparseable purl matches nothing.
pub fn matches(purl: &str, versions: &[String], dep: &Dependency) -> bool {
    let Ok(purl) = parse_purl(purl) else {
        return false;
    };
    if purl.ty != dep.ecosystem {
        return false;
    }
    let namespace = match purl.namespace.as_deref().map(isac_core::pct::decode_strict) {
        None => None,
        Some(Some(ns)) => Some(ns),
        Some(None) => return false,
    };
    let Some(name) = isac_core::pct::decode_strict(&purl.name) else {
        return false;
    };
    if package_id(&purl.ty, namespace.as_deref(), &name)
        != package_id(&dep.ecosystem, dep.namespace.as_deref(), &dep.name)
    {
        return false;
    }
    if versions.is_empty() {
        return match purl.version.as_deref().map(isac_core::pct::decode_strict) {
            None => true,
            Some(Some(v)) => cmp_versions(&dep.version, &v) == Ordering::Equal,
            Some(None) => false,
        };
    }
    versions
        .iter()
        .any(|entry| version_entry_matches(entry, &dep.version))
}

/// The package's identity within its ecosystem, normalised for comparison.
fn package_id(ecosystem: &str, namespace: Option<&str>, name: &str) -> String {
    let full = match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    };
    match ecosystem {
        "pypi" => pep503(&full),
        "npm" => {
            let full = full.to_ascii_lowercase();
            if full.contains('/') && !full.starts_with('@') {
                format!("@{full}")
            } else {
                full
            }
        }
        // Go refuses two modules differing only in case in one build, and
        // the purl spec lowercases golang names.
        "golang" => full.to_ascii_lowercase(),
        "cargo" => full.replace('_', "-"),
        _ => full,
    }
}

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

/// One entry of an indicator's `versions`: `*`, an exact version, or a
/// range of comparators; `||` separates alternatives.
fn version_entry_matches(entry: &str, version: &str) -> bool {
    entry.split("||").any(|alt| range_matches(alt, version))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

fn split_op(token: &str) -> (Op, &str) {
    const OPS: [(&str, Op); 8] = [
        ("===", Op::Eq),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("<=", Op::Le),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
    ];
    OPS.iter()
        .find_map(|(text, op)| token.strip_prefix(text).map(|rest| (*op, rest)))
        .unwrap_or((Op::Eq, token))
}

/// All comparators of one range must hold; an empty range matches nothing.
fn range_matches(range: &str, version: &str) -> bool {
    let mut tokens = range
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty());
    let mut any = false;
    while let Some(token) = tokens.next() {
        let (op, mut bound) = split_op(token);
        if bound.is_empty() {
            // `>= 1.2.0`: the operator and its version are separate tokens.
            match tokens.next() {
                Some(next) => bound = next,
                None => return false,
            }
        }
        if bound != "*" {
            // Ordering something that is not a version (a git URL, a typo
            // such as `>=>=1`) would match by accident: only `=` may.
            if op != Op::Eq && !(looks_like_version(bound) && looks_like_version(version)) {
                return false;
            }
            let ord = cmp_versions(version, bound);
            let holds = match op {
                Op::Eq => ord == Ordering::Equal,
                Op::Ne => ord != Ordering::Equal,
                Op::Lt => ord == Ordering::Less,
                Op::Le => ord != Ordering::Greater,
                Op::Gt => ord == Ordering::Greater,
                Op::Ge => ord != Ordering::Less,
            };
            if !holds {
                return false;
            }
        }
        any = true;
    }
    any
}

/// Starts with a digit, after an optional `v`.
fn looks_like_version(s: &str) -> bool {
    let s = s.trim();
    s.strip_prefix(['v', 'V'])
        .unwrap_or(s)
        .starts_with(|c: char| c.is_ascii_digit())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Pre,
    Release,
    Post,
}

/// A version split for comparison: `[v][epoch!]1.2.3[-pre][+build]`.
struct Version<'a> {
    epoch: &'a str,
    release: Vec<&'a str>,
    phase: Phase,
    tail: &'a str,
}

fn parse_version(s: &str) -> Version<'_> {
    let s = s.trim();
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    // Build metadata (semver `+build`, Go `+incompatible`, PEP 440 local
    // versions) does not order versions.
    let s = s.split_once('+').map_or(s, |(head, _)| head);
    let (epoch, s) = match s.split_once('!') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (e, rest),
        _ => ("0", s),
    };
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (release, rest) = s.split_at(end);
    let release = release.split('.').filter(|p| !p.is_empty()).collect();
    let tail = rest.trim_start_matches(['-', '.', '_']);
    let phase = if tail.is_empty() {
        Phase::Release
    } else if tail
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("post"))
    {
        Phase::Post // PEP 440 post-release: after the release
    } else {
        Phase::Pre // semver pre-release, PEP 440 a/b/rc/dev, Go pseudo-versions
    };
    Version {
        epoch,
        release,
        phase,
        tail,
    }
}

/// Orders versions by numeric dot-separated segments (missing ones are 0),
/// then pre-release < release < post-release, then the suffixes.
fn cmp_versions(a: &str, b: &str) -> Ordering {
    let (a, b) = (parse_version(a), parse_version(b));
    let segments = a.release.len().max(b.release.len());
    let release = (0..segments)
        .map(|i| {
            let x = a.release.get(i).copied().unwrap_or("0");
            let y = b.release.get(i).copied().unwrap_or("0");
            cmp_digits(x, y)
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal);
    cmp_digits(a.epoch, b.epoch)
        .then(release)
        .then(a.phase.cmp(&b.phase))
        .then_with(|| cmp_suffix(a.tail, b.tail))
}

/// Compares two runs of ASCII digits as numbers of any length.
fn cmp_digits(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Compares pre-release suffixes identifier by identifier (split on `.`,
/// `-`, `_`); fewer identifiers sort first when the rest are equal.
fn cmp_suffix(a: &str, b: &str) -> Ordering {
    fn split(s: &str) -> Vec<&str> {
        s.split(['.', '-', '_']).filter(|p| !p.is_empty()).collect()
    }
    let (a, b) = (split(a), split(b));
    a.iter()
        .zip(&b)
        .map(|(x, y)| cmp_identifier(x, y))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// Natural order: digit runs compare as numbers (and before letters),
/// letter runs as case-insensitive strings.
fn cmp_identifier(mut a: &str, mut b: &str) -> Ordering {
    fn chunk(s: &str) -> (&str, &str, bool) {
        let digits = s.starts_with(|c: char| c.is_ascii_digit());
        let end = s
            .find(|c: char| c.is_ascii_digit() != digits)
            .unwrap_or(s.len());
        let (head, rest) = s.split_at(end);
        (head, rest, digits)
    }
    while !a.is_empty() && !b.is_empty() {
        let (x, a_rest, x_digits) = chunk(a);
        let (y, b_rest, y_digits) = chunk(b);
        let ord = match (x_digits, y_digits) {
            (true, true) => cmp_digits(x, y),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x
                .bytes()
                .map(|c| c.to_ascii_lowercase())
                .cmp(y.bytes().map(|c| c.to_ascii_lowercase())),
        };
        if ord.is_ne() {
            return ord;
        }
        (a, b) = (a_rest, b_rest);
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NPM_V3: &str = include_str!("../tests/fixtures/lockfiles/package-lock.json");
    const NPM_V1: &str = include_str!("../tests/fixtures/lockfiles/package-lock-v1.json");
    const CARGO_LOCK: &str = include_str!("../tests/fixtures/lockfiles/Cargo.lock");
    const POETRY_LOCK: &str = include_str!("../tests/fixtures/lockfiles/poetry.lock");
    const REQUIREMENTS: &str = include_str!("../tests/fixtures/lockfiles/requirements.txt");
    const GO_SUM: &str = include_str!("../tests/fixtures/lockfiles/go.sum");

    fn dep(ecosystem: &str, namespace: Option<&str>, name: &str, version: &str) -> Dependency {
        Dependency {
            ecosystem: ecosystem.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
            version: version.into(),
        }
    }

    fn list(ecosystem: &str, entries: &[(Option<&str>, &str, &str)]) -> Vec<Dependency> {
        entries
            .iter()
            .map(|(ns, name, version)| dep(ecosystem, *ns, name, version))
            .collect()
    }

    fn vs(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|s| s.to_string()).collect()
    }

    /// The dependencies of `deps` that the indicator matches, as `name@version`.
    fn hits(purl: &str, versions: &[&str], deps: &[Dependency]) -> Vec<String> {
        let versions = vs(versions);
        deps.iter()
            .filter(|d| matches(purl, &versions, d))
            .map(|d| format!("{}@{}", d.name, d.version))
            .collect()
    }

    #[test]
    fn npm_v3_lockfile() {
        let deps = parse_lockfile("web/package-lock.json", NPM_V3).unwrap();
        let expected = list(
            "npm",
            &[
                (None, "chalk", "2.4.2"),
                (None, "debug", "2.6.9"),
                (None, "express", "4.18.2"),
                (None, "js-tokens", "4.0.0"),
                // node_modules/ms and packages/shared-ui/node_modules/ms: once.
                (None, "ms", "2.0.0"),
                // node_modules/send/node_modules/ms (nested).
                (None, "ms", "2.1.3"),
                (None, "send", "0.18.0"),
                // node_modules/string-width-cjs is an alias of string-width.
                (None, "string-width", "4.2.3"),
                (None, "string-width", "5.1.2"),
                (None, "undici-types", "5.26.5"),
                (Some("@babel"), "code-frame", "7.22.13"),
                (Some("@babel"), "code-frame", "7.23.5"),
                (Some("@babel"), "highlight", "7.23.4"),
                (Some("@isaacs"), "cliui", "8.0.2"),
                (Some("@types"), "node", "20.11.19"),
            ],
        );
        // The root "", the `link: true` entry and the workspace folder
        // `packages/shared-ui` are not dependencies.
        assert_eq!(deps, expected);
        assert_eq!(
            parse_lockfile("npm-shrinkwrap.json", NPM_V3).unwrap(),
            expected
        );
    }

    #[test]
    fn npm_v1_lockfile() {
        let deps = parse_lockfile("package-lock.json", NPM_V1).unwrap();
        let expected = list(
            "npm",
            &[
                (None, "accepts", "1.3.8"),
                (None, "body-parser", "1.19.0"),
                (None, "bytes", "3.1.0"),
                (None, "debug", "2.6.9"), // nested under body-parser
                (None, "debug", "4.3.4"),
                (None, "lodash", "4.17.20"), // "lodash-legacy": "npm:lodash@4.17.20"
                (None, "mime-db", "1.52.0"),
                (None, "mime-types", "2.1.35"),
                (None, "ms", "2.0.0"), // nested two levels deep
                (None, "ms", "2.1.2"),
                (None, "negotiator", "0.6.3"),
                (None, "qs", "6.11.0"),
                (None, "qs", "6.7.0"),
                (Some("@types"), "node", "14.18.63"),
            ],
        );
        // "admin-theme": "file:../admin-theme" is local code: skipped.
        assert_eq!(deps, expected);
    }

    #[test]
    fn npm_matching() {
        let deps = parse_lockfile("package-lock.json", NPM_V3).unwrap();
        // Scoped names, percent-encoded or not, case-insensitively.
        for purl in [
            "pkg:npm/%40babel/code-frame@7.23.5",
            "pkg:npm/@babel/code-frame@7.23.5",
            "pkg:npm/%40Babel/Code-Frame@7.23.5",
        ] {
            assert_eq!(hits(purl, &[], &deps), ["code-frame@7.23.5"], "{purl}");
        }
        assert_eq!(
            hits("pkg:npm/%40babel/code-frame", &[], &deps),
            ["code-frame@7.22.13", "code-frame@7.23.5"]
        );
        // The scope is part of the name.
        assert!(hits("pkg:npm/code-frame", &[], &deps).is_empty());
        assert!(hits("pkg:npm/%40other/code-frame", &[], &deps).is_empty());
        assert!(hits("pkg:npm/%40babel/highlight@7.23.5", &[], &deps).is_empty());
        // Ranges.
        assert_eq!(
            hits("pkg:npm/%40types/node", &[">=20.0.0 <20.11.20"], &deps),
            ["node@20.11.19"]
        );
        assert!(hits("pkg:npm/%40types/node", &["<20.11.19", ">20.11.19"], &deps).is_empty());
        // A nested copy is found; the exact version picks it out.
        assert_eq!(hits("pkg:npm/ms", &["2.1.3"], &deps), ["ms@2.1.3"]);
        assert_eq!(hits("pkg:npm/ms", &["*"], &deps), ["ms@2.0.0", "ms@2.1.3"]);
        assert!(hits("pkg:npm/ms", &["2.1.2"], &deps).is_empty());
        // An alias is checked under its real name, not its folder name.
        assert_eq!(
            hits("pkg:npm/string-width@4.2.3", &[], &deps),
            ["string-width@4.2.3"]
        );
        assert!(hits("pkg:npm/string-width-cjs", &[], &deps).is_empty());
        // Another ecosystem with the same name is another package.
        assert!(hits("pkg:pypi/chalk", &[], &deps).is_empty());
        let v1 = parse_lockfile("package-lock.json", NPM_V1).unwrap();
        assert_eq!(
            hits("pkg:npm/lodash", &["<4.17.21"], &v1),
            ["lodash@4.17.20"]
        );
        assert_eq!(hits("pkg:npm/debug@2.6.9", &[], &v1), ["debug@2.6.9"]);
    }

    #[test]
    fn cargo_lock() {
        let deps = parse_lockfile("Cargo.lock", CARGO_LOCK).unwrap();
        let expected = list(
            "cargo",
            &[
                (None, "aho-corasick", "1.1.2"),
                (None, "bitflags", "1.3.2"),
                (None, "bitflags", "2.4.2"),
                (None, "inventory-svc", "0.4.0"),
                (None, "itoa", "1.0.10"),
                (None, "memchr", "2.7.1"),
                (None, "regex", "1.10.3"),
                (None, "regex-automata", "0.4.5"),
                (None, "regex-syntax", "0.8.2"),
                (None, "ryu", "1.0.17"),
                (None, "serde", "1.0.197"),
                (None, "serde_json", "1.0.114"),
                (None, "telemetry", "0.2.0-alpha.3"),
            ],
        );
        assert_eq!(deps, expected);

        // `-` and `_` are the same in crate names; case is not folded.
        assert_eq!(
            hits("pkg:cargo/serde-json@1.0.114", &[], &deps),
            ["serde_json@1.0.114"]
        );
        assert!(hits("pkg:cargo/Serde_json", &[], &deps).is_empty());
        assert!(hits("pkg:cargo/serde_json@1.0.115", &[], &deps).is_empty());
        assert_eq!(
            hits("pkg:cargo/bitflags", &["<2"], &deps),
            ["bitflags@1.3.2"]
        );
        assert_eq!(
            hits("pkg:cargo/bitflags", &[">=2.0.0, <2.4.3"], &deps),
            ["bitflags@2.4.2"]
        );
        // Pre-releases sort before their release.
        assert_eq!(
            hits("pkg:cargo/telemetry", &["<0.2.0"], &deps),
            ["telemetry@0.2.0-alpha.3"]
        );
        assert_eq!(
            hits(
                "pkg:cargo/telemetry",
                &[">=0.2.0-alpha.1 <0.2.0-beta"],
                &deps
            ),
            ["telemetry@0.2.0-alpha.3"]
        );
        assert!(hits("pkg:cargo/telemetry", &["=0.2.0", ">=0.2.0-alpha.4"], &deps).is_empty());
        assert!(hits("pkg:npm/regex", &[], &deps).is_empty());
    }

    #[test]
    fn poetry_lock() {
        let deps = parse_lockfile("poetry.lock", POETRY_LOCK).unwrap();
        let expected = list(
            "pypi",
            &[
                (None, "certifi", "2024.2.2"),
                (None, "charset-normalizer", "3.3.2"),
                (None, "idna", "3.6"),
                (None, "internal-auth", "1.4.0"),
                (None, "requests", "2.31.0"),
                (None, "typing-extensions", "4.9.0"),
                (None, "urllib3", "2.2.1"),
                (None, "zope.interface", "6.2"),
            ],
        );
        assert_eq!(deps, expected);

        // PEP 503 names.
        assert_eq!(
            hits("pkg:pypi/Zope_Interface@6.2", &[], &deps),
            ["zope.interface@6.2"]
        );
        assert_eq!(
            hits("pkg:pypi/typing_extensions", &["4.9.0"], &deps),
            ["typing-extensions@4.9.0"]
        );
        assert_eq!(
            hits("pkg:pypi/charset.normalizer", &["<=3.3.2"], &deps),
            ["charset-normalizer@3.3.2"]
        );
        assert!(hits("pkg:pypi/charset.normalizer", &[">=3.0,<3.3.2"], &deps).is_empty());
        assert!(hits("pkg:pypi/charset-normaliser", &[], &deps).is_empty());
        // No version anywhere: every version.
        assert_eq!(hits("pkg:pypi/requests", &[], &deps), ["requests@2.31.0"]);
        assert!(hits("pkg:pypi/requests@2.31.1", &[], &deps).is_empty());
        assert_eq!(hits("pkg:pypi/idna", &["3.6.0"], &deps), ["idna@3.6"]);
    }

    #[test]
    fn poetry_subtables_and_multiline_strings_are_not_packages() {
        let lock = r#"
[[package]]
name = "weird"
version = "1.0"
description = """
name = "not-a-package"
version = "6.6.6"
"""
files = [
    {file = "weird-1.0.tar.gz", hash = "sha256:00"},
]

[package.dependencies]
version = ">=2"
name = {version = "1.0", optional = true}

[package.extras]
all = ["name", "version"]

[metadata]
lock-version = "2.0"
"#;
        assert_eq!(
            parse_lockfile("poetry.lock", lock).unwrap(),
            [dep("pypi", None, "weird", "1.0")]
        );
        // A lockfile of a project without dependencies.
        let empty = "package = []\n\n[metadata]\nlock-version = \"2.0\"\n";
        assert!(parse_lockfile("poetry.lock", empty).unwrap().is_empty());
        // Literal strings and trailing comments are fine too.
        let lock = "[[package]]\nname = 'a' # the a\nversion = \"1\\u002E0\"\n";
        assert_eq!(
            parse_lockfile("Cargo.lock", lock).unwrap(),
            [dep("cargo", None, "a", "1.0")]
        );
    }

    #[test]
    fn requirements_txt() {
        let deps = parse_lockfile("requirements.txt", REQUIREMENTS).unwrap();
        let expected = list(
            "pypi",
            &[
                (None, "Django", "4.2.11"),
                (None, "PyYAML", "6.0.1"),
                (None, "certifi", "2024.2.2"),
                (None, "charset-normalizer", "3.3.2"),
                (None, "idna", "3.6"),
                (None, "requests", "2.31.0"),
                (None, "typing_extensions", "4.9.0"),
                (None, "urllib3", "2.2.1"),
                (None, "zope.interface", "6.2"),
            ],
        );
        // flask>=2.3,<3, gunicorn, -r/-e lines, a path and a URL: no pin.
        assert_eq!(deps, expected);
        for name in [
            "requirements-dev.txt",
            "deploy/requirements_prod.txt",
            "C:\\src\\app\\requirements.txt",
        ] {
            assert_eq!(
                parse_lockfile(name, REQUIREMENTS).unwrap(),
                expected,
                "{name}"
            );
        }

        assert_eq!(
            hits("pkg:pypi/django@4.2.11", &[], &deps),
            ["Django@4.2.11"]
        );
        assert_eq!(hits("pkg:pypi/pyyaml", &["6.0.1"], &deps), ["PyYAML@6.0.1"]);
        assert_eq!(
            hits("pkg:pypi/urllib3", &[">=2.0.0, <2.2.2"], &deps),
            ["urllib3@2.2.1"]
        );
        assert!(hits("pkg:pypi/urllib3", &[">=2.2.2"], &deps).is_empty());
        assert!(hits("pkg:pypi/flask", &[], &deps).is_empty());
        assert!(hits("pkg:pypi/django@4.2.10", &[], &deps).is_empty());
    }

    #[test]
    fn requirements_edge_cases() {
        let file = "a==1.0 \\\n  --hash=sha256:00\nb===2.0b1;python_version<'3'\nc[x , y]==3.0\n\
                    d (==4.0)\ne==5.*\nf>=1,==6.0\ng==7.0,==7.1\nh @ https://x.test/h-1.0.whl\n\
                    https://x.test/i-1.0.tar.gz\n./j\nk==8.0#not-a-comment-without-space\n\
                    l ~= 1.4 \n";
        let deps = parse_lockfile("requirements.txt", file).unwrap();
        let got: Vec<String> = deps
            .iter()
            .map(|d| format!("{}@{}", d.name, d.version))
            .collect();
        assert_eq!(
            got,
            [
                "a@1.0",
                "b@2.0b1",
                "c@3.0",
                "d@4.0",
                "f@6.0",
                "k@8.0#not-a-comment-without-space"
            ]
        );
        // A continuation on the last line does not lose the requirement.
        assert_eq!(
            parse_lockfile("requirements.txt", "a==1.0 \\").unwrap(),
            [dep("pypi", None, "a", "1.0")]
        );
    }

    #[test]
    fn go_sum() {
        let deps = parse_lockfile("go.sum", GO_SUM).unwrap();
        let expected = list(
            "golang",
            &[
                (Some("github.com/BurntSushi"), "toml", "v1.3.2"),
                (Some("github.com/davecgh"), "go-spew", "v1.1.1"),
                (Some("github.com/docker"), "docker", "v24.0.7"),
                (Some("github.com/go-chi/chi"), "v5", "v5.0.11"),
                (Some("github.com/pmezard"), "go-difflib", "v1.0.0"),
                (Some("github.com/stretchr"), "testify", "v1.8.4"),
                (Some("golang.org/x"), "net", "v0.17.0"),
                (Some("golang.org/x"), "net", "v0.19.0"),
                (Some("golang.org/x"), "sys", "v0.15.0"),
                (Some("gopkg.in"), "yaml.v3", "v3.0.1"),
            ],
        );
        // kr/pretty, stretchr/objx, check.v1 and the yaml.v3 pseudo-version
        // have only /go.mod lines.
        assert_eq!(deps, expected);

        for purl in [
            "pkg:golang/github.com/stretchr/testify@v1.8.4",
            "pkg:golang/github.com/stretchr/testify@1.8.4",
            "pkg:golang/github.com/stretchr%2Ftestify@v1.8.4",
        ] {
            assert_eq!(hits(purl, &[], &deps), ["testify@v1.8.4"], "{purl}");
        }
        assert!(hits("pkg:golang/github.com/stretchr/testify@v1.8.3", &[], &deps).is_empty());
        assert!(hits("pkg:golang/github.com/stretchr/objx", &[], &deps).is_empty());
        // +incompatible is dropped.
        assert_eq!(
            hits("pkg:golang/github.com/docker/docker", &["v24.0.7"], &deps),
            ["docker@v24.0.7"]
        );
        assert_eq!(
            hits(
                "pkg:golang/github.com/docker/docker@v24.0.7%2Bincompatible",
                &[],
                &deps
            ),
            ["docker@v24.0.7"]
        );
        assert_eq!(
            hits("pkg:golang/golang.org/x/net", &["< v0.18.0"], &deps),
            ["net@v0.17.0"]
        );
        assert_eq!(
            hits("pkg:golang/golang.org/x/net", &[">=0.18.0"], &deps),
            ["net@v0.19.0"]
        );
        assert_eq!(
            hits("pkg:golang/github.com/burntsushi/toml@v1.3.2", &[], &deps),
            ["toml@v1.3.2"]
        );
        // Major-version suffixes are part of the module path.
        assert_eq!(
            hits("pkg:golang/github.com/go-chi/chi/v5@v5.0.11", &[], &deps),
            ["v5@v5.0.11"]
        );
        assert!(hits("pkg:golang/github.com/go-chi/chi@v5.0.11", &[], &deps).is_empty());
        assert!(hits("pkg:golang/github.com/stretchr", &[], &deps).is_empty());
        assert!(hits("pkg:golang/testify", &[], &deps).is_empty());
    }

    #[test]
    fn version_order() {
        use Ordering::*;
        for (a, b, ord) in [
            ("1.2.3", "1.2.3", Equal),
            ("1.2", "1.2.0.0", Equal),
            ("v1.2.3", "1.2.3", Equal),
            ("1.0.0+build.5", "1.0.0", Equal),
            ("1.10.0", "1.9.9", Greater),
            ("1.0.0-rc.1", "1.0.0", Less),
            ("1.0.0-alpha", "1.0.0-beta", Less),
            ("1.0.0-rc.2", "1.0.0-rc.10", Less),
            ("1.0.0-alpha", "1.0.0-alpha.1", Less),
            ("1.0.0-1", "1.0.0-alpha", Less),
            ("2.0rc1", "2.0", Less),
            ("2.0b2", "2.0rc1", Less),
            ("1.0.post1", "1.0", Greater),
            ("1!1.0", "2.0", Greater),
            ("123456789012345678901234567890", "9", Greater),
            ("0.0.0-20210101000000-abcdef123456", "0.0.1", Less),
            (
                "v0.0.0-20210101000000-abcdef123456",
                "v0.0.0-20220101000000-000000000000",
                Less,
            ),
            ("2024.2.2", "2023.11.17", Greater),
        ] {
            assert_eq!(cmp_versions(a, b), ord, "{a} vs {b}");
            assert_eq!(cmp_versions(b, a), ord.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn version_entries() {
        let m = version_entry_matches;
        assert!(m("*", "0.0.1") && m("*", "anything"));
        assert!(m("1.0.0", "1.0.0") && m("=1.0.0", "1.0.0") && m("==1.0.0", "1.0.0"));
        assert!(m("v1.0.0", "1.0.0") && m("1.0.0", "v1.0.0"));
        assert!(!m("1.0.0", "1.0.1") && !m("1.0.0", "1.0.0-rc.1"));
        assert!(m(">=1.2.0 <1.2.5", "1.2.4") && m(">=1.2.0 <1.2.5", "1.2.0"));
        assert!(!m(">=1.2.0 <1.2.5", "1.2.5") && !m(">=1.2.0 <1.2.5", "1.1.9"));
        assert!(m(">=0, <2.0.0", "0.0.1") && m(">=0, <2.0.0", "1.99.0"));
        assert!(!m(">=0, <2.0.0", "2.0.0"));
        assert!(m("<=3.1", "3.1.0") && m("<=3.1", "3.0.9") && !m("<=3.1", "3.1.1"));
        assert!(m(">= 1.2, < 2", "1.5") && !m(">= 1.2, < 2", "2.0"));
        assert!(m(">1.0 !=1.0.1", "1.0.2") && !m(">1.0 !=1.0.1", "1.0.1"));
        assert!(!m(">1.0", "1.0") && m(">1.0", "1.0.1"));
        assert!(m("<1.0 || >=2.0", "0.9") && m("<1.0 || >=2.0", "2.1"));
        assert!(!m("<1.0 || >=2.0", "1.5"));
        // Nothing usable in the entry: no match.
        for entry in [
            "", " ", ",", ">=", "||", "abc", ">=>=1", "<=abc", "!=x", "> v",
        ] {
            assert!(!m(entry, "1.0.0"), "{entry:?}");
        }
        // Versions that are not versions (git sources) fall in no range.
        assert!(!m("<2.0.0", "github:org/repo#abc123") && !m(">=0", "latest"));
        assert!(m("github:org/repo#abc123", "github:org/repo#abc123") && m("*", "latest"));
    }

    #[test]
    fn versions_list_and_purl_version() {
        let d = dep("npm", None, "evil", "1.2.3");
        assert!(matches("pkg:npm/evil", &[], &d));
        assert!(matches("pkg:npm/evil@1.2.3", &[], &d));
        assert!(!matches("pkg:npm/evil@1.2.4", &[], &d));
        // A versions list takes over from the purl version.
        assert!(matches("pkg:npm/evil@9.9.9", &vs(&["1.0.0", "1.2.3"]), &d));
        assert!(!matches("pkg:npm/evil@1.2.3", &vs(&["1.0.0", ">=2"]), &d));
        assert!(matches(
            "pkg:npm/evil",
            &vs(&["<1.0.0", ">=1.2.0 <1.3"]),
            &d
        ));
        // Unparseable purls match nothing.
        for purl in [
            "",
            "evil",
            "pkg:npm",
            "pkg:npm/evil%zz",
            "pkg:NPM/evil",
            "pkg:npm/ev il",
        ] {
            assert!(!matches(purl, &[], &d), "{purl:?}");
        }
        // Percent-encoding that is well-formed but not UTF-8.
        assert!(!matches(
            "pkg:npm/%ff",
            &[],
            &dep("npm", None, "\u{fffd}", "1")
        ));
    }

    #[test]
    fn display() {
        assert_eq!(
            dep("npm", Some("@babel"), "code-frame", "7.23.5").to_string(),
            "@babel/code-frame@7.23.5 (npm)"
        );
        assert_eq!(
            dep("golang", Some("golang.org/x"), "net", "v0.17.0").to_string(),
            "golang.org/x/net@v0.17.0 (golang)"
        );
    }

    #[test]
    fn file_names() {
        for name in [
            "yarn.lock",
            "package.json",
            "pnpm-lock.yaml",
            "requirements.in",
            "",
        ] {
            let err = parse_lockfile(name, "{}").unwrap_err();
            assert!(matches!(err, LockfileError::UnknownFormat { .. }), "{name}");
            assert!(err.to_string().contains("package-lock.json"), "{err}");
        }
        assert!(is_lockfile_name("a/b/Cargo.lock") && is_lockfile_name("GO.SUM"));
        assert!(!is_lockfile_name("Cargo.toml"));
        // File names are echoed escaped and bounded.
        let err = parse_lockfile(&format!("{}\n.lock", "x".repeat(500)), "").unwrap_err();
        assert!(err.to_string().len() < 400 && !err.to_string().contains('\n'));
    }

    #[test]
    fn too_large() {
        let big = " ".repeat(MAX_LOCKFILE_BYTES + 1);
        for name in [
            "package-lock.json",
            "Cargo.lock",
            "requirements.txt",
            "go.sum",
        ] {
            let err = parse_lockfile(name, &big).unwrap_err();
            assert!(
                matches!(err, LockfileError::TooLarge { .. }),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn malformed_json() {
        let json_err = |s: &str| match parse_lockfile("package-lock.json", s) {
            Err(e @ LockfileError::Json { .. }) => e.to_string(),
            other => panic!("{s:?}: expected a JSON error, got {other:?}"),
        };
        assert!(json_err("").contains("line 1"));
        let truncated = &NPM_V3[..NPM_V3.len() / 2];
        assert!(json_err(truncated).contains("not valid JSON"));
        assert!(json_err("{\"lockfileVersion\": 3,}").contains("line 1"));
        // Hostile nesting is refused by the JSON parser, not a stack overflow.
        json_err(&"[".repeat(100_000));
        json_err(&"{\"a\":".repeat(100_000));

        for s in [
            "[]",
            "\"package-lock\"",
            "{}",
            "{\"name\": \"x\", \"dependencies\": {}}",
            "{\"lockfileVersion\": \"3\"}",
            "{\"lockfileVersion\": 0}",
            "{\"lockfileVersion\": 3}",
            "{\"lockfileVersion\": 3, \"packages\": []}",
            "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/a\": \"1.0.0\"}}",
            "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/a\": {\"version\": 1}}}",
            "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/a\": {\"version\": \"\"}}}",
            "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/a\": {\"name\": [], \"version\": \"1\"}}}",
            "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/\": {\"version\": \"1\"}}}",
            "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/@s/\": {\"version\": \"1\"}}}",
            "{\"lockfileVersion\": 1, \"dependencies\": []}",
            "{\"lockfileVersion\": 1, \"dependencies\": {\"a\": {\"version\": \"1\", \"dependencies\": 5}}}",
        ] {
            match parse_lockfile("package-lock.json", s) {
                Err(LockfileError::Invalid { message, .. }) => assert!(!message.is_empty()),
                other => panic!("{s}: expected a structure error, got {other:?}"),
            }
        }
        // Empty but well-formed lockfiles are fine.
        let empty_v3 = "{\"lockfileVersion\": 3, \"packages\": {\"\": {\"name\": \"x\"}}}";
        assert!(parse_lockfile("package-lock.json", empty_v3)
            .unwrap()
            .is_empty());
        let empty_v1 = "{\"name\": \"x\", \"lockfileVersion\": 1}";
        assert!(parse_lockfile("package-lock.json", empty_v1)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn malformed_toml() {
        for (s, line) in [
            ("hello world", 1),
            ("version = 3\n\n[[package]\nname = \"a\"", 3),
            ("[[package]]\nname = \"a\"\n", 1),
            ("[[package]]\nversion = \"1\"\n", 1),
            ("[[package]]\nname = \"a\nversion = \"1\"\n", 2),
            (
                "[[package]]\nname = \"a\"\nversion = \"1\"\ndependencies = [\n \"b\",\n",
                4,
            ),
            ("[[package]]\nname = 5\nversion = \"1\"\n", 2),
            (
                "[[package]]\nname = \"a\"\nname = \"b\"\nversion = \"1\"\n",
                3,
            ),
            ("[[package]]\nname = \"a b\"\nversion = \"1\"\n", 2),
            ("[[package]]\nname = \"\"\nversion = \"1\"\n", 2),
            ("[[package]]\nname = \"a\" trailing\nversion = \"1\"\n", 2),
            ("[[package]]\nname = \"a\\q\"\nversion = \"1\"\n", 2),
            ("[[package]]\nname =\nversion = \"1\"\n", 2),
            ("[[package]]\nname = \"a\"\nversion = \"1\"\nx = ]\n", 4),
            ("[[package]] junk\n", 1),
            ("[]\n", 1),
            ("\u{0}\u{1}\u{2}", 1),
        ] {
            for name in ["Cargo.lock", "poetry.lock"] {
                match parse_lockfile(name, s) {
                    Err(LockfileError::Syntax {
                        line: l, message, ..
                    }) => {
                        assert_eq!(l, line, "{name} {s:?}: {message}")
                    }
                    other => panic!("{name} {s:?}: expected a syntax error, got {other:?}"),
                }
            }
        }
        for name in ["Cargo.lock", "poetry.lock"] {
            for s in ["", "# nothing\n", "version = 3\n"] {
                let err = parse_lockfile(name, s).unwrap_err();
                assert!(matches!(err, LockfileError::Invalid { .. }), "{name} {s:?}");
            }
        }
    }

    #[test]
    fn malformed_requirements_and_go_sum() {
        for s in [
            "hello world",
            "requests[socks==2.0",
            "requests==",
            "requests == 1.0 2.0",
            "_private==1.0",
            "\u{0}\u{1}\u{2}",
            "ok==1.0\n{\"lockfileVersion\": 3}",
        ] {
            let err = parse_lockfile("requirements.txt", s).unwrap_err();
            assert!(matches!(err, LockfileError::Syntax { .. }), "{s:?}: {err}");
        }
        let err = parse_lockfile("requirements.txt", "ok==1\n\nbad line").unwrap_err();
        assert!(
            err.to_string().starts_with("requirements.txt, line 3:"),
            "{err}"
        );

        for (s, line) in [
            ("hello", 1),
            ("github.com/a/b v1.0.0", 1),
            ("github.com/a/b v1.0.0 h1:x=\ngithub.com/a/b 1.0.0 h1:x=", 2),
            ("github.com/a b/c v1 h1:x=", 1),
            ("github.com/a/b v1.0.0 deadbeef", 1),
            ("github.com/a/b\u{0} v1.0.0 h1:x=", 1),
            ("/abs v1.0.0 h1:x=", 1),
            ("{\"lockfileVersion\": 3}", 1),
        ] {
            match parse_lockfile("go.sum", s) {
                Err(LockfileError::Syntax { line: l, .. }) => assert_eq!(l, line, "{s:?}"),
                other => panic!("{s:?}: expected a syntax error, got {other:?}"),
            }
        }
        assert!(parse_lockfile("go.sum", "\n\n").unwrap().is_empty());
    }

    /// Mangled fixtures (truncated, bytes overwritten, lines shuffled) give
    /// a result or an error, never a panic; so do hostile version strings.
    #[test]
    fn mangled_input_never_panics() {
        let fixtures = [
            ("package-lock.json", NPM_V3),
            ("package-lock.json", NPM_V1),
            ("Cargo.lock", CARGO_LOCK),
            ("poetry.lock", POETRY_LOCK),
            ("requirements.txt", REQUIREMENTS),
            ("go.sum", GO_SUM),
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        const NASTY: &[u8] = b"\"'[]{}=#\\\n\r\t ,;@/-.%*<>!|\x00\xff";
        let purls = [
            "pkg:npm/ms",
            "pkg:cargo/serde",
            "pkg:pypi/idna",
            "pkg:golang/x/y",
        ];
        let versions = vs(&["*", ">=1 <2", "1.0.0", "<=0.0.0-", "||", ">= v"]);
        for (name, text) in fixtures {
            for round in 0..300 {
                let mut bytes = text.as_bytes().to_vec();
                let len = bytes.len();
                match round % 3 {
                    0 => bytes.truncate((next() as usize) % len),
                    1 => {
                        for _ in 0..(1 + next() % 8) {
                            let at = (next() as usize) % len;
                            bytes[at] = NASTY[(next() as usize) % NASTY.len()];
                        }
                    }
                    _ => {
                        let mut lines: Vec<&[u8]> =
                            text.as_bytes().split(|&b| b == b'\n').collect();
                        let (i, j) = (
                            (next() as usize) % lines.len(),
                            (next() as usize) % lines.len(),
                        );
                        lines.swap(i, j);
                        bytes = lines.join(&b'\n');
                    }
                }
                let mangled = String::from_utf8_lossy(&bytes);
                if let Ok(deps) = parse_lockfile(name, &mangled) {
                    for d in &deps {
                        for purl in purls {
                            let _ = matches(purl, &versions, d);
                        }
                    }
                }
            }
        }
        let d = dep("npm", None, "ms", "4.5.6");
        let long = "9".repeat(100_000);
        let hostile = vs(&[
            "\u{0}",
            ">=>=1",
            "<<<",
            "!",
            "v",
            "1!",
            "!1",
            "1+",
            "+",
            "-",
            "1.-.-",
            "1..2",
            "é.ü-ß",
            &long,
            &format!(">={long}"),
        ]);
        assert!(!matches("pkg:npm/ms", &hostile, &d));
        for v in &hostile {
            let _ = matches("pkg:npm/ms", &[], &dep("npm", None, "ms", v));
            let _ = cmp_versions(v, "1.0");
        }
    }
}
