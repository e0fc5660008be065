//! TLP 2.0 (FIRST) and the one decision every read path asks:
//! may this recipient, on this channel, receive this item?
//!
//! The rules are the table in `shared/design-notes.md`. They fail closed: a
//! case the table does not grant is a refusal.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tlp {
    #[serde(rename = "clear")]
    Clear,
    #[serde(rename = "green")]
    Green,
    #[serde(rename = "amber")]
    Amber,
    #[serde(rename = "amber+strict")]
    AmberStrict,
    #[serde(rename = "red")]
    Red,
}

pub const ALL_LEVELS: [Tlp; 5] = [
    Tlp::Clear,
    Tlp::Green,
    Tlp::Amber,
    Tlp::AmberStrict,
    Tlp::Red,
];

impl Tlp {
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }

    /// The OASIS STIX 2.1 marking-definition id for this TLP 2.0 level.
    pub fn stix_marking_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown TLP label `{0}`: use clear, green, amber, amber+strict or red (TLP 2.0)")]
pub struct UnknownTlp(pub String);

impl FromStr for Tlp {
    type Err = UnknownTlp;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let lower = lower.strip_prefix("tlp:").unwrap_or(&lower);
        Ok(match lower {
            "clear" => Tlp::Clear,
            "green" => Tlp::Green,
            "amber" => Tlp::Amber,
            "amber+strict" => Tlp::AmberStrict,
            "red" => Tlp::Red,
            // TLP 1.0's WHITE is deliberately not accepted: labels must be
            // TLP 2.0 so nobody guesses at a mapping.
            _ => return Err(UnknownTlp(s.to_owned())),
        })
    }
}

/// One entry of a statement's audience, written `org:ID`, `group:NAME` or
/// `person:ORG_ID/PERSON_ID`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AudienceRef {
    Org(String),
    Group(String),
    Person { org: String, person: String },
}

impl fmt::Display for AudienceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudienceRef::Org(o) => write!(f, "org:{o}"),
            AudienceRef::Group(g) => write!(f, "group:{g}"),
            AudienceRef::Person { org, person } => write!(f, "person:{org}/{person}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad audience entry `{0}`: use org:ORG_ID, group:NAME or person:ORG_ID/PERSON_ID")]
pub struct BadAudience(pub String);

impl FromStr for AudienceRef {
    type Err = BadAudience;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadAudience(s.chars().take(80).collect());
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let slug_ok = |v: &str| crate::names::is_slug(v);
        match kind {
            "org" if slug_ok(rest) => Ok(AudienceRef::Org(rest.to_owned())),
            "group" if slug_ok(rest) => Ok(AudienceRef::Group(rest.to_owned())),
            "person" => {
                let (org, person) = rest.split_once('/').ok_or_else(bad)?;
                if slug_ok(org) && slug_ok(person) {
                    Ok(AudienceRef::Person {
                        org: org.to_owned(),
                        person: person.to_owned(),
                    })
                } else {
                    Err(bad())
                }
            }
            _ => Err(bad()),
        }
    }
}

impl Serialize for AudienceRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AudienceRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Who is asking. `groups` are the sharing groups the org belongs to;
/// `person` is set when the caller acts for one named analyst (e.g. a TAXII
/// key bound to a person), and `None` for the org's agent, which acts for all
/// of its analysts.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub org_id: &'a str,
    pub groups: &'a [String],
    pub person: Option<&'a str>,
}

/// How the item would leave the hub. Every member read path is listed so
/// each has to be decided here, and the table test shows they agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Live subscription stream.
    Stream,
    /// Backlog read from a cursor.
    Backfill,
    /// Fetch by id.
    Get,
    /// Search results.
    Search,
    /// Counts (e.g. sightings of an item).
    Count,
    /// Hub-side exports to a member (TAXII with member credentials, STIX).
    Export,
    /// TAXII 2.1 pulls by a member's API key or certificate. As the member
    /// channels, except that RED goes only to a key bound to a named person
    /// in the audience: a SIEM feed is read by many people, so neither the
    /// org's agent identity nor the source's own org suffices for RED.
    Taxii,
    /// A peer hub of the same community: the level part of
    /// `federation::may_forward`, which adds no-forward, loops and the
    /// origin's current peers (a test there keeps the two in step).
    PeerHub,
    /// Anyone, unauthenticated.
    Public,
}

pub const MEMBER_CHANNELS: [Channel; 6] = [
    Channel::Stream,
    Channel::Backfill,
    Channel::Get,
    Channel::Search,
    Channel::Count,
    Channel::Export,
];

/// The facts about an item the decision needs.
#[derive(Debug, Clone, Copy)]
pub struct ItemAccess<'a> {
    pub tlp: Tlp,
    pub source_org: &'a str,
    pub audience: &'a [AudienceRef],
}

fn names_org(audience: &[AudienceRef], r: &Recipient<'_>) -> bool {
    audience.iter().any(|a| match a {
        AudienceRef::Org(o) => o == r.org_id,
        AudienceRef::Group(g) => r.groups.iter().any(|mine| mine == g),
        AudienceRef::Person { org, .. } => org == r.org_id,
    })
}

fn names_person(audience: &[AudienceRef], r: &Recipient<'_>) -> bool {
    audience.iter().any(|a| match a {
        AudienceRef::Person { org, person } => {
            org == r.org_id && r.person.is_none_or(|p| p == person)
        }
        _ => false,
    })
}

/// The TLP decision. Pure, total, and the only place the rules live.
pub fn may_receive(
    item: ItemAccess<'_>,
    recipient: Option<Recipient<'_>>,
    channel: Channel,
) -> bool {
    match channel {
        Channel::Public => item.tlp == Tlp::Clear,
        Channel::PeerHub => matches!(item.tlp, Tlp::Clear | Tlp::Green),
        Channel::Taxii => match recipient {
            Some(r) if item.tlp == Tlp::Red => {
                r.person.is_some() && names_person(item.audience, &r)
            }
            Some(r) => may_receive(item, Some(r), Channel::Export),
            None => false,
        },
        Channel::Stream
        | Channel::Backfill
        | Channel::Get
        | Channel::Search
        | Channel::Count
        | Channel::Export => {
            let Some(r) = recipient else {
                return false;
            };
            // The source always sees its own items.
            if r.org_id == item.source_org {
                return true;
            }
            match item.tlp {
                Tlp::Clear | Tlp::Green => true,
                Tlp::Amber => item.audience.is_empty() || names_org(item.audience, &r),
                Tlp::AmberStrict => !item.audience.is_empty() && names_org(item.audience, &r),
                Tlp::Red => names_person(item.audience, &r),
            }
        }
    }
}

/// A derived statement (sighting, retraction, comment) is never less
/// restricted than the item it refers to.
pub fn derived_tlp_ok(derived: Tlp, target: Tlp) -> bool {
    derived >= target
}

/// May an agent write an item of this level into a SIEM sink? RED stays in
/// the agent's own store unless the member turned RED export on (for the
/// named people whose tools those are).
pub fn may_export_to_sink(tlp: Tlp, red_export_enabled: bool) -> bool {
    tlp != Tlp::Red || red_export_enabled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aud(list: &[&str]) -> Vec<AudienceRef> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn parses_tlp_2_labels_only() {
        for t in ALL_LEVELS {
            assert_eq!(t.as_str().parse::<Tlp>().unwrap(), t);
            assert_eq!(t.to_string().parse::<Tlp>().unwrap(), t);
        }
        assert!("white".parse::<Tlp>().is_err());
        assert!("".parse::<Tlp>().is_err());
        assert!("amber-strict".parse::<Tlp>().is_err());
        let json = serde_json::to_string(&Tlp::AmberStrict).unwrap();
        assert_eq!(json, "\"amber+strict\"");
        assert!(serde_json::from_str::<Tlp>("\"AMBER\"").is_err());
    }

    #[test]
    fn audience_refs_round_trip() {
        for s in ["org:acme-bank", "group:payments", "person:acme-bank/jdoe"] {
            let a: AudienceRef = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
        for bad in [
            "acme",
            "org:",
            "org:Acme",
            "person:acme",
            "person:/x",
            "team:x",
            "org:a b",
        ] {
            assert!(bad.parse::<AudienceRef>().is_err(), "{bad}");
        }
    }

    /// Every level x every kind of recipient x every member read path, each
    /// cell asserted; then the outside channels.
    #[test]
    fn decision_table() {
        let in_group = vec!["payments".to_string()];
        let none: Vec<String> = vec![];
        #[derive(Clone, Copy)]
        struct Who<'a> {
            name: &'static str,
            recipient: Option<Recipient<'a>>,
        }
        let r = |org_id, groups, person| {
            Some(Recipient {
                org_id,
                groups,
                person,
            })
        };
        let source = Who {
            name: "source",
            recipient: r("src", &none, None),
        };
        let aud_org = Who {
            name: "audience org",
            recipient: r("b", &none, None),
        };
        let aud_person_agent = Who {
            name: "audience person (org agent)",
            recipient: r("c", &none, None),
        };
        let aud_person = Who {
            name: "audience person",
            recipient: r("c", &none, Some("ann")),
        };
        let other_person_same_org = Who {
            name: "unnamed colleague",
            recipient: r("c", &none, Some("bob")),
        };
        let group_member = Who {
            name: "group member",
            recipient: r("g", &in_group, None),
        };
        let other = Who {
            name: "other member",
            recipient: r("z", &none, None),
        };
        let coordinator = Who {
            name: "coordinator",
            recipient: r("isac-staff", &none, None),
        };
        let outsider = Who {
            name: "outsider",
            recipient: None,
        };
        let whos = [
            source,
            aud_org,
            aud_person_agent,
            aud_person,
            other_person_same_org,
            group_member,
            other,
            coordinator,
            outsider,
        ];

        let amber_audience = aud(&["org:b", "group:payments", "person:c/ann"]);
        let red_audience = aud(&["person:c/ann"]);
        let empty: Vec<AudienceRef> = vec![];
        // Expected, in the order of `whos`.
        let rows: Vec<(Tlp, &[AudienceRef], [bool; 9])> = vec![
            (
                Tlp::Clear,
                &empty,
                [true, true, true, true, true, true, true, true, false],
            ),
            (
                Tlp::Green,
                &empty,
                [true, true, true, true, true, true, true, true, false],
            ),
            (
                Tlp::Amber,
                &empty,
                [true, true, true, true, true, true, true, true, false],
            ),
            (
                Tlp::Amber,
                &amber_audience,
                [true, true, true, true, true, true, false, false, false],
            ),
            (
                Tlp::AmberStrict,
                &amber_audience,
                [true, true, true, true, true, true, false, false, false],
            ),
            (
                Tlp::AmberStrict,
                &empty,
                [true, false, false, false, false, false, false, false, false],
            ),
            (
                Tlp::Red,
                &red_audience,
                [true, false, true, true, false, false, false, false, false],
            ),
            (
                Tlp::Red,
                &amber_audience,
                [true, false, true, true, false, false, false, false, false],
            ),
            (
                Tlp::Red,
                &empty,
                [true, false, false, false, false, false, false, false, false],
            ),
        ];
        for (tlp, audience, expected) in rows {
            // An anonymous item is decided on its real source, which the hub knows.
            for source_org in ["src", "anonymous-source-is-src"] {
                let item = ItemAccess {
                    tlp,
                    source_org,
                    audience,
                };
                for (who, want) in whos.iter().zip(expected) {
                    // When someone else is the source, "src" is just another member.
                    let want = if source_org != "src" && who.name == "source" {
                        expected[6]
                    } else {
                        want
                    };
                    for channel in MEMBER_CHANNELS {
                        assert_eq!(
                            may_receive(item, who.recipient, channel),
                            want,
                            "{tlp} audience={audience:?} source={source_org} recipient={} channel={channel:?}",
                            who.name
                        );
                    }
                }
                let anon_source = Recipient {
                    org_id: source_org,
                    groups: &none,
                    person: None,
                };
                for channel in MEMBER_CHANNELS {
                    assert!(
                        may_receive(item, Some(anon_source), channel),
                        "the source always sees its own"
                    );
                }
                // TAXII: the member rules, but RED only to the named person.
                for (who, want) in whos.iter().zip(expected) {
                    let want = if source_org != "src" && who.name == "source" {
                        expected[6]
                    } else {
                        want
                    };
                    let want = if tlp == Tlp::Red {
                        who.name == "audience person"
                            && names_person(audience, &who.recipient.unwrap())
                    } else {
                        want
                    };
                    assert_eq!(
                        may_receive(item, who.recipient, Channel::Taxii),
                        want,
                        "{tlp} audience={audience:?} source={source_org} recipient={} over TAXII",
                        who.name
                    );
                }
            }
        }
    }

    #[test]
    fn outside_channels() {
        for tlp in ALL_LEVELS {
            let item = ItemAccess {
                tlp,
                source_org: "src",
                audience: &[],
            };
            let member = Recipient {
                org_id: "src",
                groups: &[],
                person: None,
            };
            for who in [None, Some(member)] {
                assert_eq!(may_receive(item, who, Channel::Public), tlp == Tlp::Clear);
                assert_eq!(
                    may_receive(item, who, Channel::PeerHub),
                    matches!(tlp, Tlp::Clear | Tlp::Green)
                );
            }
        }
    }

    #[test]
    fn derived_statements_are_never_less_restricted() {
        for target in ALL_LEVELS {
            for derived in ALL_LEVELS {
                assert_eq!(
                    derived_tlp_ok(derived, target),
                    derived >= target,
                    "{derived} on {target}"
                );
            }
        }
        assert!(!derived_tlp_ok(Tlp::Green, Tlp::Amber));
        assert!(derived_tlp_ok(Tlp::Red, Tlp::AmberStrict));
    }

    #[test]
    fn red_stays_out_of_sinks_unless_turned_on() {
        for tlp in ALL_LEVELS {
            assert_eq!(may_export_to_sink(tlp, false), tlp != Tlp::Red);
            assert!(may_export_to_sink(tlp, true));
        }
    }

    #[test]
    fn marking_ids_are_tlp_2() {
        assert_eq!(
            Tlp::Clear.stix_marking_id(),
            "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
        );
        assert_eq!(
            Tlp::Red.stix_marking_id(),
            "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
        );
    }

    /// The federated-group case (issue 20): an AMBER item from another
    /// hub held as a row whose source is `ORG@ORIGIN` (never a local
    /// member) and whose audience is the cross-hub group; the hub passes
    /// the group only to its members the group lists here (its snapshot).
    /// The group's members receive it on every member path, no other
    /// member does (not even one whose org id spells the author's), and on
    /// the peer channel AMBER never crosses by this decision
    /// (`fed_groups::may_forward_in_groups` adds the agreed-group case).
    #[test]
    fn federated_group_items_reach_the_groups_members_here_only() {
        let group = aud(&["group:supply-chain"]);
        let item = ItemAccess {
            tlp: Tlp::Amber,
            source_org: "alice-bank@hub-a",
            audience: &group,
        };
        let in_group = vec!["supply-chain".to_string()];
        let none: Vec<String> = vec![];
        for channel in MEMBER_CHANNELS {
            for (org, groups, want) in [
                ("dave-bank", &in_group, true),
                ("erin-bank", &none, false),
                ("alice-bank", &none, false),
                ("hub-a", &none, false),
            ] {
                let r = Recipient {
                    org_id: org,
                    groups,
                    person: None,
                };
                assert_eq!(
                    may_receive(item, Some(r), channel),
                    want,
                    "{org} {channel:?}"
                );
            }
            assert!(!may_receive(item, None, channel));
        }
        for tlp in ALL_LEVELS {
            let item = ItemAccess { tlp, ..item };
            assert_eq!(
                may_receive(item, None, Channel::PeerHub),
                matches!(tlp, Tlp::Clear | Tlp::Green),
                "{tlp}"
            );
        }
    }
}
