//! All SQL of the PostgreSQL backend: the schema, its migration and one
//! function per store operation, over a connection ([`Conn`]) already
//! inside the transaction the caller opened (`postgres_store.rs`).
//!
//! The same rules as `sqlite.rs`, in PostgreSQL's words. Two differences
//! matter:
//! - **The order.** `hub_order` is one row holding the last sequence, the
//!   next log leaf index and the last `added_us`. A publishing transaction
//!   locks it first and holds the lock until it commits: publishers
//!   on every replica are serialised exactly like SQLite's single writer,
//!   transactions commit in sequence order, and a reader's snapshot always
//!   holds a prefix of the order, never a gap it could page past. (A bare
//!   sequence would hand out numbers before commit, and rows would become
//!   visible out of order.)
//! - **Other writes** that check before they change (enrollment, keys,
//!   members, groups, API keys, prune) take the same row lock with
//!   `FOR UPDATE` first, so their checks see every write before them, as on
//!   SQLite.

use isac_core::membership::{MemberStatus, Role, StatusChange};
use isac_core::tlog::merkle::NodeId;
use isac_core::tlog::Hash;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio_postgres::types::ToSql;

use tokio_postgres::{Client, Row, Statement};

use super::sqlite::{commit_clock_us, system_clock_us};
use super::{
    AgentDetail, AgentRow, AnonymousVersion, ApiKeyRow, AuditRow, CheckpointRow, EnrollRecord,
    KeyRow, MemberRow, NewStatement, PersonRow, PruneReport, StatusCounts, StoreError, StoredFacts,
    StoredStatement, TaxiiWrite, TokenRecord,
};

/// The PostgreSQL schema this hub writes (its own numbering, not SQLite's
/// `user_version`: version 1 holds everything SQLite schema 9 holds).
pub(super) const SCHEMA_VERSION: i64 = 6;

/// `pg_advisory_xact_lock` key for migrations: "isachub" in ASCII.
const MIGRATION_LOCK: i64 = 0x0069_7361_6368_7562;

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        if e.is_closed() {
            return StoreError::Unavailable(format!("the connection to PostgreSQL was lost: {e}"));
        }
        match e.code() {
            Some(c) if *c == SqlState::DISK_FULL => StoreError::DiskFull(e.to_string()),
            Some(c) if *c == SqlState::IO_ERROR => StoreError::Io(e.to_string()),
            Some(c)
                if *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CRASH_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW
                    || c.code().starts_with("08") =>
            {
                StoreError::Unavailable(format!("PostgreSQL is not available: {e}"))
            }
            _ => {
                // The server's own words (e.g. the violated constraint),
                // not just "db error".
                let detail = e
                    .as_db_error()
                    .map(|d| format!("{}: {}", d.code().code(), d.message()))
                    .unwrap_or_else(|| e.to_string());
                StoreError::Postgres(detail)
            }
        }
    }
}

/// A connection that prepares each distinct query once (the SQL here is
/// fixed text, so the cache is bounded): afterwards a query is one round
/// trip instead of two.
pub(super) struct Conn {
    client: Client,
    prepared: Mutex<HashMap<String, Statement>>,
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Conn {
    pub(super) fn new(client: Client) -> Self {
        Conn {
            client,
            prepared: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The client itself, for statements prepared elsewhere.
    pub(super) fn raw(&self) -> &Client {
        &self.client
    }

    async fn statement(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.prepared.lock().expect("statement cache").get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await?;
        self.prepared
            .lock()
            .expect("statement cache")
            .insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    pub(super) async fn query(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.client.query(&s, params).await
    }

    pub(super) async fn query_one(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Row, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.client.query_one(&s, params).await
    }

    pub(super) async fn query_opt(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.client.query_opt(&s, params).await
    }

    pub(super) async fn execute(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, tokio_postgres::Error> {
        let s = self.statement(sql).await?;
        self.client.execute(&s, params).await
    }

    pub(super) async fn batch_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.client.batch_execute(sql).await
    }
}

fn int(v: i64) -> u64 {
    v.max(0) as u64
}

// === schema ===

/// Creates or brings the schema up to date, under a transaction-scoped
/// advisory lock so replicas starting together apply each step once.
pub(super) async fn migrate(c: &Conn) -> Result<(), StoreError> {
    c.batch_execute("BEGIN").await?;
    let result = migrate_locked(c).await;
    match &result {
        Ok(()) => c.batch_execute("COMMIT").await?,
        Err(_) => {
            let _ = c.batch_execute("ROLLBACK").await;
        }
    }
    result
}

async fn migrate_locked(c: &Conn) -> Result<(), StoreError> {
    c.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    c.batch_execute("CREATE TABLE IF NOT EXISTS hub_schema (version BIGINT NOT NULL)")
        .await?;
    let version: i64 = c
        .query_opt("SELECT version FROM hub_schema", &[])
        .await?
        .map_or(0, |r| r.get(0));
    if version > SCHEMA_VERSION {
        return Err(StoreError::Refused(format!(
            "database schema {version} is newer than this hub understands ({SCHEMA_VERSION}); upgrade the hub"
        )));
    }
    if version < 1 {
        c.batch_execute(SCHEMA_1).await?;
        c.execute("INSERT INTO hub_schema (version) VALUES (1)", &[])
            .await?;
    }
    if version < 2 {
        // Witness cosignatures of stored checkpoints (SQLite schema 10).
        c.batch_execute(SCHEMA_2).await?;
        c.execute("UPDATE hub_schema SET version = 2", &[]).await?;
    }
    if version < 3 {
        // Federation (SQLite schema 11): see `postgres_fed.rs`.
        c.batch_execute(super::postgres_fed::SCHEMA_3).await?;
        c.execute("UPDATE hub_schema SET version = 3", &[]).await?;
    }
    if version < 4 {
        // Federation into the order (SQLite schema 12): see `postgres_fed.rs`.
        c.batch_execute(super::postgres_fed::SCHEMA_4).await?;
        c.execute("UPDATE hub_schema SET version = 4", &[]).await?;
    }
    if version < 5 {
        // Cross-hub sharing groups (SQLite schema 13): see `postgres_groups.rs`.
        c.batch_execute(super::postgres_groups::SCHEMA_5).await?;
        c.execute("UPDATE hub_schema SET version = 5", &[]).await?;
    }
    if version < 6 {
        // Relaying through a third hub (SQLite schema 14): see `postgres_fed.rs`.
        c.batch_execute(super::postgres_fed::SCHEMA_6).await?;
        c.execute("UPDATE hub_schema SET version = 6", &[]).await?;
    }
    Ok(())
}

const SCHEMA_2: &str = "
CREATE TABLE log_cosignatures (
    size       BIGINT NOT NULL,
    witness    TEXT NOT NULL,
    line       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (size, witness)
);
CREATE INDEX log_cosignatures_by_witness ON log_cosignatures (witness, size);
";

const SCHEMA_1: &str = "
CREATE TABLE hub_order (
    one      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    seq      BIGINT NOT NULL,
    leaf     BIGINT NOT NULL,
    added_us BIGINT NOT NULL
);
INSERT INTO hub_order (one, seq, leaf, added_us) VALUES (TRUE, 0, 0, 0);
CREATE TABLE members (
    org_id      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('member','coordinator','admin')),
    status      TEXT NOT NULL DEFAULT 'active',
    created_at  BIGINT NOT NULL
);
CREATE TABLE enrollment_tokens (
    token_hash  TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES members(org_id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    used_by_agent TEXT
);
CREATE TABLE agents (
    cert_fingerprint TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES members(org_id),
    agent_name  TEXT NOT NULL,
    cert_pem    TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    superseded_at BIGINT,
    acked_seq   BIGINT NOT NULL DEFAULT 0,
    acked_at    BIGINT
);
CREATE INDEX agents_by_org ON agents(org_id, agent_name);
CREATE TABLE signing_keys (
    key_id      TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES members(org_id),
    public_key  BYTEA NOT NULL,
    valid_from  BIGINT NOT NULL,
    revoked_at  BIGINT,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,
    revocation_reason TEXT
);
CREATE TABLE statements (
    seq          BIGINT PRIMARY KEY,
    id           TEXT NOT NULL,
    revision     BIGINT NOT NULL,
    source_org   TEXT NOT NULL,
    tlp          TEXT NOT NULL,
    audience     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    payload_type TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    key_id       TEXT NOT NULL,
    signature    BYTEA NOT NULL,
    digest       TEXT NOT NULL,
    openings     TEXT NOT NULL DEFAULT '[]',
    group_snapshot TEXT NOT NULL DEFAULT '{}',
    target_id    TEXT,
    value        TEXT NOT NULL DEFAULT '',
    title        TEXT NOT NULL DEFAULT '',
    sighting_count BIGINT,
    anon_payload BYTEA,
    anon_key_id  TEXT,
    anon_signature BYTEA,
    ecosystem    TEXT,
    severity     TEXT NOT NULL DEFAULT 'info',
    confidence   BIGINT NOT NULL DEFAULT 0,
    tags         TEXT NOT NULL DEFAULT '[]',
    valid_until  BIGINT,
    added_us     BIGINT NOT NULL,
    UNIQUE (id, revision)
);
CREATE INDEX statements_by_target ON statements(target_id) WHERE target_id IS NOT NULL;
CREATE INDEX statements_by_added ON statements(added_us);
CREATE INDEX statements_by_valid_until ON statements(valid_until) WHERE valid_until IS NOT NULL;
CREATE TABLE people (
    org_id      TEXT NOT NULL REFERENCES members(org_id),
    person_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    contact     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, person_id)
);
CREATE TABLE audit (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters (name, value) VALUES ('epoch', 1), ('directory_version', 0);
CREATE TABLE sharing_groups (
    name        TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);
CREATE TABLE group_members (
    group_name  TEXT NOT NULL REFERENCES sharing_groups(name) ON DELETE CASCADE,
    org_id      TEXT NOT NULL REFERENCES members(org_id),
    PRIMARY KEY (group_name, org_id)
);
CREATE TABLE api_keys (
    username      TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES members(org_id),
    person_id     TEXT,
    label         TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    can_write     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);
CREATE TABLE stix_ids (
    stix_id      TEXT PRIMARY KEY,
    statement_id TEXT NOT NULL
);
CREATE TABLE taxii_writes (
    org_id       TEXT NOT NULL,
    stix_id      TEXT NOT NULL,
    version      TEXT NOT NULL,
    statement_id TEXT NOT NULL,
    tlp          TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (org_id, stix_id, version, statement_id)
);
CREATE TABLE taxii_status (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    body        TEXT NOT NULL
);
CREATE TABLE pruned (
    id         TEXT PRIMARY KEY,
    pruned_at  BIGINT NOT NULL,
    source_org TEXT
);
CREATE TABLE statement_refs (
    id         TEXT NOT NULL,
    source_org TEXT NOT NULL,
    PRIMARY KEY (id, source_org)
);
CREATE TABLE log_leaves (
    leaf_index BIGINT PRIMARY KEY,
    seq        BIGINT NOT NULL UNIQUE,
    hash       BYTEA NOT NULL
);
CREATE TABLE log_nodes (
    level BIGINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE log_checkpoints (
    size       BIGINT PRIMARY KEY,
    root       BYTEA NOT NULL,
    note       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
";

/// Takes the order row's lock for a write that checks before it changes:
/// from here to commit, no other writer (on any replica) runs.
pub(super) async fn lock_writes(c: &Conn) -> Result<(), StoreError> {
    c.execute("SELECT 1 FROM hub_order FOR UPDATE", &[]).await?;
    Ok(())
}

/// The committed head of the order (every sequence up to it is visible).
pub(super) async fn head_sequence(c: &Conn) -> Result<u64, StoreError> {
    let r = c.query_one("SELECT seq FROM hub_order", &[]).await?;
    Ok(int(r.get(0)))
}

// === the transparency log ===

fn hash_from(bytes: &[u8]) -> Result<Hash, StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Postgres("a stored log hash is not 32 bytes".into()))
}

fn leaf_hash_of(s: &NewStatement) -> Hash {
    let (payload, keyid, sig) = match &s.anonymous {
        Some(a) => (&a.payload, &a.key_id, &a.signature),
        None => (&s.payload, &s.key_id, &s.signature),
    };
    isac_core::tlog::envelope_leaf_hash(&isac_core::Envelope {
        payload_type: s.payload_type.clone(),
        payload: payload.clone(),
        signatures: vec![isac_core::envelope::Signature {
            keyid: keyid.clone(),
            sig: sig.clone(),
        }],
    })
}

pub(super) async fn log_leaf_count(c: &Conn) -> Result<u64, StoreError> {
    let r = c
        .query_one(
            "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM log_leaves",
            &[],
        )
        .await?;
    Ok(int(r.get(0)))
}

pub(super) async fn leaf_index_of(c: &Conn, seq: u64) -> Result<Option<u64>, StoreError> {
    Ok(c.query_opt(
        "SELECT leaf_index FROM log_leaves WHERE seq = $1",
        &[&(seq as i64)],
    )
    .await?
    .map(|r| int(r.get(0))))
}

pub(super) async fn leaf_hashes(c: &Conn, start: u64, end: u64) -> Result<Vec<Hash>, StoreError> {
    let rows = c
        .query(
            "SELECT hash FROM log_leaves WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index",
            &[&(start as i64), &(end as i64)],
        )
        .await?;
    if rows.len() as u64 != end.saturating_sub(start) {
        return Err(StoreError::Postgres(format!(
            "log leaves {start}..{end} are not all stored"
        )));
    }
    rows.iter().map(|r| hash_from(r.get(0))).collect()
}

/// The hashes of `nodes`, in order, in two queries (leaves, then nodes).
pub(super) async fn read_hashes(c: &Conn, nodes: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
    let leaf_ix: Vec<i64> = nodes
        .iter()
        .filter(|n| n.level == 0)
        .map(|n| n.index as i64)
        .collect();
    let (levels, idxs): (Vec<i64>, Vec<i64>) = nodes
        .iter()
        .filter(|n| n.level > 0)
        .map(|n| (i64::from(n.level), n.index as i64))
        .unzip();
    let mut found = std::collections::HashMap::new();
    if !leaf_ix.is_empty() {
        for r in c
            .query(
                "SELECT leaf_index, hash FROM log_leaves WHERE leaf_index = ANY($1)",
                &[&leaf_ix],
            )
            .await?
        {
            found.insert((0i64, r.get::<_, i64>(0)), hash_from(r.get(1))?);
        }
    }
    if !levels.is_empty() {
        for r in c
            .query(
                "SELECT n.level, n.idx, n.hash FROM log_nodes n
                 JOIN unnest($1::BIGINT[], $2::BIGINT[]) AS w(level, idx)
                   ON n.level = w.level AND n.idx = w.idx",
                &[&levels, &idxs],
            )
            .await?
        {
            found.insert((r.get(0), r.get(1)), hash_from(r.get(2))?);
        }
    }
    nodes
        .iter()
        .map(|n| {
            found
                .get(&(i64::from(n.level), n.index as i64))
                .copied()
                .ok_or_else(|| {
                    StoreError::Postgres(format!(
                        "log node level {} index {} is not stored",
                        n.level, n.index
                    ))
                })
        })
        .collect()
}

pub(super) async fn latest_checkpoint(c: &Conn) -> Result<Option<CheckpointRow>, StoreError> {
    c.query_opt(
        "SELECT size, root, note, created_at FROM log_checkpoints ORDER BY size DESC LIMIT 1",
        &[],
    )
    .await?
    .map(|r| {
        Ok(CheckpointRow {
            size: int(r.get(0)),
            root: hash_from(r.get(1))?,
            note: r.get(2),
            created_at: r.get(3),
        })
    })
    .transpose()
}

pub(super) async fn integrate_checkpoint(
    c: &Conn,
    from_size: u64,
    nodes: &[(NodeId, Hash)],
    checkpoint: &CheckpointRow,
) -> Result<(), StoreError> {
    lock_writes(c).await?;
    let latest = latest_checkpoint(c).await?.map_or(0, |c| c.size);
    if latest != from_size {
        return Err(StoreError::Conflict(format!(
            "the log moved from size {from_size} to {latest} meanwhile"
        )));
    }
    if checkpoint.size > log_leaf_count(c).await? || checkpoint.size <= from_size {
        return Err(StoreError::Refused(format!(
            "checkpoint size {} does not follow {from_size} within the stored leaves",
            checkpoint.size
        )));
    }
    let mut levels = Vec::new();
    let mut idxs = Vec::new();
    let mut hashes: Vec<Vec<u8>> = Vec::new();
    for (n, h) in nodes.iter().filter(|(n, _)| n.level > 0) {
        levels.push(i64::from(n.level));
        idxs.push(n.index as i64);
        hashes.push(h.to_vec());
    }
    c.execute(
        "INSERT INTO log_nodes (level, idx, hash)
         SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BYTEA[])
         ON CONFLICT DO NOTHING",
        &[&levels, &idxs, &hashes],
    )
    .await?;
    c.execute(
        "INSERT INTO log_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4)",
        &[
            &(checkpoint.size as i64),
            &&checkpoint.root[..],
            &checkpoint.note,
            &checkpoint.created_at,
        ],
    )
    .await?;
    Ok(())
}

fn checkpoint_from(r: &tokio_postgres::Row) -> Result<CheckpointRow, StoreError> {
    Ok(CheckpointRow {
        size: int(r.get(0)),
        root: hash_from(r.get(1))?,
        note: r.get(2),
        created_at: r.get(3),
    })
}

pub(super) async fn checkpoint_at(
    c: &Conn,
    size: u64,
) -> Result<Option<CheckpointRow>, StoreError> {
    c.query_opt(
        "SELECT size, root, note, created_at FROM log_checkpoints WHERE size = $1",
        &[&(size as i64)],
    )
    .await?
    .map(|r| checkpoint_from(&r))
    .transpose()
}

/// The newest checkpoint every one of `witnesses` cosigned.
pub(super) async fn newest_cosigned_by_all(
    c: &Conn,
    witnesses: &[String],
) -> Result<Option<CheckpointRow>, StoreError> {
    c.query_opt(
        "SELECT c.size, c.root, c.note, c.created_at FROM log_checkpoints c
         WHERE (SELECT COUNT(*) FROM log_cosignatures s
                WHERE s.size = c.size AND s.witness = ANY($1)) = $2
         ORDER BY c.size DESC LIMIT 1",
        &[&witnesses, &(witnesses.len() as i64)],
    )
    .await?
    .map(|r| checkpoint_from(&r))
    .transpose()
}

/// Stores a witness's cosignature line of the checkpoint of `size` leaves
/// (a later one from the same witness for the same size replaces it).
pub(super) async fn add_cosignature(
    c: &Conn,
    size: u64,
    witness: &str,
    line: &str,
    created_at: i64,
) -> Result<(), StoreError> {
    if checkpoint_at(c, size).await?.is_none() {
        return Err(StoreError::Refused(format!(
            "no checkpoint of size {size} to cosign"
        )));
    }
    c.execute(
        "INSERT INTO log_cosignatures (size, witness, line, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (size, witness) DO UPDATE SET line = EXCLUDED.line, created_at = EXCLUDED.created_at",
        &[&(size as i64), &witness, &line, &created_at],
    )
    .await?;
    Ok(())
}

/// The cosignature lines of the checkpoint of `size` leaves, by witness name.
pub(super) async fn cosignatures(c: &Conn, size: u64) -> Result<Vec<String>, StoreError> {
    Ok(c.query(
        "SELECT line FROM log_cosignatures WHERE size = $1 ORDER BY witness COLLATE \"C\"",
        &[&(size as i64)],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// The largest checkpoint size `witness` cosigned, if any.
pub(super) async fn latest_cosigned(c: &Conn, witness: &str) -> Result<Option<u64>, StoreError> {
    let n: Option<i64> = c
        .query_one(
            "SELECT MAX(size) FROM log_cosignatures WHERE witness = $1",
            &[&witness],
        )
        .await?
        .get(0);
    Ok(n.map(int))
}

// === statements ===

/// Where an appended statement landed (see `sqlite::Appended`).
pub(super) struct Appended {
    pub seq: u64,
    pub duplicate: bool,
    pub added_us: i64,
    pub leaf_index: Option<u64>,
}

/// The order row as a batch of appends moves it (written back once).
pub(super) struct Order {
    seq: i64,
    leaf: i64,
    added_us: i64,
}

/// The append path's statements, prepared once per writer connection (each
/// unprepared query would cost a round trip more).
pub(super) struct AppendSql {
    lock_order: tokio_postgres::Statement,
    set_order: tokio_postgres::Statement,
    existing: tokio_postgres::Statement,
    fresh_id: tokio_postgres::Statement,
    insert: tokio_postgres::Statement,
}

impl AppendSql {
    pub(super) async fn prepare(c: &Conn) -> Result<Self, StoreError> {
        let c = c.raw();
        Ok(AppendSql {
            lock_order: c
                .prepare("SELECT seq, leaf, added_us FROM hub_order FOR UPDATE")
                .await?,
            set_order: c
                .prepare("UPDATE hub_order SET seq = $1, leaf = $2, added_us = $3")
                .await?,
            existing: c
                .prepare(
                    "SELECT s.seq, s.revision, s.source_org, s.digest, s.added_us, l.leaf_index
                     FROM statements s LEFT JOIN log_leaves l ON l.seq = s.seq
                     WHERE s.id = $1 ORDER BY s.revision",
                )
                .await?,
            fresh_id: c
                .prepare(
                    "SELECT EXISTS (SELECT 1 FROM pruned WHERE id = $1),
                        (SELECT source_org FROM pruned WHERE id = $1),
                        EXISTS (SELECT 1 FROM statement_refs WHERE id = $1 AND source_org <> $2)",
                )
                .await?,
            // One round trip stores the statement, its leaf and its indexes.
            insert: c
                .prepare(
                    "WITH leaf AS (
                        INSERT INTO log_leaves (leaf_index, seq, hash) VALUES ($30, $1, $31)
                     ), stix AS (
                        INSERT INTO stix_ids (stix_id, statement_id)
                        SELECT unnest($32::TEXT[]), $2 ON CONFLICT DO NOTHING
                     ), refs AS (
                        INSERT INTO statement_refs (id, source_org)
                        SELECT unnest($33::TEXT[]), $4 ON CONFLICT DO NOTHING
                     )
                     INSERT INTO statements (seq, id, revision, source_org, tlp, audience, kind,
                        created_at, received_at, payload_type, payload, key_id, signature, digest,
                        openings, group_snapshot, target_id, value, title, sighting_count,
                        anon_payload, anon_key_id, anon_signature, ecosystem, severity,
                        confidence, tags, valid_until, added_us, provenance)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                        $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $34)",
                )
                .await?,
        })
    }
}

/// Starts a batch of appends: takes the order row, held to commit. From
/// here no other writer on any process appends or checks, so the checks
/// below see every statement committed before, and this transaction's
/// sequences are the next ones and become visible after all before them.
pub(super) async fn lock_order(c: &Conn, sql: &AppendSql) -> Result<Order, StoreError> {
    let r = c.raw().query_one(&sql.lock_order, &[]).await?;
    Ok(Order {
        seq: r.get(0),
        leaf: r.get(1),
        added_us: r.get(2),
    })
}

/// Ends a batch: the order row takes what the batch appended.
pub(super) async fn store_order(
    c: &Conn,
    sql: &AppendSql,
    order: &Order,
) -> Result<(), StoreError> {
    c.raw()
        .execute(&sql.set_order, &[&order.seq, &order.leaf, &order.added_us])
        .await?;
    Ok(())
}

/// What the checks of one statement read before anything is written: its
/// stored revisions, and (used for a new id) whether the id was pruned or
/// is named by another organisation's statement.
struct Prior {
    existing: Vec<Row>,
    fresh: Result<Row, tokio_postgres::Error>,
}

async fn read_prior(c: &Conn, sql: &AppendSql, s: &NewStatement) -> Result<Prior, StoreError> {
    // Both reads in one round trip (pipelined).
    let by_id: [&(dyn ToSql + Sync); 1] = [&s.id];
    let by_id_source: [&(dyn ToSql + Sync); 2] = [&s.id, &s.source_org];
    let (existing, fresh) = tokio::join!(
        c.raw().query(&sql.existing, &by_id),
        c.raw().query_one(&sql.fresh_id, &by_id_source)
    );
    Ok(Prior {
        existing: existing?,
        fresh,
    })
}

enum Decision {
    /// The same id, revision and content is stored: an idempotent retry.
    Held(Appended),
    /// A new statement or a new revision: it takes the next position.
    New,
}

/// The append rules over what [`read_prior`] read (see `sqlite::append_statement`).
fn decide(prior: Prior, s: &NewStatement) -> Result<Decision, StoreError> {
    let Prior { existing, fresh } = prior;
    let taken = || {
        StoreError::Conflict(format!(
            "statement id {} is already taken by another statement; generate a new id",
            s.id
        ))
    };
    if let Some(first) = existing.first() {
        if first.get::<_, &str>(2) != s.source_org {
            return Err(taken());
        }
    }
    if let Some(same) = existing
        .iter()
        .find(|r| r.get::<_, i64>(1) == i64::from(s.revision))
    {
        if same.get::<_, &str>(3) == s.digest {
            return Ok(Decision::Held(Appended {
                seq: int(same.get(0)),
                duplicate: true,
                added_us: same.get(4),
                leaf_index: same.get::<_, Option<i64>>(5).map(int),
            }));
        }
        tracing::warn!(id = %s.id, revision = s.revision, source = %s.source_org,
            "equivocation: same id and revision signed with different content");
        return Err(StoreError::Conflict(format!(
            "statement {} revision {} was already published with different content; publish a new revision instead",
            s.id, s.revision
        )));
    }
    if existing.is_empty() {
        let fresh = fresh?;
        let (pruned, pruned_owner, referenced_by_others): (bool, Option<String>, bool) =
            (fresh.get(0), fresh.get(1), fresh.get(2));
        if pruned {
            return match pruned_owner {
                Some(owner) if owner == s.source_org => Err(StoreError::Refused(format!(
                    "statement {} expired and was pruned from this hub; it is not accepted again (publish a new statement)",
                    s.id
                ))),
                _ => Err(taken()),
            };
        }
        if referenced_by_others {
            return Err(taken());
        }
        if s.revision > 1 {
            return Err(StoreError::Refused(format!(
                "statement {} revision {} follows no stored revision of yours; publish revision 1 first (each revision follows the one stored before it)",
                s.id, s.revision
            )));
        }
    }
    if let Some(latest) = existing.last() {
        let latest: i64 = latest.get(1);
        if i64::from(s.revision) < latest {
            return Err(StoreError::Refused(format!(
                "statement {} is already at revision {latest}; revision {} is older and is refused",
                s.id, s.revision
            )));
        }
    }
    Ok(Decision::New)
}

/// Where a new statement goes: the next sequence and leaf of the order.
struct Position {
    seq: i64,
    leaf_index: i64,
    added_us: i64,
}

impl Order {
    fn take_next(&mut self) -> Position {
        let pos = Position {
            seq: self.seq + 1,
            leaf_index: self.leaf,
            added_us: commit_clock_us(self.added_us, system_clock_us),
        };
        *self = Order {
            seq: pos.seq,
            leaf: pos.leaf_index + 1,
            added_us: pos.added_us,
        };
        pos
    }
}

impl Position {
    fn appended(&self) -> Appended {
        Appended {
            seq: int(self.seq),
            duplicate: false,
            added_us: self.added_us,
            leaf_index: Some(int(self.leaf_index)),
        }
    }
}

/// Stores a statement, its leaf and its indexes at `pos` (one statement).
async fn insert_at(
    c: &Conn,
    sql: &AppendSql,
    s: &NewStatement,
    pos: &Position,
) -> Result<(), StoreError> {
    let anon = s.anonymous.as_ref();
    let leaf = leaf_hash_of(s);
    let params: [&(dyn ToSql + Sync); 34] = [
        &pos.seq,
        &s.id,
        &i64::from(s.revision),
        &s.source_org,
        &s.tlp,
        &s.audience_json,
        &s.kind,
        &s.created_at,
        &s.received_at,
        &s.payload_type,
        &s.payload,
        &s.key_id,
        &s.signature,
        &s.digest,
        &s.openings_json,
        &s.group_snapshot_json,
        &s.target_id,
        &s.value,
        &s.title,
        &s.sighting_count.map(i64::from),
        &anon.map(|a| &a.payload),
        &anon.map(|a| &a.key_id),
        &anon.map(|a| &a.signature),
        &s.facts.ecosystem,
        &s.facts.severity,
        &i64::from(s.facts.confidence),
        &s.facts.tags_json,
        &s.facts.valid_until,
        &pos.added_us,
        &pos.leaf_index,
        &&leaf[..],
        &s.stix_ids,
        &s.references,
        &s.provenance,
    ];
    // In this transaction: no statement is stored without its leaf.
    c.raw().execute(&sql.insert, &params).await?;
    Ok(())
}

/// Appends one statement inside the batch's transaction. Every refusal is
/// decided by reads before anything is written, so a refused statement
/// leaves the transaction (and the order) as it was.
pub(super) async fn append_statement(
    c: &Conn,
    sql: &AppendSql,
    order: &mut Order,
    s: &NewStatement,
) -> Result<Appended, StoreError> {
    let prior = read_prior(c, sql, s).await?;
    match decide(prior, s)? {
        Decision::Held(appended) => Ok(appended),
        Decision::New => {
            let pos = order.take_next();
            // A database error: the transaction fails with it.
            insert_at(c, sql, s, &pos).await?;
            Ok(pos.appended())
        }
    }
}

/// Can the batch's checks all be read before any of it is written? Only
/// when no statement's outcome depends on another's insert: no id twice,
/// and no statement naming another's id (which would make that id "taken").
fn independent(batch: &[&NewStatement]) -> bool {
    if batch.len() < 2 {
        return true;
    }
    let ids: std::collections::HashSet<&str> = batch.iter().map(|s| s.id.as_str()).collect();
    ids.len() == batch.len()
        && batch.iter().all(|s| {
            s.references.iter().all(|r| !ids.contains(r.as_str()))
                && s.target_id.as_deref().is_none_or(|t| !ids.contains(t))
        })
}

/// Appends a batch inside its transaction, with the same outcome as
/// [`append_statement`] one by one. An independent batch is checked in one
/// pipelined round trip and written in another (each statement's own round
/// trips would make a batch of 500 a thousand sequential waits); otherwise
/// one by one. The outer error is the database's (the transaction is lost);
/// the inner ones are per-statement refusals.
pub(super) async fn append_statements(
    c: &Conn,
    sql: &AppendSql,
    order: &mut Order,
    batch: &[&NewStatement],
) -> Result<Vec<Result<Appended, StoreError>>, StoreError> {
    if batch.len() < 2 || !independent(batch) {
        let mut out = Vec::with_capacity(batch.len());
        for s in batch {
            match append_statement(c, sql, order, s).await {
                Err(e) if !e.is_refusal() => return Err(e),
                other => out.push(other),
            }
        }
        return Ok(out);
    }
    let priors =
        futures_util::future::try_join_all(batch.iter().map(|s| read_prior(c, sql, s))).await?;
    let mut out = Vec::with_capacity(batch.len());
    let mut inserts = Vec::new();
    for (s, prior) in batch.iter().zip(priors) {
        match decide(prior, s) {
            Ok(Decision::Held(appended)) => out.push(Ok(appended)),
            Ok(Decision::New) => {
                let pos = order.take_next();
                out.push(Ok(pos.appended()));
                inserts.push((*s, pos));
            }
            Err(e) if !e.is_refusal() => return Err(e),
            Err(e) => out.push(Err(e)),
        }
    }
    futures_util::future::try_join_all(inserts.iter().map(|(s, pos)| insert_at(c, sql, s, pos)))
        .await?;
    Ok(out)
}

/// A whole batch as one transaction, in as few round trips as the batch
/// allows: for an independent batch (see [`independent`]) two. BEGIN, the
/// order row's lock and every statement's checks go in the first: the
/// server runs them in order, each read with a snapshot taken after the
/// lock was granted, so they see every append committed before this one,
/// as if read after a round trip of their own. The inserts, the order row
/// and COMMIT go in the second; if any insert or the update failed,
/// PostgreSQL turns the COMMIT into a rollback and the failure fails the
/// transaction. Under load every round trip waits for a busy CPU and, with
/// replicas, another replica waits for this lock: four round trips were
/// most of a publish's latency.
pub(super) async fn append_batch_transaction(
    c: &Conn,
    sql: &AppendSql,
    batch: &[&NewStatement],
    authorized_at: &[Option<u64>],
) -> Result<Vec<Result<Appended, StoreError>>, StoreError> {
    // The membership epoch, read under the order row's lock, for the
    // statements whose caller and key were read at a known epoch: if it
    // moved, they are not stored (`StoreError::StaleAuthorization`).
    let checks_epoch = authorized_at.iter().any(Option::is_some);
    let read_epoch = async {
        match checks_epoch {
            true => epoch(c).await.map(Some),
            false => Ok(None),
        }
    };
    let stale = |i: usize, epoch: Option<u64>| {
        authorized_at
            .get(i)
            .copied()
            .flatten()
            .is_some_and(|e| Some(e) != epoch)
    };
    if !independent(batch) {
        let (begun, order, epoch) = tokio::join!(
            c.raw().batch_execute("BEGIN"),
            lock_order(c, sql),
            read_epoch
        );
        begun?;
        let mut order = order?;
        let epoch = epoch?;
        let current: Vec<&NewStatement> = (0..batch.len())
            .filter(|i| !stale(*i, epoch))
            .map(|i| batch[i])
            .collect();
        let mut appended = append_statements(c, sql, &mut order, &current)
            .await?
            .into_iter();
        let results = (0..batch.len())
            .map(|i| match stale(i, epoch) {
                true => Err(StoreError::StaleAuthorization),
                false => appended.next().unwrap_or(Err(StoreError::Closed)),
            })
            .collect();
        let (stored, committed) =
            tokio::join!(store_order(c, sql, &order), c.raw().batch_execute("COMMIT"));
        stored?;
        committed?;
        return Ok(results);
    }
    let (begun, order, epoch, priors) = tokio::join!(
        c.raw().batch_execute("BEGIN"),
        lock_order(c, sql),
        read_epoch,
        futures_util::future::try_join_all(batch.iter().map(|s| read_prior(c, sql, s)))
    );
    begun?;
    let mut order = order?;
    let epoch = epoch?;
    let priors = priors?;
    let mut out = Vec::with_capacity(batch.len());
    let mut inserts = Vec::new();
    for (i, (s, prior)) in batch.iter().zip(priors).enumerate() {
        if stale(i, epoch) {
            out.push(Err(StoreError::StaleAuthorization));
            continue;
        }
        match decide(prior, s) {
            Ok(Decision::Held(appended)) => out.push(Ok(appended)),
            Ok(Decision::New) => {
                let pos = order.take_next();
                out.push(Ok(pos.appended()));
                inserts.push((*s, pos));
            }
            Err(e) if !e.is_refusal() => return Err(e),
            Err(e) => out.push(Err(e)),
        }
    }
    let (inserted, stored, committed) = tokio::join!(
        futures_util::future::try_join_all(
            inserts.iter().map(|(s, pos)| insert_at(c, sql, s, pos))
        ),
        store_order(c, sql, &order),
        c.raw().batch_execute("COMMIT")
    );
    inserted?;
    stored?;
    committed?;
    Ok(out)
}

const STATEMENT_SELECT: &str =
    "SELECT s.seq, s.id, s.revision, s.source_org, s.tlp, s.audience, s.received_at, s.payload_type,
    s.payload, s.key_id, s.signature, s.openings, s.group_snapshot, s.target_id, s.sighting_count,
    s.anon_payload, s.anon_key_id, s.anon_signature, s.kind, s.ecosystem, s.severity, s.confidence, s.tags,
    s.valid_until, s.digest, s.added_us, l.leaf_index, s.provenance
    FROM statements s LEFT JOIN log_leaves l ON l.seq = s.seq";

fn statement_from_row(r: &Row) -> StoredStatement {
    let anonymous = r
        .get::<_, Option<Vec<u8>>>(15)
        .map(|payload| AnonymousVersion {
            payload,
            key_id: r.get::<_, Option<String>>(16).unwrap_or_default(),
            signature: r.get::<_, Option<Vec<u8>>>(17).unwrap_or_default(),
        });
    StoredStatement {
        seq: int(r.get(0)),
        id: r.get(1),
        revision: r.get::<_, i64>(2).clamp(0, i64::from(u32::MAX)) as u32,
        source_org: r.get(3),
        tlp: r.get(4),
        audience_json: r.get(5),
        received_at: r.get(6),
        payload_type: r.get(7),
        payload: r.get(8),
        key_id: r.get(9),
        signature: r.get(10),
        openings_json: r.get(11),
        group_snapshot_json: r.get(12),
        target_id: r.get(13),
        sighting_count: r
            .get::<_, Option<i64>>(14)
            .map(|n| n.clamp(0, i64::from(u32::MAX)) as u32),
        anonymous,
        kind: r.get(18),
        facts: StoredFacts {
            ecosystem: r.get(19),
            severity: r.get(20),
            confidence: r.get::<_, i64>(21).clamp(0, 100) as u8,
            tags_json: r.get(22),
            valid_until: r.get(23),
        },
        digest: r.get(24),
        added_us: r.get(25),
        leaf_index: r.get::<_, Option<i64>>(26).map(int),
        provenance: r.get(27),
    }
}

async fn statements_where(
    c: &Conn,
    clause: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<StoredStatement>, StoreError> {
    Ok(c.query(&format!("{STATEMENT_SELECT} {clause}"), params)
        .await?
        .iter()
        .map(statement_from_row)
        .collect())
}

pub(super) async fn statements_after(
    c: &Conn,
    after: u64,
    limit: u32,
) -> Result<Vec<StoredStatement>, StoreError> {
    statements_where(
        c,
        "WHERE s.seq > $1 ORDER BY s.seq LIMIT $2",
        &[&(after as i64), &i64::from(limit)],
    )
    .await
}

pub(super) async fn revisions(c: &Conn, id: &str) -> Result<Vec<StoredStatement>, StoreError> {
    statements_where(c, "WHERE s.id = $1 ORDER BY s.revision DESC", &[&id]).await
}

pub(super) async fn search(
    c: &Conn,
    query: &str,
    limit: u32,
) -> Result<Vec<StoredStatement>, StoreError> {
    let escaped = query
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let pattern = format!("%{escaped}%");
    statements_where(
        c,
        "WHERE s.value LIKE $1 ESCAPE '\\' OR s.title LIKE $1 ESCAPE '\\' ORDER BY s.seq DESC LIMIT $2",
        &[&pattern, &i64::from(limit)],
    )
    .await
}

pub(super) async fn sightings_of(
    c: &Conn,
    target_id: &str,
) -> Result<Vec<StoredStatement>, StoreError> {
    statements_where(
        c,
        "WHERE s.target_id = $1 AND s.kind = 'sighting' ORDER BY s.seq",
        &[&target_id],
    )
    .await
}

pub(super) async fn statement_count(c: &Conn) -> Result<u64, StoreError> {
    Ok(int(c
        .query_one("SELECT count(*) FROM statements", &[])
        .await?
        .get(0)))
}

pub(super) async fn seq_at_added(c: &Conn, added_us: i64) -> Result<u64, StoreError> {
    let seq: Option<i64> = c
        .query_one(
            "SELECT MAX(seq) FROM statements WHERE added_us <= $1",
            &[&added_us],
        )
        .await?
        .get(0);
    Ok(seq.map_or(0, int))
}

pub(super) async fn versions_of(
    c: &Conn,
    ids: &[String],
) -> Result<Vec<StoredStatement>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    statements_where(
        c,
        "WHERE s.id = ANY($1) OR (s.target_id = ANY($1) AND s.kind = 'retraction')",
        &[&ids],
    )
    .await
}

pub(super) async fn versions_of_stix_id(
    c: &Conn,
    stix_id: &str,
) -> Result<(Option<String>, Vec<StoredStatement>), StoreError> {
    let Some(row) = c
        .query_opt(
            "SELECT statement_id FROM stix_ids WHERE stix_id = $1",
            &[&stix_id],
        )
        .await?
    else {
        return Ok((None, Vec::new()));
    };
    let id: String = row.get(0);
    let rows = versions_of(c, std::slice::from_ref(&id)).await?;
    Ok((Some(id), rows))
}

pub(super) async fn acknowledge(
    c: &Conn,
    fingerprint: &str,
    seq: u64,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE agents SET acked_seq = GREATEST(acked_seq, $2), acked_at = $3 WHERE cert_fingerprint = $1",
        &[&fingerprint, &(seq as i64), &now],
    )
    .await?;
    Ok(())
}

// === retention ===

pub(super) async fn prune_expired(
    c: &Conn,
    cutoff: i64,
    now: i64,
    dry_run: bool,
    actor: &str,
) -> Result<PruneReport, StoreError> {
    lock_writes(c).await?;
    let max_seq: i64 = c
        .query_one("SELECT COALESCE(max(seq), 0) FROM statements", &[])
        .await?
        .get(0);
    let candidates: Vec<String> = c
        .query(
            "SELECT s.id FROM statements s
             WHERE s.valid_until IS NOT NULL AND s.valid_until < $1 AND s.target_id IS NULL
               AND s.revision = (SELECT max(revision) FROM statements WHERE id = s.id)",
            &[&cutoff],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut report = PruneReport::default();
    for id in candidates {
        let mut group = vec![id.clone()];
        let mut i = 0;
        while i < group.len() {
            for r in c
                .query(
                    "SELECT DISTINCT id FROM statements WHERE target_id = $1",
                    &[&group[i]],
                )
                .await?
            {
                let d: String = r.get(0);
                if !group.contains(&d) {
                    group.push(d);
                }
            }
            i += 1;
        }
        let seqs: Vec<i64> = c
            .query("SELECT seq FROM statements WHERE id = ANY($1)", &[&group])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if seqs.contains(&max_seq) {
            report.kept_for_head += 1;
            continue;
        }
        report.expired_ids += 1;
        report.rows += seqs.len() as u64;
        if dry_run {
            continue;
        }
        for g in &group {
            let source: Option<String> = c
                .query_opt(
                    "SELECT source_org FROM statements WHERE id = $1 LIMIT 1",
                    &[g],
                )
                .await?
                .map(|r| r.get(0));
            c.execute("DELETE FROM statements WHERE id = $1", &[g])
                .await?;
            c.execute("DELETE FROM stix_ids WHERE statement_id = $1", &[g])
                .await?;
            c.execute(
                "INSERT INTO pruned (id, pruned_at, source_org) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[g, &now, &source],
            )
            .await?;
        }
    }
    if !dry_run && report.rows > 0 {
        audit(
            c,
            now,
            actor,
            "prune",
            "statements",
            &format!(
                "expired before {cutoff}: {} ids, {} rows",
                report.expired_ids, report.rows
            ),
        )
        .await?;
    }
    Ok(report)
}

// === audit and counters ===

pub(super) async fn audit(
    c: &Conn,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        &[&at, &actor, &action, &target, &detail],
    )
    .await?;
    Ok(())
}

pub(super) async fn bump_epoch(c: &Conn) -> Result<(), StoreError> {
    c.execute(
        "UPDATE counters SET value = value + 1 WHERE name = 'epoch'",
        &[],
    )
    .await?;
    Ok(())
}

pub(super) async fn epoch(c: &Conn) -> Result<u64, StoreError> {
    Ok(int(c
        .query_one("SELECT value FROM counters WHERE name = 'epoch'", &[])
        .await?
        .get(0)))
}

pub(super) async fn directory_version(c: &Conn) -> Result<u64, StoreError> {
    Ok(int(c
        .query_one(
            "SELECT value FROM counters WHERE name = 'directory_version'",
            &[],
        )
        .await?
        .get(0)))
}

pub(super) async fn next_directory_version(c: &Conn) -> Result<u64, StoreError> {
    Ok(int(c
        .query_one(
            "UPDATE counters SET value = value + 1 WHERE name = 'directory_version' RETURNING value",
            &[],
        )
        .await?
        .get(0)))
}

pub(super) async fn audit_list(c: &Conn, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
    Ok(c.query(
        "SELECT seq, at, actor, action, target, detail FROM audit ORDER BY seq DESC LIMIT $1",
        &[&i64::from(limit)],
    )
    .await?
    .iter()
    .map(|r| AuditRow {
        seq: int(r.get(0)),
        at: r.get(1),
        actor: r.get(2),
        action: r.get(3),
        target: r.get(4),
        detail: r.get(5),
    })
    .collect())
}

// === members ===

fn word<T: std::str::FromStr>(r: &Row, idx: usize) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    let text: &str = r.get(idx);
    text.parse()
        .map_err(|e| StoreError::Postgres(format!("stored value `{text}`: {e}")))
}

fn member_from_row(r: &Row) -> Result<MemberRow, StoreError> {
    Ok(MemberRow {
        org_id: r.get(0),
        name: r.get(1),
        role: word::<Role>(r, 2)?,
        status: word::<MemberStatus>(r, 3)?,
        created_at: r.get(4),
    })
}

pub(super) async fn member(c: &Conn, org_id: &str) -> Result<Option<MemberRow>, StoreError> {
    c.query_opt(
        "SELECT org_id, name, role, status, created_at FROM members WHERE org_id = $1",
        &[&org_id],
    )
    .await?
    .map(|r| member_from_row(&r))
    .transpose()
}

pub(super) async fn add_member(c: &Conn, m: &MemberRow, actor: &str) -> Result<(), StoreError> {
    let inserted = c
        .execute(
            "INSERT INTO members (org_id, name, role, status, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (org_id) DO NOTHING",
            &[
                &m.org_id,
                &m.name,
                &m.role.as_str(),
                &m.status.as_str(),
                &m.created_at,
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "member `{}` already exists; to enroll another agent for it run `hub member token {}`",
            m.org_id, m.org_id
        )));
    }
    audit(
        c,
        m.created_at,
        actor,
        "member.add",
        &m.org_id,
        &format!("role {}", m.role),
    )
    .await
}

pub(super) async fn list_members(c: &Conn) -> Result<Vec<(MemberRow, u32, u32)>, StoreError> {
    c.query(
        "SELECT m.org_id, m.name, m.role, m.status, m.created_at,
            (SELECT count(*) FROM agents a WHERE a.org_id = m.org_id AND a.superseded_at IS NULL),
            (SELECT count(*) FROM signing_keys k WHERE k.org_id = m.org_id AND k.revoked_at IS NULL)
         FROM members m ORDER BY m.org_id",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok((
            member_from_row(r)?,
            r.get::<_, i64>(5) as u32,
            r.get::<_, i64>(6) as u32,
        ))
    })
    .collect()
}

pub(super) async fn set_member_status(
    c: &Conn,
    org: &str,
    change: StatusChange,
    actor: &str,
    now: i64,
) -> Result<MemberRow, StoreError> {
    lock_writes(c).await?;
    let m = member(c, org)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no member `{org}`")))?;
    let new_status = change.apply(m.status).ok_or_else(|| {
        StoreError::Refused(format!(
            "member `{org}` was removed; add it again under a new id"
        ))
    })?;
    c.execute(
        "UPDATE members SET status = $2 WHERE org_id = $1",
        &[&org, &new_status.as_str()],
    )
    .await?;
    if new_status == MemberStatus::Removed {
        c.execute(
            "UPDATE signing_keys SET retired_at = $2 WHERE org_id = $1 AND retired_at IS NULL AND revoked_at IS NULL",
            &[&org, &(now + 1)],
        )
        .await?;
        c.execute(
            "UPDATE enrollment_tokens SET used_at = $2 WHERE org_id = $1 AND used_at IS NULL",
            &[&org, &now],
        )
        .await?;
    }
    bump_epoch(c).await?;
    audit(
        c,
        now,
        actor,
        &format!("member.{change}"),
        org,
        &format!("{} -> {new_status}", m.status),
    )
    .await?;
    Ok(MemberRow {
        status: new_status,
        ..m
    })
}

// === people ===

pub(super) async fn add_person(
    c: &Conn,
    p: &PersonRow,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    lock_writes(c).await?;
    if member(c, &p.org_id).await?.is_none() {
        return Err(StoreError::NotFound(format!("no member `{}`", p.org_id)));
    }
    let inserted = c
        .execute(
            "INSERT INTO people (org_id, person_id, name, contact, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
            &[&p.org_id, &p.person_id, &p.name, &p.contact, &now],
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "person `{}/{}` already exists",
            p.org_id, p.person_id
        )));
    }
    audit(
        c,
        now,
        actor,
        "person.add",
        &format!("{}/{}", p.org_id, p.person_id),
        &p.name,
    )
    .await
}

pub(super) async fn list_people(c: &Conn, org: Option<&str>) -> Result<Vec<PersonRow>, StoreError> {
    Ok(c.query(
        "SELECT org_id, person_id, name, contact FROM people
             WHERE $1::TEXT IS NULL OR org_id = $1 ORDER BY org_id, person_id",
        &[&org],
    )
    .await?
    .iter()
    .map(|r| PersonRow {
        org_id: r.get(0),
        person_id: r.get(1),
        name: r.get(2),
        contact: r.get(3),
    })
    .collect())
}

pub(super) async fn remove_person(
    c: &Conn,
    org: &str,
    person: &str,
    actor: &str,
    now: i64,
) -> Result<PersonRow, StoreError> {
    lock_writes(c).await?;
    let row = list_people(c, Some(org))
        .await?
        .into_iter()
        .find(|p| p.person_id == person)
        .ok_or_else(|| StoreError::NotFound(format!("no person `{org}/{person}`")))?;
    c.execute(
        "DELETE FROM people WHERE org_id = $1 AND person_id = $2",
        &[&org, &person],
    )
    .await?;
    audit(
        c,
        now,
        actor,
        "person.remove",
        &format!("{org}/{person}"),
        "",
    )
    .await?;
    Ok(row)
}

pub(super) async fn person_exists(c: &Conn, org: &str, person: &str) -> Result<bool, StoreError> {
    Ok(c.query_opt(
        "SELECT 1 FROM people WHERE org_id = $1 AND person_id = $2",
        &[&org, &person],
    )
    .await?
    .is_some())
}

// === sharing groups ===

pub(super) async fn add_group(
    c: &Conn,
    name: &str,
    members: &[String],
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    lock_writes(c).await?;
    // `ORG@HUB` members are another hub's (cross-hub groups: the caller
    // checked HUB is a peer); the rest are members here.
    let (remote, members): (Vec<String>, Vec<String>) =
        members.iter().cloned().partition(|m| m.contains('@'));
    for m in &members {
        match member(c, m).await? {
            Some(row) if row.status != MemberStatus::Removed => {}
            _ => return Err(StoreError::NotFound(format!("no member `{m}`"))),
        }
    }
    let inserted = c
        .execute(
            "INSERT INTO sharing_groups (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&name, &now],
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "group `{name}` already exists"
        )));
    }
    c.execute(
        "INSERT INTO group_members (group_name, org_id) SELECT $1, unnest($2::TEXT[]) ON CONFLICT DO NOTHING",
        &[&name, &members],
    )
    .await?;
    c.execute(
        "INSERT INTO group_remote_members (group_name, member) SELECT $1, unnest($2::TEXT[]) ON CONFLICT DO NOTHING",
        &[&name, &remote],
    )
    .await?;
    bump_epoch(c).await?;
    let all: Vec<String> = members.into_iter().chain(remote).collect();
    audit(c, now, actor, "group.add", name, &all.join(",")).await
}

pub(super) async fn remove_group(
    c: &Conn,
    name: &str,
    actor: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    lock_writes(c).await?;
    let members = group_members(c, name)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no group `{name}`")))?;
    c.execute("DELETE FROM group_members WHERE group_name = $1", &[&name])
        .await?;
    c.execute(
        "DELETE FROM group_remote_members WHERE group_name = $1",
        &[&name],
    )
    .await?;
    c.execute("DELETE FROM peer_groups WHERE group_name = $1", &[&name])
        .await?;
    c.execute("DELETE FROM sharing_groups WHERE name = $1", &[&name])
        .await?;
    bump_epoch(c).await?;
    audit(c, now, actor, "group.remove", name, &members.join(",")).await?;
    Ok(members)
}

pub(super) async fn group_members(c: &Conn, name: &str) -> Result<Option<Vec<String>>, StoreError> {
    if c.query_opt("SELECT 1 FROM sharing_groups WHERE name = $1", &[&name])
        .await?
        .is_none()
    {
        return Ok(None);
    }
    Ok(Some(
        c.query(
            "SELECT org_id FROM group_members WHERE group_name = $1
             UNION SELECT member FROM group_remote_members WHERE group_name = $1
             ORDER BY 1",
            &[&name],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect(),
    ))
}

pub(super) async fn list_groups(c: &Conn) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let rows = c
        .query(
            "SELECT g.name, COALESCE(array_agg(m.org_id ORDER BY m.org_id) FILTER (WHERE m.org_id IS NOT NULL), '{}')
             FROM sharing_groups g LEFT JOIN (
                 SELECT group_name, org_id FROM group_members
                 UNION SELECT group_name, member FROM group_remote_members
             ) m ON m.group_name = g.name
             GROUP BY g.name ORDER BY g.name",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub(super) async fn groups_of(c: &Conn, org: &str) -> Result<Vec<String>, StoreError> {
    Ok(c.query(
        "SELECT group_name FROM group_members WHERE org_id = $1 ORDER BY group_name",
        &[&org],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

// === enrollment and agents ===

pub(super) async fn add_token(c: &Conn, t: &TokenRecord, actor: &str) -> Result<(), StoreError> {
    lock_writes(c).await?;
    match member(c, &t.org_id).await? {
        None => return Err(StoreError::NotFound(format!("no member `{}`", t.org_id))),
        Some(m) if m.status == MemberStatus::Removed => {
            return Err(StoreError::Refused(format!(
                "member `{}` was removed",
                t.org_id
            )))
        }
        Some(_) => {}
    }
    audit(
        c,
        t.created_at,
        actor,
        "token.issue",
        &t.org_id,
        &format!("expires {}", isac_core::time::format_rfc3339(t.expires_at)),
    )
    .await?;
    c.execute(
        "INSERT INTO enrollment_tokens (token_hash, org_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        &[&t.token_hash, &t.org_id, &t.created_at, &t.expires_at],
    )
    .await?;
    Ok(())
}

pub(super) async fn enroll(c: &Conn, e: &EnrollRecord) -> Result<MemberRow, StoreError> {
    lock_writes(c).await?;
    let token = c
        .query_opt(
            "SELECT org_id, expires_at, used_at FROM enrollment_tokens WHERE token_hash = $1",
            &[&e.token_hash],
        )
        .await?;
    let Some(token) = token else {
        return Err(StoreError::Token(
            "enrollment token is not known to this hub; check you copied all of it, or ask the hub operator for a new one".into(),
        ));
    };
    let (org_id, expires_at, used_at): (String, i64, Option<i64>) =
        (token.get(0), token.get(1), token.get(2));
    if org_id != e.org_id {
        return Err(StoreError::Token(
            "enrollment token does not match its organisation".into(),
        ));
    }
    if used_at.is_some() {
        return Err(StoreError::Token(format!(
            "enrollment token was already used; ask the hub operator for a new one (`hub member token {org_id}`)"
        )));
    }
    if e.now >= expires_at {
        return Err(StoreError::Token(format!(
            "enrollment token expired at {}; ask the hub operator for a new one (`hub member token {org_id}`)",
            isac_core::time::format_rfc3339(expires_at)
        )));
    }
    let member = member(c, &org_id)
        .await?
        .ok_or_else(|| StoreError::Token(format!("member `{org_id}` no longer exists")))?;
    if member.status != MemberStatus::Active {
        return Err(StoreError::Token(format!(
            "member `{org_id}` is {}",
            member.status
        )));
    }
    let key_owner: Option<String> = c
        .query_opt(
            "SELECT org_id FROM signing_keys WHERE key_id = $1",
            &[&e.key_id],
        )
        .await?
        .map(|r| r.get(0));
    match key_owner {
        Some(owner) if owner != org_id => return Err(StoreError::Conflict(
            "this signing key is already registered to another organisation; generate a new one"
                .into(),
        )),
        Some(_) => {}
        None => {
            c.execute(
                "INSERT INTO signing_keys (key_id, org_id, public_key, valid_from, created_at) VALUES ($1, $2, $3, $4, $4)",
                &[&e.key_id, &org_id, &e.public_key_der, &e.now],
            )
            .await?;
        }
    }
    c.execute(
        "UPDATE enrollment_tokens SET used_at = $2, used_by_agent = $3 WHERE token_hash = $1",
        &[&e.token_hash, &e.now, &e.agent_name],
    )
    .await?;
    c.execute(
        "UPDATE agents SET superseded_at = $3 WHERE org_id = $1 AND agent_name = $2 AND superseded_at IS NULL",
        &[&org_id, &e.agent_name, &e.now],
    )
    .await?;
    c.execute(
        "INSERT INTO agents (cert_fingerprint, org_id, agent_name, cert_pem, issued_at, not_after) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&e.cert_fingerprint, &org_id, &e.agent_name, &e.cert_pem, &e.now, &e.cert_not_after],
    )
    .await?;
    bump_epoch(c).await?;
    audit(
        c,
        e.now,
        &format!("org:{org_id}/agent:{}", e.agent_name),
        "agent.enroll",
        &org_id,
        &format!("cert {} key {}", e.cert_fingerprint, e.key_id),
    )
    .await?;
    Ok(member)
}

pub(super) async fn renew_agent(
    c: &Conn,
    old_fingerprint: &str,
    new_fingerprint: &str,
    cert_pem: &str,
    not_after: i64,
    now: i64,
) -> Result<(), StoreError> {
    let agent = agent_by_cert(c, old_fingerprint)
        .await?
        .ok_or_else(|| StoreError::NotFound("unknown agent".into()))?;
    c.execute(
        "INSERT INTO agents (cert_fingerprint, org_id, agent_name, cert_pem, issued_at, not_after) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&new_fingerprint, &agent.org_id, &agent.agent_name, &cert_pem, &now, &not_after],
    )
    .await?;
    audit(
        c,
        now,
        &format!("org:{}/agent:{}", agent.org_id, agent.agent_name),
        "agent.renew",
        &agent.org_id,
        &format!("cert {new_fingerprint} replaces {old_fingerprint}"),
    )
    .await
}

pub(super) async fn agents_of(c: &Conn, org: &str) -> Result<Vec<AgentDetail>, StoreError> {
    Ok(c
        .query(
            "SELECT agent_name, cert_fingerprint, issued_at, not_after, superseded_at, acked_seq, acked_at FROM agents
             WHERE org_id = $1 ORDER BY agent_name, issued_at",
            &[&org],
        )
        .await?
        .iter()
        .map(|r| AgentDetail {
            agent_name: r.get(0),
            cert_fingerprint: r.get(1),
            issued_at: r.get(2),
            not_after: r.get(3),
            superseded_at: r.get(4),
            acked_seq: int(r.get(5)),
            acked_at: r.get(6),
        })
        .collect())
}

pub(super) async fn agent_by_cert(c: &Conn, fp: &str) -> Result<Option<AgentRow>, StoreError> {
    c.query_opt(
        "SELECT a.org_id, a.agent_name, m.role, m.status, a.superseded_at IS NOT NULL
         FROM agents a JOIN members m ON m.org_id = a.org_id WHERE a.cert_fingerprint = $1",
        &[&fp],
    )
    .await?
    .map(|r| {
        Ok(AgentRow {
            org_id: r.get(0),
            agent_name: r.get(1),
            role: word(&r, 2)?,
            member_status: word(&r, 3)?,
            superseded: r.get(4),
        })
    })
    .transpose()
}

// === keys ===

const KEY_SELECT: &str =
    "SELECT k.key_id, k.org_id, m.name, k.public_key, k.valid_from, k.revoked_at, k.retired_at
     FROM signing_keys k JOIN members m ON m.org_id = k.org_id";

fn key_from_row(r: &Row) -> KeyRow {
    KeyRow {
        key_id: r.get(0),
        org_id: r.get(1),
        org_name: r.get(2),
        public_key_der: r.get(3),
        valid_from: r.get(4),
        revoked_at: r.get(5),
        retired_at: r.get(6),
    }
}

pub(super) async fn key(c: &Conn, key_id: &str) -> Result<Option<KeyRow>, StoreError> {
    Ok(
        c.query_opt(&format!("{KEY_SELECT} WHERE k.key_id = $1"), &[&key_id])
            .await?
            .map(|r| key_from_row(&r)),
    )
}

pub(super) async fn keys(c: &Conn) -> Result<Vec<KeyRow>, StoreError> {
    Ok(c.query(
        &format!("{KEY_SELECT} ORDER BY k.org_id, k.created_at"),
        &[],
    )
    .await?
    .iter()
    .map(key_from_row)
    .collect())
}

pub(super) async fn keys_of(c: &Conn, org: &str) -> Result<Vec<KeyRow>, StoreError> {
    Ok(c.query(
        &format!("{KEY_SELECT} WHERE k.org_id = $1 ORDER BY k.created_at"),
        &[&org],
    )
    .await?
    .iter()
    .map(key_from_row)
    .collect())
}

pub(super) async fn revoke_key(
    c: &Conn,
    key_id: &str,
    at: i64,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<KeyRow, StoreError> {
    lock_writes(c).await?;
    let existing = key(c, key_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no key `{key_id}`")))?;
    let effective = existing.revoked_at.map_or(at, |prev| prev.min(at));
    c.execute(
        "UPDATE signing_keys SET revoked_at = $2, revocation_reason = $3 WHERE key_id = $1",
        &[&key_id, &effective, &reason],
    )
    .await?;
    bump_epoch(c).await?;
    audit(
        c,
        now,
        actor,
        "key.revoke",
        key_id,
        &format!(
            "org {} effective {} reason: {reason}",
            existing.org_id,
            isac_core::time::format_rfc3339(effective)
        ),
    )
    .await?;
    key(c, key_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no key `{key_id}`")))
}

pub(super) async fn rotate_key(
    c: &Conn,
    org: &str,
    current: &str,
    new_key_id: &str,
    new_spki: &[u8],
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    lock_writes(c).await?;
    match key(c, current).await? {
        Some(k) if k.org_id == org && k.state() == "active" => {}
        Some(k) if k.org_id == org => {
            return Err(StoreError::Refused(format!(
                "key {current} is {}; rotate from your active key",
                k.state()
            )))
        }
        _ => {
            return Err(StoreError::Refused(format!(
                "key {current} is not one of your active keys"
            )))
        }
    }
    if key(c, new_key_id).await?.is_some() {
        return Err(StoreError::Conflict(
            "the new key is already registered; generate a fresh one".into(),
        ));
    }
    c.execute(
        "INSERT INTO signing_keys (key_id, org_id, public_key, valid_from, created_at) VALUES ($1, $2, $3, $4, $4)",
        &[&new_key_id, &org, &new_spki, &now],
    )
    .await?;
    c.execute(
        "UPDATE signing_keys SET retired_at = $2 WHERE key_id = $1",
        &[&current, &now],
    )
    .await?;
    bump_epoch(c).await?;
    audit(
        c,
        now,
        actor,
        "key.rotate",
        org,
        &format!("{new_key_id} replaces {current}"),
    )
    .await
}

// === counts ===

pub(super) async fn status_counts(c: &Conn) -> Result<StatusCounts, StoreError> {
    async fn one(c: &Conn, sql: &str) -> Result<u64, StoreError> {
        Ok(int(c.query_one(sql, &[]).await?.get(0)))
    }
    async fn grouped(c: &Conn, sql: &str) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(c.query(sql, &[])
            .await?
            .iter()
            .map(|r| (r.get(0), int(r.get(1))))
            .collect())
    }
    Ok(StatusCounts {
        head: head_sequence(c).await?,
        statements: one(c, "SELECT count(*) FROM statements").await?,
        members_by_status: grouped(c, "SELECT status, count(*) FROM members GROUP BY status ORDER BY status").await?,
        keys_by_state: grouped(
            c,
            "SELECT CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN retired_at IS NOT NULL THEN 'retired' ELSE 'active' END AS state,
                count(*) FROM signing_keys GROUP BY state ORDER BY state",
        )
        .await?,
        agents: one(c, "SELECT count(*) FROM agents WHERE superseded_at IS NULL").await?,
        groups: one(c, "SELECT count(*) FROM sharing_groups").await?,
        people: one(c, "SELECT count(*) FROM people").await?,
        directory_version: one(c, "SELECT value FROM counters WHERE name = 'directory_version'").await?,
        statements_by_tlp: grouped(c, "SELECT tlp, count(*) FROM statements GROUP BY tlp ORDER BY tlp").await?,
    })
}

// === TAXII and API keys ===

const API_KEY_SELECT: &str = "SELECT username, org_id, person_id, label, secret_sha256, can_write,
    created_at, revoked_at, last_used_at FROM api_keys";

fn api_key_from_row(r: &Row) -> ApiKeyRow {
    ApiKeyRow {
        username: r.get(0),
        org_id: r.get(1),
        person_id: r.get(2),
        label: r.get(3),
        secret_sha256: r.get(4),
        can_write: r.get(5),
        created_at: r.get(6),
        revoked_at: r.get(7),
        last_used_at: r.get(8),
    }
}

pub(super) async fn add_api_key(c: &Conn, k: &ApiKeyRow, actor: &str) -> Result<(), StoreError> {
    lock_writes(c).await?;
    match member(c, &k.org_id).await? {
        Some(m) if m.status != MemberStatus::Removed => {}
        _ => return Err(StoreError::NotFound(format!("no member `{}`", k.org_id))),
    }
    if let Some(p) = &k.person_id {
        if !person_exists(c, &k.org_id, p).await? {
            return Err(StoreError::NotFound(format!(
                "no person `{p}` in `{}`; add them first with `hub person add {} {p} ...`",
                k.org_id, k.org_id
            )));
        }
    }
    c.execute(
        "INSERT INTO api_keys (username, org_id, person_id, label, secret_sha256, can_write, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &k.username,
            &k.org_id,
            &k.person_id,
            &k.label,
            &k.secret_sha256,
            &k.can_write,
            &k.created_at,
        ],
    )
    .await?;
    let person = k.person_id.as_deref().unwrap_or("-");
    audit(
        c,
        k.created_at,
        actor,
        "api-key.add",
        &k.org_id,
        &format!(
            "{} person {person} write {} label {}",
            k.username, k.can_write, k.label
        ),
    )
    .await
}

pub(super) async fn api_key(c: &Conn, username: &str) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(c.query_opt(
        &format!("{API_KEY_SELECT} WHERE username = $1"),
        &[&username],
    )
    .await?
    .map(|r| api_key_from_row(&r)))
}

pub(super) async fn list_api_keys(
    c: &Conn,
    org: Option<&str>,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    Ok(c
        .query(
            &format!(
                "{API_KEY_SELECT} WHERE $1::TEXT IS NULL OR org_id = $1 ORDER BY org_id, created_at, username"
            ),
            &[&org],
        )
        .await?
        .iter()
        .map(api_key_from_row)
        .collect())
}

pub(super) async fn revoke_api_key(
    c: &Conn,
    username: &str,
    actor: &str,
    now: i64,
) -> Result<ApiKeyRow, StoreError> {
    lock_writes(c).await?;
    let key = api_key(c, username)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no API key `{username}`")))?;
    if key.revoked_at.is_some() {
        return Err(StoreError::Refused(format!(
            "API key `{username}` is already revoked"
        )));
    }
    c.execute(
        "UPDATE api_keys SET revoked_at = $2 WHERE username = $1",
        &[&username, &now],
    )
    .await?;
    audit(c, now, actor, "api-key.revoke", &key.org_id, username).await?;
    Ok(key)
}

pub(super) async fn touch_api_key(c: &Conn, username: &str, now: i64) -> Result<(), StoreError> {
    c.execute(
        "UPDATE api_keys SET last_used_at = $2 WHERE username = $1",
        &[&username, &now],
    )
    .await?;
    Ok(())
}

pub(super) async fn taxii_writes_of(
    c: &Conn,
    org: &str,
    stix_id: &str,
) -> Result<Vec<TaxiiWrite>, StoreError> {
    Ok(c.query(
        "SELECT org_id, stix_id, version, statement_id, tlp, created_at FROM taxii_writes
             WHERE org_id = $1 AND stix_id = $2 ORDER BY created_at, statement_id",
        &[&org, &stix_id],
    )
    .await?
    .iter()
    .map(|r| TaxiiWrite {
        org_id: r.get(0),
        stix_id: r.get(1),
        version: r.get(2),
        statement_id: r.get(3),
        tlp: r.get(4),
        created_at: r.get(5),
    })
    .collect())
}

pub(super) async fn record_taxii_writes(c: &Conn, rows: &[TaxiiWrite]) -> Result<(), StoreError> {
    for w in rows {
        c.execute(
            "INSERT INTO taxii_writes (org_id, stix_id, version, statement_id, tlp, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &w.org_id,
                &w.stix_id,
                &w.version,
                &w.statement_id,
                &w.tlp,
                &w.created_at,
            ],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn save_taxii_status(
    c: &Conn,
    id: &str,
    org: &str,
    now: i64,
    body: &str,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO taxii_status (id, org_id, created_at, body) VALUES ($1, $2, $3, $4)",
        &[&id, &org, &now, &body],
    )
    .await?;
    Ok(())
}

pub(super) async fn taxii_status(
    c: &Conn,
    id: &str,
    org: &str,
) -> Result<Option<String>, StoreError> {
    Ok(c.query_opt(
        "SELECT body FROM taxii_status WHERE id = $1 AND org_id = $2",
        &[&id, &org],
    )
    .await?
    .map(|r| r.get(0)))
}
