//! The live view during a run, on stderr: on a terminal an indicatif bar redrawn in place
//! (progress, responses done, and the last interval's requests/s, p50 and p99, errors so
//! far); elsewhere plain `progress: N% done, ...` lines at every tenth of the run, so logs
//! and CI output stay readable.
//!
//! The figures of the last interval come from the [`crate::timeline::Timeline`]'s merged
//! intervals (one per `--interval`, 1 s by default); progress comes from the engine's
//! shared counters, read ten times a second.

use crate::error::LogError;
use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::intervals::Interval;
use crate::plot::latency_label;
use crate::runner::Progress;
use crate::units::format_count;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveMode {
    /// `-q`: nothing.
    Off,
    /// stderr is not a terminal: a line at every tenth of the run.
    Lines,
    /// stderr is a terminal (or `--tui`): a bar redrawn in place.
    Terminal,
}

impl LiveMode {
    /// `-q` and `--tui` from the command line; otherwise a terminal on stderr (where the
    /// view is drawn) decides.
    pub fn choose(quiet: bool, tui: bool) -> Result<LiveMode, LogError> {
        Self::decide(quiet, tui, std::io::stderr().is_terminal())
    }

    fn decide(quiet: bool, tui: bool, terminal: bool) -> Result<LiveMode, LogError> {
        match (quiet, tui, terminal) {
            (true, true, _) => Err(LogError::QuietLiveView),
            (true, false, _) => Ok(LiveMode::Off),
            (false, true, false) => Err(LogError::NoTerminal),
            (false, _, true) => Ok(LiveMode::Terminal),
            (false, false, false) => Ok(LiveMode::Lines),
        }
    }
}

/// The last interval's figures and the errors so far, written by the interval sink.
#[derive(Debug, Default, Clone)]
pub struct LiveFigures {
    pub last: Option<IntervalFigures>,
    pub errors: u64,
    pub non_2xx: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalFigures {
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
}

impl LiveFigures {
    /// Take in one merged interval.
    pub fn update(&mut self, i: &Interval) {
        let h = &i.latency_us;
        let q = |p| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        self.last = Some(IntervalFigures {
            rps: i.rps(),
            p50_us: q(0.5),
            p99_us: q(0.99),
        });
        self.errors += i.errored;
        self.non_2xx += i.non_2xx;
    }

    /// `41.77k req/s, p50 73us, p99 4.13ms, 0 errors` (or the errors alone before the
    /// first interval ended).
    pub fn describe(&self) -> String {
        let mut s = match self.last {
            Some(f) => format!(
                "{} req/s, p50 {}, p99 {}, ",
                format_count(f.rps),
                latency_label(f.p50_us as f64),
                latency_label(f.p99_us as f64)
            ),
            None => String::new(),
        };
        s.push_str(&format!(
            "{} error{}",
            self.errors,
            if self.errors == 1 { "" } else { "s" }
        ));
        if self.non_2xx > 0 {
            s.push_str(&format!(", {} non-2xx", self.non_2xx));
        }
        s
    }
}

/// Fraction of the run done: by `-n` count, by `-d` time, whichever is further.
pub fn fraction(
    done: u64,
    total: Option<u64>,
    elapsed: Duration,
    duration: Option<Duration>,
) -> f64 {
    let by_count = total.map(|t| done as f64 / t.max(1) as f64);
    let by_time = duration.map(|d| elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9));
    match (by_count, by_time) {
        (Some(a), Some(b)) => a.max(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => 0.0,
    }
    .clamp(0.0, 1.0)
}

/// The line printed at every tenth of the run when stderr is not a terminal.
pub fn progress_line(tenths: u64, figures: &LiveFigures) -> String {
    format!("progress: {}% done, {}", tenths * 10, figures.describe())
}

/// Draws until dropped.
pub struct LiveView {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl LiveView {
    /// Start drawing one run's progress; `figures` is reset for it.
    pub fn start(
        mode: LiveMode,
        figures: Arc<Mutex<LiveFigures>>,
        progress: Arc<Progress>,
        total: Option<u64>,
        duration: Option<Duration>,
    ) -> Option<LiveView> {
        if mode == LiveMode::Off {
            return None;
        }
        *figures.lock().unwrap_or_else(|e| e.into_inner()) = LiveFigures::default();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("uring-load-live".into())
            .spawn(move || {
                let start = Instant::now();
                let read = || figures.lock().unwrap_or_else(|e| e.into_inner()).clone();
                match mode {
                    LiveMode::Terminal => {
                        let bar = ProgressBar::with_draw_target(
                            Some(1000),
                            ProgressDrawTarget::stderr_with_hz(10),
                        );
                        if let Ok(style) = ProgressStyle::with_template(
                            "{spinner} {elapsed:>3} [{bar:20}] {percent:>3}% {wide_msg}",
                        ) {
                            bar.set_style(style.progress_chars("=> "));
                        }
                        while !flag.load(Ordering::Relaxed) {
                            let done = progress.done();
                            let frac = fraction(done, total, start.elapsed(), duration);
                            bar.set_position((frac * 1000.0) as u64);
                            // The figures first: on a narrow terminal the end is cut.
                            bar.set_message(format!("{}, {done} done", read().describe()));
                            bar.tick();
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        bar.finish_and_clear();
                    }
                    LiveMode::Lines => {
                        let mut last_step = 0;
                        while !flag.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(100));
                            let frac = fraction(progress.done(), total, start.elapsed(), duration);
                            let step = (frac * 10.0) as u64;
                            if step > last_step && step < 10 {
                                last_step = step;
                                let _ = writeln!(
                                    std::io::stderr().lock(),
                                    "{}",
                                    progress_line(step, &read())
                                );
                            }
                        }
                    }
                    LiveMode::Off => {}
                }
            })
            .ok();
        Some(LiveView { stop, handle })
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    use uring_common::stats::recorder::new_latency_histogram;

    #[test]
    fn mode_from_flags_and_terminal() {
        assert_eq!(
            LiveMode::decide(false, false, true).unwrap(),
            LiveMode::Terminal
        );
        assert_eq!(
            LiveMode::decide(false, false, false).unwrap(),
            LiveMode::Lines
        );
        assert_eq!(
            LiveMode::decide(false, true, true).unwrap(),
            LiveMode::Terminal
        );
        assert_eq!(LiveMode::decide(true, false, true).unwrap(), LiveMode::Off);
        assert!(LiveMode::decide(false, true, false)
            .unwrap_err()
            .to_string()
            .contains("terminal"));
        assert!(LiveMode::decide(true, true, true).is_err());
    }

    #[test]
    fn figures_of_the_last_interval_and_errors_so_far() {
        let mut f = LiveFigures::default();
        assert_eq!(f.describe(), "0 errors");
        let mut h = new_latency_histogram();
        for v in 1..=100 {
            h.record(v * 10).unwrap();
        }
        let interval = |errored, non_2xx| Interval {
            index: 0,
            offset: Duration::ZERO,
            origin_wall: SystemTime::now(),
            length: Duration::from_millis(500),
            latency_us: h.clone(),
            done: 100,
            errored,
            non_2xx,
        };
        f.update(&interval(1, 0));
        f.update(&interval(2, 3));
        assert_eq!(
            f.describe(),
            "200.00 req/s, p50 500us, p99 990us, 3 errors, 3 non-2xx"
        );
        assert_eq!(
            progress_line(3, &f),
            "progress: 30% done, 200.00 req/s, p50 500us, p99 990us, 3 errors, 3 non-2xx"
        );
    }

    #[test]
    fn fraction_by_count_or_time() {
        let s = Duration::from_secs;
        assert_eq!(fraction(50, Some(100), s(0), None), 0.5);
        assert_eq!(fraction(10, Some(100), s(5), Some(s(10))), 0.5);
        assert_eq!(fraction(0, None, s(20), Some(s(10))), 1.0);
        assert_eq!(fraction(0, None, s(1), None), 0.0);
    }
}
