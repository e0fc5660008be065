//! The agent's error type. Each variant says what to do next.

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Usage(String),
    #[error("not enrolled: no identity in {0}; run `member-agent --state-dir {0} enroll --hub URL --token TOKEN` first")]
    NotEnrolled(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot reach the hub at {url}: {message}")]
    Connect { url: String, message: String },
    /// Loading the identity or setting up TLS (the message is whole).
    #[error(transparent)]
    Client(isac_client::ClientError),
    #[error("the hub refused ({code:?}): {message}")]
    Hub { code: tonic::Code, message: String },
    #[error("key directory refused: {0}")]
    Directory(String),
    #[error("hub pinning failed: {0}")]
    Pin(String),
    #[error("crypto: {0}")]
    Crypto(String),
    #[error("local store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} dependency match(es) with held indicators")]
    Matched(usize),
    /// The hub's transparency log failed a check (the whole alert text).
    #[error("{0}")]
    LogAlert(String),
}

impl From<isac_client::ClientError> for AgentError {
    fn from(e: isac_client::ClientError) -> Self {
        match e {
            isac_client::ClientError::NotEnrolled { dir } => {
                AgentError::NotEnrolled(dir.display().to_string())
            }
            // Same text as the client's, with the whole cause chain.
            isac_client::ClientError::Connect { url, cause } => AgentError::Connect {
                url,
                message: isac_client::error::error_chain(&cause),
            },
            other => AgentError::Client(other),
        }
    }
}

impl From<tonic::Status> for AgentError {
    fn from(s: tonic::Status) -> Self {
        AgentError::Hub {
            code: s.code(),
            message: s.message().to_owned(),
        }
    }
}

impl From<openssl::error::ErrorStack> for AgentError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        AgentError::Crypto(e.to_string())
    }
}

impl From<isac_core::keys::KeyError> for AgentError {
    fn from(e: isac_core::keys::KeyError) -> Self {
        AgentError::Crypto(e.to_string())
    }
}

/// Reads a text file the user named as input (CSV, STIX, lockfile,
/// bulletin body, JSON draft, config). Any failure is bad input, a usage
/// error (exit 64) naming the file: missing, unreadable, or not UTF-8.
pub fn read_input(path: &std::path::Path) -> Result<String, AgentError> {
    let bytes = std::fs::read(path)
        .map_err(|e| AgentError::Usage(format!("{}: cannot read: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        AgentError::Usage(format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// [`read_input`] of at most `max` bytes: a larger file (or a device or
/// FIFO, whose size says nothing, such as `/dev/zero`) is refused after
/// `max + 1` bytes, never read whole into memory. `what` names the input
/// in the error (e.g. "a CSV file").
pub fn read_input_bounded(
    path: &std::path::Path,
    max: u64,
    what: &str,
) -> Result<String, AgentError> {
    use std::io::Read;
    let cannot =
        |e: std::io::Error| AgentError::Usage(format!("{}: cannot read: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > max {
        return Err(AgentError::Usage(format!(
            "{}: more than the {max} bytes {what} may hold",
            path.display()
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        AgentError::Usage(format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

pub fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> AgentError + '_ {
    move |source| AgentError::Io {
        path: path.to_owned(),
        source,
    }
}
