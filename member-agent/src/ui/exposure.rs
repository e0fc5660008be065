//! The Exposure page's watch: the applications `watch add` registered and
//! what they are exposed to, as the running agent announced it to its
//! sinks (the store's `exposures`: the daemon may be another process),
//! each with a button that reports it back as a sighting
//! (`watch::report`, the sighting code, at the indicator's TLP).

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
}

/// Reads the registrations and announced exposures; on failure, what the
/// page may say.
pub async fn gather(c: &Console) -> Result<WatchView, String> {
    c.blocking(|a| {
        let store = a.store.lock().expect("store");
        Ok(WatchView {
            watched: store.watched()?,
            exposures: crate::watch::announced(&store)?,
        })
    })
    .await
    .map_err(|e| super::error::classify("Not readable", &e).message)
}

/// The watched applications and their exposures; a report button each.
pub fn watch_html(csrf: &str, view: &Result<WatchView, String>, now: i64) -> Markup {
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
                div.scroll {
                    table.feed #exposure-list {
                        thead { tr {
                            @for col in ["Application", "Component", "Path", "Indicator", "TLP", "Severity", "Why", "Since", ""] {
                                th scope="col" { (col) }
                            }
                        } }
                        tbody {
                            @for e in &view.exposures {
                                tr {
                                    td { (e.application) }
                                    td { code { (e.component) } }
                                    td { (e.path.as_ref().map(|p| p.join(" > ")).unwrap_or_default()) }
                                    td { a href={ "/item/" (html::urlenc(&e.indicator.id)) } { (e.indicator.title) } }
                                    td { (html::tlp_label(&e.indicator.tlp)) }
                                    td { (e.indicator.severity) }
                                    td { (e.why) }
                                    td { time datetime=(e.since) { (html::age(&e.since, now)) " ago" } }
                                    td {
                                        form method="post" action="/exposure/report" {
                                            (html::csrf_input(csrf))
                                            input type="hidden" name="application" value=(e.application);
                                            input type="hidden" name="indicator" value=(e.indicator.id);
                                            button type="submit" { "Report sighting" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::super::html::hostile;
    use super::*;
    use crate::watch::IndicatorRef;

    #[test]
    fn watched_applications_and_exposures_show_hostile_text_as_text() {
        let h = hostile::all();
        let view = WatchView {
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
        let out = watch_html(&h, &Ok(view), 0).into_string();
        hostile::assert_shown_inert(&out);
        assert!(out.contains("1 exposure(s)"), "{out}");
        assert!(out.contains("action=\"/exposure/report\""), "{out}");
        assert!(out.contains("href=\"/item/%3Cscript%3E"), "{out}");
        let empty = watch_html(
            "t",
            &Ok(WatchView {
                watched: vec![],
                exposures: vec![],
            }),
            0,
        )
        .into_string();
        hostile::assert_inert(&empty);
        assert!(empty.contains("watch add PATH --name APP"), "{empty}");
        hostile::assert_shown_inert(&watch_html("t", &Err(h.clone()), 0).into_string());
    }
}
