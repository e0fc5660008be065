//! TLP 2.0 end to end: four member orgs and a coordinator, items at every
//! level with every kind of audience, checked through every read path
//! (stream, backfill, get, search, counts, errors). Each recipient gets
//! exactly its entitled set, and learns nothing about the rest.

use std::collections::BTreeSet;

use isac_core::Statement;
use isac_e2e::*;
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::{publish, retract, sight};
use member_agent::Agent;
use member_agent::Sinks;
use tonic::Code;

const VALUE: &str = "pkg:npm/shared-value@1.0.0";

fn item(title: &str, tlp: &str, audience: &[&str]) -> IndicatorDraft {
    IndicatorDraft {
        purl: Some(VALUE.into()),
        tlp: Some(tlp.into()),
        title: Some(title.into()),
        audience: (!audience.is_empty()).then(|| audience.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

fn catalogue() -> Vec<TlpRow> {
    tlp_catalogue()
}

fn entitled(org: &str) -> BTreeSet<&'static str> {
    catalogue()
        .into_iter()
        .filter(|(_, _, _, who)| org == "src-bank" || who.contains(&org))
        .map(|(title, ..)| title)
        .collect()
}

fn lookup(
    channel: tonic::transport::Channel,
) -> pb::lookup_client::LookupClient<tonic::transport::Channel> {
    pb::lookup_client::LookupClient::new(channel)
}

async fn count(
    agent: &Agent,
    id: String,
) -> Result<tonic::Response<pb::SightingCount>, tonic::Status> {
    lookup(agent.channel().await.unwrap())
        .count_sightings(pb::CountSightingsRequest { indicator_id: id })
        .await
}

fn statement_of(d: &pb::Delivery) -> Statement {
    Statement::from_canonical_bytes(&d.envelope.as_ref().unwrap().payload).unwrap()
}

#[tokio::test]
async fn every_recipient_gets_exactly_its_entitled_set_through_every_read_path() {
    entitled_sets(TlpWorld::start().await).await;
}

/// The same matrix on a hub whose store is PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipient_gets_exactly_its_entitled_set_on_postgres() {
    let cluster = tokio::task::spawn_blocking(isac_e2e::pg::PgCluster::start)
        .await
        .unwrap();
    entitled_sets(TlpWorld::start_on(&cluster.url("postgres")).await).await;
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

async fn entitled_sets(w: TlpWorld) {
    let src = w.agent("src-bank");
    let mut ids = std::collections::BTreeMap::new();
    for (title, tlp, audience, _) in catalogue() {
        let p = publish(src, item(title, tlp, &audience))
            .await
            .unwrap_or_else(|e| panic!("{title}: {e}"));
        ids.insert(title, p.id);
    }
    let missing = uuid::Uuid::new_v4().to_string();

    for (org, agent) in &w.agents {
        let want = entitled(org);

        // Stream and backfill: what the agent received and verified.
        let jsonl = w.dir.path().join(format!("{org}.jsonl"));
        let mut sink = Sinks::jsonl(Some(&jsonl)).unwrap();
        let report = agent.sync(false, &mut sink).await.unwrap();
        assert_eq!(report.rejected, 0, "{org}");
        let got: BTreeSet<String> = agent
            .store
            .lock()
            .unwrap()
            .list(100)
            .unwrap()
            .into_iter()
            .map(|i| i.title)
            .collect();
        let want_s: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want_s, "stream for {org}");
        // RED stays out of the SIEM sink by default.
        let exported = std::fs::read_to_string(&jsonl).unwrap_or_default();
        assert!(!exported.contains("\"tlp\":\"red\""), "{org} exported RED");

        let channel = agent.channel().await.unwrap();
        // Get by id: entitled items come back; the rest look exactly like a missing id.
        let not_found_message = |id: &str| format!("no statement {id} that you can see");
        for (title, id) in &ids {
            let r = lookup(channel.clone())
                .get_statement(pb::GetStatementRequest { id: id.clone() })
                .await;
            if want.contains(title) {
                let d = r
                    .unwrap_or_else(|e| panic!("{org} get {title}: {e:?}"))
                    .into_inner();
                assert_eq!(statement_of(&d).id.to_string(), *id);
            } else {
                let e = r.unwrap_err();
                assert_eq!(e.code(), Code::NotFound, "{org} get {title}");
                assert_eq!(e.message(), not_found_message(id), "{org} get {title}");
            }
        }
        let e = lookup(channel.clone())
            .get_statement(pb::GetStatementRequest {
                id: missing.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), e.message().to_owned()),
            (Code::NotFound, not_found_message(&missing))
        );

        // Search: every item shares one value; only entitled ones show.
        let found = lookup(channel.clone())
            .search(pb::SearchRequest {
                query: "shared-value".into(),
                limit: 100,
            })
            .await
            .unwrap()
            .into_inner()
            .items;
        let titles: BTreeSet<String> = found
            .iter()
            .map(|d| statement_of(d).title().to_owned())
            .collect();
        assert_eq!(titles, want_s, "search for {org}");

        // A RED recipient is told only the entries that name it.
        for d in &found {
            let s = statement_of(d);
            if s.title() == "red-two-people" && *org != "src-bank" {
                assert_eq!(s.audience.len(), 2);
                let entries: Vec<&str> = d
                    .audience_openings
                    .iter()
                    .map(|o| o.entry.as_str())
                    .collect();
                let expected = if *org == "person-bank" {
                    "person:person-bank/ann"
                } else {
                    "person:aud-bank/carl"
                };
                assert_eq!(
                    entries,
                    vec![expected],
                    "{org} must not learn who else was named"
                );
                let payload =
                    String::from_utf8_lossy(&d.envelope.as_ref().unwrap().payload).to_string();
                assert!(
                    !payload.contains("person-bank") && !payload.contains("aud-bank"),
                    "names in the signed payload"
                );
            }
            if *org == "src-bank" && s.title() == "red-two-people" {
                assert_eq!(
                    d.audience_openings.len(),
                    2,
                    "the source sees its whole audience"
                );
            }
        }
    }
    w.hub.stop().await;
}

#[tokio::test]
async fn sightings_retractions_and_actions_by_id_respect_the_item_they_name() {
    let w = TlpWorld::start().await;
    let src = w.agent("src-bank");
    let mut ids = std::collections::BTreeMap::new();
    for (title, tlp, audience, _) in catalogue() {
        ids.insert(
            title,
            publish(src, item(title, tlp, &audience)).await.unwrap().id,
        );
    }
    for (_, agent) in &w.agents {
        let mut sink = Sinks::jsonl(Some(&w.dir.path().join("x.jsonl"))).unwrap();
        agent.sync(false, &mut sink).await.unwrap();
    }
    let aud = w.agent("aud-bank");
    let other = w.agent("other-bank");
    let amber_org = ids["amber-org"].clone();

    // aud-bank sights the AMBER item it was sent (anonymous by default).
    sight(aud, &amber_org, 3, false, None).await.unwrap();
    // A looser TLP than the item is refused.
    let err = sight(aud, &amber_org, 1, false, Some("green"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("less restricted"), "{err}");

    // Counts: the source and entitled orgs see them; others learn nothing.
    let c = count(src, amber_org.clone()).await.unwrap().into_inner();
    assert_eq!((c.total, c.reports), (3, 1));
    let c = count(aud, amber_org.clone()).await.unwrap().into_inner();
    assert_eq!(c.total, 3);
    let e = count(other, amber_org.clone()).await.unwrap_err();
    let missing = uuid::Uuid::new_v4().to_string();
    let e2 = count(other, missing.clone()).await.unwrap_err();
    assert_eq!(e.code(), e2.code());
    assert_eq!(
        e.message().replace(&amber_org, "ID"),
        e2.message().replace(&missing, "ID")
    );

    // The source receives the sighting, anonymised; other-bank does not.
    let mut sink = Sinks::jsonl(Some(&w.dir.path().join("src2.jsonl"))).unwrap();
    src.sync(false, &mut sink).await.unwrap();
    let lines = std::fs::read_to_string(w.dir.path().join("src2.jsonl")).unwrap();
    let sighting: serde_json::Value = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["kind"] == "sighting")
        .expect("source receives the sighting");
    assert_eq!(sighting["source"], "anonymous");
    assert!(
        !lines.contains("aud-bank"),
        "the sighting org stays anonymous"
    );
    let mut sink = Sinks::jsonl(Some(&w.dir.path().join("other2.jsonl"))).unwrap();
    let r = other.sync(false, &mut sink).await.unwrap();
    assert_eq!(
        r.new, 0,
        "other-bank gets no sighting of an item it cannot see"
    );

    // Acting by id on items one cannot see: the same answer as a missing id.
    let craft = |target: &str| {
        let body = isac_core::Body::Sighting(isac_core::statement::Sighting {
            indicator: target.parse().unwrap(),
            count: 1,
            first_seen: isac_core::time::format_rfc3339(member_agent::now()),
            last_seen: isac_core::time::format_rfc3339(member_agent::now()),
        });
        member_agent::draft::new_statement(
            "other-bank",
            isac_core::time::format_rfc3339(member_agent::now()),
            isac_core::Tlp::Red,
            &["person:aud-bank/carl".to_string()],
            true,
            body,
        )
        .unwrap()
    };
    let hidden = member_agent::publish::publish_prepared(other, &craft(&amber_org))
        .await
        .unwrap_err()
        .to_string();
    let absent = member_agent::publish::publish_prepared(other, &craft(&missing))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        hidden.replace(&amber_org, "ID"),
        absent.replace(&missing, "ID")
    );
    assert!(hidden.contains("that you can see"), "{hidden}");

    // Retracting another member's visible item is refused; the source can.
    let green = ids["green"].clone();
    let err = retract(other, &green, "not mine").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("only the item's source or a coordinator"),
        "{err}"
    );
    retract(src, &green, "false positive").await.unwrap();
    let mut sink = Sinks::jsonl(Some(&w.dir.path().join("other3.jsonl"))).unwrap();
    other.sync(false, &mut sink).await.unwrap();
    let held = other.store.lock().unwrap().list(100).unwrap();
    assert!(
        held.iter()
            .any(|i| i.id == green && i.status == "retracted"),
        "{held:?}"
    );
    let out = std::fs::read_to_string(w.dir.path().join("other3.jsonl")).unwrap();
    assert!(out.contains("\"action\":\"retract\""), "{out}");

    // A coordinator may retract what it can see, not what it cannot.
    let staff = w.agent("isac-staff");
    retract(staff, &ids["clear"], "coordinated takedown")
        .await
        .unwrap();
    let err = retract(staff, &amber_org, "x").await.unwrap_err();
    assert!(err.to_string().contains("not in your local store"), "{err}");
    w.hub.stop().await;
}

#[tokio::test]
async fn widening_a_group_or_dropping_an_audience_never_widens_old_items() {
    let w = TlpWorld::start().await;
    let src = w.agent("src-bank");
    let grouped = publish(
        src,
        item("for-payments", "amber+strict", &["group:payments"]),
    )
    .await
    .unwrap();
    // The operator re-creates the group with other-bank added.
    w.hub
        .admin()
        .remove_group(pb::RemoveGroupRequest {
            name: "payments".into(),
        })
        .await
        .unwrap();
    w.hub
        .admin()
        .add_group(pb::AddGroupRequest {
            name: "payments".into(),
            members: vec!["group-bank".into(), "other-bank".into()],
        })
        .await
        .unwrap();
    for (org, should) in [("group-bank", true), ("other-bank", false)] {
        let r = lookup(w.agent(org).channel().await.unwrap())
            .get_statement(pb::GetStatementRequest {
                id: grouped.id.clone(),
            })
            .await;
        assert_eq!(r.is_ok(), should, "{org}");
    }
    // A revision that drops the audience of an AMBER+STRICT item is refused.
    let mut rev = item("for-payments", "amber+strict", &[]).into_statement(
        "src-bank",
        isac_core::time::format_rfc3339(member_agent::now()),
    );
    assert!(rev.is_err(), "the agent refuses it itself");
    let mut s = item("for-payments", "amber+strict", &["group:payments"])
        .into_statement(
            "src-bank",
            isac_core::time::format_rfc3339(member_agent::now()),
        )
        .unwrap();
    s.id = grouped.id.parse().unwrap();
    s.revision = 2;
    s.audience.clear();
    let env = src
        .loaded
        .signing_key
        .sign_envelope(isac_core::PAYLOAD_TYPE_STATEMENT_V1, s.canonical_bytes())
        .unwrap();
    let err = member_agent::publish::publish_envelope(src, env)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("requires an audience"), "{err}");
    rev = Ok(s);
    drop(rev);
    // The source may lower the level with a new signed revision.
    let mut lower = item("for-payments", "green", &[])
        .into_statement(
            "src-bank",
            isac_core::time::format_rfc3339(member_agent::now()),
        )
        .unwrap();
    lower.id = grouped.id.parse().unwrap();
    lower.revision = 2;
    let env = src
        .loaded
        .signing_key
        .sign_envelope(
            isac_core::PAYLOAD_TYPE_STATEMENT_V1,
            lower.canonical_bytes(),
        )
        .unwrap();
    member_agent::publish::publish_envelope(src, env)
        .await
        .unwrap();
    let d = lookup(w.agent("other-bank").channel().await.unwrap())
        .get_statement(pb::GetStatementRequest {
            id: grouped.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        statement_of(&d).revision,
        2,
        "other-bank sees the lowered revision only"
    );
    w.hub.stop().await;
}

#[tokio::test]
async fn anonymous_submissions_never_identify_the_source_to_others() {
    let w = TlpWorld::start().await;
    let src = w.agent("src-bank");
    let mut d = item("anon-amber", "amber", &["org:aud-bank"]);
    d.anonymous = Some(true);
    let amber = publish(src, d).await.unwrap();
    let mut d = item("anon-green", "green", &[]);
    d.anonymous = Some(true);
    let green = publish(src, d).await.unwrap();
    let src_key = src.loaded.identity.signing_key_id.clone();

    for (org, agent) in &w.agents {
        let jsonl = w.dir.path().join(format!("{org}.jsonl"));
        let mut sink = Sinks::jsonl(Some(&jsonl)).unwrap();
        let r = agent.sync(false, &mut sink).await.unwrap();
        assert_eq!(
            r.rejected, 0,
            "{org}: anonymous items verify against the directory"
        );
        let text = std::fs::read_to_string(&jsonl).unwrap_or_default();
        let channel = agent.channel().await.unwrap();
        let search = lookup(channel.clone())
            .search(pb::SearchRequest {
                query: VALUE.into(),
                limit: 10,
            })
            .await
            .unwrap()
            .into_inner()
            .items;
        if *org == "src-bank" {
            assert!(
                text.contains("\"source\":\"src-bank\""),
                "the source sees it as its own"
            );
            continue;
        }
        assert!(
            !text.contains("src-bank"),
            "{org} learned the source from the sink: {text}"
        );
        assert!(
            !text.contains(&src_key),
            "{org} learned the source's key id"
        );
        assert!(
            text.contains("\"source\":\"anonymous\"") && text.contains("anonymous member"),
            "{org}: {text}"
        );
        for d in search {
            let env = d.envelope.unwrap();
            assert!(!String::from_utf8_lossy(&env.payload).contains("src-bank"));
            assert_ne!(env.signatures[0].keyid, src_key);
        }
        let expected_items = if *org == "aud-bank" { 2 } else { 1 };
        assert_eq!(text.lines().count(), expected_items, "{org}");
        // Errors do not name the source either (coordinators may retract).
        if *org != "isac-staff" {
            let err = retract(agent, &green.id, "x")
                .await
                .unwrap_err()
                .to_string();
            assert!(!err.contains("src-bank"), "{err}");
        }
    }
    // The hub keeps the original, signed by the source, for its audit trail.
    assert_eq!(
        w.hub.query_i64(&format!(
            "SELECT count(*) FROM statements WHERE id = '{}' AND source_org = 'src-bank' AND key_id = '{src_key}' AND anon_payload IS NOT NULL",
            amber.id
        )),
        1
    );
    w.hub.stop().await;
}

/// Publishes `draft` as `agent` under a chosen id and revision; the hub's
/// answer as (code, message with the id blanked out).
async fn publish_as(
    agent: &Agent,
    draft: IndicatorDraft,
    id: &str,
    revision: u32,
) -> Result<(), (Code, String)> {
    let mut s = draft
        .into_statement(
            agent.org_id(),
            isac_core::time::format_rfc3339(member_agent::now()),
        )
        .unwrap();
    s.id = id.parse().unwrap();
    s.revision = revision;
    let env = agent
        .loaded
        .signing_key
        .sign_envelope(isac_core::PAYLOAD_TYPE_STATEMENT_V1, s.canonical_bytes())
        .unwrap();
    match member_agent::publish::publish_envelope(agent, env).await {
        Ok(_) => Ok(()),
        Err(member_agent::AgentError::Hub { code, message }) => {
            Err((code, message.replace(id, "ID")))
        }
        Err(other) => panic!("not a hub answer: {other}"),
    }
}

#[tokio::test]
async fn a_reused_id_gets_one_answer_whether_its_item_is_hidden_visible_or_missing() {
    // Issue 15: reusing the id of an item one may not see answered
    // ALREADY_EXISTS while a never-published id was accepted: an existence
    // oracle for ids learned from `related` references.
    let w = TlpWorld::start().await;
    let src = w.agent("src-bank");
    let other = w.agent("other-bank");
    let hidden = publish(src, item("hidden", "amber+strict", &["org:aud-bank"]))
        .await
        .unwrap()
        .id;
    let missing = uuid::Uuid::new_v4().to_string();
    let mut visible_draft = item("visible", "clear", &[]);
    visible_draft.related = Some(vec![hidden.clone(), missing.clone()]);
    let visible = publish(src, visible_draft).await.unwrap().id;

    // other-bank sees `visible`, so it knows all three ids.
    let mut answers = Vec::new();
    for (what, id) in [
        ("hidden", &hidden),
        ("missing", &missing),
        ("visible", &visible),
    ] {
        for revision in [1, 2] {
            let answer = publish_as(other, item("squat", "clear", &[]), id, revision).await;
            answers.push((what, revision, answer));
        }
    }
    let first = answers[0].2.clone().unwrap_err();
    assert_eq!(first.0, Code::AlreadyExists, "{first:?}");
    assert!(first.1.contains("already taken"), "{first:?}");
    for (what, revision, answer) in &answers {
        assert_eq!(answer, &Err(first.clone()), "{what} revision {revision}");
    }

    // A fresh id is accepted at revision 1; a revision 2 with no revision 1
    // is refused, for a fresh id as for one's own referenced one.
    let fresh = uuid::Uuid::new_v4().to_string();
    let orphan = publish_as(other, item("orphan", "clear", &[]), &fresh, 2)
        .await
        .unwrap_err();
    assert_eq!(orphan.0, Code::FailedPrecondition, "{orphan:?}");
    assert!(orphan.1.contains("publish revision 1 first"), "{orphan:?}");
    publish_as(other, item("fresh", "clear", &[]), &fresh, 1)
        .await
        .unwrap();
    publish_as(other, item("fresh", "clear", &[]), &fresh, 2)
        .await
        .unwrap();
    let skip = publish_as(src, item("late", "clear", &[]), &missing, 3)
        .await
        .unwrap_err();
    assert_eq!(skip.0, Code::FailedPrecondition, "{skip:?}");
    // The author may still publish an id only it referenced.
    publish_as(src, item("late", "clear", &[]), &missing, 1)
        .await
        .unwrap();
    // And a revision of its hidden item is still its own to make.
    publish_as(src, item("hidden, lowered", "clear", &[]), &hidden, 2)
        .await
        .unwrap();
    w.hub.stop().await;
}
