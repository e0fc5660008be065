//! `log`: the hub's transparency log as this agent sees it. `verify`
//! re-audits everything held, `proof` prints one item's inclusion proof,
//! `accept` replaces the trusted checkpoint after a coordinator's decision
//! (clearing the alert).

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::tlog::{check_inclusions, Failure, ToProve, Trusted};
use crate::{Agent, AgentError, StateDir};

#[derive(Subcommand)]
pub enum LogCommand {
    /// Re-audit everything held: the hub's latest checkpoint (signature,
    /// witness quorum, consistency with the trusted one) and every held
    /// item's inclusion in it; exit 3 on any failure.
    Verify(VerifyArgs),
    /// Print a held item's inclusion proof at the latest checkpoint.
    Proof(ProofArgs),
    /// Trust this signed checkpoint (after the coordinator's decision on a
    /// log alert): it replaces the trusted one and clears the alert.
    Accept(AcceptArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Config file (default: STATE_DIR/agent.toml if present), for `[log]`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ProofArgs {
    /// The statement id (its latest held revision).
    item_id: String,
    #[arg(long)]
    config: Option<PathBuf>,
    /// JSON: leaf_index, tree_size, leaf, root, proof, checkpoint.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct AcceptArgs {
    /// The signed checkpoint note to trust (as `hub log checkpoint` prints it).
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(long)]
    config: Option<PathBuf>,
}

fn open(state: &StateDir, config: Option<&std::path::Path>) -> Result<Agent, AgentError> {
    let config = crate::config::load(config, &state.root)?;
    let mut agent = Agent::open(state)?;
    agent.log = crate::tlog::LogTrust::from_config(&config.log)?;
    Ok(agent)
}

pub async fn run(state: &StateDir, command: LogCommand) -> Result<(), AgentError> {
    match command {
        LogCommand::Verify(args) => verify(state, args).await,
        LogCommand::Proof(args) => proof(state, args).await,
        LogCommand::Accept(args) => accept(state, args),
    }
}

/// Verifies the hub's latest checkpoint and makes it the trusted one.
async fn current(agent: &Agent) -> Result<(tonic::transport::Channel, Trusted), AgentError> {
    let channel = agent.channel().await?;
    agent.refresh_directory(&channel).await?;
    match agent.advance_log(&channel, 0).await {
        Ok(t) => Ok((channel, t)),
        Err(f) => Err(agent.fault(f, None).await),
    }
}

fn own_anonymous(agent: &Agent, envelope_json: &str) -> bool {
    isac_core::Envelope::from_json(envelope_json)
        .ok()
        .and_then(|e| isac_core::Statement::from_canonical_bytes(&e.payload).ok())
        .is_some_and(|s| s.anonymous && s.source == agent.org_id())
}

async fn verify(state: &StateDir, args: VerifyArgs) -> Result<(), AgentError> {
    let agent = open(state, args.config.as_deref())?;
    let held_alert = agent.log_alert()?;
    let old = agent.trusted_checkpoint()?;
    let (channel, at) = current(&agent).await?;
    let items = agent.store.lock().expect("store").logged_items()?;
    let (mut unplaced, mut anonymous) = (0u64, 0u64);
    let mut to_prove = Vec::new();
    for i in items {
        if own_anonymous(&agent, &i.envelope_json) {
            anonymous += 1;
            continue;
        }
        match i.log_index {
            Some(leaf_index) => to_prove.push(ToProve {
                item: format!("{} revision {}", i.id, i.revision),
                leaf_index,
                leaf: i.envelope_json.into_bytes(),
                signature: None,
            }),
            None => unplaced += 1,
        }
    }
    // A position past the checkpoint: only a hub whose log shrank shows
    // that, and `advance_log` refused it; such items fail here too.
    let (inside, beyond): (Vec<ToProve>, Vec<ToProve>) =
        to_prove.into_iter().partition(|i| i.leaf_index < at.size);
    let proofs = agent.inclusion_proofs(&channel, &at, &inside).await?;
    let mut bad = check_inclusions(&at, &inside, &proofs);
    bad.extend(beyond.iter().map(|i| crate::tlog::BadItem {
        item: i.item.clone(),
        leaf_index: i.leaf_index,
        inclusion: format!("its position is beyond the checkpoint's size {}", at.size),
        signature: None,
    }));
    let proven = inside.len() as u64 - bad.iter().filter(|b| b.leaf_index < at.size).count() as u64;
    let failed = bad.len() as u64;
    if !bad.is_empty() {
        let fault = agent.alert_at_trusted(Failure::Inclusion(bad));
        agent.fault(fault, None).await;
    }
    let report = json!({
        "checkpoint": {"size": at.size, "root": at.reference().root},
        "previous": old.as_ref().map(|t| json!({"size": t.size, "root": t.reference().root})),
        "proven": proven,
        "failed": failed,
        "without_position": unplaced,
        "own_anonymous": anonymous,
    });
    if args.json {
        println!("{report:#}");
    } else {
        println!(
            "checkpoint size {} root {}: signature{} verified{}",
            at.size,
            at.reference().root,
            if agent.log.quorum > 0 {
                format!(" and {} witness cosignature(s)", agent.log.quorum)
            } else {
                String::new()
            },
            match &old {
                Some(o) => format!(
                    ", consistent with the trusted size {} root {}",
                    o.size,
                    o.reference().root
                ),
                None => ", pinned (first checkpoint)".to_owned(),
            }
        );
        println!("{proven} held item(s) proven included, {failed} failed");
        if unplaced > 0 {
            println!("{unplaced} held item(s) without a log position (stored before the agent recorded positions, or before a re-pin)");
        }
        if anonymous > 0 {
            println!("{anonymous} item(s) you published anonymously (the log holds the hub-signed copy other members prove)");
        }
    }
    if let Some(a) = agent.log_alert()? {
        return Err(AgentError::LogAlert(a.message));
    }
    if let Some(a) = held_alert {
        return Err(AgentError::LogAlert(a.message));
    }
    Ok(())
}

async fn proof(state: &StateDir, args: ProofArgs) -> Result<(), AgentError> {
    let agent = open(state, args.config.as_deref())?;
    let item = agent
        .store
        .lock()
        .expect("store")
        .logged_item(&args.item_id)?
        .ok_or_else(|| AgentError::Usage(format!("no held item {}", args.item_id)))?;
    if own_anonymous(&agent, &item.envelope_json) {
        return Err(AgentError::Usage(format!(
            "{} is your own anonymous submission: the log holds the hub-signed copy other members receive, so only they can prove it",
            args.item_id
        )));
    }
    let Some(leaf_index) = item.log_index else {
        return Err(AgentError::Usage(format!(
            "{} has no recorded log position (stored before the agent recorded positions, or before a re-pin)",
            args.item_id
        )));
    };
    let (channel, at) = current(&agent).await?;
    let one = [ToProve {
        item: format!("{} revision {}", item.id, item.revision),
        leaf_index,
        leaf: item.envelope_json.clone().into_bytes(),
        signature: None,
    }];
    if leaf_index >= at.size {
        return Err(AgentError::Invalid(format!(
            "{} is at log position {leaf_index}, beyond the checkpoint's size {}",
            args.item_id, at.size
        )));
    }
    let proofs = agent.inclusion_proofs(&channel, &at, &one).await?;
    let bad = check_inclusions(&at, &one, &proofs);
    if !bad.is_empty() {
        let fault = agent.alert_at_trusted(Failure::Inclusion(bad));
        return Err(agent.fault(fault, None).await);
    }
    let proof: Vec<String> = proofs[0].iter().map(|h| B64.encode(h)).collect();
    if args.json {
        let out = json!({
            "leaf_index": leaf_index,
            "tree_size": at.size,
            "leaf": B64.encode(item.envelope_json.as_bytes()),
            "root": B64.encode(at.root),
            "proof": proof,
            "checkpoint": at.note,
        });
        println!("{out:#}");
    } else {
        println!(
            "{} revision {} is leaf {leaf_index} of the tree of {} leaves (root {}); proof of {} hash(es) verified",
            item.id,
            item.revision,
            at.size,
            B64.encode(at.root),
            proof.len()
        );
        for h in &proof {
            println!("  {h}");
        }
        print!("{}", at.note);
    }
    Ok(())
}

fn accept(state: &StateDir, args: AcceptArgs) -> Result<(), AgentError> {
    let agent = open(state, args.config.as_deref())?;
    let note = crate::error::read_input(&args.checkpoint)?;
    let (old, new) = agent.accept_checkpoint(&note)?;
    match old {
        Some(o) => eprintln!(
            "trusted checkpoint replaced: was size {} root {}, now size {} root {} (log {})",
            o.size,
            o.reference().root,
            new.size,
            new.reference().root,
            new.origin
        ),
        None => eprintln!(
            "trusted checkpoint: size {} root {} (log {})",
            new.size,
            new.reference().root,
            new.origin
        ),
    }
    eprintln!("log alert cleared; `member-agent sync` ingests from the hub again");
    Ok(())
}
