//! The hub's store: one SQLite database in WAL mode behind a single writer
//! thread, plus a small pool of read connections.
//!
//! Writes are closures queued to the writer. It takes every queued write,
//! runs each in its own savepoint inside one transaction, commits once
//! (group commit), and only then answers the callers and publishes the new
//! head sequence. So an acknowledged write is durable, and a subscriber
//! woken by the head never reads past a gap.
//!
//! **Invariant:** only `sqlite.rs` (and the writer loop here) knows SQL.

pub mod latency;
mod recent;
mod sqlite;
mod typed;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use isac_core::membership::StatusChange;
use isac_core::tlog::merkle::{self, HashReader, NodeId, TreeBuilder};
use isac_core::tlog::Hash;
use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

pub use sqlite::{
    backup_database, count_statements, AgentDetail, AgentRow, AnonymousVersion, ApiKeyRow,
    AuditRow, CheckpointRow, EnrollRecord, KeyRow, MemberRow, NewStatement, PersonRow, PruneReport,
    StatusCounts, StoredFacts, StoredStatement, TaxiiWrite, TokenRecord,
};

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

type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// Read connections kept open (and the most reads running at once).
const READ_CONNECTIONS: usize = 4;

/// Most writes the writer folds into one transaction.
const MAX_GROUP: usize = 2048;

/// A cheap, cloneable handle to the store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    /// Bounds concurrent reads to the pooled connections: opening a SQLite
    /// connection per read under load costs more than waiting for one.
    read_permits: tokio::sync::Semaphore,
    head: watch::Sender<u64>,
    recent: Arc<recent::Recent>,
    /// BEGIN-to-COMMIT time of each group commit (for metrics).
    commit_latency: Arc<latency::Histogram>,
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk before we acknowledge it, even across power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the database at `path` and starts its writer.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_connection(path)?;
        sqlite::migrate(&conn)?;
        let head = sqlite::head_sequence(&conn)?;
        let (head_tx, _) = watch::channel(head);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let head_for_writer = head_tx.clone();
        let commit_latency = Arc::new(latency::Histogram::default());
        let latency = commit_latency.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, head_for_writer, &latency))
            .map_err(|e| StoreError::Sqlite(format!("cannot start writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(Some(tx)),
                writer_thread: Mutex::new(Some(thread)),
                readers: Mutex::new(Vec::new()),
                read_permits: tokio::sync::Semaphore::new(READ_CONNECTIONS),
                head: head_tx,
                recent: Arc::new(recent::Recent::default()),
                commit_latency,
            }),
        })
    }

    /// Watches the highest committed sequence.
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.head.subscribe()
    }

    pub fn head(&self) -> u64 {
        *self.inner.head.borrow()
    }

    /// Group-commit latency of this store's writer.
    pub fn commit_latency(&self) -> &latency::Histogram {
        &self.inner.commit_latency
    }

    /// Stops the writer after it has committed everything already queued,
    /// and refuses new reads (`Closed`) through this handle and its clones.
    pub fn close(&self) {
        self.inner.read_permits.close();
        self.inner.writer.lock().expect("writer lock").take();
        if let Some(t) = self.inner.writer_thread.lock().expect("thread lock").take() {
            let _ = t.join();
        }
    }

    /// Queues `f` for the writer and waits until its transaction commits.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.enqueue(f)?.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `f` for the writer now (so several queued writes keep their
    /// order and share one commit) and returns where its outcome will arrive.
    fn enqueue<T, F>(&self, f: F) -> Result<oneshot::Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit_error| {
                let outcome = match commit_error {
                    None => result,
                    Some(e) => Err(e.clone()),
                };
                let _ = tx.send(outcome);
            });
            (ok, completion)
        });
        let guard = self.inner.writer.lock().expect("writer lock");
        let sender = guard.as_ref().ok_or(StoreError::Closed)?;
        sender.send(job).map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    /// Appends many statements in the given order, in one group commit when
    /// the writer is free; each gets its own outcome.
    pub async fn append_statements(
        &self,
        items: Vec<NewStatement>,
    ) -> Vec<Result<(u64, bool), StoreError>> {
        let mut pending = Vec::with_capacity(items.len());
        for s in items {
            let recent = self.inner.recent.clone();
            pending.push(self.enqueue(move |c| append_and_remember(c, &s, &recent)));
        }
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(match p {
                Ok(rx) => rx.await.unwrap_or(Err(StoreError::Closed)),
                Err(e) => Err(e),
            });
        }
        out
    }

    /// Runs `f` on a pooled read connection off the async threads.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let _permit = self
            .inner
            .read_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().expect("reader pool").pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_connection(&inner.path)?,
            };
            let result = f(&conn);
            let mut pool = inner.readers.lock().expect("reader pool");
            if pool.len() < READ_CONNECTIONS {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Sqlite(format!("reader task failed: {e}")))?
    }

    // === the transparency log ===

    /// Leaves appended so far (every stored statement has one).
    pub async fn log_leaf_count(&self) -> Result<u64, StoreError> {
        self.read(sqlite::log_leaf_count).await
    }

    /// The leaf index of statement `seq`.
    pub async fn leaf_index_of(&self, seq: u64) -> Result<Option<u64>, StoreError> {
        self.read(move |c| sqlite::leaf_index_of(c, seq)).await
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        self.read(sqlite::latest_checkpoint).await
    }

    /// The tree grown from `from_size` (a checkpointed size) to `to_size`
    /// leaves: the nodes to keep and the new root. Read-only: the leaves
    /// below `to_size` are committed and never change.
    pub async fn extend_log(
        &self,
        from_size: u64,
        to_size: u64,
    ) -> Result<LogExtension, StoreError> {
        self.read(move |c| {
            let reader = sqlite::SqliteHashReader(c);
            let mut builder = TreeBuilder::resume(&reader, from_size).map_err(prove_error)?;
            let mut nodes = Vec::new();
            for leaf in sqlite::leaf_hashes(c, from_size, to_size)? {
                let completed = builder
                    .append(leaf)
                    .map_err(|e| StoreError::Sqlite(format!("log: {e}")))?;
                nodes.extend(completed.into_iter().filter(|(n, _)| n.level > 0));
            }
            Ok(LogExtension {
                from_size,
                size: builder.size(),
                root: builder.root(),
                nodes,
            })
        })
        .await
    }

    /// Stores an extension with its signed checkpoint (a no-op conflict if
    /// another checkpoint got there first).
    pub async fn integrate_checkpoint(
        &self,
        extension: LogExtension,
        note: String,
        created_at: i64,
    ) -> Result<CheckpointRow, StoreError> {
        let row = CheckpointRow {
            size: extension.size,
            root: extension.root,
            note,
            created_at,
        };
        self.write(move |c| {
            sqlite::integrate_checkpoint(c, extension.from_size, &extension.nodes, &row)?;
            Ok(row)
        })
        .await
    }

    /// RFC 9162 inclusion proof of leaf `index` in the tree of `size`
    /// leaves; `size` must not exceed the latest checkpoint.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.read(move |c| {
            merkle::prove_inclusion(&sqlite::SqliteHashReader(c), index, size).map_err(prove_error)
        })
        .await
    }

    /// RFC 9162 consistency proof between two checkpointed sizes.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        self.read(move |c| {
            merkle::prove_consistency(&sqlite::SqliteHashReader(c), old, new).map_err(prove_error)
        })
        .await
    }

    /// The stored checkpoint of exactly `size` leaves.
    pub async fn checkpoint_at(&self, size: u64) -> Result<Option<CheckpointRow>, StoreError> {
        self.read(move |c| sqlite::checkpoint_at(c, size)).await
    }

    /// The newest checkpoint every one of `witnesses` (names) cosigned.
    pub async fn newest_cosigned_by_all(
        &self,
        witnesses: Vec<String>,
    ) -> Result<Option<CheckpointRow>, StoreError> {
        self.read(move |c| sqlite::newest_cosigned_by_all(c, &witnesses))
            .await
    }

    /// Stores `witness`'s cosignature line of the checkpoint of `size`.
    pub async fn add_cosignature(
        &self,
        size: u64,
        witness: String,
        line: String,
        created_at: i64,
    ) -> Result<(), StoreError> {
        self.write(move |c| sqlite::add_cosignature(c, size, &witness, &line, created_at))
            .await
    }

    /// The cosignature lines of the checkpoint of `size` leaves.
    pub async fn cosignatures(&self, size: u64) -> Result<Vec<String>, StoreError> {
        self.read(move |c| sqlite::cosignatures(c, size)).await
    }

    /// The largest checkpoint size `witness` cosigned, if any.
    pub async fn latest_cosigned(&self, witness: String) -> Result<Option<u64>, StoreError> {
        self.read(move |c| sqlite::latest_cosigned(c, &witness))
            .await
    }

    /// Node hashes of a checkpointed tree (tiles are read through this).
    pub async fn log_hashes(&self, nodes: Vec<NodeId>) -> Result<Vec<Hash>, StoreError> {
        self.read(move |c| sqlite::SqliteHashReader(c).read_hashes(&nodes))
            .await
    }

    // === members and enrollment ===

    pub async fn add_member(&self, member: MemberRow, actor: &str) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.write(move |c| sqlite::add_member(c, &member, &actor))
            .await
    }

    pub async fn set_member_status(
        &self,
        org: &str,
        change: StatusChange,
        actor: &str,
        now: i64,
    ) -> Result<MemberRow, StoreError> {
        let (org, actor) = (org.to_owned(), actor.to_owned());
        self.write(move |c| sqlite::set_member_status(c, &org, change, &actor, now))
            .await
    }

    pub async fn add_person(
        &self,
        person: PersonRow,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.write(move |c| sqlite::add_person(c, &person, &actor, now))
            .await
    }

    pub async fn remove_person(
        &self,
        org: &str,
        person: &str,
        actor: &str,
        now: i64,
    ) -> Result<PersonRow, StoreError> {
        let (org, person, actor) = (org.to_owned(), person.to_owned(), actor.to_owned());
        self.write(move |c| sqlite::remove_person(c, &org, &person, &actor, now))
            .await
    }

    pub async fn list_people(&self, org: Option<&str>) -> Result<Vec<PersonRow>, StoreError> {
        let org = org.map(str::to_owned);
        self.read(move |c| sqlite::list_people(c, org.as_deref()))
            .await
    }

    pub async fn agents_of(&self, org: &str) -> Result<Vec<AgentDetail>, StoreError> {
        let org = org.to_owned();
        self.read(move |c| sqlite::agents_of(c, &org)).await
    }

    pub async fn keys_of(&self, org: &str) -> Result<Vec<KeyRow>, StoreError> {
        let org = org.to_owned();
        self.read(move |c| sqlite::keys_of(c, &org)).await
    }

    pub async fn revoke_key(
        &self,
        key_id: &str,
        at: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<KeyRow, StoreError> {
        let (key_id, reason, actor) = (key_id.to_owned(), reason.to_owned(), actor.to_owned());
        self.write(move |c| sqlite::revoke_key(c, &key_id, at, &reason, &actor, now))
            .await
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
        let (org, current, new_key_id, actor) = (
            org.to_owned(),
            current.to_owned(),
            new_key_id.to_owned(),
            actor.to_owned(),
        );
        self.write(move |c| {
            sqlite::rotate_key(c, &org, &current, &new_key_id, &new_spki, &actor, now)
        })
        .await
    }

    pub async fn renew_agent(
        &self,
        old_fingerprint: &str,
        new_fingerprint: &str,
        cert_pem: String,
        not_after: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let (old, new) = (old_fingerprint.to_owned(), new_fingerprint.to_owned());
        self.write(move |c| sqlite::renew_agent(c, &old, &new, &cert_pem, not_after, now))
            .await
    }

    pub async fn audit_list(&self, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        self.read(move |c| sqlite::audit_list(c, limit)).await
    }

    /// Moves on every membership or key change, by any process.
    pub async fn epoch(&self) -> Result<u64, StoreError> {
        self.read(sqlite::epoch).await
    }

    pub async fn next_directory_version(&self) -> Result<u64, StoreError> {
        self.write(sqlite::next_directory_version).await
    }

    pub async fn list_members(&self) -> Result<Vec<(MemberRow, u32, u32)>, StoreError> {
        self.read(sqlite::list_members).await
    }

    pub async fn member(&self, org_id: &str) -> Result<Option<MemberRow>, StoreError> {
        let org_id = org_id.to_owned();
        self.read(move |c| sqlite::member(c, &org_id)).await
    }

    pub async fn add_token(&self, token: TokenRecord, actor: &str) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.write(move |c| sqlite::add_token(c, &token, &actor))
            .await
    }

    /// Redeems the token and registers the agent and its signing key, all or nothing.
    pub async fn enroll(&self, record: EnrollRecord) -> Result<MemberRow, StoreError> {
        self.write(move |c| sqlite::enroll(c, &record)).await
    }

    pub async fn agent_by_cert(&self, fingerprint: &str) -> Result<Option<AgentRow>, StoreError> {
        let fp = fingerprint.to_owned();
        self.read(move |c| sqlite::agent_by_cert(c, &fp)).await
    }

    // === keys ===

    pub async fn key(&self, key_id: &str) -> Result<Option<KeyRow>, StoreError> {
        let key_id = key_id.to_owned();
        self.read(move |c| sqlite::key(c, &key_id)).await
    }

    pub async fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        self.read(sqlite::keys).await
    }

    // === statements ===

    /// Appends a verified statement; returns its sequence and whether it was
    /// an identical re-send of one already stored.
    pub async fn append_statement(&self, s: NewStatement) -> Result<(u64, bool), StoreError> {
        let recent = self.inner.recent.clone();
        self.write(move |c| append_and_remember(c, &s, &recent))
            .await
    }

    /// Committed statements after `after`, from the recent window when it
    /// holds them all, else from the database.
    pub async fn statements_after_shared(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Arc<StoredStatement>>, StoreError> {
        if let Some(rows) = self.inner.recent.after(after, self.head(), limit) {
            return Ok(rows);
        }
        Ok(self
            .statements_after(after, limit)
            .await?
            .into_iter()
            .map(Arc::new)
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
        let actor = actor.to_owned();
        self.write(move |c| sqlite::prune_expired(c, cutoff, now, dry_run, &actor))
            .await
    }

    pub async fn statements_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredStatement>, StoreError> {
        self.read(move |c| sqlite::statements_after(c, after, limit))
            .await
    }

    pub async fn acknowledge(
        &self,
        fingerprint: &str,
        seq: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        let fp = fingerprint.to_owned();
        self.write(move |c| sqlite::acknowledge(c, &fp, seq, now))
            .await
    }

    pub async fn revisions(&self, id: &str) -> Result<Vec<StoredStatement>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| sqlite::revisions(c, &id)).await
    }

    pub async fn search(
        &self,
        query: &str,
        limit: u32,
    ) -> Result<Vec<StoredStatement>, StoreError> {
        let query = query.to_owned();
        self.read(move |c| sqlite::search(c, &query, limit)).await
    }

    pub async fn sightings_of(&self, target_id: &str) -> Result<Vec<StoredStatement>, StoreError> {
        let target_id = target_id.to_owned();
        self.read(move |c| sqlite::sightings_of(c, &target_id))
            .await
    }

    // === sharing groups and audiences ===

    pub async fn add_group(
        &self,
        name: &str,
        members: Vec<String>,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (name, actor) = (name.to_owned(), actor.to_owned());
        self.write(move |c| sqlite::add_group(c, &name, &members, &actor, now))
            .await
    }

    pub async fn remove_group(
        &self,
        name: &str,
        actor: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let (name, actor) = (name.to_owned(), actor.to_owned());
        self.write(move |c| sqlite::remove_group(c, &name, &actor, now))
            .await
    }

    pub async fn list_groups(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        self.read(sqlite::list_groups).await
    }

    pub async fn group_members(&self, name: &str) -> Result<Option<Vec<String>>, StoreError> {
        let name = name.to_owned();
        self.read(move |c| sqlite::group_members(c, &name)).await
    }

    pub async fn groups_of(&self, org: &str) -> Result<Vec<String>, StoreError> {
        let org = org.to_owned();
        self.read(move |c| sqlite::groups_of(c, &org)).await
    }

    pub async fn person_exists(&self, org: &str, person: &str) -> Result<bool, StoreError> {
        let (org, person) = (org.to_owned(), person.to_owned());
        self.read(move |c| sqlite::person_exists(c, &org, &person))
            .await
    }

    pub async fn status_counts(&self) -> Result<StatusCounts, StoreError> {
        self.read(sqlite::status_counts).await
    }

    /// The committed head read from the database (also sees other processes' writes).
    pub async fn head_from_db(&self) -> Result<u64, StoreError> {
        self.read(sqlite::head_sequence).await
    }

    pub async fn statement_count(&self) -> Result<u64, StoreError> {
        self.read(sqlite::statement_count).await
    }

    // === TAXII ===

    /// The cursor just before the first statement with `added_us` above the given one.
    pub async fn seq_at_added(&self, added_us: i64) -> Result<u64, StoreError> {
        self.read(move |c| sqlite::seq_at_added(c, added_us)).await
    }

    /// Every revision and retraction of the statement a STIX object id was
    /// made from, in one read: a missing and a hidden id cost the same trip.
    pub async fn versions_of_stix_id(
        &self,
        stix_id: &str,
    ) -> Result<(Option<String>, Vec<StoredStatement>), StoreError> {
        let stix_id = stix_id.to_owned();
        self.read(move |c| sqlite::versions_of_stix_id(c, &stix_id))
            .await
    }

    /// Every revision and retraction of each of `ids`.
    pub async fn versions_of(&self, ids: Vec<String>) -> Result<Vec<StoredStatement>, StoreError> {
        self.read(move |c| sqlite::versions_of(c, &ids)).await
    }

    pub async fn add_api_key(&self, key: ApiKeyRow, actor: &str) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.write(move |c| sqlite::add_api_key(c, &key, &actor))
            .await
    }

    pub async fn api_key(&self, username: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let username = username.to_owned();
        self.read(move |c| sqlite::api_key(c, &username)).await
    }

    pub async fn list_api_keys(&self, org: Option<&str>) -> Result<Vec<ApiKeyRow>, StoreError> {
        let org = org.map(str::to_owned);
        self.read(move |c| sqlite::list_api_keys(c, org.as_deref()))
            .await
    }

    pub async fn revoke_api_key(
        &self,
        username: &str,
        actor: &str,
        now: i64,
    ) -> Result<ApiKeyRow, StoreError> {
        let (username, actor) = (username.to_owned(), actor.to_owned());
        self.write(move |c| sqlite::revoke_api_key(c, &username, &actor, now))
            .await
    }

    pub async fn taxii_writes_of(
        &self,
        org: &str,
        stix_id: &str,
    ) -> Result<Vec<TaxiiWrite>, StoreError> {
        let (org, stix_id) = (org.to_owned(), stix_id.to_owned());
        self.read(move |c| sqlite::taxii_writes_of(c, &org, &stix_id))
            .await
    }

    pub async fn record_taxii_writes(&self, rows: Vec<TaxiiWrite>) -> Result<(), StoreError> {
        self.write(move |c| sqlite::record_taxii_writes(c, &rows))
            .await
    }

    pub async fn save_taxii_status(
        &self,
        id: &str,
        org: &str,
        now: i64,
        body: String,
    ) -> Result<(), StoreError> {
        let (id, org) = (id.to_owned(), org.to_owned());
        self.write(move |c| sqlite::save_taxii_status(c, &id, &org, now, &body))
            .await
    }

    pub async fn taxii_status(&self, id: &str, org: &str) -> Result<Option<String>, StoreError> {
        let (id, org) = (id.to_owned(), org.to_owned());
        self.read(move |c| sqlite::taxii_status(c, &id, &org)).await
    }

    pub async fn touch_api_key(&self, username: &str, now: i64) -> Result<(), StoreError> {
        let username = username.to_owned();
        self.write(move |c| sqlite::touch_api_key(c, &username, now))
            .await
    }
}

fn append_and_remember(
    c: &Connection,
    s: &NewStatement,
    recent: &recent::Recent,
) -> Result<(u64, bool), StoreError> {
    let appended = sqlite::append_statement(c, s)?;
    if !appended.duplicate {
        recent.record(appended.seq, appended.added_us, appended.leaf_index, s);
    }
    Ok((appended.seq, appended.duplicate))
}

fn writer_loop(
    conn: Connection,
    rx: std::sync::mpsc::Receiver<Job>,
    head: watch::Sender<u64>,
    latency: &latency::Histogram,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let began = std::time::Instant::now();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let err = StoreError::from(e);
            tracing::error!(error = %err, "store: cannot begin a write transaction");
            for job in batch {
                // Run nothing; answer every caller with the error.
                let (_, done) = job_refused(job, &conn);
                done(Some(&err));
            }
            continue;
        }
        let mut completions = Vec::with_capacity(batch.len());
        for job in batch {
            let savepoint = conn.execute_batch("SAVEPOINT op");
            if let Err(e) = savepoint {
                let err = StoreError::from(e);
                completions.push((Some(err), job_refused(job, &conn).1));
                continue;
            }
            let (ok, done) = job(&conn);
            let end = if ok {
                conn.execute_batch("RELEASE op")
            } else {
                conn.execute_batch("ROLLBACK TO op; RELEASE op")
            };
            completions.push((end.err().map(StoreError::from), done));
        }
        let commit_error = conn.execute_batch("COMMIT").err().map(StoreError::from);
        latency.observe(began.elapsed());
        if let Some(e) = &commit_error {
            tracing::error!(error = %e, "store: commit failed; the whole group is refused");
            let _ = conn.execute_batch("ROLLBACK");
        } else if let Ok(h) = sqlite::head_sequence(&conn) {
            head.send_if_modified(|current| {
                let changed = *current != h;
                *current = h;
                changed
            });
        }
        for (own_error, done) in completions {
            done(commit_error.as_ref().or(own_error.as_ref()));
        }
    }
}

/// A job that could not run: produce its completion without touching data.
fn job_refused(job: Job, conn: &Connection) -> (bool, Completion) {
    // The closure must run to get at the reply channel; run it inside a
    // savepoint that is always rolled back, so it changes nothing.
    let _ = conn.execute_batch("SAVEPOINT refused");
    let out = job(conn);
    let _ = conn.execute_batch("ROLLBACK TO refused; RELEASE refused");
    out
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

    #[tokio::test]
    async fn cosignatures_are_kept_per_checkpoint_and_witness() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.db")).unwrap();
        store
            .append_statements((0..6).map(|n| statement(n, false)).collect())
            .await;
        let three = checkpoint(&store, 3).await;
        let six = checkpoint(&store, 6).await;
        let (w1, w2) = ("w1.example".to_owned(), "w2.example".to_owned());
        assert_eq!(store.latest_cosigned(w1.clone()).await.unwrap(), None);
        assert_eq!(
            store
                .newest_cosigned_by_all(vec![w1.clone()])
                .await
                .unwrap(),
            None
        );
        // No checkpoint of that size: refused, nothing stored.
        assert!(matches!(
            store.add_cosignature(4, w1.clone(), "x\n".into(), 1).await,
            Err(StoreError::Refused(_))
        ));
        store
            .add_cosignature(3, w1.clone(), "— w1 a\n".into(), 1)
            .await
            .unwrap();
        store
            .add_cosignature(3, w2.clone(), "— w2 b\n".into(), 1)
            .await
            .unwrap();
        store
            .add_cosignature(6, w1.clone(), "— w1 c\n".into(), 2)
            .await
            .unwrap();
        assert_eq!(
            store.cosignatures(3).await.unwrap(),
            vec!["— w1 a\n".to_owned(), "— w2 b\n".to_owned()]
        );
        assert_eq!(store.latest_cosigned(w1.clone()).await.unwrap(), Some(6));
        assert_eq!(store.latest_cosigned(w2.clone()).await.unwrap(), Some(3));
        // Newest cosigned by every one named: 6 by w1 alone, 3 by both.
        assert_eq!(
            store
                .newest_cosigned_by_all(vec![w1.clone()])
                .await
                .unwrap(),
            Some(six.clone())
        );
        assert_eq!(
            store
                .newest_cosigned_by_all(vec![w1.clone(), w2.clone()])
                .await
                .unwrap(),
            Some(three.clone())
        );
        assert_eq!(store.checkpoint_at(3).await.unwrap(), Some(three));
        assert_eq!(store.checkpoint_at(4).await.unwrap(), None);
        // The same witness again at the same size replaces its line.
        store
            .add_cosignature(6, w1.clone(), "— w1 d\n".into(), 3)
            .await
            .unwrap();
        assert_eq!(
            store.cosignatures(6).await.unwrap(),
            vec!["— w1 d\n".to_owned()]
        );
        store.close();
    }
}
