//! The C2SP tlog-witness `add-checkpoint` decision
//! (<https://c2sp.org/tlog-witness>), without I/O: parse a request body
//! (bounded), then decide it against the logs this witness trusts and the
//! latest checkpoint it cosigned for the origin. The server persists what
//! [`check`] accepts before it answers with a cosignature.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use isac_core::tlog::checkpoint::{self, Checkpoint, CheckpointError};
use isac_core::tlog::merkle::{self, Hash};
use isac_core::tlog::note::{self, Ed25519Verifier, NoteError, Verifier};
use isac_core::VerifyingKey;

/// Largest request body read. A checkpoint note from an ISAC hub is a few
/// hundred bytes; this leaves room for many signature lines and 63 proof
/// lines while bounding what an anonymous caller can make us buffer.
pub const MAX_BODY: usize = 64 * 1024;
/// Consistency proof lines allowed (the spec's bound: a proof in a tree of
/// up to 2^63 leaves).
pub const MAX_PROOF_LINES: usize = 63;

/// A parsed `add-checkpoint` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, as sent.
    pub note: Vec<u8>,
}

/// Why a request is refused, with the HTTP status the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the body is malformed, or the old size is past the checkpoint.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 404: no trusted key for this origin.
    #[error("unknown log {0:?}")]
    UnknownLog(String),
    /// 403: no signature from a trusted key verifies.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 409 with `latest` as the body: the old size is not the size this
    /// witness last cosigned.
    #[error("old size {old} is not the latest cosigned size {latest}")]
    SizeConflict { old: u64, latest: u64 },
    /// 409: same size as the latest cosigned checkpoint, another root (a
    /// fork; `latest` is still the body).
    #[error("checkpoint at size {latest} has a different root than the one cosigned")]
    RootConflict { latest: u64 },
    /// 422: the consistency proof does not verify.
    #[error("consistency proof does not verify: {0}")]
    BadProof(String),
    /// 500: the witness cannot persist or sign (nothing was cosigned).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::Forbidden(_) => 403,
            Refusal::UnknownLog(_) => 404,
            Refusal::SizeConflict { .. } | Refusal::RootConflict { .. } => 409,
            Refusal::BadProof(_) => 422,
            Refusal::Internal(_) => 500,
        }
    }
}

fn bad(msg: impl Into<String>) -> Refusal {
    Refusal::BadRequest(msg.into())
}

/// `old N`: decimal, no leading zeros (except `0`).
fn parse_old(line: &str) -> Result<u64, Refusal> {
    let n = line
        .strip_prefix("old ")
        .ok_or_else(|| bad("the first line must be `old <size>`"))?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0'))
    {
        return Err(bad("the old size must be a decimal without leading zeros"));
    }
    n.parse()
        .map_err(|_| bad("the old size does not fit in 64 bits"))
}

fn parse_hash(line: &str) -> Result<Hash, Refusal> {
    if line.len() != 44 {
        return Err(bad("a proof line must be the base64 of 32 bytes"));
    }
    B64.decode(line)
        .ok()
        .and_then(|v| Hash::try_from(v).ok())
        .ok_or_else(|| bad("a proof line must be the base64 of 32 bytes"))
}

/// Parses an `add-checkpoint` body: `old N\n`, up to 63 base64 hash lines,
/// an empty line, then the checkpoint note (not yet verified).
pub fn parse_request(body: &[u8]) -> Result<AddCheckpoint, Refusal> {
    if body.len() > MAX_BODY {
        return Err(bad(format!("the body is larger than {MAX_BODY} bytes")));
    }
    let mut rest = body;
    let mut next_line = |what: &str| -> Result<&str, Refusal> {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad(format!("{what} does not end in a newline")))?;
        let line =
            std::str::from_utf8(&rest[..end]).map_err(|_| bad(format!("{what} is not UTF-8")))?;
        rest = &rest[end + 1..];
        Ok(line)
    };
    let old_size = parse_old(next_line("the old size line")?)?;
    let mut proof = Vec::new();
    loop {
        let line = next_line("a proof line")?;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LINES {
            return Err(bad(format!(
                "more than {MAX_PROOF_LINES} consistency proof lines"
            )));
        }
        proof.push(parse_hash(line)?);
    }
    if rest.is_empty() {
        return Err(bad("no checkpoint after the empty line"));
    }
    Ok(AddCheckpoint {
        old_size,
        proof,
        note: rest.to_vec(),
    })
}

pub use isac_core::tlog::witness::add_checkpoint_request as format_request;

/// The logs a witness cosigns for.
#[derive(Debug, Clone, Default)]
pub struct TrustedLogs {
    /// Logs named by a vkey: origin = the key's name.
    pub vkeys: Vec<Ed25519Verifier>,
    /// The hub's log key from the verified key directory, which lists the
    /// key without its origin: any origin whose signature this key makes
    /// under that origin's name.
    pub directory_key: Option<VerifyingKey>,
}

impl TrustedLogs {
    /// The verifier for `origin`, if this witness knows the log.
    pub fn verifier(&self, origin: &str) -> Option<Ed25519Verifier> {
        if let Some(v) = self.vkeys.iter().find(|v| v.name() == origin) {
            return Some(v.clone());
        }
        let key = self.directory_key.as_ref()?;
        Ed25519Verifier::new(origin, key).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.vkeys.is_empty() && self.directory_key.is_none()
    }
}

/// What this witness last cosigned for one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    pub size: u64,
    pub root: Hash,
}

/// A checkpoint that passed every check: the witness must persist it
/// before it answers with a cosignature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub checkpoint: Checkpoint,
    /// The checkpoint text the cosignature signs.
    pub text: String,
}

/// The origin a note claims, read before any signature is checked (to find
/// the key). 400 if the note or its checkpoint text is malformed.
pub fn origin_of(msg: &[u8]) -> Result<String, Refusal> {
    let parsed = note::parse(msg).map_err(|e| bad(format!("checkpoint note: {e}")))?;
    let c = Checkpoint::parse(&parsed.text).map_err(|e| bad(format!("checkpoint: {e}")))?;
    Ok(c.origin)
}

/// Decides a request against the trusted logs and `latest`, the
/// checkpoint last cosigned for the request's origin (None: never).
/// `latest_of` is asked for the origin once the signature verified.
pub fn check(
    req: &AddCheckpoint,
    logs: &TrustedLogs,
    latest_of: impl FnOnce(&str) -> Option<Cosigned>,
) -> Result<Accepted, Refusal> {
    let origin = origin_of(&req.note)?;
    let verifier = logs
        .verifier(&origin)
        .ok_or_else(|| Refusal::UnknownLog(origin.clone()))?;
    let opened = match checkpoint::open(&req.note, &origin, &[&verifier]) {
        Ok(o) => o,
        Err(CheckpointError::Note(
            e @ (NoteError::NoKnownSignature | NoteError::InvalidSignature { .. }),
        )) => return Err(Refusal::Forbidden(format!("{e} (log key {origin:?})"))),
        Err(e) => return Err(bad(format!("checkpoint: {e}"))),
    };
    let c = opened.checkpoint;
    if req.old_size > c.size {
        return Err(bad(format!(
            "old size {} is past the checkpoint size {}",
            req.old_size, c.size
        )));
    }
    let latest = latest_of(&origin);
    let latest_size = latest.as_ref().map_or(0, |l| l.size);
    if req.old_size != latest_size {
        return Err(Refusal::SizeConflict {
            old: req.old_size,
            latest: latest_size,
        });
    }
    match latest {
        None => {
            if !req.proof.is_empty() {
                return Err(Refusal::BadProof(
                    "the proof must be empty from size 0".into(),
                ));
            }
        }
        Some(l) if l.size == c.size => {
            if l.root != c.root {
                return Err(Refusal::RootConflict { latest: l.size });
            }
            if !req.proof.is_empty() {
                return Err(Refusal::BadProof(
                    "the proof between equal sizes must be empty".into(),
                ));
            }
        }
        Some(l) if l.size == 0 => {
            if !req.proof.is_empty() {
                return Err(Refusal::BadProof(
                    "the proof must be empty from size 0".into(),
                ));
            }
        }
        Some(l) => {
            merkle::verify_consistency(l.size, c.size, &l.root, &c.root, &req.proof)
                .map_err(|e| Refusal::BadProof(e.to_string()))?;
        }
    }
    Ok(Accepted {
        text: opened.note.text,
        checkpoint: c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use isac_core::tlog::merkle::{leaf_hash, prove_consistency, HashReader, NodeId, TreeBuilder};
    use isac_core::tlog::note::Ed25519Signer;
    use isac_core::SigningKey;
    use std::collections::HashMap;

    const ORIGIN: &str = "isac.example/log";

    /// A whole tree in memory: every node hash, for proofs.
    struct Tree(HashMap<NodeId, Hash>, TreeBuilder);

    impl Tree {
        fn new(prefix: &str, n: u64) -> Tree {
            let mut t = Tree(HashMap::new(), TreeBuilder::new());
            t.grow(prefix, n);
            t
        }
        fn grow(&mut self, prefix: &str, n: u64) {
            for _ in 0..n {
                let i = self.1.size();
                for (id, h) in self
                    .1
                    .append(leaf_hash(format!("{prefix}{i}").as_bytes()))
                    .unwrap()
                {
                    self.0.insert(id, h);
                }
            }
        }
    }

    impl HashReader for Tree {
        type Error = std::convert::Infallible;
        fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
            Ok(nodes.iter().map(|n| self.0[n]).collect())
        }
    }

    fn signed(signer: &Ed25519Signer, tree: &Tree) -> String {
        Checkpoint {
            origin: signer.name_owned(),
            size: tree.1.size(),
            root: tree.1.root(),
            extensions: vec![],
        }
        .sign(&[signer])
        .unwrap()
    }

    trait NameOwned {
        fn name_owned(&self) -> String;
    }
    impl NameOwned for Ed25519Signer {
        fn name_owned(&self) -> String {
            note::Signer::name(self).to_owned()
        }
    }

    fn logs(signer: &Ed25519Signer) -> TrustedLogs {
        TrustedLogs {
            vkeys: vec![signer.verifier().unwrap()],
            directory_key: None,
        }
    }

    fn request(old: u64, proof: &[Hash], note: &str) -> AddCheckpoint {
        parse_request(format_request(old, proof, note).as_bytes()).unwrap()
    }

    #[test]
    fn spec_example_body_parses() {
        let body = "old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
        let r = parse_request(body.as_bytes()).unwrap();
        assert_eq!(r.old_size, 20852014);
        assert_eq!(r.proof.len(), 4);
        assert_eq!(origin_of(&r.note).unwrap(), "example.com/behind-the-sofa");
        // Not a log we know: 404 before anything else.
        assert_eq!(
            check(&r, &TrustedLogs::default(), |_| None).unwrap_err(),
            Refusal::UnknownLog("example.com/behind-the-sofa".into())
        );
    }

    #[test]
    fn malformed_bodies_are_400() {
        let long_proof: String = (0..64)
            .map(|_| format!("{}\n", B64.encode([7u8; 32])))
            .collect();
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"old 1".to_vec(),
            b"new 1\n\nx\n".to_vec(),
            b"old 01\n\nx\n".to_vec(),
            b"old -1\n\nx\n".to_vec(),
            b"old 18446744073709551616\n\nx\n".to_vec(),
            b"old 1\nnot-base64\n\nx\n".to_vec(),
            b"old 1\nAAAA\n\nx\n".to_vec(),
            b"old 1\n\n".to_vec(),
            format!("old 1\n{long_proof}\nx\n").into_bytes(),
            vec![b'x'; MAX_BODY + 1],
            b"old 1\n\xff\n\nx\n".to_vec(),
        ];
        for body in cases {
            let e = parse_request(&body).unwrap_err();
            assert_eq!(e.status(), 400, "{:?}: {e}", String::from_utf8_lossy(&body));
        }
        // 63 lines is the limit, not over it.
        let ok: String = (0..63)
            .map(|_| format!("{}\n", B64.encode([7u8; 32])))
            .collect();
        assert_eq!(
            parse_request(format!("old 1\n{ok}\nx\n").as_bytes())
                .unwrap()
                .proof
                .len(),
            63
        );
        // The checkpoint itself is checked by `check`: garbage is 400 there.
        let r = parse_request(b"old 0\n\nnot a note").unwrap();
        assert_eq!(
            check(&r, &TrustedLogs::default(), |_| None)
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn first_checkpoint_then_consistent_growth_then_conflicts() {
        let log = Ed25519Signer::new(ORIGIN, SigningKey::generate().unwrap()).unwrap();
        let trusted = logs(&log);
        let mut tree = Tree::new("a", 5);
        let first = signed(&log, &tree);
        // First contact: old 0, empty proof.
        let a = check(&request(0, &[], &first), &trusted, |_| None).unwrap();
        assert_eq!(a.checkpoint.size, 5);
        assert_eq!(a.text, a.checkpoint.to_text().unwrap());
        let state = Cosigned {
            size: 5,
            root: tree.1.root(),
        };
        tree.grow("a", 8);
        let second = signed(&log, &tree);
        let proof = prove_consistency(&tree, 5, 13).unwrap();
        let b = check(&request(5, &proof, &second), &trusted, |o| {
            assert_eq!(o, ORIGIN);
            Some(state.clone())
        })
        .unwrap();
        assert_eq!(b.checkpoint.size, 13);
        // A stale old size: 409 with the size this witness holds.
        assert_eq!(
            check(&request(3, &[], &second), &trusted, |_| Some(state.clone())).unwrap_err(),
            Refusal::SizeConflict { old: 3, latest: 5 }
        );
        assert_eq!(
            check(&request(0, &[], &second), &trusted, |_| Some(state.clone()))
                .unwrap_err()
                .status(),
            409
        );
        // A wrong proof: 422; every altered hash and a truncated proof.
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][0] ^= 1;
            assert_eq!(
                check(&request(5, &p, &second), &trusted, |_| Some(state.clone()))
                    .unwrap_err()
                    .status(),
                422
            );
        }
        assert_eq!(
            check(&request(5, &proof[1..], &second), &trusted, |_| Some(
                state.clone()
            ))
            .unwrap_err()
            .status(),
            422
        );
        // Old size past the checkpoint: 400.
        assert_eq!(
            check(&request(14, &[], &second), &trusted, |_| None)
                .unwrap_err()
                .status(),
            400
        );
        // The same checkpoint again: cosigned again. The same size with
        // another root: 409.
        let again = Cosigned {
            size: 13,
            root: tree.1.root(),
        };
        assert!(check(&request(13, &[], &second), &trusted, |_| Some(
            again.clone()
        ))
        .is_ok());
        let forked = signed(&log, &Tree::new("b", 13));
        assert_eq!(
            check(&request(13, &[], &forked), &trusted, |_| Some(
                again.clone()
            ))
            .unwrap_err(),
            Refusal::RootConflict { latest: 13 }
        );
    }

    #[test]
    fn a_fork_from_the_cosigned_tree_fails_its_proof() {
        let log = Ed25519Signer::new(ORIGIN, SigningKey::generate().unwrap()).unwrap();
        let trusted = logs(&log);
        let honest = Tree::new("a", 7);
        let state = Cosigned {
            size: 7,
            root: honest.1.root(),
        };
        // Same first 6 leaves, then another 7th, then growth: its proof
        // from 7 cannot lead to the cosigned root.
        let mut fork = Tree::new("a", 6);
        fork.grow("z", 5);
        let proof = prove_consistency(&fork, 7, 11).unwrap();
        let e = check(&request(7, &proof, &signed(&log, &fork)), &trusted, |_| {
            Some(state.clone())
        })
        .unwrap_err();
        assert_eq!(e.status(), 422, "{e}");
    }

    #[test]
    fn unknown_logs_are_404_and_bad_signatures_403() {
        let log = Ed25519Signer::new(ORIGIN, SigningKey::generate().unwrap()).unwrap();
        let trusted = logs(&log);
        let tree = Tree::new("a", 3);
        let other =
            Ed25519Signer::new("other.example/log", SigningKey::generate().unwrap()).unwrap();
        assert_eq!(
            check(&request(0, &[], &signed(&other, &tree)), &trusted, |_| None)
                .unwrap_err()
                .status(),
            404
        );
        // Same origin, another key: no trusted signature.
        let impostor = Ed25519Signer::new(ORIGIN, SigningKey::generate().unwrap()).unwrap();
        assert_eq!(
            check(
                &request(0, &[], &signed(&impostor, &tree)),
                &trusted,
                |_| None
            )
            .unwrap_err()
            .status(),
            403
        );
        // The right key over altered text.
        let good = signed(&log, &tree);
        let tampered = good.replacen("\n3\n", "\n4\n", 1);
        assert_eq!(
            check(&request(0, &[], &tampered), &trusted, |_| None)
                .unwrap_err()
                .status(),
            403
        );
        // The directory key trusts any origin it signs under.
        let by_directory = TrustedLogs {
            vkeys: vec![],
            directory_key: Some(log.verifier().unwrap().verifying_key().clone()),
        };
        assert!(check(&request(0, &[], &good), &by_directory, |_| None).is_ok());
        assert_eq!(
            check(
                &request(0, &[], &signed(&impostor, &tree)),
                &by_directory,
                |_| None
            )
            .unwrap_err()
            .status(),
            403
        );
    }
}
