//! C2SP signed notes (<https://c2sp.org/signed-note>), compatible byte for
//! byte with golang.org/x/mod/sumdb/note: a text ending in a newline, a
//! blank line, then lines `— <name> base64(key hash || signature)`.
//!
//! `open` follows the spec and Go's `note.Open`: signatures from unknown
//! keys are kept aside unverified, a known key's signature must verify
//! (one bad one rejects the whole note), repeats of a known key are
//! skipped, and at least one known signature is required. Parsing is
//! bounded: `MAX_NOTE_SIZE` bytes, `MAX_SIGNATURES` signature lines.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::keys::{SigningKey, VerifyingKey};

/// Checkpoints are a few hundred bytes; this leaves room for many
/// post-quantum cosignatures and nothing more.
pub const MAX_NOTE_SIZE: usize = 1 << 20;
/// As in Go's note.Open; the spec asks verifiers to accept at least 16.
pub const MAX_SIGNATURES: usize = 100;
/// Signature type byte of plain Ed25519 note signatures.
pub const SIG_TYPE_ED25519: u8 = 0x01;

const SIG_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("note is larger than {MAX_NOTE_SIZE} bytes")]
    TooLarge,
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("note has no signature from a known key")]
    NoKnownSignature,
    #[error("invalid signature for key {name}+{key_hash:08x}")]
    InvalidSignature { name: String, key_hash: u32 },
    #[error("more than one known key is {name}+{key_hash:08x}")]
    AmbiguousKey { name: String, key_hash: u32 },
    #[error("bad key name {0:?}")]
    BadName(String),
    #[error("malformed key: {0}")]
    BadKey(&'static str),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Key names are non-empty and have no Unicode white space and no `+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '+')
}

/// SHA-256(name || "\n" || signature type || public key)[:4], big endian.
pub fn key_hash(name: &str, sig_type: u8, public_key: &[u8]) -> u32 {
    let mut h = openssl::sha::Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(&[sig_type]);
    h.update(public_key);
    let d = h.finish();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_hash: u32,
    /// The signature bytes after the 4-byte key hash.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line as it appears in a note, newline included.
    pub fn line(&self) -> String {
        let mut raw = self.key_hash.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(raw))
    }
}

/// A note as parsed, before any signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, final newline included.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

/// A note with at least one signature from a known key verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    pub text: String,
    /// Verified signatures from known keys, in note order.
    pub verified: Vec<NoteSignature>,
    /// Signatures from keys the caller did not name, each line once.
    pub unverified: Vec<NoteSignature>,
}

/// A known key. Ed25519 note keys are `Ed25519Verifier`; cosignatures
/// (`tlog::witness`) sign a different message and implement this too.
pub trait Verifier {
    fn name(&self) -> &str;
    fn key_hash(&self) -> u32;
    /// Whether `signature` (without the key hash) signs `text`.
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool;
}

/// Something that signs note texts under a name and key hash.
pub trait Signer {
    fn name(&self) -> &str;
    fn key_hash(&self) -> u32;
    fn sign(&self, text: &[u8]) -> Result<Vec<u8>, NoteError>;
}

fn check_chars(msg: &str) -> Result<(), NoteError> {
    if msg.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed("control character"));
    }
    Ok(())
}

/// Splits a signed note into text and signature lines; checks no signature.
pub fn parse(msg: &[u8]) -> Result<Note, NoteError> {
    if msg.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge);
    }
    let msg = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed("not UTF-8"))?;
    check_chars(msg)?;
    let split = msg
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::Malformed("signatures must end in a newline"));
    }
    let mut signatures = Vec::new();
    for line in sigs[..sigs.len() - 1].split('\n') {
        if signatures.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let line = line
            .strip_prefix(SIG_PREFIX)
            .ok_or(NoteError::Malformed("signature line without the em dash"))?;
        let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
        if !is_valid_name(name) {
            return Err(NoteError::Malformed("bad key name in a signature line"));
        }
        let raw = B64
            .decode(b64)
            .map_err(|_| NoteError::Malformed("signature is not base64"))?;
        if raw.len() < 5 {
            return Err(NoteError::Malformed("signature too short"));
        }
        signatures.push(NoteSignature {
            name: name.to_owned(),
            key_hash: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            signature: raw[4..].to_vec(),
        });
    }
    Ok(Note {
        text: text.to_owned(),
        signatures,
    })
}

/// Parses `msg` and verifies it against `known`, per the spec.
pub fn open(msg: &[u8], known: &[&dyn Verifier]) -> Result<VerifiedNote, NoteError> {
    let note = parse(msg)?;
    let mut verified: Vec<NoteSignature> = Vec::new();
    let mut unverified: Vec<NoteSignature> = Vec::new();
    for sig in note.signatures {
        let mut matching = known
            .iter()
            .filter(|v| v.name() == sig.name && v.key_hash() == sig.key_hash);
        let Some(v) = matching.next() else {
            if !unverified.contains(&sig) {
                unverified.push(sig);
            }
            continue;
        };
        if matching.next().is_some() {
            return Err(NoteError::AmbiguousKey {
                name: sig.name,
                key_hash: sig.key_hash,
            });
        }
        if verified
            .iter()
            .any(|s| s.name == sig.name && s.key_hash == sig.key_hash)
        {
            continue;
        }
        if !v.verify(note.text.as_bytes(), &sig.signature) {
            return Err(NoteError::InvalidSignature {
                name: sig.name,
                key_hash: sig.key_hash,
            });
        }
        verified.push(sig);
    }
    if verified.is_empty() {
        return Err(NoteError::NoKnownSignature);
    }
    Ok(VerifiedNote {
        text: note.text,
        verified,
        unverified,
    })
}

impl Note {
    /// A note with no signatures yet. The text must end in a newline and
    /// hold no control characters but newlines.
    pub fn new(text: impl Into<String>) -> Result<Self, NoteError> {
        let text = text.into();
        if !text.ends_with('\n') {
            return Err(NoteError::Malformed("text must end in a newline"));
        }
        check_chars(&text)?;
        Ok(Self {
            text,
            signatures: Vec::new(),
        })
    }

    /// Signs the text, replacing any signature under the same name and key
    /// hash (as Go's note.Sign does) and appending the new one last.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<(), NoteError> {
        let name = signer.name();
        if !is_valid_name(name) {
            return Err(NoteError::BadName(name.to_owned()));
        }
        let key_hash = signer.key_hash();
        let signature = signer.sign(self.text.as_bytes())?;
        self.signatures
            .retain(|s| !(s.name == name && s.key_hash == key_hash));
        self.signatures.push(NoteSignature {
            name: name.to_owned(),
            key_hash,
            signature,
        });
        Ok(())
    }

    /// The signed note: text, blank line, one line per signature.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }
}

/// Signs `text` with every signer in turn into a signed note.
pub fn sign(text: &str, signers: &[&dyn Signer]) -> Result<String, NoteError> {
    let mut note = Note::new(text)?;
    for s in signers {
        note.sign(*s)?;
    }
    Ok(note.to_text())
}

/// A known Ed25519 note key, from its vkey `name+hash+base64(0x01||key)`.
#[derive(Debug, Clone)]
pub struct Ed25519Verifier {
    name: String,
    key_hash: u32,
    key: VerifyingKey,
    raw: [u8; 32],
}

impl Ed25519Verifier {
    pub fn new(name: &str, key: &VerifyingKey) -> Result<Self, NoteError> {
        let (raw, key_hash) = named_key(name, key, SIG_TYPE_ED25519)?;
        Ok(Self {
            name: name.to_owned(),
            key_hash,
            key: key.clone(),
            raw,
        })
    }

    /// Parses a verifier key, checking its key hash.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let (name, key) = parse_key_parts(vkey)?;
        let (&sig_type, raw) = key.split_first().ok_or(NoteError::BadKey("empty key"))?;
        if sig_type != SIG_TYPE_ED25519 {
            return Err(NoteError::BadKey("not an Ed25519 note key"));
        }
        let key = VerifyingKey::from_raw(raw).map_err(|_| NoteError::BadKey("bad Ed25519 key"))?;
        Self::new(name, &key)
    }

    /// `name+hash+base64(0x01||key)`.
    pub fn to_vkey(&self) -> String {
        let mut key = vec![SIG_TYPE_ED25519];
        key.extend_from_slice(&self.raw);
        format!("{}+{:08x}+{}", self.name, self.key_hash, B64.encode(key))
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// Splits `name+hash+base64(key)` and checks the hash against the key.
/// Returns the name and the decoded key (type byte first).
fn parse_key_parts(s: &str) -> Result<(&str, Vec<u8>), NoteError> {
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(hash), Some(key64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::BadKey("want name+hash+key"));
    };
    if !is_valid_name(name) {
        return Err(NoteError::BadName(name.to_owned()));
    }
    if hash.len() != 8
        || !hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(NoteError::BadKey("key hash is not 8 lowercase hex digits"));
    }
    let hash = u32::from_str_radix(hash, 16).map_err(|_| NoteError::BadKey("key hash"))?;
    let key = B64
        .decode(key64)
        .map_err(|_| NoteError::BadKey("key is not base64"))?;
    if key.is_empty() {
        return Err(NoteError::BadKey("empty key"));
    }
    // The key hash covers the type byte and the key together.
    let (&sig_type, public) = key.split_first().ok_or(NoteError::BadKey("empty key"))?;
    if hash != key_hash(name, sig_type, public) {
        return Err(NoteError::BadKey("key hash does not match the key"));
    }
    Ok((name, key))
}

impl Verifier for Ed25519Verifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_hash(&self) -> u32 {
        self.key_hash
    }
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        self.key.verify_raw(text, signature)
    }
}

/// The raw public key and the key hash a key of `sig_type` is known by,
/// after checking the name and that the key is Ed25519: one check for note
/// signers and verifiers and for witness cosigners and their verifiers.
pub(crate) fn named_key(
    name: &str,
    key: &VerifyingKey,
    sig_type: u8,
) -> Result<([u8; 32], u32), NoteError> {
    if !is_valid_name(name) {
        return Err(NoteError::BadName(name.to_owned()));
    }
    let raw = key.raw().map_err(|_| NoteError::BadKey("not Ed25519"))?;
    Ok((raw, key_hash(name, sig_type, &raw)))
}

/// The key hash a signer of `sig_type` signs under ([`named_key`] of its
/// public half).
pub(crate) fn signer_key_hash(
    name: &str,
    key: &SigningKey,
    sig_type: u8,
) -> Result<u32, NoteError> {
    let public = key
        .verifying_key()
        .map_err(|_| NoteError::BadKey("not Ed25519"))?;
    Ok(named_key(name, &public, sig_type)?.1)
}

/// An Ed25519 note signer (the log key).
#[derive(Clone)]
pub struct Ed25519Signer {
    name: String,
    key_hash: u32,
    key: SigningKey,
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519Signer({}+{:08x})", self.name, self.key_hash)
    }
}

impl Ed25519Signer {
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        Ok(Self {
            name: name.to_owned(),
            key_hash: signer_key_hash(name, &key, SIG_TYPE_ED25519)?,
            key,
        })
    }

    /// Parses Go's signer key form `PRIVATE+KEY+name+hash+base64(0x01||seed)`.
    pub fn from_skey(skey: &str) -> Result<Self, NoteError> {
        let rest = skey
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::BadKey("signer key must start PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(hash), Some(key64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::BadKey("want PRIVATE+KEY+name+hash+key"));
        };
        let key = B64
            .decode(key64)
            .map_err(|_| NoteError::BadKey("key is not base64"))?;
        let seed: &[u8; 32] = match key.split_first() {
            Some((&SIG_TYPE_ED25519, seed)) => seed
                .try_into()
                .map_err(|_| NoteError::BadKey("an Ed25519 seed is 32 bytes"))?,
            _ => return Err(NoteError::BadKey("not an Ed25519 signer key")),
        };
        let key = SigningKey::from_seed(seed).map_err(|_| NoteError::BadKey("bad seed"))?;
        let signer = Self::new(name, key)?;
        if hash.len() != 8 || format!("{:08x}", signer.key_hash) != hash {
            return Err(NoteError::BadKey("key hash does not match the key"));
        }
        Ok(signer)
    }

    /// `PRIVATE+KEY+name+hash+base64(0x01||seed)`. Secret.
    pub fn to_skey(&self) -> Result<String, NoteError> {
        let seed = self
            .key
            .seed()
            .map_err(|e| NoteError::Sign(e.to_string()))?;
        let mut key = vec![SIG_TYPE_ED25519];
        key.extend_from_slice(&seed);
        Ok(format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_hash,
            B64.encode(key)
        ))
    }

    pub fn verifier(&self) -> Result<Ed25519Verifier, NoteError> {
        let key = self
            .key
            .verifying_key()
            .map_err(|e| NoteError::Sign(e.to_string()))?;
        Ed25519Verifier::new(&self.name, &key)
    }
}

impl Signer for Ed25519Signer {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_hash(&self) -> u32 {
        self.key_hash
    }
    fn sign(&self, text: &[u8]) -> Result<Vec<u8>, NoteError> {
        self.key
            .sign_raw(text)
            .map_err(|e| NoteError::Sign(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
