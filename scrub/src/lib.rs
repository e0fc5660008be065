//! What is signed and shared cannot be unsent: this crate finds personal
//! data, internal addresses and secrets in a statement before it is signed,
//! and tells whether an observable is on a list of known-benign ones.
//!
//! Pure: no I/O, no regular expressions (the matchers are hand-written,
//! one pass per detector). The agent runs it on every way in before
//! signing; the hub runs it on the TAXII writes it signs itself.
//!
//! The rules know which fields carry observables: a purl's `@version` or
//! a malicious domain in the observable is what the indicator is about and
//! is not a finding; the same text in a description may be.

#![forbid(unsafe_code)]

pub mod benign;
mod detect;
mod reference;
#[cfg(test)]
mod tests;

use std::fmt;

use isac_core::statement::{Body, Observable, Statement};

/// A field longer than this is refused rather than scanned (statements are
/// far smaller; this bounds the work on outside input).
pub const MAX_FIELD_BYTES: usize = 1 << 20;
/// The most text scanned for one statement, all fields together.
pub const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// What was found. The names are the `--allow` and `disabled` spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Email,
    Phone,
    Person,
    InternalIp,
    OwnHost,
    PathUser,
    Secret,
    Pattern,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Email,
        Kind::Phone,
        Kind::Person,
        Kind::InternalIp,
        Kind::OwnHost,
        Kind::PathUser,
        Kind::Secret,
        Kind::Pattern,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Person => "person",
            Kind::InternalIp => "internal-ip",
            Kind::OwnHost => "own-host",
            Kind::PathUser => "path-user",
            Kind::Secret => "secret",
            Kind::Pattern => "pattern",
        }
    }

    /// What `redact` puts in its place.
    pub fn placeholder(self) -> &'static str {
        match self {
            Kind::Email => "[email]",
            Kind::Phone => "[phone]",
            Kind::Person => "[person]",
            Kind::InternalIp => "[internal-ip]",
            Kind::OwnHost => "[own-host]",
            Kind::PathUser => "[user]",
            Kind::Secret => "[secret]",
            Kind::Pattern => "[redacted]",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown finding kind `{0}`: use one of email, phone, person, internal-ip, own-host, path-user, secret, pattern")]
pub struct UnknownKind(pub String);

impl std::str::FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// The member's rules (agent.toml `[scrub]`).
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Domains the member owns: host names under them are findings (lowercase).
    pub own_domains: Vec<String>,
    /// People's names, matched whole-word and case-insensitively.
    pub people: Vec<String>,
    /// Literal strings that must never leave (project code names, ...).
    pub patterns: Vec<String>,
    /// Kinds not looked for.
    pub disabled: Vec<Kind>,
}

impl Rules {
    /// Lowercases domains and drops empty entries (they would match everything).
    pub fn normalized(mut self) -> Self {
        let clean = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|s| s.trim().trim_matches('.').to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        self.own_domains = clean(self.own_domains)
            .into_iter()
            .map(|d| d.to_ascii_lowercase())
            .collect();
        self.people = clean(self.people);
        self.patterns = clean(self.patterns);
        self
    }

    fn on(&self, k: Kind) -> bool {
        !self.disabled.contains(&k)
    }
}

/// How a field is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Free text (titles, descriptions, bodies, references, tags): everything.
    Prose,
    /// An observable that names a place (domain, IP, URL, repository,
    /// account, file name): the observed thing itself is the point, so no
    /// e-mail, phone or name rules; internal addresses, own hosts, user
    /// names in paths and secrets still are findings.
    Locator,
    /// An identifier (purl, version range, hash, commit, vulnerability id):
    /// only secrets and the member's own patterns.
    Identifier,
}

impl Role {
    fn looks_for(self, k: Kind) -> bool {
        match self {
            Role::Prose => true,
            Role::Locator => !matches!(k, Kind::Email | Kind::Phone | Kind::Person),
            Role::Identifier => matches!(k, Kind::Secret | Kind::Pattern),
        }
    }
}

/// One finding: where, what, and an excerpt with the finding (and any
/// other finding near it) already replaced by placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub field: String,
    /// Byte offset in the field.
    pub at: usize,
    pub kind: Kind,
    /// E.g. "GitHub token", "private address (RFC 1918)".
    pub detail: &'static str,
    pub excerpt: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {}: {} ({}): \"{}\"",
            self.field, self.at, self.kind, self.detail, self.excerpt
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("{field} is {len} bytes; at most {max} are scanned, shorten it")]
    FieldTooLarge {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("the statement's text is {len} bytes; at most {max} are scanned, shorten it")]
    StatementTooLarge { len: usize, max: usize },
}

/// What one field scan found, with its redacted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldScan {
    pub findings: Vec<Finding>,
    pub redacted: String,
}

/// Scans one field.
pub fn scan_text(
    field: &str,
    text: &str,
    role: Role,
    rules: &Rules,
) -> Result<FieldScan, ScanError> {
    scan_with(field, text, role, rules, Matchers::Fast)
}

/// `scan_text` with the plain one-pass matchers the fast ones replaced
/// (`reference.rs`): the oracle for differential tests and the fuzz
/// target, which require both to give the same result. Not for use.
#[doc(hidden)]
pub fn scan_text_reference(
    field: &str,
    text: &str,
    role: Role,
    rules: &Rules,
) -> Result<FieldScan, ScanError> {
    scan_with(field, text, role, rules, Matchers::Reference)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matchers {
    Fast,
    Reference,
}

/// Every detector's hits, in the order the detectors run (which decides
/// overlaps between equal ranges).
fn detect(text: &str, role: Role, rules: &Rules, m: Matchers) -> Vec<detect::Hit> {
    let t = text.as_bytes();
    let x = detect::Text::new(t);
    let mut hits = Vec::new();
    let want = |k: Kind| rules.on(k) && role.looks_for(k);
    let fast = m == Matchers::Fast;
    if want(Kind::Secret) {
        if fast {
            detect::secrets(&x, &mut hits);
        } else {
            reference::secrets(t, &mut hits);
        }
    }
    if want(Kind::Email) {
        if fast {
            detect::emails(t, &mut hits);
        } else {
            reference::emails(t, &mut hits);
        }
    }
    if want(Kind::InternalIp) {
        if fast {
            detect::internal_ips(t, &mut hits);
        } else {
            reference::internal_ips(t, &mut hits);
        }
    }
    if want(Kind::OwnHost) {
        if fast {
            detect::own_hosts(&x, rules, &mut hits);
        } else {
            reference::own_hosts(t, rules, &mut hits);
        }
    }
    if want(Kind::PathUser) {
        if fast {
            detect::path_users(&x, &mut hits);
        } else {
            reference::path_users(t, &mut hits);
        }
    }
    for (kind, list, detail) in [
        (Kind::Person, &rules.people, "a person's name"),
        (Kind::Pattern, &rules.patterns, "one of your own patterns"),
    ] {
        if want(kind) {
            if fast {
                detect::literals(&x, list, kind, detail, &mut hits);
            } else {
                reference::literals(t, list, kind, detail, &mut hits);
            }
        }
    }
    if want(Kind::Phone) {
        if fast {
            detect::phones(t, &mut hits);
        } else {
            reference::phones(t, &mut hits);
        }
    }
    hits
}

fn scan_with(
    field: &str,
    text: &str,
    role: Role,
    rules: &Rules,
    m: Matchers,
) -> Result<FieldScan, ScanError> {
    if text.len() > MAX_FIELD_BYTES {
        return Err(ScanError::FieldTooLarge {
            field: field.to_owned(),
            len: text.len(),
            max: MAX_FIELD_BYTES,
        });
    }
    let mut hits = detect(text, role, rules, m);
    // Overlaps: the earlier (and then the longer) wins; secrets were pushed
    // first, so a token inside a URL stays a secret.
    hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
    let mut kept: Vec<detect::Hit> = Vec::with_capacity(hits.len());
    for h in hits {
        if kept.last().is_none_or(|k| h.start >= k.end) {
            kept.push(h);
        }
    }
    // Redact, remembering where each placeholder landed for the excerpts.
    let mut redacted = String::with_capacity(text.len());
    let mut landed = Vec::with_capacity(kept.len());
    let mut last = 0;
    for h in &kept {
        redacted.push_str(&text[last..h.start]);
        let at = redacted.len();
        redacted.push_str(h.kind.placeholder());
        landed.push((at, redacted.len()));
        last = h.end;
    }
    redacted.push_str(&text[last..]);
    let findings = kept
        .iter()
        .zip(landed)
        .map(|(h, (s, e))| Finding {
            field: field.to_owned(),
            at: h.start,
            kind: h.kind,
            detail: h.detail,
            excerpt: excerpt(&redacted, s, e),
        })
        .collect();
    Ok(FieldScan { findings, redacted })
}

fn excerpt(text: &str, s: usize, e: usize) -> String {
    const CONTEXT: usize = 24;
    let mut a = s.saturating_sub(CONTEXT);
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = (e + CONTEXT).min(text.len());
    while !text.is_char_boundary(b) {
        b += 1;
    }
    let mut out = String::new();
    if a > 0 {
        out.push('…');
    }
    out.extend(
        text[a..b]
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c }),
    );
    if b < text.len() {
        out.push('…');
    }
    out
}

/// Calls `f` with every scanned text field of `st`: its name, its role, and
/// the text (mutable, so redaction rewrites it in place).
pub fn visit_fields(st: &mut Statement, f: &mut dyn FnMut(String, Role, &mut String)) {
    use Role::*;
    let opt =
        |name: &str, role, v: &mut Option<String>, f: &mut dyn FnMut(String, Role, &mut String)| {
            if let Some(v) = v {
                f(name.to_owned(), role, v);
            }
        };
    let list =
        |name: &str, role, v: &mut Vec<String>, f: &mut dyn FnMut(String, Role, &mut String)| {
            for (i, s) in v.iter_mut().enumerate() {
                f(format!("{name}[{i}]"), role, s);
            }
        };
    match &mut st.body {
        Body::Indicator(ind) => {
            f("title".into(), Prose, &mut ind.title);
            f("description".into(), Prose, &mut ind.description);
            list("references", Prose, &mut ind.references, f);
            list("tags", Prose, &mut ind.tags, f);
            match &mut ind.observable {
                Observable::Package {
                    purl,
                    versions,
                    threat: _,
                    imitates,
                } => {
                    f("purl".into(), Identifier, purl);
                    list("versions", Identifier, versions, f);
                    opt("imitates", Identifier, imitates, f);
                }
                Observable::Artifact {
                    sha256,
                    sha512,
                    purl,
                    filename,
                } => {
                    opt("sha256", Identifier, sha256, f);
                    opt("sha512", Identifier, sha512, f);
                    opt("purl", Identifier, purl, f);
                    opt("filename", Locator, filename, f);
                }
                Observable::Repository { url, commit, tag } => {
                    f("repo_url".into(), Locator, url);
                    opt("commit", Identifier, commit, f);
                    opt("tag", Identifier, tag, f);
                }
                Observable::Account { account } => f("account".into(), Locator, account),
                Observable::Network { domain, ip, url } => {
                    opt("domain", Locator, domain, f);
                    opt("ip", Locator, ip, f);
                    opt("url", Locator, url, f);
                }
                Observable::Vulnerability { vuln_id, purls } => {
                    f("vuln_id".into(), Identifier, vuln_id);
                    list("affected_purls", Identifier, purls, f);
                }
            }
        }
        Body::Bulletin(b) => {
            f("title".into(), Prose, &mut b.title);
            f("body".into(), Prose, &mut b.body);
            opt("incident_id", Prose, &mut b.incident_id, f);
        }
        Body::Retraction(r) => f("reason".into(), Prose, &mut r.reason),
        Body::Sighting(_) => {}
    }
}

/// Scans every text field of `st`; returns the findings and the statement
/// with each finding replaced by its placeholder.
pub fn scan_statement(
    st: &Statement,
    rules: &Rules,
) -> Result<(Vec<Finding>, Statement), ScanError> {
    let mut out = st.clone();
    let mut findings = Vec::new();
    let mut total = 0usize;
    let mut err = None;
    visit_fields(&mut out, &mut |name, role, text| {
        if err.is_some() {
            return;
        }
        total += text.len();
        if total > MAX_STATEMENT_BYTES {
            err = Some(ScanError::StatementTooLarge {
                len: total,
                max: MAX_STATEMENT_BYTES,
            });
            return;
        }
        match scan_text(&name, text, role, rules) {
            Ok(scan) => {
                if !scan.findings.is_empty() {
                    *text = scan.redacted;
                    findings.extend(scan.findings);
                }
            }
            Err(e) => err = Some(e),
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok((findings, out)),
    }
}
