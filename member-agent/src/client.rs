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
