//! TLP:AMBER across hubs (issue 20): a cross-hub sharing group set up on
//! both hubs (`hub group add` with `ORG@HUB` members, `hub peer share PEER
//! --group NAME`, the real `hub` binary on the running hubs' data dirs),
//! the signed group manifests the hubs exchange, and an AMBER item that
//! reaches exactly the group's organisations at the peer, verified by
//! their agents; a disagreeing member list holds it back and `hub peer
//! list` says why; unsharing stops it. Real hubs on real mTLS sockets,
//! real agents.

use std::time::Duration;

use isac_core::fed_groups::Agreement;
use isac_e2e::*;
use isac_proto::v1 as pb;
use member_agent::publish::publish;
use member_agent::Sinks;

use super::federation::{draft, named_hub, peer, received, wait_for, WAIT};
use super::federation_members::{held_status, holds, lines, records, sync_until};

fn hub_cli(hub: &TestHub, args: &[&str]) -> (bool, String, String) {
    run(bin("hub").arg("--data-dir").arg(hub.data_dir()).args(args))
}

fn hub_ok(hub: &TestHub, args: &[&str]) -> String {
    let (ok, out, err) = hub_cli(hub, args);
    assert!(ok, "hub {args:?} failed: {err}");
    out
}

async fn add_group(hub: &TestHub, name: &str, members: &[&str]) {
    hub.admin()
        .add_group(pb::AddGroupRequest {
            name: name.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
        })
        .await
        .unwrap();
}

/// Waits until `hub`'s view of its link to `peer` says `want` for `group`.
async fn wait_agreement(hub: &TestHub, peer: &str, group: &str, want: fn(&Agreement) -> bool) {
    for _ in 0..(WAIT.as_millis() / 100) {
        let groups = hub::app::fed_groups::link_groups(&hub.admin_store, &hub.config.hub_id, peer)
            .await
            .unwrap();
        if groups
            .iter()
            .any(|g| g.group == group && want(&g.agreement))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{}: group {group} with {peer} never reached the expected state: {:?}",
        hub.config.hub_id,
        hub::app::fed_groups::link_groups(&hub.admin_store, &hub.config.hub_id, peer)
            .await
            .unwrap()
    );
}

fn agreed(a: &Agreement) -> bool {
    *a == Agreement::Agreed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amber_item_in_a_cross_hub_group_reaches_exactly_its_organisations() {
    let dir = tempfile::tempdir().unwrap();
    let a = named_hub(&dir.path().join("a"), "hub-a").await;
    let b = named_hub(&dir.path().join("b"), "hub-b").await;
    let alice = enrolled_agent(&a, "alice-bank", &dir.path().join("alice")).await;
    let carol = enrolled_agent(&a, "carol-bank", &dir.path().join("carol")).await;
    let dave = enrolled_agent(&b, "dave-bank", &dir.path().join("dave")).await;
    let erin = enrolled_agent(&b, "erin-bank", &dir.path().join("erin")).await;
    peer(&b, &a).await;
    peer(&a, &b).await;

    // A peer hub's organisation must name a peer.
    let refused = a
        .admin()
        .add_group(pb::AddGroupRequest {
            name: "typo".into(),
            members: vec!["alice-bank".into(), "dave-bank@hub-z".into()],
        })
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("not a peer"), "{refused}");

    add_group(&a, "supply-chain", &["alice-bank", "dave-bank@hub-b"]).await;
    add_group(&b, "supply-chain", &["alice-bank@hub-a", "dave-bank"]).await;
    let (ok, _, err) = hub_cli(&a, &["peer", "share", "hub-z", "--group", "supply-chain"]);
    assert!(!ok && err.contains("no peer `hub-z`"), "{err}");
    hub_ok(&a, &["peer", "share", "hub-b", "--group", "supply-chain"]);
    // One side only: held back, and the list says so.
    wait_agreement(&a, "hub-b", "supply-chain", |g| {
        *g == Agreement::NotSharedThere
    })
    .await;
    let list = hub_ok(&a, &["peer", "list"]);
    assert!(
        list.contains("group supply-chain: held back: the peer does not share it"),
        "{list}"
    );
    hub_ok(&b, &["peer", "share", "hub-a", "--group", "supply-chain"]);
    wait_agreement(&a, "hub-b", "supply-chain", agreed).await;
    wait_agreement(&b, "hub-a", "supply-chain", agreed).await;
    assert!(hub_ok(&b, &["peer", "list"]).contains("group supply-chain: agreed"));

    let amber = publish(
        &alice,
        draft("amber.example", "amber", &["group:supply-chain"]),
    )
    .await
    .unwrap();
    let mut home = Vec::new();
    for d in [
        // AMBER to an org, and to nobody in particular: never crosses.
        draft("org.example", "amber", &["org:carol-bank"]),
        draft("all.example", "amber", &[]),
        // AMBER+STRICT and RED never cross, group or not.
        draft("strict.example", "amber+strict", &["group:supply-chain"]),
    ] {
        home.push(publish(&alice, d).await.unwrap().id);
    }
    let marker = publish(&alice, draft("marker.example", "green", &[]))
        .await
        .unwrap();
    wait_for(&b, &marker.id).await;
    wait_for(&b, &amber.id).await;
    let got = received(&b).await;
    for id in &home {
        assert!(!got.iter().any(|i| &i.id == id), "{id} left hub-a");
    }

    // dave-bank (in the group at hub-b) receives it, verified to alice at
    // hub-a; erin-bank (hub-b, not in the group) and carol-bank (hub-a,
    // not in the group) do not.
    let jsonl = dir.path().join("dave.jsonl");
    let mut sinks = Sinks::jsonl(Some(&jsonl)).unwrap();
    sync_until(&dave, &mut sinks, &jsonl, &[&amber.id, &marker.id]).await;
    let r = lines(&jsonl);
    let r = records(&r, &amber.id);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["signature"]["status"], "verified", "{}", r[0]);
    assert_eq!(r[0]["tlp"], "amber", "{}", r[0]);
    assert_eq!(r[0]["provenance"]["origin_hub"], "hub-a", "{}", r[0]);
    assert_eq!(
        r[0]["provenance"]["hub_path"],
        serde_json::json!(["hub-a", "hub-b"])
    );
    // dave-bank's sighting goes to the group, back to hub-a: alice-bank's
    // count has it, carol-bank (outside the group) learns nothing.
    let seen = member_agent::publish::sight(&dave, &amber.id, 4, true, None)
        .await
        .unwrap();
    wait_for(&a, &seen.id).await;
    assert_eq!(count_at(&alice, &amber.id).await, (4, 1));
    let hidden = pb::lookup_client::LookupClient::new(carol.channel().await.unwrap())
        .count_sightings(pb::CountSightingsRequest {
            indicator_id: amber.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), tonic::Code::NotFound, "{hidden}");
    // alice-bank retracts it: the retraction goes to the same audience,
    // crosses in the group and reaches dave-bank's agent.
    let alice_jsonl = dir.path().join("alice.jsonl");
    let mut alice_sinks = Sinks::jsonl(Some(&alice_jsonl)).unwrap();
    sync_until(&alice, &mut alice_sinks, &alice_jsonl, &[&amber.id]).await;
    let retraction = member_agent::publish::retract(&alice, &amber.id, "false positive")
        .await
        .unwrap();
    wait_for(&b, &retraction.id).await;
    sync_until(&dave, &mut sinks, &jsonl, &[&retraction.id]).await;
    assert_eq!(held_status(&dave, &amber.id), "retracted");
    for (who, agent) in [("erin", &erin), ("carol", &carol)] {
        let jsonl = dir.path().join(format!("{who}.jsonl"));
        let mut sinks = Sinks::jsonl(Some(&jsonl)).unwrap();
        sync_until(agent, &mut sinks, &jsonl, &[&marker.id]).await;
        assert!(
            records(&lines(&jsonl), &amber.id).is_empty() && !holds(agent, &amber.id),
            "{who} received an AMBER item outside its group"
        );
    }

    // hub-b changes its list (erin-bank added): the lists disagree, the
    // link holds AMBER back and `hub peer list` says why.
    hub_ok(&b, &["group", "remove", "supply-chain"]);
    add_group(
        &b,
        "supply-chain",
        &["alice-bank@hub-a", "dave-bank", "erin-bank"],
    )
    .await;
    hub_ok(&b, &["peer", "share", "hub-a", "--group", "supply-chain"]);
    wait_agreement(&a, "hub-b", "supply-chain", |g| {
        matches!(g, Agreement::Differ { .. })
    })
    .await;
    let list = hub_ok(&a, &["peer", "list"]);
    assert!(
        list.contains(
            "group supply-chain: held back: members differ (only here: -; only at the peer: erin-bank@hub-b)"
        ),
        "{list}"
    );
    let held = publish(
        &alice,
        draft("held.example", "amber", &["group:supply-chain"]),
    )
    .await
    .unwrap();
    let marker = publish(&alice, draft("marker2.example", "green", &[]))
        .await
        .unwrap();
    wait_for(&b, &marker.id).await;
    assert!(
        !received(&b).await.iter().any(|i| i.id == held.id),
        "an AMBER item crossed while the lists disagree"
    );

    // Agreeing again lets new items cross; unsharing at hub-a stops them.
    hub_ok(&b, &["group", "remove", "supply-chain"]);
    add_group(&b, "supply-chain", &["alice-bank@hub-a", "dave-bank"]).await;
    hub_ok(&b, &["peer", "share", "hub-a", "--group", "supply-chain"]);
    wait_agreement(&a, "hub-b", "supply-chain", agreed).await;
    let again = publish(
        &alice,
        draft("again.example", "amber", &["group:supply-chain"]),
    )
    .await
    .unwrap();
    wait_for(&b, &again.id).await;
    hub_ok(&a, &["peer", "unshare", "hub-b", "--group", "supply-chain"]);
    let (ok, _, err) = hub_cli(&a, &["peer", "unshare", "hub-b", "--group", "supply-chain"]);
    assert!(!ok && err.contains("not shared"), "{err}");
    let after = publish(
        &alice,
        draft("after.example", "amber", &["group:supply-chain"]),
    )
    .await
    .unwrap();
    let marker = publish(&alice, draft("marker3.example", "green", &[]))
        .await
        .unwrap();
    wait_for(&b, &marker.id).await;
    assert!(
        !received(&b).await.iter().any(|i| i.id == after.id),
        "an AMBER item crossed after unshare"
    );
    assert!(!hub_ok(&a, &["peer", "list"]).contains("group supply-chain"));
}

async fn count_at(agent: &member_agent::Agent, id: &str) -> (u64, u32) {
    let c = pb::lookup_client::LookupClient::new(agent.channel().await.unwrap())
        .count_sightings(pb::CountSightingsRequest {
            indicator_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner();
    (c.total, c.reports)
}

/// The sighting rows `hub` holds for item `id`, as (source, count).
async fn sightings_at(hub: &TestHub, id: &str) -> Vec<(String, Option<u32>)> {
    hub.admin_store
        .sightings_of(id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.source_org, s.sighting_count))
        .collect()
}

/// A hub-b that stores a sighting its own check would refuse (about an
/// item it never got): signed by a real member of hub-b, appended to its
/// store directly, so hub-b serves it to hub-a like any of its items.
async fn forge_sighting_at(b: &TestHub, state_dir: &std::path::Path, target: &str) -> String {
    use isac_core::statement::{Body, Sighting};
    let key = isac_core::SigningKey::from_pkcs8_pem(
        &std::fs::read(state_dir.join("signing.key")).unwrap(),
    )
    .unwrap();
    let now = isac_core::time::format_rfc3339(b.clock.now());
    let body = Body::Sighting(Sighting {
        indicator: target.parse().unwrap(),
        count: 40,
        first_seen: now.clone(),
        last_seen: now.clone(),
    });
    let statement = member_agent::draft::new_statement(
        "dave-bank",
        now,
        isac_core::Tlp::Green,
        &[],
        false,
        body,
    )
    .unwrap()
    .statement;
    let env = key.sign_statement(&statement).unwrap();
    let sig = &env.signatures[0];
    b.admin_store
        .append_statement(hub::store::NewStatement {
            id: statement.id.to_string(),
            revision: 1,
            source_org: "dave-bank".into(),
            tlp: "green".into(),
            audience_json: "[]".into(),
            kind: "sighting".into(),
            created_at: b.clock.now(),
            received_at: b.clock.now(),
            payload_type: env.payload_type.clone(),
            payload: env.payload.clone(),
            key_id: sig.keyid.clone(),
            signature: sig.sig.clone(),
            digest: env.digest(),
            openings_json: "[]".into(),
            group_snapshot_json: "{}".into(),
            target_id: Some(target.into()),
            value: statement.primary_value(),
            title: statement.title().to_owned(),
            sighting_count: Some(40),
            anonymous: None,
            facts: Default::default(),
            stix_ids: Vec::new(),
            references: vec![target.into()],
            provenance: None,
        })
        .await
        .unwrap();
    statement.id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighting_at_the_peer_reaches_the_origins_count_once_named_or_anonymous() {
    let dir = tempfile::tempdir().unwrap();
    let a = named_hub(&dir.path().join("a"), "hub-a").await;
    let b = named_hub(&dir.path().join("b"), "hub-b").await;
    let alice = enrolled_agent(&a, "alice-bank", &dir.path().join("alice")).await;
    let dave = enrolled_agent(&b, "dave-bank", &dir.path().join("dave")).await;
    peer(&b, &a).await;
    peer(&a, &b).await;

    let green = publish(&alice, draft("seen.example", "green", &[]))
        .await
        .unwrap();
    let home = publish(&alice, {
        let mut d = draft("home.example", "green", &[]);
        d.no_forward = Some(true);
        d
    })
    .await
    .unwrap();
    wait_for(&b, &green.id).await;
    let jsonl = dir.path().join("dave.jsonl");
    let mut sinks = Sinks::jsonl(Some(&jsonl)).unwrap();
    sync_until(&dave, &mut sinks, &jsonl, &[&green.id]).await;
    assert_eq!(count_at(&alice, &green.id).await, (0, 0));

    // Named: dave-bank at hub-b, counted at hub-a once.
    let named = member_agent::publish::sight(&dave, &green.id, 3, true, None)
        .await
        .unwrap();
    wait_for(&a, &named.id).await;
    assert_eq!(count_at(&alice, &green.id).await, (3, 1));
    assert_eq!(
        sightings_at(&a, &green.id).await,
        vec![("dave-bank@hub-b".to_string(), Some(3))]
    );
    // Anonymous: signed by hub-b's anonymisation key, no reporter at hub-a.
    let anon = member_agent::publish::sight(&dave, &green.id, 2, false, None)
        .await
        .unwrap();
    wait_for(&a, &anon.id).await;
    assert_eq!(count_at(&alice, &green.id).await, (5, 2));
    let rows = a.admin_store.sightings_of(&green.id).await.unwrap();
    let anon_row = rows.iter().find(|r| r.id == anon.id).unwrap();
    assert_eq!(anon_row.source_org, "anonymous@hub-b");
    assert!(
        !String::from_utf8_lossy(&anon_row.payload).contains("dave-bank"),
        "the anonymous sighting names its reporter at the origin"
    );
    // Exactly once per (origin, id, revision).
    let got = received(&a).await;
    for id in [&named.id, &anon.id] {
        assert_eq!(got.iter().filter(|i| &i.id == id).count(), 1);
    }

    // hub-b serves a sighting about an item it never got (no-forward at
    // hub-a): hub-a refuses it and stores nothing; later ones still come.
    assert!(!received(&b).await.iter().any(|i| i.id == home.id));
    let forged = forge_sighting_at(&b, &dir.path().join("dave"), &home.id).await;
    let after = member_agent::publish::sight(&dave, &green.id, 1, true, None)
        .await
        .unwrap();
    wait_for(&a, &after.id).await;
    assert!(!received(&a).await.iter().any(|i| i.id == forged));
    assert!(sightings_at(&a, &home.id).await.is_empty());
    assert_eq!(count_at(&alice, &home.id).await, (0, 0));
    assert_eq!(count_at(&alice, &green.id).await, (6, 3));

    // A sighting made at the origin reaches the peer's count too (it is
    // hub-a's own GREEN statement): hub-b counts dave-bank's three and it.
    let alice_jsonl = dir.path().join("alice.jsonl");
    let mut alice_sinks = Sinks::jsonl(Some(&alice_jsonl)).unwrap();
    sync_until(&alice, &mut alice_sinks, &alice_jsonl, &[&green.id]).await;
    let at_origin = member_agent::publish::sight(&alice, &green.id, 7, true, None)
        .await
        .unwrap();
    wait_for(&b, &at_origin.id).await;
    assert_eq!(count_at(&dave, &green.id).await, (13, 4));
    assert_eq!(count_at(&alice, &green.id).await, (13, 4));
}
