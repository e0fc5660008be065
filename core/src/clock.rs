//! The injectable clock shared by hub and agent: the system clock by
//! default, a settable one for tests. The one place in `isac-core` that
//! reads anything from outside (the time); every other core function is
//! handed "now" as a value. Everything in the hub and the agent that needs
//! "now" (unix seconds) asks a [`Clock`].

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Unix seconds, from the system or from a test.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: a manual clock shared by its clones.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that reads `at` until [`Clock::set`] moves it.
    pub fn manual(at: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(at))),
        }
    }

    /// Moves a manual clock (and every clone of it). Returns false, and
    /// changes nothing, on the system clock.
    pub fn set(&self, at: i64) -> bool {
        match &self.manual {
            Some(t) => {
                t.store(at, Ordering::Release);
                true
            }
            None => false,
        }
    }

    /// Now, in unix seconds.
    pub fn now(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::Acquire),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_for_every_clone() {
        let clock = Clock::manual(1_000);
        let other = clock.clone();
        assert_eq!(other.now(), 1_000);
        assert!(clock.set(2_000));
        assert_eq!(other.now(), 2_000);
    }

    #[test]
    fn system_clock_is_not_settable_and_reads_the_present() {
        let clock = Clock::system();
        assert!(!clock.set(5));
        // 2020-01-01 or later.
        assert!(clock.now() > 1_577_836_800);
    }
}
