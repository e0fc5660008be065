//! Standard formats in and out: exports (STIX 2.1, OSV, MISP) and imports
//! (STIX 2.1 bundles), against a real hub, with real agents.

use isac_core::time::format_rfc3339;
use isac_e2e::*;
use member_agent::draft::IndicatorDraft;
use member_agent::export::{export, Format};
use member_agent::publish::publish_prepared;
use member_agent::sink::JsonlSink;

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn stix_export_says_when_the_item_was_received_not_when_it_was_made() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let mut bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let created = format_rfc3339(member_agent::now());
    let prepared = IndicatorDraft {
        purl: Some("pkg:npm/late-news@1.0.0".into()),
        tlp: Some("green".into()),
        title: Some("sent a while after it was signed".into()),
        ..Default::default()
    }
    .into_prepared("alice-bank", created.clone())
    .unwrap();
    // Signed now, sent later: the hub receives it in a later second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    publish_prepared(&alice, &prepared).await.unwrap();
    let jsonl = dir.path().join("bob.jsonl");
    let mut sink = JsonlSink::open(Some(&jsonl)).unwrap();
    sink.stix_dir = Some(dir.path().join("stix"));
    bob.sync(false, &mut sink).await.unwrap();
    let received_at = lines(&jsonl)[0]["received_at"].as_str().unwrap().to_owned();
    assert_ne!(received_at, created);

    let (text, n) = export(&bob, Format::Stix, false).unwrap();
    assert_eq!(n, 1);
    let bundle: serde_json::Value = serde_json::from_str(&text).unwrap();
    let indicator = bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "indicator")
        .unwrap()
        .clone();
    assert_eq!(
        indicator["x_isac_received_at"],
        isac_core::stix::stix_timestamp(&received_at),
        "{indicator}"
    );
    assert_eq!(
        indicator["created"],
        isac_core::stix::stix_timestamp(&created)
    );
    // The export says what the STIX sink said when the item arrived.
    let file = std::fs::read_dir(dir.path().join("stix"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let from_sink: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let sink_indicator = from_sink["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "indicator")
        .unwrap();
    assert_eq!(&indicator, sink_indicator);
    hub.stop().await;
}
