//! `member-agent`: a member's CLI and daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use member_agent::config::AgentConfig;
use member_agent::draft::IndicatorDraft;
use member_agent::enroll::{enroll, EnrollOptions};
use member_agent::sink::JsonlSink;
use member_agent::{Agent, AgentError, StateDir};

const EX_USAGE: u8 = 64;

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
    /// Log lines on stderr: human (default) or json (one object per line, for log shippers).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "human",
        env = "ISAC_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll with a hub using a one-time token from its operator.
    Enroll {
        /// The hub's address, e.g. https://localhost:7443
        #[arg(long)]
        hub: String,
        /// The token printed by `hub member add` (it pins the hub's CA).
        #[arg(long)]
        token: String,
        /// A name for this agent within your organisation.
        #[arg(long, default_value = "default")]
        name: String,
        /// Replace an existing identity in the state dir.
        #[arg(long)]
        force: bool,
    },
    /// Sign an indicator with your key and publish it.
    Publish(Box<PublishArgs>),
    /// Fetch, verify and store everything new, then exit.
    Sync(ReceiveArgs),
    /// Like sync, but keep following live items (reconnects by itself).
    Run {
        #[command(flatten)]
        args: ReceiveArgs,
        #[command(flatten)]
        ui: member_agent::ui::RunUiArgs,
    },
    /// Serve the analyst console (web UI over the local store); prints a one-time login link.
    Ui(member_agent::ui::UiArgs),
    /// Export the verified local store (stix, csv, osv or misp-json) to stdout or a file.
    Export {
        /// stix (a STIX 2.1 bundle), csv (publish --csv columns), osv (OSV
        /// records of package indicators, publish --osv reads them) or
        /// misp-json (one MISP event).
        #[arg(long, default_value = "stix")]
        format: String,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Include TLP:RED items (left out by default).
        #[arg(long)]
        include_red: bool,
    },
    /// Show one held item in full (the verified statement and its envelope).
    Show { id: String },
    /// Search the local store by purl, package name, hash, domain or text.
    Search {
        query: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Check a lockfile (package-lock.json, Cargo.lock, requirements.txt,
    /// poetry.lock, go.sum) against held indicators; exit code 1 on a match.
    Check {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Report a sighting of an indicator you hold ("we saw it"); anonymous
    /// to other members unless --named.
    Sight {
        id: String,
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Let others see that your organisation reported it.
        #[arg(long)]
        named: bool,
        /// Stricter TLP than the indicator's (never looser).
        #[arg(long)]
        tlp: Option<String>,
    },
    /// Withdraw an item you published (coordinators: any item they can see).
    Retract {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Broadcast an incident bulletin (coordinators only).
    Bulletin {
        #[arg(long)]
        title: String,
        /// File holding the bulletin text (`-` for stdin).
        #[arg(long)]
        body: PathBuf,
        /// info, low, medium, high (default), critical
        #[arg(long)]
        severity: Option<String>,
        /// TLP 2.0 label (required).
        #[arg(long)]
        tlp: Option<String>,
        #[arg(long)]
        audience: Vec<String>,
        /// Incident reference, e.g. INC-2026-042.
        #[arg(long)]
        incident: Option<String>,
        /// Related indicator id (repeatable).
        #[arg(long)]
        related: Vec<String>,
    },
    /// Signing keys: rotate yours, or list the key directory.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Get a fresh client certificate now (`run` does this by itself near expiry).
    Renew,
    /// Show what the local store holds, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct ReceiveArgs {
    /// Config file for sinks and filters (default: STATE_DIR/agent.toml if
    /// present); flags given override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Append verified items as JSON Lines to this file (default: stdout).
    #[arg(long)]
    jsonl: Option<PathBuf>,
    /// Also write TLP:RED items to the sink (they always stay in the local store).
    #[arg(long)]
    export_red: bool,
    /// Rotate the JSON Lines file when it would grow past this many bytes.
    #[arg(long)]
    jsonl_max_bytes: Option<u64>,
    /// Rotated JSON Lines files to keep (FILE.1 is the newest; default 5).
    #[arg(long)]
    jsonl_keep: Option<u32>,
    /// Also write each verified item as a STIX 2.1 bundle file into this directory.
    #[arg(long)]
    stix_dir: Option<PathBuf>,
    /// POST each item as JSON to this URL, signed with an HMAC-SHA256 header.
    #[arg(long, requires = "webhook_secret")]
    webhook: Option<String>,
    #[arg(long, env = "ISAC_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Splunk HTTP Event Collector URL, e.g. https://splunk:8088/services/collector/event
    #[arg(long, requires = "splunk_token")]
    splunk_hec: Option<String>,
    #[arg(long, env = "ISAC_SPLUNK_TOKEN", hide_env_values = true)]
    splunk_token: Option<String>,
    #[arg(long)]
    splunk_index: Option<String>,
    #[arg(long, default_value = "isac:indicator")]
    splunk_sourcetype: String,
    /// Elasticsearch/OpenSearch base URL (documents go to `_bulk` with ECS threat fields).
    #[arg(long)]
    elastic: Option<String>,
    #[arg(long, default_value = "isac-indicators")]
    elastic_index: String,
    /// Most events in one Splunk HEC request (default 100).
    #[arg(long)]
    splunk_batch: Option<usize>,
    /// Set aside items an HTTP receiver rejects for good (4xx other than
    /// 408/429, Elasticsearch item errors) in this file (JSON Lines), so
    /// delivery goes on; without it such a rejection holds the cursor.
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// Keep retrying an HTTP receiver that is down for this many seconds
    /// (exponential backoff) before the sync fails (`run` then reconnects;
    /// default 60).
    #[arg(long)]
    sink_retry_secs: Option<u64>,
    /// Mail bulletins and indicators at or above --mail-min-severity through
    /// this SMTP server, smtp://HOST[:PORT] (STARTTLS required; port 587 by default).
    #[arg(long, requires_all = ["mail_from", "mail_to"])]
    smtp: Option<String>,
    #[arg(long)]
    mail_from: Option<String>,
    /// Recipients, comma-separated (repeatable).
    #[arg(long, value_delimiter = ',')]
    mail_to: Vec<String>,
    #[arg(long, default_value = "high")]
    mail_min_severity: String,
    /// SMTP AUTH PLAIN user (inside TLS only); the password from ISAC_SMTP_PASSWORD.
    #[arg(long)]
    smtp_user: Option<String>,
    #[arg(long, env = "ISAC_SMTP_PASSWORD", hide_env_values = true)]
    smtp_password: Option<String>,
    /// Extra CA certificate (PEM) for https, syslog TLS and SMTP receivers.
    #[arg(long)]
    sink_ca: Option<PathBuf>,
    /// Syslog receiver (RFC 5424 with a CEF payload): udp://HOST:PORT,
    /// tcp://HOST:PORT or tls://HOST:PORT (RFC 5425; --sink-ca to trust a
    /// private CA) (repeatable).
    #[arg(long)]
    syslog: Vec<String>,
    /// Only these kinds (repeatable): package, artifact, repository, account,
    /// network, vulnerability, bulletin, sighting.
    #[arg(long = "kind")]
    kinds: Vec<String>,
    /// Only these purl ecosystems (repeatable): npm, pypi, cargo, golang, maven, ...
    #[arg(long = "ecosystem")]
    ecosystems: Vec<String>,
    #[arg(long)]
    min_severity: Option<String>,
    #[arg(long)]
    min_confidence: Option<u32>,
    /// Only these TLP levels (repeatable).
    #[arg(long = "tlp")]
    tlp_levels: Vec<String>,
    /// Only items carrying one of these labels (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    #[arg(long)]
    bulletins_only: bool,
}

impl ReceiveArgs {
    /// The sinks from the config file, then the flags over them: a scalar
    /// flag replaces the file's value, a sink flag the file's sinks of
    /// that kind.
    fn apply_sinks(&self, sink: &mut JsonlSink, config: &AgentConfig) -> Result<(), AgentError> {
        use member_agent::http_sink::HttpSink;
        config.apply(sink, |v| std::env::var(v).ok())?;
        if self.export_red {
            sink.export_red = true;
        }
        if let Some(d) = &self.stix_dir {
            sink.stix_dir = Some(d.clone());
        }
        if let Some(max) = self.jsonl_max_bytes.or(config.jsonl_max_bytes) {
            sink.rotate_at(max, self.jsonl_keep.or(config.jsonl_keep).unwrap_or(5));
        }
        if let Some(url) = &self.webhook {
            sink.http.retain(|h| !matches!(h, HttpSink::Webhook { .. }));
            sink.http.push(HttpSink::Webhook {
                url: url.parse()?,
                secret: self.webhook_secret.clone().unwrap_or_default(),
            });
        }
        if let Some(url) = &self.splunk_hec {
            sink.http
                .retain(|h| !matches!(h, HttpSink::SplunkHec { .. }));
            sink.http.push(HttpSink::SplunkHec {
                url: url.parse()?,
                token: self.splunk_token.clone().unwrap_or_default(),
                index: self.splunk_index.clone(),
                sourcetype: self.splunk_sourcetype.clone(),
            });
        }
        if let Some(url) = &self.elastic {
            sink.http.retain(|h| !matches!(h, HttpSink::Elastic { .. }));
            sink.http.push(HttpSink::Elastic {
                url: url.parse()?,
                index: self.elastic_index.clone(),
            });
        }
        if !self.syslog.is_empty() {
            sink.syslog.clear();
            for target in &self.syslog {
                sink.syslog.push(target.parse()?);
            }
        }
        if let Some(url) = &self.smtp {
            let (host, port) = member_agent::mail_sink::parse_smtp_url(url)?;
            let from = self.mail_from.clone().unwrap_or_default();
            for a in std::iter::once(&from).chain(&self.mail_to) {
                member_agent::mail_sink::check_address(a)?;
            }
            sink.mail = Some(member_agent::mail_sink::MailSink {
                host,
                port,
                from,
                to: self.mail_to.clone(),
                min_severity: self.mail_min_severity.parse().map_err(AgentError::Usage)?,
                auth: match (&self.smtp_user, &self.smtp_password) {
                    (Some(u), Some(p)) => Some((u.clone(), p.clone())),
                    (Some(_), None) => {
                        return Err(AgentError::Usage(
                            "--smtp-user needs the password in ISAC_SMTP_PASSWORD".into(),
                        ))
                    }
                    _ => None,
                },
                ca: None,
            });
        }
        if let Some(b) = self.splunk_batch {
            sink.hec_batch = b.max(1);
        }
        if let Some(d) = &self.dead_letter {
            sink.dead_letter = Some(d.clone());
        }
        if let Some(secs) = self.sink_retry_secs {
            sink.http_retry.give_up_after = std::time::Duration::from_secs(secs);
        }
        if let Some(p) = self.sink_ca.as_ref().or(config.sink_ca.as_ref()) {
            let pem = std::fs::read(p)
                .map_err(|e| AgentError::Usage(format!("{}: cannot read: {e}", p.display())))?;
            let ca = openssl::x509::X509::from_pem(&pem)
                .map_err(|e| AgentError::Usage(format!("{}: {e}", p.display())))?;
            for target in &mut sink.syslog {
                target.ca = Some(ca.clone());
            }
            if let Some(mail) = &mut sink.mail {
                mail.ca = Some(ca.clone());
            }
            sink.http_ca = Some(ca);
        }
        Ok(())
    }

    /// The subscription filter: each flag given replaces the file's value.
    fn filter(&self, config: &AgentConfig) -> isac_proto::v1::SubscriptionFilter {
        let f = &config.filter;
        let pick = |flag: &Vec<String>, file: &Vec<String>| {
            if flag.is_empty() {
                file.clone()
            } else {
                flag.clone()
            }
        };
        isac_proto::v1::SubscriptionFilter {
            kinds: pick(&self.kinds, &f.kinds),
            ecosystems: pick(&self.ecosystems, &f.ecosystems),
            min_severity: self
                .min_severity
                .clone()
                .or_else(|| f.min_severity.clone())
                .unwrap_or_default(),
            min_confidence: self.min_confidence.or(f.min_confidence).unwrap_or(0),
            tlp_levels: pick(&self.tlp_levels, &f.tlp),
            tags: pick(&self.tags, &f.tags),
            bulletins_only: self.bulletins_only || f.bulletins_only.unwrap_or(false),
        }
    }

    /// The config file and the JSON Lines sink it and the flags name.
    fn open(&self, state: &StateDir) -> Result<(AgentConfig, JsonlSink), AgentError> {
        let config = member_agent::config::load(self.config.as_deref(), &state.root)?;
        let sink = JsonlSink::open(self.jsonl.as_deref().or(config.jsonl.as_deref()))?;
        Ok((config, sink))
    }
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Generate a new signing key, register it (signed by the current one) and retire the current key.
    Rotate,
    /// List keys from the verified key directory: key id, org, state.
    List {
        /// Every member's keys, not only yours.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Args)]
struct PublishArgs {
    /// Import OSV records (a file, or a directory such as a checkout of
    /// ossf/malicious-packages): one signed indicator per affected package;
    /// unchanged records are skipped, updated ones revised, withdrawn ones retracted.
    #[arg(long, conflicts_with = "json")]
    osv: Option<PathBuf>,
    /// Publish one indicator per row of a CSV file whose header names the
    /// publish flags (kind, purl, domain, tlp, title, labels as a;b, ...).
    #[arg(long, conflicts_with_all = ["json", "osv"])]
    csv: Option<PathBuf>,
    /// Import a STIX 2.1 bundle: indicators (software, file hashes, domains,
    /// URLs, IPs, accounts), vulnerabilities, software, malware samples, and
    /// reports as bulletins (coordinators). Its TLP markings (2.0 or 1.0) win
    /// over --tlp; re-imports skip unchanged objects.
    #[arg(long, conflicts_with_all = ["json", "osv", "csv"])]
    stix: Option<PathBuf>,
    /// With --csv, --osv or --stix: publish the valid rows, records or objects even if some are invalid.
    #[arg(long)]
    skip_invalid: bool,
    /// Read the indicator from a JSON file (flags given as well override it).
    #[arg(long)]
    json: Option<PathBuf>,
    /// package, artifact, repository, account, network or vulnerability (inferred from the observable flag if omitted).
    #[arg(long)]
    kind: Option<String>,
    /// Package URL, e.g. pkg:npm/evil-pkg@1.0.0 (kind package; or the artifact's package).
    #[arg(long)]
    purl: Option<String>,
    /// Affected versions or ranges (repeatable; kind package).
    #[arg(long = "version-range")]
    versions: Vec<String>,
    /// malicious (default), compromised, typosquat, dependency-confusion, protestware.
    #[arg(long)]
    threat: Option<String>,
    /// For typosquats: the purl of the package imitated.
    #[arg(long)]
    imitates: Option<String>,
    #[arg(long)]
    sha256: Option<String>,
    #[arg(long)]
    sha512: Option<String>,
    #[arg(long)]
    filename: Option<String>,
    #[arg(long)]
    repo_url: Option<String>,
    #[arg(long)]
    commit: Option<String>,
    #[arg(long)]
    tag: Option<String>,
    /// PLATFORM:USERNAME, e.g. npm:evil-maintainer
    #[arg(long)]
    account: Option<String>,
    #[arg(long)]
    domain: Option<String>,
    #[arg(long)]
    ip: Option<String>,
    #[arg(long)]
    url: Option<String>,
    /// CVE, GHSA or OSV id (kind vulnerability).
    #[arg(long)]
    vuln_id: Option<String>,
    /// Purls affected by the vulnerability (repeatable).
    #[arg(long = "affected-purl")]
    affected_purls: Vec<String>,
    /// TLP 2.0 label: clear, green, amber, amber+strict or red (required).
    #[arg(long)]
    tlp: Option<String>,
    /// org:ORG_ID, group:NAME or person:ORG_ID/PERSON_ID (repeatable).
    #[arg(long)]
    audience: Vec<String>,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// info, low, medium (default), high, critical
    #[arg(long)]
    severity: Option<String>,
    /// 0-100 (default 50)
    #[arg(long)]
    confidence: Option<u8>,
    /// Reference URL (repeatable).
    #[arg(long = "reference")]
    references: Vec<String>,
    /// Free-form label (repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// RFC 3339 UTC, e.g. 2026-12-31T00:00:00Z
    #[arg(long)]
    valid_until: Option<String>,
    /// Related statement id (repeatable).
    #[arg(long)]
    related: Vec<String>,
    /// Deliver without your identity: the hub verifies your signature, keeps
    /// it for its audit trail, and re-signs as "anonymous member".
    #[arg(long)]
    anonymous: bool,
}

fn some_vec(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

impl PublishArgs {
    fn into_draft(self) -> Result<IndicatorDraft, AgentError> {
        let base = match &self.json {
            Some(p) => {
                let text = member_agent::error::read_input(p)?;
                serde_json::from_str::<IndicatorDraft>(&text)
                    .map_err(|e| AgentError::Usage(format!("{}: {e}", p.display())))?
            }
            None => IndicatorDraft::default(),
        };
        Ok(base.overlay(IndicatorDraft {
            kind: self.kind,
            purl: self.purl,
            versions: some_vec(self.versions),
            threat: self.threat,
            imitates: self.imitates,
            sha256: self.sha256,
            sha512: self.sha512,
            filename: self.filename,
            repo_url: self.repo_url,
            commit: self.commit,
            tag: self.tag,
            account: self.account,
            domain: self.domain,
            ip: self.ip,
            url: self.url,
            vuln_id: self.vuln_id,
            affected_purls: some_vec(self.affected_purls),
            tlp: self.tlp,
            audience: some_vec(self.audience),
            title: self.title,
            description: self.description,
            severity: self.severity,
            confidence: self.confidence,
            references: some_vec(self.references),
            labels: some_vec(self.labels),
            valid_from: None,
            valid_until: self.valid_until,
            related: some_vec(self.related),
            anonymous: self.anonymous.then_some(true),
        }))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Human => logs.init(),
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
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                AgentError::Usage(_) | AgentError::NotEnrolled(_) => ExitCode::from(EX_USAGE),
                // `check` found something: exit 1, as CI gates expect.
                AgentError::Matched(_) => ExitCode::from(1),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

async fn run(cli: Cli) -> Result<(), AgentError> {
    let state = StateDir::new(cli.state_dir);
    match cli.command {
        Command::Enroll {
            hub,
            token,
            name,
            force,
        } => {
            let id = enroll(
                &state,
                EnrollOptions {
                    hub_url: &hub,
                    token: &token,
                    agent_name: &name,
                    force,
                },
            )
            .await?;
            println!(
                "enrolled as `{}` (agent `{}`), signing key {}; hub CA pinned {}; state in {}",
                id.org_id,
                id.agent_name,
                id.signing_key_id,
                id.ca_fingerprint,
                state.root.display()
            );
        }
        Command::Publish(args) if args.csv.is_some() => {
            let path = args.csv.clone().unwrap_or_default();
            let agent = Agent::open(&state)?;
            let r = member_agent::import::import_csv(&agent, &path, args.skip_invalid).await?;
            println!(
                "csv import: {} rows; {} published, {} invalid or refused, {} skipped",
                r.records,
                r.published,
                r.invalid.len() + r.refused.len(),
                r.skipped.len(),
            );
            for reason in r.invalid.iter().chain(&r.refused) {
                eprintln!("skipped: {reason}");
            }
        }
        Command::Publish(args) if args.stix.is_some() => {
            let tlp = args
                .tlp
                .as_deref()
                .map(str::parse::<isac_core::Tlp>)
                .transpose()
                .map_err(|e| AgentError::Usage(e.to_string()))?;
            let path = args.stix.clone().unwrap_or_default();
            let agent = Agent::open(&state)?;
            let r = member_agent::import::import_stix(
                &agent,
                &path,
                tlp,
                &args.audience,
                args.skip_invalid,
            )
            .await?;
            println!(
                "stix import: {} objects; {} published, {} revised, {} unchanged, {} retracted, {} skipped, {} invalid, {} refused",
                r.records,
                r.published,
                r.revised,
                r.unchanged,
                r.retracted,
                r.skipped.len(),
                r.invalid.len(),
                r.refused.len()
            );
            print_import_problems(&r);
            if !r.refused.is_empty() {
                return Err(AgentError::Invalid(format!(
                    "{} item(s) were refused by the hub",
                    r.refused.len()
                )));
            }
        }
        Command::Publish(args) if args.osv.is_some() => {
            let tlp: isac_core::Tlp = args
                .tlp
                .as_deref()
                .ok_or_else(|| {
                    AgentError::Usage(
                        "--tlp is required with --osv (public OSV data is usually clear)".into(),
                    )
                })?
                .parse()
                .map_err(|e: isac_core::tlp::UnknownTlp| AgentError::Usage(e.to_string()))?;
            let path = args.osv.clone().unwrap_or_default();
            let agent = Agent::open(&state)?;
            let r = member_agent::import::import_osv(
                &agent,
                &path,
                tlp,
                &args.audience,
                args.skip_invalid,
            )
            .await?;
            println!(
                "osv import: {} records; {} published, {} revised, {} unchanged, {} retracted, {} refused, {} skipped, {} invalid",
                r.records,
                r.published,
                r.revised,
                r.unchanged,
                r.retracted,
                r.refused.len(),
                r.skipped.len(),
                r.invalid.len()
            );
            print_import_problems(&r);
            if !r.refused.is_empty() {
                return Err(AgentError::Invalid(format!(
                    "{} item(s) were refused by the hub",
                    r.refused.len()
                )));
            }
        }
        Command::Publish(args) => {
            let draft = args.into_draft()?;
            let agent = Agent::open(&state)?;
            let p = member_agent::publish::publish(&agent, draft).await?;
            println!(
                "id={} revision={}{}",
                p.id,
                p.revision,
                if p.duplicate { " duplicate=true" } else { "" }
            );
        }
        Command::Sync(args) => {
            let mut agent = Agent::open(&state)?;
            let (config, mut sink) = args.open(&state)?;
            args.apply_sinks(&mut sink, &config)?;
            agent.filter = args.filter(&config);
            let r = agent.sync(false, &mut sink).await?;
            eprintln!(
                "synced: {} new, {} already held, {} refused; cursor {}",
                r.new, r.duplicates, r.rejected, r.cursor
            );
        }
        Command::Run { args, ui } => {
            let mut agent = Agent::open(&state)?;
            let (config, mut sink) = args.open(&state)?;
            args.apply_sinks(&mut sink, &config)?;
            agent.filter = args.filter(&config);
            if let Some(ui) = ui.to_ui_args() {
                let sinks = member_agent::ui::describe_sinks(&sink, args.jsonl.as_deref());
                let console = member_agent::ui::start(&state, &ui, Some(sinks)).await?;
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
        }
        Command::Ui(args) => member_agent::ui::run_console(&state, &args).await?,
        Command::Bulletin {
            title,
            body,
            severity,
            tlp,
            audience,
            incident,
            related,
        } => {
            let text = if body.as_os_str() == "-" {
                let mut t = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
                    .map_err(member_agent::error::io_err(&body))?;
                t
            } else {
                member_agent::error::read_input(&body)?
            };
            let draft = member_agent::draft::BulletinDraft {
                tlp,
                audience,
                title,
                body: text,
                severity,
                incident_id: incident,
                related,
            };
            let agent = Agent::open(&state)?;
            let p = member_agent::publish::publish_bulletin(&agent, draft).await?;
            println!("id={} revision={}", p.id, p.revision);
        }
        Command::Export {
            format,
            out,
            include_red,
        } => {
            let agent = Agent::open(&state)?;
            let (text, n) = member_agent::export::export(&agent, format.parse()?, include_red)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, text).map_err(member_agent::error::io_err(&path))?;
                    eprintln!("exported {n} item(s) to {}", path.display());
                }
                None => print!("{text}"),
            }
        }
        Command::Show { id } => {
            let agent = Agent::open(&state)?;
            let held = agent.store.lock().expect("store").show(&id)?;
            let (item, statement, envelope) =
                held.ok_or_else(|| AgentError::Usage(format!("{id} is not in the local store")))?;
            let doc = serde_json::json!({
                "summary": item,
                "statement": serde_json::from_str::<serde_json::Value>(&statement).unwrap_or_default(),
                "envelope": serde_json::from_str::<serde_json::Value>(&envelope).unwrap_or_default(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&doc)
                    .map_err(|e| AgentError::Invalid(e.to_string()))?
            );
        }
        Command::Search { query, limit, json } => {
            let agent = Agent::open(&state)?;
            let items = agent.store.lock().expect("store").search(&query, limit)?;
            if items.is_empty() {
                eprintln!("nothing held matches `{query}`");
            }
            print_items(&items, json)?;
        }
        Command::Check { file, json } => {
            let agent = Agent::open(&state)?;
            let matches = member_agent::check::check_file(&agent, &file)?;
            for m in &matches {
                if json {
                    println!(
                        "{}",
                        serde_json::to_string(m).map_err(|e| AgentError::Invalid(e.to_string()))?
                    );
                } else {
                    println!(
                        "MATCH {} {} -> {} [TLP:{} {}] {} ({})",
                        m.dependency,
                        m.version,
                        m.indicator_value,
                        m.tlp.to_uppercase(),
                        m.severity,
                        m.title,
                        m.indicator_id
                    );
                }
            }
            if !matches.is_empty() {
                eprintln!(
                    "{} dependency match(es) with held indicators in {}",
                    matches.len(),
                    file.display()
                );
                return Err(AgentError::Matched(matches.len()));
            }
            eprintln!(
                "no dependency in {} matches a held indicator",
                file.display()
            );
        }
        Command::Sight {
            id,
            count,
            named,
            tlp,
        } => {
            let agent = Agent::open(&state)?;
            let p = member_agent::publish::sight(&agent, &id, count, named, tlp.as_deref()).await?;
            println!("id={} revision={}", p.id, p.revision);
        }
        Command::Retract { id, reason } => {
            let agent = Agent::open(&state)?;
            let p = member_agent::publish::retract(&agent, &id, &reason).await?;
            println!("id={} revision={}", p.id, p.revision);
        }
        Command::Key(KeyCommand::Rotate) => {
            let mut agent = Agent::open(&state)?;
            let r = member_agent::keys::rotate(&mut agent).await?;
            println!(
                "new signing key {}; key {} retired at {} (statements signed before then stay valid)",
                r.new_key_id, r.retired_key_id, r.retired_at
            );
        }
        Command::Key(KeyCommand::List { all }) => {
            let agent = Agent::open(&state)?;
            let channel = agent.channel().await?;
            let version = agent.refresh_directory(&channel).await?;
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
            }
        }
        Command::Renew => {
            let mut agent = Agent::open(&state)?;
            let not_after = member_agent::keys::renew(&mut agent).await?;
            println!("renewed client certificate, valid until {not_after}");
        }
        Command::List { limit, json } => {
            let agent = Agent::open(&state)?;
            let items = agent.store.lock().expect("store").list(limit)?;
            print_items(&items, json)?;
        }
    }
    Ok(())
}

/// What an import skipped (counted by reason, each named, at most
/// `NAMED` a reason) and what it could not import.
fn print_import_problems(r: &member_agent::import::ImportReport) {
    const NAMED: usize = 50;
    let mut reasons: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for s in &r.skipped {
        let (at, why) = s.split_once(": ").unwrap_or(("", s.as_str()));
        reasons.entry(why).or_default().push(at);
    }
    for (why, at) in reasons {
        eprintln!("skipped {}: {why}", at.len());
        for a in at.iter().filter(|a| !a.is_empty()).take(NAMED) {
            eprintln!("  {a}");
        }
        if at.len() > NAMED {
            eprintln!("  … and {} more", at.len() - NAMED);
        }
    }
    for reason in &r.invalid {
        eprintln!("invalid: {reason}");
    }
    for reason in &r.refused {
        eprintln!("refused: {reason}");
    }
}

fn print_items(
    items: &[member_agent::localstore::ItemSummary],
    json: bool,
) -> Result<(), AgentError> {
    if json {
        for i in items {
            println!(
                "{}",
                serde_json::to_string(i).map_err(|e| AgentError::Invalid(e.to_string()))?
            );
        }
        return Ok(());
    }
    println!(
        "{:>6}  {:<17} {:<13} {:<9} {:<44} {:<18} TITLE",
        "#", "TLP", "KIND", "SEVERITY", "VALUE", "SOURCE"
    );
    for i in items {
        let status = if i.status == "valid" {
            String::new()
        } else {
            format!(" [{}]", i.status)
        };
        println!(
            "{:>6}  {:<17} {:<13} {:<9} {:<44} {:<18} {}{}",
            i.sequence,
            format!("TLP:{}", i.tlp.to_uppercase()),
            i.kind,
            i.severity,
            truncate(&i.value, 44),
            i.source,
            truncate(&i.title, 60),
            status
        );
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
