//! `isac.v1.Enrollment`: the only service reachable without a client
//! certificate. The token is the credential; the hub never sees a private key.

use isac_core::enrollment::{proof_message, EnrollmentToken};
use isac_core::statement::is_slug;
use isac_core::VerifyingKey;
use isac_proto::v1 as pb;
use openssl::x509::X509;
use tonic::{Request, Response, Status};

use crate::app::HubState;
use crate::error::ApiError;
use crate::pki;
use crate::store::EnrollRecord;

pub struct EnrollmentService {
    pub state: HubState,
}

#[tonic::async_trait]
impl pb::enrollment_server::Enrollment for EnrollmentService {
    async fn get_hub_info(
        &self,
        _req: Request<pb::GetHubInfoRequest>,
    ) -> Result<Response<pb::HubInfo>, Status> {
        Ok(Response::new(pb::HubInfo {
            ca_certificate_pem: self.state.material.ca_pem(),
            ca_fingerprint_sha256: self.state.material.ca_fingerprint.clone(),
            protocol_version: "isac.v1".into(),
            hub_id: self.state.config.hub_id.clone(),
        }))
    }

    #[tracing::instrument(skip_all, fields(org, agent))]
    async fn enroll(
        &self,
        req: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        Ok(Response::new(enroll(&self.state, req.into_inner()).await?))
    }
}

async fn enroll(state: &HubState, req: pb::EnrollRequest) -> Result<pb::EnrollResponse, ApiError> {
    let pb::EnrollRequest {
        token,
        csr_der,
        signing_public_key_der,
        signing_key_proof,
        agent_name,
    } = req;
    let parsed =
        EnrollmentToken::parse(&token).map_err(|e| ApiError::Unauthenticated(e.to_string()))?;
    if parsed.ca_fingerprint != state.material.ca_fingerprint {
        return Err(ApiError::Unauthenticated(
            "this enrollment token was issued by a different hub (CA fingerprint differs)".into(),
        ));
    }
    tracing::Span::current().record("org", parsed.org_id.as_str());
    if !is_slug(&agent_name) {
        return Err(ApiError::InvalidArgument(
            "agent_name must be a lowercase slug such as `soc-1`".into(),
        ));
    }
    tracing::Span::current().record("agent", agent_name.as_str());
    let tls_key = pki::check_csr(&csr_der).map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
    let signing_key = VerifyingKey::from_spki_der(&signing_public_key_der).map_err(|e| {
        ApiError::InvalidArgument(format!(
            "signing_public_key_der: {e}; it must be an Ed25519 SubjectPublicKeyInfo"
        ))
    })?;
    if !signing_key.verify_raw(&proof_message(&token, &csr_der), &signing_key_proof) {
        return Err(ApiError::InvalidArgument(
            "signing_key_proof does not verify: the request must be signed with the signing key it registers".into(),
        ));
    }
    let cert = pki::issue_client_cert(
        &state.material.ca_cert,
        &state.material.ca_key,
        &tls_key,
        &parsed.org_id,
        &agent_name,
        state.config.client_cert_days,
    )
    .map_err(|e| ApiError::Internal(format!("issuing certificate: {e}")))?;
    let cert_pem = String::from_utf8(
        cert.to_pem()
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    )
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let now = state.now();
    let key_id = signing_key.key_id();
    let member = state
        .store
        .enroll(EnrollRecord {
            token_hash: parsed.secret_hash(),
            org_id: parsed.org_id.clone(),
            now,
            agent_name: agent_name.clone(),
            cert_fingerprint: pki::cert_fingerprint(&cert),
            cert_pem: cert_pem.clone(),
            cert_not_after: now + i64::from(state.config.client_cert_days) * 86_400,
            key_id: key_id.clone(),
            public_key_der: signing_key.spki_der().to_vec(),
        })
        .await?;
    tracing::info!(org = %member.org_id, agent = %agent_name, %key_id, "agent enrolled");
    Ok(pb::EnrollResponse {
        client_certificate_pem: cert_pem,
        ca_certificate_pem: state.material.ca_pem(),
        org_id: member.org_id,
        signing_key_id: key_id,
        hub_directory_key_der: state.directory.public_key_der(),
    })
}

/// Used by tests and tools: PEM to X509.
pub fn parse_pem(pem: &str) -> Option<X509> {
    X509::from_pem(pem.as_bytes()).ok()
}
