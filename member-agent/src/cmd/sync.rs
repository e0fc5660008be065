//! `sync`: fetch, verify and store everything new, then exit.

use super::receive::ReceiveArgs;
use crate::{Agent, AgentError, StateDir};

pub async fn run(state: &StateDir, args: ReceiveArgs) -> Result<(), AgentError> {
    let mut agent = Agent::open(state)?;
    let (mut sinks, filter) = args.open(state)?;
    agent.filter = filter;
    agent.log = args.log_trust(state)?;
    agent.set_hubs(&args.hubs(state)?)?;
    let r = agent.sync(false, &mut sinks).await?;
    eprintln!(
        "synced: {} new, {} already held, {} refused; cursor {}",
        r.new, r.duplicates, r.rejected, r.cursor
    );
    Ok(())
}
