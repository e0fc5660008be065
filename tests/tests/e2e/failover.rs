//! Agents fail over between hub replicas: two `hub serve` processes on one
//! PostgreSQL database with one key material, an agent enrolled with both
//! URLs, and the hub it uses killed (SIGKILL) while it follows, and again
//! between two `sync`s. Everything published through either replica ends
//! up in the agent's store and its JSONL sink exactly once, and `status`
//! names the hub in use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use isac_e2e::pg::PgCluster;
use isac_e2e::replicas::replica_dir;
use isac_e2e::HubProcess;

pub(crate) fn agent(state: &Path, args: &[&str]) -> (bool, String, String) {
    isac_e2e::run(
        isac_e2e::bin("member-agent")
            .arg("--state-dir")
            .arg(state)
            .args(args),
    )
}

pub(crate) fn publish(state: &Path, purl: &str) {
    let (ok, _, err) = agent(
        state,
        &[
            "publish", "--kind", "package", "--purl", purl, "--tlp", "green", "--title", purl,
        ],
    );
    assert!(ok, "publishing {purl}: {err}");
}

/// `upsert` lines per statement id in a JSONL sink.
pub(crate) fn jsonl_ids(path: &Path) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("whole JSONL lines");
        if v["action"] == "upsert" {
            *counts
                .entry(v["id"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
    }
    counts
}

pub(crate) fn status(state: &Path) -> serde_json::Value {
    let (ok, out, err) = agent(state, &["status", "--json"]);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// Waits (bounded: a failure, not a hang) until the sink holds `n` items.
pub(crate) fn wait_for_items(path: &Path, n: usize, follower: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let have = jsonl_ids(path).len();
        if have >= n {
            return;
        }
        assert!(
            follower.try_wait().unwrap().is_none(),
            "`member-agent run` exited with {have} of {n} items"
        );
        assert!(
            Instant::now() < deadline,
            "the agent holds {have} of {n} items after 90 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn sigkill(hub: &mut HubProcess) {
    hub.child.kill().unwrap();
    hub.child.wait().unwrap();
}

#[test]
fn an_agent_fails_over_between_replicas_and_holds_every_item_once() {
    let cluster = PgCluster::start();
    cluster.create_db("isac");
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b): (PathBuf, PathBuf) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&data_a).unwrap();
    std::fs::write(
        data_a.join("hub.toml"),
        format!("store = \"{}\"\n", cluster.url("isac")),
    )
    .unwrap();
    let mut hub_a = HubProcess::start(&data_a, "127.0.0.1:0");
    replica_dir(&data_a, &data_b);
    let mut hub_b = HubProcess::start(&data_b, "127.0.0.1:0");
    let (url_a, url_b) = (hub_a.url(), hub_b.url());
    let listen_a = hub_a.addr.clone();

    // Publishers enrolled at either replica; the subscriber at both.
    let (alice, carol, bob) = (
        dir.path().join("alice"),
        dir.path().join("carol"),
        dir.path().join("bob"),
    );
    isac_e2e::enroll_with_cli(&data_a, &url_a, "alice-bank", None, &alice);
    isac_e2e::enroll_with_cli(&data_b, &url_b, "carol-bank", None, &carol);
    let (ok, token, err) = isac_e2e::run(
        isac_e2e::bin("hub")
            .arg("--data-dir")
            .arg(&data_b)
            .args(["member", "add", "bob-bank"]),
    );
    assert!(ok, "{err}");
    let (ok, out, err) = agent(
        &bob,
        &[
            "enroll",
            "--hub",
            &url_a,
            "--hub",
            &url_b,
            "--token",
            token.trim(),
        ],
    );
    assert!(ok && out.contains("enrolled as `bob-bank`"), "{out}{err}");
    let s = status(&bob);
    assert_eq!(s["hub"], url_a.as_str(), "{s}");
    assert_eq!(s["hubs"], serde_json::json!([url_a, url_b]), "{s}");

    // `run` follows the first URL; items come through both replicas.
    let jsonl = dir.path().join("bob.jsonl");
    let mut follower: Child = Command::new(isac_e2e::bin_dir().join("member-agent"))
        .env("RUST_LOG", "warn")
        .arg("--state-dir")
        .arg(&bob)
        .args(["run", "--jsonl"])
        .arg(&jsonl)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut published = 0;
    for n in 0..4 {
        publish(&alice, &format!("pkg:npm/through-a-{n}@1.0.0"));
        publish(&carol, &format!("pkg:npm/through-b-{n}@1.0.0"));
        published += 2;
    }
    wait_for_items(&jsonl, published, &mut follower);
    assert_eq!(status(&bob)["hub"], url_a.as_str());

    // The hub in use dies mid-stream; publishing goes on through the other.
    for n in 0..8 {
        if n == 2 {
            sigkill(&mut hub_a);
        }
        publish(&carol, &format!("pkg:npm/after-kill-{n}@1.0.0"));
        published += 1;
    }
    wait_for_items(&jsonl, published, &mut follower);
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(follower.id().to_string())
        .status();
    let out = follower.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!("{url_a} is down; failing over to {url_b}")),
        "{log}"
    );
    let s = status(&bob);
    assert_eq!(s["hub"], url_b.as_str(), "{s}");
    assert_eq!(s["items"], published as u64, "{s}");

    // Between two syncs: the first replica comes back, the second dies;
    // `sync` starts at the second (in use), finds it down and moves.
    hub_a = HubProcess::start(&data_a, &listen_a);
    for n in 0..3 {
        publish(&alice, &format!("pkg:npm/between-syncs-{n}@1.0.0"));
        published += 1;
    }
    sigkill(&mut hub_b);
    let (ok, _, err) = agent(&bob, &["sync", "--jsonl", jsonl.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains("3 new, 0 already held"), "{err}");
    assert!(
        err.contains(&format!("{url_b} is down; failing over to {url_a}")),
        "{err}"
    );

    // Every item exactly once, in the store and in the sink.
    let s = status(&bob);
    assert_eq!(s["hub"], url_a.as_str(), "{s}");
    assert_eq!(s["items"], published as u64, "{s}");
    assert_eq!(s["refused"], 0, "{s}");
    assert_eq!(
        s["alert"],
        serde_json::Value::Null,
        "the shared log verified: {s}"
    );
    let ids = jsonl_ids(&jsonl);
    assert_eq!(ids.len(), published, "{ids:?}");
    assert!(ids.values().all(|&c| c == 1), "duplicates: {ids:?}");
    let (ok, _, err) = agent(&bob, &["sync", "--jsonl", jsonl.to_str().unwrap()]);
    assert!(ok && err.contains("0 new"), "{err}");

    hub_a.terminate();
    drop(cluster);
}

/// `publish`, `sight` and the console, one-shot users of the hub URL, move
/// on from a replica that is down as `sync` does and record the URL that
/// served them (which `status` and the console's status page show); a
/// refusal (a suspended member) is not tried at another replica.
#[test]
fn one_shot_commands_and_the_console_fail_over_too() {
    use crate::console::{http, split_link, start_with_link, Procs};
    use isac_e2e::replicas::Replicas;

    let dir = tempfile::tempdir().unwrap();
    let mut r = Replicas::start(dir.path(), 2);
    let (url_a, url_b) = (r.url(0), r.url(1));
    let listen_a = r.hubs[0].addr.clone();
    let bob = dir.path().join("bob");
    let (ok, token, err) = isac_e2e::run(
        isac_e2e::bin("hub")
            .arg("--data-dir")
            .arg(&r.dirs[0])
            .args(["member", "add", "bob-bank"]),
    );
    assert!(ok, "{err}");
    let (ok, out, err) = agent(
        &bob,
        &[
            "enroll",
            "--hub",
            &url_a,
            "--hub",
            &url_b,
            "--token",
            token.trim(),
        ],
    );
    assert!(ok, "{out}{err}");
    let publish_err = |purl: &str| {
        let (ok, out, err) = agent(
            &bob,
            &["publish", "--purl", purl, "--tlp", "green", "--title", purl],
        );
        assert!(
            ok && out.starts_with("id="),
            "publishing {purl}: {out}{err}"
        );
        err
    };
    let err = publish_err("pkg:npm/one-shot-0@1.0.0");
    assert!(!err.contains("failing over"), "{err}");
    assert_eq!(status(&bob)["hub"], url_a.as_str());

    // A down: `publish` goes to B and records it.
    r.sigkill(0);
    let err = publish_err("pkg:npm/one-shot-1@1.0.0");
    assert!(
        err.contains(&format!("{url_a} is down; failing over to {url_b}")),
        "{err}"
    );
    assert_eq!(status(&bob)["hub"], url_b.as_str());

    // The console shows the URL in use, beside the one enrolled with, and
    // reaches the hub through it.
    let mut procs = Procs(Vec::new());
    let mut ui = isac_e2e::bin("member-agent");
    ui.arg("--state-dir")
        .arg(&bob)
        .args(["ui", "--listen", "127.0.0.1:0"]);
    let link = start_with_link(ui, &dir.path().join("ui.log"), &mut procs);
    let (host, token) = split_link(&link);
    let origin = format!("http://{host}");
    let same = [
        ("Origin", origin.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let login = http(&host, "POST", "/login", &same, &format!("token={token}"));
    assert_eq!(login.status, 303, "{}", login.body);
    let cookie = login.header("set-cookie").unwrap();
    let session = cookie.split(';').next().unwrap().to_owned();
    let page = http(&host, "GET", "/status", &[("Cookie", session.as_str())], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(&format!("<dd id=\"hub-in-use\"><code>{url_b}</code></dd>")),
        "{}",
        page.body
    );
    assert!(page.body.contains("Enrolled at"), "{}", page.body);
    assert!(
        page.body.contains("connected over mutual TLS"),
        "{}",
        page.body
    );
    drop(procs);

    // `sight` starting at B, now down, moves back to A.
    let (ok, _, err) = agent(&bob, &["sync"]);
    assert!(ok, "{err}");
    let held: serde_json::Value = {
        let (ok, out, err) = agent(&bob, &["list", "--json"]);
        assert!(ok, "{err}");
        serde_json::from_str(out.lines().next().unwrap()).unwrap()
    };
    let id = held["id"].as_str().expect("an item id").to_owned();
    r.hubs[0] = HubProcess::start(&r.dirs[0], &listen_a);
    r.sigkill(1);
    let (ok, out, err) = agent(&bob, &["sight", &id]);
    assert!(ok && out.starts_with("id="), "{out}{err}");
    assert!(
        err.contains(&format!("{url_b} is down; failing over to {url_a}")),
        "{err}"
    );
    assert_eq!(status(&bob)["hub"], url_a.as_str());

    // A refusal is the same at every replica: no fail-over, the reason shown.
    let (ok, _, err) = isac_e2e::run(
        isac_e2e::bin("hub")
            .arg("--data-dir")
            .arg(&r.dirs[0])
            .args(["member", "suspend", "bob-bank"]),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = agent(
        &bob,
        &[
            "publish",
            "--purl",
            "pkg:npm/refused@1.0.0",
            "--tlp",
            "green",
            "--title",
            "x",
        ],
    );
    assert!(!ok, "a suspended member published");
    assert!(err.contains("suspended"), "{err}");
    assert!(!err.contains("failing over"), "{err}");
    assert_eq!(status(&bob)["hub"], url_a.as_str());
}
