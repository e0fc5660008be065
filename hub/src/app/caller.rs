//! Who is calling, for every front door: a client certificate (gRPC and
//! TAXII) or a TAXII API key, resolved through the store. Identity comes
//! from the hub's own record of the certificate it issued or the key it
//! minted, never from names a peer chose; an empty, unknown, replaced,
//! revoked or suspended identity maps to no one.

use isac_core::membership::{MemberStatus, Role};

pub use crate::app::authenticated::Caller;

use crate::app::state::HubState;
use crate::error::ApiError;

/// The caller a client certificate (its SHA-256 fingerprint) stands for,
/// read from the store. Also used by open streams to re-check the caller
/// when membership changes.
pub async fn caller_for_cert(state: &HubState, fingerprint: &str) -> Result<Caller, ApiError> {
    caller_from_store(state, fingerprint).await
}

/// [`caller_for_cert`] for a single publish, served from
/// `HubShared::callers` while the membership epoch this process knows
/// holds (it polls the store every `epoch_poll_ms`). Only for a publish:
/// the store checks, in the append's own transaction, that the epoch it
/// was read at still holds (`app::publish::publish`), so a suspension or
/// key revocation stops the very next publish. Every other call reads the
/// store, as before.
pub async fn caller_for_cert_to_publish(
    state: &HubState,
    fingerprint: &str,
) -> Result<Caller, ApiError> {
    // The epoch before the reads: if it moves during them, the entry is
    // filed under the older epoch, and a publish with it is checked again.
    let epoch = *state.epoch.borrow();
    if let Some(caller) = state.callers.get(epoch, fingerprint) {
        return Ok(caller);
    }
    let mut caller = caller_from_store(state, fingerprint).await?;
    caller.authorized_at = Some(epoch);
    state.callers.insert(epoch, fingerprint, caller.clone());
    Ok(caller)
}

/// The caller as the store says now, past every cache; one read through an
/// API key is returned as it is.
pub async fn fresh_caller(state: &HubState, caller: &Caller) -> Result<Caller, ApiError> {
    match caller.authorized_at {
        Some(_) => caller_from_store(state, &caller.cert_fingerprint).await,
        None => Ok(caller.clone()),
    }
}

async fn caller_from_store(state: &HubState, fingerprint: &str) -> Result<Caller, ApiError> {
    let agent = state.store.agent_by_cert(fingerprint).await?.ok_or_else(|| {
        ApiError::Unauthenticated(
            "this client certificate is not registered with the hub; enroll again with a new token".into(),
        )
    })?;
    if agent.superseded {
        return Err(ApiError::Unauthenticated(format!(
            "this certificate for agent `{}` was replaced by a newer enrollment; use the new certificate",
            agent.agent_name
        )));
    }
    if agent.member_status != MemberStatus::Active {
        return Err(ApiError::PermissionDenied(format!(
            "member `{}` is {}; contact the hub operator",
            agent.org_id, agent.member_status
        )));
    }
    if agent.role == Role::Peer {
        return Err(ApiError::PermissionDenied(format!(
            "`{}` is a peer hub: it may only follow this hub through the Peering service, never act as a member (publish, subscribe, look up or administer)",
            agent.org_id
        )));
    }
    let groups = state.store.groups_of(&agent.org_id).await?;
    Ok(Caller {
        groups,
        authorized_at: None,
        org_id: agent.org_id,
        agent_name: agent.agent_name,
        role: agent.role,
        cert_fingerprint: fingerprint.to_owned(),
    })
}

/// A caller authenticated by a TAXII API key.
#[derive(Debug, Clone)]
pub struct KeyCaller {
    pub caller: Caller,
    /// The key's user name.
    pub username: String,
    /// The person the key is bound to, if any.
    pub person: Option<String>,
    pub can_write: bool,
}

/// The caller a TAXII API key (user name and secret) stands for: `Ok(None)`
/// when the key is unknown, revoked, wrong, or its member is not active
/// (each logged; the caller answers all alike, 401); `Err` when the hub
/// cannot tell because its store failed (503/500, never 401).
pub async fn caller_for_api_key(
    state: &HubState,
    user: &str,
    password: &str,
) -> Result<Option<KeyCaller>, ApiError> {
    let Some(key) = state.store.api_key(user).await? else {
        tracing::warn!(user = %user.chars().take(64).collect::<String>(), "TAXII: unknown API key");
        return Ok(None);
    };
    if key.revoked_at.is_some()
        || !crate::app::api_key::password_matches(password, &key.secret_sha256)
    {
        tracing::warn!(user = %key.username, org = %key.org_id, revoked = key.revoked_at.is_some(), "TAXII: refused API key");
        return Ok(None);
    }
    let Some(member) = state.store.member(&key.org_id).await? else {
        tracing::warn!(user = %key.username, org = %key.org_id, "TAXII: API key of an unknown member");
        return Ok(None);
    };
    if member.status != MemberStatus::Active {
        tracing::warn!(user = %key.username, org = %key.org_id, status = %member.status, "TAXII: member not active");
        return Ok(None);
    }
    if member.role == Role::Peer {
        tracing::warn!(user = %key.username, org = %key.org_id, "TAXII: API key of a peer hub");
        return Ok(None);
    }
    let groups = state.store.groups_of(&key.org_id).await?;
    Ok(Some(KeyCaller {
        caller: Caller {
            org_id: key.org_id,
            agent_name: key.username.clone(),
            role: member.role,
            cert_fingerprint: String::new(),
            groups,
            authorized_at: None,
        },
        username: key.username,
        person: key.person_id,
        can_write: key.can_write,
    }))
}

/// A peer hub calling the `Peering` service: its client certificate must
/// be current and its membership active with role `peer`; any other
/// identity is refused (PERMISSION_DENIED), so a member cannot pose as a
/// hub and a peer cannot pose as a member.
pub async fn peer_for_cert(state: &HubState, fingerprint: &str) -> Result<String, ApiError> {
    let agent = state.store.agent_by_cert(fingerprint).await?.ok_or_else(|| {
        ApiError::Unauthenticated(
            "this client certificate is not registered with the hub; enroll again with `hub peer add`".into(),
        )
    })?;
    if agent.superseded {
        return Err(ApiError::Unauthenticated(
            "this certificate was replaced by a newer enrollment".into(),
        ));
    }
    if agent.role != Role::Peer {
        return Err(ApiError::PermissionDenied(format!(
            "`{}` is not a peer hub here; the Peering service is for hubs added with `hub member add HUB --role peer`",
            agent.org_id
        )));
    }
    if agent.member_status != MemberStatus::Active {
        return Err(ApiError::PermissionDenied(format!(
            "peer hub `{}` is {} here; contact the hub operator",
            agent.org_id, agent.member_status
        )));
    }
    Ok(agent.org_id)
}
