//! Results of a comparison: per-run figures, per-cell summaries (median, min, max), and
//! their Markdown and JSON forms.

use super::tools::{Latency, Workload};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One measured run of one cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub rps: f64,
    pub done: u64,
    pub failed: u64,
    pub errored: u64,
    /// Server CPU (user + system, whole process tree) per response, in microseconds.
    pub server_cpu_us: Option<f64>,
    /// Load tool CPU (user + system, rusage) per response, in microseconds.
    pub tool_cpu_us: Option<f64>,
    pub latency: Latency,
    pub wall_s: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Stat> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    Failed,
    NotApplicable,
}

/// One (server, tool, workload) cell with its runs and summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub server: String,
    pub tool: String,
    pub workload: String,
    pub status: Status,
    /// Why it failed or is not applicable, or which runs failed.
    pub note: Option<String>,
    pub rps: Option<Stat>,
    pub server_cpu_us: Option<Stat>,
    pub tool_cpu_us: Option<Stat>,
    /// Median over runs of each latency figure.
    pub latency: Latency,
    pub failed: u64,
    pub errored: u64,
    pub runs: Vec<Run>,
}

impl Cell {
    pub fn empty(server: &str, tool: &str, workload: &str, status: Status, note: String) -> Cell {
        Cell {
            server: server.into(),
            tool: tool.into(),
            workload: workload.into(),
            status,
            note: Some(note),
            rps: None,
            server_cpu_us: None,
            tool_cpu_us: None,
            latency: Latency::default(),
            failed: 0,
            errored: 0,
            runs: Vec::new(),
        }
    }

    /// Summarise the good runs; a cell with none is failed.
    pub fn from_runs(
        server: &str,
        tool: &str,
        workload: &str,
        runs: Vec<Run>,
        failures: Vec<String>,
    ) -> Cell {
        if runs.is_empty() {
            let note = failures.join("; ");
            return Cell::empty(server, tool, workload, Status::Failed, note);
        }
        let med = |f: &dyn Fn(&Latency) -> Option<f64>| {
            Stat::of(runs.iter().filter_map(|r| f(&r.latency))).map(|s| s.median)
        };
        let latency = Latency {
            mean_us: med(&|l| l.mean_us),
            p50_us: med(&|l| l.p50_us),
            p90_us: med(&|l| l.p90_us),
            p99_us: med(&|l| l.p99_us),
            p99_9_us: med(&|l| l.p99_9_us),
            max_us: med(&|l| l.max_us),
        };
        let note = if failures.is_empty() {
            None
        } else {
            Some(format!(
                "{} of {} runs failed: {}",
                failures.len(),
                failures.len() + runs.len(),
                failures.join("; ")
            ))
        };
        Cell {
            server: server.into(),
            tool: tool.into(),
            workload: workload.into(),
            status: Status::Ok,
            note,
            rps: Stat::of(runs.iter().map(|r| r.rps)),
            server_cpu_us: Stat::of(runs.iter().filter_map(|r| r.server_cpu_us)),
            tool_cpu_us: Stat::of(runs.iter().filter_map(|r| r.tool_cpu_us)),
            latency,
            failed: runs.iter().map(|r| r.failed).sum(),
            errored: runs.iter().map(|r| r.errored).sum(),
            runs,
        }
    }
}

/// Where the numbers came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub kernel: String,
    pub cpu_model: String,
    pub cpus_online: usize,
    pub server_cpus: Vec<usize>,
    pub load_cpus: Vec<usize>,
}

impl Machine {
    pub fn probe(server_cpus: &[usize], load_cpus: &[usize]) -> Machine {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        // SAFETY: sysconf has no preconditions.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
        Machine {
            kernel,
            cpu_model,
            cpus_online: online,
            server_cpus: server_cpus.to_vec(),
            load_cpus: load_cpus.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub duration_s: f64,
    pub warmup_s: f64,
    pub runs: usize,
    pub rate: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub command: String,
    /// First line of each peer's version output (`nginx -v`, `wrk -v`, ...).
    #[serde(default)]
    pub versions: Vec<(String, String)>,
    /// Seconds since the Unix epoch when the comparison started.
    pub started_unix: u64,
    pub machine: Machine,
    pub settings: Settings,
    pub cells: Vec<Cell>,
}

/// `125300.4` -> `125,300`.
pub fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn us(x: Option<f64>) -> String {
    match x {
        None => "–".into(),
        Some(v) if v >= 10_000.0 => format!("{:.1} ms", v / 1000.0),
        Some(v) if v >= 1000.0 => format!("{:.2} ms", v / 1000.0),
        Some(v) if v >= 100.0 => format!("{v:.0} µs"),
        Some(v) => format!("{v:.1} µs"),
    }
}

fn cpu(s: Option<Stat>) -> String {
    match s {
        None => "–".into(),
        Some(s) => format!("{:.2}", s.median),
    }
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "# Side-by-side comparison\n");
        let _ = writeln!(
            md,
            "Machine: {} ({} CPUs online), Linux {}. Server on CPU {:?}, load tool on CPU {:?}, loopback.",
            m.cpu_model, m.cpus_online, m.kernel, m.server_cpus, m.load_cpus
        );
        let _ = writeln!(
            md,
            "Each cell: {} run(s) of {} s after a {} s warm-up; median, with min–max over runs.\n",
            self.settings.runs, self.settings.duration_s, self.settings.warmup_s
        );
        let _ = writeln!(md, "Command: `{}`\n", self.command);
        if !self.versions.is_empty() {
            let v: Vec<String> = self
                .versions
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = writeln!(md, "Peers: {}.\n", v.join("; "));
        }
        md.push_str(&self.ratios_markdown());
        for w in Workload::ALL {
            let cells: Vec<&Cell> = self
                .cells
                .iter()
                .filter(|c| c.workload == w.name())
                .collect();
            if cells.is_empty() {
                continue;
            }
            let title = if w == Workload::Rate {
                format!("{} ({} req/s)", w.describe(), self.settings.rate)
            } else {
                w.describe().to_string()
            };
            let _ = writeln!(md, "## `{}`: {}\n", w.name(), title);
            let _ = writeln!(
                md,
                "| server | tool | req/s | min–max | server µs/req | tool µs/req | p50 | p90 | p99 | p99.9 | max | failed | errored |"
            );
            let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
            let mut notes = Vec::new();
            for c in cells {
                match (c.status, c.rps) {
                    (Status::Ok, Some(r)) => {
                        let l = &c.latency;
                        let _ = writeln!(
                            md,
                            "| {} | {} | {} | {}–{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                            c.server,
                            c.tool,
                            thousands(r.median),
                            thousands(r.min),
                            thousands(r.max),
                            cpu(c.server_cpu_us),
                            cpu(c.tool_cpu_us),
                            us(l.p50_us),
                            us(l.p90_us),
                            us(l.p99_us),
                            us(l.p99_9_us),
                            us(l.max_us),
                            c.failed,
                            c.errored
                        );
                    }
                    (status, _) => {
                        let word = if status == Status::NotApplicable {
                            "n/a"
                        } else {
                            "**failed**"
                        };
                        let _ = writeln!(
                            md,
                            "| {} | {} | {word} | | | | | | | | | | |",
                            c.server, c.tool
                        );
                    }
                }
                if let Some(n) = &c.note {
                    notes.push(format!("- {} × {}: {}", c.server, c.tool, n));
                }
            }
            if !notes.is_empty() {
                let _ = writeln!(md, "\n{}", notes.join("\n"));
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(md, "{}", COLUMNS);
        md
    }
}

impl Report {
    fn cell(&self, server: &str, tool: &str, w: Workload) -> Option<&Cell> {
        self.cells.iter().find(|c| {
            c.server == server && c.tool == tool && c.workload == w.name() && c.status == Status::Ok
        })
    }

    /// The ratios the issues' goals are stated in, where both cells ran: uring-server's
    /// rate over nginx's, its CPU per request over the floor's, and the CPU per request
    /// of each other tool over uring-load's against the same server.
    pub fn ratios_markdown(&self) -> String {
        let mut rows = Vec::new();
        let tools: Vec<&str> = {
            let mut t: Vec<&str> = self.cells.iter().map(|c| c.tool.as_str()).collect();
            t.dedup();
            t.sort_unstable();
            t.dedup();
            t
        };
        let servers: Vec<&str> = {
            let mut s: Vec<&str> = self.cells.iter().map(|c| c.server.as_str()).collect();
            s.sort_unstable();
            s.dedup();
            s
        };
        for w in Workload::ALL {
            for &tool in &tools {
                let us = self.cell("uring-server", tool, w);
                if let (Some(a), Some(b)) = (us, self.cell("nginx", tool, w)) {
                    if let (Some(x), Some(y)) = (a.rps, b.rps) {
                        rows.push((
                            w.name(),
                            tool.to_string(),
                            "uring-server ÷ nginx, req/s".to_string(),
                            x.median / y.median,
                        ));
                    }
                }
                if let (Some(a), Some(b)) = (us, self.cell("floor", tool, w)) {
                    if let (Some(x), Some(y)) = (a.server_cpu_us, b.server_cpu_us) {
                        rows.push((
                            w.name(),
                            tool.to_string(),
                            "uring-server ÷ floor, server µs/req".to_string(),
                            x.median / y.median,
                        ));
                    }
                }
            }
            for &server in &servers {
                let Some(ours) = self
                    .cell(server, "uring-load", w)
                    .and_then(|c| c.tool_cpu_us)
                else {
                    continue;
                };
                for &tool in tools.iter().filter(|t| **t != "uring-load") {
                    if let Some(theirs) = self.cell(server, tool, w).and_then(|c| c.tool_cpu_us) {
                        rows.push((
                            w.name(),
                            format!("{tool} vs uring-load, against {server}"),
                            format!("{tool} ÷ uring-load, tool µs/req"),
                            theirs.median / ours.median,
                        ));
                    }
                }
            }
        }
        if rows.is_empty() {
            return String::new();
        }
        let mut md =
            String::from("## Ratios\n\n| workload | tool | ratio | value |\n|---|---|---|--:|\n");
        for (w, tool, what, v) in rows {
            let _ = writeln!(md, "| {w} | {tool} | {what} | {v:.2}× |");
        }
        md.push('\n');
        md
    }
}

/// First line of each installed peer's version output, for the report's header.
pub fn peer_versions() -> Vec<(String, String)> {
    let probes: [(&str, &[&str]); 4] = [
        ("nginx", &["-v"]),
        ("wrk", &["-v"]),
        ("h2load", &["--version"]),
        ("ab", &["-V"]),
    ];
    probes
        .iter()
        .filter_map(|(cmd, args)| {
            let mut c = std::process::Command::new(cmd);
            super::proc::as_child(&mut c);
            let out = c
                .args(*args)
                .stdin(std::process::Stdio::null())
                .output()
                .ok()?;
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty())?
                .trim()
                .to_string();
            Some((cmd.to_string(), line))
        })
        .collect()
}

const COLUMNS: &str = "Columns: **req/s** is the median over runs of the tool's own
requests per second (min–max beside it); **server µs/req** is the server's CPU time (user +
system, all its processes and threads, from /proc) during the run divided by the responses
the tool received; **tool µs/req** the same for the load tool (from wait4's rusage).
Latency percentiles are the tool's own (median over runs); `–` where the tool does not
report one (h2load gives only mean and max; wrk's percentiles are wrong under
pipelining; ab rounds to whole milliseconds). **failed**: non-2xx responses; **errored**:
requests with no response (connect, read, write, timeout). Both CPUs are shared by
server and tool on loopback, so ratios between rows of one run mean more than absolute
numbers.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = Stat::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Stat::of([4.0, 1.0]).unwrap().median, 2.5);
        assert!(Stat::of([]).is_none());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(125300.4), "125,300");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
    }
}
