//! hyper-server: what a Rust user would write instead of uring-server, measured as a
//! peer. hyper 1.x HTTP/1 on tokio, one current-thread runtime per worker thread, each
//! pinned to a CPU with its own SO_REUSEPORT listener (the same shape as uring-server, so
//! the comparison is of the I/O path, not of the threading model). Every request gets
//! `Hello, World!`.

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use uring_benches::peer::{self, PeerArgs};

#[derive(Debug, Parser)]
#[command(about = "hyper 1.x on tokio, a current-thread runtime per core")]
struct Args {
    #[command(flatten)]
    peer: PeerArgs,
}

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    Ok(resp)
}

fn main() {
    let args = Args::parse();
    let cpus = args.peer.worker_cpus();
    let listeners: Vec<_> = cpus
        .iter()
        .map(|_| {
            let l = peer::reuseport_listener(args.peer.listen)
                .unwrap_or_else(|e| peer::die(&format!("listen on {}", args.peer.listen), e));
            l.set_nonblocking(true)
                .unwrap_or_else(|e| peer::die("set_nonblocking", e));
            l
        })
        .collect();
    eprintln!(
        "hyper-server: {} worker(s) on {}",
        cpus.len(),
        args.peer.listen
    );
    let handles: Vec<_> = cpus
        .into_iter()
        .zip(listeners)
        .map(|(cpu, std_listener)| {
            std::thread::spawn(move || {
                peer::pin_current_thread(cpu);
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .unwrap_or_else(|e| peer::die("tokio runtime", e));
                rt.block_on(serve(std_listener));
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

async fn serve(std_listener: std::net::TcpListener) {
    let listener = tokio::net::TcpListener::from_std(std_listener)
        .unwrap_or_else(|e| peer::die("tokio listener", e));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            // pipeline_flush batches the responses to pipelined requests into one write,
            // as uring-server and nginx do; a tuned hyper deployment would turn it on.
            // half_close answers a client that shut its write side after its requests
            // (hyper's default drops them on EOF).
            let _ = http1::Builder::new()
                .pipeline_flush(true)
                .half_close(true)
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}
