//! The seed study's app servers, for `seed` and for the proxy rows of `compare` that
//! front them: the hello-world WSGI app, uWSGI serving it, and starting any app server
//! until it listens.

use super::proc::{on_path, pin_and_isolate, wait_listening, ServerProcess};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The app's module name (`seed_app.py` in the scratch directory, callable `app`).
pub const APP_MODULE: &str = "seed_app";

const WSGI_APP: &str = "\
# Hello-world WSGI app of the seed study.
def app(environ, start_response):
    body = b'Hello, World!'
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
";

/// Starts an app server (its output already going to `log`) and waits until it listens on
/// `addr`; a failure quotes the log's last lines.
pub fn spawn_app_server(
    mut cmd: Command,
    name: &'static str,
    log: &Path,
    addr: SocketAddr,
    cpus: &[usize],
) -> Result<ServerProcess, String> {
    pin_and_isolate(&mut cmd, cpus);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let mut p = ServerProcess::new(child, name);
    wait_listening(&mut p, addr, Duration::from_secs(30)).map_err(|e| {
        let t = std::fs::read_to_string(log).unwrap_or_default();
        format!(
            "{e}: {}",
            t.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
        )
    })?;
    Ok(p)
}

/// Debian's uWSGI with its python3 plugin serving the seed's app on `addr` with
/// `processes` worker processes; `socket_flag` is `--http-socket` (HTTP, answered by the
/// workers themselves, the sync rows' counterpart) or `--uwsgi-socket` (behind a proxy).
pub fn start_uwsgi(
    scratch: &Path,
    socket_flag: &str,
    addr: SocketAddr,
    processes: usize,
    cpus: &[usize],
) -> Result<ServerProcess, String> {
    if !on_path("uwsgi") {
        return Err("uwsgi is not installed (scripts/bench-install.sh)".into());
    }
    let log = scratch.join("uwsgi.log");
    let f = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("uwsgi");
    // --master restarts a dead worker as gunicorn's arbiter does; --listen matches
    // gunicorn's backlog of 2048 in spirit (uWSGI's default, 100, would turn -c 200 into
    // SYN retries rather than measure the app).
    cmd.args([
        "--plugin",
        "python3",
        "--master",
        "--die-on-term",
        "--need-app",
    ])
    .args(["--disable-logging", "--listen", "1024", "--processes"])
    .arg(processes.to_string())
    .arg(socket_flag)
    .arg(addr.to_string())
    .arg("--chdir")
    .arg(scratch)
    .arg("--wsgi-file")
    .arg(write_app(scratch)?)
    .args(["--callable", "app"]);
    if socket_flag == "--http-socket" {
        // uWSGI's HTTP socket closes after every response yet answers HTTP/1.1 without
        // saying so: a keep-alive client (-k) then loses the next request it sends on that
        // connection. gunicorn's sync worker says "Connection: close"; so must this.
        cmd.args(["--add-header", "Connection: close"]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(f.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(f));
    spawn_app_server(cmd, "uwsgi", &log, addr, cpus)
}

/// Writes the app into `scratch` (once); its path.
pub fn write_app(scratch: &Path) -> Result<PathBuf, String> {
    let path = scratch.join(format!("{APP_MODULE}.py"));
    if !path.exists() {
        std::fs::write(&path, WSGI_APP).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(path)
}
