//! Standard formats in and out: exports (STIX 2.1, OSV, MISP) and imports
//! (STIX 2.1 bundles), against a real hub, with real agents.

use std::path::Path;

use isac_core::time::format_rfc3339;
use isac_e2e::*;
use member_agent::draft::IndicatorDraft;
use member_agent::export::{export, Format};
use member_agent::publish::publish_prepared;
use member_agent::{SinkSettings, Sinks};

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn stix_export_says_when_the_item_was_received_not_when_it_was_made() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    // Signed a minute ago, sent now: the hub receives it in a later second
    // (no waiting on the wall clock).
    let created = format_rfc3339(member_agent::now() - 60);
    let prepared = IndicatorDraft {
        purl: Some("pkg:npm/late-news@1.0.0".into()),
        tlp: Some("green".into()),
        title: Some("sent a while after it was signed".into()),
        ..Default::default()
    }
    .into_prepared("alice-bank", created.clone())
    .unwrap();
    publish_prepared(&alice, &prepared).await.unwrap();
    let jsonl = dir.path().join("bob.jsonl");
    let mut settings = SinkSettings::jsonl(Some(&jsonl));
    settings.stix_dir = Some(dir.path().join("stix"));
    let mut sink = Sinks::open(settings).unwrap();
    bob.sync(false, &mut sink).await.unwrap();
    let received_at = lines(&jsonl)[0]["received_at"].as_str().unwrap().to_owned();
    assert_ne!(received_at, created);

    let (text, n) = export(&bob, Format::Stix, false).unwrap();
    assert_eq!(n, 1);
    let bundle: serde_json::Value = serde_json::from_str(&text).unwrap();
    let indicator = bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "indicator")
        .unwrap()
        .clone();
    assert_eq!(
        indicator["x_isac_received_at"],
        isac_core::stix::stix_timestamp(&received_at),
        "{indicator}"
    );
    assert_eq!(
        indicator["created"],
        isac_core::stix::stix_timestamp(&created)
    );
    // The export says what the STIX sink said when the item arrived.
    let file = std::fs::read_dir(dir.path().join("stix"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let from_sink: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let sink_indicator = from_sink["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "indicator")
        .unwrap();
    assert_eq!(&indicator, sink_indicator);
    hub.stop().await;
}

// === through the real binaries ===

fn agent_cli(state: &Path, args: &[&str]) -> (bool, String, String) {
    run(bin("member-agent").arg("--state-dir").arg(state).args(args))
}

fn agent_code(state: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = bin("member-agent")
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn statements(data: &Path) -> i64 {
    let conn = rusqlite::Connection::open(data.join("hub.db")).unwrap();
    conn.query_row("SELECT count(*) FROM statements", [], |r| r.get(0))
        .unwrap()
}

fn sync(state: &Path, dir: &Path) {
    let name = state.file_name().unwrap().to_str().unwrap();
    let (ok, _, err) = agent_cli(
        state,
        &[
            "sync",
            "--jsonl",
            dir.join(format!("{name}.jsonl")).to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
}

fn held(state: &Path) -> Vec<serde_json::Value> {
    let (ok, out, err) = agent_cli(state, &["list", "--json", "--limit", "1000"]);
    assert!(ok, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn export_stix(state: &Path, file: &Path) -> serde_json::Value {
    let (ok, _, err) = agent_cli(
        state,
        &[
            "export",
            "--format",
            "stix",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// The `x_isac_observable`s of the indicators in a bundle from one source.
fn observables_from(bundle: &serde_json::Value, org: &str) -> Vec<String> {
    let mut v: Vec<String> = bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "indicator" && o["x_isac_source_org"] == org)
        .map(|o| o["x_isac_observable"].to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn a_stix_export_imports_back_exactly_and_reports_need_a_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let [alice, bob, carol, staff] = ["alice", "bob", "carol", "staff"].map(|n| dir.path().join(n));
    for (org, state) in [
        ("alice-bank", &alice),
        ("bob-bank", &bob),
        ("carol-bank", &carol),
    ] {
        enroll_with_cli(&data, &hub.url(), org, None, state);
    }
    let (ok, token, err) = run(bin("hub").arg("--data-dir").arg(&data).args([
        "member",
        "add",
        "isac-staff",
        "--role",
        "coordinator",
    ]));
    assert!(ok, "{err}");
    let (ok, _, err) = agent_cli(
        &staff,
        &["enroll", "--hub", &hub.url(), "--token", token.trim()],
    );
    assert!(ok, "{err}");

    let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    for flags in [
        &[
            "--purl",
            "pkg:npm/ua-parser-js",
            "--version-range",
            ">=0.7.29 <0.7.30",
            "--threat",
            "compromised",
            "--tlp",
            "green",
        ][..],
        &[
            "--sha256",
            sha,
            "--filename",
            "dropper.tgz",
            "--tlp",
            "amber",
        ],
        &[
            "--domain",
            "c2.evil.example",
            "--tlp",
            "clear",
            "--label",
            "c2",
        ],
        &[
            "--vuln-id",
            "CVE-2026-12345",
            "--affected-purl",
            "pkg:pypi/jinja2@3.1.0",
            "--tlp",
            "green",
        ],
        &[
            "--account",
            "npm:evil-maintainer",
            "--tlp",
            "green",
            "--severity",
            "critical",
            "--confidence",
            "90",
        ],
    ] {
        let mut args = vec!["publish", "--title", "from alice"];
        args.extend_from_slice(flags);
        let (ok, _, err) = agent_cli(&alice, &args);
        assert!(ok, "{err}");
    }
    let body = dir.path().join("bulletin.txt");
    std::fs::write(&body, "Rotate your npm tokens.\n").unwrap();
    let (ok, _, err) = agent_cli(
        &staff,
        &[
            "bulletin",
            "--title",
            "npm campaign",
            "--body",
            body.to_str().unwrap(),
            "--tlp",
            "green",
            "--incident",
            "INC-7",
        ],
    );
    assert!(ok, "{err}");
    sync(&bob, dir.path());
    let file = dir.path().join("bob-export.json");
    let from_bob = export_stix(&bob, &file);
    assert_valid_stix(std::slice::from_ref(&file));
    assert_eq!(observables_from(&from_bob, "alice-bank").len(), 5);
    let before = statements(&data);

    // Carol is a member: the report would be a bulletin. Nothing is sent.
    let (code, _, err) = agent_code(&carol, &["publish", "--stix", file.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("report--")
            && err.contains("only coordinators")
            && err.contains("nothing else published"),
        "{err}"
    );
    assert_eq!(statements(&data), before, "nothing partial is published");
    let (ok, out, err) = agent_cli(
        &carol,
        &[
            "publish",
            "--stix",
            file.to_str().unwrap(),
            "--skip-invalid",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("5 published, 0 revised, 0 unchanged, 0 retracted"),
        "{out}"
    );
    assert!(out.contains("1 invalid"), "{out}");
    // Idempotent.
    let (ok, out, err) = agent_cli(
        &carol,
        &[
            "publish",
            "--stix",
            file.to_str().unwrap(),
            "--skip-invalid",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("0 published, 0 revised, 5 unchanged"), "{out}");
    assert_eq!(statements(&data), before + 5);

    // What Carol published says what Alice said, observable for observable,
    // at the same TLP.
    sync(&bob, dir.path());
    let again = export_stix(&bob, &dir.path().join("bob-export-2.json"));
    assert_eq!(
        observables_from(&again, "carol-bank"),
        observables_from(&again, "alice-bank")
    );
    let tlps = |org: &str| {
        let mut t: Vec<String> = held(&bob)
            .iter()
            .filter(|i| i["source"] == org && i["kind"] != "bulletin")
            .map(|i| format!("{} {}", i["kind"], i["tlp"]))
            .collect();
        t.sort();
        t
    };
    assert_eq!(tlps("carol-bank"), tlps("alice-bank"));

    // A coordinator imports the report too, related to the new indicators.
    let (ok, out, err) = agent_cli(&staff, &["publish", "--stix", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("6 published") && out.contains("0 invalid"),
        "{out}"
    );
    sync(&bob, dir.path());
    let bulletins: Vec<serde_json::Value> = held(&bob)
        .into_iter()
        .filter(|i| i["kind"] == "bulletin")
        .collect();
    assert_eq!(bulletins.len(), 2, "{bulletins:?}");
    hub.terminate();
}

const THIRD_PARTY: &str = r#"{
  "type": "bundle",
  "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
  "objects": [
    {"type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
     "created": "2017-01-20T00:00:00.000Z", "definition_type": "tlp", "name": "TLP:GREEN", "definition": {"tlp": "green"}},
    {"type": "identity", "spec_version": "2.1", "id": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "name": "Some Vendor", "identity_class": "organization"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
     "created_by_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "name": "Poison Ivy C2", "indicator_types": ["malicious-activity"], "labels": ["c2"],
     "pattern": "[domain-name:value = 'c2.third-party.example'] OR [domain-name:value = 'c3.third-party.example']",
     "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z",
     "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--1ed8caa7-a708-4706-b651-f1186ede6ca1",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "name": "Payload hash", "pattern": "[file:hashes.'SHA-256' = 'BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD']",
     "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z", "confidence": 85,
     "object_marking_refs": ["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--0f8d3d9e-4f1b-4e39-9d3c-6f0b1c2d3e4f",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "name": "Scanner", "pattern": "[ipv4-addr:value = '45.77.10.3']", "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--2a7c5b1e-0d4f-4c3b-8a9e-7f6d5c4b3a21",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "name": "event-stream backdoor", "pattern": "[software:name = 'event-stream' AND software:vendor = 'npm' AND software:version = '3.3.6']",
     "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z",
     "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--3b8d6c2f-1e5a-4d4c-9baf-8a7e6d5c4b32",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "name": "MD5 only", "pattern": "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']",
     "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--4c9e7d3a-2f6b-4e5d-8cb0-9b8f7e6d5c43",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
     "name": "YARA rule", "pattern": "rule x { condition: true }", "pattern_type": "yara", "valid_from": "2024-01-01T00:00:00Z"},
    {"type": "software", "spec_version": "2.1", "id": "software--a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
     "name": "lodash", "vendor": "npm", "version": "4.17.20"},
    {"type": "vulnerability", "spec_version": "2.1", "id": "vulnerability--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "name": "CVE-2021-23337",
     "external_references": [{"source_name": "cve", "external_id": "CVE-2021-23337"}],
     "object_marking_refs": ["marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"]},
    {"type": "relationship", "spec_version": "2.1", "id": "relationship--1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "relationship_type": "has",
     "source_ref": "software--a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "target_ref": "vulnerability--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061"},
    {"type": "file", "spec_version": "2.1", "id": "file--364fe3e5-b1f4-5ba3-b951-ee5983b3538d",
     "name": "stealer.js", "hashes": {"SHA-256": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}},
    {"type": "malware", "spec_version": "2.1", "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
     "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "name": "npm token stealer",
     "is_family": false, "sample_refs": ["file--364fe3e5-b1f4-5ba3-b951-ee5983b3538d"],
     "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]}
  ]
}"#;

#[test]
fn a_pattern_nested_30_000_deep_is_a_clear_error_not_a_stack_overflow() {
    // Issue 15: `publish --stix` with such a pattern aborted the agent
    // ("has overflowed its stack") instead of exiting 64.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let alice = dir.path().join("alice");
    enroll_with_cli(&data, &hub.url(), "alice-bank", None, &alice);
    let indicator = |id: &str, pattern: String| {
        serde_json::json!({"type": "indicator", "spec_version": "2.1", "id": id,
            "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z",
            "name": "deep", "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z",
            "pattern": pattern})
    };
    let deep = format!(
        "[{}domain-name:value = 'deep.evil.example'{}]",
        "(".repeat(30_000),
        ")".repeat(30_000)
    );
    let bundle = serde_json::json!({"type": "bundle",
    "id": "bundle--9f0e8d7c-6b5a-4f3e-8d2c-1b0a9f8e7d6c",
    "objects": [
        indicator("indicator--7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d", deep),
        indicator("indicator--8b7c6d5e-4f3a-4b2c-9d0e-1f2a3b4c5d6e",
            "[domain-name:value = 'flat.evil.example']".into()),
    ]});
    let file = dir.path().join("deep.json");
    std::fs::write(&file, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let stix = file.to_str().unwrap();
    let (code, _, err) = agent_code(&alice, &["publish", "--stix", stix, "--tlp", "green"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("indicator--7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d")
            && err.contains("nesting limit"),
        "{err}"
    );
    assert_eq!(statements(&data), 0);
    let (ok, out, err) = agent_cli(
        &alice,
        &[
            "publish",
            "--stix",
            stix,
            "--tlp",
            "green",
            "--skip-invalid",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("1 published") && out.contains("1 invalid"),
        "{out}"
    );
    assert_eq!(statements(&data), 1);
}

#[test]
fn purls_the_packages_parser_refuses_are_not_signed_on_any_path() {
    // Strict at the source, lenient on receive: the hub's statement check
    // (`isac_core::observable::parse_purl`) would take these; the agent
    // holds what it signs to `isac_packages::purl` and exits 64.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let alice = dir.path().join("alice");
    enroll_with_cli(&data, &hub.url(), "alice-bank", None, &alice);
    let no_group = "pkg:maven/log4j-core@2.14.1";
    let raw_at = "pkg:npm/a@b@1.0.0";
    let before = statements(&data);
    let flags = |extra: &[&str]| {
        let mut args = vec!["publish", "--tlp", "green", "--title", "t"];
        args.extend_from_slice(extra);
        agent_code(&alice, &args)
    };
    let (code, _, err) = flags(&["--purl", no_group]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("purl `pkg:maven/log4j-core@2.14.1` is not a valid package URL")
            && err.contains("needs a namespace (the groupId)"),
        "{err}"
    );
    let (code, _, err) = flags(&[
        "--purl",
        "pkg:npm/reqeusts",
        "--threat",
        "typosquat",
        "--imitates",
        raw_at,
    ]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("imitates `") && err.contains("unencoded `@`"),
        "{err}"
    );

    let csv = dir.path().join("rows.csv");
    std::fs::write(
        &csv,
        format!("kind,purl,tlp,title\npackage,pkg:npm/fine,green,ok\npackage,{no_group},green,t\n"),
    )
    .unwrap();
    let (code, _, err) = agent_code(&alice, &["publish", "--csv", csv.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("rows.csv:3") && err.contains("groupId"),
        "{err}"
    );

    let bundle = serde_json::json!({"type": "bundle",
        "id": "bundle--1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
        "objects": [{"type": "software", "spec_version": "2.1",
            "id": "software--2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a",
            "name": "a", "purl": raw_at}]});
    let stix = dir.path().join("bundle.json");
    std::fs::write(&stix, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let (code, _, err) = agent_code(
        &alice,
        &[
            "publish",
            "--stix",
            stix.to_str().unwrap(),
            "--tlp",
            "green",
        ],
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("software--2d3e4f5a") && err.contains("unencoded `@`"),
        "{err}"
    );
    assert_eq!(statements(&data), before, "nothing was published");

    let (code, _, err) = flags(&[
        "--purl",
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(statements(&data), before + 1);
}

#[test]
fn a_third_party_bundle_imports_with_its_tlp_1_0_markings_and_bad_objects_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    enroll_with_cli(&data, &hub.url(), "alice-bank", None, &alice);
    enroll_with_cli(&data, &hub.url(), "bob-bank", None, &bob);
    let file = dir.path().join("vendor.json");
    std::fs::write(&file, THIRD_PARTY).unwrap();
    let stix = file.to_str().unwrap();

    let (code, _, err) = agent_code(&alice, &["publish", "--stix", stix, "--tlp", "clear"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("2 invalid object(s), nothing published")
            && err
                .contains("objects[6] (indicator--3b8d6c2f-1e5a-4d4c-9baf-8a7e6d5c4b32): pattern")
            && err.contains("only SHA-256 and SHA-512")
            && err.contains(
                "objects[7] (indicator--4c9e7d3a-2f6b-4e5d-8cb0-9b8f7e6d5c43): pattern_type `yara`"
            ),
        "{err}"
    );
    assert_eq!(statements(&data), 0);
    // Without --tlp the unmarked one is invalid too.
    let (code, _, err) = agent_code(&alice, &["publish", "--stix", stix]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("3 invalid object(s)"), "{err}");
    assert!(
        err.contains(
            "objects[4] (indicator--0f8d3d9e-4f1b-4e39-9d3c-6f0b1c2d3e4f): no TLP marking"
        ),
        "{err}"
    );

    let (ok, out, err) = agent_cli(
        &alice,
        &[
            "publish",
            "--stix",
            stix,
            "--tlp",
            "clear",
            "--skip-invalid",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("13 objects; 7 published, 0 revised, 0 unchanged, 0 retracted, 5 skipped, 2 invalid, 0 refused"),
        "{out}"
    );
    let (ok, out, err) = agent_cli(
        &alice,
        &[
            "publish",
            "--stix",
            stix,
            "--tlp",
            "clear",
            "--skip-invalid",
        ],
    );
    assert!(
        ok && out.contains("0 published, 0 revised, 7 unchanged"),
        "{out} {err}"
    );

    sync(&bob, dir.path());
    let mut got: Vec<String> = held(&bob)
        .iter()
        .map(|i| {
            format!(
                "{} {} {}",
                i["kind"].as_str().unwrap(),
                i["tlp"].as_str().unwrap(),
                i["value"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "artifact amber ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "artifact green 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
            "network clear 45.77.10.3",
            "network green c2.third-party.example",
            "network green c3.third-party.example",
            "package green pkg:npm/event-stream@3.3.6",
            "vulnerability clear CVE-2021-23337",
        ]
    );

    // The vendor revokes the scanner indicator and updates the hash one.
    let updated = THIRD_PARTY
        .replace(
            r#""name": "Scanner", "#,
            r#""name": "Scanner", "revoked": true, "#,
        )
        .replace(
            r#""modified": "2024-01-01T00:00:00.000Z",
     "name": "Payload hash""#,
            r#""modified": "2024-06-01T00:00:00.000Z",
     "name": "Payload hash, confirmed""#,
        );
    assert_ne!(updated, THIRD_PARTY);
    std::fs::write(&file, updated).unwrap();
    let (ok, out, err) = agent_cli(
        &alice,
        &[
            "publish",
            "--stix",
            stix,
            "--tlp",
            "clear",
            "--skip-invalid",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("0 published, 1 revised, 5 unchanged, 1 retracted"),
        "{out}"
    );
    sync(&bob, dir.path());
    let items = held(&bob);
    assert!(
        items
            .iter()
            .any(|i| i["value"] == "45.77.10.3" && i["status"] == "retracted"),
        "{items:?}"
    );
    assert!(
        items
            .iter()
            .any(|i| i["title"] == "Payload hash, confirmed" && i["revision"] == 2),
        "{items:?}"
    );
    hub.terminate();
}

#[test]
fn imports_show_progress_on_a_terminal_and_a_summary_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let alice = dir.path().join("alice");
    enroll_with_cli(&data, &hub.url(), "alice-bank", None, &alice);
    let csv = dir.path().join("iocs.csv");
    let mut text = String::from("kind,domain,tlp,title\n");
    for i in 0..600 {
        text.push_str(&format!("network,c{i}.evil.example,clear,C2 {i}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    // Not a terminal: the summary only.
    let (ok, out, err) = agent_cli(&alice, &["publish", "--csv", csv.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("600 rows; 600 published, 0 invalid or refused, 0 skipped"),
        "{out}"
    );
    assert!(!err.contains("sent"), "{err}");
    // Under a pseudo-terminal (util-linux `script`): progress on stderr.
    let agent = bin_dir().join("member-agent");
    let command = format!(
        "'{}' --state-dir '{}' publish --csv '{}'",
        agent.display(),
        alice.display(),
        csv.display()
    );
    let (ok, out, err) = run(std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("RUST_LOG", "warn"));
    assert!(ok, "{out} {err}");
    assert!(out.contains("csv import: 500/600 sent"), "{out}");
    assert!(out.contains("csv import: 600/600 sent"), "{out}");
    assert!(out.contains("600 rows; 600 published"), "{out}");
    hub.terminate();
}

/// Loads a MISP event with PyMISP (installed by scripts/install-deps) in
/// strict mode: every attribute type and category must be one MISP knows,
/// in a combination MISP allows. Prints `types` and `tags` for the test.
fn pymisp_check(file: &Path) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, json, pymisp\n\
             e = pymisp.MISPEvent(strict_validation=True)\n\
             e.load_file(sys.argv[1])\n\
             print('types', ' '.join(sorted(set(a.type for a in e.attributes))))\n\
             print('tags', ' '.join(t.name for t in e.tags))\n\
             print('attribute_tags', ' '.join(sorted(set(t.name for a in e.attributes for t in a.tags))))\n\
             print('count', len(e.attributes))",
        )
        .arg(file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "PyMISP refused the event (missing? run scripts/install-deps): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn osv_export_reimports_through_the_osv_importer_and_misp_export_loads_in_pymisp() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(|n| dir.path().join(n));
    for (org, state) in [
        ("alice-bank", &alice),
        ("bob-bank", &bob),
        ("carol-bank", &carol),
    ] {
        enroll_with_cli(&data, &hub.url(), org, None, state);
    }
    let (ok, _, err) = run(bin("hub")
        .arg("--data-dir")
        .arg(&data)
        .args(["person", "add", "bob-bank", "jdoe", "--name", "J. Doe"]));
    assert!(ok, "{err}");
    let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    for flags in [
        &[
            "--purl",
            "pkg:npm/ua-parser-js",
            "--version-range",
            ">=0.7.29 <0.7.30",
            "--version-range",
            "1.0.0",
            "--tlp",
            "green",
        ][..],
        &[
            "--purl",
            "pkg:npm/%40ctrl/tinycolor@4.1.1",
            "--tlp",
            "green",
            "--reference",
            "https://example.org/tinycolor",
        ],
        &["--purl", "pkg:maven/org.example/evil-lib", "--tlp", "amber"],
        &[
            "--purl",
            "pkg:pypi/requets",
            "--version-range",
            "<=2.0",
            "--tlp",
            "clear",
        ],
        &[
            "--sha256",
            sha,
            "--filename",
            "dropper.tgz",
            "--tlp",
            "amber",
        ],
        &["--domain", "c2.evil.example", "--tlp", "clear"],
        &["--ip", "45.77.10.3", "--tlp", "clear"],
        &["--account", "github:evil-maintainer", "--tlp", "green"],
        &[
            "--repo-url",
            "https://github.com/evil/repo",
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
            "--tlp",
            "green",
        ],
        &[
            "--vuln-id",
            "CVE-2026-12345",
            "--affected-purl",
            "pkg:pypi/jinja2@3.1.0",
            "--tlp",
            "green",
            "--severity",
            "critical",
        ],
        &[
            "--purl",
            "pkg:npm/red-only",
            "--tlp",
            "red",
            "--audience",
            "person:bob-bank/jdoe",
        ],
    ] {
        let mut args = vec!["publish", "--title", "from alice"];
        args.extend_from_slice(flags);
        let (ok, _, err) = agent_cli(&alice, &args);
        assert!(ok, "{err}");
    }
    sync(&bob, dir.path());

    // OSV: one record per package indicator, back in through --osv.
    let osv = dir.path().join("export.osv.json");
    let (ok, _, err) = agent_cli(
        &bob,
        &["export", "--format", "osv", "--out", osv.to_str().unwrap()],
    );
    // TLP:RED stays out unless asked for.
    assert!(ok && err.contains("exported 4 item(s)"), "{err}");
    let (ok, out, err) = agent_cli(&bob, &["export", "--format", "osv", "--include-red"]);
    assert!(ok && out.contains("pkg:npm/red-only"), "{err}");
    let records: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&osv).unwrap()).unwrap();
    let ua = records
        .iter()
        .find(|r| r["affected"][0]["package"]["name"] == "ua-parser-js")
        .unwrap();
    assert_eq!(ua["affected"][0]["package"]["ecosystem"], "npm");
    assert_eq!(ua["affected"][0]["versions"], serde_json::json!(["1.0.0"]));
    assert_eq!(
        ua["affected"][0]["ranges"][0]["events"],
        serde_json::json!([{"introduced": "0.7.29"}, {"fixed": "0.7.30"}])
    );
    assert_eq!(ua["database_specific"]["isac"]["tlp"], "green");
    let scoped = records
        .iter()
        .find(|r| r["affected"][0]["package"]["name"] == "@ctrl/tinycolor")
        .unwrap();
    assert_eq!(
        scoped["affected"][0]["package"]["purl"],
        "pkg:npm/%40ctrl/tinycolor"
    );
    assert_eq!(
        scoped["references"][0]["url"],
        "https://example.org/tinycolor"
    );
    let (ok, out, err) = agent_cli(
        &carol,
        &["publish", "--osv", osv.to_str().unwrap(), "--tlp", "green"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("4 records; 4 published, 0 revised, 0 unchanged"),
        "{out}"
    );
    let (ok, out, err) = agent_cli(
        &carol,
        &["publish", "--osv", osv.to_str().unwrap(), "--tlp", "green"],
    );
    assert!(
        ok && out.contains("0 published, 0 revised, 4 unchanged"),
        "{out} {err}"
    );
    sync(&bob, dir.path());
    let bundle = export_stix(&bob, &dir.path().join("all.json"));
    let packages = |org: &str| {
        let mut v: Vec<String> = bundle["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["x_isac_source_org"] == org && o["x_isac_kind"] == "package")
            .map(|o| {
                let ob = &o["x_isac_observable"];
                // A versioned purl with no list is the same as the list of that one version.
                let purl = ob["purl"].as_str().unwrap();
                let mut versions: Vec<String> = ob["versions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                let base = match purl.rsplit_once('@') {
                    Some((b, v)) if !b.ends_with('/') && versions.is_empty() => {
                        versions.push(v.to_owned());
                        b
                    }
                    _ => purl,
                };
                if versions.is_empty() {
                    versions.push("*".into());
                }
                versions.sort();
                format!("{base} {versions:?}")
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(packages("carol-bank"), packages("alice-bank"));
    assert_eq!(packages("carol-bank").len(), 4);

    // MISP: one event, types and categories MISP accepts, TLP tags.
    let misp = dir.path().join("export.misp.json");
    let (ok, _, err) = agent_cli(
        &bob,
        &[
            "export",
            "--format",
            "misp-json",
            "--out",
            misp.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let report = pymisp_check(&misp);
    for t in [
        "domain",
        "filename|sha256",
        "github-repository",
        "github-username",
        "git-commit-id",
        "ip-dst",
        "link",
        "text",
        "vulnerability",
    ] {
        assert!(report.contains(&format!(" {t}")), "{t}: {report}");
    }
    assert!(report.contains("tags tlp:amber\n"), "{report}");
    assert!(
        report.contains("attribute_tags tlp:amber tlp:clear tlp:green\n"),
        "{report}"
    );
    let event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&misp).unwrap()).unwrap();
    assert_eq!(event["Event"]["threat_level_id"], "1");
    let domain = event["Event"]["Attribute"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == "domain")
        .unwrap();
    assert_eq!(domain["value"], "c2.evil.example");
    assert_eq!(domain["category"], "Network activity");
    assert_eq!(domain["to_ids"], true);
    // stdout by default; the same text.
    let (ok, out, _) = agent_cli(&bob, &["export", "--format", "misp-json"]);
    assert!(ok);
    assert_eq!(
        out,
        std::fs::read_to_string(&misp).unwrap(),
        "deterministic"
    );
    hub.terminate();
}

/// (path, body) of each request a receiver got.
type Requests = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A loopback HTTP receiver that answers 200 (and a real `_bulk` answer)
/// and records (path, body).
fn recording_receiver() -> (u16, Requests) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body_start = loop {
                let n = conn.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(start) = body_start else { continue };
            let head = String::from_utf8_lossy(&buf[..start]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            while buf.len() < start + len {
                let n = conn.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            // Elasticsearch answers `_bulk` item by item; others say nothing.
            let answer = if path.ends_with("/_bulk") {
                elastic_bulk_answer(&buf[start..], |_| 201)
            } else {
                String::new()
            };
            s2.lock()
                .unwrap()
                .push((path, String::from_utf8_lossy(&buf[start..]).into_owned()));
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                )
                .as_bytes(),
            );
        }
    });
    (port, seen)
}

#[test]
fn agent_toml_configures_sinks_and_filters_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    enroll_with_cli(&data, &hub.url(), "alice-bank", None, &alice);
    enroll_with_cli(&data, &hub.url(), "bob-bank", None, &bob);
    for flags in [
        &["--domain", "c2.evil.example"][..],
        &["--purl", "pkg:npm/evil@1.0.0"],
        &["--ip", "45.77.10.3"],
    ] {
        let mut args = vec!["publish", "--tlp", "green", "--title", "t"];
        args.extend_from_slice(flags);
        let (ok, _, err) = agent_cli(&alice, &args);
        assert!(ok, "{err}");
    }
    let (port, seen) = recording_receiver();
    let from_file = dir.path().join("from-file.jsonl");
    let stix = dir.path().join("stix");
    std::fs::write(
        bob.join("agent.toml"),
        format!(
            r#"
jsonl = "{jsonl}"
stix_dir = "{stix}"
[[webhook]]
url = "http://127.0.0.1:{port}/first"
secret = "one"
[[webhook]]
url = "http://127.0.0.1:{port}/second"
secret_env = "SECOND_SECRET"
[[elastic]]
url = "http://127.0.0.1:{port}/es"
[filter]
kinds = ["network"]
"#,
            jsonl = from_file.display(),
            stix = stix.display()
        ),
    )
    .unwrap();
    // A secret the file names by environment variable must be there.
    let (code, _, err) = agent_code(&bob, &["sync"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("webhook[1].secret_env") && err.contains("SECOND_SECRET"),
        "{err}"
    );

    let out = bin("member-agent")
        .env("SECOND_SECRET", "two")
        .arg("--state-dir")
        .arg(&bob)
        .args(["sync"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = lines(&from_file);
    assert_eq!(got.len(), 2, "the file's filter: network only");
    assert!(got.iter().all(|l| l["kind"] == "network"));
    assert_eq!(std::fs::read_dir(&stix).unwrap().count(), 2);
    let paths: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(
        paths.iter().filter(|p| *p == "/first").count(),
        2,
        "{paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| *p == "/second").count(),
        2,
        "{paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| *p == "/es/_bulk").count(),
        1,
        "one bulk request: {paths:?}"
    );

    // Flags override: another JSON Lines file, another webhook (replacing
    // the file's two), another filter.
    let (ok, _, err) = agent_cli(
        &alice,
        &[
            "publish",
            "--tlp",
            "green",
            "--title",
            "t",
            "--purl",
            "pkg:npm/later@1.0.0",
        ],
    );
    assert!(ok, "{err}");
    let from_flag = dir.path().join("from-flag.jsonl");
    seen.lock().unwrap().clear();
    let out = bin("member-agent")
        .env("SECOND_SECRET", "two")
        .arg("--state-dir")
        .arg(&bob)
        .args([
            "sync",
            "--kind",
            "package",
            "--jsonl",
            from_flag.to_str().unwrap(),
            "--webhook",
        ])
        .arg(format!("http://127.0.0.1:{port}/flag"))
        .args(["--webhook-secret", "three"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&from_flag).len(), 1);
    assert_eq!(
        lines(&from_file).len(),
        2,
        "the file's JSON Lines path is overridden"
    );
    let mut paths: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/es/_bulk", "/flag"],
        "the flag replaced the file's webhooks"
    );

    // A bad key is named, with exit code 64.
    std::fs::write(bob.join("agent.toml"), "jsonl_kep = 3\n").unwrap();
    let (code, _, err) = agent_code(&bob, &["sync"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("agent.toml") && err.contains("jsonl_kep"),
        "{err}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[elastic]]\nurl = \"elastic.example:9200\"\n").unwrap();
    let (code, _, err) = agent_code(&bob, &["sync", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("elastic[0].url"), "{err}");
    hub.terminate();
}
