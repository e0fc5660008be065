//! A signed statement as a person reads it: observable first (with a copy
//! button), then threat, imitates, versions, references as links,
//! severity, validity, labels and who it reaches. Shared by the item page
//! (above the raw statement) and the publish preview (what will be signed),
//! so both say the same thing. Pure: markup from a statement.

use isac_core::statement::{Observable, PackageThreat};
use isac_core::{Body, Statement, Tlp};
use maud::{html, Markup};

use super::html::{self};
use super::markdown;

/// Who a statement reaches, as far as the page may say.
pub enum Audience<'a> {
    /// The clear entries, before signing (the publish preview).
    Clear(&'a [String]),
    /// The entries that named us, checked against the signed commitments
    /// (a received AMBER or RED item).
    NamedUs(&'a [String]),
    /// Our own item: we hold the openings, others see commitments only.
    Own,
}

fn threat(t: PackageThreat) -> &'static str {
    match t {
        PackageThreat::Malicious => "malicious package",
        PackageThreat::Compromised => "compromised package (a good package with a bad release)",
        PackageThreat::Typosquat => "typosquat (a name chosen to be mistaken for another)",
        PackageThreat::DependencyConfusion => {
            "dependency confusion (a public name shadowing an internal one)"
        }
        PackageThreat::Protestware => "protestware",
    }
}

/// `org:bob-bank` → `bob-bank`, `person:bob-bank/jdoe` → `bob-bank/jdoe`,
/// `group:payments` → `sharing group payments`.
pub fn entry_text(entry: &str) -> String {
    match entry.split_once(':') {
        Some(("org", o)) => o.to_owned(),
        Some(("person", p)) => p.to_owned(),
        Some(("group", g)) => format!("sharing group {g}"),
        _ => entry.to_owned(),
    }
}

/// A reference: a link when it is http(s), text otherwise.
fn reference(r: &str) -> Markup {
    html! {
        @match markdown::safe_href(r) {
            Some(href) => a href=(href) rel="noopener noreferrer nofollow" { (r) },
            None => span.value { (r) },
        }
    }
}

fn audience_text(s: &Statement, audience: &Audience<'_>) -> Markup {
    let everyone =
        matches!(s.tlp, Tlp::Clear | Tlp::Green) || (s.tlp == Tlp::Amber && s.audience.is_empty());
    html! {
        @if everyone {
            @match s.tlp {
                Tlp::Clear => "every member; may be shared publicly",
                Tlp::Green => "every member of the community (not public)",
                _ => "every member (no audience named), need to know",
            }
        } @else {
            @match audience {
                Audience::Clear(entries) => {
                    "only: "
                    @for (n, e) in entries.iter().enumerate() {
                        @if n > 0 { ", " }
                        (entry_text(e))
                    }
                    " (signed as blinded commitments: recipients never see each other)"
                },
                Audience::NamedUs(entries) if !entries.is_empty() => {
                    span #shared-with {
                        "shared with you ("
                        @for (n, e) in entries.iter().enumerate() {
                            @if n > 0 { ", " }
                            (entry_text(e))
                        }
                        ")"
                    }
                },
                Audience::NamedUs(_) => {
                    span #shared-with { "shared with you (this agent holds no opening naming you)" }
                },
                Audience::Own => {
                    (s.audience.len()) " named recipient(s); only your organisation holds the list"
                },
            }
        }
    }
}

fn observable_rows(o: &Observable, idx: usize) -> Markup {
    let obs_id = if idx == 0 {
        "observable".to_owned()
    } else {
        format!("observable-{idx}")
    };
    html! {
        dt { "Observable" }
        dd.observable {
            code id=(obs_id) { (o.primary_value()) }
            " "
            button.copy type="button" data-copy=(obs_id) { "Copy" }
        }
        dt { "Kind" } dd { (o.kind()) }
        @match o {
            Observable::Package { purl, versions, threat: t, imitates } => {
                dt { "Threat" } dd #threat { (threat(*t)) }
                @if let Some(original) = imitates {
                    dt { "Imitates" }
                    dd { code #imitates { (original) } }
                }
                dt { "Versions" }
                dd #versions {
                    @if versions.is_empty() {
                        @if purl.contains('@') { "the version in the purl" } @else { "every version" }
                    } @else {
                        ul.values { @for v in versions { li { code { (v) } } } }
                    }
                }
            },
            Observable::Artifact { sha256, sha512, purl, filename } => {
                @if sha256.is_some() && sha512.is_some() {
                    dt { "SHA-512" } dd { code { (sha512.as_deref().unwrap_or_default()) } }
                }
                @if let Some(p) = purl { dt { "From package" } dd { code { (p) } } }
                @if let Some(f) = filename { dt { "File name" } dd { code { (f) } } }
            },
            Observable::Repository { commit, tag, .. } => {
                @if let Some(c) = commit { dt { "Commit" } dd { code { (c) } } }
                @if let Some(t) = tag { dt { "Tag" } dd { code { (t) } } }
            },
            Observable::Vulnerability { purls, .. } => {
                dt { "Affected packages" }
                dd {
                    @if purls.is_empty() { "not named" }
                    @else { ul.values { @for p in purls { li { code { (p) } } } } }
                }
            },
            Observable::Account { .. } | Observable::Network { .. } => {},
        }
    }
}

/// The human summary of `s`. `idx` tells summaries on one page apart
/// (element ids).
pub fn summary(s: &Statement, audience: &Audience<'_>, idx: usize) -> Markup {
    html! {
        dl.summary.report {
            @match &s.body {
                Body::Indicator(i) => {
                    (observable_rows(&i.observable, idx))
                    dt { "Severity" } dd { span class={ "sev sev-" (i.severity.as_str()) } { (i.severity.as_str()) } }
                    dt { "Confidence" } dd { (i.confidence) " / 100" }
                    dt { "Valid" }
                    dd #validity {
                        "from " (i.valid_from.as_deref().unwrap_or(s.created.as_str()))
                        @match &i.valid_until {
                            Some(u) => { " until " (u) },
                            None => { ", no end date" },
                        }
                    }
                    dt { "References" }
                    dd #references {
                        @if i.references.is_empty() { span.muted { "none" } }
                        @else { ul.values { @for r in &i.references { li { (reference(r)) } } } }
                    }
                    @if !i.tags.is_empty() {
                        dt { "Labels" } dd { (i.tags.join(", ")) }
                    }
                },
                Body::Bulletin(b) => {
                    dt { "Severity" } dd { span class={ "sev sev-" (b.severity.as_str()) } { (b.severity.as_str()) } }
                    @if let Some(inc) = &b.incident_id { dt { "Incident" } dd { code { (inc) } } }
                },
                Body::Sighting(x) => {
                    dt { "Sighting of" } dd { a href={ "/item/" (x.indicator) } { code { (x.indicator) } } }
                    dt { "Count" } dd { (x.count) }
                    dt { "Seen" } dd { (x.first_seen) " to " (x.last_seen) }
                },
                Body::Retraction(x) => {
                    dt { "Retracts" } dd { a href={ "/item/" (x.target) } { code { (x.target) } } }
                    dt { "Reason" } dd { @if x.reason.is_empty() { span.muted { "none given" } } @else { (x.reason) } }
                },
            }
            dt { "TLP" } dd { (html::tlp_label(s.tlp.as_str())) }
            dt { "Reaches" } dd #reaches { (audience_text(s, audience)) }
            @if s.anonymous {
                dt { "Identity" } dd { "delivered as \"anonymous member\" (the hub re-signs it)" }
            }
            @if s.no_forward {
                dt { "Forwarding" } dd { "kept at this hub (never forwarded to peer hubs)" }
            }
        }
        @if let Body::Indicator(i) = &s.body {
            @if !i.description.is_empty() {
                p.description { (i.description) }
            }
        }
    }
}

/// A JSON value as nested definition lists; `null` fields are left out
/// (absent and null mean the same in a statement), an empty list or
/// object says "(none)".
pub fn json_html(v: &serde_json::Value) -> Markup {
    use serde_json::Value;
    html! {
        @match v {
            Value::Object(m) if m.values().all(Value::is_null) => span.muted { "(none)" },
            Value::Object(m) => dl.fields {
                @for (k, v) in m.iter().filter(|(_, v)| !v.is_null()) {
                    dt { (k) }
                    dd { (json_html(v)) }
                }
            },
            Value::Array(a) if a.is_empty() => span.muted { "(none)" },
            Value::Array(a) => ul.values {
                @for v in a { li { (json_html(v)) } }
            },
            Value::String(s) => span.value { (s) },
            Value::Null => span.muted { "(none)" },
            other => span.value { (other.to_string()) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::html::hostile;
    use super::*;
    use crate::draft::IndicatorDraft;

    fn typosquat() -> Statement {
        IndicatorDraft {
            purl: Some("pkg:npm/axois".into()),
            threat: Some("typosquat".into()),
            imitates: Some("pkg:npm/axios".into()),
            versions: Some(vec!["1.0.0".into(), ">=1.1.0 <1.2.0".into()]),
            references: Some(vec!["https://example.org/report".into()]),
            valid_until: Some("2027-01-01T00:00:00Z".into()),
            tlp: Some("amber".into()),
            audience: Some(vec!["org:bob-bank".into(), "person:carol-bank/jdoe".into()]),
            title: Some("t".into()),
            ..Default::default()
        }
        .into_statement("acme", "2026-11-25T12:00:00Z".into())
        .unwrap()
    }

    #[test]
    fn the_summary_reads_like_a_report() {
        let mut s = typosquat();
        // Received statements were checked leniently: a reference that is
        // not http(s) is text, never a link.
        if let Body::Indicator(i) = &mut s.body {
            i.references.push("javascript:alert(1)".into());
        }
        let named = vec!["person:carol-bank/jdoe".to_owned()];
        let out = summary(&s, &Audience::NamedUs(&named), 0).into_string();
        for want in [
            "<code id=\"observable\">pkg:npm/axois</code> <button class=\"copy\" type=\"button\" data-copy=\"observable\">Copy</button>",
            "typosquat",
            "<code id=\"imitates\">pkg:npm/axios</code>",
            "<li><code>&gt;=1.1.0 &lt;1.2.0</code></li>",
            "<a href=\"https://example.org/report\" rel=\"noopener noreferrer nofollow\">https://example.org/report</a>",
            "<span class=\"value\">javascript:alert(1)</span>",
            "from 2026-11-25T12:00:00Z until 2027-01-01T00:00:00Z",
            "shared with you (carol-bank/jdoe)",
        ] {
            assert!(out.contains(want), "{want} in {out}");
        }
        // The commitments are not what a person reads.
        assert!(!out.contains(&s.audience[0]), "{out}");
        assert!(!out.contains("null"));
        let clear = vec!["org:bob-bank".to_owned(), "group:payments".to_owned()];
        let out = summary(&s, &Audience::Clear(&clear), 2).into_string();
        assert!(
            out.contains("only: bob-bank, sharing group payments"),
            "{out}"
        );
        assert!(out.contains("id=\"observable-2\""), "{out}");
        let out = summary(&s, &Audience::Own, 0).into_string();
        assert!(out.contains("2 named recipient(s)"), "{out}");
    }

    #[test]
    fn json_leaves_out_nulls() {
        let v = serde_json::json!({"a": null, "b": {"c": null}, "d": [], "e": 1});
        let out = json_html(&v).into_string();
        assert!(!out.contains("null"), "{out}");
        assert!(!out.contains("<dt>a</dt>"), "{out}");
        assert!(
            out.contains("<dt>b</dt><dd><span class=\"muted\">(none)</span>"),
            "{out}"
        );
    }

    #[test]
    fn hostile_entries_stay_text() {
        let h = hostile::all();
        let s = typosquat();
        let entries = vec![h.clone(), format!("org:{h}")];
        for a in [Audience::NamedUs(&entries), Audience::Clear(&entries)] {
            hostile::assert_shown_inert(&summary(&s, &a, 0).into_string());
        }
        assert_eq!(entry_text(&h), h);
    }
}
