//! The first error of each class, with its cause: what a person needs to see when a run
//! failed ("connect: 10 × Connection refused (os error 111) to 127.0.0.1:1").
//!
//! Each thread keeps its own store (no locks on the error path; a message is formatted
//! only for the first error of a class). Stores merge by time: the one that happened
//! first by the wall clock (`SystemTime`, microseconds since the Unix epoch) wins, and
//! on a tie the store merged into wins, so threads merged in index order (or reports in
//! the order given to `uring-load merge`) decide ties. Across machines the wall clocks
//! must agree (NTP) for "first" to mean first.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::ErrorKind;

/// One recorded cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstError {
    /// What went wrong, in one line ("Connection refused (os error 111) to 127.0.0.1:1").
    pub message: String,
    /// When, in microseconds since the Unix epoch.
    pub at_unix_us: u64,
}

/// The first error of every class (indexed by [`ErrorKind::index`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstErrors {
    slots: [Option<FirstError>; ErrorKind::ALL.len()],
}

impl FirstErrors {
    /// The first error of `kind`, if one was noted.
    pub fn get(&self, kind: ErrorKind) -> Option<&FirstError> {
        self.slots[kind.index()].as_ref()
    }

    /// Keep `cause` as the first error of `kind` unless one is kept already. The message
    /// is formatted only when it is kept.
    pub fn note(&mut self, kind: ErrorKind, cause: &dyn fmt::Display) {
        let slot = &mut self.slots[kind.index()];
        if slot.is_none() {
            *slot = Some(FirstError {
                message: one_line(&cause.to_string()),
                at_unix_us: now_unix_us(),
            });
        }
    }

    /// Put a known error in place (reading a report back); the earlier one stays.
    pub fn offer(&mut self, kind: ErrorKind, e: FirstError) {
        let slot = &mut self.slots[kind.index()];
        match slot {
            Some(mine) if mine.at_unix_us <= e.at_unix_us => {}
            _ => *slot = Some(e),
        }
    }

    /// Merge another store: per class, the earlier error wins; ties keep ours.
    pub fn merge(&mut self, other: &FirstErrors) {
        for kind in ErrorKind::ALL {
            if let Some(e) = other.get(kind) {
                self.offer(kind, e.clone());
            }
        }
    }

    /// The classes with a first error, in [`ErrorKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (ErrorKind, &FirstError)> + '_ {
        ErrorKind::ALL
            .into_iter()
            .filter_map(|k| self.get(k).map(|e| (k, e)))
    }
}

fn now_unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Messages are shown on one line: newlines from a foreign error text become spaces.
fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An OS error on a socket, with the peer it happened with:
/// "Connection refused (os error 111) to 127.0.0.1:1". Reads say "from", the rest "to".
pub struct OsCause<'a> {
    pub kind: ErrorKind,
    /// The errno (positive; io_uring completions carry it negated).
    pub errno: i32,
    pub peer: &'a dyn fmt::Display,
}

impl fmt::Display for OsCause<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let err = std::io::Error::from_raw_os_error(self.errno);
        let dir = if self.kind == ErrorKind::Read {
            "from"
        } else {
            "to"
        };
        write!(f, "{err} {dir} {}", self.peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_note_wins_and_is_formatted_once() {
        let mut s = FirstErrors::default();
        let peer = "127.0.0.1:1";
        s.note(
            ErrorKind::Connect,
            &OsCause {
                kind: ErrorKind::Connect,
                errno: libc::ECONNREFUSED,
                peer: &peer,
            },
        );
        s.note(ErrorKind::Connect, &"something later");
        let e = s.get(ErrorKind::Connect).unwrap();
        assert_eq!(
            e.message,
            "Connection refused (os error 111) to 127.0.0.1:1"
        );
        assert!(e.at_unix_us > 1_600_000_000_000_000);
        assert!(s.get(ErrorKind::Read).is_none());
        s.note(
            ErrorKind::Read,
            &OsCause {
                kind: ErrorKind::Read,
                errno: libc::ECONNRESET,
                peer: &peer,
            },
        );
        assert_eq!(
            s.get(ErrorKind::Read).unwrap().message,
            "Connection reset by peer (os error 104) from 127.0.0.1:1"
        );
        assert_eq!(
            s.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            [ErrorKind::Connect, ErrorKind::Read]
        );
    }

    #[test]
    fn merge_keeps_the_earliest_and_ties_keep_ours() {
        let at = |message: &str, t| FirstError {
            message: message.into(),
            at_unix_us: t,
        };
        let mut a = FirstErrors::default();
        a.offer(ErrorKind::Timeout, at("a-timeout", 20));
        a.offer(ErrorKind::Parse, at("a-parse", 5));
        let mut b = FirstErrors::default();
        b.offer(ErrorKind::Timeout, at("b-timeout", 10));
        b.offer(ErrorKind::Parse, at("b-parse", 5));
        b.offer(ErrorKind::Write, at("b-write", 99));
        a.merge(&b);
        assert_eq!(a.get(ErrorKind::Timeout).unwrap().message, "b-timeout");
        assert_eq!(a.get(ErrorKind::Parse).unwrap().message, "a-parse");
        assert_eq!(a.get(ErrorKind::Write).unwrap().message, "b-write");
        assert!(a.get(ErrorKind::Connect).is_none());
    }

    #[test]
    fn messages_are_one_line() {
        let mut s = FirstErrors::default();
        s.note(ErrorKind::Parse, &"bad\r\nthing\n");
        assert_eq!(s.get(ErrorKind::Parse).unwrap().message, "bad thing");
    }
}
