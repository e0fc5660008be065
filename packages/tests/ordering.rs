//! Version ordering per ecosystem, against each ecosystem's reference
//! tables: PEP 440's own ordering example, SemVer 2.0 §11, Maven's
//! `ComparableVersionTest`, Go's pseudo-version rules, RubyGems'
//! `Gem::Version#<=>` tests, NuGet.Versioning, Composer's
//! `VersionParser::normalize` and PHP's `version_compare`. Then property
//! checks: the order is total, antisymmetric and transitive.

use std::cmp::Ordering;

use isac_packages::version::{compare, composer, GoVersion, Version};
use isac_packages::Ecosystem;

fn v(eco: Ecosystem, s: &str) -> Version {
    Version::parse(eco, s).unwrap_or_else(|e| panic!("{eco} {s}: {e}"))
}

fn cmp(eco: Ecosystem, a: &str, b: &str) -> Ordering {
    v(eco, a).compare(&v(eco, b)).expect("same scheme")
}

/// Every earlier entry is strictly below every later one, both ways round.
fn assert_ascending(eco: Ecosystem, list: &[&str]) {
    for (i, a) in list.iter().enumerate() {
        for b in &list[i + 1..] {
            assert_eq!(cmp(eco, a, b), Ordering::Less, "{eco}: expected {a} < {b}");
            assert_eq!(
                cmp(eco, b, a),
                Ordering::Greater,
                "{eco}: expected {b} > {a}"
            );
        }
    }
}

fn assert_equal(eco: Ecosystem, pairs: &[(&str, &str)]) {
    for (a, b) in pairs {
        assert_eq!(
            cmp(eco, a, b),
            Ordering::Equal,
            "{eco}: expected {a} == {b}"
        );
        assert_eq!(
            cmp(eco, b, a),
            Ordering::Equal,
            "{eco}: expected {b} == {a}"
        );
    }
}

fn assert_invalid(eco: Ecosystem, list: &[&str]) {
    for s in list {
        assert!(
            Version::parse(eco, s).is_err(),
            "{eco}: {s:?} should not parse"
        );
    }
}

// === PyPI ===

#[test]
fn pep440_spec_ordering_example() {
    // PEP 440, "Summary of permitted suffixes and relative ordering".
    assert_ascending(
        Ecosystem::PyPI,
        &[
            "1.dev0",
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ],
    );
    assert_ascending(
        Ecosystem::PyPI,
        &["1.0.dev1", "1.0a1", "1.0b1", "1.0rc1", "1.0", "1.0.post1"],
    );
    // Epochs outrank everything; date-based versions below epoch 1.
    assert_ascending(
        Ecosystem::PyPI,
        &["1.0", "2013.10", "2014.04", "1!1.0", "1!1.1", "2!0.1"],
    );
}

#[test]
fn pep440_normalisation_makes_spellings_equal() {
    assert_equal(
        Ecosystem::PyPI,
        &[
            ("1.0alpha1", "1.0a1"),
            ("1.0-a1", "1.0a1"),
            ("1.0.beta.2", "1.0b2"),
            ("1.0c1", "1.0rc1"),
            ("1.0pre1", "1.0rc1"),
            ("1.0preview1", "1.0rc1"),
            ("1.0.RC1", "1.0rc1"),
            ("1.0-1", "1.0.post1"),
            ("1.0rev1", "1.0.post1"),
            ("1.0r1", "1.0.post1"),
            ("1.0-dev1", "1.0.dev1"),
            ("1.0a", "1.0a0"),
            ("1.0", "1.0.0"),
            ("1", "1.0.0.0"),
            ("v1.0", "1.0"),
            ("0!1.0", "1.0"),
            ("01.002", "1.2"),
        ],
    );
    assert_invalid(
        Ecosystem::PyPI,
        &["", "1.0-", "a.b", "1.0+", "1..0", "1.0 2"],
    );
}

// === SemVer: npm, Cargo ===

const SEMVER_SPEC_ORDER: &[&str] = &[
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
    "10.0.0",
];

#[test]
fn semver_spec_precedence_for_npm_and_cargo() {
    for eco in [Ecosystem::Npm, Ecosystem::Cargo] {
        assert_ascending(eco, SEMVER_SPEC_ORDER);
        // SemVer §10: build metadata does not order.
        assert_equal(
            eco,
            &[("1.0.0+build.1", "1.0.0+build.2"), ("1.0.0", "1.0.0+x")],
        );
    }
    // npm reads loosely (a `v`, spaces); Cargo refuses what SemVer refuses.
    assert_equal(Ecosystem::Npm, &[("v1.2.3", "1.2.3"), (" 1.2.3 ", "1.2.3")]);
    assert_invalid(
        Ecosystem::Cargo,
        &["1.2", "01.2.3", "1.2.3-", "1.2.3.4", "latest"],
    );
    assert_invalid(Ecosystem::Npm, &["1.2", "latest", ""]);
}

// === Go ===

#[test]
fn go_versions_pseudo_versions_and_incompatible() {
    assert_ascending(
        Ecosystem::Go,
        &[
            "v0.0.0-20191109021931-daa7c04131f5",
            "v0.1.0",
            "v1.2.3-pre",
            "v1.2.3-pre.0.20191109021931-daa7c04131f5",
            "v1.2.3",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.4",
            "v2.0.0+incompatible",
            "v2.1.0",
        ],
    );
    assert_equal(
        Ecosystem::Go,
        &[
            ("v2.0.0+incompatible", "v2.0.0"),
            ("v1", "v1.0.0"),
            ("v1.2", "v1.2.0"),
            // OSV writes Go versions without the `v`.
            ("1.2.3", "v1.2.3"),
        ],
    );
    assert_invalid(Ecosystem::Go, &["v1.2.3.4", "vx", "v01.2.3", "v1.2-pre"]);
    for (s, pseudo) in [
        ("v0.0.0-20191109021931-daa7c04131f5", true),
        ("v1.2.4-0.20191109021931-daa7c04131f5", true),
        ("v1.2.3-pre.0.20191109021931-daa7c04131f5", true),
        ("v1.2.3-pre", false),
        ("v1.2.3-20191109-daa7c04131f5", false),
        ("v1.2.3", false),
    ] {
        assert_eq!(GoVersion::parse(s).unwrap().is_pseudo(), pseudo, "{s}");
    }
    assert!(GoVersion::parse("v2.0.0+incompatible")
        .unwrap()
        .is_incompatible());
}

/// golang.org/x/mod/semver's `semver_test.go` table, in its order: the
/// canonical form of each valid version, `""` for invalid ones.
const GO_SEMVER_TESTS: &[(&str, &str)] = &[
    ("bad", ""),
    ("v1-alpha.beta.gamma", ""),
    ("v1-pre", ""),
    ("v1+meta", ""),
    ("v1-pre+meta", ""),
    ("v1.2-pre", ""),
    ("v1.2+meta", ""),
    ("v1.2-pre+meta", ""),
    ("v1.0.0-alpha", "v1.0.0-alpha"),
    ("v1.0.0-alpha.1", "v1.0.0-alpha.1"),
    ("v1.0.0-alpha.beta", "v1.0.0-alpha.beta"),
    ("v1.0.0-beta", "v1.0.0-beta"),
    ("v1.0.0-beta.2", "v1.0.0-beta.2"),
    ("v1.0.0-beta.11", "v1.0.0-beta.11"),
    ("v1.0.0-rc.1", "v1.0.0-rc.1"),
    ("v1", "v1.0.0"),
    ("v1.0", "v1.0.0"),
    ("v1.0.0", "v1.0.0"),
    ("v1.2", "v1.2.0"),
    ("v1.2.0", "v1.2.0"),
    ("v1.2.3-456", "v1.2.3-456"),
    ("v1.2.3-456.789", "v1.2.3-456.789"),
    ("v1.2.3-456-789", "v1.2.3-456-789"),
    ("v1.2.3-456a", "v1.2.3-456a"),
    ("v1.2.3-pre", "v1.2.3-pre"),
    ("v1.2.3-pre+meta", "v1.2.3-pre"),
    ("v1.2.3-pre.1", "v1.2.3-pre.1"),
    ("v1.2.3-zzz", "v1.2.3-zzz"),
    ("v1.2.3", "v1.2.3"),
    ("v1.2.3+meta", "v1.2.3"),
    ("v1.2.3+meta-pre", "v1.2.3"),
    ("v1.2.3+meta-pre.sha.256a", "v1.2.3"),
];

#[test]
fn go_semver_test_table() {
    let valid: Vec<(usize, &str, &str)> = GO_SEMVER_TESTS
        .iter()
        .enumerate()
        .filter(|(_, (_, out))| !out.is_empty())
        .map(|(i, (s, out))| (i, *s, *out))
        .collect();
    for (s, out) in GO_SEMVER_TESTS {
        assert_eq!(
            GoVersion::parse(s).is_some(),
            !out.is_empty(),
            "IsValid({s})"
        );
    }
    // TestCompare: equal canonical forms compare equal, else table order.
    for (i, a, ca) in &valid {
        for (j, b, cb) in &valid {
            let want = if ca == cb { Ordering::Equal } else { i.cmp(j) };
            assert_eq!(cmp(Ecosystem::Go, a, b), want, "Compare({a}, {b})");
        }
    }
    assert_eq!(cmp(Ecosystem::Go, "v1.19", "v1.2"), Ordering::Greater);
}

// === Maven ===

#[test]
fn maven_comparable_version_test_qualifiers_and_numbers() {
    // ComparableVersionTest.VERSIONS_QUALIFIER and VERSIONS_NUMBER.
    assert_ascending(
        Ecosystem::Maven,
        &[
            "1-alpha2snapshot",
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
        ],
    );
    assert_ascending(
        Ecosystem::Maven,
        &[
            "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1",
            "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11",
            "11", "11.a", "11b", "11c", "11m",
        ],
    );
}

#[test]
fn maven_comparable_version_test_equalities() {
    assert_equal(
        Ecosystem::Maven,
        &[
            ("1", "1"),
            ("1", "1.0"),
            ("1", "1.0.0"),
            ("1.0", "1.0.0"),
            ("1", "1-0"),
            ("1", "1.0-0"),
            ("1.0", "1.0-0"),
            ("1a", "1-a"),
            ("1a", "1.0-a"),
            ("1a", "1.0.0-a"),
            ("1.0a", "1-a"),
            ("1.0.0a", "1-a"),
            ("1x", "1-x"),
            ("1x", "1.0-x"),
            ("1x", "1.0.0-x"),
            ("1.0x", "1-x"),
            ("1.0.0x", "1-x"),
            ("1cr", "1rc"),
            ("1a1", "1-alpha-1"),
            ("1b2", "1-beta-2"),
            ("1m3", "1-milestone-3"),
            ("1X", "1x"),
            ("1A", "1a"),
            ("1B", "1b"),
            ("1M", "1m"),
            ("1Cr", "1Rc"),
            ("1cR", "1rC"),
            ("1m3", "1Milestone3"),
            ("1m3", "1MileStone3"),
            ("1m3", "1MILESTONE3"),
            // Same order, though Maven's `equals` tells them apart.
            ("1ga", "1"),
            ("1release", "1"),
            ("1final", "1"),
            ("1GA", "1"),
            ("1RELeaSE", "1"),
            ("1FINAL", "1"),
            (
                "1-abcdefghijklmnopqrstuvwxyz",
                "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            ),
        ],
    );
    let ones = [
        "0000000000000000001",
        "000000000000000001",
        "0000000001",
        "000000001",
        "01",
        "1",
    ];
    let zeros = ["0000000000000000000", "0000000000", "000000000", "00", "0"];
    for list in [&ones[..], &zeros[..]] {
        for a in list {
            for b in list {
                assert_equal(Ecosystem::Maven, &[(a, b)]);
            }
        }
    }
}

#[test]
fn maven_comparable_version_test_comparisons() {
    let m = Ecosystem::Maven;
    for (a, b) in [
        ("1", "2"),
        ("1.5", "2"),
        ("1", "2.5"),
        ("1.0", "1.1"),
        ("1.1", "1.2"),
        ("1.0.0", "1.1"),
        ("1.0.1", "1.1"),
        ("1.1", "1.2.0"),
        ("1.0-alpha-1", "1.0"),
        ("1.0-alpha-1", "1.0-alpha-2"),
        ("1.0-alpha-1", "1.0-beta-1"),
        ("1.0-beta-1", "1.0-SNAPSHOT"),
        ("1.0-SNAPSHOT", "1.0"),
        ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"),
        ("1.0", "1.0-1"),
        ("1.0-1", "1.0-2"),
        ("1.0.0", "1.0-1"),
        ("2.0-1", "2.0.1"),
        ("2.0.1-klm", "2.0.1-lmn"),
        ("2.0.1", "2.0.1-xyz"),
        ("2.0.1", "2.0.1-123"),
        ("2.0.1-xyz", "2.0.1-123"),
        ("0.7", "2"),
        ("0.2", "1.0.7"),
        ("J", "7"),
        ("c", "7"),
        ("aardvark", "zebra"),
        ("zebra", "ζέβρα"),
        // MNG-5568: transitive again.
        ("6.1.0rc3", "6.1.0"),
        ("6.1.0rc3", "6.1H.5-beta"),
        ("6.1.0", "6.1H.5-beta"),
        // MNG-6572: long numbers.
        ("20190126.230843", "1234567890.12345"),
        ("1234567890.12345", "123456789012345.1H.5-beta"),
        (
            "123456789012345.1H.5-beta",
            "12345678901234567890.1H.5-beta",
        ),
        // MNG-6964.
        ("1-0.alpha", "1"),
        ("1-0.beta", "1"),
        ("1-0.alpha", "1-0.beta"),
        // MNG-7714.
        ("1.0.final-redhat", "1.0-sp1-redhat"),
        ("1.0.final-redhat", "1.0-sp-1-redhat"),
        ("1.0.final-redhat", "1.0-sp.1-redhat"),
    ] {
        assert_ascending(m, &[a, b]);
    }
    // MNG-7644: `1.0.0.X1 < 1.0.0-X2`, and `2-X == 2.0.X == 2.0.0.X`.
    for x in [
        "abc",
        "alpha",
        "a",
        "beta",
        "b",
        "def",
        "milestone",
        "m",
        "RC",
    ] {
        assert_ascending(m, &[&format!("1.0.0.{x}1"), &format!("1.0.0-{x}2")]);
        assert_equal(
            m,
            &[
                (&format!("2-{x}"), &format!("2.0.{x}")),
                (&format!("2-{x}"), &format!("2.0.0.{x}")),
                (&format!("2.0.{x}"), &format!("2.0.0.{x}")),
            ],
        );
    }
}

// === RubyGems ===

#[test]
fn rubygems_spaceship_cases() {
    let g = Ecosystem::RubyGems;
    // test_gem_version.rb, test_spaceship.
    assert_equal(
        g,
        &[("1.0", "1.0.0"), ("", "0"), ("0.beta.1", "0.0.beta.1")],
    );
    for (a, b) in [
        ("1.0.a", "1.0"),
        ("0.0.0", "1.8.2"),
        ("1.8.2.a", "1.8.2"),
        ("1.8.2.a", "1.8.2.b"),
        ("1.8.2.a9", "1.8.2.a10"),
        ("0.0.beta", "0.0.beta.1"),
        ("0.0.beta", "0.beta.1"),
        ("5.a", "5.0.0.rc2"),
        ("5.0.0.rc2", "5.x"),
    ] {
        assert_ascending(g, &[a, b]);
    }
    // `-` reads as `.pre.`; pre-releases sort before the release.
    assert_equal(g, &[("1.0.0-rc1", "1.0.0.pre.rc1")]);
    assert_ascending(
        g,
        &[
            "1.0.0.a",
            "1.0.0.b1",
            "1.0.0.pre",
            "1.0.0.rc1",
            "1.0.0",
            "1.0.1",
        ],
    );
    assert_invalid(g, &["junk", "1.0\n1.0", "1..0", "1.0-", "a1"]);
}

#[test]
fn rubygems_test_gem_version_cases() {
    let g = Ecosystem::RubyGems;
    // test_equals2, test_hash, test_initialize, test_empty_version,
    // test_canonical_segments.
    assert_equal(
        g,
        &[
            ("1.2.b1", "1.2.b.1"),
            ("1.2", "1.2.0"),
            ("1.2.pre.1", "1.2.0.pre.1.0"),
            ("1.0", "1.0 "),
            ("1.0", " 1.0 "),
            ("1.0", "1.0\n"),
            ("1.0", "\n1.0\n"),
            ("0", "   "),
            ("1.0.0.a.1.0", "1.a.1"),
            ("1.2.3-1", "1.2.3.pre.1"),
        ],
    );
    // test_initialize_invalid (with CVE-2013-4287's string).
    assert_invalid(
        g,
        &[
            "junk",
            "1.0\n2.0",
            "1..2",
            "1.2 3.4",
            "2.3422222.222.222222222.22222.ads0as.dasd0.ddd2222.2.qd3e.",
        ],
    );
    // test_prerelease.
    for (s, pre) in [
        ("1.2.0.a", true),
        ("2.9.b", true),
        ("22.1.50.0.d", true),
        ("1.2.d.42", true),
        ("1.A", true),
        ("1-1", true),
        ("1-a", true),
        ("1.2.0", false),
        ("2.9", false),
        ("22.1.50.0", false),
    ] {
        assert_eq!(v(g, s).is_prerelease(), pre, "{s}");
    }
    // test_semver, test_frozen_version.
    assert_ascending(
        g,
        &[
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
        ],
    );
    assert_ascending(g, &["1.0.0-rc1", "1.0.0"]);
    assert_ascending(g, &["1.0.0-1", "1"]);
    assert_ascending(g, &["1.freeze.test", "1"]);
}

// === NuGet ===

#[test]
fn nuget_four_parts_and_case_insensitive_labels() {
    let n = Ecosystem::NuGet;
    assert_equal(
        n,
        &[
            ("1.0", "1.0.0"),
            ("1.0.0", "1.0.0.0"),
            ("1.0.0-BETA", "1.0.0-beta"),
            ("1.0.0+meta", "1.0.0"),
            ("01.0", "1.0"),
        ],
    );
    assert_ascending(
        n,
        &[
            "1.0.0-alpha",
            "1.0.0-Beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.0.1",
            "1.0.1",
            "1.1",
            "2.0.0.0",
        ],
    );
    assert_invalid(n, &["1.0.0.0.0", "a", "1.0.0-", "1..0", "1.0.0-a..b"]);
}

// === Composer ===

#[test]
fn composer_normalisation_as_version_parser_does() {
    for (given, want) in [
        ("1.0.0", "1.0.0.0"),
        ("1.2.3.4", "1.2.3.4"),
        ("0", "0.0.0.0"),
        ("v1.0.0", "1.0.0.0"),
        ("1.0.0RC1dev", "1.0.0.0-RC1-dev"),
        ("1.0.0-rC15-dev", "1.0.0.0-RC15-dev"),
        ("1.0.0.RC.15-dev", "1.0.0.0-RC15-dev"),
        ("1.0.0-rc1", "1.0.0.0-RC1"),
        ("1.0.0.pl3-dev", "1.0.0.0-patch3-dev"),
        ("1.0-dev", "1.0.0.0-dev"),
        ("10.4.13-beta", "10.4.13.0-beta"),
        ("10.4.13beta2", "10.4.13.0-beta2"),
        ("10.4.13beta.2", "10.4.13.0-beta2"),
        ("v1.13.11-beta.0", "1.13.11.0-beta0"),
        ("10.4.13-b", "10.4.13.0-beta"),
        ("10.4.13-b5", "10.4.13.0-beta5"),
        ("1.0.0-stable", "1.0.0.0"),
        ("1.0.0+foo", "1.0.0.0"),
        ("1.0.0@beta", "1.0.0.0"),
        ("1.x-dev", "1.9999999.9999999.9999999-dev"),
        ("2.1.x-dev", "2.1.9999999.9999999-dev"),
        ("1.0.0 as 2.0.0", "1.0.0.0"),
        // composer/semver VersionParserTest::successfulNormalizedVersions.
        ("1.13.11.0-beta0", "1.13.11.0-beta0"),
        ("2010.01", "2010.01.0.0"),
        ("2010.01.02", "2010.01.02.0"),
        ("2010.1.555", "2010.1.555.0"),
        ("1.0.0+foo@dev", "1.0.0.0"),
        ("1.0.0-beta.5+foo", "1.0.0.0-beta5"),
        ("1.0.0-alpha.3.1+foo", "1.0.0.0-alpha3.1"),
        ("1.0.0-alpha2.1+foo", "1.0.0.0-alpha2.1"),
        ("1.0.0-alpha-2.1-3+foo", "1.0.0.0-alpha2.1-3"),
        ("1.0.0+foo as 2.0", "1.0.0.0"),
        ("00.01.03.04", "00.01.03.04"),
        ("0700", "0700.0.0.0"),
        ("041.x-dev", "041.9999999.9999999.9999999-dev"),
        (" 1.0.0", "1.0.0.0"),
        ("1.0.0 ", "1.0.0.0"),
    ] {
        assert_eq!(composer::normalize(given).as_deref(), Some(want), "{given}");
    }
    // failingNormalizedVersions, and what has no order: branches, dates.
    for bad in [
        "",
        "a",
        "1.0.0-meh",
        "1.0.0.0.0",
        "feature-foo",
        "1.0.0+foo bar",
        "1.0.1-SNAPSHOT",
        "1.0.0<1.0.5-dev",
        "1.0.0-dev<1.0.5-dev",
        "foo bar-dev",
        "1.0 .2",
        " as ",
        "^",
        "~1",
        "^1",
        "1.*",
        "dev-master",
        "dev-feature/x",
        "master",
        "20100102",
        "2010-01-02",
    ] {
        assert_eq!(composer::normalize(bad), None, "{bad}");
    }
}

#[test]
fn composer_order_is_php_version_compare_on_normalised_versions() {
    assert_ascending(
        Ecosystem::Composer,
        &[
            "1.0.0-dev",
            "1.0.0-alpha1",
            "1.0.0-alpha2",
            "1.0.0-beta1",
            "1.0.0-RC1",
            "1.0.0",
            "1.0.0-patch1",
            "1.0.1",
            "1.1.x-dev",
            "1.2.0",
            "v2.0",
        ],
    );
    assert_equal(
        Ecosystem::Composer,
        &[("1.0", "1.0.0.0"), ("v1.0.0", "1.0.0")],
    );
    // PHP's own `version_compare` examples.
    use composer::php_version_compare as php;
    assert_eq!(php("5.2", "5.10"), Ordering::Less);
    assert_eq!(php("1.0rc1", "1.0"), Ordering::Less);
    assert_eq!(php("1.0", "1.0.0"), Ordering::Less);
    assert_eq!(php("1.0pl1", "1.0"), Ordering::Greater);
    assert_eq!(php("1.0-dev", "1.0a1"), Ordering::Less);
    assert_eq!(php("1.0.0", "1.0.0"), Ordering::Equal);
}

// === GitHub ===

#[test]
fn github_versions_have_no_order() {
    assert!(Version::parse(Ecosystem::GitHub, "v1.0.0").is_err());
    assert!(compare(Ecosystem::GitHub, "v1", "v2").is_err());
}

// === Properties ===

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// Version-like strings built from each ecosystem's own pieces.
fn generate(eco: Ecosystem, rng: &mut Rng) -> String {
    let num = |rng: &mut Rng| (rng.next() % 4).to_string();
    let mut s = format!("{}.{}.{}", num(rng), num(rng), num(rng));
    let suffixes: &[&str] = match eco {
        Ecosystem::PyPI => &[
            "", "a1", "b2", "rc1", ".post1", ".dev3", "+local.1", "a1.dev1",
        ],
        Ecosystem::Npm | Ecosystem::Cargo => &["", "-alpha", "-alpha.1", "-beta.11", "-rc.1", "-0"],
        Ecosystem::Go => &[
            "",
            "-pre",
            "-0.20191109021931-daa7c04131f5",
            "+incompatible",
        ],
        Ecosystem::Maven => &[
            "",
            "-SNAPSHOT",
            "-alpha-1",
            "-rc1",
            ".Final",
            "-sp1",
            "-1",
            "a",
            "-xyz",
        ],
        Ecosystem::RubyGems => &["", ".a", ".rc1", "-pre", ".b.2", ".0"],
        Ecosystem::NuGet => &["", "-Alpha", "-beta.2", ".4", "-RC.1", "+meta"],
        Ecosystem::Composer => &["", "-dev", "-alpha1", "-beta", "-RC2", "-patch1", ".4"],
        Ecosystem::GitHub => &[""],
    };
    if eco == Ecosystem::Go {
        s.insert(0, 'v');
    }
    s.push_str(rng.pick(suffixes));
    s
}

#[test]
fn every_order_is_total_antisymmetric_and_transitive() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for eco in Ecosystem::ALL.into_iter().filter(|e| e.has_ordering()) {
        let versions: Vec<(String, Version)> = (0..60)
            .map(|_| {
                let s = generate(eco, &mut rng);
                let parsed = v(eco, &s);
                (s, parsed)
            })
            .collect();
        let c = |a: &Version, b: &Version| a.compare(b).expect("same scheme");
        for (sa, a) in &versions {
            assert_eq!(c(a, a), Ordering::Equal, "{eco}: {sa} != itself");
            for (sb, b) in &versions {
                assert_eq!(
                    c(a, b),
                    c(b, a).reverse(),
                    "{eco}: {sa} vs {sb} not antisymmetric"
                );
                for (sc, cc) in &versions {
                    if c(a, b).is_le() && c(b, cc).is_le() {
                        assert!(
                            c(a, cc).is_le(),
                            "{eco}: {sa} <= {sb} <= {sc} but not {sa} <= {sc}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn hostile_versions_are_refused_or_ordered_without_panic() {
    let long = "1.".repeat(200);
    let inputs = [
        "",
        " ",
        "\u{0}",
        "1.0.0-\u{202e}",
        "99999999999999999999999999.0.0",
        "1.0.0-99999999999999999999999999",
        &long,
        "ζέβρα",
        "1-.-.-.-",
        "--",
        "..",
        "1.0.0+",
        "v",
        "0!",
        "1!2!3",
    ];
    for eco in Ecosystem::ALL {
        for s in inputs {
            if let Ok(a) = Version::parse(eco, s) {
                let b = v(
                    eco,
                    if eco == Ecosystem::Go {
                        "v1.0.0"
                    } else {
                        "1.0.0"
                    },
                );
                let _ = a.compare(&b);
            }
        }
    }
}
