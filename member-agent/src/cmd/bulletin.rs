//! `bulletin`: broadcast an incident bulletin (coordinators).

use std::path::PathBuf;

use clap::Args;

use crate::draft::BulletinDraft;
use crate::{AgentError, StateDir};

#[derive(Args)]
pub struct BulletinArgs {
    #[arg(long)]
    title: String,
    /// File holding the bulletin text (`-` for stdin).
    #[arg(long)]
    body: PathBuf,
    /// info, low, medium, high (default), critical
    #[arg(long)]
    severity: Option<String>,
    /// TLP 2.0 label (required).
    #[arg(long)]
    tlp: Option<String>,
    #[arg(long)]
    audience: Vec<String>,
    /// Incident reference, e.g. INC-2026-042.
    #[arg(long)]
    incident: Option<String>,
    /// Related indicator id (repeatable).
    #[arg(long)]
    related: Vec<String>,
    #[command(flatten)]
    scrub: crate::scrub::ScrubArgs,
}

pub async fn run(state: &StateDir, args: BulletinArgs) -> Result<(), AgentError> {
    let BulletinArgs {
        title,
        body,
        severity,
        tlp,
        audience,
        incident,
        related,
        scrub,
    } = args;
    let text = if body.as_os_str() == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
            .map_err(crate::error::io_err(&body))?;
        t
    } else {
        crate::error::read_input(&body)?
    };
    let draft = BulletinDraft {
        tlp,
        audience,
        title,
        body: text,
        severity,
        incident_id: incident,
        related,
    };
    let mut agent = super::open_agent(state)?;
    scrub.apply_to(&mut agent)?;
    let p = crate::publish::publish_bulletin(&agent, draft).await?;
    crate::scrub::print_notes(&p.notes);
    println!("id={} revision={}", p.id, p.revision);
    Ok(())
}
