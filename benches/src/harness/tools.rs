//! The load tools and workloads: each tool's command line for each workload (or why it
//! cannot run it), and parsers for each tool's report.
//!
//! Parsers look for labelled lines rather than positions, so a tool version that adds a
//! line does not break them, and a report without the main figure is an error, never a
//! zero.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    UringLoad,
    /// uring-load with `--tier epoll` (named, never run by default).
    UringLoadEpoll,
    Wrk,
    H2load,
    Ab,
}

impl Tool {
    pub const ALL: [Tool; 4] = [Tool::UringLoad, Tool::Wrk, Tool::H2load, Tool::Ab];

    pub fn name(self) -> &'static str {
        match self {
            Tool::UringLoad => "uring-load",
            Tool::UringLoadEpoll => "uring-load-epoll",
            Tool::Wrk => "wrk",
            Tool::H2load => "h2load",
            Tool::Ab => "ab",
        }
    }

    pub fn parse_name(s: &str) -> Option<Tool> {
        Tool::ALL
            .into_iter()
            .chain([Tool::UringLoadEpoll])
            .find(|t| t.name() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// 64 keep-alive connections, one request in flight on each.
    Ka64,
    /// 256 keep-alive connections.
    Ka256,
    /// 64 connections with 16 pipelined requests in flight on each.
    Pipe16,
    /// 64 concurrent clients, a new connection for every request.
    Close,
    /// 64 keep-alive connections fetching a 64 KiB static file.
    File64k,
    /// The same with a 1 KiB file.
    File1k,
    /// The same with a 1 MiB file.
    File1m,
    /// The 64 KiB file, a new connection per request, 64 concurrent.
    File64kClose,
    /// A fixed request rate (open model) on 64 connections; latency is the figure.
    Rate,
}

impl Workload {
    pub const ALL: [Workload; 9] = [
        Workload::Ka64,
        Workload::Ka256,
        Workload::Pipe16,
        Workload::Close,
        Workload::File64k,
        Workload::File1k,
        Workload::File1m,
        Workload::File64kClose,
        Workload::Rate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Ka64 => "ka64",
            Workload::Ka256 => "ka256",
            Workload::Pipe16 => "pipe16",
            Workload::Close => "close",
            Workload::File64k => "file64k",
            Workload::File1k => "file1k",
            Workload::File1m => "file1m",
            Workload::File64kClose => "file64k-close",
            Workload::Rate => "rate",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Workload::Ka64 => "keep-alive, 64 connections",
            Workload::Ka256 => "keep-alive, 256 connections",
            Workload::Pipe16 => "keep-alive, 64 connections, 16-deep pipelining",
            Workload::Close => "a new connection per request, 64 concurrent",
            Workload::File64k => "64 KiB static file, keep-alive, 64 connections",
            Workload::File1k => "1 KiB static file, keep-alive, 64 connections",
            Workload::File1m => "1 MiB static file, keep-alive, 64 connections",
            Workload::File64kClose => {
                "64 KiB static file, a new connection per request, 64 concurrent"
            }
            Workload::Rate => {
                "fixed request rate, 64 connections (latency from intended send time)"
            }
        }
    }

    pub fn parse_name(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    pub fn connections(self) -> usize {
        match self {
            Workload::Ka256 => 256,
            _ => 64,
        }
    }

    pub fn keep_alive(self) -> bool {
        !matches!(self, Workload::Close | Workload::File64kClose)
    }

    pub fn depth(self) -> usize {
        if self == Workload::Pipe16 {
            16
        } else {
            1
        }
    }

    /// The static file fetched (path, size), if any.
    pub fn file(self) -> Option<(&'static str, usize)> {
        match self {
            Workload::File64k | Workload::File64kClose => Some(STATIC_FILES[1]),
            Workload::File1k => Some(STATIC_FILES[0]),
            Workload::File1m => Some(STATIC_FILES[2]),
            _ => None,
        }
    }

    /// Path requested: the 13-byte hello or the static file.
    pub fn path(self) -> &'static str {
        self.file().map_or(HELLO_PATH, |(p, _)| p)
    }
}

pub const HELLO_PATH: &str = "/plaintext";
/// The static files every file-serving server has under its root: (path, size).
pub const STATIC_FILES: [(&str, usize); 3] = [
    ("/static/1k.bin", 1024),
    ("/static/64k.bin", 64 * 1024),
    ("/static/1m.bin", 1024 * 1024),
];

/// Everything a tool's command line depends on besides the tool and the workload.
pub struct RunSpec<'a> {
    /// `http://127.0.0.1:PORT` without a path.
    pub base_url: String,
    pub duration: Duration,
    pub threads: usize,
    /// Requests per second for the fixed-rate workload.
    pub rate: u64,
    pub uring_load: &'a Path,
    /// Where the wrk pipelining script is written.
    pub scratch: &'a Path,
}

/// The command line, or the reason this tool cannot run this workload.
pub fn command(tool: Tool, w: Workload, spec: &RunSpec) -> Result<Vec<String>, String> {
    let url = format!("{}{}", spec.base_url, w.path());
    let c = w.connections().to_string();
    let t = spec.threads.min(w.connections()).max(1).to_string();
    let whole_secs = spec.duration.as_secs().max(1).to_string();
    let mut a: Vec<String> = Vec::new();
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    match tool {
        Tool::UringLoad | Tool::UringLoadEpoll => {
            let d = format!("{}ms", spec.duration.as_millis().max(1));
            push(&[
                &spec.uring_load.to_string_lossy(),
                "-d",
                &d,
                "-c",
                &c,
                "-t",
                &t,
            ]);
            push(&["--no-pin", "--json"]);
            if tool == Tool::UringLoadEpoll {
                push(&["--tier", "epoll"]);
            }
            if spec.base_url.starts_with("https://") {
                // The TLS servers' certificate is self-signed (made by the harness).
                push(&["--insecure"]);
            }
            if w.keep_alive() {
                push(&["-k"]);
            }
            if w.depth() > 1 {
                push(&["-K", &w.depth().to_string()]);
            }
            if w == Workload::Rate {
                push(&["-R", &spec.rate.to_string()]);
            }
            push(&[&url]);
        }
        Tool::Wrk => {
            if w == Workload::Rate {
                return Err("wrk has no fixed-rate mode (wrk2 is not packaged)".into());
            }
            push(&["wrk", "-t", &t, "-c", &c, "-d", &format!("{whole_secs}s")]);
            push(&["--latency", "--timeout", "5s"]);
            if w.depth() > 1 {
                let script = write_wrk_pipeline_script(spec.scratch, w.depth())
                    .map_err(|e| format!("cannot write the wrk script: {e}"))?;
                push(&["-s", &script.to_string_lossy()]);
            }
            if !w.keep_alive() {
                // The server closes after each response and wrk reconnects.
                push(&["-H", "Connection: close"]);
            }
            push(&[&url]);
        }
        Tool::H2load => {
            if w == Workload::Rate {
                return Err("h2load's -r is a connection rate, not a request rate".into());
            }
            if !w.keep_alive() {
                return Err(
                    "h2load's timed mode (-D) stalls when the server closes after each response"
                        .into(),
                );
            }
            push(&["h2load", "--h1", "-t", &t, "-c", &c, "-D", &whole_secs]);
            // With --h1, -m is the pipelining depth (h2load's manual). -N bounds a silent
            // connection; -T would close busy ones too, mid-run.
            push(&["-m", &w.depth().to_string(), "-N", "5", &url]);
        }
        Tool::Ab => {
            if w.depth() > 1 {
                return Err("ab cannot pipeline".into());
            }
            if w == Workload::Rate {
                return Err("ab has no fixed-rate mode".into());
            }
            // -t before -n: -t resets -n to 50000, and the large -n lets time end the run.
            push(&[
                "ab",
                "-q",
                "-r",
                "-s",
                "5",
                "-c",
                &c,
                "-t",
                &whole_secs,
                "-n",
                "100000000",
            ]);
            if w.keep_alive() {
                push(&["-k"]);
            }
            push(&[&url]);
        }
    }
    Ok(a)
}

fn write_wrk_pipeline_script(dir: &Path, depth: usize) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("wrk-pipeline-{depth}.lua"));
    // wrk sends whatever request() returns as one write; 16 copies of the request make 16
    // pipelined requests, and wrk counts each response.
    let script = format!(
        "init = function(args)\n  local r = {{}}\n  for i = 1, {depth} do r[i] = wrk.format(nil) end\n  req = table.concat(r)\nend\nrequest = function() return req end\n"
    );
    std::fs::write(&path, script)?;
    Ok(path)
}

/// Latency figures in microseconds, where the tool reports them.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub mean_us: Option<f64>,
    pub p50_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p99_9_us: Option<f64>,
    pub max_us: Option<f64>,
}

/// What one run of a tool reported.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolReport {
    pub rps: f64,
    /// Responses received (the denominator of CPU per request).
    pub done: u64,
    /// Responses that were not 2xx.
    pub failed: u64,
    /// Requests that got no response (connect, read, write, timeout, parse errors).
    pub errored: u64,
    pub latency: Latency,
}

pub fn parse(tool: Tool, w: Workload, stdout: &str) -> Result<ToolReport, String> {
    match tool {
        Tool::UringLoad | Tool::UringLoadEpoll => parse_uring_load(stdout),
        Tool::Wrk => parse_wrk(stdout, w.depth() > 1),
        Tool::H2load => parse_h2load(stdout),
        Tool::Ab => parse_ab(stdout),
    }
}

/// `12.5us`, `1.48ms`, `2s`, `3m` -> microseconds.
fn duration_us(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.trim().parse().ok()?;
    let scale = match unit {
        "ns" => 1e-3,
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(v * scale)
}

/// The first line that starts (after spaces) with `label`, minus the label.
fn field<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .map(str::trim_start)
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
}

fn first_number(s: &str) -> Option<f64> {
    let t = s.trim_start();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    t[..end].parse().ok()
}

fn parse_wrk(out: &str, pipelined: bool) -> Result<ToolReport, String> {
    let rps = field(out, "Requests/sec:")
        .and_then(first_number)
        .ok_or("no `Requests/sec:` line in wrk's output")?;
    let done = out
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(first_number)
        .ok_or("no `N requests in` line in wrk's output")? as u64;
    let failed = field(out, "Non-2xx or 3xx responses:")
        .and_then(first_number)
        .unwrap_or(0.0) as u64;
    let errored = field(out, "Socket errors:")
        .map(|s| {
            s.split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let mut latency = Latency::default();
    if let Some(l) = field(out, "Latency ") {
        let cols: Vec<&str> = l.split_whitespace().collect();
        latency.mean_us = cols.first().and_then(|c| duration_us(c));
        latency.max_us = cols.get(2).and_then(|c| duration_us(c));
    }
    // With pipelining wrk times only the first response of each batch and prints zeros
    // for the rest of the distribution, so its percentiles would mislead.
    if !pipelined {
        let pct = |p: &str| field(out, p).and_then(duration_us);
        latency.p50_us = pct("50% ");
        latency.p90_us = pct("90% ");
        latency.p99_us = pct("99% ");
    } else {
        latency = Latency::default();
    }
    Ok(ToolReport {
        rps,
        done,
        failed,
        errored,
        latency,
    })
}

fn parse_h2load(out: &str) -> Result<ToolReport, String> {
    let finished = field(out, "finished in").ok_or("no `finished in` line in h2load's output")?;
    let rps = finished
        .split(',')
        .find(|p| p.contains("req/s"))
        .and_then(first_number)
        .ok_or("no req/s in h2load's `finished in` line")?;
    let req = field(out, "requests:").ok_or("no `requests:` line in h2load's output")?;
    let count = |what: &str| -> u64 {
        req.split(',')
            .find(|p| p.trim().ends_with(what))
            .and_then(first_number)
            .unwrap_or(0.0) as u64
    };
    let mut latency = Latency::default();
    if let Some(l) = field(out, "time for request:") {
        let cols: Vec<&str> = l.split_whitespace().collect();
        latency.max_us = cols.get(1).and_then(|c| duration_us(c));
        latency.mean_us = cols.get(2).and_then(|c| duration_us(c));
    }
    Ok(ToolReport {
        rps,
        done: count("done"),
        failed: count("failed"),
        errored: count("errored") + count("timeout"),
        latency,
    })
}

fn parse_ab(out: &str) -> Result<ToolReport, String> {
    let rps = field(out, "Requests per second:")
        .and_then(first_number)
        .ok_or("no `Requests per second:` line in ab's output")?;
    let done = field(out, "Complete requests:")
        .and_then(first_number)
        .ok_or("no `Complete requests:` line in ab's output")? as u64;
    let errored = field(out, "Failed requests:")
        .and_then(first_number)
        .unwrap_or(0.0) as u64;
    let failed = field(out, "Non-2xx responses:")
        .and_then(first_number)
        .unwrap_or(0.0) as u64;
    // ab prints percentiles in whole milliseconds.
    let pct = |p: &str| field(out, p).and_then(first_number).map(|ms| ms * 1e3);
    let latency = Latency {
        mean_us: field(out, "Time per request:")
            .and_then(first_number)
            .map(|ms| ms * 1e3),
        p50_us: pct("50%"),
        p90_us: pct("90%"),
        p99_us: pct("99%"),
        p99_9_us: None,
        max_us: pct("100%"),
    };
    Ok(ToolReport {
        rps,
        done,
        failed,
        errored,
        latency,
    })
}

fn parse_uring_load(out: &str) -> Result<ToolReport, String> {
    // The JSON object is the last thing on stdout; progress lines, if any, go before it.
    let start = out
        .find('{')
        .ok_or("no JSON object in uring-load's output")?;
    let v: serde_json::Value = serde_json::from_str(out[start..].trim())
        .map_err(|e| format!("uring-load's JSON does not parse: {e}"))?;
    let num = |path: &[&str]| -> Option<f64> {
        let mut x = &v;
        for p in path {
            x = x.get(p)?;
        }
        x.as_f64()
    };
    let rps = num(&["rps"]).ok_or("uring-load's JSON has no `rps`")?;
    let lat = |k: &str| num(&["latency_us", k]);
    Ok(ToolReport {
        rps,
        done: num(&["requests", "done"]).unwrap_or(0.0) as u64,
        failed: num(&["requests", "failed"]).unwrap_or(0.0) as u64,
        errored: num(&["requests", "errored"]).unwrap_or(0.0) as u64,
        latency: Latency {
            mean_us: lat("mean"),
            p50_us: lat("p50"),
            p90_us: lat("p90"),
            p99_us: lat("p99"),
            p99_9_us: lat("p99_9"),
            max_us: lat("max"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 1s test @ http://127.0.0.1:18080/plaintext
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    98.46us  377.89us   7.24ms   97.60%
    Req/Sec   111.66k    24.62k  137.47k    72.73%
  Latency Distribution
     50%   50.00us
     75%   61.00us
     90%   86.00us
     99%    1.48ms
  121797 requests in 1.10s, 9.06MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec: 110717.10
Transfer/sec:      8.24MB
";

    const H2LOAD: &str = "finished in 1.00s, 105164.00 req/s, 7.82MB/s
requests: 105164 total, 105172 started, 105160 done, 105164 succeeded, 4 failed, 2 errored, 1 timeout
status codes: 105164 2xx, 0 3xx, 0 4xx, 0 5xx
                     min         max         mean         sd        +/- sd
time for request:       31us      2.18ms        75us        38us    94.42%
time for connect:       10us       171us        92us        53us    62.50%
";

    const AB: &str = "Complete requests:      51234
Failed requests:        3
Non-2xx responses:      5
Keep-Alive requests:    51234
Requests per second:    51200.12 [#/sec] (mean)
Time per request:       1.250 [ms] (mean)
Time per request:       0.020 [ms] (mean, across all concurrent requests)
Percentage of the requests served within a certain time (ms)
  50%      1
  66%      1
  90%      2
  99%      4
 100%      9 (longest request)
";

    #[test]
    fn parses_wrk() {
        let r = parse_wrk(WRK, false).unwrap();
        assert_eq!(r.rps, 110717.10);
        assert_eq!(r.done, 121797);
        assert_eq!(r.errored, 6);
        assert_eq!(r.failed, 7);
        assert_eq!(r.latency.p50_us, Some(50.0));
        assert_eq!(r.latency.p99_us, Some(1480.0));
        assert_eq!(r.latency.max_us, Some(7240.0));
        assert_eq!(parse_wrk(WRK, true).unwrap().latency, Latency::default());
        assert!(parse_wrk("garbage", false).is_err());
    }

    #[test]
    fn parses_h2load() {
        let r = parse_h2load(H2LOAD).unwrap();
        assert_eq!(r.rps, 105164.0);
        assert_eq!(r.done, 105160);
        assert_eq!(r.failed, 4);
        assert_eq!(r.errored, 3);
        assert_eq!(r.latency.mean_us, Some(75.0));
        assert_eq!(r.latency.max_us, Some(2180.0));
        assert!(parse_h2load("requests: 1 total").is_err());
    }

    #[test]
    fn parses_ab() {
        let r = parse_ab(AB).unwrap();
        assert_eq!(r.rps, 51200.12);
        assert_eq!(r.done, 51234);
        assert_eq!((r.failed, r.errored), (5, 3));
        assert_eq!(r.latency.p99_us, Some(4000.0));
        assert_eq!(r.latency.max_us, Some(9000.0));
        assert_eq!(r.latency.mean_us, Some(1250.0));
    }

    #[test]
    fn parses_uring_load_json() {
        let out = r#"{"rps": 1234.5, "elapsed_s": 1.0,
            "requests": {"started": 10, "done": 10, "succeeded": 9, "failed": 1, "errored": 0},
            "latency_us": {"min": 1, "mean": 2.5, "p50": 2, "p90": 3, "p99": 4, "p99_9": 5, "max": 6}}"#;
        let r = parse_uring_load(out).unwrap();
        assert_eq!(r.rps, 1234.5);
        assert_eq!((r.done, r.failed), (10, 1));
        assert_eq!(r.latency.p99_9_us, Some(5.0));
        assert!(parse_uring_load("error: refused").is_err());
    }

    #[test]
    fn not_applicable_cells_say_why() {
        let dir = std::env::temp_dir();
        let spec = RunSpec {
            base_url: "http://127.0.0.1:1".into(),
            duration: Duration::from_secs(1),
            threads: 1,
            rate: 1000,
            uring_load: Path::new("uring-load"),
            scratch: &dir,
        };
        assert!(command(Tool::Ab, Workload::Pipe16, &spec).is_err());
        assert!(command(Tool::Wrk, Workload::Rate, &spec).is_err());
        let ul = command(Tool::UringLoad, Workload::Rate, &spec).unwrap();
        assert!(ul.windows(2).any(|w| w[0] == "-R" && w[1] == "1000"));
        let h2 = command(Tool::H2load, Workload::Pipe16, &spec).unwrap();
        assert!(h2.windows(2).any(|w| w[0] == "-m" && w[1] == "16"));
    }
}
