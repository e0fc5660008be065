//! `isac.v1.Membership`: a member's own key rotation and certificate renewal.

use isac_core::enrollment::rotation_message;
use isac_core::time::format_rfc3339;
use isac_core::VerifyingKey;
use isac_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::app::HubState;
use crate::error::ApiError;
use crate::grpc::auth::authenticate;
use crate::pki;

pub struct MembershipService {
    pub state: HubState,
}

#[tonic::async_trait]
impl pb::membership_server::Membership for MembershipService {
    #[tracing::instrument(skip_all, fields(org))]
    async fn rotate_signing_key(
        &self,
        req: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        let caller = authenticate(&self.state, &req).await?;
        tracing::Span::current().record("org", caller.org_id.as_str());
        let pb::RotateSigningKeyRequest {
            new_public_key_der,
            current_key_id,
            proof_by_new_key,
            proof_by_current_key,
        } = req.into_inner();
        let new_key = VerifyingKey::from_spki_der(&new_public_key_der)
            .map_err(|e| ApiError::InvalidArgument(format!("new_public_key_der: {e}")))?;
        let current = self
            .state
            .store
            .key(&current_key_id)
            .await
            .map_err(ApiError::from)?
            .filter(|k| k.org_id == caller.org_id)
            .ok_or_else(|| {
                ApiError::FailedPrecondition(format!(
                    "key {} is not one of your active keys",
                    current_key_id.chars().take(80).collect::<String>()
                ))
            })?;
        let current_key = VerifyingKey::from_spki_der(&current.public_key_der)
            .map_err(|e| ApiError::Internal(format!("stored key unreadable: {e}")))?;
        let message = rotation_message(&caller.org_id, &new_key.key_id(), &current_key_id);
        if !new_key.verify_raw(&message, &proof_by_new_key) {
            return Err(
                ApiError::InvalidArgument("proof_by_new_key does not verify".into()).into(),
            );
        }
        if !current_key.verify_raw(&message, &proof_by_current_key) {
            return Err(ApiError::PermissionDenied(
                "proof_by_current_key does not verify: only the holder of the current key can rotate it".into(),
            )
            .into());
        }
        // Retire from the next whole second: a statement signed with the old
        // key in the same second as the rotation, before it, stays valid.
        let at = self.state.now() + 1;
        self.state
            .store
            .rotate_key(
                &caller.org_id,
                &current_key_id,
                &new_key.key_id(),
                new_public_key_der,
                &format!("org:{}/agent:{}", caller.org_id, caller.agent_name),
                at,
            )
            .await
            .map_err(ApiError::from)?;
        tracing::info!(new_key = %new_key.key_id(), retired = %current_key_id, "signing key rotated");
        Ok(Response::new(pb::RotateSigningKeyResponse {
            new_key_id: new_key.key_id(),
            retired_key_id: current_key_id,
            retired_at: format_rfc3339(at),
        }))
    }

    #[tracing::instrument(skip_all, fields(org))]
    async fn renew_certificate(
        &self,
        req: Request<pb::RenewCertificateRequest>,
    ) -> Result<Response<pb::RenewCertificateResponse>, Status> {
        let caller = authenticate(&self.state, &req).await?;
        tracing::Span::current().record("org", caller.org_id.as_str());
        let tls_key = pki::check_csr(&req.get_ref().csr_der)
            .map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
        let days = self.state.config.client_cert_days;
        let cert = pki::issue_client_cert(
            &self.state.material.ca_cert,
            &self.state.material.ca_key,
            &tls_key,
            &caller.org_id,
            &caller.agent_name,
            days,
        )
        .map_err(|e| ApiError::Internal(format!("issuing certificate: {e}")))?;
        let pem = String::from_utf8(
            cert.to_pem()
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        let now = self.state.now();
        let not_after = now + i64::from(days) * 86_400;
        self.state
            .store
            .renew_agent(
                &caller.cert_fingerprint,
                &pki::cert_fingerprint(&cert),
                pem.clone(),
                not_after,
                now,
            )
            .await
            .map_err(ApiError::from)?;
        tracing::info!(agent = %caller.agent_name, "client certificate renewed");
        Ok(Response::new(pb::RenewCertificateResponse {
            client_certificate_pem: pem,
            not_after: format_rfc3339(not_after),
        }))
    }
}
