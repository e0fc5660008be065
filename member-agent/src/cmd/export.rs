//! `export`: the verified local store in a standard format.

use std::path::PathBuf;

use clap::Args;

use crate::export::Format;
use crate::{Agent, AgentError, StateDir};

#[derive(Args)]
pub struct ExportArgs {
    /// stix (a STIX 2.1 bundle), csv (publish --csv columns), osv (OSV
    /// records of package indicators, publish --osv reads them), misp-json
    /// (one MISP event) or dsse (with --out DIR, a new or empty directory:
    /// every held item as a DSSE envelope, the keys as PEM and the signed key
    /// directory, to verify with openssl alone; see docs/protocol.md).
    #[arg(long, default_value = "stix")]
    format: String,
    #[arg(long)]
    out: Option<PathBuf>,
    /// Include TLP:RED items (left out by default).
    #[arg(long)]
    include_red: bool,
}

pub async fn run(state: &StateDir, args: ExportArgs) -> Result<(), AgentError> {
    let format: Format = args.format.parse()?;
    if matches!(format, Format::Dsse) {
        let out = args.out.ok_or_else(|| {
            AgentError::Usage("--format dsse writes a directory: give it with --out DIR".into())
        })?;
        let agent = Agent::open(state)?;
        let b = crate::export::export_dsse(&agent, &out, args.include_red)?;
        eprintln!(
            "exported {} envelope(s) and {} key(s) to {}",
            b.items,
            b.keys,
            out.display()
        );
        return Ok(());
    }
    let agent = Agent::open(state)?;
    let (text, n) = crate::export::export(&agent, format, args.include_red)?;
    match args.out {
        Some(path) => {
            std::fs::write(&path, text).map_err(crate::error::io_err(&path))?;
            eprintln!("exported {n} item(s) to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
