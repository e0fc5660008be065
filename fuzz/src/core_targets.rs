//! Fuzz target bodies for the pure core: one function per target, each
//! taking arbitrary bytes and asserting the properties that must hold for
//! every input (no panic; whatever parses is canonical and valid; nothing
//! verifies that was not signed). `cargo fuzz` calls them from
//! `fuzz/fuzz_targets/*.rs`; `core/tests/fuzz_targets.rs` includes this
//! file and runs the same bodies on stable with a deterministic generator.
//!
//! Uses only `isac_core` (and std), so it compiles both in the fuzz crate
//! and as a module of the core's integration tests.

use std::sync::OnceLock;

use isac_core::statement::{Body, Format, Indicator, Observable, PackageThreat, Severity};
use isac_core::{
    verify_envelope, Envelope, KeyRecord, SigningKey, Statement, Tlp, PAYLOAD_TYPE_STATEMENT_V1,
};

/// One signing key, its directory record, and a statement it signed.
pub struct Fixture {
    pub record: KeyRecord,
    pub envelope: Envelope,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = SigningKey::generate().expect("key");
        let record = KeyRecord {
            key: key.verifying_key().expect("public key"),
            org_id: "acme-bank".into(),
            valid_from: 0,
            retired_at: None,
            revoked_at: None,
        };
        let envelope = key
            .sign_envelope(
                PAYLOAD_TYPE_STATEMENT_V1,
                sample_statement().canonical_bytes(),
            )
            .expect("sign");
        Fixture { record, envelope }
    })
}

/// A valid statement: the seed the generators mutate.
pub fn sample_statement() -> Statement {
    Statement {
        id: "6f1c1d2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f"
            .parse()
            .expect("uuid"),
        revision: 1,
        source: "acme-bank".into(),
        created: "2026-11-25T12:00:00Z".into(),
        tlp: Tlp::Green,
        audience: vec![],
        anonymous: false,
        on_behalf_of: None,
        no_forward: false,
        body: Body::Indicator(Indicator {
            observable: Observable::Package {
                purl: "pkg:npm/%40evil/pkg@1.0.0".into(),
                versions: vec![">=1.0.0 <1.2.0".into()],
                threat: PackageThreat::Malicious,
                imitates: None,
            },
            title: "evil".into(),
            description: "line one\nline two".into(),
            severity: Severity::High,
            confidence: 80,
            references: vec!["https://example.org/a".into()],
            tags: vec!["t".into()],
            valid_from: None,
            valid_until: Some("2027-01-01T00:00:00Z".into()),
            related: vec![],
        }),
    }
}

/// Target `statement`: bytes as a statement payload in either format.
/// Whatever parses is its own canonical encoding in exactly one format,
/// validates, and parses back the same; a v2 payload is its own RFC 8785
/// form.
pub fn statement(data: &[u8]) {
    for format in [Format::V1, Format::V2] {
        if let Ok(s) = Statement::decode(data, format) {
            assert_eq!(s.encode(format), data, "accepted a non-canonical payload");
            assert!(s.validate().is_ok(), "accepted an invalid statement");
            let other = match format {
                Format::V1 => Format::V2,
                Format::V2 => Format::V1,
            };
            assert!(
                Statement::decode(data, other).is_err(),
                "one payload canonical in both formats"
            );
            assert_eq!(Statement::from_canonical_bytes(data).as_ref(), Ok(&s));
            if format == Format::V2 {
                assert_eq!(
                    isac_core::jcs::canonicalize(data).as_deref(),
                    Ok(data),
                    "a v2 payload that is not its own JCS form"
                );
            }
        }
    }
}

/// Target `jcs`: bytes as any JSON text. Canonicalising is idempotent
/// (parse, JCS, parse, JCS gives the same bytes), never panics, and its
/// output is JSON another reader (serde_json) accepts.
pub fn jcs(data: &[u8]) {
    let Ok(once) = isac_core::jcs::canonicalize(data) else {
        return;
    };
    let twice = isac_core::jcs::canonicalize(&once).expect("JCS output parses");
    assert_eq!(once, twice, "JCS is not idempotent");
    assert!(
        serde_json::from_slice::<serde_json::Value>(&once).is_ok(),
        "JCS output is not JSON"
    );
}

/// Target `envelope`: bytes as DSSE JSON, then verified against the
/// fixture's key. A parsed envelope round-trips through JSON; one that
/// verifies carries exactly the bytes the key signed.
pub fn envelope(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(env) = Envelope::from_json(text) else {
        return;
    };
    let back = Envelope::from_json(&env.to_json()).expect("our own JSON parses");
    assert_eq!(back, env, "envelope JSON does not round-trip");
    let f = fixture();
    if let Ok(v) = verify_envelope(&env, |_| Some(f.record.clone())) {
        assert_eq!(
            env.payload, f.envelope.payload,
            "a payload the key never signed verified"
        );
        assert_eq!(v.statement.canonical_bytes(), env.payload);
    }
    statement(&env.payload);
}

/// Target `signed_payload`: bytes as the payload under the fixture's real
/// signature. It verifies only if the bytes are exactly what was signed.
pub fn signed_payload(data: &[u8]) {
    let f = fixture();
    let env = Envelope {
        payload: data.to_vec(),
        ..f.envelope.clone()
    };
    let verified = verify_envelope(&env, |_| Some(f.record.clone()));
    if data != f.envelope.payload.as_slice() {
        assert!(verified.is_err(), "a changed payload verified");
    } else {
        assert!(verified.is_ok(), "the signed payload stopped verifying");
    }
    statement(data);
}

/// Target `observable`: bytes as a purl and as every other observable kind,
/// plus the small parsers (TLP, audience refs, times). No panics; a parsed
/// purl names a package.
pub fn observable(data: &[u8]) {
    use isac_core::observable::*;
    let s = String::from_utf8_lossy(data);
    if let Ok(p) = parse_purl(&s) {
        assert!(!p.name.is_empty(), "purl without a name: {s:?}");
        assert!(!p.ty.is_empty(), "purl without a type: {s:?}");
        assert!(p.package_key().contains(p.name.as_str()));
        assert!(s.len() <= MAX_PURL_LEN);
    }
    for check in [
        validate_sha256,
        validate_sha512,
        validate_domain,
        validate_ip,
        validate_url,
        validate_repo_url,
        validate_commit,
        validate_tag,
        validate_account,
        validate_vuln_id,
    ] {
        if check(&s).is_ok() {
            assert!(
                !s.chars().any(char::is_control),
                "accepted a control character: {s:?}"
            );
        }
    }
    let _ = s.parse::<Tlp>();
    let _ = s.parse::<isac_core::tlp::AudienceRef>();
    let _ = isac_core::time::parse_rfc3339(&s);
    let _ = isac_core::enrollment::EnrollmentToken::parse(&s);
}

/// Target `stix_pattern`: bytes as a STIX pattern (the parser a TAXII POST
/// and `publish --stix` reach), and inside an indicator of a bundle. No
/// panics, no stack overflow (nesting is capped); whatever parses names at
/// least one observable.
pub fn stix_pattern(data: &[u8]) {
    use isac_core::stix_import::{observables_from_pattern, parse_bundle};
    let pattern = String::from_utf8_lossy(data);
    if let Ok(observables) = observables_from_pattern(&pattern) {
        assert!(!observables.is_empty(), "parsed to nothing: {pattern:?}");
    }
    let bundle = serde_json::json!({
        "type": "bundle",
        "id": "bundle--6a4e7a2b-3c1d-4f5e-8a9b-0c1d2e3f4a5b",
        "objects": [{
            "type": "indicator", "spec_version": "2.1",
            "id": "indicator--0d1d5a7e-6b8f-4c0a-9a3e-2f1b7c6d5e4a",
            "created": "2026-11-01T00:00:00Z", "modified": "2026-11-01T00:00:00Z",
            "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z",
            "pattern": pattern,
        }],
    });
    if let Ok(read) = parse_bundle(&bundle) {
        assert_eq!(
            read.objects.len() + read.skipped.len() + read.invalid.len(),
            1,
            "the one object is accounted for"
        );
    }
}

/// The transparency log's key and one checkpoint it signed.
pub struct LogFixture {
    pub verifier: isac_core::tlog::note::Ed25519Verifier,
    pub checkpoint: isac_core::tlog::checkpoint::Checkpoint,
    pub signed: String,
}

pub const LOG_ORIGIN: &str = "isac.example/log";

pub fn log_fixture() -> &'static LogFixture {
    use isac_core::tlog::checkpoint::Checkpoint;
    use isac_core::tlog::note::Ed25519Signer;
    static FIXTURE: OnceLock<LogFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let signer =
            Ed25519Signer::new(LOG_ORIGIN, SigningKey::generate().expect("key")).expect("signer");
        let checkpoint = Checkpoint {
            origin: LOG_ORIGIN.into(),
            size: 1234,
            root: isac_core::tlog::merkle::leaf_hash(b"root"),
            extensions: vec!["ext line".into()],
        };
        let signed = checkpoint.sign(&[&signer]).expect("sign");
        LogFixture {
            verifier: signer.verifier().expect("verifier"),
            checkpoint,
            signed,
        }
    })
}

/// Target `note`: bytes as a C2SP signed note. Whatever parses is its own
/// canonical text; nothing opens under the log key but what it signed.
pub fn note(data: &[u8]) {
    use isac_core::tlog::note;
    if let Ok(n) = note::parse(data) {
        assert_eq!(n.to_text().as_bytes(), data, "note does not round-trip");
        assert!(n.signatures.len() <= note::MAX_SIGNATURES);
        assert!(data.len() <= note::MAX_NOTE_SIZE);
    }
    let f = log_fixture();
    if let Ok(v) = note::open(data, &[&f.verifier]) {
        assert_eq!(
            v.text,
            f.checkpoint.to_text().expect("text"),
            "a text the log never signed opened"
        );
    }
}

/// Target `checkpoint`: bytes as a checkpoint text and as a signed
/// checkpoint. A parsed checkpoint formats back to the same bytes; only
/// the signed one opens.
pub fn checkpoint(data: &[u8]) {
    use isac_core::tlog::checkpoint::{self, Checkpoint};
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = Checkpoint::parse(text) {
            assert_eq!(c.to_text().expect("format"), text, "not canonical");
        }
    }
    let f = log_fixture();
    if let Ok(opened) = checkpoint::open(data, LOG_ORIGIN, &[&f.verifier]) {
        assert_eq!(opened.checkpoint, f.checkpoint, "forged checkpoint opened");
    }
}

/// Target `tile_path`: bytes as the path after `/log/` of `GET
/// /log/tile/...` (`Tile::parse_path`, what the hub's TAXII listener
/// parses). Whatever parses is the one canonical path of its tile, has a
/// width of 1 to 256, and names at most 256 nodes, all at one tree level.
pub fn tile_path(data: &[u8]) {
    use isac_core::tlog::tiles::Tile;
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Tile::parse_path(path) {
        assert_eq!(t.path(), path, "a tile path is not canonical");
        assert_eq!(Tile::parse_path(&t.path()).ok(), Some(t));
        assert!((1..=256).contains(&t.width), "tile width {}", t.width);
        if let Some(nodes) = t.nodes() {
            assert_eq!(nodes.len(), usize::from(t.width));
            assert!(nodes
                .windows(2)
                .all(|w| w[0].level == w[1].level && w[1].index == w[0].index + 1));
        }
        // Within a tree: never a tile past its size.
        for size in [0u64, 1, 255, 256, 65_536, u64::MAX] {
            if t.within(size) {
                assert!(t.nodes().is_some(), "a tile within a tree has nodes");
            }
        }
    }
}

/// Target `provenance`: bytes as the provenance a peer hub sends beside a
/// forwarded envelope (federation, issue 20), then the whole receive check
/// with the fixture's real envelope. Whatever parses is canonical, within
/// the path bound, starts at its origin and repeats no hub; an accepted
/// item never lists the receiver before it and always ends with it. The
/// same bytes go through a member's check of a delivered federated item.
pub fn provenance(data: &[u8]) {
    use isac_core::directory::{encode_public_key, DirectoryKey, KeyDirectory};
    use isac_core::federation::{verify_forwarded, Provenance, MAX_HUB_PATH};
    let Ok(p) = Provenance::decode(data) else {
        return;
    };
    // Canonical: what it writes is what it read, but for the first form's
    // `origin_seq`, which is read past and never written.
    let written = p.canonical_bytes();
    assert!(
        written == data || written.len() < data.len(),
        "accepted non-canonical provenance"
    );
    assert!(!String::from_utf8_lossy(&written).contains("origin_seq"));
    assert_eq!(Provenance::decode(&written).as_ref(), Ok(&p));
    assert!(p.validate().is_ok());
    assert!(!p.hub_path.is_empty() && p.hub_path.len() <= MAX_HUB_PATH);
    assert_eq!(p.hub_path[0], p.origin_hub);
    let f = fixture();
    let directory = KeyDirectory {
        version: 1,
        issued: "2026-01-01T00:00:00Z".into(),
        expires: "2099-01-01T00:00:00Z".into(),
        keys: vec![DirectoryKey {
            key_id: f.record.key.key_id(),
            org_id: f.record.org_id.clone(),
            org_name: "Acme".into(),
            public_key: encode_public_key(f.record.key.spki_der()),
            valid_from: "2020-01-01T00:00:00Z".into(),
            retired_at: None,
            revoked_at: None,
        }],
        peers: vec!["hub-b".into(), "hub-c".into()],
        removed_peers: vec!["hub-x".into()],
        default_lifetimes: Default::default(),
        federated: Vec::new(),
    };
    let sender = p.sender().unwrap_or_default().to_owned();
    if let Ok(got) = verify_forwarded(&f.envelope, data, &directory, &sender, "hub-b") {
        assert_eq!(
            got.provenance.hub_path.last().map(String::as_str),
            Some("hub-b")
        );
        assert!(
            !p.hub_path.iter().any(|h| h == "hub-b"),
            "a loop was accepted"
        );
        assert!(directory
            .peers
            .contains(p.hub_path.get(1).unwrap_or(&"hub-b".to_string())));
        assert!(!p
            .hub_path
            .iter()
            .any(|h| directory.removed_peers.contains(h)));
        assert_eq!(got.key.origin_hub, p.origin_hub);
    }
    // The receiver's decision on the origin (relaying): a loop, a hub
    // removed here, or an origin the sender does not list never passes.
    let listed = vec![
        isac_core::directory::FederatedOrigin::new("hub-a", f.record.key.spki_der())
            .expect("fixture key"),
    ];
    let removed_here = vec!["hub-x".to_string()];
    match isac_core::federation::may_accept_origin(&p, &sender, "hub-b", &listed, &removed_here) {
        Ok(None) => assert_eq!(p.origin_hub, sender),
        Ok(Some(o)) => {
            assert_ne!(p.origin_hub, sender);
            assert_eq!(o.hub_id, p.origin_hub);
        }
        Err(_) => {}
    }
    if isac_core::federation::may_accept_origin(&p, &sender, "hub-b", &listed, &removed_here)
        .is_ok()
    {
        assert!(!p.hub_path.iter().any(|h| h == "hub-b" || h == "hub-x"));
    }
    // The same bytes as a member's hub delivers them (`verify_delivered`):
    // what passes names at least the origin and the delivering hub, and
    // is handed back unchanged.
    if let Ok(got) = isac_core::federation::verify_delivered(&f.envelope, data, &directory) {
        assert!(p.hub_path.len() >= 2, "a delivery naming no hop passed");
        assert_eq!(got.provenance, p);
        assert!(directory.peers.contains(&p.hub_path[1]));
        assert!(!p
            .hub_path
            .iter()
            .any(|h| directory.removed_peers.contains(h)));
    }
}

/// Target `extract` (issue 22): free text as the console's paste box reads
/// it. Bounded (at most `MAX_OBSERVABLES` values, each once), and every
/// value found passes the validator of its kind.
pub fn extract(data: &[u8]) {
    use isac_core::extract::{extract, FoundKind, MAX_OBSERVABLES};
    use isac_core::observable::*;
    let s = String::from_utf8_lossy(data);
    let e = extract(&s);
    assert!(e.found.len() <= MAX_OBSERVABLES);
    let mut seen = std::collections::HashSet::new();
    for f in &e.found {
        assert!(seen.insert(f.clone()), "found twice: {f:?}");
        let ok = match f.kind {
            FoundKind::Purl => parse_purl(&f.value).is_ok(),
            FoundKind::Sha256 => validate_sha256(&f.value).is_ok(),
            FoundKind::Sha512 => validate_sha512(&f.value).is_ok(),
            FoundKind::Domain => validate_domain(&f.value).is_ok(),
            FoundKind::Ip => validate_ip(&f.value).is_ok(),
            FoundKind::Url => validate_url(&f.value).is_ok(),
            FoundKind::Vulnerability => validate_vuln_id(&f.value).is_ok(),
        };
        assert!(ok, "extracted an invalid {:?}: {:?}", f.kind, f.value);
    }
}

/// Target `group_manifest`: bytes as the signed group manifest a peer hub
/// serves (cross-hub sharing groups, issue 20). Whatever parses is
/// canonical and within its bounds, every member is `ORG@HUB`, and the
/// agreement check of each of its groups against itself is `Agreed`.
pub fn group_manifest(data: &[u8]) {
    use isac_core::fed_groups::{
        agreement, split_member, Agreement, GroupManifest, MAX_GROUP_MEMBERS, MAX_SHARED_GROUPS,
    };
    let Ok(m) = GroupManifest::decode(data) else {
        return;
    };
    assert_eq!(
        m.canonical_bytes(),
        data,
        "accepted a non-canonical manifest"
    );
    assert!(m.groups.len() <= MAX_SHARED_GROUPS);
    for g in &m.groups {
        assert!(!g.members.is_empty() && g.members.len() <= MAX_GROUP_MEMBERS);
        assert!(g.members.iter().all(|x| split_member(x).is_some()));
        assert_eq!(
            agreement(Some(&g.members), m.members_of(&g.name)),
            Agreement::Agreed
        );
    }
}

/// A small origin log for `origin_inclusion`: envelopes `0..ORIGIN_LEAVES`
/// as its leaves, a checkpoint over all of them signed by the origin's log
/// key, and the directory that lists that key (org `isac-log`).
pub struct OriginLogFixture {
    pub directory: isac_core::directory::KeyDirectory,
    pub signed: String,
    pub checkpoint: isac_core::fed_log::OriginCheckpoint,
    pub proofs: Vec<Vec<isac_core::tlog::Hash>>,
}

pub const ORIGIN_LEAVES: u64 = 5;

/// Leaf `i` of the origin log fixture.
pub fn origin_envelope(i: u8) -> Envelope {
    Envelope {
        payload_type: PAYLOAD_TYPE_STATEMENT_V1.into(),
        payload: format!("origin item {i}").into_bytes(),
        signatures: vec![isac_core::Signature {
            keyid: "k".into(),
            sig: vec![i],
        }],
    }
}

pub fn origin_log_fixture() -> &'static OriginLogFixture {
    use isac_core::directory::{encode_public_key, DirectoryKey, KeyDirectory};
    use isac_core::tlog::checkpoint::Checkpoint;
    use isac_core::tlog::merkle::{HashReader, NodeId, TreeBuilder};
    use isac_core::tlog::note::Ed25519Signer;
    struct Nodes(std::collections::HashMap<NodeId, isac_core::tlog::Hash>);
    impl HashReader for Nodes {
        type Error = ();
        fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<isac_core::tlog::Hash>, ()> {
            nodes
                .iter()
                .map(|n| self.0.get(n).copied().ok_or(()))
                .collect()
        }
    }
    static FIXTURE: OnceLock<OriginLogFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = SigningKey::generate().expect("key");
        let public = key.verifying_key().expect("public key");
        let mut tree = TreeBuilder::new();
        let mut nodes = std::collections::HashMap::new();
        for i in 0..ORIGIN_LEAVES {
            let leaf = isac_core::tlog::envelope_leaf_hash(&origin_envelope(i as u8));
            nodes.extend(tree.append(leaf).expect("append"));
        }
        let nodes = Nodes(nodes);
        let signer = Ed25519Signer::new(LOG_ORIGIN, key).expect("signer");
        let checkpoint = Checkpoint {
            origin: LOG_ORIGIN.into(),
            size: ORIGIN_LEAVES,
            root: tree.root(),
            extensions: Vec::new(),
        };
        OriginLogFixture {
            directory: KeyDirectory {
                version: 1,
                issued: "2026-01-01T00:00:00Z".into(),
                expires: "2099-01-01T00:00:00Z".into(),
                keys: vec![DirectoryKey {
                    key_id: public.key_id(),
                    org_id: isac_core::names::LOG_ORG.into(),
                    org_name: "log".into(),
                    public_key: encode_public_key(public.spki_der()),
                    valid_from: "2026-01-01T00:00:00Z".into(),
                    retired_at: None,
                    revoked_at: None,
                }],
                peers: Vec::new(),
                removed_peers: Vec::new(),
                default_lifetimes: Default::default(),
                federated: Vec::new(),
            },
            signed: checkpoint.sign(&[&signer]).expect("sign"),
            checkpoint: isac_core::fed_log::OriginCheckpoint {
                origin: LOG_ORIGIN.into(),
                size: ORIGIN_LEAVES,
                root: tree.root(),
            },
            proofs: (0..ORIGIN_LEAVES)
                .map(|i| {
                    isac_core::tlog::merkle::prove_inclusion(&nodes, i, ORIGIN_LEAVES)
                        .expect("proof")
                })
                .collect(),
        }
    })
}

/// The `origin_inclusion` input: leaf index claimed, which fixture
/// envelope crossed, the note (u16 length first), then the proof hashes
/// (each a length byte and its bytes).
pub fn origin_inclusion_input(index: u8, envelope: u8, note: &[u8], proof: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![index, envelope];
    v.extend_from_slice(&(note.len() as u16).to_be_bytes());
    v.extend_from_slice(note);
    for h in proof {
        v.push(h.len() as u8);
        v.extend_from_slice(h);
    }
    v
}

/// Target `origin_inclusion`: what a peer sends beside a forwarded item
/// (its origin's log checkpoint and the inclusion proof, issue 20) through
/// `isac_core::fed_log::check_origin_inclusion`. Nothing is accepted but
/// the fixture checkpoint, and only for an envelope that is the leaf at
/// the index claimed.
pub fn origin_inclusion(data: &[u8]) {
    use isac_core::fed_log::check_origin_inclusion;
    if data.len() < 4 {
        return;
    }
    let (index, which) = (data[0], data[1]);
    let note_len = u16::from_be_bytes([data[2], data[3]]) as usize;
    let rest = &data[4..];
    let (note, mut rest) = rest.split_at(note_len.min(rest.len()));
    let mut proof = Vec::new();
    while let Some((&n, tail)) = rest.split_first() {
        let (h, tail) = tail.split_at((n as usize).min(tail.len()));
        proof.push(h.to_vec());
        rest = tail;
    }
    let f = origin_log_fixture();
    let envelope = origin_envelope(which);
    for held in [None, Some(&f.checkpoint)] {
        if let Ok(c) = check_origin_inclusion(
            &envelope,
            Some(u64::from(index)),
            note,
            &proof,
            &f.directory,
            held,
        ) {
            assert_eq!(c, f.checkpoint, "a checkpoint the log never signed");
            assert_eq!(index, which, "an envelope accepted at another leaf");
            assert!(note.len() <= isac_core::fed_log::MAX_ORIGIN_NOTE_BYTES);
            assert!(proof.len() <= isac_core::fed_log::MAX_ORIGIN_PROOF_HASHES);
        }
    }
}
