//! Federation (issue 20): the author's signed `no_forward` mark through a
//! real hub, the receive rules of `isac_core::federation` over what a real
//! hub serves, and in-process hubs on real mTLS sockets peering: `hub
//! member add HUB --role peer` at the origin, `hub peer add` at the
//! follower (`hub::grpc::peer_enroll::add_peer`, what the CLI runs), the
//! Peering stream, suspension, removal, catch-up, and a triangle.

use isac_core::federation::{verify_forwarded, Provenance, ReceiveError, Refusal};
use isac_core::Envelope;
use isac_e2e::*;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::publish;
use member_agent::{Agent, Sinks};

fn green(domain: &str, no_forward: bool) -> IndicatorDraft {
    IndicatorDraft {
        domain: Some(domain.into()),
        tlp: Some("green".into()),
        title: Some(format!("{domain} serves a malicious installer")),
        no_forward: no_forward.then_some(true),
        ..Default::default()
    }
}

#[tokio::test]
async fn no_forward_crosses_the_hub_signed_and_stops_at_the_hub_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let home = publish(&alice, green("home.example", true)).await.unwrap();
    let away = publish(&alice, green("away.example", false)).await.unwrap();
    let jsonl = dir.path().join("bob.jsonl");
    let mut sink = Sinks::jsonl(Some(&jsonl)).unwrap();
    bob.sync(false, &mut sink).await.unwrap();

    // Members of the author's own hub get it, verified, the mark intact.
    let lines = std::fs::read_to_string(&jsonl).unwrap();
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let record = |id: &str| {
        records
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} not delivered"))
    };
    assert_eq!(record(&home.id)["statement"]["no_forward"], true);
    assert!(record(&away.id)["statement"].get("no_forward").is_none());
    assert_eq!(record(&home.id)["signature"]["status"], "verified");

    // What a peer hub "hub-b" would decide about these exact envelopes from
    // this hub ("hub-a"), against the directory the hub signed.
    let envelope = |id: &str| {
        let (_, _, json) = bob.store.lock().unwrap().show(id).unwrap().unwrap();
        Envelope::from_json(&json).unwrap()
    };
    let mut dir_a = bob.directory().expect("bob pinned the hub's directory");
    dir_a.peers = vec!["hub-b".into()];
    let provenance = Provenance::at_origin("hub-a", None).canonical_bytes();
    assert_eq!(
        verify_forwarded(&envelope(&home.id), &provenance, &dir_a, "hub-a", "hub-b").unwrap_err(),
        ReceiveError::Refused(Refusal::NoForward)
    );
    let got = verify_forwarded(&envelope(&away.id), &provenance, &dir_a, "hub-a", "hub-b").unwrap();
    assert_eq!(got.verified.statement.source, "alice-bank");
    assert_eq!(got.provenance.hub_path, ["hub-a", "hub-b"]);
    // Once hub-a drops hub-b, nothing of hub-a's is taken, not via hub-c.
    dir_a.peers = vec!["hub-c".into()];
    dir_a.removed_peers = vec!["hub-b".into()];
    let via_c = Provenance::at_origin("hub-a", None)
        .held_by("hub-c")
        .canonical_bytes();
    assert!(matches!(
        verify_forwarded(&envelope(&away.id), &via_c, &dir_a, "hub-c", "hub-b").unwrap_err(),
        ReceiveError::Refused(Refusal::OriginRemoved { .. })
    ));
}

// === peering between running hubs ===

use std::path::Path;
use std::time::Duration;

use hub::store::FederatedItem;
use isac_core::membership::{MemberStatus, StatusChange};
use isac_proto::v1 as pb;

pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// A hub whose `hub_id` is `hub_id` (through its hub.toml, as an operator sets it).
pub(crate) async fn named_hub(dir: &Path, hub_id: &str) -> TestHub {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("hub.toml"), format!("hub_id = \"{hub_id}\"\n")).unwrap();
    TestHub::start(dir).await
}

/// `hub member add FOLLOWER --role peer` at `origin`, then `hub peer add
/// ORIGIN --url --token` at `follower`, both on running hubs.
pub(crate) async fn peer(follower: &TestHub, origin: &TestHub) {
    let token = origin
        .add_member_with_role(&follower.config.hub_id, "peer")
        .await;
    hub::grpc::peer_enroll::add_peer(
        &follower.config,
        &follower.admin_store,
        &origin.config.hub_id,
        &origin.url(),
        &token,
        "operator",
        follower.clock.now(),
    )
    .await
    .unwrap();
}

/// The members several tests give `hub`: `alice-bank` and `bob-bank`
/// enrolled (state dirs `dir/alice` and `dir/bob`), and bob-bank's person
/// `ann` (for RED audiences). Returns (alice, bob).
pub(crate) async fn alice_bob_and_ann(hub: &TestHub, dir: &Path) -> (Agent, Agent) {
    let alice = enrolled_agent(hub, "alice-bank", &dir.join("alice")).await;
    let bob = enrolled_agent(hub, "bob-bank", &dir.join("bob")).await;
    hub.admin()
        .add_person(pb::AddPersonRequest {
            org_id: "bob-bank".into(),
            person_id: "ann".into(),
            name: "Ann".into(),
            contact: String::new(),
        })
        .await
        .unwrap();
    (alice, bob)
}

/// The hub ids of [`three_hubs_peered_both_ways`], in its order.
pub(crate) const TRIANGLE: [&str; 3] = ["hub-a", "hub-b", "hub-c"];

/// Three running hubs (`TRIANGLE`, data dirs `dir/hub-a` ...), each
/// following the other two.
pub(crate) async fn three_hubs_peered_both_ways(dir: &Path) -> Vec<TestHub> {
    three_hubs(dir, &[(0, 1), (1, 2), (0, 2)]).await
}

/// `x` and `y` follow each other (`peer` both ways).
pub(crate) async fn peer_both(x: &TestHub, y: &TestHub) {
    peer(x, y).await;
    peer(y, x).await;
}

/// Three hubs `hub-a`, `hub-b`, `hub-c` under `dir`, with `links` (pairs
/// of indices) peered both ways: `[(0, 1), (1, 2)]` is a line, adding
/// `(0, 2)` a triangle.
pub(crate) async fn three_hubs(dir: &Path, links: &[(usize, usize)]) -> Vec<TestHub> {
    let mut hubs = Vec::new();
    for id in TRIANGLE {
        hubs.push(named_hub(&dir.join(id), id).await);
    }
    for &(x, y) in links {
        peer_both(&hubs[x], &hubs[y]).await;
    }
    hubs
}

pub(crate) async fn received(hub: &TestHub) -> Vec<FederatedItem> {
    hub.admin_store.federated_items(None).await.unwrap()
}

/// Waits until `hub` holds an item with this statement id from a peer.
pub(crate) async fn wait_for(hub: &TestHub, id: &str) {
    for _ in 0..(WAIT.as_millis() / 50) {
        if received(hub).await.iter().any(|i| i.id == id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never received {id}", hub.config.hub_id);
}

pub(crate) fn draft(domain: &str, tlp: &str, audience: &[&str]) -> IndicatorDraft {
    IndicatorDraft {
        domain: Some(domain.into()),
        tlp: Some(tlp.into()),
        audience: (!audience.is_empty()).then(|| audience.iter().map(|a| a.to_string()).collect()),
        title: Some(format!("{domain} hosts a credential stealer")),
        ..Default::default()
    }
}

/// The peer identity `follower` holds at `origin` (the files `hub peer add` wrote).
pub(crate) fn peer_identity(
    follower: &TestHub,
    origin: &str,
) -> (
    openssl::x509::X509,
    openssl::pkey::PKey<openssl::pkey::Private>,
) {
    let dir = hub::grpc::peer_enroll::peer_dir(follower.data_dir(), origin);
    let cert = openssl::x509::X509::from_pem(&std::fs::read(dir.join("tls.crt")).unwrap()).unwrap();
    let key =
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(dir.join("tls.key")).unwrap())
            .unwrap();
    (cert, key)
}

async fn follow_status(origin: &TestHub, follower: &TestHub) -> tonic::Status {
    let (cert, key) = peer_identity(follower, &origin.config.hub_id);
    let channel = raw_channel(origin, Some((&cert, &key))).await.unwrap();
    let mut client = pb::peering_client::PeeringClient::new(channel);
    match client.follow(pb::FollowRequest { cursor: vec![] }).await {
        Err(s) => s,
        Ok(stream) => stream
            .into_inner()
            .message()
            .await
            .expect_err("a refused peer gets no item"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_item_crosses_to_a_peer_hub_verified_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let a = named_hub(&dir.path().join("a"), "hub-a").await;
    let b = named_hub(&dir.path().join("b"), "hub-b").await;
    let (alice, _bob) = alice_bob_and_ann(&a, dir.path()).await;
    peer(&b, &a).await;

    let clear = publish(&alice, draft("clear.example", "clear", &[]))
        .await
        .unwrap();
    let green_item = publish(&alice, draft("green.example", "green", &[]))
        .await
        .unwrap();
    let mut home = Vec::new();
    home.push(
        publish(&alice, green("home.example", true))
            .await
            .unwrap()
            .id,
    );
    home.push(
        publish(&alice, draft("amber.example", "amber", &[]))
            .await
            .unwrap()
            .id,
    );
    home.push(
        publish(
            &alice,
            draft("strict.example", "amber+strict", &["org:bob-bank"]),
        )
        .await
        .unwrap()
        .id,
    );
    home.push(
        publish(
            &alice,
            draft("red.example", "red", &["person:bob-bank/ann"]),
        )
        .await
        .unwrap()
        .id,
    );
    // Published last: once it is at hub-b, everything before was offered.
    let last = publish(&alice, draft("last.example", "green", &[]))
        .await
        .unwrap();
    wait_for(&b, &last.id).await;

    let got = received(&b).await;
    let mut ids: Vec<&str> = got.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    let mut want = vec![clear.id.as_str(), green_item.id.as_str(), last.id.as_str()];
    want.sort();
    assert_eq!(ids, want, "only CLEAR and GREEN without no-forward cross");
    for id in &home {
        assert!(!ids.contains(&id.as_str()), "{id} left its hub");
    }

    // Each stored item is the author's envelope, byte for byte, and
    // verifies to alice-bank against hub-a's directory as hub-b pinned it.
    let link = b.admin_store.peer_link("hub-a").await.unwrap().unwrap();
    let pinned = Envelope::from_json(link.directory.as_deref().unwrap()).unwrap();
    let directory: isac_core::directory::KeyDirectory =
        serde_json::from_slice(&pinned.payload).unwrap();
    assert_eq!(
        directory.peers,
        ["hub-b"],
        "hub-a's signed directory lists its peer"
    );
    assert!(
        directory.keys.iter().all(|k| k.org_id != "hub-b"),
        "a peer's key is never a member key"
    );
    alice
        .sync(false, &mut Sinks::jsonl(None).unwrap())
        .await
        .unwrap();
    for item in &got {
        let envelope = Envelope::from_json(&item.envelope_json).unwrap();
        let verified = isac_core::verify_envelope(&envelope, |kid| directory.record(kid)).unwrap();
        assert_eq!(verified.statement.source, "alice-bank");
        let provenance = Provenance::decode(&item.provenance).unwrap();
        assert_eq!(provenance.origin_hub, "hub-a");
        assert_eq!(provenance.hub_path, ["hub-a", "hub-b"]);
        assert_eq!(item.from_peer, "hub-a");
        let (_, _, original) = alice.store.lock().unwrap().show(&item.id).unwrap().unwrap();
        assert_eq!(Envelope::from_json(&original).unwrap(), envelope);
    }

    // The peer identity can never act as a member at hub-a.
    let (cert, key) = peer_identity(&b, "hub-a");
    let channel = raw_channel(&a, Some((&cert, &key))).await.unwrap();
    let refused = pb::publisher_client::PublisherClient::new(channel.clone())
        .publish(pb::PublishRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("`hub-b` is a peer hub"),
        "{}",
        refused.message()
    );
    let refused = pb::key_directory_client::KeyDirectoryClient::new(channel)
        .list_keys(pb::ListKeysRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    // And a member cannot pose as a peer hub.
    let (cert, key) = {
        let d = dir.path().join("alice");
        (
            openssl::x509::X509::from_pem(&std::fs::read(d.join("tls.crt")).unwrap()).unwrap(),
            openssl::pkey::PKey::private_key_from_pem(&std::fs::read(d.join("tls.key")).unwrap())
                .unwrap(),
        )
    };
    let channel = raw_channel(&a, Some((&cert, &key))).await.unwrap();
    let refused = pb::peering_client::PeeringClient::new(channel)
        .get_peer_directory(pb::GetPeerDirectoryRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(
        refused.message().contains("not a peer hub"),
        "{}",
        refused.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_and_remove_stop_the_flow_and_an_offline_peer_catches_up_exactly() {
    const OFFLINE: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let a = named_hub(&dir.path().join("a"), "hub-a").await;
    let b_dir = dir.path().join("b");
    let b = named_hub(&b_dir, "hub-b").await;
    let alice = enrolled_agent(&a, "alice-bank", &dir.path().join("alice")).await;
    peer(&b, &a).await;
    let first = publish(&alice, draft("first.example", "green", &[]))
        .await
        .unwrap();
    wait_for(&b, &first.id).await;

    // hub-b offline (stopped) while hub-a takes OFFLINE publishes.
    b.stop().await;
    let mut ids = vec![first.id.clone()];
    for n in 0..OFFLINE {
        let p = publish(&alice, draft(&format!("offline-{n}.example"), "green", &[]))
            .await
            .unwrap();
        ids.push(p.id);
    }
    let b = named_hub(&b_dir, "hub-b").await;
    wait_for(&b, ids.last().unwrap()).await;
    let mut got: Vec<String> = received(&b).await.into_iter().map(|i| i.id).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "every item once, none lost, none twice");

    // Suspended at the origin (`hub peer suspend hub-b` at hub-a): the open
    // stream ends and hub-b's identity is refused until resumed.
    a.admin_store
        .set_peer_status("hub-b", StatusChange::Suspend, "operator", a.clock.now())
        .await
        .unwrap();
    let status = follow_status(&a, &b).await;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("suspended"),
        "{}",
        status.message()
    );
    let during = publish(&alice, draft("during.example", "green", &[]))
        .await
        .unwrap();
    a.admin_store
        .set_peer_status("hub-b", StatusChange::Resume, "operator", a.clock.now())
        .await
        .unwrap();
    // Resumed: it catches up from its cursor.
    wait_for(&b, &during.id).await;

    // Suspended at the follower (`hub peer suspend hub-a` at hub-b): both
    // directions, nothing is taken while suspended.
    b.admin_store
        .set_peer_status("hub-a", StatusChange::Suspend, "operator", b.clock.now())
        .await
        .unwrap();
    let link = b.admin_store.peer_link("hub-a").await.unwrap().unwrap();
    assert_eq!(link.status, MemberStatus::Suspended);
    let refused = b
        .admin_store
        .receive_from_peer("hub-a", vec![], link.cursor.clone())
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("not followed now"),
        "{refused}"
    );

    // Removed at the origin: refused for good, and gone from its directory.
    a.admin_store
        .set_peer_status("hub-b", StatusChange::Remove, "operator", a.clock.now())
        .await
        .unwrap();
    let status = follow_status(&a, &b).await;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("removed"), "{}", status.message());
    let members = a.admin_store.list_members().await.unwrap();
    assert!(hub::app::federation::current_peers(&members).is_empty());
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triangle_delivers_each_item_once_and_a_removed_peer_gets_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let hubs = three_hubs_peered_both_ways(dir.path()).await;
    let mut authors = Vec::new();
    for (i, h) in hubs.iter().enumerate() {
        let org = format!("member-{i}");
        authors.push(enrolled_agent(h, &org, &dir.path().join(&org)).await);
    }
    let mut published = Vec::new();
    for (i, author) in authors.iter().enumerate() {
        let clear = publish(author, draft(&format!("c{i}.example"), "clear", &[]))
            .await
            .unwrap();
        let green = publish(author, draft(&format!("g{i}.example"), "green", &[]))
            .await
            .unwrap();
        published.push((i, clear.id, green.id));
    }
    for (h, hub) in hubs.iter().enumerate() {
        for (i, clear, green) in &published {
            if *i != h {
                wait_for(hub, clear).await;
                wait_for(hub, green).await;
            }
        }
    }
    for (h, hub) in hubs.iter().enumerate() {
        let got = received(hub).await;
        let mut ids: Vec<&str> = got.iter().map(|i| i.id.as_str()).collect();
        ids.sort();
        let mut want: Vec<&str> = published
            .iter()
            .filter(|(i, _, _)| *i != h)
            .flat_map(|(_, c, g)| [c.as_str(), g.as_str()])
            .collect();
        want.sort();
        assert_eq!(
            ids, want,
            "{}: each item of the others once",
            hub.config.hub_id
        );
    }

    // hub-a removes hub-c (both directions). hub-a's next item reaches
    // hub-b, never hub-c: hub-a refuses hub-c's identity, and hub-a's
    // signed directory no longer lists hub-c, so no third hub may relay it.
    hubs[0]
        .admin_store
        .set_peer_status(
            "hub-c",
            StatusChange::Remove,
            "operator",
            hubs[0].clock.now(),
        )
        .await
        .unwrap();
    let after = publish(&authors[0], draft("after.example", "green", &[]))
        .await
        .unwrap();
    wait_for(&hubs[1], &after.id).await;
    let status = follow_status(&hubs[0], &hubs[2]).await;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(hubs[0]
        .admin_store
        .peer_link("hub-c")
        .await
        .unwrap()
        .is_none());
    let (cert, key) = peer_identity(&hubs[1], "hub-a");
    let channel = raw_channel(&hubs[0], Some((&cert, &key))).await.unwrap();
    let current: Envelope = pb::peering_client::PeeringClient::new(channel)
        .get_peer_directory(pb::GetPeerDirectoryRequest {})
        .await
        .unwrap()
        .into_inner()
        .signed_directory
        .unwrap()
        .into();
    let dir_a: isac_core::directory::KeyDirectory =
        serde_json::from_slice(&current.payload).unwrap();
    assert!(
        !dir_a.peers.contains(&"hub-c".to_string()),
        "{:?}",
        dir_a.peers
    );
    assert!(
        !received(&hubs[2]).await.iter().any(|i| i.id == after.id),
        "the removed peer received an item after removal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_forges_an_author_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let a = named_hub(&dir.path().join("a"), "hub-a").await;
    let b = named_hub(&dir.path().join("b"), "hub-b").await;
    let c = named_hub(&dir.path().join("c"), "hub-c").await;
    let alice = enrolled_agent(&a, "alice-bank", &dir.path().join("alice")).await;
    let carol = enrolled_agent(&c, "carol-bank", &dir.path().join("carol")).await;
    peer(&b, &a).await;
    let real = publish(&alice, draft("real.example", "green", &[]))
        .await
        .unwrap();
    wait_for(&b, &real.id).await;
    let link = b.admin_store.peer_link("hub-a").await.unwrap().unwrap();
    let pinned = Envelope::from_json(link.directory.as_deref().unwrap()).unwrap();
    let dir_a: isac_core::directory::KeyDirectory =
        serde_json::from_slice(&pinned.payload).unwrap();

    // hub-a hands hub-b carol's item (signed at hub-c) as its own, and an
    // item of alice's with its payload altered: neither verifies against
    // hub-a's pinned directory.
    let forged = publish(&carol, draft("forged.example", "green", &[]))
        .await
        .unwrap();
    carol
        .sync(false, &mut Sinks::jsonl(None).unwrap())
        .await
        .unwrap();
    alice
        .sync(false, &mut Sinks::jsonl(None).unwrap())
        .await
        .unwrap();
    let (_, _, json) = carol
        .store
        .lock()
        .unwrap()
        .show(&forged.id)
        .unwrap()
        .unwrap();
    let stolen = Envelope::from_json(&json).unwrap();
    let provenance = Provenance::at_origin("hub-a", None).canonical_bytes();
    let err = hub::app::federation::received(&stolen, &provenance, &dir_a, "hub-a", "hub-b", 0)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not verify against origin hub `hub-a`"),
        "{err}"
    );
    let (_, _, json) = alice.store.lock().unwrap().show(&real.id).unwrap().unwrap();
    let mut altered = Envelope::from_json(&json).unwrap();
    let last = altered.payload.len() - 2;
    altered.payload[last] ^= 1;
    assert!(matches!(
        hub::app::federation::received(&altered, &provenance, &dir_a, "hub-a", "hub-b", 0),
        Err(ReceiveError::Verify { .. })
    ));
    // A real item of hub-a's that claims a third hub as its origin.
    let real_env = Envelope::from_json(&json).unwrap();
    let claims_c = Provenance::at_origin("hub-c", None)
        .held_by("hub-a")
        .canonical_bytes();
    assert!(
        hub::app::federation::received(&real_env, &claims_c, &dir_a, "hub-a", "hub-b", 0).is_err()
    );
    let got = received(&b).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, real.id);
}
