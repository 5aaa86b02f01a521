//! `--user` and `--pid-file`: a module of the binary. The server binds its ports (those
//! below 1024 need root) and opens its logs first, then becomes the named user for good:
//! group, supplementary groups, then user, in that order (once the user id is gone the
//! group calls are refused). glibc applies each call to every thread, so the workers,
//! already running, change with the main thread. A drop that fails ends the process:
//! serving on as root when the operator asked otherwise is worse than not serving.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

/// A user to run as, looked up in the password database.
#[derive(Debug)]
pub struct Account {
    name: CString,
    uid: libc::uid_t,
    gid: libc::gid_t,
}

impl Account {
    pub fn lookup(name: &str) -> Result<Account, String> {
        let cname = CString::new(name).map_err(|_| format!("user '{name}': has a NUL byte"))?;
        // SAFETY: passwd is plain data filled by getpwnam_r; buf outlives the call and is
        // only read through `found` before this function returns.
        unsafe {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut buf = vec![0 as libc::c_char; 16 * 1024];
            let mut found: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwnam_r(
                cname.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            );
            if rc != 0 {
                return Err(format!(
                    "user '{name}': {}",
                    std::io::Error::from_raw_os_error(rc)
                ));
            }
            if found.is_null() {
                return Err(format!("no user '{name}' in the password database"));
            }
            Ok(Account {
                name: CStr::from_ptr(pw.pw_name).to_owned(),
                uid: pw.pw_uid,
                gid: pw.pw_gid,
            })
        }
    }

    /// Become this user. Already being it (an upgrade started by a server that dropped
    /// root) is fine; anything else that cannot be done is an error.
    pub fn become_it(&self) -> Result<(), String> {
        let who = self.name.to_string_lossy();
        // SAFETY: plain id syscalls; name is a valid C string.
        unsafe {
            if libc::getuid() == self.uid && libc::geteuid() == self.uid {
                return Ok(());
            }
            if libc::setgid(self.gid) != 0 {
                return Err(format!(
                    "setgid({}) for user '{who}': {}",
                    self.gid,
                    last_error()
                ));
            }
            if libc::initgroups(self.name.as_ptr(), self.gid) != 0 {
                return Err(format!("initgroups for user '{who}': {}", last_error()));
            }
            if libc::setuid(self.uid) != 0 {
                return Err(format!(
                    "setuid({}) for user '{who}': {}",
                    self.uid,
                    last_error()
                ));
            }
            // The drop must be for good: root would get back by setuid(0).
            if self.uid != 0 && libc::setuid(0) == 0 {
                return Err(format!(
                    "still able to become root after switching to '{who}'"
                ));
            }
            if libc::getuid() != self.uid || libc::geteuid() != self.uid {
                return Err(format!(
                    "user id is not {} after switching to '{who}'",
                    self.uid
                ));
            }
        }
        Ok(())
    }
}

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// `--pid-file`: written once the sockets are bound, removed at exit if it still names
/// us (after an upgrade the successor has written its own).
pub struct PidFile(PathBuf);

impl PidFile {
    pub fn write(path: &Path) -> Result<PidFile, String> {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write the pid file {}: {e}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }

    /// Best effort: after dropping root the directory may no longer be writable by us.
    pub fn remove(&self) {
        let ours = std::fs::read_to_string(&self.0)
            .is_ok_and(|s| s.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_in_every_password_database() {
        let root = Account::lookup("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(Account::lookup("no-such-user-here").is_err());
        assert!(Account::lookup("a\0b").is_err());
    }

    #[test]
    fn a_pid_file_is_removed_only_while_it_names_us() {
        let path = std::env::temp_dir().join(format!("uring-pid-test-{}", std::process::id()));
        let f = PidFile::write(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        std::fs::write(&path, "1\n").unwrap();
        f.remove();
        assert!(path.exists(), "a successor's pid file was removed");
        std::fs::write(&path, format!("{}\n", std::process::id())).unwrap();
        f.remove();
        assert!(!path.exists());
    }
}
