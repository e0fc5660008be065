//! Test harness for end-to-end tests: real hubs on ephemeral loopback ports
//! with real mTLS and real SQLite files, real agents, and a small PKI for
//! hostile clients. Nothing here mocks a component of ours.

pub mod pg;
pub mod replicas;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hub::config::HubConfig;
use isac_proto::v1 as pb;
use member_agent::enroll::{enroll, EnrollOptions};
use member_agent::{Agent, StateDir};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// An in-process hub serving on 127.0.0.1:0.
pub struct TestHub {
    pub addr: SocketAddr,
    /// TAXII 2.1 (HTTPS) on its own ephemeral port.
    pub taxii_addr: SocketAddr,
    /// Prometheus metrics (plain HTTP) on its own ephemeral port.
    pub metrics_addr: SocketAddr,
    pub config: HubConfig,
    /// The operator's own handle on the hub's database, as the CLI opens it.
    pub admin_store: hub::store::Store,
    /// The running hub's own store handle ([`TestHub::close_hub_store`]).
    hub_store: hub::store::Store,
    pub ca_fingerprint: String,
    /// The hub's clock (`Clock::manual` from [`TestHub::start_with_clock`]
    /// moves it).
    pub clock: hub::app::Clock,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestHub {
    pub async fn start(data_dir: &Path) -> TestHub {
        Self::start_at(data_dir, "127.0.0.1:0").await
    }

    /// Starts on a given address (to restart a hub where its agents expect it).
    pub async fn start_at(data_dir: &Path, addr: &str) -> TestHub {
        Self::start_at_with_clock(data_dir, addr, hub::app::Clock::system()).await
    }

    /// Starts on a clock the test sets (`hub::app::Clock::manual`).
    pub async fn start_with_clock(data_dir: &Path, clock: hub::app::Clock) -> TestHub {
        Self::start_at_with_clock(data_dir, "127.0.0.1:0", clock).await
    }

    /// Starts on the PostgreSQL database at `store` (`postgres://...`).
    pub async fn start_on_store(data_dir: &Path, store: &str) -> TestHub {
        Self::start_with(data_dir, "127.0.0.1:0", hub::app::Clock::system(), store).await
    }

    async fn start_at_with_clock(data_dir: &Path, addr: &str, clock: hub::app::Clock) -> TestHub {
        Self::start_with(data_dir, addr, clock, "").await
    }

    async fn start_with(
        data_dir: &Path,
        addr: &str,
        clock: hub::app::Clock,
        store: &str,
    ) -> TestHub {
        let mut config = HubConfig::load(data_dir, |_| None).expect("config");
        config.store = store.to_owned();
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        config.listen = addr;
        let taxii_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind TAXII");
        let taxii_addr = taxii_listener.local_addr().expect("TAXII addr");
        config.taxii_listen = Some(taxii_addr);
        let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind metrics");
        let metrics_addr = metrics_listener.local_addr().expect("metrics addr");
        config.metrics_listen = Some(metrics_addr);
        // Create the data dir before serve() starts (it would race us on a
        // multi-threaded runtime).
        let (material, _) = hub::prepare(&config).expect("prepare");
        let hub_store = hub::open_configured_store(&config)
            .await
            .expect("hub store");
        let (stop, stopped) = oneshot::channel::<()>();
        let cfg = config.clone();
        let served_store = hub_store.clone();
        let hub_clock = clock.clone();
        let task = tokio::spawn(async move {
            let listeners = hub::Listeners {
                grpc: listener,
                taxii: Some(taxii_listener),
                metrics: Some(metrics_listener),
            };
            let options = hub::ServeOptions {
                clock: Some(hub_clock),
                store: Some(served_store),
            };
            hub::serve_with(listeners, cfg, options, async {
                let _ = stopped.await;
            })
            .await
            .expect("hub serve");
        });
        // Wait until it answers.
        let admin_store = hub::open_configured_store(&config)
            .await
            .expect("admin store");
        let hub = TestHub {
            addr,
            taxii_addr,
            metrics_addr,
            config,
            admin_store,
            hub_store,
            ca_fingerprint: material.ca_fingerprint,
            clock,
            stop: Some(stop),
            task: Some(task),
        };
        for _ in 0..200 {
            if (!hub.config.store.is_empty() || hub.data_dir().join("hub.db").exists())
                && tokio::net::TcpStream::connect(addr).await.is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        hub
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// `https://localhost:PORT` of the TAXII listener.
    pub fn taxii_url(&self) -> String {
        format!("https://localhost:{}", self.taxii_addr.port())
    }

    /// Creates a TAXII API key as `hub api-key add` does; returns (user, password).
    pub async fn add_api_key(&self, org_id: &str, person: Option<&str>) -> (String, String) {
        self.add_api_key_with(org_id, person, false).await
    }

    /// [`TestHub::add_api_key`], write-enabled when `write` (`--write`).
    pub async fn add_api_key_with(
        &self,
        org_id: &str,
        person: Option<&str>,
        write: bool,
    ) -> (String, String) {
        let key = hub::taxii::keys::generate(org_id, person, "test", write, self.clock.now());
        self.admin_store
            .add_api_key(key.row, "local:test-operator")
            .await
            .expect("add API key");
        (key.username, key.password)
    }

    /// One HTTPS request to the TAXII listener (HTTP/1.1, verifying the hub
    /// CA), with HTTP Basic credentials when given.
    pub async fn taxii(
        &self,
        method: &str,
        path: &str,
        basic: Option<(&str, &str)>,
    ) -> HttpResponse {
        self.taxii_with_body(method, path, basic, None).await
    }

    /// [`TestHub::taxii`] with a body sent as `content_type`.
    pub async fn taxii_with_body(
        &self,
        method: &str,
        path: &str,
        basic: Option<(&str, &str)>,
        body: Option<(&str, &[u8])>,
    ) -> HttpResponse {
        let ca = X509::from_pem(&std::fs::read(self.data_dir().join("ca.crt")).expect("hub CA"))
            .expect("CA pem");
        let auth = basic.map(|(u, p)| {
            let token = openssl::base64::encode_block(format!("{u}:{p}").as_bytes());
            format!("Authorization: Basic {token}\r\n")
        });
        let (content_type, bytes) = body.unwrap_or(("", b""));
        let content_type = if content_type.is_empty() {
            String::new()
        } else {
            format!("Content-Type: {content_type}\r\n")
        };
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost:{}\r\nAccept: application/taxii+json;version=2.1\r\n{}{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.taxii_addr.port(),
            auth.unwrap_or_default(),
            bytes.len()
        )
        .into_bytes();
        request.extend_from_slice(bytes);
        https_exchange(self.taxii_addr, &ca, None, &request).await
    }

    /// `GET /metrics` over plain HTTP: (status, body).
    pub async fn scrape_metrics(&self) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(self.metrics_addr)
            .await
            .expect("connect metrics");
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut raw = Vec::new();
        let _ = tcp.read_to_end(&mut raw).await;
        let r = parse_http_response(&raw);
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// The operator's admin context on this hub's data dir (as `hub` CLI),
    /// dated by the hub's clock.
    pub fn admin(&self) -> hub::grpc::admin::AdminContext<'_> {
        hub::grpc::admin::AdminContext::local(
            &self.admin_store,
            &self.config,
            &self.ca_fingerprint,
            "local:test-operator".into(),
            self.clock.clone(),
        )
    }

    /// Adds a member through the operator path and returns its token.
    pub async fn add_member(&self, org_id: &str) -> String {
        self.add_member_with_role(org_id, "member").await
    }

    pub async fn add_member_with_role(&self, org_id: &str, role: &str) -> String {
        self.admin()
            .add_member(pb::AddMemberRequest {
                org_id: org_id.into(),
                name: String::new(),
                role: role.into(),
                token_ttl_secs: 3600,
            })
            .await
            .expect("add member")
            .token
    }

    /// A new enrollment token for `org_id`, valid for `ttl_secs`; 0 means
    /// already expired (on the API it means "the default").
    pub async fn new_token(&self, org_id: &str, ttl_secs: u64) -> String {
        // ttl 0 means "default" on the API; the tests want "already
        // expired": a one-second token issued two seconds ago by the hub's
        // clock, with no waiting.
        let mut admin = self.admin();
        if ttl_secs == 0 {
            admin.0.clock = hub::app::Clock::manual(self.clock.now() - 2);
        }
        admin
            .new_token(pb::IssueTokenRequest {
                org_id: org_id.into(),
                token_ttl_secs: ttl_secs.max(1),
            })
            .await
            .expect("token")
            .token
    }

    pub fn ca_cert(&self) -> X509 {
        X509::from_pem(&std::fs::read(self.data_dir().join("ca.crt")).unwrap()).unwrap()
    }

    pub fn ca_key(&self) -> PKey<Private> {
        PKey::private_key_from_pem(&std::fs::read(self.data_dir().join("ca.key")).unwrap()).unwrap()
    }

    /// Rows in the hub's statements table, read straight from the SQLite file.
    pub fn stored_statements(&self) -> i64 {
        let conn = rusqlite::Connection::open(self.data_dir().join("hub.db")).unwrap();
        conn.query_row("SELECT count(*) FROM statements", [], |r| r.get(0))
            .unwrap()
    }

    pub fn query_i64(&self, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.data_dir().join("hub.db")).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// The running hub's own store handle (its counters: what the
    /// serving hub did, not the admin handle).
    pub fn hub_store(&self) -> &hub::store::Store {
        &self.hub_store
    }

    /// Closes the running hub's own store (as at shutdown) while its
    /// listeners keep answering: every read and write then fails `Closed`.
    pub async fn close_hub_store(&self) {
        let store = self.hub_store.clone();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .expect("close hub store");
    }

    pub async fn stop(mut self) {
        let store = self.admin_store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Polls `condition` every 20 ms until it holds, instead of sleeping and
/// hoping; panics naming `what` if it does not hold within `deadline`
/// (generous: a deadline is a bound on a hang, never a measurement).
pub async fn eventually(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !condition() {
        assert!(started.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Enrolls a new agent for `org_id` in `state_dir` and opens it, on the
/// hub's clock (so a test that moves a manual clock moves both).
pub async fn enrolled_agent(hub: &TestHub, org_id: &str, state_dir: &Path) -> Agent {
    enrolled_agent_with_role(hub, org_id, "member", state_dir).await
}

pub async fn enrolled_agent_with_role(
    hub: &TestHub,
    org_id: &str,
    role: &str,
    state_dir: &Path,
) -> Agent {
    let token = hub.add_member_with_role(org_id, role).await;
    let state = StateDir::new(state_dir);
    enroll(
        &state,
        EnrollOptions {
            hub_url: &hub.url(),
            token: &token,
            agent_name: "agent-1",
            force: false,
        },
    )
    .await
    .expect("enroll");
    let mut agent = Agent::open(&state).expect("open agent");
    agent.clock = hub.clock.clone();
    agent
}

/// A channel with an arbitrary client identity, for hostile-client tests.
pub async fn raw_channel(
    hub: &TestHub,
    client: Option<(&X509, &PKey<Private>)>,
) -> Result<Channel, member_agent::AgentError> {
    let ca = hub.ca_cert();
    member_agent::client::connect(
        &hub.url(),
        member_agent::client::Trust::Ca { ca: &ca, client },
    )
    .await
}

/// A throwaway CA and a client certificate from it: the "other CA" case.
pub fn foreign_client_identity() -> (X509, PKey<Private>) {
    let (ca, ca_key) = hub::pki::create_ca("someone else's CA").unwrap();
    let key = hub::pki::generate_tls_key().unwrap();
    let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
    let cert =
        hub::pki::issue_client_cert(&ca, &ca_key, &public, "acme-bank", "rogue", 30).unwrap();
    (cert, key)
}

/// A client certificate from the hub's own CA that the hub never registered.
pub fn unregistered_identity(hub: &TestHub, org: &str) -> (X509, PKey<Private>) {
    let key = hub::pki::generate_tls_key().unwrap();
    let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
    let cert =
        hub::pki::issue_client_cert(&hub.ca_cert(), &hub.ca_key(), &public, org, "rogue", 30)
            .unwrap();
    (cert, key)
}

// === real processes ===

/// Directory holding the workspace's built binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/<test> -> target/debug
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_owned();
    for b in ["hub", "member-agent"] {
        assert!(
            dir.join(b).exists(),
            "{} not found: build the binaries first (`cargo build --workspace --bins`; scripts/test does this)",
            dir.join(b).display()
        );
    }
    dir
}

pub fn bin(name: &str) -> Command {
    let mut c = Command::new(bin_dir().join(name));
    c.env("RUST_LOG", "warn");
    c
}

/// Runs a command to completion; returns (success, stdout, stderr).
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("spawn");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `hub serve` process; stopped with SIGTERM on drop.
pub struct HubProcess {
    pub child: Child,
    pub addr: String,
    /// `host:port` of its TAXII listener (an ephemeral port).
    pub taxii_addr: String,
}

impl HubProcess {
    /// Starts `hub serve` and waits for its "listening on" line.
    pub fn start(data_dir: &Path, listen: &str) -> HubProcess {
        Self::spawn(bin("hub").stderr(Stdio::null()), data_dir, listen)
    }

    /// [`HubProcess::start`], logging at `info` into `log` (what an
    /// operator runs), for tests that read what the hub logs.
    pub fn start_logging(data_dir: &Path, listen: &str, log: &Path) -> HubProcess {
        Self::spawn(
            bin("hub")
                .env("RUST_LOG", "info")
                .stderr(std::fs::File::create(log).unwrap()),
            data_dir,
            listen,
        )
    }

    fn spawn(hub: &mut Command, data_dir: &Path, listen: &str) -> HubProcess {
        use std::io::{BufRead, BufReader};
        let mut child = hub
            .args(["--data-dir"])
            .arg(data_dir)
            .args(["serve", "--listen", listen, "--taxii-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start hub");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut taxii_addr = String::new();
        let addr = loop {
            let line = lines.next().expect("hub exited before listening").unwrap();
            if let Some(rest) = line.strip_prefix("TAXII 2.1 listening on https://") {
                taxii_addr = rest.split('/').next().unwrap().to_owned();
            }
            if let Some(rest) = line.strip_prefix("hub listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining stdout so the hub never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        HubProcess {
            child,
            addr,
            taxii_addr,
        }
    }

    pub fn url(&self) -> String {
        let port = self.addr.rsplit(':').next().unwrap();
        format!("https://localhost:{port}")
    }

    pub fn terminate(mut self) {
        self.signal_term_and_wait();
    }

    fn signal_term_and_wait(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal_term_and_wait();
        }
    }
}

/// Runs the OASIS `stix2-validator` (installed by scripts/install-deps) on
/// STIX files and fails the test with its report if any is invalid.
pub fn assert_valid_stix(files: &[PathBuf]) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, stix2validator as v\n\
             rs = [v.validate_file(f) for f in sys.argv[1:]]\n\
             bad = [r for r in rs if not r.is_valid]\n\
             [v.print_results(r) for r in bad]\n\
             sys.exit(1 if bad else 0)",
        )
        .args(files)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "stix2-validator refused our bundles (missing? run scripts/install-deps): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds `org` with the `hub` CLI on `data` and enrolls an agent into `state`
/// with the `member-agent` CLI; returns what `enroll` printed.
pub fn enroll_with_cli(
    data: &Path,
    url: &str,
    org: &str,
    name: Option<&str>,
    state: &Path,
) -> String {
    let mut add = bin("hub");
    add.arg("--data-dir").arg(data).args(["member", "add", org]);
    if let Some(name) = name {
        add.args(["--name", name]);
    }
    let (ok, token, err) = run(&mut add);
    assert!(ok, "{err}");
    let (ok, out, err) = run(bin("member-agent").arg("--state-dir").arg(state).args([
        "enroll",
        "--hub",
        url,
        "--token",
        token.trim(),
    ]));
    assert!(ok, "{err}");
    out
}

/// An HTTP/1.1 response read to the end of the connection.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response {} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends raw `request` bytes over TLS (trusting `ca`, presenting `client`
/// when given) and reads the whole response (`Connection: close`).
pub async fn https_exchange(
    addr: SocketAddr,
    ca: &X509,
    client: Option<(&X509, &PKey<Private>)>,
    request: &[u8],
) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())
        .expect("connector");
    let mut store = openssl::x509::store::X509StoreBuilder::new().expect("store");
    store.add_cert(ca.clone()).expect("add CA");
    b.set_verify_cert_store(store.build())
        .expect("verify store");
    b.set_alpn_protos(b"\x08http/1.1").expect("alpn");
    if let Some((cert, key)) = client {
        b.set_certificate(cert).expect("client cert");
        b.set_private_key(key).expect("client key");
    }
    let config = b.build().configure().expect("configure");
    let ssl = config.into_ssl("localhost").expect("ssl");
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect TAXII");
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).expect("tls stream");
    std::pin::Pin::new(&mut tls)
        .connect()
        .await
        .expect("TLS handshake");
    tls.write_all(request).await.expect("write request");
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    parse_http_response(&raw)
}

/// One plain-HTTP/1.1 request (`Connection: close`) and its whole answer.
pub async fn http_exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    // A server may answer and close before reading a large body.
    let _ = tcp.write_all(&request).await;
    let mut raw = Vec::new();
    let _ = tcp.read_to_end(&mut raw).await;
    parse_http_response(&raw)
}

/// A `member-agent witness serve` process on an ephemeral loopback port;
/// stopped with SIGTERM on drop.
pub struct WitnessProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// Its cosignature verifier key, as printed.
    pub vkey: String,
}

impl WitnessProcess {
    /// Starts it over `state_dir`, witnessing `logs` (vkeys; none: the
    /// hub's log key from the agent's key directory), and waits for its
    /// "listening" line.
    pub fn start(state_dir: &Path, logs: &[&str]) -> WitnessProcess {
        Self::start_on(state_dir, logs, "127.0.0.1:0")
    }

    /// [`WitnessProcess::start`] on a given address (to restart it where
    /// its hub expects it).
    pub fn start_on(state_dir: &Path, logs: &[&str], listen: &str) -> WitnessProcess {
        let mut args = vec!["--listen", listen];
        for l in logs {
            args.extend(["--log", l]);
        }
        Self::start_with(state_dir, &args)
    }

    /// `witness serve` with these arguments (`--listen` among them).
    pub fn start_with(state_dir: &Path, args: &[&str]) -> WitnessProcess {
        use std::io::{BufRead, BufReader};
        let mut cmd = bin("member-agent");
        cmd.arg("--state-dir")
            .arg(state_dir)
            .args(["witness", "serve"])
            .args(args);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start witness");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = lines
            .next()
            .expect("witness exited before listening")
            .unwrap();
        let rest = line
            .strip_prefix("witness listening on ")
            .and_then(|r| {
                r.strip_prefix("http://")
                    .or_else(|| r.strip_prefix("https://"))
            })
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let (addr, key) = rest.split_once(" (key ").expect("listening line");
        std::thread::spawn(move || for _ in lines {});
        WitnessProcess {
            child,
            addr: addr.parse().expect("witness addr"),
            vkey: key.trim_end_matches(')').to_owned(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `POST /add-checkpoint` with `body`.
    pub async fn add_checkpoint(&self, body: &[u8]) -> HttpResponse {
        http_exchange(self.addr, "POST", "/add-checkpoint", body).await
    }

    pub fn terminate(mut self) {
        self.signal_term_and_wait();
    }

    fn signal_term_and_wait(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal_term_and_wait();
        }
    }
}

fn parse_http_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

/// The cast of the TLP leak tests (gRPC and TAXII): six member orgs
/// (`isac-staff` a coordinator), named people ann and bob at person-bank
/// and carl at aud-bank, and the sharing group `payments` of group-bank,
/// each org with an enrolled agent in its own state dir under `dir`.
/// One row of the TLP catalogue: (title, tlp, audience, orgs entitled
/// besides the source).
pub type TlpRow = (
    &'static str,
    &'static str,
    Vec<&'static str>,
    Vec<&'static str>,
);

/// Items at every level with every kind of audience, over the orgs and
/// people of [`TlpWorld`]: the one catalogue every leak test (gRPC, TAXII)
/// publishes and checks, so the read paths cannot drift apart.
pub fn tlp_catalogue() -> Vec<TlpRow> {
    let everyone = vec![
        "aud-bank",
        "person-bank",
        "group-bank",
        "other-bank",
        "isac-staff",
    ];
    vec![
        ("clear", "clear", vec![], everyone.clone()),
        ("green", "green", vec![], everyone.clone()),
        ("amber-all", "amber", vec![], everyone),
        ("amber-org", "amber", vec!["org:aud-bank"], vec!["aud-bank"]),
        (
            "amber-group",
            "amber",
            vec!["group:payments"],
            vec!["group-bank"],
        ),
        (
            "amber-person",
            "amber",
            vec!["person:person-bank/ann"],
            vec!["person-bank"],
        ),
        (
            "strict-org-group",
            "amber+strict",
            vec!["org:aud-bank", "group:payments"],
            vec!["aud-bank", "group-bank"],
        ),
        (
            "strict-person",
            "amber+strict",
            vec!["person:person-bank/ann"],
            vec!["person-bank"],
        ),
        (
            "red-two-people",
            "red",
            vec!["person:person-bank/ann", "person:aud-bank/carl"],
            vec!["person-bank", "aud-bank"],
        ),
    ]
}

pub struct TlpWorld {
    pub dir: tempfile::TempDir,
    pub hub: TestHub,
    pub agents: Vec<(&'static str, Agent)>,
}

impl TlpWorld {
    pub async fn start() -> TlpWorld {
        Self::start_on("").await
    }

    /// The same world on the store `store` names (empty: embedded SQLite).
    pub async fn start_on(store: &str) -> TlpWorld {
        let dir = tempfile::tempdir().unwrap();
        let hub = TestHub::start_with(
            &dir.path().join("hub"),
            "127.0.0.1:0",
            hub::app::Clock::system(),
            store,
        )
        .await;
        let mut agents = Vec::new();
        for (org, role) in [
            ("src-bank", "member"),
            ("aud-bank", "member"),
            ("person-bank", "member"),
            ("group-bank", "member"),
            ("other-bank", "member"),
            ("isac-staff", "coordinator"),
        ] {
            let a = enrolled_agent_with_role(&hub, org, role, &dir.path().join(org)).await;
            agents.push((org, a));
        }
        for (org, person) in [
            ("person-bank", "ann"),
            ("person-bank", "bob"),
            ("aud-bank", "carl"),
        ] {
            hub.admin()
                .add_person(pb::AddPersonRequest {
                    org_id: org.into(),
                    person_id: person.into(),
                    name: person.into(),
                    contact: String::new(),
                })
                .await
                .unwrap();
        }
        hub.admin()
            .add_group(pb::AddGroupRequest {
                name: "payments".into(),
                members: vec!["group-bank".into()],
            })
            .await
            .unwrap();
        TlpWorld { dir, hub, agents }
    }

    pub fn agent(&self, org: &str) -> &Agent {
        &self.agents.iter().find(|(o, _)| *o == org).unwrap().1
    }
}

/// How a real Elasticsearch answers a `_bulk` request `body`: 200 with one
/// result per action, in order. `index_status` gives each indexed
/// document's status (201 created; 400 comes with a
/// `mapper_parsing_exception`, 429 with an `es_rejected_execution_exception`);
/// deletes answer 200.
pub fn elastic_bulk_answer(body: &[u8], index_status: impl Fn(&str) -> u16) -> String {
    let text = String::from_utf8_lossy(body);
    let mut items = Vec::new();
    let mut lines = text.lines();
    let mut errors = false;
    while let Some(action) = lines.next() {
        let action: serde_json::Value = serde_json::from_str(action).unwrap();
        if let Some(a) = action.get("index") {
            let doc = lines.next().expect("a document after an index action");
            let status = index_status(doc);
            let error = match status {
                200..=299 => serde_json::Value::Null,
                429 => serde_json::json!({"type": "es_rejected_execution_exception",
                    "reason": "rejected execution of coordinating operation"}),
                _ => serde_json::json!({"type": "mapper_parsing_exception",
                    "reason": "failed to parse field [threat.indicator.description]"}),
            };
            errors |= !error.is_null();
            items.push(
                serde_json::json!({"index": {"_id": a["_id"], "status": status, "error": error}}),
            );
        } else if let Some(a) = action.get("delete") {
            items.push(serde_json::json!({"delete": {"_id": a["_id"], "status": 200}}));
        } else {
            panic!("unexpected bulk action {action}");
        }
    }
    serde_json::json!({"took": 1, "errors": errors, "items": items}).to_string()
}
