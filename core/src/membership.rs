//! What a member organisation may do at the hub (its role) and whether it
//! may do anything at all (its status). Stored as text; these are the one
//! place that spells the words.

use std::fmt;
use std::str::FromStr;

/// A member's role at the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Publishes and receives indicators.
    Member,
    /// Also broadcasts incident bulletins to every member.
    Coordinator,
    /// Also runs the `Admin` API (members, keys, groups, audit).
    Admin,
    /// Another hub that follows this one (federation, issue 20): it may
    /// only call the `Peering` service, never act as a member.
    Peer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Member, Role::Coordinator, Role::Admin, Role::Peer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Coordinator => "coordinator",
            Role::Admin => "admin",
            Role::Peer => "peer",
        }
    }
}

/// A member's standing. `Removed` is final: the id cannot come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    Active,
    /// Cannot connect, publish or receive until resumed.
    Suspended,
    Removed,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Suspended => "suspended",
            MemberStatus::Removed => "removed",
        }
    }
}

/// An operator's change to a member's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Suspend,
    Resume,
    Remove,
}

impl StatusChange {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusChange::Suspend => "suspend",
            StatusChange::Resume => "resume",
            StatusChange::Remove => "remove",
        }
    }

    /// The status a member in `from` ends in, or `None` when nothing may
    /// change (a removed member stays removed).
    pub fn apply(self, from: MemberStatus) -> Option<MemberStatus> {
        match (self, from) {
            (_, MemberStatus::Removed) => None,
            (StatusChange::Suspend, _) => Some(MemberStatus::Suspended),
            (StatusChange::Resume, _) => Some(MemberStatus::Active),
            (StatusChange::Remove, _) => Some(MemberStatus::Removed),
        }
    }
}

/// A word that names no role, status or change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{word}`: use {choices}")]
pub struct UnknownWord {
    pub what: &'static str,
    pub word: String,
    pub choices: &'static str,
}

fn unknown(what: &'static str, word: &str, choices: &'static str) -> UnknownWord {
    UnknownWord {
        what,
        word: word.escape_default().to_string(),
        choices,
    }
}

impl FromStr for Role {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| unknown("role", s, "member, coordinator, admin or peer"))
    }
}

impl FromStr for MemberStatus {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            MemberStatus::Active,
            MemberStatus::Suspended,
            MemberStatus::Removed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| unknown("member status", s, "active, suspended or removed"))
    }
}

impl FromStr for StatusChange {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            StatusChange::Suspend,
            StatusChange::Resume,
            StatusChange::Remove,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| unknown("action", s, "suspend, resume or remove"))
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(Role, MemberStatus, StatusChange);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips_and_others_are_named() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        for s in [
            MemberStatus::Active,
            MemberStatus::Suspended,
            MemberStatus::Removed,
        ] {
            assert_eq!(s.to_string().parse::<MemberStatus>(), Ok(s));
        }
        let e = "Admin".parse::<Role>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown role `Admin`: use member, coordinator, admin or peer"
        );
        assert_eq!("peer".parse::<Role>(), Ok(Role::Peer));
        assert!("peer\n"
            .parse::<Role>()
            .unwrap_err()
            .to_string()
            .contains("peer\\n"));
        assert!("".parse::<StatusChange>().is_err());
    }

    #[test]
    fn status_changes_follow_the_table_and_removal_is_final() {
        use MemberStatus::*;
        use StatusChange::*;
        let table = [
            (Suspend, Active, Some(Suspended)),
            (Suspend, Suspended, Some(Suspended)),
            (Resume, Suspended, Some(Active)),
            (Resume, Active, Some(Active)),
            (Remove, Active, Some(Removed)),
            (Remove, Suspended, Some(Removed)),
            (Suspend, Removed, None),
            (Resume, Removed, None),
            (Remove, Removed, None),
        ];
        for (change, from, to) in table {
            assert_eq!(change.apply(from), to, "{change} from {from}");
        }
    }
}
