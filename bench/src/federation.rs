//! Federation figures (issue 20): two real hub processes peered over mTLS
//! (`hub member add hub-b --role peer` at hub-a, `hub peer add hub-a` at
//! hub-b, what the CLI runs), a member publishing GREEN items at hub-a.
//!
//! - items forwarded per second: a backlog published in batches at hub-a,
//!   timed from the first publish until hub-b's store holds all of it
//!   (`peer_links.received`, read from hub-b's database);
//! - the hop's latency: one item at a time, from the publish call at hub-a
//!   to the row stored at hub-b (polled every millisecond), p50 and p99.

use std::path::Path;
use std::time::{Duration, Instant};

use isac_core::audience::AudienceOpening;
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::Agent;

pub struct Figures {
    pub forward_per_s: f64,
    pub hop_p50_ms: f64,
    pub hop_p99_ms: f64,
    pub items: usize,
    pub samples: usize,
}

fn signed(author: &Agent, n: usize, tag: &str) -> Vec<(isac_core::Envelope, Vec<AudienceOpening>)> {
    let created = isac_core::time::format_rfc3339(hub::app::Clock::system().now());
    (0..n)
        .map(|i| {
            let prepared = IndicatorDraft {
                domain: Some(format!("fed-{tag}-{i}.example")),
                tlp: Some("green".into()),
                title: Some("federation bench".into()),
                ..Default::default()
            }
            .into_prepared(author.org_id(), created.clone())
            .expect("draft");
            let envelope = author
                .loaded
                .signing_key
                .sign_statement(&prepared.statement)
                .expect("sign");
            (envelope, prepared.openings)
        })
        .collect()
}

async fn received(store: &hub::store::Store) -> u64 {
    store
        .peer_link("hub-a")
        .await
        .ok()
        .flatten()
        .map(|l| l.received)
        .unwrap_or(0)
}

/// Polls hub-b's store until it holds `want` items from hub-a.
async fn wait_received(store: &hub::store::Store, want: u64, poll: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let got = received(store).await;
        if got >= want {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(format!("hub-b holds {got} of {want} items after 300 s"));
        }
        tokio::time::sleep(poll).await;
    }
}

async fn publish(
    author: &Agent,
    items: Vec<(isac_core::Envelope, Vec<AudienceOpening>)>,
) -> Result<(), String> {
    for r in member_agent::publish::publish_batch(author, items)
        .await
        .map_err(|e| e.to_string())?
    {
        r?;
    }
    Ok(())
}

pub async fn measure(
    dir: &Path,
    items: usize,
    samples: usize,
    batch: usize,
) -> Result<Figures, String> {
    let data_a = dir.join("fed-hub-a");
    let data_b = dir.join("fed-hub-b");
    for (data, id) in [(&data_a, "hub-a"), (&data_b, "hub-b")] {
        std::fs::create_dir_all(data).map_err(|e| e.to_string())?;
        std::fs::write(data.join("hub.toml"), format!("hub_id = \"{id}\"\n"))
            .map_err(|e| e.to_string())?;
    }
    let (a, _) = super::start_hub(&data_a, "127.0.0.1:0", None);
    let (b, _) = super::start_hub(&data_b, "127.0.0.1:0", None);
    let config_a = hub::config::HubConfig::load(&data_a, |_| None).map_err(|e| e.to_string())?;
    let config_b = hub::config::HubConfig::load(&data_b, |_| None).map_err(|e| e.to_string())?;
    let (material_a, _) = hub::prepare(&config_a).map_err(|e| e.to_string())?;
    let store_a = hub::open_configured_store(&config_a)
        .await
        .map_err(|e| e.to_string())?;
    let store_b = hub::open_configured_store(&config_b)
        .await
        .map_err(|e| e.to_string())?;
    let fp = material_a.ca_fingerprint.clone();
    let author = super::enroll(&config_a, &store_a, &fp, &a.url(), "fed-author", dir).await;
    let token = hub::grpc::admin::AdminContext::local(
        &store_a,
        &config_a,
        &fp,
        "local:bench".into(),
        hub::app::Clock::system(),
    )
    .add_member(pb::AddMemberRequest {
        org_id: "hub-b".into(),
        name: String::new(),
        role: "peer".into(),
        token_ttl_secs: 600,
    })
    .await
    .map_err(|e| format!("add peer member: {e:?}"))?
    .token;
    hub::grpc::peer_enroll::add_peer(
        &config_b,
        &store_b,
        "hub-a",
        &a.url(),
        &token,
        "bench",
        hub::app::Clock::system().now(),
    )
    .await
    .map_err(|e| format!("peer add: {e}"))?;

    // The link is up once a first item crossed.
    publish(&author, signed(&author, 1, "warm")).await?;
    wait_received(&store_b, 1, Duration::from_millis(5)).await?;

    // Throughput: a backlog in batches, timed to the last row at hub-b.
    let backlog = signed(&author, items, "bulk");
    let base = received(&store_b).await;
    let started = Instant::now();
    for chunk in backlog.chunks(batch.max(1)) {
        publish(&author, chunk.to_vec()).await?;
    }
    wait_received(&store_b, base + items as u64, Duration::from_millis(2)).await?;
    let forward_per_s = items as f64 / started.elapsed().as_secs_f64();

    // The hop: one item at a time, publish call to row at hub-b.
    let mut hops = Vec::with_capacity(samples);
    for one in signed(&author, samples, "hop") {
        let base = received(&store_b).await;
        let started = Instant::now();
        publish(&author, vec![one]).await?;
        wait_received(&store_b, base + 1, Duration::from_millis(1)).await?;
        hops.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    hops.sort_by(f64::total_cmp);
    let at = |q: f64| hops[((hops.len() as f64 * q).ceil() as usize).clamp(1, hops.len()) - 1];
    let figures = Figures {
        forward_per_s,
        hop_p50_ms: at(0.50),
        hop_p99_ms: at(0.99),
        items,
        samples,
    };
    for store in [store_a, store_b] {
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }
    super::stop_hub(b);
    super::stop_hub(a);
    Ok(figures)
}
