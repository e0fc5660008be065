//! `isac.v1.Subscriber`: backlog then live, gap-free, bounded memory.
//!
//! Each stream is a task that reads pages from the store after its cursor and
//! pushes them into a bounded channel; when it has read up to the committed
//! head it waits for the head to move. Sequences are assigned by the single
//! writer and the head is published only after commit, so reading "after my
//! cursor" never skips an item and never repeats one, across the switch from
//! backlog to live. A slow reader only fills its own channel; it never holds
//! items in the hub's memory beyond one page.

use std::pin::Pin;
use std::sync::Arc;

use isac_core::filter::{Filter, ItemFacts};
use isac_core::statement::Severity;
use isac_core::tlp::Channel;
use isac_core::Tlp;
use isac_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::app::caller::{caller_for_cert, Caller};
use crate::app::HubState;
use crate::cursor::Purpose;
use crate::error::ApiError;
use crate::grpc::auth::authenticate;
use crate::policy;
use crate::store::{SharedRow, StoreError, StoredStatement};

/// Messages buffered per stream before the reader task waits.
const STREAM_BUFFER: usize = 64;

/// How long a replica waits to see the head a cursor names before it
/// calls the cursor "ahead of this hub's history" (its tail reads the
/// order every 10 ms).
const CURSOR_AHEAD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub struct SubscriberService {
    pub state: HubState,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::subscriber_server::Subscriber for SubscriberService {
    type SubscribeStream = EventStream;

    #[tracing::instrument(skip_all, fields(org))]
    async fn subscribe(
        &self,
        req: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let caller = authenticate(&self.state, &req).await?;
        tracing::Span::current().record("org", caller.org_id.as_str());
        let pb::SubscribeRequest {
            after_sequence,
            follow,
            filter,
            include_expired,
            cursor,
        } = req.into_inner();
        let options = StreamOptions {
            filter: filter_from_pb(filter.unwrap_or_default())?,
            include_expired,
        };
        if after_sequence != 0 {
            return Err(ApiError::InvalidArgument(
                "numeric cursors (after_sequence) are no longer accepted: send the opaque `cursor` of the last item you processed (update the member agent)".into(),
            )
            .into());
        }
        let opened = (!cursor.is_empty()).then(|| {
            self.state
                .material
                .cursors
                .open(Purpose::Stream, &caller.org_id, &cursor)
        });
        let head = match &opened {
            // A replica learns of other replicas' commits from its tail: a
            // cursor another replica issued a moment ago may be ahead of
            // what this one has seen yet. Wait briefly rather than refuse.
            Some(Ok(after)) => {
                self.state
                    .store
                    .wait_for_head(*after, CURSOR_AHEAD_WAIT)
                    .await
            }
            _ => self.state.store.head(),
        };
        let after_sequence = match opened {
            None => 0,
            Some(opened) => match opened {
                // A cursor past the head means this hub's history is shorter
                // than the agent's (restored from a backup): say so, with the
                // head to resume from, rather than silently skip the positions
                // that will be reused.
                Ok(after) if after > head => {
                    // Not "ahead" but unseen: this replica cannot read the order.
                    if let Some(m) = self.state.store.watch_unavailable().borrow().clone() {
                        return Err(database_lost(&m).into());
                    }
                    return Err(ApiError::ResumeFrom {
                        message: "your cursor is ahead of this hub's history (was it restored from a backup?); resume from its head".into(),
                        cursor: self.state.material.cursors.seal(Purpose::Stream, &caller.org_id, head),
                    }
                    .into())
                }
                Ok(after) => after,
                Err(e) => {
                    return Err(ApiError::ResumeFrom {
                        message: format!("{e}; resume from the beginning (the agent recognises what it already holds)"),
                        cursor: Vec::new(),
                    }
                    .into())
                }
            },
        };
        let slot = self.state.limits.open_stream(&caller.org_id)?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let state = self.state.clone();
        tracing::info!(after_sequence, follow, "subscription opened");
        tokio::spawn(async move {
            // The slot is released when the stream task ends.
            let _slot = slot;
            if let Err(e) =
                run_stream(state, caller, after_sequence, follow, options, tx.clone()).await
            {
                let _ = tx.send(Err(e.into())).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn acknowledge(
        &self,
        req: Request<pb::AckRequest>,
    ) -> Result<Response<pb::AckResponse>, Status> {
        let caller = authenticate(&self.state, &req).await?;
        let head = self.state.store.head();
        let pb::AckRequest { sequence, cursor } = req.into_inner();
        if sequence != 0 {
            return Err(ApiError::InvalidArgument(
                "acknowledge with the opaque `cursor`, not a sequence (update the member agent)"
                    .into(),
            )
            .into());
        }
        let seq = self
            .state
            .material
            .cursors
            .open(Purpose::Stream, &caller.org_id, &cursor)
            .map_err(|e| ApiError::InvalidArgument(e.to_string()))?
            // Never beyond the head: an agent cannot claim items that do not exist.
            .min(head);
        self.state
            .store
            .acknowledge(&caller.cert_fingerprint, seq, self.state.now())
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::AckResponse { head_sequence: 0 }))
    }
}

/// What the subscriber asked for beyond its entitlement.
struct StreamOptions {
    filter: Filter,
    include_expired: bool,
}

fn filter_from_pb(f: pb::SubscriptionFilter) -> Result<Filter, ApiError> {
    let pb::SubscriptionFilter {
        kinds,
        ecosystems,
        min_severity,
        min_confidence,
        tlp_levels,
        tags,
        bulletins_only,
    } = f;
    let bad = |m: String| ApiError::InvalidArgument(format!("subscription filter: {m}"));
    if kinds.len() + ecosystems.len() + tlp_levels.len() + tags.len() > 256 {
        return Err(bad("too many entries".into()));
    }
    Ok(Filter {
        kinds,
        ecosystems,
        min_severity: if min_severity.is_empty() {
            None
        } else {
            Some(min_severity.parse().map_err(bad)?)
        },
        min_confidence: match min_confidence {
            0 => None,
            c if c <= 100 => Some(c as u8),
            _ => return Err(bad("min_confidence must be 0 to 100".into())),
        },
        tlp_levels: tlp_levels
            .iter()
            .map(|t| t.parse::<Tlp>().map_err(|e| bad(e.to_string())))
            .collect::<Result<_, _>>()?,
        tags,
        bulletins_only,
    })
}

/// Does the item pass the subscriber's own filter and expiry choice?
fn wanted(item: &StoredStatement, options: &StreamOptions, now: i64) -> bool {
    if !options.include_expired && item.facts.valid_until.is_some_and(|until| until <= now) {
        return false;
    }
    if options.filter.is_empty() {
        return true;
    }
    let (Some(tlp), Ok(severity)) = (item.tlp_level(), item.facts.severity.parse::<Severity>())
    else {
        return false;
    };
    let tags = item.tags();
    options.filter.matches(&ItemFacts {
        kind: &item.kind,
        ecosystem: item.facts.ecosystem.as_deref(),
        severity,
        confidence: item.facts.confidence,
        tlp,
        tags: &tags,
    })
}

fn delivery(
    state: &HubState,
    item: &SharedRow,
    caller: &Caller,
    directory_version: u64,
) -> pb::SubscribeResponse {
    let mut d =
        crate::grpc::delivery::delivery_decoded(item, item.decoded(), caller, directory_version);
    d.cursor = state
        .material
        .cursors
        .seal(Purpose::Stream, &caller.org_id, item.seq);
    pb::SubscribeResponse {
        event: Some(pb::subscribe_response::Event::Item(d)),
    }
}

fn directory_changed(version: u64) -> pb::SubscribeResponse {
    pb::SubscribeResponse {
        event: Some(pb::subscribe_response::Event::DirectoryChanged(
            pb::DirectoryChanged { version },
        )),
    }
}

fn caught_up(state: &HubState, caller: &Caller, head: u64) -> pb::SubscribeResponse {
    pb::SubscribeResponse {
        event: Some(pb::subscribe_response::Event::CaughtUp(pb::CaughtUp {
            head_sequence: 0,
            cursor: state
                .material
                .cursors
                .seal(Purpose::Stream, &caller.org_id, head),
        })),
    }
}

/// On a membership change: is the caller still entitled to a stream at all?
/// Then tell the agent to fetch the new directory.
async fn on_epoch_change(
    state: &HubState,
    caller: &mut Caller,
    tx: &mpsc::Sender<Result<pb::SubscribeResponse, Status>>,
) -> Result<bool, ApiError> {
    *caller = caller_for_cert(state, &caller.cert_fingerprint).await?;
    // The epoch watcher re-signs before it announces, so this is the new version.
    Ok(tx
        .send(Ok(directory_changed(state.directory.version())))
        .await
        .is_ok())
}

fn database_lost(reason: &str) -> ApiError {
    ApiError::Unavailable(format!(
        "this hub lost its database ({reason}); reconnect (to another replica) and resume from your cursor"
    ))
}

/// The next page of a catch-up, read in the background (stopped if the
/// stream ends first).
struct Prefetch(tokio::task::JoinHandle<Result<Vec<Arc<SharedRow>>, StoreError>>);

impl Prefetch {
    fn start(state: &HubState, after: u64, head: u64, limit: u32) -> Self {
        let store = state.store.clone();
        Prefetch(tokio::spawn(async move {
            store.statements_after_shared(after, head, limit).await
        }))
    }

    async fn join(mut self) -> Result<Vec<Arc<SharedRow>>, ApiError> {
        let joined = (&mut self.0).await;
        match joined {
            Ok(page) => Ok(page?),
            Err(e) => Err(ApiError::Internal(format!("reading the next page: {e}"))),
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run_stream(
    state: HubState,
    mut caller: Caller,
    after: u64,
    follow: bool,
    options: StreamOptions,
    tx: mpsc::Sender<Result<pb::SubscribeResponse, Status>>,
) -> Result<(), ApiError> {
    let mut cursor = after;
    let mut head_rx = state.store.watch_head();
    let mut shutdown = state.shutdown.clone();
    let mut epoch_rx = state.epoch.clone();
    epoch_rx.borrow_and_update();
    let mut lost_rx = state.store.watch_unavailable();
    let mut announced_caught_up = false;
    let mut prefetched: Option<Prefetch> = None;
    loop {
        // A hub that lost its database ends the stream rather than serve
        // from memory what it can no longer check (revocations, the order).
        if let Some(m) = lost_rx.borrow_and_update().clone() {
            return Err(database_lost(&m));
        }
        let head = *head_rx.borrow_and_update();
        let channel = if announced_caught_up {
            Channel::Stream
        } else {
            Channel::Backfill
        };
        while cursor < head {
            if epoch_rx.has_changed().unwrap_or(false) {
                epoch_rx.borrow_and_update();
                if !on_epoch_change(&state, &mut caller, &tx).await? {
                    return Ok(());
                }
            }
            let limit = state.config.stream_page_size;
            let page = match prefetched.take() {
                Some(next) => next.join().await?,
                None => {
                    state
                        .store
                        .statements_after_shared(cursor, head, limit)
                        .await?
                }
            };
            if page.is_empty() {
                break;
            }
            // A full page during catch-up: read the next one while this
            // one is sent (a database round trip overlaps the sending).
            match page.last().map(|r| r.seq) {
                Some(last) if page.len() as u32 == limit && last < head => {
                    prefetched = Some(Prefetch::start(&state, last, head, limit));
                }
                _ => {}
            }
            for item in page {
                cursor = item.seq;
                let version = state.directory.version();
                if wanted(&item, &options, state.now())
                    && policy::may_see_shared(&state.store, &item, &caller, channel).await?
                {
                    if tx
                        .send(Ok(delivery(&state, &item, &caller, version)))
                        .await
                        .is_err()
                    {
                        return Ok(()); // the subscriber went away
                    }
                    state.metrics.delivered();
                }
            }
        }
        if !follow {
            let _ = tx.send(Ok(caught_up(&state, &caller, cursor))).await;
            return Ok(());
        }
        if !announced_caught_up {
            announced_caught_up = true;
            if tx
                .send(Ok(caught_up(&state, &caller, cursor)))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        enum Woke {
            Head,
            Epoch,
            Stop,
            Shutdown,
            Lost,
        }
        let woke = tokio::select! {
            changed = lost_rx.changed() => if changed.is_ok() { Woke::Lost } else { Woke::Stop },
            changed = head_rx.changed() => if changed.is_ok() { Woke::Head } else { Woke::Stop },
            changed = epoch_rx.changed() => if changed.is_ok() { Woke::Epoch } else { Woke::Stop },
            _ = tx.closed() => Woke::Stop,
            _ = shutdown.wait_for(|stopping| *stopping) => Woke::Shutdown,
        };
        match woke {
            Woke::Head | Woke::Lost => {}
            Woke::Epoch => {
                if !on_epoch_change(&state, &mut caller, &tx).await? {
                    return Ok(());
                }
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
