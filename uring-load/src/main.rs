//! The `uring-load` command: weighttp's and wrk's flags over the io_uring engine.
//!
//! Exit codes: 0 the run finished with at least one response (whatever its status), 1
//! the run could not start (ring denied, server failed) or every request failed (the
//! first error of each class is printed on stderr), 2 bad input (one line on stderr says
//! which), 130 interrupted by Ctrl-C (the partial report is still printed).

use std::fmt;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Parser;
use uring_common::ring::{raise_nofile_limit, Tier, TierChoice};
use uring_common::stats::Recorder;
use uring_load::baseline::{self, Baseline, Comparison};
use uring_load::breakdown::{Breakdown, SCHEMA_VERSION};
use uring_load::config::{HostTarget, LoadConfig, TlsTarget, INTERRUPTED};
use uring_load::conn::ConnSpec;
use uring_load::error::{ConfigError, MergeError, ReportError, StartError, TargetError};
use uring_load::intervals::Interval;
use uring_load::live::LiveMode;
use uring_load::prometheus::Exporter;
use uring_load::report::{self, RunFacts, RunLine};
use uring_load::runner::{self, Progress};
use uring_load::shard::{self, Shard};
use uring_load::stages::{self, Ramp, RateRow, Unit as StageUnit};
use uring_load::target::{parse_url, resolve, Address, Scheme, Url};
use uring_load::targets::{self, Mix, Policy};
use uring_load::thresholds::{self, Figures, Outcome, Threshold, EXIT_THRESHOLD_FAILED};
use uring_load::timeline::Timeline;
use uring_load::{merge, tls, units};

#[derive(Parser, Debug)]
#[command(
    name = "uring-load",
    version,
    about = "io_uring HTTP/1.1 load generator with weighttp's and wrk's flags",
    long_about = "io_uring HTTP/1.1 load generator with weighttp's and wrk's flags.\n\n\
        Without a URL it starts the embedded uring-server on a loopback port (on other \
        cores than the generator when there are two or more) and benchmarks it.\n\n\
        `uring-load merge [--text] A.json B.json ...` merges --json reports of runs made on several \
        machines into one exact report.\n\n\
        `uring-load report RUN.json|LOG ... [--svg OUT.svg] [--html OUT.html]` draws the \
        latency percentile distribution and, from --latency-log files, requests/s and p99 \
        over time.",
    after_help = "Examples:\n  uring-load -n 10000 -c 200 -t 3 -k http://127.0.0.1:8000/\n  \
        uring-load -d 10s -c 64 -k -R 50k http://127.0.0.1:8080/\n  \
        uring-load --json -n 1M -c 64 -k > run.json\n  \
        uring-load -n 100k -c 64 -k --targets api.txt --mix weighted\n  \
        uring-load -d 10s -c 64 -k --raw get.req,post.req http://127.0.0.1:8080/"
)]
struct Cli {
    /// http:// or https:// URL: host name (resolved once), IPv4 or [IPv6], port, path and query.
    url: Option<String>,

    /// Total requests (e.g. 10000, 10k, 1M): exactly this many end, answered or errored; never more.
    #[arg(short = 'n', long = "requests", value_name = "N", value_parser = units::parse_count)]
    requests: Option<u64>,

    /// Concurrent connections, split evenly across threads.
    #[arg(short = 'c', long = "connections", value_name = "N", default_value = "64", value_parser = units::parse_count)]
    connections: u64,

    /// Threads, each pinned to a core and running its own ring.
    #[arg(short = 't', long = "threads", value_name = "N", default_value = "1", value_parser = units::parse_count)]
    threads: u64,

    /// Keep-alive: many requests per connection (without it, each request gets its own
    /// connection and the client closes it).
    #[arg(short = 'k', long = "keep-alive")]
    keep_alive: bool,

    /// Requests in flight per connection: HTTP/1.1 pipelining depth (needs -k), HTTP/2
    /// streams (the same as --streams).
    #[arg(short = 'K', long = "pipeline", value_name = "N", value_parser = units::parse_count)]
    pipeline: Option<u64>,

    /// HTTP/2: prior knowledge on http://, ALPN h2 on https://.
    #[arg(long = "http2")]
    http2: bool,

    /// Requests in flight per connection: HTTP/2 streams (h2load's -m), HTTP/1.1
    /// pipelining depth (the same as -K; needs -k). Default 1.
    #[arg(long = "streams", value_name = "N", value_parser = units::parse_count)]
    streams: Option<u64>,

    /// HTTPS: offer these protocols by ALPN (h2, http/1.1, in order of preference), let
    /// the server choose, and run with the one it chose.
    #[arg(long = "alpn", value_name = "LIST")]
    alpn: Option<String>,

    /// The protocol the server chose for `--alpn`.
    #[arg(skip)]
    alpn_chosen: Option<String>,

    /// Extra request header "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,

    /// Request method (default GET, or POST with -b).
    #[arg(short = 'm', long = "method", value_name = "METHOD")]
    method: Option<String>,

    /// Send the contents of FILE as the request body.
    #[arg(short = 'b', long = "body", value_name = "FILE")]
    body: Option<PathBuf>,

    /// Run for this long (e.g. 500ms, 10s, 2m) instead of, or as well as, -n.
    #[arg(short = 'd', long = "duration", value_name = "DURATION", value_parser = units::parse_duration)]
    duration: Option<Duration>,

    /// Connect and per-request timeout.
    #[arg(short = 'T', long = "timeout", value_name = "DURATION", default_value = "5s", value_parser = units::parse_duration)]
    timeout: Duration,

    /// Open model: this many requests per second in total; latency counts from each
    /// request's intended send time (coordinated omission corrected).
    #[arg(short = 'R', long = "rate", value_name = "REQ_PER_S", value_parser = units::parse_rate)]
    rate: Option<f64>,

    /// Traffic before the measured run that is not counted.
    #[arg(long = "warmup", value_name = "DURATION", value_parser = units::parse_duration)]
    warmup: Option<Duration>,

    /// Repeat the run N times and print the mean and standard deviation.
    #[arg(long = "runs", value_name = "N", default_value = "1", value_parser = units::parse_count)]
    runs: u64,

    /// Print one JSON object on stdout (schema: docs/report-schema.md).
    #[arg(long = "json")]
    json: bool,

    /// Do not pin threads to cores.
    #[arg(long = "no-pin")]
    no_pin: bool,

    /// Accept any TLS certificate (self-signed test servers).
    #[arg(long = "insecure")]
    insecure: bool,

    /// Trust the CA certificates in FILE (PEM) instead of the system's, as curl's and
    /// vegeta's --cacert.
    #[arg(long = "cacert", value_name = "FILE")]
    cacert: Option<PathBuf>,

    /// Connect to this Unix socket instead of the URL's host (the URL still gives the
    /// path and Host header).
    #[arg(long = "unix-socket", value_name = "PATH")]
    unix_socket: Option<PathBuf>,

    /// Kernel interface: io_uring tier basic (5.10), multishot (5.19), full (6.1), or epoll;
    /// auto takes the best io_uring tier, or epoll when io_uring is forbidden or missing.
    #[arg(long = "tier", value_name = "TIER", default_value = "auto")]
    tier: TierChoice,

    /// No progress output on stderr.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,

    /// Live view on stderr (req/s, errors, p50 and p99 of the last interval, progress);
    /// the default when stderr is a terminal, progress lines otherwise.
    #[arg(long = "tui")]
    tui: bool,

    /// Write latency over time to FILE: one interval histogram per --interval in
    /// HdrHistogram's histogram log format (HistogramLogProcessor and `uring-load report`
    /// read it; values in microseconds).
    #[arg(long = "latency-log", value_name = "FILE")]
    latency_log: Option<PathBuf>,

    /// Length of the intervals of the latency log and of the live view's figures (at
    /// least 10ms).
    #[arg(long = "interval", value_name = "DURATION", default_value = "1s", value_parser = units::parse_duration)]
    interval: Duration,

    /// Run shard I of N (0-based) of a run spread over N machines: its exact share of -n
    /// (the shares sum to -n) and 1/N of -R; -c, -t and -d are per machine.
    #[arg(long = "shard", value_name = "I/N")]
    shard: Option<String>,

    /// Run one of N shards, the index taken from JOB_COMPLETION_INDEX (a Kubernetes
    /// Indexed Job sets it in every pod).
    #[arg(long = "shards", value_name = "N")]
    shards: Option<u32>,

    /// Start sending at this wall-clock time: Unix seconds or RFC 3339
    /// (2026-11-30T12:00:00Z); refused when it passed more than 1s ago.
    #[arg(long = "start-at", value_name = "TIME", value_parser = shard::parse_time)]
    start_at: Option<SystemTime>,

    /// The run's id in the report (`merge` checks that shards share it); derived from
    /// the flags every shard shares when absent.
    #[arg(long = "run-id", value_name = "ID")]
    run_id: Option<String>,

    /// Requests from FILE in vegeta's format: `METHOD URL [weight=N]`, then `Name: value`
    /// header lines, then an optional `@body-file` line; a blank line between targets.
    /// The URLs name the hosts (no URL argument).
    #[arg(long = "targets", value_name = "FILE", conflicts_with_all = ["urls", "raw"])]
    targets: Option<PathBuf>,

    /// URLs from FILE, one per line (h2load's -i), each with an optional ` weight=N`;
    /// -m, -b and -H apply to every one (no URL argument).
    #[arg(long = "urls", value_name = "FILE", conflicts_with = "raw")]
    urls: Option<PathBuf>,

    /// Whole raw HTTP/1.1 requests, one per file, sent as written to the URL argument's
    /// host (`FILE:weight=N` for a weight); checked at start (CRLF, Host, framing).
    #[arg(long = "raw", value_name = "FILE[,FILE...]")]
    raw: Option<String>,

    /// How each request's target is picked: round-robin (every target in turn),
    /// weighted (by weight=N, spread evenly) or random (by weight, from --seed).
    #[arg(long = "mix", value_name = "POLICY", default_value = "round-robin", value_parser = ["round-robin", "weighted", "random"])]
    mix: String,

    /// Seed of --mix random: the same seed draws the same targets.
    #[arg(long = "seed", value_name = "N", default_value = "1")]
    seed: u64,

    /// Pass/fail gate on the finished run (repeatable): p50/p90/p99/p99.9<DURATION,
    /// errors<X% (or a count), rps>N, status5xx=0 (1xx..5xx, a count or X%), each
    /// optionally for one target (target=NAME:p99<20ms). Exit 99 when one fails.
    #[arg(long = "threshold", value_name = "EXPR")]
    thresholds: Vec<String>,

    /// Write the thresholds (and the baseline's figures) as JUnit test cases to FILE.
    #[arg(long = "junit", value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Compare p50, p99, p99.9 and requests/s with a stored --json run of the same
    /// targets; exit 99 when one is worse by more than --max-regression.
    #[arg(long = "baseline", value_name = "OLD.json")]
    baseline: Option<PathBuf>,

    /// Ramp the open model's rate linearly through these stages, from 0 (k6's stages):
    /// DURATION:RATE,... e.g. 10s:1000,30s:5000,10s:0. The run lasts as long as the stages
    /// (unless -d); latency counts from each request's intended time on the ramp.
    #[arg(long = "stages", value_name = "STAGES", conflicts_with = "rate")]
    stages: Option<String>,

    /// Closed model: ramp the open connections linearly through these stages, from 0:
    /// DURATION:CONNECTIONS,... e.g. 5s:10,20s:200 (-c is the peak). The run lasts as
    /// long as the stages (unless -d).
    #[arg(long = "stages-connections", value_name = "STAGES", conflicts_with_all = ["rate", "stages", "connections"])]
    stages_connections: Option<String>,

    /// Serve the run's counters and latency histogram in Prometheus' text format on ADDR
    /// (e.g. 127.0.0.1:9464, path /metrics) while it runs.
    #[arg(long = "prometheus", value_name = "ADDR")]
    prometheus: Option<String>,

    /// After the report, keep --prometheus serving the final figures this long (for a
    /// last scrape; uring_load_finished is 1 then).
    #[arg(long = "prometheus-linger", value_name = "DURATION", default_value = "0s", value_parser = units::parse_duration)]
    prometheus_linger: Duration,

    /// How much worse than --baseline a figure may be (percent).
    #[arg(long = "max-regression", value_name = "PERCENT", default_value = "10%")]
    max_regression: String,
}

/// Why the command stopped short; each prints one line and picks the exit code.
#[derive(Debug)]
enum Failure {
    Config(ConfigError),
    Target(TargetError),
    Start(StartError),
    Report(ReportError),
    Merge(MergeError),
}

impl Failure {
    /// Bad input is 2; a run that could not start or report is 1.
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Config(_) | Failure::Target(_) | Failure::Merge(_) => 2,
            Failure::Start(_) | Failure::Report(_) => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Config(e) => write!(f, "{e}"),
            Failure::Target(e) => write!(f, "{e}"),
            Failure::Start(e) => write!(f, "{e}"),
            Failure::Report(e) => write!(f, "{e}"),
            Failure::Merge(e) => write!(f, "{e}"),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Config(e)
    }
}
impl From<TargetError> for Failure {
    fn from(e: TargetError) -> Self {
        Failure::Target(e)
    }
}
impl From<StartError> for Failure {
    fn from(e: StartError) -> Self {
        Failure::Start(e)
    }
}
impl From<ReportError> for Failure {
    fn from(e: ReportError) -> Self {
        Failure::Report(e)
    }
}
impl From<MergeError> for Failure {
    fn from(e: MergeError) -> Self {
        Failure::Merge(e)
    }
}

/// Print a failure as one line and turn it into the exit code.
fn finish(result: Result<ExitCode, Failure>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("uring-load: {f}");
            ExitCode::from(f.exit_code())
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("merge") {
        return finish(merge(&args[2..]));
    }
    if args.get(1).map(String::as_str) == Some("report") {
        return uring_load::report_cmd::main(&args[2..]);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind as K;
            if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap's message, first line only, without its "error: " prefix.
            let rendered = e.render().to_string();
            let line = rendered.lines().next().unwrap_or("bad arguments");
            let line = line.trim_start_matches("error: ").to_string();
            return finish(Err(ConfigError::Cli(line).into()));
        }
    };
    finish(run(cli))
}

/// Write to stdout; a failed write (closed pipe, full disk) is a report error.
fn out(text: fmt::Arguments<'_>) -> Result<(), ReportError> {
    let mut o = std::io::stdout().lock();
    o.write_fmt(text)
        .and_then(|()| o.flush())
        .map_err(ReportError::Write)
}

/// `uring-load merge [--text] A.json B.json ...`: JSON by default, or the text report
/// with one row per shard and the total.
fn merge(args: &[String]) -> Result<ExitCode, Failure> {
    let mut text = false;
    let mut files = Vec::new();
    for a in args {
        match a.as_str() {
            "--text" => text = true,
            "--json" => text = false,
            flag if flag.starts_with("--") => {
                return Err(MergeError::UnknownFlag(flag.to_string()).into())
            }
            _ => files.push(a.as_str()),
        }
    }
    let reports = files
        .iter()
        .map(|f| merge::read_report(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(MergeError::from)?;
    let merged = merge::merge(reports)?;
    if text {
        out(format_args!("{}", merged.text()))?;
    } else {
        out(format_args!("{}\n", merged.json()))?;
    }
    Ok(ExitCode::SUCCESS)
}

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn install_sigint() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

fn run(mut cli: Cli) -> Result<ExitCode, Failure> {
    let conn_ramp = match &cli.stages_connections {
        Some(text) => {
            let r = Ramp::parse(text, StageUnit::Connections, "--stages-connections")
                .map_err(ConfigError::Gate)?;
            // Every connection the ramp reaches exists from the start, idle until then.
            cli.connections = (r.peak() as u64).max(cli.threads);
            if cli.duration.is_none() {
                cli.duration = Some(r.total());
            }
            Some(Arc::new(r))
        }
        None => None,
    };
    validate(&cli)?;
    let gates = Gates::from_cli(&cli)?;
    let sharding = Sharding::from_cli(&cli)?;
    // From here on -n and -R are this shard's share.
    let mut earlier_shares = Vec::new();
    if let Some(n) = cli.requests {
        let share = sharding.shard.share_of_requests(n);
        cli.requests = Some(share.map_err(ConfigError::from)?);
        let s = sharding.shard;
        earlier_shares = (0..s.index)
            .map(|index| Shard { index, ..s }.share_of_requests(n).unwrap_or(0))
            .collect();
    }
    // Shards draw a random mix from their own streams.
    cli.seed ^= u64::from(sharding.shard.index).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    cli.rate = cli.rate.map(|r| sharding.shard.share_of_rate(r));
    let ramp = match &cli.stages {
        Some(text) => Some(Arc::new(
            Ramp::parse(text, StageUnit::Rate, "--stages").map_err(ConfigError::Gate)?,
        )),
        None => None,
    };
    if let (Some(r), None) = (&ramp, cli.duration) {
        cli.duration = Some(r.total());
    }
    let rates = RateLog::default();
    let mut timeline =
        Timeline::new(cli.latency_log.as_deref(), cli.interval).map_err(ConfigError::LatencyLog)?;
    timeline.enable_live(LiveMode::choose(cli.quiet, cli.tui).map_err(ConfigError::LatencyLog)?);
    let exporter = match &cli.prometheus {
        Some(addr) => Some(Exporter::start(addr).map_err(ConfigError::Gate)?),
        None => None,
    };
    if let Some(e) = &exporter {
        timeline.add_sink(e.sink());
    }
    if ramp.is_some() || conn_ramp.is_some() {
        let rows = rates.clone();
        timeline.add_sink(Arc::new(move |i: &Interval| {
            let mut rows = rows.0.lock().unwrap_or_else(|e| e.into_inner());
            rows.push((i.offset.as_secs_f64(), i.length.as_secs_f64(), i.done));
        }));
    }
    let duration = match (cli.requests, cli.duration) {
        (None, None) => Some(Duration::from_secs(10)),
        (_, d) => d,
    };
    check_fd_limit(&cli)?;
    let cores_all = core_affinity::get_core_ids().unwrap_or_default();
    let mut target = open_target(&cli, &cores_all)?;
    if let Some(list) = cli.alpn.clone() {
        choose_protocol(&mut cli, &mut target, &list)?;
    }
    gates.check_targets(&target.mix)?;
    if cli.http2 {
        // Each target goes out as its HTTP/1.1 form taken apart: one that is not such a
        // request (a raw file) cannot be sent over HTTP/2.
        if let Some(t) = (target.mix.targets.iter())
            .find(|t| uring_load::h2conn::Request::from_http1(&t.bytes).is_none())
        {
            let why = format!(
                "--http2: {} is not an HTTP/1.1 request to send as HTTP/2",
                t.label
            );
            return Err(ConfigError::Cli(why).into());
        }
    }
    let share = sharding.shard.share_of_rate(1.0);
    let cfg = LoadConfig {
        earlier_shares,
        rate: if ramp.is_some() {
            Some(share)
        } else {
            cli.rate
        },
        stages: ramp.clone(),
        conn_stages: conn_ramp.clone(),
        shard: sharding.shard,
        ..load_config(&cli, &target, duration, &cores_all)
    };
    let threads = cfg.threads;

    install_sigint();
    if let Some(at) = cli.start_at {
        if !wait_until(at)? {
            return Ok(ExitCode::from(130));
        }
    }
    let mut warmup = None;
    if let Some(w) = cli.warmup {
        let warm = LoadConfig {
            requests: None,
            duration: Some(w),
            ..cfg.clone()
        };
        let run = runner::run(&warm, &Progress::new(threads))?;
        warmup = Some((RunLine::of(&run.recorder, run.elapsed), run.recorder));
    }
    let started_at = SystemTime::now();
    let mut measured = measure(&cli, &cfg, duration, &timeline, &rates)?;
    measured.warmup = warmup;
    {
        let rows = rates.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = &ramp {
            let mine = r.scaled(share);
            let rows = (rows.iter())
                .map(|&(start, length, done)| RateRow::of(&mine, start, length, done))
                .collect();
            measured.rates = Some((mine, rows, "rate"));
        } else if let Some(r) = &conn_ramp {
            let rows = (rows.iter())
                .map(|&(start, length, done)| RateRow::connections(r, start, length, done))
                .collect();
            measured.rates = Some(((**r).clone(), rows, "connections"));
        }
    }
    let ended_at = SystemTime::now();
    if let Some(server) = target.embedded {
        server.shutdown();
    }
    let identity = Identity {
        sharding,
        host: shard::host_name(),
        started_at,
        ended_at,
    };
    let verdict = gates.judge(&measured, &target.mix);
    print_report(&cli, &measured, &identity, &verdict)?;
    if let Some(path) = &cli.junit {
        std::fs::write(path, verdict.junit()).map_err(ReportError::Write)?;
    }
    if let Some(e) = &exporter {
        e.finish();
        std::thread::sleep(cli.prometheus_linger);
    }
    Ok(exit_status(&measured, &verdict))
}

/// The CI gates of the run: `--threshold`s and `--baseline`, read before the run.
struct Gates {
    thresholds: Vec<Threshold>,
    baseline: Option<(Baseline, f64)>,
}

impl Gates {
    fn from_cli(cli: &Cli) -> Result<Gates, ConfigError> {
        let thresholds = (cli.thresholds.iter())
            .map(|e| thresholds::parse(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::Gate(e.to_string()))?;
        let bound = baseline::parse_bound(&cli.max_regression).map_err(ConfigError::Gate)?;
        let baseline = match &cli.baseline {
            Some(p) => Some((
                baseline::read(&p.display().to_string())
                    .map_err(|e| ConfigError::Gate(format!("--baseline: {e}")))?,
                bound,
            )),
            None => None,
        };
        Ok(Gates {
            thresholds,
            baseline,
        })
    }

    /// Every `target=` names one target of the mix; the baseline ran the same targets.
    fn check_targets(&self, mix: &Mix) -> Result<(), ConfigError> {
        let labels = target_labels(mix);
        thresholds::check_targets(&self.thresholds, &labels)
            .map_err(|e| ConfigError::Gate(e.to_string()))?;
        if let Some((base, _)) = &self.baseline {
            baseline::check_targets(base, &labels).map_err(ConfigError::Gate)?;
        }
        Ok(())
    }

    fn judge(&self, m: &Measured, mix: &Mix) -> Verdict {
        let all = Figures {
            rec: &m.merged,
            elapsed: m.elapsed,
        };
        Verdict {
            outcomes: thresholds::judge(&self.thresholds, all, &m.breakdown, &target_labels(mix)),
            comparison: (self.baseline.as_ref())
                .map(|(b, bound)| baseline::compare(b, &m.merged, m.elapsed, &m.breakdown, *bound)),
        }
    }
}

fn target_labels(mix: &Mix) -> Vec<String> {
    mix.targets.iter().map(|t| t.label.clone()).collect()
}

/// How the run fared against its gates.
struct Verdict {
    outcomes: Vec<Outcome>,
    comparison: Option<Comparison>,
}

impl Verdict {
    fn failed(&self) -> bool {
        !thresholds::all_passed(&self.outcomes)
            || self.comparison.as_ref().is_some_and(Comparison::regressed)
    }

    fn text(&self) -> String {
        let mut o = thresholds::text(&self.outcomes);
        if let Some(c) = &self.comparison {
            o.push_str(&baseline::text(c));
        }
        o
    }

    fn junit(&self) -> String {
        let mut cases: Vec<thresholds::Case> = self.outcomes.iter().map(Into::into).collect();
        if let Some(c) = &self.comparison {
            cases.extend(c.changes.iter().map(|ch| thresholds::Case {
                name: format!("baseline {} {}", ch.metric, ch.scope),
                failure: ch.regressed.then(|| {
                    format!(
                        "{:+.1}% against {} (bound {}%)",
                        ch.change_pct, c.path, c.bound_pct
                    )
                }),
            }));
        }
        thresholds::junit("uring-load", &cases)
    }
}

/// What one run needs, from the flags (with this shard's share of -n and -R).
fn load_config(
    cli: &Cli,
    target: &Target,
    duration: Option<Duration>,
    cores_all: &[core_affinity::CoreId],
) -> LoadConfig {
    LoadConfig {
        hosts: target.hosts.clone(),
        mix: Arc::new(target.mix.clone()),
        conn: ConnSpec {
            keep_alive: cli.keep_alive || cli.http2,
            depth: in_flight(cli) as usize,
            max_head_bytes: 64 * 1024,
            http2: cli.http2,
        },
        connections: cli.connections as usize,
        threads: cli.threads as usize,
        requests: cli.requests,
        earlier_shares: Vec::new(),
        duration,
        timeout: cli.timeout,
        rate: cli.rate,
        stages: None,
        conn_stages: None,
        shard: Shard::WHOLE,
        cores: thread_cores(cli, cores_all),
        tier: cli.tier,
        intervals: None,
    }
}

/// 130 after Ctrl-C; 1, with the first error of each class on stderr, when every
/// request failed; 99 when a threshold or the baseline failed; else 0.
fn exit_status(m: &Measured, verdict: &Verdict) -> ExitCode {
    if m.interrupted {
        return ExitCode::from(130);
    }
    if !report::every_request_failed(&m.merged) {
        if verdict.failed() {
            return ExitCode::from(EXIT_THRESHOLD_FAILED);
        }
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "uring-load: every request failed ({} errored, none answered); the first error of each class:",
        m.merged.counters.errored
    );
    for line in report::first_error_lines(&m.merged) {
        eprintln!("  {line}");
    }
    ExitCode::from(1)
}

/// The report's protocol line of an HTTP/2 run, or of any run with `--alpn`.
fn protocol_line(cli: &Cli) -> Option<String> {
    let alpn = match (&cli.alpn, &cli.alpn_chosen) {
        (Some(list), Some(chosen)) => format!(" (ALPN: the server chose {chosen} of {list})"),
        _ => String::new(),
    };
    if cli.http2 {
        let streams = in_flight(cli);
        let s = if streams == 1 { "" } else { "s" };
        let settings = match uring_load::h2conn::server_settings() {
            Some(p) => format!(
                "; server SETTINGS {}",
                settings_json(&p)
                    .to_string()
                    .replace(['{', '}', '"'], "")
                    .replace(',', ", ")
                    .replace(':', " ")
            ),
            None => String::new(),
        };
        Some(format!(
            "HTTP/2, {} stream{s} per connection{alpn}{settings}; {} sent again (refused or \
             unprocessed by the server)",
            streams,
            uring_load::h2conn::retried()
        ))
    } else {
        cli.alpn.as_ref().map(|_| format!("HTTP/1.1{alpn}"))
    }
}

/// The server's HTTP/2 SETTINGS as the report shows them (null: not sent, no limit).
fn settings_json(p: &uring_common::h2::PeerSettings) -> serde_json::Value {
    let limit = |v: u32| -> serde_json::Value {
        if v == u32::MAX {
            serde_json::Value::Null
        } else {
            v.into()
        }
    };
    serde_json::json!({
        "max_concurrent_streams": limit(p.max_concurrent_streams),
        "initial_window_size": p.initial_window_size,
        "max_frame_size": p.max_frame_size,
        "header_table_size": p.header_table_size,
        "max_header_list_size": limit(p.max_header_list_size),
    })
}

/// `--alpn h2,http/1.1`: ask the (single, HTTPS) host which protocol it takes, and run
/// with that one: `h2` turns `--http2` on.
fn choose_protocol(cli: &mut Cli, target: &mut Target, list: &str) -> Result<(), Failure> {
    let protocols: Vec<Vec<u8>> = list
        .split(',')
        .map(|p| p.trim().as_bytes().to_vec())
        .collect();
    if protocols.iter().any(|p| p != b"h2" && p != b"http/1.1") {
        return Err(ConfigError::Cli(format!("--alpn {list}: offer h2 and/or http/1.1")).into());
    }
    let [host] = target.hosts.as_mut_slice() else {
        return Err(ConfigError::Cli("--alpn needs a single https:// host".into()).into());
    };
    let (Some(tls), Address::Inet(addr)) = (&mut host.tls, &host.address) else {
        return Err(ConfigError::Cli("--alpn needs an https:// URL over TCP".into()).into());
    };
    let chosen = tls::negotiate_alpn(
        *addr,
        &tls.config,
        tls.server_name.clone(),
        &protocols,
        cli.timeout,
    )
    .map_err(ConfigError::Cli)?;
    let name = chosen.as_deref().map_or("no protocol".to_string(), |p| {
        String::from_utf8_lossy(p).into_owned()
    });
    cli.http2 = chosen.as_deref() == Some(b"h2");
    if cli.http2 {
        tls.config = tls::with_alpn(tls.config.clone(), true);
    }
    cli.alpn_chosen = Some(name);
    Ok(())
}

/// Requests in flight per connection: `-K` and `--streams` say the same (HTTP/1.1
/// pipelining depth, HTTP/2 streams), whichever was given; 1 without either.
fn in_flight(cli: &Cli) -> u64 {
    cli.streams.or(cli.pipeline).unwrap_or(1)
}

/// Flags that contradict each other or are zero where they must not be.
fn validate(cli: &Cli) -> Result<(), ConfigError> {
    if cli.connections == 0 {
        return Err(ConfigError::Zero("-c (connections)"));
    }
    if cli.threads == 0 {
        return Err(ConfigError::Zero("-t (threads)"));
    }
    if cli.connections < cli.threads {
        return Err(ConfigError::FewerConnectionsThanThreads {
            connections: cli.connections,
            threads: cli.threads,
        });
    }
    if cli.pipeline == Some(0) {
        return Err(ConfigError::Zero("-K (requests in flight per connection)"));
    }
    if cli.streams == Some(0) {
        return Err(ConfigError::Zero("--streams"));
    }
    if let (Some(k), Some(streams)) = (cli.pipeline, cli.streams) {
        if k != streams {
            return Err(ConfigError::DepthTwice { k, streams });
        }
    }
    let depth = in_flight(cli);
    // With --alpn the server may still choose HTTP/2: pipelining is checked when it
    // chose HTTP/1.1 (without -k its depth is then 1).
    let http1 = !cli.http2 && cli.alpn.is_none();
    if depth > 1 && !cli.keep_alive && http1 {
        return Err(ConfigError::PipelineWithoutKeepAlive);
    }
    if depth > 1024 && !cli.http2 {
        return Err(ConfigError::PipelineTooDeep);
    }
    if cli.requests == Some(0) {
        return Err(ConfigError::Zero("-n (requests)"));
    }
    if cli.runs == 0 {
        return Err(ConfigError::Zero("--runs"));
    }
    if cli.duration.is_some_and(|d| d.is_zero()) {
        return Err(ConfigError::ZeroDuration("-d"));
    }
    if cli.timeout.is_zero() {
        return Err(ConfigError::ZeroDuration("-T"));
    }
    Ok(())
}

fn parse_headers(raw: &[String]) -> Result<Vec<(String, String)>, ConfigError> {
    raw.iter()
        .map(|h| {
            targets::parse_header(h).map_err(|why| ConfigError::BadHeader {
                header: h.clone(),
                why,
            })
        })
        .collect()
}

fn request_method(given: Option<&str>, has_body: bool) -> Result<String, ConfigError> {
    let method = given
        .map(str::to_string)
        .unwrap_or_else(|| if has_body { "POST" } else { "GET" }.to_string());
    if !targets::is_token(&method) {
        return Err(ConfigError::BadMethod(method));
    }
    Ok(method)
}

/// The mix flags that cannot go together, checked before anything starts.
fn validate_mix(cli: &Cli) -> Result<(), ConfigError> {
    let from_file = cli.targets.is_some() || cli.urls.is_some();
    if from_file && (cli.url.is_some() || cli.unix_socket.is_some()) {
        return Err(ConfigError::Mix(
            "--targets and --urls name their hosts in the file: give no URL (nor --unix-socket)",
        ));
    }
    if cli.raw.is_some() && cli.url.is_none() && cli.unix_socket.is_none() {
        return Err(ConfigError::Mix(
            "--raw needs the URL (or --unix-socket) of the host its requests go to",
        ));
    }
    if (cli.targets.is_some() || cli.raw.is_some()) && (cli.method.is_some() || cli.body.is_some())
    {
        return Err(ConfigError::Mix(
            "-m and -b do not apply to --targets or --raw: each target carries its own method and body",
        ));
    }
    Ok(())
}

/// The requests of the run: from --targets, --urls or --raw, or the one of the URL and
/// -m, -H, -b; `url` is the URL argument (or the embedded server's).
fn build_mix(cli: &Cli, url: Option<&Url>) -> Result<Mix, Failure> {
    let headers = parse_headers(&cli.headers)?;
    let body = match &cli.body {
        Some(p) => Some(std::fs::read(p).map_err(|err| ConfigError::BodyFile {
            path: p.clone(),
            err,
        })?),
        None => None,
    };
    let method = request_method(cli.method.as_deref(), body.is_some())?;
    let policy = match cli.mix.as_str() {
        "weighted" => Policy::Weighted,
        "random" => Policy::Random { seed: cli.seed },
        _ => Policy::RoundRobin,
    };
    let written = match (&cli.targets, &cli.urls) {
        (Some(f), _) => Some(targets::parse_targets(f).map_err(ConfigError::from)?),
        (None, Some(f)) => Some(targets::parse_urls(f, &method).map_err(ConfigError::from)?),
        _ => None,
    };
    let items = if let Some(written) = written {
        let mut cache = std::collections::HashMap::new();
        let mut items = targets::build_mix(&written, &headers, cli.keep_alive, &mut cache)
            .map_err(ConfigError::from)?;
        if let Some(b) = &body {
            // --urls with -b: the one body for every URL.
            for (w, item) in written.iter().zip(items.iter_mut()) {
                item.bytes =
                    targets::build_request(&w.method, &w.url, &headers, Some(b), cli.keep_alive);
            }
        }
        items
    } else {
        let url = url.expect("a URL without --targets or --urls");
        match &cli.raw {
            Some(list) => {
                let sources = targets::parse_raw_list(list).map_err(ConfigError::RawList)?;
                targets::load_raw(&sources, url).map_err(ConfigError::from)?
            }
            None => {
                let bytes =
                    targets::build_request(&method, url, &headers, body.as_deref(), cli.keep_alive);
                let label = format!("{method} {}{}", HostLabel(url), url.target);
                vec![targets::Item {
                    label,
                    url: url.clone(),
                    bytes,
                    head: method.eq_ignore_ascii_case("HEAD"),
                    weight: 1,
                }]
            }
        }
    };
    let mix = Mix::new(items, policy).map_err(ConfigError::from)?;
    if (cli.connections as usize) < mix.hosts.len() {
        return Err(ConfigError::FewerConnectionsThanHosts {
            connections: cli.connections,
            hosts: mix.hosts.len(),
        }
        .into());
    }
    Ok(mix)
}

/// `http://host:port` of a URL.
struct HostLabel<'a>(&'a Url);

impl fmt::Display for HostLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.0.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}", self.0.authority)
    }
}

/// File descriptors: raise the soft limit; say how if -c still does not fit.
fn check_fd_limit(cli: &Cli) -> Result<(), ConfigError> {
    let limit = raise_nofile_limit();
    // The embedded server holds the other end of every connection in this process.
    let per_conn = if cli.url.is_none() && cli.unix_socket.is_none() {
        2
    } else {
        1
    };
    let needed = cli.connections * per_conn + 64;
    if limit > 0 && needed > limit {
        return Err(ConfigError::TooFewFileDescriptors {
            connections: cli.connections,
            needed,
            limit,
        });
    }
    Ok(())
}

/// Where the connections go, what they send, and the embedded server when there is no
/// URL.
struct Target {
    mix: Mix,
    hosts: Vec<HostTarget>,
    embedded: Option<uring_server::RunningServer>,
}

/// The targets: from a file, a URL, a Unix socket, or the embedded server; each host
/// resolved once.
fn open_target(cli: &Cli, cores_all: &[core_affinity::CoreId]) -> Result<Target, Failure> {
    validate_mix(cli)?;
    let mut embedded = None;
    let url = match (&cli.url, &cli.unix_socket) {
        _ if cli.targets.is_some() || cli.urls.is_some() => None,
        (Some(s), _) => Some(parse_url(s)?),
        (None, Some(_)) => Some(parse_url("http://localhost/")?),
        (None, None) => {
            let server = start_embedded(cli, cores_all)?;
            let addr = server.local_addrs()[0];
            embedded = Some(server);
            Some(parse_url(&format!("http://{addr}/plaintext"))?)
        }
    };
    let mix = build_mix(cli, url.as_ref())?;
    let mut hosts = Vec::with_capacity(mix.hosts.len());
    for h in &mix.hosts {
        let url = &h.url;
        let address = match &cli.unix_socket {
            Some(p) => Address::Unix(p.clone()),
            None => Address::Inet(resolve(url, cli.timeout.min(Duration::from_secs(1)))?),
        };
        let tls = match url.scheme {
            Scheme::Http => None,
            Scheme::Https => Some(TlsTarget {
                config: tls::with_alpn(
                    tls::client_config(cli.insecure, cli.cacert.as_deref())?,
                    cli.http2,
                ),
                server_name: tls::server_name(&url.host)?,
            }),
        };
        hosts.push(HostTarget { address, tls });
    }
    Ok(Target {
        mix,
        hosts,
        embedded,
    })
}

/// The embedded uring-server on a loopback port, on other cores than the generator.
fn start_embedded(
    cli: &Cli,
    cores_all: &[core_affinity::CoreId],
) -> Result<uring_server::RunningServer, StartError> {
    let workers = if cores_all.len() >= 2 {
        (cores_all.len() - cli.threads as usize).max(1)
    } else {
        1
    };
    let server = uring_server::Server::builder()
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .workers(workers)
        .pin(!cli.no_pin && cores_all.len() >= 2)
        .tier(cli.tier)
        .start()
        .map_err(StartError::EmbeddedServer)?;
    if !cli.json {
        eprintln!(
            "embedded uring-server on {} ({workers} worker{}), benchmarking /plaintext",
            server.local_addrs()[0],
            if workers == 1 { "" } else { "s" }
        );
    }
    Ok(server)
}

/// The core of each load thread: from the last core down (servers, and the embedded
/// one, start at core 0), or none with `--no-pin`.
fn thread_cores(
    cli: &Cli,
    cores_all: &[core_affinity::CoreId],
) -> Vec<Option<core_affinity::CoreId>> {
    let threads = cli.threads as usize;
    if cli.no_pin || cores_all.is_empty() {
        return vec![None; threads];
    }
    (0..threads)
        .map(|i| Some(cores_all[cores_all.len() - 1 - (i % cores_all.len())]))
        .collect()
}

/// What the measured runs produced, merged.
struct Measured {
    merged: Recorder,
    /// Per target and host, merged over the runs.
    breakdown: Breakdown,
    elapsed: Duration,
    lines: Vec<RunLine>,
    interrupted: bool,
    tier: Option<Tier>,
    /// The warm-up's figures (`--warmup`), kept for the JSON.
    warmup: Option<(RunLine, Recorder)>,
    /// `--stages`: this process's ramp and the last run's rate per interval.
    /// `--stages-connections`: the connection ramp and the intended connections instead.
    rates: Option<(Ramp, Vec<RateRow>, &'static str)>,
}

/// Each interval's (start s, length s, responses) of the current run, for `--stages`.
#[derive(Clone, Default)]
struct RateLog(Arc<std::sync::Mutex<Vec<(f64, f64, u64)>>>);

/// The `--runs` measured runs, each printed when there are several (text mode).
fn measure(
    cli: &Cli,
    cfg: &LoadConfig,
    duration: Option<Duration>,
    timeline: &Timeline,
    rates: &RateLog,
) -> Result<Measured, Failure> {
    let mut m = Measured {
        merged: Recorder::new(),
        breakdown: Breakdown::default(),
        elapsed: Duration::ZERO,
        lines: Vec::new(),
        interrupted: false,
        tier: None,
        warmup: None,
        rates: None,
    };
    for k in 0..cli.runs {
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        // The rate table shows the last run.
        rates.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let progress = Arc::new(Progress::new(cfg.threads));
        let printer = timeline.live_view(progress.clone(), cli.requests, duration);
        let (run_cfg, over_time) = timeline.attach(cfg);
        let run = runner::run(&run_cfg, &progress);
        let logged = over_time.finish(run_cfg);
        drop(printer);
        let run = run?;
        logged.map_err(ReportError::LatencyLog)?;
        m.tier = Some(run.tier);
        m.interrupted |= run.interrupted;
        if cli.runs > 1 && !cli.json {
            let facts = RunFacts {
                total: cli.requests.unwrap_or(run.recorder.counters.started),
                elapsed: run.elapsed,
                interrupted: run.interrupted,
                rate: cli.rate,
                tier: Some(run.tier.to_string()),
                protocol: protocol_line(cli),
            };
            out(format_args!(
                "run {} of {}:\n{}{}\n",
                k + 1,
                cli.runs,
                report::text(&run.recorder, &facts),
                run.breakdown.text()
            ))?;
        }
        if k == 0 {
            m.breakdown = run.breakdown.clone();
        } else {
            // The same targets every run: they cannot differ.
            let _ = m.breakdown.merge(&run.breakdown);
        }
        m.lines.push(RunLine::of(&run.recorder, run.elapsed));
        m.merged.merge(&run.recorder);
        m.elapsed += run.elapsed;
    }
    Ok(m)
}

/// The final report: JSON, the `--runs` table, or the text report.
fn print_report(
    cli: &Cli,
    m: &Measured,
    id: &Identity,
    verdict: &Verdict,
) -> Result<(), ReportError> {
    let facts = RunFacts {
        total: cli
            .requests
            .map(|n| n * m.lines.len() as u64)
            .unwrap_or(m.merged.counters.started),
        elapsed: m.elapsed,
        interrupted: m.interrupted,
        rate: cli.rate,
        tier: m.tier.map(|t| t.to_string()),
        protocol: protocol_line(cli),
    };
    if cli.json {
        let mut v = report::json(&m.merged, &facts);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("schema_version".into(), SCHEMA_VERSION.into());
            m.breakdown.add_to(obj);
            id.add_to(obj);
            if let Some(t) = m.tier {
                obj.insert("tier".into(), t.to_string().into());
            }
            let protocol = if cli.http2 { "HTTP/2" } else { "HTTP/1.1" };
            obj.insert("protocol".into(), protocol.into());
            if let Some(chosen) = &cli.alpn_chosen {
                obj.insert("alpn".into(), chosen.as_str().into());
            }
            if let Some(p) = uring_load::h2conn::server_settings().filter(|_| cli.http2) {
                obj.insert("server_settings".into(), settings_json(&p));
            }
            if cli.http2 {
                obj.insert("retried".into(), uring_load::h2conn::retried().into());
            }
            if cli.http2 {
                obj.insert("streams".into(), in_flight(cli).into());
            }
            if m.lines.len() > 1 {
                let rps: Vec<f64> = m.lines.iter().map(|l| l.rps).collect();
                let (mean, sd) = report::mean_stdev(&rps);
                obj.insert(
                    "runs".into(),
                    serde_json::json!({
                        "count": m.lines.len(),
                        "rps": rps,
                        "rps_mean": mean,
                        "rps_stdev": sd,
                        "p50_us": m.lines.iter().map(|l| l.p50).collect::<Vec<_>>(),
                        "p99_us": m.lines.iter().map(|l| l.p99).collect::<Vec<_>>(),
                    }),
                );
            }
            if let Some((line, rec)) = &m.warmup {
                let s = uring_common::stats::Summary::of(rec);
                obj.insert(
                    "warmup".into(),
                    serde_json::json!({
                        "rps": line.rps,
                        "latency_us": { "p50": s.p50, "p99": s.p99, "p99_9": s.p99_9 },
                    }),
                );
            }
            if let Some((ramp, rows, what)) = &m.rates {
                let intended = if *what == "rate" {
                    "intended_rps"
                } else {
                    "connections"
                };
                obj.insert(
                    "stages".into(),
                    serde_json::json!({
                        "spec": ramp.describe(),
                        "of": what,
                        "intervals": rows.iter().map(|r| serde_json::json!({
                            "t_s": r.start,
                            "length_s": r.length,
                            intended: r.intended,
                            "rps": r.achieved,
                        })).collect::<Vec<_>>(),
                    }),
                );
            }
            if !verdict.outcomes.is_empty() {
                obj.insert("thresholds".into(), thresholds::json(&verdict.outcomes));
            }
            if let Some(c) = &verdict.comparison {
                obj.insert("baseline".into(), baseline::json(c));
            }
        }
        out(format_args!("{v}\n"))
    } else if m.lines.len() > 1 {
        out(format_args!(
            "{}{}{}{}{}",
            id.text_line(),
            report::runs_text(&m.lines),
            m.breakdown.text(),
            rate_text(m),
            verdict.text()
        ))
    } else {
        out(format_args!(
            "{}{}{}{}{}",
            id.text_line(),
            report::text(&m.merged, &facts),
            m.breakdown.text(),
            rate_text(m),
            verdict.text()
        ))
    }
}

/// `--stages`: the rate table (intended and achieved per interval).
fn rate_text(m: &Measured) -> String {
    match &m.rates {
        Some((ramp, rows, what)) => stages::rate_table(Some(ramp), rows, what),
        None => String::new(),
    }
}

/// This process's place in a run across machines.
struct Sharding {
    shard: Shard,
    run_id: String,
}

impl Sharding {
    /// From `--shard`/`--shards` (+ JOB_COMPLETION_INDEX), `--run-id`, `--start-at`.
    fn from_cli(cli: &Cli) -> Result<Sharding, ConfigError> {
        let env = cli
            .shards
            .and_then(|_| std::env::var(shard::JOB_INDEX_ENV).ok());
        let shard = Shard::from_flags(cli.shard.as_deref(), cli.shards, env.as_deref())?;
        if let Some(at) = cli.start_at {
            // Refuse at once rather than after the set-up.
            shard::until_start(at, SystemTime::now())?;
        }
        let run_id = match &cli.run_id {
            Some(id) => {
                shard::check_run_id(id)?;
                id.clone()
            }
            None => shard::derive_run_id(&[
                ("url", cli.url.clone().unwrap_or_default()),
                (
                    "unix",
                    cli.unix_socket
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                ),
                ("n", format!("{:?}", cli.requests)),
                ("R", format!("{:?}", cli.rate)),
                ("d", format!("{:?}", cli.duration)),
                ("c", cli.connections.to_string()),
                ("t", cli.threads.to_string()),
                ("k", cli.keep_alive.to_string()),
                ("K", in_flight(cli).to_string()),
                ("m", format!("{:?}", cli.method)),
                ("H", cli.headers.join("\n")),
                (
                    "targets",
                    format!("{:?} {:?} {:?}", cli.targets, cli.urls, cli.raw),
                ),
                ("mix", format!("{} {}", cli.mix, cli.seed)),
                ("shards", shard.count.to_string()),
                (
                    "start_at",
                    cli.start_at.map(shard::unix_us).unwrap_or(0).to_string(),
                ),
            ]),
        };
        Ok(Sharding { shard, run_id })
    }
}

/// Sleep until `at` (wall clock); false if Ctrl-C came first.
fn wait_until(at: SystemTime) -> Result<bool, ConfigError> {
    loop {
        let left = shard::until_start(at, SystemTime::now())?;
        if left.is_zero() {
            return Ok(true);
        }
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Who made a report and when: the fields `merge` checks and shows.
struct Identity {
    sharding: Sharding,
    host: String,
    started_at: SystemTime,
    ended_at: SystemTime,
}

impl Identity {
    fn add_to(&self, obj: &mut serde_json::Map<String, serde_json::Value>) {
        obj.insert("run_id".into(), self.sharding.run_id.clone().into());
        obj.insert("host".into(), self.host.clone().into());
        obj.insert(
            "started_at".into(),
            shard::format_time(self.started_at).into(),
        );
        obj.insert("ended_at".into(), shard::format_time(self.ended_at).into());
        let s = self.sharding.shard;
        if !s.is_whole() {
            obj.insert(
                "shard".into(),
                serde_json::json!({ "index": s.index, "count": s.count }),
            );
        }
    }

    /// The text report's first line for a shard (nothing for a whole run).
    fn text_line(&self) -> String {
        let s = self.sharding.shard;
        if s.is_whole() {
            return String::new();
        }
        format!(
            "shard {s} of run {} on {}, {} .. {}\n",
            self.sharding.run_id,
            self.host,
            shard::format_time(self.started_at),
            shard::format_time(self.ended_at)
        )
    }
}
