//! One item: every field of the verified statement, the signer, revisions,
//! retractions, sightings, related items, STIX/CSV copies (the export
//! code), and the "we saw this" button (the `sight` command's code path).

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use isac_core::{Body, Statement};

use super::html::{self, esc, Form};
use super::{error_page, html_response, Authed, Console};
use crate::error::AgentError;
use crate::localstore::ItemSummary;

/// Everything the page shows, read in one blocking call.
struct Detail {
    revisions: Vec<(ItemSummary, String)>,
    statement: Option<Statement>,
    statement_json: String,
    envelope_json: String,
    mentions: Vec<(ItemSummary, Statement)>,
    similar: Vec<ItemSummary>,
    stix: Option<String>,
    osv: Option<String>,
    csv: Option<String>,
    /// Org name of the signing key, from the held key directory.
    signer_org: Option<(String, String)>,
}

fn load(agent: &crate::Agent, id: &str) -> Result<Option<Detail>, AgentError> {
    let store = agent.store.lock().expect("store");
    let Some((_, statement_json, envelope_json)) = store.show(id)? else {
        return Ok(None);
    };
    let revisions = store.revisions(id)?;
    let statement = serde_json::from_str::<Statement>(&statement_json).ok();
    let mentions = store
        .mentioning(id)?
        .into_iter()
        .filter_map(|(i, json)| Some((i, serde_json::from_str::<Statement>(&json).ok()?)))
        .collect();
    let value = revisions
        .first()
        .map(|(i, _)| i.value.clone())
        .unwrap_or_default();
    // The same package in any version, or the same observable.
    let key = match value.strip_prefix("pkg:") {
        Some(_) => value.split('@').next().unwrap_or(&value).to_owned(),
        None => value.clone(),
    };
    let similar = if key.is_empty() {
        vec![]
    } else {
        store
            .search(&key, 20)?
            .into_iter()
            .filter(|i| i.id != id && !matches!(i.kind.as_str(), "sighting" | "retraction"))
            .collect()
    };
    let row = store.export_row(id)?;
    drop(store);
    let (stix, osv, csv) = match &row {
        Some(r) => (
            crate::export::export_one(r, crate::export::Format::Stix),
            crate::export::export_one(r, crate::export::Format::Osv),
            crate::export::export_one(r, crate::export::Format::Csv),
        ),
        None => (None, None, None),
    };
    let signer_org = row.as_ref().and_then(|r| {
        let dir = super::held_directory(agent)?;
        let k = dir.entry(&r.key_id)?;
        Some((k.org_id.clone(), k.org_name.clone()))
    });
    Ok(Some(Detail {
        revisions,
        statement,
        statement_json,
        envelope_json,
        mentions,
        similar,
        stix,
        osv,
        csv,
        signer_org,
    }))
}

/// A JSON value as nested definition lists; every string escaped.
fn json_html(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) if m.is_empty() => out.push_str("<span class=\"muted\">(none)</span>"),
        Value::Object(m) => {
            out.push_str("<dl class=\"fields\">");
            for (k, v) in m {
                let _ = write!(out, "<dt>{}</dt><dd>", esc(k));
                json_html(v, out);
                out.push_str("</dd>");
            }
            out.push_str("</dl>");
        }
        Value::Array(a) if a.is_empty() => out.push_str("<span class=\"muted\">(none)</span>"),
        Value::Array(a) => {
            out.push_str("<ul class=\"values\">");
            for v in a {
                out.push_str("<li>");
                json_html(v, out);
                out.push_str("</li>");
            }
            out.push_str("</ul>");
        }
        Value::String(s) => {
            let _ = write!(out, "<span class=\"value\">{}</span>", esc(s));
        }
        other => {
            let _ = write!(
                out,
                "<span class=\"value\">{}</span>",
                esc(&other.to_string())
            );
        }
    }
}

fn link(i: &ItemSummary) -> String {
    format!(
        "<a href=\"/item/{}\">{}</a> {} <span class=\"muted\">{} · {}</span>",
        html::urlenc(&i.id),
        esc(&i.title),
        html::tlp_label(&i.tlp),
        esc(&i.kind),
        esc(&html::source_name(&i.source)),
    )
}

pub async fn page(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Form::parse(q.as_deref().unwrap_or(""));
    let lookup = id.clone();
    let detail = match c.blocking(move |a| load(a, &lookup)).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return error_page(
                &c,
                &auth,
                StatusCode::NOT_FOUND,
                &format!("{id} is not in the local store"),
            )
        }
        Err(e) => return super::error::fail(&c, &auth, "The item could not be read", &e),
    };
    let now = crate::now();
    let (top, key_id) = detail.revisions[0].clone();
    let mut b = String::new();
    if let Some(sighting) = q.opt("sighted") {
        b.push_str(&html::notice(
            "ok",
            &format!("Sighting reported (id {sighting}). It counts here once the sync daemon receives it."),
        ));
    }
    let _ = write!(
        b,
        "<p class=\"item-head\">{tlp} <span class=\"kind\">{kind}</span> <code class=\"obs\">{value}</code>{status}</p>",
        tlp = html::tlp_label(&top.tlp),
        kind = esc(&top.kind),
        value = esc(&top.value),
        status = if top.status == "valid" {
            String::new()
        } else {
            format!(" <span class=\"badge\">{}</span>", esc(&top.status))
        },
    );
    // Summary.
    let signer = match &detail.signer_org {
        Some((org, name)) if name.is_empty() || name == org => esc(org),
        Some((org, name)) => format!("{} ({})", esc(name), esc(org)),
        None => "<span class=\"muted\">not in the held key directory</span>".to_owned(),
    };
    let sightings: Vec<&(ItemSummary, Statement)> = detail
        .mentions
        .iter()
        .filter(|(_, s)| matches!(&s.body, Body::Sighting(x) if x.indicator.to_string() == id))
        .collect();
    let sighting_count: u64 = sightings
        .iter()
        .map(|(_, s)| match &s.body {
            Body::Sighting(x) => x.count as u64,
            _ => 0,
        })
        .sum();
    let _ = write!(
        b,
        "<dl class=\"summary\">\
<dt>Title</dt><dd id=\"item-title\">{title}</dd>\
<dt>Id</dt><dd><code>{id}</code></dd>\
<dt>Revision</dt><dd>{rev}</dd>\
<dt>Severity</dt><dd>{sev}</dd>\
<dt>Source</dt><dd>{source}</dd>\
<dt>Created</dt><dd><time datetime=\"{created}\">{created}</time> ({age} ago)</dd>\
<dt>Signature</dt><dd class=\"{sigc}\">{sig}: Ed25519 DSSE envelope checked against the hub's signed key directory</dd>\
<dt>Signer key</dt><dd><code>{key}</code></dd>\
<dt>Signer org</dt><dd>{signer}</dd>\
<dt>Sightings</dt><dd id=\"sightings\">{sighting_count}</dd>\
<dt>Received here</dt><dd>#{seq} in this agent's order</dd></dl>",
        title = esc(&top.title),
        id = esc(&top.id),
        rev = top.revision,
        sev = esc(&top.severity),
        source = esc(&html::source_name(&top.source)),
        created = esc(&top.created),
        age = esc(&html::age(&top.created, now)),
        sigc = if top.status.starts_with("key-") { "sig-bad" } else { "sig-ok" },
        sig = esc(html::signature_status(&top.status)),
        key = esc(&key_id),
        seq = top.sequence,
    );
    // "We saw this".
    if top.kind != "sighting" && top.kind != "retraction" {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/item/{idu}/sight\" class=\"inline\">{csrf}\
<label>Count <input type=\"number\" name=\"count\" value=\"1\" min=\"1\" max=\"1000000\" size=\"5\"></label> \
<label><input type=\"checkbox\" name=\"named\" value=\"1\"> name my organisation (anonymous otherwise)</label> \
<button type=\"submit\" id=\"sight\">We saw this</button></form>",
            idu = html::urlenc(&id),
            csrf = html::csrf_input(&auth.csrf),
        );
    }
    // Every field of the signed statement.
    b.push_str("<section aria-labelledby=\"fields-h\"><h2 id=\"fields-h\">Signed statement</h2>");
    match serde_json::from_str::<serde_json::Value>(&detail.statement_json) {
        Ok(v) => json_html(&v, &mut b),
        Err(_) => {
            let _ = write!(b, "<pre>{}</pre>", esc(&detail.statement_json));
        }
    }
    b.push_str("</section>");
    // Revisions and retractions.
    b.push_str(
        "<section aria-labelledby=\"rev-h\"><h2 id=\"rev-h\">Revisions and retractions</h2><ul>",
    );
    for (r, k) in &detail.revisions {
        let _ = write!(
            b,
            "<li>revision {} · {} · #{} here · key <code>{}</code> · {}</li>",
            r.revision,
            esc(&r.created),
            r.sequence,
            esc(&k[..k.len().min(16)]),
            esc(&r.status)
        );
    }
    for (r, s) in &detail.mentions {
        if let Body::Retraction(x) = &s.body {
            if x.target.to_string() == id {
                let _ = write!(
                    b,
                    "<li class=\"retraction\">retracted by {} at {}: {}</li>",
                    esc(&html::source_name(&r.source)),
                    esc(&r.created),
                    esc(if x.reason.is_empty() {
                        "(no reason given)"
                    } else {
                        &x.reason
                    })
                );
            }
        }
    }
    b.push_str("</ul></section>");
    // Sightings.
    let _ = write!(
        b,
        "<section aria-labelledby=\"sight-h\"><h2 id=\"sight-h\">Sightings ({sighting_count})</h2>"
    );
    if sightings.is_empty() {
        b.push_str("<p class=\"muted\">No sightings held.</p>");
    } else {
        b.push_str("<ul>");
        for (r, s) in &sightings {
            if let Body::Sighting(x) = &s.body {
                let _ = write!(
                    b,
                    "<li>{} saw it {} time(s), last {}</li>",
                    esc(&html::source_name(&r.source)),
                    x.count,
                    esc(&x.last_seen)
                );
            }
        }
        b.push_str("</ul>");
    }
    b.push_str("</section>");
    // Related.
    b.push_str("<section aria-labelledby=\"rel-h\"><h2 id=\"rel-h\">Related items</h2><ul>");
    let mut any = false;
    if let Some(s) = &detail.statement {
        let named = match &s.body {
            Body::Indicator(i) => i.related.clone(),
            Body::Bulletin(x) => x.related.clone(),
            Body::Sighting(x) => vec![x.indicator],
            Body::Retraction(x) => vec![x.target],
        };
        for r in named {
            any = true;
            let _ = write!(
                b,
                "<li>names <a href=\"/item/{r}\"><code>{r}</code></a></li>"
            );
        }
    }
    for (r, s) in &detail.mentions {
        if matches!(&s.body, Body::Indicator(_) | Body::Bulletin(_)) {
            any = true;
            let _ = write!(b, "<li>{} (names this item)</li>", link(r));
        }
    }
    for r in &detail.similar {
        any = true;
        let _ = write!(b, "<li>{} (same package or observable)</li>", link(r));
    }
    b.push_str("</ul>");
    if !any {
        b.push_str("<p class=\"muted\">None held.</p>");
    }
    b.push_str("</section>");
    // Copies.
    b.push_str("<section aria-labelledby=\"copy-h\"><h2 id=\"copy-h\">Copy</h2>");
    for (name, label, text) in [
        ("stix", "STIX 2.1", &detail.stix),
        ("osv", "OSV", &detail.osv),
        ("csv", "CSV", &detail.csv),
    ] {
        match text {
            Some(t) => {
                let _ = write!(
                    b,
                    "<details><summary>{label}</summary>\
<p><button type=\"button\" class=\"copy\" data-copy=\"copy-{name}\">Copy as {label}</button> \
<a href=\"/item/{idu}/export/{name}\" download>Download</a></p>\
<pre id=\"copy-{name}\" tabindex=\"0\">{}</pre></details>",
                    esc(t),
                    idu = html::urlenc(&id),
                );
            }
            None => {
                let _ = write!(
                    b,
                    "<p class=\"muted\">No {label} form for this kind of statement.</p>"
                );
            }
        }
    }
    let _ = write!(
        b,
        "<details><summary>DSSE envelope</summary><pre tabindex=\"0\">{}</pre></details></section>",
        esc(&detail.envelope_json)
    );
    let title = if top.title.is_empty() {
        top.kind.clone()
    } else {
        top.title.clone()
    };
    html_response(
        StatusCode::OK,
        html::page(&title, "", c.agent().org_id(), &auth.csrf, &b),
    )
}

pub async fn export(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    Path((id, format)): Path<(String, String)>,
) -> Response {
    let (fmt, ctype, ext) = match format.as_str() {
        "stix" => (crate::export::Format::Stix, "application/json", "json"),
        "csv" => (crate::export::Format::Csv, "text/csv; charset=utf-8", "csv"),
        "osv" => (crate::export::Format::Osv, "application/json", "osv.json"),
        _ => return error_page(&c, &auth, StatusCode::NOT_FOUND, "unknown format"),
    };
    let lookup = id.clone();
    let row = c
        .blocking(move |a| a.store.lock().expect("store").export_row(&lookup))
        .await;
    let text = match row {
        Ok(Some(r)) => crate::export::export_one(&r, fmt),
        Ok(None) => None,
        Err(e) => return super::error::fail(&c, &auth, "The export could not be read", &e),
    };
    let Some(text) = text else {
        return error_page(
            &c,
            &auth,
            StatusCode::NOT_FOUND,
            "nothing to export for this id",
        );
    };
    // The id went through the store lookup, so it is a held statement id.
    let disposition = format!("attachment; filename=\"isac-{}.{ext}\"", html::urlenc(&id));
    (
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response()
}

pub async fn sight(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&String::from_utf8_lossy(&body));
    if let Some(r) = auth.check(&form) {
        return r;
    }
    let count: u32 = match form.get("count") {
        "" => 1,
        n => match n.parse() {
            Ok(n) if n >= 1 => n,
            _ => {
                return error_page(
                    &c,
                    &auth,
                    StatusCode::BAD_REQUEST,
                    "count must be a whole number of at least 1",
                )
            }
        },
    };
    let named = !form.get("named").is_empty();
    match crate::publish::sight(c.agent(), &id, count, named, None).await {
        Ok(p) => Redirect::to(&format!(
            "/item/{}?sighted={}",
            html::urlenc(&id),
            html::urlenc(&p.id)
        ))
        .into_response(),
        Err(e) => super::error::fail(&c, &auth, "Sighting not sent", &e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_fields_are_escaped() {
        let v = serde_json::json!({"title": "<script>x</script>", "<k>": ["'\"", 1, {}]});
        let mut out = String::new();
        super::json_html(&v, &mut out);
        assert!(!out.contains("<script>") && !out.contains("<k>"), "{out}");
        assert!(out.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(out.contains("&#39;&quot;"));
    }
}
