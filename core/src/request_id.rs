//! The id of one failed request, shown to the caller (a gRPC or TAXII
//! client, an analyst's console page) and written with every log line
//! about that failure, so an operator can find the detail the caller is
//! not shown. Hub and agent use the same one.

/// 16 lowercase hex digits, random.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    pub fn new() -> RequestId {
        RequestId(format!("{:016x}", uuid::Uuid::new_v4().as_u128() as u64))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_sixteen_hex_digits_and_differ() {
        let a = RequestId::new();
        let b = RequestId::new();
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.as_str().len(), 16);
            assert!(id.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        }
    }
}
