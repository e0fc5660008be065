//! The hub's configuration: one typed struct with sane defaults, read from
//! `DATA_DIR/hub.json` when present, then environment overrides, then
//! command-line flags. Sources are passed in, so tests never touch the
//! process environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Where the database, CA and keys live.
    #[serde(skip)]
    pub data_dir: PathBuf,
    /// gRPC (mTLS) listen address.
    pub listen: SocketAddr,
    /// TAXII 2.1 (HTTPS) listen address; `null` (or `off` on the command
    /// line and in ISAC_HUB_TAXII_LISTEN) turns TAXII off.
    pub taxii_listen: Option<SocketAddr>,
    /// Prometheus metrics (plain HTTP, no authentication: keep it on
    /// loopback or a monitoring network); `null` (the default) or `off`
    /// turns it off.
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
}

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
        name: &'static str,
        value: String,
        message: String,
    },
}

impl HubConfig {
    /// Loads `data_dir/hub.json` (if any) and applies environment overrides
    /// (`ISAC_HUB_LISTEN`, `ISAC_HUB_TOKEN_TTL_SECS`) looked up through `env`.
    pub fn load(
        data_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let path = data_dir.join("hub.json");
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str::<HubConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HubConfig::default(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        config.data_dir = data_dir.to_owned();
        if let Some(v) = env("ISAC_HUB_LISTEN") {
            config.listen = v
                .parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Env {
                    name: "ISAC_HUB_LISTEN",
                    value: v.clone(),
                    message: e.to_string(),
                })?;
        }
        if let Some(v) = env("ISAC_HUB_TAXII_LISTEN") {
            config.taxii_listen = parse_optional_addr(&v).map_err(|message| ConfigError::Env {
                name: "ISAC_HUB_TAXII_LISTEN",
                value: v.clone(),
                message,
            })?;
        }
        if let Some(v) = env("ISAC_HUB_METRICS_LISTEN") {
            config.metrics_listen =
                parse_optional_addr(&v).map_err(|message| ConfigError::Env {
                    name: "ISAC_HUB_METRICS_LISTEN",
                    value: v.clone(),
                    message,
                })?;
        }
        if let Some(v) = env("ISAC_HUB_TOKEN_TTL_SECS") {
            config.token_ttl_secs =
                v.parse()
                    .map_err(|e: std::num::ParseIntError| ConfigError::Env {
                        name: "ISAC_HUB_TOKEN_TTL_SECS",
                        value: v.clone(),
                        message: e.to_string(),
                    })?;
        }
        Ok(config)
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }
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
        assert_eq!(c.data_dir, dir.path());
    }

    #[test]
    fn file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hub.json"),
            r#"{"listen":"127.0.0.1:9000","token_ttl_secs":60}"#,
        )
        .unwrap();
        let c = HubConfig::load(dir.path(), |_| None).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.token_ttl_secs, 60);
        let c = HubConfig::load(dir.path(), |k| {
            (k == "ISAC_HUB_LISTEN").then(|| "127.0.0.1:9001".into())
        })
        .unwrap();
        assert_eq!(c.listen.port(), 9001);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hub.json"), r#"{"listen":"x"}"#).unwrap();
        let e = HubConfig::load(dir.path(), |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hub.json") && e.contains("socket address"),
            "{e}"
        );
        std::fs::remove_file(dir.path().join("hub.json")).unwrap();
        let e = HubConfig::load(dir.path(), |_| Some("nope".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ISAC_HUB_LISTEN"), "{e}");
    }
}
