//! Table tests: every detector with what it must find and what it must
//! leave alone.

use super::*;
use crate::benign::Lists;

fn rules() -> Rules {
    Rules {
        own_domains: vec!["acme-bank.com".into(), "corp.acme.internal".into()],
        people: vec!["Alice Martin".into(), "Zoë Nováková".into()],
        patterns: vec!["Project Bluebird".into()],
        disabled: vec![],
    }
    .normalized()
}

/// (role, text, expected kinds in order)
fn check(table: &[(Role, &str, &[Kind])]) {
    let r = rules();
    for (role, text, want) in table {
        let got: Vec<Kind> = scan_text("f", text, *role, &r)
            .unwrap()
            .findings
            .iter()
            .map(|f| f.kind)
            .collect();
        assert_eq!(&got, want, "{role:?} {text:?}");
    }
}

use Kind::*;
use Role::*;

#[test]
fn emails() {
    check(&[
        (Prose, "contact bob.smith+x@acme-bank.com today", &[Email]),
        (Prose, "mail j_doe@mail.example.co.uk.", &[Email]),
        (Prose, "<ops@evil-c2.top>", &[Email]),
        // purls with a version, scoped npm names, SSH remotes, decorators
        (
            Prose,
            "pkg:npm/evil-pkg@1.0.0 and pkg:npm/%40scope/x@2.0.0-beta.1",
            &[],
        ),
        (Prose, "pkg:maven/org.x/y@1.0.RELEASE", &[]),
        (Prose, "git clone git@github.com:evil/repo.git", &[]),
        (Prose, "the @types/node package and @decorator usage", &[]),
        (Prose, "user@localhost", &[]),
        // The observable itself: an attacker's mailbox is the point.
        (Locator, "npm:attacker@evil.example", &[]),
        (Identifier, "pkg:npm/a@1.2.3", &[]),
    ]);
}

#[test]
fn phones() {
    check(&[
        (Prose, "call +1 555 123 4567 now", &[Phone]),
        (Prose, "tel:+442079460958", &[Phone]),
        (Prose, "office (555) 123-4567", &[Phone]),
        (Prose, "desk 555-123-4567.", &[Phone]),
        (Prose, "Tel: 030 12345678", &[Phone]),
        // dates, versions, CVE ids, IPs, hashes, times, counts
        (Prose, "on 2026-11-25 10:00 UTC", &[]),
        (Prose, "2026-11-25 12345", &[]),
        (Prose, "CVE-2021-44228 and GHSA-jfh8-c2jp-5v3q", &[]),
        (Prose, "versions 1.2.3 - 10.20.30", &[]),
        (Prose, "8.8.4.4 and 203.0.113.77", &[]),
        (
            Prose,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            &[],
        ),
        (Prose, "seen 1234567890 times", &[]),
        (Prose, "id 550e8400-e29b-41d4-a716-446655440000", &[]),
        (Prose, "version 2024.1012.1234", &[]),
        (Locator, "+1 555 123 4567", &[]),
    ]);
}

#[test]
fn people_and_patterns() {
    check(&[
        (Prose, "reported by alice martin of SOC", &[Person]),
        (Prose, "thanks Zoë Nováková!", &[Person]),
        (Prose, "Project Bluebird leaked", &[Pattern]),
        (Prose, "Alice Martinez is someone else", &[]),
        (Prose, "malice martin", &[]),
        (Identifier, "pkg:npm/project-bluebird", &[]),
        (Identifier, "Project Bluebird", &[Pattern]),
        (Locator, "Alice Martin", &[]),
    ]);
}

#[test]
fn internal_ips() {
    check(&[
        (Prose, "beacon from 10.1.2.3 to the C2", &[InternalIp]),
        (
            Prose,
            "172.16.0.9, 172.31.255.255; 192.168.1.10",
            &[InternalIp, InternalIp, InternalIp],
        ),
        (
            Prose,
            "CGNAT 100.64.0.1 and 100.127.255.254",
            &[InternalIp, InternalIp],
        ),
        (Prose, "169.254.169.254 metadata", &[InternalIp]),
        (Prose, "http://127.0.0.1:8080/x", &[InternalIp]),
        (
            Prose,
            "fd12:3456:789a::1 and [fe80::1]:22 and ::1",
            &[InternalIp, InternalIp, InternalIp],
        ),
        // public addresses, near misses, versions, times, Rust paths
        (
            Prose,
            "C2 at 45.77.10.3 and 172.32.0.1 and 100.128.0.1 and 11.0.0.1",
            &[],
        ),
        (Prose, "version 10.0.0.1.2 and v10.0.0.1", &[]),
        (Prose, "at 12:00:00 and std::io and a::b::c", &[]),
        (Prose, "2001:db8::1 and 2a00:1450::1", &[]),
        // the C2 address in the observable is the point, an internal one is not
        (Locator, "45.77.10.3", &[]),
        (Locator, "10.0.0.5", &[InternalIp]),
        (Identifier, "pkg:npm/x@10.0.0", &[]),
    ]);
}

#[test]
fn own_hosts() {
    check(&[
        (Prose, "ssh build01.acme-bank.com", &[OwnHost]),
        (
            Prose,
            "see https://wiki.corp.acme.internal/ir/42",
            &[OwnHost],
        ),
        (Prose, "ACME-BANK.COM.", &[OwnHost]),
        (Prose, "acme-bank.com.evil.top and notacme-bank.com", &[]),
        (
            Locator,
            "https://jenkins.corp.acme.internal/job",
            &[OwnHost],
        ),
        (Identifier, "jenkins.corp.acme.internal", &[]),
    ]);
}

#[test]
fn path_users() {
    check(&[
        (
            Prose,
            r"dropped in C:\Users\jdoe\AppData\Roaming",
            &[PathUser],
        ),
        (Prose, "found /home/alice/.npmrc", &[PathUser]),
        (Prose, "from /Users/bob/Library", &[PathUser]),
        (Prose, r"logon ACMEBANK\jdoe failed", &[PathUser]),
        (
            Prose,
            r"C:\Users\Public\x and C:\Windows\System32 and \\server\share",
            &[],
        ),
        (
            Prose,
            r"HKLM\Software\Run and NT AUTHORITY\SYSTEM and BUILTIN\Administrators",
            &[],
        ),
        (Prose, "https://github.com/users/x and /home/[user]/x", &[]),
        (Locator, r"C:\Users\jdoe\evil.exe", &[PathUser]),
    ]);
}

#[test]
fn secrets() {
    let gh = format!(
        "ghp_{}",
        "a1B2c3D4e5".repeat(4).get(..36).unwrap().to_owned()
    );
    let npm = format!(
        "npm_{}",
        "Z9y8X7w6V5".repeat(4).get(..36).unwrap().to_owned()
    );
    let pypi = format!("pypi-AgEIcHlwaS5vcmc{}", "x".repeat(60));
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let table: Vec<(Role, String, &[Kind])> = vec![
        (Prose, "key AKIAIOSFODNN7EXAMPLE".into(), &[Secret]),
        (
            Prose,
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            &[Secret],
        ),
        (Prose, format!("google AIza{}", "S".repeat(35)), &[Secret]),
        (Prose, format!("token {gh} leaked"), &[Secret]),
        (Prose, format!("github_pat_{}", "A".repeat(82)), &[Secret]),
        (Prose, "glpat-abcdefghij0123456789".into(), &[Secret]),
        (Prose, npm.clone(), &[Secret]),
        (Prose, pypi, &[Secret]),
        (Prose, "xoxb-123456789012-abcdefABCDEF".into(), &[Secret]),
        (
            Prose,
            "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX".into(),
            &[Secret],
        ),
        (
            Prose,
            format!("AccountKey={}==;", "k".repeat(86)),
            &[Secret],
        ),
        (Prose, format!("abc8Q~{}", "x".repeat(34)), &[Secret]),
        (
            Prose,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA\n-----END OPENSSH PRIVATE KEY-----"
                .into(),
            &[Secret],
        ),
        (
            Prose,
            "-----BEGIN RSA PRIVATE KEY-----\ntruncated".into(),
            &[Secret],
        ),
        (Prose, format!("Bearer {jwt}"), &[Secret]),
        (
            Prose,
            "fetch https://deploy:hunter2@ci.example.net/x".into(),
            &[Secret],
        ),
        // hashes, public keys, UUIDs, plain URLs, near-miss prefixes
        (
            Prose,
            "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            &[],
        ),
        (
            Prose,
            "commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904".into(),
            &[],
        ),
        (
            Prose,
            "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----".into(),
            &[],
        ),
        (
            Prose,
            "ghp_short and npm_install and xoxb- and AKIA123".into(),
            &[],
        ),
        (
            Prose,
            "https://user@host.example/x and https://host.example:8443/".into(),
            &[],
        ),
        (Prose, "eyJhbGciOi alone".into(), &[]),
        // A token is a finding even in an observable field; a hash is not.
        (Identifier, format!("pkg:npm/x?token={npm}"), &[Secret]),
        (
            Identifier,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            &[],
        ),
        (
            Locator,
            format!("https://x-access-token:{gh}@github.com/o/r"),
            &[Secret],
        ),
    ];
    let r = rules();
    for (role, text, want) in &table {
        let got: Vec<Kind> = scan_text("f", text, *role, &r)
            .unwrap()
            .findings
            .iter()
            .map(|f| f.kind)
            .collect();
        assert_eq!(&got, want, "{role:?} {text:?}");
    }
}

#[test]
fn redaction_is_typed_and_idempotent() {
    let r = rules();
    let text = "mail bob@acme-bank.com from 10.0.0.7 via /home/alice/x, Alice Martin, pw https://u:s3cret@h.example/";
    let scan = scan_text("description", text, Prose, &r).unwrap();
    assert_eq!(
        scan.redacted,
        "mail [email] from [internal-ip] via /home/[user]/x, [person], pw https://u:[secret]@h.example/"
    );
    let kinds: Vec<Kind> = scan.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [Email, InternalIp, PathUser, Person, Secret]);
    assert_eq!(scan.findings[0].at, 5);
    assert_eq!(scan.findings[0].field, "description");
    // Excerpts never carry what was found, nor its neighbours.
    for f in &scan.findings {
        assert!(
            !f.excerpt.contains("bob@") && !f.excerpt.contains("s3cret"),
            "{f}"
        );
        assert!(!f.excerpt.contains("10.0.0.7"), "{f}");
    }
    let again = scan_text("description", &scan.redacted, Prose, &r).unwrap();
    assert!(again.findings.is_empty(), "{:?}", again.findings);
}

#[test]
fn disabled_kinds_are_not_looked_for() {
    let mut r = rules();
    r.disabled = vec![Email, Phone];
    let s = scan_text("f", "bob@acme.example +1 555 123 4567 10.0.0.1", Prose, &r).unwrap();
    let kinds: Vec<Kind> = s.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [InternalIp]);
}

#[test]
fn kinds_parse_by_name() {
    for k in Kind::ALL {
        assert_eq!(k.name().parse::<Kind>().unwrap(), k);
    }
    let e = "emails".parse::<Kind>().unwrap_err().to_string();
    assert!(e.contains("internal-ip"), "{e}");
}

#[test]
fn oversized_input_is_refused_not_scanned() {
    let big = "a".repeat(MAX_FIELD_BYTES + 1);
    let e = scan_text("body", &big, Prose, &rules()).unwrap_err();
    assert!(e.to_string().contains("body is"), "{e}");
}

fn indicator(obs: Observable, description: &str) -> Statement {
    Statement {
        id: uuid_v4(),
        revision: 1,
        source: "acme-bank".into(),
        created: "2026-12-02T12:00:00Z".into(),
        tlp: isac_core::Tlp::Green,
        audience: vec![],
        anonymous: false,
        body: Body::Indicator(isac_core::Indicator {
            observable: obs,
            title: "t".into(),
            description: description.into(),
            severity: isac_core::Severity::High,
            confidence: 50,
            references: vec![],
            tags: vec![],
            valid_from: None,
            valid_until: None,
            related: vec![],
        }),
        on_behalf_of: None,
        no_forward: false,
    }
}

fn uuid_v4() -> uuid::Uuid {
    "6f1c2a4e-8b7d-4c3e-9a10-1b2c3d4e5f60".parse().unwrap()
}

#[test]
fn statements_are_scanned_field_by_field() {
    let net = Observable::Network {
        domain: Some("evil-c2.top".into()),
        ip: Some("45.77.10.3".into()),
        url: Some("http://45.77.10.3/payload".into()),
    };
    let st = indicator(
        net.clone(),
        "C2; internal victim 10.20.30.40, ask bob@acme-bank.com",
    );
    let (findings, redacted) = scan_statement(&st, &rules()).unwrap();
    let got: Vec<(&str, Kind)> = findings
        .iter()
        .map(|f| (f.field.as_str(), f.kind))
        .collect();
    assert_eq!(got, [("description", InternalIp), ("description", Email)]);
    let Body::Indicator(i) = &redacted.body else {
        panic!()
    };
    assert_eq!(
        i.description,
        "C2; internal victim [internal-ip], ask [email]"
    );
    assert_eq!(i.observable, net, "the observable is untouched");
    let pkg = Observable::Package {
        purl: "pkg:npm/evil@1.0.0".into(),
        versions: vec!["1.0.0".into()],
        threat: isac_core::statement::PackageThreat::Malicious,
        imitates: None,
    };
    let (findings, _) = scan_statement(&indicator(pkg, "steals ~/.npmrc"), &rules()).unwrap();
    assert!(findings.is_empty(), "{findings:?}");
}

#[test]
fn benign_lists() {
    use isac_core::statement::PackageThreat::*;
    let lists = Lists::builtin();
    let net = |d: Option<&str>, ip: Option<&str>, url: Option<&str>| Observable::Network {
        domain: d.map(Into::into),
        ip: ip.map(Into::into),
        url: url.map(Into::into),
    };
    let pkg = |purl: &str, threat, versions: &[&str]| Observable::Package {
        purl: purl.into(),
        versions: versions.iter().map(|v| v.to_string()).collect(),
        threat,
        imitates: None,
    };
    let art = |h: &str| Observable::Artifact {
        sha256: Some(h.into()),
        sha512: None,
        purl: None,
        filename: None,
    };
    let table: Vec<(Observable, Option<&str>)> = vec![
        (
            net(None, Some("8.8.8.8"), None),
            Some("public-dns-resolvers"),
        ),
        (
            net(None, Some("2001:4860:4860::8888"), None),
            Some("public-dns-resolvers"),
        ),
        (
            net(Some("dns.google"), None, None),
            Some("public-dns-resolvers"),
        ),
        (
            net(Some("GitHub.com."), None, None),
            Some("registries-and-code-hosts"),
        ),
        (
            net(None, None, Some("https://github.com/")),
            Some("registries-and-code-hosts"),
        ),
        (
            net(None, Some("203.0.113.77"), None),
            Some("documentation-ranges"),
        ),
        (
            net(None, Some("2001:db8::5"), None),
            Some("documentation-ranges"),
        ),
        (
            net(None, None, Some("http://198.51.100.1/x")),
            Some("documentation-ranges"),
        ),
        (
            net(Some("cloudfront.net"), None, None),
            Some("cdn-and-cloud"),
        ),
        (
            art("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
            Some("empty-file-hashes"),
        ),
        (
            pkg("pkg:npm/lodash", Malicious, &[]),
            Some("popular-packages"),
        ),
        (
            pkg("pkg:pypi/Typing_Extensions", Malicious, &[]),
            Some("popular-packages"),
        ),
        // real indicators
        (net(None, Some("45.77.10.3"), None), None),
        (net(Some("evil.github.io"), None, None), None),
        (net(Some("d111111abcdef8.cloudfront.net"), None, None), None),
        (net(None, None, Some("https://github.com/evil/repo")), None),
        (net(None, Some("8.8.8.9"), None), None),
        (art(&"ab".repeat(32)), None),
        (pkg("pkg:npm/lodahs", Typosquat, &[]), None),
        (pkg("pkg:npm/lodahs", Malicious, &[]), None),
        (pkg("pkg:npm/lodash", Typosquat, &[]), None),
        (pkg("pkg:npm/debug@4.4.2", Malicious, &[]), None),
        (pkg("pkg:npm/chalk", Malicious, &["5.6.1"]), None),
        (pkg("pkg:npm/lodash", Compromised, &[]), None),
    ];
    for (obs, want) in table {
        let hits = lists.check(&obs);
        assert_eq!(
            hits.first().map(|h| h.list.as_str()),
            want,
            "{obs:?}: {hits:?}"
        );
        if let Some(h) = hits.first() {
            assert_eq!(h.version, "2026-12-02");
            assert!(h.to_string().contains(want.unwrap()), "{h}");
        }
    }
}

#[test]
fn benign_lists_extend_from_a_file() {
    let mut lists = Lists::builtin();
    let obs = Observable::Network {
        domain: Some("intranet-proxy.example.net".into()),
        ip: Some("198.18.0.1".into()),
        url: None,
    };
    assert!(lists.check(&obs).is_empty());
    lists
        .extend("# list: ours\n# version: 3\n198.18.0.0/15\nintranet-proxy.example.net\n")
        .unwrap();
    let hits = lists.check(&obs);
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.list == "ours" && h.version == "3"));
    assert_eq!(
        lists.extend("198.18.0.0/15\n").unwrap_err(),
        benign::ListError::MissingHeader
    );
    let e = lists
        .extend("# list: x\n# version: 1\nnot a host\n")
        .unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    assert!(lists
        .versions()
        .iter()
        .any(|(n, v)| n == "popular-packages" && v == "2026-12-02"));
}

/// Repetitive field-sized input is scanned in one pass per detector (a
/// quadratic matcher would make this test run for hours, not milliseconds).
#[test]
fn adversarial_repetition_is_linear() {
    let r = rules();
    for unit in [
        "AKIA",
        "-----BEGIN RSA PRIVATE KEY-----",
        "eyJ",
        "a@",
        "1 ",
        "://a:",
        r"AB\",
        "fd00:",
        "10.",
        "/home/",
        "xoxb-",
        "8Q~",
        "acme-bank.com.",
        "Alice ",
    ] {
        // 64 KiB: quadratic would be 2^32 steps; linear is 2^16 per detector.
        let text = unit.repeat((64 << 10) / unit.len());
        for role in [Prose, Locator, Identifier] {
            let _ = scan_text("f", &text, role, &r).unwrap();
        }
    }
}

/// One finding of each kind (and near misses), as the fast matchers'
/// edge cases see them.
const FINDINGS: [(&str, Kind); 16] = [
    ("bob@acme.example", Email),
    ("+1 555 123 4567", Phone),
    ("Alice Martin", Person),
    ("project bluebird", Pattern),
    ("10.0.0.7", InternalIp),
    ("fd00::1", InternalIp),
    ("build.ACME-bank.com", OwnHost),
    (r"C:\Users\jdoe", PathUser),
    ("/home/alice", PathUser),
    (r"ACME\jdoe", PathUser),
    ("AKIAIOSFODNN7EXAMPLE", Secret),
    ("ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Secret),
    ("abc8Q~abcdefghijklmnopqrstuvwxyz01234", Secret),
    (
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        Secret,
    ),
    (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig",
        Secret,
    ),
    ("https://u:pw@h.example/", Secret),
];

fn assert_same(text: &str, r: &Rules) {
    for role in [Prose, Locator, Identifier] {
        assert_eq!(
            scan_text("f", text, role, r),
            scan_text_reference("f", text, role, r),
            "fast and reference matchers differ on {text:?} ({role:?})"
        );
    }
}

/// Each finding alone, at the very start, at the very end, between
/// multi-byte characters, and in fields either side of the length at
/// which a name's searcher is built: found by the fast matchers, and the
/// same as the reference matchers in every case.
#[test]
fn fast_matchers_find_at_the_edges_as_the_reference_does() {
    let r = rules();
    for (finding, kind) in FINDINGS {
        let pad = "lorem ipsum dolor sit amet ".repeat(12);
        let tail = |n: usize| &pad[pad.len() - n.saturating_sub(finding.len())..];
        for text in [
            finding.to_owned(),
            format!("{finding} and more"),
            format!("it was {finding}"),
            format!("Zoë «{finding}» ünd"),
            format!("é {finding}\u{1F600}"),
            // 60 and 250 bytes in all (a name's searcher is built from 64).
            format!("{}{finding}", tail(60)),
            format!("{}{finding}", tail(250)),
            format!("{pad}{finding}"),
            format!("{finding}{pad}{finding}"),
        ] {
            let got = scan_text("f", &text, Prose, &r).unwrap().findings;
            assert!(
                got.iter().any(|f| f.kind == kind),
                "{kind} not found in {text:?}: {got:?}"
            );
            assert_same(&text, &r);
        }
    }
}

/// Overlapping occurrences of a literal, case variants of the
/// case-insensitive literals, rules as written (not normalised: an
/// uppercase domain, an empty name), and near misses.
#[test]
fn fast_matchers_agree_with_the_reference_on_tricky_input() {
    let raw = Rules {
        own_domains: vec!["ACME-bank.com".into(), String::new()],
        people: vec![String::new(), "Zoë Nováková".into(), "al".into()],
        patterns: vec!["-----".into()],
        disabled: vec![],
    };
    let texts = [
        "",
        "@",
        "AKIAKIAIOSFODNN7EXAMPLE AKIAAKIAIOSFODNN7EXAMPLE",
        r"C:\users\users\jdoe c:\USERS\x D:\Users\Public",
        "/home//home/x /home/ /Users/Alice /users/bob x/home/y",
        "-----begin rsa private key-----\nabc\n-----end rsa private key-----",
        "-----BEGIN -----BEGIN EC PRIVATE KEY-----",
        "AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_keyaws_secret_access_key=x",
        "8Q~ 7Q~Q~ abc7Q~abcdefghijklmnopqrstuvwxyz01234 Q~",
        "eyJeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.s eyJ",
        ":// a:// https://a:b@ https://x:[secret]@h",
        "ZOË NOVÁKOVÁ zoë nováková Al al, ALICE MARTIN",
        "acme-bank.com. x.acme-bank.COM .acme-bank.com notacme-bank.com",
        "fe:10.0.0.1 zz:10.0.0.1 ::1 fe80::1%eth0 10.0.0.1.2",
        "mail a@b.c, x@y.example. git@github.com:a pkg:npm/a@1.0",
        r"CORP\alice HKLM\x \\srv\share AB\",
    ];
    for text in texts {
        for r in [&rules(), &raw, &Rules::default()] {
            assert_same(text, r);
        }
    }
    // The same inputs glued together, and longer than a short field.
    let all = texts.concat().repeat(3);
    for r in [&rules(), &raw, &Rules::default()] {
        assert_same(&all, r);
    }
}
