//! `retract`: withdraw an item.

use clap::Args;

use crate::{AgentError, StateDir};

#[derive(Args)]
pub struct RetractArgs {
    id: String,
    #[arg(long, default_value = "")]
    reason: String,
}

pub async fn run(state: &StateDir, args: RetractArgs) -> Result<(), AgentError> {
    let agent = super::open_agent(state)?;
    let p = crate::publish::retract(&agent, &args.id, &args.reason).await?;
    println!("id={} revision={}", p.id, p.revision);
    Ok(())
}
