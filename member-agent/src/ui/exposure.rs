//! The Exposure page's watch: the applications `watch add` registered and
//! what they are exposed to, as the running agent announced it to its
//! sinks (the store's `exposures`: the daemon may be another process),
//! each with a button that reports it back as a sighting
//! (`watch::report`, the sighting code, at the indicator's TLP).
//!
//! Findings (watched, or from a checked lockfile) are grouped by
//! application and dependency, each with the matched range and why, the
//! safe version where the indicator's ranges say (`safe_version`), what
//! to do (`advice`), and exports as CSV (`csv::cell`) and ticket text.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::{html, Markup};

use super::html::{self, Form};
use super::{Authed, Console};
use crate::localstore::Watched;
use crate::watch::Exposure;

/// What the watch section shows, gathered before rendering.
pub struct WatchView {
    pub watched: Vec<Watched>,
    pub exposures: Vec<Exposure>,
    /// The exposures with what their indicators say, for the grouped view.
    pub findings: Vec<Finding>,
}

/// Reads the registrations and announced exposures; on failure, what the
/// page may say.
pub async fn gather(c: &Console) -> Result<WatchView, String> {
    c.blocking(|a| {
        let store = a.store.lock().expect("store");
        let exposures = crate::watch::announced(&store)?;
        let facts = facts(&store, exposures.iter().map(|e| e.indicator.id.clone()))?;
        Ok(WatchView {
            watched: store.watched()?,
            findings: from_exposures(&exposures, &facts),
            exposures,
        })
    })
    .await
    .map_err(|e| super::error::classify("Not readable", &e).message)
}

/// The watched applications and their exposures; a report button each.
pub fn watch_html(csrf: &str, view: &Result<WatchView, String>) -> Markup {
    let view = match view {
        Ok(v) => v,
        Err(message) => return html::notice("error", message),
    };
    html! {
        section #watched aria-labelledby="watched-h" {
            h2 #watched-h { "Watched applications" }
            @if view.watched.is_empty() {
                p {
                    "No application is watched. Register an SBOM or lockfile with "
                    code { "member-agent watch add PATH --name APP" }
                    "; the running agent then judges it against every indicator as it arrives."
                }
            } @else {
                div.scroll {
                    table.feed {
                        thead { tr {
                            @for col in ["Application", "File", "Exposures", "Watched since"] {
                                th scope="col" { (col) }
                            }
                        } }
                        tbody {
                            @for w in &view.watched {
                                tr {
                                    td { (w.name) }
                                    td { code { (w.path) } }
                                    td { (view.exposures.iter().filter(|e| e.application == w.name).count()) }
                                    td { time datetime=(w.added) { (w.added) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section #exposures aria-labelledby="exposures-h" {
            h2 #exposures-h { "Current exposures" }
            @if view.exposures.is_empty() {
                (html::notice("ok", "No watched application is exposed to a held indicator (as the running agent last announced)."))
            } @else {
                p.notice.notice-error role="alert" {
                    (view.exposures.len()) " exposure(s) of watched applications."
                }
                (findings_html(&view.findings, "exposure-list", watch_export_buttons(csrf), &|f| html! {
                    form.inline method="post" action="/exposure/report" {
                        (html::csrf_input(csrf))
                        input type="hidden" name="application" value=(f.application);
                        input type="hidden" name="indicator" value=(f.indicator_id);
                        button type="submit" { "Report sighting" }
                    }
                }))
            }
        }
    }
}

/// Reports an exposure as a sighting, then shows the indicator with it.
pub async fn report(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&String::from_utf8_lossy(&body));
    if let Some(r) = auth.check(&form) {
        return r;
    }
    let (application, indicator) = (form.get("application"), form.get("indicator"));
    match crate::watch::report(c.agent(), application, indicator, None, false, None).await {
        Ok(p) => Redirect::to(&format!(
            "/item/{}?sighted={}",
            html::urlenc(indicator),
            html::urlenc(&p.id)
        ))
        .into_response(),
        Err(e) => super::error::fail(&c, &auth, "Sighting not sent", &e),
    }
}

// === grouped findings, advice and exports (console-b) ===

/// One finding, from a checked lockfile or SBOM (`check::Match`) or a
/// watched application (`watch::Exposure`), with what the indicator says
/// about safe versions.
#[derive(Debug, Clone)]
pub struct Finding {
    pub application: String,
    /// The dependency as the file names it (`npm/evil-pkg`, a purl, a name).
    pub dependency: String,
    pub version: String,
    pub path: Option<Vec<String>>,
    pub indicator_id: String,
    pub title: String,
    pub tlp: String,
    pub severity: String,
    pub source: String,
    /// The affected versions or ranges the indicator lists.
    pub affected: Vec<String>,
    /// `malicious`, `typosquat`...; `None` for other kinds.
    pub threat: Option<String>,
    pub certain: bool,
    pub why: String,
    /// The first version after every affected range, where the indicator says.
    pub safe: Option<String>,
    /// When the running agent first announced it (watched applications).
    pub since: Option<String>,
}

/// What the held statement of an indicator says about its package.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub affected: Vec<String>,
    pub threat: Option<String>,
    pub ecosystem: Option<isac_packages::Ecosystem>,
}

/// The package facts of each indicator in `ids`, from its held statement.
pub fn facts(
    store: &crate::localstore::LocalStore,
    ids: impl IntoIterator<Item = String>,
) -> Result<std::collections::HashMap<String, Facts>, crate::error::AgentError> {
    let mut out = std::collections::HashMap::new();
    for id in ids {
        if out.contains_key(&id) {
            continue;
        }
        let mut f = Facts::default();
        if let Some((_, statement_json, _)) = store.show(&id)? {
            if let Ok(s) = serde_json::from_str::<isac_core::Statement>(&statement_json) {
                if let isac_core::statement::Body::Indicator(i) = &s.body {
                    if let isac_core::statement::Observable::Package {
                        purl,
                        versions,
                        threat,
                        ..
                    } = &i.observable
                    {
                        f.affected = versions.clone();
                        f.threat = serde_json::to_value(threat)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned));
                        f.ecosystem = purl
                            .parse::<isac_packages::Purl>()
                            .ok()
                            .and_then(|p| p.ecosystem());
                    }
                }
            }
        }
        out.insert(id, f);
    }
    Ok(out)
}

/// The version to move to, where the affected list says: every entry a
/// range with an upper bound (`>=1.0.0 <1.2.5`, `<2.0.0`, `<=1.4.0`); the
/// answer is past the highest bound ("1.2.5 or later", "later than
/// 1.4.0"). Exact versions, open ranges or ranges we cannot read: `None`.
pub fn safe_version(eco: Option<isac_packages::Ecosystem>, affected: &[String]) -> Option<String> {
    let mut best: Option<(String, bool)> = None; // (bound, inclusive)
    if affected.is_empty() {
        return None;
    }
    for entry in affected {
        let mut upper: Option<(String, bool)> = None;
        for token in entry.split([' ', ',']).filter(|t| !t.is_empty()) {
            if let Some(v) = token.strip_prefix("<=") {
                upper = Some((v.trim().to_owned(), true));
            } else if let Some(v) = token.strip_prefix('<') {
                upper = Some((v.trim().to_owned(), false));
            } else if !token.starts_with(">=") && !token.starts_with('>') {
                // An exact version, `*`, `^1.2` or `~1.2`: no bound we can state.
                return None;
            }
        }
        let (bound, inclusive) = upper.filter(|(v, _)| !v.is_empty())?;
        best = match best {
            None => Some((bound, inclusive)),
            Some((b, inc)) => {
                let ord = match eco {
                    Some(e) => isac_packages::version::compare(e, &bound, &b).ok()?,
                    None => return None,
                };
                match ord {
                    std::cmp::Ordering::Greater => Some((bound, inclusive)),
                    std::cmp::Ordering::Equal => Some((b, inc || inclusive)),
                    std::cmp::Ordering::Less => Some((b, inc)),
                }
            }
        };
    }
    best.map(|(v, inclusive)| {
        if inclusive {
            format!("later than {v}")
        } else {
            format!("{v} or later")
        }
    })
}

/// What to do about one finding, in words.
pub fn advice(f: &Finding) -> String {
    if !f.certain {
        return format!(
            "Check by hand whether {} {} is affected ({}); until then treat it as exposed.",
            f.dependency, f.version, f.why
        );
    }
    let hostile = matches!(
        f.threat.as_deref(),
        Some("malicious" | "compromised" | "typosquat" | "dependency_confusion")
    );
    let mut out = match (&f.safe, hostile) {
        (Some(safe), _) => format!("Upgrade {} to {safe}, then check again.", f.dependency),
        (None, true) => format!(
            "Remove {} (or pin a version the indicator does not list); no safe version is known.",
            f.dependency
        ),
        (None, false) => format!(
            "Move {} off {}: the indicator names no fixed version; ask its source.",
            f.dependency, f.version
        ),
    };
    if hostile {
        out.push_str(
            " The package ran hostile code: treat the machines that installed it as exposed and \
             rotate the credentials they could read.",
        );
    }
    out
}

/// Findings from a checked file, with the indicators' facts.
pub fn from_matches(
    application: &str,
    matches: &[crate::check::Match],
    facts: &std::collections::HashMap<String, Facts>,
) -> Vec<Finding> {
    matches
        .iter()
        .map(|m| {
            let f = facts.get(&m.indicator_id).cloned().unwrap_or_default();
            Finding {
                application: application.to_owned(),
                dependency: m.dependency.clone(),
                version: m.version.clone(),
                path: m.path.clone(),
                indicator_id: m.indicator_id.clone(),
                title: m.title.clone(),
                tlp: m.tlp.clone(),
                severity: m.severity.clone(),
                source: m.source.clone(),
                safe: safe_version(f.ecosystem, &f.affected),
                affected: f.affected,
                threat: f.threat,
                certain: m.certain,
                why: m.why.clone(),
                since: None,
            }
        })
        .collect()
}

/// Findings from the watched applications' announced exposures.
pub fn from_exposures(
    exposures: &[Exposure],
    facts: &std::collections::HashMap<String, Facts>,
) -> Vec<Finding> {
    exposures
        .iter()
        .map(|e| {
            let f = facts.get(&e.indicator.id).cloned().unwrap_or_default();
            Finding {
                application: e.application.clone(),
                dependency: e.component.clone(),
                version: e.version.clone().unwrap_or_default(),
                path: e.path.clone(),
                indicator_id: e.indicator.id.clone(),
                title: e.indicator.title.clone(),
                tlp: e.indicator.tlp.clone(),
                severity: e.indicator.severity.clone(),
                source: e.indicator.source.clone(),
                safe: safe_version(f.ecosystem, &f.affected),
                affected: f.affected,
                threat: f.threat,
                certain: e.certain,
                why: e.why.clone(),
                since: Some(e.since.clone()),
            }
        })
        .collect()
}

/// One dependency (name, version) and its findings.
pub type DepFindings<'a> = ((&'a str, &'a str), Vec<&'a Finding>);

/// Findings grouped by application, then dependency and version, in
/// order of first appearance.
pub fn grouped(findings: &[Finding]) -> Vec<(&str, Vec<DepFindings<'_>>)> {
    let mut apps: Vec<(&str, Vec<DepFindings<'_>>)> = Vec::new();
    for f in findings {
        let app = match apps.iter_mut().position(|(a, _)| *a == f.application) {
            Some(i) => &mut apps[i].1,
            None => {
                apps.push((&f.application, Vec::new()));
                &mut apps.last_mut().expect("just pushed").1
            }
        };
        let key = (f.dependency.as_str(), f.version.as_str());
        match app.iter_mut().position(|(k, _)| *k == key) {
            Some(i) => app[i].1.push(f),
            None => app.push((key, vec![f])),
        }
    }
    apps
}

/// The strictest TLP label among `findings` (what a ticket must carry).
fn strictest(findings: &[Finding]) -> &str {
    findings
        .iter()
        .map(|f| f.tlp.as_str())
        .max_by_key(|t| {
            crate::localstore::TLP_ORDER
                .iter()
                .position(|x| x == t)
                .unwrap_or(crate::localstore::TLP_ORDER.len())
        })
        .unwrap_or("clear")
}

/// The matched range, in words.
fn matched(f: &Finding) -> String {
    if f.affected.is_empty() {
        f.why.clone()
    } else {
        format!("{} (affected: {})", f.why, f.affected.join("; "))
    }
}

/// The findings as CSV, one row per finding, every cell through `csv::cell`.
pub fn to_csv(findings: &[Finding]) -> String {
    use crate::csv::cell;
    let mut out = String::from(
        "application,dependency,version,path,indicator_id,indicator,tlp,severity,source,certain,matched,safe_version,what_to_do\n",
    );
    for f in findings {
        let cells = [
            cell(&f.application),
            cell(&f.dependency),
            cell(&f.version),
            cell(&f.path.as_ref().map(|p| p.join(" > ")).unwrap_or_default()),
            cell(&f.indicator_id),
            cell(&f.title),
            cell(&f.tlp),
            cell(&f.severity),
            cell(&html::source_name(&f.source)),
            cell(if f.certain { "yes" } else { "uncertain" }),
            cell(&matched(f)),
            cell(f.safe.as_deref().unwrap_or("")),
            cell(&advice(f)),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// The findings as text to paste into a ticket: the strictest TLP label
/// first, then each dependency with its indicators, safe version and
/// what to do.
pub fn to_ticket(findings: &[Finding]) -> String {
    use std::fmt::Write;
    let tlp = strictest(findings).to_uppercase();
    let groups = grouped(findings);
    let deps: usize = groups.iter().map(|(_, d)| d.len()).sum();
    let mut t = String::new();
    let apps: Vec<&str> = groups.iter().map(|(a, _)| *a).collect();
    let _ = writeln!(
        t,
        "[TLP:{tlp}] {deps} dependenc{} in {} match{} threat indicators",
        if deps == 1 { "y" } else { "ies" },
        apps.join(", "),
        if deps == 1 { "es" } else { "" }
    );
    let _ = writeln!(
        t,
        "Handle this ticket under TLP:{tlp} (the strictest label of the indicators below).\n"
    );
    let mut n = 0;
    for (app, deps) in &groups {
        for ((dep, version), fs) in deps {
            n += 1;
            if dep.ends_with(&format!("@{version}")) {
                let _ = writeln!(t, "{n}. {dep} in {app}");
            } else {
                let _ = writeln!(t, "{n}. {dep} {version} in {app}");
            }
            if let Some(p) = fs.iter().find_map(|f| f.path.as_ref()) {
                let _ = writeln!(t, "   Dependency path: {}", p.join(" > "));
            }
            for f in fs {
                let _ = writeln!(
                    t,
                    "   Indicator: {} ({}, TLP:{}, from {}; id {})",
                    f.title,
                    f.severity,
                    f.tlp.to_uppercase(),
                    html::source_name(&f.source),
                    f.indicator_id
                );
                let _ = writeln!(t, "   Matched: {}", matched(f));
                let _ = writeln!(
                    t,
                    "   Safe version: {}",
                    f.safe.as_deref().unwrap_or("none known")
                );
                let _ = writeln!(t, "   What to do: {}", advice(f));
            }
            t.push('\n');
        }
    }
    t
}

/// The grouped findings: per application, per dependency, each indicator
/// with the matched range and why, the safe version and what to do; the
/// ticket text below, with a copy button; exports through `export_form`.
pub fn findings_html(
    findings: &[Finding],
    id: &str,
    export_form: Markup,
    extra: &dyn Fn(&Finding) -> Markup,
) -> Markup {
    let ticket_id = format!("{id}-ticket");
    html! {
        div.findings id=(id) {
            @for (app, deps) in grouped(findings) {
                section.app {
                    h3 { "Application " code { (app) } " · " (deps.len()) " exposed dependenc" (if deps.len() == 1 { "y" } else { "ies" }) }
                    @for ((dep, version), fs) in deps {
                        div.dep {
                            h4 { code { (dep) } @if !dep.ends_with(&format!("@{version}")) { " " (version) } }
                            @if let Some(p) = fs.iter().find_map(|f| f.path.as_ref()) {
                                p.muted { "Dependency path: " (p.join(" > ")) }
                            }
                            ul.indicators {
                                @for f in fs {
                                    li class=(if f.certain { "certain" } else { "uncertain" }) {
                                        (html::tlp_label(&f.tlp)) " "
                                        a href={ "/item/" (html::urlenc(&f.indicator_id)) } { (f.title) }
                                        " " (super::feed::severity_badge(&f.severity))
                                        " " span.muted { "from " (html::source_name(&f.source)) }
                                        dl.fields {
                                            dt { "Matched" } dd { (matched(f)) }
                                            dt { "Safe version" } dd.safe { (f.safe.as_deref().unwrap_or("none known")) }
                                            dt { "What to do" } dd.advice { (advice(f)) }
                                            @if let Some(since) = &f.since {
                                                dt { "Since" } dd { time datetime=(since) { (since) } }
                                            }
                                        }
                                        (extra(f))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (export_form)
            details {
                summary { "Ticket text" }
                pre id=(ticket_id) tabindex="0" { (to_ticket(findings)) }
                button.copy type="button" data-copy=(ticket_id) { "Copy ticket text" }
            }
        }
    }
}

/// `POST /exposure/export/{csv|ticket}`: the findings of the lockfile in
/// the form (`source=lockfile`), or of the watched applications
/// (`source=watch`), as a download.
pub async fn export(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    axum::extract::Path(format): axum::extract::Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&String::from_utf8_lossy(&body));
    if let Some(r) = auth.check(&form) {
        return r;
    }
    if !matches!(format.as_str(), "csv" | "ticket") {
        return super::error_page(
            &c,
            &auth,
            axum::http::StatusCode::NOT_FOUND,
            "exports are csv or ticket",
        );
    }
    let source = form.get("source").to_owned();
    let name = form.get("file_name").to_owned();
    let contents = form
        .0
        .iter()
        .find(|(k, _)| k == "contents")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let found = c
        .blocking(move |a| {
            if source == "watch" {
                let store = a.store.lock().expect("store");
                let exposures = crate::watch::announced(&store)?;
                let facts = facts(&store, exposures.iter().map(|e| e.indicator.id.clone()))?;
                return Ok(from_exposures(&exposures, &facts));
            }
            let report = crate::check::check_contents(a, &name, &contents)?;
            let store = a.store.lock().expect("store");
            let facts = facts(
                &store,
                report.matches.iter().map(|m| m.indicator_id.clone()),
            )?;
            Ok(from_matches(&report.application, &report.matches, &facts))
        })
        .await;
    let findings = match found {
        Ok(f) => f,
        Err(e) => return super::error::fail(&c, &auth, "Not exported", &e),
    };
    let (body, content_type, file) = if format == "csv" {
        (to_csv(&findings), "text/csv; charset=utf-8", "exposure.csv")
    } else {
        (
            to_ticket(&findings),
            "text/plain; charset=utf-8",
            "exposure-ticket.txt",
        )
    };
    (
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The export buttons for the watched applications' findings.
pub fn watch_export_buttons(csrf: &str) -> Markup {
    html! {
        form.inline.exports method="post" action="/exposure/export/csv" {
            (html::csrf_input(csrf))
            input type="hidden" name="source" value="watch";
            button #watch-csv type="submit" { "Export as CSV" }
            button #watch-ticket type="submit" formaction="/exposure/export/ticket" { "Download ticket text" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::html::hostile;
    use super::*;
    use crate::watch::IndicatorRef;

    #[test]
    fn watched_applications_and_exposures_show_hostile_text_as_text() {
        let h = hostile::all();
        let mut view = WatchView {
            findings: vec![],
            watched: vec![Watched {
                name: h.clone(),
                path: h.clone(),
                added: h.clone(),
            }],
            exposures: vec![Exposure {
                application: h.clone(),
                component_ref: h.clone(),
                component: h.clone(),
                version: Some(h.clone()),
                path: Some(vec![h.clone(), h.clone()]),
                indicator: IndicatorRef {
                    id: h.clone(),
                    revision: 1,
                    title: h.clone(),
                    tlp: h.clone(),
                    source: h.clone(),
                    severity: h.clone(),
                    value: h.clone(),
                },
                why: h.clone(),
                certain: true,
                since: h.clone(),
            }],
        };
        view.findings = from_exposures(&view.exposures, &Default::default());
        let out = watch_html(&h, &Ok(view)).into_string();
        hostile::assert_shown_inert(&out);
        assert!(out.contains("1 exposure(s)"), "{out}");
        assert!(out.contains("action=\"/exposure/report\""), "{out}");
        assert!(out.contains("href=\"/item/%3Cscript%3E"), "{out}");
        let empty = watch_html(
            "t",
            &Ok(WatchView {
                findings: vec![],
                watched: vec![],
                exposures: vec![],
            }),
        )
        .into_string();
        hostile::assert_inert(&empty);
        assert!(empty.contains("watch add PATH --name APP"), "{empty}");
        hostile::assert_shown_inert(&watch_html("t", &Err(h.clone())).into_string());
    }

    fn finding(
        dep: &str,
        version: &str,
        tlp: &str,
        affected: &[&str],
        threat: Option<&str>,
    ) -> Finding {
        let eco = Some(isac_packages::Ecosystem::Npm);
        let affected: Vec<String> = affected.iter().map(|s| s.to_string()).collect();
        Finding {
            application: "package-lock.json".into(),
            dependency: dep.into(),
            version: version.into(),
            path: Some(vec!["app".into(), dep.into()]),
            indicator_id: format!("id-{dep}"),
            title: format!("=HYPERLINK(\"x\") {dep} is bad"),
            tlp: tlp.into(),
            severity: "critical".into(),
            source: "alice-bank".into(),
            safe: safe_version(eco, &affected),
            affected,
            threat: threat.map(str::to_owned),
            certain: true,
            why: format!("{version} is listed"),
            since: None,
        }
    }

    #[test]
    fn the_safe_version_is_past_every_affected_range_where_the_ranges_say() {
        let npm = Some(isac_packages::Ecosystem::Npm);
        let s =
            |v: &[&str]| safe_version(npm, &v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&[">=1.0.0 <1.2.5"]).as_deref(), Some("1.2.5 or later"));
        assert_eq!(
            s(&["<1.10.0", ">=0.1.0 <1.9.0"]).as_deref(),
            Some("1.10.0 or later")
        );
        assert_eq!(
            s(&["<=2.0.0", ">=1.0.0, <2.0.0"]).as_deref(),
            Some("later than 2.0.0")
        );
        for none in [
            &["1.0.0"][..],
            &[">=1.0.0"],
            &["*"],
            &["^1.2.0"],
            &[],
            &["<"],
        ] {
            assert_eq!(s(none), None, "{none:?}");
        }
        // Two bounds we cannot order: no answer rather than a wrong one.
        assert_eq!(safe_version(None, &["<1".into(), "<2".into()]), None);
        assert_eq!(
            safe_version(None, &["<1".into()]).as_deref(),
            Some("1 or later")
        );
    }

    #[test]
    fn findings_group_by_application_and_dependency_and_export_as_csv_and_ticket() {
        let fs = vec![
            finding(
                "npm/evil",
                "1.0.0",
                "green",
                &[">=1.0.0 <1.0.3"],
                Some("malicious"),
            ),
            finding(
                "npm/left",
                "2.0.0",
                "amber",
                &["2.0.0"],
                Some("compromised"),
            ),
            Finding {
                indicator_id: "second".into(),
                ..finding("npm/evil", "1.0.0", "clear", &[], None)
            },
        ];
        let g = grouped(&fs);
        assert_eq!(g.len(), 1);
        let deps: Vec<_> = g[0].1.iter().map(|(k, v)| (*k, v.len())).collect();
        assert_eq!(
            deps,
            [(("npm/evil", "1.0.0"), 2), (("npm/left", "2.0.0"), 1)]
        );

        assert!(advice(&fs[0]).starts_with("Upgrade npm/evil to 1.0.3 or later"));
        assert!(advice(&fs[0]).contains("rotate the credentials"));
        assert!(advice(&fs[1]).starts_with("Remove npm/left"));
        assert!(advice(&fs[2]).contains("names no fixed version"));
        let unsure = Finding {
            certain: false,
            ..fs[0].clone()
        };
        assert!(advice(&unsure).starts_with("Check by hand"));

        let csv = to_csv(&fs);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("application,dependency,version,path,"));
        // A formula title is neutralised.
        assert!(
            lines[1].contains("\"'=HYPERLINK(\"\"x\"\") npm/evil is bad\""),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("1.0.3 or later"));

        let ticket = to_ticket(&fs);
        assert!(
            ticket.starts_with(
                "[TLP:AMBER] 2 dependencies in package-lock.json match threat indicators\n"
            ),
            "{ticket}"
        );
        assert!(
            ticket.contains("1. npm/evil 1.0.0 in package-lock.json"),
            "{ticket}"
        );
        assert!(
            ticket.contains("   Safe version: 1.0.3 or later"),
            "{ticket}"
        );
        assert!(
            ticket.contains("   Dependency path: app > npm/evil"),
            "{ticket}"
        );
        assert!(ticket.contains("2. npm/left 2.0.0"), "{ticket}");

        let page =
            findings_html(&fs, "matches", watch_export_buttons("t"), &|_| html! {}).into_string();
        hostile::assert_inert(&page);
        assert!(
            page.contains("1.0.3 or later") && page.contains("Copy ticket text"),
            "{page}"
        );
        assert!(
            page.contains("formaction=\"/exposure/export/ticket\""),
            "{page}"
        );
    }
}
