//! Many streaming subscribers on one hub or on several replicas: the
//! fan-out figure (100 subscribers) and time to protect (10,000 agents).
//!
//! Subscribers are spread over member identities, at most
//! [`PER_MEMBER`] each, so the hub's per-member stream limit (2,048 by
//! default) is never what is measured. Most subscribers are light (one
//! mTLS connection and stream each, decoding every delivery); a few verify
//! signatures against the key directory, and a share are real agents:
//! `member_agent::Agent::sync` (end-to-end verification, the log's
//! inclusion proofs, the local SQLite store), each with its own state dir.
//! Any subscriber or publisher that fails ends the run with its reason
//! instead of leaving the others waiting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use isac_core::{Envelope, PAYLOAD_TYPE_STATEMENT_V1};
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::sinks::{Received, Sink};
use member_agent::{Agent, AgentError, Sinks, StateDir};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::{now_us, percentile};

/// Streams per member identity: half the hub's default per-member limit.
pub const PER_MEMBER: usize = 1_000;

/// Publish calls outstanding per publisher.
const IN_FLIGHT: usize = 32;

/// Connections opened at once while setting up (TLS handshakes).
const CONNECT_AT_ONCE: usize = 64;

/// How each subscriber handles a delivery.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    /// Decodes it.
    Light,
    /// Decodes it and verifies its signature against the key directory.
    Verify,
    /// A real agent: `Agent::sync` verifies, proves and stores it.
    Agent,
}

/// Which kind subscriber `i` of `total` is: the first `verify` verify, the
/// next `agents` are real agents, spread so each hub gets its share.
pub fn kind_of(i: usize, verify: usize, agents: usize) -> Kind {
    if i < verify {
        Kind::Verify
    } else if i < verify + agents {
        Kind::Agent
    } else {
        Kind::Light
    }
}

/// Members needed so that no member holds more than [`PER_MEMBER`] streams.
pub fn members_for(subscribers: usize, per_member: usize) -> usize {
    subscribers.div_ceil(per_member.max(1)).max(1)
}

pub struct Spec {
    pub subscribers: usize,
    pub verify: usize,
    pub agents: usize,
    pub rate: u64,
    pub secs: u64,
    pub per_member: usize,
    /// Distinguishes this run's members and items from earlier runs'.
    pub tag: String,
}

/// A hub (or replica) the fleet talks to.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub pid: u32,
}

#[derive(Debug, Default)]
pub struct Figures {
    pub subscribers: usize,
    pub members: usize,
    pub agents: usize,
    pub items: usize,
    pub rate: u64,
    /// Items/s the publishers managed (below `rate` when the hub lagged).
    pub achieved_rate: f64,
    pub deliveries: u64,
    /// Every delivery: publish call to receipt (ms).
    pub delivery_p50: f64,
    pub delivery_p99: f64,
    pub delivery_max: f64,
    /// Per item: publish call to receipt at the last subscriber (ms).
    pub last_p50: f64,
    pub last_p99: f64,
    /// Per item: publish call to the hub's answer that it is stored (ms).
    pub acked_p50: f64,
    pub acked_p99: f64,
    /// Per item and real agent: publish call to verified and stored (ms).
    pub stored_p50: f64,
    pub stored_p99: f64,
    pub stored_samples: usize,
    /// Per hub: RSS at the end of the measured window (KiB) and CPU time
    /// per delivery it made (µs; user + system over the window).
    pub hub_rss_kib: Vec<u64>,
    pub hub_cpu_us_per_delivery: Vec<f64>,
    pub setup_secs: f64,
}

/// User + system CPU time of a process so far, in µs (`/proc/PID/stat`:
/// the same counters getrusage reads, and readable for a process that is
/// not our waited-for child).
pub fn cpu_us(pid: u32) -> u64 {
    let ticks_per_s = 100; // USER_HZ, fixed at 100 on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which may hold spaces.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = f.get(11)?.parse().ok()?;
            let stime: u64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) * 1_000_000 / ticks_per_s)
        })
        .unwrap_or(0)
}

/// The first failure among subscriber reports, as one message naming the
/// subscriber, or everything they received.
pub fn gather<T>(reports: Vec<(usize, Result<T, String>)>) -> Result<Vec<T>, String> {
    let mut ok = Vec::with_capacity(reports.len());
    let mut failed: Vec<(usize, String)> = Vec::new();
    for (i, r) in reports {
        match r {
            Ok(t) => ok.push(t),
            Err(e) => failed.push((i, e)),
        }
    }
    failed.sort_by_key(|f| f.0);
    match failed.first() {
        None => Ok(ok),
        Some((i, e)) if failed.len() == 1 => Err(format!("subscriber {i} failed: {e}")),
        Some((i, e)) => Err(format!(
            "{} subscribers failed; the first, subscriber {i}: {e}",
            failed.len()
        )),
    }
}

/// The item number a fleet statement carries (`fleet item N` in its
/// description), from its payload bytes.
fn item_number(payload: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(payload).ok()?;
    let rest = text.split("fleet item ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Receipt times per item, latest kept: µs since the epoch.
struct Board {
    sent: Vec<AtomicU64>,
    /// When the publish call returned (the hub acknowledged it stored).
    acked: Vec<AtomicU64>,
    last: Vec<AtomicU64>,
    /// Light subscribers in the run, and how many hold every item.
    light: usize,
    finished: AtomicUsize,
    all_finished: tokio::sync::Notify,
}

/// How long a subscriber with every item waits for the others.
const LINGER: Duration = Duration::from_secs(120);

impl Board {
    fn new(items: usize, light: usize) -> Board {
        Board {
            sent: (0..items).map(|_| AtomicU64::new(0)).collect(),
            acked: (0..items).map(|_| AtomicU64::new(0)).collect(),
            last: (0..items).map(|_| AtomicU64::new(0)).collect(),
            light,
            finished: AtomicUsize::new(0),
            all_finished: tokio::sync::Notify::new(),
        }
    }

    /// Called by a light subscriber holding every item, with its stream
    /// still open: returns once every light subscriber holds every item.
    /// Streams that closed as soon as they were done would make the hub
    /// tear thousands of them down while it still delivers the last item
    /// to the rest, and that teardown would be measured as their latency.
    async fn finished_one(&self) {
        let everyone = self.all_finished.notified();
        tokio::pin!(everyone);
        everyone.as_mut().enable();
        if self.finished.fetch_add(1, Ordering::SeqCst) + 1 >= self.light {
            self.all_finished.notify_waiters();
            return;
        }
        let _ = tokio::time::timeout(LINGER, everyone).await;
    }
}

/// A writer inside the real agent's commit: when each item is verified
/// and (its transaction about to commit) stored.
struct StoredAt {
    at: Arc<Mutex<Vec<(usize, u64)>>>,
}

impl Sink for StoredAt {
    fn describe(&self) -> String {
        "bench timer".into()
    }

    fn write(&mut self, item: &Received<'_>) -> Result<(), AgentError> {
        if let Some(n) = item_number(&item.verified.statement.canonical_bytes()) {
            self.at.lock().expect("stored").push((n, now_us()));
        }
        Ok(())
    }
}

fn statement(agent: &Agent, tag: &str, n: usize) -> pb::PublishRequest {
    let draft = IndicatorDraft {
        purl: Some(format!("pkg:npm/fleet-{tag}-{n}@1.0.0")),
        tlp: Some("green".into()),
        title: Some(format!("fleet item {n}")),
        description: Some(format!("fleet item {n}")),
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

async fn connect(agent: &Agent, url: &str) -> Result<Channel, String> {
    let connector = agent.connector().map_err(|e| e.to_string())?;
    connector
        .connect(url)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))
}

/// A light or verifying subscriber: counts what it receives until it has
/// all `items`, noting receipt times on `board`.
async fn light(
    channel: Channel,
    cursor: Vec<u8>,
    verify: Option<Arc<isac_core::directory::KeyDirectory>>,
    items: usize,
    ready: Arc<AtomicUsize>,
    board: Arc<Board>,
) -> Result<Vec<f64>, String> {
    let mut stream = pb::subscriber_client::SubscriberClient::new(channel)
        .subscribe(pb::SubscribeRequest {
            after_sequence: 0,
            follow: true,
            filter: None,
            include_expired: false,
            cursor,
        })
        .await
        .map_err(|s| format!("subscribe refused: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    let mut got = 0;
    let mut mine = Vec::with_capacity(items);
    loop {
        let msg = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(format!("stream ended after {got} of {items} items")),
            Err(s) => {
                return Err(format!(
                    "stream failed after {got} of {items} items: {:?}: {}",
                    s.code(),
                    s.message()
                ))
            }
        };
        match msg.event {
            Some(pb::subscribe_response::Event::CaughtUp(_)) => {
                ready.fetch_add(1, Ordering::SeqCst);
            }
            Some(pb::subscribe_response::Event::Item(d)) => {
                let now = now_us();
                let env = d.envelope.ok_or("a delivery without an envelope")?;
                if let Some(dir) = &verify {
                    let e = Envelope::from(env.clone());
                    isac_core::verify_envelope(&e, |kid| dir.record(kid))
                        .map_err(|e| format!("a delivery did not verify: {e}"))?;
                }
                if let Some(n) = item_number(&env.payload).filter(|n| *n < items) {
                    board.last[n].fetch_max(now, Ordering::Relaxed);
                    let sent = board.sent[n].load(Ordering::Relaxed);
                    if sent > 0 {
                        mine.push(now.saturating_sub(sent) as f64 / 1000.0);
                    }
                    got += 1;
                    if got >= items {
                        board.finished_one().await;
                        drop(stream);
                        return Ok(mine);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Copies an enrolled agent's state dir (identity and an empty local
/// store) so that several agents of one member each keep their own store.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

/// A real agent following `url` until it has stored `items` fleet items
/// (or `deadline`): returns when each was verified and stored.
async fn real_agent(
    state: PathBuf,
    url: String,
    cursor: Vec<u8>,
    items: usize,
    ready: Arc<AtomicUsize>,
    deadline: Instant,
) -> Result<Stored, String> {
    let mut agent = Agent::open(&StateDir::new(&state)).map_err(|e| e.to_string())?;
    agent.set_hubs(&[url]).map_err(|e| e.to_string())?;
    // From the head, like the light subscribers: the backlog of earlier
    // phases is the catch-up figure, not this one.
    agent
        .store
        .lock()
        .expect("local store")
        .set_hub_cursor(&cursor)
        .map_err(|e| e.to_string())?;
    let at = Arc::new(Mutex::new(Vec::new()));
    let mut sinks = Sinks::jsonl(Some(&state.join("items.jsonl"))).map_err(|e| e.to_string())?;
    sinks.add_writer(Box::new(StoredAt { at: at.clone() }));
    // Caught up at once (nothing published yet): a first sync proves the
    // agent works and holds the directory before the clock starts.
    agent
        .sync(false, &mut sinks)
        .await
        .map_err(|e| format!("first sync: {e}"))?;
    ready.fetch_add(1, Ordering::SeqCst);
    let done = || at.lock().expect("stored").len() >= items;
    let follow = agent.sync(true, &mut sinks);
    tokio::pin!(follow);
    loop {
        tokio::select! {
            r = &mut follow => {
                return match r {
                    Ok(_) if done() => Ok(std::mem::take(&mut *at.lock().expect("stored"))),
                    Ok(_) => Err("the agent's stream ended early".into()),
                    Err(e) => Err(format!("agent sync: {e}")),
                };
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if done() {
                    return Ok(std::mem::take(&mut *at.lock().expect("stored")));
                }
                if Instant::now() > deadline {
                    let n = at.lock().expect("stored").len();
                    return Err(format!("stored {n} of {items} items before the deadline"));
                }
            }
        }
    }
}

/// (item number, µs since the epoch when it was verified and stored).
type Stored = Vec<(usize, u64)>;

/// A task of `set` that has already failed (none has succeeded before
/// publishing began: each waits for every item).
fn early_failure<T: 'static>(
    set: &mut JoinSet<(usize, Result<T, String>)>,
) -> Option<(usize, String)> {
    set.try_join_next().map(|r| match r {
        Ok((i, Err(e))) => (i, e),
        Ok((i, Ok(_))) => (i, "ended before publishing began".into()),
        Err(e) => (usize::MAX, e.to_string()),
    })
}

/// The members a fleet uses, enrolled beforehand (set-up, not measured).
pub struct Members {
    pub agents: Vec<Agent>,
    pub dirs: Vec<PathBuf>,
}

/// Runs `spec` against `targets` (subscribers spread round robin over
/// them; the publisher too), publishing as `publisher`. `enroll(org)`
/// enrolls one member and returns its agent and state dir. `cursor(org)`
/// is a stream cursor at the head for that member.
pub async fn run(
    spec: &Spec,
    targets: &[Target],
    publisher: &Agent,
    members: &Members,
    cursor: &(dyn Fn(&str) -> Vec<u8> + Sync),
) -> Result<Figures, String> {
    let started = Instant::now();
    let items = (spec.rate * spec.secs) as usize;
    let real_agents = (0..spec.subscribers)
        .filter(|i| kind_of(*i, spec.verify, spec.agents) == Kind::Agent)
        .count();
    let board = Arc::new(Board::new(items, spec.subscribers - real_agents));
    let ready = Arc::new(AtomicUsize::new(0));
    let directory = {
        let a = &members.agents[0];
        let channel = a.channel().await.map_err(|e| e.to_string())?;
        a.refresh_directory(&channel)
            .await
            .map_err(|e| format!("key directory: {e}"))?;
        Arc::new(a.directory().ok_or("no key directory")?)
    };
    // Connect every light subscriber first (a few at a time), then start
    // their streams: set-up, not measured.
    let mut channels: Vec<(usize, Channel)> = Vec::new();
    let mut connecting = JoinSet::new();
    let mut agents_spec = Vec::new();
    for i in 0..spec.subscribers {
        let member = i / spec.per_member.max(1);
        let target = &targets[i % targets.len()];
        match kind_of(i, spec.verify, spec.agents) {
            Kind::Agent => {
                let dir = members.dirs[member].with_file_name(format!("{}-agent-{i}", spec.tag));
                copy_dir(&members.dirs[member], &dir)
                    .map_err(|e| format!("copy agent state: {e}"))?;
                agents_spec.push((i, dir, target.url.clone()));
            }
            _ => {
                if connecting.len() >= CONNECT_AT_ONCE {
                    if let Some(r) = connecting.join_next().await {
                        let r: Result<(usize, Channel), String> = r.map_err(|e| e.to_string())?;
                        channels.push(r?);
                    }
                }
                let connector = members.agents[member]
                    .connector()
                    .map_err(|e| e.to_string())?;
                let url = target.url.clone();
                connecting.spawn(async move {
                    connector
                        .connect(&url)
                        .await
                        .map(|c| (i, c))
                        .map_err(|e| format!("subscriber {i} cannot connect to {url}: {e}"))
                });
            }
        }
    }
    while let Some(r) = connecting.join_next().await {
        channels.push(r.map_err(|e| e.to_string())??);
    }
    let mut tasks: JoinSet<(usize, Result<Vec<f64>, String>)> = JoinSet::new();
    let mut agent_tasks: JoinSet<(usize, Result<Stored, String>)> = JoinSet::new();
    let deadline = Instant::now() + Duration::from_secs(spec.secs + 600);
    for (i, channel) in channels {
        let member = i / spec.per_member.max(1);
        let org = members.agents[member].org_id().to_owned();
        let verify =
            (kind_of(i, spec.verify, spec.agents) == Kind::Verify).then(|| directory.clone());
        let (ready, board, cursor) = (ready.clone(), board.clone(), cursor(&org));
        tasks.spawn(async move { (i, light(channel, cursor, verify, items, ready, board).await) });
    }
    for (i, dir, url) in agents_spec {
        let ready = ready.clone();
        let member = i / spec.per_member.max(1);
        let cursor = cursor(members.agents[member].org_id());
        // A thread and runtime each, as a real agent is its own process:
        // its store's blocking commits must not stall the light streams.
        agent_tasks.spawn_blocking(move || {
            let r = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("agent runtime: {e}"))
                .and_then(|rt| rt.block_on(real_agent(dir, url, cursor, items, ready, deadline)));
            (i, r)
        });
    }
    // Every stream starts at the head: each is caught up at once. One that
    // fails before that ends the run here.
    while ready.load(Ordering::SeqCst) < spec.subscribers {
        for (what, failed) in [
            ("subscriber", early_failure(&mut tasks)),
            ("agent", early_failure(&mut agent_tasks)),
        ] {
            if let Some((i, e)) = failed {
                return Err(format!("{what} {i} failed before publishing began: {e}"));
            }
        }
        if Instant::now() > deadline {
            return Err("subscribers not ready before the deadline".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let setup_secs = started.elapsed().as_secs_f64();

    // Publish at a steady rate, round robin over the targets: one
    // publisher per target with at most IN_FLIGHT calls outstanding (a
    // commit on PostgreSQL takes longer than 1 ms), so a hub that cannot
    // keep up shows as a lower achieved rate, not as a queue in the bench.
    let mut pub_channels = Vec::new();
    for t in targets {
        pub_channels.push(connect(publisher, &t.url).await?);
    }
    let cpu_before: Vec<u64> = targets.iter().map(|t| cpu_us(t.pid)).collect();
    let mut queues: Vec<Vec<(usize, pb::PublishRequest)>> = vec![Vec::new(); targets.len()];
    for n in 0..items {
        queues[n % targets.len()].push((n, statement(publisher, &spec.tag, n)));
    }
    let interval = Duration::from_secs_f64(1.0 / spec.rate.max(1) as f64);
    let window = Instant::now();
    let mut publishes = JoinSet::new();
    for (queue, channel) in queues.into_iter().zip(pub_channels) {
        let board = board.clone();
        publishes.spawn(async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            let mut calls = JoinSet::new();
            for (n, req) in queue {
                tokio::time::sleep_until((window + interval * n as u32).into()).await;
                let slot = slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| e.to_string())?;
                while let Some(r) = calls.try_join_next() {
                    r.map_err(|e| e.to_string())??;
                }
                board.sent[n].store(now_us(), Ordering::Relaxed);
                let mut client = pb::publisher_client::PublisherClient::new(channel.clone());
                let board = board.clone();
                calls.spawn(async move {
                    let _slot = slot;
                    client
                        .publish(req)
                        .await
                        .map(|_| board.acked[n].store(now_us(), Ordering::Relaxed))
                        .map_err(|s| {
                            format!("publish {n} refused: {:?}: {}", s.code(), s.message())
                        })
                });
            }
            while let Some(r) = calls.join_next().await {
                r.map_err(|e| e.to_string())??;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(r) = publishes.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    let achieved = items as f64 / window.elapsed().as_secs_f64();
    let mut reports = Vec::new();
    let wait = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok((i, r)) => {
                    let failed = r.is_err();
                    reports.push((i, r));
                    if failed {
                        break;
                    }
                }
                Err(e) => reports.push((usize::MAX, Err(e.to_string()))),
            }
        }
    })
    .await;
    let cpu_after: Vec<u64> = targets.iter().map(|t| cpu_us(t.pid)).collect();
    let rss: Vec<u64> = targets.iter().map(|t| crate::rss_kib(t.pid)).collect();
    if wait.is_err() {
        let done = reports.len();
        return Err(format!(
            "{} of {} subscribers had not received all {items} items 60 s after the last publish",
            spec.subscribers - spec.agents - done,
            spec.subscribers - spec.agents
        ));
    }
    let mut all: Vec<f64> = gather(reports)?.into_iter().flatten().collect();
    let mut stored_reports = Vec::new();
    while let Some(r) = agent_tasks.join_next().await {
        match r {
            Ok((i, r)) => stored_reports.push((i, r)),
            Err(e) => stored_reports.push((usize::MAX, Err(e.to_string()))),
        }
    }
    let stored = gather(stored_reports).map_err(|e| e.replace("subscriber", "agent"))?;
    let mut stored_ms: Vec<f64> = stored
        .iter()
        .flatten()
        .filter(|(n, _)| *n < items)
        .map(|(n, at)| at.saturating_sub(board.sent[*n].load(Ordering::Relaxed)) as f64 / 1000.0)
        .collect();
    let mut last: Vec<f64> = (0..items)
        .map(|n| {
            board.last[n]
                .load(Ordering::Relaxed)
                .saturating_sub(board.sent[n].load(Ordering::Relaxed)) as f64
                / 1000.0
        })
        .collect();
    let mut acked: Vec<f64> = (0..items)
        .map(|n| {
            board.acked[n]
                .load(Ordering::Relaxed)
                .saturating_sub(board.sent[n].load(Ordering::Relaxed)) as f64
                / 1000.0
        })
        .collect();
    if std::env::var_os("ISAC_BENCH_PER_ITEM").is_some() {
        eprintln!("{}: last subscriber per item (ms): {last:.0?}", spec.tag);
    }
    for v in [&mut all, &mut last, &mut stored_ms, &mut acked] {
        v.sort_by(f64::total_cmp);
    }
    // Deliveries each hub made: its subscribers (round robin) times items.
    let mut per_hub = vec![0u64; targets.len()];
    for i in 0..spec.subscribers {
        per_hub[i % targets.len()] += items as u64;
    }
    Ok(Figures {
        subscribers: spec.subscribers,
        members: members_for(spec.subscribers, spec.per_member),
        agents: spec.agents,
        items,
        rate: spec.rate,
        achieved_rate: achieved,
        deliveries: per_hub.iter().sum(),
        delivery_p50: percentile(&all, 0.5),
        delivery_p99: percentile(&all, 0.99),
        delivery_max: all.last().copied().unwrap_or(0.0),
        last_p50: percentile(&last, 0.5),
        last_p99: percentile(&last, 0.99),
        acked_p50: percentile(&acked, 0.5),
        acked_p99: percentile(&acked, 0.99),
        stored_p50: percentile(&stored_ms, 0.5),
        stored_p99: percentile(&stored_ms, 0.99),
        stored_samples: stored_ms.len(),
        hub_rss_kib: rss,
        hub_cpu_us_per_delivery: cpu_before
            .iter()
            .zip(&cpu_after)
            .zip(&per_hub)
            .map(|((b, a), d)| a.saturating_sub(*b) as f64 / (*d).max(1) as f64)
            .collect(),
        setup_secs,
    })
}

/// `HashMap` of figures for the JSON report under `prefix`.
pub fn json(prefix: &str, f: &Figures) -> HashMap<String, serde_json::Value> {
    use serde_json::json;
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    [
        ("subscribers", json!(f.subscribers)),
        ("members", json!(f.members)),
        ("agents_storing", json!(f.agents)),
        ("items", json!(f.items)),
        ("rate", json!(f.rate)),
        ("achieved_rate", json!(r2(f.achieved_rate))),
        ("deliveries", json!(f.deliveries)),
        ("p50_ms", json!(r2(f.delivery_p50))),
        ("p99_ms", json!(r2(f.delivery_p99))),
        ("max_ms", json!(r2(f.delivery_max))),
        ("last_subscriber_p50_ms", json!(r2(f.last_p50))),
        ("last_subscriber_p99_ms", json!(r2(f.last_p99))),
        ("acknowledged_p50_ms", json!(r2(f.acked_p50))),
        ("acknowledged_p99_ms", json!(r2(f.acked_p99))),
        ("stored_p50_ms", json!(r2(f.stored_p50))),
        ("stored_p99_ms", json!(r2(f.stored_p99))),
        ("stored_samples", json!(f.stored_samples)),
        ("hub_rss_kb", json!(f.hub_rss_kib)),
        (
            "hub_cpu_us_per_delivery",
            json!(f
                .hub_cpu_us_per_delivery
                .iter()
                .map(|x| r2(*x))
                .collect::<Vec<_>>()),
        ),
        ("setup_s", json!(r2(f.setup_secs))),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{prefix}_{k}"), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failed_subscriber_is_named() {
        let ok: Vec<(usize, Result<u32, String>)> = vec![(0, Ok(1)), (1, Ok(2))];
        assert_eq!(gather(ok), Ok(vec![1, 2]));
        let one = vec![(0, Ok(1)), (7, Err("stream failed".to_owned()))];
        assert_eq!(
            gather(one),
            Err("subscriber 7 failed: stream failed".into())
        );
        let two = vec![
            (9, Err::<u32, _>("late".to_owned())),
            (3, Err("refused".to_owned())),
        ];
        assert_eq!(
            gather(two),
            Err("2 subscribers failed; the first, subscriber 3: refused".into())
        );
    }

    #[test]
    fn no_member_holds_more_than_its_share_of_streams() {
        assert_eq!(members_for(1, PER_MEMBER), 1);
        assert_eq!(members_for(1_000, PER_MEMBER), 1);
        assert_eq!(members_for(1_001, PER_MEMBER), 2);
        assert_eq!(members_for(10_000, PER_MEMBER), 10);
        assert_eq!(members_for(0, PER_MEMBER), 1);
        assert!(PER_MEMBER < hub::config::HubConfig::default().max_streams_per_member);
    }

    #[test]
    fn kinds_verify_first_then_agents_then_light() {
        let kinds: Vec<Kind> = (0..6).map(|i| kind_of(i, 2, 1)).collect();
        assert_eq!(
            kinds,
            [
                Kind::Verify,
                Kind::Verify,
                Kind::Agent,
                Kind::Light,
                Kind::Light,
                Kind::Light
            ]
        );
    }

    #[test]
    fn item_numbers_are_read_from_the_payload() {
        assert_eq!(item_number(br#"{"title":"fleet item 42","x":1}"#), Some(42));
        assert_eq!(item_number(b"nothing"), None);
        assert_eq!(item_number(&[0xff, 0xfe]), None);
    }

    #[test]
    fn cpu_time_of_this_process_is_read() {
        let pid = std::process::id();
        let before = cpu_us(pid);
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_add(i ^ (x >> 3));
        }
        assert!(x > 0);
        assert!(cpu_us(pid) > before, "CPU time moves while we compute");
    }
}
