//! Pure parsing of TAXII 2.1 request parameters, paging tokens and
//! timestamps. No I/O: the handlers in `taxii::handlers` are thin over this.

use isac_core::time::{format_rfc3339, parse_rfc3339};

/// The TAXII 2.1 media type of every response body.
pub const MEDIA_TAXII: &str = "application/taxii+json;version=2.1";
/// The STIX 2.1 media type of the objects we serve.
pub const MEDIA_STIX: &str = "application/stix+json;version=2.1";

/// Objects per page when the client does not say.
pub const DEFAULT_LIMIT: usize = 1000;
/// Most objects per page, whatever the client asks.
pub const MAX_LIMIT: usize = 10_000;
/// Values of one `match[...]` parameter at most.
const MAX_MATCH_VALUES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadQuery(pub String);

/// Which versions of each object the client asked for (`match[version]`).
/// Several may be combined (`first,last`); the default is `last`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionMatch {
    pub all: bool,
    pub first: bool,
    pub last: bool,
    /// Exact `modified` timestamps, in microseconds.
    pub at_us: Vec<i64>,
}

impl VersionMatch {
    pub fn last_only() -> Self {
        VersionMatch {
            last: true,
            ..Default::default()
        }
    }
}

/// The parameters of a list request (`objects`, `manifest`, `versions`,
/// one object by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectQuery {
    /// Only objects added after this instant (microseconds).
    pub added_after_us: Option<i64>,
    pub limit: usize,
    /// The `next` token as sent: a sealed position, opened by the caller
    /// of `parse_query` with the hub's key (this module stays pure).
    pub next_token: Option<String>,
    /// Continue after this hub sequence number (the opened `next`).
    pub next: Option<u64>,
    pub ids: Vec<String>,
    pub types: Vec<String>,
    pub versions: VersionMatch,
    /// False when `match[spec_version]` excludes 2.1: nothing matches.
    pub spec_2_1: bool,
}

impl Default for ObjectQuery {
    fn default() -> Self {
        ObjectQuery {
            added_after_us: None,
            limit: DEFAULT_LIMIT,
            next_token: None,
            next: None,
            ids: Vec::new(),
            types: Vec::new(),
            versions: VersionMatch::last_only(),
            spec_2_1: true,
        }
    }
}

fn is_stix_type(t: &str) -> bool {
    (3..=250).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_stix_id(id: &str) -> bool {
    match id.split_once("--") {
        Some((t, uuid)) => is_stix_type(t) && uuid::Uuid::parse_str(uuid).is_ok(),
        None => false,
    }
}

fn values(v: &str, name: &str) -> Result<Vec<String>, BadQuery> {
    let list: Vec<String> = v
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() || list.len() > MAX_MATCH_VALUES {
        return Err(BadQuery(format!(
            "{name} needs 1 to {MAX_MATCH_VALUES} comma-separated values"
        )));
    }
    Ok(list)
}

/// Parses the query string of a list request. Unknown parameters are
/// ignored (TAXII leaves them to the server); malformed known ones are a
/// 400 with a message naming the parameter.
pub fn parse_query(raw: Option<&str>) -> Result<ObjectQuery, BadQuery> {
    let mut q = ObjectQuery::default();
    let Some(raw) = raw else { return Ok(q) };
    if raw.len() > 8 * 1024 {
        return Err(BadQuery("query string longer than 8 KiB".into()));
    }
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k)?;
        let v = decode(v)?;
        match k.as_str() {
            "added_after" => {
                q.added_after_us = Some(parse_timestamp_us(&v).map_err(|_| {
                    BadQuery(format!(
                        "added_after `{}` is not a timestamp like 2026-11-25T16:51:18.123456Z",
                        v.chars().take(40).collect::<String>()
                    ))
                })?)
            }
            "limit" => {
                let n: usize = v
                    .parse()
                    .map_err(|_| BadQuery("limit must be a positive whole number".to_string()))?;
                if n == 0 {
                    return Err(BadQuery("limit must be at least 1".into()));
                }
                q.limit = n.min(MAX_LIMIT);
            }
            "next" => {
                if v.is_empty() || v.len() > 128 {
                    return Err(BadQuery(
                        "next is not a token this server issued; start again without it".into(),
                    ));
                }
                q.next_token = Some(v.to_string());
            }
            "match[id]" => {
                let ids = values(&v, "match[id]")?;
                if let Some(bad) = ids.iter().find(|i| !is_stix_id(i)) {
                    return Err(BadQuery(format!(
                        "match[id] `{}` is not a STIX id like indicator--<uuid>",
                        bad.chars().take(80).collect::<String>()
                    )));
                }
                q.ids.extend(ids);
            }
            "match[type]" => {
                let types = values(&v, "match[type]")?;
                if let Some(bad) = types.iter().find(|t| !is_stix_type(t)) {
                    return Err(BadQuery(format!(
                        "match[type] `{}` is not a STIX type name",
                        bad.chars().take(80).collect::<String>()
                    )));
                }
                q.types.extend(types);
            }
            "match[version]" => {
                let mut vm = VersionMatch::default();
                for value in values(&v, "match[version]")? {
                    match value.as_str() {
                        "all" => vm.all = true,
                        "first" => vm.first = true,
                        "last" => vm.last = true,
                        ts => vm.at_us.push(parse_timestamp_us(ts).map_err(|_| {
                            BadQuery(format!(
                                "match[version] `{}` is not all, first, last or a timestamp",
                                ts.chars().take(40).collect::<String>()
                            ))
                        })?),
                    }
                }
                q.versions = vm;
            }
            "match[spec_version]" => {
                q.spec_2_1 = values(&v, "match[spec_version]")?
                    .iter()
                    .any(|s| s == "2.1");
            }
            _ => {}
        }
    }
    Ok(q)
}

fn decode(s: &str) -> Result<String, BadQuery> {
    let plus_as_space = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| BadQuery("query string is not UTF-8".into()))
}

/// Parses an RFC 3339 UTC timestamp with up to nine fraction digits (kept
/// to microseconds) into microseconds since the epoch.
pub fn parse_timestamp_us(s: &str) -> Result<i64, BadQuery> {
    let bad = || {
        BadQuery(format!(
            "bad timestamp `{}`",
            s.chars().take(40).collect::<String>()
        ))
    };
    let body = s.strip_suffix('Z').ok_or_else(bad)?;
    let (whole, fraction) = match body.split_once('.') {
        Some((w, f)) => (w, f),
        None => (body, ""),
    };
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs = parse_rfc3339(&format!("{whole}Z")).map_err(|_| bad())?;
    let mut micros = 0i64;
    for (i, b) in fraction.bytes().take(6).enumerate() {
        micros += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
    }
    Ok(secs * 1_000_000 + micros)
}

/// Formats microseconds as RFC 3339 UTC with six fraction digits, as TAXII
/// `date_added` and the `X-TAXII-Date-Added-*` headers carry it.
pub fn format_timestamp_us(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let whole = format_rfc3339(secs);
    format!("{}.{micros:06}Z", whole.trim_end_matches('Z'))
}

/// Does the client accept TAXII 2.1 JSON? A missing header, `*/*` and
/// `application/taxii+json` (with or without `version=2.1`) do.
pub fn accepts_taxii(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return true };
    accept.split(',').any(|part| {
        let mut it = part.split(';').map(str::trim);
        let media = it.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<String> = it
            .map(|p| p.replace(' ', "").to_ascii_lowercase())
            .collect();
        let version_ok = params
            .iter()
            .filter_map(|p| p.strip_prefix("version="))
            .all(|v| v == "2.1");
        match media.as_str() {
            "*/*" | "application/*" => true,
            "application/taxii+json" => version_ok,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_no_query() {
        assert_eq!(parse_query(None).unwrap(), ObjectQuery::default());
        assert_eq!(parse_query(Some("")).unwrap(), ObjectQuery::default());
        assert!(ObjectQuery::default().versions.last);
    }

    #[test]
    fn parses_every_known_parameter() {
        let q = parse_query(Some(
            "added_after=2026-11-25T16%3A51%3A18.5Z&limit=50&next=42&match%5Bid%5D=indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f&match[type]=indicator,report&match[version]=first,2026-01-01T00:00:00.000001Z&match[spec_version]=2.0,2.1&unknown=1",
        ))
        .unwrap();
        assert_eq!(q.added_after_us, Some(1_795_625_478_500_000));
        assert_eq!(q.limit, 50);
        assert_eq!(q.next_token.as_deref(), Some("42"));
        assert_eq!(q.next, None, "opened later, with the hub's key");
        assert_eq!(
            q.ids,
            vec!["indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"]
        );
        assert_eq!(q.types, vec!["indicator", "report"]);
        assert!(q.versions.first && !q.versions.last && !q.versions.all);
        assert_eq!(q.versions.at_us, vec![1_767_225_600_000_001]);
        assert!(q.spec_2_1);
        assert!(
            !parse_query(Some("match[spec_version]=2.0"))
                .unwrap()
                .spec_2_1
        );
    }

    #[test]
    fn caps_and_refuses_bad_values() {
        assert_eq!(
            parse_query(Some("limit=999999999")).unwrap().limit,
            MAX_LIMIT
        );
        for bad in [
            "limit=0",
            "limit=-1",
            "limit=ten",
            "next=",
            "added_after=yesterday",
            "added_after=2026-11-25T16:51:18",
            "added_after=2026-11-25T16:51:18.1234567890Z",
            "match[id]=",
            "match[id]=not-an-id",
            "match[id]=indicator--xyz",
            "match[type]=Indicator",
            "match[version]=newest",
            "match[type]=%FF",
            &format!("next={}", "A".repeat(129)),
        ] {
            assert!(parse_query(Some(bad)).is_err(), "{bad}");
        }
        let many = format!("match[type]={}", vec!["indicator"; 101].join(","));
        assert!(parse_query(Some(&many)).is_err());
        assert!(parse_query(Some(&"a".repeat(9000))).is_err());
    }

    #[test]
    fn timestamps_round_trip_at_microseconds() {
        for us in [0, 1, 999_999, 1_795_625_478_500_000, 1_795_625_478_000_001] {
            assert_eq!(parse_timestamp_us(&format_timestamp_us(us)).unwrap(), us);
        }
        assert_eq!(
            format_timestamp_us(1_795_625_478_000_042),
            "2026-11-25T16:51:18.000042Z"
        );
        assert_eq!(
            parse_timestamp_us("2026-11-25T16:51:18Z").unwrap(),
            1_795_625_478_000_000
        );
        // Nanoseconds are truncated to microseconds.
        assert_eq!(
            parse_timestamp_us("2026-11-25T16:51:18.123456789Z").unwrap(),
            1_795_625_478_123_456
        );
    }

    #[test]
    fn accept_header() {
        for ok in [
            None,
            Some("*/*"),
            Some("application/taxii+json;version=2.1"),
            Some("application/taxii+json; version=2.1"),
            Some("application/taxii+json"),
            Some("text/html, application/taxii+json;version=2.1"),
        ] {
            assert!(accepts_taxii(ok), "{ok:?}");
        }
        for bad in [
            Some("application/taxii+json;version=2.0"),
            Some("text/html"),
            Some("application/json"),
        ] {
            assert!(!accepts_taxii(bad), "{bad:?}");
        }
    }
}
