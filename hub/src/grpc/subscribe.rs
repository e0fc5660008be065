//! `isac.v1.Subscriber`: backlog then live, gap-free, bounded memory.
//!
//! Each stream reads pages from the store after its cursor as the transport
//! asks for messages; when it has read up to the committed head it waits for
//! the head to move. Sequences are assigned by the single writer and the head
//! is published only after commit, so reading "after my cursor" never skips
//! an item and never repeats one, across the switch from backlog to live.
//! The transport polls a stream only while the subscriber's HTTP/2 window
//! has room, so a slow reader holds at most one page of rows (shared with
//! other streams when they are recent) and never more of the hub's memory.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use isac_core::filter::{Filter, ItemFacts};
use isac_core::statement::Severity;
use isac_core::tlp::Channel;
use isac_core::Tlp;
use isac_proto::v1 as pb;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::app::caller::{caller_for_cert, Caller};
use crate::app::HubState;
use crate::cursor::Purpose;
use crate::error::ApiError;
use crate::grpc::auth::authenticate;
use crate::limits::StreamSlot;
use crate::policy;
use crate::store::{SharedRow, StoreError, StoredStatement};

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
        tracing::info!(after_sequence, follow, "subscription opened");
        let state = &self.state;
        let mut epoch_rx = state.epoch.clone();
        epoch_rx.borrow_and_update();
        let stream = Follow {
            caller,
            cursor: after_sequence,
            follow,
            options,
            head_rx: state.store.watch_head(),
            epoch_rx,
            lost_rx: state.store.watch_unavailable(),
            shutdown: state.shutdown.clone(),
            announced_caught_up: false,
            target: None,
            page: VecDeque::new(),
            prefetched: None,
            ended: false,
            _slot: slot,
            state: state.clone(),
        };
        Ok(Response::new(stream.into_stream()))
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

/// One subscription: the caller, where it is in the order, and what it
/// waits on. The response stream is built straight over it (no task and
/// channel in between), so that when a commit moves the head by several
/// items, the transport encodes every delivery ready at that moment into one
/// HTTP/2 frame, one TLS record and one write, instead of one each.
struct Follow {
    state: HubState,
    caller: Caller,
    /// The last position examined (delivered or not entitled).
    cursor: u64,
    follow: bool,
    options: StreamOptions,
    head_rx: tokio::sync::watch::Receiver<u64>,
    epoch_rx: tokio::sync::watch::Receiver<u64>,
    lost_rx: tokio::sync::watch::Receiver<Option<String>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    announced_caught_up: bool,
    /// The head this pass reads up to, taken once per pass so that a
    /// sync without `follow` ends even while others keep publishing.
    target: Option<u64>,
    /// Rows read and not yet examined: at most one page (shared with
    /// every other stream when they come from the recent window).
    page: VecDeque<Arc<SharedRow>>,
    prefetched: Option<Prefetch>,
    ended: bool,
    /// Held for the stream's life: released when the transport drops it.
    _slot: StreamSlot,
}

impl Follow {
    fn channel(&self) -> Channel {
        if self.announced_caught_up {
            Channel::Stream
        } else {
            Channel::Backfill
        }
    }

    /// The next message for the subscriber, `None` at the end of the stream.
    /// Ready at once while the page holds entitled rows, so the transport
    /// takes them all in one poll.
    async fn next_message(&mut self) -> Result<Option<pb::SubscribeResponse>, ApiError> {
        if self.ended {
            return Ok(None);
        }
        loop {
            while let Some(item) = self.page.pop_front() {
                self.cursor = item.seq;
                if wanted(&item, &self.options, self.state.now())
                    && policy::may_see_shared(
                        &self.state.store,
                        &item,
                        &self.caller,
                        self.channel(),
                    )
                    .await?
                {
                    self.state.metrics.delivered();
                    let version = self.state.directory.version();
                    return Ok(Some(delivery(&self.state, &item, &self.caller, version)));
                }
            }
            // A hub that lost its database ends the stream rather than serve
            // from memory what it can no longer check (revocations, the order).
            if let Some(m) = self.lost_rx.borrow_and_update().clone() {
                return Err(database_lost(&m));
            }
            let head_rx = &mut self.head_rx;
            let target = *self
                .target
                .get_or_insert_with(|| *head_rx.borrow_and_update());
            if self.cursor < target {
                if self.epoch_rx.has_changed().unwrap_or(false) {
                    self.epoch_rx.borrow_and_update();
                    return self.on_epoch_change().await.map(Some);
                }
                let limit = self.state.config.stream_page_size;
                let page = match self.prefetched.take() {
                    Some(next) => next.join().await?,
                    None => {
                        self.state
                            .store
                            .statements_after_shared(self.cursor, target, limit)
                            .await?
                    }
                };
                if !page.is_empty() {
                    // A full page during catch-up: read the next one while
                    // this one is sent (a database round trip overlaps the
                    // sending).
                    match page.last().map(|r| r.seq) {
                        Some(last) if page.len() as u32 == limit && last < target => {
                            self.prefetched =
                                Some(Prefetch::start(&self.state, last, target, limit));
                        }
                        _ => {}
                    }
                    self.page = page.into();
                    continue;
                }
            }
            self.target = None;
            if !self.follow {
                self.ended = true;
                return Ok(Some(caught_up(&self.state, &self.caller, self.cursor)));
            }
            if !self.announced_caught_up {
                self.announced_caught_up = true;
                return Ok(Some(caught_up(&self.state, &self.caller, self.cursor)));
            }
            enum Woke {
                Head,
                Epoch,
                Stop,
                Shutdown,
                Lost,
            }
            let woke = tokio::select! {
                changed = self.lost_rx.changed() => if changed.is_ok() { Woke::Lost } else { Woke::Stop },
                changed = self.head_rx.changed() => if changed.is_ok() { Woke::Head } else { Woke::Stop },
                changed = self.epoch_rx.changed() => if changed.is_ok() { Woke::Epoch } else { Woke::Stop },
                _ = self.shutdown.wait_for(|stopping| *stopping) => Woke::Shutdown,
            };
            match woke {
                Woke::Head | Woke::Lost => {}
                Woke::Epoch => return self.on_epoch_change().await.map(Some),
                Woke::Stop => return Ok(None),
                Woke::Shutdown => {
                    return Err(ApiError::Unavailable(
                        "the hub is shutting down; reconnect and resume from your cursor".into(),
                    ))
                }
            }
        }
    }

    /// On a membership change: is the caller still entitled to a stream at
    /// all? Then tell the agent to fetch the new directory.
    async fn on_epoch_change(&mut self) -> Result<pb::SubscribeResponse, ApiError> {
        self.caller = caller_for_cert(&self.state, &self.caller.cert_fingerprint).await?;
        // The epoch watcher re-signs before it announces, so this is the new version.
        Ok(directory_changed(self.state.directory.version()))
    }

    /// The subscriber's response stream; an error is its last message.
    fn into_stream(self) -> EventStream {
        Box::pin(futures_util::stream::unfold(
            Some(self),
            |follow| async move {
                let mut follow = follow?;
                match follow.next_message().await {
                    Ok(Some(message)) => Some((Ok(message), Some(follow))),
                    Ok(None) => None,
                    Err(e) => Some((Err(e.into()), None)),
                }
            },
        ))
    }
}
