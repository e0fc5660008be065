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

/// Second-level labels under which registries of two-letter country codes
/// sell names to the public (`co.uk`, `com.au`, `ac.jp`, `gov.br`).
const PUBLIC_SECOND_LEVEL: [&str; 16] = [
    "co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "go", "gob", "ltd", "plc", "sch",
    "nhs", "mil",
];

/// Whether `domain` (a DNS name; case and a trailing dot ignored) is, or
/// looks like, a public suffix, under which anyone may register names: a
/// single label (`com`, `uk`), or a generic second-level label under a
/// two-letter country code (`co.uk`, `com.au`, `ac.jp`). So nobody can
/// claim every name under `co.uk` as their own (a wildcard certificate
/// name, a scrub rule's own domain). The rule is not the whole public
/// suffix list: deeper or irregular suffixes (`pvt.k12.ma.us`,
/// `kawasaki.jp`) pass.
pub fn looks_like_public_suffix(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    match labels.as_slice() {
        [_] => true,
        [second, cc] => {
            cc.len() == 2
                && cc.bytes().all(|b| b.is_ascii_lowercase())
                && PUBLIC_SECOND_LEVEL.contains(second)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_suffixes_are_single_labels_and_generic_second_levels_of_country_codes() {
        for suffix in [
            "com", "uk", "CO.UK", "co.uk.", "com.au", "ac.jp", "gov.br", "org.nz", "ne.jp",
            "ltd.uk", "nhs.uk", "",
        ] {
            assert!(looks_like_public_suffix(suffix), "{suffix}");
        }
        for owned in [
            "acme.co.uk",
            "example.com",
            "isac.example",
            "co.example",
            "com.museum",
            "shop.co",
            "hub.acme.com.au",
        ] {
            assert!(!looks_like_public_suffix(owned), "{owned}");
        }
    }

    #[test]
    fn reserved_names_are_slugs_and_distinct() {
        assert!(is_slug(HUB_ATTESTATION_ORG) && is_slug(ANONYMOUS_ORG) && is_slug(LOG_ORG));
        assert_ne!(HUB_ATTESTATION_ORG, ANONYMOUS_ORG);
        assert_ne!(LOG_ORG, ANONYMOUS_ORG);
        assert_ne!(LOG_ORG, HUB_ATTESTATION_ORG);
        assert!(!is_slug("") && !is_slug("Acme") && !is_slug(&"a".repeat(64)));
    }
}
