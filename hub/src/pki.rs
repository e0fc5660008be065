//! The hub's development PKI: a CA, the hub's server certificate, and client
//! certificates issued from agents' CSRs. TLS keys are ECDSA P-256; statement
//! signing keys are Ed25519 and live in `isac-core`.

use std::net::IpAddr;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private, Public};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Name, X509NameBuilder, X509Req, X509};

pub type PkiResult<T> = Result<T, openssl::error::ErrorStack>;

pub fn generate_tls_key() -> PkiResult<PKey<Private>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

/// Lowercase hex SHA-256 of a certificate's DER: how we name certificates.
pub fn cert_fingerprint(cert: &X509) -> String {
    match cert.digest(MessageDigest::sha256()) {
        Ok(d) => isac_core::hex::encode(&d),
        Err(_) => String::new(),
    }
}

fn name(cn: &str, org: &str, ou: Option<&str>) -> PkiResult<X509Name> {
    let mut b = X509NameBuilder::new()?;
    b.append_entry_by_nid(Nid::ORGANIZATIONNAME, org)?;
    if let Some(ou) = ou {
        b.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, ou)?;
    }
    b.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    Ok(b.build())
}

fn serial() -> PkiResult<openssl::asn1::Asn1Integer> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    bn.to_asn1_integer()
}

pub fn create_ca(common_name: &str) -> PkiResult<(X509, PKey<Private>)> {
    let key = generate_tls_key()?;
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let serial = serial()?;
    b.set_serial_number(&serial)?;
    let subject = name(common_name, "ISAC hub", None)?;
    b.set_subject_name(&subject)?;
    b.set_issuer_name(&subject)?;
    b.set_pubkey(&key)?;
    b.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    b.set_not_after(&*Asn1Time::days_from_now(3650)?)?;
    b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((b.build(), key))
}

/// Why `name` may not be a name of the hub's server certificate, if it may
/// not. A wildcard is only a whole leftmost label `*` followed by at least
/// two labels (`*.isac.example`): `*`, `*.`, `*.com`, `foo*.example` and
/// `a.*.example` are refused, so no entry can match every name, or every
/// name under a top-level domain. Nor every name under a public suffix
/// such as `*.co.uk` (`isac_core::names::looks_like_public_suffix`).
pub fn server_name_problem(name: &str) -> Option<String> {
    if name.parse::<IpAddr>().is_ok() || !name.contains('*') {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let shape_ok = labels[0] == "*"
        && labels.len() >= 3
        && labels[1..]
            .iter()
            .all(|l| !l.is_empty() && !l.contains('*'));
    if !shape_ok {
        return Some(
            "a wildcard is only `*` as the whole leftmost label followed by at least two labels \
             (e.g. `*.isac.example`); it may not match every name or a whole top-level domain"
                .to_owned(),
        );
    }
    let base = labels[1..].join(".");
    isac_core::names::looks_like_public_suffix(&base).then(|| {
        format!(
            "`{base}` is a public suffix: a wildcard under it would match names anyone can \
             register; put the hub's own domain under it (e.g. `*.isac.{base}`)"
        )
    })
}

/// The hub's TLS server certificate, valid for `hosts` (DNS names or IPs).
pub fn issue_server_cert(
    ca: &X509,
    ca_key: &PKeyRef<Private>,
    hosts: &[String],
) -> PkiResult<(X509, PKey<Private>)> {
    let key = generate_tls_key()?;
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let serial = serial()?;
    b.set_serial_number(&serial)?;
    let subject = name("isac-hub", "ISAC hub", None)?;
    b.set_subject_name(&subject)?;
    b.set_issuer_name(ca.subject_name())?;
    b.set_pubkey(&key)?;
    b.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    b.set_not_after(&*Asn1Time::days_from_now(825)?)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let mut san = SubjectAlternativeName::new();
    for h in hosts {
        if h.parse::<IpAddr>().is_ok() {
            san.ip(h);
        } else {
            san.dns(h);
        }
    }
    let san = san.build(&b.x509v3_context(Some(ca), None))?;
    b.append_extension(san)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(ca), None))?;
    b.append_extension(aki)?;
    b.sign(ca_key, MessageDigest::sha256())?;
    Ok((b.build(), key))
}

#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    #[error("the CSR is not valid DER PKCS#10")]
    Malformed,
    #[error("the CSR's self-signature does not verify")]
    BadSignature,
    #[error("the CSR's key must be ECDSA P-256/P-384, Ed25519 or RSA of at least 2048 bits")]
    WeakKey,
}

/// Checks a CSR and returns the public key it certifies. The requested
/// subject is ignored: the hub names the certificate itself.
pub fn check_csr(der: &[u8]) -> Result<PKey<Public>, CsrError> {
    let req = X509Req::from_der(der).map_err(|_| CsrError::Malformed)?;
    let key = req.public_key().map_err(|_| CsrError::Malformed)?;
    if !req.verify(&key).unwrap_or(false) {
        return Err(CsrError::BadSignature);
    }
    let acceptable = match key.id() {
        openssl::pkey::Id::EC => key.bits() >= 256,
        openssl::pkey::Id::ED25519 => true,
        openssl::pkey::Id::RSA => key.bits() >= 2048,
        _ => false,
    };
    if !acceptable {
        return Err(CsrError::WeakKey);
    }
    Ok(key)
}

/// A client certificate for one agent of one organisation.
pub fn issue_client_cert(
    ca: &X509,
    ca_key: &PKeyRef<Private>,
    subject_key: &PKeyRef<Public>,
    org_id: &str,
    agent_name: &str,
    days: u32,
) -> PkiResult<X509> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let serial = serial()?;
    b.set_serial_number(&serial)?;
    let subject = name(org_id, "ISAC member", Some(agent_name))?;
    b.set_subject_name(&subject)?;
    b.set_issuer_name(ca.subject_name())?;
    b.set_pubkey(subject_key)?;
    b.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    b.set_not_after(&*Asn1Time::days_from_now(days)?)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(ca), None))?;
    b.append_extension(aki)?;
    b.sign(ca_key, MessageDigest::sha256())?;
    Ok(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::X509ReqBuilder;

    fn csr(key: &PKey<Private>) -> Vec<u8> {
        let mut b = X509ReqBuilder::new().unwrap();
        b.set_pubkey(key).unwrap();
        b.sign(key, MessageDigest::sha256()).unwrap();
        b.build().to_der().unwrap()
    }

    #[test]
    fn issues_a_verifiable_client_chain() {
        let (ca, ca_key) = create_ca("test CA").unwrap();
        let agent_key = generate_tls_key().unwrap();
        let pubkey = check_csr(&csr(&agent_key)).unwrap();
        let cert = issue_client_cert(&ca, &ca_key, &pubkey, "acme-bank", "soc-1", 30).unwrap();
        assert!(cert.verify(&ca.public_key().unwrap()).unwrap());
        assert_eq!(cert_fingerprint(&cert).len(), 64);
        let cn = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .unwrap();
        assert_eq!(cn.data().to_string().unwrap(), "acme-bank");
    }

    #[test]
    fn refuses_bad_csrs() {
        assert!(matches!(check_csr(b"nope"), Err(CsrError::Malformed)));
        let key = generate_tls_key().unwrap();
        let mut der = csr(&key);
        let n = der.len();
        der[n - 5] ^= 0xff; // inside the signature
        assert!(check_csr(&der).is_err());
    }

    #[test]
    fn wildcards_match_one_label_under_at_least_two() {
        for ok in [
            "*.isac.example",
            "*.hub.isac.example",
            "*.isac.co.uk",
            "hub.isac.example",
            "localhost",
            "10.0.0.1",
            "::1",
        ] {
            assert_eq!(server_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "*",
            "*.",
            "*.com",
            "*.com.",
            "*..example",
            "**.isac.example",
            "foo*.isac.example",
            "a.*.isac.example",
            "*.*.example",
            ".*.example",
            "*.co.uk",
            "*.com.au",
            "*.CO.UK",
        ] {
            assert!(server_name_problem(bad).is_some(), "{bad}");
        }
    }
}
