//! Statements: what members sign and the hub relays. Two formats name their
//! canonical bytes, each by its DSSE payload type ([`Format`]):
//!
//! - **v1** (`application/vnd.isac.statement.v1+json`, verifiable forever):
//!   compact `serde_json` with fields in declaration order, every field
//!   present, absent values as `null` (except `on_behalf_of` and
//!   `no_forward`, absent unless set).
//! - **v2** (`application/vnd.isac.statement.v2+json`, what new publishes
//!   use): RFC 8785 (JCS, [`crate::jcs`]) of the statement's JSON with every
//!   absent optional field **omitted** (never `null`) and `no_forward`
//!   present only as `true`; lists and `anonymous` are always present. Any
//!   JCS library produces these bytes from the same fields in any key order
//!   or escape style. `docs/schema/statement.v2.schema.json` describes them.
//!
//! A payload that is not byte-identical to the canonical encoding (in its
//! format) of what it parses to is refused: no duplicate keys, no unknown
//! fields, no alternative spellings of the same statement.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::names::{is_slug, ANONYMOUS_ORG, HUB_ATTESTATION_ORG};
use crate::observable::{self, InvalidValue};
use crate::time::{parse_rfc3339, UnixSeconds};
use crate::tlp::Tlp;

/// Largest payload the hub or an agent will parse.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 16 * 1024;
pub const MAX_LIST_LEN: usize = 64;
pub const MAX_SHORT_FIELD_CHARS: usize = 256;
/// How far a statement's `created` may run ahead of the hub's clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Stable id across revisions (UUID v4 chosen by the source).
    pub id: Uuid,
    /// 1 for the first version; a new signed revision increments it.
    pub revision: u32,
    /// The publishing organisation's id. Must match the signing key's owner.
    pub source: String,
    /// When the source signed it (RFC 3339 UTC, whole seconds).
    pub created: String,
    pub tlp: Tlp,
    /// Named recipients as blinded commitments (`sha256:HEX`, see
    /// `audience.rs`); empty means "the whole community" where TLP allows.
    pub audience: Vec<String>,
    /// The source asks the hub to deliver this without its identity.
    pub anonymous: bool,
    pub body: Body,
    /// Set only on statements the hub signs for a member that submitted
    /// them over TAXII ([`HUB_ATTESTATION_ORG`] is then the source): the
    /// member it is attributed to. The hub attests that this member sent
    /// it; the member did not sign it. Absent (not `null`) otherwise, so
    /// member-signed statements keep their canonical bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// The author asks that this never leave the hub it was published at
    /// (federation, issue 20). Absent (never `false`) unless set, so
    /// statements signed before the field existed keep their canonical
    /// bytes, and an explicit `false` is refused as non-canonical.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_forward: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Body {
    Indicator(Indicator),
    /// An incident notice from a coordinator.
    Bulletin(Bulletin),
    /// "We saw it": derived from an indicator, never less restricted than it.
    Sighting(Sighting),
    /// Withdraws an item (by its source, or a coordinator who can see it).
    Retraction(Retraction),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sighting {
    pub indicator: Uuid,
    pub count: u32,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retraction {
    pub target: Uuid,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bulletin {
    pub title: String,
    /// Plain text (Markdown is shown as text).
    pub body: String,
    pub severity: Severity,
    /// The coordinators' incident reference, e.g. `INC-2026-042`.
    pub incident_id: Option<String>,
    /// Indicators this bulletin is about.
    pub related: Vec<Uuid>,
}

pub const MAX_BULLETIN_BODY_CHARS: usize = 32 * 1024;

impl Bulletin {
    pub fn validate(&self) -> Result<(), InvalidStatement> {
        check_single_line("title", &self.title, MAX_TITLE_CHARS, false)?;
        if self.body.trim().is_empty() {
            return Err(InvalidStatement::Field(
                "bulletin body must not be empty".into(),
            ));
        }
        if self.body.chars().count() > MAX_BULLETIN_BODY_CHARS {
            return Err(InvalidStatement::Field(format!(
                "bulletin body is longer than {MAX_BULLETIN_BODY_CHARS} characters"
            )));
        }
        if self
            .body
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(InvalidStatement::Field(
                "bulletin body must not contain control characters other than newline and tab"
                    .into(),
            ));
        }
        if let Some(i) = &self.incident_id {
            check_single_line("incident_id", i, 64, false)?;
        }
        if self.related.len() > MAX_LIST_LEN {
            return Err(InvalidStatement::Field(format!(
                "related has more than {MAX_LIST_LEN} entries"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => {
                return Err(format!(
                    "unknown severity `{s}`: use info, low, medium, high or critical"
                ))
            }
        })
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub observable: Observable,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    /// 0-100, as in STIX.
    pub confidence: u8,
    pub references: Vec<String>,
    pub tags: Vec<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub related: Vec<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageThreat {
    Malicious,
    Compromised,
    Typosquat,
    DependencyConfusion,
    Protestware,
}

/// What the indicator points at. The `kind` tag is the indicator kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Observable {
    Package {
        purl: String,
        /// Affected versions or ranges (e.g. `1.0.0`, `>=1.2.0 <1.2.5`); empty
        /// with a versioned purl means just that version; empty without one
        /// means every version.
        versions: Vec<String>,
        threat: PackageThreat,
        /// For typosquats: the purl of the package it imitates.
        imitates: Option<String>,
    },
    Artifact {
        sha256: Option<String>,
        sha512: Option<String>,
        purl: Option<String>,
        filename: Option<String>,
    },
    Repository {
        url: String,
        commit: Option<String>,
        tag: Option<String>,
    },
    Account {
        /// `PLATFORM:USERNAME`, e.g. `npm:evil-maintainer`.
        account: String,
    },
    Network {
        domain: Option<String>,
        ip: Option<String>,
        url: Option<String>,
    },
    Vulnerability {
        vuln_id: String,
        purls: Vec<String>,
    },
}

impl Observable {
    pub fn kind(&self) -> &'static str {
        match self {
            Observable::Package { .. } => "package",
            Observable::Artifact { .. } => "artifact",
            Observable::Repository { .. } => "repository",
            Observable::Account { .. } => "account",
            Observable::Network { .. } => "network",
            Observable::Vulnerability { .. } => "vulnerability",
        }
    }

    /// The one value an analyst would search for.
    pub fn primary_value(&self) -> String {
        match self {
            Observable::Package { purl, .. } => purl.clone(),
            Observable::Artifact { sha256, sha512, .. } => sha256
                .clone()
                .or_else(|| sha512.clone())
                .unwrap_or_default(),
            Observable::Repository { url, commit, tag } => match (commit, tag) {
                (Some(c), _) => format!("{url}@{c}"),
                (None, Some(t)) => format!("{url}@{t}"),
                _ => url.clone(),
            },
            Observable::Account { account } => account.clone(),
            Observable::Network { domain, ip, url } => domain
                .clone()
                .or_else(|| ip.clone())
                .or_else(|| url.clone())
                .unwrap_or_default(),
            Observable::Vulnerability { vuln_id, .. } => vuln_id.clone(),
        }
    }

    pub fn validate(&self) -> Result<(), InvalidStatement> {
        match self {
            Observable::Package {
                purl,
                versions,
                threat,
                imitates,
            } => {
                observable::parse_purl(purl)?;
                check_list("versions", versions, 256, MAX_SHORT_FIELD_CHARS, true)?;
                match (threat, imitates) {
                    (PackageThreat::Typosquat, Some(original)) => {
                        observable::parse_purl(original)?;
                    }
                    (PackageThreat::Typosquat, None) => {
                        return Err(InvalidStatement::Field(
                            "a typosquat must name the package it imitates (`imitates`)".into(),
                        ))
                    }
                    (_, Some(_)) => {
                        return Err(InvalidStatement::Field(
                            "`imitates` only applies to typosquats".into(),
                        ))
                    }
                    (_, None) => {}
                }
            }
            Observable::Artifact {
                sha256,
                sha512,
                purl,
                filename,
            } => {
                if sha256.is_none() && sha512.is_none() {
                    return Err(InvalidStatement::Field(
                        "an artifact needs a sha256 or sha512 digest".into(),
                    ));
                }
                if let Some(h) = sha256 {
                    observable::validate_sha256(h)?;
                }
                if let Some(h) = sha512 {
                    observable::validate_sha512(h)?;
                }
                if let Some(p) = purl {
                    observable::parse_purl(p)?;
                }
                if let Some(f) = filename {
                    check_single_line("filename", f, MAX_SHORT_FIELD_CHARS, false)?;
                }
            }
            Observable::Repository { url, commit, tag } => {
                observable::validate_repo_url(url)?;
                if let Some(c) = commit {
                    observable::validate_commit(c)?;
                }
                if let Some(t) = tag {
                    observable::validate_tag(t)?;
                }
            }
            Observable::Account { account } => observable::validate_account(account)?,
            Observable::Network { domain, ip, url } => {
                let given = [domain.is_some(), ip.is_some(), url.is_some()]
                    .iter()
                    .filter(|x| **x)
                    .count();
                if given != 1 {
                    return Err(InvalidStatement::Field(
                        "a network indicator needs exactly one of domain, ip or url".into(),
                    ));
                }
                if let Some(d) = domain {
                    observable::validate_domain(d)?;
                }
                if let Some(i) = ip {
                    observable::validate_ip(i)?;
                }
                if let Some(u) = url {
                    observable::validate_url(u)?;
                }
            }
            Observable::Vulnerability { vuln_id, purls } => {
                observable::validate_vuln_id(vuln_id)?;
                if purls.len() > 256 {
                    return Err(InvalidStatement::Field("at most 256 purls".into()));
                }
                for p in purls {
                    observable::parse_purl(p)?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidStatement {
    #[error(transparent)]
    Value(#[from] InvalidValue),
    #[error("{0}")]
    Field(String),
    #[error(transparent)]
    Time(#[from] crate::time::BadTimestamp),
}

fn check_single_line(
    field: &str,
    value: &str,
    max_chars: usize,
    allow_empty: bool,
) -> Result<(), InvalidStatement> {
    if !allow_empty && value.trim().is_empty() {
        return Err(InvalidStatement::Field(format!(
            "{field} must not be empty"
        )));
    }
    if value.chars().count() > max_chars {
        return Err(InvalidStatement::Field(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(InvalidStatement::Field(format!(
            "{field} must not contain control characters or line breaks"
        )));
    }
    Ok(())
}

fn check_list(
    field: &str,
    values: &[String],
    max_len: usize,
    max_chars: usize,
    allow_spaces: bool,
) -> Result<(), InvalidStatement> {
    if values.len() > max_len {
        return Err(InvalidStatement::Field(format!(
            "{field} has more than {max_len} entries"
        )));
    }
    for v in values {
        check_single_line(field, v, max_chars, false)?;
        if !allow_spaces && v.contains(' ') {
            return Err(InvalidStatement::Field(format!(
                "{field} entries must not contain spaces"
            )));
        }
    }
    Ok(())
}

impl Indicator {
    pub fn validate(&self) -> Result<(), InvalidStatement> {
        self.observable.validate()?;
        check_single_line("title", &self.title, MAX_TITLE_CHARS, false)?;
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(InvalidStatement::Field(format!(
                "description is longer than {MAX_DESCRIPTION_CHARS} characters"
            )));
        }
        if self
            .description
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(InvalidStatement::Field(
                "description must not contain control characters other than newline and tab".into(),
            ));
        }
        if self.confidence > 100 {
            return Err(InvalidStatement::Field(
                "confidence must be 0 to 100".into(),
            ));
        }
        check_list("references", &self.references, MAX_LIST_LEN, 2048, false)?;
        for r in &self.references {
            observable::validate_url(r)?;
        }
        check_list("tags", &self.tags, MAX_LIST_LEN, 64, true)?;
        if self.related.len() > MAX_LIST_LEN {
            return Err(InvalidStatement::Field(format!(
                "related has more than {MAX_LIST_LEN} entries"
            )));
        }
        let from = self.valid_from.as_deref().map(parse_rfc3339).transpose()?;
        let until = self.valid_until.as_deref().map(parse_rfc3339).transpose()?;
        if let (Some(f), Some(u)) = (from, until) {
            if u <= f {
                return Err(InvalidStatement::Field(
                    "valid_until must be after valid_from".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A statement format: its DSSE payload type and its canonical bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Declaration order, every field present, `null` for absent values.
    V1,
    /// RFC 8785 (JCS), absent optional fields omitted.
    V2,
}

impl Format {
    /// What new statements are signed in.
    pub const CURRENT: Format = Format::V2;

    pub fn payload_type(self) -> &'static str {
        match self {
            Format::V1 => crate::envelope::PAYLOAD_TYPE_STATEMENT_V1,
            Format::V2 => crate::envelope::PAYLOAD_TYPE_STATEMENT_V2,
        }
    }

    /// The format a DSSE payload type names, if it names a statement.
    pub fn from_payload_type(payload_type: &str) -> Option<Format> {
        match payload_type {
            crate::envelope::PAYLOAD_TYPE_STATEMENT_V1 => Some(Format::V1),
            crate::envelope::PAYLOAD_TYPE_STATEMENT_V2 => Some(Format::V2),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::V1 => "v1",
            Format::V2 => "v2",
        }
    }
}

/// Drops every `null` member of every object: v2 omits absent values.
fn omit_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(omit_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(omit_nulls),
        _ => {}
    }
}

impl Statement {
    /// The exact bytes that are signed in format v1 (declaration order,
    /// `null` for absent values). Kept for v1 statements, verifiable
    /// forever; new statements are signed with [`Statement::encode`] in
    /// [`Format::CURRENT`].
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("statements always serialise")
    }

    /// The exact bytes that are signed in format v2: RFC 8785 (JCS) of the
    /// statement with absent optional fields omitted.
    pub fn canonical_bytes_v2(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).expect("statements always serialise");
        omit_nulls(&mut value);
        crate::jcs::to_vec(&value)
    }

    /// The canonical bytes in `format`.
    pub fn encode(&self, format: Format) -> Vec<u8> {
        match format {
            Format::V1 => self.canonical_bytes(),
            Format::V2 => self.canonical_bytes_v2(),
        }
    }

    /// Parses signed payload bytes in `format`, refusing anything but that
    /// format's canonical encoding of a valid statement.
    pub fn decode(payload: &[u8], format: Format) -> Result<Self, InvalidStatement> {
        let statement = Self::parse_json(payload, format)?;
        if statement.encode(format) != payload {
            return Err(InvalidStatement::Field(match format {
                Format::V1 => "statement bytes are not in canonical form (field order, spacing, unknown or duplicate fields)".into(),
                Format::V2 => "statement bytes are not in canonical form for v2: RFC 8785 (JCS) of the statement with absent optional fields omitted, not null (key order, escapes, spacing, unknown or duplicate fields)".into(),
            }));
        }
        statement.validate()?;
        Ok(statement)
    }

    /// Parses signed payload bytes under their DSSE payload type.
    pub fn from_payload(payload_type: &str, payload: &[u8]) -> Result<Self, InvalidStatement> {
        let format = Format::from_payload_type(payload_type).ok_or_else(|| {
            let shown: String = payload_type.chars().take(80).collect();
            InvalidStatement::Field(format!(
                "`{}` is not a statement payload type",
                shown.escape_default()
            ))
        })?;
        Self::decode(payload, format)
    }

    /// Parses a payload that is the canonical encoding of a valid statement
    /// in either format (v1 or v2), for bytes already verified under their
    /// payload type (stored items). Verification itself binds the format to
    /// the payload type ([`Statement::from_payload`]). The two forms never
    /// coincide: v1 starts with `{"id":`, v2 with `{"anonymous":`.
    pub fn from_canonical_bytes(payload: &[u8]) -> Result<Self, InvalidStatement> {
        if payload.starts_with(b"{\"id\":") {
            Self::decode(payload, Format::V1)
        } else {
            Self::decode(payload, Format::V2)
        }
    }

    fn parse_json(payload: &[u8], format: Format) -> Result<Self, InvalidStatement> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(InvalidStatement::Field(format!(
                "statement is larger than {MAX_PAYLOAD_BYTES} bytes"
            )));
        }
        serde_json::from_slice(payload).map_err(|e| {
            InvalidStatement::Field(format!(
                "statement is not valid JSON for isac statement {}: {e}",
                format.as_str()
            ))
        })
    }

    pub fn created_at(&self) -> Result<UnixSeconds, InvalidStatement> {
        Ok(parse_rfc3339(&self.created)?)
    }

    pub fn kind(&self) -> &'static str {
        match &self.body {
            Body::Indicator(i) => i.observable.kind(),
            Body::Bulletin(_) => "bulletin",
            Body::Sighting(_) => "sighting",
            Body::Retraction(_) => "retraction",
        }
    }

    pub fn title(&self) -> &str {
        match &self.body {
            Body::Indicator(i) => &i.title,
            Body::Bulletin(b) => &b.title,
            Body::Sighting(_) => "sighting",
            Body::Retraction(r) => &r.reason,
        }
    }

    pub fn severity(&self) -> Severity {
        match &self.body {
            Body::Indicator(i) => i.severity,
            Body::Bulletin(b) => b.severity,
            Body::Sighting(_) | Body::Retraction(_) => Severity::Info,
        }
    }

    /// What an analyst would search for: the observable, or the incident id.
    pub fn primary_value(&self) -> String {
        match &self.body {
            Body::Indicator(i) => i.observable.primary_value(),
            Body::Bulletin(b) => b.incident_id.clone().unwrap_or_default(),
            Body::Sighting(s) => s.indicator.to_string(),
            Body::Retraction(r) => r.target.to_string(),
        }
    }

    /// The item a derived statement (sighting, retraction) refers to.
    pub fn target(&self) -> Option<Uuid> {
        match &self.body {
            Body::Sighting(s) => Some(s.indicator),
            Body::Retraction(r) => Some(r.target),
            Body::Indicator(_) | Body::Bulletin(_) => None,
        }
    }

    /// Every other statement id this one names: its target and its
    /// `related` ids. The hub keeps them so a member who learned an id from
    /// a reference gets the same answer whether or not that item exists.
    pub fn referenced_ids(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self.target().into_iter().collect();
        match &self.body {
            Body::Indicator(i) => ids.extend(&i.related),
            Body::Bulletin(b) => ids.extend(&b.related),
            Body::Sighting(_) | Body::Retraction(_) => {}
        }
        ids.retain(|id| *id != self.id);
        ids.sort();
        ids.dedup();
        ids
    }

    pub fn is_bulletin(&self) -> bool {
        matches!(self.body, Body::Bulletin(_))
    }

    /// The member the statement is from: the source, or for a hub-attested
    /// statement the member the hub attests for.
    pub fn author(&self) -> &str {
        self.on_behalf_of.as_deref().unwrap_or(&self.source)
    }

    pub fn validate(&self) -> Result<(), InvalidStatement> {
        if self.id.get_version_num() != 4 {
            return Err(InvalidStatement::Field(
                "id must be a random (v4) UUID".into(),
            ));
        }
        if self.revision == 0 {
            return Err(InvalidStatement::Field("revision starts at 1".into()));
        }
        if !is_slug(&self.source) {
            return Err(InvalidStatement::Field(format!(
                "source `{}` is not an organisation id",
                self.source.escape_default()
            )));
        }
        match &self.on_behalf_of {
            None if self.source == HUB_ATTESTATION_ORG => {
                return Err(InvalidStatement::Field(format!(
                    "a statement from `{HUB_ATTESTATION_ORG}` must name the member it is attested for"
                )));
            }
            None => {}
            Some(member) => {
                if self.source != HUB_ATTESTATION_ORG {
                    return Err(InvalidStatement::Field(format!(
                        "on_behalf_of is only for statements the hub attests (source `{HUB_ATTESTATION_ORG}`)"
                    )));
                }
                if !is_slug(member) || member == HUB_ATTESTATION_ORG || member == ANONYMOUS_ORG {
                    return Err(InvalidStatement::Field(format!(
                        "on_behalf_of `{}` is not a member organisation id",
                        member.escape_default()
                    )));
                }
                if self.anonymous {
                    return Err(InvalidStatement::Field(
                        "a hub-attested statement cannot be anonymous".into(),
                    ));
                }
            }
        }
        self.created_at()?;
        if self.audience.len() > MAX_LIST_LEN {
            return Err(InvalidStatement::Field(format!(
                "audience has more than {MAX_LIST_LEN} entries"
            )));
        }
        if !self
            .audience
            .iter()
            .all(|c| crate::audience::is_commitment(c))
        {
            return Err(InvalidStatement::Field(
                "audience entries must be sha256:HEX commitments".into(),
            ));
        }
        if self.audience.is_empty() && matches!(self.tlp, Tlp::AmberStrict | Tlp::Red) {
            return Err(InvalidStatement::Field(format!(
                "{} requires an audience",
                self.tlp
            )));
        }
        match &self.body {
            Body::Indicator(i) => i.validate(),
            Body::Bulletin(b) => b.validate(),
            Body::Sighting(s) => {
                parse_rfc3339(&s.first_seen)?;
                parse_rfc3339(&s.last_seen)?;
                if s.count == 0 {
                    return Err(InvalidStatement::Field(
                        "a sighting counts at least 1".into(),
                    ));
                }
                if parse_rfc3339(&s.last_seen)? < parse_rfc3339(&s.first_seen)? {
                    return Err(InvalidStatement::Field(
                        "last_seen is before first_seen".into(),
                    ));
                }
                Ok(())
            }
            Body::Retraction(r) => check_single_line("reason", &r.reason, MAX_TITLE_CHARS, true),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample(source: &str) -> Statement {
        Statement {
            id: Uuid::new_v4(),
            revision: 1,
            source: source.into(),
            created: "2026-11-25T12:00:00Z".into(),
            tlp: Tlp::Green,
            audience: vec![],
            anonymous: false,
            on_behalf_of: None,
            no_forward: false,
            body: Body::Indicator(Indicator {
                observable: Observable::Package {
                    purl: "pkg:npm/evil-pkg@1.0.0".into(),
                    versions: vec![],
                    threat: PackageThreat::Malicious,
                    imitates: None,
                },
                title: "evil-pkg steals npm tokens".into(),
                description: "postinstall script exfiltrates ~/.npmrc".into(),
                severity: Severity::High,
                confidence: 90,
                references: vec!["https://example.org/advisory".into()],
                tags: vec!["credential-theft".into()],
                valid_from: None,
                valid_until: None,
                related: vec![],
            }),
        }
    }

    #[test]
    fn canonical_round_trip() {
        let s = sample("acme-bank");
        let bytes = s.canonical_bytes();
        assert_eq!(Statement::from_canonical_bytes(&bytes).unwrap(), s);
    }

    #[test]
    fn refuses_non_canonical_spellings() {
        let s = sample("acme-bank");
        let text = String::from_utf8(s.canonical_bytes()).unwrap();
        // Whitespace.
        let spaced = text.replacen(",", ", ", 1);
        assert!(Statement::from_canonical_bytes(spaced.as_bytes()).is_err());
        // Unknown field.
        let extra = text.replacen("{", "{\"x\":1,", 1);
        assert!(Statement::from_canonical_bytes(extra.as_bytes()).is_err());
        // Duplicate key: a second `source` appended at the end.
        let dup = format!("{},\"source\":\"other\"}}", &text[..text.len() - 1]);
        assert!(Statement::from_canonical_bytes(dup.as_bytes()).is_err());
        // Missing tlp fails closed.
        let no_tlp = text.replace("\"tlp\":\"green\",", "");
        assert!(Statement::from_canonical_bytes(no_tlp.as_bytes()).is_err());
        let bad_tlp = text.replace("\"tlp\":\"green\"", "\"tlp\":\"white\"");
        assert!(Statement::from_canonical_bytes(bad_tlp.as_bytes()).is_err());
        assert!(Statement::from_canonical_bytes(b"").is_err());
        assert!(Statement::from_canonical_bytes(&vec![b'['; 100_000]).is_err());
    }

    #[test]
    fn deeply_nested_json_is_refused_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(Statement::from_canonical_bytes(deep.as_bytes()).is_err());
    }

    #[test]
    fn bulletins_validate() {
        let mut s = sample("isac-staff");
        s.body = Body::Bulletin(Bulletin {
            title: "Campaign against npm maintainers".into(),
            body: "Rotate tokens.\nSee related indicators.".into(),
            severity: Severity::Critical,
            incident_id: Some("INC-2026-042".into()),
            related: vec![],
        });
        assert!(s.validate().is_ok());
        assert_eq!(s.kind(), "bulletin");
        let bytes = s.canonical_bytes();
        assert_eq!(Statement::from_canonical_bytes(&bytes).unwrap(), s);
        if let Body::Bulletin(b) = &mut s.body {
            b.body = " ".into();
        }
        assert!(s.validate().is_err());
    }

    #[test]
    fn validation_rules() {
        let mut s = sample("acme-bank");
        s.revision = 0;
        assert!(s.validate().is_err());

        let mut s = sample("Acme Bank");
        assert!(s.validate().is_err());
        s.source = "acme-bank".into();
        s.created = "noon".into();
        assert!(s.validate().is_err());

        let mut s = sample("acme-bank");
        if let Body::Indicator(i) = &mut s.body {
            i.title = "two\nlines".into();
        }
        assert!(s.validate().is_err());

        let mut s = sample("acme-bank");
        if let Body::Indicator(i) = &mut s.body {
            i.confidence = 101;
        }
        assert!(s.validate().is_err());

        let mut s = sample("acme-bank");
        if let Body::Indicator(i) = &mut s.body {
            i.observable = Observable::Network {
                domain: Some("evil.example".into()),
                ip: Some("192.0.2.1".into()),
                url: None,
            };
        }
        assert!(s.validate().is_err(), "two network values");

        let mut s = sample("acme-bank");
        if let Body::Indicator(i) = &mut s.body {
            i.observable = Observable::Package {
                purl: "pkg:npm/reqeusts".into(),
                versions: vec![],
                threat: PackageThreat::Typosquat,
                imitates: None,
            };
        }
        assert!(s.validate().is_err(), "typosquat without original");

        let mut s = sample("acme-bank");
        if let Body::Indicator(i) = &mut s.body {
            i.valid_from = Some("2026-11-25T12:00:00Z".into());
            i.valid_until = Some("2026-11-25T11:00:00Z".into());
        }
        assert!(s.validate().is_err(), "until before from");
    }

    #[test]
    fn slugs() {
        assert!(is_slug("acme-bank"));
        assert!(is_slug("bank_2"));
        assert!(!is_slug(""));
        assert!(!is_slug("-acme"));
        assert!(!is_slug("Acme"));
        assert!(!is_slug("a/b"));
        assert!(!is_slug(&"a".repeat(64)));
    }

    #[test]
    fn hub_attested_statements() {
        // Member-signed statements do not carry the field at all.
        let plain = sample("acme");
        let bytes = String::from_utf8(plain.canonical_bytes()).unwrap();
        assert!(!bytes.contains("on_behalf_of"));
        assert_eq!(plain.author(), "acme");

        let mut attested = sample(HUB_ATTESTATION_ORG);
        attested.on_behalf_of = Some("acme".into());
        attested.validate().unwrap();
        assert_eq!(attested.author(), "acme");
        let bytes = attested.canonical_bytes();
        assert_eq!(Statement::from_canonical_bytes(&bytes).unwrap(), attested);
        assert!(String::from_utf8(bytes)
            .unwrap()
            .ends_with(r#","on_behalf_of":"acme"}"#));

        let bad = |f: &dyn Fn(&mut Statement)| {
            let mut s = attested.clone();
            f(&mut s);
            s.validate().unwrap_err()
        };
        bad(&|s| s.on_behalf_of = None);
        bad(&|s| s.source = "acme".into());
        bad(&|s| s.on_behalf_of = Some(HUB_ATTESTATION_ORG.into()));
        bad(&|s| s.on_behalf_of = Some("anonymous".into()));
        bad(&|s| s.on_behalf_of = Some("Not A Slug".into()));
        bad(&|s| s.anonymous = true);
        // `null` is not the canonical spelling of "absent".
        let mut json = String::from_utf8(plain.canonical_bytes()).unwrap();
        json.pop();
        json.push_str(r#","on_behalf_of":null}"#);
        assert!(Statement::from_canonical_bytes(json.as_bytes()).is_err());
    }

    /// One statement of every body and observable kind, optional fields
    /// both set and absent: what the v2 tests run over.
    pub fn every_kind(source: &str) -> Vec<Statement> {
        let base = sample(source);
        let with = |body: Body| Statement {
            body,
            ..base.clone()
        };
        let indicator = |observable: Observable| {
            let Body::Indicator(mut i) = base.body.clone() else {
                unreachable!()
            };
            i.observable = observable;
            with(Body::Indicator(i))
        };
        let mut out = vec![
            base.clone(),
            indicator(Observable::Package {
                purl: "pkg:npm/reqeusts".into(),
                versions: vec![">=1.0.0 <1.2.0".into()],
                threat: PackageThreat::Typosquat,
                imitates: Some("pkg:npm/requests".into()),
            }),
            indicator(Observable::Artifact {
                sha256: Some(
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
                ),
                sha512: None,
                purl: None,
                filename: Some("évil.tgz".into()),
            }),
            indicator(Observable::Repository {
                url: "https://github.com/acme/widget".into(),
                commit: None,
                tag: Some("v1.2.3".into()),
            }),
            indicator(Observable::Account {
                account: "npm:evil-maintainer".into(),
            }),
            indicator(Observable::Network {
                domain: None,
                ip: Some("192.0.2.1".into()),
                url: None,
            }),
            indicator(Observable::Vulnerability {
                vuln_id: "GHSA-xxxx-xxxx-xxxx".into(),
                purls: vec!["pkg:npm/a@1".into()],
            }),
            with(Body::Bulletin(Bulletin {
                title: "Campagne « été » contre npm".into(),
                body: "Rotate tokens.\n\tSee \"related\" \\ indicators.".into(),
                severity: Severity::Critical,
                incident_id: None,
                related: vec![base.id],
            })),
            with(Body::Sighting(Sighting {
                indicator: base.id,
                count: 4_000_000_000,
                first_seen: "2026-11-25T12:00:00Z".into(),
                last_seen: "2026-11-25T13:00:00Z".into(),
            })),
            with(Body::Retraction(Retraction {
                target: base.id,
                reason: String::new(),
            })),
        ];
        let mut full = base.clone();
        full.no_forward = true;
        full.audience = vec![format!("sha256:{}", "ab".repeat(32))];
        full.tlp = Tlp::Amber;
        if let Body::Indicator(i) = &mut full.body {
            i.valid_from = Some("2026-11-25T12:00:00Z".into());
            i.valid_until = Some("2026-12-25T12:00:00Z".into());
        }
        out.push(full);
        let mut attested = sample(HUB_ATTESTATION_ORG);
        attested.on_behalf_of = Some("acme".into());
        out.push(attested);
        out
    }

    fn v2_text(s: &Statement) -> String {
        String::from_utf8(s.canonical_bytes_v2()).unwrap()
    }

    #[test]
    fn v2_round_trips_every_kind_and_differs_from_v1() {
        for s in every_kind("acme-bank") {
            s.validate().unwrap();
            let v2 = s.canonical_bytes_v2();
            assert_eq!(Statement::decode(&v2, Format::V2).unwrap(), s);
            assert_eq!(Statement::from_payload(PAYLOAD_TYPE_V2, &v2).unwrap(), s);
            assert_eq!(Statement::from_canonical_bytes(&v2).unwrap(), s);
            // It is its own JCS form (our reader agrees with our writer).
            assert_eq!(crate::jcs::canonicalize(&v2).unwrap(), v2);
            // v1 stays as it was, and each format refuses the other's bytes.
            let v1 = s.canonical_bytes();
            assert_ne!(v1, v2);
            assert_eq!(Statement::decode(&v1, Format::V1).unwrap(), s);
            assert_eq!(Statement::from_canonical_bytes(&v1).unwrap(), s);
            assert!(Statement::decode(&v1, Format::V2).is_err());
            assert!(Statement::decode(&v2, Format::V1).is_err());
            assert!(!v2_text(&s).contains("null"), "{}", v2_text(&s));
        }
    }

    const PAYLOAD_TYPE_V2: &str = crate::envelope::PAYLOAD_TYPE_STATEMENT_V2;

    #[test]
    fn v2_is_sorted_and_omits_absent_values() {
        let s = sample("acme-bank");
        let text = v2_text(&s);
        assert!(
            text.starts_with(
                r#"{"anonymous":false,"audience":[],"body":{"confidence":90,"description":"#
            ),
            "{text}"
        );
        assert!(text.contains(r#""observable":{"kind":"package","purl":"pkg:npm/evil-pkg@1.0.0","threat":"malicious","versions":[]}"#), "{text}");
        assert!(!text.contains("valid_from") && !text.contains("imitates"));
        assert!(!text.contains("no_forward") && !text.contains("on_behalf_of"));
        assert!(text.ends_with(r#""revision":1,"source":"acme-bank","tlp":"green"}"#));
    }

    /// The same fields in another key order, with other escapes and
    /// spacing, canonicalise (with any JCS implementation) to the v2 bytes.
    #[test]
    fn v2_other_spellings_canonicalise_to_the_same_bytes() {
        for s in every_kind("acme-bank") {
            let v2 = s.canonical_bytes_v2();
            // Declaration order (v1's), nulls dropped, pretty-printed, every
            // non-ASCII character escaped as \uXXXX.
            let mut value = serde_json::to_value(&s).unwrap();
            super::omit_nulls(&mut value);
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            let escaped: String = pretty
                .chars()
                .map(|c| {
                    if c.is_ascii() {
                        c.to_string()
                    } else {
                        c.encode_utf16(&mut [0; 2])
                            .iter()
                            .map(|u| format!("\\u{u:04x}"))
                            .collect()
                    }
                })
                .collect();
            assert_eq!(crate::jcs::canonicalize(escaped.as_bytes()).unwrap(), v2);
            // But only the canonical bytes themselves are accepted as a payload.
            if escaped.as_bytes() != v2.as_slice() {
                assert!(Statement::decode(escaped.as_bytes(), Format::V2).is_err());
            }
        }
        let mut s = sample("acme-bank");
        if let Body::Indicator(i) = &mut s.body {
            i.title = "café".into();
        }
        let v2 = v2_text(&s);
        assert!(v2.contains("café"));
        let escaped = v2.replace("café", "caf\\u00e9");
        assert!(Statement::decode(escaped.as_bytes(), Format::V2).is_err());
        assert_eq!(
            crate::jcs::canonicalize(escaped.as_bytes()).unwrap(),
            v2.as_bytes()
        );
    }

    #[test]
    fn v2_refuses_other_spellings_of_a_statement() {
        let s = sample("acme-bank");
        let text = v2_text(&s);
        let refused = |bad: &str, why: &str| {
            assert!(
                Statement::decode(bad.as_bytes(), Format::V2).is_err(),
                "{why}: {bad}"
            );
        };
        refused(&text.replacen(',', ", ", 1), "whitespace");
        refused(&format!("{text}\n"), "trailing newline");
        refused(
            &text.replacen(
                r#""anonymous":false,"#,
                r#""anonymous":false,"anonymous":false,"#,
                1,
            ),
            "duplicate key",
        );
        refused(&text.replacen('{', r#"{"x":1,"#, 1), "unknown field");
        refused(
            &text.replacen('{', r#"{"a":1,"#, 1),
            "unknown field sorted first",
        );
        refused(
            &text.replacen(r#""revision":1"#, r#""revision":1.0"#, 1),
            "non-canonical number",
        );
        refused(&text.replacen(r#""audience":[],"#, "", 1), "missing list");
        refused(
            &text.replacen(r#""anonymous":false,"#, "", 1),
            "missing anonymous",
        );
        refused(
            &text.replacen(r#""tlp":"green""#, r#""tlp":"white""#, 1),
            "bad tlp",
        );
        // `null` is never the v2 spelling of an absent value.
        refused(
            &text.replacen(r#""revision":"#, r#""on_behalf_of":null,"revision":"#, 1),
            "null on_behalf_of",
        );
        let with_null = text.replacen(r#""title":"#, r#""valid_from":null,"title":"#, 1);
        refused(&with_null, "null valid_from");
        refused(
            &text.replacen(r#""source":"#, r#""no_forward":false,"source":"#, 1),
            "explicit no_forward false",
        );
        // Key order by UTF-16 is the only order.
        let unsorted = text.replacen(
            r#"{"anonymous":false,"audience":[],"#,
            r#"{"audience":[],"anonymous":false,"#,
            1,
        );
        refused(&unsorted, "unsorted keys");
        refused("", "empty");
        refused(&"[".repeat(100_000), "deep");
        refused(&" ".repeat(MAX_PAYLOAD_BYTES + 1), "too large");
        assert!(Statement::from_payload("application/json", text.as_bytes()).is_err());
    }

    #[test]
    fn no_forward_is_absent_unless_set() {
        let plain = sample("acme");
        let bytes = plain.canonical_bytes();
        assert!(!String::from_utf8(bytes.clone())
            .unwrap()
            .contains("no_forward"));
        assert!(!Statement::from_canonical_bytes(&bytes).unwrap().no_forward);

        let mut home = sample("acme");
        home.no_forward = true;
        let bytes = home.canonical_bytes();
        assert!(String::from_utf8(bytes.clone())
            .unwrap()
            .ends_with(r#","no_forward":true}"#));
        assert_eq!(Statement::from_canonical_bytes(&bytes).unwrap(), home);
        assert_ne!(bytes, plain.canonical_bytes());

        // An explicit `false` would give one statement two signed spellings.
        let mut json = String::from_utf8(plain.canonical_bytes()).unwrap();
        json.pop();
        json.push_str(r#","no_forward":false}"#);
        assert!(Statement::from_canonical_bytes(json.as_bytes()).is_err());
    }
}
