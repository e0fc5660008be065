//! TAXII 2.1 on the hub's real HTTPS listener: the same TLP decision as
//! gRPC across every level and audience, through collections, objects,
//! manifest, versions, single objects, paging and errors; API keys and
//! client certificates; exact paging by `next` and by `added_after`.

use std::collections::{BTreeMap, BTreeSet};

use isac_e2e::*;
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::{publish, retract};
use serde_json::Value;

const ROOT: &str = "/isac";

fn item(title: &str, tlp: &str, audience: &[&str]) -> IndicatorDraft {
    IndicatorDraft {
        purl: Some(format!("pkg:npm/{title}@1.0.0")),
        tlp: Some(tlp.into()),
        title: Some(title.into()),
        audience: (!audience.is_empty()).then(|| audience.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

fn catalogue() -> Vec<TlpRow> {
    tlp_catalogue()
}

/// What a TAXII key of `org` (bound to `person`, if any) is entitled to:
/// the member rules, and RED only for a named person in the audience.
fn entitled(org: &str, person: Option<&str>) -> BTreeSet<String> {
    catalogue()
        .into_iter()
        .filter(|(_, tlp, audience, who)| {
            if *tlp == "red" {
                person.is_some_and(|p| audience.contains(&format!("person:{org}/{p}").as_str()))
            } else {
                org == "src-bank" || who.contains(&org)
            }
        })
        .map(|(title, ..)| title.to_owned())
        .collect()
}

fn collection_ids(hub: &TestHub) -> (String, String) {
    let _ = hub;
    (
        hub::taxii::collection_id("indicators"),
        hub::taxii::collection_id("bulletins"),
    )
}

/// Titles of the indicator objects in a listing.
fn titles(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| o["type"] == "indicator" && o.get("revoked") != Some(&Value::Bool(true)))
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Reads a whole collection by following `next`, `limit` objects a page.
async fn read_all(hub: &TestHub, key: (&str, &str), cid: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..10_000 {
        let mut path = format!("{ROOT}/collections/{cid}/objects/?limit={limit}");
        if let Some(n) = &next {
            path.push_str(&format!("&next={n}"));
        }
        let r = hub.taxii("GET", &path, Some(key)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let body = r.json();
        out.extend(body["objects"].as_array().cloned().unwrap_or_default());
        if body["more"] != Value::Bool(true) {
            assert!(body.get("next").is_none());
            return out;
        }
        next = Some(body["next"].as_str().unwrap().to_owned());
    }
    panic!("paging never ended");
}

#[tokio::test]
async fn taxii_serves_every_caller_exactly_its_entitled_set() {
    let w = TlpWorld::start().await;
    let src = &w.agents[0].1;
    let mut ids = BTreeMap::new();
    for (title, tlp, audience, _) in catalogue() {
        let p = publish(src, item(title, tlp, &audience)).await.unwrap();
        ids.insert(title, p.id);
    }
    let (indicators, bulletins) = collection_ids(&w.hub);

    // Org keys, and person-bound keys for the named people.
    let mut callers: Vec<(String, Option<&str>, (String, String))> = Vec::new();
    for (org, _) in &w.agents {
        callers.push((org.to_string(), None, w.hub.add_api_key(org, None).await));
    }
    for (org, person) in [
        ("person-bank", "ann"),
        ("person-bank", "bob"),
        ("aud-bank", "carl"),
    ] {
        callers.push((
            org.to_string(),
            Some(person),
            w.hub.add_api_key(org, Some(person)).await,
        ));
    }

    let missing_id = format!("indicator--{}", uuid::Uuid::new_v4());
    let not_found = w
        .hub
        .taxii(
            "GET",
            &format!("{ROOT}/collections/{indicators}/objects/{missing_id}/"),
            Some((&callers[0].2 .0, &callers[0].2 .1)),
        )
        .await;
    assert_eq!(not_found.status, 404);

    for (org, person, (user, pass)) in &callers {
        let key = (user.as_str(), pass.as_str());
        let who = format!("{org}/{}", person.unwrap_or("-"));
        let want = entitled(org, *person);

        // Collections: the fixed two, plus the groups the org is in.
        let r = w
            .hub
            .taxii("GET", &format!("{ROOT}/collections/"), Some(key))
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type"),
            Some("application/taxii+json;version=2.1")
        );
        let listed: BTreeSet<String> = r.json()["collections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        let group = hub::taxii::collection_id("group:payments");
        assert!(listed.contains(&indicators) && listed.contains(&bulletins));
        assert_eq!(listed.contains(&group), org == "group-bank", "{who}");
        if org != "group-bank" {
            let r = w
                .hub
                .taxii(
                    "GET",
                    &format!("{ROOT}/collections/{group}/objects/"),
                    Some(key),
                )
                .await;
            assert_eq!(r.status, 404, "{who} reads a group it is not in");
        }

        // Objects in one page, and page by page (limit 1): the same set.
        let all = read_all(&w.hub, key, &indicators, 1000).await;
        assert_eq!(titles(&all), want, "objects for {who}");
        let paged = read_all(&w.hub, key, &indicators, 1).await;
        assert_eq!(paged, all, "paging for {who}");

        // Manifest: one entry per object, nothing more.
        let r = w
            .hub
            .taxii(
                "GET",
                &format!("{ROOT}/collections/{indicators}/manifest/"),
                Some(key),
            )
            .await;
        assert_eq!(r.status, 200);
        let manifest = r.json()["objects"].as_array().cloned().unwrap_or_default();
        assert_eq!(manifest.len(), all.len(), "manifest for {who}");
        for (m, o) in manifest.iter().zip(&all) {
            assert_eq!(m["id"], o["id"]);
            assert_eq!(m["version"], o["modified"]);
            assert_eq!(m["media_type"], "application/stix+json;version=2.1");
        }
        if !all.is_empty() {
            assert!(r.header("x-taxii-date-added-first").is_some());
            assert!(r.header("x-taxii-date-added-last").is_some());
        }

        // By id and versions: entitled items answer, the rest are exactly a missing id.
        for (title, id) in &ids {
            let stix_id = isac_core::stix::stix_id("indicator", &id.parse().unwrap());
            for suffix in ["", "versions/"] {
                let r = w
                    .hub
                    .taxii(
                        "GET",
                        &format!("{ROOT}/collections/{indicators}/objects/{stix_id}/{suffix}"),
                        Some(key),
                    )
                    .await;
                if want.contains(*title) {
                    assert_eq!(r.status, 200, "{who} {title} {suffix}");
                } else {
                    assert_eq!(r.status, 404, "{who} {title} {suffix}");
                    assert_eq!(
                        r.body, not_found.body,
                        "{who} {title}: a hidden item looks missing"
                    );
                }
            }
        }
        // Nothing under bulletins (none published), and no RED anywhere without a person.
        let b = read_all(&w.hub, key, &bulletins, 100).await;
        assert!(b.is_empty());
        if person.is_none() {
            assert!(all.iter().all(|o| o["object_marking_refs"][0]
                != "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"));
        }
    }

    // The same answers for an agent's client certificate: its org's set, no RED.
    let state = member_agent::StateDir::new(w.dir.path().join("aud-bank"))
        .load()
        .unwrap();
    let ca =
        openssl::x509::X509::from_pem(&std::fs::read(w.hub.data_dir().join("ca.crt")).unwrap())
            .unwrap();
    let request = format!(
        "GET {ROOT}/collections/{indicators}/objects/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    let r = https_exchange(
        w.hub.taxii_addr,
        &ca,
        Some((&state.tls_cert, &state.tls_key)),
        request.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        titles(r.json()["objects"].as_array().unwrap()),
        entitled("aud-bank", None)
    );
}

#[tokio::test]
async fn taxii_refuses_bad_credentials_and_requests_clearly() {
    let w = TlpWorld::start().await;
    let (indicators, _) = collection_ids(&w.hub);
    let (user, pass) = w.hub.add_api_key("other-bank", None).await;
    let objects = format!("{ROOT}/collections/{indicators}/objects/");

    let r = w.hub.taxii("GET", "/taxii2/", None).await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    let r = w.hub.taxii("GET", &objects, Some((&user, "wrong"))).await;
    assert_eq!(r.status, 401);
    let r = w
        .hub
        .taxii("GET", &objects, Some(("taxii-nobody", &pass)))
        .await;
    assert_eq!(r.status, 401);

    let r = w.hub.taxii("GET", "/taxii2/", Some((&user, &pass))).await;
    assert_eq!(r.status, 200);
    let d = r.json();
    assert_eq!(
        d["api_roots"][0],
        format!("https://localhost:{}/isac/", w.hub.taxii_addr.port())
    );
    let r = w
        .hub
        .taxii("GET", &format!("{ROOT}/"), Some((&user, &pass)))
        .await;
    assert_eq!(
        r.json()["versions"][0],
        "application/taxii+json;version=2.1"
    );

    for (path, status) in [
        (format!("{objects}?limit=0"), 400),
        (format!("{objects}?added_after=yesterday"), 400),
        (format!("{objects}?next=banana"), 400),
        (format!("{objects}?next=99999999"), 400),
        (format!("{objects}?match[id]=nope"), 400),
        (
            format!("{ROOT}/collections/{}/objects/", uuid::Uuid::new_v4()),
            404,
        ),
        (format!("{ROOT}/nothing/"), 404),
    ] {
        let r = w.hub.taxii("GET", &path, Some((&user, &pass))).await;
        assert_eq!(r.status, status, "{path}");
        let e = r.json();
        assert_eq!(e["http_status"], status.to_string());
        assert!(!e["description"].as_str().unwrap().is_empty());
    }
    // An unauthenticated peer is refused before any body is read: a POST
    // announcing 100 MiB and sending none still gets its 401 at once.
    let ca =
        openssl::x509::X509::from_pem(&std::fs::read(w.hub.data_dir().join("ca.crt")).unwrap())
            .unwrap();
    let big = format!(
        "POST {objects} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/taxii+json;version=2.1\r\nContent-Length: 104857600\r\n\r\n"
    );
    let r = https_exchange(w.hub.taxii_addr, &ca, None, big.as_bytes()).await;
    assert_eq!(r.status, 401);
    // And an authenticated write larger than max_content_length is 413 unread.
    let (writer, writer_pass) = w.hub.add_api_key_with("other-bank", None, true).await;
    let auth = openssl::base64::encode_block(format!("{writer}:{writer_pass}").as_bytes());
    let big = format!(
        "POST {objects} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {auth}\r\nContent-Type: application/taxii+json;version=2.1\r\nContent-Length: 104857600\r\n\r\n"
    );
    let r = https_exchange(w.hub.taxii_addr, &ca, None, big.as_bytes()).await;
    assert_eq!(r.status, 413);
    let r = w
        .hub
        .taxii(
            "DELETE",
            &format!("{ROOT}/collections/"),
            Some((&user, &pass)),
        )
        .await;
    assert_eq!(r.status, 405);
    let r = w.hub.taxii("POST", &objects, Some((&user, &pass))).await;
    assert_eq!(r.status, 403);

    // Revocation takes effect on the next request; suspension too.
    w.hub
        .admin_store
        .revoke_api_key(&user, "test", hub::app::Clock::system().now())
        .await
        .unwrap();
    assert_eq!(
        w.hub
            .taxii("GET", &objects, Some((&user, &pass)))
            .await
            .status,
        401
    );
    let (user2, pass2) = w.hub.add_api_key("group-bank", None).await;
    assert_eq!(
        w.hub
            .taxii("GET", &objects, Some((&user2, &pass2)))
            .await
            .status,
        200
    );
    w.hub
        .admin()
        .set_member_status(pb::SetMemberStatusRequest {
            org_id: "group-bank".into(),
            action: "suspend".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        w.hub
            .taxii("GET", &objects, Some((&user2, &pass2)))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn taxii_paging_by_next_and_by_added_after_is_exact_with_shared_timestamps() {
    let w = TlpWorld::start().await;
    let src = &w.agents[0].1;
    // 600 items published in batches land within a few seconds: many share a second.
    let mut batch = Vec::new();
    let created = isac_core::time::format_rfc3339(hub::app::Clock::system().now());
    for i in 0..600 {
        let prepared = item(&format!("bulk-{i:04}"), "green", &[])
            .into_prepared(src.org_id(), created.clone())
            .unwrap();
        let envelope = src
            .loaded
            .signing_key
            .sign_envelope(
                isac_core::PAYLOAD_TYPE_STATEMENT_V1,
                prepared.statement.canonical_bytes(),
            )
            .unwrap();
        batch.push((envelope, prepared.openings));
    }
    for chunk in batch.chunks(200) {
        for r in member_agent::publish::publish_batch(src, chunk.to_vec())
            .await
            .unwrap()
        {
            r.unwrap();
        }
    }
    // A retraction: `last` shows only the revoked version.
    let gone = publish(src, item("retracted", "green", &[])).await.unwrap();
    let mut sink = member_agent::Sinks::jsonl(None).unwrap();
    src.sync(false, &mut sink).await.unwrap();
    retract(src, &gone.id, "false positive").await.unwrap();

    let (indicators, _) = collection_ids(&w.hub);
    let (user, pass) = w.hub.add_api_key("other-bank", None).await;
    let key = (user.as_str(), pass.as_str());

    let by_next = read_all(&w.hub, key, &indicators, 37).await;
    let ids: Vec<&str> = by_next.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no object twice");
    let names = titles(&by_next);
    assert_eq!(
        names.len(),
        600,
        "600 bulk (the retracted one shows revoked)"
    );
    assert!(by_next.iter().any(|o| o["revoked"] == Value::Bool(true)));

    // Paging with added_after = the last page's X-TAXII-Date-Added-Last.
    let mut after: Option<String> = None;
    let mut by_date = Vec::new();
    for _ in 0..1000 {
        let mut path = format!("{ROOT}/collections/{indicators}/objects/?limit=37");
        if let Some(a) = &after {
            path.push_str(&format!("&added_after={a}"));
        }
        let r = w.hub.taxii("GET", &path, Some(key)).await;
        assert_eq!(r.status, 200);
        let objects = r.json()["objects"].as_array().cloned().unwrap_or_default();
        if objects.is_empty() {
            break;
        }
        by_date.extend(objects);
        after = Some(r.header("x-taxii-date-added-last").unwrap().to_owned());
    }
    assert_eq!(
        by_date, by_next,
        "added_after paging sees the same objects in the same order"
    );

    // All versions: the revoked marker and the original both show.
    let all_versions = format!("{ROOT}/collections/{indicators}/objects/?match[version]=all&match[type]=indicator&limit=10000");
    let r = w.hub.taxii("GET", &all_versions, Some(key)).await;
    assert_eq!(r.json()["objects"].as_array().unwrap().len(), 602);
    let gone_stix = isac_core::stix::stix_id("indicator", &gone.id.parse().unwrap());
    let r = w
        .hub
        .taxii(
            "GET",
            &format!("{ROOT}/collections/{indicators}/objects/{gone_stix}/versions/"),
            Some(key),
        )
        .await;
    assert_eq!(r.json()["versions"].as_array().unwrap().len(), 2);
}

fn indicator_object(id: &str, modified: &str, name: &str, marking: Option<&str>) -> Value {
    let mut o = serde_json::json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": id,
        "created": "2026-11-20T10:00:00.000Z",
        "modified": modified,
        "name": name,
        "indicator_types": ["malicious-activity"],
        "pattern": "[software:x_purl = 'pkg:npm/taxii-submitted@1.0.0']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T10:00:00Z",
    });
    if let Some(m) = marking {
        o["object_marking_refs"] = serde_json::json!([m]);
    }
    o
}

#[tokio::test]
async fn taxii_writes_become_hub_attested_statements_every_agent_verifies() {
    let w = TlpWorld::start().await;
    let (indicators, bulletins) = collection_ids(&w.hub);
    let objects = format!("{ROOT}/collections/{indicators}/objects/");
    let (user, pass) = w.hub.add_api_key_with("src-bank", None, true).await;
    let key = (user.as_str(), pass.as_str());
    let post = |body: Value| {
        let bytes = serde_json::to_vec(&body).unwrap();
        let hub = &w.hub;
        let objects = objects.clone();
        async move {
            hub.taxii_with_body(
                "POST",
                &objects,
                Some(key),
                Some(("application/taxii+json;version=2.1", &bytes)),
            )
            .await
        }
    };
    let green = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb";
    let red = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1";
    let stix_id = format!("indicator--{}", uuid::Uuid::new_v4());
    let red_id = format!("indicator--{}", uuid::Uuid::new_v4());
    let submitted = serde_json::json!({ "objects": [
        indicator_object(&stix_id, "2026-11-20T10:00:00.000Z", "submitted over TAXII", Some(green)),
        indicator_object(&red_id, "2026-11-20T10:00:00.000Z", "red over TAXII", Some(red)),
        {"type": "identity", "spec_version": "2.1", "id": format!("identity--{}", uuid::Uuid::new_v4()),
         "created": "2026-11-20T10:00:00.000Z", "modified": "2026-11-20T10:00:00.000Z", "name": "x"},
        {"type": "indicator", "id": "not-an-id"},
    ]});

    // The collection says it is writable for this key only.
    let r = w
        .hub
        .taxii(
            "GET",
            &format!("{ROOT}/collections/{indicators}/"),
            Some(key),
        )
        .await;
    assert_eq!(r.json()["can_write"], true);
    let r = w
        .hub
        .taxii(
            "GET",
            &format!("{ROOT}/collections/{bulletins}/"),
            Some(key),
        )
        .await;
    assert_eq!(
        r.json()["can_write"],
        false,
        "bulletins are for coordinators"
    );

    let r = post(submitted.clone()).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let status = r.json();
    assert_eq!(status["status"], "complete");
    assert_eq!(status["total_count"], 4);
    assert_eq!(status["success_count"], 2, "{status}");
    assert_eq!(status["failure_count"], 2, "{status}");
    let failed: Vec<&str> = status["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&red_id.as_str()),
        "RED cannot come without an audience"
    );
    // The status resource can be read again, by its owner only.
    let sid = status["id"].as_str().unwrap();
    let again = w
        .hub
        .taxii("GET", &format!("{ROOT}/status/{sid}/"), Some(key))
        .await;
    assert_eq!(again.json(), status);
    let (other_user, other_pass) = w.hub.add_api_key("aud-bank", None).await;
    let r = w
        .hub
        .taxii(
            "GET",
            &format!("{ROOT}/status/{sid}/"),
            Some((&other_user, &other_pass)),
        )
        .await;
    assert_eq!(r.status, 404);

    // Every agent verifies it: attributed to src-bank, signed by the hub for it.
    let jsonl = w.dir.path().join("aud.jsonl");
    let aud = &w.agents[1].1;
    let mut sink = member_agent::Sinks::jsonl(Some(&jsonl)).unwrap();
    let report = aud.sync(false, &mut sink).await.unwrap();
    assert_eq!(report.rejected, 0);
    let lines: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let line = lines
        .iter()
        .find(|l| l["title"] == "submitted over TAXII")
        .expect("the submitted item reached the agent");
    assert_eq!(line["source"], "src-bank");
    assert_eq!(line["tlp"], "green");
    assert_eq!(line["signature"]["status"], "hub-attested");

    // Re-sending the same version changes nothing; it is listed once, attested.
    let r = post(submitted.clone()).await;
    assert_eq!(r.json()["success_count"], 2);
    let listed: Vec<Value> = read_all(&w.hub, (&other_user, &other_pass), &indicators, 1000)
        .await
        .into_iter()
        .filter(|o| o["name"] == "submitted over TAXII")
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["x_isac_hub_attested"], true);
    assert_eq!(listed[0]["x_isac_source_org"], "src-bank");
    assert_eq!(
        listed[0]["created_by_ref"],
        isac_core::stix::identity_id("src-bank")
    );

    // Revoking it over TAXII retracts it at the agents.
    let mut revoked = indicator_object(
        &stix_id,
        "2026-11-21T10:00:00.000Z",
        "submitted over TAXII",
        Some(green),
    );
    revoked["revoked"] = Value::Bool(true);
    let r = post(serde_json::json!({ "objects": [revoked] })).await;
    assert_eq!(r.json()["success_count"], 1, "{}", r.json());
    aud.sync(false, &mut sink).await.unwrap();
    let held = aud.store.lock().unwrap().list(100).unwrap();
    let item = held
        .iter()
        .find(|i| i.title == "submitted over TAXII")
        .unwrap();
    assert_eq!(item.status, "retracted");

    // Bad requests: wrong media type, not JSON, not an envelope, a read-only key.
    let r = w
        .hub
        .taxii_with_body(
            "POST",
            &objects,
            Some(key),
            Some(("application/json", b"{}")),
        )
        .await;
    assert_eq!(r.status, 415);
    let r = w
        .hub
        .taxii_with_body(
            "POST",
            &objects,
            Some(key),
            Some(("application/taxii+json;version=2.1", b"{not json")),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = post(serde_json::json!({"no": "objects"})).await;
    assert_eq!(r.status, 400);
    let r = w
        .hub
        .taxii_with_body(
            "POST",
            &objects,
            Some((&other_user, &other_pass)),
            Some(("application/taxii+json;version=2.1", b"{\"objects\":[]}")),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn a_deeply_nested_pattern_is_refused_by_name_and_the_hub_keeps_serving() {
    // Issue 15: one POSTed indicator nesting parentheses 5,000 deep (10 KB)
    // overflowed a hub worker's stack and aborted the whole process.
    let w = TlpWorld::start().await;
    let (indicators, _) = collection_ids(&w.hub);
    let objects = format!("{ROOT}/collections/{indicators}/objects/");
    let (user, pass) = w.hub.add_api_key_with("src-bank", None, true).await;
    let green = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb";
    let deep = |depth: usize| {
        let mut o = indicator_object(
            &format!("indicator--{}", uuid::Uuid::new_v4()),
            "2026-11-20T10:00:00.000Z",
            &format!("nested {depth}"),
            Some(green),
        );
        o["pattern"] = Value::String(format!(
            "[{}domain-name:value = 'deep.evil.example'{}]",
            "(".repeat(depth),
            ")".repeat(depth)
        ));
        o
    };
    let body = serde_json::json!({ "objects": [deep(5_000), deep(2_000), deep(30_000), deep(3)] });
    let bytes = serde_json::to_vec(&body).unwrap();
    let r = w
        .hub
        .taxii_with_body(
            "POST",
            &objects,
            Some((&user, &pass)),
            Some(("application/taxii+json;version=2.1", &bytes)),
        )
        .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let status = r.json();
    assert_eq!(status["success_count"], 1, "{status}");
    assert_eq!(status["failure_count"], 3, "{status}");
    for failure in status["failures"].as_array().unwrap() {
        let message = failure["message"].as_str().unwrap();
        assert!(message.contains("nesting limit"), "{message}");
    }
    // Still serving, TAXII and gRPC alike.
    let r = w
        .hub
        .taxii("GET", &format!("{ROOT}/collections/"), Some((&user, &pass)))
        .await;
    assert_eq!(r.status, 200);
    let listed = read_all(&w.hub, (&user, &pass), &indicators, 1000).await;
    assert!(listed.iter().any(|o| o["name"] == "nested 3"));
    let jsonl = w.dir.path().join("src.jsonl");
    let mut sink = member_agent::Sinks::jsonl(Some(&jsonl)).unwrap();
    let report = w.agents[0].1.sync(false, &mut sink).await.unwrap();
    assert_eq!(report.rejected, 0);
}

/// What other-bank can observe of positions after src-bank publishes two
/// visible items with `hidden` items for aud-bank only in between.
struct PositionView {
    local_numbers: Vec<u64>,
    sink_numbers: Vec<u64>,
    hub_cursor_len: usize,
    publish_sequences: Vec<u64>,
    next_token_len: usize,
    next_is_a_number: bool,
    titles_by_page: Vec<String>,
}

async fn position_view(hidden: usize) -> PositionView {
    let w = TlpWorld::start().await;
    let src = w.agent("src-bank");
    let mut publish_sequences = Vec::new();
    let first = publish(src, item("first-visible", "green", &[]))
        .await
        .unwrap();
    for n in 0..hidden {
        publish(
            src,
            item(&format!("hidden-{n}"), "amber+strict", &["org:aud-bank"]),
        )
        .await
        .unwrap();
    }
    let second = publish(src, item("second-visible", "green", &[]))
        .await
        .unwrap();
    publish_sequences.extend([u64::from(first.duplicate), u64::from(second.duplicate)]);

    // gRPC: what the agent holds and hands its sinks.
    let other = w.agent("other-bank");
    let jsonl = w.dir.path().join("other.jsonl");
    let mut sink = member_agent::Sinks::jsonl(Some(&jsonl)).unwrap();
    let report = other.sync(false, &mut sink).await.unwrap();
    assert_eq!(report.new, 2);
    let mut local_numbers: Vec<u64> = other
        .store
        .lock()
        .unwrap()
        .list(100)
        .unwrap()
        .iter()
        .map(|i| i.sequence)
        .collect();
    local_numbers.sort();
    let sink_numbers = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["sequence"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let hub_cursor_len = other.store.lock().unwrap().hub_cursor().unwrap().len();
    // The raw stream: no numeric position anywhere.
    let channel = other.channel().await.unwrap();
    let mut stream = pb::subscriber_client::SubscriberClient::new(channel)
        .subscribe(pb::SubscribeRequest {
            after_sequence: 0,
            follow: false,
            filter: None,
            include_expired: false,
            cursor: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(m) = stream.message().await.unwrap() {
        match m.event {
            Some(pb::subscribe_response::Event::Item(d)) => {
                assert_eq!(d.sequence, 0);
                assert_eq!(d.cursor.len(), hub_cursor_len);
            }
            Some(pb::subscribe_response::Event::CaughtUp(c)) => {
                assert_eq!(c.head_sequence, 0);
                assert_eq!(c.cursor.len(), hub_cursor_len);
            }
            _ => {}
        }
    }

    // TAXII: page by one.
    let (indicators, _) = collection_ids(&w.hub);
    let (user, pass) = w.hub.add_api_key("other-bank", None).await;
    let page = |next: Option<String>| {
        let mut path =
            format!("{ROOT}/collections/{indicators}/objects/?limit=1&match[type]=indicator");
        if let Some(n) = next {
            path.push_str(&format!("&next={n}"));
        }
        path
    };
    let r = w.hub.taxii("GET", &page(None), Some((&user, &pass))).await;
    let body = r.json();
    let next = body["next"].as_str().unwrap().to_owned();
    let mut titles_by_page = vec![body["objects"][0]["name"].as_str().unwrap().to_owned()];
    let r = w
        .hub
        .taxii("GET", &page(Some(next.clone())), Some((&user, &pass)))
        .await;
    titles_by_page.push(r.json()["objects"][0]["name"].as_str().unwrap().to_owned());
    w.hub.stop().await;
    PositionView {
        local_numbers,
        sink_numbers,
        hub_cursor_len,
        publish_sequences,
        next_token_len: next.len(),
        next_is_a_number: next.parse::<u64>().is_ok(),
        titles_by_page,
    }
}

#[tokio::test]
async fn a_members_view_of_positions_is_the_same_whether_or_not_hidden_items_came_between() {
    // Issue 15: hub sequences showed as gaps in `member-agent list` and in
    // TAXII `next` tokens, so a member could count the items it was not sent.
    let without = position_view(0).await;
    let with = position_view(7).await;
    for view in [&without, &with] {
        assert_eq!(view.local_numbers, vec![1, 2]);
        assert_eq!(view.sink_numbers, vec![1, 2]);
        assert_eq!(view.publish_sequences, vec![0, 0]);
        assert!(!view.next_is_a_number);
        assert_eq!(
            view.titles_by_page,
            vec!["first-visible".to_owned(), "second-visible".to_owned()]
        );
    }
    assert_eq!(without.hub_cursor_len, with.hub_cursor_len);
    assert_eq!(without.next_token_len, with.next_token_len);
}

#[tokio::test]
async fn a_forged_or_foreign_next_token_is_refused_and_numbers_are_not_tokens() {
    let w = TlpWorld::start().await;
    let src = w.agent("src-bank");
    for n in 0..3 {
        publish(src, item(&format!("paged-{n}"), "green", &[]))
            .await
            .unwrap();
    }
    let (indicators, _) = collection_ids(&w.hub);
    let (user, pass) = w.hub.add_api_key("other-bank", None).await;
    let (aud_user, aud_pass) = w.hub.add_api_key("aud-bank", None).await;
    let objects = format!("{ROOT}/collections/{indicators}/objects/?limit=1");
    let r = w.hub.taxii("GET", &objects, Some((&user, &pass))).await;
    let next = r.json()["next"].as_str().unwrap().to_owned();
    // The owner pages on; another member's key cannot use the token; old
    // numeric tokens and altered ones are refused.
    let ok = w
        .hub
        .taxii(
            "GET",
            &format!("{objects}&next={next}"),
            Some((&user, &pass)),
        )
        .await;
    assert_eq!(ok.status, 200);
    let mut altered = next.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for (token, key) in [
        (next.as_str(), (aud_user.as_str(), aud_pass.as_str())),
        ("1", (user.as_str(), pass.as_str())),
        (altered.as_str(), (user.as_str(), pass.as_str())),
    ] {
        let r = w
            .hub
            .taxii("GET", &format!("{objects}&next={token}"), Some(key))
            .await;
        assert_eq!(r.status, 400, "{token}");
        assert!(String::from_utf8_lossy(&r.body).contains("next is not a token"));
    }
    // gRPC: a numeric position is refused; a cursor that is not ours says
    // where to resume from.
    let channel = w.agent("other-bank").channel().await.unwrap();
    let mut client = pb::subscriber_client::SubscriberClient::new(channel);
    let request = |after_sequence, cursor| pb::SubscribeRequest {
        after_sequence,
        follow: false,
        filter: None,
        include_expired: false,
        cursor,
    };
    let err = client.subscribe(request(2, Vec::new())).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = client
        .subscribe(request(0, vec![1u8; 37]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        err.metadata()
            .get("x-isac-resume-cursor")
            .map(|v| v.to_str().unwrap()),
        Some("")
    );
    w.hub.stop().await;
}

/// The log lines written on this thread while it lives (the in-process
/// hub's tasks run on the test's single-threaded runtime).
#[derive(Clone, Default)]
struct LogLines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogLines {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogLines {
    type Writer = LogLines;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The request id of an error answer: the same in the header and body.
fn request_id_of(r: &HttpResponse) -> String {
    let header = r
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no X-Request-Id on {}", r.status))
        .to_owned();
    let e = r.json();
    assert_eq!(e["details"]["request_id"], header.as_str(), "{e}");
    assert_eq!(e["error_id"], header.as_str(), "{e}");
    assert_eq!(e["http_status"], r.status.to_string());
    header
}

fn assert_no_store_text(r: &HttpResponse) {
    let body = String::from_utf8_lossy(&r.body).to_ascii_lowercase();
    for leak in [
        "sqlite",
        "no such table",
        "store is closed",
        "disk full:",
        "i/o error:",
        ".db",
    ] {
        assert!(!body.contains(leak), "{leak:?} in {body}");
    }
}

#[tokio::test]
async fn a_closed_store_answers_503_with_a_request_id_never_401_and_no_store_text() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    let state = dir.path().join("agent");
    drop(enrolled_agent(&hub, "err-bank", &state).await);
    let (user, pass) = hub.add_api_key_with("err-bank", None, true).await;
    let (indicators, _) = collection_ids(&hub);
    let objects = format!("{ROOT}/collections/{indicators}/objects/");
    // The agent's own client certificate, as a SIEM on its host would use.
    let cert =
        openssl::x509::X509::from_pem(&std::fs::read(state.join("tls.crt")).unwrap()).unwrap();
    let key =
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(state.join("tls.key")).unwrap())
            .unwrap();
    let by_cert = || async {
        let request = format!(
            "GET {objects} HTTP/1.1\r\nHost: localhost\r\nAccept: application/taxii+json;version=2.1\r\nConnection: close\r\n\r\n"
        );
        https_exchange(
            hub.taxii_addr,
            &hub.ca_cert(),
            Some((&cert, &key)),
            request.as_bytes(),
        )
        .await
    };
    assert_eq!(by_cert().await.status, 200);

    let r = hub.taxii("GET", &objects, Some((&user, &pass))).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("x-request-id").is_some(),
        "every answer names its request"
    );
    let r = hub.taxii("GET", &objects, Some((&user, "wrong"))).await;
    assert_eq!(r.status, 401, "bad credentials stay 401");

    hub.close_hub_store().await;
    let body = serde_json::to_vec(&serde_json::json!({ "objects": [indicator_object(
        &format!("indicator--{}", uuid::Uuid::new_v4()),
        "2026-11-20T10:00:00.000Z",
        "while closed",
        None,
    )]}))
    .unwrap();
    // The API key cannot be checked: unavailable, not "unauthenticated",
    // for reads, writes, and a password that would be wrong anyway.
    let mut ids = BTreeSet::new();
    for (method, password, payload) in [
        ("GET", pass.as_str(), None),
        (
            "POST",
            pass.as_str(),
            Some(("application/taxii+json;version=2.1", &body[..])),
        ),
        ("GET", "wrong", None),
    ] {
        let r = hub
            .taxii_with_body(method, &objects, Some((&user, password)), payload)
            .await;
        assert_eq!(
            r.status,
            503,
            "{method}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(r.header("retry-after").is_some());
        assert!(r.header("www-authenticate").is_none());
        assert_no_store_text(&r);
        assert!(ids.insert(request_id_of(&r)), "one id per request");
    }
    // Nor can the client certificate be checked.
    let r = by_cert().await;
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert_no_store_text(&r);
    assert!(ids.insert(request_id_of(&r)));
    // gRPC says the same through the same mapping: UNAVAILABLE, a plain
    // message ending with the request id, and the id in metadata.
    let channel = raw_channel(&hub, Some((&cert, &key))).await.unwrap();
    let e = pb::lookup_client::LookupClient::new(channel)
        .get_statement(pb::GetStatementRequest {
            id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    let id = e
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id")
        .to_owned();
    assert!(
        e.message().ends_with(&format!("(request id {id})")),
        "{}",
        e.message()
    );
    assert!(!e.message().contains("store is closed"), "{}", e.message());
    assert!(ids.insert(id));
    hub.stop().await;
}

#[tokio::test]
async fn a_database_error_answers_500_naming_a_request_id_the_log_also_names() {
    let logs = LogLines::default();
    let _capture = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path()).await;
    hub.add_member("err-bank").await;
    let (user, pass) = hub.add_api_key_with("err-bank", None, true).await;
    let key = Some((user.as_str(), pass.as_str()));
    let (indicators, _) = collection_ids(&hub);
    let objects = format!("{ROOT}/collections/{indicators}/objects/");
    let post = |name: &str| {
        serde_json::to_vec(&serde_json::json!({ "objects": [indicator_object(
            &format!("indicator--{}", uuid::Uuid::new_v4()),
            "2026-11-20T10:00:00.000Z",
            name,
            None,
        )]}))
        .unwrap()
    };
    let media = "application/taxii+json;version=2.1";
    let r = hub
        .taxii_with_body("POST", &objects, key, Some((media, &post("stored"))))
        .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["success_count"], 1);

    // Break the database under the running hub, as a botched migration or
    // a damaged file would: reads and writes of these tables now fail in
    // SQLite, while API keys still check.
    let conn = rusqlite::Connection::open(hub.data_dir().join("hub.db")).unwrap();
    conn.execute_batch(
        "ALTER TABLE statements RENAME TO statements_gone;
         ALTER TABLE taxii_writes RENAME TO taxii_writes_gone;",
    )
    .unwrap();
    drop(conn);

    let r = hub.taxii("GET", &objects, key).await;
    assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
    assert_no_store_text(&r);
    let read_id = request_id_of(&r);
    // A write never echoes the store's text (it was a 400 quoting it).
    let r = hub
        .taxii_with_body("POST", &objects, key, Some((media, &post("refused"))))
        .await;
    assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
    assert_no_store_text(&r);
    let write_id = request_id_of(&r);
    assert_ne!(read_id, write_id);

    // The operator finds the detail under the id the client was shown.
    let log = logs.text();
    for id in [&read_id, &write_id] {
        let line = log
            .lines()
            .find(|l| l.contains(id.as_str()) && l.contains("no such table"))
            .unwrap_or_else(|| panic!("no log line names {id} with the detail:\n{log}"));
        assert!(line.contains("ERROR"), "{line}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn taxii_writes_with_personal_data_or_benign_observables_are_refused_before_signing() {
    let w = TlpWorld::start().await;
    let (indicators, _) = collection_ids(&w.hub);
    let objects = format!("{ROOT}/collections/{indicators}/objects/");
    let (user, pass) = w.hub.add_api_key_with("src-bank", None, true).await;
    let key = (user.as_str(), pass.as_str());
    let green = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb";
    let before = w.hub.stored_statements();
    let post = |body: Value| {
        let bytes = serde_json::to_vec(&body).unwrap();
        let hub = &w.hub;
        let objects = objects.clone();
        async move {
            hub.taxii_with_body(
                "POST",
                &objects,
                Some(key),
                Some(("application/taxii+json;version=2.1", &bytes)),
            )
            .await
        }
    };
    let clean_id = format!("indicator--{}", uuid::Uuid::new_v4());
    let leaky_id = format!("indicator--{}", uuid::Uuid::new_v4());
    let mut leaky = indicator_object(&leaky_id, "2026-11-20T10:00:00.000Z", "leaky", Some(green));
    leaky["description"] =
        "ask soc-lead@src-bank.example, token ghp_0123456789abcdefghij0123456789abcdef".into();
    let r = post(serde_json::json!({ "objects": [
        indicator_object(&clean_id, "2026-11-20T10:00:00.000Z", "clean", Some(green)),
        leaky,
    ]}))
    .await;
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 422, "{body}");
    assert!(body.contains("nothing stored"), "{body}");
    assert!(
        body.contains(&format!("{leaky_id}: description at byte 4: email")),
        "{body}"
    );
    assert!(body.contains("secret (GitHub token)"), "{body}");
    assert!(
        !body.contains("soc-lead@") && !body.contains("ghp_0123"),
        "{body}"
    );
    assert_eq!(w.hub.stored_statements(), before, "the clean one waits too");

    let resolver_id = format!("indicator--{}", uuid::Uuid::new_v4());
    let mut resolver =
        indicator_object(&resolver_id, "2026-11-20T10:00:00.000Z", "C2", Some(green));
    resolver["pattern"] = "[ipv4-addr:value = '8.8.8.8']".into();
    let r = post(serde_json::json!({ "objects": [resolver] })).await;
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 422, "{body}");
    assert!(
        body.contains("on the benign list public-dns-resolvers"),
        "{body}"
    );
    assert_eq!(w.hub.stored_statements(), before);

    let r = post(serde_json::json!({ "objects": [
        indicator_object(&clean_id, "2026-11-20T10:00:00.000Z", "clean", Some(green)),
    ]}))
    .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(w.hub.stored_statements(), before + 1);
}
