//! Statements a peer hub sends about this hub's own items (issue 20):
//! sightings (and retractions) its members made of an item this hub
//! forwarded. They arrive on the peer's own stream like any of its
//! members' items (`received_any`: signed by the reporter, or by the
//! peer's anonymisation key for an anonymous one, verified against the
//! peer's pinned directory; stored once per origin, id and revision) and
//! join this hub's order with their target, so this hub's counts
//! (`Lookup.CountSightings`, the console) include them through the same
//! TLP decision as local ones. What this module adds: a peer may speak
//! only about an item it could have been sent. One about an item of this
//! hub that may not cross to that peer now (no-forward, AMBER+STRICT,
//! RED, AMBER outside an agreed group) is refused and nothing is stored.

use crate::app::fed_groups::{agreed, link_groups, outgoing_any};
use crate::app::federation::current_peers;
use crate::app::HubState;
use crate::store::{FederatedItem, StoreError};

/// `Ok(Err(why))` when `item` from `from_peer` refers to an item of this
/// hub that `from_peer` was never entitled to; `Ok(Ok(()))` otherwise
/// (no target, or a target this hub did not originate).
pub async fn check_target_crossed(
    state: &HubState,
    item: &FederatedItem,
    from_peer: &str,
) -> Result<Result<(), String>, StoreError> {
    let Some(target) = item.order.as_ref().and_then(|o| o.target_id.as_deref()) else {
        return Ok(Ok(()));
    };
    let Some(latest) = state.store.revisions(target).await?.into_iter().next() else {
        return Ok(Ok(()));
    };
    if latest.provenance.is_some() {
        // Another hub's item: that hub decides what its peers may say.
        return Ok(Ok(()));
    }
    let local = &state.config.hub_id;
    let peers = current_peers(&state.store.list_members().await?);
    let groups = agreed(&link_groups(&state.store, local, from_peer).await?);
    Ok(outgoing_any(local, &latest, from_peer, &peers, &groups)
        .map(|_| ())
        .map_err(|why| {
            format!(
                "peer hub `{from_peer}` sent a {} about item {target}, which this hub never sends it ({why})",
                item.kind
            )
        }))
}
