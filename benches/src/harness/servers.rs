//! The servers under test: how to start each one pinned to its CPUs on a loopback port,
//! serving `/plaintext` (the 13-byte hello) and, where it serves files,
//! `/static/64k.bin`.

pub use super::proc::{is_executable, on_path};
use super::proc::{pin_and_isolate, wait_listening, ServerProcess};
use super::tools::{Workload, STATIC_FILES};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Server {
    UringServer,
    /// uring-server with every file body read and copied (no memory class, no splice).
    UringServerRead,
    /// uring-server with every file body spliced (no memory class): cached pages with
    /// sendfile on the worker thread, others through the ring.
    UringServerSplice,
    /// The same, always through the ring's SPLICE (io-wq), as before the inline path.
    UringServerSpliceRing,
    /// uring-server with every file up to 1 MiB served from memory.
    UringServerMemory,
    Nginx,
    HyperServer,
    TokioUringServer,
    Floor,
    /// uring-server with an access log (combined, to a file) and `--metrics` on.
    UringServerObs,
    /// uring-server on the epoll backend (`--tier epoll`).
    UringServerEpoll,
    /// uring-server on `--tls-listen` (ECDSA P-256, AES-128-GCM).
    UringServerTls,
    /// nginx with `listen ... ssl`, the same certificate and cipher suite.
    NginxTls,
    /// uring-server `--proxy /plaintext=` in front of a uring-server upstream.
    UringProxy,
    /// nginx `proxy_pass` (upstream `keepalive 32`) in front of the same upstream.
    NginxProxy,
    /// uring-server `--proxy` to two uring-server upstreams, `--balance least-conn`.
    UringGateway,
    /// nginx `proxy_pass` to the same two, `least_conn` (upstream `keepalive 32`).
    NginxGateway,
    /// uring-server `--proxy /plaintext=uwsgi://` in front of one uWSGI process serving
    /// the seed's hello-world app.
    UringUwsgi,
    /// nginx `uwsgi_pass` in front of the same uWSGI.
    NginxUwsgi,
}

impl Server {
    pub const ALL: [Server; 5] = [
        Server::UringServer,
        Server::Nginx,
        Server::HyperServer,
        Server::TokioUringServer,
        Server::Floor,
    ];

    /// Whether this server speaks HTTPS (the tools get an `https://` URL).
    pub fn tls(self) -> bool {
        matches!(self, Server::UringServerTls | Server::NginxTls)
    }

    /// The uring-server variants that isolate one file body path (named, never run by
    /// default): how the per-size choice was measured.
    /// The deployment variants (issue 11): access log + metrics on, and TLS beside nginx's.
    /// The proxies (issue 10): `scripts/bench-proxy.sh`.
    /// The epoll backend (issue 14).
    /// The gateways (issue 23): `scripts/bench-gateway.sh`.
    /// The fronts of one uWSGI worker (issue 25): `scripts/bench-uwsgi-front.sh`.
    pub const VARIANTS: [Server; 14] = [
        Server::UringServerEpoll,
        Server::UringServerRead,
        Server::UringServerSplice,
        Server::UringServerSpliceRing,
        Server::UringServerMemory,
        Server::UringServerObs,
        Server::UringServerTls,
        Server::NginxTls,
        Server::UringProxy,
        Server::NginxProxy,
        Server::UringGateway,
        Server::NginxGateway,
        Server::UringUwsgi,
        Server::NginxUwsgi,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Server::UringServer => "uring-server",
            Server::UringServerRead => "uring-server-read",
            Server::UringServerSplice => "uring-server-splice",
            Server::UringServerSpliceRing => "uring-server-splice-ring",
            Server::UringServerMemory => "uring-server-memory",
            Server::Nginx => "nginx",
            Server::HyperServer => "hyper-server",
            Server::TokioUringServer => "tokio-uring-server",
            Server::Floor => "floor",
            Server::UringServerObs => "uring-server-obs",
            Server::UringServerEpoll => "uring-server-epoll",
            Server::UringServerTls => "uring-server-tls",
            Server::NginxTls => "nginx-tls",
            Server::UringProxy => "uring-proxy",
            Server::NginxProxy => "nginx-proxy",
            Server::UringGateway => "uring-gateway",
            Server::NginxGateway => "nginx-gateway",
            Server::UringUwsgi => "uring-uwsgi",
            Server::NginxUwsgi => "nginx-uwsgi",
        }
    }

    pub fn parse_name(s: &str) -> Option<Server> {
        Server::ALL
            .into_iter()
            .chain(Server::VARIANTS)
            .find(|x| x.name() == s)
    }

    /// Why this server cannot take part in a workload, if it cannot.
    pub fn not_applicable(self, w: Workload, tool: super::tools::Tool) -> Option<String> {
        use super::tools::Tool;
        let proxies = [
            Server::UringProxy,
            Server::NginxProxy,
            Server::UringGateway,
            Server::NginxGateway,
            Server::UringUwsgi,
            Server::NginxUwsgi,
        ];
        if proxies.contains(&self) && w != Workload::Ka64 {
            return Some(format!("{} is measured on ka64 only", self.name()));
        }
        if self.tls() && !matches!(tool, Tool::UringLoad | Tool::UringLoadEpoll) {
            return Some(format!("{} is measured with uring-load only", self.name()));
        }
        let serves_files = !matches!(
            self,
            Server::HyperServer | Server::TokioUringServer | Server::Floor
        );
        if w.file().is_some() && !serves_files {
            return Some(format!("{} does not serve files", self.name()));
        }
        let parses = !matches!(self, Server::Floor | Server::TokioUringServer);
        // Without parsing, the server cannot see `Connection: close` or HTTP/1.0, so only
        // a client that closes by itself gets a connection per request.
        if w == Workload::Close && !parses && tool != Tool::UringLoad {
            return Some(format!(
                "{} does not parse requests, so it never closes; only uring-load closes by itself",
                self.name()
            ));
        }
        None
    }
}

/// Where the servers' binaries and scratch files are.
pub struct ServerEnv {
    /// Directory holding uring-server, floor, hyper-server, tokio-uring-server.
    pub bin_dir: PathBuf,
    /// A private directory for configs, logs and the document root.
    pub scratch: PathBuf,
}

impl ServerEnv {
    /// The document root holding the static file; created once.
    pub fn doc_root(&self) -> std::io::Result<PathBuf> {
        let root = self.scratch.join("www");
        for (path, size) in STATIC_FILES {
            self.static_file(&root.join(path.trim_start_matches('/')), size)?;
        }
        Ok(root)
    }

    fn static_file(&self, file: &Path, size: usize) -> std::io::Result<()> {
        if !file.exists() {
            std::fs::create_dir_all(file.parent().expect("has a parent"))?;
            // Bytes that do not compress to nothing, in case anything on the path tries.
            let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            std::fs::write(file, data)?;
            // nginx's workers drop root for an unprivileged user: whatever the umask,
            // they must be able to reach and read the file.
            use std::os::unix::fs::PermissionsExt;
            let mut dir = file.parent();
            while let Some(d) = dir {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
                if d == self.scratch {
                    break;
                }
                dir = d.parent();
            }
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644))?;
        }
        Ok(())
    }
}

/// Start `server` on `addr` with `workers` workers, pinned to `cpus` (none: unpinned),
/// and wait until it listens.
pub fn start(
    server: Server,
    addr: SocketAddr,
    cpus: &[usize],
    workers: usize,
    env: &ServerEnv,
) -> Result<ServerProcess, String> {
    start_with_upstream(server, addr, cpus, workers, env, None)
}

/// An app server a proxy forwards `/plaintext` to, and the protocol it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppUpstream {
    Http(SocketAddr),
    /// uWSGI's binary protocol (nginx's `uwsgi_pass`).
    Uwsgi(SocketAddr),
    /// Two HTTP upstreams balanced by least-conn (the gateway rows).
    LeastConn(SocketAddr, SocketAddr),
}

/// As [`start`]; a proxy (`uring-proxy`, `nginx-proxy`) forwards `/plaintext` to
/// `upstream` when given (the seed table's gunicorn or uWSGI), else to a uring-server it
/// starts.
pub fn start_with_upstream(
    server: Server,
    addr: SocketAddr,
    cpus: &[usize],
    workers: usize,
    env: &ServerEnv,
    given_upstream: Option<AppUpstream>,
) -> Result<ServerProcess, String> {
    let upstream_of = || -> Result<(AppUpstream, Option<ServerProcess>), String> {
        match given_upstream {
            Some(a) => Ok((a, None)),
            None if matches!(server, Server::UringUwsgi | Server::NginxUwsgi) => {
                start_uwsgi_upstream(cpus, env).map(|(a, p)| (AppUpstream::Uwsgi(a), Some(p)))
            }
            None => start_upstream(cpus, env).map(|(a, p)| (AppUpstream::Http(a), Some(p))),
        }
    };
    // The gateways' two upstreams: the second rides as the first's companion.
    let pair_of = || -> Result<(AppUpstream, Option<ServerProcess>), String> {
        let (a, mut pa) = start_upstream(cpus, env)?;
        let (b, pb) = start_upstream(cpus, env)?;
        pa.companion = Some(Box::new(pb));
        Ok((AppUpstream::LeastConn(a, b), Some(pa)))
    };
    let mut upstream: Option<(AppUpstream, Option<ServerProcess>)> = None;
    let nworkers = workers.max(1);
    let workers = nworkers.to_string();
    let listen = addr.to_string();
    let log = env.scratch.join(format!("{}.log", server.name()));
    let mut cmd = match server {
        Server::UringServer
        | Server::UringServerRead
        | Server::UringServerSplice
        | Server::UringServerSpliceRing
        | Server::UringServerMemory
        | Server::UringServerObs
        | Server::UringServerEpoll
        | Server::UringServerTls => {
            let root = env.doc_root().map_err(|e| format!("document root: {e}"))?;
            let mut c = Command::new(env.bin_dir.join("uring-server"));
            c.args(["-w", &workers, "--root"]).arg(root);
            if server == Server::UringServerTls {
                let (cert, key) = tls_files(env)?;
                c.args(["--tls-listen", &listen, "--tls-cert"])
                    .arg(cert)
                    .arg("--tls-key")
                    .arg(key);
            } else {
                c.args(["--listen", &listen]);
            }
            if server == Server::UringServerObs {
                c.arg("--access-log")
                    .arg(env.scratch.join("uring-access.log"))
                    .args(["--metrics", "127.0.0.1:0"]);
            }
            c.args(match server {
                Server::UringServerRead => &["--file-body", "read", "--file-memory-max", "0"][..],
                Server::UringServerSplice => &["--file-memory-max", "0"],
                Server::UringServerSpliceRing => {
                    &["--file-body", "splice-ring", "--file-memory-max", "0"]
                }
                Server::UringServerMemory => &["--file-memory-max", "1048576"],
                Server::UringServerEpoll => &["--tier", "epoll"],
                _ => &[],
            });
            // It pins worker i to CPU i; where that is not within our CPUs, the affinity
            // mask we give it does the pinning instead.
            let own: Vec<usize> = (0..nworkers).collect();
            if !cpus.is_empty() && cpus != own.as_slice() {
                c.arg("--no-pin");
            }
            c
        }
        Server::Nginx | Server::NginxTls => {
            let tls = match server == Server::NginxTls {
                true => Some(tls_files(env)?),
                false => None,
            };
            let conf = write_nginx_conf(addr, nworkers, env, tls, None)?;
            let mut c = Command::new("nginx");
            c.arg("-p").arg(&env.scratch).arg("-c").arg(conf);
            c.arg("-e").arg(env.scratch.join("nginx-error.log"));
            c
        }
        Server::UringProxy | Server::UringGateway | Server::UringUwsgi => {
            let up = match server {
                Server::UringGateway => pair_of()?,
                _ => upstream_of()?,
            };
            let url = match up.0 {
                AppUpstream::Http(a) => format!("http://{a}"),
                AppUpstream::Uwsgi(a) => format!("uwsgi://{a}"),
                AppUpstream::LeastConn(a, b) => format!("http://{a},http://{b}"),
            };
            let mut c = Command::new(env.bin_dir.join("uring-server"));
            c.args(["-w", &workers, "--listen", &listen, "--proxy"])
                .arg(format!("/plaintext={url}"));
            if server == Server::UringGateway {
                c.args(["--balance", "least-conn"]);
            }
            let own: Vec<usize> = (0..nworkers).collect();
            if !cpus.is_empty() && cpus != own.as_slice() {
                c.arg("--no-pin");
            }
            upstream = Some(up);
            c
        }
        Server::NginxProxy | Server::NginxGateway | Server::NginxUwsgi => {
            let up = match server {
                Server::NginxGateway => pair_of()?,
                _ => upstream_of()?,
            };
            let conf = write_nginx_conf(addr, nworkers, env, None, Some(up.0))?;
            let mut c = Command::new("nginx");
            c.arg("-p").arg(&env.scratch).arg("-c").arg(conf);
            c.arg("-e").arg(env.scratch.join("nginx-error.log"));
            upstream = Some(up);
            c
        }
        Server::HyperServer | Server::TokioUringServer | Server::Floor => {
            let mut c = Command::new(env.bin_dir.join(server.name()));
            c.args(["-w", &workers, "--listen", &listen]);
            c
        }
    };
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_err));
    pin_and_isolate(&mut cmd, cpus);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.name()))?;
    let mut proc = ServerProcess::new(child, server.name());
    proc.companion = upstream.and_then(|(_, p)| p).map(Box::new);
    if let Err(e) = wait_listening(&mut proc, addr, Duration::from_secs(10)) {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: String = tail.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        return Err(format!("{e}: {tail}"));
    }
    Ok(proc)
}

/// The CPUs the proxy does not use (the load tool's), for its upstream, and a free
/// loopback address.
fn upstream_place(proxy_cpus: &[usize]) -> Result<(Vec<usize>, SocketAddr), String> {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let others: Vec<usize> = (0..online).filter(|c| !proxy_cpus.contains(c)).collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port for the upstream: {e}"))?
        .port();
    Ok((others, SocketAddr::from(([127, 0, 0, 1], port))))
}

/// The upstream of the uWSGI fronts: one uWSGI process (`--uwsgi-socket`) serving the
/// seed's hello-world app, where [`start_upstream`] puts its uring-server.
fn start_uwsgi_upstream(
    proxy_cpus: &[usize],
    env: &ServerEnv,
) -> Result<(SocketAddr, ServerProcess), String> {
    let (others, addr) = upstream_place(proxy_cpus)?;
    let p = super::appserver::start_uwsgi(&env.scratch, "--uwsgi-socket", addr, 1, &others)?;
    Ok((addr, p))
}

/// The upstream of the proxy rows: uring-server `/plaintext`, one worker on the CPUs the
/// proxy does not use (the load tool's), so the proxy's CPU time is its own.
fn start_upstream(
    proxy_cpus: &[usize],
    env: &ServerEnv,
) -> Result<(SocketAddr, ServerProcess), String> {
    let (others, addr) = upstream_place(proxy_cpus)?;
    let mut c = Command::new(env.bin_dir.join("uring-server"));
    c.args(["-w", "1", "--no-pin", "--listen", &addr.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    pin_and_isolate(&mut c, &others);
    let child = c
        .spawn()
        .map_err(|e| format!("cannot start the upstream uring-server: {e}"))?;
    let mut proc = ServerProcess::new(child, "upstream");
    wait_listening(&mut proc, addr, Duration::from_secs(10))?;
    Ok((addr, proc))
}

/// nginx tuned the way a benchmark deserves: one worker per server CPU, no access log,
/// keep-alive without a request cap (1.22 closes after 1000 by default), sendfile on.
/// With `upstream`, `/plaintext` is `proxy_pass` to it over HTTP/1.1 keep-alive
/// (`keepalive 32`, nginx's documented set-up for upstream keep-alive).
fn write_nginx_conf(
    addr: SocketAddr,
    workers: usize,
    env: &ServerEnv,
    tls: Option<(PathBuf, PathBuf)>,
    upstream: Option<AppUpstream>,
) -> Result<PathBuf, String> {
    let (upstream_block, plaintext) = match upstream {
        Some(AppUpstream::Http(up)) => (
            format!("upstream app {{ server {up}; keepalive 32; }}"),
            "proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\";"
                .to_string(),
        ),
        Some(AppUpstream::LeastConn(a, b)) => (
            format!("upstream app {{ least_conn; server {a}; server {b}; keepalive 32; }}"),
            "proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\";"
                .to_string(),
        ),
        // uWSGI closes every uwsgi connection after its response: no keepalive pool.
        Some(AppUpstream::Uwsgi(up)) => (
            format!("upstream app {{ server {up}; }}"),
            "include /etc/nginx/uwsgi_params; uwsgi_pass app;".to_string(),
        ),
        None => (
            String::new(),
            "default_type text/plain; return 200 \"Hello, World!\";".to_string(),
        ),
    };
    let root = env.doc_root().map_err(|e| format!("document root: {e}"))?;
    // TLS: the certificate uring-server-tls uses, TLS 1.2 and 1.3, AES-128-GCM only (what
    // uring-server prefers), a session cache and tickets like uring-server's.
    let (ssl, ssl_conf) = match &tls {
        None => ("", String::new()),
        Some((cert, key)) => (
            " ssl",
            format!(
                "ssl_certificate {};
        ssl_certificate_key {};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
        ssl_session_cache shared:tls:10m;
        ssl_session_tickets on;",
                cert.display(),
                key.display()
            ),
        ),
    };
    let temp = env.scratch.join("nginx-temp");
    std::fs::create_dir_all(&temp).map_err(|e| e.to_string())?;
    let conf = format!(
        "worker_processes {workers};
daemon off;
master_process on;
pid {scratch}/nginx.pid;
error_log {scratch}/nginx-error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; multi_accept on; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 65;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=1000 inactive=20s;
    open_file_cache_valid 1s;
    tcp_nodelay on;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    uwsgi_temp_path {temp}/uwsgi;
    {upstream_block}
    types {{ application/octet-stream bin; }}
    server {{
        listen {addr}{ssl} reuseport backlog=4096;
        {ssl_conf}
        location = /plaintext {{
            {plaintext}
        }}
        location /static/ {{
            root {root};
        }}
    }}
}}
",
        scratch = env.scratch.display(),
        temp = temp.display(),
        root = root.display(),
    );
    let path = env.scratch.join("nginx.conf");
    std::fs::write(&path, conf).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// A self-signed ECDSA P-256 certificate for 127.0.0.1 in the scratch directory (made
/// once with openssl): (certificate, key).
fn tls_files(env: &ServerEnv) -> Result<(PathBuf, PathBuf), String> {
    let (cert, key) = (
        env.scratch.join("tls-cert.pem"),
        env.scratch.join("tls-key.pem"),
    );
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl could not make the test certificate: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((cert, key))
}
