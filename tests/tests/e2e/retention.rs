//! Retention and migration with the real `hub` binary on a running hub's
//! data dir: `hub prune --expired-before` removes statements long past
//! their valid_until together with the sightings and retractions that
//! refer to them (no dangling targets), never moves the head back, refuses
//! a replay of a pruned id; `hub export` writes every stored envelope as
//! JSON Lines that verify against the members' keys.

use std::os::unix::fs::PermissionsExt;

use isac_e2e::*;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::{publish, publish_envelope};
use member_agent::Agent;
use member_agent::Sinks;

fn draft(name: &str, valid_until: Option<String>) -> IndicatorDraft {
    IndicatorDraft {
        purl: Some(format!("pkg:npm/{name}@1.0.0")),
        tlp: Some("green".into()),
        title: Some(name.into()),
        valid_until,
        ..Default::default()
    }
}

async fn sync(agent: &Agent, dir: &std::path::Path, name: &str) {
    let mut sink = Sinks::jsonl(Some(&dir.join(format!("{name}.jsonl")))).unwrap();
    agent.sync(false, &mut sink).await.unwrap();
}

fn count(hub: &TestHub, id: &str) -> i64 {
    hub.query_i64(&format!(
        "SELECT count(*) FROM statements WHERE id = '{id}' OR target_id = '{id}'"
    ))
}

/// A GREEN sighting or retraction, signed and published by `agent`.
async fn derived(
    agent: &Agent,
    anonymous: bool,
    body: isac_core::Body,
) -> member_agent::publish::Published {
    let prepared = member_agent::draft::new_statement(
        agent.org_id(),
        isac_core::time::format_rfc3339(member_agent::now()),
        isac_core::Tlp::Green,
        &[],
        anonymous,
        body,
    )
    .unwrap();
    member_agent::publish::publish_prepared(agent, &prepared)
        .await
        .unwrap()
}

#[tokio::test]
async fn prune_removes_long_expired_items_with_their_sightings_and_retractions() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let long_ago = Some("2020-01-01T00:00:00Z".to_owned());
    let an_hour_ago = Some(isac_core::time::format_rfc3339(member_agent::now() - 3600));

    // Keep the signed envelope of `old`, to replay it after the prune.
    let prepared = draft("old", long_ago.clone())
        .into_prepared(
            "alice-bank",
            isac_core::time::format_rfc3339(member_agent::now()),
        )
        .unwrap();
    let old_envelope = alice
        .loaded
        .signing_key
        .sign_envelope(
            isac_core::PAYLOAD_TYPE_STATEMENT_V1,
            prepared.statement.canonical_bytes(),
        )
        .unwrap();
    let old = publish_envelope(&alice, old_envelope.clone())
        .await
        .unwrap();
    let old_retracted = publish(&alice, draft("old-retracted", long_ago.clone()))
        .await
        .unwrap();
    let recently_expired = publish(&alice, draft("recent", an_hour_ago)).await.unwrap();
    let fresh = publish(&alice, draft("fresh", None)).await.unwrap();
    sync(&alice, dir.path(), "alice").await;
    sync(&bob, dir.path(), "bob").await;
    // Expired items are not synced to agents, so build the sighting and the
    // retraction the way `sight` and `retract` do, with the level given.
    let sighting = derived(
        &bob,
        true,
        isac_core::Body::Sighting(isac_core::statement::Sighting {
            indicator: old.id.parse().unwrap(),
            count: 3,
            first_seen: isac_core::time::format_rfc3339(member_agent::now()),
            last_seen: isac_core::time::format_rfc3339(member_agent::now()),
        }),
    )
    .await;
    let retraction = derived(
        &alice,
        false,
        isac_core::Body::Retraction(isac_core::statement::Retraction {
            target: old_retracted.id.parse().unwrap(),
            reason: "withdrawn".into(),
        }),
    )
    .await;
    // The newest statement is expired too: it stays, so the head never moves back.
    let newest = publish(&alice, draft("newest", long_ago)).await.unwrap();
    let head = hub.query_i64("SELECT max(seq) FROM statements");
    let before = hub.stored_statements();
    assert_eq!(before, 7);

    let data = hub.data_dir().to_owned();
    let (ok, out, err) = run(bin("hub").arg("--data-dir").arg(&data).args([
        "prune",
        "--expired-before",
        "30d",
        "--dry-run",
    ]));
    assert!(ok, "{err}");
    assert!(
        out.contains("would prune 2 expired statement(s) (4 rows"),
        "{out}"
    );
    assert!(
        out.contains("kept 1 that hold the newest sequence"),
        "{out}"
    );
    assert_eq!(
        hub.stored_statements(),
        before,
        "a dry run deleted something"
    );

    let (ok, out, err) =
        run(bin("hub")
            .arg("--data-dir")
            .arg(&data)
            .args(["prune", "--expired-before", "30d"]));
    assert!(ok, "{err}");
    assert!(
        out.contains("pruned 2 expired statement(s) (4 rows"),
        "{out}"
    );
    for gone in [&old.id, &old_retracted.id, &sighting.id, &retraction.id] {
        assert_eq!(count(&hub, gone), 0, "{gone} survived the prune");
    }
    for kept in [&recently_expired.id, &fresh.id, &newest.id] {
        assert_eq!(count(&hub, kept), 1, "{kept} was pruned");
    }
    assert_eq!(
        hub.query_i64(
            "SELECT count(*) FROM statements s WHERE s.target_id IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM statements t WHERE t.id = s.target_id)"
        ),
        0,
        "a sighting or retraction points at a pruned statement"
    );
    assert_eq!(hub.query_i64("SELECT max(seq) FROM statements"), head);
    assert_eq!(
        hub.query_i64("SELECT count(*) FROM log_leaves"),
        before,
        "the log's tree never shrinks"
    );
    assert!(
        hub.query_i64("SELECT count(*) FROM audit WHERE action = 'prune'") == 1,
        "prune is audited"
    );

    // A replay of a pruned statement is refused, not resurrected.
    let refused = publish_envelope(&alice, old_envelope)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("pruned"), "{refused}");
    assert_eq!(count(&hub, &old.id), 0);

    // New statements still flow, and a new subscriber reads a consistent store.
    publish(&alice, draft("after-prune", None)).await.unwrap();
    let carol = enrolled_agent(&hub, "carol-bank", &dir.path().join("carol")).await;
    sync(&carol, dir.path(), "carol").await;
    let conn = rusqlite::Connection::open(data.join("hub.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    hub.stop().await;
}

#[tokio::test]
async fn export_writes_every_envelope_as_verifiable_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let mut ids = Vec::new();
    for n in 0..25 {
        ids.push(
            publish(&alice, draft(&format!("p{n}"), None))
                .await
                .unwrap()
                .id,
        );
    }
    let file = dir.path().join("export.jsonl");
    let data = hub.data_dir().to_owned();
    let (ok, out, err) = run(bin("hub")
        .arg("--data-dir")
        .arg(&data)
        .arg("export")
        .arg(&file));
    assert!(ok, "{err}");
    assert!(out.contains("exported 25 statements"), "{out}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the export holds RED items: owner only");
    let key = alice.loaded.signing_key.verifying_key().unwrap();
    let record = isac_core::KeyRecord {
        key,
        org_id: "alice-bank".into(),
        valid_from: 0,
        retired_at: None,
        revoked_at: None,
    };
    let text = std::fs::read_to_string(&file).unwrap();
    let mut last_seq = 0;
    let mut exported = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let seq = v["sequence"].as_u64().unwrap();
        assert!(seq > last_seq, "not in sequence order");
        last_seq = seq;
        let env =
            isac_core::Envelope::from_json(&v["envelope"].to_string()).expect("DSSE envelope");
        let verified = isac_core::verify_envelope(&env, |_| Some(record.clone()))
            .expect("the exported envelope verifies against the member's key");
        assert_eq!(verified.statement.id.to_string(), v["id"].as_str().unwrap());
        assert_eq!(v["envelope_digest"].as_str().unwrap(), env.digest_ref());
        exported.push(v["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(exported, ids);
    // Never overwrites: a second export to the same file is a clear error.
    let (ok, _, err) = run(bin("hub")
        .arg("--data-dir")
        .arg(&data)
        .arg("export")
        .arg(&file));
    assert!(!ok && err.contains("exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    hub.stop().await;
}
