//! The agent's local SQLite store: verified items, the key directory cache,
//! refused items, and the subscription cursor. Only this file knows SQL.

use std::path::Path;

use isac_core::VerifiedStatement;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::AgentError;

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

pub enum InsertOutcome {
    New,
    /// Already held with the same digest: a redelivery.
    Duplicate,
}

impl LocalStore {
    pub fn open(path: &Path) -> Result<Self, AgentError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
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
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
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
        Ok(Self { conn })
    }

    pub fn cursor(&self) -> Result<u64, AgentError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'cursor'", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.and_then(|s| s.parse().ok()).unwrap_or(0))
    }

    fn set_cursor_in(conn: &Connection, seq: u64) -> Result<(), AgentError> {
        // Never move backwards.
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('cursor', ?1)
             ON CONFLICT(key) DO UPDATE SET value = ?1 WHERE CAST(value AS INTEGER) < CAST(?1 AS INTEGER)",
            [seq.to_string()],
        )?;
        Ok(())
    }

    pub fn set_cursor(&self, seq: u64) -> Result<(), AgentError> {
        Self::set_cursor_in(&self.conn, seq)
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
        let tx = self.conn.unchecked_transaction()?;
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

    pub fn org_name_for_key(&self, key_id: &str) -> Result<Option<String>, AgentError> {
        Ok(self
            .conn
            .query_row(
                "SELECT org_name FROM keys WHERE key_id = ?1",
                [key_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Stores a verified item and advances the cursor in one transaction.
    /// `before_commit` runs inside it for new items only (the sink write), so
    /// the cursor never passes an item the sinks have not been given.
    pub fn insert_verified(
        &self,
        sequence: u64,
        received_at: &str,
        verified: &VerifiedStatement,
        envelope_json: &str,
        now: i64,
        before_commit: impl FnOnce() -> Result<(), AgentError>,
    ) -> Result<InsertOutcome, AgentError> {
        let s = &verified.statement;
        let tx = self.conn.unchecked_transaction()?;
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
                        received_at, key_id, digest, statement_json, envelope_json, verified_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                    params![
                        s.id.to_string(),
                        s.revision,
                        sequence as i64,
                        s.source,
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
                        now
                    ],
                )?;
                before_commit()?;
                InsertOutcome::New
            }
        };
        Self::set_cursor_in(&tx, sequence)?;
        tx.commit()?;
        Ok(outcome)
    }

    /// Records an item that failed verification, and moves past it.
    pub fn reject(
        &self,
        sequence: u64,
        reason: &str,
        envelope_json: &str,
        now: i64,
    ) -> Result<(), AgentError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO rejected (sequence, reason, envelope_json, at) VALUES (?1, ?2, ?3, ?4)",
            params![sequence as i64, reason, envelope_json, now],
        )?;
        Self::set_cursor_in(&tx, sequence)?;
        tx.commit()?;
        Ok(())
    }

    pub fn list(&self, limit: u32) -> Result<Vec<ItemSummary>, AgentError> {
        let mut stmt = self.conn.prepare(
            "SELECT sequence, id, revision, source, tlp, kind, value, title, severity, created, status
             FROM items ORDER BY sequence DESC LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit], |r| {
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
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
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
