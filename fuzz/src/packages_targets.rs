//! Fuzz target bodies for `isac-packages`: purls and version ranges. Every
//! input must be refused or read without a panic; what parses prints a
//! canonical purl that parses back to the same value; and "not affected"
//! is only ever said about a version the ecosystem reads. `cargo fuzz`
//! calls them from `fuzz/fuzz_targets/{purl,version_range}.rs`;
//! `packages/tests/fuzz_targets.rs` includes this file and runs the same
//! bodies on stable.
//!
//! Uses only `isac_packages` (and std), so it compiles in both places.

use isac_packages::range::parse_entry;
use isac_packages::version::Version;
use isac_packages::{AffectedVersions, Ecosystem, Event, OsvRange, Purl, RangeKind, Verdict};

pub fn purl(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let Ok(p) = s.parse::<Purl>() else {
        return;
    };
    let canonical = p.to_string();
    let again: Purl = canonical
        .parse()
        .unwrap_or_else(|e| panic!("canonical {canonical:?} of {s:?} does not parse: {e}"));
    assert_eq!(again, p, "{s:?} -> {canonical:?} reads back differently");
    assert_eq!(
        again.to_string(),
        canonical,
        "canonical form of {s:?} moves"
    );
    assert!(!p.name().is_empty(), "no name: {s:?}");
    assert!(
        !canonical
            .chars()
            .any(|c| c.is_control() || c.is_whitespace()),
        "canonical {canonical:?} has raw whitespace"
    );
    let _ = p.package_key();
    let _ = p.full_name();
    if let Some(eco) = p.ecosystem() {
        if let Some(v) = p.version() {
            let _ = Version::parse(eco, v);
        }
    }
}

fn ecosystems() -> impl Iterator<Item = Option<Ecosystem>> {
    Ecosystem::ALL.into_iter().map(Some).chain([None])
}

/// A verdict of "not affected" about a version its ecosystem cannot read
/// would be a guess; only "unknown" may be said then.
fn assert_honest(eco: Option<Ecosystem>, version: &str, verdict: &Verdict, what: &str) {
    if *verdict != Verdict::NotAffected {
        return;
    }
    if let Some(e) = eco.filter(|e| e.has_ordering()) {
        assert!(
            Version::parse(e, version).is_ok() || Version::parse_semver(version).is_ok(),
            "{e}: {what} said not affected about unreadable {version:?}"
        );
    }
}

/// Line 1: a version; line 2: a `versions` entry; further lines: OSV
/// events, `i`/`f`/`l`/`x` (introduced, fixed, last_affected, limit) and
/// a version.
pub fn version_range(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let mut lines = s.split('\n');
    let version = lines.next().unwrap_or_default();
    let entry = lines.next().unwrap_or_default();
    let events: Vec<Event> = lines
        .take(32)
        .filter_map(|l| {
            let (kind, v) = l.split_at_checked(1)?;
            let v = v.trim().to_owned();
            Some(match kind {
                "i" => Event::Introduced(v),
                "f" => Event::Fixed(v),
                "l" => Event::LastAffected(v),
                _ => Event::Limit(v),
            })
        })
        .collect();
    for eco in ecosystems() {
        let _ = parse_entry(eco, entry);
        let ours = AffectedVersions::from_statement(eco, None, &[entry.to_owned()]);
        let verdict = ours.matches(eco, version);
        assert_honest(eco, version, &verdict, &format!("`{entry}`"));
        for kind in [RangeKind::Semver, RangeKind::Ecosystem, RangeKind::Git] {
            let range = OsvRange {
                kind,
                events: events.clone(),
            };
            let osv = AffectedVersions::from_osv(&[entry.to_owned()], vec![range]);
            let verdict = osv.matches(eco, version);
            if kind == RangeKind::Git && !verdict.is_affected() {
                assert_ne!(verdict, Verdict::NotAffected, "a GIT range decided");
            }
            assert_honest(eco, version, &verdict, "an OSV range");
        }
        if let Some(e) = eco {
            if let (Ok(a), Ok(b)) = (Version::parse(e, version), Version::parse(e, entry)) {
                let ab = a.compare(&b).expect("one scheme");
                assert_eq!(
                    ab,
                    b.compare(&a).expect("one scheme").reverse(),
                    "{e}: {version:?} vs {entry:?}"
                );
            }
        }
    }
}

/// Any bytes as an SBOM: an inventory or an error, never a panic; every
/// component kept or named as skipped, and every dependency path found
/// starts at the subject and ends where asked.
pub fn sbom(data: &[u8]) {
    let limits = isac_packages::sbom::Limits {
        max_bytes: 1 << 20,
        max_components: 10_000,
        max_nesting: 32,
        max_edges: 100_000,
    };
    let Ok(inv) = isac_packages::sbom::read_with(data, limits) else {
        return;
    };
    assert!(inv.components.len() + inv.skipped.len() <= limits.max_components);
    for c in inv.components.iter().take(50) {
        if let Some(path) = inv.dependency_path(&c.reference) {
            assert_eq!(path.first(), inv.subject_ref.as_ref());
            assert_eq!(path.last(), Some(&c.reference));
        }
    }
}
