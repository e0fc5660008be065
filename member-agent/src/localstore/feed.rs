//! The console's triage queries (issue 22): the feed's filtered, sorted,
//! paged rows, their count, and each console visitor's read mark. Every
//! filter is in the SQL, so a match is never lost behind a cap, and every
//! order ends on the local sequence, so pages are stable.

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};

use super::{item_from_row, ItemSummary, LocalStore, ITEM_SELECT};
use crate::error::AgentError;

/// A column the feed sorts by; the SQL for each is ours, never the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// The order this agent received items in (the local sequence).
    #[default]
    Received,
    /// The statement's `created`.
    Created,
    Severity,
    Tlp,
    Kind,
    Observable,
    Title,
    Source,
}

impl SortKey {
    /// Every key, with the name links carry.
    pub const ALL: [(SortKey, &'static str); 8] = [
        (SortKey::Received, "received"),
        (SortKey::Created, "created"),
        (SortKey::Severity, "severity"),
        (SortKey::Tlp, "tlp"),
        (SortKey::Kind, "kind"),
        (SortKey::Observable, "observable"),
        (SortKey::Title, "title"),
        (SortKey::Source, "source"),
    ];

    pub fn parse(s: &str) -> Option<SortKey> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(k, _)| *k)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, n)| *n)
            .unwrap_or("received")
    }

    fn sql(self) -> &'static str {
        match self {
            SortKey::Received => "sequence",
            SortKey::Created => "created",
            SortKey::Severity => SEVERITY_RANK,
            SortKey::Tlp => TLP_RANK,
            SortKey::Kind => "kind",
            SortKey::Observable => "value",
            SortKey::Title => "lower(title)",
            SortKey::Source => "source",
        }
    }
}

const SEVERITY_RANK: &str = "(CASE severity WHEN 'low' THEN 1 WHEN 'medium' THEN 2 \
    WHEN 'high' THEN 3 WHEN 'critical' THEN 4 ELSE 0 END)";
const TLP_RANK: &str = "(CASE tlp WHEN 'clear' THEN 0 WHEN 'green' THEN 1 WHEN 'amber' THEN 2 \
    WHEN 'amber+strict' THEN 3 WHEN 'red' THEN 4 ELSE 5 END)";

/// TLP 2.0 labels from least to most restrictive (the rank `min_tlp` counts in).
pub const TLP_ORDER: [&str; 5] = ["clear", "green", "amber", "amber+strict", "red"];

/// What the console's feed asks for: the newest revision of each item that
/// passes the filters, one page at a time. Filtering happens in the query
/// so every match is reachable, however old. Empty lists mean "any".
#[derive(Debug, Clone, Default)]
pub struct FeedQuery {
    /// Empty: every kind but sightings, retractions and bulletins (those
    /// show on their item's page, bulletins pinned above the feed).
    pub kinds: Vec<String>,
    /// Purl types (`npm`): observables `pkg:npm/...`.
    pub ecosystems: Vec<String>,
    /// Severity rank at least this (info 0 ... critical 4).
    pub min_severity: u8,
    /// Exactly these labels.
    pub tlps: Vec<String>,
    /// This label or a stricter one (index in [`TLP_ORDER`]).
    pub min_tlp: Option<u8>,
    /// `created` on or after this day (`YYYY-MM-DD`, UTC).
    pub from: Option<String>,
    /// `created` on or before this day (`YYYY-MM-DD`, UTC).
    pub to: Option<String>,
    pub only_valid: bool,
    /// Only rows with a sequence below this.
    pub before: Option<u64>,
    /// Only rows held when the first page was read (at most this
    /// sequence): later arrivals do not shift the pages after it.
    pub upto: Option<u64>,
    /// Only rows with a sequence above this (new since a visit).
    pub after: Option<u64>,
    pub sort: SortKey,
    /// Ascending instead of the default descending.
    pub ascending: bool,
    pub limit: u32,
    pub offset: u64,
}

impl FeedQuery {
    /// The WHERE clause and its parameters.
    fn clause(&self) -> (String, Vec<Value>) {
        let mut w = Where::default();
        // The newest revision held at `upto`: a later revision of an old
        // item does not take it off the page it was on.
        w.sql.push_str(
            "NOT EXISTS (SELECT 1 FROM items AS newer WHERE newer.id = items.id \
             AND newer.revision > items.revision AND newer.sequence <= ",
        );
        w.bind(Value::Integer(self.upto.map_or(i64::MAX, |u| u as i64)));
        w.sql.push(')');
        if self.kinds.is_empty() {
            w.sql
                .push_str(" AND kind NOT IN ('sighting', 'retraction', 'bulletin')");
        } else {
            w.list("kind", &self.kinds);
        }
        if !self.ecosystems.is_empty() {
            w.sql.push_str(" AND (");
            for (n, e) in self.ecosystems.iter().enumerate() {
                if n > 0 {
                    w.sql.push_str(" OR ");
                }
                w.sql.push_str("substr(value, 1, length(");
                let p = w.bind(Value::Text(format!("pkg:{e}/")));
                w.sql.push_str(&format!(")) = ?{p} OR value = "));
                w.bind(Value::Text(format!("pkg:{e}")));
            }
            w.sql.push(')');
        }
        if self.min_severity > 0 {
            w.sql.push_str(&format!(" AND {SEVERITY_RANK} >= "));
            w.bind(Value::Integer(self.min_severity.into()));
        }
        if !self.tlps.is_empty() {
            w.list("tlp", &self.tlps);
        }
        if let Some(min) = self.min_tlp {
            // Unknown labels rank 5: shown under "stricter", never hidden.
            w.sql.push_str(&format!(" AND {TLP_RANK} >= "));
            w.bind(Value::Integer(min.into()));
        }
        if let Some(from) = &self.from {
            w.sql.push_str(" AND substr(created, 1, 10) >= ");
            w.bind(Value::Text(from.clone()));
        }
        if let Some(to) = &self.to {
            w.sql.push_str(" AND substr(created, 1, 10) <= ");
            w.bind(Value::Text(to.clone()));
        }
        if self.only_valid {
            w.sql.push_str(" AND status = 'valid'");
        }
        for (op, v) in [("<", self.before), ("<=", self.upto), (">", self.after)] {
            if let Some(v) = v {
                w.sql.push_str(&format!(" AND sequence {op} "));
                w.bind(Value::Integer(v.min(i64::MAX as u64) as i64));
            }
        }
        (w.sql, w.args)
    }
}

/// A WHERE clause being written: SQL text with numbered parameters.
#[derive(Default)]
struct Where {
    sql: String,
    args: Vec<Value>,
}

impl Where {
    /// Appends the next parameter and returns its number.
    fn bind(&mut self, v: Value) -> usize {
        self.args.push(v);
        let n = self.args.len();
        self.sql.push_str(&format!("?{n}"));
        n
    }

    /// ` AND col IN (?, ?...)`.
    fn list(&mut self, col: &str, vals: &[String]) {
        self.sql.push_str(&format!(" AND {col} IN ("));
        for (n, v) in vals.iter().enumerate() {
            if n > 0 {
                self.sql.push_str(", ");
            }
            self.bind(Value::Text(v.clone()));
        }
        self.sql.push(')');
    }
}

impl LocalStore {
    /// One page of the console's feed (see [`FeedQuery`]).
    pub fn feed(&self, q: &FeedQuery) -> Result<Vec<ItemSummary>, AgentError> {
        let (clause, mut args) = q.clause();
        let dir = if q.ascending { "ASC" } else { "DESC" };
        let order = match q.sort {
            SortKey::Received => format!("sequence {dir}"),
            k => format!("{} {dir}, sequence {dir}", k.sql()),
        };
        let n = args.len();
        args.push(Value::Integer(q.limit.into()));
        args.push(Value::Integer(q.offset.min(i64::MAX as u64) as i64));
        let sql = format!(
            "{ITEM_SELECT} WHERE {clause} ORDER BY {order} LIMIT ?{} OFFSET ?{}",
            n + 1,
            n + 2
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), item_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// How many rows the feed query matches over all its pages.
    pub fn feed_count(&self, q: &FeedQuery) -> Result<u64, AgentError> {
        let (clause, args) = q.clause();
        let n: i64 = self.conn.query_row(
            &format!("SELECT COUNT(*) FROM items WHERE {clause}"),
            rusqlite::params_from_iter(args),
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// A feed page load by `visitor` in the session `session` (a digest,
    /// never the session id) while the newest held row is `last`: records
    /// the visit and returns the mark items are "new" after (see
    /// [`next_visit`]). The console writes nothing else to the store: its
    /// own read marks, never an item.
    pub fn visit(
        &self,
        visitor: &str,
        session: &str,
        last: u64,
        now: i64,
    ) -> Result<u64, AgentError> {
        // IMMEDIATE: take the write lock first (waiting up to the busy
        // timeout for the daemon's writes), so the read below cannot turn
        // into a write that SQLite refuses at once as "locked".
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let prev = tx
            .query_row(
                "SELECT seen, baseline, session, at FROM console_visits WHERE visitor = ?1",
                [visitor],
                |r| {
                    Ok(Visit {
                        seen: r.get::<_, i64>(0)? as u64,
                        baseline: r.get::<_, i64>(1)? as u64,
                        session: r.get(2)?,
                        at: r.get(3)?,
                    })
                },
            )
            .optional()?;
        let next = next_visit(prev.as_ref(), session, last, now);
        tx.execute(
            "INSERT OR REPLACE INTO console_visits (visitor, seen, baseline, session, at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                visitor,
                next.seen as i64,
                next.baseline as i64,
                next.session,
                next.at
            ],
        )?;
        tx.commit()?;
        Ok(next.baseline)
    }

    /// "Mark all as read": nothing held up to `last` is new to `visitor`.
    pub fn mark_read(&self, visitor: &str, last: u64, now: i64) -> Result<(), AgentError> {
        self.conn.execute(
            "UPDATE console_visits SET seen = MAX(seen, ?2), baseline = MAX(baseline, ?2), at = ?3
             WHERE visitor = ?1",
            params![visitor, last as i64, now],
        )?;
        Ok(())
    }
}

impl LocalStore {
    /// The newest revision of each held item (not sightings or
    /// retractions) whose observable is one of `values` exactly; what a
    /// pasted text's observables are looked up with.
    pub fn items_with_values(&self, values: &[String]) -> Result<Vec<ItemSummary>, AgentError> {
        let mut out = Vec::new();
        // A bounded number of parameters per statement.
        for chunk in values.chunks(400) {
            let mut w = Where::default();
            w.sql.push_str(&format!(
                "{LATEST} AND kind NOT IN ('sighting', 'retraction')"
            ));
            w.list("value", chunk);
            let mut stmt = self.conn.prepare(&format!(
                "{ITEM_SELECT} WHERE {} ORDER BY sequence DESC",
                w.sql
            ))?;
            for row in stmt.query_map(rusqlite::params_from_iter(w.args), item_from_row)? {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// The newest revision of each held item naming a package with one of
    /// `keys` (`Purl::package_key`), with the key: a package, an artifact
    /// or a vulnerability about it, whatever version or spelling.
    pub fn items_for_packages(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, ItemSummary)>, AgentError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(400) {
            let mut w = Where::default();
            w.sql.push_str(LATEST);
            w.list("p.package_key", chunk);
            let mut stmt = self.conn.prepare(&format!(
                "SELECT DISTINCT items.sequence, items.id, items.revision, items.source, items.tlp,
                    items.kind, items.value, items.title, items.severity, items.created, items.status,
                    p.package_key
                 FROM item_packages p JOIN items ON items.id = p.id AND items.revision = p.revision
                 WHERE {} ORDER BY items.sequence DESC",
                w.sql
            ))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(w.args), |r| {
                Ok((r.get::<_, String>(11)?, item_from_row(r)?))
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }
}

/// The newest held revision of the item in `items`.
const LATEST: &str = "NOT EXISTS (SELECT 1 FROM items AS newer WHERE newer.id = items.id \
    AND newer.revision > items.revision)";

/// A visitor's read marks: shown up to `seen`; in the visit that began at
/// `baseline` (items after it are new), in `session`, last seen at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub seen: u64,
    pub baseline: u64,
    pub session: String,
    pub at: i64,
}

/// A pause this long between feed loads starts a new visit.
pub const VISIT_GAP_SECS: i64 = 30 * 60;

/// The marks after a feed load. A new visit (a first one, another login
/// session, or a load after [`VISIT_GAP_SECS`]) makes what was seen so far
/// the baseline; within a visit the baseline stays, so what was new at the
/// start of the visit stays marked while the analyst works through it.
pub fn next_visit(prev: Option<&Visit>, session: &str, last: u64, now: i64) -> Visit {
    let baseline = match prev {
        None => 0,
        Some(p) if p.session != session || now - p.at > VISIT_GAP_SECS || now < p.at => p.seen,
        Some(p) => p.baseline,
    };
    Visit {
        seen: prev.map_or(last, |p| p.seen.max(last)),
        baseline,
        session: session.to_owned(),
        at: now,
    }
}

/// Creates the read marks' table (idempotent).
pub(super) fn migrate(conn: &Connection) -> Result<(), AgentError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS console_visits (
            visitor TEXT PRIMARY KEY, seen INTEGER NOT NULL, baseline INTEGER NOT NULL,
            session TEXT NOT NULL, at INTEGER NOT NULL);",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts a row as the sync daemon would have verified it.
    /// `row`: kind, value, severity, TLP, status.
    fn put(conn: &Connection, id: &str, revision: i64, seq: i64, row: [&str; 5]) {
        put_at(conn, id, revision, seq, row, "2026-11-25T12:00:00Z");
    }

    fn put_at(conn: &Connection, id: &str, revision: i64, seq: i64, row: [&str; 5], created: &str) {
        let [kind, value, sev, tlp, status] = row;
        conn.execute(
            "INSERT INTO items (id, revision, sequence, source, tlp, kind, value, title, severity,
                created, received_at, key_id, digest, statement_json, envelope_json, verified_at, status)
             VALUES (?1, ?2, ?3, 's', ?4, ?5, ?6, ?1, ?7, ?8, 'r', 'k', 'd', '{}', '{}', 0, ?9)",
            params![id, revision, seq, tlp, kind, value, sev, created, status],
        )
        .unwrap();
    }

    fn q(limit: u32) -> FeedQuery {
        FeedQuery {
            limit,
            ..FeedQuery::default()
        }
    }

    fn ids(store: &LocalStore, q: &FeedQuery) -> Vec<String> {
        store
            .feed(q)
            .unwrap()
            .into_iter()
            .map(|i| format!("{}@{}", i.id, i.revision))
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_feed_filters_in_the_query_shows_each_item_once_and_pages_to_the_oldest_match() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("agent.db")).unwrap();
        let c = &store.conn;
        // The only npm package is the oldest row, behind 400 newer domains.
        put(
            c,
            "old-npm",
            1,
            1,
            [
                "package",
                "pkg:npm/evil@1.0.0",
                "critical",
                "amber",
                "valid",
            ],
        );
        for n in 0..400 {
            put(
                c,
                &format!("d{n}"),
                1,
                2 + n,
                ["network", &format!("d{n}.example"), "low", "green", "valid"],
            );
        }
        // Revisions 1 and 2 of one item; a sighting, a retraction, bulletins.
        put(
            c,
            "rev",
            1,
            500,
            ["package", "pkg:pypi/rev@1", "high", "green", "valid"],
        );
        put(
            c,
            "rev",
            2,
            501,
            ["package", "pkg:pypi/rev@1", "high", "green", "valid"],
        );
        put(c, "s", 1, 502, ["sighting", "x", "info", "green", "valid"]);
        put(
            c,
            "r",
            1,
            503,
            ["retraction", "x", "info", "green", "valid"],
        );
        put(c, "b", 1, 504, ["bulletin", "", "high", "green", "valid"]);
        put(
            c,
            "b-gone",
            1,
            505,
            ["bulletin", "", "high", "green", "retracted"],
        );
        put(
            c,
            "npmish",
            1,
            506,
            ["package", "pkg:npmx/a@1", "critical", "amber", "valid"],
        );
        put(
            c,
            "strict",
            1,
            507,
            [
                "network",
                "strict.example",
                "medium",
                "amber+strict",
                "valid",
            ],
        );
        put(
            c,
            "red",
            1,
            508,
            ["network", "red.example", "info", "red", "valid"],
        );

        // Default: newest first, no sightings, retractions or bulletins, one row per item.
        assert_eq!(ids(&store, &q(3)), ["red@1", "strict@1", "npmish@1"]);
        let all = ids(&store, &q(10_000));
        assert_eq!(all.len(), 1 + 400 + 1 + 3);
        assert_eq!(store.feed_count(&q(1)).unwrap(), all.len() as u64);
        assert!(!all.contains(&"rev@1".to_owned()));

        // Each filter, in the query: the old npm item is found though 400 newer rows precede it.
        let eco = |e: &[&str]| {
            ids(
                &store,
                &FeedQuery {
                    ecosystems: s(e),
                    ..q(300)
                },
            )
        };
        assert_eq!(eco(&["npm"]), ["old-npm@1"]);
        assert_eq!(eco(&["pypi"]), ["rev@2"]);
        assert_eq!(eco(&["pypi", "npm"]), ["rev@2", "old-npm@1"]);
        assert!(eco(&["cargo"]).is_empty());
        let sev = |m| {
            ids(
                &store,
                &FeedQuery {
                    min_severity: m,
                    ..q(300)
                },
            )
        };
        assert_eq!(sev(4), ["npmish@1", "old-npm@1"]);
        assert_eq!(sev(3), ["npmish@1", "rev@2", "old-npm@1"]);
        let tlps = |t: &[&str]| {
            ids(
                &store,
                &FeedQuery {
                    tlps: s(t),
                    ..q(300)
                },
            )
        };
        assert_eq!(tlps(&["amber"]), ["npmish@1", "old-npm@1"]);
        assert_eq!(tlps(&["red", "amber+strict"]), ["red@1", "strict@1"]);
        let stricter = |m| {
            ids(
                &store,
                &FeedQuery {
                    min_tlp: Some(m),
                    ..q(300)
                },
            )
        };
        assert_eq!(stricter(2), ["red@1", "strict@1", "npmish@1", "old-npm@1"]);
        assert_eq!(stricter(4), ["red@1"]);
        let kinds = |k: &[&str]| {
            ids(
                &store,
                &FeedQuery {
                    kinds: s(k),
                    ..q(300)
                },
            )
        };
        assert_eq!(kinds(&["sighting"]), ["s@1"]);
        assert_eq!(kinds(&["retraction", "sighting"]), ["r@1", "s@1"]);
        assert_eq!(kinds(&["bulletin"]), ["b-gone@1", "b@1"]);
        assert_eq!(
            ids(
                &store,
                &FeedQuery {
                    kinds: s(&["bulletin"]),
                    only_valid: true,
                    ..q(5)
                }
            ),
            ["b@1"]
        );
        // Filters combine with AND, values of one filter with OR.
        assert_eq!(
            ids(
                &store,
                &FeedQuery {
                    kinds: s(&["package"]),
                    min_tlp: Some(2),
                    ..q(300)
                }
            ),
            ["npmish@1", "old-npm@1"]
        );

        // Paging by offset under `upto`: every row exactly once, even when
        // new rows and a new revision of a listed item arrive meanwhile.
        let upto = store.last_sequence().unwrap();
        let mut seen = vec![];
        let mut offset = 0;
        loop {
            let page = store
                .feed(&FeedQuery {
                    upto: Some(upto),
                    offset,
                    ..q(100)
                })
                .unwrap();
            if page.is_empty() {
                break;
            }
            if offset == 100 {
                put(
                    c,
                    "late",
                    1,
                    600,
                    ["network", "late.example", "high", "green", "valid"],
                );
                put(
                    c,
                    "d10",
                    2,
                    601,
                    ["network", "d10.example", "high", "green", "valid"],
                );
            }
            offset += page.len() as u64;
            seen.extend(page.into_iter().map(|i| format!("{}@{}", i.id, i.revision)));
        }
        assert_eq!(seen, all);
        // Without `upto`, the new revision replaces the old row.
        let now = ids(&store, &q(10_000));
        assert!(now.contains(&"d10@2".to_owned()) && !now.contains(&"d10@1".to_owned()));
        // Below `before`, as the older "Older items" links did.
        let below = ids(
            &store,
            &FeedQuery {
                before: Some(3),
                ..q(10)
            },
        );
        assert_eq!(below, ["d0@1", "old-npm@1"]);
        // Search shows the newest revision once too.
        let found: Vec<_> = store
            .search("pypi/rev", 10)
            .unwrap()
            .into_iter()
            .map(|i| (i.id, i.revision))
            .collect();
        assert_eq!(found, [("rev".to_owned(), 2)]);
    }

    #[test]
    fn pasted_values_find_the_newest_revision_of_items_by_value_and_package() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("agent.db")).unwrap();
        let c = &store.conn;
        put(
            c,
            "dom",
            1,
            1,
            ["network", "evil.example", "high", "green", "valid"],
        );
        put(
            c,
            "dom",
            2,
            2,
            ["network", "evil.example", "critical", "green", "valid"],
        );
        put(
            c,
            "seen",
            1,
            3,
            ["sighting", "evil.example", "info", "green", "valid"],
        );
        put(
            c,
            "other",
            1,
            4,
            ["network", "other.example", "low", "green", "valid"],
        );
        let found = store
            .items_with_values(&s(&["evil.example", "nothing.example"]))
            .unwrap();
        let got: Vec<_> = found.iter().map(|i| (i.id.as_str(), i.revision)).collect();
        assert_eq!(got, [("dom", 2)]);
        // Many values: chunked, all found.
        let mut many: Vec<String> = (0..1000).map(|n| format!("x{n}.example")).collect();
        many.push("other.example".into());
        assert_eq!(store.items_with_values(&many).unwrap().len(), 1);
        c.execute(
            "INSERT INTO item_packages (package_key, name_key, id, revision, purl, versions_json)
             VALUES ('npm/@scope/evil', 'evil', 'pkg', 1, 'pkg:npm/%40scope/evil@1.0.0', '[]')",
            [],
        )
        .unwrap();
        put(
            c,
            "pkg",
            1,
            5,
            [
                "package",
                "pkg:npm/%40scope/evil@1.0.0",
                "high",
                "green",
                "valid",
            ],
        );
        let by_key = store
            .items_for_packages(&s(&["npm/@scope/evil", "npm/nothing"]))
            .unwrap();
        assert_eq!(by_key.len(), 1);
        assert_eq!(
            (by_key[0].0.as_str(), by_key[0].1.id.as_str()),
            ("npm/@scope/evil", "pkg")
        );
    }

    #[test]
    fn sorting_is_by_any_column_both_ways_and_stable_across_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("agent.db")).unwrap();
        let c = &store.conn;
        let sevs = ["info", "low", "medium", "high", "critical"];
        for n in 0..50i64 {
            put_at(
                c,
                &format!("i{n:02}"),
                1,
                n + 1,
                [
                    "network",
                    &format!("d{}.example", 49 - n),
                    sevs[n as usize % 5],
                    TLP_ORDER[n as usize % 5],
                    "valid",
                ],
                &format!("2026-11-{:02}T12:00:00Z", 1 + (n % 28)),
            );
        }
        for (key, _) in SortKey::ALL {
            for ascending in [false, true] {
                let whole = ids(
                    &store,
                    &FeedQuery {
                        sort: key,
                        ascending,
                        ..q(1000)
                    },
                );
                assert_eq!(whole.len(), 50);
                let mut paged = vec![];
                for page in 0..7 {
                    paged.extend(ids(
                        &store,
                        &FeedQuery {
                            sort: key,
                            ascending,
                            offset: page * 8,
                            ..q(8)
                        },
                    ));
                }
                assert_eq!(paged, whole, "{key:?} ascending={ascending}");
            }
        }
        let first = |key, ascending| {
            store
                .feed(&FeedQuery {
                    sort: key,
                    ascending,
                    ..q(1)
                })
                .unwrap()
                .remove(0)
        };
        assert_eq!(first(SortKey::Severity, false).severity, "critical");
        assert_eq!(first(SortKey::Severity, true).severity, "info");
        assert_eq!(first(SortKey::Tlp, false).tlp, "red");
        assert_eq!(first(SortKey::Observable, true).value, "d0.example");
        assert_eq!(first(SortKey::Received, true).id, "i00");
        // Ties keep the received order: the newest critical first.
        assert_eq!(first(SortKey::Severity, false).id, "i49");
        // A date range on `created`, both ends inclusive.
        let range = FeedQuery {
            from: Some("2026-11-02".into()),
            to: Some("2026-11-03".into()),
            ..q(100)
        };
        assert_eq!(ids(&store, &range), ["i30@1", "i29@1", "i02@1", "i01@1"]);
        assert_eq!(store.feed_count(&range).unwrap(), 4);
        assert_eq!(SortKey::parse("severity"), Some(SortKey::Severity));
        assert_eq!(SortKey::parse("rowid; DROP TABLE items"), None);
        for (k, n) in SortKey::ALL {
            assert_eq!(k.name(), n);
        }
    }

    #[test]
    fn a_visit_keeps_its_baseline_and_the_next_one_starts_from_what_was_seen() {
        let v = |seen, baseline, session: &str, at| Visit {
            seen,
            baseline,
            session: session.into(),
            at,
        };
        // First visit ever: everything held is new.
        assert_eq!(next_visit(None, "s1", 10, 100), v(10, 0, "s1", 100));
        // Same session, soon after: the baseline stays, seen moves on.
        let p = v(10, 4, "s1", 100);
        assert_eq!(next_visit(Some(&p), "s1", 15, 200), v(15, 4, "s1", 200));
        // Another session, or a long pause, or a clock that went back: a new visit.
        assert_eq!(next_visit(Some(&p), "s2", 15, 200), v(15, 10, "s2", 200));
        let late = 100 + VISIT_GAP_SECS + 1;
        assert_eq!(next_visit(Some(&p), "s1", 15, late), v(15, 10, "s1", late));
        assert_eq!(next_visit(Some(&p), "s1", 15, 50), v(15, 10, "s1", 50));
        assert_eq!(
            next_visit(Some(&p), "s1", 12, 100 + VISIT_GAP_SECS),
            v(12, 4, "s1", 100 + VISIT_GAP_SECS)
        );
        // Seen never moves back (a restored, smaller store).
        assert_eq!(next_visit(Some(&p), "s2", 3, 200).seen, 10);
    }

    #[test]
    fn a_visitors_marks_persist_and_count_what_is_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.db");
        let store = LocalStore::open(&path).unwrap();
        assert_eq!(store.visit("v1", "s1", 7, 100).unwrap(), 0);
        assert_eq!(store.visit("v1", "s1", 9, 110).unwrap(), 0);
        drop(store);
        let store = LocalStore::open(&path).unwrap();
        // A new session after a restart: new is what came after 9.
        assert_eq!(store.visit("v1", "s2", 12, 120).unwrap(), 9);
        assert_eq!(store.visit("v2", "s3", 12, 120).unwrap(), 0);
        let c = &store.conn;
        for n in 1..=12 {
            put(
                c,
                &format!("x{n}"),
                1,
                n,
                ["network", "x.example", "low", "green", "valid"],
            );
        }
        let new = FeedQuery {
            after: Some(9),
            ..q(100)
        };
        assert_eq!(ids(&store, &new), ["x12@1", "x11@1", "x10@1"]);
        assert_eq!(store.feed_count(&new).unwrap(), 3);
        store.mark_read("v1", 12, 130).unwrap();
        assert_eq!(store.visit("v1", "s2", 12, 140).unwrap(), 12);
    }
}
