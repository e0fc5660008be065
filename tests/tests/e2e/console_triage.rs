//! The console's triage (issue 22) in headless Chromium against a real hub,
//! a real `member-agent run` and a real `member-agent ui`: sorting, paging
//! with the filters kept, several values per filter, a date range, j/k and
//! `/`, a pasted text block's observables looked up, and "new since my last
//! visit" across a restart of the console (the read mark is in the agent's
//! store, the browser keeps its visitor cookie). tests/browser/triage.py
//! drives the browser; this test starts and restarts the processes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use isac_e2e::{run, HubProcess};

use crate::console::{agent, enroll, start_with_link, Procs};

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out waiting for {what}");
}

fn held(state: &Path) -> usize {
    let (_, out, _) = run(agent(state).args(["list", "--ids", "--limit", "1000"]));
    out.lines().count()
}

/// 130 indicators of every observable kind, severity and TLP the test
/// filters on, as one `publish --csv` file.
fn realistic_csv() -> String {
    let sevs = ["info", "low", "medium", "high", "critical"];
    let tlps = ["clear", "green", "amber", "green", "amber+strict"];
    let mut csv = String::from("kind,purl,sha256,domain,tlp,audience,severity,title\n");
    for i in 0..130usize {
        let tlp = tlps[i % tlps.len()];
        let audience = if tlp == "amber+strict" {
            "org:carol-bank"
        } else {
            ""
        };
        let (kind, purl, sha, domain) = match i % 4 {
            0 => (
                "package",
                format!("pkg:npm/triage-{i}@1.0.{i}"),
                String::new(),
                String::new(),
            ),
            1 => (
                "package",
                format!("pkg:pypi/triage-{i}@1.{i}"),
                String::new(),
                String::new(),
            ),
            2 => (
                "artifact",
                String::new(),
                format!("{:064x}", 0xabc000 + i),
                String::new(),
            ),
            _ => (
                "network",
                String::new(),
                String::new(),
                format!("triage-{i}.example"),
            ),
        };
        csv.push_str(&format!(
            "{kind},{purl},{sha},{domain},{tlp},{audience},{},triage item {i:03}\n",
            sevs[i % sevs.len()]
        ));
    }
    csv
}

#[test]
fn console_triage_sorts_pages_filters_finds_pasted_observables_and_counts_new_items_in_headless_chromium(
) {
    assert!(
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists(),
        "headless Chromium is missing: run scripts/install-deps"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    let (alice, carol) = (tmp.path().join("alice"), tmp.path().join("carol"));
    enroll(&data, &hub, "alice-bank", "alice-bank", "member", &alice);
    enroll(&data, &hub, "carol-bank", "carol-bank", "member", &carol);
    let csv = tmp.path().join("items.csv");
    std::fs::write(&csv, realistic_csv()).unwrap();
    let (ok, out, err) = run(agent(&alice).arg("publish").arg("--csv").arg(&csv));
    assert!(ok, "publish --csv: {out}\n{err}");
    // What the pasted text names: a scoped package (signed with %40,
    // pasted with @) and a domain (pasted inside a URL).
    for args in [
        &[
            "--purl",
            "pkg:npm/%40acme/widget@2.0.0",
            "--title",
            "acme widget backdoored",
        ][..],
        &[
            "--domain",
            "c2.triage.example",
            "--title",
            "triage C2 domain",
        ],
    ] {
        let (ok, _, err) = run(agent(&alice).arg("publish").args(args).args([
            "--tlp",
            "green",
            "--severity",
            "critical",
        ]));
        assert!(ok, "{err}");
    }

    let mut procs = Procs(vec![]);
    let daemon = agent(&carol)
        .arg("run")
        .arg("--jsonl")
        .arg(tmp.path().join("carol.jsonl"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("carol-run.log")).unwrap())
        .spawn()
        .unwrap();
    procs.0.push(daemon);
    // The daemon's own log is the only witness if this ever times out.
    let run_log = tmp.path().join("carol-run.log");
    let start = Instant::now();
    while held(&carol) < 132 {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "timed out waiting for carol's daemon to hold 132 items: it holds {}; its log:\n{}",
            held(&carol),
            std::fs::read_to_string(&run_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut ui = agent(&carol);
    ui.args(["ui", "--listen", "127.0.0.1:0"]);
    let mut ui_procs = Procs(vec![]);
    let link = start_with_link(ui, &tmp.path().join("ui-1.log"), &mut ui_procs);

    let resume = tmp.path().join("resume.json");
    let config = tmp.path().join("browser.json");
    std::fs::write(
        &config,
        serde_json::json!({ "link": link, "resume": resume, "today": today() }).to_string(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/triage.py");
    let mut browser = Command::new("python3")
        .arg(&script)
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(tmp.path().join("browser.err")).unwrap())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let mut paused = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        stdout.push_str(&line);
        stdout.push('\n');
        if line == "PAUSE: restart the console" {
            paused = true;
            break;
        }
    }
    if paused {
        // The console stops; three items arrive while nobody looks; a new
        // console (another port, another login) serves the same store.
        drop(ui_procs);
        for n in 1..=3 {
            let (ok, _, err) = run(agent(&alice).args([
                "publish",
                "--domain",
                &format!("away-{n}.example"),
                "--tlp",
                "green",
                "--severity",
                "high",
                "--title",
                &format!("arrived while away {n}"),
            ]));
            assert!(ok, "{err}");
        }
        eventually("carol's daemon to hold 135 items", || held(&carol) >= 135);
        let mut ui = agent(&carol);
        ui.args(["ui", "--listen", "127.0.0.1:0"]);
        let link = start_with_link(ui, &tmp.path().join("ui-2.log"), &mut procs);
        std::fs::write(&resume, serde_json::json!({ "link": link }).to_string()).unwrap();
        for line in lines {
            stdout.push_str(&line.unwrap());
            stdout.push('\n');
        }
    }
    let status = browser.wait().unwrap();
    let logs = format!(
        "{}\n--- ui-1.log\n{}\n--- ui-2.log\n{}",
        std::fs::read_to_string(tmp.path().join("browser.err")).unwrap_or_default(),
        std::fs::read_to_string(tmp.path().join("ui-1.log")).unwrap_or_default(),
        std::fs::read_to_string(tmp.path().join("ui-2.log")).unwrap_or_default(),
    );
    assert!(status.success(), "browser script failed:\n{stdout}\n{logs}");
    for step in [
        "ok: a first visit counts every held item as new; marking all read clears it",
        "ok: sorting by severity, both ways, server-side",
        "ok: pages keep the filters and order; no row twice, none lost",
        "ok: several kinds, TLP AMBER or stricter, ecosystems and a date range",
        "ok: j / k move through the rows, / goes to search",
        "ok: a pasted text block finds the known indicators and offers to publish the rest",
        "ok: a purl with @ finds the item signed with %40; a URL finds its known domain",
        "ok: after a restart, the three items that arrived are new, counted and shown alone",
        "ALL OK",
    ] {
        assert!(
            stdout.contains(step),
            "missing `{step}` in:\n{stdout}\n{logs}"
        );
    }
    drop(procs);
    hub.terminate();
}

/// Today's date (UTC) as YYYY-MM-DD, for the date filter.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    isac_core::time::format_rfc3339(secs)[..10].to_owned()
}
