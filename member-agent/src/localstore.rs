//! The agent's local SQLite store: verified items, the key directory cache,
//! refused items, and the subscription cursor. Only this file (and its
//! `watch` part: watched applications, announced exposures) knows SQL.

mod feed;
mod watch;

use std::path::Path;

use isac_core::VerifiedStatement;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::error::AgentError;

pub use feed::{FeedQuery, SortKey, TLP_ORDER};
pub use watch::{ExposureRow, Watched};

pub struct LocalStore {
    conn: Connection,
}

/// A row of `member-agent list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemSummary {
    pub sequence: u64,
    pub id: String,
    pub revision: u32,
    pub source: String,
    pub tlp: String,
    pub kind: String,
    pub value: String,
    pub title: String,
    pub severity: String,
    pub created: String,
    pub status: String,
}

impl ItemSummary {
    /// The row [`LocalStore::insert_verified`] makes of `s` at `sequence`, before
    /// it is stored (a retraction's target that arrived in the same batch).
    pub fn of_statement(s: &isac_core::Statement, sequence: u64) -> Self {
        ItemSummary {
            sequence,
            id: s.id.to_string(),
            revision: s.revision,
            source: s.author().to_owned(),
            tlp: s.tlp.as_str().to_owned(),
            kind: s.kind().to_owned(),
            value: s.primary_value(),
            title: s.title().to_owned(),
            severity: s.severity().as_str().to_owned(),
            created: s.created.clone(),
            status: "valid".to_owned(),
        }
    }
}

/// A held item whose effective expiry has passed, with what the sinks
/// need to tell of it (`crate::sinks::Lapsed`).
#[derive(Debug, Clone)]
pub struct Due {
    pub summary: ItemSummary,
    /// The signed statement (canonical JSON).
    pub statement_json: String,
    /// Its effective expiry (RFC 3339).
    pub valid_until: String,
    pub received_at: String,
    pub key_id: String,
    pub digest: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    New,
    /// Already held with the same digest: a redelivery.
    Duplicate,
}

/// Columns 0-10 make an [`ItemSummary`]; 11 is the statement JSON, 12 the envelope JSON.
const ITEM_SELECT: &str =
    "SELECT sequence, id, revision, source, tlp, kind, value, title, severity, created, status,
    statement_json, envelope_json FROM items";

/// Keeps only the newest held revision of each item: a revision is the same
/// item updated, not a second item.
const LATEST_REVISION: &str = "NOT EXISTS (SELECT 1 FROM items AS newer
    WHERE newer.id = items.id AND newer.revision > items.revision)";

fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ItemSummary> {
    Ok(ItemSummary {
        sequence: r.get::<_, i64>(0)? as u64,
        id: r.get(1)?,
        revision: r.get(2)?,
        source: r.get(3)?,
        tlp: r.get(4)?,
        kind: r.get(5)?,
        value: r.get(6)?,
        title: r.get(7)?,
        severity: r.get(8)?,
        created: r.get(9)?,
        status: r.get(10)?,
    })
}

/// A held item with what an export needs.
pub struct ExportRow {
    pub item: ItemSummary,
    pub statement_json: String,
    pub envelope_json: String,
    pub key_id: String,
    pub digest: String,
    /// When the hub accepted it, as delivered (what the sinks carry).
    pub received_at: String,
}

/// Bumped whenever `LocalStore::migrate` gains a step; kept in SQLite's
/// `user_version`, so an up-to-date store opens without writing.
const SCHEMA_VERSION: i64 = 1;

/// Switches a new store to WAL. SQLite answers "database is locked" at once,
/// without its busy handler, when another process has the new file open
/// while it switches: retry for as long as the busy timeout would wait.
fn use_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// A write transaction that takes the write lock when it begins
/// (`BEGIN IMMEDIATE`), so a second process waits for it (busy timeout)
/// instead of failing: a deferred transaction that reads and then writes
/// gets "database is locked" at once, without waiting, whenever another
/// process committed in between.
fn write_tx(conn: &Connection) -> rusqlite::Result<Transaction<'_>> {
    Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
}

impl LocalStore {
    pub fn open(path: &Path) -> Result<Self, AgentError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        use_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Readers (`list`, `status`, the console) open the store while the
        // daemon writes: when the schema is current they take no write lock
        // at all; otherwise one process brings it up to date while the
        // others wait (busy timeout), and then find nothing left to do.
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < SCHEMA_VERSION {
            let tx = write_tx(&conn)?;
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version < SCHEMA_VERSION {
                Self::migrate(&tx)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            }
            tx.commit()?;
        }
        Ok(Self { conn })
    }

    /// Creates every table and brings an older store's up to date; each
    /// step is idempotent. Runs inside the caller's write transaction.
    fn migrate(conn: &Connection) -> Result<(), AgentError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS items (
                id TEXT NOT NULL, revision INTEGER NOT NULL, sequence INTEGER NOT NULL,
                source TEXT NOT NULL, tlp TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
                title TEXT NOT NULL, severity TEXT NOT NULL, created TEXT NOT NULL,
                received_at TEXT NOT NULL, key_id TEXT NOT NULL, digest TEXT NOT NULL,
                statement_json TEXT NOT NULL, envelope_json TEXT NOT NULL, verified_at INTEGER NOT NULL,
                PRIMARY KEY (id, revision));
            CREATE INDEX IF NOT EXISTS items_by_value ON items(value);
            CREATE TABLE IF NOT EXISTS directory (
                slot INTEGER PRIMARY KEY CHECK (slot = 1), version INTEGER NOT NULL, envelope_json TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS rejected (
                sequence INTEGER PRIMARY KEY, reason TEXT NOT NULL, envelope_json TEXT NOT NULL, at INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS imports (
                osv_id TEXT NOT NULL, purl TEXT NOT NULL, statement_id TEXT NOT NULL,
                revision INTEGER NOT NULL, modified TEXT NOT NULL, tlp TEXT NOT NULL,
                retracted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (osv_id, purl));
            -- The packages each item names, by `Purl::package_key` and by
            -- loose name, so `check` looks up each component instead of
            -- reading every indicator.
            CREATE TABLE IF NOT EXISTS item_packages (
                package_key TEXT NOT NULL, name_key TEXT NOT NULL, id TEXT NOT NULL,
                revision INTEGER NOT NULL, purl TEXT NOT NULL, versions_json TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS item_packages_by_key ON item_packages(package_key);
            CREATE INDEX IF NOT EXISTS item_packages_by_name ON item_packages(name_key);
            -- Federation (issue 20): each origin hub's signed directory,
            -- pinned (`crate::federated`).
            CREATE TABLE IF NOT EXISTS federated_directories (
                hub_id TEXT PRIMARY KEY, version INTEGER NOT NULL, envelope_json TEXT NOT NULL);",

        )?;
        // Columns added after the first release of this store.
        for (column, definition) in [
            // `valid`; `retracted` after a retraction; `key-revoked` /
            // `key-retired` when a later directory shows the signing key was
            // no longer good when the item was made.
            ("status", "TEXT NOT NULL DEFAULT 'valid'"),
            // The audience entries that named us, checked against the
            // signed commitments.
            ("named_as", "TEXT NOT NULL DEFAULT '[]'"),
            // RFC 3339, from the indicator; NULL when it never expires.
            ("valid_until", "TEXT"),
            // Federation (issue 20): the provenance of an item from another
            // hub (canonical JSON); NULL for this hub's own members' items.
            ("provenance", "TEXT"),
        ] {
            let present = conn
                .prepare("SELECT 1 FROM pragma_table_info('items') WHERE name = ?1")?
                .exists([column])?;
            if !present {
                conn.execute_batch(&format!(
                    "ALTER TABLE items ADD COLUMN {column} {definition}"
                ))?;
            }
        }
        Self::use_local_order(conn)?;
        Self::index_packages(conn)?;
        Self::migrate_log(conn)?;
        watch::migrate(conn)?;
        feed::migrate(conn)?;
        Ok(())
    }

    /// Stores written before `item_packages` existed: index what they hold, once.
    fn index_packages(conn: &Connection) -> Result<(), AgentError> {
        let done = conn
            .prepare("SELECT 1 FROM meta WHERE key = 'item_packages'")?
            .exists([])?;
        if done {
            return Ok(());
        }
        let rows: Vec<(String, i64, String)> = conn
            .prepare(
                "SELECT id, revision, statement_json FROM items
                 WHERE kind IN ('package', 'artifact', 'vulnerability')",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (id, revision, statement_json) in rows {
            if let Ok(s) = serde_json::from_str::<isac_core::Statement>(&statement_json) {
                Self::index_statement(conn, &id, revision, &s)?;
            }
        }
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('item_packages', '1')",
            [],
        )?;
        Ok(())
    }

    /// Rows of `item_packages` for one stored statement.
    fn index_statement(
        tx: &Connection,
        id: &str,
        revision: i64,
        s: &isac_core::Statement,
    ) -> Result<(), AgentError> {
        for (purl, versions) in package_refs(s) {
            let Ok(parsed) = purl.parse::<isac_packages::Purl>() else {
                continue; // names no package: nothing can match it
            };
            tx.execute(
                "INSERT INTO item_packages (package_key, name_key, id, revision, purl, versions_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    parsed.package_key(),
                    isac_packages::exposure::loose_name(&parsed.full_name()),
                    id,
                    revision,
                    purl,
                    serde_json::to_string(&versions).map_err(|e| AgentError::Invalid(e.to_string()))?,
                ],
            )?;
        }
        Ok(())
    }

    /// The package indicators about the packages named by `package_keys`
    /// (`Purl::package_key`) or `name_keys` (`exposure::loose_name`):
    /// the newest revision of each item, valid (not retracted or expired,
    /// nor already past its `valid_until` at `now_rfc3339`).
    pub fn package_indicators_for(
        &self,
        package_keys: &[String],
        name_keys: &[String],
        now_rfc3339: &str,
    ) -> Result<Vec<(ItemSummary, String, Vec<String>)>, AgentError> {
        const SELECT: &str = "SELECT i.sequence, i.id, i.revision, i.source, i.tlp, i.kind, i.value,
            i.title, i.severity, i.created, i.status, i.statement_json, i.envelope_json, p.purl, p.versions_json
            FROM item_packages p JOIN items i ON i.id = p.id AND i.revision = p.revision
            WHERE i.status = 'valid' AND (i.valid_until IS NULL OR i.valid_until > ?2)
              AND i.revision = (SELECT MAX(revision) FROM items WHERE id = p.id)";
        let mut by_key = self
            .conn
            .prepare_cached(&format!("{SELECT} AND p.package_key = ?1"))?;
        let mut by_name = self
            .conn
            .prepare_cached(&format!("{SELECT} AND p.name_key = ?1"))?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        let row = |r: &rusqlite::Row<'_>| {
            Ok((
                item_from_row(r)?,
                r.get::<_, String>(13)?,
                r.get::<_, String>(14)?,
            ))
        };
        for (stmt, keys) in [(&mut by_key, package_keys), (&mut by_name, name_keys)] {
            for key in keys {
                for found in stmt.query_map(params![key, now_rfc3339], row)? {
                    let (item, purl, versions_json) = found?;
                    if seen.insert((item.id.clone(), item.revision, purl.clone())) {
                        let versions = serde_json::from_str(&versions_json).unwrap_or_default();
                        out.push((item, purl, versions));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Stores written before the hub sealed its positions numbered items by
    /// the hub's sequence, whose gaps count items this member was not sent.
    /// Renumber them in the same order as 1, 2, 3..., and forget the numeric
    /// cursor: the next sync starts from the beginning and recognises what
    /// is already held.
    fn use_local_order(conn: &Connection) -> Result<(), AgentError> {
        let done = conn
            .prepare("SELECT 1 FROM meta WHERE key = 'position'")?
            .exists([])?;
        if done {
            return Ok(());
        }
        conn.execute_batch(
            "CREATE TEMP TABLE renumbered AS
                SELECT kind, k, ROW_NUMBER() OVER (ORDER BY seq, kind) AS n FROM (
                    SELECT 'i' AS kind, rowid AS k, sequence AS seq FROM items
                    UNION ALL SELECT 'r', sequence, sequence FROM rejected);
             UPDATE items SET sequence = (SELECT n FROM renumbered WHERE kind = 'i' AND k = items.rowid);
             UPDATE rejected SET sequence = -(SELECT n FROM renumbered WHERE kind = 'r' AND k = rejected.sequence);
             UPDATE rejected SET sequence = -sequence;
             INSERT INTO meta (key, value) SELECT 'position', COALESCE(MAX(n), 0) FROM renumbered;
             DELETE FROM meta WHERE key = 'cursor';
             DROP TABLE renumbered;",
        )?;
        Ok(())
    }

    /// The newest held row's sequence (0 when nothing is held).
    pub fn last_sequence(&self) -> Result<u64, AgentError> {
        let v: i64 =
            self.conn
                .query_row("SELECT COALESCE(MAX(sequence), 0) FROM items", [], |r| {
                    r.get(0)
                })?;
        Ok(v as u64)
    }

    /// This agent's own position: how many deliveries it has recorded (new
    /// items and refused ones). Items are numbered in this local order.
    pub fn cursor(&self) -> Result<u64, AgentError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'position'", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.and_then(|s| s.parse().ok()).unwrap_or(0))
    }

    /// The hub's sealed cursor to resume the subscription from (empty: the
    /// beginning). Opaque: only the hub can read it.
    pub fn hub_cursor(&self) -> Result<Vec<u8>, AgentError> {
        use base64::Engine;
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'hub_cursor'", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(
            v.and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .unwrap_or_default(),
        )
    }

    fn record_in(
        conn: &Connection,
        local: Option<u64>,
        hub_cursor: &[u8],
    ) -> Result<(), AgentError> {
        use base64::Engine;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('hub_cursor', ?1)
             ON CONFLICT(key) DO UPDATE SET value = ?1",
            [base64::engine::general_purpose::STANDARD.encode(hub_cursor)],
        )?;
        if let Some(local) = local {
            // Never move backwards.
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('position', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = ?1 WHERE CAST(value AS INTEGER) < CAST(?1 AS INTEGER)",
                [local.to_string()],
            )?;
        }
        Ok(())
    }

    /// Resumes from `hub_cursor` next time (after a CaughtUp, or when the
    /// hub says where to resume from).
    pub fn set_hub_cursor(&self, hub_cursor: &[u8]) -> Result<(), AgentError> {
        Self::record_in(&self.conn, None, hub_cursor)
    }

    /// The hub URL `sync`/`run` last reached (fail-over moves it), for
    /// `status` and to start from next time.
    pub fn hub_in_use(&self) -> Result<Option<String>, AgentError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'hub_in_use'", [], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_hub_in_use(&self, url: &str) -> Result<(), AgentError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('hub_in_use', ?1)
             ON CONFLICT(key) DO UPDATE SET value = ?1",
            [url],
        )?;
        Ok(())
    }

    /// The signed key directory last accepted, as its DSSE JSON.
    pub fn directory_json(&self) -> Result<Option<String>, AgentError> {
        Ok(self
            .conn
            .query_row(
                "SELECT envelope_json FROM directory WHERE slot = 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Saves a newly accepted directory and flags held items whose key it
    /// now shows revoked or retired as of their creation time.
    pub fn save_directory(
        &self,
        version: u64,
        envelope_json: &str,
        dir: &isac_core::directory::KeyDirectory,
    ) -> Result<u64, AgentError> {
        let tx = write_tx(&self.conn)?;
        tx.execute(
            "INSERT INTO directory (slot, version, envelope_json) VALUES (1, ?1, ?2)
             ON CONFLICT(slot) DO UPDATE SET version = ?1, envelope_json = ?2",
            params![version as i64, envelope_json],
        )?;
        let mut flagged = 0;
        for k in &dir.keys {
            // RFC 3339 `Z` timestamps of one width compare as text.
            for (cutoff, status) in [
                (&k.revoked_at, "key-revoked"),
                (&k.retired_at, "key-retired"),
            ] {
                if let Some(at) = cutoff {
                    flagged += tx.execute(
                        "UPDATE items SET status = ?3 WHERE key_id = ?1 AND created >= ?2 AND status = 'valid'",
                        params![k.key_id, at, status],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(flagged as u64)
    }

    /// The origin hubs' directories held (hub id, DSSE JSON).
    pub fn federated_directories(&self) -> Result<Vec<(String, String)>, AgentError> {
        let mut stmt = self
            .conn
            .prepare("SELECT hub_id, envelope_json FROM federated_directories ORDER BY hub_id")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Pins a newer verified directory of origin hub `hub_id`.
    pub fn save_federated_directory(
        &self,
        hub_id: &str,
        version: u64,
        envelope_json: &str,
    ) -> Result<(), AgentError> {
        self.conn.execute(
            "INSERT INTO federated_directories (hub_id, version, envelope_json) VALUES (?1, ?2, ?3)
             ON CONFLICT(hub_id) DO UPDATE SET version = ?2, envelope_json = ?3
             WHERE federated_directories.version <= ?2",
            params![hub_id, version as i64, envelope_json],
        )?;
        Ok(())
    }

    /// A held item's provenance (canonical JSON), if it came from another hub.
    pub fn provenance(&self, id: &str, revision: u32) -> Result<Option<String>, AgentError> {
        Ok(self
            .conn
            .query_row(
                "SELECT provenance FROM items WHERE id = ?1 AND revision = ?2",
                params![id, revision],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// The organisation name the held key directory gives `key_id` (None
    /// when no directory is held or it does not name the key). Names come
    /// from the signed directory (`directory` table), checked again against
    /// the hub's directory key: the store has no table of keys of its own.
    pub fn org_name_for_key(
        &self,
        key_id: &str,
        hub_directory_key: &isac_core::VerifyingKey,
    ) -> Result<Option<String>, AgentError> {
        let Some(json) = self.directory_json()? else {
            return Ok(None);
        };
        let env = isac_core::Envelope::from_json(&json)
            .map_err(|e| AgentError::Invalid(e.to_string()))?;
        let dir = isac_core::directory::verify_directory(&env, hub_directory_key, None, 0)
            .map_err(|e| AgentError::Invalid(format!("saved key directory: {e}")))?;
        Ok(dir.entry(key_id).map(|k| k.org_name.clone()))
    }

    /// Stores a verified item and advances the cursor in one transaction.
    /// `before_commit` runs inside it for new items only (the sink write), so
    /// the cursor never passes an item the sinks have not been given.
    /// `sequence` is the item's place in this agent's local order.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_verified(
        &self,
        sequence: u64,
        hub_cursor: &[u8],
        received_at: &str,
        verified: &VerifiedStatement,
        envelope_json: &str,
        valid_until: Option<&str>,
        now: i64,
        provenance: Option<&str>,
        before_commit: impl FnOnce() -> Result<(), AgentError>,
    ) -> Result<InsertOutcome, AgentError> {
        let s = &verified.statement;
        let tx = write_tx(&self.conn)?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT digest FROM items WHERE id = ?1 AND revision = ?2",
                params![s.id.to_string(), s.revision],
                |r| r.get(0),
            )
            .optional()?;
        let outcome = match existing {
            Some(d) if d == verified.digest => InsertOutcome::Duplicate,
            Some(_) => {
                return Err(AgentError::Invalid(format!(
                    "equivocation: {} revision {} arrived again with different signed content; kept the first",
                    s.id, s.revision
                )))
            }
            None => {
                let (severity, value) = (s.severity().as_str(), s.primary_value());
                tx.execute(
                    "INSERT INTO items (id, revision, sequence, source, tlp, kind, value, title, severity, created,
                        received_at, key_id, digest, statement_json, envelope_json, verified_at, valid_until,
                        provenance)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                    params![
                        s.id.to_string(),
                        s.revision,
                        sequence as i64,
                        s.author(),
                        s.tlp.as_str(),
                        s.kind(),
                        value,
                        s.title(),
                        severity,
                        s.created,
                        received_at,
                        verified.key_id,
                        verified.digest,
                        String::from_utf8_lossy(&s.canonical_bytes()),
                        envelope_json,
                        now,
                        valid_until,
                        provenance
                    ],
                )?;
                Self::index_statement(&tx, &s.id.to_string(), s.revision as i64, s)?;
                before_commit()?;
                InsertOutcome::New
            }
        };
        let local = (outcome == InsertOutcome::New).then_some(sequence);
        Self::record_in(&tx, local, hub_cursor)?;
        tx.commit()?;
        Ok(outcome)
    }

    /// Records an item that failed verification, and moves past it.
    pub fn reject(
        &self,
        sequence: u64,
        hub_cursor: &[u8],
        reason: &str,
        envelope_json: &str,
        now: i64,
    ) -> Result<(), AgentError> {
        let tx = write_tx(&self.conn)?;
        tx.execute(
            "INSERT OR REPLACE INTO rejected (sequence, reason, envelope_json, at) VALUES (?1, ?2, ?3, ?4)",
            params![sequence as i64, reason, envelope_json, now],
        )?;
        Self::record_in(&tx, Some(sequence), hub_cursor)?;
        tx.commit()?;
        Ok(())
    }

    pub fn list(&self, limit: u32) -> Result<Vec<ItemSummary>, AgentError> {
        let mut stmt = self
            .conn
            .prepare(&format!("{ITEM_SELECT} ORDER BY sequence DESC LIMIT ?1"))?;
        let rows = stmt
            .query_map([limit], item_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Valid items whose effective `valid_until` has passed (RFC 3339 `Z`
    /// strings compare as text), newest revision only: an older revision's
    /// expiry is not the item's once a revision replaced it.
    pub fn due_for_expiry(&self, now_rfc3339: &str) -> Result<Vec<Due>, AgentError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT sequence, id, revision, source, tlp, kind, value, title, severity, created, status,
                statement_json, valid_until, received_at, key_id, digest FROM items
             WHERE status = 'valid' AND valid_until IS NOT NULL AND valid_until <= ?1
             AND {LATEST_REVISION} ORDER BY sequence"
        ))?;
        let rows = stmt
            .query_map([now_rfc3339], |r| {
                Ok(Due {
                    summary: item_from_row(r)?,
                    statement_json: r.get(11)?,
                    valid_until: r.get(12)?,
                    received_at: r.get(13)?,
                    key_id: r.get(14)?,
                    digest: r.get(15)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Marks one item expired; `before_commit` tells the sinks.
    pub fn mark_expired(
        &self,
        item: &ItemSummary,
        before_commit: impl FnOnce() -> Result<(), AgentError>,
    ) -> Result<(), AgentError> {
        let tx = write_tx(&self.conn)?;
        tx.execute(
            "UPDATE items SET status = 'expired' WHERE id = ?1 AND revision = ?2 AND status = 'valid'",
            params![item.id, item.revision],
        )?;
        before_commit()?;
        tx.commit()?;
        Ok(())
    }

    /// One held item by id (newest revision), with its signed statement.
    pub fn show(&self, id: &str) -> Result<Option<(ItemSummary, String, String)>, AgentError> {
        let row = self
            .conn
            .query_row(
                &format!("{ITEM_SELECT} WHERE id = ?1 ORDER BY revision DESC LIMIT 1"),
                [id],
                |r| {
                    Ok((
                        item_from_row(r)?,
                        r.get::<_, String>(11)?,
                        r.get::<_, String>(12)?,
                    ))
                },
            )
            .optional()?;
        Ok(row)
    }

    /// Items with a sequence above `after`, oldest first (the console's live feed).
    pub fn items_after(&self, after: u64, limit: u32) -> Result<Vec<ItemSummary>, AgentError> {
        let mut stmt = self.conn.prepare(&format!(
            "{ITEM_SELECT} WHERE sequence > ?1 ORDER BY sequence LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![after as i64, limit], item_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every held revision of `id`, newest first, with its signing key id.
    pub fn revisions(&self, id: &str) -> Result<Vec<(ItemSummary, String)>, AgentError> {
        let mut stmt = self.conn.prepare(
            "SELECT sequence, id, revision, source, tlp, kind, value, title, severity, created, status,
                key_id FROM items WHERE id = ?1 ORDER BY revision DESC",
        )?;
        let rows = stmt
            .query_map([id], |r| Ok((item_from_row(r)?, r.get::<_, String>(11)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Other held statements whose signed text mentions `id` (sightings,
    /// retractions, bulletins and indicators naming it as related), with
    /// their statement JSON; the caller parses and checks the reference.
    pub fn mentioning(&self, id: &str) -> Result<Vec<(ItemSummary, String)>, AgentError> {
        let mut stmt = self.conn.prepare(&format!(
            "{ITEM_SELECT} WHERE id != ?1 AND instr(statement_json, ?1) > 0 ORDER BY sequence DESC LIMIT 500"
        ))?;
        let rows = stmt
            .query_map([id], |r| Ok((item_from_row(r)?, r.get::<_, String>(11)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The newest held revision of `id` as an export row.
    pub fn export_row(&self, id: &str) -> Result<Option<ExportRow>, AgentError> {
        Ok(self
            .conn
            .query_row(
                "SELECT sequence, id, revision, source, tlp, kind, value, title, severity, created, status,
                    statement_json, envelope_json, key_id, digest, received_at FROM items WHERE id = ?1
                 ORDER BY revision DESC LIMIT 1",
                [id],
                |r| {
                    Ok(ExportRow {
                        item: item_from_row(r)?,
                        statement_json: r.get(11)?,
                        envelope_json: r.get(12)?,
                        key_id: r.get(13)?,
                        digest: r.get(14)?,
                        received_at: r.get(15)?,
                    })
                },
            )
            .optional()?)
    }

    /// Held items matching `query` (the newest revision of each): an
    /// observable value or title containing it, or a package of that name in
    /// any ecosystem.
    pub fn search(&self, query: &str, limit: u32) -> Result<Vec<ItemSummary>, AgentError> {
        let q = query.trim();
        let escaped = q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let like = format!("%{escaped}%");
        let mut stmt = self.conn.prepare(&format!(
            "{ITEM_SELECT} WHERE (value LIKE ?1 ESCAPE '\\' OR title LIKE ?1 ESCAPE '\\'
             OR lower(value) LIKE lower(?1) ESCAPE '\\') AND {LATEST_REVISION}
             ORDER BY sequence DESC LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![like, limit], item_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// What an earlier import of (`osv_id`, `purl`) became: statement id,
    /// revision, the record's `modified`, and whether it was retracted.
    pub fn import_row(
        &self,
        osv_id: &str,
        purl: &str,
    ) -> Result<Option<(String, u32, String, bool)>, AgentError> {
        Ok(self
            .conn
            .query_row(
                "SELECT statement_id, revision, modified, retracted FROM imports WHERE osv_id = ?1 AND purl = ?2",
                params![osv_id, purl],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0)),
            )
            .optional()?)
    }

    /// Live (not retracted) imports of an OSV id: (purl, statement id, revision, tlp).
    pub fn imports_of(
        &self,
        osv_id: &str,
    ) -> Result<Vec<(String, String, u32, String)>, AgentError> {
        let mut stmt = self.conn.prepare(
            "SELECT purl, statement_id, revision, tlp FROM imports WHERE osv_id = ?1 AND retracted = 0 ORDER BY purl",
        )?;
        let rows = stmt
            .query_map([osv_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn remember_import(
        &self,
        osv_id: &str,
        purl: &str,
        statement_id: &str,
        revision: u32,
        modified: &str,
        tlp: &str,
    ) -> Result<(), AgentError> {
        self.conn.execute(
            "INSERT INTO imports (osv_id, purl, statement_id, revision, modified, tlp, retracted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
             ON CONFLICT(osv_id, purl) DO UPDATE SET statement_id = ?3, revision = ?4, modified = ?5, tlp = ?6, retracted = 0",
            params![osv_id, purl, statement_id, revision, modified, tlp],
        )?;
        Ok(())
    }

    pub fn mark_import_retracted(&self, osv_id: &str, purl: &str) -> Result<(), AgentError> {
        self.conn.execute(
            "UPDATE imports SET retracted = 1 WHERE osv_id = ?1 AND purl = ?2",
            params![osv_id, purl],
        )?;
        Ok(())
    }

    /// Every held item with its statement JSON, envelope JSON, signing key
    /// id and digest, oldest first.
    pub fn export_rows(&self) -> Result<Vec<ExportRow>, AgentError> {
        let mut stmt = self.conn.prepare(
            "SELECT sequence, id, revision, source, tlp, kind, value, title, severity, created, status,
                statement_json, envelope_json, key_id, digest, received_at FROM items ORDER BY sequence",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ExportRow {
                    item: item_from_row(r)?,
                    statement_json: r.get(11)?,
                    envelope_json: r.get(12)?,
                    key_id: r.get(13)?,
                    digest: r.get(14)?,
                    received_at: r.get(15)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Whether (`id`, `revision`) is already held.
    pub fn holds(&self, id: &str, revision: u32) -> Result<bool, AgentError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM items WHERE id = ?1 AND revision = ?2",
                params![id, revision],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// TLP of the newest revision held of `id`.
    pub fn item_tlp(&self, id: &str) -> Result<Option<String>, AgentError> {
        Ok(self
            .conn
            .query_row(
                "SELECT tlp FROM items WHERE id = ?1 ORDER BY revision DESC LIMIT 1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Marks every held revision of `id` retracted.
    pub fn mark_retracted(&self, id: &str) -> Result<u64, AgentError> {
        Ok(self.conn.execute(
            "UPDATE items SET status = 'retracted' WHERE id = ?1 AND kind NOT IN ('retraction', 'sighting')",
            [id],
        )? as u64)
    }

    /// Records which audience entries named us (checked against the signed commitments).
    pub fn set_named_as(
        &self,
        id: &str,
        revision: u32,
        named_as: &[String],
    ) -> Result<(), AgentError> {
        let json =
            serde_json::to_string(named_as).map_err(|e| AgentError::Invalid(e.to_string()))?;
        self.conn.execute(
            "UPDATE items SET named_as = ?3 WHERE id = ?1 AND revision = ?2",
            params![id, revision, json],
        )?;
        Ok(())
    }

    /// Whether the newest held revision of `id` came from another hub.
    pub fn is_federated(&self, id: &str) -> Result<bool, AgentError> {
        let held: Option<bool> = self
            .conn
            .query_row(
                "SELECT provenance IS NOT NULL FROM items WHERE id = ?1 ORDER BY revision DESC LIMIT 1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(held.unwrap_or(false))
    }

    /// The audience entries that named us in the newest held revision of
    /// `id` (the console's "shared with you").
    pub fn named_as(&self, id: &str) -> Result<Vec<String>, AgentError> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT named_as FROM items WHERE id = ?1 ORDER BY revision DESC LIMIT 1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(json
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default())
    }

    /// How many bulletins `org` signed are held (the hub takes bulletins
    /// from coordinators only).
    pub fn count_bulletins_by(&self, org: &str) -> Result<u64, AgentError> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM items WHERE kind = 'bulletin' AND source = ?1",
            [org],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Every distinct audience entry that has named us on any held item,
    /// sorted (the console's picker of sharing groups and people), at
    /// most `limit`.
    pub fn audience_entries_seen(&self, limit: usize) -> Result<Vec<String>, AgentError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT named_as FROM items WHERE named_as != '[]'")?;
        let mut out = std::collections::BTreeSet::new();
        for json in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let entries: Vec<String> = serde_json::from_str(&json?).unwrap_or_default();
            out.extend(entries);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out.into_iter().take(limit).collect())
    }

    pub fn count_items(&self) -> Result<u64, AgentError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0))? as u64)
    }

    pub fn count_rejected(&self) -> Result<u64, AgentError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM rejected", [], |r| r.get::<_, i64>(0))?
            as u64)
    }
}

// === the transparency log (issue 19) ===

/// A held item's log position and leaf (its envelope as delivered).
#[derive(Debug, Clone)]
pub struct LoggedItem {
    pub id: String,
    pub revision: u32,
    /// None for items stored before the agent recorded positions.
    pub log_index: Option<u64>,
    pub envelope_json: String,
}

impl LocalStore {
    /// Its own table and meta keys, so the log adds to the store without
    /// touching the items table: `item_log` (each held item's leaf index),
    /// meta `log_checkpoint` (the last verified signed note) and
    /// `log_alert` (JSON, while ingesting is stopped).
    fn migrate_log(conn: &Connection) -> Result<(), AgentError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS item_log (
                id TEXT NOT NULL, revision INTEGER NOT NULL, log_index INTEGER NOT NULL,
                PRIMARY KEY (id, revision));",
        )?;
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<Option<String>, AgentError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), AgentError> {
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = ?2",
            [key, value],
        )?;
        Ok(())
    }

    /// The last verified checkpoint (signed note text).
    pub fn log_checkpoint(&self) -> Result<Option<String>, AgentError> {
        self.meta("log_checkpoint")
    }

    /// Replaces the trusted checkpoint (one row: atomic).
    pub fn set_log_checkpoint(&self, note: &str) -> Result<(), AgentError> {
        Self::set_meta(&self.conn, "log_checkpoint", note)
    }

    pub fn log_alert(&self) -> Result<Option<String>, AgentError> {
        self.meta("log_alert")
    }

    /// Keeps the first alert: a later one must not hide what started it.
    pub fn set_log_alert(&self, json: &str) -> Result<(), AgentError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('log_alert', ?1) ON CONFLICT(key) DO NOTHING",
            [json],
        )?;
        Ok(())
    }

    /// An operator's decision: trust `note` and clear the alert, together.
    /// Positions recorded under the abandoned history are dropped (they may
    /// name other leaves in the accepted one), and so is the hub cursor:
    /// the next sync reads the accepted history from its start, proving
    /// and placing held items anew (recognised, not stored twice) and
    /// fetching what the abandoned one never showed.
    pub fn accept_log_checkpoint(&self, note: &str) -> Result<(), AgentError> {
        let tx = write_tx(&self.conn)?;
        Self::set_meta(&tx, "log_checkpoint", note)?;
        tx.execute("DELETE FROM meta WHERE key = 'log_alert'", [])?;
        tx.execute("DELETE FROM item_log", [])?;
        tx.execute("DELETE FROM meta WHERE key = 'hub_cursor'", [])?;
        tx.commit()?;
        Ok(())
    }

    pub fn set_log_index(&self, id: &str, revision: u32, index: u64) -> Result<(), AgentError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO item_log (id, revision, log_index) VALUES (?1, ?2, ?3)",
            params![id, revision, index as i64],
        )?;
        Ok(())
    }

    /// Every held item with its log position, in local order.
    pub fn logged_items(&self) -> Result<Vec<LoggedItem>, AgentError> {
        let mut stmt = self.conn.prepare(
            "SELECT i.id, i.revision, l.log_index, i.envelope_json FROM items i
             LEFT JOIN item_log l ON l.id = i.id AND l.revision = i.revision
             ORDER BY i.sequence",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(LoggedItem {
                id: r.get(0)?,
                revision: r.get(1)?,
                log_index: r.get::<_, Option<i64>>(2)?.map(|i| i as u64),
                envelope_json: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The latest held revision of `id` with its log position.
    pub fn logged_item(&self, id: &str) -> Result<Option<LoggedItem>, AgentError> {
        Ok(self
            .conn
            .query_row(
                "SELECT i.id, i.revision, l.log_index, i.envelope_json FROM items i
                 LEFT JOIN item_log l ON l.id = i.id AND l.revision = i.revision
                 WHERE i.id = ?1 ORDER BY i.revision DESC LIMIT 1",
                [id],
                |r| {
                    Ok(LoggedItem {
                        id: r.get(0)?,
                        revision: r.get(1)?,
                        log_index: r.get::<_, Option<i64>>(2)?.map(|i| i as u64),
                        envelope_json: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }
}

/// The packages a statement names, with its affected versions: package
/// indicators (purl and `versions`), artifacts with a purl, and
/// vulnerabilities' purls (every version).
fn package_refs(statement: &isac_core::Statement) -> Vec<(String, Vec<String>)> {
    let isac_core::Body::Indicator(i) = &statement.body else {
        return Vec::new();
    };
    match &i.observable {
        isac_core::Observable::Package { purl, versions, .. } => {
            vec![(purl.clone(), versions.clone())]
        }
        isac_core::Observable::Artifact {
            purl: Some(purl), ..
        } => vec![(purl.clone(), vec![])],
        isac_core::Observable::Vulnerability { purls, .. } => {
            purls.iter().map(|p| (p.clone(), vec![])).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
impl LocalStore {
    /// A package indicator written straight into the store (no signature,
    /// no statement): for tests and measurements of `check` only.
    pub(crate) fn insert_synthetic_package(
        &self,
        id: &str,
        revision: u32,
        purl: &str,
        versions: &[&str],
        status: &str,
        valid_until: Option<&str>,
    ) -> Result<(), AgentError> {
        // Any unique number will do (no scan per insert: measurements
        // insert many).
        let sequence = self.conn.last_insert_rowid() + 1;
        self.conn.execute(
            "INSERT INTO items (id, revision, sequence, source, tlp, kind, value, title, severity, created,
                received_at, key_id, digest, statement_json, envelope_json, verified_at, status, valid_until)
             VALUES (?1, ?2, ?3, 'acme-bank', 'amber', 'package', ?4, ?5, 'critical',
                '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z', 'k', 'd', '{}', '{}', 0, ?6, ?7)",
            params![id, revision, sequence, purl, format!("malicious {purl}"), status, valid_until],
        )?;
        let parsed: isac_packages::Purl = purl.parse().expect("a test purl");
        self.conn.execute(
            "INSERT INTO item_packages (package_key, name_key, id, revision, purl, versions_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                parsed.package_key(),
                isac_packages::exposure::loose_name(&parsed.full_name()),
                id,
                revision,
                purl,
                serde_json::to_string(versions).unwrap(),
            ],
        )?;
        Ok(())
    }

    pub(crate) fn in_one_transaction<T>(&self, f: impl FnOnce(&Self) -> T) -> T {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let out = f(self);
        self.conn.execute_batch("COMMIT").unwrap();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_name_for_key_reads_the_held_signed_directory() {
        use isac_core::directory::{
            encode_public_key, DirectoryKey, KeyDirectory, PAYLOAD_TYPE_DIRECTORY_V1,
        };
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("agent.db")).unwrap();
        let hub = isac_core::SigningKey::generate().unwrap();
        let hub_pub = hub.verifying_key().unwrap();
        let member = isac_core::SigningKey::generate()
            .unwrap()
            .verifying_key()
            .unwrap();
        // No directory held yet: no name, and no error.
        assert_eq!(
            store.org_name_for_key(&member.key_id(), &hub_pub).unwrap(),
            None
        );
        let now = isac_core::time::format_rfc3339(1_800_000_000);
        let directory = KeyDirectory {
            version: 3,
            issued: now.clone(),
            expires: now.clone(),
            keys: vec![DirectoryKey {
                key_id: member.key_id(),
                org_id: "acme".into(),
                org_name: "Acme Bank".into(),
                public_key: encode_public_key(member.spki_der()),
                valid_from: now,
                retired_at: None,
                revoked_at: None,
            }],
            peers: vec![],
            removed_peers: Vec::new(),
            federated: vec![],
            default_lifetimes: Default::default(),
        };
        let env = hub
            .sign_envelope(PAYLOAD_TYPE_DIRECTORY_V1, directory.canonical_bytes())
            .unwrap();
        store.save_directory(3, &env.to_json(), &directory).unwrap();
        assert_eq!(
            store
                .org_name_for_key(&member.key_id(), &hub_pub)
                .unwrap()
                .as_deref(),
            Some("Acme Bank")
        );
        assert_eq!(store.org_name_for_key("00ff", &hub_pub).unwrap(), None);
        // A directory signed by someone else is not believed.
        let other = isac_core::SigningKey::generate()
            .unwrap()
            .verifying_key()
            .unwrap();
        assert!(store.org_name_for_key(&member.key_id(), &other).is_err());
    }

    /// The daemon and a CLI command (`list`, `status`, the console) open
    /// one store at once: neither may fail with "database is locked" (a
    /// deferred transaction that reads then writes gets SQLITE_BUSY at once,
    /// without waiting, when another connection committed in between).
    #[test]
    fn processes_opening_and_writing_one_store_at_once_never_see_it_locked() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..6 {
            let path = dir.path().join(format!("agent-{round}.db"));
            let start = std::sync::Arc::new(std::sync::Barrier::new(6));
            let workers: Vec<_> = (0..6)
                .map(|w| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || -> Result<(), String> {
                        start.wait();
                        for i in 0..25 {
                            let store =
                                LocalStore::open(&path).map_err(|e| format!("open: {e}"))?;
                            // Reads then writes in one transaction, as
                            // recording a refused item does.
                            store
                                .reject((w * 1000 + i) as u64, b"cursor", "test", "{}", 0)
                                .map_err(|e| format!("reject: {e}"))?;
                            store
                                .accept_log_checkpoint("note")
                                .map_err(|e| format!("checkpoint: {e}"))?;
                            store.list(5).map_err(|e| format!("list: {e}"))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for worker in workers {
                worker.join().unwrap().unwrap();
            }
            let store = LocalStore::open(&path).unwrap();
            let rejected: i64 = store
                .conn
                .query_row("SELECT COUNT(*) FROM rejected", [], |r| r.get(0))
                .unwrap();
            assert_eq!(rejected, 6 * 25, "every write kept");
        }
    }

    #[test]
    fn a_store_numbered_by_hub_sequence_is_renumbered_in_local_order_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.db");
        drop(LocalStore::open(&path).unwrap());
        {
            // What an agent wrote before cursors were sealed: hub sequences
            // 5 and 9 with 7 refused; gaps count items it was not sent.
            let conn = Connection::open(&path).unwrap();
            for (id, seq) in [("a", 5), ("b", 9)] {
                conn.execute(
                    "INSERT INTO items (id, revision, sequence, source, tlp, kind, value, title, severity,
                        created, received_at, key_id, digest, statement_json, envelope_json, verified_at)
                     VALUES (?1, 1, ?2, 's', 'green', 'package', 'v', 't', 'high', 'c', 'r', 'k', 'd', '{}', '{}', 0)",
                    params![id, seq],
                )
                .unwrap();
            }
            conn.execute_batch(
                "INSERT INTO rejected (sequence, reason, envelope_json, at) VALUES (7, 'bad', '{}', 0);
                 DELETE FROM meta WHERE key = 'position';
                 INSERT INTO meta (key, value) VALUES ('cursor', '9');
                 PRAGMA user_version = 0;",
            )
            .unwrap();
        }
        let store = LocalStore::open(&path).unwrap();
        let mut numbers: Vec<(String, u64)> = store
            .list(10)
            .unwrap()
            .into_iter()
            .map(|i| (i.id, i.sequence))
            .collect();
        numbers.sort();
        assert_eq!(numbers, vec![("a".into(), 1), ("b".into(), 3)]);
        assert_eq!(store.cursor().unwrap(), 3);
        assert!(
            store.hub_cursor().unwrap().is_empty(),
            "resyncs from the start"
        );
        let rejected: i64 = store
            .conn
            .query_row("SELECT sequence FROM rejected", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rejected, 2);
        drop(store);
        // Once only: a second open changes nothing.
        let store = LocalStore::open(&path).unwrap();
        assert_eq!(store.cursor().unwrap(), 3);
    }
}
