//! The feed: newest first, bulletins pinned at the top, filters as in
//! subscriptions, and live rows over server-sent events. The event stream
//! polls the local store for rows newer than the last one sent, because the
//! sync daemon may be another process writing the same SQLite file.

use std::convert::Infallible;
use std::fmt::Write as _;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::html::{self, esc, Form};
use super::{html_response, Authed, Console};
use crate::localstore::ItemSummary;

/// Rows the feed page shows at most.
const FEED_ROWS: u32 = 300;

/// The subscription filters, from the query string.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub kind: String,
    pub ecosystem: String,
    pub min_severity: String,
    pub tlp: String,
}

pub fn severity_rank(s: &str) -> u8 {
    match s {
        "info" => 0,
        "low" => 1,
        "medium" => 2,
        "high" => 3,
        "critical" => 4,
        _ => 0,
    }
}

/// The purl ecosystem an item's observable names (`npm` for `pkg:npm/...`).
fn ecosystem(value: &str) -> Option<&str> {
    value.strip_prefix("pkg:")?.split('/').next()
}

impl Filter {
    pub fn from_form(f: &Form) -> Filter {
        Filter {
            kind: f.get("kind").to_owned(),
            ecosystem: f.get("ecosystem").to_ascii_lowercase(),
            min_severity: f.get("min_severity").to_owned(),
            tlp: f.get("tlp").to_owned(),
        }
    }

    fn to_form(&self) -> Form {
        Form(vec![
            ("kind".into(), self.kind.clone()),
            ("ecosystem".into(), self.ecosystem.clone()),
            ("min_severity".into(), self.min_severity.clone()),
            ("tlp".into(), self.tlp.clone()),
        ])
    }

    pub fn matches(&self, i: &ItemSummary) -> bool {
        // Sightings and retractions show on their item's page unless asked for.
        let kind_ok = if self.kind.is_empty() {
            !matches!(i.kind.as_str(), "sighting" | "retraction")
        } else {
            i.kind == self.kind
        };
        kind_ok
            && (self.ecosystem.is_empty() || ecosystem(&i.value) == Some(self.ecosystem.as_str()))
            && (self.min_severity.is_empty()
                || severity_rank(&i.severity) >= severity_rank(&self.min_severity))
            && (self.tlp.is_empty() || i.tlp == self.tlp)
    }
}

/// One feed row (`<tr>`), every field escaped; also what the live stream sends.
pub fn row(i: &ItemSummary, now: i64) -> String {
    let status = match i.status.as_str() {
        "valid" | "key-revoked" | "key-retired" => String::new(),
        s => format!(" <span class=\"badge\">{}</span>", esc(s)),
    };
    let sig = html::signature_status(&i.status);
    let sig_class = if sig == "verified" {
        "sig-ok"
    } else {
        "sig-bad"
    };
    format!(
        "<tr data-seq=\"{seq}\" class=\"sev-{sevc}\"><td>{tlp}</td><td>{kind}</td>\
<td class=\"obs\"><code>{value}</code></td>\
<td><a href=\"/item/{idu}\">{title}</a>{status}</td><td>{sev}</td><td>{source}</td>\
<td class=\"{sig_class}\">{sig}</td><td><time datetime=\"{created}\">{age}</time></td></tr>",
        seq = i.sequence,
        sevc = esc(&i.severity),
        tlp = html::tlp_label(&i.tlp),
        kind = esc(&i.kind),
        value = esc(&i.value),
        idu = html::urlenc(&i.id),
        title = esc(&i.title),
        sev = esc(&i.severity),
        source = esc(&html::source_name(&i.source)),
        created = esc(&i.created),
        age = esc(&html::age(&i.created, now)),
    )
}

/// One pinned bulletin (`<li>`).
pub fn bulletin(i: &ItemSummary, now: i64) -> String {
    format!(
        "<li data-seq=\"{}\">{} <a href=\"/item/{}\">{}</a> <span class=\"muted\">{} · {} · {}</span></li>",
        i.sequence,
        html::tlp_label(&i.tlp),
        html::urlenc(&i.id),
        esc(&i.title),
        esc(&i.severity),
        esc(&html::source_name(&i.source)),
        esc(&html::age(&i.created, now)),
    )
}

pub const TABLE_HEAD: &str = "<thead><tr><th scope=\"col\">TLP</th><th scope=\"col\">Kind</th>\
<th scope=\"col\">Observable</th><th scope=\"col\">Title</th><th scope=\"col\">Severity</th>\
<th scope=\"col\">Source</th><th scope=\"col\">Signature</th><th scope=\"col\">Age</th></tr></thead>";

const KINDS: [(&str, &str); 10] = [
    ("", "any (not sightings or retractions)"),
    ("package", "package"),
    ("artifact", "artifact"),
    ("repository", "repository"),
    ("account", "account"),
    ("network", "network"),
    ("vulnerability", "vulnerability"),
    ("bulletin", "bulletin"),
    ("sighting", "sighting"),
    ("retraction", "retraction"),
];

pub const SEVERITIES: [(&str, &str); 6] = [
    ("", "any"),
    ("info", "info"),
    ("low", "low"),
    ("medium", "medium"),
    ("high", "high"),
    ("critical", "critical"),
];

pub const TLPS: [(&str, &str); 6] = [
    ("", "any"),
    ("clear", "TLP:CLEAR"),
    ("green", "TLP:GREEN"),
    ("amber", "TLP:AMBER"),
    ("amber+strict", "TLP:AMBER+STRICT"),
    ("red", "TLP:RED"),
];

pub async fn page(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    RawQuery(q): RawQuery,
) -> Response {
    let filter = Filter::from_form(&Form::parse(q.as_deref().unwrap_or("")));
    let items = match c
        .blocking(|a| a.store.lock().expect("store").list(FEED_ROWS))
        .await
    {
        Ok(i) => i,
        Err(e) => return super::error::fail(&c, &auth, "The feed could not be read", &e),
    };
    let now = crate::now();
    let last = items.first().map(|i| i.sequence).unwrap_or(0);
    let mut body = String::new();
    // Filters.
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/\" class=\"filters\" aria-label=\"Filters\">\
<label>Kind <select name=\"kind\">{kinds}</select></label>\
<label>Ecosystem <input name=\"ecosystem\" value=\"{eco}\" placeholder=\"npm, pypi, cargo…\" size=\"10\"></label>\
<label>Min severity <select name=\"min_severity\">{sev}</select></label>\
<label>TLP <select name=\"tlp\">{tlp}</select></label>\
<button type=\"submit\">Apply</button> <a href=\"/\">Clear</a></form>",
        kinds = html::options(&KINDS, &filter.kind),
        eco = esc(&filter.ecosystem),
        sev = html::options(&SEVERITIES, &filter.min_severity),
        tlp = html::options(&TLPS, &filter.tlp),
    );
    // Bulletins pinned at the top (when the filter lets bulletins through).
    let bulletin_filter = Filter {
        kind: "bulletin".into(),
        ..filter.clone()
    };
    let show_bulletins = filter.kind.is_empty() || filter.kind == "bulletin";
    let bulletins: Vec<&ItemSummary> = items
        .iter()
        .filter(|i| show_bulletins && bulletin_filter.matches(i) && i.status == "valid")
        .take(5)
        .collect();
    body.push_str("<section aria-labelledby=\"pinned-h\" class=\"pinned\"><h2 id=\"pinned-h\">Bulletins</h2><ul id=\"bulletins\">");
    for b in &bulletins {
        body.push_str(&bulletin(b, now));
    }
    body.push_str("</ul>");
    if bulletins.is_empty() {
        body.push_str("<p class=\"muted\" id=\"no-bulletins\">No bulletins.</p>");
    }
    body.push_str("</section>");
    // The feed itself.
    let events = format!("/events?{}", {
        let mut f = filter.to_form();
        f.0.push(("after".into(), last.to_string()));
        f.to_query()
    });
    let _ = write!(
        body,
        "<section aria-labelledby=\"feed-h\"><h2 id=\"feed-h\">Items <span class=\"live\" id=\"live\" aria-live=\"polite\">live</span></h2>\
<div class=\"scroll\"><table class=\"feed\" id=\"feed\" data-events=\"{}\">{TABLE_HEAD}<tbody id=\"feed-rows\">",
        esc(&events)
    );
    let mut shown = 0;
    for i in items
        .iter()
        .filter(|i| filter.matches(i) && i.kind != "bulletin")
    {
        body.push_str(&row(i, now));
        shown += 1;
    }
    body.push_str("</tbody></table></div>");
    if shown == 0 {
        body.push_str("<p class=\"muted\" id=\"empty\">Nothing held matches yet; new items appear here as they arrive.</p>");
    }
    body.push_str("</section>");
    html_response(
        StatusCode::OK,
        html::page("Feed", "/", c.agent().org_id(), &auth.csrf, &body),
    )
}

/// Server-sent events: `item` and `bulletin` events carrying a rendered
/// row, for every held row past `after` (or `Last-Event-ID`) that passes
/// the filters.
pub async fn events(
    State(c): State<Console>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let form = Form::parse(q.as_deref().unwrap_or(""));
    let filter = Filter::from_form(&form);
    let mut after: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or_else(|| form.get("after").parse().ok())
        .unwrap_or(0);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(async move {
        loop {
            let rows = c
                .blocking(move |a| a.store.lock().expect("store").items_after(after, 200))
                .await;
            match rows {
                Ok(rows) => {
                    let now = crate::now();
                    for i in rows {
                        after = after.max(i.sequence);
                        if !filter.matches(&i) {
                            continue;
                        }
                        let (name, data) = if i.kind == "bulletin" {
                            ("bulletin", bulletin(&i, now))
                        } else {
                            ("item", row(&i, now))
                        };
                        let ev = Event::default()
                            .event(name)
                            .id(i.sequence.to_string())
                            .data(data);
                        if tx.send(Ok(ev)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "console feed poll failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(super::POLL_INTERVAL) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: &str, value: &str, severity: &str, tlp: &str) -> ItemSummary {
        ItemSummary {
            sequence: 1,
            id: "00000000-0000-4000-8000-000000000000".into(),
            revision: 1,
            source: "anonymous".into(),
            tlp: tlp.into(),
            kind: kind.into(),
            value: value.into(),
            title: "<script>alert(1)</script>".into(),
            severity: severity.into(),
            created: "2026-11-25T12:00:00Z".into(),
            status: "valid".into(),
        }
    }

    #[test]
    fn filters_work_like_subscriptions() {
        let pkg = item("package", "pkg:npm/evil@1.0.0", "high", "amber");
        let f = |q: &str| Filter::from_form(&Form::parse(q));
        assert!(f("").matches(&pkg));
        assert!(f("kind=package&ecosystem=NPM&min_severity=high&tlp=amber").matches(&pkg));
        assert!(!f("kind=network").matches(&pkg));
        assert!(!f("ecosystem=pypi").matches(&pkg));
        assert!(!f("min_severity=critical").matches(&pkg));
        assert!(!f("tlp=amber%2Bstrict").matches(&pkg));
        let sighting = item("sighting", "x", "info", "green");
        assert!(!f("").matches(&sighting));
        assert!(f("kind=sighting").matches(&sighting));
    }

    #[test]
    fn rows_escape_every_field() {
        let mut i = item("package", "pkg:npm/\"><b>@1", "high", "red");
        i.created = "<i>".into();
        let r = row(&i, 0);
        assert!(!r.contains("<script>"), "{r}");
        assert!(!r.contains("<b>") && !r.contains("<i>"), "{r}");
        assert!(r.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(r.contains("anonymous member"));
        assert!(r.contains("tlp-red"));
        assert!(!bulletin(&i, 0).contains("<script>"));
    }
}
