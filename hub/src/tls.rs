//! OpenSSL mutual TLS under tonic.
//!
//! The caller binds the listener. Each accepted socket gets its own task for
//! the handshake, capped by a timeout, so a stalled or hostile peer never
//! blocks the accept loop; a failed handshake is logged and forgotten.
//! Finished streams carry the verified client certificate's fingerprint into
//! every request as [`PeerInfo`].
//!
//! The client certificate is requested but not required at the TLS layer:
//! enrollment must work without one, and a refusal at the TLS layer reaches
//! the caller only as an opaque transport error. Identity is checked per
//! method instead (`grpc::auth`). A certificate from another CA still fails
//! the handshake.
//!
//! Connections are counted before the handshake ([`ConnLimits`]): per
//! source (an IPv4 address, or an IPv6 /64) across the gRPC and TAXII
//! listeners, and in total per listener. One over a cap is closed right
//! after accept, before any TLS work; it is counted for the metrics and
//! logged once per source and burst, so a flood cannot flood the log. A
//! gRPC connection without a client certificate can only reach Enrollment
//! and health, so it is closed once no request has been in flight for the
//! idle timeout, and in any case at its maximum age ([`NoCertTimeouts`];
//! requests are counted by [`TrackRequestsLayer`]).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use openssl::ssl::{AlpnError, SslAcceptor, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_openssl::SslStream;
use tonic::codegen::http;
use tonic::transport::server::Connected;

use crate::datadir::HubMaterial;
use crate::pki::cert_fingerprint;

/// What the TLS layer learned about the peer; reaches handlers through the
/// request extensions.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote_addr: SocketAddr,
    /// SHA-256 of the client certificate, present only when the peer sent
    /// one and it verified against the hub CA.
    pub client_cert_sha256: Option<String>,
    /// Requests in flight on this connection, for its idle timeout: only on
    /// gRPC connections without a client certificate.
    pub activity: Option<Arc<Activity>>,
}

/// A finished TLS connection (newtype for the orphan rule). It holds its
/// place in [`ConnLimits`] until dropped.
pub struct TlsConn {
    stream: SslStream<TcpStream>,
    info: PeerInfo,
    idle: Option<IdleWatch>,
    /// Until the peer's first byte after the handshake: resolves when the
    /// hub stops, and the connection then reads as closed. A peer that
    /// never sends the HTTP/2 preface (or a TAXII request) cannot hold a
    /// graceful stop open: hyper waits for the preface before it can
    /// shut a connection down, and a client certificate lifts the idle
    /// timeout.
    silent_until_stop: Option<StopSignal>,
    _slot: ConnSlot,
}

/// Resolves once the hub is stopping (see [`TlsConn`]).
type StopSignal = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

fn stop_signal(mut stop: tokio::sync::watch::Receiver<bool>) -> StopSignal {
    Box::pin(async move {
        if stop.wait_for(|stopping| *stopping).await.is_err() {
            // No one can stop the hub any more: never resolves.
            std::future::pending::<()>().await;
        }
    })
}

impl TlsConn {
    /// `Err` once the connection's idle timeout or maximum age has passed
    /// (never for a connection with a client certificate); otherwise arms
    /// the timer that wakes `cx` when it will.
    fn check_timeouts(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(idle) = &mut self.idle else {
            return Ok(());
        };
        match idle.poll_expired(cx) {
            None => Ok(()),
            Some(reason) => {
                self._slot.limits.timed_out(reason);
                tracing::debug!(remote_addr = %self.info.remote_addr, reason = reason.label(), "closing a connection without a client certificate");
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "connection without a client certificate: {} timeout",
                        reason.label()
                    ),
                ))
            }
        }
    }
}

impl Connected for TlsConn {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => {
                if let Some(stop) = &mut this.silent_until_stop {
                    if stop.as_mut().poll(cx).is_ready() {
                        tracing::debug!(remote_addr = %this.info.remote_addr, "closing a connection that sent nothing: the hub is stopping");
                        // End of stream: the protocol above gives up at once.
                        return Poll::Ready(Ok(()));
                    }
                }
                pending_or_timed_out(this.check_timeouts(cx))
            }
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.silent_until_stop = None;
                    if let Some(idle) = &mut this.idle {
                        idle.read_at = Instant::now();
                    }
                }
                Poll::Ready(Ok(()))
            }
            ready => ready,
        }
    }
}

impl AsyncWrite for TlsConn {
    // A peer that stops reading blocks writes, and then the reader may not
    // be polled: check the timeouts on a blocked write too.
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Pending => pending_or_timed_out(this.check_timeouts(cx)),
            ready => ready,
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_flush(cx) {
            Poll::Pending => pending_or_timed_out(this.check_timeouts(cx)),
            ready => ready,
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Pending => pending_or_timed_out(this.check_timeouts(cx)),
            ready => ready,
        }
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

fn pending_or_timed_out<T>(check: io::Result<()>) -> Poll<io::Result<T>> {
    match check {
        Ok(()) => Poll::Pending,
        Err(e) => Poll::Ready(Err(e)),
    }
}

/// ALPN protocol lists in wire format.
pub const ALPN_H2: &[u8] = b"\x02h2";
pub const ALPN_HTTP1: &[u8] = b"\x08http/1.1";

/// The hub's TLS acceptor, offering `alpn` (gRPC: [`ALPN_H2`]; TAXII:
/// [`ALPN_HTTP1`]).
pub fn build_acceptor(
    material: &HubMaterial,
    alpn: &'static [u8],
) -> Result<SslAcceptor, openssl::error::ErrorStack> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_private_key(&material.server_key)?;
    b.set_certificate(&material.server_cert)?;
    // Send the CA too, so a new agent can pin it by fingerprint.
    b.add_extra_chain_cert(material.ca_cert.clone())?;
    b.check_private_key()?;
    let mut store = X509StoreBuilder::new()?;
    store.add_cert(material.ca_cert.clone())?;
    b.set_verify_cert_store(store.build())?;
    b.add_client_ca(&material.ca_cert)?;
    b.set_verify(SslVerifyMode::PEER);
    b.set_alpn_select_callback(|_, client| {
        openssl::ssl::select_next_proto(alpn, client).ok_or(AlpnError::NOACK)
    });
    Ok(b.build())
}

/// How [`accept_loop`] treats the connections of one listener.
#[derive(Debug, Clone, Copy)]
pub struct AcceptOptions {
    pub listener: Listener,
    pub handshake_timeout: Duration,
    /// Timeouts for connections without a client certificate (gRPC); `None`
    /// leaves them to the protocol (TAXII: hyper's header read timeout).
    pub no_cert: Option<NoCertTimeouts>,
}

/// Accepts TCP connections and hands finished TLS streams to `out` until
/// `out` is closed (the server stopped). A connection over a cap in
/// `limits` is closed before its handshake. `stop` is the hub's stop flag:
/// a connection that has sent nothing after its handshake is closed when
/// it turns true.
pub async fn accept_loop(
    listener: TcpListener,
    acceptor: Arc<SslAcceptor>,
    options: AcceptOptions,
    limits: Arc<ConnLimits>,
    out: mpsc::Sender<Result<TlsConn, io::Error>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (tcp, remote_addr) = tokio::select! {
            _ = out.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE, ECONNABORTED...: never stop listening for it.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = limits.try_open(options.listener, remote_addr.ip(), Instant::now()) else {
            // Closed before any TLS work; counted and logged by `try_open`.
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let out = out.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(
                options.handshake_timeout,
                handshake(&acceptor, tcp, remote_addr, slot, options.no_cert, stop),
            )
            .await
            {
                Ok(Ok(conn)) => {
                    let _ = out.send(Ok(conn)).await;
                }
                Ok(Err(e)) => tracing::debug!(%remote_addr, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote_addr, "TLS handshake timed out"),
            }
        });
    }
}

async fn handshake(
    acceptor: &SslAcceptor,
    tcp: TcpStream,
    remote_addr: SocketAddr,
    slot: ConnSlot,
    no_cert: Option<NoCertTimeouts>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> io::Result<TlsConn> {
    let ssl = openssl::ssl::Ssl::new(acceptor.context()).map_err(io::Error::other)?;
    let mut stream = SslStream::new(ssl, tcp).map_err(io::Error::other)?;
    Pin::new(&mut stream)
        .accept()
        .await
        .map_err(io::Error::other)?;
    let client_cert_sha256 = stream
        .ssl()
        .peer_certificate()
        .map(|c| cert_fingerprint(&c));
    let idle = match (&client_cert_sha256, no_cert) {
        (None, Some(t)) => Some(IdleWatch::new(t, Instant::now())),
        _ => None,
    };
    Ok(TlsConn {
        stream,
        info: PeerInfo {
            remote_addr,
            client_cert_sha256,
            activity: idle.as_ref().map(|i| i.activity.clone()),
        },
        idle,
        silent_until_stop: Some(stop_signal(stop)),
        _slot: slot,
    })
}

// === impl ConnLimits ===

/// A listener with its own total cap and metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Grpc,
    Taxii,
}

impl Listener {
    pub const ALL: [Listener; 2] = [Listener::Grpc, Listener::Taxii];

    pub fn label(self) -> &'static str {
        match self {
            Listener::Grpc => "grpc",
            Listener::Taxii => "taxii",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PerSource,
    Total,
}

impl Refusal {
    pub const ALL: [Refusal; 2] = [Refusal::PerSource, Refusal::Total];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::PerSource => "per_source",
            Refusal::Total => "total",
        }
    }
}

/// What a connection's source is counted as: an IPv4 address, or the /64
/// of an IPv6 one (one host can hold a whole /64). IPv4-mapped IPv6
/// addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKey {
    V4(std::net::Ipv4Addr),
    V6Prefix(u64),
}

impl SourceKey {
    pub fn of(ip: IpAddr) -> SourceKey {
        match ip {
            IpAddr::V4(v4) => SourceKey::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => SourceKey::V4(v4),
                None => SourceKey::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

impl std::fmt::Display for SourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceKey::V4(v4) => write!(f, "{v4}"),
            SourceKey::V6Prefix(p) => {
                write!(f, "{}/64", std::net::Ipv6Addr::from(u128::from(*p) << 64))
            }
        }
    }
}

/// After this long without a refusal, the next one starts a new burst (and
/// a new log line).
pub const BURST_QUIET: Duration = Duration::from_secs(60);

/// Refusals close together; only the first of a burst is logged.
#[derive(Debug, Clone, Copy)]
struct Burst {
    last: Instant,
}

impl Burst {
    /// Records a refusal at `now`; true when it starts a new burst.
    fn refuse(burst: &mut Option<Burst>, now: Instant) -> bool {
        let new = !burst.is_some_and(|b| now.saturating_duration_since(b.last) < BURST_QUIET);
        *burst = Some(Burst { last: now });
        new
    }

    fn active(burst: &Option<Burst>, now: Instant) -> bool {
        burst.is_some_and(|b| now.saturating_duration_since(b.last) < BURST_QUIET)
    }
}

#[derive(Debug, Default)]
struct Source {
    open: usize,
    burst: Option<Burst>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Open connections per source (both listeners); a source stays while it
    /// has connections or refused one within [`BURST_QUIET`].
    sources: HashMap<SourceKey, Source>,
    open: [usize; 2],
    total_burst: [Option<Burst>; 2],
    /// Sweep quiet sources out of `sources` when it grows past this.
    sweep_at: usize,
}

/// Open connections per source and per listener, with their caps; one per
/// hub, shared by the gRPC and TAXII accept loops.
#[derive(Debug)]
pub struct ConnLimits {
    per_source: usize,
    total: [usize; 2],
    counts: Mutex<Counts>,
    refused: [[AtomicU64; 2]; 2],
    timed_out: [AtomicU64; 2],
}

impl ConnLimits {
    /// `per_source` across both listeners; `grpc_total` and `taxii_total`
    /// each for its listener.
    pub fn new(per_source: usize, grpc_total: usize, taxii_total: usize) -> ConnLimits {
        ConnLimits {
            per_source,
            total: [grpc_total, taxii_total],
            counts: Mutex::new(Counts {
                sweep_at: 1024,
                ..Counts::default()
            }),
            refused: Default::default(),
            timed_out: Default::default(),
        }
    }

    /// A slot for a new connection from `ip` on `listener`, or `None` (the
    /// refusal counted, and logged when it starts a burst).
    pub fn try_open(
        self: &Arc<Self>,
        listener: Listener,
        ip: IpAddr,
        now: Instant,
    ) -> Option<ConnSlot> {
        let key = SourceKey::of(ip);
        let (refusal, log) = {
            let mut c = self.counts.lock().expect("connection counts");
            let c = &mut *c;
            if c.sources.len() >= c.sweep_at {
                c.sources
                    .retain(|_, s| s.open > 0 || Burst::active(&s.burst, now));
                c.sweep_at = (c.sources.len() * 2).max(1024);
            }
            let open_total = c.open[listener.index()];
            let source = c.sources.entry(key).or_default();
            if source.open >= self.per_source {
                (Refusal::PerSource, Burst::refuse(&mut source.burst, now))
            } else if open_total >= self.total[listener.index()] {
                if source.open == 0 && source.burst.is_none() {
                    c.sources.remove(&key);
                }
                (
                    Refusal::Total,
                    Burst::refuse(&mut c.total_burst[listener.index()], now),
                )
            } else {
                source.open += 1;
                c.open[listener.index()] += 1;
                return Some(ConnSlot {
                    limits: self.clone(),
                    key,
                    listener,
                });
            }
        };
        self.refused[listener.index()][refusal as usize].fetch_add(1, Ordering::Relaxed);
        if log {
            match refusal {
                Refusal::PerSource => tracing::warn!(
                    source = %key,
                    listener = listener.label(),
                    cap = self.per_source,
                    "connection refused: this source has max_connections_per_source open; \
                     further refusals in this burst are only counted (isac_connections_refused_total)"
                ),
                Refusal::Total => tracing::warn!(
                    source = %key,
                    listener = listener.label(),
                    cap = self.total[listener.index()],
                    "connection refused: the listener's connection cap is reached; \
                     further refusals in this burst are only counted (isac_connections_refused_total)"
                ),
            }
        }
        None
    }

    fn close(&self, key: SourceKey, listener: Listener) {
        let mut c = self.counts.lock().expect("connection counts");
        c.open[listener.index()] -= 1;
        if let Some(s) = c.sources.get_mut(&key) {
            s.open -= 1;
            if s.open == 0 && s.burst.is_none() {
                c.sources.remove(&key);
            }
        }
    }

    fn timed_out(&self, reason: Timeout) {
        self.timed_out[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Open connections on `listener` (handshakes in progress included).
    pub fn open(&self, listener: Listener) -> usize {
        self.counts.lock().expect("connection counts").open[listener.index()]
    }

    /// Connections refused at accept on `listener` for `reason`.
    pub fn refused(&self, listener: Listener, reason: Refusal) -> u64 {
        self.refused[listener.index()][reason as usize].load(Ordering::Relaxed)
    }

    /// gRPC connections without a client certificate closed for `reason`.
    pub fn timed_out_count(&self, reason: Timeout) -> u64 {
        self.timed_out[reason as usize].load(Ordering::Relaxed)
    }

    /// Sources currently tracked (open connections or a recent refusal).
    pub fn tracked_sources(&self) -> usize {
        self.counts.lock().expect("connection counts").sources.len()
    }
}

/// One open connection's place in [`ConnLimits`], given back on drop.
#[derive(Debug)]
pub struct ConnSlot {
    limits: Arc<ConnLimits>,
    key: SourceKey,
    listener: Listener,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.limits.close(self.key, self.listener);
    }
}

// === impl IdleWatch ===

/// Limits for a gRPC connection without a client certificate.
#[derive(Debug, Clone, Copy)]
pub struct NoCertTimeouts {
    /// Closed once no request has been in flight for this long.
    pub idle: Duration,
    /// Closed at this age whatever it is doing.
    pub max_age: Duration,
}

/// Why a connection without a client certificate was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    Idle,
    MaxAge,
}

impl Timeout {
    pub const ALL: [Timeout; 2] = [Timeout::Idle, Timeout::MaxAge];

    pub fn label(self) -> &'static str {
        match self {
            Timeout::Idle => "idle",
            Timeout::MaxAge => "max_age",
        }
    }
}

/// Bytes read up to this long after the idle deadline postpone the close,
/// so a request that has arrived but not yet reached the service (which
/// counts it) is not cut; pings cannot postpone it longer than this.
const READ_GRACE: Duration = Duration::from_secs(1);

/// Requests in flight on one connection, and when the last one ended.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    last_done: Mutex<Instant>,
    /// The connection's task, woken when the last request ends so it
    /// re-arms its idle timer.
    waker: Mutex<Option<Waker>>,
}

impl Activity {
    /// Counts a request until the returned guard is dropped.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }
}

/// A request in flight; see [`Activity::start`].
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_done.lock().expect("activity") = Instant::now();
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            if let Some(w) = self.0.waker.lock().expect("activity").take() {
                w.wake();
            }
        }
    }
}

struct IdleWatch {
    activity: Arc<Activity>,
    idle: Duration,
    max_age_at: Instant,
    read_at: Instant,
    timer: Pin<Box<Sleep>>,
}

impl IdleWatch {
    fn new(t: NoCertTimeouts, now: Instant) -> IdleWatch {
        IdleWatch {
            activity: Arc::new(Activity {
                in_flight: AtomicUsize::new(0),
                last_done: Mutex::new(now),
                waker: Mutex::new(None),
            }),
            idle: t.idle,
            max_age_at: now + t.max_age,
            read_at: now,
            timer: Box::pin(tokio::time::sleep_until(now + t.idle.min(t.max_age))),
        }
    }

    /// When this connection is to be closed, and why, as things stand.
    fn deadline(&self) -> (Instant, Timeout) {
        let busy = self.activity.in_flight.load(Ordering::SeqCst) > 0;
        if busy {
            return (self.max_age_at, Timeout::MaxAge);
        }
        let idle_at = *self.activity.last_done.lock().expect("activity") + self.idle;
        let idle_at = idle_at.max((self.read_at + READ_GRACE).min(idle_at + READ_GRACE));
        if idle_at < self.max_age_at {
            (idle_at, Timeout::Idle)
        } else {
            (self.max_age_at, Timeout::MaxAge)
        }
    }

    /// `Some(reason)` once expired; otherwise arms the timer (and, while a
    /// request is in flight, the wake-up when it ends) for `cx`.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Option<Timeout> {
        *self.activity.waker.lock().expect("activity") = Some(cx.waker().clone());
        // Read after the waker is in place: a request ending now wakes us.
        let (at, reason) = self.deadline();
        if Instant::now() >= at {
            return Some(reason);
        }
        self.timer.as_mut().reset(at);
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Some(reason),
            Poll::Pending => None,
        }
    }
}

// === impl TrackRequestsLayer ===

/// Counts each request (until its response body ends or is dropped) on the
/// connections that carry an [`Activity`], for their idle timeout.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackRequestsLayer;

impl<S> tower::Layer<S> for TrackRequestsLayer {
    type Service = TrackRequests<S>;
    fn layer(&self, inner: S) -> TrackRequests<S> {
        TrackRequests { inner }
    }
}

#[derive(Debug, Clone)]
pub struct TrackRequests<S> {
    inner: S,
}

impl<S, B, RB> tower::Service<http::Request<B>> for TrackRequests<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Tracked<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let guard = req
            .extensions()
            .get::<PeerInfo>()
            .and_then(|p| p.activity.as_ref())
            .map(Activity::start);
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Tracked { body, guard }))
        })
    }
}

/// A response body that holds its request's [`InFlight`] until it ends.
#[derive(Debug)]
pub struct Tracked<B> {
    body: B,
    guard: Option<InFlight>,
}

impl<B> hyper::body::Body for Tracked<B>
where
    B: hyper::body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sources_are_ipv4_addresses_or_ipv6_64s() {
        assert_eq!(SourceKey::of(ip("192.0.2.7")).to_string(), "192.0.2.7");
        assert_eq!(
            SourceKey::of(ip("::ffff:192.0.2.7")),
            SourceKey::of(ip("192.0.2.7"))
        );
        assert_eq!(
            SourceKey::of(ip("2001:db8:1:2:aaaa::1")),
            SourceKey::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            SourceKey::of(ip("2001:db8:1:2::1")),
            SourceKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            SourceKey::of(ip("2001:db8:1:2:aaaa::1")).to_string(),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn caps_per_source_across_listeners_and_in_total_per_listener() {
        let l = Arc::new(ConnLimits::new(2, 3, 10));
        let now = Instant::now();
        let a1 = l.try_open(Listener::Grpc, ip("10.0.0.1"), now).unwrap();
        let _a2 = l.try_open(Listener::Taxii, ip("10.0.0.1"), now).unwrap();
        // The source's two count across both listeners.
        assert!(l.try_open(Listener::Grpc, ip("10.0.0.1"), now).is_none());
        assert!(l.try_open(Listener::Taxii, ip("10.0.0.1"), now).is_none());
        assert_eq!(l.refused(Listener::Grpc, Refusal::PerSource), 1);
        assert_eq!(l.refused(Listener::Taxii, Refusal::PerSource), 1);
        let _b1 = l.try_open(Listener::Grpc, ip("10.0.0.2"), now).unwrap();
        let _c1 = l.try_open(Listener::Grpc, ip("10.0.0.3"), now).unwrap();
        // gRPC holds three: its total is reached; TAXII has its own.
        assert!(l.try_open(Listener::Grpc, ip("10.0.0.4"), now).is_none());
        assert_eq!(l.refused(Listener::Grpc, Refusal::Total), 1);
        let _d1 = l.try_open(Listener::Taxii, ip("10.0.0.4"), now).unwrap();
        assert_eq!((l.open(Listener::Grpc), l.open(Listener::Taxii)), (3, 2));
        // A closed connection frees its place in both counts.
        drop(a1);
        assert_eq!(l.open(Listener::Grpc), 2);
        let _a3 = l.try_open(Listener::Grpc, ip("10.0.0.1"), now).unwrap();
        assert_eq!(l.open(Listener::Grpc), 3);
    }

    #[test]
    fn a_refusal_is_logged_once_per_burst_and_quiet_sources_are_forgotten() {
        let l = Arc::new(ConnLimits::new(1, 100, 100));
        let t0 = Instant::now();
        let held = l.try_open(Listener::Grpc, ip("10.0.0.1"), t0).unwrap();
        let mut burst = None;
        assert!(Burst::refuse(&mut burst, t0), "the first refusal logs");
        for s in 1..100 {
            let t = t0 + Duration::from_millis(s * 500);
            assert!(
                !Burst::refuse(&mut burst, t),
                "the rest of the burst does not"
            );
        }
        let later = t0 + Duration::from_millis(99 * 500) + BURST_QUIET;
        assert!(Burst::refuse(&mut burst, later), "a new burst logs again");
        // Refused sources are remembered only while their burst is recent.
        for _ in 0..5 {
            assert!(l.try_open(Listener::Grpc, ip("10.0.0.1"), t0).is_none());
        }
        drop(held);
        assert_eq!(l.tracked_sources(), 1, "the burst is remembered");
        {
            let mut counts = l.counts.lock().unwrap();
            counts.sweep_at = 1;
        }
        let _other = l
            .try_open(Listener::Grpc, ip("10.0.0.2"), t0 + BURST_QUIET)
            .unwrap();
        assert_eq!(l.tracked_sources(), 1, "the quiet source was swept");
    }

    #[tokio::test]
    async fn the_idle_deadline_waits_for_requests_in_flight_and_the_max_age_does_not() {
        let t = NoCertTimeouts {
            idle: Duration::from_secs(10),
            max_age: Duration::from_secs(60),
        };
        let start = Instant::now();
        let w = IdleWatch::new(t, start);
        assert_eq!(w.deadline(), (start + t.idle, Timeout::Idle));
        let req = w.activity.start();
        let req2 = w.activity.start();
        assert_eq!(w.deadline(), (start + t.max_age, Timeout::MaxAge));
        drop(req);
        assert_eq!(w.deadline().1, Timeout::MaxAge, "one is still in flight");
        drop(req2);
        let done = *w.activity.last_done.lock().unwrap();
        assert!(done >= start);
        assert_eq!(w.deadline(), (done + t.idle, Timeout::Idle));
        // A request that ended late: the maximum age comes first.
        *w.activity.last_done.lock().unwrap() = start + Duration::from_secs(55);
        assert_eq!(w.deadline(), (start + t.max_age, Timeout::MaxAge));
    }

    #[tokio::test]
    async fn bytes_read_postpone_the_idle_close_by_the_grace_at_most() {
        let t = NoCertTimeouts {
            idle: Duration::from_secs(10),
            max_age: Duration::from_secs(600),
        };
        let start = Instant::now();
        let mut w = IdleWatch::new(t, start);
        w.read_at = start + Duration::from_secs(5);
        assert_eq!(
            w.deadline().0,
            start + t.idle,
            "an early read changes nothing"
        );
        w.read_at = start + t.idle;
        assert_eq!(w.deadline().0, start + t.idle + READ_GRACE);
        w.read_at = start + Duration::from_secs(500);
        assert_eq!(
            w.deadline().0,
            start + t.idle + READ_GRACE,
            "pings cannot keep it open"
        );
    }
}
