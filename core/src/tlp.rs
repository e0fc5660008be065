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
        let slug_ok = |v: &str| crate::statement::is_slug(v);
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

/// How the item would leave the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A member's authenticated API (gRPC agent, TAXII with member credentials).
    Member,
    /// A peer hub of the same community.
    PeerHub,
    /// Anyone, unauthenticated.
    Public,
}

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
        Channel::Member => {
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

/// Levels the hub accepts for publishing in this release. AMBER, AMBER+STRICT
/// and RED need audience resolution end to end (groups, people) before they
/// can be delivered safely; until then they are refused, never leaked.
pub fn accepted_for_publish(tlp: Tlp) -> bool {
    matches!(tlp, Tlp::Clear | Tlp::Green)
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

    /// Every level against every kind of recipient, on every channel.
    #[test]
    fn decision_table() {
        let groups_b = vec!["payments".to_string()];
        let none: Vec<String> = vec![];
        let source = Recipient {
            org_id: "src",
            groups: &none,
            person: None,
        };
        let named_org = Recipient {
            org_id: "b",
            groups: &groups_b,
            person: None,
        };
        let named_person_agent = Recipient {
            org_id: "c",
            groups: &none,
            person: None,
        };
        let named_person = Recipient {
            org_id: "c",
            groups: &none,
            person: Some("ann"),
        };
        let other_person_same_org = Recipient {
            org_id: "c",
            groups: &none,
            person: Some("bob"),
        };
        let bystander = Recipient {
            org_id: "z",
            groups: &none,
            person: None,
        };

        let audience = aud(&["org:b", "person:c/ann"]);
        let by_group = aud(&["group:payments"]);
        let empty: Vec<AudienceRef> = vec![];

        // (tlp, audience, recipient, expected on Member channel)
        let cases: Vec<(Tlp, &[AudienceRef], Recipient, bool)> = vec![
            (Tlp::Clear, &empty, bystander, true),
            (Tlp::Green, &empty, bystander, true),
            (Tlp::Amber, &empty, bystander, true),
            (Tlp::Amber, &audience, bystander, false),
            (Tlp::Amber, &audience, named_org, true),
            (Tlp::Amber, &audience, named_person_agent, true),
            (Tlp::Amber, &by_group, named_org, true),
            (Tlp::Amber, &by_group, bystander, false),
            (Tlp::AmberStrict, &empty, bystander, false),
            (Tlp::AmberStrict, &empty, named_org, false),
            (Tlp::AmberStrict, &audience, named_org, true),
            (Tlp::AmberStrict, &by_group, named_org, true),
            (Tlp::AmberStrict, &audience, bystander, false),
            (Tlp::Red, &empty, bystander, false),
            (Tlp::Red, &audience, named_org, false),
            (Tlp::Red, &audience, named_person_agent, true),
            (Tlp::Red, &audience, named_person, true),
            (Tlp::Red, &audience, other_person_same_org, false),
            (Tlp::Red, &audience, bystander, false),
            (Tlp::Red, &by_group, named_org, false),
        ];
        for (tlp, audience, r, expected) in cases {
            let item = ItemAccess {
                tlp,
                source_org: "src",
                audience,
            };
            assert_eq!(
                may_receive(item, Some(r), Channel::Member),
                expected,
                "{tlp} audience={audience:?} recipient={r:?}"
            );
            // The source always sees its own item, whatever the level.
            assert!(may_receive(item, Some(source), Channel::Member));
            // No recipient, no delivery.
            assert!(!may_receive(item, None, Channel::Member));
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
            assert_eq!(may_receive(item, None, Channel::Public), tlp == Tlp::Clear);
            assert_eq!(
                may_receive(item, None, Channel::PeerHub),
                matches!(tlp, Tlp::Clear | Tlp::Green)
            );
        }
    }

    #[test]
    fn only_clear_and_green_are_published_for_now() {
        assert!(accepted_for_publish(Tlp::Clear));
        assert!(accepted_for_publish(Tlp::Green));
        assert!(!accepted_for_publish(Tlp::Amber));
        assert!(!accepted_for_publish(Tlp::AmberStrict));
        assert!(!accepted_for_publish(Tlp::Red));
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
}
