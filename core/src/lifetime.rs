//! When an indicator stops being in force (issue 21, "expiry everywhere").
//!
//! An indicator's **effective expiry** is its signed `valid_until` if it
//! has one, else its start (`valid_from`, else `created`) plus the hub-wide
//! default lifetime for its kind, if the hub sets one. The hub publishes
//! those defaults in its signed key directory (`default_lifetimes`), so the
//! hub (subscription skipping, TAXII, prune) and every agent (sinks,
//! console) reach the same instant from the same inputs. Bulletins,
//! sightings and retractions never expire this way.
//!
//! Pure: `now` and the lifetimes are handed in.

use std::collections::BTreeMap;

use crate::statement::{Body, Statement};
use crate::time::{format_rfc3339, parse_rfc3339, UnixSeconds};

/// The indicator kinds a default lifetime may be set for (`Observable::kind`).
pub const KINDS: [&str; 6] = [
    "package",
    "artifact",
    "repository",
    "account",
    "network",
    "vulnerability",
];

/// Longest default lifetime: 100 years (a typo of `36500d` is still caught
/// by the shortest one, a minute).
pub const MAX_LIFETIME_SECS: u64 = 36_500 * DAY;
/// Shortest default lifetime.
pub const MIN_LIFETIME_SECS: u64 = 60;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Default lifetime in seconds per indicator kind, sorted by kind (the
/// directory's `default_lifetimes`). A kind not listed has no default: its
/// indicators live until their own `valid_until`, or for ever.
pub type Lifetimes = BTreeMap<String, u64>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifetimeError {
    #[error("`{0}` is not an indicator kind (use one of package, artifact, repository, account, network, vulnerability)")]
    UnknownKind(String),
    #[error("`{0}` is not a lifetime: use a number and a unit, e.g. 90d, 12h, 30m, 2w or 3600s")]
    BadDuration(String),
    #[error("a default lifetime of {0} seconds is out of range (use 1m to 36500d)")]
    OutOfRange(u64),
    #[error("more than {} default lifetimes", KINDS.len())]
    TooMany,
}

/// Parses a lifetime such as `90d`, `2w`, `12h`, `30m` or `3600s` (one
/// number, one unit, at most 12 characters) into seconds, within range.
pub fn parse_duration(text: &str) -> Result<u64, LifetimeError> {
    let bad = || LifetimeError::BadDuration(text.chars().take(40).collect());
    let t = text.trim();
    if t.is_empty() || t.len() > 12 || !t.is_ascii() {
        return Err(bad());
    }
    let (digits, unit) = t.split_at(t.len() - 1);
    let unit = match unit {
        "s" => 1,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => 7 * DAY,
        _ => return Err(bad()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let secs = n.checked_mul(unit).ok_or_else(bad)?;
    check_range(secs)?;
    Ok(secs)
}

/// A lifetime for people: the largest unit that divides it (`90d`, `36h`).
pub fn format_duration(secs: u64) -> String {
    for (unit, name) in [(DAY, "d"), (HOUR, "h"), (MINUTE, "m")] {
        if secs >= unit && secs.is_multiple_of(unit) {
            return format!("{}{name}", secs / unit);
        }
    }
    format!("{secs}s")
}

fn check_range(secs: u64) -> Result<(), LifetimeError> {
    if (MIN_LIFETIME_SECS..=MAX_LIFETIME_SECS).contains(&secs) {
        Ok(())
    } else {
        Err(LifetimeError::OutOfRange(secs))
    }
}

/// Checks a set of default lifetimes: known kinds only, each in range.
/// (Hub config and the directory check both use it.)
pub fn check_lifetimes(lifetimes: &Lifetimes) -> Result<(), LifetimeError> {
    if lifetimes.len() > KINDS.len() {
        return Err(LifetimeError::TooMany);
    }
    for (kind, secs) in lifetimes {
        if !KINDS.contains(&kind.as_str()) {
            return Err(LifetimeError::UnknownKind(
                kind.chars()
                    .take(40)
                    .collect::<String>()
                    .escape_default()
                    .to_string(),
            ));
        }
        check_range(*secs)?;
    }
    Ok(())
}

/// The instant `statement` stops being in force, if it does: its signed
/// `valid_until`, else its start (`valid_from`, else `created`) plus the
/// default lifetime of its kind. `None` for an indicator with neither, and
/// for every other kind of statement.
pub fn effective_expiry(statement: &Statement, lifetimes: &Lifetimes) -> Option<UnixSeconds> {
    let Body::Indicator(i) = &statement.body else {
        return None;
    };
    if let Some(until) = &i.valid_until {
        return parse_rfc3339(until).ok();
    }
    let lifetime = *lifetimes.get(i.observable.kind())?;
    let start = parse_rfc3339(i.valid_from.as_deref().unwrap_or(&statement.created)).ok()?;
    Some(start.saturating_add(i64::try_from(lifetime).ok()?))
}

/// [`effective_expiry`] as RFC 3339, as stored and shown.
pub fn effective_valid_until(statement: &Statement, lifetimes: &Lifetimes) -> Option<String> {
    match &statement.body {
        // The signed spelling, unchanged.
        Body::Indicator(i) if i.valid_until.is_some() => i.valid_until.clone(),
        _ => effective_expiry(statement, lifetimes).map(format_rfc3339),
    }
}

/// Whether `statement` has expired at `now` (its expiry is not after `now`).
pub fn is_expired(statement: &Statement, lifetimes: &Lifetimes, now: UnixSeconds) -> bool {
    effective_expiry(statement, lifetimes).is_some_and(|e| e <= now)
}

/// Sets the effective `valid_until` on the STIX `indicator` objects of a
/// statement (`crate::stix::objects_for`) that carry none, so a consumer
/// sees the hub-wide default lifetime as the hub and agents apply it
/// (TAXII and the agent's STIX files).
pub fn stix_set_valid_until(objects: &mut [serde_json::Value], valid_until: &str) {
    for o in objects.iter_mut().filter(|o| o["type"] == "indicator") {
        if o.get("valid_until").is_none() {
            o["valid_until"] = serde_json::json!(crate::stix::stix_timestamp(valid_until));
        }
    }
}

/// Turns a statement's STIX objects into the expired version of its
/// indicator: `valid_until` set, `modified` at the expiry (strictly after
/// `created`, so STIX reads it as a later version of the same object), and
/// `x_isac_expired`. Other objects are dropped. What the agent's STIX sink
/// writes when an indicator lapses.
pub fn stix_expired_version(
    objects: Vec<serde_json::Value>,
    valid_until: &str,
) -> Vec<serde_json::Value> {
    let until = crate::stix::stix_timestamp(valid_until);
    objects
        .into_iter()
        .filter(|o| o["type"] == "indicator")
        .map(|mut o| {
            o["valid_until"] = serde_json::json!(until);
            let created = o["created"].as_str().unwrap_or_default().to_owned();
            // Same-width UTC timestamps compare as text.
            o["modified"] = serde_json::json!(if until > created {
                until.clone()
            } else {
                created.replace(".000Z", ".001Z")
            });
            o["x_isac_expired"] = serde_json::json!(true);
            o
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: &str = "2026-11-25T12:00:00Z";
    const CREATED_AT: i64 = 1_795_608_000;

    /// Built from JSON, so fields added to statements later (with their
    /// defaults) do not touch this table.
    fn indicator(kind: &str, from: Option<&str>, until: Option<&str>) -> Statement {
        let observable = match kind {
            "package" => serde_json::json!({"kind": "package", "purl": "pkg:npm/evil@1.0.0",
                "versions": [], "threat": "malicious", "imitates": null}),
            _ => serde_json::json!({"kind": "network", "domain": "c2.evil.example",
                "ip": null, "url": null}),
        };
        serde_json::from_value(serde_json::json!({
            "id": uuid::Uuid::nil(), "revision": 1, "source": "alice-bank",
            "created": CREATED, "tlp": "green", "audience": [], "anonymous": false,
            "body": {"type": "indicator", "observable": observable, "title": "t",
                "description": "", "severity": "high", "confidence": 80, "references": [],
                "tags": [], "valid_from": from, "valid_until": until, "related": []},
        }))
        .unwrap()
    }

    fn lifetimes(pairs: &[(&str, u64)]) -> Lifetimes {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn effective_expiry_table() {
        let net_30d = lifetimes(&[("network", 30 * DAY)]);
        let none = Lifetimes::new();
        let from = "2026-11-26T00:00:00Z";
        let from_at = CREATED_AT + 12 * 3600;
        let until = "2026-12-01T00:00:00Z";
        let until_at = 1_796_083_200;
        // (kind, valid_from, valid_until, lifetimes, expected)
        type Row<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            &'a Lifetimes,
            Option<i64>,
        );
        let table: &[Row] = &[
            // A signed valid_until always wins, shorter or longer than the default.
            ("network", None, Some(until), &net_30d, Some(until_at)),
            ("network", Some(from), Some(until), &none, Some(until_at)),
            // No valid_until: start + the kind's default.
            (
                "network",
                None,
                None,
                &net_30d,
                Some(CREATED_AT + 30 * DAY as i64),
            ),
            (
                "network",
                Some(from),
                None,
                &net_30d,
                Some(from_at + 30 * DAY as i64),
            ),
            // No default for the kind, or none at all: never expires.
            ("package", None, None, &net_30d, None),
            ("network", None, None, &none, None),
        ];
        for (kind, from, until, l, want) in table {
            let s = indicator(kind, *from, *until);
            assert_eq!(
                effective_expiry(&s, l),
                *want,
                "{kind} from {from:?} until {until:?} with {l:?}"
            );
            assert_eq!(
                effective_valid_until(&s, l),
                want.map(format_rfc3339),
                "{kind} from {from:?} until {until:?}"
            );
        }
    }

    #[test]
    fn only_indicators_expire() {
        let mut s = indicator("network", None, None);
        s.body = Body::Retraction(crate::statement::Retraction {
            target: uuid::Uuid::nil(),
            reason: "wrong".into(),
        });
        let all: Lifetimes = KINDS.iter().map(|k| (k.to_string(), MINUTE)).collect();
        assert_eq!(effective_expiry(&s, &all), None);
        assert!(!is_expired(&s, &all, i64::MAX));
    }

    #[test]
    fn expired_at_the_second_not_before() {
        let l = lifetimes(&[("network", HOUR)]);
        let s = indicator("network", None, None);
        let at = CREATED_AT + HOUR as i64;
        assert!(!is_expired(&s, &l, at - 1));
        assert!(is_expired(&s, &l, at));
        assert!(is_expired(&s, &l, at + 1));
        let signed = indicator("network", None, Some("2026-11-25T12:00:05Z"));
        assert!(!is_expired(&signed, &l, CREATED_AT + 4));
        assert!(is_expired(&signed, &l, CREATED_AT + 5));
    }

    #[test]
    fn durations_parse_and_print() {
        for (text, secs) in [
            ("90d", 90 * DAY),
            ("2w", 14 * DAY),
            ("12h", 12 * HOUR),
            ("30m", 30 * MINUTE),
            ("3600s", HOUR),
            (" 1d ", DAY),
            ("36500d", MAX_LIFETIME_SECS),
            ("60s", MIN_LIFETIME_SECS),
        ] {
            assert_eq!(parse_duration(text), Ok(secs), "{text}");
        }
        for bad in [
            "",
            "d",
            "90",
            "90 d",
            "-1d",
            "1.5d",
            "1y",
            "90D",
            "١d",
            "1234567890123d",
            "+1d",
        ] {
            assert!(
                matches!(parse_duration(bad), Err(LifetimeError::BadDuration(_))),
                "{bad:?}"
            );
        }
        for out in ["59s", "0d", "36501d", "99999999w", "99999999999d"] {
            assert!(
                matches!(parse_duration(out), Err(LifetimeError::OutOfRange(_))),
                "{out:?}"
            );
        }
        for (secs, text) in [
            (90 * DAY, "90d"),
            (36 * HOUR, "36h"),
            (90, "90s"),
            (120, "2m"),
        ] {
            assert_eq!(format_duration(secs), text);
            assert_eq!(parse_duration(text), Ok(secs));
        }
    }

    #[test]
    fn stix_indicators_carry_the_effective_expiry() {
        let ctx = crate::stix::StixContext {
            source_identity_id: "identity--x",
            envelope_digest: "d",
            key_id: "k",
            received_at: CREATED,
        };
        let l = lifetimes(&[("network", 30 * DAY)]);
        let open = indicator("network", None, None);
        let until = effective_valid_until(&open, &l).unwrap();
        let mut objects = crate::stix::objects_for(&open, &ctx);
        assert!(objects[0].get("valid_until").is_none());
        stix_set_valid_until(&mut objects, &until);
        assert_eq!(objects[0]["valid_until"], "2026-12-25T12:00:00.000Z");
        // A signed valid_until is never replaced.
        let signed = indicator("network", None, Some("2026-11-26T00:00:00Z"));
        let mut objects = crate::stix::objects_for(&signed, &ctx);
        stix_set_valid_until(&mut objects, &until);
        assert_eq!(objects[0]["valid_until"], "2026-11-26T00:00:00.000Z");

        let expired = stix_expired_version(crate::stix::objects_for(&open, &ctx), &until);
        assert_eq!(expired.len(), 1);
        let o = &expired[0];
        assert_eq!(
            (
                o["type"].as_str(),
                o["valid_until"].as_str(),
                o["modified"].as_str()
            ),
            (
                Some("indicator"),
                Some("2026-12-25T12:00:00.000Z"),
                Some("2026-12-25T12:00:00.000Z")
            )
        );
        assert_eq!(o["created"], "2026-11-25T12:00:00.000Z");
        assert_eq!(o["x_isac_expired"], true);
        // An expiry at (or before) creation is still a later version.
        let at_once = stix_expired_version(crate::stix::objects_for(&open, &ctx), CREATED);
        assert_eq!(at_once[0]["modified"], "2026-11-25T12:00:00.001Z");
    }

    #[test]
    fn lifetimes_name_known_kinds_in_range() {
        assert_eq!(check_lifetimes(&Lifetimes::new()), Ok(()));
        let all: Lifetimes = KINDS.iter().map(|k| (k.to_string(), DAY)).collect();
        assert_eq!(check_lifetimes(&all), Ok(()));
        assert!(matches!(
            check_lifetimes(&lifetimes(&[("bulletin", DAY)])),
            Err(LifetimeError::UnknownKind(k)) if k == "bulletin"
        ));
        assert!(matches!(
            check_lifetimes(&lifetimes(&[("network", 0)])),
            Err(LifetimeError::OutOfRange(0))
        ));
        assert!(matches!(
            check_lifetimes(&lifetimes(&[("network", MAX_LIFETIME_SECS + 1)])),
            Err(LifetimeError::OutOfRange(_))
        ));
    }
}
