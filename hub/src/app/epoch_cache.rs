//! What every publish re-read from the store (three round trips to
//! PostgreSQL before the append, each waiting for a busy CPU under load)
//! and that only a membership or key change can alter: the caller a client
//! certificate stands for, and a signing key's record. Each store change that alters either bumps the
//! membership epoch in the same transaction (enrolment, suspension and
//! revocation, groups, key rotation and revocation), so an entry read at
//! epoch E is exact for as long as the epoch is E. A cache holds the entries
//! of one epoch only: the first read at a newer epoch empties it.
//!
//! The hub learns the epoch by polling (`epoch_poll_ms`), so a change made
//! by the CLI or another replica reaches this cache within that period.
//! That is why only a single publish uses it: its append checks the epoch
//! the entries were read at inside its own transaction
//! (`Store::append_statement_authorized_at`) and, if it moved, the publish
//! is checked again from the store; so nothing a suspended member or a
//! revoked key sends is stored after the change committed. Every other
//! call reads the store.

use std::collections::HashMap;
use std::sync::Mutex;

/// Entries kept per epoch before the cache starts over (bounded memory
/// whatever certificates or key ids callers present).
const CAPACITY: usize = 65_536;

pub struct EpochCache<V> {
    entries: Mutex<Entries<V>>,
    capacity: usize,
}

struct Entries<V> {
    epoch: u64,
    map: HashMap<String, V>,
}

impl<V: Clone> Default for EpochCache<V> {
    fn default() -> Self {
        EpochCache::with_capacity(CAPACITY)
    }
}

impl<V: Clone> EpochCache<V> {
    pub fn with_capacity(capacity: usize) -> Self {
        EpochCache {
            entries: Mutex::new(Entries {
                epoch: 0,
                map: HashMap::new(),
            }),
            capacity: capacity.max(1),
        }
    }

    /// The entry for `key` read at `epoch`, if any.
    pub fn get(&self, epoch: u64, key: &str) -> Option<V> {
        let e = self.entries.lock().expect("epoch cache lock");
        if e.epoch != epoch {
            return None;
        }
        e.map.get(key).cloned()
    }

    /// Keeps `value`, read from the store at `epoch` (the epoch seen
    /// before the read began). A value of an older epoch than the cache's
    /// is dropped; a newer epoch replaces every entry.
    pub fn insert(&self, epoch: u64, key: &str, value: V) {
        let mut e = self.entries.lock().expect("epoch cache lock");
        if epoch < e.epoch {
            return;
        }
        if epoch > e.epoch {
            e.epoch = epoch;
            e.map.clear();
        }
        if e.map.len() >= self.capacity && !e.map.contains_key(key) {
            e.map.clear();
        }
        e.map.insert(key.to_owned(), value);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().expect("epoch cache lock").map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_served_only_at_the_epoch_it_was_read() {
        let c = EpochCache::default();
        c.insert(3, "fp", 1u32);
        assert_eq!(c.get(3, "fp"), Some(1));
        assert_eq!(c.get(4, "fp"), None, "a newer epoch: read again");
        assert_eq!(c.get(2, "fp"), None);
        assert_eq!(c.get(3, "other"), None);
    }

    #[test]
    fn a_newer_epoch_empties_the_cache_and_an_older_read_is_dropped() {
        let c = EpochCache::default();
        c.insert(3, "a", 1u32);
        c.insert(3, "b", 2);
        c.insert(4, "a", 5);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(4, "a"), Some(5));
        assert_eq!(c.get(3, "b"), None);
        // A read that began before the epoch moved must not come back.
        c.insert(3, "b", 2);
        assert_eq!(c.get(4, "b"), None);
        assert_eq!(c.get(3, "b"), None);
    }

    #[test]
    fn memory_stays_bounded_whatever_keys_are_presented() {
        let c = EpochCache::with_capacity(100);
        for i in 0..10_000 {
            c.insert(1, &format!("k{i}"), i);
            assert!(c.len() <= 100);
        }
        assert_eq!(c.get(1, "k9999"), Some(9999));
    }
}
