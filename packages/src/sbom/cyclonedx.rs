//! CycloneDX JSON (1.2 to 1.6): `metadata.component` is the subject,
//! `components` (nested `components` too) the inventory, `dependencies`
//! the graph.

use serde_json::Value;

use super::{Builder, Found, Inventory, Limits, SbomError, SbomFormat};

fn malformed(detail: impl Into<String>) -> SbomError {
    SbomError::Malformed {
        format: "CycloneDX".into(),
        detail: detail.into(),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// syft and Trivy say what kind of package a purl-less component is in a
/// property.
fn ecosystem_hint(component: &Value) -> Option<&str> {
    component
        .get("properties")?
        .as_array()?
        .iter()
        .find(|p| {
            matches!(
                text(p, "name"),
                Some("syft:package:type" | "aquasecurity:trivy:PkgType")
            )
        })
        .and_then(|p| text(p, "value"))
}

fn found(component: &Value) -> Found<'_> {
    Found {
        reference: text(component, "bom-ref"),
        name: text(component, "name"),
        group: text(component, "group"),
        version: text(component, "version"),
        purl: text(component, "purl"),
        ecosystem_hint: ecosystem_hint(component),
    }
}

pub(super) fn read(doc: &Value, limits: Limits) -> Result<Inventory, SbomError> {
    let spec_version = text(doc, "specVersion").unwrap_or("").to_owned();
    if !spec_version.is_empty() && !spec_version.starts_with("1.") {
        return Err(malformed(format!(
            "specVersion `{}` is not 1.x",
            crate::shown(&spec_version)
        )));
    }
    let mut b = Builder::new(limits);
    let subject = doc.get("metadata").and_then(|m| m.get("component"));
    let subject_ref = subject.and_then(|s| text(s, "bom-ref")).map(str::to_owned);
    let subject_name = subject.and_then(|s| text(s, "name")).map(|name| {
        match subject.and_then(|s| text(s, "version")) {
            Some(v) if !v.is_empty() => format!("{name}@{v}"),
            _ => name.to_owned(),
        }
    });
    // The subject's own nested components are part of the application.
    let mut stack: Vec<(&Value, usize)> = Vec::new();
    if let Some(nested) = subject.and_then(|s| s.get("components")) {
        push_all(&mut stack, nested, 1, &b)?;
    }
    match doc.get("components") {
        None | Some(Value::Null) => {}
        Some(list) => push_all(&mut stack, list, 0, &b)?,
    }
    // Depth first, in document order.
    stack.reverse();
    while let Some((component, depth)) = stack.pop() {
        if !component.is_object() {
            b.add(Found {
                reference: None,
                name: None,
                group: None,
                version: None,
                purl: None,
                ecosystem_hint: None,
            })?;
            continue;
        }
        b.add(found(component))?;
        if let Some(nested) = component.get("components") {
            let mut children = Vec::new();
            push_all(&mut children, nested, depth + 1, &b)?;
            children.reverse();
            stack.extend(children);
        }
    }
    if let Some(deps) = doc.get("dependencies") {
        let deps = deps
            .as_array()
            .ok_or_else(|| malformed("`dependencies` is not a list"))?;
        for d in deps {
            let Some(from) = text(d, "ref") else { continue };
            for to in d
                .get("dependsOn")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                b.depends(from, to)?;
            }
        }
    }
    Ok(b.finish(
        SbomFormat::CycloneDxJson {
            spec_version: if spec_version.is_empty() {
                "1.x".into()
            } else {
                spec_version
            },
        },
        subject_name,
        subject_ref,
    ))
}

fn push_all<'a>(
    stack: &mut Vec<(&'a Value, usize)>,
    list: &'a Value,
    depth: usize,
    b: &Builder,
) -> Result<(), SbomError> {
    if depth > b.nesting_limit() {
        return Err(SbomError::TooDeep(b.nesting_limit()));
    }
    let items = list
        .as_array()
        .ok_or_else(|| malformed("`components` is not a list"))?;
    stack.extend(items.iter().map(|c| (c, depth)));
    Ok(())
}
