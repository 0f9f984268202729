//! A stand-in for a cell's `pgbackrest server`: a rustls server that loads
//! `<deploy_dir>/current/tls/{server.crt,server.key,ca.crt}` at start,
//! requires a client certificate from that CA bundle, greets like
//! pgBackRest, and reloads its material only when `<deploy_dir>/reload`
//! appears (what a SIGHUP does to the real server).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Binds `n` consecutive free loopback ports; returns the first and the listeners.
pub fn free_ports(n: u16) -> (u16, Vec<TcpListener>) {
    for _ in 0..200 {
        let base: u16 = 20000 + rand::random::<u16>() % 40000;
        let listeners: Vec<_> = (0..n)
            .map_while(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if listeners.len() == usize::from(n) {
            return (base, listeners);
        }
    }
    panic!("no {n} consecutive free ports on 127.0.0.1");
}

fn load(deploy_dir: &Path) -> Option<Arc<ServerConfig>> {
    let tls = deploy_dir.join("current/tls");
    let read = |f: &str| std::fs::read(tls.join(f)).ok();
    let (ca, cert, key) = (read("ca.crt")?, read("server.crt")?, read("server.key")?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(&ca) {
        roots.add(der.ok()?).ok()?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .ok()?;
    let chain = vec![CertificateDer::from_pem_slice(&cert).ok()?];
    let key = PrivateKeyDer::from_pem_slice(&key).ok()?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .ok()?;
    Some(Arc::new(config))
}

/// A running cell server; stopped (and joined) on drop.
pub struct CellServer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl CellServer {
    /// Starts serving `deploy_dir`'s material on `listener`.
    pub fn start(deploy_dir: PathBuf, listener: TcpListener) -> CellServer {
        let mut config = load(&deploy_dir).expect("cell has TLS material to serve");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((mut sock, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let reload = deploy_dir.join("reload");
                if std::fs::remove_file(&reload).is_ok() {
                    // Like pgBackRest, a reload with broken material would
                    // be fatal; here the old material simply stays.
                    if let Some(c) = load(&deploy_dir) {
                        config = c;
                    }
                }
                let _ = sock.set_nonblocking(false);
                let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = sock.set_write_timeout(Some(Duration::from_secs(2)));
                let Ok(mut conn) = ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut ok = true;
                while ok && conn.is_handshaking() {
                    ok = conn.complete_io(&mut sock).is_ok();
                }
                if ok {
                    let _ = conn.writer().write_all(
                        b"{\"name\":\"pgBackRest\",\"service\":\"remote\",\"version\":\"2.45\"}\n",
                    );
                    let _ = conn.complete_io(&mut sock);
                } else {
                    let _ = conn.write_tls(&mut sock);
                }
            }
        });
        CellServer {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for CellServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
