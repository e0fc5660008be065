//! HTML building blocks as maud markup: the page layout, TLP labels,
//! notices, select options, plus URL and form coding. Every page is a maud
//! `html!` template, where a `(splice)` is escaped: a field reaches a page
//! only as text, whatever it holds. `PreEscaped` may wrap only this crate's
//! own string literals (the `pre_escaped_takes_only_literals` test reads the
//! sources to hold that).

use maud::{html, Markup, DOCTYPE};

/// Percent-encodes a query value or path segment (everything but
/// unreserved characters).
pub fn urlenc(s: &str) -> String {
    isac_core::pct::encode_unreserved(s)
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a
/// space, then the percent escapes through the one decoder in
/// `isac_core::pct` (a `%` without two hex digits stays as it is).
fn form_decode(s: &str) -> String {
    isac_core::pct::decode_lossy(&s.replace('+', " "))
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
                    (form_decode(k), form_decode(v))
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

/// A whole page around `body`; `title` and `org` are spliced (escaped).
/// `csrf` is the session's token (for the log-out form).
pub fn page(title: &str, active: &str, org: &str, csrf: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ISAC console" }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "ISAC console" }
                    " "
                    span.org { (org) }
                    nav aria-label="Main" {
                        ul {
                            @for (path, label) in NAV {
                                li {
                                    a href=(path) aria-current=[(path == active).then_some("page")] {
                                        (label)
                                    }
                                }
                            }
                        }
                    }
                    form.logout method="post" action="/logout" {
                        (csrf_input(csrf))
                        button type="submit" { "Log out" }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_input(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A TLP 2.0 label in FIRST's colours (see console.css).
pub fn tlp_label(tlp: &str) -> Markup {
    let class = match tlp {
        "clear" => "clear",
        "green" => "green",
        "amber" => "amber",
        "amber+strict" => "amber-strict",
        "red" => "red",
        _ => "unknown",
    };
    html! { span class={ "tlp tlp-" (class) } { "TLP:" (tlp.to_uppercase()) } }
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

/// A notice box around `text`.
pub fn notice(kind: &str, text: &str) -> Markup {
    let role = if kind == "error" { "alert" } else { "status" };
    html! { p class={ "notice notice-" (kind) } role=(role) { (text) } }
}

/// The banner the feed and status pages open with while a transparency
/// log alert is held (`crate::tlog`).
pub fn log_alert_banner(alert: Option<&crate::tlog::LogAlert>) -> Markup {
    let Some(a) = alert else {
        return html! {};
    };
    html! {
        div.log-alert role="alert" {
            h2 { "Transparency log alert (" (a.kind) "): ingesting from the hub is stopped" }
            p { (a.message) }
            p {
                "Nothing new is stored until the agent's operator, after the ISAC coordinator's decision, runs "
                code { "member-agent log accept --checkpoint FILE" }
                "."
            }
        }
    }
}

/// `<option>`s for a select, with `selected` marked.
pub fn options(values: &[(&str, &str)], selected: &str) -> Markup {
    html! {
        @for (value, label) in values {
            option value=(value) selected[*value == selected] { (label) }
        }
    }
}

/// Hostile input for the page tests, and a check that a rendered page or
/// fragment holds only markup our templates write.
#[cfg(test)]
pub(super) mod hostile {
    /// Attacker-controlled text: markup, attribute breakouts, entities, a
    /// `javascript:` URL.
    pub const PAYLOADS: [&str; 6] = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "' onmouseover='alert(1)' x='",
        "&lt;b&gt; & &amp;",
        "javascript:alert(document.cookie)",
        "</textarea></pre><script>alert(2)</script>",
    ];

    /// Every payload in one field.
    pub fn all() -> String {
        PAYLOADS.join(" ")
    }

    /// `s` as maud writes text: what a page shows for a hostile field.
    pub fn escaped(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }

    /// Every element the console's templates write.
    const TAGS: &[&str] = &[
        "html", "head", "meta", "title", "link", "script", "body", "a", "header", "span", "nav",
        "ul", "li", "form", "input", "button", "main", "h1", "h2", "h3", "p", "select", "option",
        "label", "section", "table", "thead", "tbody", "tr", "th", "td", "code", "time", "div",
        "dl", "dt", "dd", "pre", "details", "summary", "fieldset", "legend", "textarea", "output",
        "h4",
    ];

    /// Every attribute they write (no event handlers, no `style`).
    const ATTRIBUTES: &[&str] = &[
        "lang",
        "charset",
        "name",
        "content",
        "rel",
        "href",
        "src",
        "defer",
        "class",
        "id",
        "aria-label",
        "aria-current",
        "aria-labelledby",
        "aria-live",
        "method",
        "action",
        "type",
        "value",
        "role",
        "data-seq",
        "data-item",
        "data-events",
        "data-copy",
        "data-preview",
        "data-fills",
        "data-names",
        "datetime",
        "tabindex",
        "download",
        "for",
        "required",
        "checked",
        "selected",
        "placeholder",
        "size",
        "rows",
        "spellcheck",
        "min",
        "max",
        "autofocus",
        "autocomplete",
        "scope",
        "disabled",
        // triage (console-b)
        "aria-sort",
        "formaction",
    ];

    // publishing and reading (console-a): bulletin Markdown, the item
    // summary, the publish form's field errors and kinds.
    const TAGS_A: &[&str] = &[
        "strong",
        "em",
        "del",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "ol",
        "br",
        "hr",
        "article",
    ];
    const ATTRIBUTES_A: &[&str] = &[
        "start",
        "data-kind",
        "data-for-kind",
        "aria-invalid",
        "aria-describedby",
    ];

    /// Panics unless every tag in `html` is one of ours with only our
    /// attributes, every link, source and form target is a path on this
    /// console, and every script is an empty element loading our own file.
    /// Text is escaped, so every `<` in a rendered page starts a tag we wrote.
    pub fn assert_inert(html: &str) {
        let mut at = 0;
        while let Some(off) = html[at..].find('<') {
            let start = at + off + 1;
            let end = start
                + html[start..]
                    .find('>')
                    .unwrap_or_else(|| panic!("unclosed tag in {html}"));
            at = end;
            let tag = &html[start..end];
            if tag == "!DOCTYPE html" {
                continue;
            }
            let (closing, tag) = match tag.strip_prefix('/') {
                Some(t) => (true, t),
                None => (false, tag),
            };
            let (name, mut attrs) = tag.split_once(' ').unwrap_or((tag, ""));
            assert!(
                TAGS.contains(&name) || TAGS_A.contains(&name),
                "element <{name}> in {html}"
            );
            if closing {
                assert!(attrs.is_empty(), "</{tag}> in {html}");
                continue;
            }
            let mut src = None;
            while !attrs.is_empty() {
                let name_end = attrs.find(['=', ' ']).unwrap_or(attrs.len());
                let attr = &attrs[..name_end];
                assert!(
                    ATTRIBUTES.contains(&attr) || ATTRIBUTES_A.contains(&attr),
                    "attribute {attr:?} on <{name}> in {html}"
                );
                let mut value = None;
                attrs = &attrs[name_end..];
                if let Some(rest) = attrs.strip_prefix("=\"") {
                    let close = rest
                        .find('"')
                        .unwrap_or_else(|| panic!("unquoted value in <{tag}>"));
                    value = Some(&rest[..close]);
                    attrs = &rest[close + 1..];
                }
                attrs = attrs.trim_start();
                if matches!(attr, "href" | "src" | "action" | "formaction") {
                    let v = value.unwrap_or_default();
                    // A link out (references, bulletin Markdown) is
                    // http(s) only, never a script or data URL.
                    let out = name == "a"
                        && attr == "href"
                        && (v.starts_with("https://") || v.starts_with("http://"));
                    assert!(
                        (v.starts_with('/') && !v.starts_with("//") && !v.starts_with("/\\"))
                            || v.starts_with('#')
                            || out,
                        "{attr}={v:?} leaves the console, in {html}"
                    );
                }
                if attr == "src" {
                    src = value;
                }
            }
            if name == "script" {
                assert!(
                    src.is_some_and(|s| s.starts_with("/static/"))
                        && html[end + 1..].starts_with("</script>"),
                    "a script that is not our own file, in {html}"
                );
            }
        }
    }

    /// Asserts the page shows each payload as text, and is inert.
    pub fn assert_shown_inert(html: &str) {
        assert_inert(html);
        for p in PAYLOADS {
            assert!(
                html.contains(&escaped(p)),
                "{p:?} not shown as text in {html}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hostile::{self, PAYLOADS};
    use super::*;

    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    }

    /// `s` spliced as element text and as an attribute value.
    fn spliced(s: &str) -> (String, String) {
        let text = html! { (s) }.into_string();
        let attr = html! { b title=(s) {} }.into_string();
        let attr = attr
            .strip_prefix("<b title=\"")
            .and_then(|a| a.strip_suffix("\"></b>"))
            .expect("one attribute")
            .to_owned();
        (text, attr)
    }

    #[test]
    fn every_char_is_text_in_content_and_attributes() {
        // Every Unicode scalar value, one at a time.
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let s = c.to_string();
            let expected = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                _ => s.as_str(),
            };
            let (text, attr) = spliced(&s);
            assert_eq!(text, expected, "U+{:04X}", c as u32);
            assert_eq!(attr, expected, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn spliced_text_never_holds_markup_and_round_trips() {
        let samples = PAYLOADS.iter().map(|s| s.to_string()).chain([
            "a & b < c > d \" e ' f".to_owned(),
            "\u{0}\u{7f}\u{2028}\u{feff}é漢🙂".to_owned(),
            String::new(),
        ]);
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
        for s in samples.chain(generated) {
            let (text, attr) = spliced(&s);
            // `'` may stay: maud always quotes attribute values with `"`.
            for e in [&text, &attr] {
                assert!(!e.contains(['<', '>', '"']), "{s:?} spliced as {e:?}");
                // Every `&` starts one of maud's references.
                for (i, _) in e.match_indices('&') {
                    let rest = &e[i..];
                    assert!(
                        ["&amp;", "&lt;", "&gt;", "&quot;"]
                            .iter()
                            .any(|r| rest.starts_with(r)),
                        "{e:?}"
                    );
                }
                assert_eq!(unescape(e), s);
            }
        }
    }

    #[test]
    fn the_layout_and_its_parts_show_hostile_text_as_text() {
        let h = hostile::all();
        let page = page(&h, "/search", &h, &h, notice("error", &h)).into_string();
        hostile::assert_shown_inert(&page);
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        // Ours: the stylesheet, the one script, the skip link, the nav.
        assert_eq!(page.matches("<script").count(), 1, "{page}");
        assert!(page.contains("<script src=\"/static/console.js\" defer></script>"));
        assert!(page.contains("<a href=\"/search\" aria-current=\"page\">Search</a>"));
        assert_eq!(page.matches("aria-current").count(), 1);
        assert!(page.contains("<a class=\"skip\" href=\"#main\">Skip to content</a>"));
        assert!(page.contains(&format!("name=\"csrf\" value=\"{}\"", hostile::escaped(&h))));
        let label = tlp_label(&h).into_string();
        hostile::assert_inert(&label);
        assert!(label.starts_with("<span class=\"tlp tlp-unknown\">TLP:"));
        let opts = options(&[(&h, &h), ("a", "b")], &h).into_string();
        hostile::assert_inert(&opts);
        assert_eq!(opts.matches(" selected").count(), 1, "{opts}");
    }

    #[test]
    fn the_log_alert_banner_shows_hostile_text_as_text_and_nothing_without_an_alert() {
        assert_eq!(log_alert_banner(None).into_string(), "");
        let h = hostile::all();
        let alert = crate::tlog::LogAlert {
            kind: h.clone(),
            message: h.clone(),
            trusted: None,
            offered: None,
            offered_note: Some(h.clone()),
            items: vec![],
            hub: h.clone(),
            at: h.clone(),
        };
        let banner = log_alert_banner(Some(&alert)).into_string();
        hostile::assert_shown_inert(&banner);
        assert!(
            banner.starts_with("<div class=\"log-alert\" role=\"alert\">"),
            "{banner}"
        );
        assert!(banner.contains("member-agent log accept --checkpoint FILE"));
    }

    #[test]
    fn the_checker_catches_what_it_looks_for() {
        for bad in [
            "<img src=x>",
            "<p onclick=\"x\">",
            "<a href=\"javascript:alert(1)\">",
            "<a href=\"//evil.example/\">",
            "<form action=\"https://evil.example/\">",
            "<script>alert(1)</script>",
            "<script src=\"https://evil.example/x.js\"></script>",
            "<p style=\"x\">",
            "<p class=x>",
            "<a href=\"/\\evil.example/\">",
        ] {
            let caught = std::panic::catch_unwind(|| hostile::assert_inert(bad)).is_err();
            assert!(caught, "{bad} passed");
        }
        hostile::assert_inert("<p class=\"x\"><a href=\"/item/x%3Cy\">&lt;img&gt;</a></p>");
    }

    /// `PreEscaped` (maud's way around escaping) may wrap only a string
    /// literal of ours, never a value: a field can then never reach a page
    /// unescaped. Reads the console's sources.
    #[test]
    fn pre_escaped_takes_only_literals() {
        let sources = [
            ("mod.rs", include_str!("mod.rs")),
            ("html.rs", include_str!("html.rs")),
            ("feed.rs", include_str!("feed.rs")),
            ("item.rs", include_str!("item.rs")),
            ("publish.rs", include_str!("publish.rs")),
            ("search.rs", include_str!("search.rs")),
            ("status.rs", include_str!("status.rs")),
            ("error.rs", include_str!("error.rs")),
            ("exposure.rs", include_str!("exposure.rs")),
            ("markdown.rs", include_str!("markdown.rs")),
            ("report.rs", include_str!("report.rs")),
        ];
        let needle = concat!("PreEscaped", "(");
        for (file, text) in sources {
            for (i, _) in text.match_indices(needle) {
                let arg = &text[i + needle.len()..];
                assert!(
                    arg.starts_with('"') || arg.starts_with("r#\"") || arg.starts_with("r\""),
                    "{file}: {} takes a value, not a literal",
                    &text[i..text[i..].find('\n').map_or(text.len(), |n| i + n)]
                );
            }
        }
        let mut listed: Vec<&str> = sources.iter().map(|(f, _)| *f).collect();
        listed.sort_unstable();
        let mut on_disk: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/ui"))
                .expect("src/ui")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|f| f.ends_with(".rs"))
                .collect();
        on_disk.sort_unstable();
        assert_eq!(listed, on_disk, "a new console file: list it above");
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
            assert_eq!(form_decode(&urlenc(s)), s);
            let f = Form::parse(&format!("q={}&q={}&x=", urlenc(s), urlenc("two")));
            assert_eq!(f.0[0].1, s);
            assert_eq!(f.0[1].1, "two");
        }
        assert_eq!(form_decode("a+b%20c%zz%4"), "a b c%zz%4");
        assert_eq!(form_decode("%"), "%");
        assert_eq!(form_decode("%4"), "%4");
        assert_eq!(form_decode("1%2B1+%3D+2"), "1+1 = 2");
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
        assert!(tlp_label("amber+strict")
            .into_string()
            .contains("tlp-amber-strict"));
        assert!(tlp_label("<b>").into_string().contains("TLP:&lt;B&gt;"));
        let t = isac_core::time::parse_rfc3339("2026-11-25T12:00:00Z").unwrap();
        assert_eq!(age("2026-11-25T12:00:00Z", t + 5), "5 s");
        assert_eq!(age("2026-11-25T12:00:00Z", t + 300), "5 min");
        assert_eq!(age("2026-11-25T12:00:00Z", t + 7200), "2 h");
        assert_eq!(age("2026-11-25T12:00:00Z", t + 3 * 86400), "3 d");
        assert_eq!(source_name("anonymous"), "anonymous member");
    }
}
