//! Operator actions, one implementation for both front doors: the `Admin`
//! gRPC service (remote, admin certificate) and the `hub` CLI on a local data
//! dir. Requests and answers are the `isac.v1` admin messages; every action
//! is recorded in the audit trail with its actor.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use isac_core::enrollment::EnrollmentToken;
use isac_core::statement::is_slug;
use isac_core::time::{format_rfc3339, parse_rfc3339};
use isac_proto::v1 as pb;
use openssl::rand::rand_bytes;

use crate::app::Clock;
use crate::config::HubConfig;
use crate::error::ApiError;
use crate::store::{KeyRow, MemberRow, PersonRow, Store, TokenRecord};

pub const ROLES: [&str; 3] = ["member", "coordinator", "admin"];

/// Who acts, on which hub.
pub struct AdminContext<'a> {
    pub store: &'a Store,
    pub config: &'a HubConfig,
    pub ca_fingerprint: &'a str,
    /// `local:USER` or `org:ID/agent:NAME`.
    pub actor: String,
    /// What dates the actions: the serving hub's clock for the `Admin`
    /// service, the system clock for the CLI, a test's clock in tests.
    pub clock: Clock,
}

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

pub fn member_info(m: &MemberRow, agents: u32, keys: u32) -> pb::MemberInfo {
    pb::MemberInfo {
        org_id: m.org_id.clone(),
        name: m.name.clone(),
        role: m.role.clone(),
        status: m.status.clone(),
        created_at: format_rfc3339(m.created_at),
        active_agents: agents,
        active_keys: keys,
    }
}

pub fn member_key(k: KeyRow) -> pb::MemberKey {
    pb::MemberKey {
        state: k.state().to_owned(),
        key_id: k.key_id,
        org_id: k.org_id,
        public_key_der: k.public_key_der,
        valid_from: format_rfc3339(k.valid_from),
        revoked_at: k.revoked_at.map(format_rfc3339).unwrap_or_default(),
        org_name: k.org_name,
        retired_at: k.retired_at.map(format_rfc3339).unwrap_or_default(),
    }
}

fn person_info(p: PersonRow) -> pb::PersonInfo {
    pb::PersonInfo {
        org_id: p.org_id,
        person_id: p.person_id,
        name: p.name,
        contact: p.contact,
    }
}

impl AdminContext<'_> {
    fn ttl(&self, requested: u64) -> u64 {
        if requested == 0 {
            self.config.token_ttl_secs
        } else {
            requested
        }
    }

    async fn issue_token(
        &self,
        org_id: &str,
        ttl_secs: u64,
    ) -> Result<pb::EnrollmentTokenResponse, ApiError> {
        let mut secret = [0u8; 32];
        rand_bytes(&mut secret).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
        let token = EnrollmentToken {
            org_id: org_id.to_owned(),
            secret: URL_SAFE_NO_PAD.encode(secret),
            ca_fingerprint: self.ca_fingerprint.to_owned(),
        };
        let created_at = self.clock.now();
        let expires_at = created_at + ttl_secs as i64;
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
        Ok(pb::EnrollmentTokenResponse {
            org_id: org_id.to_owned(),
            token: token.to_string(),
            expires_at: format_rfc3339(expires_at),
        })
    }

    pub async fn add_member(
        &self,
        req: pb::AddMemberRequest,
    ) -> Result<pb::EnrollmentTokenResponse, ApiError> {
        let pb::AddMemberRequest {
            org_id,
            name,
            role,
            token_ttl_secs,
        } = req;
        check_org_id(&org_id)?;
        if org_id == crate::app::publish::ANONYMOUS_ORG {
            return Err(invalid("`anonymous` is reserved for anonymous submissions"));
        }
        if org_id == isac_core::statement::HUB_ATTESTATION_ORG {
            return Err(invalid(
                "`isac-hub` is reserved for what the hub signs for members (TAXII submissions)",
            ));
        }
        let role = if role.is_empty() {
            "member".to_owned()
        } else {
            role
        };
        if !ROLES.contains(&role.as_str()) {
            return Err(invalid(format!(
                "unknown role `{}`: use member, coordinator or admin",
                role.escape_default()
            )));
        }
        let name = if name.is_empty() {
            org_id.clone()
        } else {
            name
        };
        check_display("name", &name, false)?;
        self.store
            .add_member(
                MemberRow {
                    org_id: org_id.clone(),
                    name,
                    role,
                    status: "active".into(),
                    created_at: self.clock.now(),
                },
                &self.actor,
            )
            .await?;
        self.issue_token(&org_id, self.ttl(token_ttl_secs)).await
    }

    pub async fn new_token(
        &self,
        req: pb::IssueTokenRequest,
    ) -> Result<pb::EnrollmentTokenResponse, ApiError> {
        check_org_id(&req.org_id)?;
        if self.store.member(&req.org_id).await?.is_none() {
            return Err(ApiError::FailedPrecondition(format!(
                "no member `{}`; add it first with `hub member add {}`",
                req.org_id, req.org_id
            )));
        }
        self.issue_token(&req.org_id, self.ttl(req.token_ttl_secs))
            .await
    }

    pub async fn list_members(&self) -> Result<pb::ListMembersResponse, ApiError> {
        let members = self
            .store
            .list_members()
            .await?
            .iter()
            .map(|(m, a, k)| member_info(m, *a, *k))
            .collect();
        Ok(pb::ListMembersResponse { members })
    }

    pub async fn show_member(
        &self,
        req: pb::ShowMemberRequest,
    ) -> Result<pb::MemberDetail, ApiError> {
        let org = req.org_id;
        let (m, agents, keys) = self
            .store
            .list_members()
            .await?
            .into_iter()
            .find(|(m, _, _)| m.org_id == org)
            .ok_or_else(|| {
                ApiError::FailedPrecondition(format!("no member `{}`", org.escape_default()))
            })?;
        let head = self.store.head_from_db().await?;
        Ok(pb::MemberDetail {
            member: Some(member_info(&m, agents, keys)),
            agents: self
                .store
                .agents_of(&org)
                .await?
                .into_iter()
                .map(|a| pb::AgentInfo {
                    agent_name: a.agent_name,
                    cert_fingerprint: a.cert_fingerprint,
                    issued_at: format_rfc3339(a.issued_at),
                    not_after: format_rfc3339(a.not_after),
                    superseded_at: a.superseded_at.map(format_rfc3339).unwrap_or_default(),
                    acked_sequence: a.acked_seq,
                    acked_at: a.acked_at.map(format_rfc3339).unwrap_or_default(),
                    lag: head.saturating_sub(a.acked_seq),
                })
                .collect(),
            keys: self
                .store
                .keys_of(&org)
                .await?
                .into_iter()
                .map(member_key)
                .collect(),
            people: self
                .store
                .list_people(Some(&org))
                .await?
                .into_iter()
                .map(person_info)
                .collect(),
        })
    }

    pub async fn set_member_status(
        &self,
        req: pb::SetMemberStatusRequest,
    ) -> Result<pb::MemberInfo, ApiError> {
        check_org_id(&req.org_id)?;
        if !["suspend", "resume", "remove"].contains(&req.action.as_str()) {
            return Err(invalid("action must be suspend, resume or remove"));
        }
        let m = self
            .store
            .set_member_status(&req.org_id, &req.action, &self.actor, self.clock.now())
            .await?;
        tracing::info!(org = %m.org_id, status = %m.status, actor = %self.actor, "member status changed");
        Ok(member_info(&m, 0, 0))
    }

    pub async fn add_person(&self, req: pb::AddPersonRequest) -> Result<pb::PersonInfo, ApiError> {
        check_org_id(&req.org_id)?;
        if !is_slug(&req.person_id) {
            return Err(invalid("person id must be a lowercase slug such as jdoe"));
        }
        check_display("name", &req.name, false)?;
        check_display("contact", &req.contact, true)?;
        let row = PersonRow {
            org_id: req.org_id,
            person_id: req.person_id,
            name: req.name,
            contact: req.contact,
        };
        self.store
            .add_person(row.clone(), &self.actor, self.clock.now())
            .await?;
        Ok(person_info(row))
    }

    pub async fn list_people(
        &self,
        req: pb::ListPeopleRequest,
    ) -> Result<pb::ListPeopleResponse, ApiError> {
        let org = (!req.org_id.is_empty()).then_some(req.org_id.as_str());
        let people = self
            .store
            .list_people(org)
            .await?
            .into_iter()
            .map(person_info)
            .collect();
        Ok(pb::ListPeopleResponse { people })
    }

    pub async fn remove_person(
        &self,
        req: pb::RemovePersonRequest,
    ) -> Result<pb::PersonInfo, ApiError> {
        let row = self
            .store
            .remove_person(&req.org_id, &req.person_id, &self.actor, self.clock.now())
            .await?;
        Ok(person_info(row))
    }

    pub async fn list_keys(&self) -> Result<Vec<pb::MemberKey>, ApiError> {
        Ok(self
            .store
            .keys()
            .await?
            .into_iter()
            .map(member_key)
            .collect())
    }

    pub async fn revoke_key(&self, req: pb::RevokeKeyRequest) -> Result<pb::MemberKey, ApiError> {
        let now = self.clock.now();
        let at = if req.effective_at.is_empty() {
            now
        } else {
            parse_rfc3339(&req.effective_at).map_err(|e| invalid(e.to_string()))?
        };
        check_display("reason", &req.reason, true)?;
        let k = self
            .store
            .revoke_key(&req.key_id, at, &req.reason, &self.actor, now)
            .await?;
        tracing::warn!(key_id = %k.key_id, org = %k.org_id, actor = %self.actor, "signing key revoked");
        Ok(member_key(k))
    }

    pub async fn add_group(&self, req: pb::AddGroupRequest) -> Result<pb::GroupInfo, ApiError> {
        if !is_slug(&req.name) {
            return Err(invalid(
                "group name must be a lowercase slug such as payments-wg",
            ));
        }
        if req.members.is_empty() {
            return Err(invalid(
                "a group needs at least one member: --members ORG,ORG",
            ));
        }
        let mut members = req.members.clone();
        members.sort();
        members.dedup();
        for m in &members {
            check_org_id(m)?;
        }
        self.store
            .add_group(&req.name, members.clone(), &self.actor, self.clock.now())
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound(m) => invalid(m),
                other => other.into(),
            })?;
        Ok(pb::GroupInfo {
            name: req.name,
            members,
        })
    }

    pub async fn list_groups(
        &self,
        _req: pb::ListGroupsRequest,
    ) -> Result<pb::ListGroupsResponse, ApiError> {
        let groups = self
            .store
            .list_groups()
            .await?
            .into_iter()
            .map(|(name, members)| pb::GroupInfo { name, members })
            .collect();
        Ok(pb::ListGroupsResponse { groups })
    }

    pub async fn remove_group(
        &self,
        req: pb::RemoveGroupRequest,
    ) -> Result<pb::GroupInfo, ApiError> {
        let members = self
            .store
            .remove_group(&req.name, &self.actor, self.clock.now())
            .await?;
        Ok(pb::GroupInfo {
            name: req.name,
            members,
        })
    }

    pub async fn audit(
        &self,
        req: pb::ListAuditRequest,
    ) -> Result<pb::ListAuditResponse, ApiError> {
        let limit = if req.limit == 0 {
            100
        } else {
            req.limit.min(10_000)
        };
        let entries = self
            .store
            .audit_list(limit)
            .await?
            .into_iter()
            .map(|a| pb::AuditEntry {
                seq: a.seq,
                at: format_rfc3339(a.at),
                actor: a.actor,
                action: a.action,
                target: a.target,
                detail: a.detail,
            })
            .collect();
        Ok(pb::ListAuditResponse { entries })
    }
}
