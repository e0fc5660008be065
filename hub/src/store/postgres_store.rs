//! The PostgreSQL backend: a small pool of `tokio-postgres` connections, a
//! writer task that group-commits appends, and a tail of the order row so
//! this process hears what other replicas committed. The SQL is in
//! `postgres.rs`.
//!
//! - **Appends** go through one writer task per process, like SQLite's
//!   writer thread, on its own connection with the append statements
//!   prepared: it takes every queued statement, checks and inserts each
//!   inside one transaction (the order row locked once), commits once, and
//!   only then fills the recent window, moves the head and answers. A
//!   refusal is decided by reads before any write, so it needs no
//!   savepoint; a database error fails the whole group. Across replicas
//!   the order row's lock serialises these transactions (see
//!   `postgres.rs`).
//! - **Other writes** run in their own transaction on a pooled connection.
//! - **The head** moves when this writer commits, and when the tail (a
//!   one-row read every [`TAIL_INTERVAL`]) sees another replica's commits.
//!   The tail reads those rows once into the recent window before the
//!   streams' head moves past them (one read per replica, fanned out in
//!   memory); a range the window does not hold whole is read from the
//!   database by each stream.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use isac_core::membership::StatusChange;
use isac_core::tlog::merkle::{self, HashReader, NodeId, TreeBuilder};
use isac_core::tlog::Hash;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Config;

use super::pg_tls::{Dial, PgTarget};

use super::postgres::{self, Conn};
use super::{
    prove_error, AgentDetail, AgentRow, ApiKeyRow, AuditRow, CheckpointRow, EnrollRecord, KeyRow,
    LogExtension, MemberRow, NewStatement, PersonRow, PruneReport, Shared, StatusCounts,
    StoreError, StoredStatement, TaxiiWrite, TokenRecord,
};

/// Connections kept open (and the most database calls running at once).
const CONNECTIONS: usize = 8;
/// Most appends the writer folds into one transaction.
const MAX_GROUP: usize = 2048;
/// How often the head is read from the order row (other replicas' commits).
/// It bounds what an item published at another replica waits before this
/// one streams it: at 50 ms that wait alone broke the 50 ms fan-out p99
/// across two replicas (`isac-bench --replicas 2`); a one-row read every
/// 10 ms costs the database about 100 trivial queries/s per replica.
pub(super) const TAIL_INTERVAL: Duration = Duration::from_millis(10);

// === the pool ===

struct Pool {
    dial: Dial,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<tokio::sync::Semaphore>,
}

/// A connection taken from the pool; it goes back on drop unless it broke
/// or was left inside a transaction it could not end.
struct Pooled {
    client: Option<Conn>,
    pool: Arc<Pool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Pooled {
    fn poison(&mut self) {
        self.client = None;
    }
}

impl std::ops::Deref for Pooled {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.client
            .as_ref()
            .expect("a pooled client is present until drop")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            if !c.is_closed() {
                let mut idle = self.pool.idle.lock().expect("pool lock");
                if idle.len() < CONNECTIONS {
                    idle.push(c);
                }
            }
        }
    }
}

pub(super) async fn connect(dial: &Dial) -> Result<Conn, StoreError> {
    let (client, connection) = dial.config.connect(dial.tls.clone()).await.map_err(|e| {
        // The source names the TLS problem ("certificate ... not trusted").
        let cause = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL at {}: {e}{cause}",
            describe(&dial.config)
        ))
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "store: a PostgreSQL connection ended");
        }
    });
    Ok(Conn::new(client))
}

/// Where a config points, without its password.
pub(super) fn describe(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

impl Pool {
    async fn get(self: &Arc<Self>) -> Result<Pooled, StoreError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pooled = loop {
            let next = self.idle.lock().expect("pool lock").pop();
            match next {
                Some(c) if c.is_closed() => continue,
                Some(c) => break c,
                None => break connect(&self.dial).await?,
            }
        };
        Ok(Pooled {
            client: Some(pooled),
            pool: self.clone(),
            _permit: permit,
        })
    }
}

/// Runs `$body` (a future over `$c: &Conn`) on a pooled connection.
macro_rules! read {
    ($self:ident, |$c:ident| $body:expr) => {{
        let guard = $self.inner.pool.get().await?;
        let $c: &Conn = &guard;
        $body.await
    }};
}

/// Runs `$body` inside its own transaction on a pooled connection.
macro_rules! write_tx {
    ($self:ident, |$c:ident| $body:expr) => {{
        let mut guard = $self.inner.pool.get().await?;
        let result = {
            let $c: &Conn = &guard;
            match $c.batch_execute("BEGIN").await {
                Err(e) => Err(StoreError::from(e)),
                Ok(()) => {
                    let result = $body.await;
                    let end = match &result {
                        Ok(_) => $c.batch_execute("COMMIT").await,
                        Err(_) => $c.batch_execute("ROLLBACK").await,
                    };
                    match (result, end) {
                        (Ok(v), Ok(())) => Ok(Ok(v)),
                        (Ok(_), Err(e)) => Err(StoreError::from(e)),
                        (Err(e), Ok(())) => Ok(Err(e)),
                        (Err(e), Err(_)) => Err(e),
                    }
                }
            }
        };
        match result {
            Ok(outcome) => outcome,
            // The connection's state is unknown: never reuse it.
            Err(e) => {
                guard.poison();
                Err(e)
            }
        }
    }};
}

// === the handle ===

/// Where an append's outcome arrives: its sequence and whether it was a re-send.
type AppendReply = Result<(u64, bool), StoreError>;

struct AppendJob {
    statement: NewStatement,
    /// The membership epoch its caller and key were read at, to check in
    /// the transaction (`Store::append_statement_authorized_at`).
    authorized_at: Option<u64>,
    reply: oneshot::Sender<AppendReply>,
}

pub(super) struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Arc<Pool>,
    /// Jobs arrive in the groups they were asked for: a batch call is one
    /// message, so it is never split between two transactions.
    writer: Mutex<Option<mpsc::UnboundedSender<Vec<AppendJob>>>>,
    /// Signalled when the writer task has answered everything queued.
    writer_done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    tail: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl PgStore {
    /// Connects, creates or migrates the schema, and starts the writer and
    /// the tail. Must run inside a tokio runtime.
    pub(super) async fn open(target: PgTarget) -> Result<(Self, Arc<Shared>), StoreError> {
        let pool = Arc::new(Pool {
            dial: Dial::new(target)?,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(CONNECTIONS)),
        });
        let head = {
            let c = pool.get().await?;
            postgres::migrate(&c).await?;
            postgres::head_sequence(&c).await?
        };
        let shared = Shared::new(head);
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let fill = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(writer_loop(
            pool.clone(),
            rx,
            shared.clone(),
            fill.clone(),
            done_tx,
        ));
        let tail = tokio::spawn(tail_loop(pool.clone(), shared.clone(), fill));
        Ok((
            PgStore {
                inner: Arc::new(Inner {
                    pool,
                    writer: Mutex::new(Some(tx)),
                    writer_done: Mutex::new(Some(done_rx)),
                    tail: Mutex::new(Some(tail)),
                }),
            },
            shared,
        ))
    }

    pub(super) fn describe(&self) -> String {
        describe(&self.inner.pool.dial.config)
    }

    pub(super) fn close(&self) {
        self.inner.writer.lock().expect("writer lock").take();
        if let Some(done) = self.inner.writer_done.lock().expect("done lock").take() {
            // The writer answers what was queued, then ends.
            let _ = done.recv_timeout(Duration::from_secs(30));
        }
        if let Some(t) = self.inner.tail.lock().expect("tail lock").take() {
            t.abort();
        }
        self.inner.pool.permits.close();
        self.inner.pool.idle.lock().expect("pool lock").clear();
    }

    fn enqueue(
        &self,
        statement: NewStatement,
        authorized_at: Option<u64>,
    ) -> Result<oneshot::Receiver<AppendReply>, StoreError> {
        let (reply, rx) = oneshot::channel();
        let guard = self.inner.writer.lock().expect("writer lock");
        let sender = guard.as_ref().ok_or(StoreError::Closed)?;
        sender
            .send(vec![AppendJob {
                statement,
                authorized_at,
                reply,
            }])
            .map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    pub(super) async fn append_statement(
        &self,
        s: NewStatement,
        authorized_at: Option<u64>,
    ) -> Result<(u64, bool), StoreError> {
        self.enqueue(s, authorized_at)?
            .await
            .unwrap_or(Err(StoreError::Closed))
    }

    pub(super) async fn append_statements(
        &self,
        items: Vec<NewStatement>,
    ) -> Vec<Result<(u64, bool), StoreError>> {
        let mut jobs = Vec::with_capacity(items.len());
        let mut replies = Vec::with_capacity(items.len());
        for statement in items {
            let (reply, rx) = oneshot::channel();
            jobs.push(AppendJob {
                statement,
                authorized_at: None,
                reply,
            });
            replies.push(rx);
        }
        let sent = {
            let guard = self.inner.writer.lock().expect("writer lock");
            match guard.as_ref() {
                Some(sender) => sender.send(jobs).is_ok(),
                None => false,
            }
        };
        let mut out = Vec::with_capacity(replies.len());
        for rx in replies {
            out.push(if sent {
                rx.await.unwrap_or(Err(StoreError::Closed))
            } else {
                Err(StoreError::Closed)
            });
        }
        out
    }

    /// Runs a proof or tree computation (synchronous `HashReader` callers)
    /// on a blocking thread that reads hashes through the async client.
    async fn with_hashes<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&PgHashReader<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let guard = self.inner.pool.get().await?;
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            f(&PgHashReader {
                client: &guard,
                handle: &handle,
            })
        })
        .await
        .map_err(|e| StoreError::Postgres(format!("log reader task failed: {e}")))?
    }

    // === the transparency log ===

    pub(super) async fn log_leaf_count(&self) -> Result<u64, StoreError> {
        read!(self, |c| postgres::log_leaf_count(c))
    }

    pub(super) async fn leaf_index_of(&self, seq: u64) -> Result<Option<u64>, StoreError> {
        read!(self, |c| postgres::leaf_index_of(c, seq))
    }

    pub(super) async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        read!(self, |c| postgres::latest_checkpoint(c))
    }

    pub(super) async fn checkpoint_at(
        &self,
        size: u64,
    ) -> Result<Option<CheckpointRow>, StoreError> {
        read!(self, |c| postgres::checkpoint_at(c, size))
    }

    pub(super) async fn newest_cosigned_by_all(
        &self,
        witnesses: Vec<String>,
    ) -> Result<Option<CheckpointRow>, StoreError> {
        read!(self, |c| postgres::newest_cosigned_by_all(c, &witnesses))
    }

    pub(super) async fn add_cosignature(
        &self,
        size: u64,
        witness: String,
        line: String,
        created_at: i64,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres::add_cosignature(
            c, size, &witness, &line, created_at
        ))
    }

    pub(super) async fn cosignatures(&self, size: u64) -> Result<Vec<String>, StoreError> {
        read!(self, |c| postgres::cosignatures(c, size))
    }

    pub(super) async fn latest_cosigned(&self, witness: String) -> Result<Option<u64>, StoreError> {
        read!(self, |c| postgres::latest_cosigned(c, &witness))
    }

    pub(super) async fn extend_log(
        &self,
        from_size: u64,
        to_size: u64,
    ) -> Result<LogExtension, StoreError> {
        self.with_hashes(move |reader| {
            let mut builder = TreeBuilder::resume(reader, from_size).map_err(prove_error)?;
            let leaves =
                reader
                    .handle
                    .block_on(postgres::leaf_hashes(reader.client, from_size, to_size))?;
            let mut nodes = Vec::new();
            for leaf in leaves {
                let completed = builder
                    .append(leaf)
                    .map_err(|e| StoreError::Postgres(format!("log: {e}")))?;
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
        write_tx!(self, |c| postgres::integrate_checkpoint(
            c,
            extension.from_size,
            &extension.nodes,
            &row
        ))?;
        Ok(row)
    }

    pub(super) async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        self.with_hashes(move |r| merkle::prove_inclusion(r, index, size).map_err(prove_error))
            .await
    }

    pub(super) async fn consistency_proof(
        &self,
        old: u64,
        new: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        self.with_hashes(move |r| merkle::prove_consistency(r, old, new).map_err(prove_error))
            .await
    }

    pub(super) async fn log_hashes(&self, nodes: Vec<NodeId>) -> Result<Vec<Hash>, StoreError> {
        read!(self, |c| postgres::read_hashes(c, &nodes))
    }

    // === members and enrollment ===

    pub(super) async fn add_member(
        &self,
        member: MemberRow,
        actor: &str,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres::add_member(c, &member, actor))
    }

    pub(super) async fn set_member_status(
        &self,
        org: &str,
        change: StatusChange,
        actor: &str,
        now: i64,
    ) -> Result<MemberRow, StoreError> {
        write_tx!(self, |c| postgres::set_member_status(
            c, org, change, actor, now
        ))
    }

    pub(super) async fn add_person(
        &self,
        person: PersonRow,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres::add_person(c, &person, actor, now))
    }

    pub(super) async fn remove_person(
        &self,
        org: &str,
        person: &str,
        actor: &str,
        now: i64,
    ) -> Result<PersonRow, StoreError> {
        write_tx!(self, |c| postgres::remove_person(
            c, org, person, actor, now
        ))
    }

    pub(super) async fn list_people(
        &self,
        org: Option<&str>,
    ) -> Result<Vec<PersonRow>, StoreError> {
        read!(self, |c| postgres::list_people(c, org))
    }

    pub(super) async fn agents_of(&self, org: &str) -> Result<Vec<AgentDetail>, StoreError> {
        read!(self, |c| postgres::agents_of(c, org))
    }

    pub(super) async fn keys_of(&self, org: &str) -> Result<Vec<KeyRow>, StoreError> {
        read!(self, |c| postgres::keys_of(c, org))
    }

    pub(super) async fn revoke_key(
        &self,
        key_id: &str,
        at: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<KeyRow, StoreError> {
        write_tx!(self, |c| postgres::revoke_key(
            c, key_id, at, reason, actor, now
        ))
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
        write_tx!(self, |c| postgres::rotate_key(
            c, org, current, new_key_id, &new_spki, actor, now
        ))
    }

    pub(super) async fn renew_agent(
        &self,
        old_fingerprint: &str,
        new_fingerprint: &str,
        cert_pem: String,
        not_after: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres::renew_agent(
            c,
            old_fingerprint,
            new_fingerprint,
            &cert_pem,
            not_after,
            now
        ))
    }

    pub(super) async fn audit_note(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres::audit(
            c, now, actor, action, target, detail
        ))
    }

    pub(super) async fn audit_list(&self, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        read!(self, |c| postgres::audit_list(c, limit))
    }

    pub(super) async fn epoch(&self) -> Result<u64, StoreError> {
        read!(self, |c| postgres::epoch(c))
    }

    pub(super) async fn next_directory_version(&self) -> Result<u64, StoreError> {
        write_tx!(self, |c| postgres::next_directory_version(c))
    }

    pub(super) async fn directory_version(&self) -> Result<u64, StoreError> {
        read!(self, |c| postgres::directory_version(c))
    }

    pub(super) async fn list_members(&self) -> Result<Vec<(MemberRow, u32, u32)>, StoreError> {
        read!(self, |c| postgres::list_members(c))
    }

    pub(super) async fn member(&self, org_id: &str) -> Result<Option<MemberRow>, StoreError> {
        read!(self, |c| postgres::member(c, org_id))
    }

    pub(super) async fn add_token(
        &self,
        token: TokenRecord,
        actor: &str,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres::add_token(c, &token, actor))
    }

    pub(super) async fn enroll(&self, record: EnrollRecord) -> Result<MemberRow, StoreError> {
        write_tx!(self, |c| postgres::enroll(c, &record))
    }

    pub(super) async fn agent_by_cert(
        &self,
        fingerprint: &str,
    ) -> Result<Option<AgentRow>, StoreError> {
        read!(self, |c| postgres::agent_by_cert(c, fingerprint))
    }

    // === keys ===

    pub(super) async fn key(&self, key_id: &str) -> Result<Option<KeyRow>, StoreError> {
        read!(self, |c| postgres::key(c, key_id))
    }

    pub(super) async fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        read!(self, |c| postgres::keys(c))
    }

    // === statements ===

    pub(super) async fn prune_expired(
        &self,
        cutoff: i64,
        now: i64,
        dry_run: bool,
        actor: &str,
    ) -> Result<PruneReport, StoreError> {
        write_tx!(self, |c| postgres::prune_expired(
            c, cutoff, now, dry_run, actor
        ))
    }

    pub(super) async fn statements_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredStatement>, StoreError> {
        read!(self, |c| postgres::statements_after(c, after, limit))
    }

    pub(super) async fn acknowledge(
        &self,
        fingerprint: &str,
        seq: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        read!(self, |c| postgres::acknowledge(c, fingerprint, seq, now))
    }

    pub(super) async fn revisions(&self, id: &str) -> Result<Vec<StoredStatement>, StoreError> {
        read!(self, |c| postgres::revisions(c, id))
    }

    pub(super) async fn search(
        &self,
        query: &str,
        limit: u32,
    ) -> Result<Vec<StoredStatement>, StoreError> {
        read!(self, |c| postgres::search(c, query, limit))
    }

    pub(super) async fn sightings_of(
        &self,
        target_id: &str,
    ) -> Result<Vec<StoredStatement>, StoreError> {
        read!(self, |c| postgres::sightings_of(c, target_id))
    }

    // === sharing groups and audiences ===

    pub(super) async fn add_group(
        &self,
        name: &str,
        members: Vec<String>,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres::add_group(c, name, &members, actor, now))
    }

    pub(super) async fn remove_group(
        &self,
        name: &str,
        actor: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        write_tx!(self, |c| postgres::remove_group(c, name, actor, now))
    }

    pub(super) async fn list_groups(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        read!(self, |c| postgres::list_groups(c))
    }

    pub(super) async fn group_members(
        &self,
        name: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        read!(self, |c| postgres::group_members(c, name))
    }

    pub(super) async fn groups_of(&self, org: &str) -> Result<Vec<String>, StoreError> {
        read!(self, |c| postgres::groups_of(c, org))
    }

    pub(super) async fn person_exists(&self, org: &str, person: &str) -> Result<bool, StoreError> {
        read!(self, |c| postgres::person_exists(c, org, person))
    }

    pub(super) async fn status_counts(&self) -> Result<StatusCounts, StoreError> {
        read!(self, |c| postgres::status_counts(c))
    }

    pub(super) async fn head_from_db(&self) -> Result<u64, StoreError> {
        read!(self, |c| postgres::head_sequence(c))
    }

    pub(super) async fn statement_count(&self) -> Result<u64, StoreError> {
        read!(self, |c| postgres::statement_count(c))
    }

    // === TAXII ===

    pub(super) async fn seq_at_added(&self, added_us: i64) -> Result<u64, StoreError> {
        read!(self, |c| postgres::seq_at_added(c, added_us))
    }

    pub(super) async fn versions_of_stix_id(
        &self,
        stix_id: &str,
    ) -> Result<(Option<String>, Vec<StoredStatement>), StoreError> {
        read!(self, |c| postgres::versions_of_stix_id(c, stix_id))
    }

    pub(super) async fn versions_of(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<StoredStatement>, StoreError> {
        read!(self, |c| postgres::versions_of(c, &ids))
    }

    pub(super) async fn add_api_key(&self, key: ApiKeyRow, actor: &str) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres::add_api_key(c, &key, actor))
    }

    pub(super) async fn api_key(&self, username: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        read!(self, |c| postgres::api_key(c, username))
    }

    pub(super) async fn list_api_keys(
        &self,
        org: Option<&str>,
    ) -> Result<Vec<ApiKeyRow>, StoreError> {
        read!(self, |c| postgres::list_api_keys(c, org))
    }

    pub(super) async fn revoke_api_key(
        &self,
        username: &str,
        actor: &str,
        now: i64,
    ) -> Result<ApiKeyRow, StoreError> {
        write_tx!(self, |c| postgres::revoke_api_key(c, username, actor, now))
    }

    pub(super) async fn taxii_writes_of(
        &self,
        org: &str,
        stix_id: &str,
    ) -> Result<Vec<TaxiiWrite>, StoreError> {
        read!(self, |c| postgres::taxii_writes_of(c, org, stix_id))
    }

    pub(super) async fn record_taxii_writes(
        &self,
        rows: Vec<TaxiiWrite>,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres::record_taxii_writes(c, &rows))
    }

    pub(super) async fn save_taxii_status(
        &self,
        id: &str,
        org: &str,
        now: i64,
        body: String,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres::save_taxii_status(
            c, id, org, now, &body
        ))
    }

    pub(super) async fn taxii_status(
        &self,
        id: &str,
        org: &str,
    ) -> Result<Option<String>, StoreError> {
        read!(self, |c| postgres::taxii_status(c, id, org))
    }

    pub(super) async fn touch_api_key(&self, username: &str, now: i64) -> Result<(), StoreError> {
        read!(self, |c| postgres::touch_api_key(c, username, now))
    }
}

// === hashes for the log's proofs ===

/// `merkle::HashReader` over the async client, for a blocking thread.
struct PgHashReader<'a> {
    client: &'a Conn,
    handle: &'a tokio::runtime::Handle,
}

impl HashReader for PgHashReader<'_> {
    type Error = StoreError;

    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        self.handle
            .block_on(postgres::read_hashes(self.client, nodes))
    }
}

// === the writer and the tail ===

async fn writer_loop(
    pool: Arc<Pool>,
    mut rx: mpsc::UnboundedReceiver<Vec<AppendJob>>,
    shared: Arc<Shared>,
    fill: Arc<tokio::sync::Notify>,
    done: std::sync::mpsc::Sender<()>,
) {
    let mut conn = None;
    while let Some(first) = rx.recv().await {
        let mut batch = first;
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(jobs) => batch.extend(jobs),
                Err(_) => break,
            }
        }
        let began = std::time::Instant::now();
        let outcome = append_batch(&pool, &mut conn, &batch).await;
        shared.commit_latency.observe(began.elapsed());
        match outcome {
            Ok(results) => {
                // Committed: fill the window and move `Store::head` before
                // anyone hears "stored", as the SQLite writer does.
                let mut head = 0;
                for (job, result) in batch.iter().zip(&results) {
                    if let Ok(a) = result {
                        if !a.duplicate {
                            shared
                                .recent
                                .record(a.seq, a.added_us, a.leaf_index, &job.statement);
                            head = head.max(a.seq);
                        }
                    }
                }
                // Every sequence up to ours committed before ours did.
                shared.note_committed(head);
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.reply.send(result.map(|a| (a.seq, a.duplicate)));
                }
                // Then the streams, after the answers. If another replica
                // committed in between, its rows are not in the window:
                // the tail reads them once for every stream here, then
                // moves the head.
                if head > 0 {
                    if shared.recent.holds(shared.stream_head(), head) {
                        shared.advance_head(head);
                    } else {
                        fill.notify_one();
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store: append transaction failed; the whole group is refused");
                for job in batch {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
    let _ = done.send(());
}

/// The writer's own connection, with the append statements prepared on it.
struct WriterConn {
    client: Conn,
    sql: postgres::AppendSql,
}

/// One transaction for the whole batch (`postgres::append_batch_transaction`):
/// the order row locked once, each statement checked and inserted, the row
/// written back, one commit.
async fn append_batch(
    pool: &Arc<Pool>,
    conn: &mut Option<WriterConn>,
    batch: &[AppendJob],
) -> Result<Vec<Result<postgres::Appended, StoreError>>, StoreError> {
    if conn.as_ref().is_none_or(|w| w.client.is_closed()) {
        let client = connect(&pool.dial).await?;
        let sql = postgres::AppendSql::prepare(&client).await?;
        *conn = Some(WriterConn { client, sql });
    }
    let w = conn.as_ref().expect("connected above");
    let statements: Vec<&NewStatement> = batch.iter().map(|job| &job.statement).collect();
    let authorized_at: Vec<Option<u64>> = batch.iter().map(|job| job.authorized_at).collect();
    let outcome =
        postgres::append_batch_transaction(&w.client, &w.sql, &statements, &authorized_at).await;
    if outcome.is_err() {
        // Whatever state the connection is in, it is not used again.
        let _ = w.client.batch_execute("ROLLBACK").await;
        *conn = None;
    }
    outcome
}

/// Reads the order row now and then (and whenever the writer finds rows
/// of another replica's before its own), so commits made by other replicas
/// move this process's head and wake its subscribers. The rows this
/// process did not commit are read here, once, into the recent window
/// before the head moves past them, so its streams read them from memory
/// instead of each querying the database.
async fn tail_loop(pool: Arc<Pool>, shared: Arc<Shared>, fill: Arc<tokio::sync::Notify>) {
    let mut tick = tokio::time::interval(TAIL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = fill.notified() => {}
        }
        let c = match pool.get().await {
            Ok(c) => c,
            Err(StoreError::Closed) => return,
            Err(e) => {
                lost(&shared, e);
                continue;
            }
        };
        match postgres::head_sequence(&c).await {
            Ok(h) => {
                shared.set_unavailable(None);
                let target = h.max(shared.committed.load(std::sync::atomic::Ordering::Acquire));
                catch_up(&c, &shared, target).await;
            }
            Err(e) => lost(&shared, e),
        }
    }
}

/// Most rows the tail reads into the window at once, and the largest gap
/// it fills: past it, the head moves at once and streams page the
/// database themselves (they are catching up anyway).
const FILL_PAGE: u64 = 512;
const FILL_MAX: u64 = 4096;

/// Moves the streams' head to `target`, first reading into the window the
/// committed rows it does not hold.
async fn catch_up(c: &Conn, shared: &Shared, target: u64) {
    loop {
        let from = shared.stream_head();
        if target <= from {
            return;
        }
        if target - from > FILL_MAX || shared.recent.holds(from, target) {
            shared.advance_head(target);
            return;
        }
        let rows = match postgres::statements_after(c, from, (target - from).min(FILL_PAGE) as u32)
            .await
        {
            Ok(rows) if !rows.is_empty() => rows,
            Ok(_) => {
                shared.advance_head(target);
                return;
            }
            Err(e) => {
                // Streams read the database themselves (and end if it is lost).
                tracing::debug!(error = %e, "store: cannot read rows for the window");
                shared.advance_head(target);
                return;
            }
        };
        // A snapshot holds a prefix of the order: every row up to the last
        // one read is committed and was read.
        let last = rows.last().map_or(target, |r| r.seq);
        for row in rows {
            shared.recent.record_row(row);
        }
        shared.advance_head(last);
    }
}

fn lost(shared: &Shared, e: StoreError) {
    match e {
        StoreError::Unavailable(m) => {
            if shared.unavailable.borrow().is_none() {
                tracing::warn!(error = %m, "store: PostgreSQL is unavailable");
            }
            shared.set_unavailable(Some(m));
        }
        e => tracing::debug!(error = %e, "store: cannot read the head"),
    }
}

// === federation (issue 20): SQL in `postgres_fed.rs` ===

use super::fed_types::{FederatedItem, PeerLinkRow};
use super::postgres_fed;

impl PgStore {
    pub(super) async fn add_peer_link(
        &self,
        link: PeerLinkRow,
        actor: &str,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres_fed::add_peer_link(c, &link, actor))
    }

    pub(super) async fn origin_directories(
        &self,
    ) -> Result<Vec<super::OriginDirectoryRow>, StoreError> {
        read!(self, |c| postgres_fed::origin_directories(c))
    }

    pub(super) async fn pin_origin_directory(
        &self,
        row: super::OriginDirectoryRow,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres_fed::pin_origin_directory(c, &row))
    }

    pub(super) async fn peer_links(&self) -> Result<Vec<PeerLinkRow>, StoreError> {
        read!(self, |c| postgres_fed::peer_links(c))
    }

    pub(super) async fn peer_link(&self, hub_id: &str) -> Result<Option<PeerLinkRow>, StoreError> {
        read!(self, |c| postgres_fed::peer_link(c, hub_id))
    }

    pub(super) async fn set_peer_status(
        &self,
        hub_id: &str,
        change: StatusChange,
        actor: &str,
        now: i64,
    ) -> Result<Option<PeerLinkRow>, StoreError> {
        write_tx!(self, |c| postgres_fed::set_peer_status(
            c, hub_id, change, actor, now
        ))
    }

    pub(super) async fn pin_peer_directory_key(
        &self,
        hub_id: &str,
        key: Vec<u8>,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres_fed::pin_peer_directory_key(
            c, hub_id, &key
        ))
    }

    pub(super) async fn pin_peer_directory(
        &self,
        hub_id: &str,
        version: u64,
        directory: String,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres_fed::pin_peer_directory(
            c, hub_id, version, &directory
        ))
    }

    pub(super) async fn receive_from_peer(
        &self,
        hub_id: &str,
        items: Vec<FederatedItem>,
        cursor: Vec<u8>,
    ) -> Result<u64, StoreError> {
        write_tx!(self, |c| postgres_fed::receive_from_peer(
            c, hub_id, &items, &cursor
        ))
    }

    pub(super) async fn federated_items(
        &self,
        origin: Option<String>,
    ) -> Result<Vec<FederatedItem>, StoreError> {
        read!(self, |c| postgres_fed::federated_items(
            c,
            origin.as_deref()
        ))
    }
}

// === cross-hub sharing groups (issue 20): SQL in `postgres_groups.rs` ===

use super::fed_groups_ops::PeerGroupRow;
use super::postgres_groups;

impl PgStore {
    pub(super) async fn share_group(
        &self,
        hub_id: &str,
        group: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres_groups::share_group(
            c, hub_id, group, actor, now
        ))
    }

    pub(super) async fn unshare_group(
        &self,
        hub_id: &str,
        group: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres_groups::unshare_group(
            c, hub_id, group, actor, now
        ))
    }

    pub(super) async fn peer_groups(&self) -> Result<Vec<PeerGroupRow>, StoreError> {
        read!(self, |c| postgres_groups::peer_groups(c))
    }

    pub(super) async fn set_peer_manifest(
        &self,
        hub_id: &str,
        groups: Vec<(String, Option<String>)>,
        now: i64,
    ) -> Result<(), StoreError> {
        write_tx!(self, |c| postgres_groups::set_peer_manifest(
            c, hub_id, &groups, now
        ))
    }
}
