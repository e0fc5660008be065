//! A client in another language: `examples/python/isac_client.py` (grpcio
//! with stubs generated from the proto at start, the `rfc8785` JCS
//! package, `cryptography` Ed25519), run against a real hub with a real
//! agent on the other side. Its Python packages come from
//! scripts/install-deps.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use isac_e2e::*;
use member_agent::{SinkSettings, Sinks};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python/isac_client.py")
}

/// Runs the example off the runtime (the hub runs in this process) and
/// returns (exit code, stdout).
async fn python(args: Vec<String>) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("python3")
            .arg(example())
            .args(&args)
            .output()
            .expect("python3 (run scripts/install-deps)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("ModuleNotFoundError"),
            "the example's Python packages are missing: run scripts/install-deps\n{stderr}"
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned() + &stderr,
        )
    })
    .await
    .unwrap()
}

async fn publish(state: &Path, statement: &Path) -> serde_json::Value {
    let (code, out) = python(vec![
        "publish".into(),
        "--state-dir".into(),
        state.display().to_string(),
        statement.display().to_string(),
    ])
    .await;
    assert_eq!(code, 0, "publish failed: {out}");
    serde_json::from_str(out.lines().next().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_publishes_v2_that_another_members_agent_verifies_and_stores() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    // The Python client uses an enrolled agent's state dir for its keys.
    let py_state = dir.path().join("py");
    let _py = enrolled_agent(&hub, "py-bank", &py_state).await;
    let beta = enrolled_agent(&hub, "beta-bank", &dir.path().join("beta")).await;

    let id = uuid::Uuid::new_v4().to_string();
    let created = isac_core::time::format_rfc3339(member_agent::now());
    // The same statement written twice: as a person would (fields in
    // reading order, `é` as UTF-8), and reversed with `\u00e9` escapes,
    // spaces and an escaped slash. JCS makes both the same bytes.
    let as_written = format!(
        r#"{{"id": "{id}", "created": "{created}", "tlp": "green",
  "body": {{"type": "indicator",
    "observable": {{"kind": "package", "purl": "pkg:npm/cafe-stealer@1.0.0", "versions": [], "threat": "malicious"}},
    "title": "café-stealer exfiltrates tokens", "description": "seen at a café\nsecond line",
    "severity": "high", "confidence": 80, "references": ["https://example.org/a"],
    "tags": ["python-client"], "related": []}}}}"#
    );
    let reordered = format!(
        r#"{{ "body" : {{ "related" : [ ], "tags" : [ "python-client" ], "references" : [ "https:\/\/example.org\/a" ],
  "confidence" : 80, "severity" : "high", "description" : "seen at a caf\u00e9\nsecond line",
  "title" : "caf\u00E9-stealer exfiltrates tokens",
  "observable" : {{ "threat" : "malicious", "versions" : [ ], "purl" : "pkg:npm/cafe-stealer@1.0.0", "kind" : "package" }},
  "type" : "indicator" }}, "tlp" : "green", "created" : "{created}", "id" : "{id}" }}"#
    );
    std::fs::write(dir.path().join("a.json"), &as_written).unwrap();
    std::fs::write(dir.path().join("b.json"), &reordered).unwrap();

    let first = publish(&py_state, &dir.path().join("a.json")).await;
    assert_eq!(first["id"], id.as_str(), "{first}");
    assert_eq!(first["duplicate"], false, "{first}");
    let second = publish(&py_state, &dir.path().join("b.json")).await;
    // Same canonical bytes, same (deterministic Ed25519) signature: the
    // hub acknowledges the very envelope it already holds.
    assert_eq!(second["payload_sha256"], first["payload_sha256"]);
    assert_eq!(second["duplicate"], true, "{second}");
    let payload = first["payload"].as_str().unwrap().to_owned();
    assert!(
        payload.starts_with(r#"{"anonymous":false,"audience":[],"body":{"#),
        "{payload}"
    );
    assert!(payload.contains("café-stealer"), "{payload}");

    // Another member's real agent verifies and stores it.
    let jsonl = dir.path().join("beta.jsonl");
    let mut sink = Sinks::open(SinkSettings::jsonl(Some(&jsonl))).unwrap();
    beta.sync(false, &mut sink).await.unwrap();
    let (summary, statement_json, envelope_json) = beta
        .store
        .lock()
        .unwrap()
        .show(&id)
        .unwrap()
        .expect("beta-bank's agent stored the Python-published statement");
    assert_eq!(summary.source, "py-bank");
    let env = isac_core::Envelope::from_json(&envelope_json).unwrap();
    assert_eq!(env.payload_type, isac_core::PAYLOAD_TYPE_STATEMENT_V2);
    assert_eq!(
        env.payload,
        payload.as_bytes(),
        "stored exactly what Python signed"
    );
    // What Python's JCS library wrote is what our encoder writes.
    let statement = isac_core::Statement::from_payload(&env.payload_type, &env.payload).unwrap();
    assert_eq!(statement.canonical_bytes_v2(), payload.as_bytes());
    assert!(statement_json.contains("café-stealer"));
    assert!(std::fs::read_to_string(&jsonl).unwrap().contains(&id));

    // The Python client subscribes as beta-bank and verifies everything it
    // may see, v2 included.
    let (code, out) = python(vec![
        "subscribe".into(),
        "--state-dir".into(),
        dir.path().join("beta").display().to_string(),
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("{out}"));
    let item: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(item["verified"], true);
    assert_eq!(item["payload_type"], isac_core::PAYLOAD_TYPE_STATEMENT_V2);
    assert_eq!(item["source"], "py-bank");

    // It verifies the DSSE JSON the agent holds, and refuses it with one
    // flipped byte.
    let good = dir.path().join("good.dsse.json");
    std::fs::write(&good, &envelope_json).unwrap();
    let verify = |file: &Path| {
        vec![
            "verify".into(),
            "--state-dir".into(),
            dir.path().join("beta").display().to_string(),
            file.display().to_string(),
        ]
    };
    let (code, out) = python(verify(&good)).await;
    assert_eq!(code, 0, "{out}");
    let mut doc: serde_json::Value = serde_json::from_str(&envelope_json).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = b64.decode(doc["payload"].as_str().unwrap()).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    doc["payload"] = b64.encode(&bytes).into();
    let bad = dir.path().join("bad.dsse.json");
    std::fs::write(&bad, doc.to_string()).unwrap();
    let (code, out) = python(verify(&bad)).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"verified\": false"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_refuses_a_v2_payload_that_is_not_its_jcs_form() {
    // A client that signs its pretty-printed JSON instead of the JCS bytes
    // gets INVALID_ARGUMENT naming RFC 8785, and nothing is stored.
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let acme = enrolled_agent(&hub, "acme-bank", &dir.path().join("acme")).await;
    let prepared = member_agent::draft::IndicatorDraft {
        domain: Some("c2.v2-refusal.example".into()),
        tlp: Some("green".into()),
        title: Some("not canonical".into()),
        ..Default::default()
    }
    .into_prepared(
        "acme-bank",
        isac_core::time::format_rfc3339(member_agent::now()),
    )
    .unwrap();
    let v2 = prepared.statement.canonical_bytes_v2();
    let value: serde_json::Value = serde_json::from_slice(&v2).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    let env = acme
        .loaded
        .signing_key
        .sign_envelope(isac_core::PAYLOAD_TYPE_STATEMENT_V2, pretty)
        .unwrap();
    let err = member_agent::publish::publish_envelope(&acme, env)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("RFC 8785"), "{err}");
    assert_eq!(hub.stored_statements(), 0);
}
