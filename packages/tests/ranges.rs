//! Range matching: the OSV schema's evaluation examples, node-semver's
//! README range grammar, PEP 440 specifiers we read, and our own
//! `versions` strings. A version that cannot be placed is never "not
//! affected".

use isac_packages::range::{parse_entry, Constraint};
use isac_packages::{AffectedVersions, Ecosystem, Event, OsvRange, RangeKind, Verdict};

fn osv(kind: RangeKind, events: &[(&str, &str)]) -> OsvRange {
    OsvRange {
        kind,
        events: events
            .iter()
            .map(|(k, v)| {
                let v = v.to_string();
                match *k {
                    "introduced" => Event::Introduced(v),
                    "fixed" => Event::Fixed(v),
                    "last_affected" => Event::LastAffected(v),
                    "limit" => Event::Limit(v),
                    other => panic!("{other}"),
                }
            })
            .collect(),
    }
}

fn osv_verdict(eco: Ecosystem, range: OsvRange, version: &str) -> Verdict {
    AffectedVersions::from_osv(&[], vec![range]).matches(Some(eco), version)
}

/// `range` affects exactly the `inside` versions of `inside` and `outside`.
fn assert_osv(eco: Ecosystem, range: &OsvRange, inside: &[&str], outside: &[&str]) {
    for v in inside {
        assert!(
            osv_verdict(eco, range.clone(), v).is_affected(),
            "{eco} {v} should be in {range}"
        );
    }
    for v in outside {
        assert_eq!(
            osv_verdict(eco, range.clone(), v),
            Verdict::NotAffected,
            "{eco} {v} should be outside {range}"
        );
    }
}

fn statement(eco: Ecosystem, versions: &[&str]) -> AffectedVersions {
    let versions: Vec<String> = versions.iter().map(|s| s.to_string()).collect();
    AffectedVersions::from_statement(Some(eco), None, &versions)
}

/// Our `versions` entry affects exactly `inside` of `inside` and `outside`.
fn assert_entry(eco: Ecosystem, entry: &str, inside: &[&str], outside: &[&str]) {
    let a = statement(eco, &[entry]);
    for v in inside {
        assert!(
            a.matches(Some(eco), v).is_affected(),
            "{eco} `{entry}` should match {v}: {a:?}"
        );
    }
    for v in outside {
        assert_eq!(
            a.matches(Some(eco), v),
            Verdict::NotAffected,
            "{eco} `{entry}` should not match {v}"
        );
    }
}

fn is_unknown(v: &Verdict) -> bool {
    matches!(v, Verdict::Unknown(_))
}

// === OSV evaluation (schema "Evaluation" and its examples) ===

#[test]
fn osv_schema_examples() {
    use RangeKind::Semver;
    let s = Ecosystem::Npm;
    // "every possible version is affected"
    assert_osv(
        s,
        &osv(Semver, &[("introduced", "0")]),
        &["0.0.0", "1.0.0", "99.0.0-rc.1"],
        &[],
    );
    // "everything before 1.0.2"
    assert_osv(
        s,
        &osv(Semver, &[("introduced", "0"), ("fixed", "1.0.2")]),
        &["0.0.1", "1.0.1", "1.0.2-rc.1"],
        &["1.0.2", "1.0.3", "2.0.0"],
    );
    // [1.0.0, 1.0.2) and [3.0.0, 3.2.5)
    assert_osv(
        s,
        &osv(
            Semver,
            &[
                ("introduced", "1.0.0"),
                ("fixed", "1.0.2"),
                ("introduced", "3.0.0"),
                ("fixed", "3.2.5"),
            ],
        ),
        &["1.0.0", "1.0.1", "3.0.0", "3.2.4"],
        &["0.9.9", "1.0.2", "2.9.9", "3.2.5", "4.0.0"],
    );
    // last_affected includes its version; fixed does not.
    let last = osv(
        RangeKind::Ecosystem,
        &[("introduced", "0"), ("last_affected", "2.1.214")],
    );
    assert_osv(s, &last, &["2.1.214", "1.0.0"], &["2.1.215"]);
    let fixed = osv(Semver, &[("introduced", "0"), ("fixed", "2.1.214")]);
    assert_osv(s, &fixed, &["2.1.213"], &["2.1.214"]);
}

#[test]
fn osv_events_are_sorted_before_the_walk() {
    let r = osv(
        RangeKind::Ecosystem,
        &[
            ("fixed", "3.2.5"),
            ("introduced", "3.0.0"),
            ("fixed", "1.0.2"),
            ("introduced", "1.0.0"),
        ],
    );
    assert_osv(
        Ecosystem::Cargo,
        &r,
        &["1.0.1", "3.1.0"],
        &["0.1.0", "2.0.0", "3.2.5"],
    );
}

#[test]
fn osv_limits_bound_the_range() {
    let r = osv(
        RangeKind::Semver,
        &[("introduced", "1.0.0"), ("limit", "2.0.0")],
    );
    assert_osv(
        Ecosystem::Npm,
        &r,
        &["1.0.0", "1.9.9"],
        &["2.0.0", "3.0.0", "0.9.0"],
    );
    let star = osv(RangeKind::Semver, &[("introduced", "0"), ("limit", "*")]);
    assert_osv(Ecosystem::Npm, &star, &["5.0.0"], &[]);
}

#[test]
fn osv_ecosystem_ranges_use_the_ecosystem_order() {
    // PyPI: pre-releases of the fixed version are still affected.
    let r = osv(
        RangeKind::Ecosystem,
        &[("introduced", "1.0a1"), ("fixed", "1.0")],
    );
    assert_osv(
        Ecosystem::PyPI,
        &r,
        &["1.0a1", "1.0b2", "1.0rc1", "1.0rc1.post1"],
        &["1.0.dev1", "1.0", "1.0.post1", "0.9"],
    );
    // Maven: qualifiers.
    let r = osv(
        RangeKind::Ecosystem,
        &[("introduced", "2.0-beta9"), ("fixed", "2.15.0")],
    );
    assert_osv(
        Ecosystem::Maven,
        &r,
        &["2.0-beta9", "2.0-rc1", "2.0", "2.14.1", "2.15.0-SNAPSHOT"],
        &["2.0-beta8", "2.0-alpha1", "2.15.0", "2.15.0.Final"],
    );
    // Go: OSV writes versions without the `v`; lockfiles with it.
    let r = osv(
        RangeKind::Semver,
        &[("introduced", "0"), ("fixed", "0.17.0")],
    );
    assert_osv(
        Ecosystem::Go,
        &r,
        &["v0.16.0", "v0.0.0-20230101000000-abcdefabcdef"],
        &["v0.17.0", "v1.0.0"],
    );
    // RubyGems, NuGet, Composer.
    let r = osv(
        RangeKind::Ecosystem,
        &[("introduced", "0"), ("fixed", "5.2.4.3")],
    );
    assert_osv(
        Ecosystem::RubyGems,
        &r,
        &["5.2.4.2", "5.2.4.3.rc1"],
        &["5.2.4.3", "6.0.0"],
    );
    let r = osv(
        RangeKind::Ecosystem,
        &[("introduced", "1.0"), ("fixed", "1.0.0.5")],
    );
    assert_osv(
        Ecosystem::NuGet,
        &r,
        &["1.0.0", "1.0.0.4", "1.0.0.5-beta"],
        &["1.0.0.5", "0.9"],
    );
    let r = osv(
        RangeKind::Ecosystem,
        &[("introduced", "2.0.0"), ("fixed", "2.1.0")],
    );
    assert_osv(
        Ecosystem::Composer,
        &r,
        &["v2.0.0", "2.0.9", "2.1.0-RC1"],
        &["1.9", "2.1.0", "2.1"],
    );
}

#[test]
fn what_cannot_be_placed_is_unknown_never_not_affected() {
    let git = osv(
        RangeKind::Git,
        &[("introduced", "abc123"), ("fixed", "def456")],
    );
    assert!(is_unknown(&osv_verdict(Ecosystem::PyPI, git, "1.0")));
    let r = osv(
        RangeKind::Ecosystem,
        &[("introduced", "0"), ("fixed", "2.0")],
    );
    // Our version does not parse.
    assert!(is_unknown(&osv_verdict(
        Ecosystem::PyPI,
        r.clone(),
        "not-a-version"
    )));
    // An event's version does not parse.
    let bad = osv(
        RangeKind::Ecosystem,
        &[("introduced", "0"), ("fixed", "two")],
    );
    assert!(is_unknown(&osv_verdict(Ecosystem::PyPI, bad, "1.0")));
    // No order in the ecosystem, or no ecosystem we know.
    assert!(is_unknown(&osv_verdict(
        Ecosystem::GitHub,
        r.clone(),
        "v1.0"
    )));
    let a = AffectedVersions::from_osv(&[], vec![r]);
    assert!(is_unknown(&a.matches(None, "1.0")));
    // "Every version" needs no parsing at all.
    let every = osv(RangeKind::Ecosystem, &[("introduced", "0")]);
    assert!(osv_verdict(Ecosystem::GitHub, every, "whatever").is_affected());
    // Affected anywhere wins over unknown elsewhere.
    let a = AffectedVersions::from_osv(
        &["1.0".into()],
        vec![osv(RangeKind::Git, &[("introduced", "abc")])],
    );
    assert!(a.matches(Some(Ecosystem::PyPI), "1.0.0").is_affected());
    assert!(is_unknown(&a.matches(Some(Ecosystem::PyPI), "2.0")));
}

#[test]
fn osv_versions_lists_compare_in_the_ecosystem_order() {
    let a = AffectedVersions::from_osv(&["1.0".into(), "2.0.0rc1".into()], vec![]);
    assert!(a.matches(Some(Ecosystem::PyPI), "1.0.0").is_affected());
    assert!(a.matches(Some(Ecosystem::PyPI), "2.0.0-rc1").is_affected());
    assert_eq!(
        a.matches(Some(Ecosystem::PyPI), "1.1"),
        Verdict::NotAffected
    );
    // Neither versions nor ranges: OSV malicious-package records mean all.
    let all = AffectedVersions::from_osv(&[], vec![]);
    assert!(all.matches(Some(Ecosystem::Npm), "0.0.1").is_affected());
    // Tags: text, give or take a `v`.
    let tags = AffectedVersions::from_osv(&["v4".into()], vec![]);
    assert!(tags.matches(Some(Ecosystem::GitHub), "4").is_affected());
    assert_eq!(
        tags.matches(Some(Ecosystem::GitHub), "v5"),
        Verdict::NotAffected
    );
}

// === node-semver README ===

#[test]
fn node_semver_readme_comparator_sets() {
    let n = Ecosystem::Npm;
    assert_entry(
        n,
        ">=1.2.7",
        &["1.2.7", "1.2.8", "2.5.3", "1.3.9"],
        &["1.2.6", "1.1.0"],
    );
    assert_entry(
        n,
        ">=1.2.7 <1.3.0",
        &["1.2.7", "1.2.8", "1.2.99"],
        &["1.2.6", "1.3.0", "1.1.0"],
    );
    assert_entry(
        n,
        "1.2.7 || >=1.2.9 <2.0.0",
        &["1.2.7", "1.2.9", "1.4.6"],
        &["1.2.8", "2.0.0"],
    );
    // node-semver leaves 3.4.5-alpha.9 out of `>1.2.3-alpha.3` unless
    // pre-releases are included; for exposure they are (a pre-release of
    // a malicious line is as malicious).
    assert_entry(
        n,
        ">1.2.3-alpha.3",
        &["1.2.3-alpha.7", "3.4.5-alpha.9", "3.4.5"],
        &["1.2.3-alpha.2"],
    );
}

#[test]
fn node_semver_readme_hyphen_x_tilde_caret() {
    let n = Ecosystem::Npm;
    // Hyphen ranges.
    assert_entry(n, "1.2.3 - 2.3.4", &["1.2.3", "2.3.4"], &["1.2.2", "2.3.5"]);
    assert_entry(n, "1.2 - 2.3.4", &["1.2.0", "2.3.4"], &["1.1.9", "2.3.5"]);
    assert_entry(n, "1.2.3 - 2.3", &["1.2.3", "2.3.9"], &["2.4.0-0", "2.4.0"]);
    assert_entry(n, "1.2.3 - 2", &["1.2.3", "2.9.9"], &["3.0.0-0", "3.0.0"]);
    // X-ranges.
    assert_entry(n, "*", &["0.0.0", "1.0.0", "1.0.0-rc.1"], &[]);
    assert_entry(
        n,
        "1.x",
        &["1.0.0", "1.9.9"],
        &["0.9.9", "2.0.0-0", "2.0.0"],
    );
    assert_entry(
        n,
        "1.2.x",
        &["1.2.0", "1.2.9"],
        &["1.1.9", "1.3.0-0", "1.3.0"],
    );
    assert_entry(n, "1", &["1.0.0", "1.9.9"], &["2.0.0"]);
    assert_entry(n, "1.2", &["1.2.0", "1.2.9"], &["1.3.0"]);
    // Tilde.
    assert_entry(n, "~1.2.3", &["1.2.3", "1.2.9"], &["1.2.2", "1.3.0-0"]);
    assert_entry(n, "~1.2", &["1.2.0", "1.2.9"], &["1.1.9", "1.3.0"]);
    assert_entry(n, "~1", &["1.0.0", "1.9.9"], &["2.0.0-0"]);
    assert_entry(n, "~0.2.3", &["0.2.3", "0.2.9"], &["0.3.0"]);
    assert_entry(n, "~0", &["0.0.0", "0.9.9"], &["1.0.0"]);
    assert_entry(
        n,
        "~1.2.3-beta.2",
        &["1.2.3-beta.2", "1.2.3", "1.2.4"],
        &["1.2.3-beta.1", "1.3.0"],
    );
    // Caret.
    assert_entry(
        n,
        "^1.2.3",
        &["1.2.3", "1.9.9"],
        &["1.2.2", "2.0.0-0", "2.0.0"],
    );
    assert_entry(n, "^0.2.3", &["0.2.3", "0.2.9"], &["0.3.0"]);
    assert_entry(n, "^0.0.3", &["0.0.3"], &["0.0.4", "0.0.2"]);
    assert_entry(
        n,
        "^1.2.3-beta.2",
        &["1.2.3-beta.2", "1.2.3-beta.4", "1.2.4"],
        &["1.2.3-beta.1", "2.0.0"],
    );
    assert_entry(n, "^0.0.3-beta", &["0.0.3-pr.2", "0.0.3"], &["0.0.4"]);
    assert_entry(n, "^1.2.x", &["1.2.0", "1.9.9"], &["2.0.0"]);
    assert_entry(n, "^0.0.x", &["0.0.0", "0.0.9"], &["0.1.0"]);
    assert_entry(n, "^0.0", &["0.0.0", "0.0.9"], &["0.1.0"]);
    assert_entry(n, "^1.x", &["1.0.0", "1.9.9"], &["2.0.0"]);
    assert_entry(n, "^0.x", &["0.0.0", "0.9.9"], &["1.0.0"]);
    // Cargo requirement spellings read the same way.
    assert_entry(
        Ecosystem::Cargo,
        "^1.2",
        &["1.2.0", "1.9.0"],
        &["2.0.0", "1.1.9"],
    );
    assert_entry(
        Ecosystem::Cargo,
        ">=1.2, <1.5",
        &["1.2.0", "1.4.9"],
        &["1.5.0"],
    );
}

// === PyPI specifiers we read ===

#[test]
fn pep440_compatible_release_and_prefix_match() {
    let p = Ecosystem::PyPI;
    assert_entry(
        p,
        "~=1.4.5",
        &["1.4.5", "1.4.9", "1.4.5.post1"],
        &["1.4.4", "1.5.0", "1.5.0a1"],
    );
    assert_entry(p, "~=2.2", &["2.2", "2.9"], &["3.0", "3.0.dev0", "2.1"]);
    assert_entry(
        p,
        "==1.4.*",
        &["1.4", "1.4.0", "1.4.9.post1", "1.4.0rc1"],
        &["1.5", "1.3.9"],
    );
    assert_entry(
        p,
        "<1.0",
        &["1.0rc1", "1.0.dev1", "0.9"],
        &["1.0", "1.0.post1"],
    );
    // PEP 440's own examples for `~=` and prefix matching.
    assert_entry(
        p,
        "~=2.2.post3",
        &["2.2.post3", "2.9"],
        &["2.2.post2", "3.0"],
    );
    assert_entry(
        p,
        "~=1.4.5a4",
        &["1.4.5a4", "1.4.5", "1.4.9"],
        &["1.4.5a3", "1.5.0"],
    );
    assert_entry(p, "~=2.2.0", &["2.2.0", "2.2.9"], &["2.3.0", "2.1.9"]);
    assert_entry(
        p,
        "== 1.1.*",
        &["1.1.post1", "1.1", "1.1.9"],
        &["1.10", "1.2"],
    );
    assert_entry(p, "== 1.1", &["1.1", "1.1.0"], &["1.1.post1"]);
    assert_entry(p, "== 1.1.post1", &["1.1.post1"], &["1.1"]);
    assert_entry(
        p,
        ">=1.0, !=1.0.1, <2",
        &["1.0", "1.0.2"],
        &["1.0.1", "2.0", "0.9"],
    );
}

// === Our own `versions` strings ===

#[test]
fn statement_version_strings() {
    let n = Ecosystem::Npm;
    assert_entry(n, "<1.2.3", &["1.2.2", "1.2.3-rc.1"], &["1.2.3", "2.0.0"]);
    assert_entry(n, ">=1.0.0 <2.0.0", &["1.0.0", "1.9.9"], &["2.0.0"]);
    assert_entry(n, ">= 1.2.0", &["1.2.0"], &["1.1.0"]);
    assert_entry(n, ">=0, <2.0.0", &["0.0.1", "1.9.9"], &["2.0.0"]);
    assert_entry(n, "=1.0.0", &["1.0.0", "v1.0.0"], &["1.0.1"]);
    assert_entry(n, "==1.0.0", &["1.0.0"], &["1.0.1"]);
    assert_entry(n, "v1.0.0", &["1.0.0"], &["1.0.1"]);
    assert_entry(n, "!=1.0.1", &["1.0.0", "1.0.2"], &["1.0.1"]);
    let c = Ecosystem::Cargo;
    assert_entry(c, "<=3.1.0", &["3.1.0", "0.1.0"], &["3.1.1"]);
    assert_entry(c, "1.0.0 || >=2.0.0", &["1.0.0", "2.5.0"], &["1.5.0"]);
    let g = Ecosystem::Go;
    assert_entry(g, "<v0.17.0", &["v0.16.0"], &["v0.17.0"]);
    assert_entry(g, "v1.2.3", &["v1.2.3", "v1.2.3+incompatible"], &["v1.2.4"]);
    let m = Ecosystem::Maven;
    assert_entry(
        m,
        ">=2.0-beta9 <2.15.0",
        &["2.14.1", "2.0-rc1"],
        &["2.15.0", "2.0-beta8"],
    );
    assert_entry(m, "2.14.1", &["2.14.1", "2.14.1.0"], &["2.14.2"]);
    // The exact entry is listed, the neighbours are not.
    for eco in [
        Ecosystem::PyPI,
        Ecosystem::RubyGems,
        Ecosystem::NuGet,
        Ecosystem::Composer,
    ] {
        assert_entry(eco, "1.2.3", &["1.2.3"], &["1.2.2", "1.2.4"]);
        assert_entry(eco, "<1.2.3", &["1.2.2"], &["1.2.3", "1.2.4"]);
    }
}

#[test]
fn equalities_that_cannot_all_hold_are_a_list() {
    assert_entry(
        Ecosystem::PyPI,
        "1.0.0, 1.0.1",
        &["1.0.0", "1.0.1"],
        &["1.0.2"],
    );
    assert_entry(
        Ecosystem::Npm,
        "1.0.0 1.0.1",
        &["1.0.0", "1.0.1"],
        &["1.0.2"],
    );
    assert_entry(Ecosystem::Npm, "1.2, 1.4", &["1.2.5", "1.4.0"], &["1.3.0"]);
    // A hyphen range is not a list.
    assert_entry(Ecosystem::Npm, "1.0.0 - 2.0.0", &["1.5.0"], &["2.0.1"]);
}

#[test]
fn pypi_local_builds_are_the_listed_release() {
    assert_entry(
        Ecosystem::PyPI,
        "1.0",
        &["1.0+ubuntu1", "1.0.0"],
        &["1.0.post1"],
    );
    assert_entry(
        Ecosystem::PyPI,
        "1.0+abc",
        &["1.0+abc"],
        &["1.0", "1.0+abd"],
    );
}

#[test]
fn osv_ranges_without_introduced_are_unknown() {
    for events in [&[][..], &[("fixed", "1.0")][..], &[("limit", "2.0")][..]] {
        let r = osv(RangeKind::Ecosystem, events);
        assert!(
            is_unknown(&osv_verdict(Ecosystem::Npm, r, "0.5.0")),
            "{events:?}"
        );
    }
}

#[test]
fn statement_defaults_come_from_the_purl() {
    let pinned = AffectedVersions::from_statement(Some(Ecosystem::Npm), Some("1.0.0"), &[]);
    assert!(pinned.matches(Some(Ecosystem::Npm), "1.0.0").is_affected());
    assert_eq!(
        pinned.matches(Some(Ecosystem::Npm), "1.0.1"),
        Verdict::NotAffected
    );
    let all = AffectedVersions::from_statement(Some(Ecosystem::Npm), None, &[]);
    assert!(all.matches(Some(Ecosystem::Npm), "9.9.9").is_affected());
    assert!(all.matches(None, "anything").is_affected());
}

#[test]
fn unreadable_entries_and_versions_are_unknown() {
    for (eco, entry) in [
        (Ecosystem::Npm, ">=>=1"),
        (Ecosystem::PyPI, ">="),
        (Ecosystem::PyPI, "1.0 - 2.0"),
        (Ecosystem::Maven, "~=1.0"),
        (Ecosystem::Npm, "||"),
        (Ecosystem::PyPI, "latest"),
    ] {
        let a = statement(eco, &[entry]);
        let v = a.matches(Some(eco), "1.0.0");
        assert!(is_unknown(&v), "{eco} `{entry}` gave {v:?}");
    }
    let parsed = parse_entry(Some(Ecosystem::PyPI), "1.0 - 2.0");
    assert!(
        matches!(parsed[..], [Constraint::Unreadable { .. }]),
        "{parsed:?}"
    );
    // A version that does not parse is never "not affected".
    let garbage = ["", "latest", "not a version", "1..0", "\u{0}", "v", "=="];
    let entries = [
        "1.0.0",
        "<2.0.0",
        ">=1.0.0 <2.0.0",
        "^1.0.0",
        "!=1.0.0",
        "~1.0",
    ];
    for eco in [
        Ecosystem::Npm,
        Ecosystem::Cargo,
        Ecosystem::PyPI,
        Ecosystem::Go,
    ] {
        for entry in entries {
            let a = statement(eco, &[entry]);
            for v in garbage {
                let verdict = a.matches(Some(eco), v);
                assert_ne!(verdict, Verdict::NotAffected, "{eco} `{entry}` vs {v:?}");
            }
        }
    }
}

#[test]
fn the_verdict_names_what_matched() {
    let a = AffectedVersions::from_osv(
        &["0.9.0".into()],
        vec![osv(
            RangeKind::Ecosystem,
            &[("introduced", "1.0.0"), ("fixed", "1.5.0")],
        )],
    );
    assert_eq!(
        a.matches(Some(Ecosystem::Npm), "0.9.0"),
        Verdict::Affected("version 0.9.0".into())
    );
    assert_eq!(
        a.matches(Some(Ecosystem::Npm), "1.2.0"),
        Verdict::Affected("ECOSYSTEM range: introduced 1.0.0, fixed 1.5.0".into())
    );
}

// === Property: the walk agrees with the intervals the events describe ===

#[test]
fn osv_walk_agrees_with_interval_reading() {
    let mut state: u64 = 0x1234_5678_9ABC_DEF1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..500 {
        // Sorted, alternating introduced/fixed|last_affected boundaries on
        // integer majors; the reference reads them as intervals.
        let mut points: Vec<u64> = (0..(next() % 6 + 1)).map(|_| next() % 20 + 1).collect();
        points.sort_unstable();
        points.dedup();
        let mut events = Vec::new();
        let mut intervals: Vec<(u64, Option<(u64, bool)>)> = Vec::new();
        for (i, p) in points.iter().enumerate() {
            if i % 2 == 0 {
                events.push(Event::Introduced(format!("{p}.0.0")));
                intervals.push((*p, None));
            } else {
                let inclusive = next() % 2 == 0;
                events.push(if inclusive {
                    Event::LastAffected(format!("{p}.0.0"))
                } else {
                    Event::Fixed(format!("{p}.0.0"))
                });
                intervals.last_mut().unwrap().1 = Some((*p, inclusive));
            }
        }
        // Shuffle: the matcher must sort.
        for i in (1..events.len()).rev() {
            events.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let range = OsvRange {
            kind: RangeKind::Semver,
            events,
        };
        for major in 0..22u64 {
            let want = intervals.iter().any(|(lo, hi)| {
                major >= *lo
                    && match hi {
                        None => true,
                        Some((h, true)) => major <= *h,
                        Some((h, false)) => major < *h,
                    }
            });
            let got = range
                .contains(Ecosystem::Npm, &format!("{major}.0.0"))
                .unwrap();
            assert_eq!(got, want, "{major}.0.0 in {range}");
        }
    }
}
