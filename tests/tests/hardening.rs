//! Limits and abuse against the real listener: publish rate, stream caps,
//! stalled and garbage handshakes, graceful shutdown.

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
    let hub = TestHub::start(&dir.path().join("hub")).await;
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
    tokio::time::sleep(Duration::from_millis(400)).await;
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
