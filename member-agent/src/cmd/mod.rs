//! One module per `member-agent` command (as mini-redis's `src/cmd/`):
//! each holds its arguments (clap) and `run`, which does the work and
//! prints what the command prints. The binary parses, sets up logging,
//! dispatches here and turns errors into exit codes; the help texts of
//! the commands themselves stay with its `Command` enum.

pub mod bulletin;
pub mod check;
pub mod enroll;
pub mod export;
pub mod exposure;
pub mod key;
pub mod list;
pub mod log;
pub mod publish;
pub mod receive;
pub mod renew;
pub mod retract;
pub mod run;
pub mod search;
pub mod show;
pub mod sight;
pub mod status;
pub mod sync;
pub mod ui;
pub mod watch;
pub mod witness;

/// The agent for a one-shot call to the hub, with `hubs` from the default
/// config file (STATE_DIR/agent.toml) if it names any, so that `publish`
/// and friends fail over between the same URLs as `sync` and `run`.
pub(crate) fn open_agent(state: &crate::StateDir) -> Result<crate::Agent, crate::AgentError> {
    let mut agent = crate::Agent::open(state)?;
    agent.set_hubs(&crate::config::load(None, &state.root)?.hubs)?;
    Ok(agent)
}
