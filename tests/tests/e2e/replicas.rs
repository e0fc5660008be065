//! Hub replicas under faults, on a real PostgreSQL with real `hub serve`
//! processes sharing one key material: one global order seen alike through
//! every replica while all of them take publishes; a replica SIGKILLed
//! mid-publish loses nothing it acknowledged and its agents carry on
//! through another; PostgreSQL restarted under publish load makes the
//! replicas answer UNAVAILABLE and then recover by themselves, with every
//! retried publish in exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use isac_e2e::replicas::Replicas;
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::{Agent, AgentError, StateDir};

use crate::failover::{jsonl_ids, status, wait_for_items};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Adds `org` at replica `i` and enrolls an agent for it there (CLI), then
/// opens that agent in this process.
fn agent_at(r: &Replicas, i: usize, org: &str, root: &Path) -> Agent {
    let state = root.join(org);
    isac_e2e::enroll_with_cli(&r.dirs[i], &r.url(i), org, None, &state);
    Agent::open(&StateDir::new(&state)).unwrap()
}

fn draft(purl: String, tlp: &str, audience: &[&str]) -> IndicatorDraft {
    IndicatorDraft {
        tlp: Some(tlp.into()),
        title: Some(purl.clone()),
        severity: Some("high".into()),
        confidence: Some(80),
        purl: Some(purl),
        audience: (!audience.is_empty()).then(|| audience.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

fn prepared(agent: &Agent, d: IndicatorDraft) -> member_agent::draft::Prepared {
    let created = isac_core::time::format_rfc3339(agent.clock.now());
    d.into_prepared(agent.org_id(), created).unwrap()
}

/// One delivered item: statement id and its leaf index in the hub's log.
type Seen = (String, u64);

fn seen(d: pb::Delivery) -> Seen {
    let payload = d.envelope.expect("envelope").payload;
    let statement = isac_core::Statement::from_canonical_bytes(&payload).unwrap();
    (statement.id.to_string(), d.log_index.expect("log index"))
}

async fn subscribe(
    agent: &Agent,
    follow: bool,
) -> Result<tonic::Streaming<pb::SubscribeResponse>, tonic::Status> {
    let channel = agent.channel().await.expect("channel");
    pb::subscriber_client::SubscriberClient::new(channel)
        .subscribe(pb::SubscribeRequest {
            after_sequence: 0,
            follow,
            filter: None,
            include_expired: false,
            cursor: Vec::new(),
        })
        .await
        .map(|r| r.into_inner())
}

/// Everything the agent may see at its hub, from the beginning, in the
/// order the hub sends it (a backlog read, ending at `caught_up`).
async fn everything(agent: &Agent) -> Vec<Seen> {
    let mut stream = subscribe(agent, false).await.expect("subscribe");
    let mut items = Vec::new();
    while let Some(m) = stream.message().await.expect("backlog") {
        match m.event {
            Some(pb::subscribe_response::Event::Item(d)) => items.push(seen(d)),
            Some(pb::subscribe_response::Event::CaughtUp(_)) => break,
            _ => {}
        }
    }
    items
}

fn assert_once(items: &[Seen], what: &str) {
    let ids: BTreeSet<&String> = items.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), items.len(), "{what}: an item came twice");
    assert!(
        items.windows(2).all(|w| w[0].1 < w[1].1),
        "{what}: log indexes not increasing: {items:?}"
    );
}

/// Three replicas take publishes at once (two publishers each) while a
/// subscriber streams from each replica: every subscriber receives every
/// item it is entitled to exactly once, none it is not, and all three
/// receive them in one and the same order.
#[test]
fn three_replicas_deliver_every_entitled_item_once_in_one_order() {
    const PER_PUBLISHER: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let r = Replicas::start(dir.path(), 3);
    let subscribers: Vec<Agent> = (0..3)
        .map(|i| agent_at(&r, i, &format!("sub-{i}"), dir.path()))
        .collect();
    let publishers: Vec<Agent> = (0..6)
        .map(|p| agent_at(&r, p % 3, &format!("pub-{p}"), dir.path()))
        .collect();
    let rt = runtime();
    rt.block_on(async {
        // Subscribers first, each streaming from its replica and caught up
        // (nothing yet) before the first publish.
        let subscribers: Vec<Arc<Agent>> = subscribers.into_iter().map(Arc::new).collect();
        let expected_total = Arc::new(Mutex::new(None::<usize>));
        let mut streams = Vec::new();
        for sub in &subscribers {
            let mut stream = subscribe(sub, true).await.expect("subscribe");
            loop {
                match stream.message().await.unwrap().and_then(|m| m.event) {
                    Some(pb::subscribe_response::Event::CaughtUp(_)) => break,
                    // The enrollments just before moved the membership epoch.
                    Some(pb::subscribe_response::Event::DirectoryChanged(_)) => {}
                    other => panic!("expected caught_up first, got {other:?}"),
                }
            }
            let expected_total = expected_total.clone();
            streams.push(tokio::spawn(async move {
                let mut items = Vec::new();
                loop {
                    if let Some(n) = *expected_total.lock().unwrap() {
                        if items.len() >= n {
                            return items;
                        }
                    }
                    let next = tokio::time::timeout(Duration::from_millis(200), stream.message());
                    match next.await {
                        Err(_) => continue, // re-check whether the count is known
                        Ok(Ok(Some(m))) => {
                            if let Some(pb::subscribe_response::Event::Item(d)) = m.event {
                                items.push(seen(d));
                            }
                        }
                        Ok(other) => panic!("stream ended: {other:?}"),
                    }
                }
            }));
        }

        // Six publishers on three replicas, all at once. Every fifth item
        // is AMBER+STRICT for the three subscribers; every seventh is
        // AMBER+STRICT for another publisher only (never delivered to them).
        let audience_all = ["org:sub-0", "org:sub-1", "org:sub-2"];
        let mut tasks = Vec::new();
        for (p, publisher) in publishers.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                let mut entitled = Vec::new();
                let mut hidden = Vec::new();
                for n in 0..PER_PUBLISHER {
                    let purl = format!("pkg:npm/pub-{p}-{n}@1.0.0");
                    let other = format!("org:pub-{}", (p + 1) % 6);
                    let (d, visible) = if n % 7 == 6 {
                        (draft(purl, "amber+strict", &[other.as_str()]), false)
                    } else if n % 5 == 4 {
                        (draft(purl, "amber+strict", &audience_all), true)
                    } else {
                        (draft(purl, "green", &[]), true)
                    };
                    let id = member_agent::publish::publish(&publisher, d)
                        .await
                        .unwrap_or_else(|e| panic!("publisher {p}: {e}"))
                        .id;
                    if visible {
                        entitled.push(id);
                    } else {
                        hidden.push(id);
                    }
                }
                (entitled, hidden)
            }));
        }
        let (mut entitled, mut hidden) = (BTreeSet::new(), BTreeSet::new());
        for t in tasks {
            let (e, h) = t.await.unwrap();
            entitled.extend(e);
            hidden.extend(h);
        }
        assert!(!hidden.is_empty());
        *expected_total.lock().unwrap() = Some(entitled.len());

        let mut lists = Vec::new();
        for (i, s) in streams.into_iter().enumerate() {
            let items = tokio::time::timeout(Duration::from_secs(60), s)
                .await
                .unwrap_or_else(|_| panic!("subscriber at replica {i}: not all items in 60 s"))
                .unwrap();
            assert_once(&items, &format!("replica {i}"));
            let ids: BTreeSet<String> = items.iter().map(|(id, _)| id.clone()).collect();
            assert_eq!(
                ids, entitled,
                "replica {i}: every entitled item, nothing else"
            );
            lists.push(items);
        }
        assert_eq!(lists[0], lists[1], "replicas 0 and 1 disagree on the order");
        assert_eq!(lists[0], lists[2], "replicas 0 and 2 disagree on the order");
        // And nothing came after: a fresh read from the start through each
        // replica is the same list (no item live-streamed twice or late).
        for (i, sub) in subscribers.iter().enumerate() {
            assert_eq!(everything(sub).await, lists[0], "replica {i} backlog");
        }
    });
}

/// The `member-agent run` process following `state`'s hub, writing a
/// JSONL sink.
fn follower(state: &Path, jsonl: &Path) -> Child {
    Command::new(isac_e2e::bin_dir().join("member-agent"))
        .env("RUST_LOG", "warn")
        .arg("--state-dir")
        .arg(state)
        .args(["run", "--jsonl"])
        .arg(jsonl)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A replica SIGKILLed while three publishers stream publishes into it:
/// every item it acknowledged is there when read through the other
/// replica, and an agent that was following the killed replica carries on
/// through the other one and holds every item exactly once.
#[test]
fn a_replica_killed_mid_publish_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Replicas::start(dir.path(), 2);
    let (url_a, url_b) = (r.url(0), r.url(1));
    let publishers: Vec<Agent> = (0..3)
        .map(|p| agent_at(&r, 0, &format!("pub-{p}"), dir.path()))
        .collect();
    let reader = agent_at(&r, 1, "reader-bank", dir.path());
    let late = agent_at(&r, 1, "late-bank", dir.path());
    // The follower knows both URLs and starts on the first.
    let bob = dir.path().join("bob");
    let (ok, token, err) = isac_e2e::run(
        isac_e2e::bin("hub")
            .arg("--data-dir")
            .arg(&r.dirs[0])
            .args(["member", "add", "bob-bank"]),
    );
    assert!(ok, "{err}");
    let (ok, out, err) = isac_e2e::run(
        isac_e2e::bin("member-agent")
            .arg("--state-dir")
            .arg(&bob)
            .args(["enroll", "--hub", &url_a, "--hub", &url_b])
            .args(["--token", token.trim()]),
    );
    assert!(ok, "{out}{err}");
    let jsonl = dir.path().join("bob.jsonl");
    let mut bob_run = follower(&bob, &jsonl);

    let rt = runtime();
    let acked: Vec<String> = rt.block_on(async {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (p, publisher) in publishers.into_iter().enumerate() {
            let acked = acked.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..2_000 {
                    let d = draft(format!("pkg:npm/kill-{p}-{n}@1.0.0"), "green", &[]);
                    match member_agent::publish::publish(&publisher, d).await {
                        Ok(published) => acked.lock().unwrap().push(published.id),
                        Err(e) => return Some(e),
                    }
                }
                None
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.lock().unwrap().len() < 30 {
            assert!(
                Instant::now() < deadline,
                "30 publishes not acknowledged in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        r.sigkill(0);
        for t in tasks {
            let ended = t.await.unwrap().expect("the publisher was cut off mid-run");
            assert!(
                member_agent::failover::hub_is_down(&ended),
                "a killed hub is a hub that is down: {ended:?}"
            );
        }
        let acked = acked.lock().unwrap().clone();
        // Every acknowledged item is in the database, read through B.
        let at_b = everything(&reader).await;
        assert_once(&at_b, "read through the surviving replica");
        let ids: BTreeSet<&String> = at_b.iter().map(|(id, _)| id).collect();
        let lost: Vec<&String> = acked.iter().filter(|id| !ids.contains(id)).collect();
        assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
        // Publishing goes on through B.
        for n in 0..5 {
            let d = draft(format!("pkg:npm/after-kill-{n}@1.0.0"), "green", &[]);
            member_agent::publish::publish(&late, d).await.unwrap();
        }
        acked
    });
    let at_b: Vec<String> = rt
        .block_on(everything(&reader))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(at_b.len() >= acked.len() + 5);
    wait_for_items(&jsonl, at_b.len(), &mut bob_run);
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(bob_run.id().to_string())
        .status();
    let out = bob_run.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!("{url_a} is down; failing over to {url_b}")),
        "{log}"
    );
    assert!(
        !log.contains("rollback"),
        "B offered an older key directory: {log}"
    );
    let held = jsonl_ids(&jsonl);
    assert!(held.values().all(|&c| c == 1), "duplicates: {held:?}");
    let held: BTreeSet<String> = held.into_keys().collect();
    assert_eq!(held, at_b.into_iter().collect::<BTreeSet<_>>());
    let s = status(&bob);
    assert_eq!(s["hub"], url_b.as_str(), "{s}");
    assert_eq!(s["items"], held.len() as u64, "{s}");
    assert_eq!(s["refused"], 0, "{s}");
}

/// PostgreSQL stopped and started again while four publishers on two
/// replicas keep publishing, each retrying the same signed statement until
/// it is acknowledged: while it is down the replicas answer UNAVAILABLE
/// saying they cannot reach their database; when it returns they serve
/// again without a restart, and every statement is in exactly once,
/// in the same order through both.
#[test]
fn postgres_restarted_under_publish_load_loses_nothing_and_duplicates_nothing() {
    const PER_PUBLISHER: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let mut r = Replicas::start(dir.path(), 2);
    let publishers: Vec<Agent> = (0..4)
        .map(|p| agent_at(&r, p % 2, &format!("pub-{p}"), dir.path()))
        .collect();
    let readers: Vec<Agent> = (0..2)
        .map(|i| agent_at(&r, i, &format!("reader-{i}"), dir.path()))
        .collect();
    let rt = runtime();
    let acked = Arc::new(Mutex::new(0usize));
    let refusals = Arc::new(Mutex::new(BTreeMap::<String, u32>::new()));
    let mut tasks = Vec::new();
    for (p, publisher) in publishers.into_iter().enumerate() {
        let (acked, refusals) = (acked.clone(), refusals.clone());
        tasks.push(rt.spawn(async move {
            let mut ids = Vec::new();
            let mut duplicates = 0;
            for n in 0..PER_PUBLISHER {
                let d = draft(format!("pkg:npm/restart-{p}-{n}@1.0.0"), "green", &[]);
                let item = prepared(&publisher, d);
                let deadline = Instant::now() + Duration::from_secs(90);
                loop {
                    match member_agent::publish::publish_prepared(&publisher, &item).await {
                        Ok(published) => {
                            assert_eq!(published.id, item.statement.id.to_string());
                            duplicates += published.duplicate as u32;
                            break;
                        }
                        Err(e) => {
                            let key = match &e {
                                AgentError::Hub { code, message } => {
                                    // The request id differs per call; it must be there.
                                    let (text, id) = message
                                        .split_once(" (request id ")
                                        .unwrap_or((message, ""));
                                    assert!(!id.is_empty(), "no request id: {message}");
                                    format!("{code:?}: {text}")
                                }
                                other => format!("{other:?}"),
                            };
                            *refusals.lock().unwrap().entry(key).or_default() += 1;
                            assert!(Instant::now() < deadline, "publisher {p} stuck: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                ids.push(item.statement.id.to_string());
                *acked.lock().unwrap() += 1;
            }
            (ids, duplicates)
        }));
    }
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("20 acknowledged publishes", &|| {
        *acked.lock().unwrap() >= 20
    });
    r.cluster.stop();
    let at_stop = *acked.lock().unwrap();
    wait_for("publishes refused while the database is down", &|| {
        refusals.lock().unwrap().values().sum::<u32>() >= 24
    });
    r.cluster.start_again();
    let mut all = BTreeSet::new();
    let mut duplicates = 0;
    for t in tasks {
        let (ids, d) = rt.block_on(t).unwrap();
        duplicates += d;
        all.extend(ids);
    }
    assert_eq!(all.len(), 4 * PER_PUBLISHER);
    assert!(
        at_stop < all.len(),
        "the stop came after every publish had been acknowledged"
    );
    // While it was down: UNAVAILABLE, saying why and that nothing was stored.
    let refusals = refusals.lock().unwrap().clone();
    for message in refusals.keys() {
        assert_eq!(
            message,
            "Unavailable: the hub cannot reach its database: nothing was stored; retry shortly",
            "every refusal while the database was down: {refusals:?}"
        );
    }
    // The same processes serve again (no restart) and hold every item once.
    assert!(r.running(0) && r.running(1), "a replica exited");
    let lists: Vec<Vec<Seen>> = readers.iter().map(|a| rt.block_on(everything(a))).collect();
    for (i, items) in lists.iter().enumerate() {
        assert_once(items, &format!("replica {i}"));
        let ids: BTreeSet<String> = items.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(
            ids, all,
            "replica {i}: every acknowledged item, nothing else"
        );
    }
    assert_eq!(lists[0], lists[1], "both replicas, one order");
    eprintln!(
        "{} items; {} refusals while the database was down; {duplicates} retries found already stored",
        all.len(),
        refusals.values().sum::<u32>()
    );
}

/// `scripts/demo --replicas 2 --once` on the binaries under test: a
/// throwaway PostgreSQL, two replicas, an agent on each, an item published
/// at one delivered at the other, fail-over when that one stops; the
/// cluster's temp dir is gone afterwards.
#[test]
fn the_replicas_demo_runs_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = demo_ports();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let demo_dir = dir.path().join("demo");
    let before = pg_temp_dirs();
    let out = Command::new(root.join("scripts/demo"))
        .args(["--replicas", "2", "--once"])
        .env("DEMO_BIN", isac_e2e::bin_dir())
        .env("DEMO_DIR", &demo_dir)
        .env("DEMO_PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("==> demo complete"), "{stdout}");
    assert_eq!(stdout.matches("/healthz: serving").count(), 2, "{stdout}");
    assert!(stdout.contains("pkg:npm/evil-pkg@1.0.0"), "{stdout}");
    let held = jsonl_ids(&demo_dir.join("bob.jsonl"));
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held.values().all(|&c| c == 1), "{held:?}");
    let bob_log = std::fs::read_to_string(demo_dir.join("bob.log")).unwrap();
    assert!(
        bob_log.contains(&format!(
            "https://localhost:{} is down; failing over to https://localhost:{port}",
            port + 2
        )),
        "{bob_log}"
    );
    // Both replicas sign key directories; the one failed over to never
    // offers an older version than the agent holds.
    assert!(!bob_log.contains("rollback"), "{bob_log}");
    assert!(
        stdout.contains(&format!("hub:        https://localhost:{port}")),
        "{stdout}"
    );
    assert_eq!(pg_temp_dirs(), before, "the demo's cluster was not removed");
    // A bad count is a usage error.
    let out = Command::new(root.join("scripts/demo"))
        .args(["--replicas", "1"])
        .env("DEMO_BIN", isac_e2e::bin_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("N is 2 to 9"));
}

/// A base port for the demo whose ports (gRPC and TAXII per replica,
/// /healthz, PostgreSQL) are all free now: below the ephemeral range, so
/// that the connections around us do not take them meanwhile.
fn demo_ports() -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    for attempt in 0..200u32 {
        let base = 20_000 + ((seed.wrapping_add(attempt * 7_919)) % 10_000) as u16;
        let free = [0, 1, 2, 3, 50, 51, 100]
            .iter()
            .all(|off| std::net::TcpListener::bind(("127.0.0.1", base + off)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free ports for the demo in 20000-30100");
}

fn pg_temp_dirs() -> BTreeSet<String> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("isac-demo-pg-"))
        .collect()
}
