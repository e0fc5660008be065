//! C2SP tlog-checkpoint (<https://c2sp.org/tlog-checkpoint>): the note text
//! `origin\nsize\nbase64(root)\n[extension lines]`, signed as a C2SP note by
//! the log key.
//!
//! Parsing is strict and canonical, so a checkpoint has exactly one text:
//! the size is decimal without leading zeros, the root is the canonical
//! base64 of 32 bytes, extension lines are non-empty, and
//! `Checkpoint::parse(c.to_text()) == c` for every checkpoint that parses.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::merkle::Hash;
use super::note::{self, NoteError, Signer, VerifiedNote, Verifier, MAX_NOTE_SIZE};

/// Longest origin or extension line accepted.
pub const MAX_LINE_LEN: usize = 1024;
/// Most extension lines accepted (the spec discourages any).
pub const MAX_EXTENSIONS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    #[error("checkpoint is for log {got:?}, not {want:?}")]
    WrongOrigin { got: String, want: String },
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// A log's tree head at one size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub extensions: Vec<String>,
}

fn check_line(line: &str, what: &'static str) -> Result<(), CheckpointError> {
    if line.is_empty() || line.len() > MAX_LINE_LEN || line.chars().any(|c| c < ' ') {
        return Err(CheckpointError::Malformed(what));
    }
    Ok(())
}

fn parse_size(s: &str) -> Result<u64, CheckpointError> {
    let bad = CheckpointError::Malformed("tree size is not a canonical decimal");
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(bad);
    }
    s.parse().map_err(|_| bad)
}

fn parse_root(s: &str) -> Result<Hash, CheckpointError> {
    let bad = CheckpointError::Malformed("root hash is not base64 of 32 bytes");
    if s.len() != 44 {
        return Err(bad);
    }
    B64.decode(s)
        .ok()
        .and_then(|v| Hash::try_from(v).ok())
        .ok_or(bad)
}

impl Checkpoint {
    /// Parses a checkpoint note text (final newline included).
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        if text.len() > MAX_NOTE_SIZE {
            return Err(CheckpointError::Note(NoteError::TooLarge));
        }
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("text must end in a newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::Malformed("fewer than three lines"));
        };
        check_line(origin, "origin line")?;
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        let mut extensions = Vec::new();
        for line in lines {
            if extensions.len() == MAX_EXTENSIONS {
                return Err(CheckpointError::Malformed("too many extension lines"));
            }
            check_line(line, "extension line")?;
            extensions.push(line.to_owned());
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The note text. Fails only for an origin or extension line that
    /// would not parse back.
    pub fn to_text(&self) -> Result<String, CheckpointError> {
        check_line(&self.origin, "origin line")?;
        if self.extensions.len() > MAX_EXTENSIONS {
            return Err(CheckpointError::Malformed("too many extension lines"));
        }
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for line in &self.extensions {
            check_line(line, "extension line")?;
            out.push_str(line);
            out.push('\n');
        }
        Ok(out)
    }

    /// The signed checkpoint note, signed by each signer in turn.
    pub fn sign(&self, signers: &[&dyn Signer]) -> Result<String, CheckpointError> {
        Ok(note::sign(&self.to_text()?, signers)?)
    }
}

/// A checkpoint whose note carries a verified signature from a known key,
/// with the signed note exactly as received (what an agent keeps and shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: VerifiedNote,
    pub signed_note: String,
}

/// Verifies a signed checkpoint from the log `origin` against the log's
/// key(s) in `verifiers`, then parses it.
pub fn open(
    msg: &[u8],
    origin: &str,
    verifiers: &[&dyn Verifier],
) -> Result<SignedCheckpoint, CheckpointError> {
    let note = note::open(msg, verifiers)?;
    let checkpoint = Checkpoint::parse(&note.text)?;
    if checkpoint.origin != origin {
        return Err(CheckpointError::WrongOrigin {
            got: checkpoint.origin,
            want: origin.to_owned(),
        });
    }
    // `note::open` checked the message is UTF-8.
    let signed_note = String::from_utf8_lossy(msg).into_owned();
    Ok(SignedCheckpoint {
        checkpoint,
        note,
        signed_note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use crate::tlog::note::{Ed25519Signer, Ed25519Verifier};

    fn root_of(s: &str) -> Hash {
        openssl::sha::sha256(s.as_bytes())
    }

    #[test]
    fn spec_example_parses_and_formats_back() {
        let text =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let c = Checkpoint::parse(text).unwrap();
        assert_eq!(c.origin, "example.com/behind-the-sofa");
        assert_eq!(c.size, 20852163);
        assert!(c.extensions.is_empty());
        assert_eq!(c.to_text().unwrap(), text);
        // The signed example: its signature is from a key we do not know.
        let signed = format!("{text}\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n");
        let parsed = note::parse(signed.as_bytes()).unwrap();
        assert_eq!(parsed.text, text);
        assert_eq!(parsed.signatures[0].name, "example.com/behind-the-sofa");
        assert_eq!(
            open(signed.as_bytes(), "example.com/behind-the-sofa", &[]),
            Err(CheckpointError::Note(NoteError::NoKnownSignature))
        );
    }

    #[test]
    fn formats_and_parses_extensions() {
        // transparency-dev/formats checkpoint_test.go, with 32-byte roots.
        let c = Checkpoint {
            origin: "Log".into(),
            size: 9944,
            root: root_of("bananas"),
            extensions: vec!["lots".into(), "of".into(), "lines".into()],
        };
        let text = c.to_text().unwrap();
        assert_eq!(
            text,
            format!("Log\n9944\n{}\nlots\nof\nlines\n", B64.encode(c.root))
        );
        assert_eq!(Checkpoint::parse(&text).unwrap(), c);
        let zero = Checkpoint {
            origin: "Log".into(),
            size: 0,
            root: crate::tlog::merkle::empty_root(),
            extensions: vec![],
        };
        assert_eq!(
            zero.to_text().unwrap(),
            "Log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
        );
        assert_eq!(Checkpoint::parse(&zero.to_text().unwrap()).unwrap(), zero);
    }

    #[test]
    fn refuses_non_canonical_checkpoints() {
        let r = B64.encode(root_of("x"));
        let max = format!("Log\n18446744073709551615\n{r}\n");
        assert_eq!(Checkpoint::parse(&max).unwrap().size, u64::MAX);
        for bad in [
            "Head\n9944\n".to_string(),
            format!("\n9944\n{r}\n"),
            format!("Log\n123\n{r}"),
            format!("Log\nbananas\n{r}\n"),
            format!("Log\n-34\n{r}\n"),
            format!("Log\n+34\n{r}\n"),
            format!("Log\n034\n{r}\n"),
            format!("Log\n00\n{r}\n"),
            format!("Log\n 34\n{r}\n"),
            format!("Log\n18446744073709551616\n{r}\n"),
            format!("Log\n3438945738945739845734895735\n{r}\n"),
            "Log\n123\nThisIsn'tBase64\n".to_string(),
            "Log\n123\nYmFuYW5hcw==\n".to_string(),
            // Non-canonical base64 (trailing bits set) of 32 bytes.
            format!("Log\n1\n{}F=\n", &r[..42]),
            format!("Log\n1\n{r}\n\n"),
            format!("Log\n1\n{r}\next\n\n"),
            format!("Log\n1\n{r}\r\n"),
            format!("Log\n1\n{r}\n{}\n", "e".repeat(MAX_LINE_LEN + 1)),
            format!("Log\n1\n{r}\n{}", "e\n".repeat(MAX_EXTENSIONS + 1)),
            format!("{}\n1\n{r}\n", "o".repeat(MAX_LINE_LEN + 1)),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
        let c = Checkpoint {
            origin: "a\nb".into(),
            size: 1,
            root: [0; 32],
            extensions: vec![],
        };
        assert!(c.to_text().is_err());
        let c = Checkpoint {
            origin: "a".into(),
            size: 1,
            root: [0; 32],
            extensions: vec![String::new()],
        };
        assert!(c.to_text().is_err());
    }

    #[test]
    fn signed_checkpoints_open_only_for_their_log_and_key() {
        let log = Ed25519Signer::new("isac.example/log", SigningKey::generate().unwrap()).unwrap();
        let other =
            Ed25519Signer::new("isac.example/log", SigningKey::generate().unwrap()).unwrap();
        let v: Ed25519Verifier = log.verifier().unwrap();
        let c = Checkpoint {
            origin: "isac.example/log".into(),
            size: 42,
            root: root_of("r"),
            extensions: vec![],
        };
        let signed = c.sign(&[&log]).unwrap();
        let opened = open(signed.as_bytes(), "isac.example/log", &[&v]).unwrap();
        assert_eq!(opened.checkpoint, c);
        assert_eq!(opened.signed_note, signed);
        assert!(matches!(
            open(signed.as_bytes(), "isac.example/other", &[&v]),
            Err(CheckpointError::WrongOrigin { .. })
        ));
        let forged = c.sign(&[&other]).unwrap();
        assert!(open(forged.as_bytes(), "isac.example/log", &[&v]).is_err());
        // Same text, same key name and hash scheme, one changed size byte.
        let tampered = signed.replacen("\n42\n", "\n43\n", 1);
        assert!(open(tampered.as_bytes(), "isac.example/log", &[&v]).is_err());
        // A signed note that is not a checkpoint.
        let not_cp = note::sign("hello\n", &[&log]).unwrap();
        assert!(matches!(
            open(not_cp.as_bytes(), "isac.example/log", &[&v]),
            Err(CheckpointError::Malformed(_))
        ));
    }
}
