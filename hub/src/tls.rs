//! OpenSSL mutual TLS under tonic.
//!
//! The caller binds the listener. Each accepted socket gets its own task for
//! the handshake, capped by a timeout, so a stalled or hostile peer never
//! blocks the accept loop; a failed handshake is logged and forgotten.
//! Finished streams carry the verified client certificate's fingerprint into
//! every request as [`PeerInfo`].
//!
//! The client certificate is requested but not required at the TLS layer:
//! enrollment must work without one, and a refusal at the TLS layer reaches
//! the caller only as an opaque transport error. Identity is checked per
//! method instead (`grpc::auth`). A certificate from another CA still fails
//! the handshake.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use openssl::ssl::{AlpnError, SslAcceptor, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_openssl::SslStream;
use tonic::transport::server::Connected;

use crate::datadir::HubMaterial;
use crate::pki::cert_fingerprint;

/// What the TLS layer learned about the peer; reaches handlers through the
/// request extensions.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote_addr: SocketAddr,
    /// SHA-256 of the client certificate, present only when the peer sent
    /// one and it verified against the hub CA.
    pub client_cert_sha256: Option<String>,
}

/// A finished TLS connection (newtype for the orphan rule).
pub struct TlsConn {
    stream: SslStream<TcpStream>,
    info: PeerInfo,
}

impl Connected for TlsConn {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// ALPN protocol lists in wire format.
pub const ALPN_H2: &[u8] = b"\x02h2";
pub const ALPN_HTTP1: &[u8] = b"\x08http/1.1";

/// The hub's TLS acceptor, offering `alpn` (gRPC: [`ALPN_H2`]; TAXII:
/// [`ALPN_HTTP1`]).
pub fn build_acceptor(
    material: &HubMaterial,
    alpn: &'static [u8],
) -> Result<SslAcceptor, openssl::error::ErrorStack> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_private_key(&material.server_key)?;
    b.set_certificate(&material.server_cert)?;
    // Send the CA too, so a new agent can pin it by fingerprint.
    b.add_extra_chain_cert(material.ca_cert.clone())?;
    b.check_private_key()?;
    let mut store = X509StoreBuilder::new()?;
    store.add_cert(material.ca_cert.clone())?;
    b.set_verify_cert_store(store.build())?;
    b.add_client_ca(&material.ca_cert)?;
    b.set_verify(SslVerifyMode::PEER);
    b.set_alpn_select_callback(|_, client| {
        openssl::ssl::select_next_proto(alpn, client).ok_or(AlpnError::NOACK)
    });
    Ok(b.build())
}

/// Accepts TCP connections and hands finished TLS streams to `out` until
/// `out` is closed (the server stopped).
pub async fn accept_loop(
    listener: TcpListener,
    acceptor: Arc<SslAcceptor>,
    handshake_timeout: Duration,
    out: mpsc::Sender<Result<TlsConn, io::Error>>,
) {
    loop {
        let (tcp, remote_addr) = tokio::select! {
            _ = out.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE, ECONNABORTED...: never stop listening for it.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let out = out.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(handshake_timeout, handshake(&acceptor, tcp, remote_addr))
                .await
            {
                Ok(Ok(conn)) => {
                    let _ = out.send(Ok(conn)).await;
                }
                Ok(Err(e)) => tracing::debug!(%remote_addr, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote_addr, "TLS handshake timed out"),
            }
        });
    }
}

async fn handshake(
    acceptor: &SslAcceptor,
    tcp: TcpStream,
    remote_addr: SocketAddr,
) -> io::Result<TlsConn> {
    let ssl = openssl::ssl::Ssl::new(acceptor.context()).map_err(io::Error::other)?;
    let mut stream = SslStream::new(ssl, tcp).map_err(io::Error::other)?;
    Pin::new(&mut stream)
        .accept()
        .await
        .map_err(io::Error::other)?;
    let client_cert_sha256 = stream
        .ssl()
        .peer_certificate()
        .map(|c| cert_fingerprint(&c));
    Ok(TlsConn {
        stream,
        info: PeerInfo {
            remote_addr,
            client_cert_sha256,
        },
    })
}
