//! Cross-hub sharing groups on the wire (issue 20), the follower's side:
//! the peer's signed group manifest, fetched, verified with the directory
//! key pinned at `hub peer add` and recorded per shared group; and the
//! openings beside an AMBER item, bounded. The server side is
//! `Peering.GetGroupManifest` in `grpc/peering.rs`.

use std::time::Duration;

use isac_core::audience::AudienceOpening;
use isac_core::fed_groups::{
    GroupManifest, GroupReceiveError, GroupRefusal, MAX_CROSSING_OPENINGS,
};
use isac_core::VerifyingKey;
use isac_proto::v1 as pb;

use crate::app::HubState;

/// How often a live session re-reads the peer's group manifest: a peer
/// that changes a shared group's members holds its AMBER items back at
/// this hub within this long (and at once at its own side).
pub const MANIFEST_REFRESH: Duration = Duration::from_secs(2);

/// The openings a peer sent beside an item: at most
/// [`MAX_CROSSING_OPENINGS`], each well formed, else the item is refused.
pub fn crossing_openings(
    openings: Vec<pb::AudienceOpening>,
) -> Result<Vec<AudienceOpening>, GroupReceiveError> {
    if openings.len() > MAX_CROSSING_OPENINGS {
        return Err(GroupRefusal::Openings.into());
    }
    openings
        .into_iter()
        .map(|o| AudienceOpening::try_from(o).map_err(|_| GroupRefusal::Openings.into()))
        .collect()
}

/// Fetches and verifies `hub`'s group manifest and records, for every
/// group shared with it, the member set it lists (none when it lists the
/// group not, or the manifest is refused: AMBER is then held back).
/// Failures are logged; the session goes on.
pub async fn refresh_manifest(
    state: &HubState,
    hub: &str,
    client: &mut pb::peering_client::PeeringClient<tonic::transport::Channel>,
    pinned: &VerifyingKey,
) {
    // Nothing shared with this peer: nothing to ask (and no noise from a
    // peer that predates cross-hub groups).
    let shared: Vec<String> = match state.store.peer_groups().await {
        Ok(rows) => rows
            .into_iter()
            .filter(|r| r.hub_id == hub)
            .map(|r| r.group)
            .collect(),
        Err(e) => {
            tracing::warn!(peer = %hub, error = %e, "cannot read shared groups");
            return;
        }
    };
    if shared.is_empty() {
        return;
    }
    let manifest = match client
        .get_group_manifest(pb::GetGroupManifestRequest {})
        .await
    {
        Ok(r) => match r.into_inner().signed_manifest {
            Some(env) => GroupManifest::open(&env.into(), pinned, hub, &state.config.hub_id)
                .map_err(|e| e.to_string()),
            None => Err("the peer sent no manifest".into()),
        },
        Err(s) => Err(format!("GetGroupManifest: {}", s.message())),
    };
    let manifest = match manifest {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(peer = %hub, error = %e, "group manifest refused; AMBER held back on this link");
            None
        }
    };
    let groups: Vec<(String, Option<Vec<String>>)> = shared
        .into_iter()
        .map(|group| {
            let there = manifest
                .as_ref()
                .and_then(|m| m.members_of(&group))
                .map(<[String]>::to_vec);
            (group, there)
        })
        .collect();
    if let Err(e) = state
        .store
        .set_peer_manifest(hub, groups, state.now())
        .await
    {
        tracing::warn!(peer = %hub, error = %e, "cannot record the peer's group manifest");
    }
}
