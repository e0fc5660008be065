//! The hub's gRPC and TLS side attacked from outside, against real `hub
//! serve` processes and agents enrolled through the real path: oversized
//! messages and metadata, stream floods, clients that stall their streams
//! or trickle a header block, malformed cursors, garbage TLS. Each test is
//! the defect it found, or a guard on a limit that held. (The HTTP/2 flood
//! family, rapid reset, CONTINUATION, PING, empty DATA, is in
//! `hardening.rs`.)

use std::path::Path;
use std::time::Duration;

use isac_e2e::*;
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::publish;
use member_agent::Agent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

fn draft(n: usize) -> IndicatorDraft {
    IndicatorDraft {
        purl: Some(format!("pkg:npm/hostile-grpc-{n}@1.0.0")),
        tlp: Some("green".into()),
        title: Some(format!("item {n}")),
        ..Default::default()
    }
}

/// A `hub serve` process configured by `toml` (its `hub.toml`), with an
/// agent enrolled through the CLI for each of `orgs`.
fn hub_with(dir: &Path, toml: &str, orgs: &[&str]) -> (HubProcess, Vec<Agent>) {
    let data = dir.join("hub");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hub.toml"), toml).unwrap();
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let agents = orgs
        .iter()
        .map(|org| {
            let state = dir.join(org);
            enroll_with_cli(&data, &hub.url(), org, None, &state);
            Agent::open(&member_agent::StateDir::new(&state)).unwrap()
        })
        .collect();
    (hub, agents)
}

fn stored(dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("hub").join("hub.db")).unwrap();
    conn.query_row("SELECT count(*) FROM statements", [], |r| r.get(0))
        .unwrap()
}

/// Resident memory of a process in KiB (/proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Open sockets of a process (/proc/PID/fd entries that are sockets: a
/// leaked connection is one; the store may open files lazily meanwhile,
/// a reader connection being two more descriptors).
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t.to_string_lossy().starts_with("socket:"))
        .count()
}

/// What each open descriptor of a process is (for a failure message).
fn fd_targets(pid: u32) -> String {
    let mut targets: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| t.display().to_string())
        .collect();
    targets.sort();
    targets.join(", ")
}

/// Generous: a buffered 100 MB message, or 400 streams' worth of pages,
/// would be far above it.
const MAX_GROWTH_KIB: u64 = 64 * 1024;

/// SIGTERM, and the process must have exited within a generous bound
/// (its drain is 10 s).
async fn stop_within(hub: HubProcess, agents: Vec<Agent>) {
    drop(agents);
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || hub.terminate()),
    )
    .await
    .expect("the hub stops within its drain while hostile clients hold connections")
    .unwrap();
}

/// A `Publish` whose encoded request is at least `size` bytes (the payload
/// is never looked at: the size is refused first).
fn publish_of_size(size: usize) -> pb::PublishRequest {
    pb::PublishRequest {
        envelope: Some(pb::Envelope {
            payload_type: isac_core::PAYLOAD_TYPE_STATEMENT_V1.into(),
            payload: vec![b'a'; size],
            signatures: vec![],
        }),
        audience_openings: vec![],
        scrub_overrides: vec![],
    }
}

fn subscribe_request(cursor: Vec<u8>, follow: bool) -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        after_sequence: 0,
        follow,
        filter: None,
        include_expired: false,
        cursor,
    }
}

/// A 100 MB Publish and one a byte over `max_message_bytes`, a 1 MiB
/// cursor: tonic answered OUT_OF_RANGE "Error, decoded message length too
/// large" (gRPC servers answer RESOURCE_EXHAUSTED for this, and the text
/// named no setting). Now RESOURCE_EXHAUSTED naming the limit and what
/// sets it; the hub never buffers the message and stores nothing.
#[tokio::test]
async fn oversized_messages_are_resource_exhausted_unbuffered_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, agents) = hub_with(dir.path(), "max_message_bytes = 65536\n", &["alice-bank"]);
    let alice = &agents[0];
    publish(alice, draft(0)).await.unwrap();
    let pid = hub.child.id();
    let before = stored(dir.path());
    let rss_before = rss_kib(pid);
    let channel = alice.channel().await.unwrap();
    let mut publisher = pb::publisher_client::PublisherClient::new(channel.clone());
    for size in [65_537, 100 << 20] {
        let status = publisher.publish(publish_of_size(size)).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{size}: {status:?}");
        let m = status.message();
        assert!(
            m.contains("max_message_bytes") && m.contains("65536"),
            "{size}: {m}"
        );
        let batch = pb::PublishBatchRequest {
            items: vec![publish_of_size(size)],
        };
        let status = publisher.publish_batch(batch).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{size}: {status:?}");
    }
    // Fixed limits of the other services, e.g. Subscribe's 16 KiB.
    let status = pb::subscriber_client::SubscriberClient::new(channel.clone())
        .subscribe(subscribe_request(vec![7; 1 << 20], true))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("16384"), "{}", status.message());
    let rss_after = rss_kib(pid);
    eprintln!("oversized messages: hub RSS {rss_before} -> {rss_after} KiB");
    assert!(
        rss_after.saturating_sub(rss_before) < MAX_GROWTH_KIB,
        "hub RSS grew from {rss_before} to {rss_after} KiB: the message was buffered"
    );
    assert_eq!(stored(dir.path()), before, "something was stored");
    // The same connection still serves.
    publish(alice, draft(1))
        .await
        .expect("served after the refusals");
    stop_within(hub, agents).await;
}

/// 20 KiB of metadata, 1 MiB in one value, 10,000 headers: refused at the
/// HTTP/2 layer (`http2_max_header_list_size` 16 KiB; h2's default would
/// take 16 MiB), never buffered, and the member is served next.
#[tokio::test]
async fn huge_metadata_is_refused_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, agents) = hub_with(dir.path(), "", &["alice-bank"]);
    let alice = &agents[0];
    publish(alice, draft(0)).await.unwrap();
    let pid = hub.child.id();
    let rss_before = rss_kib(pid);
    let url = alice.hub_url().to_owned();
    let one_big = {
        let mut r = tonic::Request::new(pb::ListKeysRequest {});
        r.metadata_mut()
            .insert("x-pad", "a".repeat(1 << 20).parse().unwrap());
        r
    };
    let just_over = {
        let mut r = tonic::Request::new(pb::ListKeysRequest {});
        r.metadata_mut()
            .insert("x-pad", "a".repeat(20 * 1024).parse().unwrap());
        r
    };
    let many = {
        let mut r = tonic::Request::new(pb::ListKeysRequest {});
        for i in 0..10_000 {
            let key =
                tonic::metadata::MetadataKey::from_bytes(format!("x-h{i}").as_bytes()).unwrap();
            r.metadata_mut().insert(key, "v".parse().unwrap());
        }
        r
    };
    for (what, request) in [
        ("20 KiB value", just_over),
        ("1 MiB value", one_big),
        ("10,000 headers", many),
    ] {
        let channel = alice.connector().unwrap().connect(&url).await.unwrap();
        let answer = pb::key_directory_client::KeyDirectoryClient::new(channel)
            .list_keys(request)
            .await;
        eprintln!("{what}: {:?}", answer.as_ref().map(|_| ()));
        let status = answer.map(|_| ()).expect_err(what);
        // Over the 16 KiB header list but in few frames: h2 answers 431
        // (no gRPC status; the client names the HTTP status). Far over:
        // h2 sheds the whole connection (GOAWAY ENHANCE_YOUR_CALM).
        if what == "20 KiB value" {
            assert!(status.message().contains("431"), "{what}: {status:?}");
        }
    }
    let rss_after = rss_kib(pid);
    eprintln!("huge metadata: hub RSS {rss_before} -> {rss_after} KiB");
    assert!(
        rss_after.saturating_sub(rss_before) < MAX_GROWTH_KIB,
        "hub RSS grew from {rss_before} to {rss_after} KiB"
    );
    publish(alice, draft(1))
        .await
        .expect("served after the refusals");
    stop_within(hub, agents).await;
}

/// One `Subscribe` request in gRPC framing: `follow` set, no cursor.
fn grpc_subscribe_follow() -> Vec<u8> {
    // Field 2 (follow), varint 1.
    let message = [0x10, 0x01];
    let mut framed = vec![0];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    framed
}

/// TLS to `addr` with `agent`'s certificate, offering ALPN `alpn`.
async fn member_tls(
    addr: &str,
    agent: &Agent,
    alpn: &[u8],
) -> tokio_openssl::SslStream<tokio::net::TcpStream> {
    crate::hostile::tls_handshake(
        addr,
        Some((&agent.loaded.tls_cert, &agent.loaded.tls_key)),
        alpn,
    )
    .await
    .unwrap()
}

/// `n` Subscribe streams on one HTTP/2 connection of `agent` whose
/// windows are never opened (SETTINGS_INITIAL_WINDOW_SIZE 0, nothing ever
/// released): the hub can send their headers and nothing else. The h2
/// client answers the hub's keepalive PINGs, so only flow control stalls.
/// Returns what keeps them open.
async fn stalled_subscriptions(
    addr: &str,
    agent: &Agent,
    n: usize,
) -> (Vec<h2::RecvStream>, tokio::task::JoinHandle<()>) {
    use std::io::Cursor;
    let tls = member_tls(addr, agent, b"\x02h2").await;
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, Cursor<Vec<u8>>>(tls)
        .await
        .unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let port = addr.rsplit(':').next().unwrap();
    let mut client = client;
    let mut pending = Vec::new();
    for _ in 0..n {
        client = client.ready().await.unwrap();
        let req = http::Request::builder()
            .method("POST")
            .uri(format!(
                "https://localhost:{port}/isac.v1.Subscriber/Subscribe"
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (response, mut body) = client.send_request(req, false).unwrap();
        body.send_data(Cursor::new(grpc_subscribe_follow()), true)
            .unwrap();
        pending.push(response);
    }
    let mut open = Vec::new();
    for response in pending {
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers().get("grpc-status").is_none(),
            "refused: {:?}",
            response.headers()
        );
        open.push(response.into_body());
    }
    (open, driver)
}

/// A raw HTTP/2 connection under `agent`'s certificate that opens a
/// request's HEADERS without END_HEADERS and then trickles one small
/// CONTINUATION every 200 ms (a header slow loris), until the hub closes
/// it or the task is aborted.
async fn header_slowloris(addr: &str, agent: &Agent) -> tokio::task::JoinHandle<()> {
    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.push(kind);
        f.push(flags);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }
    let mut tls = member_tls(addr, agent, b"\x02h2").await;
    let path = b"/isac.v1.KeyDirectory/ListKeys";
    // :method POST, :scheme https, :path (literal, indexed name 4).
    let mut block = vec![0x83, 0x87, 0x04, path.len() as u8];
    block.extend_from_slice(path);
    let mut start = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    start.extend(frame(0x4, 0, 0, &[])); // SETTINGS
    start.extend(frame(0x4, 0x1, 0, &[])); // SETTINGS ACK
    start.extend(frame(0x1, 0, 1, &block)); // HEADERS, no END_HEADERS
    tls.write_all(&start).await.unwrap();
    tls.flush().await.unwrap();
    tokio::spawn(async move {
        for i in 0u32.. {
            // One literal header `x-N: v`, a valid HPACK fragment.
            let name = format!("x-{i}");
            let mut fragment = vec![0x00, name.len() as u8];
            fragment.extend_from_slice(name.as_bytes());
            fragment.extend_from_slice(&[1, b'v']);
            if tls.write_all(&frame(0x9, 0, 1, &fragment)).await.is_err()
                || tls.flush().await.is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// Reads `stream` until `n` items arrived (skipping other events).
async fn receive_items(stream: &mut tonic::Streaming<pb::SubscribeResponse>, n: usize) {
    let mut got = 0;
    while got < n {
        let message = tokio::time::timeout(Duration::from_secs(120), stream.message())
            .await
            .expect("deliveries keep flowing")
            .expect("stream ok")
            .expect("stream open");
        if let Some(pb::subscribe_response::Event::Item(_)) = message.event {
            got += 1;
        }
    }
}

/// Clients that stall: 100 Subscribe streams whose flow-control windows
/// are never opened (the hub's per-stream buffer fills and its task
/// waits), and connections trickling a header block one CONTINUATION at
/// a time. Another member still receives every item live, publishes are
/// acknowledged, and SIGTERM still ends the process within its drain.
#[tokio::test]
async fn stalled_streams_and_header_slowloris_neither_slow_others_nor_hold_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, agents) = hub_with(dir.path(), "", &["alice-bank", "bob-bank", "mallory-bank"]);
    let (alice, bob, mallory) = (&agents[0], &agents[1], &agents[2]);
    publish(alice, draft(0)).await.unwrap();
    let mut live = pb::subscriber_client::SubscriberClient::new(bob.channel().await.unwrap())
        .subscribe(subscribe_request(Vec::new(), true))
        .await
        .unwrap()
        .into_inner();
    receive_items(&mut live, 1).await;
    let (stalled, driver) = stalled_subscriptions(&hub.addr, mallory, 100).await;
    let mut loris = Vec::new();
    for _ in 0..10 {
        loris.push(header_slowloris(&hub.addr, mallory).await);
    }
    // Far more than a stream's buffer (64) and its page: every stalled
    // stream's task is blocked on its full channel.
    let n = 300;
    for i in 1..=n {
        publish(alice, draft(i))
            .await
            .expect("publishes are acknowledged while others stall");
    }
    receive_items(&mut live, n).await;
    pb::key_directory_client::KeyDirectoryClient::new(alice.channel().await.unwrap())
        .list_keys(pb::ListKeysRequest {})
        .await
        .expect("unary calls are served while others stall");
    // Stop with every stalled stream and trickling header block still open.
    stop_within(hub, agents).await;
    drop(stalled);
    driver.abort();
    for l in loris {
        l.abort();
    }
}

/// One member opens 400 concurrent Subscribe streams (over four
/// connections) against `max_streams_per_member = 300`: exactly 300 are
/// served, the rest refused with RESOURCE_EXHAUSTED naming the setting and
/// its value, and another member subscribes and receives meanwhile.
#[tokio::test]
async fn a_stream_flood_is_capped_per_member_naming_the_limit_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, agents) = hub_with(
        dir.path(),
        "max_streams_per_member = 300\n",
        &["alice-bank", "bob-bank"],
    );
    let (alice, bob) = (&agents[0], &agents[1]);
    publish(alice, draft(0)).await.unwrap();
    let url = alice.hub_url().to_owned();
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(alice.connector().unwrap().connect(&url).await.unwrap());
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..400 {
        let channel = channels[i % 4].clone();
        tasks.spawn(async move {
            pb::subscriber_client::SubscriberClient::new(channel)
                .subscribe(subscribe_request(Vec::new(), true))
                .await
                .map(|r| r.into_inner())
        });
    }
    let mut open = Vec::new();
    let mut refused = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            Ok(stream) => open.push(stream),
            Err(status) => refused.push(status),
        }
    }
    assert_eq!((open.len(), refused.len()), (300, 100));
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("max_streams_per_member = 300"),
            "{}",
            status.message()
        );
        assert!(status.metadata().get("retry-after-ms").is_some());
    }
    let mut live = pb::subscriber_client::SubscriberClient::new(bob.channel().await.unwrap())
        .subscribe(subscribe_request(Vec::new(), true))
        .await
        .expect("another member is served during the flood")
        .into_inner();
    receive_items(&mut live, 1).await;
    publish(alice, draft(1)).await.unwrap();
    receive_items(&mut live, 1).await;
    drop(open);
    stop_within(hub, agents).await;
}

/// The first CaughtUp cursor of a one-shot Subscribe (after `cursor`).
async fn caught_up_cursor(agent: &Agent) -> Vec<u8> {
    let mut s = pb::subscriber_client::SubscriberClient::new(agent.channel().await.unwrap())
        .subscribe(subscribe_request(Vec::new(), false))
        .await
        .unwrap()
        .into_inner();
    while let Some(m) = s.message().await.unwrap() {
        if let Some(pb::subscribe_response::Event::CaughtUp(c)) = m.event {
            return c.cursor;
        }
    }
    panic!("no CaughtUp");
}

/// Cursors a member did not get from this hub for this purpose: random
/// bytes, a truncated one, another member's, ones sealed for TAXII paging
/// or a peer's Follow, a large one. Subscribe answers FAILED_PRECONDITION
/// with an empty `x-isac-resume-cursor` (resume from the beginning, as
/// the agent does), Acknowledge INVALID_ARGUMENT, both saying the cursor
/// was not issued to this member; one over Subscribe's 16 KiB is
/// RESOURCE_EXHAUSTED. No cursor opens another member's position, and the
/// hub serves on.
#[tokio::test]
async fn malformed_and_foreign_cursors_are_refused_with_the_way_to_resume() {
    use hub::cursor::Purpose;
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    for n in 0..3 {
        publish(&alice, draft(n)).await.unwrap();
    }
    let own = caught_up_cursor(&alice).await;
    let bobs = caught_up_cursor(&bob).await;
    let (material, _) = hub::datadir::init(&hub.config.data_dir, &hub.config.server_names).unwrap();
    let mut random = vec![0u8; own.len()];
    openssl::rand::rand_bytes(&mut random).unwrap();
    let mut flipped = own.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", random),
        ("random long", vec![0x5a; 4000]),
        ("truncated", own[..own.len() - 1].to_vec()),
        ("one bit flipped", flipped),
        ("another member's", bobs.clone()),
        (
            "a TAXII next token",
            material.cursors.seal(Purpose::TaxiiNext, "alice-bank", 1),
        ),
        (
            "a peer's Follow cursor",
            material.cursors.seal(Purpose::Peer, "alice-bank", 1),
        ),
        ("a numeric position", 2u64.to_be_bytes().to_vec()),
    ];
    let channel = alice.channel().await.unwrap();
    for (what, cursor) in cases {
        let status = pb::subscriber_client::SubscriberClient::new(channel.clone())
            .subscribe(subscribe_request(cursor.clone(), true))
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::FailedPrecondition,
            "{what}: {status:?}"
        );
        assert!(
            status.message().contains("not issued to you by this hub")
                && status.message().contains("resume from the beginning"),
            "{what}: {}",
            status.message()
        );
        assert_eq!(
            status
                .metadata()
                .get("x-isac-resume-cursor")
                .map(|v| v.to_str().unwrap()),
            Some(""),
            "{what}"
        );
        let status = pb::subscriber_client::SubscriberClient::new(channel.clone())
            .acknowledge(pb::AckRequest {
                sequence: 0,
                cursor,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert!(
            status.message().contains("not issued to you by this hub"),
            "{what}: {}",
            status.message()
        );
    }
    let status = pb::subscriber_client::SubscriberClient::new(channel.clone())
        .subscribe(subscribe_request(vec![1; 64 * 1024], true))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // Bob's own cursor still works for Bob, and Alice's for Alice.
    for (agent, cursor) in [(&bob, bobs), (&alice, own)] {
        let mut s = pb::subscriber_client::SubscriberClient::new(agent.channel().await.unwrap())
            .subscribe(subscribe_request(cursor, false))
            .await
            .expect("an issued cursor opens")
            .into_inner();
        let first = s.message().await.unwrap().unwrap();
        assert!(
            matches!(
                first.event,
                Some(pb::subscribe_response::Event::CaughtUp(_))
            ),
            "nothing after the head: {first:?}"
        );
    }
    hub.stop().await;
}

/// A client certificate from the hub's own CA whose validity ended
/// yesterday.
fn expired_identity(
    data: &Path,
) -> (
    openssl::x509::X509,
    openssl::pkey::PKey<openssl::pkey::Private>,
) {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    let ca = openssl::x509::X509::from_pem(&std::fs::read(data.join("ca.crt")).unwrap()).unwrap();
    let ca_key =
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(data.join("ca.key")).unwrap())
            .unwrap();
    let key = hub::pki::generate_tls_key().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut b = openssl::x509::X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "alice-bank").unwrap();
    let name = name.build();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(ca.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(now - 2 * 86_400).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now - 86_400).unwrap())
        .unwrap();
    b.sign(&ca_key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

fn log_lines(log: &Path) -> usize {
    std::fs::read_to_string(log).unwrap().lines().count()
}

/// 1,000 bad connections on both listeners: random bytes, a ClientHello
/// cut short and then silence, certificates from another CA, an expired
/// certificate from the hub's own CA. Each is refused (the certificate
/// ones at the handshake), a member is served throughout, the hub's open
/// sockets return to where they were, and its log (at `info`) does
/// not grow with the flood.
#[tokio::test]
async fn a_thousand_garbage_tls_connections_are_refused_quietly_and_leak_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hub.toml"), "handshake_timeout_secs = 2\n").unwrap();
    let log = dir.path().join("hub.log");
    let hub = HubProcess::start_logging(&data, "127.0.0.1:0", &log);
    let state = dir.path().join("alice");
    enroll_with_cli(&data, &hub.url(), "alice-bank", None, &state);
    let alice = Agent::open(&member_agent::StateDir::new(&state)).unwrap();
    // Warm up every path the good client uses, then take the baseline.
    publish(&alice, draft(0)).await.unwrap();
    let mut live = pb::subscriber_client::SubscriberClient::new(alice.channel().await.unwrap())
        .subscribe(subscribe_request(Vec::new(), true))
        .await
        .unwrap()
        .into_inner();
    receive_items(&mut live, 1).await;
    let pid = hub.child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_before = open_sockets(pid);
    let lines_before = log_lines(&log);
    let mut sent = 0;
    // Random bytes, then hang up: 300 on each listener.
    for addr in [&hub.addr, &hub.taxii_addr] {
        for i in 0..300 {
            let mut noise = vec![0u8; 64 + i * 7 % 2000];
            openssl::rand::rand_bytes(&mut noise).unwrap();
            let mut s = tokio::net::TcpStream::connect(addr.as_str()).await.unwrap();
            let _ = s.write_all(&noise).await;
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut rest)).await;
            sent += 1;
        }
    }
    // A ClientHello cut short, then silence, 100 at a time (under the
    // per-source cap): each is closed at the handshake timeout.
    for _ in 0..2 {
        let mut held = Vec::new();
        for addr in [&hub.addr, &hub.taxii_addr] {
            for _ in 0..50 {
                let mut s = tokio::net::TcpStream::connect(addr.as_str()).await.unwrap();
                s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03])
                    .await
                    .unwrap();
                held.push(s);
            }
        }
        for mut s in held {
            let mut rest = Vec::new();
            tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut rest))
                .await
                .expect("the hub closes a stalled handshake")
                .ok();
            sent += 1;
        }
    }
    // Certificates the hub must refuse: another CA's, and its own CA's
    // but expired. With TLS 1.3 the refusal arrives after the client's
    // side of the handshake: read until the hub closes.
    let foreign = foreign_client_identity();
    let expired = expired_identity(&data);
    for (i, (cert, key)) in std::iter::repeat_n(&foreign, 100)
        .chain(std::iter::repeat_n(&expired, 100))
        .enumerate()
    {
        let (addr, alpn): (&str, &[u8]) = if i % 2 == 0 {
            (&hub.addr, b"\x02h2")
        } else {
            (&hub.taxii_addr, b"\x08http/1.1")
        };
        if let Ok(mut tls) = crate::hostile::tls_handshake(addr, Some((cert, key)), alpn).await {
            let _ = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
            let mut buf = [0u8; 64];
            let read = tokio::time::timeout(Duration::from_secs(30), tls.read(&mut buf))
                .await
                .expect("the hub answers a refused certificate");
            assert!(
                matches!(read, Err(_) | Ok(0)),
                "a refused certificate was served: {read:?}"
            );
        }
        sent += 1;
    }
    assert_eq!(sent, 1000);
    // The member was served throughout, on its open stream too.
    publish(&alice, draft(1))
        .await
        .expect("served after the flood");
    receive_items(&mut live, 1).await;
    let mut fds_after = open_sockets(pid);
    for _ in 0..600 {
        if fds_after <= fds_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        fds_after = open_sockets(pid);
    }
    let lines_after = log_lines(&log);
    eprintln!(
        "1,000 garbage TLS connections: hub sockets {fds_before} -> {fds_after}; log lines {lines_before} -> {lines_after}"
    );
    assert!(
        fds_after <= fds_before,
        "descriptors leaked: {fds_before} -> {fds_after}: {}",
        fd_targets(pid)
    );
    assert!(
        lines_after - lines_before < 20,
        "the flood flooded the log: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    drop(live);
    stop_within(hub, vec![alice]).await;
}

/// `n` Publish requests on one HTTP/2 connection (with `client`'s
/// certificate, or none) whose message announces `len` bytes and sends
/// all but the last: the hub holds each body open, waiting for its end.
async fn unfinished_publishes(
    addr: &str,
    client: Option<(
        &openssl::x509::X509,
        &openssl::pkey::PKey<openssl::pkey::Private>,
    )>,
    n: usize,
    len: usize,
) -> (
    Vec<h2::SendStream<tonic::codegen::Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    use tonic::codegen::Bytes;
    let tls = crate::hostile::tls_handshake(addr, client, b"\x02h2")
        .await
        .unwrap();
    let (client, connection) = h2::client::Builder::new()
        .handshake::<_, Bytes>(tls)
        .await
        .unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let port = addr.rsplit(':').next().unwrap();
    let chunk = Bytes::from(vec![0x41u8; 64 * 1024]);
    let mut client = client;
    let mut open = Vec::new();
    for _ in 0..n {
        client = match client.ready().await {
            Ok(c) => c,
            Err(_) => break,
        };
        let req = http::Request::builder()
            .method("POST")
            .uri(format!(
                "https://localhost:{port}/isac.v1.Publisher/Publish"
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let Ok((_response, mut body)) = client.send_request(req, false) else {
            break;
        };
        let mut prefix = vec![0u8];
        prefix.extend_from_slice(&(len as u32).to_be_bytes());
        let _ = body.send_data(Bytes::from(prefix), false);
        let mut left = len - 1;
        while left > 0 {
            let part = left.min(chunk.len());
            let _ = body.send_data(chunk.slice(..part), false);
            left -= part;
        }
        open.push(body);
    }
    (open, driver)
}

/// Publish messages announced at just under `max_message_bytes` (4 MiB)
/// and never finished, 100 on a connection without a certificate and 100
/// on a member's: tonic buffered each whole, with no timeout (820 MiB of
/// hub memory held by two connections, for ever; a few more and the hub
/// is gone). Now each caller (certificate, else source address) may have
/// 4 x `max_message_bytes` announced at once; past it RESOURCE_EXHAUSTED,
/// before anything is read. Other members are served meanwhile, and the
/// budget comes back when the bodies go.
#[tokio::test]
async fn unfinished_publish_messages_do_not_pile_up_in_hub_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, agents) = hub_with(dir.path(), "", &["alice-bank", "bob-bank"]);
    let (alice, bob) = (&agents[0], &agents[1]);
    publish(alice, draft(0)).await.unwrap();
    let pid = hub.child.id();
    let rss_before = rss_kib(pid);
    let len = 4 * 1024 * 1024 - 64;
    let (a, da) = unfinished_publishes(&hub.addr, None, 100, len).await;
    let (b, db) = unfinished_publishes(
        &hub.addr,
        Some((&alice.loaded.tls_cert, &alice.loaded.tls_key)),
        100,
        len,
    )
    .await;
    // Wait (bounded) until the hub has read what it will take of them.
    let mut rss = rss_kib(pid);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = rss_kib(pid);
        if now == rss {
            break;
        }
        rss = now;
    }
    eprintln!("unfinished publishes: hub RSS {rss_before} -> {rss} KiB");
    assert!(
        rss.saturating_sub(rss_before) < 2 * MAX_GROWTH_KIB,
        "hub RSS grew from {rss_before} to {rss} KiB holding unfinished messages"
    );
    // The member whose certificate holds its budget is told why.
    let status = publish(alice, draft(1)).await.err().map(|e| e.to_string());
    let status = status.expect("over its budget");
    assert!(
        status.contains("still arriving") && status.contains("max_message_bytes"),
        "{status}"
    );
    publish(bob, draft(2))
        .await
        .expect("another member is served meanwhile");
    drop((a, b));
    da.abort();
    db.abort();
    let mut served = false;
    for _ in 0..600 {
        if publish(alice, draft(3)).await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the budget comes back when the bodies go");
    stop_within(hub, agents).await;
}

/// Rapid reset on Subscribe (CVE-2023-44487 style, on the one call that
/// takes a per-member slot and spawns a task): thousands of streams
/// opened and reset at once, on fresh connections as the hub sheds them.
/// The hub stays up, and every slot comes back: the member can then hold
/// `max_streams_per_member` streams again, and another member is served.
#[tokio::test]
async fn subscribe_rapid_reset_leaks_no_stream_slot() {
    use std::io::Cursor;
    let dir = tempfile::tempdir().unwrap();
    let (hub, agents) = hub_with(
        dir.path(),
        "max_streams_per_member = 50\n",
        &["alice-bank", "bob-bank"],
    );
    let (alice, bob) = (&agents[0], &agents[1]);
    publish(alice, draft(0)).await.unwrap();
    let port = hub.addr.rsplit(':').next().unwrap().to_owned();
    let mut reset = 0;
    let mut shed = 0;
    while reset < 3000 {
        let tls = member_tls(&hub.addr, alice, b"\x02h2").await;
        let Ok((client, connection)) = h2::client::Builder::new()
            .handshake::<_, Cursor<Vec<u8>>>(tls)
            .await
        else {
            shed += 1;
            continue;
        };
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client;
        loop {
            client = match client.ready().await {
                Ok(c) => c,
                Err(_) => break,
            };
            let req = http::Request::builder()
                .method("POST")
                .uri(format!(
                    "https://localhost:{port}/isac.v1.Subscriber/Subscribe"
                ))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .unwrap();
            let Ok((_response, mut body)) = client.send_request(req, false) else {
                break;
            };
            let _ = body.send_data(Cursor::new(grpc_subscribe_follow()), true);
            body.send_reset(h2::Reason::CANCEL);
            reset += 1;
            if reset % 500 == 0 {
                break;
            }
        }
        shed += 1;
        driver.abort();
    }
    eprintln!("Subscribe rapid reset: {reset} streams reset over {shed} connections");
    // Every slot comes back (bounded wait: the stream tasks end as they
    // see their receivers gone).
    let url = alice.hub_url().to_owned();
    let channel = alice.connector().unwrap().connect(&url).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..600 {
        match pb::subscriber_client::SubscriberClient::new(channel.clone())
            .subscribe(subscribe_request(Vec::new(), true))
            .await
        {
            Ok(s) => {
                held.push(s.into_inner());
                if held.len() == 50 {
                    break;
                }
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(held.len(), 50, "stream slots leaked by reset streams");
    let mut live = pb::subscriber_client::SubscriberClient::new(bob.channel().await.unwrap())
        .subscribe(subscribe_request(Vec::new(), true))
        .await
        .expect("another member is served")
        .into_inner();
    receive_items(&mut live, 1).await;
    drop(held);
    stop_within(hub, agents).await;
}
