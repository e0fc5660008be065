//! Defects found by attacking a running hub from outside, each kept as the
//! test that would have caught it: re-sent TAXII writes, connections that
//! never speak, and hostile input on both listeners.

use std::time::Duration;

use isac_e2e::*;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

const ROOT: &str = "/isac";
const H2: &[u8] = b"\x02h2";

fn indicator(id: &str, n: usize) -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": id,
        "created": "2026-11-20T10:00:00.000Z",
        "modified": "2026-11-20T10:00:00.000Z",
        "name": format!("re-sent {n}"),
        "indicator_types": ["malicious-activity"],
        "pattern": format!("[software:x_purl = 'pkg:npm/resent-{n}@1.0.0']"),
        "pattern_type": "stix",
        "valid_from": "2026-11-20T10:00:00Z",
        "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
    })
}

/// A TAXII POST of `body` to the Indicators collection with `key`.
async fn post_objects(hub: &TestHub, key: (&str, &str), body: &[u8]) -> HttpResponse {
    let objects = format!(
        "{ROOT}/collections/{}/objects/",
        hub::taxii::collection_id("indicators")
    );
    hub.taxii_with_body(
        "POST",
        &objects,
        Some(key),
        Some(("application/taxii+json;version=2.1", body)),
    )
    .await
}

/// Sends a whole TAXII POST of `body` and closes the connection without
/// reading the answer (the answer a retrying client never saw).
async fn send_and_hang_up(hub: &TestHub, key: (&str, &str), body: &[u8]) {
    let path = format!(
        "{ROOT}/collections/{}/objects/",
        hub::taxii::collection_id("indicators")
    );
    let token = openssl::base64::encode_block(format!("{}:{}", key.0, key.1).as_bytes());
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {token}\r\nContent-Type: application/taxii+json;version=2.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let mut tls = tls_to(hub.taxii_addr, None, b"\x08http/1.1").await;
    tls.write_all(&request).await.unwrap();
    tls.flush().await.unwrap();
    drop(tls);
}

/// A client that re-sends its envelope (its first answer lost, or sent
/// again while the first is still being stored), or lists an object twice
/// in one envelope, publishes each object version once; the status says
/// the repeat was already there.
#[tokio::test]
async fn a_resent_taxii_envelope_publishes_each_object_once() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    hub.add_member("acme-bank").await;
    let (user, pass) = hub.add_api_key_with("acme-bank", None, true).await;
    let key = (user.as_str(), pass.as_str());
    let before = hub.stored_statements();

    let n = 60;
    let ids: Vec<String> = (0..n)
        .map(|_| format!("indicator--{}", uuid::Uuid::new_v4()))
        .collect();
    let objects: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| indicator(id, i))
        .collect();
    let body = serde_json::to_vec(&json!({ "objects": objects })).unwrap();

    // The same envelope twice at once: a retry while the first is in flight.
    let (a, b) = tokio::join!(
        post_objects(&hub, key, &body),
        post_objects(&hub, key, &body)
    );
    for r in [&a, &b] {
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["success_count"], n, "{}", r.json());
    }
    assert_eq!(
        hub.stored_statements() - before,
        n as i64,
        "published twice"
    );
    let repeats = [a.json(), b.json()]
        .iter()
        .flat_map(|s| s["successes"].as_array().unwrap().clone())
        .filter(|e| e["message"] == "already submitted; nothing changed")
        .count();
    assert_eq!(
        repeats, n,
        "one of the two answers says every object was already there"
    );

    // And once more after both answered.
    let r = post_objects(&hub, key, &body).await;
    assert_eq!(r.status, 202);
    assert_eq!(hub.stored_statements() - before, n as i64);

    // Sent, then the connection dropped before the answer, then sent again.
    let id = format!("indicator--{}", uuid::Uuid::new_v4());
    let one = serde_json::to_vec(&json!({ "objects": [indicator(&id, 1000)] })).unwrap();
    send_and_hang_up(&hub, key, &one).await;
    let r = post_objects(&hub, key, &one).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["success_count"], 1);
    assert_eq!(hub.stored_statements() - before, n as i64 + 1);

    // One object listed twice in one envelope is one statement.
    let id = format!("indicator--{}", uuid::Uuid::new_v4());
    let twice =
        serde_json::to_vec(&json!({ "objects": [indicator(&id, 2000), indicator(&id, 2000)] }))
            .unwrap();
    let r = post_objects(&hub, key, &twice).await;
    let status = r.json();
    assert_eq!(status["success_count"], 2, "{status}");
    assert_eq!(status["failure_count"], 0, "{status}");
    assert_eq!(hub.stored_statements() - before, n as i64 + 2, "{status}");
    hub.stop().await;
}

/// TLS to `addr` offering `alpn` (wire format), presenting `client` when given; then the
/// caller decides what (if anything) to send.
async fn tls_to(
    addr: std::net::SocketAddr,
    client: Option<(&X509, &PKey<Private>)>,
    alpn: &[u8],
) -> tokio_openssl::SslStream<tokio::net::TcpStream> {
    tls_handshake(addr, client, alpn).await.unwrap()
}

/// [`tls_to`], with a refused handshake returned rather than a panic.
pub(crate) async fn tls_handshake(
    addr: impl tokio::net::ToSocketAddrs,
    client: Option<(&X509, &PKey<Private>)>,
    alpn: &[u8],
) -> Result<tokio_openssl::SslStream<tokio::net::TcpStream>, openssl::ssl::Error> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_alpn_protos(alpn).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    if let Some((cert, key)) = client {
        b.set_certificate(cert).unwrap();
        b.set_private_key(key).unwrap();
    }
    let ssl = b
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    std::pin::Pin::new(&mut tls).connect().await?;
    Ok(tls)
}

/// Connections that finish TLS and then never send the HTTP/2 preface (or
/// only half of it), under a client certificate the hub's CA issued (so no
/// idle timeout cuts them), or none, held open while the hub is told to
/// stop: the hub stops anyway (a silent connection held it open for ever).
#[tokio::test]
async fn connections_that_never_send_a_request_do_not_hold_the_stop_open() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let (cert, key) = unregistered_identity(&hub, "acme-bank");
    let raw = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    let raw_taxii = tokio::net::TcpStream::connect(hub.taxii_addr)
        .await
        .unwrap();
    let silent_with_cert = tls_to(hub.addr, Some((&cert, &key)), H2).await;
    let silent = tls_to(hub.addr, None, H2).await;
    let mut half_preface = tls_to(hub.addr, Some((&cert, &key)), H2).await;
    half_preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    half_preface.flush().await.unwrap();
    tokio::time::timeout(Duration::from_secs(300), hub.stop())
        .await
        .expect("the hub stops while silent connections are open");
    drop((raw, raw_taxii, silent_with_cert, silent, half_preface));
}

/// Runs `cmd` with its stdout closed from the start (`| head -0`); returns
/// (exit code, stderr).
fn with_closed_stdout(cmd: &mut std::process::Command) -> (Option<i32>, String) {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Closed before the command has started up, so its first line fails.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `hub status | head -1` panicked ("failed printing to stdout: Broken
/// pipe"). A closed stdout now ends `hub` and `member-agent` quietly, as
/// Unix tools end (141, SIGPIPE's status in a shell; 0 if the output fit
/// in the pipe before it closed).
#[test]
fn a_closed_stdout_ends_hub_and_agent_commands_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    // `hub log key` prepares the data dir.
    let (ok, _, err) = run(bin("hub").arg("--data-dir").arg(&data).args(["log", "key"]));
    assert!(ok, "{err}");
    let agent = dir.path().join("agent");
    let runs = [
        (
            "hub status",
            with_closed_stdout(bin("hub").arg("--data-dir").arg(&data).arg("status")),
        ),
        (
            "hub member list",
            with_closed_stdout(
                bin("hub")
                    .arg("--data-dir")
                    .arg(&data)
                    .args(["member", "list"]),
            ),
        ),
        (
            "member-agent witness key",
            with_closed_stdout(bin("member-agent").arg("--state-dir").arg(&agent).args([
                "witness",
                "key",
                "--name",
                "w.example",
            ])),
        ),
    ];
    for (what, (code, stderr)) in runs {
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert!(
            matches!(code, Some(0) | Some(141)),
            "{what}: exit {code:?}: {stderr}"
        );
    }
}

/// `hub status` (and every other command that only reads) on a missing
/// data dir created one, with a new CA: it now says there is none and
/// creates nothing; an empty directory is not taken for a data dir either.
#[test]
fn read_only_commands_on_a_missing_data_dir_say_so_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("no-such-hub");
    let export = dir.path().join("export.jsonl");
    let export = export.to_str().unwrap();
    let commands: [&[&str]; 8] = [
        &["status"],
        &["member", "list"],
        &["key", "list"],
        &["audit"],
        &["log", "checkpoint"],
        &["api-key", "list"],
        &["prune", "--expired-before", "90d", "--dry-run"],
        &["export", export],
    ];
    for args in commands {
        let out = bin("hub")
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("no hub data directory at {}", data.display())),
            "{args:?}: {stderr}"
        );
        assert!(!data.exists(), "{args:?} created the data dir");
    }
    std::fs::create_dir(&data).unwrap();
    let out = bin("hub")
        .arg("--data-dir")
        .arg(&data)
        .arg("status")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("is not a hub data directory"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "nothing written"
    );
    // A command that changes something still prepares it.
    let (ok, _, err) =
        run(bin("hub")
            .arg("--data-dir")
            .arg(&data)
            .args(["member", "add", "acme-bank"]));
    assert!(ok, "{err}");
    let (ok, out, err) = run(bin("hub").arg("--data-dir").arg(&data).arg("status"));
    assert!(ok, "{err}");
    assert!(out.contains("ca_fingerprint"), "{out}");
}

/// `member-agent publish --csv` read the whole file before its size check,
/// and `--stix` trusted the size the file system reports: `/dev/zero` (or
/// a FIFO, or a file still growing) was read until memory ran out. Both
/// now stop one byte past their limit with a clear error.
#[tokio::test]
async fn importing_an_endless_file_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let agent = enrolled_agent(&hub, "acme-bank", &dir.path().join("agent")).await;
    let before = hub.stored_statements();
    let endless = std::path::Path::new("/dev/zero");
    let csv = member_agent::import::import_csv(&agent, endless, false).await;
    let stix = member_agent::import::import_stix(&agent, endless, None, &[], false).await;
    let osv =
        member_agent::import::import_osv(&agent, endless, isac_core::Tlp::Green, &[], false).await;
    for (what, result) in [("csv", csv), ("stix", stix), ("osv", osv)] {
        let e = result
            .err()
            .unwrap_or_else(|| panic!("{what}: imported"))
            .to_string();
        assert!(e.contains("/dev/zero"), "{what}: {e}");
    }
    assert_eq!(hub.stored_statements(), before);
    hub.stop().await;
}

/// A TAXII POST whose body trickles in (slow loris after the headers) held
/// its connection and a growing buffer for as long as the client liked:
/// the hub now answers 408 once the body is late, and serves others
/// meanwhile.
#[tokio::test]
async fn a_taxii_body_that_never_finishes_is_answered_408() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    hub.add_member("acme-bank").await;
    let (user, pass) = hub.add_api_key_with("acme-bank", None, true).await;
    let path = format!(
        "{ROOT}/collections/{}/objects/",
        hub::taxii::collection_id("indicators")
    );
    let token = openssl::base64::encode_block(format!("{user}:{pass}").as_bytes());
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {token}\r\nContent-Type: application/taxii+json;version=2.1\r\nContent-Length: 100000\r\n\r\n{{\"objects\": ["
    );
    let mut slow = tls_to(hub.taxii_addr, None, b"\x08http/1.1").await;
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.flush().await.unwrap();
    // Others are served meanwhile.
    let r = hub
        .taxii(
            "GET",
            &format!("{ROOT}/"),
            Some((user.as_str(), pass.as_str())),
        )
        .await;
    assert_eq!(r.status, 200);
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(300), slow.read_to_end(&mut answer))
        .await
        .expect("the hub answers a body that never finishes")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    hub.stop().await;
}
