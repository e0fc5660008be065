//! TLS to the hub's PostgreSQL store, decided as libpq users expect: the
//! `sslmode` ladder (`disable`, `prefer`, `require`, `verify-ca`,
//! `verify-full`), the CA in `sslrootcert`, an optional client certificate
//! in `sslcert` + `sslkey`. [`split_url`] takes these out of a store URL
//! (the PostgreSQL client parses the rest) and [`decide`] turns them into
//! what the connection must do. Pure: the hub reads the files and runs the
//! handshake.
//!
//! Where libpq would silently ignore a setting, this refuses it instead, so
//! an operator never believes the database is verified when it is not: a
//! CA or client certificate with `disable` or `prefer`, half a client
//! certificate, `verify-*` without a CA, a required TLS on a Unix socket
//! (PostgreSQL never speaks TLS there). As in libpq, `require` with a CA
//! verifies the chain (like `verify-ca`).

use std::fmt;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

pub const SSL_MODES: [SslMode; 5] = [
    SslMode::Disable,
    SslMode::Prefer,
    SslMode::Require,
    SslMode::VerifyCa,
    SslMode::VerifyFull,
];

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    pub fn parse(s: &str) -> Result<SslMode, PgTlsError> {
        SSL_MODES
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                PgTlsError(format!(
                    "sslmode `{s}` is not one of disable, prefer, require, verify-ca, verify-full"
                ))
            })
    }
}

/// The TLS settings a store URL (and hub.toml) gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsParams {
    /// `sslmode`; absent means `prefer`, as in libpq.
    pub mode: Option<SslMode>,
    /// `sslrootcert`: a PEM file of CA certificates, or `system` for the
    /// system's trusted roots.
    pub root_cert: Option<String>,
    /// `sslcert` and `sslkey`: the client certificate and its key (PEM).
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

/// Whether TLS is used at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsUse {
    /// Plain TCP (or a Unix socket).
    Never,
    /// TLS if the server offers it, plain otherwise (no verification).
    IfOffered,
    /// TLS or no connection.
    Always,
}

/// Where the CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The system's trusted roots (`sslrootcert=system`).
    System,
    /// A PEM file.
    File(String),
}

/// What the connection must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPolicy {
    pub mode: SslMode,
    pub tls: TlsUse,
    /// Verify the server's chain against these roots; `None`: no
    /// verification at all (`prefer`, `require` without a CA).
    pub verify_chain: Option<Roots>,
    /// Also check the host name (or IP) of the URL against the certificate.
    pub verify_host: bool,
    /// The client certificate and key files, presented when asked.
    pub client: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTlsError(pub String);

impl fmt::Display for PgTlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PgTlsError {}

/// The parameters this module owns; the rest of the URL is the client's.
const OURS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Takes `sslmode`, `sslrootcert`, `sslcert` and `sslkey` out of a store
/// URL's query. Returns the URL without them and what they said. A
/// parameter given twice is refused (which one would win is a guess).
pub fn split_url(url: &str) -> Result<(String, TlsParams), PgTlsError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), TlsParams::default()));
    };
    let mut params = TlsParams::default();
    let mut rest = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !OURS.contains(&key) {
            rest.push(pair);
            continue;
        }
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| PgTlsError(format!("{key} is not UTF-8")))?
            .into_owned();
        if value.is_empty() {
            return Err(PgTlsError(format!("{key} is empty")));
        }
        let twice = || PgTlsError(format!("{key} is given twice"));
        match key {
            "sslmode" => {
                if params.mode.replace(SslMode::parse(&value)?).is_some() {
                    return Err(twice());
                }
            }
            "sslrootcert" => {
                if params.root_cert.replace(value).is_some() {
                    return Err(twice());
                }
            }
            "sslcert" => {
                if params.client_cert.replace(value).is_some() {
                    return Err(twice());
                }
            }
            _ => {
                if params.client_key.replace(value).is_some() {
                    return Err(twice());
                }
            }
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, params))
}

/// The policy for `params` on a connection to a TCP host (`unix_socket`
/// false) or a Unix socket.
pub fn decide(params: &TlsParams, unix_socket: bool) -> Result<TlsPolicy, PgTlsError> {
    let mode = params.mode.unwrap_or(SslMode::Prefer);
    let client = match (&params.client_cert, &params.client_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        (Some(_), None) => {
            return Err(PgTlsError(
                "sslcert is given without sslkey: give both, or neither".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(PgTlsError(
                "sslkey is given without sslcert: give both, or neither".into(),
            ))
        }
    };
    let roots = params.root_cert.as_ref().map(|r| {
        if r == "system" {
            Roots::System
        } else {
            Roots::File(r.clone())
        }
    });
    let ignored = |what: &str| {
        PgTlsError(format!(
            "{what} is given but sslmode={} would not use it; use sslmode=verify-full (or verify-ca, require)",
            mode.as_str()
        ))
    };
    let (tls, verify_chain, verify_host) = match mode {
        SslMode::Disable | SslMode::Prefer => {
            if roots.is_some() {
                return Err(ignored("a CA (sslrootcert or store_ca_file)"));
            }
            if client.is_some() {
                return Err(ignored("a client certificate (sslcert, sslkey)"));
            }
            let tls = if mode == SslMode::Disable {
                TlsUse::Never
            } else {
                TlsUse::IfOffered
            };
            (tls, None, false)
        }
        SslMode::Require => (TlsUse::Always, roots, false),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let Some(roots) = roots else {
                return Err(PgTlsError(format!(
                    "sslmode={} needs the CA that signed the server's certificate: sslrootcert=FILE in the store URL, store_ca_file in hub.toml, or sslrootcert=system for the system's roots",
                    mode.as_str()
                )));
            };
            (TlsUse::Always, Some(roots), mode == SslMode::VerifyFull)
        }
    };
    if unix_socket && tls == TlsUse::Always {
        return Err(PgTlsError(format!(
            "sslmode={} needs a TCP host: PostgreSQL does not speak TLS on a Unix socket",
            mode.as_str()
        )));
    }
    Ok(TlsPolicy {
        mode,
        tls,
        verify_chain,
        verify_host,
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(mode: Option<SslMode>, ca: bool, cert: bool, key: bool) -> TlsParams {
        TlsParams {
            mode,
            root_cert: ca.then(|| "/ca.pem".to_owned()),
            client_cert: cert.then(|| "/c.pem".to_owned()),
            client_key: key.then(|| "/k.pem".to_owned()),
        }
    }

    /// Every mode (and none) against every combination of CA, client
    /// certificate, client key and socket kind.
    #[test]
    fn the_ladder_against_every_combination() {
        let modes = [None]
            .into_iter()
            .chain(SSL_MODES.into_iter().map(Some))
            .collect::<Vec<_>>();
        for mode in modes {
            for ca in [false, true] {
                for cert in [false, true] {
                    for key in [false, true] {
                        for unix in [false, true] {
                            let p = params(mode, ca, cert, key);
                            let got = decide(&p, unix);
                            let m = mode.unwrap_or(SslMode::Prefer);
                            let weak = matches!(m, SslMode::Disable | SslMode::Prefer);
                            let verifying = matches!(m, SslMode::VerifyCa | SslMode::VerifyFull);
                            let should_fail = cert != key
                                || (weak && (ca || cert))
                                || (verifying && !ca)
                                || (unix && !weak);
                            let label =
                                format!("{mode:?} ca={ca} cert={cert} key={key} unix={unix}");
                            if should_fail {
                                assert!(got.is_err(), "{label}: {got:?}");
                                continue;
                            }
                            let got = got.unwrap_or_else(|e| panic!("{label}: {e}"));
                            assert_eq!(got.mode, m, "{label}");
                            let tls = match m {
                                SslMode::Disable => TlsUse::Never,
                                SslMode::Prefer => TlsUse::IfOffered,
                                _ => TlsUse::Always,
                            };
                            assert_eq!(got.tls, tls, "{label}");
                            // The chain is checked exactly when a CA is
                            // given (verify-* require one; require takes it).
                            assert_eq!(got.verify_chain.is_some(), ca, "{label}");
                            assert_eq!(got.verify_host, m == SslMode::VerifyFull, "{label}");
                            assert_eq!(got.client.is_some(), cert, "{label}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn system_roots_and_file_roots() {
        let mut p = params(Some(SslMode::VerifyFull), true, false, false);
        assert_eq!(
            decide(&p, false).unwrap().verify_chain,
            Some(Roots::File("/ca.pem".into()))
        );
        p.root_cert = Some("system".into());
        assert_eq!(decide(&p, false).unwrap().verify_chain, Some(Roots::System));
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = decide(
            &params(Some(SslMode::VerifyFull), false, false, false),
            false,
        )
        .unwrap_err()
        .0;
        assert!(
            e.contains("sslrootcert") && e.contains("store_ca_file"),
            "{e}"
        );
        let e = decide(&params(Some(SslMode::Disable), true, false, false), false)
            .unwrap_err()
            .0;
        assert!(
            e.contains("sslmode=disable") && e.contains("verify-full"),
            "{e}"
        );
        let e = decide(&params(Some(SslMode::Require), false, false, false), true)
            .unwrap_err()
            .0;
        assert!(e.contains("Unix socket"), "{e}");
    }

    #[test]
    fn split_url_takes_out_only_the_tls_parameters() {
        let (url, p) = split_url("postgres://isac@db:5432/hub").unwrap();
        assert_eq!(url, "postgres://isac@db:5432/hub");
        assert_eq!(p, TlsParams::default());

        let (url, p) = split_url(
            "postgres://isac@db/hub?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem&sslcert=/c.pem&sslkey=/k.pem",
        )
        .unwrap();
        assert_eq!(url, "postgres://isac@db/hub?application_name=x");
        assert_eq!(
            p,
            TlsParams {
                mode: Some(SslMode::VerifyFull),
                root_cert: Some("/etc/ca.pem".into()),
                client_cert: Some("/c.pem".into()),
                client_key: Some("/k.pem".into()),
            }
        );

        let (url, p) = split_url("postgres://isac@db/hub?sslmode=disable").unwrap();
        assert_eq!(url, "postgres://isac@db/hub");
        assert_eq!(p.mode, Some(SslMode::Disable));
    }

    #[test]
    fn split_url_refuses_unknown_modes_repeats_and_empty_values() {
        for (bad, says) in [
            ("postgres://a@b/c?sslmode=allow", "not one of"),
            ("postgres://a@b/c?sslmode=VERIFY-FULL", "not one of"),
            ("postgres://a@b/c?sslmode=require&sslmode=disable", "twice"),
            ("postgres://a@b/c?sslrootcert=/a&sslrootcert=/b", "twice"),
            ("postgres://a@b/c?sslrootcert=", "empty"),
            ("postgres://a@b/c?sslkey", "empty"),
            ("postgres://a@b/c?sslcert=%FF", "UTF-8"),
        ] {
            let e = split_url(bad).unwrap_err().0;
            assert!(e.contains(says), "{bad}: {e}");
        }
        for m in SSL_MODES {
            assert_eq!(SslMode::parse(m.as_str()), Ok(m));
        }
    }
}
