//! Federation reaches the receiving hub's members (issue 20): an item a
//! peer hub forwarded joins the receiving hub's own order, its members'
//! agents verify it against the origin hub's directory (which their hub
//! serves and its own signed directory names the key of), and every sink
//! shows where it came from. Real hubs on real mTLS sockets, real agents.

use std::path::Path;

use isac_e2e::*;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::{publish, retract};
use member_agent::{Agent, SinkSettings, Sinks};
use serde_json::Value;

use super::federation::{
    alice_bob_and_ann, named_hub, peer, three_hubs_peered_both_ways, wait_for, TRIANGLE,
};

pub(crate) fn draft(
    domain: &str,
    tlp: &str,
    audience: &[&str],
    no_forward: bool,
) -> IndicatorDraft {
    IndicatorDraft {
        domain: Some(domain.into()),
        tlp: Some(tlp.into()),
        audience: (!audience.is_empty()).then(|| audience.iter().map(|a| a.to_string()).collect()),
        title: Some(format!("{domain} hosts a credential stealer")),
        no_forward: no_forward.then_some(true),
        ..Default::default()
    }
}

pub(crate) fn lines(jsonl: &Path) -> Vec<Value> {
    std::fs::read_to_string(jsonl)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The JSONL records about statement `id` (its own lines, not retractions of it).
pub(crate) fn records<'a>(all: &'a [Value], id: &str) -> Vec<&'a Value> {
    all.iter().filter(|r| r["id"] == id).collect()
}

/// Syncs `agent` until its JSONL holds a line for each of `ids` (the hub
/// puts a forwarded item in its order as the follower stores it).
pub(crate) async fn sync_until(agent: &Agent, sinks: &mut Sinks, jsonl: &Path, ids: &[&str]) {
    for _ in 0..600 {
        agent.sync(false, sinks).await.unwrap();
        let got = lines(jsonl);
        if ids.iter().all(|id| !records(&got, id).is_empty()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{ids:?} never reached {}", jsonl.display());
}

pub(crate) fn holds(agent: &Agent, id: &str) -> bool {
    agent.store.lock().unwrap().show(id).unwrap().is_some()
}

/// The status `agent` holds `id` under (`valid`, `retracted`, ...);
/// panics unless it holds it.
pub(crate) fn held_status(agent: &Agent, id: &str) -> String {
    let (held, _, _) = agent.store.lock().unwrap().show(id).unwrap().unwrap();
    held.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_item_reaches_the_peer_hubs_member_verified_with_provenance_and_its_retraction_follows(
) {
    let dir = tempfile::tempdir().unwrap();
    let a = named_hub(&dir.path().join("a"), "hub-a").await;
    let b = named_hub(&dir.path().join("b"), "hub-b").await;
    let (alice, _ann_org) = alice_bob_and_ann(&a, dir.path()).await;
    let carol = enrolled_agent(&b, "carol-bank", &dir.path().join("carol")).await;
    peer(&b, &a).await;

    let green = publish(&alice, draft("green.example", "green", &[], false))
        .await
        .unwrap();
    let mut home = Vec::new();
    for d in [
        draft("home.example", "green", &[], true),
        draft("strict.example", "amber+strict", &["org:bob-bank"], false),
        draft("red.example", "red", &["person:bob-bank/ann"], false),
    ] {
        home.push(publish(&alice, d).await.unwrap().id);
    }
    let last = publish(&alice, draft("last.example", "clear", &[], false))
        .await
        .unwrap();
    wait_for(&b, &last.id).await;

    let jsonl = dir.path().join("carol.jsonl");
    let stix = dir.path().join("carol-stix");
    let mut sinks = Sinks::open(SinkSettings {
        stix_dir: Some(stix.clone()),
        ..SinkSettings::jsonl(Some(&jsonl))
    })
    .unwrap();
    sync_until(&carol, &mut sinks, &jsonl, &[&green.id, &last.id]).await;
    let got = lines(&jsonl);
    for id in [&green.id, &last.id] {
        let r = records(&got, id);
        assert_eq!(r.len(), 1, "{id} delivered once: {r:?}");
        let r = r[0];
        assert_eq!(r["signature"]["status"], "verified", "{r}");
        assert_eq!(r["source"], "alice-bank");
        assert_eq!(r["provenance"]["origin_hub"], "hub-a", "{r}");
        assert_eq!(r["provenance"]["origin_org"], "alice-bank", "{r}");
        assert_eq!(
            r["provenance"]["hub_path"],
            serde_json::json!(["hub-a", "hub-b"]),
            "{r}"
        );
        assert!(holds(&carol, id));
    }
    for id in &home {
        assert!(
            records(&got, id).is_empty() && !holds(&carol, id),
            "{id} reached another hub's member"
        );
    }
    // Verified back to its author at hub-a: the envelope held is alice's,
    // byte for byte, and checks against hub-a's directory.
    let (_, _, held_json) = carol
        .store
        .lock()
        .unwrap()
        .show(&green.id)
        .unwrap()
        .unwrap();
    let held = isac_core::Envelope::from_json(&held_json).unwrap();
    alice
        .refresh_directory(&alice.channel().await.unwrap())
        .await
        .unwrap();
    let dir_a = alice.directory().unwrap();
    let verified = isac_core::verify_envelope(&held, |kid| dir_a.record(kid)).unwrap();
    assert_eq!(verified.statement.author(), "alice-bank");
    assert_eq!(verified.statement.id.to_string(), green.id);

    // The STIX bundle: created by alice-bank at hub-a, the path attached.
    let bundles: Vec<_> = std::fs::read_dir(&stix)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(!bundles.is_empty());
    assert_valid_stix(&bundles);
    let bundle: Value = bundles
        .iter()
        .map(|p| serde_json::from_slice::<Value>(&std::fs::read(p).unwrap()).unwrap())
        .find(|b| b.to_string().contains(&green.id))
        .expect("a bundle for the green item");
    let objects = bundle["objects"].as_array().unwrap();
    let identity = objects
        .iter()
        .find(|o| o["type"] == "identity")
        .expect("an identity");
    let indicator = objects
        .iter()
        .find(|o| o["type"] == "indicator")
        .expect("an indicator");
    assert_eq!(indicator["created_by_ref"], identity["id"]);
    assert_eq!(
        identity["id"],
        isac_core::stix::identity_id("alice-bank@hub-a")
    );
    assert_eq!(indicator["x_isac_origin_hub"], "hub-a");
    assert_eq!(
        indicator["x_isac_hub_path"],
        serde_json::json!(["hub-a", "hub-b"])
    );

    // A retraction at hub-a reaches carol's JSONL sink.
    let mut alice_sinks = Sinks::jsonl(Some(&dir.path().join("alice.jsonl"))).unwrap();
    alice.sync(false, &mut alice_sinks).await.unwrap();
    let retraction = retract(&alice, &green.id, "false positive").await.unwrap();
    wait_for(&b, &retraction.id).await;
    sync_until(&carol, &mut sinks, &jsonl, &[&retraction.id]).await;
    let got = lines(&jsonl);
    let r = records(&got, &retraction.id);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["action"], "retract", "{}", r[0]);
    assert_eq!(r[0]["target"], green.id.as_str());
    assert_eq!(r[0]["provenance"]["origin_hub"], "hub-a");
    assert_eq!(held_status(&carol, &green.id), "retracted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_origin_directory_or_a_flipped_byte_is_refused_and_nothing_stored() {
    let dir = tempfile::tempdir().unwrap();
    let a = named_hub(&dir.path().join("a"), "hub-a").await;
    let b = named_hub(&dir.path().join("b"), "hub-b").await;
    let alice = enrolled_agent(&a, "alice-bank", &dir.path().join("alice")).await;
    peer(&b, &a).await;
    let item = publish(&alice, draft("x.example", "green", &[], false))
        .await
        .unwrap();
    wait_for(&b, &item.id).await;

    // hub-b serves a directory of hub-a that does not verify (one byte of
    // it changed): carol refuses the item, stores nothing, and gets it at
    // the next sync once the right directory is served.
    let db = rusqlite::Connection::open(b.data_dir().join("hub.db")).unwrap();
    let pinned: String = db
        .query_row(
            "SELECT directory FROM peer_links WHERE hub_id = 'hub-a'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut env = isac_core::Envelope::from_json(&pinned).unwrap();
    let at = env.payload.len() / 2;
    env.payload[at] ^= 0x20;
    db.execute(
        "UPDATE peer_links SET directory = ?1 WHERE hub_id = 'hub-a'",
        [env.to_json()],
    )
    .unwrap();
    let carol = enrolled_agent(&b, "carol-bank", &dir.path().join("carol")).await;
    let jsonl = dir.path().join("carol.jsonl");
    let mut sinks = Sinks::jsonl(Some(&jsonl)).unwrap();
    let err = carol.sync(false, &mut sinks).await.unwrap_err();
    assert!(err.to_string().contains("hub-a"), "{err}");
    assert!(!holds(&carol, &item.id));
    assert!(records(&lines(&jsonl), &item.id).is_empty());
    db.execute(
        "UPDATE peer_links SET directory = ?1 WHERE hub_id = 'hub-a'",
        [&pinned],
    )
    .unwrap();
    sync_until(&carol, &mut sinks, &jsonl, &[&item.id]).await;
    assert!(holds(&carol, &item.id));

    // A flipped byte in the forwarded envelope as hub-b holds it (written
    // while hub-b is down, so it serves the stored bytes): dave refuses
    // it (its signature does not verify against hub-a's directory, and
    // the leaf is not hub-b's log's) and stores nothing.
    drop(carol);
    let b_dir = b.data_dir().to_owned();
    b.stop().await;
    db.execute(
        "UPDATE statements SET payload = CAST(replace(CAST(payload AS TEXT), 'x.example', 'y.example') AS BLOB)
         WHERE id = ?1",
        [&item.id],
    )
    .unwrap();
    drop(db);
    let b = TestHub::start(&b_dir).await;
    let dave = enrolled_agent(&b, "dave-bank", &dir.path().join("dave")).await;
    let dave_jsonl = dir.path().join("dave.jsonl");
    let mut dave_sinks = Sinks::jsonl(Some(&dave_jsonl)).unwrap();
    match dave.sync(false, &mut dave_sinks).await {
        Err(e) => assert!(e.to_string().contains(&item.id), "{e}"),
        Ok(report) => assert_eq!(report.rejected, 1, "a tampered federated item was accepted"),
    }
    assert!(!holds(&dave, &item.id));
    assert!(records(&lines(&dave_jsonl), &item.id).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triangle_delivers_each_clear_and_green_item_once_to_every_member() {
    let dir = tempfile::tempdir().unwrap();
    let ids = TRIANGLE;
    let hubs = three_hubs_peered_both_ways(dir.path()).await;
    let mut members = Vec::new();
    for (i, h) in hubs.iter().enumerate() {
        let org = format!("member-{i}");
        members.push(enrolled_agent(h, &org, &dir.path().join(&org)).await);
    }
    let mut crossing = Vec::new();
    let mut home = Vec::new();
    for (i, m) in members.iter().enumerate() {
        for tlp in ["clear", "green"] {
            let p = publish(m, draft(&format!("{tlp}{i}.example"), tlp, &[], false))
                .await
                .unwrap();
            crossing.push(p.id);
        }
        let p = publish(m, draft(&format!("home{i}.example"), "green", &[], true))
            .await
            .unwrap();
        home.push((i, p.id));
        let p = publish(
            m,
            draft(
                &format!("strict{i}.example"),
                "amber+strict",
                &[&format!("org:member-{i}")],
                false,
            ),
        )
        .await
        .unwrap();
        home.push((i, p.id));
    }
    // Every hub holds every other hub's items (the last published last).
    for (h, hub) in hubs.iter().enumerate() {
        for (i, m) in members.iter().enumerate() {
            let _ = m;
            if i != h {
                wait_for(hub, &crossing[i * 2 + 1]).await;
            }
        }
    }
    for (i, m) in members.iter().enumerate() {
        let jsonl = dir.path().join(format!("member-{i}.jsonl"));
        let mut sinks = Sinks::jsonl(Some(&jsonl)).unwrap();
        let want: Vec<&str> = crossing.iter().map(String::as_str).collect();
        sync_until(m, &mut sinks, &jsonl, &want).await;
        // Once more: nothing new, nothing twice.
        m.sync(false, &mut sinks).await.unwrap();
        let got = lines(&jsonl);
        for (n, id) in crossing.iter().enumerate() {
            let r = records(&got, id);
            assert_eq!(r.len(), 1, "member-{i}: {id} exactly once");
            let origin = n / 2;
            if origin == i {
                assert!(r[0].get("provenance").is_none(), "{}", r[0]);
            } else {
                assert_eq!(r[0]["provenance"]["origin_hub"], ids[origin]);
                // Straight from the origin, or relayed by the third hub:
                // whichever copy arrived first is the one kept.
                let third = (0..3).find(|&k| k != origin && k != i).unwrap();
                let path = &r[0]["provenance"]["hub_path"];
                assert!(
                    *path == serde_json::json!([ids[origin], ids[i]])
                        || *path == serde_json::json!([ids[origin], ids[third], ids[i]]),
                    "member-{i}: {id} came by {path}"
                );
            }
        }
        for (origin, id) in &home {
            if *origin != i {
                assert!(
                    records(&got, id).is_empty() && !holds(m, id),
                    "member-{i} got {id} of hub {}",
                    ids[*origin]
                );
            }
        }
    }
}
