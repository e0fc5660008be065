//! `key rotate` and `key list`.

use clap::Subcommand;

use crate::{Agent, AgentError, StateDir};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Generate a new signing key, register it (signed by the current one) and retire the current key.
    Rotate,
    /// List keys from the verified key directory: key id, org, state.
    List {
        /// Every member's keys, not only yours.
        #[arg(long)]
        all: bool,
        /// Print each key's public key after its line, as SubjectPublicKeyInfo PEM
        /// (what `openssl pkeyutl -pubin -inkey` reads).
        #[arg(long)]
        pem: bool,
    },
}

pub async fn run(state: &StateDir, command: KeyCommand) -> Result<(), AgentError> {
    match command {
        KeyCommand::Rotate => rotate(state).await,
        KeyCommand::List { all, pem } => list(state, all, pem).await,
    }
}

async fn rotate(state: &StateDir) -> Result<(), AgentError> {
    let mut agent = Agent::open(state)?;
    let r = crate::keys::rotate(&mut agent).await?;
    println!(
        "new signing key {}; key {} retired at {} (statements signed before then stay valid)",
        r.new_key_id, r.retired_key_id, r.retired_at
    );
    Ok(())
}

async fn list(state: &StateDir, all: bool, pem: bool) -> Result<(), AgentError> {
    let agent = super::open_agent(state)?;
    let version = agent
        .on_hub(|channel| {
            let agent = &agent;
            async move { agent.refresh_directory(&channel).await }
        })
        .await?;
    let dir = agent.directory().expect("just refreshed");
    eprintln!("key directory version {version}, expires {}", dir.expires);
    for k in dir
        .keys
        .iter()
        .filter(|k| all || k.org_id == agent.org_id())
    {
        let mine = if k.key_id == agent.loaded.identity.signing_key_id {
            " (this agent signs with it)"
        } else {
            ""
        };
        println!(
            "{} {} {} valid_from={}{}",
            k.key_id,
            k.org_id,
            k.state(),
            k.valid_from,
            mine
        );
        if pem {
            let record = k.record().ok_or_else(|| {
                AgentError::Invalid(format!("directory entry {} is unreadable", k.key_id))
            })?;
            let text = record
                .key
                .to_pem()
                .map_err(|e| AgentError::Crypto(e.to_string()))?;
            print!("{text}");
        }
    }
    Ok(())
}
