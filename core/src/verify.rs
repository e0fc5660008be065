//! End-to-end verification of a signed statement against a key directory.
//! The hub runs it before storing; every agent runs it again on receipt, so
//! the hub cannot forge or alter what a member said.

use crate::envelope::{pae, Envelope, PAYLOAD_TYPE_STATEMENT_V1, PAYLOAD_TYPE_STATEMENT_V2};
use crate::keys::VerifyingKey;
use crate::statement::{
    Format, InvalidStatement, Statement, MAX_CLOCK_SKEW_SECS, MAX_PAYLOAD_BYTES,
};
use crate::time::{format_rfc3339, UnixSeconds};

/// A key as the directory knows it.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub key: VerifyingKey,
    pub org_id: String,
    /// Statements created before this instant are refused.
    pub valid_from: UnixSeconds,
    /// Routine retirement after a rotation: statements created at or after
    /// it are refused; earlier ones stay valid.
    pub retired_at: Option<UnixSeconds>,
    /// Compromise: statements created at or after this instant are refused.
    pub revoked_at: Option<UnixSeconds>,
}

#[derive(Debug, Clone)]
pub struct VerifiedStatement {
    pub statement: Statement,
    pub key_id: String,
    /// SHA-256 of the PAE bytes: what was signed.
    pub digest: String,
    /// The statement format its payload type named.
    pub format: Format,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("unsupported payload type `{0}`; expected {PAYLOAD_TYPE_STATEMENT_V2} or {PAYLOAD_TYPE_STATEMENT_V1}")]
    PayloadType(String),
    #[error("statement is larger than {MAX_PAYLOAD_BYTES} bytes")]
    TooLarge,
    #[error("expected exactly one signature, found {0}")]
    SignatureCount(usize),
    #[error("signing key {0} is not in the key directory")]
    UnknownKey(String),
    #[error("signature does not verify with key {0}: the statement was altered or signed by another key")]
    BadSignature(String),
    #[error("malformed statement: {0}")]
    Malformed(#[from] InvalidStatement),
    #[error("key {0} is the hub's log key: it signs checkpoints, never statements")]
    LogKey(String),
    #[error("statement claims source `{claimed}` but key {key_id} belongs to `{owner}`")]
    SourceMismatch {
        claimed: String,
        owner: String,
        key_id: String,
    },
    #[error("statement created {created}, before key {key_id} became valid ({valid_from})")]
    KeyNotYetValid {
        key_id: String,
        created: String,
        valid_from: String,
    },
    #[error("key {key_id} was retired at {retired_at}; statement created {created} must be signed with the current key")]
    KeyRetired {
        key_id: String,
        created: String,
        retired_at: String,
    },
    #[error("key {key_id} was revoked at {revoked_at}; statement created {created} is refused")]
    KeyRevoked {
        key_id: String,
        created: String,
        revoked_at: String,
    },
}

/// Verifies `envelope` end to end: payload type, size, the one signature,
/// the key's owner and validity, canonical bytes and statement validity.
/// The signature is checked before the payload is parsed.
pub fn verify_envelope(
    envelope: &Envelope,
    lookup: impl FnOnce(&str) -> Option<KeyRecord>,
) -> Result<VerifiedStatement, VerifyError> {
    let Some(format) = Format::from_payload_type(&envelope.payload_type) else {
        let shown: String = envelope.payload_type.chars().take(80).collect();
        return Err(VerifyError::PayloadType(shown.escape_default().to_string()));
    };
    if envelope.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(VerifyError::TooLarge);
    }
    let [signature] = envelope.signatures.as_slice() else {
        return Err(VerifyError::SignatureCount(envelope.signatures.len()));
    };
    let key_id: String = signature.keyid.chars().take(80).collect();
    let record = lookup(&signature.keyid).ok_or_else(|| VerifyError::UnknownKey(key_id.clone()))?;
    // The directory is keyed by key id, but never trust that: the id must be
    // the digest of the very key we verify with.
    if record.key.key_id() != signature.keyid {
        return Err(VerifyError::UnknownKey(key_id));
    }
    // The directory lists the log key so members can check checkpoints; a
    // leaked or misused log key must not be able to publish.
    if record.org_id == crate::names::LOG_ORG {
        return Err(VerifyError::LogKey(key_id));
    }
    if !record.key.verify_raw(
        &pae(&envelope.payload_type, &envelope.payload),
        &signature.sig,
    ) {
        return Err(VerifyError::BadSignature(key_id));
    }
    // v1 payloads keep their old rules forever; v2 payloads must be the JCS
    // form of what they parse to. The payload type is under the signature.
    let statement = Statement::decode(&envelope.payload, format)?;
    if statement.source != record.org_id {
        return Err(VerifyError::SourceMismatch {
            claimed: statement.source.clone(),
            owner: record.org_id.clone(),
            key_id,
        });
    }
    let created = statement.created_at()?;
    if created < record.valid_from - MAX_CLOCK_SKEW_SECS {
        return Err(VerifyError::KeyNotYetValid {
            key_id,
            created: statement.created.clone(),
            valid_from: format_rfc3339(record.valid_from),
        });
    }
    if let Some(revoked_at) = record.revoked_at {
        if created >= revoked_at {
            return Err(VerifyError::KeyRevoked {
                key_id,
                created: statement.created.clone(),
                revoked_at: format_rfc3339(revoked_at),
            });
        }
    }
    if let Some(retired_at) = record.retired_at {
        if created >= retired_at {
            return Err(VerifyError::KeyRetired {
                key_id,
                created: statement.created.clone(),
                retired_at: format_rfc3339(retired_at),
            });
        }
    }
    Ok(VerifiedStatement {
        statement,
        key_id: signature.keyid.clone(),
        digest: envelope.digest(),
        format,
    })
}

/// True when a statement's creation time is not implausibly far in the
/// future relative to the verifier's clock.
pub fn created_not_in_future(created: UnixSeconds, now: UnixSeconds) -> bool {
    created <= now + MAX_CLOCK_SKEW_SECS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Signature;
    use crate::keys::SigningKey;
    use crate::statement::tests::sample;
    use crate::time::parse_rfc3339;

    struct Fixture {
        key: SigningKey,
        record: KeyRecord,
    }

    fn fixture(org: &str) -> Fixture {
        let key = SigningKey::generate().unwrap();
        let record = KeyRecord {
            key: key.verifying_key().unwrap(),
            org_id: org.into(),
            valid_from: parse_rfc3339("2026-01-01T00:00:00Z").unwrap(),
            retired_at: None,
            revoked_at: None,
        };
        Fixture { key, record }
    }

    fn signed(f: &Fixture, s: &crate::Statement) -> Envelope {
        f.key
            .sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, s.canonical_bytes())
            .unwrap()
    }

    fn lookup(f: &Fixture) -> impl FnOnce(&str) -> Option<KeyRecord> + '_ {
        move |kid| (kid == f.record.key.key_id()).then(|| f.record.clone())
    }

    #[test]
    fn accepts_a_good_statement() {
        let f = fixture("acme-bank");
        let s = sample("acme-bank");
        let env = signed(&f, &s);
        let v = verify_envelope(&env, lookup(&f)).unwrap();
        assert_eq!(v.statement, s);
        assert_eq!(v.key_id, f.record.key.key_id());
        assert_eq!(v.digest, env.digest());
    }

    #[test]
    fn refuses_tampered_payload() {
        let f = fixture("acme-bank");
        let mut env = signed(&f, &sample("acme-bank"));
        let text = String::from_utf8(env.payload.clone()).unwrap();
        env.payload = text.replace("evil-pkg", "good-pkg").into_bytes();
        assert!(matches!(
            verify_envelope(&env, lookup(&f)),
            Err(VerifyError::BadSignature(_))
        ));
    }

    #[test]
    fn refuses_tampered_signature_and_type() {
        let f = fixture("acme-bank");
        let env = signed(&f, &sample("acme-bank"));
        let mut bad = env.clone();
        bad.signatures[0].sig[10] ^= 0x40;
        assert!(matches!(
            verify_envelope(&bad, lookup(&f)),
            Err(VerifyError::BadSignature(_))
        ));
        let mut bad = env.clone();
        bad.payload_type = "application/json".into();
        assert!(matches!(
            verify_envelope(&bad, lookup(&f)),
            Err(VerifyError::PayloadType(_))
        ));
        let mut bad = env.clone();
        bad.signatures.push(bad.signatures[0].clone());
        assert!(matches!(
            verify_envelope(&bad, lookup(&f)),
            Err(VerifyError::SignatureCount(2))
        ));
        let mut bad = env.clone();
        bad.signatures.clear();
        assert!(matches!(
            verify_envelope(&bad, lookup(&f)),
            Err(VerifyError::SignatureCount(0))
        ));
    }

    #[test]
    fn refuses_unknown_key_and_lying_directory() {
        let f = fixture("acme-bank");
        let env = signed(&f, &sample("acme-bank"));
        assert!(matches!(
            verify_envelope(&env, |_| None),
            Err(VerifyError::UnknownKey(_))
        ));
        // A directory that answers the key id with a different key.
        let other = fixture("acme-bank");
        let rec = other.record.clone();
        assert!(matches!(
            verify_envelope(&env, move |_| Some(rec)),
            Err(VerifyError::UnknownKey(_))
        ));
    }

    #[test]
    fn refuses_a_forged_source() {
        // Org A's key, statement claiming org B.
        let a = fixture("org-a");
        let env = signed(&a, &sample("org-b"));
        assert!(matches!(
            verify_envelope(&env, lookup(&a)),
            Err(VerifyError::SourceMismatch { .. })
        ));
    }

    #[test]
    fn the_log_key_never_authors_a_statement() {
        // Listed in the directory under `isac-log` so checkpoints verify; a
        // statement it signs is refused even though its signature is good.
        let log = fixture(crate::names::LOG_ORG);
        let env = signed(&log, &sample(crate::names::LOG_ORG));
        assert!(matches!(
            verify_envelope(&env, lookup(&log)),
            Err(VerifyError::LogKey(_))
        ));
    }

    #[test]
    fn key_validity_window() {
        let mut f = fixture("acme-bank");
        let env = signed(&f, &sample("acme-bank"));
        f.record.valid_from = parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
        assert!(matches!(
            verify_envelope(&env, lookup(&f)),
            Err(VerifyError::KeyNotYetValid { .. })
        ));
        f.record.valid_from = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        f.record.revoked_at = Some(parse_rfc3339("2026-11-25T12:00:00Z").unwrap());
        assert!(matches!(
            verify_envelope(&env, lookup(&f)),
            Err(VerifyError::KeyRevoked { .. })
        ));
        f.record.revoked_at = Some(parse_rfc3339("2026-11-25T12:00:01Z").unwrap());
        assert!(
            verify_envelope(&env, lookup(&f)).is_ok(),
            "signed before revocation stays valid"
        );
    }

    #[test]
    fn refuses_signed_but_non_canonical_payload() {
        let f = fixture("acme-bank");
        let s = sample("acme-bank");
        let spaced = String::from_utf8(s.canonical_bytes())
            .unwrap()
            .replacen(':', ": ", 1);
        let env = f
            .key
            .sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, spaced.into_bytes())
            .unwrap();
        assert!(matches!(
            verify_envelope(&env, lookup(&f)),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn accepts_v1_forever_and_v2_each_under_its_own_type() {
        let f = fixture("acme-bank");
        for s in crate::statement::tests::every_kind("acme-bank") {
            if s.on_behalf_of.is_some() {
                continue; // signed by the hub's attestation key, not acme-bank's
            }
            let v2 = f.key.sign_statement(&s).unwrap();
            assert_eq!(v2.payload_type, PAYLOAD_TYPE_STATEMENT_V2);
            let ok = verify_envelope(&v2, lookup(&f)).unwrap();
            assert_eq!((ok.statement, ok.format), (s.clone(), Format::V2));
            let v1 = signed(&f, &s);
            let ok = verify_envelope(&v1, lookup(&f)).unwrap();
            assert_eq!((ok.statement, ok.format), (s.clone(), Format::V1));
            // Each format's bytes signed under the other's type: refused,
            // even with a good signature.
            for (ty, bytes) in [
                (PAYLOAD_TYPE_STATEMENT_V1, s.canonical_bytes_v2()),
                (PAYLOAD_TYPE_STATEMENT_V2, s.canonical_bytes()),
            ] {
                let env = f.key.sign_envelope(ty, bytes).unwrap();
                assert!(matches!(
                    verify_envelope(&env, lookup(&f)),
                    Err(VerifyError::Malformed(_))
                ));
            }
            // Relabelling a v2 envelope as v1 breaks the signature (the type
            // is in the PAE).
            let mut relabelled = v2.clone();
            relabelled.payload_type = PAYLOAD_TYPE_STATEMENT_V1.into();
            assert!(matches!(
                verify_envelope(&relabelled, lookup(&f)),
                Err(VerifyError::BadSignature(_))
            ));
        }
    }

    #[test]
    fn v2_accepts_only_the_jcs_bytes_whatever_order_the_signer_built() {
        let f = fixture("acme-bank");
        let s = sample("acme-bank");
        let jcs_bytes = s.canonical_bytes_v2();
        // A client built the object in another order with other escapes,
        // then canonicalised it: the same bytes, accepted.
        let text = String::from_utf8(jcs_bytes.clone()).unwrap();
        let reordered = text.replacen(
            r#"{"anonymous":false,"audience":[],"#,
            r#"{ "audience" : [ ], "anonymous" : false, "#,
            1,
        );
        let canon = crate::jcs::canonicalize(reordered.as_bytes()).unwrap();
        assert_eq!(canon, jcs_bytes);
        let env = f
            .key
            .sign_envelope(PAYLOAD_TYPE_STATEMENT_V2, canon)
            .unwrap();
        assert_eq!(verify_envelope(&env, lookup(&f)).unwrap().statement, s);
        // Signing the un-canonicalised text is refused as non-canonical.
        let env = f
            .key
            .sign_envelope(PAYLOAD_TYPE_STATEMENT_V2, reordered.into_bytes())
            .unwrap();
        let err = verify_envelope(&env, lookup(&f)).unwrap_err();
        assert!(matches!(err, VerifyError::Malformed(_)));
        assert!(err.to_string().contains("RFC 8785"), "{err}");
    }

    #[test]
    fn unknown_payload_types_name_both_formats() {
        let f = fixture("acme-bank");
        let mut env = f.key.sign_statement(&sample("acme-bank")).unwrap();
        env.payload_type = "application/vnd.isac.statement.v3+json".into();
        let err = verify_envelope(&env, lookup(&f)).unwrap_err();
        assert!(matches!(err, VerifyError::PayloadType(_)));
        let text = err.to_string();
        assert!(
            text.contains(PAYLOAD_TYPE_STATEMENT_V1) && text.contains(PAYLOAD_TYPE_STATEMENT_V2)
        );
    }

    #[test]
    fn oversized_is_refused_before_parsing() {
        let f = fixture("acme-bank");
        let env = Envelope {
            payload_type: PAYLOAD_TYPE_STATEMENT_V1.into(),
            payload: vec![b' '; MAX_PAYLOAD_BYTES + 1],
            signatures: vec![Signature {
                keyid: f.record.key.key_id(),
                sig: vec![0; 64],
            }],
        };
        assert_eq!(
            verify_envelope(&env, lookup(&f)).unwrap_err(),
            VerifyError::TooLarge
        );
    }

    #[test]
    fn future_check() {
        assert!(created_not_in_future(1000, 1000));
        assert!(created_not_in_future(1000 + MAX_CLOCK_SKEW_SECS, 1000));
        assert!(!created_not_in_future(1001 + MAX_CLOCK_SKEW_SECS, 1000));
    }
}
