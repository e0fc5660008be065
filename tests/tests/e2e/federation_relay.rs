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
use isac_e2e::*;
use member_agent::publish::{publish, retract};
use member_agent::{Agent, Sinks};

use super::federation::{received, three_hubs, wait_for};
use super::federation_members::{draft, holds, lines, records, sync_until};

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
    let (held, _, _) = carol
        .store
        .lock()
        .unwrap()
        .show(&green.id)
        .unwrap()
        .unwrap();
    assert_eq!(held.status, "retracted");
}
