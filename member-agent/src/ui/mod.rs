//! The analyst console: a small web server over the agent's verified local
//! store (`member-agent ui`, or `member-agent run --ui ADDR`). The hub stays
//! API-only; the console reads the same SQLite file the sync daemon writes,
//! and publishes through the same code path as the CLI, so signatures are
//! made with the member's key in this agent.
//!
//! Access: loopback by default; any other address needs TLS. A one-time
//! login link (token in the URL fragment, never sent in a request line or a
//! Referer) is printed as the first line on stdout; the login page posts it
//! and gets an HttpOnly, SameSite=Strict session cookie. Every form carries
//! the session's CSRF token, every state-changing request must come from our
//! own origin (`Origin`, `Sec-Fetch-Site`), and every response carries a
//! strict Content-Security-Policy (no inline script).

mod error;
mod exposure;
mod feed;
pub mod html;
mod item;
mod publish;
mod search;
mod status;
// publishing and reading (console-a)
pub mod markdown;
mod report;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};

use crate::error::{io_err, AgentError};
use crate::sinks::Sinks;
use crate::sync::Agent;
use crate::StateDir;

/// `member-agent ui`.
#[derive(Debug, Clone, clap::Args)]
pub struct UiArgs {
    /// Address to serve the console on. Anything but loopback needs --tls-cert and --tls-key.
    #[arg(long, default_value = "127.0.0.1:7480")]
    pub listen: String,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// `member-agent run --ui ADDR`: the daemon serves the console too.
#[derive(Debug, Clone, clap::Args)]
pub struct RunUiArgs {
    /// Also serve the analyst console on this address (see `member-agent ui`).
    #[arg(long = "ui", value_name = "ADDR")]
    pub ui: Option<String>,
    /// Certificate chain (PEM) for the console; required off loopback.
    #[arg(long = "ui-tls-cert", value_name = "FILE", requires = "ui")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --ui-tls-cert.
    #[arg(long = "ui-tls-key", value_name = "FILE", requires = "ui")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Certificate chain (PEM) to serve the console over HTTPS.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

impl RunUiArgs {
    pub fn to_ui_args(&self) -> Option<UiArgs> {
        Some(UiArgs {
            listen: self.ui.clone()?,
            tls: TlsArgs {
                tls_cert: self.tls_cert.clone(),
                tls_key: self.tls_key.clone(),
            },
        })
    }
}

/// How long a session lasts after login.
const SESSION_TTL_SECS: i64 = 12 * 3600;
/// How often the live feed looks at the local store for new rows.
const POLL_INTERVAL: Duration = Duration::from_millis(700);
/// How often an idle live feed stream sends a heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Session {
    csrf: String,
    expires: i64,
}

struct Shared {
    agent: Agent,
    /// Login tokens not yet used (hex of 32 random bytes).
    login_tokens: Mutex<Vec<String>>,
    sessions: Mutex<HashMap<String, Session>>,
    cookie_name: String,
    tls: bool,
    /// `Host` values accepted on a loopback listener (DNS rebinding); `None`
    /// off loopback, where TLS binds the name.
    allowed_hosts: Option<Vec<String>>,
    /// What the daemon writes to, when the console runs inside `run`.
    sinks: Option<Vec<String>>,
}

#[derive(Clone)]
struct Console(Arc<Shared>);

impl Console {
    fn agent(&self) -> &Agent {
        &self.0.agent
    }

    /// Runs a blocking store read off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Agent) -> Result<T, AgentError> + Send + 'static,
    ) -> Result<T, AgentError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(me.agent()))
            .await
            .map_err(|e| AgentError::Invalid(format!("console task: {e}")))?
    }
}

/// A started console: its address and the login link printed for it.
pub struct Started {
    pub addr: SocketAddr,
    pub login_url: String,
    serve: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

impl Started {
    /// Serves until the process ends.
    pub async fn serve(self) {
        self.serve.await
    }
}

fn random_hex(n: usize) -> Result<String, AgentError> {
    let mut b = vec![0u8; n];
    openssl::rand::rand_bytes(&mut b)?;
    Ok(isac_core::hex::encode(&b))
}

/// Checks the address and TLS files, binds, and prints the one-time login
/// link as a line on stdout. Refuses (a usage error, exit code 64) to serve
/// a non-loopback address without TLS.
pub async fn start(
    state: &StateDir,
    args: &UiArgs,
    sinks: Option<Vec<String>>,
) -> Result<Started, AgentError> {
    let addr: SocketAddr = tokio::net::lookup_host(&args.listen)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            AgentError::Usage(format!(
                "--listen `{}` is not an address such as 127.0.0.1:7480",
                args.listen
            ))
        })?;
    let loopback = addr.ip().is_loopback();
    let tls = match (&args.tls.tls_cert, &args.tls.tls_key) {
        (Some(cert), Some(key)) => Some(acceptor(cert, key)?),
        (None, None) if loopback => None,
        (None, None) => {
            return Err(AgentError::Usage(format!(
            "refusing to serve the console on {addr} without TLS: it is not a loopback address; \
                 give --tls-cert FILE and --tls-key FILE (or listen on 127.0.0.1)"
        )))
        }
        _ => {
            return Err(AgentError::Usage(
                "--tls-cert and --tls-key go together".into(),
            ))
        }
    };
    let agent = crate::cmd::open_agent(state)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| AgentError::Usage(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| AgentError::Invalid(e.to_string()))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = if local.ip().is_unspecified() {
        format!("localhost:{}", local.port())
    } else {
        local.to_string()
    };
    let token = random_hex(32)?;
    let login_url = format!("{scheme}://{host}/login#token={token}");
    let allowed_hosts = loopback.then(|| {
        let p = local.port();
        vec![
            format!("127.0.0.1:{p}"),
            format!("localhost:{p}"),
            format!("[::1]:{p}"),
            local.to_string(),
        ]
    });
    let shared = Arc::new(Shared {
        agent,
        login_tokens: Mutex::new(vec![token]),
        sessions: Mutex::new(HashMap::new()),
        // Cookies ignore ports: one name per console, so two consoles on
        // one host never overwrite each other's session.
        cookie_name: if tls.is_some() {
            format!("__Host-isac_console_{}", local.port())
        } else {
            format!("isac_console_{}", local.port())
        },
        tls: tls.is_some(),
        allowed_hosts,
        sinks,
    });
    let app = router(Console(shared));
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{login_url}");
        let _ = out.flush();
    }
    eprintln!(
        "analyst console on {scheme}://{host}/ for `{}`: open the link above once (it logs in one browser, then stops working)",
        state.root.display()
    );
    let serve: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = match tls {
        None => Box::pin(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("error: console: {e}");
            }
        }),
        Some(acceptor) => Box::pin(async move {
            let listener = TlsListener::new(listener, acceptor);
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("error: console: {e}");
            }
        }),
    };
    Ok(Started {
        addr: local,
        login_url,
        serve,
    })
}

/// `member-agent ui`: serves until Ctrl-C.
pub async fn run_console(state: &StateDir, args: &UiArgs) -> Result<(), AgentError> {
    let started = start(state, args, None).await?;
    tokio::select! {
        _ = started.serve() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// What a daemon's sinks are, for the status page.
pub fn describe_sinks(sinks: &Sinks) -> Vec<String> {
    sinks.describe()
}

/// The key directory the sync daemon last accepted, checked again against
/// the pinned hub key (another process may have saved a newer one).
fn held_directory(agent: &Agent) -> Option<isac_core::directory::KeyDirectory> {
    let json = agent.store.lock().expect("store").directory_json().ok()??;
    let env = isac_core::Envelope::from_json(&json).ok()?;
    isac_core::directory::verify_directory(&env, &agent.loaded.hub_directory_key, None, 0).ok()
}

// === TLS ===

pub(crate) fn acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<openssl::ssl::SslAcceptor, AgentError> {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
    let bad = |p: &std::path::Path, e: openssl::error::ErrorStack| {
        AgentError::Usage(format!("{}: {e}", p.display()))
    };
    for p in [cert, key] {
        std::fs::metadata(p).map_err(io_err(p))?;
    }
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_certificate_chain_file(cert)
        .map_err(|e| bad(cert, e))?;
    b.set_private_key_file(key, SslFiletype::PEM)
        .map_err(|e| bad(key, e))?;
    b.check_private_key().map_err(|e| bad(key, e))?;
    Ok(b.build())
}

/// Accepts TCP connections and hands finished TLS streams to axum; each
/// handshake runs in its own task with a timeout, so a stalled client never
/// holds up the others.
pub(crate) struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(tokio_openssl::SslStream<tokio::net::TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub(crate) fn new(
        listener: tokio::net::TcpListener,
        acceptor: openssl::ssl::SslAcceptor,
    ) -> Self {
        let local = listener
            .local_addr()
            .expect("bound listener has an address");
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let acceptor = Arc::new(acceptor);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "console accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (tx, acceptor) = (tx.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let Ok(ssl) = openssl::ssl::Ssl::new(acceptor.context()) else {
                        return;
                    };
                    let Ok(mut stream) = tokio_openssl::SslStream::new(ssl, tcp) else {
                        return;
                    };
                    let hs = tokio::time::timeout(
                        Duration::from_secs(10),
                        std::pin::Pin::new(&mut stream).accept(),
                    )
                    .await;
                    match hs {
                        Ok(Ok(())) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "console TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "console TLS handshake timed out"),
                    }
                });
            }
        });
        TlsListener { rx, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_openssl::SslStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task never ends while we hold the receiver.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

// === router and guards ===

fn router(console: Console) -> Router {
    let pages = Router::new()
        .route("/", get(feed::page))
        .route("/events", get(feed::events))
        .route("/item/{id}", get(item::page))
        .route("/item/{id}/export/{format}", get(item::export))
        .route("/item/{id}/sight", post(item::sight))
        .route("/search", get(search::page))
        .route(
            "/exposure",
            get(search::exposure_form).post(search::exposure),
        )
        .route("/exposure/report", post(exposure::report))
        .route("/publish", get(publish::form).post(publish::submit))
        .route("/publish/preview", get(publish::preview))
        .route("/bulletin", post(publish::bulletin))
        .route("/status", get(status::page))
        .route("/logout", post(logout))
        // --- triage (console-b) ---
        .route("/feed/read", post(feed::mark_read))
        .route("/search/paste", post(search::paste))
        .route("/exposure/export/{format}", post(exposure::export))
        // --- end triage (console-b) ---
        .route_layer(axum::middleware::from_fn_with_state(
            console.clone(),
            require_session,
        ));
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .route("/static/login.js", get(login_js))
        .merge(pages)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(16 << 20))
        .layer(axum::middleware::from_fn_with_state(console.clone(), guard))
        .with_state(console)
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Every request: the Host check (loopback), the same-origin check on
/// anything that changes state, and the security headers on every answer.
async fn guard(State(c): State<Console>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut resp = if c
        .0
        .allowed_hosts
        .as_ref()
        .is_some_and(|ok| !ok.iter().any(|h| h.eq_ignore_ascii_case(&host)))
    {
        (StatusCode::MISDIRECTED_REQUEST, "unknown Host\n").into_response()
    } else if !matches!(*req.method(), Method::GET | Method::HEAD)
        && !same_origin(headers, &host, c.0.tls)
    {
        (
            StatusCode::FORBIDDEN,
            "refused: this request did not come from the console's own pages\n",
        )
            .into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it, browsers send `Origin: null` on form
    // posts, and the same-origin check above needs the real origin.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if c.0.tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}

/// A state-changing request is ours if `Sec-Fetch-Site` (when sent) says
/// same-origin and `Origin` (when sent) is this console. Browsers send at
/// least one of them on every POST.
fn same_origin(headers: &HeaderMap, host: &str, tls: bool) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or(""));
    if let Some(site) = fetch_site {
        if site != "same-origin" {
            return false;
        }
    }
    match headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or(""))
    {
        Some(origin) => {
            let scheme = if tls { "https" } else { "http" };
            origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
        }
        None => fetch_site.is_some(),
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

/// The logged-in session, for handlers behind [`require_session`].
#[derive(Clone)]
struct Authed {
    csrf: String,
}

impl Authed {
    /// Checks the form's CSRF token against the session's: `Some` is the
    /// refusal to send.
    fn check(&self, form: &html::Form) -> Option<Response> {
        if ct_eq(form.get("csrf"), &self.csrf) {
            None
        } else {
            Some(
                (
                    StatusCode::FORBIDDEN,
                    "refused: the form's CSRF token is missing or wrong; reload the page\n",
                )
                    .into_response(),
            )
        }
    }
}

async fn require_session(State(c): State<Console>, mut req: Request, next: Next) -> Response {
    let now = crate::now();
    let session = cookie(req.headers(), &c.0.cookie_name).and_then(|sid| {
        let mut sessions = c.0.sessions.lock().expect("sessions");
        sessions.retain(|_, s| s.expires > now);
        sessions.get(sid).cloned()
    });
    match session {
        Some(s) => {
            req.extensions_mut().insert(Authed { csrf: s.csrf });
            next.run(req).await
        }
        None if req.method() == Method::GET
            && req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("text/html")) =>
        {
            Redirect::to("/login").into_response()
        }
        None => (
            StatusCode::UNAUTHORIZED,
            "log in first: open the login link the console printed\n",
        )
            .into_response(),
    }
}

// === login ===

async fn login_page() -> Response {
    html_response(StatusCode::OK, login_markup())
}

/// The login form; login.js fills the token from the URL fragment.
fn login_markup() -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · ISAC console" }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/login.js" defer {}
            }
            body {
                main.login #main {
                    h1 { "ISAC analyst console" }
                    p { "Open the login link that " code { "member-agent ui" } " printed. It works once." }
                    form #login method="post" action="/login" {
                        label for="token" { "Login token" }
                        input #token name="token" type="password" autocomplete="off" required;
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

/// The answer to a login token that is unknown or used.
fn login_refused_markup() -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Login refused" }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                main.login #main {
                    h1 { "Login refused" }
                    p role="alert" {
                        "This login token is unknown or was already used. Restart "
                        code { "member-agent ui" }
                        " for a new link."
                    }
                }
            }
        }
    }
}

async fn login(State(c): State<Console>, body: Bytes) -> Response {
    let form = html::Form::parse(&String::from_utf8_lossy(&body));
    let given = form.get("token").to_owned();
    let ok = {
        let mut tokens = c.0.login_tokens.lock().expect("login tokens");
        match tokens.iter().position(|t| ct_eq(t, &given)) {
            Some(i) => {
                // Single use.
                tokens.remove(i);
                true
            }
            None => false,
        }
    };
    if !ok {
        return html_response(StatusCode::FORBIDDEN, login_refused_markup());
    }
    let (Ok(sid), Ok(csrf)) = (random_hex(32), random_hex(32)) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no randomness\n").into_response();
    };
    c.0.sessions.lock().expect("sessions").insert(
        sid.clone(),
        Session {
            csrf,
            expires: crate::now() + SESSION_TTL_SECS,
        },
    );
    let secure = if c.0.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{}={sid}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_TTL_SECS}{secure}",
        c.0.cookie_name
    );
    let mut resp = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn logout(
    State(c): State<Console>,
    axum::Extension(auth): axum::Extension<Authed>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = html::Form::parse(&String::from_utf8_lossy(&body));
    if let Some(r) = auth.check(&form) {
        return r;
    }
    if let Some(sid) = cookie(&headers, &c.0.cookie_name) {
        c.0.sessions.lock().expect("sessions").remove(sid);
    }
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        c.0.cookie_name
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

// === responses and assets ===

fn html_response(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.into_string(),
    )
        .into_response()
}

/// An error page the console decides itself (the message is escaped);
/// agent errors go through `error::fail`.
fn error_page(c: &Console, auth: &Authed, status: StatusCode, message: &str) -> Response {
    error::page(c, auth, &error::plain(status, message))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from(body),
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("console.css"))
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("console.js"))
}

async fn login_js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("login.js"))
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn only_our_origin_may_change_state() {
        let host = "127.0.0.1:7480";
        assert!(same_origin(
            &headers(&[("origin", "http://127.0.0.1:7480")]),
            host,
            false
        ));
        assert!(same_origin(
            &headers(&[
                ("origin", "http://127.0.0.1:7480"),
                ("sec-fetch-site", "same-origin")
            ]),
            host,
            false
        ));
        for bad in [
            headers(&[("origin", "http://evil.example")]),
            headers(&[("origin", "https://127.0.0.1:7480")]),
            headers(&[("origin", "null")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[
                ("origin", "http://127.0.0.1:7480"),
                ("sec-fetch-site", "cross-site"),
            ]),
            headers(&[]),
        ] {
            assert!(!same_origin(&bad, host, false), "{bad:?}");
        }
        assert!(same_origin(
            &headers(&[("origin", "https://console.example:7480")]),
            "console.example:7480",
            true
        ));
    }

    #[test]
    fn the_login_pages_hold_only_our_markup() {
        for page in [login_markup(), login_refused_markup()] {
            html::hostile::assert_inert(&page.into_string());
        }
        assert!(login_markup()
            .into_string()
            .contains("<script src=\"/static/login.js\" defer></script>"));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[("cookie", "a=1; isac_console_7480=abc; isac_console_74801=x")]);
        assert_eq!(cookie(&h, "isac_console_7480"), Some("abc"));
        assert_eq!(cookie(&h, "isac_console_748"), None);
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "ab"));
    }
}
