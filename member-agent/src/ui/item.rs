//! One item: every field of the verified statement, the signer, revisions,
//! retractions, sightings, related items, STIX/CSV copies (the export
//! code), and the "we saw this" button (the `sight` command's code path).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use isac_core::statement::{Retraction, Sighting};
use isac_core::{Body, Statement};
use maud::{html, Markup};

use super::html::{self, Form};
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

/// A JSON value as nested definition lists.
fn json_html(v: &serde_json::Value) -> Markup {
    use serde_json::Value;
    html! {
        @match v {
            Value::Object(m) if m.is_empty() => span.muted { "(none)" },
            Value::Object(m) => dl.fields {
                @for (k, v) in m {
                    dt { (k) }
                    dd { (json_html(v)) }
                }
            },
            Value::Array(a) if a.is_empty() => span.muted { "(none)" },
            Value::Array(a) => ul.values {
                @for v in a { li { (json_html(v)) } }
            },
            Value::String(s) => span.value { (s) },
            other => span.value { (other.to_string()) },
        }
    }
}

fn link(i: &ItemSummary) -> Markup {
    html! {
        a href={ "/item/" (html::urlenc(&i.id)) } { (i.title) }
        " "
        (html::tlp_label(&i.tlp))
        " "
        span.muted { (i.kind) " · " (html::source_name(&i.source)) }
    }
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
    let top = &detail.revisions[0].0;
    let title = if top.title.is_empty() {
        top.kind.clone()
    } else {
        top.title.clone()
    };
    let body = body(
        &id,
        &detail,
        q.opt("sighted").as_deref(),
        &auth.csrf,
        crate::now(),
    );
    html_response(
        StatusCode::OK,
        html::page(&title, "", c.agent().org_id(), &auth.csrf, body),
    )
}

/// The item page's content. `sighted` is the id of a sighting just sent.
fn body(id: &str, detail: &Detail, sighted: Option<&str>, csrf: &str, now: i64) -> Markup {
    let (top, key_id) = &detail.revisions[0];
    let sightings: Vec<(&ItemSummary, &Sighting)> = detail
        .mentions
        .iter()
        .filter_map(|(r, s)| match &s.body {
            Body::Sighting(x) if x.indicator.to_string() == id => Some((r, x)),
            _ => None,
        })
        .collect();
    let sighting_count: u64 = sightings.iter().map(|(_, x)| x.count as u64).sum();
    let retractions: Vec<(&ItemSummary, &Retraction)> = detail
        .mentions
        .iter()
        .filter_map(|(r, s)| match &s.body {
            Body::Retraction(x) if x.target.to_string() == id => Some((r, x)),
            _ => None,
        })
        .collect();
    let named: Vec<uuid::Uuid> = match detail.statement.as_ref().map(|s| &s.body) {
        Some(Body::Indicator(i)) => i.related.clone(),
        Some(Body::Bulletin(x)) => x.related.clone(),
        Some(Body::Sighting(x)) => vec![x.indicator],
        Some(Body::Retraction(x)) => vec![x.target],
        None => vec![],
    };
    let naming: Vec<&ItemSummary> = detail
        .mentions
        .iter()
        .filter(|(_, s)| matches!(&s.body, Body::Indicator(_) | Body::Bulletin(_)))
        .map(|(r, _)| r)
        .collect();
    let any_related = !named.is_empty() || !naming.is_empty() || !detail.similar.is_empty();
    let statement = serde_json::from_str::<serde_json::Value>(&detail.statement_json).ok();
    let idu = html::urlenc(id);
    html! {
        @if let Some(sighting) = sighted {
            (html::notice("ok", &format!(
                "Sighting reported (id {sighting}). It counts here once the sync daemon receives it."
            )))
        }
        p.item-head.expired[top.status == "expired"] {
            (html::tlp_label(&top.tlp))
            " "
            span.kind { (top.kind) }
            " "
            code.obs { (top.value) }
            @if top.status != "valid" {
                " "
                span class={ "badge " (top.status) } { (top.status) }
            }
        }
        dl.summary {
            dt { "Title" } dd #item-title { (top.title) }
            dt { "Id" } dd { code { (top.id) } }
            dt { "Revision" } dd { (top.revision) }
            dt { "Severity" } dd { (top.severity) }
            dt { "Source" } dd { (html::source_name(&top.source)) }
            dt { "Created" }
            dd {
                time datetime=(top.created) { (top.created) }
                " (" (html::age(&top.created, now)) " ago)"
            }
            dt { "Signature" }
            dd class=(if top.status.starts_with("key-") { "sig-bad" } else { "sig-ok" }) {
                (html::signature_status(&top.status))
                ": Ed25519 DSSE envelope checked against the hub's signed key directory"
            }
            dt { "Signer key" } dd { code { (key_id) } }
            dt { "Signer org" }
            dd {
                @match &detail.signer_org {
                    Some((org, name)) if name.is_empty() || name == org => (org),
                    Some((org, name)) => { (name) " (" (org) ")" },
                    None => span.muted { "not in the held key directory" },
                }
            }
            dt { "Sightings" } dd #sightings { (sighting_count) }
            dt { "Received here" } dd { "#" (top.sequence) " in this agent's order" }
        }
        // "We saw this".
        @if top.kind != "sighting" && top.kind != "retraction" {
            form.inline method="post" action={ "/item/" (idu) "/sight" } {
                (html::csrf_input(csrf))
                label {
                    "Count "
                    input type="number" name="count" value="1" min="1" max="1000000" size="5";
                }
                " "
                label {
                    input type="checkbox" name="named" value="1";
                    " name my organisation (anonymous otherwise)"
                }
                " "
                button type="submit" #sight { "We saw this" }
            }
        }
        // Every field of the signed statement.
        section aria-labelledby="fields-h" {
            h2 #fields-h { "Signed statement" }
            @match &statement {
                Some(v) => (json_html(v)),
                None => pre { (detail.statement_json) },
            }
        }
        section aria-labelledby="rev-h" {
            h2 #rev-h { "Revisions and retractions" }
            ul {
                @for (r, k) in &detail.revisions {
                    li {
                        "revision " (r.revision) " · " (r.created) " · #" (r.sequence)
                        " here · key " code { (k.get(..16).unwrap_or(k)) } " · " (r.status)
                    }
                }
                @for (r, x) in &retractions {
                    li.retraction {
                        "retracted by " (html::source_name(&r.source)) " at " (r.created) ": "
                        @if x.reason.is_empty() { "(no reason given)" } @else { (x.reason) }
                    }
                }
            }
        }
        section aria-labelledby="sight-h" {
            h2 #sight-h { "Sightings (" (sighting_count) ")" }
            @if sightings.is_empty() {
                p.muted { "No sightings held." }
            } @else {
                ul {
                    @for (r, x) in &sightings {
                        li {
                            (html::source_name(&r.source)) " saw it " (x.count)
                            " time(s), last " (x.last_seen)
                        }
                    }
                }
            }
        }
        section aria-labelledby="rel-h" {
            h2 #rel-h { "Related items" }
            ul {
                @for r in &named {
                    li { "names " a href={ "/item/" (r) } { code { (r) } } }
                }
                @for r in &naming {
                    li { (link(r)) " (names this item)" }
                }
                @for r in &detail.similar {
                    li { (link(r)) " (same package or observable)" }
                }
            }
            @if !any_related {
                p.muted { "None held." }
            }
        }
        section aria-labelledby="copy-h" {
            h2 #copy-h { "Copy" }
            @for (name, label, text) in [
                ("stix", "STIX 2.1", &detail.stix),
                ("osv", "OSV", &detail.osv),
                ("csv", "CSV", &detail.csv),
            ] {
                @match text {
                    Some(t) => details {
                        summary { (label) }
                        p {
                            button.copy type="button" data-copy={ "copy-" (name) } { "Copy as " (label) }
                            " "
                            a href={ "/item/" (idu) "/export/" (name) } download { "Download" }
                        }
                        pre id={ "copy-" (name) } tabindex="0" { (t) }
                    },
                    None => p.muted { "No " (label) " form for this kind of statement." },
                }
            }
            details {
                summary { "DSSE envelope" }
                pre tabindex="0" { (detail.envelope_json) }
            }
        }
    }
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
    use super::super::html::hostile;
    use super::*;
    use crate::draft::IndicatorDraft;

    const ID: &str = "00000000-0000-4000-8000-000000000001";

    #[test]
    fn json_fields_are_escaped() {
        let v = serde_json::json!({"title": "<script>x</script>", "<k>": ["'\"", 1, {}]});
        let out = json_html(&v).into_string();
        assert!(!out.contains("<script>") && !out.contains("<k>"), "{out}");
        assert!(out.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(out.contains("'&quot;"));
    }

    fn hostile_item(id: &str) -> ItemSummary {
        let h = hostile::all();
        ItemSummary {
            sequence: 9,
            id: id.into(),
            revision: 2,
            source: h.clone(),
            tlp: h.clone(),
            kind: h.clone(),
            value: h.clone(),
            title: h.clone(),
            severity: h.clone(),
            created: h.clone(),
            status: h,
        }
    }

    /// An item whose every field, neighbour and copy is hostile, with a
    /// `javascript:` reference in the signed statement.
    fn hostile_detail() -> Detail {
        let h = hostile::all();
        let indicator = IndicatorDraft {
            kind: Some("network".into()),
            ip: Some("10.0.0.1".into()),
            tlp: Some("green".into()),
            title: Some("t".into()),
            related: Some(vec!["00000000-0000-4000-8000-000000000002".into()]),
            ..Default::default()
        }
        .into_statement("acme", "2026-11-25T12:00:00Z".into())
        .unwrap();
        let target: uuid::Uuid = ID.parse().unwrap();
        let sighting = Statement {
            body: Body::Sighting(Sighting {
                indicator: target,
                count: 3,
                first_seen: h.clone(),
                last_seen: h.clone(),
            }),
            ..indicator.clone()
        };
        let retraction = Statement {
            body: Body::Retraction(Retraction {
                target,
                reason: h.clone(),
            }),
            ..indicator.clone()
        };
        let statement_json = serde_json::json!({
            "title": h,
            "references": ["javascript:alert(document.cookie)", h],
            h.clone(): [h, 1, {}],
        })
        .to_string();
        Detail {
            revisions: vec![(hostile_item(&h), h.clone())],
            statement: Some(indicator.clone()),
            statement_json,
            envelope_json: h.clone(),
            mentions: vec![
                (hostile_item(&h), sighting),
                (hostile_item(&h), retraction),
                (hostile_item(&h), indicator),
            ],
            similar: vec![hostile_item(&h)],
            stix: Some(h.clone()),
            osv: Some(h.clone()),
            csv: Some(h.clone()),
            signer_org: Some((h.clone(), format!("{h}!"))),
        }
    }

    #[test]
    fn an_expired_item_is_greyed_and_says_so() {
        let mut detail = hostile_detail();
        detail.revisions[0].0.status = "expired".into();
        let page = body(ID, &detail, None, "", 0).into_string();
        assert!(page.contains(r#"<p class="item-head expired">"#), "{page}");
        assert!(
            page.contains(r#"<span class="badge expired">expired</span>"#),
            "{page}"
        );
    }

    #[test]
    fn the_item_page_shows_hostile_fields_as_text() {
        let h = hostile::all();
        let mut detail = hostile_detail();
        let page = body(ID, &detail, Some(&h), &h, 0).into_string();
        hostile::assert_shown_inert(&page);
        // The `javascript:` reference is text, never a link.
        assert!(!page.to_ascii_lowercase().contains("href=\"javascript"));
        assert!(page.contains("<span class=\"value\">javascript:alert(document.cookie)</span>"));
        // Every section is there: sightings, retraction, related, copies.
        assert!(page.contains("<dd id=\"sightings\">3</dd>"), "{page}");
        assert!(page.contains("<li class=\"retraction\">retracted by "));
        assert!(page.contains("<a href=\"/item/00000000-0000-4000-8000-000000000002\">"));
        assert_eq!(page.matches(" (same package or observable)").count(), 1);
        assert_eq!(page.matches(" (names this item)").count(), 1);
        for copy in ["copy-stix", "copy-osv", "copy-csv"] {
            assert!(page.contains(&format!("<pre id=\"{copy}\" tabindex=\"0\">")));
        }
        // A statement that is not JSON is shown whole, as text.
        detail.statement_json = h.clone();
        detail.statement = None;
        detail.signer_org = None;
        let page = body(&h, &detail, None, &h, 0).into_string();
        hostile::assert_shown_inert(&page);
        assert!(page.contains(&format!("<pre>{}</pre>", hostile::escaped(&h))));
        // The id in a form target is percent-encoded.
        assert!(page.contains("action=\"/item/%3Cscript%3E"), "{page}");
    }
}
