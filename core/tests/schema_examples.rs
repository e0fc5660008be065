//! The JSON Schema of statement format v2 (`docs/schema/statement.v2.schema.json`)
//! and the Rust validation the hub and every agent run agree on its
//! examples: each of `docs/schema/examples/invalid/` (which the schema
//! refuses; `tests/tests/e2e/schema.rs` checks that with Python's
//! `jsonschema`) is refused by `verify_envelope` even when canonicalised
//! with JCS and signed by the source's real key, and each of `valid/` is
//! accepted. The hub verifies with exactly this function before anything
//! else (`hub/src/app/publish.rs`, `prepare_with_key`).

use std::path::{Path, PathBuf};

use isac_core::{
    jcs, verify_envelope, Format, KeyRecord, SigningKey, Statement, PAYLOAD_TYPE_STATEMENT_V2,
};

fn examples(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/schema/examples")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "too few examples in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Signs `payload` as v2 with a key the directory gives to `source` (taken
/// from the JSON, so a source mismatch is never why it fails).
fn sign_and_verify(payload: Vec<u8>) -> Result<Statement, String> {
    let source = serde_json::from_slice::<serde_json::Value>(&payload)
        .ok()
        .and_then(|v| v.get("source").and_then(|s| s.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "acme-bank".into());
    let key = SigningKey::generate().unwrap();
    let record = KeyRecord {
        key: key.verifying_key().unwrap(),
        org_id: source,
        valid_from: 0,
        retired_at: None,
        revoked_at: None,
    };
    let env = key
        .sign_envelope(PAYLOAD_TYPE_STATEMENT_V2, payload)
        .unwrap();
    verify_envelope(&env, |_| Some(record))
        .map(|v| v.statement)
        .map_err(|e| e.to_string())
}

#[test]
fn the_hub_refuses_every_statement_the_schema_refuses() {
    for (name, text) in examples("invalid") {
        // As written (pretty-printed): never canonical.
        assert!(sign_and_verify(text.clone()).is_err(), "{name} as written");
        // Canonicalised by JCS, as a client would sign it: still refused,
        // for what it says rather than how it is spelt.
        let canonical = jcs::canonicalize(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let err = sign_and_verify(canonical.clone()).expect_err(&name);
        assert!(!err.is_empty());
        assert!(Statement::decode(&canonical, Format::V2).is_err(), "{name}");
    }
}

#[test]
fn the_hub_accepts_every_valid_example_once_canonical() {
    for (name, text) in examples("valid") {
        let canonical = jcs::canonicalize(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let statement =
            sign_and_verify(canonical.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Our own encoder writes the very bytes the example canonicalises to.
        assert_eq!(statement.canonical_bytes_v2(), canonical, "{name}");
        // Pretty-printed, as in the file, it is not the signed form.
        assert!(sign_and_verify(text).is_err(), "{name} as written");
    }
}
