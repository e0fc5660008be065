//! Federation's hub half (issue 20), in core types: what this hub serves a
//! peer hub that follows it, and what it checks and stores from a hub it
//! follows. The rules themselves are `isac_core::federation` (pure, table
//! tested); this module applies them to stored rows and pinned
//! directories. `grpc/peering.rs` (the server side) and `grpc/follower.rs`
//! (the client side) are the wire adapters.

use isac_core::directory::{check_succession, verify_directory, DirectoryError, KeyDirectory};
use isac_core::envelope::Signature;
use isac_core::federation::{
    may_forward, verify_forwarded, Crossing, Link, Provenance, ReceiveError,
};
use isac_core::membership::{MemberStatus, Role};
use isac_core::statement::Statement;
use isac_core::time::UnixSeconds;
use isac_core::{Envelope, VerifyingKey};

use crate::store::{FederatedItem, MemberRow, NewStatement, StoredStatement};

/// One item as it crosses: the author's envelope, byte for byte, and the
/// provenance beside it (canonical JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub envelope: Envelope,
    pub provenance: Vec<u8>,
}

/// The envelope a peer hub receives for a row: what any member but the
/// source receives (the hub-signed copy of an anonymous item, so the
/// source stays anonymous across hubs too).
pub fn crossing_envelope(row: &StoredStatement) -> Envelope {
    let (payload, keyid, sig) = match &row.anonymous {
        Some(anon) => (
            anon.payload.clone(),
            anon.key_id.clone(),
            anon.signature.clone(),
        ),
        None => (
            row.payload.clone(),
            row.key_id.clone(),
            row.signature.clone(),
        ),
    };
    Envelope {
        payload_type: row.payload_type.clone(),
        payload,
        signatures: vec![Signature { keyid, sig }],
    }
}

/// The hubs that may follow this one now: active members with role
/// `peer`, sorted (what the signed directory lists as `peers`).
pub fn current_peers(members: &[(MemberRow, u32, u32)]) -> Vec<String> {
    let mut peers: Vec<String> = members
        .iter()
        .filter(|(m, _, _)| m.role == Role::Peer && m.status == MemberStatus::Active)
        .map(|(m, _, _)| m.org_id.clone())
        .collect();
    peers.sort();
    peers
}

pub use crate::directory::removed_peers;

/// The origin directories this hub holds, by hub id: the pinned
/// directories of the hubs it follows, then those of origins it takes
/// items of through a peer or of retired links (a followed hub's own
/// pinned copy wins). Each as its origin signed it.
pub async fn pinned_origin_directories(
    store: &crate::store::Store,
) -> Result<std::collections::BTreeMap<String, Envelope>, crate::store::StoreError> {
    let mut out = std::collections::BTreeMap::new();
    for link in store.peer_links().await? {
        let Some(json) = link.directory else { continue };
        match Envelope::from_json(&json) {
            Ok(env) => {
                out.insert(link.hub_id, env);
            }
            Err(e) => {
                tracing::warn!(peer = %link.hub_id, error = %e, "pinned directory unreadable")
            }
        }
    }
    for row in store.origin_directories().await? {
        if out.contains_key(&row.hub_id) {
            continue;
        }
        match Envelope::from_json(&row.directory) {
            Ok(env) => {
                out.insert(row.hub_id, env);
            }
            Err(e) => {
                tracing::warn!(origin = %row.hub_id, error = %e, "pinned origin directory unreadable")
            }
        }
    }
    Ok(out)
}

/// The payload of a directory this hub pinned (verified when pinned).
pub fn pinned_payload(envelope: &Envelope) -> Option<KeyDirectory> {
    serde_json::from_slice(&envelope.payload).ok()
}

/// What this hub (`hub_id`) serves `peer` for a row it received from
/// another hub (relaying): the author's envelope as received, its
/// provenance as held here (the path ends with this hub), and
/// `may_forward` against the origin's pinned directory (`origins`, by hub
/// id): never back to a hub in the path, never to or through a hub the
/// origin removed, never no-forward, never above GREEN.
pub fn relayed(
    hub_id: &str,
    row: &StoredStatement,
    peer: &str,
    origins: &std::collections::BTreeMap<String, KeyDirectory>,
) -> Result<Outgoing, String> {
    let held = row.provenance.as_deref().ok_or("not a received item")?;
    let provenance = Provenance::decode(held).map_err(|e| format!("stored provenance: {e}"))?;
    let origin = origins.get(&provenance.origin_hub).ok_or_else(|| {
        format!(
            "no pinned directory of origin `{}`; not relayed",
            provenance.origin_hub
        )
    })?;
    let envelope = crossing_envelope(row);
    let statement = Statement::from_canonical_bytes(&envelope.payload)
        .map_err(|e| format!("stored payload does not parse: {e}"))?;
    may_forward(
        Crossing {
            tlp: statement.tlp,
            no_forward: statement.no_forward,
            origin_hub: &provenance.origin_hub,
            hub_path: &provenance.hub_path,
        },
        Link {
            from_hub: hub_id,
            to_hub: peer,
            origin_peers: &origin.peers,
            origin_removed: &origin.removed_peers,
        },
    )
    .map_err(|r| r.to_string())?;
    Ok(Outgoing {
        envelope,
        provenance: provenance.canonical_bytes(),
    })
}

/// What this hub (`hub_id`) serves `peer` for one of its own rows, or why
/// not. The level and no-forward come from the signed statement itself,
/// never from the row's columns; a payload that does not parse does not
/// cross.
pub fn outgoing(
    hub_id: &str,
    row: &StoredStatement,
    peer: &str,
    peers: &[String],
) -> Result<Outgoing, String> {
    if row.provenance.is_some() {
        // A received row leaves only through `relayed`, which checks it
        // against its origin's rules; this path is for own rows.
        return Err("received from a peer hub; this hub does not relay".into());
    }
    let envelope = crossing_envelope(row);
    let statement = Statement::from_canonical_bytes(&envelope.payload)
        .map_err(|e| format!("stored payload does not parse: {e}"))?;
    let provenance = Provenance::at_origin(hub_id, row.leaf_index);
    may_forward(
        Crossing {
            tlp: statement.tlp,
            no_forward: statement.no_forward,
            origin_hub: hub_id,
            hub_path: &provenance.hub_path,
        },
        Link {
            from_hub: hub_id,
            to_hub: peer,
            origin_peers: peers,
            origin_removed: &[],
        },
    )
    .map_err(|r| r.to_string())?;
    Ok(Outgoing {
        envelope,
        provenance: provenance.canonical_bytes(),
    })
}

/// A peer's signed directory, checked like an agent checks its hub's:
/// signed by the key pinned at `hub peer add`, not older than the version
/// held (rollback), not expired (freeze), and no history rewritten.
pub fn check_peer_directory(
    envelope: &Envelope,
    pinned: &VerifyingKey,
    held: Option<&KeyDirectory>,
    now: UnixSeconds,
) -> Result<KeyDirectory, DirectoryError> {
    let directory = verify_directory(envelope, pinned, held.map(|d| d.version), now)?;
    if let Some(held) = held {
        check_succession(held, &directory)?;
    }
    Ok(directory)
}

/// Checks one item `from_peer` sent against the origin's pinned directory
/// (`isac_core::federation::verify_forwarded`) and returns the row to
/// store, for an item whose origin is the peer itself; an item claiming
/// another origin is refused here (relayed items go through
/// `received_relayed`).
pub fn received(
    envelope: &Envelope,
    provenance: &[u8],
    peer_directory: &KeyDirectory,
    from_peer: &str,
    local_hub: &str,
    now: i64,
) -> Result<FederatedItem, ReceiveError> {
    let none = isac_core::lifetime::Lifetimes::new();
    received_with(
        envelope,
        provenance,
        peer_directory,
        from_peer,
        local_hub,
        now,
        &none,
    )
}

/// [`received`], the row for this hub's order taking `lifetimes` (the
/// hub-wide default lifetimes, as a local publish does).
pub fn received_with(
    envelope: &Envelope,
    provenance: &[u8],
    peer_directory: &KeyDirectory,
    from_peer: &str,
    local_hub: &str,
    now: i64,
    lifetimes: &isac_core::lifetime::Lifetimes,
) -> Result<FederatedItem, ReceiveError> {
    // The origin first: the envelope is checked against the sender's
    // directory, which says nothing about another hub's members.
    let claimed = Provenance::decode(provenance)?;
    if claimed.origin_hub != from_peer {
        return Err(ReceiveError::Refused(
            isac_core::federation::Refusal::Provenance(format!(
                "origin hub `{}` is not the sending peer `{from_peer}` (this hub takes items only from their origin)",
                claimed.origin_hub
            )),
        ));
    }
    let got = verify_forwarded(envelope, provenance, peer_directory, from_peer, local_hub)?;
    Ok(item_of(envelope, got, from_peer, now, lifetimes))
}

/// [`received_with`] for an item whose origin is a third hub, relayed by
/// `from_peer`: the caller decided the origin (`may_accept_origin`) and
/// verified `origin_directory` with the key the sender's signed directory
/// lists for it; the author's signature, the provenance and the crossing
/// rules are checked against that directory here.
pub fn received_relayed(
    envelope: &Envelope,
    provenance: &[u8],
    origin_directory: &KeyDirectory,
    from_peer: &str,
    local_hub: &str,
    now: i64,
    lifetimes: &isac_core::lifetime::Lifetimes,
) -> Result<FederatedItem, ReceiveError> {
    let got = verify_forwarded(envelope, provenance, origin_directory, from_peer, local_hub)?;
    Ok(item_of(envelope, got, from_peer, now, lifetimes))
}

fn item_of(
    envelope: &Envelope,
    got: isac_core::federation::Received,
    from_peer: &str,
    now: i64,
    lifetimes: &isac_core::lifetime::Lifetimes,
) -> FederatedItem {
    let order = into_order(envelope, &got, now, lifetimes);
    FederatedItem {
        order: Some(order),
        origin_hub: got.key.origin_hub.clone(),
        id: got.key.id.to_string(),
        revision: got.key.revision,
        from_peer: from_peer.to_owned(),
        tlp: got.verified.statement.tlp.to_string(),
        kind: got.verified.statement.kind().to_owned(),
        envelope_json: envelope.to_json(),
        provenance: got.provenance.canonical_bytes(),
        received_at: now,
    }
}

/// The `source_org` a federated row carries: the author at the origin hub,
/// qualified by it, so it is never a local member (who could otherwise
/// revise or retract it as its source).
pub fn federated_source(author: &str, origin_hub: &str) -> String {
    isac_core::stix::federated_org(author, origin_hub)
}

/// The row a verified received item becomes in this hub's own order: the
/// author's envelope byte for byte (no local key check: members verify it
/// against the origin's directory), its provenance, and the same derived
/// columns a local publish stores. Only CLEAR and GREEN cross, so the
/// audience is empty and the TLP decision is the local one.
pub fn into_order(
    envelope: &Envelope,
    got: &isac_core::federation::Received,
    now: i64,
    lifetimes: &isac_core::lifetime::Lifetimes,
) -> NewStatement {
    use isac_core::statement::Body;
    let statement = &got.verified.statement;
    let sig = envelope.signatures.first();
    NewStatement {
        id: statement.id.to_string(),
        revision: statement.revision,
        source_org: federated_source(statement.author(), &got.provenance.origin_hub),
        tlp: statement.tlp.as_str().to_owned(),
        audience_json: "[]".into(),
        kind: statement.kind().to_owned(),
        created_at: isac_core::time::parse_rfc3339(&statement.created).unwrap_or(now),
        received_at: now,
        payload_type: envelope.payload_type.clone(),
        payload: envelope.payload.clone(),
        key_id: sig.map(|s| s.keyid.clone()).unwrap_or_default(),
        signature: sig.map(|s| s.sig.clone()).unwrap_or_default(),
        digest: got.verified.digest.clone(),
        openings_json: "[]".into(),
        group_snapshot_json: "{}".into(),
        target_id: statement.target().map(|t| t.to_string()),
        value: statement.primary_value(),
        title: statement.title().to_owned(),
        sighting_count: match &statement.body {
            Body::Sighting(s) => Some(s.count),
            _ => None,
        },
        anonymous: None,
        facts: crate::app::publish::facts_of(statement, lifetimes),
        stix_ids: isac_core::stix::object_ids(statement),
        references: statement
            .referenced_ids()
            .iter()
            .map(ToString::to_string)
            .collect(),
        provenance: Some(got.provenance.canonical_bytes()),
    }
}
