//! uring-load's errors, one enum per layer, each message one line that names the cause
//! (and the fix, where there is one):
//!
//! - [`TargetError`] (in `target`): the URL or socket the user gave;
//! - [`ConfigError`]: flags that contradict each other or the machine's limits;
//! - [`StartError`]: the run could not start (the ring, TLS, the embedded server);
//! - [`ReportError`]: reading or writing a report;
//! - [`LogError`]: the latency log, `--interval`, the live view and `uring-load report`'s inputs;
//! - [`MergeError`]: `uring-load merge` refuses its inputs.
//!
//! The binary maps them to exit codes: bad input (target, configuration, merge) 2,
//! anything else 1.

use std::fmt;
use std::io;
use std::path::PathBuf;

use uring_common::ring::RingError;

use crate::shard::{Shard, ShardError};

pub use crate::target::TargetError;

/// Flags that cannot make a run.
#[derive(Debug)]
pub enum ConfigError {
    /// clap's own message (unknown flag, bad number, ...), first line.
    Cli(String),
    /// A count flag given as 0 (`-c`, `-t`, `-K`, `--streams`, `-n`, `--runs`); the text
    /// names it.
    Zero(&'static str),
    /// `-d` or `-T` of zero length.
    ZeroDuration(&'static str),
    FewerConnectionsThanThreads {
        connections: u64,
        threads: u64,
    },
    PipelineWithoutKeepAlive,
    /// `-K` and `--streams` both, with different values (they name one depth).
    DepthTwice {
        k: u64,
        streams: u64,
    },
    PipelineTooDeep,
    BadHeader {
        header: String,
        why: &'static str,
    },
    BodyFile {
        path: PathBuf,
        err: io::Error,
    },
    BadMethod(String),
    TooFewFileDescriptors {
        connections: u64,
        needed: u64,
        limit: u64,
    },
    /// `--latency-log` / `--interval` unusable, or `--tui` without a terminal or with `-q`.
    LatencyLog(LogError),
    /// `--shard`, `--shards`, `--start-at`, `--run-id`.
    Shard(ShardError),
    /// `--targets`, `--urls`, `--raw`: a file that cannot be read or is wrong.
    Targets(crate::targets::TargetsError),
    /// `--raw`'s list.
    RawList(String),
    /// Mix flags that do not go together.
    Mix(&'static str),
    FewerConnectionsThanHosts {
        connections: u64,
        hosts: usize,
    },
    /// `--threshold`, `--baseline`, `--max-regression`, `--junit`: the message names the flag.
    Gate(String),
}

impl From<crate::targets::TargetsError> for ConfigError {
    fn from(e: crate::targets::TargetsError) -> Self {
        ConfigError::Targets(e)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Cli(m) => f.write_str(m),
            ConfigError::Zero(what) => write!(f, "{what} must be at least 1"),
            ConfigError::ZeroDuration(flag) => write!(f, "{flag} must be longer than 0"),
            ConfigError::FewerConnectionsThanThreads { connections, threads } => write!(
                f,
                "fewer connections (-c {connections}) than threads (-t {threads}): every thread needs at least one connection"
            ),
            ConfigError::PipelineWithoutKeepAlive => f.write_str(
                "pipelining (-K or --streams over HTTP/1.1) needs keep-alive (-k)",
            ),
            ConfigError::DepthTwice { k, streams } => write!(
                f,
                "-K {k} and --streams {streams} name the same thing (requests in flight per connection): give one"
            ),
            ConfigError::PipelineTooDeep => f.write_str(
                "HTTP/1.1 pipelining (-K, --streams) is limited to 1024 requests in flight per connection",
            ),
            ConfigError::BadHeader { header, why } => write!(f, "bad header '{header}': {why}"),
            ConfigError::BodyFile { path, err } => {
                write!(f, "cannot read body file {}: {err}", path.display())
            }
            ConfigError::BadMethod(m) => write!(f, "bad method '{m}'"),
            ConfigError::LatencyLog(e) => write!(f, "{e}"),
            ConfigError::Shard(e) => write!(f, "{e}"),
            ConfigError::Targets(e) => write!(f, "{e}"),
            ConfigError::RawList(m) => write!(f, "--raw: {m}"),
            ConfigError::Mix(m) => f.write_str(m),
            ConfigError::Gate(m) => f.write_str(m),
            ConfigError::FewerConnectionsThanHosts { connections, hosts } => write!(
                f,
                "fewer connections (-c {connections}) than hosts ({hosts}): every host needs at least one connection"
            ),
            ConfigError::TooFewFileDescriptors {
                connections,
                needed,
                limit,
            } => write!(
                f,
                "-c {connections} needs about {needed} file descriptors but the limit is {limit}: raise it with `ulimit -n {needed}` (or in limits.conf) and run again"
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::BodyFile { err, .. } => Some(err),
            ConfigError::Shard(e) => Some(e),
            ConfigError::LatencyLog(e) => Some(e),
            _ => None,
        }
    }
}

/// The run could not start.
#[derive(Debug)]
pub enum StartError {
    /// io_uring refused (forbidden, memlock, unsupported kernel, tier unavailable).
    Ring(RingError),
    /// A thread's buffer ring could not be registered.
    BufRing {
        thread: usize,
        err: RingError,
    },
    /// The target's socket address (a Unix socket path) is unusable.
    Target(TargetError),
    /// The embedded uring-server did not start.
    EmbeddedServer(uring_server::ServerError),
    TlsSetup(rustls::Error),
    NoCaCertificates,
    /// The `--cacert` file cannot be read or holds no usable certificate.
    CaFile {
        path: std::path::PathBuf,
        cause: String,
    },
    /// A load thread panicked: a report without its share would be wrong.
    ThreadCrashed,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Ring(e) => write!(f, "{e}"),
            StartError::BufRing { thread, err } => write!(f, "thread {thread}: {err}"),
            StartError::Target(e) => write!(f, "{e}"),
            StartError::EmbeddedServer(e) => write!(f, "embedded server: {e}"),
            StartError::TlsSetup(e) => write!(f, "TLS setup failed: {e}"),
            StartError::NoCaCertificates => f.write_str(
                "no CA certificates found (pass --cacert FILE, set SSL_CERT_FILE, install ca-certificates, or use --insecure for a self-signed server)",
            ),
            StartError::CaFile { path, cause } => write!(
                f,
                "--cacert {}: {cause}; pass a PEM file with the CA certificate(s) that signed the server's certificate",
                path.display()
            ),
            StartError::ThreadCrashed => f.write_str("a load thread crashed; no report"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Ring(e) | StartError::BufRing { err: e, .. } => Some(e),
            StartError::Target(e) => Some(e),
            StartError::EmbeddedServer(e) => Some(e),
            StartError::TlsSetup(e) => Some(e),
            StartError::NoCaCertificates
            | StartError::CaFile { .. }
            | StartError::ThreadCrashed => None,
        }
    }
}

impl From<ShardError> for ConfigError {
    fn from(e: ShardError) -> Self {
        ConfigError::Shard(e)
    }
}

impl From<RingError> for StartError {
    fn from(e: RingError) -> Self {
        StartError::Ring(e)
    }
}

impl From<TargetError> for StartError {
    fn from(e: TargetError) -> Self {
        StartError::Target(e)
    }
}

/// Reading or writing a report.
#[derive(Debug)]
pub enum ReportError {
    /// Writing the report to stdout failed (a closed pipe, a full disk).
    Write(io::Error),
    Read {
        path: String,
        err: io::Error,
    },
    NotJson {
        path: String,
        err: serde_json::Error,
    },
    /// JSON, but not a uring-load report (a field missing or of the wrong type).
    NotAReport {
        path: String,
        why: String,
    },
    /// Writing the latency log failed (the latency log modules' own message).
    LatencyLog(LogError),
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Write(e) => write!(f, "cannot write the report: {e}"),
            ReportError::Read { path, err } => write!(f, "cannot read {path}: {err}"),
            ReportError::NotJson { path, err } => write!(f, "{path} is not JSON: {err}"),
            ReportError::NotAReport { path, why } => {
                write!(f, "{path} is not a uring-load report: {why}")
            }
            ReportError::LatencyLog(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReportError::Write(err) | ReportError::Read { err, .. } => Some(err),
            ReportError::NotJson { err, .. } => Some(err),
            ReportError::LatencyLog(e) => Some(e),
            ReportError::NotAReport { .. } => None,
        }
    }
}

/// `uring-load merge` refuses its inputs.
#[derive(Debug)]
pub enum MergeError {
    NoReports,
    /// A flag `merge` does not know.
    UnknownFlag(String),
    Report(ReportError),
    /// Shards and plain reports together (paths of one of each).
    MixedSharding {
        sharded: String,
        unsharded: String,
    },
    /// Reports of two runs: (path, run id) of each.
    DifferentRuns {
        first: (String, String),
        other: (String, String),
    },
    /// Shards of runs split differently: (path, shard count) of each.
    DifferentShardCounts {
        first: (String, u32),
        other: (String, u32),
    },
    DuplicateShard {
        shard: Shard,
        first: String,
        second: String,
    },
    MissingShards {
        run_id: String,
        count: u32,
        missing: Vec<u32>,
    },
    /// Reports of different request mixes: the two paths and how the targets differ.
    DifferentTargets {
        first: String,
        other: String,
        how: String,
    },
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeError::DifferentTargets { first, other, how } => write!(
                f,
                "{first} and {other} ran different targets ({how}): per-target statistics would not add up"
            ),
            MergeError::NoReports => f.write_str(
                "merge needs at least one JSON report: uring-load merge A.json B.json ...",
            ),
            MergeError::UnknownFlag(flag) => write!(
                f,
                "merge does not know {flag}: uring-load merge [--text] A.json B.json ..."
            ),
            MergeError::Report(e) => write!(f, "{e}"),
            MergeError::MixedSharding { sharded, unsharded } => write!(
                f,
                "{sharded} is a shard of a run (--shard) but {unsharded} is not: merge the shards of one run, or plain reports, not both"
            ),
            MergeError::DifferentRuns { first, other } => write!(
                f,
                "{} is from run '{}' but {} from run '{}': merge only the shards of one run",
                first.0, first.1, other.0, other.1
            ),
            MergeError::DifferentShardCounts { first, other } => write!(
                f,
                "{} is one of {} shards but {} one of {}: merge only the shards of one run",
                first.0, first.1, other.0, other.1
            ),
            MergeError::DuplicateShard {
                shard,
                first,
                second,
            } => write!(
                f,
                "shard {shard} appears twice ({first} and {second}): each shard's report once"
            ),
            MergeError::MissingShards {
                run_id,
                count,
                missing,
            } => {
                let names: Vec<String> = missing.iter().map(|i| format!("{i}/{count}")).collect();
                write!(
                    f,
                    "run '{run_id}' is missing shards {} ({} of {count}): a merge without them would under-count; rerun or collect them",
                    names.join(", "),
                    missing.len()
                )
            }
        }
    }
}

impl std::error::Error for MergeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MergeError::Report(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ReportError> for MergeError {
    fn from(e: ReportError) -> Self {
        MergeError::Report(e)
    }
}

/// The latency log, the interval length, the live view, and the inputs of
/// `uring-load report`.
#[derive(Debug)]
pub enum LogError {
    /// `--interval` below what the load loops can resolve.
    IntervalTooShort(std::time::Duration),
    Create {
        path: PathBuf,
        err: io::Error,
    },
    Write {
        path: PathBuf,
        err: io::Error,
    },
    Read {
        path: PathBuf,
        err: io::Error,
    },
    /// A line of a histogram log that is not one (1-based).
    NotALogLine {
        line: usize,
    },
    /// An interval whose histogram does not decode (the decoder's reason).
    BadInterval {
        at_s: f64,
        why: String,
    },
    NoIntervals,
    /// A `report` input that is neither a histogram log nor a uring-load JSON report.
    NotAReport {
        path: PathBuf,
        why: String,
    },
    /// The same, for an input file: the path and what was wrong inside it.
    InFile {
        path: PathBuf,
        err: Box<LogError>,
    },
    /// `--tui` and `-q` together.
    QuietLiveView,
    /// `--tui` without a terminal on stderr.
    NoTerminal,
    /// The thread that writes the intervals panicked.
    ReporterCrashed,
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::IntervalTooShort(p) => {
                write!(f, "--interval {p:?} is too short: it must be at least 10ms")
            }
            LogError::Create { path, err } => {
                write!(f, "cannot create latency log {}: {err}", path.display())
            }
            LogError::Write { path, err } => write!(f, "cannot write {}: {err}", path.display()),
            LogError::Read { path, err } => write!(f, "cannot read {}: {err}", path.display()),
            LogError::NotALogLine { line } => {
                write!(f, "line {line} is not a histogram log line")
            }
            LogError::BadInterval { at_s, why } => write!(f, "interval at {at_s:.3}s: {why}"),
            LogError::NoIntervals => f.write_str("no interval histograms in the log"),
            LogError::NotAReport { path, why } => write!(
                f,
                "{} is neither a uring-load JSON report nor a histogram log: {why}",
                path.display()
            ),
            LogError::InFile { path, err } => write!(f, "{}: {err}", path.display()),
            LogError::QuietLiveView => f.write_str("--tui and -q contradict each other: choose one"),
            LogError::NoTerminal => f.write_str(
                "--tui needs a terminal on stderr (the live view draws there); without --tui, progress lines are printed instead",
            ),
            LogError::ReporterCrashed => f.write_str("the interval reporting thread crashed"),
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::Create { err, .. }
            | LogError::Write { err, .. }
            | LogError::Read { err, .. } => Some(err),
            LogError::InFile { err, .. } => Some(err.as_ref()),
            _ => None,
        }
    }
}
