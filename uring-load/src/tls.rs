//! HTTPS: the rustls client configuration. The TLS records themselves travel through the
//! engine's ring (rustls reads from and writes to our byte buffers); nothing here does IO
//! except reading the CA bundle at start.
//!
//! Trust comes from `--cacert FILE` (curl's and vegeta's name: the CA certificates that
//! signed the server's, or the server's own self-signed one, PEM), else the system bundle (`SSL_CERT_FILE`, else the usual
//! Debian/RHEL paths); `--insecure` accepts any certificate (self-signed test servers)
//! while still checking the handshake signatures, so the session keys are real.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::StartError;
use crate::target::TargetError;

const CA_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// A verifier that accepts every certificate (`--insecure`).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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

/// The client configuration for a run, trusting the CA certificates in `ca_file` if
/// given (else the system's); one line of error when it cannot be built.
pub fn client_config(
    insecure: bool,
    ca_file: Option<&Path>,
) -> Result<Arc<ClientConfig>, StartError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(StartError::TlsSetup)?;
    let config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else if let Some(path) = ca_file {
        let (roots, certs) = roots_from(path)?;
        let chains = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| StartError::CaFile {
                path: path.to_path_buf(),
                cause: e.to_string(),
            })?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CaFileVerifier { chains, certs }))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(system_roots()?)
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// `--cacert`: a chain to one of the file's certificates, as usual, or the server's own
/// certificate found in the file. The second is the self-signed certificate most test
/// servers have (`openssl req -x509` marks it a CA, which webpki refuses as a server's
/// own); trusting exactly those bytes is what curl and OpenSSL do with it. Handshake
/// signatures are checked either way.
#[derive(Debug)]
struct CaFileVerifier {
    chains: Arc<WebPkiServerVerifier>,
    certs: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for CaFileVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        self.chains
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chains.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chains.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chains.supported_verify_schemes()
    }
}

/// The CA certificates of a `--cacert` file: every PEM certificate in it, as trust
/// anchors and as they are.
fn roots_from(path: &Path) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), StartError> {
    let fail = |cause: String| StartError::CaFile {
        path: path.to_path_buf(),
        cause,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| fail(format!("not PEM: {e}")))?;
        roots
            .add(cert.clone())
            .map_err(|e| fail(format!("a certificate in it is unusable: {e}")))?;
        certs.push(cert);
    }
    if roots.is_empty() {
        return Err(fail("no PEM certificate in it".to_string()));
    }
    Ok((roots, certs))
}

/// The configuration with ALPN `h2` offered (`--http2`), or as it was.
pub fn with_alpn(config: Arc<ClientConfig>, http2: bool) -> Arc<ClientConfig> {
    if !http2 {
        return config;
    }
    let mut c = (*config).clone();
    c.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(c)
}

/// `--alpn`: one TLS handshake to `addr` offering `protocols`, before the run; the
/// protocol the server chose (`None`: it chose none). Errors are one line.
pub fn negotiate_alpn(
    addr: std::net::SocketAddr,
    config: &Arc<ClientConfig>,
    name: ServerName<'static>,
    protocols: &[Vec<u8>],
    timeout: std::time::Duration,
) -> Result<Option<Vec<u8>>, String> {
    let mut c = (**config).clone();
    c.alpn_protocols = protocols.to_vec();
    let mut session =
        rustls::ClientConnection::new(Arc::new(c), name).map_err(|e| format!("TLS setup: {e}"))?;
    let mut sock = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("--alpn: connect to {addr}: {e}"))?;
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    while session.is_handshaking() {
        session.complete_io(&mut sock).map_err(|e| {
            match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(r) => format!("--alpn: TLS handshake with {addr}: {}", describe_error(r)),
                None => format!("--alpn: TLS handshake with {addr}: {e}"),
            }
        })?;
    }
    let chosen = session.alpn_protocol().map(<[u8]>::to_vec);
    session.send_close_notify();
    let _ = session.complete_io(&mut sock);
    Ok(chosen)
}

/// One line for a failed handshake, in the error report: a refused server certificate
/// says why in words (rustls prints most causes as Rust debug text) and names the two
/// ways out; any other failure is rustls' own line.
pub fn describe_error(e: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(c) = e else {
        return e.to_string();
    };
    let why = match c {
        CertificateError::UnknownIssuer => {
            "it is not signed by a CA this run trusts (self-signed, or a private CA)".to_string()
        }
        CertificateError::BadSignature => "its signature does not verify".to_string(),
        CertificateError::Expired => "it has expired".to_string(),
        CertificateError::NotValidYet => "it is not valid yet".to_string(),
        CertificateError::NotValidForName => "it does not name the URL's host".to_string(),
        CertificateError::Revoked => "it is revoked".to_string(),
        CertificateError::InvalidPurpose => "it is not a TLS server certificate".to_string(),
        CertificateError::BadEncoding => "it is not valid DER".to_string(),
        CertificateError::Other(o) if o.to_string() == "CaUsedAsEndEntity" => {
            "it is a CA certificate (a self-signed one made with CA:TRUE?) that this run does not trust".to_string()
        }
        CertificateError::Other(o) => o.to_string(),
        // The variants with context have a readable line of their own.
        other => other.to_string(),
    };
    format!(
        "the server's certificate was refused: {why}; pass --cacert FILE with the CA certificate that signed it (or the certificate itself, if self-signed), or --insecure to skip the check (test servers only)"
    )
}

fn system_roots() -> Result<RootCertStore, StartError> {
    let from_env = std::env::var("SSL_CERT_FILE").ok();
    let candidates = from_env
        .iter()
        .map(String::as_str)
        .chain(CA_BUNDLES.iter().copied());
    for path in candidates {
        let Ok(pem) = std::fs::read(path) else {
            continue;
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
            let _ = roots.add(cert);
        }
        if !roots.is_empty() {
            return Ok(roots);
        }
    }
    Err(StartError::NoCaCertificates)
}

/// The name the server certificate must carry: the URL's host (an IP literal is allowed).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TargetError> {
    ServerName::try_from(host.to_string()).map_err(|_| TargetError::TlsServerName {
        host: host.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_certificates_are_words_and_name_both_ways_out() {
        for (cause, words) in [
            (
                CertificateError::UnknownIssuer,
                "not signed by a CA this run trusts",
            ),
            (CertificateError::Expired, "it has expired"),
            (
                CertificateError::NotValidForName,
                "does not name the URL's host",
            ),
            (CertificateError::BadSignature, "signature does not verify"),
        ] {
            let line = describe_error(&rustls::Error::InvalidCertificate(cause));
            assert!(line.contains(words), "{line}");
            assert!(line.contains("--cacert FILE") && line.contains("--insecure"));
            assert!(!line.contains('\n'));
        }
        // Not a certificate: rustls' own line, no advice about certificates.
        let other = describe_error(&rustls::Error::DecryptError);
        assert!(!other.contains("--cacert"), "{other}");
    }
}
