//! The feed: newest first, bulletins pinned at the top, filters as in
//! subscriptions, and live rows over server-sent events. The event stream
//! polls the local store for rows newer than the last one sent, because the
//! sync daemon may be another process writing the same SQLite file.

use std::convert::Infallible;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};

use super::html::{self, Form};
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

/// One feed row (`<tr>`); also what the live stream sends.
pub fn row(i: &ItemSummary, now: i64) -> Markup {
    let sig = html::signature_status(&i.status);
    let sig_class = if sig == "verified" {
        "sig-ok"
    } else {
        "sig-bad"
    };
    html! {
        tr data-seq=(i.sequence) class={ "sev-" (i.severity) } {
            td { (html::tlp_label(&i.tlp)) }
            td { (i.kind) }
            td.obs { code { (i.value) } }
            td {
                a href={ "/item/" (html::urlenc(&i.id)) } { (i.title) }
                @match i.status.as_str() {
                    "valid" | "key-revoked" | "key-retired" => {}
                    s => { " " span.badge { (s) } }
                }
            }
            td { (i.severity) }
            td { (html::source_name(&i.source)) }
            td class=(sig_class) { (sig) }
            td { time datetime=(i.created) { (html::age(&i.created, now)) } }
        }
    }
}

/// One pinned bulletin (`<li>`).
pub fn bulletin(i: &ItemSummary, now: i64) -> Markup {
    html! {
        li data-seq=(i.sequence) {
            (html::tlp_label(&i.tlp))
            " "
            a href={ "/item/" (html::urlenc(&i.id)) } { (i.title) }
            " "
            span.muted {
                (i.severity) " · " (html::source_name(&i.source)) " · " (html::age(&i.created, now))
            }
        }
    }
}

/// The column heads of every item table (feed, search results).
pub fn table_head() -> Markup {
    html! {
        thead {
            tr {
                @for col in ["TLP", "Kind", "Observable", "Title", "Severity", "Source", "Signature", "Age"] {
                    th scope="col" { (col) }
                }
            }
        }
    }
}

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
    let alert = c.blocking(|a| a.log_alert()).await.ok().flatten();
    html_response(
        StatusCode::OK,
        html::page(
            "Feed",
            "/",
            c.agent().org_id(),
            &auth.csrf,
            maud::html! {
                (html::log_alert_banner(alert.as_ref()))
                (body(&filter, &items, crate::now()))
            },
        ),
    )
}

/// The feed page's content: filters, pinned bulletins, the live table.
fn body(filter: &Filter, items: &[ItemSummary], now: i64) -> Markup {
    let last = items.first().map(|i| i.sequence).unwrap_or(0);
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
    let rows: Vec<&ItemSummary> = items
        .iter()
        .filter(|i| filter.matches(i) && i.kind != "bulletin")
        .collect();
    let events = format!("/events?{}", {
        let mut f = filter.to_form();
        f.0.push(("after".into(), last.to_string()));
        f.to_query()
    });
    html! {
        form.filters method="get" action="/" aria-label="Filters" {
            label { "Kind " select name="kind" { (html::options(&KINDS, &filter.kind)) } }
            label {
                "Ecosystem "
                input name="ecosystem" value=(filter.ecosystem) placeholder="npm, pypi, cargo…" size="10";
            }
            label {
                "Min severity "
                select name="min_severity" { (html::options(&SEVERITIES, &filter.min_severity)) }
            }
            label { "TLP " select name="tlp" { (html::options(&TLPS, &filter.tlp)) } }
            button type="submit" { "Apply" }
            " "
            a href="/" { "Clear" }
        }
        section.pinned aria-labelledby="pinned-h" {
            h2 #pinned-h { "Bulletins" }
            ul #bulletins {
                @for b in &bulletins { (bulletin(b, now)) }
            }
            @if bulletins.is_empty() {
                p.muted #no-bulletins { "No bulletins." }
            }
        }
        section aria-labelledby="feed-h" {
            h2 #feed-h {
                "Items "
                span.live #live aria-live="polite" { "live" }
            }
            div.scroll {
                table.feed #feed data-events=(events) {
                    (table_head())
                    tbody #feed-rows {
                        @for i in &rows { (row(i, now)) }
                    }
                }
            }
            @if rows.is_empty() {
                p.muted #empty { "Nothing held matches yet; new items appear here as they arrive." }
            }
        }
    }
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
                        let data = data.into_string();
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
        // A comment line every few seconds: the server notices a client
        // that went away only when it next writes, and until then the
        // stream's task keeps polling the store.
        .keep_alive(KeepAlive::new().interval(super::HEARTBEAT))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::super::html::hostile;
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
        let r = row(&i, 0).into_string();
        assert!(!r.contains("<script>"), "{r}");
        assert!(!r.contains("<b>") && !r.contains("<i>"), "{r}");
        assert!(r.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(r.contains("anonymous member"));
        assert!(r.contains("tlp-red"));
        assert!(!bulletin(&i, 0).into_string().contains("<script>"));
    }

    fn hostile_item(kind: &str, sequence: u64) -> ItemSummary {
        let h = hostile::all();
        ItemSummary {
            sequence,
            id: h.clone(),
            revision: 1,
            source: h.clone(),
            tlp: h.clone(),
            kind: kind.into(),
            value: h.clone(),
            title: h.clone(),
            severity: h.clone(),
            created: h.clone(),
            status: h,
        }
    }

    #[test]
    fn the_feed_shows_hostile_items_and_filters_as_text() {
        let h = hostile::all();
        for i in [hostile_item(&h, 2), hostile_item("bulletin", 3)] {
            hostile::assert_shown_inert(&row(&i, 0).into_string());
            hostile::assert_shown_inert(&bulletin(&i, 0).into_string());
        }
        let mut pinned = hostile_item("bulletin", 3);
        pinned.status = "valid".into();
        let items = [pinned, hostile_item(&h, 2)];
        let page = body(&Filter::default(), &items, 0).into_string();
        hostile::assert_shown_inert(&page);
        assert!(page.contains("<tr data-seq=\"2\""), "{page}");
        assert!(page.contains("<li data-seq=\"3\""), "{page}");
        // Hostile filters: kept in the form and the event URL, as text.
        let filter = Filter {
            kind: h.clone(),
            ecosystem: h.clone(),
            min_severity: h.clone(),
            tlp: h.clone(),
        };
        let page = body(&filter, &items, 0).into_string();
        hostile::assert_inert(&page);
        assert!(page.contains(&format!("value=\"{}\"", hostile::escaped(&h))));
        assert!(
            page.contains("data-events=\"/events?kind=%3Cscript%3E"),
            "{page}"
        );
        assert!(page.contains("id=\"empty\""));
    }
}
