//! Search (the local store's search: purl, package name, hash, domain,
//! text) and the exposure check (the `check` command's lockfile parsers and
//! matching, on an uploaded or pasted lockfile).

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;

use super::feed::{row, TABLE_HEAD};
use super::html::{self, esc, Form};
use super::{html_response, Authed, Console};

pub async fn page(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Form::parse(q.as_deref().unwrap_or("")).get("q").to_owned();
    let mut b = format!(
        "<form method=\"get\" action=\"/search\" role=\"search\" class=\"search\">\
<label for=\"q\">Purl, package name, hash, domain or text</label>\
<input id=\"q\" name=\"q\" type=\"search\" value=\"{}\" autofocus>\
<button type=\"submit\">Search</button></form>",
        esc(&q)
    );
    if !q.is_empty() {
        let query = q.clone();
        match c
            .blocking(move |a| a.store.lock().expect("store").search(&query, 200))
            .await
        {
            Ok(items) if items.is_empty() => b.push_str(&html::notice(
                "info",
                &format!("Nothing held matches `{q}`."),
            )),
            Ok(items) => {
                let now = crate::now();
                let _ = write!(
                    b,
                    "<p role=\"status\">{} held item(s) match.</p><div class=\"scroll\"><table class=\"feed\" id=\"results\">{TABLE_HEAD}<tbody>",
                    items.len()
                );
                for i in &items {
                    b.push_str(&row(i, now));
                }
                b.push_str("</tbody></table></div>");
            }
            Err(e) => return super::error::fail(&c, &auth, "The search failed", &e),
        }
    }
    html_response(
        StatusCode::OK,
        html::page("Search", "/search", c.agent().org_id(), &auth.csrf, &b),
    )
}

const FORMATS: [(&str, &str); 6] = [
    ("package-lock.json", "npm package-lock.json"),
    ("Cargo.lock", "Cargo.lock"),
    ("poetry.lock", "poetry.lock"),
    ("requirements.txt", "requirements.txt"),
    ("go.sum", "go.sum"),
    ("npm-shrinkwrap.json", "npm-shrinkwrap.json"),
];

fn exposure_form_html(csrf: &str, file_name: &str, contents: &str) -> String {
    format!(
        "<p>Upload or paste a lockfile; every dependency is matched against the package, \
artifact and vulnerability indicators held here (the same check as <code>member-agent check</code>). \
Nothing leaves this machine.</p>\
<form method=\"post\" action=\"/exposure\" id=\"exposure-form\" class=\"stack\">{csrf}\
<label for=\"lockfile-file\">Lockfile to upload</label>\
<input id=\"lockfile-file\" type=\"file\" data-fills=\"lockfile\" data-names=\"file_name\">\
<label for=\"file_name\">Format</label><select id=\"file_name\" name=\"file_name\">{formats}</select>\
<label for=\"lockfile\">Or paste it</label>\
<textarea id=\"lockfile\" name=\"contents\" rows=\"12\" spellcheck=\"false\">{contents}</textarea>\
<button type=\"submit\" id=\"check\">Check exposure</button></form>",
        csrf = html::csrf_input(csrf),
        formats = html::options(&FORMATS, file_name),
        contents = esc(contents),
    )
}

async fn exposure_form_page(c: &Console, auth: &Authed, extra: &str, form: &Form) -> Response {
    let body = format!(
        "{}{extra}",
        exposure_form_html(&auth.csrf, form.get("file_name"), form.get("contents"))
    );
    html_response(
        StatusCode::OK,
        html::page(
            "Exposure",
            "/exposure",
            c.agent().org_id(),
            &auth.csrf,
            &body,
        ),
    )
}

pub async fn exposure_form(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
) -> Response {
    exposure_form_page(&c, &auth, "", &Form::default()).await
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
            &html::notice("error", "pick the lockfile's format"),
            &form,
        )
        .await;
    }
    let (n, text) = (name.clone(), contents.clone());
    let result = c
        .blocking(move |a| crate::check::check_contents(a, &n, &text))
        .await;
    let mut out = String::new();
    match result {
        Ok(matches) if matches.is_empty() => out.push_str(&html::notice(
            "ok",
            &format!("No dependency in this {name} matches a held indicator."),
        )),
        Ok(matches) => {
            let _ = write!(
                out,
                "<p class=\"notice notice-error\" role=\"alert\" id=\"exposure-result\">{} dependency match(es) with held indicators.</p>\
<div class=\"scroll\"><table class=\"feed\" id=\"matches\"><thead><tr><th scope=\"col\">Dependency</th>\
<th scope=\"col\">Version</th><th scope=\"col\">Indicator</th><th scope=\"col\">TLP</th>\
<th scope=\"col\">Severity</th><th scope=\"col\">Title</th><th scope=\"col\">Source</th></tr></thead><tbody>",
                matches.len()
            );
            for m in &matches {
                let _ = write!(
                    out,
                    "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>\
<td><a href=\"/item/{}\">{}</a></td><td>{}</td></tr>",
                    esc(&m.dependency),
                    esc(&m.version),
                    esc(&m.indicator_value),
                    html::tlp_label(&m.tlp),
                    esc(&m.severity),
                    html::urlenc(&m.indicator_id),
                    esc(&m.title),
                    esc(&html::source_name(&m.source)),
                );
            }
            out.push_str("</tbody></table></div>");
        }
        // The form again (the pasted lockfile is kept), with the text the
        // one mapping allows.
        Err(e) => out.push_str(&html::notice(
            "error",
            &super::error::classify("Not checked", &e).message,
        )),
    }
    exposure_form_page(&c, &auth, &out, &form).await
}
