//! `isac.v1.Admin`: operator actions for callers whose member role is `admin`.
//! Thin: authenticate, check the role, convert the admin messages to and
//! from the domain types of `app::admin` (the `hub` CLI's local commands go
//! through the same conversions, so both front doors answer alike).

use isac_core::membership::{Role, StatusChange};
use isac_core::time::{format_rfc3339, parse_rfc3339};
use isac_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::app::admin::{
    Admin, AgentStanding, Group, IssuedToken, MemberDetail, MemberSummary, NewMember, Revocation,
};
use crate::app::{Clock, HubState};
use crate::config::HubConfig;
use crate::error::ApiError;
use crate::grpc::auth::authenticate;
use crate::store::{AuditRow, KeyRow, MemberRow, PersonRow, Store};

pub struct AdminService {
    pub state: HubState,
}

impl AdminService {
    async fn context<T>(&self, req: &Request<T>) -> Result<AdminContext<'_>, ApiError> {
        let caller = authenticate(&self.state, req).await?;
        if caller.role != Role::Admin {
            return Err(ApiError::PermissionDenied(format!(
                "admin operations need the admin role; `{}` has role {}",
                caller.org_id, caller.role
            )));
        }
        Ok(AdminContext(Admin {
            store: &self.state.store,
            config: &self.state.config,
            ca_fingerprint: &self.state.material.ca_fingerprint,
            actor: format!("org:{}/agent:{}", caller.org_id, caller.agent_name),
            clock: self.state.clock.clone(),
        }))
    }
}

/// The admin actions in `isac.v1` messages: what the gRPC service and the
/// `hub` CLI's local commands call.
pub struct AdminContext<'a>(pub Admin<'a>);

impl<'a> AdminContext<'a> {
    /// The operator on a local data dir (the `hub` CLI, tests, the bench).
    pub fn local(
        store: &'a Store,
        config: &'a HubConfig,
        ca_fingerprint: &'a str,
        actor: String,
        clock: Clock,
    ) -> Self {
        AdminContext(Admin {
            store,
            config,
            ca_fingerprint,
            actor,
            clock,
        })
    }
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::InvalidArgument(m.into())
}

/// Proto3 has no absent strings or numbers: empty and zero mean "not said".
fn given(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn given_u64(n: u64) -> Option<u64> {
    (n > 0).then_some(n)
}

fn rfc3339_or_empty(t: Option<i64>) -> String {
    t.map(format_rfc3339).unwrap_or_default()
}

fn token_response(t: IssuedToken) -> pb::EnrollmentTokenResponse {
    pb::EnrollmentTokenResponse {
        org_id: t.org_id,
        token: t.token,
        expires_at: format_rfc3339(t.expires_at),
    }
}

pub fn member_info(m: &MemberRow, agents: u32, keys: u32) -> pb::MemberInfo {
    pb::MemberInfo {
        org_id: m.org_id.clone(),
        name: m.name.clone(),
        role: m.role.to_string(),
        status: m.status.to_string(),
        created_at: format_rfc3339(m.created_at),
        active_agents: agents,
        active_keys: keys,
    }
}

fn summary_info(s: &MemberSummary) -> pb::MemberInfo {
    member_info(&s.member, s.active_agents, s.active_keys)
}

pub fn member_key(k: KeyRow) -> pb::MemberKey {
    pb::MemberKey {
        state: k.state().to_owned(),
        key_id: k.key_id,
        org_id: k.org_id,
        public_key_der: k.public_key_der,
        valid_from: format_rfc3339(k.valid_from),
        revoked_at: rfc3339_or_empty(k.revoked_at),
        org_name: k.org_name,
        retired_at: rfc3339_or_empty(k.retired_at),
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

fn agent_info(a: AgentStanding) -> pb::AgentInfo {
    let AgentStanding { agent, lag } = a;
    pb::AgentInfo {
        agent_name: agent.agent_name,
        cert_fingerprint: agent.cert_fingerprint,
        issued_at: format_rfc3339(agent.issued_at),
        not_after: format_rfc3339(agent.not_after),
        superseded_at: rfc3339_or_empty(agent.superseded_at),
        acked_sequence: agent.acked_seq,
        acked_at: rfc3339_or_empty(agent.acked_at),
        lag,
    }
}

fn group_info(g: Group) -> pb::GroupInfo {
    pb::GroupInfo {
        name: g.name,
        members: g.members,
    }
}

fn audit_entry(a: AuditRow) -> pb::AuditEntry {
    pb::AuditEntry {
        seq: a.seq,
        at: format_rfc3339(a.at),
        actor: a.actor,
        action: a.action,
        target: a.target,
        detail: a.detail,
    }
}

impl AdminContext<'_> {
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
        let role = match given(role) {
            None => Role::Member,
            Some(r) => r
                .parse()
                .map_err(|e: isac_core::membership::UnknownWord| invalid(e.to_string()))?,
        };
        let new = NewMember {
            org_id,
            name: given(name),
            role,
            token_ttl_secs: given_u64(token_ttl_secs),
        };
        Ok(token_response(self.0.add_member(new).await?))
    }

    pub async fn new_token(
        &self,
        req: pb::IssueTokenRequest,
    ) -> Result<pb::EnrollmentTokenResponse, ApiError> {
        let pb::IssueTokenRequest {
            org_id,
            token_ttl_secs,
        } = req;
        let token = self.0.new_token(&org_id, given_u64(token_ttl_secs)).await?;
        Ok(token_response(token))
    }

    pub async fn list_members(&self) -> Result<pb::ListMembersResponse, ApiError> {
        let members = self.0.list_members().await?;
        Ok(pb::ListMembersResponse {
            members: members.iter().map(summary_info).collect(),
        })
    }

    pub async fn show_member(
        &self,
        req: pb::ShowMemberRequest,
    ) -> Result<pb::MemberDetail, ApiError> {
        let pb::ShowMemberRequest { org_id } = req;
        let MemberDetail {
            summary,
            agents,
            keys,
            people,
        } = self.0.show_member(&org_id).await?;
        Ok(pb::MemberDetail {
            member: Some(summary_info(&summary)),
            agents: agents.into_iter().map(agent_info).collect(),
            keys: keys.into_iter().map(member_key).collect(),
            people: people.into_iter().map(person_info).collect(),
        })
    }

    pub async fn set_member_status(
        &self,
        req: pb::SetMemberStatusRequest,
    ) -> Result<pb::MemberInfo, ApiError> {
        let pb::SetMemberStatusRequest { org_id, action } = req;
        let change: StatusChange = action
            .parse()
            .map_err(|e: isac_core::membership::UnknownWord| invalid(e.to_string()))?;
        let m = self.0.set_member_status(&org_id, change).await?;
        Ok(member_info(&m, 0, 0))
    }

    pub async fn add_person(&self, req: pb::AddPersonRequest) -> Result<pb::PersonInfo, ApiError> {
        let pb::AddPersonRequest {
            org_id,
            person_id,
            name,
            contact,
        } = req;
        let row = PersonRow {
            org_id,
            person_id,
            name,
            contact,
        };
        Ok(person_info(self.0.add_person(row).await?))
    }

    pub async fn list_people(
        &self,
        req: pb::ListPeopleRequest,
    ) -> Result<pb::ListPeopleResponse, ApiError> {
        let pb::ListPeopleRequest { org_id } = req;
        let people = self.0.list_people(given(org_id).as_deref()).await?;
        Ok(pb::ListPeopleResponse {
            people: people.into_iter().map(person_info).collect(),
        })
    }

    pub async fn remove_person(
        &self,
        req: pb::RemovePersonRequest,
    ) -> Result<pb::PersonInfo, ApiError> {
        let pb::RemovePersonRequest { org_id, person_id } = req;
        Ok(person_info(
            self.0.remove_person(&org_id, &person_id).await?,
        ))
    }

    pub async fn list_keys(&self) -> Result<Vec<pb::MemberKey>, ApiError> {
        Ok(self
            .0
            .list_keys()
            .await?
            .into_iter()
            .map(member_key)
            .collect())
    }

    pub async fn revoke_key(&self, req: pb::RevokeKeyRequest) -> Result<pb::MemberKey, ApiError> {
        let pb::RevokeKeyRequest {
            key_id,
            effective_at,
            reason,
        } = req;
        let effective_at = given(effective_at)
            .map(|t| parse_rfc3339(&t).map_err(|e| invalid(e.to_string())))
            .transpose()?;
        let k = self
            .0
            .revoke_key(Revocation {
                key_id,
                effective_at,
                reason,
            })
            .await?;
        Ok(member_key(k))
    }

    pub async fn add_group(&self, req: pb::AddGroupRequest) -> Result<pb::GroupInfo, ApiError> {
        let pb::AddGroupRequest { name, members } = req;
        Ok(group_info(self.0.add_group(&name, &members).await?))
    }

    pub async fn list_groups(
        &self,
        req: pb::ListGroupsRequest,
    ) -> Result<pb::ListGroupsResponse, ApiError> {
        let pb::ListGroupsRequest {} = req;
        let groups = self.0.list_groups().await?;
        Ok(pb::ListGroupsResponse {
            groups: groups.into_iter().map(group_info).collect(),
        })
    }

    pub async fn remove_group(
        &self,
        req: pb::RemoveGroupRequest,
    ) -> Result<pb::GroupInfo, ApiError> {
        let pb::RemoveGroupRequest { name } = req;
        Ok(group_info(self.0.remove_group(&name).await?))
    }

    pub async fn audit(
        &self,
        req: pb::ListAuditRequest,
    ) -> Result<pb::ListAuditResponse, ApiError> {
        let pb::ListAuditRequest { limit } = req;
        let entries = self.0.audit((limit > 0).then_some(limit)).await?;
        Ok(pb::ListAuditResponse {
            entries: entries.into_iter().map(audit_entry).collect(),
        })
    }
}

macro_rules! admin_call {
    ($self:ident, $req:ident, $method:ident) => {{
        let ctx = $self.context(&$req).await?;
        Ok(Response::new(ctx.$method($req.into_inner()).await?))
    }};
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn add_member(
        &self,
        req: Request<pb::AddMemberRequest>,
    ) -> Result<Response<pb::EnrollmentTokenResponse>, Status> {
        admin_call!(self, req, add_member)
    }
    async fn issue_token(
        &self,
        req: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::EnrollmentTokenResponse>, Status> {
        admin_call!(self, req, new_token)
    }
    async fn list_members(
        &self,
        req: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let ctx = self.context(&req).await?;
        Ok(Response::new(ctx.list_members().await?))
    }
    async fn show_member(
        &self,
        req: Request<pb::ShowMemberRequest>,
    ) -> Result<Response<pb::MemberDetail>, Status> {
        admin_call!(self, req, show_member)
    }
    async fn set_member_status(
        &self,
        req: Request<pb::SetMemberStatusRequest>,
    ) -> Result<Response<pb::MemberInfo>, Status> {
        admin_call!(self, req, set_member_status)
    }
    async fn add_person(
        &self,
        req: Request<pb::AddPersonRequest>,
    ) -> Result<Response<pb::PersonInfo>, Status> {
        admin_call!(self, req, add_person)
    }
    async fn list_people(
        &self,
        req: Request<pb::ListPeopleRequest>,
    ) -> Result<Response<pb::ListPeopleResponse>, Status> {
        admin_call!(self, req, list_people)
    }
    async fn remove_person(
        &self,
        req: Request<pb::RemovePersonRequest>,
    ) -> Result<Response<pb::PersonInfo>, Status> {
        admin_call!(self, req, remove_person)
    }
    async fn list_all_keys(
        &self,
        req: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let ctx = self.context(&req).await?;
        Ok(Response::new(pb::ListKeysResponse {
            keys: ctx.list_keys().await?,
            signed_directory: None,
        }))
    }
    async fn revoke_key(
        &self,
        req: Request<pb::RevokeKeyRequest>,
    ) -> Result<Response<pb::MemberKey>, Status> {
        admin_call!(self, req, revoke_key)
    }
    async fn add_group(
        &self,
        req: Request<pb::AddGroupRequest>,
    ) -> Result<Response<pb::GroupInfo>, Status> {
        admin_call!(self, req, add_group)
    }
    async fn list_groups(
        &self,
        req: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        admin_call!(self, req, list_groups)
    }
    async fn remove_group(
        &self,
        req: Request<pb::RemoveGroupRequest>,
    ) -> Result<Response<pb::GroupInfo>, Status> {
        admin_call!(self, req, remove_group)
    }
    async fn list_audit(
        &self,
        req: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        admin_call!(self, req, audit)
    }
}
