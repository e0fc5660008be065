//! Scanning before signing, with the real binaries: a finding refuses the
//! publish (exit 64, nothing signed, nothing stored at the hub or sent to
//! anyone), `--redact` publishes the placeholders, `--allow` publishes as
//! is; benign observables are refused naming their list.

use std::path::Path;

use isac_e2e::{bin, enroll_with_cli, HubProcess};

fn agent_cli(state: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = bin("member-agent")
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn hub_cli(data: &Path, args: &[&str]) -> String {
    let out = bin("hub")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stored(data: &Path) -> i64 {
    let conn = rusqlite::Connection::open(data.join("hub.db")).unwrap();
    conn.query_row("SELECT count(*) FROM statements", [], |r| r.get(0))
        .unwrap()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_bulletin_with_an_email_is_refused_until_redacted_and_nothing_leaves_before() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let (staff, bob) = (dir.path().join("staff"), dir.path().join("bob"));
    let jsonl = dir.path().join("bob.jsonl");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let token = hub_cli(
        &data,
        &["member", "add", "isac-staff", "--role", "coordinator"],
    );
    let (code, _, err) = agent_cli(
        &staff,
        &["enroll", "--hub", &hub.url(), "--token", token.trim()],
    );
    assert_eq!(code, Some(0), "{err}");
    enroll_with_cli(&data, &hub.url(), "bob-bank", None, &bob);
    let before = stored(&data);

    let body = dir.path().join("bulletin.txt");
    std::fs::write(
        &body,
        "Phishing wave. Reported by jane.doe@staff-mail.example.net, beacon seen from 10.20.30.40.\n",
    )
    .unwrap();
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "bulletin",
            "--title",
            "Phishing wave",
            "--tlp",
            "green",
            "--body",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(body.to_str().unwrap().to_owned());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |extra: &[&'static str]| {
        let a = args(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        agent_cli(&staff, &a)
    };

    // Refused: each finding named, exit 64, nothing stored, nothing sent.
    let (code, out, err) = run(&[]);
    assert_eq!(code, Some(64), "{out} {err}");
    assert!(err.contains("nothing signed or sent"), "{err}");
    assert!(
        err.contains("body at byte 27: email (e-mail address)"),
        "{err}"
    );
    assert!(
        err.contains("internal-ip (private address (RFC 1918))"),
        "{err}"
    );
    assert!(err.contains("[email]") && err.contains("--redact"), "{err}");
    assert!(
        !err.contains("jane.doe"),
        "the refusal repeats the address: {err}"
    );
    assert_eq!(stored(&data), before, "the hub stored a refused bulletin");
    let (code, _, err) = agent_cli(&bob, &["sync", "--jsonl", jsonl.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(lines(&jsonl).is_empty(), "{:?}", lines(&jsonl));

    // A kind that does not exist is bad input too.
    let (code, _, err) = run(&["--allow", "emails"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("unknown finding kind `emails`"), "{err}");

    // --redact: published with placeholders, and shown.
    let (code, out, err) = run(&["--redact"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("id="), "{out}");
    assert!(err.contains("redacted: body at byte 27: email"), "{err}");
    assert_eq!(stored(&data), before + 1);
    let (code, _, err) = agent_cli(&bob, &["sync", "--jsonl", jsonl.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let got = lines(&jsonl);
    assert_eq!(got.len(), 1, "{got:?}");
    let text = got[0].to_string();
    assert!(
        text.contains("Reported by [email], beacon seen from [internal-ip]."),
        "{text}"
    );
    assert!(
        !text.contains("jane.doe") && !text.contains("10.20.30.40"),
        "{text}"
    );
    assert!(!hub_cli(&data, &["audit"]).contains("scrub-override"));

    // --allow: published as written, and the override is in the hub's audit log.
    let (code, out, err) = run(&["--allow", "email", "--allow", "internal-ip"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("allowed: body at byte 27: email"), "{err}");
    let id = out
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("id="))
        .unwrap()
        .to_owned();
    assert_eq!(stored(&data), before + 2);
    let audit = hub_cli(&data, &["audit"]);
    let row = audit
        .lines()
        .find(|l| l.contains("publish.scrub-override"))
        .unwrap_or_else(|| panic!("no override in the audit log:\n{audit}"));
    assert!(
        row.contains(&format!(
            "isac-staff publish.scrub-override {id} revision 1 email,internal-ip"
        )),
        "{row}"
    );
    let (code, _, err) = agent_cli(&bob, &["sync", "--jsonl", jsonl.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(lines(&jsonl)[1]
        .to_string()
        .contains("jane.doe@staff-mail.example.net"));
    hub.terminate();
}

#[test]
fn benign_observables_are_refused_naming_the_list_and_typosquats_pass() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let alice = dir.path().join("alice");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    enroll_with_cli(&data, &hub.url(), "alice-bank", None, &alice);
    let before = stored(&data);
    let publish = |flags: &[&str]| {
        let mut a = vec![
            "publish",
            "--tlp",
            "clear",
            "--title",
            "C2",
            "--severity",
            "high",
        ];
        a.extend_from_slice(flags);
        agent_cli(&alice, &a)
    };
    for (flags, list) in [
        (&["--ip", "8.8.8.8"][..], "public-dns-resolvers"),
        (&["--domain", "github.com"], "registries-and-code-hosts"),
        (&["--purl", "pkg:npm/lodash"], "popular-packages"),
        (&["--ip", "203.0.113.9"], "documentation-ranges"),
    ] {
        let (code, out, err) = publish(flags);
        assert_eq!(code, Some(64), "{flags:?}: {out} {err}");
        assert!(
            err.contains(&format!("on the benign list {list} (version ")),
            "{err}"
        );
        assert!(err.contains("--force-benign"), "{err}");
    }
    assert_eq!(stored(&data), before);

    // A typosquat of the popular package, and a real C2 address, pass.
    let (code, _, err) = publish(&[
        "--purl",
        "pkg:npm/lodahs@4.17.21",
        "--threat",
        "typosquat",
        "--imitates",
        "pkg:npm/lodash",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = publish(&["--ip", "45.77.10.3"]);
    assert_eq!(code, Some(0), "{err}");
    // The analyst who knows better says so.
    let (code, out, err) = publish(&["--domain", "github.com", "--force-benign"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("id="), "{out}");
    assert!(
        err.contains("published anyway: domain `github.com` is on the benign list"),
        "{err}"
    );
    assert_eq!(stored(&data), before + 3);
    hub.terminate();
}

#[test]
fn csv_and_stix_imports_are_scanned_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let alice = dir.path().join("alice");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    enroll_with_cli(&data, &hub.url(), "alice-bank", None, &alice);
    std::fs::write(
        alice.join("agent.toml"),
        "[scrub]\nown_domains = [\"alice-bank.example\"]\npeople = [\"Mallory Jones\"]\n",
    )
    .unwrap();
    let before = stored(&data);
    let csv = dir.path().join("rows.csv");
    std::fs::write(
        &csv,
        "kind,purl,tlp,title,description\n\
         package,pkg:npm/evil-one@1.0.0,green,bad one,found on build01.alice-bank.example\n\
         package,pkg:npm/evil-two@1.0.0,green,bad two,seen by Mallory Jones\n\
         package,pkg:npm/evil-three@1.0.0,green,bad three,clean\n",
    )
    .unwrap();
    let (code, _, err) = agent_cli(&alice, &["publish", "--csv", csv.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("rows.csv:2") && err.contains("own-host"),
        "{err}"
    );
    assert!(
        err.contains("rows.csv:3") && err.contains("person"),
        "{err}"
    );
    assert!(err.contains("2 invalid row(s), nothing published"), "{err}");
    assert_eq!(stored(&data), before);
    let (code, out, err) = agent_cli(
        &alice,
        &["publish", "--csv", csv.to_str().unwrap(), "--redact"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("3 published"), "{out}");
    assert!(err.contains("rows.csv:2: redacted: description"), "{err}");
    assert_eq!(stored(&data), before + 3);

    let stix = dir.path().join("bundle.json");
    std::fs::write(
        &stix,
        r#"{"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": [
          {"type": "indicator", "spec_version": "2.1", "id": "indicator--0f8d3d9e-4f1b-4e39-9d3c-6f0b1c2d3e4f",
           "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
           "name": "Resolver", "pattern": "[ipv4-addr:value = '8.8.8.8']", "pattern_type": "stix",
           "valid_from": "2024-01-01T00:00:00Z"}]}"#,
    )
    .unwrap();
    let (code, _, err) = agent_cli(
        &alice,
        &[
            "publish",
            "--stix",
            stix.to_str().unwrap(),
            "--tlp",
            "clear",
        ],
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("public-dns-resolvers"), "{err}");
    assert_eq!(stored(&data), before + 3);
    hub.terminate();
}
