//! `sync`: fetch, verify and store everything new, then exit.

use super::receive::ReceiveArgs;
use crate::{Agent, AgentError, StateDir};

pub async fn run(state: &StateDir, args: ReceiveArgs) -> Result<(), AgentError> {
    let mut agent = Agent::open(state)?;
    let (config, mut sink) = args.open(state)?;
    args.apply_sinks(&mut sink, &config)?;
    agent.filter = args.filter(&config);
    let r = agent.sync(false, &mut sink).await?;
    eprintln!(
        "synced: {} new, {} already held, {} refused; cursor {}",
        r.new, r.duplicates, r.rejected, r.cursor
    );
    Ok(())
}
