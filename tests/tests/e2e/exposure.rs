//! "Are we affected?" across members: one member publishes a malicious
//! package, another syncs and checks an application's SBOM with the real
//! `member-agent` binary, and gets the match, exit code 1 and VEX.

use std::path::Path;

use isac_e2e::{bin, enroll_with_cli, run, HubProcess};

fn agent_cli(state: &Path, args: &[&str]) -> (Option<i32>, String, String) {
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

#[test]
fn a_published_malicious_package_is_found_in_another_members_sbom_with_vex() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    for (org, state) in [("alice-bank", &alice), ("bob-bank", &bob)] {
        let out = enroll_with_cli(&data, &hub.url(), org, Some(org), state);
        assert!(out.contains("enrolled"), "{out}");
    }
    let (ok, _, err) = run(bin("member-agent").arg("--state-dir").arg(&alice).args([
        "publish",
        "--kind",
        "package",
        "--purl",
        "pkg:npm/flatmap-stream",
        "--version-range",
        "0.1.1",
        "--tlp",
        "green",
        "--title",
        "flatmap-stream steals wallet keys",
        "--severity",
        "critical",
    ]));
    assert!(ok, "{err}");
    let (code, _, err) = agent_cli(&bob, &["sync"]);
    assert_eq!(code, Some(0), "{err}");

    let sbom = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packages/fixtures/sbom/cdxgen-cyclonedx.json");
    let sbom = sbom.to_str().unwrap();
    let (code, out, err) = agent_cli(&bob, &["check", sbom]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("MATCH online-banking@3.4.0 pkg:npm/flatmap-stream 0.1.1")
            && out.contains("flatmap-stream steals wallet keys")
            && out.contains("alice-bank")
            && out.contains("via online-banking@3.4.0 > event-stream@3.3.6 > flatmap-stream@0.1.1"),
        "{out}"
    );

    let openvex = dir.path().join("vex.json");
    let (code, out, err) = agent_cli(
        &bob,
        &[
            "check",
            sbom,
            "--json",
            "--vex",
            "openvex",
            "--out",
            openvex.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (report["matches"].as_u64(), report["certain"].as_u64()),
        (Some(1), Some(1))
    );
    let found = &report["inputs"][0]["matches"][0];
    assert_eq!(report["inputs"][0]["application"], "online-banking@3.4.0");
    assert_eq!(found["tlp"], "green");
    assert_eq!(found["source"], "alice-bank");
    let indicator_id = found["indicator_id"].as_str().unwrap().to_owned();

    let vex: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&openvex).unwrap()).unwrap();
    assert!(
        vex["@context"].as_str().unwrap().contains("openvex"),
        "{vex}"
    );
    assert!(
        vex["@id"].as_str().unwrap().starts_with("urn:uuid:"),
        "{vex}"
    );
    assert_eq!(vex["author"], "bob-bank");
    let statement = &vex["statements"][0];
    assert_eq!(statement["status"], "affected");
    assert_eq!(statement["vulnerability"]["name"], indicator_id.as_str());
    assert!(
        statement["products"][0]["@id"]
            .as_str()
            .unwrap()
            .starts_with("pkg:npm/flatmap-stream@0.1.1"),
        "{statement}"
    );

    let cdx = dir.path().join("vex.cdx.json");
    let (code, _, err) = agent_cli(
        &bob,
        &[
            "check",
            sbom,
            "--vex",
            "cyclonedx",
            "--out",
            cdx.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    let bom: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cdx).unwrap()).unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert!(bom["serialNumber"]
        .as_str()
        .unwrap()
        .starts_with("urn:uuid:"));
    let vuln = &bom["vulnerabilities"][0];
    assert_eq!(vuln["id"], indicator_id.as_str());
    assert_eq!(vuln["analysis"]["state"], "exploitable");

    // A clean SBOM passes; a file that is neither is bad input.
    let clean =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packages/fixtures/sbom/syft-cyclonedx.json");
    let (code, _, err) = agent_cli(&bob, &["check", clean.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let garbage = dir.path().join("bom.json");
    std::fs::write(&garbage, "{\"hello\": 1}").unwrap();
    let (code, _, err) = agent_cli(&bob, &["check", garbage.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
}
