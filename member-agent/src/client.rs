//! The agent's side of OpenSSL mutual TLS under tonic: an `SslConnector`
//! (built once; it is costly) wrapped in a tower service for
//! `Endpoint::connect_with_connector`.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::AgentError;

/// How to treat the hub's certificate.
pub enum Trust<'a> {
    /// Only to fetch the CA for pinning: nothing is trusted until its
    /// fingerprint matches the token, and nothing secret is sent.
    PinningOnly,
    /// Verify the hub against this CA; present this client identity, if any.
    Ca {
        ca: &'a X509,
        client: Option<(&'a X509, &'a PKey<Private>)>,
    },
}

fn build_connector(trust: Trust<'_>) -> Result<SslConnector, AgentError> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_alpn_protos(b"\x02h2")?;
    match trust {
        Trust::PinningOnly => b.set_verify(SslVerifyMode::NONE),
        Trust::Ca { ca, client } => {
            // Trust exactly the hub CA, not the system roots.
            let mut store = X509StoreBuilder::new()?;
            store.add_cert(ca.clone())?;
            b.set_verify_cert_store(store.build())?;
            b.set_verify(SslVerifyMode::PEER);
            if let Some((cert, key)) = client {
                b.set_certificate(cert)?;
                b.set_private_key(key)?;
                b.check_private_key()?;
            }
        }
    }
    Ok(b.build())
}

/// Opens a channel to `url` (https://HOST:PORT).
pub async fn connect(url: &str, trust: Trust<'_>) -> Result<Channel, AgentError> {
    let connect_err = |message: String| AgentError::Connect {
        url: url.to_owned(),
        message,
    };
    let uri: Uri = url
        .parse()
        .map_err(|e| connect_err(format!("not a URL ({e}); expected https://HOST:PORT")))?;
    if uri.scheme_str() != Some("https") || uri.host().is_none() {
        return Err(connect_err("expected https://HOST:PORT".into()));
    }
    let connector = Arc::new(build_connector(trust)?);
    let endpoint = Endpoint::from(uri)
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    let svc = tower::service_fn(move |uri: Uri| {
        let connector = connector.clone();
        async move {
            let host = uri
                .host()
                .unwrap_or("localhost")
                .trim_matches(['[', ']'])
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let ssl = connector
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
        .map_err(|e| connect_err(error_chain(&e)))
}

/// The full cause chain: tonic's top-level transport error alone says little.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
