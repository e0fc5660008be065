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

/// Every kind of sink hears of an exposure: the JSON Lines file, a STIX
/// sighting (valid to the OASIS validator), a webhook, Splunk HEC and an
/// Elasticsearch document that the clear deletes; in process, through
/// `sync`, against real HTTP receivers on loopback.
#[tokio::test]
async fn exposure_events_reach_every_sink_and_the_clear_deletes_the_document() {
    use isac_e2e::{assert_valid_stix, enrolled_agent, TestHub};
    use member_agent::localstore::Watched;
    use member_agent::sinks::http::HttpSink;
    use member_agent::{SinkSettings, Sinks};
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let sbom = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packages/fixtures/sbom/cdxgen-cyclonedx.json")
        .canonicalize()
        .unwrap();
    assert!(bob
        .store
        .lock()
        .unwrap()
        .add_watched(&Watched {
            name: "online-banking".into(),
            path: sbom.display().to_string(),
            added: "2026-12-02T00:00:00Z".into(),
        })
        .unwrap());
    let receiver = crate::delivery::receiver(0).await;
    let base = format!("http://{}", receiver.addr);
    let (jsonl, stix) = (dir.path().join("bob.jsonl"), dir.path().join("stix"));
    let mut settings = SinkSettings::jsonl(Some(&jsonl));
    settings.stix_dir = Some(stix.clone());
    settings.http = vec![
        HttpSink::Webhook {
            url: format!("{base}/hook").parse().unwrap(),
            secret: "s3cret".into(),
        },
        HttpSink::SplunkHec {
            url: format!("{base}/services/collector/event").parse().unwrap(),
            token: "hec-token".into(),
            index: None,
            sourcetype: "isac:indicator".into(),
        },
        HttpSink::Elastic {
            url: format!("{base}/es").parse().unwrap(),
            index: "isac-indicators".into(),
        },
    ];
    let mut sinks = Sinks::open(settings).unwrap();
    let draft = member_agent::draft::IndicatorDraft {
        purl: Some("pkg:npm/flatmap-stream".into()),
        versions: Some(vec!["0.1.1".into()]),
        tlp: Some("amber".into()),
        title: Some("flatmap-stream steals wallet keys".into()),
        severity: Some("critical".into()),
        ..Default::default()
    };
    let id = member_agent::publish::publish(&alice, draft)
        .await
        .unwrap()
        .id;
    bob.sync(false, &mut sinks).await.unwrap();

    let bodies = |path: &str| -> Vec<String> {
        receiver
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, ..)| p.starts_with(path))
            .map(|(_, _, b, _)| String::from_utf8_lossy(b).into_owned())
            .collect()
    };
    let exposure_id = {
        let text = std::fs::read_to_string(&jsonl).unwrap();
        let line = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["action"] == "exposure.new")
            .expect("exposure.new in the JSON Lines file");
        assert_eq!(line["indicator"]["id"], id.as_str());
        assert_eq!(line["tlp"], "amber");
        line["id"].as_str().unwrap().to_owned()
    };
    let hook: Vec<serde_json::Value> = bodies("/hook")
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .filter(|v: &serde_json::Value| v["action"] == "exposure.new")
        .collect();
    assert_eq!(hook.len(), 1, "one webhook POST for the exposure");
    assert_eq!(hook[0]["application"], "online-banking");
    assert!(bodies("/services/collector")
        .iter()
        .any(|b| b.contains("\"action\":\"exposure.new\"")));
    // The `_bulk` action lines naming the exposure's document.
    let actions_on = |bulk: &str| -> Vec<String> {
        bulk.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| {
                let (action, target) = v.as_object()?.iter().next()?;
                (target["_id"] == exposure_id.as_str()).then(|| action.clone())
            })
            .collect()
    };
    let bulk = bodies("/es/_bulk").join("\n");
    assert_eq!(actions_on(&bulk), ["index"], "{bulk}");
    assert!(bulk.contains("\"dataset\":\"isac.exposure\""), "{bulk}");
    let sightings: Vec<std::path::PathBuf> = std::fs::read_dir(&stix)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("exposure-")
        })
        .collect();
    assert_eq!(sightings.len(), 1);
    let bundle = std::fs::read_to_string(&sightings[0]).unwrap();
    assert!(bundle.contains("\"sighting_of_ref\"") && bundle.contains("online-banking"));
    assert_valid_stix(&sightings);

    let mut alice_sink = Sinks::jsonl(Some(&dir.path().join("alice.jsonl"))).unwrap();
    alice.sync(false, &mut alice_sink).await.unwrap();
    member_agent::publish::retract(&alice, &id, "false positive")
        .await
        .unwrap();
    bob.sync(false, &mut sinks).await.unwrap();
    assert!(bodies("/hook")
        .iter()
        .any(|b| b.contains("\"action\":\"exposure.cleared\"")));
    let bulk = bodies("/es/_bulk").join("\n");
    assert_eq!(actions_on(&bulk), ["index", "delete"], "{bulk}");
    assert!(std::fs::read_to_string(&jsonl)
        .unwrap()
        .contains("\"action\":\"exposure.cleared\""));
    hub.stop().await;
}
