//! End to end, in process: real hub, real agents, real mTLS on loopback,
//! real SQLite files.

use std::time::Duration;

use isac_core::{Statement, PAYLOAD_TYPE_STATEMENT_V1};
use isac_e2e::*;
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::{publish, publish_envelope};
use member_agent::Agent;
use member_agent::Sinks;
use tonic::Code;

fn package_draft(purl: &str) -> IndicatorDraft {
    IndicatorDraft {
        kind: Some("package".into()),
        purl: Some(purl.into()),
        tlp: Some("green".into()),
        title: Some(format!("{purl} is malicious")),
        severity: Some("high".into()),
        ..Default::default()
    }
}

/// A statement claiming `source`, whoever ends up signing it.
fn statement_for(source: &str, purl: &str) -> Statement {
    package_draft(purl)
        .into_statement(source, isac_core::time::format_rfc3339(member_agent::now()))
        .unwrap()
}

fn sign(agent: &Agent, s: &Statement) -> isac_core::Envelope {
    agent
        .loaded
        .signing_key
        .sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, s.canonical_bytes())
        .unwrap()
}

async fn publish_raw(
    agent: &Agent,
    env: isac_core::Envelope,
) -> Result<pb::PublishResponse, tonic::Status> {
    let channel = agent.channel().await.unwrap();
    pb::publisher_client::PublisherClient::new(channel)
        .publish(pb::PublishRequest {
            envelope: Some(env.into()),
            audience_openings: vec![],
            scrub_overrides: vec![],
        })
        .await
        .map(|r| r.into_inner())
}

fn jsonl_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_signed_indicator_travels_from_one_member_to_another() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;

    let published = publish(&alice, package_draft("pkg:npm/evil-pkg@1.0.0"))
        .await
        .unwrap();
    assert!(!published.duplicate);
    assert_eq!(hub.stored_statements(), 1);

    let jsonl = dir.path().join("bob.jsonl");
    let mut sink = Sinks::jsonl(Some(&jsonl)).unwrap();
    let report = bob.sync(false, &mut sink).await.unwrap();
    assert_eq!((report.new, report.rejected, report.cursor), (1, 0, 1));

    let lines = jsonl_lines(&jsonl);
    assert_eq!(lines.len(), 1);
    let item = &lines[0];
    assert_eq!(item["id"], published.id.as_str());
    assert_eq!(item["source"], "alice-bank");
    assert_eq!(item["tlp"], "green");
    assert_eq!(item["value"], "pkg:npm/evil-pkg@1.0.0");
    assert_eq!(item["signature"]["status"], "verified");
    assert_eq!(
        item["signature"]["key_id"],
        alice.loaded.identity.signing_key_id.as_str()
    );
    let held = bob.store.lock().unwrap().list(10).unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].id, published.id);

    // Nothing new: a second sync is empty and the cursor holds.
    let report = bob.sync(false, &mut sink).await.unwrap();
    assert_eq!((report.new, report.cursor), (0, 1));
    hub.stop().await;
}

#[tokio::test]
async fn live_items_follow_the_backlog_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    for i in 0..20 {
        publish(&alice, package_draft(&format!("pkg:npm/backlog-{i}")))
            .await
            .unwrap();
    }
    let jsonl = dir.path().join("bob.jsonl");
    let follower = {
        let jsonl = jsonl.clone();
        let bob_dir = dir.path().join("bob");
        tokio::spawn(async move {
            let agent = Agent::open(&member_agent::StateDir::new(bob_dir)).unwrap();
            let mut sink = Sinks::jsonl(Some(&jsonl)).unwrap();
            let _ = agent.sync(true, &mut sink).await;
        })
    };
    drop(bob);
    // Publish while the follower is switching from backlog to live.
    for i in 0..30 {
        publish(&alice, package_draft(&format!("pkg:npm/live-{i}")))
            .await
            .unwrap();
    }
    eventually("50 items in bob's sink", Duration::from_secs(60), || {
        jsonl_lines(&jsonl).len() >= 50
    })
    .await;
    follower.abort();
    let seen = jsonl_lines(&jsonl);
    let sequences: Vec<u64> = seen
        .iter()
        .map(|l| l["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(
        sequences,
        (1..=50).collect::<Vec<u64>>(),
        "every item once, in order"
    );
    hub.stop().await;
}

#[tokio::test]
async fn tampered_payload_or_signature_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let s = statement_for("alice-bank", "pkg:npm/evil-pkg@1.0.0");

    let mut env = sign(&alice, &s);
    let text = String::from_utf8(env.payload.clone()).unwrap();
    env.payload = text.replace("evil-pkg", "good-pkg").into_bytes();
    let err = publish_raw(&alice, env).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("signature does not verify"),
        "{}",
        err.message()
    );

    let mut env = sign(&alice, &s);
    env.signatures[0].sig[7] ^= 0x01;
    let err = publish_raw(&alice, env).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("signature does not verify"),
        "{}",
        err.message()
    );

    let mut env = sign(&alice, &s);
    env.signatures.clear();
    let err = publish_raw(&alice, env).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("exactly one signature"),
        "{}",
        err.message()
    );

    // Signed but not a v1 statement at all.
    let env = alice
        .loaded
        .signing_key
        .sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, b"{\"hello\":1}".to_vec())
        .unwrap();
    let err = publish_raw(&alice, env).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("malformed statement"),
        "{}",
        err.message()
    );

    // Over the statement size limit (but under the message limit).
    let big = alice
        .loaded
        .signing_key
        .sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, vec![b'x'; 100 * 1024])
        .unwrap();
    let err = publish_raw(&alice, big).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("larger than"), "{}", err.message());

    // Over the gRPC message limit: refused by the transport, hub stays up.
    let huge = alice
        .loaded
        .signing_key
        .sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, vec![b'x'; 1024 * 1024])
        .unwrap();
    let err = publish_raw(&alice, huge).await.unwrap_err();
    assert_ne!(err.code(), Code::Ok);

    assert_eq!(hub.stored_statements(), 0, "nothing refused is stored");
    // And the hub still works.
    publish(&alice, package_draft("pkg:npm/after"))
        .await
        .unwrap();
    assert_eq!(hub.stored_statements(), 1);
    hub.stop().await;
}

#[tokio::test]
async fn a_statement_claiming_another_member_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;

    // Alice's key, Alice's connection, statement claiming Bob.
    let forged = sign(&alice, &statement_for("bob-bank", "pkg:npm/x"));
    let err = publish_raw(&alice, forged).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("claims source `bob-bank`"),
        "{}",
        err.message()
    );

    // Bob's genuine envelope replayed over Alice's connection.
    let bobs = sign(&bob, &statement_for("bob-bank", "pkg:npm/y"));
    let err = publish_raw(&alice, bobs).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("authenticated as `alice-bank`"),
        "{}",
        err.message()
    );

    assert_eq!(hub.stored_statements(), 0);
    hub.stop().await;
}

#[tokio::test]
async fn resending_is_idempotent_and_equivocation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let s = statement_for("alice-bank", "pkg:npm/evil@1.0.0");
    let env = sign(&alice, &s);
    let first = publish_envelope(&alice, env.clone()).await.unwrap();
    let again = publish_envelope(&alice, env).await.unwrap();
    assert_eq!(
        (first.id, first.revision),
        (again.id.clone(), again.revision)
    );
    assert!(!first.duplicate);
    assert!(again.duplicate);

    let mut changed = s.clone();
    if let isac_core::Body::Indicator(i) = &mut changed.body {
        i.title = "different".into();
    }
    let err = publish_raw(&alice, sign(&alice, &changed))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(
        err.message().contains("different content"),
        "{}",
        err.message()
    );
    assert_eq!(hub.stored_statements(), 1);
    hub.stop().await;
}

/// Signs a statement with an arbitrary audience, skipping the agent's own
/// checks, to see what the hub does with it.
async fn publish_with_audience(
    agent: &Agent,
    tlp: &str,
    audience: &[&str],
    openings_override: Option<Vec<isac_core::audience::AudienceOpening>>,
) -> Result<member_agent::publish::Published, member_agent::AgentError> {
    let entries: Vec<String> = audience.iter().map(|s| s.to_string()).collect();
    let (commitments, openings) = member_agent::draft::blind_audience(&entries).unwrap();
    let mut s = statement_for(agent.org_id(), "pkg:npm/secret");
    s.tlp = tlp.parse().unwrap();
    s.audience = commitments;
    let env = sign(agent, &s);
    member_agent::publish::publish_with_openings(agent, env, &openings_override.unwrap_or(openings))
        .await
}

#[tokio::test]
async fn bad_audiences_are_invalid_argument_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let _bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("red", vec![], "requires an audience"),
        ("red", vec!["org:bob-bank"], "names people only"),
        (
            "red",
            vec!["person:bob-bank/nobody"],
            "unknown audience entry",
        ),
        ("amber+strict", vec![], "requires an audience"),
        ("amber", vec!["org:no-such-org"], "unknown audience entry"),
        (
            "amber",
            vec!["group:no-such-group"],
            "unknown audience entry",
        ),
        ("green", vec!["org:bob-bank"], "whole community"),
        ("amber", vec!["org:anonymous"], "unknown audience entry"),
    ];
    for (tlp, audience, expect) in cases {
        let err = publish_with_audience(&alice, tlp, &audience, None)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                &err,
                member_agent::AgentError::Hub {
                    code: Code::InvalidArgument,
                    ..
                }
            ) && text.contains(expect),
            "{tlp} {audience:?}: {text}"
        );
    }
    // Openings that do not match the signed commitments (a name smuggled in,
    // or one left out) are refused too.
    let (_, smuggled) = member_agent::draft::blind_audience(&["org:bob-bank".to_string()]).unwrap();
    let err = publish_with_audience(&alice, "amber", &["org:alice-bank"], Some(smuggled))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("do not match"), "{err}");
    let err = publish_with_audience(&alice, "amber", &["org:bob-bank"], Some(vec![]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("do not match"), "{err}");
    assert_eq!(hub.stored_statements(), 0);

    // The agent refuses the obvious mistakes itself, before sending.
    let mut d = package_draft("pkg:npm/x");
    d.tlp = Some("red".into());
    d.audience = Some(vec!["org:bob-bank".into()]);
    let err = publish(&alice, d).await.unwrap_err();
    assert!(matches!(err, member_agent::AgentError::Usage(_)), "{err}");
    hub.stop().await;
}

#[tokio::test]
async fn without_a_client_certificate_only_enrollment_answers() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let env = sign(&alice, &statement_for("alice-bank", "pkg:npm/x"));

    let channel = raw_channel(&hub, None).await.unwrap();
    let info = pb::enrollment_client::EnrollmentClient::new(channel.clone())
        .get_hub_info(pb::GetHubInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.protocol_version, "isac.v1");

    let err = pb::publisher_client::PublisherClient::new(channel.clone())
        .publish(pb::PublishRequest {
            envelope: Some(env.into()),
            audience_openings: vec![],
            scrub_overrides: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("enroll first"), "{}", err.message());

    let err = pb::key_directory_client::KeyDirectoryClient::new(channel.clone())
        .list_keys(pb::ListKeysRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let err = pb::subscriber_client::SubscriberClient::new(channel)
        .subscribe(pb::SubscribeRequest {
            after_sequence: 0,
            follow: false,
            filter: None,
            include_expired: false,
            cursor: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(hub.stored_statements(), 0);
    hub.stop().await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_fails_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let (cert, key) = foreign_client_identity();
    let outcome = match raw_channel(&hub, Some((&cert, &key))).await {
        Err(e) => Err(e.to_string()),
        Ok(channel) => pb::key_directory_client::KeyDirectoryClient::new(channel)
            .list_keys(pb::ListKeysRequest {})
            .await
            .map(|_| ())
            .map_err(|s| format!("{s:?}")),
    };
    let err = outcome.expect_err("a foreign certificate must not get through");
    assert!(
        err.contains("certificate") || err.contains("transport") || err.contains("alert"),
        "{err}"
    );

    // The listener keeps serving good clients afterwards.
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    publish(&alice, package_draft("pkg:npm/x")).await.unwrap();
    hub.stop().await;
}

#[tokio::test]
async fn a_hub_ca_certificate_the_hub_never_issued_to_a_member_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let (cert, key) = unregistered_identity(&hub, "ghost-org");
    let channel = raw_channel(&hub, Some((&cert, &key))).await.unwrap();
    let err = pb::key_directory_client::KeyDirectoryClient::new(channel)
        .list_keys(pb::ListKeysRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        err.message().contains("not registered"),
        "{}",
        err.message()
    );
    hub.stop().await;
}

#[tokio::test]
async fn reused_or_expired_enrollment_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let token = hub.add_member("alice-bank").await;
    let opts = |token: &'static str, name: &'static str| member_agent::enroll::EnrollOptions {
        hub_url: Box::leak(hub.url().into_boxed_str()),
        token,
        agent_name: name,
        force: false,
    };
    let token: &'static str = Box::leak(token.into_boxed_str());
    let a = member_agent::StateDir::new(dir.path().join("a"));
    member_agent::enroll::enroll(&a, opts(token, "one"))
        .await
        .unwrap();

    let b = member_agent::StateDir::new(dir.path().join("b"));
    let err = member_agent::enroll::enroll(&b, opts(token, "two"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, member_agent::AgentError::Hub { code: Code::Unauthenticated, message } if message.contains("already used")),
        "{err}"
    );
    assert!(!b.is_enrolled(), "nothing written for a refused enrollment");

    let expired: &'static str = Box::leak(hub.new_token("alice-bank", 0).await.into_boxed_str());
    let err = member_agent::enroll::enroll(&b, opts(expired, "two"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, member_agent::AgentError::Hub { code: Code::Unauthenticated, message } if message.contains("expired")),
        "{err}"
    );

    // A token pinning another hub's CA never reaches the enroll call.
    let other_dir = tempfile::tempdir().unwrap();
    let other = TestHub::start(other_dir.path()).await;
    let foreign: &'static str = Box::leak(other.add_member("alice-bank").await.into_boxed_str());
    let err = member_agent::enroll::enroll(&b, opts(foreign, "two"))
        .await
        .unwrap_err();
    assert!(matches!(err, member_agent::AgentError::Pin(_)), "{err}");

    assert_eq!(hub.query_i64("SELECT count(*) FROM agents"), 1);
    assert_eq!(hub.query_i64("SELECT count(*) FROM signing_keys"), 1);
    other.stop().await;
    hub.stop().await;
}

#[tokio::test]
async fn an_item_altered_in_the_hub_database_is_refused_by_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    publish(&alice, package_draft("pkg:npm/evil-pkg@1.0.0"))
        .await
        .unwrap();
    publish(&alice, package_draft("pkg:npm/second@1.0.0"))
        .await
        .unwrap();

    // A malicious operator (or a compromised database) rewrites item 1 while
    // the hub is down (a running hub serves recent items from memory).
    let addr = hub.addr.to_string();
    let data_dir = hub.data_dir().to_owned();
    hub.stop().await;
    {
        let conn = rusqlite::Connection::open(data_dir.join("hub.db")).unwrap();
        let payload: Vec<u8> = conn
            .query_row("SELECT payload FROM statements WHERE seq = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        let altered = String::from_utf8(payload)
            .unwrap()
            .replace("evil-pkg", "safe-pkg");
        conn.execute(
            "UPDATE statements SET payload = ?1 WHERE seq = 1",
            [altered.into_bytes()],
        )
        .unwrap();
    }
    let hub = TestHub::start_at(&data_dir, &addr).await;

    // The rewritten item fails its signature and its inclusion in the
    // hub's log (its leaf hash was fixed when it was stored): a log alert,
    // and nothing of the batch is stored (tlog.rs has the whole story).
    let jsonl = dir.path().join("bob.jsonl");
    let mut sink = Sinks::jsonl(Some(&jsonl)).unwrap();
    let err = bob.sync(false, &mut sink).await.unwrap_err().to_string();
    assert!(
        err.contains("inclusion failed") && err.contains("signature failed"),
        "{err}"
    );
    let lines = jsonl_lines(&jsonl);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["action"], "log-alert");
    assert_eq!(bob.store.lock().unwrap().count_items().unwrap(), 0);
    hub.stop().await;
}

/// The leaf index and purl of every item on a stream until it ends (or,
/// for a following stream, until `want` items arrived), and whether it
/// said "caught up".
async fn drain(
    stream: &mut tonic::Streaming<pb::SubscribeResponse>,
    want: Option<usize>,
) -> (Vec<(u64, String)>, bool) {
    let mut items = Vec::new();
    let mut caught_up = false;
    while want.is_none_or(|w| items.len() < w) {
        let Some(m) = stream.message().await.unwrap() else {
            break;
        };
        match m.event {
            Some(pb::subscribe_response::Event::Item(d)) => {
                let payload = String::from_utf8(d.envelope.unwrap().payload).unwrap();
                let at = payload.find("pkg:npm/").expect("a purl in the payload");
                let purl = payload[at..].split('"').next().unwrap().to_owned();
                items.push((d.log_index.unwrap(), purl));
            }
            Some(pb::subscribe_response::Event::CaughtUp(_)) => caught_up = true,
            _ => {}
        }
    }
    (items, caught_up)
}

/// A sync without `follow` reads up to the head it found when it started
/// and ends, however long another member keeps publishing; a following
/// stream gets every item once, in order, whether a commit carried one
/// item or many (the stream hands the transport all that is ready at once).
#[tokio::test]
async fn a_sync_ends_while_others_keep_publishing_and_a_follower_gets_each_item_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    for n in 0..5 {
        publish(&alice, package_draft(&format!("pkg:npm/early-{n}")))
            .await
            .unwrap();
    }
    let request = |follow| pb::SubscribeRequest {
        after_sequence: 0,
        follow,
        filter: None,
        include_expired: false,
        cursor: Vec::new(),
    };
    let channel = bob.channel().await.unwrap();
    let mut live = pb::subscriber_client::SubscriberClient::new(channel.clone())
        .subscribe(request(true))
        .await
        .unwrap()
        .into_inner();

    // Alice publishes without pause, one at a time and in batches of 40
    // (one commit each), until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if n % 2 == 0 {
                    publish(&alice, package_draft(&format!("pkg:npm/live-{n}")))
                        .await
                        .unwrap();
                } else {
                    let batch = (0..40)
                        .map(|k| {
                            let purl = format!("pkg:npm/live-{n}-{k}");
                            (
                                sign(&alice, &statement_for("alice-bank", &purl)),
                                Vec::new(),
                            )
                        })
                        .collect();
                    let results = member_agent::publish::publish_batch(&alice, batch)
                        .await
                        .unwrap();
                    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
                }
                n += 1;
            }
        })
    };
    eventually(
        "alice publishes while bob syncs",
        Duration::from_secs(30),
        || hub.stored_statements() > 50,
    )
    .await;
    let mut sync = pb::subscriber_client::SubscriberClient::new(channel)
        .subscribe(request(false))
        .await
        .unwrap()
        .into_inner();
    let (synced, caught_up) =
        tokio::time::timeout(Duration::from_secs(120), drain(&mut sync, None))
            .await
            .expect("a sync without follow ends while others publish");
    assert!(caught_up, "the sync ends with CaughtUp");
    assert!(synced.len() > 50, "{}", synced.len());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    publisher.await.unwrap();

    let stored = hub.stored_statements() as usize;
    let (followed, _) =
        tokio::time::timeout(Duration::from_secs(120), drain(&mut live, Some(stored)))
            .await
            .expect("the following stream delivers every stored item");
    for items in [&synced, &followed] {
        let indexes: Vec<u64> = items.iter().map(|(i, _)| *i).collect();
        assert!(
            indexes.windows(2).all(|w| w[0] < w[1]),
            "in order, each once"
        );
        let purls: std::collections::HashSet<&String> = items.iter().map(|(_, p)| p).collect();
        assert_eq!(purls.len(), items.len(), "no purl twice");
    }
    assert_eq!(followed.len(), stored);
    assert_eq!(&followed[..synced.len()], &synced[..], "one order for both");
    assert!(followed[..5]
        .iter()
        .all(|(_, purl)| purl.starts_with("pkg:npm/early-")));
    hub.stop().await;
}
