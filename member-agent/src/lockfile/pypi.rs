//! pip requirements files: exact pins only.

use super::{shown, Cx, Dependency, LockfileError};

/// Exact pins (`name==1.2.3`, `name===1.2.3`) from a pip requirements file.
/// Lines that pin nothing (ranges, bare names, URLs, paths, options) are
/// skipped: there is no version to check. Lines that are not requirements
/// at all are errors, as they are for pip.
pub(super) fn parse(cx: &Cx, contents: &str) -> Result<Vec<Dependency>, LockfileError> {
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
