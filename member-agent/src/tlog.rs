//! The agent's half of the transparency log (issue 19): every checkpoint it
//! accepts is signed by the log key its verified key directory lists (and,
//! with `[log] quorum = K`, cosigned by K trusted witnesses), is an
//! append-only extension of the last checkpoint it trusted, and every item
//! it ingests is proven included in one. Anything else is a [`LogAlert`]:
//! persisted, written to every sink, shown by `status` and the console,
//! and ingesting from the hub stops until an operator accepts a checkpoint
//! (`member-agent log accept`).
//!
//! The decisions are pure functions of (trusted checkpoint, offered
//! checkpoint, proof) with tests below; `impl Agent` only fetches.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use isac_core::directory::KeyDirectory;
use isac_core::tlog::checkpoint::{Checkpoint, SignedCheckpoint};
use isac_core::tlog::merkle::{self, Hash};
use isac_core::tlog::note::{self, Ed25519Verifier};
use isac_core::tlog::witness::{self, CosignatureVerifier, WitnessError};
use isac_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::error::AgentError;
use crate::sinks::Sinks;
use crate::Agent;

/// `[log]` in agent.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The log's origin (its checkpoints' first line); without it the
    /// origin of the first checkpoint accepted is pinned.
    pub origin: Option<String>,
    /// C2SP vkeys of the witnesses this agent trusts.
    #[serde(default)]
    pub witnesses: Vec<String>,
    /// How many of them must cosign a checkpoint (0: none needed).
    #[serde(default)]
    pub quorum: usize,
}

/// What the agent requires of a checkpoint besides the log's signature.
#[derive(Debug, Clone, Default)]
pub struct LogTrust {
    pub origin: Option<String>,
    pub witnesses: Vec<CosignatureVerifier>,
    pub quorum: usize,
}

impl LogTrust {
    /// Checks `[log]`: every vkey parses, distinct names, a quorum that can
    /// be met. Errors are usage errors naming the key (exit 64).
    pub fn from_config(c: &LogConfig) -> Result<Self, AgentError> {
        let mut witnesses: Vec<CosignatureVerifier> = Vec::new();
        for v in &c.witnesses {
            let w = CosignatureVerifier::from_vkey(v).map_err(|e| {
                AgentError::Usage(format!("[log] witnesses: `{v}` is not a witness vkey: {e}"))
            })?;
            if witnesses.iter().any(|o| o.to_vkey() == w.to_vkey()) {
                return Err(AgentError::Usage(format!(
                    "[log] witnesses: `{v}` is listed twice"
                )));
            }
            witnesses.push(w);
        }
        if c.quorum > witnesses.len() {
            return Err(AgentError::Usage(format!(
                "[log] quorum = {} but only {} witness(es) are listed; the quorum could never be met",
                c.quorum,
                witnesses.len()
            )));
        }
        if let Some(o) = &c.origin {
            if o.is_empty() || o.contains('\n') || o.contains('+') || o.contains(' ') {
                return Err(AgentError::Usage(format!(
                    "[log] origin `{o}`: printable ASCII without spaces or `+`, e.g. isac.example/log"
                )));
            }
        }
        Ok(Self {
            origin: c.origin.clone(),
            witnesses,
            quorum: c.quorum,
        })
    }
}

/// A checkpoint this agent verified and trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// The signed note as received (with any cosignatures).
    pub note: String,
}

impl Trusted {
    /// A note this agent verified before (from its own store).
    pub fn from_note(note: &str) -> Result<Self, AgentError> {
        let parsed = note::parse(note.as_bytes())
            .map_err(|e| AgentError::Invalid(format!("stored checkpoint: {e}")))?;
        let c = Checkpoint::parse(&parsed.text)
            .map_err(|e| AgentError::Invalid(format!("stored checkpoint: {e}")))?;
        Ok(Self::from_signed(&c, note))
    }

    fn from_signed(c: &Checkpoint, note: &str) -> Self {
        Self {
            origin: c.origin.clone(),
            size: c.size,
            root: c.root,
            note: note.to_owned(),
        }
    }

    pub fn reference(&self) -> CheckpointRef {
        CheckpointRef {
            size: self.size,
            root: B64.encode(self.root),
        }
    }
}

/// A checkpoint named in an alert: tree size and base64 root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    pub size: u64,
    pub root: String,
}

impl std::fmt::Display for CheckpointRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "size {} root {}", self.size, self.root)
    }
}

/// One ingested item whose inclusion did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadItem {
    /// Statement id (or a description for an envelope that did not parse).
    pub item: String,
    pub leaf_index: u64,
    pub inclusion: String,
    /// Its end-to-end signature check failed too.
    pub signature: Option<String>,
}

/// What went wrong, before it is worded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Not signed by the log key (or wrong origin, malformed).
    BadCheckpoint(String),
    /// Too few trusted witnesses cosigned it.
    NoQuorum { got: usize, quorum: usize },
    /// A smaller tree than the trusted one.
    Rollback,
    /// The same size with another root.
    Fork,
    /// A larger tree that does not extend the trusted one.
    Inconsistent(String),
    /// Items not in the tree at the checkpoint.
    Inclusion(Vec<BadItem>),
    /// Items delivered without their log position.
    NoPosition(Vec<String>),
}

/// A persisted, loud log failure. While one is held the agent ingests
/// nothing from the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogAlert {
    /// `bad-checkpoint`, `no-quorum`, `rollback`, `fork`, `inconsistent`,
    /// `inclusion` or `no-position`.
    pub kind: String,
    /// The whole story, naming both checkpoints.
    pub message: String,
    /// The last checkpoint this agent trusted.
    pub trusted: Option<CheckpointRef>,
    /// The checkpoint the hub offered (or the one the proofs were against).
    pub offered: Option<CheckpointRef>,
    /// Its signed note, for the coordinator.
    pub offered_note: Option<String>,
    #[serde(default)]
    pub items: Vec<BadItem>,
    pub hub: String,
    pub at: String,
}

const WHAT_NOW: &str = "Ingesting from this hub is stopped; everything held stays held. \
See `member-agent status`; after the ISAC's coordinator has decided, \
clear it with `member-agent log accept --checkpoint FILE`.";

impl LogAlert {
    pub fn new(
        failure: Failure,
        trusted: Option<&Trusted>,
        offered: Option<(&Checkpoint, &str)>,
        hub: &str,
        at: String,
    ) -> Self {
        let trusted_ref = trusted.map(Trusted::reference);
        let offered_ref = offered.map(|(c, _)| CheckpointRef {
            size: c.size,
            root: B64.encode(c.root),
        });
        let t = trusted_ref
            .as_ref()
            .map_or("none yet".to_owned(), |r| r.to_string());
        let o = offered_ref
            .as_ref()
            .map_or("unreadable".to_owned(), |r| r.to_string());
        let (kind, what, items) = match failure {
            Failure::BadCheckpoint(e) => (
                "bad-checkpoint",
                format!("BAD CHECKPOINT: the hub's checkpoint does not verify with the log key of the key directory: {e}. Trusted checkpoint: {t}; offered checkpoint: {o}."),
                Vec::new(),
            ),
            Failure::NoQuorum { got, quorum } => (
                "no-quorum",
                format!("NO WITNESS QUORUM: the hub's checkpoint ({o}) is cosigned by {got} of the trusted witnesses; agent.toml [log] quorum = {quorum} requires {quorum}. Trusted checkpoint: {t}."),
                Vec::new(),
            ),
            Failure::Rollback => (
                "rollback",
                format!("ROLLBACK: the hub's log shrank from the trusted checkpoint ({t}) to the offered checkpoint ({o}): its history was rolled back (for instance restored from an older backup)."),
                Vec::new(),
            ),
            Failure::Fork => (
                "fork",
                format!("FORK: the hub offers a checkpoint ({o}) of the same size as the trusted checkpoint ({t}) with another root: two different histories."),
                Vec::new(),
            ),
            Failure::Inconsistent(e) => (
                "inconsistent",
                format!("INCONSISTENT: the offered checkpoint ({o}) is not an append-only extension of the trusted checkpoint ({t}): {e}; the hub rewrote its history."),
                Vec::new(),
            ),
            Failure::Inclusion(items) => {
                let list: Vec<String> = items
                    .iter()
                    .map(|b| match &b.signature {
                        Some(s) => format!(
                            "{} (leaf {}): inclusion failed: {}; signature failed: {}",
                            b.item, b.leaf_index, b.inclusion, s
                        ),
                        None => format!(
                            "{} (leaf {}): inclusion failed: {}",
                            b.item, b.leaf_index, b.inclusion
                        ),
                    })
                    .collect();
                (
                    "inclusion",
                    format!(
                        "INCLUSION FAILED: {} item(s) the hub delivered are not in its log at the checkpoint ({o}; trusted checkpoint: {t}): {}.",
                        items.len(),
                        list.join("; ")
                    ),
                    items,
                )
            }
            Failure::NoPosition(ids) => (
                "no-position",
                format!(
                    "NO LOG POSITION: the hub delivered {} item(s) without their log position ({}), so they cannot be proven in its log. Trusted checkpoint: {t}; offered checkpoint: {o}.",
                    ids.len(),
                    ids.join(", ")
                ),
                Vec::new(),
            ),
        };
        LogAlert {
            kind: kind.to_owned(),
            message: format!("log alert from {hub}: {what} {WHAT_NOW}"),
            trusted: trusted_ref,
            offered: offered_ref,
            offered_note: offered.map(|(_, n)| n.to_owned()),
            items,
            hub: hub.to_owned(),
            at,
        }
    }

    /// The event every sink receives (`action: log-alert`).
    pub fn line(&self) -> serde_json::Value {
        serde_json::json!({
            "action": "log-alert",
            "id": format!("log-alert:{}", self.at),
            "revision": 0,
            "kind": "log-alert",
            "tlp": "clear",
            "title": format!("transparency log alert ({})", self.kind),
            "value": self.kind,
            "source_name": self.hub,
            "received_at": self.at,
            "alert": self,
            "statement": {"body": {"severity": "critical", "type": "log-alert"}},
        })
    }
}

/// The log keys the verified key directory lists (org `isac-log`, not
/// revoked), as note verifiers under `origin`.
pub fn log_verifiers(dir: &KeyDirectory, origin: &str) -> Vec<Ed25519Verifier> {
    dir.keys
        .iter()
        .filter(|k| k.org_id == isac_core::names::LOG_ORG && k.revoked_at.is_none())
        .filter_map(|k| k.record())
        .filter_map(|r| Ed25519Verifier::new(origin, &r.key).ok())
        .collect()
}

/// The first line of a note: the origin it claims (checked by the signature).
pub fn claimed_origin(note: &str) -> &str {
    note.split('\n').next().unwrap_or_default()
}

/// Opens a checkpoint note: signed by one of `logs`, of `origin`, cosigned
/// by `trust.quorum` of `trust.witnesses`.
pub fn open_checkpoint(
    note: &str,
    origin: &str,
    logs: &[Ed25519Verifier],
    trust: &LogTrust,
) -> Result<SignedCheckpoint, Failure> {
    let mut first_err = None;
    for log in logs {
        match witness::open_cosigned(note.as_bytes(), origin, log, &trust.witnesses, trust.quorum) {
            Ok(c) => return Ok(c),
            Err(WitnessError::NoQuorum { got, quorum }) => {
                return Err(Failure::NoQuorum { got, quorum })
            }
            Err(e) => {
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    Err(Failure::BadCheckpoint(first_err.unwrap_or_else(|| {
        "the key directory lists no log key (org isac-log)".to_owned()
    })))
}

/// How an offered checkpoint relates to the trusted one, before any proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing trusted yet: pin it.
    First,
    /// The same checkpoint.
    Same,
    /// Larger: needs a consistency proof from the trusted size.
    Grow { from: u64 },
}

pub fn compare(trusted: Option<&Trusted>, offered: &Checkpoint) -> Result<Step, Failure> {
    let Some(t) = trusted else {
        return Ok(Step::First);
    };
    if t.origin != offered.origin {
        return Err(Failure::BadCheckpoint(format!(
            "the checkpoint is for log {:?}, the trusted one for {:?}",
            offered.origin, t.origin
        )));
    }
    if offered.size < t.size {
        return Err(Failure::Rollback);
    }
    if offered.size == t.size {
        return if offered.root == t.root {
            Ok(Step::Same)
        } else {
            Err(Failure::Fork)
        };
    }
    if t.size == 0 {
        // Every tree extends the empty one.
        return Ok(Step::First);
    }
    Ok(Step::Grow { from: t.size })
}

/// RFC 9162 consistency of `offered` with `trusted`.
pub fn check_consistency(
    trusted: &Trusted,
    offered: &Checkpoint,
    proof: &[Hash],
) -> Result<(), Failure> {
    merkle::verify_consistency(
        trusted.size,
        offered.size,
        &trusted.root,
        &offered.root,
        proof,
    )
    .map_err(|e| Failure::Inconsistent(e.to_string()))
}

/// One item to prove: its leaf bytes (the envelope as delivered) and index.
#[derive(Debug, Clone)]
pub struct ToProve {
    pub item: String,
    pub leaf_index: u64,
    pub leaf: Vec<u8>,
    /// Why its signature check failed, if it did.
    pub signature: Option<String>,
}

/// Checks each item's proof against `at`; the items that fail.
pub fn check_inclusions(at: &Trusted, items: &[ToProve], proofs: &[Vec<Hash>]) -> Vec<BadItem> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let leaf = merkle::leaf_hash(&item.leaf);
            let result = match proofs.get(i) {
                Some(p) => merkle::verify_inclusion(item.leaf_index, at.size, &leaf, p, &at.root)
                    .map_err(|e| e.to_string()),
                None => Err("the hub sent no proof for it".to_owned()),
            };
            result.err().map(|inclusion| BadItem {
                item: item.item.clone(),
                leaf_index: item.leaf_index,
                inclusion,
                signature: item.signature.clone(),
            })
        })
        .collect()
}

/// Most proofs asked in one `GetInclusionProofs` (the hub's limit).
pub const PROOF_BATCH: usize = 1024;

/// How long ingest waits for the hub to checkpoint items it delivered
/// before giving up for this run (nothing from the batch is stored).
pub const COVER_WAIT: Duration = Duration::from_secs(30);

/// How long a checkpoint without the witness quorum is waited on before
/// that is an alert.
pub const QUORUM_GRACE: Duration = Duration::from_secs(5);

/// A log failure, or the hub could not be asked.
pub enum Fault {
    Hub(AgentError),
    Alert(Box<LogAlert>),
}

impl From<AgentError> for Fault {
    fn from(e: AgentError) -> Self {
        Fault::Hub(e)
    }
}

impl From<tonic::Status> for Fault {
    fn from(s: tonic::Status) -> Self {
        Fault::Hub(s.into())
    }
}

fn hashes(p: pb::Proof) -> Result<Vec<Hash>, AgentError> {
    p.hashes
        .into_iter()
        .map(|h| {
            Hash::try_from(h.as_slice()).map_err(|_| {
                AgentError::Invalid("the hub sent a proof hash that is not 32 bytes".into())
            })
        })
        .collect()
}

// === impl Agent ===

impl Agent {
    /// The checkpoint this agent trusts, from its store.
    pub fn trusted_checkpoint(&self) -> Result<Option<Trusted>, AgentError> {
        let note = self
            .store
            .lock()
            .expect("local store lock")
            .log_checkpoint()?;
        note.as_deref().map(Trusted::from_note).transpose()
    }

    /// The alert held, if any.
    pub fn log_alert(&self) -> Result<Option<LogAlert>, AgentError> {
        let json = self.store.lock().expect("local store lock").log_alert()?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Refuses to ingest while an alert is held.
    pub fn ensure_no_alert(&self) -> Result<(), AgentError> {
        match self.log_alert()? {
            Some(a) => Err(AgentError::LogAlert(a.message)),
            None => Ok(()),
        }
    }

    fn alert(
        &self,
        failure: Failure,
        trusted: Option<&Trusted>,
        offered: Option<(&Checkpoint, &str)>,
    ) -> Fault {
        Fault::Alert(Box::new(LogAlert::new(
            failure,
            trusted,
            offered,
            self.hub_url(),
            isac_core::time::format_rfc3339(self.clock.now()),
        )))
    }

    /// An alert about items, against the trusted checkpoint.
    pub fn alert_at_trusted(&self, failure: Failure) -> Fault {
        match self.trusted_checkpoint() {
            Ok(t) => {
                let c = t.as_ref().and_then(|t| {
                    note::parse(t.note.as_bytes())
                        .ok()
                        .and_then(|n| Checkpoint::parse(&n.text).ok())
                });
                let offered = t
                    .as_ref()
                    .zip(c.as_ref())
                    .map(|(t, c)| (c, t.note.as_str()));
                self.alert(failure, t.as_ref(), offered)
            }
            Err(e) => Fault::Hub(e),
        }
    }

    /// Persists the alert first (so it survives anything that follows),
    /// then tells every sink and the terminal; the error `sync` fails with.
    pub async fn raise_alert(&self, alert: LogAlert, sinks: Option<&mut Sinks>) -> AgentError {
        let json = serde_json::to_string(&alert).unwrap_or_default();
        if let Err(e) = self
            .store
            .lock()
            .expect("local store lock")
            .set_log_alert(&json)
        {
            eprintln!("error: could not persist the log alert: {e}");
        }
        tracing::error!(kind = %alert.kind, message = %alert.message, "transparency log alert");
        eprintln!(
            "\n{}\n{}\n{}\n",
            "!".repeat(72),
            alert.message,
            "!".repeat(72)
        );
        if let Some(sinks) = sinks {
            sinks.alert(&alert.line()).await;
        }
        AgentError::LogAlert(alert.message)
    }

    /// Turns a fault into the error to return, raising an alert.
    pub async fn fault(&self, fault: Fault, sinks: Option<&mut Sinks>) -> AgentError {
        match fault {
            Fault::Hub(e) => e,
            Fault::Alert(a) => self.raise_alert(*a, sinks).await,
        }
    }

    /// Fetches the hub's latest checkpoint, verifies it (log signature,
    /// origin, witness quorum, consistency with the trusted one) and makes
    /// it the trusted checkpoint (persisted in one write).
    /// A checkpoint short of the witness quorum is asked for again for
    /// `QUORUM_GRACE` first: witnesses cosign after the hub signs.
    /// `min_size` (0: none) asks the hub to answer once it serves a
    /// checkpoint of at least that many leaves (it signs one sooner and
    /// holds the call up to 5 s): one call instead of polling.
    pub async fn advance_log(&self, channel: &Channel, min_size: u64) -> Result<Trusted, Fault> {
        let started = std::time::Instant::now();
        loop {
            let offered = pb::log_client::LogClient::new(channel.clone())
                .get_checkpoint(pb::GetCheckpointRequest { min_size })
                .await?
                .into_inner()
                .signed_note;
            match self.accept_offered(channel, &offered).await {
                Err(Fault::Alert(a))
                    if a.kind == "no-quorum" && started.elapsed() < QUORUM_GRACE =>
                {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                other => return other,
            }
        }
    }

    async fn accept_offered(&self, channel: &Channel, offered: &str) -> Result<Trusted, Fault> {
        let trusted = self.trusted_checkpoint()?;
        let origin = self
            .log
            .origin
            .clone()
            .or_else(|| trusted.as_ref().map(|t| t.origin.clone()))
            .unwrap_or_else(|| claimed_origin(offered).to_owned());
        let parsed = note::parse(offered.as_bytes())
            .ok()
            .and_then(|n| Checkpoint::parse(&n.text).ok());
        let dir = self
            .directory()
            .ok_or_else(|| AgentError::Invalid("no key directory held yet".into()))?;
        let logs = log_verifiers(&dir, &origin);
        let opened = match open_checkpoint(offered, &origin, &logs, &self.log) {
            Ok(o) => o,
            Err(f) => {
                return Err(self.alert(f, trusted.as_ref(), parsed.as_ref().map(|c| (c, offered))))
            }
        };
        let c = &opened.checkpoint;
        let offered_pair = Some((c, offered));
        match compare(trusted.as_ref(), c) {
            Err(f) => return Err(self.alert(f, trusted.as_ref(), offered_pair)),
            Ok(Step::Same) => {
                // Keep the note with the most cosignatures seen? The first
                // one is as good: same size, same root.
                return Ok(trusted.expect("Same needs a trusted checkpoint"));
            }
            Ok(Step::First) => {}
            Ok(Step::Grow { from }) => {
                let proof = pb::log_client::LogClient::new(channel.clone())
                    .get_consistency_proof(pb::GetConsistencyProofRequest {
                        first_size: from,
                        second_size: c.size,
                    })
                    .await?
                    .into_inner();
                let t = trusted.as_ref().expect("Grow needs a trusted checkpoint");
                if let Err(f) = check_consistency(t, c, &hashes(proof)?) {
                    return Err(self.alert(f, Some(t), offered_pair));
                }
            }
        }
        self.store
            .lock()
            .expect("local store lock")
            .set_log_checkpoint(offered)?;
        Ok(Trusted::from_signed(c, offered))
    }

    /// A trusted checkpoint with more than `max_index` leaves: the held one
    /// if it does, else the hub's latest, waiting (bounded) for the hub's
    /// checkpointer to cover items it just delivered.
    pub async fn covering_checkpoint(
        &self,
        channel: &Channel,
        max_index: u64,
    ) -> Result<Trusted, Fault> {
        if let Some(t) = self.trusted_checkpoint()? {
            if t.size > max_index {
                return Ok(t);
            }
        }
        let started = std::time::Instant::now();
        loop {
            let size = match self.advance_log(channel, max_index.saturating_add(1)).await {
                Ok(t) if t.size > max_index => return Ok(t),
                Ok(t) => t.size,
                // No checkpoint at all yet (a new log's first second).
                Err(Fault::Hub(AgentError::Hub {
                    code: tonic::Code::FailedPrecondition,
                    ..
                })) => 0,
                Err(f) => return Err(f),
            };
            if started.elapsed() > COVER_WAIT {
                return Err(Fault::Hub(AgentError::Invalid(format!(
                    "the hub delivered log position {max_index} but has not published a checkpoint covering it within {} s (latest: size {}); nothing from this batch was stored, try again",
                    COVER_WAIT.as_secs(),
                    size
                ))));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Inclusion proofs of `items` at `at`, `PROOF_BATCH` per call.
    pub async fn inclusion_proofs(
        &self,
        channel: &Channel,
        at: &Trusted,
        items: &[ToProve],
    ) -> Result<Vec<Vec<Hash>>, AgentError> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(PROOF_BATCH) {
            let proofs = pb::log_client::LogClient::new(channel.clone())
                .get_inclusion_proofs(pb::GetInclusionProofsRequest {
                    tree_size: at.size,
                    leaf_indices: chunk.iter().map(|i| i.leaf_index).collect(),
                })
                .await?
                .into_inner()
                .proofs;
            if proofs.len() != chunk.len() {
                return Err(AgentError::Invalid(format!(
                    "asked the hub for {} proofs, it sent {}",
                    chunk.len(),
                    proofs.len()
                )));
            }
            for p in proofs {
                out.push(hashes(p)?);
            }
        }
        Ok(out)
    }

    /// Proves every item in one checkpoint that covers them all.
    pub async fn prove(&self, channel: &Channel, items: &[ToProve]) -> Result<Trusted, Fault> {
        let max = items.iter().map(|i| i.leaf_index).max().unwrap_or(0);
        let at = self.covering_checkpoint(channel, max).await?;
        if items.is_empty() {
            return Ok(at);
        }
        let proofs = self.inclusion_proofs(channel, &at, items).await?;
        let bad = check_inclusions(&at, items, &proofs);
        if bad.is_empty() {
            Ok(at)
        } else {
            let c = Checkpoint::parse(
                &note::parse(at.note.as_bytes())
                    .map_err(|e| AgentError::Invalid(e.to_string()))?
                    .text,
            )
            .map_err(|e| AgentError::Invalid(e.to_string()))?;
            Err(self.alert(Failure::Inclusion(bad), Some(&at), Some((&c, &at.note))))
        }
    }

    /// A checkpoint note from an operator (after a coordinator's decision):
    /// verified like any checkpoint (log key, origin, quorum) but without
    /// consistency to the trusted one, which it replaces; the alert is
    /// cleared. Returns (old, new).
    pub fn accept_checkpoint(&self, note: &str) -> Result<(Option<Trusted>, Trusted), AgentError> {
        let old = self.trusted_checkpoint()?;
        let origin = self
            .log
            .origin
            .clone()
            .or_else(|| old.as_ref().map(|t| t.origin.clone()))
            .unwrap_or_else(|| claimed_origin(note).to_owned());
        let dir = self.directory().ok_or_else(|| {
            AgentError::Usage("no key directory held yet: run `member-agent sync` once".into())
        })?;
        let logs = log_verifiers(&dir, &origin);
        let opened = open_checkpoint(note, &origin, &logs, &self.log).map_err(|f| {
            AgentError::Usage(format!(
                "the checkpoint was not accepted: {}",
                match f {
                    Failure::BadCheckpoint(e) => e,
                    Failure::NoQuorum { got, quorum } =>
                        format!("cosigned by {got} trusted witness(es), quorum {quorum}"),
                    other => format!("{other:?}"),
                }
            ))
        })?;
        self.store
            .lock()
            .expect("local store lock")
            .accept_log_checkpoint(note)?;
        Ok((old, Trusted::from_signed(&opened.checkpoint, note)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use isac_core::tlog::merkle::TreeBuilder;
    use isac_core::tlog::note::Ed25519Signer;
    use isac_core::tlog::witness::Cosigner;
    use isac_core::SigningKey;

    const ORIGIN: &str = "isac.example/log";

    struct World {
        log: Ed25519Signer,
        tree: TreeBuilder,
        leaves: Vec<Vec<u8>>,
        nodes: std::collections::HashMap<merkle::NodeId, Hash>,
    }

    impl merkle::HashReader for World {
        type Error = std::convert::Infallible;
        fn read_hashes(&self, ids: &[merkle::NodeId]) -> Result<Vec<Hash>, Self::Error> {
            Ok(ids.iter().map(|i| self.nodes[i]).collect())
        }
    }

    impl World {
        fn new() -> Self {
            World {
                log: Ed25519Signer::new(ORIGIN, SigningKey::generate().unwrap()).unwrap(),
                tree: TreeBuilder::new(),
                leaves: Vec::new(),
                nodes: Default::default(),
            }
        }
        fn push(&mut self, leaf: &[u8]) {
            self.leaves.push(leaf.to_vec());
            for (id, h) in self.tree.append(merkle::leaf_hash(leaf)).unwrap() {
                self.nodes.insert(id, h);
            }
        }
        fn checkpoint(&self) -> Checkpoint {
            Checkpoint {
                origin: ORIGIN.into(),
                size: self.tree.size(),
                root: self.tree.root(),
                extensions: vec![],
            }
        }
        fn note(&self, cosigners: &[&Cosigner]) -> String {
            let c = self.checkpoint();
            let mut n = note::Note::new(c.to_text().unwrap()).unwrap();
            n.sign(&self.log).unwrap();
            for w in cosigners {
                n.sign(&w.at(1_700_000_000).unwrap()).unwrap();
            }
            n.to_text()
        }
        fn trusted(&self) -> Trusted {
            Trusted::from_note(&self.note(&[])).unwrap()
        }
        fn verifiers(&self) -> Vec<Ed25519Verifier> {
            vec![self.log.verifier().unwrap()]
        }
    }

    fn witness(n: u8) -> Cosigner {
        Cosigner::new(&format!("w{n}.example"), SigningKey::generate().unwrap()).unwrap()
    }

    #[test]
    fn checkpoints_open_only_with_the_log_key_the_origin_and_the_quorum() {
        let mut w = World::new();
        w.push(b"a");
        let (w1, w2, w3) = (witness(1), witness(2), witness(3));
        let trust = |q| LogTrust {
            origin: None,
            witnesses: vec![w1.verifier().unwrap(), w2.verifier().unwrap()],
            quorum: q,
        };
        let plain = w.note(&[]);
        assert!(open_checkpoint(&plain, ORIGIN, &w.verifiers(), &trust(0)).is_ok());
        assert_eq!(
            open_checkpoint(&plain, ORIGIN, &w.verifiers(), &trust(1)).unwrap_err(),
            Failure::NoQuorum { got: 0, quorum: 1 }
        );
        // An untrusted witness does not count.
        let by_w3 = w.note(&[&w3]);
        assert_eq!(
            open_checkpoint(&by_w3, ORIGIN, &w.verifiers(), &trust(1)).unwrap_err(),
            Failure::NoQuorum { got: 0, quorum: 1 }
        );
        let by_two = w.note(&[&w1, &w2]);
        assert!(open_checkpoint(&by_two, ORIGIN, &w.verifiers(), &trust(2)).is_ok());
        // Another log key, another origin, no key at all.
        let other = World::new();
        assert!(matches!(
            open_checkpoint(&plain, ORIGIN, &other.verifiers(), &trust(0)),
            Err(Failure::BadCheckpoint(_))
        ));
        assert!(matches!(
            open_checkpoint(&plain, "other.example/log", &w.verifiers(), &trust(0)),
            Err(Failure::BadCheckpoint(_))
        ));
        assert!(matches!(
            open_checkpoint(&plain, ORIGIN, &[], &trust(0)),
            Err(Failure::BadCheckpoint(_))
        ));
        // A changed body.
        let forged = plain.replacen("\n1\n", "\n2\n", 1);
        assert!(matches!(
            open_checkpoint(&forged, ORIGIN, &w.verifiers(), &trust(0)),
            Err(Failure::BadCheckpoint(_))
        ));
    }

    #[test]
    fn growth_is_checked_rollback_and_fork_are_refused() {
        let mut w = World::new();
        for i in 0..5u8 {
            w.push(&[i]);
        }
        let t5 = w.trusted();
        assert_eq!(compare(None, &w.checkpoint()).unwrap(), Step::First);
        assert_eq!(compare(Some(&t5), &w.checkpoint()).unwrap(), Step::Same);
        for i in 5..9u8 {
            w.push(&[i]);
        }
        let c9 = w.checkpoint();
        assert_eq!(compare(Some(&t5), &c9).unwrap(), Step::Grow { from: 5 });
        let proof = merkle::prove_consistency(&w, 5, 9).unwrap();
        assert!(check_consistency(&t5, &c9, &proof).is_ok());
        // A history that differs before size 5 does not extend it.
        let mut fork = World::new();
        for i in 0..9u8 {
            fork.push(&[i ^ u8::from(i == 2)]);
        }
        let f9 = fork.checkpoint();
        let fproof = merkle::prove_consistency(&fork, 5, 9).unwrap();
        assert!(matches!(
            check_consistency(&t5, &f9, &fproof),
            Err(Failure::Inconsistent(_))
        ));
        // Smaller, and same size with another root.
        let t9 = w.trusted();
        assert_eq!(
            compare(Some(&t9), &fork_at(5)).unwrap_err(),
            Failure::Rollback
        );
        assert_eq!(compare(Some(&t9), &f9).unwrap_err(), Failure::Fork);
        // Another origin is never "the same log".
        let mut elsewhere = c9.clone();
        elsewhere.origin = "other.example/log".into();
        assert!(matches!(
            compare(Some(&t9), &elsewhere),
            Err(Failure::BadCheckpoint(_))
        ));
    }

    fn fork_at(size: u8) -> Checkpoint {
        let mut w = World::new();
        for i in 0..size {
            w.push(&[i, 1]);
        }
        w.checkpoint()
    }

    #[test]
    fn inclusion_is_checked_for_every_item_and_names_the_signature_failure_too() {
        let mut w = World::new();
        for i in 0..20u8 {
            w.push(&[b'x', i]);
        }
        let at = w.trusted();
        let items: Vec<ToProve> = (0..20u8)
            .map(|i| ToProve {
                item: format!("item-{i}"),
                leaf_index: u64::from(i),
                leaf: vec![b'x', i],
                signature: None,
            })
            .collect();
        let proofs: Vec<Vec<Hash>> = (0..20)
            .map(|i| merkle::prove_inclusion(&w, i, 20).unwrap())
            .collect();
        assert!(check_inclusions(&at, &items, &proofs).is_empty());
        let mut tampered = items.clone();
        tampered[7].leaf = b"changed".to_vec();
        tampered[7].signature = Some("bad signature".into());
        let bad = check_inclusions(&at, &tampered, &proofs);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].item, "item-7");
        assert_eq!(bad[0].signature.as_deref(), Some("bad signature"));
        // A missing proof fails; a proof for another index fails.
        assert_eq!(check_inclusions(&at, &items, &proofs[..19]).len(), 1);
        let mut swapped = proofs.clone();
        swapped.swap(3, 4);
        assert_eq!(check_inclusions(&at, &items, &swapped).len(), 2);
        let alert = LogAlert::new(
            Failure::Inclusion(bad),
            Some(&at),
            Some((&w.checkpoint(), &at.note)),
            "hub",
            "now".into(),
        );
        assert!(
            alert.message.contains("inclusion failed"),
            "{}",
            alert.message
        );
        assert!(alert.message.contains("signature failed: bad signature"));
        assert_eq!(alert.line()["action"], "log-alert");
    }

    #[test]
    fn alerts_name_both_checkpoints() {
        let mut w = World::new();
        w.push(b"a");
        w.push(b"b");
        let t = w.trusted();
        let smaller = fork_at(1);
        let a = LogAlert::new(
            Failure::Rollback,
            Some(&t),
            Some((&smaller, "note")),
            "https://hub:50051",
            "2026-12-02T00:00:00Z".into(),
        );
        assert_eq!(a.kind, "rollback");
        assert!(a.message.contains("ROLLBACK"));
        assert!(a
            .message
            .contains(&format!("size 2 root {}", B64.encode(t.root))));
        assert!(a
            .message
            .contains(&format!("size 1 root {}", B64.encode(smaller.root))));
        let back: LogAlert = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn log_config_is_checked() {
        let w = witness(1).verifier().unwrap().to_vkey();
        let ok = LogConfig {
            origin: None,
            witnesses: vec![w.clone()],
            quorum: 1,
        };
        assert_eq!(LogTrust::from_config(&ok).unwrap().quorum, 1);
        for bad in [
            LogConfig {
                quorum: 2,
                ..ok.clone()
            },
            LogConfig {
                witnesses: vec![w.clone(), w.clone()],
                ..ok.clone()
            },
            LogConfig {
                witnesses: vec!["nonsense".into()],
                ..ok.clone()
            },
            LogConfig {
                origin: Some("a b".into()),
                ..ok.clone()
            },
        ] {
            assert!(matches!(
                LogTrust::from_config(&bad),
                Err(AgentError::Usage(_))
            ));
        }
    }
}
