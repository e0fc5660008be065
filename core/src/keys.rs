//! Ed25519 signing keys through OpenSSL. A key id is the lowercase hex
//! SHA-256 of the public key's SubjectPublicKeyInfo (DER), so a key id names
//! exactly one key.

use openssl::pkey::{Id, PKey, Private, Public};
use openssl::sign::{Signer, Verifier};

use crate::envelope::{pae, Envelope, Signature};

pub type KeyId = String;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an Ed25519 key")]
    NotEd25519,
    #[error("could not read key: {0}")]
    Decode(String),
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// A member's private Ed25519 key. It never leaves the member's machine.
#[derive(Clone)]
pub struct SigningKey {
    pkey: PKey<Private>,
    /// Its key id, taken once: every signature names it, and deriving it
    /// (SPKI DER out, back in, out again) goes through OpenSSL 3's encoder
    /// and decoder set-up, which cost several times the signature itself
    /// (most of a bulk import's signing time before it was kept here).
    key_id: KeyId,
}

/// DER of an Ed25519 SubjectPublicKeyInfo before its 32 key bytes
/// (RFC 8410: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING }).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A public Ed25519 key as served by the key directory.
#[derive(Clone)]
pub struct VerifyingKey {
    pkey: PKey<Public>,
    spki_der: Vec<u8>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.key_id())
    }
}

impl SigningKey {
    /// The one way a `SigningKey` is made: the key id computed here, once.
    fn from_pkey(pkey: PKey<Private>) -> Result<Self, KeyError> {
        if pkey.id() != Id::ED25519 {
            return Err(KeyError::NotEd25519);
        }
        let key_id = VerifyingKey::from_spki_der(&pkey.public_key_to_der()?)?.key_id();
        Ok(Self { pkey, key_id })
    }

    pub fn generate() -> Result<Self, KeyError> {
        Self::from_pkey(PKey::generate_ed25519()?)
    }

    pub fn from_pkcs8_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let pkey = PKey::private_key_from_pem(pem).map_err(|e| KeyError::Decode(e.to_string()))?;
        Self::from_pkey(pkey)
    }

    /// The key from its 32-byte RFC 8032 seed (the form C2SP signed-note
    /// signer keys carry).
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, KeyError> {
        Self::from_pkey(PKey::private_key_from_raw_bytes(seed, Id::ED25519)?)
    }

    /// The key id of its public half (what `verifying_key().key_id()`
    /// gives, without deriving it again).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The 32-byte RFC 8032 seed. Secret: only for writing a signer key.
    pub fn seed(&self) -> Result<[u8; 32], KeyError> {
        self.pkey
            .raw_private_key()?
            .try_into()
            .map_err(|_| KeyError::NotEd25519)
    }

    pub fn to_pkcs8_pem(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.pkey.private_key_to_pem_pkcs8()?)
    }

    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        VerifyingKey::from_spki_der(&self.pkey.public_key_to_der()?)
    }

    /// Raw Ed25519 signature over `message`.
    pub fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut signer = Signer::new_without_digest(&self.pkey)?;
        Ok(signer.sign_oneshot_to_vec(message)?)
    }

    /// Signs `payload` into a DSSE envelope with one signature.
    pub fn sign_envelope(
        &self,
        payload_type: &str,
        payload: Vec<u8>,
    ) -> Result<Envelope, KeyError> {
        let sig = self.sign_raw(&pae(payload_type, &payload))?;
        Ok(Envelope {
            payload_type: payload_type.to_owned(),
            payload,
            signatures: vec![Signature {
                keyid: self.key_id.clone(),
                sig,
            }],
        })
    }

    /// Signs `statement` in the current format ([`Format::CURRENT`], v2):
    /// what every new publish uses.
    pub fn sign_statement(&self, statement: &crate::Statement) -> Result<Envelope, KeyError> {
        self.sign_statement_as(statement, crate::Format::CURRENT)
    }

    /// Signs `statement` in `format` (the hub's anonymous copy keeps the
    /// format of the original).
    pub fn sign_statement_as(
        &self,
        statement: &crate::Statement,
        format: crate::Format,
    ) -> Result<Envelope, KeyError> {
        self.sign_envelope(format.payload_type(), statement.encode(format))
    }
}

impl VerifyingKey {
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        // The canonical form is a fixed prefix and the 32 raw bytes: read
        // it without OpenSSL's generic decoder and encoder, which cost
        // more than the signature check itself on every publish.
        if let Some(raw) = der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
            if raw.len() == 32 {
                return Self::from_raw(raw);
            }
        }
        let pkey = PKey::public_key_from_der(der).map_err(|e| KeyError::Decode(e.to_string()))?;
        if pkey.id() != Id::ED25519 {
            return Err(KeyError::NotEd25519);
        }
        // Re-encode so the key id is computed over one canonical DER form.
        let spki_der = pkey.public_key_to_der()?;
        if spki_der != der {
            return Err(KeyError::Decode("public key DER is not canonical".into()));
        }
        Ok(Self { pkey, spki_der })
    }

    /// The key from its 32-byte RFC 8032 encoding (C2SP signed-note vkeys).
    pub fn from_raw(raw: &[u8]) -> Result<Self, KeyError> {
        if raw.len() != 32 {
            return Err(KeyError::Decode("an Ed25519 public key is 32 bytes".into()));
        }
        let pkey = PKey::public_key_from_raw_bytes(raw, Id::ED25519)
            .map_err(|e| KeyError::Decode(e.to_string()))?;
        let spki_der = [&ED25519_SPKI_PREFIX[..], raw].concat();
        Ok(Self { pkey, spki_der })
    }

    /// The 32-byte RFC 8032 encoding.
    pub fn raw(&self) -> Result<[u8; 32], KeyError> {
        self.pkey
            .raw_public_key()?
            .try_into()
            .map_err(|_| KeyError::NotEd25519)
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The SubjectPublicKeyInfo as PEM (`-----BEGIN PUBLIC KEY-----`), what
    /// `openssl pkeyutl -pubin -inkey` reads.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        let pem = self.pkey.public_key_to_pem()?;
        String::from_utf8(pem).map_err(|e| KeyError::Decode(e.to_string()))
    }

    pub fn key_id(&self) -> KeyId {
        crate::hex::encode(&openssl::sha::sha256(&self.spki_der))
    }

    /// True only for a valid 64-byte Ed25519 signature over `message`.
    pub fn verify_raw(&self, message: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 64 {
            return false;
        }
        match Verifier::new_without_digest(&self.pkey) {
            Ok(mut v) => v.verify_oneshot(sig, message).unwrap_or(false),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key id kept at construction is the one derived from the public
    /// half, whichever way the key was made, and the one signatures name.
    #[test]
    fn the_kept_key_id_is_the_public_keys() {
        let generated = SigningKey::generate().unwrap();
        let from_pem = SigningKey::from_pkcs8_pem(&generated.to_pkcs8_pem().unwrap()).unwrap();
        let from_seed = SigningKey::from_seed(&generated.seed().unwrap()).unwrap();
        let other = SigningKey::generate().unwrap();
        for k in [&generated, &from_pem, &from_seed, &other] {
            let v = k.verifying_key().unwrap();
            assert_eq!(k.key_id(), v.key_id());
            let env = k
                .sign_envelope("application/x-test", b"x".to_vec())
                .unwrap();
            assert_eq!(env.signatures[0].keyid, v.key_id());
            assert!(v.verify_raw(&pae("application/x-test", b"x"), &env.signatures[0].sig));
        }
        assert_eq!(from_pem.key_id(), generated.key_id());
        assert_eq!(from_seed.key_id(), generated.key_id());
        assert_ne!(other.key_id(), generated.key_id());
        // Not Ed25519: refused when read, as before.
        let ec = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let pem = PKey::from_ec_key(ec)
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        assert!(matches!(
            SigningKey::from_pkcs8_pem(&pem),
            Err(KeyError::NotEd25519)
        ));
    }

    #[test]
    fn sign_and_verify() {
        let k = SigningKey::generate().unwrap();
        let v = k.verifying_key().unwrap();
        let sig = k.sign_raw(b"hello").unwrap();
        assert_eq!(sig.len(), 64);
        assert!(v.verify_raw(b"hello", &sig));
        assert!(!v.verify_raw(b"hellO", &sig));
        let mut bad = sig.clone();
        bad[0] ^= 1;
        assert!(!v.verify_raw(b"hello", &bad));
        assert!(!v.verify_raw(b"hello", &sig[..63]));
    }

    #[test]
    fn other_key_does_not_verify() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        let sig = a.sign_raw(b"m").unwrap();
        assert!(!b.verifying_key().unwrap().verify_raw(b"m", &sig));
        assert_ne!(
            a.verifying_key().unwrap().key_id(),
            b.verifying_key().unwrap().key_id()
        );
    }

    #[test]
    fn pem_round_trip_keeps_key_id() {
        let k = SigningKey::generate().unwrap();
        let back = SigningKey::from_pkcs8_pem(&k.to_pkcs8_pem().unwrap()).unwrap();
        assert_eq!(
            k.verifying_key().unwrap().key_id(),
            back.verifying_key().unwrap().key_id()
        );
        let kid = k.verifying_key().unwrap().key_id();
        assert_eq!(kid.len(), 64);
    }

    #[test]
    fn public_pem_is_the_spki_and_reads_back_to_the_same_key_id() {
        let v = SigningKey::generate().unwrap().verifying_key().unwrap();
        let pem = v.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        let back = PKey::public_key_from_pem(pem.as_bytes()).unwrap();
        let again = VerifyingKey::from_spki_der(&back.public_key_to_der().unwrap()).unwrap();
        assert_eq!(again.key_id(), v.key_id());
    }

    #[test]
    fn raw_forms_round_trip() {
        let k = SigningKey::generate().unwrap();
        let seed = k.seed().unwrap();
        let again = SigningKey::from_seed(&seed).unwrap();
        let v = k.verifying_key().unwrap();
        assert_eq!(again.verifying_key().unwrap().key_id(), v.key_id());
        let raw = v.raw().unwrap();
        assert_eq!(VerifyingKey::from_raw(&raw).unwrap().key_id(), v.key_id());
        assert!(VerifyingKey::from_raw(&raw[..31]).is_err());
    }

    /// The prefix read is OpenSSL's own encoding: for many keys, the DER
    /// OpenSSL writes reads back to the same key, and the DER a key
    /// keeps is byte for byte what OpenSSL's encoder writes.
    #[test]
    fn the_spki_prefix_is_openssls_encoding() {
        for _ in 0..64 {
            let v = SigningKey::generate().unwrap().verifying_key().unwrap();
            let openssl_der = v.pkey.public_key_to_der().unwrap();
            assert_eq!(openssl_der, v.spki_der);
            assert_eq!(openssl_der[..12], ED25519_SPKI_PREFIX);
            let back = VerifyingKey::from_spki_der(&openssl_der).unwrap();
            assert_eq!(back.key_id(), v.key_id());
            assert_eq!(back.raw().unwrap(), v.raw().unwrap());
        }
        // The prefix with a short or long key, or trailing bytes: refused.
        let der = SigningKey::generate()
            .unwrap()
            .verifying_key()
            .unwrap()
            .spki_der;
        for bad in [&der[..43], &[&der[..], &[0][..]].concat()[..], &der[..12]] {
            assert!(VerifyingKey::from_spki_der(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_non_ed25519_keys() {
        let ec = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let pkey = PKey::from_ec_key(ec).unwrap();
        let der = pkey.public_key_to_der().unwrap();
        assert!(matches!(
            VerifyingKey::from_spki_der(&der),
            Err(KeyError::NotEd25519)
        ));
        assert!(VerifyingKey::from_spki_der(b"garbage").is_err());
    }
}
