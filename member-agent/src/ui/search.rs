//! Search (the local store's search: purl, package name, hash, domain,
//! text) and the exposure check (the `check` command's lockfile parsers and
//! matching, on an uploaded or pasted lockfile).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};

use super::feed::{row, table_head};
use super::html::{self, Form};
use super::{html_response, Authed, Console};
use crate::check::Match;
use crate::localstore::ItemSummary;

pub async fn page(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Form::parse(q.as_deref().unwrap_or("")).get("q").to_owned();
    let items = if q.is_empty() {
        None
    } else {
        let query = q.clone();
        match c
            .blocking(move |a| a.store.lock().expect("store").search(&query, 200))
            .await
        {
            Ok(items) => Some(items),
            Err(e) => return super::error::fail(&c, &auth, "The search failed", &e),
        }
    };
    html_response(
        StatusCode::OK,
        html::page(
            "Search",
            "/search",
            c.agent().org_id(),
            &auth.csrf,
            search_body(&q, items.as_deref(), crate::now()),
        ),
    )
}

/// The search form with `q`, and what matched it (`None`: nothing asked).
fn search_body(q: &str, items: Option<&[ItemSummary]>, now: i64) -> Markup {
    html! {
        form.search method="get" action="/search" role="search" {
            label for="q" { "Purl, package name, hash, domain or text" }
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
            button #check type="submit" { "Check exposure" }
        }
    }
}

/// The exposure page: the watched applications and their exposures, the
/// form (keeping what was sent), then `result`.
async fn exposure_form_page(c: &Console, auth: &Authed, result: Markup, form: &Form) -> Response {
    let watch = super::exposure::gather(c).await;
    let body = html! {
        (super::exposure::watch_html(&auth.csrf, &watch, crate::now()))
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

/// The dependencies of a checked lockfile that match held indicators.
fn matches_html(name: &str, matches: &[Match]) -> Markup {
    if matches.is_empty() {
        return html::notice(
            "ok",
            &format!("No dependency in this {name} matches a held indicator."),
        );
    }
    html! {
        p.notice.notice-error role="alert" #exposure-result {
            (matches.len()) " dependency match(es) with held indicators."
        }
        div.scroll {
            table.feed #matches {
                thead {
                    tr {
                        @for col in ["Dependency", "Version", "Indicator", "TLP", "Severity", "Title", "Source", "Why"] {
                            th scope="col" { (col) }
                        }
                    }
                }
                tbody {
                    @for m in matches {
                        tr {
                            td { code { (m.dependency) } }
                            td { (m.version) }
                            td { code { (m.indicator_value) } }
                            td { (html::tlp_label(&m.tlp)) }
                            td { (m.severity) }
                            td { a href={ "/item/" (html::urlenc(&m.indicator_id)) } { (m.title) } }
                            td { (html::source_name(&m.source)) }
                            td { (m.why) }
                        }
                    }
                }
            }
        }
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
        .blocking(move |a| crate::check::check_contents(a, &n, &text))
        .await;
    let out = match result {
        Ok(report) => matches_html(&name, &report.matches),
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

    #[test]
    fn search_and_exposure_show_hostile_text_as_text() {
        let h = hostile::all();
        let item = ItemSummary {
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
        };
        let page = search_body(&h, Some(&[item]), 0).into_string();
        hostile::assert_shown_inert(&page);
        assert!(page.contains("1 held item(s) match."));
        hostile::assert_shown_inert(&search_body(&h, Some(&[]), 0).into_string());
        let empty = search_body("", None, 0).into_string();
        hostile::assert_inert(&empty);
        assert!(!empty.contains("<table"));
        hostile::assert_shown_inert(&exposure_form_html(&h, &h, &h).into_string());
        let m = Match {
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
            path: None,
        };
        let found = matches_html(&h, &[m]).into_string();
        hostile::assert_shown_inert(&found);
        assert!(found.contains("href=\"/item/%3Cscript%3E"), "{found}");
        hostile::assert_shown_inert(&matches_html(&h, &[]).into_string());
    }
}
