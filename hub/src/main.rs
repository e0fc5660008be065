//! `hub`: run the ISAC hub and administer it, on the local data dir or
//! remotely through the Admin API with an admin member's agent identity.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hub::app::Clock;
use hub::config::HubConfig;
use hub::grpc::admin::AdminContext;
use hub::store::Store;
use isac_proto::v1 as pb;
use tonic::transport::Channel;

use isac_client::process::EX_USAGE;

#[derive(Parser)]
#[command(
    name = "hub",
    version,
    about = "The ISAC hub: signed supply-chain threat indicators under TLP 2.0"
)]
struct Cli {
    /// Data directory: database, CA, keys and optional hub.toml.
    #[arg(
        long,
        global = true,
        env = "ISAC_HUB_DATA_DIR",
        default_value = "./hub-data"
    )]
    data_dir: PathBuf,
    /// Config file instead of DATA_DIR/hub.toml (see docs/hub.example.toml).
    #[arg(long, global = true, env = "ISAC_HUB_CONFIG")]
    config: Option<PathBuf>,
    /// The store: `postgres://USER@HOST:PORT/DB` (a PostgreSQL database
    /// several hubs can share; password from store_password_file,
    /// ISAC_STORE_PASSWORD or PGPASSWORD, never here; TLS as in libpq:
    /// `?sslmode=verify-full&sslrootcert=CA.pem`). Default: the
    /// embedded SQLite database in the data dir. Overrides `store` in
    /// hub.toml and ISAC_HUB_STORE.
    #[arg(long, global = true)]
    store: Option<String>,
    /// Administer a remote hub instead of the local data dir, authenticating
    /// with this agent state dir (enrolled for a member with role admin).
    #[arg(long, global = true, env = "ISAC_HUB_REMOTE")]
    remote: Option<PathBuf>,
    #[command(flatten)]
    logs: isac_client::process::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub (creates the data directory on first start).
    Serve {
        /// gRPC listen address (mTLS). Overrides hub.toml and ISAC_HUB_LISTEN.
        #[arg(long)]
        listen: Option<String>,
        /// TAXII 2.1 (HTTPS) listen address, or `off` (default 127.0.0.1:7444).
        /// Overrides hub.toml and ISAC_HUB_TAXII_LISTEN.
        #[arg(long)]
        taxii_listen: Option<String>,
        /// Prometheus metrics over plain HTTP at http://ADDR/metrics, or `off`
        /// (the default). No authentication: bind to loopback (e.g.
        /// 127.0.0.1:9464) or a monitoring network. Overrides metrics_listen
        /// in hub.toml and ISAC_HUB_METRICS_LISTEN.
        #[arg(long)]
        metrics_listen: Option<String>,
    },
    /// TAXII API keys (HTTP Basic credentials for SIEMs that pull).
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Manage member organisations.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Manage the named analysts of member organisations (TLP:RED recipients).
    #[command(subcommand)]
    Person(PersonCommand),
    /// Inspect and revoke signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Sharing groups: named sets of orgs usable as an audience (group:NAME).
    #[command(subcommand)]
    Group(GroupCommand),
    /// What the data dir holds: statements, members, keys, directory version, size.
    Status,
    /// Copy a (running) hub's database and keys into a new directory.
    Backup { dest: PathBuf },
    /// Restore a backup into an empty data dir (the hub must be stopped).
    Restore { backup: PathBuf },
    /// Delete statements whose valid_until passed more than DURATION ago
    /// (e.g. 90d), with the sightings and retractions that refer to them.
    Prune {
        #[arg(long, value_name = "DURATION")]
        expired_before: humantime::Duration,
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write every stored statement (the exact signed envelopes and what the
    /// hub knows about them) as JSON Lines to FILE (new, mode 0600), for migration.
    Export { file: PathBuf },
    /// The hub's transparency log (reads the data dir; with --remote, asks the hub as a member).
    #[command(subcommand)]
    Log(LogCommand),
    /// Show the audit trail of admin actions and key events, newest first.
    Audit {
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Move the store: copy the data dir's SQLite database to PostgreSQL.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Federation with other hubs: the hubs this hub follows, and the
    /// peers that follow it (added with `hub member add HUB --role peer`).
    #[command(subcommand)]
    Peer(PeerCommand),
}

#[derive(Subcommand)]
enum PeerCommand {
    /// Enroll this hub at hub HUB_ID as its peer (with the token HUB_ID's
    /// operator printed with `hub member add THIS_HUB_ID --role peer`) and
    /// follow it: its CLEAR and GREEN items come here, each verified to its
    /// author there. A running hub starts following within a second.
    Add {
        hub_id: String,
        /// The peer hub's gRPC address, e.g. https://isac-b.example:7443.
        #[arg(long)]
        url: String,
        /// The one-time enrollment token from the peer's operator.
        #[arg(long)]
        token: String,
    },
    /// List the hubs this hub follows and the peers that follow it.
    List,
    /// Stop the flow with a peer in both directions (this hub stops
    /// following it, and its peer membership here is suspended).
    Suspend { hub_id: String },
    /// Resume a suspended peer in both directions.
    Resume { hub_id: String },
    /// End a peering for good in both directions (the link and its cursor
    /// are deleted, the peer membership here is removed; items already
    /// received stay).
    Remove { hub_id: String },
    /// Share a sharing group with peer PEER: its TLP:AMBER items cross to
    /// PEER while both hubs share the group with each other and list the
    /// same member organisations (write the peer's as ORG@PEER in `hub
    /// group add`). PEER delivers them only to the group's organisations
    /// that are its members. `hub peer list` shows each group's state.
    Share {
        #[arg(value_name = "PEER")]
        hub_id: String,
        /// The local sharing group (`hub group list`).
        #[arg(long, value_name = "NAME")]
        group: String,
    },
    /// Stop sharing a group with PEER: its AMBER items no longer cross.
    Unshare {
        #[arg(value_name = "PEER")]
        hub_id: String,
        #[arg(long, value_name = "NAME")]
        group: String,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy the data dir's SQLite database (every table: members, agents,
    /// keys, people, groups, statements with their sequence numbers, the
    /// log, audit, API keys, TAXII state, tokens) into an EMPTY PostgreSQL
    /// database, in one transaction, and verify row counts and SHA-256
    /// content hashes per table before committing. Stop the hub first: it
    /// must not serve from the SQLite file meanwhile. The password comes
    /// from store_password_file, ISAC_STORE_PASSWORD or PGPASSWORD. Then
    /// run `hub serve --store URL` (key files stay in the data dir).
    Copy {
        /// The target: postgres://USER@HOST:PORT/DB (no password in it).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Subcommand)]
enum MemberCommand {
    /// Add a member and print its one-time enrollment token on stdout.
    Add {
        org_id: String,
        /// Display name (defaults to the id).
        #[arg(long)]
        name: Option<String>,
        /// `peer` adds another hub (federation): its token is for `hub peer
        /// add` at that hub, and it can never act as a member.
        #[arg(long, default_value = "member", value_parser = ["member", "coordinator", "admin", "peer"])]
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
    /// Show one member: agents, keys, people.
    Show { org_id: String },
    /// Suspend a member: its open streams close and new calls are refused.
    Suspend { org_id: String },
    /// Lift a suspension.
    Resume { org_id: String },
    /// Remove a member for good: its keys are retired (past statements stay verifiable).
    Remove { org_id: String },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key for a member and print `USERNAME:PASSWORD` once (stored hashed).
    Add {
        org_id: String,
        /// What the key is for (e.g. "sentinel-prod").
        #[arg(long, default_value = "")]
        label: String,
        /// Bind the key to one named analyst of the org; only such keys
        /// receive TLP:RED items that name that person.
        #[arg(long)]
        person: Option<String>,
        /// Let the key POST STIX objects, which the hub publishes for the
        /// org as hub-attested statements.
        #[arg(long)]
        write: bool,
    },
    /// List keys (of one organisation, or all); secrets are never shown.
    List { org_id: Option<String> },
    /// Revoke a key; the next request with it is refused.
    Revoke { username: String },
}

#[derive(Subcommand)]
enum PersonCommand {
    /// Register a named analyst of an organisation.
    Add {
        org_id: String,
        person_id: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        contact: String,
    },
    /// List people (of one organisation, or all).
    List {
        org_id: Option<String>,
    },
    Remove {
        org_id: String,
        person_id: String,
    },
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Create a group.
    Add {
        name: String,
        /// Member org ids, comma separated; a peer hub's organisation is
        /// ORG@HUB (a cross-hub group, shared with `hub peer share`).
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
    },
    List,
    Remove {
        name: String,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Print the latest signed checkpoint (a C2SP signed note) with its
    /// witnesses' cosignature lines (with --remote: the one members are served).
    Checkpoint,
    /// Print the log's verifier key in the C2SP signed-note vkey format
    /// (name+hash+base64), for agents, witnesses and auditors to pin.
    Key,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// One key a line: key id, org, state (active, retired or revoked), valid from.
    List,
    /// Revoke a key after compromise: statements created at or after the
    /// effective time are refused by the hub and every agent.
    Revoke {
        key_id: String,
        /// RFC 3339 UTC effective time (default: now). May be in the past.
        #[arg(long)]
        at: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

fn main() -> ExitCode {
    isac_client::process::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    isac_client::process::init_logging(cli.logs.log_format, "info");
    let mut config = match HubConfig::load_from(&cli.data_dir, cli.config.as_deref(), |k| {
        std::env::var(k).ok()
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    if let Some(store) = cli.store.clone() {
        config.store = store;
        if let Err(e) = config.validate() {
            eprintln!("error: --store: {e}");
            return ExitCode::from(EX_USAGE);
        }
    }
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
        if let Command::Serve {
            listen,
            taxii_listen,
            metrics_listen,
        } = cli.command
        {
            if let Some(l) = metrics_listen {
                match hub::config::parse_optional_addr(&l) {
                    Ok(a) => config.metrics_listen = a,
                    Err(e) => {
                        eprintln!("error: --metrics-listen `{l}`: {e}");
                        return ExitCode::from(EX_USAGE);
                    }
                }
            }
            if let Some(l) = listen {
                match l.parse() {
                    Ok(a) => config.listen = a,
                    Err(e) => {
                        eprintln!("error: --listen `{l}`: {e} (expected e.g. 127.0.0.1:7443)");
                        return ExitCode::from(EX_USAGE);
                    }
                }
            }
            if let Some(l) = taxii_listen {
                match hub::config::parse_optional_addr(&l) {
                    Ok(a) => config.taxii_listen = a,
                    Err(e) => {
                        eprintln!("error: --taxii-listen `{l}`: {e}");
                        return ExitCode::from(EX_USAGE);
                    }
                }
            }
            if let Err(e) = config.validate() {
                eprintln!("error: {e}");
                return ExitCode::from(EX_USAGE);
            }
            return serve(config).await;
        }
        if cli.remote.is_none() && reads_only(&cli.command) {
            if let Err(m) = existing_data_dir(&config.data_dir) {
                eprintln!("error: {m}");
                return ExitCode::from(EX_USAGE);
            }
        }
        match &cli.command {
            Command::Status => return status(&config).await,
            Command::Store(StoreCommand::Copy { to }) => {
                if cli.remote.is_some() || !config.store.is_empty() {
                    eprintln!("error: `hub store copy` reads the data dir's SQLite database: run it on the hub's host without --remote, --store or `store =` (the target is --to)");
                    return ExitCode::from(EX_USAGE);
                }
                return store_copy(&config, to).await;
            }
            Command::Prune {
                expired_before,
                dry_run,
            } if cli.remote.is_none() => {
                return prune(&config, (*expired_before).into(), *dry_run).await
            }
            Command::Export { file } if cli.remote.is_none() => {
                return export(&config, file).await
            }
            Command::Prune { .. } | Command::Export { .. } => {
                eprintln!("error: prune and export work on the hub's host (run them there, without --remote)");
                return ExitCode::from(EX_USAGE);
            }
            Command::Log(command) => {
                if let Some(state_dir) = &cli.remote {
                    return remote_log(state_dir, command).await;
                }
                return log(&config, command).await;
            }
            Command::Peer(command) => {
                if cli.remote.is_some() {
                    eprintln!("error: peers are managed on the hub's host (run `hub peer` there, without --remote)");
                    return ExitCode::from(EX_USAGE);
                }
                return peer(&config, command).await;
            }
            Command::ApiKey(command) => {
                if cli.remote.is_some() {
                    eprintln!("error: API keys are managed on the hub's host (run `hub api-key` there, without --remote)");
                    return ExitCode::from(EX_USAGE);
                }
                return api_key(&config, command).await;
            }
            Command::Backup { dest } => {
                let copied = hub::sqlite_only(&config, "backup")
                    .and_then(|()| hub::datadir::backup(&config.data_dir, dest));
                return match copied {
                    Ok(n) => {
                        println!(
                            "backed up {} ({n} statements) to {}",
                            config.data_dir.display(),
                            dest.display()
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        datadir_failure(&e)
                    }
                };
            }
            Command::Restore { backup } => {
                let restored = hub::sqlite_only(&config, "restore")
                    .and_then(|()| hub::datadir::restore(backup, &config.data_dir));
                return match restored {
                    Ok(n) => {
                        println!(
                            "restored {} ({n} statements) into {}",
                            backup.display(),
                            config.data_dir.display()
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        datadir_failure(&e)
                    }
                };
            }
            _ => {}
        }
        let backend = match Backend::open(&config, cli.remote.as_deref()).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let result = admin(&backend, &config, cli.command).await;
        backend.close().await;
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(Failure::Usage(m)) => {
                eprintln!("error: {m}");
                ExitCode::from(EX_USAGE)
            }
            Err(Failure::Other(m)) => {
                eprintln!("error: {m}");
                ExitCode::FAILURE
            }
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
    let mut taxii_bound = None;
    let mut metrics_bound = None;
    let taxii = match config.taxii_listen {
        Some(a) => {
            match tokio::net::TcpListener::bind(a).await {
                Ok(l) => {
                    let bound = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                    println!("TAXII 2.1 listening on https://{bound}/taxii2/ (HTTP Basic API keys or client certificates)");
                    taxii_bound = Some(bound);
                    Some(l)
                }
                Err(e) => {
                    eprintln!("error: cannot listen on {a} for TAXII: {e} (use --taxii-listen ADDR or off)");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    let metrics = match config.metrics_listen {
        Some(a) => match tokio::net::TcpListener::bind(a).await {
            Ok(l) => {
                let bound = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                println!("metrics listening on http://{bound}/metrics (Prometheus, plain HTTP)");
                metrics_bound = Some(bound);
                Some(l)
            }
            Err(e) => {
                eprintln!("error: cannot listen on {a} for metrics: {e} (use --metrics-listen ADDR or off)");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let shutdown = shutdown_signal();
    // What `hub status` reports as running: the addresses really bound.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let run = hub::datadir::RunInfo::this_process(addr.clone(), taxii_bound, metrics_bound, now);
    if let Err(e) = hub::datadir::write_run_info(&config.data_dir, &run) {
        eprintln!("warning: cannot record the bound addresses for `hub status`: {e}");
    }
    println!("CA fingerprint (SHA-256): {}", material.ca_fingerprint);
    // Last: scripts and tests wait for this line.
    println!(
        "hub listening on {addr} (gRPC over mutual TLS), data in {}",
        config.data_dir.display()
    );
    drop(material);
    let data_dir = config.data_dir.clone();
    let listeners = hub::Listeners {
        grpc: listener,
        taxii,
        metrics,
    };
    let result = hub::serve(listeners, config, shutdown).await;
    hub::datadir::remove_run_info(&data_dir, run.pid);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn api_key(config: &HubConfig, command: &ApiKeyCommand) -> ExitCode {
    if let Err(e) = hub::prepare(config) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let store = match hub::open_configured_store(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = hub::app::Clock::system().now();
    let actor = local_actor();
    let result = match command {
        ApiKeyCommand::Add {
            org_id,
            label,
            person,
            write,
        } => {
            let key = hub::taxii::keys::generate(org_id, person.as_deref(), label, *write, now);
            store.add_api_key(key.row, &actor).await.map(|()| {
                eprintln!(
                    "added TAXII API key for `{org_id}`{}; the password is shown only now",
                    person
                        .as_deref()
                        .map(|p| format!(" bound to person `{p}`"))
                        .unwrap_or_default()
                );
                println!("{}:{}", key.username, key.password);
            })
        }
        ApiKeyCommand::List { org_id } => {
            store.list_api_keys(org_id.as_deref()).await.map(|keys| {
                println!(
                    "{:<24} {:<20} {:<16} {:<8} {:<6} {:<20} {:<20} LABEL",
                    "USERNAME", "ORG_ID", "PERSON", "STATE", "ACCESS", "CREATED", "LAST_USED"
                );
                for k in keys {
                    println!(
                        "{:<24} {:<20} {:<16} {:<8} {:<6} {:<20} {:<20} {}",
                        k.username,
                        k.org_id,
                        k.person_id.as_deref().unwrap_or("-"),
                        if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        },
                        if k.can_write { "write" } else { "read" },
                        isac_core::time::format_rfc3339(k.created_at),
                        k.last_used_at
                            .map(isac_core::time::format_rfc3339)
                            .unwrap_or_else(|| "never".into()),
                        k.label
                    );
                }
            })
        }
        ApiKeyCommand::Revoke { username } => store
            .revoke_api_key(username, &actor, now)
            .await
            .map(|k| println!("revoked API key {} of `{}`", k.username, k.org_id)),
    };
    let _ = tokio::task::spawn_blocking(move || store.close()).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn peer(config: &HubConfig, command: &PeerCommand) -> ExitCode {
    use hub::grpc::peer_enroll::{add_peer, PeerAddError};
    use isac_core::membership::{Role, StatusChange};
    if let Err(e) = hub::prepare(config) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let store = match hub::open_configured_store(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = hub::app::Clock::system().now();
    let actor = local_actor();
    let change = |change: StatusChange, hub_id: &str| {
        let store = store.clone();
        let (actor, hub_id) = (actor.clone(), hub_id.to_owned());
        async move {
            store
                .set_peer_status(&hub_id, change, &actor, now)
                .await
                .map(|_| eprintln!("peer `{hub_id}`: {change} (both directions)"))
                .map_err(|e| PeerAddError::Failed(e.to_string()))
        }
    };
    let result = match command {
        PeerCommand::Add { hub_id, url, token } => {
            add_peer(config, &store, hub_id, url, token, &actor, now)
                .await
                .map(|link| {
                    eprintln!(
                        "this hub (`{}`) is now a peer of `{}` at {} and follows it",
                        config.hub_id, link.hub_id, link.url
                    )
                })
        }
        PeerCommand::Suspend { hub_id } => change(StatusChange::Suspend, hub_id).await,
        PeerCommand::Resume { hub_id } => change(StatusChange::Resume, hub_id).await,
        PeerCommand::Remove { hub_id } => change(StatusChange::Remove, hub_id).await,
        PeerCommand::Share { hub_id, group } => store
            .share_group(hub_id, group, &actor, now)
            .await
            .map(|()| {
                eprintln!(
                    "group `{group}` shared with `{hub_id}`: its AMBER items cross once `{hub_id}` shares it too with the same members (see `hub peer list`)"
                )
            })
            .map_err(|e| match e {
                hub::store::StoreError::NotFound(m) | hub::store::StoreError::Conflict(m) => {
                    PeerAddError::Usage(m)
                }
                e => PeerAddError::Failed(e.to_string()),
            }),
        PeerCommand::Unshare { hub_id, group } => store
            .unshare_group(hub_id, group, &actor, now)
            .await
            .map(|()| eprintln!("group `{group}` no longer shared with `{hub_id}`"))
            .map_err(|e| match e {
                hub::store::StoreError::NotFound(m) => PeerAddError::Usage(m),
                e => PeerAddError::Failed(e.to_string()),
            }),
        PeerCommand::List => {
            let links = store.peer_links().await;
            let members = store.list_members().await;
            match (links, members) {
                (Ok(links), Ok(members)) => {
                    println!(
                        "{:<20} {:<10} {:<10} {:<9} {:<9} URL",
                        "HUB_ID", "FOLLOWING", "FOLLOWER", "DIR_VER", "RECEIVED"
                    );
                    let mut ids: Vec<String> = links.iter().map(|l| l.hub_id.clone()).collect();
                    ids.extend(
                        members
                            .iter()
                            .filter(|(m, _, _)| m.role == Role::Peer)
                            .map(|(m, _, _)| m.org_id.clone()),
                    );
                    ids.sort();
                    ids.dedup();
                    let mut return_err = None;
                    for id in ids {
                        let link = links.iter().find(|l| l.hub_id == id);
                        let member = members.iter().find(|(m, _, _)| m.org_id == id);
                        println!(
                            "{:<20} {:<10} {:<10} {:<9} {:<9} {}",
                            id,
                            link.map_or("-".to_owned(), |l| l.status.to_string()),
                            member.map_or("-".to_owned(), |(m, _, _)| m.status.to_string()),
                            link.map_or("-".to_owned(), |l| l.directory_version.to_string()),
                            link.map_or("-".to_owned(), |l| l.received.to_string()),
                            link.map_or("-", |l| l.url.as_str()),
                        );
                        match hub::app::fed_groups::link_groups(&store, &config.hub_id, &id).await
                        {
                            Ok(groups) => {
                                for g in groups {
                                    println!("  group {}: {}", g.group, g.agreement);
                                }
                            }
                            Err(e) => return_err = Some(e.to_string()),
                        }
                    }
                    match return_err {
                        Some(e) => Err(PeerAddError::Failed(e)),
                        None => Ok(()),
                    }
                }
                (Err(e), _) | (_, Err(e)) => Err(PeerAddError::Failed(e.to_string())),
            }
        }
    };
    let _ = tokio::task::spawn_blocking(move || store.close()).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(PeerAddError::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(EX_USAGE)
        }
        Err(PeerAddError::Failed(m)) => {
            eprintln!("error: {m}");
            ExitCode::FAILURE
        }
    }
}

async fn prune(config: &HubConfig, older: std::time::Duration, dry_run: bool) -> ExitCode {
    let store = match hub::open_configured_store(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = hub::app::Clock::system().now();
    let cutoff = now.saturating_sub(older.as_secs() as i64);
    let result = store
        .prune_expired(cutoff, now, dry_run, &local_actor())
        .await;
    let _ = tokio::task::spawn_blocking(move || store.close()).await;
    match result {
        Ok(r) => {
            println!(
                "{} {} expired statement(s) ({} rows with their sightings and retractions), valid_until before {}{}",
                if dry_run { "would prune" } else { "pruned" },
                r.expired_ids,
                r.rows,
                isac_core::time::format_rfc3339(cutoff),
                if r.kept_for_head > 0 {
                    format!("; kept {} that hold the newest sequence", r.kept_for_head)
                } else {
                    String::new()
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn log(config: &HubConfig, command: &LogCommand) -> ExitCode {
    let (material, _) = match hub::prepare(config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let origin = config.log_origin();
    match command {
        LogCommand::Key => match hub::app::log::vkey(&material.log_key, &origin) {
            Ok(vkey) => {
                println!("{vkey}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        LogCommand::Checkpoint => {
            let store = match hub::open_configured_store(config).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let latest = match store.latest_checkpoint().await {
                Ok(Some(c)) => hub::app::witness::with_cosignatures(&store, c)
                    .await
                    .map(Some),
                other => other,
            };
            let _ = tokio::task::spawn_blocking(move || store.close()).await;
            match latest {
                Ok(Some(c)) => {
                    print!("{}", c.note);
                    ExitCode::SUCCESS
                }
                Ok(None) => {
                    eprintln!("error: the log has no checkpoint yet (a serving hub signs one within checkpoint_interval_ms of the first statement)");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `hub --remote STATE_DIR log checkpoint|key`: through the Log service
/// with an agent identity, as a member sees it. The key is the directory's
/// `isac-log` entry (the directory verified with the key pinned at
/// enrollment) named by the served checkpoint's origin, and it must verify
/// that checkpoint.
async fn remote_log(state_dir: &std::path::Path, command: &LogCommand) -> ExitCode {
    match remote_log_text(state_dir, command).await {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn remote_log_text(
    state_dir: &std::path::Path,
    command: &LogCommand,
) -> Result<String, String> {
    let creds = isac_client::Credentials::load(state_dir).map_err(|e| e.to_string())?;
    let channel = creds
        .connector()
        .map_err(|e| e.to_string())?
        .connect(&creds.identity.hub_url)
        .await
        .map_err(|e| e.to_string())?;
    let refused = |s: tonic::Status| format!("the hub refused ({:?}): {}", s.code(), s.message());
    let checkpoint = pb::log_client::LogClient::new(channel.clone())
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .map_err(refused)?
        .into_inner();
    if matches!(command, LogCommand::Checkpoint) {
        return Ok(checkpoint.signed_note);
    }
    let pinned_path = state_dir.join("hub-directory.pub");
    let pinned = std::fs::read(&pinned_path)
        .map_err(|e| format!("{}: {e}", pinned_path.display()))
        .and_then(|der| {
            isac_core::VerifyingKey::from_spki_der(&der)
                .map_err(|e| format!("{}: {e}", pinned_path.display()))
        })?;
    let listed = pb::key_directory_client::KeyDirectoryClient::new(channel)
        .list_keys(pb::ListKeysRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    let envelope: isac_core::Envelope = listed
        .signed_directory
        .ok_or("the hub sent no signed key directory")?
        .into();
    let now = isac_core::clock::Clock::system().now();
    let directory = isac_core::directory::verify_directory(&envelope, &pinned, None, now)
        .map_err(|e| format!("key directory: {e}"))?;
    let key = directory
        .keys
        .iter()
        .find(|k| k.org_id == isac_core::names::LOG_ORG)
        .and_then(|k| k.record())
        .ok_or("the key directory lists no log key")?
        .key;
    let parsed = isac_core::tlog::note::parse(checkpoint.signed_note.as_bytes())
        .map_err(|e| format!("served checkpoint: {e}"))?;
    let origin = isac_core::tlog::checkpoint::Checkpoint::parse(&parsed.text)
        .map_err(|e| format!("served checkpoint: {e}"))?
        .origin;
    let verifier = isac_core::tlog::note::Ed25519Verifier::new(&origin, &key)
        .map_err(|e| format!("log key: {e}"))?;
    isac_core::tlog::checkpoint::open(checkpoint.signed_note.as_bytes(), &origin, &[&verifier])
        .map_err(|e| {
            format!("the served checkpoint does not verify with the directory's log key: {e}")
        })?;
    Ok(format!("{}\n", verifier.to_vkey()))
}

async fn export(config: &HubConfig, file: &std::path::Path) -> ExitCode {
    let store = match hub::open_configured_store(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = hub::retention::export(&store, file).await;
    let _ = tokio::task::spawn_blocking(move || store.close()).await;
    match result {
        Ok(n) => {
            println!("exported {n} statements to {}", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn status(config: &HubConfig) -> ExitCode {
    let (material, _) = match hub::prepare(config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = match hub::open_configured_store(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let counts = store.status_counts().await;
    let log_size = store
        .latest_checkpoint()
        .await
        .ok()
        .flatten()
        .map(|c| c.size);
    let mut witnesses = Vec::new();
    for w in &config.log.witnesses {
        let name = w.vkey.split('+').next().unwrap_or_default().to_owned();
        let cosigned = store.latest_cosigned(name.clone()).await.ok().flatten();
        witnesses.push((name, w.url.clone(), cosigned));
    }
    let store_name = store.describe();
    let _ = tokio::task::spawn_blocking(move || store.close()).await;
    let c = match counts {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let size = |name: &str| {
        std::fs::metadata(config.data_dir.join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let fmt = |v: &[(String, u64)]| {
        v.iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("data_dir: {}", config.data_dir.display());
    println!("store: {store_name}");
    println!("ca_fingerprint: {}", material.ca_fingerprint);
    print_listeners(config);
    println!("taxii_api_root: /{}/", hub::taxii::API_ROOT);
    println!(
        "taxii_indicators_collection: {}",
        hub::taxii::collection_id("indicators")
    );
    println!(
        "taxii_bulletins_collection: {}",
        hub::taxii::collection_id("bulletins")
    );
    println!("head_sequence: {}", c.head);
    println!(
        "statements: {} ({})",
        c.statements,
        fmt(&c.statements_by_tlp)
    );
    println!("members: {}", fmt(&c.members_by_status));
    println!("agents_in_use: {}", c.agents);
    println!("signing_keys: {}", fmt(&c.keys_by_state));
    println!("groups: {}  people: {}", c.groups, c.people);
    println!("key_directory_version: {}", c.directory_version);
    match log_size {
        Some(n) => println!("log_checkpoint_size: {n}"),
        None => println!("log_checkpoint_size: none yet"),
    }
    // A witness far behind the checkpoint is down or refusing: the running
    // hub's isac_log_witness_up and its log say why.
    for (name, url, cosigned) in witnesses {
        match cosigned {
            Some(n) => println!("log_witness: {name} {url} cosigned_size={n}"),
            None => println!("log_witness: {name} {url} cosigned_size=none"),
        }
    }
    if config.store.is_empty() {
        println!(
            "database_bytes: {} (+ wal {})",
            size("hub.db"),
            size("hub.db-wal")
        );
    }
    ExitCode::SUCCESS
}

/// Exit code for a data directory error: 64 when the operator pointed at
/// the wrong place, 1 for everything else.
/// `hub store copy --to URL`.
async fn store_copy(config: &hub::config::HubConfig, to: &str) -> ExitCode {
    let usage = |m: String| {
        eprintln!("error: {m}");
        ExitCode::from(EX_USAGE)
    };
    let password = config.store_password.as_ref().map(|p| p.0.as_str());
    let ca_file = Some(config.store_ca_file.as_str());
    let target = match hub::store::postgres_target(to, password, ca_file) {
        Ok(t) => t,
        Err(e) => return usage(format!("--to: {e}")),
    };
    match hub::datadir::running(&config.data_dir) {
        hub::datadir::Running::Yes(info) => {
            return usage(format!(
                "a hub (pid {}) is serving from {}: stop it first, so that nothing it accepts after the copy is left behind",
                info.pid,
                config.data_dir.display()
            ))
        }
        hub::datadir::Running::Unreadable(m) => {
            return usage(format!("cannot tell whether a hub is running: {m}"))
        }
        hub::datadir::Running::No | hub::datadir::Running::Stale(_) => {}
    }
    let db = config.data_dir.join("hub.db");
    if !db.exists() {
        return usage(format!("no hub database at {}", db.display()));
    }
    // Bring the file to this hub's schema first (as any admin command
    // would), so both sides have the same columns.
    match hub::datadir::open_store(&config.data_dir) {
        Ok(s) => {
            let _ = tokio::task::spawn_blocking(move || s.close()).await;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return datadir_failure(&e);
        }
    }
    match hub::store::copy::copy_sqlite_to_postgres(&db, target).await {
        Ok(checks) => {
            println!("copied {} into {to}", db.display());
            println!("{:<18} {:>8}  sha256 (source / target)", "table", "rows");
            for c in &checks {
                println!(
                    "{:<18} {:>8}  {} / {}",
                    c.table, c.rows, c.source_sha256, c.target_sha256
                );
            }
            println!(
                "verified: {} tables, row counts and SHA-256 equal on both sides; now run `hub serve --store {to}`",
                checks.len()
            );
            ExitCode::SUCCESS
        }
        Err(hub::store::StoreError::Refused(m)) => usage(m),
        Err(e) => {
            eprintln!("error: {e}; the target database was left as it was");
            ExitCode::FAILURE
        }
    }
}

/// Commands that only read the data dir: on a missing one they say so and
/// create nothing (`hub serve`, `hub log key` and the commands that change
/// something create a data dir).
fn reads_only(command: &Command) -> bool {
    matches!(
        command,
        Command::Status
            | Command::Backup { .. }
            | Command::Export { .. }
            | Command::Prune { dry_run: true, .. }
            // Not `log key`: an operator reads the log key to configure
            // witnesses before the first start, and it prepares the dir.
            | Command::Log(LogCommand::Checkpoint)
            | Command::Audit { .. }
            | Command::Store(StoreCommand::Copy { .. })
            | Command::Member(MemberCommand::List | MemberCommand::Show { .. })
            | Command::Key(KeyCommand::List)
            | Command::Person(PersonCommand::List { .. })
            | Command::Group(GroupCommand::List)
            | Command::ApiKey(ApiKeyCommand::List { .. })
            | Command::Peer(PeerCommand::List)
    )
}

/// `Err` naming the problem unless `dir` is a hub data dir (its CA is the
/// first thing `hub serve` writes there).
fn existing_data_dir(dir: &std::path::Path) -> Result<(), String> {
    if !dir.exists() {
        return Err(format!(
            "no hub data directory at {} (this command only reads one; `hub serve` creates it, or pass --data-dir)",
            dir.display()
        ));
    }
    if !dir.join("ca.crt").exists() {
        return Err(format!(
            "{} is not a hub data directory (no ca.crt; `hub serve` creates one, or pass --data-dir)",
            dir.display()
        ));
    }
    Ok(())
}

fn datadir_failure(e: &hub::datadir::DataDirError) -> ExitCode {
    match e {
        hub::datadir::DataDirError::BadInput { .. }
        | hub::datadir::DataDirError::Store(hub::store::StoreError::Unsupported(_)) => {
            ExitCode::from(EX_USAGE)
        }
        _ => ExitCode::FAILURE,
    }
}

/// The addresses a running hub bound (from `hub.run`), or that it is not
/// running (and what the configuration, with this shell's environment,
/// says it would bind).
fn print_listeners(config: &HubConfig) {
    use hub::datadir::Running;
    let off =
        |a: Option<std::net::SocketAddr>| a.map_or_else(|| "off".to_owned(), |a| a.to_string());
    let configured = [
        ("listen", config.listen.to_string()),
        ("taxii_listen", off(config.taxii_listen)),
        ("metrics_listen", off(config.metrics_listen)),
    ];
    let not_running = |state: String, note: &str| {
        println!("hub: {state}");
        for (name, value) in &configured {
            println!("{name}: {value} ({note})");
        }
    };
    match hub::datadir::running(&config.data_dir) {
        Running::Yes(run) => {
            println!("hub: running (pid {}, since {})", run.pid, run.started);
            let bound = [
                run.listen.clone(),
                run.taxii_listen.clone().unwrap_or_else(|| "off".into()),
                run.metrics_listen.clone().unwrap_or_else(|| "off".into()),
            ];
            for ((name, want), got) in configured.iter().zip(bound) {
                if *want == got {
                    println!("{name}: {got}");
                } else {
                    println!("{name}: {got} (configured {want})");
                }
            }
        }
        Running::No => not_running("not running".into(), "configured; not running"),
        Running::Stale(run) => not_running(
            format!(
                "not running (stale {}: pid {} stopped without cleaning up; \
                 it was listening on {})",
                hub::datadir::RUN_FILE,
                run.pid,
                run.listen
            ),
            "configured; not running",
        ),
        Running::Unreadable(e) => not_running(format!("unknown (cannot read {e})"), "configured"),
    }
}

/// Registers the SIGTERM/SIGINT handlers now (before anyone is told the
/// hub listens, so an early SIGTERM is a graceful stop, not a kill) and
/// returns the future that resolves on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = int.recv() => {},
                    _ = term.recv() => {},
                }
            }
            _ => std::future::pending().await,
        }
    }
}

// === admin front end: same operations, local or remote ===

enum Failure {
    Usage(String),
    Other(String),
}

enum Backend {
    Local {
        store: Store,
        ca_fingerprint: String,
    },
    Remote(pb::admin_client::AdminClient<Channel>),
}

impl Backend {
    async fn open(config: &HubConfig, remote: Option<&std::path::Path>) -> Result<Self, String> {
        match remote {
            Some(state_dir) => {
                let creds = isac_client::Credentials::load(state_dir).map_err(|e| e.to_string())?;
                let channel = creds
                    .connector()
                    .map_err(|e| e.to_string())?
                    .connect(&creds.identity.hub_url)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Backend::Remote(pb::admin_client::AdminClient::new(channel)))
            }
            None => {
                let (material, _) = hub::prepare(config).map_err(|e| e.to_string())?;
                let store = hub::open_configured_store(config)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Backend::Local {
                    store,
                    ca_fingerprint: material.ca_fingerprint,
                })
            }
        }
    }

    async fn close(self) {
        if let Backend::Local { store, .. } = self {
            let _ = tokio::task::spawn_blocking(move || store.close()).await;
        }
    }
}

fn local_actor() -> String {
    format!(
        "local:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".into())
    )
}

fn api_failure(e: hub::error::ApiError) -> Failure {
    match e {
        hub::error::ApiError::InvalidArgument(m) => Failure::Usage(m),
        other => Failure::Other(other.to_string()),
    }
}

fn status_failure(s: tonic::Status) -> Failure {
    let m = format!("the hub refused ({:?}): {}", s.code(), s.message());
    if s.code() == tonic::Code::InvalidArgument {
        Failure::Usage(m)
    } else {
        Failure::Other(m)
    }
}

/// Runs one admin operation on whichever backend is open.
macro_rules! op {
    ($backend:expr, $config:expr, $local:ident, $remote:ident, $req:expr) => {{
        match $backend {
            Backend::Local {
                store,
                ca_fingerprint,
            } => {
                let ctx = AdminContext::local(
                    store,
                    $config,
                    ca_fingerprint,
                    local_actor(),
                    Clock::system(),
                );
                ctx.$local($req).await.map_err(api_failure)
            }
            Backend::Remote(client) => client
                .clone()
                .$remote($req)
                .await
                .map(|r| r.into_inner())
                .map_err(status_failure),
        }
    }};
}

fn print_token(t: &pb::EnrollmentTokenResponse, what: &str) {
    // Human text on stderr, the token alone on stdout: TOKEN=$(hub member add ...)
    eprintln!("{what}");
    eprintln!(
        "one-time enrollment token (expires {}), give it to the member's agent:\n  member-agent enroll --hub https://HUB:PORT --token <token>",
        t.expires_at
    );
    println!("{}", t.token);
}

fn print_keys(keys: &[pb::MemberKey]) {
    for k in keys {
        let when = match k.state.as_str() {
            "revoked" => format!(" revoked_at={}", k.revoked_at),
            "retired" => format!(" retired_at={}", k.retired_at),
            _ => String::new(),
        };
        println!(
            "{} {} {} valid_from={}{}",
            k.key_id, k.org_id, k.state, k.valid_from, when
        );
    }
}

async fn admin(backend: &Backend, config: &HubConfig, command: Command) -> Result<(), Failure> {
    let ttl = |t: Option<humantime::Duration>| t.map(|d| d.as_secs()).unwrap_or(0);
    match command {
        Command::Serve { .. }
        | Command::ApiKey(_)
        | Command::Status
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::Prune { .. }
        | Command::Export { .. }
        | Command::Log(_)
        | Command::Peer(_)
        | Command::Store(_) => {
            unreachable!("handled before")
        }
        Command::Member(MemberCommand::Add {
            org_id,
            name,
            role,
            ttl: t,
        }) => {
            let req = pb::AddMemberRequest {
                org_id: org_id.clone(),
                name: name.unwrap_or_default(),
                role: role.clone(),
                token_ttl_secs: ttl(t),
            };
            let token = op!(backend, config, add_member, add_member, req)?;
            if role == "peer" {
                eprintln!("added peer hub `{org_id}`; at that hub, run:\n  hub peer add {} --url https://THIS_HUB:PORT --token <token>", config.hub_id);
                println!("{}", token.token);
            } else {
                print_token(&token, &format!("added member `{org_id}` (role {role})"));
            }
        }
        Command::Member(MemberCommand::Token { org_id, ttl: t }) => {
            let req = pb::IssueTokenRequest {
                org_id: org_id.clone(),
                token_ttl_secs: ttl(t),
            };
            let token = op!(backend, config, new_token, issue_token, req)?;
            print_token(&token, &format!("new enrollment token for `{org_id}`"));
        }
        Command::Member(MemberCommand::List) => {
            let list = match backend {
                Backend::Local {
                    store,
                    ca_fingerprint,
                } => AdminContext::local(
                    store,
                    config,
                    ca_fingerprint,
                    local_actor(),
                    Clock::system(),
                )
                .list_members()
                .await
                .map_err(api_failure)?,
                Backend::Remote(c) => c
                    .clone()
                    .list_members(pb::ListMembersRequest {})
                    .await
                    .map_err(status_failure)?
                    .into_inner(),
            };
            println!(
                "{:<24} {:<28} {:<12} {:<10} {:>6} {:>5}  CREATED",
                "ORG_ID", "NAME", "ROLE", "STATUS", "AGENTS", "KEYS"
            );
            for m in list.members {
                println!(
                    "{:<24} {:<28} {:<12} {:<10} {:>6} {:>5}  {}",
                    m.org_id,
                    m.name,
                    m.role,
                    m.status,
                    m.active_agents,
                    m.active_keys,
                    m.created_at
                );
            }
        }
        Command::Member(MemberCommand::Show { org_id }) => {
            let d = op!(
                backend,
                config,
                show_member,
                show_member,
                pb::ShowMemberRequest { org_id }
            )?;
            let m = d.member.unwrap_or_default();
            println!(
                "org_id: {}\nname: {}\nrole: {}\nstatus: {}\ncreated: {}",
                m.org_id, m.name, m.role, m.status, m.created_at
            );
            println!("agents:");
            for a in d.agents {
                let state = if a.superseded_at.is_empty() {
                    "in use".to_owned()
                } else {
                    format!("superseded {}", a.superseded_at)
                };
                let acked = if a.acked_at.is_empty() {
                    "never acknowledged".to_owned()
                } else {
                    format!("acked={} at {} lag={}", a.acked_sequence, a.acked_at, a.lag)
                };
                println!(
                    "  {} cert={} issued={} expires={} {} {}",
                    a.agent_name, a.cert_fingerprint, a.issued_at, a.not_after, state, acked
                );
            }
            println!("keys:");
            for k in d.keys {
                println!(
                    "  {} {} valid_from={}{}{}",
                    k.key_id,
                    k.state,
                    k.valid_from,
                    if k.retired_at.is_empty() {
                        String::new()
                    } else {
                        format!(" retired_at={}", k.retired_at)
                    },
                    if k.revoked_at.is_empty() {
                        String::new()
                    } else {
                        format!(" revoked_at={}", k.revoked_at)
                    }
                );
            }
            println!("people:");
            for p in d.people {
                println!("  {} {} {}", p.person_id, p.name, p.contact);
            }
        }
        Command::Member(
            cmd @ (MemberCommand::Suspend { .. }
            | MemberCommand::Resume { .. }
            | MemberCommand::Remove { .. }),
        ) => {
            let (org_id, action) = match cmd {
                MemberCommand::Suspend { org_id } => (org_id, "suspend"),
                MemberCommand::Resume { org_id } => (org_id, "resume"),
                MemberCommand::Remove { org_id } => (org_id, "remove"),
                _ => unreachable!(),
            };
            let req = pb::SetMemberStatusRequest {
                org_id,
                action: action.into(),
            };
            let m = op!(backend, config, set_member_status, set_member_status, req)?;
            println!("member `{}` is now {}", m.org_id, m.status);
        }
        Command::Person(PersonCommand::Add {
            org_id,
            person_id,
            name,
            contact,
        }) => {
            let req = pb::AddPersonRequest {
                org_id,
                person_id,
                name,
                contact,
            };
            let p = op!(backend, config, add_person, add_person, req)?;
            println!("added person {}/{} ({})", p.org_id, p.person_id, p.name);
        }
        Command::Person(PersonCommand::List { org_id }) => {
            let req = pb::ListPeopleRequest {
                org_id: org_id.unwrap_or_default(),
            };
            let list = op!(backend, config, list_people, list_people, req)?;
            for p in list.people {
                println!("{}/{} {} {}", p.org_id, p.person_id, p.name, p.contact);
            }
        }
        Command::Person(PersonCommand::Remove { org_id, person_id }) => {
            let req = pb::RemovePersonRequest { org_id, person_id };
            let p = op!(backend, config, remove_person, remove_person, req)?;
            println!("removed person {}/{}", p.org_id, p.person_id);
        }
        Command::Key(KeyCommand::List) => {
            let keys = match backend {
                Backend::Local {
                    store,
                    ca_fingerprint,
                } => AdminContext::local(
                    store,
                    config,
                    ca_fingerprint,
                    local_actor(),
                    Clock::system(),
                )
                .list_keys()
                .await
                .map_err(api_failure)?,
                Backend::Remote(c) => {
                    c.clone()
                        .list_all_keys(pb::ListKeysRequest {})
                        .await
                        .map_err(status_failure)?
                        .into_inner()
                        .keys
                }
            };
            print_keys(&keys);
        }
        Command::Key(KeyCommand::Revoke { key_id, at, reason }) => {
            let req = pb::RevokeKeyRequest {
                key_id,
                effective_at: at.unwrap_or_default(),
                reason,
            };
            let k = op!(backend, config, revoke_key, revoke_key, req)?;
            print_keys(std::slice::from_ref(&k));
        }
        Command::Group(GroupCommand::Add { name, members }) => {
            let g = op!(
                backend,
                config,
                add_group,
                add_group,
                pb::AddGroupRequest { name, members }
            )?;
            println!("group {} = {}", g.name, g.members.join(","));
        }
        Command::Group(GroupCommand::List) => {
            let list = op!(
                backend,
                config,
                list_groups,
                list_groups,
                pb::ListGroupsRequest {}
            )?;
            for g in list.groups {
                println!("{} {}", g.name, g.members.join(","));
            }
        }
        Command::Group(GroupCommand::Remove { name }) => {
            let g = op!(
                backend,
                config,
                remove_group,
                remove_group,
                pb::RemoveGroupRequest { name }
            )?;
            println!("removed group {}", g.name);
        }
        Command::Audit { limit } => {
            let list = op!(
                backend,
                config,
                audit,
                list_audit,
                pb::ListAuditRequest { limit }
            )?;
            for a in list.entries {
                println!(
                    "{} {} {} {} {} {}",
                    a.seq, a.at, a.actor, a.action, a.target, a.detail
                );
            }
        }
    }
    Ok(())
}
