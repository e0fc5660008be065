//! An indicator as a person writes it (command-line flags or a JSON file),
//! turned into a statement ready to sign. Every mistake is reported here,
//! before anything is sent.

use isac_core::audience::AudienceOpening;
use isac_core::statement::{Body, Indicator, Observable, PackageThreat, Severity, Statement};
use isac_core::tlp::AudienceRef;
use isac_core::Tlp;
use serde::Deserialize;
use uuid::Uuid;

use crate::error::AgentError;

/// Field names match the `publish` flags (`--repo-url` is `repo_url`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorDraft {
    pub kind: Option<String>,
    pub purl: Option<String>,
    pub versions: Option<Vec<String>>,
    pub threat: Option<String>,
    pub imitates: Option<String>,
    pub sha256: Option<String>,
    pub sha512: Option<String>,
    pub filename: Option<String>,
    pub repo_url: Option<String>,
    pub commit: Option<String>,
    pub tag: Option<String>,
    pub account: Option<String>,
    pub domain: Option<String>,
    pub ip: Option<String>,
    pub url: Option<String>,
    pub vuln_id: Option<String>,
    pub affected_purls: Option<Vec<String>>,
    pub tlp: Option<String>,
    pub audience: Option<Vec<String>>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub severity: Option<String>,
    pub confidence: Option<u8>,
    pub references: Option<Vec<String>>,
    pub labels: Option<Vec<String>>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub related: Option<Vec<String>>,
    /// Ask the hub to deliver it without our identity.
    pub anonymous: Option<bool>,
    /// Keep it at our hub: never forwarded to a peer hub (signed, so no
    /// hub on the way can drop the mark).
    pub no_forward: Option<bool>,
}

/// A statement ready to sign, with the openings of its blinded audience
/// (kept by the source, given to the hub beside the envelope).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub statement: Statement,
    pub openings: Vec<AudienceOpening>,
    /// What the scan before signing found and the person let through
    /// (`crate::scrub`), told to the hub for its audit log.
    pub overrides: Vec<String>,
}

/// Parses `--audience` entries and blinds them with fresh random salts.
pub fn blind_audience(
    entries: &[String],
) -> Result<(Vec<String>, Vec<AudienceOpening>), AgentError> {
    let mut openings: Vec<AudienceOpening> = Vec::with_capacity(entries.len());
    for e in entries {
        let entry: AudienceRef = e
            .parse()
            .map_err(|e: isac_core::tlp::BadAudience| AgentError::Usage(e.to_string()))?;
        if openings.iter().any(|o| o.entry == entry) {
            return Err(AgentError::Usage(format!(
                "audience entry `{entry}` is listed twice"
            )));
        }
        let mut salt = [0u8; 16];
        openssl::rand::rand_bytes(&mut salt)?;
        openings.push(AudienceOpening::new(entry, isac_core::hex::encode(&salt)));
    }
    Ok((
        openings.iter().map(AudienceOpening::commitment).collect(),
        openings,
    ))
}

pub const KINDS: [&str; 6] = [
    "package",
    "artifact",
    "repository",
    "account",
    "network",
    "vulnerability",
];

impl IndicatorDraft {
    /// Fields set in `other` replace ours (flags over a JSON file).
    pub fn overlay(mut self, other: IndicatorDraft) -> Self {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            kind,
            purl,
            versions,
            threat,
            imitates,
            sha256,
            sha512,
            filename,
            repo_url,
            commit,
            tag,
            account,
            domain,
            ip,
            url,
            vuln_id,
            affected_purls,
            tlp,
            audience,
            title,
            description,
            severity,
            confidence,
            references,
            labels,
            valid_from,
            valid_until,
            related,
            anonymous,
            no_forward
        );
        self
    }

    /// The observable flags that were given, by the kind each belongs to.
    fn given(&self) -> Vec<(&'static str, &'static str)> {
        let mut g = Vec::new();
        let mut add = |set: bool, flag, kind| {
            if set {
                g.push((flag, kind));
            }
        };
        add(self.purl.is_some(), "--purl", "package");
        add(self.versions.is_some(), "--versions", "package");
        add(self.threat.is_some(), "--threat", "package");
        add(self.imitates.is_some(), "--imitates", "package");
        add(self.sha256.is_some(), "--sha256", "artifact");
        add(self.sha512.is_some(), "--sha512", "artifact");
        add(self.filename.is_some(), "--filename", "artifact");
        add(self.repo_url.is_some(), "--repo-url", "repository");
        add(self.commit.is_some(), "--commit", "repository");
        add(self.tag.is_some(), "--tag", "repository");
        add(self.account.is_some(), "--account", "account");
        add(self.domain.is_some(), "--domain", "network");
        add(self.ip.is_some(), "--ip", "network");
        add(self.url.is_some(), "--url", "network");
        add(self.vuln_id.is_some(), "--vuln-id", "vulnerability");
        add(
            self.affected_purls.is_some(),
            "--affected-purl",
            "vulnerability",
        );
        g
    }

    fn kind(&self) -> Result<&'static str, AgentError> {
        let given = self.given();
        let kind = match &self.kind {
            Some(k) => *KINDS.iter().find(|x| **x == k.as_str()).ok_or_else(|| {
                AgentError::Usage(format!("unknown --kind `{k}`: use one of {}", KINDS.join(", ")))
            })?,
            // A hash names an artifact; a --purl beside it is the package
            // the artifact came from, not a package indicator.
            None if given.iter().any(|(_, k)| *k == "artifact") => "artifact",
            None => match given.first() {
                Some((_, kind)) => kind,
                None => {
                    return Err(AgentError::Usage(
                        "say what the indicator is about: --purl, --sha256/--sha512, --repo-url, --account, --domain/--ip/--url or --vuln-id".into(),
                    ))
                }
            },
        };
        // An artifact may name the package it came from.
        let misfits: Vec<&str> = given
            .iter()
            .filter(|(flag, k)| *k != kind && !(kind == "artifact" && *flag == "--purl"))
            .map(|(flag, _)| *flag)
            .collect();
        if !misfits.is_empty() {
            return Err(AgentError::Usage(format!(
                "{} does not fit --kind {kind}",
                misfits.join(", ")
            )));
        }
        Ok(kind)
    }

    fn observable(&self, kind: &str) -> Result<Observable, AgentError> {
        let need = |v: &Option<String>, flag: &str| {
            v.clone()
                .ok_or_else(|| AgentError::Usage(format!("--kind {kind} needs {flag}")))
        };
        let lower = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_ascii_lowercase());
        Ok(match kind {
            "package" => Observable::Package {
                purl: need(&self.purl, "--purl")?,
                versions: self.versions.clone().unwrap_or_default(),
                threat: match self.threat.as_deref().unwrap_or("malicious") {
                    "malicious" => PackageThreat::Malicious,
                    "compromised" => PackageThreat::Compromised,
                    "typosquat" => PackageThreat::Typosquat,
                    "dependency-confusion" | "dependency_confusion" => PackageThreat::DependencyConfusion,
                    "protestware" => PackageThreat::Protestware,
                    other => {
                        return Err(AgentError::Usage(format!(
                            "unknown --threat `{other}`: use malicious, compromised, typosquat, dependency-confusion or protestware"
                        )))
                    }
                },
                imitates: self.imitates.clone(),
            },
            "artifact" => Observable::Artifact {
                sha256: lower(&self.sha256),
                sha512: lower(&self.sha512),
                purl: self.purl.clone(),
                filename: self.filename.clone(),
            },
            "repository" => Observable::Repository {
                url: need(&self.repo_url, "--repo-url")?,
                commit: lower(&self.commit),
                tag: self.tag.clone(),
            },
            "account" => Observable::Account {
                account: need(&self.account, "--account")?,
            },
            "network" => Observable::Network {
                domain: lower(&self.domain),
                ip: self.ip.as_ref().map(|s| s.trim().to_owned()),
                url: self.url.clone(),
            },
            "vulnerability" => Observable::Vulnerability {
                vuln_id: need(&self.vuln_id, "--vuln-id")?,
                purls: self.affected_purls.clone().unwrap_or_default(),
            },
            _ => unreachable!("kind() only returns known kinds"),
        })
    }

    /// A person's `versions` (flags, a JSON file, a CSV row, the console),
    /// read per ecosystem before anything is signed: see
    /// [`check_versions`]. OSV imports keep the versions their record
    /// gives (matching says "unknown" for what it cannot read), so this is
    /// not part of [`IndicatorDraft::into_prepared`].
    pub fn check_versions(&self) -> Result<(), AgentError> {
        match (&self.purl, &self.versions) {
            (Some(purl), Some(versions)) => check_versions(purl, versions),
            _ => Ok(()),
        }
    }

    /// Builds and validates the statement `source` will sign (no audience openings).
    pub fn into_statement(self, source: &str, created: String) -> Result<Statement, AgentError> {
        Ok(self.into_prepared(source, created)?.statement)
    }

    /// Builds and validates the statement `source` will sign, with its audience blinded.
    pub fn into_prepared(self, source: &str, created: String) -> Result<Prepared, AgentError> {
        let kind = self.kind()?;
        let observable = self.observable(kind)?;
        let tlp = required_tlp(self.tlp.as_deref())?;
        let severity: Severity = self
            .severity
            .as_deref()
            .unwrap_or("medium")
            .parse()
            .map_err(AgentError::Usage)?;
        let confidence = self.confidence.unwrap_or(50);
        let related = parse_related(&self.related.unwrap_or_default())?;
        let body = Body::Indicator(Indicator {
            observable,
            title: self
                .title
                .ok_or_else(|| AgentError::Usage("--title is required".into()))?,
            description: self.description.unwrap_or_default(),
            severity,
            confidence,
            references: self.references.unwrap_or_default(),
            tags: self.labels.unwrap_or_default(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            related,
        });
        let mut prepared = new_statement(
            source,
            created,
            tlp,
            &self.audience.unwrap_or_default(),
            self.anonymous.unwrap_or(false),
            body,
        )?;
        prepared.statement.no_forward = self.no_forward.unwrap_or(false);
        Ok(prepared)
    }
}

fn required_tlp(tlp: Option<&str>) -> Result<Tlp, AgentError> {
    tlp.ok_or_else(|| {
        AgentError::Usage("--tlp is required: clear, green, amber, amber+strict or red".into())
    })?
    .parse()
    .map_err(|e: isac_core::tlp::UnknownTlp| AgentError::Usage(e.to_string()))
}

fn parse_related(related: &[String]) -> Result<Vec<Uuid>, AgentError> {
    related
        .iter()
        .map(|r| {
            Uuid::parse_str(r)
                .map_err(|_| AgentError::Usage(format!("--related `{r}` is not a UUID")))
        })
        .collect()
}

fn check_rules(tlp: Tlp, openings: &[AudienceOpening]) -> Result<(), AgentError> {
    let entries: Vec<AudienceRef> = openings.iter().map(|o| o.entry.clone()).collect();
    isac_core::audience::check_audience_rules(tlp, &entries)
        .map_err(|e| AgentError::Usage(e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn base() -> IndicatorDraft {
        IndicatorDraft {
            tlp: Some("green".into()),
            title: Some("bad".into()),
            ..Default::default()
        }
    }

    fn build(d: IndicatorDraft) -> Result<Statement, AgentError> {
        d.into_statement("acme-bank", "2026-11-25T12:00:00Z".into())
    }

    #[test]
    fn no_forward_is_signed_only_when_asked() {
        let d = || IndicatorDraft {
            kind: Some("network".into()),
            domain: Some("evil.example".into()),
            ..base()
        };
        assert!(!build(d()).unwrap().no_forward);
        let home = build(IndicatorDraft {
            no_forward: Some(true),
            ..d()
        })
        .unwrap();
        assert!(home.no_forward);
        assert!(String::from_utf8(home.canonical_bytes())
            .unwrap()
            .contains(r#""no_forward":true"#));
    }

    /// Purls the lenient receive-side parser (`isac_core::observable`)
    /// takes but the packages parser refuses: a Maven purl without its
    /// group, a raw `@` inside an npm name, a PyPI purl with a namespace.
    pub(crate) const LENIENT_ONLY: [(&str, &str); 3] = [
        (
            "pkg:maven/log4j-core@2.14.1",
            "needs a namespace (the groupId)",
        ),
        ("pkg:npm/a@b@1.0.0", "unencoded `@`"),
        ("pkg:pypi/ns/requests", "has no namespace"),
    ];

    pub(crate) fn refused_for(e: AgentError, field: &str, why: &str) {
        assert!(matches!(e, AgentError::Usage(_)), "{e:?} is not exit 64");
        let e = e.to_string();
        assert!(e.contains(&format!("{field} `")), "{e}");
        assert!(e.contains("is not a valid package URL"), "{e}");
        assert!(e.contains(why), "{e}");
    }

    #[test]
    fn lenient_only_purls_are_accepted_on_receive() {
        for (purl, _) in LENIENT_ONLY {
            assert!(isac_core::observable::parse_purl(purl).is_ok(), "{purl}");
            assert!(purl.parse::<isac_packages::purl::Purl>().is_err(), "{purl}");
        }
    }

    #[test]
    fn flags_and_json_with_a_lenient_only_purl_are_refused() {
        for (bad, why) in LENIENT_ONLY {
            let e = build(IndicatorDraft {
                purl: Some(bad.into()),
                ..base()
            })
            .unwrap_err();
            refused_for(e, "purl", why);
            let e = build(IndicatorDraft {
                purl: Some("pkg:npm/reqeusts".into()),
                threat: Some("typosquat".into()),
                imitates: Some(bad.into()),
                ..base()
            })
            .unwrap_err();
            refused_for(e, "imitates", why);
            let e = build(IndicatorDraft {
                kind: Some("artifact".into()),
                sha256: Some("a".repeat(64)),
                purl: Some(bad.into()),
                ..base()
            })
            .unwrap_err();
            refused_for(e, "purl", why);
            let e = build(IndicatorDraft {
                vuln_id: Some("CVE-2021-44228".into()),
                affected_purls: Some(vec!["pkg:npm/ok".into(), bad.into()]),
                ..base()
            })
            .unwrap_err();
            refused_for(e, "affected_purls[1]", why);
            let json = serde_json::json!({"purl": bad, "tlp": "green", "title": "t"});
            let d: IndicatorDraft = serde_json::from_value(json).unwrap();
            refused_for(build(d).unwrap_err(), "purl", why);
        }
    }

    #[test]
    fn csv_rows_with_a_lenient_only_purl_are_refused() {
        for (bad, why) in LENIENT_ONLY {
            let text = format!("kind,purl,tlp,title\npackage,{bad},green,t\n");
            let rows = crate::csv::drafts_from_csv(&text).unwrap();
            let (_, row) = rows.into_iter().next().unwrap();
            refused_for(build(row.unwrap()).unwrap_err(), "purl", why);
        }
    }

    #[test]
    fn stix_software_with_a_lenient_only_purl_is_refused() {
        for (bad, why) in LENIENT_ONLY {
            let bundle = serde_json::json!({
                "type": "bundle",
                "id": "bundle--5b1c4e4a-6a3c-4a43-9d1a-2d6b7a1c0d11",
                "objects": [{
                    "type": "software",
                    "spec_version": "2.1",
                    "id": "software--8c5a2c44-3f5e-4a8e-9d57-5f6a0b0c1d22",
                    "name": "x",
                    "purl": bad,
                }],
            });
            let parsed = isac_core::stix_import::parse_bundle(&bundle).unwrap();
            assert!(parsed.invalid.is_empty(), "{:?}", parsed.invalid);
            let isac_core::stix_import::Content::Indicators(list) = &parsed.objects[0].content
            else {
                panic!("not an indicator");
            };
            let body = Body::Indicator(list[0].clone());
            let e = new_statement(
                "acme-bank",
                "2026-11-25T12:00:00Z".into(),
                Tlp::Green,
                &[],
                false,
                body,
            )
            .unwrap_err();
            refused_for(e, "purl", why);
        }
    }

    #[test]
    fn versions_are_read_per_ecosystem_before_signing() {
        let with = |purl: &str, versions: &[&str]| {
            let d = IndicatorDraft {
                purl: Some(purl.into()),
                versions: Some(versions.iter().map(|v| v.to_string()).collect()),
                ..base()
            };
            d.check_versions().and_then(|()| build(d))
        };
        for (purl, ok) in [
            (
                "pkg:npm/axois",
                &["1.0.0", ">=1.0.0 <1.0.5", "^1.2.3", "*", "1.x"][..],
            ),
            ("pkg:cargo/evil", &["0.1.0", ">=0.1, <0.2"]),
            (
                "pkg:pypi/reqeusts",
                &["==1.4.*", "~=1.4.5", "2.0.1", ">=1.0,<2"],
            ),
            ("pkg:maven/org.evil/core", &["1.0.0", ">=2.0 <2.3"]),
            ("pkg:golang/github.com/evil/mod", &["v1.2.3", "<v1.3.0"]),
            ("pkg:gem/evil", &["1.0.0.pre"]),
            ("pkg:deb/debian/evil", &["1.2-3", "1.2~rc1"]),
        ] {
            let s = with(purl, ok);
            assert!(s.is_ok(), "{purl} {ok:?}: {:?}", s.err());
        }
        // What the analyst typed into Versions that is not a version.
        for (purl, bad, why) in [
            (
                "pkg:npm/axois",
                "threat=typosquat",
                "is not a version or range for npm",
            ),
            ("pkg:npm/axois", "imitates=pkg:npm/axios", "for npm"),
            ("pkg:npm/axois", "not a version", "for npm"),
            ("pkg:pypi/reqeusts", "banana", "not a PEP 440 version"),
            (
                "pkg:maven/org.evil/core",
                "imitates=pkg:maven/org.good/core",
                "holds `=`",
            ),
            ("pkg:deb/debian/evil", "threat=typosquat", "holds `=`"),
            ("pkg:npm/axois", ">=1.0.0 <evil", "for npm"),
            ("pkg:npm/axois", "1.0.0 ||", "empty"),
        ] {
            let e = with(purl, &["1.0.0", bad]).unwrap_err();
            assert!(matches!(e, AgentError::Usage(_)), "{e:?}");
            let e = e.to_string();
            assert!(e.starts_with("versions[1] `"), "{e}");
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn package_from_flags() {
        let s = build(IndicatorDraft {
            kind: Some("package".into()),
            purl: Some("pkg:npm/evil-pkg@1.0.0".into()),
            ..base()
        })
        .unwrap();
        assert_eq!(s.kind(), "package");
        assert_eq!(s.tlp, Tlp::Green);
    }

    #[test]
    fn kind_is_inferred_and_checked() {
        let s = build(IndicatorDraft {
            domain: Some("Evil.Example".into()),
            ..base()
        })
        .unwrap();
        assert_eq!(s.kind(), "network");
        let e = build(IndicatorDraft {
            kind: Some("package".into()),
            domain: Some("evil.example".into()),
            ..base()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("--domain does not fit --kind package"), "{e}");
        let e = build(IndicatorDraft {
            kind: Some("package".into()),
            ..base()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs --purl"), "{e}");
        let e = build(base()).unwrap_err().to_string();
        assert!(e.contains("say what"), "{e}");
        // A hash with the purl it came from is an artifact, in either order.
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let s = build(IndicatorDraft {
            purl: Some("pkg:npm/evil-pkg@1.0.0".into()),
            sha256: Some(hash.into()),
            ..base()
        })
        .unwrap();
        assert_eq!(s.kind(), "artifact");
        let e = build(IndicatorDraft {
            sha256: Some(hash.into()),
            domain: Some("evil.example".into()),
            ..base()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("--domain does not fit --kind artifact"), "{e}");
    }

    #[test]
    fn malformed_values_are_refused() {
        for d in [
            IndicatorDraft {
                purl: Some("npm/evil".into()),
                ..base()
            },
            IndicatorDraft {
                sha256: Some("abc".into()),
                ..base()
            },
            IndicatorDraft {
                domain: Some("not a domain".into()),
                ..base()
            },
            IndicatorDraft {
                ip: Some("300.1.1.1".into()),
                ..base()
            },
            IndicatorDraft {
                vuln_id: Some("cve-1".into()),
                ..base()
            },
            IndicatorDraft {
                repo_url: Some("https://github.com/a/b".into()),
                commit: Some("xyz".into()),
                ..base()
            },
            IndicatorDraft {
                purl: Some("pkg:npm/x".into()),
                tlp: Some("white".into()),
                ..base()
            },
            IndicatorDraft {
                purl: Some("pkg:npm/x".into()),
                tlp: None,
                ..base()
            },
            IndicatorDraft {
                purl: Some("pkg:npm/x".into()),
                severity: Some("huge".into()),
                ..base()
            },
        ] {
            assert!(build(d.clone()).is_err(), "{d:?}");
        }
    }

    #[test]
    fn overlay_carries_every_field() {
        let some = || Some("x".to_string());
        let list = || Some(vec!["x".to_string()]);
        let full = IndicatorDraft {
            kind: some(),
            purl: some(),
            versions: list(),
            threat: some(),
            imitates: some(),
            sha256: some(),
            sha512: some(),
            filename: some(),
            repo_url: some(),
            commit: some(),
            tag: some(),
            account: some(),
            domain: some(),
            ip: some(),
            url: some(),
            vuln_id: some(),
            affected_purls: list(),
            tlp: some(),
            audience: list(),
            title: some(),
            description: some(),
            severity: some(),
            confidence: Some(1),
            references: list(),
            labels: list(),
            valid_from: some(),
            valid_until: some(),
            related: list(),
            anonymous: Some(true),
            no_forward: Some(true),
        };
        let merged = IndicatorDraft::default().overlay(full.clone());
        assert_eq!(format!("{merged:?}"), format!("{full:?}"));
    }

    #[test]
    fn json_draft_with_overlay() {
        let d: IndicatorDraft = serde_json::from_str(
            r#"{"kind":"artifact","sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","tlp":"clear","title":"dropper"}"#,
        )
        .unwrap();
        let d = d.overlay(IndicatorDraft {
            severity: Some("critical".into()),
            ..Default::default()
        });
        let s = build(d).unwrap();
        assert_eq!(s.kind(), "artifact");
        assert!(serde_json::from_str::<IndicatorDraft>(r#"{"colour":"red"}"#).is_err());
    }
}

/// A coordinator's incident bulletin.
#[derive(Debug, Clone, Default)]
pub struct BulletinDraft {
    pub tlp: Option<String>,
    pub audience: Vec<String>,
    pub title: String,
    pub body: String,
    pub severity: Option<String>,
    pub incident_id: Option<String>,
    pub related: Vec<String>,
}

impl BulletinDraft {
    pub fn into_prepared(self, source: &str, created: String) -> Result<Prepared, AgentError> {
        let tlp = required_tlp(self.tlp.as_deref())?;
        let related = parse_related(&self.related)?;
        let body = Body::Bulletin(isac_core::statement::Bulletin {
            title: self.title,
            body: self.body,
            severity: self
                .severity
                .as_deref()
                .unwrap_or("high")
                .parse()
                .map_err(AgentError::Usage)?,
            incident_id: self.incident_id,
            related,
        });
        new_statement(source, created, tlp, &self.audience, false, body)
    }
}

/// Strict at the source, lenient on receive: every purl a member signs must
/// parse with the packages parser (`isac_packages::purl`), which applies the
/// purl spec's type rules (a Maven group, no raw `@` in a name, ...).
/// Statement validation in `isac_core` stays lenient so that statements
/// signed before this check stay verifiable; new ones must not add to them.
/// Every publish path (flags, JSON, CSV, OSV, STIX, the console) drafts
/// through [`new_statement`], which calls this.
pub fn check_purls_strictly(body: &Body) -> Result<(), AgentError> {
    let Body::Indicator(i) = body else {
        return Ok(());
    };
    let check = |field: String, purl: &str| {
        purl.parse::<isac_packages::purl::Purl>()
            .map(drop)
            .map_err(|e| {
                let shown: String = purl.chars().take(80).collect();
                AgentError::Usage(format!(
                    "{field} `{}` is not a valid package URL: {e}",
                    shown.escape_default()
                ))
            })
    };
    match &i.observable {
        Observable::Package { purl, imitates, .. } => {
            check("purl".into(), purl)?;
            if let Some(original) = imitates {
                check("imitates".into(), original)?;
            }
        }
        Observable::Artifact {
            purl: Some(purl), ..
        } => check("purl".into(), purl)?,
        Observable::Vulnerability { purls, .. } => {
            for (n, purl) in purls.iter().enumerate() {
                check(format!("affected_purls[{n}]"), purl)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Most characters of one version shown in a refusal.
const SHOWN_VERSION_CHARS: usize = 80;

/// Every `versions` entry of a package indicator must read as versions or
/// ranges of the purl's ecosystem before it is signed: each entry through
/// `isac_packages::range::parse_entry` (nothing unreadable), each version
/// it names through `isac_packages::Version::parse` for ecosystems with an
/// order, and for every ecosystem no character a version never holds
/// (`=`, `/` outside GitHub, `:`, quotes...). So `imitates=pkg:npm/axios`
/// typed into Versions is refused, not signed as a range. The refusal
/// names the entry (`versions[N]`) and why.
pub fn check_versions(purl: &str, versions: &[String]) -> Result<(), AgentError> {
    use isac_packages::range::parse_entry;
    use isac_packages::{Constraint, Ecosystem, Version};
    // An unreadable purl is refused by the purl check, naming the purl.
    let eco = purl
        .parse::<isac_packages::Purl>()
        .ok()
        .and_then(|p| p.ecosystem());
    let scheme = eco.map(|e| format!(" for {e}")).unwrap_or_default();
    for (n, entry) in versions.iter().enumerate() {
        let refuse = |why: String| {
            let shown: String = entry.chars().take(SHOWN_VERSION_CHARS).collect();
            AgentError::Usage(format!(
                "versions[{n}] `{}` is not a version or range{scheme}: {why}",
                shown.escape_default()
            ))
        };
        let one = |v: &str| -> Result<(), AgentError> {
            if v == "*" {
                return Ok(());
            }
            let allowed = |c: char| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '.' | '-' | '_' | '+' | '~' | '!')
                    || (c == '/' && eco == Some(Ecosystem::GitHub))
            };
            if let Some(c) = v.chars().find(|c| !allowed(*c)) {
                return Err(refuse(format!(
                    "`{}` holds `{}`, which no version holds",
                    v.chars()
                        .take(SHOWN_VERSION_CHARS)
                        .collect::<String>()
                        .escape_default(),
                    c.escape_default()
                )));
            }
            match eco {
                Some(e) if e.has_ordering() => Version::parse(e, v)
                    .map(drop)
                    .map_err(|e| refuse(e.to_string())),
                _ => Ok(()),
            }
        };
        for c in parse_entry(eco, entry) {
            match c {
                Constraint::Any | Constraint::Osv(_) => {}
                Constraint::Unreadable { reason, .. } => return Err(refuse(reason)),
                Constraint::Exact(v) => one(&v)?,
                Constraint::Comparators(cs)
                | Constraint::NpmRange {
                    comparators: cs, ..
                } => {
                    for c in cs {
                        one(&c.version)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// A new statement (revision 1) with this body: the audience blinded and
/// checked against the level, the whole validated. For statements about
/// another item (sightings, retractions) the caller picks a TLP at least the
/// target's; the hub refuses anything looser.
pub fn new_statement(
    source: &str,
    created: String,
    tlp: Tlp,
    audience: &[String],
    anonymous: bool,
    body: Body,
) -> Result<Prepared, AgentError> {
    let (commitments, openings) = blind_audience(audience)?;
    check_rules(tlp, &openings)?;
    let statement = Statement {
        id: Uuid::new_v4(),
        revision: 1,
        source: source.to_owned(),
        created,
        tlp,
        audience: commitments,
        anonymous,
        body,
        on_behalf_of: None,
        no_forward: false,
    };
    statement
        .validate()
        .map_err(|e| AgentError::Usage(e.to_string()))?;
    check_purls_strictly(&statement.body)?;
    Ok(Prepared {
        statement,
        openings,
        overrides: Vec::new(),
    })
}
