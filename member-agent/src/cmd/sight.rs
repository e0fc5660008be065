//! `sight`: report a sighting of a held indicator.

use clap::Args;

use crate::{AgentError, StateDir};

#[derive(Args)]
pub struct SightArgs {
    id: String,
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Let others see that your organisation reported it.
    #[arg(long)]
    named: bool,
    /// Stricter TLP than the indicator's (never looser).
    #[arg(long)]
    tlp: Option<String>,
}

pub async fn run(state: &StateDir, args: SightArgs) -> Result<(), AgentError> {
    let agent = super::open_agent(state)?;
    let p = crate::publish::sight(
        &agent,
        &args.id,
        args.count,
        args.named,
        args.tlp.as_deref(),
    )
    .await?;
    println!("id={} revision={}", p.id, p.revision);
    Ok(())
}
