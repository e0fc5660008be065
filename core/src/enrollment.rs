//! The enrollment token and the proof-of-possession message, shared by the
//! hub (which issues and checks) and the agent (which parses and signs).
//!
//! A token is `isac1.ORG_ID.SECRET.CA_SHA256`: the organisation it enrolls,
//! a random secret (base64url, the hub stores only its SHA-256), and the
//! SHA-256 of the hub CA certificate so the agent can pin the hub before
//! trusting anything it says (as kubeadm's discovery hash does).

use crate::statement::is_slug;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentToken {
    pub org_id: String,
    pub secret: String,
    pub ca_fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed enrollment token: {0}; it looks like isac1.ORG_ID.SECRET.CA_SHA256 as printed by `hub member add`")]
pub struct BadToken(&'static str);

impl EnrollmentToken {
    pub fn parse(s: &str) -> Result<Self, BadToken> {
        let s = s.trim();
        if s.len() > 512 {
            return Err(BadToken("too long"));
        }
        let parts: Vec<&str> = s.split('.').collect();
        let [version, org, secret, fp] = parts.as_slice() else {
            return Err(BadToken("wrong number of parts"));
        };
        if *version != "isac1" {
            return Err(BadToken("unknown version prefix"));
        }
        if !is_slug(org) {
            return Err(BadToken("bad organisation id"));
        }
        if secret.len() < 32
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(BadToken("bad secret"));
        }
        if !crate::hex::is_hex_of_len(fp, 64) {
            return Err(BadToken("bad CA fingerprint"));
        }
        Ok(Self {
            org_id: (*org).to_owned(),
            secret: (*secret).to_owned(),
            ca_fingerprint: fp.to_ascii_lowercase(),
        })
    }

    /// What the hub stores instead of the secret.
    pub fn secret_hash(&self) -> String {
        crate::hex::encode(&openssl::sha::sha256(self.secret.as_bytes()))
    }
}

impl std::fmt::Display for EnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "isac1.{}.{}.{}",
            self.org_id, self.secret, self.ca_fingerprint
        )
    }
}

/// The bytes an enrolling agent signs with its new signing key, binding the
/// key to this token and this CSR.
pub fn proof_message(token: &str, csr_der: &[u8]) -> Vec<u8> {
    let mut m = b"isac-enroll-v1\n".to_vec();
    m.extend_from_slice(token.trim().as_bytes());
    m.push(b'\n');
    m.extend_from_slice(&openssl::sha::sha256(csr_der));
    m
}

/// The bytes both the current and the new signing key sign to rotate.
pub fn rotation_message(org_id: &str, new_key_id: &str, current_key_id: &str) -> Vec<u8> {
    format!("isac-rotate-v1\n{org_id}\n{new_key_id}\n{current_key_id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> EnrollmentToken {
        EnrollmentToken {
            org_id: "acme-bank".into(),
            secret: "A".repeat(43),
            ca_fingerprint: "ab".repeat(32),
        }
    }

    #[test]
    fn round_trip() {
        let t = token();
        assert_eq!(EnrollmentToken::parse(&t.to_string()).unwrap(), t);
        assert_eq!(EnrollmentToken::parse(&format!(" {t}\n")).unwrap(), t);
        assert_eq!(t.secret_hash().len(), 64);
    }

    #[test]
    fn refuses_garbage() {
        let t = token().to_string();
        for bad in [
            "",
            "isac1",
            &t.replace("isac1", "isac2"),
            &t.replace("acme-bank", "Acme"),
            &format!("{t}.extra"),
            &t.replace(&"ab".repeat(32), "xyz"),
            &t.replace(&"A".repeat(43), "short"),
        ] {
            assert!(EnrollmentToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proof_binds_token_and_csr() {
        assert_ne!(proof_message("a", b"csr"), proof_message("b", b"csr"));
        assert_ne!(proof_message("a", b"csr1"), proof_message("a", b"csr2"));
    }
}
