//! Blinded audiences. A statement's signed `audience` holds only salted
//! commitments (`sha256:HEX`), one per entry. The source gives the hub the
//! openings (entry + salt) beside the envelope; the hub checks them, enforces
//! them, and hands each recipient only the openings that name it. So a
//! recipient can prove it was named by the source, but never learns who else
//! was (MISP #10019), and the hub cannot add a name the source did not sign.

use serde::{Deserialize, Serialize};

use crate::tlp::{AudienceRef, Tlp};

pub const COMMITMENT_PREFIX: &str = "sha256:";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceOpening {
    pub entry: AudienceRef,
    /// 32 lowercase hex digits of randomness chosen by the source.
    pub salt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudienceError {
    #[error(
        "{0} goes to the whole community; an audience only applies to AMBER, AMBER+STRICT and RED"
    )]
    NotAllowed(Tlp),
    #[error("{0} requires an audience: name orgs, groups or people with --audience")]
    Required(Tlp),
    #[error("TLP:RED names people only: use --audience person:ORG_ID/PERSON_ID (found `{0}`)")]
    RedNeedsPeople(String),
    #[error("audience entry `{0}` is listed twice")]
    Duplicate(String),
    #[error("audience openings do not match the signed audience: {0}")]
    Mismatch(&'static str),
    #[error("malformed audience commitment or salt")]
    Malformed,
}

impl AudienceOpening {
    /// `salt` must be 32 lowercase hex digits from a good random source.
    pub fn new(entry: AudienceRef, salt: String) -> Self {
        Self { entry, salt }
    }

    pub fn commitment(&self) -> String {
        let mut m = b"isac-audience-v1\n".to_vec();
        m.extend_from_slice(self.salt.as_bytes());
        m.push(b'\n');
        m.extend_from_slice(self.entry.to_string().as_bytes());
        format!(
            "{COMMITMENT_PREFIX}{}",
            crate::hex::encode(&openssl::sha::sha256(&m))
        )
    }
}

pub fn is_commitment(s: &str) -> bool {
    s.strip_prefix(COMMITMENT_PREFIX).is_some_and(|h| {
        crate::hex::is_hex_of_len(h, 64) && !h.bytes().any(|b| b.is_ascii_uppercase())
    })
}

/// Which audiences each TLP level allows (design notes, TLP table).
pub fn check_audience_rules(tlp: Tlp, entries: &[AudienceRef]) -> Result<(), AudienceError> {
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        if !seen.insert(e) {
            return Err(AudienceError::Duplicate(e.to_string()));
        }
    }
    match tlp {
        Tlp::Clear | Tlp::Green if !entries.is_empty() => Err(AudienceError::NotAllowed(tlp)),
        Tlp::Clear | Tlp::Green | Tlp::Amber => Ok(()),
        Tlp::AmberStrict if entries.is_empty() => Err(AudienceError::Required(tlp)),
        Tlp::AmberStrict => Ok(()),
        Tlp::Red => {
            if entries.is_empty() {
                return Err(AudienceError::Required(tlp));
            }
            match entries
                .iter()
                .find(|e| !matches!(e, AudienceRef::Person { .. }))
            {
                Some(other) => Err(AudienceError::RedNeedsPeople(other.to_string())),
                None => Ok(()),
            }
        }
    }
}

/// Matches openings to the signed commitments one to one, in any order, and
/// returns the clear audience.
pub fn open_audience(
    commitments: &[String],
    openings: &[AudienceOpening],
) -> Result<Vec<AudienceRef>, AudienceError> {
    if commitments.len() != openings.len() {
        return Err(AudienceError::Mismatch("different number of entries"));
    }
    let mut remaining: Vec<&String> = commitments.iter().collect();
    let mut entries = Vec::with_capacity(openings.len());
    for o in openings {
        if !crate::hex::is_hex_of_len(&o.salt, 32) || o.salt.bytes().any(|b| b.is_ascii_uppercase())
        {
            return Err(AudienceError::Malformed);
        }
        let c = o.commitment();
        let pos = remaining
            .iter()
            .position(|r| **r == c)
            .ok_or(AudienceError::Mismatch(
                "an opening matches no signed entry",
            ))?;
        remaining.swap_remove(pos);
        entries.push(o.entry.clone());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(entry: &str, salt: &str) -> AudienceOpening {
        AudienceOpening::new(entry.parse().unwrap(), salt.repeat(32 / salt.len()))
    }

    #[test]
    fn commitments_hide_entries_and_bind_salt() {
        let a = op("org:bob-bank", "a");
        let b = op("org:bob-bank", "b");
        assert!(is_commitment(&a.commitment()));
        assert_ne!(
            a.commitment(),
            b.commitment(),
            "salt makes equal entries unlinkable"
        );
        assert!(!a.commitment().contains("bob"));
    }

    #[test]
    fn openings_must_match_one_to_one() {
        let a = op("org:bob-bank", "a");
        let b = op("person:carol-bank/cid", "b");
        let signed = vec![a.commitment(), b.commitment()];
        let got = open_audience(&signed, &[b.clone(), a.clone()]).unwrap();
        assert_eq!(got.len(), 2);
        assert!(
            open_audience(&signed, std::slice::from_ref(&a)).is_err(),
            "missing opening"
        );
        assert!(
            open_audience(&signed, &[a.clone(), a.clone()]).is_err(),
            "one commitment opened twice"
        );
        let smuggled = op("org:eve-bank", "c");
        assert!(
            open_audience(&signed, &[a.clone(), smuggled]).is_err(),
            "hub or source adds a name"
        );
        let mut bad_salt = a.clone();
        bad_salt.salt = "zz".into();
        assert!(open_audience(&[bad_salt.commitment()], &[bad_salt]).is_err());
    }

    #[test]
    fn audience_rules_per_level() {
        let org: Vec<AudienceRef> = vec!["org:b".parse().unwrap()];
        let person: Vec<AudienceRef> = vec!["person:b/ann".parse().unwrap()];
        let group: Vec<AudienceRef> = vec!["group:payments".parse().unwrap()];
        let none: Vec<AudienceRef> = vec![];
        assert!(check_audience_rules(Tlp::Clear, &none).is_ok());
        assert!(check_audience_rules(Tlp::Clear, &org).is_err());
        assert!(check_audience_rules(Tlp::Green, &org).is_err());
        assert!(check_audience_rules(Tlp::Amber, &none).is_ok());
        assert!(check_audience_rules(Tlp::Amber, &group).is_ok());
        assert!(check_audience_rules(Tlp::AmberStrict, &none).is_err());
        assert!(check_audience_rules(Tlp::AmberStrict, &org).is_ok());
        assert!(check_audience_rules(Tlp::Red, &none).is_err());
        assert!(check_audience_rules(Tlp::Red, &org).is_err());
        assert!(check_audience_rules(Tlp::Red, &group).is_err());
        assert!(check_audience_rules(Tlp::Red, &person).is_ok());
        let dup = vec![org[0].clone(), org[0].clone()];
        assert!(check_audience_rules(Tlp::Amber, &dup).is_err());
    }
}
