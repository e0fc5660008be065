//! A subscriber the hub refuses ends the bench with its reason and a
//! non-zero exit, instead of a panicked task and a bench that waits for it
//! forever. Runs the real `isac-bench` and `hub` binaries (build the hub
//! first: `cargo build -p hub -p member-agent`).

use std::process::Command;

#[test]
fn a_refused_subscriber_ends_the_run_with_its_reason() {
    // The hub (a child of the bench) inherits this environment: a per-member
    // stream limit of 2, and a bench told to put 3 streams on one member.
    let out = Command::new(env!("CARGO_BIN_EXE_isac-bench"))
        .args([
            "--smoke",
            "--idle",
            "1",
            "--subscribers",
            "3",
            "--streams-per-member",
            "3",
            "--agents",
            "0",
        ])
        .env("ISAC_HUB_MAX_STREAMS_PER_MEMBER", "2")
        .output()
        .expect("run isac-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        // Which of the three is refused depends on which stream opens last.
        stderr.contains("isac-bench: fanout: subscriber ")
            && stderr.contains("failed before publishing began")
            && stderr.contains("ResourceExhausted")
            && stderr.contains("already has 2 open streams"),
        "stderr: {stderr}"
    );
    assert!(out.stdout.is_empty(), "no figures after a failure");
}
