//! Property tests over hostile bytes: every decoder of the core must answer
//! (Ok or a clear error) and never panic, on thousands of mutations of valid
//! inputs. These are the entry points a `cargo fuzz` target would use; they
//! run in the normal test suite with fixed seeds.

use isac_core::audience::AudienceOpening;
use isac_core::directory::{
    verify_directory, DirectoryKey, KeyDirectory, PAYLOAD_TYPE_DIRECTORY_V1,
};
use isac_core::enrollment::EnrollmentToken;
use isac_core::observable::parse_purl;
use isac_core::statement::{Body, Indicator, Observable, PackageThreat, Severity};
use isac_core::tlp::AudienceRef;
use isac_core::{
    verify_envelope, Envelope, KeyRecord, SigningKey, Statement, Tlp, PAYLOAD_TYPE_STATEMENT_V1,
};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bit flips, byte insertions and deletions, truncation, duplication, and
/// splices of interesting bytes.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, (rng.next() & 0xff) as u8);
            }
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            3 => v.truncate(rng.below(v.len() + 1)),
            4 if !v.is_empty() => {
                let a = rng.below(v.len());
                let b = (a + rng.below(64)).min(v.len());
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            5 => {
                let specials: [&[u8]; 8] = [
                    b"\"",
                    b"\\",
                    b"{",
                    b"[",
                    b"\0",
                    "\u{202e}".as_bytes(),
                    b"%",
                    b"@",
                ];
                let s = specials[rng.below(specials.len())];
                let at = rng.below(v.len() + 1);
                v.splice(at..at, s.iter().copied());
            }
            _ => {}
        }
    }
    v
}

fn sample() -> Statement {
    Statement {
        id: uuid::Uuid::new_v4(),
        revision: 1,
        source: "acme-bank".into(),
        created: "2026-11-25T12:00:00Z".into(),
        tlp: Tlp::Amber,
        audience: vec![
            AudienceOpening::new("org:bob-bank".parse().unwrap(), "ab".repeat(16)).commitment(),
        ],
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

const ROUNDS: usize = 3000;

#[test]
fn statements_envelopes_and_verification_survive_mutation() {
    let key = SigningKey::generate().unwrap();
    let record = KeyRecord {
        key: key.verifying_key().unwrap(),
        org_id: "acme-bank".into(),
        valid_from: 0,
        retired_at: None,
        revoked_at: None,
    };
    let payload = sample().canonical_bytes();
    let envelope = key
        .sign_envelope(PAYLOAD_TYPE_STATEMENT_V1, payload.clone())
        .unwrap();
    let json = envelope.to_json().into_bytes();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..ROUNDS {
        let bytes = mutate(&mut rng, &payload);
        if let Ok(s) = Statement::from_canonical_bytes(&bytes) {
            // Whatever parses must be canonical and valid.
            assert_eq!(s.canonical_bytes(), bytes);
            assert!(s.validate().is_ok());
        }
        let changed = bytes != payload;
        let mutated = Envelope {
            payload: bytes,
            ..envelope.clone()
        };
        if changed {
            assert!(
                verify_envelope(&mutated, |_| Some(record.clone())).is_err(),
                "a mutated payload verified under the original signature"
            );
        }
        if let Ok(text) = String::from_utf8(mutate(&mut rng, &json)) {
            let _ = Envelope::from_json(&text);
        }
    }
}

#[test]
fn small_parsers_survive_mutation() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let seeds: [&str; 6] = [
        "pkg:npm/%40scope/name@1.2.3?arch=x86#sub/path",
        "pkg:maven/org.apache/log4j-core@2.14.1",
        "isac1.acme-bank.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.abababababababababababababababababababababababababababababababab",
        "person:acme-bank/jdoe",
        "amber+strict",
        "2026-11-25T16:51:18Z",
    ];
    for _ in 0..ROUNDS {
        for seed in seeds {
            let bytes = mutate(&mut rng, seed.as_bytes());
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse_purl(&s);
            let _ = EnrollmentToken::parse(&s);
            let _ = s.parse::<AudienceRef>();
            let _ = s.parse::<Tlp>();
            let _ = isac_core::time::parse_rfc3339(&s);
        }
    }
}

#[test]
fn signed_directories_survive_mutation() {
    let hub = SigningKey::generate().unwrap();
    let member = SigningKey::generate().unwrap();
    let v = member.verifying_key().unwrap();
    let dir = KeyDirectory {
        version: 3,
        issued: "2026-11-25T00:00:00Z".into(),
        expires: "2099-01-01T00:00:00Z".into(),
        keys: vec![DirectoryKey {
            key_id: v.key_id(),
            org_id: "acme-bank".into(),
            org_name: "Acme".into(),
            public_key: isac_core::directory::encode_public_key(v.spki_der()),
            valid_from: "2026-01-01T00:00:00Z".into(),
            retired_at: None,
            revoked_at: None,
        }],
        peers: vec![],
        removed_peers: Vec::new(),
        default_lifetimes: Default::default(),
        federated: Vec::new(),
    };
    let payload = dir.canonical_bytes();
    let env = hub
        .sign_envelope(PAYLOAD_TYPE_DIRECTORY_V1, payload.clone())
        .unwrap();
    let hub_pub = hub.verifying_key().unwrap();
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for _ in 0..ROUNDS {
        let mutated = Envelope {
            payload: mutate(&mut rng, &payload),
            ..env.clone()
        };
        let r = verify_directory(&mutated, &hub_pub, Some(3), 1_800_000_000);
        if mutated.payload != payload {
            assert!(r.is_err(), "a mutated directory verified");
        }
    }
}
