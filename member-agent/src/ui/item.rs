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
use super::{markdown, report};
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
    /// The audience entries that named us (AMBER and RED items).
    named_as: Vec<String>,
    /// The items the statement names (a bulletin's related indicators),
    /// with their summary when held.
    named_items: Vec<(uuid::Uuid, Option<ItemSummary>)>,
    /// For an item from another hub (issue 20): its verified provenance.
    provenance: Option<isac_core::federation::Provenance>,
}

/// Most named items looked up for one page.
const MAX_NAMED_ITEMS: usize = 100;

fn load(agent: &crate::Agent, id: &str) -> Result<Option<Detail>, AgentError> {
    let store = agent.store.lock().expect("store");
    let Some((_, statement_json, envelope_json)) = store.show(id)? else {
        return Ok(None);
    };
    let revisions = store.revisions(id)?;
    let statement = serde_json::from_str::<Statement>(&statement_json).ok();
    let named_as = store.named_as(id)?;
    let mut named_items = Vec::new();
    for r in statement
        .as_ref()
        .map(named_by)
        .unwrap_or_default()
        .into_iter()
        .take(MAX_NAMED_ITEMS)
    {
        let held = store.show(&r.to_string())?.map(|(i, _, _)| i);
        named_items.push((r, held));
    }
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
    let provenance = match revisions.first() {
        Some((top, _)) => store
            .provenance(id, top.revision)?
            .and_then(|json| isac_core::federation::Provenance::decode(json.as_bytes()).ok()),
        None => None,
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
        let dir = match &provenance {
            // Its origin hub's directory, which it was verified against.
            Some(p) => agent
                .origins
                .lock()
                .expect("origins lock")
                .get(&p.origin_hub)
                .cloned()?,
            None => super::held_directory(agent)?,
        };
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
        named_as,
        named_items,
        provenance,
    }))
}

/// The ids a statement names: related items, the sighted or retracted one.
fn named_by(s: &Statement) -> Vec<uuid::Uuid> {
    match &s.body {
        Body::Indicator(i) => i.related.clone(),
        Body::Bulletin(x) => x.related.clone(),
        Body::Sighting(x) => vec![x.indicator],
        Body::Retraction(x) => vec![x.target],
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
        c.agent().org_id(),
    );
    html_response(
        StatusCode::OK,
        html::page(&title, "", c.agent().org_id(), &auth.csrf, body),
    )
}

/// The item page's content. `sighted` is the id of a sighting just sent;
/// `own` this member's org id.
fn body(
    id: &str,
    detail: &Detail,
    sighted: Option<&str>,
    csrf: &str,
    now: i64,
    own: &str,
) -> Markup {
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
    let retracted = top.status == "retracted" || !retractions.is_empty();
    let naming: Vec<&ItemSummary> = detail
        .mentions
        .iter()
        .filter(|(_, s)| matches!(&s.body, Body::Indicator(_) | Body::Bulletin(_)))
        .map(|(r, _)| r)
        .collect();
    let bulletin = match detail.statement.as_ref().map(|s| &s.body) {
        Some(Body::Bulletin(b)) => Some(b),
        _ => None,
    };
    let any_related =
        !detail.named_items.is_empty() || !naming.is_empty() || !detail.similar.is_empty();
    let raw = serde_json::from_str::<serde_json::Value>(&detail.statement_json).ok();
    let audience = match &detail.statement {
        Some(s) if s.source == own || s.on_behalf_of.as_deref() == Some(own) => {
            report::Audience::Own
        }
        _ => report::Audience::NamedUs(&detail.named_as),
    };
    let idu = html::urlenc(id);
    html! {
        @if let Some(sighting) = sighted {
            (html::notice("ok", &format!(
                "Sighting reported (id {sighting}). It counts here once the sync daemon receives it."
            )))
        }
        // Retracted: the first thing on the page, across its whole width.
        @if retracted {
            div.retracted-banner #retracted role="alert" {
                strong { "Retracted. " }
                @if retractions.is_empty() {
                    "This agent marked it retracted; the retraction itself is not held here."
                }
                @for (r, x) in &retractions {
                    span.retraction-line {
                        "Retracted by " strong { (html::source_name(&r.source)) }
                        " on " time datetime=(r.created) { (r.created) }
                        ": "
                        @if x.reason.is_empty() { "no reason given." } @else { (x.reason) }
                    }
                    " "
                }
                " Do not act on it; sightings are no longer taken."
            }
        }
        p.item-head.expired[top.status == "expired"] {
            (html::tlp_label(&top.tlp))
            " "
            span.kind { (top.kind) }
            @if top.status != "valid" {
                " "
                span class={ "badge " (top.status) } { (top.status) }
            }
        }
        // A bulletin's text first, prominent, from Markdown (safely).
        @if let Some(b) = bulletin {
            section.bulletin-body #bulletin-body aria-label="Bulletin text" {
                (markdown::to_markup(&b.body))
            }
        }
        section aria-labelledby="summary-h" {
            h2 #summary-h { "Summary" }
            @match &detail.statement {
                Some(s) => (report::summary(s, &audience, 0)),
                None => p.muted { "The statement could not be read as a statement; its raw form is below." },
            }
            dl.summary.provenance {
                dt { "Title" } dd #item-title { (top.title) }
                dt { "Source" } dd { (html::source_name(&top.source)) }
                @if let Some(p) = &detail.provenance {
                    dt { "From hub" }
                    dd #item-via { (p.origin_hub) " (" (crate::sinks::via_text(&p.hub_path)) ")" }
                }
                dt { "Signer org" }
                dd {
                    @match &detail.signer_org {
                        Some((org, name)) if name.is_empty() || name == org => (org),
                        Some((org, name)) => { (name) " (" (org) ")" },
                        None => span.muted { "not in the held key directory" },
                    }
                }
                dt { "Signature" }
                dd class=(if top.status.starts_with("key-") { "sig-bad" } else { "sig-ok" }) {
                    (html::signature_status(&top.status))
                    @match &detail.provenance {
                        Some(p) => {
                            ": Ed25519 DSSE envelope checked against origin hub "
                            (p.origin_hub) "'s signed key directory"
                        }
                        None => ": Ed25519 DSSE envelope checked against the hub's signed key directory",
                    }
                }
                dt { "Signer key" } dd { code { (key_id) } }
                dt { "Created" }
                dd {
                    time datetime=(top.created) { (top.created) }
                    " (" (html::age(&top.created, now)) " ago)"
                }
                dt { "Revision" } dd { (top.revision) }
                dt { "Id" } dd { code { (top.id) } }
                @if bulletin.is_none() {
                    dt { "Sightings" } dd #sightings { (sighting_count) }
                }
                dt { "Received here" } dd { "#" (top.sequence) " in this agent's order" }
            }
        }
        // "We saw this": indicators only, and not once retracted.
        @if top.kind != "sighting" && top.kind != "retraction" && bulletin.is_none() && !retracted {
            form.inline #sight-form method="post" action={ "/item/" (idu) "/sight" } {
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
        section aria-labelledby="rel-h" {
            h2 #rel-h {
                @if bulletin.is_some() { "Related indicators" } @else { "Related items" }
            }
            ul #related {
                @for (r, held) in &detail.named_items {
                    li {
                        @match held {
                            Some(i) => { (link(i)) " " code.muted { (i.value) } },
                            None => { a href={ "/item/" (r) } { code { (r) } } " " span.muted { "(not held here)" } },
                        }
                    }
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
        @if bulletin.is_none() {
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
        }
        // The signed statement's raw form, collapsed.
        section aria-labelledby="fields-h" {
            h2 #fields-h { "Signed statement" }
            details #raw-statement {
                summary { "Every signed field, as received" }
                @match &raw {
                    Some(v) => (report::json_html(v)),
                    None => pre { (detail.statement_json) },
                }
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
        let out = report::json_html(&v).into_string();
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
            provenance: None,
            named_as: vec![h.clone(), "person:bob-bank/jdoe".into()],
            named_items: vec![
                (
                    "00000000-0000-4000-8000-000000000002".parse().unwrap(),
                    None,
                ),
                (target, Some(hostile_item(&h))),
            ],
        }
    }

    #[test]
    fn an_expired_item_is_greyed_and_says_so() {
        let mut detail = hostile_detail();
        detail.revisions[0].0.status = "expired".into();
        let page = body(ID, &detail, None, "", 0, "").into_string();
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
        let page = body(ID, &detail, Some(&h), &h, 0, &h).into_string();
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
        let page = body(&h, &detail, None, &h, 0, &h).into_string();
        hostile::assert_shown_inert(&page);
        assert!(page.contains(&format!("<pre>{}</pre>", hostile::escaped(&h))));
        // The id in a form target is percent-encoded.
        assert!(page.contains("action=\"/item/%3Cscript%3E"), "{page}");
    }

    #[test]
    fn an_item_from_another_hub_says_where_it_came_from() {
        let h = hostile::all();
        let mut detail = hostile_detail();
        detail.provenance = Some(isac_core::federation::Provenance {
            origin_hub: "hub-a".into(),
            origin_log_index: None,
            hub_path: vec!["hub-a".into(), "hub-b".into()],
        });
        let page = body(ID, &detail, Some(&h), &h, 0, &h).into_string();
        assert!(
            page.contains("<dd id=\"item-via\">hub-a (via hub-a → hub-b)</dd>"),
            "{page}"
        );
        assert!(page.contains("checked against origin hub hub-a"), "{page}");
    }

    #[test]
    fn a_retracted_item_opens_with_who_when_why_and_takes_no_sightings() {
        let detail = hostile_detail();
        let page = body(ID, &detail, None, "csrf", 0, "acme-bank").into_string();
        let banner = page.find("<div class=\"retracted-banner\" id=\"retracted\" role=\"alert\">");
        let head = page.find("<p class=\"item-head\">");
        assert!(banner.is_some() && banner < head, "{page}");
        assert!(page.contains("Retracted by <strong>"), "{page}");
        assert!(!page.contains("id=\"sight\""), "{page}");
        assert!(!page.contains("/sight\""), "{page}");
        // Not retracted: the button is there, no banner.
        let mut fine = hostile_detail();
        fine.mentions
            .retain(|(_, s)| !matches!(s.body, Body::Retraction(_)));
        fine.revisions[0].0.status = "valid".into();
        let page = body(ID, &fine, None, "csrf", 0, "acme-bank").into_string();
        assert!(!page.contains("retracted-banner"), "{page}");
        assert!(page.contains("<button id=\"sight\" type=\"submit\">We saw this</button>"));
    }

    #[test]
    fn the_summary_comes_first_and_the_raw_statement_is_collapsed() {
        let mut detail = hostile_detail();
        detail.statement_json = serde_json::to_string(detail.statement.as_ref().unwrap()).unwrap();
        let page = body(ID, &detail, None, "csrf", 0, "acme-bank").into_string();
        let summary = page.find("id=\"summary-h\"").unwrap();
        let raw = page.find("<details id=\"raw-statement\">").unwrap();
        assert!(summary < raw, "{page}");
        assert!(
            page.contains("<code id=\"observable\">10.0.0.1</code>"),
            "{page}"
        );
        assert!(!page.contains("null"), "{page}");
        // GREEN: every member; no "shared with you".
        assert!(!page.contains("shared with you"), "{page}");
    }

    #[test]
    fn an_amber_item_says_who_it_was_shared_with() {
        let mut detail = hostile_detail();
        let mut s = detail.statement.clone().unwrap();
        s.tlp = isac_core::Tlp::Amber;
        s.audience = vec!["0".repeat(64)];
        detail.statement = Some(s);
        detail.named_as = vec!["person:bob-bank/jdoe".into()];
        let page = body(ID, &detail, None, "csrf", 0, "bob-bank").into_string();
        assert!(page.contains("shared with you (bob-bank/jdoe)"), "{page}");
        // At its source: the list stays with the source.
        let page = body(ID, &detail, None, "csrf", 0, "acme").into_string();
        assert!(page.contains("1 named recipient(s)"), "{page}");
    }

    #[test]
    fn a_bulletin_shows_its_markdown_first_with_a_script_as_text() {
        let mut detail = hostile_detail();
        let bulletin = crate::draft::BulletinDraft {
            tlp: Some("green".into()),
            title: "INC-1".into(),
            body: "# Rotate\n\n<script>window.__xss=1</script>\n\n**now**".into(),
            related: vec![ID.into()],
            ..Default::default()
        }
        .into_prepared("acme", "2026-11-25T12:00:00Z".into())
        .unwrap()
        .statement;
        detail.statement = Some(bulletin);
        detail.revisions[0].0.status = "valid".into();
        detail.mentions.clear();
        let page = body(ID, &detail, None, "csrf", 0, "bob-bank").into_string();
        hostile::assert_inert(&page);
        let text = page.find("id=\"bulletin-body\"").unwrap();
        assert!(text < page.find("id=\"summary-h\"").unwrap());
        assert!(
            page.contains("&lt;script&gt;window.__xss=1&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("<strong>now</strong>"), "{page}");
        assert!(!page.contains("We saw this"), "{page}");
        assert!(page.contains("Related indicators"), "{page}");
    }
}
