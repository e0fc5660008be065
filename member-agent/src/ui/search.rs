//! Search (the local store's search: purl with `@` or `%40`, package name,
//! hash, domain, a URL's domain, text), observables found in pasted text
//! (`isac_core::extract`) looked up by value and package, and the exposure check (the `check` command's lockfile parsers and
//! matching, on an uploaded or pasted lockfile).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};

use super::exposure::Finding;
use super::feed::{row, table_head};
use super::html::{self, Form};
use super::{html_response, Authed, Console};
use crate::error::AgentError;
use crate::localstore::{ItemSummary, LocalStore};
use isac_core::extract::{Found, FoundKind};

pub async fn page(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Form::parse(q.as_deref().unwrap_or("")).get("q").to_owned();
    if q.len() > MAX_QUERY_BYTES {
        return super::error_page(
            &c,
            &auth,
            StatusCode::PAYLOAD_TOO_LARGE,
            "a search is at most 4 KiB; paste longer text into \"Find observables in text\"",
        );
    }
    let result = if q.is_empty() {
        None
    } else {
        let query = q.clone();
        match c
            .blocking(move |a| {
                let store = a.store.lock().expect("store");
                let extracted = isac_core::extract::extract(&query);
                let known = lookup(&store, &extracted.found)?;
                let mut items = Vec::new();
                for spelling in spellings(&query) {
                    items.extend(store.search(&spelling, 200)?);
                }
                // What the pasted value names, found by value or package:
                // a purl spelled with `@` or `%40`, a URL's domain.
                items.extend(
                    known
                        .iter()
                        .flat_map(|k| k.items.iter().map(|(i, _)| i.clone())),
                );
                let mut seen = std::collections::HashSet::new();
                items.retain(|i| seen.insert(i.id.clone()));
                items.sort_by_key(|i| std::cmp::Reverse(i.sequence));
                Ok((
                    items,
                    (extracted.found.len() > 1).then_some((known, extracted.cut)),
                ))
            })
            .await
        {
            Ok(r) => Some(r),
            Err(e) => return super::error::fail(&c, &auth, "The search failed", &e),
        }
    };
    let now = crate::now();
    let body = html! {
        (search_body(&q, result.as_ref().map(|(items, _)| items.as_slice()), now))
        @if let Some((_, Some((known, cut)))) = &result {
            (observables_html(known, *cut, now))
        }
        (paste_form(&auth.csrf, ""))
    };
    html_response(
        StatusCode::OK,
        html::page("Search", "/search", c.agent().org_id(), &auth.csrf, body),
    )
}

/// A single-line search longer than this is refused (paste text instead).
const MAX_QUERY_BYTES: usize = 4096;
/// Most unknown observables one "publish them" link carries.
const MAX_PUBLISH_LINK: usize = 100;

/// The spellings one search looks for: as typed, and a scoped purl with
/// `@` and with `%40` (`pkg:npm/@scope/x` and `pkg:npm/%40scope/x`).
fn spellings(q: &str) -> Vec<String> {
    let mut out = vec![q.to_owned()];
    let decoded = q
        .replace("%40", "@")
        .replace("%40".to_uppercase().as_str(), "@");
    if decoded != q {
        out.push(decoded);
    }
    if let Some(rest) = q.strip_prefix("pkg:") {
        if let Some((ty, name)) = rest.split_once("/@") {
            out.push(format!("pkg:{ty}/%40{name}"));
        }
    }
    out
}

/// A domain and the domains above it with at least two labels
/// (`a.b.evil.example` → itself, `b.evil.example`, `evil.example`).
fn with_parents(domain: &str) -> Vec<String> {
    let mut out = vec![domain.to_owned()];
    let mut rest = domain;
    while let Some((_, up)) = rest.split_once('.') {
        if !up.contains('.') {
            break;
        }
        out.push(up.to_owned());
        rest = up;
    }
    out
}

/// The host of an http(s) URL, lowercase, without user or port.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// What a found value is looked up by: exact values (each with why it
/// would match) and, for a purl, its package key.
fn candidates(f: &Found) -> (Vec<(String, String)>, Option<String>) {
    let same = |v: &str| (v.to_owned(), "the same value".to_owned());
    match f.kind {
        FoundKind::Purl => {
            let values = spellings(&f.value).iter().map(|v| same(v)).collect();
            let key = f
                .value
                .parse::<isac_packages::Purl>()
                .map(|p| p.package_key())
                .ok();
            (values, key)
        }
        FoundKind::Url => {
            let mut values = vec![same(&f.value)];
            if let Some(host) = url_host(&f.value) {
                for d in with_parents(&host) {
                    let why = format!("its host names the held domain {d}");
                    values.push((d, why));
                }
            }
            (values, None)
        }
        FoundKind::Domain => {
            let values = with_parents(&f.value)
                .into_iter()
                .map(|d| {
                    let why = if d == f.value {
                        "the same value".to_owned()
                    } else {
                        format!("under the held domain {d}")
                    };
                    (d, why)
                })
                .collect();
            (values, None)
        }
        _ => (vec![same(&f.value)], None),
    }
}

/// One found observable and the held items it names, each with why.
pub struct Known {
    pub found: Found,
    pub items: Vec<(ItemSummary, String)>,
}

/// Looks every found observable up in the store: by exact value (and the
/// domains a URL or domain sits under), and purls by package.
fn lookup(store: &LocalStore, found: &[Found]) -> Result<Vec<Known>, AgentError> {
    let plans: Vec<_> = found.iter().map(candidates).collect();
    let values: Vec<String> = {
        let mut v: Vec<String> = plans
            .iter()
            .flat_map(|(vs, _)| vs.iter().map(|(v, _)| v.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let keys: Vec<String> = {
        let mut k: Vec<String> = plans.iter().filter_map(|(_, k)| k.clone()).collect();
        k.sort();
        k.dedup();
        k
    };
    let by_value = store.items_with_values(&values)?;
    let by_key = store.items_for_packages(&keys)?;
    Ok(found
        .iter()
        .zip(plans)
        .map(|(f, (values, key))| {
            let mut items: Vec<(ItemSummary, String)> = Vec::new();
            for (v, why) in &values {
                for i in by_value.iter().filter(|i| &i.value == v) {
                    if !items.iter().any(|(x, _)| x.id == i.id) {
                        items.push((i.clone(), why.clone()));
                    }
                }
            }
            if let Some(key) = &key {
                for (_, i) in by_key.iter().filter(|(k, _)| k == key) {
                    if !items.iter().any(|(x, _)| x.id == i.id) {
                        items.push((i.clone(), format!("names the package {key}")));
                    }
                }
            }
            Known {
                found: f.clone(),
                items,
            }
        })
        .collect())
}

/// The paste box: a block of text whose observables are looked up.
fn paste_form(csrf: &str, text: &str) -> Markup {
    html! {
        section #paste-section aria-labelledby="paste-h" {
            h2 #paste-h { "Find observables in text" }
            p.muted {
                "Paste a report, an e-mail or a list (up to 256 KiB): every purl, SHA-256/512 hash, \
                 domain, URL, IP address and CVE/GHSA/OSV id in it is looked up here (defanged \
                 spellings such as hxxp:// and evil[.]example too); the unknown ones can be published."
            }
            form.stack #paste-form method="post" action="/search/paste" {
                (html::csrf_input(csrf))
                label for="paste" { "Text" }
                textarea #paste name="text" rows="8" spellcheck="false" { (text) }
                button #extract type="submit" { "Find observables" }
            }
        }
    }
}

/// The observables found in a text: known ones with their items, unknown
/// ones with a link to publish them.
fn observables_html(known: &[Known], cut: bool, now: i64) -> Markup {
    let unknown: Vec<&str> = known
        .iter()
        .filter(|k| k.items.is_empty())
        .map(|k| k.found.value.as_str())
        .collect();
    let held = known.len() - unknown.len();
    let publish_all = format!(
        "/publish?observables={}",
        html::urlenc(
            &unknown
                .iter()
                .take(MAX_PUBLISH_LINK)
                .copied()
                .collect::<Vec<_>>()
                .join("\n")
        )
    );
    html! {
        section #found-section aria-labelledby="found-h" {
            h2 #found-h { "Observables in the text" }
            p role="status" #found-summary {
                (known.len()) " observable(s) found: " (held) " known here, " (unknown.len()) " unknown."
            }
            @if cut {
                (html::notice("error", &format!(
                    "Only the first {} KiB and {} observables were read; paste the rest separately.",
                    isac_core::extract::MAX_TEXT_BYTES / 1024,
                    isac_core::extract::MAX_OBSERVABLES
                )))
            }
            @if !unknown.is_empty() {
                p {
                    a #publish-unknown href=(publish_all) {
                        "Publish the " (unknown.len().min(MAX_PUBLISH_LINK)) " unknown observable(s)"
                    }
                    @if unknown.len() > MAX_PUBLISH_LINK {
                        " (the first " (MAX_PUBLISH_LINK) "; publish the rest from their rows)"
                    }
                }
            }
            div.scroll {
                table.feed #observables {
                    thead { tr {
                        @for col in ["Kind", "Observable", "Held here", ""] {
                            th scope="col" { (col) }
                        }
                    } }
                    tbody {
                        @for k in known {
                            tr class=(if k.items.is_empty() { "unknown" } else { "known" }) {
                                td { (k.found.kind.label()) }
                                td.obs { code { (k.found.value) } }
                                td {
                                    @if k.items.is_empty() { span.muted { "unknown" } }
                                    @for (i, why) in &k.items {
                                        div.held {
                                            (html::tlp_label(&i.tlp)) " "
                                            a href={ "/item/" (html::urlenc(&i.id)) } { (i.title) }
                                            " " (super::feed::severity_badge(&i.severity))
                                            " " span.muted { "(" (why) ", " (html::age(&i.created, now)) " old)" }
                                        }
                                    }
                                }
                                td {
                                    @if k.items.is_empty() {
                                        a href={ "/publish?observables=" (html::urlenc(&k.found.value)) } { "Publish…" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /search/paste`: the observables in a pasted text, looked up.
pub async fn paste(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&String::from_utf8_lossy(&body));
    if let Some(r) = auth.check(&form) {
        return r;
    }
    let text = form
        .0
        .iter()
        .find(|(k, _)| k == "text")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let t = text.clone();
    let result = c
        .blocking(move |a| {
            let extracted = isac_core::extract::extract(&t);
            let store = a.store.lock().expect("store");
            Ok((lookup(&store, &extracted.found)?, extracted.cut))
        })
        .await;
    let (known, cut) = match result {
        Ok(r) => r,
        Err(e) => return super::error::fail(&c, &auth, "The lookup failed", &e),
    };
    // The box keeps what was pasted (up to the limit read).
    let mut end = text.len().min(isac_core::extract::MAX_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let body = html! {
        (search_body("", None, crate::now()))
        @if known.is_empty() {
            (html::notice("info", "No purl, hash, domain, URL, IP address or vulnerability id found in the text."))
        } @else {
            (observables_html(&known, cut, crate::now()))
        }
        (paste_form(&auth.csrf, &text[..end]))
    };
    html_response(
        StatusCode::OK,
        html::page("Search", "/search", c.agent().org_id(), &auth.csrf, body),
    )
}

/// The search form with `q`, and what matched it (`None`: nothing asked).
fn search_body(q: &str, items: Option<&[ItemSummary]>, now: i64) -> Markup {
    html! {
        form.search method="get" action="/search" role="search" {
            label for="q" { "Purl (with @ or %40), package name, hash, domain, URL or text" }
            input #q name="q" type="search" value=(q) autofocus;
            button type="submit" { "Search" }
        }
        @match items {
            None => {},
            Some([]) => (html::notice("info", &format!("Nothing held matches `{q}`."))),
            Some(items) => {
                p role="status" { (items.len()) " held item(s) match." }
                div.scroll {
                    table.feed #results {
                        (table_head())
                        tbody {
                            @for i in items { (row(i, now)) }
                        }
                    }
                }
            },
        }
    }
}

const FORMATS: [(&str, &str); 6] = [
    ("package-lock.json", "npm package-lock.json"),
    ("Cargo.lock", "Cargo.lock"),
    ("poetry.lock", "poetry.lock"),
    ("requirements.txt", "requirements.txt"),
    ("go.sum", "go.sum"),
    ("npm-shrinkwrap.json", "npm-shrinkwrap.json"),
];

fn exposure_form_html(csrf: &str, file_name: &str, contents: &str) -> Markup {
    html! {
        p {
            "Upload or paste a lockfile; every dependency is matched against the package, \
    artifact and vulnerability indicators held here (the same check as "
            code { "member-agent check" }
            "). Nothing leaves this machine."
        }
        form.stack #exposure-form method="post" action="/exposure" {
            (html::csrf_input(csrf))
            label for="lockfile-file" { "Lockfile to upload" }
            input #lockfile-file type="file" data-fills="lockfile" data-names="file_name";
            label for="file_name" { "Format" }
            select #file_name name="file_name" { (html::options(&FORMATS, file_name)) }
            label for="lockfile" { "Or paste it" }
            textarea #lockfile name="contents" rows="12" spellcheck="false" { (contents) }
            div.buttons {
                button #check type="submit" { "Check exposure" }
                " "
                button #export-csv type="submit" formaction="/exposure/export/csv" { "Export as CSV" }
                " "
                button #export-ticket type="submit" formaction="/exposure/export/ticket" { "Download ticket text" }
            }
        }
    }
}

/// The exposure page: the watched applications and their exposures, the
/// form (keeping what was sent), then `result`.
async fn exposure_form_page(c: &Console, auth: &Authed, result: Markup, form: &Form) -> Response {
    let watch = super::exposure::gather(c).await;
    let body = html! {
        (super::exposure::watch_html(&auth.csrf, &watch))
        h2 { "Check a lockfile" }
        (exposure_form_html(&auth.csrf, form.get("file_name"), form.get("contents")))
        (result)
    };
    html_response(
        StatusCode::OK,
        html::page(
            "Exposure",
            "/exposure",
            c.agent().org_id(),
            &auth.csrf,
            body,
        ),
    )
}

/// The dependencies of a checked lockfile that match held indicators,
/// grouped by dependency, with the safe version and what to do.
fn matches_html(name: &str, findings: &[Finding]) -> Markup {
    if findings.is_empty() {
        return html::notice(
            "ok",
            &format!("No dependency in this {name} matches a held indicator."),
        );
    }
    html! {
        p.notice.notice-error role="alert" #exposure-result {
            (findings.len()) " dependency match(es) with held indicators."
        }
        (super::exposure::findings_html(findings, "matches", html! {}, &|_| html! {}))
    }
}

pub async fn exposure_form(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
) -> Response {
    exposure_form_page(&c, &auth, html! {}, &Form::default()).await
}

pub async fn exposure(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&String::from_utf8_lossy(&body));
    if let Some(r) = auth.check(&form) {
        return r;
    }
    let name = form.get("file_name").to_owned();
    let contents = form
        .0
        .iter()
        .find(|(k, _)| k == "contents")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if !FORMATS.iter().any(|(f, _)| *f == name) {
        return exposure_form_page(
            &c,
            &auth,
            html::notice("error", "pick the lockfile's format"),
            &form,
        )
        .await;
    }
    let (n, text) = (name.clone(), contents.clone());
    let result = c
        .blocking(move |a| {
            let report = crate::check::check_contents(a, &n, &text)?;
            let store = a.store.lock().expect("store");
            let facts = super::exposure::facts(
                &store,
                report.matches.iter().map(|m| m.indicator_id.clone()),
            )?;
            Ok(super::exposure::from_matches(
                &report.application,
                &report.matches,
                &facts,
            ))
        })
        .await;
    let out = match result {
        Ok(findings) => matches_html(&name, &findings),
        // The form again (the pasted lockfile is kept), with the text the
        // one mapping allows.
        Err(e) => html::notice("error", &super::error::classify("Not checked", &e).message),
    };
    exposure_form_page(&c, &auth, out, &form).await
}

#[cfg(test)]
mod tests {
    use super::super::html::hostile;
    use super::*;

    fn hostile_item() -> ItemSummary {
        let h = hostile::all();
        ItemSummary {
            sequence: 4,
            id: h.clone(),
            revision: 1,
            source: h.clone(),
            tlp: h.clone(),
            kind: h.clone(),
            value: h.clone(),
            title: h.clone(),
            severity: h.clone(),
            created: h.clone(),
            status: h.clone(),
        }
    }

    #[test]
    fn search_and_exposure_show_hostile_text_as_text() {
        let h = hostile::all();
        let page = search_body(&h, Some(&[hostile_item()]), 0).into_string();
        hostile::assert_shown_inert(&page);
        assert!(page.contains("1 held item(s) match."));
        hostile::assert_shown_inert(&search_body(&h, Some(&[]), 0).into_string());
        let empty = search_body("", None, 0).into_string();
        hostile::assert_inert(&empty);
        assert!(!empty.contains("<table"));
        hostile::assert_shown_inert(&exposure_form_html(&h, &h, &h).into_string());
        hostile::assert_shown_inert(&paste_form(&h, &h).into_string());
        let m = crate::check::Match {
            dependency: h.clone(),
            version: h.clone(),
            indicator_id: h.clone(),
            indicator_value: h.clone(),
            title: h.clone(),
            tlp: h.clone(),
            severity: h.clone(),
            source: h.clone(),
            certain: false,
            why: h.clone(),
            purl: None,
            path: Some(vec![h.clone()]),
        };
        let findings = super::super::exposure::from_matches(&h, &[m], &Default::default());
        let found = matches_html(&h, &findings).into_string();
        hostile::assert_shown_inert(&found);
        assert!(found.contains("href=\"/item/%3Cscript%3E"), "{found}");
        hostile::assert_shown_inert(&matches_html(&h, &[]).into_string());
    }

    #[test]
    fn pasted_observables_show_as_text_with_publish_links_for_the_unknown() {
        let h = hostile::all();
        let known = vec![
            Known {
                found: Found {
                    kind: FoundKind::Domain,
                    value: h.clone(),
                },
                items: vec![(hostile_item(), h.clone())],
            },
            Known {
                found: Found {
                    kind: FoundKind::Url,
                    value: "https://new.example/a b".into(),
                },
                items: vec![],
            },
            Known {
                found: Found {
                    kind: FoundKind::Ip,
                    value: "203.0.113.9".into(),
                },
                items: vec![],
            },
        ];
        let out = observables_html(&known, true, 0).into_string();
        hostile::assert_shown_inert(&out);
        assert!(
            out.contains("3 observable(s) found: 1 known here, 2 unknown."),
            "{out}"
        );
        assert!(
            out.contains(
                "href=\"/publish?observables=https%3A%2F%2Fnew.example%2Fa%20b%0A203.0.113.9\""
            ),
            "{out}"
        );
        assert!(
            out.contains("href=\"/publish?observables=203.0.113.9\""),
            "{out}"
        );
        assert!(out.contains("Only the first 256 KiB"), "{out}");
    }

    #[test]
    fn what_a_pasted_value_is_looked_up_by() {
        assert_eq!(
            spellings("pkg:npm/@scope/evil@1.0.0"),
            ["pkg:npm/@scope/evil@1.0.0", "pkg:npm/%40scope/evil@1.0.0"]
        );
        assert_eq!(
            spellings("pkg:npm/%40scope/evil@1.0.0"),
            ["pkg:npm/%40scope/evil@1.0.0", "pkg:npm/@scope/evil@1.0.0"]
        );
        assert_eq!(spellings("evil"), ["evil"]);
        assert_eq!(
            with_parents("a.b.evil.example"),
            ["a.b.evil.example", "b.evil.example", "evil.example"]
        );
        assert_eq!(with_parents("evil.example"), ["evil.example"]);
        for (url, host) in [
            (
                "https://User@C2.Evil.Example:8443/x?y#z",
                Some("c2.evil.example"),
            ),
            ("http://[2001:db8::1]:80/", Some("2001:db8::1")),
            ("https:///x", None),
        ] {
            assert_eq!(url_host(url).as_deref(), host, "{url}");
        }
        let url = Found {
            kind: FoundKind::Url,
            value: "https://drop.evil.example/x".into(),
        };
        let (values, key) = candidates(&url);
        let values: Vec<&str> = values.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(
            values,
            [
                "https://drop.evil.example/x",
                "drop.evil.example",
                "evil.example"
            ]
        );
        assert_eq!(key, None);
        let purl = Found {
            kind: FoundKind::Purl,
            value: "pkg:npm/%40scope/Evil@1.0.0".into(),
        };
        assert_eq!(candidates(&purl).1.as_deref(), Some("npm/@scope/evil"));
    }

    #[test]
    fn pasted_text_finds_what_is_held_by_value_domain_and_package() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("agent.db")).unwrap();
        store.in_one_transaction(|s| {
            s.insert_synthetic_package(
                "p1",
                1,
                "pkg:npm/%40scope/evil@1.0.0",
                &["1.0.0"],
                "valid",
                None,
            )
            .unwrap();
        });
        let text = "seen pkg:npm/@scope/evil@2.0.0 talking to hxxps://x.c2[.]evil[.]example/a \
                    and unknown.example";
        let found = isac_core::extract::extract(text).found;
        let known = lookup(&store, &found).unwrap();
        let summary: Vec<(&str, usize)> = known
            .iter()
            .map(|k| (k.found.value.as_str(), k.items.len()))
            .collect();
        assert_eq!(summary[0], ("pkg:npm/@scope/evil@2.0.0", 1));
        assert!(known[0].items[0]
            .1
            .contains("names the package npm/@scope/evil"));
        assert_eq!(summary[2], ("unknown.example", 0));
    }
}
