//! The server's configuration: plain data at the bottom of the module graph (it imports
//! nothing from this crate), read by the builder, the workers, the connections and the
//! access log.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use uring_common::http::Limits;
use uring_common::ring::TierChoice;

/// Connection timeouts (defaults: head 10 s, body 60 s, keep-alive idle 60 s, drain 10 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time allowed to receive a complete request head (slowloris guard). For the first
    /// request it runs from accept, so a connection that sends nothing is closed after
    /// it too (nginx's client_header_timeout); for later ones, from their first byte.
    pub header_read: Duration,
    /// Time allowed to receive a whole request body, from the end of its head, however
    /// it trickles in; beyond it the answer is 408 and the connection closes.
    pub body_read: Duration,
    /// Time an idle keep-alive connection (or a stalled send) may stay open.
    pub keep_alive: Duration,
    /// How long a graceful shutdown waits for in-flight requests.
    pub drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(60),
            keep_alive: Duration::from_secs(60),
            drain: Duration::from_secs(10),
        }
    }
}

/// Everything a worker needs to know, cloned into each thread.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub workers: usize,
    pub pin: bool,
    pub tier: TierChoice,
    pub limits: Limits,
    pub timeouts: Timeouts,
    /// Open connections per worker; beyond it the worker stops accepting and new
    /// connections wait in the kernel's backlog.
    pub max_conns_per_worker: usize,
    /// listen(2) backlog.
    pub backlog: i32,
    pub access_log: Option<AccessLogTarget>,
    pub access_log_format: AccessLogFormat,
    /// Serve Prometheus metrics on this address (`/metrics`).
    pub metrics: Option<SocketAddr>,
    /// HTTPS listeners and their certificate.
    pub tls: Option<TlsSettings>,
    /// Submission queue entries per ring.
    pub sq_entries: u32,
    /// Completion queue entries per ring (multishot operations post many CQEs).
    pub cq_entries: u32,
}

/// Where `--access-log` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Stdout,
    File(PathBuf),
}

/// `--tls-listen`, `--tls-cert`, `--tls-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Addresses that speak TLS (an inherited socket with one of these addresses too).
    pub listen: Vec<SocketAddr>,
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf.
    pub key: PathBuf,
}

/// The access log's line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLogFormat {
    /// nginx's `combined`: `$remote_addr - $remote_user [$time_local] "$request" $status
    /// $body_bytes_sent "$http_referer" "$http_user_agent"` (time in UTC, `+0000`).
    #[default]
    Combined,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for AccessLogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "combined" => Ok(AccessLogFormat::Combined),
            "json" => Ok(AccessLogFormat::Json),
            _ => Err(format!(
                "unknown access log format '{s}': use combined or json"
            )),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Vec::new(),
            workers: 1,
            pin: true,
            tier: TierChoice::Auto,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            max_conns_per_worker: 16 * 1024,
            backlog: 4096,
            access_log: None,
            access_log_format: AccessLogFormat::Combined,
            metrics: None,
            tls: None,
            sq_entries: 2048,
            cq_entries: 16384,
        }
    }
}
