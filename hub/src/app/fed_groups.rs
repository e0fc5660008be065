//! Cross-hub sharing groups' hub half (issue 20): the groups a link shares
//! and whether both sides agree on them, the manifest this hub signs for a
//! peer, and the AMBER cases of what crosses (`outgoing_any`) and what is
//! taken (`received_any`). The rules are `isac_core::fed_groups` (pure,
//! table tested); `grpc/peering.rs` and `grpc/follower.rs` carry the wire.

use std::collections::BTreeMap;

use isac_core::audience::AudienceOpening;
use isac_core::directory::KeyDirectory;
use isac_core::fed_groups::{
    agreement, canonical_members, may_forward_in_groups, orgs_at, verify_forwarded_any, Agreement,
    GroupManifest, GroupReceiveError, SharedGroup,
};
use isac_core::federation::{Crossing, Link, Provenance};
use isac_core::lifetime::Lifetimes;
use isac_core::statement::Statement;
use isac_core::tlp::AudienceRef;
use isac_core::Envelope;

use crate::app::federation::{crossing_envelope, into_order, outgoing, received_with, Outgoing};
use crate::store::{FederatedItem, Store, StoreError, StoredStatement};

/// One group shared on a link, as this hub sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkGroup {
    pub group: String,
    /// This hub's canonical member set (`None`: the group is gone).
    pub here: Option<Vec<String>>,
    /// What the peer's last verified manifest lists.
    pub there: Option<Vec<String>>,
    pub agreement: Agreement,
}

/// The groups this hub shares with `peer`, each with its agreement.
pub async fn link_groups(
    store: &Store,
    local_hub: &str,
    peer: &str,
) -> Result<Vec<LinkGroup>, StoreError> {
    let mut out = Vec::new();
    for row in store.peer_groups().await? {
        if row.hub_id != peer {
            continue;
        }
        let here = store
            .group_members(&row.group)
            .await?
            .map(|m| canonical_members(&m, local_hub));
        out.push(LinkGroup {
            agreement: agreement(here.as_deref(), row.remote_members.as_deref()),
            group: row.group,
            here,
            there: row.remote_members,
        });
    }
    Ok(out)
}

/// The agreed groups of a link, with their canonical member sets.
pub fn agreed(groups: &[LinkGroup]) -> BTreeMap<String, Vec<String>> {
    groups
        .iter()
        .filter(|g| g.agreement == Agreement::Agreed)
        .filter_map(|g| Some((g.group.clone(), g.here.clone()?)))
        .collect()
}

/// What this hub tells `peer` about the groups it shares with it.
pub async fn manifest_for(
    store: &Store,
    local_hub: &str,
    peer: &str,
    now: i64,
) -> Result<GroupManifest, StoreError> {
    let groups = link_groups(store, local_hub, peer)
        .await?
        .into_iter()
        .filter_map(|g| {
            Some(SharedGroup {
                name: g.group,
                members: g.here?,
            })
        })
        .collect();
    Ok(GroupManifest {
        hub: local_hub.to_owned(),
        peer: peer.to_owned(),
        issued: now,
        groups,
    })
}

/// What this hub serves `peer` for one of its rows, of any level: CLEAR
/// and GREEN as `federation::outgoing`; AMBER only from this hub's own
/// members, in a group of its audience the link agrees on, with the
/// openings of those groups alone.
pub fn outgoing_any(
    hub_id: &str,
    row: &StoredStatement,
    peer: &str,
    peers: &[String],
    agreed: &BTreeMap<String, Vec<String>>,
) -> Result<(Outgoing, Vec<AudienceOpening>), String> {
    if row.tlp != isac_core::Tlp::Amber.as_str() {
        return outgoing(hub_id, row, peer, peers).map(|o| (o, Vec::new()));
    }
    if row.provenance.is_some() {
        return Err("TLP:AMBER received from a peer hub never travels on".into());
    }
    let envelope = crossing_envelope(row);
    let statement = Statement::from_canonical_bytes(&envelope.payload)
        .map_err(|e| format!("stored payload does not parse: {e}"))?;
    let openings = row.decode().openings;
    let entries: Vec<AudienceRef> = openings.iter().map(|o| o.entry.clone()).collect();
    let provenance = Provenance::at_origin(hub_id, row.leaf_index);
    let groups = may_forward_in_groups(
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
        &entries,
        &|g| agreed.contains_key(g),
    )
    .map_err(|r| r.to_string())?;
    let crossing = openings
        .into_iter()
        .filter(|o| matches!(&o.entry, AudienceRef::Group(g) if groups.contains(g)))
        .collect();
    Ok((
        Outgoing {
            envelope,
            provenance: provenance.canonical_bytes(),
        },
        crossing,
    ))
}

/// Checks one item `from_peer` sent, of any level, and returns the row to
/// store. Without openings: `federation::received_with`. With openings:
/// an AMBER item in a group this hub shares with `from_peer` on agreed
/// members (`agreed`), straight from its origin; its row in this hub's
/// order names the group, and its snapshot lists the group's
/// organisations that are members here, so only they receive it.
#[allow(clippy::too_many_arguments)]
pub fn received_any(
    envelope: &Envelope,
    provenance: &[u8],
    openings: &[AudienceOpening],
    peer_directory: &KeyDirectory,
    from_peer: &str,
    local_hub: &str,
    now: i64,
    lifetimes: &Lifetimes,
    agreed: &BTreeMap<String, Vec<String>>,
) -> Result<FederatedItem, GroupReceiveError> {
    if openings.is_empty() {
        return received_with(
            envelope,
            provenance,
            peer_directory,
            from_peer,
            local_hub,
            now,
            lifetimes,
        )
        .map_err(Into::into);
    }
    let got = verify_forwarded_any(
        envelope,
        provenance,
        openings,
        peer_directory,
        from_peer,
        local_hub,
        &|g| agreed.contains_key(g),
    )?;
    let mut order = into_order(envelope, &got.received, now, lifetimes);
    let entries: Vec<AudienceRef> = got.openings.iter().map(|o| o.entry.clone()).collect();
    let snapshot: BTreeMap<String, Vec<String>> = got
        .groups
        .iter()
        .map(|g| {
            let members = agreed.get(g).map(|m| orgs_at(m, local_hub));
            (g.clone(), members.unwrap_or_default())
        })
        .collect();
    order.audience_json = serde_json::to_string(&entries).expect("entries serialise");
    order.openings_json = serde_json::to_string(&got.openings).expect("openings serialise");
    order.group_snapshot_json = serde_json::to_string(&snapshot).expect("snapshot serialises");
    let statement = &got.received.verified.statement;
    Ok(FederatedItem {
        origin_hub: got.received.key.origin_hub.clone(),
        id: got.received.key.id.to_string(),
        revision: got.received.key.revision,
        from_peer: from_peer.to_owned(),
        tlp: statement.tlp.to_string(),
        kind: statement.kind().to_owned(),
        envelope_json: envelope.to_json(),
        provenance: got.received.provenance.canonical_bytes(),
        received_at: now,
        order: Some(order),
    })
}
