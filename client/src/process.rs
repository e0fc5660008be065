//! What the `hub` and `member-agent` binaries share at the process edge:
//! the `--log-format` choice, the log subscriber set-up, and the exit code
//! for bad usage or configuration.

/// Exit code when stdout is closed under us (`hub status | head -1`): what a
/// shell reports for a Unix tool that SIGPIPE ended (128 + 13).
pub const EXIT_BROKEN_PIPE: i32 = 141;

/// Makes a closed stdout end the process quietly with [`EXIT_BROKEN_PIPE`],
/// as Unix tools end, instead of a panic: Rust ignores SIGPIPE, so
/// `println!` to a closed pipe panics. Call first thing in `main`. Only
/// that one panic is changed; every other still goes to the previous hook.
pub fn exit_quietly_on_broken_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_closed_stdout(message) {
            std::process::exit(EXIT_BROKEN_PIPE);
        }
        previous(info);
    }));
}

/// Whether a panic message is std's "failed printing to stdout" for a
/// closed pipe (EPIPE, `os error 32`).
fn is_closed_stdout(message: &str) -> bool {
    message.starts_with("failed printing to stdout")
        && (message.contains("os error 32") || message.contains("Broken pipe"))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_stdout_is_quiet() {
        assert!(is_closed_stdout(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_stdout(
            "failed printing to stderr: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_stdout(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_closed_stdout("index out of bounds"));
    }
}
