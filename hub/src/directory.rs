//! The signed key directory: built from the store, signed with the hub's
//! directory key, versioned by a counter in the database so versions only
//! grow across restarts. Re-signed when the membership epoch moves (any key
//! or status change, by any process) and before half its lifetime is gone.

use std::sync::atomic::{AtomicU64, Ordering};

use isac_core::directory::{
    encode_public_key, DirectoryKey, FederatedOrigin, KeyDirectory, PAYLOAD_TYPE_DIRECTORY_V1,
};
use isac_core::time::format_rfc3339;
use isac_core::{Envelope, SigningKey};

use crate::app::clock::Clock;
use crate::store::{Store, StoreError};

pub struct DirectorySigner {
    store: Store,
    key: SigningKey,
    /// The hub's anonymisation key, listed as org `anonymous`.
    anon_public_der: Vec<u8>,
    /// The hub's attestation key (TAXII writes), listed as org `isac-hub`.
    attest_public_der: Vec<u8>,
    /// The hub's log key (checkpoints), listed as org `isac-log`.
    log_public_der: Vec<u8>,
    ttl_secs: i64,
    clock: Clock,
    cached: tokio::sync::Mutex<Option<Cached>>,
    version: AtomicU64,
    /// `default_lifetime` from hub.toml, published as `default_lifetimes`.
    default_lifetimes: isac_core::lifetime::Lifetimes,
    /// `DATA_DIR/peers`: each followed hub's pinned directory key, listed
    /// as `federated` (issue 20). `None` lists none.
    peers_dir: Option<std::path::PathBuf>,
}

struct Cached {
    epoch: u64,
    version: u64,
    expires_at: i64,
    envelope: Envelope,
}

impl DirectorySigner {
    pub fn new(
        store: Store,
        key: SigningKey,
        anon_key: &SigningKey,
        attest_key: &SigningKey,
        log_key: &SigningKey,
        ttl_secs: u64,
        clock: Clock,
    ) -> Self {
        let public_der = |k: &SigningKey| {
            k.verifying_key()
                .map(|k| k.spki_der().to_vec())
                .unwrap_or_default()
        };
        Self {
            store,
            key,
            anon_public_der: public_der(anon_key),
            attest_public_der: public_der(attest_key),
            log_public_der: public_der(log_key),
            ttl_secs: ttl_secs.max(60) as i64,
            clock,
            cached: tokio::sync::Mutex::new(None),
            version: AtomicU64::new(0),
            default_lifetimes: Default::default(),
            peers_dir: None,
        }
    }

    /// Lists, as `federated`, every hub this hub follows with the
    /// directory key pinned at `hub peer add` (`DIR/HUB/hub-directory.pub`):
    /// members verify the origin directories it serves with them.
    pub fn with_peers_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.peers_dir = Some(dir);
        self
    }

    /// The origins whose items this hub delivers, sorted by hub id.
    async fn federated_origins(&self) -> Result<Vec<FederatedOrigin>, StoreError> {
        let mut origins = Vec::new();
        let links = match &self.peers_dir {
            Some(_) => self.store.peer_links().await?,
            None => Vec::new(),
        };
        let dir = self.peers_dir.clone().unwrap_or_default();
        for link in links {
            let path = dir.join(&link.hub_id).join("hub-directory.pub");
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|der| FederatedOrigin::new(&link.hub_id, &der).map_err(|e| e.to_string()))
            {
                Ok(o) => origins.push(o),
                Err(e) => {
                    tracing::warn!(peer = %link.hub_id, path = %path.display(), error = %e,
                        "a followed hub's directory key is unreadable; its items cannot be verified by members");
                }
            }
        }
        // Origins taken through a peer, and retired links whose items
        // remain (issue 20): the key the sender listed, or the one pinned
        // at `hub peer add`. A followed hub's own key comes first and wins.
        for row in self.store.origin_directories().await? {
            match FederatedOrigin::new(&row.hub_id, &row.public_key) {
                Ok(o) => origins.push(FederatedOrigin {
                    retired: row.retired,
                    ..o
                }),
                Err(e) => tracing::warn!(origin = %row.hub_id, error = %e,
                    "a pinned origin's directory key is unreadable"),
            }
        }
        origins.sort_by(|a, b| a.hub_id.cmp(&b.hub_id));
        origins.dedup_by(|a, b| a.hub_id == b.hub_id);
        Ok(origins)
    }

    /// Publishes these default lifetimes per indicator kind in every
    /// directory it signs (replicas must be given the same).
    pub fn with_default_lifetimes(mut self, lifetimes: isac_core::lifetime::Lifetimes) -> Self {
        self.default_lifetimes = lifetimes;
        self
    }

    /// Version of the directory most recently signed.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Signs a cross-hub group manifest with the directory key (the key
    /// peers pinned at `hub peer add`), issue 20.
    pub fn sign_group_manifest(
        &self,
        manifest: &isac_core::fed_groups::GroupManifest,
    ) -> Result<Envelope, isac_core::keys::KeyError> {
        manifest.sign(&self.key)
    }

    pub fn public_key_der(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .map(|k| k.spki_der().to_vec())
            .unwrap_or_default()
    }

    /// The current signed directory, re-signing if keys changed or it is
    /// past half its lifetime.
    pub async fn current(&self) -> Result<Envelope, StoreError> {
        let epoch = self.store.epoch().await?;
        self.current_at(epoch).await
    }

    /// As [`Self::current`], for a membership epoch the caller already read.
    pub async fn current_at(&self, epoch: u64) -> Result<Envelope, StoreError> {
        let now = self.clock.now();
        let mut cached = self.cached.lock().await;
        // Replicas on one database each sign their own directory; the
        // version counter is shared. An agent that fails over from a
        // replica that signed version N must never be offered less than N
        // (it refuses a rollback), so a replica whose directory is current
        // but older than the last version taken re-signs under that
        // version: same epoch, and keys read after the other replica's, so
        // nothing it listed is undone. Taking a new version here instead
        // would make two replicas outbid each other on every poll.
        let latest = self.store.directory_version().await?;
        let current = cached
            .as_ref()
            .filter(|c| c.epoch == epoch && c.expires_at - now > self.ttl_secs / 2);
        if let Some(c) = current {
            if c.version >= latest {
                return Ok(c.envelope.clone());
            }
        }
        let adopt = current.is_some();
        let keys = self.store.keys().await?;
        // Federation (issue 20): the hubs that may follow this one now
        // (active members with role `peer`), listed so other hubs stop
        // relaying this hub's items to one it dropped. A peer's own
        // enrollment key signs nothing here, so it is not listed.
        let members = self.store.list_members().await?;
        let (peers, peer_orgs) = peers_of(&members);
        let keys: Vec<_> = keys
            .into_iter()
            .filter(|k| !peer_orgs.contains(&k.org_id))
            .collect();
        let version = if adopt {
            latest
        } else {
            self.store.next_directory_version().await?
        };
        let expires_at = now + self.ttl_secs;
        let mut entries: Vec<DirectoryKey> = keys
            .into_iter()
            .map(|k| DirectoryKey {
                key_id: k.key_id,
                org_id: k.org_id,
                org_name: k.org_name,
                public_key: encode_public_key(&k.public_key_der),
                valid_from: format_rfc3339(k.valid_from),
                retired_at: k.retired_at.map(format_rfc3339),
                revoked_at: k.revoked_at.map(format_rfc3339),
            })
            .collect();
        if let Ok(anon) = isac_core::VerifyingKey::from_spki_der(&self.anon_public_der) {
            // Anonymous statements keep their source's creation time, so the
            // key is valid from the start of time.
            entries.push(DirectoryKey {
                key_id: anon.key_id(),
                org_id: isac_core::names::ANONYMOUS_ORG.to_owned(),
                org_name: "anonymous member".to_owned(),
                public_key: encode_public_key(anon.spki_der()),
                valid_from: format_rfc3339(0),
                retired_at: None,
                revoked_at: None,
            });
        }
        if let Ok(attest) = isac_core::VerifyingKey::from_spki_der(&self.attest_public_der) {
            entries.push(DirectoryKey {
                key_id: attest.key_id(),
                org_id: isac_core::statement::HUB_ATTESTATION_ORG.to_owned(),
                org_name: "hub attestation (TAXII submissions)".to_owned(),
                public_key: encode_public_key(attest.spki_der()),
                valid_from: format_rfc3339(0),
                retired_at: None,
                revoked_at: None,
            });
        }
        if let Ok(log) = isac_core::VerifyingKey::from_spki_der(&self.log_public_der) {
            // An ordinary entry, so agents that predate the log still accept
            // the directory; the org is reserved and the key signs no
            // statement, only checkpoints.
            entries.push(DirectoryKey {
                key_id: log.key_id(),
                org_id: isac_core::names::LOG_ORG.to_owned(),
                org_name: "hub transparency log (checkpoints)".to_owned(),
                public_key: encode_public_key(log.spki_der()),
                valid_from: format_rfc3339(0),
                retired_at: None,
                revoked_at: None,
            });
        }
        let directory = KeyDirectory {
            version,
            issued: format_rfc3339(now),
            expires: format_rfc3339(expires_at),
            keys: entries,
            peers,
            removed_peers: removed_peers(&members),
            default_lifetimes: self.default_lifetimes.clone(),
            federated: self.federated_origins().await?,
        };
        let envelope = self
            .key
            .sign_envelope(PAYLOAD_TYPE_DIRECTORY_V1, directory.canonical_bytes())
            .map_err(|e| StoreError::Sqlite(format!("signing the key directory: {e}")))?;
        tracing::info!(version, keys = directory.keys.len(), "key directory signed");
        *cached = Some(Cached {
            epoch,
            version,
            expires_at,
            envelope: envelope.clone(),
        });
        self.version.store(version, Ordering::Release);
        Ok(envelope)
    }
}

/// The hubs this hub suspended or removed as peers (members with role
/// `peer` not active), sorted: what the signed directory lists as
/// `removed_peers`, and whose items and relays this hub refuses.
pub fn removed_peers(members: &[(crate::store::MemberRow, u32, u32)]) -> Vec<String> {
    let mut removed: Vec<String> = members
        .iter()
        .filter(|(m, _, _)| {
            m.role == isac_core::membership::Role::Peer
                && m.status != isac_core::membership::MemberStatus::Active
        })
        .map(|(m, _, _)| m.org_id.clone())
        .collect();
    removed.sort();
    removed.dedup();
    removed
}

/// The active peers (sorted, as the directory requires) and every org
/// that is or was a peer.
fn peers_of(
    members: &[(crate::store::MemberRow, u32, u32)],
) -> (Vec<String>, std::collections::BTreeSet<String>) {
    use isac_core::membership::{MemberStatus, Role};
    let peers_ever: std::collections::BTreeSet<String> = members
        .iter()
        .filter(|(m, _, _)| m.role == Role::Peer)
        .map(|(m, _, _)| m.org_id.clone())
        .collect();
    let active = members
        .iter()
        .filter(|(m, _, _)| m.role == Role::Peer && m.status == MemberStatus::Active)
        .map(|(m, _, _)| m.org_id.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    (active, peers_ever)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: u64 = 3_600;

    /// The directory key, then the anonymisation, attestation and log keys.
    type Keys = [SigningKey; 4];

    fn signer(store: &Store, k: &Keys, clock: &Clock) -> DirectorySigner {
        DirectorySigner::new(
            store.clone(),
            k[0].clone(),
            &k[1],
            &k[2],
            &k[3],
            TTL,
            clock.clone(),
        )
    }

    async fn version(s: &DirectorySigner) -> u64 {
        let envelope = s.current().await.unwrap();
        let dir = isac_core::directory::verify_directory(
            &envelope,
            &s.key.verifying_key().unwrap(),
            None,
            0,
        )
        .unwrap();
        assert_eq!(
            dir.version,
            s.version(),
            "served and reported versions agree"
        );
        dir.version
    }

    /// Two replicas (two signers on one database): once either has signed
    /// a version, the other never serves a lower one, and they settle on
    /// one version instead of taking a new one on every call.
    #[tokio::test]
    async fn replicas_never_serve_a_version_below_the_last_signed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.db")).unwrap();
        let key: Keys = std::array::from_fn(|_| SigningKey::generate().unwrap());
        let clock = Clock::manual(1_000_000);
        let (a, b) = (signer(&store, &key, &clock), signer(&store, &key, &clock));
        let first = version(&a).await;
        let second = version(&b).await;
        assert!(second > first);
        assert_eq!(version(&a).await, second, "a adopts b's newer version");
        for _ in 0..5 {
            assert_eq!(version(&a).await, second);
            assert_eq!(version(&b).await, second);
        }
        assert_eq!(
            store.directory_version().await.unwrap(),
            second,
            "no version taken"
        );
        // Past half their lifetime both re-sign under new versions, then
        // settle on the later one.
        clock.set(1_000_000 + TTL as i64 / 2 + 1);
        let third = version(&b).await;
        assert!(third > second);
        let fourth = version(&a).await;
        assert!(fourth > third);
        for _ in 0..5 {
            assert_eq!(version(&b).await, fourth);
            assert_eq!(version(&a).await, fourth);
        }
        assert_eq!(store.directory_version().await.unwrap(), fourth);
    }
}
