//! Relaying through a third hub (issue 20): in a line hub-a - hub-b -
//! hub-c (hub-a and hub-c not peered) CLEAR and GREEN items travel on
//! through hub-b, once, verified by hub-c's members back to their author
//! at hub-a; in a triangle each hub's members get each item once whichever
//! way it came first, retractions and revisions too; and a hub that
//! hub-a removed gets nothing more of hub-a's, neither directly nor
//! through the third hub. Real hubs on real mTLS sockets, real agents.

use std::path::Path;

use isac_core::directory::{FederatedOrigin, KeyDirectory};
use isac_core::federation::Provenance;
use isac_core::membership::StatusChange;
use isac_e2e::*;
use member_agent::publish::{publish, publish_envelope, retract};
use member_agent::{Agent, Sinks};

use super::federation::{received, three_hubs, wait_for};
use super::federation_members::{draft, held_status, holds, lines, records, sync_until};

/// The key that signs `origin`'s directory, as `follower` pinned it at
/// `hub peer add`.
fn directory_key_of(follower: &TestHub, origin: &str) -> FederatedOrigin {
    let der = std::fs::read(
        hub::grpc::peer_enroll::peer_dir(follower.data_dir(), origin).join("hub-directory.pub"),
    )
    .unwrap();
    FederatedOrigin::new(origin, &der).unwrap()
}

/// `agent`'s hub's signed directory, fetched now.
async fn hub_directory(agent: &Agent) -> KeyDirectory {
    agent
        .refresh_directory(&agent.channel().await.unwrap())
        .await
        .unwrap();
    agent.directory().unwrap()
}

/// Every JSONL record about `id` in `jsonl` is verified, from `author` at
/// `origin`, and there is exactly one.
fn delivered_once(jsonl: &Path, id: &str, author: &str, origin: &str) -> serde_json::Value {
    let got = lines(jsonl);
    let r = records(&got, id);
    assert_eq!(
        r.len(),
        1,
        "{id} delivered once to {}: {r:?}",
        jsonl.display()
    );
    let r = r[0].clone();
    assert_eq!(r["signature"]["status"], "verified", "{r}");
    assert_eq!(r["source"], author, "{r}");
    assert_eq!(r["provenance"]["origin_hub"], origin, "{r}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_relays_clear_and_green_through_the_middle_hub_once_verified_to_the_author() {
    let dir = tempfile::tempdir().unwrap();
    let hubs = three_hubs(dir.path(), &[(0, 1), (1, 2)]).await;
    let (a, b, c) = (&hubs[0], &hubs[1], &hubs[2]);
    let alice = enrolled_agent(a, "alice-bank", &dir.path().join("alice")).await;
    let carol = enrolled_agent(c, "carol-bank", &dir.path().join("carol")).await;

    let green = publish(&alice, draft("green.example", "green", &[], false))
        .await
        .unwrap();
    let home = publish(&alice, draft("home.example", "green", &[], true))
        .await
        .unwrap();
    let amber = publish(&alice, draft("amber.example", "amber", &[], false))
        .await
        .unwrap();
    let last = publish(&alice, draft("last.example", "clear", &[], false))
        .await
        .unwrap();
    wait_for(c, &last.id).await;
    // And the other way: carol's item reaches hub-a through hub-b.
    let from_c = publish(&carol, draft("from-c.example", "green", &[], false))
        .await
        .unwrap();
    wait_for(a, &from_c.id).await;

    // hub-c holds hub-a's CLEAR and GREEN items, once each, from hub-b,
    // with hub-b in the path; nothing no-forward or AMBER left hub-a.
    let at_c = received(c).await;
    let mut ids: Vec<&str> = at_c.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    let mut want = vec![green.id.as_str(), last.id.as_str()];
    want.sort();
    assert_eq!(ids, want, "hub-c: each relayable item of hub-a's once");
    for item in &at_c {
        assert_eq!(item.origin_hub, "hub-a");
        assert_eq!(item.from_peer, "hub-b");
        let p = Provenance::decode(&item.provenance).unwrap();
        assert_eq!(p.hub_path, ["hub-a", "hub-b", "hub-c"]);
    }
    for kept in [&home.id, &amber.id] {
        for h in [b, c] {
            assert!(
                !received(h).await.iter().any(|i| &i.id == kept),
                "{kept} left hub-a"
            );
        }
    }
    let at_a = received(a).await;
    let back = at_a.iter().find(|i| i.id == from_c.id).unwrap();
    assert_eq!(
        Provenance::decode(&back.provenance).unwrap().hub_path,
        ["hub-c", "hub-b", "hub-a"]
    );
    assert!(
        !at_a.iter().any(|i| i.origin_hub == "hub-a"),
        "hub-a's own items never come back to it"
    );

    // hub-c's signed directory lists hub-a under `federated` with the key
    // hub-b pinned for it, and serves hub-a's directory to its members.
    let dir_c = hub_directory(&carol).await;
    let listed = dir_c
        .federated_origin("hub-a")
        .expect("hub-c lists hub-a under federated");
    assert_eq!(listed.key_id, directory_key_of(b, "hub-a").key_id);

    // carol's agent verifies each back to alice-bank at hub-a.
    let jsonl = dir.path().join("carol.jsonl");
    let mut sinks = Sinks::jsonl(Some(&jsonl)).unwrap();
    sync_until(&carol, &mut sinks, &jsonl, &[&green.id, &last.id]).await;
    for id in [&green.id, &last.id] {
        let r = delivered_once(&jsonl, id, "alice-bank", "hub-a");
        assert_eq!(
            r["provenance"]["hub_path"],
            serde_json::json!(["hub-a", "hub-b", "hub-c"]),
            "{r}"
        );
    }
    for kept in [&home.id, &amber.id] {
        assert!(!holds(&carol, kept), "{kept} reached carol");
    }

    // A retraction at hub-a reaches carol's sink through hub-b.
    alice
        .sync(false, &mut Sinks::jsonl(None).unwrap())
        .await
        .unwrap();
    let retraction = retract(&alice, &green.id, "false positive").await.unwrap();
    sync_until(&carol, &mut sinks, &jsonl, &[&retraction.id]).await;
    let r = delivered_once(&jsonl, &retraction.id, "alice-bank", "hub-a");
    assert_eq!(r["action"], "retract", "{r}");
    assert_eq!(held_status(&carol, &green.id), "retracted");
}

/// Revision 2 of `id` (alice's, by `agent`), with a new title, published.
async fn revise(agent: &Agent, id: &str, domain: &str) -> String {
    let mut statement = draft(domain, "green", &[], false)
        .into_statement(
            "alice-bank",
            isac_core::time::format_rfc3339(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64,
            ),
        )
        .unwrap();
    statement.id = id.parse().unwrap();
    statement.revision = 2;
    let envelope = agent.loaded.signing_key.sign_statement(&statement).unwrap();
    publish_envelope(agent, envelope).await.unwrap();
    statement.title().to_owned()
}

/// Waits until `hub` holds revision `revision` of `id` from a peer.
async fn wait_for_revision(hub: &TestHub, id: &str, revision: u32) {
    for _ in 0..1200 {
        if received(hub)
            .await
            .iter()
            .any(|i| i.id == id && i.revision == revision)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "{} never received {id} revision {revision}",
        hub.config.hub_id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triangle_delivers_each_item_revision_and_retraction_once_to_every_hubs_members() {
    let dir = tempfile::tempdir().unwrap();
    let hubs = three_hubs(dir.path(), &[(0, 1), (1, 2), (0, 2)]).await;
    let alice = enrolled_agent(&hubs[0], "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hubs[1], "bob-bank", &dir.path().join("bob")).await;
    let carol = enrolled_agent(&hubs[2], "carol-bank", &dir.path().join("carol")).await;

    let clear = publish(&alice, draft("clear.example", "clear", &[], false))
        .await
        .unwrap();
    let green = publish(&alice, draft("green.example", "green", &[], false))
        .await
        .unwrap();
    let from_c = publish(&carol, draft("from-c.example", "green", &[], false))
        .await
        .unwrap();
    for h in [&hubs[1], &hubs[2]] {
        wait_for(h, &clear.id).await;
        wait_for(h, &green.id).await;
    }
    wait_for(&hubs[0], &from_c.id).await;
    wait_for(&hubs[1], &from_c.id).await;

    // Each hub's members: each item once, verified to its author.
    let sinks_of = |name: &str| {
        let path = dir.path().join(format!("{name}.jsonl"));
        (Sinks::jsonl(Some(&path)).unwrap(), path)
    };
    let (mut bob_sinks, bob_jsonl) = sinks_of("bob");
    let (mut carol_sinks, carol_jsonl) = sinks_of("carol");
    let (mut alice_sinks, alice_jsonl) = sinks_of("alice");
    for (agent, sinks, jsonl) in [
        (&bob, &mut bob_sinks, &bob_jsonl),
        (&carol, &mut carol_sinks, &carol_jsonl),
    ] {
        sync_until(agent, sinks, jsonl, &[&clear.id, &green.id]).await;
        delivered_once(jsonl, &clear.id, "alice-bank", "hub-a");
        delivered_once(jsonl, &green.id, "alice-bank", "hub-a");
    }
    sync_until(&alice, &mut alice_sinks, &alice_jsonl, &[&from_c.id]).await;
    delivered_once(&alice_jsonl, &from_c.id, "carol-bank", "hub-c");
    sync_until(&bob, &mut bob_sinks, &bob_jsonl, &[&from_c.id]).await;
    delivered_once(&bob_jsonl, &from_c.id, "carol-bank", "hub-c");

    // A revision at hub-a reaches both other hubs and their members' sinks.
    let title = revise(&alice, &green.id, "green-v2.example").await;
    for h in [&hubs[1], &hubs[2]] {
        wait_for_revision(h, &green.id, 2).await;
    }
    for (agent, sinks, jsonl) in [
        (&bob, &mut bob_sinks, &bob_jsonl),
        (&carol, &mut carol_sinks, &carol_jsonl),
    ] {
        for _ in 0..600 {
            agent.sync(false, sinks).await.unwrap();
            if lines(jsonl)
                .iter()
                .any(|r| r["id"] == green.id.as_str() && r["revision"] == 2)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let got = lines(jsonl);
        let revs: Vec<&serde_json::Value> = got
            .iter()
            .filter(|r| r["id"] == green.id.as_str() && r["revision"] == 2)
            .collect();
        assert_eq!(revs.len(), 1, "revision 2 once: {revs:?}");
        assert_eq!(revs[0]["title"], title.as_str());
        assert_eq!(revs[0]["signature"]["status"], "verified");
    }

    // A retraction at hub-a reaches every hub and every member's sink.
    alice.sync(false, &mut alice_sinks).await.unwrap();
    let retraction = retract(&alice, &clear.id, "false positive").await.unwrap();
    for (agent, sinks, jsonl) in [
        (&bob, &mut bob_sinks, &bob_jsonl),
        (&carol, &mut carol_sinks, &carol_jsonl),
    ] {
        sync_until(agent, sinks, jsonl, &[&retraction.id]).await;
        let r = delivered_once(jsonl, &retraction.id, "alice-bank", "hub-a");
        assert_eq!(r["action"], "retract", "{r}");
        assert_eq!(held_status(agent, &clear.id), "retracted");
    }
    // Every hub holds each (origin, id, revision) once, whichever way it
    // came first.
    for h in &hubs {
        let got = received(h).await;
        let mut keys: Vec<(String, String, u32)> = got
            .iter()
            .map(|i| (i.origin_hub.clone(), i.id.clone(), i.revision))
            .collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "{}: a key twice", h.config.hub_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_removed_at_the_origin_gets_nothing_more_neither_directly_nor_through_the_third() {
    let dir = tempfile::tempdir().unwrap();
    let hubs = three_hubs(dir.path(), &[(0, 1), (1, 2), (0, 2)]).await;
    let (a, b, c) = (&hubs[0], &hubs[1], &hubs[2]);
    let alice = enrolled_agent(a, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(b, "bob-bank", &dir.path().join("bob")).await;
    let carol = enrolled_agent(c, "carol-bank", &dir.path().join("carol")).await;
    let before = publish(&alice, draft("before.example", "green", &[], false))
        .await
        .unwrap();
    wait_for(c, &before.id).await;

    // hub-a removes hub-c (`hub peer remove hub-c` at hub-a: both
    // directions there). hub-a's signed directory now lists hub-c under
    // `removed_peers`.
    a.admin_store
        .set_peer_status("hub-c", StatusChange::Remove, "operator", a.clock.now())
        .await
        .unwrap();
    let after = publish(&alice, draft("after.example", "green", &[], false))
        .await
        .unwrap();
    wait_for(b, &after.id).await;
    let link = b.admin_store.peer_link("hub-a").await.unwrap().unwrap();
    let pinned = isac_core::Envelope::from_json(link.directory.as_deref().unwrap()).unwrap();
    let dir_a: KeyDirectory = serde_json::from_slice(&pinned.payload).unwrap();
    assert_eq!(
        dir_a.removed_peers,
        ["hub-c"],
        "hub-b holds hub-a's new directory"
    );

    // hub-b's own next item reaches hub-c, so hub-b's stream to hub-c went
    // past `after` (hub-b's order holds it first): it was not relayed.
    let marker = publish(&bob, draft("marker.example", "green", &[], false))
        .await
        .unwrap();
    wait_for(c, &marker.id).await;
    assert!(
        !received(c).await.iter().any(|i| i.id == after.id),
        "hub-c got hub-a's item after removal"
    );
    let jsonl = dir.path().join("carol.jsonl");
    let mut sinks = Sinks::jsonl(Some(&jsonl)).unwrap();
    sync_until(&carol, &mut sinks, &jsonl, &[&before.id, &marker.id]).await;
    assert!(records(&lines(&jsonl), &after.id).is_empty());
    assert!(!holds(&carol, &after.id));

    // The other direction: hub-c's items no longer reach hub-a, also not
    // through hub-b (hub-a refuses an origin it removed).
    let from_c = publish(&carol, draft("from-c.example", "green", &[], false))
        .await
        .unwrap();
    wait_for(b, &from_c.id).await;
    let marker2 = publish(&bob, draft("marker2.example", "green", &[], false))
        .await
        .unwrap();
    wait_for(a, &marker2.id).await;
    assert!(
        !received(a).await.iter().any(|i| i.id == from_c.id),
        "hub-a took an item of the hub it removed"
    );
}

/// A removed link's items stay in the order; its last pinned directory
/// stays too, listed as retired, so an agent that first syncs after the
/// removal verifies them instead of stalling on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_syncs_past_the_items_of_a_removed_link() {
    let dir = tempfile::tempdir().unwrap();
    let hubs = three_hubs(dir.path(), &[(0, 1)]).await;
    let (a, b) = (&hubs[0], &hubs[1]);
    let alice = enrolled_agent(a, "alice-bank", &dir.path().join("alice")).await;
    let green = publish(&alice, draft("green.example", "green", &[], false))
        .await
        .unwrap();
    wait_for(b, &green.id).await;

    // `hub peer remove hub-a` at hub-b.
    b.admin_store
        .set_peer_status("hub-a", StatusChange::Remove, "operator", b.clock.now())
        .await
        .unwrap();
    assert!(b.admin_store.peer_link("hub-a").await.unwrap().is_none());
    let retired = b.admin_store.origin_directories().await.unwrap();
    assert_eq!(retired.len(), 1, "{retired:?}");
    assert!(retired[0].retired && retired[0].hub_id == "hub-a");

    // A member enrolled after the removal, and a local item after it.
    let dave = enrolled_agent(b, "dave-energy", &dir.path().join("dave")).await;
    let local = publish(&dave, draft("local.example", "green", &[], false))
        .await
        .unwrap();
    let dir_b = hub_directory(&dave).await;
    let listed = dir_b
        .federated_origin("hub-a")
        .expect("the retired origin stays listed");
    assert!(listed.retired);
    assert_eq!(listed.key_id, directory_key_of(b, "hub-a").key_id);
    let jsonl = dir.path().join("dave.jsonl");
    let mut sinks = Sinks::jsonl(Some(&jsonl)).unwrap();
    dave.sync(false, &mut sinks).await.unwrap();
    let r = delivered_once(&jsonl, &green.id, "alice-bank", "hub-a");
    assert_eq!(
        r["provenance"]["hub_path"],
        serde_json::json!(["hub-a", "hub-b"])
    );
    assert_eq!(records(&lines(&jsonl), &local.id).len(), 1);
}
