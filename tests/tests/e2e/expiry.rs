//! Expiry everywhere (issue 21): a running `member-agent run` process
//! removes an item from each sink in the sink's idiom at its `valid_until`
//! (signed, or the hub-wide default lifetime of its kind from the signed
//! key directory), and a later revision brings it back; TAXII serves an
//! expired indicator with its `valid_until` in the past.

use std::path::Path;
use std::time::Duration;

use isac_core::time::format_rfc3339;
use isac_e2e::*;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::publish;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

fn draft(domain_or_purl: &str, severity: &str) -> IndicatorDraft {
    let mut d = IndicatorDraft {
        tlp: Some("green".into()),
        title: Some(format!("{domain_or_purl} lapses")),
        severity: Some(severity.into()),
        confidence: Some(80),
        ..Default::default()
    };
    if domain_or_purl.starts_with("pkg:") {
        d.purl = Some(domain_or_purl.into());
    } else {
        d.domain = Some(domain_or_purl.into());
    }
    d
}

/// A hub whose `hub.toml` gives network indicators a one-minute lifetime.
async fn hub_with_default_lifetime(data: &Path, clock: hub::app::Clock) -> TestHub {
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(
        data.join("hub.toml"),
        "[default_lifetime]\nnetwork = \"1m\"\n",
    )
    .unwrap();
    TestHub::start_with_clock(data, clock).await
}

fn jsonl_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn jsonl_count(path: &Path, id: &str, action: &str) -> usize {
    jsonl_lines(path)
        .iter()
        .filter(|l| l["id"] == id && l["action"] == action)
        .count()
}

/// The Splunk HEC events the receiver got, in order.
fn hec_events(r: &crate::delivery::Receiver) -> Vec<Value> {
    r.seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, ..)| p == "/services/collector/event")
        .flat_map(|(_, _, b, _)| {
            serde_json::Deserializer::from_slice(b)
                .into_iter::<Value>()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        })
        .map(|v| v["event"].clone())
        .collect()
}

/// The Elasticsearch `_bulk` actions the receiver got for document `id`,
/// in order: `index` or `delete`.
fn es_actions(r: &crate::delivery::Receiver, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (p, _, b, _) in r.seen.lock().unwrap().iter() {
        if p != "/es/_bulk" {
            continue;
        }
        for line in String::from_utf8_lossy(b).lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            for action in ["index", "delete"] {
                if v[action]["_id"] == id {
                    out.push(action.to_owned());
                }
            }
        }
    }
    out
}

/// A syslog receiver over TCP: every byte it was sent.
fn syslog_receiver(listener: std::net::TcpListener) -> std::sync::Arc<std::sync::Mutex<String>> {
    let got = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut conn, &mut text);
            g.lock().unwrap().push_str(&text);
        }
    });
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_agent_process_lapses_items_in_every_sink_and_a_revision_restores_them() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_default_lifetime(&dir.path().join("hub"), hub::app::Clock::system()).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    // Bob's agent is the real binary, following the hub; the library agent
    // only enrolled it.
    let bob_state = dir.path().join("bob");
    drop(enrolled_agent(&hub, "bob-bank", &bob_state).await);
    let receiver = crate::delivery::receiver(0).await;
    let base = format!("http://{}", receiver.addr);
    let syslog_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let syslog_addr = syslog_listener.local_addr().unwrap();
    let syslog = syslog_receiver(syslog_listener);
    let jsonl = dir.path().join("bob.jsonl");
    let stix = dir.path().join("stix");
    let log = dir.path().join("bob-run.log");
    let mut running = bin("member-agent")
        .arg("--state-dir")
        .arg(&bob_state)
        .arg("run")
        .arg("--jsonl")
        .arg(&jsonl)
        .arg("--stix-dir")
        .arg(&stix)
        .args(["--splunk-hec", &format!("{base}/services/collector/event")])
        .args(["--splunk-token", "hec-token"])
        .args(["--elastic", &format!("{base}/es")])
        .args(["--syslog", &format!("tcp://{syslog_addr}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // Three items: one with its own valid_until a few seconds ahead, one
    // without, which the hub's default lifetime for its kind (one minute,
    // published in the signed directory) ends at the same time, and one
    // that never expires (no default for packages).
    let now = member_agent::now();
    let mut signed = draft("pkg:npm/lapsing@1.0.0", "high");
    signed.valid_until = Some(format_rfc3339(now + 8));
    let signed = publish(&alice, signed).await.unwrap();
    let mut defaulted = draft("lapsing.evil.example", "high");
    defaulted.valid_from = Some(format_rfc3339(now + 8 - 60));
    let defaulted_until = format_rfc3339(now + 8);
    let defaulted = publish(&alice, defaulted).await.unwrap();
    let forever = publish(&alice, draft("pkg:npm/forever@1.0.0", "high"))
        .await
        .unwrap();

    // Delivered everywhere first, the default lifetime in the record.
    eventually("three items in the JSON Lines sink", WAIT, || {
        [&signed.id, &defaulted.id, &forever.id]
            .iter()
            .all(|id| jsonl_count(&jsonl, id, "upsert") == 1)
    })
    .await;
    let upsert = jsonl_lines(&jsonl)
        .into_iter()
        .find(|l| l["id"] == defaulted.id.as_str())
        .unwrap();
    assert_eq!(upsert["valid_until"], defaulted_until.as_str(), "{upsert}");
    assert!(upsert["statement"]["body"]["valid_until"].is_null());

    // At their second the daemon lapses both, with no new item and no
    // sync: each sink in its idiom.
    for id in [&signed.id, &defaulted.id] {
        eventually("the expiry in the JSON Lines sink", WAIT, || {
            jsonl_count(&jsonl, id, "expire") == 1
        })
        .await;
        eventually("the expiry at Splunk HEC", WAIT, || {
            hec_events(&receiver)
                .iter()
                .any(|e| e["action"] == "expire" && e["id"] == id.as_str())
        })
        .await;
        eventually("the document deleted from Elasticsearch", WAIT, || {
            es_actions(&receiver, id) == ["index", "delete"]
        })
        .await;
        eventually("a CEF act=expire event over syslog", WAIT, || {
            syslog
                .lock()
                .unwrap()
                .contains(&format!("externalId={id} act=expire"))
        })
        .await;
        eventually("the expired STIX version", WAIT, || {
            std::fs::read_dir(&stix).unwrap().any(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                name.ends_with(&format!("{id}.expired.json"))
            })
        })
        .await;
    }
    let expire = jsonl_lines(&jsonl)
        .into_iter()
        .find(|l| l["id"] == defaulted.id.as_str() && l["action"] == "expire")
        .unwrap();
    assert_eq!(expire["valid_until"], defaulted_until.as_str());
    let expired_bundles: Vec<std::path::PathBuf> = std::fs::read_dir(&stix)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".expired.json"))
        .collect();
    assert_eq!(expired_bundles.len(), 2, "{expired_bundles:?}");
    for path in &expired_bundles {
        let bundle: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let indicator = bundle["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["type"] == "indicator")
            .unwrap();
        assert_eq!(indicator["x_isac_expired"], true);
        assert!(indicator["modified"].as_str() > indicator["created"].as_str());
    }
    assert_valid_stix(&expired_bundles);

    // A revision with a later valid_until brings the signed one back.
    let mut later = draft("pkg:npm/lapsing@1.0.0", "high");
    later.valid_until = Some(format_rfc3339(member_agent::now() + 3600));
    let mut revision = later
        .into_prepared(alice.org_id(), format_rfc3339(member_agent::now()))
        .unwrap();
    revision.statement.id = signed.id.parse().unwrap();
    revision.statement.revision = 2;
    member_agent::publish::publish_prepared(&alice, &revision)
        .await
        .unwrap();
    eventually("the restored item in the JSON Lines sink", WAIT, || {
        jsonl_lines(&jsonl)
            .iter()
            .any(|l| l["id"] == signed.id.as_str() && l["action"] == "upsert" && l["revision"] == 2)
    })
    .await;
    eventually("the restored event at Splunk HEC", WAIT, || {
        hec_events(&receiver)
            .iter()
            .any(|e| e["action"] == "upsert" && e["id"] == signed.id.as_str() && e["revision"] == 2)
    })
    .await;
    eventually("the document indexed again in Elasticsearch", WAIT, || {
        es_actions(&receiver, &signed.id) == ["index", "delete", "index"]
    })
    .await;

    // The item that never expires never did; nothing lapsed twice.
    assert_eq!(jsonl_count(&jsonl, &forever.id, "expire"), 0);
    assert_eq!(jsonl_count(&jsonl, &signed.id, "expire"), 1);
    assert_eq!(es_actions(&receiver, &forever.id), ["index"]);
    let _ = running.kill();
    let _ = running.wait();
    hub.stop().await;
}

#[tokio::test]
async fn taxii_serves_expired_indicators_with_their_valid_until_in_the_past() {
    let dir = tempfile::tempdir().unwrap();
    let start = member_agent::now();
    let clock = hub::app::Clock::manual(start);
    let hub = hub_with_default_lifetime(&dir.path().join("hub"), clock.clone()).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let mut signed = draft("pkg:npm/short@1.0.0", "high");
    signed.valid_until = Some(format_rfc3339(start + 5));
    publish(&alice, signed).await.unwrap();
    // No valid_until: the default for network indicators applies.
    publish(&alice, draft("short.evil.example", "high"))
        .await
        .unwrap();
    publish(&alice, draft("pkg:npm/forever@1.0.0", "high"))
        .await
        .unwrap();

    // An agent holds all three...
    let jsonl = dir.path().join("alice.jsonl");
    let mut sinks = member_agent::Sinks::jsonl(Some(&jsonl)).unwrap();
    alice.sync(false, &mut sinks).await.unwrap();
    assert_eq!(jsonl_lines(&jsonl).len(), 3);
    // ...and `export --format stix` writes the default lifetime as the
    // STIX sink does (an indicator with no valid_until of its own).
    let (bundle, _) =
        member_agent::export::export(&alice, member_agent::export::Format::Stix, false).unwrap();
    let bundle: Value = serde_json::from_str(&bundle).unwrap();
    let exported = |name: &str| {
        bundle["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["type"] == "indicator" && o["name"] == name)
            .unwrap_or_else(|| panic!("{name} exported: {bundle}"))
            .get("valid_until")
            .cloned()
    };
    let exported_default = exported("short.evil.example lapses").expect("the default lifetime");
    let exported_at =
        isac_core::time::parse_rfc3339(&exported_default.as_str().unwrap().replace(".000Z", "Z"))
            .unwrap();
    assert!(
        (start + 60..=start + 61).contains(&exported_at),
        "{exported_default}"
    );
    assert_eq!(exported("pkg:npm/forever@1.0.0 lapses"), None);

    // Both lapse; TAXII still serves them, their valid_until in the past.
    clock.set(start + 3600);
    let (user, pass) = hub.add_api_key("alice-bank", None).await;
    let cid = hub::taxii::collection_id("indicators");
    let r = hub
        .taxii(
            "GET",
            &format!("/isac/collections/{cid}/objects/"),
            Some((&user, &pass)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let objects = r.json()["objects"].as_array().cloned().unwrap();
    let until = |name: &str| {
        objects
            .iter()
            .find(|o| o["type"] == "indicator" && o["name"] == name)
            .unwrap_or_else(|| panic!("{name} served: {objects:?}"))
            .get("valid_until")
            .cloned()
    };
    let stix_time = |t: i64| Value::String(isac_core::stix::stix_timestamp(&format_rfc3339(t)));
    assert_eq!(
        until("pkg:npm/short@1.0.0 lapses"),
        Some(stix_time(start + 5))
    );
    let defaulted = until("short.evil.example lapses").expect("the default lifetime applied");
    let defaulted_at =
        isac_core::time::parse_rfc3339(&defaulted.as_str().unwrap().replace(".000Z", "Z")).unwrap();
    // Its creation (at the hub's clock, when it was published) plus a minute.
    assert!(
        (start + 60..=start + 61).contains(&defaulted_at),
        "{defaulted}"
    );
    assert!(defaulted_at < clock.now());
    assert_eq!(until("pkg:npm/forever@1.0.0 lapses"), None);

    // ...and, from the same signed lifetimes, lapses the same two.
    alice.sync(false, &mut sinks).await.unwrap();
    assert_eq!(
        alice
            .directory()
            .unwrap()
            .default_lifetimes
            .into_iter()
            .collect::<Vec<_>>(),
        [("network".to_string(), 60)]
    );
    let mut expired: Vec<String> = jsonl_lines(&jsonl)
        .iter()
        .filter(|l| l["action"] == "expire")
        .map(|l| l["value"].as_str().unwrap().to_owned())
        .collect();
    expired.sort();
    assert_eq!(expired, ["pkg:npm/short@1.0.0", "short.evil.example"]);
    hub.stop().await;
}
