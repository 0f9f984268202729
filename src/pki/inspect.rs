//! Inspection: what a PEM certificate says (x509-parser), whether a CA
//! signed it and whether a key belongs to it.
//!
//! Pure: no clock, no disk. Errors describe the certificate, never a key.

use super::{CertInfo, Error, Reason, SecretPem};
use crate::topology::KeyAlgorithm;
use rcgen::{KeyPair, PublicKeyData};
use std::net::IpAddr;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// What `Error::Parse` calls a certificate that has no file name.
const UNNAMED: &str = "from PEM";

/// Parses a PEM certificate (the first `CERTIFICATE` block).
pub fn inspect(cert_pem: &str) -> Result<CertInfo, Error> {
    let der = first_cert_der(cert_pem)?;
    let cert = parse_der(&der)?;
    info(&cert, &der)
}

/// Parses a DER certificate (e.g. one a TLS server presented).
pub fn inspect_der(der: &[u8]) -> Result<CertInfo, Error> {
    info(&parse_der(der)?, der)
}

/// Parses every `CERTIFICATE` block of a PEM bundle (e.g. old + new CA).
pub fn inspect_bundle(pem: &str) -> Result<Vec<CertInfo>, Error> {
    let ders = cert_ders(pem)?;
    ders.iter().map(|der| info(&parse_der(der)?, der)).collect()
}

/// Whether `leaf_pem`'s signature verifies with `ca_pem`'s key and its
/// issuer is the CA's subject. `ca_pem` is one CA (its first certificate
/// block is used); unparsable input is not signed.
pub fn signed_by(leaf_pem: &str, ca_pem: &str) -> bool {
    let (Ok(leaf_der), Ok(ca_der)) = (first_cert_der(leaf_pem), first_cert_der(ca_pem)) else {
        return false;
    };
    let (Ok(leaf), Ok(ca)) = (parse_der(&leaf_der), parse_der(&ca_der)) else {
        return false;
    };
    leaf.issuer().as_raw() == ca.subject().as_raw()
        && leaf.verify_signature(Some(ca.public_key())).is_ok()
}

/// Whether the private key belongs to the certificate.
pub fn key_matches(cert_pem: &str, key: &SecretPem) -> bool {
    let Ok(der) = first_cert_der(cert_pem) else {
        return false;
    };
    let Ok(cert) = parse_der(&der) else {
        return false;
    };
    let Ok(pair) = KeyPair::from_pem(&key.0) else {
        return false;
    };
    cert.public_key().subject_public_key.data.as_ref() == pair.der_bytes()
}

/// The key algorithm of a certificate's public key, when it is one pgbr
/// issues (`None` for anything else, e.g. ECDSA P-384 or RSA-4096).
pub fn key_algorithm(cert_pem: &str) -> Result<Option<KeyAlgorithm>, Error> {
    let der = first_cert_der(cert_pem)?;
    let cert = parse_der(&der)?;
    Ok(spki_algorithm(cert.public_key()))
}

/// The key algorithm of a private key, when it is one pgbr issues.
pub fn key_pair_algorithm(key: &SecretPem) -> Option<KeyAlgorithm> {
    let pair = KeyPair::from_pem(&key.0).ok()?;
    let spki_der = pair.subject_public_key_info();
    let (_, spki) = SubjectPublicKeyInfo::from_der(&spki_der).ok()?;
    spki_algorithm(&spki)
}

pub(crate) fn spki_algorithm(spki: &SubjectPublicKeyInfo<'_>) -> Option<KeyAlgorithm> {
    let alg = &spki.algorithm;
    if alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = alg.parameters.as_ref()?.as_oid().ok()?;
        (curve == OID_EC_P256).then_some(KeyAlgorithm::EcdsaP256)
    } else if alg.algorithm == OID_PKCS1_RSAENCRYPTION {
        match spki.parsed().ok()? {
            PublicKey::RSA(rsa) if rsa.key_size() == 2048 => Some(KeyAlgorithm::Rsa2048),
            _ => None,
        }
    } else {
        None
    }
}

fn info(cert: &X509Certificate<'_>, der: &[u8]) -> Result<CertInfo, Error> {
    let subject_cn = cert
        .subject()
        .iter_common_name()
        .next()
        .map(|cn| {
            cn.as_str()
                .map(str::to_owned)
                .map_err(|e| parse_error(format!("subject CN: {e}")))
        })
        .transpose()?
        .unwrap_or_default();
    let mut dns_sans = Vec::new();
    let mut ip_sans = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| parse_error(format!("subjectAltName: {e}")))?;
    for name in san.iter().flat_map(|s| &s.value.general_names) {
        match name {
            GeneralName::DNSName(dns) => dns_sans.push((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => ip_sans.push(ip_text(bytes)?),
            _ => {}
        }
    }
    let validity = cert.validity();
    Ok(CertInfo {
        serial: hex_colons(cert.raw_serial()),
        fingerprint: hex_colons(ring::digest::digest(&ring::digest::SHA256, der).as_ref()),
        subject_cn,
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
        dns_sans,
        ip_sans,
        is_ca: cert.is_ca(),
    })
}

fn ip_text(bytes: &[u8]) -> Result<String, Error> {
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).expect("length checked")),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).expect("length checked")),
        n => return Err(parse_error(format!("an IP SAN has {n} bytes"))),
    };
    Ok(ip.to_string())
}

/// Lowercase hex pairs joined by `:`.
pub fn hex_colons(bytes: &[u8]) -> String {
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    pairs.join(":")
}

pub(crate) fn first_cert_der(pem: &str) -> Result<Vec<u8>, Error> {
    cert_ders(pem)?
        .into_iter()
        .next()
        .ok_or_else(|| parse_error("no `CERTIFICATE` PEM block found".into()))
}

/// The DER of every `CERTIFICATE` block; other blocks (keys) are skipped
/// without being decoded further.
pub(crate) fn cert_ders(pem: &str) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        // The PEM error says where the armour broke, not what it held.
        let block = block.map_err(|e| parse_error(format!("PEM: {e}")))?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err(parse_error("no `CERTIFICATE` PEM block found".into()));
    }
    Ok(out)
}

pub(crate) fn parse_der(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| parse_error(format!("X.509: {e}")))?;
    if !rest.is_empty() {
        return Err(parse_error(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }
    Ok(cert)
}

fn parse_error(reason: String) -> Error {
    Error::Parse {
        what: UNNAMED.into(),
        reason: Reason(reason),
    }
}

/// Splits a PEM bundle into its certificates (each a PEM block).
pub fn ca_bundle(pem: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in pem.lines() {
        if line.starts_with("-----BEGIN ") {
            cur.clear();
        }
        cur.push_str(line);
        cur.push('\n');
        if line.starts_with("-----END ") {
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::{day0, policy, strings};
    use crate::pki::{issue_ca, issue_leaf};

    #[test]
    fn signed_by_tells_the_issuing_ca_from_another() {
        let p = policy();
        let ca = issue_ca(&p, day0()).unwrap();
        let other = issue_ca(&p, day0()).unwrap();
        let leaf = issue_leaf(&ca, &p, &strings(&["localhost"]), day0()).unwrap();
        assert!(signed_by(&leaf.cert_pem, &ca.cert_pem));
        // Same subject DN, other key: the signature decides.
        assert!(!signed_by(&leaf.cert_pem, &other.cert_pem));
        assert!(!signed_by(&leaf.cert_pem, "not pem"));
        assert!(!signed_by("not pem", &ca.cert_pem));
    }

    #[test]
    fn key_matches_only_its_own_certificate() {
        let p = policy();
        let ca = issue_ca(&p, day0()).unwrap();
        let a = issue_leaf(&ca, &p, &strings(&["localhost"]), day0()).unwrap();
        let b = issue_leaf(&ca, &p, &strings(&["localhost"]), day0()).unwrap();
        assert!(key_matches(&a.cert_pem, &a.key_pem));
        assert!(!key_matches(&a.cert_pem, &b.key_pem));
        assert!(!key_matches(&a.cert_pem, &SecretPem("garbage".into())));
        assert_eq!(
            key_pair_algorithm(&a.key_pem),
            Some(KeyAlgorithm::EcdsaP256)
        );
    }

    #[test]
    fn bundles_list_every_certificate_and_skip_keys() {
        let p = policy();
        let old = issue_ca(&p, day0()).unwrap();
        let new = issue_ca(&p, day0()).unwrap();
        let bundle = format!("{}{}{}", old.cert_pem, old.key_pem.0, new.cert_pem);
        let infos = inspect_bundle(&bundle).unwrap();
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[0], inspect(&old.cert_pem).unwrap());
        assert_eq!(infos[1], inspect(&new.cert_pem).unwrap());
    }

    #[test]
    fn parse_errors_name_the_certificate_and_the_reason() {
        let err = inspect("no pem here").unwrap_err();
        assert_eq!(err.to_string(), "parse certificate from PEM");
        let err = err.named("tls/server.crt");
        assert_eq!(err.to_string(), "parse certificate `tls/server.crt`");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(cause, "no `CERTIFICATE` PEM block found");

        let garbled = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let cause = std::error::Error::source(&inspect(garbled).unwrap_err())
            .unwrap()
            .to_string();
        assert!(cause.starts_with("X.509: "), "{cause}");
    }

    #[test]
    fn a_key_alone_is_not_a_certificate_and_is_not_echoed() {
        let ca = issue_ca(&policy(), day0()).unwrap();
        let err = inspect(&ca.key_pem.0).unwrap_err();
        let text = format!("{err} {:?}", std::error::Error::source(&err));
        assert!(!text.contains("PRIVATE"), "an error quoted the key");
        assert!(
            !text.contains(&ca.key_pem.0[28..60]),
            "an error quoted the key"
        );
    }

    #[test]
    fn hex_colons_is_lowercase_pairs() {
        assert_eq!(hex_colons(&[0x0a, 0xff, 0x00]), "0a:ff:00");
        assert_eq!(hex_colons(&[]), "");
    }
}
