//! Fail-over between the URLs of one hub: replicas on one database with
//! the same key material, so the pinned CA, the key directory, the
//! transparency log and the sealed cursor are the same at each. What to do
//! after a failure is a pure function of the failure count, so it is
//! tested exhaustively here; `Agent` only keeps the count and sleeps.

use std::time::Duration;

use crate::error::AgentError;

/// Wait before trying the next URL while some are still untried in this
/// round: short, the point of a replica is to be there at once.
pub const NEXT_HUB: Duration = Duration::from_millis(200);
/// Backoff after a whole round failed (or any failure with one URL).
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Where to try next, and how long to wait first (before jitter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub hub: usize,
    pub wait: Duration,
}

/// After `failures` (at least 1) consecutive failures, the last on URL
/// `current` of `hubs`. A hub that is down (`hub_down`) moves the agent to
/// the next URL, at once while this round has untried ones, then with
/// exponential backoff per whole failed round; any other failure (a sink,
/// the local store) stays on the same URL with exponential backoff.
pub fn after_failure(hubs: usize, current: usize, failures: u32, hub_down: bool) -> Step {
    let hubs = hubs.max(1);
    let current = current % hubs;
    let failures = failures.max(1);
    let backoff = |n: u32| {
        FIRST_BACKOFF
            .saturating_mul(1u32 << (n - 1).min(16))
            .min(MAX_BACKOFF)
    };
    if !hub_down {
        return Step {
            hub: current,
            wait: backoff(failures),
        };
    }
    let rounds = failures / hubs as u32;
    Step {
        hub: (current + 1) % hubs,
        wait: if rounds == 0 {
            NEXT_HUB
        } else {
            backoff(rounds)
        },
    }
}

/// 50-100% of `d` for `r` in 0..=1, so that many agents whose hub went
/// away do not all arrive at the next one in the same instant.
pub fn jittered(d: Duration, r: f64) -> Duration {
    d.mul_f64(0.5 + r.clamp(0.0, 1.0) / 2.0)
}

/// Whether an error means the hub at this URL is not serving (not
/// reachable, or UNAVAILABLE), so another URL may be: connection errors,
/// and the codes a dropped connection or an overloaded or database-less
/// replica gives. A refusal (suspended, bad request) is the same at every
/// replica and is not a reason to move.
pub fn hub_is_down(e: &AgentError) -> bool {
    use tonic::Code;
    match e {
        AgentError::Connect { .. } => true,
        // A refused or reset connection is Unavailable; one that breaks
        // inside an HTTP/2 stream may surface as Unknown (the h2 error) or
        // Cancelled, which our hub never answers on purpose.
        AgentError::Hub { code, .. } => matches!(
            code,
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded
        ),
        _ => false,
    }
}

/// The URLs to use: the config file's `hubs` if it names any, else the
/// ones recorded at enrollment.
pub fn choose_hubs(configured: &[String], enrolled: Vec<String>) -> Vec<String> {
    if configured.is_empty() {
        enrolled
    } else {
        configured.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_url_keeps_the_single_hub_backoff() {
        let waits: Vec<_> = (1..=10)
            .map(|f| after_failure(1, 0, f, true))
            .map(|s| {
                assert_eq!(s.hub, 0);
                s.wait
            })
            .collect();
        assert_eq!(
            waits,
            [
                ms(500),
                ms(1000),
                ms(2000),
                ms(4000),
                ms(8000),
                ms(16000),
                ms(32000),
                MAX_BACKOFF,
                MAX_BACKOFF,
                MAX_BACKOFF
            ]
        );
        // The count never overflows the shift.
        assert_eq!(after_failure(1, 0, u32::MAX, true).wait, MAX_BACKOFF);
        assert_eq!(after_failure(1, 0, u32::MAX, false).wait, MAX_BACKOFF);
    }

    #[test]
    fn a_down_hub_moves_to_the_next_url_round_robin() {
        // Three URLs, starting at the second: every URL once quickly, then
        // backoff that grows per failed round.
        let mut at = 1;
        let mut seen = Vec::new();
        for failures in 1..=9 {
            let s = after_failure(3, at, failures, true);
            seen.push((s.hub, s.wait));
            at = s.hub;
        }
        assert_eq!(
            seen,
            [
                (2, NEXT_HUB),
                (0, NEXT_HUB),
                (1, ms(500)),
                (2, ms(500)),
                (0, ms(500)),
                (1, ms(1000)),
                (2, ms(1000)),
                (0, ms(1000)),
                (1, ms(2000)),
            ]
        );
    }

    #[test]
    fn other_failures_stay_on_the_same_url() {
        for hubs in 1..=4 {
            for current in 0..hubs {
                for failures in 1..=20 {
                    let s = after_failure(hubs, current, failures, false);
                    assert_eq!(s.hub, current);
                    assert_eq!(s.wait, after_failure(1, 0, failures, true).wait);
                }
            }
        }
    }

    #[test]
    fn every_step_stays_in_range_and_bounded() {
        for hubs in 0..=5 {
            for current in 0..=6 {
                for failures in 0..=70 {
                    for down in [false, true] {
                        let s = after_failure(hubs, current, failures, down);
                        assert!(s.hub < hubs.max(1), "{hubs} {current} {failures}");
                        assert!(s.wait >= NEXT_HUB && s.wait <= MAX_BACKOFF);
                        if down && hubs > 1 {
                            assert_ne!(s.hub, current % hubs);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn jitter_is_half_to_all_of_the_wait() {
        assert_eq!(jittered(ms(1000), 0.0), ms(500));
        assert_eq!(jittered(ms(1000), 1.0), ms(1000));
        assert_eq!(jittered(ms(1000), 0.5), ms(750));
        assert_eq!(jittered(ms(1000), -3.0), ms(500));
        assert_eq!(jittered(ms(1000), 7.0), ms(1000));
    }

    #[test]
    fn only_unreachable_or_unavailable_hubs_are_failed_over() {
        use tonic::Code;
        let hub = |code| AgentError::Hub {
            code,
            message: String::new(),
        };
        assert!(hub_is_down(&AgentError::Connect {
            url: "https://a:1".into(),
            message: "refused".into()
        }));
        for code in [
            Code::Unavailable,
            Code::Unknown,
            Code::Cancelled,
            Code::DeadlineExceeded,
        ] {
            assert!(hub_is_down(&hub(code)), "{code:?}");
        }
        for code in [
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::FailedPrecondition,
            Code::InvalidArgument,
            Code::NotFound,
            Code::ResourceExhausted,
            Code::Internal,
        ] {
            assert!(!hub_is_down(&hub(code)), "{code:?}");
        }
        assert!(!hub_is_down(&AgentError::LogAlert("x".into())));
        assert!(!hub_is_down(&AgentError::Invalid("x".into())));
    }

    #[test]
    fn the_config_file_list_wins_over_enrollment() {
        let enrolled = vec!["https://a:1".to_owned()];
        assert_eq!(choose_hubs(&[], enrolled.clone()), enrolled);
        let configured = ["https://b:2".to_owned(), "https://c:3".to_owned()];
        assert_eq!(choose_hubs(&configured, enrolled), configured);
    }
}
