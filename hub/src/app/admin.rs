//! Operator actions, one implementation for every front door: the `Admin`
//! gRPC service (remote, admin certificate) and the `hub` CLI on a local
//! data dir. Inputs and answers are domain types (the gRPC adapter
//! `grpc::admin` converts the `isac.v1` admin messages at the edge); every
//! action is recorded in the audit trail with its actor.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use isac_core::enrollment::EnrollmentToken;
use isac_core::membership::{MemberStatus, Role, StatusChange};
use isac_core::names::{is_slug, ANONYMOUS_ORG, HUB_ATTESTATION_ORG, LOG_ORG};
use openssl::rand::rand_bytes;

use crate::app::Clock;
use crate::config::HubConfig;
use crate::error::ApiError;
use crate::store::{AgentDetail, AuditRow, KeyRow, MemberRow, PersonRow, Store, TokenRecord};

/// Who acts, on which hub, at which time.
pub struct Admin<'a> {
    pub store: &'a Store,
    pub config: &'a HubConfig,
    pub ca_fingerprint: &'a str,
    /// `local:USER` or `org:ID/agent:NAME`.
    pub actor: String,
    /// Dates tokens, revocations and audit entries.
    pub clock: Clock,
}

/// A one-time enrollment token, as the operator hands it over.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub org_id: String,
    /// The token's text form (`isac-enroll:...`).
    pub token: String,
    pub expires_at: i64,
}

/// A member to add. `name` defaults to the id; the token lives for the
/// hub's `token_ttl_secs` unless `token_ttl_secs` says otherwise.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub org_id: String,
    pub name: Option<String>,
    pub role: Role,
    pub token_ttl_secs: Option<u64>,
}

/// A member with its count of agents in use and keys not revoked.
#[derive(Debug, Clone)]
pub struct MemberSummary {
    pub member: MemberRow,
    pub active_agents: u32,
    pub active_keys: u32,
}

/// An agent of a member, with how far it is behind the hub's head.
#[derive(Debug, Clone)]
pub struct AgentStanding {
    pub agent: AgentDetail,
    pub lag: u64,
}

#[derive(Debug, Clone)]
pub struct MemberDetail {
    pub summary: MemberSummary,
    pub agents: Vec<AgentStanding>,
    pub keys: Vec<KeyRow>,
    pub people: Vec<PersonRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    /// Organisation ids, sorted, no duplicates.
    pub members: Vec<String>,
}

/// A signing key to revoke, from `effective_at` (now when `None`).
#[derive(Debug, Clone)]
pub struct Revocation {
    pub key_id: String,
    pub effective_at: Option<i64>,
    pub reason: String,
}

/// Most audit entries one request returns, and how many when not said.
pub const AUDIT_LIMIT_MAX: u32 = 10_000;
pub const AUDIT_LIMIT_DEFAULT: u32 = 100;

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::InvalidArgument(m.into())
}

fn check_org_id(org_id: &str) -> Result<(), ApiError> {
    if is_slug(org_id) {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{}` is not a valid organisation id: use lowercase letters, digits, `-` or `_` (up to 63), e.g. acme-bank",
            org_id.escape_default()
        )))
    }
}

fn check_display(field: &str, v: &str, allow_empty: bool) -> Result<(), ApiError> {
    if (!allow_empty && v.trim().is_empty())
        || v.chars().count() > 200
        || v.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "{field} must be 1 to 200 printable characters"
        )));
    }
    Ok(())
}

impl Admin<'_> {
    fn now(&self) -> i64 {
        self.clock.now()
    }

    fn ttl(&self, requested: Option<u64>) -> u64 {
        requested
            .filter(|t| *t > 0)
            .unwrap_or(self.config.token_ttl_secs)
    }

    async fn issue_token(&self, org_id: &str, ttl_secs: u64) -> Result<IssuedToken, ApiError> {
        let mut secret = [0u8; 32];
        rand_bytes(&mut secret).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
        let token = EnrollmentToken {
            org_id: org_id.to_owned(),
            secret: URL_SAFE_NO_PAD.encode(secret),
            ca_fingerprint: self.ca_fingerprint.to_owned(),
        };
        let created_at = self.now();
        let expires_at = created_at.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX));
        self.store
            .add_token(
                TokenRecord {
                    token_hash: token.secret_hash(),
                    org_id: org_id.to_owned(),
                    created_at,
                    expires_at,
                },
                &self.actor,
            )
            .await?;
        Ok(IssuedToken {
            org_id: org_id.to_owned(),
            token: token.to_string(),
            expires_at,
        })
    }

    pub async fn add_member(&self, new: NewMember) -> Result<IssuedToken, ApiError> {
        let NewMember {
            org_id,
            name,
            role,
            token_ttl_secs,
        } = new;
        check_org_id(&org_id)?;
        if org_id == ANONYMOUS_ORG {
            return Err(invalid("`anonymous` is reserved for anonymous submissions"));
        }
        if org_id == HUB_ATTESTATION_ORG {
            return Err(invalid(
                "`isac-hub` is reserved for what the hub signs for members (TAXII submissions)",
            ));
        }
        if org_id == LOG_ORG {
            return Err(invalid("`isac-log` is reserved for the hub's log key"));
        }
        let name = name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| org_id.clone());
        check_display("name", &name, false)?;
        self.store
            .add_member(
                MemberRow {
                    org_id: org_id.clone(),
                    name,
                    role,
                    status: MemberStatus::Active,
                    created_at: self.now(),
                },
                &self.actor,
            )
            .await?;
        self.issue_token(&org_id, self.ttl(token_ttl_secs)).await
    }

    pub async fn new_token(
        &self,
        org_id: &str,
        token_ttl_secs: Option<u64>,
    ) -> Result<IssuedToken, ApiError> {
        check_org_id(org_id)?;
        if self.store.member(org_id).await?.is_none() {
            return Err(ApiError::FailedPrecondition(format!(
                "no member `{org_id}`; add it first with `hub member add {org_id}`"
            )));
        }
        self.issue_token(org_id, self.ttl(token_ttl_secs)).await
    }

    pub async fn list_members(&self) -> Result<Vec<MemberSummary>, ApiError> {
        Ok(self
            .store
            .list_members()
            .await?
            .into_iter()
            .map(|(member, active_agents, active_keys)| MemberSummary {
                member,
                active_agents,
                active_keys,
            })
            .collect())
    }

    pub async fn show_member(&self, org_id: &str) -> Result<MemberDetail, ApiError> {
        let summary = self
            .list_members()
            .await?
            .into_iter()
            .find(|s| s.member.org_id == org_id)
            .ok_or_else(|| {
                ApiError::FailedPrecondition(format!("no member `{}`", org_id.escape_default()))
            })?;
        let head = self.store.head_from_db().await?;
        Ok(MemberDetail {
            summary,
            agents: self
                .store
                .agents_of(org_id)
                .await?
                .into_iter()
                .map(|agent| AgentStanding {
                    lag: head.saturating_sub(agent.acked_seq),
                    agent,
                })
                .collect(),
            keys: self.store.keys_of(org_id).await?,
            people: self.store.list_people(Some(org_id)).await?,
        })
    }

    pub async fn set_member_status(
        &self,
        org_id: &str,
        change: StatusChange,
    ) -> Result<MemberRow, ApiError> {
        check_org_id(org_id)?;
        let m = self
            .store
            .set_member_status(org_id, change, &self.actor, self.now())
            .await?;
        tracing::info!(org = %m.org_id, status = %m.status, actor = %self.actor, "member status changed");
        Ok(m)
    }

    pub async fn add_person(&self, person: PersonRow) -> Result<PersonRow, ApiError> {
        check_org_id(&person.org_id)?;
        if !is_slug(&person.person_id) {
            return Err(invalid("person id must be a lowercase slug such as jdoe"));
        }
        check_display("name", &person.name, false)?;
        check_display("contact", &person.contact, true)?;
        self.store
            .add_person(person.clone(), &self.actor, self.now())
            .await?;
        Ok(person)
    }

    /// Everyone's people, or one member's.
    pub async fn list_people(&self, org_id: Option<&str>) -> Result<Vec<PersonRow>, ApiError> {
        Ok(self.store.list_people(org_id).await?)
    }

    pub async fn remove_person(
        &self,
        org_id: &str,
        person_id: &str,
    ) -> Result<PersonRow, ApiError> {
        Ok(self
            .store
            .remove_person(org_id, person_id, &self.actor, self.now())
            .await?)
    }

    pub async fn list_keys(&self) -> Result<Vec<KeyRow>, ApiError> {
        Ok(self.store.keys().await?)
    }

    pub async fn revoke_key(&self, revocation: Revocation) -> Result<KeyRow, ApiError> {
        let now = self.now();
        let at = revocation.effective_at.unwrap_or(now);
        check_display("reason", &revocation.reason, true)?;
        let k = self
            .store
            .revoke_key(&revocation.key_id, at, &revocation.reason, &self.actor, now)
            .await?;
        tracing::warn!(key_id = %k.key_id, org = %k.org_id, actor = %self.actor, "signing key revoked");
        Ok(k)
    }

    pub async fn add_group(&self, name: &str, members: &[String]) -> Result<Group, ApiError> {
        if !is_slug(name) {
            return Err(invalid(
                "group name must be a lowercase slug such as payments-wg",
            ));
        }
        if members.is_empty() {
            return Err(invalid(
                "a group needs at least one member: --members ORG,ORG",
            ));
        }
        let mut members = members.to_vec();
        members.sort();
        members.dedup();
        for m in &members {
            match isac_core::fed_groups::split_member(m) {
                // A peer hub's organisation (cross-hub groups, issue 20).
                Some((_, hub)) => {
                    let linked = self.store.peer_link(hub).await?.is_some();
                    let member = self.store.member(hub).await?;
                    if !linked && !member.is_some_and(|m| m.role == Role::Peer) {
                        return Err(invalid(format!(
                            "`{m}` names hub `{hub}`, which is not a peer of this hub (`hub peer list`)"
                        )));
                    }
                }
                None if m.contains('@') => {
                    return Err(invalid(format!(
                        "`{m}`: a peer hub's organisation is written ORG@HUB (two slugs)"
                    )))
                }
                None => check_org_id(m)?,
            }
        }
        self.store
            .add_group(name, members.clone(), &self.actor, self.now())
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound(m) => invalid(m),
                other => other.into(),
            })?;
        Ok(Group {
            name: name.to_owned(),
            members,
        })
    }

    pub async fn list_groups(&self) -> Result<Vec<Group>, ApiError> {
        Ok(self
            .store
            .list_groups()
            .await?
            .into_iter()
            .map(|(name, members)| Group { name, members })
            .collect())
    }

    pub async fn remove_group(&self, name: &str) -> Result<Group, ApiError> {
        let members = self
            .store
            .remove_group(name, &self.actor, self.now())
            .await?;
        Ok(Group {
            name: name.to_owned(),
            members,
        })
    }

    /// The newest audit entries first; `limit` is capped at
    /// [`AUDIT_LIMIT_MAX`] and defaults to [`AUDIT_LIMIT_DEFAULT`].
    pub async fn audit(&self, limit: Option<u32>) -> Result<Vec<AuditRow>, ApiError> {
        let limit = limit
            .filter(|l| *l > 0)
            .unwrap_or(AUDIT_LIMIT_DEFAULT)
            .min(AUDIT_LIMIT_MAX);
        Ok(self.store.audit_list(limit).await?)
    }
}
