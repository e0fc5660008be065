//! The agent's state directory: its identity, keys and local database.
//!
//! Layout: `identity.json ca.crt tls.crt tls.key signing.key agent.db`.
//! Private key files are created with mode 0600 and never leave this
//! directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::error::{io_err, AgentError};

/// `identity.json`; `isac-client` reads it (with `ca.crt`, `tls.crt`,
/// `tls.key`) for anything that only connects, such as `hub --remote`.
pub use isac_client::Identity;

pub struct StateDir {
    pub root: PathBuf,
}

/// What an enrolled agent loads to talk to the hub and sign.
pub struct Loaded {
    pub identity: Identity,
    pub ca: X509,
    pub tls_cert: X509,
    pub tls_key: PKey<Private>,
    pub signing_key: isac_core::SigningKey,
    /// The hub's directory signing key, pinned at enrollment.
    pub hub_directory_key: isac_core::VerifyingKey,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn is_enrolled(&self) -> bool {
        self.path("identity.json").exists()
    }

    pub fn ensure(&self) -> Result<(), AgentError> {
        fs::create_dir_all(&self.root).map_err(io_err(&self.root))?;
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))
            .map_err(io_err(&self.root))
    }

    pub fn write_private(&self, name: &str, bytes: &[u8]) -> Result<(), AgentError> {
        write_with_mode(&self.path(name), bytes, 0o600)
    }

    pub fn write_public(&self, name: &str, bytes: &[u8]) -> Result<(), AgentError> {
        write_with_mode(&self.path(name), bytes, 0o644)
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, AgentError> {
        let p = self.path(name);
        fs::read(&p).map_err(io_err(&p))
    }

    pub fn load(&self) -> Result<Loaded, AgentError> {
        if !self.is_enrolled() {
            return Err(AgentError::NotEnrolled(self.root.display().to_string()));
        }
        let isac_client::Credentials {
            identity,
            ca,
            tls_cert,
            tls_key,
        } = isac_client::Credentials::load(&self.root)?;
        let bad = |name: &str, e: String| {
            AgentError::Crypto(format!("{}: {e}", self.path(name).display()))
        };
        let signing_key = isac_core::SigningKey::from_pkcs8_pem(&self.read("signing.key")?)
            .map_err(|e| bad("signing.key", e.to_string()))?;
        let hub_directory_key =
            isac_core::VerifyingKey::from_spki_der(&self.read("hub-directory.pub")?)
                .map_err(|e| bad("hub-directory.pub", e.to_string()))?;
        if hub_directory_key.key_id() != identity.hub_directory_key_id {
            return Err(bad(
                "hub-directory.pub",
                "does not match identity.json".into(),
            ));
        }
        Ok(Loaded {
            identity,
            ca,
            tls_cert,
            tls_key,
            signing_key,
            hub_directory_key,
        })
    }

    pub fn save_identity(&self, identity: &Identity) -> Result<(), AgentError> {
        let json =
            serde_json::to_vec_pretty(identity).map_err(|e| AgentError::Invalid(e.to_string()))?;
        self.write_public("identity.json", &json)
    }
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AgentError> {
    isac_client::files::write_atomic(path, bytes, mode).map_err(|e| io_err(&e.path)(e.source))
}
