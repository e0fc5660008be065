//! Federated items (issue 20): items this agent's hub received from a peer
//! hub. Each is verified against its origin hub's signed key directory,
//! which the hub serves (`GetFederatedDirectories`) and this agent checks
//! with the key its own hub's signed directory names for that origin, then
//! pins per origin with the rules it applies to its own hub's directory
//! (signer, rollback, freeze, succession). An item whose origin directory
//! is not held is not stored and the cursor does not move: it comes again
//! at the next sync.

use std::collections::HashMap;

use isac_core::directory::{check_succession, verify_directory, KeyDirectory};
use isac_core::fed_groups::{verify_delivered_any, GroupReceiveError};
use isac_core::federation::{Provenance, ReceiveError};
use isac_core::time::parse_rfc3339;
use isac_core::{Envelope, VerifyError};
use isac_proto::v1 as pb;
use tonic::transport::Channel;

use crate::error::AgentError;
use crate::localstore::LocalStore;
use crate::sync::Agent;

/// The origin directories held, by origin hub id.
pub type Origins = HashMap<String, KeyDirectory>;

/// Reads the saved origin directories back, each re-checked against the
/// key the saved own directory names for it (expiry is checked on use).
/// One that no longer checks is dropped: it is fetched again.
pub fn load_origins(store: &LocalStore, own: Option<&KeyDirectory>) -> Origins {
    let mut out = Origins::new();
    let (Some(own), Ok(saved)) = (own, store.federated_directories()) else {
        return out;
    };
    for (hub, json) in saved {
        let checked = own
            .federated_origin(&hub)
            .and_then(|o| o.key())
            .zip(Envelope::from_json(&json).ok())
            .and_then(|(key, env)| verify_directory(&env, &key, None, 0).ok());
        if let Some(dir) = checked {
            out.insert(hub, dir);
        }
    }
    out
}

/// The outcome of checking one federated delivery.
pub enum FederatedCheck {
    Verified {
        received: Box<isac_core::federation::Received>,
        /// The signing key's organisation name at the origin hub.
        signer: String,
    },
    /// Fails verification: recorded as refused, like a local item.
    Refused(String),
}

impl Agent {
    /// Fetches the origin directories the hub pinned and accepts each that
    /// verifies with the key our hub's directory names for it, is not older
    /// than the one held, not expired and rewrites no history. One that
    /// fails is logged and left out; the one held stays.
    pub async fn refresh_federated(&self, channel: &Channel) -> Result<usize, AgentError> {
        let resp = pb::key_directory_client::KeyDirectoryClient::new(channel.clone())
            .get_federated_directories(pb::GetFederatedDirectoriesRequest {})
            .await?
            .into_inner();
        let own = self.directory();
        let mut accepted = 0;
        for d in resp
            .directories
            .into_iter()
            .take(isac_core::federation::MAX_PEERS)
        {
            let hub = d.hub_id;
            let Some(envelope) = d.signed_directory.map(Envelope::from) else {
                continue;
            };
            match self.accept_origin(own.as_ref(), &hub, &envelope) {
                Ok(()) => accepted += 1,
                Err(e) => {
                    let shown: String = hub.chars().take(64).collect();
                    tracing::warn!(origin = %shown.escape_default(), error = %e,
                        "origin hub directory refused; its items are not stored");
                    eprintln!(
                        "warning: the key directory of origin hub `{}` is refused: {e}",
                        shown.escape_default()
                    );
                }
            }
        }
        Ok(accepted)
    }

    fn accept_origin(
        &self,
        own: Option<&KeyDirectory>,
        hub: &str,
        envelope: &Envelope,
    ) -> Result<(), String> {
        let listed = own
            .and_then(|d| d.federated_origin(hub))
            .ok_or("our hub's signed directory does not list this origin")?;
        let key = listed
            .key()
            .ok_or("our hub's directory lists an unreadable key for it")?;
        let mut origins = self.origins.lock().expect("origins lock");
        let held = origins.get(hub);
        // A retired origin's last directory is no longer re-signed: its
        // expiry does not apply (its items stay verifiable).
        let at = listed.directory_check_time(self.clock.now());
        let dir = verify_directory(envelope, &key, held.map(|d| d.version), at)
            .map_err(|e| e.to_string())?;
        if let Some(held) = held {
            check_succession(held, &dir).map_err(|e| e.to_string())?;
            if dir.version == held.version {
                return Ok(());
            }
        }
        self.store()
            .save_federated_directory(hub, dir.version, &envelope.to_json())
            .map_err(|e| e.to_string())?;
        origins.insert(hub.to_owned(), dir);
        Ok(())
    }

    /// The origin's directory, if held and not expired (a retired origin's
    /// does not expire).
    fn origin_directory(&self, hub: &str) -> Option<KeyDirectory> {
        let now = self
            .directory()
            .and_then(|own| {
                own.federated_origin(hub)
                    .map(|o| o.directory_check_time(self.clock.now()))
            })
            .unwrap_or_else(|| self.clock.now());
        self.origins
            .lock()
            .expect("origins lock")
            .get(hub)
            .filter(|d| parse_rfc3339(&d.expires).is_ok_and(|e| now < e))
            .cloned()
    }

    /// Checks a federated delivery (`provenance` non-empty) against its
    /// origin hub's directory, refreshing the origin directories once when
    /// the origin is not held or the key is unknown. `Err` when no directory
    /// of the origin can be had: nothing is stored, the cursor holds.
    pub(crate) async fn check_federated(
        &self,
        channel: &Channel,
        envelope: &Envelope,
        provenance: &[u8],
        openings: &[pb::AudienceOpening],
    ) -> Result<FederatedCheck, AgentError> {
        // The openings naming this member (an AMBER item in a cross-hub
        // group); one that does not parse is left out, and the check then
        // refuses an AMBER item it was the only group opening of.
        let openings: Vec<isac_core::audience::AudienceOpening> = openings
            .iter()
            .take(isac_core::fed_groups::MAX_CROSSING_OPENINGS)
            .filter_map(|o| o.clone().try_into().ok())
            .collect();
        let origin = match Provenance::decode(provenance) {
            Ok(p) => p.origin_hub,
            Err(e) => return Ok(FederatedCheck::Refused(format!("bad provenance: {e}"))),
        };
        let mut directory = self.origin_directory(&origin);
        if directory.is_none() {
            self.refresh_federated(channel).await?;
            directory = self.origin_directory(&origin);
        }
        let Some(mut directory) = directory else {
            tracing::warn!(%origin, "federated item refused: no verified key directory of its origin hub; not stored, retried at the next sync");
            return Err(AgentError::Directory(format!(
                "an item from origin hub `{origin}` cannot be verified: no key directory of that hub verifies with the key our hub's signed directory names for it; nothing stored, it comes again at the next sync"
            )));
        };
        let mut result = verify_delivered_any(envelope, provenance, &openings, &directory);
        if matches!(
            result,
            Err(GroupReceiveError::Receive(ReceiveError::Verify {
                error: VerifyError::UnknownKey(_),
                ..
            }))
        ) {
            // A member enrolled or rotated at the origin since.
            self.refresh_federated(channel).await?;
            if let Some(newer) = self.origin_directory(&origin) {
                directory = newer;
                result = verify_delivered_any(envelope, provenance, &openings, &directory);
            }
        }
        Ok(match result {
            Ok(received) => {
                let signer = directory
                    .entry(&received.verified.key_id)
                    .map(|k| k.org_name.clone())
                    .unwrap_or_default();
                FederatedCheck::Verified {
                    received: Box::new(received),
                    signer,
                }
            }
            Err(e) => {
                tracing::warn!(%origin, error = %e, "federated item refused");
                FederatedCheck::Refused(format!("federated item from `{origin}`: {e}"))
            }
        })
    }
}
