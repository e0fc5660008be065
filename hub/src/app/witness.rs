//! Witnesses of the hub's log (C2SP tlog-witness): after each checkpoint,
//! every witness configured in `[log] witnesses` is sent it with a
//! consistency proof from the size it last cosigned; its cosignature is
//! verified against its configured key, stored, and served appended to the
//! checkpoint's note.
//!
//! Each witness has its own task, off the publish path: a witness that is
//! down or slow delays nothing but its own cosignatures (retried with
//! backoff) and shows in `isac_log_witness_up`. Served checkpoints are the
//! newest that every witness currently up has cosigned (so an agent that
//! requires a quorum does not race the witnesses), never older than one
//! already served (`Board::init` carries that across restarts).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use isac_core::tlog::note::{self, Verifier};
use isac_core::tlog::witness::CosignatureVerifier;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use tokio::net::TcpStream;

use crate::config::{HubConfig, WitnessUrl};
use crate::store::{CheckpointRow, Store};

/// One exchange with a witness (connect, request, whole answer).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff after failures: 1 s doubling to this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Largest answer read from a witness (cosignature lines are ~120 bytes).
const MAX_ANSWER: usize = 64 * 1024;

// === the board: every witness and how it is doing ===

/// How one witness is doing, for metrics, `served` and logs.
#[derive(Debug, Clone, Default)]
pub struct WitnessStatus {
    /// Its last submission succeeded (optimistic before the first).
    pub up: bool,
    /// The largest size it cosigned for us, as far as we know.
    pub cosigned_size: Option<u64>,
    pub failures_total: u64,
    pub cosigned_total: u64,
    pub last_error: Option<String>,
}

pub struct WitnessSlot {
    pub name: String,
    pub url: WitnessUrl,
    verifier: CosignatureVerifier,
    tls: Option<SslConnector>,
    status: Mutex<WitnessStatus>,
}

impl WitnessSlot {
    pub fn status(&self) -> WitnessStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut WitnessStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Every configured witness, and the checkpoints the checkpointer signs.
pub struct Board {
    pub witnesses: Vec<WitnessSlot>,
    /// The size of the newest checkpoint signed (witness tasks wake on it).
    latest: tokio::sync::watch::Sender<u64>,
    /// The largest size served so far: what is served never goes back.
    served_floor: AtomicU64,
    /// A caller waits for leaves no checkpoint covers yet
    /// (`GetCheckpoint` with `min_size`): the checkpointer signs sooner.
    wanted: tokio::sync::Notify,
}

impl Board {
    /// From a validated config (bad entries were refused there).
    pub fn new(config: &HubConfig) -> Result<Self, String> {
        let mut witnesses = Vec::new();
        for w in &config.log.witnesses {
            let url = WitnessUrl::parse(&w.url)?;
            let verifier =
                CosignatureVerifier::from_vkey(w.vkey.trim()).map_err(|e| e.to_string())?;
            let tls = if url.https {
                let mut b = SslConnector::builder(SslMethod::tls_client())
                    .map_err(|e| format!("TLS for witness {}: {e}", w.url))?;
                if let Some(path) = &w.ca {
                    let pem = std::fs::read(path)
                        .map_err(|e| format!("witness CA {}: {e}", path.display()))?;
                    let ca = openssl::x509::X509::from_pem(&pem)
                        .map_err(|e| format!("witness CA {}: {e}", path.display()))?;
                    b.cert_store_mut()
                        .add_cert(ca)
                        .map_err(|e| format!("witness CA {}: {e}", path.display()))?;
                }
                b.set_verify(SslVerifyMode::PEER);
                b.set_alpn_protos(b"\x08http/1.1")
                    .map_err(|e| e.to_string())?;
                Some(b.build())
            } else {
                None
            };
            witnesses.push(WitnessSlot {
                name: verifier.name().to_owned(),
                url,
                verifier,
                tls,
                status: Mutex::new(WitnessStatus {
                    up: true,
                    ..Default::default()
                }),
            });
        }
        Ok(Self {
            witnesses,
            latest: tokio::sync::watch::channel(0).0,
            served_floor: AtomicU64::new(0),
            wanted: tokio::sync::Notify::new(),
        })
    }

    /// At start: what each witness cosigned, from the store. A witness
    /// counts as up only if it cosigned the latest checkpoint, so the
    /// first checkpoint served after a restart is never older than the
    /// latest one of the previous run (which served at most that).
    pub async fn init(&self, store: &Store) -> Result<(), crate::store::StoreError> {
        let latest = store.latest_checkpoint().await?.map(|c| c.size);
        for w in &self.witnesses {
            let cosigned = store.latest_cosigned(w.name.clone()).await?;
            w.update(|s| {
                s.cosigned_size = cosigned;
                s.up = latest.is_none() || cosigned == latest;
            });
        }
        Ok(())
    }

    /// The checkpointer signed a checkpoint of `size` leaves.
    pub fn signed(&self, size: u64) {
        self.latest.send_replace(size);
    }

    /// The size of each checkpoint signed, as they are.
    pub fn watch_signed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// Asks the checkpointer for a checkpoint before its interval is up.
    pub fn want_checkpoint(&self) {
        self.wanted.notify_one();
    }

    /// Resolves when a caller asked for a checkpoint (`want_checkpoint`).
    pub async fn checkpoint_wanted(&self) {
        self.wanted.notified().await
    }

    fn up_names(&self) -> Vec<String> {
        self.witnesses
            .iter()
            .filter(|w| w.status().up)
            .map(|w| w.name.clone())
            .collect()
    }
}

// === what is served ===

/// `row` with its stored cosignature lines appended to the note.
pub async fn with_cosignatures(
    store: &Store,
    mut row: CheckpointRow,
) -> Result<CheckpointRow, crate::store::StoreError> {
    for line in store.cosignatures(row.size).await? {
        row.note.push_str(&line);
    }
    Ok(row)
}

/// The checkpoint to serve: the newest every witness now up cosigned (the
/// latest when none is configured or up, or none cosigned yet), never
/// older than one served before, with its cosignatures.
pub async fn served(
    store: &Store,
    board: &Board,
    latest: CheckpointRow,
) -> Result<CheckpointRow, crate::store::StoreError> {
    let up = board.up_names();
    let mut pick = if board.witnesses.is_empty() || up.is_empty() {
        latest
    } else {
        store.newest_cosigned_by_all(up).await?.unwrap_or(latest)
    };
    let floor = board.served_floor.load(Ordering::Relaxed);
    if pick.size < floor {
        if let Some(row) = store.checkpoint_at(floor).await? {
            pick = row;
        }
    }
    board.served_floor.fetch_max(pick.size, Ordering::Relaxed);
    with_cosignatures(store, pick).await
}

// === submitting ===

/// Why one submission did not yield a cosignature.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("cannot reach the witness: {0}")]
    Unreachable(String),
    #[error("the witness answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the witness has cosigned size {witness}, past this log's {ours}: was the hub restored from an older backup? (never continue such a log silently: see README, recovering from a lost disk)")]
    Ahead { witness: u64, ours: u64 },
    #[error("the witness's answer is not its cosignature: {0}")]
    BadCosignature(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// POSTs `body` to `<prefix>/add-checkpoint`; the status and the answer.
async fn post(slot: &WitnessSlot, body: String) -> Result<(u16, String), SubmitError> {
    use hyper::client::conn::http1;
    let unreachable = |e: String| SubmitError::Unreachable(e);
    let exchange = async {
        let tcp = TcpStream::connect((slot.url.host.as_str(), slot.url.port))
            .await
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let request = hyper::Request::post(format!("{}/add-checkpoint", slot.url.prefix))
            .header(hyper::header::HOST, slot.url.authority())
            .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(hyper::header::USER_AGENT, "isac-hub")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = match &slot.tls {
            None => {
                let (mut sender, conn) = http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                sender.send_request(request).await
            }
            Some(tls) => {
                let ssl = tls
                    .configure()
                    .and_then(|c| c.into_ssl(&slot.url.host))
                    .map_err(|e| format!("TLS: {e}"))?;
                let mut stream =
                    tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| format!("TLS: {e}"))?;
                std::pin::Pin::new(&mut stream)
                    .connect()
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                sender.send_request(request).await
            }
        }
        .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .map_err(|_| unreachable(format!("no answer within {EXCHANGE_TIMEOUT:?}")))?
        .map_err(unreachable)
}

/// The witness's verified cosignature line from its answer to `note`.
fn cosignature_line(slot: &WitnessSlot, note: &str, answer: &str) -> Result<String, SubmitError> {
    if !answer.ends_with('\n') || answer.lines().any(|l| !l.starts_with('\u{2014}')) {
        return Err(SubmitError::BadCosignature(
            "not signature lines ending in a newline".into(),
        ));
    }
    let msg = format!("{note}{answer}");
    let opened = note::open(msg.as_bytes(), &[&slot.verifier])
        .map_err(|e| SubmitError::BadCosignature(e.to_string()))?;
    opened
        .verified
        .iter()
        .find(|s| s.name == slot.name)
        .map(|s| s.line())
        .ok_or_else(|| SubmitError::BadCosignature("no cosignature from its key".into()))
}

/// Submits `checkpoint` to one witness: from the size we believe it
/// cosigned, then once more from the size a 409 reports.
pub async fn submit(
    store: &Store,
    slot: &WitnessSlot,
    checkpoint: &CheckpointRow,
    now: i64,
) -> Result<(), SubmitError> {
    let mut old = match slot.status().cosigned_size {
        Some(s) => s,
        None => store.latest_cosigned(slot.name.clone()).await?.unwrap_or(0),
    };
    for attempt in 0..2 {
        if old > checkpoint.size {
            return Err(SubmitError::Ahead {
                witness: old,
                ours: checkpoint.size,
            });
        }
        let proof = if old == 0 || old == checkpoint.size {
            Vec::new()
        } else {
            store.consistency_proof(old, checkpoint.size).await?
        };
        let body = isac_core::tlog::witness::add_checkpoint_request(old, &proof, &checkpoint.note);
        let (status, answer) = post(slot, body).await?;
        match status {
            200 => {
                let line = cosignature_line(slot, &checkpoint.note, &answer)?;
                store
                    .add_cosignature(checkpoint.size, slot.name.clone(), line, now)
                    .await?;
                slot.update(|s| {
                    s.cosigned_size = Some(checkpoint.size);
                    s.cosigned_total += 1;
                });
                return Ok(());
            }
            409 if attempt == 0 => match answer.trim_end_matches('\n').parse::<u64>() {
                Ok(size) if size != old => {
                    tracing::info!(witness = %slot.name, ours = old, theirs = size, "witness holds another size; retrying from it");
                    slot.update(|s| s.cosigned_size = Some(size));
                    old = size;
                }
                _ => {
                    return Err(SubmitError::Refused {
                        status,
                        body: answer.chars().take(200).collect(),
                    })
                }
            },
            _ => {
                return Err(SubmitError::Refused {
                    status,
                    body: answer.trim().chars().take(200).collect(),
                })
            }
        }
    }
    Err(SubmitError::Refused {
        status: 409,
        body: "the witness's size changed twice in a row".into(),
    })
}

/// One witness's task: submit each new checkpoint; back off on failure.
/// Runs until `stop` turns true (`app::log::spawn_witnesses` starts it).
pub async fn run_one(
    store: &Store,
    board: &Board,
    index: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
    interval: Duration,
    now: impl Fn() -> i64,
) {
    let slot = &board.witnesses[index];
    let mut latest_rx = board.latest.subscribe();
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let wait = match store.latest_checkpoint().await {
            Ok(Some(c)) if slot.status().cosigned_size != Some(c.size) => {
                match submit(store, slot, &c, now()).await {
                    Ok(()) => {
                        if failures > 0 {
                            tracing::info!(witness = %slot.name, size = c.size, "witness cosigns again");
                        }
                        failures = 0;
                        slot.update(|s| {
                            s.up = true;
                            s.last_error = None;
                        });
                        None
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let message = e.to_string();
                        if failures == 1 || matches!(e, SubmitError::Ahead { .. }) {
                            tracing::warn!(witness = %slot.name, size = c.size, error = %message, "witness did not cosign");
                        }
                        slot.update(|s| {
                            s.up = false;
                            s.failures_total += 1;
                            s.last_error = Some(message);
                        });
                        let backoff =
                            Duration::from_secs(1u64 << failures.min(7).saturating_sub(1));
                        Some(backoff.min(MAX_BACKOFF))
                    }
                }
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "witnesses: cannot read the latest checkpoint");
                Some(Duration::from_secs(1))
            }
        };
        match wait {
            // Backing off: new checkpoints do not cut the wait short.
            Some(d) => {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = stop.changed() => return,
                }
            }
            None => {
                tokio::select! {
                    changed = latest_rx.changed() => if changed.is_err() { return },
                    // Also look now and then (a checkpoint signed by
                    // another process sends no notice).
                    _ = tokio::time::sleep(interval.max(Duration::from_secs(1))) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WitnessSetting;
    use crate::store::log_tests::statement;
    use isac_core::tlog::witness::Cosigner;

    fn board(names: &[&str]) -> Board {
        let mut config = HubConfig::default();
        for n in names {
            let c = Cosigner::new(n, isac_core::SigningKey::generate().unwrap()).unwrap();
            config.log.witnesses.push(WitnessSetting {
                url: "http://127.0.0.1:9".into(),
                vkey: c.verifier().unwrap().to_vkey(),
                ca: None,
            });
        }
        Board::new(&config).unwrap()
    }

    #[test]
    fn only_a_verified_cosignature_from_the_configured_key_is_kept() {
        let log = isac_core::tlog::note::Ed25519Signer::new(
            "isac.example/log",
            isac_core::SigningKey::generate().unwrap(),
        )
        .unwrap();
        let note = isac_core::tlog::checkpoint::Checkpoint {
            origin: "isac.example/log".into(),
            size: 3,
            root: isac_core::tlog::merkle::leaf_hash(b"r"),
            extensions: vec![],
        }
        .sign(&[&log])
        .unwrap();
        let key = isac_core::SigningKey::generate().unwrap();
        let real = Cosigner::new("w1.example", key).unwrap();
        let mut config = HubConfig::default();
        config.log.witnesses.push(WitnessSetting {
            url: "http://127.0.0.1:9".into(),
            vkey: real.verifier().unwrap().to_vkey(),
            ca: None,
        });
        let b = Board::new(&config).unwrap();
        let slot = &b.witnesses[0];
        let cosign = |c: &Cosigner| {
            let mut n = isac_core::tlog::note::Note::new(
                isac_core::tlog::note::parse(note.as_bytes()).unwrap().text,
            )
            .unwrap();
            n.sign(&c.at(1_800_000_000).unwrap()).unwrap();
            n.signatures.last().unwrap().line()
        };
        let line = cosign(&real);
        assert_eq!(cosignature_line(slot, &note, &line).unwrap(), line);
        // Another key under the same name, an unknown witness only, junk,
        // a line for another checkpoint: nothing to store.
        let impostor =
            Cosigner::new("w1.example", isac_core::SigningKey::generate().unwrap()).unwrap();
        let stranger =
            Cosigner::new("w9.example", isac_core::SigningKey::generate().unwrap()).unwrap();
        for answer in [
            cosign(&impostor),
            cosign(&stranger),
            "hello\n".to_owned(),
            line.trim_end().to_owned(),
            String::new(),
        ] {
            assert!(
                cosignature_line(slot, &note, &answer).is_err(),
                "{answer:?}"
            );
        }
        let other = isac_core::tlog::checkpoint::Checkpoint {
            origin: "isac.example/log".into(),
            size: 4,
            root: isac_core::tlog::merkle::leaf_hash(b"s"),
            extensions: vec![],
        }
        .sign(&[&log])
        .unwrap();
        assert!(cosignature_line(slot, &other, &line).is_err());
    }

    #[tokio::test]
    async fn served_is_the_newest_checkpoint_every_witness_up_cosigned_and_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.db")).unwrap();
        store
            .append_statements((0..6).map(|n| statement(n, false)).collect())
            .await;
        for size in [3, 6] {
            let ext = store.extend_log(size - 3, size).await.unwrap();
            store
                .integrate_checkpoint(ext, format!("note {size}\n"), 0)
                .await
                .unwrap();
        }
        let latest = store.latest_checkpoint().await.unwrap().unwrap();
        // No witnesses: the latest, as is.
        let none = board(&[]);
        assert_eq!(served(&store, &none, latest.clone()).await.unwrap(), latest);

        let b = board(&["w1.example", "w2.example"]);
        let (w1, w2) = ("w1.example".to_owned(), "w2.example".to_owned());
        // Nothing cosigned yet: the latest (agents with a quorum wait).
        assert_eq!(served(&store, &b, latest.clone()).await.unwrap().size, 6);
        for (size, w) in [(3, &w1), (3, &w2), (6, &w1)] {
            store
                .add_cosignature(size, w.clone(), format!("— {w} {size}\n"), 0)
                .await
                .unwrap();
        }
        let b = board(&["w1.example", "w2.example"]);
        // Both up: 3 is the newest both cosigned.
        let s = served(&store, &b, latest.clone()).await.unwrap();
        assert_eq!(s.size, 3);
        assert_eq!(s.note, "note 3\n— w1.example 3\n— w2.example 3\n");
        // w2 down: 6 with w1's line.
        b.witnesses[1].update(|s| s.up = false);
        let s = served(&store, &b, latest.clone()).await.unwrap();
        assert_eq!(s.note, "note 6\n— w1.example 6\n");
        // w2 back (it has not cosigned 6 yet): still 6, never back to 3.
        b.witnesses[1].update(|s| s.up = true);
        assert_eq!(served(&store, &b, latest.clone()).await.unwrap().size, 6);
        // A restarted hub counts as up only the witnesses that cosigned its
        // latest checkpoint: 6 again, not 3.
        let restarted = board(&["w1.example", "w2.example"]);
        restarted.init(&store).await.unwrap();
        let st: Vec<_> = restarted.witnesses.iter().map(|w| w.status()).collect();
        assert_eq!((st[0].up, st[0].cosigned_size), (true, Some(6)));
        assert_eq!((st[1].up, st[1].cosigned_size), (false, Some(3)));
        assert_eq!(
            served(&store, &restarted, latest.clone())
                .await
                .unwrap()
                .size,
            6
        );
        store.close();
    }
}
