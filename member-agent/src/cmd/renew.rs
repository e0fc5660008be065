//! `renew`: a fresh client certificate now.

use crate::{Agent, AgentError, StateDir};

pub async fn run(state: &StateDir) -> Result<(), AgentError> {
    let mut agent = Agent::open(state)?;
    let not_after = crate::keys::renew(&mut agent).await?;
    println!("renewed client certificate, valid until {not_after}");
    Ok(())
}
