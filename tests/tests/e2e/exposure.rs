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

/// The exposure events in a JSON Lines sink, in order.
fn exposure_lines(jsonl: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(jsonl)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("exposure."))
        })
        .collect()
}

fn count(lines: &[serde_json::Value], action: &str, indicator: &str) -> usize {
    lines
        .iter()
        .filter(|l| l["action"] == action && l["indicator"]["id"] == indicator)
        .count()
}

fn follow(state: &Path, jsonl: &Path, log: &Path) -> std::process::Child {
    bin("member-agent")
        .arg("--state-dir")
        .arg(state)
        .args(["run", "--jsonl"])
        .arg(jsonl)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Replaces the watched file in one step (as generators and `mv` do).
fn rewrite(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watched_sbom_gets_exposure_events_as_indicators_and_the_file_change() {
    use isac_e2e::eventually;
    use std::time::Duration;
    const WAIT: Duration = Duration::from_secs(60);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    for (org, state) in [("alice-bank", &alice), ("bob-bank", &bob)] {
        let out = enroll_with_cli(&data, &hub.url(), org, Some(org), state);
        assert!(out.contains("enrolled"), "{out}");
    }
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../packages/fixtures/sbom/cdxgen-cyclonedx.json"),
    )
    .unwrap();
    let sbom = dir.path().join("online-banking.cdx.json");
    std::fs::write(&sbom, &fixture).unwrap();
    let sbom_arg = sbom.to_str().unwrap();

    // Registering: bad input is exit 64 with a reason, and names are unique.
    let (code, out, err) = agent_cli(
        &bob,
        &["watch", "add", sbom_arg, "--name", "online-banking"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("watching `online-banking`"), "{out}");
    let (code, _, err) = agent_cli(
        &bob,
        &["watch", "add", sbom_arg, "--name", "online-banking"],
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("already watched"), "{err}");
    let garbage = dir.path().join("notes.json");
    std::fs::write(&garbage, "{\"hello\": 1}").unwrap();
    for path in [garbage.clone(), dir.path().join("missing.json")] {
        let (code, _, err) = agent_cli(
            &bob,
            &["watch", "add", path.to_str().unwrap(), "--name", "x"],
        );
        assert_eq!(code, Some(64), "{err}");
        assert!(err.contains(path.to_str().unwrap()), "{err}");
    }
    let (code, _, err) = agent_cli(&bob, &["watch", "remove", "nothing-such"]);
    assert_eq!(code, Some(64), "{err}");
    let (code, out, _) = agent_cli(&bob, &["watch", "list", "--json"]);
    assert_eq!(code, Some(0));
    let listed: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (listed["name"].as_str(), listed["components"].as_u64()),
        (Some("online-banking"), Some(6))
    );

    let jsonl = dir.path().join("bob.jsonl");
    let mut running = follow(&bob, &jsonl, &dir.path().join("bob-run.log"));

    // Alice reports the malicious package; Bob's agent announces the exposure.
    let (ok, out, err) = run(bin("member-agent").arg("--state-dir").arg(&alice).args([
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
    let id = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("id="))
        .unwrap()
        .to_owned();
    eventually("exposure.new in Bob's sink", WAIT, || {
        count(&exposure_lines(&jsonl), "exposure.new", &id) == 1
    })
    .await;
    let lines = exposure_lines(&jsonl);
    let new = &lines[0];
    assert_eq!(new["application"], "online-banking");
    assert_eq!(new["component"], "pkg:npm/flatmap-stream@0.1.1");
    assert_eq!(
        new["path"],
        serde_json::json!([
            "online-banking@3.4.0",
            "event-stream@3.3.6",
            "flatmap-stream@0.1.1"
        ])
    );
    assert_eq!(
        new["indicator"]["title"],
        "flatmap-stream steals wallet keys"
    );
    assert_eq!(new["indicator"]["source"], "alice-bank");
    assert_eq!(
        (new["tlp"].as_str(), new["certain"].as_bool()),
        (Some("green"), Some(true))
    );
    assert!(new["why"].as_str().unwrap().contains("0.1.1"), "{new}");

    // The console's Exposure page shows it, and its button reports it.
    {
        use crate::console::{csrf_of, http, split_link, start_with_link, Procs};
        let mut procs = Procs(vec![]);
        let mut ui = bin("member-agent");
        ui.arg("--state-dir")
            .arg(&bob)
            .args(["ui", "--listen", "127.0.0.1:0"]);
        let link = start_with_link(ui, &dir.path().join("bob-ui.log"), &mut procs);
        let (host, token) = split_link(&link);
        let origin = format!("http://{host}");
        let same = [
            ("Origin", origin.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
        ];
        let r = http(&host, "POST", "/login", &same, &format!("token={token}"));
        assert_eq!(r.status, 303, "{}", r.body);
        let cookie = r
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let r = http(
            &host,
            "GET",
            "/exposure",
            &[("Cookie", cookie.as_str())],
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        for shown in [
            "online-banking",
            "pkg:npm/flatmap-stream@0.1.1",
            "online-banking@3.4.0 &gt; event-stream@3.3.6 &gt; flatmap-stream@0.1.1",
            &format!("href=\"/item/{id}\""),
            "Report sighting",
        ] {
            assert!(r.body.contains(shown), "{shown} in {}", r.body);
        }
        let form = format!(
            "csrf={}&application=online-banking&indicator={id}",
            csrf_of(&r.body)
        );
        let with_session = [same[0], same[1], ("Cookie", cookie.as_str())];
        let r = http(&host, "POST", "/exposure/report", &with_session, &form);
        assert_eq!(r.status, 303, "{}", r.body);
        let to = r.header("location").unwrap_or_default().to_owned();
        assert!(to.starts_with(&format!("/item/{id}?sighted=")), "{to}");
    }

    // Listed, and reported back as a sighting at the indicator's TLP (never looser).
    let (code, out, err) = agent_cli(&bob, &["exposure", "list", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let listed: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(listed["indicator"]["id"], id.as_str());
    assert_eq!(listed["since"], new["since"]);
    let (code, _, err) = agent_cli(
        &bob,
        &[
            "exposure",
            "report",
            "online-banking",
            &id,
            "--tlp",
            "clear",
        ],
    );
    assert_eq!(code, Some(64), "{err}");
    let (code, _, err) = agent_cli(&bob, &["exposure", "report", "other-app", &id]);
    assert_eq!(code, Some(64), "{err}");
    let (code, out, err) = agent_cli(&bob, &["exposure", "report", "online-banking", &id]);
    assert_eq!(code, Some(0), "{err}");
    let sighting = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("id="))
        .unwrap()
        .to_owned();
    let (code, _, err) = agent_cli(&alice, &["sync"]);
    assert_eq!(code, Some(0), "{err}");
    let (_, shown, err) = agent_cli(&alice, &["show", &sighting]);
    assert!(
        shown.contains(&id) && shown.contains("green"),
        "{shown}{err}"
    );

    // The application upgrades: cleared; it goes back: exposed again.
    let upgraded = fixture
        .replace("flatmap-stream@0.1.1", "flatmap-stream@0.1.2")
        .replace(
            "\"name\": \"flatmap-stream\", \"version\": \"0.1.1\"",
            "\"name\": \"flatmap-stream\", \"version\": \"0.1.2\"",
        );
    assert_ne!(upgraded, fixture);
    rewrite(&sbom, &upgraded);
    eventually("exposure.cleared after the upgrade", WAIT, || {
        count(&exposure_lines(&jsonl), "exposure.cleared", &id) == 1
    })
    .await;
    let cleared = exposure_lines(&jsonl).pop().unwrap();
    assert!(
        cleared["why"].as_str().unwrap().contains("inventory"),
        "{cleared}"
    );
    assert_eq!(cleared["id"], new["id"], "the same exposure");
    rewrite(&sbom, &fixture);
    eventually("exposure.new after the downgrade", WAIT, || {
        count(&exposure_lines(&jsonl), "exposure.new", &id) == 2
    })
    .await;

    // A restart announces nothing again; the retraction clears it.
    running.kill().unwrap();
    running.wait().unwrap();
    let mut running = follow(&bob, &jsonl, &dir.path().join("bob-run-2.log"));
    let (ok, _, err) = run(bin("member-agent").arg("--state-dir").arg(&alice).args([
        "retract",
        &id,
        "--reason",
        "false positive",
    ]));
    assert!(ok, "{err}");
    eventually("exposure.cleared after the retraction", WAIT, || {
        count(&exposure_lines(&jsonl), "exposure.cleared", &id) == 2
    })
    .await;
    let lines = exposure_lines(&jsonl);
    let cleared = lines.last().unwrap();
    assert!(
        cleared["why"].as_str().unwrap().contains("retracted"),
        "{cleared}"
    );
    assert_eq!(
        count(&lines, "exposure.new", &id),
        2,
        "announced once per appearance"
    );
    let events: Vec<u64> = lines.iter().map(|l| l["event"].as_u64().unwrap()).collect();
    assert_eq!(
        events,
        [1, 2, 3, 4],
        "numbered once each, across the restart"
    );
    let (_, out, _) = agent_cli(&bob, &["exposure", "list", "--json"]);
    assert!(out.trim().is_empty(), "{out}");
    running.kill().unwrap();
    running.wait().unwrap();
}
