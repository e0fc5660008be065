//! The store conformance suite: the same test bodies on both backends,
//! embedded SQLite and a throwaway PostgreSQL cluster (`isac_e2e::pg`).
//! Plus, on PostgreSQL only, the gapless proof: publishers on several
//! store handles (standing in for replicas) while readers on others page
//! through the order and must see every item exactly once, in one order,
//! with no gaps.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;

use hub::store::{
    AnonymousVersion, ApiKeyRow, EnrollRecord, MemberRow, NewStatement, PersonRow, Store,
    StoreError, StoredFacts, TaxiiWrite, TokenRecord,
};
use isac_core::membership::{MemberStatus, Role, StatusChange};
use isac_core::tlog::merkle::{
    self, leaf_hash, node_hash, verify_consistency, verify_inclusion, NodeId,
};
use isac_core::tlog::Hash;
use isac_e2e::pg::PgCluster;

/// A backend under test; keeps its files or cluster alive.
enum Backing {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] PgCluster),
}

async fn sqlite_store() -> (Store, Backing) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("hub.db")).unwrap();
    (store, Backing::Sqlite(dir))
}

async fn postgres_store() -> (Store, Backing) {
    let cluster = tokio::task::spawn_blocking(PgCluster::start).await.unwrap();
    let store = Store::open_postgres(&cluster.url("postgres"), None)
        .await
        .unwrap();
    (store, Backing::Postgres(cluster))
}

async fn run<F, Fut>(backend: &str, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let (store, backing) = match backend {
        "sqlite" => sqlite_store().await,
        _ => postgres_store().await,
    };
    body(store.clone()).await;
    tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || drop(backing))
        .await
        .unwrap();
}

/// One test per backend for each body.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run("sqlite", super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run("postgres", super::$name).await
                }
            )*
        }
    };
}

conformance!(
    order_idempotence_and_conflicts,
    revisions_and_retractions,
    stored_rows_read_back_exactly,
    log_leaves_checkpoints_and_proofs,
    witness_cosignatures_per_checkpoint,
    members_tokens_agents_and_keys,
    people_groups_api_keys_and_taxii_state,
    prune_removes_expired_and_refuses_them_again,
    peer_links_and_federated_items,
    received_items_join_the_order_once,
    cross_hub_groups_are_shared_and_checked,
    a_batch_decides_each_statement_as_one_by_one,
    an_append_checked_at_an_old_membership_epoch_stores_nothing,
);

fn statement(n: u64, org: &str) -> NewStatement {
    NewStatement {
        id: format!("id-{n}"),
        revision: 1,
        source_org: org.into(),
        tlp: "green".into(),
        audience_json: "[]".into(),
        kind: "package".into(),
        created_at: 1_700_000_000,
        received_at: 1_700_000_001,
        payload_type: "application/vnd.isac.statement+json".into(),
        payload: format!("payload {n}").into_bytes(),
        key_id: "k1".into(),
        signature: vec![n as u8, 7],
        digest: format!("d{n}"),
        openings_json: "[]".into(),
        group_snapshot_json: "{}".into(),
        target_id: None,
        value: format!("pkg:npm/left-pad-{n}"),
        title: format!("title {n}"),
        sighting_count: None,
        anonymous: None,
        facts: StoredFacts {
            ecosystem: Some("npm".into()),
            severity: "high".into(),
            confidence: 80,
            tags_json: "[\"t\"]".into(),
            valid_until: None,
        },
        stix_ids: Vec::new(),
        references: Vec::new(),
        provenance: None,
    }
}

async fn append(store: &Store, s: NewStatement) -> Result<(u64, bool), StoreError> {
    store.append_statement(s).await
}

async fn order_idempotence_and_conflicts(store: Store) {
    assert_eq!(store.head(), 0);
    let items: Vec<NewStatement> = (0..20).map(|n| statement(n, "a")).collect();
    let results = store.append_statements(items.clone()).await;
    let seqs: Vec<u64> = results.iter().map(|r| r.as_ref().unwrap().0).collect();
    assert_eq!(
        seqs,
        (1..=20).collect::<Vec<u64>>(),
        "dense, in request order"
    );
    assert!(results.iter().all(|r| !r.as_ref().unwrap().1));
    assert_eq!(store.head(), 20, "the head moves at commit");
    assert_eq!(store.head_from_db().await.unwrap(), 20);

    // A re-send is recognised, stores nothing and takes no sequence.
    assert_eq!(append(&store, items[4].clone()).await.unwrap(), (5, true));
    // Same id and revision, other bytes: equivocation.
    let mut other = items[4].clone();
    other.digest = "different".into();
    assert!(matches!(
        append(&store, other).await,
        Err(StoreError::Conflict(_))
    ));
    // Another member's id.
    assert!(matches!(
        append(&store, statement(4, "b")).await,
        Err(StoreError::Conflict(_))
    ));
    // Refusals and re-sends left no hole in the order.
    assert_eq!(
        append(&store, statement(100, "a")).await.unwrap(),
        (21, false)
    );
    assert_eq!(store.statement_count().await.unwrap(), 21);

    let page = store.statements_after(18, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|s| s.seq).collect::<Vec<_>>(),
        vec![19, 20],
        "limit"
    );
    let shared = store
        .statements_after_shared(0, store.head(), 100)
        .await
        .unwrap();
    assert_eq!(
        shared.iter().map(|s| s.seq).collect::<Vec<_>>(),
        (1..=21).collect::<Vec<_>>()
    );
    assert_eq!(shared[20].id, "id-100");
    // Each statement's TAXII date_added grows with its sequence.
    assert!(shared.windows(2).all(|w| w[0].added_us < w[1].added_us));
    assert_eq!(store.seq_at_added(shared[9].added_us).await.unwrap(), 10);
    assert_eq!(store.seq_at_added(0).await.unwrap(), 0);
}

/// A batch (one transaction; PostgreSQL reads every check in one pipelined
/// round trip when no statement depends on another) has the outcome of the
/// same statements appended one by one, in order.
async fn a_batch_decides_each_statement_as_one_by_one(store: Store) {
    for n in [1, 6, 7] {
        append(&store, statement(n, "a")).await.unwrap();
    }
    let mut orphan = statement(5, "a");
    orphan.revision = 2;
    let mut equivocation = statement(7, "a");
    equivocation.digest = "d7-other".into();
    let independent = vec![
        statement(2, "a"),
        statement(1, "a"),
        statement(6, "b"),
        orphan,
        statement(3, "a"),
        equivocation,
    ];
    let results = store.append_statements(independent).await;
    let outcome: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok((seq, duplicate)) => format!("{seq}{}", if *duplicate { " again" } else { "" }),
            Err(StoreError::Conflict(_)) => "conflict".into(),
            Err(StoreError::Refused(_)) => "refused".into(),
            Err(e) => format!("{e}"),
        })
        .collect();
    assert_eq!(
        outcome,
        ["4", "1 again", "conflict", "refused", "5", "conflict"],
        "new statements take the next positions in request order; the rest are recognised or refused"
    );
    assert_eq!(store.head(), 5);

    // Statements that depend on each other in one batch: two revisions of
    // a new id, and an id named by an earlier statement of another member.
    let mut second = statement(10, "a");
    second.revision = 2;
    second.digest = "d10-r2".into();
    let mut naming = statement(11, "b");
    naming.references = vec!["id-12".into()];
    let dependent = vec![statement(10, "a"), second, naming, statement(12, "a")];
    let results = store.append_statements(dependent).await;
    assert_eq!(results[0].as_ref().unwrap(), &(6, false));
    assert_eq!(results[1].as_ref().unwrap(), &(7, false));
    assert_eq!(results[2].as_ref().unwrap(), &(8, false));
    assert!(
        matches!(results[3], Err(StoreError::Conflict(_))),
        "id-12 was taken by b's reference earlier in the batch: {:?}",
        results[3]
    );
    assert_eq!(
        store
            .revisions("id-10")
            .await
            .unwrap()
            .iter()
            .map(|r| r.revision)
            .collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(store.head(), 8);
    assert_eq!(store.statement_count().await.unwrap(), 8);
}

/// A publish whose caller and key were read (cached) at membership epoch
/// E is stored only while the store's epoch is still E, read in the
/// append's own transaction: a change committed meanwhile (here a group,
/// as a suspension or key revocation would) makes it store nothing and
/// say so, and the same statement then goes in at the new epoch.
async fn an_append_checked_at_an_old_membership_epoch_stores_nothing(store: Store) {
    let before = store.epoch().await.unwrap();
    assert_eq!(
        store
            .append_statement_authorized_at(statement(1, "a"), before)
            .await
            .unwrap(),
        (1, false)
    );
    store.add_group("g1", vec![], "op", 12).await.unwrap();
    let after = store.epoch().await.unwrap();
    assert!(after > before);
    let stale = store
        .append_statement_authorized_at(statement(2, "a"), before)
        .await;
    assert!(
        matches!(stale, Err(StoreError::StaleAuthorization)),
        "{stale:?}"
    );
    assert_eq!(store.head(), 1, "nothing stored, no position taken");
    assert_eq!(store.statement_count().await.unwrap(), 1);
    // Unchecked appends (batches, TAXII, federation) are not affected.
    assert_eq!(
        store.append_statement(statement(3, "a")).await.unwrap(),
        (2, false)
    );
    assert_eq!(
        store
            .append_statement_authorized_at(statement(2, "a"), after)
            .await
            .unwrap(),
        (3, false)
    );
    assert!(store.revisions("id-2").await.unwrap().len() == 1);
}

async fn revisions_and_retractions(store: Store) {
    let first = statement(1, "a");
    append(&store, first.clone()).await.unwrap();
    // Revision 3 of an id never seen: refused.
    let mut orphan = statement(2, "a");
    orphan.revision = 3;
    assert!(matches!(
        append(&store, orphan).await,
        Err(StoreError::Refused(_))
    ));
    let mut second = first.clone();
    second.revision = 2;
    second.digest = "d1-r2".into();
    second.tlp = "amber".into();
    append(&store, second).await.unwrap();
    // Older than the stored one.
    let mut stale = first.clone();
    stale.digest = "d1-other".into();
    assert!(matches!(
        append(&store, stale).await,
        Err(StoreError::Conflict(_))
    ));
    let revs = store.revisions("id-1").await.unwrap();
    assert_eq!(
        revs.iter().map(|r| r.revision).collect::<Vec<_>>(),
        vec![2, 1],
        "newest first"
    );
    assert_eq!(revs[0].tlp, "amber");

    let mut retraction = statement(3, "a");
    retraction.kind = "retraction".into();
    retraction.target_id = Some("id-1".into());
    retraction.references = vec!["id-1".into()];
    append(&store, retraction).await.unwrap();
    let mut sighting = statement(4, "b");
    sighting.kind = "sighting".into();
    sighting.target_id = Some("id-1".into());
    sighting.sighting_count = Some(3);
    sighting.references = vec!["id-1".into(), "id-77".into()];
    append(&store, sighting).await.unwrap();

    let versions = store.versions_of(vec!["id-1".into()]).await.unwrap();
    let mut kinds: Vec<(String, u32)> = versions
        .iter()
        .map(|v| (v.kind.clone(), v.revision))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("package".into(), 1),
            ("package".into(), 2),
            ("retraction".into(), 1)
        ]
    );
    let sightings = store.sightings_of("id-1").await.unwrap();
    assert_eq!(sightings.len(), 1);
    assert_eq!(sightings[0].sighting_count, Some(3));
    // An id another member referenced is taken for everyone else.
    assert!(matches!(
        append(&store, statement(77, "a")).await,
        Err(StoreError::Conflict(_))
    ));
    let found = store.search("left-pad-4", 10).await.unwrap();
    assert_eq!(
        found.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["id-4"]
    );
    assert!(
        store.search("100%_", 10).await.unwrap().is_empty(),
        "LIKE escapes"
    );
}

async fn stored_rows_read_back_exactly(store: Store) {
    let mut s = statement(1, "a");
    s.tlp = "red".into();
    s.audience_json = r#"[{"person":"a/alice"}]"#.into();
    s.openings_json = r#"[{"salt":"00"}]"#.into();
    s.group_snapshot_json = r#"{"g":["a","b"]}"#.into();
    s.payload = (0..=255u8).collect();
    s.signature = vec![0, 255, 1];
    s.anonymous = Some(AnonymousVersion {
        payload: vec![9; 300],
        key_id: "anon".into(),
        signature: vec![0xaa; 64],
    });
    s.facts.valid_until = Some(1_900_000_000);
    s.stix_ids = vec!["indicator--1".into(), "relationship--2".into()];
    let (seq, _) = append(&store, s.clone()).await.unwrap();
    let back = store.statements_after(0, 10).await.unwrap().remove(0);
    assert_eq!(back.seq, seq);
    assert_eq!(
        (
            back.id.as_str(),
            back.revision,
            back.source_org.as_str(),
            back.tlp.as_str(),
            back.audience_json.as_str(),
            back.kind.as_str()
        ),
        (
            s.id.as_str(),
            1,
            "a",
            "red",
            s.audience_json.as_str(),
            "package"
        )
    );
    assert_eq!(back.received_at, s.received_at);
    assert_eq!(back.payload_type, s.payload_type);
    assert_eq!(back.payload, s.payload, "the exact signed bytes");
    assert_eq!(back.key_id, s.key_id);
    assert_eq!(back.signature, s.signature);
    assert_eq!(back.openings_json, s.openings_json);
    assert_eq!(back.group_snapshot_json, s.group_snapshot_json);
    assert_eq!(back.digest, s.digest);
    let anon = back.anonymous.as_ref().unwrap();
    assert_eq!(
        (
            anon.payload.clone(),
            anon.key_id.as_str(),
            anon.signature.clone()
        ),
        (vec![9; 300], "anon", vec![0xaa; 64])
    );
    assert_eq!(back.facts.ecosystem.as_deref(), Some("npm"));
    assert_eq!(back.facts.severity, "high");
    assert_eq!(back.facts.confidence, 80);
    assert_eq!(back.facts.tags_json, "[\"t\"]");
    assert_eq!(back.facts.valid_until, Some(1_900_000_000));
    assert_eq!(back.leaf_index, Some(0));
    assert_eq!(back.tlp_level(), Some(isac_core::Tlp::Red));
    let (id, versions) = store.versions_of_stix_id("relationship--2").await.unwrap();
    assert_eq!(id.as_deref(), Some("id-1"));
    assert_eq!(versions.len(), 1);
    assert_eq!(
        store
            .versions_of_stix_id("indicator--nope")
            .await
            .unwrap()
            .0,
        None
    );
}

/// MTH by the RFC's recursion, over leaf hashes.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => merkle::empty_root(),
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn delivered_leaf(s: &NewStatement) -> Hash {
    let (payload, keyid, sig) = match &s.anonymous {
        Some(a) => (a.payload.clone(), a.key_id.clone(), a.signature.clone()),
        None => (s.payload.clone(), s.key_id.clone(), s.signature.clone()),
    };
    leaf_hash(&isac_core::tlog::envelope_leaf(&isac_core::Envelope {
        payload_type: s.payload_type.clone(),
        payload,
        signatures: vec![isac_core::envelope::Signature { keyid, sig }],
    }))
}

async fn checkpoint(store: &Store, size: u64) -> hub::store::CheckpointRow {
    let from = store
        .latest_checkpoint()
        .await
        .unwrap()
        .map_or(0, |c| c.size);
    let ext = store.extend_log(from, size).await.unwrap();
    store
        .integrate_checkpoint(ext, format!("note {size}"), 0)
        .await
        .unwrap()
}

async fn log_leaves_checkpoints_and_proofs(store: Store) {
    let items: Vec<NewStatement> = (0..13)
        .map(|n| {
            let mut s = statement(n, "a");
            if n % 5 == 2 {
                s.anonymous = Some(AnonymousVersion {
                    payload: format!("anonymous {n}").into_bytes(),
                    key_id: "anon".into(),
                    signature: vec![0xaa],
                });
            }
            s
        })
        .collect();
    let seqs: Vec<u64> = store
        .append_statements(items.clone())
        .await
        .into_iter()
        .map(|r| r.unwrap().0)
        .collect();
    assert!(append(&store, items[3].clone()).await.unwrap().1);
    assert_eq!(
        store.log_leaf_count().await.unwrap(),
        13,
        "a re-send appends no leaf"
    );
    for (i, seq) in seqs.iter().enumerate() {
        assert_eq!(store.leaf_index_of(*seq).await.unwrap(), Some(i as u64));
    }
    let leaves: Vec<Hash> = items.iter().map(delivered_leaf).collect();
    assert_eq!(
        store
            .log_hashes((0..13).map(NodeId::leaf).collect())
            .await
            .unwrap(),
        leaves,
        "leaf = the delivered envelope"
    );
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    let first = checkpoint(&store, 6).await;
    assert_eq!(first.root, mth(&leaves[..6]));
    let second = checkpoint(&store, 13).await;
    assert_eq!(second.root, mth(&leaves));
    assert_eq!(
        store.latest_checkpoint().await.unwrap(),
        Some(second.clone())
    );
    for size in [1u64, 6, 7, 13] {
        for index in 0..size {
            let proof = store.inclusion_proof(index, size).await.unwrap();
            verify_inclusion(
                index,
                size,
                &leaves[index as usize],
                &proof,
                &mth(&leaves[..size as usize]),
            )
            .unwrap_or_else(|e| panic!("{index} in {size}: {e}"));
        }
    }
    let proof = store.consistency_proof(6, 13).await.unwrap();
    verify_consistency(6, 13, &first.root, &second.root, &proof).unwrap();
    // An interior node a checkpoint stored reads back.
    let node = store
        .log_hashes(vec![NodeId { level: 2, index: 1 }])
        .await
        .unwrap();
    assert_eq!(node[0], mth(&leaves[4..8]));
    // A stale checkpointer loses rather than forking the stored tree.
    let stale = store.extend_log(6, 13).await.unwrap();
    assert!(matches!(
        store.integrate_checkpoint(stale, "late".into(), 0).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.inclusion_proof(13, 13).await,
        Err(StoreError::Refused(_))
    ));
}

fn member(org: &str, role: Role) -> MemberRow {
    MemberRow {
        org_id: org.into(),
        name: format!("{org} Bank"),
        role,
        status: MemberStatus::Active,
        created_at: 1_000,
    }
}

/// Witness cosignatures (the hub serves the newest checkpoint every
/// witness that is up cosigned): kept per checkpoint and witness, ordered
/// by witness name as bytes, refused for a size never checkpointed.
async fn witness_cosignatures_per_checkpoint(store: Store) {
    let items: Vec<NewStatement> = (0..6).map(|n| statement(n, "a")).collect();
    for r in store.append_statements(items).await {
        r.unwrap();
    }
    let three = checkpoint(&store, 3).await;
    let six = checkpoint(&store, 6).await;
    // "W" sorts before "w" as bytes but not in most locales' collations.
    let (w1, w2) = ("w1.example".to_owned(), "W2.example".to_owned());
    assert_eq!(store.latest_cosigned(w1.clone()).await.unwrap(), None);
    assert_eq!(
        store
            .newest_cosigned_by_all(vec![w1.clone()])
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store.add_cosignature(4, w1.clone(), "x\n".into(), 1).await,
        Err(StoreError::Refused(_))
    ));
    store
        .add_cosignature(3, w1.clone(), "— w1 a\n".into(), 1)
        .await
        .unwrap();
    store
        .add_cosignature(3, w2.clone(), "— W2 b\n".into(), 1)
        .await
        .unwrap();
    store
        .add_cosignature(6, w1.clone(), "— w1 c\n".into(), 2)
        .await
        .unwrap();
    // A later cosignature of the same size by the same witness replaces it.
    store
        .add_cosignature(6, w1.clone(), "— w1 d\n".into(), 3)
        .await
        .unwrap();
    assert_eq!(
        store.cosignatures(3).await.unwrap(),
        vec!["— W2 b\n".to_owned(), "— w1 a\n".to_owned()]
    );
    assert_eq!(
        store.cosignatures(6).await.unwrap(),
        vec!["— w1 d\n".to_owned()]
    );
    assert_eq!(store.latest_cosigned(w1.clone()).await.unwrap(), Some(6));
    assert_eq!(store.latest_cosigned(w2.clone()).await.unwrap(), Some(3));
    assert_eq!(
        store
            .newest_cosigned_by_all(vec![w1.clone()])
            .await
            .unwrap(),
        Some(six.clone())
    );
    assert_eq!(
        store
            .newest_cosigned_by_all(vec![w1.clone(), w2.clone()])
            .await
            .unwrap(),
        Some(three.clone())
    );
    assert_eq!(store.checkpoint_at(3).await.unwrap(), Some(three));
    assert_eq!(store.checkpoint_at(4).await.unwrap(), None);
    assert_eq!(store.checkpoint_at(6).await.unwrap(), Some(six));
    assert_eq!(store.checkpoint_at(5).await.unwrap(), None);
}

async fn members_tokens_agents_and_keys(store: Store) {
    let epoch0 = store.epoch().await.unwrap();
    store
        .add_member(member("a", Role::Member), "op")
        .await
        .unwrap();
    store
        .add_member(member("c", Role::Coordinator), "op")
        .await
        .unwrap();
    assert!(matches!(
        store.add_member(member("a", Role::Admin), "op").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.member("a").await.unwrap(),
        Some(member("a", Role::Member))
    );
    assert_eq!(store.member("zz").await.unwrap(), None);
    assert!(matches!(
        store
            .add_token(
                TokenRecord {
                    token_hash: "t0".into(),
                    org_id: "zz".into(),
                    created_at: 1_000,
                    expires_at: 2_000,
                },
                "op"
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    store
        .add_token(
            TokenRecord {
                token_hash: "t1".into(),
                org_id: "a".into(),
                created_at: 1_000,
                expires_at: 2_000,
            },
            "op",
        )
        .await
        .unwrap();
    let record = EnrollRecord {
        token_hash: "t1".into(),
        org_id: "a".into(),
        now: 1_500,
        agent_name: "agent-1".into(),
        cert_fingerprint: "fp1".into(),
        cert_pem: "PEM".into(),
        cert_not_after: 9_000,
        key_id: "key-a1".into(),
        public_key_der: vec![1, 2, 3],
    };
    assert_eq!(store.enroll(record.clone()).await.unwrap().org_id, "a");
    assert!(
        matches!(
            store.enroll(record.clone()).await,
            Err(StoreError::Token(_))
        ),
        "a token is used once"
    );
    assert!(
        store.epoch().await.unwrap() > epoch0,
        "enrollment moves the epoch"
    );
    let agent = store.agent_by_cert("fp1").await.unwrap().unwrap();
    assert_eq!(
        (
            agent.org_id.as_str(),
            agent.agent_name.as_str(),
            agent.role,
            agent.superseded
        ),
        ("a", "agent-1", Role::Member, false)
    );
    store.acknowledge("fp1", 42, 1_600).await.unwrap();
    store.acknowledge("fp1", 7, 1_601).await.unwrap();
    let agents = store.agents_of("a").await.unwrap();
    assert_eq!(
        agents[0].acked_seq, 42,
        "an acknowledgement never moves back"
    );
    store
        .renew_agent("fp1", "fp2", "PEM2".into(), 10_000, 1_700)
        .await
        .unwrap();
    assert_eq!(store.agents_of("a").await.unwrap().len(), 2);

    let key = store.key("key-a1").await.unwrap().unwrap();
    assert_eq!(
        (
            key.org_id.as_str(),
            key.org_name.as_str(),
            key.public_key_der.clone(),
            key.state()
        ),
        ("a", "a Bank", vec![1, 2, 3], "active")
    );
    store
        .rotate_key("a", "key-a1", "key-a2", vec![4, 5], "org:a", 1_800)
        .await
        .unwrap();
    assert!(matches!(
        store
            .rotate_key("a", "key-a1", "key-a3", vec![6], "org:a", 1_801)
            .await,
        Err(StoreError::Refused(_))
    ));
    let revoked = store
        .revoke_key("key-a2", 1_900, "lost", "op", 1_950)
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(1_900));
    let later = store
        .revoke_key("key-a2", 2_500, "again", "op", 2_600)
        .await
        .unwrap();
    assert_eq!(later.revoked_at, Some(1_900), "never moved later");
    let states: Vec<&str> = store
        .keys_of("a")
        .await
        .unwrap()
        .iter()
        .map(|k| k.state())
        .collect();
    assert_eq!(states, ["retired", "revoked"]);
    assert_eq!(store.keys().await.unwrap().len(), 2);

    let suspended = store
        .set_member_status("a", StatusChange::Suspend, "op", 3_000)
        .await
        .unwrap();
    assert_eq!(suspended.status, MemberStatus::Suspended);
    let members = store.list_members().await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0].0.status, MemberStatus::Suspended);
    assert_eq!(
        (members[0].1, members[0].2),
        (2, 1),
        "active agents, unrevoked keys"
    );
    store
        .set_member_status("c", StatusChange::Remove, "op", 3_100)
        .await
        .unwrap();
    assert!(matches!(
        store
            .set_member_status("c", StatusChange::Resume, "op", 3_200)
            .await,
        Err(StoreError::Refused(_))
    ));
    let v1 = store.next_directory_version().await.unwrap();
    assert_eq!(store.next_directory_version().await.unwrap(), v1 + 1);
    let audit = store.audit_list(100).await.unwrap();
    assert!(
        audit.windows(2).all(|w| w[0].seq > w[1].seq),
        "newest first"
    );
    let actions: HashSet<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    for action in [
        "member.add",
        "token.issue",
        "agent.enroll",
        "agent.renew",
        "key.rotate",
        "key.revoke",
        "member.suspend",
        "member.remove",
    ] {
        assert!(actions.contains(action), "{action} audited: {actions:?}");
    }
    let counts = store.status_counts().await.unwrap();
    assert_eq!(counts.agents, 2);
    assert_eq!(counts.directory_version, v1 + 1);
    assert_eq!(
        counts.keys_by_state,
        vec![("retired".to_string(), 1), ("revoked".to_string(), 1)]
    );
}

async fn people_groups_api_keys_and_taxii_state(store: Store) {
    store
        .add_member(member("a", Role::Member), "op")
        .await
        .unwrap();
    store
        .add_member(member("b", Role::Member), "op")
        .await
        .unwrap();
    let alice = PersonRow {
        org_id: "a".into(),
        person_id: "alice".into(),
        name: "Alice".into(),
        contact: "alice@a.example".into(),
    };
    store.add_person(alice.clone(), "op", 10).await.unwrap();
    assert!(matches!(
        store.add_person(alice.clone(), "op", 11).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.person_exists("a", "alice").await.unwrap());
    assert!(!store.person_exists("b", "alice").await.unwrap());
    assert_eq!(
        store.list_people(Some("a")).await.unwrap(),
        vec![alice.clone()]
    );
    assert_eq!(store.list_people(None).await.unwrap().len(), 1);

    store
        .add_group("g1", vec!["a".into(), "b".into()], "op", 12)
        .await
        .unwrap();
    store.add_group("g0", vec![], "op", 12).await.unwrap();
    assert!(matches!(
        store.add_group("g1", vec![], "op", 13).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.add_group("g2", vec!["zz".into()], "op", 13).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.list_groups().await.unwrap(),
        vec![
            ("g0".to_string(), vec![]),
            ("g1".to_string(), vec!["a".to_string(), "b".to_string()])
        ]
    );
    assert_eq!(store.groups_of("b").await.unwrap(), vec!["g1".to_string()]);
    assert_eq!(store.group_members("nope").await.unwrap(), None);
    assert_eq!(
        store.remove_group("g1", "op", 14).await.unwrap(),
        vec!["a".to_string(), "b".to_string()]
    );
    assert!(store.groups_of("b").await.unwrap().is_empty());

    let key = ApiKeyRow {
        username: "a-feed".into(),
        org_id: "a".into(),
        person_id: Some("alice".into()),
        label: "siem".into(),
        secret_sha256: "ab".repeat(32),
        can_write: true,
        created_at: 20,
        revoked_at: None,
        last_used_at: None,
    };
    store.add_api_key(key.clone(), "op").await.unwrap();
    let mut nobody = key.clone();
    nobody.username = "a-2".into();
    nobody.person_id = Some("bob".into());
    assert!(matches!(
        store.add_api_key(nobody, "op").await,
        Err(StoreError::NotFound(_))
    ));
    store.touch_api_key("a-feed", 25).await.unwrap();
    let read = store.api_key("a-feed").await.unwrap().unwrap();
    assert_eq!(read.last_used_at, Some(25));
    assert!(read.can_write);
    assert_eq!(store.list_api_keys(Some("b")).await.unwrap(), vec![]);
    assert_eq!(store.list_api_keys(None).await.unwrap().len(), 1);
    store.revoke_api_key("a-feed", "op", 30).await.unwrap();
    assert!(matches!(
        store.revoke_api_key("a-feed", "op", 31).await,
        Err(StoreError::Refused(_))
    ));
    let removed = store.remove_person("a", "alice", "op", 40).await.unwrap();
    assert_eq!(removed, alice);

    let write = TaxiiWrite {
        org_id: "a".into(),
        stix_id: "indicator--1".into(),
        version: "2026-01-01T00:00:00.000Z".into(),
        statement_id: "id-1".into(),
        tlp: "green".into(),
        created_at: 50,
    };
    store
        .record_taxii_writes(vec![write.clone(), write.clone()])
        .await
        .unwrap();
    assert_eq!(
        store.taxii_writes_of("a", "indicator--1").await.unwrap(),
        vec![write]
    );
    assert!(store
        .taxii_writes_of("b", "indicator--1")
        .await
        .unwrap()
        .is_empty());
    store
        .save_taxii_status("st-1", "a", 60, "{\"status\":\"complete\"}".into())
        .await
        .unwrap();
    assert_eq!(
        store.taxii_status("st-1", "a").await.unwrap().as_deref(),
        Some("{\"status\":\"complete\"}")
    );
    assert_eq!(store.taxii_status("st-1", "b").await.unwrap(), None);
    let counts = store.status_counts().await.unwrap();
    assert_eq!((counts.people, counts.groups), (0, 1));
}

async fn prune_removes_expired_and_refuses_them_again(store: Store) {
    let mut expired = statement(1, "a");
    expired.facts.valid_until = Some(100);
    expired.stix_ids = vec!["indicator--old".into()];
    append(&store, expired.clone()).await.unwrap();
    let mut sighting = statement(2, "b");
    sighting.kind = "sighting".into();
    sighting.target_id = Some("id-1".into());
    append(&store, sighting).await.unwrap();
    let mut fresh = statement(3, "a");
    fresh.facts.valid_until = Some(10_000);
    append(&store, fresh).await.unwrap();
    let mut newest = statement(4, "a");
    newest.facts.valid_until = Some(50);
    append(&store, newest).await.unwrap();

    let dry = store.prune_expired(1_000, 2_000, true, "op").await.unwrap();
    assert_eq!((dry.expired_ids, dry.rows, dry.kept_for_head), (1, 2, 1));
    assert_eq!(
        store.statement_count().await.unwrap(),
        4,
        "a dry run deletes nothing"
    );
    let report = store
        .prune_expired(1_000, 2_000, false, "op")
        .await
        .unwrap();
    assert_eq!(
        (report.expired_ids, report.rows, report.kept_for_head),
        (1, 2, 1)
    );
    assert_eq!(store.statement_count().await.unwrap(), 2);
    assert!(store.revisions("id-1").await.unwrap().is_empty());
    assert_eq!(
        store.versions_of_stix_id("indicator--old").await.unwrap().0,
        None
    );
    assert!(matches!(
        append(&store, expired.clone()).await,
        Err(StoreError::Refused(_))
    ));
    assert!(matches!(
        append(&store, statement(1, "b")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.head(), 4, "the head never moves back");
    assert_eq!(
        store.log_leaf_count().await.unwrap(),
        4,
        "pruning keeps the log's leaves"
    );
    let actions: Vec<String> = store
        .audit_list(10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(actions, ["prune"]);
}

/// Publishers on three store handles (as three replicas would be) append
/// concurrently; a reader on each handle pages by `seq > last` while they
/// do. Every reader must see every item exactly once, in one and the same
/// order, with no gap: the order row makes commits follow the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_replicas_publish_concurrently_and_readers_never_skip() {
    const REPLICAS: usize = 3;
    const PER_PUBLISHER: u64 = 200;
    let cluster = tokio::task::spawn_blocking(PgCluster::start).await.unwrap();
    let url = cluster.url("postgres");
    let mut stores = Vec::new();
    for _ in 0..REPLICAS {
        stores.push(Store::open_postgres(&url, None).await.unwrap());
    }
    let total = PER_PUBLISHER * REPLICAS as u64;
    let mut publishers = Vec::new();
    for (r, store) in stores.iter().enumerate() {
        // Two publishing tasks per replica: single appends and batches.
        for task in 0..2u64 {
            let store = store.clone();
            publishers.push(tokio::spawn(async move {
                let mut n = 0;
                while n < PER_PUBLISHER / 2 {
                    let batch = 1 + (n % 7);
                    let items: Vec<NewStatement> = (n..(n + batch).min(PER_PUBLISHER / 2))
                        .map(|i| {
                            statement(
                                (r as u64) * 1_000_000 + task * 100_000 + i,
                                &format!("org{r}"),
                            )
                        })
                        .collect();
                    n += items.len() as u64;
                    for result in store.append_statements(items).await {
                        assert!(!result.unwrap().1, "fresh ids are never duplicates");
                    }
                }
            }));
        }
    }
    let mut readers = Vec::new();
    for store in &stores {
        let store = store.clone();
        readers.push(tokio::spawn(async move {
            let mut seen: Vec<(u64, String)> = Vec::new();
            let mut last = 0;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while (seen.len() as u64) < total {
                assert!(
                    std::time::Instant::now() < deadline,
                    "reader stalled at {last}"
                );
                let page = store.statements_after(last, 37).await.unwrap();
                if page.is_empty() {
                    tokio::task::yield_now().await;
                    continue;
                }
                for s in page {
                    assert_eq!(s.seq, last + 1, "a gap after {last}: the reader would skip");
                    last = s.seq;
                    seen.push((s.seq, s.id));
                }
            }
            seen
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    let mut orders = Vec::new();
    for r in readers {
        orders.push(r.await.unwrap());
    }
    let ids: HashSet<&String> = orders[0].iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len() as u64, total, "every item exactly once");
    assert!(orders.iter().all(|o| o == &orders[0]), "one order for all");
    for store in &stores {
        assert_eq!(store.head_from_db().await.unwrap(), total);
        // The tail moves every replica's head to the last commit anywhere.
        let mut head = store.watch_head();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            head.wait_for(|h| *h == total),
        )
        .await
        .expect("head reaches the total")
        .unwrap();
    }
    let leaves = stores[0].log_leaf_count().await.unwrap();
    assert_eq!(leaves, total, "one dense leaf per item");
    let by_seq: BTreeMap<u64, Option<u64>> = {
        let mut m = BTreeMap::new();
        for s in stores[1].statements_after(0, u32::MAX).await.unwrap() {
            m.insert(s.seq, s.leaf_index);
        }
        m
    };
    assert!(
        by_seq.iter().all(|(seq, leaf)| *leaf == Some(seq - 1)),
        "leaf index follows the order"
    );
    for store in stores {
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap();
    }
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

/// PostgreSQL stopped under an open store: calls answer `Unavailable`
/// (which callers hear as UNAVAILABLE) and store nothing; when it is back,
/// the same handle works again without being reopened, and nothing
/// acknowledged before was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_answers_unavailable_then_the_same_store_recovers() {
    let cluster = tokio::task::spawn_blocking(PgCluster::start).await.unwrap();
    let store = Store::open_postgres(&cluster.url("postgres"), None)
        .await
        .unwrap();
    store
        .add_member(member("a", Role::Member), "op")
        .await
        .unwrap();
    assert_eq!(append(&store, statement(1, "a")).await.unwrap(), (1, false));
    let mut cluster = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        cluster.stop();
        cluster
    })
    .await
    .unwrap();
    let down = append(&store, statement(2, "a")).await.unwrap_err();
    assert!(matches!(down, StoreError::Unavailable(_)), "{down:?}");
    let down = store.member("a").await.unwrap_err();
    assert!(matches!(down, StoreError::Unavailable(_)), "{down:?}");
    cluster = tokio::task::spawn_blocking(move || {
        cluster.start_again();
        cluster
    })
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let stored = loop {
        match append(&store, statement(2, "a")).await {
            Ok(r) => break r,
            Err(StoreError::Unavailable(_)) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("not recovered: {e:?}"),
        }
    };
    assert_eq!(stored, (2, false), "the refused attempt took no sequence");
    assert_eq!(store.member("a").await.unwrap().unwrap().org_id, "a");
    let ids: Vec<String> = store
        .statements_after(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["id-1", "id-2"]);
    assert_eq!(store.head(), 2);
    tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

// === the binaries on PostgreSQL ===

fn hub_cli(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    isac_e2e::run(isac_e2e::bin("hub").arg("--data-dir").arg(data).args(args))
}

/// `hub serve` with `store = "postgres://..."` in hub.toml, members added
/// with the local admin commands, real agents publishing and syncing over
/// mTLS; then the same database through a restarted hub.
#[test]
fn hub_serve_on_postgres_relays_between_real_agents_and_survives_a_restart() {
    let cluster = PgCluster::start();
    cluster.create_db("isac");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("hub.toml"),
        format!("store = \"{}\"\n", cluster.url("isac")),
    )
    .unwrap();
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let jsonl = dir.path().join("bob.jsonl");
    let agent = |state: &std::path::Path, args: &[&str]| {
        isac_e2e::run(
            isac_e2e::bin("member-agent")
                .arg("--state-dir")
                .arg(state)
                .args(args),
        )
    };
    let publish = |purl: &str| {
        let (ok, _, err) = agent(
            &alice,
            &[
                "publish", "--kind", "package", "--purl", purl, "--tlp", "green", "--title", "bad",
            ],
        );
        assert!(ok, "{err}");
    };

    let hub = isac_e2e::HubProcess::start(&data, "127.0.0.1:0");
    let listen = hub.addr.clone();
    for (org, state) in [("alice-bank", &alice), ("bob-bank", &bob)] {
        let out = isac_e2e::enroll_with_cli(&data, &hub.url(), org, None, state);
        assert!(out.contains(&format!("enrolled as `{org}`")), "{out}");
    }
    publish("pkg:npm/evil-one@1.0.0");
    publish("pkg:npm/evil-two@1.0.0");
    let (ok, _, err) = agent(&bob, &["sync", "--jsonl", jsonl.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains("2 new"), "{err}");
    assert!(
        !data.join("hub.db").exists(),
        "nothing went to an embedded database"
    );
    let (ok, out, err) = hub_cli(&data, &["status"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "store: postgres isac@127.0.0.1:{}/isac",
            cluster.port
        )),
        "{out}"
    );
    assert!(out.contains("statements: 2 (green=2)"), "{out}");
    assert!(
        !out.contains("database_bytes"),
        "no SQLite file to size: {out}"
    );
    // Whole-database copies are SQLite's; PostgreSQL has pg_dump.
    let (ok, _, err) = hub_cli(&data, &["backup", dir.path().join("b").to_str().unwrap()]);
    assert!(!ok && err.contains("pg_dump"), "{err}");
    hub.terminate();

    // The same database through a new process: nothing lost, sync resumes.
    let hub = isac_e2e::HubProcess::start(&data, &listen);
    publish("pkg:npm/evil-three@1.0.0");
    let (ok, _, err) = agent(&bob, &["sync", "--jsonl", jsonl.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains("1 new") && err.contains("cursor 3"), "{err}");
    let seqs: Vec<u64> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["sequence"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![1, 2, 3], "once each, in order");
    // A store URL with a password in it is refused before anything runs.
    let (ok, _, err) = hub_cli(
        &data,
        &[
            "--store",
            "postgres://isac:hunter2@127.0.0.1:1/isac",
            "status",
        ],
    );
    assert!(
        !ok && err.contains("password") && !err.contains("hunter2"),
        "{err}"
    );
    hub.terminate();
}

// === two hubs on one database ===

/// Two hubs with the same key material (a copy of the first's data dir)
/// and the same PostgreSQL store answer as one: a member enrolled at one
/// publishes there, a member enrolled at the other receives it there, and
/// a suspension made through one hub's admin store holds at the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_one_postgres_database_relay_each_others_items() {
    use isac_e2e::{enrolled_agent, TestHub};
    let cluster = tokio::task::spawn_blocking(PgCluster::start).await.unwrap();
    let url = cluster.url("postgres");
    let dir = tempfile::tempdir().unwrap();
    let first = TestHub::start_on_store(&dir.path().join("a"), &url).await;
    let second_dir = dir.path().join("b");
    std::fs::create_dir(&second_dir).unwrap();
    for entry in std::fs::read_dir(first.data_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "hub.run" && entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), second_dir.join(entry.file_name())).unwrap();
        }
    }
    let second = TestHub::start_on_store(&second_dir, &url).await;
    assert_eq!(first.ca_fingerprint, second.ca_fingerprint);
    let alice = enrolled_agent(&first, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&second, "bob-bank", &dir.path().join("bob")).await;
    for n in 0..3 {
        let draft = member_agent::draft::IndicatorDraft {
            tlp: Some("green".into()),
            title: Some(format!("replicated {n}")),
            severity: Some("high".into()),
            confidence: Some(80),
            purl: Some(format!("pkg:npm/replicated-{n}@1.0.0")),
            ..Default::default()
        };
        member_agent::publish::publish(&alice, draft).await.unwrap();
    }
    let mut sink = member_agent::Sinks::jsonl(Some(&dir.path().join("bob.jsonl"))).unwrap();
    assert_eq!(bob.sync(false, &mut sink).await.unwrap().new, 3);
    let mut titles: Vec<String> = bob
        .store
        .lock()
        .unwrap()
        .list(10)
        .unwrap()
        .into_iter()
        .map(|i| i.title)
        .collect();
    titles.sort();
    assert_eq!(titles, ["replicated 0", "replicated 1", "replicated 2"]);
    // Suspended through the first hub's store: the second refuses it too.
    first
        .admin_store
        .set_member_status("bob-bank", StatusChange::Suspend, "op", 1)
        .await
        .unwrap();
    let refused = bob.sync(false, &mut sink).await.unwrap_err().to_string();
    assert!(refused.contains("suspended"), "{refused}");
    second.stop().await;
    first.stop().await;
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

/// A second in-process hub on `first`'s database, with a copy of its key
/// material (a replica).
async fn replica_of(
    first: &isac_e2e::TestHub,
    dir: &std::path::Path,
    url: &str,
) -> isac_e2e::TestHub {
    std::fs::create_dir(dir).unwrap();
    for entry in std::fs::read_dir(first.data_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "hub.run" && entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    isac_e2e::TestHub::start_on_store(dir, url).await
}

/// An agent that fails over to a replica right after another replica
/// delivered an item carries a cursor this replica's tail may not have
/// seen yet (it reads the order every few milliseconds). The replica waits
/// briefly for it instead of refusing the cursor as "ahead of this hub's
/// history" (which sent agents back to an older head).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_another_replica_just_issued_is_served_not_refused() {
    use isac_e2e::{enrolled_agent, TestHub};
    use isac_proto::v1 as pb;
    let cluster = tokio::task::spawn_blocking(PgCluster::start).await.unwrap();
    let url = cluster.url("postgres");
    let dir = tempfile::tempdir().unwrap();
    let first = TestHub::start_on_store(&dir.path().join("a"), &url).await;
    let second = replica_of(&first, &dir.path().join("b"), &url).await;
    let alice = enrolled_agent(&first, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&first, "bob-bank", &dir.path().join("bob")).await;
    let connector = bob.connector().unwrap();
    let at_first = connector.connect(&first.url()).await.unwrap();
    let at_second = connector.connect(&second.url()).await.unwrap();
    let request = |follow: bool, cursor: Vec<u8>| pb::SubscribeRequest {
        after_sequence: 0,
        follow,
        filter: None,
        include_expired: false,
        cursor,
    };
    let mut live = pb::subscriber_client::SubscriberClient::new(at_first)
        .subscribe(request(true, Vec::new()))
        .await
        .unwrap()
        .into_inner();
    loop {
        let m = live.message().await.unwrap().expect("stream open");
        if let Some(pb::subscribe_response::Event::CaughtUp(_)) = m.event {
            break;
        }
    }
    for n in 0..20 {
        let draft = member_agent::draft::IndicatorDraft {
            tlp: Some("green".into()),
            title: Some(format!("fail-over {n}")),
            severity: Some("high".into()),
            confidence: Some(80),
            purl: Some(format!("pkg:npm/fail-over-{n}@1.0.0")),
            ..Default::default()
        };
        member_agent::publish::publish(&alice, draft).await.unwrap();
        // Delivered by the first replica, with its cursor ...
        let cursor = loop {
            let m = live.message().await.unwrap().expect("stream open");
            if let Some(pb::subscribe_response::Event::Item(d)) = m.event {
                break d.cursor;
            }
        };
        // ... and at once the agent resumes at the second.
        let mut resumed = pb::subscriber_client::SubscriberClient::new(at_second.clone())
            .subscribe(request(false, cursor))
            .await
            .unwrap_or_else(|s| panic!("item {n}: the replica refused the cursor: {s:?}"))
            .into_inner();
        // Nothing after the cursor: caught up, with nothing skipped or repeated.
        loop {
            let m = resumed
                .message()
                .await
                .unwrap_or_else(|s| panic!("item {n}: {s:?}"))
                .expect("caught up");
            match m.event {
                Some(pb::subscribe_response::Event::CaughtUp(_)) => break,
                Some(pb::subscribe_response::Event::Item(d)) => {
                    panic!("item {n}: delivered again after its own cursor: {d:?}")
                }
                _ => {}
            }
        }
    }
    second.stop().await;
    first.stop().await;
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

// === moving a SQLite hub to PostgreSQL ===

/// `(sequence, id)` of every line a `sync --jsonl` wrote.
fn synced(jsonl: &std::path::Path) -> Vec<(u64, String)> {
    std::fs::read_to_string(jsonl)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["sequence"].as_u64().unwrap(),
                v["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A SQLite hub with real data (members, agents, keys, a group, an API
/// key, indicators, an anonymous one, a sighting, a retraction, a
/// checkpoint) moved with `hub store copy`: per-table hashes printed equal
/// on both sides, the PostgreSQL hub serves the same items under the same
/// sequence numbers, the agents' pinned log checkpoint stays consistent
/// (no log alert), new items continue the order, and a second copy into
/// the now non-empty database is refused.
#[test]
fn hub_store_copy_moves_a_sqlite_hub_to_postgres_with_equal_hashes() {
    let cluster = PgCluster::start();
    cluster.create_db("moved");
    let url = cluster.url("moved");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let agent = |state: &std::path::Path, args: &[&str]| {
        isac_e2e::run(
            isac_e2e::bin("member-agent")
                .arg("--state-dir")
                .arg(state)
                .args(args),
        )
    };
    let publish = |extra: &[&str]| {
        let mut args = vec!["publish", "--title", "bad"];
        args.extend_from_slice(extra);
        let (ok, _, err) = agent(&alice, &args);
        assert!(ok, "{err}");
    };

    let hub = isac_e2e::HubProcess::start(&data, "127.0.0.1:0");
    let listen = hub.addr.clone();
    for (org, state) in [("alice-bank", &alice), ("bob-bank", &bob)] {
        let out = isac_e2e::enroll_with_cli(&data, &hub.url(), org, None, state);
        assert!(out.contains(&format!("enrolled as `{org}`")), "{out}");
    }
    let (ok, _, err) = hub_cli(
        &data,
        &["group", "add", "banks", "--members", "alice-bank,bob-bank"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = hub_cli(&data, &["api-key", "add", "bob-bank", "--label", "siem"]);
    assert!(ok, "{err}");
    publish(&["--tlp", "green", "--purl", "pkg:npm/moved-one@1.0.0"]);
    publish(&[
        "--tlp",
        "green",
        "--purl",
        "pkg:npm/moved-two@1.0.0",
        "--anonymous",
    ]);
    publish(&[
        "--tlp",
        "amber",
        "--domain",
        "moved.example",
        "--audience",
        "group:banks",
    ]);
    let before = dir.path().join("before.jsonl");
    let (ok, _, err) = agent(&bob, &["sync", "--jsonl", before.to_str().unwrap()]);
    assert!(ok, "{err}");
    let first_id = synced(&before)[0].1.clone();
    let (ok, _, err) = agent(&bob, &["sight", &first_id, "--count", "2"]);
    assert!(ok, "{err}");
    let (ok, _, err) = agent(&alice, &["sync"]);
    assert!(ok, "{err}");
    let (ok, _, err) = agent(&alice, &["retract", &first_id]);
    assert!(ok, "{err}");
    let (ok, _, err) = agent(&bob, &["sync", "--jsonl", before.to_str().unwrap()]);
    assert!(ok, "{err}");
    let served_before = synced(&before);
    assert!(served_before.len() >= 4, "{served_before:?}");
    // Still serving: the copy is refused, nothing written.
    let (ok, _, err) = hub_cli(&data, &["store", "copy", "--to", &url]);
    assert!(!ok && err.contains("stop it first"), "{err}");
    hub.terminate();
    let (ok, checkpoint_before, err) = hub_cli(&data, &["log", "checkpoint"]);
    assert!(ok, "{err}");

    let (ok, out, err) = hub_cli(&data, &["store", "copy", "--to", &url]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("verified: 25 tables"), "{out}");
    let mut tables = BTreeMap::new();
    for line in out.lines().skip(2).filter(|l| l.contains(" / ")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 5, "{line}");
        assert_eq!(f[2], f[4], "source and target hashes: {line}");
        assert_eq!(f[2].len(), 64, "{line}");
        tables.insert(f[0].to_owned(), f[1].parse::<u64>().unwrap());
    }
    assert_eq!(tables.len(), 25, "{out}");
    assert_eq!(
        tables["statements"], 5,
        "3 indicators, a sighting, a retraction: {out}"
    );
    for t in ["members", "agents", "signing_keys"] {
        assert_eq!(tables[t], 2, "{t}: {out}");
    }
    for t in ["sharing_groups", "api_keys", "log_checkpoints"] {
        assert!(tables[t] >= 1, "{t}: {out}");
    }
    assert_eq!(tables["group_members"], 2, "{out}");
    assert_eq!(tables["log_leaves"], tables["statements"], "{out}");
    assert!(tables["audit"] >= 4, "{out}");

    // The same hub on PostgreSQL.
    std::fs::write(data.join("hub.toml"), format!("store = \"{url}\"\n")).unwrap();
    let (ok, checkpoint_after, err) = hub_cli(&data, &["log", "checkpoint"]);
    assert!(ok, "{err}");
    assert_eq!(
        checkpoint_after, checkpoint_before,
        "the same signed checkpoint"
    );
    let hub = isac_e2e::HubProcess::start(&data, &listen);
    // A fresh agent of bob's org reads the whole order from the moved store.
    let carol = dir.path().join("bob-second");
    let (ok, token, err) = hub_cli(&data, &["member", "token", "bob-bank"]);
    assert!(ok, "{err}");
    let (ok, out, err) = agent(
        &carol,
        &[
            "enroll",
            "--hub",
            &hub.url(),
            "--token",
            token.trim(),
            "--name",
            "second",
        ],
    );
    assert!(ok && out.contains("enrolled as `bob-bank`"), "{out}{err}");
    let after = dir.path().join("after.jsonl");
    let (ok, _, err) = agent(&carol, &["sync", "--jsonl", after.to_str().unwrap()]);
    assert!(ok, "{err}");
    let served_after = synced(&after);
    // The retracted item is no longer served to a newcomer; everything
    // else is, with the same sequence numbers.
    let expected: Vec<(u64, String)> = served_before
        .iter()
        .filter(|(_, id)| *id != first_id)
        .cloned()
        .collect();
    let got: Vec<(u64, String)> = served_after
        .iter()
        .filter(|(_, id)| *id != first_id)
        .cloned()
        .collect();
    assert_eq!(got, expected, "same items, same sequence numbers");
    // New items continue the order; bob's old agent checks the log's
    // consistency from the checkpoint it pinned on SQLite.
    publish(&["--tlp", "green", "--purl", "pkg:npm/moved-three@1.0.0"]);
    let (ok, _, err) = agent(&bob, &["sync", "--jsonl", before.to_str().unwrap()]);
    assert!(ok, "{err}");
    let last = synced(&before).last().unwrap().clone();
    let max_before = served_before.iter().map(|(s, _)| *s).max().unwrap();
    assert!(last.0 > max_before, "{last:?} after {max_before}");
    let (ok, status, err) = agent(&bob, &["status"]);
    assert!(ok, "{err}");
    assert!(
        status.contains("log alert:  none") && status.contains("checkpoint: size 6 "),
        "{status}"
    );
    hub.terminate();

    // Into a database that now holds the hub: refused, exit 64.
    std::fs::remove_file(data.join("hub.toml")).unwrap();
    let out = isac_e2e::bin("hub")
        .arg("--data-dir")
        .arg(&data)
        .args(["store", "copy", "--to", &url])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("not empty"), "{err}");
}

// === losing the database ===

/// A hub whose PostgreSQL stops: the gRPC health service and `/healthz`
/// say NOT_SERVING / 503, an open Subscribe stream ends with UNAVAILABLE
/// (not stale data from memory); when the database returns, both say
/// SERVING / 200 again and a new stream works, with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_postgres_turns_health_not_serving_and_ends_streams_until_it_returns() {
    use isac_e2e::{enrolled_agent, http_exchange, raw_channel, TestHub};
    use isac_proto::v1 as pb;
    use std::time::{Duration, Instant};
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

    let cluster = tokio::task::spawn_blocking(PgCluster::start).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_on_store(&dir.path().join("hub"), &cluster.url("postgres")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let probe = HealthClient::new(raw_channel(&hub, None).await.unwrap());
    let health = |mut probe: HealthClient<tonic::transport::Channel>| async move {
        let r = probe
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        r.status
    };
    // Waits (bounded) for the gRPC health and /healthz to say `want`.
    let wait_for = |want: ServingStatus, code: u16| {
        let probe = probe.clone();
        let metrics = hub.metrics_addr;
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let grpc = health(probe.clone()).await;
                let http = http_exchange(metrics, "GET", "/healthz", b"").await;
                if grpc == want as i32 && http.status == code {
                    return String::from_utf8_lossy(&http.body).into_owned();
                }
                assert!(
                    Instant::now() < deadline,
                    "health stayed {grpc} / {} (wanted {want:?} / {code})",
                    http.status
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let body = wait_for(ServingStatus::Serving, 200).await;
    assert_eq!(body, "serving\n");
    let subscribe = |channel| async move {
        pb::subscriber_client::SubscriberClient::new(channel)
            .subscribe(pb::SubscribeRequest {
                after_sequence: 0,
                follow: true,
                filter: None,
                include_expired: false,
                cursor: Vec::new(),
            })
            .await
            .map(|r| r.into_inner())
    };
    let mut stream = subscribe(bob.channel().await.unwrap()).await.unwrap();
    assert!(stream.message().await.unwrap().is_some(), "caught up");

    let cluster = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        cluster.stop();
        cluster
    })
    .await
    .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(s) => break s,
            }
        }
    })
    .await
    .expect("the stream ends when the database goes");
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended:?}");
    assert!(
        ended.message().contains("lost its database"),
        "{}",
        ended.message()
    );
    let body = wait_for(ServingStatus::NotServing, 503).await;
    assert!(body.contains("database is unavailable"), "{body}");
    assert!(
        !body.contains("127.0.0.1"),
        "no addresses on /healthz: {body}"
    );

    let cluster = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        cluster.start_again();
        cluster
    })
    .await
    .unwrap();
    wait_for(ServingStatus::Serving, 200).await;
    let mut again = subscribe(bob.channel().await.unwrap()).await.unwrap();
    assert!(again.message().await.unwrap().is_some(), "caught up again");
    drop(again);
    drop(probe);
    hub.stop().await;
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

/// A copy that fails halfway (a row the target cannot take, found after
/// earlier tables were already copied) leaves the target empty: once the
/// row is fixed, the same database takes the copy.
#[test]
fn a_failed_store_copy_leaves_the_target_empty() {
    let cluster = PgCluster::start();
    cluster.create_db("half");
    let url = cluster.url("half");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let (ok, _, err) = hub_cli(&data, &["member", "add", "acme-bank"]);
    assert!(ok, "{err}");
    let (ok, _, err) = hub_cli(&data, &["api-key", "add", "acme-bank", "--label", "siem"]);
    assert!(ok, "{err}");
    let db = rusqlite::Connection::open(data.join("hub.db")).unwrap();
    db.execute("UPDATE api_keys SET can_write = 7", []).unwrap();
    let out = isac_e2e::bin("hub")
        .arg("--data-dir")
        .arg(&data)
        .args(["store", "copy", "--to", &url])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("api_keys.can_write holds 7"), "{err}");
    db.execute("UPDATE api_keys SET can_write = 1", []).unwrap();
    drop(db);
    let (ok, out, err) = hub_cli(&data, &["store", "copy", "--to", &url]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("verified: 25 tables"), "{out}");
    let members = out
        .lines()
        .find(|l| l.starts_with("members "))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    assert_eq!(members, "1", "{out}");
}

/// Federation (issue 20): a followed hub's link, the items it forwarded
/// (each origin, id and revision once, with the cursor in the same write),
/// the pinned directory never rolled back, and suspend/resume/remove in
/// both directions (the link and the peer membership) with audit rows.
async fn peer_links_and_federated_items(store: Store) {
    use hub::store::{FederatedItem, PeerLinkRow};
    store
        .add_member(member("hub-b", Role::Peer), "op")
        .await
        .unwrap();
    assert_eq!(
        store.member("hub-b").await.unwrap().unwrap().role,
        Role::Peer
    );
    let link = PeerLinkRow {
        hub_id: "hub-b".into(),
        url: "https://b.example:7443".into(),
        status: MemberStatus::Active,
        created_at: 10,
        cursor: Vec::new(),
        directory: None,
        directory_version: 0,
        received: 0,
    };
    store.add_peer_link(link.clone(), "op").await.unwrap();
    assert!(matches!(
        store.add_peer_link(link.clone(), "op").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.peer_links().await.unwrap(), vec![link.clone()]);
    let item = |id: &str, revision: u32| FederatedItem {
        origin_hub: "hub-b".into(),
        id: id.into(),
        revision,
        from_peer: "hub-b".into(),
        tlp: "green".into(),
        kind: "domain".into(),
        envelope_json: format!("{{\"id\":\"{id}\"}}"),
        provenance: br#"{"origin_hub":"hub-b"}"#.to_vec(),
        received_at: 20,
        order: None,
    };
    let n = store
        .receive_from_peer("hub-b", vec![item("x", 1), item("y", 1)], b"c1".to_vec())
        .await
        .unwrap();
    assert_eq!(n, 2);
    let n = store
        .receive_from_peer("hub-b", vec![item("x", 1), item("x", 2)], b"c2".to_vec())
        .await
        .unwrap();
    assert_eq!(n, 1, "an item key already held is not stored again");
    let held = store.peer_link("hub-b").await.unwrap().unwrap();
    assert_eq!(held.cursor, b"c2");
    assert_eq!(held.received, 3);
    let items = store.federated_items(Some("hub-b".into())).await.unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.contains(&item("x", 2)));
    assert!(store
        .federated_items(Some("hub-z".into()))
        .await
        .unwrap()
        .is_empty());

    store
        .pin_peer_directory("hub-b", 5, "{}".into())
        .await
        .unwrap();
    store
        .pin_peer_directory("hub-b", 5, "{}".into())
        .await
        .unwrap();
    assert!(matches!(
        store
            .pin_peer_directory("hub-b", 4, "{\"old\":1}".into())
            .await,
        Err(StoreError::Refused(_))
    ));
    let held = store.peer_link("hub-b").await.unwrap().unwrap();
    assert_eq!(
        (held.directory_version, held.directory.as_deref()),
        (5, Some("{}"))
    );

    let epoch = store.epoch().await.unwrap();
    let s = store
        .set_peer_status("hub-b", StatusChange::Suspend, "op", 30)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status, MemberStatus::Suspended);
    assert_eq!(
        store.member("hub-b").await.unwrap().unwrap().status,
        MemberStatus::Suspended
    );
    assert!(
        store.epoch().await.unwrap() > epoch,
        "streams re-check the peer"
    );
    assert!(matches!(
        store
            .receive_from_peer("hub-b", vec![item("z", 1)], b"c3".to_vec())
            .await,
        Err(StoreError::Refused(_))
    ));
    store
        .set_peer_status("hub-b", StatusChange::Resume, "op", 31)
        .await
        .unwrap();
    assert_eq!(
        store.member("hub-b").await.unwrap().unwrap().status,
        MemberStatus::Active
    );
    store
        .pin_peer_directory_key("hub-b", b"key-of-b".to_vec())
        .await
        .unwrap();
    let removed = store
        .set_peer_status("hub-b", StatusChange::Remove, "op", 32)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(removed.status, MemberStatus::Removed);
    assert!(store.peer_link("hub-b").await.unwrap().is_none());
    // Its last pinned directory stays, retired, for the items that remain.
    assert_eq!(
        store.origin_directories().await.unwrap(),
        vec![hub::store::OriginDirectoryRow {
            hub_id: "hub-b".into(),
            via_peer: "hub-b".into(),
            public_key: b"key-of-b".to_vec(),
            directory: "{}".into(),
            directory_version: 5,
            retired: true,
        }]
    );
    // Origins pinned through a peer: never a lower version under the same
    // key; a new key (the sender lists another) or a newer version is
    // taken; a new origin moves the epoch (the directory lists it).
    let origin = |version: u64, key: &[u8]| hub::store::OriginDirectoryRow {
        hub_id: "hub-c".into(),
        via_peer: "hub-d".into(),
        public_key: key.to_vec(),
        directory: format!("{{\"v\":{version}}}"),
        directory_version: version,
        retired: false,
    };
    let epoch = store.epoch().await.unwrap();
    store.pin_origin_directory(origin(3, b"k1")).await.unwrap();
    assert!(store.epoch().await.unwrap() > epoch);
    assert!(matches!(
        store.pin_origin_directory(origin(2, b"k1")).await,
        Err(StoreError::Refused(_))
    ));
    store.pin_origin_directory(origin(4, b"k1")).await.unwrap();
    store.pin_origin_directory(origin(1, b"k2")).await.unwrap();
    let held = store.origin_directories().await.unwrap();
    assert_eq!(held.len(), 2);
    assert_eq!(held[1], origin(1, b"k2"));
    assert_eq!(
        store.member("hub-b").await.unwrap().unwrap().status,
        MemberStatus::Removed
    );
    assert_eq!(
        store.federated_items(None).await.unwrap().len(),
        3,
        "received items stay"
    );
    assert!(matches!(
        store
            .set_peer_status("hub-q", StatusChange::Suspend, "op", 33)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let actions: Vec<String> = store
        .audit_list(50)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    for want in [
        "peer.add",
        "peer.suspend",
        "peer.resume",
        "peer.remove",
        "member.remove",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }
}

/// Federation into the order (issue 20): a received item becomes a row of
/// this hub's own order (sequence, log leaf, provenance) in the write that
/// records it, once per origin, id and revision even when a second peer
/// sends it; one that cannot join (its id taken by a local statement) is
/// skipped and the cursor still moves.
async fn received_items_join_the_order_once(store: Store) {
    use hub::store::{FederatedItem, PeerLinkRow};
    for hub in ["hub-b", "hub-c"] {
        store
            .add_member(member(hub, Role::Peer), "op")
            .await
            .unwrap();
        store
            .add_peer_link(
                PeerLinkRow {
                    hub_id: hub.into(),
                    url: format!("https://{hub}.example:7443"),
                    status: MemberStatus::Active,
                    created_at: 10,
                    cursor: Vec::new(),
                    directory: None,
                    directory_version: 0,
                    received: 0,
                },
                "op",
            )
            .await
            .unwrap();
    }
    let (local_seq, _) = append(&store, statement(1, "local-org")).await.unwrap();
    let provenance = |path: &[&str]| {
        format!(
            r#"{{"origin_hub":"hub-b","origin_seq":7,"hub_path":{}}}"#,
            serde_json::to_string(path).unwrap()
        )
        .into_bytes()
    };
    let item = |n: u64, from: &str, path: &[&str]| {
        let mut order = statement(n, "alice@hub-b");
        order.provenance = Some(provenance(path));
        FederatedItem {
            origin_hub: "hub-b".into(),
            id: order.id.clone(),
            revision: 1,
            from_peer: from.into(),
            tlp: "green".into(),
            kind: "package".into(),
            envelope_json: "{}".into(),
            provenance: provenance(path),
            received_at: 20,
            order: Some(order),
        }
    };
    let n = store
        .receive_from_peer(
            "hub-b",
            vec![
                item(2, "hub-b", &["hub-b", "hub-a"]),
                item(3, "hub-b", &["hub-b", "hub-a"]),
            ],
            b"b1".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    // The same item key again through hub-c, and one whose id a local
    // statement holds: neither joins the order; the cursor moves.
    let mut taken = item(1, "hub-c", &["hub-b", "hub-c", "hub-a"]);
    taken.id = "id-1".into();
    let n = store
        .receive_from_peer(
            "hub-c",
            vec![item(2, "hub-c", &["hub-b", "hub-c", "hub-a"]), taken],
            b"c1".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        store.peer_link("hub-c").await.unwrap().unwrap().cursor,
        b"c1"
    );
    let rows = store.statements_after(0, 100).await.unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["id-1", "id-2", "id-3"]);
    assert_eq!(rows[0].seq, local_seq);
    assert_eq!(rows[0].provenance, None);
    for r in &rows[1..] {
        assert!(r.seq > local_seq);
        assert_eq!(r.source_org, "alice@hub-b");
        assert_eq!(
            r.provenance.as_deref(),
            Some(&provenance(&["hub-b", "hub-a"])[..])
        );
        assert!(r.leaf_index.is_some(), "in this hub's log too");
    }
    assert_eq!(store.federated_items(None).await.unwrap().len(), 2);
    // Read back by id, as lookups and TAXII do.
    let by_id = store.revisions("id-2").await.unwrap();
    assert_eq!(by_id.len(), 1);
    assert!(by_id[0].provenance.is_some());
}

/// Cross-hub sharing groups (issue 20): `ORG@HUB` members beside local
/// ones, sharing with a peer, what the peer's manifest listed, and removal.
async fn cross_hub_groups_are_shared_and_checked(store: Store) {
    store
        .add_member(member("alice-bank", Role::Member), "op")
        .await
        .unwrap();
    store
        .add_member(member("hub-b", Role::Peer), "op")
        .await
        .unwrap();
    store
        .add_group(
            "supply-chain",
            vec!["alice-bank".into(), "dave-bank@hub-b".into()],
            "op",
            20,
        )
        .await
        .unwrap();
    let both = vec!["alice-bank".to_string(), "dave-bank@hub-b".to_string()];
    assert_eq!(
        store.group_members("supply-chain").await.unwrap(),
        Some(both.clone())
    );
    assert!(store
        .list_groups()
        .await
        .unwrap()
        .contains(&("supply-chain".to_string(), both)));
    // A remote member is nobody's local group.
    assert_eq!(
        store.groups_of("alice-bank").await.unwrap(),
        vec!["supply-chain".to_string()]
    );
    assert!(store.groups_of("dave-bank@hub-b").await.unwrap().is_empty());

    assert!(matches!(
        store.share_group("hub-z", "supply-chain", "op", 21).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.share_group("hub-b", "nope", "op", 21).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .share_group("hub-b", "supply-chain", "op", 21)
        .await
        .unwrap();
    assert!(matches!(
        store.share_group("hub-b", "supply-chain", "op", 22).await,
        Err(StoreError::Conflict(_))
    ));
    let rows = store.peer_groups().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].hub_id.as_str(), rows[0].group.as_str()),
        ("hub-b", "supply-chain")
    );
    assert_eq!(
        (rows[0].remote_members.clone(), rows[0].checked_at),
        (None, None)
    );
    let theirs = vec![
        "alice-bank@hub-a".to_string(),
        "dave-bank@hub-b".to_string(),
    ];
    store
        .set_peer_manifest(
            "hub-b",
            vec![("supply-chain".into(), Some(theirs.clone()))],
            23,
        )
        .await
        .unwrap();
    let rows = store.peer_groups().await.unwrap();
    assert_eq!(rows[0].remote_members, Some(theirs));
    assert_eq!(rows[0].checked_at, Some(23));
    store
        .set_peer_manifest("hub-b", vec![("supply-chain".into(), None)], 24)
        .await
        .unwrap();
    assert_eq!(store.peer_groups().await.unwrap()[0].remote_members, None);

    store
        .unshare_group("hub-b", "supply-chain", "op", 25)
        .await
        .unwrap();
    assert!(store.peer_groups().await.unwrap().is_empty());
    assert!(matches!(
        store.unshare_group("hub-b", "supply-chain", "op", 26).await,
        Err(StoreError::NotFound(_))
    ));
    // Removing a group removes its remote members and its sharing.
    store
        .share_group("hub-b", "supply-chain", "op", 27)
        .await
        .unwrap();
    store.remove_group("supply-chain", "op", 28).await.unwrap();
    assert!(store.peer_groups().await.unwrap().is_empty());
    assert_eq!(store.group_members("supply-chain").await.unwrap(), None);
    store
        .add_group("supply-chain", vec!["alice-bank".into()], "op", 29)
        .await
        .unwrap();
    assert_eq!(
        store.group_members("supply-chain").await.unwrap(),
        Some(vec!["alice-bank".to_string()])
    );
    let audit: Vec<String> = store
        .audit_list(50)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert!(audit.iter().any(|a| a == "peer.share"), "{audit:?}");
    assert!(audit.iter().any(|a| a == "peer.unshare"), "{audit:?}");
}
