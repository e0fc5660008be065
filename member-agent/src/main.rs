//! `member-agent`: a member's CLI and daemon. Parsing, logging and exit
//! codes here; each command's work in `member_agent::cmd`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use member_agent::cmd;
use member_agent::{AgentError, StateDir};

use isac_client::process::EX_USAGE;

#[derive(Parser)]
#[command(
    name = "member-agent",
    version,
    about = "ISAC member agent: publish and receive signed supply-chain indicators"
)]
struct Cli {
    /// Where this agent keeps its identity, keys and local store.
    #[arg(
        long,
        global = true,
        env = "ISAC_AGENT_STATE_DIR",
        default_value = "./agent-state"
    )]
    state_dir: PathBuf,
    #[command(flatten)]
    logs: isac_client::process::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll with a hub using a one-time token from its operator.
    Enroll(cmd::enroll::EnrollArgs),
    /// Sign an indicator with your key and publish it.
    Publish(Box<cmd::publish::PublishArgs>),
    /// Fetch, verify and store everything new, then exit.
    Sync(cmd::receive::ReceiveArgs),
    /// Like sync, but keep following live items (reconnects by itself).
    Run(cmd::run::RunArgs),
    /// Serve the analyst console (web UI over the local store); prints a one-time login link.
    Ui(member_agent::ui::UiArgs),
    /// Export the verified local store (stix, csv, osv, misp-json to stdout or a file; dsse to a directory).
    Export(cmd::export::ExportArgs),
    /// Show one held item in full (the verified statement and its envelope).
    Show(cmd::show::ShowArgs),
    /// Search the local store by purl, package name, hash, domain or text.
    Search(cmd::search::SearchArgs),
    /// Check lockfiles (package-lock.json, Cargo.lock, requirements.txt,
    /// poetry.lock, go.sum) and SBOMs (CycloneDX, SPDX 2.3, SPDX 3.0)
    /// against held indicators; exit code 1 on a match.
    Check(cmd::check::CheckArgs),
    /// Watch applications' SBOMs and lockfiles: `run` writes
    /// exposure.new / exposure.cleared events into its sinks as
    /// indicators arrive, change or go, and as the files change.
    #[command(subcommand)]
    Watch(cmd::watch::WatchCommand),
    /// The watched applications' exposures now; report one back as a sighting.
    #[command(subcommand)]
    Exposure(cmd::exposure::ExposureCommand),
    /// Report a sighting of an indicator you hold ("we saw it"); anonymous
    /// to other members unless --named.
    Sight(cmd::sight::SightArgs),
    /// Withdraw an item you published (coordinators: any item they can see).
    Retract(cmd::retract::RetractArgs),
    /// Broadcast an incident bulletin (coordinators only).
    Bulletin(cmd::bulletin::BulletinArgs),
    /// Signing keys: rotate yours, or list the key directory.
    #[command(subcommand)]
    Key(cmd::key::KeyCommand),
    /// Get a fresh client certificate now (`run` does this by itself near expiry).
    Renew,
    /// Show what the local store holds, newest first.
    List(cmd::list::ListArgs),
    /// The hub, the cursor, the last verified log checkpoint and any log alert.
    Status(cmd::status::StatusArgs),
    /// The hub's transparency log: re-audit what is held, print a proof,
    /// accept a checkpoint after a log alert.
    #[command(subcommand)]
    Log(cmd::log::LogCommand),
    /// Witness the hub's transparency log for other members (C2SP tlog-witness).
    #[command(subcommand)]
    Witness(cmd::witness::WitnessCommand),
}

fn main() -> ExitCode {
    isac_client::process::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    isac_client::process::init_logging(cli.logs.log_format, "warn");
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
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                AgentError::Usage(_) | AgentError::NotEnrolled(_) => ExitCode::from(EX_USAGE),
                // `check` found something: exit 1, as CI gates expect.
                AgentError::Matched(_) => ExitCode::from(1),
                // The hub's transparency log failed a check (see `status`).
                AgentError::LogAlert(_) => ExitCode::from(3),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

async fn run(cli: Cli) -> Result<(), AgentError> {
    let state = StateDir::new(cli.state_dir);
    match cli.command {
        Command::Enroll(args) => cmd::enroll::run(&state, args).await,
        Command::Publish(args) => cmd::publish::run(&state, *args).await,
        Command::Sync(args) => cmd::sync::run(&state, args).await,
        Command::Run(args) => cmd::run::run(&state, args).await,
        Command::Ui(args) => cmd::ui::run(&state, args).await,
        Command::Export(args) => cmd::export::run(&state, args).await,
        Command::Show(args) => cmd::show::run(&state, args).await,
        Command::Search(args) => cmd::search::run(&state, args).await,
        Command::Check(args) => cmd::check::run(&state, args).await,
        Command::Watch(command) => cmd::watch::run(&state, command).await,
        Command::Exposure(command) => cmd::exposure::run(&state, command).await,
        Command::Sight(args) => cmd::sight::run(&state, args).await,
        Command::Retract(args) => cmd::retract::run(&state, args).await,
        Command::Bulletin(args) => cmd::bulletin::run(&state, args).await,
        Command::Key(command) => cmd::key::run(&state, command).await,
        Command::Renew => cmd::renew::run(&state).await,
        Command::List(args) => cmd::list::run(&state, args).await,
        Command::Status(args) => cmd::status::run(&state, args).await,
        Command::Log(command) => cmd::log::run(&state, command).await,
        Command::Witness(command) => cmd::witness::run(&state, command).await,
    }
}
