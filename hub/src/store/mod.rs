//! The hub's store: the one interface the services (gRPC, TAXII, admin,
//! retention, the log) use, over one of two backends.
//!
//! - [`sqlite_store`] (the default): one SQLite database in WAL mode behind
//!   a single writer thread, plus a small pool of read connections. Writes
//!   are closures queued to the writer. It takes every queued write, runs
//!   each in its own savepoint inside one transaction, commits once (group
//!   commit), and only then answers the callers and publishes the new head
//!   sequence. So an acknowledged write is durable, and a subscriber woken
//!   by the head never reads past a gap.
//!
//! - [`postgres_store`]: PostgreSQL (14 or newer) through `tokio-postgres`,
//!   for hubs that outgrow one machine: a few pooled connections, a writer
//!   task with the same group commit, and one order row that serialises
//!   publishers on every process sharing the database, so the order has no
//!   gap a reader can page past (see `postgres.rs`).
//!
//! `Store` is a cheap handle; each operation is dispatched to the backend
//! (an enum, not a trait object: no boxed futures on the hot path). The
//! head watch and the window of recent statements live here, beside the
//! backend, because every backend feeds them the same way.
//!
//! **Invariant:** only the backends (`sqlite.rs`, `sqlite_store.rs`,
//! `postgres.rs`, `postgres_store.rs`) know SQL.

pub mod copy;
pub mod latency;
mod pg_tls;
mod postgres;
mod postgres_store;
mod recent;
mod sqlite;
mod sqlite_store;
mod typed;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use isac_core::membership::StatusChange;
use isac_core::tlog::merkle::{self, NodeId};
use isac_core::tlog::Hash;
use tokio::sync::watch;

pub use pg_tls::PgTarget;

pub use recent::SharedRow;
pub use sqlite::{
    backup_database, count_statements, AgentDetail, AgentRow, AnonymousVersion, ApiKeyRow,
    AuditRow, CheckpointRow, EnrollRecord, KeyRow, MemberRow, NewStatement, PersonRow, PruneReport,
    StatusCounts, StoredFacts, StoredStatement, TaxiiWrite, TokenRecord,
};
pub use typed::Decoded;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write (e.g. an id already used with different bytes).
    #[error("{0}")]
    Conflict(String),
    /// A rule of the data refused the write (e.g. a revision older than the stored one).
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    NotFound(String),
    /// An enrollment token was unknown, used or expired.
    #[error("{0}")]
    Token(String),
    #[error("the store is closed")]
    Closed,
    /// The data volume is full (SQLITE_FULL): the write was rolled back.
    #[error("disk full: {0}")]
    DiskFull(String),
    /// The operating system failed a read or write (SQLITE_IOERR_*): the
    /// write was rolled back.
    #[error("I/O error: {0}")]
    Io(String),
    #[error("sqlite: {0}")]
    Sqlite(String),
    #[error("postgres: {0}")]
    Postgres(String),
    /// The database server cannot be reached or is shutting down: nothing
    /// was stored; a retry may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// This backend does not do that (e.g. an online backup of PostgreSQL:
    /// use `pg_dump`).
    #[error("{0}")]
    Unsupported(String),
    /// The membership epoch moved after the caller and key this append was
    /// checked with were read (a suspension, revocation, enrolment or key
    /// change committed meanwhile): nothing was stored; check again.
    #[error("membership or keys changed while this was checked; check again")]
    StaleAuthorization,
}

impl StoreError {
    /// A refusal of the statement itself (decided before anything was
    /// written), as opposed to a failure of the database.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict(_) | StoreError::Refused(_) | StoreError::NotFound(_)
        )
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull(e.to_string()),
            Some(rusqlite::ErrorCode::SystemIoFailure) => StoreError::Io(e.to_string()),
            _ => StoreError::Sqlite(e.to_string()),
        }
    }
}

/// A tree grown past its last checkpoint, not yet stored.
#[derive(Debug, Clone)]
pub struct LogExtension {
    pub from_size: u64,
    pub size: u64,
    pub root: Hash,
    /// The interior nodes it completed (leaves are stored already).
    pub nodes: Vec<(NodeId, Hash)>,
}

fn prove_error(e: merkle::ProveError<StoreError>) -> StoreError {
    match e {
        merkle::ProveError::Read(e) => e,
        other => StoreError::Refused(other.to_string()),
    }
}

/// Reads a `--store` / `store =` PostgreSQL URL. A password written in it
/// is refused: it would sit in shell history, `ps` and config files. Its
/// TLS parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`, as in
/// libpq) are decided by `isac_core::pg_tls`; `ca_file` is hub.toml's
/// `store_ca_file`, the same as `sslrootcert`. No file is read here.
pub fn postgres_target(
    url: &str,
    password: Option<&str>,
    ca_file: Option<&str>,
) -> Result<PgTarget, StoreError> {
    use isac_core::pg_tls::{self, TlsUse};
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::Refused(format!(
            "store `{url}` is not a PostgreSQL URL; expected postgres://USER@HOST:PORT/DB"
        )));
    }
    let tls_error = |e: pg_tls::PgTlsError| StoreError::Refused(format!("store URL: {e}"));
    let (rest, mut params) = pg_tls::split_url(url).map_err(tls_error)?;
    if let Some(ca) = ca_file.filter(|c| !c.is_empty()) {
        if params.root_cert.is_some() {
            return Err(StoreError::Refused(
                "the store's CA is given twice: sslrootcert in the store URL and store_ca_file; keep one".into(),
            ));
        }
        params.root_cert = Some(ca.to_owned());
    }
    let mut config: tokio_postgres::Config = rest.parse().map_err(|e| {
        StoreError::Refused(format!(
            "store URL is not valid ({e}); expected postgres://USER@HOST:PORT/DB"
        ))
    })?;
    if config.get_password().is_some() {
        return Err(StoreError::Refused(
            "store URL holds a password; remove it and give it in store_password_file or ISAC_STORE_PASSWORD instead".into(),
        ));
    }
    if config.get_user().is_none() || config.get_dbname().is_none() {
        return Err(StoreError::Refused(
            "store URL needs a user and a database: postgres://USER@HOST:PORT/DB".into(),
        ));
    }
    let unix_socket = config
        .get_hosts()
        .iter()
        .any(|h| !matches!(h, tokio_postgres::config::Host::Tcp(_)));
    let tls = pg_tls::decide(&params, unix_socket).map_err(tls_error)?;
    config.ssl_mode(match tls.tls {
        TlsUse::Never => tokio_postgres::config::SslMode::Disable,
        TlsUse::IfOffered => tokio_postgres::config::SslMode::Prefer,
        TlsUse::Always => tokio_postgres::config::SslMode::Require,
    });
    if let Some(p) = password {
        config.password(p);
    }
    config.application_name("isac-hub");
    config.connect_timeout(std::time::Duration::from_secs(10));
    Ok(PgTarget { config, tls })
}

/// What every backend shares with the handle: the committed head (for
/// subscribers' wake-ups), the recent window and the commit latency.
struct Shared {
    /// The highest sequence known committed: what `Store::head` answers
    /// (cursor checks, TAXII paging). Moved before a publisher is answered.
    committed: AtomicU64,
    /// The head streams follow: moved, waking every subscriber, after the
    /// publishers of a commit were answered (so an acknowledgement never
    /// queues behind thousands of wake-ups), and on PostgreSQL only once the
    /// recent window holds every row up to it or the gap is too large to
    /// fill (so subscribers read memory, not one query each).
    head: watch::Sender<u64>,
    recent: recent::Recent,
    /// BEGIN-to-COMMIT time of each group commit (for metrics).
    commit_latency: latency::Histogram,
    /// `None` while the database answers; the reason while it does not
    /// (PostgreSQL down or unreachable), for health checks and streams.
    unavailable: watch::Sender<Option<String>>,
    /// Reads of derived statements' targets by streams (`target_of_shared`).
    target_reads: AtomicU64,
}

impl Shared {
    fn new(head: u64) -> Arc<Self> {
        Arc::new(Shared {
            committed: AtomicU64::new(head),
            head: watch::channel(head).0,
            recent: recent::Recent::default(),
            commit_latency: latency::Histogram::default(),
            unavailable: watch::channel(None).0,
            target_reads: AtomicU64::new(0),
        })
    }

    /// Records whether the database answered (`None`) or why it did not;
    /// wakes watchers only on a change.
    fn set_unavailable(&self, reason: Option<String>) {
        self.unavailable.send_if_modified(|current| {
            let changed = current.is_some() != reason.is_some();
            if changed {
                *current = reason;
            }
            changed
        });
    }

    /// Records that everything up to `h` is committed without waking
    /// subscribers (never back).
    fn note_committed(&self, h: u64) {
        self.committed.fetch_max(h, Ordering::AcqRel);
    }

    /// The head streams follow.
    fn stream_head(&self) -> u64 {
        *self.head.borrow()
    }

    /// Moves the head forward to `h` (never back: two sources may report
    /// it out of turn) and wakes subscribers.
    fn advance_head(&self, h: u64) {
        self.note_committed(h);
        self.head.send_if_modified(|current| {
            let changed = h > *current;
            if changed {
                *current = h;
            }
            changed
        });
    }
}

enum Backend {
    Sqlite(sqlite_store::SqliteStore),
    Postgres(postgres_store::PgStore),
}

/// Runs one operation on whichever backend the store has.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.inner.backend {
            Backend::Sqlite(b) => b.$method($($arg),*).await,
            Backend::Postgres(b) => b.$method($($arg),*).await,
        }
    };
}

// Federation (issue 20): rows, SQL per backend, and the `Store` methods.
mod fed_types;
mod federation;
mod postgres_fed;
mod sqlite_fed;
pub use fed_types::{FederatedItem, OriginDirectoryRow, PeerLinkRow};
// Cross-hub sharing groups (issue 20).
mod fed_groups_ops;
mod postgres_groups;
mod sqlite_groups;
pub use fed_groups_ops::PeerGroupRow;

/// A cheap, cloneable handle to the store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    shared: Arc<Shared>,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and starts its writer.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let (backend, shared) = sqlite_store::SqliteStore::open(path)?;
        Ok(Store {
            inner: Arc::new(Inner {
                backend: Backend::Sqlite(backend),
                shared,
            }),
        })
    }

    /// Connects to PostgreSQL at `url` (`postgres://USER@HOST:PORT/DB`),
    /// creates or migrates the schema under an advisory lock, and starts the
    /// writer. The password comes from `password`, never from the URL.
    pub async fn open_postgres(url: &str, password: Option<&str>) -> Result<Self, StoreError> {
        Self::open_postgres_target(postgres_target(url, password, None)?).await
    }

    /// [`Store::open_postgres`] on a URL already read ([`postgres_target`]).
    pub async fn open_postgres_target(target: PgTarget) -> Result<Self, StoreError> {
        let (backend, shared) = postgres_store::PgStore::open(target).await?;
        Ok(Store {
            inner: Arc::new(Inner {
                backend: Backend::Postgres(backend),
                shared,
            }),
        })
    }

    /// Which backend this is, and where (no password), for `hub status`.
    pub fn describe(&self) -> String {
        match &self.inner.backend {
            Backend::Sqlite(b) => format!("sqlite {}", b.path().display()),
            Backend::Postgres(b) => format!("postgres {}", b.describe()),
        }
    }

    /// Watches the highest committed sequence.
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.shared.head.subscribe()
    }

    /// `None` while the database answers, else why not. PostgreSQL's tail
    /// probes it every 50 ms; an embedded SQLite file is always there.
    pub fn watch_unavailable(&self) -> watch::Receiver<Option<String>> {
        self.inner.shared.unavailable.subscribe()
    }

    /// The highest committed sequence this process knows of.
    pub fn head(&self) -> u64 {
        self.inner
            .shared
            .committed
            .load(Ordering::Acquire)
            .max(self.inner.shared.stream_head())
    }

    /// Waits up to `within` for this process to know of sequence
    /// `target` (PostgreSQL: another replica committed it and this
    /// replica's tail has not read the order row since), and returns the
    /// head then. An embedded SQLite store is the only writer of its file:
    /// its head is exact, so it answers at once.
    pub async fn wait_for_head(&self, target: u64, within: std::time::Duration) -> u64 {
        if matches!(self.inner.backend, Backend::Postgres(_)) && self.head() < target {
            let mut rx = self.watch_head();
            let _ = tokio::time::timeout(within, rx.wait_for(|h| *h >= target)).await;
        }
        self.head()
    }

    /// Group-commit latency of this store's writer.
    pub fn commit_latency(&self) -> &latency::Histogram {
        &self.inner.shared.commit_latency
    }

    /// Stops the writer after it has committed everything already queued,
    /// and refuses new reads (`Closed`) through this handle and its clones.
    pub fn close(&self) {
        match &self.inner.backend {
            Backend::Sqlite(b) => b.close(),
            Backend::Postgres(b) => b.close(),
        }
    }

    /// Appends many statements in the given order, in one group commit when
    /// the writer is free; each gets its own outcome.
    pub async fn append_statements(
        &self,
        items: Vec<NewStatement>,
    ) -> Vec<Result<(u64, bool), StoreError>> {
        dispatch!(self.append_statements(items))
    }

    // === the transparency log ===

    /// Leaves appended so far (every stored statement has one).
    pub async fn log_leaf_count(&self) -> Result<u64, StoreError> {
        dispatch!(self.log_leaf_count())
    }

    /// The leaf index of statement `seq`.
    pub async fn leaf_index_of(&self, seq: u64) -> Result<Option<u64>, StoreError> {
        dispatch!(self.leaf_index_of(seq))
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        dispatch!(self.latest_checkpoint())
    }

    /// The tree grown from `from_size` (a checkpointed size) to `to_size`
    /// leaves: the nodes to keep and the new root. Read-only: the leaves
    /// below `to_size` are committed and never change.
    pub async fn extend_log(
        &self,
        from_size: u64,
        to_size: u64,
    ) -> Result<LogExtension, StoreError> {
        dispatch!(self.extend_log(from_size, to_size))
    }

    /// Stores an extension with its signed checkpoint (a no-op conflict if
    /// another checkpoint got there first).
    pub async fn integrate_checkpoint(
        &self,
        extension: LogExtension,
        note: String,
        created_at: i64,
    ) -> Result<CheckpointRow, StoreError> {
        dispatch!(self.integrate_checkpoint(extension, note, created_at))
    }

    /// RFC 9162 inclusion proof of leaf `index` in the tree of `size`
    /// leaves; `size` must not exceed the latest checkpoint.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        dispatch!(self.inclusion_proof(index, size))
    }

    /// RFC 9162 consistency proof between two checkpointed sizes.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        dispatch!(self.consistency_proof(old, new))
    }

    /// The stored checkpoint of exactly `size` leaves.
    pub async fn checkpoint_at(&self, size: u64) -> Result<Option<CheckpointRow>, StoreError> {
        dispatch!(self.checkpoint_at(size))
    }

    /// The newest checkpoint every one of `witnesses` (names) cosigned.
    pub async fn newest_cosigned_by_all(
        &self,
        witnesses: Vec<String>,
    ) -> Result<Option<CheckpointRow>, StoreError> {
        dispatch!(self.newest_cosigned_by_all(witnesses))
    }

    /// Stores `witness`'s cosignature line of the checkpoint of `size`.
    pub async fn add_cosignature(
        &self,
        size: u64,
        witness: String,
        line: String,
        created_at: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.add_cosignature(size, witness, line, created_at))
    }

    /// The cosignature lines of the checkpoint of `size` leaves.
    pub async fn cosignatures(&self, size: u64) -> Result<Vec<String>, StoreError> {
        dispatch!(self.cosignatures(size))
    }

    /// The largest checkpoint size `witness` cosigned, if any.
    pub async fn latest_cosigned(&self, witness: String) -> Result<Option<u64>, StoreError> {
        dispatch!(self.latest_cosigned(witness))
    }

    /// Node hashes of a checkpointed tree (tiles are read through this).
    pub async fn log_hashes(&self, nodes: Vec<NodeId>) -> Result<Vec<Hash>, StoreError> {
        dispatch!(self.log_hashes(nodes))
    }

    // === members and enrollment ===

    pub async fn add_member(&self, member: MemberRow, actor: &str) -> Result<(), StoreError> {
        dispatch!(self.add_member(member, actor))
    }

    pub async fn set_member_status(
        &self,
        org: &str,
        change: StatusChange,
        actor: &str,
        now: i64,
    ) -> Result<MemberRow, StoreError> {
        dispatch!(self.set_member_status(org, change, actor, now))
    }

    pub async fn add_person(
        &self,
        person: PersonRow,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.add_person(person, actor, now))
    }

    pub async fn remove_person(
        &self,
        org: &str,
        person: &str,
        actor: &str,
        now: i64,
    ) -> Result<PersonRow, StoreError> {
        dispatch!(self.remove_person(org, person, actor, now))
    }

    pub async fn list_people(&self, org: Option<&str>) -> Result<Vec<PersonRow>, StoreError> {
        dispatch!(self.list_people(org))
    }

    pub async fn agents_of(&self, org: &str) -> Result<Vec<AgentDetail>, StoreError> {
        dispatch!(self.agents_of(org))
    }

    pub async fn keys_of(&self, org: &str) -> Result<Vec<KeyRow>, StoreError> {
        dispatch!(self.keys_of(org))
    }

    pub async fn revoke_key(
        &self,
        key_id: &str,
        at: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<KeyRow, StoreError> {
        dispatch!(self.revoke_key(key_id, at, reason, actor, now))
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn rotate_key(
        &self,
        org: &str,
        current: &str,
        new_key_id: &str,
        new_spki: Vec<u8>,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.rotate_key(org, current, new_key_id, new_spki, actor, now))
    }

    pub async fn renew_agent(
        &self,
        old_fingerprint: &str,
        new_fingerprint: &str,
        cert_pem: String,
        not_after: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.renew_agent(old_fingerprint, new_fingerprint, cert_pem, not_after, now))
    }

    /// One audit row outside an admin action (e.g. a member's override of
    /// its scan before signing).
    pub async fn audit_note(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.audit_note(actor, action, target, detail, now))
    }

    pub async fn audit_list(&self, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        dispatch!(self.audit_list(limit))
    }

    /// Moves on every membership or key change, by any process.
    pub async fn epoch(&self) -> Result<u64, StoreError> {
        dispatch!(self.epoch())
    }

    pub async fn next_directory_version(&self) -> Result<u64, StoreError> {
        dispatch!(self.next_directory_version())
    }

    /// The last directory version any process took (without taking one).
    pub async fn directory_version(&self) -> Result<u64, StoreError> {
        dispatch!(self.directory_version())
    }

    pub async fn list_members(&self) -> Result<Vec<(MemberRow, u32, u32)>, StoreError> {
        dispatch!(self.list_members())
    }

    pub async fn member(&self, org_id: &str) -> Result<Option<MemberRow>, StoreError> {
        dispatch!(self.member(org_id))
    }

    pub async fn add_token(&self, token: TokenRecord, actor: &str) -> Result<(), StoreError> {
        dispatch!(self.add_token(token, actor))
    }

    /// Redeems the token and registers the agent and its signing key, all or nothing.
    pub async fn enroll(&self, record: EnrollRecord) -> Result<MemberRow, StoreError> {
        dispatch!(self.enroll(record))
    }

    pub async fn agent_by_cert(&self, fingerprint: &str) -> Result<Option<AgentRow>, StoreError> {
        dispatch!(self.agent_by_cert(fingerprint))
    }

    // === keys ===

    pub async fn key(&self, key_id: &str) -> Result<Option<KeyRow>, StoreError> {
        dispatch!(self.key(key_id))
    }

    pub async fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        dispatch!(self.keys())
    }

    // === statements ===

    /// Appends a verified statement; returns its sequence and whether it was
    /// an identical re-send of one already stored.
    pub async fn append_statement(&self, s: NewStatement) -> Result<(u64, bool), StoreError> {
        dispatch!(self.append_statement(s, None))
    }

    /// [`Store::append_statement`] for a caller and signing key read at
    /// membership epoch `epoch` (`app::epoch_cache`): the writer reads the
    /// epoch in the append's own transaction and, if it moved, stores
    /// nothing and answers [`StoreError::StaleAuthorization`].
    pub async fn append_statement_authorized_at(
        &self,
        s: NewStatement,
        epoch: u64,
    ) -> Result<(u64, bool), StoreError> {
        dispatch!(self.append_statement(s, Some(epoch)))
    }

    /// Committed statements after `after` up to `head` (a value of
    /// [`Store::watch_head`]), from the recent window when it holds them
    /// all, else from the database. Each row comes with what the TLP
    /// decision needs already decoded, shared by every stream.
    pub async fn statements_after_shared(
        &self,
        after: u64,
        head: u64,
        limit: u32,
    ) -> Result<Vec<Arc<SharedRow>>, StoreError> {
        if let Some(rows) = self.inner.shared.recent.after(after, head, limit) {
            return Ok(rows);
        }
        Ok(self
            .statements_after(after, limit)
            .await?
            .into_iter()
            .map(|row| Arc::new(SharedRow::new(row)))
            .collect())
    }

    /// Deletes statements whose latest revision expired before `cutoff`
    /// (unix seconds), with the sightings and retractions that refer to
    /// them; their ids are never accepted again. Audited.
    pub async fn prune_expired(
        &self,
        cutoff: i64,
        now: i64,
        dry_run: bool,
        actor: &str,
    ) -> Result<PruneReport, StoreError> {
        dispatch!(self.prune_expired(cutoff, now, dry_run, actor))
    }

    pub async fn statements_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredStatement>, StoreError> {
        dispatch!(self.statements_after(after, limit))
    }

    pub async fn acknowledge(
        &self,
        fingerprint: &str,
        seq: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.acknowledge(fingerprint, seq, now))
    }

    pub async fn revisions(&self, id: &str) -> Result<Vec<StoredStatement>, StoreError> {
        dispatch!(self.revisions(id))
    }

    pub async fn search(
        &self,
        query: &str,
        limit: u32,
    ) -> Result<Vec<StoredStatement>, StoreError> {
        dispatch!(self.search(query, limit))
    }

    /// The latest revision of the target of a derived statement
    /// (sighting, retraction) that streams share: read from the store once
    /// for all the streams delivering `row` (the first reads, the others
    /// wait for it), and reused while the recent window shows no new
    /// revision of the target since; re-read when it does, or when the
    /// window cannot tell. `None` for a row without a target, or a target
    /// not stored. Each read counts in [`Store::target_reads`].
    pub async fn target_of_shared(
        &self,
        row: &SharedRow,
    ) -> Result<Option<Arc<SharedRow>>, StoreError> {
        let Some(target) = &row.target_id else {
            return Ok(None);
        };
        let mut slot = row.target.lock().await;
        let now = self.head();
        if let Some(seen) = slot.as_mut() {
            if seen.as_of >= now
                || self.inner.shared.recent.lacks_id(seen.as_of, now, target) == Some(true)
            {
                seen.as_of = seen.as_of.max(now);
                return Ok(seen.latest.clone());
            }
        }
        // Taken before the read: everything committed up to it is in it.
        let as_of = self.head();
        let latest = self
            .revisions(target)
            .await?
            .into_iter()
            .next()
            .map(|r| Arc::new(SharedRow::new(r)));
        self.inner
            .shared
            .target_reads
            .fetch_add(1, Ordering::Relaxed);
        *slot = Some(recent::TargetAsOf {
            as_of,
            latest: latest.clone(),
        });
        Ok(latest)
    }

    /// How many times streams read a derived statement's target from the
    /// store ([`Store::target_of_shared`]): once per derived statement, not
    /// once per subscriber.
    pub fn target_reads(&self) -> u64 {
        self.inner.shared.target_reads.load(Ordering::Relaxed)
    }

    pub async fn sightings_of(&self, target_id: &str) -> Result<Vec<StoredStatement>, StoreError> {
        dispatch!(self.sightings_of(target_id))
    }

    // === sharing groups and audiences ===

    pub async fn add_group(
        &self,
        name: &str,
        members: Vec<String>,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.add_group(name, members, actor, now))
    }

    pub async fn remove_group(
        &self,
        name: &str,
        actor: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self.remove_group(name, actor, now))
    }

    pub async fn list_groups(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        dispatch!(self.list_groups())
    }

    pub async fn group_members(&self, name: &str) -> Result<Option<Vec<String>>, StoreError> {
        dispatch!(self.group_members(name))
    }

    pub async fn groups_of(&self, org: &str) -> Result<Vec<String>, StoreError> {
        dispatch!(self.groups_of(org))
    }

    pub async fn person_exists(&self, org: &str, person: &str) -> Result<bool, StoreError> {
        dispatch!(self.person_exists(org, person))
    }

    pub async fn status_counts(&self) -> Result<StatusCounts, StoreError> {
        dispatch!(self.status_counts())
    }

    /// The committed head read from the database (also sees other processes' writes).
    pub async fn head_from_db(&self) -> Result<u64, StoreError> {
        dispatch!(self.head_from_db())
    }

    pub async fn statement_count(&self) -> Result<u64, StoreError> {
        dispatch!(self.statement_count())
    }

    // === TAXII ===

    /// The cursor just before the first statement with `added_us` above the given one.
    pub async fn seq_at_added(&self, added_us: i64) -> Result<u64, StoreError> {
        dispatch!(self.seq_at_added(added_us))
    }

    /// Every revision and retraction of the statement a STIX object id was
    /// made from, in one read: a missing and a hidden id cost the same trip.
    pub async fn versions_of_stix_id(
        &self,
        stix_id: &str,
    ) -> Result<(Option<String>, Vec<StoredStatement>), StoreError> {
        dispatch!(self.versions_of_stix_id(stix_id))
    }

    /// Every revision and retraction of each of `ids`.
    pub async fn versions_of(&self, ids: Vec<String>) -> Result<Vec<StoredStatement>, StoreError> {
        dispatch!(self.versions_of(ids))
    }

    pub async fn add_api_key(&self, key: ApiKeyRow, actor: &str) -> Result<(), StoreError> {
        dispatch!(self.add_api_key(key, actor))
    }

    pub async fn api_key(&self, username: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        dispatch!(self.api_key(username))
    }

    pub async fn list_api_keys(&self, org: Option<&str>) -> Result<Vec<ApiKeyRow>, StoreError> {
        dispatch!(self.list_api_keys(org))
    }

    pub async fn revoke_api_key(
        &self,
        username: &str,
        actor: &str,
        now: i64,
    ) -> Result<ApiKeyRow, StoreError> {
        dispatch!(self.revoke_api_key(username, actor, now))
    }

    pub async fn taxii_writes_of(
        &self,
        org: &str,
        stix_id: &str,
    ) -> Result<Vec<TaxiiWrite>, StoreError> {
        dispatch!(self.taxii_writes_of(org, stix_id))
    }

    pub async fn record_taxii_writes(&self, rows: Vec<TaxiiWrite>) -> Result<(), StoreError> {
        dispatch!(self.record_taxii_writes(rows))
    }

    pub async fn save_taxii_status(
        &self,
        id: &str,
        org: &str,
        now: i64,
        body: String,
    ) -> Result<(), StoreError> {
        dispatch!(self.save_taxii_status(id, org, now, body))
    }

    pub async fn taxii_status(&self, id: &str, org: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self.taxii_status(id, org))
    }

    pub async fn touch_api_key(&self, username: &str, now: i64) -> Result<(), StoreError> {
        dispatch!(self.touch_api_key(username, now))
    }
}

#[cfg(test)]
pub(crate) mod log_tests {
    use super::*;
    use isac_core::tlog::merkle::{leaf_hash, node_hash, verify_consistency, verify_inclusion};

    pub(crate) fn statement(n: u64, anonymous: bool) -> NewStatement {
        NewStatement {
            id: format!("id-{n}"),
            revision: 1,
            source_org: "a".into(),
            tlp: "green".into(),
            audience_json: "[]".into(),
            kind: "package".into(),
            created_at: 0,
            received_at: 0,
            payload_type: "t".into(),
            payload: format!("payload {n}").into_bytes(),
            key_id: "k".into(),
            signature: vec![n as u8],
            digest: format!("d{n}"),
            openings_json: "[]".into(),
            group_snapshot_json: "{}".into(),
            target_id: None,
            value: String::new(),
            title: String::new(),
            sighting_count: None,
            anonymous: anonymous.then(|| AnonymousVersion {
                payload: format!("anonymous {n}").into_bytes(),
                key_id: "anon".into(),
                signature: vec![0xaa],
            }),
            facts: StoredFacts::default(),
            stix_ids: Vec::new(),
            references: Vec::new(),
            provenance: None,
        }
    }

    /// The envelope a member receives for `s`.
    fn delivered(s: &NewStatement) -> isac_core::Envelope {
        let (payload, keyid, sig) = match &s.anonymous {
            Some(a) => (a.payload.clone(), a.key_id.clone(), a.signature.clone()),
            None => (s.payload.clone(), s.key_id.clone(), s.signature.clone()),
        };
        isac_core::Envelope {
            payload_type: s.payload_type.clone(),
            payload,
            signatures: vec![isac_core::envelope::Signature { keyid, sig }],
        }
    }

    /// MTH by the RFC's recursion, over leaf hashes.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => merkle::empty_root(),
            1 => leaves[0],
            n => {
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    async fn checkpoint(store: &Store, size: u64) -> CheckpointRow {
        let from = store
            .latest_checkpoint()
            .await
            .unwrap()
            .map_or(0, |c| c.size);
        let ext = store.extend_log(from, size).await.unwrap();
        store
            .integrate_checkpoint(ext, format!("note {size}"), 0)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_stored_statement_appends_one_dense_leaf_and_proofs_read_the_stored_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.db")).unwrap();
        let items: Vec<NewStatement> = (0..13).map(|n| statement(n, n % 5 == 2)).collect();
        let results = store.append_statements(items.clone()).await;
        let seqs: Vec<u64> = results.into_iter().map(|r| r.unwrap().0).collect();
        // A redelivery stores nothing and appends no leaf.
        let again = store.append_statements(vec![items[3].clone()]).await;
        assert!(again[0].as_ref().unwrap().1, "duplicate");
        assert_eq!(store.log_leaf_count().await.unwrap(), 13);
        for (i, seq) in seqs.iter().enumerate() {
            assert_eq!(store.leaf_index_of(*seq).await.unwrap(), Some(i as u64));
        }
        let leaves: Vec<Hash> = items
            .iter()
            .map(|s| leaf_hash(&isac_core::tlog::envelope_leaf(&delivered(s))))
            .collect();
        let read = store
            .log_hashes((0..13).map(NodeId::leaf).collect())
            .await
            .unwrap();
        assert_eq!(
            read, leaves,
            "leaf = the delivered envelope (anonymous copy)"
        );

        let first = checkpoint(&store, 6).await;
        assert_eq!(first.root, mth(&leaves[..6]));
        let second = checkpoint(&store, 13).await;
        assert_eq!(second.root, mth(&leaves));
        assert_eq!(
            store.latest_checkpoint().await.unwrap(),
            Some(second.clone())
        );
        for size in [1u64, 6, 7, 13] {
            for index in 0..size {
                let proof = store.inclusion_proof(index, size).await.unwrap();
                let root = mth(&leaves[..size as usize]);
                verify_inclusion(index, size, &leaves[index as usize], &proof, &root)
                    .unwrap_or_else(|e| panic!("{index} in {size}: {e}"));
            }
        }
        let proof = store.consistency_proof(6, 13).await.unwrap();
        verify_consistency(6, 13, &first.root, &second.root, &proof).unwrap();
        // A stale checkpointer loses rather than forking the stored tree.
        let stale = store.extend_log(6, 13).await.unwrap();
        assert!(matches!(
            store.integrate_checkpoint(stale, "late".into(), 0).await,
            Err(StoreError::Conflict(_))
        ));
        // Out-of-range questions are refused, not answered.
        assert!(matches!(
            store.inclusion_proof(13, 13).await,
            Err(StoreError::Refused(_))
        ));
        store.close();

        // Reopened, the tree resumes where it was.
        let store = Store::open(&dir.path().join("hub.db")).unwrap();
        let more = vec![statement(100, false)];
        let mut all = leaves.clone();
        all.push(leaf_hash(&isac_core::tlog::envelope_leaf(&delivered(
            &more[0],
        ))));
        store.append_statements(more).await[0].as_ref().unwrap();
        let third = checkpoint(&store, 14).await;
        assert_eq!(third.root, mth(&all));
        let proof = store.consistency_proof(13, 14).await.unwrap();
        verify_consistency(13, 14, &second.root, &third.root, &proof).unwrap();
        store.close();
    }
}
