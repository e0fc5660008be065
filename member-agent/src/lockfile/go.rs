//! go.sum: the modules whose code a build used.

use super::{shown, Cx, Dependency, LockfileError};

/// `module version hash` lines; `/go.mod`-only entries (modules whose code
/// was not needed) are skipped, `+incompatible` is dropped.
pub(super) fn parse(cx: &Cx, contents: &str) -> Result<Vec<Dependency>, LockfileError> {
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
