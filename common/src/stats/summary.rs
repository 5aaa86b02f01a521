//! Summary figures and the JSON report form (schema documented in docs/report-schema.md).
//!
//! The JSON report is both for people and for later merging: besides the summary it
//! carries every counter and the whole histogram in HdrHistogram's standard compressed
//! form (V2 + deflate, base64; what Java's `HistogramLogWriter` writes), so reports of
//! several runs or machines merge exactly with `recorder_from_json` + `Recorder::merge`.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::recorder::{add_histogram, new_latency_histogram};
use super::{Counters, ErrorKind, FirstError, FirstErrors, Recorder};

/// Latency summary in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Summary {
    pub min: u64,
    pub mean: f64,
    pub stdev: f64,
    pub max: u64,
    pub p50: u64,
    pub p75: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub p99_99: u64,
    pub p100: u64,
}

impl Summary {
    /// All zeros for an empty recorder (HdrHistogram has no meaningful min of nothing).
    pub fn of(recorder: &Recorder) -> Summary {
        let h = &recorder.latency_us;
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            min: h.min(),
            mean: h.mean(),
            stdev: h.stdev(),
            max: h.max(),
            p50: h.value_at_quantile(0.5),
            p75: h.value_at_quantile(0.75),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            p100: h.value_at_quantile(1.0),
        }
    }
}

/// Encode a histogram in HdrHistogram's standard compressed (V2 deflate) base64 form.
pub fn histogram_to_base64(h: &hdrhistogram::Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decode the form written by [`histogram_to_base64`].
pub fn histogram_from_base64(s: &str) -> Result<hdrhistogram::Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("histogram is not valid base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram is not a V2 compressed HdrHistogram: {e:?}"))
}

/// The JSON report of a run: the schema of `uring-load --json`.
/// Keys: rps, elapsed_s, requests{started,done,succeeded,failed,errored},
/// status_codes{2xx,3xx,4xx,5xx,by_code{}},
/// errors{connect,read,write,timeout,parse,reset,goaway,flow_control,protocol},
/// latency_us{min,mean,stdev,max,p50,p75,p90,p99,p99_9,p99_99}, bytes{total,headers,body},
/// connections{opened,reconnects}, histogram (base64).
/// Also: status_codes.1xx and status_codes.other (codes outside 100..=599), latency_us.p100,
/// first_errors{<class>: {message, at_unix_us}} (only classes that had an error).
pub fn report_json(recorder: &Recorder, elapsed_s: f64) -> Value {
    let c = &recorder.counters;
    let s = Summary::of(recorder);
    let rps = if elapsed_s > 0.0 {
        c.done as f64 / elapsed_s
    } else {
        0.0
    };
    let by_code: Map<String, Value> = (100u16..=599)
        .filter(|&code| c.code(code) > 0)
        .map(|code| (code.to_string(), json!(c.code(code))))
        .collect();
    json!({
        "rps": rps,
        "elapsed_s": elapsed_s,
        "requests": {
            "started": c.started,
            "done": c.done,
            "succeeded": c.succeeded,
            "failed": c.failed,
            "errored": c.errored,
        },
        "status_codes": {
            "1xx": c.class(1),
            "2xx": c.class(2),
            "3xx": c.class(3),
            "4xx": c.class(4),
            "5xx": c.class(5),
            "other": c.by_code_other,
            "by_code": by_code,
        },
        "errors": errors_json(c),
        "latency_us": {
            "min": s.min,
            "mean": s.mean,
            "stdev": s.stdev,
            "max": s.max,
            "p50": s.p50,
            "p75": s.p75,
            "p90": s.p90,
            "p99": s.p99,
            "p99_9": s.p99_9,
            "p99_99": s.p99_99,
            "p100": s.p100,
        },
        "bytes": {
            "total": c.bytes_total,
            "headers": c.bytes_headers,
            "body": c.bytes_body,
        },
        "connections": {
            "opened": c.connections_opened,
            "reconnects": c.reconnects,
        },
        "first_errors": first_errors_json(&recorder.first_errors),
        "histogram": histogram_to_base64(&recorder.latency_us),
    })
}

/// Every class's count, named as `ErrorKind::name` says.
fn errors_json(c: &Counters) -> Value {
    let m: Map<String, Value> = ErrorKind::ALL
        .into_iter()
        .map(|k| (k.name().to_string(), json!(c.errors_of(k))))
        .collect();
    Value::Object(m)
}

/// Every class's count; the HTTP/2 classes came later (uring-load's schema 5), so a
/// report without one counted none of it.
fn errors_from_json(c: &mut Counters, v: &Value) -> Result<(), String> {
    for kind in ErrorKind::ALL {
        let path = ["errors", kind.name()];
        if ErrorKind::HTTP2.contains(&kind) && field(v, &path).is_err() {
            continue;
        }
        *c.errors_of_mut(kind) = uint(v, &path)?;
    }
    Ok(())
}

fn first_errors_json(f: &FirstErrors) -> Value {
    let m: Map<String, Value> = f
        .iter()
        .map(|(kind, e)| {
            (
                kind.name().to_string(),
                json!({ "message": e.message, "at_unix_us": e.at_unix_us }),
            )
        })
        .collect();
    Value::Object(m)
}

/// `first_errors` of a report; absent in reports written before it existed.
fn first_errors_from_json(v: &Value) -> Result<FirstErrors, String> {
    let mut out = FirstErrors::default();
    let Some(obj) = v.get("first_errors") else {
        return Ok(out);
    };
    let obj = obj
        .as_object()
        .ok_or("report field 'first_errors' is not an object")?;
    for (name, e) in obj {
        let kind = ErrorKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| format!("first_errors has an unknown error class '{name}'"))?;
        let message = e
            .get("message")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("report field 'first_errors.{name}.message' is not a string"))?;
        let at_unix_us = e.get("at_unix_us").and_then(Value::as_u64).ok_or_else(|| {
            format!("report field 'first_errors.{name}.at_unix_us' is not a non-negative integer")
        })?;
        out.offer(
            kind,
            FirstError {
                message: message.to_string(),
                at_unix_us,
            },
        );
    }
    Ok(out)
}

fn field<'a>(v: &'a Value, path: &[&str]) -> Result<&'a Value, String> {
    let mut cur = v;
    for key in path {
        cur = cur
            .get(key)
            .ok_or_else(|| format!("report lacks '{}'", path.join(".")))?;
    }
    Ok(cur)
}

fn uint(v: &Value, path: &[&str]) -> Result<u64, String> {
    field(v, path)?.as_u64().ok_or_else(|| {
        format!(
            "report field '{}' is not a non-negative integer",
            path.join(".")
        )
    })
}

/// Rebuild a recorder from a JSON report (for `uring-load merge`); exact for counters and
/// histogram. Returns the recorder and the report's elapsed seconds.
///
/// The summary figures (`rps`, `latency_us`) are derived data and are not read back:
/// they are recomputed from the histogram.
pub fn recorder_from_json(v: &Value) -> Result<(Recorder, f64), String> {
    let elapsed_s = field(v, &["elapsed_s"])?
        .as_f64()
        .ok_or("report field 'elapsed_s' is not a number")?;
    let mut c = Counters {
        started: uint(v, &["requests", "started"])?,
        done: uint(v, &["requests", "done"])?,
        succeeded: uint(v, &["requests", "succeeded"])?,
        failed: uint(v, &["requests", "failed"])?,
        errored: uint(v, &["requests", "errored"])?,
        bytes_total: uint(v, &["bytes", "total"])?,
        bytes_headers: uint(v, &["bytes", "headers"])?,
        bytes_body: uint(v, &["bytes", "body"])?,
        connections_opened: uint(v, &["connections", "opened"])?,
        reconnects: uint(v, &["connections", "reconnects"])?,
        // Absent in reports that never saw an out-of-range code.
        by_code_other: field(v, &["status_codes", "other"])
            .ok()
            .and_then(Value::as_u64)
            .unwrap_or(0),
        ..Counters::default()
    };
    errors_from_json(&mut c, v)?;
    let by_code = field(v, &["status_codes", "by_code"])?
        .as_object()
        .ok_or("report field 'status_codes.by_code' is not an object")?;
    for (code, n) in by_code {
        let status: u16 = code
            .parse()
            .ok()
            .filter(|s| (100..=599).contains(s))
            .ok_or_else(|| format!("status code '{code}' in by_code is not 100..=599"))?;
        let n = n
            .as_u64()
            .ok_or_else(|| format!("count of status {code} is not a non-negative integer"))?;
        c.by_code[(status - 100) as usize] += n;
    }
    let encoded = field(v, &["histogram"])?
        .as_str()
        .ok_or("report field 'histogram' is not a string")?;
    let decoded = histogram_from_base64(encoded)?;
    let mut latency_us = new_latency_histogram();
    add_histogram(&mut latency_us, &decoded);
    Ok((
        Recorder {
            latency_us,
            counters: c,
            first_errors: first_errors_from_json(v)?,
        },
        elapsed_s,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ErrorKind;

    fn busy_recorder() -> Recorder {
        let mut r = Recorder::new();
        for i in 0..5_000u64 {
            r.record_latency_us(50 + (i * i) % 90_000);
            r.counters.started += 1;
            r.counters
                .record_status([200, 200, 200, 404, 503, 301, 101, 999][i as usize % 8]);
        }
        r.record_latency_us(7_000_000);
        r.counters.record_error(ErrorKind::Timeout);
        r.note_error(ErrorKind::Timeout, &"no answer");
        r.counters.record_error(ErrorKind::Read);
        r.note_error(
            ErrorKind::Read,
            &"Connection reset by peer (os error 104) from [::1]:80",
        );
        r.counters.record_error(ErrorKind::Connect);
        r.counters.record_error(ErrorKind::Parse);
        r.counters.record_error(ErrorKind::Write);
        for k in ErrorKind::HTTP2 {
            r.counters.record_error(k);
        }
        r.note_error(
            ErrorKind::GoAway,
            &"HTTP/2 GOAWAY from the server (INTERNAL_ERROR)",
        );
        r.counters.bytes_total = 1_234_567;
        r.counters.bytes_headers = 234_567;
        r.counters.bytes_body = 1_000_000;
        r.counters.connections_opened = 64;
        r.counters.reconnects = 3;
        r
    }

    #[test]
    fn summary_of_known_samples() {
        let mut r = Recorder::new();
        assert_eq!(Summary::of(&r), Summary::default());
        for v in 1..=1000 {
            r.record_latency_us(v);
        }
        let s = Summary::of(&r);
        assert_eq!((s.min, s.max, s.p100), (1, 1000, 1000));
        assert_eq!(s.p50, 500);
        assert_eq!(s.p75, 750);
        assert_eq!(s.p90, 900);
        assert_eq!(s.p99, 990);
        assert_eq!(s.p99_9, 999);
        assert_eq!(s.p99_99, 1000);
        assert!((s.mean - 500.5).abs() < 0.01, "{}", s.mean);
        // Population stdev of 1..=1000 is about 288.675.
        assert!((s.stdev - 288.675).abs() < 0.5, "{}", s.stdev);
    }

    #[test]
    fn json_has_the_documented_keys_and_values() {
        let r = busy_recorder();
        let v = report_json(&r, 2.0);
        assert_eq!(v["rps"].as_f64(), Some(2500.0));
        assert_eq!(v["requests"]["done"], 5000);
        assert_eq!(v["requests"]["succeeded"], 1875);
        assert_eq!(v["requests"]["failed"], 3125);
        assert_eq!(v["requests"]["errored"], 9);
        assert_eq!(v["status_codes"]["2xx"], 1875);
        assert_eq!(v["status_codes"]["3xx"], 625);
        assert_eq!(v["status_codes"]["4xx"], 625);
        assert_eq!(v["status_codes"]["5xx"], 625);
        assert_eq!(v["status_codes"]["other"], 625);
        assert_eq!(v["status_codes"]["by_code"]["200"], 1875);
        assert_eq!(v["status_codes"]["by_code"]["503"], 625);
        assert!(v["status_codes"]["by_code"].get("500").is_none());
        for k in [
            "connect",
            "read",
            "write",
            "timeout",
            "parse",
            "reset",
            "goaway",
            "flow_control",
            "protocol",
        ] {
            assert_eq!(v["errors"][k], 1, "{k}");
        }
        assert_eq!(v["errors"].as_object().unwrap().len(), 9);
        for k in [
            "min", "mean", "stdev", "max", "p50", "p75", "p90", "p99", "p99_9", "p99_99",
        ] {
            assert!(v["latency_us"][k].is_number(), "{k}");
        }
        assert!(v["latency_us"]["max"].as_u64().unwrap() >= 7_000_000);
        assert_eq!(v["bytes"]["body"], 1_000_000);
        assert_eq!(v["connections"]["reconnects"], 3);
        assert_eq!(v["first_errors"]["timeout"]["message"], "no answer");
        assert!(v["first_errors"]["timeout"]["at_unix_us"].as_u64().unwrap() > 0);
        assert!(v["first_errors"].get("connect").is_none());
        assert!(v["histogram"].as_str().unwrap().len() > 20);
    }

    #[test]
    fn json_round_trip_is_exact() {
        let r = busy_recorder();
        let elapsed = 3.000_000_000_000_000_4_f64 + 1e-9;
        let text = serde_json::to_string(&report_json(&r, elapsed)).unwrap();
        let (back, e) = recorder_from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(e.to_bits(), elapsed.to_bits());
        assert_eq!(back.counters, r.counters);
        assert_eq!(back.latency_us, r.latency_us);
        assert_eq!(back.first_errors, r.first_errors);
        assert_eq!(
            back.first_errors.get(ErrorKind::Read).unwrap().message,
            "Connection reset by peer (os error 104) from [::1]:80"
        );
        assert_eq!(Summary::of(&back), Summary::of(&r));
        // And the report of the rebuilt recorder is the same document.
        assert_eq!(report_json(&back, e), report_json(&r, elapsed));
    }

    #[test]
    fn reports_merge_like_recorders() {
        let a = busy_recorder();
        let mut b = Recorder::new();
        b.record_latency_us(3);
        b.counters.record_status(200);
        let (ja, _) = recorder_from_json(&report_json(&a, 1.0)).unwrap();
        let (jb, _) = recorder_from_json(&report_json(&b, 1.0)).unwrap();
        let mut via_json = ja;
        via_json.merge(&jb);
        let mut direct = a.clone();
        direct.merge(&b);
        assert_eq!(via_json.counters, direct.counters);
        assert_eq!(via_json.latency_us, direct.latency_us);
    }

    #[test]
    fn base64_is_the_standard_v2_compressed_form() {
        let r = busy_recorder();
        let text = histogram_to_base64(&r.latency_us);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .unwrap();
        // V2 compressed cookie, as Java's encodeIntoCompressedByteBuffer writes it.
        assert_eq!(&bytes[..4], &[0x1c, 0x84, 0x93, 0x14]);
        // The stock deserializer reads it back unchanged.
        let h: hdrhistogram::Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .unwrap();
        assert_eq!(h, r.latency_us);
        assert_eq!(h.high(), 3_600_000_000);
        assert_eq!(h.sigfig(), 3);
        assert_eq!(histogram_from_base64(&text).unwrap(), r.latency_us);
    }

    #[test]
    fn bad_reports_are_errors_naming_the_field() {
        let mut v = report_json(&busy_recorder(), 1.0);
        v["requests"].as_object_mut().unwrap().remove("done");
        let err = recorder_from_json(&v).unwrap_err();
        assert!(err.contains("requests.done"), "{err}");
        let mut v = report_json(&busy_recorder(), 1.0);
        v["histogram"] = json!("not base64!");
        assert!(recorder_from_json(&v).unwrap_err().contains("base64"));
        let mut v = report_json(&busy_recorder(), 1.0);
        v["status_codes"]["by_code"]["42"] = json!(1);
        assert!(recorder_from_json(&v).unwrap_err().contains("'42'"));
        assert!(histogram_from_base64("AAAA").is_err());
        let mut v = report_json(&busy_recorder(), 1.0);
        v["first_errors"]["bogus"] = json!({"message": "x", "at_unix_us": 1});
        assert!(recorder_from_json(&v).unwrap_err().contains("'bogus'"));
        let mut v = report_json(&busy_recorder(), 1.0);
        v["errors"]["goaway"] = json!(-1);
        assert!(recorder_from_json(&v)
            .unwrap_err()
            .contains("errors.goaway"));
        let mut v = report_json(&busy_recorder(), 1.0);
        v["errors"].as_object_mut().unwrap().remove("parse");
        assert!(recorder_from_json(&v).unwrap_err().contains("errors.parse"));
        // Reports from before the HTTP/2 classes counted none of them.
        let mut v = report_json(&busy_recorder(), 1.0);
        for k in ErrorKind::HTTP2 {
            v["errors"].as_object_mut().unwrap().remove(k.name());
        }
        let back = recorder_from_json(&v).unwrap().0.counters;
        assert_eq!(ErrorKind::HTTP2.map(|k| back.errors_of(k)), [0; 4]);
        assert_eq!(back.errors_parse, 1);
        // Reports from before first_errors existed still read.
        let mut v = report_json(&busy_recorder(), 1.0);
        v.as_object_mut().unwrap().remove("first_errors");
        assert!(recorder_from_json(&v)
            .unwrap()
            .0
            .first_errors
            .iter()
            .next()
            .is_none());
    }
}
