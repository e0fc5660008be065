//! Limits and abuse against the real listener: publish rate, stream caps,
//! stalled and garbage handshakes, resets during accept, HTTP/2 floods
//! (rapid reset, CONTINUATION, PING, empty DATA), graceful shutdown,
//! connection caps per source and in total, idle connections without a
//! client certificate.

use std::time::Duration;

use isac_e2e::*;
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::publish;
use member_agent::Agent;
use tokio::io::AsyncWriteExt;
use tonic::Code;

fn draft(n: usize) -> IndicatorDraft {
    IndicatorDraft {
        purl: Some(format!("pkg:npm/p{n}@1.0.0")),
        tlp: Some("green".into()),
        title: Some(format!("item {n}")),
        ..Default::default()
    }
}

fn configured(dir: &std::path::Path, json: &str) -> std::path::PathBuf {
    let data = dir.join("hub");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hub.json"), json).unwrap();
    data
}

async fn raw_subscribe(
    agent: &Agent,
) -> Result<tonic::Streaming<pb::SubscribeResponse>, tonic::Status> {
    pb::subscriber_client::SubscriberClient::new(agent.channel().await.unwrap())
        .subscribe(pb::SubscribeRequest {
            after_sequence: 0,
            follow: true,
            filter: None,
            include_expired: false,
            cursor: Vec::new(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn the_publish_rate_limit_answers_resource_exhausted_with_a_retry_hint() {
    let dir = tempfile::tempdir().unwrap();
    let data = configured(
        dir.path(),
        r#"{"publish_rate_per_s": 2, "publish_burst": 5}"#,
    );
    let hub = TestHub::start(&data).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    for n in 0..5 {
        publish(&alice, draft(n)).await.unwrap();
    }
    let prepared = draft(99)
        .into_prepared(
            "alice-bank",
            isac_core::time::format_rfc3339(member_agent::now()),
        )
        .unwrap();
    let env = alice
        .loaded
        .signing_key
        .sign_envelope(
            isac_core::PAYLOAD_TYPE_STATEMENT_V1,
            prepared.statement.canonical_bytes(),
        )
        .unwrap();
    let status = pb::publisher_client::PublisherClient::new(alice.channel().await.unwrap())
        .publish(pb::PublishRequest {
            envelope: Some(env.into()),
            audience_openings: vec![],
            scrub_overrides: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("retry in"),
        "{}",
        status.message()
    );
    let hint: u64 = status
        .metadata()
        .get("retry-after-ms")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(hint > 0 && hint <= 1000, "{hint}");
    assert_eq!(
        hub.stored_statements(),
        5,
        "nothing over the limit is stored"
    );
    publish(&bob, draft(100))
        .await
        .expect("other members are not slowed");
    // Waiting out the hint is the point: the hint is enough to be served.
    tokio::time::sleep(Duration::from_millis(hint + 50)).await;
    publish(&alice, draft(6))
        .await
        .expect("after the hinted wait it works again");
    hub.stop().await;
}

#[tokio::test]
async fn stream_caps_per_member_and_per_hub() {
    let dir = tempfile::tempdir().unwrap();
    let data = configured(
        dir.path(),
        r#"{"max_streams_per_member": 2, "max_streams_total": 3}"#,
    );
    let hub = TestHub::start(&data).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let a1 = raw_subscribe(&alice).await.unwrap();
    let _a2 = raw_subscribe(&alice).await.unwrap();
    let e = raw_subscribe(&alice).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.message().contains("open streams"), "{}", e.message());
    let _b1 = raw_subscribe(&bob).await.unwrap();
    let e = raw_subscribe(&bob).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "hub-wide cap");
    drop(a1);
    let mut reopened = false;
    for _ in 0..100 {
        if raw_subscribe(&alice).await.is_ok() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened, "a closed stream frees its slot");
    hub.stop().await;
}

#[tokio::test]
async fn stalled_and_garbage_handshakes_never_stop_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    // Everything here comes from 127.0.0.1, the good client too: lift the
    // per-source cap, which would otherwise refuse the good client (that
    // cap has its own tests below).
    let data = configured(dir.path(), r#"{"max_connections_per_source": 1000}"#);
    let hub = TestHub::start(&data).await;
    // Hundreds of sockets that connect and say nothing (or only half a hello),
    // plus some that send garbage and hang up.
    let mut stalled = Vec::new();
    for i in 0..300 {
        let mut s = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
        if i % 3 == 0 {
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                .await
                .unwrap(); // a truncated ClientHello
        }
        stalled.push(s);
    }
    for _ in 0..50 {
        let mut s = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        drop(s);
    }
    // A good client still enrolls, publishes and reads while they hang.
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    publish(&alice, draft(1)).await.unwrap();
    let mut s = raw_subscribe(&alice).await.unwrap();
    assert!(s.message().await.unwrap().is_some());
    drop(stalled);
    hub.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_loses_nothing_acknowledged_and_tells_streams() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let hub = TestHub::start(&data).await;
    let addr = hub.addr.to_string();
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let mut stream = raw_subscribe(&bob).await.unwrap();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let publisher = {
        let acked = acked.clone();
        tokio::spawn(async move {
            for n in 0..100_000 {
                match publish(&alice, draft(n)).await {
                    Ok(p) => acked.lock().unwrap().push(p.id),
                    Err(_) => break,
                }
            }
        })
    };
    // Stop mid-flow: once some publishes are acknowledged.
    eventually("acknowledged publishes", Duration::from_secs(60), || {
        acked.lock().unwrap().len() >= 10
    })
    .await;
    hub.stop().await; // the same path SIGTERM takes
    publisher.await.unwrap();
    // The open stream ends with UNAVAILABLE and a reason an agent understands.
    let mut ended = None;
    loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(status) => {
                ended = Some(status);
                break;
            }
        }
    }
    if let Some(status) = ended {
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    // Everything acknowledged is in the database after a restart.
    let hub = TestHub::start_at(&data, &addr).await;
    let conn = rusqlite::Connection::open(data.join("hub.db")).unwrap();
    for id in &acked {
        let n: i64 = conn
            .query_row("SELECT count(*) FROM statements WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1, "acknowledged {id} lost");
    }
    hub.stop().await;
}

/// HTTP/2 rapid reset (CVE-2023-44487): open and cancel streams as fast as
/// possible on one authenticated connection. The hub must shed it (GOAWAY or
/// refusal) or absorb it, and keep serving everyone else.
#[tokio::test]
async fn http2_rapid_reset_does_not_take_the_hub_down() {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;

    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_alpn_protos(b"\x02h2").unwrap();
    b.set_certificate(&alice.loaded.tls_cert).unwrap();
    b.set_private_key(&alice.loaded.tls_key).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    let ssl = b
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    std::pin::Pin::new(&mut tls).connect().await.unwrap();
    let (client, connection) = h2::client::handshake(tls).await.unwrap();
    let conn_task = tokio::spawn(connection);

    let mut client = client;
    let mut sent = 0u32;
    let mut shed = false;
    for _ in 0..20_000 {
        client = match client.ready().await {
            Ok(c) => c,
            Err(_) => {
                shed = true;
                break;
            }
        };
        let req = http::Request::builder()
            .method("POST")
            .uri(format!(
                "https://localhost:{}/isac.v1.KeyDirectory/ListKeys",
                hub.addr.port()
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        match client.send_request(req, false) {
            Ok((_response, mut stream)) => {
                stream.send_reset(h2::Reason::CANCEL);
                sent += 1;
            }
            Err(_) => {
                shed = true;
                break;
            }
        }
    }
    eprintln!("rapid reset: {sent} streams opened and reset; connection shed by the hub: {shed}");
    conn_task.abort();
    // Everyone else is still served.
    publish(&alice, draft(1))
        .await
        .expect("the hub still serves after a rapid-reset flood");
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let mut s = raw_subscribe(&bob).await.unwrap();
    assert!(s.message().await.unwrap().is_some());
    hub.stop().await;
}

// === HTTP/2 abuse with raw frames, against a real `hub serve` process ===

/// Raw HTTP/2 frame types and flags used below (RFC 9113 §6).
mod h2raw {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const CONTINUATION: u8 = 0x9;
    pub const END_HEADERS: u8 = 0x4;
    pub const ACK: u8 = 0x1;
    pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = Vec::with_capacity(9 + payload.len());
        f.extend_from_slice(&len.to_be_bytes()[1..]);
        f.push(kind);
        f.push(flags);
        f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// HPACK for a gRPC request to `path` (static-table indexes, literals
    /// without indexing, no Huffman), RFC 7541 appendix A.
    pub fn grpc_request_block(authority: &str, path: &str) -> Vec<u8> {
        let mut b = vec![0x83, 0x87]; // :method POST, :scheme https
        let literal_indexed_name = |b: &mut Vec<u8>, index: u8, value: &str| {
            b.push(index); // 0000xxxx: literal without indexing, indexed name (< 15)
            b.push(value.len() as u8);
            b.extend_from_slice(value.as_bytes());
        };
        literal_indexed_name(&mut b, 0x04, path); // :path
        literal_indexed_name(&mut b, 0x01, authority); // :authority
        b.extend_from_slice(&[0x0f, 0x10]); // content-type (index 31)
        b.push(16);
        b.extend_from_slice(b"application/grpc");
        b.push(0x00); // te: trailers, new name
        b.push(2);
        b.extend_from_slice(b"te");
        b.push(8);
        b.extend_from_slice(b"trailers");
        b
    }

    /// A header block fragment of at most `n` bytes of whole, valid literal
    /// headers (so the concatenated block stays valid HPACK: what cuts the
    /// flood is the hub's limit, not a decoding error).
    pub fn filler_headers(n: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(n + 128);
        let mut i = 0u32;
        while b.len() + 120 <= n {
            let name = format!("x-flood-{i}");
            b.push(0x00);
            b.push(name.len() as u8);
            b.extend_from_slice(name.as_bytes());
            b.push(100);
            b.extend_from_slice(&[b'a'; 100]);
            i += 1;
        }
        b
    }
}

/// What the hub did to a raw connection, as its reader saw it.
#[derive(Debug, Default)]
struct Observed {
    /// GOAWAY error code, if the hub sent one.
    goaway: Option<u32>,
    /// The hub closed the connection (EOF or reset).
    closed: bool,
    ping_acks: u64,
}

/// A raw HTTP/2 connection over mTLS with `agent`'s certificate: the
/// preface and our (empty) SETTINGS are sent; a task reads and records
/// what the hub sends until it closes.
async fn raw_h2(
    addr: &str,
    agent: &Agent,
) -> (
    tokio::io::WriteHalf<tokio_openssl::SslStream<tokio::net::TcpStream>>,
    std::sync::Arc<std::sync::Mutex<Observed>>,
    tokio::task::JoinHandle<()>,
) {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    use tokio::io::AsyncReadExt;
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_alpn_protos(b"\x02h2").unwrap();
    b.set_certificate(&agent.loaded.tls_cert).unwrap();
    b.set_private_key(&agent.loaded.tls_key).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    let ssl = b
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    std::pin::Pin::new(&mut tls).connect().await.unwrap();
    assert_eq!(tls.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
    let (mut rd, mut wr) = tokio::io::split(tls);
    wr.write_all(h2raw::PREFACE).await.unwrap();
    wr.write_all(&h2raw::frame(h2raw::SETTINGS, 0, 0, &[]))
        .await
        .unwrap();
    // The hub's SETTINGS is the first thing it sends; acknowledge it.
    wr.write_all(&h2raw::frame(h2raw::SETTINGS, h2raw::ACK, 0, &[]))
        .await
        .unwrap();
    let observed = std::sync::Arc::new(std::sync::Mutex::new(Observed::default()));
    let seen = observed.clone();
    let reader = tokio::spawn(async move {
        let mut head = [0u8; 9];
        loop {
            if rd.read_exact(&mut head).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            if rd.read_exact(&mut payload).await.is_err() {
                break;
            }
            let mut o = seen.lock().unwrap();
            match head[3] {
                h2raw::GOAWAY if len >= 8 => {
                    o.goaway = Some(u32::from_be_bytes([
                        payload[4], payload[5], payload[6], payload[7],
                    ]))
                }
                h2raw::PING if head[4] & h2raw::ACK != 0 => o.ping_acks += 1,
                _ => {}
            }
        }
        seen.lock().unwrap().closed = true;
    });
    (wr, observed, reader)
}

/// Resident and peak memory of a process, in KiB, from /proc/PID/status.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Generous: an unbounded buffer of what the floods below send would be
/// hundreds of MiB.
const MAX_GROWTH_KIB: u64 = 96 * 1024;

/// A hub process with one enrolled agent (in process, for the good client).
async fn hub_process_with_agent(dir: &std::path::Path) -> (HubProcess, Agent) {
    let data = dir.join("hub");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let state = dir.join("alice");
    enroll_with_cli(&data, &hub.url(), "alice-bank", None, &state);
    let agent = Agent::open(&member_agent::StateDir::new(&state)).unwrap();
    publish(&agent, draft(0)).await.unwrap();
    (hub, agent)
}

/// SIGTERM and wait, off the runtime thread, so the agent's connection
/// task can answer the hub's GOAWAY (a blocked runtime would hold the
/// hub's graceful shutdown until its keepalive gives up).
async fn stop_process(hub: HubProcess, agent: Agent) {
    drop(agent);
    tokio::task::spawn_blocking(move || hub.terminate())
        .await
        .unwrap();
}

/// The good client's work while (and after) a flood runs: publish and read
/// the key directory; every call must be answered.
async fn good_client_round(agent: &Agent, n: usize) {
    publish(agent, draft(n))
        .await
        .expect("a good client is served during the flood");
    pb::key_directory_client::KeyDirectoryClient::new(agent.channel().await.unwrap())
        .list_keys(pb::ListKeysRequest {})
        .await
        .expect("a good client reads the directory during the flood");
}

/// Writes `frames` (from `next`) until `limit` bytes are sent or the hub
/// closes the connection; returns the bytes sent.
async fn flood(
    wr: &mut tokio::io::WriteHalf<tokio_openssl::SslStream<tokio::net::TcpStream>>,
    observed: &std::sync::Mutex<Observed>,
    limit: usize,
    mut next: impl FnMut() -> Vec<u8>,
) -> usize {
    let mut sent = 0;
    let mut buf = Vec::with_capacity(64 * 1024);
    while sent < limit && !observed.lock().unwrap().closed {
        buf.clear();
        while buf.len() < 32 * 1024 {
            buf.extend_from_slice(&next());
        }
        sent += buf.len();
        if wr.write_all(&buf).await.is_err() {
            break;
        }
    }
    let _ = wr.flush().await;
    sent
}

/// Waits (bounded, not asserted in time) for the reader to see the close.
async fn wait_closed(observed: &std::sync::Mutex<Observed>) -> bool {
    for _ in 0..600 {
        if observed.lock().unwrap().closed {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// CONTINUATION flood (CVE-2024-27316 family): HEADERS without END_HEADERS,
/// then CONTINUATION frames forever. The hub must cut the connection long
/// before it has buffered much, and keep serving a good client meanwhile.
#[tokio::test]
async fn http2_continuation_flood_is_cut_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, alice) = hub_process_with_agent(dir.path()).await;
    let pid = hub.child.id();
    let (rss_before, _) = rss_kib(pid);
    let (mut wr, observed, reader) = raw_h2(&hub.addr, &alice).await;
    let authority = format!("localhost:{}", hub.addr.rsplit(':').next().unwrap());
    let block = h2raw::grpc_request_block(&authority, "/isac.v1.KeyDirectory/ListKeys");
    wr.write_all(&h2raw::frame(h2raw::HEADERS, 0, 1, &block))
        .await
        .unwrap();
    let fragment = h2raw::filler_headers(16 * 1024 - 16);
    let attack = tokio::spawn(async move {
        let limit = 256 << 20;
        let sent = flood(&mut wr, &observed, limit, || {
            h2raw::frame(h2raw::CONTINUATION, 0, 1, &fragment)
        })
        .await;
        let closed = wait_closed(&observed).await;
        let goaway = observed.lock().unwrap().goaway;
        (sent, closed, goaway)
    });
    for n in 1..=5 {
        good_client_round(&alice, n).await;
    }
    let (sent, closed, goaway) = attack.await.unwrap();
    reader.abort();
    let (rss_after, peak) = rss_kib(pid);
    eprintln!(
        "CONTINUATION flood: {} KiB sent before the hub cut it (GOAWAY {goaway:?}); hub RSS {rss_before} -> {rss_after} KiB, peak {peak} KiB",
        sent / 1024
    );
    assert!(closed, "the hub never closed a CONTINUATION flood");
    assert!(sent < 256 << 20, "the hub read 256 MiB of one header block");
    assert!(
        rss_after.saturating_sub(rss_before) < MAX_GROWTH_KIB,
        "hub RSS grew from {rss_before} to {rss_after} KiB"
    );
    good_client_round(&alice, 6).await;
    stop_process(hub, alice).await;
}

/// PING flood (CVE-2019-9512): hundreds of thousands of PINGs. The hub
/// answers or sheds them, stays within bounded memory, and serves others.
#[tokio::test]
async fn http2_ping_flood_keeps_memory_bounded_and_others_served() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, alice) = hub_process_with_agent(dir.path()).await;
    let pid = hub.child.id();
    let (rss_before, _) = rss_kib(pid);
    let (mut wr, observed, reader) = raw_h2(&hub.addr, &alice).await;
    let attack = tokio::spawn(async move {
        let mut n = 0u64;
        let sent = flood(&mut wr, &observed, 200_000 * 17, || {
            n += 1;
            h2raw::frame(h2raw::PING, 0, 0, &n.to_be_bytes())
        })
        .await;
        let o = observed.lock().unwrap();
        (sent / 17, o.ping_acks, o.closed, o.goaway)
    });
    for n in 1..=5 {
        good_client_round(&alice, n).await;
    }
    let (pings, acks, closed, goaway) = attack.await.unwrap();
    reader.abort();
    let (rss_after, peak) = rss_kib(pid);
    eprintln!(
        "PING flood: {pings} sent, {acks} answered, closed by hub: {closed} (GOAWAY {goaway:?}); hub RSS {rss_before} -> {rss_after} KiB, peak {peak} KiB"
    );
    assert!(
        acks > 0 || closed,
        "the hub neither answered nor shed the PINGs"
    );
    assert!(
        rss_after.saturating_sub(rss_before) < MAX_GROWTH_KIB,
        "hub RSS grew from {rss_before} to {rss_after} KiB"
    );
    good_client_round(&alice, 6).await;
    stop_process(hub, alice).await;
}

/// Empty DATA frames without END_STREAM (CVE-2019-9518, RUSTSEC-2026-0258 /
/// GHSA-q83h-524g-xf6h in h2 < 0.4.16): a million of them on one open
/// request. The hub sheds the connection (GOAWAY ENHANCE_YOUR_CALM), stays
/// within bounded memory, and serves others.
#[tokio::test]
async fn http2_empty_data_frame_flood_keeps_memory_bounded_and_others_served() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, alice) = hub_process_with_agent(dir.path()).await;
    let pid = hub.child.id();
    let (rss_before, _) = rss_kib(pid);
    let (mut wr, observed, reader) = raw_h2(&hub.addr, &alice).await;
    let authority = format!("localhost:{}", hub.addr.rsplit(':').next().unwrap());
    let block = h2raw::grpc_request_block(&authority, "/isac.v1.Publisher/Publish");
    wr.write_all(&h2raw::frame(h2raw::HEADERS, h2raw::END_HEADERS, 1, &block))
        .await
        .unwrap();
    let attack = tokio::spawn(async move {
        let sent = flood(&mut wr, &observed, 1_000_000 * 9, || {
            h2raw::frame(h2raw::DATA, 0, 1, &[])
        })
        .await;
        let closed = wait_closed(&observed).await;
        let goaway = observed.lock().unwrap().goaway;
        (sent / 9, closed, goaway)
    });
    for n in 1..=5 {
        good_client_round(&alice, n).await;
    }
    let (frames, closed, goaway) = attack.await.unwrap();
    reader.abort();
    let (rss_after, peak) = rss_kib(pid);
    eprintln!(
        "empty DATA flood: {frames} frames sent, closed by hub: {closed} (GOAWAY {goaway:?}); hub RSS {rss_before} -> {rss_after} KiB, peak {peak} KiB"
    );
    // h2 >= 0.4.16 counts them and answers ENHANCE_YOUR_CALM.
    assert!(closed, "the hub never shed an empty-DATA flood");
    assert!(
        rss_after.saturating_sub(rss_before) < MAX_GROWTH_KIB,
        "hub RSS grew from {rss_before} to {rss_after} KiB"
    );
    good_client_round(&alice, 6).await;
    stop_process(hub, alice).await;
}

/// The h2 in the lock file has the empty-DATA-frame fix (RUSTSEC-2026-0258,
/// fixed in 0.4.16), the CONTINUATION-flood fix (0.4.4) and the rapid-reset
/// fixes; a downgrade fails this test.
#[test]
fn the_locked_h2_has_the_http2_flood_fixes() {
    let lock = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"),
    )
    .unwrap();
    let mut versions = Vec::new();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"h2\"" {
            let v = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|l| l.strip_suffix('"'))
                .expect("version after name");
            versions.push(v.to_owned());
        }
    }
    assert!(!versions.is_empty(), "no h2 in Cargo.lock");
    for v in versions {
        let parts: Vec<u64> = v.split('.').map(|p| p.parse().unwrap()).collect();
        assert!(
            parts[0] > 0 || parts[1] > 4 || (parts[1] == 4 && parts[2] >= 16),
            "Cargo.lock has h2 {v}; RUSTSEC-2026-0258 needs >= 0.4.16"
        );
    }
}

/// Connections reset during accept or the TLS handshake, and handshakes
/// that fail (certificate from another CA, plain TCP hang-ups), never stop
/// the listener (tonic CVE-2024-47609: an error from the incoming stream
/// ended `serve_with_incoming`).
#[tokio::test]
async fn resets_and_tls_errors_during_accept_never_stop_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    for round in 0..3 {
        // RST right after connect, before the hub reads anything.
        for _ in 0..100 {
            let s = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
            s.set_zero_linger().unwrap();
            drop(s);
        }
        // RST in the middle of the handshake.
        for _ in 0..100 {
            let mut s = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
            let _ = s
                .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03])
                .await;
            s.set_zero_linger().unwrap();
            drop(s);
        }
        // Full handshakes that fail: a certificate from another CA.
        let (cert, key) = foreign_client_identity();
        for _ in 0..10 {
            if let Ok(ch) = raw_channel(&hub, Some((&cert, &key))).await {
                let _ = pb::key_directory_client::KeyDirectoryClient::new(ch)
                    .list_keys(pb::ListKeysRequest {})
                    .await
                    .map(|_| panic!("a foreign certificate was served"));
            }
        }
        publish(&alice, draft(round))
            .await
            .expect("the listener still accepts after resets and TLS errors");
        // A brand-new connection (not the agent's pooled one) still works.
        let (cert, key) = (alice.loaded.tls_cert.clone(), alice.loaded.tls_key.clone());
        let ch = raw_channel(&hub, Some((&cert, &key))).await.unwrap();
        pb::key_directory_client::KeyDirectoryClient::new(ch)
            .list_keys(pb::ListKeysRequest {})
            .await
            .expect("a new connection is accepted");
    }
    hub.stop().await;
}

// === disk full ===

/// A small tmpfs mounted for one test, unmounted on drop.
struct SmallFs {
    path: std::path::PathBuf,
}

impl SmallFs {
    /// Mounts a tmpfs of `size` (e.g. "16m") at a new directory under
    /// `parent`; `Err` with the reason when this machine does not allow it.
    fn mount(parent: &std::path::Path, size: &str) -> Result<SmallFs, String> {
        let path = parent.join("smallfs");
        std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallFs { path })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// Writes a file until the filesystem refuses another byte; returns its size.
fn fill(path: &std::path::Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let mut written = 0u64;
    for chunk in [64 * 1024, 4096, 1] {
        let buf = vec![0xa5u8; chunk];
        while f.write_all(&buf).is_ok() {
            written += chunk as u64;
        }
    }
    let _ = f.sync_all();
    written
}

/// Disk full: publishers get UNAVAILABLE with a message a person can act
/// on, the hub process keeps running, nothing acknowledged is lost, nothing
/// refused is stored, and publishing works again once space returns; the
/// database passes `PRAGMA integrity_check`. Runs on a small tmpfs (needs
/// root or CAP_SYS_ADMIN; skipped, with the reason printed, where mounting
/// fails).
#[tokio::test]
async fn disk_full_answers_unavailable_and_the_hub_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let fs = match SmallFs::mount(dir.path(), "24m") {
        Ok(fs) => fs,
        Err(reason) => {
            eprintln!("SKIPPED disk_full test: {reason}");
            return;
        }
    };
    let data = fs.path.join("hub");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let state = dir.path().join("alice");
    enroll_with_cli(&data, &hub.url(), "alice-bank", None, &state);
    let alice = Agent::open(&member_agent::StateDir::new(&state)).unwrap();
    let mut acked = vec![publish(&alice, draft(0)).await.unwrap().id];

    let filler = fs.path.join("filler");
    let filled = fill(&filler);
    eprintln!("disk full: filled {} KiB", filled / 1024);
    // Publish until the hub runs out of room (the WAL may have some left).
    let mut refused = None;
    let mut refused_id = None;
    for n in 1..20_000 {
        let prepared = draft(n)
            .into_prepared(
                "alice-bank",
                isac_core::time::format_rfc3339(member_agent::now()),
            )
            .unwrap();
        let id = prepared.statement.id.to_string();
        match member_agent::publish::publish_prepared(&alice, &prepared).await {
            Ok(p) => acked.push(p.id),
            Err(member_agent::AgentError::Hub { code, message }) => {
                refused = Some(tonic::Status::new(code, message));
                refused_id = Some(id);
                break;
            }
            Err(e) => panic!("publish failed without a status: {e}"),
        }
    }
    let status = refused.expect("the hub never ran out of space");
    eprintln!(
        "disk full after {} publishes: {:?} {}",
        acked.len(),
        status.code(),
        status.message()
    );
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("disk") && status.message().contains("retry"),
        "not a message a person can act on: {}",
        status.message()
    );
    // Still full: still a clear refusal, and the process is alive.
    let again = publish(&alice, draft(100_000))
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("disk"), "{again}");
    let mut hub = hub;
    assert!(
        hub.child.try_wait().unwrap().is_none(),
        "the hub exited on a full disk"
    );

    // Space returns: publishing works again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let mut recovered = None;
    for n in 0..200 {
        match publish(&alice, draft(200_000 + n)).await {
            Ok(p) => {
                recovered = Some(p.id);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    acked.push(recovered.expect("publishing never recovered after space returned"));
    for n in 1..=20 {
        acked.push(publish(&alice, draft(300_000 + n)).await.unwrap().id);
    }
    // Readers see every acknowledged item, in order, once.
    let mut s = raw_subscribe(&alice).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < acked.len() {
        match s.message().await.unwrap().and_then(|m| m.event) {
            Some(pb::subscribe_response::Event::Item(d)) => {
                let payload = d.envelope.expect("envelope").payload;
                let statement = isac_core::Statement::from_canonical_bytes(&payload).unwrap();
                seen.push(statement.id.to_string());
            }
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(seen, acked, "every acknowledged item, in order, once");
    drop(s);
    stop_process(hub, alice).await;

    let conn = rusqlite::Connection::open(data.join("hub.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    for id in &acked {
        let n: i64 = conn
            .query_row("SELECT count(*) FROM statements WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1, "acknowledged {id} lost");
    }
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM statements WHERE id = ?1",
            [refused_id.unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0, "a refused statement was stored");
    drop(conn);
    drop(fs);
}

// === health checking and reflection on the gRPC listener ===

/// `grpc.health.v1` answers SERVING for the hub and each service, also to a
/// probe without a client certificate; it answers NOT_FOUND for unknown
/// services; `Watch` sees NOT_SERVING when the hub shuts down.
#[tokio::test]
async fn grpc_health_reports_serving_then_not_serving_on_shutdown() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    // A probe with no client certificate (as load balancers send).
    let mut probe = HealthClient::new(raw_channel(&hub, None).await.unwrap());
    for service in hub::ops::SERVICES {
        let r = probe
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?}: {e}"))
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = probe
        .check(HealthCheckRequest {
            service: "isac.v1.NoSuchService".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let mut watch = probe
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let stopping = tokio::spawn(hub.stop());
    let mut saw_not_serving = false;
    // The watch stays open: the hub must end it rather than wait for us.
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(m)) = watch.message().await {
            if m.status == ServingStatus::NotServing as i32 {
                saw_not_serving = true;
            }
        }
    })
    .await;
    assert!(saw_not_serving, "the health watch never saw NOT_SERVING");
    assert!(
        ended.is_ok(),
        "an open health watch held the hub's shutdown"
    );
    tokio::time::timeout(Duration::from_secs(60), stopping)
        .await
        .expect("the hub stopped with a health watcher connected")
        .unwrap();
    drop(probe);
}

/// Server reflection lists `isac.v1` and `grpc.health.v1` services and
/// serves their descriptors (what grpcurl needs) to an enrolled agent, and
/// refuses a caller without a client certificate.
#[tokio::test]
async fn grpc_reflection_serves_the_schema_to_enrolled_agents_only() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let ask = |m: MessageRequest| {
        tokio_stream_once(ServerReflectionRequest {
            host: String::new(),
            message_request: Some(m),
        })
    };
    let mut client = ServerReflectionClient::new(alice.channel().await.unwrap());
    let mut answers = client
        .server_reflection_info(ask(MessageRequest::ListServices(String::new())))
        .await
        .unwrap()
        .into_inner();
    let listed = match answers.message().await.unwrap().unwrap().message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
        }
        other => panic!("unexpected answer {other:?}"),
    };
    for name in hub::ops::SERVICES.iter().filter(|s| !s.is_empty()) {
        assert!(listed.iter().any(|l| l == name), "{name} not in {listed:?}");
    }
    assert!(
        listed.iter().any(|l| l == "grpc.health.v1.Health"),
        "{listed:?}"
    );
    let mut answers = client
        .server_reflection_info(ask(MessageRequest::FileContainingSymbol(
            "isac.v1.Publisher".into(),
        )))
        .await
        .unwrap()
        .into_inner();
    match answers.message().await.unwrap().unwrap().message_response {
        Some(MessageResponse::FileDescriptorResponse(f)) => {
            assert!(!f.file_descriptor_proto.is_empty());
            let text = String::from_utf8_lossy(&f.file_descriptor_proto[0]).into_owned();
            assert!(text.contains("PublishBatch"), "descriptor lacks the RPCs");
        }
        other => panic!("unexpected answer {other:?}"),
    }
    // No client certificate: refused, with a reason.
    let mut anonymous = ServerReflectionClient::new(raw_channel(&hub, None).await.unwrap());
    let refused = match anonymous
        .server_reflection_info(ask(MessageRequest::ListServices(String::new())))
        .await
    {
        Err(status) => status,
        Ok(r) => r.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("client certificate"));
    hub.stop().await;
}

/// A request stream of one message.
fn tokio_stream_once<T: Send + 'static>(item: T) -> impl tokio_stream::Stream<Item = T> {
    tokio_stream::iter(std::iter::once(item))
}

// === Prometheus metrics ===

/// The value of one sample line (`name{labels} value`) in an exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Scraping the real metrics listener: publishes accepted, refusals by
/// code, deliveries, open streams, per-member ack lag and the store commit
/// histogram move as the hub works; the text is valid exposition format;
/// nothing about an item (ids, titles, TLP) appears.
#[tokio::test]
async fn prometheus_metrics_count_what_the_hub_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = configured(
        dir.path(),
        r#"{"publish_rate_per_s": 1, "publish_burst": 3}"#,
    );
    let hub = TestHub::start(&data).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let (status, before) = hub.scrape_metrics().await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(sample(&before, "isac_publish_accepted_total"), Some(0.0));
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(publish(&alice, draft(n)).await.unwrap().id);
    }
    // Over the rate: RESOURCE_EXHAUSTED, counted by code.
    assert!(publish(&alice, draft(3)).await.is_err());
    // Bob syncs (three deliveries) and keeps a stream open.
    let mut sink = member_agent::Sinks::jsonl(Some(&dir.path().join("bob.jsonl"))).unwrap();
    let report = bob.sync(false, &mut sink).await.unwrap();
    assert_eq!(report.new, 3);
    let mut open = raw_subscribe(&bob).await.unwrap();
    let _ = open.message().await.unwrap();
    // Acknowledgements are written by the hub's writer; wait for Bob's.
    let mut text = String::new();
    for _ in 0..200 {
        text = hub.scrape_metrics().await.1;
        if sample(&text, "isac_member_ack_lag{org=\"bob-bank\"}") == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sample(&text, "isac_publish_accepted_total"), Some(3.0));
    assert_eq!(
        sample(
            &text,
            "isac_publish_refused_total{code=\"RESOURCE_EXHAUSTED\"}"
        ),
        Some(1.0)
    );
    assert!(sample(&text, "isac_deliveries_total").unwrap() >= 3.0);
    assert_eq!(sample(&text, "isac_open_streams"), Some(1.0));
    assert_eq!(sample(&text, "isac_head_sequence"), Some(3.0));
    // Bob acknowledged everything; Alice's agent never subscribed.
    assert_eq!(
        sample(&text, "isac_member_ack_lag{org=\"bob-bank\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "isac_member_ack_lag{org=\"alice-bank\"}"),
        Some(3.0)
    );
    let commits = sample(&text, "isac_store_commit_seconds_count").unwrap();
    assert!(commits >= 3.0, "{commits}");
    assert_eq!(
        sample(&text, "isac_store_commit_seconds_bucket{le=\"+Inf\"}"),
        Some(commits)
    );
    // Exposition format: every sample has a TYPE; no item details.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            text.contains(&format!("# TYPE {family} "))
                || text.contains(&format!("# TYPE {name} ")),
            "no TYPE for {line}"
        );
    }
    for id in &ids {
        assert!(
            !text.contains(id.as_str()),
            "an item id leaked into metrics"
        );
    }
    assert!(!text.contains("item 0") && !text.to_lowercase().contains("green"));
    drop(open);
    hub.stop().await;
}

/// The real binary: `hub serve --metrics-listen 127.0.0.1:0` prints where
/// it listens and serves `/metrics` there; other paths are 404; a bad
/// address is a usage error (exit 64) that says which flag is wrong.
#[test]
fn hub_serve_metrics_listen_flag_serves_metrics_and_bad_values_exit_64() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let out = bin("hub")
        .arg("--data-dir")
        .arg(dir.path().join("bad"))
        .args(["serve", "--metrics-listen", "not-an-address"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("--metrics-listen"), "{err}");
    let mut child = bin("hub")
        .arg("--data-dir")
        .arg(dir.path().join("hub"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--taxii-listen",
            "off",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut metrics = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("metrics listening on http://") {
            metrics = Some(rest.split('/').next().unwrap().to_owned());
        }
        if line.starts_with("hub listening on ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let metrics = metrics.expect("no `metrics listening on` line");
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(&metrics).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let page = get("/metrics");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("text/plain; version=0.0.4"), "{page}");
    assert!(page.contains("isac_publish_accepted_total 0"), "{page}");
    assert!(get("/").starts_with("HTTP/1.1 404"));
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    assert!(child.wait().unwrap().success(), "SIGTERM is a clean stop");
}

// === connections: caps, and idle connections without a certificate ===

/// A TLS handshake to `addr` without a client certificate (ALPN h2), from
/// the local address `from` (every 127.x address is loopback, so a test can
/// play several sources). `Err` when the hub closed it before or during the
/// handshake.
async fn no_cert_tls(
    addr: std::net::SocketAddr,
    from: &str,
) -> Result<tokio_openssl::SslStream<tokio::net::TcpStream>, String> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_alpn_protos(b"\x02h2").unwrap();
    b.set_verify(SslVerifyMode::NONE);
    let ssl = b
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    let tcp = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    std::pin::Pin::new(&mut tls)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(tls)
}

/// Reads (and discards) until the hub closes `tls`; false if it is still
/// open after `within` (a generous bound, not a measurement).
async fn closed_by_hub(
    tls: &mut tokio_openssl::SslStream<tokio::net::TcpStream>,
    within: Duration,
) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        while let Ok(n) = tls.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .is_ok()
}

/// Scrapes until `series` satisfies `ok` (bounded); returns its last value.
async fn metric_eventually(hub: &TestHub, series: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let mut last = f64::NAN;
    for _ in 0..300 {
        last = sample(&hub.scrape_metrics().await.1, series).unwrap_or(f64::NAN);
        if ok(last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// Issue 15 item 9: TLS connections without a client certificate, idle
/// after the handshake, were never closed. They can only enroll (or ask for
/// health), so the hub closes one once no request has been in flight on it
/// for `no_cert_idle_timeout_secs` (1 s here): right after the handshake,
/// and after a request has been answered. A member's idle connection stays.
#[tokio::test]
async fn idle_connections_without_a_client_certificate_are_closed_by_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let data = configured(dir.path(), r#"{"no_cert_idle_timeout_secs": 1}"#);
    let hub = TestHub::start(&data).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    publish(&alice, draft(0)).await.unwrap();
    // A member's connection, as idle as the others (preface and SETTINGS).
    let (_member_wr, member_conn, _member_reader) = raw_h2(&hub.addr.to_string(), &alice).await;

    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(no_cert_tls(hub.addr, "127.0.0.1").await.expect("handshake"));
    }
    // One that asks for health first (a real gRPC request over raw HTTP/2)
    // and reads the whole answer before going idle.
    let mut asked = no_cert_tls(hub.addr, "127.0.0.1").await.expect("handshake");
    {
        use tokio::io::AsyncReadExt;
        let mut out = h2raw::PREFACE.to_vec();
        out.extend(h2raw::frame(h2raw::SETTINGS, 0, 0, &[]));
        out.extend(h2raw::frame(h2raw::SETTINGS, h2raw::ACK, 0, &[]));
        out.extend(h2raw::frame(
            h2raw::HEADERS,
            h2raw::END_HEADERS,
            1,
            &h2raw::grpc_request_block("localhost", "/grpc.health.v1.Health/Check"),
        ));
        // An empty HealthCheckRequest, END_STREAM.
        out.extend(h2raw::frame(h2raw::DATA, 0x1, 1, &[0, 0, 0, 0, 0]));
        asked.write_all(&out).await.unwrap();
        let mut answered = false;
        let mut head = [0u8; 9];
        while asked.read_exact(&mut head).await.is_ok() {
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            asked.read_exact(&mut payload).await.unwrap();
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
            // The trailers: HEADERS on stream 1 with END_STREAM.
            if head[3] == h2raw::HEADERS && stream == 1 && head[4] & 0x1 != 0 {
                answered = true;
                break;
            }
        }
        assert!(answered, "the health check was answered");
    }

    for (i, conn) in idle.iter_mut().enumerate() {
        assert!(
            closed_by_hub(conn, Duration::from_secs(30)).await,
            "idle connection {i} without a certificate is still open"
        );
    }
    assert!(
        closed_by_hub(&mut asked, Duration::from_secs(30)).await,
        "the connection that asked for health is still open"
    );
    assert!(
        !member_conn.lock().unwrap().closed,
        "a member's idle connection is not closed"
    );
    let closed = metric_eventually(
        &hub,
        "isac_no_cert_connections_closed_total{reason=\"idle\"}",
        |v| v >= 21.0,
    )
    .await;
    assert!(closed >= 21.0, "{closed}");
    publish(&alice, draft(1))
        .await
        .expect("the member is still served");
    hub.stop().await;
}

/// Issue 15 item 9: a source opening more certificate-less TLS connections
/// than `max_connections_per_source` (20 here) is refused right after
/// accept, before the handshake, and the refusals are counted; a member at
/// another address keeps publishing and syncing throughout; once the
/// flood's connections close, the source is accepted again.
#[tokio::test]
async fn a_connection_flood_from_one_source_is_capped_while_a_member_keeps_working() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    // Long no-certificate timeouts: the flood's connections stay open until
    // the test closes them.
    let data = configured(
        dir.path(),
        r#"{"max_connections_per_source": 20, "max_connections_total": 500,
            "no_cert_idle_timeout_secs": 600, "no_cert_max_age_secs": 3600}"#,
    );
    let hub = TestHub::start(&data).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let synced = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (stop, published) = (stop.clone(), published.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                publish(&alice, draft(n))
                    .await
                    .expect("the member publishes during the flood");
                published.fetch_add(1, Ordering::SeqCst);
                n += 1;
                // A member's steady pace, not a flood of its own.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let syncer = {
        let (stop, synced) = (stop.clone(), synced.clone());
        let sink_path = dir.path().join("bob.jsonl");
        tokio::spawn(async move {
            let mut sink = member_agent::Sinks::jsonl(Some(&sink_path)).unwrap();
            while !stop.load(Ordering::SeqCst) {
                let r = bob
                    .sync(false, &mut sink)
                    .await
                    .expect("the member syncs during the flood");
                synced.fetch_add(r.new, Ordering::SeqCst);
                // A member's steady pace, not a flood of its own.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // The flood, from 127.0.0.2: one at a time, so the count is exact.
    let attacker = "127.0.0.2";
    let before = (
        published.load(Ordering::SeqCst),
        synced.load(Ordering::SeqCst),
    );
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..60 {
        match no_cert_tls(hub.addr, attacker).await {
            Ok(c) => held.push(c),
            Err(_) => refused += 1,
        }
    }
    assert_eq!((held.len(), refused), (20, 40));
    // Keep knocking (each one refused) until the member has done more work.
    let mut rounds = 0;
    while published.load(Ordering::SeqCst) < before.0 + 10
        || synced.load(Ordering::SeqCst) < before.1 + 10
    {
        assert!(
            no_cert_tls(hub.addr, attacker).await.is_err(),
            "over the cap, a connection is refused"
        );
        refused += 1;
        rounds += 1;
        assert!(
            rounds < 3_000,
            "the member made no progress during the flood"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, text) = hub.scrape_metrics().await;
    assert_eq!(
        sample(
            &text,
            "isac_connections_refused_total{listener=\"grpc\",reason=\"per_source\"}"
        ),
        Some(refused as f64),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "isac_connections_refused_total{listener=\"grpc\",reason=\"total\"}"
        ),
        Some(0.0)
    );
    let open = sample(&text, "isac_open_connections{listener=\"grpc\"}").unwrap();
    assert!(open >= 20.0, "{open}");
    // The held connections were never cut: they are still open.
    for conn in &mut held {
        use tokio::io::AsyncReadExt;
        let mut b = [0u8; 1];
        let still_open = tokio::time::timeout(Duration::from_millis(1), conn.read(&mut b))
            .await
            .map_or(true, |r| matches!(r, Ok(n) if n > 0));
        assert!(still_open, "an accepted connection was closed");
    }

    // The flood ends: the source is accepted again.
    drop(held);
    let mut back = None;
    for _ in 0..300 {
        if let Ok(c) = no_cert_tls(hub.addr, attacker).await {
            back = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back.is_some(), "the source is never accepted again");
    // Closed before the hub stops: a connection that never sent the HTTP/2
    // preface holds a graceful stop until its idle timeout.
    drop(back);
    stop.store(true, Ordering::SeqCst);
    publisher.await.unwrap();
    syncer.await.unwrap();
    hub.stop().await;
}

/// The total cap counts every source: over it, a connection from anywhere
/// is refused before the handshake (reason "total"), until one closes.
#[tokio::test]
async fn the_total_connection_cap_refuses_every_source_until_a_connection_closes() {
    let dir = tempfile::tempdir().unwrap();
    let data = configured(
        dir.path(),
        r#"{"max_connections_per_source": 5, "max_connections_total": 12,
            "no_cert_idle_timeout_secs": 600, "no_cert_max_age_secs": 3600}"#,
    );
    let hub = TestHub::start(&data).await;
    // The harness's readiness probe has gone.
    let open = metric_eventually(&hub, "isac_open_connections{listener=\"grpc\"}", |v| {
        v == 0.0
    })
    .await;
    assert_eq!(open, 0.0);
    let mut held = Vec::new();
    let mut refused_from = Vec::new();
    for host in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        for _ in 0..5 {
            match no_cert_tls(hub.addr, host).await {
                Ok(c) => held.push(c),
                Err(_) => refused_from.push(host),
            }
        }
    }
    assert_eq!(held.len(), 12);
    assert_eq!(refused_from, ["127.0.0.4"; 3]);
    assert!(no_cert_tls(hub.addr, "127.0.0.5").await.is_err());
    let (_, text) = hub.scrape_metrics().await;
    assert_eq!(
        sample(
            &text,
            "isac_connections_refused_total{listener=\"grpc\",reason=\"total\"}"
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "isac_open_connections{listener=\"grpc\"}"),
        Some(12.0)
    );
    held.truncate(11);
    let mut accepted = false;
    for _ in 0..300 {
        if no_cert_tls(hub.addr, "127.0.0.5").await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(accepted, "a closed connection frees its place");
    drop(held);
    hub.stop().await;
}
