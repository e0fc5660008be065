//! [`ClientError`]: each message names the file or URL, says what is
//! wrong with it, and what to do next.
//!
//! `Display` already carries the whole cause chain (tonic's top-level
//! transport error alone says only "transport error"), so no variant has a
//! `source()`: printing the error once prints everything, exactly once.

use std::fmt;
use std::io;
use std::path::PathBuf;

use openssl::error::ErrorStack;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("not enrolled: no identity in {dir}; run `member-agent --state-dir {dir} enroll --hub URL --token TOKEN` first", dir = .dir.display())]
    NotEnrolled { dir: PathBuf },
    #[error("cannot read the {what} {}: {}{}", .path.display(), Chain(.cause), read_hint(.cause))]
    Read {
        path: PathBuf,
        what: &'static str,
        cause: io::Error,
    },
    #[error("{} is not a valid {what}: {reason}; restore it, or enroll again with --force", .path.display())]
    Invalid {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{url} is not a hub URL ({reason}); expected https://HOST:PORT")]
    Url { url: String, reason: String },
    #[error("cannot set up TLS ({what}): {}", Chain(.cause))]
    Tls {
        what: &'static str,
        cause: ErrorStack,
    },
    #[error("the client key (tls.key) does not belong to the client certificate (tls.crt); restore both from one backup, or enroll again with --force")]
    KeyMismatch,
    #[error("cannot reach the hub at {url}: {}", Chain(.cause))]
    Connect {
        url: String,
        cause: tonic::transport::Error,
    },
}

fn read_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound => {
            "; the state dir is incomplete: restore it, or enroll again with --force"
        }
        io::ErrorKind::PermissionDenied => {
            "; run as the user that owns the state dir (its files are 0600/0644 in a 0700 directory)"
        }
        _ => "",
    }
}

impl ClientError {
    pub(crate) fn tls(what: &'static str) -> impl FnOnce(ErrorStack) -> Self {
        move |cause| ClientError::Tls { what, cause }
    }
}

/// Shows an error and every `source()` under it, `: `-separated.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut last = self.0.to_string();
        let mut source = self.0.source();
        while let Some(s) = source {
            let text = s.to_string();
            // Some errors repeat their source in their own message.
            if !last.contains(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            source = s.source();
        }
        Ok(())
    }
}

/// The whole cause chain as one line, for errors of other crates.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    Chain(e).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(&'static str, #[source] Option<Box<Layer>>);

    fn layers(names: &[&'static str]) -> Layer {
        names
            .iter()
            .rev()
            .fold(None, |inner, n| Some(Layer(n, inner.map(Box::new))))
            .unwrap()
    }

    #[test]
    fn chain_shows_every_cause_in_order() {
        let e = layers(&["transport error", "tcp connect error", "Connection refused"]);
        assert_eq!(
            error_chain(&e),
            "transport error: tcp connect error: Connection refused"
        );
    }

    #[test]
    fn chain_skips_a_cause_the_message_already_shows() {
        let e = layers(&["handshake failed: bad certificate", "bad certificate"]);
        assert_eq!(error_chain(&e), "handshake failed: bad certificate");
    }

    #[test]
    fn read_errors_say_what_to_do() {
        let missing = ClientError::Read {
            path: "/s/tls.key".into(),
            what: "client key",
            cause: io::Error::from(io::ErrorKind::NotFound),
        };
        let text = missing.to_string();
        assert!(
            text.starts_with("cannot read the client key /s/tls.key: "),
            "{text}"
        );
        assert!(text.contains("enroll again with --force"), "{text}");
        let denied = ClientError::Read {
            path: "/s/tls.key".into(),
            what: "client key",
            cause: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert!(denied
            .to_string()
            .contains("the user that owns the state dir"));
    }

    #[test]
    fn no_variant_hides_a_cause_in_source() {
        let e = ClientError::Url {
            url: "http://x".into(),
            reason: "not https".into(),
        };
        assert!(std::error::Error::source(&e).is_none());
        assert_eq!(
            e.to_string(),
            "http://x is not a hub URL (not https); expected https://HOST:PORT"
        );
    }
}
