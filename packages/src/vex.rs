//! VEX documents from exposure findings: OpenVEX 0.2 and CycloneDX 1.6
//! VEX. A finding on a listed version inside the affected ones is
//! `affected` (CycloneDX `exploitable`); everything less certain (name
//! only, no version, a version that cannot be compared) is
//! `under_investigation` (`in_triage`): a VEX consumer must never read
//! "not affected" into what we could not tell. The indicator id is the
//! vulnerability name and the component's purl the product.
//!
//! Pure: the caller supplies the document id, serial number and time.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// What a VEX statement says of one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum VexStatus {
    Affected,
    UnderInvestigation,
}

impl VexStatus {
    pub fn openvex(self) -> &'static str {
        match self {
            VexStatus::Affected => "affected",
            VexStatus::UnderInvestigation => "under_investigation",
        }
    }

    /// CycloneDX `vulnerabilities[].analysis.state`.
    pub fn cyclonedx(self) -> &'static str {
        match self {
            VexStatus::Affected => "exploitable",
            VexStatus::UnderInvestigation => "in_triage",
        }
    }
}

/// One product's exposure to one indicator.
#[derive(Debug, Clone)]
pub struct VexEntry {
    /// The indicator id: the "vulnerability" name.
    pub vulnerability: String,
    /// The indicator's title.
    pub description: Option<String>,
    /// The component's purl (with its version), or `None` for a component
    /// known by name only.
    pub purl: Option<String>,
    pub name: String,
    pub version: Option<String>,
    pub status: VexStatus,
    /// Why: the constraint that holds, or why it could not be told.
    pub detail: String,
}

/// Who writes the document and when.
#[derive(Debug, Clone)]
pub struct VexMeta {
    /// OpenVEX `@id` (an IRI).
    pub document_id: String,
    /// CycloneDX `serialNumber` (`urn:uuid:...`).
    pub serial_number: String,
    /// The member organisation writing it.
    pub author: String,
    /// RFC 3339.
    pub timestamp: String,
    pub tool_name: String,
    pub tool_version: String,
    /// The application (SBOM subject), if known.
    pub subject: Option<String>,
}

/// What to do about an affected product (OpenVEX requires one).
const ACTION: &str = "Remove or replace this package version and treat the hosts that ran it as compromised; see the indicator for details.";

/// An IRI for a product without a purl.
fn name_only_iri(name: &str, version: Option<&str>) -> String {
    let text = match version {
        Some(v) => format!("{name}@{v}"),
        None => name.to_owned(),
    };
    format!("urn:x-isac:component:{}", isac_pct(&text))
}

fn isac_pct(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn product_id(e: &VexEntry) -> String {
    e.purl
        .clone()
        .unwrap_or_else(|| name_only_iri(&e.name, e.version.as_deref()))
}

/// The entries about one indicator with one status: one VEX statement.
struct Group<'a, P> {
    vulnerability: &'a str,
    status: VexStatus,
    description: Option<&'a str>,
    /// Sorted, distinct.
    products: Vec<P>,
    /// The reasons, sorted, distinct, joined.
    notes: String,
}

fn grouped<'a, P: Ord>(
    entries: &'a [VexEntry],
    product: impl Fn(&'a VexEntry) -> P,
) -> Vec<Group<'a, P>> {
    let mut by_key: BTreeMap<(&str, VexStatus), Group<'a, P>> = BTreeMap::new();
    let mut notes: BTreeMap<(&str, VexStatus), Vec<&str>> = BTreeMap::new();
    for e in entries {
        let key = (e.vulnerability.as_str(), e.status);
        by_key
            .entry(key)
            .or_insert_with(|| Group {
                vulnerability: &e.vulnerability,
                status: e.status,
                description: e.description.as_deref(),
                products: Vec::new(),
                notes: String::new(),
            })
            .products
            .push(product(e));
        notes.entry(key).or_default().push(&e.detail);
    }
    by_key
        .into_iter()
        .map(|(key, mut g)| {
            g.products.sort();
            g.products.dedup();
            let mut n = notes.remove(&key).unwrap_or_default();
            n.sort();
            n.dedup();
            g.notes = n.join("; ");
            g
        })
        .collect()
}

/// An OpenVEX 0.2 document: one statement per indicator and status, its
/// products sorted and distinct.
pub fn openvex(meta: &VexMeta, entries: &[VexEntry]) -> Value {
    let statements: Vec<Value> = grouped(entries, product_id)
        .into_iter()
        .map(|g| {
            let mut vuln = json!({ "name": g.vulnerability });
            if let Some(d) = g.description {
                vuln["description"] = json!(d);
            }
            let mut s = json!({
                "vulnerability": vuln,
                "timestamp": meta.timestamp,
                "products": g.products.iter().map(|p| json!({ "@id": p })).collect::<Vec<_>>(),
                "status": g.status.openvex(),
                "status_notes": g.notes,
            });
            if g.status == VexStatus::Affected {
                s["action_statement"] = json!(ACTION);
            }
            s
        })
        .collect();
    json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": meta.document_id,
        "author": meta.author,
        "timestamp": meta.timestamp,
        "version": 1,
        "tooling": format!("{} {}", meta.tool_name, meta.tool_version),
        "statements": statements,
    })
}

/// A CycloneDX 1.6 VEX BOM: the components concerned, and one
/// vulnerability per indicator and status that affects them.
pub fn cyclonedx(meta: &VexMeta, entries: &[VexEntry]) -> Value {
    let mut refs: BTreeMap<String, String> = BTreeMap::new();
    let mut components = Vec::new();
    for e in entries {
        let id = product_id(e);
        if refs.contains_key(&id) {
            continue;
        }
        let bom_ref = format!("component-{}", refs.len() + 1);
        let mut c = json!({
            "type": "library",
            "bom-ref": bom_ref,
            "name": e.name,
        });
        if let Some(v) = &e.version {
            c["version"] = json!(v);
        }
        if let Some(p) = &e.purl {
            c["purl"] = json!(p);
        }
        components.push(c);
        refs.insert(id, bom_ref);
    }
    let vulnerabilities: Vec<Value> = grouped(entries, |e| refs[&product_id(e)].as_str())
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let mut v = json!({
                "bom-ref": format!("vulnerability-{}", i + 1),
                "id": g.vulnerability,
                "source": { "name": meta.author },
                "analysis": { "state": g.status.cyclonedx(), "detail": g.notes },
                "affects": g.products.iter().map(|r| json!({ "ref": r })).collect::<Vec<_>>(),
            });
            if let Some(d) = g.description {
                v["description"] = json!(d);
            }
            if g.status == VexStatus::Affected {
                v["recommendation"] = json!(ACTION);
            }
            v
        })
        .collect();
    let mut metadata = json!({
        "timestamp": meta.timestamp,
        "tools": { "components": [ {
            "type": "application",
            "name": meta.tool_name,
            "version": meta.tool_version,
        } ] },
        "supplier": { "name": meta.author },
    });
    if let Some(subject) = &meta.subject {
        metadata["component"] = json!({ "type": "application", "name": subject });
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": meta.serial_number,
        "version": 1,
        "metadata": metadata,
        "components": components,
        "vulnerabilities": vulnerabilities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored schemas, compiled in (the crate's sources touch no files).
    fn schema(name: &str) -> Value {
        let text = match name {
            "openvex-0.2.0.schema.json" => {
                include_str!("../fixtures/schema/openvex-0.2.0.schema.json")
            }
            "cyclonedx-bom-1.6.schema.json" => {
                include_str!("../fixtures/schema/cyclonedx-bom-1.6.schema.json")
            }
            "cyclonedx-spdx.schema.json" => {
                include_str!("../fixtures/schema/cyclonedx-spdx.schema.json")
            }
            "cyclonedx-jsf-0.82.schema.json" => {
                include_str!("../fixtures/schema/cyclonedx-jsf-0.82.schema.json")
            }
            other => panic!("no schema {other}"),
        };
        serde_json::from_str(text).unwrap()
    }

    fn meta() -> VexMeta {
        VexMeta {
            document_id: "https://isac.example/vex/acme-bank/2026-12-02T06-00-00Z".into(),
            serial_number: "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79".into(),
            author: "acme-bank".into(),
            timestamp: "2026-12-02T06:00:00Z".into(),
            tool_name: "member-agent".into(),
            tool_version: "0.1.0".into(),
            subject: Some("online-banking@3.4.0".into()),
        }
    }

    fn entries() -> Vec<VexEntry> {
        vec![
            VexEntry {
                vulnerability: "2b8c1a34-7a4e-4d0e-9a51-0c7d1e2f3a4b".into(),
                description: Some("flatmap-stream 0.1.1 steals wallets".into()),
                purl: Some("pkg:npm/flatmap-stream@0.1.1".into()),
                name: "flatmap-stream".into(),
                version: Some("0.1.1".into()),
                status: VexStatus::Affected,
                detail: "affected: version 0.1.1".into(),
            },
            VexEntry {
                vulnerability: "2b8c1a34-7a4e-4d0e-9a51-0c7d1e2f3a4b".into(),
                description: Some("flatmap-stream 0.1.1 steals wallets".into()),
                purl: None,
                name: "flatmap-stream".into(),
                version: None,
                status: VexStatus::UnderInvestigation,
                detail: "same name, no purl, ecosystem unknown".into(),
            },
            VexEntry {
                vulnerability: "MAL-2025-1234".into(),
                description: None,
                purl: Some("pkg:pypi/ctx@0.2.6".into()),
                name: "ctx".into(),
                version: Some("0.2.6".into()),
                status: VexStatus::Affected,
                detail: "affected: every version".into(),
            },
        ]
    }

    /// Serves `$ref`s from the vendored schema files, never the network.
    struct Vendored(Vec<(&'static str, &'static str)>);

    impl jsonschema::Retrieve for Vendored {
        fn retrieve(
            &self,
            uri: &jsonschema::Uri<String>,
        ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
            self.0
                .iter()
                .find(|(u, _)| *u == uri.as_str())
                .map(|(_, file)| schema(file))
                .ok_or_else(|| format!("{} is not vendored", uri.as_str()).into())
        }
    }

    fn validator(name: &str) -> jsonschema::Validator {
        jsonschema::options()
            .should_validate_formats(true)
            .with_retriever(Vendored(vec![
                (
                    "http://cyclonedx.org/schema/spdx.schema.json",
                    "cyclonedx-spdx.schema.json",
                ),
                (
                    "http://cyclonedx.org/schema/jsf-0.82.schema.json",
                    "cyclonedx-jsf-0.82.schema.json",
                ),
            ]))
            .build(&schema(name))
            .expect("the schema compiles")
    }

    fn assert_valid(schema_name: &str, doc: &Value) {
        let errors: Vec<String> = validator(schema_name)
            .iter_errors(doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
    }

    #[test]
    fn openvex_documents_validate_against_the_openvex_schema() {
        let doc = openvex(&meta(), &entries());
        assert_valid("openvex-0.2.0.schema.json", &doc);
        let statements = doc["statements"].as_array().unwrap();
        assert_eq!(statements.len(), 3, "per indicator and status");
        let affected = statements
            .iter()
            .find(|s| s["vulnerability"]["name"] == "MAL-2025-1234")
            .unwrap();
        assert_eq!(affected["status"], "affected");
        assert_eq!(affected["products"][0]["@id"], "pkg:pypi/ctx@0.2.6");
        assert!(affected["action_statement"].is_string());
        let investigating = statements
            .iter()
            .find(|s| s["status"] == "under_investigation")
            .unwrap();
        assert_eq!(
            investigating["products"][0]["@id"],
            "urn:x-isac:component:flatmap%2Dstream"
        );
    }

    #[test]
    fn cyclonedx_vex_validates_against_the_cyclonedx_1_6_schema() {
        let doc = cyclonedx(&meta(), &entries());
        assert_valid("cyclonedx-bom-1.6.schema.json", &doc);
        let vulns = doc["vulnerabilities"].as_array().unwrap();
        assert_eq!(vulns.len(), 3);
        let states: Vec<&str> = vulns
            .iter()
            .map(|v| v["analysis"]["state"].as_str().unwrap())
            .collect();
        assert!(states.contains(&"exploitable") && states.contains(&"in_triage"));
        assert_eq!(doc["components"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn the_schemas_refuse_what_they_should() {
        // The validation above means something: a document missing what
        // each schema requires fails it.
        let mut bad = openvex(&meta(), &entries());
        bad["statements"][0]
            .as_object_mut()
            .unwrap()
            .remove("action_statement");
        let openvex_schema = validator("openvex-0.2.0.schema.json");
        let affected_first = bad["statements"][0]["status"] == "affected";
        assert_eq!(openvex_schema.is_valid(&bad), !affected_first);
        let mut bad = cyclonedx(&meta(), &entries());
        bad["vulnerabilities"][0]["analysis"]["state"] = json!("affected");
        let cyclonedx_schema = validator("cyclonedx-bom-1.6.schema.json");
        assert!(
            !cyclonedx_schema.is_valid(&bad),
            "`affected` is no CycloneDX state"
        );
    }
}
