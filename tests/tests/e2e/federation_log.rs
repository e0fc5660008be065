//! Federation with the transparency log (issue 20 with issue 19): an item
//! crosses with its origin hub's signed log checkpoint and its inclusion
//! proof in it, and the follower stores (and so forwards) only what it
//! proved is in the origin's log, with the log key the origin's signed
//! directory lists. Two real `hub serve` processes peered, then the origin
//! replaced by a hostile Peering server on its own identity and keys.

use std::sync::{Arc, Mutex};

use isac_core::federation::Provenance;
use isac_core::SigningKey;
use isac_e2e::*;
use isac_proto::v1 as pb;
use member_agent::publish::publish;
use member_agent::StateDir;

use crate::federation::{draft, named_hub};
use crate::federation_peers::{
    caught_up, directory_of, item, origin_proof, proven_item, serve_peering, signed, Hostile,
    LoggedHub,
};

/// The reason a refused item is logged with.
const NOT_PROVEN: &str = "not proven in its origin's log";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_stores_only_items_proven_in_the_origins_log() {
    let dir = tempfile::tempdir().unwrap();
    let a = named_hub(&dir.path().join("a"), "hub-a").await;
    let b = LoggedHub::start(&dir.path().join("b"), "hub-b").await;
    let alice_dir = dir.path().join("alice");
    let alice = enrolled_agent(&a, "alice-bank", &alice_dir).await;
    b.follow(&a, "hub-b").await;

    // From the real hub-a: each item crosses with hub-a's checkpoint and
    // its inclusion proof, and hub-b holds it with its log position.
    let mut real = Vec::new();
    for domain in ["first.example", "second.example"] {
        real.push(
            publish(&alice, draft(domain, "green", &[]))
                .await
                .unwrap()
                .id,
        );
    }
    for id in &real {
        b.wait_for(id).await;
    }
    let held = b.received().await;
    let mut positions = Vec::new();
    for it in &held {
        let p = Provenance::decode(&it.provenance).unwrap();
        positions.push(p.origin_log_index.expect("an origin log position"));
    }
    positions.sort();
    positions.dedup();
    assert_eq!(positions.len(), 2, "{positions:?}");
    assert!(!b.log_text().contains(NOT_PROVEN), "{}", b.log_text());
    // And what hub-b holds is what hub-a logged there: hub-a's own Log
    // service, asked by its member, proves each envelope at its position.
    let mut log = pb::log_client::LogClient::new(alice.channel().await.unwrap());
    let mut checkpoint = None;
    for _ in 0..(crate::federation::WAIT.as_millis() / 50) {
        let c = log
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .unwrap()
            .into_inner();
        if c.tree_size > *positions.last().unwrap() {
            checkpoint = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let checkpoint = checkpoint.expect("hub-a's log covers both items");
    let note = isac_core::tlog::note::parse(checkpoint.signed_note.as_bytes()).unwrap();
    let root = isac_core::tlog::checkpoint::Checkpoint::parse(&note.text)
        .unwrap()
        .root;
    for it in &held {
        let index = Provenance::decode(&it.provenance)
            .unwrap()
            .origin_log_index
            .unwrap();
        let proof: Vec<isac_core::tlog::Hash> = log
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                leaf_index: index,
                tree_size: checkpoint.tree_size,
            })
            .await
            .unwrap()
            .into_inner()
            .hashes
            .iter()
            .map(|h| h.as_slice().try_into().unwrap())
            .collect();
        let envelope = isac_core::Envelope::from_json(&it.envelope_json).unwrap();
        isac_core::tlog::merkle::verify_inclusion(
            index,
            checkpoint.tree_size,
            &isac_core::tlog::envelope_leaf_hash(&envelope),
            &proof,
            &root,
        )
        .expect("the item hub-b holds is at its position in hub-a's log");
    }

    // hub-a turns hostile: same address, TLS identity, directory and log
    // keys (its data dir), its signed directory (which lists its log key).
    let directory = directory_of(&a, &b.data).await;
    let now = a.clock.now();
    let a_addr = a.addr;
    let a_config = a.config.clone();
    a.stop().await;
    let (material, _) = hub::prepare(&a_config).unwrap();
    let alice_key = StateDir::new(&alice_dir).load().unwrap().signing_key;
    let origin = a_config.log_origin();
    let at = |index: Option<u64>| Provenance::at_origin("hub-a", index).canonical_bytes();
    let item_of = |domain: &str| signed(&alice_key, "alice-bank", domain, now);
    // Every item below is alice's, validly signed: only the log proof is wrong.
    let (bare, bare_id) = item_of("bare.example");
    let (unplaced, unplaced_id) = item_of("unplaced.example");
    let (moved, moved_id) = item_of("moved.example");
    let (forged, forged_id) = item_of("forged-checkpoint.example");
    let (swapped, swapped_id) = item_of("swapped.example");
    let (good, good_id) = item_of("good.example");
    let (stale, stale_id) = item_of("stale.example");
    let other_log_key = SigningKey::generate().unwrap();
    let hostile = Hostile {
        hub_id: "hub-a".into(),
        directory: Arc::new(Mutex::new(Some(directory))),
        scripts: Arc::new(Mutex::new(vec![vec![
            // (a) no checkpoint, no proof.
            item(&bare, at(Some(990)), b"c1"),
            // (b) a proof, but no position in the provenance.
            proven_item(
                &unplaced,
                at(None),
                b"c2",
                origin_proof(&material.log_key, &origin, &unplaced, 991, 1000),
            ),
            // (c) proven at 992, claimed at 993.
            proven_item(
                &moved,
                at(Some(993)),
                b"c3",
                origin_proof(&material.log_key, &origin, &moved, 992, 1000),
            ),
            // (d) a checkpoint signed by a key hub-a's directory never listed.
            proven_item(
                &forged,
                at(Some(994)),
                b"c4",
                origin_proof(&other_log_key, &origin, &forged, 994, 1000),
            ),
            // (e) the proof of another leaf at that position.
            proven_item(
                &swapped,
                at(Some(995)),
                b"c5",
                origin_proof(&material.log_key, &origin, &good, 995, 1000),
            ),
            // An honest one: stored.
            proven_item(
                &good,
                at(Some(999)),
                b"c6",
                origin_proof(&material.log_key, &origin, &good, 999, 1000),
            ),
            // (f) a valid proof in a checkpoint older than the one now held.
            proven_item(
                &stale,
                at(Some(10)),
                b"c7",
                origin_proof(&material.log_key, &origin, &stale, 10, 500),
            ),
            caught_up(b"c-end"),
        ]])),
        ..Default::default()
    };
    let stop = serve_peering(a_addr, &material, hostile.clone()).await;

    b.wait_for(&good_id).await;
    b.wait_for_log("is older than the one held (1000)", 1).await;
    let log = b.log_text();
    for (what, needle) in [
        (
            "(a) bare",
            "the item carries no origin checkpoint and inclusion proof",
        ),
        (
            "(b) unplaced",
            "the item carries no position in the origin hub's log",
        ),
        (
            "(c) moved",
            "the item is not in the origin hub's log at index 993",
        ),
        ("(d) forged checkpoint", "origin checkpoint refused"),
        (
            "(e) swapped",
            "the item is not in the origin hub's log at index 995",
        ),
        (
            "(f) stale",
            "origin checkpoint of size 500 is older than the one held (1000)",
        ),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(NOT_PROVEN) && l.contains(needle))
            .unwrap_or_else(|| panic!("{what}: no refusal naming `{needle}` in:\n{log}"));
        assert!(line.contains("hub-a"), "{line}");
    }

    // Exactly the real items and the honest one are stored.
    let mut stored: Vec<String> = b.received().await.into_iter().map(|i| i.id).collect();
    stored.sort();
    let mut want = real.clone();
    want.push(good_id.clone());
    want.sort();
    assert_eq!(stored, want);
    for refused in [
        &bare_id,
        &unplaced_id,
        &moved_id,
        &forged_id,
        &swapped_id,
        &stale_id,
    ] {
        assert!(!stored.contains(refused), "{refused} stored");
    }
    let _ = stop.send(());
}
