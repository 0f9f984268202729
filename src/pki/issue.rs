//! Issuance: the self-signed CA and the leaves it signs (rcgen).
//!
//! Keys and serials are random; the clock is not read (`now` is an
//! argument). Times are truncated to whole seconds because X.509 stores
//! seconds, so what is issued compares equal to what is read back.

use super::{CertAndKey, Error, SecretPem};
use crate::topology::{KeyAlgorithm, Tls};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use std::net::IpAddr;
use time::{Duration, OffsetDateTime, UtcOffset};

/// Subject CN prefix of the CA; a random suffix follows, so that the two
/// CAs of a rotation bundle have distinct names and OpenSSL's chain
/// building never has to guess between them.
pub const CA_COMMON_NAME: &str = "pgbr CA";

/// How far notBefore is back-dated, for clock skew between cells.
pub const BACKDATE: Duration = Duration::hours(1);

/// Issues a self-signed CA valid from `now` for `policy.ca_validity_days`.
pub fn issue_ca(policy: &Tls, now: OffsetDateTime) -> Result<CertAndKey, Error> {
    let key = generate_key(policy.key_algorithm, "the CA")?;
    sign_ca(policy, now, key)
}

/// Issues a CA like [`issue_ca`] around an existing PKCS#8 key, e.g. an
/// RSA key generated outside pgbr.
pub fn issue_ca_with_key(
    policy: &Tls,
    now: OffsetDateTime,
    key: &SecretPem,
) -> Result<CertAndKey, Error> {
    let key = load_key(key, "the CA", Some(policy.key_algorithm))?;
    sign_ca(policy, now, key)
}

/// Issues a leaf signed by `ca` with the given SANs.
///
/// Every SAN that parses as an IP address is written as an IP SAN and, when
/// `policy.ip_sans_as_dns` (pgBackRest before 2.53, which ignores IP SANs
/// and matches the `pgN-host` string against the DNS SANs only), as a DNS
/// SAN too.
pub fn issue_leaf(
    ca: &CertAndKey,
    policy: &Tls,
    sans: &[String],
    now: OffsetDateTime,
) -> Result<CertAndKey, Error> {
    let key = generate_key(policy.key_algorithm, "a leaf")?;
    sign_leaf(ca, policy, sans, now, key)
}

/// Issues a leaf like [`issue_leaf`] around an existing PKCS#8 key.
pub fn issue_leaf_with_key(
    ca: &CertAndKey,
    policy: &Tls,
    sans: &[String],
    now: OffsetDateTime,
    key: &SecretPem,
) -> Result<CertAndKey, Error> {
    let key = load_key(key, "the leaf", Some(policy.key_algorithm))?;
    sign_leaf(ca, policy, sans, now, key)
}

fn sign_ca(policy: &Tls, now: OffsetDateTime, key: KeyPair) -> Result<CertAndKey, Error> {
    let suffix: [u8; 4] = rand::random();
    let cn = format!(
        "{CA_COMMON_NAME} {}",
        super::hex_colons(&suffix).replace(':', "")
    );
    let mut params = base_params(&cn, now, policy.ca_validity_days, "the CA")?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).map_err(|source| Error::Generate {
        what: "the CA certificate".into(),
        source,
    })?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: SecretPem(key.serialize_pem()),
    })
}

fn sign_leaf(
    ca: &CertAndKey,
    policy: &Tls,
    sans: &[String],
    now: OffsetDateTime,
    key: KeyPair,
) -> Result<CertAndKey, Error> {
    let ca_key = load_key(&ca.key_pem, "the CA", None)?;
    let issuer =
        Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(|source| Error::Generate {
            what: "a leaf from the CA certificate".into(),
            source,
        })?;
    let mut params = base_params(&policy.client_cn, now, policy.cert_validity_days, "a leaf")?;
    // Never outlive the CA: a chain is only as valid as its CA.
    let ca_info = super::inspect(&ca.cert_pem)?;
    if whole_seconds(now) >= ca_info.not_after {
        return Err(Error::CaExpired {
            serial: ca_info.serial,
            not_after: crate::clock::rfc3339(ca_info.not_after),
        });
    }
    params.not_after = params.not_after.min(ca_info.not_after);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = match policy.key_algorithm {
        KeyAlgorithm::EcdsaP256 => vec![KeyUsagePurpose::DigitalSignature],
        KeyAlgorithm::Rsa2048 => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ],
    };
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = san_list(sans, policy.ip_sans_as_dns)?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|source| Error::Generate {
            what: format!("the leaf for `{}`", policy.client_cn),
            source,
        })?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: SecretPem(key.serialize_pem()),
    })
}

/// Params shared by the CA and leaves: explicit DN, random serial, validity
/// from `now - BACKDATE` to `now + days`.
fn base_params(
    cn: &str,
    now: OffsetDateTime,
    days: u32,
    what: &str,
) -> Result<CertificateParams, Error> {
    let now = whole_seconds(now);
    let not_after = now
        .checked_add(Duration::days(i64::from(days)))
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| Error::OutOfRange {
            what: what.into(),
            days,
        })?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.serial_number = Some(random_serial());
    params.not_before = now - BACKDATE;
    params.not_after = not_after;
    Ok(params)
}

/// `now` in UTC without sub-seconds.
pub(crate) fn whole_seconds(now: OffsetDateTime) -> OffsetDateTime {
    now.to_offset(UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
}

/// 16 random bytes, positive, and with a non-zero first byte so that the
/// DER encoding keeps all 16 bytes (reads back as the same hex string).
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    if bytes[0] == 0 {
        bytes[0] = 1;
    }
    SerialNumber::from_slice(&bytes)
}

fn san_list(sans: &[String], ip_sans_as_dns: bool) -> Result<Vec<SanType>, Error> {
    let mut out = Vec::new();
    for san in sans {
        let ip = san.parse::<IpAddr>().ok();
        if let Some(ip) = ip {
            out.push(SanType::IpAddress(ip));
        }
        if ip.is_none() || ip_sans_as_dns {
            let dns = san.clone().try_into().map_err(|source| Error::Generate {
                what: format!("the SAN `{san}`"),
                source,
            })?;
            out.push(SanType::DnsName(dns));
        }
    }
    Ok(out)
}

fn generate_key(alg: KeyAlgorithm, what: &str) -> Result<KeyPair, Error> {
    match alg {
        KeyAlgorithm::EcdsaP256 => {
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
                Error::Generate {
                    what: format!("a `{}` key for {what}", alg.as_str()),
                    source,
                }
            })
        }
        // ring (rcgen's backend) signs with RSA keys but cannot generate
        // them: the RustCrypto `rsa` crate does, from the system RNG.
        KeyAlgorithm::Rsa2048 => {
            use rsa::pkcs8::{EncodePrivateKey, LineEnding};
            let failed = || Error::Generate {
                what: format!("a `{}` key for {what}", alg.as_str()),
                source: rcgen::Error::KeyGenerationUnavailable,
            };
            let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).map_err(|_| failed())?;
            let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|_| failed())?;
            load_key(&SecretPem(pem.to_string()), what, Some(alg))
        }
    }
}

/// Loads a PKCS#8 PEM key; with `expect`, refuses a key of another algorithm.
pub(crate) fn load_key(
    key: &SecretPem,
    what: &str,
    expect: Option<KeyAlgorithm>,
) -> Result<KeyPair, Error> {
    let pair = KeyPair::from_pem(&key.0).map_err(|source| Error::LoadKey {
        what: what.into(),
        source,
    })?;
    if let Some(expected) = expect {
        let found = super::inspect::key_pair_algorithm(key);
        if found != Some(expected) {
            return Err(Error::KeyAlgorithm {
                what: what.into(),
                expected,
                found: found.map_or("another algorithm", |a| a.as_str()).into(),
            });
        }
    }
    Ok(pair)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::{day0, policy, rsa_key, strings};
    use crate::pki::{inspect, key_algorithm, key_matches, signed_by};
    use x509_parser::prelude::{FromDer, X509Certificate};

    /// Runs `check` on the parsed first certificate of `pem`.
    fn with_x509(pem: &str, check: impl FnOnce(&X509Certificate<'_>)) {
        let der = crate::pki::inspect::first_cert_der(pem).expect("pem");
        let (_, cert) = X509Certificate::from_der(&der).expect("der");
        check(&cert);
    }

    fn leaf_sans() -> Vec<String> {
        strings(&["db1.example", "10.0.0.5", "localhost", "127.0.0.1", "::1"])
    }

    #[test]
    fn ca_is_a_self_signed_ca_with_explicit_dn_and_validity() {
        let ca = issue_ca(&policy(), day0()).unwrap();
        let info = inspect(&ca.cert_pem).unwrap();
        let now = whole_seconds(day0());
        assert!(
            info.subject_cn.starts_with("pgbr CA "),
            "{}",
            info.subject_cn
        );
        assert_eq!(info.subject_cn.len(), "pgbr CA ".len() + 8);
        assert!(info.is_ca);
        assert_eq!(info.not_before, now - Duration::hours(1));
        assert_eq!(info.not_after, now + Duration::days(3650));
        assert!(ca.key_pem.0.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(signed_by(&ca.cert_pem, &ca.cert_pem));
        assert!(key_matches(&ca.cert_pem, &ca.key_pem));
        assert_eq!(
            key_algorithm(&ca.cert_pem).unwrap(),
            Some(KeyAlgorithm::EcdsaP256)
        );
        with_x509(&ca.cert_pem, |c| {
            assert_eq!(c.subject().to_string(), format!("CN={}", info.subject_cn));
            let bc = c.basic_constraints().unwrap().unwrap();
            assert!(bc.critical && bc.value.ca);
            let ku = c.key_usage().unwrap().unwrap().value;
            assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
        });
    }

    #[test]
    fn leaf_round_trips_through_inspect() {
        let p = policy();
        let ca = issue_ca(&p, day0()).unwrap();
        let leaf = issue_leaf(&ca, &p, &leaf_sans(), day0()).unwrap();
        let info = inspect(&leaf.cert_pem).unwrap();
        let now = whole_seconds(day0());
        assert_eq!(info.subject_cn, "pgbackrest");
        assert!(!info.is_ca);
        assert_eq!(info.not_before, now - Duration::hours(1));
        assert_eq!(info.not_after, now + Duration::days(365));
        // IP entries are DNS SANs too (pgBackRest < 2.53 reads only those).
        assert_eq!(info.dns_sans, leaf_sans());
        assert_eq!(info.ip_sans, strings(&["10.0.0.5", "127.0.0.1", "::1"]));
        // From pgBackRest 2.53 (which checks IP SANs) IPs are IP SANs only.
        let p53 = Tls {
            ip_sans_as_dns: false,
            ..policy()
        };
        let only_ip = inspect(
            &issue_leaf(&ca, &p53, &leaf_sans(), day0())
                .unwrap()
                .cert_pem,
        )
        .unwrap();
        assert_eq!(only_ip.ip_sans, info.ip_sans);
        assert!(only_ip
            .dns_sans
            .iter()
            .all(|s| s.parse::<std::net::IpAddr>().is_err()));
        assert!(!only_ip.dns_sans.is_empty());
        assert!(leaf.key_pem.0.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(signed_by(&leaf.cert_pem, &ca.cert_pem));
        assert!(key_matches(&leaf.cert_pem, &leaf.key_pem));
        assert!(!key_matches(&leaf.cert_pem, &ca.key_pem));
        with_x509(&leaf.cert_pem, |c| {
            assert_eq!(
                c.issuer().to_string(),
                format!("CN={}", inspect(&ca.cert_pem).unwrap().subject_cn)
            );
            let eku = c.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.server_auth && eku.client_auth && !eku.any);
            let bc = c.basic_constraints().unwrap().unwrap().value;
            assert!(!bc.ca);
            let ku = c.key_usage().unwrap().unwrap().value;
            assert!(ku.digital_signature() && !ku.key_encipherment() && !ku.key_cert_sign());
            let aki = x509_parser::oid_registry::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER;
            assert!(c.get_extension_unique(&aki).unwrap().is_some());
        });
    }

    #[test]
    fn serials_are_random_positive_and_sixteen_bytes() {
        let p = policy();
        let ca = issue_ca(&p, day0()).unwrap();
        let a = inspect(&issue_leaf(&ca, &p, &leaf_sans(), day0()).unwrap().cert_pem).unwrap();
        let b = inspect(&issue_leaf(&ca, &p, &leaf_sans(), day0()).unwrap().cert_pem).unwrap();
        assert_ne!(a.serial, b.serial);
        for s in [&a.serial, &b.serial] {
            assert_eq!(s.split(':').count(), 16, "{s}");
            assert!(u8::from_str_radix(&s[..2], 16).unwrap() < 0x80, "{s}");
        }
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint.split(':').count(), 32);
    }

    #[test]
    fn rsa_2048_ca_and_leaf_are_generated() {
        let mut p = policy();
        p.key_algorithm = KeyAlgorithm::Rsa2048;
        let ca = issue_ca(&p, day0()).unwrap();
        let leaf = issue_leaf(&ca, &p, &leaf_sans(), day0()).unwrap();
        assert!(ca.key_pem.0.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(
            key_algorithm(&ca.cert_pem).unwrap(),
            Some(KeyAlgorithm::Rsa2048)
        );
        assert_eq!(
            key_algorithm(&leaf.cert_pem).unwrap(),
            Some(KeyAlgorithm::Rsa2048)
        );
        assert!(signed_by(&leaf.cert_pem, &ca.cert_pem));
        assert!(key_matches(&leaf.cert_pem, &leaf.key_pem));
    }

    #[test]
    fn rsa_issues_around_given_keys() {
        let mut p = policy();
        p.key_algorithm = KeyAlgorithm::Rsa2048;
        let ca = issue_ca_with_key(&p, day0(), &rsa_key("ca")).unwrap();
        let leaf = issue_leaf_with_key(&ca, &p, &leaf_sans(), day0(), &rsa_key("leaf")).unwrap();
        assert!(signed_by(&leaf.cert_pem, &ca.cert_pem));
        assert!(key_matches(&leaf.cert_pem, &rsa_key("leaf")));
        assert_eq!(
            key_algorithm(&leaf.cert_pem).unwrap(),
            Some(KeyAlgorithm::Rsa2048)
        );
        with_x509(&leaf.cert_pem, |c| {
            let ku = c.key_usage().unwrap().unwrap().value;
            assert!(ku.digital_signature() && ku.key_encipherment());
        });
    }

    #[test]
    fn a_given_key_must_match_the_policy() {
        let p = policy();
        let err = issue_ca_with_key(&p, day0(), &rsa_key("ca")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "use the key of the CA: expected `ecdsa-p256`, found rsa-2048"
        );
        let err = issue_ca_with_key(&p, day0(), &SecretPem("garbage".into())).unwrap_err();
        assert_eq!(err.to_string(), "load the private key of the CA");
    }

    #[test]
    fn validity_past_year_9999_is_refused() {
        let mut p = policy();
        p.ca_validity_days = u32::MAX;
        let err = issue_ca(&p, day0()).unwrap_err();
        assert!(matches!(err, Error::OutOfRange { .. }), "{err}");
    }
}
