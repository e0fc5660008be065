//! The DSSE envelope (Sigstore / in-toto): a payload type, the exact payload
//! bytes, and signatures over `PAE(payloadType, payload)`.
//!
//! The hub never re-encodes a payload; these bytes are what was signed.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Payload type of a v1 statement (declaration-order JSON; verifiable
/// forever, no longer produced).
pub const PAYLOAD_TYPE_STATEMENT_V1: &str = "application/vnd.isac.statement.v1+json";
/// Payload type of a v2 statement (RFC 8785 canonical JSON): what new
/// statements are signed as.
pub const PAYLOAD_TYPE_STATEMENT_V2: &str = "application/vnd.isac.statement.v2+json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub keyid: String,
    pub sig: Vec<u8>,
}

/// DSSE v1 Pre-Authentication Encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal. Binding the type stops a payload being reinterpreted as another.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// The standard DSSE JSON form, for files, exports and the agent's store.
#[derive(Debug, Serialize, Deserialize)]
struct EnvelopeJson {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: String,
    signatures: Vec<SignatureJson>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SignatureJson {
    keyid: String,
    sig: String,
}

#[derive(Debug, thiserror::Error)]
#[error("not a DSSE envelope: {0}")]
pub struct BadEnvelopeJson(String);

impl Envelope {
    pub fn to_json(&self) -> String {
        let json = EnvelopeJson {
            payload_type: self.payload_type.clone(),
            payload: B64.encode(&self.payload),
            signatures: self
                .signatures
                .iter()
                .map(|s| SignatureJson {
                    keyid: s.keyid.clone(),
                    sig: B64.encode(&s.sig),
                })
                .collect(),
        };
        serde_json::to_string(&json).expect("envelope JSON is always serialisable")
    }

    pub fn from_json(text: &str) -> Result<Self, BadEnvelopeJson> {
        let json: EnvelopeJson =
            serde_json::from_str(text).map_err(|e| BadEnvelopeJson(e.to_string()))?;
        let payload = B64
            .decode(&json.payload)
            .map_err(|e| BadEnvelopeJson(format!("payload is not base64: {e}")))?;
        let signatures = json
            .signatures
            .into_iter()
            .map(|s| {
                Ok(Signature {
                    sig: B64
                        .decode(&s.sig)
                        .map_err(|e| BadEnvelopeJson(format!("sig is not base64: {e}")))?,
                    keyid: s.keyid,
                })
            })
            .collect::<Result<_, BadEnvelopeJson>>()?;
        Ok(Envelope {
            payload_type: json.payload_type,
            payload,
            signatures,
        })
    }

    /// SHA-256 of the PAE bytes: a stable digest of what was signed, used to
    /// tell a redelivery from a different statement reusing an id.
    pub fn digest(&self) -> String {
        let d = openssl::sha::sha256(&pae(&self.payload_type, &self.payload));
        crate::hex::encode(&d)
    }

    /// [`Self::digest`] in its one written form, `sha256:<hex>`: what
    /// every sink, export and `show` print as `envelope_digest`.
    pub fn digest_ref(&self) -> String {
        digest_ref(&self.digest())
    }
}

/// The written form of an envelope digest: `sha256:` and the lowercase hex
/// SHA-256 of the PAE (docs/protocol.md). Only STIX `hashes` values stay
/// bare hex, as STIX requires.
pub fn digest_ref(hex_digest: &str) -> String {
    format!("sha256:{hex_digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn json_round_trip() {
        let e = Envelope {
            payload_type: PAYLOAD_TYPE_STATEMENT_V1.into(),
            payload: b"{\"a\":1}".to_vec(),
            signatures: vec![Signature {
                keyid: "ab".into(),
                sig: vec![1, 2, 3],
            }],
        };
        let back = Envelope::from_json(&e.to_json()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.digest(), e.digest());
        assert_eq!(e.digest_ref(), format!("sha256:{}", e.digest()));
        assert_eq!(e.digest().len(), 64);
    }

    #[test]
    fn json_rejects_bad_base64() {
        let err = Envelope::from_json(r#"{"payloadType":"x","payload":"***","signatures":[]}"#);
        assert!(err.is_err());
    }
}
