//! `enroll`: a first identity from a one-time token.

use clap::Args;

use crate::enroll::enroll_any;
use crate::{AgentError, StateDir};

#[derive(Args)]
pub struct EnrollArgs {
    /// The hub's address, e.g. https://localhost:7443; give it once per
    /// replica to fail over between them (tried in this order).
    #[arg(long, required = true)]
    hub: Vec<String>,
    /// The token printed by `hub member add` (it pins the hub's CA).
    #[arg(long)]
    token: String,
    /// A name for this agent within your organisation.
    #[arg(long, default_value = "default")]
    name: String,
    /// Replace an existing identity in the state dir.
    #[arg(long)]
    force: bool,
}

pub async fn run(state: &StateDir, args: EnrollArgs) -> Result<(), AgentError> {
    let id = enroll_any(state, &args.hub, &args.token, &args.name, args.force).await?;
    println!(
        "enrolled as `{}` (agent `{}`), signing key {}; hub CA pinned {}; state in {}",
        id.org_id,
        id.agent_name,
        id.signing_key_id,
        id.ca_fingerprint,
        state.root.display()
    );
    Ok(())
}
