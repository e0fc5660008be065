//! Statement formats across the change to v2: the stores written before it
//! (`tests/fixtures/v1-store/`: a hub.db and an agent.db made by the code
//! before v2, see make.sh there) still verify item by item with the code of
//! today, and every fixture statement validates against the JSON Schema
//! (`docs/schema/statement.v2.schema.json`, Python `jsonschema` from
//! scripts/install-deps).

use std::path::{Path, PathBuf};
use std::process::Command;

use isac_core::directory::KeyDirectory;
use isac_core::time::parse_rfc3339;
use isac_core::{
    verify_envelope, Envelope, Format, Statement, VerifyingKey, PAYLOAD_TYPE_STATEMENT_V1,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1-store")
}

/// The directory beta-bank's agent held, checked against the hub key it
/// pinned at enrollment, at the time the hub issued it.
fn fixture_directory(agent_db: &rusqlite::Connection) -> KeyDirectory {
    let json: String = agent_db
        .query_row("SELECT envelope_json FROM directory", [], |r| r.get(0))
        .unwrap();
    let env = Envelope::from_json(&json).unwrap();
    let issued: serde_json::Value = serde_json::from_slice(&env.payload).unwrap();
    let at = parse_rfc3339(issued["issued"].as_str().unwrap()).unwrap();
    let hub_key =
        VerifyingKey::from_spki_der(&std::fs::read(fixtures().join("hub-directory.pub")).unwrap())
            .unwrap();
    isac_core::directory::verify_directory(&env, &hub_key, None, at).unwrap()
}

fn open_copy(name: &str, into: &Path) -> PathBuf {
    let to = into.join(name);
    std::fs::copy(fixtures().join(name), &to).unwrap();
    to
}

/// Every (id, revision, envelope) beta-bank's agent stored before v2.
fn agent_items(conn: &rusqlite::Connection) -> Vec<(String, u32, Envelope)> {
    conn.prepare("SELECT id, revision, envelope_json FROM items ORDER BY sequence")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)))
        .unwrap()
        .map(|r| {
            let (id, rev, json) = r.unwrap();
            (id, rev, Envelope::from_json(&json).unwrap())
        })
        .collect()
}

#[test]
fn every_v1_item_stored_before_v2_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let agent_db = rusqlite::Connection::open(open_copy("agent.db", dir.path())).unwrap();
    let directory = fixture_directory(&agent_db);
    let items = agent_items(&agent_db);
    assert!(items.len() >= 8, "the fixture holds {} items", items.len());
    let mut kinds = std::collections::BTreeSet::new();
    for (id, revision, env) in &items {
        assert_eq!(env.payload_type, PAYLOAD_TYPE_STATEMENT_V1, "{id}");
        let v = verify_envelope(env, |kid| directory.record(kid))
            .unwrap_or_else(|e| panic!("{id} rev {revision}: {e}"));
        assert_eq!(v.format, Format::V1);
        assert_eq!(
            (v.statement.id.to_string(), v.statement.revision),
            (id.clone(), *revision)
        );
        // Its bytes are v1's, and v1 alone: not the v2 form.
        assert_eq!(v.statement.canonical_bytes(), env.payload);
        assert_ne!(v.statement.canonical_bytes_v2(), env.payload);
        kinds.insert(v.statement.kind());
    }
    for kind in [
        "package",
        "artifact",
        "network",
        "bulletin",
        "sighting",
        "retraction",
    ] {
        assert!(kinds.contains(kind), "no {kind} in the fixture: {kinds:?}");
    }

    // The hub's store: every statement (and every anonymous copy the hub
    // signed) verifies against the same directory.
    let hub_db = rusqlite::Connection::open(open_copy("hub.db", dir.path())).unwrap();
    let rows: Vec<HubRow> =
        hub_db
            .prepare(
                "SELECT payload_type, payload, key_id, signature, anon_payload, anon_key_id, anon_signature
                 FROM statements ORDER BY seq",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
    assert_eq!(rows.len(), items.len());
    let mut anonymous = 0;
    for (payload_type, payload, keyid, sig, anon_payload, anon_key, anon_sig) in rows {
        let env = Envelope {
            payload_type: payload_type.clone(),
            payload,
            signatures: vec![isac_core::Signature { keyid, sig }],
        };
        verify_envelope(&env, |kid| directory.record(kid)).unwrap();
        if let (Some(payload), Some(keyid), Some(sig)) = (anon_payload, anon_key, anon_sig) {
            let env = Envelope {
                payload_type,
                payload,
                signatures: vec![isac_core::Signature { keyid, sig }],
            };
            let v = verify_envelope(&env, |kid| directory.record(kid)).unwrap();
            assert_eq!(v.statement.source, "anonymous");
            anonymous += 1;
        }
    }
    assert!(anonymous >= 1, "the fixture holds an anonymous item");

    // Today's code opens both stores (migrating them) and reads every item.
    drop(agent_db);
    drop(hub_db);
    let store = member_agent::localstore::LocalStore::open(&dir.path().join("agent.db")).unwrap();
    assert_eq!(store.count_items().unwrap() as usize, items.len());
    for (id, _, _) in &items {
        assert!(store.show(id).unwrap().is_some(), "{id}");
    }
    let hub_rows = {
        let hub_store = hub::store::Store::open(&dir.path().join("hub.db")).unwrap();
        drop(hub_store);
        hub::store::count_statements(&dir.path().join("hub.db")).unwrap()
    };
    assert_eq!(hub_rows as usize, items.len());
}

/// Runs docs/schema/validate.py over `files` (`-` reads JSON Lines from
/// `stdin`); returns each statement's (name, valid, errors).
fn validate(files: &[PathBuf], stdin: Option<String>) -> Vec<(String, bool, String)> {
    use std::io::Write;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema/validate.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).args(files);
    if stdin.is_some() {
        cmd.arg("-");
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "validate.py failed (jsonschema missing? run scripts/install-deps): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["name"].as_str().unwrap().to_owned(),
                v["valid"].as_bool().unwrap(),
                v["errors"].to_string(),
            )
        })
        .collect()
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_fixture_statement_validates_against_the_schema() {
    let schema_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema/examples");
    // The schema's own examples: valid ones pass, invalid ones do not (the
    // Rust side of the invalid ones: core/tests/schema_examples.rs).
    let valid = json_files(&schema_dir.join("valid"));
    let invalid = json_files(&schema_dir.join("invalid"));
    assert!(valid.len() >= 10 && invalid.len() >= 10);
    for (name, ok, errors) in validate(&valid, None) {
        assert!(ok, "{name}: {errors}");
    }
    let refused = validate(&invalid, None);
    assert_eq!(refused.len(), invalid.len());
    for (name, ok, _) in refused {
        assert!(!ok, "the schema accepts {name}");
    }

    // Every statement in the v1 fixture store, as v2 signs it: valid.
    let dir = tempfile::tempdir().unwrap();
    let agent_db = rusqlite::Connection::open(open_copy("agent.db", dir.path())).unwrap();
    let mut lines = String::new();
    for (_, _, env) in agent_items(&agent_db) {
        let s = Statement::from_canonical_bytes(&env.payload).unwrap();
        lines.push_str(std::str::from_utf8(&s.canonical_bytes_v2()).unwrap());
        lines.push('\n');
    }
    let results = validate(&[], Some(lines));
    assert!(results.len() >= 8);
    for (name, ok, errors) in results {
        assert!(ok, "{name}: {errors}");
    }
}

/// One `statements` row of the fixture hub.db: payload type, payload, key id,
/// signature, and the anonymous copy's payload, key id and signature.
type HubRow = (
    String,
    Vec<u8>,
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<String>,
    Option<Vec<u8>>,
);
