//! Percent-encoding (RFC 3986), in one place on the maintained
//! `percent-encoding` crate: what we write into purl and URL segments, and
//! how we read escapes back. (Purl segment rules per ecosystem belong to
//! the purl code; this is only the byte-level escaping.)

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Escapes every byte but the unreserved characters (uppercase hex), for a
/// path segment or a query value.
pub fn encode_unreserved(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it
/// is, and bytes that are not UTF-8 become U+FFFD. For display and export,
/// where a best reading beats an error.
pub fn decode_lossy(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Decodes `%XX` escapes, or `None` when a `%` is not followed by two hex
/// digits or the result is not UTF-8. For input we match on (lockfiles),
/// where a wrong reading would be worse than none.
pub fn decode_strict(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let well_formed = b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_characters_pass_and_everything_else_is_escaped_in_uppercase() {
        assert_eq!(encode_unreserved("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(encode_unreserved("@scope/name"), "%40scope%2Fname");
        assert_eq!(encode_unreserved("a b+c%"), "a%20b%2Bc%25");
        assert_eq!(encode_unreserved("é"), "%C3%A9");
        for s in ["", "pkg:npm/x@1", "ünï cødé/?#&="] {
            assert_eq!(decode_strict(&encode_unreserved(s)).as_deref(), Some(s));
        }
    }

    #[test]
    fn lossy_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(decode_lossy("%40scope%2fname"), "@scope/name");
        assert_eq!(decode_lossy("100%"), "100%");
        assert_eq!(decode_lossy("%zz%4"), "%zz%4");
        assert_eq!(decode_lossy("%FF"), "\u{fffd}");
    }

    #[test]
    fn strict_decoding_refuses_broken_escapes_and_non_utf8() {
        assert_eq!(decode_strict("%40a").as_deref(), Some("@a"));
        assert_eq!(decode_strict("plain").as_deref(), Some("plain"));
        for bad in ["100%", "%4", "%zz", "%FF", "a%4g"] {
            assert_eq!(decode_strict(bad), None, "{bad}");
        }
    }
}
