//! Per-member limits: a publish rate (token bucket) and concurrent streams,
//! plus a hub-wide stream cap; and the answer to a gRPC request message
//! over its service's size limit ([`MessageSizeLayer`]). Peer hubs' Follow streams (federation) are
//! counted apart, against their own per-peer cap, so a peer never takes a
//! member's slot. Hitting one is RESOURCE_EXHAUSTED with a retry hint,
//! never a silent drop.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::codegen::http;

use crate::error::ApiError;

/// Follow streams per peer hub by default (`max_streams_per_peer`): a
/// follower needs one; a few more cover reconnects racing the old stream's
/// end.
pub const DEFAULT_STREAMS_PER_PEER: usize = 4;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct Limits {
    rate_per_s: f64,
    burst: f64,
    max_streams_per_member: usize,
    max_streams_total: usize,
    max_streams_per_peer: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
    streams: Arc<Mutex<Streams>>,
    peer_streams: Arc<Mutex<Streams>>,
}

#[derive(Default)]
struct Streams {
    per_member: HashMap<String, usize>,
    total: usize,
}

/// Held by an open stream; releases its slot when dropped.
pub struct StreamSlot {
    org: String,
    streams: Arc<Mutex<Streams>>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut s = self.streams.lock().expect("streams lock");
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_member.get_mut(&self.org) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.per_member.remove(&self.org);
            }
        }
    }
}

impl Limits {
    pub fn new(
        rate_per_s: u32,
        burst: u32,
        max_streams_per_member: usize,
        max_streams_total: usize,
    ) -> Self {
        Self {
            rate_per_s: f64::from(rate_per_s.max(1)),
            burst: f64::from(burst.max(1)),
            max_streams_per_member,
            max_streams_total,
            max_streams_per_peer: DEFAULT_STREAMS_PER_PEER,
            buckets: Mutex::new(HashMap::new()),
            streams: Arc::new(Mutex::new(Streams::default())),
            peer_streams: Arc::new(Mutex::new(Streams::default())),
        }
    }

    /// Sets the Follow streams each peer hub may hold open at once.
    pub fn with_streams_per_peer(mut self, n: usize) -> Self {
        self.max_streams_per_peer = n;
        self
    }

    /// Reserves a Follow stream slot for peer hub `peer`: its own pool,
    /// never the members' (neither a member's cap nor the hub-wide one).
    pub fn open_peer_stream(&self, peer: &str) -> Result<StreamSlot, ApiError> {
        let mut s = self.peer_streams.lock().expect("streams lock");
        let mine = s.per_member.get(peer).copied().unwrap_or(0);
        if mine >= self.max_streams_per_peer {
            return Err(ApiError::ResourceExhausted {
                message: format!(
                    "peer hub `{peer}` already has {mine} open streams (max_streams_per_peer); one Follow stream per peer is enough"
                ),
                retry_after_ms: 5000,
            });
        }
        s.total += 1;
        *s.per_member.entry(peer.to_owned()).or_insert(0) += 1;
        Ok(StreamSlot {
            org: peer.to_owned(),
            streams: self.peer_streams.clone(),
        })
    }

    /// Peer Follow streams open now (for metrics).
    pub fn open_peer_streams(&self) -> usize {
        self.peer_streams.lock().expect("streams lock").total
    }

    /// Subscription streams open now (for metrics).
    pub fn open_streams(&self) -> usize {
        self.streams.lock().expect("streams lock").total
    }

    /// Takes `n` publish tokens for `org`, or says when to retry.
    pub fn take_publish(&self, org: &str, n: usize, now: Instant) -> Result<(), ApiError> {
        let n = n as f64;
        let mut buckets = self.buckets.lock().expect("buckets lock");
        let b = buckets.entry(org.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate_per_s).min(self.burst);
        b.at = now;
        if n > self.burst {
            return Err(ApiError::ResourceExhausted {
                message: format!(
                    "{} statements in one call exceed the burst of {} allowed for `{org}`; send smaller batches",
                    n as u64, self.burst as u64
                ),
                retry_after_ms: 1000,
            });
        }
        if b.tokens < n {
            let wait_ms = (((n - b.tokens) / self.rate_per_s) * 1000.0).ceil() as u64;
            return Err(ApiError::ResourceExhausted {
                message: format!(
                    "publish rate limit for `{org}` ({} statements/s, burst {}) reached; retry in {wait_ms} ms",
                    self.rate_per_s as u64, self.burst as u64
                ),
                retry_after_ms: wait_ms.max(1),
            });
        }
        b.tokens -= n;
        Ok(())
    }

    /// Reserves a stream slot for `org`.
    pub fn open_stream(&self, org: &str) -> Result<StreamSlot, ApiError> {
        let mut s = self.streams.lock().expect("streams lock");
        if s.total >= self.max_streams_total {
            return Err(ApiError::ResourceExhausted {
                message: format!(
                    "the hub serves its maximum of {} streams (max_streams_total); retry later",
                    self.max_streams_total
                ),
                retry_after_ms: 5000,
            });
        }
        let mine = s.per_member.get(org).copied().unwrap_or(0);
        if mine >= self.max_streams_per_member {
            return Err(ApiError::ResourceExhausted {
                message: format!(
                    "`{org}` already has {mine} open streams, the limit (max_streams_per_member = {}); close one or reuse a stream with filters",
                    self.max_streams_per_member
                ),
                retry_after_ms: 5000,
            });
        }
        s.total += 1;
        *s.per_member.entry(org.to_owned()).or_insert(0) += 1;
        Ok(StreamSlot {
            org: org.to_owned(),
            streams: self.streams.clone(),
        })
    }
}

// === request message sizes ===

/// What sets the request message limit of the gRPC method at `path`, as
/// the refusal names it: the Publisher's is the hub's `max_message_bytes`,
/// every other service's is fixed (the `max_decoding_message_size` each is
/// built with in `lib.rs`).
pub fn message_limit_setting(path: &str) -> &'static str {
    if path.starts_with("/isac.v1.Publisher/") {
        "the hub's max_message_bytes"
    } else {
        "this service's fixed limit"
    }
}

/// Answers a request message over its service's limit with
/// RESOURCE_EXHAUSTED naming the limit (`error::refuse_oversized`) instead
/// of tonic's OUT_OF_RANGE. tonic refuses it from the 5-byte gRPC prefix,
/// before reading the message: nothing is buffered.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessageSizeLayer;

impl<S> tower::Layer<S> for MessageSizeLayer {
    type Service = MessageSize<S>;
    fn layer(&self, inner: S) -> MessageSize<S> {
        MessageSize { inner }
    }
}

#[derive(Debug, Clone)]
pub struct MessageSize<S> {
    inner: S,
}

impl<S, B, RB> tower::Service<http::Request<B>> for MessageSize<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    RB: Default,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let setting = message_limit_setting(req.uri().path());
        let response = self.inner.call(req);
        Box::pin(async move { Ok(crate::error::refuse_oversized(response.await?, setting)) })
    }
}

// === request bytes in flight per caller ===

/// How many `max_message_bytes` of request messages one caller may have
/// arriving at once (declared by their gRPC prefixes, held until each
/// request's body is done or dropped): a caller that announces messages
/// and never finishes them holds this much of the hub's memory at most.
pub const IN_FLIGHT_MESSAGES: usize = 4;

/// Per caller (a client certificate, or for connections without one the
/// source address: IPv4 address, IPv6 /64), a budget of request bytes in
/// flight. tonic buffers a whole message before decoding it and never
/// times a body out, so without it a member (or anyone, on Enrollment
/// and health) could hold `max_message_bytes` per stream, 256 streams per
/// connection, until memory ran out.
pub struct BodyBudgets {
    max_message: usize,
    per_caller: usize,
    callers: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// Callers remembered before idle ones (full budget, no body in flight)
/// are forgotten.
const BUDGETS_KEPT: usize = 1024;

impl BodyBudgets {
    /// Budgets of [`IN_FLIGHT_MESSAGES`] messages of `max_message` bytes
    /// (`max_message_bytes`, the largest any service takes) each.
    pub fn new(max_message: usize) -> Arc<Self> {
        Arc::new(BodyBudgets {
            max_message,
            per_caller: max_message
                .saturating_mul(IN_FLIGHT_MESSAGES)
                .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            callers: Mutex::new(HashMap::new()),
        })
    }

    /// Takes `len` bytes of `caller`'s budget until the permit is dropped,
    /// or refuses with RESOURCE_EXHAUSTED (never waits: a stream waiting
    /// for budget would hold the connection's flow-control window that
    /// the caller's other streams need to finish and give budget back).
    /// `None` for a length over `max_message`, which tonic refuses without
    /// reading it.
    pub fn take(
        &self,
        caller: &str,
        len: u32,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, ApiError> {
        if len as usize > self.max_message {
            return Ok(None);
        }
        let semaphore = {
            let mut callers = self.callers.lock().expect("budgets lock");
            if callers.len() >= BUDGETS_KEPT && !callers.contains_key(caller) {
                callers.retain(|_, s| Arc::strong_count(s) > 1);
            }
            callers
                .entry(caller.to_owned())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_caller)))
                .clone()
        };
        semaphore.clone().try_acquire_many_owned(len).map(Some).map_err(|_| {
            let in_flight = self.per_caller - semaphore.available_permits();
            ApiError::ResourceExhausted {
                message: format!(
                    "{in_flight} bytes of your request messages are still arriving; a caller may have \
                     {} bytes in flight ({IN_FLIGHT_MESSAGES} x max_message_bytes): finish or cancel \
                     those requests, then retry this one",
                    self.per_caller
                ),
                retry_after_ms: 1000,
            }
        })
    }

    /// Callers with a budget entry now (for tests).
    pub fn tracked(&self) -> usize {
        self.callers.lock().expect("budgets lock").len()
    }
}

/// The length a gRPC message prefix (flag byte, 4-byte big-endian length)
/// announces, once `head` holds all five bytes.
pub fn grpc_message_len(head: &[u8]) -> Option<u32> {
    let prefix: [u8; 5] = head.get(..5)?.try_into().ok()?;
    Some(u32::from_be_bytes([
        prefix[1], prefix[2], prefix[3], prefix[4],
    ]))
}

/// Reads each request's gRPC prefix before tonic reads its message and
/// takes the announced length from the caller's [`BodyBudgets`] for as
/// long as the body is in flight; over budget, RESOURCE_EXHAUSTED at once.
/// (A length over the service's limit is left to tonic, which refuses it
/// without reading: [`MessageSizeLayer`].)
#[derive(Clone)]
pub struct BodyBudgetLayer {
    budgets: Arc<BodyBudgets>,
}

impl BodyBudgetLayer {
    pub fn new(budgets: Arc<BodyBudgets>) -> Self {
        BodyBudgetLayer { budgets }
    }
}

impl<S> tower::Layer<S> for BodyBudgetLayer {
    type Service = BodyBudget<S>;
    fn layer(&self, inner: S) -> BodyBudget<S> {
        BodyBudget {
            inner,
            budgets: self.budgets.clone(),
        }
    }
}

#[derive(Clone)]
pub struct BodyBudget<S> {
    inner: S,
    budgets: Arc<BodyBudgets>,
}

/// Who a request's budget belongs to: its client certificate, else its
/// source address.
fn budget_key(req: &http::Request<tonic::body::Body>) -> String {
    match req.extensions().get::<crate::tls::PeerInfo>() {
        Some(peer) => match &peer.client_cert_sha256 {
            Some(fingerprint) => format!("cert:{fingerprint}"),
            None => format!(
                "source:{}",
                crate::tls::SourceKey::of(peer.remote_addr.ip())
            ),
        },
        None => "unknown".to_owned(),
    }
}

impl<S, RB> tower::Service<http::Request<tonic::body::Body>> for BodyBudget<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<RB>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        use http_body_util::BodyExt;
        // The service polled ready goes with this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let budgets = self.budgets.clone();
        Box::pin(async move {
            let key = budget_key(&req);
            let (parts, mut body) = req.into_parts();
            let mut read = std::collections::VecDeque::new();
            let mut head = Vec::with_capacity(5);
            while head.len() < 5 {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            if data.is_empty() {
                                // Kept, an empty-DATA flood would grow `read`.
                                continue;
                            }
                            let want = (5 - head.len()).min(data.len());
                            head.extend_from_slice(&data[..want]);
                        }
                        read.push_back(Ok(frame));
                    }
                    Some(Err(e)) => {
                        read.push_back(Err(e));
                        break;
                    }
                    None => break,
                }
            }
            let permit = match grpc_message_len(&head) {
                Some(len) => match budgets.take(&key, len) {
                    Ok(permit) => permit,
                    Err(e) => return Ok(crate::error::answer_http(e)),
                },
                None => None,
            };
            let body = tonic::body::Body::new(Replay {
                read,
                rest: body,
                _permit: permit,
            });
            inner.call(http::Request::from_parts(parts, body)).await
        })
    }
}

/// A request body: the frames read ahead, then the rest; holds the
/// caller's budget until it is dropped.
struct Replay {
    read: std::collections::VecDeque<
        Result<hyper::body::Frame<tonic::codegen::Bytes>, tonic::Status>,
    >,
    rest: tonic::body::Body,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl hyper::body::Body for Replay {
    type Data = tonic::codegen::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if let Some(frame) = self.read.pop_front() {
            return Poll::Ready(Some(frame));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.rest.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn token_bucket_allows_burst_then_rate() {
        let l = Limits::new(10, 20, 2, 3);
        let t0 = Instant::now();
        assert!(l.take_publish("a", 20, t0).is_ok());
        let e = l.take_publish("a", 1, t0).unwrap_err();
        assert!(
            matches!(e, ApiError::ResourceExhausted { retry_after_ms, .. } if retry_after_ms == 100),
            "{e:?}"
        );
        assert!(l.take_publish("b", 5, t0).is_ok(), "buckets are per member");
        assert!(
            l.take_publish("a", 5, t0 + Duration::from_millis(500))
                .is_ok(),
            "refills at the rate"
        );
        assert!(
            l.take_publish("a", 21, t0 + Duration::from_secs(60))
                .is_err(),
            "never more than the burst at once"
        );
    }

    #[test]
    fn streams_per_member_and_total() {
        let l = Limits::new(10, 10, 2, 3);
        let a1 = l.open_stream("a").unwrap();
        let _a2 = l.open_stream("a").unwrap();
        assert!(l.open_stream("a").is_err());
        let _b1 = l.open_stream("b").unwrap();
        assert!(l.open_stream("c").is_err(), "hub-wide cap");
        drop(a1);
        assert!(l.open_stream("a").is_ok(), "a closed stream frees its slot");
    }

    #[test]
    fn stream_refusals_name_the_setting_and_its_value() {
        let l = Limits::new(10, 10, 1, 2);
        let _a = l.open_stream("a").unwrap();
        let message = |e: ApiError| match e {
            ApiError::ResourceExhausted { message, .. } => message,
            other => panic!("{other:?}"),
        };
        let own = message(l.open_stream("a").err().unwrap());
        assert!(own.contains("max_streams_per_member = 1"), "{own}");
        let _b = l.open_stream("b").unwrap();
        let total = message(l.open_stream("c").err().unwrap());
        assert!(total.contains("max_streams_total"), "{total}");
    }

    #[test]
    fn the_publishers_limit_is_the_config_setting() {
        assert!(
            message_limit_setting("/isac.v1.Publisher/PublishBatch").contains("max_message_bytes")
        );
        assert!(message_limit_setting("/isac.v1.Subscriber/Subscribe").contains("fixed"));
        assert!(message_limit_setting("/isac.v1.PublisherX/Publish").contains("fixed"));
    }

    #[test]
    fn grpc_message_len_reads_a_whole_prefix_only() {
        assert_eq!(grpc_message_len(&[0, 0, 0x40, 0, 0]), Some(4 << 20));
        assert_eq!(
            grpc_message_len(&[1, 0xff, 0xff, 0xff, 0xff, 9]),
            Some(u32::MAX)
        );
        assert_eq!(grpc_message_len(&[0, 0, 0, 1]), None);
        assert_eq!(grpc_message_len(&[]), None);
    }

    #[test]
    fn body_budgets_are_per_caller_and_come_back_on_drop() {
        // Four messages of at most 10 bytes: 40 bytes per caller.
        let b = BodyBudgets::new(10);
        let held: Vec<_> = [10, 10, 10, 6]
            .iter()
            .map(|n| b.take("a", *n).unwrap().unwrap())
            .collect();
        let e = b.take("a", 5).err().unwrap();
        assert!(
            matches!(&e, ApiError::ResourceExhausted { message, .. } if message.contains("36 bytes") && message.contains("40 bytes in flight")),
            "{e:?}"
        );
        assert!(b.take("a", 4).unwrap().is_some(), "up to the budget");
        let _b = b.take("b", 10).expect("another caller has its own budget");
        drop(held);
        assert!(
            b.take("a", 10).unwrap().is_some(),
            "a finished body gives its bytes back"
        );
        assert!(
            b.take("c", 11).unwrap().is_none(),
            "over the message limit: left to tonic, which refuses it unread"
        );
        assert!(b.take("c", 0).is_ok());
    }

    #[test]
    fn idle_callers_are_forgotten_past_the_kept_count() {
        let b = BodyBudgets::new(10);
        let held = b.take("busy", 1).unwrap();
        for i in 0..BUDGETS_KEPT - 1 {
            drop(b.take(&format!("idle-{i}"), 1).unwrap());
        }
        assert_eq!(b.tracked(), BUDGETS_KEPT);
        drop(b.take("one-more", 1).unwrap());
        assert_eq!(
            b.tracked(),
            2,
            "only the caller with a body in flight, and the new one"
        );
        drop(held);
    }

    #[test]
    fn peer_streams_have_their_own_pool() {
        let l = Limits::new(10, 10, 2, 2).with_streams_per_peer(2);
        let p1 = l.open_peer_stream("hub-b").unwrap();
        let _p2 = l.open_peer_stream("hub-b").unwrap();
        let e = l.open_peer_stream("hub-b").err().unwrap();
        assert!(
            matches!(&e, ApiError::ResourceExhausted { message, .. } if message.contains("peer hub `hub-b` already has 2")),
            "{e:?}"
        );
        let _c = l.open_peer_stream("hub-c").unwrap();
        // The members' slots are all theirs: the hub-wide cap of 2 holds
        // with three peer streams open.
        let _a = l.open_stream("a").unwrap();
        let _b = l.open_stream("b").unwrap();
        assert!(
            l.open_stream("c").is_err(),
            "hub-wide cap counts members only"
        );
        assert_eq!((l.open_streams(), l.open_peer_streams()), (2, 3));
        // A member named like a peer does not share the peer's count.
        drop(p1);
        assert!(l.open_peer_stream("hub-b").is_ok());
    }
}
