//! `witness serve` and `witness key`: this agent as a C2SP tlog-witness of
//! the hub's log (`crate::witness`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use isac_core::tlog::note::Ed25519Verifier;

use crate::witness::{self, protocol::TrustedLogs, Witness};
use crate::{Agent, AgentError, StateDir};

#[derive(Subcommand)]
pub enum WitnessCommand {
    /// Serve C2SP tlog-witness `POST /add-checkpoint` (loopback by default; HTTPS with --tls-cert).
    Serve(ServeArgs),
    /// Print this witness's verifier key (C2SP vkey) for hub.toml and agent.toml.
    Key(KeyArgs),
}

#[derive(Args)]
pub struct KeyArgs {
    /// The witness's name, fixed when its key is created (default:
    /// ORG.isac-witness when enrolled).
    #[arg(long)]
    name: Option<String>,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (plain HTTP unless --tls-cert: keep it on loopback or use TLS).
    #[arg(long, default_value = witness::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Certificate chain (PEM) to serve HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A log to witness, as its C2SP vkey (repeatable; overrides agent.toml
    /// `[witness] logs`; default: the hub's log key from the verified key
    /// directory).
    #[arg(long = "log", value_name = "VKEY")]
    logs: Vec<String>,
    #[command(flatten)]
    key: KeyArgs,
    /// Config file (default: STATE_DIR/agent.toml if present).
    #[arg(long)]
    config: Option<PathBuf>,
}

pub async fn run(state: &StateDir, command: WitnessCommand) -> Result<(), AgentError> {
    match command {
        WitnessCommand::Key(args) => {
            let key = witness::load_or_create_key(state, args.name.as_deref())?;
            println!("{}", key.verifier.to_vkey());
            Ok(())
        }
        WitnessCommand::Serve(args) => serve(state, args).await,
    }
}

fn parse_logs(vkeys: &[String], from: &str) -> Result<Vec<Ed25519Verifier>, AgentError> {
    vkeys
        .iter()
        .map(|v| {
            Ed25519Verifier::from_vkey(v.trim()).map_err(|e| {
                AgentError::Usage(format!(
                    "{from}: {v:?} is not a log vkey ({e}); `hub log key` prints it"
                ))
            })
        })
        .collect()
}

/// The logs to witness: `--log`, else agent.toml, else the hub's log key
/// from the verified key directory (fetched if none is cached).
async fn trusted_logs(state: &StateDir, args: &ServeArgs) -> Result<TrustedLogs, AgentError> {
    if !args.logs.is_empty() {
        return Ok(TrustedLogs {
            vkeys: parse_logs(&args.logs, "--log")?,
            directory_key: None,
        });
    }
    let config = crate::config::load(args.config.as_deref(), &state.root)?;
    if let Some(section) = config.witness.filter(|w| !w.logs.is_empty()) {
        return Ok(TrustedLogs {
            vkeys: parse_logs(&section.logs, "[witness] logs")?,
            directory_key: None,
        });
    }
    if !state.is_enrolled() {
        return Err(AgentError::Usage(
            "no log to witness: pass --log VKEY (from `hub log key`), set [witness] logs in agent.toml, or enroll this agent so it takes the hub's log key from the key directory".into(),
        ));
    }
    let agent = Agent::open(state)?;
    if agent.directory().is_none() {
        let channel = agent.channel().await?;
        agent.refresh_directory(&channel).await?;
    }
    let dir = agent.directory().ok_or_else(|| {
        AgentError::Directory("no verified key directory to take the log key from".into())
    })?;
    let entry = dir
        .keys
        .iter()
        .find(|k| k.org_id == isac_core::names::LOG_ORG && k.revoked_at.is_none())
        .ok_or_else(|| {
            AgentError::Directory(
                "the key directory lists no log key (`isac-log`); pass --log VKEY".into(),
            )
        })?;
    let record = entry
        .record()
        .ok_or_else(|| AgentError::Directory("the log key entry is malformed".into()))?;
    Ok(TrustedLogs {
        vkeys: Vec::new(),
        directory_key: Some(record.key),
    })
}

async fn serve(state: &StateDir, args: ServeArgs) -> Result<(), AgentError> {
    let logs = trusted_logs(state, &args).await?;
    let key = witness::load_or_create_key(state, args.key.name.as_deref())?;
    let vkey = key.verifier.to_vkey();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::ui::acceptor(cert, key)?),
        _ => None,
    };
    let witness = Arc::new(Witness::open(state, key, logs.clone())?);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| AgentError::Usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| AgentError::Invalid(e.to_string()))?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "witness listening on {} (key {vkey})",
            witness::display_addr(local, tls.is_some())
        );
        let _ = out.flush();
    }
    let what: Vec<String> = logs
        .vkeys
        .iter()
        .map(|v| v.to_vkey())
        .chain(
            logs.directory_key
                .as_ref()
                .map(|_| "the hub's log key from the key directory".to_owned()),
        )
        .collect();
    eprintln!("witnessing: {}", what.join(", "));
    if tls.is_none() && !local.ip().is_loopback() {
        // Checkpoints are signed and cosignatures public, so nothing is
        // forged or leaked this way; but anyone on the path can read or
        // drop the exchange.
        eprintln!(
            "warning: serving plain HTTP on {local}, beyond loopback: use --tls-cert/--tls-key unless the network to the hub is trusted"
        );
    }
    witness::serve(listener, tls, witness, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
