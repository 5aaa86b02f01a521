//! A custom per-core handler on the library API: `/` says hello, `/count` shows how many
//! requests this worker answered (per-core state, no locks), the rest is 404.
//!
//! Run: `cargo run --example hello -- 127.0.0.1:8081`

use uring_server::{Request, ResponseWriter, Server};

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into());
    let mut served: u64 = 0;
    let handler = move |req: &Request<'_>, resp: &mut ResponseWriter<'_>| {
        served += 1;
        match req.path() {
            "/" => resp.respond(200, &[("Content-Type", b"text/plain")], b"hello\n"),
            "/count" => {
                let body = format!("{served}\n");
                resp.respond(200, &[("Content-Type", b"text/plain")], body.as_bytes())
            }
            _ => resp.respond(404, &[], b"not found\n"),
        }
    };
    let server = Server::builder()
        .listen(addr.parse().expect("a socket address"))
        .workers(2)
        .pin(false)
        .handler(handler)
        .start()
        .unwrap_or_else(|e| {
            eprintln!("hello: {e}");
            std::process::exit(1)
        });
    eprintln!(
        "hello: listening on {:?} (tier {})",
        server.local_addrs(),
        server.tier()
    );
    // Serve until killed.
    loop {
        std::thread::park();
    }
}
