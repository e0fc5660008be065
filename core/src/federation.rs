//! Federation's pure half (issue 20): what a hub may hand to a peer hub,
//! what it may take from one, and the provenance that travels beside the
//! author's envelope.
//!
//! Items cross byte for byte; only [`Provenance`] is added, outside the
//! signature. So every rule a receiver can check without trusting the
//! sender is checked again on receipt ([`check_received`]): the level and
//! `no_forward` come from the signed statement, and the loop and
//! removal rules from the path and the origin hub's signed directory.
//!
//! The hub path lists the hubs that held an item, origin first; a hub
//! appends itself when it stores an item it received. So the path a hub
//! holds always ends with itself, and the path it serves ends with the
//! sender.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::directory::{FederatedOrigin, KeyDirectory};
use crate::envelope::Envelope;
use crate::names::is_slug;
use crate::statement::Statement;
use crate::tlp::Tlp;
use crate::verify::{verify_envelope, VerifiedStatement, VerifyError};

/// Most hubs an item may pass through, origin included. Sister ISACs and
/// national CERTs form small meshes; a longer path is a loop or an attack.
pub const MAX_HUB_PATH: usize = 8;
/// Largest provenance record a hub parses from a peer.
pub const MAX_PROVENANCE_BYTES: usize = 2048;
/// Most peers a hub's signed directory may list.
pub const MAX_PEERS: usize = 256;

/// Where a forwarded item comes from and the hubs it went through.
///
/// It carries no position in the origin hub's order: a raw sequence would
/// tell a peer how many items it was not sent (the rule members' cursors
/// follow too). Items are told apart by [`ItemKey`]; a peer's place in the
/// stream is its sealed cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Hub id of the hub the author published at.
    pub origin_hub: String,
    /// Its leaf index in the origin hub's transparency log, once the
    /// receiver checks inclusion there (absent until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_log_index: Option<u64>,
    /// The hubs that held it, origin first, each once.
    pub hub_path: Vec<String>,
}

/// Provenance as it may arrive: what [`Provenance`] writes, or the first
/// form, which also carried the origin's raw sequence (`origin_seq`, from
/// hubs before it was dropped and in rows they stored). That field is read
/// past and never written again.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    origin_hub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin_log_index: Option<u64>,
    hub_path: Vec<String>,
}

/// An item's identity on every hub: a triangle of peers stores it once,
/// and a retraction finds every copy by `(origin_hub, id)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemKey {
    pub origin_hub: String,
    pub id: Uuid,
    pub revision: u32,
}

impl ItemKey {
    pub fn of(origin_hub: &str, statement: &Statement) -> ItemKey {
        ItemKey {
            origin_hub: origin_hub.to_owned(),
            id: statement.id,
            revision: statement.revision,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    #[error("provenance is larger than {MAX_PROVENANCE_BYTES} bytes")]
    TooLarge,
    #[error("provenance is malformed: {0}")]
    Malformed(String),
    #[error("provenance is not in canonical form")]
    NotCanonical,
    #[error("provenance hub path is empty")]
    EmptyPath,
    #[error("provenance hub path has more than {MAX_HUB_PATH} hubs")]
    PathTooLong,
    #[error("provenance names `{0}`, which is not a hub id")]
    BadHubId(String),
    #[error("provenance hub path does not start at the origin hub `{0}`")]
    PathNotFromOrigin(String),
    #[error("provenance hub path lists hub `{0}` twice (a loop)")]
    Loop(String),
}

impl Provenance {
    /// The provenance of an item published at `hub`.
    pub fn at_origin(hub: &str, log_index: Option<u64>) -> Provenance {
        Provenance {
            origin_hub: hub.to_owned(),
            origin_log_index: log_index,
            hub_path: vec![hub.to_owned()],
        }
    }

    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("provenance always serialises")
    }

    /// Parses provenance a peer sent: bounded, canonical, and well formed
    /// ([`Provenance::validate`]).
    pub fn decode(bytes: &[u8]) -> Result<Provenance, ProvenanceError> {
        if bytes.len() > MAX_PROVENANCE_BYTES {
            return Err(ProvenanceError::TooLarge);
        }
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| ProvenanceError::Malformed(e.to_string()))?;
        if serde_json::to_vec(&wire).expect("provenance always serialises") != bytes {
            return Err(ProvenanceError::NotCanonical);
        }
        let Wire {
            origin_hub,
            origin_seq: _,
            origin_log_index,
            hub_path,
        } = wire;
        let p = Provenance {
            origin_hub,
            origin_log_index,
            hub_path,
        };
        p.validate()?;
        Ok(p)
    }

    /// Ids are slugs, the path starts at the origin, has no repeat and is
    /// at most [`MAX_HUB_PATH`] long.
    pub fn validate(&self) -> Result<(), ProvenanceError> {
        let shown = |s: &str| {
            s.chars()
                .take(64)
                .collect::<String>()
                .escape_default()
                .to_string()
        };
        if !is_slug(&self.origin_hub) {
            return Err(ProvenanceError::BadHubId(shown(&self.origin_hub)));
        }
        let Some(first) = self.hub_path.first() else {
            return Err(ProvenanceError::EmptyPath);
        };
        if self.hub_path.len() > MAX_HUB_PATH {
            return Err(ProvenanceError::PathTooLong);
        }
        if let Some(bad) = self.hub_path.iter().find(|h| !is_slug(h)) {
            return Err(ProvenanceError::BadHubId(shown(bad)));
        }
        if first != &self.origin_hub {
            return Err(ProvenanceError::PathNotFromOrigin(self.origin_hub.clone()));
        }
        for (i, h) in self.hub_path.iter().enumerate() {
            if self.hub_path[..i].contains(h) {
                return Err(ProvenanceError::Loop(h.clone()));
            }
        }
        Ok(())
    }

    /// The hub that handed this on: the last of the path.
    pub fn sender(&self) -> Option<&str> {
        self.hub_path.last().map(String::as_str)
    }

    /// What `hub` stores for an item it received with this provenance.
    pub fn held_by(&self, hub: &str) -> Provenance {
        let mut p = self.clone();
        p.hub_path.push(hub.to_owned());
        p
    }
}

/// The facts about a held item that decide whether it may cross.
#[derive(Debug, Clone, Copy)]
pub struct Crossing<'a> {
    /// From the signed statement.
    pub tlp: Tlp,
    /// From the signed statement.
    pub no_forward: bool,
    /// The hub the author published at.
    pub origin_hub: &'a str,
    /// Hubs that held it, origin first (the holder's own path ends with
    /// itself; a received one ends with the sender).
    pub hub_path: &'a [String],
}

/// A peering as seen from the hub deciding.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    /// The hub handing the item on.
    pub from_hub: &'a str,
    /// The hub receiving it.
    pub to_hub: &'a str,
    /// The peers the origin hub lists in its current signed directory
    /// (the holder's own peers for its own items): the first hub past the
    /// origin must be one of them.
    pub origin_peers: &'a [String],
    /// The hubs the origin suspended or removed as peers (its directory's
    /// `removed_peers`): none of them may hold or receive its items, also
    /// not through a third hub. A hub the origin never knew may.
    pub origin_removed: &'a [String],
}

/// Why an item may not cross. Each is shown to operators and logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} never leaves its hub")]
    Level(Tlp),
    #[error("TLP:AMBER crosses only into a cross-hub sharing group, and none is configured")]
    AmberWithoutGroup,
    #[error("its author marked it no-forward")]
    NoForward,
    #[error("hub `{0}` already held it (a loop)")]
    AlreadyHeld(String),
    #[error("origin hub `{origin}` does not peer with `{hub}` now")]
    OriginDoesNotPeer { origin: String, hub: String },
    #[error("origin hub `{origin}` suspended or removed `{hub}` as a peer")]
    OriginRemoved { origin: String, hub: String },
    #[error("origin hub `{origin}` is not one the sending peer `{sender}` delivers (not in its directory's `federated`)")]
    OriginUnknownToSender { origin: String, sender: String },
    #[error("this hub suspended or removed `{0}` as a peer")]
    RemovedHere(String),
    #[error("its hub path would pass {MAX_HUB_PATH} hubs")]
    PathTooLong,
    #[error("its provenance does not match the link: {0}")]
    Provenance(String),
}

/// May the holder (`link.from_hub`) serve this item to `link.to_hub`?
/// Pure and total; the receiver asks [`check_received`], which applies
/// this again. Fails closed: AMBER waits for cross-hub groups.
pub fn may_forward(item: Crossing<'_>, link: Link<'_>) -> Result<(), Refusal> {
    match item.tlp {
        Tlp::Clear | Tlp::Green => {}
        Tlp::Amber => return Err(Refusal::AmberWithoutGroup),
        level @ (Tlp::AmberStrict | Tlp::Red) => return Err(Refusal::Level(level)),
    }
    if item.no_forward {
        return Err(Refusal::NoForward);
    }
    if item.hub_path.first().map(String::as_str) != Some(item.origin_hub) {
        return Err(Refusal::Provenance(
            "the hub path does not start at the origin".into(),
        ));
    }
    if item.hub_path.last().map(String::as_str) != Some(link.from_hub) {
        return Err(Refusal::Provenance(format!(
            "the hub path does not end with the sender `{}`",
            link.from_hub
        )));
    }
    if item.hub_path.iter().any(|h| h == link.to_hub) {
        return Err(Refusal::AlreadyHeld(link.to_hub.to_owned()));
    }
    if item.hub_path.len() >= MAX_HUB_PATH {
        return Err(Refusal::PathTooLong);
    }
    // The first hub past the origin took it from the origin itself, so
    // it must be one the origin peers with now.
    let first = item
        .hub_path
        .get(1)
        .map(String::as_str)
        .unwrap_or(link.to_hub);
    if !link.origin_peers.iter().any(|p| p == first) {
        return Err(Refusal::OriginDoesNotPeer {
            origin: item.origin_hub.to_owned(),
            hub: first.to_owned(),
        });
    }
    // No hub past the origin, nor the receiver, is one the origin
    // suspended or removed: "the origin removed X" means X gets nothing of
    // the origin's, also not through a third hub. A hub the origin never
    // peered with may receive through a common peer (a line a - b - c).
    let relays = item.hub_path[1..].iter().map(String::as_str);
    for hub in relays.chain([link.to_hub]) {
        if link.origin_removed.iter().any(|p| p == hub) {
            return Err(Refusal::OriginRemoved {
                origin: item.origin_hub.to_owned(),
                hub: hub.to_owned(),
            });
        }
    }
    Ok(())
}

/// The receiver's decision on an item's origin before anything else: an
/// item of this hub's own is a loop; an origin or a hub in the path that
/// this hub suspended or removed is refused (removal holds in both
/// directions, also through a third hub); an item from its origin is
/// checked against the sender's own directory (`Ok(None)`); an item
/// relayed from a third hub is taken only when the sender's pinned signed
/// directory lists that origin under `federated`, and the origin's
/// directory must then verify with the key listed there (`Ok(Some)`).
pub fn may_accept_origin<'a>(
    provenance: &Provenance,
    from_peer: &str,
    local_hub: &str,
    sender_federated: &'a [FederatedOrigin],
    local_removed: &[String],
) -> Result<Option<&'a FederatedOrigin>, Refusal> {
    let origin = provenance.origin_hub.as_str();
    if origin == local_hub || provenance.hub_path.iter().any(|h| h == local_hub) {
        return Err(Refusal::AlreadyHeld(local_hub.to_owned()));
    }
    if let Some(hub) = std::iter::once(from_peer)
        .chain(provenance.hub_path.iter().map(String::as_str))
        .find(|h| local_removed.iter().any(|r| r == h))
    {
        return Err(Refusal::RemovedHere(hub.to_owned()));
    }
    if origin == from_peer {
        return Ok(None);
    }
    sender_federated
        .iter()
        .find(|o| o.hub_id == origin)
        .map(Some)
        .ok_or_else(|| Refusal::OriginUnknownToSender {
            origin: origin.to_owned(),
            sender: from_peer.to_owned(),
        })
}

/// The receiving hub's check of an item `from_peer` sent it, once the
/// envelope has verified against the origin hub's pinned directory: the
/// provenance is well formed and [`may_forward`] holds for this hop (a
/// sender that broke it is refused and nothing is stored; the receiver's
/// own items coming back are loops). Returns the key to de-duplicate on.
pub fn check_received(
    statement: &Statement,
    provenance: &Provenance,
    from_peer: &str,
    local_hub: &str,
    origin_peers: &[String],
    origin_removed: &[String],
) -> Result<ItemKey, Refusal> {
    provenance
        .validate()
        .map_err(|e| Refusal::Provenance(e.to_string()))?;
    may_forward(
        Crossing {
            tlp: statement.tlp,
            no_forward: statement.no_forward,
            origin_hub: &provenance.origin_hub,
            hub_path: &provenance.hub_path,
        },
        Link {
            from_hub: from_peer,
            to_hub: local_hub,
            origin_peers,
            origin_removed,
        },
    )?;
    Ok(ItemKey::of(&provenance.origin_hub, statement))
}

/// Why a hub refused an item a peer sent. Nothing of it is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    #[error("bad provenance from peer: {0}")]
    Provenance(#[from] ProvenanceError),
    #[error("item does not verify against origin hub `{origin}`'s key directory: {error}")]
    Verify { origin: String, error: VerifyError },
    #[error("peer sent an item it may not forward: {0}")]
    Refused(#[from] Refusal),
}

/// An item a peer sent, verified to its author at the origin hub.
#[derive(Debug, Clone)]
pub struct Received {
    pub verified: VerifiedStatement,
    /// What the receiving hub stores: the path with itself appended.
    pub provenance: Provenance,
    pub key: ItemKey,
}

/// Everything a hub checks before it stores an item `from_peer` sent:
/// provenance bounded and well formed; the envelope verifies against the
/// origin hub's directory (`origin_directory`, already verified against
/// the origin's pinned key, with rollback and freeze checked); then
/// [`check_received`] with the origin's current peers from that directory.
/// A peer cannot inject an item claiming a local member or a third hub's
/// member as author: only keys the origin hub lists verify, and they
/// verify only what their owner signed.
pub fn verify_forwarded(
    envelope: &Envelope,
    provenance: &[u8],
    origin_directory: &KeyDirectory,
    from_peer: &str,
    local_hub: &str,
) -> Result<Received, ReceiveError> {
    let provenance = Provenance::decode(provenance)?;
    let verified =
        verify_envelope(envelope, |kid| origin_directory.record(kid)).map_err(|error| {
            ReceiveError::Verify {
                origin: provenance.origin_hub.clone(),
                error,
            }
        })?;
    let key = check_received(
        &verified.statement,
        &provenance,
        from_peer,
        local_hub,
        &origin_directory.peers,
        &origin_directory.removed_peers,
    )?;
    Ok(Received {
        verified,
        provenance: provenance.held_by(local_hub),
        key,
    })
}

/// What a member's agent checks for a federated item its hub delivered:
/// the provenance its hub holds (bounded; the path ends with that hub and
/// names at least the origin before it), then everything the hub itself
/// checked on receipt ([`verify_forwarded`] for the last hop), against the
/// origin hub's directory the agent pinned with the key its own hub's
/// signed directory names. So a hub cannot pass off its own or a third
/// party's statement as another hub's member's, and cannot deliver what
/// the crossing rules kept out.
pub fn verify_delivered(
    envelope: &Envelope,
    provenance: &[u8],
    origin_directory: &KeyDirectory,
) -> Result<Received, ReceiveError> {
    let held = Provenance::decode(provenance)?;
    let mut served = held.clone();
    let local = served.hub_path.pop().unwrap_or_default();
    let Some(from) = served.sender().map(str::to_owned) else {
        return Err(ReceiveError::Provenance(ProvenanceError::Malformed(
            "a federated item must name the hub it came from before the delivering hub".into(),
        )));
    };
    verify_forwarded(
        envelope,
        &served.canonical_bytes(),
        origin_directory,
        &from,
        &local,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::tests::sample;
    use crate::tlp::ALL_LEVELS;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn crossing<'a>(tlp: Tlp, no_forward: bool, path: &'a [String]) -> Crossing<'a> {
        Crossing {
            tlp,
            no_forward,
            origin_hub: "a",
            hub_path: path,
        }
    }

    /// Every level x no-forward x a direct and a relayed hop.
    #[test]
    fn level_table() {
        let at_a = v(&["a"]);
        let via_c = v(&["a", "c"]);
        let peers = v(&["b", "c"]);
        for tlp in ALL_LEVELS {
            for no_forward in [false, true] {
                for (path, from) in [(&at_a, "a"), (&via_c, "c")] {
                    let got = may_forward(
                        crossing(tlp, no_forward, path),
                        Link {
                            from_hub: from,
                            to_hub: "b",
                            origin_peers: &peers,
                            origin_removed: &[],
                        },
                    );
                    let want = match (tlp, no_forward) {
                        (Tlp::Clear | Tlp::Green, false) => Ok(()),
                        (Tlp::Clear | Tlp::Green, true) => Err(Refusal::NoForward),
                        (Tlp::Amber, _) => Err(Refusal::AmberWithoutGroup),
                        (Tlp::AmberStrict | Tlp::Red, _) => Err(Refusal::Level(tlp)),
                    };
                    assert_eq!(got, want, "{tlp} no_forward={no_forward} from {from}");
                }
            }
        }
    }

    /// The level rule is the TLP decision's `PeerHub` channel.
    #[test]
    fn levels_agree_with_the_tlp_decision() {
        use crate::tlp::{may_receive, Channel, ItemAccess};
        let path = v(&["a"]);
        let peers = v(&["b"]);
        for tlp in ALL_LEVELS {
            let link = Link {
                from_hub: "a",
                to_hub: "b",
                origin_peers: &peers,
                origin_removed: &[],
            };
            let access = ItemAccess {
                tlp,
                source_org: "acme",
                audience: &[],
            };
            assert_eq!(
                may_forward(crossing(tlp, false, &path), link).is_ok(),
                may_receive(access, None, Channel::PeerHub),
                "{tlp}"
            );
        }
    }

    /// The triangle a-b-c: each hub's copy goes to the one hub that has not
    /// held it, once; nothing goes back.
    #[test]
    fn triangle_delivers_once() {
        let all = v(&["b", "c"]);
        let ok = |path: &[String], from: &str, to: &str| {
            may_forward(
                crossing(Tlp::Green, false, path),
                Link {
                    from_hub: from,
                    to_hub: to,
                    origin_peers: &all,
                    origin_removed: &[],
                },
            )
        };
        assert_eq!(ok(&v(&["a"]), "a", "b"), Ok(()));
        assert_eq!(ok(&v(&["a"]), "a", "c"), Ok(()));
        assert_eq!(ok(&v(&["a", "b"]), "b", "c"), Ok(()));
        assert_eq!(
            ok(&v(&["a", "b"]), "b", "a"),
            Err(Refusal::AlreadyHeld("a".into()))
        );
        assert_eq!(
            ok(&v(&["a", "b", "c"]), "c", "b"),
            Err(Refusal::AlreadyHeld("b".into()))
        );
        assert_eq!(
            ok(&v(&["a", "b", "c"]), "c", "a"),
            Err(Refusal::AlreadyHeld("a".into()))
        );
    }

    /// When `a` drops `b`, `c` stops handing `a`'s items to `b`, and `b`
    /// refuses them from `c`; when `a` drops `c`, `c` stops relaying. A hub
    /// `a` never knew (`d`) still gets them through a common peer.
    #[test]
    fn removal_at_the_origin_holds_through_a_third_hub() {
        let only_c = v(&["c"]);
        let only_b = v(&["b"]);
        let (no_b, no_c) = (v(&["b"]), v(&["c"]));
        let link = |to, peers, removed| Link {
            from_hub: "c",
            to_hub: to,
            origin_peers: peers,
            origin_removed: removed,
        };
        let via_c = v(&["a", "c"]);
        let go = |l| may_forward(crossing(Tlp::Clear, false, &via_c), l);
        assert_eq!(
            go(link("b", &only_c, &no_b)),
            Err(Refusal::OriginRemoved {
                origin: "a".into(),
                hub: "b".into()
            })
        );
        // `b` unknown to `a` (neither peer nor removed): a line a - c - b.
        assert_eq!(go(link("b", &only_c, &[])), Ok(()));
        assert_eq!(go(link("d", &only_c, &no_b)), Ok(()));
        // `a` dropped `c`: `c` was the first hop, and is no peer now.
        assert_eq!(
            go(link("b", &only_b, &no_c)),
            Err(Refusal::OriginDoesNotPeer {
                origin: "a".into(),
                hub: "c".into()
            })
        );
        assert_eq!(
            go(link("b", &[], &[])),
            Err(Refusal::OriginDoesNotPeer {
                origin: "a".into(),
                hub: "c".into()
            })
        );
        // A removed hub later in the path: a - c - x - b with x removed.
        let via_x = v(&["a", "c", "x"]);
        let no_x = v(&["x"]);
        assert_eq!(
            may_forward(
                crossing(Tlp::Green, false, &via_x),
                Link {
                    from_hub: "x",
                    to_hub: "b",
                    origin_peers: &only_c,
                    origin_removed: &no_x,
                }
            ),
            Err(Refusal::OriginRemoved {
                origin: "a".into(),
                hub: "x".into()
            })
        );
        // The origin's own items: only to a current peer.
        let at_a = v(&["a"]);
        let from_a = |to| {
            may_forward(
                crossing(Tlp::Green, false, &at_a),
                Link {
                    from_hub: "a",
                    to_hub: to,
                    origin_peers: &only_c,
                    origin_removed: &no_b,
                },
            )
        };
        assert_eq!(from_a("c"), Ok(()));
        assert!(matches!(
            from_a("b"),
            Err(Refusal::OriginDoesNotPeer { .. })
        ));
        assert!(matches!(
            from_a("d"),
            Err(Refusal::OriginDoesNotPeer { .. })
        ));
    }

    /// Every case of the receiver's decision on an origin.
    #[test]
    fn accepting_an_origin() {
        use crate::directory::FederatedOrigin;
        let key = crate::keys::SigningKey::generate().unwrap();
        let a_key = FederatedOrigin::new("a", key.verifying_key().unwrap().spki_der()).unwrap();
        let sender_fed = vec![a_key.clone()];
        let prov = |path: &[&str]| Provenance {
            hub_path: v(path),
            ..Provenance::at_origin(path[0], None)
        };
        let none: Vec<String> = vec![];
        // From its origin: checked against the sender's own directory.
        assert_eq!(
            may_accept_origin(&prov(&["b"]), "b", "c", &[], &none),
            Ok(None)
        );
        assert_eq!(
            may_accept_origin(&prov(&["b"]), "b", "c", &sender_fed, &none),
            Ok(None)
        );
        // Relayed: only an origin the sender lists, with its key.
        assert_eq!(
            may_accept_origin(&prov(&["a", "b"]), "b", "c", &sender_fed, &none),
            Ok(Some(&a_key))
        );
        assert_eq!(
            may_accept_origin(&prov(&["a", "b"]), "b", "c", &[], &none),
            Err(Refusal::OriginUnknownToSender {
                origin: "a".into(),
                sender: "b".into()
            })
        );
        assert_eq!(
            may_accept_origin(&prov(&["z", "b"]), "b", "c", &sender_fed, &none),
            Err(Refusal::OriginUnknownToSender {
                origin: "z".into(),
                sender: "b".into()
            })
        );
        // This hub's own item, or one that passed here, coming back.
        for p in [prov(&["c", "b"]), prov(&["a", "c", "b"])] {
            assert_eq!(
                may_accept_origin(&p, "b", "c", &sender_fed, &none),
                Err(Refusal::AlreadyHeld("c".into()))
            );
        }
        // Removed here: the origin, a relay, or the sender itself.
        let no_a = v(&["a"]);
        assert_eq!(
            may_accept_origin(&prov(&["a", "b"]), "b", "c", &sender_fed, &no_a),
            Err(Refusal::RemovedHere("a".into()))
        );
        assert_eq!(
            may_accept_origin(&prov(&["a"]), "a", "c", &sender_fed, &no_a),
            Err(Refusal::RemovedHere("a".into()))
        );
        let no_x = v(&["x"]);
        assert_eq!(
            may_accept_origin(&prov(&["a", "x", "b"]), "b", "c", &sender_fed, &no_x),
            Err(Refusal::RemovedHere("x".into()))
        );
        let no_b = v(&["b"]);
        assert_eq!(
            may_accept_origin(&prov(&["a", "b"]), "b", "c", &sender_fed, &no_b),
            Err(Refusal::RemovedHere("b".into()))
        );
    }

    #[test]
    fn paths_that_do_not_match_the_link_are_refused() {
        let peers = v(&["b", "c", "d"]);
        let link = |from| Link {
            from_hub: from,
            to_hub: "b",
            origin_peers: &peers,
            origin_removed: &[],
        };
        let via_c = v(&["a", "c"]);
        assert!(matches!(
            may_forward(crossing(Tlp::Clear, false, &via_c), link("d")),
            Err(Refusal::Provenance(_))
        ));
        let not_from_origin = v(&["c"]);
        assert!(matches!(
            may_forward(crossing(Tlp::Clear, false, &not_from_origin), link("c")),
            Err(Refusal::Provenance(_))
        ));
        assert!(matches!(
            may_forward(crossing(Tlp::Clear, false, &[]), link("a")),
            Err(Refusal::Provenance(_))
        ));
        let long: Vec<String> = std::iter::once("a".to_string())
            .chain((1..MAX_HUB_PATH).map(|i| format!("h{i}")))
            .collect();
        let mut all = peers.clone();
        all.extend(long.iter().cloned());
        assert_eq!(
            may_forward(
                crossing(Tlp::Clear, false, &long),
                Link {
                    from_hub: long.last().unwrap(),
                    to_hub: "b",
                    origin_peers: &all,
                    origin_removed: &[],
                }
            ),
            Err(Refusal::PathTooLong)
        );
    }

    #[test]
    fn provenance_decoding_is_strict_and_bounded() {
        let bad = |json: &str| Provenance::decode(json.as_bytes()).unwrap_err();
        let p = Provenance::at_origin("a", Some(6));
        let bytes = p.canonical_bytes();
        assert_eq!(Provenance::decode(&bytes).unwrap(), p);
        let held = p.held_by("b");
        assert_eq!(held.sender(), Some("b"));
        assert_eq!(Provenance::decode(&held.canonical_bytes()).unwrap(), held);
        // No log index: the field is absent, not null.
        let bare = Provenance::at_origin("a", None);
        assert!(!String::from_utf8(bare.canonical_bytes())
            .unwrap()
            .contains("origin_log_index"));
        // No position in the origin's order is written...
        assert_eq!(
            bare.canonical_bytes(),
            br#"{"origin_hub":"a","hub_path":["a"]}"#
        );
        // ...and the first form, which carried one, still reads (rows and
        // peers from before), the position dropped.
        for (old, index) in [
            (
                r#"{"origin_hub":"a","origin_seq":7,"hub_path":["a","b"]}"#,
                None,
            ),
            (
                r#"{"origin_hub":"a","origin_seq":7,"origin_log_index":6,"hub_path":["a"]}"#,
                Some(6),
            ),
        ] {
            let p = Provenance::decode(old.as_bytes()).unwrap();
            assert_eq!(p.origin_log_index, index);
            assert!(!String::from_utf8(p.canonical_bytes())
                .unwrap()
                .contains("origin_seq"));
            assert_eq!(Provenance::decode(&p.canonical_bytes()).unwrap(), p);
        }
        assert_eq!(
            bad(r#"{"origin_hub":"a","origin_seq":null,"hub_path":["a"]}"#),
            ProvenanceError::NotCanonical
        );
        assert_eq!(
            bad(r#"{"origin_hub":"a","hub_path":["a"],"origin_seq":1}"#),
            ProvenanceError::NotCanonical
        );

        assert_eq!(
            bad(r#"{"origin_hub":"a","origin_seq":1,"hub_path":[]}"#),
            ProvenanceError::EmptyPath
        );
        assert_eq!(
            bad(r#"{"origin_hub":"a","origin_seq":1,"hub_path":["c"]}"#),
            ProvenanceError::PathNotFromOrigin("a".into())
        );
        assert_eq!(
            bad(r#"{"origin_hub":"a","origin_seq":1,"hub_path":["a","b","a"]}"#),
            ProvenanceError::Loop("a".into())
        );
        assert!(matches!(
            bad(r#"{"origin_hub":"A","origin_seq":1,"hub_path":["A"]}"#),
            ProvenanceError::BadHubId(_)
        ));
        assert!(matches!(
            bad(r#"{"origin_hub":"a","origin_seq":1,"hub_path":["a","b c"]}"#),
            ProvenanceError::BadHubId(_)
        ));
        assert_eq!(
            bad(r#"{"origin_hub":"a", "origin_seq":1,"hub_path":["a"]}"#),
            ProvenanceError::NotCanonical
        );
        assert_eq!(
            bad(r#"{"origin_hub":"a","origin_seq":1,"origin_log_index":null,"hub_path":["a"]}"#),
            ProvenanceError::NotCanonical
        );
        assert!(matches!(
            bad(r#"{"origin_hub":"a","origin_seq":1,"hub_path":["a"],"x":1}"#),
            ProvenanceError::Malformed(_)
        ));
        assert!(matches!(
            bad(r#"{"origin_hub":"a","origin_seq":-1,"hub_path":["a"]}"#),
            ProvenanceError::Malformed(_)
        ));
        let nine: Vec<String> = std::iter::once("a".to_string())
            .chain((1..=MAX_HUB_PATH).map(|i| format!("h{i}")))
            .collect();
        let long = Provenance {
            hub_path: nine,
            ..Provenance::at_origin("a", None)
        };
        assert_eq!(
            Provenance::decode(&long.canonical_bytes()).unwrap_err(),
            ProvenanceError::PathTooLong
        );
        assert_eq!(
            Provenance::decode(&vec![b' '; MAX_PROVENANCE_BYTES + 1]).unwrap_err(),
            ProvenanceError::TooLarge
        );
    }

    /// The receiver applies the sender's rule again, from the signed
    /// statement: a sender that lies about nothing it can lie about
    /// (level, no-forward) still cannot get such an item stored.
    #[test]
    fn receiver_checks_again() {
        let peers = v(&["b", "c"]);
        let mut s = sample("acme");
        let from_a = Provenance::at_origin("a", None);
        let key = check_received(&s, &from_a, "a", "b", &peers, &[]).unwrap();
        assert_eq!(
            key,
            ItemKey {
                origin_hub: "a".into(),
                id: s.id,
                revision: 1
            }
        );
        // The same item relayed by c is the same key: stored once.
        let via_c = from_a.held_by("c");
        assert_eq!(check_received(&s, &via_c, "c", "b", &peers, &[]), Ok(key));
        // c claiming it came straight from a.
        assert!(matches!(
            check_received(&s, &from_a, "c", "b", &peers, &[]),
            Err(Refusal::Provenance(_))
        ));
        // b's own item coming back.
        let from_b = Provenance::at_origin("b", None).held_by("c");
        assert_eq!(
            check_received(&s, &from_b, "c", "b", &peers, &[]),
            Err(Refusal::AlreadyHeld("b".into()))
        );
        s.no_forward = true;
        assert_eq!(
            check_received(&s, &from_a, "a", "b", &peers, &[]),
            Err(Refusal::NoForward)
        );
        s.no_forward = false;
        for tlp in [Tlp::Amber, Tlp::AmberStrict, Tlp::Red] {
            s.tlp = tlp;
            assert!(check_received(&s, &from_a, "a", "b", &peers, &[]).is_err());
        }
        s.tlp = Tlp::Clear;
        let bad = Provenance {
            hub_path: v(&["a", "a"]),
            ..from_a
        };
        assert!(matches!(
            check_received(&s, &bad, "a", "b", &peers, &[]),
            Err(Refusal::Provenance(_))
        ));
    }

    mod received {
        use super::*;
        use crate::directory::DirectoryKey;
        use crate::keys::SigningKey;
        use crate::time::format_rfc3339;
        use crate::PAYLOAD_TYPE_STATEMENT_V1;

        fn entry(k: &SigningKey, org: &str) -> DirectoryKey {
            crate::directory::test_entry(k, org, 0)
        }

        fn sign(k: &SigningKey, s: &Statement) -> Envelope {
            k.sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, s.canonical_bytes())
                .unwrap()
        }

        /// Hub `a` with member `acme`; `b` receives from `a` or via `c`.
        struct World {
            acme: SigningKey,
            dir_a: KeyDirectory,
        }

        fn world() -> World {
            let acme = SigningKey::generate().unwrap();
            let dir_a = KeyDirectory {
                version: 1,
                issued: format_rfc3339(0),
                expires: format_rfc3339(i64::from(u32::MAX)),
                keys: vec![entry(&acme, "acme")],
                peers: v(&["b", "c"]),
                removed_peers: Vec::new(),
                default_lifetimes: Default::default(),
                federated: Vec::new(),
            };
            World { acme, dir_a }
        }

        fn prov(path: &[&str]) -> Vec<u8> {
            Provenance {
                hub_path: v(path),
                ..Provenance::at_origin(path[0], None)
            }
            .canonical_bytes()
        }

        #[test]
        fn an_item_from_its_author_is_taken_byte_for_byte() {
            let w = world();
            let s = sample("acme");
            let env = sign(&w.acme, &s);
            let got = verify_forwarded(&env, &prov(&["a", "c"]), &w.dir_a, "c", "b").unwrap();
            assert_eq!(got.verified.statement, s);
            assert_eq!(got.verified.digest, env.digest());
            assert_eq!(got.provenance.hub_path, v(&["a", "c", "b"]));
            assert_eq!(got.key, ItemKey::of("a", &s));
        }

        /// A peer that signs as someone else (a local member of `b`, a
        /// member of `a` it has no key of, or the origin with a changed
        /// payload) is refused.
        #[test]
        fn a_member_verifies_what_its_hub_delivered() {
            let w = world();
            let s = sample("acme");
            let env = sign(&w.acme, &s);
            let got = verify_delivered(&env, &prov(&["a", "c", "b"]), &w.dir_a).unwrap();
            assert_eq!(got.verified.statement, s);
            assert_eq!(got.provenance.hub_path, v(&["a", "c", "b"]));
            assert_eq!(got.key, ItemKey::of("a", &s));
            // Only the origin in the path: no hop to check.
            assert!(matches!(
                verify_delivered(&env, &prov(&["a"]), &w.dir_a),
                Err(ReceiveError::Provenance(ProvenanceError::Malformed(_)))
            ));
            // A flipped byte in the payload.
            let mut bad = env.clone();
            bad.payload[10] ^= 1;
            assert!(matches!(
                verify_delivered(&bad, &prov(&["a", "b"]), &w.dir_a),
                Err(ReceiveError::Verify { .. })
            ));
            // Another origin's directory.
            let other = world();
            assert!(matches!(
                verify_delivered(&env, &prov(&["a", "b"]), &other.dir_a),
                Err(ReceiveError::Verify { .. })
            ));
            // A hub the origin does not peer with delivered it.
            assert!(matches!(
                verify_delivered(&env, &prov(&["a", "z"]), &w.dir_a),
                Err(ReceiveError::Refused(Refusal::OriginDoesNotPeer { .. }))
            ));
            // What never crosses is refused at the member too.
            let mut kept_home = sample("acme");
            kept_home.no_forward = true;
            assert_eq!(
                verify_delivered(&sign(&w.acme, &kept_home), &prov(&["a", "b"]), &w.dir_a)
                    .unwrap_err(),
                ReceiveError::Refused(Refusal::NoForward)
            );
            // Bounded.
            assert!(matches!(
                verify_delivered(&env, &vec![b' '; MAX_PROVENANCE_BYTES + 1], &w.dir_a),
                Err(ReceiveError::Provenance(ProvenanceError::TooLarge))
            ));
        }

        #[test]
        fn forged_authors_are_refused() {
            let w = world();
            let peer = SigningKey::generate().unwrap();
            let verify_err =
                |env: &Envelope| match verify_forwarded(env, &prov(&["a"]), &w.dir_a, "a", "b") {
                    Err(ReceiveError::Verify { origin, error }) => {
                        assert_eq!(origin, "a");
                        error
                    }
                    other => panic!("expected a verification refusal, got {other:?}"),
                };
            // The peer's own key claiming acme.
            assert!(matches!(
                verify_err(&sign(&peer, &sample("acme"))),
                VerifyError::UnknownKey(_)
            ));
            // A local member of b, signed by the peer.
            assert!(matches!(
                verify_err(&sign(&peer, &sample("b-member"))),
                VerifyError::UnknownKey(_)
            ));
            // acme's real signature over another payload.
            let mut env = sign(&w.acme, &sample("acme"));
            env.payload = sample("acme").canonical_bytes();
            assert!(matches!(verify_err(&env), VerifyError::BadSignature(_)));
            // acme's key claiming another org of a.
            assert!(matches!(
                verify_err(&sign(&w.acme, &sample("other-org"))),
                VerifyError::SourceMismatch { .. }
            ));
        }

        #[test]
        fn level_no_forward_and_removal_hold_on_receipt() {
            let mut w = world();
            let mut s = sample("acme");
            // AMBER without an audience is a valid statement (the whole
            // community); RED and AMBER+STRICT need one, and the pure
            // tables above cover them.
            s.tlp = Tlp::Amber;
            let refused = |w: &World, s: &Statement, path: &[&str], from: &str| {
                verify_forwarded(&sign(&w.acme, s), &prov(path), &w.dir_a, from, "b").unwrap_err()
            };
            assert_eq!(
                refused(&w, &s, &["a"], "a"),
                ReceiveError::Refused(Refusal::AmberWithoutGroup)
            );
            s.tlp = Tlp::Green;
            s.no_forward = true;
            assert_eq!(
                refused(&w, &s, &["a", "c"], "c"),
                ReceiveError::Refused(Refusal::NoForward)
            );
            s.no_forward = false;
            w.dir_a.peers = v(&["c"]);
            w.dir_a.removed_peers = v(&["b"]);
            assert_eq!(
                refused(&w, &s, &["a", "c"], "c"),
                ReceiveError::Refused(Refusal::OriginRemoved {
                    origin: "a".into(),
                    hub: "b".into()
                })
            );
            assert!(matches!(
                refused(&w, &s, &["a", "a"], "a"),
                ReceiveError::Provenance(ProvenanceError::Loop(_))
            ));
        }
    }
}
