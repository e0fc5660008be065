//! All SQL of the hub.

use isac_core::membership::{MemberStatus, Role, StatusChange};
use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

const SCHEMA_VERSION: i64 = 14;

// === whole-database operations (backup, restore) ===

/// Copies the database at `src` (possibly in use by a running hub) into a
/// new database at `dst` with SQLite's online backup, in small steps so a
/// serving hub keeps writing between them. Returns the statements copied.
pub fn backup_database(src: &std::path::Path, dst: &std::path::Path) -> Result<u64, StoreError> {
    let src = Connection::open(src)?;
    src.busy_timeout(std::time::Duration::from_secs(10))?;
    let mut dst = Connection::open(dst)?;
    {
        let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
        b.run_to_completion(256, std::time::Duration::from_millis(5), None)?;
    }
    count_statements_in(&dst)
}

/// The number of statements in the database at `path`.
pub fn count_statements(path: &std::path::Path) -> Result<u64, StoreError> {
    count_statements_in(&Connection::open(path)?)
}

fn count_statements_in(conn: &Connection) -> Result<u64, StoreError> {
    let count: i64 = conn.query_row("SELECT count(*) FROM statements", [], |r| r.get(0))?;
    Ok(count as u64)
}

/// Brings the schema up to date. Safe when several processes open the same
/// database at once (a running hub and an operator command): the version is
/// read and changed under one write lock.
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = migrate_locked(conn);
    match &result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(_) => {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    result
}

fn migrate_locked(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Refused(format!(
            "database schema {version} is newer than this hub understands ({SCHEMA_VERSION}); upgrade the hub"
        )));
    }
    if version == 0 {
        conn.execute_batch(
            "CREATE TABLE members (
                org_id      TEXT PRIMARY KEY,
                name        TEXT NOT NULL,
                role        TEXT NOT NULL CHECK (role IN ('member','coordinator','admin')),
                status      TEXT NOT NULL DEFAULT 'active',
                created_at  INTEGER NOT NULL
            );
            CREATE TABLE enrollment_tokens (
                token_hash  TEXT PRIMARY KEY,
                org_id      TEXT NOT NULL REFERENCES members(org_id),
                created_at  INTEGER NOT NULL,
                expires_at  INTEGER NOT NULL,
                used_at     INTEGER,
                used_by_agent TEXT
            );
            CREATE TABLE agents (
                cert_fingerprint TEXT PRIMARY KEY,
                org_id      TEXT NOT NULL REFERENCES members(org_id),
                agent_name  TEXT NOT NULL,
                cert_pem    TEXT NOT NULL,
                issued_at   INTEGER NOT NULL,
                not_after   INTEGER NOT NULL,
                superseded_at INTEGER
            );
            CREATE INDEX agents_by_org ON agents(org_id, agent_name);
            CREATE TABLE signing_keys (
                key_id      TEXT PRIMARY KEY,
                org_id      TEXT NOT NULL REFERENCES members(org_id),
                public_key  BLOB NOT NULL,
                valid_from  INTEGER NOT NULL,
                revoked_at  INTEGER,
                created_at  INTEGER NOT NULL
            );
            CREATE TABLE statements (
                seq          INTEGER PRIMARY KEY AUTOINCREMENT,
                id           TEXT NOT NULL,
                revision     INTEGER NOT NULL,
                source_org   TEXT NOT NULL,
                tlp          TEXT NOT NULL,
                audience     TEXT NOT NULL,
                kind         TEXT NOT NULL,
                created_at   INTEGER NOT NULL,
                received_at  INTEGER NOT NULL,
                payload_type TEXT NOT NULL,
                payload      BLOB NOT NULL,
                key_id       TEXT NOT NULL,
                signature    BLOB NOT NULL,
                digest       TEXT NOT NULL,
                UNIQUE (id, revision)
            );
            PRAGMA user_version = 1;",
        )?;
    }
    if version < 2 {
        conn.execute_batch(
            "ALTER TABLE signing_keys ADD COLUMN retired_at INTEGER;
            ALTER TABLE signing_keys ADD COLUMN revocation_reason TEXT;
            CREATE TABLE people (
                org_id      TEXT NOT NULL REFERENCES members(org_id),
                person_id   TEXT NOT NULL,
                name        TEXT NOT NULL,
                contact     TEXT NOT NULL,
                created_at  INTEGER NOT NULL,
                PRIMARY KEY (org_id, person_id)
            );
            CREATE TABLE audit (
                seq     INTEGER PRIMARY KEY AUTOINCREMENT,
                at      INTEGER NOT NULL,
                actor   TEXT NOT NULL,
                action  TEXT NOT NULL,
                target  TEXT NOT NULL,
                detail  TEXT NOT NULL
            );
            -- Counters shared by every process on this database: `epoch` moves
            -- on any membership or key change, `directory_version` on every
            -- signing of the key directory.
            CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT INTO counters (name, value) VALUES ('epoch', 1), ('directory_version', 0);
            PRAGMA user_version = 2;",
        )?;
    }
    if version < 3 {
        conn.execute_batch(
            "ALTER TABLE statements ADD COLUMN openings TEXT NOT NULL DEFAULT '[]';
            ALTER TABLE statements ADD COLUMN group_snapshot TEXT NOT NULL DEFAULT '{}';
            ALTER TABLE statements ADD COLUMN target_id TEXT;
            ALTER TABLE statements ADD COLUMN value TEXT NOT NULL DEFAULT '';
            ALTER TABLE statements ADD COLUMN title TEXT NOT NULL DEFAULT '';
            ALTER TABLE statements ADD COLUMN sighting_count INTEGER;
            ALTER TABLE statements ADD COLUMN anon_payload BLOB;
            ALTER TABLE statements ADD COLUMN anon_key_id TEXT;
            ALTER TABLE statements ADD COLUMN anon_signature BLOB;
            CREATE INDEX statements_by_target ON statements(target_id) WHERE target_id IS NOT NULL;
            CREATE TABLE sharing_groups (
                name        TEXT PRIMARY KEY,
                created_at  INTEGER NOT NULL
            );
            CREATE TABLE group_members (
                group_name  TEXT NOT NULL REFERENCES sharing_groups(name) ON DELETE CASCADE,
                org_id      TEXT NOT NULL REFERENCES members(org_id),
                PRIMARY KEY (group_name, org_id)
            );
            PRAGMA user_version = 3;",
        )?;
    }
    if version < 4 {
        conn.execute_batch(
            "ALTER TABLE statements ADD COLUMN ecosystem TEXT;
            ALTER TABLE statements ADD COLUMN severity TEXT NOT NULL DEFAULT 'info';
            ALTER TABLE statements ADD COLUMN confidence INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE statements ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
            ALTER TABLE statements ADD COLUMN valid_until INTEGER;
            ALTER TABLE agents ADD COLUMN acked_seq INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE agents ADD COLUMN acked_at INTEGER;
            PRAGMA user_version = 4;",
        )?;
    }
    if version < 5 {
        // `added_us` is the TAXII `date_added`: unique and increasing with
        // `seq`, so a client paging with `added_after` never skips or
        // repeats an item, however many arrive in one second.
        conn.execute_batch(
            "ALTER TABLE statements ADD COLUMN added_us INTEGER NOT NULL DEFAULT 0;
            CREATE TABLE api_keys (
                username      TEXT PRIMARY KEY,
                org_id        TEXT NOT NULL REFERENCES members(org_id),
                person_id     TEXT,
                label         TEXT NOT NULL,
                secret_sha256 TEXT NOT NULL,
                can_write     INTEGER NOT NULL DEFAULT 0,
                created_at    INTEGER NOT NULL,
                revoked_at    INTEGER,
                last_used_at  INTEGER
            );
            -- STIX object id -> statement, for TAXII lookups by object id.
            CREATE TABLE stix_ids (
                stix_id      TEXT PRIMARY KEY,
                statement_id TEXT NOT NULL
            ) WITHOUT ROWID;",
        )?;
        let mut last = 0i64;
        let rows: Vec<(i64, i64, Vec<u8>)> = conn
            .prepare("SELECT seq, received_at, payload FROM statements ORDER BY seq")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut update = conn.prepare("UPDATE statements SET added_us = ?2 WHERE seq = ?1")?;
        for (seq, received_at, payload) in rows {
            last = next_added_us(received_at, last);
            update.execute(params![seq, last])?;
            // Stored payloads were verified on the way in.
            if let Ok(statement) = isac_core::Statement::from_canonical_bytes(&payload) {
                let id = statement.id.to_string();
                index_stix_ids(conn, &isac_core::stix::object_ids(&statement), &id)?;
            }
        }
        conn.execute_batch(
            "CREATE INDEX statements_by_added ON statements(added_us);
            PRAGMA user_version = 5;",
        )?;
    }
    if version < 6 {
        conn.execute_batch(
            "-- What each member's TAXII submissions became: a re-sent object
            -- version changes nothing, a revoked one retracts its statements.
            CREATE TABLE taxii_writes (
                org_id       TEXT NOT NULL,
                stix_id      TEXT NOT NULL,
                version      TEXT NOT NULL,
                statement_id TEXT NOT NULL,
                tlp          TEXT NOT NULL,
                created_at   INTEGER NOT NULL,
                PRIMARY KEY (org_id, stix_id, version, statement_id)
            );
            CREATE TABLE taxii_status (
                id          TEXT PRIMARY KEY,
                org_id      TEXT NOT NULL,
                created_at  INTEGER NOT NULL,
                body        TEXT NOT NULL
            );
            PRAGMA user_version = 6;",
        )?;
    }
    if version < 7 {
        // Ids removed by `hub prune`: never accepted again, so a replay of a
        // long-expired statement cannot bring it back.
        conn.execute_batch(
            "CREATE TABLE pruned (
                id        TEXT PRIMARY KEY,
                pruned_at INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX statements_by_valid_until ON statements(valid_until) WHERE valid_until IS NOT NULL;
            PRAGMA user_version = 7;",
        )?;
    }
    if version < 8 {
        // Ids other statements name (targets, `related`): taken for every
        // other member, so an id learned from a reference gets the same
        // answer whether or not its item exists or is visible (issue 15).
        // `pruned.source_org`: only the author hears that its id was pruned.
        conn.execute_batch(
            "CREATE TABLE statement_refs (
                id         TEXT NOT NULL,
                source_org TEXT NOT NULL,
                PRIMARY KEY (id, source_org)
            ) WITHOUT ROWID;
            ALTER TABLE pruned ADD COLUMN source_org TEXT;",
        )?;
        let rows: Vec<(String, Vec<u8>)> = conn
            .prepare("SELECT source_org, payload FROM statements ORDER BY seq")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (source_org, payload) in rows {
            // Stored payloads were verified on the way in.
            if let Ok(statement) = isac_core::Statement::from_canonical_bytes(&payload) {
                let refs: Vec<String> = statement
                    .referenced_ids()
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                index_refs(conn, &refs, &source_org)?;
            }
        }
        conn.execute_batch("PRAGMA user_version = 8;")?;
    }
    if version < 9 {
        // The transparency log (issue 19). `log_leaves` is never pruned (the
        // tree never shrinks), so it does not reference `statements`;
        // `log_nodes` holds the perfect subtrees above the leaves, written
        // when a checkpoint integrates them.
        conn.execute_batch(
            "CREATE TABLE log_leaves (
                leaf_index INTEGER PRIMARY KEY,
                seq        INTEGER NOT NULL UNIQUE,
                hash       BLOB NOT NULL
            );
            CREATE TABLE log_nodes (
                level INTEGER NOT NULL,
                idx   INTEGER NOT NULL,
                hash  BLOB NOT NULL,
                PRIMARY KEY (level, idx)
            ) WITHOUT ROWID;
            CREATE TABLE log_checkpoints (
                size       INTEGER PRIMARY KEY,
                root       BLOB NOT NULL,
                note       TEXT NOT NULL,
                created_at INTEGER NOT NULL
            );",
        )?;
        // Existing statements become the first leaves, in hub order.
        let rows: Vec<(i64, LeafSource)> = conn
            .prepare(
                "SELECT seq, payload_type, payload, key_id, signature, anon_payload, anon_key_id, anon_signature
                 FROM statements ORDER BY seq",
            )?
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    LeafSource {
                        payload_type: r.get(1)?,
                        payload: r.get(2)?,
                        key_id: r.get(3)?,
                        signature: r.get(4)?,
                        anonymous: match r.get::<_, Option<Vec<u8>>>(5)? {
                            Some(payload) => Some(AnonymousVersion {
                                payload,
                                key_id: r.get(6)?,
                                signature: r.get(7)?,
                            }),
                            None => None,
                        },
                    },
                ))
            })?
            .collect::<Result<_, _>>()?;
        for (seq, source) in rows {
            append_leaf(conn, seq as u64, &source.leaf_hash())?;
        }
        conn.execute_batch("PRAGMA user_version = 9;")?;
    }
    if version < 10 {
        // Witness cosignatures (C2SP tlog-cosignature lines) of stored
        // checkpoints, served appended to the checkpoint's note.
        conn.execute_batch(
            "CREATE TABLE log_cosignatures (
                size       INTEGER NOT NULL,
                witness    TEXT NOT NULL,
                line       TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (size, witness)
            ) WITHOUT ROWID;
            CREATE INDEX log_cosignatures_by_witness ON log_cosignatures (witness, size);
            PRAGMA user_version = 10;",
        )?;
    }
    if version < 11 {
        // Federation (issue 20): see `sqlite_fed.rs`.
        super::sqlite_fed::migrate_11(conn)?;
    }
    if version < 12 {
        // Federation into the order (issue 20): see `sqlite_fed.rs`.
        super::sqlite_fed::migrate_12(conn)?;
    }
    if version < 13 {
        // Cross-hub sharing groups (issue 20): see `sqlite_groups.rs`.
        super::sqlite_groups::migrate_13(conn)?;
    }
    if version < 14 {
        // Relaying through a third hub (issue 20): see `sqlite_fed.rs`.
        super::sqlite_fed::migrate_14(conn)?;
    }
    Ok(())
}

// === the transparency log ===

/// What a statement's log leaf is made of: the envelope members receive.
struct LeafSource {
    payload_type: String,
    payload: Vec<u8>,
    key_id: String,
    signature: Vec<u8>,
    anonymous: Option<AnonymousVersion>,
}

impl LeafSource {
    fn leaf_hash(&self) -> isac_core::tlog::Hash {
        let (payload, keyid, sig) = match &self.anonymous {
            Some(a) => (&a.payload, &a.key_id, &a.signature),
            None => (&self.payload, &self.key_id, &self.signature),
        };
        isac_core::tlog::envelope_leaf_hash(&isac_core::Envelope {
            payload_type: self.payload_type.clone(),
            payload: payload.clone(),
            signatures: vec![isac_core::envelope::Signature {
                keyid: keyid.clone(),
                sig: sig.clone(),
            }],
        })
    }
}

/// Appends the leaf of statement `seq` at the next index; returns the index.
fn append_leaf(
    conn: &Connection,
    seq: u64,
    hash: &isac_core::tlog::Hash,
) -> Result<u64, StoreError> {
    let index: i64 = conn
        .prepare_cached(
            "INSERT INTO log_leaves (leaf_index, seq, hash)
             VALUES ((SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM log_leaves), ?1, ?2)
             RETURNING leaf_index",
        )?
        .query_row(params![seq as i64, &hash[..]], |r| r.get(0))?;
    Ok(index as u64)
}

/// Leaves appended so far (integrated into a checkpoint or not).
pub(super) fn log_leaf_count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM log_leaves")?
        .query_row([], |r| r.get(0))?;
    Ok(n as u64)
}

/// The leaf index of statement `seq`, if it has one.
pub(super) fn leaf_index_of(conn: &Connection, seq: u64) -> Result<Option<u64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT leaf_index FROM log_leaves WHERE seq = ?1")?
        .query_row([seq as i64], |r| r.get::<_, i64>(0))
        .optional()?
        .map(|i| i as u64))
}

/// Leaf hashes `[start, end)`, in order.
pub(super) fn leaf_hashes(
    conn: &Connection,
    start: u64,
    end: u64,
) -> Result<Vec<isac_core::tlog::Hash>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT hash FROM log_leaves WHERE leaf_index >= ?1 AND leaf_index < ?2 ORDER BY leaf_index",
    )?;
    let hashes = stmt
        .query_map(params![start as i64, end as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })?
        .map(|h| h.map_err(StoreError::from).and_then(|h| hash_from(&h)))
        .collect::<Result<Vec<_>, _>>()?;
    if hashes.len() as u64 != end.saturating_sub(start) {
        return Err(StoreError::Sqlite(format!(
            "log leaves {start}..{end} are not all stored"
        )));
    }
    Ok(hashes)
}

fn hash_from(bytes: &[u8]) -> Result<isac_core::tlog::Hash, StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Sqlite("a stored log hash is not 32 bytes".into()))
}

/// Node hashes from `log_leaves` (level 0) and `log_nodes`: the
/// `HashReader` proofs and tree heads are computed over.
pub(super) struct SqliteHashReader<'c>(pub &'c Connection);

impl isac_core::tlog::merkle::HashReader for SqliteHashReader<'_> {
    type Error = StoreError;

    fn read_hashes(
        &self,
        nodes: &[isac_core::tlog::merkle::NodeId],
    ) -> Result<Vec<isac_core::tlog::Hash>, StoreError> {
        let mut leaf = self
            .0
            .prepare_cached("SELECT hash FROM log_leaves WHERE leaf_index = ?1")?;
        let mut node = self
            .0
            .prepare_cached("SELECT hash FROM log_nodes WHERE level = ?1 AND idx = ?2")?;
        nodes
            .iter()
            .map(|n| {
                let found: Option<Vec<u8>> = if n.level == 0 {
                    leaf.query_row([n.index as i64], |r| r.get(0)).optional()?
                } else {
                    node.query_row(params![n.level, n.index as i64], |r| r.get(0))
                        .optional()?
                };
                let bytes = found.ok_or_else(|| {
                    StoreError::Sqlite(format!(
                        "log node level {} index {} is not stored",
                        n.level, n.index
                    ))
                })?;
                hash_from(&bytes)
            })
            .collect()
    }
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub size: u64,
    pub root: isac_core::tlog::Hash,
    /// The signed note, as served.
    pub note: String,
    pub created_at: i64,
}

pub(super) fn latest_checkpoint(conn: &Connection) -> Result<Option<CheckpointRow>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT size, root, note, created_at FROM log_checkpoints ORDER BY size DESC LIMIT 1",
        )?
        .query_row([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    row.map(|(size, root, note, created_at)| {
        Ok(CheckpointRow {
            size: size as u64,
            root: hash_from(&root)?,
            note,
            created_at,
        })
    })
    .transpose()
}

fn checkpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Vec<u8>, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn to_checkpoint(
    (size, root, note, created_at): (i64, Vec<u8>, String, i64),
) -> Result<CheckpointRow, StoreError> {
    Ok(CheckpointRow {
        size: size as u64,
        root: hash_from(&root)?,
        note,
        created_at,
    })
}

/// The stored checkpoint of exactly `size` leaves.
pub(super) fn checkpoint_at(
    conn: &Connection,
    size: u64,
) -> Result<Option<CheckpointRow>, StoreError> {
    conn.prepare_cached("SELECT size, root, note, created_at FROM log_checkpoints WHERE size = ?1")?
        .query_row([size as i64], checkpoint_row)
        .optional()?
        .map(to_checkpoint)
        .transpose()
}

/// The newest checkpoint every one of `witnesses` cosigned.
pub(super) fn newest_cosigned_by_all(
    conn: &Connection,
    witnesses: &[String],
) -> Result<Option<CheckpointRow>, StoreError> {
    let names = serde_json::to_string(witnesses)
        .map_err(|e| StoreError::Sqlite(format!("witness names: {e}")))?;
    conn.prepare_cached(
        "SELECT c.size, c.root, c.note, c.created_at FROM log_checkpoints c
         WHERE (SELECT COUNT(*) FROM log_cosignatures s
                WHERE s.size = c.size AND s.witness IN (SELECT value FROM json_each(?1))) = ?2
         ORDER BY c.size DESC LIMIT 1",
    )?
    .query_row(params![names, witnesses.len() as i64], checkpoint_row)
    .optional()?
    .map(to_checkpoint)
    .transpose()
}

/// Stores a witness's cosignature line of the checkpoint of `size` leaves
/// (a later one from the same witness for the same size replaces it).
pub(super) fn add_cosignature(
    conn: &Connection,
    size: u64,
    witness: &str,
    line: &str,
    created_at: i64,
) -> Result<(), StoreError> {
    if checkpoint_at(conn, size)?.is_none() {
        return Err(StoreError::Refused(format!(
            "no checkpoint of size {size} to cosign"
        )));
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO log_cosignatures (size, witness, line, created_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![size as i64, witness, line, created_at])?;
    Ok(())
}

/// The cosignature lines of the checkpoint of `size` leaves, by witness name.
pub(super) fn cosignatures(conn: &Connection, size: u64) -> Result<Vec<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT line FROM log_cosignatures WHERE size = ?1 ORDER BY witness")?
        .query_map([size as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// The largest checkpoint size `witness` cosigned, if any.
pub(super) fn latest_cosigned(conn: &Connection, witness: &str) -> Result<Option<u64>, StoreError> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT MAX(size) FROM log_cosignatures WHERE witness = ?1")?
        .query_row([witness], |r| r.get(0))?;
    Ok(n.map(|n| n as u64))
}

/// Stores the nodes a checkpoint integrated and the checkpoint itself, if
/// the latest checkpoint is still at `from_size` (one checkpointer wins).
pub(super) fn integrate_checkpoint(
    conn: &Connection,
    from_size: u64,
    nodes: &[(isac_core::tlog::merkle::NodeId, isac_core::tlog::Hash)],
    checkpoint: &CheckpointRow,
) -> Result<(), StoreError> {
    let latest = latest_checkpoint(conn)?.map_or(0, |c| c.size);
    if latest != from_size {
        return Err(StoreError::Conflict(format!(
            "the log moved from size {from_size} to {latest} meanwhile"
        )));
    }
    if checkpoint.size > log_leaf_count(conn)? || checkpoint.size <= from_size {
        return Err(StoreError::Refused(format!(
            "checkpoint size {} does not follow {from_size} within the stored leaves",
            checkpoint.size
        )));
    }
    let mut insert = conn
        .prepare_cached("INSERT OR IGNORE INTO log_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?;
    for (node, hash) in nodes.iter().filter(|(n, _)| n.level > 0) {
        insert.execute(params![node.level, node.index as i64, &hash[..]])?;
    }
    conn.prepare_cached(
        "INSERT INTO log_checkpoints (size, root, note, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        checkpoint.size as i64,
        &checkpoint.root[..],
        checkpoint.note,
        checkpoint.created_at
    ])?;
    Ok(())
}

/// The `added_us` of a statement committed now, after one added at
/// `last_added_us`: the commit clock in microseconds, made strictly
/// increasing by waiting for it to pass the last value, not by counting
/// (issue 15: a counter within the second let a member count the hidden
/// items between two it saw, from TAXII `date_added`). Only if the clock
/// stepped back more than a millisecond does it fall back to the last
/// value plus one, rather than stall the writer.
pub(super) fn commit_clock_us(last_added_us: i64, now_us: impl Fn() -> i64) -> i64 {
    loop {
        let now = now_us();
        if now > last_added_us {
            return now;
        }
        if last_added_us - now > 1_000 {
            tracing::warn!(
                behind_us = last_added_us - now,
                "the clock is behind the last date_added; stepping past it"
            );
            return last_added_us.saturating_add(1);
        }
        std::hint::spin_loop();
    }
}

/// The wall clock in microseconds since the epoch.
pub(super) fn system_clock_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// `added_us` for statements stored before schema 5, backfilled from their
/// arrival second.
pub(super) fn next_added_us(received_at: i64, last_added_us: i64) -> i64 {
    received_at
        .saturating_mul(1_000_000)
        .max(last_added_us.saturating_add(1))
}

/// Records an agent's acknowledged cursor (never moving it backwards).
pub(super) fn acknowledge(
    conn: &Connection,
    fingerprint: &str,
    seq: u64,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE agents SET acked_seq = max(acked_seq, ?2), acked_at = ?3 WHERE cert_fingerprint = ?1",
    )?
    .execute(params![fingerprint, seq as i64, now])?;
    Ok(())
}

// === sharing groups ===

pub(super) fn add_group(
    conn: &Connection,
    name: &str,
    members: &[String],
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    // `ORG@HUB` members are another hub's (cross-hub groups: the caller
    // checked HUB is a peer); the rest are members here.
    let (remote, members): (Vec<&String>, Vec<&String>) =
        members.iter().partition(|m| m.contains('@'));
    for m in &members {
        match member(conn, m)? {
            Some(row) if row.status != MemberStatus::Removed => {}
            _ => return Err(StoreError::NotFound(format!("no member `{m}`"))),
        }
    }
    let inserted = conn.execute(
        "INSERT INTO sharing_groups (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![name, now],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "group `{name}` already exists"
        )));
    }
    for m in &members {
        conn.execute(
            "INSERT OR IGNORE INTO group_members (group_name, org_id) VALUES (?1, ?2)",
            params![name, m],
        )?;
    }
    for m in &remote {
        conn.execute(
            "INSERT OR IGNORE INTO group_remote_members (group_name, member) VALUES (?1, ?2)",
            params![name, m],
        )?;
    }
    bump_epoch(conn)?;
    let all: Vec<&str> = members.iter().chain(&remote).map(|m| m.as_str()).collect();
    audit(conn, now, actor, "group.add", name, &all.join(","))
}

pub(super) fn remove_group(
    conn: &Connection,
    name: &str,
    actor: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let members = group_members(conn, name)?
        .ok_or_else(|| StoreError::NotFound(format!("no group `{name}`")))?;
    conn.execute("DELETE FROM group_members WHERE group_name = ?1", [name])?;
    conn.execute(
        "DELETE FROM group_remote_members WHERE group_name = ?1",
        [name],
    )?;
    conn.execute("DELETE FROM peer_groups WHERE group_name = ?1", [name])?;
    conn.execute("DELETE FROM sharing_groups WHERE name = ?1", [name])?;
    bump_epoch(conn)?;
    audit(conn, now, actor, "group.remove", name, &members.join(","))?;
    Ok(members)
}

pub(super) fn group_members(
    conn: &Connection,
    name: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sharing_groups WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT org_id FROM group_members WHERE group_name = ?1
             UNION SELECT member FROM group_remote_members WHERE group_name = ?1
             ORDER BY 1",
    )?;
    let rows = stmt
        .query_map([name], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(Some(rows))
}

pub(super) fn list_groups(conn: &Connection) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sharing_groups ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names
        .into_iter()
        .map(|n| {
            let m = group_members(conn, &n)?.unwrap_or_default();
            Ok((n, m))
        })
        .collect()
}

pub(super) fn groups_of(conn: &Connection, org: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT group_name FROM group_members WHERE org_id = ?1 ORDER BY group_name",
    )?;
    let rows = stmt
        .query_map([org], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(rows)
}

pub(super) fn person_exists(
    conn: &Connection,
    org: &str,
    person: &str,
) -> Result<bool, StoreError> {
    let v: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM people WHERE org_id = ?1 AND person_id = ?2",
            params![org, person],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.is_some())
}

// === retention ===

/// What `hub prune` removed (or would remove, on a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Statement ids whose latest revision expired before the cutoff.
    pub expired_ids: u64,
    /// Rows deleted: every revision of those ids, and the sightings and
    /// retractions that refer to them (transitively).
    pub rows: u64,
    /// Expired ids kept because a row of theirs is the newest statement
    /// (the head sequence and TAXII `date_added` never move back).
    pub kept_for_head: u64,
}

/// Deletes statements whose latest revision's `valid_until` is before
/// `cutoff`, with everything that refers to them, and remembers their ids.
pub(super) fn prune_expired(
    conn: &Connection,
    cutoff: i64,
    now: i64,
    dry_run: bool,
    actor: &str,
) -> Result<PruneReport, StoreError> {
    let max_seq: i64 = conn.query_row("SELECT COALESCE(max(seq), 0) FROM statements", [], |r| {
        r.get(0)
    })?;
    let candidates: Vec<String> = conn
        .prepare(
            "SELECT s.id FROM statements s
             WHERE s.valid_until IS NOT NULL AND s.valid_until < ?1 AND s.target_id IS NULL
               AND s.revision = (SELECT max(revision) FROM statements WHERE id = s.id)",
        )?
        .query_map([cutoff], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut report = PruneReport::default();
    let mut derived_of =
        conn.prepare_cached("SELECT DISTINCT id FROM statements WHERE target_id = ?1")?;
    let mut seqs_of = conn.prepare_cached("SELECT seq FROM statements WHERE id = ?1")?;
    for id in candidates {
        // The id and everything that refers to it, at any depth.
        let mut group = vec![id.clone()];
        let mut i = 0;
        while i < group.len() {
            let more: Vec<String> = derived_of
                .query_map([&group[i]], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for d in more {
                if !group.contains(&d) {
                    group.push(d);
                }
            }
            i += 1;
        }
        let mut seqs = Vec::new();
        for g in &group {
            seqs.extend(
                seqs_of
                    .query_map([g], |r| r.get::<_, i64>(0))?
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
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
            let source: Option<String> = conn
                .prepare_cached("SELECT source_org FROM statements WHERE id = ?1 LIMIT 1")?
                .query_row([g], |r| r.get(0))
                .optional()?;
            conn.prepare_cached("DELETE FROM statements WHERE id = ?1")?
                .execute([g])?;
            conn.prepare_cached("DELETE FROM stix_ids WHERE statement_id = ?1")?
                .execute([g])?;
            conn.prepare_cached(
                "INSERT OR IGNORE INTO pruned (id, pruned_at, source_org) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![g, now, source])?;
        }
    }
    if !dry_run && report.rows > 0 {
        audit(
            conn,
            now,
            actor,
            "prune",
            "statements",
            &format!(
                "expired before {cutoff}: {} ids, {} rows",
                report.expired_ids, report.rows
            ),
        )?;
    }
    Ok(report)
}

// === audit and counters ===

pub(super) fn audit(
    conn: &Connection,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![at, actor, action, target, detail])?;
    Ok(())
}

pub(super) fn bump_epoch(conn: &Connection) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE counters SET value = value + 1 WHERE name = 'epoch'",
        [],
    )?;
    Ok(())
}

pub(super) fn epoch(conn: &Connection) -> Result<u64, StoreError> {
    let v: i64 = conn.query_row("SELECT value FROM counters WHERE name = 'epoch'", [], |r| {
        r.get(0)
    })?;
    Ok(v as u64)
}

pub(super) fn directory_version(conn: &Connection) -> Result<u64, StoreError> {
    let v: i64 = conn.query_row(
        "SELECT value FROM counters WHERE name = 'directory_version'",
        [],
        |r| r.get(0),
    )?;
    Ok(v as u64)
}

pub(super) fn next_directory_version(conn: &Connection) -> Result<u64, StoreError> {
    conn.execute(
        "UPDATE counters SET value = value + 1 WHERE name = 'directory_version'",
        [],
    )?;
    let v: i64 = conn.query_row(
        "SELECT value FROM counters WHERE name = 'directory_version'",
        [],
        |r| r.get(0),
    )?;
    Ok(v as u64)
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: u64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

pub(super) fn audit_list(conn: &Connection, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT seq, at, actor, action, target, detail FROM audit ORDER BY seq DESC LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([limit], |r| {
            Ok(AuditRow {
                seq: r.get::<_, i64>(0)? as u64,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                detail: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

// === people ===

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub org_id: String,
    pub person_id: String,
    pub name: String,
    pub contact: String,
}

pub(super) fn add_person(
    conn: &Connection,
    p: &PersonRow,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    if member(conn, &p.org_id)?.is_none() {
        return Err(StoreError::NotFound(format!("no member `{}`", p.org_id)));
    }
    let inserted = conn.execute(
        "INSERT INTO people (org_id, person_id, name, contact, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO NOTHING",
        params![p.org_id, p.person_id, p.name, p.contact, now],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "person `{}/{}` already exists",
            p.org_id, p.person_id
        )));
    }
    audit(
        conn,
        now,
        actor,
        "person.add",
        &format!("{}/{}", p.org_id, p.person_id),
        &p.name,
    )
}

pub(super) fn list_people(
    conn: &Connection,
    org: Option<&str>,
) -> Result<Vec<PersonRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT org_id, person_id, name, contact FROM people
         WHERE ?1 IS NULL OR org_id = ?1 ORDER BY org_id, person_id",
    )?;
    let rows = stmt
        .query_map([org], |r| {
            Ok(PersonRow {
                org_id: r.get(0)?,
                person_id: r.get(1)?,
                name: r.get(2)?,
                contact: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn remove_person(
    conn: &Connection,
    org: &str,
    person: &str,
    actor: &str,
    now: i64,
) -> Result<PersonRow, StoreError> {
    let row = list_people(conn, Some(org))?
        .into_iter()
        .find(|p| p.person_id == person)
        .ok_or_else(|| StoreError::NotFound(format!("no person `{org}/{person}`")))?;
    conn.execute(
        "DELETE FROM people WHERE org_id = ?1 AND person_id = ?2",
        params![org, person],
    )?;
    audit(
        conn,
        now,
        actor,
        "person.remove",
        &format!("{org}/{person}"),
        "",
    )?;
    Ok(row)
}

// === member status ===

/// Suspends, resumes or removes a member. Removing retires the member's
/// keys (its past statements stay verifiable) and can't be undone.
pub(super) fn set_member_status(
    conn: &Connection,
    org: &str,
    change: StatusChange,
    actor: &str,
    now: i64,
) -> Result<MemberRow, StoreError> {
    let m = member(conn, org)?.ok_or_else(|| StoreError::NotFound(format!("no member `{org}`")))?;
    let new_status = change.apply(m.status).ok_or_else(|| {
        StoreError::Refused(format!(
            "member `{org}` was removed; add it again under a new id"
        ))
    })?;
    conn.execute(
        "UPDATE members SET status = ?2 WHERE org_id = ?1",
        params![org, new_status.as_str()],
    )?;
    if new_status == MemberStatus::Removed {
        // From the next whole second, as for rotation: what was signed
        // before the removal stays verifiable.
        conn.execute(
            "UPDATE signing_keys SET retired_at = ?2 WHERE org_id = ?1 AND retired_at IS NULL AND revoked_at IS NULL",
            params![org, now + 1],
        )?;
        conn.execute(
            "UPDATE enrollment_tokens SET used_at = ?2 WHERE org_id = ?1 AND used_at IS NULL",
            params![org, now],
        )?;
    }
    bump_epoch(conn)?;
    audit(
        conn,
        now,
        actor,
        &format!("member.{change}"),
        org,
        &format!("{} -> {new_status}", m.status),
    )?;
    Ok(MemberRow {
        status: new_status,
        ..m
    })
}

/// Reads a text column that holds one of a fixed set of words.
fn word<T>(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = r.get(idx)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) fn head_sequence(conn: &Connection) -> Result<u64, StoreError> {
    let h: Option<i64> = conn.query_row("SELECT max(seq) FROM statements", [], |r| r.get(0))?;
    Ok(h.unwrap_or(0) as u64)
}

// === members ===

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub org_id: String,
    pub name: String,
    pub role: Role,
    pub status: MemberStatus,
    pub created_at: i64,
}

pub(super) fn add_member(conn: &Connection, m: &MemberRow, actor: &str) -> Result<(), StoreError> {
    let inserted = conn.execute(
        "INSERT INTO members (org_id, name, role, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(org_id) DO NOTHING",
        params![
            m.org_id,
            m.name,
            m.role.as_str(),
            m.status.as_str(),
            m.created_at
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "member `{}` already exists; to enroll another agent for it run `hub member token {}`",
            m.org_id, m.org_id
        )));
    }
    audit(
        conn,
        m.created_at,
        actor,
        "member.add",
        &m.org_id,
        &format!("role {}", m.role),
    )
}

fn member_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MemberRow> {
    Ok(MemberRow {
        org_id: r.get(0)?,
        name: r.get(1)?,
        role: word(r, 2)?,
        status: word(r, 3)?,
        created_at: r.get(4)?,
    })
}

pub(super) fn member(conn: &Connection, org_id: &str) -> Result<Option<MemberRow>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT org_id, name, role, status, created_at FROM members WHERE org_id = ?1",
            [org_id],
            member_from_row,
        )
        .optional()?)
}

/// Members with their count of active agents and signing keys.
pub(super) fn list_members(conn: &Connection) -> Result<Vec<(MemberRow, u32, u32)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT m.org_id, m.name, m.role, m.status, m.created_at,
            (SELECT count(*) FROM agents a WHERE a.org_id = m.org_id AND a.superseded_at IS NULL),
            (SELECT count(*) FROM signing_keys k WHERE k.org_id = m.org_id AND k.revoked_at IS NULL)
         FROM members m ORDER BY m.org_id",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((member_from_row(r)?, r.get(5)?, r.get(6)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

// === enrollment ===

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub token_hash: String,
    pub org_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub(super) fn add_token(conn: &Connection, t: &TokenRecord, actor: &str) -> Result<(), StoreError> {
    match member(conn, &t.org_id)? {
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
        conn,
        t.created_at,
        actor,
        "token.issue",
        &t.org_id,
        &format!("expires {}", isac_core::time::format_rfc3339(t.expires_at)),
    )?;
    conn.execute(
        "INSERT INTO enrollment_tokens (token_hash, org_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![t.token_hash, t.org_id, t.created_at, t.expires_at],
    )?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct EnrollRecord {
    pub token_hash: String,
    pub org_id: String,
    pub now: i64,
    pub agent_name: String,
    pub cert_fingerprint: String,
    pub cert_pem: String,
    pub cert_not_after: i64,
    pub key_id: String,
    pub public_key_der: Vec<u8>,
}

pub(super) fn enroll(conn: &Connection, e: &EnrollRecord) -> Result<MemberRow, StoreError> {
    let token: Option<(String, i64, Option<i64>)> = conn
        .query_row(
            "SELECT org_id, expires_at, used_at FROM enrollment_tokens WHERE token_hash = ?1",
            [&e.token_hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((org_id, expires_at, used_at)) = token else {
        return Err(StoreError::Token(
            "enrollment token is not known to this hub; check you copied all of it, or ask the hub operator for a new one".into(),
        ));
    };
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
    let member = member(conn, &org_id)?
        .ok_or_else(|| StoreError::Token(format!("member `{org_id}` no longer exists")))?;
    if member.status != MemberStatus::Active {
        return Err(StoreError::Token(format!(
            "member `{org_id}` is {}",
            member.status
        )));
    }
    // A signing key names exactly one organisation.
    let key_owner: Option<String> = conn
        .query_row(
            "SELECT org_id FROM signing_keys WHERE key_id = ?1",
            [&e.key_id],
            |r| r.get(0),
        )
        .optional()?;
    match key_owner {
        Some(owner) if owner != org_id => return Err(StoreError::Conflict(
            "this signing key is already registered to another organisation; generate a new one"
                .into(),
        )),
        Some(_) => {}
        None => {
            conn.execute(
                "INSERT INTO signing_keys (key_id, org_id, public_key, valid_from, created_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![e.key_id, org_id, e.public_key_der, e.now],
            )?;
        }
    }
    conn.execute(
        "UPDATE enrollment_tokens SET used_at = ?2, used_by_agent = ?3 WHERE token_hash = ?1",
        params![e.token_hash, e.now, e.agent_name],
    )?;
    // Re-enrolling an agent name replaces its certificate; the old one stops working.
    conn.execute(
        "UPDATE agents SET superseded_at = ?3 WHERE org_id = ?1 AND agent_name = ?2 AND superseded_at IS NULL",
        params![org_id, e.agent_name, e.now],
    )?;
    conn.execute(
        "INSERT INTO agents (cert_fingerprint, org_id, agent_name, cert_pem, issued_at, not_after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![e.cert_fingerprint, org_id, e.agent_name, e.cert_pem, e.now, e.cert_not_after],
    )?;
    bump_epoch(conn)?;
    audit(
        conn,
        e.now,
        &format!("org:{org_id}/agent:{}", e.agent_name),
        "agent.enroll",
        &org_id,
        &format!("cert {} key {}", e.cert_fingerprint, e.key_id),
    )?;
    Ok(member)
}

/// A renewed certificate for an existing agent. The old one keeps working
/// until it expires, so a renewing daemon never drops its streams.
pub(super) fn renew_agent(
    conn: &Connection,
    old_fingerprint: &str,
    new_fingerprint: &str,
    cert_pem: &str,
    not_after: i64,
    now: i64,
) -> Result<(), StoreError> {
    let agent = agent_by_cert(conn, old_fingerprint)?
        .ok_or_else(|| StoreError::NotFound("unknown agent".into()))?;
    conn.execute(
        "INSERT INTO agents (cert_fingerprint, org_id, agent_name, cert_pem, issued_at, not_after) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![new_fingerprint, agent.org_id, agent.agent_name, cert_pem, now, not_after],
    )?;
    audit(
        conn,
        now,
        &format!("org:{}/agent:{}", agent.org_id, agent.agent_name),
        "agent.renew",
        &agent.org_id,
        &format!("cert {new_fingerprint} replaces {old_fingerprint}"),
    )
}

#[derive(Debug, Clone)]
pub struct AgentDetail {
    pub agent_name: String,
    pub cert_fingerprint: String,
    pub issued_at: i64,
    pub not_after: i64,
    pub superseded_at: Option<i64>,
    pub acked_seq: u64,
    pub acked_at: Option<i64>,
}

pub(super) fn agents_of(conn: &Connection, org: &str) -> Result<Vec<AgentDetail>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT agent_name, cert_fingerprint, issued_at, not_after, superseded_at, acked_seq, acked_at FROM agents
         WHERE org_id = ?1 ORDER BY agent_name, issued_at",
    )?;
    let rows = stmt
        .query_map([org], |r| {
            Ok(AgentDetail {
                agent_name: r.get(0)?,
                cert_fingerprint: r.get(1)?,
                issued_at: r.get(2)?,
                not_after: r.get(3)?,
                superseded_at: r.get(4)?,
                acked_seq: r.get::<_, i64>(5)? as u64,
                acked_at: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[derive(Debug, Clone)]
pub struct AgentRow {
    pub org_id: String,
    pub agent_name: String,
    pub role: Role,
    pub member_status: MemberStatus,
    pub superseded: bool,
}

pub(super) fn agent_by_cert(conn: &Connection, fp: &str) -> Result<Option<AgentRow>, StoreError> {
    // Every call a member makes starts here: prepared once per connection.
    Ok(conn
        .prepare_cached(
            "SELECT a.org_id, a.agent_name, m.role, m.status, a.superseded_at IS NOT NULL
             FROM agents a JOIN members m ON m.org_id = a.org_id WHERE a.cert_fingerprint = ?1",
        )?
        .query_row([fp], |r| {
            Ok(AgentRow {
                org_id: r.get(0)?,
                agent_name: r.get(1)?,
                role: word(r, 2)?,
                member_status: word(r, 3)?,
                superseded: r.get(4)?,
            })
        })
        .optional()?)
}

// === keys ===

#[derive(Debug, Clone)]
pub struct KeyRow {
    pub key_id: String,
    pub org_id: String,
    pub org_name: String,
    pub public_key_der: Vec<u8>,
    pub valid_from: i64,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl KeyRow {
    pub fn state(&self) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.retired_at.is_some() {
            "retired"
        } else {
            "active"
        }
    }
}

const KEY_SELECT: &str =
    "SELECT k.key_id, k.org_id, m.name, k.public_key, k.valid_from, k.revoked_at, k.retired_at
     FROM signing_keys k JOIN members m ON m.org_id = k.org_id";

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        key_id: r.get(0)?,
        org_id: r.get(1)?,
        org_name: r.get(2)?,
        public_key_der: r.get(3)?,
        valid_from: r.get(4)?,
        revoked_at: r.get(5)?,
        retired_at: r.get(6)?,
    })
}

pub(super) fn keys_of(conn: &Connection, org: &str) -> Result<Vec<KeyRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{KEY_SELECT} WHERE k.org_id = ?1 ORDER BY k.created_at"
    ))?;
    let rows = stmt
        .query_map([org], key_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Compromise: statements created at or after `at` are refused everywhere.
/// An earlier revocation time is never moved later.
pub(super) fn revoke_key(
    conn: &Connection,
    key_id: &str,
    at: i64,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<KeyRow, StoreError> {
    let existing =
        key(conn, key_id)?.ok_or_else(|| StoreError::NotFound(format!("no key `{key_id}`")))?;
    let effective = existing.revoked_at.map_or(at, |prev| prev.min(at));
    conn.execute(
        "UPDATE signing_keys SET revoked_at = ?2, revocation_reason = ?3 WHERE key_id = ?1",
        params![key_id, effective, reason],
    )?;
    bump_epoch(conn)?;
    audit(
        conn,
        now,
        actor,
        "key.revoke",
        key_id,
        &format!(
            "org {} effective {} reason: {reason}",
            existing.org_id,
            isac_core::time::format_rfc3339(effective)
        ),
    )?;
    key(conn, key_id)?.ok_or_else(|| StoreError::NotFound(format!("no key `{key_id}`")))
}

/// Registers `new_key` for `org` and retires `current` at `now`.
pub(super) fn rotate_key(
    conn: &Connection,
    org: &str,
    current: &str,
    new_key_id: &str,
    new_spki: &[u8],
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    let cur = key(conn, current)?;
    match cur {
        Some(k) if k.org_id == org && k.state() == "active" => {}
        Some(k) if k.org_id == org => {
            return Err(StoreError::Refused(format!(
                "key {current} is {}; rotate from your active key",
                k.state()
            )))
        }
        // Another org's key, or none: the same answer.
        _ => {
            return Err(StoreError::Refused(format!(
                "key {current} is not one of your active keys"
            )))
        }
    }
    if key(conn, new_key_id)?.is_some() {
        return Err(StoreError::Conflict(
            "the new key is already registered; generate a fresh one".into(),
        ));
    }
    conn.execute(
        "INSERT INTO signing_keys (key_id, org_id, public_key, valid_from, created_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![new_key_id, org, new_spki, now],
    )?;
    conn.execute(
        "UPDATE signing_keys SET retired_at = ?2 WHERE key_id = ?1",
        params![current, now],
    )?;
    bump_epoch(conn)?;
    audit(
        conn,
        now,
        actor,
        "key.rotate",
        org,
        &format!("{new_key_id} replaces {current}"),
    )
}

pub(super) fn key(conn: &Connection, key_id: &str) -> Result<Option<KeyRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{KEY_SELECT} WHERE k.key_id = ?1"))?
        .query_row([key_id], key_from_row)
        .optional()?)
}

pub(super) fn keys(conn: &Connection) -> Result<Vec<KeyRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{KEY_SELECT} ORDER BY k.org_id, k.created_at"))?;
    let rows = stmt
        .query_map([], key_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

// === statements ===

/// A verified statement ready to store. `payload` is the exact signed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStatement {
    pub id: String,
    pub revision: u32,
    pub source_org: String,
    pub tlp: String,
    pub audience_json: String,
    pub kind: String,
    pub created_at: i64,
    pub received_at: i64,
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub key_id: String,
    pub signature: Vec<u8>,
    pub digest: String,
    /// Clear audience openings (JSON), for handing each recipient its own.
    pub openings_json: String,
    /// Members of each named group when published (JSON object).
    pub group_snapshot_json: String,
    /// For sightings and retractions: the item they refer to.
    pub target_id: Option<String>,
    /// Observable value and title, for search.
    pub value: String,
    pub title: String,
    pub sighting_count: Option<u32>,
    /// The hub-signed anonymous version delivered to everyone but the source.
    pub anonymous: Option<AnonymousVersion>,
    /// Facts for subscription filters and expiry.
    pub facts: StoredFacts,
    /// Ids of the STIX objects this statement becomes (TAXII lookups).
    pub stix_ids: Vec<String>,
    /// Other statement ids it names (target, `related`).
    pub references: Vec<String>,
    /// Federation (issue 20): set for an item received from a peer hub, its
    /// provenance as this hub holds it (canonical JSON, this hub last).
    /// `source_org` is then `author@origin-hub`, never a local member.
    pub provenance: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredFacts {
    pub ecosystem: Option<String>,
    pub severity: String,
    pub confidence: u8,
    pub tags_json: String,
    pub valid_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonymousVersion {
    pub payload: Vec<u8>,
    pub key_id: String,
    pub signature: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct StoredStatement {
    pub seq: u64,
    pub id: String,
    pub revision: u32,
    pub source_org: String,
    pub tlp: String,
    pub audience_json: String,
    pub received_at: i64,
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub key_id: String,
    pub signature: Vec<u8>,
    pub openings_json: String,
    pub group_snapshot_json: String,
    pub target_id: Option<String>,
    pub sighting_count: Option<u32>,
    pub anonymous: Option<AnonymousVersion>,
    pub kind: String,
    pub facts: StoredFacts,
    /// Digest of the source's signed envelope.
    pub digest: String,
    /// TAXII `date_added`, microseconds since the epoch; increases with `seq`.
    pub added_us: i64,
    /// Its position in the transparency log.
    pub leaf_index: Option<u64>,
    /// Federation (issue 20): the provenance of an item received from a
    /// peer hub (see `NewStatement::provenance`); `None` for local items.
    pub provenance: Option<Vec<u8>>,
}

pub(super) fn append_statement(
    conn: &Connection,
    s: &NewStatement,
) -> Result<Appended, StoreError> {
    // Everything stored under this id so far: same source, revisions only grow.
    let mut stmt = conn.prepare_cached(
        "SELECT seq, revision, source_org, digest, added_us FROM statements WHERE id = ?1 ORDER BY revision",
    )?;
    let existing = stmt
        .query_map([&s.id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let taken = || {
        // One answer for an id another member holds, referenced or pruned,
        // whatever that item is and whoever may see it: it tells a member
        // nothing it could not see.
        StoreError::Conflict(format!(
            "statement id {} is already taken by another statement; generate a new id",
            s.id
        ))
    };
    if let Some((_, _, owner, _, _)) = existing.first() {
        if owner != &s.source_org {
            return Err(taken());
        }
    }
    if let Some((seq, _, _, digest, added_us)) = existing.iter().find(|e| e.1 == s.revision) {
        if digest == &s.digest {
            return Ok(Appended {
                seq: *seq as u64,
                duplicate: true,
                added_us: *added_us,
                leaf_index: leaf_index_of(conn, *seq as u64)?,
            });
        }
        tracing::warn!(id = %s.id, revision = s.revision, source = %s.source_org,
            "equivocation: same id and revision signed with different content");
        return Err(StoreError::Conflict(format!(
            "statement {} revision {} was already published with different content; publish a new revision instead",
            s.id, s.revision
        )));
    }
    if existing.is_empty() {
        let pruned: Option<Option<String>> = conn
            .prepare_cached("SELECT source_org FROM pruned WHERE id = ?1")?
            .query_row([&s.id], |r| r.get(0))
            .optional()?;
        match pruned {
            Some(Some(owner)) if owner == s.source_org => {
                return Err(StoreError::Refused(format!(
                    "statement {} expired and was pruned from this hub; it is not accepted again (publish a new statement)",
                    s.id
                )))
            }
            Some(_) => return Err(taken()),
            None => {}
        }
        let referenced_by_others: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM statement_refs WHERE id = ?1 AND source_org != ?2)",
            )?
            .query_row(params![&s.id, &s.source_org], |r| r.get(0))?;
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
    if let Some((_, latest, _, _, _)) = existing.last() {
        if s.revision < *latest {
            return Err(StoreError::Refused(format!(
                "statement {} is already at revision {latest}; revision {} is older and is refused",
                s.id, s.revision
            )));
        }
    }
    let last_added: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(added_us), 0) FROM statements")?
        .query_row([], |r| r.get(0))?;
    let added_us = commit_clock_us(last_added, system_clock_us);
    let mut insert = conn.prepare_cached(
        "INSERT INTO statements (id, revision, source_org, tlp, audience, kind, created_at, received_at,
            payload_type, payload, key_id, signature, digest, openings, group_snapshot, target_id,
            value, title, sighting_count, anon_payload, anon_key_id, anon_signature,
            ecosystem, severity, confidence, tags, valid_until, added_us, provenance)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22,
            ?23, ?24, ?25, ?26, ?27, ?28, ?29)",
    )?;
    let anon = s.anonymous.as_ref();
    insert.execute(params![
        s.id,
        s.revision,
        s.source_org,
        s.tlp,
        s.audience_json,
        s.kind,
        s.created_at,
        s.received_at,
        s.payload_type,
        s.payload,
        s.key_id,
        s.signature,
        s.digest,
        s.openings_json,
        s.group_snapshot_json,
        s.target_id,
        s.value,
        s.title,
        s.sighting_count,
        anon.map(|a| &a.payload),
        anon.map(|a| &a.key_id),
        anon.map(|a| &a.signature),
        s.facts.ecosystem,
        s.facts.severity,
        s.facts.confidence,
        s.facts.tags_json,
        s.facts.valid_until,
        added_us,
        s.provenance
    ])?;
    let seq = conn.last_insert_rowid() as u64;
    // In this transaction: no statement is stored without its leaf.
    let leaf = LeafSource {
        payload_type: s.payload_type.clone(),
        payload: s.payload.clone(),
        key_id: s.key_id.clone(),
        signature: s.signature.clone(),
        anonymous: s.anonymous.clone(),
    };
    let leaf_index = append_leaf(conn, seq, &leaf.leaf_hash())?;
    index_stix_ids(conn, &s.stix_ids, &s.id)?;
    index_refs(conn, &s.references, &s.source_org)?;
    Ok(Appended {
        seq,
        duplicate: false,
        added_us,
        leaf_index: Some(leaf_index),
    })
}

fn index_refs(conn: &Connection, ids: &[String], source_org: &str) -> Result<(), StoreError> {
    let mut insert = conn
        .prepare_cached("INSERT OR IGNORE INTO statement_refs (id, source_org) VALUES (?1, ?2)")?;
    for id in ids {
        insert.execute(params![id, source_org])?;
    }
    Ok(())
}

fn index_stix_ids(conn: &Connection, stix_ids: &[String], id: &str) -> Result<(), StoreError> {
    let mut insert = conn
        .prepare_cached("INSERT OR IGNORE INTO stix_ids (stix_id, statement_id) VALUES (?1, ?2)")?;
    for stix_id in stix_ids {
        insert.execute(params![stix_id, id])?;
    }
    Ok(())
}

/// The statement a STIX object id was made from, if any.
pub(super) fn statement_for_stix_id(
    conn: &Connection,
    stix_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT statement_id FROM stix_ids WHERE stix_id = ?1")?
        .query_row([stix_id], |r| r.get(0))
        .optional()?)
}

/// Where a statement landed: its sequence, whether it was already stored
/// (an idempotent re-send), and its TAXII `date_added` in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    pub seq: u64,
    pub duplicate: bool,
    pub added_us: i64,
    pub leaf_index: Option<u64>,
}

const STATEMENT_SELECT: &str =
    "SELECT seq, id, revision, source_org, tlp, audience, received_at, payload_type,
    payload, key_id, signature, openings, group_snapshot, target_id, sighting_count,
    anon_payload, anon_key_id, anon_signature, kind, ecosystem, severity, confidence, tags,
    valid_until, digest, added_us,
    (SELECT leaf_index FROM log_leaves WHERE log_leaves.seq = statements.seq), provenance FROM statements";

fn statement_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredStatement> {
    let anon_payload: Option<Vec<u8>> = r.get(15)?;
    let anonymous = match anon_payload {
        Some(payload) => Some(AnonymousVersion {
            payload,
            key_id: r.get(16)?,
            signature: r.get(17)?,
        }),
        None => None,
    };
    Ok(StoredStatement {
        seq: r.get::<_, i64>(0)? as u64,
        id: r.get(1)?,
        revision: r.get(2)?,
        source_org: r.get(3)?,
        tlp: r.get(4)?,
        audience_json: r.get(5)?,
        received_at: r.get(6)?,
        payload_type: r.get(7)?,
        payload: r.get(8)?,
        key_id: r.get(9)?,
        signature: r.get(10)?,
        openings_json: r.get(11)?,
        group_snapshot_json: r.get(12)?,
        target_id: r.get(13)?,
        sighting_count: r.get(14)?,
        anonymous,
        kind: r.get(18)?,
        facts: StoredFacts {
            ecosystem: r.get(19)?,
            severity: r.get(20)?,
            confidence: r.get::<_, i64>(21)?.clamp(0, 100) as u8,
            tags_json: r.get(22)?,
            valid_until: r.get(23)?,
        },
        digest: r.get(24)?,
        added_us: r.get(25)?,
        leaf_index: r.get::<_, Option<i64>>(26)?.map(|i| i as u64),
        provenance: r.get(27)?,
    })
}

pub(super) fn statements_after(
    conn: &Connection,
    after: u64,
    limit: u32,
) -> Result<Vec<StoredStatement>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{STATEMENT_SELECT} WHERE seq > ?1 ORDER BY seq LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![after as i64, limit], statement_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Every stored revision of `id`, newest first.
pub(super) fn revisions(conn: &Connection, id: &str) -> Result<Vec<StoredStatement>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{STATEMENT_SELECT} WHERE id = ?1 ORDER BY revision DESC"
    ))?;
    let rows = stmt
        .query_map([id], statement_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Candidates for a search, newest first; the caller filters by entitlement.
pub(super) fn search(
    conn: &Connection,
    query: &str,
    limit: u32,
) -> Result<Vec<StoredStatement>, StoreError> {
    let escaped = query
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let pattern = format!("%{escaped}%");
    let mut stmt = conn.prepare_cached(&format!(
        "{STATEMENT_SELECT} WHERE value LIKE ?1 ESCAPE '\\' OR title LIKE ?1 ESCAPE '\\' ORDER BY seq DESC LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![pattern, limit], statement_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Sightings stored against `target_id`.
pub(super) fn sightings_of(
    conn: &Connection,
    target_id: &str,
) -> Result<Vec<StoredStatement>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{STATEMENT_SELECT} WHERE target_id = ?1 AND kind = 'sighting' ORDER BY seq"
    ))?;
    let rows = stmt
        .query_map([target_id], statement_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn statement_count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM statements", [], |r| r.get(0))?;
    Ok(n as u64)
}

/// Counts for `hub status`.
#[derive(Debug, Clone, Default)]
pub struct StatusCounts {
    pub head: u64,
    pub statements: u64,
    pub members_by_status: Vec<(String, u64)>,
    pub keys_by_state: Vec<(String, u64)>,
    pub agents: u64,
    pub groups: u64,
    pub people: u64,
    pub directory_version: u64,
    pub statements_by_tlp: Vec<(String, u64)>,
}

pub(super) fn status_counts(conn: &Connection) -> Result<StatusCounts, StoreError> {
    let one = |sql: &str| -> Result<u64, StoreError> {
        Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
    };
    let grouped = |sql: &str| -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    };
    Ok(StatusCounts {
        head: head_sequence(conn)?,
        statements: one("SELECT count(*) FROM statements")?,
        members_by_status: grouped("SELECT status, count(*) FROM members GROUP BY status ORDER BY status")?,
        keys_by_state: grouped(
            "SELECT CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN retired_at IS NOT NULL THEN 'retired' ELSE 'active' END AS state,
                count(*) FROM signing_keys GROUP BY state ORDER BY state",
        )?,
        agents: one("SELECT count(*) FROM agents WHERE superseded_at IS NULL")?,
        groups: one("SELECT count(*) FROM sharing_groups")?,
        people: one("SELECT count(*) FROM people")?,
        directory_version: one("SELECT value FROM counters WHERE name = 'directory_version'")?,
        statements_by_tlp: grouped("SELECT tlp, count(*) FROM statements GROUP BY tlp ORDER BY tlp")?,
    })
}

// === TAXII ===

/// The cursor just before the first statement added after `added_us`.
pub(super) fn seq_at_added(conn: &Connection, added_us: i64) -> Result<u64, StoreError> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT MAX(seq) FROM statements WHERE added_us <= ?1")?
        .query_row([added_us], |r| r.get(0))?;
    Ok(seq.unwrap_or(0) as u64)
}

/// Every revision of each of `ids`, and every retraction of them: what may
/// supersede a version the caller was about to be shown.
pub(super) fn versions_of(
    conn: &Connection,
    ids: &[String],
) -> Result<Vec<StoredStatement>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids_json = serde_json::to_string(ids).map_err(|e| StoreError::Sqlite(e.to_string()))?;
    let mut stmt = conn.prepare_cached(&format!(
        "{STATEMENT_SELECT} WHERE id IN (SELECT value FROM json_each(?1))
         UNION ALL
         {STATEMENT_SELECT} WHERE target_id IN (SELECT value FROM json_each(?1)) AND kind = 'retraction'"
    ))?;
    let rows = stmt
        .query_map([ids_json], statement_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The statement a STIX object id was made from, with every revision of it
/// and its retractions.
pub(super) fn versions_of_stix_id(
    conn: &Connection,
    stix_id: &str,
) -> Result<(Option<String>, Vec<StoredStatement>), StoreError> {
    let Some(id) = statement_for_stix_id(conn, stix_id)? else {
        return Ok((None, Vec::new()));
    };
    let rows = versions_of(conn, std::slice::from_ref(&id))?;
    Ok((Some(id), rows))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub username: String,
    pub org_id: String,
    pub person_id: Option<String>,
    pub label: String,
    pub secret_sha256: String,
    pub can_write: bool,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

const API_KEY_SELECT: &str = "SELECT username, org_id, person_id, label, secret_sha256, can_write,
    created_at, revoked_at, last_used_at FROM api_keys";

fn api_key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        username: r.get(0)?,
        org_id: r.get(1)?,
        person_id: r.get(2)?,
        label: r.get(3)?,
        secret_sha256: r.get(4)?,
        can_write: r.get(5)?,
        created_at: r.get(6)?,
        revoked_at: r.get(7)?,
        last_used_at: r.get(8)?,
    })
}

pub(super) fn add_api_key(conn: &Connection, k: &ApiKeyRow, actor: &str) -> Result<(), StoreError> {
    match member(conn, &k.org_id)? {
        Some(m) if m.status != MemberStatus::Removed => {}
        _ => return Err(StoreError::NotFound(format!("no member `{}`", k.org_id))),
    }
    if let Some(p) = &k.person_id {
        if !person_exists(conn, &k.org_id, p)? {
            return Err(StoreError::NotFound(format!(
                "no person `{p}` in `{}`; add them first with `hub person add {} {p} ...`",
                k.org_id, k.org_id
            )));
        }
    }
    conn.execute(
        "INSERT INTO api_keys (username, org_id, person_id, label, secret_sha256, can_write, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            k.username,
            k.org_id,
            k.person_id,
            k.label,
            k.secret_sha256,
            k.can_write,
            k.created_at
        ],
    )?;
    let person = k.person_id.as_deref().unwrap_or("-");
    audit(
        conn,
        k.created_at,
        actor,
        "api-key.add",
        &k.org_id,
        &format!(
            "{} person {person} write {} label {}",
            k.username, k.can_write, k.label
        ),
    )
}

pub(super) fn api_key(conn: &Connection, username: &str) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{API_KEY_SELECT} WHERE username = ?1"))?
        .query_row([username], api_key_from_row)
        .optional()?)
}

pub(super) fn list_api_keys(
    conn: &Connection,
    org: Option<&str>,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "{API_KEY_SELECT} WHERE ?1 IS NULL OR org_id = ?1 ORDER BY org_id, created_at, username"
    ))?;
    let rows = stmt
        .query_map([org], api_key_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn revoke_api_key(
    conn: &Connection,
    username: &str,
    actor: &str,
    now: i64,
) -> Result<ApiKeyRow, StoreError> {
    let key = api_key(conn, username)?
        .ok_or_else(|| StoreError::NotFound(format!("no API key `{username}`")))?;
    if key.revoked_at.is_some() {
        return Err(StoreError::Refused(format!(
            "API key `{username}` is already revoked"
        )));
    }
    conn.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE username = ?1",
        params![username, now],
    )?;
    audit(conn, now, actor, "api-key.revoke", &key.org_id, username)?;
    Ok(key)
}

pub(super) fn touch_api_key(conn: &Connection, username: &str, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE api_keys SET last_used_at = ?2 WHERE username = ?1")?
        .execute(params![username, now])?;
    Ok(())
}

/// A statement a TAXII submission became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxiiWrite {
    pub org_id: String,
    pub stix_id: String,
    pub version: String,
    pub statement_id: String,
    pub tlp: String,
    pub created_at: i64,
}

/// Statements `org`'s submissions of `stix_id` became, every version.
pub(super) fn taxii_writes_of(
    conn: &Connection,
    org: &str,
    stix_id: &str,
) -> Result<Vec<TaxiiWrite>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT org_id, stix_id, version, statement_id, tlp, created_at FROM taxii_writes
         WHERE org_id = ?1 AND stix_id = ?2 ORDER BY created_at, statement_id",
    )?;
    let rows = stmt
        .query_map(params![org, stix_id], |r| {
            Ok(TaxiiWrite {
                org_id: r.get(0)?,
                stix_id: r.get(1)?,
                version: r.get(2)?,
                statement_id: r.get(3)?,
                tlp: r.get(4)?,
                created_at: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn record_taxii_writes(
    conn: &Connection,
    rows: &[TaxiiWrite],
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO taxii_writes (org_id, stix_id, version, statement_id, tlp, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for w in rows {
        insert.execute(params![
            w.org_id,
            w.stix_id,
            w.version,
            w.statement_id,
            w.tlp,
            w.created_at
        ])?;
    }
    Ok(())
}

pub(super) fn save_taxii_status(
    conn: &Connection,
    id: &str,
    org: &str,
    now: i64,
    body: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO taxii_status (id, org_id, created_at, body) VALUES (?1, ?2, ?3, ?4)",
        params![id, org, now, body],
    )?;
    Ok(())
}

/// A status resource of `org` (another org's is "not found").
pub(super) fn taxii_status(
    conn: &Connection,
    id: &str,
    org: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT body FROM taxii_status WHERE id = ?1 AND org_id = ?2")?
        .query_row(params![id, org], |r| r.get(0))
        .optional()?)
}

#[cfg(test)]
mod clock_tests {
    use super::commit_clock_us;
    use std::cell::Cell;

    #[test]
    fn date_added_is_the_clock_waited_past_the_last_value_never_a_count() {
        // A clock that reads the same microsecond three times, then moves:
        // the result is the moved clock, not last + 1.
        let reads = Cell::new(0);
        let clock = || {
            reads.set(reads.get() + 1);
            if reads.get() < 4 {
                5_000_000
            } else {
                5_000_007
            }
        };
        assert_eq!(commit_clock_us(5_000_000, clock), 5_000_007);
        assert_eq!(commit_clock_us(4_000_000, || 5_000_000), 5_000_000);
        // A clock stepped back by seconds does not stall the writer.
        assert_eq!(commit_clock_us(9_000_000, || 5_000_000), 9_000_001);
    }
}

#[cfg(test)]
mod log_migration_tests {
    use super::*;
    use crate::store::log_tests::statement;

    fn leaves(conn: &Connection) -> Vec<(i64, i64, Vec<u8>)> {
        conn.prepare("SELECT leaf_index, seq, hash FROM log_leaves ORDER BY leaf_index")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn schema_9_backfills_one_leaf_per_existing_statement_in_hub_order() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("hub.db")).unwrap();
        migrate(&conn).unwrap();
        for n in 0..9 {
            append_statement(&conn, &statement(n, n % 4 == 1)).unwrap();
        }
        let appended = leaves(&conn);
        assert_eq!(appended.len(), 9);
        assert!(appended.iter().enumerate().all(|(i, l)| l.0 == i as i64));
        // The same database as a schema-8 hub left it (no log tables), with
        // a gap in `seq` where a statement was pruned.
        conn.execute_batch(
            "DROP TABLE log_leaves; DROP TABLE log_nodes; DROP TABLE log_checkpoints; DROP TABLE log_cosignatures;
             DROP TABLE peer_links; DROP TABLE federated_items;
             DROP TABLE group_remote_members; DROP TABLE peer_groups; DROP TABLE origin_directories;
             ALTER TABLE statements DROP COLUMN provenance;
             DELETE FROM statements WHERE seq = 4;
             PRAGMA user_version = 8;",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let backfilled = leaves(&conn);
        let expected: Vec<(i64, i64, Vec<u8>)> = appended
            .into_iter()
            .filter(|l| l.1 != 4)
            .enumerate()
            .map(|(i, (_, seq, hash))| (i as i64, seq, hash))
            .collect();
        assert_eq!(
            backfilled, expected,
            "dense indices, seq order, same leaf hashes"
        );
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
