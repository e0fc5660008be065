//! The watch's tables (issue 17), created in their own migration step:
//! the applications `watch add` registered, and the exposures announced
//! to the sinks, so that a restart neither announces them again nor
//! misses a clear.

use rusqlite::{params, Connection, OptionalExtension};

use super::{item_from_row, ItemSummary, LocalStore};
use crate::error::AgentError;

/// One registered application.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Watched {
    pub name: String,
    /// Absolute path of the SBOM or lockfile.
    pub path: String,
    /// RFC 3339, when it was registered.
    pub added: String,
}

/// One announced exposure: its key and the record announced (JSON).
#[derive(Debug, Clone)]
pub struct ExposureRow {
    pub application: String,
    pub component: String,
    pub indicator: String,
    pub record_json: String,
}

/// The newest revision of package indicators that are valid (not
/// retracted, expired or flagged) and not past `valid_until` at ?1, with
/// the purl and affected versions each names.
const VALID_PACKAGES: &str = "SELECT i.sequence, i.id, i.revision, i.source, i.tlp, i.kind, i.value,
    i.title, i.severity, i.created, i.status, i.statement_json, i.envelope_json, p.purl, p.versions_json
    FROM item_packages p JOIN items i ON i.id = p.id AND i.revision = p.revision
    WHERE i.status = 'valid' AND (i.valid_until IS NULL OR i.valid_until > ?1)
      AND i.revision = (SELECT MAX(revision) FROM items WHERE id = p.id)";

type PackageRow = (ItemSummary, String, Vec<String>);

fn package_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PackageRow> {
    let versions: String = r.get(14)?;
    Ok((
        item_from_row(r)?,
        r.get(13)?,
        serde_json::from_str(&versions).unwrap_or_default(),
    ))
}

/// Creates the watch's tables (idempotent).
pub(super) fn migrate(conn: &Connection) -> Result<(), AgentError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS watched (
            name TEXT PRIMARY KEY, path TEXT NOT NULL, added TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS exposures (
            application TEXT NOT NULL, component TEXT NOT NULL, indicator TEXT NOT NULL,
            record_json TEXT NOT NULL,
            PRIMARY KEY (application, component, indicator));
        -- The watch re-reads one indicator at a time as it arrives.
        CREATE INDEX IF NOT EXISTS item_packages_by_id ON item_packages(id);",
    )?;
    Ok(())
}

impl LocalStore {
    /// Registers `name`; false if the name is taken.
    pub fn add_watched(&self, w: &Watched) -> Result<bool, AgentError> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO watched (name, path, added) VALUES (?1, ?2, ?3)",
            params![w.name, w.path, w.added],
        )? == 1)
    }

    /// Forgets `name`; false if it was not registered. Its announced
    /// exposures stay until the agent announces them cleared.
    pub fn remove_watched(&self, name: &str) -> Result<bool, AgentError> {
        Ok(self
            .conn
            .execute("DELETE FROM watched WHERE name = ?1", [name])?
            == 1)
    }

    /// Every registered application, by name.
    pub fn watched(&self) -> Result<Vec<Watched>, AgentError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, path, added FROM watched ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Watched {
                    name: r.get(0)?,
                    path: r.get(1)?,
                    added: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Every exposure announced and not yet cleared.
    pub fn exposures(&self) -> Result<Vec<ExposureRow>, AgentError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT application, component, indicator, record_json FROM exposures
             ORDER BY application, indicator, component",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ExposureRow {
                    application: r.get(0)?,
                    component: r.get(1)?,
                    indicator: r.get(2)?,
                    record_json: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// The number the next exposure event gets (they count from 1).
    pub fn next_exposure_event(&self) -> Result<u64, AgentError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'exposure_events'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.and_then(|s| s.parse::<u64>().ok()).unwrap_or(0) + 1)
    }

    /// Records announced exposures (`added`) and cleared ones (`removed`,
    /// by key) and that `events` more events were numbered, in one
    /// transaction; `before_commit` (the writing sinks) runs inside it.
    pub fn record_exposures(
        &self,
        added: &[ExposureRow],
        removed: &[(String, String, String)],
        events: u64,
        before_commit: impl FnOnce() -> Result<(), AgentError>,
    ) -> Result<(), AgentError> {
        let tx = super::write_tx(&self.conn)?;
        for r in added {
            tx.execute(
                "INSERT OR REPLACE INTO exposures (application, component, indicator, record_json)
                 VALUES (?1, ?2, ?3, ?4)",
                params![r.application, r.component, r.indicator, r.record_json],
            )?;
        }
        for (application, component, indicator) in removed {
            tx.execute(
                "DELETE FROM exposures WHERE application = ?1 AND component = ?2 AND indicator = ?3",
                params![application, component, indicator],
            )?;
        }
        let last = self.next_exposure_event()? - 1 + events;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('exposure_events', ?1)
             ON CONFLICT(key) DO UPDATE SET value = ?1",
            [last.to_string()],
        )?;
        before_commit()?;
        tx.commit()?;
        Ok(())
    }

    /// Every valid package indicator held (newest revisions), with the
    /// purls and versions each names: what the watch starts from.
    pub fn valid_package_indicators(
        &self,
        now_rfc3339: &str,
    ) -> Result<Vec<PackageRow>, AgentError> {
        let mut stmt = self.conn.prepare_cached(VALID_PACKAGES)?;
        let rows = stmt
            .query_map([now_rfc3339], package_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// What one indicator says now (its newest revision), if it is valid:
    /// empty when it names no package, or is retracted, expired or flagged.
    pub fn valid_package_indicator(
        &self,
        id: &str,
        now_rfc3339: &str,
    ) -> Result<Vec<PackageRow>, AgentError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{VALID_PACKAGES} AND p.id = ?2"))?;
        let rows = stmt
            .query_map(params![now_rfc3339, id], package_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(app: &str, ind: &str) -> ExposureRow {
        ExposureRow {
            application: app.into(),
            component: "c".into(),
            indicator: ind.into(),
            record_json: "{}".into(),
        }
    }

    #[test]
    fn registrations_exposures_and_event_numbers_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.db");
        let store = LocalStore::open(&path).unwrap();
        let w = Watched {
            name: "app".into(),
            path: "/x/bom.json".into(),
            added: "2026-12-02T00:00:00Z".into(),
        };
        assert!(store.add_watched(&w).unwrap());
        assert!(!store.add_watched(&w).unwrap(), "a name is registered once");
        assert_eq!(store.next_exposure_event().unwrap(), 1);
        store
            .record_exposures(&[row("app", "i1"), row("app", "i2")], &[], 2, || Ok(()))
            .unwrap();
        // A failing sink write commits nothing.
        let err = store.record_exposures(&[row("app", "i3")], &[], 1, || {
            Err(AgentError::Invalid("disk full".into()))
        });
        assert!(err.is_err());
        drop(store);
        let store = LocalStore::open(&path).unwrap();
        assert_eq!(store.watched().unwrap(), vec![w]);
        assert_eq!(store.exposures().unwrap().len(), 2);
        assert_eq!(store.next_exposure_event().unwrap(), 3);
        store
            .record_exposures(
                &[],
                &[("app".into(), "c".into(), "i1".into())],
                1,
                || Ok(()),
            )
            .unwrap();
        let left: Vec<String> = store
            .exposures()
            .unwrap()
            .into_iter()
            .map(|r| r.indicator)
            .collect();
        assert_eq!(left, ["i2"]);
        assert!(store.remove_watched("app").unwrap());
        assert!(!store.remove_watched("app").unwrap());
    }

    #[test]
    fn only_valid_newest_revisions_feed_the_watch() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("agent.db")).unwrap();
        let now = "2026-12-02T00:00:00Z";
        let purl = "pkg:npm/flatmap-stream";
        store
            .insert_synthetic_package("a", 1, purl, &["0.1.0"], "valid", None)
            .unwrap();
        store
            .insert_synthetic_package("a", 2, purl, &["0.1.1"], "valid", None)
            .unwrap();
        store
            .insert_synthetic_package("gone", 1, purl, &[], "retracted", None)
            .unwrap();
        store
            .insert_synthetic_package("old", 1, purl, &[], "valid", Some("2026-12-01T00:00:00Z"))
            .unwrap();
        let all = store.valid_package_indicators(now).unwrap();
        let ids: Vec<(String, u32, Vec<String>)> = all
            .into_iter()
            .map(|(i, _, v)| (i.id, i.revision, v))
            .collect();
        assert_eq!(ids, [("a".to_string(), 2, vec!["0.1.1".to_string()])]);
        assert_eq!(store.valid_package_indicator("a", now).unwrap().len(), 1);
        assert!(store
            .valid_package_indicator("gone", now)
            .unwrap()
            .is_empty());
        assert!(store
            .valid_package_indicator("old", now)
            .unwrap()
            .is_empty());
    }
}
