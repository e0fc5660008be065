//! Witnesses of the hub's log (C2SP tlog-witness) with real processes: a
//! `member-agent witness serve` speaks the protocol's status codes over
//! HTTP, a hub configured with it gets every checkpoint cosigned and serves
//! the cosignatures (gRPC, TAXII `/log/checkpoint`, `hub log checkpoint`),
//! the witness keeps its state across a restart, and two hubs started on
//! copies of one data dir that then diverge (a split view: same size,
//! different roots, same log key) cannot both get its cosignature: real
//! agents requiring the witness ingest from the cosigned one and refuse
//! the other, and an agent that saw both catches the fork. A hub restored
//! from an older backup cannot get a smaller tree cosigned either.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use isac_core::tlog::checkpoint::{self, Checkpoint};
use isac_core::tlog::merkle::{leaf_hash, prove_consistency, HashReader, NodeId, TreeBuilder};
use isac_core::tlog::note::{Ed25519Signer, Ed25519Verifier};
use isac_core::tlog::witness::{add_checkpoint_request, open_cosigned, CosignatureVerifier};
use isac_core::tlog::Hash;
use isac_e2e::*;

use crate::tlog::{agent_cli, jsonl_lines, root_b64, status_json};
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::publish;
use member_agent::Agent;

// === a log written by the test, to drive the witness directly ===

/// A whole Merkle tree in memory, for checkpoints and proofs.
struct Tree(HashMap<NodeId, Hash>, TreeBuilder);

impl Tree {
    fn new(prefix: &str, n: u64) -> Tree {
        let mut t = Tree(HashMap::new(), TreeBuilder::new());
        t.grow(prefix, n);
        t
    }

    fn grow(&mut self, prefix: &str, n: u64) {
        for _ in 0..n {
            let i = self.1.size();
            for (id, h) in self
                .1
                .append(leaf_hash(format!("{prefix}{i}").as_bytes()))
                .unwrap()
            {
                self.0.insert(id, h);
            }
        }
    }

    fn signed(&self, log: &Ed25519Signer, origin: &str) -> String {
        Checkpoint {
            origin: origin.into(),
            size: self.1.size(),
            root: self.1.root(),
            extensions: vec![],
        }
        .sign(&[log])
        .unwrap()
    }
}

impl HashReader for Tree {
    type Error = std::convert::Infallible;
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        Ok(nodes.iter().map(|n| self.0[n]).collect())
    }
}

fn text(r: &HttpResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[tokio::test]
async fn the_witness_answers_add_checkpoint_with_the_spec_status_codes() {
    let dir = tempfile::tempdir().unwrap();
    let origin = "test.example/log";
    let log = Ed25519Signer::new(origin, isac_core::SigningKey::generate().unwrap()).unwrap();
    let log_vkey = log.verifier().unwrap().to_vkey();
    let witness = WitnessProcess::start(&dir.path().join("w"), &[&log_vkey]);
    let wv = CosignatureVerifier::from_vkey(&witness.vkey).unwrap();
    let lv = log.verifier().unwrap();

    // First contact: old 0, no proof: cosigned.
    let mut tree = Tree::new("a", 5);
    let five = tree.signed(&log, origin);
    let r = witness
        .add_checkpoint(add_checkpoint_request(0, &[], &five).as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let cosigned = format!("{five}{}", text(&r));
    let opened = open_cosigned(
        cosigned.as_bytes(),
        origin,
        &lv,
        std::slice::from_ref(&wv),
        1,
    )
    .expect("the answer is the witness's cosignature of the checkpoint");
    assert_eq!(opened.checkpoint.size, 5);

    tree.grow("a", 4);
    let nine = tree.signed(&log, origin);
    let proof = prove_consistency(&tree, 5, 9).unwrap();
    // A wrong old size: 409 with the size it holds, as text/x.tlog.size.
    let r = witness
        .add_checkpoint(add_checkpoint_request(3, &[], &nine).as_bytes())
        .await;
    assert_eq!(r.status, 409, "{}", text(&r));
    assert_eq!(r.header("content-type"), Some("text/x.tlog.size"));
    assert_eq!(text(&r), "5\n");
    // A bad proof: 422, and nothing changes.
    let mut bad = proof.clone();
    bad[0][0] ^= 1;
    let r = witness
        .add_checkpoint(add_checkpoint_request(5, &bad, &nine).as_bytes())
        .await;
    assert_eq!(r.status, 422, "{}", text(&r));
    let r = witness
        .add_checkpoint(add_checkpoint_request(5, &proof[1..], &nine).as_bytes())
        .await;
    assert_eq!(r.status, 422, "{}", text(&r));
    // Old size past the checkpoint: 400.
    let r = witness
        .add_checkpoint(add_checkpoint_request(10, &[], &nine).as_bytes())
        .await;
    assert_eq!(r.status, 400, "{}", text(&r));
    // The right proof: cosigned.
    let r = witness
        .add_checkpoint(add_checkpoint_request(5, &proof, &nine).as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert!(open_cosigned(
        format!("{nine}{}", text(&r)).as_bytes(),
        origin,
        &lv,
        std::slice::from_ref(&wv),
        1
    )
    .is_ok());
    // A log it does not witness: 404. Its origin with another key, or its
    // key over altered text: 403.
    let other = Ed25519Signer::new(
        "other.example/log",
        isac_core::SigningKey::generate().unwrap(),
    )
    .unwrap();
    let r = witness
        .add_checkpoint(
            add_checkpoint_request(0, &[], &tree.signed(&other, "other.example/log")).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 404, "{}", text(&r));
    let impostor = Ed25519Signer::new(origin, isac_core::SigningKey::generate().unwrap()).unwrap();
    let r = witness
        .add_checkpoint(add_checkpoint_request(9, &[], &tree.signed(&impostor, origin)).as_bytes())
        .await;
    assert_eq!(r.status, 403, "{}", text(&r));
    let altered = nine.replacen("\n9\n", "\n10\n", 1);
    let r = witness
        .add_checkpoint(add_checkpoint_request(9, &[], &altered).as_bytes())
        .await;
    assert_eq!(r.status, 403, "{}", text(&r));
    // Malformed bodies: 400; more than 63 proof lines: 400.
    for body in [
        b"old 9".to_vec(),
        b"hello\n\n".to_vec(),
        add_checkpoint_request(9, &vec![[7u8; 32]; 64], &nine).into_bytes(),
    ] {
        let r = witness.add_checkpoint(&body).await;
        assert_eq!(r.status, 400, "{}", text(&r));
    }
    // An oversized body is refused on its declared length, unread.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(witness.addr).await.unwrap();
        tcp.write_all(
            b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut raw = Vec::new();
        let _ = tcp.read_to_end(&mut raw).await;
        let head = String::from_utf8_lossy(&raw);
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    }
    // ... and so is one that streams past the limit without a length.
    let mut chunked = Vec::new();
    chunked.extend_from_slice(
        b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..3 {
        chunked.extend_from_slice(format!("{:x}\r\n", 32 * 1024).as_bytes());
        chunked.extend_from_slice(&vec![b'x'; 32 * 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(witness.addr).await.unwrap();
        let _ = tcp.write_all(&chunked).await;
        let mut raw = Vec::new();
        let _ = tcp.read_to_end(&mut raw).await;
        let head = String::from_utf8_lossy(&raw);
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    }
    // None of the refusals moved it: still at 9.
    let r = witness
        .add_checkpoint(add_checkpoint_request(0, &[], &nine).as_bytes())
        .await;
    assert_eq!((r.status, text(&r)), (409, "9\n".to_owned()));
}

// === a hub and its witnesses ===

fn draft(name: &str) -> IndicatorDraft {
    IndicatorDraft {
        purl: Some(format!("pkg:npm/{name}@1.0.0")),
        tlp: Some("green".into()),
        title: Some(name.into()),
        ..Default::default()
    }
}

fn hub_log_key(data_dir: &Path) -> String {
    let (ok, out, err) = run(bin("hub")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["log", "key"]));
    assert!(ok, "hub log key: {err}");
    out.trim().to_owned()
}

/// hub.toml: fast checkpoints, and these witnesses.
fn configure(data_dir: &Path, witnesses: &[&WitnessProcess]) {
    let entries: Vec<String> = witnesses
        .iter()
        .map(|w| format!("{{ url = \"{}\", vkey = \"{}\" }}", w.url(), w.vkey))
        .collect();
    std::fs::create_dir_all(data_dir).unwrap();
    std::fs::write(
        data_dir.join("hub.toml"),
        format!(
            "checkpoint_interval_ms = 50\n\n[log]\nwitnesses = [{}]\n",
            entries.join(", ")
        ),
    )
    .unwrap();
}

/// The served checkpoint (the first may take a checkpoint interval).
async fn served_checkpoint(agent: &Agent) -> pb::Checkpoint {
    let started = std::time::Instant::now();
    loop {
        match pb::log_client::LogClient::new(agent.channel().await.unwrap())
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
        {
            Ok(c) => return c.into_inner(),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                assert!(started.elapsed() < Duration::from_secs(30), "{s:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(s) => panic!("GetCheckpoint: {s:?}"),
        }
    }
}

/// The served checkpoint once it covers `size` leaves and carries a
/// cosignature from `witness`.
async fn cosigned_at_least(
    agent: &Agent,
    origin: &str,
    log: &Ed25519Verifier,
    witness: &CosignatureVerifier,
    size: u64,
) -> checkpoint::SignedCheckpoint {
    let started = std::time::Instant::now();
    loop {
        let c = served_checkpoint(agent).await;
        if let Ok(o) = open_cosigned(
            c.signed_note.as_bytes(),
            origin,
            log,
            std::slice::from_ref(witness),
            1,
        ) {
            if o.checkpoint.size >= size {
                return o;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no checkpoint of {size} leaves cosigned by the witness; last served:\n{}",
            c.signed_note
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_hub_serves_checkpoints_cosigned_by_a_member_witness_that_keeps_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let hub = TestHub::start(&data).await;
    let addr = hub.addr.to_string();
    let origin = hub.config.log_origin();
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    // A member's agent witnesses the hub: by default it trusts the log key
    // of its verified key directory.
    let wdir = dir.path().join("witness-bank");
    let _ = enrolled_agent(&hub, "witness-bank", &wdir).await;
    // It reads the key directory from this hub (in this runtime): start it
    // off the async thread.
    let wd = wdir.clone();
    let witness = tokio::task::spawn_blocking(move || WitnessProcess::start(&wd, &[]))
        .await
        .unwrap();
    assert!(
        witness.vkey.starts_with("witness-bank.isac-witness+"),
        "{}",
        witness.vkey
    );
    let (ok, printed, err) = run(bin("member-agent")
        .arg("--state-dir")
        .arg(&wdir)
        .args(["witness", "key"]));
    assert!(ok, "{err}");
    assert_eq!(
        printed.trim(),
        witness.vkey,
        "`witness key` prints the served key"
    );
    hub.stop().await;
    configure(&data, &[&witness]);
    let hub = TestHub::start_at(&data, &addr).await;
    let lv = Ed25519Verifier::from_vkey(&hub_log_key(&data)).unwrap();
    let wv = CosignatureVerifier::from_vkey(&witness.vkey).unwrap();

    for n in 0..3 {
        publish(&alice, draft(&format!("w-{n}"))).await.unwrap();
    }
    let first = cosigned_at_least(&alice, &origin, &lv, &wv, 3).await;
    assert_eq!(first.checkpoint.size, 3);

    // The same cosigned note on TAXII and from `hub log checkpoint`, local
    // and --remote (an agent identity, through the Log service).
    let (user, password) = hub.add_api_key("alice-bank", None).await;
    let taxii = hub
        .taxii("GET", "/log/checkpoint", Some((&user, &password)))
        .await;
    assert_eq!(taxii.status, 200);
    assert!(open_cosigned(&taxii.body, &origin, &lv, std::slice::from_ref(&wv), 1).is_ok());
    let (ok, local, err) = run(bin("hub")
        .arg("--data-dir")
        .arg(&data)
        .args(["log", "checkpoint"]));
    assert!(ok, "{err}");
    assert!(
        open_cosigned(local.as_bytes(), &origin, &lv, std::slice::from_ref(&wv), 1).is_ok(),
        "{local}"
    );
    // The CLI calls this hub, served on this runtime: off its thread.
    let alice_dir = dir.path().join("alice");
    let remote_log = |what: &'static str| {
        let alice_dir = alice_dir.clone();
        tokio::task::spawn_blocking(move || {
            run(bin("hub")
                .arg("--remote")
                .arg(&alice_dir)
                .args(["log", what]))
        })
    };
    let (ok, remote, err) = remote_log("checkpoint").await.unwrap();
    assert!(ok, "{err}");
    assert!(
        open_cosigned(
            remote.as_bytes(),
            &origin,
            &lv,
            std::slice::from_ref(&wv),
            1
        )
        .is_ok(),
        "{remote}"
    );
    let (ok, remote_key, err) = remote_log("key").await.unwrap();
    assert!(ok, "{err}");
    assert_eq!(remote_key.trim(), lv.to_vkey());
    let (_, metrics) = hub.scrape_metrics().await;
    assert!(
        metrics.contains(&format!(
            "isac_log_witness_up{{witness=\"{}\"}} 1",
            wv_name(&wv)
        )),
        "{metrics}"
    );

    // Restarted on its address, the witness remembers what it cosigned
    // (asked from size 0 it answers 409 with its size), and the hub, which
    // kept running, gets its next checkpoints cosigned again.
    let witness_addr = witness.addr.to_string();
    let witness_url = witness.url();
    witness.terminate();
    // Down, it delays no publish, and the hub shows it down (metrics) and
    // behind (`hub status`).
    publish(&alice, draft("while-down")).await.unwrap();
    let started = std::time::Instant::now();
    loop {
        let (_, metrics) = hub.scrape_metrics().await;
        if metrics.contains(&format!(
            "isac_log_witness_up{{witness=\"{}\"}} 0",
            wv_name(&wv)
        )) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the hub never showed the witness down: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ok, status, err) = run(bin("hub").arg("--data-dir").arg(&data).arg("status"));
    assert!(ok, "{err}");
    assert!(
        status.contains(&format!(
            "log_witness: {} {} cosigned_size=3",
            wv_name(&wv),
            witness_url
        )),
        "{status}"
    );
    assert!(status.contains("log_checkpoint_size: 4"), "{status}");
    let wd = wdir.clone();
    let witness =
        tokio::task::spawn_blocking(move || WitnessProcess::start_on(&wd, &[], &witness_addr))
            .await
            .unwrap();
    let log_signed = hub_note_without_cosignatures(&first.signed_note);
    let r = witness
        .add_checkpoint(add_checkpoint_request(0, &[], &log_signed).as_bytes())
        .await;
    assert_eq!(r.status, 409, "{}", text(&r));
    assert_eq!(r.header("content-type"), Some("text/x.tlog.size"));
    assert_eq!(
        text(&r),
        "3\n",
        "the restarted witness holds what it cosigned"
    );
    for n in 3..6 {
        publish(&alice, draft(&format!("w-{n}"))).await.unwrap();
    }
    let later = cosigned_at_least(&alice, &origin, &lv, &wv, 7).await;
    assert_eq!(later.checkpoint.size, 7);
    hub.stop().await;
}

fn wv_name(v: &CosignatureVerifier) -> String {
    v.to_vkey().split('+').next().unwrap().to_owned()
}

/// The log-signed note alone (the witness's lines removed).
fn hub_note_without_cosignatures(note: &str) -> String {
    let (text, sigs) = note.split_once("\n\n").unwrap();
    let first = sigs.lines().next().unwrap();
    format!("{text}\n\n{first}\n")
}

/// An agent for the same member on another hub (same CA, same members: a
/// copy of the data dir): its state dir copied, pointed at `url`.
fn agent_for(state_dir: &Path, copy: &Path, url: &str) -> Agent {
    let (ok, _, err) = run(std::process::Command::new("cp")
        .arg("-a")
        .arg(state_dir)
        .arg(copy));
    assert!(ok, "{err}");
    point_at(copy, url);
    Agent::open(&member_agent::StateDir::new(copy)).unwrap()
}

/// The agent in `state_dir` talks to the hub at `url` from now on (the
/// hubs share a CA and members: copies of one data dir).
fn point_at(state_dir: &Path, url: &str) {
    let path = state_dir.join("identity.json");
    let mut identity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    identity["hub_url"] = url.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&identity).unwrap()).unwrap();
}

/// agent.toml: accept only checkpoints cosigned by this witness.
fn require_witness(state_dir: &Path, witness: &WitnessProcess) {
    std::fs::write(
        state_dir.join("agent.toml"),
        format!("[log]\nwitnesses = [\"{}\"]\nquorum = 1\n", witness.vkey),
    )
    .unwrap();
}

fn root_of(c: &pb::Checkpoint) -> Hash {
    let n = isac_core::tlog::note::parse(c.signed_note.as_bytes()).unwrap();
    Checkpoint::parse(&n.text).unwrap().root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_copies_of_one_data_dir_cannot_both_get_the_witness_cosignature() {
    let dir = tempfile::tempdir().unwrap();
    let data_a = dir.path().join("hub-a");
    let data_b = dir.path().join("hub-b");
    // The operator reads the log key (this prepares the data dir) and hands
    // it to the witness; the witness's key goes into hub.toml.
    let log_vkey = hub_log_key(&data_a);
    let witness = WitnessProcess::start(&dir.path().join("w"), &[&log_vkey]);
    configure(&data_a, &[&witness]);
    let lv = Ed25519Verifier::from_vkey(&log_vkey).unwrap();
    let wv = CosignatureVerifier::from_vkey(&witness.vkey).unwrap();

    let hub_a = TestHub::start(&data_a).await;
    let addr_a = hub_a.addr.to_string();
    let origin = hub_a.config.log_origin();
    let alice = enrolled_agent(&hub_a, "alice-bank", &dir.path().join("alice")).await;
    // Members of the shared history, before the copy: bob will read from
    // A and carol from B, both requiring the witness; dave requires no
    // witness and reads from A, then from B.
    let (bob, carol, dave) = (
        dir.path().join("bob"),
        dir.path().join("carol"),
        dir.path().join("dave"),
    );
    for (org, state) in [
        ("bob-bank", &bob),
        ("carol-bank", &carol),
        ("dave-bank", &dave),
    ] {
        drop(enrolled_agent(&hub_a, org, state).await);
    }
    require_witness(&bob, &witness);
    require_witness(&carol, &witness);
    for n in 0..3 {
        publish(&alice, draft(&format!("common-{n}")))
            .await
            .unwrap();
    }
    cosigned_at_least(&alice, &origin, &lv, &wv, 3).await;
    hub_a.stop().await;
    // The same database twice: same log key, same tree of 3.
    let (ok, _, err) = run(std::process::Command::new("cp")
        .arg("-a")
        .arg(&data_a)
        .arg(&data_b));
    assert!(ok, "{err}");

    // They diverge: A appends one item and the witness cosigns it...
    let hub_a = TestHub::start_at(&data_a, &addr_a).await;
    publish(&alice, draft("only-on-a")).await.unwrap();
    let a4 = cosigned_at_least(&alice, &origin, &lv, &wv, 4).await;
    assert_eq!(a4.checkpoint.size, 4);
    // ... B appends another at the same position.
    let hub_b = TestHub::start(&data_b).await;
    let alice_b = agent_for(
        &dir.path().join("alice"),
        &dir.path().join("alice-b"),
        &hub_b.url(),
    );
    publish(&alice_b, draft("only-on-b")).await.unwrap();
    let b4 = loop {
        let c = served_checkpoint(&alice_b).await;
        if c.tree_size >= 4 {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Same size, same log key, different roots: a split view.
    assert_eq!(b4.tree_size, 4);
    let b4_opened = checkpoint::open(b4.signed_note.as_bytes(), &origin, &[&lv])
        .expect("B's checkpoint is validly signed by the same log key");
    assert_ne!(b4_opened.checkpoint.root, a4.checkpoint.root);
    assert_ne!(root_of(&b4), a4.checkpoint.root);
    // B's hub tried and failed: the witness is down as far as B knows, and
    // B serves no cosignature of it, so an agent requiring the witness
    // refuses B's checkpoint.
    let wname = wv_name(&wv);
    let started = std::time::Instant::now();
    loop {
        let (_, metrics) = hub_b.scrape_metrics().await;
        if metrics.contains(&format!("isac_log_witness_up{{witness=\"{wname}\"}} 0")) {
            assert!(metrics.contains(&format!(
                "isac_log_witness_failures_total{{witness=\"{wname}\"}}"
            )));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "hub B never saw the witness refuse: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b_served = served_checkpoint(&alice_b).await;
    assert_eq!(b_served.tree_size, 4);
    assert!(matches!(
        open_cosigned(
            b_served.signed_note.as_bytes(),
            &origin,
            &lv,
            std::slice::from_ref(&wv),
            1
        ),
        Err(isac_core::tlog::witness::WitnessError::NoQuorum { got: 0, quorum: 1 })
    ));

    // Real agents requiring the witness: bob, on A, ingests the cosigned
    // history; carol, on B, is refused, ingests nothing of it and holds
    // the alert.
    let a_root = root_b64(&a4.checkpoint.root);
    let b_root = root_b64(&b4_opened.checkpoint.root);
    let bob_jsonl = dir.path().join("bob.jsonl");
    let (code, _, err) = agent_cli(&bob, &["sync", "--jsonl", bob_jsonl.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{err}");
    let s = status_json(&bob).await;
    assert_eq!(s["items"], 4, "{s}");
    assert!(s["alert"].is_null(), "{s}");
    assert_eq!(s["checkpoint"]["size"], 4, "{s}");
    assert_eq!(s["checkpoint"]["root"], a_root.as_str(), "{s}");
    assert!(jsonl_lines(&bob_jsonl)
        .iter()
        .any(|l| l["value"].as_str().is_some_and(|v| v.contains("only-on-a"))));

    point_at(&carol, &hub_b.url());
    let carol_jsonl = dir.path().join("carol.jsonl");
    let carol_sync = ["sync", "--jsonl", carol_jsonl.to_str().unwrap()];
    let (code, _, err) = agent_cli(&carol, &carol_sync).await;
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("NO WITNESS QUORUM"), "{err}");
    assert!(
        err.contains(&format!("size 4 root {b_root}")),
        "names B's checkpoint: {err}"
    );
    assert!(err.contains("cosigned by 0"), "{err}");
    assert!(err.contains("quorum = 1"), "{err}");
    let s = status_json(&carol).await;
    assert_eq!(s["items"], 0, "{s}");
    assert_eq!(s["alert"]["kind"], "no-quorum", "{s}");
    assert_eq!(s["alert"]["offered"]["root"], b_root.as_str(), "{s}");
    let (code, out, _) = agent_cli(&carol, &["status"]).await;
    assert_eq!(code, Some(0));
    assert!(
        out.contains("LOG ALERT") && out.contains("NO WITNESS QUORUM"),
        "{out}"
    );
    let lines = jsonl_lines(&carol_jsonl);
    assert!(
        !lines
            .iter()
            .any(|l| l["value"].as_str().is_some_and(|v| v.contains("only-on-b"))),
        "nothing of B's history reaches the sink: {lines:?}"
    );
    assert!(lines
        .iter()
        .any(|l| l["action"] == "log-alert" && l["alert"]["kind"] == "no-quorum"));
    // It stays stopped.
    let (code, _, err) = agent_cli(&carol, &carol_sync).await;
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(status_json(&carol).await["items"], 0);

    // Without any witness, an agent that saw A and is then shown B (same
    // size, another root) catches the fork itself, naming both.
    let (code, _, err) = agent_cli(&dave, &["sync"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(status_json(&dave).await["items"], 4);
    point_at(&dave, &hub_b.url());
    let (code, _, err) = agent_cli(&dave, &["sync"]).await;
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("FORK"), "{err}");
    assert!(err.contains(&format!("size 4 root {a_root}")), "{err}");
    assert!(err.contains(&format!("size 4 root {b_root}")), "{err}");
    let s = status_json(&dave).await;
    assert_eq!(s["alert"]["kind"], "fork", "{s}");
    assert_eq!(s["items"], 4, "{s}");
    assert_eq!(s["checkpoint"]["root"], a_root.as_str(), "{s}");

    // Asked directly, the witness refuses B's checkpoint: 409 from either
    // size (from 3 it holds 4; at 4 the root differs)...
    let b_note = b4.signed_note.clone();
    let proof_3_4: Vec<Hash> = pb::log_client::LogClient::new(alice_b.channel().await.unwrap())
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_size: 3,
            second_size: 4,
        })
        .await
        .unwrap()
        .into_inner()
        .hashes
        .iter()
        .map(|h| h.as_slice().try_into().unwrap())
        .collect();
    let r = witness
        .add_checkpoint(add_checkpoint_request(3, &proof_3_4, &b_note).as_bytes())
        .await;
    assert_eq!((r.status, text(&r)), (409, "4\n".to_owned()));
    let r = witness
        .add_checkpoint(add_checkpoint_request(4, &[], &b_note).as_bytes())
        .await;
    assert_eq!(r.status, 409, "{}", text(&r));
    // ... and 422 once B grows on: its proof from 4 cannot start at A's root.
    publish(&alice_b, draft("b-goes-on")).await.unwrap();
    let b5 = loop {
        let c = served_checkpoint(&alice_b).await;
        if c.tree_size >= 5 {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let proof_4_5: Vec<Hash> = pb::log_client::LogClient::new(alice_b.channel().await.unwrap())
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_size: 4,
            second_size: b5.tree_size,
        })
        .await
        .unwrap()
        .into_inner()
        .hashes
        .iter()
        .map(|h| h.as_slice().try_into().unwrap())
        .collect();
    let r = witness
        .add_checkpoint(add_checkpoint_request(4, &proof_4_5, &b5.signed_note).as_bytes())
        .await;
    assert_eq!(r.status, 422, "{}", text(&r));
    // A, the history the witness saw first, still gets cosigned.
    publish(&alice, draft("a-goes-on")).await.unwrap();
    cosigned_at_least(&alice, &origin, &lv, &wv, 5).await;
    hub_b.stop().await;
    hub_a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_restored_from_an_older_backup_cannot_get_the_witness_to_cosign_a_smaller_tree() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let log_vkey = hub_log_key(&data);
    let witness = WitnessProcess::start(&dir.path().join("w"), &[&log_vkey]);
    configure(&data, &[&witness]);
    let lv = Ed25519Verifier::from_vkey(&log_vkey).unwrap();
    let wv = CosignatureVerifier::from_vkey(&witness.vkey).unwrap();
    let wname = wv_name(&wv);
    let hub = TestHub::start(&data).await;
    let addr = hub.addr.to_string();
    let origin = hub.config.log_origin();
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = dir.path().join("bob");
    drop(enrolled_agent(&hub, "bob-bank", &bob).await);
    require_witness(&bob, &witness);
    for n in 0..3 {
        publish(&alice, draft(&format!("before-backup-{n}")))
            .await
            .unwrap();
    }
    cosigned_at_least(&alice, &origin, &lv, &wv, 3).await;
    let backup = dir.path().join("backup");
    let (ok, out, err) = run(bin("hub")
        .arg("--data-dir")
        .arg(&data)
        .arg("backup")
        .arg(&backup));
    assert!(ok, "{out} {err}");
    for n in 0..2 {
        publish(&alice, draft(&format!("after-backup-{n}")))
            .await
            .unwrap();
    }
    let five = cosigned_at_least(&alice, &origin, &lv, &wv, 5).await;
    assert_eq!(five.checkpoint.size, 5);
    let (code, _, err) = agent_cli(&bob, &["sync"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(status_json(&bob).await["checkpoint"]["size"], 5);

    // The disk is lost; the older backup is restored and the hub goes on.
    hub.stop().await;
    let restored = dir.path().join("restored");
    let (ok, out, err) = run(bin("hub")
        .arg("--data-dir")
        .arg(&restored)
        .arg("restore")
        .arg(&backup));
    assert!(ok, "{out} {err}");
    configure(&restored, &[&witness]);
    let hub = TestHub::start_at(&restored, &addr).await;
    publish(&alice, draft("different-after-restore"))
        .await
        .unwrap();
    // The witness answers the hub's checkpoint of 4 with 409 and its size
    // 5; the hub cannot prove 5 -> 4, shows the witness down, and the size
    // the witness holds, past its own log.
    let started = std::time::Instant::now();
    loop {
        let (_, metrics) = hub.scrape_metrics().await;
        if metrics.contains(&format!("isac_log_witness_up{{witness=\"{wname}\"}} 0"))
            && metrics.contains(&format!(
                "isac_log_witness_cosigned_size{{witness=\"{wname}\"}} 5"
            ))
        {
            assert!(
                !metrics.contains(&format!(
                    "isac_log_witness_failures_total{{witness=\"{wname}\"}} 0\n"
                )),
                "{metrics}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the restored hub never showed the witness ahead of it: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It serves its checkpoint of 4 without a cosignature...
    let served = served_checkpoint(&alice).await;
    assert_eq!(served.tree_size, 4);
    assert!(matches!(
        open_cosigned(
            served.signed_note.as_bytes(),
            &origin,
            &lv,
            std::slice::from_ref(&wv),
            1
        ),
        Err(isac_core::tlog::witness::WitnessError::NoQuorum { got: 0, quorum: 1 })
    ));
    // ... and asked directly, the witness refuses it from any size: 409 and
    // the 5 it cosigned.
    let note = hub_note_without_cosignatures(&served.signed_note);
    let proof_3_4: Vec<Hash> = pb::log_client::LogClient::new(alice.channel().await.unwrap())
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_size: 3,
            second_size: 4,
        })
        .await
        .unwrap()
        .into_inner()
        .hashes
        .iter()
        .map(|h| h.as_slice().try_into().unwrap())
        .collect();
    for (old, proof) in [(3, &proof_3_4[..]), (0, &[][..]), (4, &[][..])] {
        let r = witness
            .add_checkpoint(add_checkpoint_request(old, proof, &note).as_bytes())
            .await;
        assert_eq!((r.status, text(&r)), (409, "5\n".to_owned()), "from {old}");
    }
    // An agent requiring the witness, that had seen 5, refuses the 4,
    // naming both checkpoints, and keeps what it held.
    let (code, _, err) = agent_cli(&bob, &["sync"]).await;
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("NO WITNESS QUORUM"), "{err}");
    assert!(
        err.contains(&format!("size 5 root {}", root_b64(&five.checkpoint.root))),
        "{err}"
    );
    assert!(err.contains("size 4 root "), "{err}");
    let s = status_json(&bob).await;
    assert_eq!(s["items"], 5, "{s}");
    assert_eq!(s["checkpoint"]["size"], 5, "{s}");
    hub.stop().await;
}

#[tokio::test]
async fn a_hub_reaches_a_witness_over_https_trusting_the_ca_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let log_vkey = hub_log_key(&data);
    // The member's own CA and a certificate for localhost.
    let (ca, ca_key) = hub::pki::create_ca("bank-a witness CA").unwrap();
    let (cert, key) = hub::pki::issue_server_cert(&ca, &ca_key, &["localhost".into()]).unwrap();
    let pem = |name: &str, bytes: Vec<u8>| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let ca_pem = pem("ca.pem", ca.to_pem().unwrap());
    let cert_pem = pem("witness.crt", cert.to_pem().unwrap());
    let key_pem = pem("witness.key", key.private_key_to_pem_pkcs8().unwrap());
    let witness = WitnessProcess::start_with(
        &dir.path().join("w"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--log",
            &log_vkey,
            "--tls-cert",
            cert_pem.to_str().unwrap(),
            "--tls-key",
            key_pem.to_str().unwrap(),
        ],
    );
    let url = format!("https://localhost:{}", witness.addr.port());
    std::fs::write(
        data.join("hub.toml"),
        format!(
            "checkpoint_interval_ms = 50\n\n[log]\nwitnesses = [{{ url = \"{url}\", vkey = \"{}\", ca = \"{}\" }}]\n",
            witness.vkey,
            ca_pem.display()
        ),
    )
    .unwrap();
    let hub = TestHub::start(&data).await;
    let origin = hub.config.log_origin();
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    publish(&alice, draft("over-tls")).await.unwrap();
    let lv = Ed25519Verifier::from_vkey(&log_vkey).unwrap();
    let wv = CosignatureVerifier::from_vkey(&witness.vkey).unwrap();
    let c = cosigned_at_least(&alice, &origin, &lv, &wv, 1).await;
    assert_eq!(c.checkpoint.size, 1);
    hub.stop().await;
}
