//! Publishing from the console: an indicator form (TLP and audience
//! pickers, anonymous toggle, a preview of who will receive it) and the
//! coordinators' bulletin composer. Both go through `publish::publish` and
//! `publish::publish_bulletin`, the code path of `member-agent publish` and
//! `bulletin`, so the statement is signed with this member's key here.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use isac_core::tlp::AudienceRef;
use isac_core::Tlp;

use super::feed::SEVERITIES;
use super::html::{self, esc, Form};
use super::{html_response, Authed, Console};
use crate::draft::{BulletinDraft, IndicatorDraft};
use crate::error::AgentError;

const KINDS: [(&str, &str); 6] = [
    ("package", "package (purl)"),
    ("artifact", "artifact (sha256 or sha512)"),
    ("repository", "repository (URL)"),
    ("account", "account (platform:username)"),
    ("network", "network (domain, IP or URL)"),
    ("vulnerability", "vulnerability (CVE, GHSA or OSV id)"),
];

/// TLP levels with what each means, for the radio buttons.
const LEVELS: [(&str, &str); 5] = [
    ("clear", "no limit on disclosure"),
    ("green", "the community, not public"),
    (
        "amber",
        "named orgs and their clients, need to know (all members if none named)",
    ),
    ("amber+strict", "named orgs only (audience required)"),
    ("red", "named people only (audience required)"),
];

/// The audience entries a form names: org checkboxes plus free entries.
fn audience(form: &Form) -> Vec<String> {
    let mut out = form.all("audience");
    for e in form
        .get("audience_other")
        .split([',', '\n', ' ', '\r'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        out.push(e.to_owned());
    }
    out
}

/// Who will receive an item at `tlp` with `entries`, as sentences; an
/// error names what the hub would refuse. `orgs` are (id, name) from the
/// key directory.
pub fn recipients(
    tlp: &str,
    entries: &[String],
    anonymous: bool,
    orgs: &[(String, String)],
) -> Result<Vec<String>, String> {
    let tlp: Tlp = tlp
        .parse()
        .map_err(|e: isac_core::tlp::UnknownTlp| e.to_string())?;
    let refs = entries
        .iter()
        .map(|e| e.parse::<AudienceRef>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    isac_core::audience::check_audience_rules(tlp, &refs).map_err(|e| e.to_string())?;
    let name = |org: &str| match orgs.iter().find(|(id, _)| id == org) {
        Some((id, n)) if !n.is_empty() && n != id => format!("{n} ({id})"),
        _ => org.to_owned(),
    };
    let named: Vec<String> = refs
        .iter()
        .map(|r| match r {
            AudienceRef::Org(o) => format!("organisation {}", name(o)),
            AudienceRef::Group(g) => format!("every member of sharing group {g}"),
            AudienceRef::Person { org, person } => {
                format!(
                    "{person} at {} (and that org's agents acting for them)",
                    name(org)
                )
            }
        })
        .collect();
    let mut out = match tlp {
        Tlp::Clear => vec!["Every member of the community; TLP:CLEAR may also be shared publicly.".to_owned()],
        Tlp::Green => vec!["Every member of the community (not public).".to_owned()],
        Tlp::Amber if named.is_empty() => vec![
            "Every member (no audience named), for their organisations and clients on a need-to-know basis.".to_owned(),
        ],
        Tlp::Amber => {
            let mut v = vec!["Only:".to_owned()];
            v.extend(named.iter().map(|n| format!("• {n}")));
            v.push("They may share it with their clients on a need-to-know basis. No one else can tell it exists.".to_owned());
            v
        }
        Tlp::AmberStrict | Tlp::Red => {
            let mut v = vec!["Only:".to_owned()];
            v.extend(named.iter().map(|n| format!("• {n}")));
            v.push("No one else can tell it exists; recipients never learn who else was named.".to_owned());
            v
        }
    };
    out.push("Your own agents keep it (the source always sees its items).".to_owned());
    if anonymous {
        out.push("Recipients see \"anonymous member\"; the hub keeps your signed original for its audit trail.".to_owned());
    }
    Ok(out)
}

fn preview_text(form: &Form, orgs: &[(String, String)]) -> String {
    let tlp = form.get("tlp");
    if tlp.is_empty() {
        return "Pick a TLP level to see who will receive it.".to_owned();
    }
    match recipients(
        tlp,
        &audience(form),
        !form.get("anonymous").is_empty(),
        orgs,
    ) {
        Ok(lines) => lines.join("\n"),
        Err(e) => format!("Will be refused: {e}"),
    }
}

fn tlp_radios(name_prefix: &str, selected: &str) -> String {
    let mut out = String::new();
    for (value, meaning) in LEVELS {
        let checked = if value == selected { " checked" } else { "" };
        let id = format!("{name_prefix}-tlp-{}", value.replace('+', "-"));
        let _ = write!(
            out,
            "<div class=\"radio\"><input type=\"radio\" name=\"tlp\" id=\"{id}\" value=\"{value}\" required{checked}>\
<label for=\"{id}\">{label} <span class=\"muted\">{meaning}</span></label></div>",
            label = html::tlp_label(value),
        );
    }
    out
}

fn audience_picker(prefix: &str, form: &Form, orgs: &[(String, String)], own: &str) -> String {
    let chosen = form.all("audience");
    let mut out = format!(
        "<fieldset class=\"audience\" id=\"{prefix}-audience\"><legend>Audience (AMBER, AMBER+STRICT, RED)</legend>"
    );
    if orgs.is_empty() {
        out.push_str("<p class=\"muted\">No key directory held yet: run <code>member-agent sync</code> once.</p>");
    }
    for (id, name) in orgs {
        let entry = format!("org:{id}");
        let checked = if chosen.contains(&entry) {
            " checked"
        } else {
            ""
        };
        let input_id = format!("{prefix}-aud-{}", html::urlenc(id));
        let label = if name.is_empty() || name == id {
            esc(id)
        } else {
            format!("{} <span class=\"muted\">{}</span>", esc(name), esc(id))
        };
        let you = if id == own { " (you)" } else { "" };
        let _ = write!(
            out,
            "<div class=\"check\"><input type=\"checkbox\" name=\"audience\" id=\"{input_id}\" value=\"{}\"{checked}>\
<label for=\"{input_id}\">{label}{you}</label></div>",
            esc(&entry)
        );
    }
    let _ = write!(
        out,
        "<label for=\"{prefix}-aud-other\">Sharing groups and people <span class=\"muted\">group:NAME, person:ORG_ID/PERSON_ID; comma or line separated</span></label>\
<input id=\"{prefix}-aud-other\" name=\"audience_other\" value=\"{}\" spellcheck=\"false\"></fieldset>",
        esc(form.get("audience_other"))
    );
    out
}

fn form_html(c: &Console, auth: &Authed, form: &Form, orgs: &[(String, String)]) -> String {
    let own = c.agent().org_id();
    let mut b = String::new();
    let _ = write!(
        b,
        "<section aria-labelledby=\"ind-h\"><h2 id=\"ind-h\">Indicator</h2>\
<form method=\"post\" action=\"/publish\" id=\"publish-form\" class=\"stack publish\" data-preview=\"preview\">{csrf}\
<label for=\"kind\">Kind</label><select id=\"kind\" name=\"kind\">{kinds}</select>\
<label for=\"value\">Observable <span class=\"muted\">purl, sha256/sha512, repository URL, platform:username, domain/IP/URL, or CVE/GHSA/OSV id</span></label>\
<input id=\"value\" name=\"value\" value=\"{value}\" required spellcheck=\"false\">\
<label for=\"extra\">Versions, commit or affected purls <span class=\"muted\">optional; one per line (package: version ranges; artifact: its purl; repository: commit or tag; vulnerability: affected purls)</span></label>\
<textarea id=\"extra\" name=\"extra\" rows=\"2\" spellcheck=\"false\">{extra}</textarea>\
<label for=\"title\">Title</label><input id=\"title\" name=\"title\" value=\"{title}\" required>\
<label for=\"description\">Description</label><textarea id=\"description\" name=\"description\" rows=\"3\">{description}</textarea>\
<label for=\"severity\">Severity</label><select id=\"severity\" name=\"severity\">{sev}</select>\
<label for=\"confidence\">Confidence (0-100)</label><input id=\"confidence\" name=\"confidence\" type=\"number\" min=\"0\" max=\"100\" value=\"{confidence}\">\
<label for=\"labels\">Labels <span class=\"muted\">comma separated</span></label><input id=\"labels\" name=\"labels\" value=\"{labels}\">\
<label for=\"references\">References <span class=\"muted\">URLs, one per line</span></label><textarea id=\"references\" name=\"references\" rows=\"2\" spellcheck=\"false\">{references}</textarea>\
<fieldset class=\"tlp-pick\"><legend>TLP 2.0 label</legend>{radios}</fieldset>\
{audience}\
<div class=\"check\"><input type=\"checkbox\" id=\"anonymous\" name=\"anonymous\" value=\"1\"{anon}>\
<label for=\"anonymous\">Publish anonymously <span class=\"muted\">(the hub verifies your signature, then re-signs as \"anonymous member\")</span></label></div>\
<h3 id=\"preview-h\">Who will receive it</h3><output id=\"preview\" for=\"publish-form\" aria-live=\"polite\" class=\"preview\">{preview}</output>\
<button type=\"submit\" id=\"publish\">Sign and publish</button></form></section>",
        csrf = html::csrf_input(&auth.csrf),
        kinds = html::options(&KINDS, form.get("kind")),
        value = esc(form.get("value")),
        extra = esc(form.get("extra")),
        title = esc(form.get("title")),
        description = esc(form.get("description")),
        sev = html::options(&SEVERITIES[1..], if form.get("severity").is_empty() { "medium" } else { form.get("severity") }),
        confidence = esc(if form.get("confidence").is_empty() { "50" } else { form.get("confidence") }),
        labels = esc(form.get("labels")),
        references = esc(form.get("references")),
        radios = tlp_radios("ind", form.get("tlp")),
        audience = audience_picker("ind", form, orgs, own),
        anon = if form.get("anonymous").is_empty() { "" } else { " checked" },
        preview = esc(&preview_text(form, orgs)),
    );
    let _ = write!(
        b,
        "<section aria-labelledby=\"bul-h\"><h2 id=\"bul-h\">Bulletin <span class=\"muted\">(coordinators; the hub refuses others)</span></h2>\
<form method=\"post\" action=\"/bulletin\" id=\"bulletin-form\" class=\"stack\">{csrf}\
<label for=\"b-title\">Title</label><input id=\"b-title\" name=\"title\" required>\
<label for=\"b-body\">Text</label><textarea id=\"b-body\" name=\"body\" rows=\"5\" required></textarea>\
<label for=\"b-severity\">Severity</label><select id=\"b-severity\" name=\"severity\">{sev}</select>\
<label for=\"b-incident\">Incident reference <span class=\"muted\">optional, e.g. INC-2026-042</span></label><input id=\"b-incident\" name=\"incident\">\
<label for=\"b-related\">Related indicator ids <span class=\"muted\">optional, comma separated</span></label><input id=\"b-related\" name=\"related\" spellcheck=\"false\">\
<fieldset class=\"tlp-pick\"><legend>TLP 2.0 label</legend>{radios}</fieldset>{audience}\
<button type=\"submit\" id=\"publish-bulletin\">Sign and broadcast</button></form></section>",
        csrf = html::csrf_input(&auth.csrf),
        sev = html::options(&SEVERITIES[1..], "high"),
        radios = tlp_radios("bul", ""),
        audience = audience_picker("bul", &Form::default(), orgs, own),
    );
    b
}

/// (org id, org name) for every organisation in the held key directory.
fn orgs(agent: &crate::Agent) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = super::held_directory(agent)
        .map(|d| {
            d.keys
                .iter()
                // The hub's anonymisation and attestation keys are not audiences.
                .filter(|k| {
                    k.org_id != isac_core::stix::ANONYMOUS_ORG_ID
                        && k.org_id != isac_core::statement::HUB_ATTESTATION_ORG
                })
                .map(|k| (k.org_id.clone(), k.org_name.clone()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

fn render(c: &Console, auth: &Authed, status: StatusCode, top: &str, form: &Form) -> Response {
    let orgs = orgs(c.agent());
    let body = format!("{top}{}", form_html(c, auth, form, &orgs));
    html_response(
        status,
        html::page("Publish", "/publish", c.agent().org_id(), &auth.csrf, &body),
    )
}

pub async fn form(State(c): State<Console>, Extension(auth): Extension<Authed>) -> Response {
    render(&c, &auth, StatusCode::OK, "", &Form::default())
}

/// The preview as plain text (the page's script shows it with textContent).
pub async fn preview(State(c): State<Console>, RawQuery(q): RawQuery) -> Response {
    let form = Form::parse(q.as_deref().unwrap_or(""));
    let text = preview_text(&form, &orgs(c.agent()));
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

fn lines(s: &str, seps: &[char]) -> Option<Vec<String>> {
    let v: Vec<String> = s
        .split(seps)
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect();
    (!v.is_empty()).then_some(v)
}

/// The form as the draft `member-agent publish` builds from its flags.
pub fn draft_from(form: &Form) -> Result<IndicatorDraft, AgentError> {
    let kind = form.get("kind").to_owned();
    let value = form.opt("value");
    let extra = lines(form.get("extra"), &['\n', '\r']);
    let mut d = IndicatorDraft {
        kind: Some(kind.clone()),
        tlp: form.opt("tlp"),
        audience: Some(audience(form)).filter(|a| !a.is_empty()),
        title: form.opt("title"),
        description: form.opt("description"),
        severity: form.opt("severity"),
        confidence: match form.get("confidence") {
            "" => None,
            n => Some(n.parse().map_err(|_| {
                AgentError::Usage(format!("confidence `{n}` is not a number from 0 to 100"))
            })?),
        },
        labels: lines(form.get("labels"), &[',', '\n', '\r']),
        references: lines(form.get("references"), &['\n', '\r', ' ']),
        anonymous: (!form.get("anonymous").is_empty()).then_some(true),
        ..Default::default()
    };
    let first_extra = extra.as_ref().and_then(|e| e.first().cloned());
    match kind.as_str() {
        "package" => {
            d.purl = value;
            d.versions = extra;
        }
        "artifact" => {
            let v = value.unwrap_or_default();
            if v.len() == 128 {
                d.sha512 = Some(v);
            } else {
                d.sha256 = Some(v);
            }
            d.purl = first_extra;
        }
        "repository" => {
            d.repo_url = value;
            match first_extra {
                Some(x) if x.len() == 40 && x.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    d.commit = Some(x)
                }
                Some(x) => d.tag = Some(x),
                None => {}
            }
        }
        "account" => d.account = value,
        "network" => {
            let v = value.unwrap_or_default();
            if v.parse::<std::net::IpAddr>().is_ok() {
                d.ip = Some(v);
            } else if v.contains("://") {
                d.url = Some(v);
            } else {
                d.domain = Some(v);
            }
        }
        "vulnerability" => {
            d.vuln_id = value;
            d.affected_purls = extra;
        }
        other => {
            return Err(AgentError::Usage(format!("unknown kind `{other}`")));
        }
    }
    Ok(d)
}

fn published_notice(what: &str, p: &crate::publish::Published, who: &[String]) -> String {
    let mut s = format!(
        "<div class=\"notice notice-ok\" role=\"status\" id=\"published\"><p>{what} signed with your key and published: \
id <a href=\"/item/{idu}\"><code>{id}</code></a>, revision {rev}{dup}. \
It appears in the feed when the sync daemon receives it back.</p>",
        idu = html::urlenc(&p.id),
        id = esc(&p.id),
        rev = p.revision,
        dup = if p.duplicate { " (already held by the hub)" } else { "" },
    );
    if !who.is_empty() {
        s.push_str("<p class=\"preview\">");
        s.push_str(&esc(&who.join("\n")));
        s.push_str("</p>");
    }
    s.push_str("</div>");
    s
}

/// The form again with why it was not published (status and text from
/// the one mapping, `error::classify`).
fn refused(e: &AgentError) -> (StatusCode, String) {
    let shown = super::error::classify("Not published", e);
    (shown.status, html::notice("error", &shown.message))
}

pub async fn submit(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&String::from_utf8_lossy(&body));
    if let Some(r) = auth.check(&form) {
        return r;
    }
    let orgs = orgs(c.agent());
    let who = recipients(
        form.get("tlp"),
        &audience(&form),
        !form.get("anonymous").is_empty(),
        &orgs,
    )
    .unwrap_or_default();
    let result = match draft_from(&form) {
        Ok(d) => crate::publish::publish(c.agent(), d).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => render(
            &c,
            &auth,
            StatusCode::OK,
            &published_notice("Indicator", &p, &who),
            &Form::default(),
        ),
        Err(e) => {
            let (status, notice) = refused(&e);
            render(&c, &auth, status, &notice, &form)
        }
    }
}

pub async fn bulletin(
    State(c): State<Console>,
    Extension(auth): Extension<Authed>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&String::from_utf8_lossy(&body));
    if let Some(r) = auth.check(&form) {
        return r;
    }
    let draft = BulletinDraft {
        tlp: form.opt("tlp"),
        audience: audience(&form),
        title: form.get("title").to_owned(),
        body: form
            .0
            .iter()
            .find(|(k, _)| k == "body")
            .map(|(_, v)| v.replace("\r\n", "\n"))
            .unwrap_or_default(),
        severity: form.opt("severity"),
        incident_id: form.opt("incident"),
        related: lines(form.get("related"), &[',', ' ', '\n']).unwrap_or_default(),
    };
    let who =
        recipients(form.get("tlp"), &draft.audience, false, &orgs(c.agent())).unwrap_or_default();
    match crate::publish::publish_bulletin(c.agent(), draft).await {
        Ok(p) => render(
            &c,
            &auth,
            StatusCode::OK,
            &published_notice("Bulletin", &p, &who),
            &Form::default(),
        ),
        Err(e) => {
            let (status, notice) = refused(&e);
            render(&c, &auth, status, &notice, &Form::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_follows_the_tlp_rules() {
        let orgs = vec![("bob-bank".to_owned(), "Bob Bank".to_owned())];
        let r = recipients("amber", &["org:bob-bank".into()], false, &orgs).unwrap();
        assert!(r.iter().any(|l| l.contains("Bob Bank (bob-bank)")), "{r:?}");
        assert!(recipients("amber", &[], false, &orgs).unwrap()[0].contains("Every member"));
        assert!(recipients("green", &["org:bob-bank".into()], false, &orgs)
            .unwrap_err()
            .contains("audience only applies"));
        assert!(recipients("amber+strict", &[], false, &orgs).is_err());
        assert!(recipients("red", &["org:bob-bank".into()], false, &orgs).is_err());
        let r = recipients("red", &["person:bob-bank/jdoe".into()], true, &orgs).unwrap();
        assert!(r.iter().any(|l| l.contains("jdoe at Bob Bank")));
        assert!(r.iter().any(|l| l.contains("anonymous member")));
        assert!(recipients("white", &[], false, &orgs).is_err());
        assert!(recipients("amber", &["bob".into()], false, &orgs).is_err());
    }

    #[test]
    fn the_form_becomes_the_same_draft_as_the_flags() {
        let f = Form::parse(
            "kind=package&value=pkg%3Anpm%2Fevil%401.0.0&extra=%3E%3D1.0.0+%3C1.0.5%0A2.0.0&title=t&tlp=amber\
&audience=org%3Abob-bank&audience_other=group%3Apayments&anonymous=1&labels=a%2Cb",
        );
        let d = draft_from(&f).unwrap();
        assert_eq!(d.purl.as_deref(), Some("pkg:npm/evil@1.0.0"));
        assert_eq!(d.versions.unwrap(), [">=1.0.0 <1.0.5", "2.0.0"]);
        assert_eq!(d.audience.unwrap(), ["org:bob-bank", "group:payments"]);
        assert_eq!(d.anonymous, Some(true));
        assert_eq!(d.labels.unwrap(), ["a", "b"]);
        let s = draft_from(&Form::parse(
            "kind=network&value=10.0.0.1&title=t&tlp=green",
        ))
        .unwrap()
        .into_statement("acme", "2026-11-25T12:00:00Z".into())
        .unwrap();
        assert_eq!(s.primary_value(), "10.0.0.1");
        let d = draft_from(&Form::parse(
            "kind=network&value=evil.example&title=t&tlp=green",
        ))
        .unwrap();
        assert_eq!(d.domain.as_deref(), Some("evil.example"));
        assert!(draft_from(&Form::parse("kind=bogus")).is_err());
    }
}
