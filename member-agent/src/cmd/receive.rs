//! What `sync` and `run` share: where received items go (the config file,
//! then the flags over it) and the subscription filter.

use std::path::PathBuf;

use clap::Args;

use crate::config::AgentConfig;
use crate::sinks::{SinkSettings, Sinks};
use crate::{AgentError, StateDir};

#[derive(Args)]
pub struct ReceiveArgs {
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
    fn sink_settings(&self, config: &AgentConfig) -> Result<SinkSettings, AgentError> {
        use crate::sinks::http::HttpSink;
        let mut settings = SinkSettings::default();
        config.apply(&mut settings, |v| std::env::var(v).ok())?;
        if let Some(p) = &self.jsonl {
            settings.jsonl = Some(p.clone());
        }
        if self.export_red {
            settings.export_red = true;
        }
        if let Some(d) = &self.stix_dir {
            settings.stix_dir = Some(d.clone());
        }
        if let Some(max) = self.jsonl_max_bytes.or(config.jsonl_max_bytes) {
            settings.jsonl_rotate = Some((max, self.jsonl_keep.or(config.jsonl_keep).unwrap_or(5)));
        }
        if let Some(url) = &self.webhook {
            settings
                .http
                .retain(|h| !matches!(h, HttpSink::Webhook { .. }));
            settings.http.push(HttpSink::Webhook {
                url: url.parse()?,
                secret: self.webhook_secret.clone().unwrap_or_default(),
            });
        }
        if let Some(url) = &self.splunk_hec {
            settings
                .http
                .retain(|h| !matches!(h, HttpSink::SplunkHec { .. }));
            settings.http.push(HttpSink::SplunkHec {
                url: url.parse()?,
                token: self.splunk_token.clone().unwrap_or_default(),
                index: self.splunk_index.clone(),
                sourcetype: self.splunk_sourcetype.clone(),
            });
        }
        if let Some(url) = &self.elastic {
            settings
                .http
                .retain(|h| !matches!(h, HttpSink::Elastic { .. }));
            settings.http.push(HttpSink::Elastic {
                url: url.parse()?,
                index: self.elastic_index.clone(),
            });
        }
        if !self.syslog.is_empty() {
            settings.syslog.clear();
            for target in &self.syslog {
                settings.syslog.push(target.parse()?);
            }
        }
        if let Some(url) = &self.smtp {
            let (host, port) = crate::sinks::mail::parse_smtp_url(url)?;
            let from = self.mail_from.clone().unwrap_or_default();
            for a in std::iter::once(&from).chain(&self.mail_to) {
                crate::sinks::mail::check_address(a)?;
            }
            settings.mail = Some(crate::sinks::mail::MailSink {
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
            settings.hec_batch = b.max(1);
        }
        if let Some(d) = &self.dead_letter {
            settings.dead_letter = Some(d.clone());
        }
        if let Some(secs) = self.sink_retry_secs {
            settings.http_retry.give_up_after = std::time::Duration::from_secs(secs);
        }
        if let Some(p) = self.sink_ca.as_ref().or(config.sink_ca.as_ref()) {
            let pem = std::fs::read(p)
                .map_err(|e| AgentError::Usage(format!("{}: cannot read: {e}", p.display())))?;
            let ca = openssl::x509::X509::from_pem(&pem)
                .map_err(|e| AgentError::Usage(format!("{}: {e}", p.display())))?;
            for target in &mut settings.syslog {
                target.ca = Some(ca.clone());
            }
            if let Some(mail) = &mut settings.mail {
                mail.ca = Some(ca.clone());
            }
            settings.http_ca = Some(ca);
        }
        Ok(settings)
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

    /// `hubs` in the config file (empty: the URLs recorded at enrollment).
    pub(crate) fn hubs(&self, state: &StateDir) -> Result<Vec<String>, AgentError> {
        Ok(crate::config::load(self.config.as_deref(), &state.root)?.hubs)
    }

    /// What `[log]` in the config file requires of the hub's checkpoints.
    pub(crate) fn log_trust(&self, state: &StateDir) -> Result<crate::tlog::LogTrust, AgentError> {
        let config = crate::config::load(self.config.as_deref(), &state.root)?;
        crate::tlog::LogTrust::from_config(&config.log)
    }

    /// The config file, and what it and the flags say: the sinks (opened)
    /// and the subscription filter.
    pub(crate) fn open(
        &self,
        state: &StateDir,
    ) -> Result<(Sinks, isac_proto::v1::SubscriptionFilter), AgentError> {
        let config = crate::config::load(self.config.as_deref(), &state.root)?;
        let sinks = Sinks::open(self.sink_settings(&config)?)?;
        Ok((sinks, self.filter(&config)))
    }
}
