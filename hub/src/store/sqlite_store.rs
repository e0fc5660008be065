//! The SQLite backend: one database in WAL mode behind a single writer
//! thread (group commit), plus a small pool of read connections. The SQL
//! itself is in `sqlite.rs`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use isac_core::membership::StatusChange;
use isac_core::tlog::merkle::{self, HashReader, NodeId, TreeBuilder};
use isac_core::tlog::Hash;
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::sqlite::{
    self, AgentDetail, AgentRow, ApiKeyRow, AuditRow, CheckpointRow, EnrollRecord, KeyRow,
    MemberRow, NewStatement, PersonRow, PruneReport, StatusCounts, StoredStatement, TaxiiWrite,
    TokenRecord,
};
use super::{prove_error, recent, LogExtension, Shared, StoreError};

type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

/// Read connections kept open (and the most reads running at once).
const READ_CONNECTIONS: usize = 4;

/// Most writes the writer folds into one transaction.
const MAX_GROUP: usize = 2048;
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk before we acknowledge it, even across power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // rusqlite keeps 16 prepared statements per connection; the append
    // path alone uses more, and an evicted one is parsed again per call.
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// The SQLite backend's handle (cloned inside `Store`'s `Arc`).
pub(super) struct SqliteStore {
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
    shared: Arc<Shared>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts its writer.
    pub(super) fn open(path: &Path) -> Result<(Self, Arc<Shared>), StoreError> {
        let conn = open_connection(path)?;
        sqlite::migrate(&conn)?;
        let shared = Shared::new(sqlite::head_sequence(&conn)?);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let for_writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, &for_writer))
            .map_err(|e| StoreError::Sqlite(format!("cannot start writer thread: {e}")))?;
        let store = SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(Some(tx)),
                writer_thread: Mutex::new(Some(thread)),
                readers: Mutex::new(Vec::new()),
                read_permits: tokio::sync::Semaphore::new(READ_CONNECTIONS),
                shared: shared.clone(),
            }),
        };
        Ok((store, shared))
    }

    /// Stops the writer after it has committed everything already queued,
    /// and refuses new reads (`Closed`) through this handle and its clones.
    pub(super) fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(super) fn close(&self) {
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
    pub(super) async fn append_statements(
        &self,
        items: Vec<NewStatement>,
    ) -> Vec<Result<(u64, bool), StoreError>> {
        let mut pending = Vec::with_capacity(items.len());
        for s in items {
            let shared = self.inner.shared.clone();
            pending.push(self.enqueue(move |c| append_and_remember(c, &s, &shared.recent)));
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
    pub(super) async fn log_leaf_count(&self) -> Result<u64, StoreError> {
        self.read(sqlite::log_leaf_count).await
    }

    /// The leaf index of statement `seq`.
    pub(super) async fn leaf_index_of(&self, seq: u64) -> Result<Option<u64>, StoreError> {
        self.read(move |c| sqlite::leaf_index_of(c, seq)).await
    }

    pub(super) async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        self.read(sqlite::latest_checkpoint).await
    }

    pub(super) async fn checkpoint_at(
        &self,
        size: u64,
    ) -> Result<Option<CheckpointRow>, StoreError> {
        self.read(move |c| sqlite::checkpoint_at(c, size)).await
    }

    pub(super) async fn newest_cosigned_by_all(
        &self,
        witnesses: Vec<String>,
    ) -> Result<Option<CheckpointRow>, StoreError> {
        self.read(move |c| sqlite::newest_cosigned_by_all(c, &witnesses))
            .await
    }

    pub(super) async fn add_cosignature(
        &self,
        size: u64,
        witness: String,
        line: String,
        created_at: i64,
    ) -> Result<(), StoreError> {
        self.write(move |c| sqlite::add_cosignature(c, size, &witness, &line, created_at))
            .await
    }

    pub(super) async fn cosignatures(&self, size: u64) -> Result<Vec<String>, StoreError> {
        self.read(move |c| sqlite::cosignatures(c, size)).await
    }

    pub(super) async fn latest_cosigned(&self, witness: String) -> Result<Option<u64>, StoreError> {
        self.read(move |c| sqlite::latest_cosigned(c, &witness))
            .await
    }

    /// The tree grown from `from_size` (a checkpointed size) to `to_size`
    /// leaves: the nodes to keep and the new root. Read-only: the leaves
    /// below `to_size` are committed and never change.
    pub(super) async fn extend_log(
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
    pub(super) async fn integrate_checkpoint(
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
    pub(super) async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        self.read(move |c| {
            merkle::prove_inclusion(&sqlite::SqliteHashReader(c), index, size).map_err(prove_error)
        })
        .await
    }

    /// RFC 9162 consistency proof between two checkpointed sizes.
    pub(super) async fn consistency_proof(
        &self,
        old: u64,
        new: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        self.read(move |c| {
            merkle::prove_consistency(&sqlite::SqliteHashReader(c), old, new).map_err(prove_error)
        })
        .await
    }

    /// Node hashes of a checkpointed tree (tiles are read through this).
    pub(super) async fn log_hashes(&self, nodes: Vec<NodeId>) -> Result<Vec<Hash>, StoreError> {
        self.read(move |c| sqlite::SqliteHashReader(c).read_hashes(&nodes))
            .await
    }

    // === members and enrollment ===

    pub(super) async fn add_member(
        &self,
        member: MemberRow,
        actor: &str,
    ) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.write(move |c| sqlite::add_member(c, &member, &actor))
            .await
    }

    pub(super) async fn set_member_status(
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

    pub(super) async fn add_person(
        &self,
        person: PersonRow,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.write(move |c| sqlite::add_person(c, &person, &actor, now))
            .await
    }

    pub(super) async fn remove_person(
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

    pub(super) async fn list_people(
        &self,
        org: Option<&str>,
    ) -> Result<Vec<PersonRow>, StoreError> {
        let org = org.map(str::to_owned);
        self.read(move |c| sqlite::list_people(c, org.as_deref()))
            .await
    }

    pub(super) async fn agents_of(&self, org: &str) -> Result<Vec<AgentDetail>, StoreError> {
        let org = org.to_owned();
        self.read(move |c| sqlite::agents_of(c, &org)).await
    }

    pub(super) async fn keys_of(&self, org: &str) -> Result<Vec<KeyRow>, StoreError> {
        let org = org.to_owned();
        self.read(move |c| sqlite::keys_of(c, &org)).await
    }

    pub(super) async fn revoke_key(
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
    pub(super) async fn rotate_key(
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

    pub(super) async fn renew_agent(
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

    pub(super) async fn audit_note(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (actor, action, target, detail) = (
            actor.to_owned(),
            action.to_owned(),
            target.to_owned(),
            detail.to_owned(),
        );
        self.write(move |c| sqlite::audit(c, now, &actor, &action, &target, &detail))
            .await
    }

    pub(super) async fn audit_list(&self, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        self.read(move |c| sqlite::audit_list(c, limit)).await
    }

    /// Moves on every membership or key change, by any process.
    pub(super) async fn epoch(&self) -> Result<u64, StoreError> {
        self.read(sqlite::epoch).await
    }

    pub(super) async fn next_directory_version(&self) -> Result<u64, StoreError> {
        self.write(sqlite::next_directory_version).await
    }

    pub(super) async fn directory_version(&self) -> Result<u64, StoreError> {
        self.read(sqlite::directory_version).await
    }

    pub(super) async fn list_members(&self) -> Result<Vec<(MemberRow, u32, u32)>, StoreError> {
        self.read(sqlite::list_members).await
    }

    pub(super) async fn member(&self, org_id: &str) -> Result<Option<MemberRow>, StoreError> {
        let org_id = org_id.to_owned();
        self.read(move |c| sqlite::member(c, &org_id)).await
    }

    pub(super) async fn add_token(
        &self,
        token: TokenRecord,
        actor: &str,
    ) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.write(move |c| sqlite::add_token(c, &token, &actor))
            .await
    }

    /// Redeems the token and registers the agent and its signing key, all or nothing.
    pub(super) async fn enroll(&self, record: EnrollRecord) -> Result<MemberRow, StoreError> {
        self.write(move |c| sqlite::enroll(c, &record)).await
    }

    pub(super) async fn agent_by_cert(
        &self,
        fingerprint: &str,
    ) -> Result<Option<AgentRow>, StoreError> {
        let fp = fingerprint.to_owned();
        self.read(move |c| sqlite::agent_by_cert(c, &fp)).await
    }

    // === keys ===

    pub(super) async fn key(&self, key_id: &str) -> Result<Option<KeyRow>, StoreError> {
        let key_id = key_id.to_owned();
        self.read(move |c| sqlite::key(c, &key_id)).await
    }

    pub(super) async fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        self.read(sqlite::keys).await
    }

    // === statements ===

    /// Appends a verified statement; returns its sequence and whether it was
    /// an identical re-send of one already stored.
    pub(super) async fn append_statement(
        &self,
        s: NewStatement,
        authorized_at: Option<u64>,
    ) -> Result<(u64, bool), StoreError> {
        let shared = self.inner.shared.clone();
        self.write(move |c| {
            // In the writer's transaction: no membership change can commit
            // between this read and the append.
            if authorized_at.is_some_and(|e| e != sqlite::epoch(c).unwrap_or(0)) {
                return Err(StoreError::StaleAuthorization);
            }
            append_and_remember(c, &s, &shared.recent)
        })
        .await
    }

    /// Deletes statements whose latest revision expired before `cutoff`
    /// (unix seconds), with the sightings and retractions that refer to
    /// them; their ids are never accepted again. Audited.
    pub(super) async fn prune_expired(
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

    pub(super) async fn statements_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredStatement>, StoreError> {
        self.read(move |c| sqlite::statements_after(c, after, limit))
            .await
    }

    pub(super) async fn acknowledge(
        &self,
        fingerprint: &str,
        seq: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        let fp = fingerprint.to_owned();
        self.write(move |c| sqlite::acknowledge(c, &fp, seq, now))
            .await
    }

    pub(super) async fn revisions(&self, id: &str) -> Result<Vec<StoredStatement>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| sqlite::revisions(c, &id)).await
    }

    pub(super) async fn search(
        &self,
        query: &str,
        limit: u32,
    ) -> Result<Vec<StoredStatement>, StoreError> {
        let query = query.to_owned();
        self.read(move |c| sqlite::search(c, &query, limit)).await
    }

    pub(super) async fn sightings_of(
        &self,
        target_id: &str,
    ) -> Result<Vec<StoredStatement>, StoreError> {
        let target_id = target_id.to_owned();
        self.read(move |c| sqlite::sightings_of(c, &target_id))
            .await
    }

    // === sharing groups and audiences ===

    pub(super) async fn add_group(
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

    pub(super) async fn remove_group(
        &self,
        name: &str,
        actor: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let (name, actor) = (name.to_owned(), actor.to_owned());
        self.write(move |c| sqlite::remove_group(c, &name, &actor, now))
            .await
    }

    pub(super) async fn list_groups(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        self.read(sqlite::list_groups).await
    }

    pub(super) async fn group_members(
        &self,
        name: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let name = name.to_owned();
        self.read(move |c| sqlite::group_members(c, &name)).await
    }

    pub(super) async fn groups_of(&self, org: &str) -> Result<Vec<String>, StoreError> {
        let org = org.to_owned();
        self.read(move |c| sqlite::groups_of(c, &org)).await
    }

    pub(super) async fn person_exists(&self, org: &str, person: &str) -> Result<bool, StoreError> {
        let (org, person) = (org.to_owned(), person.to_owned());
        self.read(move |c| sqlite::person_exists(c, &org, &person))
            .await
    }

    pub(super) async fn status_counts(&self) -> Result<StatusCounts, StoreError> {
        self.read(sqlite::status_counts).await
    }

    /// The committed head read from the database (also sees other processes' writes).
    pub(super) async fn head_from_db(&self) -> Result<u64, StoreError> {
        self.read(sqlite::head_sequence).await
    }

    pub(super) async fn statement_count(&self) -> Result<u64, StoreError> {
        self.read(sqlite::statement_count).await
    }

    // === TAXII ===

    /// The cursor just before the first statement with `added_us` above the given one.
    pub(super) async fn seq_at_added(&self, added_us: i64) -> Result<u64, StoreError> {
        self.read(move |c| sqlite::seq_at_added(c, added_us)).await
    }

    /// Every revision and retraction of the statement a STIX object id was
    /// made from, in one read: a missing and a hidden id cost the same trip.
    pub(super) async fn versions_of_stix_id(
        &self,
        stix_id: &str,
    ) -> Result<(Option<String>, Vec<StoredStatement>), StoreError> {
        let stix_id = stix_id.to_owned();
        self.read(move |c| sqlite::versions_of_stix_id(c, &stix_id))
            .await
    }

    /// Every revision and retraction of each of `ids`.
    pub(super) async fn versions_of(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<StoredStatement>, StoreError> {
        self.read(move |c| sqlite::versions_of(c, &ids)).await
    }

    pub(super) async fn add_api_key(&self, key: ApiKeyRow, actor: &str) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.write(move |c| sqlite::add_api_key(c, &key, &actor))
            .await
    }

    pub(super) async fn api_key(&self, username: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let username = username.to_owned();
        self.read(move |c| sqlite::api_key(c, &username)).await
    }

    pub(super) async fn list_api_keys(
        &self,
        org: Option<&str>,
    ) -> Result<Vec<ApiKeyRow>, StoreError> {
        let org = org.map(str::to_owned);
        self.read(move |c| sqlite::list_api_keys(c, org.as_deref()))
            .await
    }

    pub(super) async fn revoke_api_key(
        &self,
        username: &str,
        actor: &str,
        now: i64,
    ) -> Result<ApiKeyRow, StoreError> {
        let (username, actor) = (username.to_owned(), actor.to_owned());
        self.write(move |c| sqlite::revoke_api_key(c, &username, &actor, now))
            .await
    }

    pub(super) async fn taxii_writes_of(
        &self,
        org: &str,
        stix_id: &str,
    ) -> Result<Vec<TaxiiWrite>, StoreError> {
        let (org, stix_id) = (org.to_owned(), stix_id.to_owned());
        self.read(move |c| sqlite::taxii_writes_of(c, &org, &stix_id))
            .await
    }

    pub(super) async fn record_taxii_writes(
        &self,
        rows: Vec<TaxiiWrite>,
    ) -> Result<(), StoreError> {
        self.write(move |c| sqlite::record_taxii_writes(c, &rows))
            .await
    }

    pub(super) async fn save_taxii_status(
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

    pub(super) async fn taxii_status(
        &self,
        id: &str,
        org: &str,
    ) -> Result<Option<String>, StoreError> {
        let (id, org) = (id.to_owned(), org.to_owned());
        self.read(move |c| sqlite::taxii_status(c, &id, &org)).await
    }

    pub(super) async fn touch_api_key(&self, username: &str, now: i64) -> Result<(), StoreError> {
        let username = username.to_owned();
        self.write(move |c| sqlite::touch_api_key(c, &username, now))
            .await
    }
}

pub(super) fn append_and_remember(
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

fn writer_loop(conn: Connection, rx: std::sync::mpsc::Receiver<Job>, shared: &Shared) {
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
        shared.commit_latency.observe(began.elapsed());
        let mut head = None;
        if let Some(e) = &commit_error {
            tracing::error!(error = %e, "store: commit failed; the whole group is refused");
            let _ = conn.execute_batch("ROLLBACK");
        } else if let Ok(h) = sqlite::head_sequence(&conn) {
            // Committed: `Store::head` moves before anyone hears "stored".
            shared.note_committed(h);
            head = Some(h);
        }
        for (own_error, done) in completions {
            done(commit_error.as_ref().or(own_error.as_ref()));
        }
        // Then the streams: their wake-ups queue behind the answers, so a
        // publisher's acknowledgement does not wait for the fan-out.
        if let Some(h) = head {
            shared.advance_head(h);
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

// === federation (issue 20): SQL in `sqlite_fed.rs` ===

use super::fed_types::{FederatedItem, PeerLinkRow};
use super::sqlite_fed;

impl SqliteStore {
    pub(super) async fn add_peer_link(
        &self,
        link: PeerLinkRow,
        actor: &str,
    ) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.write(move |c| sqlite_fed::add_peer_link(c, &link, &actor))
            .await
    }

    pub(super) async fn origin_directories(
        &self,
    ) -> Result<Vec<super::OriginDirectoryRow>, StoreError> {
        self.read(sqlite_fed::origin_directories).await
    }

    pub(super) async fn pin_origin_directory(
        &self,
        row: super::OriginDirectoryRow,
    ) -> Result<(), StoreError> {
        self.write(move |c| sqlite_fed::pin_origin_directory(c, &row))
            .await
    }

    pub(super) async fn peer_links(&self) -> Result<Vec<PeerLinkRow>, StoreError> {
        self.read(sqlite_fed::peer_links).await
    }

    pub(super) async fn peer_link(&self, hub_id: &str) -> Result<Option<PeerLinkRow>, StoreError> {
        let hub_id = hub_id.to_owned();
        self.read(move |c| sqlite_fed::peer_link(c, &hub_id)).await
    }

    pub(super) async fn set_peer_status(
        &self,
        hub_id: &str,
        change: StatusChange,
        actor: &str,
        now: i64,
    ) -> Result<Option<PeerLinkRow>, StoreError> {
        let (hub_id, actor) = (hub_id.to_owned(), actor.to_owned());
        self.write(move |c| sqlite_fed::set_peer_status(c, &hub_id, change, &actor, now))
            .await
    }

    pub(super) async fn pin_peer_directory_key(
        &self,
        hub_id: &str,
        key: Vec<u8>,
    ) -> Result<(), StoreError> {
        let hub_id = hub_id.to_owned();
        self.write(move |c| sqlite_fed::pin_peer_directory_key(c, &hub_id, &key))
            .await
    }

    pub(super) async fn pin_peer_directory(
        &self,
        hub_id: &str,
        version: u64,
        directory: String,
    ) -> Result<(), StoreError> {
        let hub_id = hub_id.to_owned();
        self.write(move |c| sqlite_fed::pin_peer_directory(c, &hub_id, version, &directory))
            .await
    }

    pub(super) async fn receive_from_peer(
        &self,
        hub_id: &str,
        items: Vec<FederatedItem>,
        cursor: Vec<u8>,
    ) -> Result<u64, StoreError> {
        let hub_id = hub_id.to_owned();
        let shared = self.inner.shared.clone();
        self.write(move |c| {
            sqlite_fed::receive_from_peer(c, &hub_id, &items, &cursor, &|c, s| {
                append_and_remember(c, s, &shared.recent).map(|_| ())
            })
        })
        .await
    }

    pub(super) async fn federated_items(
        &self,
        origin: Option<String>,
    ) -> Result<Vec<FederatedItem>, StoreError> {
        self.read(move |c| sqlite_fed::federated_items(c, origin.as_deref()))
            .await
    }
}

// === cross-hub sharing groups (issue 20): SQL in `sqlite_groups.rs` ===

use super::fed_groups_ops::PeerGroupRow;
use super::sqlite_groups;

impl SqliteStore {
    pub(super) async fn share_group(
        &self,
        hub_id: &str,
        group: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (hub_id, group, actor) = (hub_id.to_owned(), group.to_owned(), actor.to_owned());
        self.write(move |c| sqlite_groups::share_group(c, &hub_id, &group, &actor, now))
            .await
    }

    pub(super) async fn unshare_group(
        &self,
        hub_id: &str,
        group: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (hub_id, group, actor) = (hub_id.to_owned(), group.to_owned(), actor.to_owned());
        self.write(move |c| sqlite_groups::unshare_group(c, &hub_id, &group, &actor, now))
            .await
    }

    pub(super) async fn peer_groups(&self) -> Result<Vec<PeerGroupRow>, StoreError> {
        self.read(sqlite_groups::peer_groups).await
    }

    pub(super) async fn set_peer_manifest(
        &self,
        hub_id: &str,
        groups: Vec<(String, Option<String>)>,
        now: i64,
    ) -> Result<(), StoreError> {
        let hub_id = hub_id.to_owned();
        self.write(move |c| sqlite_groups::set_peer_manifest(c, &hub_id, &groups, now))
            .await
    }
}
