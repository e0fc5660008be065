//! Sightings and retractions reach every subscriber with one database
//! read of their target, not one per subscriber stream: the streams share
//! the row from the recent window and its target, read once
//! (`Store::target_of_shared`, counted by `Store::target_reads`).

use std::time::Duration;

use isac_e2e::{enrolled_agent, TestHub};
use isac_proto::v1 as pb;
use pb::subscribe_response::Event;

type Stream = tonic::Streaming<pb::SubscribeResponse>;

async fn open_streams(agent: &member_agent::Agent, n: usize) -> Vec<Stream> {
    let mut streams = Vec::new();
    for _ in 0..n {
        let mut s = pb::subscriber_client::SubscriberClient::new(agent.channel().await.unwrap())
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
        // The backlog, then CaughtUp: the stream is live.
        loop {
            match next_event(&mut s).await {
                Event::CaughtUp(_) => break,
                _ => continue,
            }
        }
        streams.push(s);
    }
    streams
}

async fn next_event(s: &mut Stream) -> Event {
    tokio::time::timeout(Duration::from_secs(60), s.message())
        .await
        .expect("an event within 60 s")
        .unwrap()
        .expect("the stream is open")
        .event
        .unwrap()
}

/// Waits until every stream delivers the next item (skipping directory
/// notices).
async fn each_receives_an_item(streams: &mut [Stream]) {
    for s in streams {
        loop {
            if let Event::Item(_) = next_event(s).await {
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sightings_and_retractions_read_their_target_once_whatever_the_number_of_streams() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let mut targets = Vec::new();
    for n in 0..2 {
        let draft = member_agent::draft::IndicatorDraft {
            tlp: Some("green".into()),
            title: Some(format!("sighted {n}")),
            severity: Some("high".into()),
            confidence: Some(80),
            purl: Some(format!("pkg:npm/sighted-{n}@1.0.0")),
            ..Default::default()
        };
        targets.push(
            member_agent::publish::publish(&alice, draft)
                .await
                .unwrap()
                .id,
        );
    }
    let mut sink = member_agent::Sinks::jsonl(None).unwrap();
    bob.sync(false, &mut sink).await.unwrap();
    alice.sync(false, &mut sink).await.unwrap();

    let mut per_event = Vec::new();
    for (round, streams) in [1usize, 12].into_iter().enumerate() {
        let target = &targets[round];
        let mut streams = open_streams(&bob, streams).await;
        let before = hub.hub_store().target_reads();
        member_agent::publish::sight(&bob, target, 2, false, None)
            .await
            .unwrap();
        each_receives_an_item(&mut streams).await;
        let after_sighting = hub.hub_store().target_reads();
        member_agent::publish::retract(&alice, target, "false positive")
            .await
            .unwrap();
        each_receives_an_item(&mut streams).await;
        let after_retraction = hub.hub_store().target_reads();
        per_event.push((
            streams.len(),
            after_sighting - before,
            after_retraction - after_sighting,
        ));
    }
    // One read per derived statement, with one stream or twelve.
    assert_eq!(
        per_event,
        [(1, 1, 1), (12, 1, 1)],
        "(streams, reads per sighting, reads per retraction)"
    );
    hub.stop().await;
}
