//! tokio-uring-server: the ergonomic io_uring runtime as a peer, so that the gain of
//! uring-server's raw ring loop is measured rather than assumed. Like the floor it does
//! not parse HTTP: it reads, counts request ends and writes that many canned responses.
//! One tokio-uring runtime per worker thread, pinned, each with its own SO_REUSEPORT
//! listener. tokio-uring 0.5 has no multishot or buffer rings: one read in flight per
//! connection with an owned buffer.

use clap::Parser;
use uring_benches::peer::{self, PeerArgs, RequestEndCounter, HELLO_RESPONSE};

#[derive(Debug, Parser)]
#[command(about = "tokio-uring 0.5 responder that counts request ends")]
struct Args {
    #[command(flatten)]
    peer: PeerArgs,
}

fn main() {
    let args = Args::parse();
    let cpus = args.peer.worker_cpus();
    let listeners: Vec<_> = cpus
        .iter()
        .map(|_| {
            peer::reuseport_listener(args.peer.listen)
                .unwrap_or_else(|e| peer::die(&format!("listen on {}", args.peer.listen), e))
        })
        .collect();
    eprintln!(
        "tokio-uring-server: {} worker(s) on {}",
        cpus.len(),
        args.peer.listen
    );
    let handles: Vec<_> = cpus
        .into_iter()
        .zip(listeners)
        .map(|(cpu, std_listener)| {
            std::thread::spawn(move || {
                peer::pin_current_thread(cpu);
                tokio_uring::start(serve(std_listener));
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

async fn serve(std_listener: std::net::TcpListener) {
    let listener = tokio_uring::net::TcpListener::from_std(std_listener);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio_uring::spawn(async move {
            let mut requests = RequestEndCounter::default();
            let mut buf = vec![0u8; 4096];
            let mut out = Vec::with_capacity(HELLO_RESPONSE.len() * 16);
            loop {
                let (res, b) = stream.read(buf).await;
                buf = b;
                let n = match res {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let ends = requests.feed(&buf[..n]);
                if ends == 0 {
                    continue;
                }
                out.clear();
                for _ in 0..ends {
                    out.extend_from_slice(HELLO_RESPONSE);
                }
                let (res, o) = stream.write_all(out).await;
                out = o;
                if res.is_err() {
                    return;
                }
            }
        });
    }
}
