//! Opaque positions. A member resumes a stream, or a TAXII client pages,
//! from a position in the hub's order; if that position were the bare
//! sequence number, the gaps between two of them would count the items the
//! member was not sent (and, with timestamps, when). So every position that
//! leaves the hub is sealed: AES-256-GCM under a key only the hub holds,
//! with a fresh random nonce (two tokens for one position differ), bound to
//! the organisation it was issued to and to its purpose. Pure apart from
//! the nonce: no I/O, no store.

use std::cell::RefCell;

use openssl::cipher::Cipher as CipherRef;
use openssl::cipher_ctx::CipherCtx;
use openssl::symm::{decrypt_aead, Cipher};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Every sealed position has this length: version, nonce, 8 bytes of
/// ciphertext, tag.
pub const TOKEN_LEN: usize = 1 + NONCE_LEN + 8 + TAG_LEN;

/// What a position is for; a token sealed for one purpose never opens as
/// another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// gRPC subscription cursors (`Delivery.cursor`, `CaughtUp.cursor`).
    Stream,
    /// TAXII `next` tokens.
    TaxiiNext,
    /// Peer hubs' follow cursors (federation, issue 20).
    Peer,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Stream => "stream",
            Purpose::TaxiiNext => "taxii-next",
            Purpose::Peer => "peer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this cursor was not issued to you by this hub")]
pub struct BadCursor;

/// Seals and opens positions with the hub's cursor key.
#[derive(Clone)]
pub struct CursorSealer {
    key: [u8; 32],
}

impl std::fmt::Debug for CursorSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSealer(..)")
    }
}

fn aad(purpose: Purpose, org: &str) -> Vec<u8> {
    let mut a = b"isac-cursor-v1\0".to_vec();
    a.extend_from_slice(purpose.label().as_bytes());
    a.push(0);
    a.extend_from_slice(org.as_bytes());
    a
}

thread_local! {
    /// A cipher context per thread, keyed once: every delivery on a stream
    /// seals a cursor, and setting up a context (fetching the cipher, the
    /// key schedule) cost more than the sealing itself.
    static SEALING: RefCell<Option<([u8; 32], CipherCtx)>> = const { RefCell::new(None) };
}

thread_local! {
    /// Random bytes for nonces, drawn from OpenSSL's generator a page at a
    /// time: one `RAND_bytes` call per token cost more than the sealing
    /// (its locks and fork check), and every delivery seals one.
    static NONCES: RefCell<NoncePage> = const {
        RefCell::new(NoncePage { bytes: [0; NONCE_PAGE], used: NONCE_PAGE })
    };
}

const NONCE_PAGE: usize = NONCE_LEN * 340;

struct NoncePage {
    bytes: [u8; NONCE_PAGE],
    used: usize,
}

/// A random 96-bit nonce (GCM needs them unique under one key: random
/// 96-bit values are, far beyond the number of cursors a hub seals).
fn fresh_nonce() -> [u8; NONCE_LEN] {
    NONCES.with(|cell| {
        let mut page = cell.borrow_mut();
        if page.used + NONCE_LEN > NONCE_PAGE {
            openssl::rand::rand_bytes(&mut page.bytes).expect("OpenSSL's random generator");
            page.used = 0;
        }
        let mut nonce = [0u8; NONCE_LEN];
        let at = page.used;
        nonce.copy_from_slice(&page.bytes[at..at + NONCE_LEN]);
        page.used += NONCE_LEN;
        nonce
    })
}

fn seal_with(
    cached: &mut Option<([u8; 32], CipherCtx)>,
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    position: u64,
    ciphertext: &mut [u8],
    tag: &mut [u8],
) -> Result<(), openssl::error::ErrorStack> {
    if cached.as_ref().is_none_or(|(k, _)| k != key) {
        let mut ctx = CipherCtx::new()?;
        ctx.encrypt_init(Some(CipherRef::aes_256_gcm()), Some(key), None)?;
        *cached = Some((*key, ctx));
    }
    let (_, ctx) = cached.as_mut().expect("set above");
    // A new nonce, the same key schedule.
    ctx.encrypt_init(None, None, Some(nonce))?;
    ctx.cipher_update(aad, None)?;
    let n = ctx.cipher_update(&position.to_be_bytes(), Some(ciphertext))?;
    ctx.cipher_final(&mut ciphertext[n..])?;
    ctx.tag(tag)
}

impl CursorSealer {
    /// Derives the cursor key from a secret of the hub's (its signing key
    /// file), separated from every other use by a label.
    pub fn derive(secret: &[u8]) -> Self {
        let mut input = b"isac-hub cursor key v1\n".to_vec();
        input.extend_from_slice(secret);
        let digest = openssl::sha::sha256(&input);
        Self { key: digest }
    }

    pub fn seal(&self, purpose: Purpose, org: &str, position: u64) -> Vec<u8> {
        let nonce = fresh_nonce();
        let mut token = Vec::with_capacity(TOKEN_LEN);
        token.push(VERSION);
        token.extend_from_slice(&nonce);
        token.resize(TOKEN_LEN, 0);
        let (ciphertext, tag) = token[1 + NONCE_LEN..].split_at_mut(8);
        SEALING
            .with(|cell| {
                let mut cached = cell.borrow_mut();
                seal_with(
                    &mut cached,
                    &self.key,
                    &nonce,
                    &aad(purpose, org),
                    position,
                    ciphertext,
                    tag,
                )
            })
            .expect("AES-256-GCM with a 32-byte key and a 12-byte nonce");
        token
    }

    pub fn open(&self, purpose: Purpose, org: &str, token: &[u8]) -> Result<u64, BadCursor> {
        if token.len() != TOKEN_LEN || token[0] != VERSION {
            return Err(BadCursor);
        }
        let nonce = &token[1..1 + NONCE_LEN];
        let ciphertext = &token[1 + NONCE_LEN..TOKEN_LEN - TAG_LEN];
        let tag = &token[TOKEN_LEN - TAG_LEN..];
        let plain = decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            &aad(purpose, org),
            ciphertext,
            tag,
        )
        .map_err(|_| BadCursor)?;
        let bytes: [u8; 8] = plain.as_slice().try_into().map_err(|_| BadCursor)?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// A sealed position as URL-safe text (TAXII `next`).
    pub fn seal_text(&self, purpose: Purpose, org: &str, position: u64) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.seal(purpose, org, position))
    }

    pub fn open_text(&self, purpose: Purpose, org: &str, text: &str) -> Result<u64, BadCursor> {
        use base64::Engine;
        if text.len() > 2 * TOKEN_LEN {
            return Err(BadCursor);
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| BadCursor)?;
        self.open(purpose, org, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> CursorSealer {
        CursorSealer::derive(b"a hub secret")
    }

    #[test]
    fn a_position_opens_for_its_org_and_purpose_only() {
        let s = sealer();
        for position in [0, 1, 41, u64::MAX] {
            let t = s.seal(Purpose::Stream, "bank-a", position);
            assert_eq!(t.len(), TOKEN_LEN);
            assert_eq!(s.open(Purpose::Stream, "bank-a", &t), Ok(position));
            assert_eq!(s.open(Purpose::Stream, "bank-b", &t), Err(BadCursor));
            assert_eq!(s.open(Purpose::TaxiiNext, "bank-a", &t), Err(BadCursor));
            assert_eq!(
                CursorSealer::derive(b"another hub").open(Purpose::Stream, "bank-a", &t),
                Err(BadCursor)
            );
            let text = s.seal_text(Purpose::TaxiiNext, "bank-a", position);
            assert_eq!(
                s.open_text(Purpose::TaxiiNext, "bank-a", &text),
                Ok(position)
            );
        }
    }

    #[test]
    fn sealers_with_different_keys_on_one_thread_do_not_mix() {
        // The sealing context is cached per thread: interleave two keys.
        let (a, b) = (sealer(), CursorSealer::derive(b"another hub"));
        for position in [3, 4, 5] {
            let ta = a.seal(Purpose::Stream, "bank-a", position);
            let tb = b.seal(Purpose::Stream, "bank-a", position);
            assert_eq!(a.open(Purpose::Stream, "bank-a", &ta), Ok(position));
            assert_eq!(b.open(Purpose::Stream, "bank-a", &tb), Ok(position));
            assert_eq!(a.open(Purpose::Stream, "bank-a", &tb), Err(BadCursor));
            assert_eq!(b.open(Purpose::Stream, "bank-a", &ta), Err(BadCursor));
        }
    }

    #[test]
    fn tokens_say_nothing_about_their_position() {
        let s = sealer();
        // Same length for every position, and two seals of one position
        // differ: neither order nor distance can be read off them.
        let a = s.seal(Purpose::Stream, "bank-a", 7);
        let b = s.seal(Purpose::Stream, "bank-a", 7);
        let c = s.seal(Purpose::Stream, "bank-a", 7_000_000);
        assert_ne!(a, b);
        assert_eq!(a.len(), c.len());
        assert!(!a.windows(8).any(|w| w == 7u64.to_be_bytes()));
    }

    #[test]
    fn nonces_differ_across_many_pages_and_threads() {
        let per_thread = 3 * NONCE_PAGE / NONCE_LEN + 7;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per_thread).map(|_| fresh_nonce()).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for t in threads {
            for nonce in t.join().unwrap() {
                assert!(seen.insert(nonce), "a nonce was handed out twice");
            }
        }
        assert_eq!(seen.len(), 4 * per_thread);
    }

    #[test]
    fn every_altered_or_truncated_token_is_refused() {
        let s = sealer();
        let t = s.seal(Purpose::Stream, "bank-a", 12);
        for i in 0..t.len() {
            for bit in 0..8 {
                let mut bad = t.clone();
                bad[i] ^= 1 << bit;
                assert_eq!(s.open(Purpose::Stream, "bank-a", &bad), Err(BadCursor));
            }
        }
        for n in 0..t.len() {
            assert_eq!(s.open(Purpose::Stream, "bank-a", &t[..n]), Err(BadCursor));
        }
        assert_eq!(
            s.open(Purpose::Stream, "bank-a", &[t.clone(), vec![0]].concat()),
            Err(BadCursor)
        );
        for text in ["", "42", "not base64!", &"A".repeat(10_000)] {
            assert_eq!(
                s.open_text(Purpose::TaxiiNext, "bank-a", text),
                Err(BadCursor)
            );
        }
    }
}
