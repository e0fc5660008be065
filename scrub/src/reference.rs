//! The matchers as first written (one plain pass per detector over the
//! bytes, no prefilter): the oracle the fast matchers in `detect.rs` are
//! checked against (`scan_text_reference`, the differential tests and the
//! `scrub` fuzz target). Not used by `scan_text`; change a detector here
//! and in `detect.rs` together.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::detect::{
    b64, internal_v4, internal_v6, url_b64, Hit, GENERIC_USERS, NOT_DOMAINS, PREFIXED,
};
use crate::{Kind, Rules};

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

/// Every occurrence of `needle` (ASCII, compared case-insensitively) in `t`.
fn find_all_ci<'a>(t: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let n = needle.len();
    let first = needle.first().map(u8::to_ascii_lowercase);
    (0..t.len().saturating_sub(n.saturating_sub(1))).filter(move |&i| {
        Some(t[i].to_ascii_lowercase()) == first && t[i..i + n].eq_ignore_ascii_case(needle)
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
    for (at, _) in t.iter().enumerate().filter(|(_, b)| **b == b'@') {
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

pub(crate) fn own_hosts(t: &[u8], rules: &Rules, out: &mut Vec<Hit>) {
    if rules.own_domains.is_empty() {
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
        let host = t[i..end].to_ascii_lowercase();
        let ours = rules.own_domains.iter().any(|d| {
            let d = d.as_bytes();
            host == d
                || host.len() > d.len()
                    && host.ends_with(d)
                    && host[host.len() - d.len() - 1] == b'.'
        });
        if ours {
            out.push(hit(i, end, Kind::OwnHost, "host under your own domain"));
        }
        i = e;
    }
}

// === user names in paths ===

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

pub(crate) fn path_users(t: &[u8], out: &mut Vec<Hit>) {
    for i in find_all_ci(t, b"\\users\\") {
        if i >= 2 && t[i - 1] == b':' && t[i - 2].is_ascii_alphabetic() {
            user_at(t, i + 7, out, "user name in a Windows path");
        }
    }
    for needle in [&b"/home/"[..], b"/Users/"] {
        for i in find_all_ci(t, needle) {
            // Case matters here: `/users/` in a URL path is common.
            if &t[i..i + needle.len()] == needle
                && (i == 0 || !is_word(t[i - 1]) && t[i - 1] != b'.')
            {
                user_at(t, i + needle.len(), out, "user name in a home directory");
            }
        }
    }
    // DOMAIN\user
    for (bs, _) in t.iter().enumerate().filter(|(_, b)| **b == b'\\') {
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

pub(crate) fn secrets(t: &[u8], out: &mut Vec<Hit>) {
    for p in &PREFIXED {
        let n = p.prefix.len();
        for i in find_all_ci(t, p.prefix) {
            // Only at the start of a run, so `AKIAAKIA...` is read once.
            if &t[i..i + n] != p.prefix || i > 0 && (is_word(t[i - 1]) || (p.ok)(t[i - 1])) {
                continue;
            }
            let e = run(t, i + n, p.ok);
            let len = e - i - n;
            if (p.min..=p.max).contains(&len) && t.get(e).is_none_or(|b| !(p.ok)(*b)) {
                // The key material only, so `AccountKey=[secret]` still reads.
                let start = if p.prefix.ends_with(b"=") { i + n } else { i };
                out.push(hit(start, e, Kind::Secret, p.detail));
            }
        }
    }
    azure_client_secrets(t, out);
    aws_secret_keys(t, out);
    private_keys(t, out);
    jwts(t, out);
    url_passwords(t, out);
}

/// Entra ID (Azure AD) client secrets: three characters, `8Q~` (or `7Q~`),
/// then 31 to 34 more.
fn azure_client_secrets(t: &[u8], out: &mut Vec<Hit>) {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"_~.-".contains(&b);
    for i in 3..t.len().saturating_sub(2) {
        if (t[i] == b'8' || t[i] == b'7') && &t[i + 1..i + 3] == b"Q~" {
            let s = i - 3;
            if !t[s..i].iter().all(|b| ok(*b)) || s > 0 && ok(t[s - 1]) {
                continue;
            }
            let e = run(t, i + 3, ok);
            if (31..=34).contains(&(e - i - 3)) {
                out.push(hit(s, e, Kind::Secret, "Azure client secret"));
            }
        }
    }
}

fn aws_secret_keys(t: &[u8], out: &mut Vec<Hit>) {
    let key = b"aws_secret_access_key";
    for i in find_all_ci(t, key) {
        let v = run(t, i + key.len(), |b| b" \t\"':=".contains(&b));
        let e = run(t, v, b64);
        if e - v == 40 {
            out.push(hit(v, e, Kind::Secret, "AWS secret access key"));
        }
    }
}

fn private_keys(t: &[u8], out: &mut Vec<Hit>) {
    let mut covered = 0;
    for i in find_all_ci(t, b"-----BEGIN ") {
        if i < covered {
            continue;
        }
        let near = &t[i + 11..(i + 11 + 50).min(t.len())];
        let label_end = match near.windows(5).position(|w| w == b"-----") {
            Some(p) => i + 11 + p,
            None => continue,
        };
        let label = &t[i + 11..label_end];
        if label.len() > 40
            || !(label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK"))
        {
            continue;
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
    }
}

fn jwts(t: &[u8], out: &mut Vec<Hit>) {
    for i in find_all_ci(t, b"eyJ") {
        if &t[i..i + 3] != b"eyJ" || i > 0 && url_b64(t[i - 1]) {
            continue;
        }
        let h = run(t, i, url_b64);
        if h - i < 10 || t.get(h) != Some(&b'.') || !t[h + 1..].starts_with(b"eyJ") {
            continue;
        }
        let p = run(t, h + 1, url_b64);
        if p - h - 1 < 10 || t.get(p) != Some(&b'.') {
            continue;
        }
        let s = run(t, p + 1, url_b64);
        out.push(hit(i, s, Kind::Secret, "JSON Web Token"));
    }
}

fn url_passwords(t: &[u8], out: &mut Vec<Hit>) {
    for i in find_all_ci(t, b"://") {
        if i == 0 || !t[i - 1].is_ascii_alphabetic() {
            continue;
        }
        let s = i + 3;
        let e = run(t, s, |b| {
            !(b.is_ascii_whitespace() || b"/?#@\"'<>".contains(&b))
        });
        if t.get(e) != Some(&b'@') {
            continue;
        }
        if let Some(c) = t[s..e].iter().position(|b| *b == b':') {
            let pw = s + c + 1;
            if pw < e && &t[pw..e] != b"[secret]" {
                out.push(hit(pw, e, Kind::Secret, "password in a URL"));
            }
        }
    }
}

// === names and the member's own patterns ===

/// Whole-word, ASCII case-insensitive matches of each literal.
pub(crate) fn literals(
    t: &[u8],
    list: &[String],
    kind: Kind,
    detail: &'static str,
    out: &mut Vec<Hit>,
) {
    for lit in list {
        let l = lit.as_bytes();
        for i in find_all_ci(t, l) {
            let e = i + l.len();
            let before = i == 0 || !is_word(t[i - 1]);
            let after = e >= t.len() || !is_word(t[e]);
            // Multi-byte characters: only start and end on boundaries.
            if before && after && std::str::from_utf8(&t[i..e]).is_ok() {
                out.push(hit(i, e, kind, detail));
            }
        }
    }
}
