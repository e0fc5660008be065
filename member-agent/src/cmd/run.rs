//! `run`: follow the hub until Ctrl-C, optionally serving the console.

use clap::Args;

use super::receive::ReceiveArgs;
use crate::ui::RunUiArgs;
use crate::{Agent, AgentError, StateDir};

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    receive: ReceiveArgs,
    #[command(flatten)]
    ui: RunUiArgs,
}

pub async fn run(state: &StateDir, args: RunArgs) -> Result<(), AgentError> {
    let RunArgs { receive, ui } = args;
    let mut agent = Agent::open(state)?;
    let (mut sinks, filter) = receive.open(state)?;
    agent.filter = filter;
    agent.log = receive.log_trust(state)?;
    agent.set_hubs(&receive.hubs(state)?)?;
    if let Some(ui) = ui.to_ui_args() {
        let described = crate::ui::describe_sinks(&sinks);
        let console = crate::ui::start(state, &ui, Some(described)).await?;
        tokio::spawn(console.serve());
    }
    eprintln!(
        "following {} as `{}`; Ctrl-C to stop",
        agent.hub_url(),
        agent.org_id()
    );
    agent
        .run(&mut sinks, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
