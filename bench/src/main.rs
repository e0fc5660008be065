//! `isac-bench`: starts a real hub process (mTLS on loopback, SQLite on
//! disk), enrolls members through the real enrollment path, and measures:
//! publish throughput (single and batch), fan-out latency, backlog catch-up,
//! hub memory per idle subscriber and under load, restart time, and this
//! machine's own OpenSSL Ed25519 verify rate so figures compare across
//! machines; and, without the hub, an SBOM checked against held
//! indicators and the watch's re-evaluation per new indicator
//! (`exposure.rs`). Bounded in count and time; prints a table, or JSON
//! (`--json`).

mod exposure;
mod scrub;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use isac_core::{Envelope, SigningKey, PAYLOAD_TYPE_STATEMENT_V1};
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::{Agent, StateDir};
use serde_json::json;
use tonic::transport::Channel;

#[derive(Parser, Clone)]
#[command(name = "isac-bench", about = "Benchmark a real ISAC hub on loopback")]
struct Args {
    /// A run that finishes in under a minute.
    #[arg(long)]
    quick: bool,
    /// A run of a few seconds that only checks the harness works (CI).
    #[arg(long)]
    smoke: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Only the exposure figures (SBOM check, watch): no hub.
    #[arg(long)]
    exposure_only: bool,
    /// Publishing members.
    #[arg(long)]
    publishers: Option<usize>,
    /// Statements published in the throughput phase (each mode).
    #[arg(long)]
    items: Option<usize>,
    /// Statements per PublishBatch call.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Streaming subscribers in the fan-out phase.
    #[arg(long)]
    subscribers: Option<usize>,
    /// Publish rate in the fan-out phase (items/s).
    #[arg(long)]
    rate: Option<u64>,
    /// Length of the fan-out phase (s).
    #[arg(long)]
    fanout_secs: Option<u64>,
    /// Idle subscribers for the memory measurement.
    #[arg(long)]
    idle: Option<usize>,
    /// Backlog size for the catch-up phase (published in batches first).
    #[arg(long)]
    catchup_items: Option<usize>,
    /// Run the hub on this PostgreSQL database (`postgres://USER@HOST:PORT/DB`,
    /// empty, password from PGPASSWORD) instead of embedded SQLite.
    #[arg(long)]
    store: Option<String>,
}

struct Plan {
    publishers: usize,
    items: usize,
    batch: usize,
    subscribers: usize,
    verifying_subscribers: usize,
    rate: u64,
    fanout_secs: u64,
    idle: usize,
    catchup_items: usize,
    /// Publishes timed until a checkpoint covers them.
    checkpoint_samples: usize,
    /// How long inclusion proofs are requested.
    proof_secs: f64,
}

impl Plan {
    fn from(a: &Args) -> Plan {
        let (publishers, items, subscribers, rate, fanout_secs, idle, catchup) = if a.smoke {
            (2, 400, 5, 100, 1, 20, 1_000)
        } else if a.quick {
            (4, 20_000, 100, 1_000, 5, 1_000, 60_000)
        } else {
            (4, 100_000, 100, 1_000, 15, 1_000, 1_000_000)
        };
        Plan {
            publishers: a.publishers.unwrap_or(publishers),
            items: a.items.unwrap_or(items),
            batch: a.batch.clamp(1, 1000),
            subscribers: a.subscribers.unwrap_or(subscribers),
            verifying_subscribers: 4,
            rate: a.rate.unwrap_or(rate),
            fanout_secs: a.fanout_secs.unwrap_or(fanout_secs),
            idle: a.idle.unwrap_or(idle),
            catchup_items: a.catchup_items.unwrap_or(catchup),
            checkpoint_samples: if a.smoke { 3 } else { 20 },
            proof_secs: if a.smoke { 0.5 } else { 3.0 },
        }
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

// === the hub process ===

struct HubProc {
    child: Child,
    addr: String,
}

fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .unwrap_or_default()
}

fn start_hub(data: &Path, listen: &str, store: Option<&str>) -> (HubProc, Duration) {
    start_hub_with(data, listen, store, &[])
}

/// [`start_hub`] with extra `ISAC_HUB_*` settings.
fn start_hub_with(
    data: &Path,
    listen: &str,
    store: Option<&str>,
    env: &[(&str, String)],
) -> (HubProc, Duration) {
    let started = Instant::now();
    let mut child = Command::new(bin_dir().join("hub"));
    if let Some(store) = store {
        child.args(["--store", store]);
    }
    let mut child = child
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", listen, "--taxii-listen", "127.0.0.1:0"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        // Every simulated member connects from 127.0.0.1, with up to a
        // thousand idle streams on their own connections at once.
        .env("ISAC_HUB_MAX_CONNECTIONS_PER_SOURCE", "4096")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (build with `cargo build --release --bins`)",
                bin_dir().join("hub").display()
            )
        });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("hub exited before listening")
            .expect("read");
        if let Some(rest) = line.strip_prefix("hub listening on ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };
    let took = started.elapsed();
    std::thread::spawn(move || for _ in lines {});
    (HubProc { child, addr }, took)
}

fn stop_hub(mut h: HubProc) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(h.child.id().to_string())
        .status();
    let _ = h.child.wait();
}

// === members ===

async fn enroll(
    config: &hub::config::HubConfig,
    store: &hub::store::Store,
    fp: &str,
    url: &str,
    org: &str,
    dir: &Path,
) -> Agent {
    let ctx = hub::grpc::admin::AdminContext::local(
        store,
        config,
        fp,
        "local:bench".into(),
        hub::app::Clock::system(),
    );
    let token = ctx
        .add_member(pb::AddMemberRequest {
            org_id: org.into(),
            name: String::new(),
            role: "member".into(),
            token_ttl_secs: 600,
        })
        .await
        .expect("add member")
        .token;
    let state = StateDir::new(dir.join(org));
    member_agent::enroll::enroll(
        &state,
        member_agent::enroll::EnrollOptions {
            hub_url: url,
            token: &token,
            agent_name: "bench",
            force: false,
        },
    )
    .await
    .expect("enroll");
    Agent::open(&state).expect("open agent")
}

/// A fresh mTLS connection for `agent` (not the agent's cached one), with
/// the agent's connector: built once per agent, not per connection.
async fn new_channel(agent: &Agent) -> Channel {
    let connector: isac_client::Connector = agent.connector().expect("connector");
    connector
        .connect(&agent.loaded.identity.hub_url)
        .await
        .expect("connect")
}

fn signed(agent: &Agent, n: usize, note: &str) -> pb::PublishRequest {
    let draft = IndicatorDraft {
        purl: Some(format!("pkg:npm/bench-{}-{n}@1.0.0", agent.org_id())),
        tlp: Some("green".into()),
        title: Some(format!("bench item {n}")),
        description: Some(note.to_owned()),
        severity: Some("high".into()),
        ..Default::default()
    };
    let s = draft
        .into_statement(
            agent.org_id(),
            isac_core::time::format_rfc3339(member_agent::now()),
        )
        .expect("statement");
    let env = agent
        .loaded
        .signing_key
        .sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, s.canonical_bytes())
        .expect("sign");
    pb::PublishRequest::signed(env, &[])
}

// === phases ===

fn openssl_verify_rate(threads: usize) -> f64 {
    let key = SigningKey::generate().expect("key");
    let vk = key.verifying_key().expect("vk");
    let msg = vec![7u8; 700];
    let sig = key.sign_raw(&msg).expect("sign");
    let per_thread = 4000;
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    assert!(vk.verify_raw(&msg, &sig));
                }
            });
        }
    });
    (threads * per_thread) as f64 / started.elapsed().as_secs_f64()
}

/// Single-item publishes, `inflight` concurrent calls per publisher.
async fn publish_single(publishers: &[Agent], per: usize, inflight: usize) -> f64 {
    let mut work = Vec::new();
    for (p, agent) in publishers.iter().enumerate() {
        let reqs: Vec<pb::PublishRequest> = (0..per)
            .map(|n| signed(agent, n + p * 10_000_000, "single"))
            .collect();
        work.push((new_channel(agent).await, reqs));
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (channel, reqs) in work {
        let queue = Arc::new(Mutex::new(reqs));
        for _ in 0..inflight {
            let (channel, queue) = (channel.clone(), queue.clone());
            tasks.push(tokio::spawn(async move {
                let mut client = pb::publisher_client::PublisherClient::new(channel);
                loop {
                    let next = queue.lock().expect("queue").pop();
                    let Some(req) = next else { break };
                    client.publish(req).await.expect("publish");
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("task");
    }
    (publishers.len() * per) as f64 / started.elapsed().as_secs_f64()
}

/// PublishBatch calls of `batch`, two in flight per publisher.
async fn publish_batched(publishers: &[Agent], per: usize, batch: usize, offset: usize) -> f64 {
    let mut work = Vec::new();
    for (p, agent) in publishers.iter().enumerate() {
        let reqs: Vec<pb::PublishRequest> = (0..per)
            .map(|n| signed(agent, offset + n + p * 10_000_000, "batch"))
            .collect();
        let batches: Vec<Vec<pb::PublishRequest>> =
            reqs.chunks(batch).map(|c| c.to_vec()).collect();
        work.push((new_channel(agent).await, batches));
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (channel, batches) in work {
        let queue = Arc::new(Mutex::new(batches));
        for _ in 0..2 {
            let (channel, queue) = (channel.clone(), queue.clone());
            tasks.push(tokio::spawn(async move {
                let mut client = pb::publisher_client::PublisherClient::new(channel)
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20);
                loop {
                    let next = queue.lock().expect("queue").pop();
                    let Some(items) = next else { break };
                    let r = client
                        .publish_batch(pb::PublishBatchRequest { items })
                        .await
                        .expect("publish batch")
                        .into_inner();
                    assert!(
                        r.results.iter().all(|x| x.code == 0),
                        "a batch item was refused: {:?}",
                        r.results.iter().find(|x| x.code != 0)
                    );
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("task");
    }
    (publishers.len() * per) as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Publish at `rate`/s for `secs` while `subscribers` streams receive; the
/// first `verifying` of them verify every signature end to end (the rest
/// decode only, as verifying 100 x 1,000/s would exceed two cores).
async fn fanout(
    publisher: &Agent,
    subscriber: &Agent,
    plan: &Plan,
    cursor: Vec<u8>,
) -> (f64, f64, f64, usize) {
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let directory = {
        let channel = subscriber.channel().await.expect("channel");
        subscriber
            .refresh_directory(&channel)
            .await
            .expect("directory");
        Arc::new(subscriber.directory().expect("directory"))
    };
    let expected = (plan.rate * plan.fanout_secs) as usize;
    let mut handles = Vec::new();
    let ready = Arc::new(AtomicU64::new(0));
    for s in 0..plan.subscribers {
        let channel = new_channel(subscriber).await;
        let (latencies, ready, directory) = (latencies.clone(), ready.clone(), directory.clone());
        let cursor = cursor.clone();
        let verify = s < plan.verifying_subscribers;
        handles.push(tokio::spawn(async move {
            let mut stream = pb::subscriber_client::SubscriberClient::new(channel)
                .subscribe(pb::SubscribeRequest {
                    after_sequence: 0,
                    follow: true,
                    filter: None,
                    include_expired: false,
                    cursor: cursor.clone(),
                })
                .await
                .expect("subscribe")
                .into_inner();
            let mut got = 0;
            let mut mine = Vec::with_capacity(expected);
            while let Ok(Some(msg)) = stream.message().await {
                match msg.event {
                    Some(pb::subscribe_response::Event::CaughtUp(_)) => {
                        ready.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(pb::subscribe_response::Event::Item(d)) => {
                        let env = d.envelope.expect("envelope");
                        if verify {
                            let e = Envelope::from(env.clone());
                            isac_core::verify_envelope(&e, |kid| directory.record(kid))
                                .expect("verifies");
                        }
                        let text = String::from_utf8_lossy(&env.payload);
                        if let Some(t) = text
                            .split("sent_us=")
                            .nth(1)
                            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                            .and_then(|n| n.parse::<u64>().ok())
                        {
                            mine.push(now_us().saturating_sub(t) as f64 / 1000.0);
                        }
                        got += 1;
                        if got >= expected {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            latencies.lock().expect("latencies").extend(mine);
        }));
    }
    // Each stream starts at the head, so it is caught up at once.
    while (ready.load(Ordering::SeqCst) as usize) < plan.subscribers {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let channel = new_channel(publisher).await;
    let mut client = pb::publisher_client::PublisherClient::new(channel);
    let interval = Duration::from_secs_f64(1.0 / plan.rate as f64);
    let started = Instant::now();
    for n in 0..expected {
        let due = started + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let req = signed(publisher, 50_000_000 + n, &format!("sent_us={}", now_us()));
        client.publish(req).await.expect("publish");
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        for h in handles {
            let _ = h.await;
        }
    })
    .await;
    let mut all = latencies.lock().expect("latencies").clone();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    (
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0.0),
        all.len(),
    )
}

/// A new subscriber reads the whole backlog (decoding every delivery).
async fn catchup(subscriber: &Agent) -> (f64, usize) {
    let channel = new_channel(subscriber).await;
    let mut stream = pb::subscriber_client::SubscriberClient::new(channel)
        .max_decoding_message_size(16 << 20)
        .subscribe(pb::SubscribeRequest {
            after_sequence: 0,
            follow: false,
            filter: None,
            include_expired: false,
            cursor: Vec::new(),
        })
        .await
        .expect("subscribe")
        .into_inner();
    let started = Instant::now();
    let mut n = 0usize;
    while let Some(msg) = stream.message().await.expect("stream") {
        if let Some(pb::subscribe_response::Event::Item(d)) = msg.event {
            assert!(d.envelope.is_some());
            n += 1;
        }
    }
    (n as f64 / started.elapsed().as_secs_f64(), n)
}

/// Opens `count` idle live streams (each its own TLS connection).
async fn idle_streams(
    agent: &Agent,
    count: usize,
    cursor: Vec<u8>,
) -> Vec<tonic::Streaming<pb::SubscribeResponse>> {
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let channel = new_channel(agent).await;
        let mut s = pb::subscriber_client::SubscriberClient::new(channel)
            .subscribe(pb::SubscribeRequest {
                after_sequence: 0,
                follow: true,
                filter: None,
                include_expired: false,
                cursor: cursor.clone(),
            })
            .await
            .expect("subscribe")
            .into_inner();
        let _ = s.message().await; // caught_up
        streams.push(s);
    }
    streams
}

/// From a publish acknowledgement to a checkpoint covering it, as a member
/// sees it (GetCheckpoint polled every 5 ms): bounded by the hub's
/// `checkpoint_interval_ms`. Returns (p50 ms, p99 ms, samples).
async fn checkpoint_latency(agent: &Agent, samples: usize) -> (f64, f64, usize) {
    let channel = new_channel(agent).await;
    let mut publisher = pb::publisher_client::PublisherClient::new(channel.clone());
    let mut log = pb::log_client::LogClient::new(channel);
    let mut ms = Vec::with_capacity(samples);
    for n in 0..samples {
        publisher
            .publish(signed(agent, 40_000_000 + n, "checkpoint latency"))
            .await
            .expect("publish");
        let acked = Instant::now();
        // Every leaf before the ack is in the next checkpoint of at least
        // the size seen now plus one.
        let target = log
            .get_checkpoint(pb::GetCheckpointRequest {})
            .await
            .map(|c| c.into_inner().tree_size)
            .unwrap_or(0)
            + 1;
        loop {
            let size = log
                .get_checkpoint(pb::GetCheckpointRequest {})
                .await
                .map(|c| c.into_inner().tree_size)
                .unwrap_or(0);
            if size >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ms.push(acked.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99), ms.len())
}

/// Inclusion proofs served per second at the latest checkpoint, 32 in
/// flight on one connection, for `secs`.
async fn proofs_per_s(agent: &Agent, secs: f64) -> f64 {
    let channel = new_channel(agent).await;
    let size = pb::log_client::LogClient::new(channel.clone())
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .expect("checkpoint")
        .into_inner()
        .tree_size;
    let served = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..32u64 {
        let mut log = pb::log_client::LogClient::new(channel.clone());
        let served = served.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < until {
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                log.get_inclusion_proof(pb::GetInclusionProofRequest {
                    leaf_index: i % size.max(1),
                    tree_size: size,
                })
                .await
                .expect("proof");
                served.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    served.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// What an agent spends per ingested item on the log, in µs: the leaf hash
/// of a 1 KiB envelope and its RFC 9162 inclusion proof checked against
/// the checkpoint's root (`isac_core::tlog::merkle`, as `member_agent::tlog`
/// does), in a tree of `leaves` leaves. Proofs are made beforehand: only
/// the verification is timed.
fn agent_verify_us_per_item(leaves: u64) -> (f64, usize) {
    use isac_core::tlog::merkle::{self, Hash, HashReader, NodeId, TreeBuilder};
    struct Nodes(std::collections::HashMap<NodeId, Hash>);
    impl HashReader for Nodes {
        type Error = std::convert::Infallible;
        fn read_hashes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
            Ok(ids.iter().map(|i| self.0[i]).collect())
        }
    }
    let leaf = |i: u64| {
        let mut l = vec![b'x'; 1024];
        l[..8].copy_from_slice(&i.to_le_bytes());
        l
    };
    let mut tree = TreeBuilder::new();
    let mut nodes = Nodes(Default::default());
    for i in 0..leaves {
        for (id, h) in tree.append(merkle::leaf_hash(&leaf(i))).expect("append") {
            nodes.0.insert(id, h);
        }
    }
    let root = tree.root();
    // At most 20k leaves spread over the whole tree (a prime stride).
    let picks: Vec<u64> = (0..leaves.min(20_000))
        .map(|k| (k * 7919) % leaves)
        .collect();
    let work: Vec<(u64, Vec<u8>, Vec<Hash>)> = picks
        .iter()
        .map(|&i| {
            (
                i,
                leaf(i),
                merkle::prove_inclusion(&nodes, i, leaves).expect("proof"),
            )
        })
        .collect();
    let proof_len = work.first().map_or(0, |w| w.2.len());
    let started = Instant::now();
    for (i, bytes, proof) in &work {
        merkle::verify_inclusion(*i, leaves, &merkle::leaf_hash(bytes), proof, &root)
            .expect("verifies");
    }
    (
        started.elapsed().as_secs_f64() * 1e6 / work.len().max(1) as f64,
        proof_len,
    )
}

/// Inclusion proofs an agent fetches per second with `GetInclusionProofs`
/// (1024 per call, one call at a time, as `sync` does), for `secs`.
async fn batched_proofs_per_s(agent: &Agent, secs: f64) -> f64 {
    let channel = new_channel(agent).await;
    let mut log = pb::log_client::LogClient::new(channel);
    let size = log
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .expect("checkpoint")
        .into_inner()
        .tree_size
        .max(1);
    let started = Instant::now();
    let (mut served, mut next) = (0u64, 0u64);
    while started.elapsed().as_secs_f64() < secs {
        let leaf_indices: Vec<u64> = (0..1024).map(|k| (next + k) % size).collect();
        next += 1024;
        let got = log
            .get_inclusion_proofs(pb::GetInclusionProofsRequest {
                tree_size: size,
                leaf_indices,
            })
            .await
            .expect("proofs")
            .into_inner();
        served += got.proofs.len() as u64;
    }
    served as f64 / started.elapsed().as_secs_f64()
}

// === the log's cost on publishing ===

/// One hub set-up of the log comparison.
#[derive(Clone, Copy, PartialEq)]
enum LogSetup {
    /// `checkpoint_interval_ms = 60000`: leaves are still appended in each
    /// publish transaction (that is never off), but no checkpoint is signed
    /// during the measurement.
    CheckpointsIdle,
    /// The defaults: a checkpoint every second while items arrive.
    Checkpoints,
    /// The defaults plus one `member-agent witness serve` cosigning each.
    Witnessed,
}

/// A `member-agent witness serve` for the bench: (process, URL, vkey).
fn start_witness(state: &Path, log_vkey: &str) -> (Child, String, String) {
    let mut child = Command::new(bin_dir().join("member-agent"))
        .arg("--state-dir")
        .arg(state)
        .args([
            "witness",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log",
            log_vkey,
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start member-agent witness serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = lines
        .next()
        .expect("witness exited before listening")
        .expect("read");
    let rest = line
        .strip_prefix("witness listening on ")
        .expect("witness listening line");
    let (url, key) = rest.split_once(" (key ").expect("witness listening line");
    std::thread::spawn(move || for _ in lines {});
    (child, url.to_owned(), key.trim_end_matches(')').to_owned())
}

/// Durable verified publish (PublishBatch, every signature verified, acked
/// after commit) on a fresh hub set up as `setup`; with a witness, also
/// the publish-ack-to-cosigned-checkpoint latency (p50, p99 ms).
fn log_setup_run(
    runtime: &tokio::runtime::Runtime,
    plan: &Plan,
    dir: &Path,
    setup: LogSetup,
) -> (f64, Option<(f64, f64)>) {
    let name = match setup {
        LogSetup::CheckpointsIdle => "log-idle",
        LogSetup::Checkpoints => "log-on",
        LogSetup::Witnessed => "log-witnessed",
    };
    let base = dir.join(name);
    let data = base.join("hub-data");
    let mut env = vec![];
    let mut witness = None;
    match setup {
        LogSetup::CheckpointsIdle => {
            env.push(("ISAC_HUB_CHECKPOINT_INTERVAL_MS", "60000".to_owned()))
        }
        LogSetup::Checkpoints => {}
        LogSetup::Witnessed => {
            let out = Command::new(bin_dir().join("hub"))
                .arg("--data-dir")
                .arg(&data)
                .args(["log", "key"])
                .output()
                .expect("hub log key");
            let log_vkey = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let (child, url, vkey) = start_witness(&base.join("witness"), &log_vkey);
            env.push((
                "ISAC_HUB_LOG",
                format!("{{ witnesses = [{{ url = \"{url}\", vkey = \"{vkey}\" }}] }}"),
            ));
            witness = Some(child);
        }
    }
    let (hub, _) = start_hub_with(&data, "127.0.0.1:0", None, &env);
    let url = format!(
        "https://localhost:{}",
        hub.addr.rsplit(':').next().unwrap_or("0")
    );
    let result = runtime.block_on(async {
        let config = hub::config::HubConfig::load(&data, |_| None).expect("config");
        let (material, _) = hub::prepare(&config).expect("prepare");
        let store = hub::datadir::open_store(&data).expect("store");
        let mut publishers = Vec::new();
        for p in 0..plan.publishers {
            publishers.push(
                enroll(
                    &config,
                    &store,
                    &material.ca_fingerprint,
                    &url,
                    &format!("pub-{p}"),
                    &base,
                )
                .await,
            );
        }
        let per = (plan.items / plan.publishers).max(1);
        let per_s = publish_batched(&publishers, per, plan.batch, 50_000_000).await;
        let cosigned = if setup == LogSetup::Witnessed {
            let (p50, p99, _) = checkpoint_latency(&publishers[0], plan.checkpoint_samples).await;
            Some((p50, p99))
        } else {
            None
        };
        store.close();
        (per_s, cosigned)
    });
    stop_hub(hub);
    if let Some(mut w) = witness {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(w.id().to_string())
            .status();
        let _ = w.wait();
    }
    result
}

fn main() {
    let args = Args::parse();
    let plan = Plan::from(&args);
    // Pure CPU, before the hub starts, so neither disturbs the other.
    let mut exposure = exposure::measure(&exposure::Sizes::new(args.smoke));
    scrub::add_figures(&mut exposure, args.smoke);
    if args.exposure_only {
        if args.json {
            println!("{exposure}");
        } else {
            for (k, v) in exposure.as_object().into_iter().flatten() {
                println!("{k:<52} {v:>16}");
            }
        }
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("hub-data");
    let (hub, _) = start_hub(&data, "127.0.0.1:0", args.store.as_deref());
    let url = format!(
        "https://localhost:{}",
        hub.addr.rsplit(':').next().unwrap_or("0")
    );
    let pid = hub.child.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    let verify_1 = openssl_verify_rate(1);
    let verify_all = openssl_verify_rate(cores);

    let results = runtime.block_on(async {
        let mut config = hub::config::HubConfig::load(&data, |k| {
            matches!(k, "PGPASSWORD" | "ISAC_STORE_PASSWORD")
                .then(|| std::env::var(k).ok())
                .flatten()
        })
        .expect("config");
        config.store = args.store.clone().unwrap_or_default();
        let (material, _) = hub::prepare(&config).expect("prepare");
        let store = hub::open_configured_store(&config).await.expect("store");
        let fp = material.ca_fingerprint.clone();
        let mut publishers = Vec::new();
        for p in 0..plan.publishers {
            publishers
                .push(enroll(&config, &store, &fp, &url, &format!("pub-{p}"), dir.path()).await);
        }
        let subscriber = enroll(&config, &store, &fp, &url, "sub-fanout", dir.path()).await;
        let idle_org = enroll(&config, &store, &fp, &url, "sub-idle", dir.path()).await;
        let rss_start = rss_kib(pid);

        // Idle memory: before and after opening the idle streams.
        let before_idle = rss_kib(pid);
        let head = store.head_from_db().await.expect("head");
        let at_head = |org: &str| {
            material
                .cursors
                .seal(hub::cursor::Purpose::Stream, org, head)
        };
        let idle = idle_streams(&idle_org, plan.idle, at_head("sub-idle")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_idle = rss_kib(pid);
        let idle_per_sub_kb =
            after_idle.saturating_sub(before_idle) as f64 / plan.idle.max(1) as f64;

        // Publishing to 1,000 live streams would measure fan-out, not publish.
        drop(idle);
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Publish throughput.
        let per = (plan.items / plan.publishers).max(1);
        let sampler = {
            let peak = Arc::new(AtomicU64::new(0));
            let p2 = peak.clone();
            let h = tokio::spawn(async move {
                loop {
                    p2.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            (peak, h)
        };
        let single_per_s = publish_single(&publishers, (per / 4).max(1), 32).await;
        let batch_per_s = publish_batched(&publishers, per, plan.batch, 20_000_000).await;
        let publish_rss = sampler.0.load(Ordering::Relaxed).max(rss_kib(pid));

        // Fan-out latency.
        let head = store.head_from_db().await.expect("head");
        let cursor = material
            .cursors
            .seal(hub::cursor::Purpose::Stream, "sub-fanout", head);
        let (p50, p99, max, samples) = fanout(&publishers[0], &subscriber, &plan, cursor).await;
        let load_rss = sampler
            .0
            .load(Ordering::Relaxed)
            .max(rss_kib(pid))
            .max(publish_rss);
        sampler.1.abort();

        // Catch-up over a backlog of the requested size.
        let head = store.head_from_db().await.expect("head") as usize;
        if head < plan.catchup_items {
            let missing = plan.catchup_items - head;
            publish_batched(
                &publishers,
                missing.div_ceil(plan.publishers),
                plan.batch,
                30_000_000,
            )
            .await;
        }
        let (catchup_per_s, backlog) = catchup(&subscriber).await;
        let (checkpoint_p50, checkpoint_p99, _) =
            checkpoint_latency(&publishers[0], plan.checkpoint_samples).await;
        let proofs = proofs_per_s(&publishers[0], plan.proof_secs).await;
        let batched = batched_proofs_per_s(&publishers[0], plan.proof_secs).await;
        store.close();
        (
            (checkpoint_p50, checkpoint_p99, proofs, batched),
            rss_start,
            idle_per_sub_kb,
            after_idle,
            single_per_s,
            batch_per_s,
            p50,
            p99,
            max,
            samples,
            load_rss,
            catchup_per_s,
            backlog,
        )
    });
    let (
        (checkpoint_p50, checkpoint_p99, proofs, batched_proofs),
        rss_start,
        idle_per_sub_kb,
        idle_rss,
        single_per_s,
        batch_per_s,
        p50,
        p99,
        max,
        samples,
        load_rss,
        catchup_per_s,
        backlog,
    ) = results;

    let verify_leaves: u64 = if args.smoke { 4_096 } else { 1 << 18 };
    let (agent_verify_us, verify_proof_len) = agent_verify_us_per_item(verify_leaves);

    // Restart time with the whole backlog on disk.
    stop_hub(hub);
    let (hub, start_time) = start_hub(&data, "127.0.0.1:0", args.store.as_deref());
    stop_hub(hub);

    // The log's cost: the same publish on fresh hubs, the three set-ups in
    // turn, twice (once in --smoke), each figure the better of its runs so
    // that drift on a shared machine does not pass for a cost.
    let rounds = if args.smoke { 1 } else { 2 };
    let (mut log_idle_per_s, mut log_on_per_s, mut log_witnessed_per_s) = (0.0f64, 0.0f64, 0.0f64);
    let mut cosigned = None;
    for round in 0..rounds {
        let round_dir = dir.path().join(format!("log-round-{round}"));
        let (idle, _) = log_setup_run(&runtime, &plan, &round_dir, LogSetup::CheckpointsIdle);
        let (on, _) = log_setup_run(&runtime, &plan, &round_dir, LogSetup::Checkpoints);
        let (witnessed, c) = log_setup_run(&runtime, &plan, &round_dir, LogSetup::Witnessed);
        log_idle_per_s = log_idle_per_s.max(idle);
        log_on_per_s = log_on_per_s.max(on);
        log_witnessed_per_s = log_witnessed_per_s.max(witnessed);
        cosigned = cosigned.or(c);
    }
    let (cosigned_p50, cosigned_p99) = cosigned.unwrap_or((0.0, 0.0));

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let report = json!({
        "machine": {"cores": cores, "cpu": cpu},
        "store": if args.store.is_some() { "postgres" } else { "sqlite" },
        "plan": {
            "publishers": plan.publishers, "items": plan.items, "batch": plan.batch,
            "subscribers": plan.subscribers, "verifying_subscribers": plan.verifying_subscribers,
            "rate": plan.rate, "fanout_secs": plan.fanout_secs, "idle": plan.idle, "catchup_items": plan.catchup_items,
        },
        "openssl_verify_per_s_one_core": verify_1.round(),
        "openssl_verify_per_s": verify_all.round(),
        "publish_single_per_s": single_per_s.round(),
        "publish_per_s": batch_per_s.round(),
        "publish_to_verify_ratio": (batch_per_s / verify_all * 1000.0).round() / 1000.0,
        "fanout_p50_ms": (p50 * 100.0).round() / 100.0,
        "fanout_p99_ms": (p99 * 100.0).round() / 100.0,
        "fanout_max_ms": (max * 100.0).round() / 100.0,
        "fanout_samples": samples,
        "catchup_per_s": catchup_per_s.round(),
        "catchup_backlog": backlog,
        "idle_rss_per_subscriber_kb": (idle_per_sub_kb * 10.0).round() / 10.0,
        "hub_rss_start_kb": rss_start,
        "hub_rss_idle_subscribers_kb": idle_rss,
        "hub_rss_under_load_kb": load_rss,
        "hub_start_ms": start_time.as_millis(),
        "checkpoint_after_ack_p50_ms": (checkpoint_p50 * 100.0).round() / 100.0,
        "checkpoint_after_ack_p99_ms": (checkpoint_p99 * 100.0).round() / 100.0,
        "inclusion_proofs_per_s": proofs.round(),
        "agent_batched_proofs_per_s": batched_proofs.round(),
        "agent_log_verify_us_per_item": (agent_verify_us * 100.0).round() / 100.0,
        "agent_log_verify_tree_size": verify_leaves,
        "publish_per_s_checkpoints_idle": log_idle_per_s.round(),
        "publish_per_s_checkpoints_on": log_on_per_s.round(),
        "publish_per_s_witnessed": log_witnessed_per_s.round(),
        "cosigned_checkpoint_after_ack_p50_ms": (cosigned_p50 * 100.0).round() / 100.0,
        "cosigned_checkpoint_after_ack_p99_ms": (cosigned_p99 * 100.0).round() / 100.0,
    });
    let mut report = report;
    if let (Some(all), Some(more)) = (report.as_object_mut(), exposure.as_object()) {
        all.extend(more.clone());
    }
    if args.json {
        println!("{report}");
        return;
    }
    println!("isac-bench on {cores} cores ({cpu})");
    let rows: Vec<(String, String)> = vec![
        (
            "OpenSSL Ed25519 verify, 1 core".into(),
            format!("{verify_1:.0}/s"),
        ),
        (
            "OpenSSL Ed25519 verify, all cores".into(),
            format!("{verify_all:.0}/s"),
        ),
        (
            "publish, single-item (32 in flight/publisher)".into(),
            format!("{single_per_s:.0}/s"),
        ),
        (
            format!(
                "publish, batches of {} ({} publishers)",
                plan.batch, plan.publishers
            ),
            format!("{batch_per_s:.0}/s"),
        ),
        (
            "publish / verify ceiling".into(),
            format!("{:.2}", batch_per_s / verify_all),
        ),
        (
            format!(
                "fan-out at {}/s to {} subscribers: p50",
                plan.rate, plan.subscribers
            ),
            format!("{p50:.2} ms"),
        ),
        ("fan-out p99".into(), format!("{p99:.2} ms")),
        (
            "fan-out max".into(),
            format!("{max:.2} ms ({samples} receipts)"),
        ),
        (
            format!("catch-up of {backlog} items"),
            format!("{catchup_per_s:.0}/s"),
        ),
        (
            format!("hub RSS per idle subscriber ({})", plan.idle),
            format!("{idle_per_sub_kb:.1} KiB"),
        ),
        (
            "hub RSS under load".into(),
            format!("{} MiB", load_rss / 1024),
        ),
        (
            format!("hub start with {backlog} items"),
            format!("{} ms", start_time.as_millis()),
        ),
        (
            "log: checkpoint covering an ack, p50".into(),
            format!("{checkpoint_p50:.1} ms"),
        ),
        (
            "log: checkpoint covering an ack, p99".into(),
            format!("{checkpoint_p99:.1} ms"),
        ),
        (
            "log: inclusion proofs served".into(),
            format!("{proofs:.0}/s"),
        ),
        (
            "log: proofs an agent fetches (1024 per call)".into(),
            format!("{batched_proofs:.0}/s"),
        ),
        (
            format!(
                "log: agent verification per item ({verify_leaves} leaves, {verify_proof_len} hashes)"
            ),
            format!("{agent_verify_us:.2} µs"),
        ),
        (
            "publish, log: no checkpoint signed (60 s)".into(),
            format!("{log_idle_per_s:.0}/s"),
        ),
        (
            "publish, log: checkpoint every 1 s".into(),
            format!("{log_on_per_s:.0}/s"),
        ),
        (
            "publish, log: checkpoints + 1 witness".into(),
            format!("{log_witnessed_per_s:.0}/s"),
        ),
        (
            "log: cosigned checkpoint covering an ack, p99".into(),
            format!("{cosigned_p99:.1} ms"),
        ),
    ];
    let e = |k: &str| exposure[k].clone();
    let rows = rows.into_iter().chain([
        (
            format!(
                "SBOM of {} components vs {} indicators",
                e("sbom_components"),
                e("sbom_held_indicators")
            ),
            format!("{} ms", e("sbom_check_ms")),
        ),
        (
            format!(
                "watch: per new indicator per application ({})",
                e("watch_applications")
            ),
            format!("{} µs", e("watch_per_indicator_per_application_us")),
        ),
    ]);
    for (k, v) in rows {
        println!("{k:<52} {v:>16}");
    }
}
