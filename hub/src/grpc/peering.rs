//! `isac.v1.Peering` (issue 20): a peer hub follows this hub. Only an
//! active member with role `peer` may call it (`app::caller::peer_for_cert`);
//! what crosses is decided per row by `app::federation::outgoing`
//! (`isac_core::federation::may_forward`). Like a subscription: backlog then
//! live, a bounded channel per stream (a slow peer blocks only its own
//! task), its own stream cap (`max_streams_per_peer`, apart from the
//! members' streams), a sealed cursor, and the stream ends with PERMISSION_DENIED as
//! soon as the peer is suspended or removed (the membership epoch moves).

use std::pin::Pin;
use std::time::Duration;

use isac_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::app::caller::peer_for_cert;
use crate::app::fed_groups::{agreed, link_groups, manifest_for, outgoing_any};
use crate::app::federation::{current_peers, pinned_origin_directories, pinned_payload, relayed};
use crate::app::HubState;
use crate::cursor::Purpose;
use crate::error::ApiError;
use crate::store::CheckpointRow;
use crate::tls::PeerInfo;

/// Events buffered per peer stream before its reader task waits.
const PEER_BUFFER: usize = 64;

pub struct PeeringService {
    pub state: HubState,
}

type PeerStream = Pin<Box<dyn Stream<Item = Result<pb::PeerEvent, Status>> + Send>>;

async fn peer_of<T>(state: &HubState, req: &Request<T>) -> Result<(String, String), ApiError> {
    let fingerprint = req
        .extensions()
        .get::<PeerInfo>()
        .and_then(|p| p.client_cert_sha256.clone())
        .ok_or_else(|| {
            ApiError::Unauthenticated(
                "no client certificate: a peer hub connects with the certificate `hub peer add` obtained".into(),
            )
        })?;
    let peer = peer_for_cert(state, &fingerprint).await?;
    Ok((peer, fingerprint))
}

#[tonic::async_trait]
impl pb::peering_server::Peering for PeeringService {
    type FollowStream = PeerStream;

    async fn get_peer_directory(
        &self,
        req: Request<pb::GetPeerDirectoryRequest>,
    ) -> Result<Response<pb::PeerDirectory>, Status> {
        peer_of(&self.state, &req).await?;
        let signed = self
            .state
            .directory
            .current()
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::PeerDirectory {
            signed_directory: Some(signed.into()),
            hub_id: self.state.config.hub_id.clone(),
        }))
    }

    async fn get_group_manifest(
        &self,
        req: Request<pb::GetGroupManifestRequest>,
    ) -> Result<Response<pb::GroupManifest>, Status> {
        let (peer, _) = peer_of(&self.state, &req).await?;
        let manifest = manifest_for(
            &self.state.store,
            &self.state.config.hub_id,
            &peer,
            self.state.now(),
        )
        .await
        .map_err(ApiError::from)?;
        let signed = self
            .state
            .directory
            .sign_group_manifest(&manifest)
            .map_err(|e| ApiError::Internal(format!("signing a group manifest: {e}")))?;
        Ok(Response::new(pb::GroupManifest {
            signed_manifest: Some(signed.into()),
        }))
    }

    async fn get_origin_directories(
        &self,
        req: Request<pb::GetFederatedDirectoriesRequest>,
    ) -> Result<Response<pb::GetFederatedDirectoriesResponse>, Status> {
        peer_of(&self.state, &req).await?;
        Ok(Response::new(
            crate::grpc::keys::federated_directories(&self.state.store).await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(peer))]
    async fn follow(
        &self,
        req: Request<pb::FollowRequest>,
    ) -> Result<Response<Self::FollowStream>, Status> {
        let (peer, fingerprint) = peer_of(&self.state, &req).await?;
        tracing::Span::current().record("peer", peer.as_str());
        let pb::FollowRequest { cursor } = req.into_inner();
        let head = self.state.store.head();
        let after = if cursor.is_empty() {
            0
        } else {
            match self
                .state
                .material
                .cursors
                .open(Purpose::Peer, &peer, &cursor)
            {
                Ok(after) if after <= head => after,
                Ok(_) => {
                    return Err(ApiError::ResumeFrom {
                        message: "your cursor is ahead of this hub's history (was it restored from a backup?); resume from its head".into(),
                        cursor: self.state.material.cursors.seal(Purpose::Peer, &peer, head),
                    }
                    .into())
                }
                Err(e) => {
                    return Err(ApiError::ResumeFrom {
                        message: format!("{e}; resume from the beginning (items are stored once per origin, id and revision)"),
                        cursor: Vec::new(),
                    }
                    .into())
                }
            }
        };
        let slot = self.state.limits.open_peer_stream(&peer)?;
        let (tx, rx) = mpsc::channel(PEER_BUFFER);
        let state = self.state.clone();
        tracing::info!(after, "peer follows");
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = run_follow(state, peer, fingerprint, after, tx.clone()).await {
                let _ = tx.send(Err(e.into())).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

async fn run_follow(
    state: HubState,
    peer: String,
    fingerprint: String,
    after: u64,
    tx: mpsc::Sender<Result<pb::PeerEvent, Status>>,
) -> Result<(), ApiError> {
    let hub_id = state.config.hub_id.clone();
    let seal = |pos: u64| state.material.cursors.seal(Purpose::Peer, &peer, pos);
    let mut cursor = after;
    let mut head_rx = state.store.watch_head();
    let mut epoch_rx = state.epoch.clone();
    epoch_rx.borrow_and_update();
    let mut shutdown = state.shutdown.clone();
    loop {
        let head = *head_rx.borrow_and_update();
        while cursor < head {
            let page = state
                .store
                .statements_after_shared(cursor, head, state.config.stream_page_size)
                .await?;
            if page.is_empty() {
                break;
            }
            // Checked against the store after each page is read, not only
            // when the epoch watcher next polls: an item committed after a
            // suspension or removal never reaches that peer.
            peer_for_cert(&state, &fingerprint).await?;
            let peers = current_peers(&state.store.list_members().await?);
            // The link's agreed cross-hub groups, read once per page that
            // holds an AMBER row (issue 20).
            let groups = if page.iter().any(|r| r.tlp == isac_core::Tlp::Amber.as_str()) {
                agreed(&link_groups(&state.store, &hub_id, &peer).await?)
            } else {
                Default::default()
            };
            let directory_version = directory_version(&state).await?;
            // This hub's own rows cross with its log checkpoint and their
            // inclusion proofs in it: one checkpoint per page, covering
            // every own row of the page (waited for, briefly).
            let own_max = page
                .iter()
                .filter(|r| r.provenance.is_none())
                .filter_map(|r| r.leaf_index)
                .max();
            let checkpoint = match own_max {
                Some(leaf) => Some(checkpoint_covering(&state, leaf).await?),
                None => None,
            };
            // Origins' pinned directories, read once per page and only
            // when the page holds a received row (relaying).
            let mut origins = None;
            for row in page {
                cursor = row.seq;
                let served = if row.provenance.is_some() {
                    if origins.is_none() {
                        origins = Some(
                            pinned_origin_directories(&state.store)
                                .await?
                                .iter()
                                .filter_map(|(hub, env)| Some((hub.clone(), pinned_payload(env)?)))
                                .collect(),
                        );
                    }
                    // Only CLEAR and GREEN travel on (`may_forward`).
                    relayed(&hub_id, &row, &peer, origins.as_ref().expect("just read"))
                        .map(|item| (item, Vec::new()))
                } else {
                    outgoing_any(&hub_id, &row, &peer, &peers, &groups)
                };
                match served {
                    Ok((item, openings)) => {
                        let (origin_checkpoint, origin_inclusion_proof) =
                            match (&checkpoint, row.provenance.is_none(), row.leaf_index) {
                                (Some(c), true, Some(index)) => (
                                    c.note.clone().into_bytes(),
                                    state
                                        .store
                                        .inclusion_proof(index, c.size)
                                        .await?
                                        .iter()
                                        .map(|h| h.to_vec())
                                        .collect(),
                                ),
                                _ => (Vec::new(), Vec::new()),
                            };
                        let event = pb::PeerEvent {
                            event: Some(pb::peer_event::Event::Item(pb::PeerItem {
                                envelope: Some(item.envelope.into()),
                                provenance: item.provenance,
                                cursor: seal(cursor),
                                openings: openings.iter().map(Into::into).collect(),
                                directory_version,
                                origin_checkpoint,
                                origin_inclusion_proof,
                            })),
                        };
                        if tx.send(Ok(event)).await.is_err() {
                            return Ok(());
                        }
                    }
                    Err(why) => tracing::debug!(seq = row.seq, %why, "not forwarded"),
                }
            }
        }
        let caught_up = pb::PeerEvent {
            event: Some(pb::peer_event::Event::CaughtUp(pb::PeerCaughtUp {
                cursor: seal(cursor),
                directory_version: directory_version(&state).await?,
            })),
        };
        if tx.send(Ok(caught_up)).await.is_err() {
            return Ok(());
        }
        enum Woke {
            Head,
            Epoch,
            Stop,
            Shutdown,
        }
        let woke = tokio::select! {
            changed = head_rx.changed() => if changed.is_ok() { Woke::Head } else { Woke::Stop },
            changed = epoch_rx.changed() => if changed.is_ok() { Woke::Epoch } else { Woke::Stop },
            _ = tx.closed() => Woke::Stop,
            _ = shutdown.wait_for(|stopping| *stopping) => Woke::Shutdown,
        };
        match woke {
            Woke::Head => {}
            Woke::Epoch => {
                // Suspended or removed: PERMISSION_DENIED ends the stream now.
                peer_for_cert(&state, &fingerprint).await?;
            }
            Woke::Stop => return Ok(()),
            Woke::Shutdown => {
                return Err(ApiError::Unavailable(
                    "the hub is shutting down; reconnect and resume from your cursor".into(),
                ))
            }
        }
    }
}

/// The version of this hub's current signed directory (re-signed first if
/// the membership moved), which every event carries.
async fn directory_version(state: &HubState) -> Result<u64, ApiError> {
    let signed = state.directory.current().await?;
    Ok(pinned_payload(&signed).map(|d| d.version).unwrap_or(0))
}

/// How long a peer stream waits for the log to checkpoint a new leaf
/// before it ends with UNAVAILABLE (the peer resumes from its cursor).
fn cover_wait(state: &HubState) -> Duration {
    (state.config.checkpoint_interval() * 3).max(Duration::from_secs(10))
}

/// This hub's latest signed checkpoint once it covers leaf `leaf`, so an
/// item crosses with its inclusion proof. The checkpointer is asked to
/// sign sooner than its interval (at most every `ON_DEMAND_GAP`): the
/// peer's members wait on this hop.
async fn checkpoint_covering(state: &HubState, leaf: u64) -> Result<CheckpointRow, ApiError> {
    let deadline = tokio::time::Instant::now() + cover_wait(state);
    loop {
        if let Some(c) = state.store.latest_checkpoint().await? {
            if c.size > leaf {
                return Ok(c);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Unavailable(format!(
                "this hub's log has not checkpointed leaf {leaf} yet; resume from your cursor"
            )));
        }
        state.witnesses.want_checkpoint();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
