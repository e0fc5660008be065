//! The agent's config file: `agent.toml` in the state dir, or `--config
//! FILE`. It configures what `sync` and `run` do with what they receive:
//! every sink (any number of each), the dead-letter file, the retry budget
//! and the subscription filter. Command-line flags override it: a scalar
//! flag replaces the file's value, and a sink flag (`--webhook`,
//! `--splunk-hec`, `--elastic`, `--syslog`, `--smtp`) replaces the file's
//! sinks of that kind. Unknown keys and bad values are errors that name the
//! key (exit code 64).
//!
//! ```toml
//! hubs = ["https://hub-a.example:7443", "https://hub-b.example:7443"]  # replicas, fail-over order
//! jsonl = "/var/lib/isac/items.jsonl"
//! jsonl_max_bytes = 104857600
//! jsonl_keep = 5
//! stix_dir = "/var/lib/isac/stix"
//! export_red = false
//! dead_letter = "/var/lib/isac/dead-letter.jsonl"
//! sink_ca = "/etc/isac/siem-ca.pem"
//! sink_retry_secs = 60
//! syslog = ["tls://siem.example:6514"]
//!
//! [[webhook]]
//! url = "https://soar.example/hooks/isac"
//! secret_env = "ISAC_WEBHOOK_SECRET"   # or secret = "..."
//!
//! [[splunk_hec]]
//! url = "https://splunk.example:8088/services/collector/event"
//! token_env = "ISAC_SPLUNK_TOKEN"      # or token = "..."
//! index = "threat"
//! sourcetype = "isac:indicator"
//! batch = 100
//!
//! [[elastic]]
//! url = "https://es.example:9200"
//! index = "isac-indicators"
//!
//! [smtp]
//! url = "smtp://mail.example:587"
//! from = "isac-agent@bank.example"
//! to = ["soc@bank.example"]
//! min_severity = "high"
//! user = "isac-agent"
//! password_env = "ISAC_SMTP_PASSWORD"
//!
//! [log]                                 # the hub's transparency log
//! witnesses = ["witness.example/w1+1a2b3c4d+BASE64KEY"]   # C2SP vkeys
//! quorum = 1                            # cosignatures required (default 0)
//! # origin = "isac.example/log"         # default: pinned from the first checkpoint
//!
//! [filter]
//! kinds = ["package", "artifact"]
//! ecosystems = ["npm", "pypi"]
//! min_severity = "medium"
//! min_confidence = 50
//! tlp = ["clear", "green", "amber"]
//! tags = []
//! bulletins_only = false
//!
//! [witness]                              # member-agent witness serve
//! logs = ["isac.example/log+1a2b3c4d+AeKbF..."]   # default: the hub's log key
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::AgentError;
use crate::sinks::http::HttpSink;
use crate::sinks::SinkSettings;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The hub's URLs (replicas of one hub), tried in order when one is
    /// down; empty: the ones given to `enroll --hub`.
    #[serde(default)]
    pub hubs: Vec<String>,
    pub jsonl: Option<PathBuf>,
    pub jsonl_max_bytes: Option<u64>,
    pub jsonl_keep: Option<u32>,
    pub stix_dir: Option<PathBuf>,
    pub export_red: Option<bool>,
    pub dead_letter: Option<PathBuf>,
    pub sink_ca: Option<PathBuf>,
    pub sink_retry_secs: Option<u64>,
    #[serde(default)]
    pub syslog: Vec<String>,
    #[serde(default)]
    pub webhook: Vec<WebhookConfig>,
    #[serde(default)]
    pub splunk_hec: Vec<HecConfig>,
    #[serde(default)]
    pub elastic: Vec<ElasticConfig>,
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub filter: FilterConfig,
    #[serde(default)]
    pub log: crate::tlog::LogConfig,

    /// `member-agent witness serve`: the logs it witnesses.
    pub witness: Option<crate::witness::WitnessSection>,
    /// Scanning before signing (`crate::scrub`).
    #[serde(default)]
    pub scrub: crate::scrub::ScrubConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: Option<String>,
    pub secret_env: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HecConfig {
    pub url: String,
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub index: Option<String>,
    pub sourcetype: Option<String>,
    pub batch: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticConfig {
    pub url: String,
    pub index: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub url: String,
    pub from: String,
    pub to: Vec<String>,
    pub min_severity: Option<String>,
    pub user: Option<String>,
    pub password_env: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub ecosystems: Vec<String>,
    pub min_severity: Option<String>,
    pub min_confidence: Option<u32>,
    #[serde(default)]
    pub tlp: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub bulletins_only: Option<bool>,
}

/// Where the config comes from: `--config FILE` (must exist), else
/// `STATE_DIR/agent.toml` if present, else nothing.
pub fn load(explicit: Option<&Path>, state_dir: &Path) -> Result<AgentConfig, AgentError> {
    let path = match explicit {
        Some(p) => p.to_owned(),
        None => {
            let p = state_dir.join("agent.toml");
            if !p.exists() {
                return Ok(AgentConfig::default());
            }
            p
        }
    };
    let text = crate::error::read_input(&path)?;
    parse(&text).map_err(|e| AgentError::Usage(format!("{}: {e}", path.display())))
}

/// Parses config text; the error names the key (and line) that is wrong.
pub fn parse(text: &str) -> Result<AgentConfig, String> {
    let config: AgentConfig = toml::from_str(text).map_err(|e| {
        // toml's message already holds the line, the column and the key.
        e.to_string().trim().replace('\n', "\n  ")
    })?;
    config.check()?;
    Ok(config)
}

/// A hub URL as `isac-client` connects to it: https://HOST:PORT.
fn check_hub_url(url: &str) -> Result<(), String> {
    let uri: tonic::transport::Uri = url.parse().map_err(|e| format!("{e}"))?;
    if uri.scheme_str() != Some("https") || uri.host().is_none() {
        return Err("expected https://HOST:PORT".into());
    }
    Ok(())
}

/// A secret given inline or by the name of an environment variable.
fn secret(
    key: &str,
    inline: &Option<String>,
    env: &Option<String>,
    env_var: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    match (inline, env) {
        (Some(_), Some(_)) => Err(format!(
            "{key}: give the secret inline or by `_env`, not both"
        )),
        (Some(s), None) => Ok(s.clone()),
        (None, Some(var)) => env_var(var)
            .ok_or_else(|| format!("{key}_env: environment variable `{var}` is not set")),
        (None, None) => Err(format!(
            "{key}: missing (or `{key}_env` naming an environment variable)"
        )),
    }
}

impl AgentConfig {
    /// Checks values that the file's types do not (URLs, addresses,
    /// levels), naming the key.
    fn check(&self) -> Result<(), String> {
        self.scrub.check()?;
        for (i, h) in self.hubs.iter().enumerate() {
            check_hub_url(h).map_err(|e| format!("hubs[{i}]: {h}: {e}"))?;
            if self.hubs[..i].contains(h) {
                return Err(format!("hubs[{i}]: {h} is listed twice"));
            }
        }
        for (i, w) in self.webhook.iter().enumerate() {
            w.url
                .parse::<crate::sinks::http::Url>()
                .map_err(|e| format!("webhook[{i}].url: {e}"))?;
        }
        for (i, h) in self.splunk_hec.iter().enumerate() {
            h.url
                .parse::<crate::sinks::http::Url>()
                .map_err(|e| format!("splunk_hec[{i}].url: {e}"))?;
            if h.batch == Some(0) {
                return Err(format!("splunk_hec[{i}].batch: must be at least 1"));
            }
        }
        for (i, e) in self.elastic.iter().enumerate() {
            e.url
                .parse::<crate::sinks::http::Url>()
                .map_err(|err| format!("elastic[{i}].url: {err}"))?;
        }
        for (i, s) in self.syslog.iter().enumerate() {
            s.parse::<crate::sinks::syslog::SyslogTarget>()
                .map_err(|e| format!("syslog[{i}]: {e}"))?;
        }
        if let Some(m) = &self.smtp {
            crate::sinks::mail::parse_smtp_url(&m.url).map_err(|e| format!("smtp.url: {e}"))?;
            crate::sinks::mail::check_address(&m.from).map_err(|e| format!("smtp.from: {e}"))?;
            if m.to.is_empty() {
                return Err("smtp.to: at least one recipient".into());
            }
            for (i, t) in m.to.iter().enumerate() {
                crate::sinks::mail::check_address(t).map_err(|e| format!("smtp.to[{i}]: {e}"))?;
            }
            if let Some(s) = &m.min_severity {
                s.parse::<isac_core::Severity>()
                    .map_err(|e| format!("smtp.min_severity: {e}"))?;
            }
        }
        if let Some(s) = &self.filter.min_severity {
            s.parse::<isac_core::Severity>()
                .map_err(|e| format!("filter.min_severity: {e}"))?;
        }
        for (i, t) in self.filter.tlp.iter().enumerate() {
            t.parse::<isac_core::Tlp>()
                .map_err(|e| format!("filter.tlp[{i}]: {e}"))?;
        }
        Ok(())
    }

    /// Adds the file's sinks and settings to `settings` (not the CA: the caller
    /// applies `--sink-ca` or `sink_ca` once every target is known).
    /// Secrets named by `_env` keys are read through `env_var`.
    pub fn apply(
        &self,
        settings: &mut SinkSettings,
        env_var: impl Fn(&str) -> Option<String>,
    ) -> Result<(), AgentError> {
        let usage = |m: String| AgentError::Usage(format!("config: {m}"));
        if let Some(p) = &self.jsonl {
            settings.jsonl = Some(p.clone());
        }
        if let Some(r) = self.export_red {
            settings.export_red = r;
        }
        if let Some(d) = &self.stix_dir {
            settings.stix_dir = Some(d.clone());
        }
        if let Some(max) = self.jsonl_max_bytes {
            settings.jsonl_rotate = Some((max, self.jsonl_keep.unwrap_or(5)));
        }
        if let Some(d) = &self.dead_letter {
            settings.dead_letter = Some(d.clone());
        }
        if let Some(s) = self.sink_retry_secs {
            settings.http_retry.give_up_after = std::time::Duration::from_secs(s);
        }
        for (i, w) in self.webhook.iter().enumerate() {
            settings.http.push(HttpSink::Webhook {
                url: w.url.parse()?,
                secret: secret(
                    &format!("webhook[{i}].secret"),
                    &w.secret,
                    &w.secret_env,
                    &env_var,
                )
                .map_err(usage)?,
            });
        }
        for (i, h) in self.splunk_hec.iter().enumerate() {
            settings.http.push(HttpSink::SplunkHec {
                url: h.url.parse()?,
                token: secret(
                    &format!("splunk_hec[{i}].token"),
                    &h.token,
                    &h.token_env,
                    &env_var,
                )
                .map_err(usage)?,
                index: h.index.clone(),
                sourcetype: h
                    .sourcetype
                    .clone()
                    .unwrap_or_else(|| "isac:indicator".into()),
            });
            if let Some(b) = h.batch {
                settings.hec_batch = b;
            }
        }
        for e in &self.elastic {
            settings.http.push(HttpSink::Elastic {
                url: e.url.parse()?,
                index: e.index.clone().unwrap_or_else(|| "isac-indicators".into()),
            });
        }
        for s in &self.syslog {
            settings.syslog.push(s.parse()?);
        }
        if let Some(m) = &self.smtp {
            let (host, port) = crate::sinks::mail::parse_smtp_url(&m.url)?;
            let auth = match (&m.user, &m.password_env) {
                (Some(u), Some(var)) => Some((
                    u.clone(),
                    env_var(var).ok_or_else(|| {
                        usage(format!(
                            "smtp.password_env: environment variable `{var}` is not set"
                        ))
                    })?,
                )),
                (Some(_), None) => {
                    return Err(usage(
                        "smtp.user: needs smtp.password_env naming an environment variable".into(),
                    ))
                }
                (None, _) => None,
            };
            settings.mail = Some(crate::sinks::mail::MailSink {
                host,
                port,
                from: m.from.clone(),
                to: m.to.clone(),
                min_severity: m
                    .min_severity
                    .as_deref()
                    .unwrap_or("high")
                    .parse()
                    .map_err(|e: String| usage(format!("smtp.min_severity: {e}")))?,
                auth,
                ca: None,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hubs_are_https_urls_listed_once() {
        let c = parse("hubs = [\"https://a.example:7443\", \"https://b.example:7443\"]\n").unwrap();
        assert_eq!(c.hubs, ["https://a.example:7443", "https://b.example:7443"]);
        assert!(parse("").unwrap().hubs.is_empty());
        for (text, want) in [
            (
                "hubs = [\"http://a:1\"]",
                "hubs[0]: http://a:1: expected https://HOST:PORT",
            ),
            (
                "hubs = [\"a.example\"]",
                "hubs[0]: a.example: expected https://HOST:PORT",
            ),
            (
                "hubs = [\"https://a:1\", \"https://a:1\"]",
                "hubs[1]: https://a:1 is listed twice",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err(), want, "{text}");
        }
        assert!(parse("hubs = [\"https://a b\"]")
            .unwrap_err()
            .starts_with("hubs[0]: "));
    }

    #[test]
    fn every_sink_at_once_and_errors_name_the_key() {
        let c = parse(
            r#"
            jsonl = "/tmp/x.jsonl"
            dead_letter = "/tmp/dead.jsonl"
            syslog = ["tls://siem.example:6514", "udp://127.0.0.1:514"]
            [[webhook]]
            url = "https://a.example/hook"
            secret = "s"
            [[webhook]]
            url = "http://b.example/hook"
            secret_env = "HOOK_SECRET"
            [[splunk_hec]]
            url = "https://splunk.example:8088/services/collector/event"
            token = "t"
            batch = 10
            [[elastic]]
            url = "http://es.example:9200"
            [smtp]
            url = "smtp://mail.example"
            from = "a@bank.example"
            to = ["soc@bank.example"]
            [filter]
            kinds = ["package"]
            min_severity = "high"
            "#,
        )
        .unwrap();
        let mut sink = SinkSettings::default();
        c.apply(&mut sink, |v| {
            (v == "HOOK_SECRET").then(|| "from-env".into())
        })
        .unwrap();
        assert_eq!(sink.http.len(), 4);
        assert_eq!(sink.syslog.len(), 2);
        assert_eq!(sink.hec_batch, 10);
        assert!(sink.mail.is_some());
        assert!(matches!(&sink.http[1], HttpSink::Webhook { secret, .. } if secret == "from-env"));
        let e = c.apply(&mut sink, |_| None).unwrap_err().to_string();
        assert!(
            e.contains("webhook[1].secret_env") && e.contains("HOOK_SECRET"),
            "{e}"
        );

        for (text, key) in [
            ("jsonl_kep = 3", "jsonl_kep"),
            (
                "[[webhook]]\nurl = \"ftp://x\"\nsecret = \"s\"",
                "webhook[0].url",
            ),
            ("[[webhook]]\nurll = \"https://x\"", "urll"),
            ("syslog = [\"tcp:/x\"]", "syslog[0]"),
            ("[filter]\nmin_severity = \"huge\"", "filter.min_severity"),
            ("[filter]\ntlp = [\"white\"]", "filter.tlp[0]"),
            (
                "[smtp]\nurl = \"smtp://m\"\nfrom = \"nobody\"\nto = [\"a@b\"]",
                "smtp.from",
            ),
            ("jsonl_max_bytes = \"big\"", "jsonl_max_bytes"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn a_deeply_nested_config_is_an_error_not_a_stack_overflow() {
        // Issue 15's review of every recursive decoder: toml's parser caps
        // nesting itself; this holds it to that on a small stack.
        let arrays = format!("jsonl = {}1{}", "[".repeat(20_000), "]".repeat(20_000));
        let tables = format!("x = {}1{}", "{a = ".repeat(20_000), "}".repeat(20_000));
        let worker = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || (parse(&arrays).is_err(), parse(&tables).is_err()))
            .unwrap();
        assert_eq!(worker.join().expect("no stack overflow"), (true, true));
    }

    #[test]
    fn witness_section_names_logs_and_refuses_unknown_keys() {
        let c = parse("[witness]\nlogs = [\"isac.example/log+01234567+AQ\"]\n").unwrap();
        assert_eq!(c.witness.unwrap().logs.len(), 1);
        let e = parse("[witness]\nlog = []\n").unwrap_err();
        assert!(e.contains("log"), "{e}");
    }
}
