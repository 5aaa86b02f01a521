//! One run of the load: spawn a thread per `-t`, each pinned to a core with its own ring
//! ([`crate::engine`]), its share of the connections and of the `-n` budget and its own
//! recorder; start them together, and merge their recorders exactly at the end. Threads
//! share nothing on the hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use uring_common::ring::{self, RecvMode, Tier, TierChoice};
use uring_common::stats::Recorder;

use crate::conn::ConnSpec;
use crate::engine::Worker;
use crate::error::StartError;
use crate::schedule::split_even;
use crate::target::Address;

/// Set by the binary's SIGINT handler: every thread stops and the partial report prints.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// HTTPS parameters: the rustls configuration and the name the certificate must carry.
#[derive(Clone)]
pub struct TlsTarget {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

/// Everything one run needs.
#[derive(Clone)]
pub struct LoadConfig {
    pub address: Address,
    pub tls: Option<TlsTarget>,
    /// One complete request (head and body), sent as is.
    pub request: Vec<u8>,
    pub conn: ConnSpec,
    pub connections: usize,
    pub threads: usize,
    /// `-n`: exactly this many requests complete.
    pub requests: Option<u64>,
    /// `-d`: the run stops after this long.
    pub duration: Option<Duration>,
    /// `-T`: connect and per-request timeout.
    pub timeout: Duration,
    /// `-R`: open model at this many requests per second (all threads together).
    pub rate: Option<f64>,
    /// Core for each thread, or none (`--no-pin`).
    pub cores: Vec<Option<core_affinity::CoreId>>,
    pub tier: TierChoice,
    /// Latency over time: each thread sends a copy of its recorder once per interval.
    pub intervals: Option<crate::intervals::IntervalFeed>,
}

/// Shared progress counters (requests done, per thread), read by the progress printer.
#[derive(Debug)]
pub struct Progress {
    pub done: Vec<AtomicU64>,
}

impl Progress {
    pub fn new(threads: usize) -> Progress {
        Progress {
            done: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        }
    }
    pub fn done(&self) -> u64 {
        self.done.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }
}

/// What a run produced.
pub struct RunOutcome {
    pub recorder: Recorder,
    pub elapsed: Duration,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    pub tier: Tier,
}

/// Run the load: spawn the threads, wait for them, merge their recorders.
pub fn run(cfg: &LoadConfig, progress: &Progress) -> Result<RunOutcome, StartError> {
    let selection = ring::select(cfg.tier)?;
    let tier = selection.tier;
    if let Some(why) = &selection.fallback {
        // Once per process, however many `--runs`.
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| eprintln!("uring-load: {why}"));
    }
    let features = selection.features.unwrap_or_default();
    let recv_mode = match RecvMode::for_tier(tier, features.multishot_recv) {
        RecvMode::Select if !features.buf_ring => RecvMode::Own,
        mode => mode,
    };
    if tier == Tier::Basic {
        ring::raise_memlock_limit();
    }
    let threads = cfg.threads.max(1);
    let conns = split_even(cfg.connections as u64, threads);
    let budgets: Vec<Option<u64>> = match cfg.requests {
        Some(n) => split_even(n, threads).into_iter().map(Some).collect(),
        None => vec![None; threads],
    };
    let rate = cfg.rate.map(|r| r / threads as f64);
    let setup = Arc::new(Barrier::new(threads + 1));
    let go = Arc::new(Barrier::new(threads + 1));
    let abort = Arc::new(AtomicBool::new(false));
    let errors: Arc<Mutex<Vec<StartError>>> = Arc::default();

    let mut outcome: Result<(Recorder, Duration), StartError> = Err(StartError::ThreadCrashed);
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for i in 0..threads {
            let (setup, go, abort, errors) = (&setup, &go, &abort, &errors);
            let n_conns = conns[i] as usize;
            let budget = budgets[i];
            let core = cfg.cores.get(i).copied().flatten();
            let h = std::thread::Builder::new()
                .name(format!("uring-load-{i}"))
                .spawn_scoped(s, move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    let worker = Worker::new(cfg, i, tier, recv_mode, n_conns, budget, rate);
                    let mut worker = match worker {
                        Ok(w) => Some(w),
                        Err(e) => {
                            errors.lock().unwrap().push(e);
                            None
                        }
                    };
                    setup.wait();
                    go.wait();
                    match worker.as_mut() {
                        Some(w) if !abort.load(Ordering::SeqCst) => {
                            let ended = w.run(&progress.done[i]);
                            Some((w.take_recorder(), ended))
                        }
                        _ => None,
                    }
                })
                .expect("spawn a load thread");
            handles.push(h);
        }
        setup.wait();
        let failed = errors.lock().unwrap().drain(..).next();
        if failed.is_some() {
            abort.store(true, Ordering::SeqCst);
        }
        go.wait();
        let start = Instant::now();
        let mut merged = Recorder::new();
        let mut crashed = false;
        let mut end = start;
        for h in handles {
            match h.join() {
                Ok(Some((rec, ended))) => {
                    merged.merge(&rec);
                    end = end.max(ended);
                }
                Ok(None) => {}
                // A report missing a thread's share would be wrong: say so instead.
                Err(_) => crashed = true,
            }
        }
        // The measured phase ends when the last thread stops its loop; tearing the
        // connections down afterwards is not part of it.
        let elapsed = end.saturating_duration_since(start);
        outcome = match failed {
            Some(e) => Err(e),
            None if crashed => Err(StartError::ThreadCrashed),
            None => Ok((merged, elapsed)),
        };
    });
    let (recorder, elapsed) = outcome?;
    Ok(RunOutcome {
        recorder,
        elapsed,
        interrupted: INTERRUPTED.load(Ordering::SeqCst),
        tier,
    })
}
