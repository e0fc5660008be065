//! An enrolled agent's state dir, as far as connecting goes:
//! `identity.json` (hub URL, organisation), `ca.crt` (the hub CA pinned at
//! enrollment), `tls.crt` and `tls.key` (the client certificate and its
//! key). The agent's signing keys and database are none of our business.

use std::fs;
use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde::{Deserialize, Serialize};

use crate::connect::{Connector, Trust};
use crate::error::ClientError;

pub const IDENTITY_FILE: &str = "identity.json";
pub const CA_FILE: &str = "ca.crt";
pub const TLS_CERT_FILE: &str = "tls.crt";
pub const TLS_KEY_FILE: &str = "tls.key";

/// `identity.json`: who this agent is and where its hub is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub hub_url: String,
    pub org_id: String,
    pub agent_name: String,
    pub signing_key_id: String,
    pub ca_fingerprint: String,
    pub enrolled_at: String,
    /// Key id of the hub's directory key (pinned at enrollment).
    pub hub_directory_key_id: String,
    /// Every URL of the hub (replicas, in order of preference) when
    /// `enroll --hub` was given more than once; absent in identities
    /// written before fail-over, which have only `hub_url`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hubs: Vec<String>,
}

impl Identity {
    /// The hub's URLs in order of preference: `hubs`, else `hub_url` alone.
    pub fn hub_urls(&self) -> Vec<String> {
        if self.hubs.is_empty() {
            vec![self.hub_url.clone()]
        } else {
            self.hubs.clone()
        }
    }
}

/// Everything needed to open an mTLS connection to the hub as this agent.
pub struct Credentials {
    pub identity: Identity,
    /// The hub CA pinned at enrollment: the only thing trusted.
    pub ca: X509,
    pub tls_cert: X509,
    pub tls_key: PKey<Private>,
}

impl Credentials {
    /// Reads the identity, the pinned CA and the client certificate and key
    /// from an enrolled agent's state dir.
    pub fn load(dir: &Path) -> Result<Self, ClientError> {
        let identity_path = dir.join(IDENTITY_FILE);
        if !identity_path.exists() {
            return Err(ClientError::NotEnrolled {
                dir: dir.to_owned(),
            });
        }
        let identity = {
            let what = "agent identity";
            let bytes = read(&identity_path, what)?;
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Invalid {
                path: identity_path.clone(),
                what,
                reason: e.to_string(),
            })?
        };
        let ca = read_pem(dir, CA_FILE, "pinned hub CA certificate", X509::from_pem)?;
        let tls_cert = read_pem(dir, TLS_CERT_FILE, "client certificate", X509::from_pem)?;
        let tls_key = read_pem(dir, TLS_KEY_FILE, "client key", PKey::private_key_from_pem)?;
        Ok(Self {
            identity,
            ca,
            tls_cert,
            tls_key,
        })
    }

    /// The hub CA, and this client certificate.
    pub fn trust(&self) -> Trust<'_> {
        Trust::Ca {
            ca: &self.ca,
            client: Some((&self.tls_cert, &self.tls_key)),
        }
    }

    /// A connector for this identity; build it once and clone it.
    pub fn connector(&self) -> Result<Connector, ClientError> {
        Connector::new(self.trust())
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, ClientError> {
    fs::read(path).map_err(|cause| ClientError::Read {
        path: path.to_owned(),
        what,
        cause,
    })
}

fn read_pem<T>(
    dir: &Path,
    name: &str,
    what: &'static str,
    parse: impl FnOnce(&[u8]) -> Result<T, openssl::error::ErrorStack>,
) -> Result<T, ClientError> {
    let path: PathBuf = dir.join(name);
    let bytes = read(&path, what)?;
    parse(&bytes).map_err(|e| ClientError::Invalid {
        path,
        what,
        reason: if bytes.starts_with(b"-----BEGIN ") {
            format!("unreadable PEM ({e})")
        } else {
            "not PEM (no -----BEGIN line)".to_owned()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::x509::X509NameBuilder;
    use std::os::unix::fs::PermissionsExt;

    fn key() -> PKey<Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    fn self_signed(cn: &str, key: &PKey<Private>) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(key, MessageDigest::sha256()).unwrap();
        b.build()
    }

    /// A complete state dir as enrollment leaves it (the parts we read).
    fn enrolled() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = key();
        let tls_key = key();
        let identity = Identity {
            hub_url: "https://127.0.0.1:7443".into(),
            org_id: "acme-bank".into(),
            agent_name: "soc-1".into(),
            signing_key_id: "00".repeat(32),
            ca_fingerprint: "11".repeat(32),
            enrolled_at: "2026-01-01T00:00:00Z".into(),
            hub_directory_key_id: "22".repeat(32),
            hubs: Vec::new(),
        };
        let p = dir.path();
        fs::write(
            p.join(IDENTITY_FILE),
            serde_json::to_vec(&identity).unwrap(),
        )
        .unwrap();
        fs::write(
            p.join(CA_FILE),
            self_signed("hub CA", &ca_key).to_pem().unwrap(),
        )
        .unwrap();
        fs::write(
            p.join(TLS_CERT_FILE),
            self_signed("acme-bank", &tls_key).to_pem().unwrap(),
        )
        .unwrap();
        fs::write(
            p.join(TLS_KEY_FILE),
            tls_key.private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        dir
    }

    fn load_err(dir: &Path) -> (ClientError, String) {
        let e = Credentials::load(dir).err().expect("load should fail");
        let text = e.to_string();
        (e, text)
    }

    #[test]
    fn loads_an_enrolled_state_dir_and_builds_a_connector() {
        let dir = enrolled();
        let creds = Credentials::load(dir.path()).unwrap();
        assert_eq!(creds.identity.org_id, "acme-bank");
        assert_eq!(creds.identity.hub_url, "https://127.0.0.1:7443");
        // Written before fail-over (no `hubs`): the one URL is the list.
        assert_eq!(creds.identity.hub_urls(), ["https://127.0.0.1:7443"]);
        let mut two = creds.identity.clone();
        two.hubs = vec!["https://a:1".into(), "https://b:2".into()];
        let back: Identity = serde_json::from_slice(&serde_json::to_vec(&two).unwrap()).unwrap();
        assert_eq!(back.hub_urls(), ["https://a:1", "https://b:2"]);
        creds.connector().expect("connector");
    }

    #[test]
    fn a_dir_without_identity_is_not_enrolled() {
        let dir = tempfile::tempdir().unwrap();
        let (e, text) = load_err(dir.path());
        assert!(matches!(e, ClientError::NotEnrolled { .. }), "{e:?}");
        assert!(text.contains("run `member-agent --state-dir"), "{text}");
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
    }

    #[test]
    fn each_missing_file_is_named() {
        for (name, what) in [
            (CA_FILE, "pinned hub CA certificate"),
            (TLS_CERT_FILE, "client certificate"),
            (TLS_KEY_FILE, "client key"),
        ] {
            let dir = enrolled();
            fs::remove_file(dir.path().join(name)).unwrap();
            let (e, text) = load_err(dir.path());
            assert!(matches!(e, ClientError::Read { .. }), "{e:?}");
            let path = dir.path().join(name).display().to_string();
            assert!(
                text.starts_with(&format!("cannot read the {what} {path}: ")),
                "{text}"
            );
            assert!(text.contains("enroll again with --force"), "{text}");
        }
    }

    #[test]
    fn an_unreadable_key_says_whose_file_it_is() {
        let dir = enrolled();
        let key = dir.path().join(TLS_KEY_FILE);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o000)).unwrap();
        if fs::read(&key).is_ok() {
            return; // running as root: permissions do not stop us
        }
        let (_, text) = load_err(dir.path());
        assert!(text.contains("client key"), "{text}");
        assert!(text.contains("the user that owns the state dir"), "{text}");
    }

    #[test]
    fn bad_pem_is_named_with_the_file() {
        let dir = enrolled();
        fs::write(dir.path().join(TLS_CERT_FILE), b"hello").unwrap();
        let (e, text) = load_err(dir.path());
        assert!(matches!(e, ClientError::Invalid { .. }), "{e:?}");
        let path = dir.path().join(TLS_CERT_FILE).display().to_string();
        assert_eq!(
            text,
            format!(
                "{path} is not a valid client certificate: not PEM (no -----BEGIN line); \
                 restore it, or enroll again with --force"
            )
        );

        let dir = enrolled();
        fs::write(
            dir.path().join(CA_FILE),
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let (_, text) = load_err(dir.path());
        assert!(
            text.contains("is not a valid pinned hub CA certificate: unreadable PEM ("),
            "{text}"
        );

        // A certificate where the key should be.
        let dir = enrolled();
        fs::copy(
            dir.path().join(TLS_CERT_FILE),
            dir.path().join(TLS_KEY_FILE),
        )
        .unwrap();
        let (_, text) = load_err(dir.path());
        assert!(text.contains("is not a valid client key"), "{text}");
    }

    #[test]
    fn a_damaged_identity_file_is_named() {
        let dir = enrolled();
        fs::write(dir.path().join(IDENTITY_FILE), b"{\"hub_url\": 1}").unwrap();
        let (_, text) = load_err(dir.path());
        assert!(
            text.starts_with(&format!(
                "{} is not a valid agent identity: ",
                dir.path().join(IDENTITY_FILE).display()
            )),
            "{text}"
        );
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_when_connecting() {
        let dir = enrolled();
        fs::write(
            dir.path().join(TLS_KEY_FILE),
            key().private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        let creds = Credentials::load(dir.path()).unwrap();
        let e = creds.connector().err().expect("mismatch");
        assert!(matches!(e, ClientError::KeyMismatch), "{e}");
        assert!(e.to_string().contains("enroll again with --force"), "{e}");
    }
}
