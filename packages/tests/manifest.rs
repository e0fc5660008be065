//! `isac-packages` stays pure: no I/O, async runtime, SQL, network or
//! crypto crates, and no file, socket, process or environment access in
//! its sources. It must stay usable from `core`, the agent, the hub and
//! the console alike.

use std::path::Path;

#[test]
fn the_manifest_lists_no_io_crates() {
    let manifest = include_str!("../Cargo.toml");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table")
        .split("\n[")
        .next()
        .unwrap_or_default();
    for banned in [
        "tokio",
        "rusqlite",
        "tonic",
        "hyper",
        "axum",
        "openssl",
        "isac-core",
        "isac-client",
        "member-agent",
        "hub",
    ] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(banned)),
            "isac-packages depends on {banned}"
        );
    }
}

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source");
            out.push((path.display().to_string(), text));
        }
    }
}

#[test]
fn the_sources_touch_no_files_sockets_processes_or_environment() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() >= 10, "found only {} sources", files.len());
    for (path, text) in files {
        for banned in [
            "std::fs",
            "std::net",
            "std::process",
            "std::env",
            "std::io",
            "std::time",
        ] {
            assert!(!text.contains(banned), "{path} uses {banned}");
        }
    }
}
