//! Latency over time for the command line: wires a run's [`IntervalFeed`] to a reporting
//! thread that merges the load threads' intervals and hands each one to the latency log
//! (`--latency-log`) and to the live view.
//!
//! Usage per run: `let (cfg, run) = timeline.attach(&cfg)`, run the engine with that
//! configuration, then `run.finish(cfg)` (which drops the configuration's sender, so the
//! reporting thread ends even when the run never started).

use crate::error::LogError;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::LoadConfig;
use crate::intervals::{Interval, IntervalFeed};
use crate::latency_log::LatencyLogWriter;
use crate::live::{LiveFigures, LiveMode, LiveView};

/// Something that wants every merged interval (the live view).
pub type IntervalSink = Arc<dyn Fn(&Interval) + Send + Sync>;

/// The run-spanning part: the log file (shared by every `--runs` run) and the sinks.
pub struct Timeline {
    period: Duration,
    log: Option<Arc<Mutex<LatencyLogWriter>>>,
    sinks: Vec<IntervalSink>,
    live: LiveMode,
    figures: Arc<Mutex<LiveFigures>>,
}

/// The reporting thread of one run.
pub struct RunTimeline {
    handle: Option<JoinHandle<Result<(), LogError>>>,
}

impl Timeline {
    /// `log`: the `--latency-log` path, created now (a bad path fails before any load).
    pub fn new(log: Option<&Path>, period: Duration) -> Result<Timeline, LogError> {
        // The load loops wake every 10 ms at the least; shorter intervals would only
        // copy recorders more often than they can differ.
        if period < Duration::from_millis(10) {
            return Err(LogError::IntervalTooShort(period));
        }
        let log = match log {
            Some(p) => Some(Arc::new(Mutex::new(LatencyLogWriter::create(p)?))),
            None => None,
        };
        Ok(Timeline {
            period,
            log,
            sinks: Vec::new(),
            live: LiveMode::Off,
            figures: Arc::default(),
        })
    }

    /// Show the live view (`Off` for none); its figures come from the intervals.
    pub fn enable_live(&mut self, mode: LiveMode) {
        self.live = mode;
        if mode != LiveMode::Off {
            let figures = self.figures.clone();
            self.add_sink(Arc::new(move |i: &Interval| {
                figures.lock().unwrap_or_else(|e| e.into_inner()).update(i)
            }));
        }
    }

    /// Start the live view of one run (`None` with `-q`); it stops when dropped.
    pub fn live_view(
        &self,
        progress: Arc<crate::runner::Progress>,
        total: Option<u64>,
        duration: Option<Duration>,
    ) -> Option<LiveView> {
        LiveView::start(self.live, self.figures.clone(), progress, total, duration)
    }

    /// Also hand every interval to `sink`.
    pub fn add_sink(&mut self, sink: IntervalSink) {
        self.sinks.push(sink);
    }

    /// Whether any interval is wanted at all (otherwise runs get no feed: no copies).
    pub fn is_active(&self) -> bool {
        self.log.is_some() || !self.sinks.is_empty()
    }

    /// The configuration for one run, with a feed when wanted, and its reporting thread.
    pub fn attach(&self, cfg: &LoadConfig) -> (LoadConfig, RunTimeline) {
        let mut cfg = cfg.clone();
        if !self.is_active() {
            cfg.intervals = None;
            return (cfg, RunTimeline { handle: None });
        }
        let (feed, collector) = IntervalFeed::new(self.period, cfg.threads);
        cfg.intervals = Some(feed);
        let log = self.log.clone();
        let sinks = self.sinks.clone();
        let handle = std::thread::Builder::new()
            .name("uring-load-intervals".into())
            .spawn(move || {
                let mut failed: Option<LogError> = None;
                collector.run_to_end(&mut |interval| {
                    if let Some(log) = &log {
                        let mut w = log.lock().unwrap_or_else(|e| e.into_inner());
                        if failed.is_none() {
                            if let Err(err) = w.write(interval) {
                                failed = Some(LogError::Write {
                                    path: w.path().to_path_buf(),
                                    err,
                                });
                            }
                        }
                    }
                    for s in &sinks {
                        s(interval);
                    }
                });
                failed.map_or(Ok(()), Err)
            })
            .expect("spawn the interval reporting thread");
        (
            cfg,
            RunTimeline {
                handle: Some(handle),
            },
        )
    }
}

impl RunTimeline {
    /// After the run: drop its configuration (the feed's last sender) and wait until the
    /// last interval went out.
    pub fn finish(mut self, cfg: LoadConfig) -> Result<(), LogError> {
        drop(cfg);
        match self.handle.take() {
            Some(h) => h.join().unwrap_or(Err(LogError::ReporterCrashed)),
            None => Ok(()),
        }
    }
}
