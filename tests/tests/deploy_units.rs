//! The systemd units an operator installs, as shipped and as the docs tell them to change
//! them: `systemd-analyze verify` accepts deploy/systemd/'s units, the TLS drop-ins in
//! deploy/systemd/tls/ and docs/proxy.md's drop-ins and app units (gunicorn, uWSGI,
//! PHP-FPM: its ini blocks, read from the doc; the drop-ins' command lines pass
//! `--check-config`),
//! and refuses a drop-in that adds a second `ExecStart=` without the reset line (so the
//! check can fail). Every drop-in keeps the shipped command's flags. The TLS unit's
//! command line then runs under the real `systemd-socket-activate` with both sockets and
//! serves HTTP and HTTPS. systemd-analyze and systemd-socket-activate come with Debian's
//! systemd, openssl and python3 with scripts/install-test-deps.sh.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uring_tests::load::{ChildGuard, TempDir};
use uring_tests::{bin, free_port};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The `ExecStart=` command lines of a unit file that set a command (not the reset),
/// continuation lines joined.
fn exec_starts(unit: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The ```ini blocks of a markdown document, in order.
fn ini_blocks(doc: &str) -> Vec<String> {
    doc.split("```ini\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

/// Binaries the units name, replaced by ones that exist here (verify checks that the
/// command is executable).
fn localize(unit: &str) -> String {
    unit.replace(
        "/usr/local/bin/uring-server",
        bin("uring-server").to_str().unwrap(),
    )
    .replace("/usr/bin/gunicorn", "/bin/true")
    .replace("/usr/bin/uwsgi", "/bin/true")
}

/// Write `files` (path relative to a unit directory, content) and run
/// `systemd-analyze verify` on the server's two units there; (success, its output).
fn verify(files: &[(&str, String)]) -> (bool, String) {
    let dir = TempDir::new("units");
    for (rel, text) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, localize(text)).unwrap();
    }
    // Every unit written (an app's too), drop-ins with theirs.
    let units = files
        .iter()
        .filter(|(rel, _)| !rel.contains('/'))
        .map(|(rel, _)| dir.path().join(rel));
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(units)
        // Units and drop-ins from this directory only (the trailing colon adds the
        // system's own, for the targets the units name).
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.path().display()))
        .output()
        .expect("systemd-analyze (Debian's systemd; scripts/install-test-deps.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.trim().is_empty(), text)
}

fn shipped() -> Vec<(&'static str, String)> {
    vec![
        (
            "uring-server.service",
            read("deploy/systemd/uring-server.service"),
        ),
        (
            "uring-server.socket",
            read("deploy/systemd/uring-server.socket"),
        ),
    ]
}

const TLS_SERVICE: &str = "deploy/systemd/tls/uring-server.service.d/tls.conf";
const TLS_SOCKET: &str = "deploy/systemd/tls/uring-server.socket.d/tls.conf";

#[test]
fn shipped_units_tls_drop_ins_and_the_proxy_docs_drop_in_pass_verify() {
    let (ok, text) = verify(&shipped());
    assert!(ok, "shipped units: {text}");

    let mut tls = shipped();
    tls.push(("uring-server.service.d/tls.conf", read(TLS_SERVICE)));
    tls.push(("uring-server.socket.d/tls.conf", read(TLS_SOCKET)));
    let (ok, text) = verify(&tls);
    assert!(ok, "with the TLS drop-ins: {text}");

    let blocks = ini_blocks(&read("docs/proxy.md"));
    let app = blocks
        .iter()
        .find(|b| b.contains("gunicorn -w"))
        .expect("docs/proxy.md's app.service");
    let drop_in = blocks
        .iter()
        .find(|b| b.contains("--proxy /=unix:"))
        .expect("docs/proxy.md's drop-in");
    let mut proxy = shipped();
    proxy.push(("app.service", app.clone()));
    proxy.push(("uring-server.service.d/proxy.conf", drop_in.clone()));
    let (ok, text) = verify(&proxy);
    assert!(ok, "with docs/proxy.md's drop-in: {text}");

    // The uWSGI app and its drop-in; the PHP-FPM drop-in beside Debian's php8.2-fpm unit
    // (a stand-in here: the package is not installed for this test).
    let app = blocks
        .iter()
        .find(|b| b.contains("--uwsgi-socket"))
        .expect("docs/proxy.md's uwsgi-app.service");
    let uwsgi_drop_in = blocks
        .iter()
        .find(|b| b.contains("=uwsgi+unix:"))
        .expect("docs/proxy.md's uWSGI drop-in");
    let mut uwsgi = shipped();
    uwsgi.push(("uwsgi-app.service", app.clone()));
    uwsgi.push(("uring-server.service.d/uwsgi.conf", uwsgi_drop_in.clone()));
    let (ok, text) = verify(&uwsgi);
    assert!(ok, "with docs/proxy.md's uWSGI units: {text}");
    let php_drop_in = blocks
        .iter()
        .find(|b| b.contains("=fastcgi+unix:"))
        .expect("docs/proxy.md's PHP-FPM drop-in");
    let mut php = shipped();
    php.push((
        "php8.2-fpm.service",
        "[Unit]\nDescription=stand-in for Debian's PHP-FPM unit\n[Service]\nType=notify\nExecStart=/bin/true\n".to_string(),
    ));
    php.push(("uring-server.service.d/php.conf", php_drop_in.clone()));
    let (ok, text) = verify(&php);
    assert!(ok, "with docs/proxy.md's PHP-FPM drop-in: {text}");
    // The drop-ins' command lines parse: the flags exist and every FastCGI route has its
    // script (a mistake there exits 2 before serving).
    for unit in [uwsgi_drop_in, php_drop_in] {
        let line = exec_starts(unit).remove(0);
        // --root names a directory of the target machine, which --check-config opens.
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        let root = words.iter().position(|w| *w == "--root").expect("--root");
        let args: Vec<&str> = [&words[..root], &words[root + 2..]].concat();
        let (ok, out) = uring_tests::server::run_tool(
            Command::new(bin("uring-server"))
                .args(&args)
                .args(["--check-config"]),
            Duration::from_secs(20),
        );
        assert!(ok, "{line}: {out}");
    }

    // Without the reset line the drop-in is a second ExecStart=, which systemd refuses.
    let mut broken = shipped();
    let no_reset = drop_in.replacen("ExecStart=\n", "", 1);
    assert_ne!(&no_reset, drop_in);
    broken.push(("uring-server.service.d/proxy.conf", no_reset));
    let (ok, text) = verify(&broken);
    assert!(!ok && text.contains("more than one ExecStart"), "{text}");

    // Each drop-in keeps every flag the shipped command has (the access log, metrics).
    let base = exec_starts(&read("deploy/systemd/uring-server.service"));
    assert_eq!(base.len(), 1);
    let flags: Vec<&str> = base[0]
        .split_whitespace()
        .filter(|w| w.starts_with("--") && *w != "--root")
        .collect();
    assert!(flags.contains(&"--access-log") && flags.contains(&"--metrics"));
    for (name, unit) in [
        ("tls.conf", read(TLS_SERVICE)),
        ("proxy.conf", drop_in.clone()),
        ("uwsgi.conf", uwsgi_drop_in.clone()),
        ("php.conf", php_drop_in.clone()),
    ] {
        let lines = exec_starts(&unit);
        assert_eq!(lines.len(), 1, "{name}");
        for pair in base[0].split("--").skip(1) {
            let pair = pair.trim();
            if pair.starts_with("root ") {
                continue;
            }
            assert!(
                lines[0].contains(pair),
                "{name} drops --{pair}: {}",
                lines[0]
            );
        }
    }
}

fn get_plain(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_tls_units_command_line_serves_http_and_https_under_socket_activation() {
    let dir = TempDir::new("tls-unit");
    let d = dir.path();
    // The credentials directory systemd would make, with the names LoadCredential= gives.
    let creds = d.join("credentials");
    std::fs::create_dir(&creds).unwrap();
    uring_tests::self_signed_cert(&creds.join("tls-cert"), &creds.join("tls-key"));
    let unit = read(TLS_SERVICE);
    assert!(unit.contains("LoadCredential=tls-cert:") && unit.contains("LoadCredential=tls-key:"));
    let socket = read(TLS_SOCKET);
    assert!(socket.contains("ListenStream=0.0.0.0:443"), "{socket}");
    let line = exec_starts(&unit).remove(0);
    std::fs::create_dir(d.join("www")).unwrap();
    let plain: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let https: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = d.join("access.log");
    // What differs from the unit's line: paths under this test's directory and loopback
    // ports (the socket unit's 80 and 443 are the activator's two sockets here).
    let line = line
        .replace("${CREDENTIALS_DIRECTORY}", creds.to_str().unwrap())
        .replace("/srv/www", d.join("www").to_str().unwrap())
        .replace("/var/log/uring-server/access.log", log.to_str().unwrap())
        .replace("127.0.0.1:9464", &metrics.to_string())
        .replace("0.0.0.0:443", &https.to_string());
    let mut args = line.split_whitespace();
    assert_eq!(args.next(), Some("/usr/local/bin/uring-server"));
    let _srv = ChildGuard(
        Command::new("systemd-socket-activate")
            .args(["-l", &plain.to_string(), "-l", &https.to_string()])
            .arg("--fdname=http")
            .arg(bin("uring-server"))
            .args(args)
            .arg("--no-pin")
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr")).unwrap())
            .spawn()
            .expect("systemd-socket-activate (Debian's systemd)"),
    );
    // The activator starts the server on the first connection, over either socket.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(plain).is_err() {
        assert!(Instant::now() < deadline, "the activator never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let resp = get_plain(plain);
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.ends_with("Hello, World!"),
        "{resp}{}",
        std::fs::read_to_string(d.join("stderr")).unwrap_or_default()
    );
    let script = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname=sys.argv[1]) as s:
        s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        print(s.version(), data.split(b"\r\n")[0].decode(), data.endswith(b"Hello, World!"))
"#;
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args([
            "127.0.0.1",
            &https.port().to_string(),
            creds.join("tls-cert").to_str().unwrap(),
        ])
        .output()
        .expect("/usr/bin/python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim() == "TLSv1.3 HTTP/1.1 200 OK True",
        "{text}{}{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(d.join("stderr")).unwrap_or_default()
    );
    // The flags the unit kept work too: the access log and the metrics listener.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("GET /plaintext")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "no access log lines in {log:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut m = TcpStream::connect(metrics).unwrap();
    m.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    m.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut scraped = String::new();
    m.read_to_string(&mut scraped).unwrap();
    assert!(scraped.contains("uring_server_requests_total"), "{scraped}");
}
