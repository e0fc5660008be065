//! The feed: triage over the verified local store. Bulletins pinned at the
//! top; rows filtered (several kinds, ecosystems and TLP labels, a minimum
//! severity or TLP, a date range), sorted by any column and paged, all in
//! the store query (`LocalStore::feed`), every link carrying the filters,
//! the order and the page's snapshot (`upto`); what is new since the
//! analyst's last visit marked and counted (`LocalStore::visit`, per
//! browser, persisted); live rows over server-sent events on the first
//! page in received order. The event stream polls the local store for rows
//! newer than the last one sent, because the sync daemon may be another
//! process writing the same SQLite file.

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::{html, Markup};

use super::html::{self, Form};
use super::{html_response, Authed, Console};
use crate::localstore::{FeedQuery, ItemSummary, SortKey, TLP_ORDER};

/// Rows on one feed page; the others are a link away.
pub const PAGE_ROWS: u32 = 100;
/// Bulletins pinned above the feed.
const PINNED: u32 = 5;
/// Most values one multi-valued filter takes (kinds, ecosystems, labels).
const MAX_VALUES: usize = 16;

/// The feed's filters and order, from the query string.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filter {
    /// Empty: every kind but sightings, retractions (and bulletins, pinned).
    pub kinds: Vec<String>,
    /// Purl types, lowercase.
    pub ecosystems: Vec<String>,
    pub min_severity: String,
    pub tlps: Vec<String>,
    /// A label: it or anything stricter.
    pub min_tlp: String,
    /// `YYYY-MM-DD`, on `created`, both inclusive.
    pub from: String,
    pub to: String,
    /// Only what is new since the last visit.
    pub only_new: bool,
    pub sort: SortKey,
    pub ascending: bool,
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

fn tlp_rank(s: &str) -> u8 {
    TLP_ORDER
        .iter()
        .position(|t| *t == s)
        .map_or(5, |p| p as u8)
}

/// The purl ecosystem an item's observable names (`npm` for `pkg:npm/...`).
fn ecosystem(value: &str) -> Option<&str> {
    value.strip_prefix("pkg:")?.split('/').next()
}

/// A `YYYY-MM-DD` day with a month and day that exist in some year.
fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| {
        b[r.clone()]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| s[r].parse::<u32>().unwrap_or(0))
    };
    matches!(
        (digits(0..4), digits(5..7), digits(8..10)),
        (Some(_), Some(1..=12), Some(1..=31))
    )
}

/// Whether the default order (newest received first) is in force: the
/// only one live rows can be added to.
fn default_order(f: &Filter) -> bool {
    f.sort == SortKey::Received && !f.ascending
}

impl Filter {
    /// Reads the filters; an unknown kind, label, severity, order or a
    /// malformed date is refused with what to give instead.
    pub fn parse(f: &Form) -> Result<Filter, String> {
        let many = |name: &str, split: bool| -> Result<Vec<String>, String> {
            let mut out: Vec<String> = Vec::new();
            for v in f.all(name) {
                let parts: Vec<&str> = if split {
                    v.split([',', ' ']).filter(|p| !p.is_empty()).collect()
                } else {
                    vec![v.as_str()]
                };
                for p in parts {
                    let p = p.to_ascii_lowercase();
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
            if out.len() > MAX_VALUES {
                return Err(format!("at most {MAX_VALUES} values of `{name}`"));
            }
            Ok(out)
        };
        let kinds = many("kind", false)?;
        if let Some(k) = kinds.iter().find(|k| !KINDS.iter().any(|(v, _)| v == k)) {
            return Err(format!(
                "unknown kind `{k}`: one of package, artifact, repository, account, network, \
                 vulnerability, bulletin, sighting, retraction"
            ));
        }
        let ecosystems = many("ecosystem", true)?;
        if let Some(e) = ecosystems.iter().find(|e| {
            !e.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-'))
        }) {
            return Err(format!(
                "`{e}` is not a purl type such as npm, pypi, cargo or maven"
            ));
        }
        let tlps = many("tlp", false)?;
        let min_tlp = f.get("min_tlp").to_ascii_lowercase();
        if let Some(t) = tlps
            .iter()
            .chain((!min_tlp.is_empty()).then_some(&min_tlp))
            .find(|t| !TLP_ORDER.contains(&t.as_str()))
        {
            return Err(format!(
                "unknown TLP label `{t}`: one of clear, green, amber, amber+strict, red"
            ));
        }
        let min_severity = f.get("min_severity").to_ascii_lowercase();
        if !SEVERITIES.iter().any(|(v, _)| *v == min_severity) {
            return Err(format!(
                "unknown severity `{min_severity}`: one of info, low, medium, high, critical"
            ));
        }
        let (from, to) = (f.get("from").to_owned(), f.get("to").to_owned());
        for (name, d) in [("from", &from), ("to", &to)] {
            if !d.is_empty() && !is_day(d) {
                return Err(format!("`{name}` must be a day as YYYY-MM-DD, not `{d}`"));
            }
        }
        let sort = match f.get("sort") {
            "" => SortKey::Received,
            s => SortKey::parse(s).ok_or_else(|| {
                format!(
                    "cannot sort by `{s}`: one of received, created, severity, tlp, kind, \
                     observable, title, source"
                )
            })?,
        };
        let ascending = match f.get("dir") {
            "" | "desc" => false,
            "asc" => true,
            d => return Err(format!("`dir` is asc or desc, not `{d}`")),
        };
        Ok(Filter {
            kinds,
            ecosystems,
            min_severity,
            tlps,
            min_tlp,
            from,
            to,
            only_new: f.get("new") == "1",
            sort,
            ascending,
        })
    }

    /// Back to query pairs (what every link carries).
    fn to_form(&self) -> Form {
        let mut f = Vec::new();
        for k in &self.kinds {
            f.push(("kind".into(), k.clone()));
        }
        for e in &self.ecosystems {
            f.push(("ecosystem".into(), e.clone()));
        }
        f.push(("min_severity".into(), self.min_severity.clone()));
        for t in &self.tlps {
            f.push(("tlp".into(), t.clone()));
        }
        f.push(("min_tlp".into(), self.min_tlp.clone()));
        f.push(("from".into(), self.from.clone()));
        f.push(("to".into(), self.to.clone()));
        if self.only_new {
            f.push(("new".into(), "1".into()));
        }
        if !default_order(self) {
            f.push(("sort".into(), self.sort.name().into()));
            f.push((
                "dir".into(),
                if self.ascending { "asc" } else { "desc" }.into(),
            ));
        }
        Form(f)
    }

    /// A feed link with these filters, and `extra` pairs.
    fn link(&self, extra: &[(&str, String)]) -> String {
        let mut f = self.to_form();
        for (k, v) in extra {
            f.0.push(((*k).into(), v.clone()));
        }
        match f.to_query() {
            q if q.is_empty() => "/".into(),
            q => format!("/?{q}"),
        }
    }

    /// The store query for the feed's rows (`None`: the filter asks for
    /// bulletins only, which are pinned, not listed).
    pub fn rows_query(&self, page: &Paging, baseline: u64) -> Option<FeedQuery> {
        let kinds: Vec<String> = self
            .kinds
            .iter()
            .filter(|k| *k != "bulletin")
            .cloned()
            .collect();
        if kinds.is_empty() && !self.kinds.is_empty() {
            return None;
        }
        Some(FeedQuery {
            kinds,
            sort: self.sort,
            ascending: self.ascending,
            upto: page.upto,
            after: self.only_new.then_some(baseline),
            offset: u64::from(page.number.saturating_sub(1)) * u64::from(PAGE_ROWS),
            ..self.common(PAGE_ROWS)
        })
    }

    /// The store query for the pinned bulletins (`None`: the filter names
    /// only other kinds).
    pub fn bulletins_query(&self) -> Option<FeedQuery> {
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == "bulletin") {
            return None;
        }
        Some(FeedQuery {
            kinds: vec!["bulletin".into()],
            only_valid: true,
            ..self.common(PINNED)
        })
    }

    fn common(&self, limit: u32) -> FeedQuery {
        FeedQuery {
            ecosystems: self.ecosystems.clone(),
            min_severity: severity_rank(&self.min_severity),
            tlps: self.tlps.clone(),
            min_tlp: (!self.min_tlp.is_empty()).then(|| tlp_rank(&self.min_tlp)),
            from: (!self.from.is_empty()).then(|| self.from.clone()),
            to: (!self.to.is_empty()).then(|| self.to.clone()),
            limit,
            ..FeedQuery::default()
        }
    }

    /// The same decision as the store query, for live rows.
    pub fn matches(&self, i: &ItemSummary, baseline: u64) -> bool {
        // Sightings and retractions show on their item's page unless asked for.
        let kind_ok = if self.kinds.is_empty() {
            !matches!(i.kind.as_str(), "sighting" | "retraction")
        } else {
            self.kinds.contains(&i.kind)
        };
        let day = i.created.get(..10).unwrap_or("");
        kind_ok
            && (self.ecosystems.is_empty()
                || ecosystem(&i.value).is_some_and(|e| self.ecosystems.iter().any(|x| x == e)))
            && severity_rank(&i.severity) >= severity_rank(&self.min_severity)
            && (self.tlps.is_empty() || self.tlps.contains(&i.tlp))
            && (self.min_tlp.is_empty() || tlp_rank(&i.tlp) >= tlp_rank(&self.min_tlp))
            && (self.from.is_empty() || day >= self.from.as_str())
            && (self.to.is_empty() || day <= self.to.as_str())
            && (!self.only_new || i.sequence > baseline)
    }
}

/// Which page: its number (from 1) and the snapshot it belongs to (the
/// newest row held when page 1 was read; `None` on page 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub number: u32,
    pub upto: Option<u64>,
}

impl Paging {
    fn parse(f: &Form) -> Result<Paging, String> {
        let number = match f.get("page") {
            "" => 1,
            p => p
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("`page` must be a page number, not `{p}`"))?,
        };
        let upto = match f.get("upto") {
            "" => None,
            u => Some(u.parse::<u64>().map_err(|_| {
                "`upto` must come from a page link; open the feed again".to_owned()
            })?),
        };
        Ok(Paging { number, upto })
    }
}

/// A severity as colour, icon and word (critical rows stand out in the
/// table too: `tr.sev-critical`).
pub fn severity_badge(severity: &str) -> Markup {
    let (class, icon) = match severity {
        "critical" => ("critical", "▲▲"),
        "high" => ("high", "▲"),
        "medium" => ("medium", "◆"),
        "low" => ("low", "▽"),
        "info" => ("info", "○"),
        _ => ("unknown", "?"),
    };
    html! { span class={ "sev sev-" (class) } { span.sev-icon { (icon) } " " (severity) } }
}

/// One feed row (`<tr>`); also what the live stream sends.
pub fn row(i: &ItemSummary, now: i64) -> Markup {
    row_marked(i, now, false)
}

/// One feed row, marked new since the last visit when `new`.
pub fn row_marked(i: &ItemSummary, now: i64, new: bool) -> Markup {
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
    let class = format!(
        "sev-{}{}{}",
        i.severity,
        if new { " new" } else { "" },
        expired
    );
    html! {
        tr data-seq=(i.sequence) data-item=(i.id) class=(class) {
            td { (html::tlp_label(&i.tlp)) }
            td { (i.kind) }
            td.obs { code { (i.value) } }
            td {
                @if new { span.new-mark { "new" } " " }
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
            td { (severity_badge(&i.severity)) }
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

/// The columns of every item table: label and the sort key behind it.
const COLUMNS: [(&str, Option<SortKey>); 8] = [
    ("TLP", Some(SortKey::Tlp)),
    ("Kind", Some(SortKey::Kind)),
    ("Observable", Some(SortKey::Observable)),
    ("Title", Some(SortKey::Title)),
    ("Severity", Some(SortKey::Severity)),
    ("Source", Some(SortKey::Source)),
    ("Signature", None),
    ("Age", Some(SortKey::Created)),
];

/// The column heads of every item table (feed, search results).
pub fn table_head() -> Markup {
    html! {
        thead {
            tr {
                @for (col, _) in COLUMNS {
                    th scope="col" { (col) }
                }
            }
        }
    }
}

/// The feed's column heads: each a link sorting by it (again: the other
/// way), carrying the filters; the current one marked with `aria-sort`.
fn sortable_head(filter: &Filter) -> Markup {
    html! {
        thead {
            tr {
                @for (col, key) in COLUMNS {
                    @match key {
                        None => th scope="col" { (col) },
                        Some(key) => {
                            @let current = filter.sort == key
                                || (key == SortKey::Created && filter.sort == SortKey::Received);
                            @let ascending = if current {
                                !filter.ascending
                            } else {
                                // Text columns A to Z first; ranks and times highest first.
                                matches!(key, SortKey::Kind | SortKey::Observable | SortKey::Title | SortKey::Source)
                            };
                            @let sort = Filter { sort: key, ascending, ..filter.clone() };
                            th scope="col" aria-sort=[current.then_some(if filter.ascending { "ascending" } else { "descending" })] {
                                a.sort href=(sort.link(&[])) {
                                    (col)
                                    @if current { " " (if filter.ascending { "↑" } else { "↓" }) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

const KINDS: [(&str, &str); 9] = [
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

const MIN_TLPS: [(&str, &str); 5] = [
    ("", "any"),
    ("green", "GREEN or stricter"),
    ("amber", "AMBER or stricter"),
    ("amber+strict", "AMBER+STRICT or RED"),
    ("red", "RED only"),
];

const SORTS: [(&str, &str); 8] = [
    ("received", "received"),
    ("created", "created"),
    ("severity", "severity"),
    ("tlp", "TLP"),
    ("kind", "kind"),
    ("observable", "observable"),
    ("title", "title"),
    ("source", "source"),
];

/// The browser's visitor id: a random name for the read marks, kept a year
/// (it is no credential: the session cookie is). Same name on every port,
/// so a restarted console on another port knows the browser again.
fn visitor_cookie(tls: bool) -> &'static str {
    if tls {
        "__Host-isac_console_visitor"
    } else {
        "isac_console_visitor"
    }
}

/// The visitor id the request carries, if well formed.
fn visitor_of(c: &Console, headers: &HeaderMap) -> Option<String> {
    super::cookie(headers, visitor_cookie(c.0.tls))
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

/// A digest naming the login session (the id itself stays out of the store).
fn session_tag(c: &Console, headers: &HeaderMap) -> String {
    let sid = super::cookie(headers, &c.0.cookie_name).unwrap_or("");
    openssl::sha::sha256(sid.as_bytes())[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub async fn page(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let form = Form::parse(q.as_deref().unwrap_or(""));
    let (filter, paging) = match Filter::parse(&form).and_then(|f| Ok((f, Paging::parse(&form)?))) {
        Ok(v) => v,
        Err(msg) => {
            return super::error_page(&c, &auth, StatusCode::BAD_REQUEST, &msg);
        }
    };
    let (visitor, new_visitor) = match visitor_of(&c, &headers) {
        Some(v) => (v, false),
        None => match super::random_hex(16) {
            Ok(v) => (v, true),
            Err(e) => return super::error::fail(&c, &auth, "The feed could not be read", &e),
        },
    };
    let session = session_tag(&c, &headers);
    let (f, v) = (filter.clone(), visitor.clone());
    let read = c
        .blocking(move |a| {
            let store = a.store.lock().expect("store");
            let last = store.last_sequence()?;
            // The read mark is a convenience: a store too busy to take it
            // leaves this page without "new" marks rather than failing it.
            let baseline = match store.visit(&v, &session, last, crate::now()) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "console: the read mark was not updated");
                    last
                }
            };
            // Page 1 is read at `last`; the pages after it at the same snapshot.
            let paging = Paging {
                upto: Some(paging.upto.unwrap_or(last)),
                ..paging
            };
            let rows_q = f.rows_query(&paging, baseline);
            let (rows, total) = match &rows_q {
                Some(q) => (store.feed(q)?, store.feed_count(q)?),
                None => (vec![], 0),
            };
            let unread = store.feed_count(&FeedQuery {
                after: Some(baseline),
                upto: paging.upto,
                ..FeedQuery::default()
            })?;
            let bulletins = match f.bulletins_query().filter(|_| paging.number == 1) {
                Some(q) => store.feed(&q)?,
                None => vec![],
            };
            Ok(FeedView {
                filter: f,
                rows,
                bulletins,
                total,
                page: paging,
                last,
                baseline,
                unread,
            })
        })
        .await;
    let view = match read {
        Ok(r) => r,
        Err(e) => return super::error::fail(&c, &auth, "The feed could not be read", &e),
    };
    let alert = c.blocking(|a| a.log_alert()).await.ok().flatten();
    let mut resp = html_response(
        StatusCode::OK,
        html::page(
            "Feed",
            "/",
            c.agent().org_id(),
            &auth.csrf,
            maud::html! {
                (html::log_alert_banner(alert.as_ref()))
                (body(&view, &auth.csrf, crate::now()))
            },
        ),
    );
    if new_visitor {
        let secure = if c.0.tls { "; Secure" } else { "" };
        let cookie = format!(
            "{}={visitor}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000{secure}",
            visitor_cookie(c.0.tls)
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// "Mark all as read": nothing held now is new to this browser.
pub async fn mark_read(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&String::from_utf8_lossy(&body));
    if let Some(r) = auth.check(&form) {
        return r;
    }
    if let Some(visitor) = visitor_of(&c, &headers) {
        let done = c
            .blocking(move |a| {
                let store = a.store.lock().expect("store");
                let last = store.last_sequence()?;
                store.mark_read(&visitor, last, crate::now())
            })
            .await;
        if let Err(e) = done {
            return super::error::fail(&c, &auth, "Not marked as read", &e);
        }
    }
    Redirect::to("/").into_response()
}

/// What one feed page shows.
pub(crate) struct FeedView {
    filter: Filter,
    rows: Vec<ItemSummary>,
    bulletins: Vec<ItemSummary>,
    /// Rows matching the filters over every page.
    total: u64,
    page: Paging,
    /// The newest held row: the live stream starts after it.
    last: u64,
    /// Rows after this are new since the last visit.
    baseline: u64,
    /// How many (of every kind the feed lists, whatever the filters).
    unread: u64,
}

/// The feed page's content: filters, pinned bulletins, the table, pages.
fn body(v: &FeedView, csrf: &str, now: i64) -> Markup {
    let filter = &v.filter;
    let first_page = v.page.number == 1;
    // Live rows only where they belong: the first page, newest first.
    let live = first_page && default_order(filter);
    let events = format!("/events?{}", {
        let mut f = filter.to_form();
        f.0.push(("after".into(), v.last.to_string()));
        f.0.push(("baseline".into(), v.baseline.to_string()));
        f.to_query()
    });
    let pages = v.total.div_ceil(u64::from(PAGE_ROWS)).max(1);
    let upto = v.page.upto.unwrap_or(v.last).to_string();
    let page_link = |n: u64| {
        if n == 1 {
            filter.link(&[])
        } else {
            filter.link(&[("page", n.to_string()), ("upto", upto.clone())])
        }
    };
    let page_no = u64::from(v.page.number);
    let ecosystems = filter.ecosystems.join(", ");
    html! {
        @if v.unread > 0 {
            div.unread #unread role="status" {
                span.count #unread-count { (v.unread) } " new since your last visit. "
                @if !filter.only_new {
                    a #only-new href=(Filter { only_new: true, ..filter.clone() }.link(&[])) { "Show only those" }
                } @else {
                    a href=(Filter { only_new: false, ..filter.clone() }.link(&[])) { "Show all" }
                }
                " "
                form.inline-mark method="post" action="/feed/read" {
                    (html::csrf_input(csrf))
                    button #mark-read type="submit" { "Mark all as read" }
                }
            }
        }
        form.filters #filters method="get" action="/" aria-label="Filters" {
            fieldset.multi {
                legend { "Kind" }
                @for (value, label) in KINDS {
                    label.check {
                        input type="checkbox" name="kind" value=(value) checked[filter.kinds.iter().any(|k| k == value)];
                        " " (label)
                    }
                }
            }
            fieldset.multi {
                legend { "TLP" }
                @for (value, label) in &TLPS[1..] {
                    label.check {
                        input type="checkbox" name="tlp" value=(value) checked[filter.tlps.iter().any(|t| t == value)];
                        " " (label)
                    }
                }
                label {
                    "or at least "
                    select name="min_tlp" { (html::options(&MIN_TLPS, &filter.min_tlp)) }
                }
            }
            label {
                "Ecosystems "
                input name="ecosystem" value=(ecosystems) placeholder="npm, pypi, cargo…" size="12";
            }
            label {
                "Min severity "
                select name="min_severity" { (html::options(&SEVERITIES, &filter.min_severity)) }
            }
            label { "Created from " input type="date" name="from" value=(filter.from); }
            label { "to " input type="date" name="to" value=(filter.to); }
            label {
                "Sort by "
                select name="sort" { (html::options(&SORTS, filter.sort.name())) }
            }
            label {
                "Order "
                select name="dir" {
                    (html::options(&[("desc", "newest / highest first"), ("asc", "oldest / lowest first")],
                        if filter.ascending { "asc" } else { "desc" }))
                }
            }
            @if filter.only_new { input type="hidden" name="new" value="1"; }
            button type="submit" { "Apply" }
            " "
            a href="/" { "Clear" }
        }
        @if first_page { section.pinned aria-labelledby="pinned-h" {
            h2 #pinned-h { "Bulletins" }
            ul #bulletins {
                @for b in &v.bulletins { (bulletin(b, now)) }
            }
            @if v.bulletins.is_empty() {
                p.muted #no-bulletins { "No bulletins." }
            }
        } }
        section aria-labelledby="feed-h" {
            h2 #feed-h {
                "Items "
                @if live {
                    span.live #live aria-live="polite" { "live" }
                } @else {
                    span.muted { "(page " (page_no) " of " (pages) ")" }
                }
            }
            p.muted #feed-count {
                (v.total) " item(s) match; page " (page_no) " of " (pages)
                ". Keys: j / k next / previous item, Enter opens it, / searches."
            }
            div.scroll {
                table.feed #feed data-events=[live.then_some(&events)] {
                    (sortable_head(filter))
                    tbody #feed-rows {
                        @for i in &v.rows { (row_marked(i, now, i.sequence > v.baseline)) }
                    }
                }
            }
            @if v.rows.is_empty() {
                p.muted #empty { "Nothing held matches yet; new items appear here as they arrive." }
            }
            @if pages > 1 {
                nav.pager aria-label="Pages" {
                    @if page_no > 1 {
                        a #first-page href=(page_link(1)) { "First" } " "
                        a #prev-page href=(page_link(page_no - 1)) rel="prev" { "Previous" } " "
                    }
                    span #page-of { "Page " (page_no) " of " (pages) }
                    @if page_no < pages {
                        " " a #older href=(page_link(page_no + 1)) rel="next" { "Next (older)" }
                        " " a #last-page href=(page_link(pages)) { "Last" }
                    }
                }
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
    let filter = match Filter::parse(&form) {
        Ok(f) => f,
        Err(msg) => return (StatusCode::BAD_REQUEST, format!("{msg}\n")).into_response(),
    };
    let baseline: u64 = form.get("baseline").parse().unwrap_or(0);
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
                        if !filter.matches(&i, baseline) {
                            continue;
                        }
                        let (name, data) = if i.kind == "bulletin" {
                            ("bulletin", bulletin(&i, now))
                        } else {
                            ("item", row_marked(&i, now, i.sequence > baseline))
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

    fn f(q: &str) -> Filter {
        Filter::parse(&Form::parse(q)).unwrap()
    }

    fn view(filter: Filter, rows: Vec<ItemSummary>, total: u64, page: Paging) -> FeedView {
        FeedView {
            filter,
            rows,
            bulletins: vec![],
            total,
            page,
            last: 1000,
            baseline: 0,
            unread: 0,
        }
    }

    const FIRST: Paging = Paging {
        number: 1,
        upto: None,
    };

    #[test]
    fn filters_work_like_the_store_query() {
        let pkg = item("package", "pkg:npm/evil@1.0.0", "high", "amber");
        assert!(f("").matches(&pkg, 0));
        assert!(f("kind=package&ecosystem=NPM&min_severity=high&tlp=amber").matches(&pkg, 0));
        assert!(f("kind=network&kind=package").matches(&pkg, 0));
        assert!(f("ecosystem=pypi,+npm").matches(&pkg, 0));
        assert!(f("min_tlp=amber").matches(&pkg, 0));
        assert!(f("from=2026-11-25&to=2026-11-25").matches(&pkg, 0));
        assert!(!f("kind=network").matches(&pkg, 0));
        assert!(!f("ecosystem=pypi").matches(&pkg, 0));
        assert!(!f("min_severity=critical").matches(&pkg, 0));
        assert!(!f("tlp=amber%2Bstrict&tlp=red").matches(&pkg, 0));
        assert!(!f("min_tlp=amber%2Bstrict").matches(&pkg, 0));
        assert!(!f("from=2026-11-26").matches(&pkg, 0));
        assert!(!f("to=2026-11-24").matches(&pkg, 0));
        assert!(!f("new=1").matches(&pkg, 1) && f("new=1").matches(&pkg, 0));
        let sighting = item("sighting", "x", "info", "green");
        assert!(!f("").matches(&sighting, 0));
        assert!(f("kind=sighting").matches(&sighting, 0));
    }

    #[test]
    fn bad_filters_are_refused_with_what_to_give() {
        for (q, says) in [
            ("kind=widget", "unknown kind `widget`"),
            ("tlp=purple", "unknown TLP label `purple`"),
            ("min_tlp=white", "unknown TLP label `white`"),
            ("min_severity=huge", "unknown severity"),
            ("from=2026-13-01", "`from` must be a day"),
            ("to=yesterday", "`to` must be a day"),
            ("sort=rowid", "cannot sort by `rowid`"),
            ("dir=up", "`dir` is asc or desc"),
            ("ecosystem=np%27m", "not a purl type"),
        ] {
            let err = Filter::parse(&Form::parse(q)).unwrap_err();
            assert!(err.contains(says), "{q}: {err}");
        }
        let many: Vec<String> = (0..17).map(|n| format!("ecosystem=e{n}")).collect();
        assert!(Filter::parse(&Form::parse(&many.join("&")))
            .unwrap_err()
            .contains("at most 16"));
        for q in ["page=0", "page=x", "upto=-1"] {
            assert!(Paging::parse(&Form::parse(q)).is_err(), "{q}");
        }
        assert_eq!(
            Paging::parse(&Form::parse("page=3&upto=77")).unwrap(),
            Paging {
                number: 3,
                upto: Some(77)
            }
        );
    }

    #[test]
    fn filters_become_store_queries() {
        let page3 = Paging {
            number: 3,
            upto: Some(900),
        };
        let q = f("").rows_query(&page3, 5).unwrap();
        assert!(q.kinds.is_empty() && q.ecosystems.is_empty() && q.tlps.is_empty());
        assert_eq!((q.min_severity, q.min_tlp, q.after), (0, None, None));
        assert_eq!((q.upto, q.limit, q.offset), (Some(900), PAGE_ROWS, 200));
        let q = f(
            "kind=package&kind=bulletin&ecosystem=NPM,pypi&min_severity=high&tlp=amber\
                   &min_tlp=amber&from=2026-01-01&to=2026-02-01&sort=severity&dir=asc&new=1",
        )
        .rows_query(&FIRST, 42)
        .unwrap();
        assert_eq!(q.kinds, ["package"]);
        assert_eq!(q.ecosystems, ["npm", "pypi"]);
        assert_eq!((q.min_severity, q.min_tlp), (3, Some(2)));
        assert_eq!(q.tlps, ["amber"]);
        assert_eq!(
            (q.from.as_deref(), q.to.as_deref()),
            (Some("2026-01-01"), Some("2026-02-01"))
        );
        assert_eq!(
            (q.sort, q.ascending, q.after, q.offset),
            (SortKey::Severity, true, Some(42), 0)
        );
        assert!(f("kind=bulletin").rows_query(&FIRST, 0).is_none());
        assert!(f("kind=package").bulletins_query().is_none());
        let b = f("tlp=green").bulletins_query().unwrap();
        assert_eq!(b.kinds, ["bulletin"]);
        assert!(b.only_valid && b.limit == PINNED && b.tlps == ["green"]);
    }

    #[test]
    fn rows_escape_every_field_and_show_severity_as_colour_icon_and_word() {
        let mut i = item("package", "pkg:npm/\"><b>@1", "critical", "red");
        i.created = "<i>".into();
        let r = row(&i, 0).into_string();
        assert!(!r.contains("<script>"), "{r}");
        assert!(!r.contains("<b>") && !r.contains("<i>"), "{r}");
        assert!(r.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(r.contains("anonymous member"));
        assert!(r.contains("tlp-red"));
        assert!(r.contains("class=\"sev-critical\""), "{r}");
        assert!(
            r.contains("sev sev-critical") && r.contains("▲▲") && r.contains("critical</span>")
        );
        assert!(!r.contains("new-mark"));
        let new = row_marked(&i, 0, true).into_string();
        assert!(
            new.contains("class=\"sev-critical new\"") && new.contains("new-mark"),
            "{new}"
        );
        assert!(!bulletin(&i, 0).into_string().contains("<script>"));
        for s in ["info", "low", "medium", "high", "odd"] {
            assert!(severity_badge(s).into_string().contains(s));
        }
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
    fn the_feed_shows_hostile_items_as_text() {
        let h = hostile::all();
        for i in [hostile_item(&h, 2), hostile_item("bulletin", 3)] {
            hostile::assert_shown_inert(&row(&i, 0).into_string());
            hostile::assert_shown_inert(&row_marked(&i, 0, true).into_string());
            hostile::assert_shown_inert(&bulletin(&i, 0).into_string());
        }
        let mut pinned = hostile_item("bulletin", 3);
        pinned.status = "valid".into();
        let mut v = view(Filter::default(), vec![hostile_item(&h, 2)], 1, FIRST);
        v.bulletins = vec![pinned];
        v.unread = 1;
        let page = body(&v, &h, 0).into_string();
        hostile::assert_shown_inert(&page);
        assert!(page.contains("<tr data-seq=\"2\""), "{page}");
        assert!(page.contains("<li data-seq=\"3\""), "{page}");
        assert!(page.contains("id=\"unread-count\">1<"), "{page}");
        let empty = view(Filter::default(), vec![], 0, FIRST);
        let empty = body(&empty, "t", 0).into_string();
        hostile::assert_inert(&empty);
        assert!(empty.contains("id=\"empty\"") && !empty.contains("id=\"unread\""));
    }

    #[test]
    fn links_carry_filters_order_and_the_snapshot() {
        let i = item("package", "pkg:npm/evil@1.0.0", "high", "amber");
        let filter =
            f("kind=package&kind=network&tlp=amber&ecosystem=npm,pypi&sort=severity&dir=asc");
        let rows: Vec<ItemSummary> = (0..PAGE_ROWS as u64)
            .map(|n| ItemSummary {
                sequence: 1000 - n,
                ..i.clone()
            })
            .collect();
        let page2 = Paging {
            number: 2,
            upto: Some(990),
        };
        let out = body(&view(filter.clone(), rows.clone(), 350, page2), "t", 0).into_string();
        let keep =
            "kind=package&amp;kind=network&amp;ecosystem=npm&amp;ecosystem=pypi&amp;tlp=amber\
                    &amp;sort=severity&amp;dir=asc";
        for (id, page) in [("older", 3), ("last-page", 4), ("prev-page", 1)] {
            let href = if page == 1 {
                format!("id=\"{id}\" href=\"/?{keep}\"")
            } else {
                format!("id=\"{id}\" href=\"/?{keep}&amp;page={page}&amp;upto=990\"")
            };
            assert!(out.contains(&href), "{href} in {out}");
        }
        assert!(out.contains("Page 2 of 4"), "{out}");
        // Not the first page, or not newest first: no live stream, no pins.
        assert!(!out.contains("data-events") && !out.contains("Bulletins"));
        let sorted = body(&view(filter, rows.clone(), 50, FIRST), "t", 0).into_string();
        assert!(!sorted.contains("data-events") && sorted.contains("Bulletins"));
        assert!(!sorted.contains("id=\"older\""));
        // The sorted column says so, and its link turns the order around.
        assert!(sorted.contains("aria-sort=\"ascending\""), "{sorted}");
        assert!(sorted.contains("sort=severity&amp;dir=desc"), "{sorted}");
        // The default order: live, from the newest held row, with the filters.
        let live = body(&view(f("tlp=green"), rows, 100, FIRST), "t", 0).into_string();
        assert!(
            live.contains("data-events=\"/events?tlp=green&amp;after=1000&amp;baseline=0\""),
            "{live}"
        );
        assert!(live.contains("aria-sort=\"descending\""));
        assert!(
            live.contains("href=\"/?tlp=green&amp;sort=title&amp;dir=asc\""),
            "{live}"
        );
        assert!(
            live.contains("href=\"/?tlp=green&amp;sort=created&amp;dir=asc\""),
            "{live}"
        );
    }

    #[test]
    fn days_are_checked() {
        for ok in ["2026-01-31", "1999-12-01"] {
            assert!(is_day(ok), "{ok}");
        }
        for bad in [
            "2026-1-31",
            "2026-00-10",
            "2026-01-32",
            "2026/01/01",
            "２０２６-01-01",
            "",
        ] {
            assert!(!is_day(bad), "{bad}");
        }
    }
}
