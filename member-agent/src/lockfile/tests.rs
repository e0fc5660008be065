use super::*;

const NPM_V3: &str = include_str!("../../tests/fixtures/lockfiles/package-lock.json");
const NPM_V1: &str = include_str!("../../tests/fixtures/lockfiles/package-lock-v1.json");
const CARGO_LOCK: &str = include_str!("../../tests/fixtures/lockfiles/Cargo.lock");
const POETRY_LOCK: &str = include_str!("../../tests/fixtures/lockfiles/poetry.lock");
const REQUIREMENTS: &str = include_str!("../../tests/fixtures/lockfiles/requirements.txt");
const GO_SUM: &str = include_str!("../../tests/fixtures/lockfiles/go.sum");

fn dep(ecosystem: &str, namespace: Option<&str>, name: &str, version: &str) -> Dependency {
    Dependency {
        ecosystem: ecosystem.into(),
        namespace: namespace.map(Into::into),
        name: name.into(),
        version: version.into(),
    }
}

fn list(ecosystem: &str, entries: &[(Option<&str>, &str, &str)]) -> Vec<Dependency> {
    entries
        .iter()
        .map(|(ns, name, version)| dep(ecosystem, *ns, name, version))
        .collect()
}

fn vs(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|s| s.to_string()).collect()
}

/// The dependencies of `deps` that the indicator matches, as `name@version`.
fn hits(purl: &str, versions: &[&str], deps: &[Dependency]) -> Vec<String> {
    let versions = vs(versions);
    deps.iter()
        .filter(|d| matches(purl, &versions, d).is_affected())
        .map(|d| format!("{}@{}", d.name, d.version))
        .collect()
}

#[test]
fn npm_v3_lockfile() {
    let deps = parse_lockfile("web/package-lock.json", NPM_V3).unwrap();
    let expected = list(
        "npm",
        &[
            (None, "chalk", "2.4.2"),
            (None, "debug", "2.6.9"),
            (None, "express", "4.18.2"),
            (None, "js-tokens", "4.0.0"),
            // node_modules/ms and packages/shared-ui/node_modules/ms: once.
            (None, "ms", "2.0.0"),
            // node_modules/send/node_modules/ms (nested).
            (None, "ms", "2.1.3"),
            (None, "send", "0.18.0"),
            // node_modules/string-width-cjs is an alias of string-width.
            (None, "string-width", "4.2.3"),
            (None, "string-width", "5.1.2"),
            (None, "undici-types", "5.26.5"),
            (Some("@babel"), "code-frame", "7.22.13"),
            (Some("@babel"), "code-frame", "7.23.5"),
            (Some("@babel"), "highlight", "7.23.4"),
            (Some("@isaacs"), "cliui", "8.0.2"),
            (Some("@types"), "node", "20.11.19"),
        ],
    );
    // The root "", the `link: true` entry and the workspace folder
    // `packages/shared-ui` are not dependencies.
    assert_eq!(deps, expected);
    assert_eq!(
        parse_lockfile("npm-shrinkwrap.json", NPM_V3).unwrap(),
        expected
    );
}

#[test]
fn npm_v1_lockfile() {
    let deps = parse_lockfile("package-lock.json", NPM_V1).unwrap();
    let expected = list(
        "npm",
        &[
            (None, "accepts", "1.3.8"),
            (None, "body-parser", "1.19.0"),
            (None, "bytes", "3.1.0"),
            (None, "debug", "2.6.9"), // nested under body-parser
            (None, "debug", "4.3.4"),
            (None, "lodash", "4.17.20"), // "lodash-legacy": "npm:lodash@4.17.20"
            (None, "mime-db", "1.52.0"),
            (None, "mime-types", "2.1.35"),
            (None, "ms", "2.0.0"), // nested two levels deep
            (None, "ms", "2.1.2"),
            (None, "negotiator", "0.6.3"),
            (None, "qs", "6.11.0"),
            (None, "qs", "6.7.0"),
            (Some("@types"), "node", "14.18.63"),
        ],
    );
    // "admin-theme": "file:../admin-theme" is local code: skipped.
    assert_eq!(deps, expected);
}

#[test]
fn npm_matching() {
    let deps = parse_lockfile("package-lock.json", NPM_V3).unwrap();
    // Scoped names, percent-encoded or not, case-insensitively.
    for purl in [
        "pkg:npm/%40babel/code-frame@7.23.5",
        "pkg:npm/@babel/code-frame@7.23.5",
        "pkg:npm/%40Babel/Code-Frame@7.23.5",
    ] {
        assert_eq!(hits(purl, &[], &deps), ["code-frame@7.23.5"], "{purl}");
    }
    assert_eq!(
        hits("pkg:npm/%40babel/code-frame", &[], &deps),
        ["code-frame@7.22.13", "code-frame@7.23.5"]
    );
    // The scope is part of the name.
    assert!(hits("pkg:npm/code-frame", &[], &deps).is_empty());
    assert!(hits("pkg:npm/%40other/code-frame", &[], &deps).is_empty());
    assert!(hits("pkg:npm/%40babel/highlight@7.23.5", &[], &deps).is_empty());
    // Ranges.
    assert_eq!(
        hits("pkg:npm/%40types/node", &[">=20.0.0 <20.11.20"], &deps),
        ["node@20.11.19"]
    );
    assert!(hits("pkg:npm/%40types/node", &["<20.11.19", ">20.11.19"], &deps).is_empty());
    // A nested copy is found; the exact version picks it out.
    assert_eq!(hits("pkg:npm/ms", &["2.1.3"], &deps), ["ms@2.1.3"]);
    assert_eq!(hits("pkg:npm/ms", &["*"], &deps), ["ms@2.0.0", "ms@2.1.3"]);
    assert!(hits("pkg:npm/ms", &["2.1.2"], &deps).is_empty());
    // An alias is checked under its real name, not its folder name.
    assert_eq!(
        hits("pkg:npm/string-width@4.2.3", &[], &deps),
        ["string-width@4.2.3"]
    );
    assert!(hits("pkg:npm/string-width-cjs", &[], &deps).is_empty());
    // Another ecosystem with the same name is another package.
    assert!(hits("pkg:pypi/chalk", &[], &deps).is_empty());
    let v1 = parse_lockfile("package-lock.json", NPM_V1).unwrap();
    assert_eq!(
        hits("pkg:npm/lodash", &["<4.17.21"], &v1),
        ["lodash@4.17.20"]
    );
    assert_eq!(hits("pkg:npm/debug@2.6.9", &[], &v1), ["debug@2.6.9"]);
}

#[test]
fn cargo_lock() {
    let deps = parse_lockfile("Cargo.lock", CARGO_LOCK).unwrap();
    let expected = list(
        "cargo",
        &[
            (None, "aho-corasick", "1.1.2"),
            (None, "bitflags", "1.3.2"),
            (None, "bitflags", "2.4.2"),
            (None, "inventory-svc", "0.4.0"),
            (None, "itoa", "1.0.10"),
            (None, "memchr", "2.7.1"),
            (None, "regex", "1.10.3"),
            (None, "regex-automata", "0.4.5"),
            (None, "regex-syntax", "0.8.2"),
            (None, "ryu", "1.0.17"),
            (None, "serde", "1.0.197"),
            (None, "serde_json", "1.0.114"),
            (None, "telemetry", "0.2.0-alpha.3"),
        ],
    );
    assert_eq!(deps, expected);

    // `-` and `_` are the same in crate names; case is not folded.
    assert_eq!(
        hits("pkg:cargo/serde-json@1.0.114", &[], &deps),
        ["serde_json@1.0.114"]
    );
    assert!(hits("pkg:cargo/Serde_json", &[], &deps).is_empty());
    assert!(hits("pkg:cargo/serde_json@1.0.115", &[], &deps).is_empty());
    assert_eq!(
        hits("pkg:cargo/bitflags", &["<2"], &deps),
        ["bitflags@1.3.2"]
    );
    assert_eq!(
        hits("pkg:cargo/bitflags", &[">=2.0.0, <2.4.3"], &deps),
        ["bitflags@2.4.2"]
    );
    // Pre-releases sort before their release.
    assert_eq!(
        hits("pkg:cargo/telemetry", &["<0.2.0"], &deps),
        ["telemetry@0.2.0-alpha.3"]
    );
    assert_eq!(
        hits(
            "pkg:cargo/telemetry",
            &[">=0.2.0-alpha.1 <0.2.0-beta"],
            &deps
        ),
        ["telemetry@0.2.0-alpha.3"]
    );
    assert!(hits("pkg:cargo/telemetry", &["=0.2.0", ">=0.2.0-alpha.4"], &deps).is_empty());
    assert!(hits("pkg:npm/regex", &[], &deps).is_empty());
}

#[test]
fn poetry_lock() {
    let deps = parse_lockfile("poetry.lock", POETRY_LOCK).unwrap();
    let expected = list(
        "pypi",
        &[
            (None, "certifi", "2024.2.2"),
            (None, "charset-normalizer", "3.3.2"),
            (None, "idna", "3.6"),
            (None, "internal-auth", "1.4.0"),
            (None, "requests", "2.31.0"),
            (None, "typing-extensions", "4.9.0"),
            (None, "urllib3", "2.2.1"),
            (None, "zope.interface", "6.2"),
        ],
    );
    assert_eq!(deps, expected);

    // PEP 503 names.
    assert_eq!(
        hits("pkg:pypi/Zope_Interface@6.2", &[], &deps),
        ["zope.interface@6.2"]
    );
    assert_eq!(
        hits("pkg:pypi/typing_extensions", &["4.9.0"], &deps),
        ["typing-extensions@4.9.0"]
    );
    assert_eq!(
        hits("pkg:pypi/charset.normalizer", &["<=3.3.2"], &deps),
        ["charset-normalizer@3.3.2"]
    );
    assert!(hits("pkg:pypi/charset.normalizer", &[">=3.0,<3.3.2"], &deps).is_empty());
    assert!(hits("pkg:pypi/charset-normaliser", &[], &deps).is_empty());
    // No version anywhere: every version.
    assert_eq!(hits("pkg:pypi/requests", &[], &deps), ["requests@2.31.0"]);
    assert!(hits("pkg:pypi/requests@2.31.1", &[], &deps).is_empty());
    assert_eq!(hits("pkg:pypi/idna", &["3.6.0"], &deps), ["idna@3.6"]);
}

#[test]
fn poetry_subtables_and_multiline_strings_are_not_packages() {
    let lock = r#"
[[package]]
name = "weird"
version = "1.0"
description = """
name = "not-a-package"
version = "6.6.6"
"""
files = [
{file = "weird-1.0.tar.gz", hash = "sha256:00"},
]

[package.dependencies]
version = ">=2"
name = {version = "1.0", optional = true}

[package.extras]
all = ["name", "version"]

[metadata]
lock-version = "2.0"
"#;
    assert_eq!(
        parse_lockfile("poetry.lock", lock).unwrap(),
        [dep("pypi", None, "weird", "1.0")]
    );
    // A lockfile of a project without dependencies.
    let empty = "package = []\n\n[metadata]\nlock-version = \"2.0\"\n";
    assert!(parse_lockfile("poetry.lock", empty).unwrap().is_empty());
    // Literal strings and trailing comments are fine too.
    let lock = "[[package]]\nname = 'a' # the a\nversion = \"1\\u002E0\"\n";
    assert_eq!(
        parse_lockfile("Cargo.lock", lock).unwrap(),
        [dep("cargo", None, "a", "1.0")]
    );
}

#[test]
fn requirements_txt() {
    let deps = parse_lockfile("requirements.txt", REQUIREMENTS).unwrap();
    let expected = list(
        "pypi",
        &[
            (None, "Django", "4.2.11"),
            (None, "PyYAML", "6.0.1"),
            (None, "certifi", "2024.2.2"),
            (None, "charset-normalizer", "3.3.2"),
            (None, "idna", "3.6"),
            (None, "requests", "2.31.0"),
            (None, "typing_extensions", "4.9.0"),
            (None, "urllib3", "2.2.1"),
            (None, "zope.interface", "6.2"),
        ],
    );
    // flask>=2.3,<3, gunicorn, -r/-e lines, a path and a URL: no pin.
    assert_eq!(deps, expected);
    for name in [
        "requirements-dev.txt",
        "deploy/requirements_prod.txt",
        "C:\\src\\app\\requirements.txt",
    ] {
        assert_eq!(
            parse_lockfile(name, REQUIREMENTS).unwrap(),
            expected,
            "{name}"
        );
    }

    assert_eq!(
        hits("pkg:pypi/django@4.2.11", &[], &deps),
        ["Django@4.2.11"]
    );
    assert_eq!(hits("pkg:pypi/pyyaml", &["6.0.1"], &deps), ["PyYAML@6.0.1"]);
    assert_eq!(
        hits("pkg:pypi/urllib3", &[">=2.0.0, <2.2.2"], &deps),
        ["urllib3@2.2.1"]
    );
    assert!(hits("pkg:pypi/urllib3", &[">=2.2.2"], &deps).is_empty());
    assert!(hits("pkg:pypi/flask", &[], &deps).is_empty());
    assert!(hits("pkg:pypi/django@4.2.10", &[], &deps).is_empty());
}

#[test]
fn requirements_edge_cases() {
    let file = "a==1.0 \\\n  --hash=sha256:00\nb===2.0b1;python_version<'3'\nc[x , y]==3.0\n\
                d (==4.0)\ne==5.*\nf>=1,==6.0\ng==7.0,==7.1\nh @ https://x.test/h-1.0.whl\n\
                https://x.test/i-1.0.tar.gz\n./j\nk==8.0#not-a-comment-without-space\n\
                l ~= 1.4 \n";
    let deps = parse_lockfile("requirements.txt", file).unwrap();
    let got: Vec<String> = deps
        .iter()
        .map(|d| format!("{}@{}", d.name, d.version))
        .collect();
    assert_eq!(
        got,
        [
            "a@1.0",
            "b@2.0b1",
            "c@3.0",
            "d@4.0",
            "f@6.0",
            "k@8.0#not-a-comment-without-space"
        ]
    );
    // A continuation on the last line does not lose the requirement.
    assert_eq!(
        parse_lockfile("requirements.txt", "a==1.0 \\").unwrap(),
        [dep("pypi", None, "a", "1.0")]
    );
}

#[test]
fn go_sum() {
    let deps = parse_lockfile("go.sum", GO_SUM).unwrap();
    let expected = list(
        "golang",
        &[
            (Some("github.com/BurntSushi"), "toml", "v1.3.2"),
            (Some("github.com/davecgh"), "go-spew", "v1.1.1"),
            (Some("github.com/docker"), "docker", "v24.0.7"),
            (Some("github.com/go-chi/chi"), "v5", "v5.0.11"),
            (Some("github.com/pmezard"), "go-difflib", "v1.0.0"),
            (Some("github.com/stretchr"), "testify", "v1.8.4"),
            (Some("golang.org/x"), "net", "v0.17.0"),
            (Some("golang.org/x"), "net", "v0.19.0"),
            (Some("golang.org/x"), "sys", "v0.15.0"),
            (Some("gopkg.in"), "yaml.v3", "v3.0.1"),
        ],
    );
    // kr/pretty, stretchr/objx, check.v1 and the yaml.v3 pseudo-version
    // have only /go.mod lines.
    assert_eq!(deps, expected);

    for purl in [
        "pkg:golang/github.com/stretchr/testify@v1.8.4",
        "pkg:golang/github.com/stretchr/testify@1.8.4",
    ] {
        assert_eq!(hits(purl, &[], &deps), ["testify@v1.8.4"], "{purl}");
    }
    assert!(hits("pkg:golang/github.com/stretchr/testify@v1.8.3", &[], &deps).is_empty());
    assert!(hits("pkg:golang/github.com/stretchr/objx", &[], &deps).is_empty());
    // +incompatible is dropped.
    assert_eq!(
        hits("pkg:golang/github.com/docker/docker", &["v24.0.7"], &deps),
        ["docker@v24.0.7"]
    );
    assert_eq!(
        hits(
            "pkg:golang/github.com/docker/docker@v24.0.7%2Bincompatible",
            &[],
            &deps
        ),
        ["docker@v24.0.7"]
    );
    assert_eq!(
        hits("pkg:golang/golang.org/x/net", &["< v0.18.0"], &deps),
        ["net@v0.17.0"]
    );
    assert_eq!(
        hits("pkg:golang/golang.org/x/net", &[">=0.18.0"], &deps),
        ["net@v0.19.0"]
    );
    assert_eq!(
        hits("pkg:golang/github.com/burntsushi/toml@v1.3.2", &[], &deps),
        ["toml@v1.3.2"]
    );
    // Major-version suffixes are part of the module path.
    assert_eq!(
        hits("pkg:golang/github.com/go-chi/chi/v5@v5.0.11", &[], &deps),
        ["v5@v5.0.11"]
    );
    assert!(hits("pkg:golang/github.com/go-chi/chi@v5.0.11", &[], &deps).is_empty());
    assert!(hits("pkg:golang/github.com/stretchr", &[], &deps).is_empty());
    assert!(hits("pkg:golang/testify", &[], &deps).is_empty());
}

/// Whether `check` takes `version` of `pkg:{ty}/x` as affected by `entry`.
fn affected(ty: &str, entry: &str, version: &str) -> Verdict {
    matches(
        &format!("pkg:{ty}/x"),
        &vs(&[entry]),
        &dep(ty, None, "x", version),
    )
}

/// Each ecosystem's own order, as its tools sort (PEP 440, SemVer, Go
/// pseudo-versions), through the matching `check` does: every version is
/// below the next one and not below itself.
#[test]
fn version_order_per_ecosystem() {
    for (ty, ascending) in [
        (
            "pypi",
            &[
                "0.9",
                "1.0.dev1",
                "1.0a1",
                "1.0a2.dev1",
                "1.0a2",
                "1.0b1",
                "1.0rc1",
                "1.0",
                "1.0.post1",
                "1.1",
                "2024.2.2",
                "1!0.1",
            ][..],
        ),
        (
            "npm",
            &[
                "1.0.0-1",
                "1.0.0-alpha",
                "1.0.0-alpha.1",
                "1.0.0-beta",
                "1.0.0-rc.2",
                "1.0.0-rc.10",
                "1.0.0",
                "1.9.9",
                "1.10.0",
            ][..],
        ),
        (
            "cargo",
            &["0.2.0-alpha.3", "0.2.0-beta", "0.2.0", "0.10.0"][..],
        ),
        (
            "golang",
            &[
                "v0.0.0-20210101000000-abcdef123456",
                "v0.0.0-20220101000000-000000000000",
                "v0.0.1",
                "v1.2.3",
                "v1.10.0",
            ][..],
        ),
    ] {
        for (i, low) in ascending.iter().enumerate() {
            for high in &ascending[i + 1..] {
                let below = affected(ty, &format!("<{high}"), low);
                assert!(below.is_affected(), "{ty}: {low} < {high}: {below:?}");
                let above = affected(ty, &format!("<{low}"), high);
                assert_eq!(above, Verdict::NotAffected, "{ty}: {high} < {low}");
            }
            assert_eq!(affected(ty, &format!("<{low}"), low), Verdict::NotAffected);
        }
    }
    // PEP 440 release segments are padded.
    assert!(affected("pypi", "1.0", "1.0.0").is_affected());
}

/// The holes a review named: PEP 440 pre-releases (alphabetically,
/// `dev` sorted after `a`), npm's `^`/`~`, PyPI names with dots and
/// capitals, npm scopes.
#[test]
fn regressions_named_by_issue_17() {
    // 1.0.dev1 < 1.0a1 < 1.0rc1 < 1.0, with ranges on each side.
    assert!(affected("pypi", "<1.0a1", "1.0.dev1").is_affected());
    assert_eq!(affected("pypi", "<1.0.dev1", "1.0a1"), Verdict::NotAffected);
    assert!(affected("pypi", ">=1.0a1, <1.0", "1.0rc1").is_affected());
    assert_eq!(
        affected("pypi", ">=1.0a1, <1.0", "1.0"),
        Verdict::NotAffected
    );
    assert_eq!(
        affected("pypi", ">=1.0a1, <1.0", "1.0.dev1"),
        Verdict::NotAffected
    );
    assert!(affected("pypi", "~=1.4.5", "1.4.9").is_affected());
    assert_eq!(affected("pypi", "~=1.4.5", "1.5.0"), Verdict::NotAffected);
    assert!(affected("pypi", "==1.4.*", "1.4.0rc1").is_affected());
    // npm `^` and `~`.
    for (entry, inside, outside) in [
        ("^1.2.3", "1.9.0", "2.0.0"),
        ("^1.2.3", "1.2.3", "1.2.2"),
        ("^0.2.3", "0.2.9", "0.3.0"),
        ("~1.2.3", "1.2.9", "1.3.0"),
        ("~1.2", "1.2.0", "1.3.0"),
        ("1.x", "1.5.1", "2.0.0"),
        ("1.0.0 - 1.2.0", "1.1.0", "1.2.1"),
    ] {
        assert!(
            affected("npm", entry, inside).is_affected(),
            "{entry} {inside}"
        );
        assert_eq!(
            affected("npm", entry, outside),
            Verdict::NotAffected,
            "{entry} {outside}"
        );
    }
    // PyPI names: dots, capitals, underscores are one name (PEP 503).
    let zope = dep("pypi", None, "Zope.Interface", "6.2");
    for purl in [
        "pkg:pypi/zope-interface@6.2",
        "pkg:pypi/ZOPE_interface@6.2",
        "pkg:pypi/zope..interface@6.2",
    ] {
        assert!(matches(purl, &[], &zope).is_affected(), "{purl}");
    }
    assert_eq!(
        matches("pkg:pypi/zopeinterface", &[], &zope),
        Verdict::NotAffected
    );
    // npm scopes are part of the name; encoded or not, any case.
    let scoped = dep("npm", Some("@Evil"), "Pkg", "1.0.0");
    assert!(matches("pkg:npm/%40evil/pkg@1.0.0", &[], &scoped).is_affected());
    assert!(matches("pkg:npm/@evil/pkg", &vs(&["^1.0.0"]), &scoped).is_affected());
    assert_eq!(
        matches("pkg:npm/pkg@1.0.0", &[], &scoped),
        Verdict::NotAffected
    );
    assert_eq!(
        matches("pkg:npm/%40other/pkg@1.0.0", &[], &scoped),
        Verdict::NotAffected
    );
}

#[test]
fn version_entries() {
    let m = |entry: &str, version: &str| affected("npm", entry, version).is_affected();
    assert!(m("*", "0.0.1") && m("*", "anything"));
    assert!(m("1.0.0", "1.0.0") && m("=1.0.0", "1.0.0") && m("==1.0.0", "1.0.0"));
    assert!(m("v1.0.0", "1.0.0") && m("1.0.0", "v1.0.0"));
    assert!(!m("1.0.0", "1.0.1") && !m("1.0.0", "1.0.0-rc.1"));
    assert!(m(">=1.2.0 <1.2.5", "1.2.4") && m(">=1.2.0 <1.2.5", "1.2.0"));
    assert!(!m(">=1.2.0 <1.2.5", "1.2.5") && !m(">=1.2.0 <1.2.5", "1.1.9"));
    assert!(m(">=0, <2.0.0", "0.0.1") && m(">=0, <2.0.0", "1.99.0"));
    assert!(!m(">=0, <2.0.0", "2.0.0"));
    assert!(m("<=3.1.0", "3.1.0") && m("<=3.1.0", "3.0.9") && !m("<=3.1.0", "3.1.1"));
    // npm reads a partial version as every version it starts (`<3.2.0-0`).
    assert!(m("<=3.1", "3.1.1") && !m("<=3.1", "3.2.0"));
    assert!(m(">= 1.2, < 2", "1.5.0") && !m(">= 1.2, < 2", "2.0.0"));
    assert!(m(">1.0.0 !=1.0.1", "1.0.2") && !m(">1.0.0 !=1.0.1", "1.0.1"));
    assert!(!m(">1.0.0", "1.0.0") && m(">1.0.0", "1.0.1"));
    // npm's `>1.0` is above every 1.0.x.
    assert!(!m(">1.0", "1.0.1") && m(">1.0", "1.1.0"));
    assert!(m("<1.0 || >=2.0", "0.9.0") && m("<1.0 || >=2.0", "2.1.0"));
    assert!(!m("<1.0 || >=2.0", "1.5.0"));
    // Nothing usable in the entry: never affected, and never "not
    // affected" either: it cannot be told.
    // (`,` alone reads as node-semver's empty range, every version: too
    // much rather than too little.)
    for entry in ["", " ", ">=", "||", "abc", ">=>=1", "<=abc", "!=x", "> v"] {
        let verdict = affected("npm", entry, "1.0.0");
        assert!(
            matches!(verdict, Verdict::Unknown(_)),
            "{entry:?}: {verdict:?}"
        );
    }
    // Versions that are not versions (git sources) fall in no range for
    // certain, and are not cleared by one either.
    for (entry, version) in [("<2.0.0", "github:org/repo#abc123"), (">=0", "latest")] {
        assert!(
            matches!(affected("npm", entry, version), Verdict::Unknown(_)),
            "{entry}"
        );
    }
    assert!(m("*", "latest"));
}

#[test]
fn versions_list_and_purl_version() {
    let d = dep("npm", None, "evil", "1.2.3");
    assert!(matches("pkg:npm/evil", &[], &d).is_affected());
    assert!(matches("pkg:npm/evil@1.2.3", &[], &d).is_affected());
    assert!(!matches("pkg:npm/evil@1.2.4", &[], &d).is_affected());
    // A versions list takes over from the purl version.
    assert!(matches("pkg:npm/evil@9.9.9", &vs(&["1.0.0", "1.2.3"]), &d).is_affected());
    assert!(!matches("pkg:npm/evil@1.2.3", &vs(&["1.0.0", ">=2"]), &d).is_affected());
    assert!(matches("pkg:npm/evil", &vs(&["<1.0.0", ">=1.2.0 <1.3"]), &d).is_affected());
    // Unparseable purls match nothing.
    for purl in ["", "evil", "pkg:npm", "pkg:npm/evil%zz", "pkg:npm/ev il"] {
        assert!(!matches(purl, &[], &d).is_affected(), "{purl:?}");
    }
    // The purl type is case-insensitive (package-url spec).
    assert!(matches("pkg:NPM/evil", &[], &d).is_affected());
    // Percent-encoding that is well-formed but not UTF-8.
    assert!(!matches("pkg:npm/%ff", &[], &dep("npm", None, "\u{fffd}", "1")).is_affected());
}

#[test]
fn display() {
    assert_eq!(
        dep("npm", Some("@babel"), "code-frame", "7.23.5").to_string(),
        "@babel/code-frame@7.23.5 (npm)"
    );
    assert_eq!(
        dep("golang", Some("golang.org/x"), "net", "v0.17.0").to_string(),
        "golang.org/x/net@v0.17.0 (golang)"
    );
}

#[test]
fn file_names() {
    for name in [
        "yarn.lock",
        "package.json",
        "pnpm-lock.yaml",
        "requirements.in",
        "",
    ] {
        let err = parse_lockfile(name, "{}").unwrap_err();
        assert!(matches!(err, LockfileError::UnknownFormat { .. }), "{name}");
        assert!(err.to_string().contains("package-lock.json"), "{err}");
    }
    assert!(is_lockfile_name("a/b/Cargo.lock") && is_lockfile_name("GO.SUM"));
    assert!(!is_lockfile_name("Cargo.toml"));
    // File names are echoed escaped and bounded.
    let err = parse_lockfile(&format!("{}\n.lock", "x".repeat(500)), "").unwrap_err();
    assert!(err.to_string().len() < 400 && !err.to_string().contains('\n'));
}

#[test]
fn too_large() {
    let big = " ".repeat(MAX_LOCKFILE_BYTES + 1);
    for name in [
        "package-lock.json",
        "Cargo.lock",
        "requirements.txt",
        "go.sum",
    ] {
        let err = parse_lockfile(name, &big).unwrap_err();
        assert!(
            matches!(err, LockfileError::TooLarge { .. }),
            "{name}: {err}"
        );
    }
}

#[test]
fn malformed_json() {
    let json_err = |s: &str| match parse_lockfile("package-lock.json", s) {
        Err(e @ LockfileError::Json { .. }) => e.to_string(),
        other => panic!("{s:?}: expected a JSON error, got {other:?}"),
    };
    assert!(json_err("").contains("line 1"));
    let truncated = &NPM_V3[..NPM_V3.len() / 2];
    assert!(json_err(truncated).contains("not valid JSON"));
    assert!(json_err("{\"lockfileVersion\": 3,}").contains("line 1"));
    // Which file, which line and column, what was expected, in words.
    let e = json_err("{\n  \"lockfileVersion\": 3\n  \"packages\": {}\n}");
    assert!(
        e.starts_with("package-lock.json, line 3, column 3: not valid JSON: expected `,` or `}`"),
        "{e}"
    );
    assert!(
        e.contains("a comma, quote or bracket may be missing"),
        "{e}"
    );
    let e = json_err("{\"lockfileVersion\": 3, \"packages\": {");
    assert!(
        e.contains("the file ends before the JSON is complete"),
        "{e}"
    );
    // Hostile nesting is refused by the JSON parser, not a stack overflow.
    json_err(&"[".repeat(100_000));
    json_err(&"{\"a\":".repeat(100_000));

    for s in [
        "[]",
        "\"package-lock\"",
        "{}",
        "{\"name\": \"x\", \"dependencies\": {}}",
        "{\"lockfileVersion\": \"3\"}",
        "{\"lockfileVersion\": 0}",
        "{\"lockfileVersion\": 3}",
        "{\"lockfileVersion\": 3, \"packages\": []}",
        "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/a\": \"1.0.0\"}}",
        "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/a\": {\"version\": 1}}}",
        "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/a\": {\"version\": \"\"}}}",
        "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/a\": {\"name\": [], \"version\": \"1\"}}}",
        "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/\": {\"version\": \"1\"}}}",
        "{\"lockfileVersion\": 3, \"packages\": {\"node_modules/@s/\": {\"version\": \"1\"}}}",
        "{\"lockfileVersion\": 1, \"dependencies\": []}",
        "{\"lockfileVersion\": 1, \"dependencies\": {\"a\": {\"version\": \"1\", \"dependencies\": 5}}}",
    ] {
        match parse_lockfile("package-lock.json", s) {
            Err(LockfileError::Invalid { message, .. }) => assert!(!message.is_empty()),
            other => panic!("{s}: expected a structure error, got {other:?}"),
        }
    }
    // Empty but well-formed lockfiles are fine.
    let empty_v3 = "{\"lockfileVersion\": 3, \"packages\": {\"\": {\"name\": \"x\"}}}";
    assert!(parse_lockfile("package-lock.json", empty_v3)
        .unwrap()
        .is_empty());
    let empty_v1 = "{\"name\": \"x\", \"lockfileVersion\": 1}";
    assert!(parse_lockfile("package-lock.json", empty_v1)
        .unwrap()
        .is_empty());
}

#[test]
fn malformed_toml() {
    for (s, line) in [
        ("hello world", 1),
        ("version = 3\n\n[[package]\nname = \"a\"", 3),
        ("[[package]]\nname = \"a\"\n", 1),
        ("[[package]]\nversion = \"1\"\n", 1),
        ("[[package]]\nname = \"a\nversion = \"1\"\n", 2),
        (
            "[[package]]\nname = \"a\"\nversion = \"1\"\ndependencies = [\n \"b\",\n",
            // The array never closes: the parser says so where the file ends.
            5,
        ),
        ("[[package]]\nname = 5\nversion = \"1\"\n", 2),
        (
            "[[package]]\nname = \"a\"\nname = \"b\"\nversion = \"1\"\n",
            3,
        ),
        ("[[package]]\nname = \"a b\"\nversion = \"1\"\n", 2),
        ("[[package]]\nname = \"\"\nversion = \"1\"\n", 2),
        ("[[package]]\nname = \"a\" trailing\nversion = \"1\"\n", 2),
        ("[[package]]\nname = \"a\\q\"\nversion = \"1\"\n", 2),
        ("[[package]]\nname =\nversion = \"1\"\n", 2),
        ("[[package]]\nname = \"a\"\nversion = \"1\"\nx = ]\n", 4),
        ("[[package]] junk\n", 1),
        ("[]\n", 1),
        ("\u{0}\u{1}\u{2}", 1),
    ] {
        for name in ["Cargo.lock", "poetry.lock"] {
            match parse_lockfile(name, s) {
                Err(LockfileError::Syntax {
                    line: l, message, ..
                }) => {
                    assert_eq!(l, line, "{name} {s:?}: {message}")
                }
                other => panic!("{name} {s:?}: expected a syntax error, got {other:?}"),
            }
        }
    }
    for name in ["Cargo.lock", "poetry.lock"] {
        for s in ["", "# nothing\n", "version = 3\n"] {
            let err = parse_lockfile(name, s).unwrap_err();
            assert!(matches!(err, LockfileError::Invalid { .. }), "{name} {s:?}");
        }
    }
}

#[test]
fn malformed_requirements_and_go_sum() {
    for s in [
        "hello world",
        "requests[socks==2.0",
        "requests==",
        "requests == 1.0 2.0",
        "_private==1.0",
        "\u{0}\u{1}\u{2}",
        "ok==1.0\n{\"lockfileVersion\": 3}",
    ] {
        let err = parse_lockfile("requirements.txt", s).unwrap_err();
        assert!(matches!(err, LockfileError::Syntax { .. }), "{s:?}: {err}");
    }
    let err = parse_lockfile("requirements.txt", "ok==1\n\nbad line").unwrap_err();
    assert!(
        err.to_string().starts_with("requirements.txt, line 3:"),
        "{err}"
    );

    for (s, line) in [
        ("hello", 1),
        ("github.com/a/b v1.0.0", 1),
        ("github.com/a/b v1.0.0 h1:x=\ngithub.com/a/b 1.0.0 h1:x=", 2),
        ("github.com/a b/c v1 h1:x=", 1),
        ("github.com/a/b v1.0.0 deadbeef", 1),
        ("github.com/a/b\u{0} v1.0.0 h1:x=", 1),
        ("/abs v1.0.0 h1:x=", 1),
        ("{\"lockfileVersion\": 3}", 1),
    ] {
        match parse_lockfile("go.sum", s) {
            Err(LockfileError::Syntax { line: l, .. }) => assert_eq!(l, line, "{s:?}"),
            other => panic!("{s:?}: expected a syntax error, got {other:?}"),
        }
    }
    assert!(parse_lockfile("go.sum", "\n\n").unwrap().is_empty());
}

/// Mangled fixtures (truncated, bytes overwritten, lines shuffled) give
/// a result or an error, never a panic; so do hostile version strings.
#[test]
fn mangled_input_never_panics() {
    let fixtures = [
        ("package-lock.json", NPM_V3),
        ("package-lock.json", NPM_V1),
        ("Cargo.lock", CARGO_LOCK),
        ("poetry.lock", POETRY_LOCK),
        ("requirements.txt", REQUIREMENTS),
        ("go.sum", GO_SUM),
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const NASTY: &[u8] = b"\"'[]{}=#\\\n\r\t ,;@/-.%*<>!|\x00\xff";
    let purls = [
        "pkg:npm/ms",
        "pkg:cargo/serde",
        "pkg:pypi/idna",
        "pkg:golang/x/y",
    ];
    let versions = vs(&["*", ">=1 <2", "1.0.0", "<=0.0.0-", "||", ">= v"]);
    for (name, text) in fixtures {
        for round in 0..300 {
            let mut bytes = text.as_bytes().to_vec();
            let len = bytes.len();
            match round % 3 {
                0 => bytes.truncate((next() as usize) % len),
                1 => {
                    for _ in 0..(1 + next() % 8) {
                        let at = (next() as usize) % len;
                        bytes[at] = NASTY[(next() as usize) % NASTY.len()];
                    }
                }
                _ => {
                    let mut lines: Vec<&[u8]> = text.as_bytes().split(|&b| b == b'\n').collect();
                    let (i, j) = (
                        (next() as usize) % lines.len(),
                        (next() as usize) % lines.len(),
                    );
                    lines.swap(i, j);
                    bytes = lines.join(&b'\n');
                }
            }
            let mangled = String::from_utf8_lossy(&bytes);
            if let Ok(deps) = parse_lockfile(name, &mangled) {
                for d in &deps {
                    for purl in purls {
                        let _ = matches(purl, &versions, d);
                    }
                }
            }
        }
    }
    let d = dep("npm", None, "ms", "4.5.6");
    let long = "9".repeat(100_000);
    let hostile = vs(&[
        "\u{0}",
        ">=>=1",
        "<<<",
        "!",
        "v",
        "1!",
        "!1",
        "1+",
        "+",
        "-",
        "1.-.-",
        "1..2",
        "é.ü-ß",
        &long,
        &format!(">={long}"),
    ]);
    assert!(!matches("pkg:npm/ms", &hostile, &d).is_affected());
    for v in &hostile {
        let _ = matches("pkg:npm/ms", &[], &dep("npm", None, "ms", v));
    }
}
