//! HTTPS GETs with a chosen TLS version and AEAD, for the kTLS check under QEMU
//! (scripts/reliability-kernel.sh), where no curl or openssl is at hand (and busybox
//! wget's TLS fails its handshake there): PATH's body goes to stdout (for sha256sum),
//! `status bytes version suite` to stderr.
//!
//! Usage: tls_get ADDR PATH CA_PEM 1.2|1.3 aes128|aes256|chacha

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CipherSuite, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, ca, version, suite] = &args[..] else {
        eprintln!("usage: tls_get ADDR PATH CA_PEM 1.2|1.3 aes128|aes256|chacha");
        return ExitCode::from(2);
    };
    match get(addr, path, ca, version, suite) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tls_get: {e}");
            ExitCode::from(1)
        }
    }
}

fn get(addr: &str, path: &str, ca: &str, version: &str, suite: &str) -> Result<(), String> {
    let (versions, wanted): (&[&rustls::SupportedProtocolVersion], [CipherSuite; 3]) = match version
    {
        "1.2" => (
            &[&rustls::version::TLS12],
            match suite {
                "aes128" => [CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256; 3],
                "aes256" => [CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384; 3],
                _ => [CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256; 3],
            },
        ),
        _ => (
            &[&rustls::version::TLS13],
            match suite {
                "aes128" => [CipherSuite::TLS13_AES_128_GCM_SHA256; 3],
                "aes256" => [CipherSuite::TLS13_AES_256_GCM_SHA384; 3],
                _ => [CipherSuite::TLS13_CHACHA20_POLY1305_SHA256; 3],
            },
        ),
    };
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|s| wanted.contains(&s.suite()));
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{ca}: {e}"))? {
        roots
            .add(c.map_err(|e| format!("{ca}: {e}"))?)
            .map_err(|e| e.to_string())?;
    }
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let conn = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let sock = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    let mut tls = StreamOwned::new(conn, sock);
    // A first request, then PATH on the same connection: with TLS 1.3 the first one rides
    // with the client's Finished and is answered by rustls; the second is read and
    // answered after the switch to kTLS. Then close_notify, which a kTLS socket reports
    // as EIO (the server counts it).
    let mut buf = Vec::new();
    let (_, first) = exchange(&mut tls, "/plaintext", &mut buf)?;
    if first != b"Hello, World!" {
        return Err(format!(
            "/plaintext answered {:?}",
            String::from_utf8_lossy(&first)
        ));
    }
    let (status, body) = exchange(&mut tls, path, &mut buf)?;
    let negotiated = tls.conn.negotiated_cipher_suite().map(|s| s.suite());
    eprintln!(
        "{status} {} {:?} {negotiated:?}",
        body.len(),
        tls.conn.protocol_version()
    );
    tls.conn.send_close_notify();
    let _ = tls.flush();
    std::io::stdout()
        .write_all(&body)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// One keep-alive request; the status and the body (by its Content-Length).
fn exchange(
    tls: &mut StreamOwned<ClientConnection, TcpStream>,
    path: &str,
    buf: &mut Vec<u8>,
) -> Result<(String, Vec<u8>), String> {
    write!(tls, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut need: Option<(usize, usize)> = None;
    loop {
        if need.is_none() {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..at]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or("no Content-Length")?;
                need = Some((at + 4, len));
            }
        }
        if let Some((start, len)) = need {
            if buf.len() >= start + len {
                let head = String::from_utf8_lossy(&buf[..start]).to_string();
                let status = head.split(' ').nth(1).unwrap_or("?").to_string();
                let body = buf[start..start + len].to_vec();
                buf.drain(..start + len);
                return Ok((status, body));
            }
        }
        let n = tls.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed before the whole response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
