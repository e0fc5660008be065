//! A window of the most recently appended statements, so live subscribers
//! read new items from memory instead of each querying SQLite on every
//! commit. The writer fills it while inserting (before commit); readers only
//! take entries at or below the committed head, and fall back to the store
//! whenever the window does not hold every sequence they need.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::sqlite::{NewStatement, StoredStatement};
use super::typed::Decoded;

/// A committed row as streams share it: the row, and its text columns
/// decoded once (on first use) for every subscriber that reads it, instead
/// of once per delivery.
pub struct SharedRow {
    row: StoredStatement,
    decoded: OnceLock<Decoded>,
    /// For a derived statement (sighting, retraction): its target's latest
    /// revision as read at committed head `as_of`, shared by every stream
    /// that delivers this row (`Store::target_of_shared`). The lock makes
    /// the first stream read it while the others wait for its answer.
    pub(super) target: tokio::sync::Mutex<Option<TargetAsOf>>,
}

/// A target read once: its latest revision (`None`: not stored) as of the
/// committed head `as_of`.
pub(super) struct TargetAsOf {
    pub(super) as_of: u64,
    pub(super) latest: Option<Arc<SharedRow>>,
}

impl SharedRow {
    pub fn new(row: StoredStatement) -> Self {
        SharedRow {
            row,
            decoded: OnceLock::new(),
            target: tokio::sync::Mutex::new(None),
        }
    }

    pub fn row(&self) -> &StoredStatement {
        &self.row
    }

    /// The decoded columns (decoded by the first caller).
    pub fn decoded(&self) -> &Decoded {
        self.decoded.get_or_init(|| self.row.decode())
    }
}

impl std::ops::Deref for SharedRow {
    type Target = StoredStatement;
    fn deref(&self) -> &StoredStatement {
        &self.row
    }
}

/// Statements kept at most.
pub const RECENT_CAPACITY: usize = 4096;
/// Bytes of statements kept at most (statements may be up to 64 KiB each).
pub const RECENT_MAX_BYTES: usize = 16 * 1024 * 1024;

#[derive(Default)]
pub struct Recent {
    items: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    rows: BTreeMap<u64, Arc<SharedRow>>,
    bytes: usize,
}

fn size_of(s: &StoredStatement) -> usize {
    s.payload.len()
        + s.anonymous.as_ref().map_or(0, |a| a.payload.len())
        + s.audience_json.len()
        + s.openings_json.len()
        + s.group_snapshot_json.len()
        + s.provenance.as_ref().map_or(0, Vec::len)
        + 256
}

impl Recent {
    pub fn record(&self, seq: u64, added_us: i64, leaf_index: Option<u64>, s: &NewStatement) {
        self.record_row(StoredStatement {
            seq,
            id: s.id.clone(),
            revision: s.revision,
            source_org: s.source_org.clone(),
            tlp: s.tlp.clone(),
            audience_json: s.audience_json.clone(),
            received_at: s.received_at,
            payload_type: s.payload_type.clone(),
            payload: s.payload.clone(),
            key_id: s.key_id.clone(),
            signature: s.signature.clone(),
            openings_json: s.openings_json.clone(),
            group_snapshot_json: s.group_snapshot_json.clone(),
            target_id: s.target_id.clone(),
            sighting_count: s.sighting_count,
            anonymous: s.anonymous.clone(),
            kind: s.kind.clone(),
            facts: s.facts.clone(),
            digest: s.digest.clone(),
            added_us,
            leaf_index,
            provenance: s.provenance.clone(),
        });
    }

    /// Records a committed row as read back (another replica's commit,
    /// read once by this process's tail for all its streams).
    pub fn record_row(&self, row: StoredStatement) {
        let seq = row.seq;
        let row = Arc::new(SharedRow::new(row));
        let mut w = self.items.lock().expect("recent lock");
        w.bytes += size_of(&row);
        // A rolled-back transaction's sequence is reused: overwrite.
        if let Some(old) = w.rows.insert(seq, row) {
            w.bytes -= size_of(&old);
        }
        while w.rows.len() > RECENT_CAPACITY || w.bytes > RECENT_MAX_BYTES {
            match w.rows.pop_first() {
                Some((_, old)) => w.bytes -= size_of(&old),
                None => break,
            }
        }
    }

    /// Items `after+1 ..= min(head, after+limit)` if the window holds every
    /// one of them; `None` means "read the store".
    pub fn after(&self, after: u64, head: u64, limit: u32) -> Option<Vec<Arc<SharedRow>>> {
        let last = head.min(after.saturating_add(u64::from(limit)));
        if last <= after {
            return Some(Vec::new());
        }
        let w = self.items.lock().expect("recent lock");
        let out: Vec<Arc<SharedRow>> = w
            .rows
            .range(after + 1..=last)
            .map(|(_, v)| v.clone())
            .collect();
        (out.len() as u64 == last - after).then_some(out)
    }

    /// Is no statement with this `id` among `after+1 ..= last`? `None` if
    /// the window does not hold every one of them (read the store).
    pub fn lacks_id(&self, after: u64, last: u64, id: &str) -> Option<bool> {
        if last <= after {
            return Some(true);
        }
        let w = self.items.lock().expect("recent lock");
        let mut held = 0u64;
        for row in w.rows.range(after + 1..=last).map(|(_, v)| v) {
            if row.id == id {
                return Some(false);
            }
            held += 1;
        }
        (held == last - after).then_some(true)
    }

    /// Does the window hold every sequence in `after+1 ..= last`?
    pub fn holds(&self, after: u64, last: u64) -> bool {
        if last <= after {
            return true;
        }
        let w = self.items.lock().expect("recent lock");
        w.rows.range(after + 1..=last).count() as u64 == last - after
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredFacts;

    fn new_statement(n: u64) -> NewStatement {
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
            payload: vec![1, 2, 3],
            key_id: "k".into(),
            signature: vec![],
            digest: "d".into(),
            openings_json: "[]".into(),
            group_snapshot_json: "{}".into(),
            target_id: None,
            value: String::new(),
            title: String::new(),
            sighting_count: None,
            anonymous: None,
            facts: StoredFacts::default(),
            stix_ids: Vec::new(),
            references: Vec::new(),
            provenance: None,
        }
    }

    #[test]
    fn serves_only_complete_ranges_at_or_below_the_head() {
        let r = Recent::default();
        for n in 1..=10 {
            r.record(n, 0, None, &new_statement(n));
        }
        let got = r.after(3, 8, 100).unwrap();
        assert_eq!(
            got.iter().map(|s| s.seq).collect::<Vec<_>>(),
            vec![4, 5, 6, 7, 8]
        );
        assert_eq!(r.after(3, 8, 2).unwrap().len(), 2, "limit");
        assert!(
            r.after(8, 8, 10).unwrap().is_empty(),
            "nothing past the head"
        );
        // A hole (sequence 12 missing) sends the reader to the store.
        r.record(13, 0, None, &new_statement(13));
        assert!(r.after(10, 13, 10).is_none());
        assert!(!r.holds(10, 13));
        assert!(r.holds(3, 10) && r.holds(13, 13) && r.holds(12, 13));
    }

    #[test]
    fn rows_read_back_fill_the_window_and_decode_once() {
        let r = Recent::default();
        r.record(1, 0, None, &new_statement(1));
        let read_back = r.after(0, 1, 1).unwrap()[0].row().clone();
        let mut other = read_back.clone();
        other.seq = 2;
        other.id = "id-2".into();
        r.record_row(other);
        let got = r.after(0, 2, 10).unwrap();
        assert_eq!(got.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(got[1].id, "id-2");
        let d = got[1].decoded();
        assert_eq!(d.tlp, Some(isac_core::Tlp::Green));
        assert!(std::ptr::eq(d, r.after(1, 2, 1).unwrap()[0].decoded()));
    }

    /// What `Store::target_of_shared` asks before reusing a target it
    /// read: no new revision (same id) since, or "cannot tell".
    #[test]
    fn lacks_id_answers_only_over_a_complete_range() {
        let r = Recent::default();
        for n in 1..=5 {
            r.record(n, 0, None, &new_statement(n));
        }
        assert_eq!(r.lacks_id(1, 5, "id-9"), Some(true));
        assert_eq!(r.lacks_id(1, 5, "id-3"), Some(false), "a revision of it");
        assert_eq!(r.lacks_id(3, 5, "id-3"), Some(true), "only after `after`");
        assert_eq!(r.lacks_id(5, 5, "id-5"), Some(true), "empty range");
        assert_eq!(r.lacks_id(1, 7, "id-9"), None, "6 and 7 unknown");
        r.record(7, 0, None, &new_statement(7));
        assert_eq!(r.lacks_id(1, 7, "id-9"), None, "a hole at 6");
        assert_eq!(
            r.lacks_id(1, 7, "id-2"),
            Some(false),
            "found before the hole"
        );
    }

    #[test]
    fn stays_bounded_and_forgets_the_oldest() {
        let r = Recent::default();
        for n in 1..=(RECENT_CAPACITY as u64 + 100) {
            r.record(n, 0, None, &new_statement(n));
        }
        assert!(r.after(0, 50, 10).is_none(), "evicted: read the store");
        assert!(r
            .after(RECENT_CAPACITY as u64, RECENT_CAPACITY as u64 + 100, 1000)
            .is_some());
        assert_eq!(r.items.lock().unwrap().rows.len(), RECENT_CAPACITY);
    }

    #[test]
    fn stays_bounded_in_bytes() {
        let r = Recent::default();
        for n in 1..=400 {
            let mut s = new_statement(n);
            s.payload = vec![0; 60 * 1024];
            r.record(n, 0, None, &s);
        }
        let w = r.items.lock().unwrap();
        assert!(w.bytes <= RECENT_MAX_BYTES);
        assert!(w.rows.len() < 400);
    }
}
