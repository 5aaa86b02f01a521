//! Kernel TLS (`--ktls`): once rustls has finished a handshake, the record layer moves
//! into the kernel (`TCP_ULP "tls"`, then `SOL_TLS` `TLS_TX` and `TLS_RX`), and the
//! connection is plain for the worker: reads return plaintext, writes and splices are
//! sealed by the kernel, so static files go out zero-copy like plain HTTP.
//!
//! This file holds the kernel side: the `crypto_info` structs of `linux/tls.h` encoded as
//! bytes, the setsockopt calls, the start-up probe that decides (once, with one log line)
//! whether kTLS is used at all and for which suites, and the process-wide counters.
//! When to switch a connection is `conn/tls.rs`'s business.
//!
//! A record that is not application data (an alert such as close_notify, a TLS 1.3
//! KeyUpdate) makes a plain receive on a kTLS socket fail with EIO (only recvmsg with a
//! control buffer can read it). The server does not read those: the connection is closed
//! and counted ([`note_control_record`]), the worker carries on.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustls::{ConnectionTrafficSecrets, ExtractedSecrets, ProtocolVersion};

// linux/tcp.h, linux/socket.h and linux/tls.h (UAPI).
const SOL_TCP: libc::c_int = 6;
const TCP_ULP: libc::c_int = 31;
const SOL_TLS: libc::c_int = 282;
const TLS_TX: libc::c_int = 1;
const TLS_RX: libc::c_int = 2;
const TLS_1_2_VERSION: u16 = 0x0303;
const TLS_1_3_VERSION: u16 = 0x0304;
const TLS_CIPHER_AES_GCM_128: u16 = 51;
const TLS_CIPHER_AES_GCM_256: u16 = 52;
const TLS_CIPHER_CHACHA20_POLY1305: u16 = 54;
/// `struct tls_crypto_info { __u16 version; __u16 cipher_type; }`.
const INFO_HEADER: usize = 4;
/// The largest of the three structs (AES-256-GCM and CHACHA20-POLY1305: 56 bytes).
const INFO_MAX: usize = 56;

/// The AEADs the kernel and rustls have in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

/// One `struct tls12_crypto_info_*` layout: after the 4-byte header come `iv`, `key`,
/// `salt` and `rec_seq`, all `unsigned char` arrays, so there is no padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    cipher_type: u16,
    iv: usize,
    key: usize,
    salt: usize,
    rec_seq: usize,
}

impl Suite {
    pub const ALL: [Suite; 3] = [Suite::Aes128Gcm, Suite::Aes256Gcm, Suite::Chacha20Poly1305];

    fn layout(self) -> Layout {
        match self {
            // TLS_CIPHER_AES_GCM_128_{IV,KEY,SALT,REC_SEQ}_SIZE
            Suite::Aes128Gcm => Layout {
                cipher_type: TLS_CIPHER_AES_GCM_128,
                iv: 8,
                key: 16,
                salt: 4,
                rec_seq: 8,
            },
            Suite::Aes256Gcm => Layout {
                cipher_type: TLS_CIPHER_AES_GCM_256,
                iv: 8,
                key: 32,
                salt: 4,
                rec_seq: 8,
            },
            Suite::Chacha20Poly1305 => Layout {
                cipher_type: TLS_CIPHER_CHACHA20_POLY1305,
                iv: 12,
                key: 32,
                salt: 0,
                rec_seq: 8,
            },
        }
    }

    fn name(self) -> &'static str {
        match self {
            Suite::Aes128Gcm => "AES-128-GCM",
            Suite::Aes256Gcm => "AES-256-GCM",
            Suite::Chacha20Poly1305 => "CHACHA20-POLY1305",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Which direction a `crypto_info` is for: TLS 1.2 GCM writes its explicit nonce into
/// each record, and the kernel picks it differently from rustls (see [`explicit_base`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Tx,
    Rx,
}

/// A `crypto_info` struct as the kernel reads it.
pub struct CryptoInfo {
    bytes: [u8; INFO_MAX],
    len: usize,
}

impl CryptoInfo {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Drop for CryptoInfo {
    fn drop(&mut self) {
        // Key material does not outlive its use.
        self.bytes.fill(0);
    }
}

/// TLS 1.2 AES-GCM: the 8-byte explicit nonce travels in each record. rustls made it
/// `iv[4..] ^ seq` for its records 0..seq; the kernel writes `base, base + 1, ...`. A
/// base just above the aligned block that holds every `iv[4..] ^ i` (i < seq) keeps the
/// kernel's nonces clear of the ones rustls used (reusing a GCM nonce under one key
/// would leak the key stream), for as many records as the sequence number allows.
fn explicit_base(iv_tail: u64, seq: u64) -> u64 {
    let mask = seq.checked_next_power_of_two().unwrap_or(0).wrapping_sub(1);
    (iv_tail | mask).wrapping_add(1)
}

/// Encode one direction's keys. `iv` is rustls' 12-byte IV (for TLS 1.2 GCM the 4-byte
/// salt then the 8 explicit bytes), `seq` the next record's sequence number.
fn crypto_info(
    version: u16,
    suite: Suite,
    key: &[u8],
    iv: &[u8],
    seq: u64,
    dir: Direction,
) -> io::Result<CryptoInfo> {
    let l = suite.layout();
    if key.len() != l.key || iv.len() != l.salt + l.iv {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: key of {} bytes and IV of {}, the kernel wants {} and {}",
                suite.name(),
                key.len(),
                iv.len(),
                l.key,
                l.salt + l.iv
            ),
        ));
    }
    let mut b = [0u8; INFO_MAX];
    b[0..2].copy_from_slice(&version.to_ne_bytes());
    b[2..4].copy_from_slice(&l.cipher_type.to_ne_bytes());
    let (salt, explicit) = iv.split_at(l.salt);
    let mut at = INFO_HEADER;
    let gcm12_tx = version == TLS_1_2_VERSION && l.salt > 0 && dir == Direction::Tx;
    if gcm12_tx {
        let tail = u64::from_be_bytes(explicit.try_into().expect("8 explicit bytes"));
        b[at..at + 8].copy_from_slice(&explicit_base(tail, seq).to_be_bytes());
    } else {
        b[at..at + l.iv].copy_from_slice(explicit);
    }
    at += l.iv;
    b[at..at + l.key].copy_from_slice(key);
    at += l.key;
    b[at..at + l.salt].copy_from_slice(salt);
    at += l.salt;
    b[at..at + l.rec_seq].copy_from_slice(&seq.to_be_bytes());
    at += l.rec_seq;
    Ok(CryptoInfo { bytes: b, len: at })
}

fn version_code(v: ProtocolVersion) -> Option<u16> {
    match v {
        ProtocolVersion::TLSv1_2 => Some(TLS_1_2_VERSION),
        ProtocolVersion::TLSv1_3 => Some(TLS_1_3_VERSION),
        _ => None,
    }
}

/// The suite of rustls' extracted secrets, with its key and IV.
fn parts(s: &ConnectionTrafficSecrets) -> (Suite, &[u8], &[u8]) {
    match s {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv } => {
            (Suite::Aes128Gcm, key.as_ref(), iv.as_ref())
        }
        ConnectionTrafficSecrets::Aes256Gcm { key, iv } => {
            (Suite::Aes256Gcm, key.as_ref(), iv.as_ref())
        }
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
            (Suite::Chacha20Poly1305, key.as_ref(), iv.as_ref())
        }
        _ => unreachable!("rustls exports only the three AEADs the kernel knows"),
    }
}

fn setsockopt(fd: RawFd, level: libc::c_int, name: libc::c_int, val: &[u8]) -> io::Result<()> {
    // SAFETY: `val` is valid for its length for the duration of the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            val.as_ptr().cast(),
            val.len() as libc::socklen_t,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

fn attach_ulp(fd: RawFd) -> io::Result<()> {
    setsockopt(fd, SOL_TCP, TCP_ULP, b"tls")
}

/// What the kernel accepted at start-up, per TLS version and suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelTls {
    /// `[version][suite]`: version 0 is TLS 1.2, 1 is TLS 1.3.
    supported: [[bool; 3]; 2],
}

impl KernelTls {
    /// A kernel that takes everything (for tests of the switch's conditions).
    #[cfg(test)]
    pub(crate) fn everything() -> KernelTls {
        KernelTls {
            supported: [[true; 3]; 2],
        }
    }

    /// Whether a session of this version and suite can move into the kernel.
    pub fn supports(&self, version: Option<ProtocolVersion>, suite: Option<Suite>) -> bool {
        let v = match version {
            Some(ProtocolVersion::TLSv1_2) => 0,
            Some(ProtocolVersion::TLSv1_3) => 1,
            _ => return false,
        };
        suite.is_some_and(|s| self.supported[v][s.index()])
    }

    fn describe(&self) -> (String, String) {
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for (v, name) in ["TLS 1.2", "TLS 1.3"].iter().enumerate() {
            for s in Suite::ALL {
                let item = format!("{name} {}", s.name());
                match self.supported[v][s.index()] {
                    true => on.push(item),
                    false => off.push(item),
                }
            }
        }
        (on.join(", "), off.join(", "))
    }
}

/// Why kTLS is not used: the one line the server logs.
#[derive(Debug)]
pub struct Unavailable(String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A connected loopback pair: the kernel attaches the ULP only to an established socket.
fn loopback_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .or_else(|_| TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))))?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

/// Ask the kernel, on loopback sockets, whether it takes `TCP_ULP "tls"` and which
/// version and suite it accepts in both directions (zero keys; nothing is sent).
pub fn probe() -> Result<KernelTls, Unavailable> {
    let (_c, s) = loopback_pair().map_err(|e| {
        Unavailable(format!(
            "cannot make a loopback connection to probe it ({e})"
        ))
    })?;
    if let Err(e) = attach_ulp(s.as_raw_fd()) {
        let why = match e.raw_os_error() {
            Some(libc::ENOENT) => "the kernel has no \"tls\" TCP ULP: load the module (modprobe tls); /proc/sys/net/ipv4/tcp_available_ulp lists what is loaded".to_string(),
            _ => format!("setsockopt(TCP_ULP, \"tls\") failed: {e}"),
        };
        return Err(Unavailable(format!("{why} ({e})")));
    }
    let mut supported = [[false; 3]; 2];
    for (v, code) in [TLS_1_2_VERSION, TLS_1_3_VERSION].into_iter().enumerate() {
        for suite in Suite::ALL {
            let l = suite.layout();
            let key = [0u8; 32];
            let iv = [0u8; 12];
            let ok = loopback_pair().and_then(|(_c, s)| {
                attach_ulp(s.as_raw_fd())?;
                for (dir, name) in [(Direction::Tx, TLS_TX), (Direction::Rx, TLS_RX)] {
                    let info =
                        crypto_info(code, suite, &key[..l.key], &iv[..l.salt + l.iv], 0, dir)?;
                    setsockopt(s.as_raw_fd(), SOL_TLS, name, info.as_bytes())?;
                }
                Ok(())
            });
            supported[v][suite.index()] = ok.is_ok();
        }
    }
    let k = KernelTls { supported };
    if supported.iter().flatten().all(|s| !s) {
        return Err(Unavailable(
            "the kernel attaches the \"tls\" ULP but refuses every suite for TLS_TX/TLS_RX".into(),
        ));
    }
    Ok(k)
}

/// Probe and say once, in one line, what `--ktls` does on this kernel.
pub fn probe_and_log() -> Option<KernelTls> {
    match probe() {
        Ok(k) => {
            let (on, off) = k.describe();
            let off = match off.is_empty() {
                true => String::new(),
                false => format!("; stays in user space for {off} (the kernel refuses them)"),
            };
            eprintln!("uring-server: --ktls: kernel TLS after the handshake for {on}{off}");
            Some(k)
        }
        Err(e) => {
            eprintln!("uring-server: --ktls: kernel TLS unavailable, TLS stays in user space (rustls): {e}");
            None
        }
    }
}

/// The suite rustls negotiated, if the kernel could know it.
pub fn suite_of(s: rustls::SupportedCipherSuite) -> Option<Suite> {
    use rustls::CipherSuite as C;
    match s.suite() {
        C::TLS13_AES_128_GCM_SHA256
        | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => Some(Suite::Aes128Gcm),
        C::TLS13_AES_256_GCM_SHA384
        | C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => Some(Suite::Aes256Gcm),
        C::TLS13_CHACHA20_POLY1305_SHA256
        | C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        | C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Some(Suite::Chacha20Poly1305),
        _ => None,
    }
}

/// Move a session's record layer into the kernel on `fd`. Every record rustls sealed
/// must already be in the socket, and every record it opened must have been whole (the
/// kernel starts at the next record boundary of the receive queue).
pub fn enter(fd: RawFd, version: ProtocolVersion, secrets: ExtractedSecrets) -> io::Result<()> {
    let code = version_code(version)
        .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "not TLS 1.2 or 1.3"))?;
    let (tx_seq, tx) = &secrets.tx;
    let (rx_seq, rx) = &secrets.rx;
    let (suite, key, iv) = parts(tx);
    let tx = crypto_info(code, suite, key, iv, *tx_seq, Direction::Tx)?;
    let (suite, key, iv) = parts(rx);
    let rx = crypto_info(code, suite, key, iv, *rx_seq, Direction::Rx)?;
    attach_ulp(fd)?;
    setsockopt(fd, SOL_TLS, TLS_TX, tx.as_bytes())?;
    setsockopt(fd, SOL_TLS, TLS_RX, rx.as_bytes())
}

static ENTERED: AtomicU64 = AtomicU64::new(0);
static CONTROL_RECORDS: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
static FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);

/// A connection's record layer is now the kernel's.
pub fn note_entered() {
    ENTERED.fetch_add(1, Ordering::Relaxed);
}

/// A kTLS connection closed on a record that is not application data (EIO).
pub fn note_control_record() {
    CONTROL_RECORDS.fetch_add(1, Ordering::Relaxed);
}

/// The switch failed after rustls gave its keys away: the connection is closed. Logged
/// once (the cause is the kernel's, the same for every connection).
pub fn note_failed(e: &io::Error) {
    FAILED.fetch_add(1, Ordering::Relaxed);
    if !FAILURE_LOGGED.swap(true, Ordering::Relaxed) {
        eprintln!("uring-server: --ktls: handing a session to the kernel failed ({e}); such connections are closed");
    }
}

/// (entered, closed on a control record, failed to enter), for the metrics.
pub fn counters() -> (u64, u64, u64) {
    (
        ENTERED.load(Ordering::Relaxed),
        CONTROL_RECORDS.load(Ordering::Relaxed),
        FAILED.load(Ordering::Relaxed),
    )
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    /// The UAPI structs as `linux/tls.h` declares them, written out here to check the
    /// byte encoding against the compiler's layout of the same declarations.
    #[repr(C)]
    struct TlsCryptoInfo {
        version: u16,
        cipher_type: u16,
    }
    #[repr(C)]
    struct Gcm128 {
        info: TlsCryptoInfo,
        iv: [u8; 8],
        key: [u8; 16],
        salt: [u8; 4],
        rec_seq: [u8; 8],
    }
    #[repr(C)]
    struct Gcm256 {
        info: TlsCryptoInfo,
        iv: [u8; 8],
        key: [u8; 32],
        salt: [u8; 4],
        rec_seq: [u8; 8],
    }
    #[repr(C)]
    struct Chacha {
        info: TlsCryptoInfo,
        iv: [u8; 12],
        key: [u8; 32],
        salt: [u8; 0],
        rec_seq: [u8; 8],
    }

    macro_rules! uapi {
        ($t:ty) => {
            (
                size_of::<$t>(),
                offset_of!($t, iv),
                offset_of!($t, key),
                offset_of!($t, salt),
                offset_of!($t, rec_seq),
            )
        };
    }

    fn offsets(s: Suite) -> (usize, usize, usize, usize, usize) {
        let l = s.layout();
        let iv = INFO_HEADER;
        let key = iv + l.iv;
        let salt = key + l.key;
        let rec_seq = salt + l.salt;
        (rec_seq + l.rec_seq, iv, key, salt, rec_seq)
    }

    #[test]
    fn layouts_match_the_uapi_structs() {
        assert_eq!(offsets(Suite::Aes128Gcm), uapi!(Gcm128));
        assert_eq!(offsets(Suite::Aes256Gcm), uapi!(Gcm256));
        assert_eq!(offsets(Suite::Chacha20Poly1305), uapi!(Chacha));
        assert_eq!(
            (
                size_of::<Gcm128>(),
                size_of::<Gcm256>(),
                size_of::<Chacha>()
            ),
            (40, 56, 56)
        );
        // And against the libc crate's own declarations where it has them.
        assert_eq!(size_of::<libc::tls12_crypto_info_aes_gcm_128>(), 40);
        assert_eq!(size_of::<libc::tls12_crypto_info_aes_gcm_256>(), 56);
        assert_eq!(size_of::<libc::tls12_crypto_info_chacha20_poly1305>(), 56);
        assert_eq!(
            (SOL_TLS, TLS_TX, TLS_RX),
            (libc::SOL_TLS, libc::TLS_TX, libc::TLS_RX)
        );
        assert_eq!(TCP_ULP, libc::TCP_ULP);
    }

    fn bytes(n: usize, from: u8) -> Vec<u8> {
        (0..n).map(|i| from.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn every_suite_is_encoded_field_by_field() {
        for (suite, ty) in [
            (Suite::Aes128Gcm, TLS_CIPHER_AES_GCM_128),
            (Suite::Aes256Gcm, TLS_CIPHER_AES_GCM_256),
            (Suite::Chacha20Poly1305, TLS_CIPHER_CHACHA20_POLY1305),
        ] {
            let l = suite.layout();
            let (size, iv_at, key_at, salt_at, seq_at) = offsets(suite);
            let key = bytes(l.key, 0x40);
            let iv = bytes(l.salt + l.iv, 0x10);
            let seq = 0x0102_0304_0506_0708;
            // TLS 1.3 (and RX of either version): the IV goes in as it is.
            for (version, dir) in [
                (TLS_1_3_VERSION, Direction::Tx),
                (TLS_1_3_VERSION, Direction::Rx),
                (TLS_1_2_VERSION, Direction::Rx),
            ] {
                let info = crypto_info(version, suite, &key, &iv, seq, dir).unwrap();
                let b = info.as_bytes();
                assert_eq!(b.len(), size, "{suite:?}");
                assert_eq!(&b[0..2], &version.to_ne_bytes());
                assert_eq!(&b[2..4], &ty.to_ne_bytes());
                assert_eq!(&b[iv_at..key_at], &iv[l.salt..], "{suite:?} iv");
                assert_eq!(&b[key_at..salt_at], &key[..], "{suite:?} key");
                assert_eq!(&b[salt_at..seq_at], &iv[..l.salt], "{suite:?} salt");
                assert_eq!(
                    &b[seq_at..],
                    &seq.to_be_bytes(),
                    "{suite:?} rec_seq, big-endian"
                );
            }
            let wrong = crypto_info(TLS_1_3_VERSION, suite, &key[1..], &iv, 0, Direction::Tx);
            assert!(wrong.is_err(), "a key of the wrong size is refused");
        }
    }

    #[test]
    fn tls12_gcm_tx_nonces_never_meet_the_ones_rustls_used() {
        let suite = Suite::Aes128Gcm;
        let key = [7u8; 16];
        for tail in [0u64, 5, 0xff, 0x1234_5678_9abc_def7, u64::MAX - 3] {
            for seq in [0u64, 1, 2, 3, 4, 5, 17] {
                let mut iv = vec![1, 2, 3, 4];
                iv.extend_from_slice(&tail.to_be_bytes());
                let info =
                    crypto_info(TLS_1_2_VERSION, suite, &key, &iv, seq, Direction::Tx).unwrap();
                let b = info.as_bytes();
                let base = u64::from_be_bytes(b[4..12].try_into().unwrap());
                let used: Vec<u64> = (0..seq).map(|i| tail ^ i).collect();
                for k in 0..1000u64 {
                    let n = base.wrapping_add(k);
                    assert!(
                        !used.contains(&n),
                        "tail {tail:#x} seq {seq}: kernel record {k} reuses {n:#x}"
                    );
                }
                assert_eq!(&b[32..40], &seq.to_be_bytes());
            }
        }
    }

    #[test]
    fn the_probe_either_works_or_says_why_in_one_line() {
        match probe() {
            Ok(k) => assert!(
                k.supports(Some(ProtocolVersion::TLSv1_3), Some(Suite::Aes128Gcm))
                    || k.supports(Some(ProtocolVersion::TLSv1_2), Some(Suite::Aes128Gcm))
            ),
            Err(e) => {
                let s = e.to_string();
                assert!(!s.contains('\n'), "{s}");
                let ulp = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp")
                    .unwrap_or_default();
                assert!(
                    !ulp.contains("tls"),
                    "tls is loaded ({ulp}) yet the probe failed: {s}"
                );
            }
        }
    }
}
