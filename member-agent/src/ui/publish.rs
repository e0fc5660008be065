//! Publishing from the console: an indicator form (TLP and audience
//! pickers, anonymous toggle, a preview of who will receive it) and the
//! coordinators' bulletin composer. Both go through `publish::publish` and
//! `publish::publish_bulletin`, the code path of `member-agent publish` and
//! `bulletin`, so the statement is signed with this member's key here.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use isac_core::tlp::AudienceRef;
use isac_core::Tlp;
use maud::{html, Markup};

use super::feed::SEVERITIES;
use super::html::{self, Form};
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

fn tlp_radios(name_prefix: &str, selected: &str) -> Markup {
    html! {
        @for (value, meaning) in LEVELS {
            @let id = format!("{name_prefix}-tlp-{}", value.replace('+', "-"));
            div.radio {
                input type="radio" name="tlp" id=(id) value=(value) required checked[value == selected];
                label for=(id) { (html::tlp_label(value)) " " span.muted { (meaning) } }
            }
        }
    }
}

fn audience_picker(prefix: &str, form: &Form, orgs: &[(String, String)], own: &str) -> Markup {
    let chosen = form.all("audience");
    html! {
        fieldset.audience id={ (prefix) "-audience" } {
            legend { "Audience (AMBER, AMBER+STRICT, RED)" }
            @if orgs.is_empty() {
                p.muted { "No key directory held yet: run " code { "member-agent sync" } " once." }
            }
            @for (id, name) in orgs {
                @let entry = format!("org:{id}");
                @let input_id = format!("{prefix}-aud-{}", html::urlenc(id));
                div.check {
                    input type="checkbox" name="audience" id=(input_id) value=(entry) checked[chosen.contains(&entry)];
                    label for=(input_id) {
                        @if name.is_empty() || name == id {
                            (id)
                        } @else {
                            (name) " " span.muted { (id) }
                        }
                        @if id == own { " (you)" }
                    }
                }
            }
            label for={ (prefix) "-aud-other" } {
                "Sharing groups and people "
                span.muted { "group:NAME, person:ORG_ID/PERSON_ID; comma or line separated" }
            }
            input id={ (prefix) "-aud-other" } name="audience_other" value=(form.get("audience_other")) spellcheck="false";
        }
    }
}

/// Both forms; `form` is what the analyst sent (kept after a refusal),
/// `own` this member's org id.
fn form_html(own: &str, csrf: &str, form: &Form, orgs: &[(String, String)]) -> Markup {
    let or = |name: &str, default: &'static str| -> String {
        match form.get(name) {
            "" => default.to_owned(),
            v => v.to_owned(),
        }
    };
    html! {
        section aria-labelledby="ind-h" {
            h2 #ind-h { "Indicator" }
            form.stack.publish #publish-form method="post" action="/publish" data-preview="preview" {
                (html::csrf_input(csrf))
                label for="kind" { "Kind" }
                select #kind name="kind" { (html::options(&KINDS, form.get("kind"))) }
                label for="value" {
                    "Observable "
                    span.muted { "purl, sha256/sha512, repository URL, platform:username, domain/IP/URL, or CVE/GHSA/OSV id" }
                }
                input #value name="value" value=(form.get("value")) required spellcheck="false";
                label for="extra" {
                    "Versions, commit or affected purls "
                    span.muted { "optional; one per line (package: version ranges; artifact: its purl; repository: commit or tag; vulnerability: affected purls)" }
                }
                textarea #extra name="extra" rows="2" spellcheck="false" { (form.get("extra")) }
                label for="title" { "Title" }
                input #title name="title" value=(form.get("title")) required;
                label for="description" { "Description" }
                textarea #description name="description" rows="3" { (form.get("description")) }
                label for="severity" { "Severity" }
                select #severity name="severity" { (html::options(&SEVERITIES[1..], &or("severity", "medium"))) }
                label for="confidence" { "Confidence (0-100)" }
                input #confidence name="confidence" type="number" min="0" max="100" value=(or("confidence", "50"));
                label for="labels" { "Labels " span.muted { "comma separated" } }
                input #labels name="labels" value=(form.get("labels"));
                label for="references" { "References " span.muted { "URLs, one per line" } }
                textarea #references name="references" rows="2" spellcheck="false" { (form.get("references")) }
                fieldset.tlp-pick {
                    legend { "TLP 2.0 label" }
                    (tlp_radios("ind", form.get("tlp")))
                }
                (audience_picker("ind", form, orgs, own))
                div.check {
                    input type="checkbox" #anonymous name="anonymous" value="1" checked[!form.get("anonymous").is_empty()];
                    label for="anonymous" {
                        "Publish anonymously "
                        span.muted { "(the hub verifies your signature, then re-signs as \"anonymous member\")" }
                    }
                }
                div.check {
                    input type="checkbox" #no_forward name="no_forward" value="1" checked[!form.get("no_forward").is_empty()];
                    label for="no_forward" {
                        "Keep it at this hub "
                        span.muted { "(signed: never forwarded to peer hubs)" }
                    }
                }
                (scrub_choices("ind", form))
                h3 #preview-h { "Who will receive it" }
                output #preview for="publish-form" aria-live="polite" .preview { (preview_text(form, orgs)) }
                button type="submit" #publish { "Sign and publish" }
            }
        }
        section aria-labelledby="bul-h" {
            h2 #bul-h {
                "Bulletin "
                span.muted { "(coordinators; the hub refuses others)" }
            }
            form.stack #bulletin-form method="post" action="/bulletin" {
                (html::csrf_input(csrf))
                label for="b-title" { "Title" }
                input #b-title name="title" required;
                label for="b-body" { "Text" }
                textarea #b-body name="body" rows="5" required {}
                label for="b-severity" { "Severity" }
                select #b-severity name="severity" { (html::options(&SEVERITIES[1..], "high")) }
                label for="b-incident" {
                    "Incident reference "
                    span.muted { "optional, e.g. INC-2026-042" }
                }
                input #b-incident name="incident";
                label for="b-related" {
                    "Related indicator ids "
                    span.muted { "optional, comma separated" }
                }
                input #b-related name="related" spellcheck="false";
                fieldset.tlp-pick {
                    legend { "TLP 2.0 label" }
                    (tlp_radios("bul", ""))
                }
                (audience_picker("bul", &Form::default(), orgs, own))
                (scrub_choices("bul", &Form::default()))
                button type="submit" #publish-bulletin { "Sign and broadcast" }
            }
        }
    }
}

/// (org id, org name) for every organisation in the held key directory.
fn orgs(agent: &crate::Agent) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = super::held_directory(agent)
        .map(|d| {
            d.keys
                .iter()
                // The hub's anonymisation, attestation and log keys are not
                // audiences.
                .filter(|k| {
                    k.org_id != isac_core::stix::ANONYMOUS_ORG_ID
                        && k.org_id != isac_core::statement::HUB_ATTESTATION_ORG
                        && k.org_id != isac_core::names::LOG_ORG
                })
                .map(|k| (k.org_id.clone(), k.org_name.clone()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// The publish page: `top` (a result or refusal) above both forms.
fn render(c: &Console, auth: &Authed, status: StatusCode, top: Markup, form: &Form) -> Response {
    let own = c.agent().org_id();
    let body = html! {
        (top)
        (form_html(own, &auth.csrf, form, &orgs(c.agent())))
    };
    html_response(
        status,
        html::page("Publish", "/publish", own, &auth.csrf, body),
    )
}

pub async fn form(State(c): State<Console>, Extension(auth): Extension<Authed>) -> Response {
    render(&c, &auth, StatusCode::OK, html! {}, &Form::default())
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
        no_forward: (!form.get("no_forward").is_empty()).then_some(true),
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

fn published_notice(what: &str, p: &crate::publish::Published, who: &[String]) -> Markup {
    html! {
        div.notice.notice-ok role="status" #published {
            p {
                (what) " signed with your key and published: id "
                a href={ "/item/" (html::urlenc(&p.id)) } { code { (p.id) } }
                ", revision " (p.revision)
                @if p.duplicate { " (already held by the hub)" }
                ". It appears in the feed when the sync daemon receives it back."
            }
            @if !who.is_empty() {
                p.preview { (who.join("\n")) }
            }
            @if !p.notes.is_empty() {
                p.preview #scrub-notes { (p.notes.join("\n")) }
            }
        }
    }
}

/// What to do when the scan before signing finds personal data, internal
/// addresses or secrets, or a benign observable: the same three choices as
/// `publish` (refuse and show them, `--redact`, `--allow`), and
/// `--force-benign`.
fn scrub_choices(prefix: &str, form: &Form) -> Markup {
    let picked = match form.get("scrub") {
        "redact" => "redact",
        "allow" => "allow",
        _ => "refuse",
    };
    let choices = [
        ("refuse", "Stop and show me what the scan finds"),
        (
            "redact",
            "Replace findings with placeholders such as [email], then sign",
        ),
        (
            "allow",
            "Sign as written (the hub's audit log records the override)",
        ),
    ];
    html! {
        fieldset.scrub-pick {
            legend { "Before signing: personal data, internal addresses, secrets" }
            @for (value, text) in choices {
                div.check {
                    input type="radio" id={ (prefix) "-scrub-" (value) } name="scrub" value=(value) checked[picked == value];
                    label for={ (prefix) "-scrub-" (value) } { (text) }
                }
            }
            div.check {
                input type="checkbox" id={ (prefix) "-force-benign" } name="force_benign" value="1" checked[!form.get("force_benign").is_empty()];
                label for={ (prefix) "-force-benign" } {
                    "Publish even if the observable is on a benign list "
                    span.muted { "(public DNS resolvers, registries, CDNs, documentation ranges, popular packages)" }
                }
            }
        }
    }
}

/// The choice a form makes (see [`scrub_choices`]).
fn scrub_choice(form: &Form) -> crate::scrub::Choice {
    crate::scrub::Choice {
        redact: form.get("scrub") == "redact",
        allow: if form.get("scrub") == "allow" {
            isac_scrub::Kind::ALL.to_vec()
        } else {
            Vec::new()
        },
        force_benign: !form.get("force_benign").is_empty(),
    }
}

/// The form again with why it was not published (status and text from
/// the one mapping, `error::classify`).
fn refused(e: &AgentError) -> (StatusCode, Markup) {
    // The scan's findings, inline, one a line, above the three choices.
    if let AgentError::Usage(m) = e {
        if let Some(list) = m.strip_prefix("nothing signed or sent: ") {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                html! {
                    div class="notice notice-error" role="alert" #scrub-findings {
                        p { "Not signed, nothing sent: " (list.lines().next().unwrap_or("")) }
                        ul {
                            @for l in list.lines().skip(1).filter(|l| l.starts_with("  ")) {
                                li { code { (l.trim()) } }
                            }
                        }
                        p { "Choose under \"Before signing\": replace them with placeholders, sign as written, or edit the text." }
                    }
                },
            );
        }
    }
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
        Ok(d) => crate::publish::publish_with(c.agent(), d, &scrub_choice(&form)).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => render(
            &c,
            &auth,
            StatusCode::OK,
            published_notice("Indicator", &p, &who),
            &Form::default(),
        ),
        Err(e) => {
            let (status, notice) = refused(&e);
            render(&c, &auth, status, notice, &form)
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
    match crate::publish::publish_bulletin_with(c.agent(), draft, &scrub_choice(&form)).await {
        Ok(p) => render(
            &c,
            &auth,
            StatusCode::OK,
            published_notice("Bulletin", &p, &who),
            &Form::default(),
        ),
        Err(e) => {
            let (status, notice) = refused(&e);
            render(&c, &auth, status, notice, &Form::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::html::hostile;
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
&audience=org%3Abob-bank&audience_other=group%3Apayments&anonymous=1&no_forward=1&labels=a%2Cb",
        );
        let d = draft_from(&f).unwrap();
        assert_eq!(d.purl.as_deref(), Some("pkg:npm/evil@1.0.0"));
        assert_eq!(d.versions.unwrap(), [">=1.0.0 <1.0.5", "2.0.0"]);
        assert_eq!(d.audience.unwrap(), ["org:bob-bank", "group:payments"]);
        assert_eq!(d.anonymous, Some(true));
        assert_eq!(d.no_forward, Some(true));
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

    #[test]
    fn the_form_with_a_lenient_only_purl_is_refused() {
        use crate::draft::tests::{refused_for, LENIENT_ONLY};
        for (bad, why) in LENIENT_ONLY {
            let value = bad
                .replace(':', "%3A")
                .replace('/', "%2F")
                .replace('@', "%40");
            let form = Form::parse(&format!("kind=package&value={value}&title=t&tlp=green"));
            let d = draft_from(&form).unwrap();
            assert_eq!(d.purl.as_deref(), Some(bad));
            let e = d
                .into_statement("acme", "2026-11-25T12:00:00Z".into())
                .unwrap_err();
            refused_for(e, "purl", why);
        }
    }

    #[test]
    fn the_publish_page_keeps_hostile_input_as_text() {
        let h = hostile::all();
        let mut fields: Vec<(String, String)> = [
            "kind",
            "value",
            "extra",
            "title",
            "description",
            "severity",
            "confidence",
            "labels",
            "references",
            "tlp",
            "audience_other",
            "anonymous",
            "no_forward",
        ]
        .iter()
        .map(|k| (k.to_string(), h.clone()))
        .collect();
        fields.push(("references".into(), "javascript:alert(1)".into()));
        fields.push(("audience".into(), format!("org:{h}")));
        let form = Form(fields);
        let orgs = vec![(h.clone(), h.clone()), ("bob-bank".to_owned(), h.clone())];
        let page = form_html(&h, &h, &form, &orgs).into_string();
        hostile::assert_shown_inert(&page);
        // What was sent comes back inside the fields, as text.
        for id in ["extra", "description", "references"] {
            let open = format!("<textarea id=\"{id}\"");
            let at = page.find(&open).expect(id);
            let end = at + page[at..].find("</textarea>").unwrap();
            assert!(page[at..end].contains(&hostile::escaped(&h)), "{id}");
        }
        assert!(page.contains(&format!(
            "<input id=\"value\" name=\"value\" value=\"{}\"",
            hostile::escaped(&h)
        )));
        // The hostile org is checked (it was sent) and marked as ours; so
        // are the anonymous and no-forward boxes (sent non-empty); the other
        // two are each form's default scan choice.
        assert_eq!(page.matches(" checked").count(), 5, "{page}");
        assert_eq!(page.matches("value=\"refuse\" checked").count(), 2);
        assert!(page.contains(" (you)</label>"));
        let published = crate::publish::Published {
            id: h.clone(),
            revision: 2,
            duplicate: true,
            notes: vec![],
        };
        let notice = published_notice(&h, &published, &[h.clone(), h.clone()]).into_string();
        hostile::assert_shown_inert(&notice);
        assert!(notice.contains("href=\"/item/%3Cscript%3E"), "{notice}");
    }
}
