//! uring-server's endpoints through real clients: curl and Python's http.client for
//! /plaintext, /json, 404, 405 and HEAD; static files (index.html, types, ETag and
//! Last-Modified with 304, ranges, large files, escapes from the root).

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use uring_tests::server::{
    exchange, read_responses, run_tool, run_tool_bytes, ServerProc, TempDir,
};

fn curl(args: &[&str]) -> String {
    let (ok, out) = run_tool(
        Command::new("curl")
            .args(["-sS", "-i", "--max-time", "10"])
            .args(args),
        Duration::from_secs(20),
    );
    assert!(ok, "curl {args:?} failed: {out}");
    out
}

fn status_line(out: &str) -> &str {
    out.lines().next().unwrap_or("").trim_end()
}

fn header<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.split("\r\n\r\n").next().unwrap().lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn body(out: &str) -> &str {
    out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("")
}

#[test]
fn plaintext_and_json_with_curl() {
    let srv = ServerProc::start(&[]);
    let out = curl(&[&srv.url("/plaintext")]);
    assert_eq!(status_line(&out), "HTTP/1.1 200 OK");
    assert_eq!(header(&out, "Content-Type"), Some("text/plain"));
    assert_eq!(header(&out, "Content-Length"), Some("13"));
    assert_eq!(header(&out, "Server"), Some("uring-server"));
    let date = header(&out, "Date").expect("Date header");
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
    assert_eq!(body(&out), "Hello, World!");

    let out = curl(&[&srv.url("/json")]);
    assert_eq!(status_line(&out), "HTTP/1.1 200 OK");
    assert_eq!(header(&out, "Content-Type"), Some("application/json"));
    assert_eq!(body(&out), "{\"message\":\"Hello, World!\"}");

    let out = curl(&["-I", &srv.url("/plaintext")]);
    assert_eq!(status_line(&out), "HTTP/1.1 200 OK");
    assert_eq!(header(&out, "Content-Length"), Some("13"));
    assert_eq!(body(&out), "");

    let out = curl(&[&srv.url("/nope")]);
    assert_eq!(status_line(&out), "HTTP/1.1 404 Not Found");

    let out = curl(&["-X", "POST", "-d", "x=1", &srv.url("/plaintext")]);
    assert_eq!(status_line(&out), "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(header(&out, "Allow"), Some("GET, HEAD, OPTIONS"));
    let out = curl(&["-X", "OPTIONS", &srv.url("/json")]);
    assert_eq!(status_line(&out), "HTTP/1.1 204 No Content");
    assert_eq!(header(&out, "Allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(body(&out), "");

    // Several requests on one keep-alive connection.
    let out = curl(&[
        &srv.url("/plaintext"),
        &srv.url("/json"),
        &srv.url("/plaintext"),
    ]);
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
}

#[test]
fn endpoints_with_python_http_client() {
    let srv = ServerProc::start(&[]);
    let script = r#"
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for i in range(3):
    c.request("GET", "/plaintext")
    r = c.getresponse(); b = r.read()
    assert r.status == 200 and b == b"Hello, World!", (r.status, b)
    assert r.getheader("Content-Type") == "text/plain"
    assert r.getheader("Server") and r.getheader("Date")
c.request("GET", "/json")
r = c.getresponse(); b = r.read()
assert r.status == 200 and json.loads(b) == {"message": "Hello, World!"}, b
assert r.getheader("Content-Type") == "application/json"
c.request("HEAD", "/json")
r = c.getresponse(); b = r.read()
assert r.status == 200 and b == b"" and r.getheader("Content-Length") == "27"
c.request("GET", "/missing")
r = c.getresponse(); r.read()
assert r.status == 404
c.request("DELETE", "/json")
r = c.getresponse(); r.read()
assert r.status == 405 and r.getheader("Allow") == "GET, HEAD, OPTIONS"
c.request("POST", "/plaintext", body=b"x" * 5000, headers={"Content-Type": "text/plain"})
r = c.getresponse(); r.read()
assert r.status == 405
c.request("GET", "/plaintext")
r = c.getresponse()
assert r.read() == b"Hello, World!"
print("ok")
"#;
    let port = srv.addr.port().to_string();
    let (ok, out) = run_tool(
        Command::new("python3").args(["-c", script, &port]),
        Duration::from_secs(30),
    );
    assert!(ok && out.trim() == "ok", "{out}");
}

fn make_root() -> (TempDir, TempDir) {
    let root = TempDir::new("root");
    let outside = TempDir::new("outside");
    let p = root.path();
    std::fs::write(p.join("index.html"), "<h1>home</h1>\n").unwrap();
    std::fs::create_dir(p.join("sub")).unwrap();
    std::fs::write(p.join("sub/index.html"), "<p>sub</p>\n").unwrap();
    std::fs::write(p.join("style.css"), "body{}\n").unwrap();
    std::fs::write(p.join("data.json"), "{}\n").unwrap();
    std::fs::write(p.join("digits.txt"), "0123456789").unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), p.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), p.join("escapedir")).unwrap();
    std::os::unix::fs::symlink("digits.txt", p.join("inside-link.txt")).unwrap();
    // 3 MiB with a pattern, so a wrong offset shows.
    let mut big = std::fs::File::create(p.join("big.bin")).unwrap();
    let chunk: Vec<u8> = (0..=255u8).collect();
    for _ in 0..(3 * 1024 * 1024 / 256) {
        big.write_all(&chunk).unwrap();
    }
    (root, outside)
}

#[test]
fn static_files_with_curl() {
    let (root, _outside) = make_root();
    let srv = ServerProc::start(&["--root", root.path().to_str().unwrap()]);

    let out = curl(&[&srv.url("/")]);
    assert_eq!(status_line(&out), "HTTP/1.1 200 OK");
    assert_eq!(body(&out), "<h1>home</h1>\n");
    assert_eq!(
        header(&out, "Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let out = curl(&[&srv.url("/sub/")]);
    assert_eq!(body(&out), "<p>sub</p>\n");
    let out = curl(&[&srv.url("/sub?x=1")]);
    assert_eq!(status_line(&out), "HTTP/1.1 301 Moved Permanently");
    assert_eq!(header(&out, "Location"), Some("/sub/?x=1"));
    let out = curl(&["-L", &srv.url("/sub")]);
    assert!(out.ends_with("<p>sub</p>\n"), "{out}");
    let out = curl(&[&srv.url("/style.css")]);
    assert_eq!(
        header(&out, "Content-Type"),
        Some("text/css; charset=utf-8")
    );
    let out = curl(&[&srv.url("/data.json")]);
    assert_eq!(header(&out, "Content-Type"), Some("application/json"));
    let out = curl(&[&srv.url("/inside-link.txt")]);
    assert_eq!(body(&out), "0123456789");

    // Conditional requests.
    let out = curl(&[&srv.url("/digits.txt")]);
    let etag = header(&out, "ETag").expect("ETag").to_string();
    let lm = header(&out, "Last-Modified")
        .expect("Last-Modified")
        .to_string();
    assert_eq!(header(&out, "Accept-Ranges"), Some("bytes"));
    let out = curl(&[
        "-H",
        &format!("If-None-Match: {etag}"),
        &srv.url("/digits.txt"),
    ]);
    assert_eq!(status_line(&out), "HTTP/1.1 304 Not Modified");
    assert_eq!(body(&out), "");
    let out = curl(&["-H", "If-None-Match: \"other\"", &srv.url("/digits.txt")]);
    assert_eq!(status_line(&out), "HTTP/1.1 200 OK");
    let out = curl(&[
        "-H",
        &format!("If-Modified-Since: {lm}"),
        &srv.url("/digits.txt"),
    ]);
    assert_eq!(status_line(&out), "HTTP/1.1 304 Not Modified");
    let out = curl(&[
        "-H",
        "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT",
        &srv.url("/digits.txt"),
    ]);
    assert_eq!(status_line(&out), "HTTP/1.1 200 OK");

    // Ranges.
    let out = curl(&["-H", "Range: bytes=2-4", &srv.url("/digits.txt")]);
    assert_eq!(status_line(&out), "HTTP/1.1 206 Partial Content");
    assert_eq!(header(&out, "Content-Range"), Some("bytes 2-4/10"));
    assert_eq!(body(&out), "234");
    let out = curl(&["-H", "Range: bytes=-3", &srv.url("/digits.txt")]);
    assert_eq!(body(&out), "789");
    let out = curl(&["-H", "Range: bytes=20-", &srv.url("/digits.txt")]);
    assert_eq!(status_line(&out), "HTTP/1.1 416 Range Not Satisfiable");
    assert_eq!(header(&out, "Content-Range"), Some("bytes */10"));

    // Method and missing files.
    let out = curl(&["-X", "PUT", &srv.url("/digits.txt")]);
    assert_eq!(status_line(&out), "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(header(&out, "Allow"), Some("GET, HEAD, OPTIONS"));
    let out = curl(&["-X", "OPTIONS", &srv.url("/digits.txt")]);
    assert_eq!(status_line(&out), "HTTP/1.1 204 No Content");
    assert_eq!(header(&out, "Allow"), Some("GET, HEAD, OPTIONS"));
    let out = curl(&[&srv.url("/nothing.txt")]);
    assert_eq!(status_line(&out), "HTTP/1.1 404 Not Found");
    let out = curl(&["-I", &srv.url("/big.bin")]);
    assert_eq!(header(&out, "Content-Length"), Some("3145728"));
    assert_eq!(body(&out), "");
}

#[test]
fn large_file_streams_intact_and_ranges_inside_it() {
    let (root, _outside) = make_root();
    let srv = ServerProc::start(&["--root", root.path().to_str().unwrap()]);
    let dl = root.path().join("../dl.bin");
    let (ok, out) = run_tool(
        Command::new("curl").args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            dl.to_str().unwrap(),
            &srv.url("/big.bin"),
        ]),
        Duration::from_secs(30),
    );
    assert!(ok, "{out}");
    let got = std::fs::read(&dl).unwrap();
    let _ = std::fs::remove_file(&dl);
    assert_eq!(got, std::fs::read(root.path().join("big.bin")).unwrap());

    // A range deep inside, crossing the 64 KiB chunk boundary.
    let start = 65536 * 5 - 7;
    let end = start + 200_000;
    let (ok, out, _) = run_tool_bytes(
        Command::new("curl").args([
            "-sS",
            "--max-time",
            "20",
            "-H",
            &format!("Range: bytes={start}-{end}"),
            &srv.url("/big.bin"),
        ]),
        Duration::from_secs(30),
    );
    assert!(ok);
    let want: Vec<u8> = (start..=end).map(|i| (i % 256) as u8).collect();
    assert!(out == want, "range body differs ({} bytes)", out.len());

    // Many connections downloading at once, with a small file pipelined behind.
    let mut joins = Vec::new();
    for _ in 0..8 {
        let url = srv.url("/big.bin");
        joins.push(std::thread::spawn(move || {
            let out = Command::new("curl")
                .args(["-sS", "--max-time", "20", &url])
                .output()
                .unwrap();
            assert!(out.status.success());
            assert_eq!(out.stdout.len(), 3 * 1024 * 1024);
        }));
    }
    for j in joins {
        j.join().unwrap();
    }
    let mut s = srv.connect();
    s.write_all(
        b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /digits.txt HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let rs = read_responses(&mut s, 2, &[]);
    assert_eq!(rs[0].body.len(), 3 * 1024 * 1024);
    assert_eq!(rs[1].body, b"0123456789");
}

#[test]
fn no_way_out_of_the_root() {
    let (root, _outside) = make_root();
    let srv = ServerProc::start(&["--root", root.path().to_str().unwrap()]);
    for (target, want) in [
        ("/../outside/secret.txt", 404),
        ("/sub/../../secret.txt", 404),
        ("/%2e%2e/secret.txt", 404),
        ("/%2E%2E/%2e%2e/etc/passwd", 404),
        ("/sub/%2e%2e%2f%2e%2e%2fetc/passwd", 404),
        ("/escape.txt", 404),
        ("/escapedir/secret.txt", 404),
        ("/digits.txt%00.html", 400),
        ("/..%2f..%2fetc%2fpasswd", 404),
    ] {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = exchange(srv.addr, raw.as_bytes());
        assert_eq!(r.status, want, "{target}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("secret"),
            "{target}"
        );
    }
}

#[test]
fn ipv6_and_several_workers_share_a_port() {
    let port = uring_tests::free_port();
    let v6 = format!("[::1]:{port}");
    let srv = ServerProc::start(&["-w", "2", "--listen", &v6]);
    // Both listeners answer; with two workers each SO_REUSEPORT group has two sockets.
    for _ in 0..20 {
        let out = curl(&["-g", &format!("http://{v6}/plaintext")]);
        assert_eq!(body(&out), "Hello, World!");
        let out = curl(&[&srv.url("/json")]);
        assert_eq!(status_line(&out), "HTTP/1.1 200 OK");
    }
}

#[test]
fn access_log_has_one_line_per_request() {
    let dir = TempDir::new("log");
    let log = dir.path().join("access.log");
    let mut srv = ServerProc::start(&["--access-log", log.to_str().unwrap()]);
    curl(&[&srv.url("/plaintext"), &srv.url("/nope?q=1")]);
    srv.signal(libc::SIGTERM);
    assert_eq!(
        srv.wait_exit(Duration::from_secs(10)).unwrap().code(),
        Some(0)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].ends_with("\"GET /plaintext HTTP/1.1\" 200 13")
            || lines[0].contains("\"GET /plaintext HTTP/1.1\" 200 "),
        "{text}"
    );
    assert!(
        lines[1].contains("\"GET /nope?q=1 HTTP/1.1\" 404 "),
        "{text}"
    );
}

/// Issue 9 (4h): the worker keeps hot files open. Within the validity interval (1 s) a
/// hit opens nothing, so a file unlinked after its first request is still served from
/// the cached descriptor; after the interval the server notices and answers 404. A file
/// renamed over is served new after the interval.
#[test]
fn open_file_cache_serves_hits_and_notices_changes() {
    let root = TempDir::new("ofc");
    std::fs::write(root.path().join("gone.txt"), b"still here").unwrap();
    std::fs::write(root.path().join("swap.txt"), b"old").unwrap();
    let srv = ServerProc::start(&["--root", root.path().to_str().unwrap()]);
    let get = |path: &str| {
        exchange(
            srv.addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
    };
    assert_eq!(get("/gone.txt").body, b"still here");
    assert_eq!(get("/swap.txt").body, b"old");
    std::fs::remove_file(root.path().join("gone.txt")).unwrap();
    let tmp = root.path().join("swap.tmp");
    std::fs::write(&tmp, b"new and longer").unwrap();
    std::fs::rename(&tmp, root.path().join("swap.txt")).unwrap();
    // Milliseconds later, well inside the interval: the cached fd answers.
    let r = get("/gone.txt");
    assert_eq!((r.status, &r.body[..]), (200, &b"still here"[..]));
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(get("/gone.txt").status, 404);
    let r = get("/swap.txt");
    assert_eq!((r.status, &r.body[..]), (200, &b"new and longer"[..]));
}
