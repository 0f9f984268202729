//! Opening one connection to the state database: TCP keepalives and a TCP
//! user timeout (so a half-open peer is noticed within a minute), and TLS
//! through rustls for `sslmode=require` (encrypted, any certificate, as
//! libpq) and `verify-full` (the chain must reach `sslrootcert`, or the
//! system roots without one, and the certificate must name the host:
//! rustls checks both with the roots we give it).

use super::pg_url::{PgUrl, SslMode};
use crate::store::Error;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;

/// How long an unanswered connection may stay open: keepalives start after
/// this much idle time and the kernel gives up on unacknowledged data
/// after the same.
const DEAD_PEER: Duration = Duration::from_secs(30);

/// Connects to the database `url` names.
pub(super) fn connect(url: &PgUrl) -> Result<postgres::Client, Error> {
    let mut config = postgres::Config::new();
    config
        .user(&url.user)
        .host(&url.host)
        .port(url.port)
        .dbname(&url.dbname)
        .application_name(&url.application_name)
        .connect_timeout(url.connect_timeout)
        .keepalives(true)
        .keepalives_idle(DEAD_PEER)
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .tcp_user_timeout(DEAD_PEER);
    if let Some(password) = &url.password {
        config.password(password);
    }
    let connect_err = |source: postgres::Error| Error::Connect {
        store: url.redacted().to_owned(),
        source: Box::new(source),
    };
    match url.sslmode {
        SslMode::Disable => {
            config.ssl_mode(postgres::config::SslMode::Disable);
            config.connect(postgres::NoTls).map_err(connect_err)
        }
        SslMode::Prefer | SslMode::Require | SslMode::VerifyFull => {
            config.ssl_mode(match url.sslmode {
                SslMode::Prefer => postgres::config::SslMode::Prefer,
                _ => postgres::config::SslMode::Require,
            });
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(url)?);
            config.connect(tls).map_err(connect_err)
        }
    }
}

fn tls_config(url: &PgUrl) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_err = |what: String, source: Box<dyn std::error::Error + Send + Sync>| Error::DbTls {
        store: url.redacted().to_owned(),
        what,
        source,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("set up TLS".into(), Box::new(e)))?;
    let config = match url.sslmode {
        SslMode::VerifyFull => {
            let mut roots = RootCertStore::empty();
            match &url.sslrootcert {
                Some(path) => {
                    let what = format!("read sslrootcert `{}`", path.display());
                    let certs = CertificateDer::pem_file_iter(path)
                        .map_err(|e| tls_err(what.clone(), Box::new(e)))?;
                    for cert in certs {
                        let cert = cert.map_err(|e| tls_err(what.clone(), Box::new(e)))?;
                        roots
                            .add(cert)
                            .map_err(|e| tls_err(what.clone(), Box::new(e)))?;
                    }
                    if roots.is_empty() {
                        return Err(tls_err(what, "it holds no certificate".into()));
                    }
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(found.certs);
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        SslMode::Prefer | SslMode::Require | SslMode::Disable => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// `sslmode=require`: the connection is encrypted, the certificate is not
/// checked (handshake signatures still are), as libpq does.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
