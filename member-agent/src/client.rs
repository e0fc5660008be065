//! The hub connection lives in `isac-client` (identity files, hub-CA-only
//! trust, the OpenSSL connector for tonic); this module keeps the agent's
//! names for it.

pub use isac_client::{ClientError, Connector, Trust};
use tonic::transport::Channel;

use crate::error::AgentError;

/// Opens a channel to `url` (https://HOST:PORT) with a connector built for
/// this one call. To connect more than once, build a [`Connector`] and keep it.
pub async fn connect(url: &str, trust: Trust<'_>) -> Result<Channel, AgentError> {
    Ok(Connector::new(trust)?.connect(url).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_hub_is_a_connect_error_with_the_whole_chain() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("https://127.0.0.1:{port}");
        let e = connect(&url, Trust::PinningOnly)
            .await
            .expect_err("nothing listens");
        let text = e.to_string();
        assert!(matches!(e, AgentError::Connect { .. }), "{e:?}");
        assert!(
            text.starts_with(&format!("cannot reach the hub at {url}: transport error: ")),
            "{text}"
        );
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }

    #[test]
    fn a_missing_identity_keeps_the_agents_not_enrolled_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = AgentError::from(isac_client::Credentials::load(dir.path()).err().unwrap());
        assert!(matches!(e, AgentError::NotEnrolled(_)), "{e:?}");
    }
}
