//! `member-agent enroll`: pin the hub by the CA fingerprint in the token,
//! generate keys locally, and exchange a CSR for a client certificate.

use isac_core::enrollment::{proof_message, EnrollmentToken};
use isac_proto::v1 as pb;
use openssl::hash::MessageDigest;
use openssl::x509::{X509NameBuilder, X509ReqBuilder, X509};

use crate::client::{connect, Trust};
use crate::error::AgentError;
use crate::state::{Identity, StateDir};

pub struct EnrollOptions<'a> {
    pub hub_url: &'a str,
    pub token: &'a str,
    pub agent_name: &'a str,
    pub force: bool,
}

fn fingerprint(cert: &X509) -> Result<String, AgentError> {
    Ok(isac_core::hex::encode(
        &cert.digest(MessageDigest::sha256())?,
    ))
}

/// Enrolls through the first of `hubs` (replicas of one hub) that answers,
/// moving on only when one is unreachable or UNAVAILABLE (the token is
/// one-time: any other answer is final), and records all of them so that
/// `sync` and `run` can fail over.
pub async fn enroll_any(
    state: &StateDir,
    hubs: &[String],
    token: &str,
    agent_name: &str,
    force: bool,
) -> Result<Identity, AgentError> {
    let mut last = None;
    for hub_url in hubs {
        let opts = EnrollOptions {
            hub_url,
            token,
            agent_name,
            force,
        };
        match enroll(state, opts).await {
            Ok(mut identity) => {
                if hubs.len() > 1 {
                    identity.hubs = hubs.to_vec();
                    state.save_identity(&identity)?;
                }
                return Ok(identity);
            }
            Err(e) if crate::failover::hub_is_down(&e) => {
                eprintln!("warning: {e}; trying the next --hub");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| AgentError::Usage("--hub URL is required".into())))
}

pub async fn enroll(state: &StateDir, opts: EnrollOptions<'_>) -> Result<Identity, AgentError> {
    let token = EnrollmentToken::parse(opts.token).map_err(|e| AgentError::Usage(e.to_string()))?;
    if state.is_enrolled() && !opts.force {
        return Err(AgentError::Usage(format!(
            "{} already holds an enrolled identity; use another --state-dir, or --force to replace it",
            state.root.display()
        )));
    }
    if !isac_core::statement::is_slug(opts.agent_name) {
        return Err(AgentError::Usage(
            "--name must be a lowercase slug such as soc-1".into(),
        ));
    }

    // 1. Pin: fetch the CA over an unauthenticated channel and accept it only
    //    if its fingerprint is the one the operator put in the token.
    let info = {
        let channel = connect(opts.hub_url, Trust::PinningOnly).await?;
        pb::enrollment_client::EnrollmentClient::new(channel)
            .get_hub_info(pb::GetHubInfoRequest {})
            .await?
            .into_inner()
    };
    let ca = X509::from_pem(info.ca_certificate_pem.as_bytes())
        .map_err(|e| AgentError::Pin(format!("the hub sent an unreadable CA certificate: {e}")))?;
    let ca_fp = fingerprint(&ca)?;
    if ca_fp != token.ca_fingerprint {
        return Err(AgentError::Pin(format!(
            "the hub at {} presents CA {ca_fp}, but the token pins {}; you may be talking to the wrong hub (or an impostor)",
            opts.hub_url, token.ca_fingerprint
        )));
    }

    // 2. Keys are generated here and never leave this machine.
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
    let tls_key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
    let signing_key = isac_core::SigningKey::generate()?;
    let mut req = X509ReqBuilder::new()?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", &token.org_id)?;
    let name = name.build();
    req.set_subject_name(&name)?;
    req.set_pubkey(&tls_key)?;
    req.sign(&tls_key, MessageDigest::sha256())?;
    let csr_der = req.build().to_der()?;
    let token_text = opts.token.trim();
    let proof = signing_key.sign_raw(&proof_message(token_text, &csr_der))?;
    let verifying = signing_key.verifying_key()?;

    // 3. Enroll over a channel that verifies the hub against the pinned CA.
    let channel = connect(
        opts.hub_url,
        Trust::Ca {
            ca: &ca,
            client: None,
        },
    )
    .await?;
    let resp = pb::enrollment_client::EnrollmentClient::new(channel)
        .enroll(pb::EnrollRequest {
            token: token_text.to_owned(),
            csr_der,
            signing_public_key_der: verifying.spki_der().to_vec(),
            signing_key_proof: proof,
            agent_name: opts.agent_name.to_owned(),
        })
        .await?
        .into_inner();
    let cert = X509::from_pem(resp.client_certificate_pem.as_bytes()).map_err(|e| {
        AgentError::Crypto(format!("the hub returned an unreadable certificate: {e}"))
    })?;
    let ca_key = ca.public_key()?;
    if !cert.verify(&ca_key)? {
        return Err(AgentError::Pin(
            "the issued certificate is not signed by the pinned CA".into(),
        ));
    }
    if !cert.public_key()?.public_eq(&tls_key) {
        return Err(AgentError::Crypto(
            "the issued certificate is not for our TLS key".into(),
        ));
    }
    if resp.signing_key_id != verifying.key_id() {
        return Err(AgentError::Crypto(
            "the hub registered a different signing key id".into(),
        ));
    }
    // Learned over the channel verified against the pinned CA.
    let hub_directory_key = isac_core::VerifyingKey::from_spki_der(&resp.hub_directory_key_der)
        .map_err(|e| AgentError::Crypto(format!("the hub's directory key is unreadable: {e}")))?;

    state.ensure()?;
    state.write_private("tls.key", &tls_key.private_key_to_pem_pkcs8()?)?;
    state.write_private("signing.key", &signing_key.to_pkcs8_pem()?)?;
    state.write_public("tls.crt", resp.client_certificate_pem.as_bytes())?;
    state.write_public("ca.crt", &ca.to_pem()?)?;
    state.write_public("hub-directory.pub", hub_directory_key.spki_der())?;
    let identity = Identity {
        hub_url: opts.hub_url.to_owned(),
        org_id: resp.org_id,
        agent_name: opts.agent_name.to_owned(),
        signing_key_id: resp.signing_key_id,
        ca_fingerprint: ca_fp,
        enrolled_at: isac_core::time::format_rfc3339(crate::now()),
        hub_directory_key_id: hub_directory_key.key_id(),
        hubs: Vec::new(),
    };
    // identity.json last: its presence means "enrolled".
    state.save_identity(&identity)?;
    Ok(identity)
}
