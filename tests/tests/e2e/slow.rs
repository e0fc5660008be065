//! A subscriber that stops reading must not grow the hub's memory or slow
//! anyone else. Real hub process; memory read from /proc.

use std::time::Duration;

use isac_e2e::{enroll_with_cli, eventually, HubProcess};
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::publish;
use member_agent::Sinks;
use member_agent::{Agent, StateDir};

const ITEMS: usize = 5000;
/// Each statement carries ~15 KiB, so an unbounded queue for the stalled
/// stream would hold ~75 MiB.
const DESCRIPTION_BYTES: usize = 15 * 1024;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Lines in a JSON Lines sink (0 before it exists).
fn lines(jsonl: &std::path::Path) -> usize {
    std::fs::read_to_string(jsonl)
        .unwrap_or_default()
        .lines()
        .count()
}

fn enroll(data: &std::path::Path, url: &str, org: &str, state: &std::path::Path) {
    enroll_with_cli(data, url, org, None, state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_keeps_hub_memory_bounded_and_others_keep_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    for org in ["alice-bank", "stalled-bank", "busy-bank"] {
        enroll(&data, &hub.url(), org, &dir.path().join(org));
    }
    let alice = Agent::open(&StateDir::new(dir.path().join("alice-bank"))).unwrap();
    let stalled = Agent::open(&StateDir::new(dir.path().join("stalled-bank"))).unwrap();

    // The stalled subscriber opens a live stream and never reads from it.
    let mut stream = pb::subscriber_client::SubscriberClient::new(stalled.channel().await.unwrap())
        .subscribe(pb::SubscribeRequest {
            after_sequence: 0,
            follow: true,
            filter: None,
            include_expired: false,
            cursor: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let _first = stream.message().await.unwrap(); // caught_up; then silence

    // A busy subscriber follows along.
    let busy_dir = dir.path().join("busy-bank");
    let busy_jsonl = dir.path().join("busy.jsonl");
    let busy = {
        let jsonl = busy_jsonl.clone();
        tokio::spawn(async move {
            let agent = Agent::open(&StateDir::new(busy_dir)).unwrap();
            let mut sink = Sinks::jsonl(Some(&jsonl)).unwrap();
            let _ = agent.sync(true, &mut sink).await;
        })
    };

    // Memory is measured from when the busy subscriber is live: it has the
    // first item.
    let pid = hub.child.id();
    let first = IndicatorDraft {
        purl: Some("pkg:npm/first@1.0.0".into()),
        tlp: Some("green".into()),
        title: Some("first".into()),
        ..Default::default()
    };
    publish(&alice, first).await.unwrap();
    eventually(
        "the busy subscriber's first item",
        Duration::from_secs(60),
        || lines(&busy_jsonl) >= 1,
    )
    .await;
    let before = rss_kib(pid);
    let mut peak = before;
    let description = "x".repeat(DESCRIPTION_BYTES);
    for i in 0..ITEMS {
        let d = IndicatorDraft {
            purl: Some(format!("pkg:npm/flood-{i}@1.0.0")),
            tlp: Some("green".into()),
            title: Some(format!("flood {i}")),
            description: Some(description.clone()),
            ..Default::default()
        };
        publish(&alice, d).await.unwrap();
        if i % 250 == 0 {
            peak = peak.max(rss_kib(pid));
        }
    }
    // The busy subscriber receives everything while the stalled one stalls.
    let mut received = 0;
    for _ in 0..1200 {
        received = lines(&busy_jsonl) - 1;
        if received >= ITEMS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_kib(pid));
    }
    let after = rss_kib(pid);
    peak = peak.max(after);
    eprintln!(
        "hub RSS: before {before} KiB, peak {peak} KiB, after {after} KiB; {ITEMS} items of ~{} KiB ({} MiB in all) with one stalled stream",
        DESCRIPTION_BYTES / 1024,
        ITEMS * DESCRIPTION_BYTES / (1024 * 1024)
    );
    assert_eq!(received, ITEMS, "the busy subscriber kept up");
    let growth_mib = peak.saturating_sub(before) / 1024;
    let flood_mib = (ITEMS * DESCRIPTION_BYTES / (1024 * 1024)) as u64;
    assert!(
        growth_mib < flood_mib / 2,
        "hub memory grew {growth_mib} MiB while {flood_mib} MiB flowed past a stalled reader"
    );
    drop(stream);
    busy.abort();
    hub.terminate();
}
