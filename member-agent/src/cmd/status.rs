//! `status`: the agent's hub, its position, the last verified checkpoint
//! of the hub's transparency log and any log alert. Reads only the local
//! state (works while the hub is down).

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use crate::{Agent, AgentError, StateDir};

#[derive(Args)]
pub struct StatusArgs {
    /// Config file (default: STATE_DIR/agent.toml if present), for `[log]`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(state: &StateDir, args: StatusArgs) -> Result<(), AgentError> {
    let config = crate::config::load(args.config.as_deref(), &state.root)?;
    let mut agent = Agent::open(state)?;
    agent.set_hubs(&config.hubs)?;
    let (cursor, items, rejected) = {
        let store = agent.store.lock().expect("store");
        (
            store.cursor()?,
            store.count_items()?,
            store.count_rejected()?,
        )
    };
    let checkpoint = agent.trusted_checkpoint()?;
    let alert = agent.log_alert()?;
    if args.json {
        let out = json!({
            "hub": agent.hub_url(),
            "hubs": agent.hubs(),
            "org": agent.org_id(),
            "cursor": cursor,
            "items": items,
            "refused": rejected,
            "checkpoint": checkpoint.as_ref().map(|t| json!({
                "origin": t.origin,
                "size": t.size,
                "root": t.reference().root,
                "note": t.note,
            })),
            "witnesses": config.log.witnesses.len(),
            "quorum": config.log.quorum,
            "alert": alert,
        });
        println!("{out:#}");
        return Ok(());
    }
    if let Some(a) = &alert {
        println!("{}", "!".repeat(72));
        println!(
            "LOG ALERT ({}, {}): ingesting from the hub is stopped",
            a.kind, a.at
        );
        println!("{}", a.message);
        println!("{}", "!".repeat(72));
    }
    println!("hub:        {}", agent.hub_url());
    if agent.hubs().len() > 1 {
        println!("hubs:       {}", agent.hubs().join(" "));
    }
    println!("org:        {}", agent.org_id());
    println!("cursor:     {cursor}");
    println!("items:      {items} held, {rejected} refused");
    match &checkpoint {
        Some(t) => println!(
            "checkpoint: size {} root {} (log {})",
            t.size,
            t.reference().root,
            t.origin
        ),
        None => println!("checkpoint: none verified yet (run `member-agent sync`)"),
    }
    println!(
        "witnesses:  {} trusted, quorum {}",
        config.log.witnesses.len(),
        config.log.quorum
    );
    println!(
        "log alert:  {}",
        alert.as_ref().map_or("none", |a| a.kind.as_str())
    );
    Ok(())
}
