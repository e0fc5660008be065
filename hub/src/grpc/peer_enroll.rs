//! `hub peer add HUB --url URL --token TOKEN` (issue 20): this hub enrolls
//! at another hub as its peer, the way an agent enrolls (the CA pinned by
//! the token's fingerprint, keys made here and never sent, a CSR and a
//! signing-key proof), and keeps what it got under
//! `DATA_DIR/peers/HUB/` in an agent state dir's layout (`identity.json`,
//! `ca.crt`, `tls.crt`, `tls.key`, `signing.key`, `hub-directory.pub`), so
//! `isac_client::Credentials` connects with it. Then the link goes into
//! the store; a running hub starts following within a second.

use std::path::{Path, PathBuf};

use isac_client::files::{write_atomic, PRIVATE, PUBLIC};
use isac_client::{connect::Trust, Connector, Identity};
use isac_core::enrollment::{proof_message, EnrollmentToken};
use isac_core::membership::MemberStatus;
use isac_proto::v1 as pb;
use openssl::hash::MessageDigest;
use openssl::x509::{X509NameBuilder, X509ReqBuilder, X509};

use crate::config::HubConfig;
use crate::store::{PeerLinkRow, Store};

/// Why `hub peer add` failed: bad input (exit 64) or anything else.
#[derive(Debug)]
pub enum PeerAddError {
    Usage(String),
    Failed(String),
}

impl std::fmt::Display for PeerAddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddError::Usage(m) | PeerAddError::Failed(m) => f.write_str(m),
        }
    }
}

fn failed(what: &str) -> impl Fn(openssl::error::ErrorStack) -> PeerAddError + '_ {
    move |e| PeerAddError::Failed(format!("{what}: {e}"))
}

/// Where the credentials for following `hub_id` live.
pub fn peer_dir(data_dir: &Path, hub_id: &str) -> PathBuf {
    data_dir.join("peers").join(hub_id)
}

pub async fn add_peer(
    config: &HubConfig,
    store: &Store,
    hub_id: &str,
    url: &str,
    token: &str,
    actor: &str,
    now: i64,
) -> Result<PeerLinkRow, PeerAddError> {
    if !isac_core::names::is_slug(hub_id) {
        return Err(PeerAddError::Usage(format!(
            "`{}` is not a hub id (a lowercase slug such as `fs-isac`)",
            hub_id.escape_default()
        )));
    }
    if hub_id == config.hub_id {
        return Err(PeerAddError::Usage(format!(
            "`{hub_id}` is this hub's own hub_id; a hub does not peer with itself"
        )));
    }
    let token = token.trim();
    let parsed = EnrollmentToken::parse(token).map_err(|e| PeerAddError::Usage(e.to_string()))?;
    if parsed.org_id != config.hub_id {
        return Err(PeerAddError::Usage(format!(
            "this token enrolls `{}`, but this hub's hub_id is `{}`: at `{hub_id}`, run `hub member add {} --role peer`",
            parsed.org_id, config.hub_id, config.hub_id
        )));
    }
    if store
        .peer_link(hub_id)
        .await
        .map_err(|e| PeerAddError::Failed(e.to_string()))?
        .is_some()
    {
        return Err(PeerAddError::Usage(format!(
            "this hub already follows `{hub_id}`; `hub peer remove {hub_id}` first"
        )));
    }
    let client_error = |e: isac_client::ClientError| PeerAddError::Failed(e.to_string());
    // 1. Pin the peer's CA by the token's fingerprint, and check its id.
    let info = {
        let channel = Connector::new(Trust::PinningOnly)
            .map_err(client_error)?
            .connect(url)
            .await
            .map_err(client_error)?;
        pb::enrollment_client::EnrollmentClient::new(channel)
            .get_hub_info(pb::GetHubInfoRequest {})
            .await
            .map_err(|s| PeerAddError::Failed(format!("{url}: {}", s.message())))?
            .into_inner()
    };
    let ca = X509::from_pem(info.ca_certificate_pem.as_bytes())
        .map_err(failed("the peer sent an unreadable CA certificate"))?;
    let ca_fp = isac_core::hex::encode(
        &ca.digest(MessageDigest::sha256())
            .map_err(failed("hashing the CA"))?,
    );
    if ca_fp != parsed.ca_fingerprint {
        return Err(PeerAddError::Failed(format!(
            "the hub at {url} presents CA {ca_fp}, but the token pins {}; wrong hub or an impostor",
            parsed.ca_fingerprint
        )));
    }
    if info.hub_id != hub_id {
        return Err(PeerAddError::Usage(format!(
            "the hub at {url} calls itself `{}`, not `{hub_id}`: peers must agree on hub ids",
            info.hub_id
        )));
    }
    // 2. Keys made here; they never leave this hub.
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
        .map_err(failed("TLS key"))?;
    let tls_key = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(&group).map_err(failed("TLS key"))?,
    )
    .map_err(failed("TLS key"))?;
    let signing_key = isac_core::SigningKey::generate()
        .map_err(|e| PeerAddError::Failed(format!("signing key: {e}")))?;
    let csr_der = {
        let mut req = X509ReqBuilder::new().map_err(failed("CSR"))?;
        let mut name = X509NameBuilder::new().map_err(failed("CSR"))?;
        name.append_entry_by_text("CN", &parsed.org_id)
            .map_err(failed("CSR"))?;
        req.set_subject_name(&name.build()).map_err(failed("CSR"))?;
        req.set_pubkey(&tls_key).map_err(failed("CSR"))?;
        req.sign(&tls_key, MessageDigest::sha256())
            .map_err(failed("CSR"))?;
        req.build().to_der().map_err(failed("CSR"))?
    };
    let proof = signing_key
        .sign_raw(&proof_message(token, &csr_der))
        .map_err(|e| PeerAddError::Failed(format!("signing the proof: {e}")))?;
    let verifying = signing_key
        .verifying_key()
        .map_err(|e| PeerAddError::Failed(format!("signing key: {e}")))?;
    // 3. Enroll over a channel verified against the pinned CA.
    let channel = Connector::new(Trust::Ca {
        ca: &ca,
        client: None,
    })
    .map_err(client_error)?
    .connect(url)
    .await
    .map_err(client_error)?;
    let resp = pb::enrollment_client::EnrollmentClient::new(channel)
        .enroll(pb::EnrollRequest {
            token: token.to_owned(),
            csr_der,
            signing_public_key_der: verifying.spki_der().to_vec(),
            signing_key_proof: proof,
            agent_name: config.hub_id.clone(),
        })
        .await
        .map_err(|s| {
            PeerAddError::Failed(format!("{hub_id} refused the enrollment: {}", s.message()))
        })?
        .into_inner();
    let cert = X509::from_pem(resp.client_certificate_pem.as_bytes())
        .map_err(failed("the peer returned an unreadable certificate"))?;
    let signed_by_ca = ca
        .public_key()
        .and_then(|k| cert.verify(&k))
        .map_err(failed("checking the certificate"))?;
    let ours = cert
        .public_key()
        .map(|k| k.public_eq(&tls_key))
        .map_err(failed("checking the certificate"))?;
    if !signed_by_ca || !ours {
        return Err(PeerAddError::Failed(
            "the issued certificate is not from the pinned CA for our key".into(),
        ));
    }
    let directory_key = isac_core::VerifyingKey::from_spki_der(&resp.hub_directory_key_der)
        .map_err(|e| {
            PeerAddError::Failed(format!("the peer's directory key is unreadable: {e}"))
        })?;
    // 4. Keep it like an agent state dir, identity last.
    let dir = peer_dir(&config.data_dir, hub_id);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| PeerAddError::Failed(format!("creating {}: {e}", dir.display())))?;
    }
    let write = |name: &str, bytes: &[u8], mode: u32| {
        write_atomic(&dir.join(name), bytes, mode).map_err(|e| PeerAddError::Failed(e.to_string()))
    };
    write(
        "tls.key",
        &tls_key
            .private_key_to_pem_pkcs8()
            .map_err(failed("TLS key"))?,
        PRIVATE,
    )?;
    write(
        "signing.key",
        &signing_key
            .to_pkcs8_pem()
            .map_err(|e| PeerAddError::Failed(format!("signing key: {e}")))?,
        PRIVATE,
    )?;
    write("tls.crt", resp.client_certificate_pem.as_bytes(), PUBLIC)?;
    write("ca.crt", &ca.to_pem().map_err(failed("CA"))?, PUBLIC)?;
    write("hub-directory.pub", directory_key.spki_der(), PUBLIC)?;
    let identity = Identity {
        hub_url: url.to_owned(),
        org_id: resp.org_id,
        agent_name: config.hub_id.clone(),
        signing_key_id: resp.signing_key_id,
        ca_fingerprint: ca_fp,
        enrolled_at: isac_core::time::format_rfc3339(now),
        hub_directory_key_id: directory_key.key_id(),
        hubs: Vec::new(),
    };
    let json = serde_json::to_vec_pretty(&identity)
        .map_err(|e| PeerAddError::Failed(format!("identity: {e}")))?;
    write("identity.json", &json, PUBLIC)?;
    let link = PeerLinkRow {
        hub_id: hub_id.to_owned(),
        url: url.to_owned(),
        status: MemberStatus::Active,
        created_at: now,
        cursor: Vec::new(),
        directory: None,
        directory_version: 0,
        received: 0,
    };
    store
        .add_peer_link(link.clone(), actor)
        .await
        .map_err(|e| PeerAddError::Failed(e.to_string()))?;
    Ok(link)
}
