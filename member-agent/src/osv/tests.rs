use std::path::Path;

use isac_packages::range::parse_entry;
use isac_packages::{AffectedVersions, Ecosystem, Event, OsvRange, RangeKind, Verdict};

use super::convert::*;
use super::read::list_json_files;
use super::*;

const NPM_UNSCOPED: &str = include_str!("../../tests/fixtures/osv/real/npm/0-dns/MAL-2022-9.json");
const NPM_SCOPED_RANGES: &str =
    include_str!("../../tests/fixtures/osv/real/npm/@ctrl/tinycolor/MAL-2025-47141.json");
const PYPI: &str = include_str!("../../tests/fixtures/osv/real/pypi/3web-py/MAL-2024-9934.json");
const CRATES: &str =
    include_str!("../../tests/fixtures/osv/real/crates.io/rustdecimal/MAL-2022-1.json");
const WITHDRAWN: &str =
    include_str!("../../tests/fixtures/osv/real/withdrawn/npm/@ctrl/plex/MAL-2026-4377.json");
const HAND_WRITTEN: &str =
    include_str!("../../tests/fixtures/osv/hand-written/ISAC-EXAMPLE-2026-0001.json");

const ALL: [(&str, &str); 6] = [
    ("MAL-2022-9.json", NPM_UNSCOPED),
    ("MAL-2025-47141.json", NPM_SCOPED_RANGES),
    ("MAL-2024-9934.json", PYPI),
    ("MAL-2022-1.json", CRATES),
    ("MAL-2026-4377.json", WITHDRAWN),
    ("ISAC-EXAMPLE-2026-0001.json", HAND_WRITTEN),
];

fn one(name: &str, json: &str) -> OsvImport {
    let mut v = parse_osv(name, json).unwrap();
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn strings(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

fn publishable(d: &IndicatorDraft) -> isac_core::Statement {
    let mut d = d.clone();
    d.tlp = Some("clear".into());
    d.clone()
        .into_prepared("acme-bank", "2026-11-25T12:00:00Z".to_string())
        .unwrap_or_else(|e| panic!("{e}: {d:?}"))
        .statement
}

#[test]
fn npm_unscoped_real_record() {
    let imp = one("MAL-2022-9.json", NPM_UNSCOPED);
    assert_eq!(imp.osv_id, "MAL-2022-9");
    assert_eq!(imp.modified, "2022-06-20T20:12:58Z");
    assert_eq!(imp.withdrawn, None);
    assert_eq!(imp.drafts.len(), 1);
    let d = &imp.drafts[0];
    assert_eq!(d.kind.as_deref(), Some("package"));
    assert_eq!(d.purl.as_deref(), Some("pkg:npm/0-dns"));
    assert_eq!(d.versions, strings(&["*"]));
    assert_eq!(d.threat.as_deref(), Some("malicious"));
    assert_eq!(d.title.as_deref(), Some("Malicious code in 0-dns (npm)"));
    assert_eq!(
        d.labels,
        strings(&["osv:MAL-2022-9", "alias:GHSA-8p6v-2gf9-8hhm"])
    );
    assert_eq!(
        d.references,
        strings(&["https://github.com/advisories/GHSA-8p6v-2gf9-8hhm"])
    );
    assert_eq!(d.severity.as_deref(), Some("critical"));
    assert_eq!(d.confidence, Some(90));
    assert_eq!(d.tlp, None);
    assert_eq!(d.vuln_id, None);
    assert_eq!(
        (d.valid_from.as_ref(), d.valid_until.as_ref()),
        (None, None)
    );
    let desc = d.description.as_deref().unwrap();
    assert!(desc.starts_with("---\n_-= Per source details."), "{desc}");
    assert!(
        desc.ends_with("\n\nOSV: MAL-2022-9\nAliases: GHSA-8p6v-2gf9-8hhm"),
        "{desc}"
    );
}

#[test]
fn npm_scoped_with_ranges_real_record() {
    let imp = one("MAL-2025-47141.json", NPM_SCOPED_RANGES);
    let d = &imp.drafts[0];
    assert_eq!(d.purl.as_deref(), Some("pkg:npm/%40ctrl/tinycolor"));
    assert_eq!(d.versions, strings(&["*", ">=4.1.1 <=4.1.2"]));
    assert_eq!(
        d.title.as_deref(),
        Some("Malicious code in @ctrl/tinycolor (npm)")
    );
    assert_eq!(
        d.labels,
        strings(&["osv:MAL-2025-47141", "alias:GHSA-qjqf-7j6f-82c4"])
    );
}

#[test]
fn pypi_with_given_purl_real_record() {
    let imp = one("MAL-2024-9934.json", PYPI);
    assert_eq!(imp.modified, "2025-12-11T09:27:52Z");
    let d = &imp.drafts[0];
    assert_eq!(d.purl.as_deref(), Some("pkg:pypi/3web-py"));
    assert_eq!(d.versions, strings(&["1.0.0"]));
    assert_eq!(d.title.as_deref(), Some("Malicious code in 3web-py (PyPI)"));
    assert_eq!(d.labels, strings(&["osv:MAL-2024-9934"]));
    assert_eq!(
        d.references,
        strings(&[
            "https://www.cert.at/en/blog/2024/3/hobby-hunter-notes-pypi-under-attack",
            "https://blog.phylum.io/typosquatting-campaign-targets-python-developers/",
            "https://bad-packages.kam193.eu/pypi/package/3web-py",
        ])
    );
    assert!(d
        .description
        .as_deref()
        .unwrap()
        .ends_with("- infostealer\n\nOSV: MAL-2024-9934"));
}

#[test]
fn crates_io_real_record() {
    let imp = one("MAL-2022-1.json", CRATES);
    let d = &imp.drafts[0];
    assert_eq!(d.purl.as_deref(), Some("pkg:cargo/rustdecimal"));
    assert_eq!(d.versions, strings(&["*"]));
    assert_eq!(
        d.title.as_deref(),
        Some("Malicious code in rustdecimal (crates.io)")
    );
    assert_eq!(d.references.as_ref().map(Vec::len), Some(5));
    assert!(d
        .description
        .as_deref()
        .unwrap()
        .contains("(an attack called \"typosquatting\")"));
}

#[test]
fn withdrawn_real_record() {
    let imp = one("MAL-2026-4377.json", WITHDRAWN);
    assert_eq!(imp.osv_id, "MAL-2026-4377");
    assert_eq!(imp.withdrawn.as_deref(), Some("2026-05-26T17:12:48Z"));
    let d = &imp.drafts[0];
    assert_eq!(d.purl.as_deref(), Some("pkg:npm/%40ctrl/plex"));
    assert_eq!(d.versions, strings(&["6.0.0"]));
    assert_eq!(d.labels, strings(&["osv:MAL-2026-4377"]));
    assert!(d
        .description
        .as_deref()
        .unwrap()
        .ends_with("\n\nOSV: MAL-2026-4377\nWithdrawn: 2026-05-26T17:12:48Z"));
}

#[test]
fn hand_written_multi_ecosystem() {
    let imports = parse_osv("ISAC-EXAMPLE-2026-0001.json", HAND_WRITTEN).unwrap();
    assert_eq!(imports.len(), 2);
    let first = &imports[0];
    assert_eq!(first.osv_id, "ISAC-EXAMPLE-2026-0001");
    let got: Vec<(&str, Vec<&str>)> = first
        .drafts
        .iter()
        .map(|d| {
            (
                d.purl.as_deref().unwrap(),
                d.versions
                    .as_ref()
                    .unwrap()
                    .iter()
                    .map(String::as_str)
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "pkg:pypi/py-crypto-utils",
                vec![">=1.0 <1.2", ">=2.0 <=2.0.3"]
            ),
            ("pkg:golang/github.com/example-evil/mod", vec!["*"]),
            ("pkg:golang/github.com/example-evil/other", vec!["<1.4.2"]),
            (
                "pkg:maven/com.example.evil/evil-lib",
                vec!["1.0.0", "1.0.1"]
            ),
            ("pkg:gem/example-rest-client", vec![">=1.6.10 <1.6.14"]),
            ("pkg:nuget/Example.Evil.Package", vec!["2.0.0"]),
            ("pkg:composer/example-vendor/evil-package", vec!["*"]),
            ("pkg:npm/%40example-evil/pkg", vec!["1.2.3"]),
        ],
        "the Hackage package is skipped"
    );
    assert_eq!(first.skipped.len(), 1, "{:?}", first.skipped);
    assert!(
        first.skipped[0]
            .1
            .contains("ecosystem `Hackage` is not supported"),
        "{:?}",
        first.skipped
    );
    let d = &first.drafts[0];
    assert_eq!(
        d.title.as_deref(),
        Some("Hand-written example: one campaign, many ecosystems")
    );
    assert_eq!(
        d.labels,
        strings(&[
            "osv:ISAC-EXAMPLE-2026-0001",
            "alias:GHSA-xxxx-yyyy-zzzz",
            "alias:MAL-0000-isac-hand-written-1",
        ])
    );
    assert_eq!(
        d.references,
        strings(&["https://example.org/advisories/ISAC-EXAMPLE-2026-0001"])
    );
    assert_eq!(d.severity.as_deref(), Some("high"));
    assert_eq!(d.confidence, Some(70));
    assert_eq!(
        d.description.as_deref(),
        Some(
            "Hand-written test record (not real data).\nLine two.\n\nOSV: ISAC-EXAMPLE-2026-0001\nAliases: GHSA-xxxx-yyyy-zzzz, MAL-0000-isac-hand-written-1"
        )
    );

    let second = &imports[1];
    assert_eq!(second.modified, "2026-11-21T10:00:00.123Z");
    let d = &second.drafts[0];
    assert_eq!(d.purl.as_deref(), Some("pkg:npm/example-evil-typo"));
    assert_eq!(d.versions, strings(&["*"]));
    assert_eq!(
        d.title.as_deref(),
        Some("MAL-0000-isac-hand-written-1: malicious code in example-evil-typo")
    );
    assert_eq!(d.references, None);
    assert_eq!(d.severity.as_deref(), Some("critical"));
    assert_eq!(
        d.description.as_deref(),
        Some("OSV: MAL-0000-isac-hand-written-1")
    );
}

#[test]
fn every_fixture_draft_is_publishable() {
    let mut n = 0;
    for (name, json) in ALL {
        for imp in parse_osv(name, json).unwrap() {
            for d in &imp.drafts {
                let s = publishable(d);
                assert_eq!(s.kind(), "package");
                assert!(s.canonical_bytes().len() <= isac_core::statement::MAX_PAYLOAD_BYTES);
                n += 1;
            }
        }
    }
    assert_eq!(n, 5 + 8 + 1);
}

#[test]
fn directory_loading_is_recursive_and_sorted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/osv");
    let imports: Vec<OsvImport> = load_osv_path(&root)
        .unwrap()
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let ids: Vec<&str> = imports.iter().map(|i| i.osv_id.as_str()).collect();
    // Sorted by path: hand-written/, real/crates.io, real/npm/0-dns,
    // real/npm/@ctrl, real/pypi, real/withdrawn. README.md is skipped.
    assert_eq!(
        ids,
        [
            "ISAC-EXAMPLE-2026-0001",
            "MAL-0000-isac-hand-written-1",
            "MAL-2022-1",
            "MAL-2022-9",
            "MAL-2025-47141",
            "MAL-2024-9934",
            "MAL-2026-4377",
        ]
    );
    // A single file.
    let file = root.join("real/npm/0-dns/MAL-2022-9.json");
    let imports = load_osv_path(&file).unwrap();
    assert_eq!(imports[0].as_ref().unwrap().osv_id, "MAL-2022-9");
    // An error names the file, and the walk goes on.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    std::fs::write(dir.path().join("a/b/bad.json"), "{\"id\":").unwrap();
    std::fs::write(dir.path().join("a/notes.txt"), "not json").unwrap();
    std::fs::write(dir.path().join("a/c.json"), NPM_UNSCOPED).unwrap();
    let loaded = load_osv_path(dir.path()).unwrap();
    assert_eq!(loaded.len(), 2);
    let e = loaded[0].as_ref().unwrap_err().to_string();
    assert!(
        e.contains("bad.json") && e.contains("not valid OSV JSON"),
        "{e}"
    );
    assert_eq!(loaded[1].as_ref().unwrap().osv_id, "MAL-2022-9");
    // No JSON at all.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("x.txt"), "").unwrap();
    let e = load_osv_path(empty.path()).unwrap_err();
    assert!(matches!(e, OsvError::NoJsonFiles { .. }), "{e}");
    // Missing path.
    let e = load_osv_path(&dir.path().join("nope")).unwrap_err();
    assert!(matches!(e, OsvError::Io { .. }), "{e}");
}

#[test]
fn oversized_inputs_are_refused() {
    let big = format!(
        "{{\"id\":\"MAL-1\",\"modified\":\"2026-01-01T00:00:00Z\",\"details\":\"{}\"}}",
        "a".repeat(MAX_FILE_BYTES as usize)
    );
    let e = parse_osv("big.json", &big).unwrap_err();
    assert!(matches!(e, OsvError::TooLarge { .. }), "{e}");
    assert!(e.to_string().starts_with("big.json: "), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    std::fs::write(&path, &big).unwrap();
    let e = load_osv_path(&path).unwrap().remove(0).unwrap_err();
    assert!(matches!(e, OsvError::TooLarge { .. }), "{e}");
    // In a directory, the large file is one error and the rest is read.
    std::fs::write(dir.path().join("small.json"), NPM_UNSCOPED).unwrap();
    let loaded = load_osv_path(dir.path()).unwrap();
    assert_eq!(loaded.len(), 2);
    let e = loaded[0].as_ref().unwrap_err();
    assert!(matches!(e, OsvError::TooLarge { .. }), "{e}");
    assert!(loaded[1].is_ok());

    // The directory bounds, with small limits.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        std::fs::write(dir.path().join(format!("{i}.json")), "[]").unwrap();
    }
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    assert_eq!(list_json_files(dir.path(), 5, 2, 100).unwrap().len(), 5);
    let e = list_json_files(dir.path(), 4, 2, 100).unwrap_err();
    assert!(matches!(e, OsvError::TooManyFiles { max: 4, .. }), "{e}");
    let e = list_json_files(dir.path(), 5, 1, 100).unwrap_err();
    assert!(matches!(e, OsvError::TooManyDirs { .. }), "{e}");
    let e = list_json_files(dir.path(), 5, 2, 9).unwrap_err();
    assert!(matches!(e, OsvError::TooMuchData { .. }), "{e}");

    // Too many affected packages in one record.
    let affected = vec![r#"{"package":{"ecosystem":"npm","name":"x"}}"#; MAX_AFFECTED + 1];
    let json = format!(
        r#"{{"id":"MAL-1","modified":"2026-01-01T00:00:00Z","affected":[{}]}}"#,
        affected.join(",")
    );
    let e = parse_osv("many.json", &json).unwrap_err().to_string();
    assert!(e.contains("1001 affected packages"), "{e}");
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    // Nesting where records are expected: a type error, never a deep recursion.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "not valid OSV JSON"),
        ("garbage", "not json".into(), "not valid OSV JSON"),
        ("truncated", r#"{"id":"MAL-1""#.into(), "not valid OSV JSON"),
        ("number", "42".into(), "found a number"),
        ("string", "\"MAL-1\"".into(), "found a string"),
        ("array of numbers", "[1]".into(), "an OSV record"),
        (
            "no id",
            r#"{"modified":"2026-01-01T00:00:00Z"}"#.into(),
            "missing `id`",
        ),
        (
            "no id in array",
            r#"[{"id":"MAL-1","modified":"2026-01-01T00:00:00Z"},{"modified":"x"}]"#.into(),
            "record 1: missing `id`",
        ),
        (
            "empty id",
            r#"{"id":"","modified":"2026-01-01T00:00:00Z"}"#.into(),
            "missing `id`",
        ),
        (
            "no modified",
            r#"{"id":"MAL-1"}"#.into(),
            "(MAL-1): missing `modified`",
        ),
        (
            "bad id",
            r#"{"id":"MAL 1\n","modified":"2026-01-01T00:00:00Z"}"#.into(),
            "is not an OSV id",
        ),
        (
            "bad modified",
            r#"{"id":"MAL-1","modified":"yesterday"}"#.into(),
            "`modified` is not an RFC 3339 timestamp",
        ),
        (
            "bad withdrawn",
            r#"{"id":"MAL-1","modified":"2026-01-01T00:00:00Z","withdrawn":"\u0000"}"#.into(),
            "`withdrawn` is not",
        ),
        (
            "wrong type",
            r#"{"id":"MAL-1","modified":"2026-01-01T00:00:00Z","affected":{}}"#.into(),
            "not valid OSV JSON",
        ),
        (
            "duplicate id",
            r#"{"id":"MAL-1","id":"MAL-2","modified":"2026-01-01T00:00:00Z"}"#.into(),
            "duplicate field",
        ),
        ("deep nesting", deep, "not valid OSV JSON"),
    ];
    for (what, json, expect) in cases {
        let e = parse_osv("t.json", &json)
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"))
            .to_string();
        assert!(e.starts_with("t.json"), "{what}: {e}");
        assert!(e.contains(expect), "{what}: {e}");
    }
    // A BOM and unknown fields are fine; an empty array is no records.
    let ok = "\u{feff}{\"id\":\"MAL-1\",\"modified\":\"2026-01-01T00:00:00Z\",\"x\":{\"y\":[1]}}";
    assert_eq!(parse_osv("t.json", ok).unwrap()[0].drafts.len(), 0);
    assert!(parse_osv("t.json", " [ ] ").unwrap().is_empty());
    // Deep nesting in an ignored field is skipped without recursion.
    let deep_ignored = format!(
        r#"{{"id":"MAL-1","modified":"2026-01-01T00:00:00Z","database_specific":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(parse_osv("t.json", &deep_ignored).unwrap().len(), 1);
    let deep_unknown = format!(
        r#"{{"id":"MAL-1","modified":"2026-01-01T00:00:00Z","affected":[{{"package":{{"name":"x","ecosystem":"npm","a":{}1{}}}}}]}}"#,
        "{\"a\":".repeat(100_000),
        "}".repeat(100_000)
    );
    assert_eq!(
        parse_osv("t.json", &deep_unknown).unwrap()[0].drafts.len(),
        1
    );
}

/// A tree as ossf/malicious-packages publishes it: reports with ids,
/// reports awaiting one (`MAL-0000-<name>.json`, `"id": ""` or none),
/// a file that is not JSON, an array with one bad record, a record in
/// an ecosystem we cannot name. Every record comes back, each good one
/// read and each bad one named by its file.
#[test]
fn every_record_of_a_mixed_tree_is_read_or_named() {
    let dir = tempfile::tempdir().unwrap();
    let npm = dir.path().join("osv/malicious/npm");
    std::fs::create_dir_all(npm.join("0-dns")).unwrap();
    std::fs::create_dir_all(npm.join("evil-new")).unwrap();
    std::fs::write(npm.join("0-dns/MAL-2022-9.json"), NPM_UNSCOPED).unwrap();
    std::fs::write(
        npm.join("evil-new/MAL-0000-evil-new.json"),
        r#"{"id":"","modified":"2026-11-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"evil-new"}}]}"#,
    )
    .unwrap();
    std::fs::write(
        npm.join("evil-new/MAL-0000-evil-older.json"),
        r#"{"modified":"2026-11-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"evil-older"}}]}"#,
    )
    .unwrap();
    std::fs::write(npm.join("broken.json"), "{\"id\": \"MAL-2026-1\",").unwrap();
    std::fs::write(
        npm.join("array.json"),
        r#"[{"id":"MAL-2026-2","modified":"2026-11-01T00:00:00Z"},{"id":"MAL-2026-3"}]"#,
    )
    .unwrap();
    std::fs::write(
        npm.join("hackage.json"),
        r#"{"id":"MAL-2026-4","modified":"2026-11-01T00:00:00Z","affected":[{"package":{"ecosystem":"Hackage","name":"evil"}}]}"#,
    )
    .unwrap();
    let loaded = load_osv_path(dir.path()).unwrap();
    let shown: Vec<String> = loaded
        .iter()
        .map(|r| match r {
            Ok(i) => format!("ok {} {}", i.osv_id, i.drafts.len()),
            Err(OsvError::NoId { at }) => format!("no id {at}"),
            Err(e) => format!("error {e}"),
        })
        .collect();
    let root = dir.path().display().to_string();
    let want = [
        "ok MAL-2022-9 1".to_string(),
        "ok MAL-2026-2 0".to_string(),
        format!(
            "error {root}/osv/malicious/npm/array.json, record 1 (MAL-2026-3): missing `modified`"
        ),
        format!("error {root}/osv/malicious/npm/broken.json: not valid OSV JSON"),
        format!("no id {root}/osv/malicious/npm/evil-new/MAL-0000-evil-new.json"),
        format!("no id {root}/osv/malicious/npm/evil-new/MAL-0000-evil-older.json"),
        "ok MAL-2026-4 0".to_string(),
    ];
    // Sorted by path: 0-dns/, array.json, broken.json, evil-new/, hackage.json.
    assert_eq!(shown.len(), want.len(), "{shown:#?}");
    for (got, want) in shown.iter().zip(&want) {
        assert!(got.starts_with(want.as_str()), "{got}\n  expected {want}");
    }
    let hackage = loaded[6].as_ref().unwrap();
    assert_eq!(hackage.skipped.len(), 1);
    assert!(
        hackage.skipped[0].1.contains("`Hackage` is not supported"),
        "{:?}",
        hackage.skipped
    );
}

#[test]
fn hostile_record_stays_within_statement_limits() {
    let long_version = "9".repeat(MAX_VERSION_CHARS - 10);
    let versions: Vec<String> = (0..2000).map(|i| format!("{long_version}{i}")).collect();
    let short_versions: Vec<String> = (0..300).map(|i| format!("1.0.{i}")).collect();
    let refs: Vec<serde_json::Value> = (0..1000)
        .map(|i| {
            serde_json::json!({"url": format!("https://example.org/{}/{i}", "\"".repeat(1900))})
        })
        .collect();
    let record = serde_json::json!({
        "id": "MAL-2026-1",
        "modified": "2026-01-01T00:00:00Z",
        "aliases": (0..20).map(|i| format!("GHSA-{i}")).collect::<Vec<_>>(),
        "summary": format!("evil\u{202e}\n\t{}\u{0}", "\"\u{1F600}".repeat(500)),
        "details": format!("{}\u{7}\r\n{}", "\u{1F600}".repeat(10_000), "\"".repeat(50_000)),
        "affected": [
            {"package": {"ecosystem": "npm", "name": "evil"}, "versions": versions},
            {"package": {"ecosystem": "npm", "name": "evil2"}, "versions": short_versions},
            {"package": {"ecosystem": "npm", "name": "evil3"},
             "versions": ["1.0 || *", "", "a,b", "ok-1"],
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "1", "fixed": "2"}]},
                        {"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}]}]},
            {"package": {"ecosystem": "npm", "name": "@/x"}},
            {"package": {"ecosystem": "npm", "name": "a b"}},
            {"package": {"ecosystem": "PyPI", "name": "x", "purl": "pkg:pypi/a@1@2"}},
            {"package": {"purl": "not a purl"}},
            {},
        ],
        "references": refs,
    })
    .to_string();
    let imp = one("hostile.json", &record);
    let purls: Vec<&str> = imp
        .drafts
        .iter()
        .map(|d| d.purl.as_deref().unwrap())
        .collect();
    assert_eq!(
        purls,
        [
            "pkg:npm/evil",
            "pkg:npm/evil2",
            "pkg:npm/evil3",
            "pkg:pypi/x"
        ]
    );
    assert_eq!(imp.drafts[0].versions, strings(&["*"]), "widened");
    assert_eq!(imp.drafts[1].versions, strings(&["*"]), "more than 256");
    assert_eq!(imp.drafts[2].versions, strings(&["ok-1", ">=2.0"]));
    assert_eq!(imp.drafts[3].versions, strings(&["*"]));
    let d = &imp.drafts[0];
    assert!(d
        .description
        .as_deref()
        .unwrap()
        .contains("covers every version"));
    assert_eq!(d.labels.as_ref().unwrap().len(), 1 + MAX_ALIASES);
    let title = d.title.as_deref().unwrap();
    assert!(title.starts_with("evil \"\u{1F600}"), "{title}");
    assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
    assert!(title.ends_with('…'));
    for d in &imp.drafts {
        let s = publishable(d);
        let size = s.canonical_bytes().len();
        // Room for a full audience (64 commitments) stays.
        assert!(
            size + 64 * 80 <= isac_core::statement::MAX_PAYLOAD_BYTES,
            "{size}"
        );
    }
}

#[test]
fn given_purls_are_stripped() {
    for (given, want) in [
        ("pkg:npm/%40scope/name@1.0.0", "pkg:npm/%40scope/name"),
        ("pkg:npm/@scope/name@1.0.0", "pkg:npm/%40scope/name"),
        ("pkg:npm/@scope/name", "pkg:npm/%40scope/name"),
        ("pkg:NPM/left-pad@1.3.0?foo=bar#sub/dir", "pkg:npm/left-pad"),
        ("pkg:pypi/requests", "pkg:pypi/requests"),
        (
            "pkg:golang/github.com/a/b@v1.2.3",
            "pkg:golang/github.com/a/b",
        ),
        ("pkg:maven/org.x/y@1?type=jar", "pkg:maven/org.x/y"),
    ] {
        assert_eq!(normalize_purl(given).as_deref(), Ok(want), "{given}");
    }
    for bad in [
        "npm/x",
        "pkg:",
        "pkg:npm",
        "pkg:npm/",
        "pkg:npm/a@b@1",
        "pkg:npm/a b",
        "pkg:9pm/x",
        "pkg:npm/@",
    ] {
        assert!(normalize_purl(bad).is_err(), "{bad}");
    }
}

#[test]
fn ecosystem_purls() {
    for (eco, name, want) in [
        ("npm", "left-pad", "pkg:npm/left-pad"),
        ("npm", "@babel/core", "pkg:npm/%40babel/core"),
        ("PyPI", "Zope_Interface", "pkg:pypi/zope-interface"),
        ("PyPI", "a.__b", "pkg:pypi/a-b"),
        ("crates.io", "serde_json", "pkg:cargo/serde_json"),
        ("Go", "github.com/a/b/v2", "pkg:golang/github.com/a/b/v2"),
        (
            "Maven",
            "org.apache:commons",
            "pkg:maven/org.apache/commons",
        ),
        ("RubyGems", "rails", "pkg:gem/rails"),
        ("NuGet", "Newtonsoft.Json", "pkg:nuget/Newtonsoft.Json"),
        (
            "Packagist",
            "monolog/monolog",
            "pkg:composer/monolog/monolog",
        ),
        ("npm", "weird+name#x", "pkg:npm/weird%2Bname%23x"),
    ] {
        assert_eq!(
            ecosystem_purl(eco, name).as_deref(),
            Ok(want),
            "{eco} {name}"
        );
        publishable(&IndicatorDraft {
            purl: Some(want.into()),
            title: Some("t".into()),
            ..Default::default()
        });
    }
    for (eco, name) in [
        ("npm", "@scope"),
        ("npm", "@scope/"),
        ("npm", "a/b"),
        ("Go", "github.com//b"),
        ("Maven", "no-colon"),
        ("Maven", "a:b:c"),
        ("Packagist", "novendor"),
        ("crates.io", "a\nb"),
        ("Hackage", "x"),
        ("npm", ""),
    ] {
        assert!(ecosystem_purl(eco, name).is_err(), "{eco} {name:?}");
    }
}

fn ranged(kind: RangeKind, evs: &[(&str, &str)]) -> OsvRange {
    let events = evs
        .iter()
        .map(|(k, v)| {
            let v = v.to_string();
            match *k {
                "i" => Event::Introduced(v),
                "f" => Event::Fixed(v),
                "l" => Event::LastAffected(v),
                _ => Event::Limit(v),
            }
        })
        .collect();
    OsvRange { kind, events }
}

#[test]
fn range_events_become_version_ranges() {
    let r = |evs: &[(&str, &str)]| range_entries(&ranged(RangeKind::Ecosystem, evs), None);
    assert_eq!(r(&[("i", "0")]), ["*"]);
    assert_eq!(r(&[("i", "1.0"), ("f", "1.5")]), [">=1.0 <1.5"]);
    assert_eq!(r(&[("i", "0"), ("f", "1.5")]), ["<1.5"]);
    assert_eq!(r(&[("i", "1.0"), ("l", "1.5")]), [">=1.0 <=1.5"]);
    assert_eq!(
        r(&[("i", "1"), ("f", "2"), ("i", "3"), ("f", "4"), ("i", "5")]),
        [">=1 <2", ">=3 <4", ">=5"]
    );
    assert_eq!(r(&[("i", "1"), ("x", "9")]), [">=1 <9"]);
    // No `introduced` is against the schema; read as "below".
    assert_eq!(r(&[("f", "2")]), ["<2"]);
    assert!(r(&[]).is_empty());
    // Events out of order are sorted by the ecosystem's order.
    let pypi = |evs: &[(&str, &str)]| {
        range_entries(&ranged(RangeKind::Ecosystem, evs), Some(Ecosystem::PyPI))
    };
    assert_eq!(
        pypi(&[("f", "1.0"), ("i", "1.0.dev1"), ("i", "2.0"), ("l", "2.1")]),
        [">=1.0.dev1 <1.0", ">=2.0 <=2.1"]
    );
    let bad = RawRange {
        ty: Some("ECOSYSTEM".into()),
        events: Some(vec![RawEvent {
            introduced: Some("1 2".into()),
            fixed: None,
            last_affected: None,
            limit: None,
        }]),
    };
    assert!(osv_range(&bad).is_err());
    assert_eq!(finish_versions(vec![]), (vec!["*".to_string()], false));
}

/// The `versions` entries made from an OSV range are read back by
/// `parse_entry` to the same affected versions as the schema's evaluation
/// of the range itself, for every version of a grid around its events.
#[test]
fn range_entries_round_trip_to_the_same_constraint() {
    use RangeKind::{Ecosystem as Eco, Semver};
    /// Ecosystem, range type, events, versions to try.
    type Case<'a> = (
        Ecosystem,
        RangeKind,
        &'a [(&'a str, &'a str)],
        &'a [&'a str],
    );
    let cases: &[Case] = &[
        (
            Ecosystem::PyPI,
            Eco,
            &[
                ("i", "1.0a1"),
                ("f", "1.0"),
                ("i", "2.0.dev1"),
                ("l", "2.0.post1"),
            ],
            &[
                "0.9",
                "1.0.dev1",
                "1.0a1",
                "1.0rc1",
                "1.0",
                "1.1",
                "2.0.dev0",
                "2.0.dev1",
                "2.0",
                "2.0.post1",
                "2.0.post2",
                "3",
            ],
        ),
        (
            Ecosystem::PyPI,
            Eco,
            &[("l", "3.0"), ("i", "2.5"), ("f", "1.5"), ("i", "0")],
            &["0.1", "1.4", "1.5", "2.0", "2.5", "2.9", "3.0", "3.0.1"],
        ),
        (
            Ecosystem::Npm,
            Semver,
            &[
                ("i", "0"),
                ("f", "1.2.3"),
                ("i", "2.0.0-beta.1"),
                ("f", "2.0.1"),
            ],
            &[
                "0.0.1",
                "1.2.2",
                "1.2.3-rc.1",
                "1.2.3",
                "1.9.9",
                "2.0.0-alpha",
                "2.0.0-beta.1",
                "2.0.0-beta.2",
                "2.0.0",
                "2.0.1",
                "3.0.0",
            ],
        ),
        (
            Ecosystem::Npm,
            Eco,
            &[("i", "1.0.0"), ("x", "1.5.0")],
            &["0.9.0", "1.0.0", "1.4.9", "1.5.0", "2.0.0"],
        ),
        (
            Ecosystem::Cargo,
            Semver,
            &[("i", "0.1.0"), ("l", "0.1.5"), ("i", "0.3.0")],
            &[
                "0.0.9", "0.1.0", "0.1.5", "0.1.6", "0.2.0", "0.3.0", "9.0.0",
            ],
        ),
        (
            Ecosystem::Go,
            Eco,
            &[("i", "0"), ("f", "1.4.0")],
            &[
                "v0.0.0-20210101000000-abcdef123456",
                "v1.3.9",
                "v1.4.0",
                "v1.5.0",
            ],
        ),
        (
            Ecosystem::Maven,
            Eco,
            &[("i", "2.0-alpha-1"), ("f", "2.17.1")],
            &[
                "1.9",
                "2.0-alpha-1",
                "2.0-beta",
                "2.0",
                "2.17.0",
                "2.17.1",
                "2.18",
            ],
        ),
    ];
    for (eco, kind, evs, grid) in cases {
        let range = ranged(*kind, evs);
        let entries = range_entries(&range, Some(*eco));
        let read_back = AffectedVersions {
            constraints: entries
                .iter()
                .flat_map(|e| parse_entry(Some(*eco), e))
                .collect(),
        };
        let direct = AffectedVersions::from_osv(&[], vec![range.clone()]);
        for v in *grid {
            let want = direct.matches(Some(*eco), v);
            let got = read_back.matches(Some(*eco), v);
            assert!(
                want.is_affected() == got.is_affected(),
                "{eco} {range} as {entries:?}, {v}: direct {want:?}, read back {got:?}"
            );
            assert!(
                !matches!(got, Verdict::Unknown(_)),
                "{eco} {entries:?} {v}: {got:?}"
            );
        }
    }
}

#[test]
fn same_package_twice_is_one_draft() {
    let json = r#"{"id":"MAL-1","modified":"2026-01-01T00:00:00Z","affected":[
        {"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]},
        {"package":{"ecosystem":"npm","name":"x","purl":"pkg:npm/x@2.0.0"},"versions":["2.0.0"]},
        {"package":{"ecosystem":"npm","name":"x"}}]}"#;
    let imp = one("t.json", json);
    assert_eq!(imp.drafts.len(), 1);
    assert_eq!(imp.drafts[0].versions, strings(&["1.0.0", "2.0.0", "*"]));
}

#[test]
fn titles_and_details_are_cleaned() {
    assert_eq!(clean_line("  a\n\tb\u{202e}c \u{0} "), "a b c");
    let t = truncate_title("é".repeat(500));
    assert_eq!(t.chars().count(), MAX_TITLE_CHARS);
    assert_eq!(truncate_title("short".into()), "short");
    assert_eq!(
        clean_details("\n a\r\nb\rc\u{0}\u{202e}\td \n"),
        "a\nb\nc\td"
    );
    let long = clean_details(&"x".repeat(20_000));
    assert!(long.ends_with("\n[… truncated]"));
    assert!(long.chars().count() <= MAX_DETAILS_CHARS + 20);
}

#[test]
fn a_given_purl_the_packages_parser_refuses_is_not_imported() {
    // `isac_core::observable::parse_purl` (the lenient receive-side check)
    // takes it; the packages parser needs a Maven group.
    let bad = "pkg:maven/log4j-core@2.14.1";
    assert!(isac_core::observable::parse_purl(bad).is_ok());
    let record = serde_json::json!({
        "id": "MAL-2026-2",
        "modified": "2026-01-01T00:00:00Z",
        "affected": [{"package": {"purl": bad}, "versions": ["2.14.1"]}],
    })
    .to_string();
    let imp = one("strict.json", &record);
    assert!(imp.drafts.is_empty());
    let why: Vec<&String> = imp.skipped.iter().map(|(_, why)| why).collect();
    assert!(
        why.iter()
            .any(|w| w.contains("needs a namespace (the groupId)")),
        "{why:?}"
    );
}
