//! The built-in health check: a TLS handshake with a cell's pgBackRest TLS
//! server, made with the cell's client certificate and trusting only the
//! deployed CA bundle, reporting the certificate the server presents.
//!
//! This is IO (one TCP connection, every wait bounded by the timeout); it
//! does not speak pgBackRest's protocol beyond reading the greeting line
//! the server sends right after the handshake.

use crate::pki::{self, CertAndKey, CertInfo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest greeting line kept (pgBackRest's is about 60 bytes).
const GREETING_MAX: usize = 512;

/// What a successful probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The address probed (`host:port`).
    pub addr: String,
    /// The server's end-entity certificate.
    pub presented: CertInfo,
    /// The negotiated protocol, e.g. `TLSv1_3`.
    pub protocol: String,
    /// The negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The first line the server sent after the handshake, if any within
    /// the timeout (pgBackRest: `{"name":"pgBackRest","service":"remote",…}`).
    pub greeting: Option<String>,
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The address does not resolve.
    #[error("resolve `{addr}`")]
    Resolve {
        /// `host:port`.
        addr: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// No TCP connection (refused, unreachable, timed out).
    #[error("connect to `{addr}`")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The CA bundle or the client certificate/key does not load.
    #[error("load {what} for the TLS probe")]
    Material {
        /// Which input.
        what: &'static str,
        /// The cause (never key bytes).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server name is neither a DNS name nor an IP address.
    #[error("use `{name}` as a TLS server name")]
    ServerName {
        /// The name given.
        name: String,
        /// The cause.
        #[source]
        source: rustls::pki_types::InvalidDnsNameError,
    },
    /// The TLS handshake failed (a certificate was refused by either side,
    /// no common protocol, …).
    #[error("complete the TLS handshake with `{addr}`")]
    Handshake {
        /// `host:port`.
        addr: String,
        /// The cause.
        #[source]
        source: rustls::Error,
    },
    /// The connection broke or timed out during the handshake.
    #[error("complete the TLS handshake with `{addr}`")]
    HandshakeIo {
        /// `host:port`.
        addr: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The server did not finish the handshake before the probe's deadline
    /// (silent, or trickling bytes).
    #[error("complete the TLS handshake with `{addr}`: no TLS handshake within {within} s")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The probe's timeout in seconds (`15`, `0.5`).
        within: String,
    },
    /// The server refused the client certificate after the handshake (TLS
    /// 1.3 servers check it after the client has finished).
    #[error("authenticate to `{addr}` with the client certificate")]
    Rejected {
        /// `host:port`.
        addr: String,
        /// The alert or error received.
        #[source]
        source: rustls::Error,
    },
    /// The server sent no certificate.
    #[error("get a certificate from `{addr}`: the server presented none")]
    NoCertificate {
        /// `host:port`.
        addr: String,
    },
    /// The presented certificate does not parse.
    #[error("read the certificate presented by `{addr}`")]
    Presented {
        /// `host:port`.
        addr: String,
        /// The cause.
        #[source]
        source: pki::Error,
    },
    /// The server presents another certificate than the deployed leaf.
    #[error(
        "find the deployed leaf on `{addr}`: it presents serial `{found}`, expected `{expected}`"
    )]
    Unexpected {
        /// `host:port`.
        addr: String,
        /// The deployed leaf's serial.
        expected: String,
        /// The presented serial.
        found: String,
    },
}

/// Connects to `addr` (`host:port`), completes a TLS handshake as
/// `server_name` trusting only the certificates in `ca_pem` (one CA or a
/// bundle, as during CA rotation) and authenticating with `client`, then
/// reads the server's greeting line if it sends one within the timeout.
///
/// `timeout` is one deadline for the whole probe: connect, handshake and
/// greeting together (a server trickling a byte at a time cannot hold it).
pub fn probe_tls(
    addr: &str,
    server_name: &str,
    ca_pem: &str,
    client: &CertAndKey,
    timeout: Duration,
) -> Result<ProbeReport, ProbeError> {
    let config = client_config(ca_pem, client)?;
    let name =
        ServerName::try_from(server_name.to_owned()).map_err(|source| ProbeError::ServerName {
            name: server_name.to_owned(),
            source,
        })?;
    let deadline = Instant::now() + timeout;
    let mut sock = connect(addr, timeout)?;
    let mut sock = Deadlined {
        sock: &mut sock,
        deadline,
    };
    let mut conn = ClientConnection::new(config, name).map_err(|source| ProbeError::Handshake {
        addr: addr.to_owned(),
        source,
    })?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| {
            if Instant::now() >= deadline || is_timeout(&e) {
                ProbeError::Timeout {
                    addr: addr.to_owned(),
                    within: seconds(timeout),
                }
            } else {
                handshake_error(addr, e)
            }
        })?;
    }
    let presented = presented(addr, &conn)?;
    let greeting = read_greeting(addr, &mut conn, &mut sock)?;
    let protocol = conn
        .protocol_version()
        .map(|v| v.as_str().map_or_else(|| format!("{v:?}"), str::to_owned))
        .unwrap_or_default();
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| {
            let s = s.suite();
            s.as_str().map_or_else(|| format!("{s:?}"), str::to_owned)
        })
        .unwrap_or_default();
    conn.send_close_notify();
    // Best effort: the server may already have closed.
    let _ = conn.write_tls(&mut sock);
    Ok(ProbeReport {
        addr: addr.to_owned(),
        presented,
        protocol,
        cipher,
        greeting,
    })
}

/// A socket whose every read and write waits at most until one deadline.
struct Deadlined<'a> {
    sock: &'a mut TcpStream,
    deadline: Instant,
}

impl Deadlined<'_> {
    /// The time left, or a `TimedOut` error once the deadline has passed.
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "probe deadline passed",
            ));
        }
        Ok(left)
    }
}

impl Read for Deadlined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.sock.set_read_timeout(Some(left))?;
        self.sock.read(buf)
    }
}

impl io::Write for Deadlined<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.sock.set_write_timeout(Some(left))?;
        self.sock.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// A socket timeout shows as `WouldBlock` (EAGAIN) or `TimedOut`.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// `15`, `0.5`: a timeout as an operator wrote it.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}", d.as_secs_f64())
    }
}

/// Checks that the probed server presents the leaf with `expected_serial`.
pub fn check_presented(report: &ProbeReport, expected_serial: &str) -> Result<(), ProbeError> {
    if report.presented.serial == expected_serial {
        return Ok(());
    }
    Err(ProbeError::Unexpected {
        addr: report.addr.clone(),
        expected: expected_serial.to_owned(),
        found: report.presented.serial.clone(),
    })
}

fn client_config(ca_pem: &str, client: &CertAndKey) -> Result<Arc<ClientConfig>, ProbeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let der = der.map_err(|e| material("the CA bundle", e))?;
        roots.add(der).map_err(|e| material("the CA bundle", e))?;
    }
    if roots.is_empty() {
        return Err(material("the CA bundle", "no certificate in it"));
    }
    let chain = CertificateDer::pem_slice_iter(client.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| material("the client certificate", e))?;
    if chain.is_empty() {
        return Err(material("the client certificate", "no certificate in it"));
    }
    // The pem error names the section, never its bytes.
    let key = PrivateKeyDer::from_pem_slice(client.key_pem.0.as_bytes())
        .map_err(|e| material("the client key", e))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| material("the TLS configuration", e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| material("the client certificate and key", e))?;
    Ok(Arc::new(config))
}

fn material(
    what: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> ProbeError {
    ProbeError::Material {
        what,
        source: e.into(),
    }
}

/// Tries each resolved address in turn within the overall timeout.
fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, ProbeError> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve {
            addr: addr.to_owned(),
            source,
        })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for sa in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            last = io::Error::new(io::ErrorKind::TimedOut, "connection timed out");
            break;
        }
        match TcpStream::connect_timeout(&sa, left) {
            Ok(sock) => {
                let io_err = |source| ProbeError::Connect {
                    addr: addr.to_owned(),
                    source,
                };
                sock.set_read_timeout(Some(timeout)).map_err(io_err)?;
                sock.set_write_timeout(Some(timeout)).map_err(io_err)?;
                sock.set_nodelay(true).map_err(io_err)?;
                return Ok(sock);
            }
            Err(e) => last = e,
        }
    }
    Err(ProbeError::Connect {
        addr: addr.to_owned(),
        source: last,
    })
}

/// rustls reports its own failures through `io::Error` (kind
/// `InvalidData`); unwrap them so the cause reads as the TLS error.
fn tls_error(e: &io::Error) -> Option<rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>().cloned()
}

fn handshake_error(addr: &str, e: io::Error) -> ProbeError {
    match tls_error(&e) {
        Some(source) => ProbeError::Handshake {
            addr: addr.to_owned(),
            source,
        },
        None => ProbeError::HandshakeIo {
            addr: addr.to_owned(),
            source: e,
        },
    }
}

fn presented(addr: &str, conn: &ClientConnection) -> Result<CertInfo, ProbeError> {
    let der = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| ProbeError::NoCertificate {
            addr: addr.to_owned(),
        })?;
    pki::inspect_der(der.as_ref()).map_err(|source| ProbeError::Presented {
        addr: addr.to_owned(),
        source,
    })
}

/// Reads the first line the server sends. A server that stays silent or
/// closes is fine (the handshake is what is checked); an alert is not: a
/// TLS 1.3 server refuses a client certificate only after the handshake.
fn read_greeting(
    addr: &str,
    conn: &mut ClientConnection,
    sock: &mut Deadlined<'_>,
) -> Result<Option<String>, ProbeError> {
    let mut stream = rustls::Stream::new(conn, sock);
    let mut line = Vec::new();
    let mut buf = [0u8; 256];
    while line.len() < GREETING_MAX && !line.contains(&b'\n') {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) => match tls_error(&e) {
                Some(source) => {
                    return Err(ProbeError::Rejected {
                        addr: addr.to_owned(),
                        source,
                    })
                }
                // Timeout, reset or close without close_notify: no greeting.
                None => break,
            },
        }
    }
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    line.truncate(end.min(GREETING_MAX));
    Ok((!line.is_empty()).then(|| String::from_utf8_lossy(&line).trim_end().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::{day0, policy, strings};
    use crate::pki::{inspect, issue_ca, issue_leaf};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{ServerConfig, ServerConnection};
    use std::io::Write;
    use std::net::TcpListener;
    use std::thread::{self, JoinHandle};

    const WAIT: Duration = Duration::from_secs(10);
    const GREETING: &str = r#"{"name":"pgBackRest","service":"remote","version":"2.45"}"#;

    /// Issuance at the real clock: rustls checks validity against it.
    fn now() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }

    fn leaf_of(ca: &CertAndKey) -> CertAndKey {
        let sans = pki::required_sans(&["db1.example"], &policy());
        issue_leaf(ca, &policy(), &sans, now()).unwrap()
    }

    /// A one-connection TLS server like pgBackRest's: presents `leaf`,
    /// requires a client certificate from `client_ca`, sends a greeting
    /// line after the handshake. Returns its address and whether its side
    /// of the handshake succeeded.
    fn serve_once(leaf: &CertAndKey, client_ca: &CertAndKey) -> (String, JoinHandle<bool>) {
        serve(leaf, client_ca, true)
    }

    fn serve(leaf: &CertAndKey, client_ca: &CertAndKey, greet: bool) -> (String, JoinHandle<bool>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(client_ca.cert_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let chain = vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.0.as_bytes()).unwrap();
        let config = Arc::new(
            ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let handle = thread::spawn(move || {
            let deadline = Instant::now() + WAIT;
            let mut sock = loop {
                match listener.accept() {
                    Ok((sock, _)) => break sock,
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                    {
                        thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => return false,
                }
            };
            sock.set_nonblocking(false).unwrap();
            sock.set_read_timeout(Some(WAIT)).unwrap();
            sock.set_write_timeout(Some(WAIT)).unwrap();
            let mut conn = ServerConnection::new(config).unwrap();
            while conn.is_handshaking() {
                if conn.complete_io(&mut sock).is_err() {
                    // Send the alert that says why, as a real server would.
                    let _ = conn.write_tls(&mut sock);
                    return false;
                }
            }
            if !greet {
                // Hang up without a word.
                return true;
            }
            let mut stream = rustls::Stream::new(&mut conn, &mut sock);
            if stream
                .write_all(format!("{GREETING}\n").as_bytes())
                .is_err()
            {
                return false;
            }
            // Wait for the client to close (or the verdict on its cert).
            let mut buf = [0u8; 64];
            !matches!(stream.read(&mut buf), Err(e) if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()))
        });
        (addr, handle)
    }

    #[test]
    fn probe_sees_the_served_leaf() {
        let ca = issue_ca(&policy(), now()).unwrap();
        let server = leaf_of(&ca);
        let client = leaf_of(&ca);
        for name in ["db1.example", "127.0.0.1", "localhost"] {
            let (addr, handle) = serve_once(&server, &ca);
            let report = probe_tls(&addr, name, &ca.cert_pem, &client, WAIT).unwrap();
            assert!(handle.join().unwrap(), "server side failed for `{name}`");
            let served = inspect(&server.cert_pem).unwrap();
            assert_eq!(report.presented, served);
            check_presented(&report, &served.serial).unwrap();
            assert_eq!(report.protocol, "TLSv1_3");
            assert!(report.cipher.starts_with("TLS13_"), "{}", report.cipher);
            assert_eq!(report.greeting.as_deref(), Some(GREETING));
        }
    }

    #[test]
    fn a_silent_server_passes_without_greeting() {
        let ca = issue_ca(&policy(), now()).unwrap();
        let (addr, handle) = serve(&leaf_of(&ca), &ca, false);
        let report = probe_tls(&addr, "localhost", &ca.cert_pem, &leaf_of(&ca), WAIT).unwrap();
        assert!(handle.join().unwrap());
        assert_eq!(report.greeting, None);
    }

    #[test]
    fn probe_trusts_a_bundle_during_ca_rotation() {
        let old = issue_ca(&policy(), now()).unwrap();
        let new = issue_ca(&policy(), now()).unwrap();
        let (addr, handle) = serve_once(&leaf_of(&new), &old);
        let bundle = format!("{}{}", old.cert_pem, new.cert_pem);
        let report = probe_tls(&addr, "localhost", &bundle, &leaf_of(&old), WAIT).unwrap();
        assert!(handle.join().unwrap());
        let err = check_presented(&report, "00:11").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("find the deployed leaf on `127.0.0.1:"),
            "{err}"
        );
    }

    #[test]
    fn probe_fails_when_the_server_refuses_the_client_certificate() {
        let ca = issue_ca(&policy(), now()).unwrap();
        let stranger = issue_ca(&policy(), now()).unwrap();
        let (addr, handle) = serve_once(&leaf_of(&ca), &ca);
        let err =
            probe_tls(&addr, "localhost", &ca.cert_pem, &leaf_of(&stranger), WAIT).unwrap_err();
        assert!(!handle.join().unwrap());
        // TLS 1.3: the client finishes first, the refusal arrives after.
        assert!(
            matches!(
                err,
                ProbeError::Rejected { .. } | ProbeError::Handshake { .. }
            ),
            "{err:?}"
        );
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.contains("alert"), "{cause}");
    }

    #[test]
    fn probe_fails_on_a_server_certificate_from_another_ca() {
        let ca = issue_ca(&policy(), now()).unwrap();
        let stranger = issue_ca(&policy(), now()).unwrap();
        let (addr, handle) = serve_once(&leaf_of(&stranger), &ca);
        let err = probe_tls(&addr, "localhost", &ca.cert_pem, &leaf_of(&ca), WAIT).unwrap_err();
        assert!(!handle.join().unwrap());
        assert!(matches!(err, ProbeError::Handshake { .. }), "{err:?}");
        assert!(err
            .to_string()
            .starts_with("complete the TLS handshake with `127.0.0.1:"));
    }

    #[test]
    fn probe_fails_on_a_name_the_leaf_does_not_carry() {
        let ca = issue_ca(&policy(), now()).unwrap();
        let (addr, handle) = serve_once(&leaf_of(&ca), &ca);
        let err = probe_tls(&addr, "db9.example", &ca.cert_pem, &leaf_of(&ca), WAIT).unwrap_err();
        assert!(!handle.join().unwrap());
        assert!(matches!(err, ProbeError::Handshake { .. }), "{err:?}");
    }

    #[test]
    fn probe_of_a_closed_port_fails_fast() {
        let ca = issue_ca(&policy(), day0()).unwrap();
        let client = issue_leaf(&ca, &policy(), &strings(&["localhost"]), day0()).unwrap();
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let started = Instant::now();
        let err = probe_tls(&addr, "localhost", &ca.cert_pem, &client, WAIT).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(matches!(err, ProbeError::Connect { .. }), "{err:?}");
        assert_eq!(err.to_string(), format!("connect to `{addr}`"));
    }

    /// A server that accepts and then sends `bytes` one every `gap`, for
    /// up to `total` (a silent one when `bytes` is empty).
    fn trickle(bytes: &'static [u8], gap: Duration, total: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        thread::spawn(move || {
            let Ok((mut sock, _)) = listener.accept() else {
                return;
            };
            let end = Instant::now() + total;
            let mut sent = 0;
            while Instant::now() < end {
                thread::sleep(gap);
                if sent < bytes.len() {
                    if sock.write_all(&bytes[sent..=sent]).is_err() {
                        return;
                    }
                    sent += 1;
                }
            }
        });
        addr
    }

    #[test]
    fn a_trickling_or_silent_server_fails_at_one_deadline() {
        let ca = issue_ca(&policy(), day0()).unwrap();
        let client = issue_leaf(&ca, &policy(), &strings(&["localhost"]), day0()).unwrap();
        // A TLS record header announcing 16 KiB, then its body byte by byte:
        // every read gets a byte well within the timeout.
        static RECORD: [u8; 2048] = {
            let mut r = [0x41u8; 2048];
            r[0] = 0x16;
            r[1] = 0x03;
            r[2] = 0x03;
            r[3] = 0x40;
            r[4] = 0x00;
            r
        };
        for bytes in [&RECORD[..], &[]] {
            let addr = trickle(bytes, Duration::from_millis(100), Duration::from_secs(30));
            let started = Instant::now();
            let err = probe_tls(
                &addr,
                "localhost",
                &ca.cert_pem,
                &client,
                Duration::from_secs(1),
            )
            .unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(5), "{err:?}");
            let text = crate::apply::error_chain(&err);
            assert!(text.contains("no TLS handshake within 1 s"), "{text}");
            assert!(!text.contains("os error"), "{text}");
        }
    }

    #[test]
    fn bad_inputs_are_named() {
        let ca = issue_ca(&policy(), day0()).unwrap();
        let client = issue_leaf(&ca, &policy(), &strings(&["localhost"]), day0()).unwrap();
        let t = Duration::from_millis(100);
        let err = probe_tls("127.0.0.1:1", "localhost", "none", &client, t).unwrap_err();
        assert_eq!(err.to_string(), "load the CA bundle for the TLS probe");
        let mut keyless = client.clone();
        keyless.key_pem = pki::SecretPem(String::new());
        let err = probe_tls("127.0.0.1:1", "localhost", &ca.cert_pem, &keyless, t).unwrap_err();
        assert_eq!(err.to_string(), "load the client key for the TLS probe");
        let err = probe_tls("127.0.0.1:1", "bad name!", &ca.cert_pem, &client, t).unwrap_err();
        assert_eq!(err.to_string(), "use `bad name!` as a TLS server name");
    }
}
