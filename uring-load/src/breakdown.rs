//! Statistics per target and per host of a request mix: recorded by each thread into its
//! [`Tally`] (the run's recorder plus one recorder per target), merged exactly like the
//! run's, and reported as a line per target (and per host) in the text report and as
//! `targets` and `hosts` in the JSON (docs/report-schema.md), which `merge` reads back.

use std::fmt::Write as _;

use serde_json::{json, Value};
use uring_common::stats::summary::{recorder_from_json, report_json};
use uring_common::stats::{ErrorKind, Recorder, Summary};

use crate::conn::Sink;
use crate::targets::Mix;
use crate::units::format_us;

/// The JSON report's schema version: 2 added `targets` and `hosts`, 3 `thresholds`,
/// `baseline`, `warmup` and `runs.p50_us`/`p99_us`, 4 the protocol fields, 5 the HTTP/2
/// error classes (an older `merge` would drop them; reports without `schema_version`
/// are version 1).
pub const SCHEMA_VERSION: u64 = 5;

/// Connections made to one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCounts {
    pub opened: u64,
    pub reconnects: u64,
}

/// What one thread records: the run's recorder, and with more than one target one
/// recorder per target and connection counts per host.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub all: Recorder,
    /// Empty with a single target (the run's recorder says it all).
    pub targets: Vec<Recorder>,
    pub hosts: Vec<HostCounts>,
}

impl Tally {
    pub fn new(targets: usize, hosts: usize) -> Tally {
        Tally {
            all: Recorder::new(),
            targets: if targets > 1 {
                (0..targets).map(|_| Recorder::new()).collect()
            } else {
                Vec::new()
            },
            hosts: vec![HostCounts::default(); hosts.max(1)],
        }
    }

    /// A connection to `host` opened (a reconnect if it replaced one the server closed).
    pub fn connected(&mut self, host: usize, reconnect: bool) {
        self.all.counters.connections_opened += 1;
        self.hosts[host].opened += 1;
        if reconnect {
            self.all.counters.reconnects += 1;
            self.hosts[host].reconnects += 1;
        }
    }

    /// Add another thread's tally (exact).
    pub fn merge(&mut self, other: &Tally) {
        self.all.merge(&other.all);
        for (a, b) in self.targets.iter_mut().zip(&other.targets) {
            a.merge(b);
        }
        for (a, b) in self.hosts.iter_mut().zip(&other.hosts) {
            a.opened += b.opened;
            a.reconnects += b.reconnects;
        }
    }
}

impl Sink for Tally {
    #[inline]
    fn all(&mut self) -> &mut Recorder {
        &mut self.all
    }
    #[inline]
    fn answered(&mut self, target: u32, status: u16, latency_us: u64) {
        self.all.answered(target, status, latency_us);
        if let Some(t) = self.targets.get_mut(target as usize) {
            t.answered(target, status, latency_us);
        }
    }
    #[inline]
    fn errored(&mut self, target: u32, kind: ErrorKind) {
        self.all.errored(target, kind);
        if let Some(t) = self.targets.get_mut(target as usize) {
            t.errored(target, kind);
        }
    }
}

/// One target's statistics, with what names it.
#[derive(Debug, Clone)]
pub struct TargetStats {
    pub label: String,
    pub host: usize,
    pub weight: u32,
    pub rec: Recorder,
}

/// One host's label and connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStats {
    pub label: String,
    pub connections: HostCounts,
}

/// The per-target and per-host part of a report; empty for a single target.
#[derive(Debug, Clone, Default)]
pub struct Breakdown {
    pub targets: Vec<TargetStats>,
    pub hosts: Vec<HostStats>,
}

impl Breakdown {
    /// Name a run's merged tally (its per-target recorders move in).
    pub fn of(mix: &Mix, tally: &mut Tally) -> Breakdown {
        if tally.targets.is_empty() {
            return Breakdown::default();
        }
        let targets = mix
            .targets
            .iter()
            .zip(std::mem::take(&mut tally.targets))
            .map(|(t, rec)| TargetStats {
                label: t.label.clone(),
                host: t.host,
                weight: t.weight,
                rec,
            })
            .collect();
        let hosts = mix
            .hosts
            .iter()
            .zip(&tally.hosts)
            .map(|(h, &connections)| HostStats {
                label: h.label(),
                connections,
            })
            .collect();
        Breakdown { targets, hosts }
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Add a breakdown of the same targets (another run or shard); `Err` says how the
    /// targets differ.
    pub fn merge(&mut self, other: &Breakdown) -> Result<(), String> {
        let same = self.targets.len() == other.targets.len()
            && self.hosts.len() == other.hosts.len()
            && self
                .targets
                .iter()
                .zip(&other.targets)
                .all(|(a, b)| a.label == b.label && a.host == b.host && a.weight == b.weight)
            && self
                .hosts
                .iter()
                .zip(&other.hosts)
                .all(|(a, b)| a.label == b.label);
        if !same {
            let names = |b: &Breakdown| {
                let l: Vec<&str> = b.targets.iter().map(|t| t.label.as_str()).collect();
                if l.is_empty() {
                    "one target".to_string()
                } else {
                    l.join(", ")
                }
            };
            return Err(format!("{} vs {}", names(self), names(other)));
        }
        for (a, b) in self.targets.iter_mut().zip(&other.targets) {
            a.rec.merge(&b.rec);
        }
        for (a, b) in self.hosts.iter_mut().zip(&other.hosts) {
            a.connections.opened += b.connections.opened;
            a.connections.reconnects += b.connections.reconnects;
        }
        Ok(())
    }

    /// Host `h`'s requests: its targets' recorders merged.
    fn host_recorder(&self, h: usize) -> Recorder {
        let mut r = Recorder::new();
        for t in self.targets.iter().filter(|t| t.host == h) {
            r.merge(&t.rec);
        }
        r
    }

    /// A line per target, and with several hosts a line per host.
    pub fn text(&self) -> String {
        let mut o = String::new();
        if self.is_empty() {
            return o;
        }
        let _ = writeln!(o, "targets:");
        let _ = writeln!(
            o,
            "  {:>3} {:>9} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9} {:>9}  target",
            "#", "done", "errored", "2xx", "3xx", "4xx", "5xx", "p50", "p99"
        );
        for (k, t) in self.targets.iter().enumerate() {
            let _ = writeln!(o, "  {:>3} {}  {}", k + 1, row(&t.rec), t.label);
        }
        if self.hosts.len() > 1 {
            let _ = writeln!(o, "hosts:");
            let _ = writeln!(
                o,
                "  {:>3} {:>9} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9} {:>9}  host (connections opened)",
                "#", "done", "errored", "2xx", "3xx", "4xx", "5xx", "p50", "p99"
            );
            for (k, h) in self.hosts.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "  {:>3} {}  {} ({})",
                    k + 1,
                    row(&self.host_recorder(k)),
                    h.label,
                    h.connections.opened
                );
            }
        }
        o
    }

    /// `targets` and `hosts` for the JSON report.
    pub fn add_to(&self, obj: &mut serde_json::Map<String, Value>) {
        if self.is_empty() {
            return;
        }
        let targets: Vec<Value> = self
            .targets
            .iter()
            .map(|t| {
                let mut v = stats_json(&t.rec);
                v["label"] = t.label.clone().into();
                v["host"] = t.host.into();
                v["weight"] = t.weight.into();
                v
            })
            .collect();
        let hosts: Vec<Value> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(k, h)| {
                let mut v = stats_json(&self.host_recorder(k));
                if let Some(m) = v.as_object_mut() {
                    m.remove("histogram");
                }
                v["label"] = h.label.clone().into();
                v["connections"] = json!({
                    "opened": h.connections.opened,
                    "reconnects": h.connections.reconnects,
                });
                v
            })
            .collect();
        obj.insert("targets".into(), targets.into());
        obj.insert("hosts".into(), hosts.into());
    }

    /// The breakdown of a JSON report (empty when it has none); exact for counts and
    /// histograms.
    pub fn from_json(v: &Value) -> Result<Breakdown, String> {
        let Some(targets) = v.get("targets") else {
            return Ok(Breakdown::default());
        };
        let targets = targets
            .as_array()
            .ok_or("report field 'targets' is not an array")?;
        let hosts = v
            .get("hosts")
            .and_then(Value::as_array)
            .ok_or("report field 'hosts' is not an array")?;
        let mut out = Breakdown::default();
        for (k, h) in hosts.iter().enumerate() {
            let field = |f: &str| {
                h.get("connections")
                    .and_then(|c| c.get(f))
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format!("report field 'hosts[{k}].connections.{f}' is missing"))
            };
            out.hosts.push(HostStats {
                label: text(h, "label", &format!("hosts[{k}]"))?,
                connections: HostCounts {
                    opened: field("opened")?,
                    reconnects: field("reconnects")?,
                },
            });
        }
        for (k, t) in targets.iter().enumerate() {
            let at = format!("targets[{k}]");
            // The per-target entries leave out what is only counted per run.
            let mut full = t.clone();
            full["elapsed_s"] = 0.0.into();
            full["bytes"] = json!({ "total": 0, "headers": 0, "body": 0 });
            full["connections"] = json!({ "opened": 0, "reconnects": 0 });
            let (rec, _) = recorder_from_json(&full).map_err(|e| format!("{at}: {e}"))?;
            let host = t
                .get("host")
                .and_then(Value::as_u64)
                .filter(|&h| (h as usize) < out.hosts.len())
                .ok_or_else(|| format!("report field '{at}.host' is not a host index"))?;
            let weight = t
                .get("weight")
                .and_then(Value::as_u64)
                .and_then(|w| u32::try_from(w).ok())
                .ok_or_else(|| format!("report field '{at}.weight' is not a weight"))?;
            out.targets.push(TargetStats {
                label: text(t, "label", &at)?,
                host: host as usize,
                weight,
                rec,
            });
        }
        Ok(out)
    }
}

fn text(v: &Value, key: &str, at: &str) -> Result<String, String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("report field '{at}.{key}' is not a string"))
}

/// The report's schema for one target: requests, status codes, errors, latency and the
/// histogram (bytes and connections are counted per run, not per target).
fn stats_json(rec: &Recorder) -> Value {
    let mut v = report_json(rec, 0.0);
    if let Some(m) = v.as_object_mut() {
        for k in ["rps", "elapsed_s", "bytes", "connections", "first_errors"] {
            m.remove(k);
        }
    }
    v
}

fn row(rec: &Recorder) -> String {
    let c = &rec.counters;
    let s = Summary::of(rec);
    format!(
        "{:>9} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9} {:>9}",
        c.done,
        c.errored,
        c.class(2),
        c.class(3),
        c.class(4),
        c.class(5),
        format_us(s.p50 as f64),
        format_us(s.p99 as f64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{tests_support, Policy};

    fn busy() -> Breakdown {
        let mix = tests_support::mix(3, Policy::RoundRobin);
        let mut t = Tally::new(3, 1);
        for i in 0..300u32 {
            let status = [200, 404, 503][(i % 3) as usize];
            t.answered(i % 3, status, u64::from(100 + i));
        }
        t.errored(1, ErrorKind::Timeout);
        t.connected(0, false);
        t.targets[0].counters.started = 100;
        Breakdown::of(&mix, &mut t)
    }

    #[test]
    fn tally_records_each_target_and_the_run() {
        let mut t = Tally::new(2, 1);
        t.answered(1, 200, 50);
        t.errored(0, ErrorKind::Read);
        assert_eq!(t.all.counters.done, 1);
        assert_eq!(t.all.counters.errored, 1);
        assert_eq!(t.targets[1].counters.done, 1);
        assert_eq!(t.targets[0].counters.errors_read, 1);
        // One target: nothing recorded twice.
        let mut one = Tally::new(1, 1);
        one.answered(0, 200, 50);
        assert!(one.targets.is_empty());
        assert_eq!(one.all.counters.done, 1);
    }

    #[test]
    fn text_has_a_line_per_target() {
        let b = busy();
        let text = b.text();
        let line = text.lines().find(|l| l.ends_with("GET /1")).unwrap();
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            &cols[..7],
            ["2", "100", "1", "0", "0", "100", "0"],
            "{line}"
        );
        assert_eq!(text.lines().count(), 5, "{text}");
    }

    #[test]
    fn json_round_trip_and_merge_are_exact() {
        let b = busy();
        let mut obj = serde_json::Map::new();
        b.add_to(&mut obj);
        let v = Value::Object(obj);
        assert_eq!(v["targets"][2]["status_codes"]["5xx"], 100);
        assert_eq!(v["targets"][0]["requests"]["started"], 100);
        assert_eq!(v["hosts"][0]["requests"]["done"], 300);
        let back = Breakdown::from_json(&v).unwrap();
        for (a, b) in back.targets.iter().zip(&b.targets) {
            assert_eq!(a.rec.counters, b.rec.counters);
            assert_eq!(a.rec.latency_us, b.rec.latency_us);
        }
        let mut m = back.clone();
        m.merge(&b).unwrap();
        assert_eq!(m.targets[1].rec.counters.done, 200);
        assert_eq!(m.targets[1].rec.latency_us.len(), 200);
        assert_eq!(m.hosts[0].connections.opened, 2);
        let mut other = b.clone();
        other.targets[2].label = "GET /other".into();
        assert!(m.merge(&other).unwrap_err().contains("GET /other"));
        assert!(m.merge(&Breakdown::default()).is_err());
        assert!(Breakdown::default().merge(&b).is_err());
        assert!(Breakdown::default().merge(&Breakdown::default()).is_ok());
    }
}
