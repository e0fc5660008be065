//! Issue 22, publishing and reading in the console, in headless Chromium
//! (tests/browser/publishing.py) against a real hub process and real
//! agents: the publish form refusing what is not a version and keeping
//! every pasted observable, the preview of what will be signed, a link to
//! each new item, a bulletin's Markdown with a `<script>` shown as text,
//! the retraction banner, and "shared with you" on an AMBER item.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use isac_e2e::{run, HubProcess};

use crate::console::{agent, enroll, start_with_link, Procs};

/// Runs the agent CLI; returns the `id=` it prints.
fn cli(state: &Path, args: &[&str]) -> String {
    let (ok, out, err) = run(agent(state).args(args));
    assert!(ok, "{args:?}: {err}");
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("id="))
        .unwrap_or_default()
        .to_owned()
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn publishing_and_reading_in_headless_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists(),
        "headless Chromium is missing: run scripts/install-deps"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let (alice, bob) = (tmp.path().join("alice"), tmp.path().join("bob"));
    enroll(
        &data,
        &hub,
        "alice-bank",
        "Alice Bank",
        "coordinator",
        &alice,
    );
    enroll(&data, &hub, "bob-bank", "Bob Bank", "member", &bob);

    // An indicator the bulletin names, one to retract, one for bob only.
    let related = cli(
        &alice,
        &[
            "publish",
            "--purl",
            "pkg:npm/token-stealer@1.0.0",
            "--tlp",
            "green",
            "--title",
            "token-stealer posts npm tokens",
        ],
    );
    let retracted = cli(
        &alice,
        &[
            "publish",
            "--domain",
            "mistaken.example",
            "--tlp",
            "green",
            "--title",
            "mistaken C2 domain",
        ],
    );
    let amber = cli(
        &alice,
        &[
            "publish",
            "--domain",
            "amber-c2.example",
            "--tlp",
            "amber",
            "--audience",
            "org:bob-bank",
            "--title",
            "C2 shared with bob-bank only",
        ],
    );
    // The retraction's TLP follows the held item: sync it first.
    let (ok, _, err) = run(agent(&alice)
        .args(["sync", "--jsonl"])
        .arg(tmp.path().join("alice-sync.jsonl")));
    assert!(ok, "{err}");
    cli(
        &alice,
        &[
            "retract",
            &retracted,
            "--reason",
            "a sinkhole of a security vendor, not C2",
        ],
    );
    let body = tmp.path().join("bulletin.md");
    std::fs::write(
        &body,
        "## What happened\n\nMembers **must** rotate npm tokens used in CI.\n\n\
         <script>window.__xss=1;alert(\"xss\")</script>\n\n\
         - see [the advisory](https://example.org/advisory)\n- and [this](javascript:window.__xss=2)\n",
    )
    .unwrap();
    let bulletin = {
        let (ok, out, err) = run(agent(&alice)
            .args([
                "bulletin",
                "--title",
                "INC-2026-050: npm token theft",
                "--tlp",
                "green",
                "--severity",
                "critical",
                "--related",
                &related,
                "--body",
            ])
            .arg(&body));
        assert!(ok, "{err}");
        out.split_whitespace()
            .find_map(|w| w.strip_prefix("id="))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(!bulletin.is_empty(), "no bulletin id");

    let mut procs = Procs(vec![]);
    let mut links = serde_json::Map::new();
    for (name, state) in [("alice", &alice), ("bob", &bob)] {
        let mut run_ui = agent(state);
        run_ui
            .arg("run")
            .arg("--jsonl")
            .arg(tmp.path().join(format!("{name}.jsonl")))
            .args(["--ui", "127.0.0.1:0"]);
        let link = start_with_link(
            run_ui,
            &tmp.path().join(format!("{name}-run.log")),
            &mut procs,
        );
        links.insert(name.into(), link.into());
    }
    eventually(
        "alice's daemon to hold the bulletin and the retraction",
        || {
            let (_, out, _) = run(agent(&alice).args(["list", "--json"]));
            out.contains(&bulletin) && out.lines().count() >= 5
        },
    );
    eventually("bob's daemon to hold the AMBER item", || {
        let (_, out, _) = run(agent(&bob).args(["list", "--json"]));
        out.contains(&amber)
    });

    let screenshots = std::env::var_os("ISAC_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("screenshots"));
    let config = tmp.path().join("browser.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "links": links,
            "agent_bin": isac_e2e::bin_dir().join("member-agent"),
            "alice_state": alice,
            "bulletin": bulletin,
            "related": related,
            "retracted": retracted,
            "amber": amber,
            "screenshots": screenshots,
        })
        .to_string(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/publishing.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs: String = ["alice-run.log", "bob-run.log"]
        .iter()
        .map(|f| format!("--- {f}\n{}", read(&tmp.path().join(f))))
        .collect();
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{stderr}\n{logs}"
    );
    for step in [
        "ok: Versions holding threat= and imitates= text is refused next to the field",
        "ok: a typosquat without imitates is refused next to Imitates",
        "ok: three pasted domains are three statements in the review",
        "ok: nothing is signed before the review",
        "ok: after signing, a link to each new item",
        "ok: the new item page opens with its summary",
        "ok: every pasted domain was published, none in the title",
        "ok: the refused form signed nothing",
        "ok: the bulletin's Markdown is rendered at the top, its <script> shown as text",
        "ok: the retracted item opens with a banner and takes no sighting",
        "ok: bob reads the AMBER item as shared with bob-bank",
        "ALL OK",
    ] {
        assert!(stdout.contains(step), "missing `{step}` in:\n{stdout}");
    }
    for shot in ["publish-refused", "publish-review", "bulletin", "retracted"] {
        assert!(
            screenshots.join(format!("{shot}.png")).exists(),
            "{shot}.png"
        );
    }
    drop(procs);
    hub.terminate();
}
