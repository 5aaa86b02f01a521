//! The real application servers the proxy tests put behind uring-server (and nginx):
//! gunicorn's sync worker and Debian's uWSGI with its python3 plugin, each serving a WSGI
//! app of the test's making (callable `app`) on a free loopback port, killed on drop.
//!
//! `scripts/install-test-deps.sh` installs gunicorn, uwsgi-core and uwsgi-plugin-python3.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::load::{ChildGuard, TempDir};
use crate::{free_port, wait_for_listener};

/// `gunicorn -w N` (sync workers) serving `app`, with an access log.
pub struct Gunicorn {
    pub addr: SocketAddr,
    pub dir: TempDir,
    _child: ChildGuard,
}

impl Gunicorn {
    pub fn start(app: &str, workers: usize) -> Gunicorn {
        let dir = TempDir::new("gunicorn");
        std::fs::write(dir.path().join("wsgi_app.py"), app).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        // Debian's gunicorn; a python version manager's shims earlier in PATH may not have it.
        let exe = if std::path::Path::new("/usr/bin/gunicorn").exists() {
            "/usr/bin/gunicorn"
        } else {
            "gunicorn"
        };
        let child = Command::new(exe)
            .args(["-w", &workers.to_string(), "-b", &addr.to_string()])
            .arg("--chdir")
            .arg(dir.path())
            .arg("--access-logfile")
            .arg(dir.path().join("access.log"))
            .arg("wsgi_app:app")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gunicorn (install it: scripts/install-test-deps.sh)");
        let child = ChildGuard(child);
        wait_for_listener(addr, Duration::from_secs(30));
        Gunicorn {
            addr,
            dir,
            _child: child,
        }
    }

    /// gunicorn's access log so far (it writes each line as the request ends).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Debian's uWSGI with its python3 plugin serving `app` on a loopback port with
/// `socket_flag` (`--uwsgi-socket`, `--http-socket`) and `extra` options; its log goes to
/// `uwsgi.log` in its directory.
pub struct Uwsgi {
    pub addr: SocketAddr,
    pub dir: TempDir,
    _child: ChildGuard,
}

impl Uwsgi {
    pub fn start(app: &str, socket_flag: &str, extra: &[&str]) -> Uwsgi {
        let dir = TempDir::new("uwsgi");
        std::fs::write(dir.path().join("app.py"), app).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new("uwsgi")
            .args(["--plugin", "python3", "--need-app", "--die-on-term"])
            .args(["--disable-logging", socket_flag])
            .arg(addr.to_string())
            .arg("--wsgi-file")
            .arg(dir.path().join("app.py"))
            .args(["--callable", "app"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("uwsgi.log")).unwrap(),
            ))
            .spawn()
            .expect("uwsgi (install it: scripts/install-test-deps.sh)");
        let child = ChildGuard(child);
        wait_for_listener(addr, Duration::from_secs(20));
        Uwsgi {
            addr,
            dir,
            _child: child,
        }
    }
}
