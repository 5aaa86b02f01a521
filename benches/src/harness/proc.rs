//! Processes under measurement: spawning pinned to a CPU set in their own process group,
//! CPU time of a whole process tree from /proc, and runs bounded by a deadline.
//!
//! A server's CPU is read from /proc before and after each run (its workers may be child
//! processes, as with nginx and gunicorn, so the whole tree is summed, including children
//! already reaped). A load tool's CPU comes from wait4's rusage, which is exact.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Process groups started and not yet stopped, for the interrupt handler.
static LIVE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn register_group(pgid: i32) {
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(pgid);
}

fn forget_group(pgid: i32) {
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&g| g != pgid);
}

/// On SIGINT, SIGTERM or SIGHUP, kill every server and tool still running, then exit
/// 130: they lead their own process groups, so the terminal's Ctrl-C would not reach
/// them and they would outlive the harness. Call before any other thread starts: the
/// signals are blocked in every thread and taken by one thread with sigwait.
pub fn stop_children_on_signal() {
    // SAFETY: sigset_t is plain data; these calls only read and write it and the mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let set_copy = set;
        std::thread::spawn(move || {
            let mut sig = 0;
            libc::sigwait(&set_copy, &mut sig);
            let groups = LIVE_GROUPS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            for g in groups {
                libc::kill(-g, libc::SIGKILL);
            }
            eprintln!("\ninterrupted: stopped every server and load tool");
            std::process::exit(130);
        });
    }
}

/// Undo in the child what the harness set for itself: the blocked signals (a child
/// inherits the mask across exec), and ask for SIGTERM if the harness dies first.
pub fn as_child(cmd: &mut Command) {
    // SAFETY: runs between fork and exec; sigemptyset, sigprocmask and prctl are
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
            Ok(())
        });
    }
}

/// Make `cmd` start on `cpus` only and lead its own process group, so that the whole
/// tree can be signalled at once and its threads cannot wander onto the other side's CPUs.
pub fn pin_and_isolate(cmd: &mut Command, cpus: &[usize]) {
    as_child(cmd);
    let cpus = cpus.to_vec();
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (setpgid, sched_setaffinity) on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            libc::setpgid(0, 0);
            if !cpus.is_empty() {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                for &c in &cpus {
                    libc::CPU_SET(c, &mut set);
                }
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// (ppid, utime+stime+cutime+cstime in ticks) of one process, from /proc/PID/stat.
fn stat_of(pid: u32) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); ppid is field 4, utime..cstime are fields 14..17.
    let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some((num(4)? as u32, num(14)? + num(15)? + num(16)? + num(17)?))
}

/// CPU seconds used so far by `root` and all its descendants (reaped children included
/// through cutime/cstime).
pub fn tree_cpu_seconds(root: u32) -> f64 {
    let mut procs: HashMap<u32, (u32, u64)> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                if let Some(st) = stat_of(pid) {
                    procs.insert(pid, st);
                }
            }
        }
    }
    let mut total = 0u64;
    let mut stack = vec![root];
    let mut seen = 0;
    while let Some(p) = stack.pop() {
        seen += 1;
        if seen > 100_000 {
            break;
        }
        if let Some(&(_, t)) = procs.get(&p) {
            total += t;
        }
        stack.extend(
            procs
                .iter()
                .filter(|(_, &(ppid, _))| ppid == p)
                .map(|(&pid, _)| pid),
        );
    }
    total as f64 / clock_ticks()
}

/// Signal a process group: TERM, up to `grace` for it to go, then KILL.
pub fn stop_group(child: &mut Child, grace: Duration) {
    let pgid = child.id() as i32;
    // SAFETY: signalling our own child's process group.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            // The leader is gone; make sure stragglers of the group are too.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
}

/// A server process that is stopped when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub name: String,
    /// A process the server needs and that is not part of its measured tree (a proxy's
    /// upstream); stopped after it.
    pub companion: Option<Box<ServerProcess>>,
}

impl ServerProcess {
    /// Take charge of a server started with `pin_and_isolate`.
    pub fn new(child: Child, name: &str) -> ServerProcess {
        register_group(child.id() as i32);
        ServerProcess {
            child,
            name: name.to_string(),
            companion: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running (a crashed server fails its remaining cells).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        stop_group(&mut self.child, Duration::from_secs(3));
        forget_group(self.child.id() as i32);
    }
}

/// The outcome of one bounded run of a load tool.
#[derive(Debug)]
pub struct ToolRun {
    pub stdout: String,
    pub stderr: String,
    /// Exit code, or None if it was killed or died of a signal.
    pub code: Option<i32>,
    pub timed_out: bool,
    /// User + system CPU seconds of the tool and its threads (rusage).
    pub cpu_seconds: f64,
    pub wall: Duration,
}

/// Run `argv` pinned to `cpus`, killing its process group if it outlives `limit`.
/// Output goes to files in `scratch` rather than pipes so that a chatty tool can never
/// block on a full pipe while we wait for it.
pub fn run_bounded(
    argv: &[String],
    cpus: &[usize],
    limit: Duration,
    scratch: &Path,
) -> std::io::Result<ToolRun> {
    let out_path = scratch.join("tool.stdout");
    let err_path = scratch.join("tool.stderr");
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?);
    pin_and_isolate(&mut cmd, cpus);
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as i32;
    register_group(pid);
    let mut timed_out = false;
    let mut status = 0;
    // SAFETY: rusage is plain data filled by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waiting for our own child; the std Child handle is never waited on
        // again (it is forgotten below), so the pid is reaped exactly once.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if !timed_out && start.elapsed() > limit {
            timed_out = true;
            // SAFETY: killing our own child's process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::mem::forget(child);
    // Anything the tool left behind in its group goes too.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    forget_group(pid);
    let wall = start.elapsed();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    Ok(ToolRun {
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        code,
        timed_out,
        cpu_seconds: tv(usage.ru_utime) + tv(usage.ru_stime),
        wall,
    })
}

/// Wait until something accepts on `addr`, the server dies, or `timeout` passes.
pub fn wait_listening(
    server: &mut ServerProcess,
    addr: std::net::SocketAddr,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !server.alive() {
            return Err(format!("{} exited during start-up", server.name));
        }
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "{} not listening on {addr} after {timeout:?}",
        server.name
    ))
}

/// Whether a command is on PATH (for the peers from Debian packages).
pub fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| is_executable(&d.join(cmd))))
        .unwrap_or(false)
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_run_kills_on_overrun_and_reports_cpu() {
        let dir = std::env::temp_dir().join(format!("bench-proc-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let argv: Vec<String> = ["sh", "-c", "echo hi; sleep 5"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = run_bounded(&argv, &[], Duration::from_millis(200), &dir).unwrap();
        assert!(r.timed_out);
        assert!(r.wall < Duration::from_secs(3));
        assert_eq!(r.stdout.trim(), "hi");
        let busy: Vec<String> = [
            "sh",
            "-c",
            "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = run_bounded(&busy, &[], Duration::from_secs(30), &dir).unwrap();
        assert_eq!(r.code, Some(0));
        assert!(r.cpu_seconds > 0.0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tree_cpu_of_self_is_positive() {
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(tree_cpu_seconds(std::process::id()) > 0.0);
    }
}
