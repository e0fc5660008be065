//! Scanning before signing (`isac-scrub`), on every way in: flags and
//! JSON, bulletins, CSV, OSV and STIX imports, the console. What is signed
//! and shared cannot be unsent, so a finding refuses the statement (exit
//! 64, nothing signed or sent) unless the person chose otherwise:
//! `--redact` replaces findings with typed placeholders, `--allow KIND`
//! publishes them as they are, `--force-benign` publishes an observable
//! that is on a benign list.
//!
//! People's names come from agent.toml (`[scrub] people`): the hub's
//! people list is an admin call members cannot make.

use std::path::PathBuf;

use isac_core::statement::{Body, Statement};
use isac_scrub::benign::{BenignHit, Lists};
use isac_scrub::{Finding, Kind, Rules};
use serde::Deserialize;

use crate::error::AgentError;

/// `[scrub]` in agent.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrubConfig {
    /// Domains the member owns: host names under them are findings.
    #[serde(default)]
    pub own_domains: Vec<String>,
    /// The member's people, by name.
    #[serde(default)]
    pub people: Vec<String>,
    /// Literal strings that must never leave (code names, ticket prefixes).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Kinds not looked for (`phone`, `person`, ...).
    #[serde(default)]
    pub disabled: Vec<String>,
    /// Files extending the benign lists (same format as `scrub/lists/`).
    #[serde(default)]
    pub benign_lists: Vec<PathBuf>,
}

impl ScrubConfig {
    pub fn check(&self) -> Result<(), String> {
        for d in &self.disabled {
            d.parse::<Kind>()
                .map_err(|e| format!("scrub.disabled: {e}"))?;
        }
        for d in &self.own_domains {
            own_domain(d).map_err(|e| format!("scrub.own_domains: {e}"))?;
        }
        Ok(())
    }
}

/// One `own_domains` entry as the scan matches it: a domain (its
/// subdomains match too), so `*.acme.co.uk` means `acme.co.uk`; refused
/// when it could never match a host (another `*`) or would claim names
/// anyone can register (a public suffix such as `co.uk`). Empty entries
/// are dropped later (`Rules::normalized`).
pub fn own_domain(entry: &str) -> Result<String, String> {
    let trimmed = entry.trim().trim_end_matches('.');
    let domain = trimmed.strip_prefix("*.").unwrap_or(trimmed);
    if domain.is_empty() && trimmed.is_empty() {
        return Ok(String::new());
    }
    if domain.contains('*') || domain.is_empty() {
        return Err(format!(
            "`{entry}`: a wildcard is only a leading `*.` (and every name under a domain matches anyway: write `acme.example`)"
        ));
    }
    if isac_core::names::looks_like_public_suffix(domain) {
        return Err(format!(
            "`{entry}` is a public suffix, not a domain you own: name yours (e.g. `acme.{domain}`)"
        ));
    }
    Ok(domain.to_ascii_lowercase())
}

/// What the person chose for this publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    pub redact: bool,
    pub allow: Vec<Kind>,
    pub force_benign: bool,
}

impl Choice {
    /// From `--redact`, `--allow KIND` (repeatable) and `--force-benign`.
    pub fn from_flags(
        redact: bool,
        allow: &[String],
        force_benign: bool,
    ) -> Result<Self, AgentError> {
        let allow = allow
            .iter()
            .map(|a| {
                a.parse::<Kind>()
                    .map_err(|e| AgentError::Usage(format!("--allow: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Choice {
            redact,
            allow,
            force_benign,
        })
    }
}

/// The flags every command that signs text takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ScrubArgs {
    /// Replace what the scan before signing finds (e-mail addresses, phone
    /// numbers, people's names, internal addresses and hosts, user names,
    /// secrets) with typed placeholders such as [email], and show them.
    #[arg(long)]
    pub redact: bool,
    /// Publish findings of this kind as they are; the override is noted in
    /// the hub's audit log. email, phone, person, internal-ip, own-host,
    /// path-user, secret or pattern (repeatable).
    #[arg(long = "allow", value_name = "KIND")]
    pub allow: Vec<String>,
    /// Publish an observable that is on a benign list (public DNS
    /// resolvers, registries, CDNs, documentation ranges, empty-file
    /// hashes, popular packages).
    #[arg(long)]
    pub force_benign: bool,
    /// agent.toml holding the `[scrub]` rules (default: STATE_DIR/agent.toml).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ScrubArgs {
    /// Loads the `[scrub]` rules and sets the choice on `agent`.
    pub fn apply_to(&self, agent: &mut crate::Agent) -> Result<(), AgentError> {
        let config = crate::config::load(self.config.as_deref(), &agent.state.root)?;
        agent.scrub = Scrubber::from_config(&config.scrub)?;
        agent.scrub_choice = Choice::from_flags(self.redact, &self.allow, self.force_benign)?;
        Ok(())
    }
}

/// Prints what the scan replaced or let through (stderr: stdout keeps the
/// `id=... revision=...` line scripts read).
pub fn print_notes(notes: &[String]) {
    for n in notes {
        eprintln!("{n}");
    }
}

/// The rules and lists in force for this agent.
#[derive(Debug, Clone)]
pub struct Scrubber {
    rules: Rules,
    lists: Lists,
}

impl Default for Scrubber {
    fn default() -> Self {
        Scrubber {
            rules: Rules::default(),
            lists: Lists::builtin(),
        }
    }
}

/// What was done to a statement that may now be signed.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Replaced by placeholders (`--redact`).
    pub redacted: Vec<Finding>,
    /// Published as they are (`--allow`).
    pub allowed: Vec<Finding>,
    /// Benign-list hits published anyway (`--force-benign`).
    pub forced: Vec<BenignHit>,
}

impl Outcome {
    /// The kinds let through, and `benign` for list hits published anyway:
    /// what the hub's audit log records.
    pub fn overrides(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .allowed
            .iter()
            .map(|f| f.kind.name().to_owned())
            .collect();
        if !self.forced.is_empty() {
            out.push("benign".into());
        }
        out.sort();
        out.dedup();
        out
    }

    /// Lines for the person: what was replaced or let through.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.redacted.iter().map(|f| format!("redacted: {f}")));
        out.extend(self.allowed.iter().map(|f| format!("allowed: {f}")));
        out.extend(self.forced.iter().map(|h| format!("published anyway: {h}")));
        out
    }
}

impl Scrubber {
    pub fn from_config(c: &ScrubConfig) -> Result<Self, AgentError> {
        c.check().map_err(AgentError::Usage)?;
        let mut lists = Lists::builtin();
        for path in &c.benign_lists {
            let text = crate::error::read_input(path)?;
            lists
                .extend(&text)
                .map_err(|e| AgentError::Usage(format!("{}: {e}", path.display())))?;
        }
        Ok(Scrubber {
            rules: Rules {
                own_domains: c
                    .own_domains
                    .iter()
                    .map(|d| own_domain(d))
                    .collect::<Result<_, _>>()
                    .map_err(|e| AgentError::Usage(format!("scrub.own_domains: {e}")))?,
                people: c.people.clone(),
                patterns: c.patterns.clone(),
                disabled: c.disabled.iter().filter_map(|d| d.parse().ok()).collect(),
            }
            .normalized(),
            lists,
        })
    }

    /// Scans `st` before it is signed: refuses (naming every finding and
    /// list hit, with the way out), or rewrites it as chosen.
    pub fn apply(&self, st: &mut Statement, choice: &Choice) -> Result<Outcome, AgentError> {
        let (findings, redacted) = isac_scrub::scan_statement(st, &self.rules)
            .map_err(|e| AgentError::Usage(e.to_string()))?;
        let hits = match &st.body {
            Body::Indicator(i) => self.lists.check(&i.observable),
            _ => Vec::new(),
        };
        let (allowed, blocking): (Vec<Finding>, Vec<Finding>) = findings
            .into_iter()
            .partition(|f| choice.allow.contains(&f.kind));
        let mut problems = Vec::new();
        if !choice.redact {
            problems.extend(blocking.iter().map(|f| f.to_string()));
        }
        if !choice.force_benign {
            problems.extend(hits.iter().map(|h| format!("{h}: a benign indicator")));
        }
        if !problems.is_empty() {
            let mut ways = Vec::new();
            if !blocking.is_empty() && !choice.redact {
                let mut kinds: Vec<&str> = blocking.iter().map(|f| f.kind.name()).collect();
                kinds.dedup();
                ways.push(format!(
                    "--redact to replace them with placeholders, --allow {} to publish them as they are",
                    kinds.join(" --allow ")
                ));
            }
            if !hits.is_empty() && !choice.force_benign {
                ways.push("--force-benign if it really is malicious".into());
            }
            return Err(AgentError::Usage(format!(
                "nothing signed or sent: {} problem(s) before signing:\n  {}\n(use {})",
                problems.len(),
                problems.join("\n  "),
                ways.join("; ")
            )));
        }
        if choice.redact && !blocking.is_empty() {
            // Keep what was allowed, replace the rest: rescan the redacted
            // statement field by field would lose the allowed ones, so
            // redact with the allowed kinds switched off.
            let mut rules = self.rules.clone();
            rules.disabled.extend(choice.allow.iter().copied());
            let (_, only_blocking) = isac_scrub::scan_statement(st, &rules)
                .map_err(|e| AgentError::Usage(e.to_string()))?;
            *st = if choice.allow.is_empty() {
                redacted
            } else {
                only_blocking
            };
        }
        Ok(Outcome {
            redacted: if choice.redact { blocking } else { Vec::new() },
            allowed,
            forced: if choice.force_benign {
                hits
            } else {
                Vec::new()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draft::BulletinDraft;

    fn bulletin(body: &str) -> Statement {
        BulletinDraft {
            tlp: Some("green".into()),
            audience: vec![],
            title: "Phishing wave".into(),
            body: body.into(),
            severity: None,
            incident_id: None,
            related: vec![],
        }
        .into_prepared("acme-bank", "2026-12-02T12:00:00Z".into())
        .unwrap()
        .statement
    }

    fn text(st: &Statement) -> &str {
        match &st.body {
            Body::Bulletin(b) => &b.body,
            _ => unreachable!(),
        }
    }

    #[test]
    fn refuse_redact_allow() {
        let s = Scrubber::default();
        let body = "Reported by bob@acme-bank.com from host 10.0.0.7.";
        let mut st = bulletin(body);
        let e = s.apply(&mut st, &Choice::default()).unwrap_err();
        assert!(matches!(e, AgentError::Usage(_)));
        let e = e.to_string();
        assert!(e.contains("nothing signed or sent"), "{e}");
        assert!(e.contains("body at byte 12: email"), "{e}");
        assert!(e.contains("internal-ip"), "{e}");
        assert!(e.contains("--allow email --allow internal-ip"), "{e}");
        assert!(
            !e.contains("bob@"),
            "the refusal must not echo the finding: {e}"
        );
        assert_eq!(text(&st), body, "a refusal changes nothing");

        let out = s
            .apply(
                &mut st,
                &Choice {
                    redact: true,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(text(&st), "Reported by [email] from host [internal-ip].");
        assert_eq!(out.redacted.len(), 2);

        let mut st = bulletin(body);
        let choice = Choice::from_flags(true, &["internal-ip".into()], false).unwrap();
        let out = s.apply(&mut st, &choice).unwrap();
        assert_eq!(text(&st), "Reported by [email] from host 10.0.0.7.");
        assert_eq!(out.allowed.len(), 1);
        assert_eq!(out.allowed[0].kind, Kind::InternalIp);

        let mut st = bulletin(body);
        let choice =
            Choice::from_flags(false, &["email".into(), "internal-ip".into()], false).unwrap();
        let out = s.apply(&mut st, &choice).unwrap();
        assert_eq!(text(&st), body);
        assert_eq!(out.notes().len(), 2);
        assert!(Choice::from_flags(false, &["mail".into()], false).is_err());
    }

    #[test]
    fn config_rules_apply() {
        let c = ScrubConfig {
            own_domains: vec!["corp.acme.internal".into()],
            people: vec!["Alice Martin".into()],
            disabled: vec!["phone".into()],
            ..Default::default()
        };
        let s = Scrubber::from_config(&c).unwrap();
        let mut st =
            bulletin("Alice Martin saw it on jenkins.corp.acme.internal, call +1 555 123 4567");
        let e = s
            .apply(&mut st, &Choice::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("person") && e.contains("own-host") && !e.contains("phone"),
            "{e}"
        );
        let bad = ScrubConfig {
            disabled: vec!["phones".into()],
            ..Default::default()
        };
        assert!(Scrubber::from_config(&bad)
            .unwrap_err()
            .to_string()
            .contains("scrub.disabled"));
    }

    /// `*.acme.co.uk` in own_domains matched nothing (no host has a `*`),
    /// so the member's own hosts went out unflagged; a public suffix would
    /// claim every name under it.
    #[test]
    fn wildcard_own_domains_match_and_public_suffixes_are_refused() {
        let with = |domains: &[&str]| ScrubConfig {
            own_domains: domains.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        for entry in [
            "*.acme.co.uk",
            "acme.co.uk",
            "*.ACME.co.uk.",
            " acme.co.uk ",
        ] {
            let s = Scrubber::from_config(&with(&[entry])).unwrap();
            for text in [
                "build seen on jenkins.acme.co.uk",
                "build seen on acme.co.uk",
            ] {
                let mut st = bulletin(text);
                let e = s
                    .apply(&mut st, &Choice::default())
                    .unwrap_err()
                    .to_string();
                assert!(e.contains("own-host"), "{entry}: {text}: {e}");
            }
            // Other names under the public suffix are not the member's.
            let mut st = bulletin("seen on evil-acme.co.uk and other.co.uk");
            assert!(s.apply(&mut st, &Choice::default()).is_ok(), "{entry}");
        }
        for entry in [
            "*.co.uk",
            "co.uk",
            "com",
            "*.com.au",
            "*",
            "*.",
            "a.*.acme.example",
        ] {
            let e = Scrubber::from_config(&with(&[entry]))
                .err()
                .unwrap_or_else(|| panic!("{entry} accepted"))
                .to_string();
            assert!(e.contains("scrub.own_domains"), "{entry}: {e}");
        }
        assert_eq!(own_domain("*.Acme.Example").unwrap(), "acme.example");
        assert_eq!(own_domain("").unwrap(), "");
    }
}
