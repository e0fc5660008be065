//! `check`: lockfiles and SBOMs against held indicators; a match (certain
//! or not) is exit code 1.

use std::path::PathBuf;

use clap::Args;

use crate::check::{Report, VexFormat};
use crate::{Agent, AgentError, StateDir};

#[derive(Args)]
pub struct CheckArgs {
    /// Lockfiles (by name: package-lock.json, npm-shrinkwrap.json,
    /// Cargo.lock, poetry.lock, go.sum, requirements*.txt) and SBOMs
    /// (CycloneDX JSON, SPDX 2.3 JSON or tag-value, SPDX 3.0 JSON-LD; told
    /// apart by content), or directories to search for them.
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
    /// One JSON document on stdout (keys in docs/formats.md).
    #[arg(long)]
    json: bool,
    /// Also write the findings as a VEX document (`affected` when certain,
    /// `under_investigation` otherwise) to --out.
    #[arg(long, value_enum, requires = "out")]
    vex: Option<VexFormat>,
    /// Where --vex writes its document.
    #[arg(long, requires = "vex")]
    out: Option<PathBuf>,
}

pub async fn run(state: &StateDir, args: CheckArgs) -> Result<(), AgentError> {
    let CheckArgs {
        paths,
        json,
        vex,
        out,
    } = args;
    let agent = Agent::open(state)?;
    let files = crate::check::input_files(&paths)?;
    if files.is_empty() {
        return Err(AgentError::Usage(
            "no lockfile or SBOM found in the given directories".into(),
        ));
    }
    let reports = files
        .iter()
        .map(|f| crate::check::check_file(&agent, f))
        .collect::<Result<Vec<Report>, _>>()?;
    if let (Some(format), Some(out)) = (vex, &out) {
        let timestamp = isac_core::time::format_rfc3339(agent.clock.now());
        let doc = crate::check::vex_document(format, &reports, agent.org_id(), timestamp);
        let text =
            serde_json::to_string_pretty(&doc).map_err(|e| AgentError::Invalid(e.to_string()))?;
        std::fs::write(out, text + "\n").map_err(crate::error::io_err(out))?;
    }
    let matched: usize = reports.iter().map(|r| r.matches.len()).sum();
    let certain: usize = reports
        .iter()
        .flat_map(|r| &r.matches)
        .filter(|m| m.certain)
        .count();
    if json {
        let doc = serde_json::json!({
            "inputs": reports,
            "matches": matched,
            "certain": certain,
        });
        println!(
            "{}",
            serde_json::to_string(&doc).map_err(|e| AgentError::Invalid(e.to_string()))?
        );
    } else {
        for r in &reports {
            print_report(r);
        }
    }
    for r in &reports {
        if !r.uninterpreted.is_empty() {
            eprintln!(
                "{}: {} component(s) could not be interpreted: {}",
                r.file,
                r.uninterpreted.len(),
                r.uninterpreted
                    .iter()
                    .map(|u| format!("{} ({})", u.component, u.why))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    if matched > 0 {
        eprintln!(
            "{matched} match(es) with held indicators ({certain} certain) in {} file(s)",
            reports.len()
        );
        return Err(AgentError::Matched(matched));
    }
    eprintln!(
        "no component of {} file(s) matches a held indicator",
        reports.len()
    );
    Ok(())
}

fn print_report(r: &Report) {
    for m in &r.matches {
        let tag = if m.certain { "MATCH" } else { "POSSIBLE" };
        println!(
            "{tag} {} {} {} -> {} [TLP:{} {}] {} ({}, from {}): {}",
            r.application,
            m.dependency,
            m.version,
            m.indicator_value,
            m.tlp.to_uppercase(),
            m.severity,
            m.title,
            m.indicator_id,
            m.source,
            m.why
        );
        if let Some(path) = &m.path {
            println!("    via {}", path.join(" > "));
        }
    }
}
