//! Purl parsing and canonical form, against cases of the purl spec's own
//! test suite (package-url/purl-spec `test-suite-data.json`) and its
//! PURL-TYPES rules, plus hostile input.

use isac_packages::{Ecosystem, Purl, PurlError};

fn canonical(s: &str) -> String {
    s.parse::<Purl>()
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .to_string()
}

#[test]
fn spec_cases_parse_to_their_canonical_form() {
    for (given, want) in [
        ("pkg:maven/org.apache.commons/io", "pkg:maven/org.apache.commons/io"),
        (
            "pkg:GOLANG/google.golang.org/genproto#/googleapis/api/annotations/",
            "pkg:golang/google.golang.org/genproto#googleapis/api/annotations",
        ),
        (
            "pkg:golang/github.com/gorilla/context@234fd47e07d1004f0aed9c#api",
            "pkg:golang/github.com/gorilla/context@234fd47e07d1004f0aed9c#api",
        ),
        (
            "pkg:npm/%40angular/animation@12.3.1",
            "pkg:npm/%40angular/animation@12.3.1",
        ),
        // npm names are lowercase; a raw `@` opening a scope is accepted.
        ("pkg:NPM/@Angular/Animation@12.3.1", "pkg:npm/%40angular/animation@12.3.1"),
        ("pkg:npm/foobar@12.3.1", "pkg:npm/foobar@12.3.1"),
        // PyPI: PEP 503 names.
        ("pkg:PYPI/Django_package@1.11.1.dev1", "pkg:pypi/django-package@1.11.1.dev1"),
        ("pkg:pypi/Zope.Interface", "pkg:pypi/zope-interface"),
        ("pkg:gem/ruby-advisory-db-check@0.12.4", "pkg:gem/ruby-advisory-db-check@0.12.4"),
        (
            "pkg:gem/jruby-launcher@1.1.2?Platform=java",
            "pkg:gem/jruby-launcher@1.1.2?platform=java",
        ),
        // NuGet keeps its spelling (matching folds case).
        (
            "pkg:nuget/EnterpriseLibrary.Common@6.0.1304",
            "pkg:nuget/EnterpriseLibrary.Common@6.0.1304",
        ),
        (
            "pkg:github/Package-url/Purl-Spec@244fd47e07d1004f0aed9c",
            "pkg:github/package-url/purl-spec@244fd47e07d1004f0aed9c",
        ),
        ("pkg:composer/Laravel/Laravel@5.5.0", "pkg:composer/laravel/laravel@5.5.0"),
        ("pkg:cargo/rand@0.7.2", "pkg:cargo/rand@0.7.2"),
        // Qualifiers sorted by key, values encoded by the one encoder.
        (
            "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1?repository_url=repo.spring.io%2Frelease&classifier=sources",
            "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1?classifier=sources&repository_url=repo.spring.io%2Frelease",
        ),
        (
            "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1?type=pom&classifier=",
            "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1?type=pom",
        ),
        // `:` stays readable; `+` in a version is escaped.
        (
            "pkg:docker/customer/dockerimage@sha256%3A244fd47e07d1004f0aed9c?repository_url=gcr.io",
            "pkg:docker/customer/dockerimage@sha256:244fd47e07d1004f0aed9c?repository_url=gcr.io",
        ),
        (
            "pkg:golang/github.com/a/b@v2.0.0+incompatible",
            "pkg:golang/github.com/a/b@v2.0.0%2Bincompatible",
        ),
        // No authority: `pkg://` reads as `pkg:`; the scheme is case-free.
        ("pkg://npm/left-pad", "pkg:npm/left-pad"),
        ("PKG:npm/left-pad", "pkg:npm/left-pad"),
        // Go module paths keep their case.
        (
            "pkg:golang/github.com/Azure/azure-sdk-for-go@v1.0.0",
            "pkg:golang/github.com/Azure/azure-sdk-for-go@v1.0.0",
        ),
        // Namespaces: empty segments dropped; a space is %20.
        ("pkg:generic/a//b/c%20d", "pkg:generic/a/b/c%20d"),
    ] {
        assert_eq!(canonical(given), want, "{given}");
        // The canonical form is a fixed point.
        assert_eq!(canonical(want), want, "{want}");
    }
}

#[test]
fn parts_are_decoded() {
    let p: Purl = "pkg:npm/%40babel/core@7.0.0-beta.1?a=b%20c#lib/x"
        .parse()
        .unwrap();
    assert_eq!(p.ty(), "npm");
    assert_eq!(p.namespace(), Some("@babel"));
    assert_eq!(p.name(), "core");
    assert_eq!(p.version(), Some("7.0.0-beta.1"));
    assert_eq!(p.qualifiers().get("a").map(String::as_str), Some("b c"));
    assert_eq!(p.subpath(), Some("lib/x"));
    assert_eq!(p.full_name(), "@babel/core");
    assert_eq!(p.ecosystem(), Some(Ecosystem::Npm));
    let m: Purl = "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
        .parse()
        .unwrap();
    assert_eq!(m.full_name(), "org.apache.logging.log4j:log4j-core");
    assert_eq!(
        m.package().to_string(),
        "pkg:maven/org.apache.logging.log4j/log4j-core"
    );
}

#[test]
fn invalid_purls_are_refused_with_a_reason() {
    for (bad, what) in [
        ("npm/evil", "scheme"),
        ("pkg:", "no name"),
        ("pkg:npm", "no name"),
        ("pkg:npm/", "no name"),
        ("pkg:maven/@1.3.4", "no name"),
        ("pkg:npm/evil@", "empty version"),
        ("pkg:npm/ev il", "raw space"),
        ("pkg:npm/evil\u{0}", "control"),
        ("pkg:npm/evil%zz", "bad escape"),
        ("pkg:npm/evil%4", "short escape"),
        ("pkg:npm/evil%00", "decoded control"),
        ("pkg:npm/evil%FF", "not UTF-8"),
        ("pkg:1npm/evil", "type starts with a digit"),
        ("pkg:n&g/x", "type characters"),
        ("pkg:npm/a@b@1", "raw @ in the name"),
        ("pkg:maven/commons-io", "maven needs a group"),
        ("pkg:composer/laravel", "composer needs a vendor"),
        ("pkg:pypi/ns/requests", "pypi has no namespace"),
        ("pkg:npm/a/b/c", "npm has one scope"),
        ("pkg:npm/x?a=1&a=2", "duplicate qualifier"),
        ("pkg:npm/x?1a=1", "qualifier key"),
        ("pkg:npm/x?novalue", "qualifier without ="),
        ("pkg:npm/a%2Fb", "slash in a name"),
    ] {
        assert!(
            bad.parse::<Purl>().is_err(),
            "{bad} ({what}) should be refused"
        );
    }
    let long = format!("pkg:npm/{}", "a".repeat(5000));
    assert_eq!(long.parse::<Purl>(), Err(PurlError::TooLong));
    let many: Vec<String> = (0..40).map(|i| format!("k{i}=v")).collect();
    let many = format!("pkg:npm/x?{}", many.join("&"));
    assert_eq!(many.parse::<Purl>(), Err(PurlError::TooManyQualifiers));
    // Errors echo a bounded, escaped prefix only.
    let err = format!("npm/{}\u{1b}[31m", "x".repeat(500))
        .parse::<Purl>()
        .unwrap_err();
    assert!(err.to_string().len() < 300, "{err}");
    assert!(!err.to_string().contains('\u{1b}'));
}

#[test]
fn one_package_in_many_spellings_has_one_key() {
    for group in [
        &[
            "pkg:npm/%40scope/name@1",
            "pkg:npm/@Scope/Name",
            "pkg:npm/scope/name",
        ][..],
        &[
            "pkg:pypi/Zope.Interface",
            "pkg:pypi/zope_interface",
            "pkg:pypi/zope--interface",
        ],
        &[
            "pkg:golang/github.com/Foo/Bar",
            "pkg:golang/github.com/foo/bar@v1.0.0",
        ],
        &["pkg:nuget/Newtonsoft.Json", "pkg:nuget/newtonsoft.json"],
        &["pkg:cargo/serde_json", "pkg:cargo/serde-json"],
        &[
            "pkg:composer/Monolog/Monolog",
            "pkg:composer/monolog/monolog?x=y#sub",
        ],
    ] {
        let first: Purl = group[0].parse().unwrap();
        for other in &group[1..] {
            let other: Purl = other.parse().unwrap();
            assert!(first.same_package(&other), "{first} vs {other}");
        }
    }
    for (a, b) in [
        ("pkg:maven/org.x/y", "pkg:maven/org.X/y"),
        ("pkg:npm/left-pad", "pkg:pypi/left-pad"),
        ("pkg:gem/Rails", "pkg:gem/rails"),
        ("pkg:npm/%40a/b", "pkg:npm/b"),
    ] {
        let (a, b): (Purl, Purl) = (a.parse().unwrap(), b.parse().unwrap());
        assert!(!a.same_package(&b), "{a} vs {b}");
    }
}

#[test]
fn osv_names_become_purls() {
    for (eco, name, want) in [
        ("npm", "left-pad", "pkg:npm/left-pad"),
        ("npm", "@babel/core", "pkg:npm/%40babel/core"),
        ("PyPI", "Zope_Interface", "pkg:pypi/zope-interface"),
        ("PyPI", "a.__b", "pkg:pypi/a-b"),
        ("crates.io", "serde_json", "pkg:cargo/serde_json"),
        ("Go", "github.com/a/b/v2", "pkg:golang/github.com/a/b/v2"),
        ("Go", "std", "pkg:golang/std"),
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
        (
            "GitHub Actions",
            "actions/checkout",
            "pkg:github/actions/checkout",
        ),
        (
            "GitHub Actions",
            "github/codeql-action/init",
            "pkg:github/github/codeql-action#init",
        ),
        ("npm", "weird+name#x", "pkg:npm/weird%2Bname%23x"),
    ] {
        let p = Purl::from_osv(eco, name).unwrap_or_else(|e| panic!("{eco} {name}: {e}"));
        assert_eq!(p.to_string(), want, "{eco} {name}");
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
        ("crates.io", "a/b"),
        ("Hackage", "x"),
        ("npm", ""),
    ] {
        assert!(Purl::from_osv(eco, name).is_err(), "{eco} {name:?}");
    }
}

#[test]
fn built_purls_match_parsed_ones() {
    let built = Purl::new("npm", Some("@types"), "node")
        .unwrap()
        .with_version("20.1.0")
        .unwrap();
    assert_eq!(
        built,
        "pkg:npm/%40types/node@20.1.0".parse::<Purl>().unwrap()
    );
    assert!(Purl::new("npm", None, "").is_err());
    assert!(Purl::new("npm", None, "a/b").is_err());
    assert!(Purl::new("9x", None, "a").is_err());
}
