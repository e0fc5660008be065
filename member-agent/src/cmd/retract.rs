//! `retract`: withdraw an item.

use clap::Args;

use crate::{AgentError, StateDir};

#[derive(Args)]
pub struct RetractArgs {
    id: String,
    #[arg(long, default_value = "")]
    reason: String,
    #[command(flatten)]
    scrub: crate::scrub::ScrubArgs,
}

pub async fn run(state: &StateDir, args: RetractArgs) -> Result<(), AgentError> {
    let mut agent = super::open_agent(state)?;
    args.scrub.apply_to(&mut agent)?;
    let p = crate::publish::retract(&agent, &args.id, &args.reason).await?;
    crate::scrub::print_notes(&p.notes);
    println!("id={} revision={}", p.id, p.revision);
    Ok(())
}
