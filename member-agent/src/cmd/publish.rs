//! `publish`: one indicator from flags or JSON, or an import of OSV
//! records, CSV rows or a STIX bundle.

use std::path::PathBuf;

use clap::Args;

use crate::draft::IndicatorDraft;
use crate::import::ImportReport;
use crate::{AgentError, StateDir};

#[derive(Args)]
pub struct PublishArgs {
    /// Import OSV records (a file, or a directory such as a checkout of
    /// ossf/malicious-packages): one signed indicator per affected package;
    /// unchanged records are skipped, updated ones revised, withdrawn ones retracted.
    #[arg(long, conflicts_with = "json")]
    osv: Option<PathBuf>,
    /// Publish one indicator per row of a CSV file whose header names the
    /// publish flags (kind, purl, domain, tlp, title, labels as a;b, ...).
    #[arg(long, conflicts_with_all = ["json", "osv"])]
    csv: Option<PathBuf>,
    /// Import a STIX 2.1 bundle: indicators (software, file hashes, domains,
    /// URLs, IPs, accounts), vulnerabilities, software, malware samples, and
    /// reports as bulletins (coordinators). Its TLP markings (2.0 or 1.0) win
    /// over --tlp; re-imports skip unchanged objects.
    #[arg(long, conflicts_with_all = ["json", "osv", "csv"])]
    stix: Option<PathBuf>,
    /// With --csv, --osv or --stix: publish the valid rows, records or objects even if some are invalid.
    #[arg(long)]
    skip_invalid: bool,
    /// Read the indicator from a JSON file (flags given as well override it).
    #[arg(long)]
    json: Option<PathBuf>,
    /// package, artifact, repository, account, network or vulnerability (inferred from the observable flag if omitted; a hash with --purl is an artifact).
    #[arg(long)]
    kind: Option<String>,
    /// Package URL, e.g. pkg:npm/evil-pkg@1.0.0 (kind package; or the artifact's package).
    #[arg(long)]
    purl: Option<String>,
    /// Affected versions or ranges (repeatable; kind package).
    #[arg(long = "version-range")]
    versions: Vec<String>,
    /// malicious (default), compromised, typosquat, dependency-confusion, protestware.
    #[arg(long)]
    threat: Option<String>,
    /// For typosquats: the purl of the package imitated.
    #[arg(long)]
    imitates: Option<String>,
    #[arg(long)]
    sha256: Option<String>,
    #[arg(long)]
    sha512: Option<String>,
    #[arg(long)]
    filename: Option<String>,
    #[arg(long)]
    repo_url: Option<String>,
    #[arg(long)]
    commit: Option<String>,
    #[arg(long)]
    tag: Option<String>,
    /// PLATFORM:USERNAME, e.g. npm:evil-maintainer
    #[arg(long)]
    account: Option<String>,
    #[arg(long)]
    domain: Option<String>,
    #[arg(long)]
    ip: Option<String>,
    #[arg(long)]
    url: Option<String>,
    /// CVE, GHSA or OSV id (kind vulnerability).
    #[arg(long)]
    vuln_id: Option<String>,
    /// Purls affected by the vulnerability (repeatable).
    #[arg(long = "affected-purl")]
    affected_purls: Vec<String>,
    /// TLP 2.0 label: clear, green, amber, amber+strict or red (required).
    #[arg(long)]
    tlp: Option<String>,
    /// org:ORG_ID, group:NAME or person:ORG_ID/PERSON_ID (repeatable).
    #[arg(long)]
    audience: Vec<String>,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// info, low, medium (default), high, critical
    #[arg(long)]
    severity: Option<String>,
    /// 0-100 (default 50)
    #[arg(long)]
    confidence: Option<u8>,
    /// Reference URL (repeatable).
    #[arg(long = "reference")]
    references: Vec<String>,
    /// Free-form label (repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// RFC 3339 UTC, e.g. 2026-12-31T00:00:00Z
    #[arg(long)]
    valid_until: Option<String>,
    /// Related statement id (repeatable).
    #[arg(long)]
    related: Vec<String>,
    /// Deliver without your identity: the hub verifies your signature, keeps
    /// it for its audit trail, and re-signs as "anonymous member".
    #[arg(long)]
    anonymous: bool,
    /// Keep it at this hub: never forwarded to peer hubs (signed into the
    /// statement, so every hub on the way sees it).
    #[arg(long)]
    no_forward: bool,
    #[command(flatten)]
    scrub: crate::scrub::ScrubArgs,
}

fn some_vec(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

impl PublishArgs {
    fn into_draft(self) -> Result<IndicatorDraft, AgentError> {
        let base = match &self.json {
            Some(p) => {
                let text = crate::error::read_input(p)?;
                serde_json::from_str::<IndicatorDraft>(&text)
                    .map_err(|e| AgentError::Usage(format!("{}: {e}", p.display())))?
            }
            None => IndicatorDraft::default(),
        };
        Ok(base.overlay(IndicatorDraft {
            kind: self.kind,
            purl: self.purl,
            versions: some_vec(self.versions),
            threat: self.threat,
            imitates: self.imitates,
            sha256: self.sha256,
            sha512: self.sha512,
            filename: self.filename,
            repo_url: self.repo_url,
            commit: self.commit,
            tag: self.tag,
            account: self.account,
            domain: self.domain,
            ip: self.ip,
            url: self.url,
            vuln_id: self.vuln_id,
            affected_purls: some_vec(self.affected_purls),
            tlp: self.tlp,
            audience: some_vec(self.audience),
            title: self.title,
            description: self.description,
            severity: self.severity,
            confidence: self.confidence,
            references: some_vec(self.references),
            labels: some_vec(self.labels),
            valid_from: None,
            valid_until: self.valid_until,
            related: some_vec(self.related),
            anonymous: self.anonymous.then_some(true),
            no_forward: self.no_forward.then_some(true),
        }))
    }
}

pub async fn run(state: &StateDir, args: PublishArgs) -> Result<(), AgentError> {
    if let Some(path) = args.csv.clone() {
        let mut agent = super::open_agent(state)?;
        args.scrub.apply_to(&mut agent)?;
        let r = crate::import::import_csv(&agent, &path, args.skip_invalid).await?;
        println!(
            "csv import: {} rows; {} published, {} invalid or refused, {} skipped",
            r.records,
            r.published,
            r.invalid.len() + r.refused.len(),
            r.skipped.len(),
        );
        crate::scrub::print_notes(&r.notes);
        for reason in r.invalid.iter().chain(&r.refused) {
            eprintln!("skipped: {reason}");
        }
        return Ok(());
    }
    if let Some(path) = args.stix.clone() {
        let tlp = args
            .tlp
            .as_deref()
            .map(str::parse::<isac_core::Tlp>)
            .transpose()
            .map_err(|e| AgentError::Usage(e.to_string()))?;
        let mut agent = super::open_agent(state)?;
        args.scrub.apply_to(&mut agent)?;
        let r = crate::import::import_stix(&agent, &path, tlp, &args.audience, args.skip_invalid)
            .await?;
        println!(
            "stix import: {} objects; {} published, {} revised, {} unchanged, {} retracted, {} skipped, {} invalid, {} refused",
            r.records,
            r.published,
            r.revised,
            r.unchanged,
            r.retracted,
            r.skipped.len(),
            r.invalid.len(),
            r.refused.len()
        );
        return finish_import(&r);
    }
    if let Some(path) = args.osv.clone() {
        let tlp: isac_core::Tlp = args
            .tlp
            .as_deref()
            .ok_or_else(|| {
                AgentError::Usage(
                    "--tlp is required with --osv (public OSV data is usually clear)".into(),
                )
            })?
            .parse()
            .map_err(|e: isac_core::tlp::UnknownTlp| AgentError::Usage(e.to_string()))?;
        let mut agent = super::open_agent(state)?;
        args.scrub.apply_to(&mut agent)?;
        let r = crate::import::import_osv(&agent, &path, tlp, &args.audience, args.skip_invalid)
            .await?;
        println!(
            "osv import: {} records; {} published, {} revised, {} unchanged, {} retracted, {} refused, {} skipped, {} invalid",
            r.records,
            r.published,
            r.revised,
            r.unchanged,
            r.retracted,
            r.refused.len(),
            r.skipped.len(),
            r.invalid.len()
        );
        return finish_import(&r);
    }
    let scrub = args.scrub.clone();
    let draft = args.into_draft()?;
    draft.check_versions()?;
    let mut agent = super::open_agent(state)?;
    scrub.apply_to(&mut agent)?;
    let p = crate::publish::publish(&agent, draft).await?;
    crate::scrub::print_notes(&p.notes);
    println!(
        "id={} revision={}{}",
        p.id,
        p.revision,
        if p.duplicate { " duplicate=true" } else { "" }
    );
    Ok(())
}

/// Prints what an import skipped or could not import; refusals by the
/// hub fail the command.
fn finish_import(r: &ImportReport) -> Result<(), AgentError> {
    print_import_problems(r);
    if r.refused.is_empty() {
        Ok(())
    } else {
        Err(AgentError::Invalid(format!(
            "{} item(s) were refused by the hub",
            r.refused.len()
        )))
    }
}

/// What an import skipped (counted by reason, each named, at most
/// `NAMED` a reason) and what it could not import.
fn print_import_problems(r: &ImportReport) {
    crate::scrub::print_notes(&r.notes);
    const NAMED: usize = 50;
    let mut reasons: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for s in &r.skipped {
        let (at, why) = s.split_once(": ").unwrap_or(("", s.as_str()));
        reasons.entry(why).or_default().push(at);
    }
    for (why, at) in reasons {
        eprintln!("skipped {}: {why}", at.len());
        for a in at.iter().filter(|a| !a.is_empty()).take(NAMED) {
            eprintln!("  {a}");
        }
        if at.len() > NAMED {
            eprintln!("  … and {} more", at.len() - NAMED);
        }
    }
    for reason in &r.invalid {
        eprintln!("invalid: {reason}");
    }
    for reason in &r.refused {
        eprintln!("refused: {reason}");
    }
}
