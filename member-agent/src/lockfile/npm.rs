//! npm: package-lock.json / npm-shrinkwrap.json (lockfileVersion 1 to 3).

use serde_json::{Map, Value};

use super::{shown, Cx, Dependency, LockfileError};

pub(super) fn parse(cx: &Cx, contents: &str) -> Result<Vec<Dependency>, LockfileError> {
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
