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
mod federation;
mod fleet;
mod scrub;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use isac_core::{SigningKey, PAYLOAD_TYPE_STATEMENT_V1};
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
    /// Only the subscriber fleets (fan-out, time to protect, and through
    /// two replicas with --replicas 2): no SBOM, scrub, publish, catch-up,
    /// log or federation figures. For iterating on the delivery path.
    #[arg(long)]
    fleets_only: bool,
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
    /// Fan-out subscribers that verify every signature (in the bench
    /// process, on the hub's cores: 4,000 Ed25519 checks/s at 1,000 items/s).
    #[arg(long, default_value_t = 4)]
    verifying_subscribers: usize,
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
    /// Subscribed agents in the time-to-protect phase (0 skips it); 1 % of
    /// them (at least one) are real agents that verify and store.
    #[arg(long)]
    agents: Option<usize>,
    /// Publish rate in the time-to-protect phase (items/s; default 1).
    #[arg(long)]
    agent_rate: Option<u64>,
    /// Length of the time-to-protect phase (s).
    #[arg(long)]
    agent_secs: Option<u64>,
    /// Subscription streams per member identity (the hub allows 2,048).
    #[arg(long, default_value_t = fleet::PER_MEMBER)]
    streams_per_member: usize,
    /// Hub replicas on one PostgreSQL database; 2 adds the figures through
    /// two. Without --store a throwaway PostgreSQL cluster is started.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    replicas: u8,
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
    agents: usize,
    agent_rate: u64,
    agent_secs: u64,
    streams_per_member: usize,
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
            verifying_subscribers: a.verifying_subscribers,
            rate: a.rate.unwrap_or(rate),
            fanout_secs: a.fanout_secs.unwrap_or(fanout_secs),
            idle: a.idle.unwrap_or(idle),
            catchup_items: a.catchup_items.unwrap_or(catchup),
            checkpoint_samples: if a.smoke { 3 } else { 20 },
            proof_secs: if a.smoke { 0.5 } else { 3.0 },
            agents: a.agents.unwrap_or(if a.smoke {
                20
            } else if a.quick {
                1_000
            } else {
                10_000
            }),
            // One item a second is far above an ISAC's sustained rate (it
            // is 86,400 a day) and leaves the hub time to drain each item
            // to every agent: what "time to protect" asks. `--agent-rate
            // 10` is the capacity run (100,000 deliveries/s at 10,000).
            agent_rate: a.agent_rate.unwrap_or(1),
            agent_secs: a.agent_secs.unwrap_or(if a.smoke {
                3
            } else if a.quick {
                30
            } else {
                60
            }),
            streams_per_member: a.streams_per_member.max(1),
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

/// The figures through two replicas (absent with one).
#[derive(Default)]
struct Replicated {
    publish_per_s: f64,
    /// The fan-out through one hub (its p50/p99 are also the `fanout_*` keys).
    fanout_one: Option<fleet::Figures>,
    fanout: Option<fleet::Figures>,
    agents: Option<fleet::Figures>,
}

// === the hub process ===

struct HubProc {
    child: Child,
    addr: String,
}

/// A hub never outlives the bench, also when a phase fails.
impl Drop for HubProc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl HubProc {
    fn url(&self) -> String {
        format!(
            "https://localhost:{}",
            self.addr.rsplit(':').next().unwrap_or("0")
        )
    }

    fn target(&self) -> fleet::Target {
        fleet::Target {
            url: self.url(),
            pid: self.child.id(),
        }
    }
}

/// Raises this process's open-file limit to its hard limit (children, the
/// hubs, inherit it): each subscriber holds a socket here and one in the
/// hub. Through util-linux `prlimit` (setrlimit for a pid), as the
/// workspace forbids `unsafe`.
fn raise_fd_limit() -> Option<u64> {
    let pid = std::process::id().to_string();
    let limit = |which: &str| {
        Command::new("prlimit")
            .args(["--pid", &pid, "--nofile", "--raw", "--noheadings"])
            .arg(format!("--output={which}"))
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    if let Some(hard) = limit("HARD") {
        let _ = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={hard}:")])
            .status();
    }
    limit("SOFT")
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
        // Every simulated member connects from 127.0.0.1, with thousands
        // of streams on their own connections at once.
        .env("ISAC_HUB_MAX_CONNECTIONS_PER_SOURCE", "30000")
        // Up to 10,000 agents, each its own connection and stream.
        .env("ISAC_HUB_MAX_CONNECTIONS_TOTAL", "30000")
        .env("ISAC_HUB_MAX_STREAMS_TOTAL", "30000")
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

fn stop_hub(h: HubProc) {
    drop(h);
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

/// [`new_channel`] to another replica.
async fn new_channel_at(agent: &Agent, url: &str) -> Channel {
    let connector: isac_client::Connector = agent.connector().expect("connector");
    connector.connect(url).await.expect("connect")
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
    publish_batched_at(publishers, per, batch, offset, &[]).await
}

/// [`publish_batched`], publisher `p` through `urls[p % len]` (replicas),
/// or each through its own hub when `urls` is empty.
async fn publish_batched_at(
    publishers: &[Agent],
    per: usize,
    batch: usize,
    offset: usize,
    urls: &[String],
) -> f64 {
    let mut work = Vec::new();
    for (p, agent) in publishers.iter().enumerate() {
        let reqs: Vec<pb::PublishRequest> = (0..per)
            .map(|n| signed(agent, offset + n + p * 10_000_000, "batch"))
            .collect();
        let batches: Vec<Vec<pb::PublishRequest>> =
            reqs.chunks(batch).map(|c| c.to_vec()).collect();
        let channel = match urls.get(p % urls.len().max(1)) {
            Some(url) => new_channel_at(agent, url).await,
            None => new_channel(agent).await,
        };
        work.push((channel, batches));
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
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .map(|c| c.into_inner().tree_size)
            .unwrap_or(0)
            + 1;
        loop {
            let size = log
                .get_checkpoint(pb::GetCheckpointRequest::default())
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
        .get_checkpoint(pb::GetCheckpointRequest::default())
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
        .get_checkpoint(pb::GetCheckpointRequest::default())
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
    let mut exposure = if args.fleets_only {
        json!({})
    } else {
        exposure::measure(&exposure::Sizes::new(args.smoke))
    };
    if !args.fleets_only {
        scrub::add_figures(&mut exposure, args.smoke);
    }
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
    let fd_limit = raise_fd_limit();
    let dir = tempfile::tempdir().expect("tempdir");
    // Replicas share one PostgreSQL database: the one given, or a
    // throwaway cluster (removed when the bench ends).
    let cluster = (args.replicas > 1 && args.store.is_none()).then(|| {
        let c = isac_e2e::pg::PgCluster::start();
        c.create_db("bench");
        c
    });
    let store_url = args
        .store
        .clone()
        .or_else(|| cluster.as_ref().map(|c| c.url("bench")));
    let data = dir.path().join("hub-data");
    let (hub, _) = start_hub(&data, "127.0.0.1:0", store_url.as_deref());
    let url = hub.url();
    let pid = hub.child.id();
    let mut replica: Option<HubProc> = None;
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
        config.store = store_url.clone().unwrap_or_default();
        let (material, _) = hub::prepare(&config).expect("prepare");
        let store = hub::open_configured_store(&config).await.expect("store");
        let fp = material.ca_fingerprint.clone();
        let mut publishers = Vec::new();
        for p in 0..plan.publishers {
            publishers
                .push(enroll(&config, &store, &fp, &url, &format!("pub-{p}"), dir.path()).await);
        }
        // Subscribers' members: enough that none holds more than
        // `streams_per_member` streams (the hub's limit is 2,048).
        let mut members = fleet::Members {
            agents: Vec::new(),
            dirs: Vec::new(),
        };
        let most = plan.subscribers.max(plan.agents);
        for m in 0..fleet::members_for(most, plan.streams_per_member) {
            let org = format!("sub-{m}");
            members
                .agents
                .push(enroll(&config, &store, &fp, &url, &org, dir.path()).await);
            members.dirs.push(dir.path().join(&org));
        }
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
        let idle_count = if args.fleets_only { 0 } else { plan.idle };
        let idle = idle_streams(&idle_org, idle_count, at_head("sub-idle")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_idle = rss_kib(pid);
        let idle_per_sub_kb =
            after_idle.saturating_sub(before_idle) as f64 / idle_count.max(1) as f64;

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
        let (single_per_s, batch_per_s) = if args.fleets_only {
            (0.0, 0.0)
        } else {
            (
                publish_single(&publishers, (per / 4).max(1), 32).await,
                publish_batched(&publishers, per, plan.batch, 20_000_000).await,
            )
        };
        let publish_rss = sampler.0.load(Ordering::Relaxed).max(rss_kib(pid));

        // A second replica: a copy of the data dir (CA, hub keys, server
        // certificate) on the same database.
        let mut replicated = Replicated::default();
        if args.replicas > 1 {
            let data_b = dir.path().join("hub-data-b");
            fleet::copy_dir(&data, &data_b).map_err(|e| format!("copy the data dir: {e}"))?;
            // What describes hub A's process, not the hub's data.
            let _ = std::fs::remove_file(data_b.join(hub::datadir::RUN_FILE));
            let (b, _) = start_hub(&data_b, "127.0.0.1:0", store_url.as_deref());
            let urls = [url.clone(), b.url()];
            replica = Some(b);
            if !args.fleets_only {
                replicated.publish_per_s =
                    publish_batched_at(&publishers, per, plan.batch, 60_000_000, &urls).await;
            }
        }
        let one = vec![hub.target()];
        let all: Vec<fleet::Target> = one
            .iter()
            .cloned()
            .chain(replica.as_ref().map(HubProc::target))
            .collect();

        // Fan-out latency, then time to protect, on one hub and on two
        // replicas; each run's streams start at the head.
        let fanout_spec = |tag: &str| fleet::Spec {
            subscribers: plan.subscribers,
            verify: plan.verifying_subscribers.min(plan.subscribers),
            agents: 0,
            rate: plan.rate,
            secs: plan.fanout_secs,
            per_member: plan.streams_per_member,
            tag: tag.into(),
        };
        let agents_spec = |tag: &str| fleet::Spec {
            subscribers: plan.agents,
            verify: 0,
            agents: (plan.agents / 100).max(1),
            rate: plan.agent_rate,
            secs: plan.agent_secs,
            per_member: plan.streams_per_member,
            tag: tag.into(),
        };
        let mut runs: Vec<(&str, fleet::Spec, &[fleet::Target])> =
            vec![("fanout", fanout_spec("fanout"), &one)];
        if all.len() > 1 {
            runs.push(("fanout2", fanout_spec("fanout2"), &all));
        }
        if plan.agents > 0 {
            runs.push(("agents", agents_spec("agents"), &one));
            if all.len() > 1 {
                runs.push(("agents2", agents_spec("agents2"), &all));
            }
        }
        let mut fleets = HashMap::new();
        for (name, spec, targets) in runs {
            // A replica whose tail has not reached this head yet waits for
            // it before it judges the cursor (`Store::wait_for_head`).
            let head = store.head_from_db().await.map_err(|e| e.to_string())?;
            let cursor = |org: &str| {
                material
                    .cursors
                    .seal(hub::cursor::Purpose::Stream, org, head)
            };
            let f = fleet::run(&spec, targets, &publishers[0], &members, &cursor)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
            fleets.insert(name, f);
        }
        let fan = fleets.remove("fanout").unwrap_or_default();
        let (p50, p99, max, samples) = (
            fan.delivery_p50,
            fan.delivery_p99,
            fan.delivery_max,
            fan.items * fan.subscribers,
        );
        replicated.fanout = fleets.remove("fanout2");
        replicated.fanout_one = Some(fan);
        replicated.agents = fleets.remove("agents2");
        let agents_one = fleets.remove("agents");
        if args.fleets_only {
            let mut out = serde_json::Map::new();
            for (prefix, f) in [
                ("fanout", replicated.fanout_one.as_ref()),
                ("fanout_two_replicas", replicated.fanout.as_ref()),
                ("agents", agents_one.as_ref()),
                ("agents_two_replicas", replicated.agents.as_ref()),
            ] {
                if let Some(f) = f {
                    out.extend(fleet::json(prefix, f));
                }
            }
            println!("{}", serde_json::Value::Object(out));
            store.close();
            return Err(String::new());
        }
        // The catch-up and what follows are one hub's figures.
        replica.take();
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
        let (catchup_per_s, backlog) = catchup(&members.agents[0]).await;
        let (checkpoint_p50, checkpoint_p99, _) =
            checkpoint_latency(&publishers[0], plan.checkpoint_samples).await;
        let proofs = proofs_per_s(&publishers[0], plan.proof_secs).await;
        let batched = batched_proofs_per_s(&publishers[0], plan.proof_secs).await;
        store.close();
        Ok::<_, String>((
            (checkpoint_p50, checkpoint_p99, proofs, batched),
            (replicated, agents_one),
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
        ))
    });
    let results = match results {
        Ok(r) => r,
        // --fleets-only printed its figures.
        Err(e) if e.is_empty() => {
            drop(replica);
            drop(hub);
            drop(cluster);
            return;
        }
        Err(e) => {
            eprintln!("isac-bench: {e}");
            drop(replica);
            drop(hub);
            drop(cluster);
            std::process::exit(1);
        }
    };
    let (
        (checkpoint_p50, checkpoint_p99, proofs, batched_proofs),
        (replicated, agents_one),
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
    let (hub, start_time) = start_hub(&data, "127.0.0.1:0", store_url.as_deref());
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

    // Federation: two more hubs, peered; seconds in --smoke.
    let (fed_items, fed_samples) = if args.smoke {
        (200, 20)
    } else if args.quick {
        (2_000, 100)
    } else {
        (20_000, 300)
    };
    let fed = runtime
        .block_on(federation::measure(
            dir.path(),
            fed_items,
            fed_samples,
            plan.batch,
        ))
        .unwrap_or_else(|e| panic!("federation figures: {e}"));

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
        "store": if store_url.is_some() { "postgres" } else { "sqlite" },
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
        "federation_forward_items_per_s": fed.forward_per_s.round(),
        "federation_hop_p50_ms": (fed.hop_p50_ms * 100.0).round() / 100.0,
        "federation_hop_p99_ms": (fed.hop_p99_ms * 100.0).round() / 100.0,
        "federation_items": fed.items,
        "federation_hop_samples": fed.samples,
    });
    let mut report = report;
    if let (Some(all), Some(more)) = (report.as_object_mut(), exposure.as_object()) {
        all.extend(more.clone());
    }
    // Time to protect, replicas, and the ratios to SQLite (the log-cost
    // hubs above are embedded SQLite, default settings, same run).
    let sqlite_per_s = log_on_per_s.max(1.0);
    let ratio = |x: f64, of: f64| (x / of.max(1.0) * 100.0).round() / 100.0;
    let mut more = serde_json::Map::new();
    more.insert("replicas".into(), json!(args.replicas));
    more.insert("fd_limit".into(), json!(fd_limit));
    more.insert("agents_rate".into(), json!(plan.agent_rate));
    if store_url.is_some() {
        more.insert(
            "publish_to_sqlite_ratio".into(),
            json!(ratio(batch_per_s, sqlite_per_s)),
        );
    }
    for (prefix, f) in [
        ("fanout", replicated.fanout_one.as_ref()),
        ("agents", agents_one.as_ref()),
        ("agents_two_replicas", replicated.agents.as_ref()),
        ("fanout_two_replicas", replicated.fanout.as_ref()),
    ] {
        if let Some(f) = f {
            more.extend(fleet::json(prefix, f));
        }
    }
    if args.replicas > 1 {
        let two = replicated.publish_per_s;
        more.insert("publish_per_s_two_replicas".into(), json!(two.round()));
        more.insert(
            "publish_two_replicas_to_one_ratio".into(),
            json!(ratio(two, batch_per_s)),
        );
        more.insert(
            "publish_two_replicas_to_sqlite_ratio".into(),
            json!(ratio(two, sqlite_per_s)),
        );
    }
    if let Some(all) = report.as_object_mut() {
        all.extend(more);
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
    let mut rows = rows;
    if args.replicas > 1 {
        let two = replicated.publish_per_s;
        rows.push((
            "publish, batches, through two replicas".into(),
            format!("{two:.0}/s"),
        ));
        rows.push((
            "  two replicas / one, / SQLite (same run)".into(),
            format!(
                "{:.2} / {:.2}",
                two / batch_per_s.max(1.0),
                two / log_on_per_s.max(1.0)
            ),
        ));
    }
    if store_url.is_some() {
        rows.push((
            "publish, batches: this store / SQLite (same run)".into(),
            format!("{:.2}", batch_per_s / log_on_per_s.max(1.0)),
        ));
    }
    for (what, f) in [
        ("fan-out, two replicas", replicated.fanout.as_ref()),
        ("agents, one hub", agents_one.as_ref()),
        ("agents, two replicas", replicated.agents.as_ref()),
    ] {
        let Some(f) = f else { continue };
        rows.push((
            format!(
                "{what}: {} subscribers ({} members, {} storing), {} items at {}/s (achieved {:.0}/s)",
                f.subscribers, f.members, f.agents, f.items, f.rate, f.achieved_rate
            ),
            String::new(),
        ));
        rows.push((
            "  publish acknowledged (stored) p50 / p99".into(),
            format!("{:.1} / {:.1} ms", f.acked_p50, f.acked_p99),
        ));
        rows.push((
            "  every delivery p50 / p99".into(),
            format!("{:.1} / {:.1} ms", f.delivery_p50, f.delivery_p99),
        ));
        rows.push((
            "  delivered at the last subscriber p50 / p99".into(),
            format!("{:.1} / {:.1} ms", f.last_p50, f.last_p99),
        ));
        if f.agents > 0 {
            rows.push((
                "  verified and stored (real agents) p50 / p99".into(),
                format!("{:.1} / {:.1} ms", f.stored_p50, f.stored_p99),
            ));
        }
        rows.push((
            "  hub RSS per replica".into(),
            f.hub_rss_kib
                .iter()
                .map(|k| format!("{} MiB", k / 1024))
                .collect::<Vec<_>>()
                .join(" / "),
        ));
        rows.push((
            "  hub CPU per delivery per replica".into(),
            f.hub_cpu_us_per_delivery
                .iter()
                .map(|u| format!("{u:.2} µs"))
                .collect::<Vec<_>>()
                .join(" / "),
        ));
    }
    rows.push((
        format!(
            "federation: forwarded between two hubs ({} items)",
            fed.items
        ),
        format!("{:.0}/s", fed.forward_per_s),
    ));
    rows.push((
        format!("federation: hop p50 / p99 ({} items)", fed.samples),
        format!("{:.1} / {:.1} ms", fed.hop_p50_ms, fed.hop_p99_ms),
    ));
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
