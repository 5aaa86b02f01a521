//! `uring-load merge`: add `--json` reports into one exact report.
//!
//! Counters add and latency histograms add bucket by bucket, so the merged percentiles
//! are those of one run that saw every sample: latency is merged, never averaged.
//! Reports of the shards of one run (`--shard`) are checked first: one run id, one shard
//! count, no shard twice, none missing. Reports without a shard (sequential runs on one
//! machine) merge as before; the two kinds do not mix.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};
use uring_common::stats::summary::{recorder_from_json, report_json};
use uring_common::stats::{Recorder, Summary};

use crate::breakdown::{Breakdown, SCHEMA_VERSION};
use crate::error::{MergeError, ReportError};
use crate::report::{self, RunFacts};
use crate::shard::Shard;
use crate::units::format_us;

/// What the merged report says about how latency was combined.
pub const LATENCY_MERGED: &str =
    "histograms merged bucket by bucket across reports; percentiles are never averaged";

/// One report read back, with what identifies its shard.
#[derive(Debug, Clone)]
pub struct ShardReport {
    pub path: String,
    pub recorder: Recorder,
    pub elapsed_s: f64,
    pub run_id: Option<String>,
    pub shard: Option<Shard>,
    pub host: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// Per target and host (empty for a single target).
    pub breakdown: Breakdown,
}

/// Read one `--json` report.
pub fn read_report(path: &str) -> Result<ShardReport, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|err| ReportError::Read {
        path: path.to_string(),
        err,
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|err| ReportError::NotJson {
        path: path.to_string(),
        err,
    })?;
    from_json(path, &v)
}

/// A report from its JSON value (`path` names it in errors).
pub fn from_json(path: &str, v: &Value) -> Result<ShardReport, ReportError> {
    let not_a_report = |why: String| ReportError::NotAReport {
        path: path.to_string(),
        why,
    };
    let version = v.get("schema_version").map_or(Some(1), Value::as_u64);
    match version {
        Some(n) if n <= SCHEMA_VERSION => {}
        _ => {
            return Err(not_a_report(format!(
                "schema_version {} is newer than this uring-load reads ({SCHEMA_VERSION}): merge with a newer uring-load",
                v["schema_version"]
            )))
        }
    }
    let (recorder, elapsed_s) = recorder_from_json(v).map_err(not_a_report)?;
    let breakdown = Breakdown::from_json(v).map_err(not_a_report)?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let shard = match v.get("shard") {
        None | Some(Value::Null) => None,
        Some(s) => {
            let field = |k: &str| {
                s.get(k)
                    .and_then(Value::as_u64)
                    .and_then(|x| u32::try_from(x).ok())
            };
            match (field("index"), field("count")) {
                (Some(index), Some(count)) if index < count => Some(Shard { index, count }),
                _ => {
                    return Err(not_a_report(
                        "report field 'shard' is not {index, count} with index < count".into(),
                    ))
                }
            }
        }
    };
    Ok(ShardReport {
        path: path.to_string(),
        recorder,
        elapsed_s,
        run_id: text("run_id"),
        shard,
        host: text("host"),
        started_at: text("started_at"),
        ended_at: text("ended_at"),
        breakdown,
    })
}

/// The run id and shard count shared by sharded reports (`None`: no report is sharded),
/// or why they do not make one run.
pub fn check_shards(reports: &[ShardReport]) -> Result<Option<(String, u32)>, MergeError> {
    let Some(first) = reports.iter().find(|r| r.shard.is_some()) else {
        return Ok(None);
    };
    if let Some(plain) = reports.iter().find(|r| r.shard.is_none()) {
        return Err(MergeError::MixedSharding {
            sharded: first.path.clone(),
            unsharded: plain.path.clone(),
        });
    }
    let id = first.run_id.clone().unwrap_or_default();
    let count = first.shard.map_or(1, |s| s.count);
    let mut seen: Vec<Option<&str>> = vec![None; count as usize];
    for r in reports {
        let rid = r.run_id.clone().unwrap_or_default();
        if rid != id {
            return Err(MergeError::DifferentRuns {
                first: (first.path.clone(), id),
                other: (r.path.clone(), rid),
            });
        }
        let s = r.shard.expect("checked: every report is sharded");
        if s.count != count {
            return Err(MergeError::DifferentShardCounts {
                first: (first.path.clone(), count),
                other: (r.path.clone(), s.count),
            });
        }
        match seen[s.index as usize] {
            Some(earlier) => {
                return Err(MergeError::DuplicateShard {
                    shard: s,
                    first: earlier.to_string(),
                    second: r.path.clone(),
                })
            }
            None => seen[s.index as usize] = Some(&r.path),
        }
    }
    let missing: Vec<u32> = (0..count).filter(|&i| seen[i as usize].is_none()).collect();
    if !missing.is_empty() {
        return Err(MergeError::MissingShards {
            run_id: id,
            count,
            missing,
        });
    }
    Ok(Some((id, count)))
}

/// The merge of `reports`, checked; its elapsed time is the longest report's (runs made
/// at the same time on several machines).
#[derive(Debug)]
pub struct Merged {
    pub recorder: Recorder,
    pub elapsed_s: f64,
    /// The run id and shard count when the reports are shards of one run.
    pub run: Option<(String, u32)>,
    /// The inputs, by shard index when sharded, else in the order given.
    pub reports: Vec<ShardReport>,
    /// Per target and host, merged.
    pub breakdown: Breakdown,
}

pub fn merge(mut reports: Vec<ShardReport>) -> Result<Merged, MergeError> {
    if reports.is_empty() {
        return Err(MergeError::NoReports);
    }
    let run = check_shards(&reports)?;
    if run.is_some() {
        reports.sort_by_key(|r| r.shard.map(|s| s.index));
    }
    let mut recorder = Recorder::new();
    let mut elapsed_s: f64 = 0.0;
    let mut breakdown = reports[0].breakdown.clone();
    for (k, r) in reports.iter().enumerate() {
        recorder.merge(&r.recorder);
        elapsed_s = elapsed_s.max(r.elapsed_s);
        if k > 0 {
            breakdown
                .merge(&r.breakdown)
                .map_err(|how| MergeError::DifferentTargets {
                    first: reports[0].path.clone(),
                    other: r.path.clone(),
                    how,
                })?;
        }
    }
    Ok(Merged {
        recorder,
        elapsed_s,
        run,
        reports,
        breakdown,
    })
}

fn rps(rec: &Recorder, elapsed_s: f64) -> f64 {
    if elapsed_s > 0.0 {
        rec.counters.done as f64 / elapsed_s
    } else {
        0.0
    }
}

impl Merged {
    /// The merged JSON report: the common schema, plus for shards `run_id`, the earliest
    /// `started_at` and latest `ended_at`, and one row per shard in `shards`.
    pub fn json(&self) -> Value {
        let mut v = report_json(&self.recorder, self.elapsed_s);
        let Some(obj) = v.as_object_mut() else {
            return v;
        };
        obj.insert("schema_version".into(), SCHEMA_VERSION.into());
        self.breakdown.add_to(obj);
        obj.insert("merged_reports".into(), self.reports.len().into());
        obj.insert("latency_merge".into(), LATENCY_MERGED.into());
        if let Some((id, count)) = &self.run {
            obj.insert("run_id".into(), id.clone().into());
            let starts = self.reports.iter().filter_map(|r| r.started_at.clone());
            if let Some(s) = starts.min() {
                obj.insert("started_at".into(), s.into());
            }
            let ends = self.reports.iter().filter_map(|r| r.ended_at.clone());
            if let Some(e) = ends.max() {
                obj.insert("ended_at".into(), e.into());
            }
            let rows: Vec<Value> = self
                .reports
                .iter()
                .map(|r| {
                    let c = &r.recorder.counters;
                    let s = Summary::of(&r.recorder);
                    json!({
                        "index": r.shard.map(|s| s.index),
                        "count": count,
                        "host": r.host,
                        "file": r.path,
                        "started_at": r.started_at,
                        "ended_at": r.ended_at,
                        "elapsed_s": r.elapsed_s,
                        "rps": rps(&r.recorder, r.elapsed_s),
                        "requests": { "started": c.started, "done": c.done, "errored": c.errored },
                        "latency_us": { "p50": s.p50, "p99": s.p99, "max": s.max },
                    })
                })
                .collect();
            obj.insert("shards".into(), rows.into());
        }
        v
    }

    /// The merged text report: one row per input and the total, then the full report
    /// of the merge.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let what = match &self.run {
            Some((id, count)) => format!("{count} shards of run {id}"),
            None => format!("{} reports", self.reports.len()),
        };
        let _ = writeln!(o, "merged {what}; latency: {LATENCY_MERGED}");
        let _ = writeln!(
            o,
            "  {:<7} {:<20} {:>12} {:>10} {:>8} {:>10} {:>10}",
            "shard", "host", "req/s", "done", "errored", "p50", "p99"
        );
        for (k, r) in self.reports.iter().enumerate() {
            let s = Summary::of(&r.recorder);
            let c = &r.recorder.counters;
            let label = r
                .shard
                .map_or_else(|| format!("#{}", k + 1), |s| s.to_string());
            let _ = writeln!(
                o,
                "  {:<7} {:<20} {:>12.2} {:>10} {:>8} {:>10} {:>10}",
                label,
                r.host.as_deref().unwrap_or("-"),
                rps(&r.recorder, r.elapsed_s),
                c.done,
                c.errored,
                format_us(s.p50 as f64),
                format_us(s.p99 as f64),
            );
        }
        let s = Summary::of(&self.recorder);
        let c = &self.recorder.counters;
        let _ = writeln!(
            o,
            "  {:<7} {:<20} {:>12.2} {:>10} {:>8} {:>10} {:>10}",
            "total",
            "",
            rps(&self.recorder, self.elapsed_s),
            c.done,
            c.errored,
            format_us(s.p50 as f64),
            format_us(s.p99 as f64),
        );
        let _ = writeln!(o);
        let facts = RunFacts {
            total: c.started,
            elapsed: Duration::from_secs_f64(self.elapsed_s.max(0.0)),
            interrupted: false,
            rate: None,
            tier: None,
            protocol: None,
        };
        o.push_str(&report::text(&self.recorder, &facts));
        o.push_str(&self.breakdown.text());
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uring_common::stats::ErrorKind;

    fn shard_report(path: &str, run: &str, index: u32, count: u32, done: u64) -> ShardReport {
        let mut rec = Recorder::new();
        for k in 0..done {
            rec.record_latency_us(100 * (u64::from(index) + 1) + k);
            rec.counters.record_status(200);
        }
        rec.counters.started = done;
        let mut v = report_json(&rec, 2.0);
        v["run_id"] = run.into();
        v["shard"] = json!({ "index": index, "count": count });
        v["host"] = format!("host{index}").into();
        from_json(path, &v).unwrap()
    }

    #[test]
    fn shards_of_one_run_merge_exactly() {
        let m = merge(vec![
            shard_report("c", "r1", 2, 3, 30),
            shard_report("a", "r1", 0, 3, 10),
            shard_report("b", "r1", 1, 3, 20),
        ])
        .unwrap();
        assert_eq!(m.run, Some(("r1".to_string(), 3)));
        assert_eq!(m.recorder.counters.done, 60);
        assert_eq!(m.recorder.latency_us.len(), 60);
        let v = m.json();
        assert_eq!(v["run_id"], "r1");
        let rows = v["shards"].as_array().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["index"], 0);
        assert_eq!(rows[2]["requests"]["done"], 30);
        assert_eq!(v["requests"]["done"], 60);
        let text = m.text();
        assert!(text.contains("merged 3 shards of run r1"), "{text}");
        assert!(text.contains("never averaged"), "{text}");
        let total = text
            .lines()
            .find(|l| l.trim_start().starts_with("total"))
            .unwrap();
        assert!(total.contains(" 60 "), "{total}");
        assert!(text.contains("  1/3     host1"), "{text}");
    }

    #[test]
    fn checks_name_the_problem() {
        let e = merge(vec![
            shard_report("a", "r1", 0, 2, 1),
            shard_report("b", "r2", 1, 2, 1),
        ])
        .unwrap_err();
        assert!(matches!(e, MergeError::DifferentRuns { .. }), "{e}");
        let e = merge(vec![
            shard_report("a", "r1", 0, 3, 1),
            shard_report("b", "r1", 0, 3, 1),
            shard_report("c", "r1", 2, 3, 1),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("shard 0/3"), "{e}");
        let e = merge(vec![
            shard_report("a", "r1", 0, 4, 1),
            shard_report("c", "r1", 2, 4, 1),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("missing shards 1/4, 3/4"), "{e}");
        let e = merge(vec![
            shard_report("a", "r1", 0, 2, 1),
            shard_report("b", "r1", 1, 3, 1),
        ])
        .unwrap_err();
        assert!(matches!(e, MergeError::DifferentShardCounts { .. }), "{e}");
        let mut plain = shard_report("p", "r1", 0, 2, 1);
        plain.shard = None;
        let e = merge(vec![shard_report("a", "r1", 0, 2, 1), plain]).unwrap_err();
        assert!(matches!(e, MergeError::MixedSharding { .. }), "{e}");
    }

    /// A report with a breakdown of `done` answers per target.
    fn mix_report(path: &str, labels: &[&str], done: u64) -> ShardReport {
        let mix =
            crate::targets::tests_support::mix(labels.len(), crate::targets::Policy::RoundRobin);
        let mut tally = crate::breakdown::Tally::new(labels.len(), 1);
        for t in 0..labels.len() as u32 {
            for k in 0..done {
                crate::conn::Sink::answered(&mut tally, t, 200 + 100 * (t as u16 % 4), 10 + k);
            }
        }
        let mut b = Breakdown::of(&mix, &mut tally);
        for (t, l) in b.targets.iter_mut().zip(labels) {
            t.label = l.to_string();
        }
        let mut v = report_json(&tally.all, 1.0);
        v["schema_version"] = SCHEMA_VERSION.into();
        b.add_to(v.as_object_mut().unwrap());
        from_json(path, &v).unwrap()
    }

    #[test]
    fn per_target_statistics_merge_exactly_and_only_alike() {
        let m = merge(vec![
            mix_report("a", &["GET /a", "GET /b"], 10),
            mix_report("b", &["GET /a", "GET /b"], 5),
        ])
        .unwrap();
        let v = m.json();
        assert_eq!(v["schema_version"], SCHEMA_VERSION);
        assert_eq!(v["targets"][0]["requests"]["done"], 15);
        assert_eq!(v["targets"][1]["status_codes"]["3xx"], 15);
        // Read back, the merge is the same merge.
        let again = from_json("m", &v).unwrap();
        assert_eq!(
            again.breakdown.targets[1].rec.latency_us,
            m.breakdown.targets[1].rec.latency_us
        );
        assert!(m.text().contains("GET /b"), "{}", m.text());
        let e = merge(vec![
            mix_report("a", &["GET /a", "GET /b"], 1),
            mix_report("c", &["GET /a", "GET /c"], 1),
        ])
        .unwrap_err();
        assert!(matches!(e, MergeError::DifferentTargets { .. }), "{e}");
        let plain = from_json("p", &report_json(&Recorder::new(), 1.0)).unwrap();
        assert!(merge(vec![mix_report("a", &["x", "y"], 1), plain]).is_err());
        let mut future = report_json(&Recorder::new(), 1.0);
        future["schema_version"] = (SCHEMA_VERSION + 1).into();
        let e = from_json("f", &future).unwrap_err().to_string();
        assert!(e.contains("newer"), "{e}");
    }

    #[test]
    fn unsharded_reports_merge_as_before_and_keep_first_errors() {
        let mut a = Recorder::new();
        a.counters.record_error(ErrorKind::Connect);
        a.note_error(ErrorKind::Connect, &"refused");
        let b = Recorder::new();
        let ra = from_json("a", &report_json(&a, 1.0)).unwrap();
        let rb = from_json("b", &report_json(&b, 3.0)).unwrap();
        let m = merge(vec![ra, rb]).unwrap();
        assert_eq!(m.run, None);
        assert_eq!(m.elapsed_s, 3.0);
        let v = m.json();
        assert!(v.get("shards").is_none());
        assert_eq!(v["first_errors"]["connect"]["message"], "refused");
        assert!(m.text().contains("merged 2 reports"));
    }

    /// The HTTP/2 classes add up like the others, their first errors by time, and a
    /// version 4 report (before the classes) merges as one that counted none.
    #[test]
    fn http2_error_classes_merge_exactly() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for (r, n) in [(&mut a, 2), (&mut b, 3)] {
            for k in ErrorKind::HTTP2 {
                for _ in 0..n {
                    r.counters.record_error(k);
                }
                r.note_error(k, &format!("{} of {n}", k.name()));
            }
        }
        let mut old = report_json(&a, 1.0);
        old["schema_version"] = 4.into();
        for k in ErrorKind::HTTP2 {
            old["errors"].as_object_mut().unwrap().remove(k.name());
        }
        let m = merge(vec![
            from_json("a", &report_json(&a, 1.0)).unwrap(),
            from_json("b", &report_json(&b, 1.0)).unwrap(),
            from_json("old", &old).unwrap(),
        ])
        .unwrap();
        let v = m.json();
        for k in ErrorKind::HTTP2 {
            assert_eq!(v["errors"][k.name()], 5, "{}", k.name());
            assert_eq!(
                v["first_errors"][k.name()]["message"],
                format!("{} of 2", k.name())
            );
        }
        assert_eq!(v["requests"]["errored"], 20 + 8);
        assert!(m
            .text()
            .contains("0 parse, 5 reset, 5 goaway, 5 flow_control, 5 protocol"));
    }
}
