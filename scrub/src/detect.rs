//! Hand-written matchers over the bytes of a field. They look only at
//! ASCII bytes, so every range they return starts and ends on a UTF-8
//! character boundary.
//!
//! Fast path: a detector that starts at a literal (`@`, a backslash, `://`, a
//! token prefix, a name) jumps from one occurrence to the next with
//! `memchr`/`memmem` (vectorised), with the searchers for fixed literals
//! built once; case-insensitive literals are looked up in the field's
//! ASCII-lowercased copy, made once per field and only when needed. The
//! checks at each occurrence are those of `reference.rs`, the plain
//! one-pass matchers they replace, and the results must be the same hits in
//! the same order (`scan_text_reference`, the differential tests, the
//! `scrub` fuzz target).

use std::cell::OnceCell;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use memchr::{memchr, memchr_iter, memmem};

use crate::{Kind, Rules};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
    pub detail: &'static str,
}

fn hit(start: usize, end: usize, kind: Kind, detail: &'static str) -> Hit {
    Hit {
        start,
        end,
        kind,
        detail,
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A field's bytes and, made on first use, their ASCII-lowercased copy
/// (same length, same offsets) for the case-insensitive literals.
pub(crate) struct Text<'a> {
    pub t: &'a [u8],
    lower: OnceCell<Vec<u8>>,
}

impl<'a> Text<'a> {
    pub fn new(t: &'a [u8]) -> Self {
        Text {
            t,
            lower: OnceCell::new(),
        }
    }

    fn lower(&self) -> &[u8] {
        self.lower.get_or_init(|| self.t.to_ascii_lowercase())
    }
}

/// Calls `f` with every start of `finder`'s needle in `hay`, ascending,
/// overlapping occurrences included (`AKIAKIA...` holds two `AKIA`).
fn each(hay: &[u8], finder: &memmem::Finder<'_>, mut f: impl FnMut(usize)) {
    let mut pos = 0;
    while let Some(i) = finder.find(&hay[pos..]) {
        f(pos + i);
        pos += i + 1;
    }
}

/// The same for a needle known only at run time (a name, a pattern): no
/// searcher is built for a short field. An empty needle matches nothing.
fn each_dyn(hay: &[u8], needle: &[u8], mut f: impl FnMut(usize)) {
    if needle.is_empty() || needle.len() > hay.len() {
        return;
    }
    if hay.len() < 64 {
        let mut pos = 0;
        while let Some(i) = memmem::find(&hay[pos..], needle) {
            f(pos + i);
            pos += i + 1;
        }
    } else {
        each(hay, &memmem::Finder::new(needle), f);
    }
}

/// The searchers for the fixed literals, built once.
struct Finders {
    prefixed: Vec<memmem::Finder<'static>>,
    azure: memmem::Finder<'static>,
    aws: memmem::Finder<'static>,
    begin: memmem::Finder<'static>,
    dashes: memmem::Finder<'static>,
    jwt: memmem::Finder<'static>,
    scheme: memmem::Finder<'static>,
    win_users: memmem::Finder<'static>,
    home: memmem::Finder<'static>,
    mac_users: memmem::Finder<'static>,
}

fn finders() -> &'static Finders {
    static F: OnceLock<Finders> = OnceLock::new();
    F.get_or_init(|| Finders {
        prefixed: PREFIXED
            .iter()
            .map(|p| memmem::Finder::new(p.prefix))
            .collect(),
        azure: memmem::Finder::new(b"Q~"),
        aws: memmem::Finder::new(AWS_KEY),
        begin: memmem::Finder::new(b"-----begin "),
        dashes: memmem::Finder::new(b"-----"),
        jwt: memmem::Finder::new(b"eyJ"),
        scheme: memmem::Finder::new(b"://"),
        win_users: memmem::Finder::new(b"\\users\\"),
        home: memmem::Finder::new(b"/home/"),
        mac_users: memmem::Finder::new(b"/Users/"),
    })
}

fn run(t: &[u8], from: usize, ok: impl Fn(u8) -> bool) -> usize {
    let mut e = from;
    while e < t.len() && ok(t[e]) {
        e += 1;
    }
    e
}

// === e-mail addresses ===

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._%+-".contains(&b)
}

fn is_host(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

pub(crate) fn emails(t: &[u8], out: &mut Vec<Hit>) {
    for at in memchr_iter(b'@', t) {
        let mut s = at;
        while s > 0 && is_local(t[s - 1]) {
            s -= 1;
        }
        while s < at && t[s] == b'.' {
            s += 1;
        }
        let mut e = run(t, at + 1, is_host);
        while e > at + 1 && matches!(t[e - 1], b'.' | b'-') {
            e -= 1;
        }
        if s == at || e == at + 1 {
            continue;
        }
        // `pkg:npm/name@1.0` and `pkg:maven/g/a@1.0.RELEASE` are purls;
        // `git@github.com:` is an SSH remote, not a mailbox.
        if s > 0 && t[s - 1] == b'/' || &t[s..at] == b"git" || in_url_userinfo(t, s) {
            continue;
        }
        let domain = &t[at + 1..e];
        let Some(dot) = domain.iter().rposition(|b| *b == b'.') else {
            continue;
        };
        let tld = &domain[dot + 1..];
        if tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) {
            out.push(hit(s, e, Kind::Email, "e-mail address"));
        }
    }
}

/// `https://user:password@host`: the part before `@` is credentials (the
/// secret rules handle the password), not a mailbox.
fn in_url_userinfo(t: &[u8], s: usize) -> bool {
    // Schemes and user names are short: look back a little, not to the
    // start of a long token (that would be quadratic).
    let stop = s.saturating_sub(256);
    let mut a = s;
    while a > stop && !t[a - 1].is_ascii_whitespace() && !b"/\"'<>".contains(&t[a - 1]) {
        a -= 1;
    }
    a >= 2 && t[a - 1] == b'/' && t[a - 2] == b'/'
}

// === phone numbers ===

pub(crate) fn phones(t: &[u8], out: &mut Vec<Hit>) {
    let mut i = 0;
    while i < t.len() {
        let b = t[i];
        let starts = b.is_ascii_digit()
            || (b == b'+' || b == b'(') && t.get(i + 1).is_some_and(u8::is_ascii_digit);
        let prev_ok = i == 0 || {
            let p = t[i - 1];
            p.is_ascii_whitespace() || b"\"'(,;:<[=".contains(&p)
        };
        if !starts || !prev_ok {
            // Skip the rest of a word so a digit inside it never starts a number.
            i = if is_word(b) || b == b'-' || b == b'.' {
                run(t, i, |c| is_word(c) || c == b'-' || c == b'.')
            } else {
                i + 1
            };
            continue;
        }
        let mut e = i + 1;
        while e < t.len() {
            let c = t[e];
            let single_space = c == b' ' && t.get(e + 1).is_some_and(|n| *n != b' ');
            if c.is_ascii_digit() || b"-.()".contains(&c) || single_space {
                e += 1;
            } else {
                break;
            }
        }
        while e > i && !t[e - 1].is_ascii_digit() && t[e - 1] != b')' {
            e -= 1;
        }
        // A phone number ends at a word boundary (not `555-1234abc`).
        let next_ok = e >= t.len() || !is_word(t[e]);
        if next_ok && looks_like_phone(&t[i..e]) {
            out.push(hit(i, e, Kind::Phone, "phone number"));
        }
        i = e.max(i + 1);
    }
}

fn looks_like_phone(s: &[u8]) -> bool {
    let digits = s.iter().filter(|b| b.is_ascii_digit()).count();
    let groups: Vec<&[u8]> = s
        .split(|b| !b.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    // Dates (2026-11-25 ...) are the usual false positive.
    let date = s.windows(5).any(|w| {
        (w.starts_with(b"19") || w.starts_with(b"20"))
            && w[..4].iter().all(u8::is_ascii_digit)
            && w[4] == b'-'
    });
    if date {
        return false;
    }
    if s[0] == b'+' {
        return (8..=15).contains(&digits) && (groups.len() >= 2 || !s.contains(&b'.'));
    }
    if groups.iter().any(|g| g.len() > 8) {
        return false;
    }
    // Without a country code: separators of one family, no dots (versions
    // and addresses use them).
    (10..=15).contains(&digits)
        && !s.contains(&b'.')
        && (groups.len() >= 3 || s[0] == b'(' || (groups.len() == 2 && groups[0][0] == b'0'))
}

// === internal addresses ===

fn ipv4_at(t: &[u8], i: usize) -> Option<(usize, Ipv4Addr)> {
    let mut octets = [0u8; 4];
    let mut p = i;
    for (n, o) in octets.iter_mut().enumerate() {
        if n > 0 {
            if t.get(p) != Some(&b'.') {
                return None;
            }
            p += 1;
        }
        let e = run(t, p, |b| b.is_ascii_digit());
        if e == p || e - p > 3 {
            return None;
        }
        let v: u32 = std::str::from_utf8(&t[p..e]).ok()?.parse().ok()?;
        *o = u8::try_from(v).ok()?;
        p = e;
    }
    // Not part of a longer dotted number (a version such as 10.0.0.1.2).
    let more = t.get(p) == Some(&b'.') && t.get(p + 1).is_some_and(u8::is_ascii_digit);
    if more || t.get(p).is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some((p, Ipv4Addr::from(octets)))
}

pub(crate) fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    match o {
        [10, ..] => Some("private address (RFC 1918)"),
        [172, b, ..] if (16..32).contains(&b) => Some("private address (RFC 1918)"),
        [192, 168, ..] => Some("private address (RFC 1918)"),
        [100, b, ..] if (64..128).contains(&b) => Some("shared address space (100.64.0.0/10)"),
        [169, 254, ..] => Some("link-local address"),
        [127, ..] => Some("loopback address"),
        _ => None,
    }
}

pub(crate) fn internal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        Some("loopback address")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("unique local address (IPv6 ULA)")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("link-local address")
    } else {
        None
    }
}

pub(crate) fn internal_ips(t: &[u8], out: &mut Vec<Hit>) {
    let mut i = 0;
    while i < t.len() {
        let prev = if i == 0 { None } else { Some(t[i - 1]) };
        let boundary = prev.is_none_or(|p| !p.is_ascii_alphanumeric() && p != b'.');
        if boundary && t[i].is_ascii_digit() {
            if let Some((e, ip)) = ipv4_at(t, i) {
                if let Some(d) = internal_v4(ip) {
                    out.push(hit(i, e, Kind::InternalIp, d));
                }
                i = e;
                continue;
            }
        }
        let hexish = |b: u8| b.is_ascii_hexdigit() || b == b':';
        if boundary && prev != Some(b':') && hexish(t[i]) {
            let e = run(t, i, hexish);
            let cand = &t[i..e];
            let next_ok = t.get(e).is_none_or(|b| !b.is_ascii_alphanumeric());
            if next_ok && cand.iter().filter(|b| **b == b':').count() >= 2 {
                if let Some(ip) = std::str::from_utf8(cand)
                    .ok()
                    .and_then(|s| s.parse::<Ipv6Addr>().ok())
                {
                    if let Some(d) = internal_v6(ip) {
                        out.push(hit(i, e, Kind::InternalIp, d));
                    }
                }
            }
            i = e.max(i + 1);
            continue;
        }
        i += 1;
    }
}

// === host names under the member's own domains ===

/// `a` lowercased equals `lower` (already lowercase), without a copy.
fn lowered_eq(a: &[u8], lower: &[u8]) -> bool {
    a.len() == lower.len()
        && a.iter()
            .zip(lower)
            .all(|(x, y)| x.to_ascii_lowercase() == *y)
}

pub(crate) fn own_hosts(x: &Text<'_>, rules: &Rules, out: &mut Vec<Hit>) {
    let t = x.t;
    // A host under a domain holds the domain: none in the field, no pass.
    if !rules
        .own_domains
        .iter()
        .any(|d| memmem::find(x.lower(), d.as_bytes()).is_some())
    {
        return;
    }
    let mut i = 0;
    while i < t.len() {
        if !(t[i].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let e = run(t, i, |b| is_host(b) || b == b'_');
        let mut end = e;
        while end > i && t[end - 1] == b'.' {
            end -= 1;
        }
        let host = &t[i..end];
        let ours = rules.own_domains.iter().any(|d| {
            let d = d.as_bytes();
            host.len() >= d.len()
                && lowered_eq(&host[host.len() - d.len()..], d)
                && (host.len() == d.len() || host[host.len() - d.len() - 1] == b'.')
        });
        if ours {
            out.push(hit(i, end, Kind::OwnHost, "host under your own domain"));
        }
        i = e;
    }
}

// === user names in paths ===

pub(crate) const GENERIC_USERS: [&str; 10] = [
    "public",
    "default",
    "shared",
    "user",
    "username",
    "all users",
    "default user",
    "$user",
    "%username%",
    "${user}",
];

fn user_at(t: &[u8], s: usize, out: &mut Vec<Hit>, detail: &'static str) {
    let e = run(t, s, |b| {
        !(b.is_ascii_whitespace() || b"\\/\"'<>|:;,)]".contains(&b))
    });
    if e == s || t[s] == b'[' {
        return;
    }
    let name = String::from_utf8_lossy(&t[s..e]).to_ascii_lowercase();
    if GENERIC_USERS.contains(&name.as_str()) {
        return;
    }
    out.push(hit(s, e, Kind::PathUser, detail));
}

/// Uppercase words before a backslash that are not Windows domains.
pub(crate) const NOT_DOMAINS: [&[u8]; 8] = [
    b"HKLM",
    b"HKCU",
    b"HKCR",
    b"HKU",
    b"HKCC",
    b"AUTHORITY",
    b"BUILTIN",
    b"SYSTEM32",
];

pub(crate) fn path_users(x: &Text<'_>, out: &mut Vec<Hit>) {
    let t = x.t;
    let f = finders();
    let backslash = memchr(b'\\', t).is_some();
    if backslash {
        each(x.lower(), &f.win_users, |i| {
            if i >= 2 && t[i - 1] == b':' && t[i - 2].is_ascii_alphabetic() {
                user_at(t, i + 7, out, "user name in a Windows path");
            }
        });
    }
    // Case matters here: `/users/` in a URL path is common.
    for (needle, finder) in [(&b"/home/"[..], &f.home), (b"/Users/", &f.mac_users)] {
        each(t, finder, |i| {
            if i == 0 || !is_word(t[i - 1]) && t[i - 1] != b'.' {
                user_at(t, i + needle.len(), out, "user name in a home directory");
            }
        });
    }
    if !backslash {
        return;
    }
    // DOMAIN\user
    for bs in memchr_iter(b'\\', t) {
        let mut s = bs;
        while s > 0
            && (t[s - 1].is_ascii_uppercase() || t[s - 1].is_ascii_digit() || t[s - 1] == b'-')
        {
            s -= 1;
        }
        let dom = &t[s..bs];
        let bounded = s == 0 || !(is_word(t[s - 1]) || b"\\:.".contains(&t[s - 1]));
        if (2..=15).contains(&dom.len())
            && dom[0].is_ascii_uppercase()
            && bounded
            && !NOT_DOMAINS.contains(&dom)
            && t.get(bs + 1).is_some_and(u8::is_ascii_alphabetic)
        {
            user_at(t, bs + 1, out, "user name after a Windows domain");
        }
    }
}

// === secrets ===

pub(crate) struct Prefixed {
    pub prefix: &'static [u8],
    pub ok: fn(u8) -> bool,
    pub min: usize,
    pub max: usize,
    pub detail: &'static str,
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
fn upper_alnum(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}
pub(crate) fn url_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}
fn word(b: u8) -> bool {
    is_word(b)
}
pub(crate) fn b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+/=".contains(&b)
}
fn slack(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}
fn path_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'/'
}

pub(crate) const PREFIXED: [Prefixed; 21] = {
    const fn p(
        prefix: &'static [u8],
        ok: fn(u8) -> bool,
        min: usize,
        max: usize,
        detail: &'static str,
    ) -> Prefixed {
        Prefixed {
            prefix,
            ok,
            min,
            max,
            detail,
        }
    }
    [
        p(b"AKIA", upper_alnum, 16, 16, "AWS access key id"),
        p(b"ASIA", upper_alnum, 16, 16, "AWS temporary access key id"),
        p(b"AIza", url_b64, 35, 35, "Google Cloud API key"),
        p(b"ghp_", alnum, 36, 255, "GitHub token"),
        p(b"gho_", alnum, 36, 255, "GitHub token"),
        p(b"ghu_", alnum, 36, 255, "GitHub token"),
        p(b"ghs_", alnum, 36, 255, "GitHub token"),
        p(b"ghr_", alnum, 36, 255, "GitHub token"),
        p(b"github_pat_", word, 22, 255, "GitHub token"),
        p(b"glpat-", url_b64, 20, 255, "GitLab token"),
        p(b"npm_", alnum, 36, 36, "npm token"),
        p(b"pypi-AgEIcHlwaS5vcmc", url_b64, 40, 4096, "PyPI token"),
        p(b"xoxb-", slack, 10, 255, "Slack token"),
        p(b"xoxp-", slack, 10, 255, "Slack token"),
        p(b"xoxa-", slack, 10, 255, "Slack token"),
        p(b"xoxr-", slack, 10, 255, "Slack token"),
        p(b"xoxs-", slack, 10, 255, "Slack token"),
        p(b"xoxe-", slack, 10, 255, "Slack token"),
        p(b"xapp-", slack, 10, 255, "Slack token"),
        p(
            b"https://hooks.slack.com/services/",
            path_token,
            20,
            255,
            "Slack webhook URL",
        ),
        p(b"AccountKey=", b64, 40, 200, "Azure storage account key"),
    ]
};

pub(crate) fn secrets(x: &Text<'_>, out: &mut Vec<Hit>) {
    let t = x.t;
    for (p, finder) in PREFIXED.iter().zip(&finders().prefixed) {
        let n = p.prefix.len();
        each(t, finder, |i| {
            // Only at the start of a run, so `AKIAAKIA...` is read once.
            if i > 0 && (is_word(t[i - 1]) || (p.ok)(t[i - 1])) {
                return;
            }
            let e = run(t, i + n, p.ok);
            let len = e - i - n;
            if (p.min..=p.max).contains(&len) && t.get(e).is_none_or(|b| !(p.ok)(*b)) {
                // The key material only, so `AccountKey=[secret]` still reads.
                let start = if p.prefix.ends_with(b"=") { i + n } else { i };
                out.push(hit(start, e, Kind::Secret, p.detail));
            }
        });
    }
    azure_client_secrets(t, out);
    aws_secret_keys(x, out);
    private_keys(x, out);
    jwts(t, out);
    url_passwords(t, out);
}

/// Entra ID (Azure AD) client secrets: three characters, `8Q~` (or `7Q~`),
/// then 31 to 34 more.
fn azure_client_secrets(t: &[u8], out: &mut Vec<Hit>) {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"_~.-".contains(&b);
    each(t, &finders().azure, |q| {
        // `Q~` at q, the digit before it at i = q - 1, three more before.
        if q < 4 || !(t[q - 1] == b'8' || t[q - 1] == b'7') {
            return;
        }
        let i = q - 1;
        let s = i - 3;
        if !t[s..i].iter().all(|b| ok(*b)) || s > 0 && ok(t[s - 1]) {
            return;
        }
        let e = run(t, i + 3, ok);
        if (31..=34).contains(&(e - i - 3)) {
            out.push(hit(s, e, Kind::Secret, "Azure client secret"));
        }
    });
}

const AWS_KEY: &[u8] = b"aws_secret_access_key";

fn aws_secret_keys(x: &Text<'_>, out: &mut Vec<Hit>) {
    let t = x.t;
    if memchr(b'_', t).is_none() {
        return;
    }
    each(x.lower(), &finders().aws, |i| {
        let v = run(t, i + AWS_KEY.len(), |b| b" \t\"':=".contains(&b));
        let e = run(t, v, b64);
        if e - v == 40 {
            out.push(hit(v, e, Kind::Secret, "AWS secret access key"));
        }
    });
}

fn private_keys(x: &Text<'_>, out: &mut Vec<Hit>) {
    let t = x.t;
    let f = finders();
    if f.dashes.find(t).is_none() {
        return;
    }
    let mut covered = 0;
    each(x.lower(), &f.begin, |i| {
        if i < covered {
            return;
        }
        let near = &t[i + 11..(i + 11 + 50).min(t.len())];
        let label_end = match near.windows(5).position(|w| w == b"-----") {
            Some(p) => i + 11 + p,
            None => return,
        };
        let label = &t[i + 11..label_end];
        if label.len() > 40
            || !(label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK"))
        {
            return;
        }
        let after = label_end + 5;
        let end = t[after..]
            .windows(9)
            .position(|w| w == b"-----END ")
            .and_then(|p| {
                let s = after + p + 9;
                t[s..]
                    .windows(5)
                    .position(|w| w == b"-----")
                    .map(|q| s + q + 5)
            })
            .unwrap_or(t.len());
        covered = end;
        out.push(hit(i, end, Kind::Secret, "private key block"));
    });
}

fn jwts(t: &[u8], out: &mut Vec<Hit>) {
    each(t, &finders().jwt, |i| {
        if i > 0 && url_b64(t[i - 1]) {
            return;
        }
        let h = run(t, i, url_b64);
        if h - i < 10 || t.get(h) != Some(&b'.') || !t[h + 1..].starts_with(b"eyJ") {
            return;
        }
        let p = run(t, h + 1, url_b64);
        if p - h - 1 < 10 || t.get(p) != Some(&b'.') {
            return;
        }
        let s = run(t, p + 1, url_b64);
        out.push(hit(i, s, Kind::Secret, "JSON Web Token"));
    });
}

fn url_passwords(t: &[u8], out: &mut Vec<Hit>) {
    each(t, &finders().scheme, |i| {
        if i == 0 || !t[i - 1].is_ascii_alphabetic() {
            return;
        }
        let s = i + 3;
        let e = run(t, s, |b| {
            !(b.is_ascii_whitespace() || b"/?#@\"'<>".contains(&b))
        });
        if t.get(e) != Some(&b'@') {
            return;
        }
        if let Some(c) = t[s..e].iter().position(|b| *b == b':') {
            let pw = s + c + 1;
            if pw < e && &t[pw..e] != b"[secret]" {
                out.push(hit(pw, e, Kind::Secret, "password in a URL"));
            }
        }
    });
}

// === names and the member's own patterns ===

/// Whole-word, ASCII case-insensitive matches of each literal.
pub(crate) fn literals(
    x: &Text<'_>,
    list: &[String],
    kind: Kind,
    detail: &'static str,
    out: &mut Vec<Hit>,
) {
    let t = x.t;
    for lit in list {
        let l = lit.to_ascii_lowercase();
        each_dyn(x.lower(), l.as_bytes(), |i| {
            let e = i + l.len();
            let before = i == 0 || !is_word(t[i - 1]);
            let after = e >= t.len() || !is_word(t[e]);
            // Multi-byte characters: only start and end on boundaries.
            if before && after && std::str::from_utf8(&t[i..e]).is_ok() {
                out.push(hit(i, e, kind, detail));
            }
        });
    }
}
