//! Receiving: `sync` (until caught up) and `run` (continuously). Every item
//! is verified end to end against one signed key directory before it is
//! stored or written to a sink; the cursor moves only after both.

use isac_core::clock::Clock;
use std::sync::Mutex;
use std::time::Duration;

use isac_core::directory::{check_succession, verify_directory, KeyDirectory};
use isac_core::time::parse_rfc3339;
use isac_core::{verify_envelope, Envelope, VerifyError};
use isac_proto::v1 as pb;
use tonic::transport::Channel;

use crate::client::Connector;
use crate::error::AgentError;
use crate::localstore::{InsertOutcome, ItemSummary, LocalStore};
use crate::sinks::{Lapsed, Received, Sinks};
use crate::state::{Loaded, StateDir};

/// An enrolled agent: identity, keys, the key directory it trusts, and its
/// local store.
pub struct Agent {
    pub state: StateDir,
    pub loaded: Loaded,
    pub store: Mutex<LocalStore>,
    directory: Mutex<Option<KeyDirectory>>,
    /// Origin hubs' directories for federated items (`crate::federated`).
    pub(crate) origins: Mutex<crate::federated::Origins>,
    /// What this agent subscribes to (within its entitlement).
    pub filter: pb::SubscriptionFilter,
    /// "Now" for expiry, verification times and new statements: the system
    /// clock, or a test's (shared with a test hub, so time moves without
    /// sleeping).
    pub clock: Clock,
    /// One connector (built on first use: it costs ~20 ms) and one
    /// channel, reused; a new channel after a reset reuses the connector.
    connector: Mutex<Option<Connector>>,
    channel: Mutex<Option<Channel>>,
    /// The hub's URLs (replicas) and which one is in use (`crate::failover`).
    hubs: Vec<String>,
    hub: Mutex<HubChoice>,
    /// What a checkpoint needs besides the log key (`[log]` in agent.toml).
    pub log: crate::tlog::LogTrust,
    /// Watched applications against held indicators (`crate::watch`).
    pub(crate) watch: crate::watch::AgentWatch,
    /// Scanning before signing: the rules and lists (`[scrub]` in
    /// agent.toml) and what the person chose for this run.
    pub scrub: crate::scrub::Scrubber,
    pub scrub_choice: crate::scrub::Choice,
}

/// The URL in use, and failures in a row since a hub last served us.
#[derive(Debug, Default)]
struct HubChoice {
    current: usize,
    failures: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub new: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub cursor: u64,
}

impl Agent {
    pub fn open(state: &StateDir) -> Result<Self, AgentError> {
        let loaded = state.load()?;
        let store = LocalStore::open(&state.path("agent.db"))?;
        // Re-check what we saved (signature and shape); expiry is checked
        // when the directory is used, not when it is loaded.
        let directory = match store.directory_json()? {
            Some(json) => {
                let env =
                    Envelope::from_json(&json).map_err(|e| AgentError::Invalid(e.to_string()))?;
                Some(
                    verify_directory(&env, &loaded.hub_directory_key, None, 0)
                        .map_err(|e| AgentError::Invalid(format!("saved key directory: {e}")))?,
                )
            }
            None => None,
        };
        let origins = crate::federated::load_origins(&store, directory.as_ref());
        let hubs = loaded.identity.hub_urls();
        let current = Self::start_at(&hubs, store.hub_in_use()?.as_deref());
        Ok(Self {
            state: StateDir::new(state.root.clone()),
            loaded,
            store: Mutex::new(store),
            directory: Mutex::new(directory),
            origins: Mutex::new(origins),
            filter: pb::SubscriptionFilter::default(),
            connector: Mutex::new(None),
            channel: Mutex::new(None),
            hubs,
            hub: Mutex::new(HubChoice {
                current,
                failures: 0,
            }),
            clock: Clock::system(),
            log: crate::tlog::LogTrust::default(),
            watch: Default::default(),
            scrub: Default::default(),
            scrub_choice: Default::default(),
        })
    }

    /// Where to start: the URL last used, if it is still listed.
    fn start_at(hubs: &[String], in_use: Option<&str>) -> usize {
        in_use
            .and_then(|u| hubs.iter().position(|h| h == u))
            .unwrap_or(0)
    }

    /// Replaces the URLs to use (`hubs` in agent.toml); an empty list
    /// keeps the enrolled ones.
    pub fn set_hubs(&mut self, configured: &[String]) -> Result<(), AgentError> {
        let hubs = crate::failover::choose_hubs(configured, self.loaded.identity.hub_urls());
        let in_use = self.store().hub_in_use()?;
        self.hub.lock().expect("hub lock").current = Self::start_at(&hubs, in_use.as_deref());
        self.hubs = hubs;
        self.reset_channel();
        Ok(())
    }

    /// The hub URLs this agent fails over between, in order.
    pub fn hubs(&self) -> &[String] {
        &self.hubs
    }

    /// The URL in use (or to be tried next).
    pub fn hub_url(&self) -> &str {
        &self.hubs[self.hub.lock().expect("hub lock").current]
    }

    /// The hub served us: the failure count starts again, and `status`
    /// names this URL.
    fn hub_served(&self) -> Result<(), AgentError> {
        self.hub.lock().expect("hub lock").failures = 0;
        let url = self.hub_url().to_owned();
        if self.store().hub_in_use()?.as_deref() != Some(url.as_str()) {
            self.store().set_hub_in_use(&url)?;
        }
        Ok(())
    }

    /// After a failed attempt: moves to the next URL if the hub is down
    /// (`crate::failover::after_failure`) and returns how long to wait.
    fn after_failure(&self, e: &AgentError) -> Duration {
        let down = crate::failover::hub_is_down(e);
        let (step, from) = {
            let mut h = self.hub.lock().expect("hub lock");
            h.failures = h.failures.saturating_add(1);
            let step = crate::failover::after_failure(self.hubs.len(), h.current, h.failures, down);
            let from = h.current;
            h.current = step.hub;
            (step, from)
        };
        if step.hub != from {
            tracing::warn!(from = %self.hubs[from], to = %self.hubs[step.hub], "failing over to another hub URL");
            eprintln!(
                "warning: {} is down; failing over to {}",
                self.hubs[from], self.hubs[step.hub]
            );
            self.reset_channel();
        }
        jitter(step.wait)
    }

    /// One call to the hub, at the URL in use, moving on to the next URL
    /// while the hub is down (as [`Agent::sync`] does: each other URL
    /// tried once, with jittered waits). A refusal is the same at every
    /// replica and is returned at once. `call` may run more than once, so
    /// it must be safe to repeat: publishing is, since the hub recognises a
    /// statement id it already holds.
    pub async fn on_hub<T, F, Fut>(&self, mut call: F) -> Result<T, AgentError>
    where
        F: FnMut(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, AgentError>>,
    {
        let mut tries = 0;
        loop {
            let outcome = match self.channel().await {
                Ok(channel) => call(channel).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(v) => {
                    self.hub_served()?;
                    return Ok(v);
                }
                Err(e) if crate::failover::hub_is_down(&e) && tries + 1 < self.hubs.len() => {
                    tries += 1;
                    let wait = self.after_failure(&e);
                    tracing::warn!(error = %e, "hub down; trying the next URL");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn org_id(&self) -> &str {
        &self.loaded.identity.org_id
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, LocalStore> {
        self.store.lock().expect("local store lock")
    }

    pub fn directory(&self) -> Option<KeyDirectory> {
        self.directory.lock().expect("directory lock").clone()
    }

    /// A channel to the hub; tonic reconnects it by itself when the
    /// connection drops.
    pub async fn channel(&self) -> Result<Channel, AgentError> {
        if let Some(c) = self.channel.lock().expect("channel lock").clone() {
            return Ok(c);
        }
        let url = self.hub_url().to_owned();
        let c = self.connector()?.connect(&url).await?;
        *self.channel.lock().expect("channel lock") = Some(c.clone());
        Ok(c)
    }

    /// The TLS connector for this agent's identity, built once.
    pub fn connector(&self) -> Result<Connector, AgentError> {
        let mut slot = self.connector.lock().expect("connector lock");
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = Connector::new(crate::client::Trust::Ca {
            ca: &self.loaded.ca,
            client: Some((&self.loaded.tls_cert, &self.loaded.tls_key)),
        })?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Forgets the cached channel (a broken connection); the connector stays.
    pub fn reset_channel(&self) {
        self.channel.lock().expect("channel lock").take();
    }

    /// Tells the hub how far we have durably processed; best effort.
    async fn acknowledge(&self, channel: &Channel, cursor: Vec<u8>) {
        let r = pb::subscriber_client::SubscriberClient::new(channel.clone())
            .acknowledge(pb::AckRequest {
                sequence: 0,
                cursor,
            })
            .await;
        if let Err(e) = r {
            tracing::debug!(error = %e, "acknowledgement not delivered; will send again");
        }
    }

    /// Marks held items past their effective `valid_until` expired and
    /// tells the sinks (HTTP receivers first; a receiver that is down holds
    /// the expiry until the next time).
    pub async fn expire_due(&self, sinks: &mut Sinks) -> Result<u64, AgentError> {
        let due = self
            .store()
            .due_for_expiry(&isac_core::time::format_rfc3339(self.clock.now()))?;
        for d in &due {
            let statement = isac_core::Statement::from_canonical_bytes(d.statement_json.as_bytes())
                .map_err(|e| AgentError::Invalid(format!("held item {}: {e}", d.summary.id)))?;
            // The stored bytes are what was signed: v2 exactly when they are
            // the statement's RFC 8785 form.
            let format = if statement.canonical_bytes_v2() == d.statement_json.as_bytes() {
                isac_core::statement::Format::V2
            } else {
                isac_core::statement::Format::V1
            };
            let verified = isac_core::VerifiedStatement {
                statement,
                key_id: d.key_id.clone(),
                digest: d.digest.clone(),
                format,
            };
            // The name the held directory gives the signing key.
            let signer = self.org_name(&d.key_id);
            let lapsed = Lapsed {
                summary: &d.summary,
                valid_until: &d.valid_until,
                item: Received {
                    sequence: d.summary.sequence,
                    received_at: &d.received_at,
                    verified: &verified,
                    signer_org_name: &signer,
                    valid_until: Some(&d.valid_until),
                    provenance: None,
                    retracted: None,
                },
            };
            sinks.send_expired(&lapsed).await?;
            self.store()
                .mark_expired(&d.summary, || sinks.write_expired(&lapsed))?;
            self.watch.touch_id(&d.summary.id);
        }
        self.update_exposures(sinks).await?;
        Ok(due.len() as u64)
    }

    /// Fetches the signed key directory and accepts it if it is signed by the
    /// pinned hub key, not older than the one held, not expired, and does not
    /// rewrite the held one's history.
    pub async fn refresh_directory(&self, channel: &Channel) -> Result<u64, AgentError> {
        let resp = pb::key_directory_client::KeyDirectoryClient::new(channel.clone())
            .list_keys(pb::ListKeysRequest {})
            .await?
            .into_inner();
        let envelope = resp
            .signed_directory
            .map(Envelope::from)
            .ok_or_else(|| AgentError::Invalid("the hub sent no signed key directory".into()))?;
        self.accept_directory(&envelope)
    }

    /// Accepts a signed directory (see [`Agent::refresh_directory`]).
    pub fn accept_directory(&self, envelope: &Envelope) -> Result<u64, AgentError> {
        let mut held = self.directory.lock().expect("directory lock");
        let held_version = held.as_ref().map(|d| d.version);
        let dir = verify_directory(
            envelope,
            &self.loaded.hub_directory_key,
            held_version,
            self.clock.now(),
        )
        .map_err(|e| AgentError::Directory(e.to_string()))?;
        if let Some(old) = held.as_ref() {
            check_succession(old, &dir).map_err(|e| AgentError::Directory(e.to_string()))?;
        }
        let flagged = self
            .store()
            .save_directory(dir.version, &envelope.to_json(), &dir)?;
        if flagged > 0 {
            tracing::warn!(
                flagged,
                "items signed with keys since revoked or retired were flagged"
            );
            eprintln!("warning: {flagged} held item(s) were signed after their key was revoked or retired; flagged");
        }
        let version = dir.version;
        *held = Some(dir);
        Ok(version)
    }

    /// Makes sure the held directory is at least `min_version` and not expired.
    async fn ensure_directory(
        &self,
        channel: &Channel,
        min_version: u64,
    ) -> Result<(), AgentError> {
        let fresh_enough = self
            .directory
            .lock()
            .expect("directory lock")
            .as_ref()
            .is_some_and(|d| {
                d.version >= min_version
                    && parse_rfc3339(&d.expires).is_ok_and(|e| self.clock.now() < e)
            });
        if !fresh_enough {
            self.refresh_directory(channel).await?;
        }
        Ok(())
    }

    fn verify(&self, envelope: &Envelope) -> Result<isac_core::VerifiedStatement, VerifyError> {
        let held = self.directory.lock().expect("directory lock");
        // One directory for the whole check: never a mix of two.
        verify_envelope(envelope, |kid| held.as_ref().and_then(|d| d.record(kid)))
    }

    /// When `statement` stops being in force (`isac_core::lifetime`): its
    /// own `valid_until`, else the default lifetime of its kind from the
    /// hub's signed directory (none in a directory without defaults).
    pub fn effective_valid_until(&self, statement: &isac_core::Statement) -> Option<String> {
        let held = self.directory.lock().expect("directory lock");
        let none = isac_core::lifetime::Lifetimes::new();
        let lifetimes = held.as_ref().map_or(&none, |d| &d.default_lifetimes);
        isac_core::lifetime::effective_valid_until(statement, lifetimes)
    }

    fn org_name(&self, key_id: &str) -> String {
        self.directory
            .lock()
            .expect("directory lock")
            .as_ref()
            .and_then(|d| d.entry(key_id).map(|k| k.org_name.clone()))
            .unwrap_or_default()
    }

    /// Verifies one delivery; stores nothing.
    async fn check(&self, channel: &Channel, d: pb::Delivery) -> Result<Checked, AgentError> {
        // Numbered in local order by `handle_batch`.
        let sequence = 0;
        let cursor = d.cursor;
        let log_index = d.log_index;
        let Some(envelope) = d.envelope.map(Envelope::from) else {
            return Ok(Checked::Refused {
                sequence,
                cursor,
                reason: "delivery without an envelope".into(),
                envelope_json: String::new(),
                log_index,
            });
        };
        self.ensure_directory(channel, d.directory_version).await?;
        if !d.provenance.is_empty() {
            use crate::federated::FederatedCheck;
            let envelope_json = envelope.to_json();
            return Ok(
                match self
                    .check_federated(channel, &envelope, &d.provenance, &d.audience_openings)
                    .await?
                {
                    FederatedCheck::Verified { received, signer } => {
                        let isac_core::federation::Received {
                            verified,
                            provenance,
                            ..
                        } = *received;
                        let named_as = named_as(&verified.statement, &d.audience_openings);
                        self.verified(
                            Delivered {
                                cursor,
                                received_at: d.received_at,
                                log_index,
                                envelope_json,
                            },
                            verified,
                            Signer {
                                name: signer,
                                named_as,
                                provenance: Some(provenance),
                            },
                        )?
                    }
                    FederatedCheck::Refused(reason) => Checked::Refused {
                        sequence,
                        cursor,
                        reason,
                        envelope_json,
                        log_index,
                    },
                },
            );
        }
        let mut result = self.verify(&envelope);
        if matches!(result, Err(VerifyError::UnknownKey(_))) {
            // A member enrolled or rotated since our directory was signed.
            self.refresh_directory(channel).await?;
            result = self.verify(&envelope);
        }
        let envelope_json = envelope.to_json();
        Ok(match result {
            Ok(verified) => {
                let signer = Signer {
                    name: self.org_name(&verified.key_id),
                    named_as: named_as(&verified.statement, &d.audience_openings),
                    provenance: None,
                };
                self.verified(
                    Delivered {
                        cursor,
                        received_at: d.received_at,
                        log_index,
                        envelope_json,
                    },
                    verified,
                    signer,
                )?
            }
            Err(e) => Checked::Refused {
                sequence,
                cursor,
                reason: e.to_string(),
                envelope_json,
                log_index,
            },
        })
    }

    /// A delivery that verified, local or federated: whether it is held
    /// already (a redelivery) and its effective expiry. Numbered in local
    /// order later, by `handle_batch`.
    fn verified(
        &self,
        delivered: Delivered,
        verified: isac_core::VerifiedStatement,
        signer: Signer,
    ) -> Result<Checked, AgentError> {
        let Delivered {
            cursor,
            received_at,
            log_index,
            envelope_json,
        } = delivered;
        let s = &verified.statement;
        Ok(Checked::Verified {
            sequence: 0,
            cursor,
            held: self.store().holds(&s.id.to_string(), s.revision)?,
            valid_until: self.effective_valid_until(s),
            signer: signer.name,
            named_as: signer.named_as,
            received_at,
            verified: Box::new(verified),
            envelope_json,
            log_index,
            provenance: signer.provenance,
        })
    }

    /// For a retraction: the item it withdraws as held (newest revision).
    fn retracted_item(&self, s: &isac_core::Statement) -> Result<Option<ItemSummary>, AgentError> {
        let isac_core::Body::Retraction(r) = &s.body else {
            return Ok(None);
        };
        Ok(self
            .store()
            .show(&r.target.to_string())?
            .map(|(summary, _, _)| summary))
    }

    /// Records one checked delivery (the writing sinks write inside the
    /// item's transaction) and moves the cursor.
    fn commit(
        &self,
        c: Checked,
        sinks: &mut Sinks,
        report: &mut SyncReport,
    ) -> Result<(), AgentError> {
        match c {
            Checked::Verified {
                sequence,
                cursor,
                received_at,
                verified,
                envelope_json,
                signer,
                valid_until,
                named_as,
                log_index,
                provenance,
                ..
            } => {
                let provenance_json = provenance
                    .as_ref()
                    .map(|p| String::from_utf8_lossy(&p.canonical_bytes()).into_owned());
                let retracted = self.retracted_item(&verified.statement)?;
                let outcome = self.store().insert_verified(
                    sequence,
                    &cursor,
                    &received_at,
                    &verified,
                    &envelope_json,
                    valid_until.as_deref(),
                    self.clock.now(),
                    provenance_json.as_deref(),
                    || {
                        sinks.write(&Received {
                            sequence,
                            received_at: &received_at,
                            verified: &verified,
                            signer_org_name: &signer,
                            valid_until: valid_until.as_deref(),
                            provenance: provenance.as_ref(),
                            retracted: retracted.as_ref(),
                        })
                    },
                )?;
                match outcome {
                    InsertOutcome::New => {
                        report.new += 1;
                        report.cursor = sequence;
                        let s = &verified.statement;
                        self.store()
                            .set_named_as(&s.id.to_string(), s.revision, &named_as)?;
                        if let isac_core::Body::Retraction(r) = &s.body {
                            self.store().mark_retracted(&r.target.to_string())?;
                        }
                        self.watch.touch(s);
                    }
                    InsertOutcome::Duplicate => report.duplicates += 1,
                }
                if let Some(index) = log_index {
                    let s = &verified.statement;
                    self.store()
                        .set_log_index(&s.id.to_string(), s.revision, index)?;
                }
            }
            Checked::Refused {
                sequence,
                cursor,
                reason,
                envelope_json,
                ..
            } => {
                tracing::warn!(sequence, %reason, "item refused: failed end-to-end verification");
                eprintln!("warning: refused item (local number {sequence}): {reason}");
                self.store().reject(
                    sequence,
                    &cursor,
                    &reason,
                    &envelope_json,
                    self.clock.now(),
                )?;
                report.rejected += 1;
                report.cursor = sequence;
            }
        }
        Ok(())
    }

    /// Verifies a run of deliveries, hands the new ones to the network sinks
    /// together (outside the store's transaction: if a receiver stays down
    /// none is committed and all come again), then records each in order.
    async fn handle_batch(
        &self,
        channel: &Channel,
        deliveries: Vec<pb::Delivery>,
        sinks: &mut Sinks,
        report: &mut SyncReport,
    ) -> Result<(), AgentError> {
        let mut checked = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            checked.push(self.check(channel, d).await?);
        }
        // Nothing of the batch is stored unless all of it is in the log.
        let proven = match log_leaves(&checked, self.org_id()) {
            Ok(items) => self.prove(channel, &items).await.map(|_| ()),
            Err(failure) => Err(self.alert_at_trusted(failure)),
        };
        if let Err(fault) = proven {
            return Err(self.fault(fault, Some(sinks)).await);
        }
        // Local order: the next numbers after what is recorded, in delivery
        // order, for what will be recorded (new and refused items), so the
        // network sinks see the numbers the store will hold.
        let mut next_local = self.store().cursor()?;
        for c in &mut checked {
            match c {
                Checked::Verified {
                    sequence,
                    held: false,
                    ..
                }
                | Checked::Refused { sequence, .. } => {
                    next_local += 1;
                    *sequence = next_local;
                }
                Checked::Verified { held: true, .. } => {}
            }
        }
        // What each new retraction withdraws: held, or earlier in this batch.
        let mut retracted = Vec::with_capacity(checked.len());
        for (i, c) in checked.iter().enumerate() {
            let Checked::Verified {
                verified,
                held: false,
                ..
            } = c
            else {
                retracted.push(None);
                continue;
            };
            let isac_core::Body::Retraction(r) = &verified.statement.body else {
                retracted.push(None);
                continue;
            };
            let earlier = checked[..i].iter().rev().find_map(|e| match e {
                Checked::Verified {
                    verified: v,
                    sequence,
                    ..
                } if v.statement.id == r.target => {
                    Some(ItemSummary::of_statement(&v.statement, *sequence))
                }
                _ => None,
            });
            retracted.push(match earlier {
                Some(t) => Some(t),
                None => self.retracted_item(&verified.statement)?,
            });
        }
        let fresh: Vec<Received<'_>> = checked
            .iter()
            .zip(&retracted)
            .filter_map(|(c, retracted)| match c {
                Checked::Verified {
                    sequence,
                    received_at,
                    verified,
                    signer,
                    valid_until,
                    held: false,
                    provenance,
                    ..
                } => Some(Received {
                    sequence: *sequence,
                    received_at,
                    verified,
                    signer_org_name: signer,
                    valid_until: valid_until.as_deref(),
                    provenance: provenance.as_ref(),
                    retracted: retracted.as_ref(),
                }),
                _ => None,
            })
            .collect();
        sinks.send(&fresh).await?;
        for c in checked {
            self.commit(c, sinks, report)?;
        }
        self.update_exposures(sinks).await
    }

    /// Streams from the stored cursor. With `follow == false`, returns once
    /// caught up; otherwise runs until the stream ends or fails. A hub URL
    /// that is down is failed over (each other URL tried once, with
    /// jittered waits): the stored cursor is the same at every replica, so
    /// the next one resumes exactly where this one stopped.
    pub async fn sync(&self, follow: bool, sinks: &mut Sinks) -> Result<SyncReport, AgentError> {
        let mut total = SyncReport::default();
        let mut tries = 0;
        loop {
            let mut part = SyncReport::default();
            let outcome = self.sync_once(follow, sinks, &mut part).await;
            total.new += part.new;
            total.duplicates += part.duplicates;
            total.rejected += part.rejected;
            total.cursor = total.cursor.max(part.cursor);
            match outcome {
                Ok(()) => return Ok(total),
                Err(e) if crate::failover::hub_is_down(&e) && tries + 1 < self.hubs.len() => {
                    tries += 1;
                    let wait = self.after_failure(&e);
                    tracing::warn!(error = %e, "hub down; trying the next URL");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt of [`Agent::sync`] at the URL in use; `report` counts
    /// what was recorded, also when it fails part way.
    async fn sync_once(
        &self,
        follow: bool,
        sinks: &mut Sinks,
        report: &mut SyncReport,
    ) -> Result<(), AgentError> {
        if let Some(alert) = self.log_alert()? {
            // Told again on every refused run, so a receiver that missed it
            // (or `log verify` raising it without sinks) still hears of it.
            sinks.alert(&alert.line()).await;
            return Err(AgentError::LogAlert(alert.message));
        }
        let channel = self.channel().await?;
        self.refresh_directory(&channel).await?;
        // Where the hub's log stands now, before anything is read: a
        // rollback shows here even when nothing new arrives.
        match self.advance_log(&channel, 0).await {
            Ok(_) => {}
            Err(crate::tlog::Fault::Hub(AgentError::Hub {
                code: tonic::Code::FailedPrecondition,
                message,
            })) => {
                tracing::info!(%message, "the hub has no checkpoint yet");
            }
            Err(f) => return Err(self.fault(f, Some(sinks)).await),
        }
        // Registrations and files changed while no agent ran.
        self.update_exposures(sinks).await?;
        let after = self.store().hub_cursor()?;
        report.cursor = self.store().cursor()?;
        let request = |cursor| pb::SubscribeRequest {
            after_sequence: 0,
            follow,
            filter: Some(self.filter.clone()),
            include_expired: false,
            cursor,
        };
        let mut client = pb::subscriber_client::SubscriberClient::new(channel.clone());
        let mut stream = match client.subscribe(request(after)).await {
            Ok(s) => s.into_inner(),
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                // The hub's history is shorter than ours (restored from a
                // backup), or it cannot open our cursor: continue where it
                // says; what we hold stays held and is recognised if sent again.
                use base64::Engine;
                let resume = status
                    .metadata()
                    .get("x-isac-resume-cursor")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                    .ok_or_else(|| AgentError::from(status.clone()))?;
                tracing::warn!(
                    message = status.message(),
                    "hub asked us to resume elsewhere"
                );
                eprintln!("warning: {}", status.message());
                self.store().set_hub_cursor(&resume)?;
                client.subscribe(request(resume)).await?.into_inner()
            }
            Err(status) => return Err(status.into()),
        };
        self.hub_served()?;
        let mut next = None;
        // Watched files and held items' `valid_until` are looked at between
        // items, at least every second: an item lapses in its sinks within
        // a second of its expiry, not at the next sync.
        let mut watch_tick = tokio::time::interval(WATCH_EVERY);
        watch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = match next.take() {
                Some(m) => m,
                None => {
                    let message = tokio::select! {
                        m = stream.message() => m?,
                        _ = watch_tick.tick() => {
                            // Also updates exposures.
                            self.expire_due(sinks).await?;
                            continue;
                        }
                    };
                    match message {
                        Some(m) => m,
                        None => break,
                    }
                }
            };
            match msg.event {
                Some(pb::subscribe_response::Event::Item(d)) => {
                    // Items already here go to the network sinks together
                    // (HEC and Elasticsearch take them in one request).
                    let mut batch = vec![d];
                    while batch.len() < MAX_BATCH {
                        match tokio::time::timeout(Duration::ZERO, stream.message()).await {
                            Ok(Ok(Some(pb::SubscribeResponse {
                                event: Some(pb::subscribe_response::Event::Item(d)),
                            }))) => batch.push(d),
                            Ok(Ok(Some(other))) => {
                                next = Some(other);
                                break;
                            }
                            Ok(Ok(None)) | Err(_) => break,
                            Ok(Err(status)) => return Err(status.into()),
                        }
                    }
                    let before = report.new + report.duplicates + report.rejected;
                    self.handle_batch(&channel, batch, sinks, report).await?;
                    let after = report.new + report.duplicates + report.rejected;
                    if follow && before / 256 != after / 256 {
                        let cursor = self.store().hub_cursor()?;
                        self.acknowledge(&channel, cursor).await;
                    }
                }
                Some(pb::subscribe_response::Event::CaughtUp(c)) => {
                    // Items up to the head that we were not sent are not ours.
                    self.store().set_hub_cursor(&c.cursor)?;
                    self.expire_due(sinks).await?;
                    self.acknowledge(&channel, c.cursor).await;
                    if !follow {
                        break;
                    }
                    tracing::info!(
                        cursor = report.cursor,
                        new = report.new,
                        "caught up; following live"
                    );
                }
                Some(pb::subscribe_response::Event::DirectoryChanged(c)) => {
                    tracing::info!(version = c.version, "key directory changed; refreshing");
                    self.ensure_directory(&channel, c.version).await?;
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Follows the hub until `shutdown`, reconnecting with jittered
    /// exponential backoff, and renewing the client certificate as it nears
    /// expiry.
    pub async fn run(
        &mut self,
        sinks: &mut Sinks,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            match crate::keys::renew_if_due(self).await {
                Ok(true) => eprintln!("client certificate renewed"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "certificate renewal failed; will retry"),
            }
            let mut report = SyncReport::default();
            let outcome = tokio::select! {
                _ = &mut shutdown => return,
                r = self.sync_once(true, sinks, &mut report) => r,
            };
            let wait = match outcome {
                Ok(()) => {
                    tracing::info!(cursor = report.cursor, "stream ended; reconnecting");
                    jitter(crate::failover::FIRST_BACKOFF)
                }
                Err(e @ AgentError::LogAlert(_)) => {
                    // Never retried: an operator decides (`log accept`).
                    tracing::error!(error = %e, "stopped following the hub");
                    eprintln!("stopped following the hub until the log alert is cleared");
                    shutdown.await;
                    return;
                }
                Err(e) => {
                    let failed = self.hub_url().to_owned();
                    let wait = self.after_failure(&e);
                    tracing::warn!(error = %e, hub = %failed, next = %self.hub_url(), retry_in_ms = wait.as_millis() as u64, "connection to hub lost");
                    eprintln!(
                        "warning: {e}; retrying {} in {} ms",
                        self.hub_url(),
                        wait.as_millis()
                    );
                    wait
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Reloads keys and certificates from the state dir (after a rotation or renewal).
    pub fn reload(&mut self) -> Result<(), AgentError> {
        self.loaded = self.state.load()?;
        self.connector.lock().expect("connector lock").take();
        self.reset_channel();
        Ok(())
    }
}

/// Most deliveries handled (and sent to network sinks) together.
const MAX_BATCH: usize = 256;

/// How often a following agent looks at its watched files.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// A delivery after verification, before it is recorded.
enum Checked {
    Verified {
        /// Place in this agent's local order (set for new items).
        sequence: u64,
        /// The hub's sealed position of this delivery.
        cursor: Vec<u8>,
        received_at: String,
        verified: Box<isac_core::VerifiedStatement>,
        envelope_json: String,
        signer: String,
        /// Its effective expiry (RFC 3339), if it has one.
        valid_until: Option<String>,
        named_as: Vec<String>,
        /// Already in the local store (a redelivery): not sent again.
        held: bool,
        /// Its leaf index in the hub's log.
        log_index: Option<u64>,
        /// For a federated item: its provenance, verified.
        provenance: Option<isac_core::federation::Provenance>,
    },
    Refused {
        sequence: u64,
        cursor: Vec<u8>,
        reason: String,
        envelope_json: String,
        log_index: Option<u64>,
    },
}

/// Where a delivery sits, as every checked item carries it.
struct Delivered {
    cursor: Vec<u8>,
    received_at: String,
    log_index: Option<u64>,
    envelope_json: String,
}

/// Who a verified item is from, as this agent shows it: the signing key's
/// organisation name, the audience entries naming this member (none for
/// a federated item) and, for a federated item, its verified provenance.
struct Signer {
    name: String,
    named_as: Vec<String>,
    provenance: Option<isac_core::federation::Provenance>,
}

/// What of a batch must be proven in the log: every item (new, held and
/// refused ones: a refused item that is not in the log either is reported
/// as both), its leaf the envelope as delivered. Not an item
/// this member published anonymously: it is delivered its own signed
/// original, while the log holds the hub-signed copy every other member
/// receives and proves (only our own: another member's signed original
/// would be a hub leaking its identity, and is proven like anything else).
/// A delivery without a position fails the batch.
fn log_leaves(
    checked: &[Checked],
    own_org: &str,
) -> Result<Vec<crate::tlog::ToProve>, crate::tlog::Failure> {
    let mut out = Vec::new();
    let mut unplaced = Vec::new();
    for c in checked {
        let (item, index, leaf, signature) = match c {
            Checked::Verified {
                verified,
                log_index,
                envelope_json,
                ..
            } => {
                let s = &verified.statement;
                if s.anonymous && s.source == own_org {
                    continue;
                }
                (s.id.to_string(), *log_index, envelope_json, None)
            }
            Checked::Refused {
                envelope_json,
                log_index,
                reason,
                ..
            } => {
                if envelope_json.is_empty() {
                    continue;
                }
                let item = Envelope::from_json(envelope_json)
                    .ok()
                    .and_then(|e| isac_core::Statement::from_canonical_bytes(&e.payload).ok())
                    .map_or("an unreadable statement".to_owned(), |s| s.id.to_string());
                (item, *log_index, envelope_json, Some(reason.clone()))
            }
        };
        match index {
            Some(leaf_index) => out.push(crate::tlog::ToProve {
                item,
                leaf_index,
                leaf: leaf.as_bytes().to_vec(),
                signature,
            }),
            None => unplaced.push(match signature {
                Some(s) => format!("{item} (its signature failed too: {s})"),
                None => item,
            }),
        }
    }
    if unplaced.is_empty() {
        Ok(out)
    } else {
        Err(crate::tlog::Failure::NoPosition(unplaced))
    }
}

/// The audience entries that name us, keeping only openings that match a
/// commitment the source signed (the hub cannot add names).
fn named_as(statement: &isac_core::Statement, openings: &[pb::AudienceOpening]) -> Vec<String> {
    openings
        .iter()
        .filter_map(|o| {
            let entry: isac_core::tlp::AudienceRef = o.entry.parse().ok()?;
            let opening = isac_core::audience::AudienceOpening::new(entry, o.salt.clone());
            if statement.audience.contains(&opening.commitment()) {
                Some(o.entry.clone())
            } else {
                tracing::warn!(id = %statement.id, "an audience opening matches nothing the source signed; ignored");
                None
            }
        })
        .collect()
}

/// 50-100% of `d`, so many agents do not reconnect in lockstep.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = if openssl::rand::rand_bytes(&mut b).is_ok() {
        u16::from_le_bytes(b) as f64 / u16::MAX as f64
    } else {
        0.5
    };
    crate::failover::jittered(d, r)
}
