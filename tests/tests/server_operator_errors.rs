//! The lines an operator reads when something is in the way: a busy port names the flag
//! that asked for it (`--metrics` is not `--listen`), and a failed zero-downtime upgrade
//! names the binary path it tried to start, while the old server keeps serving.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uring_tests::load::{ChildGuard, TempDir};
use uring_tests::{bin, free_port, wait_for_listener};

/// Start uring-server with `args` against a port held by another socket; its exit code
/// and stderr.
fn start_expecting_failure(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(bin("uring-server"))
        .args(args)
        .args(["-w", "1", "--no-pin"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_busy_port_names_the_flag_that_asked_for_it() {
    let held = TcpListener::bind(("127.0.0.1", free_port())).unwrap();
    let busy = held.local_addr().unwrap().to_string();
    let free = format!("127.0.0.1:{}", free_port());

    let (code, err) = start_expecting_failure(&["--listen", &free, "--metrics", &busy]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&format!("cannot listen on {busy} (--metrics)"))
            && err.contains("pick another --metrics address")
            && !err.contains("--listen"),
        "{err}"
    );

    let (code, err) = start_expecting_failure(&["--listen", &busy]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on {busy} (--listen)"))
            && err.contains("pick another --listen address")
            && !err.contains("--metrics"),
        "{err}"
    );
}

fn get(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The `nth` line (from 0) of the server's stderr that contains `what`, once written.
fn wait_for_line(stderr: &Path, what: &str, nth: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(stderr).unwrap_or_default();
        if let Some(line) = text.lines().filter(|l| l.contains(what)).nth(nth) {
            return line.to_string();
        }
        assert!(Instant::now() < deadline, "no {what:?} line in: {text}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn a_failed_upgrade_names_the_binary_it_tried_and_keeps_serving() {
    let dir = TempDir::new("upgrade-fail");
    // The server runs from a copy, which is then removed or replaced: an upgrade starts
    // whatever is at that path.
    let exe = dir.path().join("uring-server");
    std::fs::copy(bin("uring-server"), &exe).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let stderr = dir.path().join("stderr");
    let srv = ChildGuard(
        Command::new(&exe)
            .args(["--listen", &addr.to_string(), "-w", "1", "--no-pin"])
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(addr, Duration::from_secs(10));
    let usr2 = || {
        // SAFETY: kill(2) on the pid this test started.
        assert_eq!(unsafe { libc::kill(srv.0.id() as i32, libc::SIGUSR2) }, 0);
    };

    std::fs::remove_file(&exe).unwrap();
    usr2();
    let line = wait_for_line(&stderr, "upgrade failed", 0);
    assert!(
        line.contains(&format!("cannot start the new binary {}", exe.display()))
            && line.contains("No such file")
            && line.ends_with("still serving"),
        "{line}"
    );
    assert!(get(addr).ends_with("Hello, World!"));

    // A binary that starts and fails: the path and the exit status.
    std::fs::write(
        &exe,
        "#!/bin/sh\necho 'the replacement fails' >&2\nexit 3\n",
    )
    .unwrap();
    let perms = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&exe, perms).unwrap();
    usr2();
    let line = wait_for_line(&stderr, "upgrade failed", 1);
    assert!(
        line.contains(&format!("the new server ({})", exe.display()))
            && line.contains("exit status: 3"),
        "{line}"
    );
    assert!(get(addr).ends_with("Hello, World!"));
}
