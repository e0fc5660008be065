//! What the `hub` and `member-agent` binaries share at the process edge:
//! the `--log-format` choice, the log subscriber set-up, and the exit code
//! for bad usage or configuration.

/// Exit code for bad configuration, usage or input files (sysexits
/// EX_USAGE): scripts tell "fix your command" from "try again".
pub const EX_USAGE: u8 = 64;

/// How log lines are written on stderr: for people, or one JSON object
/// per line for log shippers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// The `--log-format` flag, flattened into each binary's command line.
#[derive(Clone, Debug, clap::Args)]
pub struct LogArgs {
    /// Log lines on stderr: human (default) or json (one object per line, for log shippers).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "human",
        env = "ISAC_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// Installs the process's log subscriber on stderr: `RUST_LOG` if set,
/// otherwise `default_filter` (e.g. `info` for the hub, `warn` for the
/// agent's CLI).
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Human => logs.init(),
    }
}
