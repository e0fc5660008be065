//! Cross-hub sharing groups (issue 20): the one way TLP:AMBER leaves its
//! hub. Pure; the hub half is `hub/src/app/fed_groups.rs`.
//!
//! A cross-hub group is a local sharing group (`hub group add`) whose
//! members may include organisations of a peer hub, written `ORG@HUB`.
//! `hub peer share PEER --group NAME` shares it with one peer; each hub
//! then serves that peer a [`GroupManifest`] signed with its directory key
//! (the key the peer pinned at `hub peer add`), listing the **canonical**
//! member set of every group it shares with that peer: every member
//! qualified by its hub (`alice-bank@hub-a`), sorted. An AMBER item
//! crosses a link only when:
//!
//! - it names a group in its (blinded) audience, the group is shared with
//!   that peer on both sides, and both sides' canonical sets are equal
//!   ([`agreement`]); otherwise the link holds it back and says why;
//! - it goes straight from its origin hub to the peer (AMBER is never
//!   relayed), and every other crossing rule holds (no-forward, the
//!   origin's current peers: [`crate::federation::may_forward`]).
//!
//! Only the openings of the agreed groups cross: the peer never learns the
//! item's other audience entries. The receiving hub delivers the item to
//! the group's organisations that are its own members (the group snapshot
//! of the row it stores), through the same `tlp::may_receive` as local
//! items. AMBER+STRICT and RED never cross, nor AMBER with no group.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::audience::AudienceOpening;
use crate::directory::KeyDirectory;
use crate::envelope::{pae, Envelope};
use crate::federation::{
    may_forward, verify_delivered, verify_forwarded, Crossing, Link, Provenance, ReceiveError,
    Received, Refusal,
};
use crate::keys::{KeyError, SigningKey, VerifyingKey};
use crate::names::is_slug;
use crate::tlp::{AudienceRef, Tlp};

pub const PAYLOAD_TYPE_GROUP_MANIFEST: &str = "application/vnd.isac.group-manifest.v1+json";
/// Largest manifest a hub parses from a peer.
pub const MAX_MANIFEST_BYTES: usize = 128 * 1024;
/// Most groups one manifest lists.
pub const MAX_SHARED_GROUPS: usize = 64;
/// Most members one shared group lists.
pub const MAX_GROUP_MEMBERS: usize = 512;
/// Most audience openings that cross beside one item.
pub const MAX_CROSSING_OPENINGS: usize = MAX_SHARED_GROUPS;

/// `ORG@HUB` split into its org and hub, both slugs.
pub fn split_member(member: &str) -> Option<(&str, &str)> {
    let (org, hub) = member.split_once('@')?;
    (is_slug(org) && is_slug(hub)).then_some((org, hub))
}

/// A group member as both hubs write it: `org` of this hub becomes
/// `org@local_hub`; `org@hub` stays.
pub fn qualify(member: &str, local_hub: &str) -> String {
    if member.contains('@') {
        member.to_owned()
    } else {
        format!("{member}@{local_hub}")
    }
}

/// The canonical member set of a group held at `local_hub`: every member
/// qualified, sorted, each once. Two hubs agree when theirs are equal.
pub fn canonical_members(members: &[String], local_hub: &str) -> Vec<String> {
    let mut out: Vec<String> = members.iter().map(|m| qualify(m, local_hub)).collect();
    out.sort();
    out.dedup();
    out
}

/// The organisations of `hub` in a canonical member set.
pub fn orgs_at(canonical: &[String], hub: &str) -> Vec<String> {
    canonical
        .iter()
        .filter_map(|m| split_member(m))
        .filter(|(_, h)| *h == hub)
        .map(|(o, _)| o.to_owned())
        .collect()
}

/// One shared group in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedGroup {
    pub name: String,
    /// Canonical: `org@hub`, sorted, each once.
    pub members: Vec<String>,
}

/// What a hub tells one peer about the groups it shares with it, signed
/// with its directory key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupManifest {
    /// The hub that signed it.
    pub hub: String,
    /// The peer it is for (a manifest for another peer is refused).
    pub peer: String,
    /// Unix seconds when signed (shown to operators).
    pub issued: i64,
    /// Sorted by name, each once.
    pub groups: Vec<SharedGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("group manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    #[error("group manifest is malformed: {0}")]
    Malformed(String),
    #[error("group manifest is not in canonical form")]
    NotCanonical,
    #[error("group manifest lists more than {MAX_SHARED_GROUPS} groups or a group of more than {MAX_GROUP_MEMBERS} members")]
    TooMany,
    #[error("group manifest has a bad payload type, signature count or signer")]
    Signer,
    #[error("group manifest signature does not verify")]
    BadSignature,
    #[error("group manifest is from `{got}` for `{for_peer}`, expected from `{hub}` for `{peer}`")]
    WrongHub {
        got: String,
        for_peer: String,
        hub: String,
        peer: String,
    },
}

impl GroupManifest {
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serialises")
    }

    /// Parses a manifest: bounded (size, groups, members), canonical
    /// (sorted, unique, re-encodes to the same bytes), ids well formed.
    pub fn decode(bytes: &[u8]) -> Result<GroupManifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge);
        }
        let m: GroupManifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        if m.groups.len() > MAX_SHARED_GROUPS
            || m.groups.iter().any(|g| g.members.len() > MAX_GROUP_MEMBERS)
        {
            return Err(ManifestError::TooMany);
        }
        let bad = |what: &str| Err(ManifestError::Malformed(what.to_owned()));
        if !is_slug(&m.hub) || !is_slug(&m.peer) {
            return bad("hub ids must be slugs");
        }
        if !m.groups.windows(2).all(|w| w[0].name < w[1].name) {
            return bad("groups must be sorted by name, each once");
        }
        for g in &m.groups {
            if !is_slug(&g.name) {
                return bad("group names must be slugs");
            }
            if g.members.is_empty() || !g.members.windows(2).all(|w| w[0] < w[1]) {
                return bad("members must be sorted, each once, at least one");
            }
            if g.members.iter().any(|x| split_member(x).is_none()) {
                return bad("members are written ORG@HUB");
            }
        }
        if m.canonical_bytes() != bytes {
            return Err(ManifestError::NotCanonical);
        }
        Ok(m)
    }

    pub fn sign(&self, key: &SigningKey) -> Result<Envelope, KeyError> {
        key.sign_envelope(PAYLOAD_TYPE_GROUP_MANIFEST, self.canonical_bytes())
    }

    /// Checks a manifest `hub` sent this hub (`peer`): signed by the
    /// directory key pinned for `hub`, then [`GroupManifest::decode`].
    pub fn open(
        envelope: &Envelope,
        pinned: &VerifyingKey,
        hub: &str,
        peer: &str,
    ) -> Result<GroupManifest, ManifestError> {
        if envelope.payload.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge);
        }
        let [sig] = envelope.signatures.as_slice() else {
            return Err(ManifestError::Signer);
        };
        if envelope.payload_type != PAYLOAD_TYPE_GROUP_MANIFEST || sig.keyid != pinned.key_id() {
            return Err(ManifestError::Signer);
        }
        if !pinned.verify_raw(&pae(&envelope.payload_type, &envelope.payload), &sig.sig) {
            return Err(ManifestError::BadSignature);
        }
        let m = GroupManifest::decode(&envelope.payload)?;
        if m.hub != hub || m.peer != peer {
            return Err(ManifestError::WrongHub {
                got: m.hub,
                for_peer: m.peer,
                hub: hub.to_owned(),
                peer: peer.to_owned(),
            });
        }
        Ok(m)
    }

    pub fn members_of(&self, group: &str) -> Option<&[String]> {
        self.groups
            .iter()
            .find(|g| g.name == group)
            .map(|g| g.members.as_slice())
    }
}

/// Whether both sides of a link hold the same group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement {
    Agreed,
    /// This hub does not share it with the peer (or has no such group).
    NotSharedHere,
    /// The peer's signed manifest does not list it (or none is held yet).
    NotSharedThere,
    /// Both share it, with different members.
    Differ {
        only_here: Vec<String>,
        only_there: Vec<String>,
    },
}

impl fmt::Display for Agreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Agreement::Agreed => f.write_str("agreed"),
            Agreement::NotSharedHere => f.write_str("held back: not shared by this hub"),
            Agreement::NotSharedThere => f.write_str("held back: the peer does not share it (yet)"),
            Agreement::Differ {
                only_here,
                only_there,
            } => write!(
                f,
                "held back: members differ (only here: {}; only at the peer: {})",
                shown(only_here),
                shown(only_there)
            ),
        }
    }
}

fn shown(list: &[String]) -> String {
    if list.is_empty() {
        "-".into()
    } else {
        list.join(",")
    }
}

/// Compares this hub's canonical set (`None`: not shared here) with the
/// peer's (`None`: not in its manifest).
pub fn agreement(here: Option<&[String]>, there: Option<&[String]>) -> Agreement {
    match (here, there) {
        (None, _) => Agreement::NotSharedHere,
        (_, None) => Agreement::NotSharedThere,
        (Some(h), Some(t)) if h == t => Agreement::Agreed,
        (Some(h), Some(t)) => Agreement::Differ {
            only_here: h.iter().filter(|m| !t.contains(m)).cloned().collect(),
            only_there: t.iter().filter(|m| !h.contains(m)).cloned().collect(),
        },
    }
}

/// Why an item may not cross a link, with groups taken into account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupRefusal {
    #[error(transparent)]
    Route(#[from] Refusal),
    #[error("TLP:AMBER crosses only to a sharing group this link shares and both hubs agree on; it names none")]
    NoAgreedGroup,
    #[error("TLP:AMBER is never relayed: it crosses only from its origin hub")]
    Relayed,
    #[error("its audience openings do not match the signed audience, or name more than its shared groups")]
    Openings,
}

/// The crossing decision with cross-hub groups: CLEAR and GREEN as
/// [`may_forward`] (no groups); AMBER only when its `audience` (the
/// clear entries, as the holder knows them) names a group `agreed` says
/// both hubs hold alike, straight from the origin, and every other rule of
/// [`may_forward`] holds; AMBER+STRICT and RED never. Returns the groups
/// through which it crosses (empty for CLEAR and GREEN).
pub fn may_forward_in_groups(
    item: Crossing<'_>,
    link: Link<'_>,
    audience: &[AudienceRef],
    agreed: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, GroupRefusal> {
    if item.tlp != Tlp::Amber {
        may_forward(item, link)?;
        return Ok(Vec::new());
    }
    let named: Vec<&str> = audience
        .iter()
        .filter_map(|a| match a {
            AudienceRef::Group(g) => Some(g.as_str()),
            _ => None,
        })
        .collect();
    if named.is_empty() {
        return Err(Refusal::AmberWithoutGroup.into());
    }
    let groups: Vec<String> = named
        .into_iter()
        .filter(|g| agreed(g))
        .map(str::to_owned)
        .collect();
    if groups.is_empty() {
        return Err(GroupRefusal::NoAgreedGroup);
    }
    if item.hub_path.len() != 1 {
        return Err(GroupRefusal::Relayed);
    }
    // The level is decided above; every other rule is may_forward's.
    may_forward(
        Crossing {
            tlp: Tlp::Green,
            ..item
        },
        link,
    )?;
    Ok(groups)
}

/// Why a hub or member refused an AMBER item in a group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupReceiveError {
    #[error(transparent)]
    Receive(#[from] ReceiveError),
    #[error("peer sent an item it may not forward: {0}")]
    Refused(#[from] GroupRefusal),
}

/// An AMBER item received in a group: what [`verify_forwarded`] returns,
/// the openings that crossed and the groups they name.
#[derive(Debug, Clone)]
pub struct ReceivedInGroup {
    pub received: Received,
    pub openings: Vec<AudienceOpening>,
    pub groups: Vec<String>,
}

/// The clear entries of `openings`, each matching a distinct signed
/// commitment of `audience`, each a group (a sender never reveals an
/// item's org or person entries to a peer).
fn opened_groups(
    audience: &[String],
    openings: &[AudienceOpening],
) -> Result<Vec<AudienceRef>, GroupRefusal> {
    if openings.len() > MAX_CROSSING_OPENINGS.min(audience.len()) {
        return Err(GroupRefusal::Openings);
    }
    let mut used: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for o in openings {
        if !crate::hex::is_hex_of_len(&o.salt, 32) || o.salt.bytes().any(|b| b.is_ascii_uppercase())
        {
            return Err(GroupRefusal::Openings);
        }
        let c = o.commitment();
        let Some(signed) = audience.iter().find(|a| **a == c) else {
            return Err(GroupRefusal::Openings);
        };
        if used.contains(&signed.as_str()) || !matches!(o.entry, AudienceRef::Group(_)) {
            return Err(GroupRefusal::Openings);
        }
        used.push(signed);
        out.push(o.entry.clone());
    }
    Ok(out)
}

/// Everything a hub checks before it stores an AMBER item `from_peer`
/// sent in a group: provenance, the envelope against the origin hub's
/// directory (as [`verify_forwarded`]), the openings against the signed
/// audience (groups only), then [`may_forward_in_groups`] for this hop
/// with `agreed` telling which groups this hub shares with `from_peer`
/// with equal members. Every opening must be of a crossing group.
pub fn verify_forwarded_in_groups(
    envelope: &Envelope,
    provenance: &[u8],
    openings: &[AudienceOpening],
    origin_directory: &KeyDirectory,
    from_peer: &str,
    local_hub: &str,
    agreed: &dyn Fn(&str) -> bool,
) -> Result<ReceivedInGroup, GroupReceiveError> {
    let decoded = Provenance::decode(provenance).map_err(ReceiveError::from)?;
    let verified = crate::verify::verify_envelope(envelope, |kid| origin_directory.record(kid))
        .map_err(|error| ReceiveError::Verify {
            origin: decoded.origin_hub.clone(),
            error,
        })?;
    let statement = &verified.statement;
    let entries = opened_groups(&statement.audience, openings)?;
    let groups = may_forward_in_groups(
        Crossing {
            tlp: statement.tlp,
            no_forward: statement.no_forward,
            origin_hub: &decoded.origin_hub,
            hub_path: &decoded.hub_path,
        },
        Link {
            from_hub: from_peer,
            to_hub: local_hub,
            origin_peers: &origin_directory.peers,
            origin_removed: &origin_directory.removed_peers,
        },
        &entries,
        agreed,
    )?;
    if statement.tlp == Tlp::Amber && groups.len() != entries.len() {
        return Err(GroupRefusal::Openings.into());
    }
    let key = crate::federation::ItemKey::of(&decoded.origin_hub, statement);
    Ok(ReceivedInGroup {
        received: Received {
            verified,
            provenance: decoded.held_by(local_hub),
            key,
        },
        openings: openings.to_vec(),
        groups,
    })
}

/// [`verify_forwarded`] for any level: AMBER goes through
/// [`verify_forwarded_in_groups`], everything else as before (no
/// openings may cross beside it).
pub fn verify_forwarded_any(
    envelope: &Envelope,
    provenance: &[u8],
    openings: &[AudienceOpening],
    origin_directory: &KeyDirectory,
    from_peer: &str,
    local_hub: &str,
    agreed: &dyn Fn(&str) -> bool,
) -> Result<ReceivedInGroup, GroupReceiveError> {
    match verify_forwarded(envelope, provenance, origin_directory, from_peer, local_hub) {
        Err(ReceiveError::Refused(Refusal::AmberWithoutGroup)) => verify_forwarded_in_groups(
            envelope,
            provenance,
            openings,
            origin_directory,
            from_peer,
            local_hub,
            agreed,
        ),
        Ok(_) if !openings.is_empty() => Err(GroupRefusal::Openings.into()),
        Ok(received) => Ok(ReceivedInGroup {
            received,
            openings: Vec::new(),
            groups: Vec::new(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// [`verify_delivered`] for any level: what a member checks of a
/// federated item its hub delivered with `openings` (those naming it). An
/// AMBER item must have come straight from its origin to this hub, in a
/// group the origin's author named (its opening matches the signed
/// audience). Whether the two hubs agree on the group is the hubs' check;
/// the member cannot see the link.
pub fn verify_delivered_any(
    envelope: &Envelope,
    provenance: &[u8],
    openings: &[AudienceOpening],
    origin_directory: &KeyDirectory,
) -> Result<Received, GroupReceiveError> {
    match verify_delivered(envelope, provenance, origin_directory) {
        Err(ReceiveError::Refused(Refusal::AmberWithoutGroup)) => {
            let held = Provenance::decode(provenance).map_err(ReceiveError::from)?;
            let mut served = held.clone();
            let local = served.hub_path.pop().unwrap_or_default();
            let from = served.sender().unwrap_or_default().to_owned();
            let groups: Vec<&AudienceOpening> = openings
                .iter()
                .filter(|o| matches!(o.entry, AudienceRef::Group(_)))
                .collect();
            let group_openings: Vec<AudienceOpening> = groups.into_iter().cloned().collect();
            verify_forwarded_in_groups(
                envelope,
                &served.canonical_bytes(),
                &group_openings,
                origin_directory,
                &from,
                &local,
                &|_| true,
            )
            .map(|r| r.received)
        }
        other => other.map_err(Into::into),
    }
}

#[cfg(test)]
mod tests;
