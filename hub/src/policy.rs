//! Glue between stored rows and the pure TLP decision in `isac_core::tlp`.
//! Every read path (stream, backfill, get, search, counts) asks
//! [`may_see`] or [`may_see_with_target`]; nothing else decides.

use std::collections::BTreeMap;

use isac_core::audience::AudienceOpening;
use isac_core::tlp::{may_receive, AudienceRef, Channel, ItemAccess, Recipient};
use isac_core::{Envelope, Signature, Tlp};

use crate::app::caller::Caller;
use crate::store::{Store, StoreError, StoredStatement};

/// Groups through which `caller` is entitled to `row`: it must have been a
/// member when the item was published (a group widened later does not
/// widen old items) and still be one now.
fn entitled_groups(row: &StoredStatement, caller: &Caller) -> Vec<String> {
    let snapshot: BTreeMap<String, Vec<String>> =
        serde_json::from_str(&row.group_snapshot_json).unwrap_or_default();
    snapshot
        .into_iter()
        .filter(|(group, members)| {
            members.contains(&caller.org_id) && caller.groups.contains(group)
        })
        .map(|(group, _)| group)
        .collect()
}

/// The TLP decision for one stored row. Fails closed on anything unreadable.
pub fn may_see(row: &StoredStatement, caller: &Caller, channel: Channel) -> bool {
    may_see_as(row, caller, None, channel)
}

/// [`may_see`] for a caller acting for one named person of its org (a
/// TAXII key bound to a person), or for the whole org (`None`).
pub fn may_see_as(
    row: &StoredStatement,
    caller: &Caller,
    person: Option<&str>,
    channel: Channel,
) -> bool {
    let Ok(tlp) = row.tlp.parse::<Tlp>() else {
        tracing::error!(
            seq = row.seq,
            "stored item has an unreadable TLP label; withheld"
        );
        return false;
    };
    let Ok(audience) = serde_json::from_str::<Vec<AudienceRef>>(&row.audience_json) else {
        tracing::error!(
            seq = row.seq,
            "stored item has an unreadable audience; withheld"
        );
        return false;
    };
    let groups = entitled_groups(row, caller);
    may_receive(
        ItemAccess {
            tlp,
            source_org: &row.source_org,
            audience: &audience,
        },
        Some(Recipient {
            org_id: &caller.org_id,
            groups: &groups,
            person,
        }),
        channel,
    )
}

/// For derived statements (sightings, retractions): the caller must be
/// entitled to the statement and to the latest revision of its target.
pub fn may_see_with_target(
    row: &StoredStatement,
    target_latest: Option<&StoredStatement>,
    caller: &Caller,
    channel: Channel,
) -> bool {
    may_see(row, caller, channel)
        && match (&row.target_id, target_latest) {
            (None, _) => true,
            (Some(_), Some(t)) => may_see(t, caller, channel),
            (Some(_), None) => false,
        }
}

/// The whole decision for a stored row on any read path: for a derived
/// statement, the target's latest revision is read from the store first.
pub async fn may_see_row(
    store: &Store,
    row: &StoredStatement,
    caller: &Caller,
    channel: Channel,
) -> Result<bool, StoreError> {
    let target = match &row.target_id {
        Some(t) => store.revisions(t).await?.into_iter().next(),
        None => None,
    };
    Ok(may_see_with_target(row, target.as_ref(), caller, channel))
}

/// The audience openings that name `caller`: all of them for the source.
pub fn openings_for(row: &StoredStatement, caller: &Caller) -> Vec<AudienceOpening> {
    let openings: Vec<AudienceOpening> =
        serde_json::from_str(&row.openings_json).unwrap_or_default();
    let is_source = row.source_org == caller.org_id;
    let groups = entitled_groups(row, caller);
    openings
        .into_iter()
        .filter(|o| {
            is_source
                || match &o.entry {
                    AudienceRef::Org(org) => org == &caller.org_id,
                    AudienceRef::Person { org, .. } => org == &caller.org_id,
                    AudienceRef::Group(g) => groups.contains(g),
                }
        })
        .collect()
}

/// What the caller receives: the source gets its own signed original;
/// everyone else gets the hub-signed anonymous version when there is one.
pub fn delivered_envelope(row: &StoredStatement, caller: &Caller) -> Envelope {
    let (payload, keyid, sig) = match &row.anonymous {
        Some(anon) if row.source_org != caller.org_id => (
            anon.payload.clone(),
            anon.key_id.clone(),
            anon.signature.clone(),
        ),
        _ => (
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

/// Everything a recipient is handed for one row, in core types; the front
/// door encodes it (`grpc::delivery`, TAXII objects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handed {
    pub envelope: Envelope,
    pub received_at: i64,
    pub openings: Vec<AudienceOpening>,
}

pub fn handed(row: &StoredStatement, caller: &Caller) -> Handed {
    Handed {
        envelope: delivered_envelope(row, caller),
        received_at: row.received_at,
        openings: openings_for(row, caller),
    }
}
