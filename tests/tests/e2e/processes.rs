//! End to end with real processes: the `hub` and `member-agent` binaries as
//! an operator and a member would run them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use isac_e2e::{assert_valid_stix, bin, enroll_with_cli, run, HubProcess};

fn hub_cli(data: &Path, args: &[&str]) -> (bool, String, String) {
    run(bin("hub").arg("--data-dir").arg(data).args(args))
}

fn agent_cli(state: &Path, args: &[&str]) -> (bool, String, String) {
    run(bin("member-agent").arg("--state-dir").arg(state).args(args))
}

fn enroll(data: &Path, hub: &HubProcess, org: &str, state: &Path) {
    let out = enroll_with_cli(data, &hub.url(), org, Some(&format!("{org} Ltd")), state);
    assert!(out.contains(&format!("enrolled as `{org}`")), "{out}");
}

fn publish(state: &Path, purl: &str) -> (String, u64) {
    let (ok, out, err) = agent_cli(
        state,
        &[
            "publish",
            "--kind",
            "package",
            "--purl",
            purl,
            "--tlp",
            "green",
            "--title",
            "malicious package",
            "--severity",
            "critical",
        ],
    );
    assert!(ok, "{err}");
    // id=<uuid> revision=1 (no hub position: members never see one)
    let field = |name: &str| {
        out.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .to_owned()
    };
    assert!(!out.contains("sequence"), "{out}");
    (field("id"), field("revision").parse().unwrap())
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn restarting_the_hub_keeps_members_keys_and_items_and_sync_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let jsonl = dir.path().join("bob.jsonl");

    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let listen = hub.addr.clone();
    enroll(&data, &hub, "alice-bank", &alice);
    enroll(&data, &hub, "bob-bank", &bob);
    let (first_id, first_revision) = publish(&alice, "pkg:npm/evil-pkg@1.0.0");
    assert_eq!(first_revision, 1);
    let (ok, _, err) = agent_cli(&bob, &["sync", "--jsonl", jsonl.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains("1 new"), "{err}");
    hub.terminate();

    // Same data dir, same address.
    let hub = HubProcess::start(&data, &listen);
    let (ok, out, _) = hub_cli(&data, &["member", "list"]);
    assert!(ok);
    assert!(
        out.contains("alice-bank") && out.contains("alice-bank Ltd") && out.contains("bob-bank"),
        "{out}"
    );
    publish(&alice, "pkg:pypi/reqeusts@2.0.0");
    publish(&alice, "pkg:cargo/evil-crate@0.1.0");

    let (ok, _, err) = agent_cli(&bob, &["sync", "--jsonl", jsonl.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains("2 new") && err.contains("cursor 3"), "{err}");
    let got = lines(&jsonl);
    let seqs: Vec<u64> = got
        .iter()
        .map(|l| l["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3],
        "exactly what it had not seen, once each"
    );
    assert_eq!(got[0]["id"], first_id.as_str());
    assert_eq!(got[0]["source_name"], "alice-bank Ltd");
    let (ok, out, err) = hub_cli(&data, &["status"]);
    assert!(ok, "{err}");
    for line in [
        "head_sequence: 3",
        "statements: 3 (green=3)",
        "members: active=2",
        "signing_keys: active=2",
    ] {
        assert!(out.contains(line), "{line} missing from:\n{out}");
    }

    let (ok, out, _) = agent_cli(&bob, &["list"]);
    assert!(ok);
    assert!(
        out.contains("pkg:cargo/evil-crate@0.1.0") && out.contains("TLP:GREEN"),
        "{out}"
    );
    hub.terminate();
}

#[test]
fn publish_rejects_bad_flags_before_sending_and_accepts_json_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let alice = dir.path().join("alice");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    enroll(&data, &hub, "alice-bank", &alice);

    for (args, expect) in [
        (
            vec!["--purl", "npm/evil", "--tlp", "green", "--title", "t"],
            "must start with `pkg:`",
        ),
        (
            vec![
                "--kind",
                "package",
                "--domain",
                "evil.example",
                "--tlp",
                "green",
                "--title",
                "t",
            ],
            "--domain does not fit --kind package",
        ),
        (
            vec!["--sha256", "1234", "--tlp", "green", "--title", "t"],
            "64 lowercase hex",
        ),
        (
            vec![
                "--domain",
                "evil..example",
                "--tlp",
                "green",
                "--title",
                "t",
            ],
            "invalid domain",
        ),
        (
            vec!["--purl", "pkg:npm/x", "--tlp", "white", "--title", "t"],
            "unknown TLP label",
        ),
        (
            vec!["--purl", "pkg:npm/x", "--title", "t"],
            "--tlp is required",
        ),
    ] {
        let mut full = vec!["publish"];
        full.extend(args);
        let out = bin("member-agent")
            .arg("--state-dir")
            .arg(&alice)
            .args(&full)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{full:?}: {stderr}");
        assert!(stderr.contains(expect), "{full:?}: {stderr}");
    }

    let json = dir.path().join("indicator.json");
    std::fs::write(
        &json,
        r#"{"kind":"network","domain":"c2.evil.example","tlp":"clear","title":"C2 for the evil-pkg payload","confidence":80,"labels":["c2"]}"#,
    )
    .unwrap();
    let (ok, out, err) = agent_cli(
        &alice,
        &[
            "publish",
            "--json",
            json.to_str().unwrap(),
            "--severity",
            "high",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("revision=1"), "{out}");

    let (ok, _, err) = hub_cli(&data, &["member", "add", "Not A Slug"]);
    assert!(!ok && err.contains("not a valid organisation id"), "{err}");
    let (ok, _, err) = hub_cli(&data, &["member", "add", "alice-bank"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    hub.terminate();
}

#[test]
fn operator_cli_covers_the_member_and_key_lifecycle_locally_and_remotely() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let (alice, ops, staff) = (
        dir.path().join("alice"),
        dir.path().join("ops"),
        dir.path().join("staff"),
    );
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    enroll(&data, &hub, "alice-bank", &alice);
    let (ok, token, err) = hub_cli(&data, &["member", "add", "isac-ops", "--role", "admin"]);
    assert!(ok, "{err}");
    let (ok, _, err) = agent_cli(
        &ops,
        &["enroll", "--hub", &hub.url(), "--token", token.trim()],
    );
    assert!(ok, "{err}");
    let (ok, token, _) = hub_cli(
        &data,
        &["member", "add", "isac-staff", "--role", "coordinator"],
    );
    assert!(ok);
    let (ok, _, err) = agent_cli(
        &staff,
        &["enroll", "--hub", &hub.url(), "--token", token.trim()],
    );
    assert!(ok, "{err}");

    // People, locally and through the remote Admin API.
    let (ok, _, err) = hub_cli(
        &data,
        &[
            "person",
            "add",
            "alice-bank",
            "ann",
            "--name",
            "Ann Analyst",
            "--contact",
            "ann@alice.example",
        ],
    );
    assert!(ok, "{err}");
    let remote = ["--remote", ops.to_str().unwrap()];
    let (ok, out, err) = hub_cli(
        &data,
        &[&remote[..], &["person", "list", "alice-bank"]].concat(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("alice-bank/ann Ann Analyst"), "{out}");
    let (ok, _, err) =
        run(bin("hub").args(["--remote", alice.to_str().unwrap(), "member", "list"]));
    assert!(
        !ok && err.contains("PermissionDenied"),
        "a plain member is not an admin: {err}"
    );

    // Keys: one a line, key id first, then org and state.
    let (ok, out, _) = agent_cli(&alice, &["key", "rotate"]);
    assert!(ok, "{out}");
    let (ok, out, _) = hub_cli(&data, &["key", "list"]);
    assert!(ok);
    let alice_keys: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f[1] == "alice-bank")
        .collect();
    assert_eq!(alice_keys.len(), 2, "{out}");
    assert!(alice_keys.iter().all(|f| f[0].len() == 64));
    let mut states: Vec<&str> = alice_keys.iter().map(|f| f[2]).collect();
    states.sort();
    assert_eq!(states, vec!["active", "retired"]);
    let active = alice_keys.iter().find(|f| f[2] == "active").unwrap()[0].to_owned();
    let (ok, out, _) = agent_cli(&alice, &["key", "list"]);
    assert!(
        ok && out.contains(&active) && out.contains("this agent signs with it"),
        "{out}"
    );

    // Publishing still works with the new key; then the key is revoked remotely.
    publish(&alice, "pkg:npm/after-rotation@1.0.0");
    let (ok, out, err) = hub_cli(
        &data,
        &[
            &remote[..],
            &["key", "revoke", &active, "--reason", "compromised"],
        ]
        .concat(),
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!("{active} alice-bank revoked")),
        "{out}"
    );
    let out = bin("member-agent")
        .arg("--state-dir")
        .arg(&alice)
        .args([
            "publish",
            "--purl",
            "pkg:npm/x",
            "--tlp",
            "green",
            "--title",
            "t",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoked"));

    // Bulletins: coordinators only.
    let body = dir.path().join("bulletin.txt");
    std::fs::write(&body, "Rotate your npm tokens.\n").unwrap();
    let args = [
        "bulletin",
        "--title",
        "npm campaign",
        "--body",
        body.to_str().unwrap(),
        "--tlp",
        "green",
        "--incident",
        "INC-1",
    ];
    let (ok, _, err) = agent_cli(&ops, &args);
    assert!(!ok && err.contains("only coordinators"), "{err}");
    let (ok, out, err) = agent_cli(&staff, &args);
    assert!(ok && out.contains("revision="), "{err}");

    // Suspend, show, audit.
    let (ok, out, _) = hub_cli(&data, &["member", "suspend", "alice-bank"]);
    assert!(ok && out.contains("suspended"), "{out}");
    let (ok, out, _) = hub_cli(&data, &["member", "show", "alice-bank"]);
    assert!(
        ok && out.contains("status: suspended") && out.contains("ann Ann Analyst"),
        "{out}"
    );
    let (ok, out, _) = hub_cli(&data, &["audit"]);
    assert!(ok);
    for action in [
        "member.add",
        "agent.enroll",
        "person.add",
        "key.rotate",
        "key.revoke",
        "member.suspend",
    ] {
        assert!(out.contains(action), "{action} missing from audit:\n{out}");
    }
    assert!(
        out.contains("org:isac-ops/agent:default key.revoke"),
        "{out}"
    );
    hub.terminate();
}

#[test]
fn tlp_audiences_anonymity_sightings_and_retractions_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let (alice, bob, carol) = (
        dir.path().join("alice"),
        dir.path().join("bob"),
        dir.path().join("carol"),
    );
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    enroll(&data, &hub, "alice-bank", &alice);
    enroll(&data, &hub, "bob-bank", &bob);
    enroll(&data, &hub, "carol-bank", &carol);
    let (ok, out, err) = hub_cli(
        &data,
        &[
            "group",
            "add",
            "payments",
            "--members",
            "bob-bank,alice-bank",
        ],
    );
    assert!(ok && out.contains("payments"), "{err}");
    let (ok, out, _) = hub_cli(&data, &["group", "list"]);
    assert!(ok && out.contains("payments alice-bank,bob-bank"), "{out}");
    let (ok, _, err) = hub_cli(
        &data,
        &["person", "add", "bob-bank", "jdoe", "--name", "J. Doe"],
    );
    assert!(ok, "{err}");

    let publish_args = |extra: &[&str]| {
        let mut v = vec!["publish", "--purl", "pkg:npm/evil-pkg@1.0.0", "--title"];
        v.extend_from_slice(extra);
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    for extra in [
        vec![
            "strict for payments",
            "--tlp",
            "amber+strict",
            "--audience",
            "group:payments",
        ],
        vec![
            "red for jdoe",
            "--tlp",
            "red",
            "--audience",
            "person:bob-bank/jdoe",
        ],
        vec!["anonymous tip", "--tlp", "green", "--anonymous"],
    ] {
        let args = publish_args(&extra);
        let (ok, out, err) = run(bin("member-agent")
            .arg("--state-dir")
            .arg(&alice)
            .args(&args));
        assert!(ok && out.contains("revision="), "{extra:?}: {err}");
    }
    let args = publish_args(&["bad", "--tlp", "red", "--audience", "org:bob-bank"]);
    let out = bin("member-agent")
        .arg("--state-dir")
        .arg(&alice)
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("names people only"));

    // bob gets all three (RED only into the store unless --export-red); carol only the GREEN one.
    let bob_jsonl = dir.path().join("bob.jsonl");
    let (ok, _, err) = agent_cli(&bob, &["sync", "--jsonl", bob_jsonl.to_str().unwrap()]);
    assert!(ok && err.contains("3 new"), "{err}");
    let exported = std::fs::read_to_string(&bob_jsonl).unwrap();
    assert_eq!(
        exported.lines().count(),
        2,
        "RED stays out of the sink: {exported}"
    );
    assert!(exported.contains("\"tlp_strict\":true"));
    assert!(exported.contains("\"source\":\"anonymous\""), "{exported}");
    let (ok, out, _) = agent_cli(&bob, &["list"]);
    assert!(
        ok && out.contains("TLP:RED") && out.contains("red for jdoe"),
        "{out}"
    );
    let (ok, _, err) = agent_cli(
        &carol,
        &[
            "sync",
            "--jsonl",
            dir.path().join("carol.jsonl").to_str().unwrap(),
        ],
    );
    assert!(ok && err.contains("1 new"), "{err}");
    let (ok, out, _) = agent_cli(&carol, &["list"]);
    assert!(
        ok && out.contains("anonymous tip") && !out.contains("strict") && !out.contains("red for"),
        "{out}"
    );

    // carol sights the GREEN item; alice retracts it; bob sees it retracted.
    let (_, out, _) = agent_cli(&carol, &["list", "--json"]);
    let green_id = serde_json::from_str::<serde_json::Value>(out.lines().next().unwrap()).unwrap()
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, _, err) = agent_cli(&carol, &["sight", &green_id, "--count", "2"]);
    assert!(ok, "{err}");
    let (ok, _, err) = agent_cli(&carol, &["retract", &green_id]);
    assert!(
        !ok && err.contains("only the item's source or a coordinator"),
        "{err}"
    );
    let (ok, _, err) = agent_cli(
        &alice,
        &[
            "sync",
            "--jsonl",
            dir.path().join("alice.jsonl").to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = agent_cli(
        &alice,
        &["retract", &green_id, "--reason", "false positive"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = agent_cli(&bob, &["sync", "--jsonl", bob_jsonl.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, out, _) = agent_cli(&bob, &["list"]);
    assert!(ok && out.contains("[retracted]"), "{out}");
    assert!(std::fs::read_to_string(&bob_jsonl)
        .unwrap()
        .contains("\"action\":\"retract\""));
    hub.terminate();
}

#[test]
fn check_gates_a_pipeline_on_real_lockfiles_and_search_answers_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    enroll(&data, &hub, "alice-bank", &alice);
    enroll(&data, &hub, "bob-bank", &bob);
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../member-agent/tests/fixtures/lockfiles");

    // One indicator per ecosystem, each hitting an entry of a sample lockfile.
    let indicators: [&[&str]; 6] = [
        &[
            "--purl",
            "pkg:npm/%40babel/code-frame@7.23.5",
            "--title",
            "compromised babel code-frame",
        ],
        &[
            "--purl",
            "pkg:npm/%40types/node",
            "--version-range",
            ">=14.0.0 <15.0.0",
            "--title",
            "bad @types/node 14.x",
        ],
        &[
            "--purl",
            "pkg:cargo/itoa@1.0.10",
            "--title",
            "backdoored itoa build",
        ],
        &[
            "--purl",
            "pkg:pypi/charset_normalizer",
            "--version-range",
            "3.3.2",
            "--title",
            "typosquat charset-normalizer release",
        ],
        &[
            "--purl",
            "pkg:pypi/certifi@2024.2.2",
            "--title",
            "certifi hijack",
        ],
        &[
            "--purl",
            "pkg:golang/github.com/davecgh/go-spew@v1.1.1",
            "--title",
            "go-spew module takeover",
        ],
    ];
    for args in indicators {
        let mut full = vec!["publish", "--tlp", "green"];
        full.extend_from_slice(args);
        let (ok, _, err) = agent_cli(&alice, &full);
        assert!(ok, "{args:?}: {err}");
    }
    // A harmless version of a matching package must not match.
    let (ok, _, err) = agent_cli(
        &alice,
        &[
            "publish",
            "--tlp",
            "green",
            "--purl",
            "pkg:cargo/itoa@0.4.8",
            "--title",
            "old itoa",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = agent_cli(
        &bob,
        &[
            "sync",
            "--jsonl",
            dir.path().join("bob.jsonl").to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    hub.terminate(); // everything below works offline

    for (file, expect) in [
        ("package-lock.json", "compromised babel code-frame"),
        ("package-lock-v1.json", "bad @types/node 14.x"),
        ("Cargo.lock", "backdoored itoa build"),
        ("poetry.lock", "typosquat charset-normalizer release"),
        ("requirements.txt", "certifi hijack"),
        ("go.sum", "go-spew module takeover"),
    ] {
        // `check` wants the real file name, so copy under it.
        let sub = dir.path().join(file.replace('.', "_"));
        std::fs::create_dir_all(&sub).unwrap();
        let name = if file == "package-lock-v1.json" {
            "package-lock.json"
        } else {
            file
        };
        std::fs::copy(fixtures.join(file), sub.join(name)).unwrap();
        let out = bin("member-agent")
            .arg("--state-dir")
            .arg(&bob)
            .args(["check"])
            .arg(sub.join(name))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{file}: a match exits 1: {stdout}"
        );
        assert!(stdout.contains(expect), "{file}: {stdout}");
        assert!(!stdout.contains("old itoa"), "{file}: {stdout}");
    }
    // A clean lockfile passes with exit 0; garbage is a usage error.
    let clean = dir.path().join("clean");
    std::fs::create_dir_all(&clean).unwrap();
    std::fs::write(clean.join("requirements.txt"), "requests==2.31.0\n").unwrap();
    let out = bin("member-agent")
        .arg("--state-dir")
        .arg(&bob)
        .arg("check")
        .arg(clean.join("requirements.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(clean.join("package-lock.json"), "{not json").unwrap();
    let out = bin("member-agent")
        .arg("--state-dir")
        .arg(&bob)
        .arg("check")
        .arg(clean.join("package-lock.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));

    // Offline search by package name, purl, and show.
    let (ok, out, _) = agent_cli(&bob, &["search", "itoa"]);
    assert!(
        ok && out.contains("backdoored itoa build") && out.contains("old itoa"),
        "{out}"
    );
    let (ok, out, _) = agent_cli(&bob, &["search", "pkg:golang/github.com/davecgh", "--json"]);
    assert!(ok && out.lines().count() == 1, "{out}");
    let id = serde_json::from_str::<serde_json::Value>(out.lines().next().unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, out, _) = agent_cli(&bob, &["show", &id]);
    assert!(
        ok && out.contains("go-spew module takeover") && out.contains("payloadType"),
        "{out}"
    );
}

#[test]
fn osv_import_is_idempotent_revises_updates_and_retracts_withdrawals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    enroll(&data, &hub, "alice-bank", &alice);
    enroll(&data, &hub, "bob-bank", &bob);
    let real =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../member-agent/tests/fixtures/osv/real");

    let (ok, out, err) = agent_cli(
        &alice,
        &["publish", "--osv", real.to_str().unwrap(), "--tlp", "clear"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("5 records; 4 published, 0 revised, 0 unchanged, 0 retracted, 0 refused"),
        "{out}"
    );
    let (ok, out, err) = agent_cli(
        &alice,
        &["publish", "--osv", real.to_str().unwrap(), "--tlp", "clear"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("0 published, 0 revised, 4 unchanged"),
        "re-import is idempotent: {out}"
    );

    // The upstream record is updated, then withdrawn.
    let original = std::fs::read_to_string(real.join("npm/0-dns/MAL-2022-9.json")).unwrap();
    let updated = original.replace(
        "\"modified\": \"2022-06-20T20:12:58Z\"",
        "\"modified\": \"2026-11-01T00:00:00Z\"",
    );
    assert_ne!(updated, original);
    let file = dir.path().join("MAL-2022-9.json");
    std::fs::write(&file, &updated).unwrap();
    let (ok, out, err) = agent_cli(
        &alice,
        &["publish", "--osv", file.to_str().unwrap(), "--tlp", "clear"],
    );
    assert!(ok && out.contains("1 revised"), "{out} {err}");
    let withdrawn = updated.replacen('{', "{\n  \"withdrawn\": \"2026-11-20T00:00:00Z\",", 1);
    std::fs::write(&file, withdrawn).unwrap();
    let (ok, out, err) = agent_cli(
        &alice,
        &["publish", "--osv", file.to_str().unwrap(), "--tlp", "clear"],
    );
    assert!(ok && out.contains("1 retracted"), "{out} {err}");

    // Bob holds the live ones, and 0-dns as retracted.
    let (ok, _, err) = agent_cli(
        &bob,
        &[
            "sync",
            "--jsonl",
            dir.path().join("bob.jsonl").to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let (ok, out, _) = agent_cli(&bob, &["search", "0-dns"]);
    assert!(ok && out.contains("[retracted]"), "{out}");
    let (ok, out, _) = agent_cli(&bob, &["search", "rustdecimal"]);
    assert!(
        ok && out.contains("pkg:cargo/rustdecimal") && !out.contains("[retracted]"),
        "{out}"
    );
    hub.terminate();
}

/// An ossf/malicious-packages-like tree: two real reports, two reports
/// still awaiting their id (`MAL-0000-<name>.json`, `"id": ""` or none),
/// a truncated file, a record without `modified`, a record in an
/// ecosystem we cannot name. Without `--skip-invalid` nothing is sent and
/// the error names every bad record; with it the real reports are
/// published and the summary counts and names the rest. Bad input files
/// (not UTF-8, missing) exit 64 naming the file.
#[test]
fn osv_import_of_a_mixed_tree_names_every_bad_record_and_publishes_the_rest_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let alice = dir.path().join("alice");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    enroll(&data, &hub, "alice-bank", &alice);
    let real =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../member-agent/tests/fixtures/osv/real");
    let tree = dir.path().join("osv/malicious");
    let put = |rel: &str, text: &str| {
        let p = tree.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let zero_dns = std::fs::read_to_string(real.join("npm/0-dns/MAL-2022-9.json")).unwrap();
    put("npm/0-dns/MAL-2022-9.json", &zero_dns);
    put(
        "crates-io/rustdecimal/MAL-2022-1.json",
        &std::fs::read_to_string(real.join("crates.io/rustdecimal/MAL-2022-1.json")).unwrap(),
    );
    // A new report as the feed holds it until an id is assigned.
    let awaiting = zero_dns
        .replace("\"id\": \"MAL-2022-9\"", "\"id\": \"\"")
        .replace("0-dns", "evil-new-pkg")
        .replace("2022-06-20T20:12:58Z", "2026-11-30T08:00:00Z");
    put("npm/evil-new-pkg/MAL-0000-evil-new-pkg.json", &awaiting);
    put(
        "pypi/evil-old-pkg/MAL-0000-evil-old-pkg.json",
        r#"{"modified":"2026-11-29T00:00:00Z","summary":"Malicious code in evil-old-pkg (PyPI)","affected":[{"package":{"ecosystem":"PyPI","name":"evil-old-pkg"}}]}"#,
    );
    put(
        "npm/broken/MAL-2026-90001.json",
        r#"{"id": "MAL-2026-90001", "modified": "#,
    );
    put(
        "npm/nomod/MAL-2026-90002.json",
        r#"{"id":"MAL-2026-90002","affected":[{"package":{"ecosystem":"npm","name":"nomod"}}]}"#,
    );
    put(
        "hackage/evil/MAL-2026-90003.json",
        r#"{"id":"MAL-2026-90003","modified":"2026-11-01T00:00:00Z","affected":[{"package":{"ecosystem":"Hackage","name":"evil"}}]}"#,
    );
    let stored = || -> i64 {
        rusqlite::Connection::open(data.join("hub.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM statements", [], |r| r.get(0))
            .unwrap()
    };
    let tree_arg = tree.to_str().unwrap();

    let out = bin("member-agent")
        .arg("--state-dir")
        .arg(&alice)
        .args(["publish", "--osv", tree_arg, "--tlp", "clear"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    for want in [
        "2 invalid record(s) or package(s), nothing published",
        "npm/broken/MAL-2026-90001.json: not valid OSV JSON",
        "npm/nomod/MAL-2026-90002.json (MAL-2026-90002): missing `modified`",
    ] {
        assert!(err.contains(want), "{want} missing from:\n{err}");
    }
    assert_eq!(stored(), 0, "nothing partial is published");

    let (ok, out, err) = agent_cli(
        &alice,
        &[
            "publish",
            "--osv",
            tree_arg,
            "--tlp",
            "clear",
            "--skip-invalid",
        ],
    );
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains(
            "7 records; 2 published, 0 revised, 0 unchanged, 0 retracted, 0 refused, 3 skipped, 2 invalid"
        ),
        "{out}"
    );
    for want in [
        "skipped 1: ecosystem `Hackage` is not supported",
        "hackage/evil/MAL-2026-90003.json (MAL-2026-90003) affected[0]",
        "skipped 2: no `id` yet (a report awaiting its id)",
        "npm/evil-new-pkg/MAL-0000-evil-new-pkg.json",
        "pypi/evil-old-pkg/MAL-0000-evil-old-pkg.json",
        "invalid: ",
        "npm/broken/MAL-2026-90001.json: not valid OSV JSON",
        "npm/nomod/MAL-2026-90002.json (MAL-2026-90002): missing `modified`",
    ] {
        assert!(err.contains(want), "{want} missing from:\n{err}");
    }
    assert_eq!(stored(), 2);

    // The report gets its id (and its file the id's name): the next
    // import publishes it once; the one after changes nothing.
    std::fs::remove_file(tree.join("npm/evil-new-pkg/MAL-0000-evil-new-pkg.json")).unwrap();
    put(
        "npm/evil-new-pkg/MAL-2026-90010.json",
        &awaiting.replace("\"id\": \"\"", "\"id\": \"MAL-2026-90010\""),
    );
    for (round, want) in [
        (1, "1 published, 0 revised, 2 unchanged"),
        (2, "0 published, 0 revised, 3 unchanged"),
    ] {
        let (ok, out, err) = agent_cli(
            &alice,
            &[
                "publish",
                "--osv",
                tree_arg,
                "--tlp",
                "clear",
                "--skip-invalid",
            ],
        );
        assert!(ok && out.contains(want), "round {round}: {out}\n{err}");
    }
    assert_eq!(stored(), 3);

    // Bad input files exit 64 (like every other bad input) naming the file;
    // exit 1 stays `check`'s "a dependency matched".
    let latin1 = dir.path().join("iocs.csv");
    std::fs::write(
        &latin1,
        b"kind,domain,tlp,title\nnetwork,c2.example,clear,caf\xe9\n",
    )
    .unwrap();
    let reqs = dir.path().join("requirements.txt");
    std::fs::write(&reqs, b"requests==2.31.0\n# \xff\xfe\n").unwrap();
    let missing = dir.path().join("nope.csv");
    for (args, file) in [
        (vec!["publish", "--csv", latin1.to_str().unwrap()], &latin1),
        (vec!["check", reqs.to_str().unwrap()], &reqs),
        (
            vec!["publish", "--csv", missing.to_str().unwrap()],
            &missing,
        ),
        (
            vec![
                "publish",
                "--stix",
                latin1.to_str().unwrap(),
                "--tlp",
                "clear",
            ],
            &latin1,
        ),
    ] {
        let out = bin("member-agent")
            .arg("--state-dir")
            .arg(&alice)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert!(err.contains(file.to_str().unwrap()), "{args:?}: {err}");
    }
    hub.terminate();
}

#[test]
fn backup_of_a_running_hub_restores_to_a_working_hub() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let listen = hub.addr.clone();
    enroll(&data, &hub, "alice-bank", &alice);
    enroll(&data, &hub, "bob-bank", &bob);
    for p in ["pkg:npm/a@1.0.0", "pkg:npm/b@1.0.0", "pkg:npm/c@1.0.0"] {
        publish(&alice, p);
    }
    let backup = dir.path().join("backup");
    let (ok, out, err) = hub_cli(&data, &["backup", backup.to_str().unwrap()]);
    assert!(ok && out.contains("3 statements"), "{out} {err}");
    assert_eq!(
        std::fs::metadata(backup.join("ca.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let bob_jsonl = dir.path().join("bob.jsonl");
    publish(&alice, "pkg:npm/after-backup@1.0.0");
    let (ok, _, err) = agent_cli(&bob, &["sync", "--jsonl", bob_jsonl.to_str().unwrap()]);
    assert!(ok && err.contains("4 new"), "{err}");
    hub.terminate();

    let restored = dir.path().join("restored");
    let (ok, out, err) = hub_cli(&restored, &["restore", backup.to_str().unwrap()]);
    assert!(ok && out.contains("3 statements"), "{out} {err}");
    // Pointing at the wrong place is bad input: exit 64, naming it.
    let empty = dir.path().join("not-a-backup");
    std::fs::create_dir_all(&empty).unwrap();
    for (data_dir, command, arg, want) in [
        (&restored, "restore", &backup, "already holds a database"),
        (
            &dir.path().join("elsewhere"),
            "restore",
            &empty,
            "not a hub backup",
        ),
        (
            &data,
            "backup",
            &restored,
            "backup destination exists and is not empty",
        ),
    ] {
        let out = bin("hub")
            .arg("--data-dir")
            .arg(data_dir)
            .arg(command)
            .arg(arg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{command}: {err}");
        assert!(err.contains(want), "{command}: {err}");
    }
    // Same CA and keys: existing agents connect as before, but bob had
    // verified a checkpoint of 4 leaves and the restored log has 3: a
    // rollback, never silently accepted (exit 3). Once the coordinator has
    // decided, the operator hands bob the restored hub's checkpoint; his
    // cursor (4) is ahead of the restored hub (3): he is told, resumes from
    // its head, and gets what is published next (which reuses sequence 4).
    let hub = HubProcess::start(&restored, &listen);
    let mut tries = 0;
    let checkpoint = loop {
        let (ok, out, _) = hub_cli(&restored, &["log", "checkpoint"]);
        if ok && out.lines().nth(1) == Some("3") {
            break out;
        }
        tries += 1;
        assert!(
            tries < 600,
            "the restored hub never checkpointed its 3 leaves"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = bin("member-agent")
        .arg("--state-dir")
        .arg(&bob)
        .args(["sync", "--jsonl", bob_jsonl.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("ROLLBACK"), "{err}");
    let file = dir.path().join("restored.checkpoint");
    std::fs::write(&file, checkpoint).unwrap();
    let (ok, _, err) = agent_cli(
        &bob,
        &["log", "accept", "--checkpoint", file.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = agent_cli(&bob, &["sync", "--jsonl", bob_jsonl.to_str().unwrap()]);
    assert!(
        ok && err.contains("0 new, 3 already held"),
        "the accepted history is read again from its start: {err}"
    );
    publish(&alice, "pkg:npm/after-restore@1.0.0");
    let (ok, _, err) = agent_cli(&bob, &["sync", "--jsonl", bob_jsonl.to_str().unwrap()]);
    assert!(
        ok && err.contains("1 new") && err.contains("0 refused"),
        "{err}"
    );
    assert!(std::fs::read_to_string(&bob_jsonl)
        .unwrap()
        .contains("after-restore"));
    hub.terminate();
}

#[test]
fn csv_import_is_all_or_nothing_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let alice = dir.path().join("alice");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    enroll(&data, &hub, "alice-bank", &alice);
    let csv = dir.path().join("iocs.csv");
    std::fs::write(
        &csv,
        "kind,purl,domain,sha256,tlp,title,severity,labels\n\
         package,pkg:npm/evil@1.0.0,,,green,\"evil, the package\",critical,credential-theft;npm\n\
         network,,c2.evil.example,,clear,C2 domain,high,c2\n\
         package,npm/not-a-purl,,,green,broken row,high,\n\
         artifact,,,9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08,green,dropper,high,\n",
    )
    .unwrap();
    let out = bin("member-agent")
        .arg("--state-dir")
        .arg(&alice)
        .args(["publish", "--csv"])
        .arg(&csv)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("iocs.csv:4")
            && err.contains("must start with `pkg:`")
            && err.contains("nothing published"),
        "{err}"
    );
    let conn = rusqlite::Connection::open(data.join("hub.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM statements", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0, "nothing partial is published");

    let (ok, out, err) = agent_cli(
        &alice,
        &["publish", "--csv", csv.to_str().unwrap(), "--skip-invalid"],
    );
    assert!(
        ok && out.contains("4 rows; 3 published, 1 invalid"),
        "{out} {err}"
    );
    let n: i64 = conn
        .query_row("SELECT count(*) FROM statements", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);

    // Export what the agent holds: CSV round-trips into publish --csv, and
    // the STIX bundle passes the OASIS validator.
    let (ok, _, err) = agent_cli(
        &alice,
        &[
            "sync",
            "--jsonl",
            dir.path().join("a.jsonl").to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let exported = dir.path().join("export.csv");
    let (ok, _, err) = agent_cli(
        &alice,
        &[
            "export",
            "--format",
            "csv",
            "--out",
            exported.to_str().unwrap(),
        ],
    );
    assert!(ok && err.contains("exported 3 item(s)"), "{err}");
    let (ok, out, err) = agent_cli(&alice, &["publish", "--csv", exported.to_str().unwrap()]);
    assert!(
        ok && out.contains("3 rows; 3 published, 0 invalid"),
        "{out} {err}"
    );
    let (ok, _, err) = agent_cli(
        &alice,
        &[
            "sync",
            "--jsonl",
            dir.path().join("a.jsonl").to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let bundle = dir.path().join("export.json");
    let (ok, _, err) = agent_cli(
        &alice,
        &[
            "export",
            "--format",
            "stix",
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    assert!(ok && err.contains("exported 6 item(s)"), "{err}");
    assert_valid_stix(&[bundle]);
    hub.terminate();
}

#[test]
fn the_hub_logs_json_lines_when_asked() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin("hub")
        .env("RUST_LOG", "info")
        .arg("--data-dir")
        .arg(dir.path().join("hub-data"))
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--taxii-listen",
            "off",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("a log line").unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(v["level"], "INFO", "{first}");
    assert!(v["fields"]["message"].is_string(), "{first}");
}

#[test]
fn a_bad_hub_config_stops_the_hub_with_exit_64_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    std::fs::create_dir_all(&data).unwrap();
    // (hub.toml, an environment variable, what stderr must name)
    type Case<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 9] = [
        ("epoch_poll_ms = 5\n", None, "epoch_poll_ms"),
        (
            "no_cert_idle_timeout_secs = 0\n",
            None,
            "no_cert_idle_timeout_secs",
        ),
        (
            "max_connections_per_source = 100\nmax_connections_total = 50\n",
            None,
            "max_connections_total",
        ),
        (
            "",
            Some(("ISAC_HUB_MAX_CONNECTIONS_PER_SOURCE", "0")),
            "max_connections_per_source",
        ),
        (
            "server_names = [\"*\"]\n",
            None,
            "`server_names` = \"*\" is invalid",
        ),
        (
            "",
            Some(("ISAC_HUB_SERVER_NAMES", "[\"*.com\"]")),
            "server_names",
        ),
        ("lisen = \"127.0.0.1:1\"\n", None, "unknown field `lisen`"),
        (
            "",
            Some(("ISAC_HUB_PUBLISH_BURST", "lots")),
            "ISAC_HUB_PUBLISH_BURST",
        ),
        (
            "",
            Some(("ISAC_HUB_CONFIG", "/nonexistent/hub.toml")),
            "/nonexistent/hub.toml",
        ),
    ];
    for (file, env, want) in cases {
        std::fs::write(data.join("hub.toml"), file).unwrap();
        let mut cmd = bin("hub");
        cmd.arg("--data-dir")
            .arg(&data)
            .args(["serve", "--listen", "127.0.0.1:0"]);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{file:?} {env:?}: {stderr}");
        assert!(stderr.contains(want), "{file:?} {env:?}: {stderr}");
    }
    // A flag that makes the config invalid is caught too.
    std::fs::write(data.join("hub.toml"), "listen = \"127.0.0.1:17999\"\n").unwrap();
    let out = bin("hub")
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--taxii-listen", "127.0.0.1:17999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("taxii_listen"));
}

/// `hub status` prints what the running hub bound (its `--listen`
/// overrides, port 0 resolved), says "not running" once it stopped
/// cleanly and "stale" after it was killed. The same hub runs with a
/// wildcard server name of the accepted shape in its certificate.
#[test]
fn hub_status_shows_the_bound_addresses_of_the_running_hub() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("hub.toml"),
        "server_names = [\"*.isac.example\"]\n",
    )
    .unwrap();
    let line = |out: &str, name: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
            .to_owned()
    };

    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let cert =
        openssl::x509::X509::from_pem(&std::fs::read(data.join("server.crt")).unwrap()).unwrap();
    let names: Vec<String> = cert
        .subject_alt_names()
        .unwrap()
        .iter()
        .filter_map(|n| n.dnsname().map(str::to_owned))
        .collect();
    assert!(names.iter().any(|n| n == "*.isac.example"), "{names:?}");

    let (ok, out, err) = hub_cli(&data, &["status"]);
    assert!(ok, "{err}");
    assert!(line(&out, "hub").starts_with("hub: running (pid "), "{out}");
    assert_eq!(
        line(&out, "listen"),
        format!("listen: {} (configured 127.0.0.1:7443)", hub.addr),
        "{out}"
    );
    assert!(
        line(&out, "taxii_listen").starts_with(&format!("taxii_listen: {} ", hub.taxii_addr)),
        "{out}"
    );
    assert_eq!(line(&out, "metrics_listen"), "metrics_listen: off", "{out}");
    hub.terminate();

    let (ok, out, err) = hub_cli(&data, &["status"]);
    assert!(ok, "{err}");
    assert_eq!(line(&out, "hub"), "hub: not running", "{out}");
    assert_eq!(
        line(&out, "listen"),
        "listen: 127.0.0.1:7443 (configured; not running)",
        "{out}"
    );
    assert!(
        !data.join("hub.run").exists(),
        "a clean stop removes hub.run"
    );

    // Killed: the record stays behind, and status says it is stale.
    let mut hub = HubProcess::start(&data, "127.0.0.1:0");
    let addr = hub.addr.clone();
    hub.child.kill().unwrap();
    hub.child.wait().unwrap();
    let (ok, out, err) = hub_cli(&data, &["status"]);
    assert!(ok, "{err}");
    let status = line(&out, "hub");
    assert!(
        status.starts_with("hub: not running (stale hub.run: pid ")
            && status.ends_with(&format!("it was listening on {addr})")),
        "{out}"
    );
}
