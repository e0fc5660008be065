//! The hub does not link the member agent (its console, sinks and lockfile
//! parsers): `hub --remote` connects through `isac-client`. This reads the
//! manifest rather than running cargo.

const KINDS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];

/// Every dependency table: `[dependencies]` and the like, and the same
/// under `[target.'cfg(..)']`.
fn dependency_tables(manifest: &toml::Table) -> Vec<(String, &toml::Table)> {
    let mut tables = Vec::new();
    for kind in KINDS {
        if let Some(t) = manifest.get(kind).and_then(|v| v.as_table()) {
            tables.push((kind.to_owned(), t));
        }
    }
    if let Some(targets) = manifest.get("target").and_then(|v| v.as_table()) {
        for (cfg, t) in targets {
            for kind in KINDS {
                if let Some(t) = t.get(kind).and_then(|v| v.as_table()) {
                    tables.push((format!("target.{cfg}.{kind}"), t));
                }
            }
        }
    }
    tables
}

/// Where a manifest lists the member agent: by name, renamed
/// (`x = { package = "member-agent" }`) or by path.
fn member_agent_entries(manifest: &toml::Table) -> Vec<String> {
    let mut found = Vec::new();
    for (kind, table) in dependency_tables(manifest) {
        for (name, spec) in table {
            let package = spec.get("package").and_then(|v| v.as_str());
            let path = spec.get("path").and_then(|v| v.as_str()).unwrap_or("");
            if name == "member-agent"
                || package == Some("member-agent")
                || path.trim_end_matches('/').ends_with("member-agent")
            {
                found.push(format!("[{kind}] {name}"));
            }
        }
    }
    found
}

fn hub_manifest() -> toml::Table {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let text = std::fs::read_to_string(path).expect("hub/Cargo.toml");
    toml::from_str(&text).expect("hub/Cargo.toml parses")
}

#[test]
fn the_hub_does_not_depend_on_the_member_agent() {
    let manifest = hub_manifest();
    let found = member_agent_entries(&manifest);
    assert!(
        found.is_empty(),
        "hub/Cargo.toml lists the member agent ({}); the hub connects through \
         isac-client and must not link the agent",
        found.join(", ")
    );
    let deps = manifest["dependencies"].as_table().expect("[dependencies]");
    assert!(
        deps.contains_key("isac-client"),
        "`hub --remote` connects through isac-client"
    );
}

#[test]
fn the_check_finds_every_way_of_listing_it() {
    for text in [
        "[dependencies]\nmember-agent.workspace = true\n",
        "[dev-dependencies]\nmember-agent = { path = \"../member-agent\" }\n",
        "[dependencies]\nagent = { package = \"member-agent\", workspace = true }\n",
        "[target.'cfg(unix)'.dependencies]\nma = { path = \"../member-agent/\" }\n",
    ] {
        let manifest: toml::Table = toml::from_str(text).unwrap();
        assert_eq!(member_agent_entries(&manifest).len(), 1, "{text}");
    }
    let fine: toml::Table =
        toml::from_str("[dependencies]\nisac-client.workspace = true\n").unwrap();
    assert!(member_agent_entries(&fine).is_empty());
}
