//! The built-in health check: a TLS handshake with the cell's server.
//! (STUB: the pki helper implements it.)

use crate::pki::{CertAndKey, CertInfo};
use std::time::Duration;

/// What the server presented.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// The server's end-entity certificate.
    pub presented: CertInfo,
}

/// A failed probe.
#[derive(Debug, thiserror::Error)]
#[error("probe `{addr}`")]
pub struct ProbeError {
    /// Where.
    pub addr: String,
}

/// Handshakes with `addr` (STUB).
pub fn probe_tls(
    addr: &str,
    server_name: &str,
    ca_pem: &str,
    client: &CertAndKey,
    timeout: Duration,
) -> Result<ProbeReport, ProbeError> {
    let _ = (server_name, ca_pem, client, timeout);
    Err(ProbeError { addr: addr.into() })
}
