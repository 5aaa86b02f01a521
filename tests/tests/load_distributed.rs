//! uring-load across machines, for real: pdsh over ssh starts one shard in each of three
//! network namespaces (each with its own sshd and address), against uring-server in a
//! fourth; `uring-load merge` of the shards' reports must equal the server's own count.
//! Then one machine is lost (its sshd stopped) and the merge names the missing shard.
//!
//! The shards run the container argument list of the Kubernetes Indexed Job in
//! deploy/k8s/ (with `JOB_COMPLETION_INDEX` set to pdsh's rank), so the manifest's command
//! line is the one proven here; the manifest itself is checked offline with the official
//! Kubernetes Python client's models (tests/scripts/k8s-check.py).
//!
//! The namespaces, sshd, the server and pdsh are set up and torn down by
//! `tests/scripts/pdsh-netns.sh` (a trap removes everything, on failure too). Needs root,
//! Debian's pdsh, openssh-server and python3-kubernetes (scripts/install-test-deps.sh
//! installs them); the tests fail, never skip, when they are missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use uring_tests::bin;
use uring_tests::load::{num, run_load, ChildGuard, TempDir};

// Not a multiple of the shard count: the shares differ (1001, 1000, 1000) and sum to it.
const REQUESTS: u64 = 3001;
const SHARDS: u64 = 3;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s/uring-load-job.yaml")
}

/// Run the offline manifest check; its JSON summary, or its one-line complaint.
fn k8s_check(path: &Path) -> Result<serde_json::Value, String> {
    // Debian's interpreter: python3-kubernetes and python3-yaml are its packages.
    let out = Command::new("/usr/bin/python3")
        .arg(script("k8s-check.py"))
        .arg(path)
        .output()
        .expect("/usr/bin/python3 (install: scripts/install-test-deps.sh)");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("k8s-check prints JSON"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The Job of deploy/k8s/, checked: an Indexed Job whose container runs uring-load with
/// `--shards` equal to its completions and parallelism; returns its argument list.
fn job_args() -> Vec<String> {
    let docs = k8s_check(&manifest()).unwrap_or_else(|e| panic!("{e}"));
    let job = &docs[0];
    assert_eq!(job["kind"], "Job", "{docs}");
    assert_eq!(job["completionMode"], "Indexed", "{job}");
    assert_eq!(job["restartPolicy"], "Never", "{job}");
    assert_eq!(job["seccomp"], "Unconfined", "io_uring needs it: {job}");
    assert_eq!(job["command"], serde_json::json!(["uring-load"]), "{job}");
    let args: Vec<String> = job["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let after = |flag: &str| {
        let i = args.iter().position(|a| a == flag);
        i.and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| panic!("no {flag} in {args:?}"))
    };
    let shards: u64 = after("--shards").parse().unwrap();
    assert_eq!(shards, SHARDS, "{job}");
    assert_eq!(job["completions"], shards, "{job}");
    assert_eq!(job["parallelism"], shards, "{job}");
    assert_eq!(after("--start-at"), "$(START_AT)");
    assert_eq!(after("--run-id"), "$(RUN_ID)");
    assert!(args.iter().any(|a| a == "--json"), "{args:?}");
    // Every $(VAR) the arguments use is a parameter of the pod.
    for a in &args {
        if let Some(var) = a.strip_prefix("$(").and_then(|v| v.strip_suffix(')')) {
            assert!(
                job["env"].get(var).is_some(),
                "$({var}) has no env entry: {job}"
            );
        }
    }
    args
}

#[test]
fn load_k8s_manifest_is_a_valid_indexed_job() {
    let args = job_args();
    assert!(args.len() > 8, "{args:?}");
    // The check can fail: a misspelt field, a container without its name.
    let dir = TempDir::new("k8s");
    let text = std::fs::read_to_string(manifest()).unwrap();
    for (from, to, complaint) in [
        (
            "completionMode:",
            "completionMod:",
            "not a field of V1JobSpec",
        ),
        (
            "        - name: uring-load\n",
            "        -\n",
            "`name`, must not be `None`",
        ),
        ("kind: Job", "kind: Jobb", "unknown apiVersion/kind"),
    ] {
        assert!(text.contains(from), "{from:?}");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, text.replacen(from, to, 1)).unwrap();
        let err = k8s_check(&bad).expect_err(from);
        assert!(err.contains(complaint), "{from:?}: {err}");
    }
}

fn read_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{}: {e}: {text}", p.display()))
}

#[test]
fn load_pdsh_over_ssh_across_network_namespaces() {
    let out = TempDir::new("pdsh");
    let start = Instant::now();
    let child = Command::new("bash")
        .arg(script("pdsh-netns.sh"))
        .arg(out.path())
        .arg(bin("uring-load"))
        .arg(bin("uring-server"))
        .arg(REQUESTS.to_string())
        .arg(job_args().join(" "))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    let mut child = ChildGuard(child);
    // Bounded: the script's own waits add up to well under this.
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(240) {
            // SIGTERM first so that the script's trap tears the namespaces down.
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
            let give_up = Instant::now() + Duration::from_secs(20);
            while child.0.try_wait().unwrap().is_none() && Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!("pdsh-netns.sh did not finish within 240 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.0.wait_with_output_ref();
    assert!(
        status.success(),
        "pdsh-netns.sh failed ({status}):\n{output}\n(pdsh, sshd and root are needed: scripts/install-test-deps.sh)"
    );

    // Phase 1: every shard ran its exact share; the merge equals the server's count.
    let all = out.path().join("all");
    let pdsh_rc = std::fs::read_to_string(all.join("pdsh.rc")).unwrap();
    let pdsh_err = std::fs::read_to_string(all.join("pdsh.err")).unwrap_or_default();
    assert_eq!(pdsh_rc.trim(), "0", "pdsh: {pdsh_err}");
    let mut files = Vec::new();
    let mut hosts = Vec::new();
    let mut sum = 0;
    for i in 0..SHARDS {
        let p = all.join(format!("shard-{i}.json"));
        let v = read_json(&p);
        assert_eq!(v["shard"]["index"], i, "{v}");
        assert_eq!(v["shard"]["count"], SHARDS, "{v}");
        let share = REQUESTS / SHARDS + u64::from(i < REQUESTS % SHARDS);
        assert_eq!(num(&v, &["requests", "succeeded"]), share, "{v}");
        assert_eq!(num(&v, &["requests", "errored"]), 0, "{v}");
        sum += share;
        hosts.push(v["host"].as_str().unwrap_or_default().to_string());
        files.push(p.display().to_string());
    }
    assert_eq!(sum, REQUESTS);
    assert!(hosts.iter().all(|h| !h.is_empty()), "{hosts:?}");
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    let merged = run_load(&args, Duration::from_secs(30));
    assert_eq!(merged.code, 0, "{}", merged.stderr);
    let v = merged.json();
    assert_eq!(num(&v, &["requests", "succeeded"]), REQUESTS, "{v}");
    assert_eq!(v["shards"].as_array().map(Vec::len), Some(SHARDS as usize));
    let server_count = std::fs::read_to_string(out.path().join("access.log"))
        .unwrap_or_default()
        .lines()
        .count() as u64;
    assert_eq!(server_count, REQUESTS, "the server's access log");

    // Phase 2: shard 2's machine was lost; pdsh says so and the merge names the shard.
    let lost = out.path().join("lost");
    let pdsh_rc = std::fs::read_to_string(lost.join("pdsh.rc")).unwrap();
    let pdsh_err = std::fs::read_to_string(lost.join("pdsh.err")).unwrap_or_default();
    assert_ne!(
        pdsh_rc.trim(),
        "0",
        "pdsh should fail for the unreachable host"
    );
    assert!(pdsh_err.contains("10.231.0.13"), "{pdsh_err}");
    assert!(!lost.join("shard-2.json").exists());
    let f0 = lost.join("shard-0.json").display().to_string();
    let f1 = lost.join("shard-1.json").display().to_string();
    let r = run_load(&["merge", &f0, &f1], Duration::from_secs(30));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("missing shards 2/3 (1 of 3)"),
        "{}",
        r.stderr
    );
}

/// `wait_with_output` for a child whose status was already reaped by `try_wait`.
trait OutputOf {
    fn wait_with_output_ref(&mut self) -> String;
}

impl OutputOf for std::process::Child {
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(mut o) = self.stdout.take() {
            let _ = o.read_to_string(&mut s);
        }
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}
