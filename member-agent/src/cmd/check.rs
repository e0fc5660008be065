//! `check`: a lockfile against held indicators; a match is exit code 1.

use std::path::PathBuf;

use clap::Args;

use crate::{Agent, AgentError, StateDir};

#[derive(Args)]
pub struct CheckArgs {
    file: PathBuf,
    #[arg(long)]
    json: bool,
}

pub async fn run(state: &StateDir, args: CheckArgs) -> Result<(), AgentError> {
    let CheckArgs { file, json } = args;
    let agent = Agent::open(state)?;
    let matches = crate::check::check_file(&agent, &file)?;
    for m in &matches {
        if json {
            println!(
                "{}",
                serde_json::to_string(m).map_err(|e| AgentError::Invalid(e.to_string()))?
            );
        } else {
            println!(
                "MATCH {} {} -> {} [TLP:{} {}] {} ({})",
                m.dependency,
                m.version,
                m.indicator_value,
                m.tlp.to_uppercase(),
                m.severity,
                m.title,
                m.indicator_id
            );
        }
    }
    if !matches.is_empty() {
        eprintln!(
            "{} dependency match(es) with held indicators in {}",
            matches.len(),
            file.display()
        );
        return Err(AgentError::Matched(matches.len()));
    }
    eprintln!(
        "no dependency in {} matches a held indicator",
        file.display()
    );
    Ok(())
}
