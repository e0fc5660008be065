//! TLS between the hub and PostgreSQL (issue 18): a throwaway cluster with
//! `ssl = on` and a server certificate from a test CA. With
//! `sslmode=verify-full` and that CA a hub serves publish and subscribe
//! over TLS connections (the server's `pg_stat_ssl` says so); with another
//! CA `hub serve` refuses to start and names the certificate problem;
//! `sslmode=require` against a cluster without TLS fails clearly;
//! `sslmode=disable` still works (plain connections).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use isac_e2e::pg::{psql, PgCluster};
use isac_e2e::{enrolled_agent, TestHub};

/// `COUNT(ssl), COUNT(*)` over the hub's connections to the cluster.
fn hub_connections(cluster: &PgCluster) -> (u64, u64) {
    let out = psql(
        cluster,
        "postgres",
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'isac-hub'",
    );
    let (ssl, all) = out.split_once('|').expect("two columns");
    (ssl.parse().unwrap(), all.parse().unwrap())
}

fn with_tls(url: &str, query: &str) -> String {
    format!("{url}?{query}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_on_verify_full_with_the_right_ca_serves_publish_and_subscribe_over_tls() {
    let cluster = tokio::task::spawn_blocking(PgCluster::start_tls)
        .await
        .unwrap();
    let ca = cluster.tls_files().ca;
    let url = with_tls(
        &cluster.url("postgres"),
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_on_store(&dir.path().join("hub"), &url).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    for n in 0..3 {
        let draft = member_agent::draft::IndicatorDraft {
            tlp: Some("green".into()),
            title: Some(format!("over tls {n}")),
            severity: Some("high".into()),
            confidence: Some(80),
            purl: Some(format!("pkg:npm/over-tls-{n}@1.0.0")),
            ..Default::default()
        };
        member_agent::publish::publish(&alice, draft).await.unwrap();
    }
    let mut sink = member_agent::Sinks::jsonl(Some(&dir.path().join("bob.jsonl"))).unwrap();
    assert_eq!(bob.sync(false, &mut sink).await.unwrap().new, 3);
    let connections = {
        let cluster = &cluster;
        tokio::task::block_in_place(|| hub_connections(cluster))
    };
    assert!(
        connections.1 > 0 && connections.0 == connections.1,
        "every connection of the hub is TLS (ssl, all) = {connections:?}"
    );
    hub.stop().await;
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}

/// `hub serve --store URL` on a fresh data dir: waits (bounded) for it to
/// exit, and returns (success, stderr). A hub that starts serving instead
/// fails the test (after being killed).
fn serve_expecting_exit(data_dir: &Path, url: &str) -> (bool, String) {
    let mut child = isac_e2e::bin("hub")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--taxii-listen", "off"])
        .args(["--store", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hub");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`hub serve` with {url} did not exit within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    eprintln!("hub serve --store {url}: {err}");
    (status.success(), err)
}

#[test]
fn a_wrong_ca_or_a_server_without_tls_stops_the_hub_with_the_reason_and_disable_still_works() {
    let tls_cluster = PgCluster::start_tls();
    let plain_cluster = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();

    // Another CA: the handshake fails and the hub says why.
    let wrong = with_tls(
        &tls_cluster.url("postgres"),
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            tls_cluster.tls_files().other_ca.display()
        ),
    );
    let (ok, err) = serve_expecting_exit(&dir.path().join("a"), &wrong);
    assert!(!ok, "the hub refused to start");
    assert!(
        err.contains("certificate") && err.contains("not trusted"),
        "names the certificate problem: {err}"
    );
    assert!(
        err.contains("unable to get local issuer certificate"),
        "with OpenSSL's reason: {err}"
    );
    assert!(err.contains("other-ca.pem"), "and the CA file: {err}");

    // verify-ca without any CA: refused before connecting.
    let (ok, err) = serve_expecting_exit(
        &dir.path().join("b"),
        &with_tls(&tls_cluster.url("postgres"), "sslmode=verify-ca"),
    );
    assert!(!ok);
    assert!(err.contains("sslrootcert"), "{err}");

    // require against a server without TLS.
    let (ok, err) = serve_expecting_exit(
        &dir.path().join("c"),
        &with_tls(&plain_cluster.url("postgres"), "sslmode=require"),
    );
    assert!(!ok, "the hub refused to start");
    assert!(
        err.contains("server does not support TLS"),
        "says the server has no TLS: {err}"
    );

    // disable: plain connections, to the TLS cluster too.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = with_tls(&tls_cluster.url("postgres"), "sslmode=disable");
        let store = hub::store::Store::open_postgres(&url, None).await.unwrap();
        assert_eq!(store.head(), 0);
        assert!(store.member("nobody-here").await.unwrap().is_none());
        let (ssl, all) = hub_connections(&tls_cluster);
        assert!(
            all > 0 && ssl == 0,
            "plain connections: (ssl, all) = ({ssl}, {all})"
        );
        store.close();

        // verify-full checks the name: the right CA, but a host name the
        // certificate does not carry (reached at 127.0.0.1 via hostaddr).
        let url = format!(
            "postgres://isac@wrong-name.invalid:{}/postgres?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
            tls_cluster.port,
            tls_cluster.tls_files().ca.display()
        );
        let err = match hub::store::Store::open_postgres(&url, None).await {
            Ok(_) => panic!("verify-full accepted a certificate for another name"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("not trusted") && err.contains("hostname mismatch"),
            "{err}"
        );
    });
    drop(rt);
    // And the CA through hub.toml's store_ca_file, with require (libpq:
    // require with a CA verifies the chain): a wrong one is refused too.
    let data = dir.path().join("d");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("hub.toml"),
        format!(
            "store_ca_file = {:?}\n",
            tls_cluster.tls_files().other_ca.display().to_string()
        ),
    )
    .unwrap();
    let (ok, err) = serve_expecting_exit(
        &data,
        &with_tls(&tls_cluster.url("postgres"), "sslmode=require"),
    );
    assert!(!ok);
    assert!(err.contains("not trusted"), "{err}");
}
