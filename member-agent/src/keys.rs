//! A member's own key and certificate upkeep: signing-key rotation and TLS
//! certificate renewal. New keys are generated here and never leave.

use isac_core::enrollment::rotation_message;
use isac_core::SigningKey;
use isac_proto::v1 as pb;
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::x509::{X509NameBuilder, X509ReqBuilder, X509};

use crate::error::AgentError;
use crate::sync::Agent;

pub struct Rotated {
    pub new_key_id: String,
    pub retired_key_id: String,
    pub retired_at: String,
}

/// Adds a new signing key (both keys sign the request) and retires the
/// current one. Statements signed before now stay valid.
pub async fn rotate(agent: &mut Agent) -> Result<Rotated, AgentError> {
    let org = agent.org_id().to_owned();
    let current = agent.loaded.signing_key.clone();
    let current_id = current.verifying_key()?.key_id();
    let new_key = SigningKey::generate()?;
    let new_pub = new_key.verifying_key()?;
    let message = rotation_message(&org, &new_pub.key_id(), &current_id);
    // Keep the new key on disk before the hub knows it, so a crash after the
    // hub's answer never leaves us without the key it registered.
    agent
        .state
        .write_private("signing-next.key", &new_key.to_pkcs8_pem()?)?;
    let resp = pb::membership_client::MembershipClient::new(agent.channel().await?)
        .rotate_signing_key(pb::RotateSigningKeyRequest {
            new_public_key_der: new_pub.spki_der().to_vec(),
            current_key_id: current_id.clone(),
            proof_by_new_key: new_key.sign_raw(&message)?,
            proof_by_current_key: current.sign_raw(&message)?,
        })
        .await?
        .into_inner();
    agent.state.write_private(
        &format!("signing-retired-{}.key", &current_id[..16]),
        &current.to_pkcs8_pem()?,
    )?;
    agent
        .state
        .write_private("signing.key", &new_key.to_pkcs8_pem()?)?;
    let _ = std::fs::remove_file(agent.state.path("signing-next.key"));
    let mut identity = agent.loaded.identity.clone();
    identity.signing_key_id = resp.new_key_id.clone();
    agent.state.save_identity(&identity)?;
    agent.reload()?;
    Ok(Rotated {
        new_key_id: resp.new_key_id,
        retired_key_id: resp.retired_key_id,
        retired_at: resp.retired_at,
    })
}

/// Gets a fresh client certificate for a new TLS key. The old certificate
/// keeps working until it expires, so open streams are not cut.
pub async fn renew(agent: &mut Agent) -> Result<String, AgentError> {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
    let tls_key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
    let mut req = X509ReqBuilder::new()?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", agent.org_id())?;
    let name = name.build();
    req.set_subject_name(&name)?;
    req.set_pubkey(&tls_key)?;
    req.sign(&tls_key, MessageDigest::sha256())?;
    let resp = pb::membership_client::MembershipClient::new(agent.channel().await?)
        .renew_certificate(pb::RenewCertificateRequest {
            csr_der: req.build().to_der()?,
        })
        .await?
        .into_inner();
    let cert = X509::from_pem(resp.client_certificate_pem.as_bytes()).map_err(|e| {
        AgentError::Crypto(format!("the hub returned an unreadable certificate: {e}"))
    })?;
    let ca_key = agent.loaded.ca.public_key()?;
    if !cert.verify(&ca_key)? || !cert.public_key()?.public_eq(&tls_key) {
        return Err(AgentError::Crypto(
            "the renewed certificate is not ours or not from the pinned CA".into(),
        ));
    }
    agent
        .state
        .write_private("tls.key", &tls_key.private_key_to_pem_pkcs8()?)?;
    agent
        .state
        .write_public("tls.crt", resp.client_certificate_pem.as_bytes())?;
    agent.reload()?;
    Ok(resp.not_after)
}

/// Renews when less than a third of the certificate's lifetime (or under 30
/// days) remains. Returns whether it renewed.
pub async fn renew_if_due(agent: &mut Agent) -> Result<bool, AgentError> {
    let cert = &agent.loaded.tls_cert;
    let now = Asn1Time::days_from_now(0)?;
    let left = now.diff(cert.not_after())?;
    let lifetime = cert.not_before().diff(cert.not_after())?;
    let left_days = i64::from(left.days);
    let lifetime_days = i64::from(lifetime.days).max(1);
    if left_days * 3 > lifetime_days && left_days > 30 {
        return Ok(false);
    }
    renew(agent).await?;
    Ok(true)
}
