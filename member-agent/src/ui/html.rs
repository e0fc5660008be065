//! HTML building blocks: the escaper every field goes through, URL and form
//! encoding, the page layout, and TLP labels. No template engine: pages are
//! built with `format!` and `push_str`, and anything that did not come from
//! this file's own literals is passed through [`esc`].

use std::fmt::Write as _;

/// Escapes text for HTML element content and double- or single-quoted
/// attribute values: `& < > " '` become character references. Titles,
/// descriptions and every other field are attacker-controlled.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value or path segment (everything but
/// unreserved characters).
pub fn urlenc(s: &str) -> String {
    isac_core::pct::encode_unreserved(s)
}

fn hexval(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
pub fn urldecode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hexval(bytes[i + 1]), hexval(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A decoded form body or query string; repeated names keep every value.
#[derive(Debug, Default, Clone)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn parse(s: &str) -> Form {
        Form(
            s.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (urldecode(k), urldecode(v))
                })
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; empty if absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// The first non-empty value of `name`.
    pub fn opt(&self, name: &str) -> Option<String> {
        let v = self.get(name);
        (!v.is_empty()).then(|| v.to_owned())
    }

    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// Back to a query string (for links that keep the filters).
    pub fn to_query(&self) -> String {
        self.0
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{}={}", urlenc(k), urlenc(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The navigation entries: (path, label).
const NAV: [(&str, &str); 5] = [
    ("/", "Feed"),
    ("/search", "Search"),
    ("/exposure", "Exposure"),
    ("/publish", "Publish"),
    ("/status", "Status"),
];

/// A whole page: `title` and `org` are escaped here; `body` is HTML built
/// by the caller from escaped parts. `csrf` is the session's token (for the
/// log-out form).
pub fn page(title: &str, active: &str, org: &str, csrf: &str, body: &str) -> String {
    let mut nav = String::new();
    for (path, label) in NAV {
        let current = if path == active {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(nav, "<li><a href=\"{path}\"{current}>{label}</a></li>");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · ISAC console</title>\
<link rel=\"stylesheet\" href=\"/static/console.css\">\
<script src=\"/static/console.js\" defer></script></head>\
<body><a class=\"skip\" href=\"#main\">Skip to content</a>\
<header><span class=\"brand\">ISAC console</span> <span class=\"org\">{org}</span>\
<nav aria-label=\"Main\"><ul>{nav}</ul></nav>\
<form method=\"post\" action=\"/logout\" class=\"logout\">{csrf_field}<button type=\"submit\">Log out</button></form>\
</header><main id=\"main\"><h1>{title}</h1>\n{body}\n</main></body></html>\n",
        title = esc(title),
        org = esc(org),
        csrf_field = csrf_input(csrf),
    )
}

/// The hidden CSRF field every form carries.
pub fn csrf_input(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

/// A TLP 2.0 label in FIRST's colours (see console.css).
pub fn tlp_label(tlp: &str) -> String {
    let class = match tlp {
        "clear" => "clear",
        "green" => "green",
        "amber" => "amber",
        "amber+strict" => "amber-strict",
        "red" => "red",
        _ => "unknown",
    };
    format!(
        "<span class=\"tlp tlp-{class}\">TLP:{}</span>",
        esc(&tlp.to_uppercase())
    )
}

/// How a source reads to people.
pub fn source_name(source: &str) -> String {
    if source == isac_core::stix::ANONYMOUS_ORG_ID {
        "anonymous member".to_owned()
    } else {
        source.to_owned()
    }
}

/// "verified", or why a verified item's signature is now in doubt.
pub fn signature_status(status: &str) -> &'static str {
    match status {
        "key-revoked" => "key revoked",
        "key-retired" => "key retired",
        _ => "verified",
    }
}

/// A short age: `42 s`, `5 min`, `3 h`, `2 d`.
pub fn age(created: &str, now: i64) -> String {
    let Ok(t) = isac_core::time::parse_rfc3339(created) else {
        return String::new();
    };
    let d = (now - t).max(0);
    match d {
        0..=59 => format!("{d} s"),
        60..=3599 => format!("{} min", d / 60),
        3600..=86399 => format!("{} h", d / 3600),
        _ => format!("{} d", d / 86400),
    }
}

/// A notice box; `text` is escaped.
pub fn notice(kind: &str, text: &str) -> String {
    let role = if kind == "error" { "alert" } else { "status" };
    format!(
        "<p class=\"notice notice-{kind}\" role=\"{role}\">{}</p>",
        esc(text)
    )
}

/// `<option>`s for a select, with `selected` marked.
pub fn options(values: &[(&str, &str)], selected: &str) -> String {
    let mut out = String::new();
    for (value, label) in values {
        let sel = if *value == selected { " selected" } else { "" };
        let _ = write!(
            out,
            "<option value=\"{}\"{sel}>{}</option>",
            esc(value),
            esc(label)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    #[test]
    fn every_char_escapes_to_itself_or_its_reference() {
        // Every Unicode scalar value, one at a time.
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let s = c.to_string();
            let e = esc(&s);
            let expected = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => s.as_str(),
            };
            assert_eq!(e, expected, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn escaped_text_never_holds_markup_and_round_trips() {
        let samples = [
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
            "' onmouseover='alert(1)",
            "&lt;already escaped&gt;",
            "a & b < c > d \" e ' f",
            "</textarea><script>x</script>",
            "javascript:alert(1)",
            "\u{0}\u{7f}\u{2028}\u{feff}é漢🙂",
            "",
        ];
        // And a fixed-seed pseudo-random walk over a markup-heavy alphabet.
        let alphabet: Vec<char> = "<>&\"'/=; ax\u{0}é🙂#".chars().collect();
        let mut seed: u64 = 0x5eed;
        let mut generated = Vec::new();
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..(seed % 24) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            generated.push(s);
        }
        for s in samples.iter().map(|s| s.to_string()).chain(generated) {
            let e = esc(&s);
            assert!(!e.contains(['<', '>', '"', '\'']), "{s:?} escaped to {e:?}");
            // Every `&` starts one of our references.
            for (i, _) in e.match_indices('&') {
                let rest = &e[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                        .iter()
                        .any(|r| rest.starts_with(r)),
                    "{e:?}"
                );
            }
            assert_eq!(unescape(&e), s);
        }
    }

    #[test]
    fn urls_and_forms_round_trip() {
        for s in [
            "pkg:npm/@scope/evil-pkg@1.0.0",
            "a b&c=d+e%f",
            "漢🙂",
            "",
            ">=1.2.0 <1.2.5",
        ] {
            assert_eq!(urldecode(&urlenc(s)), s);
            let f = Form::parse(&format!("q={}&q={}&x=", urlenc(s), urlenc("two")));
            assert_eq!(f.0[0].1, s);
            assert_eq!(f.0[1].1, "two");
        }
        assert_eq!(urldecode("a+b%20c%zz%4"), "a b c%zz%4");
        assert_eq!(urldecode("%"), "%");
        assert_eq!(urldecode("%4"), "%4");
        let f = Form::parse("audience=org%3Abob&audience=group%3Ap&tlp=amber&empty=");
        assert_eq!(f.all("audience"), ["org:bob", "group:p"]);
        assert_eq!(f.get("tlp"), "amber");
        assert_eq!(f.opt("empty"), None);
        assert_eq!(
            f.to_query(),
            "audience=org%3Abob&audience=group%3Ap&tlp=amber"
        );
    }

    #[test]
    fn labels_and_ages() {
        assert!(tlp_label("amber+strict").contains("tlp-amber-strict"));
        assert!(tlp_label("<b>").contains("TLP:&lt;B&gt;"));
        let t = isac_core::time::parse_rfc3339("2026-11-25T12:00:00Z").unwrap();
        assert_eq!(age("2026-11-25T12:00:00Z", t + 5), "5 s");
        assert_eq!(age("2026-11-25T12:00:00Z", t + 300), "5 min");
        assert_eq!(age("2026-11-25T12:00:00Z", t + 7200), "2 h");
        assert_eq!(age("2026-11-25T12:00:00Z", t + 3 * 86400), "3 d");
        assert_eq!(source_name("anonymous"), "anonymous member");
    }
}
