//! TLS termination with rustls: `--tls-listen ADDR --tls-cert FILE --tls-key FILE`.
//!
//! This file loads the certificate chain and key (PEM) into a rustls `ServerConfig`
//! (TLS 1.3 and 1.2, ALPN `http/1.1`, session resumption by tickets shared by every
//! worker and by a session-id cache per worker; AES-128-GCM preferred) and hands each
//! worker its own copy. The
//! records themselves are driven sans-IO in `conn/tls.rs`, on the worker's ring.
//!
//! A reload (`--tls-reload`, SIGHUP) builds a new configuration from the files and bumps
//! a generation number; each worker notices it at its next TLS accept and switches, so
//! new connections get the new certificate and open ones keep theirs.
//!
//! With `--ktls` (and a kernel that passed `ktls::probe`), secret extraction is on and
//! every session carries what the kernel accepts, so `conn/tls.rs` can hand it over.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ProducesTickets, ServerSessionMemoryCache};
use rustls::{CipherSuite, ServerConfig, ServerConnection};

use crate::ktls::KernelTls;

/// Sessions remembered per worker for session-id resumption (TLS 1.2 without tickets).
const SESSION_CACHE: usize = 4096;

/// Why TLS could not be set up; `Display` is one line with the cause and the fix.
#[derive(Debug)]
pub enum TlsError {
    Read(PathBuf, String),
    NoCertificate(PathBuf),
    Key(PathBuf, String),
    Rejected(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read(p, e) => write!(f, "cannot read {}: {e}; check --tls-cert/--tls-key", p.display()),
            TlsError::NoCertificate(p) => write!(
                f,
                "no PEM certificate in {}; --tls-cert takes the certificate chain, leaf first",
                p.display()
            ),
            TlsError::Key(p, e) => write!(
                f,
                "no usable private key in {} ({e}); --tls-key takes a PEM PKCS#8, PKCS#1 or SEC1 key",
                p.display()
            ),
            TlsError::Rejected(e) => write!(
                f,
                "the certificate and key do not go together ({e}); pass the key of the leaf certificate"
            ),
        }
    }
}

impl std::error::Error for TlsError {}

/// The certificate and key files, their current configuration and its generation.
pub struct TlsSource {
    cert: PathBuf,
    key: PathBuf,
    tickets: Arc<dyn ProducesTickets>,
    current: Mutex<Arc<ServerConfig>>,
    generation: AtomicU64,
    kernel: Option<KernelTls>,
    /// ALPN offers `h2`.
    http2: bool,
}

impl fmt::Debug for TlsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSource")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

impl TlsSource {
    /// `kernel`: what `--ktls` may hand to the kernel (None: everything stays in rustls).
    /// `http2`: offer ALPN `h2` before `http/1.1`.
    pub fn load(
        cert: &Path,
        key: &Path,
        kernel: Option<KernelTls>,
        http2: bool,
    ) -> Result<Arc<TlsSource>, TlsError> {
        let tickets = rustls::crypto::ring::Ticketer::new()
            .map_err(|e| TlsError::Rejected(format!("session tickets: {e}")))?;
        let config = build(cert, key, &tickets, kernel.is_some(), http2)?;
        Ok(Arc::new(TlsSource {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            tickets,
            current: Mutex::new(Arc::new(config)),
            generation: AtomicU64::new(0),
            kernel,
            http2,
        }))
    }

    /// Read the files again; on success new connections get the new certificate.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = build(
            &self.cert,
            &self.key,
            &self.tickets,
            self.kernel.is_some(),
            self.http2,
        )?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// A worker's view: its own session cache over the shared configuration.
    pub fn worker(self: &Arc<Self>) -> WorkerTls {
        let mut w = WorkerTls {
            source: self.clone(),
            generation: u64::MAX,
            config: self
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        };
        w.refresh();
        w
    }
}

fn build(
    cert: &Path,
    key: &Path,
    tickets: &Arc<dyn ProducesTickets>,
    extract: bool,
    http2: bool,
) -> Result<ServerConfig, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Read(cert.to_path_buf(), e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate(cert.to_path_buf()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_path_buf()));
    }
    std::fs::metadata(key).map_err(|e| TlsError::Read(key.to_path_buf(), e.to_string()))?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key(key.to_path_buf(), e.to_string()))?;
    // AES-128-GCM first, by our order rather than the client's: as strong as needed,
    // cheaper than AES-256, and the suite benchmarks compare with nginx on.
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            CipherSuite::TLS13_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    let provider = Arc::new(provider);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rejected(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Rejected(e.to_string()))?;
    // Our order, not the client's (below): HTTP/2 when both sides can.
    config.alpn_protocols = match http2 {
        true => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        false => vec![b"http/1.1".to_vec()],
    };
    config.ignore_client_order = true;
    config.ticketer = tickets.clone();
    config.enable_secret_extraction = extract;
    Ok(config)
}

/// One worker's TLS: a session cache of its own, switched to a reloaded configuration
/// at the next accept after a reload.
pub struct WorkerTls {
    source: Arc<TlsSource>,
    generation: u64,
    config: Arc<ServerConfig>,
}

impl WorkerTls {
    fn refresh(&mut self) {
        let g = self.source.generation.load(Ordering::Acquire);
        if g == self.generation {
            return;
        }
        let base = self
            .source
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut own = (*base).clone();
        own.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
        self.config = Arc::new(own);
        self.generation = g;
    }

    /// A server session for a new connection.
    pub fn session(&mut self) -> Result<TlsSession, rustls::Error> {
        self.refresh();
        Ok(TlsSession {
            conn: ServerConnection::new(self.config.clone())?,
            kernel: self.source.kernel,
        })
    }
}

/// A new connection's TLS: its rustls session, and what kTLS may take over (`--ktls`).
pub struct TlsSession {
    pub conn: ServerConnection,
    pub kernel: Option<KernelTls>,
}

/// Which of a worker's listeners speak TLS, and the worker's TLS state.
pub struct ListenerTls {
    is_tls: Vec<bool>,
    tls: Option<WorkerTls>,
}

impl ListenerTls {
    pub fn new(is_tls: Vec<bool>, tls: Option<WorkerTls>) -> ListenerTls {
        ListenerTls { is_tls, tls }
    }

    /// For a connection accepted on listener `li`: None when the listener is plain, else
    /// a new server session (an error only if rustls refuses to make one: the connection
    /// is closed then, never served in plain text).
    pub fn session_for(&mut self, li: u32) -> Option<Result<TlsSession, rustls::Error>> {
        if !self.is_tls.get(li as usize).copied().unwrap_or(false) {
            return None;
        }
        Some(match self.tls.as_mut() {
            Some(t) => t.session(),
            None => Err(rustls::Error::General("no TLS configuration".into())),
        })
    }
}
