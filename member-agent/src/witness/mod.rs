//! A member agent as a witness of the hub's log (C2SP tlog-witness): it
//! cosigns a checkpoint only if it extends, by a verified consistency
//! proof, the latest checkpoint it cosigned for that log, so a hub cannot
//! show two members two histories without one of them lacking this
//! witness's cosignature.
//!
//! `protocol` decides requests without I/O; this module holds the witness
//! key (`witness.key`, created on first use), its name (`witness.json`),
//! its state (`witness-state.json`: the latest cosigned checkpoint per
//! origin, replaced atomically and fsynced *before* any answer, under one
//! lock with the check, so neither a restart nor two racing requests can
//! roll it back), and the HTTP server.

pub mod protocol;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::routing::post;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use isac_core::tlog::note::Note;
use isac_core::tlog::witness::{CosignatureVerifier, Cosigner};
use isac_core::SigningKey;
use serde::{Deserialize, Serialize};

use crate::error::{io_err, AgentError};
use crate::StateDir;
use protocol::{Accepted, Cosigned, Refusal, TrustedLogs};

const KEY_FILE: &str = "witness.key";
const NAME_FILE: &str = "witness.json";
const STATE_FILE: &str = "witness-state.json";
/// Content type of a 409 answer's body (the spec's).
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// `[witness]` in agent.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessSection {
    /// Logs to witness, as C2SP vkeys (`origin+hash+base64`). Empty: the
    /// hub's log key from the verified key directory.
    #[serde(default)]
    pub logs: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct NameFile {
    name: String,
}

/// The witness's identity: its name and Ed25519 key.
pub struct WitnessKey {
    pub cosigner: Cosigner,
    pub verifier: CosignatureVerifier,
}

/// The name a new witness takes unless `--name` says otherwise.
fn default_name(state: &StateDir) -> String {
    match isac_client::Credentials::load(&state.root) {
        Ok(c) => format!("{}.isac-witness", c.identity.org_id),
        Err(_) => "isac-witness".to_owned(),
    }
}

/// Loads the witness key and name, creating both on first use. `name`
/// names a new witness; it must match an existing one.
pub fn load_or_create_key(state: &StateDir, name: Option<&str>) -> Result<WitnessKey, AgentError> {
    let key_path = state.path(KEY_FILE);
    let name_path = state.path(NAME_FILE);
    let (key, stored_name) = if key_path.exists() {
        let pem = std::fs::read(&key_path).map_err(io_err(&key_path))?;
        let key = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| AgentError::Crypto(format!("{}: {e}", key_path.display())))?;
        let text = std::fs::read(&name_path).map_err(io_err(&name_path))?;
        let stored: NameFile = serde_json::from_slice(&text)
            .map_err(|e| AgentError::Invalid(format!("{}: {e}", name_path.display())))?;
        if let Some(n) = name.filter(|n| *n != stored.name) {
            return Err(AgentError::Usage(format!(
                "this witness is named {:?} (in {}); --name {n:?} would be another witness (use another --state-dir)",
                stored.name,
                name_path.display()
            )));
        }
        (key, stored.name)
    } else {
        state.ensure()?;
        let name = name.map_or_else(|| default_name(state), str::to_owned);
        if !isac_core::tlog::note::is_valid_name(&name) {
            return Err(AgentError::Usage(format!(
                "witness name {name:?}: use printable characters without spaces or `+`"
            )));
        }
        let key = SigningKey::generate().map_err(|e| AgentError::Crypto(e.to_string()))?;
        // The name first: a key file without its name would be unusable.
        let json = serde_json::to_vec_pretty(&NameFile { name: name.clone() })
            .map_err(|e| AgentError::Invalid(e.to_string()))?;
        state.write_public(NAME_FILE, &json)?;
        let pem = key
            .to_pkcs8_pem()
            .map_err(|e| AgentError::Crypto(e.to_string()))?;
        state.write_private(KEY_FILE, &pem)?;
        (key, name)
    };
    let cosigner = Cosigner::new(&stored_name, key)
        .map_err(|e| AgentError::Usage(format!("witness name {stored_name:?}: {e}")))?;
    let verifier = cosigner
        .verifier()
        .map_err(|e| AgentError::Crypto(e.to_string()))?;
    Ok(WitnessKey { cosigner, verifier })
}

// === state ===

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredCheckpoint {
    size: u64,
    /// base64 root hash.
    root: String,
    /// The checkpoint text cosigned (evidence, for an operator).
    text: String,
    cosigned_at: u64,
}

/// The latest cosigned checkpoint of each origin, as on disk.
#[derive(Debug, Default, Serialize, Deserialize)]
struct WitnessState {
    logs: BTreeMap<String, StoredCheckpoint>,
}

impl WitnessState {
    /// Reads the state; a damaged file is an error, never an empty state
    /// (which would let the witness cosign a rolled-back log).
    fn load(path: &std::path::Path) -> Result<Self, AgentError> {
        let damaged = |why: String| {
            AgentError::Invalid(format!(
                "{}: not a witness state ({why}); it is the witness's memory: restore it from a backup, never delete it",
                path.display()
            ))
        };
        let state: Self = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(io_err(path)(e)),
        };
        for (origin, s) in &state.logs {
            if root_of(s).is_none() {
                return Err(damaged(format!(
                    "the root of {origin:?} is not base64 of 32 bytes"
                )));
            }
        }
        Ok(state)
    }

    fn latest(&self, origin: &str) -> Option<Cosigned> {
        let s = self.logs.get(origin)?;
        // Checked at load and written from a hash: always present.
        let root = root_of(s)?;
        Some(Cosigned { size: s.size, root })
    }
}

fn root_of(s: &StoredCheckpoint) -> Option<isac_core::tlog::Hash> {
    B64.decode(&s.root).ok()?.try_into().ok()
}

/// The witness as the server runs it.
pub struct Witness {
    key: WitnessKey,
    logs: TrustedLogs,
    state_path: PathBuf,
    /// Check and persist happen under this lock (the spec's race: a slower
    /// request for a smaller size must not overwrite a larger one).
    state: tokio::sync::Mutex<WitnessState>,
}

impl Witness {
    pub fn open(state: &StateDir, key: WitnessKey, logs: TrustedLogs) -> Result<Self, AgentError> {
        let state_path = state.path(STATE_FILE);
        let loaded = WitnessState::load(&state_path)?;
        Ok(Self {
            key,
            logs,
            state_path,
            state: tokio::sync::Mutex::new(loaded),
        })
    }

    /// Handles one `add-checkpoint` body: the cosignature line(s), or why not.
    pub async fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<String, Refusal> {
        let req = protocol::parse_request(body)?;
        let mut state = self.state.lock().await;
        let accepted: Accepted =
            protocol::check(&req, &self.logs, |origin| state.latest(origin)).map_err(|r| {
                if matches!(r, Refusal::BadProof(_) | Refusal::RootConflict { .. }) {
                    // Evidence of a log presenting another history.
                    tracing::warn!(refusal = %r, note = %String::from_utf8_lossy(&req.note), "refused a checkpoint that does not extend the one cosigned");
                }
                r
            })?;
        let c = &accepted.checkpoint;
        let mut next = WitnessState {
            logs: state.logs.clone(),
        };
        next.logs.insert(
            c.origin.clone(),
            StoredCheckpoint {
                size: c.size,
                root: B64.encode(c.root),
                text: accepted.text.clone(),
                cosigned_at: now,
            },
        );
        let bytes =
            serde_json::to_vec_pretty(&next).map_err(|e| Refusal::Internal(e.to_string()))?;
        let path = self.state_path.clone();
        // Durable before the answer; on failure nothing is cosigned.
        tokio::task::spawn_blocking(move || isac_client::files::write_atomic(&path, &bytes, 0o600))
            .await
            .map_err(|e| Refusal::Internal(e.to_string()))?
            .map_err(|e| {
                tracing::error!(error = %e.source, path = %e.path.display(), "cannot persist the witness state");
                Refusal::Internal("the witness cannot persist its state".into())
            })?;
        *state = next;
        drop(state);
        let mut note =
            Note::new(accepted.text).map_err(|e| Refusal::Internal(format!("checkpoint: {e}")))?;
        let signer = self
            .key
            .cosigner
            .at(now)
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        note.sign(&signer)
            .map_err(|e| Refusal::Internal(format!("cosigning: {e}")))?;
        Ok(note.signatures.last().map(|s| s.line()).unwrap_or_default())
    }
}

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn refusal(r: &Refusal) -> Response<Body> {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::BAD_REQUEST);
    match r {
        Refusal::SizeConflict { latest, .. } | Refusal::RootConflict { latest } => {
            answer(status, SIZE_CONTENT_TYPE, format!("{latest}\n"))
        }
        other => answer(status, "text/plain; charset=utf-8", format!("{other}\n")),
    }
}

fn too_large() -> Response<Body> {
    answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        "text/plain; charset=utf-8",
        format!("the body is larger than {} bytes\n", protocol::MAX_BODY),
    )
}

async fn add_checkpoint(
    State(w): State<Arc<Witness>>,
    req: axum::extract::Request,
) -> Response<Body> {
    // A declared length over the limit is refused before reading a byte.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > protocol::MAX_BODY as u64) {
        return too_large();
    }
    // Otherwise one byte over the limit is enough to know.
    let bytes = match axum::body::to_bytes(req.into_body(), protocol::MAX_BODY + 1).await {
        Ok(b) if b.len() <= protocol::MAX_BODY => b,
        Ok(_) => return too_large(),
        Err(e) => {
            // Over the limit (a LengthLimitError inside) or a broken body.
            let message = e.to_string();
            let inner = e.into_inner();
            let over =
                std::iter::successors(Some(&*inner as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.is::<http_body_util::LengthLimitError>());
            if over {
                return too_large();
            }
            return answer(
                StatusCode::BAD_REQUEST,
                "text/plain; charset=utf-8",
                format!("cannot read the body: {message}\n"),
            );
        }
    };
    let now = crate::now().max(0) as u64;
    match w.add_checkpoint(&bytes, now).await {
        Ok(lines) => answer(StatusCode::OK, "text/plain; charset=utf-8", lines),
        Err(r) => {
            tracing::info!(status = r.status(), refusal = %r, "add-checkpoint refused");
            refusal(&r)
        }
    }
}

/// The witness's HTTP routes (`POST /add-checkpoint`).
pub fn router(witness: Arc<Witness>) -> axum::Router {
    axum::Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .with_state(witness)
}

/// Serves until `stop` resolves; the caller bound `listener`. With `tls`,
/// HTTPS (the console's TLS listener: each handshake in its own task).
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<openssl::ssl::SslAcceptor>,
    witness: Arc<Witness>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let app = router(witness);
    match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
        }
        Some(acceptor) => {
            axum::serve(crate::ui::TlsListener::new(listener, acceptor), app)
                .with_graceful_shutdown(stop)
                .await
        }
    }
    .map_err(|e| AgentError::Invalid(format!("witness server: {e}")))
}

/// Where the witness listens by default: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7445";

/// The address in a usable form for the "listening on" line.
pub fn display_addr(addr: SocketAddr, tls: bool) -> String {
    format!("{}://{addr}", if tls { "https" } else { "http" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use isac_core::tlog::checkpoint::Checkpoint;
    use isac_core::tlog::note::Ed25519Signer;
    use isac_core::tlog::witness::open_cosigned;

    fn note(log: &Ed25519Signer, size: u64) -> String {
        Checkpoint {
            origin: "isac.example/log".into(),
            size,
            root: isac_core::tlog::merkle::leaf_hash(&size.to_be_bytes()),
            extensions: vec![],
        }
        .sign(&[log])
        .unwrap()
    }

    #[tokio::test]
    async fn the_state_survives_a_reopen_and_a_damaged_state_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let log = Ed25519Signer::new("isac.example/log", SigningKey::generate().unwrap()).unwrap();
        let logs = TrustedLogs {
            vkeys: vec![log.verifier().unwrap()],
            directory_key: None,
        };
        let key = load_or_create_key(&state, Some("w.example")).unwrap();
        let vkey = key.verifier.to_vkey();
        let w = Witness::open(&state, key, logs.clone()).unwrap();
        let first = note(&log, 1);
        let line = w
            .add_checkpoint(
                protocol::format_request(0, &[], &first).as_bytes(),
                1_800_000_000,
            )
            .await
            .unwrap();
        let wv = CosignatureVerifier::from_vkey(&vkey).unwrap();
        open_cosigned(
            format!("{first}{line}").as_bytes(),
            "isac.example/log",
            &log.verifier().unwrap(),
            &[wv],
            1,
        )
        .unwrap();
        drop(w);
        // Reopened (a restart): same key and name, and it remembers size 1.
        assert!(matches!(
            load_or_create_key(&state, Some("other.example")),
            Err(AgentError::Usage(_))
        ));
        let key = load_or_create_key(&state, None).unwrap();
        assert_eq!(key.verifier.to_vkey(), vkey);
        let w = Witness::open(&state, key, logs.clone()).unwrap();
        assert_eq!(
            w.add_checkpoint(protocol::format_request(0, &[], &first).as_bytes(), 1)
                .await
                .unwrap_err(),
            Refusal::SizeConflict { old: 0, latest: 1 }
        );
        drop(w);
        // A damaged state stops the witness instead of starting it empty.
        let path = state.path(STATE_FILE);
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        v["logs"]["isac.example/log"]["root"] = "AAAA".into();
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        let key = load_or_create_key(&state, None).unwrap();
        let e = Witness::open(&state, key, logs.clone()).err().unwrap();
        assert!(e.to_string().contains("not base64 of 32 bytes"), "{e}");
        std::fs::write(&path, b"{").unwrap();
        let key = load_or_create_key(&state, None).unwrap();
        assert!(Witness::open(&state, key, logs).is_err());
    }
}
