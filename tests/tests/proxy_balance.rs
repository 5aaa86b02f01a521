//! Routes with several upstreams (issue 23), against real upstreams on loopback: each one
//! a uring-server of its own serving a root with `who` (its name) and `healthz`. Weights
//! seen in who answered, an upstream killed mid-run costs no GET a 502 and is skipped,
//! it comes back after fail_timeout; active checks take one out and bring it back after
//! rise; a header or cookie keeps a client on its upstream; metrics and the access log
//! name the upstreams.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use uring_tests::free_port;
use uring_tests::server::{ServerProc, TempDir};

/// An upstream: a uring-server on a port of its own (so it can be killed and started again
/// on it), answering `GET /who` with its name.
struct Upstream {
    port: u16,
    root: TempDir,
    proc: Option<ServerProc>,
}

impl Upstream {
    fn start(name: &str) -> Upstream {
        // TempDir's name is the tag and the pid: tests running at once need tags of their own.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root = TempDir::new(&format!("balance-{name}-{n}"));
        std::fs::write(root.path().join("who"), name).unwrap();
        std::fs::write(root.path().join("healthz"), "ok").unwrap();
        let mut u = Upstream {
            port: free_port(),
            root,
            proc: None,
        };
        u.restart();
        u
    }

    fn restart(&mut self) {
        let listen = format!("127.0.0.1:{}", self.port);
        let root = self.root.path().to_string_lossy().to_string();
        self.proc = Some(ServerProc::start(&["--listen", &listen, "--root", &root]));
    }

    fn kill(&mut self) {
        self.proc = None;
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn healthz(&self) -> PathBuf {
        self.root.path().join("healthz")
    }
}

fn route(ups: &[&Upstream], weights: &[u32]) -> String {
    let list: Vec<String> = (ups.iter().zip(weights))
        .map(|(u, w)| format!("{} weight={w}", u.url()))
        .collect();
    format!("/={}", list.join(","))
}

/// A keep-alive client connection to the proxy.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { s, buf: Vec::new() }
    }

    /// `GET path` with `headers`: (status, body).
    fn get(&mut self, path: &str, headers: &str) -> (u16, String) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n");
        self.s.write_all(req.as_bytes()).unwrap();
        let mut tmp = [0u8; 4096];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let status: u16 = head[9..12].parse().unwrap();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().unwrap())
                    })
                    .expect("a length");
                if self.buf.len() >= end + 4 + len {
                    let body = String::from_utf8_lossy(&self.buf[end + 4..end + 4 + len]);
                    let body = body.to_string();
                    self.buf.drain(..end + 4 + len);
                    return (status, body);
                }
            }
            let n = self.s.read(&mut tmp).expect("a response");
            assert!(n > 0, "the proxy closed");
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }
}

fn tally(answers: impl IntoIterator<Item = String>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for a in answers {
        *counts.entry(a).or_default() += 1;
    }
    counts
}

fn metrics(addr: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "-m", "5"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .expect("curl (scripts/install-test-deps.sh installs it)");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The value of the series `name{labels}` in a scrape.
fn series(text: &str, name: &str, upstream: &Upstream) -> Option<u64> {
    let prefix = format!("{name}{{route=\"/\",upstream=\"{}\"}} ", upstream.addr());
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|v| v.parse().unwrap())
}

#[test]
fn weights_show_in_each_upstreams_share() {
    let (a, b, c) = (
        Upstream::start("a"),
        Upstream::start("b"),
        Upstream::start("c"),
    );
    for balance in ["round-robin", "least-conn"] {
        let px = ServerProc::start(&[
            "--proxy",
            &route(&[&a, &b, &c], &[3, 1, 1]),
            "--balance",
            balance,
        ]);
        let mut client = Client::new(px.addr);
        let answers = (0..100).map(|_| {
            let (status, who) = client.get("/who", "");
            assert_eq!(status, 200);
            who
        });
        let counts = tally(answers.collect::<Vec<_>>());
        assert_eq!(
            (counts["a"], counts["b"], counts["c"]),
            (60, 20, 20),
            "{balance}"
        );
    }
}

#[test]
fn a_killed_upstream_costs_no_get_a_502_and_returns_after_fail_timeout() {
    let (mut a, b) = (Upstream::start("a"), Upstream::start("b"));
    let logs = TempDir::new("balance-log");
    let log = logs.path().join("access.log");
    let maddr = format!("127.0.0.1:{}", free_port());
    let px = ServerProc::start(&[
        "--proxy",
        &route(&[&a, &b], &[1, 1]),
        "--fail-timeout",
        "2s",
        "--upstream-conns",
        "4",
        "--access-log",
        log.to_str().unwrap(),
        "--access-log-format",
        "json",
        "--metrics",
        &maddr,
    ]);
    // Four clients in turn, each on its own keep-alive connection.
    let mut clients: Vec<Client> = (0..4).map(|_| Client::new(px.addr)).collect();
    let mut killed_at = Instant::now();
    let round = |clients: &mut Vec<Client>, killed_at: Instant| -> Vec<String> {
        clients
            .iter_mut()
            .map(|c| {
                let (status, who) = c.get("/who", "");
                assert_eq!(
                    status,
                    200,
                    "a GET failed: {who} ({:?})",
                    killed_at.elapsed()
                );
                who
            })
            .collect()
    };
    let before = tally((0..10).flat_map(|_| round(&mut clients, killed_at)));
    assert_eq!((before["a"], before["b"]), (20, 20));
    // a dies with connections to it pooled: every GET still answered, by b.
    a.kill();
    killed_at = Instant::now();
    let during = tally((0..10).flat_map(|_| round(&mut clients, killed_at)));
    assert_eq!(during.get("a"), None);
    assert_eq!(during["b"], 40);
    // Metrics are published once a tick (at most 1 s).
    let deadline = Instant::now() + Duration::from_secs(5);
    let (failures, scrape) = loop {
        let scrape = metrics(&maddr);
        let failures = series(&scrape, "uring_server_upstream_failures_total", &a).unwrap();
        if failures >= 1 || Instant::now() > deadline {
            break (failures, scrape);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(failures >= 1, "{scrape}");
    // Skipped while down: at most one attempt per fail_timeout of 2 s, not one per request.
    assert!(
        failures <= 1 + killed_at.elapsed().as_secs() / 2,
        "{scrape}"
    );
    // Back on its port: after fail_timeout it takes its share again.
    a.restart();
    std::thread::sleep(Duration::from_millis(2100));
    let after = tally((0..10).flat_map(|_| round(&mut clients, killed_at)));
    assert!(after.get("a").is_some_and(|&n| n >= 15), "{after:?}");
    // The access log names both upstreams where a request tried a first (nginx's "a, b").
    drop(px);
    let text = std::fs::read_to_string(&log).unwrap();
    let both = format!("{}, {}", a.addr(), b.addr());
    let tried_both = text.lines().filter(|l| l.contains(&both)).count();
    assert!(tried_both >= 1, "{text}");
    let not_200 = text
        .lines()
        .filter(|l| !l.contains("\"status\":200"))
        .count();
    assert_eq!(not_200, 0, "{text}");
}

#[test]
fn health_checks_take_an_upstream_out_and_bring_it_back_after_rise() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let maddr = format!("127.0.0.1:{}", free_port());
    let px = ServerProc::start(&[
        "--proxy",
        &route(&[&a, &b], &[1, 1]),
        "--health",
        "/healthz",
        "--health-interval",
        "200ms",
        "--health-fall",
        "2",
        "--health-rise",
        "3",
        "--metrics",
        &maddr,
    ]);
    let mut client = Client::new(px.addr);
    let mut share_of_a = |n: usize| {
        let answers: Vec<String> = (0..n).map(|_| client.get("/who", "").1).collect();
        tally(answers).get("a").copied().unwrap_or(0)
    };
    assert_eq!(share_of_a(10), 5);
    // a's checks fail (404) while a itself still answers: after two, no request goes there.
    std::fs::remove_file(a.healthz()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while share_of_a(4) > 0 {
        assert!(Instant::now() < deadline, "a never taken out");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(share_of_a(20), 0, "a stays out");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metrics(&maddr).contains(&format!(
        "uring_server_upstream_up{{route=\"/\",upstream=\"{}\"}} 0",
        a.addr()
    )) {
        assert!(Instant::now() < deadline, "metrics never showed a down");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Its checks pass again: back after three in a row (>= 600 ms), not at once.
    std::fs::write(a.healthz(), "ok").unwrap();
    let healed = Instant::now();
    let deadline = healed + Duration::from_secs(10);
    while share_of_a(4) == 0 {
        assert!(Instant::now() < deadline, "a never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        healed.elapsed() >= Duration::from_millis(400),
        "back too soon"
    );
    assert_eq!(share_of_a(10), 5);
    let scrape = metrics(&maddr);
    assert!(series(&scrape, "uring_server_upstream_check_failures_total", &a) >= Some(2));
    assert_eq!(
        series(&scrape, "uring_server_upstream_check_failures_total", &b),
        Some(0)
    );
}

#[test]
fn a_header_or_cookie_keeps_a_client_on_its_upstream() {
    let ups: Vec<Upstream> = ["a", "b", "c"].into_iter().map(Upstream::start).collect();
    let refs: Vec<&Upstream> = ups.iter().collect();
    for (balance, header) in [
        ("hash:X-User", "X-User: "),
        ("hash:cookie:sid", "Cookie: theme=dark; sid="),
    ] {
        let px = ServerProc::start(&["--proxy", &route(&refs, &[1, 1, 1]), "--balance", balance]);
        let mut client = Client::new(px.addr);
        let mut homes = HashMap::new();
        for round in 0..4 {
            for user in 0..30 {
                let (status, who) = client.get("/who", &format!("{header}user{user}\r\n"));
                assert_eq!(status, 200);
                let home = homes.entry(user).or_insert_with(|| who.clone());
                assert_eq!(*home, who, "{balance}: user{user} moved in round {round}");
            }
        }
        let spread = tally(homes.into_values());
        assert_eq!(spread.len(), 3, "{balance}: {spread:?}");
        // Without the key: round-robin.
        let plain = tally((0..9).map(|_| client.get("/who", "").1).collect::<Vec<_>>());
        assert_eq!(plain.values().copied().collect::<Vec<_>>(), [3, 3, 3]);
    }
}
