//! SPDX: 2.2/2.3 JSON, 2.x tag-value and 3.0 JSON-LD. Packages are the
//! components; a purl comes from an external reference of type `purl`
//! (SPDX 2) or a `packageUrl` identifier / `software_packageUrl` (SPDX 3).
//! The subject is what the document DESCRIBES; DEPENDS_ON, CONTAINS (and
//! their inverses) are the graph.

use serde_json::Value;

use super::{Builder, Found, Inventory, Limits, SbomError, SbomFormat};

fn malformed(format: &str, detail: impl Into<String>) -> SbomError {
    SbomError::Malformed {
        format: format.into(),
        detail: detail.into(),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The edge a relationship stands for, from the depending element to the
/// one it depends on or contains; `None` for relationships that are not
/// about composition.
fn edge<'a>(kind: &str, from: &'a str, to: &'a str) -> Option<(&'a str, &'a str)> {
    // SPDX 2 spells DEPENDS_ON, SPDX 3 dependsOn: compare without case or `_`.
    let kind: String = kind
        .chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match kind.as_str() {
        "DEPENDSON" | "CONTAINS" | "HASPREREQUISITE" | "HASSTATICLINK" | "HASDYNAMICLINK" => {
            Some((from, to))
        }
        "DEPENDENCYOF"
        | "DEVDEPENDENCYOF"
        | "BUILDDEPENDENCYOF"
        | "RUNTIMEDEPENDENCYOF"
        | "OPTIONALDEPENDENCYOF"
        | "TESTDEPENDENCYOF"
        | "PROVIDEDDEPENDENCYOF"
        | "CONTAINEDBY"
        | "PREREQUISITEFOR"
        | "STATICLINK"
        | "DYNAMICLINK" => Some((to, from)),
        _ => None,
    }
}

fn subject_name(name: Option<&str>, version: Option<&str>) -> Option<String> {
    let name = name?.trim();
    if name.is_empty() {
        return None;
    }
    Some(match version.map(str::trim) {
        Some(v) if !v.is_empty() && v != "NOASSERTION" => format!("{name}@{v}"),
        _ => name.to_owned(),
    })
}

// === SPDX 2.x JSON ===

fn purl_of_v2(package: &Value) -> Option<&str> {
    package
        .get("externalRefs")?
        .as_array()?
        .iter()
        .find(|r| text(r, "referenceType").is_some_and(|t| t.eq_ignore_ascii_case("purl")))
        .and_then(|r| text(r, "referenceLocator"))
}

pub(super) fn read_json2(doc: &Value, limits: Limits) -> Result<Inventory, SbomError> {
    let spdx_version = text(doc, "spdxVersion").unwrap_or("SPDX-2").to_owned();
    if !spdx_version.starts_with("SPDX-2.") {
        return Err(malformed(
            "SPDX",
            format!(
                "spdxVersion `{}` is not SPDX-2.x",
                crate::shown(&spdx_version)
            ),
        ));
    }
    let mut b = Builder::new(limits);
    let packages = match doc.get("packages") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(malformed(&spdx_version, "`packages` is not a list")),
    };
    let mut described: Vec<&str> = doc
        .get("documentDescribes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let document_id = text(doc, "SPDXID").unwrap_or("SPDXRef-DOCUMENT");
    let relationships = doc
        .get("relationships")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for r in relationships {
        let (Some(from), Some(kind), Some(to)) = (
            text(r, "spdxElementId"),
            text(r, "relationshipType"),
            text(r, "relatedSpdxElement"),
        ) else {
            continue;
        };
        if kind == "DESCRIBES" && from == document_id {
            described.push(to);
        } else if kind == "DESCRIBED_BY" && to == document_id {
            described.push(from);
        } else if let Some((a, c)) = edge(kind, from, to) {
            b.depends(a, c)?;
        }
    }
    let subject_ref = described.first().map(|s| (*s).to_owned());
    let mut subject = None;
    for p in packages {
        let id = text(p, "SPDXID");
        if id.is_some() && id == subject_ref.as_deref() {
            subject = subject_name(text(p, "name"), text(p, "versionInfo"));
            // An application package with its own purl is still a component
            // only if something else depends on it; the subject is not.
            continue;
        }
        b.add(Found {
            reference: id,
            name: text(p, "name"),
            group: None,
            version: text(p, "versionInfo"),
            purl: purl_of_v2(p),
            ecosystem_hint: None,
        })?;
    }
    let subject = subject.or_else(|| text(doc, "name").map(str::to_owned));
    Ok(b.finish(SbomFormat::Spdx2Json { spdx_version }, subject, subject_ref))
}

// === SPDX 2.x tag-value ===

/// Longest line read; a longer one is a malformed document, not a reason
/// to hold it in pieces.
const MAX_LINE: usize = 64 * 1024;

pub(super) fn read_tag_value(text: &str, limits: Limits) -> Result<Inventory, SbomError> {
    #[derive(Default)]
    struct Pkg<'a> {
        id: Option<&'a str>,
        name: Option<&'a str>,
        version: Option<&'a str>,
        purl: Option<&'a str>,
    }
    let mut b = Builder::new(limits);
    let mut spdx_version = String::from("SPDX-2");
    let mut document_name = None;
    let mut described: Vec<&str> = Vec::new();
    let mut packages: Vec<Pkg<'_>> = Vec::new();
    let mut current: Option<Pkg<'_>> = None;
    let mut in_text = false;
    for (n, line) in text.lines().enumerate() {
        if line.len() > MAX_LINE {
            return Err(malformed(
                "SPDX tag-value",
                format!("line {} is longer than {MAX_LINE} bytes", n + 1),
            ));
        }
        // Free text spans lines between <text> and </text>.
        if in_text {
            if line.contains("</text>") {
                in_text = false;
            }
            continue;
        }
        let Some((tag, value)) = line.split_once(':') else {
            continue;
        };
        let (tag, value) = (tag.trim(), value.trim());
        if value.starts_with("<text>") && !value.contains("</text>") {
            in_text = true;
        }
        match tag {
            "SPDXVersion" => spdx_version = value.to_owned(),
            "DocumentName" => document_name = Some(value),
            "PackageName" => {
                if let Some(p) = current.take() {
                    packages.push(p);
                }
                if packages.len() >= limits.max_components {
                    return Err(SbomError::TooManyComponents(limits.max_components));
                }
                current = Some(Pkg {
                    name: Some(value),
                    ..Pkg::default()
                });
            }
            "SPDXID" => {
                if let Some(p) = current.as_mut() {
                    p.id = Some(value);
                }
            }
            "PackageVersion" => {
                if let Some(p) = current.as_mut() {
                    p.version = Some(value);
                }
            }
            "ExternalRef" => {
                // ExternalRef: PACKAGE-MANAGER purl pkg:npm/x@1.0.0
                let mut parts = value.split_whitespace();
                let (_category, kind, locator) = (parts.next(), parts.next(), parts.next());
                if let (Some(p), Some(kind), Some(locator)) = (current.as_mut(), kind, locator) {
                    if kind.eq_ignore_ascii_case("purl") {
                        p.purl = Some(locator);
                    }
                }
            }
            "Relationship" => {
                let mut parts = value.split_whitespace();
                if let (Some(from), Some(kind), Some(to)) =
                    (parts.next(), parts.next(), parts.next())
                {
                    if kind == "DESCRIBES" && from == "SPDXRef-DOCUMENT" {
                        described.push(to);
                    } else if let Some((a, c)) = edge(kind, from, to) {
                        b.depends(a, c)?;
                    }
                }
            }
            "FileName" | "SnippetSPDXID" => {
                // Files and snippets end the package section before them.
                if let Some(p) = current.take() {
                    packages.push(p);
                }
            }
            _ => {}
        }
    }
    if let Some(p) = current.take() {
        packages.push(p);
    }
    if !spdx_version.starts_with("SPDX-2.") {
        return Err(malformed(
            "SPDX tag-value",
            format!(
                "SPDXVersion `{}` is not SPDX-2.x",
                crate::shown(&spdx_version)
            ),
        ));
    }
    let subject_ref = described.first().map(|s| (*s).to_owned());
    let mut subject = None;
    for p in packages {
        if p.id.is_some() && p.id == subject_ref.as_deref() {
            subject = subject_name(p.name, p.version);
            continue;
        }
        b.add(Found {
            reference: p.id,
            name: p.name,
            group: None,
            version: p.version,
            purl: p.purl,
            ecosystem_hint: None,
        })?;
    }
    let subject = subject.or_else(|| document_name.map(str::to_owned));
    Ok(b.finish(
        SbomFormat::Spdx2TagValue { spdx_version },
        subject,
        subject_ref,
    ))
}

// === SPDX 3.0 JSON-LD ===

fn type_is(v: &Value, want: &str) -> bool {
    let matches = |s: &str| s == want || s.rsplit(['/', ':']).next() == Some(want);
    match v.get("type").or_else(|| v.get("@type")) {
        Some(Value::String(s)) => matches(s),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(matches),
        _ => false,
    }
}

fn purl_of_v3(package: &Value) -> Option<&str> {
    text(package, "software_packageUrl")
        .or_else(|| text(package, "packageUrl"))
        .or_else(|| {
            package
                .get("externalIdentifier")?
                .as_array()?
                .iter()
                .find(|e| text(e, "externalIdentifierType") == Some("packageUrl"))
                .and_then(|e| text(e, "identifier"))
        })
}

fn id_of(v: &Value) -> Option<&str> {
    text(v, "spdxId").or_else(|| text(v, "@id"))
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

pub(super) fn read_json3(doc: &Value, limits: Limits) -> Result<Inventory, SbomError> {
    let graph = doc
        .get("@graph")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("SPDX 3.0", "no `@graph` list"))?;
    let mut b = Builder::new(limits);
    let mut roots: Vec<&str> = Vec::new();
    for element in graph {
        if type_is(element, "software_Sbom") || type_is(element, "SpdxDocument") {
            roots.extend(strings(element.get("rootElement")));
        } else if type_is(element, "Relationship")
            || type_is(element, "LifecycleScopedRelationship")
        {
            let (Some(from), Some(kind)) =
                (text(element, "from"), text(element, "relationshipType"))
            else {
                continue;
            };
            for to in strings(element.get("to")) {
                if kind == "describes" {
                    roots.push(to);
                } else if let Some((a, c)) = edge(kind, from, to) {
                    b.depends(a, c)?;
                }
            }
        }
    }
    // An SBOM element names the application; a document names the SBOM.
    let subject_ref = roots
        .iter()
        .find(|r| {
            graph
                .iter()
                .any(|e| id_of(e) == Some(**r) && type_is(e, "software_Package"))
        })
        .map(|s| (*s).to_owned());
    let mut subject = None;
    for element in graph {
        if !type_is(element, "software_Package") {
            continue;
        }
        let id = id_of(element);
        if id.is_some() && id == subject_ref.as_deref() {
            subject = subject_name(
                text(element, "name"),
                text(element, "software_packageVersion"),
            );
            continue;
        }
        b.add(Found {
            reference: id,
            name: text(element, "name"),
            group: None,
            version: text(element, "software_packageVersion"),
            purl: purl_of_v3(element),
            ecosystem_hint: None,
        })?;
    }
    Ok(b.finish(SbomFormat::Spdx3JsonLd, subject, subject_ref))
}
