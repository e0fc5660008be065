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
use crate::app::federation::{check_peer_directory, received_relayed};
use crate::app::HubState;
use crate::grpc::fed_groups::{refresh_manifest, MANIFEST_REFRESH};
use crate::grpc::peer_enroll::peer_dir;
use crate::store::FederatedItem;
use isac_core::directory::FederatedOrigin;
use isac_core::fed_groups::GroupReceiveError;
use isac_core::fed_log::{check_origin_inclusion, OriginCheckpoint, OriginLogError};
use isac_core::federation::{may_accept_origin, Provenance, ReceiveError, Refusal};

/// How often the set of followed peers is re-read.
const RECONCILE: Duration = Duration::from_millis(500);
/// Items stored per transaction at most.
const BATCH: usize = 256;
/// How often a live session re-fetches and re-pins the peer's directory.
/// Without it a quiet link kept the copy pinned at session start until it
/// expired, and this hub's agents then refused every item from that
/// origin until something else forced a refresh.
const DIRECTORY_REFRESH: Duration = Duration::from_secs(300);
/// Fewest seconds between two fetches a peer's items can trigger (an item
/// that fails verification, a directory version announced but not
/// served): a hostile peer cannot make this hub fetch endlessly.
const REFETCH_EVERY: Duration = Duration::from_secs(10);

/// At most one refetch per `every`. Kept per peer (and per origin relayed
/// through it) across sessions, so reconnecting does not reset it.
#[derive(Debug, Default)]
struct RefetchGate {
    last: Option<std::time::Instant>,
}

impl RefetchGate {
    fn allow(&mut self, now: std::time::Instant, every: Duration) -> bool {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < every => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

/// A peer's refetch gates: its own directory, each origin's, and whether
/// it announced a directory version it then did not serve (from then on
/// its announcements are gated too).
#[derive(Debug, Default)]
struct Gates {
    peer: RefetchGate,
    origins: HashMap<String, RefetchGate>,
    lied: bool,
    /// The newest checkpoint of this peer's own log accepted with one of
    /// its items (`isac_core::fed_log`): later ones may not be older.
    /// Kept in memory across sessions, not across restarts.
    origin_log: Option<OriginCheckpoint>,
}

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
    let mut gates = Gates::default();
    loop {
        match session(&state, &hub, &mut gates).await {
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

async fn session(state: &HubState, hub: &str, gates: &mut Gates) -> Result<(), String> {
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
    state
        .store
        .pin_peer_directory_key(hub, pinned.spki_der().to_vec())
        .await
        .map_err(|e| e.to_string())?;
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
    let mut relay = Relay::new(state).await?;
    // The peer's directory version its events announce: one newer than the
    // one held is fetched before the next item is checked (once per
    // announced version), so a removal there holds here at once.
    let mut announced = directory.version;
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
                directory_version,
                origin_checkpoint,
                origin_inclusion_proof,
            })) => {
                let next = bounded_cursor(next)?;
                if directory_version > announced {
                    announced = directory_version;
                    if !gates.lied || gates.peer.allow(std::time::Instant::now(), REFETCH_EVERY) {
                        directory =
                            refresh_directory(state, hub, &mut client, &pinned, Some(&directory))
                                .await?;
                        if directory.version < directory_version {
                            tracing::warn!(peer = %hub, announced = directory_version, served = directory.version,
                                "the peer announced a directory version it does not serve; its announcements are rate-limited now");
                            gates.lied = true;
                        }
                    }
                }
                let envelope: isac_core::Envelope = envelope.unwrap_or_default().into();
                let lifetimes = &state.config.default_lifetime;
                relay.refresh_if_moved(state).await?;
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
                // An item whose origin is the sender, checked against the
                // sender's directory (and its groups for AMBER).
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
                let mut got = match relay
                    .check(
                        state,
                        hub,
                        &mut client,
                        &directory,
                        (&envelope, &provenance),
                        gates,
                    )
                    .await?
                {
                    Some(got) => got.map_err(GroupReceiveError::Receive),
                    None => receive(&directory).and_then(|item| {
                        relay
                            .still_allowed(item)
                            .map_err(GroupReceiveError::Receive)
                    }),
                };
                if relay.direct(&provenance) && unknown_key_any(&got) {
                    // A key newer than the pinned directory: refresh, at
                    // most once per REFETCH_EVERY (a peer sending items
                    // that never verify cannot make this hub fetch on).
                    // Sooner, the session ends unstored and resumes after
                    // the backoff, so no item is lost to the limit.
                    if !gates.peer.allow(std::time::Instant::now(), REFETCH_EVERY) {
                        return Err(rate_limited(hub));
                    }
                    directory =
                        refresh_directory(state, hub, &mut client, &pinned, Some(&directory))
                            .await?;
                    got = receive(&directory).and_then(|item| {
                        relay
                            .still_allowed(item)
                            .map_err(GroupReceiveError::Receive)
                    });
                }
                // An item from its origin: in the origin's log, by the
                // checkpoint and proof it came with (relayed items are not
                // proven yet: a relaying hub does not store the origin's).
                let proven = match &got {
                    Ok(_) if relay.direct(&provenance) => in_origin_log(
                        &envelope,
                        &provenance,
                        (&origin_checkpoint, &origin_inclusion_proof),
                        &directory,
                        &mut gates.origin_log,
                    ),
                    _ => Ok(()),
                };
                match got {
                    Ok(item) if proven.is_err() => {
                        let why = proven.err().map(|e| e.to_string()).unwrap_or_default();
                        tracing::warn!(peer = %hub, id = %item.id, error = %why,
                            "refused an item from a peer: not proven in its origin's log; nothing stored");
                    }
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
            Some(pb::peer_event::Event::CaughtUp(pb::PeerCaughtUp {
                cursor: next,
                directory_version,
            })) => {
                cursor = bounded_cursor(next)?;
                if directory_version > announced {
                    announced = directory_version;
                    directory =
                        refresh_directory(state, hub, &mut client, &pinned, Some(&directory))
                            .await?;
                }
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

/// Checks an item from its origin against the origin's log
/// (`isac_core::fed_log::check_origin_inclusion`, the log key from the
/// origin's pinned directory) and holds the newer checkpoint.
fn in_origin_log(
    envelope: &isac_core::Envelope,
    provenance: &[u8],
    (note, proof): (&[u8], &[Vec<u8>]),
    origin_directory: &KeyDirectory,
    held: &mut Option<OriginCheckpoint>,
) -> Result<(), OriginLogError> {
    let index = Provenance::decode(provenance)
        .ok()
        .and_then(|p| p.origin_log_index);
    let newest = check_origin_inclusion(
        envelope,
        index,
        note,
        proof,
        origin_directory,
        held.as_ref(),
    )?;
    *held = Some(newest);
    Ok(())
}

/// A session's state for relayed items (origin a third hub) and for
/// removal here: the hubs this hub suspended or removed (re-read when the
/// membership epoch moves) and the origin directories taken through this
/// peer, verified with the key the peer's signed directory lists.
struct Relay {
    local: String,
    removed: Vec<String>,
    epoch: tokio::sync::watch::Receiver<u64>,
    origins: HashMap<String, (String, KeyDirectory)>,
}

impl Relay {
    async fn new(state: &HubState) -> Result<Relay, String> {
        let mut epoch = state.epoch.clone();
        epoch.borrow_and_update();
        Ok(Relay {
            local: state.config.hub_id.clone(),
            removed: removed_here(state).await?,
            epoch,
            origins: HashMap::new(),
        })
    }

    async fn refresh_if_moved(&mut self, state: &HubState) -> Result<(), String> {
        if self.epoch.has_changed().unwrap_or(false) {
            self.epoch.borrow_and_update();
            self.removed = removed_here(state).await?;
        }
        Ok(())
    }

    /// Whether `provenance` names the sender as the origin (or does not
    /// parse: the direct path reports that).
    fn direct(&self, provenance: &[u8]) -> bool {
        isac_core::federation::Provenance::decode(provenance)
            .map_or(true, |p| p.sender() == Some(p.origin_hub.as_str()))
    }

    /// An item from its origin, checked again against what this hub
    /// removed (the origin may be a hub this hub dropped).
    fn still_allowed(
        &self,
        item: FederatedItem,
    ) -> Result<FederatedItem, isac_core::federation::ReceiveError> {
        if self.removed.contains(&item.origin_hub) {
            return Err(isac_core::federation::Refusal::RemovedHere(item.origin_hub).into());
        }
        Ok(item)
    }

    /// `None` for an item whose origin is the sender (the caller checks it
    /// against the sender's directory); otherwise the verdict on a relayed
    /// item: `may_accept_origin`, then the origin's directory (held, or
    /// fetched from the sender with `GetOriginDirectories`, verified with
    /// the key the sender lists, pinned with the rollback, freeze and
    /// succession rules), then the author's signature and the crossing
    /// rules against it.
    async fn check(
        &mut self,
        state: &HubState,
        hub: &str,
        client: &mut pb::peering_client::PeeringClient<tonic::transport::Channel>,
        sender: &KeyDirectory,
        (envelope, provenance): (&isac_core::Envelope, &[u8]),
        gates: &mut Gates,
    ) -> Result<Option<Result<FederatedItem, ReceiveError>>, String> {
        let claimed = match Provenance::decode(provenance) {
            Ok(p) => p,
            Err(e) => return Ok(Some(Err(e.into()))),
        };
        let listed =
            match may_accept_origin(&claimed, hub, &self.local, &sender.federated, &self.removed) {
                Ok(None) => return Ok(None),
                Ok(Some(listed)) => listed.clone(),
                Err(refusal) => return Ok(Some(Err(refusal.into()))),
            };
        let origin = claimed.origin_hub.clone();
        let lifetimes = &state.config.default_lifetime;
        let verdict = |dir: &KeyDirectory| {
            received_relayed(
                envelope,
                provenance,
                dir,
                hub,
                &self.local,
                state.now(),
                lifetimes,
            )
        };
        // A directory of this origin held already: this session's, a hub
        // this hub follows itself, or one pinned through a peer under the
        // same key.
        if !self.origins.contains_key(&origin) {
            if let Some(dir) = held_origin(state, &origin, &listed).await? {
                self.origins
                    .insert(origin.clone(), (listed.key_id.clone(), dir));
            }
        }
        let held = self
            .origins
            .get(&origin)
            .filter(|(key_id, _)| key_id == &listed.key_id)
            .map(|(_, d)| d.clone());
        if let Some(dir) = &held {
            let got = verdict(dir);
            if !unknown_key(&got) {
                return Ok(Some(got));
            }
        }
        // Not held, or a key newer than the copy held: fetch it from the
        // sender, at most once per REFETCH_EVERY for this origin.
        let allowed = gates
            .origins
            .entry(origin.clone())
            .or_default()
            .allow(std::time::Instant::now(), REFETCH_EVERY);
        if !allowed {
            // As for the peer's own directory: the session ends unstored
            // and this item comes again after the backoff.
            return Err(rate_limited(hub));
        }
        let Some(key) = listed.key() else {
            return Ok(Some(Err(ReceiveError::Refused(
                Refusal::OriginUnknownToSender {
                    origin,
                    sender: hub.to_owned(),
                },
            ))));
        };
        match fetch_origin(state, hub, client, &origin, &key, held.as_ref()).await {
            Ok(dir) => {
                let got = verdict(&dir);
                self.origins.insert(origin, (listed.key_id.clone(), dir));
                Ok(Some(got))
            }
            Err(e) => {
                tracing::warn!(peer = %hub, origin = %origin, error = %e, "cannot pin the origin's directory through this peer");
                match held {
                    Some(dir) => Ok(Some(verdict(&dir))),
                    None => Ok(Some(Err(ReceiveError::Refused(Refusal::Provenance(
                        format!("no verified directory of origin `{origin}`: {e}"),
                    ))))),
                }
            }
        }
    }
}

/// Only a key the pinned directory does not list yet can be helped by
/// fetching it again (a member enrolled or rotated since); a bad
/// signature, a mis-attributed or a revoked key cannot.
fn unknown_key<T>(got: &Result<T, ReceiveError>) -> bool {
    matches!(
        got,
        Err(ReceiveError::Verify {
            error: isac_core::VerifyError::UnknownKey(_),
            ..
        })
    )
}

/// [`unknown_key`] through the group-aware receive check.
fn unknown_key_any<T>(got: &Result<T, GroupReceiveError>) -> bool {
    matches!(
        got,
        Err(GroupReceiveError::Receive(ReceiveError::Verify {
            error: isac_core::VerifyError::UnknownKey(_),
            ..
        }))
    )
}

fn rate_limited(hub: &str) -> String {
    format!(
        "an item from `{hub}` does not verify and its directory was fetched under {}s ago; nothing from this session stored, resuming after the backoff",
        REFETCH_EVERY.as_secs()
    )
}

/// The hubs this hub suspended or removed as peers.
async fn removed_here(state: &HubState) -> Result<Vec<String>, String> {
    let members = state
        .store
        .list_members()
        .await
        .map_err(|e| e.to_string())?;
    Ok(crate::app::federation::removed_peers(&members))
}

/// The origin's directory this hub holds under the key the sender lists:
/// its own pinned copy if it follows the origin itself, else one pinned
/// through a peer with that key.
async fn held_origin(
    state: &HubState,
    origin: &str,
    listed: &isac_core::directory::FederatedOrigin,
) -> Result<Option<KeyDirectory>, String> {
    if let Some(link) = state
        .store
        .peer_link(origin)
        .await
        .map_err(|e| e.to_string())?
    {
        if let Some(json) = link.directory {
            return Ok(isac_core::Envelope::from_json(&json)
                .ok()
                .as_ref()
                .and_then(crate::app::federation::pinned_payload));
        }
    }
    let rows = state
        .store
        .origin_directories()
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .find(|r| {
            r.hub_id == origin
                && FederatedOrigin::new(origin, &r.public_key)
                    .is_ok_and(|o| o.key_id == listed.key_id)
        })
        .and_then(|r| isac_core::Envelope::from_json(&r.directory).ok())
        .as_ref()
        .and_then(crate::app::federation::pinned_payload))
}

/// Fetches `origin`'s directory from the peer (`GetOriginDirectories`),
/// checks it with `key` (the one the peer's signed directory lists) against
/// the copy held (rollback, freeze, succession) and pins it.
async fn fetch_origin(
    state: &HubState,
    hub: &str,
    client: &mut pb::peering_client::PeeringClient<tonic::transport::Channel>,
    origin: &str,
    key: &VerifyingKey,
    held: Option<&KeyDirectory>,
) -> Result<KeyDirectory, String> {
    let got = client
        .get_origin_directories(pb::GetFederatedDirectoriesRequest {})
        .await
        .map_err(|s| format!("GetOriginDirectories: {}", s.message()))?
        .into_inner();
    if got.directories.len() > isac_core::federation::MAX_PEERS {
        return Err(format!(
            "the peer sent {} origin directories (at most {})",
            got.directories.len(),
            isac_core::federation::MAX_PEERS
        ));
    }
    let envelope: isac_core::Envelope = got
        .directories
        .into_iter()
        .find(|d| d.hub_id == origin)
        .and_then(|d| d.signed_directory)
        .ok_or_else(|| format!("the peer holds no directory of origin `{origin}`"))?
        .into();
    let directory = check_peer_directory(&envelope, key, held, state.now())
        .map_err(|e| format!("origin `{origin}`'s directory is refused: {e}"))?;
    if held.is_none_or(|h| directory.version > h.version) {
        state
            .store
            .pin_origin_directory(crate::store::OriginDirectoryRow {
                hub_id: origin.to_owned(),
                via_peer: hub.to_owned(),
                public_key: key.spki_der().to_vec(),
                directory: envelope.to_json(),
                directory_version: directory.version,
                retired: false,
            })
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(directory)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gate opens once per interval, whatever happens in between, and
    /// a clock that goes backwards never opens it early.
    #[test]
    fn refetches_are_rate_limited() {
        let every = Duration::from_secs(10);
        let t0 = std::time::Instant::now();
        let mut gate = RefetchGate::default();
        assert!(gate.allow(t0, every), "the first fetch is allowed");
        for s in [0, 1, 5, 9] {
            assert!(!gate.allow(t0 + Duration::from_secs(s), every), "{s}s");
        }
        assert!(gate.allow(t0 + every, every));
        assert!(!gate.allow(t0 + every + Duration::from_secs(1), every));
        assert!(!gate.allow(t0, every), "earlier than the last: closed");
        assert!(gate.allow(t0 + every * 2, every));
        // Gates are independent per origin.
        let mut gates = Gates::default();
        assert!(gates
            .origins
            .entry("a".into())
            .or_default()
            .allow(t0, every));
        assert!(gates
            .origins
            .entry("b".into())
            .or_default()
            .allow(t0, every));
        assert!(!gates
            .origins
            .entry("a".into())
            .or_default()
            .allow(t0, every));
        assert!(gates.peer.allow(t0, every));
    }
}
