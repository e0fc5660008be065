//! TAXII API credentials: HTTP Basic `USERNAME:PASSWORD`, where the
//! password is 256 random bits shown once and stored only as its SHA-256.
//! A fast hash is enough for a random secret of that size (nothing to
//! guess); the comparison is constant-time.

use base64::Engine;

use crate::store::ApiKeyRow;

/// A freshly made credential: the row to store and the one line to show.
pub struct NewApiKey {
    pub row: ApiKeyRow,
    pub username: String,
    pub password: String,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    openssl::rand::rand_bytes(&mut buf).expect("the OpenSSL random generator works");
    buf
}

pub fn secret_digest(password: &str) -> String {
    isac_core::hex::encode(&openssl::sha::sha256(password.as_bytes()))
}

/// Makes a new credential for `org_id` (optionally bound to one person).
pub fn generate(
    org_id: &str,
    person_id: Option<&str>,
    label: &str,
    can_write: bool,
    now: i64,
) -> NewApiKey {
    let username = format!("taxii-{}", isac_core::hex::encode(&random_bytes::<8>()));
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    NewApiKey {
        row: ApiKeyRow {
            username: username.clone(),
            org_id: org_id.to_owned(),
            person_id: person_id.map(str::to_owned),
            label: label.to_owned(),
            secret_sha256: secret_digest(&password),
            can_write,
            created_at: now,
            revoked_at: None,
            last_used_at: None,
        },
        username,
        password,
    }
}

/// Does `password` match the stored digest? Constant-time.
pub fn password_matches(password: &str, stored_digest: &str) -> bool {
    let given = secret_digest(password);
    given.len() == stored_digest.len()
        && openssl::memcmp::eq(given.as_bytes(), stored_digest.as_bytes())
}

/// Splits an `Authorization: Basic ...` header into user and password.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, b64) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || b64.len() > 1024 {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_verify_and_differ() {
        let a = generate("acme", None, "sentinel", false, 1);
        let b = generate("acme", Some("ann"), "", true, 1);
        assert_ne!(a.username, b.username);
        assert_ne!(a.password, b.password);
        assert!(password_matches(&a.password, &a.row.secret_sha256));
        assert!(!password_matches(&b.password, &a.row.secret_sha256));
        assert!(!password_matches("", &a.row.secret_sha256));
        assert!(!a.row.secret_sha256.contains(&a.password));
        assert_eq!(b.row.person_id.as_deref(), Some("ann"));
    }

    #[test]
    fn basic_header() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("taxii-1:pa:ss")
        );
        assert_eq!(parse_basic(&h), Some(("taxii-1".into(), "pa:ss".into())));
        for bad in ["", "Basic", "Bearer abc", "Basic !!!", "Basic dXNlcg=="] {
            assert_eq!(parse_basic(bad), None, "{bad}");
        }
    }
}
