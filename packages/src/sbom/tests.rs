use super::*;

/// The fixtures are compiled in: the crate's sources touch no files.
fn fixture(name: &str) -> Inventory {
    let bytes: &[u8] = match name {
        "syft-cyclonedx.json" => include_bytes!("../../fixtures/sbom/syft-cyclonedx.json"),
        "cdxgen-cyclonedx.json" => include_bytes!("../../fixtures/sbom/cdxgen-cyclonedx.json"),
        "trivy-cyclonedx.json" => include_bytes!("../../fixtures/sbom/trivy-cyclonedx.json"),
        "github-spdx23.json" => include_bytes!("../../fixtures/sbom/github-spdx23.json"),
        "spdx30.json" => include_bytes!("../../fixtures/sbom/spdx30.json"),
        "tag-value.spdx" => include_bytes!("../../fixtures/sbom/tag-value.spdx"),
        other => panic!("no fixture {other}"),
    };
    read(bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn purls(inv: &Inventory) -> Vec<String> {
    inv.components
        .iter()
        .filter_map(|c| match &c.identity {
            Identity::Purl(p) => Some(p.to_string()),
            Identity::NameOnly { .. } => None,
        })
        .collect()
}

#[test]
fn syft_cyclonedx_components_purls_names_only_and_a_broken_purl_named() {
    let inv = fixture("syft-cyclonedx.json");
    assert_eq!(
        inv.format,
        SbomFormat::CycloneDxJson {
            spec_version: "1.6".into()
        }
    );
    assert_eq!(inv.subject.as_deref(), Some("payments-api@sha256:9b1c"));
    let p = purls(&inv);
    assert!(
        p.contains(&"pkg:npm/%40babel/core@7.26.0".to_string()),
        "{p:?}"
    );
    // PyPI names normalised (PEP 503): capitals and dots.
    assert!(p.contains(&"pkg:pypi/django@4.2.1".to_string()), "{p:?}");
    assert!(
        p.contains(&"pkg:pypi/zope-interface@6.0".to_string()),
        "{p:?}"
    );
    assert!(
        p.contains(&"pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1".to_string()),
        "{p:?}"
    );
    let left_pad = inv
        .component("no-purl-1")
        .expect("name-only component kept");
    assert_eq!(left_pad.name, "left-pad");
    assert_eq!(left_pad.version.as_deref(), Some("1.3.0"));
    assert_eq!(
        left_pad.identity,
        Identity::NameOnly {
            ecosystem: Some(Ecosystem::Npm)
        }
    );
    assert_eq!(inv.skipped.len(), 1, "{:?}", inv.skipped);
    assert_eq!(inv.skipped[0].reference, "broken-purl");
    assert!(inv.skipped[0].why.starts_with("purl does not parse"));
    assert_eq!(inv.components.len() + inv.skipped.len(), 7);
}

#[test]
fn cdxgen_nested_components_and_the_dependency_path() {
    let inv = fixture("cdxgen-cyclonedx.json");
    assert_eq!(inv.subject.as_deref(), Some("online-banking@3.4.0"));
    let p = purls(&inv);
    // The subject's own nested component, top-level ones, and nested ones.
    for want in [
        "pkg:npm/banking-ui@3.4.0",
        "pkg:npm/%40types/node@22.10.1",
        "pkg:npm/express@4.21.1",
        "pkg:npm/body-parser@1.20.3",
        "pkg:npm/flatmap-stream@0.1.1",
    ] {
        assert!(p.contains(&want.to_string()), "{want} in {p:?}");
    }
    assert_eq!(inv.components.len(), 6);
    assert_eq!(
        inv.dependency_path("pkg:npm/flatmap-stream@0.1.1"),
        Some(vec![
            "pkg:npm/online-banking@3.4.0".to_string(),
            "pkg:npm/event-stream@3.3.6".to_string(),
            "pkg:npm/flatmap-stream@0.1.1".to_string(),
        ])
    );
    assert_eq!(inv.dependency_path("pkg:npm/banking-ui@3.4.0"), None);
}

#[test]
fn trivy_cyclonedx_go_nuget_and_a_purl_less_application_entry() {
    let inv = fixture("trivy-cyclonedx.json");
    assert_eq!(
        inv.subject.as_deref(),
        Some("registry.example/risk-engine:2.1")
    );
    let p = purls(&inv);
    assert!(
        p.contains(&"pkg:golang/github.com/gin-gonic/gin@v1.9.0".to_string()),
        "{p:?}"
    );
    assert!(p.iter().any(|x| x.starts_with("pkg:nuget/")), "{p:?}");
    let app = inv
        .component("3ff14136-e09f-4df9-80ea-000000000002")
        .expect("the lockfile entry is a name-only component");
    assert_eq!(app.identity, Identity::NameOnly { ecosystem: None });
    assert_eq!(
        inv.dependency_path("pkg:pypi/requests@2.31.0")
            .map(|p| p.len()),
        Some(3)
    );
}

#[test]
fn github_spdx_23_export_subject_purls_and_underscore_category() {
    let inv = fixture("github-spdx23.json");
    assert_eq!(
        inv.format,
        SbomFormat::Spdx2Json {
            spdx_version: "SPDX-2.3".into()
        }
    );
    assert_eq!(
        inv.subject.as_deref(),
        Some("com.github.example-bank/treasury@main")
    );
    let p = purls(&inv);
    assert!(
        p.contains(&"pkg:npm/%40solana/web3.js@1.95.6".to_string()),
        "{p:?}"
    );
    assert!(p.contains(&"pkg:pypi/pyyaml@6.0.1".to_string()), "{p:?}");
    // No purl, NOASSERTION version: kept by name, no version.
    let internal = inv.component("SPDXRef-internal-lib").unwrap();
    assert_eq!(internal.version, None);
    assert_eq!(inv.components.len() + inv.skipped.len(), 4);
    assert_eq!(
        inv.dependency_path("SPDXRef-pip-PyYAML-6.0.1-5e6f")
            .map(|p| p.len()),
        Some(2)
    );
}

#[test]
fn spdx_30_json_ld_packages_from_both_purl_spellings() {
    let inv = fixture("spdx30.json");
    assert_eq!(inv.format, SbomFormat::Spdx3JsonLd);
    assert_eq!(inv.subject.as_deref(), Some("card-gateway@5.0.2"));
    let mut p = purls(&inv);
    p.sort();
    assert_eq!(
        p,
        vec!["pkg:cargo/rustdecimal@1.23.1", "pkg:cargo/serde@1.0.215"]
    );
    assert!(inv
        .dependency_path("https://example.bank/spdx/pkg/rustdecimal")
        .is_some());
}

#[test]
fn spdx_tag_value_packages_relationships_and_text_blocks() {
    let inv = fixture("tag-value.spdx");
    assert_eq!(
        inv.format,
        SbomFormat::Spdx2TagValue {
            spdx_version: "SPDX-2.3".into()
        }
    );
    assert_eq!(inv.subject.as_deref(), Some("loan-scoring@2.0.0"));
    let mut p = purls(&inv);
    p.sort();
    // The PackageName inside the <text> comment is not a package.
    assert_eq!(p, vec!["pkg:pypi/ctx@0.2.6", "pkg:pypi/numpy@1.26.4"]);
    // DEPENDENCY_OF is the inverse edge.
    assert_eq!(
        inv.dependency_path("SPDXRef-Package-python-ctx-2b"),
        Some(vec![
            "SPDXRef-loan-scoring".to_string(),
            "SPDXRef-Package-python-numpy-1a".to_string(),
            "SPDXRef-Package-python-ctx-2b".to_string(),
        ])
    );
}

#[test]
fn what_is_not_an_sbom_is_named() {
    let cases: [(&[u8], &str); 6] = [
        (b"{\"hello\": 1}", "neither `bomFormat"),
        (
            b"<?xml version=\"1.0\"?><bom xmlns=\"http://cyclonedx.org/schema/bom/1.5\"/>",
            "CycloneDX XML",
        ),
        (b"name,version\nx,1\n", "neither JSON nor SPDX"),
        (
            b"{\"bomFormat\": \"CycloneDX\", \"components\": 3}",
            "`components` is not a list",
        ),
        (
            b"{\"bomFormat\": \"CycloneDX\", \"specVersion\": \"2.0\"}",
            "is not 1.x",
        ),
        (b"\xff\xfe", "not UTF-8"),
    ];
    for (input, want) in cases {
        let e = read(input).unwrap_err().to_string();
        assert!(e.contains(want), "{e} should say {want}");
    }
}

#[test]
fn limits_hold_for_size_count_nesting_and_edges() {
    let small = Limits {
        max_bytes: 64,
        ..Limits::default()
    };
    assert!(matches!(
        read_with(&[b' '; 65], small),
        Err(SbomError::TooLarge(65, 64))
    ));
    let many: String = (0..20)
        .map(|i| format!("{{\"name\":\"p{i}\",\"version\":\"1\"}}"))
        .collect::<Vec<_>>()
        .join(",");
    let doc =
        format!("{{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.5\",\"components\":[{many}]}}");
    let few = Limits {
        max_components: 10,
        ..Limits::default()
    };
    assert_eq!(
        read_with(doc.as_bytes(), few).unwrap_err(),
        SbomError::TooManyComponents(10)
    );
    assert_eq!(read(doc.as_bytes()).unwrap().components.len(), 20);
    // 40 levels of nesting: within serde_json's depth, past ours.
    let mut nested = String::from("{\"name\":\"leaf\"}");
    for i in 0..40 {
        nested = format!("{{\"name\":\"n{i}\",\"components\":[{nested}]}}");
    }
    let doc = format!(
        "{{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.5\",\"components\":[{nested}]}}"
    );
    assert_eq!(
        read(doc.as_bytes()).unwrap_err(),
        SbomError::TooDeep(Limits::default().max_nesting)
    );
    let edges: String = (0..20)
        .map(|i| format!("{{\"ref\":\"a{i}\",\"dependsOn\":[\"b\"]}}"))
        .collect::<Vec<_>>()
        .join(",");
    let doc = format!(
        "{{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.5\",\"dependencies\":[{edges}]}}"
    );
    let narrow = Limits {
        max_edges: 5,
        ..Limits::default()
    };
    assert_eq!(
        read_with(doc.as_bytes(), narrow).unwrap_err(),
        SbomError::TooManyEdges(5)
    );
}

#[test]
fn dependency_cycles_end() {
    let doc = r#"{"bomFormat":"CycloneDX","specVersion":"1.5",
        "metadata":{"component":{"bom-ref":"app","name":"app"}},
        "components":[{"bom-ref":"a","name":"a"},{"bom-ref":"b","name":"b"},{"bom-ref":"c","name":"c"}],
        "dependencies":[{"ref":"app","dependsOn":["a"]},{"ref":"a","dependsOn":["b"]},
                        {"ref":"b","dependsOn":["a","app"]}]}"#;
    let inv = read(doc.as_bytes()).unwrap();
    assert_eq!(inv.dependency_path("b").map(|p| p.len()), Some(3));
    assert_eq!(inv.dependency_path("c"), None);
}
