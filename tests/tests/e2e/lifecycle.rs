//! Membership and key lifecycle, end to end: rotation, revocation,
//! suspension, removal, roles, the signed key directory, renewal, audit.

use std::time::Duration;

use isac_core::directory::{KeyDirectory, PAYLOAD_TYPE_DIRECTORY_V1};
use isac_core::time::format_rfc3339;
use isac_core::{Statement, PAYLOAD_TYPE_STATEMENT_V1};
use isac_e2e::*;
use isac_proto::v1 as pb;
use member_agent::draft::{BulletinDraft, IndicatorDraft};
use member_agent::publish::{publish, publish_bulletin, publish_envelope};
use member_agent::Agent;
use member_agent::Sinks;
use tonic::Code;

fn draft(purl: &str) -> IndicatorDraft {
    IndicatorDraft {
        purl: Some(purl.into()),
        tlp: Some("green".into()),
        title: Some(format!("{purl} is malicious")),
        ..Default::default()
    }
}

fn statement(source: &str, purl: &str, created: i64) -> Statement {
    draft(purl)
        .into_statement(source, format_rfc3339(created))
        .unwrap()
}

fn sign_with(key: &isac_core::SigningKey, s: &Statement) -> isac_core::Envelope {
    key.sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, s.canonical_bytes())
        .unwrap()
}

fn hub_code(e: &member_agent::AgentError) -> Option<Code> {
    match e {
        member_agent::AgentError::Hub { code, .. } => Some(*code),
        _ => None,
    }
}

async fn sync_all(agent: &Agent, jsonl: &std::path::Path) -> member_agent::sync::SyncReport {
    let mut sink = Sinks::jsonl(Some(jsonl)).unwrap();
    agent.sync(false, &mut sink).await.unwrap()
}

/// Waits until the hub's signed directory reaches `min_version` (the hub
/// notices changes by polling its database).
async fn directory_at_least(agent: &Agent, min_version: u64) -> u64 {
    let channel = agent.channel().await.unwrap();
    for _ in 0..200 {
        let v = agent.refresh_directory(&channel).await.unwrap();
        if v >= min_version {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("directory never reached version {min_version}");
}

#[tokio::test]
async fn rotation_loses_and_refuses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let mut alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    publish(&alice, draft("pkg:npm/before-1")).await.unwrap();
    publish(&alice, draft("pkg:npm/before-2")).await.unwrap();
    let old_key = alice.loaded.signing_key.clone();
    // Signed before the rotation, delivered after it.
    let presigned = sign_with(
        &old_key,
        &statement("alice-bank", "pkg:npm/in-flight", member_agent::now()),
    );

    let rotated = member_agent::keys::rotate(&mut alice).await.unwrap();
    assert_ne!(rotated.new_key_id, rotated.retired_key_id);
    assert_eq!(alice.loaded.identity.signing_key_id, rotated.new_key_id);
    assert_eq!(
        alice.loaded.signing_key.verifying_key().unwrap().key_id(),
        rotated.new_key_id
    );

    publish_envelope(&alice, presigned)
        .await
        .expect("signed before retirement stays valid");
    publish(&alice, draft("pkg:npm/after-1")).await.unwrap();

    // The old key signing something dated after its retirement is refused.
    let late = sign_with(
        &old_key,
        &statement("alice-bank", "pkg:npm/late", member_agent::now() + 5),
    );
    let err = publish_envelope(&alice, late).await.unwrap_err();
    assert_eq!(hub_code(&err), Some(Code::PermissionDenied), "{err}");
    assert!(err.to_string().contains("retired"), "{err}");

    let report = sync_all(&bob, &dir.path().join("bob.jsonl")).await;
    assert_eq!(
        (report.new, report.rejected),
        (4, 0),
        "every item verified, old key and new"
    );
    let keys = hub.admin().list_keys().await.unwrap();
    let states: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| (k.key_id.as_str(), k.state.as_str()))
        .collect();
    assert!(
        states.contains(&(rotated.retired_key_id.as_str(), "retired")),
        "{states:?}"
    );
    assert!(
        states.contains(&(rotated.new_key_id.as_str(), "active")),
        "{states:?}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_by_the_hub_and_by_agents_reading_a_tampered_store() {
    let dir = tempfile::tempdir().unwrap();
    // One manual clock for the hub and both agents.
    let start = member_agent::now();
    let clock = hub::app::Clock::manual(start);
    let hub = TestHub::start_with_clock(&dir.path().join("hub"), clock.clone()).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    publish(&alice, draft("pkg:npm/good-before-compromise"))
        .await
        .unwrap();
    let report = sync_all(&bob, &dir.path().join("bob.jsonl")).await;
    assert_eq!(report.new, 1, "{report:?}");

    let key_id = alice.loaded.identity.signing_key_id.clone();
    // Timestamps have whole seconds: revoke from a later second than the good item.
    let revoked_at = start + 1;
    clock.set(revoked_at);
    let k = hub
        .admin()
        .revoke_key(pb::RevokeKeyRequest {
            key_id: key_id.clone(),
            effective_at: format_rfc3339(revoked_at),
            reason: "laptop stolen".into(),
        })
        .await
        .unwrap();
    assert_eq!(k.state, "revoked");

    // At the hub.
    let err = publish(&alice, draft("pkg:npm/after-compromise"))
        .await
        .unwrap_err();
    assert_eq!(hub_code(&err), Some(Code::PermissionDenied), "{err}");
    assert!(err.to_string().contains("revoked"), "{err}");

    // At an agent: someone with the stolen key and write access to the hub's
    // database slips in a statement dated after the revocation.
    let forged = sign_with(
        &alice.loaded.signing_key,
        &statement("alice-bank", "pkg:npm/smuggled", revoked_at + 10),
    );
    {
        let conn = rusqlite::Connection::open(hub.data_dir().join("hub.db")).unwrap();
        conn.execute(
            "INSERT INTO statements (id, revision, source_org, tlp, audience, kind, created_at, received_at,
                payload_type, payload, key_id, signature, digest)
             VALUES (?1, 1, 'alice-bank', 'green', '[]', 'package', ?2, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                uuid::Uuid::new_v4().to_string(),
                revoked_at + 10,
                forged.payload_type,
                forged.payload,
                key_id,
                forged.signatures[0].sig,
                forged.digest()
            ],
        )
        .unwrap();
    }
    // The hub's head only moves on its own commits; a later genuine item
    // wakes readers. The smuggled row never went through the hub's log:
    // delivered without a log position, it stops ingesting (a log alert
    // that names the signature failure too), and nothing of its batch is
    // stored.
    publish(&bob, draft("pkg:npm/from-bob")).await.unwrap();
    let mut sink = Sinks::jsonl(Some(&dir.path().join("bob.jsonl"))).unwrap();
    let err = bob.sync(false, &mut sink).await.unwrap_err().to_string();
    assert!(err.contains("NO LOG POSITION"), "{err}");
    assert!(err.contains("revoked"), "{err}");
    let held = bob.store.lock().unwrap().list(10).unwrap();
    assert_eq!(held.len(), 1);
    assert!(held
        .iter()
        .any(|i| i.value == "pkg:npm/good-before-compromise" && i.status == "valid"));
    assert!(!held.iter().any(|i| i.value == "pkg:npm/smuggled"));
    hub.stop().await;
}

#[tokio::test]
async fn suspending_a_member_closes_its_stream_and_refuses_new_calls() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let _bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let bob_dir = dir.path().join("bob");
    let jsonl = dir.path().join("bob.jsonl");
    let follower_jsonl = jsonl.clone();
    let follower = tokio::spawn(async move {
        let bob = Agent::open(&member_agent::StateDir::new(bob_dir)).unwrap();
        let mut sink = Sinks::jsonl(Some(&follower_jsonl)).unwrap();
        bob.sync(true, &mut sink).await
    });
    publish(&alice, draft("pkg:npm/x")).await.unwrap();
    // Bob's stream is open and live once the item has reached his sink.
    eventually(
        "bob's live stream to deliver the item",
        Duration::from_secs(30),
        || std::fs::read_to_string(&jsonl).is_ok_and(|t| t.lines().count() == 1),
    )
    .await;
    hub.admin()
        .set_member_status(pb::SetMemberStatusRequest {
            org_id: "bob-bank".into(),
            action: "suspend".into(),
        })
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), follower)
        .await
        .expect("the stream of a suspended member must end")
        .unwrap();
    let err = ended.unwrap_err();
    assert_eq!(hub_code(&err), Some(Code::PermissionDenied), "{err}");
    assert!(err.to_string().contains("suspended"), "{err}");

    let bob = Agent::open(&member_agent::StateDir::new(dir.path().join("bob"))).unwrap();
    let err = publish(&bob, draft("pkg:npm/y")).await.unwrap_err();
    assert_eq!(hub_code(&err), Some(Code::PermissionDenied), "{err}");

    hub.admin()
        .set_member_status(pb::SetMemberStatusRequest {
            org_id: "bob-bank".into(),
            action: "resume".into(),
        })
        .await
        .unwrap();
    publish(&bob, draft("pkg:npm/y"))
        .await
        .expect("resumed member publishes again");
    hub.stop().await;
}

#[tokio::test]
async fn bulletins_are_for_coordinators_only() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let staff =
        enrolled_agent_with_role(&hub, "isac-staff", "coordinator", &dir.path().join("staff"))
            .await;
    let bulletin = || BulletinDraft {
        tlp: Some("green".into()),
        title: "Campaign against npm maintainers".into(),
        body: "Rotate npm tokens now.".into(),
        severity: Some("critical".into()),
        incident_id: Some("INC-2026-042".into()),
        ..Default::default()
    };
    let err = publish_bulletin(&alice, bulletin()).await.unwrap_err();
    assert_eq!(hub_code(&err), Some(Code::PermissionDenied), "{err}");
    assert!(err.to_string().contains("only coordinators"), "{err}");
    assert_eq!(hub.stored_statements(), 0);

    publish_bulletin(&staff, bulletin()).await.unwrap();
    let jsonl = dir.path().join("alice.jsonl");
    let report = sync_all(&alice, &jsonl).await;
    assert_eq!(report.new, 1);
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&jsonl)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["bulletin"], true);
    assert_eq!(line["kind"], "bulletin");
    assert_eq!(line["value"], "INC-2026-042");
    hub.stop().await;
}

#[tokio::test]
async fn agents_refuse_rolled_back_frozen_or_foreign_directories() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let channel = bob.channel().await.unwrap();
    let old = pb::key_directory_client::KeyDirectoryClient::new(channel.clone())
        .list_keys(pb::ListKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .signed_directory
        .map(isac_core::Envelope::from)
        .unwrap();
    let v1 = bob.accept_directory(&old).unwrap();

    // A new member enrolls: the hub re-signs with a higher version.
    let _carol = enrolled_agent(&hub, "carol-bank", &dir.path().join("carol")).await;
    let v2 = directory_at_least(&bob, v1 + 1).await;
    assert!(v2 > v1);

    // Replaying the older, validly signed directory is a rollback.
    let err = bob.accept_directory(&old).unwrap_err().to_string();
    assert!(err.contains("rollback"), "{err}");

    // A directory signed by the real hub key but already expired (frozen).
    let hub_key = isac_core::SigningKey::from_pkcs8_pem(
        &std::fs::read(hub.data_dir().join("hub-signing.key")).unwrap(),
    )
    .unwrap();
    let current = bob.directory().unwrap();
    let frozen = KeyDirectory {
        version: current.version + 100,
        issued: format_rfc3339(member_agent::now() - 7200),
        expires: format_rfc3339(member_agent::now() - 3600),
        keys: current.keys.clone(),
        peers: vec![],
        removed_peers: Vec::new(),
        default_lifetimes: Default::default(),
        federated: Vec::new(),
    };
    let env = hub_key
        .sign_envelope(PAYLOAD_TYPE_DIRECTORY_V1, frozen.canonical_bytes())
        .unwrap();
    let err = bob.accept_directory(&env).unwrap_err().to_string();
    assert!(err.contains("expired"), "{err}");

    // Anyone else's signature.
    let other = isac_core::SigningKey::generate().unwrap();
    let mut fresh = frozen.clone();
    fresh.expires = format_rfc3339(member_agent::now() + 3600);
    let env = other
        .sign_envelope(PAYLOAD_TYPE_DIRECTORY_V1, fresh.canonical_bytes())
        .unwrap();
    let err = bob.accept_directory(&env).unwrap_err().to_string();
    assert!(err.contains("not signed by the pinned hub key"), "{err}");

    // A validly signed, fresh directory that quietly drops a key rewrites history.
    let mut dropped = fresh.clone();
    dropped.keys.retain(|k| k.org_id != "carol-bank");
    let env = hub_key
        .sign_envelope(PAYLOAD_TYPE_DIRECTORY_V1, dropped.canonical_bytes())
        .unwrap();
    let err = bob.accept_directory(&env).unwrap_err().to_string();
    assert!(err.contains("disappeared"), "{err}");
    assert_eq!(
        bob.directory().unwrap().version,
        v2,
        "the held directory is unchanged"
    );
    hub.stop().await;
}

#[tokio::test]
async fn removing_a_member_keeps_its_past_statements_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    publish(&alice, draft("pkg:npm/evidence")).await.unwrap();
    hub.admin()
        .set_member_status(pb::SetMemberStatusRequest {
            org_id: "alice-bank".into(),
            action: "remove".into(),
        })
        .await
        .unwrap();
    let err = publish(&alice, draft("pkg:npm/after-removal"))
        .await
        .unwrap_err();
    assert_eq!(hub_code(&err), Some(Code::PermissionDenied), "{err}");

    // A member joining later still verifies what alice said before removal.
    let dave = enrolled_agent(&hub, "dave-bank", &dir.path().join("dave")).await;
    let report = sync_all(&dave, &dir.path().join("dave.jsonl")).await;
    assert_eq!((report.new, report.rejected), (1, 0));
    let err = hub
        .admin()
        .set_member_status(pb::SetMemberStatusRequest {
            org_id: "alice-bank".into(),
            action: "resume".into(),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("removed"), "{err}");
    hub.stop().await;
}

#[tokio::test]
async fn admin_api_needs_the_admin_role_and_everything_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let ops = enrolled_agent_with_role(&hub, "isac-ops", "admin", &dir.path().join("ops")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;

    let mut as_member = pb::admin_client::AdminClient::new(alice.channel().await.unwrap());
    let err = as_member
        .list_members(pb::ListMembersRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = as_member
        .add_member(pb::AddMemberRequest {
            org_id: "evil-corp".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let mut as_admin = pb::admin_client::AdminClient::new(ops.channel().await.unwrap());
    let token = as_admin
        .add_member(pb::AddMemberRequest {
            org_id: "erin-bank".into(),
            name: "Erin".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(token.token.starts_with("isac1.erin-bank."));
    as_admin
        .add_person(pb::AddPersonRequest {
            org_id: "alice-bank".into(),
            person_id: "ann".into(),
            name: "Ann Analyst".into(),
            contact: "ann@alice.example".into(),
        })
        .await
        .unwrap();
    let err = as_admin
        .add_person(pb::AddPersonRequest {
            org_id: "nobody".into(),
            person_id: "x".into(),
            name: "X".into(),
            contact: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let detail = as_admin
        .show_member(pb::ShowMemberRequest {
            org_id: "alice-bank".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.people.len(), 1);
    assert_eq!(detail.agents.len(), 1);
    assert_eq!(detail.keys[0].state, "active");

    let audit = hub
        .admin()
        .audit(pb::ListAuditRequest { limit: 100 })
        .await
        .unwrap()
        .entries;
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.action.as_str(), a.actor.as_str()))
        .collect();
    assert!(
        actions.contains(&("member.add", "org:isac-ops/agent:agent-1")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("person.add", "org:isac-ops/agent:agent-1")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("agent.enroll", "org:alice-bank/agent:agent-1")),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|(a, who)| *a == "member.add" && who.starts_with("local:")),
        "{actions:?}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn renewing_the_certificate_keeps_the_old_one_working_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let mut alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let old_channel = alice.channel().await.unwrap();
    let old_fp = hub::pki::cert_fingerprint(&alice.loaded.tls_cert);
    member_agent::keys::renew(&mut alice).await.unwrap();
    assert_ne!(hub::pki::cert_fingerprint(&alice.loaded.tls_cert), old_fp);
    publish(&alice, draft("pkg:npm/with-new-cert"))
        .await
        .unwrap();
    // The old certificate (still within its validity) still answers.
    pb::key_directory_client::KeyDirectoryClient::new(old_channel)
        .list_keys(pb::ListKeysRequest {})
        .await
        .expect("old certificate keeps working");
    let reopened = Agent::open(&member_agent::StateDir::new(dir.path().join("alice"))).unwrap();
    publish(&reopened, draft("pkg:npm/after-restart"))
        .await
        .unwrap();
    hub.stop().await;
}

#[tokio::test]
async fn a_member_cannot_revise_another_members_item() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let published = publish(&alice, draft("pkg:npm/alices-finding"))
        .await
        .unwrap();

    // Bob signs "revision 2" of Alice's id with his own key, as himself.
    let mut hijack = statement("bob-bank", "pkg:npm/harmless", member_agent::now());
    hijack.id = published.id.parse().unwrap();
    hijack.revision = 2;
    let err = publish_envelope(&bob, sign_with(&bob.loaded.signing_key, &hijack))
        .await
        .unwrap_err();
    assert_eq!(hub_code(&err), Some(Code::AlreadyExists), "{err}");
    assert!(
        !err.to_string().contains("alice"),
        "the error must not name the owner: {err}"
    );
    assert_eq!(hub.stored_statements(), 1);

    // Alice can revise her own; an older revision afterwards is refused.
    let mut rev2 = statement("alice-bank", "pkg:npm/alices-finding", member_agent::now());
    rev2.id = hijack.id;
    rev2.revision = 2;
    publish_envelope(&alice, sign_with(&alice.loaded.signing_key, &rev2))
        .await
        .unwrap();
    let mut rev1 = rev2.clone();
    rev1.revision = 1;
    if let isac_core::Body::Indicator(i) = &mut rev1.body {
        i.title = "a different first revision".into();
    }
    let err = publish_envelope(&alice, sign_with(&alice.loaded.signing_key, &rev1))
        .await
        .unwrap_err();
    assert_eq!(hub_code(&err), Some(Code::AlreadyExists), "{err}");
    hub.stop().await;
}

#[tokio::test]
async fn tokens_enroll_one_org_and_replaced_certificates_map_to_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    hub.add_member("bob-bank").await;
    let alice_token = hub.add_member("alice-bank").await;
    // Alice's secret presented as a token for bob-bank.
    let forged: &'static str = Box::leak(
        alice_token
            .replacen("alice-bank", "bob-bank", 1)
            .into_boxed_str(),
    );
    let url: &'static str = Box::leak(hub.url().into_boxed_str());
    let err = member_agent::enroll::enroll(
        &member_agent::StateDir::new(dir.path().join("x")),
        member_agent::enroll::EnrollOptions {
            hub_url: url,
            token: forged,
            agent_name: "a",
            force: false,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(hub_code(&err), Some(Code::Unauthenticated), "{err}");

    // Re-enrolling an agent name replaces its certificate at once.
    let first = member_agent::StateDir::new(dir.path().join("first"));
    let alice_token: &'static str = Box::leak(alice_token.into_boxed_str());
    member_agent::enroll::enroll(
        &first,
        member_agent::enroll::EnrollOptions {
            hub_url: url,
            token: alice_token,
            agent_name: "soc",
            force: false,
        },
    )
    .await
    .unwrap();
    let old = Agent::open(&first).unwrap();
    let again: &'static str = Box::leak(hub.new_token("alice-bank", 600).await.into_boxed_str());
    member_agent::enroll::enroll(
        &member_agent::StateDir::new(dir.path().join("second")),
        member_agent::enroll::EnrollOptions {
            hub_url: url,
            token: again,
            agent_name: "soc",
            force: false,
        },
    )
    .await
    .unwrap();
    let err = publish(&old, draft("pkg:npm/x")).await.unwrap_err();
    assert_eq!(hub_code(&err), Some(Code::Unauthenticated), "{err}");
    assert!(err.to_string().contains("replaced"), "{err}");
    hub.stop().await;
}

#[tokio::test]
async fn following_agents_are_told_of_a_revocation_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let _bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let bob = std::sync::Arc::new(
        Agent::open(&member_agent::StateDir::new(dir.path().join("bob"))).unwrap(),
    );
    let follower = {
        let bob = bob.clone();
        let jsonl = dir.path().join("bob.jsonl");
        tokio::spawn(async move {
            let mut sink = Sinks::jsonl(Some(&jsonl)).unwrap();
            let _ = bob.sync(true, &mut sink).await;
        })
    };
    let key_id = alice.loaded.identity.signing_key_id.clone();
    eventually(
        "alice's key in bob's directory",
        Duration::from_secs(30),
        || bob.directory().is_some_and(|d| d.entry(&key_id).is_some()),
    )
    .await;
    hub.admin()
        .revoke_key(pb::RevokeKeyRequest {
            key_id: key_id.clone(),
            effective_at: String::new(),
            reason: "test".into(),
        })
        .await
        .unwrap();
    // No call from bob: the open stream carries the news.
    eventually(
        "the following agent to learn of the revocation",
        Duration::from_secs(30),
        || {
            bob.directory()
                .and_then(|d| d.entry(&key_id).map(|k| k.state() == "revoked"))
                == Some(true)
        },
    )
    .await;
    follower.abort();
    hub.stop().await;
}

/// The hub keeps callers and signing keys it read for as long as the
/// membership epoch holds, and learns of a new epoch by polling (here
/// every minute: not during the test). A suspension or a key
/// revocation must still stop the very next publish: the append's own
/// transaction sees the epoch moved, and the hub checks again from the
/// store. Nothing is stored for either.
#[tokio::test]
async fn a_suspension_or_key_revocation_stops_the_next_publish_before_the_hub_polls_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hub.toml"), "epoch_poll_ms = 60000\n").unwrap();
    let start = member_agent::now();
    let clock = hub::app::Clock::manual(start);
    let hub = TestHub::start_with_clock(&data, clock.clone()).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    // Each caller and key read once, and cached.
    publish(&alice, draft("pkg:npm/alice-1")).await.unwrap();
    publish(&bob, draft("pkg:npm/bob-1")).await.unwrap();
    assert_eq!(hub.stored_statements(), 2);

    hub.admin()
        .set_member_status(pb::SetMemberStatusRequest {
            org_id: "bob-bank".into(),
            action: "suspend".into(),
        })
        .await
        .unwrap();
    let err = publish(&bob, draft("pkg:npm/bob-2")).await.unwrap_err();
    assert_eq!(hub_code(&err), Some(Code::PermissionDenied), "{err}");
    assert!(err.to_string().contains("suspended"), "{err}");

    clock.set(start + 1);
    hub.admin()
        .revoke_key(pb::RevokeKeyRequest {
            key_id: alice.loaded.identity.signing_key_id.clone(),
            effective_at: format_rfc3339(start + 1),
            reason: "laptop stolen".into(),
        })
        .await
        .unwrap();
    let err = publish(&alice, draft("pkg:npm/alice-2")).await.unwrap_err();
    assert_eq!(hub_code(&err), Some(Code::PermissionDenied), "{err}");
    assert!(err.to_string().contains("revoked"), "{err}");
    assert_eq!(hub.stored_statements(), 2, "nothing stored after either");
    hub.stop().await;
}
