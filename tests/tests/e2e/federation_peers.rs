//! Federation (issue 20) against peers that misbehave, and at scale: a
//! real `hub serve` process following a hostile peer (a small Peering
//! server on the origin's own mTLS identity, serving forged, tampered,
//! mis-attributed and malformed items and a rolled-back directory), a
//! follower offline during 1,000 publishes, and a peer that stops reading
//! while the origin's own members keep receiving.
//!
//! What a follower does with refused input (the decision these tests pin):
//! an item that fails a check (author key unknown, signature, provenance,
//! crossing rules) is logged with its reason, never stored, and the cursor
//! moves past it: the verdict depends only on the bytes and the pinned
//! directory (which is refreshed once before a signature failure counts),
//! so asking again would get the same refusal, and holding the cursor
//! would let one bad item stop every later one. A stream the follower
//! cannot trust as a whole (a directory that rolls back, a cursor over its
//! bound) ends the session instead: nothing from it is stored and the
//! cursor stays where it was.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use isac_core::federation::Provenance;
use isac_core::{Envelope, SigningKey};
use isac_e2e::*;
use isac_proto::v1 as pb;
use member_agent::publish::publish;
use member_agent::{Agent, Sinks, StateDir};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::federation::{draft, named_hub, WAIT};

// === a `hub serve` process with its log ===

/// A `hub serve` process (`hub_id` from its hub.toml) whose log lines
/// (stderr, `RUST_LOG=info`) go to a file the test reads; SIGTERM on drop.
pub(crate) struct LoggedHub {
    _process: HubProcess,
    pub url: String,
    pub data: PathBuf,
    pub log: PathBuf,
    /// The operator's handle on its database (as the CLI opens it).
    pub store: hub::store::Store,
}

impl LoggedHub {
    pub(crate) async fn start(data: &Path, hub_id: &str) -> LoggedHub {
        std::fs::create_dir_all(data).unwrap();
        std::fs::write(data.join("hub.toml"), format!("hub_id = \"{hub_id}\"\n")).unwrap();
        let log = data.with_extension("log");
        let process = HubProcess::start_logging(data, "127.0.0.1:0", &log);
        let config = hub::config::HubConfig::load(data, |_| None).unwrap();
        LoggedHub {
            url: process.url(),
            _process: process,
            data: data.to_owned(),
            log,
            store: hub::open_configured_store(&config).await.unwrap(),
        }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `hub --data-dir DATA ARGS...`; panics unless it succeeds.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let (ok, out, err) = run(bin("hub").arg("--data-dir").arg(&self.data).args(args));
        assert!(ok, "hub {args:?}: {err}");
        out
    }

    /// `hub peer add ORIGIN` on this running hub, with a token from `origin`.
    pub(crate) async fn follow(&self, origin: &TestHub, as_hub: &str) {
        let token = origin.add_member_with_role(as_hub, "peer").await;
        self.cli(&[
            "peer",
            "add",
            &origin.config.hub_id,
            "--url",
            &origin.url(),
            "--token",
            &token,
        ]);
    }

    pub(crate) async fn received(&self) -> Vec<hub::store::FederatedItem> {
        self.store.federated_items(None).await.unwrap()
    }

    /// Waits until this hub holds an item with statement id `id` from a peer.
    pub(crate) async fn wait_for(&self, id: &str) {
        for _ in 0..(WAIT.as_millis() / 50) {
            if self.received().await.iter().any(|i| i.id == id) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("never received {id}; log:\n{}", self.log_text());
    }

    /// Waits until `needle` occurs at least `times` times in the log.
    pub(crate) async fn wait_for_log(&self, needle: &str, times: usize) {
        for _ in 0..(WAIT.as_millis() / 50) {
            if self.log_text().matches(needle).count() >= times {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "`{needle}` not logged {times} times; log:\n{}",
            self.log_text()
        );
    }
}

// === a hostile peer ===

/// A Peering server that says whatever the test scripts: `GetPeerDirectory`
/// answers `directory`; each `Follow` records the cursor it was asked for
/// and streams the next script (then ends the stream).
#[derive(Clone, Default)]
pub(crate) struct Hostile {
    pub(crate) hub_id: String,
    pub(crate) directory: Arc<Mutex<Option<pb::Envelope>>>,
    pub(crate) scripts: Arc<Mutex<Vec<Vec<pb::PeerEvent>>>>,
    pub(crate) follows: Arc<Mutex<Vec<Vec<u8>>>>,
    pub(crate) directory_calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl pb::peering_server::Peering for Hostile {
    type FollowStream = ReceiverStream<Result<pb::PeerEvent, tonic::Status>>;

    async fn get_peer_directory(
        &self,
        _: tonic::Request<pb::GetPeerDirectoryRequest>,
    ) -> Result<tonic::Response<pb::PeerDirectory>, tonic::Status> {
        self.directory_calls.fetch_add(1, Ordering::SeqCst);
        Ok(tonic::Response::new(pb::PeerDirectory {
            signed_directory: self.directory.lock().unwrap().clone(),
            hub_id: self.hub_id.clone(),
        }))
    }

    async fn get_group_manifest(
        &self,
        _: tonic::Request<pb::GetGroupManifestRequest>,
    ) -> Result<tonic::Response<pb::GroupManifest>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "a hub from before cross-hub groups",
        ))
    }

    async fn get_origin_directories(
        &self,
        _: tonic::Request<pb::GetFederatedDirectoriesRequest>,
    ) -> Result<tonic::Response<pb::GetFederatedDirectoriesResponse>, tonic::Status> {
        Ok(tonic::Response::new(Default::default()))
    }

    async fn follow(
        &self,
        req: tonic::Request<pb::FollowRequest>,
    ) -> Result<tonic::Response<Self::FollowStream>, tonic::Status> {
        self.follows.lock().unwrap().push(req.into_inner().cursor);
        let events = {
            let mut scripts = self.scripts.lock().unwrap();
            if scripts.is_empty() {
                Vec::new()
            } else {
                scripts.remove(0)
            }
        };
        let (tx, rx) = mpsc::channel(events.len().max(1));
        for e in events {
            tx.try_send(Ok(e)).unwrap();
        }
        Ok(tonic::Response::new(ReceiverStream::new(rx)))
    }
}

/// Serves `svc` on `addr` with the TLS identity and CA of the hub whose
/// data dir `material` was loaded from (what its peers pinned).
pub(crate) async fn serve_peering(
    addr: SocketAddr,
    material: &hub::datadir::HubMaterial,
    svc: Hostile,
) -> oneshot::Sender<()> {
    let mut tries = 0;
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if tries < 100 => {
                tries += 1;
                tracing::debug!(error = %e, "rebinding");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("bind {addr}: {e}"),
        }
    };
    let acceptor = Arc::new(hub::tls::build_acceptor(material, hub::tls::ALPN_H2).unwrap());
    let (conns, incoming) = mpsc::channel(16);
    // The hostile peer never asks its connections to stop early: its
    // sender lives as long as the test process.
    let (never_stop, not_stopping) = tokio::sync::watch::channel(false);
    std::mem::forget(never_stop);
    tokio::spawn(hub::tls::accept_loop(
        listener,
        acceptor,
        hub::tls::AcceptOptions {
            listener: hub::tls::Listener::Grpc,
            handshake_timeout: Duration::from_secs(10),
            no_cert: None,
        },
        Arc::new(hub::tls::ConnLimits::new(64, 64, 64)),
        conns,
        not_stopping,
    ));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::peering_server::PeeringServer::new(svc))
            .serve_with_incoming_shutdown(ReceiverStream::new(incoming), async {
                let _ = stopped.await;
            }),
    );
    stop
}

pub(crate) fn item(envelope: &Envelope, provenance: Vec<u8>, cursor: &[u8]) -> pb::PeerEvent {
    proven_item(envelope, provenance, cursor, OriginProof::default())
}

/// An origin log checkpoint (signed note) and an inclusion proof, as a
/// `PeerItem` carries them.
#[derive(Clone, Default)]
pub(crate) struct OriginProof {
    pub(crate) note: Vec<u8>,
    pub(crate) proof: Vec<Vec<u8>>,
}

/// An item with the origin log checkpoint and proof it claims.
pub(crate) fn proven_item(
    envelope: &Envelope,
    provenance: Vec<u8>,
    cursor: &[u8],
    proof: OriginProof,
) -> pb::PeerEvent {
    pb::PeerEvent {
        event: Some(pb::peer_event::Event::Item(pb::PeerItem {
            envelope: Some(envelope.clone().into()),
            provenance,
            cursor: cursor.to_vec(),
            openings: vec![],
            directory_version: 0,
            origin_checkpoint: proof.note,
            origin_inclusion_proof: proof.proof,
        })),
    }
}

/// A log of `size` leaves in which `envelope` is leaf `index` (the others
/// filler), its checkpoint signed by `log_key` under `origin`: what a hub
/// holding the origin's log key can prove. Size and index are the
/// caller's, so a hostile origin can prove a leaf at a position past what
/// a follower already holds.
pub(crate) fn origin_proof(
    log_key: &SigningKey,
    origin: &str,
    envelope: &Envelope,
    index: u64,
    size: u64,
) -> OriginProof {
    use isac_core::tlog::merkle::{prove_inclusion, HashReader, NodeId, TreeBuilder};
    struct Nodes(std::collections::HashMap<NodeId, isac_core::tlog::Hash>);
    impl HashReader for Nodes {
        type Error = String;
        fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<isac_core::tlog::Hash>, String> {
            nodes
                .iter()
                .map(|n| self.0.get(n).copied().ok_or(format!("{n:?}")))
                .collect()
        }
    }
    let mut tree = TreeBuilder::new();
    let mut nodes = std::collections::HashMap::new();
    for i in 0..size {
        let leaf = if i == index {
            isac_core::tlog::envelope_leaf_hash(envelope)
        } else {
            isac_core::tlog::merkle::leaf_hash(format!("filler {i}").as_bytes())
        };
        nodes.extend(tree.append(leaf).unwrap());
    }
    let signer = isac_core::tlog::note::Ed25519Signer::new(origin, log_key.clone()).unwrap();
    let note = isac_core::tlog::checkpoint::Checkpoint {
        origin: origin.into(),
        size,
        root: tree.root(),
        extensions: Vec::new(),
    }
    .sign(&[&signer])
    .unwrap();
    OriginProof {
        note: note.into_bytes(),
        proof: prove_inclusion(&Nodes(nodes), index, size)
            .unwrap()
            .iter()
            .map(|h| h.to_vec())
            .collect(),
    }
}

pub(crate) fn caught_up(cursor: &[u8]) -> pb::PeerEvent {
    pb::PeerEvent {
        event: Some(pb::peer_event::Event::CaughtUp(pb::PeerCaughtUp {
            cursor: cursor.to_vec(),
            directory_version: 0,
        })),
    }
}

/// A GREEN indicator by `source` about `domain`, signed with `key`; and its id.
pub(crate) fn signed(key: &SigningKey, source: &str, domain: &str, now: i64) -> (Envelope, String) {
    let statement = draft(domain, "green", &[])
        .into_statement(source, isac_core::time::format_rfc3339(now))
        .unwrap();
    (
        key.sign_statement(&statement).unwrap(),
        statement.id.to_string(),
    )
}

/// `origin`'s signed directory as its peer `follower_data` fetches it.
pub(crate) async fn directory_of(origin: &TestHub, follower_data: &Path) -> pb::Envelope {
    let dir = hub::grpc::peer_enroll::peer_dir(follower_data, &origin.config.hub_id);
    let cert = openssl::x509::X509::from_pem(&std::fs::read(dir.join("tls.crt")).unwrap()).unwrap();
    let key =
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(dir.join("tls.key")).unwrap())
            .unwrap();
    let channel = raw_channel(origin, Some((&cert, &key))).await.unwrap();
    pb::peering_client::PeeringClient::new(channel)
        .get_peer_directory(pb::GetPeerDirectoryRequest {})
        .await
        .unwrap()
        .into_inner()
        .signed_directory
        .unwrap()
}

pub(crate) fn version(envelope: &pb::Envelope) -> u64 {
    let d: isac_core::directory::KeyDirectory = serde_json::from_slice(&envelope.payload).unwrap();
    d.version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_serve_refuses_what_a_hostile_peer_sends_and_keeps_serving_its_members() {
    let dir = tempfile::tempdir().unwrap();
    let a = named_hub(&dir.path().join("a"), "hub-a").await;
    let b = LoggedHub::start(&dir.path().join("b"), "hub-b").await;
    let alice_dir = dir.path().join("alice");
    let alice = enrolled_agent(&a, "alice-bank", &alice_dir).await;
    b.follow(&a, "hub-b").await;
    let real = publish(&alice, draft("real.example", "green", &[]))
        .await
        .unwrap();
    b.wait_for(&real.id).await;
    // Two of hub-a's signed directories: before and after a member joins.
    let old_directory = directory_of(&a, &b.data).await;
    let _dave = enrolled_agent(&a, "dave-bank", &dir.path().join("dave")).await;
    let new_directory = directory_of(&a, &b.data).await;
    assert!(version(&new_directory) > version(&old_directory));

    // hub-a turns hostile: the same address, TLS identity, CA and directory
    // key (it keeps its data dir), serving what the script says.
    let now = a.clock.now();
    let a_addr = a.addr;
    let a_config = a.config.clone();
    a.stop().await;
    let (material, _) = hub::prepare(&a_config).unwrap();
    let alice_key = StateDir::new(&alice_dir).load().unwrap().signing_key;
    let at_a = Provenance::at_origin("hub-a", None).canonical_bytes();
    // The honest items are proven in hub-a's log, as hub-a's Follow does
    // (a log this hostile copy holds hub-a's log key for, past the
    // checkpoint hub-b already holds).
    let at_a_999 = Provenance::at_origin("hub-a", Some(999)).canonical_bytes();
    let log_origin = a_config.log_origin();
    // (a) alice-bank as author, signed by a key hub-a's directory never listed.
    let (forged, forged_id) = signed(
        &SigningKey::generate().unwrap(),
        "alice-bank",
        "forged.example",
        now,
    );
    // (b) alice's real signature over a payload with one byte changed.
    let (mut tampered, tampered_id) = signed(&alice_key, "alice-bank", "tampered.example", now);
    let at = tampered.payload.len() - 2;
    tampered.payload[at] ^= 1;
    // (c) a valid item of alice's that claims a third hub as its origin.
    let (third, third_id) = signed(&alice_key, "alice-bank", "third.example", now);
    let claims_c = Provenance::at_origin("hub-c", None)
        .held_by("hub-a")
        .canonical_bytes();
    // (d) provenance over its bound, nested past any sense, not canonical.
    let (odd, odd_id) = signed(&alice_key, "alice-bank", "odd.example", now);
    let oversized = format!(
        r#"{{"origin_hub":"hub-a","hub_path":["hub-a","{}"]}}"#,
        "x".repeat(3000)
    )
    .into_bytes();
    let nested = format!("{}{}", "[".repeat(1000), "]".repeat(1000)).into_bytes();
    let spaced = String::from_utf8(at_a.clone())
        .unwrap()
        .replace(',', ", ")
        .into_bytes();
    // And an honest item between them, which must still be stored.
    let (good, good_id) = signed(&alice_key, "alice-bank", "good.example", now);
    // (f) a valid item whose cursor is 64 KiB: the session is refused whole.
    let (late, late_id) = signed(&alice_key, "alice-bank", "late.example", now);
    let hostile = Hostile {
        hub_id: "hub-a".into(),
        directory: Arc::new(Mutex::new(Some(new_directory.clone()))),
        scripts: Arc::new(Mutex::new(vec![
            vec![
                item(&forged, at_a.clone(), b"c1"),
                item(&tampered, at_a.clone(), b"c2"),
                item(&third, claims_c, b"c3"),
                item(&odd, oversized, b"c4"),
                item(&odd, nested, b"c5"),
                item(&odd, spaced, b"c6"),
                proven_item(
                    &good,
                    at_a_999.clone(),
                    b"c7",
                    origin_proof(&material.log_key, &log_origin, &good, 999, 1000),
                ),
                caught_up(b"c-end"),
            ],
            vec![item(&late, at_a.clone(), &vec![7u8; 64 * 1024])],
        ])),
        ..Default::default()
    };
    let stop = serve_peering(a_addr, &material, hostile.clone()).await;

    b.wait_for(&good_id).await;
    // The refused session and the one after it asked from `c-end`: the
    // cursor moved past the refused items, not past the refused session.
    for _ in 0..(WAIT.as_millis() / 50) {
        if hostile.follows.lock().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let follows = hostile.follows.lock().unwrap().clone();
    assert!(follows.len() >= 3, "{} Follow calls", follows.len());
    assert_eq!(follows[1], b"c-end");
    assert_eq!(follows[2], b"c-end", "the oversized cursor was not taken");
    b.wait_for_log("cursor of 65536 bytes", 1).await;
    let log = b.log_text();
    for (what, needle) in [
        ("(a) unknown key", "is not in the key directory"),
        ("(b) tampered", "signature does not verify"),
        (
            "(c) third hub",
            "origin hub `hub-c` is not one the sending peer `hub-a` delivers",
        ),
        ("(d) oversized", "provenance is larger than 2048 bytes"),
        ("(d) nested", "provenance is malformed"),
        ("(d) spaced", "provenance is not in canonical form"),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains("refused an item from a peer") && l.contains(needle))
            .unwrap_or_else(|| panic!("{what}: no refusal naming `{needle}` in:\n{log}"));
        assert!(line.contains("hub-a"), "{line}");
    }

    // (e) The directory rolls back: every session ends before Follow, and
    // what hub-b pinned stays.
    *hostile.directory.lock().unwrap() = Some(old_directory.clone());
    b.wait_for_log("refusing a rollback", 1).await;
    let follows_then = hostile.follows.lock().unwrap().len();
    b.wait_for_log("refusing a rollback", 3).await;
    assert_eq!(hostile.follows.lock().unwrap().len(), follows_then);
    let link = b.store.peer_link("hub-a").await.unwrap().unwrap();
    assert_eq!(link.directory_version, version(&new_directory));
    assert_eq!(link.cursor, b"c-end");

    // Exactly the real and the honest item are stored; nothing refused.
    let mut stored: Vec<String> = b.received().await.into_iter().map(|i| i.id).collect();
    stored.sort();
    let mut want = vec![real.id.clone(), good_id.clone()];
    want.sort();
    assert_eq!(stored, want);
    for refused in [&forged_id, &tampered_id, &third_id, &odd_id, &late_id] {
        assert!(!stored.contains(refused));
    }

    // hub-b's own members are served throughout.
    let bob_dir = dir.path().join("bob");
    let carol_dir = dir.path().join("carol");
    enroll_with_cli(&b.data, &b.url, "bob-bank", None, &bob_dir);
    enroll_with_cli(&b.data, &b.url, "carol-bank", None, &carol_dir);
    let bob = Agent::open(&StateDir::new(&bob_dir)).unwrap();
    let carol = Agent::open(&StateDir::new(&carol_dir)).unwrap();
    let local = publish(&bob, draft("local.example", "green", &[]))
        .await
        .unwrap();
    let jsonl = dir.path().join("carol.jsonl");
    carol
        .sync(false, &mut Sinks::jsonl(Some(&jsonl)).unwrap())
        .await
        .unwrap();
    assert!(
        std::fs::read_to_string(&jsonl).unwrap().contains(&local.id),
        "carol-bank did not receive bob-bank's item at hub-b"
    );
    let _ = stop.send(());
}

// === catch-up at scale ===

/// Signs `drafts` as `agent` and publishes them in `PublishBatch` calls of
/// 250; returns the accepted (id, revision) in order.
pub(crate) async fn publish_all(
    agent: &Agent,
    drafts: Vec<member_agent::draft::IndicatorDraft>,
) -> Vec<(String, u32)> {
    let created = isac_core::time::format_rfc3339(agent.clock.now());
    let mut batch = Vec::new();
    for d in drafts {
        let prepared = d.into_prepared(agent.org_id(), created.clone()).unwrap();
        let envelope = agent
            .loaded
            .signing_key
            .sign_statement(&prepared.statement)
            .unwrap();
        batch.push((envelope, prepared.openings));
    }
    let mut ids = Vec::new();
    for chunk in batch.chunks(250) {
        for r in member_agent::publish::publish_batch(agent, chunk.to_vec())
            .await
            .unwrap()
        {
            let p = r.unwrap();
            ids.push((p.id, p.revision));
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_offline_during_1000_publishes_catches_up_with_exactly_the_forwardable_ones() {
    const N: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let a = named_hub(&dir.path().join("a"), "hub-a").await;
    let b_dir = dir.path().join("b");
    let b = named_hub(&b_dir, "hub-b").await;
    let (alice, _bob) = crate::federation::alice_bob_and_ann(&a, dir.path()).await;
    crate::federation::peer(&b, &a).await;
    let first = publish(&alice, draft("first.example", "green", &[]))
        .await
        .unwrap();
    crate::federation::wait_for(&b, &first.id).await;

    b.stop().await;
    // Mixed: CLEAR and GREEN (some no-forward), AMBER, AMBER+STRICT, RED.
    // Every eighth from 7 is GREEN, so the last one published crosses.
    let forwards = |i: usize| matches!(i % 8, 0 | 1 | 7);
    let drafts = (0..N)
        .map(|i| {
            let domain = format!("bulk-{i:04}.example");
            let mut d = match i % 8 {
                0 => draft(&domain, "clear", &[]),
                1 | 7 => draft(&domain, "green", &[]),
                2 => draft(&domain, "green", &[]),
                3 => draft(&domain, "clear", &[]),
                4 => draft(&domain, "amber", &[]),
                5 => draft(&domain, "amber+strict", &["org:bob-bank"]),
                _ => draft(&domain, "red", &["person:bob-bank/ann"]),
            };
            if matches!(i % 8, 2 | 3) {
                d.no_forward = Some(true);
            }
            d
        })
        .collect();
    let ids = publish_all(&alice, drafts).await;
    assert_eq!(ids.len(), N);
    let mut want: Vec<(String, String, u32)> = std::iter::once(&(first.id.clone(), first.revision))
        .chain(
            ids.iter()
                .enumerate()
                .filter(|(i, _)| forwards(*i))
                .map(|(_, p)| p),
        )
        .map(|(id, revision)| ("hub-a".to_owned(), id.clone(), *revision))
        .collect();
    want.sort();

    let b = named_hub(&b_dir, "hub-b").await;
    crate::federation::wait_for(&b, &ids.last().unwrap().0).await;
    let mut got: Vec<(String, String, u32)> = crate::federation::received(&b)
        .await
        .into_iter()
        .map(|i| (i.origin_hub, i.id, i.revision))
        .collect();
    got.sort();
    assert_eq!(got.len(), N / 8 * 3 + 1);
    assert_eq!(
        got, want,
        "each forwardable item once, none missing, none extra"
    );
    b.stop().await;
    a.stop().await;
}

// === isolation ===

fn identity_in(
    dir: &Path,
) -> (
    openssl::x509::X509,
    openssl::pkey::PKey<openssl::pkey::Private>,
) {
    (
        openssl::x509::X509::from_pem(&std::fs::read(dir.join("tls.crt")).unwrap()).unwrap(),
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(dir.join("tls.key")).unwrap())
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_has_its_own_stream_limit_and_never_slows_members() {
    const ITEMS: usize = 1500;
    let dir = tempfile::tempdir().unwrap();
    // hub-a serves at most 3 member streams and 2 per peer; peer streams
    // are counted apart, so a peer never takes a member's slot.
    let a_dir = dir.path().join("a");
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::write(
        a_dir.join("hub.toml"),
        "hub_id = \"hub-a\"\nmax_streams_per_member = 3\nmax_streams_total = 3\nmax_streams_per_peer = 2\n",
    )
    .unwrap();
    let a = TestHub::start(&a_dir).await;
    let b = named_hub(&dir.path().join("b"), "hub-b").await;
    let alice = enrolled_agent(&a, "alice-bank", &dir.path().join("alice")).await;
    let bob_dir = dir.path().join("bob");
    let bob = enrolled_agent(&a, "bob-bank", &bob_dir).await;
    crate::federation::peer(&b, &a).await;
    let b_data = b.data_dir().to_owned();
    // hub-b's own follower stops; its identity now stalls on purpose.
    b.stop().await;

    let (cert, key) = identity_in(&hub::grpc::peer_enroll::peer_dir(&b_data, "hub-a"));
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let channel = raw_channel(&a, Some((&cert, &key))).await.unwrap();
        let stream = pb::peering_client::PeeringClient::new(channel)
            .follow(pb::FollowRequest { cursor: vec![] })
            .await
            .unwrap()
            .into_inner();
        // Held, never read.
        stalled.push(stream);
    }
    let channel = raw_channel(&a, Some((&cert, &key))).await.unwrap();
    let refused = pb::peering_client::PeeringClient::new(channel)
        .follow(pb::FollowRequest { cursor: vec![] })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(
        refused
            .message()
            .contains("peer hub `hub-b` already has 2 open streams"),
        "{}",
        refused.message()
    );

    // The members' three slots are all theirs.
    let (bob_cert, bob_key) = identity_in(&bob_dir);
    let mut member_streams = Vec::new();
    for _ in 0..3 {
        let channel = raw_channel(&a, Some((&bob_cert, &bob_key))).await.unwrap();
        member_streams.push(
            pb::subscriber_client::SubscriberClient::new(channel)
                .subscribe(pb::SubscribeRequest {
                    follow: true,
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|s| panic!("member stream refused: {s:?}"))
                .into_inner(),
        );
    }
    drop(member_streams);

    // Far more than the peer's buffers hold: the stalled peer streams block
    // on their own, and bob still receives every item.
    let drafts = (0..ITEMS)
        .map(|i| draft(&format!("iso-{i:04}.example"), "green", &[]))
        .collect();
    let ids = publish_all(&alice, drafts).await;
    let jsonl = dir.path().join("bob.jsonl");
    let mut sinks = Sinks::jsonl(Some(&jsonl)).unwrap();
    let mut got = std::collections::HashSet::new();
    for _ in 0..(WAIT.as_millis() / 100) {
        // A member slot frees once the hub sees the dropped streams end.
        if let Err(e) = bob.sync(false, &mut sinks).await {
            tracing::debug!(error = %e, "sync retried");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        got = std::fs::read_to_string(&jsonl)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        if ids.iter().all(|(id, _)| got.contains(id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ids.iter().all(|(id, _)| got.contains(id)),
        "bob-bank received {} of {ITEMS} while the peer stalled",
        got.len()
    );
    assert_eq!(stalled.len(), 2, "the stalled streams were held throughout");
    drop(stalled);
    a.stop().await;
}
