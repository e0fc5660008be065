//! Lowercase hex, the one text form we use for digests and key ids.

pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// True when `s` is exactly `len` lowercase-or-uppercase hex digits.
pub fn is_hex_of_len(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_lowercase() {
        assert_eq!(encode(&[0x00, 0xab, 0xff, 0x10]), "00abff10");
        assert_eq!(encode(&[]), "");
    }

    #[test]
    fn checks_length_and_digits() {
        assert!(is_hex_of_len("00ff", 4));
        assert!(!is_hex_of_len("00ff", 3));
        assert!(!is_hex_of_len("00fg", 4));
    }
}
