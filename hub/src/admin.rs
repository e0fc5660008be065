//! Operator commands that work on the local data directory: members and
//! enrollment tokens. They open the same SQLite database as a running hub
//! (WAL lets both write safely).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use isac_core::enrollment::EnrollmentToken;
use isac_core::statement::is_slug;
use openssl::rand::rand_bytes;

use crate::config::HubConfig;
use crate::datadir;
use crate::grpc::now;
use crate::store::{MemberRow, Store, StoreError, TokenRecord};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    DataDir(#[from] datadir::DataDirError),
}

pub const ROLES: [&str; 3] = ["member", "coordinator", "admin"];

pub struct IssuedToken {
    pub token: EnrollmentToken,
    pub expires_at: i64,
}

fn open(config: &HubConfig) -> Result<(Store, String), AdminError> {
    let (material, _) = datadir::init(&config.data_dir, &config.server_names)?;
    Ok((
        datadir::open_store(&config.data_dir)?,
        material.ca_fingerprint,
    ))
}

async fn issue(
    store: &Store,
    ca_fingerprint: &str,
    org_id: &str,
    ttl_secs: u64,
) -> Result<IssuedToken, AdminError> {
    let mut secret = [0u8; 32];
    rand_bytes(&mut secret).map_err(|e| AdminError::Invalid(format!("no randomness: {e}")))?;
    let token = EnrollmentToken {
        org_id: org_id.to_owned(),
        secret: URL_SAFE_NO_PAD.encode(secret),
        ca_fingerprint: ca_fingerprint.to_owned(),
    };
    let created_at = now();
    let expires_at = created_at + ttl_secs as i64;
    store
        .add_token(TokenRecord {
            token_hash: token.secret_hash(),
            org_id: org_id.to_owned(),
            created_at,
            expires_at,
        })
        .await?;
    Ok(IssuedToken { token, expires_at })
}

/// Adds a member and returns its first one-time enrollment token.
pub async fn add_member(
    config: &HubConfig,
    org_id: &str,
    name: Option<&str>,
    role: &str,
    ttl_secs: u64,
) -> Result<IssuedToken, AdminError> {
    if !is_slug(org_id) {
        return Err(AdminError::Invalid(format!(
            "`{org_id}` is not a valid organisation id: use lowercase letters, digits, `-` or `_` (up to 63), e.g. acme-bank"
        )));
    }
    if !ROLES.contains(&role) {
        return Err(AdminError::Invalid(format!(
            "unknown role `{role}`: use member, coordinator or admin"
        )));
    }
    let name = name.unwrap_or(org_id);
    if name.trim().is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "name must be 1 to 200 printable characters".into(),
        ));
    }
    let (store, fp) = open(config)?;
    let result = async {
        store
            .add_member(MemberRow {
                org_id: org_id.to_owned(),
                name: name.to_owned(),
                role: role.to_owned(),
                status: "active".into(),
                created_at: now(),
            })
            .await?;
        issue(&store, &fp, org_id, ttl_secs).await
    }
    .await;
    close(store).await;
    result
}

/// Issues another enrollment token for an existing member (a new agent, or
/// re-enrolling a lost one).
pub async fn new_token(
    config: &HubConfig,
    org_id: &str,
    ttl_secs: u64,
) -> Result<IssuedToken, AdminError> {
    let (store, fp) = open(config)?;
    let result = async {
        if store.member(org_id).await?.is_none() {
            return Err(AdminError::Invalid(format!(
                "no member `{org_id}`; add it first with `hub member add {org_id}`"
            )));
        }
        issue(&store, &fp, org_id, ttl_secs).await
    }
    .await;
    close(store).await;
    result
}

pub async fn list_members(config: &HubConfig) -> Result<Vec<(MemberRow, u32, u32)>, AdminError> {
    let (store, _) = open(config)?;
    let result = store.list_members().await.map_err(AdminError::from);
    close(store).await;
    result
}

async fn close(store: Store) {
    let _ = tokio::task::spawn_blocking(move || store.close()).await;
}

/// CA fingerprint of the data dir (creating it if needed).
pub fn ca_fingerprint(data_dir: &Path, server_names: &[String]) -> Result<String, AdminError> {
    Ok(datadir::init(data_dir, server_names)?.0.ca_fingerprint)
}
