//! `export`: the verified local store in a standard format.

use std::path::PathBuf;

use clap::Args;

use crate::{Agent, AgentError, StateDir};

#[derive(Args)]
pub struct ExportArgs {
    /// stix (a STIX 2.1 bundle), csv (publish --csv columns), osv (OSV
    /// records of package indicators, publish --osv reads them) or
    /// misp-json (one MISP event).
    #[arg(long, default_value = "stix")]
    format: String,
    #[arg(long)]
    out: Option<PathBuf>,
    /// Include TLP:RED items (left out by default).
    #[arg(long)]
    include_red: bool,
}

pub async fn run(state: &StateDir, args: ExportArgs) -> Result<(), AgentError> {
    let agent = Agent::open(state)?;
    let (text, n) = crate::export::export(&agent, args.format.parse()?, args.include_red)?;
    match args.out {
        Some(path) => {
            std::fs::write(&path, text).map_err(crate::error::io_err(&path))?;
            eprintln!("exported {n} item(s) to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
