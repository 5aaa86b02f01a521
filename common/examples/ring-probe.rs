//! Print what this kernel's io_uring offers and prove it: the probe line, a ring built for
//! every tier up to the best, and the error line for a tier above it.
//!
//! `cargo run -p uring-common --example ring-probe` (also run under a 5.10 kernel in QEMU).

use uring_common::ring::{build_ring_with_flags, probe, BufRing, RingConfig, Tier, TierChoice};

fn main() {
    let features = match probe() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ring-probe: {e}");
            std::process::exit(1);
        }
    };
    println!("PROBE {features}");
    let best = features.best_tier();
    for tier in [Tier::Basic, Tier::Multishot, Tier::Full] {
        match features.resolve(TierChoice::Force(tier)) {
            Ok(tier) => {
                let config = RingConfig {
                    tier,
                    entries: 256,
                    cq_entries: 4096,
                };
                match build_ring_with_flags(&config) {
                    Ok((ring, flags)) => {
                        let bufring = if tier >= Tier::Multishot {
                            match BufRing::register(&ring, 1, 64, 4096) {
                                Ok(b) => {
                                    let r = b.unregister(&ring);
                                    format!(", buffer ring ok (unregister {r:?})")
                                }
                                Err(e) => format!(", buffer ring FAILED: {e}"),
                            }
                        } else {
                            String::new()
                        };
                        println!("RING {tier}: built with {flags}{bufring}");
                    }
                    Err(e) => println!("RING {tier}: FAILED: {e}"),
                }
            }
            Err(e) => println!("REFUSED {tier} (best {best}): {e}"),
        }
    }
}
