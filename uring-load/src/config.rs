//! What one run is asked to do ([`LoadConfig`]: hosts, request mix, connections, threads,
//! budget, rate), and the interrupt flag every thread watches. Its own module so that the
//! runner, which spawns the engines, and the engines, which read it, both depend on it and
//! not on each other.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use uring_common::ring::TierChoice;
use uring_common::stats::{ErrorKind, OsCause};

use crate::conn::ConnSpec;
use crate::target::Address;
use crate::targets::Mix;

/// Set by the binary's SIGINT handler: every thread stops and the partial report prints.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// HTTPS parameters: the rustls configuration and the name the certificate must carry.
#[derive(Clone)]
pub struct TlsTarget {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

/// Where one host's connections go.
#[derive(Clone)]
pub struct HostTarget {
    pub address: Address,
    pub tls: Option<TlsTarget>,
}

/// Everything one run needs.
#[derive(Clone)]
pub struct LoadConfig {
    /// The hosts the targets name, in the order of [`Mix::hosts`].
    pub hosts: Vec<HostTarget>,
    /// The requests, each serialized once (head and body), and how they are picked.
    pub mix: Arc<Mix>,
    pub conn: ConnSpec,
    pub connections: usize,
    pub threads: usize,
    /// `-n`: exactly this many requests complete.
    pub requests: Option<u64>,
    /// The `-n` shares of the shards before this one (`--shard`): where this shard's
    /// requests start in every host's cycle, so that round-robin holds across shards.
    pub earlier_shares: Vec<u64>,
    /// `-d`: the run stops after this long.
    pub duration: Option<Duration>,
    /// `-T`: connect and per-request timeout.
    pub timeout: Duration,
    /// `-R`: open model at this many requests per second (all threads together).
    pub rate: Option<f64>,
    /// `--stages`: the open model's rate follows this ramp; `rate` is then this process's
    /// share of it (1, or a shard's part).
    pub stages: Option<Arc<crate::stages::Ramp>>,
    /// `--stages-connections`: the closed model keeps this ramp's share of the
    /// connections open (`connections` is its peak).
    pub conn_stages: Option<Arc<crate::stages::Ramp>>,
    /// This process's shard of a run across machines (`{SEQ}` numbers stay distinct
    /// across shards).
    pub shard: crate::shard::Shard,
    /// Core for each thread, or none (`--no-pin`).
    pub cores: Vec<Option<core_affinity::CoreId>>,
    pub tier: TierChoice,
    /// Latency over time: each thread sends a copy of its recorder once per interval.
    pub intervals: Option<crate::intervals::IntervalFeed>,
}

impl LoadConfig {
    /// The cause of an error, with its OS reason and the host's address, for the report.
    pub fn os_cause(&self, host: usize, kind: ErrorKind, errno: i32) -> OsCause<'_> {
        OsCause {
            kind,
            errno,
            peer: &self.hosts[host].address,
        }
    }
}
