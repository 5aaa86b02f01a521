//! Issue 23, the config file: `--config FILE` serves a root and a proxy route,
//! `--check-config` exits 0 with one line or 1 with `FILE:LINE: what is wrong`, `--user`
//! drops root after binding a port below 1024, `--pid-file` names the process.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use uring_tests::load::MisbehavingServer;
use uring_tests::server::{exchange, TempDir};
use uring_tests::{bin, free_port, wait_for_listener};

/// A running server, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str], addr: SocketAddr) -> Running {
    let child = Command::new(bin("uring-server"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn uring-server");
    let running = Running(child);
    wait_for_listener(addr, Duration::from_secs(10));
    running
}

fn check(path: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(bin("uring-server"))
        .arg("--config")
        .arg(path)
        .arg("--check-config")
        .output()
        .expect("run uring-server --check-config");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_config_file_serves_a_root_and_a_route() {
    let dir = TempDir::new("config-serve");
    std::fs::create_dir(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("www/hello.txt"), "hello from the root\n").unwrap();
    let upstream = MisbehavingServer::healthy();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let file = dir.path().join("site.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = [\"{addr}\"]\nworkers = 1\npin = false\n\
             [[site]]\nhosts = [\"*\"]\nroot = \"www\"\n\
             [[site.route]]\nprefix = \"/app/\"\nupstreams = [\"http://{}\"]\n",
            upstream.addr
        ),
    )
    .unwrap();
    let (code, out, err) = check(&file);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let _srv = start(&["--config", file.to_str().unwrap()], addr);
    let resp = exchange(addr, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        (resp.status, &resp.body[..]),
        (200, &b"hello from the root\n"[..])
    );
    let before = upstream.requests.load(std::sync::atomic::Ordering::Relaxed);
    let resp = exchange(addr, b"GET /app/x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(
        upstream.requests.load(std::sync::atomic::Ordering::Relaxed),
        before + 1,
        "the route did not reach the upstream"
    );
}

#[test]
fn a_flag_overrides_the_files_value() {
    let dir = TempDir::new("config-override");
    let (file_port, flag_port) = (free_port(), free_port());
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        format!("[server]\nlisten = [\"127.0.0.1:{file_port}\"]\npin = false\nworkers = 1\n"),
    )
    .unwrap();
    let flag_addr: SocketAddr = format!("127.0.0.1:{flag_port}").parse().unwrap();
    let _srv = start(
        &[
            "--config",
            file.to_str().unwrap(),
            "--listen",
            &flag_addr.to_string(),
        ],
        flag_addr,
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", file_port)).is_err(),
        "the file's address is served although --listen was given"
    );
}

#[test]
fn check_config_names_the_line_of_each_mistake() {
    let dir = TempDir::new("config-check");
    for (text, line, what) in [
        ("[server]\nworkers = 2\nlisten = [\"127.0.0.1:99999\"]\n", 3, "is not an address"),
        ("[server]\n\nbogus = 1\n", 3, "unknown field `bogus`"),
        ("[[site]]\nroot = \"/\"\n\n[[site]]\nroot = \"/\"\n", 4, "several [[site]] need Host routing, not supported yet"),
        ("[[site]]\nroot = \"no-such-dir\"\n", 2, "no-such-dir"),
        ("[[site]]\n[[site.route]]\nprefix = \"/a/\"\nupstreams = [\"http://127.0.0.1:1\"]\n[[site.route]]\nprefix = \"/a/\"\nupstreams = [\"http://127.0.0.1:2\"]\n", 6, "repeats the one on line 3"),
        ("[[site]]\n[[site.route]]\nprefix = \"/\"\nupstreams = [\"http://127.0.0.1:1\", \"http://127.0.0.1:2\"]\nbalance = \"random\"\n", 5, "balance 'random'"),
        ("[server]\ntls_listen = [\"127.0.0.1:1\"]\n[[tls]]\ncert = \"missing.pem\"\nkey = \"missing.key\"\n", 4, "cannot read"),
        ("[timeouts]\nkeepalive = \"ten\"\n", 2, "invalid duration"),
        ("[server\n", 1, ""),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).unwrap();
        let (code, out, err) = check(&file);
        assert_eq!(code, 1, "{text:?} accepted: {out}");
        let want = format!("{}:{line}: ", file.display());
        assert!(err.starts_with(&want) && err.contains(what), "{text:?}: got {err:?}, want {want}...{what}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// A loopback port below 1024 that nothing listens on.
fn privileged_port() -> u16 {
    (700..1000)
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below 1024")
}

fn status_ids(pid: u32, task: &str, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{task}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line[field.len()..]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn user_drops_root_after_binding_a_low_port_and_pid_file_names_the_process() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "this test binds a port below 1024: run it as root"
    );
    let dir = TempDir::new("config-user");
    let port = privileged_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let pid_path = dir.path().join("server.pid");
    let mut srv = start(
        &[
            "--listen",
            &addr.to_string(),
            "--no-pin",
            "-w",
            "2",
            "--user",
            "nobody",
            "--pid-file",
            pid_path.to_str().unwrap(),
        ],
        addr,
    );
    let pid = srv.0.id();
    let written = std::fs::read_to_string(&pid_path).unwrap();
    assert_eq!(written, format!("{pid}\n"));
    let resp = exchange(addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 200);
    let nobody = {
        let out = Command::new("id").args(["-u", "nobody"]).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    // Every thread, the workers too: real, effective, saved and filesystem ids.
    let tasks: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        tasks.len() >= 3,
        "expected the main thread and two workers: {tasks:?}"
    );
    for task in &tasks {
        assert_eq!(status_ids(pid, task, "Uid:"), [nobody; 4], "thread {task}");
        assert!(
            !status_ids(pid, task, "Gid:").contains(&0),
            "thread {task} kept group root"
        );
        assert!(
            !status_ids(pid, task, "Groups:").contains(&0),
            "thread {task} kept group root"
        );
    }
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = srv.0.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn an_unknown_user_is_refused_before_serving() {
    let port = free_port();
    let out = Command::new(bin("uring-server"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--user",
            "no-such-user-here",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-user-here"));
}
