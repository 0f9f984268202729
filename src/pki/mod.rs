//! PKI: issue the CA and leaf certificates (rcgen), inspect certificates
//! (x509-parser) and decide renewal.
//!
//! Issuance uses randomness (keys, serials) but reads no clock: `now` is
//! always an argument. Nothing here touches the disk or the store.
//! (STUB signatures: the pki helper implements them.)

use crate::topology::Tls;
use std::fmt;
use time::OffsetDateTime;

/// A PEM private key. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretPem(pub String);

impl fmt::Debug for SecretPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretPem(<redacted>)")
    }
}

/// A certificate with its private key, both PEM (key: PKCS#8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertAndKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: SecretPem,
}

/// What pgbr needs to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Serial, lowercase hex pairs joined by `:`.
    pub serial: String,
    /// SHA-256 of the DER, lowercase hex pairs joined by `:`.
    pub fingerprint: String,
    /// Subject CN.
    pub subject_cn: String,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// DNS SANs.
    pub dns_sans: Vec<String>,
    /// IP SANs, as text.
    pub ip_sans: Vec<String>,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
}

/// Why a leaf must be (re-)issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewReason {
    /// There is no leaf yet.
    Missing,
    /// Fewer than the window's days remain.
    Due {
        /// Whole days left until notAfter.
        days_left: i64,
        /// `renew_before_days`.
        window: u32,
    },
    /// notAfter has passed.
    Expired,
    /// notBefore lies in the future.
    NotYetValid,
    /// Not signed by the current CA.
    WrongCa,
    /// SANs that the topology needs and the leaf lacks.
    MissingSans(Vec<String>),
    /// The key algorithm in the topology changed.
    KeyAlgorithm,
    /// `pgbr rotate` asked for it.
    Forced,
}

/// PKI failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rcgen refused to build a certificate.
    #[error("generate {what}")]
    Generate {
        /// What was being generated.
        what: String,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },
    /// A stored or deployed certificate does not parse.
    #[error("parse certificate {what}")]
    Parse {
        /// Which certificate.
        what: String,
        /// What went wrong.
        reason: String,
    },
}

/// Issues a self-signed CA valid from `now` for `policy.ca_validity_days`.
pub fn issue_ca(policy: &Tls, now: OffsetDateTime) -> Result<CertAndKey, Error> {
    let _ = (policy, now);
    todo!("pki helper")
}

/// Issues a leaf signed by `ca` with the given SANs.
pub fn issue_leaf(
    ca: &CertAndKey,
    policy: &Tls,
    sans: &[String],
    now: OffsetDateTime,
) -> Result<CertAndKey, Error> {
    let _ = (ca, policy, sans, now);
    todo!("pki helper")
}

/// Parses a PEM certificate.
pub fn inspect(cert_pem: &str) -> Result<CertInfo, Error> {
    let _ = cert_pem;
    todo!("pki helper")
}

/// Whether `leaf_pem`'s signature verifies with `ca_pem`'s key.
pub fn signed_by(leaf_pem: &str, ca_pem: &str) -> bool {
    let _ = (leaf_pem, ca_pem);
    todo!("pki helper")
}

/// Whether the private key belongs to the certificate.
pub fn key_matches(cert_pem: &str, key: &SecretPem) -> bool {
    let _ = (cert_pem, key);
    todo!("pki helper")
}

/// The SANs a leaf must carry: `hosts`, `localhost`, `127.0.0.1`, `::1`,
/// then `policy.extra_sans`, deduplicated in that order.
pub fn required_sans(hosts: &[&str], policy: &Tls) -> Vec<String> {
    let _ = (hosts, policy);
    todo!("pki helper")
}

/// The renewal decision: `None` when the leaf may stay.
pub fn renewal(
    leaf_pem: &str,
    ca_pem: &str,
    required_sans: &[String],
    policy: &Tls,
    now: OffsetDateTime,
) -> Option<RenewReason> {
    let _ = (leaf_pem, ca_pem, required_sans, policy, now);
    todo!("pki helper")
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

// TEMPORARY until the pki branch lands with the real text.
impl fmt::Display for RenewReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}
