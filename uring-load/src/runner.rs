//! One run of the load: spawn a thread per `-t`, each pinned to a core with its own ring
//! ([`crate::engine`]), its share of the connections and of the `-n` budget and its own
//! recorder; start them together, and merge their recorders exactly at the end. Threads
//! share nothing on the hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use uring_common::ring::{self, RecvMode, Tier};
use uring_common::stats::Recorder;

use crate::breakdown::{Breakdown, Tally};
use crate::config::{LoadConfig, INTERRUPTED};
use crate::engine::Worker;
use crate::error::StartError;
use crate::hosts::HostShare;
use crate::schedule::split_even;

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
    /// Per target and per host (empty for a single target).
    pub breakdown: Breakdown,
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
    let shares = plan(cfg, threads);
    let setup = Arc::new(Barrier::new(threads + 1));
    let go = Arc::new(Barrier::new(threads + 1));
    let abort = Arc::new(AtomicBool::new(false));
    let errors: Arc<Mutex<Vec<StartError>>> = Arc::default();

    let mut outcome: Result<(Tally, Duration), StartError> = Err(StartError::ThreadCrashed);
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (i, share) in shares.into_iter().enumerate() {
            let (setup, go, abort, errors) = (&setup, &go, &abort, &errors);
            let core = cfg.cores.get(i).copied().flatten();
            let h = std::thread::Builder::new()
                .name(format!("uring-load-{i}"))
                .spawn_scoped(s, move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    let worker = Worker::new(cfg, i, tier, recv_mode, share);
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
                            Some((w.take_tally(), ended))
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
        let mut merged = Tally::new(cfg.mix.targets.len(), cfg.hosts.len());
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
    let (mut tally, elapsed) = outcome?;
    Ok(RunOutcome {
        breakdown: Breakdown::of(&cfg.mix, &mut tally),
        recorder: tally.all,
        elapsed,
        interrupted: INTERRUPTED.load(Ordering::SeqCst),
        tier,
    })
}

/// Split `total` in proportion to `weights` (largest remainder): exact, each share
/// within one of its proportion.
pub fn split_weighted(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<(u64, u128)> = weights
        .iter()
        .map(|&w| {
            let x = u128::from(total) * u128::from(w);
            ((x / sum) as u64, x % sum)
        })
        .collect();
    let mut out: Vec<u64> = exact.iter().map(|e| e.0).collect();
    let left = total - out.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1).then(a.cmp(&b)));
    for &k in order.iter().take(left as usize) {
        out[k] += 1;
    }
    out
}

/// Who does what: `-c` split evenly across hosts, each host's connections across the
/// threads; `-n` and `-R` split across hosts by the weight of their targets, then across
/// the threads that have connections to the host. Each thread enters its host's cycle
/// where the requests before its share end, so that round-robin holds across threads.
pub fn plan(cfg: &LoadConfig, threads: usize) -> Vec<Vec<HostShare>> {
    let mix = &cfg.mix;
    let hosts = mix.hosts.len().max(1);
    let host_conns = split_even(cfg.connections as u64, hosts);
    let weights: Vec<u64> = (0..hosts).map(|h| mix.host_weight(h)).collect();
    let wsum: u64 = weights.iter().sum();
    let host_budget = cfg.requests.map(|n| split_weighted(n, &weights));
    let mut out = vec![Vec::with_capacity(hosts); threads];
    let earlier: Vec<Vec<u64>> = (cfg.earlier_shares.iter())
        .map(|&n| split_weighted(n, &weights))
        .collect();
    for h in 0..hosts {
        // Thread i's connections to host h: the hosts' connections dealt out in turn, so
        // that every thread gets some when there are enough.
        let offset: usize = host_conns[..h].iter().sum::<u64>() as usize;
        let mut conns = vec![0u64; threads];
        for k in 0..host_conns[h] as usize {
            conns[(offset + k) % threads] += 1;
        }
        let busy: Vec<usize> = (0..threads).filter(|&i| conns[i] > 0).collect();
        let budgets = host_budget
            .as_ref()
            .map(|b| split_even(b[h], busy.len().max(1)));
        let rate = cfg
            .rate
            .map(|r| r * weights[h] as f64 / wsum.max(1) as f64 / busy.len().max(1) as f64);
        let cycle = mix.cycle(h).len().max(1) as u64;
        let mut start: u64 = earlier.iter().map(|e| e[h]).sum();
        for i in 0..threads {
            let k = busy.iter().position(|&b| b == i);
            let budget = match (&budgets, k) {
                (Some(b), Some(k)) => Some(b[k]),
                (Some(_), None) => Some(0),
                (None, _) => None,
            };
            let first = match budget {
                Some(b) => {
                    let first = start;
                    start += b;
                    first
                }
                // By time: the threads enter the cycle spread out.
                None => k.unwrap_or(0) as u64 * cycle / busy.len().max(1) as u64,
            };
            out[i].push(HostShare {
                conns: conns[i] as usize,
                budget,
                rate: if conns[i] > 0 { rate } else { None },
                selector: mix.selector(h, i, first),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostTarget;
    use crate::conn::ConnSpec;
    use crate::target::Address;
    use crate::targets::{tests_support, Policy};
    use uring_common::ring::TierChoice;

    fn config(targets: usize, connections: usize, threads: usize, n: u64) -> LoadConfig {
        LoadConfig {
            hosts: vec![HostTarget {
                address: Address::Inet("127.0.0.1:1".parse().unwrap()),
                tls: None,
            }],
            mix: Arc::new(tests_support::mix(targets, Policy::RoundRobin)),
            conn: ConnSpec {
                keep_alive: true,
                depth: 1,
                max_head_bytes: 1024,
                http2: false,
            },
            connections,
            threads,
            requests: Some(n),
            earlier_shares: Vec::new(),
            duration: None,
            timeout: Duration::from_secs(1),
            rate: None,
            stages: None,
            conn_stages: None,
            shard: crate::shard::Shard::WHOLE,
            cores: vec![None; threads],
            tier: TierChoice::Auto,
            intervals: None,
        }
    }

    #[test]
    fn round_robin_holds_across_threads_and_shards() {
        let n = 1003u64;
        let shards = [335u64, 334, 334];
        for threads in [1, 2, 3] {
            let mut counts = [0u64; 10];
            for k in 0..shards.len() {
                let mut cfg = config(10, 6, threads, shards[k]);
                cfg.earlier_shares = shards[..k].to_vec();
                for share in plan(&cfg, threads).into_iter().flatten() {
                    let mut sel = share.selector;
                    for _ in 0..share.budget.unwrap() {
                        counts[sel.choose().target as usize] += 1;
                    }
                }
            }
            assert_eq!(counts.iter().sum::<u64>(), n);
            assert!(
                counts.iter().all(|&c| c == 100 || c == 101),
                "{threads}: {counts:?}"
            );
        }
    }

    #[test]
    fn weighted_splits_are_exact_and_close() {
        assert_eq!(split_weighted(10, &[3, 1]), [8, 2]);
        assert_eq!(split_weighted(10, &[1, 1, 1]), [4, 3, 3]);
        assert_eq!(split_weighted(7, &[0, 5]), [0, 7]);
        for n in 0..40u64 {
            let w = [1, 2, 5, 3];
            let s = split_weighted(n, &w);
            assert_eq!(s.iter().sum::<u64>(), n);
            for (x, wi) in s.iter().zip(w) {
                let want = n as f64 * wi as f64 / 11.0;
                assert!((*x as f64 - want).abs() < 1.0, "{n}: {s:?}");
            }
        }
    }
}
