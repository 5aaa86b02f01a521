//! TLS termination (issue 11): curl, openssl s_client and python's ssl (versions, ALPN,
//! resumption) and uring-load `https://` against `--tls-listen`, static files and Range
//! over TLS, a client that stops mid-handshake, garbage instead of a ClientHello, bad
//! certificate files, `--tls-reload` on SIGHUP, and `--ktls` (its fallback line here; the
//! real kernel TLS runs under QEMU in scripts/reliability-kernel61.sh). The certificates
//! are made here with openssl (ECDSA P-256: a test CA and a leaf for 127.0.0.1); curl,
//! openssl and python3 come from scripts/install-test-deps.sh.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uring_tests::load::{num, run_load, run_load_env, ChildGuard, TempDir};
use uring_tests::reliability::open_fds;
use uring_tests::{bin, free_port, wait_for_listener};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (scripts/install-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA (`ca.pem`) and a leaf for 127.0.0.1 named `cn`: `<cn>.chain.pem`, `<cn>.key`.
fn make_leaf(dir: &Path, cn: &str) {
    if !dir.join("ca.pem").exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=uring test CA",
            ],
        );
    }
    let key = format!("{cn}.key");
    let csr = format!("{cn}.csr");
    let pem = format!("{cn}.pem");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            "ext",
        ],
    );
    let chain = [
        std::fs::read(dir.join(&pem)).unwrap(),
        std::fs::read(dir.join("ca.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join(format!("{cn}.chain.pem")), chain).unwrap();
}

struct TlsServer {
    guard: ChildGuard,
    plain: SocketAddr,
    tls: SocketAddr,
    dir: TempDir,
}

impl TlsServer {
    fn start(extra: &[&str]) -> TlsServer {
        let dir = TempDir::new("tls");
        make_leaf(dir.path(), "leaf");
        std::fs::create_dir(dir.path().join("www")).unwrap();
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("www/data.bin"), body).unwrap();
        let plain: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
        let guard = ChildGuard(
            Command::new(bin("uring-server"))
                .args([
                    "--listen",
                    &plain.to_string(),
                    "--tls-listen",
                    &tls.to_string(),
                ])
                .args([
                    "--tls-cert",
                    &p("leaf.chain.pem"),
                    "--tls-key",
                    &p("leaf.key"),
                ])
                .args(["--root", &p("www"), "-w", "1", "--no-pin"])
                .args(extra)
                .stdin(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
                .spawn()
                .unwrap(),
        );
        wait_for_listener(tls, Duration::from_secs(10));
        TlsServer {
            guard,
            plain,
            tls,
            dir,
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-m", "10"])
        .args(args)
        .output()
        .expect("curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `openssl s_client` with one request; its whole output.
fn s_client(addr: SocketAddr, ca: &Path, args: &[&str]) -> String {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-CAfile",
            ca.to_str().unwrap(),
        ])
        .args(["-ign_eof", "-servername", "localhost"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn curl_over_both_versions_with_alpn_beside_a_plain_listener() {
    let srv = TlsServer::start(&[]);
    let ca = srv.ca();
    let url = format!("https://{}/plaintext", srv.tls);
    for (flags, version) in [
        (&["--tlsv1.3"][..], "TLSv1.3"),
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
    ] {
        let mut args = vec!["-v", "--cacert", ca.to_str().unwrap()];
        args.extend_from_slice(flags);
        args.push(&url);
        let (ok, body, err) = curl(&args);
        assert!(ok, "{err}");
        assert_eq!(body, "Hello, World!");
        assert!(
            err.contains(&format!("SSL connection using {version}")),
            "{err}"
        );
        // curl offers h2 and http/1.1; the server prefers HTTP/2.
        assert!(err.contains("ALPN: server accepted h2"), "{err}");
        let mut args = vec!["-v", "--http1.1", "--cacert", ca.to_str().unwrap()];
        args.extend_from_slice(flags);
        args.push(&url);
        let (ok, body, err) = curl(&args);
        assert!(ok && body == "Hello, World!", "{err}");
        assert!(err.contains("ALPN: server accepted http/1.1"), "{err}");
    }
    // Without the CA, curl refuses the certificate: it is verified, not just encrypted.
    let (ok, _, _) = curl(&[&url]);
    assert!(!ok);
    let (ok, body, _) = curl(&[&format!("http://{}/plaintext", srv.plain)]);
    assert!(ok && body == "Hello, World!");
}

#[test]
fn openssl_versions_alpn_and_resumption() {
    let srv = TlsServer::start(&[]);
    let ca = srv.ca();
    for v in ["-tls1_2", "-tls1_3"] {
        let sess = srv.dir.path().join(format!("sess{v}.pem"));
        let sess = sess.to_str().unwrap();
        let first = s_client(srv.tls, &ca, &[v, "-alpn", "http/1.1", "-sess_out", sess]);
        let name = if v == "-tls1_2" { "TLSv1.2" } else { "TLSv1.3" };
        assert!(first.contains(&format!("New, {name}")), "{first}");
        assert!(first.contains("ALPN protocol: http/1.1"), "{first}");
        // The server's preference, not the client's (openssl offers AES-256 first).
        let suite = if v == "-tls1_2" {
            "ECDHE-ECDSA-AES128-GCM-SHA256"
        } else {
            "TLS_AES_128_GCM_SHA256"
        };
        assert!(first.contains(&format!("Cipher is {suite}")), "{first}");
        assert!(first.contains("Verify return code: 0 (ok)"), "{first}");
        assert!(first.contains("Hello, World!"), "{first}");
        let again = s_client(srv.tls, &ca, &[v, "-sess_in", sess]);
        assert!(
            again.contains(&format!("Reused, {name}")),
            "no resumption:\n{again}"
        );
        assert!(again.contains("Hello, World!"), "{again}");
    }
}

#[test]
fn uring_load_https_with_the_test_ca_and_with_insecure() {
    let srv = TlsServer::start(&[]);
    let url = format!("https://{}/plaintext", srv.tls);
    let ca = srv.ca();
    let ca = ca.to_str().unwrap();
    let run = run_load_env(
        &["-n", "3000", "-c", "8", "-k", "--json", &url],
        &[("SSL_CERT_FILE", ca)],
        Duration::from_secs(60),
    );
    let v = run.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 3000, "{}", run.stderr);
    let run = run_load(
        &["-n", "500", "-c", "4", "--insecure", "--json", &url],
        Duration::from_secs(60),
    );
    let v = run.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), 500, "{}", run.stderr);
}

#[test]
fn static_files_and_ranges_over_tls() {
    let srv = TlsServer::start(&[]);
    let ca = srv.ca();
    let ca = ca.to_str().unwrap();
    let want: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let out = srv.dir.path().join("got.bin");
    let url = format!("https://{}/data.bin", srv.tls);
    let (ok, _, err) = curl(&["--cacert", ca, "-o", out.to_str().unwrap(), &url]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), want);
    let (ok, _, err) = curl(&[
        "--cacert",
        ca,
        "-r",
        "100000-100099",
        "-o",
        out.to_str().unwrap(),
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), &want[100_000..100_100]);
}

#[test]
fn http2_by_alpn_static_files_ranges_and_a_client_that_offers_only_http1() {
    let srv = TlsServer::start(&[]);
    let ca = srv.ca();
    let ca = ca.to_str().unwrap();
    let want: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let out = srv.dir.path().join("got2.bin");
    let url = format!("https://{}/data.bin", srv.tls);
    let (ok, _, err) = curl(&[
        "-v",
        "--http2",
        "--cacert",
        ca,
        "-o",
        out.to_str().unwrap(),
        &url,
    ]);
    assert!(ok, "{err}");
    assert!(
        err.contains("ALPN: server accepted h2") && err.contains("< HTTP/2 200"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), want);
    let (ok, code, err) = curl(&[
        "--http2",
        "--cacert",
        ca,
        "-r",
        "100000-100099",
        "-o",
        out.to_str().unwrap(),
        "-w",
        "%{http_code} %{http_version}",
        &url,
    ]);
    assert!(ok, "{err}");
    assert_eq!(code, "206 2");
    assert_eq!(std::fs::read(&out).unwrap(), &want[100_000..100_100]);
    // A client that offers only http/1.1 still gets HTTP/1.1 on the same port.
    let first = s_client(srv.tls, Path::new(ca), &["-alpn", "http/1.1"]);
    assert!(
        first.contains("ALPN protocol: http/1.1") && first.contains("Hello, World!"),
        "{first}"
    );
}

#[test]
fn stalled_handshakes_and_garbage_leave_no_fd_behind() {
    let srv = TlsServer::start(&["--header-timeout", "1s"]);
    let pid = srv.guard.0.id();
    // Warm up (the ring and the file cache), then count.
    let (ok, _, err) = curl(&[
        "--cacert",
        srv.ca().to_str().unwrap(),
        &format!("https://{}/plaintext", srv.tls),
    ]);
    assert!(ok, "{err}");
    std::thread::sleep(Duration::from_millis(200));
    let idle = open_fds(pid);

    // Half a ClientHello, then silence.
    let mut stalled = TcpStream::connect(srv.tls).unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .unwrap();
    // Plain HTTP on the TLS port: rustls answers with an alert and the server closes.
    let mut garbage = TcpStream::connect(srv.tls).unwrap();
    garbage
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let _ = garbage.read_to_end(&mut got);
    assert!(
        got.is_empty() || got[0] == 0x15,
        "an alert record or nothing, never plain HTTP: {got:?}"
    );
    assert!(!String::from_utf8_lossy(&got).contains("HTTP/1.1"));

    // The stalled client is closed by the head timeout.
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = stalled.read(&mut buf).unwrap_or(0);
    assert!(n == 0 || buf[0] == 0x15, "closed, at most with an alert");
    assert!(started.elapsed() < Duration::from_secs(4));
    drop((stalled, garbage));
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds(pid) > idle && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        open_fds(pid),
        idle,
        "fds left after stalled and garbage handshakes"
    );
    let (ok, body, _) = curl(&[
        "--cacert",
        srv.ca().to_str().unwrap(),
        &format!("https://{}/plaintext", srv.tls),
    ]);
    assert!(ok && body == "Hello, World!", "still serving");
}

#[test]
fn bad_certificate_files_are_one_line_and_exit_1() {
    let dir = TempDir::new("tls-bad");
    make_leaf(dir.path(), "leaf");
    std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let addr = format!("127.0.0.1:{}", free_port());
    for (cert, key, says) in [
        (p("missing.pem"), p("leaf.key"), "cannot read"),
        (p("empty.pem"), p("leaf.key"), "no PEM certificate"),
        (p("leaf.chain.pem"), p("empty.pem"), "no usable private key"),
        (p("leaf.chain.pem"), p("ca.key"), "do not go together"),
    ] {
        let out = Command::new(bin("uring-server"))
            .args([
                "--tls-listen",
                &addr,
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--no-pin",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{says}: {err}");
    }
}

#[test]
fn tls_reload_on_sighup_serves_the_new_certificate() {
    let srv = TlsServer::start(&["--tls-reload"]);
    let subject = |srv: &TlsServer| {
        let out = s_client(srv.tls, &srv.ca(), &[]);
        out.lines()
            .find(|l| l.starts_with("subject="))
            .unwrap_or_else(|| panic!("no subject in {out}"))
            .to_string()
    };
    assert!(subject(&srv).contains("CN = leaf"), "{}", subject(&srv));
    make_leaf(srv.dir.path(), "renewed");
    for (from, to) in [
        ("renewed.chain.pem", "leaf.chain.pem"),
        ("renewed.key", "leaf.key"),
    ] {
        std::fs::rename(srv.dir.path().join(from), srv.dir.path().join(to)).unwrap();
    }
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(srv.guard.0.id() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !subject(&srv).contains("CN = renewed") {
        assert!(
            Instant::now() < deadline,
            "still the old certificate after SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pythons_ssl_verifies_negotiates_alpn_and_resumes() {
    let srv = TlsServer::start(&[]);
    let script = r#"
import socket, ssl, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
ctx.maximum_version = ssl.TLSVersion.TLSv1_2   # session reuse is visible in 1.2 at once
session = None
for i in range(2):
    with socket.create_connection((host, port)) as raw:
        with ctx.wrap_socket(raw, server_hostname=host, session=session) as s:
            version = s.version()
            s.sendall(b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            print(i, version, s.selected_alpn_protocol(), s.session_reused, data.split(b"\r\n")[0].decode(), data.endswith(b'{"message":"Hello, World!"}'))
            session = s.session
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([
            "127.0.0.1",
            &srv.tls.port().to_string(),
            srv.ca().to_str().unwrap(),
        ])
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "0 TLSv1.2 http/1.1 False HTTP/1.1 200 OK True",
            "1 TLSv1.2 http/1.1 True HTTP/1.1 200 OK True"
        ]
    );
}

/// `--ktls`: where the kernel has no `tls` ULP (this machine: tcp_available_ulp lists no
/// tls, and there is no module to load), one line says so with the cause, once, not per
/// connection, and TLS goes on in rustls. Where the kernel has it, the line says kTLS is
/// on and the metrics count the sessions handed over (scripts/reliability-kernel61.sh
/// checks that for real under QEMU, with /proc/net/tls_stat).
#[test]
fn ktls_says_once_what_it_does_and_serves_exactly_either_way() {
    let metrics = format!("127.0.0.1:{}", free_port());
    let srv = TlsServer::start(&["--ktls", "--metrics", &metrics]);
    let ca = srv.ca();
    let ca = ca.to_str().unwrap();
    let url = format!("https://{}/plaintext", srv.tls);
    for keep_alive in [true, false] {
        let mut args = vec!["-n", "400", "-c", "4", "--insecure", "--json", &url];
        if keep_alive {
            args.insert(0, "-k");
        }
        let run = run_load(&args, Duration::from_secs(60));
        let v = run.json();
        assert_eq!(num(&v, &["requests", "succeeded"]), 400, "{}", run.stderr);
    }
    let want: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let out = srv.dir.path().join("got.bin");
    let file = format!("https://{}/data.bin", srv.tls);
    for v in ["--tlsv1.3", "--tls-max"] {
        let mut args = vec!["--cacert", ca, "-o", out.to_str().unwrap(), &file, v];
        if v == "--tls-max" {
            args.push("1.2");
        }
        let (ok, _, err) = curl(&args);
        assert!(ok, "{err}");
        assert_eq!(std::fs::read(&out).unwrap(), want, "{v}");
    }
    let (ok, scrape, err) = curl(&[&format!("http://{metrics}/metrics")]);
    assert!(ok, "{err}");
    let entered: u64 = scrape
        .lines()
        .find_map(|l| l.strip_prefix("uring_server_ktls_connections_total "))
        .and_then(|n| n.parse().ok())
        .expect("the kTLS counter is scraped");
    let log = std::fs::read_to_string(srv.dir.path().join("stderr")).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("--ktls")).collect();
    assert_eq!(lines.len(), 1, "one line, not one per connection:\n{log}");
    let ulp = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp").unwrap_or_default();
    if ulp.split_whitespace().any(|u| u == "tls") {
        assert!(lines[0].contains("kernel TLS after the handshake"), "{log}");
        assert!(
            entered >= 802,
            "sessions handed to the kernel: {entered}\n{scrape}"
        );
    } else {
        assert!(lines[0].contains("unavailable"), "{log}");
        assert!(
            lines[0].contains("modprobe tls"),
            "the cause and the fix: {log}"
        );
        assert_eq!(entered, 0);
    }
}

#[test]
fn ktls_without_a_tls_listener_is_a_config_error() {
    let out = Command::new(bin("uring-server"))
        .args(["--ktls", "--listen", &format!("127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--tls-listen"), "{err}");
}

/// The server ends a TLS session with close_notify before the TCP close, both after a
/// `Connection: close` answer and at the keep-alive idle timeout: Python's ssl, told not
/// to hide a "ragged" EOF, reads a clean end (OpenSSL 3 reports "unexpected eof while
/// reading" otherwise, which a truncation attack also looks like).
#[test]
fn sessions_end_with_close_notify_after_connection_close_and_at_the_idle_timeout() {
    let srv = TlsServer::start(&["--keepalive-timeout", "1s"]);
    let script = r#"
import socket, ssl, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
# Python sets this by default with OpenSSL 3, which would hide a missing close_notify.
ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
for close in (True, False):
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=False) as s:
            header = b"Connection: close\r\n" if close else b""
            s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                end = "close_notify"
            except (ssl.SSLError, OSError) as e:
                end = type(e).__name__ + ": " + str(e)
            print("close" if close else "idle", data.split(b"\r\n")[0].decode(), data.endswith(b"Hello, World!"), end)
"#;
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args([
            "127.0.0.1",
            &srv.tls.port().to_string(),
            srv.ca().to_str().unwrap(),
        ])
        .output()
        .expect("/usr/bin/python3");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "close HTTP/1.1 200 OK True close_notify",
            "idle HTTP/1.1 200 OK True close_notify"
        ]
    );
}

/// A certificate uring-load does not trust is one line in words that names both ways out
/// (`--cacert FILE`, `--insecure`), not rustls' debug text; `--cacert` with the test CA
/// (curl's and vegeta's flag) then verifies it, and a `--cacert` that cannot be used is
/// one line naming the file.
#[test]
fn uring_load_names_cacert_and_insecure_when_the_certificate_is_refused() {
    let srv = TlsServer::start(&[]);
    let url = format!("https://{}/plaintext", srv.tls);
    // The system's bundle does not know the test CA.
    let run = run_load(&["-n", "20", "-c", "2", &url], Duration::from_secs(60));
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("certificate"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    let line = lines[0];
    assert!(
        line.contains(
            "the server's certificate was refused: it is not signed by a CA this run trusts"
        ) && line.contains("--cacert FILE")
            && line.contains("--insecure")
            && !line.contains("UnknownIssuer")
            && !line.contains("Other("),
        "{line}"
    );
    let ca = srv.ca();
    let run = run_load(
        &[
            "-n",
            "200",
            "-c",
            "2",
            "--cacert",
            ca.to_str().unwrap(),
            "--json",
            &url,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(num(&run.json(), &["requests", "succeeded"]), 200);
    // The self-signed certificate most test servers have (`openssl req -x509`, which
    // marks it a CA): --cacert with that very file trusts it, as curl does; another
    // self-signed one does not.
    let dir = srv.dir.path();
    for name in ["self", "other"] {
        uring_tests::self_signed_cert(
            &dir.join(format!("{name}.pem")),
            &dir.join(format!("{name}.key")),
        );
    }
    let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let _self_signed = ChildGuard(
        Command::new(bin("uring-server"))
            .args(["--tls-listen", &tls.to_string(), "-w", "1", "--no-pin"])
            .args(["--tls-cert", &p("self.pem"), "--tls-key", &p("self.key")])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(tls, Duration::from_secs(10));
    let self_url = format!("https://{tls}/plaintext");
    let run = run_load(
        &[
            "-n",
            "50",
            "-c",
            "2",
            "--cacert",
            &p("self.pem"),
            "--json",
            &self_url,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(num(&run.json(), &["requests", "succeeded"]), 50);
    let run = run_load(
        &["-n", "5", "-c", "1", "--cacert", &p("other.pem"), &self_url],
        Duration::from_secs(60),
    );
    assert!(
        run.stderr
            .contains("the server's certificate was refused: it is a CA certificate")
            && run.stderr.contains("--cacert FILE"),
        "{}",
        run.stderr
    );
    for (file, cause) in [
        (srv.dir.path().join("missing.pem"), "No such file"),
        (srv.dir.path().join("leaf.key"), "no PEM certificate in it"),
    ] {
        let run = run_load(
            &["-n", "1", "--cacert", file.to_str().unwrap(), &url],
            Duration::from_secs(60),
        );
        assert_ne!(run.code, 0);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("--cacert {}: {cause}", file.display())),
            "{}",
            run.stderr
        );
    }
}

/// A graceful shutdown (SIGTERM) closes an idle TLS keep-alive connection with
/// close_notify too, as it drains.
#[test]
fn a_draining_server_ends_idle_tls_sessions_with_close_notify() {
    let srv = TlsServer::start(&[]);
    let script = r#"
import socket, ssl, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
# Python sets this by default with OpenSSL 3, which would hide a missing close_notify.
ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
with socket.create_connection((host, port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=False) as s:
        s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.endswith(b"Hello, World!"):
            data += s.recv(4096)
        print("answered", flush=True)
        try:
            rest = s.recv(4096)
            print("close_notify" if rest == b"" else "more: %r" % rest)
        except (ssl.SSLError, OSError) as e:
            print(type(e).__name__ + ": " + str(e))
"#;
    let mut py = ChildGuard(
        Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .args([
                "127.0.0.1",
                &srv.tls.port().to_string(),
                srv.ca().to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3"),
    );
    let mut out = std::io::BufReader::new(py.0.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "answered");
    // Idle past the drain's grace for a request on its way (500 ms): the drain closes it
    // at once (a younger one is closed by its deadline, through the idle timeout's path).
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill(2) on the server this test started.
    unsafe { libc::kill(srv.guard.0.id() as i32, libc::SIGTERM) };
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "close_notify");
}
