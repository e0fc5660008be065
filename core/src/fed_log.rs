//! Federation and the transparency log (issue 20 with issue 19): an item a
//! peer hub forwards carries the origin hub's signed checkpoint and the
//! inclusion proof of the item's leaf in it, and the receiver checks both
//! before it stores (and so before it forwards) the item.
//!
//! The origin's log key comes from the origin's signed key directory (org
//! [`crate::names::LOG_ORG`]), which the receiver already pins with the
//! rollback and freeze rules (`hub peer add`); nothing here is trusted on
//! the sender's word. The leaf is [`crate::tlog::envelope_leaf_hash`] of the
//! envelope as it crosses: the very leaf the origin's log holds.

use crate::directory::KeyDirectory;
use crate::envelope::Envelope;
use crate::names::LOG_ORG;
use crate::tlog::checkpoint::{self, CheckpointError};
use crate::tlog::merkle::{self, ProofError};
use crate::tlog::note::{Ed25519Verifier, Verifier};
use crate::tlog::{Hash, HASH_SIZE};

/// Largest origin checkpoint (signed note) taken from a peer. A checkpoint
/// with one signature is under 300 bytes.
pub const MAX_ORIGIN_NOTE_BYTES: usize = 4096;
/// Most hashes an origin inclusion proof may hold (a tree of 2^64 leaves
/// needs at most 64).
pub const MAX_ORIGIN_PROOF_HASHES: usize = 64;

/// The newest origin checkpoint a receiver accepted for one origin hub:
/// later items must come with one at least as new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginCheckpoint {
    /// The log's origin line (the note's signer name).
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginLogError {
    #[error("the item carries no position in the origin hub's log")]
    NoPosition,
    #[error("the item carries no origin checkpoint and inclusion proof")]
    NoProof,
    #[error("origin checkpoint of {0} bytes; at most {MAX_ORIGIN_NOTE_BYTES}")]
    NoteTooLarge(usize),
    #[error("inclusion proof of {0} hashes; at most {MAX_ORIGIN_PROOF_HASHES}")]
    ProofTooLong(usize),
    #[error("an inclusion proof hash of {0} bytes; hashes are {HASH_SIZE}")]
    BadHash(usize),
    #[error("the origin hub's signed directory lists no log key (org {LOG_ORG})")]
    NoLogKey,
    #[error("origin checkpoint refused: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("origin checkpoint is of log `{got}`, earlier ones of `{held}`")]
    OtherLog { got: String, held: String },
    #[error("origin checkpoint of size {got} is older than the one held ({held})")]
    Older { got: u64, held: u64 },
    #[error("origin checkpoint of size {size} has another root than the one held: the origin's log forked")]
    Forked { size: u64 },
    #[error("the item is not in the origin hub's log at index {index}: {error}")]
    NotIncluded { index: u64, error: ProofError },
}

/// The note's first line: the log origin it claims (checked by the
/// signature, whose key hash covers the name).
fn claimed_origin(note: &[u8]) -> String {
    let end = note.iter().position(|&b| b == b'\n').unwrap_or(note.len());
    String::from_utf8_lossy(&note[..end]).into_owned()
}

/// The hashes of an inclusion proof as they arrive, bounded.
pub fn parse_proof(proof: &[Vec<u8>]) -> Result<Vec<Hash>, OriginLogError> {
    if proof.len() > MAX_ORIGIN_PROOF_HASHES {
        return Err(OriginLogError::ProofTooLong(proof.len()));
    }
    proof
        .iter()
        .map(|h| <Hash>::try_from(h.as_slice()).map_err(|_| OriginLogError::BadHash(h.len())))
        .collect()
}

/// Checks that `envelope` (as it crossed) is leaf `log_index` of the origin
/// hub's log: `note` is a checkpoint signed by a log key the origin's
/// verified directory lists (not revoked), of the same log as `held` and
/// not older than it (same size: same root), and `proof` leads from the
/// leaf to its root. Returns the checkpoint to hold from now on (the newer
/// of the two).
///
/// Between two sizes no consistency proof is asked for yet: a larger
/// checkpoint is taken as it comes (every one is signed by the origin).
pub fn check_origin_inclusion(
    envelope: &Envelope,
    log_index: Option<u64>,
    note: &[u8],
    proof: &[Vec<u8>],
    origin_directory: &KeyDirectory,
    held: Option<&OriginCheckpoint>,
) -> Result<OriginCheckpoint, OriginLogError> {
    let index = log_index.ok_or(OriginLogError::NoPosition)?;
    if note.is_empty() {
        return Err(OriginLogError::NoProof);
    }
    if note.len() > MAX_ORIGIN_NOTE_BYTES {
        return Err(OriginLogError::NoteTooLarge(note.len()));
    }
    let proof = parse_proof(proof)?;
    let origin = match held {
        Some(h) => h.origin.clone(),
        None => claimed_origin(note),
    };
    let verifiers: Vec<Ed25519Verifier> = origin_directory
        .keys
        .iter()
        .filter(|k| k.org_id == LOG_ORG && k.revoked_at.is_none())
        .filter_map(|k| k.record())
        .filter_map(|r| Ed25519Verifier::new(&origin, &r.key).ok())
        .collect();
    if verifiers.is_empty() {
        return Err(OriginLogError::NoLogKey);
    }
    let known: Vec<&dyn Verifier> = verifiers.iter().map(|v| v as &dyn Verifier).collect();
    let opened = match checkpoint::open(note, &origin, &known) {
        Err(CheckpointError::WrongOrigin { got, want }) => {
            return Err(OriginLogError::OtherLog { got, held: want })
        }
        other => other?,
    };
    let c = opened.checkpoint;
    if let Some(h) = held {
        if c.size < h.size {
            return Err(OriginLogError::Older {
                got: c.size,
                held: h.size,
            });
        }
        if c.size == h.size && c.root != h.root {
            return Err(OriginLogError::Forked { size: c.size });
        }
    }
    let leaf = crate::tlog::envelope_leaf_hash(envelope);
    merkle::verify_inclusion(index, c.size, &leaf, &proof, &c.root)
        .map_err(|error| OriginLogError::NotIncluded { index, error })?;
    Ok(OriginCheckpoint {
        origin: c.origin,
        size: c.size,
        root: c.root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::DirectoryKey;
    use crate::keys::SigningKey;
    use crate::time::format_rfc3339;
    use crate::tlog::checkpoint::Checkpoint;
    use crate::tlog::merkle::{prove_inclusion, HashReader, NodeId, TreeBuilder};
    use crate::tlog::note::{Ed25519Signer, NoteError};
    use std::collections::HashMap;

    const LOG: &str = "a.example/log";

    fn entry(k: &SigningKey, org: &str) -> DirectoryKey {
        crate::directory::test_entry(k, org, 0)
    }

    fn directory(keys: Vec<DirectoryKey>) -> KeyDirectory {
        KeyDirectory {
            version: 1,
            issued: format_rfc3339(0),
            expires: format_rfc3339(i64::from(u32::MAX)),
            keys,
            peers: Vec::new(),
            removed_peers: Vec::new(),
            default_lifetimes: Default::default(),
            federated: Vec::new(),
        }
    }

    fn envelope(n: u64) -> Envelope {
        Envelope {
            payload_type: crate::PAYLOAD_TYPE_STATEMENT_V1.into(),
            payload: format!("item {n}").into_bytes(),
            signatures: vec![crate::envelope::Signature {
                keyid: "k".into(),
                sig: vec![1, 2, 3],
            }],
        }
    }

    struct Nodes(HashMap<NodeId, Hash>);
    impl HashReader for Nodes {
        type Error = String;
        fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, String> {
            nodes
                .iter()
                .map(|n| self.0.get(n).copied().ok_or(format!("{n:?}")))
                .collect()
        }
    }

    /// The origin's log: `size` items, its nodes, and checkpoints signed
    /// with `key`.
    struct Log {
        key: SigningKey,
        nodes: Nodes,
        roots: Vec<Hash>,
    }

    impl Log {
        fn new(size: u64) -> Log {
            let mut b = TreeBuilder::new();
            let mut nodes = HashMap::new();
            let mut roots = vec![b.root()];
            for i in 0..size {
                for (id, h) in b
                    .append(crate::tlog::envelope_leaf_hash(&envelope(i)))
                    .unwrap()
                {
                    nodes.insert(id, h);
                }
                roots.push(b.root());
            }
            Log {
                key: SigningKey::generate().unwrap(),
                nodes: Nodes(nodes),
                roots,
            }
        }
        fn note_by(&self, key: &SigningKey, origin: &str, size: u64) -> Vec<u8> {
            let signer = Ed25519Signer::new(origin, key.clone()).unwrap();
            Checkpoint {
                origin: origin.into(),
                size,
                root: self.roots[size as usize],
                extensions: Vec::new(),
            }
            .sign(&[&signer])
            .unwrap()
            .into_bytes()
        }
        fn note(&self, size: u64) -> Vec<u8> {
            self.note_by(&self.key, LOG, size)
        }
        fn proof(&self, index: u64, size: u64) -> Vec<Vec<u8>> {
            prove_inclusion(&self.nodes, index, size)
                .unwrap()
                .into_iter()
                .map(|h| h.to_vec())
                .collect()
        }
        fn dir(&self) -> KeyDirectory {
            directory(vec![entry(&self.key, LOG_ORG)])
        }
        fn held(&self, size: u64) -> OriginCheckpoint {
            OriginCheckpoint {
                origin: LOG.into(),
                size,
                root: self.roots[size as usize],
            }
        }
    }

    #[test]
    fn a_good_proof_is_accepted_for_every_leaf_and_size() {
        let log = Log::new(9);
        let dir = log.dir();
        for size in 1..=9 {
            for i in 0..size {
                let got = check_origin_inclusion(
                    &envelope(i),
                    Some(i),
                    &log.note(size),
                    &log.proof(i, size),
                    &dir,
                    None,
                );
                assert_eq!(got, Ok(log.held(size)), "leaf {i} of {size}");
                // Held at the same size (same root) or an older one: fine.
                for h in 1..=size {
                    assert_eq!(
                        check_origin_inclusion(
                            &envelope(i),
                            Some(i),
                            &log.note(size),
                            &log.proof(i, size),
                            &dir,
                            Some(&log.held(h)),
                        ),
                        Ok(log.held(size))
                    );
                }
            }
        }
    }

    #[test]
    fn a_wrong_index_or_a_tampered_leaf_is_not_included() {
        let log = Log::new(7);
        let dir = log.dir();
        let check = |env: &Envelope, index: Option<u64>, proof: &[Vec<u8>]| {
            check_origin_inclusion(env, index, &log.note(7), proof, &dir, None)
        };
        assert!(matches!(
            check(&envelope(3), Some(4), &log.proof(3, 7)),
            Err(OriginLogError::NotIncluded { index: 4, .. })
        ));
        assert!(matches!(
            check(&envelope(3), Some(9), &log.proof(3, 7)),
            Err(OriginLogError::NotIncluded {
                error: ProofError::IndexOutOfRange { .. },
                ..
            })
        ));
        let mut tampered = envelope(3);
        tampered.payload.push(b'!');
        assert!(matches!(
            check(&tampered, Some(3), &log.proof(3, 7)),
            Err(OriginLogError::NotIncluded {
                error: ProofError::RootMismatch,
                ..
            })
        ));
        // Another leaf's proof, a truncated one, a flipped hash.
        assert!(check(&envelope(3), Some(3), &log.proof(2, 7)).is_err());
        let mut short = log.proof(3, 7);
        short.pop();
        assert!(matches!(
            check(&envelope(3), Some(3), &short),
            Err(OriginLogError::NotIncluded {
                error: ProofError::WrongLength,
                ..
            })
        ));
        let mut flipped = log.proof(3, 7);
        flipped[0][0] ^= 1;
        assert!(check(&envelope(3), Some(3), &flipped).is_err());
        assert_eq!(
            check(&envelope(3), None, &log.proof(3, 7)),
            Err(OriginLogError::NoPosition)
        );
    }

    #[test]
    fn the_checkpoint_must_be_signed_by_the_origins_log_key() {
        let log = Log::new(5);
        let other = SigningKey::generate().unwrap();
        let check = |note: &[u8], dir: &KeyDirectory| {
            check_origin_inclusion(&envelope(1), Some(1), note, &log.proof(1, 5), dir, None)
        };
        // Signed by another key.
        assert_eq!(
            check(&log.note_by(&other, LOG, 5), &log.dir()),
            Err(OriginLogError::Checkpoint(CheckpointError::Note(
                NoteError::NoKnownSignature
            )))
        );
        // The log key listed under another org (e.g. a member's) is not it.
        let as_member = directory(vec![entry(&log.key, "acme")]);
        assert_eq!(
            check(&log.note(5), &as_member),
            Err(OriginLogError::NoLogKey)
        );
        // A revoked log key is not it either.
        let mut revoked = entry(&log.key, LOG_ORG);
        revoked.revoked_at = Some(format_rfc3339(1));
        assert_eq!(
            check(&log.note(5), &directory(vec![revoked])),
            Err(OriginLogError::NoLogKey)
        );
        // A tampered note body (size changed after signing).
        let tampered = String::from_utf8(log.note(5))
            .unwrap()
            .replacen("\n5\n", "\n4\n", 1);
        assert!(matches!(
            check(tampered.as_bytes(), &log.dir()),
            Err(OriginLogError::Checkpoint(_))
        ));
        // Nothing at all.
        assert_eq!(check(b"", &log.dir()), Err(OriginLogError::NoProof));
    }

    #[test]
    fn an_older_forked_or_other_log_checkpoint_is_refused() {
        let log = Log::new(6);
        let dir = log.dir();
        assert_eq!(
            check_origin_inclusion(
                &envelope(1),
                Some(1),
                &log.note(4),
                &log.proof(1, 4),
                &dir,
                Some(&log.held(5)),
            ),
            Err(OriginLogError::Older { got: 4, held: 5 })
        );
        let mut forked = log.held(6);
        forked.root[0] ^= 1;
        assert_eq!(
            check_origin_inclusion(
                &envelope(1),
                Some(1),
                &log.note(6),
                &log.proof(1, 6),
                &dir,
                Some(&forked),
            ),
            Err(OriginLogError::Forked { size: 6 })
        );
        // The same key signing a checkpoint of another log name.
        let other_log = log.note_by(&log.key, "b.example/log", 6);
        assert!(matches!(
            check_origin_inclusion(
                &envelope(1),
                Some(1),
                &other_log,
                &log.proof(1, 6),
                &dir,
                Some(&log.held(5)),
            ),
            Err(OriginLogError::Checkpoint(_) | OriginLogError::OtherLog { .. })
        ));
    }

    #[test]
    fn oversized_inputs_are_refused_before_any_work() {
        let log = Log::new(3);
        let dir = log.dir();
        let big = vec![b'x'; MAX_ORIGIN_NOTE_BYTES + 1];
        assert_eq!(
            check_origin_inclusion(&envelope(0), Some(0), &big, &[], &dir, None),
            Err(OriginLogError::NoteTooLarge(MAX_ORIGIN_NOTE_BYTES + 1))
        );
        let long = vec![vec![0u8; HASH_SIZE]; MAX_ORIGIN_PROOF_HASHES + 1];
        assert_eq!(
            check_origin_inclusion(&envelope(0), Some(0), &log.note(3), &long, &dir, None),
            Err(OriginLogError::ProofTooLong(MAX_ORIGIN_PROOF_HASHES + 1))
        );
        let mut short_hash = log.proof(0, 3);
        short_hash[0].pop();
        assert_eq!(
            check_origin_inclusion(&envelope(0), Some(0), &log.note(3), &short_hash, &dir, None),
            Err(OriginLogError::BadHash(HASH_SIZE - 1))
        );
    }
}
