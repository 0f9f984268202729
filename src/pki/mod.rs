//! PKI: issue the CA and leaf certificates (rcgen), inspect certificates
//! (x509-parser) and decide renewal.
//!
//! Issuance uses randomness (keys, serials) but reads no clock: `now` is
//! always an argument. Nothing here touches the disk or the store.
//! `issue` builds certificates, `inspect` reads them, `policy` decides
//! renewal; this file holds the shared types.

mod inspect;
mod issue;
mod policy;
mod rotation;

pub use inspect::{
    ca_bundle, hex_colons, inspect, inspect_bundle, inspect_der, key_algorithm, key_matches,
    key_pair_algorithm, signed_by,
};
pub use issue::{
    issue_ca, issue_ca_with_key, issue_leaf, issue_leaf_with_key, BACKDATE, CA_COMMON_NAME,
};
pub use policy::{ca_renewal, days_left, missing_sans, renewal, required_sans, LOCAL_SANS};
pub use rotation::{next_ca_step, CaRotationState};

use crate::topology::KeyAlgorithm;
use std::fmt;
use time::OffsetDateTime;

/// A PEM private key. Its `Debug` never shows the key; its memory is
/// wiped when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretPem(pub String);

impl Drop for SecretPem {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

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
    Expired {
        /// Whole days since notAfter (0 on the day it expired).
        days_ago: i64,
    },
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
    /// The deployed certificate does not parse (the reason says why).
    Invalid(String),
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
        /// Which certificate (`from PEM` until [`Error::named`] names it).
        what: String,
        /// What went wrong.
        #[source]
        reason: Reason,
    },
    /// A private key does not load (the cause never quotes the key).
    #[error("load the private key of {what}")]
    LoadKey {
        /// Whose key.
        what: String,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },
    /// A given key is not of the policy's algorithm.
    #[error("use the key of {what}: expected `{}`, found {found}", expected.as_str())]
    KeyAlgorithm {
        /// Whose key.
        what: String,
        /// The policy's algorithm.
        expected: KeyAlgorithm,
        /// What the key is.
        found: String,
    },
    /// The previous CA-rotation step is not live on every cell.
    #[error("start CA rotation step {step}: step {} is not live on {}", step - 1, behind.join(", "))]
    CaStepNotLive {
        /// The step asked for.
        step: u8,
        /// Cells whose plan is not empty.
        behind: Vec<String>,
    },
    /// Step 3 of a CA rotation while cells deploy leaves of the old CA.
    #[error("drop the old CA: {} still deploy a leaf from it", cells.join(", "))]
    OldCaLeaves {
        /// The cells.
        cells: Vec<String>,
    },
    /// The CA a leaf would be signed by has expired.
    #[error("issue a leaf from the CA `{serial}`: the CA expired at {not_after}")]
    CaExpired {
        /// The CA's serial.
        serial: String,
        /// Its notAfter, RFC 3339.
        not_after: String,
    },
    /// The validity period does not fit an X.509 date.
    #[error("compute the validity of {what}: `{days}` days from now is past the year 9999")]
    OutOfRange {
        /// Which certificate.
        what: String,
        /// The configured validity.
        days: u32,
    },
}

/// Why a certificate does not parse (a cause line; never key material).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Reason(pub String);

impl Error {
    /// Names the certificate of a [`Error::Parse`] (e.g. its file), so the
    /// message reads ``parse certificate `tls/server.crt` ``.
    pub fn named(self, name: &str) -> Error {
        match self {
            Error::Parse { reason, .. } => Error::Parse {
                what: format!("`{name}`"),
                reason,
            },
            other => other,
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Shared fixtures for the PKI and health-probe tests.

    use super::SecretPem;
    use crate::topology::Tls;
    use time::macros::datetime;
    use time::OffsetDateTime;

    /// The policy of the spec's example topology.
    pub fn policy() -> Tls {
        crate::topology::example::tls()
    }

    /// Day 0 of the tests, with sub-seconds that issuance must drop.
    pub fn day0() -> OffsetDateTime {
        datetime!(2025-03-01 12:00:00.250 UTC)
    }

    /// Test-only RSA-2048 keys, fixed so that tests stay fast.
    pub fn rsa_key(which: &str) -> SecretPem {
        SecretPem(match which {
            "ca" => include_str!("testdata/rsa2048-ca.key").into(),
            _ => include_str!("testdata/rsa2048-leaf.key").into(),
        })
    }

    pub fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }
}
