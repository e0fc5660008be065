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
    let (config, mut sink) = receive.open(state)?;
    receive.apply_sinks(&mut sink, &config)?;
    agent.filter = receive.filter(&config);
    if let Some(ui) = ui.to_ui_args() {
        let sinks = crate::ui::describe_sinks(&sink, receive.jsonl.as_deref());
        let console = crate::ui::start(state, &ui, Some(sinks)).await?;
        tokio::spawn(console.serve());
    }
    eprintln!(
        "following {} as `{}`; Ctrl-C to stop",
        agent.loaded.identity.hub_url,
        agent.org_id()
    );
    agent
        .run(&mut sink, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
