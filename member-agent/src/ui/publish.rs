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
use crate::draft::{BulletinDraft, IndicatorDraft, Prepared};
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

fn audience_picker(
    prefix: &str,
    form: &Form,
    orgs: &[(String, String)],
    seen: &[String],
    own: &str,
) -> Markup {
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
            @if !seen.is_empty() {
                p.muted { "Sharing groups and people items held here were shared with:" }
                @for entry in seen {
                    @let input_id = format!("{prefix}-aud-{}", html::urlenc(entry));
                    div.check {
                        input type="checkbox" name="audience" id=(input_id) value=(entry) checked[chosen.contains(entry)];
                        label for=(input_id) { (super::report::entry_text(entry)) " " span.muted { (entry) } }
                    }
                }
            }
            label for={ (prefix) "-aud-other" } {
                "Other sharing groups and people "
                span.muted { "group:NAME, person:ORG_ID/PERSON_ID; comma or line separated" }
            }
            input id={ (prefix) "-aud-other" } name="audience_other" value=(form.get("audience_other")) spellcheck="false";
        }
    }
}

/// Threats a package indicator names, as `--threat` spells them.
const THREATS: [(&str, &str); 5] = [
    ("malicious", "malicious (the package is malware)"),
    (
        "compromised",
        "compromised (a good package with a bad release)",
    ),
    (
        "typosquat",
        "typosquat (imitates another package: name it below)",
    ),
    (
        "dependency-confusion",
        "dependency confusion (shadows an internal name)",
    ),
    ("protestware", "protestware"),
];

/// Most observables one submission takes.
pub const MAX_OBSERVABLES: usize = 100;

/// A refusal, shown next to the form field it is about (`field` is the
/// field's `name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn field_error(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// The observables pasted into the box: one per line (blanks, tabs,
/// commas and semicolons between them also separate), each kept once, in
/// order. None of them ever becomes part of the title.
pub fn observables(text: &str) -> Result<Vec<String>, FieldError> {
    let mut out: Vec<String> = Vec::new();
    for token in text
        .split(|c: char| c.is_whitespace() || c == ';')
        .map(|t| t.trim_matches(|c: char| c == ',' || c == '"' || c == '\''))
        .filter(|t| !t.is_empty())
    {
        if !out.iter().any(|o| o == token) {
            out.push(token.to_owned());
        }
        if out.len() > MAX_OBSERVABLES {
            return Err(field_error(
                "value",
                format!(
                    "at most {MAX_OBSERVABLES} observables at once; publish the rest in another go"
                ),
            ));
        }
    }
    if out.is_empty() {
        return Err(field_error("value", "name at least one observable"));
    }
    Ok(out)
}

/// Fields that belong to one kind only: (field, label, kind).
const KIND_FIELDS: [(&str, &str, &str); 8] = [
    ("versions", "Versions", "package"),
    ("imitates", "Imitates", "package"),
    ("artifact_purl", "Package of the artifact", "artifact"),
    ("filename", "File name", "artifact"),
    ("commit", "Commit", "repository"),
    ("tag", "Tag", "repository"),
    ("affected", "Affected packages", "vulnerability"),
    ("threat", "Threat", "package"),
];

/// `2027-01-31` as the start of that day in UTC; anything else as typed.
fn timestamp(s: &str) -> String {
    let b = s.as_bytes();
    let date = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && s.chars()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if date {
        format!("{s}T00:00:00Z")
    } else {
        s.to_owned()
    }
}

/// The draft for one observable, as `member-agent publish` builds it from
/// its flags; the kind's own fields (threat, imitates, versions, commit...)
/// come from their typed fields.
fn draft_for(form: &Form, kind: &str, observable: &str) -> Result<IndicatorDraft, FieldError> {
    let list = |name: &str| lines(form.get(name), &['\n', '\r']);
    let mut d = IndicatorDraft {
        kind: Some(kind.to_owned()),
        tlp: form.opt("tlp"),
        audience: Some(audience(form)).filter(|a| !a.is_empty()),
        title: form.opt("title"),
        description: form.opt("description"),
        severity: form.opt("severity"),
        confidence: match form.get("confidence") {
            "" => None,
            n => Some(n.parse().map_err(|_| {
                field_error("confidence", format!("`{n}` is not a number from 0 to 100"))
            })?),
        },
        labels: lines(form.get("labels"), &[',', '\n', '\r']),
        references: lines(form.get("references"), &['\n', '\r', ' ']),
        valid_until: form.opt("valid_until").map(|v| timestamp(&v)),
        anonymous: (!form.get("anonymous").is_empty()).then_some(true),
        no_forward: (!form.get("no_forward").is_empty()).then_some(true),
        ..Default::default()
    };
    let v = observable.to_owned();
    match kind {
        "package" => {
            d.purl = Some(v);
            d.versions = list("versions");
            d.threat = form.opt("threat");
            d.imitates = form.opt("imitates");
        }
        "artifact" => {
            if v.len() == 128 {
                d.sha512 = Some(v);
            } else {
                d.sha256 = Some(v);
            }
            d.purl = form.opt("artifact_purl");
            d.filename = form.opt("filename");
        }
        "repository" => {
            d.repo_url = Some(v);
            d.commit = form.opt("commit");
            d.tag = form.opt("tag");
        }
        "account" => d.account = Some(v),
        "network" => {
            if v.parse::<std::net::IpAddr>().is_ok() {
                d.ip = Some(v);
            } else if v.contains("://") {
                d.url = Some(v);
            } else {
                d.domain = Some(v);
            }
        }
        "vulnerability" => {
            d.vuln_id = Some(v);
            d.affected_purls = list("affected");
        }
        other => return Err(field_error("kind", format!("unknown kind `{other}`"))),
    }
    Ok(d)
}

/// The form field a refusal from the draft's validation is about: by the
/// field it names, else by the typed value it quotes, else the observable.
fn field_of(form: &Form, kind: &str, message: &str) -> &'static str {
    let m = message;
    let by_name: [(&[&str], &'static str); 14] = [
        (&["versions"], "versions"),
        (&["imitates", "typosquat"], "imitates"),
        (&["--threat"], "threat"),
        (&["--title", "title "], "title"),
        (&["description"], "description"),
        (&["confidence"], "confidence"),
        (&["tags ", "labels"], "labels"),
        (&["references"], "references"),
        (&["valid_until", "valid_from"], "valid_until"),
        (&["severity"], "severity"),
        (&["--tlp", "TLP label"], "tlp"),
        (&["audience", "TLP:RED names people"], "audience_other"),
        (&["affected_purls"], "affected"),
        (&["filename"], "filename"),
    ];
    for (needles, field) in by_name {
        if needles.iter().any(|n| m.contains(n)) {
            return field;
        }
    }
    if kind == "artifact" && m.starts_with("purl `") {
        return "artifact_purl";
    }
    for field in [
        "imitates",
        "references",
        "affected",
        "artifact_purl",
        "commit",
        "tag",
        "valid_until",
    ] {
        let quoted = |v: &str| !v.is_empty() && m.contains(&format!("`{v}`"));
        if form.get(field).lines().map(str::trim).any(quoted) || quoted(&timestamp(form.get(field)))
        {
            return field;
        }
    }
    "value"
}

/// Every statement the form asks for, validated by the draft code that
/// `publish` uses (nothing is signed here), or every refusal by field.
pub fn prepare(
    form: &Form,
    own: &str,
    created: &str,
) -> Result<Vec<(IndicatorDraft, Prepared)>, Vec<FieldError>> {
    let kind = form.get("kind");
    let mut errors: Vec<FieldError> = Vec::new();
    // A kind's own field filled in for another kind would be dropped
    // silently: say so instead.
    for (field, label, owner) in KIND_FIELDS {
        let typed = form.get(field);
        let default_threat = field == "threat" && typed == "malicious";
        if owner != kind && !typed.is_empty() && !default_threat {
            errors.push(field_error(
                field,
                format!(
                    "{label} applies to {owner} indicators only; this one is a {kind} indicator"
                ),
            ));
        }
    }
    let list = match observables(form.get("value")) {
        Ok(l) => l,
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    };
    let several = list.len() > 1;
    let mut out = Vec::new();
    for obs in &list {
        let draft = match draft_for(form, kind, obs) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                break;
            }
        };
        match draft
            .check_versions()
            .and_then(|()| draft.clone().into_prepared(own, created.to_owned()))
        {
            Ok(p) => out.push((draft, p)),
            Err(e) => {
                let text = e.to_string();
                let field = field_of(form, kind, &text);
                let message = if several && field == "value" {
                    format!("{obs}: {text}")
                } else {
                    text
                };
                errors.push(field_error(field, message));
            }
        }
    }
    let mut seen = Vec::new();
    errors.retain(|e| {
        let new = !seen.contains(e);
        seen.push(e.clone());
        new
    });
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A digest of what the form asks to sign, so that signing takes exactly
/// what was reviewed (a changed field sends the analyst back to review).
pub fn review_digest(form: &Form) -> String {
    let mut fields: Vec<&(String, String)> = form
        .0
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "step" | "reviewed"))
        .collect();
    fields.sort();
    let mut text = String::new();
    for (k, v) in fields {
        text.push_str(&format!(
            "{}={}\n",
            k.escape_default(),
            v.trim().escape_default()
        ));
    }
    isac_core::hex::encode(&openssl::sha::sha256(text.as_bytes()))
}

/// The refusal for `field`, placed right after it.
fn error_for(errors: &[FieldError], field: &str) -> Markup {
    let mine: Vec<&FieldError> = errors.iter().filter(|e| e.field == field).collect();
    html! {
        @if !mine.is_empty() {
            p.field-error id={ "err-" (field) } role="alert" {
                @for (n, e) in mine.iter().enumerate() {
                    @if n > 0 { br; }
                    (e.message)
                }
            }
        }
    }
}

fn invalid(errors: &[FieldError], field: &str) -> Option<&'static str> {
    errors.iter().any(|e| e.field == field).then_some("true")
}

/// Both forms; `form` is what the analyst sent (kept after a refusal),
/// `own` this member's org id, `errors` the refusals by field, `reviewed`
/// the digest of a form whose preview is shown (then it can be signed),
/// `coordinator` whether the bulletin composer is offered.
#[allow(clippy::too_many_arguments)]
fn form_html(
    own: &str,
    csrf: &str,
    form: &Form,
    orgs: &[(String, String)],
    seen: &[String],
    errors: &[FieldError],
    reviewed: Option<&str>,
    composer: &Composer,
) -> Markup {
    let or = |name: &str, default: &'static str| -> String {
        match form.get(name) {
            "" => default.to_owned(),
            v => v.to_owned(),
        }
    };
    let kind = or("kind", "package");
    let err = |f: &str| error_for(errors, f);
    let inv = |f: &str| invalid(errors, f);
    let desc = |f: &str| invalid(errors, f).map(|_| format!("err-{f}"));
    html! {
        section aria-labelledby="ind-h" {
            h2 #ind-h { "Indicator" }
            form.stack.publish #publish-form method="post" action="/publish" data-preview="preview" data-kind=(kind) {
                (html::csrf_input(csrf))
                label for="kind" { "Kind" }
                select #kind name="kind" { (html::options(&KINDS, &kind)) }
                (err("kind"))
                label for="value" {
                    "Observables "
                    span.muted { "one per line, or paste a list: each becomes its own indicator with the fields below (purl, sha256/sha512, repository URL, platform:username, domain/IP/URL, or CVE/GHSA/OSV id)" }
                }
                textarea #value name="value" rows="3" required spellcheck="false" aria-invalid=[inv("value")] aria-describedby=[desc("value")] { (form.get("value")) }
                (err("value"))
                fieldset.kind-fields data-for-kind="package" #fields-package {
                    legend { "Package" }
                    label for="threat" { "Threat" }
                    select #threat name="threat" aria-invalid=[inv("threat")] { (html::options(&THREATS, &or("threat", "malicious"))) }
                    (err("threat"))
                    label for="imitates" {
                        "Imitates "
                        span.muted { "typosquats: the purl of the package it imitates, e.g. pkg:npm/axios" }
                    }
                    input #imitates name="imitates" value=(form.get("imitates")) spellcheck="false" aria-invalid=[inv("imitates")] aria-describedby=[desc("imitates")];
                    (err("imitates"))
                    label for="versions" {
                        "Versions "
                        span.muted { "optional; one version or range per line, in the package's ecosystem (1.0.0, >=1.2.0 <1.2.5, ^2.1.0, ==1.4.*); empty: the purl's version, or every version" }
                    }
                    textarea #versions name="versions" rows="2" spellcheck="false" aria-invalid=[inv("versions")] aria-describedby=[desc("versions")] { (form.get("versions")) }
                    (err("versions"))
                }
                fieldset.kind-fields data-for-kind="artifact" #fields-artifact {
                    legend { "Artifact" }
                    label for="artifact_purl" { "Package it came from " span.muted { "optional purl" } }
                    input #artifact_purl name="artifact_purl" value=(form.get("artifact_purl")) spellcheck="false" aria-invalid=[inv("artifact_purl")] aria-describedby=[desc("artifact_purl")];
                    (err("artifact_purl"))
                    label for="filename" { "File name " span.muted { "optional" } }
                    input #filename name="filename" value=(form.get("filename")) spellcheck="false" aria-invalid=[inv("filename")];
                    (err("filename"))
                }
                fieldset.kind-fields data-for-kind="repository" #fields-repository {
                    legend { "Repository" }
                    label for="commit" { "Commit " span.muted { "optional, 40 hex digits" } }
                    input #commit name="commit" value=(form.get("commit")) spellcheck="false" aria-invalid=[inv("commit")] aria-describedby=[desc("commit")];
                    (err("commit"))
                    label for="tag" { "Tag " span.muted { "optional" } }
                    input #tag name="tag" value=(form.get("tag")) spellcheck="false" aria-invalid=[inv("tag")];
                    (err("tag"))
                }
                fieldset.kind-fields data-for-kind="vulnerability" #fields-vulnerability {
                    legend { "Vulnerability" }
                    label for="affected" { "Affected packages " span.muted { "optional; purls, one per line" } }
                    textarea #affected name="affected" rows="2" spellcheck="false" aria-invalid=[inv("affected")] aria-describedby=[desc("affected")] { (form.get("affected")) }
                    (err("affected"))
                }
                label for="title" { "Title" }
                input #title name="title" value=(form.get("title")) required aria-invalid=[inv("title")] aria-describedby=[desc("title")];
                (err("title"))
                label for="description" { "Description" }
                textarea #description name="description" rows="3" aria-invalid=[inv("description")] { (form.get("description")) }
                (err("description"))
                label for="severity" { "Severity" }
                select #severity name="severity" { (html::options(&SEVERITIES[1..], &or("severity", "medium"))) }
                (err("severity"))
                label for="confidence" { "Confidence (0-100)" }
                input #confidence name="confidence" type="number" min="0" max="100" value=(or("confidence", "50")) aria-invalid=[inv("confidence")];
                (err("confidence"))
                label for="valid_until" { "Valid until " span.muted { "optional; a date (2027-01-31) or RFC 3339 time; the indicator lapses then" } }
                input #valid_until name="valid_until" value=(form.get("valid_until")) spellcheck="false" aria-invalid=[inv("valid_until")] aria-describedby=[desc("valid_until")];
                (err("valid_until"))
                label for="labels" { "Labels " span.muted { "comma separated" } }
                input #labels name="labels" value=(form.get("labels")) aria-invalid=[inv("labels")];
                (err("labels"))
                label for="references" { "References " span.muted { "URLs, one per line" } }
                textarea #references name="references" rows="2" spellcheck="false" aria-invalid=[inv("references")] aria-describedby=[desc("references")] { (form.get("references")) }
                (err("references"))
                fieldset.tlp-pick {
                    legend { "TLP 2.0 label" }
                    (tlp_radios("ind", form.get("tlp")))
                    (err("tlp"))
                }
                (audience_picker("ind", form, orgs, seen, own))
                (err("audience_other"))
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
                p.actions {
                    button type="submit" name="step" value="review" #review {
                        @if reviewed.is_some() { "Review again" } @else { "Review before signing" }
                    }
                    @if let Some(digest) = reviewed {
                        input type="hidden" name="reviewed" value=(digest);
                        " "
                        button type="submit" name="step" value="sign" #publish { "Sign and publish" }
                    }
                }
            }
        }
        (bulletin_form(own, csrf, orgs, seen, composer))
    }
}

/// Whether this agent's organisation may broadcast bulletins, as far as
/// the agent can tell (the hub decides: it refuses bulletins from anyone
/// but coordinators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Composer {
    /// A bulletin of ours is held: the hub took it, so we are a coordinator.
    Coordinator,
    /// No sign of the coordinator role.
    NotShown,
}

/// The composer only for coordinators: an organisation is one when the
/// hub accepted a bulletin it signed (held, verified, in the local store).
pub fn composer_for(own_bulletins_held: u64) -> Composer {
    if own_bulletins_held > 0 {
        Composer::Coordinator
    } else {
        Composer::NotShown
    }
}

fn bulletin_form(
    own: &str,
    csrf: &str,
    orgs: &[(String, String)],
    seen: &[String],
    composer: &Composer,
) -> Markup {
    html! {
        section aria-labelledby="bul-h" {
            h2 #bul-h { "Bulletin" }
            @match composer {
                Composer::NotShown => {
                    p.muted #no-composer {
                        "Bulletins are for the ISAC's coordinators. This agent holds no bulletin your organisation signed, so it does not offer the composer; a coordinator's first bulletin goes out with "
                        code { "member-agent bulletin" }
                        ", and the composer appears here once it is back from the hub."
                    }
                },
                Composer::Coordinator => {
                    form.stack #bulletin-form method="post" action="/bulletin" {
                        (html::csrf_input(csrf))
                        label for="b-title" { "Title" }
                        input #b-title name="title" required;
                        label for="b-body" { "Text " span.muted { "Markdown: **bold**, *italic*, lists, links (http and https only); HTML is shown as text" } }
                        textarea #b-body name="body" rows="6" required {}
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
                        (audience_picker("bul", &Form::default(), orgs, seen, own))
                        (scrub_choices("bul", &Form::default()))
                        button type="submit" #publish-bulletin { "Sign and broadcast" }
                    }
                },
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

/// What the page needs from the agent besides the form: orgs, the groups
/// and people seen, whether to offer the bulletin composer.
struct Context {
    orgs: Vec<(String, String)>,
    seen: Vec<String>,
    composer: Composer,
}

/// Most groups and people offered in the picker.
const MAX_SEEN_ENTRIES: usize = 200;

fn context(agent: &crate::Agent) -> Result<Context, AgentError> {
    let orgs = orgs(agent);
    let store = agent.store.lock().expect("store");
    let seen: Vec<String> = store
        .audience_entries_seen(MAX_SEEN_ENTRIES)?
        .into_iter()
        .filter(|e| e.starts_with("group:") || e.starts_with("person:"))
        .collect();
    let own_bulletins = store.count_bulletins_by(agent.org_id())?;
    Ok(Context {
        orgs,
        seen,
        composer: composer_for(own_bulletins),
    })
}

/// The publish page: `top` (a result, refusal or preview) above both forms.
fn render(
    c: &Console,
    auth: &Authed,
    ctx: &Context,
    status: StatusCode,
    top: Markup,
    page: (&Form, &[FieldError], Option<&str>),
) -> Response {
    let own = c.agent().org_id();
    let (form, errors, reviewed) = page;
    let body = html! {
        (top)
        (form_html(own, &auth.csrf, form, &ctx.orgs, &ctx.seen, errors, reviewed, &ctx.composer))
    };
    html_response(
        status,
        html::page("Publish", "/publish", own, &auth.csrf, body),
    )
}

async fn load_context(c: &Console, auth: &Authed) -> Result<Context, Response> {
    c.blocking(context)
        .await
        .map_err(|e| super::error::fail(c, auth, "The publish page could not be read", &e))
}

pub async fn form(State(c): State<Console>, Extension(auth): Extension<Authed>) -> Response {
    let ctx = match load_context(&c, &auth).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    render(
        &c,
        &auth,
        &ctx,
        StatusCode::OK,
        html! {},
        (&Form::default(), &[], None),
    )
}

/// The preview as plain text (the page's script shows it with textContent).
pub async fn preview(State(c): State<Console>, RawQuery(q): RawQuery) -> Response {
    let form = Form::parse(q.as_deref().unwrap_or(""));
    let text = preview_text(&form, &orgs(c.agent()));
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// Every statement as it will be signed: the human summary, then the
/// signed fields themselves.
fn signed_preview(prepared: &[(IndicatorDraft, Prepared)], entries: &[String]) -> Markup {
    html! {
        section.signed-preview #signed-preview aria-labelledby="signed-preview-h" {
            h2 #signed-preview-h {
                "Review: " (prepared.len())
                @if prepared.len() == 1 { " statement" } @else { " statements" }
                " to sign"
            }
            p {
                "Nothing is signed yet. Check each below, then press "
                strong { "Sign and publish" }
                " under the form. The id and time are set when you sign; every other field is signed as shown."
            }
            @for (n, (_, p)) in prepared.iter().enumerate() {
                article.preview-statement {
                    h3 { (p.statement.primary_value()) " · " (p.statement.title()) }
                    (super::report::summary(&p.statement, &super::report::Audience::Clear(entries), n + 1))
                    details {
                        summary { "The statement as it will be signed" }
                        pre tabindex="0" {
                            (serde_json::to_string_pretty(&p.statement).unwrap_or_default())
                        }
                    }
                }
            }
        }
    }
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

fn published_notice(what: &str, done: &[crate::publish::Published], who: &[String]) -> Markup {
    html! {
        div.notice.notice-ok role="status" #published {
            p {
                (what) " signed with your key and published"
                @if done.len() > 1 { " (" (done.len()) ")" }
                ". Each appears in the feed when the sync daemon receives it back."
            }
            ul.published-links {
                @for p in done {
                    li {
                        a.published-link href={ "/item/" (html::urlenc(&p.id)) } { "Open the new item " code { (p.id) } }
                        ", revision " (p.revision)
                        @if p.duplicate { " (already held by the hub)" }
                    }
                }
            }
            @if !who.is_empty() {
                p.preview { (who.join("\n")) }
            }
            @let notes: Vec<&String> = done.iter().flat_map(|p| &p.notes).collect();
            @if !notes.is_empty() {
                p.preview #scrub-notes {
                    @for (n, note) in notes.iter().enumerate() {
                        @if n > 0 { "\n" }
                        (note)
                    }
                }
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
    let ctx = match load_context(&c, &auth).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let who = recipients(
        form.get("tlp"),
        &audience(&form),
        !form.get("anonymous").is_empty(),
        &ctx.orgs,
    )
    .unwrap_or_default();
    let created = isac_core::time::format_rfc3339(crate::now());
    let prepared = match prepare(&form, c.agent().org_id(), &created) {
        Ok(p) => p,
        Err(errors) => {
            let top = html! {
                div class="notice notice-error" role="alert" #refused {
                    p { "Not signed, nothing sent. Fix what is marked below:" }
                    ul {
                        @for e in &errors {
                            li { a href={ "#" (e.field) } { (e.message) } }
                        }
                    }
                }
            };
            return render(
                &c,
                &auth,
                &ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                top,
                (&form, &errors, None),
            );
        }
    };
    // The scan before signing, at the review too: its findings before
    // anything else, and the preview shows what the choice makes of the
    // text (redacted), which is what will be signed.
    let choice = scrub_choice(&form);
    let mut prepared = prepared;
    let mut notes = Vec::new();
    for (_, p) in prepared.iter_mut() {
        match c.agent().scrub.apply(&mut p.statement, &choice) {
            Ok(outcome) => notes.extend(outcome.notes()),
            Err(e) => {
                let (status, notice) = refused(&e);
                return render(&c, &auth, &ctx, status, notice, (&form, &[], None));
            }
        }
    }
    let digest = review_digest(&form);
    // Review first; sign only what was reviewed, unchanged.
    if form.get("step") != "sign" || form.get("reviewed") != digest {
        let changed = form.get("step") == "sign";
        let top = html! {
            @if changed {
                (html::notice("error", "The form changed after the review: review it again before signing."))
            }
            (signed_preview(&prepared, &audience(&form)))
            @if !notes.is_empty() {
                p.preview #scrub-notes { (notes.join("\n")) }
            }
        };
        return render(
            &c,
            &auth,
            &ctx,
            StatusCode::OK,
            top,
            (&form, &[], Some(digest.as_str())),
        );
    }
    let mut done = Vec::new();
    for (draft, _) in prepared {
        match crate::publish::publish_with(c.agent(), draft, &choice).await {
            Ok(p) => done.push(p),
            Err(e) => {
                let (status, notice) = refused(&e);
                let top = html! {
                    @if !done.is_empty() { (published_notice("Indicator", &done, &who)) }
                    (notice)
                };
                return render(&c, &auth, &ctx, status, top, (&form, &[], None));
            }
        }
    }
    render(
        &c,
        &auth,
        &ctx,
        StatusCode::OK,
        published_notice("Indicator", &done, &who),
        (&Form::default(), &[], None),
    )
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
    let ctx = match load_context(&c, &auth).await {
        Ok(x) => x,
        Err(r) => return r,
    };
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
    let who = recipients(form.get("tlp"), &draft.audience, false, &ctx.orgs).unwrap_or_default();
    let empty = (&Form::default(), &[][..], None);
    match crate::publish::publish_bulletin_with(c.agent(), draft, &scrub_choice(&form)).await {
        Ok(p) => render(
            &c,
            &auth,
            &ctx,
            StatusCode::OK,
            published_notice("Bulletin", &[p], &who),
            empty,
        ),
        Err(e) => {
            let (status, notice) = refused(&e);
            render(&c, &auth, &ctx, status, notice, empty)
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

    const NOW: &str = "2026-11-25T12:00:00Z";

    fn prepared(q: &str) -> Result<Vec<(IndicatorDraft, Prepared)>, Vec<FieldError>> {
        prepare(&Form::parse(q), "acme", NOW)
    }

    fn refusal(q: &str) -> Vec<FieldError> {
        match prepared(q) {
            Ok(p) => panic!("{q} was accepted: {:?}", p.len()),
            Err(e) => e,
        }
    }

    #[test]
    fn the_form_becomes_the_same_draft_as_the_flags() {
        let p = prepared(
            "kind=package&value=pkg%3Anpm%2Fevil%401.0.0&versions=%3E%3D1.0.0+%3C1.0.5%0A2.0.0&title=t&tlp=amber\
&audience=org%3Abob-bank&audience_other=group%3Apayments&anonymous=1&no_forward=1&labels=a%2Cb&threat=compromised\
&valid_until=2027-01-31",
        )
        .unwrap();
        let d = &p[0].0;
        assert_eq!(d.purl.as_deref(), Some("pkg:npm/evil@1.0.0"));
        assert_eq!(d.versions.as_deref().unwrap(), [">=1.0.0 <1.0.5", "2.0.0"]);
        assert_eq!(d.threat.as_deref(), Some("compromised"));
        assert_eq!(
            d.audience.as_deref().unwrap(),
            ["org:bob-bank", "group:payments"]
        );
        assert_eq!(d.anonymous, Some(true));
        assert_eq!(d.no_forward, Some(true));
        assert_eq!(d.labels.as_deref().unwrap(), ["a", "b"]);
        assert_eq!(d.valid_until.as_deref(), Some("2027-01-31T00:00:00Z"));
        let s = &prepared("kind=network&value=10.0.0.1&title=t&tlp=green").unwrap()[0].1;
        assert_eq!(s.statement.primary_value(), "10.0.0.1");
        let d = &prepared("kind=network&value=evil.example&title=t&tlp=green").unwrap()[0].0;
        assert_eq!(d.domain.as_deref(), Some("evil.example"));
        let p = prepared(
            "kind=package&value=pkg%3Anpm%2Faxois&threat=typosquat&imitates=pkg%3Anpm%2Faxios&title=t&tlp=green",
        )
        .unwrap();
        assert_eq!(p[0].0.imitates.as_deref(), Some("pkg:npm/axios"));
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let d = &prepared(&format!(
            "kind=artifact&value={hash}&artifact_purl=pkg%3Anpm%2Fevil%401.0.0&filename=evil.tgz&title=t&tlp=green"
        ))
        .unwrap()[0]
            .0;
        assert_eq!(d.sha256.as_deref(), Some(hash));
        assert_eq!(d.purl.as_deref(), Some("pkg:npm/evil@1.0.0"));
        assert_eq!(d.filename.as_deref(), Some("evil.tgz"));
        assert_eq!(
            refusal("kind=bogus&value=x&title=t&tlp=green")[0].field,
            "kind"
        );
    }

    #[test]
    fn every_pasted_observable_is_kept_and_none_reaches_the_title() {
        let p = prepared(
            "kind=network&value=evil-one.example%0D%0Aevil-two.example+evil-three.example%2C%0A%0A10.0.0.9%0Aevil-one.example&title=C2+domains&tlp=green",
        )
        .unwrap();
        let values: Vec<String> = p.iter().map(|(_, x)| x.statement.primary_value()).collect();
        assert_eq!(
            values,
            [
                "evil-one.example",
                "evil-two.example",
                "evil-three.example",
                "10.0.0.9"
            ]
        );
        assert!(p.iter().all(|(_, x)| x.statement.title() == "C2 domains"));
        let e = refusal("kind=network&value=+%0A+&title=t&tlp=green");
        assert_eq!(e[0].field, "value");
        let many: String = (0..=MAX_OBSERVABLES)
            .map(|n| format!("e{n}.example%0A"))
            .collect();
        let e = refusal(&format!("kind=network&value={many}&title=t&tlp=green"));
        assert!(e[0].message.contains("at most 100"), "{e:?}");
        // One bad line among good ones: named, nothing prepared.
        let e = refusal("kind=network&value=good.example%0Anot..valid&title=t&tlp=green");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].field, "value");
        assert!(e[0].message.starts_with("not..valid: "), "{e:?}");
    }

    #[test]
    fn what_is_not_a_version_is_refused_next_to_versions() {
        // The analyst's report: threat and imitates typed into Versions.
        let e = refusal(
            "kind=package&value=pkg%3Anpm%2Faxois&versions=threat%3Dtyposquat%0Aimitates%3Dpkg%3Anpm%2Faxios&title=t&tlp=green",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].field, "versions");
        assert!(
            e[0].message.starts_with("versions[0] `threat=typosquat`"),
            "{e:?}"
        );
        // Per ecosystem: a PEP 440 version is not npm's, and the reverse.
        assert_eq!(
            refusal("kind=package&value=pkg%3Apypi%2Freqeusts&versions=banana&title=t&tlp=green")
                [0]
            .field,
            "versions"
        );
        assert!(prepared(
            "kind=package&value=pkg%3Apypi%2Freqeusts&versions=%3D%3D1.4.*&title=t&tlp=green"
        )
        .is_ok());
        // A typosquat needs what it imitates, in its own field.
        let e = refusal("kind=package&value=pkg%3Anpm%2Faxois&threat=typosquat&title=t&tlp=green");
        assert_eq!(e[0].field, "imitates", "{e:?}");
        let e = refusal(
            "kind=package&value=pkg%3Anpm%2Faxois&threat=typosquat&imitates=npm%2Faxios&title=t&tlp=green",
        );
        assert_eq!(e[0].field, "imitates", "{e:?}");
        // A field of another kind is not dropped silently.
        let e = refusal("kind=network&value=evil.example&versions=1.0.0&title=t&tlp=green");
        assert_eq!(e[0].field, "versions", "{e:?}");
        assert!(e[0].message.contains("package indicators only"), "{e:?}");
    }

    #[test]
    fn refusals_land_next_to_their_field() {
        for (q, field) in [
            ("kind=network&value=evil.example&tlp=green", "title"),
            ("kind=network&value=evil.example&title=t", "tlp"),
            ("kind=network&value=evil.example&title=t&tlp=white", "tlp"),
            ("kind=network&value=evil.example&title=t&tlp=red&audience=org%3Abob", "audience_other"),
            ("kind=network&value=evil.example&title=t&tlp=amber%2Bstrict", "audience_other"),
            ("kind=network&value=evil.example&title=t&tlp=green&confidence=lots", "confidence"),
            ("kind=network&value=evil.example&title=t&tlp=green&references=not-a-url", "references"),
            ("kind=network&value=evil.example&title=t&tlp=green&valid_until=soon", "valid_until"),
            ("kind=network&value=evil.example&title=t&tlp=green&severity=huge", "severity"),
            ("kind=repository&value=https%3A%2F%2Fgithub.com%2Fa%2Fb&commit=xyz&title=t&tlp=green", "commit"),
            ("kind=artifact&value=abc&title=t&tlp=green", "value"),
            ("kind=artifact&value=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08&artifact_purl=npm%2Fx&title=t&tlp=green", "artifact_purl"),
            ("kind=vulnerability&value=CVE-2021-44228&affected=pkg%3Anpm%2Fok%0Anope&title=t&tlp=green", "affected"),
            ("kind=package&value=npm%2Fevil&title=t&tlp=green", "value"),
        ] {
            let e = refusal(q);
            assert_eq!(e[0].field, field, "{q}: {e:?}");
        }
    }

    #[test]
    fn signing_takes_only_what_was_reviewed() {
        let a = Form::parse("csrf=1&kind=network&value=evil.example&title=t&tlp=green&step=review");
        let b = Form::parse(
            "csrf=2&kind=network&value=evil.example&title=t&tlp=green&step=sign&reviewed=x",
        );
        assert_eq!(review_digest(&a), review_digest(&b));
        let c = Form::parse("csrf=1&kind=network&value=evil.example&title=T&tlp=green");
        assert_ne!(review_digest(&a), review_digest(&c));
        let d =
            Form::parse("csrf=1&kind=network&value=evil.example%0Aother.example&title=t&tlp=green");
        assert_ne!(review_digest(&a), review_digest(&d));
    }

    #[test]
    fn the_composer_is_offered_to_coordinators_only() {
        assert_eq!(composer_for(0), Composer::NotShown);
        assert_eq!(composer_for(3), Composer::Coordinator);
        let page = form_html(
            "acme",
            "c",
            &Form::default(),
            &[],
            &[],
            &[],
            None,
            &Composer::NotShown,
        )
        .into_string();
        assert!(!page.contains("bulletin-form") && page.contains("no-composer"));
        let page = form_html(
            "acme",
            "c",
            &Form::default(),
            &[],
            &[],
            &[],
            None,
            &Composer::Coordinator,
        )
        .into_string();
        assert!(page.contains("id=\"bulletin-form\""));
        // No sign button before a review; after one, the digest rides along.
        assert!(!page.contains("id=\"publish\""));
        let page = form_html(
            "acme",
            "c",
            &Form::default(),
            &[],
            &[],
            &[],
            Some("d1"),
            &Composer::NotShown,
        )
        .into_string();
        assert!(
            page.contains("<input type=\"hidden\" name=\"reviewed\" value=\"d1\">"),
            "{page}"
        );
        assert!(page.contains("id=\"publish\""));
    }

    #[test]
    fn the_preview_shows_each_statement_as_it_will_be_signed() {
        let p = prepared(
            "kind=network&value=one.example%0Atwo.example&title=t&tlp=amber&audience=org%3Abob-bank",
        )
        .unwrap();
        let out = signed_preview(&p, &["org:bob-bank".into()]).into_string();
        assert!(out.contains("2 statements to sign"), "{out}");
        assert!(out.contains("one.example") && out.contains("two.example"));
        assert!(out.contains("only: bob-bank"), "{out}");
        assert!(out.contains("&quot;tlp&quot;: &quot;amber&quot;"), "{out}");
    }

    #[test]
    fn the_form_with_a_lenient_only_purl_is_refused() {
        use crate::draft::tests::LENIENT_ONLY;
        for (bad, why) in LENIENT_ONLY {
            let value = bad
                .replace(':', "%3A")
                .replace('/', "%2F")
                .replace('@', "%40");
            let e = refusal(&format!("kind=package&value={value}&title=t&tlp=green"));
            assert_eq!(e[0].field, "value", "{e:?}");
            assert!(e[0].message.contains("is not a valid package URL"), "{e:?}");
            assert!(e[0].message.contains(why), "{e:?}");
        }
    }

    #[test]
    fn the_publish_page_keeps_hostile_input_as_text() {
        let h = hostile::all();
        let names = [
            "kind",
            "value",
            "versions",
            "imitates",
            "threat",
            "artifact_purl",
            "filename",
            "commit",
            "tag",
            "affected",
            "title",
            "description",
            "severity",
            "confidence",
            "valid_until",
            "labels",
            "references",
            "tlp",
            "audience_other",
            "anonymous",
            "no_forward",
        ];
        let mut fields: Vec<(String, String)> =
            names.iter().map(|k| (k.to_string(), h.clone())).collect();
        fields.push(("references".into(), "javascript:alert(1)".into()));
        fields.push(("audience".into(), format!("org:{h}")));
        let form = Form(fields);
        let orgs = vec![(h.clone(), h.clone()), ("bob-bank".to_owned(), h.clone())];
        let seen = vec![format!("group:{h}"), h.clone()];
        let errors: Vec<FieldError> = names
            .iter()
            .map(|n| {
                field_error(
                    KIND_FIELDS
                        .iter()
                        .find(|f| f.0 == *n)
                        .map(|f| f.0)
                        .unwrap_or("value"),
                    h.clone(),
                )
            })
            .collect();
        let page = form_html(
            &h,
            &h,
            &form,
            &orgs,
            &seen,
            &errors,
            Some(h.as_str()),
            &Composer::Coordinator,
        )
        .into_string();
        hostile::assert_shown_inert(&page);
        // What was sent comes back inside the fields, as text.
        for id in ["value", "versions", "affected", "description", "references"] {
            let open = format!("<textarea id=\"{id}\"");
            let at = page.find(&open).expect(id);
            let end = at + page[at..].find("</textarea>").unwrap();
            assert!(page[at..end].contains(&hostile::escaped(&h)), "{id}");
        }
        assert!(page.contains(&format!(
            "<input id=\"imitates\" name=\"imitates\" value=\"{}\"",
            hostile::escaped(&h)
        )));
        // Each refusal sits next to its field.
        assert!(page.contains("<p class=\"field-error\" id=\"err-versions\" role=\"alert\">"));
        assert!(page.contains("aria-describedby=\"err-versions\""));
        let published = crate::publish::Published {
            id: h.clone(),
            revision: 2,
            duplicate: true,
            notes: vec![h.clone()],
        };
        let notice = published_notice(&h, &[published.clone(), published], &[h.clone(), h.clone()])
            .into_string();
        hostile::assert_shown_inert(&notice);
        assert!(notice.contains("href=\"/item/%3Cscript%3E"), "{notice}");
    }
}
