//! Receiving: `sync` (until caught up) and `run` (continuously). Every item
//! is verified end to end against the key directory before it is stored or
//! written to a sink; the cursor moves only after both.

use std::sync::Mutex;
use std::time::Duration;

use isac_core::time::parse_rfc3339;
use isac_core::{verify_envelope, Envelope, Signature, VerifyError};
use isac_proto::v1 as pb;
use tonic::transport::Channel;

use crate::client::{connect, Trust};
use crate::error::AgentError;
use crate::localstore::{CachedKey, InsertOutcome, LocalStore};
use crate::sink::JsonlSink;
use crate::state::{Loaded, StateDir};

/// An enrolled agent: identity, keys and local store.
pub struct Agent {
    pub loaded: Loaded,
    pub store: Mutex<LocalStore>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub new: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub cursor: u64,
}

fn envelope_from_pb(e: pb::Envelope) -> Envelope {
    Envelope {
        payload_type: e.payload_type,
        payload: e.payload,
        signatures: e
            .signatures
            .into_iter()
            .map(|s| Signature {
                keyid: s.keyid,
                sig: s.sig,
            })
            .collect(),
    }
}

impl Agent {
    pub fn open(state: &StateDir) -> Result<Self, AgentError> {
        let loaded = state.load()?;
        let store = LocalStore::open(&state.path("agent.db"))?;
        Ok(Self {
            loaded,
            store: Mutex::new(store),
        })
    }

    pub fn org_id(&self) -> &str {
        &self.loaded.identity.org_id
    }

    fn store(&self) -> std::sync::MutexGuard<'_, LocalStore> {
        self.store.lock().expect("local store lock")
    }

    pub async fn channel(&self) -> Result<Channel, AgentError> {
        connect(
            &self.loaded.identity.hub_url,
            Trust::Ca {
                ca: &self.loaded.ca,
                client: Some((&self.loaded.tls_cert, &self.loaded.tls_key)),
            },
        )
        .await
    }

    /// Fetches the key directory and merges it into the local cache.
    pub async fn refresh_keys(&self, channel: &Channel) -> Result<(), AgentError> {
        let resp = pb::key_directory_client::KeyDirectoryClient::new(channel.clone())
            .list_keys(pb::ListKeysRequest {})
            .await?
            .into_inner();
        let mut keys = Vec::with_capacity(resp.keys.len());
        for k in resp.keys {
            let Ok(valid_from) = parse_rfc3339(&k.valid_from) else {
                tracing::warn!(key_id = %k.key_id, "directory entry with unreadable valid_from; ignored");
                continue;
            };
            let revoked_at = if k.revoked_at.is_empty() {
                None
            } else {
                match parse_rfc3339(&k.revoked_at) {
                    Ok(t) => Some(t),
                    // Unreadable revocation: treat as revoked since forever.
                    Err(_) => Some(i64::MIN),
                }
            };
            keys.push(CachedKey {
                key_id: k.key_id,
                org_id: k.org_id,
                org_name: k.org_name,
                spki: k.public_key_der,
                valid_from,
                revoked_at,
            });
        }
        for w in self.store().merge_keys(&keys, crate::now())? {
            tracing::warn!("{w}");
            eprintln!("warning: {w}");
        }
        Ok(())
    }

    fn org_name(&self, key_id: &str) -> String {
        self.store()
            .org_name_for_key(key_id)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Verifies and records one delivery. Returns what happened to it.
    async fn handle(
        &self,
        channel: &Channel,
        d: pb::Delivery,
        sink: &mut JsonlSink,
        report: &mut SyncReport,
    ) -> Result<(), AgentError> {
        let sequence = d.sequence;
        let Some(envelope) = d.envelope.map(envelope_from_pb) else {
            self.store()
                .reject(sequence, "delivery without an envelope", "", crate::now())?;
            report.rejected += 1;
            return Ok(());
        };
        let lookup = |kid: &str| self.store().key_record(kid).ok().flatten();
        let mut result = verify_envelope(&envelope, lookup);
        if matches!(result, Err(VerifyError::UnknownKey(_))) {
            // A member enrolled since our last refresh.
            self.refresh_keys(channel).await?;
            result = verify_envelope(&envelope, lookup);
        }
        let envelope_json = envelope.to_json();
        match result {
            Ok(verified) => {
                let signer = self.org_name(&verified.key_id);
                let outcome = self.store().insert_verified(
                    sequence,
                    &d.received_at,
                    &verified,
                    &envelope_json,
                    crate::now(),
                    || sink.write(sequence, &d.received_at, &verified, &signer),
                )?;
                match outcome {
                    InsertOutcome::New => report.new += 1,
                    InsertOutcome::Duplicate => report.duplicates += 1,
                }
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(sequence, %reason, "item refused: failed end-to-end verification");
                eprintln!("warning: refused item at sequence {sequence}: {reason}");
                self.store()
                    .reject(sequence, &reason, &envelope_json, crate::now())?;
                report.rejected += 1;
            }
        }
        report.cursor = sequence;
        Ok(())
    }

    /// Streams from the stored cursor. With `follow == false`, returns once
    /// caught up; otherwise runs until the stream ends or fails.
    pub async fn sync(&self, follow: bool, sink: &mut JsonlSink) -> Result<SyncReport, AgentError> {
        let channel = self.channel().await?;
        self.refresh_keys(&channel).await?;
        let after = self.store().cursor()?;
        let mut report = SyncReport {
            cursor: after,
            ..Default::default()
        };
        let mut stream = pb::subscriber_client::SubscriberClient::new(channel.clone())
            .subscribe(pb::SubscribeRequest {
                after_sequence: after,
                follow,
            })
            .await?
            .into_inner();
        while let Some(msg) = stream.message().await? {
            match msg.event {
                Some(pb::subscribe_response::Event::Item(d)) => {
                    self.handle(&channel, d, sink, &mut report).await?
                }
                Some(pb::subscribe_response::Event::CaughtUp(c)) => {
                    // Items up to the head that we were not sent are not ours.
                    self.store().set_cursor(c.head_sequence)?;
                    report.cursor = report.cursor.max(c.head_sequence);
                    if !follow {
                        break;
                    }
                    tracing::info!(
                        cursor = report.cursor,
                        new = report.new,
                        "caught up; following live"
                    );
                }
                None => {}
            }
        }
        Ok(report)
    }

    /// Follows the hub forever, reconnecting with jittered exponential backoff.
    pub async fn run(&self, sink: &mut JsonlSink, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(500);
        loop {
            let outcome = tokio::select! {
                _ = &mut shutdown => return,
                r = self.sync(true, sink) => r,
            };
            match outcome {
                Ok(r) => {
                    tracing::info!(cursor = r.cursor, "stream ended; reconnecting");
                    backoff = Duration::from_millis(500);
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "connection to hub lost");
                }
            }
            let wait = jitter(backoff);
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }
}

/// 50-100% of `d`, so many agents do not reconnect in lockstep.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = if openssl::rand::rand_bytes(&mut b).is_ok() {
        u16::from_le_bytes(b) as f64 / u16::MAX as f64
    } else {
        0.5
    };
    d.mul_f64(0.5 + r / 2.0)
}
