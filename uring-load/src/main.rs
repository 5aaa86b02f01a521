//! The `uring-load` command: weighttp's and wrk's flags over the io_uring engine.
//!
//! Exit codes: 0 the run finished (whatever the server answered), 1 the run could not
//! start (ring denied, server failed), 2 bad input (one line on stderr says which), 130
//! interrupted by Ctrl-C (the partial report is still printed).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use uring_common::http::serialize::write_request_head;
use uring_common::ring::{raise_nofile_limit, TierChoice};
use uring_common::stats::summary::{recorder_from_json, report_json};
use uring_common::stats::Recorder;
use uring_load::conn::ConnSpec;
use uring_load::engine::{self, LoadConfig, Progress, TlsTarget, INTERRUPTED};
use uring_load::report::{self, ProgressPrinter, RunFacts, RunLine};
use uring_load::target::{parse_url, resolve, Address, Scheme};
use uring_load::timeline::Timeline;
use uring_load::{tls, units};

#[derive(Parser, Debug)]
#[command(
    name = "uring-load",
    version,
    about = "io_uring HTTP/1.1 load generator with weighttp's and wrk's flags",
    long_about = "io_uring HTTP/1.1 load generator with weighttp's and wrk's flags.\n\n\
        Without a URL it starts the embedded uring-server on a loopback port (on other \
        cores than the generator when there are two or more) and benchmarks it.\n\n\
        `uring-load merge A.json B.json ...` merges --json reports of runs made on several \
        machines into one exact report.\n\n\
        `uring-load report RUN.json|LOG ... [--svg OUT.svg] [--html OUT.html]` draws the \
        latency percentile distribution and, from --latency-log files, requests/s and p99 \
        over time.",
    after_help = "Examples:\n  uring-load -n 10000 -c 200 -t 3 -k http://127.0.0.1:8000/\n  \
        uring-load -d 10s -c 64 -k -R 50k http://127.0.0.1:8080/\n  \
        uring-load --json -n 1M -c 64 -k > run.json"
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

    /// Pipelining depth: requests in flight per connection (needs -k).
    #[arg(short = 'K', long = "pipeline", value_name = "N", default_value = "1", value_parser = units::parse_count)]
    pipeline: u64,

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

    /// Connect to this Unix socket instead of the URL's host (the URL still gives the
    /// path and Host header).
    #[arg(long = "unix-socket", value_name = "PATH")]
    unix_socket: Option<PathBuf>,

    /// io_uring tier: auto, basic (5.10), multishot (5.19) or full (6.1).
    #[arg(long = "tier", value_name = "TIER", default_value = "auto")]
    tier: TierChoice,

    /// No progress output on stderr.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,

    /// Write latency over time to FILE: one interval histogram per --interval in
    /// HdrHistogram's histogram log format (HistogramLogProcessor and `uring-load report`
    /// read it; values in microseconds).
    #[arg(long = "latency-log", value_name = "FILE")]
    latency_log: Option<PathBuf>,

    /// Length of the latency log's intervals.
    #[arg(long = "interval", value_name = "DURATION", default_value = "1s", value_parser = units::parse_duration)]
    interval: Duration,
}

/// A usage error: one line, exit 2.
fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("uring-load: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("merge") {
        return merge(&args[2..]);
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
            return usage(line.trim_start_matches("error: "));
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(Failure::Usage(m)) => usage(m),
        Err(Failure::Runtime(m)) => {
            eprintln!("uring-load: {m}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(String),
    Runtime(String),
}

fn merge(files: &[String]) -> ExitCode {
    if files.is_empty() {
        return usage("merge needs at least one JSON report: uring-load merge A.json B.json ...");
    }
    let mut merged = Recorder::new();
    let mut elapsed: f64 = 0.0;
    for f in files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => return usage(format!("cannot read {f}: {e}")),
        };
        let v: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => return usage(format!("{f} is not JSON: {e}")),
        };
        match recorder_from_json(&v) {
            Ok((rec, secs)) => {
                merged.merge(&rec);
                // Runs on several machines at once: the merged run lasted as long as the longest.
                elapsed = elapsed.max(secs);
            }
            Err(e) => return usage(format!("{f} is not a uring-load report: {e}")),
        }
    }
    println!("{}", report_json(&merged, elapsed));
    ExitCode::SUCCESS
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

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let u = Failure::Usage;
    if cli.connections == 0 {
        return Err(u("-c must be at least 1 connection".into()));
    }
    if cli.threads == 0 {
        return Err(u("-t must be at least 1 thread".into()));
    }
    if cli.connections < cli.threads {
        return Err(u(format!(
            "fewer connections (-c {}) than threads (-t {}): every thread needs at least one connection",
            cli.connections, cli.threads
        )));
    }
    if cli.pipeline == 0 {
        return Err(u("-K must be at least 1".into()));
    }
    if cli.pipeline > 1 && !cli.keep_alive {
        return Err(u("pipelining (-K) needs keep-alive (-k)".into()));
    }
    if cli.pipeline > 1024 {
        return Err(u(
            "-K is limited to 1024 requests in flight per connection".into()
        ));
    }
    if cli.requests == Some(0) {
        return Err(u("-n must be at least 1 request".into()));
    }
    if cli.runs == 0 {
        return Err(u("--runs must be at least 1".into()));
    }
    if cli.duration.is_some_and(|d| d.is_zero()) {
        return Err(u("-d must be longer than 0".into()));
    }
    if cli.timeout.is_zero() {
        return Err(u("-T must be longer than 0".into()));
    }
    let timeline = Timeline::new(cli.latency_log.as_deref(), cli.interval).map_err(u)?;
    let duration = match (cli.requests, cli.duration) {
        (None, None) => Some(Duration::from_secs(10)),
        (_, d) => d,
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for h in &cli.headers {
        let Some((name, value)) = h.split_once(':') else {
            return Err(u(format!("bad header '{h}': expected \"Name: value\"")));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Err(u(format!("bad header '{h}': invalid header name")));
        }
        let value = value.trim();
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(u(format!(
                "bad header '{h}': control characters in the value"
            )));
        }
        headers.push((name.to_string(), value.to_string()));
    }
    let body = match &cli.body {
        Some(p) => Some(
            std::fs::read(p)
                .map_err(|e| u(format!("cannot read body file {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let method = cli
        .method
        .clone()
        .unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.to_string());
    if method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(u(format!("bad method '{method}'")));
    }
    // File descriptors: raise the soft limit; say how if -c still does not fit.
    let limit = raise_nofile_limit();
    // The embedded server holds the other end of every connection in this process.
    let per_conn = if cli.url.is_none() && cli.unix_socket.is_none() {
        2
    } else {
        1
    };
    let needed = cli.connections * per_conn + 64;
    if limit > 0 && needed > limit {
        return Err(u(format!(
            "-c {} needs about {needed} file descriptors but the limit is {limit}: raise it with `ulimit -n {needed}` (or in limits.conf) and run again",
            cli.connections
        )));
    }

    let cores_all = core_affinity::get_core_ids().unwrap_or_default();

    // The target: a URL, a Unix socket, or the embedded server.
    let mut embedded = None;
    let url = match (&cli.url, &cli.unix_socket) {
        (Some(s), _) => parse_url(s).map_err(u)?,
        (None, Some(_)) => parse_url("http://localhost/").map_err(u)?,
        (None, None) => {
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
                .map_err(|e| Failure::Runtime(format!("embedded server: {e}")))?;
            let addr = server.local_addrs()[0];
            if !cli.json {
                eprintln!(
                    "embedded uring-server on {addr} ({workers} worker{}), benchmarking /plaintext",
                    if workers == 1 { "" } else { "s" }
                );
            }
            embedded = Some(server);
            parse_url(&format!("http://{addr}/plaintext")).map_err(u)?
        }
    };
    let address = match &cli.unix_socket {
        Some(p) => Address::Unix(p.clone()),
        None => Address::Inet(resolve(&url, cli.timeout.min(Duration::from_secs(1))).map_err(u)?),
    };
    let tls_target = match url.scheme {
        Scheme::Http => None,
        Scheme::Https => Some(TlsTarget {
            config: tls::client_config(cli.insecure).map_err(Failure::Runtime)?,
            server_name: tls::server_name(&url.host).map_err(u)?,
        }),
    };

    // One request, serialized once.
    let host = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| url.authority.clone());
    let extra: Vec<(&str, &[u8])> = headers
        .iter()
        .filter(|(n, _)| {
            !n.eq_ignore_ascii_case("host")
                && !n.eq_ignore_ascii_case("content-length")
                && !n.eq_ignore_ascii_case("connection")
        })
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let mut request = Vec::new();
    write_request_head(
        &mut request,
        &method,
        &url.target,
        &host,
        &extra,
        body.as_ref().map(|b| b.len() as u64),
        cli.keep_alive,
    );
    if let Some(b) = &body {
        request.extend_from_slice(b);
    }

    let threads = cli.threads as usize;
    let cores: Vec<Option<core_affinity::CoreId>> = if cli.no_pin || cores_all.is_empty() {
        vec![None; threads]
    } else {
        // From the last core down: servers (and the embedded one) start at core 0.
        (0..threads)
            .map(|i| Some(cores_all[cores_all.len() - 1 - (i % cores_all.len())]))
            .collect()
    };
    let cfg = LoadConfig {
        address,
        tls: tls_target,
        request,
        conn: ConnSpec {
            keep_alive: cli.keep_alive,
            depth: cli.pipeline as usize,
            head_request: method.eq_ignore_ascii_case("HEAD"),
            max_head_bytes: 64 * 1024,
        },
        connections: cli.connections as usize,
        threads,
        requests: cli.requests,
        duration,
        timeout: cli.timeout,
        rate: cli.rate,
        cores,
        tier: cli.tier,
        intervals: None,
    };

    install_sigint();
    if let Some(w) = cli.warmup {
        let warm = LoadConfig {
            requests: None,
            duration: Some(w),
            ..cfg.clone()
        };
        engine::run(&warm, &Progress::new(threads)).map_err(Failure::Runtime)?;
    }

    let mut merged = Recorder::new();
    let mut elapsed_total = Duration::ZERO;
    let mut lines = Vec::new();
    let mut interrupted = false;
    let mut last_tier = None;
    for k in 0..cli.runs {
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let progress = Arc::new(Progress::new(threads));
        let printer =
            (!cli.quiet).then(|| ProgressPrinter::start(progress.clone(), cli.requests, duration));
        let (run_cfg, over_time) = timeline.attach(&cfg);
        let out = engine::run(&run_cfg, &progress).map_err(Failure::Runtime)?;
        over_time.finish(run_cfg).map_err(Failure::Runtime)?;
        drop(printer);
        last_tier = Some(out.tier);
        interrupted |= out.interrupted;
        let facts = RunFacts {
            total: cli.requests.unwrap_or(out.recorder.counters.started),
            elapsed: out.elapsed,
            interrupted: out.interrupted,
            rate: cli.rate,
            tier: Some(out.tier.to_string()),
        };
        if cli.runs > 1 && !cli.json {
            println!("run {} of {}:", k + 1, cli.runs);
            print!("{}", report::text(&out.recorder, &facts));
            println!();
        }
        lines.push(RunLine::of(&out.recorder, out.elapsed));
        merged.merge(&out.recorder);
        elapsed_total += out.elapsed;
    }
    if let Some(server) = embedded {
        server.shutdown();
    }
    let facts = RunFacts {
        total: cli
            .requests
            .map(|n| n * lines.len() as u64)
            .unwrap_or(merged.counters.started),
        elapsed: elapsed_total,
        interrupted,
        rate: cli.rate,
        tier: last_tier.map(|t| t.to_string()),
    };
    if cli.json {
        let mut v = report::json(&merged, &facts);
        if let Some(obj) = v.as_object_mut() {
            if let Some(t) = last_tier {
                obj.insert("tier".into(), t.to_string().into());
            }
            if lines.len() > 1 {
                let rps: Vec<f64> = lines.iter().map(|l| l.rps).collect();
                let (m, sd) = report::mean_stdev(&rps);
                obj.insert(
                    "runs".into(),
                    serde_json::json!({
                        "count": lines.len(),
                        "rps": rps,
                        "rps_mean": m,
                        "rps_stdev": sd,
                    }),
                );
            }
        }
        println!("{v}");
    } else if lines.len() > 1 {
        print!("{}", report::runs_text(&lines));
    } else {
        print!("{}", report::text(&merged, &facts));
    }
    Ok(if interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}
