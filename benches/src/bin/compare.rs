//! compare: runs every server against every load tool and workload, side by side, pinned
//! to separate CPUs, and writes Markdown, JSON and SVG results. `compare seed` rebuilds
//! the seed's gunicorn table with our rows added. See docs/benchmarks-harness.md.

use clap::{Args as ClapArgs, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use uring_benches::harness::compare::{self, default_cpus, parse_cpu_list, Options};
use uring_benches::harness::seed;
use uring_benches::harness::servers::Server;
use uring_benches::harness::tools::{Tool, Workload};

#[derive(Debug, Parser)]
#[command(
    about = "Side-by-side benchmarks of uring-server and its peers under several load tools",
    after_help = "Servers: uring-server nginx hyper-server tokio-uring-server floor\n\
                  Named only: uring-server-read uring-server-splice uring-server-splice-ring uring-server-memory \
                  uring-server-obs uring-server-tls nginx-tls uring-proxy nginx-proxy \
                  uring-gateway nginx-gateway uring-uwsgi nginx-uwsgi\n\
                  Tools: uring-load wrk h2load ab\n\
                  Workloads: ka64 ka256 pipe16 close file64k rate"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    compare: CompareArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Rebuild the seed's gunicorn table (CPython and PyPy, -w 1,2,3,4,6) with our rows.
    Seed(seed::SeedArgs),
}

#[derive(Debug, ClapArgs)]
struct CompareArgs {
    /// One short run per cell, no warm-up: a smoke test, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Servers to measure (comma-separated).
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// Load tools to use (comma-separated).
    #[arg(long, value_delimiter = ',')]
    tools: Vec<String>,
    /// Workloads to run (comma-separated).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Measured runs per cell [default: 3, or 1 with --quick].
    #[arg(long)]
    runs: Option<usize>,
    /// Seconds per measured run [default: 5, or 1 with --quick]. wrk, h2load and ab
    /// round up to whole seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of warm-up per cell [default: 1, or 0 with --quick].
    #[arg(long)]
    warmup: Option<f64>,
    /// Requests per second of the fixed-rate workload.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Output directory.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// CPUs for the server [default: the first allowed CPU].
    #[arg(long)]
    server_cpus: Option<String>,
    /// CPUs for the load tool [default: the other allowed CPUs].
    #[arg(long)]
    load_cpus: Option<String>,
    /// Where uring-server, uring-load and the baselines are [default: beside this binary].
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Seconds a run may overrun its duration before it is killed and marked failed.
    #[arg(long, default_value_t = 20.0)]
    overrun: f64,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

fn pick<T: Copy>(
    names: &[String],
    all: &[T],
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Vec<T> {
    if names.is_empty() {
        return all.to_vec();
    }
    names
        .iter()
        .map(|n| parse(n.trim()).unwrap_or_else(|| fail(format!("unknown {what} {n:?}"))))
        .collect()
}

fn secs(s: f64, what: &str) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_else(|_| fail(format!("bad {what} {s}")))
}

fn bin_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.to_path_buf()))
            .unwrap_or_else(|| PathBuf::from("."))
    })
}

fn main() {
    let cli = Cli::parse();
    uring_benches::harness::proc::stop_children_on_signal();
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    if let Some(Command::Seed(args)) = cli.command {
        let dir = bin_dir(args.bin_dir.clone());
        match seed::run(&args, &dir, &command_line) {
            Ok(out) => eprintln!("seed study written to {}", out.display()),
            Err(e) => fail(e),
        }
        return;
    }
    let a = cli.compare;
    let (def_server, def_load) = default_cpus();
    let server_cpus = a
        .server_cpus
        .as_deref()
        .map(|s| parse_cpu_list(s).unwrap_or_else(|e| fail(e)))
        .unwrap_or(def_server);
    let load_cpus = a
        .load_cpus
        .as_deref()
        .map(|s| parse_cpu_list(s).unwrap_or_else(|e| fail(e)))
        .unwrap_or(def_load);
    let opts = Options {
        servers: pick(&a.servers, &Server::ALL, Server::parse_name, "server"),
        tools: pick(&a.tools, &Tool::ALL, Tool::parse_name, "tool"),
        workloads: pick(
            &a.workloads,
            &Workload::ALL,
            Workload::parse_name,
            "workload",
        ),
        runs: a.runs.unwrap_or(if a.quick { 1 } else { 3 }).max(1),
        duration: secs(
            a.duration.unwrap_or(if a.quick { 1.0 } else { 5.0 }),
            "--duration",
        ),
        warmup: secs(
            a.warmup.unwrap_or(if a.quick { 0.0 } else { 1.0 }),
            "--warmup",
        ),
        rate: a.rate.max(1),
        out: a.out,
        server_cpus,
        load_cpus,
        bin_dir: bin_dir(a.bin_dir),
        overrun: secs(a.overrun, "--overrun"),
        command: command_line,
    };
    match compare::run(&opts) {
        Ok(report) => {
            let failed = report
                .cells
                .iter()
                .filter(|c| c.status == uring_benches::harness::report::Status::Failed)
                .count();
            eprintln!(
                "{} cells ({} failed) written to {}",
                report.cells.len(),
                failed,
                opts.out.display()
            );
        }
        Err(e) => fail(e),
    }
}
