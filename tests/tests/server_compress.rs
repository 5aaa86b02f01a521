//! Issue 23, compression: `--compress gzip,zstd` compresses compressible answers (static
//! files once per version, built-in ones per response) and `--precompressed` serves
//! `a.js.br`/`.zst`/`.gz` siblings, chosen by `Accept-Encoding`; checked with curl (which
//! decodes the bodies) over HTTP/1.1 and HTTP/2, and with raw requests for the fields:
//! `Vary`, weak or the sibling's own `ETag`, `Content-Length` of what is sent, ranges of
//! the file's own bytes, HEAD, 304.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use uring_tests::server::{exchange, read_responses, run_tool_bytes, Resp, ServerProc, TempDir};

/// A text file that compresses well but not trivially.
fn script(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!("function f{i}(x) {{ return x * {} + 1; }}\n", i % 97).as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

/// The coding sent and the bytes of the body.
type Sent<'a> = (&'a str, &'a [u8]);

fn get(srv: &ServerProc, method: &str, path: &str, extra: &str) -> Resp {
    let raw = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    if method != "HEAD" {
        return exchange(srv.addr, raw.as_bytes());
    }
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    read_responses(&mut s, 1, &[0]).remove(0)
}

/// A temporary directory of its own: `TempDir`'s name is the tag and the process id, and
/// these tests run in parallel threads of one process.
fn unique_dir(tag: &str) -> TempDir {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    TempDir::new(&format!("{tag}-{n}"))
}

/// curl with `args`; the decoded body and the response's header lines (lower-cased).
fn curl(args: &[&str]) -> (Vec<u8>, String) {
    let dir = unique_dir("curl-headers");
    let headers = dir.path().join("h");
    let (ok, body, err) = run_tool_bytes(
        Command::new("curl")
            .args(["-sS", "-m", "20", "-D"])
            .arg(&headers)
            .args(args),
        Duration::from_secs(30),
    );
    assert!(ok, "curl {args:?}: {}", String::from_utf8_lossy(&err));
    let head = std::fs::read_to_string(&headers)
        .unwrap()
        .to_ascii_lowercase();
    (body, head)
}

fn field<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

fn root_with(files: &[(&str, &[u8])]) -> TempDir {
    let dir = unique_dir("compress");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn on_the_fly_gzip_and_zstd_over_http1_and_http2() {
    let js = script(40_000);
    let big = script(2 << 20);
    let png: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let dir = root_with(&[
        ("app.js", &js),
        ("big.js", &big),
        ("img.png", &png),
        ("small.txt", b"short text\n"),
    ]);
    let srv = ServerProc::start(&[
        "--root",
        path_str(dir.path()),
        "--compress",
        "gzip,zstd",
        "--compress-min-length",
        "10",
    ]);
    let url = |p: &str| format!("http://{}{p}", srv.addr);
    let plain = get(&srv, "GET", "/app.js", "");
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body, js);
    assert_eq!(plain.header("Content-Encoding"), None);
    assert_eq!(plain.header("Vary").as_deref(), Some("Accept-Encoding"));
    let strong = plain.header("ETag").unwrap();
    assert!(strong.starts_with('"'), "{strong}");

    for coding in ["gzip", "zstd"] {
        let ae = format!("Accept-Encoding: {coding}\r\n");
        let raw = get(&srv, "GET", "/app.js", &ae);
        assert_eq!(raw.status, 200);
        assert_eq!(raw.header("Content-Encoding").as_deref(), Some(coding));
        assert_eq!(raw.header("Vary").as_deref(), Some("Accept-Encoding"));
        assert_eq!(raw.header("ETag"), Some(format!("W/{strong}")), "weakened");
        let len: usize = raw.header("Content-Length").unwrap().parse().unwrap();
        assert_eq!(len, raw.body.len());
        assert!(len < js.len() / 3, "{coding}: {len} bytes of {}", js.len());
        // HEAD: the same fields, no body.
        let head = get(&srv, "HEAD", "/app.js", &ae);
        assert_eq!(head.header("Content-Encoding").as_deref(), Some(coding));
        assert_eq!(head.header("Content-Length"), Some(len.to_string()));
        // A range is of the file's own bytes, never compressed.
        let range = get(
            &srv,
            "GET",
            "/app.js",
            &format!("{ae}Range: bytes=100-199\r\n"),
        );
        assert_eq!(range.status, 206);
        assert_eq!(range.header("Content-Encoding"), None);
        assert_eq!(range.body, &js[100..200]);
        // The weak tag revalidates.
        let inm = format!("{ae}If-None-Match: W/{strong}\r\n");
        assert_eq!(get(&srv, "GET", "/app.js", &inm).status, 304);

        // curl decodes what it gets: the file's bytes, over HTTP/1.1 and HTTP/2.
        for h2 in [false, true] {
            let mut args = vec!["--compressed", "-H"];
            let header = format!("Accept-Encoding: {coding}");
            args.push(&header);
            if h2 {
                args.push("--http2-prior-knowledge");
            }
            let u = url("/app.js");
            args.push(&u);
            let (body, head) = curl(&args);
            assert!(head.starts_with(if h2 { "http/2 200" } else { "http/1.1 200" }));
            assert_eq!(field(&head, "content-encoding"), Some(coding), "h2 {h2}");
            assert_eq!(field(&head, "vary"), Some("accept-encoding"));
            assert_eq!(field(&head, "content-length"), Some(&*len.to_string()));
            assert!(body == js, "{coding} h2 {h2}: decoded bytes differ");
            // A built-in answer, compressed per response.
            let u = url("/plaintext");
            let args: Vec<&str> = args[..args.len() - 1]
                .iter()
                .copied()
                .chain([&*u])
                .collect();
            let (body, head) = curl(&args);
            assert_eq!(field(&head, "content-encoding"), Some(coding), "h2 {h2}");
            assert_eq!(body, b"Hello, World!");
        }
    }
    // Not compressed: an image, a file under the size floor, one over the bound, and a
    // client that accepts no coding we have.
    for (path, ae) in [
        ("/img.png", "gzip"),
        ("/small.txt", "gzip"),
        ("/big.js", "gzip"),
        ("/app.js", "br, deflate"),
        ("/app.js", "gzip;q=0, zstd;q=0"),
    ] {
        let r = get(&srv, "GET", path, &format!("Accept-Encoding: {ae}\r\n"));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("Content-Encoding"), None, "{path} {ae}");
    }
    assert_eq!(
        get(&srv, "GET", "/big.js", "Accept-Encoding: gzip\r\n").body,
        big
    );
    // curl's own list (deflate, gzip, br, zstd): zstd is the best we have.
    let (body, head) = curl(&["--compressed", &url("/app.js")]);
    assert_eq!(field(&head, "content-encoding"), Some("zstd"));
    assert!(body == js);
}

#[test]
fn off_by_default() {
    let js = script(40_000);
    let dir = root_with(&[("app.js", &js)]);
    std::fs::write(dir.path().join("app.js.gz"), b"not used").unwrap();
    let srv = ServerProc::start(&["--root", path_str(dir.path())]);
    let r = get(
        &srv,
        "GET",
        "/app.js",
        "Accept-Encoding: gzip, br, zstd\r\n",
    );
    assert_eq!(r.header("Content-Encoding"), None);
    assert_eq!(r.header("Vary"), None);
    assert_eq!(r.body, js);
}

#[test]
fn precompressed_siblings_chosen_by_accept_encoding() {
    let css = script(30_000);
    // The siblings' bytes are served as they are: their content is the server's no
    // business, so each is recognisable rather than a real encoding (but for gzip,
    // which curl decodes below).
    let gz = {
        let dir = unique_dir("gz");
        let p = dir.path().join("a.css");
        std::fs::write(&p, &css).unwrap();
        let (ok, out) = uring_tests::server::run_tool(
            Command::new("gzip").args(["-k", "-9"]).arg(&p),
            Duration::from_secs(30),
        );
        assert!(ok, "{out}");
        std::fs::read(dir.path().join("a.css.gz")).unwrap()
    };
    let dir = root_with(&[
        ("a.css", &css),
        ("a.css.gz", &gz),
        ("a.css.br", b"BROTLI-BYTES"),
        ("a.css.zst", b"ZSTD-BYTES!"),
        ("only.txt", b"no siblings here"),
    ]);
    let srv = ServerProc::start(&["--root", path_str(dir.path()), "--precompressed"]);
    let identity = get(&srv, "GET", "/a.css", "");
    let own_tag = identity.header("ETag").unwrap();
    assert_eq!(identity.body, css);
    assert_eq!(identity.header("Vary").as_deref(), Some("Accept-Encoding"));
    let cases: [(&str, Option<Sent>); 9] = [
        ("gzip, deflate, br, zstd", Some(("br", b"BROTLI-BYTES"))),
        ("gzip, zstd", Some(("zstd", b"ZSTD-BYTES!"))),
        ("gzip", Some(("gzip", &gz))),
        ("br;q=0.5, gzip", Some(("gzip", &gz))),
        (
            "br;q=0.5, gzip;q=0.4, zstd;q=0.45",
            Some(("br", b"BROTLI-BYTES")),
        ),
        ("*;q=0.1, br;q=0", Some(("zstd", b"ZSTD-BYTES!"))),
        ("gzip;q=0.5, identity", None),
        ("identity", None),
        ("br;q=0, gzip;q=0, zstd;q=0", None),
    ];
    for (ae, want) in cases {
        let r = get(&srv, "GET", "/a.css", &format!("Accept-Encoding: {ae}\r\n"));
        assert_eq!(r.status, 200, "{ae}");
        assert_eq!(r.header("Vary").as_deref(), Some("Accept-Encoding"), "{ae}");
        assert_eq!(
            r.header("Content-Type").as_deref(),
            Some("text/css; charset=utf-8"),
            "the file's type, not the sibling's"
        );
        match want {
            Some((coding, bytes)) => {
                assert_eq!(
                    r.header("Content-Encoding").as_deref(),
                    Some(coding),
                    "{ae}"
                );
                assert_eq!(r.body, bytes, "{ae}");
                let tag = r.header("ETag").unwrap();
                assert!(
                    tag != own_tag && !tag.starts_with("W/"),
                    "its own tag: {tag}"
                );
            }
            None => {
                assert_eq!(r.header("Content-Encoding"), None, "{ae}");
                assert_eq!(r.body, css, "{ae}");
            }
        }
    }
    // The gzip sibling's own validators, range and HEAD, as nginx's gzip_static.
    let ae = "Accept-Encoding: gzip\r\n";
    let r = get(&srv, "GET", "/a.css", ae);
    let tag = r.header("ETag").unwrap();
    let inm = format!("{ae}If-None-Match: {tag}\r\n");
    let not_modified = get(&srv, "GET", "/a.css", &inm);
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("ETag"), Some(tag.clone()));
    let other = format!("{ae}If-None-Match: {own_tag}\r\n");
    assert_eq!(
        get(&srv, "GET", "/a.css", &other).status,
        200,
        "not the file's tag"
    );
    let range = get(&srv, "GET", "/a.css", &format!("{ae}Range: bytes=3-9\r\n"));
    assert_eq!(range.status, 206);
    assert_eq!(range.header("Content-Encoding").as_deref(), Some("gzip"));
    assert_eq!(
        range.header("Content-Range"),
        Some(format!("bytes 3-9/{}", gz.len()))
    );
    assert_eq!(range.body, &gz[3..10]);
    let head = get(&srv, "HEAD", "/a.css", ae);
    assert_eq!(head.header("Content-Length"), Some(gz.len().to_string()));
    assert_eq!(head.header("Content-Encoding").as_deref(), Some("gzip"));
    assert!(head.body.is_empty());
    // A file without siblings: no Vary.
    let r = get(&srv, "GET", "/only.txt", "Accept-Encoding: gzip, br\r\n");
    assert_eq!(
        (r.header("Vary"), r.header("Content-Encoding")),
        (None, None)
    );
    // curl decodes the gzip sibling into the file, over HTTP/1.1 and HTTP/2.
    let url = format!("http://{}/a.css", srv.addr);
    for extra in [&[][..], &["--http2-prior-knowledge"]] {
        let mut args = vec!["--compressed", "-H", "Accept-Encoding: gzip"];
        args.extend_from_slice(extra);
        args.push(&url);
        let (body, head) = curl(&args);
        assert_eq!(field(&head, "content-encoding"), Some("gzip"), "{extra:?}");
        assert!(body == css, "{extra:?}: decoded bytes differ");
    }
}
