//! The client side of federation (issue 20): for every hub this hub
//! follows (`hub peer add`), a task that connects with the credentials in
//! `DATA_DIR/peers/HUB/`, pins the peer's signed key directory (the agent's
//! rollback, freeze and succession rules), follows its `Peering` stream from
//! the stored cursor, checks every item (`app::federation::received`:
//! provenance, the author's signature against the pinned directory, the
//! crossing rules again) and stores the verified ones with the cursor in one
//! transaction. Reconnects with backoff; picks up links added, suspended or
//! removed by `hub peer` on a running hub within a second.

use std::collections::HashMap;
use std::time::Duration;

use isac_client::Credentials;
use isac_core::directory::KeyDirectory;
use isac_core::membership::MemberStatus;
use isac_core::VerifyingKey;
use isac_proto::v1 as pb;
use tokio::task::JoinHandle;

use crate::app::fed_groups::{agreed, link_groups, received_any};
use crate::app::federation::check_peer_directory;
use crate::app::HubState;
use crate::grpc::fed_groups::{refresh_manifest, MANIFEST_REFRESH};
use crate::grpc::peer_enroll::peer_dir;
use crate::store::FederatedItem;
use isac_core::fed_groups::GroupReceiveError;

/// How often the set of followed peers is re-read.
const RECONCILE: Duration = Duration::from_millis(500);
/// Items stored per transaction at most.
const BATCH: usize = 256;
/// How often a live session re-fetches and re-pins the peer's directory.
/// Without it a quiet link kept the copy pinned at session start until it
/// expired, and this hub's agents then refused every item from that
/// origin until something else forced a refresh.
const DIRECTORY_REFRESH: Duration = Duration::from_secs(300);
/// Largest cursor taken from a peer (this hub's own sealed cursors are
/// under 100 bytes). A longer one ends the session: nothing from it is
/// stored and the stored cursor stays.
pub const MAX_PEER_CURSOR_BYTES: usize = 1024;

fn bounded_cursor(cursor: Vec<u8>) -> Result<Vec<u8>, String> {
    if cursor.len() > MAX_PEER_CURSOR_BYTES {
        return Err(format!(
            "the peer sent a cursor of {} bytes (at most {MAX_PEER_CURSOR_BYTES}); nothing from this session is stored",
            cursor.len()
        ));
    }
    Ok(cursor)
}

/// Runs until the hub stops: one follower task per active link.
pub async fn run_followers(state: HubState) {
    let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut shutdown = state.shutdown.clone();
    loop {
        match state.store.peer_links().await {
            Ok(links) => {
                let active: Vec<String> = links
                    .iter()
                    .filter(|l| l.status == MemberStatus::Active)
                    .map(|l| l.hub_id.clone())
                    .collect();
                running.retain(|hub, task| {
                    let keep = active.contains(hub) && !task.is_finished();
                    if !keep {
                        task.abort();
                        tracing::info!(peer = %hub, "stopped following");
                    }
                    keep
                });
                for hub in active {
                    if !running.contains_key(&hub) {
                        tracing::info!(peer = %hub, "following");
                        running.insert(hub.clone(), tokio::spawn(follow(state.clone(), hub)));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read peer links"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RECONCILE) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    for (_, task) in running {
        task.abort();
    }
}

/// Follows one peer forever, reconnecting with backoff (0.5 s doubling to
/// 30 s; back to the start after a session that got anywhere).
async fn follow(state: HubState, hub: String) {
    let mut wait = Duration::from_millis(500);
    loop {
        match session(&state, &hub).await {
            Ok(()) => wait = Duration::from_millis(500),
            Err(e) => {
                tracing::warn!(peer = %hub, error = %e, retry_in_ms = wait.as_millis() as u64, "peer stream ended");
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

/// Fetches, checks and pins the peer's directory; returns it.
async fn refresh_directory(
    state: &HubState,
    hub: &str,
    client: &mut pb::peering_client::PeeringClient<tonic::transport::Channel>,
    pinned: &VerifyingKey,
    held: Option<&KeyDirectory>,
) -> Result<KeyDirectory, String> {
    let got = client
        .get_peer_directory(pb::GetPeerDirectoryRequest {})
        .await
        .map_err(|s| format!("GetPeerDirectory: {}", s.message()))?
        .into_inner();
    if got.hub_id != hub {
        return Err(format!(
            "the peer now calls itself `{}`, not `{hub}`",
            got.hub_id
        ));
    }
    let envelope: isac_core::Envelope = got
        .signed_directory
        .ok_or("the peer sent no directory")?
        .into();
    let directory = check_peer_directory(&envelope, pinned, held, state.now())
        .map_err(|e| format!("the peer's key directory is refused: {e}"))?;
    if held.is_none_or(|h| directory.version > h.version) {
        state
            .store
            .pin_peer_directory(hub, directory.version, envelope.to_json())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(directory)
}

async fn session(state: &HubState, hub: &str) -> Result<(), String> {
    let dir = peer_dir(&state.config.data_dir, hub);
    let creds = Credentials::load(&dir).map_err(|e| e.to_string())?;
    let pinned = std::fs::read(dir.join("hub-directory.pub"))
        .map_err(|e| format!("{}: {e}", dir.join("hub-directory.pub").display()))
        .and_then(|der| VerifyingKey::from_spki_der(&der).map_err(|e| e.to_string()))?;
    let channel = creds
        .connector()
        .map_err(|e| e.to_string())?
        .connect(&creds.identity.hub_url)
        .await
        .map_err(|e| e.to_string())?;
    let mut client = pb::peering_client::PeeringClient::new(channel)
        .max_decoding_message_size(state.config.max_message_bytes);
    let link = state
        .store
        .peer_link(hub)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no longer followed")?;
    // What was pinned before holds across restarts: no rollback.
    let held = link
        .directory
        .as_deref()
        .and_then(|json| isac_core::Envelope::from_json(json).ok())
        .and_then(|env| {
            isac_core::directory::verify_directory(&env, &pinned, None, i64::MIN / 2).ok()
        });
    let mut directory = refresh_directory(state, hub, &mut client, &pinned, held.as_ref()).await?;
    let mut stream = client
        .follow(pb::FollowRequest {
            cursor: link.cursor.clone(),
        })
        .await
        .map_err(|s| format!("Follow: {}", s.message()))?
        .into_inner();
    let local = state.config.hub_id.clone();
    let mut batch: Vec<FederatedItem> = Vec::new();
    let mut cursor = link.cursor;
    let mut repin = tokio::time::interval(DIRECTORY_REFRESH);
    repin.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    repin.tick().await; // the first tick is immediate: just fetched
                        // The peer's group manifest (cross-hub groups): now, then every
                        // MANIFEST_REFRESH; the first tick fetches it.
    let mut remanifest = tokio::time::interval(MANIFEST_REFRESH);
    remanifest.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // `Streaming::message` keeps its state in the stream, so losing
        // the race to the timer drops nothing.
        let event = tokio::select! {
            event = stream.message() => {
                event.map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            }
            _ = repin.tick() => {
                directory =
                    refresh_directory(state, hub, &mut client, &pinned, Some(&directory)).await?;
                continue;
            }
            _ = remanifest.tick() => {
                refresh_manifest(state, hub, &mut client, &pinned).await;
                continue;
            }
        };
        let Some(pb::PeerEvent { event }) = event else {
            return Ok(());
        };
        let flush = match event {
            Some(pb::peer_event::Event::Item(pb::PeerItem {
                envelope,
                provenance,
                cursor: next,
                openings,
            })) => {
                let next = bounded_cursor(next)?;
                let envelope: isac_core::Envelope = envelope.unwrap_or_default().into();
                let lifetimes = &state.config.default_lifetime;
                // AMBER in a cross-hub group: the openings, bounded, and
                // this hub's view of the link's groups, read now.
                let (openings, groups) = if openings.is_empty() {
                    (Ok(Vec::new()), Default::default())
                } else {
                    (
                        crate::grpc::fed_groups::crossing_openings(openings),
                        agreed(
                            &link_groups(&state.store, &local, hub)
                                .await
                                .map_err(|e| e.to_string())?,
                        ),
                    )
                };
                let receive = |directory: &KeyDirectory| match &openings {
                    Ok(openings) => received_any(
                        &envelope,
                        &provenance,
                        openings,
                        directory,
                        hub,
                        &local,
                        state.now(),
                        lifetimes,
                        &groups,
                    ),
                    Err(e) => Err(e.clone()),
                };
                let mut got = receive(&directory);
                if matches!(
                    got,
                    Err(GroupReceiveError::Receive(
                        isac_core::federation::ReceiveError::Verify { .. }
                    ))
                ) {
                    // A key newer than the pinned directory: refresh once.
                    directory =
                        refresh_directory(state, hub, &mut client, &pinned, Some(&directory))
                            .await?;
                    got = receive(&directory);
                }
                match got {
                    // A statement about this hub's own item (a sighting
                    // back to its origin) only if the peer could have it.
                    Ok(item) => {
                        match crate::app::fed_sightings::check_target_crossed(state, &item, hub)
                            .await
                            .map_err(|e| e.to_string())?
                        {
                            Ok(()) => batch.push(item),
                            Err(why) => {
                                tracing::warn!(peer = %hub, id = %item.id, error = %why, "refused an item from a peer; nothing stored");
                            }
                        }
                    }
                    // Refused items are passed (the cursor moves on): the
                    // verdict depends only on these bytes and the pinned
                    // directory, just refreshed, so asking again cannot
                    // change it, and holding the cursor would let one bad
                    // item stop every later one.
                    Err(e) => {
                        tracing::warn!(peer = %hub, error = %e, "refused an item from a peer; nothing stored");
                    }
                }
                cursor = next;
                batch.len() >= BATCH
            }
            Some(pb::peer_event::Event::CaughtUp(pb::PeerCaughtUp { cursor: next })) => {
                cursor = bounded_cursor(next)?;
                true
            }
            None => false,
        };
        if flush {
            let items = std::mem::take(&mut batch);
            let n = state
                .store
                .receive_from_peer(hub, items, cursor.clone())
                .await
                .map_err(|e| e.to_string())?;
            if n > 0 {
                tracing::info!(peer = %hub, stored = n, "items received from peer");
            }
        }
    }
}
