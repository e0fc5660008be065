//! Differential tables: node-semver's own `test/fixtures/range-include.js`
//! and `range-exclude.js` (npm/node-semver), as `[range, version]`
//! pairs, read as npm `versions` entries. Where we answer differently on
//! purpose, the case is listed with the reason:
//!
//! - pre-releases are always included (node-semver's `includePrerelease`):
//!   a pre-release of a malicious line is as malicious;
//! - an empty entry or an empty `||` alternative is a typo we will not read
//!   as `*`, and unreadable versions are "unknown": neither is "not
//!   affected".

use isac_packages::{AffectedVersions, Ecosystem, Verdict};

const INCLUDE: &[(&str, &str)] = &[
    ("1.0.0 - 2.0.0", "1.2.3"),
    ("^1.2.3+build", "1.2.3"),
    ("^1.2.3+build", "1.3.0"),
    ("1.2.3-pre+asdf - 2.4.3-pre+asdf", "1.2.3"),
    ("1.2.3-pre+asdf - 2.4.3-pre+asdf", "1.2.3-pre.2"),
    ("1.2.3-pre+asdf - 2.4.3-pre+asdf", "2.4.3-alpha"),
    ("1.2.3+asdf - 2.4.3+asdf", "1.2.3"),
    ("1.0.0", "1.0.0"),
    (">=*", "0.2.4"),
    ("*", "1.2.3"),
    ("*", "v1.2.3"),
    (">=1.0.0", "1.0.0"),
    (">=1.0.0", "1.0.1"),
    (">=1.0.0", "1.1.0"),
    (">1.0.0", "1.0.1"),
    (">1.0.0", "1.1.0"),
    ("<=2.0.0", "2.0.0"),
    ("<=2.0.0", "1.9999.9999"),
    ("<=2.0.0", "0.2.9"),
    ("<2.0.0", "1.9999.9999"),
    ("<2.0.0", "0.2.9"),
    (">= 1.0.0", "1.0.0"),
    (">=  1.0.0", "1.0.1"),
    (">=   1.0.0", "1.1.0"),
    ("> 1.0.0", "1.0.1"),
    (">  1.0.0", "1.1.0"),
    ("<=   2.0.0", "2.0.0"),
    ("<= 2.0.0", "1.9999.9999"),
    ("<=  2.0.0", "0.2.9"),
    ("<    2.0.0", "1.9999.9999"),
    ("<\t2.0.0", "0.2.9"),
    (">=0.1.97", "v0.1.97"),
    (">=0.1.97", "0.1.97"),
    ("0.1.20 || 1.2.4", "1.2.4"),
    (">=0.2.3 || <0.0.1", "0.0.0"),
    (">=0.2.3 || <0.0.1", "0.2.3"),
    (">=0.2.3 || <0.0.1", "0.2.4"),
    ("2.x.x", "2.1.3"),
    ("1.2.x", "1.2.3"),
    ("1.2.x || 2.x", "2.1.3"),
    ("1.2.x || 2.x", "1.2.3"),
    ("x", "1.2.3"),
    ("2.*.*", "2.1.3"),
    ("1.2.*", "1.2.3"),
    ("1.2.* || 2.*", "2.1.3"),
    ("1.2.* || 2.*", "1.2.3"),
    ("2", "2.1.2"),
    ("2.3", "2.3.1"),
    ("~0.0.1", "0.0.1"),
    ("~0.0.1", "0.0.2"),
    ("~x", "0.0.9"),
    ("~2", "2.0.9"),
    ("~2.4", "2.4.0"),
    ("~2.4", "2.4.5"),
    ("~>3.2.1", "3.2.2"),
    ("~1", "1.2.3"),
    ("~>1", "1.2.3"),
    ("~> 1", "1.2.3"),
    ("~1.0", "1.0.2"),
    ("~ 1.0", "1.0.2"),
    ("~ 1.0.3", "1.0.12"),
    (">=1", "1.0.0"),
    (">= 1", "1.0.0"),
    ("<1.2", "1.1.1"),
    ("< 1.2", "1.1.1"),
    ("~v0.5.4-pre", "0.5.5"),
    ("~v0.5.4-pre", "0.5.4"),
    ("=0.7.x", "0.7.2"),
    ("<=0.7.x", "0.7.2"),
    (">=0.7.x", "0.7.2"),
    ("<=0.7.x", "0.6.2"),
    ("~1.2.1 >=1.2.3", "1.2.3"),
    ("~1.2.1 =1.2.3", "1.2.3"),
    ("~1.2.1 1.2.3", "1.2.3"),
    ("~1.2.1 >=1.2.3 1.2.3", "1.2.3"),
    ("~1.2.1 1.2.3 >=1.2.3", "1.2.3"),
    (">=1.2.1 1.2.3", "1.2.3"),
    ("1.2.3 >=1.2.1", "1.2.3"),
    (">=1.2.3 >=1.2.1", "1.2.3"),
    (">=1.2.1 >=1.2.3", "1.2.3"),
    (">=1.2", "1.2.8"),
    ("^1.2.3", "1.8.1"),
    ("^0.1.2", "0.1.2"),
    ("^0.1", "0.1.2"),
    ("^0.0.1", "0.0.1"),
    ("^1.2", "1.4.2"),
    ("^1.2 ^1", "1.4.2"),
    ("^1.2.3-alpha", "1.2.3-pre"),
    ("^1.2.0-alpha", "1.2.0-pre"),
    ("^0.0.1-alpha", "0.0.1-beta"),
    ("^0.0.1-alpha", "0.0.1"),
    ("^0.1.1-alpha", "0.1.1-beta"),
    ("^x", "1.2.3"),
    ("x - 1.0.0", "0.9.7"),
    ("x - 1.x", "0.9.7"),
    ("1.0.0 - x", "1.9.7"),
    ("1.x - x", "1.9.7"),
    ("<=7.x", "7.9.9"),
    // With includePrerelease in node-semver; always so here.
    ("2.x", "2.0.0-pre.0"),
    ("2.x", "2.1.0-pre.0"),
    ("1.1.x", "1.1.0-a"),
    ("1.1.x", "1.1.1-a"),
    ("*", "1.0.0-rc1"),
    ("^1.0.0-0", "1.0.1-rc1"),
    ("^1.0.0-rc2", "1.0.1-rc1"),
    ("^1.0.0", "1.0.1-rc1"),
    ("^1.0.0", "1.1.0-rc1"),
    ("1 - 2", "2.0.0-pre"),
    ("1 - 2", "1.0.0-pre"),
    ("1.0 - 2", "1.0.0-pre"),
    ("=0.7.x", "0.7.0-asdf"),
    (">=0.7.x", "0.7.0-asdf"),
    ("<=0.7.x", "0.7.0-asdf"),
    (">=1.0.0 <=1.1.0", "1.1.0-pre"),
];

/// Included by node-semver, but an entry we refuse to guess at.
const INCLUDE_BUT_UNKNOWN: &[(&str, &str)] = &[("", "1.0.0"), ("||", "1.3.4")];

const EXCLUDE: &[(&str, &str)] = &[
    ("1.0.0 - 2.0.0", "2.2.3"),
    ("^1.2.3+build", "2.0.0"),
    ("^1.2.3+build", "1.2.0"),
    ("^1.2.3", "1.2.3-pre"),
    ("^1.2.3", "1.2.3-beta"),
    ("1.0.0", "1.0.1"),
    (">=1.0.0", "0.0.0"),
    (">=1.0.0", "0.0.1"),
    (">=1.0.0", "0.1.0"),
    (">1.0.0", "0.0.1"),
    (">1.0.0", "0.1.0"),
    ("<=2.0.0", "3.0.0"),
    ("<=2.0.0", "2.9999.9999"),
    ("<=2.0.0", "2.2.9"),
    ("<2.0.0", "2.9999.9999"),
    ("<2.0.0", "2.2.9"),
    (">=0.1.97", "v0.1.93"),
    (">=0.1.97", "0.1.93"),
    ("0.1.20 || 1.2.4", "1.2.3"),
    (">=0.2.3 || <0.0.1", "0.0.3"),
    (">=0.2.3 || <0.0.1", "0.2.2"),
    ("2.x.x", "1.1.3"),
    ("2.x.x", "3.1.3"),
    ("1.2.x", "1.3.3"),
    ("1.2.x || 2.x", "3.1.3"),
    ("1.2.x || 2.x", "1.1.3"),
    ("2.*.*", "1.1.3"),
    ("2.*.*", "3.1.3"),
    ("1.2.*", "1.3.3"),
    ("1.2.* || 2.*", "3.1.3"),
    ("1.2.* || 2.*", "1.1.3"),
    ("2", "1.1.2"),
    ("2.3", "2.4.1"),
    ("~0.0.1", "0.1.0-alpha"),
    ("~0.0.1", "0.1.0"),
    ("~2.4", "2.5.0"),
    ("~2.4", "2.3.9"),
    ("~>3.2.1", "3.3.2"),
    ("~>3.2.1", "3.2.0"),
    ("~1", "0.2.3"),
    ("~>1", "2.2.3"),
    ("~1.0", "1.1.0"),
    ("<1", "1.0.0"),
    (">=1.2", "1.1.1"),
    ("~v0.5.4-beta", "0.5.4-alpha"),
    ("=0.7.x", "0.8.2"),
    (">=0.7.x", "0.6.2"),
    ("<0.7.x", "0.7.2"),
    ("=1.2.3", "1.2.3-beta"),
    (">1.2", "1.2.8"),
    ("^0.0.1", "0.0.2-alpha"),
    ("^0.0.1", "0.0.2"),
    ("^1.2.3", "2.0.0-alpha"),
    ("^1.2.3", "1.2.2"),
    ("^1.2", "1.1.9"),
    ("2.x", "3.0.0-pre.0"),
    ("^1.0.0", "1.0.0-rc1"),
    ("^1.0.0", "2.0.0-rc1"),
    ("^1.2.3-rc2", "2.0.0"),
    ("1 - 2", "3.0.0-pre"),
    ("1.1.x", "1.0.0-a"),
    ("1.1.x", "1.2.0-a"),
    ("1.x", "0.0.0-a"),
    ("1.x", "2.0.0-a"),
    (">=1.0.0 <1.1.0", "1.1.0"),
    (">=1.0.0 <1.1.0-pre", "1.1.0-pre"),
];

/// Excluded by node-semver only because it leaves pre-releases out unless
/// asked (its `includePrerelease` would include them): included here.
const EXCLUDE_BUT_PRERELEASE_INCLUDED: &[(&str, &str)] = &[
    ("1.2.3+asdf - 2.4.3+asdf", "1.2.3-pre.2"),
    ("1.2.3+asdf - 2.4.3+asdf", "2.4.3-alpha"),
    (">1.2", "1.3.0-beta"),
    ("=0.7.x", "0.7.0-asdf"),
    (">=0.7.x", "0.7.0-asdf"),
    ("<=0.7.x", "0.7.0-asdf"),
    ("<1.2.3", "1.2.3-beta"),
    ("<=1.2.3", "1.2.3-beta"),
    ("^1.2", "1.2.0-pre"),
    ("1 - 2", "2.0.0-pre"),
    ("1 - 2", "1.0.0-pre"),
    ("1.0 - 2", "1.0.0-pre"),
    ("1.1.x", "1.1.0-a"),
    ("1.x", "1.0.0-a"),
    ("1.x", "1.1.0-a"),
    ("1.x", "1.2.0-a"),
    (">=1.0.0 <1.1.0", "1.1.0-pre"),
];

/// Excluded by node-semver; versions or entries we cannot read: unknown.
const EXCLUDE_BUT_UNKNOWN: &[(&str, &str)] = &[(">=2", "glorp"), ("== 1.0.0 || foo", "2.0.0")];

fn verdict(range: &str, version: &str) -> Verdict {
    AffectedVersions::from_statement(Some(Ecosystem::Npm), None, &[range.to_owned()])
        .matches(Some(Ecosystem::Npm), version)
}

#[test]
fn node_semver_range_include_fixtures() {
    let wrong: Vec<String> = INCLUDE
        .iter()
        .chain(EXCLUDE_BUT_PRERELEASE_INCLUDED)
        .filter(|(r, v)| !verdict(r, v).is_affected())
        .map(|(r, v)| format!("`{r}` {v}: {:?}", verdict(r, v)))
        .collect();
    assert!(
        wrong.is_empty(),
        "not affected, expected affected:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn node_semver_range_exclude_fixtures() {
    let wrong: Vec<String> = EXCLUDE
        .iter()
        .filter(|(r, v)| verdict(r, v) != Verdict::NotAffected)
        .map(|(r, v)| format!("`{r}` {v}: {:?}", verdict(r, v)))
        .collect();
    assert!(
        wrong.is_empty(),
        "expected not affected:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_version_needs_no_parsing() {
    // node-semver: no version satisfies anything unless it parses. Here
    // `*` is every version, whatever its spelling.
    assert!(verdict("*", "not a version").is_affected());
}

#[test]
fn our_deliberate_differences_are_unknown_not_clean() {
    for (r, v) in INCLUDE_BUT_UNKNOWN.iter().chain(EXCLUDE_BUT_UNKNOWN) {
        assert!(
            matches!(verdict(r, v), Verdict::Unknown(_)),
            "`{r}` {v}: {:?}",
            verdict(r, v)
        );
    }
}
