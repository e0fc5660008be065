//! The hub's TAXII 2.1 server with third-party clients: OASIS's
//! `taxii2-client` pages through thousands of objects (by `next` and by
//! `added_after`), every object passes `stix2-validator`, and a
//! write-enabled key's `add_objects` completes. Both are installed by
//! `scripts/install-deps`.

use std::process::Command;

use isac_e2e::*;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::publish_batch;

const ITEMS: usize = 2_500;

fn draft(i: usize) -> IndicatorDraft {
    // A mix of observables so every STIX pattern kind is validated.
    let mut d = IndicatorDraft {
        tlp: Some("green".into()),
        title: Some(format!("interop item {i}")),
        severity: Some("high".into()),
        ..Default::default()
    };
    match i % 5 {
        0 => d.purl = Some(format!("pkg:npm/interop-{i}@1.0.{i}")),
        1 => d.sha256 = Some(format!("{:064x}", i + 1)),
        2 => d.domain = Some(format!("c2-{i}.example.org")),
        3 => d.url = Some(format!("https://evil-{i}.example.org/payload")),
        _ => {
            d.vuln_id = Some(format!("CVE-2026-{:05}", 10_000 + i));
            d.affected_purls = Some(vec![format!("pkg:pypi/vulnerable-{i}")]);
        }
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taxii2_client_pages_through_thousands_of_valid_objects() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let src = enrolled_agent(&hub, "src-bank", &dir.path().join("src")).await;
    let _other = enrolled_agent(&hub, "other-bank", &dir.path().join("other")).await;
    let reader = enrolled_agent(&hub, "reader-bank", &dir.path().join("reader")).await;
    drop(reader);

    let created = isac_core::time::format_rfc3339(hub::app::Clock::system().now());
    let mut items = Vec::new();
    for i in 0..ITEMS {
        let prepared = draft(i)
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
        items.push((envelope, prepared.openings));
    }
    for chunk in items.chunks(1000) {
        for r in publish_batch(&src, chunk.to_vec()).await.unwrap() {
            r.unwrap();
        }
    }
    // Not for the reader: must not show, count or page.
    let hidden = IndicatorDraft {
        purl: Some("pkg:npm/hidden@1.0.0".into()),
        tlp: Some("amber".into()),
        audience: Some(vec!["org:other-bank".into()]),
        title: Some("hidden".into()),
        ..Default::default()
    };
    member_agent::publish::publish(&src, hidden).await.unwrap();

    let (user, password) = hub.add_api_key("reader-bank", None).await;
    let (write_user, write_password) = hub.add_api_key_with("src-bank", None, true).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/taxii_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(hub.taxii_url())
        .arg(&user)
        .arg(&password)
        .arg(hub.data_dir().join("ca.crt"))
        .arg(ITEMS.to_string())
        .arg(&write_user)
        .arg(&write_password)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "taxii2-client interop failed (missing packages? run scripts/install-deps):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(figures["indicators"], ITEMS);
    // Vulnerability items add a vulnerability and a relationship each.
    assert_eq!(figures["objects"], ITEMS + 2 * (ITEMS / 5));
    println!("taxii2-client: {figures}");
}
