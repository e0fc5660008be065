//! C2SP tlog-cosignature v1 (<https://c2sp.org/tlog-cosignature>): a
//! witness's timestamped Ed25519 signature over
//! `cosignature/v1\ntime <t>\n` followed by the checkpoint text, carried as
//! one more signature line on the checkpoint note. Key hashes use
//! signature type 0x04, so a witness key never verifies as a log key.
//!
//! `open_cosigned` is the agent's acceptance rule: the log's own signature,
//! then at least `quorum` distinct trusted witnesses.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::checkpoint::{self, CheckpointError, SignedCheckpoint};
use super::note::{NoteError, NoteSignature, Signer, VerifiedNote, Verifier};
use crate::keys::{SigningKey, VerifyingKey};

/// Signature type byte of Ed25519 checkpoint cosignatures.
pub const SIG_TYPE_COSIGNATURE_V1: u8 = 0x04;
/// u64 timestamp then a 64-byte Ed25519 signature.
const COSIGNATURE_LEN: usize = 8 + 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("the checkpoint is not signed by the log key")]
    NoLogSignature,
    #[error("{got} of the required {quorum} witnesses cosigned the checkpoint")]
    NoQuorum { got: usize, quorum: usize },
    #[error("cosignature timestamp {0} is past 2^63 - 1")]
    BadTimestamp(u64),
}

/// The message a v1 cosignature signs.
pub fn cosigned_message(timestamp: u64, checkpoint_text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{checkpoint_text}").into_bytes()
}

/// The timestamp of a cosignature line, if it has the v1 shape.
pub fn timestamp_of(sig: &NoteSignature) -> Option<u64> {
    if sig.signature.len() != COSIGNATURE_LEN {
        return None;
    }
    let ts = u64::from_be_bytes(sig.signature[..8].try_into().ok()?);
    (ts <= i64::MAX as u64).then_some(ts)
}

/// A trusted witness key.
#[derive(Debug, Clone)]
pub struct CosignatureVerifier {
    name: String,
    key_hash: u32,
    key: VerifyingKey,
    raw: [u8; 32],
}

impl CosignatureVerifier {
    pub fn new(name: &str, key: &VerifyingKey) -> Result<Self, NoteError> {
        let (raw, key_hash) = super::note::named_key(name, key, SIG_TYPE_COSIGNATURE_V1)?;
        Ok(Self {
            name: name.to_owned(),
            key_hash,
            key: key.clone(),
            raw,
        })
    }

    /// Parses `name+hash+base64(0x04||key)`, checking the key hash.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hash), Some(key64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::BadKey("want name+hash+key"));
        };
        let key = B64
            .decode(key64)
            .map_err(|_| NoteError::BadKey("key is not base64"))?;
        let raw = match key.split_first() {
            Some((&SIG_TYPE_COSIGNATURE_V1, raw)) => raw,
            _ => return Err(NoteError::BadKey("not a cosignature/v1 key")),
        };
        let key = VerifyingKey::from_raw(raw).map_err(|_| NoteError::BadKey("bad Ed25519 key"))?;
        let v = Self::new(name, &key)?;
        if hash != format!("{:08x}", v.key_hash) {
            return Err(NoteError::BadKey("key hash does not match the key"));
        }
        Ok(v)
    }

    pub fn to_vkey(&self) -> String {
        let mut key = vec![SIG_TYPE_COSIGNATURE_V1];
        key.extend_from_slice(&self.raw);
        format!("{}+{:08x}+{}", self.name, self.key_hash, B64.encode(key))
    }
}

impl Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_hash(&self) -> u32 {
        self.key_hash
    }
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        if signature.len() != COSIGNATURE_LEN {
            return false;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&signature[..8]);
        let ts = u64::from_be_bytes(ts);
        let Ok(text) = std::str::from_utf8(text) else {
            return false;
        };
        ts <= i64::MAX as u64
            && self
                .key
                .verify_raw(&cosigned_message(ts, text), &signature[8..])
    }
}

/// A witness's signing key. The timestamp is the caller's "now": core reads
/// no clock.
#[derive(Clone)]
pub struct Cosigner {
    name: String,
    key_hash: u32,
    key: SigningKey,
}

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cosigner({}+{:08x})", self.name, self.key_hash)
    }
}

impl Cosigner {
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        Ok(Self {
            name: name.to_owned(),
            key_hash: super::note::signer_key_hash(name, &key, SIG_TYPE_COSIGNATURE_V1)?,
            key,
        })
    }

    pub fn verifier(&self) -> Result<CosignatureVerifier, NoteError> {
        let key = self
            .key
            .verifying_key()
            .map_err(|e| NoteError::Sign(e.to_string()))?;
        CosignatureVerifier::new(&self.name, &key)
    }

    /// A `note::Signer` that cosigns as of `timestamp` (POSIX seconds).
    pub fn at(&self, timestamp: u64) -> Result<TimedCosigner<'_>, WitnessError> {
        if timestamp > i64::MAX as u64 {
            return Err(WitnessError::BadTimestamp(timestamp));
        }
        Ok(TimedCosigner {
            cosigner: self,
            timestamp,
        })
    }
}

/// A cosigner fixed at one timestamp.
#[derive(Debug)]
pub struct TimedCosigner<'a> {
    cosigner: &'a Cosigner,
    timestamp: u64,
}

impl Signer for TimedCosigner<'_> {
    fn name(&self) -> &str {
        &self.cosigner.name
    }
    fn key_hash(&self) -> u32 {
        self.cosigner.key_hash
    }
    fn sign(&self, text: &[u8]) -> Result<Vec<u8>, NoteError> {
        let text = std::str::from_utf8(text).map_err(|_| NoteError::Malformed("not UTF-8"))?;
        let sig = self
            .cosigner
            .key
            .sign_raw(&cosigned_message(self.timestamp, text))
            .map_err(|e| NoteError::Sign(e.to_string()))?;
        let mut out = self.timestamp.to_be_bytes().to_vec();
        out.extend_from_slice(&sig);
        Ok(out)
    }
}

/// The body of a C2SP tlog-witness `add-checkpoint` request: `old N`, the
/// consistency proof (one base64 hash a line), an empty line, then the
/// signed checkpoint note.
pub fn add_checkpoint_request(old_size: u64, proof: &[super::Hash], note: &str) -> String {
    let mut out = format!("old {old_size}\n");
    for h in proof {
        out.push_str(&B64.encode(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(note);
    out
}

/// How many distinct `witnesses` have a verified cosignature in `note`.
pub fn cosigners(note: &VerifiedNote, witnesses: &[CosignatureVerifier]) -> usize {
    witnesses
        .iter()
        .filter(|w| {
            note.verified
                .iter()
                .any(|s| s.name == w.name && s.key_hash == w.key_hash)
        })
        .count()
}

/// Opens a checkpoint of log `origin` that must carry the log's signature
/// and cosignatures from at least `quorum` of `witnesses`. A bad signature
/// from any trusted key rejects the whole note (signed-note rules).
pub fn open_cosigned(
    msg: &[u8],
    origin: &str,
    log: &dyn Verifier,
    witnesses: &[CosignatureVerifier],
    quorum: usize,
) -> Result<SignedCheckpoint, WitnessError> {
    let mut known: Vec<&dyn Verifier> = vec![log];
    known.extend(witnesses.iter().map(|w| w as &dyn Verifier));
    let opened = checkpoint::open(msg, origin, &known)?;
    let log_signed = opened
        .note
        .verified
        .iter()
        .any(|s| s.name == log.name() && s.key_hash == log.key_hash());
    if !log_signed {
        return Err(WitnessError::NoLogSignature);
    }
    let got = cosigners(&opened.note, witnesses);
    if got < quorum {
        return Err(WitnessError::NoQuorum { got, quorum });
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::checkpoint::Checkpoint;
    use crate::tlog::note::{self, Ed25519Signer, Note};

    const SPEC_TEXT: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn spec_example_cosignature_line_and_message() {
        let msg = format!(
            "{SPEC_TEXT}\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
        );
        let n = note::parse(msg.as_bytes()).unwrap();
        let w = &n.signatures[1];
        assert_eq!(w.name, "witness.example.com/w1");
        assert_eq!(timestamp_of(w), Some(1679315147));
        assert_eq!(
            cosigned_message(1679315147, SPEC_TEXT),
            b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
    }

    fn world() -> (Ed25519Signer, Vec<Cosigner>, Checkpoint) {
        let log = Ed25519Signer::new("isac.example/log", SigningKey::generate().unwrap()).unwrap();
        let witnesses = (0..3)
            .map(|i| {
                Cosigner::new(&format!("w{i}.example"), SigningKey::generate().unwrap()).unwrap()
            })
            .collect();
        let c = Checkpoint {
            origin: "isac.example/log".into(),
            size: 7,
            root: crate::tlog::merkle::leaf_hash(b"r"),
            extensions: vec![],
        };
        (log, witnesses, c)
    }

    #[test]
    fn quorum_of_cosignatures() {
        let (log, ws, c) = world();
        let lv = log.verifier().unwrap();
        let wvs: Vec<CosignatureVerifier> = ws.iter().map(|w| w.verifier().unwrap()).collect();
        let mut n = Note::new(c.to_text().unwrap()).unwrap();
        n.sign(&log).unwrap();
        n.sign(&ws[0].at(1_700_000_000).unwrap()).unwrap();
        n.sign(&ws[1].at(1_700_000_001).unwrap()).unwrap();
        let msg = n.to_text();
        let o = open_cosigned(msg.as_bytes(), "isac.example/log", &lv, &wvs, 2).unwrap();
        assert_eq!(o.checkpoint, c);
        assert_eq!(cosigners(&o.note, &wvs), 2);
        assert_eq!(
            open_cosigned(msg.as_bytes(), "isac.example/log", &lv, &wvs, 3).unwrap_err(),
            WitnessError::NoQuorum { got: 2, quorum: 3 }
        );
        // The same witness twice counts once.
        let mut dup = n.clone();
        dup.signatures.push(dup.signatures[1].clone());
        assert_eq!(
            cosigners(
                &note::open(dup.to_text().as_bytes(), &[&lv, &wvs[0]]).unwrap(),
                &wvs
            ),
            1
        );
        // Witnesses alone are not the log.
        let mut only_w = Note::new(c.to_text().unwrap()).unwrap();
        only_w.sign(&ws[0].at(1).unwrap()).unwrap();
        only_w.sign(&ws[1].at(1).unwrap()).unwrap();
        assert_eq!(
            open_cosigned(
                only_w.to_text().as_bytes(),
                "isac.example/log",
                &lv,
                &wvs,
                1
            )
            .unwrap_err(),
            WitnessError::NoLogSignature
        );
        // A cosignature over another checkpoint fails the whole note.
        let other = Checkpoint {
            size: 8,
            ..c.clone()
        };
        let mut forged = Note::new(other.to_text().unwrap()).unwrap();
        forged.sign(&ws[2].at(5).unwrap()).unwrap();
        n.signatures.push(forged.signatures[0].clone());
        assert!(matches!(
            open_cosigned(n.to_text().as_bytes(), "isac.example/log", &lv, &wvs, 2),
            Err(WitnessError::Checkpoint(CheckpointError::Note(
                NoteError::InvalidSignature { .. }
            )))
        ));
    }

    #[test]
    fn witness_keys_are_not_log_keys() {
        let key = SigningKey::generate().unwrap();
        let w = Cosigner::new("same.example", key.clone()).unwrap();
        let l = Ed25519Signer::new("same.example", key).unwrap();
        assert_ne!(w.key_hash, l.key_hash());
        let wv = w.verifier().unwrap();
        assert_eq!(
            CosignatureVerifier::from_vkey(&wv.to_vkey())
                .unwrap()
                .to_vkey(),
            wv.to_vkey()
        );
        assert!(CosignatureVerifier::from_vkey(&l.verifier().unwrap().to_vkey()).is_err());
        assert!(note::Ed25519Verifier::from_vkey(&wv.to_vkey()).is_err());
        // A plain signature in a cosignature's place does not verify.
        let plain = l.sign(b"x\n").unwrap();
        assert!(!wv.verify(b"x\n", &plain));
        assert!(w.at(u64::MAX).is_err());
        let mut sig = w.at(9).unwrap().sign(b"x\n").unwrap();
        assert!(wv.verify(b"x\n", &sig));
        sig[0] = 0x80; // timestamp past 2^63 - 1
        assert!(!wv.verify(b"x\n", &sig));
    }
}
