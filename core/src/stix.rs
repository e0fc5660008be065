//! Pure conversion from verified statements to STIX 2.1 objects, for the
//! agent's STIX bundle sink and the hub's TAXII 2.1 server.
//!
//! Everything is deterministic: STIX ids are name-based (SHA-256, UUIDv5
//! layout) over our statement ids, so exporting the same statement twice
//! yields the same objects. No clock is read; every timestamp comes from the
//! statement or the caller.
//!
//! Mapping:
//! - indicator → an `indicator` SDO (`pattern_type` `stix`); a vulnerability
//!   observable adds a `vulnerability` SDO and a `related-to` relationship
//!   (STIX 2.1 defines `indicates` only towards attack-pattern, campaign,
//!   infrastructure, intrusion-set, malware, threat-actor and tool).
//! - bulletin → a `report` SDO whose `object_refs` are the related
//!   indicators (or the source identity when there are none).
//! - sighting → a `sighting` SRO of `stix_id("indicator", target)`, sighted
//!   where the source is.
//! - retraction → a **revocation marker**: an object with the target's STIX
//!   id, `revoked: true` and `x_isac_revocation_marker: true`, but without
//!   the target's other properties (we do not have them here). Consumers
//!   treat it as "revoke this id". [`revocation_for`] makes the marker for a
//!   target that is not an indicator.
//!
//! Everything we know that STIX has no property for is carried in custom
//! `x_isac_*` properties. `created` and `modified` are the statement's
//! `created`, so each revision is a distinct STIX version (its `modified`
//! grows); note that `created` therefore moves between revisions too.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::statement::{Body, Indicator, Observable, PackageThreat, Statement};
use crate::tlp::{Tlp, ALL_LEVELS};

/// Mixed into every derived id, so our ids never collide with another
/// producer's name-based ids. Changing it changes every exported id.
pub const STIX_ID_NAMESPACE: &str = "isac-hub/stix-2.1/v1";

/// The TLP 2.0 extension definition (OASIS cti-stix-common-objects).
pub const TLP_2_EXTENSION_ID: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// `created` of the OASIS TLP 2.0 marking definitions.
pub const TLP_2_CREATED: &str = "2022-10-01T00:00:00.000Z";

/// The organisation id anonymous statements carry (reserved by the hub).
pub const ANONYMOUS_ORG_ID: &str = "anonymous";

/// The name shown for anonymous items.
pub const ANONYMOUS_NAME: &str = "anonymous member";

/// `created`/`modified` of the identity objects we generate: fixed, because
/// there is no clock here and re-exports must be identical.
pub const IDENTITY_TIMESTAMP: &str = "2020-01-01T00:00:00.000Z";

/// The `source_name` of the external reference naming our envelope.
pub const ENVELOPE_SOURCE_NAME: &str = "isac-envelope";

/// Largest `count` a STIX sighting may carry.
const MAX_SIGHTING_COUNT: u32 = 999_999_999;

/// Context the converter needs but cannot know: the STIX identity id to use
/// for the source ([`anonymous_identity`]'s id for anonymous items), the
/// envelope digest and key id the object came from, and when it arrived.
#[derive(Debug, Clone, Copy)]
pub struct StixContext<'a> {
    pub source_identity_id: &'a str,
    /// Lowercase hex SHA-256 of the PAE: bare in the external reference's
    /// STIX `hashes`, `sha256:<hex>` in `x_isac_envelope_digest`.
    pub envelope_digest: &'a str,
    pub key_id: &'a str,
    /// RFC 3339.
    pub received_at: &'a str,
}

/// A name-based UUID: SHA-256 over namespace, STIX type and name, truncated
/// to 16 bytes with the version nibble set to 5 and RFC 4122 variant bits.
pub fn derived_uuid(stix_type: &str, name: &str) -> Uuid {
    let input = format!("{STIX_ID_NAMESPACE}|{stix_type}|{name}");
    let digest = openssl::sha::sha256(input.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

fn derived_id(stix_type: &str, name: &str) -> String {
    format!("{stix_type}--{}", derived_uuid(stix_type, name))
}

/// Deterministic STIX id `<type>--<uuid>` for one of our statement ids, so
/// re-exports give the same ids.
pub fn stix_id(stix_type: &str, statement_id: &Uuid) -> String {
    derived_id(stix_type, &statement_id.to_string())
}

/// The STIX identity id of a member organisation (see [`identity`]).
pub fn identity_id(org_id: &str) -> String {
    derived_id("identity", &format!("org:{org_id}"))
}

/// The STIX identity object for a member: deterministic id from the org id,
/// `identity_class` `organization`.
pub fn identity(org_id: &str, name: &str) -> Value {
    json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": identity_id(org_id),
        "created": IDENTITY_TIMESTAMP,
        "modified": IDENTITY_TIMESTAMP,
        "name": name,
        "identity_class": "organization",
    })
}

/// The identity anonymous items are attributed to: the identity of the
/// reserved org id `anonymous`, named "anonymous member".
pub fn anonymous_identity() -> Value {
    let mut v = identity(ANONYMOUS_ORG_ID, ANONYMOUS_NAME);
    v["description"] = json!("A member of the community whose identity is withheld.");
    v
}

/// The identity of a statement's source: the member (named `display_name`),
/// or "anonymous member" for anonymous statements.
pub fn source_identity(statement: &Statement, display_name: &str) -> Value {
    if statement.source == ANONYMOUS_ORG_ID {
        anonymous_identity()
    } else {
        identity(statement.author(), display_name)
    }
}

/// The org id an author at another hub stands under here (federation,
/// issue 20): qualified by its hub, so the same org id at two hubs names
/// two organisations (and two STIX identities).
pub fn federated_org(author: &str, origin_hub: &str) -> String {
    format!("{author}@{origin_hub}")
}

/// Federation (issue 20): every object of an item from another hub names
/// its origin hub and the hubs it came through (origin first).
pub fn set_provenance(objects: &mut [Value], origin_hub: &str, hub_path: &[String]) {
    for o in objects {
        if let Some(m) = o.as_object_mut() {
            m.insert("x_isac_origin_hub".into(), json!(origin_hub));
            m.insert("x_isac_hub_path".into(), json!(hub_path));
        }
    }
}

/// The official OASIS TLP 2.0 marking-definition object for a level.
pub fn tlp_marking_definition(tlp: Tlp) -> Value {
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": tlp.stix_marking_id(),
        "created": TLP_2_CREATED,
        "name": tlp.to_string(),
        "extensions": {
            TLP_2_EXTENSION_ID: {
                "extension_type": "property-extension",
                "tlp_2_0": tlp.as_str(),
            }
        }
    })
}

/// RFC 3339 with exactly three fractional digits, as STIX requires:
/// `2026-11-25T12:00:00Z` → `2026-11-25T12:00:00.000Z`. A value that is not
/// an RFC 3339 UTC timestamp is returned unchanged.
pub fn stix_timestamp(s: &str) -> String {
    let Ok(secs) = crate::time::parse_rfc3339(s) else {
        return s.to_owned();
    };
    let whole = crate::time::format_rfc3339(secs);
    let Some(base) = whole.strip_suffix('Z') else {
        return s.to_owned();
    };
    let fraction: String = s
        .strip_suffix('Z')
        .and_then(|t| t.split_once('.'))
        .map(|(_, f)| f.chars().take_while(char::is_ascii_digit).take(3).collect())
        .unwrap_or_default();
    format!("{base}.{fraction:0<3}Z")
}

/// A string literal for STIX patterning: `'` and `\` escaped.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A versions entry that is a range rather than one exact version.
fn is_range(v: &str) -> bool {
    v.chars()
        .any(|c| matches!(c, '<' | '>' | '=' | '~' | '^' | '*' | '|' | ',' | ' '))
}

/// The comparison expression (no brackets) for a package, or `None` when
/// the purl does not parse.
fn software_comparison(purl: &str, versions: &[String]) -> Option<String> {
    let p = crate::observable::parse_purl(purl).ok()?;
    let name = crate::pct::decode_lossy(&p.name);
    let name = match &p.namespace {
        Some(ns) if p.ty == "maven" => format!("{}:{name}", crate::pct::decode_lossy(ns)),
        Some(ns) => format!("{}/{name}", crate::pct::decode_lossy(ns)),
        None => name,
    };
    let mut out = format!(
        "software:name = {} AND software:vendor = {}",
        quote(&name),
        quote(&p.ty)
    );
    let exact: Vec<String> = if versions.is_empty() {
        p.version
            .iter()
            .map(|v| crate::pct::decode_lossy(v))
            .collect()
    } else if versions.iter().any(|v| is_range(v)) {
        // STIX patterning cannot express version ranges: match every
        // version and leave the ranges in `x_isac_observable`.
        Vec::new()
    } else {
        versions.to_vec()
    };
    match exact.as_slice() {
        [] => {}
        [one] => out.push_str(&format!(" AND software:version = {}", quote(one))),
        many => {
            let alts: Vec<String> = many
                .iter()
                .map(|v| format!("software:version = {}", quote(v)))
                .collect();
            out.push_str(&format!(" AND ({})", alts.join(" OR ")));
        }
    }
    Some(out)
}

fn observations(comparisons: &[String]) -> String {
    comparisons
        .iter()
        .map(|c| format!("[{c}]"))
        .collect::<Vec<_>>()
        .join(" OR ")
}

fn fallback_pattern(observable: &Observable) -> String {
    format!(
        "[x-isac-observable:value = {}]",
        quote(&observable.primary_value())
    )
}

/// The STIX pattern for an observable. Packages match on name and ecosystem
/// (`software:vendor`) plus exact versions where given (ranges cannot be
/// expressed and are dropped); the purl itself rides along on the indicator
/// as `x_isac_purl`. A vulnerability matches its affected packages, or a
/// custom `x-isac-vulnerability` object when none are listed.
pub fn pattern_for(observable: &Observable) -> String {
    match observable {
        Observable::Package { purl, versions, .. } => match software_comparison(purl, versions) {
            Some(c) => format!("[{c}]"),
            None => format!("[software:x_isac_purl = {}]", quote(purl)),
        },
        Observable::Artifact {
            sha256,
            sha512,
            filename,
            ..
        } => {
            let mut hashes = Vec::new();
            if let Some(h) = sha256 {
                hashes.push(format!("file:hashes.'SHA-256' = {}", quote(h)));
            }
            if let Some(h) = sha512 {
                hashes.push(format!("file:hashes.'SHA-512' = {}", quote(h)));
            }
            match (hashes.is_empty(), filename) {
                (false, _) => format!("[{}]", hashes.join(" OR ")),
                (true, Some(f)) => format!("[file:name = {}]", quote(f)),
                (true, None) => fallback_pattern(observable),
            }
        }
        Observable::Repository { url, .. } => format!("[url:value = {}]", quote(url)),
        Observable::Account { account } => match account.split_once(':') {
            Some((platform, user)) => format!(
                "[user-account:account_login = {} AND user-account:x_isac_platform = {}]",
                quote(user),
                quote(platform)
            ),
            None => format!("[user-account:account_login = {}]", quote(account)),
        },
        Observable::Network { domain, ip, url } => {
            let mut parts = Vec::new();
            if let Some(d) = domain {
                parts.push(format!("domain-name:value = {}", quote(d)));
            }
            if let Some(i) = ip {
                let ty = match i.parse::<std::net::IpAddr>() {
                    Ok(std::net::IpAddr::V4(_)) => "ipv4-addr",
                    Ok(std::net::IpAddr::V6(_)) => "ipv6-addr",
                    Err(_) if i.contains(':') => "ipv6-addr",
                    Err(_) => "ipv4-addr",
                };
                parts.push(format!("{ty}:value = {}", quote(i)));
            }
            if let Some(u) = url {
                parts.push(format!("url:value = {}", quote(u)));
            }
            if parts.is_empty() {
                fallback_pattern(observable)
            } else {
                observations(&parts)
            }
        }
        Observable::Vulnerability { vuln_id, purls } => {
            let parts: Vec<String> = purls
                .iter()
                .filter_map(|p| software_comparison(p, &[]))
                .collect();
            if parts.is_empty() {
                format!("[x-isac-vulnerability:name = {}]", quote(vuln_id))
            } else {
                observations(&parts)
            }
        }
    }
}

/// The properties every object made from `statement` carries.
fn common(
    stix_type: &str,
    id: String,
    statement: &Statement,
    ctx: &StixContext,
) -> Map<String, Value> {
    let created = stix_timestamp(&statement.created);
    let mut m = Map::new();
    m.insert("type".into(), json!(stix_type));
    m.insert("spec_version".into(), json!("2.1"));
    m.insert("id".into(), json!(id));
    m.insert("created".into(), json!(created));
    m.insert("modified".into(), json!(created));
    m.insert("created_by_ref".into(), json!(ctx.source_identity_id));
    m.insert(
        "object_marking_refs".into(),
        json!([statement.tlp.stix_marking_id()]),
    );
    m.insert(
        "x_isac_statement_id".into(),
        json!(statement.id.to_string()),
    );
    m.insert("x_isac_revision".into(), json!(statement.revision));
    m.insert(
        "x_isac_envelope_digest".into(),
        json!(crate::envelope::digest_ref(ctx.envelope_digest)),
    );
    m.insert("x_isac_signing_key_id".into(), json!(ctx.key_id));
    m.insert(
        "x_isac_received_at".into(),
        json!(stix_timestamp(ctx.received_at)),
    );
    m.insert("x_isac_kind".into(), json!(statement.kind()));
    if !statement.anonymous && statement.source != ANONYMOUS_ORG_ID {
        m.insert("x_isac_source_org".into(), json!(statement.author()));
    }
    if statement.on_behalf_of.is_some() {
        // Submitted by the member over TAXII, signed by the hub for it.
        m.insert("x_isac_hub_attested".into(), json!(true));
    }
    m
}

/// The external reference naming the signed envelope the object came from.
fn envelope_reference(statement: &Statement, ctx: &StixContext) -> Value {
    json!({
        "source_name": ENVELOPE_SOURCE_NAME,
        "external_id": statement.id.to_string(),
        "description": format!(
            "isac.v1 signed statement, revision {}, signing key {}",
            statement.revision, ctx.key_id
        ),
        "hashes": { "SHA-256": ctx.envelope_digest },
    })
}

fn url_references(urls: &[String]) -> Vec<Value> {
    urls.iter()
        .map(|u| json!({ "source_name": "reference", "url": u }))
        .collect()
}

fn vulnerability_reference(vuln_id: &str) -> Value {
    if vuln_id.starts_with("CVE-") {
        json!({
            "source_name": "cve",
            "external_id": vuln_id,
            "url": format!("https://www.cve.org/CVERecord?id={vuln_id}"),
        })
    } else {
        json!({
            "source_name": "osv",
            "external_id": vuln_id,
            "url": format!("https://osv.dev/vulnerability/{vuln_id}"),
        })
    }
}

/// Adds the properties taken from an indicator statement (confidence,
/// labels, severity) and the external references.
fn indicator_extras(m: &mut Map<String, Value>, ind: &Indicator, mut refs: Vec<Value>) {
    m.insert("confidence".into(), json!(ind.confidence.min(100)));
    if !ind.tags.is_empty() {
        m.insert("labels".into(), json!(ind.tags));
    }
    m.insert("x_isac_severity".into(), json!(ind.severity.as_str()));
    refs.extend(url_references(&ind.references));
    m.insert("external_references".into(), Value::Array(refs));
}

fn indicator_objects(statement: &Statement, ind: &Indicator, ctx: &StixContext) -> Vec<Value> {
    let envelope_ref = envelope_reference(statement, ctx);
    let indicator_id = stix_id("indicator", &statement.id);
    let mut m = common("indicator", indicator_id.clone(), statement, ctx);
    m.insert("name".into(), json!(ind.title));
    if !ind.description.is_empty() {
        m.insert("description".into(), json!(ind.description));
    }
    let indicator_type = match &ind.observable {
        Observable::Package {
            threat: PackageThreat::Compromised,
            ..
        } => "compromised",
        // A vulnerable package is not malicious activity.
        Observable::Vulnerability { .. } => "unknown",
        _ => "malicious-activity",
    };
    m.insert("indicator_types".into(), json!([indicator_type]));
    m.insert("pattern".into(), json!(pattern_for(&ind.observable)));
    m.insert("pattern_type".into(), json!("stix"));
    m.insert("pattern_version".into(), json!("2.1"));
    let valid_from = ind.valid_from.as_deref().unwrap_or(&statement.created);
    m.insert("valid_from".into(), json!(stix_timestamp(valid_from)));
    if let Some(until) = &ind.valid_until {
        m.insert("valid_until".into(), json!(stix_timestamp(until)));
    }
    if let Observable::Package { purl, .. } = &ind.observable {
        m.insert("x_isac_purl".into(), json!(purl));
    }
    m.insert(
        "x_isac_observable".into(),
        serde_json::to_value(&ind.observable).unwrap_or(Value::Null),
    );
    if !ind.related.is_empty() {
        let related: Vec<String> = ind
            .related
            .iter()
            .map(|r| stix_id("indicator", r))
            .collect();
        m.insert("x_isac_related_refs".into(), json!(related));
    }
    indicator_extras(&mut m, ind, vec![envelope_ref.clone()]);
    let mut out = vec![Value::Object(m)];

    if let Observable::Vulnerability { vuln_id, .. } = &ind.observable {
        let vuln_id_stix = stix_id("vulnerability", &statement.id);
        let mut v = common("vulnerability", vuln_id_stix.clone(), statement, ctx);
        v.insert("name".into(), json!(vuln_id));
        indicator_extras(
            &mut v,
            ind,
            vec![vulnerability_reference(vuln_id), envelope_ref.clone()],
        );
        out.push(Value::Object(v));

        let mut r = common(
            "relationship",
            vulnerability_relationship_id(&statement.id),
            statement,
            ctx,
        );
        r.insert("relationship_type".into(), json!("related-to"));
        r.insert("source_ref".into(), json!(indicator_id));
        r.insert("target_ref".into(), json!(vuln_id_stix));
        indicator_extras(&mut r, ind, vec![envelope_ref]);
        out.push(Value::Object(r));
    }
    out
}

/// The objects for one statement, each with `spec_version` 2.1, `created`
/// and `modified` from the statement, `created_by_ref` from `ctx`, the TLP
/// 2.0 marking, an `isac-envelope` external reference and `x_isac_*`
/// provenance (`x_isac_source_org` only for named items).
pub fn objects_for(statement: &Statement, ctx: &StixContext) -> Vec<Value> {
    match &statement.body {
        Body::Indicator(ind) => indicator_objects(statement, ind, ctx),
        Body::Bulletin(b) => {
            let mut m = common("report", stix_id("report", &statement.id), statement, ctx);
            m.insert("name".into(), json!(b.title));
            m.insert("description".into(), json!(b.body));
            m.insert("report_types".into(), json!(["threat-report"]));
            m.insert(
                "published".into(),
                json!(stix_timestamp(&statement.created)),
            );
            let refs: Vec<String> = if b.related.is_empty() {
                // object_refs must not be empty.
                vec![ctx.source_identity_id.to_owned()]
            } else {
                b.related.iter().map(|r| stix_id("indicator", r)).collect()
            };
            m.insert("object_refs".into(), json!(refs));
            m.insert("x_isac_severity".into(), json!(b.severity.as_str()));
            let mut ext = vec![envelope_reference(statement, ctx)];
            if let Some(inc) = &b.incident_id {
                m.insert("x_isac_incident_id".into(), json!(inc));
                ext.push(json!({ "source_name": "isac-incident", "external_id": inc }));
            }
            m.insert("external_references".into(), Value::Array(ext));
            vec![Value::Object(m)]
        }
        Body::Sighting(s) => {
            let mut m = common(
                "sighting",
                stix_id("sighting", &statement.id),
                statement,
                ctx,
            );
            m.insert(
                "sighting_of_ref".into(),
                json!(stix_id("indicator", &s.indicator)),
            );
            m.insert("count".into(), json!(s.count.min(MAX_SIGHTING_COUNT)));
            m.insert("first_seen".into(), json!(stix_timestamp(&s.first_seen)));
            m.insert("last_seen".into(), json!(stix_timestamp(&s.last_seen)));
            m.insert("where_sighted_refs".into(), json!([ctx.source_identity_id]));
            m.insert(
                "external_references".into(),
                json!([envelope_reference(statement, ctx)]),
            );
            vec![Value::Object(m)]
        }
        Body::Retraction(_) => revocation_for(statement, "indicator", ctx)
            .into_iter()
            .collect(),
    }
}

/// The id of the `related-to` relationship from a vulnerability
/// indicator to its vulnerability object.
fn vulnerability_relationship_id(statement_id: &Uuid) -> String {
    derived_id(
        "relationship",
        &format!("{statement_id}/related-to/vulnerability"),
    )
}

/// The ids of the objects [`objects_for`] makes for `statement`, without
/// its revocation markers (a retraction's marker carries its target's id).
/// The hub indexes them at publish to answer TAXII lookups by object id,
/// so they are derived here without building the objects.
pub fn object_ids(statement: &Statement) -> Vec<String> {
    let id = &statement.id;
    match &statement.body {
        Body::Indicator(ind) => {
            let mut ids = vec![stix_id("indicator", id)];
            if matches!(ind.observable, Observable::Vulnerability { .. }) {
                ids.push(stix_id("vulnerability", id));
                ids.push(vulnerability_relationship_id(id));
            }
            ids
        }
        Body::Bulletin(_) => vec![stix_id("report", id)],
        Body::Sighting(_) => vec![stix_id("sighting", id)],
        Body::Retraction(_) => Vec::new(),
    }
}

/// The revocation marker a retraction becomes, for a target of STIX type
/// `target_stix_type` (`indicator`, `report` or `sighting`). It carries the
/// target's id, `revoked: true`, `x_isac_revocation_marker: true` and the
/// retraction's reason, but not the target's other properties, so it is not
/// a complete object of that type: consumers treat it as "revoke this id".
/// `None` when `statement` is not a retraction.
pub fn revocation_for(
    statement: &Statement,
    target_stix_type: &str,
    ctx: &StixContext,
) -> Option<Value> {
    let Body::Retraction(r) = &statement.body else {
        return None;
    };
    let mut m = common(
        target_stix_type,
        stix_id(target_stix_type, &r.target),
        statement,
        ctx,
    );
    m.insert("revoked".into(), json!(true));
    m.insert("x_isac_revocation_marker".into(), json!(true));
    m.insert(
        "x_isac_retraction_id".into(),
        json!(statement.id.to_string()),
    );
    m.insert("x_isac_target_id".into(), json!(r.target.to_string()));
    if !r.reason.is_empty() {
        m.insert("x_isac_reason".into(), json!(r.reason));
    }
    m.insert(
        "external_references".into(),
        json!([envelope_reference(statement, ctx)]),
    );
    Some(Value::Object(m))
}

fn mentions(object: &Value, id: &str) -> bool {
    let is = |v: &Value| v.as_str() == Some(id);
    [
        "created_by_ref",
        "sighting_of_ref",
        "source_ref",
        "target_ref",
    ]
    .iter()
    .any(|k| object.get(*k).is_some_and(is))
        || ["where_sighted_refs", "object_refs"].iter().any(|k| {
            object
                .get(*k)
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(is))
        })
}

/// A bundle `{"type":"bundle","id":"bundle--…","objects":[…]}` with an id
/// derived from `bundle_uuid_seed`. The official TLP 2.0 marking definitions
/// the objects refer to come first, then [`anonymous_identity`] if referred
/// to and not given, then `objects` in order. Member identities are the
/// caller's to include (only it knows their names).
pub fn bundle(bundle_uuid_seed: &str, objects: Vec<Value>) -> Value {
    let present = |id: &str| {
        objects
            .iter()
            .any(|o| o.get("id").and_then(Value::as_str) == Some(id))
    };
    let mut all = Vec::with_capacity(objects.len() + 2);
    for tlp in ALL_LEVELS {
        let marking = tlp.stix_marking_id();
        let used = objects.iter().any(|o| {
            o.get("object_marking_refs")
                .and_then(Value::as_array)
                .is_some_and(|refs| refs.iter().any(|r| r.as_str() == Some(marking)))
        });
        if used && !present(marking) {
            all.push(tlp_marking_definition(tlp));
        }
    }
    let anon = identity_id(ANONYMOUS_ORG_ID);
    if !present(&anon) && objects.iter().any(|o| mentions(o, &anon)) {
        all.push(anonymous_identity());
    }
    all.extend(objects);
    json!({
        "type": "bundle",
        "id": derived_id("bundle", bundle_uuid_seed),
        "objects": all,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn object_ids_match_the_objects_made() {
        let ctx = StixContext {
            source_identity_id: "identity--x",
            envelope_digest: "d",
            key_id: "k",
            received_at: "2026-01-01T00:00:00Z",
        };
        let package = sample("acme");
        let mut vulnerability = sample("acme");
        if let Body::Indicator(i) = &mut vulnerability.body {
            i.observable = Observable::Vulnerability {
                vuln_id: "CVE-2026-12345".into(),
                purls: vec!["pkg:npm/lodash@4.17.20".into()],
            };
        }
        let mut bulletin = sample("isac-staff");
        bulletin.body = Body::Bulletin(Bulletin {
            title: "t".into(),
            body: "b".into(),
            severity: Severity::High,
            incident_id: None,
            related: vec![],
        });
        let mut sighting = sample("bob-bank");
        sighting.body = Body::Sighting(Sighting {
            indicator: Uuid::new_v4(),
            count: 1,
            first_seen: "2026-11-24T08:00:00Z".into(),
            last_seen: "2026-11-25T09:30:00Z".into(),
        });
        for st in [package, vulnerability, bulletin, sighting] {
            let made: Vec<String> = objects_for(&st, &ctx)
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect();
            assert!(!made.is_empty());
            assert_eq!(object_ids(&st), made, "{}", st.kind());
        }
        let mut retraction = sample("acme");
        retraction.body = Body::Retraction(Retraction {
            target: Uuid::new_v4(),
            reason: String::new(),
        });
        assert!(object_ids(&retraction).is_empty());
    }

    use super::*;
    use crate::statement::tests::sample;
    use crate::statement::{Bulletin, Retraction, Severity, Sighting};

    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const KEY: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    fn ctx(identity: &str) -> StixContext<'_> {
        StixContext {
            source_identity_id: identity,
            envelope_digest: DIGEST,
            key_id: KEY,
            received_at: "2026-11-25T12:00:03Z",
        }
    }

    fn with_observable(o: Observable) -> Statement {
        let mut s = sample("acme-bank");
        if let Body::Indicator(i) = &mut s.body {
            i.observable = o;
        }
        s
    }

    fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("`{k}` missing or not a string in {v}"))
    }

    fn is_millis(ts: &str) -> bool {
        // YYYY-MM-DDTHH:MM:SS.mmmZ
        ts.len() == 24
            && ts.ends_with('Z')
            && ts.as_bytes()[19] == b'.'
            && ts[20..23].bytes().all(|b| b.is_ascii_digit())
    }

    fn is_stix_id(id: &str, ty: &str) -> bool {
        id.strip_prefix(ty)
            .and_then(|r| r.strip_prefix("--"))
            .and_then(|u| Uuid::parse_str(u).ok())
            .is_some()
    }

    /// What the spec requires of every SDO/SRO we emit, plus our provenance.
    fn assert_common(o: &Value, s: &Statement, identity: &str) {
        let ty = str_of(o, "type");
        assert!(is_stix_id(str_of(o, "id"), ty), "{o}");
        assert_eq!(str_of(o, "spec_version"), "2.1");
        assert_eq!(str_of(o, "created"), "2026-11-25T12:00:00.000Z");
        assert_eq!(str_of(o, "modified"), "2026-11-25T12:00:00.000Z");
        assert!(is_millis(str_of(o, "created")));
        assert_eq!(str_of(o, "created_by_ref"), identity);
        assert_eq!(o["object_marking_refs"], json!([s.tlp.stix_marking_id()]));
        assert_eq!(o["x_isac_revision"], json!(s.revision));
        assert_eq!(
            str_of(o, "x_isac_envelope_digest"),
            format!("sha256:{DIGEST}")
        );
        assert_eq!(str_of(o, "x_isac_signing_key_id"), KEY);
        assert_eq!(str_of(o, "x_isac_received_at"), "2026-11-25T12:00:03.000Z");
        let refs = o["external_references"]
            .as_array()
            .expect("external_references");
        let env = refs
            .iter()
            .find(|r| r["source_name"] == ENVELOPE_SOURCE_NAME)
            .expect("isac-envelope reference");
        assert_eq!(str_of(env, "external_id"), s.id.to_string());
        assert_eq!(env["hashes"]["SHA-256"], json!(DIGEST));
        assert!(str_of(env, "description").contains(KEY));
        for r in refs {
            assert!(r.get("source_name").is_some(), "{r}");
        }
        // STIX lists must not be empty when present.
        for (k, v) in o.as_object().unwrap() {
            if let Some(a) = v.as_array() {
                assert!(!a.is_empty(), "empty list `{k}` in {o}");
            }
        }
        for k in o.as_object().unwrap().keys() {
            assert!(
                !k.starts_with("x_") || k.starts_with("x_isac_"),
                "custom property `{k}` is not x_isac_"
            );
        }
    }

    fn indicator_of(s: &Statement) -> Value {
        let id = identity_id(&s.source);
        let objs = objects_for(s, &ctx(&id));
        objs.into_iter()
            .find(|o| o["type"] == "indicator")
            .expect("an indicator")
    }

    #[test]
    fn stix_ids_are_deterministic_name_based_v5() {
        let our = Uuid::parse_str("6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b").unwrap();
        let a = stix_id("indicator", &our);
        assert_eq!(a, stix_id("indicator", &our));
        // Pinned: changing the derivation changes every id a consumer holds.
        assert_eq!(a, "indicator--05024bba-6dcc-54e6-959e-bd5ceba67c39");
        assert_eq!(
            identity_id("acme-bank"),
            "identity--47ee7b60-8e0e-585d-b3a0-3d2bc8cae398"
        );
        let u = Uuid::parse_str(a.strip_prefix("indicator--").unwrap()).unwrap();
        assert_eq!(u.get_version_num(), 5);
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(
            a.strip_prefix("indicator--"),
            stix_id("report", &our).strip_prefix("report--")
        );
        assert_ne!(a, stix_id("indicator", &Uuid::new_v4()));
    }

    #[test]
    fn identities() {
        let i = identity("acme-bank", "Acme Bank");
        assert_eq!(i["type"], "identity");
        assert_eq!(i["spec_version"], "2.1");
        assert_eq!(str_of(&i, "id"), identity_id("acme-bank"));
        assert_eq!(i, identity("acme-bank", "Acme Bank"));
        assert_eq!(i["name"], "Acme Bank");
        assert_eq!(i["identity_class"], "organization");
        assert!(is_millis(str_of(&i, "created")) && is_millis(str_of(&i, "modified")));
        let a = anonymous_identity();
        assert_eq!(a["name"], "anonymous member");
        assert_eq!(str_of(&a, "id"), identity_id(ANONYMOUS_ORG_ID));
        assert_ne!(a["id"], i["id"]);
    }

    #[test]
    fn timestamps_get_milliseconds() {
        assert_eq!(
            stix_timestamp("2026-11-25T12:00:00Z"),
            "2026-11-25T12:00:00.000Z"
        );
        assert_eq!(
            stix_timestamp("2026-11-25T12:00:00.5Z"),
            "2026-11-25T12:00:00.500Z"
        );
        assert_eq!(
            stix_timestamp("2026-11-25T12:00:00.123456Z"),
            "2026-11-25T12:00:00.123Z"
        );
        assert_eq!(stix_timestamp("noon"), "noon");
    }

    #[test]
    fn package_indicator() {
        let s = sample("acme-bank");
        let id = identity_id("acme-bank");
        let objs = objects_for(&s, &ctx(&id));
        assert_eq!(objs.len(), 1);
        let o = &objs[0];
        assert_common(o, &s, &id);
        assert_eq!(o["type"], "indicator");
        assert_eq!(str_of(o, "id"), stix_id("indicator", &s.id));
        assert_eq!(
            o["object_marking_refs"],
            json!(["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"])
        );
        assert_eq!(
            str_of(o, "pattern"),
            "[software:name = 'evil-pkg' AND software:vendor = 'npm' AND software:version = '1.0.0']"
        );
        assert_eq!(o["pattern_type"], "stix");
        assert_eq!(o["pattern_version"], "2.1");
        assert_eq!(o["valid_from"], "2026-11-25T12:00:00.000Z");
        assert!(o.get("valid_until").is_none());
        assert_eq!(o["name"], "evil-pkg steals npm tokens");
        assert_eq!(o["description"], "postinstall script exfiltrates ~/.npmrc");
        assert_eq!(o["indicator_types"], json!(["malicious-activity"]));
        assert_eq!(o["confidence"], 90);
        assert_eq!(o["labels"], json!(["credential-theft"]));
        assert_eq!(o["x_isac_purl"], "pkg:npm/evil-pkg@1.0.0");
        assert_eq!(o["x_isac_source_org"], "acme-bank");
        assert_eq!(o["x_isac_severity"], "high");
        assert_eq!(o["x_isac_observable"]["kind"], "package");
        let refs = o["external_references"].as_array().unwrap();
        assert!(refs
            .contains(&json!({"source_name": "reference", "url": "https://example.org/advisory"})));
        // Deterministic across calls.
        assert_eq!(objs, objects_for(&s, &ctx(&id)));
    }

    #[test]
    fn package_variants() {
        let pkg = |purl: &str, versions: &[&str], threat| {
            pattern_for(&Observable::Package {
                purl: purl.into(),
                versions: versions.iter().map(|v| v.to_string()).collect(),
                threat,
                imitates: None,
            })
        };
        assert_eq!(
            pkg("pkg:npm/%40evil/core", &[], PackageThreat::Malicious),
            "[software:name = '@evil/core' AND software:vendor = 'npm']"
        );
        assert_eq!(
            pkg("pkg:pypi/requets", &["1.0", "1.1"], PackageThreat::Malicious),
            "[software:name = 'requets' AND software:vendor = 'pypi' AND (software:version = '1.0' OR software:version = '1.1')]"
        );
        // Ranges cannot be expressed: every version matches.
        assert_eq!(
            pkg(
                "pkg:maven/org.example/lib",
                &[">=1.2.0 <1.2.5"],
                PackageThreat::Compromised
            ),
            "[software:name = 'org.example:lib' AND software:vendor = 'maven']"
        );
        assert_eq!(
            pkg("not-a-purl", &[], PackageThreat::Malicious),
            "[software:x_isac_purl = 'not-a-purl']"
        );
        let s = with_observable(Observable::Package {
            purl: "pkg:npm/left-pad".into(),
            versions: vec![],
            threat: PackageThreat::Compromised,
            imitates: None,
        });
        assert_eq!(indicator_of(&s)["indicator_types"], json!(["compromised"]));
    }

    #[test]
    fn patterns_escape_quotes_and_backslashes() {
        let p = pattern_for(&Observable::Account {
            account: r"npm:o'brien\x".into(),
        });
        assert_eq!(
            p,
            r"[user-account:account_login = 'o\'brien\\x' AND user-account:x_isac_platform = 'npm']"
        );
        let p = pattern_for(&Observable::Network {
            domain: None,
            ip: None,
            url: Some(r"https://evil.example/a'b\c".into()),
        });
        assert_eq!(p, r"[url:value = 'https://evil.example/a\'b\\c']");
        let p = pattern_for(&Observable::Package {
            purl: "pkg:npm/it%27s".into(),
            versions: vec![],
            threat: PackageThreat::Malicious,
            imitates: None,
        });
        assert_eq!(p, r"[software:name = 'it\'s' AND software:vendor = 'npm']");
    }

    #[test]
    fn artifact_indicator() {
        let h256 = "a".repeat(64);
        let h512 = "b".repeat(128);
        let s = with_observable(Observable::Artifact {
            sha256: Some(h256.clone()),
            sha512: Some(h512.clone()),
            purl: None,
            filename: Some("evil.tgz".into()),
        });
        let o = indicator_of(&s);
        assert_common(&o, &s, &identity_id("acme-bank"));
        assert_eq!(
            str_of(&o, "pattern"),
            format!("[file:hashes.'SHA-256' = '{h256}' OR file:hashes.'SHA-512' = '{h512}']")
        );
        assert!(o.get("x_isac_purl").is_none());
        let only = pattern_for(&Observable::Artifact {
            sha256: Some(h256.clone()),
            sha512: None,
            purl: None,
            filename: None,
        });
        assert_eq!(only, format!("[file:hashes.'SHA-256' = '{h256}']"));
    }

    #[test]
    fn network_indicators() {
        let net = |d: Option<&str>, i: Option<&str>, u: Option<&str>| Observable::Network {
            domain: d.map(Into::into),
            ip: i.map(Into::into),
            url: u.map(Into::into),
        };
        assert_eq!(
            pattern_for(&net(Some("evil.example"), None, None)),
            "[domain-name:value = 'evil.example']"
        );
        assert_eq!(
            pattern_for(&net(None, Some("192.0.2.1"), None)),
            "[ipv4-addr:value = '192.0.2.1']"
        );
        assert_eq!(
            pattern_for(&net(None, Some("2001:db8::1"), None)),
            "[ipv6-addr:value = '2001:db8::1']"
        );
        assert_eq!(
            pattern_for(&net(None, None, Some("https://evil.example/x"))),
            "[url:value = 'https://evil.example/x']"
        );
        let s = with_observable(net(None, Some("192.0.2.1"), None));
        let o = indicator_of(&s);
        assert_common(&o, &s, &identity_id("acme-bank"));
        assert_eq!(o["indicator_types"], json!(["malicious-activity"]));
    }

    #[test]
    fn repository_and_account_indicators() {
        let s = with_observable(Observable::Repository {
            url: "https://github.com/evil/repo".into(),
            commit: Some("c".repeat(40)),
            tag: None,
        });
        let o = indicator_of(&s);
        assert_common(&o, &s, &identity_id("acme-bank"));
        assert_eq!(o["pattern"], "[url:value = 'https://github.com/evil/repo']");
        assert_eq!(o["x_isac_observable"]["commit"], json!("c".repeat(40)));

        let s = with_observable(Observable::Account {
            account: "npm:evil-maintainer".into(),
        });
        let o = indicator_of(&s);
        assert_common(&o, &s, &identity_id("acme-bank"));
        assert_eq!(
            o["pattern"],
            "[user-account:account_login = 'evil-maintainer' AND user-account:x_isac_platform = 'npm']"
        );
    }

    #[test]
    fn vulnerability_indicator_adds_vulnerability_and_relationship() {
        let mut s = with_observable(Observable::Vulnerability {
            vuln_id: "CVE-2026-12345".into(),
            purls: vec!["pkg:npm/lodash@4.17.20".into(), "pkg:pypi/jinja2".into()],
        });
        s.tlp = Tlp::Amber;
        if let Body::Indicator(i) = &mut s.body {
            i.valid_from = Some("2026-11-25T13:00:00Z".into());
            i.valid_until = Some("2026-12-25T13:00:00Z".into());
        }
        let id = identity_id("acme-bank");
        let objs = objects_for(&s, &ctx(&id));
        let types: Vec<&str> = objs.iter().map(|o| str_of(o, "type")).collect();
        assert_eq!(types, ["indicator", "vulnerability", "relationship"]);
        for o in &objs {
            assert_common(o, &s, &id);
            assert_eq!(
                o["object_marking_refs"],
                json!(["marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"])
            );
        }
        let (ind, vuln, rel) = (&objs[0], &objs[1], &objs[2]);
        assert_eq!(
            ind["pattern"],
            "[software:name = 'lodash' AND software:vendor = 'npm' AND software:version = '4.17.20'] OR [software:name = 'jinja2' AND software:vendor = 'pypi']"
        );
        assert_eq!(ind["valid_from"], "2026-11-25T13:00:00.000Z");
        assert_eq!(ind["valid_until"], "2026-12-25T13:00:00.000Z");
        assert_eq!(ind["indicator_types"], json!(["unknown"]));
        assert_eq!(vuln["name"], "CVE-2026-12345");
        assert_eq!(str_of(vuln, "id"), stix_id("vulnerability", &s.id));
        let cve = vuln["external_references"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["source_name"] == "cve")
            .expect("cve reference");
        assert_eq!(cve["external_id"], "CVE-2026-12345");
        assert_eq!(rel["relationship_type"], "related-to");
        assert_eq!(rel["source_ref"], ind["id"]);
        assert_eq!(rel["target_ref"], vuln["id"]);
        assert_eq!(objs, objects_for(&s, &ctx(&id)));

        let ghsa = Observable::Vulnerability {
            vuln_id: "GHSA-xxxx-yyyy-zzzz".into(),
            purls: vec![],
        };
        assert_eq!(
            pattern_for(&ghsa),
            "[x-isac-vulnerability:name = 'GHSA-xxxx-yyyy-zzzz']"
        );
        let objs = objects_for(&with_observable(ghsa), &ctx(&id));
        assert_eq!(objs[1]["external_references"][0]["source_name"], "osv");
    }

    #[test]
    fn anonymous_items_omit_the_source_org() {
        let mut s = sample("acme-bank");
        s.anonymous = true;
        let anon = identity_id(ANONYMOUS_ORG_ID);
        let objs = objects_for(&s, &ctx(&anon));
        for o in &objs {
            assert_common(o, &s, &anon);
            assert!(o.get("x_isac_source_org").is_none(), "{o}");
        }
        // The hub's anonymised copy.
        s.source = ANONYMOUS_ORG_ID.into();
        for o in objects_for(&s, &ctx(&anon)) {
            assert!(o.get("x_isac_source_org").is_none(), "{o}");
        }
        let b = bundle("anon", objs);
        let ids: Vec<&str> = b["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| str_of(o, "id"))
            .collect();
        assert!(ids.contains(&anon.as_str()), "anonymous identity included");
    }

    #[test]
    fn bulletin_report() {
        let mut s = sample("isac-staff");
        let related = Uuid::new_v4();
        s.body = Body::Bulletin(Bulletin {
            title: "Campaign against npm maintainers".into(),
            body: "Rotate tokens.\nSee related indicators.".into(),
            severity: Severity::Critical,
            incident_id: Some("INC-2026-042".into()),
            related: vec![related],
        });
        s.tlp = Tlp::Clear;
        let id = identity_id("isac-staff");
        let objs = objects_for(&s, &ctx(&id));
        assert_eq!(objs.len(), 1);
        let r = &objs[0];
        assert_common(r, &s, &id);
        assert_eq!(r["type"], "report");
        assert_eq!(str_of(r, "id"), stix_id("report", &s.id));
        assert_eq!(r["name"], "Campaign against npm maintainers");
        assert_eq!(r["description"], "Rotate tokens.\nSee related indicators.");
        assert_eq!(r["report_types"], json!(["threat-report"]));
        assert_eq!(r["published"], "2026-11-25T12:00:00.000Z");
        assert_eq!(r["object_refs"], json!([stix_id("indicator", &related)]));
        assert_eq!(r["x_isac_severity"], "critical");
        assert_eq!(
            r["object_marking_refs"],
            json!(["marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"])
        );
        assert!(r["external_references"]
            .as_array()
            .unwrap()
            .contains(&json!({"source_name": "isac-incident", "external_id": "INC-2026-042"})));

        if let Body::Bulletin(b) = &mut s.body {
            b.related.clear();
            b.incident_id = None;
        }
        let r = &objects_for(&s, &ctx(&id))[0];
        assert_common(r, &s, &id);
        assert_eq!(r["object_refs"], json!([id]), "never empty");
    }

    #[test]
    fn sighting_sro() {
        let mut s = sample("bob-bank");
        let target = Uuid::new_v4();
        s.body = Body::Sighting(Sighting {
            indicator: target,
            count: 3,
            first_seen: "2026-11-24T08:00:00Z".into(),
            last_seen: "2026-11-25T09:30:00Z".into(),
        });
        s.tlp = Tlp::AmberStrict;
        let id = identity_id("bob-bank");
        let objs = objects_for(&s, &ctx(&id));
        assert_eq!(objs.len(), 1);
        let o = &objs[0];
        assert_common(o, &s, &id);
        assert_eq!(o["type"], "sighting");
        assert_eq!(str_of(o, "id"), stix_id("sighting", &s.id));
        assert_eq!(str_of(o, "sighting_of_ref"), stix_id("indicator", &target));
        assert_eq!(o["count"], 3);
        assert_eq!(o["first_seen"], "2026-11-24T08:00:00.000Z");
        assert_eq!(o["last_seen"], "2026-11-25T09:30:00.000Z");
        assert_eq!(o["where_sighted_refs"], json!([id]));
        assert_eq!(
            o["object_marking_refs"],
            json!(["marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"])
        );
    }

    #[test]
    fn retraction_is_a_revocation_marker() {
        let original = sample("acme-bank");
        let mut s = sample("acme-bank");
        s.tlp = Tlp::Red;
        s.body = Body::Retraction(Retraction {
            target: original.id,
            reason: "false positive".into(),
        });
        let id = identity_id("acme-bank");
        let objs = objects_for(&s, &ctx(&id));
        assert_eq!(objs.len(), 1);
        let o = &objs[0];
        assert_common(o, &s, &id);
        assert_eq!(o["type"], "indicator");
        // Same id as the indicator it revokes.
        assert_eq!(o["id"], indicator_of(&original)["id"]);
        assert_eq!(o["revoked"], true);
        assert_eq!(o["x_isac_revocation_marker"], true);
        assert_eq!(o["x_isac_reason"], "false positive");
        assert_eq!(
            o["object_marking_refs"],
            json!(["marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"])
        );
        let report = revocation_for(&s, "report", &ctx(&id)).unwrap();
        assert_eq!(str_of(&report, "id"), stix_id("report", &original.id));
        assert!(revocation_for(&original, "indicator", &ctx(&id)).is_none());
    }

    #[test]
    fn bundle_shape_and_markings() {
        let green = sample("acme-bank");
        let mut red = sample("acme-bank");
        red.tlp = Tlp::Red;
        let id = identity_id("acme-bank");
        let mut objs = vec![identity("acme-bank", "Acme Bank")];
        objs.extend(objects_for(&green, &ctx(&id)));
        objs.extend(objects_for(&red, &ctx(&id)));
        let b = bundle("export-1", objs.clone());
        assert_eq!(b["type"], "bundle");
        assert!(is_stix_id(str_of(&b, "id"), "bundle"));
        assert_eq!(b, bundle("export-1", objs.clone()), "deterministic");
        assert_ne!(b["id"], bundle("export-2", objs.clone())["id"]);
        assert_eq!(b.as_object().unwrap().len(), 3, "only type, id, objects");
        let all = b["objects"].as_array().unwrap();
        assert_eq!(all.len(), objs.len() + 2);
        assert_eq!(all[0], tlp_marking_definition(Tlp::Green));
        assert_eq!(all[1], tlp_marking_definition(Tlp::Red));
        assert_eq!(
            all[0],
            json!({
                "type": "marking-definition",
                "spec_version": "2.1",
                "id": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
                "created": "2022-10-01T00:00:00.000Z",
                "name": "TLP:GREEN",
                "extensions": {
                    "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                        "extension_type": "property-extension",
                        "tlp_2_0": "green"
                    }
                }
            })
        );
        // Not included twice, nor the anonymous identity when unused.
        let again = bundle("export-1", all.clone());
        assert_eq!(again["objects"].as_array().unwrap().len(), all.len());
        for o in all {
            assert!(str_of(o, "id").starts_with(str_of(o, "type")));
            assert_eq!(o["spec_version"], "2.1");
            assert!(is_millis(str_of(o, "created")));
            if o["type"] != "marking-definition" {
                assert!(is_millis(str_of(o, "modified")));
            }
        }
        assert!(bundle("empty", vec![])["objects"]
            .as_array()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn all_tlp_marking_definitions_are_official() {
        let names = [
            "TLP:CLEAR",
            "TLP:GREEN",
            "TLP:AMBER",
            "TLP:AMBER+STRICT",
            "TLP:RED",
        ];
        let values = ["clear", "green", "amber", "amber+strict", "red"];
        for ((tlp, name), value) in ALL_LEVELS.into_iter().zip(names).zip(values) {
            let m = tlp_marking_definition(tlp);
            assert_eq!(m["id"], tlp.stix_marking_id());
            assert_eq!(m["name"], name);
            assert_eq!(m["created"], TLP_2_CREATED);
            assert_eq!(m["extensions"][TLP_2_EXTENSION_ID]["tlp_2_0"], value);
        }
    }
}
