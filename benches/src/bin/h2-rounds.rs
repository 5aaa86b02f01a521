//! h2-rounds: run HTTP/2 codec workloads a fixed number of times, for instruction counts
//! under callgrind (scripts/callgrind-h2.sh runs it twice and takes the difference, so
//! set-up cost cancels out).
//!
//! Usage: h2-rounds server N    (a server answering N requests fed 32 per recv)
//!        h2-rounds pair N      (N request/response rounds between a client and a server)

use uring_benches::h2work::{request_batches, serve, Pair};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    match mode.as_str() {
        "server" => {
            let batches = request_batches(n, 32);
            // Only the serving is counted: callgrind's collection is toggled around it
            // by the script (--toggle-collect=*serve*).
            let (answered, written) = serve(&batches);
            assert_eq!(answered, n);
            println!("{answered} requests answered, {written} bytes written");
        }
        "pair" => {
            let mut p = Pair::new();
            let body: usize = (0..n).map(|_| p.round()).sum();
            assert_eq!(body, n * 13);
            println!("{n} rounds");
        }
        _ => {
            eprintln!("usage: h2-rounds server|pair N");
            std::process::exit(2);
        }
    }
}
