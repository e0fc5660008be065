//! The key directory: every member's public signing keys with their
//! validity, signed by the hub and versioned, so agents can refuse a
//! directory that is forged (wrong signer), rolled back (older than one they
//! hold) or frozen (past its expiry: the hub re-signs on a schedule, as TUF's
//! timestamp role does).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::envelope::{pae, Envelope};
use crate::keys::VerifyingKey;
use crate::statement::is_slug;
use crate::time::{parse_rfc3339, UnixSeconds};
use crate::verify::KeyRecord;

pub const PAYLOAD_TYPE_DIRECTORY_V1: &str = "application/vnd.isac.key-directory.v1+json";
/// Largest directory an agent will parse.
pub const MAX_DIRECTORY_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDirectory {
    /// Grows with every signing; an agent never accepts a lower one.
    pub version: u64,
    pub issued: String,
    /// After this instant the directory is stale and refused.
    pub expires: String,
    pub keys: Vec<DirectoryKey>,
    /// The hubs this hub peers with now (federation, issue 20), sorted, each
    /// once. A hub forwards another hub's items only to that hub's current
    /// peers, so removal at the origin holds through third hubs. Absent
    /// when empty, so directories of hubs without peers keep their bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// The hubs this hub suspended or removed as peers (sorted, each once,
    /// none of them in `peers`). No hub relays this hub's items to one of
    /// them, nor through one (`crate::federation::may_forward`): removal
    /// holds through third hubs, while a hub this hub never knew may still
    /// receive its CLEAR and GREEN items through a common peer. Absent
    /// when empty (existing directories keep their bytes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_peers: Vec<String>,
    /// The hub-wide default lifetime per indicator kind, in seconds
    /// (issue 21; `crate::lifetime`): an indicator without `valid_until`
    /// expires at its start plus its kind's lifetime, the same instant at
    /// the hub and at every agent. Absent when empty (directories of hubs
    /// without defaults keep their bytes, and older directories mean "no
    /// default").
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub default_lifetimes: crate::lifetime::Lifetimes,
    /// The origin hubs whose items this hub delivers to its members
    /// (federation, issue 20), sorted by hub id, each once, with the key
    /// that signs each origin's own directory: a member verifies the origin
    /// directory its hub serves (`GetFederatedDirectories`) with it, then
    /// every federated item against that. Absent when empty, so
    /// directories of hubs that follow no peer keep their bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated: Vec<FederatedOrigin>,
}

/// An origin hub listed in a directory's `federated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedOrigin {
    pub hub_id: String,
    /// Lowercase hex SHA-256 of `public_key`.
    pub key_id: String,
    /// The origin's directory signing key: SubjectPublicKeyInfo (DER), base64.
    pub public_key: String,
    /// This hub no longer takes items from the origin, but items it took
    /// remain in its order: members verify them against the origin's last
    /// directory this hub pinned, which is no longer re-signed, so its
    /// expiry does not apply (`retired_origin_now`). Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
}

impl FederatedOrigin {
    pub fn new(hub_id: &str, spki_der: &[u8]) -> Result<FederatedOrigin, DirectoryError> {
        let key = VerifyingKey::from_spki_der(spki_der)
            .map_err(|e| DirectoryError::Malformed(format!("origin `{hub_id}` key: {e}")))?;
        Ok(FederatedOrigin {
            hub_id: hub_id.to_owned(),
            key_id: key.key_id(),
            public_key: encode_public_key(spki_der),
            retired: false,
        })
    }

    /// The instant to check this origin's directory at: `now`, or for a
    /// retired origin a time before any expiry (its last pinned directory
    /// stays usable for the items that remain; rollback, signer and
    /// succession still hold).
    pub fn directory_check_time(&self, now: UnixSeconds) -> UnixSeconds {
        if self.retired {
            i64::MIN / 2
        } else {
            now
        }
    }

    /// The origin's directory key, if the entry is well formed (its id is
    /// the key's own digest).
    pub fn key(&self) -> Option<VerifyingKey> {
        let der = B64.decode(&self.public_key).ok()?;
        let key = VerifyingKey::from_spki_der(&der).ok()?;
        (key.key_id() == self.key_id).then_some(key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryKey {
    /// Lowercase hex SHA-256 of `public_key`.
    pub key_id: String,
    pub org_id: String,
    pub org_name: String,
    /// SubjectPublicKeyInfo (DER), base64.
    pub public_key: String,
    /// Statements created before this are refused.
    pub valid_from: String,
    /// Routine retirement after rotation: statements created at or after it are refused.
    pub retired_at: Option<String>,
    /// Compromise: statements created at or after it are refused.
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("not a key directory (payload type `{0}`)")]
    PayloadType(String),
    #[error("key directory is larger than {MAX_DIRECTORY_BYTES} bytes")]
    TooLarge,
    #[error("key directory must carry exactly one signature, by the hub")]
    SignatureCount,
    #[error("key directory is not signed by the pinned hub key")]
    WrongSigner,
    #[error("key directory signature does not verify")]
    BadSignature,
    #[error("key directory is malformed: {0}")]
    Malformed(String),
    #[error("key directory version {offered} is older than version {held} already held: refusing a rollback")]
    Rollback { offered: u64, held: u64 },
    #[error("key directory version {version} expired at {expires}: the hub has not re-signed it (frozen or replayed)")]
    Expired { version: u64, expires: String },
    #[error("key directory lists key {0} twice")]
    DuplicateKey(String),
    #[error("key directory entry {0} does not match its public key")]
    KeyIdMismatch(String),
    #[error("key directory rewrites history: {0}")]
    Inconsistent(String),
}

impl KeyDirectory {
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("directories always serialise")
    }

    /// The validity record of `key_id`, if listed.
    pub fn record(&self, key_id: &str) -> Option<KeyRecord> {
        let k = self.keys.iter().find(|k| k.key_id == key_id)?;
        k.record()
    }

    pub fn entry(&self, key_id: &str) -> Option<&DirectoryKey> {
        self.keys.iter().find(|k| k.key_id == key_id)
    }

    /// The directory key this directory names for origin hub `hub_id`.
    pub fn federated_origin(&self, hub_id: &str) -> Option<&FederatedOrigin> {
        self.federated.iter().find(|o| o.hub_id == hub_id)
    }
}

impl DirectoryKey {
    pub fn state(&self) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.retired_at.is_some() {
            "retired"
        } else {
            "active"
        }
    }

    pub fn record(&self) -> Option<KeyRecord> {
        let der = B64.decode(&self.public_key).ok()?;
        let time = |t: &Option<String>| -> Option<Option<UnixSeconds>> {
            match t {
                None => Some(None),
                Some(s) => parse_rfc3339(s).ok().map(Some),
            }
        };
        Some(KeyRecord {
            key: VerifyingKey::from_spki_der(&der).ok()?,
            org_id: self.org_id.clone(),
            valid_from: parse_rfc3339(&self.valid_from).ok()?,
            retired_at: time(&self.retired_at)?,
            revoked_at: time(&self.revoked_at)?,
        })
    }
}

/// Verifies a signed directory against the pinned hub key. `held` is the
/// version the caller already trusts, if any; `now` is the caller's clock.
pub fn verify_directory(
    envelope: &Envelope,
    hub_key: &VerifyingKey,
    held: Option<u64>,
    now: UnixSeconds,
) -> Result<KeyDirectory, DirectoryError> {
    if envelope.payload_type != PAYLOAD_TYPE_DIRECTORY_V1 {
        let shown: String = envelope.payload_type.chars().take(80).collect();
        return Err(DirectoryError::PayloadType(
            shown.escape_default().to_string(),
        ));
    }
    if envelope.payload.len() > MAX_DIRECTORY_BYTES {
        return Err(DirectoryError::TooLarge);
    }
    let [sig] = envelope.signatures.as_slice() else {
        return Err(DirectoryError::SignatureCount);
    };
    if sig.keyid != hub_key.key_id() {
        return Err(DirectoryError::WrongSigner);
    }
    if !hub_key.verify_raw(&pae(&envelope.payload_type, &envelope.payload), &sig.sig) {
        return Err(DirectoryError::BadSignature);
    }
    let dir: KeyDirectory = serde_json::from_slice(&envelope.payload)
        .map_err(|e| DirectoryError::Malformed(e.to_string()))?;
    if dir.canonical_bytes() != envelope.payload {
        return Err(DirectoryError::Malformed("not in canonical form".into()));
    }
    if let Some(held) = held {
        if dir.version < held {
            return Err(DirectoryError::Rollback {
                offered: dir.version,
                held,
            });
        }
    }
    let expires =
        parse_rfc3339(&dir.expires).map_err(|e| DirectoryError::Malformed(e.to_string()))?;
    parse_rfc3339(&dir.issued).map_err(|e| DirectoryError::Malformed(e.to_string()))?;
    if now >= expires {
        return Err(DirectoryError::Expired {
            version: dir.version,
            expires: dir.expires.clone(),
        });
    }
    if dir.peers.len() > crate::federation::MAX_PEERS {
        return Err(DirectoryError::Malformed(format!(
            "more than {} peers",
            crate::federation::MAX_PEERS
        )));
    }
    if dir.peers.iter().any(|p| !is_slug(p)) || !dir.peers.windows(2).all(|w| w[0] < w[1]) {
        return Err(DirectoryError::Malformed(
            "peers must be hub ids, sorted, each once".into(),
        ));
    }
    check_removed_peers(&dir.peers, &dir.removed_peers)?;
    check_federated(&dir.federated)?;
    crate::lifetime::check_lifetimes(&dir.default_lifetimes)
        .map_err(|e| DirectoryError::Malformed(format!("default_lifetimes: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    for k in &dir.keys {
        if !seen.insert(k.key_id.as_str()) {
            return Err(DirectoryError::DuplicateKey(k.key_id.clone()));
        }
        // The id is the key's own digest, so one key appears under one id.
        let record = k.record().ok_or_else(|| {
            DirectoryError::Malformed(format!("entry {} is unreadable", k.key_id))
        })?;
        if record.key.key_id() != k.key_id {
            return Err(DirectoryError::KeyIdMismatch(k.key_id.clone()));
        }
        if !is_slug(&k.org_id) {
            return Err(DirectoryError::Malformed(format!(
                "entry {} has a bad org id",
                k.key_id
            )));
        }
    }
    Ok(dir)
}

/// `removed_peers` is bounded, hub ids, sorted, each once, and names no
/// current peer.
pub fn check_removed_peers(peers: &[String], removed: &[String]) -> Result<(), DirectoryError> {
    if removed.len() > crate::federation::MAX_PEERS {
        return Err(DirectoryError::Malformed(format!(
            "more than {} removed peers",
            crate::federation::MAX_PEERS
        )));
    }
    if removed.iter().any(|p| !is_slug(p)) || !removed.windows(2).all(|w| w[0] < w[1]) {
        return Err(DirectoryError::Malformed(
            "removed_peers must be hub ids, sorted, each once".into(),
        ));
    }
    if let Some(both) = removed.iter().find(|r| peers.contains(r)) {
        return Err(DirectoryError::Malformed(format!(
            "`{both}` is listed both as a peer and as a removed peer"
        )));
    }
    Ok(())
}

/// `federated` is bounded, sorted by hub id, each once, each a hub id with
/// a readable key whose id is its digest.
pub fn check_federated(origins: &[FederatedOrigin]) -> Result<(), DirectoryError> {
    if origins.len() > crate::federation::MAX_PEERS {
        return Err(DirectoryError::Malformed(format!(
            "more than {} federated origins",
            crate::federation::MAX_PEERS
        )));
    }
    if !origins.windows(2).all(|w| w[0].hub_id < w[1].hub_id) {
        return Err(DirectoryError::Malformed(
            "federated origins must be sorted by hub id, each once".into(),
        ));
    }
    for o in origins {
        if !is_slug(&o.hub_id) {
            return Err(DirectoryError::Malformed(
                "a federated origin's hub id is not a hub id".into(),
            ));
        }
        if o.key().is_none() {
            return Err(DirectoryError::KeyIdMismatch(o.key_id.clone()));
        }
    }
    Ok(())
}

/// Checks that `newer` may follow `older`: no key moves to another
/// organisation, disappears, loses or postpones a revocation or retirement.
/// A hub that tried to rewrite history this way is refused even with a
/// valid signature.
pub fn check_succession(older: &KeyDirectory, newer: &KeyDirectory) -> Result<(), DirectoryError> {
    for old in &older.keys {
        let Some(new) = newer.entry(&old.key_id) else {
            return Err(DirectoryError::Inconsistent(format!(
                "key {} disappeared",
                old.key_id
            )));
        };
        if new.org_id != old.org_id
            || new.public_key != old.public_key
            || new.valid_from != old.valid_from
        {
            return Err(DirectoryError::Inconsistent(format!(
                "key {} changed owner or validity",
                old.key_id
            )));
        }
        let later = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(_), None) => true,
            (Some(a), Some(b)) => match (parse_rfc3339(a), parse_rfc3339(b)) {
                (Ok(a), Ok(b)) => b > a,
                _ => true,
            },
            _ => false,
        };
        if later(&old.revoked_at, &new.revoked_at) || later(&old.retired_at, &new.retired_at) {
            return Err(DirectoryError::Inconsistent(format!(
                "key {} had its revocation or retirement undone or postponed",
                old.key_id
            )));
        }
    }
    Ok(())
}

/// Encodes a public key for a directory entry.
pub fn encode_public_key(spki_der: &[u8]) -> String {
    B64.encode(spki_der)
}

/// A directory entry for a test key of `org`, valid from `valid_from`
/// (unix seconds): the one entry builder the crate's tests share.
#[cfg(test)]
pub(crate) fn test_entry(k: &crate::keys::SigningKey, org: &str, valid_from: i64) -> DirectoryKey {
    let v = k.verifying_key().unwrap();
    DirectoryKey {
        key_id: v.key_id(),
        org_id: org.into(),
        org_name: org.into(),
        public_key: encode_public_key(v.spki_der()),
        valid_from: crate::time::format_rfc3339(valid_from),
        retired_at: None,
        revoked_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use crate::time::format_rfc3339;

    const NOW: i64 = 1_800_000_000;

    fn entry(k: &SigningKey, org: &str) -> DirectoryKey {
        test_entry(k, org, NOW - 1000)
    }

    fn signed(hub: &SigningKey, dir: &KeyDirectory) -> Envelope {
        hub.sign_envelope(PAYLOAD_TYPE_DIRECTORY_V1, dir.canonical_bytes())
            .unwrap()
    }

    fn dir(version: u64, keys: Vec<DirectoryKey>) -> KeyDirectory {
        KeyDirectory {
            version,
            issued: format_rfc3339(NOW - 10),
            expires: format_rfc3339(NOW + 3600),
            keys,
            peers: vec![],
            removed_peers: vec![],
            default_lifetimes: Default::default(),
            federated: Vec::new(),
        }
    }

    #[test]
    fn default_lifetimes_are_signed_checked_and_absent_when_none() {
        let hub = SigningKey::generate().unwrap();
        let hub_pub = hub.verifying_key().unwrap();
        let none = dir(1, vec![]);
        let bytes = String::from_utf8(none.canonical_bytes()).unwrap();
        assert!(!bytes.contains("default_lifetimes"), "{bytes}");
        // A directory from before the field reads as "no default".
        let old: KeyDirectory = serde_json::from_str(&bytes).unwrap();
        assert!(old.default_lifetimes.is_empty());
        let with = |pairs: &[(&str, u64)]| KeyDirectory {
            default_lifetimes: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..dir(2, vec![])
        };
        let ok = with(&[("network", 30 * 86_400), ("package", 365 * 86_400)]);
        let text = String::from_utf8(ok.canonical_bytes()).unwrap();
        assert!(
            text.contains(r#""default_lifetimes":{"network":2592000,"package":31536000}"#),
            "{text}"
        );
        assert_eq!(
            verify_directory(&signed(&hub, &ok), &hub_pub, None, NOW).unwrap(),
            ok
        );
        for bad in [
            with(&[("bulletin", 86_400)]),
            with(&[("network", 0)]),
            with(&[("network", u64::MAX)]),
        ] {
            assert!(matches!(
                verify_directory(&signed(&hub, &bad), &hub_pub, None, NOW),
                Err(DirectoryError::Malformed(m)) if m.starts_with("default_lifetimes")
            ));
        }
    }

    #[test]
    fn peers_are_signed_sorted_and_absent_when_none() {
        let hub = SigningKey::generate().unwrap();
        let hub_pub = hub.verifying_key().unwrap();
        let none = dir(1, vec![]);
        assert!(!String::from_utf8(none.canonical_bytes())
            .unwrap()
            .contains("peers"));
        let with = |peers: &[&str]| KeyDirectory {
            peers: peers.iter().map(|p| p.to_string()).collect(),
            ..dir(2, vec![])
        };
        let ok = with(&["cert-eu", "health-isac"]);
        assert_eq!(
            verify_directory(&signed(&hub, &ok), &hub_pub, None, NOW).unwrap(),
            ok
        );
        for bad in [
            with(&["health-isac", "cert-eu"]),
            with(&["cert-eu", "cert-eu"]),
            with(&["Cert EU"]),
        ] {
            assert!(matches!(
                verify_directory(&signed(&hub, &bad), &hub_pub, None, NOW),
                Err(DirectoryError::Malformed(_))
            ));
        }
        let many: Vec<String> = (0..=crate::federation::MAX_PEERS)
            .map(|i| format!("hub-{i:04}"))
            .collect();
        let too_many = KeyDirectory {
            peers: many,
            ..dir(3, vec![])
        };
        assert!(matches!(
            verify_directory(&signed(&hub, &too_many), &hub_pub, None, NOW),
            Err(DirectoryError::Malformed(_))
        ));
    }

    #[test]
    fn removed_peers_are_signed_sorted_disjoint_and_absent_when_none() {
        let hub = SigningKey::generate().unwrap();
        let hub_pub = hub.verifying_key().unwrap();
        assert!(!String::from_utf8(dir(1, vec![]).canonical_bytes())
            .unwrap()
            .contains("removed_peers"));
        let with = |peers: &[&str], removed: &[&str]| KeyDirectory {
            peers: peers.iter().map(|p| p.to_string()).collect(),
            removed_peers: removed.iter().map(|p| p.to_string()).collect(),
            ..dir(2, vec![])
        };
        for ok in [with(&["cert-eu"], &["health-isac"]), with(&[], &["a", "b"])] {
            assert_eq!(
                verify_directory(&signed(&hub, &ok), &hub_pub, None, NOW).unwrap(),
                ok
            );
        }
        for bad in [
            with(&[], &["b", "a"]),
            with(&[], &["a", "a"]),
            with(&[], &["Not A Hub"]),
            with(&["a"], &["a"]),
        ] {
            assert!(matches!(
                verify_directory(&signed(&hub, &bad), &hub_pub, None, NOW),
                Err(DirectoryError::Malformed(_))
            ));
        }
        let many: Vec<String> = (0..=crate::federation::MAX_PEERS)
            .map(|i| format!("hub-{i:04}"))
            .collect();
        assert!(check_removed_peers(&[], &many).is_err());
        assert!(check_removed_peers(&[], &many[1..]).is_ok());
    }

    #[test]
    fn federated_origins_are_signed_checked_and_absent_when_none() {
        let hub = SigningKey::generate().unwrap();
        let hub_pub = hub.verifying_key().unwrap();
        let none = dir(1, vec![]);
        let bytes = String::from_utf8(none.canonical_bytes()).unwrap();
        assert!(!bytes.contains("federated"), "{bytes}");
        let old: KeyDirectory = serde_json::from_str(&bytes).unwrap();
        assert!(old.federated.is_empty());
        let ka = SigningKey::generate().unwrap().verifying_key().unwrap();
        let kb = SigningKey::generate().unwrap().verifying_key().unwrap();
        let a = FederatedOrigin::new("hub-a", ka.spki_der()).unwrap();
        let b = FederatedOrigin::new("hub-b", kb.spki_der()).unwrap();
        assert_eq!(a.key_id, ka.key_id());
        assert_eq!(a.key().unwrap().key_id(), ka.key_id());
        let with = |origins: Vec<FederatedOrigin>| KeyDirectory {
            federated: origins,
            ..dir(2, vec![])
        };
        let ok = with(vec![a.clone(), b.clone()]);
        let got = verify_directory(&signed(&hub, &ok), &hub_pub, None, NOW).unwrap();
        assert_eq!(got, ok);
        assert_eq!(got.federated_origin("hub-b"), Some(&b));
        assert_eq!(got.federated_origin("hub-c"), None);
        // Retired: signed, absent when false, and no expiry applies.
        assert!(!serde_json::to_string(&a).unwrap().contains("retired"));
        let retired = FederatedOrigin {
            retired: true,
            ..b.clone()
        };
        let with_retired = with(vec![a.clone(), retired.clone()]);
        let got = verify_directory(&signed(&hub, &with_retired), &hub_pub, None, NOW).unwrap();
        assert!(got.federated_origin("hub-b").unwrap().retired);
        assert_eq!(retired.directory_check_time(NOW), i64::MIN / 2);
        assert_eq!(a.directory_check_time(NOW), NOW);
        let wrong_id = FederatedOrigin {
            key_id: kb.key_id(),
            ..a.clone()
        };
        let bad_key = FederatedOrigin {
            public_key: "bm90IGEga2V5".into(),
            ..a.clone()
        };
        let bad_hub = FederatedOrigin {
            hub_id: "Hub A".into(),
            ..a.clone()
        };
        for (bad, why) in [
            (with(vec![b.clone(), a.clone()]), "unsorted"),
            (with(vec![a.clone(), a.clone()]), "twice"),
            (with(vec![wrong_id]), "key id of another key"),
            (with(vec![bad_key]), "unreadable key"),
            (with(vec![bad_hub]), "not a hub id"),
            (
                with(
                    (0..=crate::federation::MAX_PEERS)
                        .map(|i| FederatedOrigin {
                            hub_id: format!("hub-{i:04}"),
                            ..a.clone()
                        })
                        .collect(),
                ),
                "too many",
            ),
        ] {
            assert!(
                matches!(
                    verify_directory(&signed(&hub, &bad), &hub_pub, None, NOW),
                    Err(DirectoryError::Malformed(_) | DirectoryError::KeyIdMismatch(_))
                ),
                "{why}"
            );
        }
    }

    #[test]
    fn accepts_fresh_signed_directory_and_answers_lookups() {
        let hub = SigningKey::generate().unwrap();
        let member = SigningKey::generate().unwrap();
        let d = dir(3, vec![entry(&member, "acme-bank")]);
        let got = verify_directory(
            &signed(&hub, &d),
            &hub.verifying_key().unwrap(),
            Some(3),
            NOW,
        )
        .unwrap();
        assert_eq!(got, d);
        let kid = member.verifying_key().unwrap().key_id();
        assert_eq!(got.record(&kid).unwrap().org_id, "acme-bank");
        assert_eq!(got.entry(&kid).unwrap().state(), "active");
    }

    #[test]
    fn refuses_rollback_freeze_and_wrong_signer() {
        let hub = SigningKey::generate().unwrap();
        let hub_pub = hub.verifying_key().unwrap();
        let d = dir(3, vec![]);
        assert!(matches!(
            verify_directory(&signed(&hub, &d), &hub_pub, Some(4), NOW),
            Err(DirectoryError::Rollback {
                offered: 3,
                held: 4
            })
        ));
        assert!(matches!(
            verify_directory(&signed(&hub, &d), &hub_pub, None, NOW + 3600),
            Err(DirectoryError::Expired { .. })
        ));
        let impostor = SigningKey::generate().unwrap();
        assert_eq!(
            verify_directory(&signed(&impostor, &d), &hub_pub, None, NOW).unwrap_err(),
            DirectoryError::WrongSigner
        );
        let mut tampered = signed(&hub, &d);
        tampered.payload = String::from_utf8(tampered.payload)
            .unwrap()
            .replace("\"version\":3", "\"version\":9")
            .into_bytes();
        assert_eq!(
            verify_directory(&tampered, &hub_pub, None, NOW).unwrap_err(),
            DirectoryError::BadSignature
        );
    }

    #[test]
    fn one_key_counts_once() {
        let hub = SigningKey::generate().unwrap();
        let hub_pub = hub.verifying_key().unwrap();
        let member = SigningKey::generate().unwrap();
        let d = dir(
            1,
            vec![entry(&member, "acme-bank"), entry(&member, "other-org")],
        );
        assert!(matches!(
            verify_directory(&signed(&hub, &d), &hub_pub, None, NOW),
            Err(DirectoryError::DuplicateKey(_))
        ));
        // The same key under an id that is not its digest.
        let mut e = entry(&member, "other-org");
        e.key_id = "00".repeat(32);
        let d = dir(1, vec![entry(&member, "acme-bank"), e]);
        assert!(matches!(
            verify_directory(&signed(&hub, &d), &hub_pub, None, NOW),
            Err(DirectoryError::KeyIdMismatch(_))
        ));
    }

    #[test]
    fn succession_never_undoes_revocation_or_moves_keys() {
        let member = SigningKey::generate().unwrap();
        let base = entry(&member, "acme-bank");
        let mut revoked = base.clone();
        revoked.revoked_at = Some(format_rfc3339(NOW));
        let old = dir(1, vec![revoked.clone()]);
        assert!(check_succession(&old, &dir(2, vec![revoked.clone()])).is_ok());
        let mut earlier = revoked.clone();
        earlier.revoked_at = Some(format_rfc3339(NOW - 100));
        assert!(
            check_succession(&old, &dir(2, vec![earlier])).is_ok(),
            "earlier is stricter"
        );
        assert!(
            check_succession(&old, &dir(2, vec![base.clone()])).is_err(),
            "un-revoked"
        );
        let mut later = revoked.clone();
        later.revoked_at = Some(format_rfc3339(NOW + 100));
        assert!(
            check_succession(&old, &dir(2, vec![later])).is_err(),
            "postponed"
        );
        assert!(check_succession(&old, &dir(2, vec![])).is_err(), "dropped");
        let mut moved = revoked;
        moved.org_id = "other-org".into();
        assert!(
            check_succession(&old, &dir(2, vec![moved])).is_err(),
            "moved"
        );
    }

    #[test]
    fn states_and_records_carry_retirement_and_revocation() {
        let member = SigningKey::generate().unwrap();
        let mut e = entry(&member, "acme-bank");
        e.retired_at = Some(format_rfc3339(NOW));
        assert_eq!(e.state(), "retired");
        assert_eq!(e.record().unwrap().retired_at, Some(NOW));
        e.revoked_at = Some(format_rfc3339(NOW - 5));
        assert_eq!(e.state(), "revoked");
        assert_eq!(e.record().unwrap().revoked_at, Some(NOW - 5));
    }
}
