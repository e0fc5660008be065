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
use crate::localstore::{FeedQuery, ItemSummary};

/// Rows on one feed page; older ones are a link away.
const FEED_ROWS: u32 = 300;
/// Bulletins pinned above the feed.
const PINNED: u32 = 5;

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

    /// The store query for the feed's rows (`None`: the filter asks for
    /// bulletins, which are pinned, not listed), newest first, below `before`.
    pub fn rows_query(&self, before: Option<u64>) -> Option<FeedQuery> {
        if self.kind == "bulletin" {
            return None;
        }
        Some(FeedQuery {
            kind: (!self.kind.is_empty()).then(|| self.kind.clone()),
            ..self.common(before, FEED_ROWS)
        })
    }

    /// The store query for the pinned bulletins (`None`: the filter names
    /// another kind).
    pub fn bulletins_query(&self) -> Option<FeedQuery> {
        if !self.kind.is_empty() && self.kind != "bulletin" {
            return None;
        }
        Some(FeedQuery {
            kind: Some("bulletin".into()),
            only_valid: true,
            ..self.common(None, PINNED)
        })
    }

    fn common(&self, before: Option<u64>, limit: u32) -> FeedQuery {
        FeedQuery {
            kind: None,
            ecosystem: (!self.ecosystem.is_empty()).then(|| self.ecosystem.clone()),
            min_severity: if self.min_severity.is_empty() {
                0
            } else {
                severity_rank(&self.min_severity)
            },
            tlp: (!self.tlp.is_empty()).then(|| self.tlp.clone()),
            only_valid: false,
            before,
            limit,
        }
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
    // Past its valid_until: greyed, and marked in words by the badge.
    let expired = if i.status == "expired" {
        " expired"
    } else {
        ""
    };
    html! {
        tr data-seq=(i.sequence) data-item=(i.id) class={ "sev-" (i.severity) (expired) } {
            td { (html::tlp_label(&i.tlp)) }
            td { (i.kind) }
            td.obs { code { (i.value) } }
            td {
                a href={ "/item/" (html::urlenc(&i.id)) } { (i.title) }
                @if i.revision > 1 {
                    " " span.updated title="a newer revision replaced the first one" {
                        "updated (revision " (i.revision) ")"
                    }
                }
                @match i.status.as_str() {
                    "valid" | "key-revoked" | "key-retired" => {}
                    s => { " " span class={ "badge " (s) } { (s) } }
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
        li data-seq=(i.sequence) data-item=(i.id) {
            (html::tlp_label(&i.tlp))
            " "
            a href={ "/item/" (html::urlenc(&i.id)) } { (i.title) }
            @if i.revision > 1 {
                " " span.updated { "updated (revision " (i.revision) ")" }
            }
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
    let form = Form::parse(q.as_deref().unwrap_or(""));
    let filter = Filter::from_form(&form);
    let before = match form.get("before") {
        "" => None,
        b => match b.parse::<u64>() {
            Ok(b) => Some(b),
            Err(_) => {
                return super::error_page(
                    &c,
                    &auth,
                    StatusCode::BAD_REQUEST,
                    "`before` must be a row number from an \"Older\" link; open the feed again",
                )
            }
        },
    };
    let (rows_q, bulletins_q) = (filter.rows_query(before), filter.bulletins_query());
    let read = c
        .blocking(move |a| {
            let store = a.store.lock().expect("store");
            let rows = match rows_q {
                Some(q) => store.feed(&q)?,
                None => vec![],
            };
            // Pinned bulletins and the live stream's starting point belong
            // to the newest page only.
            let (bulletins, last) = if before.is_none() {
                let b = match bulletins_q {
                    Some(q) => store.feed(&q)?,
                    None => vec![],
                };
                (b, store.last_sequence()?)
            } else {
                (vec![], 0)
            };
            Ok((rows, bulletins, last))
        })
        .await;
    let (rows, bulletins, last) = match read {
        Ok(r) => r,
        Err(e) => return super::error::fail(&c, &auth, "The feed could not be read", &e),
    };
    let view = FeedView {
        filter: &filter,
        rows: &rows,
        bulletins: &bulletins,
        last,
        older: before.is_some(),
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
                (body(&view, crate::now()))
            },
        ),
    )
}

/// What one feed page shows.
struct FeedView<'a> {
    filter: &'a Filter,
    rows: &'a [ItemSummary],
    bulletins: &'a [ItemSummary],
    /// The newest held row: the live stream starts after it.
    last: u64,
    /// An older page (from an "Older" link): no live stream, no pins.
    older: bool,
}

/// The feed page's content: filters, pinned bulletins, the live table.
fn body(v: &FeedView<'_>, now: i64) -> Markup {
    let filter = v.filter;
    let (rows, bulletins) = (v.rows, v.bulletins);
    let events = format!("/events?{}", {
        let mut f = filter.to_form();
        f.0.push(("after".into(), v.last.to_string()));
        f.to_query()
    });
    // A full page may have older rows behind it.
    let older = (rows.len() as u32 >= FEED_ROWS)
        .then(|| rows.last().map(|r| r.sequence))
        .flatten()
        .map(|seq| {
            let mut f = filter.to_form();
            f.0.push(("before".into(), seq.to_string()));
            format!("/?{}", f.to_query())
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
        @if !v.older { section.pinned aria-labelledby="pinned-h" {
            h2 #pinned-h { "Bulletins" }
            ul #bulletins {
                @for b in bulletins { (bulletin(b, now)) }
            }
            @if bulletins.is_empty() {
                p.muted #no-bulletins { "No bulletins." }
            }
        } }
        section aria-labelledby="feed-h" {
            h2 #feed-h {
                "Items "
                @if v.older { span.muted { "(older)" } } @else {
                    span.live #live aria-live="polite" { "live" }
                }
            }
            div.scroll {
                table.feed #feed data-events=[(!v.older).then_some(&events)] {
                    (table_head())
                    tbody #feed-rows {
                        @for i in rows { (row(i, now)) }
                    }
                }
            }
            @if rows.is_empty() {
                p.muted #empty { "Nothing held matches yet; new items appear here as they arrive." }
            }
            @if let Some(href) = &older {
                p.pager { a #older href=(href) rel="next" { "Older items" } }
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

    #[test]
    fn expired_rows_are_greyed_and_say_so() {
        let mut i = item("network", "c2.evil.example", "high", "green");
        let live = row(&i, 0).into_string();
        assert!(live.contains(r#"class="sev-high""#), "{live}");
        assert!(!live.contains("expired"), "{live}");
        i.status = "expired".into();
        let r = row(&i, 0).into_string();
        assert!(r.contains(r#"class="sev-high expired""#), "{r}");
        assert!(
            r.contains(r#"<span class="badge expired">expired</span>"#),
            "{r}"
        );
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
        let (bulletins, rows) = ([pinned], [hostile_item(&h, 2)]);
        let view = |filter| FeedView {
            filter,
            rows: &rows,
            bulletins: &bulletins,
            last: 3,
            older: false,
        };
        let none = Filter::default();
        let page = body(&view(&none), 0).into_string();
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
        let page = body(&view(&filter), 0).into_string();
        hostile::assert_inert(&page);
        assert!(page.contains(&format!("value=\"{}\"", hostile::escaped(&h))));
        assert!(
            page.contains("data-events=\"/events?kind=%3Cscript%3E"),
            "{page}"
        );
        let empty = FeedView {
            filter: &filter,
            rows: &[],
            bulletins: &[],
            last: 0,
            older: false,
        };
        assert!(body(&empty, 0).into_string().contains("id=\"empty\""));
    }

    #[test]
    fn a_revision_is_marked_updated_and_a_full_page_links_to_older_rows_keeping_filters() {
        let mut i = item("package", "pkg:npm/evil@1.0.0", "high", "amber");
        assert!(!row(&i, 0).into_string().contains("updated"));
        i.revision = 3;
        let r = row(&i, 0).into_string();
        assert!(r.contains("updated (revision 3)"), "{r}");
        assert!(r.contains(&format!("data-item=\"{}\"", i.id)), "{r}");
        assert!(bulletin(&i, 0)
            .into_string()
            .contains("updated (revision 3)"));

        let filter = Filter::from_form(&Form::parse("kind=package&tlp=amber"));
        let rows: Vec<ItemSummary> = (0..FEED_ROWS as u64)
            .map(|n| ItemSummary {
                sequence: 1000 - n,
                ..i.clone()
            })
            .collect();
        let view = |rows: &[ItemSummary], older| {
            body(
                &FeedView {
                    filter: &filter,
                    rows,
                    bulletins: &[],
                    last: 1000,
                    older,
                },
                0,
            )
            .into_string()
        };
        let full = view(&rows, false);
        let next = format!(
            "/?kind=package&amp;tlp=amber&amp;before={}",
            1001 - FEED_ROWS as u64
        );
        assert!(full.contains(&next), "{full}");
        assert!(full.contains("data-events="));
        // Not full: nothing older. An older page: no live stream, no pins.
        assert!(!view(&rows[1..], false).contains("id=\"older\""));
        let older = view(&rows[1..], true);
        assert!(!older.contains("data-events") && !older.contains("Bulletins"));
    }

    #[test]
    fn filters_become_store_queries() {
        let f = |q: &str| Filter::from_form(&Form::parse(q));
        let q = f("").rows_query(Some(7)).unwrap();
        assert_eq!(
            (q.kind, q.ecosystem, q.min_severity, q.tlp),
            (None, None, 0, None)
        );
        assert_eq!(
            (q.before, q.limit, q.only_valid),
            (Some(7), FEED_ROWS, false)
        );
        let q = f("kind=package&ecosystem=NPM&min_severity=high&tlp=amber")
            .rows_query(None)
            .unwrap();
        assert_eq!(q.kind.as_deref(), Some("package"));
        assert_eq!(q.ecosystem.as_deref(), Some("npm"));
        assert_eq!((q.min_severity, q.tlp.as_deref()), (3, Some("amber")));
        assert!(f("kind=bulletin").rows_query(None).is_none());
        assert!(f("kind=package").bulletins_query().is_none());
        let b = f("tlp=green").bulletins_query().unwrap();
        assert_eq!(b.kind.as_deref(), Some("bulletin"));
        assert!(b.only_valid && b.limit == PINNED && b.tlp.as_deref() == Some("green"));
    }
}
