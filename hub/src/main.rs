//! `hub`: run the ISAC hub and administer its members.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hub::config::HubConfig;

/// Exit code for bad configuration or usage (sysexits EX_USAGE).
const EX_USAGE: u8 = 64;

#[derive(Parser)]
#[command(
    name = "hub",
    version,
    about = "The ISAC hub: signed supply-chain threat indicators under TLP 2.0"
)]
struct Cli {
    /// Data directory: database, CA, keys and optional hub.json.
    #[arg(
        long,
        global = true,
        env = "ISAC_HUB_DATA_DIR",
        default_value = "./hub-data"
    )]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub (creates the data directory on first start).
    Serve {
        /// gRPC listen address (mTLS). Overrides hub.json and ISAC_HUB_LISTEN.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Manage member organisations.
    #[command(subcommand)]
    Member(MemberCommand),
}

#[derive(Subcommand)]
enum MemberCommand {
    /// Add a member and print its one-time enrollment token on stdout.
    Add {
        org_id: String,
        /// Display name (defaults to the id).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "member", value_parser = ["member", "coordinator", "admin"])]
        role: String,
        /// Token lifetime, e.g. 30m, 24h, 7d (default from config: 24h).
        #[arg(long)]
        ttl: Option<humantime::Duration>,
    },
    /// Issue another one-time enrollment token for an existing member.
    Token {
        org_id: String,
        #[arg(long)]
        ttl: Option<humantime::Duration>,
    },
    /// List members.
    List,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut config = match HubConfig::load(&cli.data_dir, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { listen } => {
                if let Some(l) = listen {
                    match l.parse() {
                        Ok(a) => config.listen = a,
                        Err(e) => {
                            eprintln!("error: --listen `{l}`: {e} (expected e.g. 127.0.0.1:7443)");
                            return ExitCode::from(EX_USAGE);
                        }
                    }
                }
                serve(config).await
            }
            Command::Member(cmd) => member(config, cmd).await,
        }
    })
}

async fn serve(config: HubConfig) -> ExitCode {
    let (material, created) = match hub::prepare(&config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if created {
        println!(
            "created data directory {} (development CA, server certificate, keys)",
            config.data_dir.display()
        );
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("CA fingerprint (SHA-256): {}", material.ca_fingerprint);
    println!(
        "hub listening on {addr} (gRPC over mutual TLS), data in {}",
        config.data_dir.display()
    );
    drop(material);
    match hub::serve(listener, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

async fn member(config: HubConfig, cmd: MemberCommand) -> ExitCode {
    let ttl_of = |ttl: Option<humantime::Duration>| {
        ttl.map(|d| d.as_secs()).unwrap_or(config.token_ttl_secs)
    };
    let issued = match cmd {
        MemberCommand::Add {
            org_id,
            name,
            role,
            ttl,
        } => {
            let ttl = ttl_of(ttl);
            hub::admin::add_member(&config, &org_id, name.as_deref(), &role, ttl)
                .await
                .map(|t| (t, format!("added member `{org_id}` (role {role})")))
        }
        MemberCommand::Token { org_id, ttl } => {
            let ttl = ttl_of(ttl);
            hub::admin::new_token(&config, &org_id, ttl)
                .await
                .map(|t| (t, format!("new enrollment token for `{org_id}`")))
        }
        MemberCommand::List => {
            return match hub::admin::list_members(&config).await {
                Ok(rows) => {
                    println!(
                        "{:<24} {:<28} {:<12} {:<8} {:>6} {:>5}  CREATED",
                        "ORG_ID", "NAME", "ROLE", "STATUS", "AGENTS", "KEYS"
                    );
                    for (m, agents, keys) in rows {
                        println!(
                            "{:<24} {:<28} {:<12} {:<8} {:>6} {:>5}  {}",
                            m.org_id,
                            m.name,
                            m.role,
                            m.status,
                            agents,
                            keys,
                            isac_core::time::format_rfc3339(m.created_at)
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    match issued {
        Ok((t, what)) => {
            // Human text on stderr, the token alone on stdout: TOKEN=$(hub member add ...)
            eprintln!("{what}");
            eprintln!(
                "one-time enrollment token (expires {}), give it to the member's agent:\n  member-agent enroll --hub https://HUB:PORT --token <token>",
                isac_core::time::format_rfc3339(t.expires_at)
            );
            println!("{}", t.token);
            ExitCode::SUCCESS
        }
        Err(hub::admin::AdminError::Invalid(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(EX_USAGE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
