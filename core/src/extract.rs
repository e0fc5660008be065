//! Observables in free text (issue 22, MISP's free-text import as the
//! reference): what an analyst pastes from a report, a chat or an e-mail
//! (purls, SHA-256/512 hashes, domains, URLs, IP addresses, CVE/GHSA/OSV
//! ids), each checked with [`crate::observable`]'s validators, so only
//! values a statement could carry come out.
//!
//! The text is hostile and may be large: at most [`MAX_TEXT_BYTES`] are
//! read and at most [`MAX_OBSERVABLES`] distinct values returned (the rest
//! is reported as cut, never silently dropped); one pass over the text,
//! no recursion, no regex. Defanged spellings (`hxxp://`, `evil[.]example`,
//! `1.2.3[.]4`) are read as the real ones.

use crate::observable::{
    parse_purl, validate_domain, validate_ip, validate_sha256, validate_sha512, validate_url,
    validate_vuln_id,
};

/// Text past this many bytes is not read.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// At most this many distinct observables are returned.
pub const MAX_OBSERVABLES: usize = 500;
/// Longer tokens are skipped (no observable we take is longer).
const MAX_TOKEN: usize = 2048;

/// What kind of value was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FoundKind {
    Purl,
    Sha256,
    Sha512,
    Domain,
    Ip,
    Url,
    Vulnerability,
}

impl FoundKind {
    /// How the console names it.
    pub fn label(self) -> &'static str {
        match self {
            FoundKind::Purl => "package (purl)",
            FoundKind::Sha256 => "sha256",
            FoundKind::Sha512 => "sha512",
            FoundKind::Domain => "domain",
            FoundKind::Ip => "IP address",
            FoundKind::Url => "URL",
            FoundKind::Vulnerability => "vulnerability id",
        }
    }
}

/// One observable found, as a statement would carry it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Found {
    pub kind: FoundKind,
    pub value: String,
}

/// Everything found, in order of first appearance, each value once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub found: Vec<Found>,
    /// The text was longer than [`MAX_TEXT_BYTES`] or held more than
    /// [`MAX_OBSERVABLES`] values: the rest was not read.
    pub cut: bool,
}

/// Characters that end a token (besides whitespace): quotes, brackets and
/// list separators around values in prose, JSON, CSV and Markdown.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '"' | '\'' | '`' | '<' | '>' | '(' | ')' | '{' | '}' | ',' | ';' | '|' | '\\'
        )
}

/// The usual ways of defanging, undone (ASCII case-insensitive `hxxp`).
fn refang(text: &str) -> String {
    let mut s = text
        .replace("[.]", ".")
        .replace("(.)", ".")
        .replace("{.}", ".")
        .replace("[dot]", ".")
        .replace("[:]", ":")
        .replace("[://]", "://");
    for (from, to) in [
        ("hxxps://", "https://"),
        ("hxxp://", "http://"),
        ("HXXPS://", "https://"),
        ("HXXP://", "http://"),
        ("hXXps://", "https://"),
        ("hXXp://", "http://"),
    ] {
        s = s.replace(from, to);
    }
    s
}

/// Common file extensions that read like top-level domains in prose
/// (`package.json`, `setup.py`): not taken as domains.
const FILE_EXTENSIONS: &[&str] = &[
    "json", "lock", "txt", "js", "mjs", "cjs", "ts", "py", "rs", "md", "html", "htm", "exe", "dll",
    "zip", "tar", "gz", "tgz", "sh", "yml", "yaml", "toml", "xml", "log", "png", "jpg", "gif",
    "pdf", "csv", "ini", "cfg", "conf", "jar", "whl", "gem", "so", "bin", "php", "rb", "go",
    "java", "c", "h", "cpp", "css", "sum", "mod", "nupkg", "crate", "deb", "rpm", "msi", "dmg",
    "ps1", "bat", "vbs", "docx", "xlsx", "pptx", "doc", "xls",
];

/// A domain worth proposing: valid, and its last label letters only, two
/// or more, and not a file extension.
fn plausible_domain(s: &str) -> bool {
    let Some((_, tld)) = s.rsplit_once('.') else {
        return false;
    };
    tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_lowercase())
        && !FILE_EXTENSIONS.contains(&tld)
        && validate_domain(s).is_ok()
}

/// What one token is, if it is an observable.
fn classify(token: &str) -> Option<Found> {
    let found = |kind, value: &str| {
        Some(Found {
            kind,
            value: value.to_owned(),
        })
    };
    if token.len() > MAX_TOKEN || token.is_empty() {
        return None;
    }
    if token.starts_with("pkg:") {
        // Less the punctuation that ends a sentence after it.
        let token = token.trim_end_matches(['.', ',', '!', '?', ':']);
        return parse_purl(token)
            .ok()
            .and_then(|_| found(FoundKind::Purl, token));
    }
    let lower = token.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        // Scheme and host are case-insensitive; the path is kept as
        // written, less the punctuation that ends a sentence after it.
        let token = token.trim_end_matches(['.', ',', '!', ':', ']']);
        let (scheme, rest) = token.split_once("://")?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let url = format!(
            "{}://{}{}",
            scheme.to_ascii_lowercase(),
            rest[..end].to_ascii_lowercase(),
            &rest[end..]
        );
        return validate_url(&url)
            .ok()
            .and_then(|_| found(FoundKind::Url, &url));
    }
    let hash = lower
        .strip_prefix("sha256:")
        .or_else(|| lower.strip_prefix("sha512:"))
        .unwrap_or(&lower);
    if validate_sha256(hash).is_ok() {
        return found(FoundKind::Sha256, hash);
    }
    if validate_sha512(hash).is_ok() {
        return found(FoundKind::Sha512, hash);
    }
    if validate_ip(token).is_ok() {
        return found(FoundKind::Ip, token);
    }
    if lower.starts_with("cve-") {
        let cve = format!("CVE-{}", &token[4..]);
        return validate_vuln_id(&cve)
            .ok()
            .and_then(|_| found(FoundKind::Vulnerability, &cve));
    }
    if ["GHSA-", "MAL-", "PYSEC-", "GO-", "RUSTSEC-", "OSV-"]
        .iter()
        .any(|p| token.starts_with(p))
        && validate_vuln_id(token).is_ok()
    {
        return found(FoundKind::Vulnerability, token);
    }
    // An e-mail address: its domain; a host with a path but no scheme: the host.
    let host = lower.rsplit_once('@').map_or(lower.as_str(), |(_, d)| d);
    let host = host.split('/').next().unwrap_or(host);
    if plausible_domain(host) {
        return found(FoundKind::Domain, host);
    }
    None
}

/// Punctuation that ends a sentence or wraps a value, trimmed when the
/// token as written is not an observable.
fn trim(token: &str) -> &str {
    token
        .trim_start_matches(['*', '-', '[', ':', '.'])
        .trim_end_matches(['.', ':', '!', '?', '*', ']', '='])
}

/// Every observable in `text` (see the module documentation).
pub fn extract(text: &str) -> Extracted {
    let mut cut = false;
    let text = if text.len() > MAX_TEXT_BYTES {
        cut = true;
        let mut end = MAX_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    } else {
        text
    };
    let text = refang(text);
    let mut out = Extracted::default();
    let mut seen = std::collections::HashSet::new();
    for token in text.split(is_separator) {
        let Some(f) = classify(token).or_else(|| classify(trim(token))) else {
            continue;
        };
        if seen.contains(&f) {
            continue;
        }
        if out.found.len() == MAX_OBSERVABLES {
            cut = true;
            break;
        }
        seen.insert(f.clone());
        out.found.push(f);
    }
    out.cut = cut;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(FoundKind, String)> {
        extract(text)
            .found
            .into_iter()
            .map(|f| (f.kind, f.value))
            .collect()
    }

    #[test]
    fn a_pasted_report_gives_every_observable_once() {
        let report = "Hi team,\n\
            the package pkg:npm/evil-pkg@1.0.0 (and pkg:npm/%40scope/evil@2.0.0) phones home to\n\
            c2.badcdn.example and hxxps://drop[.]evil[.]example/stage2?id=7. The tarball's sha256 is\n\
            9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08; also seen: 203.0.113.7,\n\
            2001:db8::1, \"evil[.]example\" and CVE-2024-12345 / GHSA-abcd-efgh-ijkl in github.com/acme/x.\n\
            Contact: abuse@registrar.example. Again: c2.badcdn.example. See package.json and setup.py, e.g. v1.2.3.";
        assert_eq!(
            values(report),
            vec![
                (FoundKind::Purl, "pkg:npm/evil-pkg@1.0.0".into()),
                (FoundKind::Purl, "pkg:npm/%40scope/evil@2.0.0".into()),
                (FoundKind::Domain, "c2.badcdn.example".into()),
                (
                    FoundKind::Url,
                    "https://drop.evil.example/stage2?id=7".into()
                ),
                (
                    FoundKind::Sha256,
                    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()
                ),
                (FoundKind::Ip, "203.0.113.7".into()),
                (FoundKind::Ip, "2001:db8::1".into()),
                (FoundKind::Domain, "evil.example".into()),
                (FoundKind::Vulnerability, "CVE-2024-12345".into()),
                (FoundKind::Vulnerability, "GHSA-abcd-efgh-ijkl".into()),
                (FoundKind::Domain, "github.com".into()),
                (FoundKind::Domain, "registrar.example".into()),
            ]
        );
        assert!(!extract(report).cut);
    }

    #[test]
    fn scoped_purls_keep_either_spelling_and_urls_their_path() {
        assert_eq!(
            values("pkg:npm/@scope/name@1.0.0 HTTPS://Evil.Example/A/B. pkg:pypi/x@1.3.0."),
            vec![
                (FoundKind::Purl, "pkg:npm/@scope/name@1.0.0".into()),
                (FoundKind::Url, "https://evil.example/A/B".into()),
                (FoundKind::Purl, "pkg:pypi/x@1.3.0".into()),
            ]
        );
        assert_eq!(
            values(&format!("sha512:{}", "ab".repeat(64))),
            vec![(FoundKind::Sha512, "ab".repeat(64))]
        );
    }

    #[test]
    fn prose_without_observables_gives_nothing() {
        for text in [
            "",
            "nothing to see here, i.e. plain words.",
            "version 1.2.3 of the thing",
            "md5 d41d8cd98f00b204e9800998ecf8427e and sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "a.b x.y1 localhost -.- ...",
            "pkg: not-a-purl pkg:/",
        ] {
            assert_eq!(values(text), vec![], "{text}");
        }
    }

    #[test]
    fn limits_cut_and_say_so() {
        let many: String = (0..MAX_OBSERVABLES + 10)
            .map(|n| format!("host{n}.example "))
            .collect();
        let e = extract(&many);
        assert_eq!(e.found.len(), MAX_OBSERVABLES);
        assert!(e.cut);
        let long = format!("evil.example {}", "x".repeat(MAX_TEXT_BYTES));
        let e = extract(&long);
        assert!(e.cut);
        assert_eq!(e.found.len(), 1);
        // Cut inside a multi-byte character: no panic.
        let wide = "é".repeat(MAX_TEXT_BYTES);
        assert!(extract(&wide).cut);
        // Repeats of one value count once.
        let same = "evil.example ".repeat(10_000);
        let e = extract(&same);
        assert_eq!((e.found.len(), e.cut), (1, false));
    }
}
