//! The seed study: gunicorn's default sync worker with a hello-world WSGI app, on CPython
//! and on PyPy, at `-w 1,2,3,4,6` under `-n 10000 -c 200 -t 3 -k` (weighttp's flags, which
//! uring-load speaks), plus the `-c 100` row for `-w 2`, and the seed's third section,
//! gunicorn `-w 2` with the tornado worker; then the same app on uWSGI (`--http-socket`,
//! `--processes` as the sync rows' `-w`, directly and behind nginx's `uwsgi_pass`), and
//! uring-server and nginx alone. Each cell is a warm-up and N runs; the mean is reported,
//! as in the seed, with the failed and errored requests counted, since the seed saw the
//! sync worker clog.
//!
//! uWSGI runs on CPython only: Debian packages no PyPy plugin for it, and the table says
//! so in that column's cells. uwsgi-behind-uring-server is the same uWSGI
//! behind uring-server's `uwsgi://` upstream.
//!
//! Unlike `compare`, nothing is pinned by default: the seed ran server and load tool on
//! the same machine without pinning, and pinning a `-w 2` server to one CPU would erase
//! the very effect the table shows. `--pin` pins as `compare` does.

use super::appserver::{spawn_app_server, start_uwsgi, write_app, APP_MODULE};
use super::chart::{bar_chart, Bar};
use super::compare::{default_cpus, Progress};
use super::proc::{run_bounded, ServerProcess};
use super::servers::{self, AppUpstream, Server, ServerEnv};
use super::tools::{self, Tool, Workload, HELLO_PATH};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// One run per cell, no warm-up, -n 1000 unless given: a smoke test.
    #[arg(long)]
    pub quick: bool,
    /// Requests per run (weighttp's -n) [default: 10000, or 1000 with --quick].
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Concurrent connections (-c).
    #[arg(short = 'c', long, default_value_t = 200)]
    pub connections: u64,
    /// Load tool threads (-t).
    #[arg(short = 't', long, default_value_t = 3)]
    pub threads: u64,
    /// Measured runs per cell, averaged [default: 3, or 1 with --quick].
    #[arg(long)]
    pub runs: Option<usize>,
    /// gunicorn worker counts, one row each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,6")]
    pub workers: Vec<usize>,
    /// Worker count of the extra `-c 100` row.
    #[arg(long, default_value_t = 2)]
    pub c100_workers: usize,
    /// Row groups to run: cpython, pypy, behind-uring-server and behind-nginx (CPython's
    /// gunicorn behind that proxy, the proxy with one worker), tornado-cpython and
    /// tornado-pypy (gunicorn -k tornado), uwsgi, uwsgi-pypy (a note: no packaged plugin),
    /// uwsgi-behind-nginx (uwsgi_pass), uwsgi-behind-uring-server (uwsgi://), uring-server,
    /// nginx.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "cpython,pypy,behind-uring-server,behind-nginx,tornado-cpython,tornado-pypy,uwsgi,uwsgi-pypy,uwsgi-behind-nginx,uwsgi-behind-uring-server,uring-server,nginx"
    )]
    pub columns: Vec<String>,
    /// Load tool: uring-load (weighttp's flags) or h2load (the same counts).
    #[arg(long, default_value = "uring-load")]
    pub tool: String,
    /// Where the Python virtual environments with gunicorn and tornado are kept (made if
    /// missing).
    #[arg(long, default_value = "bench-results/cache")]
    pub cache: PathBuf,
    /// Output directory.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    /// Pin the server to the first CPU and the tool to the others, as `compare` does.
    #[arg(long)]
    pub pin: bool,
    /// Seconds before a run is killed and counted as failed.
    #[arg(long, default_value_t = 60.0)]
    pub run_timeout: f64,
    /// Where uring-server and uring-load are [default: beside this binary].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
}

/// One measured run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedRun {
    pub rps: f64,
    pub done: u64,
    pub failed: u64,
    pub errored: u64,
}

/// One cell of the seed table: a server configuration under one client setting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedCell {
    /// `cpython`, `pypy`, `uring-server` or `nginx`.
    pub column: String,
    /// Column heading with the version, e.g. `CPython 3.11.2`.
    pub heading: String,
    pub workers: usize,
    pub connections: u64,
    pub runs: Vec<SeedRun>,
    pub failures: Vec<String>,
    pub mean_rps: Option<f64>,
    pub min_rps: Option<f64>,
    pub max_rps: Option<f64>,
    pub failed: u64,
    pub errored: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedReport {
    pub command: String,
    pub tool_command: String,
    pub requests: u64,
    pub threads: u64,
    pub runs: usize,
    pub warmup: bool,
    pub pinned: bool,
    pub machine: super::report::Machine,
    pub cells: Vec<SeedCell>,
}

fn run_quiet(cmd: &mut Command, what: &str) -> Result<String, String> {
    super::proc::as_child(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(4).collect();
        return Err(format!("{what} failed: {}", tail.join(" | ")));
    }
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The packages every venv gets: gunicorn, and tornado for its tornado worker.
const VENV_PACKAGES: [&str; 2] = ["gunicorn", "tornado"];

fn venv_has_packages(dir: &Path) -> bool {
    let mut cmd = Command::new(dir.join("bin/python"));
    super::proc::as_child(&mut cmd);
    cmd.args(["-c", "import gunicorn, tornado"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A virtual environment with gunicorn and tornado for `interpreter`, made on first use
/// (an older cache with gunicorn alone gets tornado added).
fn ensure_venv(cache: &Path, column: &str) -> Result<PathBuf, String> {
    let dir = cache.join(format!("venv-{column}"));
    let gunicorn = dir.join("bin/gunicorn");
    if gunicorn.exists() && venv_has_packages(&dir) {
        return Ok(dir);
    }
    let python = match column {
        // Debian's interpreter, not whatever python3 comes first on PATH.
        "cpython" if Path::new("/usr/bin/python3").exists() => "/usr/bin/python3",
        "cpython" => "python3",
        _ => "pypy3",
    };
    if !servers::on_path(python.rsplit('/').next().unwrap_or(python)) && !Path::new(python).exists()
    {
        return Err(format!(
            "{python} is not installed (scripts/bench-install.sh)"
        ));
    }
    std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    if !gunicorn.exists() {
        eprintln!("seed: creating {}", dir.display());
        let _ = std::fs::remove_dir_all(&dir);
        run_quiet(
            Command::new(python).args(["-m", "venv"]).arg(&dir),
            &format!("{python} -m venv"),
        )?;
    }
    eprintln!(
        "seed: installing {} into {}",
        VENV_PACKAGES.join(" and "),
        dir.display()
    );
    run_quiet(
        Command::new(dir.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(VENV_PACKAGES),
        "pip install gunicorn tornado",
    )?;
    Ok(dir)
}

/// `CPython 3.11.2` or `PyPy 7.3.11` for an interpreter.
fn python_name(python: &Path) -> Option<String> {
    let code = "import sys, platform; print(platform.python_implementation(), \
                '.'.join(map(str, (sys.pypy_version_info if hasattr(sys, 'pypy_version_info') \
                else sys.version_info)[:3])))";
    let mut cmd = Command::new(python);
    super::proc::as_child(&mut cmd);
    cmd.args(["-c", code])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `uWSGI 2.0.21` (Debian's version suffix dropped).
fn uwsgi_name() -> String {
    let mut cmd = Command::new("uwsgi");
    super::proc::as_child(&mut cmd);
    let version = cmd
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let version = version.split('-').next().unwrap_or_default();
    format!("uWSGI {version}").trim().to_string()
}

fn heading(column: &str, venv: Option<&Path>) -> String {
    match column {
        "uwsgi" => {
            let python = python_name(Path::new("/usr/bin/python3"));
            return format!(
                "{} ({})",
                uwsgi_name(),
                python.as_deref().unwrap_or("CPython")
            );
        }
        "uwsgi-pypy" => return format!("{} (PyPy)", uwsgi_name()),
        "uwsgi-behind-nginx" => return format!("{} behind nginx uwsgi_pass", uwsgi_name()),
        "uwsgi-behind-uring-server" => {
            return format!("{} behind uring-server uwsgi://", uwsgi_name())
        }
        _ => {}
    }
    let Some(venv) = venv else {
        return column.to_string();
    };
    if let Some(proxy) = column.strip_prefix("behind-") {
        return format!("{} behind {proxy}", heading("cpython", Some(venv)));
    }
    // The tornado cells must not read as the sync worker's in the table of every cell.
    if column.starts_with("tornado-") {
        let python = python_name(&venv.join("bin/python"));
        return format!("{}, tornado worker", python.as_deref().unwrap_or(column));
    }
    python_name(&venv.join("bin/python")).unwrap_or_else(|| column.to_string())
}

/// Every row group, in table order.
const COLUMNS: [&str; 12] = [
    "cpython",
    "pypy",
    "behind-uring-server",
    "behind-nginx",
    "tornado-cpython",
    "tornado-pypy",
    "uwsgi",
    "uwsgi-pypy",
    "uwsgi-behind-nginx",
    "uwsgi-behind-uring-server",
    "uring-server",
    "nginx",
];

/// The seed's tornado section: `gunicorn -w 2` with the tornado worker, `-c 200` only.
const TORNADO_WORKERS: usize = 2;

/// What the uwsgi-pypy cells say instead of a number.
const NO_PYPY_UWSGI: &str = "no packaged PyPy plugin for uWSGI";

/// The uwsgi-pypy cells: uWSGI embeds its interpreter through a plugin, and Debian (like
/// PyPI) ships none for PyPy; were one installed, it would still need its own options.
fn uwsgi_pypy() -> Result<ServerProcess, String> {
    if Path::new("/usr/lib/uwsgi/plugins/pypy_plugin.so").exists() {
        return Err("uWSGI's pypy plugin is installed, but the harness does not run it yet".into());
    }
    Err(NO_PYPY_UWSGI.into())
}

/// The app server of `column` on a port of its own (gunicorn from `venv` for
/// behind-uring-server and behind-nginx, uWSGI on a uwsgi socket for uwsgi-behind-*),
/// and the proxy on `addr` in front of it (one proxy worker; `/plaintext` forwarded). The
/// proxy owns the app server's process.
fn start_behind(
    column: &str,
    venv: Option<&Path>,
    scratch: &Path,
    addr: SocketAddr,
    workers: usize,
    cpus: &[usize],
    env: &ServerEnv,
) -> Result<ServerProcess, String> {
    let app_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?;
    let (app, upstream) = match venv {
        None => (
            start_uwsgi(scratch, "--uwsgi-socket", app_addr, workers, cpus)?,
            AppUpstream::Uwsgi(app_addr),
        ),
        Some(venv) => (
            start_gunicorn(venv, scratch, app_addr, workers, None, cpus)?,
            AppUpstream::Http(app_addr),
        ),
    };
    let proxy = if column.ends_with("behind-nginx") {
        Server::NginxProxy
    } else {
        Server::UringProxy
    };
    let mut p = servers::start_with_upstream(proxy, addr, cpus, 1, env, Some(upstream))?;
    p.companion = Some(Box::new(app));
    Ok(p)
}

/// gunicorn with `worker_class` (None: the default sync worker, as in the seed's first
/// section; `tornado` for its third).
fn start_gunicorn(
    venv: &Path,
    scratch: &Path,
    addr: SocketAddr,
    workers: usize,
    worker_class: Option<&str>,
    cpus: &[usize],
) -> Result<ServerProcess, String> {
    let log = scratch.join("gunicorn.log");
    let f = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(venv.join("bin/gunicorn"));
    if let Some(class) = worker_class {
        cmd.args(["-k", class]);
    }
    cmd.args([
        "-w",
        &workers.to_string(),
        "-b",
        &addr.to_string(),
        "--chdir",
    ])
    .arg(scratch)
    .arg(format!("{APP_MODULE}:app"))
    .stdin(Stdio::null())
    .stdout(Stdio::from(f.try_clone().map_err(|e| e.to_string())?))
    .stderr(Stdio::from(f));
    spawn_app_server(cmd, "gunicorn", &log, addr, cpus)
}

fn tool_argv(a: &SeedArgs, tool: Tool, bin: &Path, n: u64, c: u64, url: &str) -> Vec<String> {
    let mut v: Vec<String> = match tool {
        Tool::UringLoad => vec![bin.join("uring-load").to_string_lossy().into_owned()],
        _ => vec!["h2load".into(), "--h1".into()],
    };
    let (n, c, t) = (
        n.to_string(),
        c.to_string(),
        a.threads.min(c.max(1)).to_string(),
    );
    v.extend(["-n", &n, "-c", &c, "-t", &t].map(String::from));
    if tool == Tool::UringLoad {
        v.extend(["-k", "--json", "--no-pin"].map(String::from));
    }
    v.push(url.to_string());
    v
}

pub fn run(a: &SeedArgs, bin_dir: &Path, command_line: &str) -> Result<PathBuf, String> {
    let tool = match a.tool.as_str() {
        "uring-load" => Tool::UringLoad,
        "h2load" => Tool::H2load,
        other => return Err(format!("--tool {other:?}: use uring-load or h2load")),
    };
    let n = a.requests.unwrap_or(if a.quick { 1000 } else { 10_000 });
    let runs = a.runs.unwrap_or(if a.quick { 1 } else { 3 }).max(1);
    let warmup = !a.quick;
    let (server_cpus, load_cpus) = if a.pin {
        default_cpus()
    } else {
        (vec![], vec![])
    };
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let scratch = std::env::temp_dir().join(format!("uring-seed-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    write_app(&scratch)?;
    let env = ServerEnv {
        bin_dir: bin_dir.to_path_buf(),
        scratch: scratch.clone(),
    };
    if tool == Tool::UringLoad && !servers::is_executable(&bin_dir.join("uring-load")) {
        return Err(format!(
            "{} is not built",
            bin_dir.join("uring-load").display()
        ));
    }

    // (column, workers, connections) in table order.
    let mut plan: Vec<(String, usize, u64)> = Vec::new();
    for col in &a.columns {
        if !COLUMNS.contains(&col.as_str()) {
            return Err(format!("unknown column {col:?}"));
        }
        let tornado = col.starts_with("tornado-");
        let ws: Vec<usize> = if col.starts_with("uring") || col == "nginx" {
            vec![1, 2]
        } else if tornado {
            vec![TORNADO_WORKERS]
        } else {
            a.workers.clone()
        };
        for w in ws {
            plan.push((col.clone(), w, a.connections));
        }
        // The seed measured the tornado worker at -c 200 only.
        if !tornado {
            plan.push((col.clone(), a.c100_workers, 100));
        }
    }
    let mut progress = Progress::new(plan.len());
    let mut venvs: std::collections::HashMap<String, Result<PathBuf, String>> = Default::default();
    let mut cells = Vec::new();
    for (col, workers, conns) in plan {
        let label = format!("{col} -w {workers} -c {conns}");
        progress.show(&label);
        let behind = col.starts_with("behind-");
        let tornado = col.starts_with("tornado-");
        let venv = if col == "cpython" || col == "pypy" || behind || tornado {
            let python = if col.ends_with("pypy") {
                "pypy"
            } else {
                "cpython"
            };
            let v = venvs
                .entry(python.to_string())
                .or_insert_with(|| ensure_venv(&a.cache, python))
                .clone();
            Some(v)
        } else {
            None
        };
        let mut cell = SeedCell {
            column: col.clone(),
            heading: heading(
                &col,
                venv.as_ref()
                    .and_then(|v| v.as_ref().ok())
                    .map(|p| p.as_path()),
            ),
            workers,
            connections: conns,
            runs: vec![],
            failures: vec![],
            mean_rps: None,
            min_rps: None,
            max_rps: None,
            failed: 0,
            errored: 0,
        };
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?;
        let started = match &venv {
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(v)) if behind => {
                start_behind(&col, Some(v), &scratch, addr, workers, &server_cpus, &env)
            }
            Some(Ok(v)) => {
                let class = tornado.then_some("tornado");
                start_gunicorn(v, &scratch, addr, workers, class, &server_cpus)
            }
            None if col == "uwsgi" => {
                start_uwsgi(&scratch, "--http-socket", addr, workers, &server_cpus)
            }
            None if col == "uwsgi-pypy" => uwsgi_pypy(),
            None if col.starts_with("uwsgi-behind-") => {
                start_behind(&col, None, &scratch, addr, workers, &server_cpus, &env)
            }
            None => {
                let s = if col == "nginx" {
                    Server::Nginx
                } else {
                    Server::UringServer
                };
                servers::start(s, addr, &server_cpus, workers, &env)
            }
        };
        match started {
            Err(e) => cell.failures.push(e),
            Ok(mut server) => {
                let url = format!("http://{addr}{HELLO_PATH}");
                let limit =
                    Duration::try_from_secs_f64(a.run_timeout).unwrap_or(Duration::from_secs(60));
                let total = runs + usize::from(warmup);
                for r in 0..total {
                    if !server.alive() {
                        cell.failures.push("server exited".into());
                        break;
                    }
                    let measured = r + 1 - usize::from(warmup);
                    progress.show(&if warmup && r == 0 {
                        format!("{label}: warm-up")
                    } else {
                        format!("{label}: run {measured}/{runs}")
                    });
                    let argv = tool_argv(a, tool, bin_dir, n, conns, &url);
                    let out = match run_bounded(&argv, &load_cpus, limit, &scratch) {
                        Ok(o) => o,
                        Err(e) => {
                            cell.failures
                                .push(format!("cannot run {}: {e}", tool.name()));
                            break;
                        }
                    };
                    if warmup && r == 0 {
                        continue;
                    }
                    if out.timed_out {
                        cell.failures
                            .push(format!("run {measured} overran {limit:?} and was killed"));
                        continue;
                    }
                    match tools::parse(tool, Workload::Ka64, &out.stdout) {
                        Ok(rep) => cell.runs.push(SeedRun {
                            rps: rep.rps,
                            done: rep.done,
                            failed: rep.failed,
                            errored: rep.errored,
                        }),
                        Err(e) => cell.failures.push(format!("run {measured}: {e}")),
                    }
                }
                drop(server);
            }
        }
        if !cell.runs.is_empty() {
            let rps: Vec<f64> = cell.runs.iter().map(|r| r.rps).collect();
            cell.mean_rps = Some(rps.iter().sum::<f64>() / rps.len() as f64);
            cell.min_rps = rps.iter().copied().reduce(f64::min);
            cell.max_rps = rps.iter().copied().reduce(f64::max);
            cell.failed = cell.runs.iter().map(|r| r.failed).sum();
            cell.errored = cell.runs.iter().map(|r| r.errored).sum();
        }
        if let Some(m) = cell.mean_rps {
            progress.show(&format!("{label}: {} req/s", super::report::thousands(m)));
        } else {
            progress.show(&format!("{label}: failed"));
        }
        progress.step();
        cells.push(cell);
    }
    progress.finish();
    let url = "http://127.0.0.1:PORT/plaintext";
    let report = SeedReport {
        command: command_line.to_string(),
        tool_command: tool_argv(a, tool, Path::new(""), n, a.connections, url)
            .join(" ")
            .trim_start_matches('/')
            .to_string(),
        requests: n,
        threads: a.threads,
        runs,
        warmup,
        pinned: a.pin,
        machine: super::report::Machine::probe(&server_cpus, &load_cpus),
        cells,
    };
    write_outputs(&report, a)?;
    print!("{}", report.markdown());
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(a.out.clone())
}

fn fmt_cell(c: Option<&SeedCell>) -> String {
    match c {
        None => String::new(),
        Some(c) => {
            let mut s = match c.mean_rps {
                Some(m) => super::report::thousands(m),
                None if c.failures.iter().any(|f| f == NO_PYPY_UWSGI) => NO_PYPY_UWSGI.into(),
                None => "failed".into(),
            };
            if c.failed + c.errored > 0 {
                let _ = write!(s, " ({} failed, {} errored)", c.failed, c.errored);
            }
            s
        }
    }
}

/// The seed author's numbers for a row (CPython 2.7, PyPy 2b; req/s, weighttp, mean of 3),
/// as its table gives them: `(workers, connections)` of the sync worker's rows, and the
/// tornado worker's `-w 2 -c 200` row.
type SeedNumbers = fn(usize, u64) -> Option<(u32, u32)>;

fn seed_sync(workers: usize, connections: u64) -> Option<(u32, u32)> {
    match (workers, connections) {
        (1, 200) => Some((2500, 6000)),
        (2, 200) => Some((3580, 9800)),
        (3, 200) => Some((3600, 8000)),
        (4, 200) => Some((3000, 8000)),
        (6, 200) => Some((2100, 6100)),
        (2, 100) => Some((4960, 11200)),
        _ => None,
    }
}

fn seed_tornado(workers: usize, connections: u64) -> Option<(u32, u32)> {
    ((workers, connections) == (2, 200)).then_some((7000, 23000))
}

fn table(
    md: &mut String,
    r: &SeedReport,
    columns: &[&str],
    row_name: &dyn Fn(usize) -> String,
    seed: Option<SeedNumbers>,
) {
    let present: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|c| r.cells.iter().any(|x| x.column == *c))
        .collect();
    if present.is_empty() {
        return;
    }
    let heads: Vec<String> = present
        .iter()
        .map(|c| {
            r.cells
                .iter()
                .find(|x| x.column == *c)
                .map(|x| x.heading.clone())
                .unwrap_or_default()
        })
        .collect();
    let seed_heads = match seed {
        Some(_) => "seed: CPython 2.7 | seed: PyPy 2b | ",
        None => "",
    };
    let seed_cells = |w: usize, c: u64| match seed {
        None => String::new(),
        Some(f) => match f(w, c) {
            Some((cpython, pypy)) => format!(
                "{} | {} | ",
                super::report::thousands(f64::from(cpython)),
                super::report::thousands(f64::from(pypy))
            ),
            None => "– | – | ".into(),
        },
    };
    let extra = if seed.is_some() { 2 } else { 0 };
    let _ = writeln!(md, "| X | {seed_heads}{} |", heads.join(" | "));
    let _ = writeln!(md, "|---|{}", "--:|".repeat(present.len() + extra));
    let find = |col: &str, w: usize, c: u64| {
        r.cells
            .iter()
            .find(|x| x.column == col && x.workers == w && x.connections == c)
    };
    let main_c = r
        .cells
        .iter()
        .map(|x| x.connections)
        .filter(|&c| c != 100)
        .max()
        .unwrap_or(200);
    let mut rows: Vec<usize> = r
        .cells
        .iter()
        .filter(|x| present.contains(&x.column.as_str()) && x.connections == main_c)
        .map(|x| x.workers)
        .collect();
    rows.sort_unstable();
    rows.dedup();
    for w in rows {
        let vals: Vec<String> = present
            .iter()
            .map(|c| fmt_cell(find(c, w, main_c)))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {}{} |",
            row_name(w),
            seed_cells(w, main_c),
            vals.join(" | ")
        );
    }
    let c100: Vec<&SeedCell> = r
        .cells
        .iter()
        .filter(|x| present.contains(&x.column.as_str()) && x.connections == 100)
        .collect();
    if let Some(first) = c100.first() {
        let _ = writeln!(
            md,
            "| *tests -n {} -c 100* |{}",
            r.requests,
            " |".repeat(present.len() + extra)
        );
        let vals: Vec<String> = present
            .iter()
            .map(|c| fmt_cell(find(c, first.workers, 100)))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {}{} |",
            row_name(first.workers),
            seed_cells(first.workers, 100),
            vals.join(" | ")
        );
    }
    let _ = writeln!(md);
}

impl SeedReport {
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "# The seed study, rebuilt\n");
        let _ = writeln!(
            md,
            "Requests per second (higher is better), the mean of {} run(s){}, \
             measured with `{}`. gunicorn runs its default sync worker \
             with a hello-world WSGI app (then its tornado worker, as the seed's third \
             section); uWSGI serves the same app. Machine: {} ({} CPUs), Linux {}, \
             loopback; {}.\n",
            self.runs,
            if self.warmup {
                " after a warm-up run"
            } else {
                " without warm-up"
            },
            self.tool_command,
            m.cpu_model,
            m.cpus_online,
            m.kernel,
            if self.pinned {
                format!(
                    "server pinned to CPU {:?}, tool to {:?}",
                    m.server_cpus, m.load_cpus
                )
            } else {
                "server and load tool share all CPUs (not pinned), as in the seed".into()
            }
        );
        let _ = writeln!(md, "Command: `{}`\n", self.command);
        let _ = writeln!(
            md,
            "The seed's columns are its author's numbers (CPython 2.7 and PyPy 2b, weighttp \
             `-n 10000 -c 200 -t 3 -k`, mean of 3, on the author's machine): set beside \
             ours row for row, not measured here.\n"
        );
        table(
            &mut md,
            self,
            &["cpython", "pypy", "behind-uring-server", "behind-nginx"],
            &|w| format!("gunicorn -w {w}"),
            Some(seed_sync),
        );
        if self.cells.iter().any(|c| c.column.starts_with("tornado-")) {
            let _ = writeln!(
                md,
                "*gunicorn with tornado and tests -n {} -c 200*\n",
                self.requests
            );
        }
        table(
            &mut md,
            self,
            &["tornado-cpython", "tornado-pypy"],
            &|w| format!("gunicorn -w {w} -k tornado"),
            Some(seed_tornado),
        );
        table(
            &mut md,
            self,
            &[
                "uwsgi",
                "uwsgi-pypy",
                "uwsgi-behind-nginx",
                "uwsgi-behind-uring-server",
            ],
            &|w| format!("uwsgi --processes {w}"),
            None,
        );
        if self.cells.iter().any(|c| c.column.starts_with("uwsgi")) {
            let _ = writeln!(
                md,
                "uWSGI: `--http-socket` (its workers answer HTTP themselves; with \
                 `--add-header \"Connection: close\"`, since it closes every connection \
                 without saying so), `--master`, `--listen 1024`; behind nginx: `--uwsgi-socket` and `uwsgi_pass` with \
                 Debian's `uwsgi_params`; behind uring-server: the same socket as its \
                 `uwsgi://` upstream. The seed's title names uWSGI, its table has no uWSGI \
                 row: no seed numbers to set beside these.\n"
            );
        }
        table(
            &mut md,
            self,
            &["uring-server", "nginx"],
            &|w| format!("-w {w}"),
            None,
        );
        let _ = writeln!(md, "### Every cell\n");
        let _ = writeln!(
            md,
            "| server | -w | -c | runs | mean req/s | min | max | failed | errored | notes |"
        );
        let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|");
        for c in &self.cells {
            let f = |x: Option<f64>| {
                x.map(super::report::thousands)
                    .unwrap_or_else(|| "–".into())
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.heading,
                c.workers,
                c.connections,
                c.runs.len(),
                f(c.mean_rps),
                f(c.min_rps),
                f(c.max_rps),
                c.failed,
                c.errored,
                c.failures.join("; ")
            );
        }
        let _ = writeln!(
            md,
            "\n**failed**: responses that were not 2xx; **errored**: requests that got no \
             response (connection refused or reset, timeout), summed over the runs. A run that \
             overran its time limit was killed and is listed in notes."
        );
        md
    }
}

fn write_outputs(r: &SeedReport, a: &SeedArgs) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let md = a.out.join("seed.md");
    std::fs::write(&md, r.markdown()).map_err(|e| io(&md, e))?;
    let json = a.out.join("seed.json");
    let text = serde_json::to_string_pretty(r).map_err(|e| e.to_string())?;
    std::fs::write(&json, text).map_err(|e| io(&json, e))?;
    let groups = COLUMNS;
    let bars: Vec<Bar> = r
        .cells
        .iter()
        .filter_map(|c| {
            Some(Bar {
                label: if c.column == "cpython"
                    || c.column == "pypy"
                    || c.column.starts_with("behind-")
                {
                    format!(
                        "gunicorn -w {} -c {} ({})",
                        c.workers, c.connections, c.heading
                    )
                } else if c.column.starts_with("tornado-") {
                    format!(
                        "gunicorn -w {} -k tornado -c {} ({})",
                        c.workers, c.connections, c.heading
                    )
                } else if c.column.starts_with("uwsgi") {
                    format!(
                        "--processes {} -c {} ({})",
                        c.workers, c.connections, c.heading
                    )
                } else {
                    format!("{} -w {} -c {}", c.heading, c.workers, c.connections)
                },
                value: c.mean_rps?,
                min: c.min_rps?,
                max: c.max_rps?,
                group: groups.iter().position(|g| *g == c.column).unwrap_or(0),
                pale: false,
            })
        })
        .collect();
    bar_chart(
        &a.out.join("seed.svg"),
        &format!(
            "seed study: -n {} -t {} -k, mean of {} run(s)",
            r.requests, r.threads, r.runs
        ),
        "requests per second",
        &bars,
    )
}
