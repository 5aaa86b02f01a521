//! uring-load: an io_uring HTTP/1.1 load generator with weighttp's and wrk's flags.
//!
//! - [`units`] and [`target`]: the command line's numbers, durations and URLs.
//! - [`conn`]: the sans-IO state machine of one client connection (framing, pipelining,
//!   latency, error classes), tested without sockets; [`head_memo`]: its last response head,
//!   recognised again without a parse.
//! - [`schedule`]: how the request budget and the open-model rate are split and issued;
//!   [`stages`]: the ramps of `--stages` and `--stages-connections`.
//! - [`targets`]: request mixes (`--targets`, `--urls`, `--raw`, `--mix`), checked and
//!   serialized once, and the selection of each request's target; [`template`]: the
//!   placeholders of requests that differ (`{SEQ}`, ...); [`rng`]: the pseudo-random step
//!   both use; [`breakdown`]: the statistics per target and per host.
//! - [`config`]: what a run is asked to do; [`runner`]: a run's threads and what each
//!   does; [`engine`]: one thread's io_uring loop; [`hosts`]: its dispatch across hosts,
//!   its share of each host and its wake-up timers.
//! - [`tls`]: rustls configuration (system roots or `--insecure`).
//! - [`error`]: one error enum per layer (target, configuration, start-up, report, merge).
//! - [`intervals`] and [`latency_log`]: latency over time (`--latency-log`); [`timeline`]
//!   wires them to the log, to [`live`], the live view, and to [`prometheus`], the
//!   `--prometheus` exporter.
//! - [`shard`] and [`merge`]: one run across many machines (`--shard`, `--start-at`) and
//!   the exact merge of their reports.
//! - [`report_cmd`], [`plot`] and [`html`]: `uring-load report`, the charts (SVG) and the
//!   self-contained HTML page.
//! - [`report`]: the text report (weighttp's lines, wrk's latency table).
//! - [`thresholds`] and [`baseline`]: gates for CI (`--threshold`, `--junit`,
//!   `--baseline`), judged on the finished run; exit 99 when one fails.

pub mod baseline;
pub mod breakdown;
pub mod config;
pub mod conn;
pub mod engine;
pub mod error;
pub mod h2conn;
pub mod head_memo;
pub mod hosts;
pub mod html;
pub mod intervals;
pub mod latency_log;
pub mod live;
pub mod merge;
pub mod plot;
pub mod prometheus;
pub mod report;
pub mod report_cmd;
pub mod rng;
pub mod runner;
pub mod schedule;
pub mod shard;
pub mod stages;
pub mod target;
pub mod targets;
pub mod template;
pub mod thresholds;
pub mod timeline;
pub mod tls;
pub mod units;
pub mod wire;
