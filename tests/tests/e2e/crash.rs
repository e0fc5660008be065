//! Kill everything, at random, while thousands of items flow from several
//! publishers: every acknowledged item must reach every entitled agent's
//! sink exactly once. Real processes, SIGKILL.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use isac_e2e::{bin, enroll_with_cli, HubProcess};
use member_agent::draft::IndicatorDraft;
use member_agent::publish::publish_with_openings;
use member_agent::{Agent, StateDir};

const PUBLISHERS: usize = 3;
const ITEMS_PER_PUBLISHER: usize = 700;

/// xorshift: reproducible randomness; the seed is printed on failure.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn enroll(data: &Path, url: &str, org: &str, state: &Path) {
    enroll_with_cli(data, url, org, None, state);
}

fn start_subscriber(state: &Path, jsonl: &Path) -> Child {
    bin("member-agent")
        .arg("--state-dir")
        .arg(state)
        .args(["run", "--jsonl"])
        .arg(jsonl)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start subscriber")
}

fn sigkill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// (id, revision) -> how many times the sink holds it.
fn sink_counts(jsonl: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(jsonl).unwrap_or_default().lines() {
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => continue, // a torn last line, cut on the agent's next start
        };
        if v["action"] == "upsert" {
            *counts
                .entry(v["id"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn sigkill_of_agents_and_hub_loses_nothing_acknowledged_and_duplicates_nothing() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let listen = hub.addr.clone();
    let url = hub.url();
    let publishers: Vec<String> = (0..PUBLISHERS).map(|i| format!("pub-{i}")).collect();
    for p in &publishers {
        enroll(&data, &url, p, &dir.path().join(p));
    }
    // sub-x is named on some AMBER items; sub-y is not.
    let subs = ["sub-x", "sub-y"];
    for s in subs {
        enroll(&data, &url, s, &dir.path().join(s));
    }
    let sink_of = |s: &str| dir.path().join(format!("{s}.jsonl"));
    let children: Arc<Mutex<Vec<Child>>> = Arc::new(Mutex::new(
        subs.iter()
            .map(|s| start_subscriber(&dir.path().join(s), &sink_of(s)))
            .collect(),
    ));
    let hub = Arc::new(Mutex::new(Some(hub)));

    // Acknowledged ids: (id, amber?)
    let acked: Arc<Mutex<Vec<(String, bool)>>> = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for (n, p) in publishers.iter().enumerate() {
        let state = dir.path().join(p);
        let acked = acked.clone();
        tasks.push(runtime.spawn(async move {
            let agent = Agent::open(&StateDir::new(state)).unwrap();
            for i in 0..ITEMS_PER_PUBLISHER {
                let amber = i % 10 == 0;
                let draft = IndicatorDraft {
                    purl: Some(format!("pkg:npm/p{n}-item-{i}@1.0.0")),
                    tlp: Some(if amber { "amber" } else { "green" }.into()),
                    audience: amber.then(|| vec!["org:sub-x".to_string()]),
                    title: Some(format!("item {i} from publisher {n}")),
                    ..Default::default()
                };
                let prepared = draft
                    .into_prepared(
                        agent.org_id(),
                        isac_core::time::format_rfc3339(member_agent::now()),
                    )
                    .unwrap();
                let env = agent
                    .loaded
                    .signing_key
                    .sign_envelope(
                        isac_core::PAYLOAD_TYPE_STATEMENT_V1,
                        prepared.statement.canonical_bytes(),
                    )
                    .unwrap();
                // Re-send the same signed envelope until acknowledged: the hub
                // answers an already-stored one with its original sequence.
                loop {
                    match publish_with_openings(&agent, env.clone(), &prepared.openings).await {
                        Ok(p) => {
                            acked.lock().unwrap().push((p.id, amber));
                            break;
                        }
                        Err(_) => {
                            agent.reset_channel();
                            // A pause before retrying, while the hub restarts.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }));
    }

    // The killer: subscribers often, the hub a few times.
    let killer = {
        let children = children.clone();
        let hub = hub.clone();
        let done = done.clone();
        let dir: PathBuf = dir.path().to_owned();
        let data = data.clone();
        let listen = listen.clone();
        let acked_now = acked.clone();
        std::thread::spawn(move || {
            let mut rng = Rng(seed);
            let mut hub_kills = 0;
            while !done.load(Ordering::SeqCst) {
                // Random moments to kill at are the point of the test.
                std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
                // At least one hub kill mid-stream, whatever the dice say.
                let halfway =
                    acked_now.lock().unwrap().len() >= PUBLISHERS * ITEMS_PER_PUBLISHER / 2;
                if hub_kills < 3 && (rng.below(6) == 0 || (halfway && hub_kills == 0)) {
                    hub_kills += 1;
                    let mut h = hub.lock().unwrap();
                    if let Some(mut old) = h.take() {
                        sigkill(&mut old.child);
                    }
                    std::thread::sleep(Duration::from_millis(rng.below(300)));
                    *h = Some(HubProcess::start(&data, &listen));
                } else {
                    let k = rng.below(subs.len() as u64) as usize;
                    let mut c = children.lock().unwrap();
                    sigkill(&mut c[k]);
                    c[k] = start_subscriber(
                        &dir.join(subs[k]),
                        &dir.join(format!("{}.jsonl", subs[k])),
                    );
                }
            }
            hub_kills
        })
    };

    runtime.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    done.store(true, Ordering::SeqCst);
    let hub_kills = killer.join().unwrap();
    eprintln!("hub killed {hub_kills} times");

    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), PUBLISHERS * ITEMS_PER_PUBLISHER);
    let want_x: BTreeSet<String> = acked.iter().map(|(id, _)| id.clone()).collect();
    let want_y: BTreeSet<String> = acked
        .iter()
        .filter(|(_, amber)| !amber)
        .map(|(id, _)| id.clone())
        .collect();

    // Let the (restarted) agents catch up; bounded wait, not a timing assertion.
    for (s, want) in [("sub-x", &want_x), ("sub-y", &want_y)] {
        let mut counts = BTreeMap::new();
        for _ in 0..1200 {
            counts = sink_counts(&sink_of(s));
            if want.iter().all(|id| counts.contains_key(id)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let missing: Vec<&String> = want.iter().filter(|id| !counts.contains_key(*id)).collect();
        assert!(
            missing.is_empty(),
            "seed {seed}: {s} is missing {} acknowledged items, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        let dupes: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            dupes.is_empty(),
            "seed {seed}: {s} has duplicates in its sink: {dupes:?}"
        );
        let extra: Vec<&String> = counts.keys().filter(|id| !want.contains(*id)).collect();
        assert!(
            extra.is_empty(),
            "seed {seed}: {s} got items it is not entitled to: {extra:?}"
        );
    }
    for c in children.lock().unwrap().iter_mut() {
        sigkill(c);
    }
    let last = hub.lock().unwrap().take();
    if let Some(h) = last {
        h.terminate();
    }
}
