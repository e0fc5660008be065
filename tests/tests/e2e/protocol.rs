//! docs/protocol.md against real parts (issue 23): a DSSE bundle exported
//! by a real agent from a real hub verifies with exactly the openssl
//! commands the document shows (and a tampered copy does not), `ListKeys`
//! rows are the signed directory's keys, and grpcio-reflection's client
//! (reflection v1alpha) lists the services over mutual TLS.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use isac_e2e::*;
use isac_proto::v1 as pb;
use tonic::Code;

fn agent_cli(state: &Path, args: &[&str]) -> (bool, String, String) {
    run(bin("member-agent").arg("--state-dir").arg(state).args(args))
}

/// The shell commands between the verify markers of docs/protocol.md.
fn documented_commands() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md"))
            .expect("docs/protocol.md");
    let start = doc
        .find("<!-- verify-begin -->")
        .expect("verify-begin marker");
    let end = doc.find("<!-- verify-end -->").expect("verify-end marker");
    let block = &doc[start..end];
    let body = block
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a ```sh block between the markers")
        .0;
    assert!(body.contains("openssl pkeyutl -verify -rawin -pubin"));
    body.to_owned()
}

/// Runs the documented commands in `dir` with `F=file`, as the document
/// says: returns (success, stdout + stderr).
fn run_documented(dir: &Path, file: &str) -> (bool, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("set -e\n{}", documented_commands()))
        .current_dir(dir)
        .env("F", file)
        .output()
        .expect("sh");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn envelope_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dsse.json") && n != "directory.dsse.json")
        .collect();
    names.sort();
    names
}

fn published_id(out: &str) -> String {
    out.split_whitespace()
        .find_map(|kv| kv.strip_prefix("id="))
        .unwrap_or_else(|| panic!("no id in {out}"))
        .to_owned()
}

/// Issue 23: a member with nothing but openssl verifies what the agent
/// exported, with the commands from docs/protocol.md, run as written; one
/// flipped payload byte fails them; `show` and `key list --pem` print the
/// same envelope and keys; a non-empty target directory is refused.
#[test]
fn a_dsse_bundle_verifies_with_the_documented_openssl_commands_and_tampering_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub-data");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let hub = HubProcess::start(&data, "127.0.0.1:0");
    enroll_with_cli(&data, &hub.url(), "alice-bank", Some("Alice Bank"), &alice);
    enroll_with_cli(&data, &hub.url(), "bob-bank", Some("Bob Bank"), &bob);
    let mut ids = Vec::new();
    for (purl, extra) in [
        ("pkg:npm/bundle-one@1.0.0", vec![]),
        ("pkg:npm/bundle-two@2.0.0", vec!["--anonymous"]),
    ] {
        let mut args = vec![
            "publish",
            "--purl",
            purl,
            "--tlp",
            "green",
            "--title",
            "malicious package",
            "--severity",
            "high",
        ];
        args.extend(extra);
        let (ok, out, err) = agent_cli(&alice, &args);
        assert!(ok, "{err}");
        ids.push(published_id(&out));
    }
    let (ok, _, err) = agent_cli(&bob, &["sync"]);
    assert!(ok, "{err}");

    let bundle = dir.path().join("bundle");
    let (ok, _, err) = agent_cli(
        &bob,
        &[
            "export",
            "--format",
            "dsse",
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert!(err.contains("exported 2 envelope(s)"), "{err}");
    let files = envelope_files(&bundle);
    assert_eq!(
        files,
        {
            let mut want: Vec<String> = ids.iter().map(|id| format!("{id}.1.dsse.json")).collect();
            want.sort();
            want
        },
        "one file per held item"
    );
    // Alice's key, the hub's anonymisation key and its directory key.
    let keys: Vec<PathBuf> = std::fs::read_dir(bundle.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let identity: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bob.join("identity.json")).unwrap()).unwrap();
    let hub_key_id = identity["hub_directory_key_id"].as_str().unwrap();
    assert!(bundle.join(format!("keys/{hub_key_id}.pem")).exists());

    // The directory, then every item, with the document's commands.
    let (ok, out) = run_documented(&bundle, "directory.dsse.json");
    assert!(
        ok && out.contains("Signature Verified Successfully"),
        "{out}"
    );
    let directory: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("payload.bin")).unwrap()).unwrap();
    for (file, id) in files.iter().zip({
        let mut sorted = ids.clone();
        sorted.sort();
        sorted
    }) {
        let (ok, out) = run_documented(&bundle, file);
        assert!(
            ok && out.contains("Signature Verified Successfully"),
            "{file}: {out}"
        );
        // The digest line is what `show` calls envelope_digest.
        let (ok, shown, err) = agent_cli(&bob, &["show", &id]);
        assert!(ok, "{err}");
        let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
        let digest = shown["envelope_digest"].as_str().unwrap();
        let hex = digest.strip_prefix("sha256:").expect("sha256: prefix");
        assert!(
            out.contains(&format!("{hex} *pae.bin")),
            "{out} vs {digest}"
        );
        // The key that signed is listed in the signed directory.
        let keyid = std::fs::read_to_string(bundle.join(file)).unwrap();
        let keyid = keyid
            .split("\"keyid\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let org = directory["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == keyid.as_str())
            .map(|k| k["org_id"].as_str().unwrap().to_owned())
            .expect("signer in the directory");
        assert!(org == "alice-bank" || org == "anonymous", "{org}");
        // `show --envelope` prints the same envelope.
        let (ok, envelope, _) = agent_cli(&bob, &["show", "--envelope", &id]);
        assert!(ok);
        assert_eq!(
            envelope,
            std::fs::read_to_string(bundle.join(file)).unwrap()
        );
    }

    // One flipped byte in the payload: the same commands fail.
    let original = std::fs::read_to_string(bundle.join(&files[0])).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = original
        .split("\"payload\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let mut bytes = b64.decode(payload).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let tampered = original.replace(payload, &b64.encode(&bytes));
    assert_ne!(tampered, original);
    std::fs::write(bundle.join("tampered.dsse.json"), tampered).unwrap();
    let (ok, out) = run_documented(&bundle, "tampered.dsse.json");
    assert!(!ok, "a tampered payload verified: {out}");
    assert!(out.contains("Signature Verification Failure"), "{out}");

    // `key list --all --pem` prints the PEM files' keys.
    let (ok, listed, err) = agent_cli(&bob, &["key", "list", "--all", "--pem"]);
    assert!(ok, "{err}");
    for key in &keys {
        let pem = std::fs::read_to_string(key).unwrap();
        if key.file_stem().unwrap() != hub_key_id {
            assert!(
                listed.contains(&pem),
                "{} not in key list --pem",
                key.display()
            );
        }
    }

    // A non-empty directory is refused (exit 64), and left as it was.
    let (ok, _, err) = agent_cli(
        &bob,
        &[
            "export",
            "--format",
            "dsse",
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("not empty"), "{err}");
    assert!(bundle.join("tampered.dsse.json").exists());
    // An empty one is fine; no staging directory is left behind.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (ok, _, err) = agent_cli(
        &bob,
        &[
            "export",
            "--format",
            "dsse",
            "--out",
            empty.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(envelope_files(&empty), files);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    hub.terminate();
}

/// `ListKeys` rows are exactly the keys of the signed directory it returns,
/// in order, the hub's anonymisation, attestation and log keys included.
#[tokio::test]
async fn list_keys_rows_are_the_keys_the_signed_directory_lists() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let alice = enrolled_agent(&hub, "alice-bank", &dir.path().join("alice")).await;
    let _bob = enrolled_agent(&hub, "bob-bank", &dir.path().join("bob")).await;
    let r = pb::key_directory_client::KeyDirectoryClient::new(alice.channel().await.unwrap())
        .list_keys(pb::ListKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    let signed: isac_core::Envelope = r.signed_directory.unwrap().into();
    let directory = isac_core::directory::verify_directory(
        &signed,
        &alice.loaded.hub_directory_key,
        None,
        hub.clock.now(),
    )
    .unwrap();
    let rows: Vec<_> = r
        .keys
        .iter()
        .map(|k| {
            (
                k.key_id.clone(),
                k.org_id.clone(),
                k.state.clone(),
                k.valid_from.clone(),
            )
        })
        .collect();
    let listed: Vec<_> = directory
        .keys
        .iter()
        .map(|k| {
            (
                k.key_id.clone(),
                k.org_id.clone(),
                k.state().to_owned(),
                k.valid_from.clone(),
            )
        })
        .collect();
    assert_eq!(rows, listed);
    for org in [
        "alice-bank",
        "bob-bank",
        "anonymous",
        "isac-hub",
        "isac-log",
    ] {
        assert!(
            rows.iter().any(|r| r.1 == org),
            "{org} missing from {rows:?}"
        );
    }
    for (row, entry) in r.keys.iter().zip(&directory.keys) {
        let key = isac_core::VerifyingKey::from_spki_der(&row.public_key_der).unwrap();
        assert_eq!(key.key_id(), entry.key_id, "row key matches its id");
    }
    hub.stop().await;
}

/// grpcio-reflection's client (reflection v1alpha, as grpcurl speaks it)
/// lists every service and reads a descriptor over mutual TLS with an
/// enrolled agent's certificate; v1alpha without a certificate is refused
/// like v1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_reflection_lists_the_services_over_v1alpha_with_mtls() {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(&dir.path().join("hub")).await;
    let state = dir.path().join("alice");
    let _alice = enrolled_agent(&hub, "alice-bank", &state).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/reflection_client.py");
    let target = hub.url().trim_start_matches("https://").to_owned();
    let mut python = Command::new("python3");
    python
        .arg(&script)
        .arg(&target)
        .arg(state.join("ca.crt"))
        .arg(state.join("tls.crt"))
        .arg(state.join("tls.key"));
    let out = tokio::task::spawn_blocking(move || python.output().expect("python3"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "grpcio-reflection client failed (missing packages? run scripts/install-deps):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let services: Vec<&str> = answer["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for name in hub::ops::SERVICES.iter().filter(|s| !s.is_empty()) {
        assert!(services.contains(name), "{name} not in {services:?}");
    }
    for name in [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(services.contains(&name), "{name} not in {services:?}");
    }
    let methods = answer["publisher_methods"].as_array().unwrap();
    assert!(methods.iter().any(|m| m == "PublishBatch"), "{methods:?}");

    let mut anonymous = ServerReflectionClient::new(raw_channel(&hub, None).await.unwrap());
    let refused = match anonymous
        .server_reflection_info(tokio_stream::iter(std::iter::once(
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
        )))
        .await
    {
        Err(status) => status,
        Ok(r) => r.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    hub.stop().await;
}
