//! Composer (Packagist) version ordering: Composer's `VersionParser::normalize`
//! (`v1.2` → `1.2.0.0`, `1.0-RC1` → `1.0.0.0-RC1`, `2.x-dev` →
//! `2.9999999.9999999.9999999-dev`) followed by PHP's `version_compare`,
//! which is what Composer's constraints compare with. Named branches
//! (`dev-main`) have no order and are refused; so are date versions
//! (`20100102`, `2010-01-02`), which Composer reads by a rule of their own.

use std::cmp::Ordering;

#[derive(Debug, Clone)]
pub struct ComposerVersion {
    normalized: String,
}

const STABILITIES: [&str; 9] = [
    "stable", "beta", "b", "rc", "alpha", "a", "patch", "pl", "p",
];

fn expand_stability(s: &str) -> &'static str {
    match s.to_ascii_lowercase().as_str() {
        "a" | "alpha" => "alpha",
        "b" | "beta" => "beta",
        "p" | "pl" | "patch" => "patch",
        "rc" => "RC",
        _ => "stable",
    }
}

/// `((?:[.-]?\d+)*)([.-]?dev)?$` on `rest`: the number part and whether
/// `dev` ends it, or `None` when `rest` is not of that shape.
fn numbers_then_dev(rest: &str) -> Option<(&str, bool)> {
    let b = rest.as_bytes();
    let mut i = 0;
    loop {
        let mut j = i;
        if j < b.len() && matches!(b[j], b'.' | b'-') {
            j += 1;
        }
        let digits = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            break;
        }
        i = j + digits;
    }
    let (numbers, tail) = rest.split_at(i);
    let tail = tail.strip_prefix(['.', '-']).unwrap_or(tail);
    if tail.is_empty() {
        Some((numbers, false))
    } else if tail.eq_ignore_ascii_case("dev") {
        Some((numbers, true))
    } else {
        None
    }
}

/// Composer's classical version form, normalised; `None` if not of it.
fn normalize_classical(v: &str) -> Option<String> {
    let v = v.strip_prefix(['v', 'V']).unwrap_or(v);
    let b = v.as_bytes();
    let mut parts: Vec<&str> = Vec::new();
    let mut i = 0;
    while parts.len() < 4 {
        let start = if parts.is_empty() {
            i
        } else if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i + 1
        } else {
            break;
        };
        let digits = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || (parts.is_empty() && digits > 5) {
            return None;
        }
        parts.push(&v[start..start + digits]);
        i = start + digits;
    }
    let rest = &v[i..];
    let mut out = parts.join(".");
    for _ in parts.len()..4 {
        out.push_str(".0");
    }
    // `[._-]?(?:(stability)(numbers))?([.-]?dev)?$`, tried in the regex's
    // order: separator taken or not, each stability word in turn.
    let unseparated = rest.strip_prefix(['.', '_', '-']).into_iter().chain([rest]);
    for after_sep in unseparated {
        for word in STABILITIES {
            let Some(head) = after_sep.get(..word.len()) else {
                continue;
            };
            if !head.eq_ignore_ascii_case(word) {
                continue;
            }
            if let Some((numbers, dev)) = numbers_then_dev(&after_sep[word.len()..]) {
                if word == "stable" {
                    return Some(out);
                }
                out.push('-');
                out.push_str(expand_stability(word));
                out.push_str(numbers.trim_start_matches(['.', '-']));
                if dev {
                    out.push_str("-dev");
                }
                return Some(out);
            }
        }
        let dev = after_sep.strip_prefix(['.', '-']).unwrap_or(after_sep);
        if after_sep.is_empty() {
            return Some(out);
        }
        if dev.eq_ignore_ascii_case("dev") {
            out.push_str("-dev");
            return Some(out);
        }
    }
    None
}

/// `normalizeBranch` for numbered branches: `2.1.x` → `2.1.9999999.9999999-dev`.
fn normalize_numbered_branch(name: &str) -> Option<String> {
    let name = name.strip_prefix(['v', 'V']).unwrap_or(name);
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty() || parts.len() > 4 || !parts[0].bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let ok = !p.is_empty()
            && (p.bytes().all(|c| c.is_ascii_digit()) || (i > 0 && matches!(*p, "x" | "X" | "*")));
        if !ok {
            return None;
        }
        out.push(if p.bytes().all(|c| c.is_ascii_digit()) {
            (*p).to_owned()
        } else {
            "9999999".to_owned()
        });
    }
    while out.len() < 4 {
        out.push("9999999".to_owned());
    }
    Some(format!("{}-dev", out.join(".")))
}

/// Composer's `VersionParser::normalize`, for versions that can be ordered.
pub fn normalize(version: &str) -> Option<String> {
    let mut v = version.trim();
    // `1.0 as 2.0` aliases: the real version is the first.
    if let Some((real, _alias)) = v.split_once(" as ") {
        v = real.trim();
    }
    // `@stable`, `@dev` flags are constraints' business, not the version's.
    if let Some((head, flag)) = v.rsplit_once('@') {
        if ["stable", "rc", "beta", "alpha", "dev"]
            .iter()
            .any(|s| flag.eq_ignore_ascii_case(s))
        {
            v = head;
        }
    }
    if v.is_empty() || v.len() > 256 || v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("dev-")) {
        return None;
    }
    // Build metadata does not order.
    let v = match v.split_once('+') {
        Some((head, meta))
            if !head.is_empty() && !meta.is_empty() && !meta.contains(char::is_whitespace) =>
        {
            head
        }
        Some(_) => return None,
        None => v,
    };
    if let Some(n) = normalize_classical(v) {
        return Some(n);
    }
    let lower = v.to_ascii_lowercase();
    let branch = lower.strip_suffix("dev")?;
    let branch = branch.strip_suffix(['.', '-']).unwrap_or(branch);
    normalize_numbered_branch(branch)
}

impl ComposerVersion {
    pub fn parse(s: &str) -> Option<ComposerVersion> {
        normalize(s).map(|normalized| ComposerVersion { normalized })
    }

    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

/// PHP's `php_canonicalize_version`: `-`, `_`, `+` and other
/// non-alphanumerics become `.`, and a `.` goes between digits and letters.
fn php_canonical(v: &str) -> String {
    let mut out = String::with_capacity(v.len() * 2);
    let mut chars = v.chars();
    let Some(first) = chars.next() else {
        return out;
    };
    out.push(first);
    let mut lp = first;
    let is_dig = |c: char| c.is_ascii_digit();
    let is_ndig = |c: char| !c.is_ascii_digit() && c != '.';
    for p in chars {
        let last_dot = out.ends_with('.');
        if matches!(p, '-' | '_' | '+') {
            if !last_dot {
                out.push('.');
            }
        } else if (is_ndig(lp) && is_dig(p)) || (is_dig(lp) && is_ndig(p)) {
            if !last_dot {
                out.push('.');
            }
            out.push(p);
        } else if !p.is_ascii_alphanumeric() {
            if !last_dot {
                out.push('.');
            }
        } else {
            out.push(p);
        }
        lp = p;
    }
    out
}

/// PHP's special forms: `dev < alpha = a < beta = b < RC = rc < # < pl = p`,
/// matched by prefix; anything else sorts before `dev`.
fn special_form(s: &str) -> i32 {
    const FORMS: [(&str, i32); 10] = [
        ("dev", 0),
        ("alpha", 1),
        ("a", 1),
        ("beta", 2),
        ("b", 2),
        ("RC", 3),
        ("rc", 3),
        ("#", 4),
        ("pl", 5),
        ("p", 5),
    ];
    FORMS
        .iter()
        .find(|(name, _)| s.starts_with(name))
        .map_or(-1, |(_, order)| *order)
}

fn starts_with_digit(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit())
}

/// PHP's `version_compare`.
pub fn php_version_compare(a: &str, b: &str) -> Ordering {
    if a.is_empty() || b.is_empty() {
        return (!a.is_empty()).cmp(&!b.is_empty());
    }
    let v1 = if a.starts_with('#') {
        a.to_owned()
    } else {
        php_canonical(a)
    };
    let v2 = if b.starts_with('#') {
        b.to_owned()
    } else {
        php_canonical(b)
    };
    let mut p1: &str = &v1;
    let mut p2: &str = &v2;
    let mut more1 = true;
    let mut more2 = true;
    let mut compare = Ordering::Equal;
    while !p1.is_empty() && !p2.is_empty() && more1 && more2 {
        let (e1, r1) = match p1.split_once('.') {
            Some((e, r)) => (e, Some(r)),
            None => (p1, None),
        };
        let (e2, r2) = match p2.split_once('.') {
            Some((e, r)) => (e, Some(r)),
            None => (p2, None),
        };
        more1 = r1.is_some();
        more2 = r2.is_some();
        compare = match (starts_with_digit(e1), starts_with_digit(e2)) {
            (true, true) => {
                let n1 = e1.trim_start_matches('0');
                let n2 = e2.trim_start_matches('0');
                let d1 = n1.bytes().take_while(u8::is_ascii_digit).count();
                let d2 = n2.bytes().take_while(u8::is_ascii_digit).count();
                let (n1, n2) = (&n1[..d1], &n2[..d2]);
                n1.len().cmp(&n2.len()).then_with(|| n1.cmp(n2))
            }
            (false, false) => special_form(e1).cmp(&special_form(e2)),
            (true, false) => special_form("#N#").cmp(&special_form(e2)),
            (false, true) => special_form(e1).cmp(&special_form("#N#")),
        };
        if compare.is_ne() {
            break;
        }
        if let Some(r) = r1 {
            p1 = r;
        }
        if let Some(r) = r2 {
            p2 = r;
        }
    }
    if compare.is_eq() {
        if more1 {
            compare = if starts_with_digit(p1) {
                Ordering::Greater
            } else {
                php_version_compare(p1, "#N#")
            };
        } else if more2 {
            compare = if starts_with_digit(p2) {
                Ordering::Less
            } else {
                php_version_compare("#N#", p2)
            };
        }
    }
    compare
}

impl PartialEq for ComposerVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ComposerVersion {}
impl PartialOrd for ComposerVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ComposerVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        php_version_compare(&self.normalized, &other.normalized)
    }
}
