//! The parse direction of [`crate::stix`]: STIX 2.1 bundles (ours, or
//! another producer's) as indicator and bulletin contents, for
//! `member-agent publish --stix FILE`. Pure: the caller reads the file,
//! picks statement ids, signs and sends.
//!
//! What becomes what:
//! - `indicator` with `pattern_type` `stix`: one indicator per observable the
//!   pattern names (`software` name/vendor/version or purl, `file` SHA-256 /
//!   SHA-512 hashes, `domain-name`, `url`, `ipv4-addr`, `ipv6-addr`,
//!   `user-account`); our own exports carry `x_isac_observable`, which is
//!   taken as is, so a round trip keeps ranges and threat kinds.
//! - `vulnerability`: a vulnerability indicator (CVE, GHSA or OSV id), with
//!   the purls of `software` objects that `has` it; skipped when an
//!   indicator of the bundle already names that id (our exports pair them).
//! - `software`: a package indicator (a purl in `x_isac_purl`, `purl` or
//!   `x_purl`, or a purl type in `vendor`), unless it only describes a
//!   vulnerability it `has`.
//! - `malware`: one artifact indicator per sample (`sample_refs`) with a
//!   SHA-256 or SHA-512 hash; without samples it is context, skipped when an
//!   indicator `indicates` it, invalid otherwise.
//! - `report`: a bulletin (the caller must be a coordinator), related to the
//!   bundle's imported indicators it refers to.
//! - `revoked: true` on any of these: retract what an earlier import made.
//! - identities, marking definitions, relationships, sightings and other
//!   types: skipped, with the reason.
//!
//! TLP comes from `object_marking_refs`: the official TLP 2.0 and TLP 1.0
//! marking-definition ids, or marking definitions in the bundle whose TLP
//! they state; the strictest wins. Objects with none get the caller's
//! default. Each problem names the object by path, e.g.
//! `objects[3] (indicator--…)`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::statement::{Indicator, Observable, PackageThreat, Severity};
use crate::stix::ENVELOPE_SOURCE_NAME;
use crate::tlp::{Tlp, ALL_LEVELS};

/// Largest bundle object count accepted.
pub const MAX_OBJECTS: usize = 100_000;

/// The official TLP 1.0 marking definitions (STIX 2.1 §7.2.1.4), mapped to
/// TLP 2.0 as FIRST does (WHITE became CLEAR).
pub const TLP_1_MARKINGS: [(&str, Tlp); 4] = [
    (
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        Tlp::Clear,
    ),
    (
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        Tlp::Green,
    ),
    (
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        Tlp::Amber,
    ),
    (
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        Tlp::Red,
    ),
];

/// The level an official TLP 2.0 or TLP 1.0 marking-definition id stands for.
pub fn tlp_of_marking_id(id: &str) -> Option<Tlp> {
    ALL_LEVELS
        .into_iter()
        .find(|t| t.stix_marking_id() == id)
        .or_else(|| {
            TLP_1_MARKINGS
                .iter()
                .find(|(m, _)| *m == id)
                .map(|(_, t)| *t)
        })
}

/// The level a marking-definition object states: the TLP 2.0 extension's
/// `tlp_2_0`, TLP 1.0's `definition_type: tlp`, or its official id.
fn tlp_of_marking_object(o: &Value) -> Option<Tlp> {
    if let Some(t) = o
        .get("extensions")
        .and_then(Value::as_object)
        .and_then(|e| e.values().find_map(|x| x.get("tlp_2_0")))
        .and_then(Value::as_str)
    {
        return t.parse().ok();
    }
    if o.get("definition_type").and_then(Value::as_str) == Some("tlp") {
        return match o.pointer("/definition/tlp").and_then(Value::as_str)? {
            "white" | "clear" => Some(Tlp::Clear),
            other => other.parse().ok(),
        };
    }
    o.get("id")
        .and_then(Value::as_str)
        .and_then(tlp_of_marking_id)
}

/// What one bundle object yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// One indicator per observable (a pattern may name several).
    Indicators(Vec<Indicator>),
    Bulletin {
        title: String,
        body: String,
        severity: Severity,
        incident_id: Option<String>,
        /// STIX ids of the bundle objects it refers to.
        refs: Vec<String>,
    },
    /// `revoked: true`: retract what an earlier import of this id made.
    Revoked,
}

/// An importable object of the bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedObject {
    /// `objects[N] (type--uuid)`.
    pub path: String,
    pub stix_id: String,
    pub stix_type: String,
    /// `modified` (or, for objects without one, a digest of the object):
    /// a re-import with the same version changes nothing.
    pub version: String,
    /// From the object's markings; `None` when it has none.
    pub tlp: Option<Tlp>,
    pub content: Content,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BundleImport {
    pub objects: Vec<ImportedObject>,
    /// Objects that carry nothing to publish: (path, why).
    pub skipped: Vec<(String, String)>,
    /// Objects that cannot be imported: (path, problem).
    pub invalid: Vec<(String, String)>,
}

/// How problems name an object: `objects[N] (type--uuid)`.
pub fn path_of(index: usize, o: &Value) -> String {
    match o.get("id").and_then(Value::as_str) {
        Some(id) => format!("objects[{index}] ({})", truncate(id, 100)),
        None => format!("objects[{index}]"),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn str_field<'a>(o: &'a Value, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

fn str_list(o: &Value, k: &str) -> Vec<String> {
    o.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A STIX timestamp as a statement timestamp (whole seconds, `Z`).
fn statement_time(s: &str) -> Result<String, String> {
    crate::time::parse_rfc3339(s)
        .map(crate::time::format_rfc3339)
        .map_err(|e| e.to_string())
}

fn check_id(o: &Value) -> Result<(String, String), String> {
    let ty = str_field(o, "type").ok_or("no `type`")?;
    let id = str_field(o, "id").ok_or("no `id`")?;
    let uuid = id
        .strip_prefix(ty)
        .and_then(|r| r.strip_prefix("--"))
        .ok_or_else(|| format!("id `{}` does not start with `{ty}--`", truncate(id, 100)))?;
    uuid::Uuid::parse_str(uuid)
        .map_err(|_| format!("id `{}` does not end in a UUID", truncate(id, 100)))?;
    if let Some(v) = o.get("spec_version") {
        if v.as_str() != Some("2.1") {
            return Err(format!("spec_version {v} is not 2.1"));
        }
    }
    Ok((ty.to_owned(), id.to_owned()))
}

// === patterns ===

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    LParen,
    RParen,
    And,
    Or,
    Eq,
    Str(String),
    Path(String),
    Other(String),
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '[' => {
                chars.next();
                out.push(Token::Open)
            }
            ']' => {
                chars.next();
                out.push(Token::Close)
            }
            '(' => {
                chars.next();
                out.push(Token::LParen)
            }
            ')' => {
                chars.next();
                out.push(Token::RParen)
            }
            '=' => {
                chars.next();
                out.push(Token::Eq)
            }
            '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some(e @ ('\'' | '\\')) => s.push(e),
                            _ => return Err("bad escape in a string literal".into()),
                        },
                        Some('\'') => break,
                        Some(c) => s.push(c),
                        None => return Err("unterminated string literal".into()),
                    }
                }
                out.push(Token::Str(s));
            }
            _ => {
                // A word: an object path (may hold quoted segments such as
                // hashes.'SHA-256'), a keyword or another operator.
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '[' | ']' | '(' | ')' | '=') {
                        break;
                    }
                    if c == '\'' {
                        if !w.ends_with('.') {
                            break;
                        }
                        chars.next();
                        w.push('\'');
                        for c in chars.by_ref() {
                            w.push(c);
                            if c == '\'' {
                                break;
                            }
                        }
                        continue;
                    }
                    w.push(c);
                    chars.next();
                }
                if w.is_empty() {
                    return Err(format!("unexpected `{c}`"));
                }
                out.push(match w.as_str() {
                    "AND" => Token::And,
                    "OR" => Token::Or,
                    _ if w.contains(':') => Token::Path(w),
                    _ => Token::Other(w),
                });
            }
        }
    }
    Ok(out)
}

/// A comparison expression inside one observation.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Cmp { path: String, value: String },
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// Deepest parenthesis nesting a pattern may use. Real patterns nest a few
/// levels; the parser recurses once per level, so an unbounded depth lets
/// one hostile pattern overflow the stack of whichever thread parses it
/// (a hub worker, for a TAXII POST).
pub const MAX_PATTERN_NESTING: usize = 64;

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// Parentheses open at the current position.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn expect(&mut self, want: Token) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(Token::Other(w)) => Err(format!("`{w}` is not supported")),
            other => Err(format!("expected {want:?}, found {other:?}")),
        }
    }
    /// pattern := observation (OR observation)*
    fn pattern(&mut self) -> Result<Vec<Expr>, String> {
        let mut obs = vec![self.observation()?];
        while let Some(t) = self.next() {
            match t {
                Token::Or => obs.push(self.observation()?),
                Token::And => return Err("observations joined by AND cannot be imported".into()),
                Token::Other(w) => return Err(format!("`{w}` is not supported")),
                t => return Err(format!("unexpected {t:?} between observations")),
            }
        }
        Ok(obs)
    }
    fn observation(&mut self) -> Result<Expr, String> {
        self.expect(Token::Open)?;
        let e = self.or_expr()?;
        self.expect(Token::Close)?;
        Ok(e)
    }
    fn or_expr(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.and_expr()?];
        while self.peek() == Some(&Token::Or) {
            self.next();
            parts.push(self.and_expr()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }
    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.term()?];
        while self.peek() == Some(&Token::And) {
            self.next();
            parts.push(self.term()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }
    fn term(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::LParen) => {
                if self.depth >= MAX_PATTERN_NESTING {
                    return Err(format!(
                        "pattern nests parentheses more than {MAX_PATTERN_NESTING} levels deep (the nesting limit); flatten it"
                    ));
                }
                self.depth += 1;
                let e = self.or_expr()?;
                self.expect(Token::RParen)?;
                self.depth -= 1;
                Ok(e)
            }
            Some(Token::Path(path)) => match self.next() {
                Some(Token::Eq) => match self.next() {
                    Some(Token::Str(value)) => Ok(Expr::Cmp { path, value }),
                    other => Err(format!("`{path} =` needs a string, found {other:?}")),
                },
                Some(Token::Other(op)) => {
                    Err(format!("operator `{op}` is not supported (only `=`)"))
                }
                other => Err(format!("expected `=` after `{path}`, found {other:?}")),
            },
            other => Err(format!("expected a comparison, found {other:?}")),
        }
    }
}

fn flatten_or(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Or(v) => v.iter().flat_map(flatten_or).collect(),
        e => vec![e],
    }
}

fn comparisons(e: &Expr) -> Vec<(&str, &str)> {
    match e {
        Expr::Cmp { path, value } => vec![(path.as_str(), value.as_str())],
        Expr::And(v) | Expr::Or(v) => v.iter().flat_map(comparisons).collect(),
    }
}

/// Purl types a `software:vendor` may name (as our exports write it).
const PURL_TYPES: [&str; 16] = [
    "npm",
    "pypi",
    "cargo",
    "golang",
    "maven",
    "gem",
    "nuget",
    "composer",
    "hex",
    "pub",
    "swift",
    "cocoapods",
    "conda",
    "cran",
    "hackage",
    "github",
];

fn encode_purl_segment(s: &str) -> String {
    s.replace('%', "%25")
        .replace('@', "%40")
        .replace(' ', "%20")
}

/// A purl from a software name and vendor (ecosystem), as our exports
/// write them: `scope/name` for namespaced names, `group:artifact` for maven.
fn purl_from_name(vendor: &str, name: &str, version: Option<&str>) -> Result<String, String> {
    let ty = vendor.to_ascii_lowercase();
    if !PURL_TYPES.contains(&ty.as_str()) {
        return Err(format!(
            "software vendor `{}` is not a package ecosystem and no purl is given",
            truncate(vendor, 64)
        ));
    }
    let (ns, n) = if ty == "maven" {
        match name.split_once(':') {
            Some((g, a)) => (Some(g), a),
            None => (None, name),
        }
    } else {
        match name.rsplit_once('/') {
            Some((ns, n)) => (Some(ns), n),
            None => (None, name),
        }
    };
    let mut p = format!("pkg:{ty}/");
    if let Some(ns) = ns {
        let segs: Vec<String> = ns.split('/').map(encode_purl_segment).collect();
        p.push_str(&segs.join("/"));
        p.push('/');
    }
    p.push_str(&encode_purl_segment(n));
    if let Some(v) = version {
        p.push('@');
        p.push_str(&encode_purl_segment(v));
    }
    Ok(p)
}

fn object_type(path: &str) -> &str {
    path.split_once(':').map_or(path, |(t, _)| t)
}

fn property(path: &str) -> &str {
    path.split_once(':').map_or("", |(_, p)| p)
}

/// The observables one observation names.
fn observables_of(obs: &Expr, threat: PackageThreat) -> Result<Vec<Observable>, String> {
    let cmps = comparisons(obs);
    let ty = object_type(cmps[0].0);
    fn family(t: &str) -> &str {
        match t {
            "domain-name" | "url" | "ipv4-addr" | "ipv6-addr" => "network",
            t => t,
        }
    }
    if let Some((p, _)) = cmps
        .iter()
        .find(|(p, _)| family(object_type(p)) != family(ty))
    {
        return Err(format!(
            "an observation mixes `{ty}` and `{}` objects",
            object_type(p)
        ));
    }
    let unsupported = |p: &str| {
        Err(format!(
            "`{}` cannot be imported (supported: software name/vendor/version or purl, file hashes SHA-256/SHA-512, domain-name, url, ipv4-addr, ipv6-addr, user-account)",
            truncate(p, 80)
        ))
    };
    match ty {
        "domain-name" | "url" | "ipv4-addr" | "ipv6-addr" => {
            let mut out = Vec::new();
            for alt in flatten_or(obs) {
                let Expr::Cmp { path, value } = alt else {
                    return Err(format!(
                        "`{ty}` values joined by AND cannot be imported; use OR"
                    ));
                };
                if property(path) != "value" {
                    return unsupported(path);
                }
                let v = value.trim();
                out.push(match object_type(path) {
                    "domain-name" => Observable::Network {
                        domain: Some(v.to_ascii_lowercase()),
                        ip: None,
                        url: None,
                    },
                    "url" => Observable::Network {
                        domain: None,
                        ip: None,
                        url: Some(v.to_owned()),
                    },
                    _ => Observable::Network {
                        domain: None,
                        ip: Some(v.to_owned()),
                        url: None,
                    },
                });
            }
            Ok(out)
        }
        "file" => {
            let (mut sha256, mut sha512, mut filename, mut other) = (None, None, None, None);
            for (p, v) in &cmps {
                match property(p) {
                    "hashes.'SHA-256'" | "hashes.SHA256" | "hashes.'SHA256'" => {
                        sha256 = Some(v.trim().to_ascii_lowercase())
                    }
                    "hashes.'SHA-512'" | "hashes.SHA512" | "hashes.'SHA512'" => {
                        sha512 = Some(v.trim().to_ascii_lowercase())
                    }
                    "name" => filename = Some(v.to_string()),
                    prop if prop.starts_with("hashes.") => other = Some(prop.to_owned()),
                    _ => return unsupported(p),
                }
            }
            if sha256.is_none() && sha512.is_none() {
                return Err(match other {
                    Some(h) => {
                        format!("`file:{h}`: only SHA-256 and SHA-512 file hashes can be imported")
                    }
                    None => "a file pattern needs a SHA-256 or SHA-512 hash".into(),
                });
            }
            Ok(vec![Observable::Artifact {
                sha256,
                sha512,
                purl: None,
                filename,
            }])
        }
        "software" => {
            let (mut name, mut vendor, mut purl) = (None, None, None);
            let mut versions = Vec::new();
            for (p, v) in &cmps {
                match property(p) {
                    "name" => name = Some(v.to_string()),
                    "vendor" => vendor = Some(v.to_string()),
                    "version" => versions.push(v.to_string()),
                    "x_isac_purl" | "purl" | "x_purl" => purl = Some(v.trim().to_owned()),
                    _ => return unsupported(p),
                }
            }
            let purl = match (purl, name, vendor) {
                (Some(p), _, _) => p,
                (None, Some(n), Some(v)) => {
                    let one = (versions.len() == 1).then(|| versions[0].as_str());
                    let p = purl_from_name(&v, &n, one)?;
                    if one.is_some() {
                        versions.clear();
                    }
                    p
                }
                _ => {
                    return Err(
                        "a software pattern needs a purl, or a name and a vendor (ecosystem)"
                            .into(),
                    )
                }
            };
            Ok(vec![Observable::Package {
                purl,
                versions,
                threat,
                imitates: None,
            }])
        }
        "user-account" => {
            let (mut login, mut platform) = (None, None);
            for (p, v) in &cmps {
                match property(p) {
                    "account_login" | "user_id" => login = Some(v.to_string()),
                    "x_isac_platform" | "account_type" => platform = Some(v.to_string()),
                    _ => return unsupported(p),
                }
            }
            match (platform, login) {
                (Some(p), Some(l)) => Ok(vec![Observable::Account {
                    account: format!("{p}:{l}"),
                }]),
                _ => Err("a user-account pattern needs account_login and the platform (x_isac_platform or account_type)".into()),
            }
        }
        "x-isac-vulnerability" if property(cmps[0].0) == "name" && cmps.len() == 1 => {
            Ok(vec![Observable::Vulnerability {
                vuln_id: cmps[0].1.trim().to_owned(),
                purls: vec![],
            }])
        }
        _ => unsupported(cmps[0].0),
    }
}

/// The observables a STIX pattern names, one per value.
pub fn observables_from_pattern(pattern: &str) -> Result<Vec<Observable>, String> {
    observables_from_pattern_with(pattern, PackageThreat::Malicious)
}

fn observables_from_pattern_with(
    pattern: &str,
    threat: PackageThreat,
) -> Result<Vec<Observable>, String> {
    if pattern.len() > 64 * 1024 {
        return Err("pattern is longer than 64 KiB".into());
    }
    let tokens = tokenize(pattern)?;
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let mut out = Vec::new();
    for obs in p.pattern()? {
        out.extend(observables_of(&obs, threat)?);
    }
    Ok(out)
}

// === objects ===

struct Bundle<'a> {
    by_id: HashMap<&'a str, &'a Value>,
    markings: HashMap<&'a str, Tlp>,
    /// (source, relationship type, target).
    relationships: Vec<(&'a str, &'a str, &'a str)>,
}

impl Bundle<'_> {
    fn tlp_of(&self, o: &Value) -> Option<Tlp> {
        o.get("object_marking_refs")
            .and_then(Value::as_array)?
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|r| {
                self.markings
                    .get(r)
                    .copied()
                    .or_else(|| tlp_of_marking_id(r))
            })
            .max()
    }
}

fn severity_of(o: &Value, default: Severity) -> Result<Severity, String> {
    match str_field(o, "x_isac_severity") {
        Some(s) => s.parse().map_err(|e: String| e),
        None => Ok(default),
    }
}

fn references_of(o: &Value) -> Vec<String> {
    o.get("external_references")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|r| str_field(r, "source_name") != Some(ENVELOPE_SOURCE_NAME))
                .filter_map(|r| str_field(r, "url"))
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn title_of(o: &Value, fallback: impl FnOnce() -> String) -> String {
    let t = str_field(o, "name")
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(fallback);
    truncate(&t, crate::statement::MAX_TITLE_CHARS)
}

/// An indicator around one observable with the object's common fields.
fn indicator(o: &Value, observable: Observable, title: String) -> Result<Indicator, String> {
    let confidence = match o.get("confidence") {
        None => 50,
        Some(c) => c
            .as_u64()
            .filter(|c| *c <= 100)
            .ok_or_else(|| format!("confidence {c} is not 0-100"))? as u8,
    };
    let valid_from = str_field(o, "valid_from").map(statement_time).transpose()?;
    let valid_until = str_field(o, "valid_until")
        .map(statement_time)
        .transpose()?;
    Ok(Indicator {
        observable,
        title,
        description: str_field(o, "description").unwrap_or_default().to_owned(),
        severity: severity_of(o, Severity::Medium)?,
        confidence,
        references: references_of(o),
        tags: str_list(o, "labels"),
        valid_from,
        valid_until,
        related: vec![],
    })
}

fn threat_of(o: &Value) -> PackageThreat {
    if str_list(o, "indicator_types")
        .iter()
        .any(|t| t == "compromised")
    {
        PackageThreat::Compromised
    } else {
        PackageThreat::Malicious
    }
}

fn indicator_object(o: &Value) -> Result<Content, String> {
    if let Some(t) = str_field(o, "pattern_type") {
        if t != "stix" {
            return Err(format!(
                "pattern_type `{}` cannot be imported (only stix)",
                truncate(t, 40)
            ));
        }
    }
    let pattern = str_field(o, "pattern").ok_or("an indicator needs a `pattern`")?;
    let observables = match o.get("x_isac_observable") {
        // Our own exports: the exact observable, ranges and threat included.
        Some(v) => vec![serde_json::from_value::<Observable>(v.clone())
            .map_err(|e| format!("x_isac_observable: {e}"))?],
        None => observables_from_pattern_with(pattern, threat_of(o))
            .map_err(|e| format!("pattern `{}`: {e}", truncate(pattern, 200)))?,
    };
    let out = observables
        .into_iter()
        .map(|obs| {
            let title = title_of(o, || format!("STIX indicator {}", obs.primary_value()));
            indicator(o, obs, title)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Content::Indicators(out))
}

fn vuln_id_of(o: &Value) -> Option<String> {
    let looks = |s: &str| crate::observable::validate_vuln_id(s).is_ok();
    if let Some(n) = str_field(o, "name").filter(|n| looks(n)) {
        return Some(n.to_owned());
    }
    o.get("external_references")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|r| str_field(r, "external_id"))
        .find(|id| looks(id))
        .map(str::to_owned)
}

fn software_purl(o: &Value) -> Result<String, String> {
    for k in ["x_isac_purl", "purl", "x_purl"] {
        if let Some(p) = str_field(o, k) {
            return Ok(p.trim().to_owned());
        }
    }
    let name = str_field(o, "name").ok_or("a software object needs a `name`")?;
    let vendor = str_field(o, "vendor").ok_or_else(|| {
        format!(
            "software `{}` has no purl (purl, x_purl) and no vendor (ecosystem)",
            truncate(name, 64)
        )
    })?;
    purl_from_name(vendor, name, str_field(o, "version"))
}

/// Why an object that is not imported itself is skipped.
fn context_reason(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "identity" => "identity (becomes no item)",
        "marking-definition" => "marking definition (read for TLP)",
        "relationship" => "relationship (read to link objects)",
        "extension-definition" | "language-content" => "extension data",
        "sighting" => "sightings are not imported",
        "file" | "artifact" => "file (read as a malware sample)",
        _ => return None,
    })
}

/// Reads a STIX 2.1 bundle. Errors only when `bundle` is not a bundle;
/// problems with single objects land in [`BundleImport::invalid`].
pub fn parse_bundle(bundle: &Value) -> Result<BundleImport, String> {
    if str_field(bundle, "type") != Some("bundle") {
        return Err("not a STIX bundle (`type` is not `bundle`)".into());
    }
    let objects = bundle
        .get("objects")
        .and_then(Value::as_array)
        .ok_or("the bundle has no `objects` array")?;
    if objects.len() > MAX_OBJECTS {
        return Err(format!("more than {MAX_OBJECTS} objects in one bundle"));
    }
    let mut b = Bundle {
        by_id: HashMap::new(),
        markings: HashMap::new(),
        relationships: Vec::new(),
    };
    for o in objects {
        let Some(id) = str_field(o, "id") else {
            continue;
        };
        b.by_id.insert(id, o);
        match str_field(o, "type") {
            Some("marking-definition") => {
                if let Some(t) = tlp_of_marking_object(o) {
                    b.markings.insert(id, t);
                }
            }
            Some("relationship") => {
                if let (Some(s), Some(r), Some(t)) = (
                    str_field(o, "source_ref"),
                    str_field(o, "relationship_type"),
                    str_field(o, "target_ref"),
                ) {
                    b.relationships.push((s, r, t));
                }
            }
            _ => {}
        }
    }
    let mut out = BundleImport::default();
    // Vulnerability ids the bundle's indicators already carry.
    let mut named_vulns = HashSet::new();
    let mut parsed: Vec<Option<Result<Content, String>>> = Vec::with_capacity(objects.len());
    for o in objects {
        let c = (str_field(o, "type") == Some("indicator")
            && o.get("revoked") != Some(&Value::Bool(true)))
        .then(|| indicator_object(o));
        if let Some(Ok(Content::Indicators(list))) = &c {
            for i in list {
                if let Observable::Vulnerability { vuln_id, .. } = &i.observable {
                    named_vulns.insert(vuln_id.clone());
                }
            }
        }
        parsed.push(c);
    }
    for (index, (o, pre)) in objects.iter().zip(parsed).enumerate() {
        let path = path_of(index, o);
        let (ty, id) = match check_id(o) {
            Ok(x) => x,
            Err(e) => {
                out.invalid.push((path, e));
                continue;
            }
        };
        if let Some(reason) = context_reason(&ty) {
            out.skipped.push((path, reason.into()));
            continue;
        }
        let revoked = o.get("revoked") == Some(&Value::Bool(true));
        let content: Result<Option<Content>, String> = if revoked {
            Ok(Some(Content::Revoked))
        } else {
            match ty.as_str() {
                "indicator" => pre.expect("parsed above").map(Some),
                "vulnerability" => match vuln_id_of(o) {
                    None => Err("no CVE, GHSA or OSV id in `name` or `external_references`".into()),
                    Some(v) if named_vulns.contains(&v) => {
                        out.skipped.push((
                            path,
                            format!("{v} is carried by an indicator of the bundle"),
                        ));
                        continue;
                    }
                    Some(vuln_id) => {
                        let purls = b
                            .relationships
                            .iter()
                            .filter(|(_, r, t)| *r == "has" && *t == id)
                            .filter_map(|(s, _, _)| b.by_id.get(s))
                            .filter(|s| str_field(s, "type") == Some("software"))
                            .map(|s| software_purl(s))
                            .collect::<Result<Vec<_>, _>>();
                        purls.and_then(|purls| {
                            let title = title_of(o, || vuln_id.clone());
                            indicator(o, Observable::Vulnerability { vuln_id, purls }, title)
                                .map(|i| Some(Content::Indicators(vec![i])))
                        })
                    }
                },
                "software" => {
                    let describes_vuln = b.relationships.iter().any(|(s, r, t)| {
                        *s == id
                            && *r == "has"
                            && b.by_id
                                .get(t)
                                .is_some_and(|v| str_field(v, "type") == Some("vulnerability"))
                    });
                    if describes_vuln {
                        out.skipped.push((
                            path,
                            "software affected by a vulnerability of the bundle".into(),
                        ));
                        continue;
                    }
                    software_purl(o).and_then(|purl| {
                        let title = title_of(o, || format!("software {purl}"));
                        let title =
                            if title.starts_with("software ") || str_field(o, "name").is_none() {
                                title
                            } else {
                                format!("software {title}")
                            };
                        indicator(
                            o,
                            Observable::Package {
                                purl,
                                versions: vec![],
                                threat: PackageThreat::Malicious,
                                imitates: None,
                            },
                            truncate(&title, crate::statement::MAX_TITLE_CHARS),
                        )
                        .map(|i| Some(Content::Indicators(vec![i])))
                    })
                }
                "malware" => {
                    let samples: Vec<&Value> = str_list(o, "sample_refs")
                        .iter()
                        .filter_map(|r| b.by_id.get(r.as_str()).copied())
                        .collect();
                    let mut list = Vec::new();
                    let mut problem = None;
                    for s in samples {
                        let h = |k: &str| {
                            s.pointer(&format!("/hashes/{k}"))
                                .and_then(Value::as_str)
                                .map(|h| h.trim().to_ascii_lowercase())
                        };
                        let (sha256, sha512) = (h("SHA-256"), h("SHA-512"));
                        if sha256.is_none() && sha512.is_none() {
                            continue;
                        }
                        let name = title_of(o, || "malware sample".into());
                        match indicator(
                            o,
                            Observable::Artifact {
                                sha256,
                                sha512,
                                purl: None,
                                filename: str_field(s, "name").map(str::to_owned),
                            },
                            name,
                        ) {
                            Ok(i) => list.push(i),
                            Err(e) => problem = Some(e),
                        }
                    }
                    let indicated = b
                        .relationships
                        .iter()
                        .any(|(_, r, t)| *r == "indicates" && *t == id);
                    match (problem, list.is_empty(), indicated) {
                        (Some(e), _, _) => Err(e),
                        (None, false, _) => Ok(Some(Content::Indicators(list))),
                        (None, true, true) => {
                            out.skipped
                                .push((path, "malware described by the indicators that indicate it".into()));
                            continue;
                        }
                        (None, true, false) => Err("malware without a sample with a SHA-256 or SHA-512 hash (sample_refs), and no indicator indicates it: nothing to publish".into()),
                    }
                }
                "report" => {
                    let body = str_field(o, "description").unwrap_or_default().to_owned();
                    let title = title_of(o, || "STIX report".into());
                    let body = if body.trim().is_empty() {
                        title.clone()
                    } else {
                        body
                    };
                    let incident_id = str_field(o, "x_isac_incident_id")
                        .map(str::to_owned)
                        .or_else(|| {
                            o.get("external_references")
                                .and_then(Value::as_array)
                                .and_then(|a| {
                                    a.iter().find(|r| {
                                        str_field(r, "source_name") == Some("isac-incident")
                                    })
                                })
                                .and_then(|r| str_field(r, "external_id"))
                                .map(str::to_owned)
                        });
                    severity_of(o, Severity::High).map(|severity| {
                        Some(Content::Bulletin {
                            title,
                            body,
                            severity,
                            incident_id,
                            refs: str_list(o, "object_refs"),
                        })
                    })
                }
                other => {
                    out.skipped
                        .push((path, format!("`{other}` objects are not imported")));
                    continue;
                }
            }
        };
        match content {
            Ok(Some(content)) => {
                let version = match str_field(o, "modified") {
                    Some(m) => m.to_owned(),
                    None => crate::hex::encode(&openssl::sha::sha256(o.to_string().as_bytes())),
                };
                out.objects.push(ImportedObject {
                    path,
                    stix_id: id,
                    stix_type: ty,
                    version,
                    tlp: b.tlp_of(o),
                    content,
                });
            }
            Ok(None) => {}
            Err(e) => out.invalid.push((path, e)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::Statement;
    use crate::stix::{bundle, identity, identity_id, objects_for, StixContext};
    use serde_json::json;

    fn net(d: Option<&str>, i: Option<&str>, u: Option<&str>) -> Observable {
        Observable::Network {
            domain: d.map(Into::into),
            ip: i.map(Into::into),
            url: u.map(Into::into),
        }
    }

    fn nested(depth: usize) -> String {
        format!(
            "[{}domain-name:value = 'c2.evil.example'{}]",
            "(".repeat(depth),
            ")".repeat(depth)
        )
    }

    #[test]
    fn nesting_up_to_the_limit_parses_and_one_more_level_is_refused_by_name() {
        let at_limit = observables_from_pattern(&nested(MAX_PATTERN_NESTING)).unwrap();
        assert_eq!(at_limit, vec![net(Some("c2.evil.example"), None, None)]);
        let over = observables_from_pattern(&nested(MAX_PATTERN_NESTING + 1)).unwrap_err();
        assert!(over.contains("nesting limit"), "{over}");
        assert!(over.contains(&MAX_PATTERN_NESTING.to_string()), "{over}");
    }

    #[test]
    fn hostile_nesting_is_refused_without_overflowing_a_small_stack() {
        // 30,000 levels (60 KB, under the 64 KiB pattern cap) once aborted
        // the process; a 256 KiB thread stack shows the parse stays shallow.
        let deep = nested(30_000);
        assert!(deep.len() < 64 * 1024);
        let unclosed = format!("[{}", "(".repeat(60_000));
        let worker = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                (
                    observables_from_pattern(&deep),
                    observables_from_pattern(&unclosed),
                )
            })
            .unwrap();
        let (deep, unclosed) = worker.join().expect("no stack overflow");
        assert!(deep.unwrap_err().contains("nesting limit"));
        assert!(unclosed.unwrap_err().contains("nesting limit"));
    }

    #[test]
    fn a_bundle_with_one_deep_pattern_names_that_object_and_reads_the_rest() {
        let bundle = json!({"type": "bundle", "id": "bundle--6a4e7a2b-3c1d-4f5e-8a9b-0c1d2e3f4a5b", "objects": [
            {"type": "indicator", "spec_version": "2.1",
             "id": "indicator--0d1d5a7e-6b8f-4c0a-9a3e-2f1b7c6d5e4a",
             "created": "2026-11-01T00:00:00Z", "modified": "2026-11-01T00:00:00Z",
             "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z",
             "pattern": nested(5_000)},
            {"type": "indicator", "spec_version": "2.1",
             "id": "indicator--1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b",
             "created": "2026-11-01T00:00:00Z", "modified": "2026-11-01T00:00:00Z",
             "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z",
             "pattern": "[domain-name:value = 'ok.evil.example']"}
        ]});
        let read = parse_bundle(&bundle).unwrap();
        assert_eq!(read.objects.len(), 1);
        assert_eq!(read.invalid.len(), 1, "{:?}", read.invalid);
        assert!(
            read.invalid[0].1.contains("nesting limit"),
            "{:?}",
            read.invalid
        );
    }

    #[test]
    fn patterns_become_observables() {
        let p = |s: &str| observables_from_pattern(s).unwrap();
        assert_eq!(
            p("[domain-name:value = 'Evil.Example'] OR [domain-name:value = 'b.example']"),
            vec![
                net(Some("evil.example"), None, None),
                net(Some("b.example"), None, None)
            ]
        );
        assert_eq!(
            p("[ipv4-addr:value = '192.0.2.1' OR ipv6-addr:value = '2001:db8::1']"),
            vec![
                net(None, Some("192.0.2.1"), None),
                net(None, Some("2001:db8::1"), None)
            ]
        );
        assert_eq!(
            p(r"[url:value = 'https://evil.example/a\'b\\c']"),
            vec![net(None, None, Some(r"https://evil.example/a'b\c"))]
        );
        let h = "A".repeat(64);
        assert_eq!(
            p(&format!(
                "[file:hashes.'SHA-256' = '{h}' AND file:name = 'x.tgz' OR file:hashes.MD5 = 'abc']"
            )),
            vec![Observable::Artifact {
                sha256: Some(h.to_ascii_lowercase()),
                sha512: None,
                purl: None,
                filename: Some("x.tgz".into())
            }]
        );
        assert_eq!(
            p("[software:name = '@scope/pkg' AND software:vendor = 'npm' AND software:version = '1.0.0']"),
            vec![Observable::Package {
                purl: "pkg:npm/%40scope/pkg@1.0.0".into(),
                versions: vec![],
                threat: PackageThreat::Malicious,
                imitates: None
            }]
        );
        assert_eq!(
            p("[software:name = 'org.example:lib' AND software:vendor = 'maven' AND (software:version = '1' OR software:version = '2')]"),
            vec![Observable::Package {
                purl: "pkg:maven/org.example/lib".into(),
                versions: vec!["1".into(), "2".into()],
                threat: PackageThreat::Malicious,
                imitates: None
            }]
        );
        assert_eq!(
            p("[user-account:account_login = 'evil' AND user-account:x_isac_platform = 'npm']"),
            vec![Observable::Account {
                account: "npm:evil".into()
            }]
        );
        for bad in [
            "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']",
            "[process:name = 'evil.exe']",
            "[domain-name:value LIKE '%.evil']",
            "[domain-name:value = 'a'] AND [url:value = 'b']",
            "[domain-name:value = 'a'] WITHIN 5 SECONDS",
            "[domain-name:value = 'a' AND url:value = 'b']",
            "[software:name = 'x' AND software:vendor = 'Microsoft']",
            "[domain-name:value = 'unterminated]",
            "domain-name:value = 'a'",
        ] {
            assert!(observables_from_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn our_patterns_read_back() {
        for o in [
            net(Some("evil.example"), None, None),
            net(None, Some("192.0.2.1"), None),
            net(None, None, Some("https://evil.example/x")),
            Observable::Account {
                account: "npm:evil".into(),
            },
            Observable::Package {
                purl: "pkg:pypi/requets@1.0".into(),
                versions: vec![],
                threat: PackageThreat::Malicious,
                imitates: None,
            },
        ] {
            let back = observables_from_pattern(&crate::stix::pattern_for(&o)).unwrap();
            assert_eq!(back, vec![o]);
        }
    }

    #[test]
    fn tlp_markings_2_0_and_1_0() {
        for t in ALL_LEVELS {
            assert_eq!(tlp_of_marking_id(t.stix_marking_id()), Some(t));
        }
        assert_eq!(
            tlp_of_marking_id("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"),
            Some(Tlp::Clear)
        );
        assert_eq!(
            tlp_of_marking_id("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"),
            Some(Tlp::Red)
        );
        assert_eq!(
            tlp_of_marking_id("marking-definition--00000000-0000-4000-8000-000000000000"),
            None
        );
        // A bundle's own TLP 1.0 definition, and the strictest of several.
        let b = json!({"type": "bundle", "id": "bundle--6d3a4c07-3d3b-4e5c-9f7e-1b2c3d4e5f60", "objects": [
            {"type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--11111111-1111-4111-8111-111111111111",
             "created": "2020-01-01T00:00:00.000Z", "definition_type": "tlp", "definition": {"tlp": "amber"}},
            {"type": "indicator", "spec_version": "2.1", "id": "indicator--22222222-2222-4222-8222-222222222222",
             "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
             "pattern": "[domain-name:value = 'evil.example']", "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00Z",
             "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "marking-definition--11111111-1111-4111-8111-111111111111"]},
            {"type": "indicator", "spec_version": "2.1", "id": "indicator--33333333-3333-4333-8333-333333333333",
             "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
             "pattern": "[domain-name:value = 'other.example']", "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00Z"}
        ]});
        let r = parse_bundle(&b).unwrap();
        assert!(r.invalid.is_empty(), "{:?}", r.invalid);
        assert_eq!(r.objects[0].tlp, Some(Tlp::Amber));
        assert_eq!(r.objects[1].tlp, None);
        assert_eq!(
            r.objects[0].path,
            "objects[1] (indicator--22222222-2222-4222-8222-222222222222)"
        );
    }

    #[test]
    fn our_own_export_reads_back_exactly() {
        let mut s: Statement = serde_json::from_value(json!({
            "id": "6f1f2a8e-3b7c-4c1e-9d2a-5e6f7a8b9c0d", "revision": 2, "source": "acme-bank",
            "created": "2026-11-25T12:00:00Z", "tlp": "amber", "audience": [], "anonymous": false,
            "body": {"type": "indicator", "observable": {"kind": "vulnerability", "vuln_id": "CVE-2026-12345", "purls": ["pkg:npm/lodash@4.17.20"]},
              "title": "lodash", "description": "d", "severity": "critical", "confidence": 80,
              "references": ["https://example.org/a"], "tags": ["x"], "valid_from": null, "valid_until": "2026-12-25T13:00:00Z", "related": []}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        s.revision = 1;
        let id = identity_id("acme-bank");
        let ctx = StixContext {
            source_identity_id: &id,
            envelope_digest: "ab",
            key_id: "cd",
            received_at: "2026-11-25T12:00:01Z",
        };
        let mut objs = vec![identity("acme-bank", "Acme")];
        objs.extend(objects_for(&s, &ctx));
        let r = parse_bundle(&bundle("x", objs)).unwrap();
        assert!(r.invalid.is_empty(), "{:?}", r.invalid);
        assert_eq!(
            r.objects.len(),
            1,
            "the vulnerability SDO rides with its indicator"
        );
        let crate::statement::Body::Indicator(want) = &s.body else {
            unreachable!()
        };
        let Content::Indicators(got) = &r.objects[0].content else {
            panic!()
        };
        assert_eq!(got[0].observable, want.observable);
        assert_eq!(got[0].severity, Severity::Critical);
        assert_eq!(got[0].confidence, 80);
        assert_eq!(got[0].valid_until, want.valid_until);
        assert_eq!(got[0].references, want.references);
        assert_eq!(r.objects[0].tlp, Some(Tlp::Amber));
        assert_eq!(r.objects[0].version, "2026-11-25T12:00:00.000Z");
        let skipped: Vec<&str> = r.skipped.iter().map(|(_, w)| w.as_str()).collect();
        assert_eq!(skipped.len(), 4, "{skipped:?}");
    }

    #[test]
    fn bad_objects_are_named_by_path_and_the_rest_still_read() {
        let b = json!({"type": "bundle", "id": "bundle--6d3a4c07-3d3b-4e5c-9f7e-1b2c3d4e5f60", "objects": [
            {"type": "indicator", "id": "indicator--nope"},
            {"type": "indicator", "spec_version": "2.1", "id": "indicator--22222222-2222-4222-8222-222222222222",
             "pattern": "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']", "pattern_type": "stix"},
            {"type": "indicator", "spec_version": "2.1", "id": "indicator--44444444-4444-4444-8444-444444444444",
             "pattern": "alert tcp any any", "pattern_type": "snort"},
            {"type": "malware", "spec_version": "2.1", "id": "malware--55555555-5555-4555-8555-555555555555", "name": "x", "is_family": true},
            {"type": "note", "spec_version": "2.1", "id": "note--66666666-6666-4666-8666-666666666666", "content": "hi", "object_refs": []},
            {"type": "indicator", "spec_version": "2.1", "id": "indicator--33333333-3333-4333-8333-333333333333", "revoked": true}
        ]});
        let r = parse_bundle(&b).unwrap();
        let invalid: Vec<&str> = r.invalid.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            invalid,
            [
                "objects[0] (indicator--nope)",
                "objects[1] (indicator--22222222-2222-4222-8222-222222222222)",
                "objects[2] (indicator--44444444-4444-4444-8444-444444444444)",
                "objects[3] (malware--55555555-5555-4555-8555-555555555555)",
            ]
        );
        assert!(r.invalid[1].1.contains("SHA-256"), "{:?}", r.invalid[1]);
        assert_eq!(r.skipped.len(), 1);
        assert_eq!(r.objects.len(), 1);
        assert_eq!(r.objects[0].content, Content::Revoked);
        assert!(parse_bundle(&json!({"type": "indicator"})).is_err());
        assert!(parse_bundle(&json!({"type": "bundle"})).is_err());
    }
}
