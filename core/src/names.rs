//! Ids and reserved names: a leaf every other module may use (it uses
//! none of them).

/// The source of hub-attested statements, and the organisation the hub's
/// attestation key is listed under in the key directory. Reserved.
pub const HUB_ATTESTATION_ORG: &str = "isac-hub";

/// The organisation id anonymous statements carry (the hub re-signs them
/// with its anonymisation key, listed in the directory under this id);
/// reserved, no member may take it.
pub const ANONYMOUS_ORG: &str = "anonymous";

/// The organisation the hub's transparency-log key (it signs checkpoints,
/// never statements) is listed under in the key directory. Reserved.
pub const LOG_ORG: &str = "isac-log";

/// Organisation, group and person ids: a lowercase slug.
pub fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_are_slugs_and_distinct() {
        assert!(is_slug(HUB_ATTESTATION_ORG) && is_slug(ANONYMOUS_ORG) && is_slug(LOG_ORG));
        assert_ne!(HUB_ATTESTATION_ORG, ANONYMOUS_ORG);
        assert_ne!(LOG_ORG, ANONYMOUS_ORG);
        assert_ne!(LOG_ORG, HUB_ATTESTATION_ORG);
        assert!(!is_slug("") && !is_slug("Acme") && !is_slug(&"a".repeat(64)));
    }
}
