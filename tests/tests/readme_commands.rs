//! The commands README.md tells a new user to type work as written: the server's first
//! command line, run from the repository's root (where `./public` is), serves
//! `public/index.html` at `/` and the built-in `/plaintext` the README promises. Only the
//! binary's directory (debug here, release there) and the port (8080 may be taken on a
//! test machine) differ from the README's line.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use uring_tests::load::ChildGuard;
use uring_tests::{bin, free_port, wait_for_listener};

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).to_string()
}

#[test]
fn readmes_server_command_serves_public_and_plaintext() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("target/release/uring-server "))
        .expect("README.md runs target/release/uring-server");
    let mut args: Vec<String> = line
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect();
    let listen = args
        .iter()
        .position(|a| a == "--listen")
        .expect("README's command names --listen");
    assert_eq!(args[listen + 1], "127.0.0.1:8080", "{line}");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    args[listen + 1] = addr.to_string();
    let _srv = ChildGuard(
        Command::new(bin("uring-server"))
            .args(&args)
            .current_dir(root)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(addr, Duration::from_secs(10));
    let index = get(addr, "/");
    assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
    let on_disk = std::fs::read_to_string(root.join("public/index.html")).unwrap();
    assert!(index.ends_with(&on_disk), "{index}");
    // README: `curl http://127.0.0.1:8080/plaintext     # Hello, World!`
    let curl = readme
        .lines()
        .find(|l| l.starts_with("curl http://127.0.0.1:8080/plaintext"))
        .expect("README's curl line");
    let promised = curl.split("# ").nth(1).unwrap().trim();
    let plain = get(addr, "/plaintext");
    assert!(plain.starts_with("HTTP/1.1 200 OK\r\n"), "{plain}");
    assert!(plain.ends_with(&format!("\r\n\r\n{promised}")), "{plain}");
}
