//! Reliable delivery in process: filters, expiry, acknowledgements and lag,
//! exactly-once sinks across a crash between sink write and commit.

use std::time::Duration;

use isac_core::time::format_rfc3339;
use isac_e2e::*;
use isac_proto::v1 as pb;
use member_agent::draft::IndicatorDraft;
use member_agent::publish::publish;
use member_agent::Agent;
use member_agent::{SinkSettings, Sinks};

fn d(purl_or_domain: &str, severity: &str, confidence: u8, tags: &[&str]) -> IndicatorDraft {
    let mut d = IndicatorDraft {
        tlp: Some("green".into()),
        title: Some(format!("{purl_or_domain} ({severity})")),
        severity: Some(severity.into()),
        confidence: Some(confidence),
        labels: (!tags.is_empty()).then(|| tags.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    if purl_or_domain.starts_with("pkg:") {
        d.purl = Some(purl_or_domain.into());
    } else {
        d.domain = Some(purl_or_domain.into());
    }
    d
}

async fn titles_with(
    agent: &mut Agent,
    filter: pb::SubscriptionFilter,
    dir: &std::path::Path,
    name: &str,
) -> Vec<String> {
    agent.filter = filter;
    let mut sink = Sinks::jsonl(Some(&dir.join(format!("{name}.jsonl")))).unwrap();
    agent.sync(false, &mut sink).await.unwrap();
    let mut t: Vec<String> = agent
        .store
        .lock()
        .unwrap()
        .list(100)
        .unwrap()
        .into_iter()
        .map(|i| i.title)
        .collect();
    t.sort();
    t
}

#[tokio::test]
async fn subscription_filters_narrow_what_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let staff =
        enrolled_agent_with_role(&hub, "isac-staff", "coordinator", &dir.path().join("staff"))
            .await;
    publish(
        &alice,
        d("pkg:npm/a@1.0.0", "critical", 90, &["credential-theft"]),
    )
    .await
    .unwrap();
    publish(&alice, d("pkg:pypi/b@1.0.0", "high", 50, &[]))
        .await
        .unwrap();
    publish(&alice, d("pkg:npm/c@1.0.0", "low", 95, &[]))
        .await
        .unwrap();
    publish(&alice, d("c2.evil.example", "critical", 80, &["c2"]))
        .await
        .unwrap();
    member_agent::publish::publish_bulletin(
        &staff,
        member_agent::draft::BulletinDraft {
            tlp: Some("green".into()),
            title: "bulletin".into(),
            body: "text".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let cases: Vec<(&str, pb::SubscriptionFilter, Vec<&str>)> = vec![
        (
            "npm",
            pb::SubscriptionFilter {
                ecosystems: vec!["npm".into()],
                ..Default::default()
            },
            vec!["pkg:npm/a@1.0.0 (critical)", "pkg:npm/c@1.0.0 (low)"],
        ),
        (
            "critical",
            pb::SubscriptionFilter {
                min_severity: "critical".into(),
                ..Default::default()
            },
            vec!["c2.evil.example (critical)", "pkg:npm/a@1.0.0 (critical)"],
        ),
        (
            "confident",
            pb::SubscriptionFilter {
                min_confidence: 90,
                ..Default::default()
            },
            vec!["pkg:npm/a@1.0.0 (critical)", "pkg:npm/c@1.0.0 (low)"],
        ),
        (
            "network",
            pb::SubscriptionFilter {
                kinds: vec!["network".into()],
                ..Default::default()
            },
            vec!["c2.evil.example (critical)"],
        ),
        (
            "tag",
            pb::SubscriptionFilter {
                tags: vec!["c2".into(), "credential-theft".into()],
                ..Default::default()
            },
            vec!["c2.evil.example (critical)", "pkg:npm/a@1.0.0 (critical)"],
        ),
        (
            "bulletins",
            pb::SubscriptionFilter {
                bulletins_only: true,
                ..Default::default()
            },
            vec!["bulletin"],
        ),
        (
            "tlp",
            pb::SubscriptionFilter {
                tlp_levels: vec!["clear".into()],
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (name, filter, want) in cases {
        let mut agent = enrolled_agent(&hub, &format!("sub-{name}"), &dir.path().join(name)).await;
        let got = titles_with(&mut agent, filter, dir.path(), name).await;
        let mut want: Vec<String> = want.into_iter().map(String::from).collect();
        want.sort();
        assert_eq!(got, want, "filter {name}");
    }
    let mut agent = enrolled_agent(&hub, "sub-bad", &dir.path().join("bad")).await;
    agent.filter = pb::SubscriptionFilter {
        min_severity: "apocalyptic".into(),
        ..Default::default()
    };
    let mut sink = Sinks::jsonl(Some(&dir.path().join("bad.jsonl"))).unwrap();
    let err = agent.sync(false, &mut sink).await.unwrap_err();
    assert!(
        matches!(&err, member_agent::AgentError::Hub { code: tonic::Code::InvalidArgument, message } if message.contains("unknown severity")),
        "{err}"
    );
    hub.stop().await;
}

/// The hub's clock is injectable: expiry is decided by it, with no waiting.
#[tokio::test]
async fn the_hubs_clock_decides_what_has_expired() {
    let dir = tempfile::tempdir().unwrap();
    let clock = hub::app::Clock::manual(member_agent::now());
    let hub = TestHub::start_with_clock(&dir.path().join("hub"), clock.clone()).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let mut short = d("pkg:npm/short-lived@1.0.0", "high", 50, &[]);
    short.valid_until = Some(format_rfc3339(member_agent::now() + 60));
    publish(&alice, short).await.unwrap();
    publish(&alice, d("pkg:npm/lasting@1.0.0", "high", 50, &[]))
        .await
        .unwrap();
    // Two minutes later by the hub's clock: a new subscriber is not sent
    // the expired item.
    assert!(hub.clock.set(member_agent::now() + 120));
    let mut sink = Sinks::jsonl(Some(&dir.path().join("bob.jsonl"))).unwrap();
    assert_eq!(bob.sync(false, &mut sink).await.unwrap().new, 1);
    let held = bob.store.lock().unwrap().list(10).unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].value, "pkg:npm/lasting@1.0.0");
    hub.stop().await;
}

#[tokio::test]
async fn expired_items_are_skipped_for_new_subscribers_and_marked_at_holders() {
    let dir = tempfile::tempdir().unwrap();
    // One manual clock for the hub and the agents: time moves when the test
    // says, with no sleeping.
    let start = member_agent::now();
    let clock = hub::app::Clock::manual(start);
    let hub = TestHub::start_with_clock(&dir.path().join("hub"), clock.clone()).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let mut short = d("pkg:npm/short-lived@1.0.0", "high", 50, &[]);
    short.valid_until = Some(format_rfc3339(start + 2));
    publish(&alice, short).await.unwrap();
    publish(&alice, d("pkg:npm/lasting@1.0.0", "high", 50, &[]))
        .await
        .unwrap();

    let bob_jsonl = dir.path().join("bob.jsonl");
    let mut sink = Sinks::jsonl(Some(&bob_jsonl)).unwrap();
    assert_eq!(bob.sync(false, &mut sink).await.unwrap().new, 2);
    clock.set(start + 3);

    // Bob holds it: marked expired, and the sink is told.
    bob.sync(false, &mut sink).await.unwrap();
    let held = bob.store.lock().unwrap().list(10).unwrap();
    assert!(
        held.iter()
            .any(|i| i.value == "pkg:npm/short-lived@1.0.0" && i.status == "expired"),
        "{held:?}"
    );
    let text = std::fs::read_to_string(&bob_jsonl).unwrap();
    assert_eq!(text.matches("\"action\":\"expire\"").count(), 1, "{text}");
    // Again: nothing new is written.
    bob.sync(false, &mut sink).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&bob_jsonl)
            .unwrap()
            .matches("\"action\":\"expire\"")
            .count(),
        1
    );

    // A new subscriber does not get it at all.
    let carol = enrolled_agent(&hub, "carol-bank", &dir.path().join("carol")).await;
    let mut sink = Sinks::jsonl(Some(&dir.path().join("carol.jsonl"))).unwrap();
    let r = carol.sync(false, &mut sink).await.unwrap();
    assert_eq!(r.new, 1);
    assert_eq!(
        carol.store.lock().unwrap().list(10).unwrap()[0].value,
        "pkg:npm/lasting@1.0.0"
    );
    hub.stop().await;
}

#[tokio::test]
async fn agents_acknowledge_and_operators_see_their_lag() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    for i in 0..5 {
        publish(&alice, d(&format!("pkg:npm/p{i}@1.0.0"), "high", 50, &[]))
            .await
            .unwrap();
    }
    let admin = hub.admin();
    let show = || {
        admin.show_member(pb::ShowMemberRequest {
            org_id: "bob-bank".into(),
        })
    };
    let before = show().await.unwrap();
    assert_eq!(
        (before.agents[0].acked_sequence, before.agents[0].lag),
        (0, 5)
    );
    let mut sink = Sinks::jsonl(Some(&dir.path().join("bob.jsonl"))).unwrap();
    bob.sync(false, &mut sink).await.unwrap();
    let after = show().await.unwrap();
    assert_eq!(
        (after.agents[0].acked_sequence, after.agents[0].lag),
        (5, 0)
    );
    assert!(!after.agents[0].acked_at.is_empty());
    publish(&alice, d("pkg:npm/later@1.0.0", "high", 50, &[]))
        .await
        .unwrap();
    assert_eq!(show().await.unwrap().agents[0].lag, 1);
    hub.stop().await;
}

#[tokio::test]
async fn a_crash_between_sink_write_and_commit_does_not_duplicate_the_sink_line() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    publish(&alice, d("pkg:npm/one@1.0.0", "high", 50, &[]))
        .await
        .unwrap();
    let jsonl = dir.path().join("bob.jsonl");
    let mut sink = Sinks::jsonl(Some(&jsonl)).unwrap();
    bob.sync(false, &mut sink).await.unwrap();
    drop(sink);

    // Simulate the crash window: the line for item 1 is in the sink, but the
    // local store never committed it (we roll the store back), plus a torn
    // half-line from the moment of the crash.
    {
        let conn = rusqlite::Connection::open(dir.path().join("bob").join("agent.db")).unwrap();
        conn.execute("DELETE FROM items", []).unwrap();
        conn.execute(
            "DELETE FROM meta WHERE key IN ('position', 'hub_cursor')",
            [],
        )
        .unwrap();
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&jsonl)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"action\":\"upsert\",\"id\":\"torn").unwrap();
    drop(f);
    drop(bob);

    let bob = Agent::open(&member_agent::StateDir::new(dir.path().join("bob"))).unwrap();
    let mut sink = Sinks::jsonl(Some(&jsonl)).unwrap();
    let r = bob.sync(false, &mut sink).await.unwrap();
    assert_eq!(r.new, 1, "the store takes the redelivered item again");
    let text = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "the sink holds it once, torn line cut: {text}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn the_stix_directory_sink_writes_one_bundle_per_item_with_tlp_2_markings() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    publish(
        &alice,
        d("pkg:npm/evil@1.0.0", "critical", 90, &["credential-theft"]),
    )
    .await
    .unwrap();
    let mut anon = d("c2.evil.example", "high", 80, &[]);
    anon.anonymous = Some(true);
    publish(&alice, anon).await.unwrap();

    let stix = dir.path().join("stix");
    let mut settings = SinkSettings::jsonl(Some(&dir.path().join("bob.jsonl")));
    settings.stix_dir = Some(stix.clone());
    let mut sink = Sinks::open(settings).unwrap();
    bob.sync(false, &mut sink).await.unwrap();
    // A redelivery rewrites the same files rather than adding new ones.
    bob.sync(false, &mut sink).await.unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&stix)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let green = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb";
    for (i, f) in files.iter().enumerate() {
        let text = std::fs::read_to_string(f).unwrap();
        let b: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(b["type"], "bundle");
        let objects = b["objects"].as_array().unwrap();
        let indicator = objects
            .iter()
            .find(|o| o["type"] == "indicator")
            .expect("an indicator");
        assert_eq!(indicator["spec_version"], "2.1");
        assert_eq!(indicator["object_marking_refs"][0], green);
        assert!(
            objects.iter().any(|o| o["id"] == green),
            "the marking definition travels with the bundle"
        );
        if i == 1 {
            assert!(
                text.contains("anonymous member") && !text.contains("alice-bank"),
                "{text}"
            );
            assert!(indicator["pattern"]
                .as_str()
                .unwrap()
                .contains("domain-name:value = 'c2.evil.example'"));
        } else {
            assert!(text.contains("alice-bank"));
        }
    }
    // The OASIS validator accepts them.
    assert_valid_stix(&files);
    hub.stop().await;
}

pub(crate) type Headers = Vec<(String, String)>;
/// (path, headers, body, status answered)
pub(crate) type Seen = (String, Headers, Vec<u8>, u16);

/// A real HTTP/1.1 receiver on loopback that records requests and answers
/// 503 to the first `fail_first` of them.
pub(crate) struct Receiver {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    /// Connections accepted.
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// How a test receiver answers one request.
enum Reply {
    /// Status and body, framed by `Content-Length`.
    Sized(u16, String),
    /// The same, and the connection stays open for the next request.
    KeepAlive(u16, String),
    /// Status and body, framed by `Transfer-Encoding: chunked` in chunks of
    /// 7 bytes (so a chunk boundary falls inside any word worth checking).
    Chunked(u16, String),
    /// These bytes as they are, then the connection closes (answers cut short).
    Raw(u16, Vec<u8>),
}

impl From<(u16, String)> for Reply {
    fn from((code, text): (u16, String)) -> Reply {
        Reply::Sized(code, text)
    }
}

/// `text` in the chunked transfer coding, 7 bytes a chunk.
fn chunked(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in text.as_bytes().chunks(7) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

impl Reply {
    fn code(&self) -> u16 {
        match self {
            Reply::Sized(c, _)
            | Reply::KeepAlive(c, _)
            | Reply::Chunked(c, _)
            | Reply::Raw(c, _) => *c,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match self {
            Reply::Sized(code, text) => format!(
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            )
            .into_bytes(),
            Reply::KeepAlive(code, text) => format!(
                "HTTP/1.1 {code} X\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            )
            .into_bytes(),
            Reply::Chunked(code, text) => {
                let mut out = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                )
                .into_bytes();
                out.extend_from_slice(&chunked(text));
                out
            }
            Reply::Raw(_, bytes) => bytes.clone(),
        }
    }
}

pub(crate) async fn receiver(fail_first: usize) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    receiver_on(listener, move |n, path, body| {
        if n <= fail_first {
            (503, "ok".into())
        } else {
            (200, realistic_ok(path, body))
        }
    })
}

/// What a receiver of each kind answers when all went well.
fn realistic_ok(path: &str, body: &[u8]) -> String {
    if path.ends_with("/_bulk") {
        bulk_answer(body)
    } else if path.starts_with("/services/collector") {
        "{\"text\":\"Success\",\"code\":0}".into()
    } else {
        "ok".into()
    }
}

/// The receiver on `listener`, answering the n-th request (from 1) for
/// (path, body) with `answer` (status, body).
fn receiver_on(
    listener: tokio::net::TcpListener,
    answer: impl Fn(usize, &str, &[u8]) -> (u16, String) + Send + Sync + 'static,
) -> Receiver {
    receiver_with(listener, None, move |n, path, _, body| {
        answer(n, path, body).into()
    })
}

/// The receiver on `listener` (over TLS with `tls`), answering the n-th
/// request (from 1) for (path, headers, body) with a [`Reply`], one
/// connection after the other.
fn receiver_with(
    listener: tokio::net::TcpListener,
    tls: Option<openssl::ssl::SslAcceptor>,
    answer: impl Fn(usize, &str, &Headers, &[u8]) -> Reply + Send + Sync + 'static,
) -> Receiver {
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = connections.clone();
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match &tls {
                None => serve_connection(sock, &mut n, &*answer, &s2).await,
                Some(acceptor) => {
                    let ssl = openssl::ssl::Ssl::new(acceptor.context()).unwrap();
                    let mut stream = tokio_openssl::SslStream::new(ssl, sock).unwrap();
                    if std::pin::Pin::new(&mut stream).accept().await.is_ok() {
                        serve_connection(stream, &mut n, &*answer, &s2).await;
                    }
                }
            }
        }
    });
    Receiver {
        addr,
        seen,
        connections,
    }
}

/// Reads requests from `sock`, records and answers them, until an answer
/// that is not [`Reply::KeepAlive`] (or the client closes).
async fn serve_connection<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut sock: S,
    n: &mut usize,
    answer: &(impl Fn(usize, &str, &Headers, &[u8]) -> Reply + ?Sized),
    seen: &std::sync::Mutex<Vec<Seen>>,
) {
    use tokio::io::AsyncWriteExt;
    loop {
        let Some((path, headers, body)) = read_request(&mut sock).await else {
            return;
        };
        *n += 1;
        let reply = answer(*n, &path, &headers, &body);
        seen.lock()
            .unwrap()
            .push((path, headers, body, reply.code()));
        let _ = sock.write_all(&reply.bytes()).await;
        if !matches!(reply, Reply::KeepAlive(..)) {
            let _ = sock.shutdown().await;
            return;
        }
    }
}

/// One request (path, headers, body) from `sock`; None once it closes.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(
    sock: &mut S,
) -> Option<(String, Headers, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, content_length) = loop {
        let k = sock.read(&mut chunk).await.unwrap_or(0);
        if k == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..k]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
            let cl = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            break (i + 4, cl);
        }
    };
    while buf.len() < head_end + content_length {
        let k = sock.read(&mut chunk).await.unwrap_or(0);
        if k == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..k]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end.saturating_sub(4)]).to_string();
    let mut lines = head.lines();
    let path = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let headers: Headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let body = buf[head_end..buf.len().min(head_end + content_length)].to_vec();
    Some((path, headers, body))
}

#[tokio::test]
async fn webhook_hec_and_elastic_sinks_hold_the_cursor_while_a_receiver_is_down() {
    use member_agent::sinks::http::{HttpSink, Retry};
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    publish(&alice, d("pkg:npm/evil@1.0.0", "critical", 90, &["npm"]))
        .await
        .unwrap();
    publish(&alice, d("c2.evil.example", "high", 60, &[]))
        .await
        .unwrap();

    let r = receiver(3).await;
    let base = format!("http://{}", r.addr);
    let jsonl = dir.path().join("bob.jsonl");
    let mut settings = SinkSettings::jsonl(Some(&jsonl));
    settings.http = vec![
        HttpSink::Webhook {
            url: format!("{base}/hook").parse().unwrap(),
            secret: "s3cret".into(),
        },
        HttpSink::SplunkHec {
            url: format!("{base}/services/collector/event").parse().unwrap(),
            token: "hec-token".into(),
            index: Some("threat".into()),
            sourcetype: "isac:indicator".into(),
        },
        HttpSink::Elastic {
            url: format!("{base}/es").parse().unwrap(),
            index: "isac-indicators".into(),
        },
    ];
    // No retries here: each failure fails the sync.
    settings.http_retry = Retry::none();
    let mut sink = Sinks::open(settings).unwrap();
    // The receiver is "down" for its first three requests: syncs fail and
    // the cursor holds; later ones succeed.
    let mut failures = 0;
    for _ in 0..10 {
        match bob.sync(false, &mut sink).await {
            Ok(_) => break,
            Err(e) => {
                assert!(e.to_string().contains("503"), "{e}");
                failures += 1;
            }
        }
    }
    assert!(
        failures >= 1,
        "the receiver's failures surfaced as sync errors"
    );
    let lines = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(
        lines.lines().count(),
        2,
        "the local sink holds each item once: {lines}"
    );
    assert_eq!(bob.store.lock().unwrap().cursor().unwrap(), 2);

    let seen = r.seen.lock().unwrap().clone();
    let accepted = |path: &str| -> Vec<(Headers, Vec<u8>)> {
        seen.iter()
            .filter(|(p, _, _, code)| p == path && *code == 200)
            .map(|(_, h, b, _)| (h.clone(), b.clone()))
            .collect()
    };
    let header = |h: &[(String, String)], k: &str| {
        h.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    // Webhook: every item accepted, each with a valid HMAC; a repeat (after a
    // later receiver failed) carries the same delivery id.
    let hooks = accepted("/hook");
    let ids: std::collections::BTreeSet<String> = hooks
        .iter()
        .map(|(h, _)| header(h, "x-isac-delivery"))
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    for (h, body) in &hooks {
        let key = openssl::pkey::PKey::hmac(b"s3cret").unwrap();
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
        signer.update(body).unwrap();
        let want = format!(
            "sha256={}",
            isac_core::hex::encode(&signer.sign_to_vec().unwrap())
        );
        assert_eq!(header(h, "x-isac-signature"), want);
    }
    // Splunk HEC: token auth, events one after the other in a request.
    let hec = accepted("/services/collector/event");
    assert!(!hec.is_empty());
    let mut events = 0;
    for (h, body) in &hec {
        assert_eq!(header(h, "authorization"), "Splunk hec-token");
        for v in serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>() {
            let v = v.unwrap();
            assert_eq!(v["sourcetype"], "isac:indicator");
            assert_eq!(v["index"], "threat");
            assert!(v["event"]["id"].is_string());
            assert!(v["time"].is_u64());
            events += 1;
        }
    }
    assert!(events >= 2);
    // Elasticsearch: _bulk NDJSON with a stable _id and ECS threat fields.
    let es = accepted("/es/_bulk");
    assert!(!es.is_empty());
    let mut types = std::collections::BTreeSet::new();
    for (h, body) in &es {
        assert_eq!(header(h, "content-type"), "application/x-ndjson");
        let text = String::from_utf8(body.clone()).unwrap();
        let mut it = text.lines();
        while let Some(action) = it.next() {
            let action: serde_json::Value = serde_json::from_str(action).unwrap();
            assert_eq!(action["index"]["_index"], "isac-indicators");
            let doc: serde_json::Value = serde_json::from_str(it.next().unwrap()).unwrap();
            assert_eq!(
                action["index"]["_id"], doc["isac"]["id"],
                "one document per statement id"
            );
            assert_eq!(doc["event"]["kind"], "enrichment");
            assert_eq!(doc["threat"]["indicator"]["marking"]["tlp"], "GREEN");
            types.insert(
                doc["threat"]["indicator"]["type"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    assert_eq!(
        types,
        ["domain-name".to_string(), "software".to_string()]
            .into_iter()
            .collect()
    );
    hub.stop().await;
}

/// How a real Elasticsearch answers `_bulk`: 200, with one result per
/// action; here a document mentioning `reject-me` fails its mapping (400).
fn bulk_answer(body: &[u8]) -> String {
    elastic_bulk_answer(
        body,
        |doc| if doc.contains("reject-me") { 400 } else { 201 },
    )
}

#[tokio::test]
async fn http_sinks_retry_while_the_receiver_is_down_dead_letter_rejections_and_hear_of_expiry() {
    use member_agent::sinks::http::{HttpSink, Retry};
    let dir = tempfile::tempdir().unwrap();
    // One manual clock for the hub and the agents: the short-lived item
    // expires when the test moves it, with no waiting.
    let start = member_agent::now();
    let clock = hub::app::Clock::manual(start);
    let hub = TestHub::start_with_clock(&dir.path().join("hub"), clock.clone()).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    for i in 0..6 {
        publish(
            &alice,
            d(&format!("pkg:npm/evil-{i}@1.0.0"), "high", 80, &[]),
        )
        .await
        .unwrap();
    }
    let mut rejected = d("reject-me.evil.example", "high", 80, &[]);
    rejected.title = Some("reject-me".into());
    publish(&alice, rejected).await.unwrap();
    let mut short = d("short-lived.evil.example", "high", 80, &[]);
    let until = start + 4;
    short.valid_until = Some(format_rfc3339(until));
    let short_id = publish(&alice, short).await.unwrap().id;

    // The receiver's port, with nothing listening on it yet: it is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let jsonl = dir.path().join("bob.jsonl");
    let dead = dir.path().join("dead-letter.jsonl");
    let mut settings = SinkSettings::jsonl(Some(&jsonl));
    settings.http = vec![
        HttpSink::Webhook {
            url: format!("{base}/hook").parse().unwrap(),
            secret: "s3cret".into(),
        },
        HttpSink::SplunkHec {
            url: format!("{base}/services/collector/event").parse().unwrap(),
            token: "hec-token".into(),
            index: None,
            sourcetype: "isac:indicator".into(),
        },
        HttpSink::Elastic {
            url: format!("{base}/es").parse().unwrap(),
            index: "isac-indicators".into(),
        },
    ];
    settings.http_retry = Retry {
        first: Duration::from_millis(50),
        max: Duration::from_millis(400),
        give_up_after: Duration::from_secs(120),
    };
    settings.hec_batch = 3;
    settings.dead_letter = Some(dead.clone());
    let mut sink = Sinks::open(settings).unwrap();
    let syncing = tokio::spawn(async move {
        let r = bob.sync(false, &mut sink).await;
        (bob, sink, r)
    });
    // The sync keeps retrying; nothing is committed while the receiver is down.
    // A sleep, because what is checked is that nothing happens: 1.5 s is
    // several retries at 50 to 400 ms, and the sync must still be waiting.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!syncing.is_finished(), "the sync waits for the receiver");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let r = receiver_on(listener, |_, path, body| {
        if path == "/es/_bulk" {
            (200, bulk_answer(body))
        } else if path == "/hook" && String::from_utf8_lossy(body).contains("reject-me") {
            (422, "{\"error\":\"unprocessable\"}".into())
        } else {
            (200, "{\"text\":\"Success\",\"code\":0}".into())
        }
    });
    let (bob, mut sink, result) = syncing.await.unwrap();
    let report = result.unwrap();
    assert_eq!(report.new, 8);
    assert_eq!(bob.store.lock().unwrap().cursor().unwrap(), 8);

    // Nothing lost, nothing doubled: each item reached each receiver once.
    let seen = r.seen.lock().unwrap().clone();
    let hooks: Vec<String> = seen
        .iter()
        .filter(|(p, ..)| p == "/hook")
        .map(|(_, h, _, _)| {
            h.iter()
                .find(|(k, _)| k == "x-isac-delivery")
                .unwrap()
                .1
                .clone()
        })
        .collect();
    let unique: std::collections::BTreeSet<&String> = hooks.iter().collect();
    assert_eq!((hooks.len(), unique.len()), (8, 8), "{hooks:?}");
    let hec: Vec<&Vec<u8>> = seen
        .iter()
        .filter(|(p, ..)| p == "/services/collector/event")
        .map(|(_, _, b, _)| b)
        .collect();
    let per_request: Vec<usize> = hec
        .iter()
        .map(|b| {
            serde_json::Deserializer::from_slice(b)
                .into_iter::<serde_json::Value>()
                .count()
        })
        .collect();
    assert_eq!(per_request.iter().sum::<usize>(), 8, "{per_request:?}");
    assert!(
        per_request.iter().all(|n| *n <= 3),
        "batches of at most 3: {per_request:?}"
    );
    assert!(
        per_request.iter().any(|n| *n > 1),
        "several events per request: {per_request:?}"
    );
    let es_docs: usize = seen
        .iter()
        .filter(|(p, ..)| p == "/es/_bulk")
        .map(|(_, _, b, _)| String::from_utf8_lossy(b).lines().count() / 2)
        .sum();
    assert_eq!(es_docs, 8);
    // Rejected for good: set aside, once per receiver that rejected it.
    let dead_lines: Vec<serde_json::Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut sinks: Vec<(&str, u64)> = dead_lines
        .iter()
        .map(|l| (l["sink"].as_str().unwrap(), l["status"].as_u64().unwrap()))
        .collect();
    sinks.sort();
    assert_eq!(
        sinks,
        [("elastic", 400), ("webhook", 422)],
        "{dead_lines:?}"
    );
    for l in &dead_lines {
        assert_eq!(l["item"]["title"], "reject-me");
    }
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 8);

    // Expiry reaches each receiver in its idiom.
    clock.set(until + 1);
    bob.sync(false, &mut sink).await.unwrap();
    let seen = r.seen.lock().unwrap().clone();
    let expired_hook = seen.iter().any(|(p, _, b, _)| {
        p == "/hook" && {
            let v: serde_json::Value = serde_json::from_slice(b).unwrap();
            v["action"] == "expire" && v["id"] == short_id.as_str()
        }
    });
    assert!(expired_hook, "webhook told of the expiry");
    let expired_hec = seen.iter().any(|(p, _, b, _)| {
        p == "/services/collector/event"
            && serde_json::Deserializer::from_slice(b)
                .into_iter::<serde_json::Value>()
                .any(|v| {
                    let v = v.unwrap();
                    v["event"]["action"] == "expire" && v["event"]["id"] == short_id.as_str()
                })
    });
    assert!(expired_hec, "HEC told of the expiry");
    let deleted = seen.iter().any(|(p, _, b, _)| {
        p == "/es/_bulk"
            && String::from_utf8_lossy(b).contains(
                &serde_json::json!({"delete": {"_index": "isac-indicators", "_id": short_id}})
                    .to_string(),
            )
    });
    assert!(deleted, "Elasticsearch document deleted on expiry");
    let jsonl_text = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(jsonl_text.matches("\"action\":\"expire\"").count(), 1);
    hub.stop().await;
}

/// Bob's agent with `n` fresh items from alice waiting (the last one titled
/// `reject-me`, which the test receivers refuse for good when asked to).
async fn bob_with_items(dir: &std::path::Path, n: usize) -> (TestHub, Agent, Vec<String>) {
    let hub = TestHub::start(&dir.join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.join("bob")).await;
    let mut ids = Vec::new();
    for i in 0..n {
        let mut draft = d(&format!("pkg:npm/evil-{i}@1.0.0"), "high", 80, &[]);
        if i + 1 == n {
            draft.title = Some("reject-me".into());
        }
        ids.push(publish(&alice, draft).await.unwrap().id);
    }
    (hub, bob, ids)
}

fn dead_letters(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn fast_retry() -> member_agent::sinks::http::Retry {
    member_agent::sinks::http::Retry {
        first: Duration::from_millis(20),
        max: Duration::from_millis(100),
        give_up_after: Duration::from_secs(120),
    }
}

#[tokio::test]
async fn chunked_bulk_answers_retry_item_429s_and_dead_letter_item_400s_with_the_decoded_answer() {
    use member_agent::sinks::http::HttpSink;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let (hub, bob, ids) = bob_with_items(dir.path(), 3).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Elasticsearch is overloaded for two `_bulk` requests (every item 429),
    // then indexes all but `reject-me` (400 mapper_parsing_exception); the
    // webhook refuses `reject-me` with 422. Every answer is chunked.
    let bulks = AtomicUsize::new(0);
    let indexed = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let indexed2 = indexed.clone();
    let r = receiver_with(listener, None, move |_, path, _, body| {
        let text = String::from_utf8_lossy(body).into_owned();
        if path == "/es/_bulk" {
            if bulks.fetch_add(1, Ordering::SeqCst) < 2 {
                return Reply::Chunked(200, elastic_bulk_answer(body, |_| 429));
            }
            for pair in text.lines().collect::<Vec<_>>().chunks(2) {
                if !pair[1].contains("reject-me") {
                    let action: serde_json::Value = serde_json::from_str(pair[0]).unwrap();
                    let id = action["index"]["_id"].as_str().unwrap().to_owned();
                    indexed2.lock().unwrap().insert(id);
                }
            }
            Reply::Chunked(200, bulk_answer(body))
        } else if text.contains("reject-me") {
            Reply::Chunked(422, "{\"error\":\"unprocessable entity\"}".into())
        } else {
            Reply::Chunked(200, "{\"accepted\":true}".into())
        }
    });
    let base = format!("http://{}", r.addr);
    let dead = dir.path().join("dead-letter.jsonl");
    let mut settings = SinkSettings::jsonl(Some(&dir.path().join("bob.jsonl")));
    settings.http = vec![
        HttpSink::Elastic {
            url: format!("{base}/es").parse().unwrap(),
            index: "isac-indicators".into(),
        },
        HttpSink::Webhook {
            url: format!("{base}/hook").parse().unwrap(),
            secret: "s3cret".into(),
        },
    ];
    settings.http_retry = fast_retry();
    settings.dead_letter = Some(dead.clone());
    let mut sink = Sinks::open(settings).unwrap();
    let report = bob.sync(false, &mut sink).await.unwrap();
    assert_eq!(report.new, 3);
    assert_eq!(bob.store.lock().unwrap().cursor().unwrap(), 3);

    // The 429 items were sent again (the whole request) until indexed.
    let bulk_requests: Vec<usize> = r
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, ..)| p == "/es/_bulk")
        .map(|(_, _, b, _)| String::from_utf8_lossy(b).lines().count() / 2)
        .collect();
    assert_eq!(bulk_requests, [3, 3, 3], "two refusals, then indexed");
    let want: std::collections::BTreeSet<String> = ids[..2].iter().cloned().collect();
    assert_eq!(
        *indexed.lock().unwrap(),
        want,
        "every good document indexed"
    );

    // Rejected for good: dead-lettered with the answer as decoded.
    let lines = dead_letters(&dead);
    let by_sink =
        |s: &str| -> Vec<&serde_json::Value> { lines.iter().filter(|l| l["sink"] == s).collect() };
    let es = by_sink("elastic");
    assert_eq!(es.len(), 1, "{lines:?}");
    assert_eq!(es[0]["status"], 400);
    assert_eq!(es[0]["item"]["title"], "reject-me");
    assert!(
        es[0]["answer"]
            .as_str()
            .unwrap()
            .contains("mapper_parsing_exception"),
        "{}",
        es[0]["answer"]
    );
    let hook = by_sink("webhook");
    assert_eq!(hook.len(), 1, "{lines:?}");
    assert_eq!(hook[0]["status"], 422);
    let answer = hook[0]["answer"].as_str().unwrap();
    assert!(
        answer.ends_with(": {\"error\":\"unprocessable entity\"}"),
        "the decoded body, no chunk sizes: {answer}"
    );
    hub.stop().await;
}

#[tokio::test]
async fn a_bulk_answer_cut_short_is_retried_and_nothing_is_committed_until_a_whole_one() {
    use member_agent::sinks::http::{HttpSink, Retry};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let (hub, bob, _) = bob_with_items(dir.path(), 2).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // A 200 whose body stops halfway, then the server closes: framed by
    // Content-Length, chunked, and by the close itself; then a whole answer.
    let n = AtomicUsize::new(0);
    let r = receiver_with(listener, None, move |_, _, _, body| {
        let whole = elastic_bulk_answer(body, |_| 201);
        let half = &whole[..whole.len() / 2];
        match n.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::Raw(
                200,
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{half}",
                    whole.len()
                )
                .into_bytes(),
            ),
            1 => {
                let mut raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                let framed = chunked(&whole);
                raw.extend_from_slice(&framed[..framed.len() / 2]);
                Reply::Raw(200, raw)
            }
            2 => Reply::Raw(
                200,
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{half}")
                    .into_bytes(),
            ),
            _ => Reply::Sized(200, whole),
        }
    });
    let mut settings = SinkSettings::jsonl(Some(&dir.path().join("bob.jsonl")));
    settings.http = vec![HttpSink::Elastic {
        url: format!("http://{}/es", r.addr).parse().unwrap(),
        index: "isac-indicators".into(),
    }];
    settings.http_retry = Retry::none();
    let mut sink = Sinks::open(settings).unwrap();
    for framing in ["Content-Length", "chunked", "close-delimited"] {
        let err = bob.sync(false, &mut sink).await.unwrap_err();
        assert_eq!(
            bob.store.lock().unwrap().cursor().unwrap(),
            0,
            "a {framing} answer cut short commits nothing ({err})"
        );
    }
    let report = bob.sync(false, &mut sink).await.unwrap();
    assert_eq!(report.new, 2);
    assert_eq!(bob.store.lock().unwrap().cursor().unwrap(), 2);
    assert_eq!(r.seen.lock().unwrap().len(), 4);
    hub.stop().await;
}

#[tokio::test]
async fn splunk_hec_error_codes_are_retried_or_dead_lettered_never_counted_as_delivered() {
    use member_agent::sinks::http::{HttpSink, Retry};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let (hub, bob, _) = bob_with_items(dir.path(), 2).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // 200 with code 9 (server busy), then 200 with code 7 (incorrect index),
    // both chunked.
    let n = AtomicUsize::new(0);
    let r = receiver_with(listener, None, move |_, _, _, _| {
        match n.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::Chunked(200, "{\"text\":\"Server is busy\",\"code\":9}".into()),
            _ => Reply::Chunked(200, "{\"text\":\"Incorrect index\",\"code\":7}".into()),
        }
    });
    let dead = dir.path().join("dead-letter.jsonl");
    let mut settings = SinkSettings::jsonl(Some(&dir.path().join("bob.jsonl")));
    settings.http = vec![HttpSink::SplunkHec {
        url: format!("http://{}/services/collector/event", r.addr)
            .parse()
            .unwrap(),
        token: "hec-token".into(),
        index: Some("no-such-index".into()),
        sourcetype: "isac:indicator".into(),
    }];
    settings.http_retry = Retry::none();
    settings.dead_letter = Some(dead.clone());
    let mut sink = Sinks::open(settings).unwrap();
    let err = bob.sync(false, &mut sink).await.unwrap_err().to_string();
    assert!(err.contains("busy"), "{err}");
    assert_eq!(bob.store.lock().unwrap().cursor().unwrap(), 0);
    assert!(dead_letters(&dead).is_empty());

    bob.sync(false, &mut sink).await.unwrap();
    let lines = dead_letters(&dead);
    assert_eq!(lines.len(), 2, "both events of the request: {lines:?}");
    for l in &lines {
        assert_eq!(l["sink"], "splunk-hec");
        let answer = l["answer"].as_str().unwrap();
        assert!(answer.contains("Incorrect index"), "{answer}");
    }
    assert_eq!(r.seen.lock().unwrap().len(), 2);
    hub.stop().await;
}

#[tokio::test]
async fn http_sinks_keep_one_connection_alive_and_reconnect_when_the_receiver_drops_it() {
    use member_agent::sinks::http::{HttpSink, Retry};
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let (hub, bob, _) = bob_with_items(dir.path(), 5).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // The third answer says nothing of closing, and then the receiver
    // closes: the next request finds that out and goes on a new connection.
    let r = receiver_with(listener, None, |n, _, _, _| {
        if n == 3 {
            Reply::Raw(
                200,
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            )
        } else {
            Reply::KeepAlive(200, "ok".into())
        }
    });
    let mut settings = SinkSettings::jsonl(Some(&dir.path().join("bob.jsonl")));
    settings.http = vec![HttpSink::Webhook {
        url: format!("http://{}/hook", r.addr).parse().unwrap(),
        secret: "s3cret".into(),
    }];
    // One attempt: a request lost on a dropped connection would fail the sync.
    settings.http_retry = Retry::none();
    let mut sink = Sinks::open(settings).unwrap();
    let report = bob.sync(false, &mut sink).await.unwrap();
    assert_eq!(report.new, 5);
    assert_eq!(r.seen.lock().unwrap().len(), 5, "each item once");
    assert_eq!(
        r.connections.load(Ordering::SeqCst),
        2,
        "requests 1-3 on one connection, 4-5 on another"
    );
    hub.stop().await;
}

#[tokio::test]
async fn an_https_sink_on_an_ipv6_literal_delivers_and_names_the_port_in_host() {
    use member_agent::sinks::http::{HttpSink, Retry};
    let listener = match tokio::net::TcpListener::bind("[::1]:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipped: this machine has no IPv6 loopback ([::1]: {e})");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let (hub, bob, _) = bob_with_items(dir.path(), 2).await;
    let (ca, ca_key) = hub::pki::create_ca("webhook test CA").unwrap();
    let (cert, key) = hub::pki::issue_server_cert(&ca, &ca_key, &["::1".into()]).unwrap();
    let mut acceptor =
        openssl::ssl::SslAcceptor::mozilla_intermediate_v5(openssl::ssl::SslMethod::tls_server())
            .unwrap();
    acceptor.set_certificate(&cert).unwrap();
    acceptor.set_private_key(&key).unwrap();
    let r = receiver_with(listener, Some(acceptor.build()), |_, _, _, _| {
        Reply::Sized(200, "ok".into())
    });
    let port = r.addr.port();
    let mut settings = SinkSettings::jsonl(Some(&dir.path().join("bob.jsonl")));
    settings.http = vec![HttpSink::Webhook {
        url: format!("https://[::1]:{port}/hook").parse().unwrap(),
        secret: "s3cret".into(),
    }];
    settings.http_ca = Some(ca);
    settings.http_retry = Retry::none();
    let mut sink = Sinks::open(settings).unwrap();
    let report = bob.sync(false, &mut sink).await.unwrap();
    assert_eq!(report.new, 2);
    assert_eq!(bob.store.lock().unwrap().cursor().unwrap(), 2);
    let seen = r.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (path, headers, _, _) in &seen {
        assert_eq!(path, "/hook");
        let host = headers.iter().find(|(k, _)| k == "host").map(|(_, v)| v);
        assert_eq!(host, Some(&format!("[::1]:{port}")));
    }
    hub.stop().await;
}

#[tokio::test]
async fn syslog_cef_over_tcp_holds_the_cursor_while_the_receiver_is_down() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    publish(&alice, d("c2.evil.example", "critical", 90, &[]))
        .await
        .unwrap();
    publish(&alice, d("pkg:pypi/evil@1.0.0", "low", 40, &[]))
        .await
        .unwrap();

    // Reserve a port, then leave it closed: the receiver is down.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut settings = SinkSettings::jsonl(Some(&dir.path().join("bob.jsonl")));
    settings.syslog = vec![format!("tcp://127.0.0.1:{port}").parse().unwrap()];
    let mut sink = Sinks::open(settings).unwrap();
    let err = bob.sync(false, &mut sink).await.unwrap_err();
    assert!(err.to_string().contains("syslog"), "{err}");
    assert_eq!(
        bob.store.lock().unwrap().cursor().unwrap(),
        0,
        "the cursor held"
    );

    // The receiver comes up; frames are RFC 6587 octet-counted RFC 5424 + CEF.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let f2 = frames.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            // Octet counting: "LEN SP MSG", one frame after another.
            let mut rest = &buf[..];
            while !rest.is_empty() {
                let sp = rest.iter().position(|b| *b == b' ').expect("LEN SP");
                let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
                let msg = &rest[sp + 1..sp + 1 + len];
                f2.lock()
                    .unwrap()
                    .push(String::from_utf8(msg.to_vec()).unwrap());
                rest = &rest[sp + 1 + len..];
            }
        }
    });
    bob.sync(false, &mut sink).await.unwrap();
    eventually(
        "both frames at the receiver",
        Duration::from_secs(30),
        || frames.lock().unwrap().len() >= 2,
    )
    .await;
    let frames = frames.lock().unwrap().clone();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert!(
        frames[0].starts_with("<130>1 ") && frames[0].contains("CEF:0|ISAC|isac-member-agent|"),
        "{}",
        frames[0]
    );
    assert!(
        frames[0].contains("|network|c2.evil.example (critical)|10|")
            && frames[0].contains("dhost=c2.evil.example")
    );
    assert!(
        frames[1].starts_with("<133>1 ") && frames[1].contains("|package|"),
        "{}",
        frames[1]
    );
    assert!(frames.iter().all(|f| f.contains("cs1Label=tlp cs1=green")));
    hub.stop().await;
}

/// A real rsyslogd (Debian's `rsyslog` and `rsyslog-openssl`, installed by
/// scripts/install-deps) listening with TLS on a loopback port and writing
/// what it receives to a file; killed on drop.
struct Rsyslogd {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Rsyslogd {
    async fn start_tls(dir: &std::path::Path, cert: &str, key: &str, ca: &str) -> (Rsyslogd, u16) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let work = dir.join("rsyslog-work");
        std::fs::create_dir_all(&work).unwrap();
        for (name, pem) in [("ca.pem", ca), ("server.pem", cert), ("server.key", key)] {
            std::fs::write(dir.join(name), pem).unwrap();
        }
        let out = dir.join("received.log");
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{work}"
  defaultNetstreamDriver="ossl"
  defaultNetstreamDriverCAFile="{d}/ca.pem"
  defaultNetstreamDriverCertFile="{d}/server.pem"
  defaultNetstreamDriverKeyFile="{d}/server.key")
module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="fields" type="string" string="%app-name% %msgid% %msg%\n")
*.* action(type="omfile" file="{out}" template="fields")
"#,
                work = work.display(),
                d = dir.display(),
                out = out.display(),
            ),
        )
        .unwrap();
        let child = std::process::Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("rsyslogd (Debian package rsyslog; run scripts/install-deps)");
        let r = Rsyslogd { child, out };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return (r, port);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("rsyslogd did not listen on {port}");
    }

    /// The lines received so far, waiting until there are at least `n`.
    async fn lines(&self, n: usize) -> Vec<String> {
        let mut got = Vec::new();
        // Poll up to 30 s: under a loaded full run rsyslog's file writer has
        // been seen to lag past 10 s.
        for _ in 0..600 {
            got = std::fs::read_to_string(&self.out)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            if got.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        got
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn syslog_over_tls_reaches_a_real_rsyslog_and_an_unverified_server_holds_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    for i in 0..3 {
        publish(&alice, d(&format!("c{i}.evil.example"), "high", 80, &[]))
            .await
            .unwrap();
    }
    let (ca, ca_key) = hub::pki::create_ca("syslog test CA").unwrap();
    let (cert, key) =
        hub::pki::issue_server_cert(&ca, &ca_key, &["localhost".into(), "127.0.0.1".into()])
            .unwrap();
    let pem = |b: Vec<u8>| String::from_utf8(b).unwrap();
    let (rsyslog, port) = Rsyslogd::start_tls(
        dir.path(),
        &pem(cert.to_pem().unwrap()),
        &pem(key.private_key_to_pem_pkcs8().unwrap()),
        &pem(ca.to_pem().unwrap()),
    )
    .await;

    let mut settings = SinkSettings::jsonl(Some(&dir.path().join("bob.jsonl")));
    let mut target: member_agent::sinks::syslog::SyslogTarget =
        format!("tls://127.0.0.1:{port}").parse().unwrap();
    // A server we cannot verify (its CA is not trusted) gets nothing, and
    // the cursor holds.
    let (other_ca, _) = hub::pki::create_ca("someone else").unwrap();
    target.ca = Some(other_ca);
    settings.syslog = vec![target.clone()];
    let mut sink = Sinks::open(settings.clone()).unwrap();
    let err = bob.sync(false, &mut sink).await.unwrap_err().to_string();
    assert!(
        err.contains("TLS") && err.contains("certificate verify failed"),
        "{err}"
    );
    assert_eq!(bob.store.lock().unwrap().cursor().unwrap(), 0);

    target.ca = Some(ca.clone());
    settings.syslog = vec![target.clone()];
    sink = Sinks::open(settings.clone()).unwrap();
    let r = bob.sync(false, &mut sink).await.unwrap();
    assert_eq!(r.new, 3);
    let lines = rsyslog.lines(3).await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (i, l) in lines.iter().enumerate() {
        // rsyslog parsed our RFC 5424 header (APP-NAME, MSGID) and the CEF payload.
        assert!(
            l.starts_with("isac-member-agent indicator CEF:0|ISAC|isac-member-agent|"),
            "{l}"
        );
        assert!(l.contains(&format!("dhost=c{i}.evil.example")), "{l}");
        assert!(l.contains("|network|"), "{l}");
    }
    // By name as well as by IP.
    publish(&alice, d("c3.evil.example", "critical", 90, &[]))
        .await
        .unwrap();
    let mut by_name: member_agent::sinks::syslog::SyslogTarget =
        format!("tls://localhost:{port}").parse().unwrap();
    by_name.ca = Some(ca);
    settings.syslog = vec![by_name];
    sink = Sinks::open(settings).unwrap();
    let r = bob.sync(false, &mut sink).await.unwrap();
    // Seen once under a loaded full run: rsyslog's file held 3 lines after
    // 30 s. Whether the agent sent the fourth tells which side lost it.
    assert_eq!(r.new, 1, "c3 not delivered to the syslog sink");
    let lines = rsyslog.lines(4).await;
    assert_eq!(
        lines.len(),
        4,
        "rsyslog wrote {} of 4 lines: {lines:?}",
        lines.len()
    );
    assert!(lines[3].contains("dhost=c3.evil.example"), "{lines:?}");
    hub.stop().await;
}

/// A real SMTP server (Python aiosmtpd, installed by scripts/install-deps)
/// on loopback: STARTTLS with the given certificate and AUTH PLAIN required
/// when `tls`, plain and open otherwise. Each message it accepts becomes a
/// JSON line in `out`: envelope, TLS, login, decoded subject and body.
const SMTP_SERVER: &str = r#"
import sys, json, email, email.header
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
port, out, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
tls = cert != "-"
class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        m = email.message_from_bytes(envelope.content)
        rec = {"from": envelope.mail_from, "to": envelope.rcpt_tos, "tls": session.ssl is not None,
               "login": (session.auth_data.login.decode() if session.auth_data else None),
               "subject": str(email.header.make_header(email.header.decode_header(unfold(m["Subject"])))),
               "message_id": m["Message-ID"], "tlp": m["X-ISAC-TLP"], "date": m["Date"],
               "body": m.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n")}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        return "250 OK"
# As a mail reader shows them: long header lines unfolded (RFC 5322 2.2.3),
# text in canonical CRLF form (RFC 2046 4.1.1) with local line breaks.
def unfold(value):
    return value.replace("\r\n", "")
def auth(server, session, envelope, mechanism, data):
    return AuthResult(success=(data.login == b"agent" and data.password == b"s3cret"), auth_data=data)
kw = {}
if tls:
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    kw = dict(tls_context=ctx, require_starttls=True, authenticator=auth, auth_required=True, auth_require_tls=True)
c = Controller(Handler(), hostname="127.0.0.1", port=port, **kw)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

struct SmtpServer {
    child: std::process::Child,
    port: u16,
    out: std::path::PathBuf,
}

impl SmtpServer {
    fn start(dir: &std::path::Path, name: &str, tls: Option<(&str, &str)>) -> SmtpServer {
        use std::io::BufRead;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = dir.join(format!("{name}.jsonl"));
        let (cert, key) = match tls {
            Some((c, k)) => {
                std::fs::write(dir.join(format!("{name}.crt")), c).unwrap();
                std::fs::write(dir.join(format!("{name}.key")), k).unwrap();
                (
                    dir.join(format!("{name}.crt")).display().to_string(),
                    dir.join(format!("{name}.key")).display().to_string(),
                )
            }
            None => ("-".into(), "-".into()),
        };
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(SMTP_SERVER)
            .arg(port.to_string())
            .arg(&out)
            .arg(cert)
            .arg(key)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(
            ready.trim(),
            "ready",
            "aiosmtpd did not start (run scripts/install-deps)"
        );
        SmtpServer { child, port, out }
    }

    fn messages(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA and a server certificate (PEM) it issued for loopback.
fn smtp_tls_identity() -> (openssl::x509::X509, String, String) {
    let (ca, ca_key) = hub::pki::create_ca("smtp test CA").unwrap();
    let (cert, key) =
        hub::pki::issue_server_cert(&ca, &ca_key, &["localhost".into(), "127.0.0.1".into()])
            .unwrap();
    let pem = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        ca,
        pem(cert.to_pem().unwrap()),
        pem(key.private_key_to_pem_pkcs8().unwrap()),
    )
}

/// bob-bank's mail sink to a server on loopback: `ca` trusted, AUTH PLAIN
/// as `SMTP_SERVER` wants it, indicators at or above high.
fn mail_sink(
    ca: &openssl::x509::X509,
    port: u16,
    to: &[&str],
) -> member_agent::sinks::mail::MailSink {
    member_agent::sinks::mail::MailSink {
        host: "127.0.0.1".into(),
        port,
        from: "isac-agent@bob-bank.example".into(),
        to: to.iter().map(|s| s.to_string()).collect(),
        min_severity: isac_core::Severity::High,
        auth: Some(("agent".into(), "s3cret".into())),
        ca: Some(ca.clone()),
    }
}

#[tokio::test]
async fn bulletins_and_severe_items_are_mailed_over_starttls_and_never_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let staff =
        enrolled_agent_with_role(&hub, "isac-staff", "coordinator", &dir.path().join("staff"))
            .await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    publish(&alice, d("pkg:npm/critical-one@1.0.0", "critical", 90, &[]))
        .await
        .unwrap();
    publish(&alice, d("pkg:npm/low-one@1.0.0", "low", 90, &[]))
        .await
        .unwrap();
    publish(&alice, d("c2.evil.example", "high", 80, &[]))
        .await
        .unwrap();
    member_agent::publish::publish_bulletin(
        &staff,
        member_agent::draft::BulletinDraft {
            tlp: Some("amber".into()),
            title: "Campagne gegen npm-Maintainer".into(),
            body: "Rotate your npm tokens now.\n.\nA line with a lone dot above.".into(),
            severity: Some("low".into()),
            incident_id: Some("INC-2026-7".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let (ca, cert, key) = smtp_tls_identity();
    let mail = |port: u16, to: &[&str]| mail_sink(&ca, port, to);
    let mut settings = SinkSettings::jsonl(Some(&dir.path().join("bob.jsonl")));

    // A server without STARTTLS gets nothing, and the cursor holds.
    let clear = SmtpServer::start(dir.path(), "clear", None);
    settings.mail = Some(mail(clear.port, &["soc@bob-bank.example"]));
    let mut sink = Sinks::open(settings.clone()).unwrap();
    let err = bob.sync(false, &mut sink).await.unwrap_err().to_string();
    assert!(err.contains("does not offer STARTTLS"), "{err}");
    assert!(clear.messages().is_empty());
    assert_eq!(bob.store.lock().unwrap().cursor().unwrap(), 0);

    // The real one: STARTTLS, AUTH PLAIN, one refused recipient set aside.
    let server = SmtpServer::start(dir.path(), "tls", Some((&cert, &key)));
    settings.mail = Some(mail(
        server.port,
        &["soc@bob-bank.example", "cert@bob-bank.example"],
    ));
    sink = Sinks::open(settings.clone()).unwrap();
    let r = bob.sync(false, &mut sink).await.unwrap();
    assert_eq!(r.new, 4);
    let mut got = server.messages();
    got.sort_by_key(|m| m["subject"].as_str().unwrap().to_owned());
    let subjects: Vec<&str> = got.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    assert_eq!(
        subjects,
        [
            "[TLP:AMBER] ISAC bulletin (low): Campagne gegen npm-Maintainer",
            "[TLP:GREEN] critical package indicator: pkg:npm/critical-one@1.0.0 (critical)",
            "[TLP:GREEN] high network indicator: c2.evil.example (high)",
        ],
        "bulletins always, indicators at or above high"
    );
    for m in &got {
        assert_eq!(m["tls"], true);
        assert_eq!(m["login"], "agent");
        assert_eq!(m["from"], "isac-agent@bob-bank.example");
        assert_eq!(
            m["to"],
            serde_json::json!(["soc@bob-bank.example", "cert@bob-bank.example"])
        );
        assert!(m["message_id"]
            .as_str()
            .unwrap()
            .ends_with("@isac-member-agent>"));
        assert!(m["date"].as_str().unwrap().ends_with(" +0000"));
    }
    let bulletin = &got[0];
    assert_eq!(bulletin["tlp"], "AMBER");
    let body = bulletin["body"].as_str().unwrap();
    assert!(body.starts_with("TLP:AMBER\n"), "{body}");
    assert!(
        body.contains("Rotate your npm tokens now.\n.\nA line with a lone dot above."),
        "{body}"
    );
    assert!(body.contains("Incident: INC-2026-7"), "{body}");

    // A recipient the server refuses for good: set aside, delivery goes on.
    publish(&alice, d("c3.evil.example", "critical", 80, &[]))
        .await
        .unwrap();
    let dead = dir.path().join("dead.jsonl");
    settings.dead_letter = Some(dead.clone());
    settings.mail = Some(mail(server.port, &["nobody@bob-bank.example"]));
    sink = Sinks::open(settings).unwrap();
    bob.sync(false, &mut sink).await.unwrap();
    let dead: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&dead).unwrap().trim()).unwrap();
    assert_eq!(dead["sink"], "mail");
    assert_eq!(dead["status"], 550);
    assert_eq!(dead["item"]["value"], "c3.evil.example");
    assert_eq!(bob.store.lock().unwrap().cursor().unwrap(), 5);
    drop(server);
    drop(clear);
    hub.stop().await;
}

/// A retraction carries no severity: the agent mails it when it mails
/// the item it withdraws, by that item's severity as held (also when item
/// and retraction arrive in one sync), and its JSON Lines record names the
/// withdrawn item under `retracted`.
#[tokio::test]
async fn a_retraction_of_a_mailed_item_is_mailed_and_of_an_unmailed_one_is_not() {
    use member_agent::publish::retract;
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let severe = publish(&alice, d("c2.evil.example", "critical", 90, &[]))
        .await
        .unwrap();
    let mild = publish(&alice, d("pkg:npm/low-one@1.0.0", "low", 90, &[]))
        .await
        .unwrap();
    let (ca, cert, key) = smtp_tls_identity();
    let server = SmtpServer::start(dir.path(), "tls", Some((&cert, &key)));
    let jsonl = dir.path().join("bob.jsonl");
    let settings = SinkSettings {
        mail: Some(mail_sink(&ca, server.port, &["soc@bob-bank.example"])),
        ..SinkSettings::jsonl(Some(&jsonl))
    };
    let mut sinks = Sinks::open(settings).unwrap();
    bob.sync(false, &mut sinks).await.unwrap();
    let subjects = |server: &SmtpServer| -> Vec<String> {
        server
            .messages()
            .iter()
            .map(|m| m["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        subjects(&server),
        ["[TLP:GREEN] critical network indicator: c2.evil.example (critical)"]
    );

    // The source retracts what it holds.
    let mut alice_sinks = Sinks::jsonl(Some(&dir.path().join("alice.jsonl"))).unwrap();
    alice.sync(false, &mut alice_sinks).await.unwrap();
    retract(&alice, &severe.id, "sinkholed").await.unwrap();
    retract(&alice, &mild.id, "false positive").await.unwrap();
    // Published and withdrawn before bob's next sync: both come at once.
    let brief = publish(&alice, d("brief.evil.example", "high", 80, &[]))
        .await
        .unwrap();
    alice.sync(false, &mut alice_sinks).await.unwrap();
    retract(&alice, &brief.id, "duplicate").await.unwrap();
    let r = bob.sync(false, &mut sinks).await.unwrap();
    assert_eq!(r.new, 4);
    let got = server.messages();
    assert_eq!(
        subjects(&server)[1..],
        [
            "[TLP:GREEN] RETRACTED: critical network indicator: c2.evil.example (critical)",
            "[TLP:GREEN] high network indicator: brief.evil.example (high)",
            "[TLP:GREEN] RETRACTED: high network indicator: brief.evil.example (high)",
        ],
        "no mail for the low item's retraction"
    );
    let body = got[1]["body"].as_str().unwrap();
    assert!(body.contains("Reason:      sinkholed\n"), "{body}");
    assert!(
        body.contains(&format!("Retracted:   {} revision 1\n", severe.id)),
        "{body}"
    );
    assert!(body.contains("Severity:    critical\n"), "{body}");
    assert_eq!(got[1]["tlp"], "GREEN");
    assert_eq!(got[1]["tls"], true);

    // Every sink gets the same record: the JSON Lines file shows what each
    // retraction withdrew, the low one's too.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let withdrawn = |id: &str| {
        lines
            .iter()
            .find(|l| l["action"] == "retract" && l["target"] == id)
            .unwrap_or_else(|| panic!("no retraction of {id}"))["retracted"]
            .clone()
    };
    assert_eq!(withdrawn(&severe.id)["severity"], "critical");
    assert_eq!(withdrawn(&severe.id)["value"], "c2.evil.example");
    assert_eq!(withdrawn(&mild.id)["severity"], "low");
    assert_eq!(withdrawn(&brief.id)["severity"], "high");
    drop(server);
    hub.stop().await;
}

#[tokio::test]
async fn a_running_agent_lapses_an_item_in_its_sink_without_a_sync_and_a_later_revision_restores_it(
) {
    let dir = tempfile::tempdir().unwrap();
    let start = member_agent::now();
    let clock = hub::app::Clock::manual(start);
    let hub = TestHub::start_with_clock(&dir.path().join("hub"), clock.clone()).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let mut bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let mut short = d("pkg:npm/lapsing@1.0.0", "high", 50, &[]);
    short.valid_until = Some(format_rfc3339(start + 5));
    let first = publish(&alice, short.clone()).await.unwrap();

    let jsonl = dir.path().join("bob.jsonl");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let path = jsonl.clone();
    let runner = tokio::spawn(async move {
        let mut sinks = Sinks::jsonl(Some(&path)).unwrap();
        bob.run(&mut sinks, async {
            let _ = stopped.await;
        })
        .await;
        bob
    });
    let count = |action: &str| {
        std::fs::read_to_string(&jsonl)
            .unwrap_or_default()
            .matches(&format!("\"action\":\"{action}\""))
            .count()
    };
    eventually(
        "the item in the running agent's sink",
        Duration::from_secs(30),
        || count("upsert") == 1,
    )
    .await;
    // Its second comes: no sync, no new item, the daemon lapses it.
    clock.set(start + 6);
    eventually("the expiry in the sink", Duration::from_secs(30), || {
        count("expire") == 1
    })
    .await;

    // A revision that lives longer brings it back.
    let mut later = short;
    later.valid_until = Some(format_rfc3339(start + 3600));
    let mut revision = later
        .into_prepared(alice.org_id(), format_rfc3339(start + 6))
        .unwrap();
    revision.statement.id = first.id.parse().unwrap();
    revision.statement.revision = 2;
    member_agent::publish::publish_prepared(&alice, &revision)
        .await
        .unwrap();
    eventually(
        "the restored item in the sink",
        Duration::from_secs(30),
        || count("upsert") == 2,
    )
    .await;
    stop.send(()).unwrap();
    let bob = runner.await.unwrap();
    let held = bob.store.lock().unwrap().list(10).unwrap();
    let item = held.iter().find(|i| i.id == first.id).unwrap();
    assert_eq!(
        (item.revision, item.status.as_str()),
        (2, "valid"),
        "{held:?}"
    );
    assert_eq!(count("expire"), 1);
    hub.stop().await;
}
