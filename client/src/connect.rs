//! OpenSSL mutual TLS under tonic: an `SslConnector` wrapped in a tower
//! service for `Endpoint::connect_with_connector`.
//!
//! Building an `SslConnector` costs ~20 ms (the CA store, the key check), so
//! a [`Connector`] is built once per identity and cloned (a reference count)
//! for every connection made with it.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::ClientError;

/// How to treat the hub's certificate.
#[derive(Clone, Copy)]
pub enum Trust<'a> {
    /// Only to fetch the CA for pinning: nothing is trusted until its
    /// fingerprint matches the token, and nothing secret is sent.
    PinningOnly,
    /// Verify the hub against this CA, and only this CA (never the system
    /// roots); present this client identity, if any.
    Ca {
        ca: &'a X509,
        client: Option<(&'a X509, &'a PKey<Private>)>,
    },
}

/// Opens gRPC channels to a hub with one TLS configuration. Cheap to clone.
#[derive(Clone)]
pub struct Connector {
    ssl: SslConnector,
}

impl Connector {
    pub fn new(trust: Trust<'_>) -> Result<Self, ClientError> {
        let mut b = SslConnector::builder(SslMethod::tls_client())
            .map_err(ClientError::tls("creating the TLS client"))?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(ClientError::tls("requiring TLS 1.2"))?;
        b.set_alpn_protos(b"\x02h2")
            .map_err(ClientError::tls("offering HTTP/2"))?;
        match trust {
            Trust::PinningOnly => b.set_verify(SslVerifyMode::NONE),
            Trust::Ca { ca, client } => {
                // Trust exactly the hub CA, not the system roots.
                let mut store =
                    X509StoreBuilder::new().map_err(ClientError::tls("creating the CA store"))?;
                store
                    .add_cert(ca.clone())
                    .map_err(ClientError::tls("adding the pinned hub CA"))?;
                b.set_verify_cert_store(store.build())
                    .map_err(ClientError::tls("trusting the pinned hub CA"))?;
                b.set_verify(SslVerifyMode::PEER);
                if let Some((cert, key)) = client {
                    let ours = cert
                        .public_key()
                        .map(|public| public.public_eq(key))
                        .map_err(ClientError::tls("reading the client certificate"))?;
                    if !ours {
                        return Err(ClientError::KeyMismatch);
                    }
                    b.set_certificate(cert)
                        .map_err(ClientError::tls("using the client certificate"))?;
                    b.set_private_key(key)
                        .map_err(ClientError::tls("using the client key"))?;
                }
            }
        }
        Ok(Self { ssl: b.build() })
    }

    /// Opens a channel to `url` (https://HOST:PORT); tonic reconnects it by
    /// itself (with this connector) when the connection drops.
    pub async fn connect(&self, url: &str) -> Result<Channel, ClientError> {
        let endpoint = endpoint(url)?;
        let ssl = self.ssl.clone();
        let svc = tower::service_fn(move |uri: Uri| {
            let ssl = ssl.clone();
            async move {
                let host = uri
                    .host()
                    .unwrap_or("localhost")
                    .trim_matches(['[', ']'])
                    .to_owned();
                let port = uri.port_u16().unwrap_or(443);
                let tcp = TcpStream::connect((host.as_str(), port)).await?;
                tcp.set_nodelay(true)?;
                let ssl = ssl
                    .configure()
                    .map_err(std::io::Error::other)?
                    .into_ssl(&host)
                    .map_err(std::io::Error::other)?;
                let mut stream = SslStream::new(ssl, tcp).map_err(std::io::Error::other)?;
                std::pin::Pin::new(&mut stream)
                    .connect()
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        });
        endpoint
            .connect_with_connector(svc)
            .await
            .map_err(|cause| ClientError::Connect {
                url: url.to_owned(),
                cause,
            })
    }
}

/// The endpoint for a hub URL: https only, with the agent's timeouts.
fn endpoint(url: &str) -> Result<Endpoint, ClientError> {
    let bad = |reason: String| ClientError::Url {
        url: url.to_owned(),
        reason,
    };
    let uri: Uri = url.parse().map_err(|e| bad(format!("{e}")))?;
    if uri.scheme_str() != Some("https") {
        return Err(bad("not https".into()));
    }
    if uri.host().is_none() {
        return Err(bad("no host".into()));
    }
    Ok(Endpoint::from(uri)
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_with_a_host() {
        for (url, reason) in [
            ("http://127.0.0.1:7443", "not https"),
            ("127.0.0.1:7443", "not https"),
            ("https://", ""),
        ] {
            let e = endpoint(url).expect_err(url).to_string();
            assert!(e.starts_with(&format!("{url} is not a hub URL (")), "{e}");
            assert!(e.contains(reason), "{e}");
            assert!(e.ends_with("expected https://HOST:PORT"), "{e}");
        }
        endpoint("https://hub.example:7443").unwrap();
        endpoint("https://[::1]:7443").unwrap();
    }

    #[tokio::test]
    async fn a_refused_connection_shows_the_whole_chain() {
        // Bind then drop: nothing listens on this port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("https://127.0.0.1:{port}");
        let e = Connector::new(Trust::PinningOnly)
            .unwrap()
            .connect(&url)
            .await
            .expect_err("nothing listens");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("cannot reach the hub at {url}: transport error")),
            "{text}"
        );
        // The root cause, not just tonic's "transport error".
        assert!(text.to_lowercase().contains("refused"), "{text}");
    }
}
