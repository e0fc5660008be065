//! The hub's transparency log against a real hub: every statement kind is a
//! leaf, the checkpoint verifies with the vkey the real `hub log key`
//! prints, inclusion of every delivered item and consistency between
//! checkpoints hold under an RFC 9162 verifier written here (sections
//! 2.1.3.2 and 2.1.4.2, independently of `isac_core::tlog`), bad proof
//! requests get the right codes, a tampered envelope fails inclusion, and a
//! restarted hub continues the same tree.

use std::time::Duration;

use isac_core::tlog::checkpoint;
use isac_core::tlog::note::Ed25519Verifier;
use isac_e2e::*;
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::{publish, publish_prepared};
use member_agent::Agent;
use tonic::Code;

type Hash = [u8; 32];

// === RFC 9162, written from the text ===

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = openssl::sha::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finish()
}

fn leaf_hash(leaf: &[u8]) -> Hash {
    sha256(&[&[0x00], leaf])
}

fn node(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// RFC 9162 2.1.3.2.
fn inclusion_ok(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// RFC 9162 2.1.4.2.
fn consistency_ok(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    let mut path: Vec<Hash> = Vec::new();
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let Some((start, rest)) = path.split_first() else {
        return false;
    };
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*start, *start);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node(c, &fr);
            sr = node(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *first_root && sr == *second_root && snode == 0
}

/// MTH by the RFC's definition (2.1.1), for the verifier's own self-test.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// PATH (2.1.3.1), to check the verifier above against the definition.
fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n == 1 {
        return Vec::new();
    }
    let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
    if m < k {
        let mut p = path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}

#[test]
fn the_test_verifier_accepts_the_rfc_paths_and_refuses_altered_ones() {
    let leaves: Vec<Hash> = (0..20u8).map(|i| leaf_hash(&[i])).collect();
    for size in 1..=leaves.len() {
        let root = mth(&leaves[..size]);
        for m in 0..size {
            let p = path(m, &leaves[..size]);
            assert!(inclusion_ok(m as u64, size as u64, &leaves[m], &p, &root));
            assert!(!inclusion_ok(
                m as u64,
                size as u64,
                &leaf_hash(b"x"),
                &p,
                &root
            ));
            if let Some(first) = p.first() {
                let mut bad = p.clone();
                bad[0] = node(first, first);
                assert!(!inclusion_ok(
                    m as u64,
                    size as u64,
                    &leaves[m],
                    &bad,
                    &root
                ));
            }
        }
    }
}

// === against a real hub ===

fn draft(name: &str) -> IndicatorDraft {
    IndicatorDraft {
        purl: Some(format!("pkg:npm/{name}@1.0.0")),
        tlp: Some("green".into()),
        title: Some(name.into()),
        ..Default::default()
    }
}

async fn derived(agent: &Agent, anonymous: bool, body: isac_core::Body) -> String {
    let prepared = member_agent::draft::new_statement(
        agent.org_id(),
        isac_core::time::format_rfc3339(member_agent::now()),
        isac_core::Tlp::Green,
        &[],
        anonymous,
        body,
    )
    .unwrap();
    publish_prepared(agent, &prepared).await.unwrap().id
}

fn log_client(
    channel: tonic::transport::Channel,
) -> pb::log_client::LogClient<tonic::transport::Channel> {
    pb::log_client::LogClient::new(channel)
}

/// The latest checkpoint once it covers `size` leaves: (size, root, note).
async fn checkpoint_at_least(
    agent: &Agent,
    vkey: &str,
    origin: &str,
    size: u64,
) -> (u64, Hash, String) {
    let verifier = Ed25519Verifier::from_vkey(vkey).unwrap();
    let started = std::time::Instant::now();
    loop {
        let got = log_client(agent.channel().await.unwrap())
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await;
        if let Ok(c) = got {
            let c = c.into_inner();
            let opened = checkpoint::open(c.signed_note.as_bytes(), origin, &[&verifier])
                .expect("the checkpoint verifies with the log's vkey");
            assert_eq!(opened.checkpoint.size, c.tree_size);
            if c.tree_size >= size {
                return (c.tree_size, opened.checkpoint.root, c.signed_note);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no checkpoint of {size} leaves"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every item `agent` is delivered, with its log index and leaf hash.
async fn delivered(agent: &Agent) -> Vec<(String, u64, Hash)> {
    let mut stream = pb::subscriber_client::SubscriberClient::new(agent.channel().await.unwrap())
        .subscribe(pb::SubscribeRequest {
            after_sequence: 0,
            follow: false,
            filter: None,
            include_expired: true,
            cursor: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(msg) = stream.message().await.unwrap() {
        match msg.event {
            Some(pb::subscribe_response::Event::Item(d)) => {
                let env: isac_core::Envelope = d.envelope.unwrap().into();
                let statement = isac_core::Statement::from_canonical_bytes(&env.payload).unwrap();
                let index = d.log_index.expect("every delivery carries its log index");
                out.push((
                    statement.id.to_string(),
                    index,
                    leaf_hash(env.to_json().as_bytes()),
                ));
            }
            Some(pb::subscribe_response::Event::CaughtUp(_)) => break,
            _ => {}
        }
    }
    out
}

async fn inclusion(agent: &Agent, index: u64, size: u64) -> Result<Vec<Hash>, tonic::Status> {
    log_client(agent.channel().await.unwrap())
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf_index: index,
            tree_size: size,
        })
        .await
        .map(|p| hashes(p.into_inner()))
}

async fn consistency(agent: &Agent, first: u64, second: u64) -> Result<Vec<Hash>, tonic::Status> {
    log_client(agent.channel().await.unwrap())
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_size: first,
            second_size: second,
        })
        .await
        .map(|p| hashes(p.into_inner()))
}

fn hashes(p: pb::Proof) -> Vec<Hash> {
    p.hashes
        .iter()
        .map(|h| h.as_slice().try_into().unwrap())
        .collect()
}

fn hub_log_key(data_dir: &std::path::Path) -> String {
    let (ok, out, err) = run(bin("hub")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["log", "key"]));
    assert!(ok, "hub log key: {err}");
    out.trim().to_owned()
}

#[tokio::test]
async fn every_item_is_provably_in_one_growing_log_that_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let hub = TestHub::start(&data).await;
    let origin = hub.config.log_origin();
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let vkey = hub_log_key(&data);
    assert!(vkey.starts_with(&format!("{origin}+")), "{vkey}");

    // Several kinds: indicators, an anonymous sighting, a retraction.
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            publish(&alice, draft(&format!("pkg-{n}")))
                .await
                .unwrap()
                .id,
        );
    }
    let target: uuid::Uuid = ids[0].parse().unwrap();
    let sighting = isac_core::Body::Sighting(isac_core::statement::Sighting {
        indicator: target,
        count: 2,
        first_seen: isac_core::time::format_rfc3339(member_agent::now()),
        last_seen: isac_core::time::format_rfc3339(member_agent::now()),
    });
    ids.push(derived(&bob, true, sighting).await);
    let retraction = isac_core::Body::Retraction(isac_core::statement::Retraction {
        target: ids[1].parse().unwrap(),
        reason: "withdrawn".into(),
    });
    ids.push(derived(&alice, false, retraction).await);
    let first_count = ids.len() as u64;
    assert_eq!(
        hub.query_i64("SELECT count(*) FROM log_leaves"),
        first_count as i64
    );

    let (size1, root1, note1) = checkpoint_at_least(&alice, &vkey, &origin, first_count).await;
    assert_eq!(size1, first_count);
    let (ok, out, err) = run(bin("hub")
        .arg("--data-dir")
        .arg(&data)
        .args(["log", "checkpoint"]));
    assert!(ok, "{err}");
    assert!(out.starts_with(&format!("{origin}\n")), "{out}");

    // Inclusion of every item alice is delivered (bob's anonymous sighting
    // as the hub-signed copy), under the test's own verifier.
    let seen = delivered(&alice).await;
    assert_eq!(seen.len(), ids.len());
    let mut indices: Vec<u64> = seen.iter().map(|s| s.1).collect();
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..first_count).collect::<Vec<_>>(),
        "dense, in hub order"
    );
    for (id, index, leaf) in &seen {
        let proof = inclusion(&bob, *index, size1).await.unwrap();
        assert!(
            inclusion_ok(*index, size1, leaf, &proof, &root1),
            "{id} at {index}"
        );
        assert!(!inclusion_ok(
            *index,
            size1,
            &leaf_hash(b"other"),
            &proof,
            &root1
        ));
    }

    // More items, a second checkpoint consistent with the first.
    for n in 5..10 {
        publish(&alice, draft(&format!("pkg-{n}"))).await.unwrap();
    }
    let (size2, root2, _) = checkpoint_at_least(&alice, &vkey, &origin, 12).await;
    assert_eq!(size2, 12);
    let proof = consistency(&bob, size1, size2).await.unwrap();
    assert!(consistency_ok(size1, size2, &root1, &root2, &proof));
    assert!(!consistency_ok(size1, size2, &root2, &root2, &proof));
    let leaves: Vec<Hash> = {
        let mut all = delivered(&alice).await;
        all.sort_by_key(|s| s.1);
        all.iter().map(|s| s.2).collect()
    };
    assert_eq!(mth(&leaves), root2);
    for first in 1..=size2 {
        let proof = consistency(&bob, first, size2).await.unwrap();
        assert!(
            consistency_ok(
                first,
                size2,
                &mth(&leaves[..first as usize]),
                &root2,
                &proof
            ),
            "{first}"
        );
    }

    // Wrong and oversized requests.
    assert_eq!(
        inclusion(&bob, 0, size2 + 1).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        inclusion(&bob, size2, size2).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        inclusion(&bob, 0, 0).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        consistency(&bob, 0, size2).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        consistency(&bob, size2, size1).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        consistency(&bob, size1, u64::MAX).await.unwrap_err().code(),
        Code::FailedPrecondition
    );

    // The same hashes as C2SP tiles on the TAXII listener, authenticated.
    let (user, password) = hub.add_api_key("bob-bank", None).await;
    let basic = Some((user.as_str(), password.as_str()));
    assert_eq!(hub.taxii("GET", "/log/checkpoint", None).await.status, 401);
    let served = hub.taxii("GET", "/log/checkpoint", basic).await;
    assert_eq!(served.status, 200);
    let (_, _, note2) = checkpoint_at_least(&alice, &vkey, &origin, size2).await;
    assert_eq!(String::from_utf8(served.body).unwrap(), note2);
    let tile = hub.taxii("GET", "/log/tile/0/000.p/12", basic).await;
    assert_eq!(tile.status, 200);
    assert_eq!(
        tile.header("cache-control"),
        Some("no-cache"),
        "partial tile"
    );
    let tiled: Vec<Hash> = tile
        .body
        .chunks(32)
        .map(|c| c.try_into().unwrap())
        .collect();
    assert_eq!(tiled, leaves, "tile 0/000.p/12 holds the 12 leaf hashes");
    let proof = inclusion(&bob, 0, 2).await.unwrap();
    assert_eq!(proof, vec![tiled[1]], "the proof's hash is the tile's");
    for missing in [
        "/log/tile/0/000.p/13",
        "/log/tile/0/000",
        "/log/tile/1/000.p/1",
        "/log/tile/0/0.p/12",
    ] {
        assert_eq!(
            hub.taxii("GET", missing, basic).await.status,
            404,
            "{missing}"
        );
    }

    // Restart: the same tree continues, consistent with what members saw.
    let addr = hub.addr.to_string();
    hub.stop().await;
    let hub = TestHub::start_at(&data, &addr).await;
    publish(&alice, draft("after-restart")).await.unwrap();
    let (size3, root3, _) = checkpoint_at_least(&alice, &vkey, &origin, 13).await;
    assert_eq!(size3, 13);
    let proof = consistency(&bob, size2, size3).await.unwrap();
    assert!(consistency_ok(size2, size3, &root2, &root3, &proof));
    let proof = consistency(&bob, size1, size3).await.unwrap();
    assert!(consistency_ok(size1, size3, &root1, &root3, &proof));
    // A byte changed in a stored envelope (read after the restart, so from
    // the database): the item delivered no longer proves inclusion (its
    // leaf hash was fixed when it was stored).
    let victim = ids[2].clone();
    {
        let conn = rusqlite::Connection::open(data.join("hub.db")).unwrap();
        let changed = conn
            .execute(
                "UPDATE statements SET payload = CAST(replace(CAST(payload AS TEXT), 'pkg-2', 'pkg-X') AS BLOB) WHERE id = ?1",
                [&victim],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    let tampered = delivered(&alice).await;
    let (_, index, leaf) = tampered.iter().find(|s| s.0 == victim).unwrap().clone();
    let proof = inclusion(&bob, index, size3).await.unwrap();
    assert!(
        !inclusion_ok(index, size3, &leaf, &proof, &root3),
        "a tampered item fails inclusion"
    );

    assert!(note1.starts_with(&format!("{origin}\n{size1}\n")));
    hub.stop().await;
}

// === agents verify the log (issue 19, the member's side) ===

/// The `member-agent` binary, off the runtime's threads (the hub under
/// test serves on them).
pub(crate) async fn agent_cli(
    state: &std::path::Path,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let mut cmd = bin("member-agent");
    cmd.arg("--state-dir").arg(state).args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) async fn status_json(state: &std::path::Path) -> serde_json::Value {
    let (code, out, err) = agent_cli(state, &["status", "--json"]).await;
    assert_eq!(code, Some(0), "status: {err}");
    serde_json::from_str(&out).unwrap()
}

fn b64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

pub(crate) fn root_b64(root: &Hash) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(root)
}

pub(crate) fn jsonl_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_prove_every_item_they_ingest_and_log_proof_verifies_independently() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let hub = TestHub::start(&data).await;
    let origin = hub.config.log_origin();
    let vkey = hub_log_key(&data);
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(
            publish(&alice, draft(&format!("proven-{n}")))
                .await
                .unwrap()
                .id,
        );
    }
    let sighting = isac_core::Body::Sighting(isac_core::statement::Sighting {
        indicator: ids[0].parse().unwrap(),
        count: 1,
        first_seen: isac_core::time::format_rfc3339(member_agent::now()),
        last_seen: isac_core::time::format_rfc3339(member_agent::now()),
    });
    let anonymous = derived(&bob, true, sighting).await;

    // Both sync: every item is proven before it is stored.
    let mut sinks = member_agent::Sinks::jsonl(Some(&dir.path().join("bob.jsonl"))).unwrap();
    let report = bob.sync(false, &mut sinks).await.unwrap();
    assert_eq!(report.new, 5);
    let trusted = bob
        .trusted_checkpoint()
        .unwrap()
        .expect("a verified checkpoint");
    assert!(trusted.size >= 5, "{}", trusted.size);
    let mut sinks = member_agent::Sinks::jsonl(Some(&dir.path().join("alice.jsonl"))).unwrap();
    assert_eq!(alice.sync(false, &mut sinks).await.unwrap().new, 5);

    // `log proof --json`: exactly the documented keys, and it verifies under
    // the test's own RFC 9162 verifier and the vkey `hub log key` prints.
    let bob_dir = dir.path().join("bob");
    let (code, out, err) = agent_cli(&bob_dir, &["log", "proof", &ids[2], "--json"]).await;
    assert_eq!(code, Some(0), "{err}");
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut keys: Vec<&str> = p.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "checkpoint",
            "leaf",
            "leaf_index",
            "proof",
            "root",
            "tree_size"
        ]
    );
    let (index, size) = (
        p["leaf_index"].as_u64().unwrap(),
        p["tree_size"].as_u64().unwrap(),
    );
    let leaf = b64(p["leaf"].as_str().unwrap());
    let root: Hash = b64(p["root"].as_str().unwrap()).try_into().unwrap();
    let proof: Vec<Hash> = p["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| b64(h.as_str().unwrap()).try_into().unwrap())
        .collect();
    assert!(inclusion_ok(index, size, &leaf_hash(&leaf), &proof, &root));
    let leaf_env = isac_core::Envelope::from_json(std::str::from_utf8(&leaf).unwrap()).unwrap();
    let statement = isac_core::Statement::from_canonical_bytes(&leaf_env.payload).unwrap();
    assert_eq!(statement.id.to_string(), ids[2], "the leaf is the item");
    let verifier = Ed25519Verifier::from_vkey(&vkey).unwrap();
    let opened = checkpoint::open(
        p["checkpoint"].as_str().unwrap().as_bytes(),
        &origin,
        &[&verifier],
    )
    .expect("the checkpoint in the proof is signed by the log key");
    assert_eq!(
        (opened.checkpoint.size, opened.checkpoint.root),
        (size, root)
    );
    // core's verifier agrees.
    isac_core::tlog::merkle::verify_inclusion(index, size, &leaf_hash(&leaf), &proof, &root)
        .unwrap();

    // Bob's own anonymous sighting: the log holds the hub-signed copy,
    // which alice proved; bob is told why he cannot.
    let (code, _, err) = agent_cli(&bob_dir, &["log", "proof", &anonymous, "--json"]).await;
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("anonymous"), "{err}");
    let (code, out, err) =
        agent_cli(&dir.path().join("alice"), &["log", "proof", &anonymous]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("verified"), "{out}");
    let (code, _, err) = agent_cli(&bob_dir, &["log", "proof", "no-such-item"]).await;
    assert_eq!(code, Some(64), "{err}");

    // More items, then `log verify` re-audits everything held at the new
    // checkpoint, consistent with the one before.
    publish(&alice, draft("proven-later")).await.unwrap();
    checkpoint_at_least(&alice, &vkey, &origin, 6).await;
    let (code, out, err) = agent_cli(&bob_dir, &["log", "verify", "--json"]).await;
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["proven"], 4, "{v}");
    assert_eq!(v["own_anonymous"], 1, "{v}");
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["previous"]["size"], trusted.size, "{v}");
    assert!(v["checkpoint"]["size"].as_u64().unwrap() >= 6, "{v}");
    let s = status_json(&bob_dir).await;
    assert_eq!(s["checkpoint"]["size"], v["checkpoint"]["size"], "{s}");
    assert!(s["alert"].is_null(), "{s}");

    // The batch call: proofs in the order asked, bounded.
    let size = v["checkpoint"]["size"].as_u64().unwrap();
    let mut log = log_client(bob.channel().await.unwrap());
    let asked: Vec<u64> = (0..size).rev().collect();
    let proofs = log
        .get_inclusion_proofs(pb::GetInclusionProofsRequest {
            tree_size: size,
            leaf_indices: asked.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .proofs;
    assert_eq!(proofs.len(), asked.len());
    for (i, p) in asked.iter().zip(proofs) {
        assert_eq!(hashes(p), inclusion(&bob, *i, size).await.unwrap());
    }
    for (indices, tree_size, code) in [
        (vec![0; 1025], size, Code::InvalidArgument),
        (vec![0, size], size, Code::InvalidArgument),
        (vec![0], size + 1, Code::FailedPrecondition),
        (vec![0], 0, Code::InvalidArgument),
    ] {
        let got = log
            .get_inclusion_proofs(pb::GetInclusionProofsRequest {
                tree_size,
                leaf_indices: indices,
            })
            .await
            .unwrap_err();
        assert_eq!(got.code(), code, "{}", got.message());
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_restored_from_an_older_backup_is_caught_and_nothing_after_it_is_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let hub = TestHub::start(&data).await;
    let origin = hub.config.log_origin();
    let vkey = hub_log_key(&data);
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob_dir = dir.path().join("bob");
    let _bob = enrolled_agent(&hub, "bob-bank", &bob_dir).await;
    for n in 0..3 {
        publish(&alice, draft(&format!("before-backup-{n}")))
            .await
            .unwrap();
    }
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
    let jsonl = dir.path().join("bob.jsonl");
    let jsonl_arg = jsonl.to_str().unwrap();
    let (code, _, err) = agent_cli(&bob_dir, &["sync", "--jsonl", jsonl_arg]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("5 new"), "{err}");
    let before = status_json(&bob_dir).await;
    assert_eq!(before["checkpoint"]["size"], 5, "{before}");
    let trusted_root = before["checkpoint"]["root"].as_str().unwrap().to_owned();

    // The disk is lost; the operator restores the older backup and the hub
    // goes on with different items.
    let addr = hub.addr.to_string();
    hub.stop().await;
    let restored = dir.path().join("restored");
    let (ok, out, err) = run(bin("hub")
        .arg("--data-dir")
        .arg(&restored)
        .arg("restore")
        .arg(&backup));
    assert!(ok, "{out} {err}");
    let hub = TestHub::start_at(&restored, &addr).await;
    publish(&alice, draft("different-after-restore"))
        .await
        .unwrap();
    let (size, root, note) = checkpoint_at_least(&alice, &vkey, &origin, 4).await;
    assert_eq!(size, 4);

    let (code, _, err) = agent_cli(&bob_dir, &["sync", "--jsonl", jsonl_arg]).await;
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("ROLLBACK"), "{err}");
    assert!(
        err.contains(&format!("size 5 root {trusted_root}")),
        "names the trusted checkpoint: {err}"
    );
    assert!(
        err.contains(&format!("size 4 root {}", root_b64(&root))),
        "names the new checkpoint: {err}"
    );
    // Nothing after it, and it stays stopped.
    let after = status_json(&bob_dir).await;
    assert_eq!(after["items"], 5, "{after}");
    assert_eq!(after["alert"]["kind"], "rollback", "{after}");
    assert_eq!(
        after["checkpoint"]["size"], 5,
        "the trusted checkpoint stays"
    );
    let (code, out, _) = agent_cli(&bob_dir, &["status"]).await;
    assert_eq!(code, Some(0));
    assert!(
        out.contains("LOG ALERT") && out.contains("ROLLBACK"),
        "{out}"
    );
    let lines = jsonl_lines(&jsonl);
    assert!(
        !lines
            .iter()
            .any(|l| l["value"].as_str().is_some_and(|v| v.contains("different"))),
        "nothing after the rollback reaches the sink"
    );
    let alert = lines
        .iter()
        .find(|l| l["action"] == "log-alert")
        .expect("the alert is an event in the sink");
    assert_eq!(alert["alert"]["kind"], "rollback");
    assert_eq!(alert["alert"]["trusted"]["size"], 5);
    assert_eq!(alert["alert"]["offered"]["size"], 4);
    let (code, _, err) = agent_cli(&bob_dir, &["sync", "--jsonl", jsonl_arg]).await;
    assert_eq!(code, Some(3), "still stopped: {err}");
    assert_eq!(status_json(&bob_dir).await["items"], 5);

    // The coordinator decides to go on with the restored log: the operator
    // hands bob its checkpoint, and bob ingests again from there.
    let file = dir.path().join("accepted.checkpoint");
    std::fs::write(&file, &note).unwrap();
    let (code, _, err) = agent_cli(
        &bob_dir,
        &["log", "accept", "--checkpoint", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("was size 5") && err.contains("now size 4"),
        "{err}"
    );
    // The accepted history is read from its start: the 3 items bob held
    // are proven and recognised, the one the old history never had is new.
    let (code, _, err) = agent_cli(&bob_dir, &["sync", "--jsonl", jsonl_arg]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("1 new, 3 already held"), "{err}");
    let s = status_json(&bob_dir).await;
    assert!(s["alert"].is_null(), "{s}");
    assert_eq!(s["items"], 6, "{s}");
    let (code, out, err) = agent_cli(&bob_dir, &["log", "verify", "--json"]).await;
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["proven"].as_u64(), v["without_position"].as_u64()),
        (Some(4), Some(2)),
        "the 2 items only the lost history had stay held, unprovable: {v}"
    );
    // A forged checkpoint is not accepted.
    std::fs::write(&file, note.replacen("\n4\n", "\n9\n", 1)).unwrap();
    let (code, _, err) = agent_cli(
        &bob_dir,
        &["log", "accept", "--checkpoint", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, Some(64), "{err}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_item_fails_inclusion_and_signature_and_the_alert_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let hub = TestHub::start(&data).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let victim = publish(&alice, draft("evil-pkg")).await.unwrap().id;
    publish(&alice, draft("second")).await.unwrap();
    let addr = hub.addr.to_string();
    hub.stop().await;
    {
        let conn = rusqlite::Connection::open(data.join("hub.db")).unwrap();
        let changed = conn
            .execute(
                "UPDATE statements SET payload = CAST(replace(CAST(payload AS TEXT), 'evil-pkg', 'safe-pkg') AS BLOB) WHERE id = ?1",
                [&victim],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    let hub = TestHub::start_at(&data, &addr).await;
    let jsonl = dir.path().join("bob.jsonl");
    let mut sinks = member_agent::Sinks::jsonl(Some(&jsonl)).unwrap();
    let err = bob.sync(false, &mut sinks).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, member_agent::AgentError::LogAlert(_)),
        "{message}"
    );
    assert!(message.contains("INCLUSION FAILED"), "{message}");
    assert!(message.contains(&victim), "{message}");
    assert!(message.contains("inclusion failed"), "{message}");
    assert!(message.contains("signature failed"), "{message}");
    let alert = bob.log_alert().unwrap().expect("persisted");
    assert_eq!(alert.kind, "inclusion");
    assert_eq!(alert.items.len(), 1);
    assert!(alert.items[0].signature.is_some());
    assert_eq!(bob.store.lock().unwrap().count_items().unwrap(), 0);
    let lines = jsonl_lines(&jsonl);
    assert_eq!(lines.len(), 1, "only the alert: {lines:?}");
    assert_eq!(lines[0]["action"], "log-alert");
    drop(bob);
    let (code, out, _) = agent_cli(&dir.path().join("bob"), &["status"]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("INCLUSION FAILED"), "{out}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_nobody_cosigned_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let hub = TestHub::start(&data).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob_dir = dir.path().join("bob");
    let _bob = enrolled_agent(&hub, "bob-bank", &bob_dir).await;
    publish(&alice, draft("needs-a-witness")).await.unwrap();
    let witness = isac_core::tlog::witness::Cosigner::new(
        "witness.example/w1",
        isac_core::SigningKey::generate().unwrap(),
    )
    .unwrap()
    .verifier()
    .unwrap()
    .to_vkey();
    let config = bob_dir.join("agent.toml");
    // A quorum that could never be met is bad config (exit 64).
    std::fs::write(
        &config,
        format!("[log]\nwitnesses = [\"{witness}\"]\nquorum = 2\n"),
    )
    .unwrap();
    let (code, _, err) = agent_cli(&bob_dir, &["sync"]).await;
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("quorum"), "{err}");
    std::fs::write(
        &config,
        format!("[log]\nwitnesses = [\"{witness}\"]\nquorum = 1\n"),
    )
    .unwrap();
    let jsonl = dir.path().join("bob.jsonl");
    let (code, _, err) = agent_cli(&bob_dir, &["sync", "--jsonl", jsonl.to_str().unwrap()]).await;
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("NO WITNESS QUORUM"), "{err}");
    assert!(err.contains("cosigned by 0"), "{err}");
    assert!(err.contains("quorum = 1"), "{err}");
    let s = status_json(&bob_dir).await;
    assert_eq!(s["items"], 0, "{s}");
    assert_eq!(s["alert"]["kind"], "no-quorum", "{s}");
    assert_eq!(s["quorum"], 1);
    hub.stop().await;
}

/// With a checkpoint interval of a minute, a caller asking for a
/// checkpoint of `min_size` leaves gets one as soon as the leaves exist
/// (the hub signs sooner for it), and an agent stores what it was just
/// delivered without waiting for the interval; a size past the log's
/// leaves is answered with the latest at once instead of held.
#[tokio::test]
async fn a_checkpoint_is_signed_on_demand_for_a_caller_waiting_for_its_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hub.toml"), "checkpoint_interval_ms = 60000\n").unwrap();
    let hub = TestHub::start(&data).await;
    let origin = hub.config.log_origin();
    let vkey = hub_log_key(&data);
    let verifier = Ed25519Verifier::from_vkey(&vkey).unwrap();
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let ask = |min_size: u64| {
        let alice = &alice;
        async move {
            log_client(alice.channel().await.unwrap())
                .get_checkpoint(pb::GetCheckpointRequest { min_size })
                .await
        }
    };
    // Nothing published: no checkpoint, and asking for one of 1 leaf is
    // answered at once (there is no leaf to sign for).
    let none = ask(1).await.unwrap_err();
    assert_eq!(none.code(), tonic::Code::FailedPrecondition, "{none:?}");

    publish(&alice, draft("on-demand-0")).await.unwrap();
    let first = ask(1).await.unwrap().into_inner();
    assert_eq!(
        first.tree_size, 1,
        "signed for the waiting caller, not after a minute"
    );
    let opened = checkpoint::open(first.signed_note.as_bytes(), &origin, &[&verifier]).unwrap();
    assert_eq!(opened.checkpoint.size, 1);

    for n in 1..3 {
        publish(&alice, draft(&format!("on-demand-{n}")))
            .await
            .unwrap();
    }
    // Without min_size: the latest there is, at once (still 1).
    assert_eq!(ask(0).await.unwrap().into_inner().tree_size, 1);
    assert_eq!(ask(3).await.unwrap().into_inner().tree_size, 3);
    // Past the leaves: the latest, not held.
    assert_eq!(ask(1_000).await.unwrap().into_inner().tree_size, 3);

    // An agent proves and stores what it is delivered without waiting for
    // the interval (its wait for a covering checkpoint is 30 s at most).
    publish(&alice, draft("on-demand-3")).await.unwrap();
    let mut sinks = member_agent::Sinks::jsonl(Some(&dir.path().join("bob.jsonl"))).unwrap();
    let report = bob.sync(false, &mut sinks).await.unwrap();
    assert_eq!(report.new, 4);
    assert_eq!(bob.trusted_checkpoint().unwrap().unwrap().size, 4);
}
