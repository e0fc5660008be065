//! Glue between stored rows and the pure TLP decision in `isac_core::tlp`.
//! Every read path (stream, backfill, get, search, counts) asks
//! [`may_see`] or [`may_see_with_target`]; nothing else decides.

use isac_core::audience::AudienceOpening;
use isac_core::tlp::{may_receive, AudienceRef, Channel, ItemAccess, Recipient};
use isac_core::{Envelope, Signature};

use crate::app::caller::Caller;
use crate::store::{Decoded, SharedRow, Store, StoreError, StoredStatement};

/// Groups through which `caller` is entitled to the item: it must have
/// been a member when the item was published (a group widened later does
/// not widen old items) and still be one now.
fn entitled_groups<'a>(decoded: &'a Decoded, caller: &Caller) -> Vec<&'a str> {
    decoded
        .group_snapshot
        .iter()
        .filter(|(group, members)| {
            members.contains(&caller.org_id) && caller.groups.contains(group)
        })
        .map(|(group, _)| group.as_str())
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
    may_see_decoded(row, &row.decode(), caller, person, channel)
}

/// [`may_see_as`] over a row whose columns are already decoded (`decoded`
/// must be `row.decode()`): what streams use, decoding each row once for
/// all their subscribers.
pub fn may_see_decoded(
    row: &StoredStatement,
    decoded: &Decoded,
    caller: &Caller,
    person: Option<&str>,
    channel: Channel,
) -> bool {
    let Some(tlp) = decoded.tlp else {
        tracing::error!(
            seq = row.seq,
            "stored item has an unreadable TLP label; withheld"
        );
        return false;
    };
    let Some(audience) = &decoded.audience else {
        tracing::error!(
            seq = row.seq,
            "stored item has an unreadable audience; withheld"
        );
        return false;
    };
    let groups: Vec<String> = entitled_groups(decoded, caller)
        .into_iter()
        .map(str::to_owned)
        .collect();
    may_receive(
        ItemAccess {
            tlp,
            source_org: &row.source_org,
            audience,
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

/// [`may_see_row`] for a row streams share (decoded once for all of them).
pub async fn may_see_shared(
    store: &Store,
    row: &SharedRow,
    caller: &Caller,
    channel: Channel,
) -> Result<bool, StoreError> {
    if !may_see_decoded(row, row.decoded(), caller, None, channel) {
        return Ok(false);
    }
    Ok(match &row.target_id {
        None => true,
        // Read once for every stream that delivers this row.
        Some(_) => match store.target_of_shared(row).await? {
            Some(target) => may_see_decoded(&target, target.decoded(), caller, None, channel),
            None => false,
        },
    })
}

/// The audience openings that name `caller`: all of them for the source.
pub fn openings_for(row: &StoredStatement, caller: &Caller) -> Vec<AudienceOpening> {
    openings_decoded(row, &row.decode(), caller)
}

fn openings_decoded(
    row: &StoredStatement,
    decoded: &Decoded,
    caller: &Caller,
) -> Vec<AudienceOpening> {
    let is_source = row.source_org == caller.org_id;
    let groups = entitled_groups(decoded, caller);
    decoded
        .openings
        .iter()
        .filter(|o| {
            is_source
                || match &o.entry {
                    AudienceRef::Org(org) => org == &caller.org_id,
                    AudienceRef::Person { org, .. } => org == &caller.org_id,
                    AudienceRef::Group(g) => groups.contains(&g.as_str()),
                }
        })
        .cloned()
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
    handed_decoded(row, &row.decode(), caller)
}

/// [`handed`] over a row whose columns are already decoded (`row.decode()`).
pub fn handed_decoded(row: &StoredStatement, decoded: &Decoded, caller: &Caller) -> Handed {
    Handed {
        envelope: delivered_envelope(row, caller),
        received_at: row.received_at,
        openings: openings_decoded(row, decoded, caller),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::store::{AnonymousVersion, StoredFacts};

    use super::*;

    fn caller(org: &str, groups: &[&str]) -> Caller {
        Caller {
            org_id: org.into(),
            agent_name: "agent".into(),
            role: isac_core::membership::Role::Member,
            cert_fingerprint: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            authorized_at: None,
        }
    }

    fn opening(entry: AudienceRef) -> AudienceOpening {
        AudienceOpening {
            entry,
            salt: "0".repeat(32),
        }
    }

    /// A stored row from `source` at `tlp` for `audience`, with the group
    /// snapshot taken at publish.
    fn row(
        source: &str,
        tlp: &str,
        audience: Vec<AudienceRef>,
        snapshot: &[(&str, &[&str])],
    ) -> StoredStatement {
        let snapshot: BTreeMap<String, Vec<String>> = snapshot
            .iter()
            .map(|(g, m)| (g.to_string(), m.iter().map(|o| o.to_string()).collect()))
            .collect();
        let openings: Vec<AudienceOpening> = audience.iter().cloned().map(opening).collect();
        StoredStatement {
            seq: 1,
            id: "id".into(),
            revision: 1,
            source_org: source.into(),
            tlp: tlp.into(),
            audience_json: serde_json::to_string(&audience).unwrap(),
            received_at: 0,
            payload_type: "t".into(),
            payload: b"signed".to_vec(),
            key_id: "source-key".into(),
            signature: b"source-sig".to_vec(),
            openings_json: serde_json::to_string(&openings).unwrap(),
            group_snapshot_json: serde_json::to_string(&snapshot).unwrap(),
            target_id: None,
            sighting_count: None,
            anonymous: None,
            kind: "indicator".into(),
            facts: StoredFacts::default(),
            digest: String::new(),
            added_us: 0,
            leaf_index: None,
            provenance: None,
        }
    }

    fn group(g: &str) -> AudienceRef {
        AudienceRef::Group(g.into())
    }

    #[test]
    fn group_entitlement_needs_the_snapshot_and_current_membership() {
        let r = row("src", "amber", vec![group("g")], &[("g", &["a", "b"])]);
        let rows = [
            ("member then and now", caller("a", &["g"]), true),
            ("member then, not now", caller("b", &[]), false),
            (
                "member now, not then (group widened)",
                caller("c", &["g"]),
                false,
            ),
            ("the source", caller("src", &[]), true),
        ];
        for (name, c, want) in rows {
            assert_eq!(may_see(&r, &c, Channel::Stream), want, "{name}");
        }
    }

    #[test]
    fn unreadable_rows_are_withheld() {
        let mut r = row("src", "clear", vec![], &[]);
        let c = caller("a", &[]);
        assert!(may_see(&r, &c, Channel::Stream));
        r.tlp = "purple".into();
        assert!(!may_see(&r, &c, Channel::Stream));
        let mut r = row("src", "clear", vec![], &[]);
        r.audience_json = "not json".into();
        assert!(!may_see(&r, &c, Channel::Stream));
    }

    #[test]
    fn a_derived_item_needs_its_target_too() {
        let mut sighting = row("a", "clear", vec![], &[]);
        sighting.target_id = Some("t".into());
        let secret = row("src", "red", vec![AudienceRef::Org("b".into())], &[]);
        let open = row("src", "clear", vec![], &[]);
        let a = caller("a", &[]);
        assert!(may_see_with_target(
            &sighting,
            Some(&open),
            &a,
            Channel::Get
        ));
        assert!(!may_see_with_target(
            &sighting,
            Some(&secret),
            &a,
            Channel::Get
        ));
        assert!(!may_see_with_target(&sighting, None, &a, Channel::Get));
    }

    #[test]
    fn openings_name_only_the_recipient_unless_it_is_the_source() {
        let audience = vec![
            AudienceRef::Org("a".into()),
            AudienceRef::Person {
                org: "b".into(),
                person: "p".into(),
            },
            group("g"),
        ];
        let r = row("src", "amber", audience.clone(), &[("g", &["c"])]);
        let entries = |c: &Caller| -> Vec<AudienceRef> {
            openings_for(&r, c).into_iter().map(|o| o.entry).collect()
        };
        assert_eq!(entries(&caller("src", &[])), audience);
        assert_eq!(entries(&caller("a", &[])), vec![audience[0].clone()]);
        assert_eq!(entries(&caller("b", &[])), vec![audience[1].clone()]);
        assert_eq!(entries(&caller("c", &["g"])), vec![audience[2].clone()]);
        assert!(
            entries(&caller("c", &[])).is_empty(),
            "left the group since"
        );
        assert!(
            entries(&caller("d", &["g"])).is_empty(),
            "joined the group later"
        );
    }

    #[test]
    fn only_the_source_gets_the_original_of_an_anonymous_item() {
        let mut r = row("src", "clear", vec![], &[]);
        r.anonymous = Some(AnonymousVersion {
            payload: b"anon".to_vec(),
            key_id: "anon-key".into(),
            signature: b"anon-sig".to_vec(),
        });
        let to_source = delivered_envelope(&r, &caller("src", &[]));
        assert_eq!(to_source.payload, b"signed");
        assert_eq!(to_source.signatures[0].keyid, "source-key");
        let to_other = handed(&r, &caller("a", &[]));
        assert_eq!(to_other.envelope.payload, b"anon");
        assert_eq!(to_other.envelope.signatures[0].keyid, "anon-key");
        assert_eq!(to_other.envelope.signatures.len(), 1);
    }
}
