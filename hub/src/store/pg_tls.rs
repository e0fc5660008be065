//! TLS to PostgreSQL through OpenSSL: the policy `isac_core::pg_tls`
//! decided (from `sslmode`, `sslrootcert`, `sslcert`, `sslkey`) turned
//! into an `SslContext` built once, and a `tokio-postgres` connector that
//! runs each handshake. Our own glue (about what `postgres-openssl` does)
//! so that a refused server certificate is reported with OpenSSL's
//! verification result ("unable to get local issuer certificate",
//! "hostname mismatch"), not only "certificate verify failed"; only the
//! given CA is trusted (no system roots unless `sslrootcert=system`).

use std::error::Error;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use isac_core::pg_tls::{Roots, SslMode, TlsPolicy, TlsUse};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::ssl::{Ssl, SslContext, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::verify::X509CheckFlags;
use openssl::x509::X509VerifyResult;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;

use super::StoreError;

type BoxError = Box<dyn Error + Send + Sync>;

/// A store URL read and checked: the client's config (its `ssl_mode`
/// set from the policy) and the TLS policy. No file is read yet.
#[derive(Debug, Clone)]
pub struct PgTarget {
    pub config: tokio_postgres::Config,
    pub tls: TlsPolicy,
}

/// What each connection is made with: the config and the TLS context
/// (built once: building one loads files and costs milliseconds).
pub(super) struct Dial {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: PgTls,
}

impl Dial {
    pub(super) fn new(target: PgTarget) -> Result<Dial, StoreError> {
        let tls = PgTls::build(&target.tls)?;
        Ok(Dial {
            config: target.config,
            tls,
        })
    }
}

/// The connector handed to `tokio_postgres::Config::connect`.
#[derive(Clone)]
pub(super) struct PgTls {
    /// `None` with `sslmode=disable` (the client never asks for TLS).
    context: Option<SslContext>,
    verify_host: bool,
    /// For error messages: the mode and where the roots came from.
    mode: SslMode,
    roots: Option<Arc<str>>,
}

fn refused(m: String) -> StoreError {
    StoreError::Refused(m)
}

impl PgTls {
    pub(super) fn build(policy: &TlsPolicy) -> Result<PgTls, StoreError> {
        let mut out = PgTls {
            context: None,
            verify_host: policy.verify_host,
            mode: policy.mode,
            roots: None,
        };
        if policy.tls == TlsUse::Never {
            return Ok(out);
        }
        let tls_err = |e: openssl::error::ErrorStack| refused(format!("TLS set-up: {e}"));
        let mut ctx = SslContext::builder(SslMethod::tls_client()).map_err(tls_err)?;
        ctx.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(tls_err)?;
        // PostgreSQL 17 checks ALPN on direct TLS; older servers ignore it.
        ctx.set_alpn_protos(b"\x0apostgresql").map_err(tls_err)?;
        match &policy.verify_chain {
            None => ctx.set_verify(SslVerifyMode::NONE),
            Some(Roots::System) => {
                ctx.set_default_verify_paths().map_err(tls_err)?;
                ctx.set_verify(SslVerifyMode::PEER);
                out.roots = Some("the system's trusted roots".into());
            }
            Some(Roots::File(path)) => {
                // Read it ourselves first: OpenSSL's error for a missing
                // file does not say which file.
                let pem = std::fs::read(path)
                    .map_err(|e| refused(format!("cannot read the store's CA file {path}: {e}")))?;
                let certs = openssl::x509::X509::stack_from_pem(&pem).map_err(|e| {
                    refused(format!(
                        "the store's CA file {path} holds no PEM certificate: {e}"
                    ))
                })?;
                if certs.is_empty() {
                    return Err(refused(format!(
                        "the store's CA file {path} holds no PEM certificate"
                    )));
                }
                let store = ctx.cert_store_mut();
                for cert in certs {
                    store.add_cert(cert).map_err(tls_err)?;
                }
                ctx.set_verify(SslVerifyMode::PEER);
                out.roots = Some(format!("the CA in {path}").into());
            }
        }
        if let Some((cert, key)) = &policy.client {
            ctx.set_certificate_chain_file(cert).map_err(|e| {
                refused(format!(
                    "cannot use the client certificate {cert} (sslcert): {e}"
                ))
            })?;
            ctx.set_private_key_file(key, SslFiletype::PEM)
                .map_err(|e| refused(format!("cannot use the client key {key} (sslkey): {e}")))?;
            ctx.check_private_key().map_err(|e| {
                refused(format!(
                    "the client key {key} does not match the certificate {cert}: {e}"
                ))
            })?;
        }
        out.context = Some(ctx.build());
        Ok(out)
    }
}

impl MakeTlsConnect<Socket> for PgTls {
    type Stream = PgTlsStream;
    type TlsConnect = PgTlsConnect;
    type Error = BoxError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<PgTlsConnect, BoxError> {
        // Called for every connection, even with sslmode=disable (which
        // then never calls `connect`).
        let Some(context) = &self.context else {
            return Ok(PgTlsConnect {
                ssl: None,
                domain: domain.to_owned(),
                mode: self.mode,
                roots: None,
            });
        };
        let mut ssl = Ssl::new(context)?;
        let ip = domain.parse::<IpAddr>().ok();
        if ip.is_none() && !domain.is_empty() {
            ssl.set_hostname(domain)?; // SNI
        }
        if self.verify_host {
            let param = ssl.param_mut();
            param.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS);
            match ip {
                Some(ip) => param.set_ip(ip)?,
                None => param.set_host(domain)?,
            }
        }
        Ok(PgTlsConnect {
            ssl: Some(ssl),
            domain: domain.to_owned(),
            mode: self.mode,
            roots: self.roots.clone(),
        })
    }
}

pub(super) struct PgTlsConnect {
    /// `None`: TLS is off.
    ssl: Option<Ssl>,
    domain: String,
    mode: SslMode,
    roots: Option<Arc<str>>,
}

impl TlsConnect<Socket> for PgTlsConnect {
    type Stream = PgTlsStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<PgTlsStream, BoxError>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        Box::pin(async move {
            let ssl = self.ssl.ok_or("TLS is off (sslmode=disable)")?;
            let mut stream = tokio_openssl::SslStream::new(ssl, socket)?;
            if let Err(e) = Pin::new(&mut stream).connect().await {
                let verdict = stream.ssl().verify_result();
                if verdict != X509VerifyResult::OK {
                    let roots = self.roots.as_deref().unwrap_or("the given CA");
                    return Err(format!(
                        "the database server's certificate for {} is not trusted: {} (sslmode={}, checked against {roots})",
                        self.domain,
                        verdict.error_string(),
                        self.mode.as_str()
                    )
                    .into());
                }
                return Err(format!("TLS handshake failed: {e}").into());
            }
            Ok(PgTlsStream(stream))
        })
    }
}

pub(super) struct PgTlsStream(tokio_openssl::SslStream<Socket>);

impl AsyncRead for PgTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PgTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl TlsStream for PgTlsStream {
    /// `tls-server-end-point` (RFC 5929) for SCRAM channel binding: the
    /// server certificate's hash with its signature's digest (SHA-256 for
    /// MD5 and SHA-1); none for a certificate without one (Ed25519).
    fn channel_binding(&self) -> ChannelBinding {
        let Some(cert) = self.0.ssl().peer_certificate() else {
            return ChannelBinding::none();
        };
        let Some(algs) = cert
            .signature_algorithm()
            .object()
            .nid()
            .signature_algorithms()
        else {
            return ChannelBinding::none();
        };
        let md = match algs.digest {
            Nid::MD5 | Nid::SHA1 => MessageDigest::sha256(),
            nid => match MessageDigest::from_nid(nid) {
                Some(md) => md,
                None => return ChannelBinding::none(),
            },
        };
        match cert.digest(md) {
            Ok(d) => ChannelBinding::tls_server_end_point(d.to_vec()),
            Err(_) => ChannelBinding::none(),
        }
    }
}
