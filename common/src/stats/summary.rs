//! Summary figures and the JSON report form (schema documented in docs/report-schema.md).
//!
//! CONTRACT (stub written by the lead).

use serde::{Deserialize, Serialize};

use super::Recorder;

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
    pub fn of(recorder: &Recorder) -> Summary {
        let _ = recorder;
        todo!("implemented by the stats work")
    }
}

/// Encode a histogram in HdrHistogram's standard compressed (V2 deflate) base64 form.
pub fn histogram_to_base64(h: &hdrhistogram::Histogram<u64>) -> String {
    let _ = h;
    todo!()
}

/// Decode the form written by [`histogram_to_base64`].
pub fn histogram_from_base64(s: &str) -> Result<hdrhistogram::Histogram<u64>, String> {
    let _ = s;
    todo!()
}

/// The JSON report of a run: the schema of `uring-load --json`.
/// Keys: rps, elapsed_s, requests{started,done,succeeded,failed,errored},
/// status_codes{2xx,3xx,4xx,5xx,by_code{}}, errors{connect,read,write,timeout,parse},
/// latency_us{min,mean,stdev,max,p50,p75,p90,p99,p99_9,p99_99}, bytes{total,headers,body},
/// connections{opened,reconnects}, histogram (base64).
pub fn report_json(recorder: &Recorder, elapsed_s: f64) -> serde_json::Value {
    let _ = (recorder, elapsed_s);
    todo!()
}

/// Rebuild a recorder from a JSON report (for `uring-load merge`); exact for counters and
/// histogram. Returns the recorder and the report's elapsed seconds.
pub fn recorder_from_json(v: &serde_json::Value) -> Result<(Recorder, f64), String> {
    let _ = v;
    todo!()
}
