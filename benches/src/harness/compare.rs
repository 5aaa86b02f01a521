//! The comparison's run loop: for each server, start it pinned, then for each workload
//! and tool warm up, run the tool N times pinned to the other CPUs, and measure both
//! sides' CPU. Every run is bounded; a run that overruns is killed and recorded as failed,
//! and the comparison goes on. Results go to `--out` as Markdown, JSON and SVG.

use super::chart::{bar_chart, Bar};
use super::proc::{run_bounded, tree_cpu_seconds, ServerProcess};
use super::report::{Cell, Machine, Report, Run, Settings, Status};
use super::servers::{self, Server, ServerEnv};
use super::tools::{self, RunSpec, Tool, Workload};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Options {
    pub servers: Vec<Server>,
    pub tools: Vec<Tool>,
    pub workloads: Vec<Workload>,
    pub runs: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub rate: u64,
    pub out: PathBuf,
    pub server_cpus: Vec<usize>,
    pub load_cpus: Vec<usize>,
    pub bin_dir: PathBuf,
    /// Slack beyond a run's own duration before it is killed.
    pub overrun: Duration,
    /// The command line, recorded in the report.
    pub command: String,
}

/// Server CPU on the first allowed CPU, load on the rest (the same CPU if there is one).
pub fn default_cpus() -> (Vec<usize>, Vec<usize>) {
    let all = crate::peer::allowed_cpus();
    if all.len() >= 2 {
        (vec![all[0]], all[1..].to_vec())
    } else {
        (all.clone(), all)
    }
}

/// `0`, `0,2`, `1-3` -> CPU numbers.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list {s:?}");
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (usize, usize) =
                (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            out.extend(a..=b);
        } else {
            out.push(part.parse().map_err(|_| bad())?);
        }
    }
    if out.is_empty() {
        return Err(format!("empty CPU list {s:?}"));
    }
    Ok(out)
}

/// A progress line on stderr: rewritten in place on a terminal, one line per step otherwise.
pub struct Progress {
    total: usize,
    done: usize,
    tty: bool,
    started: Instant,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    pub fn step(&mut self) {
        self.done += 1;
    }

    pub fn show(&self, what: &str) {
        let line = format!(
            "progress: [{}/{}] {:>4}s {}",
            self.done.min(self.total),
            self.total,
            self.started.elapsed().as_secs(),
            what
        );
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[K{line}");
        } else {
            let _ = writeln!(e, "{line}");
        }
        let _ = e.flush();
    }

    pub fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

fn tool_path(tool: Tool, opts: &Options) -> Result<PathBuf, String> {
    match tool {
        Tool::UringLoad | Tool::UringLoadEpoll => {
            let p = opts.bin_dir.join("uring-load");
            if servers::is_executable(&p) {
                Ok(p)
            } else {
                Err(format!("{} is not built", p.display()))
            }
        }
        other => {
            if servers::on_path(other.name()) {
                Ok(PathBuf::from(other.name()))
            } else {
                Err(format!(
                    "{} is not installed (scripts/bench-install.sh)",
                    other.name()
                ))
            }
        }
    }
}

fn free_loopback() -> Result<SocketAddr, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free loopback port: {e}"))
}

pub fn run(opts: &Options) -> Result<Report, String> {
    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let scratch = std::env::temp_dir().join(format!("uring-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let env = ServerEnv {
        bin_dir: opts.bin_dir.clone(),
        scratch: scratch.clone(),
    };
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let total = opts.servers.len() * opts.workloads.len() * opts.tools.len();
    let mut progress = Progress::new(total);
    let mut cells = Vec::new();
    for &server in &opts.servers {
        let mut proc: Option<(ServerProcess, SocketAddr)> = None;
        for &w in &opts.workloads {
            for &tool in &opts.tools {
                let label = format!("{} × {} × {}", server.name(), tool.name(), w.name());
                progress.show(&label);
                let cell = run_cell(
                    opts,
                    &env,
                    server,
                    tool,
                    w,
                    &mut proc,
                    &mut progress,
                    &label,
                );
                if let Some(r) = cell.rps {
                    progress.show(&format!(
                        "{label}: {} req/s",
                        super::report::thousands(r.median)
                    ));
                } else if cell.status == Status::Failed {
                    progress.show(&format!("{label}: failed"));
                }
                progress.step();
                cells.push(cell);
            }
        }
        drop(proc);
    }
    progress.finish();
    let report = Report {
        command: opts.command.clone(),
        versions: super::report::peer_versions(),
        started_unix,
        machine: Machine::probe(&opts.server_cpus, &opts.load_cpus),
        settings: Settings {
            duration_s: opts.duration.as_secs_f64(),
            warmup_s: opts.warmup.as_secs_f64(),
            runs: opts.runs,
            rate: opts.rate,
        },
        cells,
    };
    write_outputs(&report, opts)?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn run_cell(
    opts: &Options,
    env: &ServerEnv,
    server: Server,
    tool: Tool,
    w: Workload,
    proc: &mut Option<(ServerProcess, SocketAddr)>,
    progress: &mut Progress,
    label: &str,
) -> Cell {
    let (s, t, wn) = (server.name(), tool.name(), w.name());
    if let Some(why) = server.not_applicable(w, tool) {
        return Cell::empty(s, t, wn, Status::NotApplicable, why);
    }
    let spec_probe = RunSpec {
        base_url: String::new(),
        duration: opts.duration,
        threads: opts.load_cpus.len(),
        rate: opts.rate,
        uring_load: &opts.bin_dir,
        scratch: &env.scratch,
    };
    if let Err(why) = tools::command(tool, w, &spec_probe) {
        return Cell::empty(s, t, wn, Status::NotApplicable, why);
    }
    let tool_bin = match tool_path(tool, opts) {
        Ok(p) => p,
        Err(e) => return Cell::empty(s, t, wn, Status::Failed, e),
    };
    // (Re)start the server if it is not running (first cell, or it died in a previous one).
    let alive = proc.as_mut().map(|(p, _)| p.alive()).unwrap_or(false);
    if !alive {
        *proc = None;
        let addr = match free_loopback() {
            Ok(a) => a,
            Err(e) => return Cell::empty(s, t, wn, Status::Failed, e),
        };
        match servers::start(server, addr, &opts.server_cpus, opts.server_cpus.len(), env) {
            Ok(p) => *proc = Some((p, addr)),
            Err(e) => return Cell::empty(s, t, wn, Status::Failed, e),
        }
    }
    let (server_proc, addr) = proc.as_mut().expect("started above");
    let spec = |duration| RunSpec {
        base_url: format!("{}://{addr}", if server.tls() { "https" } else { "http" }),
        duration,
        threads: opts.load_cpus.len(),
        rate: opts.rate,
        uring_load: &tool_bin,
        scratch: &env.scratch,
    };
    let mut failures = Vec::new();
    if !opts.warmup.is_zero() {
        progress.show(&format!("{label}: warm-up"));
        let argv = tools::command(tool, w, &spec(opts.warmup)).expect("checked above");
        let limit = opts.warmup.max(Duration::from_secs(1)) + opts.overrun;
        let _ = run_bounded(&argv, &opts.load_cpus, limit, &env.scratch);
    }
    let mut runs = Vec::new();
    for r in 1..=opts.runs {
        if !server_proc.alive() {
            failures.push(format!("{s} exited"));
            break;
        }
        progress.show(&format!("{label}: run {r}/{}", opts.runs));
        let argv = tools::command(tool, w, &spec(opts.duration)).expect("checked above");
        let limit = opts.duration.max(Duration::from_secs(1)) + opts.overrun;
        let cpu_before = tree_cpu_seconds(server_proc.pid());
        let out = match run_bounded(&argv, &opts.load_cpus, limit, &env.scratch) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("cannot run {t}: {e}"));
                continue;
            }
        };
        let server_cpu = tree_cpu_seconds(server_proc.pid()) - cpu_before;
        if out.timed_out {
            failures.push(format!("run {r} overran {limit:?} and was killed"));
            continue;
        }
        match tools::parse(tool, w, &out.stdout) {
            Ok(rep) if rep.rps > 0.0 && rep.done > 0 => {
                let per = |secs: f64| Some(secs * 1e6 / rep.done as f64);
                runs.push(Run {
                    rps: rep.rps,
                    done: rep.done,
                    failed: rep.failed,
                    errored: rep.errored,
                    server_cpu_us: per(server_cpu),
                    tool_cpu_us: per(out.cpu_seconds),
                    latency: rep.latency,
                    wall_s: out.wall.as_secs_f64(),
                });
            }
            Ok(_) => failures.push(format!("run {r}: no responses")),
            Err(e) => {
                let tail: String = out
                    .stderr
                    .lines()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" | ");
                failures.push(format!(
                    "run {r}: {e} (exit {:?}; stderr: {tail})",
                    out.code
                ));
            }
        }
    }
    Cell::from_runs(s, t, wn, runs, failures)
}

fn write_outputs(report: &Report, opts: &Options) -> Result<(), String> {
    let io = |p: &PathBuf, e: std::io::Error| format!("{}: {e}", p.display());
    let md = opts.out.join("compare.md");
    std::fs::write(&md, report.markdown()).map_err(|e| io(&md, e))?;
    let json = opts.out.join("compare.json");
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(&json, text).map_err(|e| io(&json, e))?;
    for w in Workload::ALL {
        let cells: Vec<&Cell> = report
            .cells
            .iter()
            .filter(|c| c.workload == w.name() && c.status == Status::Ok)
            .collect();
        if cells.is_empty() {
            continue;
        }
        let group = |c: &Cell| {
            Server::ALL
                .iter()
                .position(|s| s.name() == c.server)
                .unwrap_or(0)
        };
        let rps: Vec<Bar> = cells
            .iter()
            .filter_map(|c| {
                let r = c.rps?;
                Some(Bar {
                    label: format!("{} / {}", c.server, c.tool),
                    value: r.median,
                    min: r.min,
                    max: r.max,
                    group: group(c),
                    pale: false,
                })
            })
            .collect();
        let path = opts.out.join(format!("compare-{}-rps.svg", w.name()));
        bar_chart(
            &path,
            &format!("{}: {}", w.name(), w.describe()),
            "requests per second",
            &rps,
        )?;
        let mut cpu = Vec::new();
        for c in &cells {
            for (side, stat) in [("server", c.server_cpu_us), ("tool", c.tool_cpu_us)] {
                if let Some(st) = stat {
                    cpu.push(Bar {
                        label: format!("{} / {} ({side})", c.server, c.tool),
                        value: st.median,
                        min: st.min,
                        max: st.max,
                        group: group(c),
                        pale: side == "tool",
                    });
                }
            }
        }
        let path = opts.out.join(format!("compare-{}-cpu.svg", w.name()));
        bar_chart(
            &path,
            &format!("{}: CPU per request", w.name()),
            "CPU microseconds per request (lower is better)",
            &cpu,
        )?;
    }
    Ok(())
}
