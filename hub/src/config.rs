//! The hub's configuration: one typed struct with sane defaults, read from
//! `DATA_DIR/hub.toml` (or `--config FILE`; a legacy `hub.json` is still
//! read), then environment overrides (`ISAC_HUB_<SETTING>` for every
//! setting), then command-line flags, then validated. Sources are passed
//! in, so tests never touch the process environment. Every setting is
//! documented in `docs/hub.example.toml`, which a test keeps in step with
//! the defaults here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Every setting's name, as in `hub.toml`; `ISAC_HUB_` + its upper case
/// overrides it from the environment.
pub const SETTINGS: [&str; 28] = [
    "listen",
    "taxii_listen",
    "metrics_listen",
    "server_names",
    "handshake_timeout_secs",
    "token_ttl_secs",
    "client_cert_days",
    "stream_page_size",
    "max_message_bytes",
    "directory_ttl_secs",
    "epoch_poll_ms",
    "publish_rate_per_s",
    "publish_burst",
    "max_streams_per_member",
    "max_streams_total",
    "max_streams_per_peer",
    "max_connections_per_source",
    "max_connections_total",
    "no_cert_idle_timeout_secs",
    "no_cert_max_age_secs",
    "log_origin",
    "checkpoint_interval_ms",
    "hub_id",
    "log",
    "store",
    "store_password_file",
    "store_ca_file",
    "default_lifetime",
];

/// `[default_lifetime]`: indicator kind = lifetime (`"90d"`, `"12h"`, or
/// seconds as a number), read into seconds per kind.
fn lifetimes<'de, D: Deserializer<'de>>(d: D) -> Result<isac_core::lifetime::Lifetimes, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lifetime {
        Seconds(u64),
        Text(String),
    }
    let table = std::collections::BTreeMap::<String, Lifetime>::deserialize(d)?;
    let mut out = isac_core::lifetime::Lifetimes::new();
    for (kind, v) in table {
        let secs = match v {
            Lifetime::Seconds(s) => s,
            Lifetime::Text(t) => isac_core::lifetime::parse_duration(&t)
                .map_err(|e| serde::de::Error::custom(format!("{kind}: {e}")))?,
        };
        out.insert(kind, secs);
    }
    isac_core::lifetime::check_lifetimes(&out).map_err(serde::de::Error::custom)?;
    Ok(out)
}

/// `taxii_listen`: an address, or "off".
fn optional_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let v = String::deserialize(d)?;
    parse_optional_addr(&v).map_err(serde::de::Error::custom)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Where the database, CA and keys live.
    #[serde(skip)]
    pub data_dir: PathBuf,
    /// gRPC (mTLS) listen address.
    pub listen: SocketAddr,
    /// TAXII 2.1 (HTTPS) listen address, or "off".
    #[serde(deserialize_with = "optional_addr")]
    pub taxii_listen: Option<SocketAddr>,
    /// Prometheus metrics (plain HTTP, no authentication: keep it on
    /// loopback or a monitoring network), or "off" (the default).
    #[serde(deserialize_with = "optional_addr")]
    pub metrics_listen: Option<SocketAddr>,
    /// Extra DNS names or IPs for the hub's server certificate (created on
    /// first start). `localhost`, `127.0.0.1` and `::1` are always included.
    pub server_names: Vec<String>,
    /// How long a TLS handshake may take before the connection is dropped.
    pub handshake_timeout_secs: u64,
    /// How long an enrollment token stays valid.
    pub token_ttl_secs: u64,
    /// Validity of client certificates issued at enrollment.
    pub client_cert_days: u32,
    /// Items per store page when streaming a backlog.
    pub stream_page_size: u32,
    /// Largest gRPC message the hub decodes.
    pub max_message_bytes: usize,
    /// Lifetime of a signed key directory; it is re-signed at half of it.
    pub directory_ttl_secs: u64,
    /// How often the hub looks for membership and key changes made by any
    /// process (the CLI writes to the same database).
    pub epoch_poll_ms: u64,
    /// Statements per second each member may publish, sustained.
    pub publish_rate_per_s: u32,
    /// Statements a member may publish at once above the rate (and the
    /// largest batch it may send).
    pub publish_burst: u32,
    /// Open subscription streams per member, and on the whole hub.
    pub max_streams_per_member: usize,
    pub max_streams_total: usize,
    /// Open Follow streams per peer hub (federation), counted apart from
    /// the members' streams so a peer never takes a member's slot.
    pub max_streams_per_peer: usize,
    /// Open connections from one source (an IPv4 address or an IPv6 /64),
    /// gRPC and TAXII together; more are closed before the TLS handshake.
    /// Generous: a member's agents, TAXII clients and enrollments often
    /// share a few NAT addresses.
    pub max_connections_per_source: usize,
    /// Open gRPC connections on the whole hub (TAXII has its own 1,024).
    pub max_connections_total: usize,
    /// A gRPC connection without a client certificate (it can only enroll
    /// or ask for health) is closed when no request has been in flight for
    /// this long...
    pub no_cert_idle_timeout_secs: u64,
    /// ...and at this age in any case.
    pub no_cert_max_age_secs: u64,
    /// The first line of every checkpoint: names this hub's log to
    /// verifiers and witnesses. Empty: the first server name + `/log`.
    pub log_origin: String,
    /// How often the hub signs a checkpoint while new statements arrive.
    pub checkpoint_interval_ms: u64,
    /// This hub's id among federated hubs (issue 20): a slug its peers
    /// know it by (`hub member add HUB_ID --role peer` there) and the first
    /// hub of the provenance of every item published here.
    pub hub_id: String,
    /// `[log]`: the witnesses the hub asks to cosign its checkpoints.
    pub log: LogSettings,
    /// Where statements and membership live: empty for the embedded SQLite
    /// database in the data dir (the default), or
    /// `postgres://USER@HOST:PORT/DB` (no password in it).
    pub store: String,
    /// A file holding the PostgreSQL password (else the environment's
    /// `ISAC_STORE_PASSWORD`, else `PGPASSWORD`, else none).
    pub store_password_file: String,
    /// The CA certificates (PEM) that signed the PostgreSQL server's
    /// certificate, the same as `sslrootcert` in the URL; used with
    /// `sslmode=verify-full` (or `verify-ca`, `require`) in `store`.
    pub store_ca_file: String,
    /// The password found through those, never printed.
    #[serde(skip)]
    pub store_password: Option<StorePassword>,
    /// `[default_lifetime]`: how long an indicator without `valid_until`
    /// stays in force, per kind (seconds; `"90d"` in hub.toml). Published
    /// in the signed key directory so every agent expires it at the same
    /// second; a kind not listed never expires by default.
    #[serde(deserialize_with = "lifetimes")]
    pub default_lifetime: isac_core::lifetime::Lifetimes,
}

/// `scheme://user:****@host...` for a URL that holds a password.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:****@{host}")
        }
        _ => url.to_owned(),
    }
}

/// A database password: kept out of `Debug` output and logs.
#[derive(Clone)]
pub struct StorePassword(pub String);

impl std::fmt::Debug for StorePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorePassword(..)")
    }
}

/// `[log]` in hub.toml (`ISAC_HUB_LOG` overrides it whole, as an inline
/// table: `{ witnesses = [{ url = "...", vkey = "..." }] }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub witnesses: Vec<WitnessSetting>,
}

/// One C2SP tlog-witness: where it takes `add-checkpoint`, and its key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessSetting {
    /// The submission prefix: `http(s)://host:port[/path]`; the hub posts
    /// to `<url>/add-checkpoint`.
    pub url: String,
    /// The witness's cosignature/v1 verifier key (`member-agent witness key`).
    pub vkey: String,
    /// For an https URL: a CA certificate (PEM file) to trust besides the
    /// system's, e.g. the one that signed a member's own witness certificate.
    pub ca: Option<PathBuf>,
}

/// A witness's submission prefix, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessUrl {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// The path prefix, without a trailing `/` (may be empty).
    pub prefix: String,
}

impl WitnessUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("the url must start with http:// or https://".into());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the url path must be a plain path (no query, fragment or spaces)".into());
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or("an IPv6 host needs its closing `]`")?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
                None if after.is_empty() => default_port,
                None => return Err("junk after the IPv6 host".into()),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    p.parse().map_err(|_| format!("bad port {p:?}"))?,
                ),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() || host.contains('@') {
            return Err("the url needs a host (and no user info)".into());
        }
        Ok(Self {
            https,
            host,
            port,
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }

    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Most witnesses a hub asks (each is asked for every checkpoint).
pub const MAX_WITNESSES: usize = 32;

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./hub-data"),
            listen: "127.0.0.1:7443".parse().expect("static address"),
            taxii_listen: Some("127.0.0.1:7444".parse().expect("static address")),
            metrics_listen: None,
            server_names: Vec::new(),
            handshake_timeout_secs: 10,
            token_ttl_secs: 24 * 3600,
            client_cert_days: 397,
            stream_page_size: 512,
            // A PublishBatch of 1,000 typical statements fits; each statement is
            // still capped at 64 KiB by the core.
            max_message_bytes: 4 * 1024 * 1024,
            directory_ttl_secs: 24 * 3600,
            epoch_poll_ms: 500,
            publish_rate_per_s: 20_000,
            publish_burst: 40_000,
            max_streams_per_member: 2_048,
            max_streams_total: 20_000,
            max_streams_per_peer: crate::limits::DEFAULT_STREAMS_PER_PEER,
            max_connections_per_source: 256,
            max_connections_total: 4_096,
            no_cert_idle_timeout_secs: 10,
            no_cert_max_age_secs: 300,
            log_origin: String::new(),
            checkpoint_interval_ms: 1_000,
            hub_id: "hub".into(),
            log: LogSettings::default(),
            store: String::new(),
            store_password_file: String::new(),
            store_ca_file: String::new(),
            store_password: None,
            default_lifetime: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid hub config: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}=`{value}` is invalid: {message}")]
    Env {
        name: String,
        value: String,
        message: String,
    },
    #[error("setting `{key}` = {value} is invalid: {message}")]
    Invalid {
        key: &'static str,
        value: String,
        message: String,
    },
}

fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// An environment value as a TOML value: a number, boolean or array as
/// written, anything else as a string.
fn env_value(v: &str) -> toml::Value {
    let doc = format!("v = {v}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(v.to_owned())),
        Err(_) => toml::Value::String(v.to_owned()),
    }
}

impl HubConfig {
    /// Loads `data_dir/hub.toml` (or `hub.json`), applies `ISAC_HUB_*`
    /// environment overrides looked up through `env`, and validates.
    pub fn load(
        data_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::load_from(data_dir, None, env)
    }

    /// [`HubConfig::load`] with an explicit config file instead of the
    /// data dir's (it must exist).
    pub fn load_from(
        data_dir: &Path,
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let toml_path = file.map_or_else(|| data_dir.join("hub.toml"), Path::to_path_buf);
        let json_path = data_dir.join("hub.json");
        let toml_text = read_optional(&toml_path)?;
        if file.is_some() && toml_text.is_none() {
            return Err(ConfigError::Read {
                path: toml_path,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let json_text = if file.is_none() {
            read_optional(&json_path)?
        } else {
            None
        };
        let (path, mut table) = match (toml_text, json_text) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Parse {
                    path: json_path,
                    message: "hub.toml is there too; keep one config file (move these settings into hub.toml)".into(),
                })
            }
            (Some(text), None) => {
                let t = toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::Parse {
                    path: toml_path.clone(),
                    message: e.to_string(),
                })?;
                (toml_path, t)
            }
            (None, Some(text)) => {
                let t = serde_json::from_str::<toml::Table>(&text).map_err(|e| {
                    ConfigError::Parse {
                        path: json_path.clone(),
                        message: e.to_string(),
                    }
                })?;
                (json_path, t)
            }
            (None, None) => (toml_path, toml::Table::new()),
        };
        // Refuse unknown keys from the file before the environment adds any.
        let mut config: HubConfig =
            toml::Value::Table(table.clone())
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        let mut overridden = false;
        for key in SETTINGS {
            let name = format!("ISAC_HUB_{}", key.to_ascii_uppercase());
            let Some(v) = env(&name) else { continue };
            let mut probe = toml::Table::new();
            probe.insert(key.to_owned(), env_value(&v));
            toml::Value::Table(probe.clone())
                .try_into::<HubConfig>()
                .map_err(|e| ConfigError::Env {
                    name: name.clone(),
                    value: v.clone(),
                    message: e.message().to_owned(),
                })?;
            table.extend(probe);
            overridden = true;
        }
        if overridden {
            config = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        }
        config.data_dir = data_dir.to_owned();
        config.store_password = if config.store_password_file.is_empty() {
            env("ISAC_STORE_PASSWORD")
                .or_else(|| env("PGPASSWORD"))
                .map(StorePassword)
        } else {
            let path = PathBuf::from(&config.store_password_file);
            let text = std::fs::read_to_string(&path)
                .map_err(|source| ConfigError::Read { path, source })?;
            // One line; the newline an editor adds is not part of it.
            Some(StorePassword(
                text.trim_end_matches(['\r', '\n']).to_owned(),
            ))
        };
        config.validate()?;
        Ok(config)
    }

    /// Range checks a typo would slip past the types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn range(key: &'static str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    key,
                    value: v.to_string(),
                    message: format!("use {lo} to {hi}"),
                })
            }
        }
        const DAY: u64 = 24 * 3600;
        range(
            "handshake_timeout_secs",
            self.handshake_timeout_secs,
            1,
            300,
        )?;
        range("token_ttl_secs", self.token_ttl_secs, 60, 30 * DAY)?;
        range("client_cert_days", u64::from(self.client_cert_days), 1, 825)?;
        range(
            "stream_page_size",
            u64::from(self.stream_page_size),
            1,
            10_000,
        )?;
        range(
            "max_message_bytes",
            self.max_message_bytes as u64,
            64 * 1024,
            64 * 1024 * 1024,
        )?;
        range("directory_ttl_secs", self.directory_ttl_secs, 300, 30 * DAY)?;
        range("epoch_poll_ms", self.epoch_poll_ms, 50, 60_000)?;
        range(
            "publish_rate_per_s",
            u64::from(self.publish_rate_per_s),
            1,
            10_000_000,
        )?;
        range(
            "publish_burst",
            u64::from(self.publish_burst),
            1,
            10_000_000,
        )?;
        range(
            "max_streams_per_member",
            self.max_streams_per_member as u64,
            1,
            1_000_000,
        )?;
        range(
            "max_streams_total",
            self.max_streams_total as u64,
            self.max_streams_per_member as u64,
            10_000_000,
        )?;
        range(
            "max_streams_per_peer",
            self.max_streams_per_peer as u64,
            1,
            1_000,
        )?;
        range(
            "max_connections_per_source",
            self.max_connections_per_source as u64,
            1,
            1_000_000,
        )?;
        range(
            "max_connections_total",
            self.max_connections_total as u64,
            self.max_connections_per_source as u64,
            1_000_000,
        )?;
        range(
            "no_cert_idle_timeout_secs",
            self.no_cert_idle_timeout_secs,
            1,
            3_600,
        )?;
        range("no_cert_max_age_secs", self.no_cert_max_age_secs, 1, DAY)?;
        range(
            "checkpoint_interval_ms",
            self.checkpoint_interval_ms,
            10,
            60_000,
        )?;
        if !self.store.is_empty() {
            if let Err(e) =
                crate::store::postgres_target(&self.store, None, Some(&self.store_ca_file))
            {
                return Err(ConfigError::Invalid {
                    key: "store",
                    value: format!("{:?}", redact_password(&self.store)),
                    message: e.to_string(),
                });
            }
        }
        if !isac_core::names::is_slug(&self.hub_id) {
            return Err(ConfigError::Invalid {
                key: "hub_id",
                value: format!("{:?}", self.hub_id),
                message: "must be a lowercase slug such as `fs-isac`".into(),
            });
        }
        if let Some(message) = log_origin_problem(&self.log_origin) {
            return Err(ConfigError::Invalid {
                key: "log_origin",
                value: format!("{:?}", self.log_origin),
                message: message.into(),
            });
        }
        self.validate_witnesses()?;
        if self
            .taxii_listen
            .is_some_and(|t| t == self.listen && t.port() != 0)
        {
            return Err(ConfigError::Invalid {
                key: "taxii_listen",
                value: self.listen.to_string(),
                message: "TAXII needs its own address; it cannot share the gRPC one".into(),
            });
        }
        if let Some(bad) = self.server_names.iter().find(|n| {
            n.is_empty() || n.len() > 253 || n.chars().any(|c| c.is_whitespace() || c.is_control())
        }) {
            return Err(ConfigError::Invalid {
                key: "server_names",
                value: format!("{bad:?}"),
                message: "each entry is one DNS name or IP address".into(),
            });
        }
        for name in &self.server_names {
            if let Some(message) = crate::pki::server_name_problem(name) {
                return Err(ConfigError::Invalid {
                    key: "server_names",
                    value: format!("{name:?}"),
                    message,
                });
            }
        }
        Ok(())
    }

    fn validate_witnesses(&self) -> Result<(), ConfigError> {
        let witnesses = &self.log.witnesses;
        let invalid = |value: String, message: String| ConfigError::Invalid {
            key: "log.witnesses",
            value,
            message,
        };
        if witnesses.len() > MAX_WITNESSES {
            return Err(invalid(
                witnesses.len().to_string(),
                format!("at most {MAX_WITNESSES} witnesses"),
            ));
        }
        let mut names = Vec::new();
        for w in witnesses {
            match WitnessUrl::parse(&w.url) {
                Err(message) => return Err(invalid(format!("{:?}", w.url), message)),
                Ok(u) if !u.https && w.ca.is_some() => {
                    return Err(invalid(
                        format!("{:?}", w.url),
                        "`ca` is for an https:// witness".into(),
                    ))
                }
                Ok(_) => {}
            }
            let v = isac_core::tlog::witness::CosignatureVerifier::from_vkey(w.vkey.trim())
                .map_err(|e| {
                    invalid(
                        format!("{:?}", w.vkey),
                        format!("not a witness vkey ({e}); `member-agent witness key` prints it"),
                    )
                })?;
            let name = isac_core::tlog::note::Verifier::name(&v).to_owned();
            if names.contains(&name) {
                return Err(invalid(
                    format!("{name:?}"),
                    "two witnesses with the same name".into(),
                ));
            }
            names.push(name);
        }
        Ok(())
    }

    /// The log's origin line: `log_origin`, or the first server name (a
    /// wildcard's domain) followed by `/log`.
    pub fn log_origin(&self) -> String {
        if !self.log_origin.is_empty() {
            return self.log_origin.clone();
        }
        let host = self
            .server_names
            .first()
            .map(|n| n.trim_start_matches("*.").to_owned())
            .unwrap_or_else(|| "localhost".to_owned());
        format!("{host}/log")
    }

    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.checkpoint_interval_ms)
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }

    /// The timeouts of gRPC connections without a client certificate.
    pub fn no_cert_timeouts(&self) -> crate::tls::NoCertTimeouts {
        crate::tls::NoCertTimeouts {
            idle: Duration::from_secs(self.no_cert_idle_timeout_secs),
            max_age: Duration::from_secs(self.no_cert_max_age_secs),
        }
    }
}

/// Why `origin` cannot be a checkpoint's origin line, if it cannot. Empty
/// means derived. Printable ASCII without spaces keeps a signed note's first
/// line from ever reading like a DSSE pre-authentication encoding
/// (`DSSEv1 ...`), so the log key's signatures cannot pass for an envelope's.
pub fn log_origin_problem(origin: &str) -> Option<&'static str> {
    if origin.is_empty() {
        return None;
    }
    if origin.len() > 255 {
        return Some("at most 255 characters");
    }
    // `+` would break the signed note's key name (the origin).
    if !origin.bytes().all(|b| b.is_ascii_graphic() && b != b'+') {
        return Some("printable ASCII without spaces or `+`, e.g. isac.example/log");
    }
    None
}

/// An address, or `off` for none.
pub fn parse_optional_addr(v: &str) -> Result<Option<SocketAddr>, String> {
    if v.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    v.trim()
        .parse()
        .map(Some)
        .map_err(|e: std::net::AddrParseError| {
            format!("{e} (expected e.g. 127.0.0.1:7444, or off)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_file_or_env() {
        let dir = tempfile::tempdir().unwrap();
        let c = HubConfig::load(dir.path(), |_| None).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7443");
        assert_eq!(c.taxii_listen.unwrap().to_string(), "127.0.0.1:7444");
        assert_eq!(c.data_dir, dir.path());
    }

    #[test]
    fn file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hub.toml"),
            "listen = \"127.0.0.1:9000\"\ntoken_ttl_secs = 600\ntaxii_listen = \"off\"\n",
        )
        .unwrap();
        let c = HubConfig::load(dir.path(), |_| None).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.token_ttl_secs, 600);
        assert_eq!(c.taxii_listen, None);
        let c = HubConfig::load(dir.path(), |k| match k {
            "ISAC_HUB_LISTEN" => Some("127.0.0.1:9001".into()),
            "ISAC_HUB_EPOCH_POLL_MS" => Some("250".into()),
            "ISAC_HUB_TAXII_LISTEN" => Some("127.0.0.1:9002".into()),
            "ISAC_HUB_SERVER_NAMES" => Some("[\"hub.example\"]".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.epoch_poll_ms, 250);
        assert_eq!(c.taxii_listen.unwrap().port(), 9002);
        assert_eq!(c.server_names, vec!["hub.example"]);
        assert_eq!(c.token_ttl_secs, 600, "the file's other settings stay");
    }

    #[test]
    fn connection_caps_and_no_cert_timeouts_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let d = HubConfig::load(dir.path(), |_| None).unwrap();
        assert_eq!(
            (
                d.max_connections_per_source,
                d.max_connections_total,
                d.no_cert_idle_timeout_secs,
                d.no_cert_max_age_secs
            ),
            (256, 4096, 10, 300)
        );
        std::fs::write(
            dir.path().join("hub.toml"),
            "max_connections_per_source = 20\nmax_connections_total = 100\n\
             no_cert_idle_timeout_secs = 1\nno_cert_max_age_secs = 30\n",
        )
        .unwrap();
        let c = HubConfig::load(dir.path(), |_| None).unwrap();
        assert_eq!(c.max_connections_per_source, 20);
        assert_eq!(c.max_connections_total, 100);
        assert_eq!(c.no_cert_timeouts().idle, Duration::from_secs(1));
        assert_eq!(c.no_cert_timeouts().max_age, Duration::from_secs(30));
        let c = HubConfig::load(dir.path(), |k| match k {
            "ISAC_HUB_MAX_CONNECTIONS_PER_SOURCE" => Some("50".into()),
            "ISAC_HUB_MAX_CONNECTIONS_TOTAL" => Some("500".into()),
            "ISAC_HUB_NO_CERT_IDLE_TIMEOUT_SECS" => Some("5".into()),
            "ISAC_HUB_NO_CERT_MAX_AGE_SECS" => Some("60".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (
                c.max_connections_per_source,
                c.max_connections_total,
                c.no_cert_idle_timeout_secs,
                c.no_cert_max_age_secs
            ),
            (50, 500, 5, 60)
        );
        for (name, value, want) in [
            (
                "ISAC_HUB_MAX_CONNECTIONS_PER_SOURCE",
                "0",
                "`max_connections_per_source` = 0 is invalid: use 1 to 1000000",
            ),
            (
                "ISAC_HUB_MAX_CONNECTIONS_TOTAL",
                "10",
                "`max_connections_total` = 10 is invalid: use 20 to 1000000",
            ),
            (
                "ISAC_HUB_NO_CERT_IDLE_TIMEOUT_SECS",
                "0",
                "`no_cert_idle_timeout_secs` = 0 is invalid: use 1 to 3600",
            ),
            (
                "ISAC_HUB_NO_CERT_MAX_AGE_SECS",
                "100000",
                "`no_cert_max_age_secs` = 100000 is invalid: use 1 to 86400",
            ),
            (
                "ISAC_HUB_MAX_CONNECTIONS_PER_SOURCE",
                "many",
                "ISAC_HUB_MAX_CONNECTIONS_PER_SOURCE",
            ),
        ] {
            let e = HubConfig::load(dir.path(), |k| (k == name).then(|| value.into()))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{name}={value}: {e}");
        }
    }

    #[test]
    fn legacy_json_is_read_but_not_beside_toml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hub.json"),
            r#"{"listen":"127.0.0.1:9000"}"#,
        )
        .unwrap();
        assert_eq!(
            HubConfig::load(dir.path(), |_| None).unwrap().listen.port(),
            9000
        );
        std::fs::write(dir.path().join("hub.toml"), "").unwrap();
        let e = HubConfig::load(dir.path(), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("keep one config file"), "{e}");
    }

    #[test]
    fn bad_values_are_clear_errors_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("hub.toml");
        for (text, want) in [
            ("listen = \"x\"", "socket address"),
            ("lisen = \"127.0.0.1:1\"", "unknown field `lisen`"),
            ("epoch_poll_ms = \"fast\"", "epoch_poll_ms"),
            (
                "epoch_poll_ms = 10",
                "`epoch_poll_ms` = 10 is invalid: use 50 to 60000",
            ),
            (
                "max_streams_per_member = 10\nmax_streams_total = 5",
                "max_streams_total",
            ),
            ("taxii_listen = \"127.0.0.1:7443\"", "its own address"),
            ("taxii_listen = \"nowhere\"", "or off"),
            ("server_names = [\"a b\"]", "server_names"),
            (
                "max_connections_per_source = 5000",
                "`max_connections_total` = 4096 is invalid: use 5000 to",
            ),
            ("no_cert_idle_timeout_secs = 0", "no_cert_idle_timeout_secs"),
            (
                "server_names = [\"*\"]",
                "`server_names` = \"*\" is invalid",
            ),
            ("server_names = [\"*.com\"]", "server_names"),
            ("server_names = [\"hub.example\", \"*.\"]", "server_names"),
            ("listen = ", "hub.toml"),
        ] {
            std::fs::write(&toml, text).unwrap();
            let e = HubConfig::load(dir.path(), |_| None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        std::fs::remove_file(&toml).unwrap();
        for (name, value) in [
            ("ISAC_HUB_LISTEN", "nope"),
            ("ISAC_HUB_TOKEN_TTL_SECS", "-1"),
            ("ISAC_HUB_TOKEN_TTL_SECS", "ten"),
        ] {
            let e = HubConfig::load(dir.path(), |k| (k == name).then(|| value.into()))
                .unwrap_err()
                .to_string();
            assert!(e.contains(name), "{name}={value}: {e}");
        }
        let e = HubConfig::load_from(dir.path(), Some(&dir.path().join("missing.toml")), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.toml"), "{e}");
    }

    #[test]
    fn the_store_is_a_postgres_url_without_a_password_which_comes_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let c = HubConfig::load(dir.path(), |_| None).unwrap();
        assert!(c.store.is_empty(), "embedded SQLite by default");
        assert!(c.store_password.is_none());
        let url = "postgres://isac@db.internal:5432/isac";
        let env = |k: &str| match k {
            "ISAC_HUB_STORE" => Some(url.to_owned()),
            "PGPASSWORD" => Some("from-pg".to_owned()),
            _ => None,
        };
        let c = HubConfig::load(dir.path(), env).unwrap();
        assert_eq!(c.store, url);
        assert_eq!(c.store_password.as_ref().unwrap().0, "from-pg");
        assert!(!format!("{c:?}").contains("from-pg"), "never printed");
        let c = HubConfig::load(dir.path(), |k| match k {
            "ISAC_STORE_PASSWORD" => Some("from-isac".into()),
            _ => env(k),
        })
        .unwrap();
        assert_eq!(c.store_password.unwrap().0, "from-isac", "ours first");
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        std::fs::write(
            dir.path().join("hub.toml"),
            format!(
                "store = \"{url}\"\nstore_password_file = {:?}\n",
                file.display().to_string()
            ),
        )
        .unwrap();
        let c = HubConfig::load(dir.path(), env).unwrap();
        assert_eq!(c.store_password.unwrap().0, "from-file", "the file wins");
        std::fs::remove_file(&file).unwrap();
        let e = HubConfig::load(dir.path(), env).unwrap_err().to_string();
        assert!(e.contains("pw"), "a missing password file is named: {e}");
        std::fs::remove_file(dir.path().join("hub.toml")).unwrap();
        for (bad, says) in [
            ("postgres://isac:secret@db:5432/isac", "password"),
            ("mysql://isac@db/isac", "not a PostgreSQL URL"),
            ("postgres://db:5432/isac", "user"),
        ] {
            let e = HubConfig::load(dir.path(), |k| {
                (k == "ISAC_HUB_STORE").then(|| bad.to_owned())
            })
            .unwrap_err()
            .to_string();
            assert!(e.contains("store") && e.contains(says), "{bad}: {e}");
            assert!(!e.contains("secret"), "the password is not echoed: {e}");
        }
    }

    #[test]
    fn a_wildcard_under_two_labels_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hub.toml"),
            "server_names = [\"*.isac.example\", \"hub.isac.example\", \"10.1.2.3\"]\n",
        )
        .unwrap();
        let c = HubConfig::load(dir.path(), |_| None).unwrap();
        assert_eq!(c.server_names.len(), 3);
        let e = HubConfig::load(dir.path(), |k| {
            (k == "ISAC_HUB_SERVER_NAMES").then(|| "[\"*\"]".into())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("server_names") && e.contains("wildcard"), "{e}");
    }

    #[test]
    fn log_origin_defaults_to_the_first_server_name_and_is_validated() {
        let mut c = HubConfig::default();
        assert_eq!(c.log_origin(), "localhost/log");
        c.server_names = vec!["*.isac.example".into(), "hub.isac.example".into()];
        assert_eq!(c.log_origin(), "isac.example/log");
        c.log_origin = "isac.example/threat-log".into();
        assert_eq!(c.log_origin(), "isac.example/threat-log");
        for bad in ["a b", "a+b", "x\u{7f}", "\u{e9}t\u{e9}"] {
            c.log_origin = bad.into();
            assert!(c.validate().is_err(), "{bad:?}");
        }
        c.log_origin = "x".repeat(256);
        assert!(c.validate().is_err());
    }

    #[test]
    fn witness_urls() {
        let u = WitnessUrl::parse("http://127.0.0.1:7445").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.prefix.as_str()),
            (false, "127.0.0.1", 7445, "")
        );
        let u = WitnessUrl::parse("https://w.example/witness/").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.prefix.as_str()),
            (true, "w.example", 443, "/witness")
        );
        let u = WitnessUrl::parse("http://[::1]:80/x").unwrap();
        assert_eq!((u.host.as_str(), u.authority()), ("::1", "[::1]:80".into()));
        for bad in [
            "ftp://x",
            "w.example",
            "http://",
            "http://:80",
            "http://h:port",
            "http://u@h",
            "http://h/x?y",
            "http://[::1",
            "http://h/a b",
        ] {
            assert!(WitnessUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn witnesses_from_file_and_env_are_validated() {
        let key = |name: &str| {
            isac_core::tlog::witness::Cosigner::new(
                name,
                isac_core::SigningKey::generate().unwrap(),
            )
            .unwrap()
            .verifier()
            .unwrap()
            .to_vkey()
        };
        let (w1, w2) = (key("w1.example"), key("w2.example"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hub.toml"),
            format!(
                "[log]\nwitnesses = [{{ url = \"http://127.0.0.1:7445\", vkey = \"{w1}\" }}]\n"
            ),
        )
        .unwrap();
        let c = HubConfig::load(dir.path(), |_| None).unwrap();
        assert_eq!(c.log.witnesses.len(), 1);
        assert_eq!(c.log.witnesses[0].vkey, w1);
        // The environment replaces the section whole.
        let env =
            format!("{{ witnesses = [{{ url = \"https://w2.example/w\", vkey = \"{w2}\" }}] }}");
        let c =
            HubConfig::load(dir.path(), |k| (k == "ISAC_HUB_LOG").then(|| env.clone())).unwrap();
        assert_eq!(c.log.witnesses.len(), 1);
        assert_eq!(c.log.witnesses[0].url, "https://w2.example/w");
        let bad = |witnesses: String| {
            let d = tempfile::tempdir().unwrap();
            std::fs::write(
                d.path().join("hub.toml"),
                format!("[log]\nwitnesses = [{witnesses}]\n"),
            )
            .unwrap();
            HubConfig::load(d.path(), |_| None).unwrap_err().to_string()
        };
        let e = bad(format!("{{ url = \"ftp://x\", vkey = \"{w1}\" }}"));
        assert!(e.contains("log.witnesses") && e.contains("http://"), "{e}");
        let e = bad("{ url = \"http://x\", vkey = \"w1.example+00000000+AAAA\" }".into());
        assert!(e.contains("not a witness vkey"), "{e}");
        let e = bad(format!(
            "{{ url = \"http://a\", vkey = \"{w1}\" }}, {{ url = \"http://b\", vkey = \"{w1}\" }}"
        ));
        assert!(e.contains("same name"), "{e}");
        let e = bad(format!(
            "{{ url = \"http://a\", vkey = \"{w1}\", ca = \"/x.pem\" }}"
        ));
        assert!(e.contains("https://"), "{e}");
        let e = bad(format!(
            "{{ url = \"http://a\", vkey = \"{w1}\", extra = 1 }}"
        ));
        assert!(e.contains("extra"), "{e}");
    }

    #[test]
    fn default_lifetimes_from_file_and_env_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hub.toml"),
            "[default_lifetime]\nnetwork = \"30d\"\npackage = 86400\n",
        )
        .unwrap();
        let c = HubConfig::load(dir.path(), |_| None).unwrap();
        let want: isac_core::lifetime::Lifetimes = [
            ("network".to_string(), 30 * 86_400),
            ("package".to_string(), 86_400),
        ]
        .into_iter()
        .collect();
        assert_eq!(c.default_lifetime, want);
        // The environment replaces the table whole.
        let c = HubConfig::load(dir.path(), |k| {
            (k == "ISAC_HUB_DEFAULT_LIFETIME").then(|| "{ account = \"12h\" }".to_owned())
        })
        .unwrap();
        assert_eq!(
            c.default_lifetime.into_iter().collect::<Vec<_>>(),
            [("account".to_string(), 12 * 3600)]
        );
        let bad = |table: &str| {
            let d = tempfile::tempdir().unwrap();
            std::fs::write(
                d.path().join("hub.toml"),
                format!("[default_lifetime]\n{table}\n"),
            )
            .unwrap();
            HubConfig::load(d.path(), |_| None).unwrap_err().to_string()
        };
        let e = bad("bulletin = \"30d\"");
        assert!(e.contains("`bulletin` is not an indicator kind"), "{e}");
        let e = bad("network = \"30 days\"");
        assert!(e.contains("network: `30 days` is not a lifetime"), "{e}");
        let e = bad("network = 5");
        assert!(e.contains("out of range"), "{e}");
        let e = HubConfig::load(dir.path(), |k| {
            (k == "ISAC_HUB_DEFAULT_LIFETIME").then(|| "{ network = \"1y\" }".to_owned())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("ISAC_HUB_DEFAULT_LIFETIME"), "{e}");
    }

    /// The documented example lists every setting with its default value.
    #[test]
    fn the_example_documents_every_setting_at_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/hub.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        for key in SETTINGS {
            assert!(
                table.contains_key(key),
                "docs/hub.example.toml lacks `{key}`"
            );
        }
        let parsed: HubConfig = toml::Value::Table(table).try_into().unwrap();
        let d = HubConfig::default();
        assert_eq!(format!("{parsed:?}"), format!("{d:?}"));
    }
}
