//! `uring-server`: the command line over the library's builder. Parses flags, starts the
//! workers, logs the tier, then waits for SIGTERM/SIGINT: the first drains gracefully
//! (exit 0), a second exits at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use uring_server::{AccessLogTarget, Limits, Server, TierChoice, Timeouts};

/// A thread-per-core io_uring HTTP/1.1 server: /plaintext, /json and static files.
#[derive(Parser, Debug)]
#[command(name = "uring-server", version, about)]
struct Cli {
    /// Address to listen on (repeatable; IPv4 or IPv6, e.g. [::]:8080).
    #[arg(long = "listen", value_name = "ADDR", default_value = "0.0.0.0:8080")]
    listen: Vec<SocketAddr>,

    /// Worker threads, one ring each (default: the online CPUs).
    #[arg(short = 'w', long, value_name = "N")]
    workers: Option<usize>,

    /// Do not pin worker i to core i.
    #[arg(long)]
    no_pin: bool,

    /// Serve static files from this directory.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Kernel interface: io_uring tier basic (5.10), multishot (5.19), full (6.1), or epoll;
    /// auto takes the best io_uring tier, or epoll when io_uring is forbidden or missing.
    #[arg(long, value_name = "TIER", default_value = "auto", value_parser = parse_tier)]
    tier: TierChoice,

    /// Write one line per request to PATH, or `-` for stdout.
    #[arg(long, value_name = "PATH|-")]
    access_log: Option<String>,

    /// Largest request head in bytes (431 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024)]
    max_head_bytes: usize,

    /// Most header fields per request (431 beyond).
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_headers: usize,

    /// Longest request target in bytes (414 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 8 * 1024)]
    max_target_bytes: usize,

    /// Largest request body in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    max_body_bytes: u64,

    /// Open connections per worker; beyond it new ones wait in the backlog.
    #[arg(long, value_name = "N", default_value_t = 16 * 1024)]
    max_conns: usize,

    /// listen(2) backlog.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    backlog: i32,

    /// Submission queue entries per worker ring (a power of two).
    #[arg(long, value_name = "N", default_value_t = 2048)]
    sq_entries: u32,

    /// Completion queue entries per worker ring (a power of two, >= --sq-entries). Small
    /// values only make sense to exercise CQ overflow handling.
    #[arg(long, value_name = "N", default_value_t = 16384)]
    cq_entries: u32,

    /// Time to receive a complete request head, e.g. 10s, 500ms (slowloris guard).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    header_timeout: Duration,

    /// Time to receive a whole request body, from the end of its head (a body that
    /// trickles in slower is answered 408 and the connection closed).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    body_timeout: Duration,

    /// Idle time before a keep-alive connection is closed.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    keepalive_timeout: Duration,

    /// How long a graceful shutdown waits for in-flight requests.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    drain_timeout: Duration,
}

fn parse_tier(s: &str) -> Result<TierChoice, String> {
    s.parse()
}

/// `10s`, `500ms`, `2m` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}': expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("invalid duration unit in '{s}': use ms, s or m")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration '{s}'"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: plain sigset manipulation on a local; the mask is inherited by the workers,
    // so the signals are only ever taken by sigwait below.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        set
    }
}

fn wait_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: set is initialised; sig is a valid out pointer.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

/// A signal from `set`, or None after `timeout`.
fn wait_signal_for(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: set and ts are initialised; a null siginfo pointer is allowed.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workers = cli.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let access_log = cli.access_log.as_deref().map(|p| {
        if p == "-" {
            AccessLogTarget::Stdout
        } else {
            AccessLogTarget::File(PathBuf::from(p))
        }
    });
    let sigset = block_signals();
    let mut builder = Server::builder()
        .workers(workers)
        .pin(!cli.no_pin)
        .tier(cli.tier)
        .limits(Limits {
            max_head_bytes: cli.max_head_bytes,
            max_headers: cli.max_headers,
            max_target_bytes: cli.max_target_bytes,
            max_body_bytes: cli.max_body_bytes,
        })
        .timeouts(Timeouts {
            header_read: cli.header_timeout,
            body_read: cli.body_timeout,
            keep_alive: cli.keepalive_timeout,
            drain: cli.drain_timeout,
        })
        .max_connections_per_worker(cli.max_conns)
        .backlog(cli.backlog)
        .ring_entries(cli.sq_entries, cli.cq_entries)
        .access_log(access_log);
    for addr in &cli.listen {
        builder = builder.listen(*addr);
    }
    if let Some(root) = &cli.root {
        builder = builder.root(root);
    }
    let server = match builder.start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("uring-server: {e}");
            return ExitCode::from(1);
        }
    };
    let addrs: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
    eprintln!(
        "uring-server: listening on {} with {workers} worker(s), tier {}{}{}",
        addrs.join(", "),
        server.tier(),
        server
            .tier_fallback()
            .map(|why| format!(" ({why})"))
            .unwrap_or_default(),
        if cli.no_pin { ", unpinned" } else { "" }
    );

    // Wait for a signal; meanwhile notice a worker whose ring failed.
    let first = loop {
        if let Some(sig) = wait_signal_for(&sigset, Duration::from_secs(1)) {
            break sig;
        }
        if server.any_worker_exited() {
            eprintln!("uring-server: a worker stopped unexpectedly (see above); exiting");
            server.begin_shutdown();
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "uring-server: signal {first}, draining (up to {:?}; signal again to exit at once)",
        cli.drain_timeout
    );
    server.begin_shutdown();
    std::thread::spawn(move || {
        server.join();
        eprintln!("uring-server: drained, exiting");
        std::process::exit(0);
    });
    wait_signal(&sigset);
    eprintln!("uring-server: second signal, exiting now");
    ExitCode::from(130)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5h").is_err());
    }
}
