//! `isac.v1.Admin`: operator actions for callers whose member role is `admin`.
//! Thin: authenticate, check the role, hand over to `crate::admin`.

use isac_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::admin::AdminContext;
use crate::app::HubState;
use crate::error::ApiError;
use crate::grpc::auth::authenticate;

pub struct AdminService {
    pub state: HubState,
}

impl AdminService {
    async fn context<T>(&self, req: &Request<T>) -> Result<AdminContext<'_>, ApiError> {
        let caller = authenticate(&self.state, req).await?;
        if caller.role != "admin" {
            return Err(ApiError::PermissionDenied(format!(
                "admin operations need the admin role; `{}` has role {}",
                caller.org_id, caller.role
            )));
        }
        Ok(AdminContext {
            store: &self.state.store,
            config: &self.state.config,
            ca_fingerprint: &self.state.material.ca_fingerprint,
            actor: format!("org:{}/agent:{}", caller.org_id, caller.agent_name),
            clock: self.state.clock.clone(),
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
