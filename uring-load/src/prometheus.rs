//! `--prometheus ADDR`: the run's counters and latency histogram in Prometheus' text
//! exposition format (version 0.0.4) while it runs, as vegeta's `-prometheus-addr`.
//!
//! The figures come from the merged intervals (the same feed as the latency log and the
//! live view), added up as they arrive, so a scrape costs the load threads nothing. A
//! small blocking responder on its own thread answers `GET /metrics` (and `/`); it polls
//! a non-blocking listener so it stops when the exporter is dropped. After the report,
//! `uring_load_finished` turns 1 and `--prometheus-linger` keeps the last figures up for
//! a final scrape.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use uring_common::stats::recorder::new_latency_histogram;

use crate::intervals::Interval;
use crate::timeline::IntervalSink;

/// Upper bounds of the latency buckets, in seconds (Prometheus' defaults, finer below 5 ms).
const BUCKETS_S: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// The figures so far, summed over the intervals.
#[derive(Debug)]
pub struct Totals {
    pub done: u64,
    pub errored: u64,
    pub non_2xx: u64,
    pub latency_us: Histogram<u64>,
    /// Responses per second of the last interval.
    pub last_rps: f64,
    pub finished: bool,
}

impl Default for Totals {
    fn default() -> Totals {
        Totals {
            done: 0,
            errored: 0,
            non_2xx: 0,
            latency_us: new_latency_histogram(),
            last_rps: 0.0,
            finished: false,
        }
    }
}

impl Totals {
    /// Add one merged interval.
    pub fn add(&mut self, i: &Interval) {
        self.done += i.done;
        self.errored += i.errored;
        self.non_2xx += i.non_2xx;
        let _ = self.latency_us.add(&i.latency_us);
        self.last_rps = i.rps();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let counter = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} counter");
            let _ = writeln!(o, "{name} {v}");
        };
        counter(
            &mut o,
            "uring_load_responses_total",
            "Complete responses, any status.",
            self.done,
        );
        counter(
            &mut o,
            "uring_load_errors_total",
            "Requests ended without a complete response.",
            self.errored,
        );
        counter(
            &mut o,
            "uring_load_responses_non_2xx_total",
            "Complete responses with a status other than 2xx.",
            self.non_2xx,
        );
        let _ = writeln!(
            o,
            "# HELP uring_load_interval_requests_per_second Responses per second in the last interval."
        );
        let _ = writeln!(o, "# TYPE uring_load_interval_requests_per_second gauge");
        let _ = writeln!(
            o,
            "uring_load_interval_requests_per_second {}",
            self.last_rps
        );
        let _ = writeln!(
            o,
            "# HELP uring_load_finished 1 once the run ended and its report was written."
        );
        let _ = writeln!(o, "# TYPE uring_load_finished gauge");
        let _ = writeln!(o, "uring_load_finished {}", u8::from(self.finished));
        let name = "uring_load_latency_seconds";
        let _ = writeln!(
            o,
            "# HELP {name} Latency of complete responses (from the intended send time with -R)."
        );
        let _ = writeln!(o, "# TYPE {name} histogram");
        let h = &self.latency_us;
        for le in BUCKETS_S {
            let us = (le * 1e6) as u64;
            let n = if h.is_empty() {
                0
            } else {
                h.count_between(0, us)
            };
            let _ = writeln!(o, "{name}_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {}", h.len());
        let sum_s = if h.is_empty() {
            0.0
        } else {
            h.mean() * h.len() as f64 / 1e6
        };
        let _ = writeln!(o, "{name}_sum {sum_s}");
        let _ = writeln!(o, "{name}_count {}", h.len());
        o
    }
}

/// The running exporter; stops serving when dropped.
pub struct Exporter {
    totals: Arc<Mutex<Totals>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl Exporter {
    /// Listen on `addr` (e.g. `127.0.0.1:9464`) and serve from a thread of its own.
    pub fn start(addr: &str) -> Result<Exporter, String> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| format!("--prometheus {addr}: cannot listen: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("--prometheus {addr}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("--prometheus {addr}: {e}"))?;
        let totals: Arc<Mutex<Totals>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (totals.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name("uring-load-prometheus".into())
            .spawn(move || serve(&listener, &t, &s))
            .map_err(|e| format!("--prometheus: cannot start its thread: {e}"))?;
        Ok(Exporter {
            totals,
            stop,
            handle: Some(handle),
            addr: local,
        })
    }

    /// The timeline sink that adds every interval.
    pub fn sink(&self) -> IntervalSink {
        let totals = self.totals.clone();
        Arc::new(move |i: &Interval| lock(&totals).add(i))
    }

    /// The run ended and its report is out.
    pub fn finish(&self) {
        lock(&self.totals).finished = true;
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn lock(t: &Mutex<Totals>) -> std::sync::MutexGuard<'_, Totals> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

fn serve(listener: &TcpListener, totals: &Mutex<Totals>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((sock, _)) => answer(sock, totals),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Read one request head (bounded in size and time) and answer it; the connection closes.
fn answer(mut sock: TcpStream, totals: &Mutex<Totals>) {
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = sock.set_write_timeout(Some(Duration::from_secs(2)));
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, body) = match (method, path) {
        (b"GET", b"/metrics" | b"/") => ("200 OK", lock(totals).render()),
        (b"GET", _) => (
            "404 Not Found",
            "not found: the metrics are at /metrics\n".into(),
        ),
        _ => ("405 Method Not Allowed", "GET /metrics\n".into()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(response.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn interval(latencies_us: &[u64], errored: u64) -> Interval {
        let mut h = new_latency_histogram();
        for &v in latencies_us {
            h.record(v).unwrap();
        }
        Interval {
            index: 0,
            offset: Duration::ZERO,
            origin_wall: SystemTime::now(),
            length: Duration::from_secs(1),
            latency_us: h,
            done: latencies_us.len() as u64,
            errored,
            non_2xx: 1,
        }
    }

    #[test]
    fn totals_add_up_and_render_as_exposition_text() {
        let mut t = Totals::default();
        t.add(&interval(&[50, 200, 800], 1));
        t.add(&interval(&[3000, 3000], 0));
        let text = t.render();
        assert!(text.contains("uring_load_responses_total 5\n"), "{text}");
        assert!(text.contains("uring_load_errors_total 1\n"), "{text}");
        assert!(
            text.contains("uring_load_responses_non_2xx_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("uring_load_latency_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("uring_load_latency_seconds_bucket{le=\"0.001\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("uring_load_latency_seconds_bucket{le=\"0.005\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("uring_load_latency_seconds_bucket{le=\"+Inf\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("uring_load_latency_seconds_count 5\n"),
            "{text}"
        );
        assert!(text.contains("uring_load_finished 0\n"), "{text}");
        assert!(
            text.contains("uring_load_interval_requests_per_second 2\n"),
            "{text}"
        );
        // Every sample line is `name{labels} value` after its TYPE line.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').unwrap();
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn serves_metrics_over_http_and_stops_when_dropped() {
        let e = Exporter::start("127.0.0.1:0").unwrap();
        (e.sink())(&interval(&[100], 0));
        e.finish();
        let get = |path: &str| {
            let mut s = TcpStream::connect(e.addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let ok = get("/metrics");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("uring_load_responses_total 1\n"));
        assert!(ok.contains("uring_load_finished 1\n"));
        assert!(get("/other").starts_with("HTTP/1.1 404"));
        let addr = e.addr;
        drop(e);
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    }
}
