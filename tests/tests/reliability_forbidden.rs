//! io_uring forbidden: both binaries run under a seccomp filter (installed by the test in
//! the child before exec) that makes io_uring_setup fail with EPERM, as Docker's default
//! profile does. With `--tier auto` both fall back to epoll, say so once in their start-up
//! line, and serve and count exactly; a forced io_uring tier still exits non-zero with one
//! clear line that names the cause and the fix, not a panic or a backtrace.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use uring_tests::bin;
use uring_tests::load::num;
use uring_tests::reliability::{deny_io_uring, ChildGuard, TestServer};

const FALLBACK: &str =
    "io_uring unavailable (EPERM: forbidden by seccomp or kernel.io_uring_disabled); using epoll";

fn run_denied(mut cmd: Command) -> (std::process::ExitStatus, String) {
    deny_io_uring(&mut cmd);
    let errf = tempfile_path("stderr");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&errf).unwrap());
    let mut guard = ChildGuard::new(cmd.spawn().expect("spawn under seccomp"));
    let status = guard
        .wait_timeout(Duration::from_secs(20))
        .expect("the program did not exit within 20 s with io_uring forbidden");
    let stderr = std::fs::read_to_string(&errf).unwrap_or_default();
    let _ = std::fs::remove_file(&errf);
    (status, stderr)
}

fn tempfile_path(tag: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "uring-reliability-{tag}-{}-{n}",
        std::process::id()
    ))
}

/// The one line: it names io_uring, that it is forbidden (EPERM), the likely causes
/// (seccomp, the sysctl), and a fix.
fn assert_one_clear_line(program: &str, status: std::process::ExitStatus, stderr: &str) {
    assert!(
        !status.success(),
        "{program} exited successfully with io_uring forbidden; stderr: {stderr}"
    );
    assert_eq!(
        status.code().map(|c| c != 101),
        Some(true),
        "{program} died by a signal or a panic ({status}); stderr: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{program} panicked instead of explaining: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{program} should print exactly one line, printed: {stderr:?}"
    );
    let line = lines[0].to_ascii_lowercase();
    for (what, any_of) in [
        ("io_uring", &["io_uring"][..]),
        (
            "that it is forbidden",
            &["forbidden", "not permitted", "eperm", "denied"][..],
        ),
        ("seccomp as a cause", &["seccomp"][..]),
        ("the sysctl as a cause", &["io_uring_disabled"][..]),
        (
            "a fix",
            &[
                "seccomp=unconfined",
                "security-opt",
                "allow",
                "io_uring_disabled=0",
            ][..],
        ),
    ] {
        assert!(
            any_of.iter().any(|w| line.contains(w)),
            "{program}'s line does not name {what} (any of {any_of:?}): {}",
            lines[0]
        );
    }
    eprintln!("{program} said: {}", lines[0]);
}

#[test]
fn seccomp_filter_really_denies_io_uring() {
    // Guard against a vacuous pass: a helper process under the same filter must see EPERM
    // from io_uring_setup. python3 makes the raw syscall (installed by scripts/test.sh).
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import ctypes,os,sys\n\
         libc=ctypes.CDLL(None,use_errno=True)\n\
         p=ctypes.create_string_buffer(120)\n\
         r=libc.syscall(425,8,p)\n\
         e=ctypes.get_errno()\n\
         print(r,e,file=sys.stderr)\n\
         sys.exit(0 if (r==-1 and e==1) else 3)",
    ]);
    let (status, stderr) = run_denied(cmd);
    assert!(
        status.success(),
        "io_uring_setup under the filter did not fail with EPERM: {stderr}"
    );
}

#[test]
fn server_explains_a_forced_io_uring_tier_when_forbidden() {
    let port = uring_tests::free_port();
    let mut cmd = Command::new(bin("uring-server"));
    cmd.args(["--listen", &format!("127.0.0.1:{port}"), "-w", "1"]);
    cmd.args(["--tier", "basic"]);
    let (status, stderr) = run_denied(cmd);
    assert_one_clear_line("uring-server", status, &stderr);
}

#[test]
fn load_explains_a_forced_io_uring_tier_when_forbidden() {
    // A real listener, so that the only thing wrong is the ring.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let mut cmd = Command::new(bin("uring-load"));
    cmd.args(["-n", "10", "-c", "1", "--tier", "full", &url]);
    let (status, stderr) = run_denied(cmd);
    assert_one_clear_line("uring-load", status, &stderr);
}

/// Both programs under the filter, tier auto: the server falls back to epoll and says so
/// in its start-up line; the load tool too, once, and its JSON says epoll; every request
/// is answered, and the server's access log has exactly one line per request.
#[test]
fn both_fall_back_to_epoll_and_count_exactly_when_forbidden() {
    let log = tempfile_path("access-log");
    let server = TestServer::start_with(&["--access-log", log.to_str().unwrap()], |cmd| {
        deny_io_uring(cmd)
    });
    // The line is printed just after the listeners are up: wait for it.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    let mut start_line = server.log_text();
    while !start_line.contains("listening on") && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
        start_line = server.log_text();
    }
    assert!(
        start_line.contains(&format!("tier epoll ({FALLBACK})")),
        "the start-up line does not say why epoll: {start_line}"
    );
    assert_eq!(start_line.matches("io_uring unavailable").count(), 1);
    let url = format!("http://{}/plaintext", server.addr);
    let mut total = 0;
    for (n, extra) in [(3000u64, &["-k", "-K", "4"][..]), (500, &[][..])] {
        let mut cmd = Command::new(bin("uring-load"));
        cmd.args(["-n", &n.to_string(), "-c", "8", "-t", "2", "--json"])
            .args(extra)
            .arg(&url);
        let (status, stdout, stderr) = run_denied_output(cmd);
        assert!(status.success(), "uring-load under the filter: {stderr}");
        assert_eq!(stderr.matches(FALLBACK).count(), 1, "{stderr}");
        let v: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
        assert_eq!(v["tier"], "epoll", "{v}");
        assert_eq!(num(&v, &["requests", "succeeded"]), n, "{v}");
        assert_eq!(num(&v, &["requests", "errored"]), 0, "{v}");
        total += n;
    }
    let mut server = server;
    server.guard.signal(libc::SIGTERM); // drain: the access log is flushed.
    let status = server.guard.wait_timeout(Duration::from_secs(15));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let lines = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    let _ = std::fs::remove_file(&log);
    assert_eq!(lines as u64, total, "the server's access log");
}

fn run_denied_output(mut cmd: Command) -> (std::process::ExitStatus, String, String) {
    deny_io_uring(&mut cmd);
    let (outf, errf) = (tempfile_path("stdout"), tempfile_path("stderr"));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&outf).unwrap())
        .stderr(std::fs::File::create(&errf).unwrap());
    let mut guard = ChildGuard::new(cmd.spawn().expect("spawn under seccomp"));
    let status = guard
        .wait_timeout(Duration::from_secs(30))
        .expect("uring-load did not finish within 30 s under the filter");
    let read = |p: &std::path::Path| {
        let s = std::fs::read_to_string(p).unwrap_or_default();
        let _ = std::fs::remove_file(p);
        s
    };
    (status, read(&outf), read(&errf))
}
