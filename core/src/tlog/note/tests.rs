//! Vectors from golang.org/x/mod/sumdb/note (note_test.go) and the C2SP
//! signed-note spec, byte for byte.

use super::*;

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter() -> Ed25519Verifier {
    Ed25519Verifier::from_vkey(PETER_VKEY).unwrap()
}
fn enoch() -> Ed25519Verifier {
    Ed25519Verifier::from_vkey(ENOCH_VKEY).unwrap()
}
fn sig_of(line: &str) -> NoteSignature {
    let note = parse(format!("x\n\n{line}").as_bytes()).unwrap();
    note.signatures[0].clone()
}

#[test]
fn verifier_keys_parse_and_round_trip() {
    let v = peter();
    assert_eq!(v.name(), "PeterNeumann");
    assert_eq!(v.key_hash(), 0xc74f20a3);
    assert_eq!(v.to_vkey(), PETER_VKEY);
    assert_eq!(enoch().to_vkey(), ENOCH_VKEY);
}

#[test]
fn mangled_verifier_keys_are_refused() {
    let b = PETER_VKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i != 0 || j != b.len() {
                let s = String::from_utf8_lossy(&b[i..j]);
                assert!(Ed25519Verifier::from_vkey(&s).is_err(), "{s}");
            }
        }
    }
    let mut m = b.to_vec();
    for i in 0..m.len() {
        m[i] = m[i].wrapping_add(1);
        let s = String::from_utf8_lossy(&m).into_owned();
        assert!(Ed25519Verifier::from_vkey(&s).is_err(), "{s}");
        m[i] = m[i].wrapping_sub(1);
    }
    // Wrong key length and unknown algorithm, each with a matching hash.
    assert!(Ed25519Verifier::from_vkey(
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
    )
    .is_err());
    assert!(Ed25519Verifier::from_vkey(
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    .is_err());
}

#[test]
fn signer_keys_parse_and_mangled_ones_are_refused() {
    let s = Ed25519Signer::from_skey(PETER_SKEY).unwrap();
    assert_eq!(s.to_skey().unwrap(), PETER_SKEY);
    assert_eq!(s.verifier().unwrap().to_vkey(), PETER_VKEY);
    let b = PETER_SKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i != 0 || j != b.len() {
                let s = String::from_utf8_lossy(&b[i..j]);
                assert!(Ed25519Signer::from_skey(&s).is_err(), "{s}");
            }
        }
    }
    let mut m = b.to_vec();
    for i in 0..m.len() {
        m[i] = m[i].wrapping_add(1);
        let s = String::from_utf8_lossy(&m).into_owned();
        assert!(Ed25519Signer::from_skey(&s).is_err(), "{s}");
        m[i] = m[i].wrapping_sub(1);
    }
}

#[test]
fn generated_keys_sign_and_verify() {
    let signer = Ed25519Signer::new("EnochRoot", SigningKey::generate().unwrap()).unwrap();
    let verifier = Ed25519Verifier::from_vkey(&signer.verifier().unwrap().to_vkey()).unwrap();
    assert_eq!(signer.key_hash(), verifier.key_hash());
    let mut sig = signer.sign(b"hi").unwrap();
    assert!(verifier.verify(b"hi", &sig));
    assert!(!verifier.verify(b"hj", &sig));
    sig[0] ^= 1;
    assert!(!verifier.verify(b"hi", &sig));
    let again = Ed25519Signer::from_skey(&signer.to_skey().unwrap()).unwrap();
    assert_eq!(again.sign(b"hi").unwrap(), signer.sign(b"hi").unwrap());
}

#[test]
fn signing_matches_go_byte_for_byte() {
    let signer = Ed25519Signer::from_skey(PETER_SKEY).unwrap();
    let want = format!("{TEXT}\n{PETER_SIG}");
    assert_eq!(sign(TEXT, &[&signer]).unwrap(), want);

    // An existing signature under the same key is replaced.
    let mut note = Note::new(TEXT).unwrap();
    note.signatures.push(NoteSignature {
        name: "PeterNeumann".into(),
        key_hash: 0xc74f20a3,
        signature: b"BADSIGN".to_vec(),
    });
    note.sign(&signer).unwrap();
    assert_eq!(note.to_text(), want);

    assert!(matches!(
        sign("abc", &[&signer]),
        Err(NoteError::Malformed(_))
    ));
    assert!(matches!(
        sign("a\u{1}b\n", &[&signer]),
        Err(NoteError::Malformed(_))
    ));
    struct BadName(Ed25519Signer);
    impl Signer for BadName {
        fn name(&self) -> &str {
            "bad name"
        }
        fn key_hash(&self) -> u32 {
            self.0.key_hash()
        }
        fn sign(&self, text: &[u8]) -> Result<Vec<u8>, NoteError> {
            self.0.sign(text)
        }
    }
    assert!(matches!(
        sign(TEXT, &[&BadName(signer)]),
        Err(NoteError::BadName(_))
    ));
}

#[test]
fn open_matches_go() {
    let (p, e) = (peter(), enoch());
    let both = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");

    // One verified, one not.
    let n = open(both.as_bytes(), &[&p]).unwrap();
    assert_eq!(n.text, TEXT);
    assert_eq!(n.verified, vec![sig_of(PETER_SIG)]);
    assert_eq!(n.unverified, vec![sig_of(ENOCH_SIG)]);

    // Both verified.
    let n = open(both.as_bytes(), &[&p, &e]).unwrap();
    assert_eq!(n.verified, vec![sig_of(PETER_SIG), sig_of(ENOCH_SIG)]);
    assert!(n.unverified.is_empty());

    // Neither known.
    assert_eq!(open(both.as_bytes(), &[]), Err(NoteError::NoKnownSignature));

    // A duplicated known key is ambiguous only when a signature needs it.
    let enoch_only = format!("{TEXT}\n{ENOCH_SIG}");
    assert!(matches!(
        open(enoch_only.as_bytes(), &[&e, &p, &e]),
        Err(NoteError::AmbiguousKey { .. })
    ));
    let peter_only = format!("{TEXT}\n{PETER_SIG}");
    open(peter_only.as_bytes(), &[&e, &p, &e]).unwrap();

    // Too many signatures, known or not.
    let many = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
    assert_eq!(
        open(many.as_bytes(), &[&p]),
        Err(NoteError::TooManySignatures)
    );
    assert_eq!(
        open(many.as_bytes(), &[]),
        Err(NoteError::TooManySignatures)
    );
    let hundred = format!("{TEXT}\n{}", PETER_SIG.repeat(100));
    assert_eq!(open(hundred.as_bytes(), &[&p]).unwrap().verified.len(), 1);

    // An invalid signature from a known key rejects the note.
    let bad = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert_eq!(
        open(bad.as_bytes(), &[&p]),
        Err(NoteError::InvalidSignature {
            name: "PeterNeumann".into(),
            key_hash: 0xc74f20a3
        })
    );

    // Repeated verified and unverified signatures.
    let enoch_abcd = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
    let dup = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{enoch_abcd}");
    let n = open(dup.as_bytes(), &[&p]).unwrap();
    assert_eq!(n.verified, vec![sig_of(PETER_SIG)]);
    assert_eq!(n.unverified, vec![sig_of(ENOCH_SIG), sig_of(&enoch_abcd)]);

    // Malformed notes.
    let bad_msgs = [
        TEXT.to_string(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\u{1}{TEXT}\n{PETER_SIG}"),
        format!("{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
    ];
    for m in &bad_msgs {
        assert!(
            matches!(open(m.as_bytes(), &[&p]), Err(NoteError::Malformed(_))),
            "{m}"
        );
    }
    let mut not_utf8 = vec![0xff];
    not_utf8.extend_from_slice(format!("{TEXT}\n{PETER_SIG}").as_bytes());
    assert!(matches!(
        open(&not_utf8, &[&p]),
        Err(NoteError::Malformed(_))
    ));

    // A signature under another name or key hash is not the known key's.
    let misnamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego");
    assert_eq!(
        open(format!("{TEXT}\n{misnamed}").as_bytes(), &[&p]),
        Err(NoteError::NoKnownSignature)
    );
    let wrong_hash = PETER_SIG.replace("x08g", "xxxx");
    assert_eq!(
        open(format!("{TEXT}\n{wrong_hash}").as_bytes(), &[&p]),
        Err(NoteError::NoKnownSignature)
    );
}

#[test]
fn spec_example_verifies() {
    let v = Ed25519Verifier::from_vkey(
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    )
    .unwrap();
    let msg = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    let n = open(msg.as_bytes(), &[&v]).unwrap();
    assert_eq!(n.text, "This is an example message.\n");
    assert_eq!(parse(msg.as_bytes()).unwrap().to_text(), msg);
}

#[test]
fn the_last_blank_line_separates_text_and_signatures() {
    let signer = Ed25519Signer::from_skey(PETER_SKEY).unwrap();
    let text = "first\n\nsecond\n";
    let signed = sign(text, &[&signer]).unwrap();
    assert_eq!(open(signed.as_bytes(), &[&peter()]).unwrap().text, text);
}

#[test]
fn size_and_name_bounds() {
    let big = format!("{}\n\n{PETER_SIG}", "a".repeat(MAX_NOTE_SIZE));
    assert_eq!(parse(big.as_bytes()), Err(NoteError::TooLarge));
    for name in ["", "a b", "a+b", "a\u{a0}b", "a\u{3000}b", "a\tb"] {
        assert!(!is_valid_name(name), "{name:?}");
    }
    assert!(is_valid_name("example.com/log"));
    assert!(is_valid_name("ünïcode/name"));
    assert!(Ed25519Signer::new("a b", SigningKey::generate().unwrap()).is_err());
}
