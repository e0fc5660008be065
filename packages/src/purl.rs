//! Package URLs (<https://github.com/package-url/purl-spec>):
//! `pkg:type/namespace/name@version?qualifiers#subpath`.
//!
//! A [`Purl`] holds its parts decoded and normalised by the type's rules,
//! so two spellings of one package compare equal and print one canonical
//! string. Everything here is attacker-controlled input: parsing is strict
//! about encoding, bounded, and echoes at most a short prefix in errors.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::{shown, Ecosystem};

/// Longest purl string accepted, in bytes.
pub const MAX_PURL_LEN: usize = 4096;
/// Most qualifiers one purl may carry.
pub const MAX_QUALIFIERS: usize = 32;

/// The one purl encoder: every byte but RFC 3986 unreserved characters and
/// `:` (which the spec leaves readable) is escaped, in uppercase hex.
const PURL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':');

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurlError {
    #[error("purl is longer than {MAX_PURL_LEN} bytes")]
    TooLong,
    #[error("purl `{0}` must start with `pkg:`, e.g. pkg:npm/left-pad@1.3.0")]
    NotPkgScheme(String),
    #[error("purl `{0}` has raw whitespace or control characters (spaces are written %20)")]
    RawWhitespace(String),
    #[error("purl `{0}` has no `type/name` after `pkg:`")]
    MissingName(String),
    #[error(
        "purl type `{0}` must be ASCII letters, digits, `.`, `+`, `-`, not starting with a digit"
    )]
    BadType(String),
    #[error(
        "purl {part} `{value}` has a bad percent-escape, non-UTF-8 bytes or a control character"
    )]
    BadEncoding { part: &'static str, value: String },
    #[error("purl {part} `{value}` holds an unencoded `{ch}`; write it as {escaped}")]
    Unencoded {
        part: &'static str,
        value: String,
        ch: char,
        escaped: &'static str,
    },
    #[error("purl has an empty version after `@`")]
    EmptyVersion,
    #[error(
        "purl qualifier `{0}` is not `key=value` with a key of letters, digits, `.`, `-`, `_`"
    )]
    BadQualifier(String),
    #[error("purl qualifier `{0}` is given twice")]
    DuplicateQualifier(String),
    #[error("purl has more than {MAX_QUALIFIERS} qualifiers")]
    TooManyQualifiers,
    #[error("a `{ty}` purl needs a namespace ({what})")]
    NamespaceRequired { ty: String, what: &'static str },
    #[error("a `{0}` purl has no namespace")]
    NamespaceNotAllowed(String),
    #[error("{ecosystem} package name `{name}` is not {expected}")]
    BadOsvName {
        ecosystem: String,
        name: String,
        expected: &'static str,
    },
    #[error("OSV ecosystem `{0}` is not one we map to a purl (npm, PyPI, crates.io, Go, Maven, RubyGems, NuGet, Packagist, GitHub Actions)")]
    UnknownOsvEcosystem(String),
}

/// A parsed, normalised package URL. Fields are decoded text; [`fmt::Display`]
/// gives the canonical string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Purl {
    ty: String,
    namespace: Option<String>,
    name: String,
    version: Option<String>,
    qualifiers: BTreeMap<String, String>,
    subpath: Option<String>,
}

impl Purl {
    /// A purl for `type`, `namespace` (segments joined by `/`) and `name`,
    /// all decoded, normalised by the type's rules.
    pub fn new(ty: &str, namespace: Option<&str>, name: &str) -> Result<Purl, PurlError> {
        let ty = check_type(ty)?;
        let segments = match namespace {
            Some(ns) => ns
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| check_decoded("namespace", s))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        if name.is_empty() {
            return Err(PurlError::MissingName(shown(name)));
        }
        let name = check_decoded("name", name)?;
        if name.contains('/') {
            return Err(unencoded("name", &name, '/'));
        }
        normalise(ty, segments, name)
    }

    /// This purl with `version` (decoded text; empty means none).
    pub fn with_version(mut self, version: &str) -> Result<Purl, PurlError> {
        self.version = if version.is_empty() {
            None
        } else {
            Some(check_decoded("version", version)?)
        };
        Ok(self)
    }

    pub fn ty(&self) -> &str {
        &self.ty
    }
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
    pub fn qualifiers(&self) -> &BTreeMap<String, String> {
        &self.qualifiers
    }
    pub fn subpath(&self) -> Option<&str> {
        self.subpath.as_deref()
    }

    pub fn ecosystem(&self) -> Option<Ecosystem> {
        Ecosystem::from_purl_type(&self.ty)
    }

    /// The package's name as its own ecosystem writes it: `@scope/name`
    /// (npm), `group:artifact` (Maven), the module path (Go), `vendor/name`.
    pub fn full_name(&self) -> String {
        match (&self.namespace, self.ty.as_str()) {
            (None, _) => self.name.clone(),
            (Some(ns), "maven") => format!("{ns}:{}", self.name),
            (Some(ns), _) => format!("{ns}/{}", self.name),
        }
    }

    /// This purl without version, qualifiers or subpath: the package.
    pub fn package(&self) -> Purl {
        Purl {
            ty: self.ty.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            version: None,
            qualifiers: BTreeMap::new(),
            subpath: None,
        }
    }

    /// What two purls of one package have in common, folded where the
    /// ecosystem treats names as equal although the purl keeps their
    /// spelling: Go module paths and NuGet ids case-insensitively (Go
    /// refuses two modules differing only in case in one build; NuGet ids
    /// are case-insensitive), Cargo with `-` and `_` alike (crates.io
    /// refuses a name differing only in those).
    pub fn package_key(&self) -> String {
        let full = match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.ty, ns, self.name),
            None => format!("{}/{}", self.ty, self.name),
        };
        match self.ty.as_str() {
            "golang" | "nuget" => full.to_lowercase(),
            "cargo" => full.replace('_', "-"),
            _ => full,
        }
    }

    /// True when both name the same package (versions aside).
    pub fn same_package(&self, other: &Purl) -> bool {
        self.package_key() == other.package_key()
    }

    /// The purl for a package named as OSV names it in `ecosystem`
    /// (`affected[].package.ecosystem` and `.name`).
    pub fn from_osv(ecosystem: &str, name: &str) -> Result<Purl, PurlError> {
        let eco = Ecosystem::from_osv(ecosystem)
            .ok_or_else(|| PurlError::UnknownOsvEcosystem(shown(ecosystem)))?;
        let bad = |expected: &'static str| PurlError::BadOsvName {
            ecosystem: ecosystem.to_owned(),
            name: shown(name),
            expected,
        };
        if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("a name without whitespace or control characters"));
        }
        let two = |sep: char, expected: &'static str| match name.split_once(sep) {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(sep) => Ok((a, b)),
            _ => Err(bad(expected)),
        };
        let ty = eco.purl_type();
        match eco {
            Ecosystem::Npm => match name.strip_prefix('@') {
                Some(_) => {
                    let (scope, n) = two('/', "`@scope/name`")?;
                    Purl::new(ty, Some(scope), n)
                }
                None if name.contains('/') => Err(bad("`name` or `@scope/name`")),
                None => Purl::new(ty, None, name),
            },
            Ecosystem::Maven => {
                let (group, artifact) = two(':', "`group:artifact`")?;
                Purl::new(ty, Some(group), artifact)
            }
            Ecosystem::Composer => {
                let (vendor, n) = two('/', "`vendor/name`")?;
                Purl::new(ty, Some(vendor), n)
            }
            Ecosystem::Go => {
                if name.split('/').any(str::is_empty) {
                    return Err(bad("a module path without empty segments"));
                }
                match name.rsplit_once('/') {
                    Some((ns, n)) => Purl::new(ty, Some(ns), n),
                    None => Purl::new(ty, None, name),
                }
            }
            Ecosystem::GitHub => {
                // An action may live in a subdirectory: `owner/repo/path`.
                let mut parts = name.splitn(3, '/');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(owner), Some(repo), rest) if !owner.is_empty() && !repo.is_empty() => {
                        let mut p = Purl::new(ty, Some(owner), repo)?;
                        p.subpath = rest.map(normalise_subpath).transpose()?.flatten();
                        Ok(p)
                    }
                    _ => Err(bad("`owner/repo`")),
                }
            }
            Ecosystem::PyPI | Ecosystem::Cargo | Ecosystem::RubyGems | Ecosystem::NuGet => {
                if name.contains('/') {
                    return Err(bad("a name without `/`"));
                }
                Purl::new(ty, None, name)
            }
        }
    }
}

fn unencoded(part: &'static str, value: &str, ch: char) -> PurlError {
    PurlError::Unencoded {
        part,
        value: shown(value),
        ch,
        escaped: match ch {
            '/' => "%2F",
            '@' => "%40",
            '?' => "%3F",
            '#' => "%23",
            _ => "%XX",
        },
    }
}

fn check_type(ty: &str) -> Result<String, PurlError> {
    let ok = ty.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && ty
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'));
    if ok {
        Ok(ty.to_ascii_lowercase())
    } else {
        Err(PurlError::BadType(shown(ty)))
    }
}

/// Decoded text is refused when it holds control characters: what a
/// recipient matches on must be what the source could see.
fn check_decoded(part: &'static str, s: &str) -> Result<String, PurlError> {
    if s.chars().any(char::is_control) {
        return Err(PurlError::BadEncoding {
            part,
            value: shown(s),
        });
    }
    Ok(s.to_owned())
}

/// Strict percent-decoding: a `%` must start a two-hex-digit escape and
/// the result must be UTF-8 without control characters.
fn decode(part: &'static str, s: &str) -> Result<String, PurlError> {
    let bad = || PurlError::BadEncoding {
        part,
        value: shown(s),
    };
    let b = s.as_bytes();
    let well_formed = b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err(bad());
    }
    let decoded = percent_decode_str(s).decode_utf8().map_err(|_| bad())?;
    check_decoded(part, &decoded)
}

fn encode(s: &str) -> impl fmt::Display + '_ {
    utf8_percent_encode(s, PURL_ENCODE)
}

/// PEP 503: lowercase, and each run of `-`, `_`, `.` becomes one `-`.
pub fn pep503(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// The type-specific rules of the purl spec's PURL-TYPES, for the types
/// we match on; other types keep their parts as given.
fn normalise(ty: String, mut segments: Vec<String>, mut name: String) -> Result<Purl, PurlError> {
    let required = |what: &'static str| PurlError::NamespaceRequired {
        ty: ty.clone(),
        what,
    };
    match ty.as_str() {
        "npm" => {
            // npm has scopes, not namespaces: a namespace is a scope, which
            // is written with its `@`. New npm names are lowercase only.
            if segments.len() > 1 {
                return Err(unencoded("namespace", &segments.join("/"), '/'));
            }
            for s in &mut segments {
                *s = s.to_lowercase();
                if !s.starts_with('@') {
                    s.insert(0, '@');
                }
                if s == "@" {
                    return Err(PurlError::MissingName("@".into()));
                }
            }
            name = name.to_lowercase();
        }
        "pypi" => {
            if !segments.is_empty() {
                return Err(PurlError::NamespaceNotAllowed(ty));
            }
            name = pep503(&name);
        }
        "cargo" | "gem" | "nuget" if !segments.is_empty() => {
            return Err(PurlError::NamespaceNotAllowed(ty));
        }
        "maven" if segments.is_empty() => return Err(required("the groupId")),
        "composer" | "github" => {
            if segments.is_empty() {
                return Err(required(if ty == "github" {
                    "the owner"
                } else {
                    "the vendor"
                }));
            }
            for s in &mut segments {
                *s = s.to_lowercase();
            }
            name = name.to_lowercase();
        }
        // Go module paths are case-sensitive (the module proxy escapes
        // capitals): kept as given; `package_key` folds case for matching.
        _ => {}
    }
    let namespace = (!segments.is_empty()).then(|| segments.join("/"));
    Ok(Purl {
        ty,
        namespace,
        name,
        version: None,
        qualifiers: BTreeMap::new(),
        subpath: None,
    })
}

/// Subpath segments: empty, `.` and `..` are dropped, as the spec says.
fn normalise_subpath(raw: &str) -> Result<Option<String>, PurlError> {
    let segments = raw
        .split('/')
        .filter(|s| !matches!(*s, "" | "." | ".."))
        .map(|s| decode("subpath", s))
        .collect::<Result<Vec<_>, _>>()?;
    for s in &segments {
        if s.contains('/') || s == "." || s == ".." {
            return Err(unencoded("subpath", s, '/'));
        }
    }
    Ok((!segments.is_empty()).then(|| segments.join("/")))
}

fn parse_qualifiers(raw: &str) -> Result<BTreeMap<String, String>, PurlError> {
    let mut out = BTreeMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| PurlError::BadQualifier(shown(pair)))?;
        let key_ok = key.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !key_ok {
            return Err(PurlError::BadQualifier(shown(pair)));
        }
        let key = key.to_ascii_lowercase();
        let value = decode("qualifier value", value)?;
        // The spec: a key with an empty value is as if it were absent.
        if value.is_empty() {
            continue;
        }
        if out.contains_key(&key) {
            return Err(PurlError::DuplicateQualifier(key));
        }
        if out.len() == MAX_QUALIFIERS {
            return Err(PurlError::TooManyQualifiers);
        }
        out.insert(key, value);
    }
    Ok(out)
}

impl FromStr for Purl {
    type Err = PurlError;

    /// The spec's parsing steps: subpath after the last `#`, qualifiers
    /// after the last `?`, the scheme, the type, the version after the last
    /// `@` of the last segment, the name, and the namespace.
    fn from_str(s: &str) -> Result<Purl, PurlError> {
        if s.len() > MAX_PURL_LEN {
            return Err(PurlError::TooLong);
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(PurlError::RawWhitespace(shown(s)));
        }
        let (rest, subpath) = match s.rsplit_once('#') {
            Some((r, sub)) => (r, normalise_subpath(sub)?),
            None => (s, None),
        };
        let (rest, qualifiers) = match rest.rsplit_once('?') {
            Some((r, q)) => (r, parse_qualifiers(q)?),
            None => (rest, BTreeMap::new()),
        };
        let rest = match rest.split_once(':') {
            Some((scheme, r)) if scheme.eq_ignore_ascii_case("pkg") => r,
            _ => return Err(PurlError::NotPkgScheme(shown(s))),
        };
        // A purl has no authority; `pkg://npm/x` is read as `pkg:npm/x`.
        let rest = rest.trim_matches('/');
        let (ty, rest) = rest
            .split_once('/')
            .ok_or_else(|| PurlError::MissingName(shown(s)))?;
        let ty = check_type(ty)?;
        let (path, last) = match rest.rsplit_once('/') {
            Some((p, l)) => (Some(p), l),
            None => (None, rest),
        };
        let (name, version) = match last.rsplit_once('@') {
            Some((n, v)) => {
                if v.is_empty() {
                    return Err(PurlError::EmptyVersion);
                }
                (n, Some(decode("version", v)?))
            }
            None => (last, None),
        };
        if name.is_empty() {
            return Err(PurlError::MissingName(shown(s)));
        }
        if name.contains('@') {
            return Err(unencoded("name", name, '@'));
        }
        let name = decode("name", name)?;
        if name.contains('/') {
            return Err(unencoded("name", &name, '/'));
        }
        let mut segments = Vec::new();
        for raw in path.into_iter().flat_map(|p| p.split('/')) {
            if raw.is_empty() {
                continue;
            }
            // An npm scope's `@` should be `%40`, but a raw one at the start
            // of a segment is unambiguous and common; elsewhere it is not.
            if raw.chars().skip(1).any(|c| c == '@') {
                return Err(unencoded("namespace", raw, '@'));
            }
            let seg = decode("namespace", raw)?;
            if seg.contains('/') {
                return Err(unencoded("namespace", &seg, '/'));
            }
            segments.push(seg);
        }
        let mut purl = normalise(ty, segments, name)?;
        if version.as_deref() == Some("") {
            return Err(PurlError::EmptyVersion);
        }
        purl.version = version;
        purl.qualifiers = qualifiers;
        purl.subpath = subpath;
        // Escaping can lengthen it: what parses must print a purl that parses.
        if purl.to_string().len() > MAX_PURL_LEN {
            return Err(PurlError::TooLong);
        }
        Ok(purl)
    }
}

impl fmt::Display for Purl {
    /// The canonical string: lowercase type, each part percent-encoded by
    /// the one encoder, qualifiers sorted by key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkg:{}/", self.ty)?;
        if let Some(ns) = &self.namespace {
            for seg in ns.split('/') {
                write!(f, "{}/", encode(seg))?;
            }
        }
        write!(f, "{}", encode(&self.name))?;
        if let Some(v) = &self.version {
            write!(f, "@{}", encode(v))?;
        }
        for (i, (k, v)) in self.qualifiers.iter().enumerate() {
            write!(f, "{}{k}={}", if i == 0 { '?' } else { '&' }, encode(v))?;
        }
        if let Some(sub) = &self.subpath {
            f.write_str("#")?;
            for (i, seg) in sub.split('/').enumerate() {
                if i > 0 {
                    f.write_str("/")?;
                }
                write!(f, "{}", encode(seg))?;
            }
        }
        Ok(())
    }
}
