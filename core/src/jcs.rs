//! RFC 8785, the JSON Canonicalization Scheme (JCS): the canonical bytes of
//! statement format v2. Any JCS library produces the same bytes, so a client
//! in another language signs what the hub and the agents check.
//!
//! The rules: no whitespace; object members sorted by their names' UTF-16
//! code units; strings with only `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`
//! and `\u00XX` (lowercase hex, other control characters) escaped, every
//! other character as UTF-8; numbers as IEEE 754 doubles printed the way
//! ECMAScript's `Number.prototype.toString` does (`1e+21`, `0.000001`,
//! `-0` as `0`); literals as is.
//!
//! [`parse`] is the bounded reader (size, depth, value count) of outside
//! JSON: strict RFC 8259 plus I-JSON (no duplicate member names, no lone
//! surrogates, finite numbers). [`to_vec`] writes any `serde_json::Value`
//! canonically. Pure: no I/O.

use serde_json::{Map, Number, Value};

/// Largest input [`parse`] reads.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// Deepest nesting of arrays and objects [`parse`] reads.
pub const MAX_DEPTH: usize = 64;
/// Most values (of any kind, nested ones included) [`parse`] reads.
pub const MAX_VALUES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JcsError {
    #[error("JSON is larger than {MAX_INPUT_BYTES} bytes")]
    TooLarge,
    #[error("JSON nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("JSON holds more than {MAX_VALUES} values")]
    TooMany,
    #[error("JSON is not UTF-8")]
    NotUtf8,
    #[error("invalid JSON at byte {at}: {what}")]
    Syntax { at: usize, what: &'static str },
    #[error("duplicate member name `{0}`")]
    DuplicateName(String),
}

/// Reads one JSON text (RFC 8259, I-JSON restrictions), bounded by
/// [`MAX_INPUT_BYTES`], [`MAX_DEPTH`] and [`MAX_VALUES`]. Every number
/// becomes the nearest double, as JCS requires.
pub fn parse(input: &[u8]) -> Result<Value, JcsError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(JcsError::TooLarge);
    }
    let text = std::str::from_utf8(input).map_err(|_| JcsError::NotUtf8)?;
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
        values: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return p.err("trailing characters after the value");
    }
    Ok(v)
}

/// The JCS bytes of a JSON text: [`parse`] then [`to_vec`].
pub fn canonicalize(input: &[u8]) -> Result<Vec<u8>, JcsError> {
    Ok(to_vec(&parse(input)?))
}

/// The JCS bytes of `value`. Numbers are written as doubles (an integer
/// beyond 2^53 is rounded, as every JCS implementation does).
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_value(value, &mut out);
    out.into_bytes()
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(number_as_f64(n), out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(Vec<u16>, &String, &Value)> = map
                .iter()
                .map(|(k, v)| (k.encode_utf16().collect(), k, v))
                .collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (_, k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_value(v, out);
            }
            out.push('}');
        }
    }
}

fn number_as_f64(n: &Number) -> f64 {
    // `as_f64` is `Some` for every number serde_json holds without
    // `arbitrary_precision`; with it, go through the text.
    n.as_f64()
        .or_else(|| n.to_string().parse().ok())
        .unwrap_or(f64::NAN)
}

/// Minimal escaping (RFC 8785 §3.2.2.2).
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// ECMAScript `Number.prototype.toString` for a finite double (ECMA-262
/// 7.1.12.1, RFC 8785 §3.2.2.3). NaN and infinities cannot reach here from
/// [`parse`] or `serde_json`; they are written as `null` rather than panic.
pub fn write_number(f: f64, out: &mut String) {
    if !f.is_finite() {
        out.push_str("null");
        return;
    }
    if f == 0.0 {
        out.push('0');
        return;
    }
    if f < 0.0 {
        out.push('-');
    }
    // ECMAScript wants the fewest digits k that read back as the same
    // double and, among k-digit strings that do, the one closest to it.
    // Rust's `{:e}` without a precision gives the fewest digits, but not
    // always the closest of them (0x43143ff3c1cb0959 is 1424953923781206.2,
    // not .3); `{:.*e}` rounds exactly to k digits, the closest, which we
    // take whenever it reads back too.
    let a = f.abs();
    let shortest = format!("{a:e}");
    let k = shortest
        .split_once('e')
        .map_or(1, |(m, _)| m.chars().filter(char::is_ascii_digit).count());
    let closest = format!("{a:.*e}", k.saturating_sub(1));
    let sci = if closest.parse::<f64>() == Ok(a) {
        closest
    } else {
        shortest
    };
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let mut digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let k = digits.len() as i32;
    let n = exp + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if n - 1 < 0 { '-' } else { '+' });
        out.push_str(&(n - 1).abs().to_string());
    }
}

// === impl Parser ===

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    values: usize,
}

impl Parser<'_> {
    fn err<T>(&self, what: &'static str) -> Result<T, JcsError> {
        Err(JcsError::Syntax { at: self.i, what })
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &'static str) -> Result<(), JcsError> {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            Ok(())
        } else {
            self.err("unknown literal")
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JcsError> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(JcsError::TooMany);
        }
        match self.s.get(self.i) {
            None => self.err("unexpected end of input"),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.eat("true").map(|_| Value::Bool(true)),
            Some(b'f') => self.eat("false").map(|_| Value::Bool(false)),
            Some(b'n') => self.eat("null").map(|_| Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.err("expected a value"),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JcsError> {
        if depth > MAX_DEPTH {
            return Err(JcsError::TooDeep);
        }
        self.i += 1;
        let mut map = Map::new();
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return self.err("expected a member name");
            }
            let name = self.string()?;
            self.ws();
            if self.s.get(self.i) != Some(&b':') {
                return self.err("expected `:`");
            }
            self.i += 1;
            self.ws();
            let v = self.value(depth)?;
            if map.contains_key(&name) {
                let shown: String = name.chars().take(64).collect();
                return Err(JcsError::DuplicateName(shown.escape_default().to_string()));
            }
            map.insert(name, v);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Object(map));
                }
                _ => return self.err("expected `,` or `}`"),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JcsError> {
        if depth > MAX_DEPTH {
            return Err(JcsError::TooDeep);
        }
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth)?);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                _ => return self.err("expected `,` or `]`"),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JcsError> {
        let Some(h) = self.s.get(self.i..self.i + 4) else {
            return self.err("short \\u escape");
        };
        let mut v = 0u32;
        for b in h {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return self.err("bad hex digit in \\u escape"),
            };
            v = v * 16 + u32::from(d);
        }
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JcsError> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(&b) = self.s.get(self.i) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            // `start..i` ends before an ASCII byte or at the end, so it is
            // on character boundaries of valid UTF-8.
            out.push_str(&self.text[start..self.i]);
            match self.s.get(self.i) {
                None => return self.err("unterminated string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let Some(&e) = self.s.get(self.i) else {
                        return self.err("unterminated escape");
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                if !self.s[self.i..].starts_with(b"\\u") {
                                    return self.err("lone high surrogate");
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return self.err("high surrogate without a low one");
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return self.err("lone low surrogate");
                            } else {
                                hi
                            };
                            match char::from_u32(c) {
                                Some(c) => out.push(c),
                                None => return self.err("invalid code point"),
                            }
                        }
                        _ => return self.err("unknown escape"),
                    }
                }
                Some(_) => return self.err("control character in string"),
            }
        }
    }

    fn number(&mut self) -> Result<Value, JcsError> {
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.err("expected a digit"),
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !matches!(self.s.get(self.i), Some(b'0'..=b'9')) {
                return self.err("expected a digit after `.`");
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.s.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.s.get(self.i) {
                self.i += 1;
            }
            if !matches!(self.s.get(self.i), Some(b'0'..=b'9')) {
                return self.err("expected a digit in the exponent");
            }
            self.digits();
        }
        // Rust's float parsing rounds correctly to the nearest double.
        let f: f64 = self.text[start..self.i]
            .parse()
            .map_err(|_| JcsError::Syntax {
                at: start,
                what: "unreadable number",
            })?;
        match Number::from_f64(f) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(JcsError::Syntax {
                at: start,
                what: "number is out of the double range",
            }),
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.s.get(self.i) {
            self.i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jcs(input: &str) -> String {
        String::from_utf8(canonicalize(input.as_bytes()).unwrap()).unwrap()
    }

    fn num(bits: u64) -> String {
        let mut s = String::new();
        write_number(f64::from_bits(bits), &mut s);
        s
    }

    /// RFC 8785 Appendix B: IEEE 754 doubles and their JCS text.
    #[test]
    fn rfc8785_number_vectors() {
        let vectors: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, want) in vectors {
            assert_eq!(num(*bits), *want, "{bits:016x}");
            // And the text reads back as the same double.
            let back: f64 = want.parse().unwrap();
            assert_eq!(back.abs().to_bits(), f64::from_bits(*bits).abs().to_bits());
        }
        // NaN and infinities are not JSON: never produced by the parser.
        assert!(parse(b"1e400").is_err());
        assert!(parse(b"-1e400").is_err());
        assert!(parse(b"NaN").is_err());
        assert!(parse(b"Infinity").is_err());
    }

    /// Random doubles and a few decimals, each with what node's
    /// `Number.prototype.toString` printed for it (generated once with a
    /// fixed-seed LCG; the ECMAScript algorithm is what JCS specifies).
    #[test]
    fn numbers_agree_with_ecmascript() {
        let vectors: &[(u64, &str)] = &[
            (0x1c0d57f10c894254, "1.4830122828920016e-173"),
            (0x43f04a6ece53d613, "18781959765316678000"),
            (0xe2b8410510668fa6, "-3.575532127436644e+167"),
            (0xd5f2e30a9e501b7d, "-1.0829258728928171e+106"),
            (0x535c8ea8a4e05948, "3.7230187291668613e+93"),
            (0x8f7b1bac9609eaf7, "-4.262874002980358e-234"),
            (0xcb3af636587957ba, "-2.5824242072052563e+54"),
            (0x6438f14dfe833301, "6.169062368256605e+174"),
            (0xd0af9825c659f77c, "-4.682717518917287e+80"),
            (0x302bd02b522a861b, "1.2009957333271821e-76"),
            (0xfd70522e931f790e, "-1.6677967842578716e+296"),
            (0xfba9a1630e23bac5, "-4.878446657335358e+287"),
            (0x29616ccb5e0010f0, "2.318589285015657e-109"),
            (0xd37bf421a1818b7f, "-1.4577297053362402e+94"),
            (0x7a5b1baa844c07a2, "2.4603368763737895e+281"),
            (0x552e421879d836c9, "2.1178316544328792e+102"),
            (0xa92e8eaf3493d9a4, "-2.5412503051231247e-110"),
            (0x5fe48bdeead11f23, "8.60880578948587e+153"),
            (0x618d3e487ffb5776, "8.222691106237041e+161"),
            (0x5cd158ba16a76b0d, "1.29107691235244e+139"),
            (0x07727df42b81c598, "8.54570675525937e-273"),
            (0x16e635e91fb5a507, "2.3213088696070116e-198"),
            (0x38c4ac26c846fc8a, "3.1104470921459883e-35"),
            (0x8ade8c37577c5b91, "-2.5430944865444634e-256"),
            (0xa7e5b8ad611588cc, "-1.722738704669676e-116"),
            (0x83785723e5c9c12b, "-6.097780315332402e-292"),
            (0xdab33022a4b9cade, "-8.312822724526027e+128"),
            (0x41b96ab112ea4c55, "426422546.91522723"),
            (0x4b0e14fa2fee1740, "3.601597095685222e+53"),
            (0x7402f3fb0a0a578f, "6.784931974924426e+250"),
            (0xf33082c146e3d672, "-7.215120195549942e+246"),
            (0x087799f31d30c159, "7.14794175889519e-268"),
            (0x0c996e223db1a4f4, "5.6829459783155954e-248"),
            (0xe7860860627a8c33, "-4.908348627938077e+190"),
            (0xc360b934d02e7346, "-37657888876108340"),
            (0x48a12d9e7a7f7e9d, "7.482161107104073e+41"),
            (0x7c5b2a840d01a5e8, "1.0589678202639377e+291"),
            (0x36aed0278207c317, "2.698647105952319e-45"),
            (0x2f32df6d0cf0355a, "2.487004346447123e-81"),
            (0x11aadb8d2d7a8821, "1.4511783911351778e-223"),
            (0x3fb999999999999a, "0.1"),
            (0x3fc999999999999a, "0.2"),
            (0x3fd3333333333333, "0.3"),
            (0x3fd5555555555555, "0.3333333333333333"),
            (0x40fe240c9fbe76c9, "123456.789"),
            (0x3e7ad7f29abcaf48, "1e-7"),
            (0x3e8421f5f40d8376, "1.5e-7"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x4415af1d78b58c40, "100000000000000000000"),
            (0x4058ff5c28f5c28f, "99.99"),
            (0x0000000000000001, "5e-324"),
            (0x4340000000000001, "9007199254740994"),
            (0x4011666666666666, "4.35"),
            (0x3eb4b3fd5942cd96, "0.000001234"),
            (0x43b12210f47de981, "1234567890123456800"),
        ];
        for (bits, want) in vectors {
            assert_eq!(num(*bits), *want, "{bits:016x}");
        }
    }

    #[test]
    fn number_boundaries_of_the_ecmascript_forms() {
        for (input, want) in [
            ("1", "1"),
            ("-1", "-1"),
            ("-0", "0"),
            ("0.0", "0"),
            ("1.0", "1"),
            ("100", "100"),
            ("1e20", "100000000000000000000"),
            ("1e21", "1e+21"),
            ("123e19", "1.23e+21"),
            ("0.1", "0.1"),
            ("1e-6", "0.000001"),
            ("1e-7", "1e-7"),
            ("1.5e-7", "1.5e-7"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("1E30", "1e+30"),
            ("0.000000000000000000000000001", "1e-27"),
            ("333333333.33333329", "333333333.3333333"),
            ("9007199254740993", "9007199254740992"),
            ("18446744073709551615", "18446744073709552000"),
            ("123456789012345678901234567890", "1.2345678901234568e+29"),
        ] {
            assert_eq!(jcs(input), want, "{input}");
        }
    }

    /// RFC 8785 §3.2.2: the example input and its canonical form.
    #[test]
    fn rfc8785_serialisation_example() {
        let input = r#"{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"#;
        assert_eq!(
            jcs(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    /// RFC 8785 §3.2.3: members sorted by UTF-16 code units, so U+1F600
    /// (a surrogate pair, 0xD83D...) sorts before U+FB33.
    #[test]
    fn rfc8785_sorting_example() {
        let input = r#"{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"#;
        assert_eq!(
            jcs(input),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        // UTF-8 byte order would put U+FB33 (EF AC B3) before U+1F600 (F0 9F..).
        let mut m = Map::new();
        m.insert("\u{fb33}".into(), Value::Null);
        m.insert("\u{1f600}".into(), Value::Null);
        assert_eq!(
            String::from_utf8(to_vec(&Value::Object(m))).unwrap(),
            "{\"\u{1f600}\":null,\"\u{fb33}\":null}"
        );
    }

    #[test]
    fn nested_objects_sort_too_and_arrays_keep_order() {
        assert_eq!(
            jcs(r#"{"b":[3,1,{"z":1,"a":2}],"a":{"y":true,"x":null}}"#),
            r#"{"a":{"x":null,"y":true},"b":[3,1,{"a":2,"z":1}]}"#
        );
        assert_eq!(jcs(" [ ] "), "[]");
        assert_eq!(jcs("{ }"), "{}");
        assert_eq!(jcs("\"\""), "\"\"");
    }

    #[test]
    fn minimal_escapes() {
        // Every control character, and what must stay unescaped.
        for c in 0u32..0x20 {
            let ch = char::from_u32(c).unwrap();
            let mut out = String::new();
            write_string(&ch.to_string(), &mut out);
            let want = match c {
                8 => "\"\\b\"".to_string(),
                9 => "\"\\t\"".to_string(),
                10 => "\"\\n\"".to_string(),
                12 => "\"\\f\"".to_string(),
                13 => "\"\\r\"".to_string(),
                _ => format!("\"\\u{c:04x}\""),
            };
            assert_eq!(out, want, "U+{c:04X}");
        }
        assert_eq!(jcs(r#""\u00e9""#), "\"é\"");
        assert_eq!(jcs(r#""é""#), "\"é\"");
        assert_eq!(jcs(r#""\/""#), "\"/\"");
        assert_eq!(jcs(r#""\u007f\u2028\u2029""#), "\"\u{7f}\u{2028}\u{2029}\"");
        assert_eq!(jcs(r#""\u001F\u001f""#), "\"\\u001f\\u001f\"");
        assert_eq!(jcs(r#""\uD83D\uDE00""#), "\"\u{1f600}\"");
        assert_eq!(jcs(r#""a\"b\\c""#), r#""a\"b\\c""#);
    }

    #[test]
    fn refuses_what_is_not_i_json() {
        for bad in [
            "",
            " ",
            "{",
            "[1,]",
            "[,1]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "01",
            "1.",
            ".5",
            "+1",
            "1e",
            "1e+",
            "-",
            "tru",
            "nul",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12G4\"",
            "\"\\ud800\"",
            "\"\\ud800x\"",
            "\"\\ud800\\u0041\"",
            "\"\\udc00\"",
            "\"tab\there\"",
            "\"nl\nhere\"",
            "1 2",
            "{} {}",
            "\u{feff}{}",
            "[1]x",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
        assert_eq!(parse(b"\xff"), Err(JcsError::NotUtf8));
        assert_eq!(parse(b"\"\xc3\""), Err(JcsError::NotUtf8));
        assert!(matches!(
            parse(br#"{"a":1,"a":2}"#),
            Err(JcsError::DuplicateName(_))
        ));
        // Duplicates are names after unescaping.
        assert!(matches!(
            parse(br#"{"a":1,"\u0061":2}"#),
            Err(JcsError::DuplicateName(_))
        ));
        assert!(matches!(
            parse(br#"{"x":{"a":1,"b":{},"a":[]}}"#),
            Err(JcsError::DuplicateName(_))
        ));
    }

    #[test]
    fn bounded_in_size_depth_and_count() {
        let deep_ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(deep_ok.as_bytes()).is_ok());
        let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(too_deep.as_bytes()), Err(JcsError::TooDeep));
        let objects = "{\"a\":".repeat(MAX_DEPTH + 1) + "1" + &"}".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(objects.as_bytes()), Err(JcsError::TooDeep));
        // Far deeper than the limit: an error, not a stack overflow.
        let hostile = "[".repeat(500_000);
        assert_eq!(parse(hostile.as_bytes()), Err(JcsError::TooDeep));
        let many = format!("[{}0]", "0,".repeat(MAX_VALUES));
        assert_eq!(parse(many.as_bytes()), Err(JcsError::TooMany));
        let big = vec![b' '; MAX_INPUT_BYTES + 1];
        assert_eq!(parse(&big), Err(JcsError::TooLarge));
    }

    #[test]
    fn canonical_form_is_a_fixed_point() {
        for input in [
            r#"{"b":2,"a":[1.5,"\u00e9",{"d":null,"c":false}]}"#,
            r#"[1e21,1e-7,-0,0.1,"\u0000\u001f\"\\"]"#,
            r#"{"\ud83d\ude00":1,"\ufb33":2,"":3}"#,
        ] {
            let once = canonicalize(input.as_bytes()).unwrap();
            assert_eq!(canonicalize(&once).unwrap(), once, "{input}");
        }
    }

    #[test]
    fn serde_json_values_serialise_the_same() {
        // What `to_vec` writes for a value built in Rust (integers held as
        // u64/i64) agrees with what `parse` reads back.
        let v = serde_json::json!({"rev": 3, "neg": -7, "big": 9007199254740993u64, "s": "é\n"});
        let bytes = to_vec(&v);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "{\"big\":9007199254740992,\"neg\":-7,\"rev\":3,\"s\":\"é\\n\"}"
        );
        assert_eq!(canonicalize(&bytes).unwrap(), bytes);
    }
}
