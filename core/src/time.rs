//! Timestamps. Statements carry RFC 3339 UTC strings with whole seconds
//! (`2026-11-25T16:51:18Z`); internally we compare Unix seconds. The clock is
//! never read here: callers pass `now` in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix seconds.
pub type UnixSeconds = i64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an RFC 3339 UTC timestamp like 2026-11-25T16:51:18Z")]
pub struct BadTimestamp(pub String);

/// Formats Unix seconds as RFC 3339 UTC (`Z`, whole seconds).
pub fn format_rfc3339(secs: UnixSeconds) -> String {
    let t = if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH
    };
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses an RFC 3339 UTC timestamp. Only the `Z` form is accepted, so one
/// instant has one spelling inside signed payloads.
pub fn parse_rfc3339(s: &str) -> Result<UnixSeconds, BadTimestamp> {
    if !s.ends_with('Z') || s.len() > 40 {
        return Err(BadTimestamp(s.to_owned()));
    }
    let t: SystemTime = humantime::parse_rfc3339(s).map_err(|_| BadTimestamp(s.to_owned()))?;
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| BadTimestamp(s.to_owned()))?;
    Ok(d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let s = "2026-11-25T16:51:18Z";
        let secs = parse_rfc3339(s).unwrap();
        assert_eq!(format_rfc3339(secs), s);
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn rejects_offsets_and_garbage() {
        assert!(parse_rfc3339("2026-11-25T16:51:18+01:00").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
        assert!(parse_rfc3339("").is_err());
    }
}
