//! Validation of the values an indicator points at: package URLs, hashes,
//! domains, IPs, URLs, accounts, repositories and vulnerability ids.
//!
//! Everything here is attacker-controlled input. Each check is strict (one
//! spelling per value where we can), bounded in length, and refuses control
//! characters, so that what a recipient matches on is what the source meant.

use std::net::IpAddr;

pub const MAX_PURL_LEN: usize = 2048;
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_DOMAIN_LEN: usize = 253;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{value}`: {reason}")]
pub struct InvalidValue {
    pub what: &'static str,
    pub value: String,
    pub reason: String,
}

fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> InvalidValue {
    // Echo at most a short prefix: error messages must not become a channel
    // for megabytes of hostile text.
    let shown: String = value.chars().take(80).collect();
    InvalidValue {
        what,
        value: shown.escape_default().to_string(),
        reason: reason.into(),
    }
}

/// The parts of a package URL we match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purl {
    pub ty: String,
    pub namespace: Option<String>,
    pub name: String,
    pub version: Option<String>,
}

impl Purl {
    /// `type/namespace/name` without version, qualifiers or subpath: the key
    /// an exposure check compares against a lockfile entry.
    pub fn package_key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.ty, ns, self.name),
            None => format!("{}/{}", self.ty, self.name),
        }
    }
}

fn has_forbidden_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn valid_percent_encoding(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() || !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit() {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Parses a package URL (https://github.com/package-url/purl-spec):
/// `pkg:type/namespace/name@version?qualifiers#subpath`. The type must be
/// lowercase, the name non-empty, and no part may hold whitespace or control
/// characters.
///
/// This is the lenient, receive-side check: statement validation runs it on
/// every statement a hub or agent receives, and a signed v1 statement it
/// once took must stay valid forever, so it must not be tightened. It does
/// not apply the spec's per-type rules (a Maven group, npm scopes, PyPI
/// names); `isac_packages::purl::Purl` does, and the member agent holds
/// every purl it signs to that parser (strict at the source, lenient on
/// receive). Use this one only where received statements are read.
pub fn parse_purl(s: &str) -> Result<Purl, InvalidValue> {
    const WHAT: &str = "package URL (purl)";
    if s.len() > MAX_PURL_LEN {
        return Err(invalid(
            WHAT,
            s,
            format!("longer than {MAX_PURL_LEN} bytes"),
        ));
    }
    if has_forbidden_chars(s) {
        return Err(invalid(
            WHAT,
            s,
            "contains whitespace or control characters",
        ));
    }
    let rest = s.strip_prefix("pkg:").ok_or_else(|| {
        invalid(
            WHAT,
            s,
            "must start with `pkg:`, e.g. pkg:npm/left-pad@1.3.0",
        )
    })?;
    let rest = rest.trim_start_matches('/');
    // Subpath and qualifiers are allowed but not matched on.
    let rest = rest.split_once('#').map_or(rest, |(a, _)| a);
    let rest = rest.split_once('?').map_or(rest, |(a, _)| a);
    let (ty, path) = rest
        .split_once('/')
        .ok_or_else(|| invalid(WHAT, s, "missing `/name` after the type"))?;
    if ty.is_empty()
        || !ty.as_bytes()[0].is_ascii_lowercase()
        || !ty.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'+' || b == b'-'
        })
    {
        return Err(invalid(
            WHAT,
            s,
            "type must be lowercase letters, digits, `.`, `+`, `-` (e.g. npm, pypi, cargo)",
        ));
    }
    // The version is after the last `@` of the path (npm scopes use `%40`).
    let (path, version) = match path.rsplit_once('@') {
        Some((p, v)) => {
            if v.is_empty() {
                return Err(invalid(WHAT, s, "empty version after `@`"));
            }
            (p, Some(v.to_owned()))
        }
        None => (path, None),
    };
    let path = path.trim_end_matches('/');
    let (namespace, name) = match path.rsplit_once('/') {
        Some((ns, n)) => (Some(ns.to_owned()), n),
        None => (None, path),
    };
    if name.is_empty() {
        return Err(invalid(WHAT, s, "missing package name"));
    }
    if let Some(ns) = &namespace {
        if ns.is_empty() || ns.split('/').any(|seg| seg.is_empty()) {
            return Err(invalid(WHAT, s, "empty namespace segment"));
        }
    }
    if !valid_percent_encoding(s) {
        return Err(invalid(WHAT, s, "bad percent-encoding"));
    }
    Ok(Purl {
        ty: ty.to_owned(),
        namespace,
        name: name.to_owned(),
        version,
    })
}

pub fn validate_sha256(s: &str) -> Result<(), InvalidValue> {
    if crate::hex::is_hex_of_len(s, 64) && s.bytes().all(|b| !b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(invalid("sha256", s, "must be 64 lowercase hex digits"))
    }
}

pub fn validate_sha512(s: &str) -> Result<(), InvalidValue> {
    if crate::hex::is_hex_of_len(s, 128) && s.bytes().all(|b| !b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(invalid("sha512", s, "must be 128 lowercase hex digits"))
    }
}

/// A DNS name in lowercase ASCII (internationalised names in their `xn--`
/// form), at least two labels, no wildcard, no trailing dot.
pub fn validate_domain(s: &str) -> Result<(), InvalidValue> {
    const WHAT: &str = "domain";
    if s.is_empty() || s.len() > MAX_DOMAIN_LEN {
        return Err(invalid(WHAT, s, "must be 1 to 253 characters"));
    }
    if !s.is_ascii() {
        return Err(invalid(
            WHAT,
            s,
            "use the ASCII (xn--) form of internationalised names",
        ));
    }
    let labels: Vec<&str> = s.split('.').collect();
    if labels.len() < 2 {
        return Err(invalid(
            WHAT,
            s,
            "needs at least two labels, e.g. evil.example",
        ));
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid(WHAT, s, "each label must be 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                WHAT,
                s,
                "labels may hold only lowercase letters, digits and `-`",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(WHAT, s, "a label may not start or end with `-`"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid(WHAT, s, "looks like an IP address; use --ip"));
    }
    Ok(())
}

pub fn validate_ip(s: &str) -> Result<(), InvalidValue> {
    let ip: IpAddr = s
        .parse()
        .map_err(|_| invalid("IP address", s, "not an IPv4 or IPv6 address"))?;
    // One spelling per address: `::0001` and `::1` are the same indicator.
    if ip.to_string() != s {
        return Err(invalid("IP address", s, format!("write it as {ip}")));
    }
    Ok(())
}

/// An http(s) URL with a host; nothing is fetched.
pub fn validate_url(s: &str) -> Result<(), InvalidValue> {
    const WHAT: &str = "URL";
    if s.len() > MAX_URL_LEN {
        return Err(invalid(WHAT, s, format!("longer than {MAX_URL_LEN} bytes")));
    }
    if has_forbidden_chars(s) {
        return Err(invalid(
            WHAT,
            s,
            "contains whitespace or control characters",
        ));
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| invalid(WHAT, s, "must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() {
        return Err(invalid(WHAT, s, "missing host"));
    }
    Ok(())
}

/// A repository URL: https, ssh or git scheme, or scp-like `git@host:path`.
pub fn validate_repo_url(s: &str) -> Result<(), InvalidValue> {
    const WHAT: &str = "repository URL";
    if s.len() > MAX_URL_LEN || has_forbidden_chars(s) {
        return Err(invalid(
            WHAT,
            s,
            "too long or contains whitespace/control characters",
        ));
    }
    let ok = ["https://", "http://", "ssh://", "git://", "git@"]
        .iter()
        .any(|p| s.starts_with(p) && s.len() > p.len() + 2);
    if !ok {
        return Err(invalid(
            WHAT,
            s,
            "must look like https://github.com/org/repo or git@host:org/repo",
        ));
    }
    Ok(())
}

/// A git commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
pub fn validate_commit(s: &str) -> Result<(), InvalidValue> {
    if (crate::hex::is_hex_of_len(s, 40) || crate::hex::is_hex_of_len(s, 64))
        && !s.bytes().any(|b| b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(invalid(
            "commit",
            s,
            "must be a full 40- or 64-digit lowercase hex commit id",
        ))
    }
}

pub fn validate_tag(s: &str) -> Result<(), InvalidValue> {
    if s.is_empty() || s.len() > 256 || has_forbidden_chars(s) {
        return Err(invalid(
            "tag",
            s,
            "must be 1 to 256 characters without whitespace",
        ));
    }
    Ok(())
}

/// A registry or forge account as `PLATFORM:USERNAME`, e.g. `npm:evil-maintainer`
/// or `github:octo-imposter`.
pub fn validate_account(s: &str) -> Result<(), InvalidValue> {
    const WHAT: &str = "account";
    let (platform, user) = s.split_once(':').ok_or_else(|| {
        invalid(
            WHAT,
            s,
            "write it as PLATFORM:USERNAME, e.g. npm:evil-maintainer",
        )
    })?;
    if platform.is_empty()
        || platform.len() > 64
        || !platform
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(invalid(
            WHAT,
            s,
            "platform must be lowercase, e.g. npm, pypi, github",
        ));
    }
    if user.is_empty() || user.len() > 256 || has_forbidden_chars(user) {
        return Err(invalid(
            WHAT,
            s,
            "username must be 1 to 256 characters without whitespace",
        ));
    }
    Ok(())
}

/// CVE, GHSA or an OSV-style id (`MAL-2024-1234`, `PYSEC-2021-1`, `GO-2022-0001`).
pub fn validate_vuln_id(s: &str) -> Result<(), InvalidValue> {
    const WHAT: &str = "vulnerability id";
    if s.len() > 64 {
        return Err(invalid(WHAT, s, "longer than 64 characters"));
    }
    if let Some(rest) = s.strip_prefix("CVE-") {
        let ok = rest.split_once('-').is_some_and(|(y, n)| {
            y.len() == 4
                && y.bytes().all(|b| b.is_ascii_digit())
                && n.len() >= 4
                && n.bytes().all(|b| b.is_ascii_digit())
        });
        return if ok {
            Ok(())
        } else {
            Err(invalid(WHAT, s, "CVE ids look like CVE-2024-12345"))
        };
    }
    if let Some(rest) = s.strip_prefix("GHSA-") {
        let groups: Vec<&str> = rest.split('-').collect();
        let ok = groups.len() == 3
            && groups.iter().all(|g| {
                g.len() == 4
                    && g.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        return if ok {
            Ok(())
        } else {
            Err(invalid(WHAT, s, "GHSA ids look like GHSA-xxxx-xxxx-xxxx"))
        };
    }
    let ok = s.split_once('-').is_some_and(|(prefix, rest)| {
        !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && prefix.as_bytes()[0].is_ascii_uppercase()
            && !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            WHAT,
            s,
            "use a CVE, GHSA or OSV id such as MAL-2024-1234",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls() {
        let p = parse_purl("pkg:npm/evil-pkg@1.0.0").unwrap();
        assert_eq!((p.ty.as_str(), p.name.as_str()), ("npm", "evil-pkg"));
        assert_eq!(p.version.as_deref(), Some("1.0.0"));
        assert_eq!(p.package_key(), "npm/evil-pkg");

        let p = parse_purl("pkg:npm/%40scope/name@2.0.0?arch=x#sub/path").unwrap();
        assert_eq!(p.namespace.as_deref(), Some("%40scope"));
        assert_eq!(p.name, "name");

        let p = parse_purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1").unwrap();
        assert_eq!(p.package_key(), "maven/org.apache.logging.log4j/log4j-core");

        assert!(parse_purl("pkg:pypi/requests").unwrap().version.is_none());
        for bad in [
            "npm/evil",
            "pkg:",
            "pkg:npm",
            "pkg:npm/",
            "pkg:NPM/evil",
            "pkg:npm/evil@",
            "pkg:npm/ev il",
            "pkg:npm/evil\u{0}",
            "pkg:npm/evil%zz",
            "pkg:npm/evil%4",
            "pkg:npm//evil",
            "pkg:1npm/evil",
        ] {
            assert!(parse_purl(bad).is_err(), "{bad} should be refused");
        }
        assert!(parse_purl(&format!("pkg:npm/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn hashes() {
        assert!(validate_sha256(&"a".repeat(64)).is_ok());
        assert!(validate_sha256(&"A".repeat(64)).is_err());
        assert!(validate_sha256(&"a".repeat(63)).is_err());
        assert!(validate_sha256(&"g".repeat(64)).is_err());
        assert!(validate_sha512(&"0".repeat(128)).is_ok());
        assert!(validate_sha512(&"0".repeat(64)).is_err());
    }

    #[test]
    fn domains() {
        for ok in ["evil.example", "xn--80ak6aa92e.com", "a-b.c0.io"] {
            assert!(validate_domain(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "Evil.example",
            "*.evil.example",
            "evil..example",
            "-evil.example",
            "evil-.example",
            "evil.example.",
            "1.2.3.4",
            "ｅvil.example",
            "ev_il.example",
        ] {
            assert!(validate_domain(bad).is_err(), "{bad} should be refused");
        }
        assert!(validate_domain(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn ips_and_urls() {
        assert!(validate_ip("192.0.2.1").is_ok());
        assert!(validate_ip("2001:db8::1").is_ok());
        assert!(validate_ip("2001:DB8::1").is_err());
        assert!(validate_ip("999.1.1.1").is_err());
        assert!(validate_url("https://evil.example/payload.sh").is_ok());
        assert!(validate_url("ftp://evil.example").is_err());
        assert!(validate_url("https:///path").is_err());
        assert!(validate_url("https://evil.example/a b").is_err());
    }

    #[test]
    fn accounts_repos_vulns() {
        assert!(validate_account("npm:evil-maintainer").is_ok());
        assert!(validate_account("evil").is_err());
        assert!(validate_account("NPM:evil").is_err());
        assert!(validate_account("npm:").is_err());
        assert!(validate_repo_url("https://github.com/org/repo").is_ok());
        assert!(validate_repo_url("git@github.com:org/repo.git").is_ok());
        assert!(validate_repo_url("file:///etc/passwd").is_err());
        assert!(validate_commit(&"a".repeat(40)).is_ok());
        assert!(validate_commit(&"a".repeat(39)).is_err());
        assert!(validate_tag("v1.2.3").is_ok());
        assert!(validate_tag("v1 2").is_err());
        for ok in [
            "CVE-2024-3094",
            "GHSA-abcd-1234-wxyz",
            "MAL-2024-1234",
            "PYSEC-2021-1",
            "RUSTSEC-2021-0001",
        ] {
            assert!(validate_vuln_id(ok).is_ok(), "{ok}");
        }
        for bad in ["CVE-24-1", "GHSA-abc", "mal-2024-1", "2024-1", "MAL-", ""] {
            assert!(validate_vuln_id(bad).is_err(), "{bad} should be refused");
        }
    }
}
