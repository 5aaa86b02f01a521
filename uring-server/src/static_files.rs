//! Static files under `--root`: GET and HEAD, `index.html` for directories, Content-Type
//! by extension, ETag / Last-Modified with conditional requests (304), one byte range
//! (206 / 416), and no way out of the root.
//!
//! Containment is enforced by the kernel, not by string checks alone: every file is
//! opened with `openat2(RESOLVE_BENEATH)` relative to the root's directory fd, so `..`
//! (literal or percent-encoded) and symlinks that lead outside fail with EXDEV. The string
//! checks in front of it only give clearer answers (400 for NUL, 404 for dot-dot).
//!
//! Each worker keeps a small open-file cache (like nginx's `open_file_cache`): path →
//! open fd, size, mtime, ETag, Last-Modified, type. A hit costs no open and no stat; an
//! entry older than the validity interval (1 s by default) is checked with one `fstatat`
//! and reopened if the file changed (a rename over it, a new size or mtime). A miss is
//! opened and stated by the worker's [`Opener`] thread, never on the worker thread: a
//! slow lookup (a cold disk, a network or FUSE mount) would stall every other connection
//! of the worker. The handler defers the response; the worker asks again when the
//! opener's eventfd says a result is in (`Handler::wake_fd`, `Handler::on_wake`).

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, UNIX_EPOCH};

use uring_common::http::DateCache;

use crate::compress::{self, Accepted, Coding, Codings, Compression, Effort};
use crate::request::Request;
use crate::response::{FileBody, ResponseWriter};

/// Open files kept per worker by default.
pub const DEFAULT_CACHE_ENTRIES: usize = 512;
/// How long a cached entry is trusted before one `fstatat` checks it again.
pub const DEFAULT_CACHE_VALID: Duration = Duration::from_secs(1);
/// An entry not used for this long is closed (so a deleted file's space comes back, as
/// with nginx's `open_file_cache inactive=`), checked one entry per request.
const CACHE_INACTIVE: Duration = Duration::from_secs(60);

/// How file bodies leave, by size class (the defaults are the winners of the
/// measurements in BENCHMARKS.md, "Static files: body paths").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileBodies {
    /// Files up to this size keep their bytes in the cache entry and go out with the head
    /// in one send (0: never). Bounds memory at `entries × memory_max` per worker.
    pub memory_max: u64,
    /// Larger files: SPLICE file → pipe → socket (true), or read into memory and sent.
    pub splice: bool,
}

impl Default for FileBodies {
    fn default() -> Self {
        FileBodies {
            memory_max: 16 * 1024,
            splice: true,
        }
    }
}

/// Why a path gives no file to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoFile {
    /// A malformed path (bad escape, NUL): 400.
    BadPath,
    /// Missing, not a regular file, or outside the root: 404.
    NotFound,
    /// The kernel refused access: 403.
    Forbidden,
    /// A directory named without its trailing slash: 301 to the slashed URL (relative
    /// links in its index.html resolve only against that).
    DirectoryWithoutSlash,
}

/// The root directory, held open so containment does not depend on its path, and this
/// worker's open-file cache.
pub struct StaticFiles {
    root: Arc<OwnedFd>,
    cache: OpenFileCache,
    bodies: FileBodies,
    /// Serve `a.js.br`, `.zst`, `.gz` beside `a.js` to clients that accept them.
    precompressed: bool,
    /// Compress files on the fly (once per file version, on the opener thread).
    compression: Compression,
    opener: Opener,
}

/// What the opener thread needs to describe a file for the cache.
#[derive(Debug, Clone, Copy)]
struct OpenSettings {
    memory_max: u64,
    precompressed: bool,
    compression: Compression,
}

/// What the opener thread answers for one path.
type Opened = (Vec<u8>, Result<CachedFile, NoFile>);

/// Opens and stats missed paths on a thread of its own (started at the first miss), so a
/// slow lookup stalls no connection: results come back on a channel, and an eventfd the
/// worker polls through its ring says when.
struct Opener {
    wake: Arc<OwnedFd>,
    asks: Option<mpsc::Sender<(Vec<u8>, bool)>>,
    results: Option<mpsc::Receiver<Opened>>,
    /// Paths asked for and not answered yet (each asked once, however many wait).
    asked: HashSet<Vec<u8>>,
    /// Answers taken off the channel at the last wake, for the deferred requests asking
    /// again right after it.
    done: HashMap<Vec<u8>, Result<CachedFile, NoFile>>,
}

impl Opener {
    fn new() -> io::Result<Opener> {
        // SAFETY: eventfd returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Opener {
            // SAFETY: a fresh fd we own.
            wake: Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }),
            asks: None,
            results: None,
            asked: HashSet::new(),
            done: HashMap::new(),
        })
    }

    /// Ask for `key` to be opened (once while it is in progress). False when no thread
    /// could be started: the caller opens it itself.
    fn ask(
        &mut self,
        root: &Arc<OwnedFd>,
        settings: OpenSettings,
        key: &[u8],
        slash: bool,
    ) -> bool {
        if self.asked.contains(key) {
            return true;
        }
        if self.asks.is_none() {
            let (ask_tx, ask_rx) = mpsc::channel::<(Vec<u8>, bool)>();
            let (res_tx, res_rx) = mpsc::channel::<Opened>();
            let (root, wake) = (root.clone(), self.wake.clone());
            let spawned = std::thread::Builder::new()
                .name("uring-opener".into())
                .spawn(move || {
                    // Ends when the worker's handler (the sender) is dropped.
                    for (key, slash) in ask_rx {
                        let r = open_entry(&root, settings, key.clone(), slash, Instant::now());
                        if res_tx.send((key, r)).is_err() {
                            return;
                        }
                        let one = 1u64;
                        // SAFETY: writes 8 bytes to our eventfd.
                        unsafe { libc::write(wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
                    }
                });
            if spawned.is_err() {
                return false;
            }
            self.asks = Some(ask_tx);
            self.results = Some(res_rx);
        }
        match &self.asks {
            Some(tx) if tx.send((key.to_vec(), slash)).is_ok() => {
                self.asked.insert(key.to_vec());
                true
            }
            _ => false,
        }
    }

    /// Take what the thread answered (the eventfd was readable).
    fn on_wake(&mut self) {
        let mut n = 0u64;
        // SAFETY: reads 8 bytes from our non-blocking eventfd (resets it).
        unsafe { libc::read(self.wake.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
        // Answers nobody took since the last wake (the connection went away) are dropped.
        self.done.clear();
        if let Some(rx) = &self.results {
            for (key, r) in rx.try_iter() {
                self.asked.remove(&key);
                self.done.insert(key, r);
            }
        }
    }
}

/// Each worker gets its own clone of the handler: the root is shared, the cache starts
/// empty (open fds are not worth sharing across threads, and no lock is wanted).
impl Clone for StaticFiles {
    fn clone(&self) -> Self {
        StaticFiles {
            root: self.root.clone(),
            cache: OpenFileCache::new(self.cache.capacity, self.cache.valid_for),
            bodies: self.bodies,
            precompressed: self.precompressed,
            compression: self.compression,
            opener: Opener::new().expect("an eventfd for the file opener"),
        }
    }
}

/// What the cache knows about one served path.
struct CachedFile {
    /// The decoded relative path asked for, with a trailing `/` if the URL had one.
    key: Vec<u8>,
    file: Arc<File>,
    /// The path actually opened (the index.html of a directory), for revalidation.
    opened: CString,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    etag: [u8; 40],
    etag_len: usize,
    /// The whole file, for small files (see [`FileBodies::memory_max`]).
    bytes: Option<Box<[u8]>>,
    last_modified: [u8; 29],
    ctype: &'static [u8],
    checked: Instant,
    /// Used since the clock hand last passed (second chance).
    referenced: bool,
    /// Precompressed siblings found beside the file (`--precompressed`).
    siblings: Vec<Sibling>,
    /// Whether siblings were looked for: revalidation then checks that none came or went.
    siblings_checked: bool,
    /// The file compressed by the opener thread (`--compress`), per coding.
    compressed: Vec<(Coding, Box<[u8]>)>,
}

/// A precompressed sibling (`a.js.br` beside `a.js`): its own file, validators and, when
/// small, bytes.
struct Sibling {
    coding: Coding,
    file: Arc<File>,
    stat: [i64; 5],
    size: u64,
    mtime_secs: u64,
    etag: Vec<u8>,
    last_modified: [u8; 29],
    bytes: Option<Box<[u8]>>,
}

/// What revalidation compares: device, inode, size, mtime (seconds, nanoseconds).
fn identity(st: &libc::stat) -> [i64; 5] {
    [
        st.st_dev as i64,
        st.st_ino as i64,
        st.st_size,
        st.st_mtime,
        st.st_mtime_nsec,
    ]
}

fn meta_identity(m: &std::fs::Metadata) -> [i64; 5] {
    [
        m.dev() as i64,
        m.ino() as i64,
        m.size() as i64,
        m.mtime(),
        m.mtime_nsec(),
    ]
}

/// `fstatat` beneath the root, without following a final symlink's escape (the path was
/// opened with `RESOLVE_BENEATH` before; this only compares).
fn stat_at(root: &OwnedFd, path: &std::ffi::CStr) -> Option<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `path` is a valid C string, `st` has room for a stat; fstatat writes it
    // only on success (checked before reading).
    let rc = unsafe { libc::fstatat(root.as_raw_fd(), path.as_ptr(), st.as_mut_ptr(), 0) };
    // SAFETY: fstatat succeeded, so it filled `st`.
    (rc == 0).then(|| unsafe { st.assume_init() })
}

impl CachedFile {
    fn etag(&self) -> &[u8] {
        &self.etag[..self.etag_len]
    }

    fn mtime_secs(&self) -> u64 {
        self.mtime.max(0) as u64
    }

    /// Whether the path still names the same, unchanged file (one `fstatat`).
    fn still_valid(&self, root: &OwnedFd) -> bool {
        let Some(st) = stat_at(root, &self.opened) else {
            return false;
        };
        let same = st.st_dev == self.dev
            && st.st_ino == self.ino
            && st.st_size as u64 == self.size
            && st.st_mtime == self.mtime
            && st.st_mtime_nsec == self.mtime_nsec;
        same && (!self.siblings_checked || self.siblings_unchanged(root))
    }

    /// Every sibling still there and unchanged, and none new (one stat per coding).
    fn siblings_unchanged(&self, root: &OwnedFd) -> bool {
        Coding::PREFERENCE.iter().all(|&coding| {
            let name = [self.opened.as_bytes(), coding.suffix()].concat();
            let now = CString::new(name)
                .ok()
                .and_then(|c| stat_at(root, &c))
                .filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG);
            let was = self.siblings.iter().find(|s| s.coding == coding);
            match (now, was) {
                (Some(st), Some(s)) => identity(&st) == s.stat,
                (None, None) => true,
                _ => false,
            }
        })
    }
}

/// A bounded map from path to open file, evicting with the clock algorithm (an LRU
/// approximation with no list to update on a hit).
struct OpenFileCache {
    entries: Vec<CachedFile>,
    index: HashMap<Vec<u8>, usize>,
    hand: usize,
    /// Next entry `expire_one` looks at.
    sweep: usize,
    capacity: usize,
    valid_for: Duration,
    inactive: Duration,
}

impl OpenFileCache {
    fn new(capacity: usize, valid_for: Duration) -> Self {
        OpenFileCache {
            entries: Vec::new(),
            index: HashMap::new(),
            hand: 0,
            sweep: 0,
            capacity: capacity.max(1),
            valid_for,
            inactive: CACHE_INACTIVE.max(valid_for),
        }
    }

    /// The entry for `key`, if present and still valid at `now` (revalidated with one
    /// stat when older than the interval; dropped if the file changed).
    fn get(&mut self, key: &[u8], now: Instant, root: &OwnedFd) -> Option<usize> {
        let &i = self.index.get(key)?;
        let e = &mut self.entries[i];
        if now.duration_since(e.checked) >= self.valid_for {
            if !e.still_valid(root) {
                self.remove(i);
                return None;
            }
            e.checked = now;
        }
        e.referenced = true;
        Some(i)
    }

    fn insert(&mut self, entry: CachedFile) -> usize {
        if self.entries.len() < self.capacity {
            self.index.insert(entry.key.clone(), self.entries.len());
            self.entries.push(entry);
            return self.entries.len() - 1;
        }
        // Bounded: at most two passes of the hand find an entry without a second chance.
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.entries.len();
            if std::mem::take(&mut self.entries[i].referenced) {
                continue;
            }
            self.index.remove(&self.entries[i].key);
            self.index.insert(entry.key.clone(), i);
            self.entries[i] = entry;
            return i;
        }
    }

    /// Close one entry unused for `inactive`, if the sweep finds one. `checked` moves on
    /// at least every `valid_for` while an entry is used, so an old `checked` means idle.
    fn expire_one(&mut self, now: Instant) {
        if self.entries.is_empty() {
            return;
        }
        self.sweep %= self.entries.len();
        if now.duration_since(self.entries[self.sweep].checked) >= self.inactive {
            self.remove(self.sweep);
        } else {
            self.sweep += 1;
        }
    }

    /// Drop entry `i`, moving the last entry into its place.
    fn remove(&mut self, i: usize) {
        let gone = self.entries.swap_remove(i);
        self.index.remove(&gone.key);
        if let Some(moved) = self.entries.get(i) {
            self.index.insert(moved.key.clone(), i);
        }
        if self.hand >= self.entries.len() {
            self.hand = 0;
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

impl StaticFiles {
    pub fn new(root: &Path) -> io::Result<Self> {
        Self::with_cache(root, DEFAULT_CACHE_ENTRIES, DEFAULT_CACHE_VALID)
    }

    /// Like [`StaticFiles::new`], with `entries` open files kept per worker, each trusted
    /// for `valid_for` before a stat checks it again.
    pub fn with_cache(root: &Path, entries: usize, valid_for: Duration) -> io::Result<Self> {
        let c = CString::new(root.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        // SAFETY: c is a valid C string; open returns a new fd or -1.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(StaticFiles {
            // SAFETY: fd is a fresh descriptor we own.
            root: Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }),
            cache: OpenFileCache::new(entries, valid_for),
            bodies: FileBodies::default(),
            precompressed: false,
            compression: Compression::default(),
            opener: Opener::new()?,
        })
    }

    /// How bodies go out (see [`FileBodies`]).
    pub fn bodies(mut self, bodies: FileBodies) -> Self {
        self.bodies = bodies;
        self
    }

    /// Serve precompressed siblings (`a.js.br`, `a.js.zst`, `a.js.gz`) to clients whose
    /// `Accept-Encoding` takes them (nginx's `gzip_static`).
    pub fn precompressed(mut self, on: bool) -> Self {
        self.precompressed = on;
        self
    }

    /// Compress compressible files on the fly (see [`Compression`]).
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }

    fn open_settings(&self) -> OpenSettings {
        OpenSettings {
            memory_max: self.bodies.memory_max,
            precompressed: self.precompressed,
            compression: self.compression,
        }
    }

    pub fn serve(&mut self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) {
        if resp.only_get_and_head(req.method()) {
            return;
        }
        let mut key = match decode_path(req.path()) {
            Ok(r) => r,
            Err(why) => return refuse(req, resp, why),
        };
        // Content codings are chosen here, per file; the writer's own compression is for
        // answers from memory only.
        resp.compress = None;
        let accepted = (self.precompressed || self.compression.is_on())
            .then(|| Accepted::parse(req.header("Accept-Encoding")));
        let slash = req.path().ends_with('/');
        if slash {
            key.push(b'/');
        }
        let now = Instant::now();
        let i = match self.cache.get(&key, now, &self.root) {
            Some(i) => i,
            None => match self.opener.done.remove(&key) {
                Some(Ok(entry)) => self.cache.insert(entry),
                Some(Err(why)) => return refuse(req, resp, why),
                None => {
                    let settings = self.open_settings();
                    if self.opener.ask(&self.root, settings, &key, slash) {
                        return resp.defer();
                    }
                    // No opener thread: open here, blocking, rather than never.
                    match open_entry(&self.root, settings, key, slash, now) {
                        Ok(entry) => self.cache.insert(entry),
                        Err(why) => return refuse(req, resp, why),
                    }
                }
            },
        };
        let entry = &self.cache.entries[i];
        answer(entry, self.bodies.splice, accepted.as_ref(), req, resp);
        self.cache.expire_one(now);
    }

    /// The eventfd that is readable when the opener has answered (see the module doc).
    pub fn wake_fd(&self) -> RawFd {
        self.opener.wake.as_raw_fd()
    }

    /// The opener's eventfd was readable: take its answers, for the deferred requests.
    pub fn on_wake(&mut self) {
        self.opener.on_wake();
    }

    /// Open files held now (for tests and metrics).
    pub fn cached_files(&self) -> usize {
        self.cache.len()
    }
}

/// Open the file for `key` beneath `root` (a directory answers with its `index.html`)
/// and describe it for the cache. Runs on the opener thread: it may block.
fn open_entry(
    root: &OwnedFd,
    settings: OpenSettings,
    key: Vec<u8>,
    slash: bool,
    now: Instant,
) -> Result<CachedFile, NoFile> {
    let rel = if slash {
        &key[..key.len() - 1]
    } else {
        &key[..]
    };
    let mut opened = if rel.is_empty() {
        b".".to_vec()
    } else {
        rel.to_vec()
    };
    let mut file = open_beneath(root, &opened)?;
    let mut meta = file.metadata().map_err(|_| NoFile::NotFound)?;
    if meta.is_dir() {
        if !slash {
            return Err(NoFile::DirectoryWithoutSlash);
        }
        if rel.is_empty() {
            opened.clear();
        } else {
            opened.push(b'/');
        }
        opened.extend_from_slice(b"index.html");
        file = open_beneath(root, &opened)?;
        meta = file.metadata().map_err(|_| NoFile::NotFound)?;
    }
    if !meta.is_file() {
        return Err(NoFile::NotFound);
    }
    let secs = meta.mtime().max(0) as u64;
    let mut etag = [0u8; 40];
    let etag_len = format_etag(&mut etag, secs, meta.size()).len();
    let last_modified = http_date(secs);
    let memory_max = settings.memory_max;
    let bytes = if meta.size() <= memory_max {
        snapshot(&file, &meta)
    } else {
        None
    };
    let ctype = content_type(&opened);
    let siblings = match settings.precompressed {
        true => open_siblings(root, &opened, memory_max),
        false => Vec::new(),
    };
    let compressed = compress_file(&file, &meta, bytes.as_deref(), ctype, &settings.compression);
    Ok(CachedFile {
        bytes,
        siblings,
        siblings_checked: settings.precompressed,
        compressed,
        ctype,
        opened: CString::new(opened).map_err(|_| NoFile::BadPath)?,
        key,
        file: Arc::new(file),
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec(),
        etag,
        etag_len,
        last_modified,
        checked: now,
        referenced: true,
    })
}

/// The `Last-Modified` form of a time in seconds since the epoch.
fn http_date(secs: u64) -> [u8; 29] {
    *DateCache::new().get(UNIX_EPOCH + Duration::from_secs(secs))
}

/// The precompressed siblings of `opened` that exist as regular files.
fn open_siblings(root: &OwnedFd, opened: &[u8], memory_max: u64) -> Vec<Sibling> {
    let mut found = Vec::new();
    for coding in Coding::PREFERENCE {
        let name = [opened, coding.suffix()].concat();
        let Ok(file) = open_beneath(root, &name) else {
            continue;
        };
        let Ok(meta) = file.metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let mtime_secs = meta.mtime().max(0) as u64;
        let mut etag = [0u8; 40];
        let etag = format_etag(&mut etag, mtime_secs, meta.size()).to_vec();
        let bytes = (meta.size() <= memory_max)
            .then(|| snapshot(&file, &meta))
            .flatten();
        found.push(Sibling {
            coding,
            stat: meta_identity(&meta),
            size: meta.size(),
            mtime_secs,
            etag,
            last_modified: http_date(mtime_secs),
            bytes,
            file: Arc::new(file),
        });
    }
    found
}

/// The file compressed with each configured coding, when its type and size qualify
/// (kept only where smaller). Read whole here, on the opener thread.
fn compress_file(
    file: &File,
    meta: &std::fs::Metadata,
    bytes: Option<&[u8]>,
    ctype: &[u8],
    c: &Compression,
) -> Vec<(Coding, Box<[u8]>)> {
    let size = meta.size();
    if !c.is_on() || size == 0 || size < c.min_length || size > c.max_length {
        return Vec::new();
    }
    if !compress::compressible(ctype) {
        return Vec::new();
    }
    let read;
    let raw = match bytes {
        Some(b) => b,
        None => match snapshot(file, meta) {
            Some(b) => {
                read = b;
                &read[..]
            }
            None => return Vec::new(),
        },
    };
    Coding::PREFERENCE
        .iter()
        .filter(|&&coding| c.codings.contains(coding))
        .filter_map(|&coding| {
            let z = compress::compress(coding, raw, Effort::Cached)?;
            (z.len() < raw.len()).then(|| (coding, z.into_boxed_slice()))
        })
        .collect()
}

fn open_beneath(root: &OwnedFd, rel: &[u8]) -> Result<File, NoFile> {
    let c = CString::new(rel).map_err(|_| NoFile::BadPath)?;
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_BENEATH: u64 = 0x08;
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 reads `how` (size given) and the C string; returns an fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => NoFile::Forbidden,
            _ => NoFile::NotFound,
        });
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { File::from_raw_fd(fd as i32) })
}

/// The whole file in memory, if it reads back as the size and mtime `meta` describe
/// (a file written meanwhile is streamed instead, never cached half old, half new).
fn snapshot(file: &File, meta: &std::fs::Metadata) -> Option<Box<[u8]>> {
    use std::os::unix::fs::FileExt;
    let mut b = vec![0u8; meta.size() as usize];
    file.read_exact_at(&mut b, 0).ok()?;
    let now = file.metadata().ok()?;
    let same = now.size() == meta.size()
        && now.mtime() == meta.mtime()
        && now.mtime_nsec() == meta.mtime_nsec();
    same.then(|| b.into_boxed_slice())
}

/// One representation of a file: the file itself, a precompressed sibling, or the file
/// compressed on the fly (bytes only, no ranges).
struct Representation<'a> {
    file: &'a Arc<File>,
    bytes: Option<&'a [u8]>,
    size: u64,
    mtime_secs: u64,
    etag: &'a [u8],
    last_modified: &'a [u8; 29],
    encoding: Option<Coding>,
    ranges: bool,
}

/// The representation of `f` to send for a request accepting `accepted` (`None`: no
/// content coding is on): a sibling first, then an on-the-fly one (not for a range
/// request: a range is of the file's own bytes), else the file.
fn choose<'a>(
    f: &'a CachedFile,
    accepted: Option<&Accepted>,
    weak: &'a mut Vec<u8>,
    ranged: bool,
) -> Representation<'a> {
    let plain = Representation {
        file: &f.file,
        bytes: f.bytes.as_deref(),
        size: f.size,
        mtime_secs: f.mtime_secs(),
        etag: f.etag(),
        last_modified: &f.last_modified,
        encoding: None,
        ranges: true,
    };
    let Some(accepted) = accepted else {
        return plain;
    };
    let mut available = Codings::NONE;
    for s in &f.siblings {
        available = available.with(s.coding);
    }
    if !ranged {
        for (c, _) in &f.compressed {
            available = available.with(*c);
        }
    }
    let Some(coding) = accepted.choose(available) else {
        return plain;
    };
    if let Some(s) = f.siblings.iter().find(|s| s.coding == coding) {
        return Representation {
            file: &s.file,
            bytes: s.bytes.as_deref(),
            size: s.size,
            mtime_secs: s.mtime_secs,
            etag: &s.etag,
            last_modified: &s.last_modified,
            encoding: Some(coding),
            ranges: true,
        };
    }
    match f.compressed.iter().find(|(c, _)| *c == coding) {
        Some((_, z)) => {
            *weak = compress::weak_etag(f.etag());
            Representation {
                bytes: Some(z),
                size: z.len() as u64,
                etag: weak,
                encoding: Some(coding),
                ranges: false,
                ..plain
            }
        }
        None => plain,
    }
}

/// Answer a request for a file we have: 304, 206, 416 or 200. A small file's bytes come
/// from memory, in the same send as the head; a larger one streams (spliced if `splice`).
/// A file with other representations (precompressed or compressed) answers with `Vary:
/// Accept-Encoding` whichever it sends.
fn answer(
    f: &CachedFile,
    splice: bool,
    accepted: Option<&Accepted>,
    req: &Request<'_>,
    resp: &mut ResponseWriter<'_>,
) {
    let range_field = req.header("Range");
    let mut weak = Vec::new();
    let r = choose(f, accepted, &mut weak, range_field.is_some());
    let (etag, size) = (r.etag, r.size);
    let vary = !f.siblings.is_empty() || !f.compressed.is_empty();
    // The fields after the first `fixed`: Content-Encoding and Vary, when they apply.
    let mut extra: [(&str, &[u8]); 2] = [("", b""); 2];
    let mut n_extra = 0;
    if let Some(c) = r.encoding {
        extra[n_extra] = ("Content-Encoding", c.token().as_bytes());
        n_extra += 1;
    }
    if vary {
        extra[n_extra] = ("Vary", b"Accept-Encoding");
        n_extra += 1;
    }
    if not_modified(req, etag, r.mtime_secs) {
        let mut h: [(&str, &[u8]); 3] = [
            ("ETag", etag),
            ("Last-Modified", r.last_modified),
            ("", b""),
        ];
        let n = 2 + vary as usize;
        h[2] = ("Vary", b"Accept-Encoding");
        return resp.respond(304, &h[..n], b"");
    }
    let range = match range_field {
        Some(v) if r.ranges && if_range_ok(req, etag, r.last_modified) => parse_range(v, size),
        _ => RangeAnswer::Full,
    };
    // Content-Type, Last-Modified, ETag, Accept-Ranges (not for an on-the-fly body),
    // then the extras, then Content-Range for a 206.
    let mut h: [(&str, &[u8]); 7] = [("", b""); 7];
    h[..3].copy_from_slice(&[
        ("Content-Type", f.ctype),
        ("Last-Modified", r.last_modified),
        ("ETag", etag),
    ]);
    let mut n = 3;
    if r.ranges {
        h[n] = ("Accept-Ranges", b"bytes");
        n += 1;
    }
    h[n..n + n_extra].copy_from_slice(&extra[..n_extra]);
    n += n_extra;
    match range {
        RangeAnswer::Full => match r.bytes {
            Some(b) => resp.respond(200, &h[..n], b),
            None => {
                let body = FileBody::new(r.file.clone(), 0, size).zero_copy(splice);
                resp.respond_file(200, &h[..n], body)
            }
        },
        RangeAnswer::Partial(start, end) => {
            let cr = format!("bytes {start}-{end}/{size}");
            h[n] = ("Content-Range", cr.as_bytes());
            n += 1;
            match r.bytes {
                Some(b) => resp.respond(206, &h[..n], &b[start as usize..=end as usize]),
                None => {
                    let body = FileBody::new(r.file.clone(), start, end - start + 1);
                    resp.respond_file(206, &h[..n], body.zero_copy(splice))
                }
            }
        }
        RangeAnswer::Unsatisfiable => {
            let cr = format!("bytes */{size}");
            resp.respond(
                416,
                &[
                    ("Content-Range", cr.as_bytes()),
                    ("Content-Type", b"text/plain"),
                ],
                b"Range Not Satisfiable\n",
            )
        }
    }
}

fn refuse(req: &Request<'_>, resp: &mut ResponseWriter<'_>, why: NoFile) {
    let (status, body): (u16, &[u8]) = match why {
        NoFile::BadPath => (400, b"Bad Request\n"),
        NoFile::Forbidden => (403, b"Forbidden\n"),
        NoFile::NotFound => (404, b"Not Found\n"),
        NoFile::DirectoryWithoutSlash => {
            let mut location = req.path().to_string();
            location.push('/');
            if let Some(q) = req.query() {
                location.push('?');
                location.push_str(q);
            }
            return resp.respond(
                301,
                &[
                    ("Location", location.as_bytes()),
                    ("Content-Type", b"text/plain"),
                ],
                b"Moved Permanently\n",
            );
        }
    };
    resp.respond(status, &[("Content-Type", b"text/plain")], body);
}

/// Percent-decode the path and reduce it to a relative path of plain segments. `..`
/// anywhere (after decoding) is refused; NUL is a 400.
fn decode_path(path: &str) -> Result<Vec<u8>, NoFile> {
    let raw = path.as_bytes();
    if raw.first() != Some(&b'/') {
        return Err(NoFile::BadPath);
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (
                raw.get(i + 1).and_then(|&c| hex(c)),
                raw.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(h), Some(l)) => decoded.push((h * 16 + l) as u8),
                _ => return Err(NoFile::BadPath),
            }
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    if decoded.contains(&0) {
        return Err(NoFile::BadPath);
    }
    let mut out = Vec::with_capacity(decoded.len());
    for seg in decoded.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => return Err(NoFile::NotFound),
            s => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(s);
            }
        }
    }
    Ok(out)
}

fn content_type(rel: &[u8]) -> &'static [u8] {
    let name = rel.rsplit(|&c| c == b'/').next().unwrap_or(b"");
    let ext = match name.iter().rposition(|&c| c == b'.') {
        Some(i) => &name[i + 1..],
        None => b"",
    };
    let lower: Vec<u8> = ext.to_ascii_lowercase();
    match &lower[..] {
        b"html" | b"htm" => b"text/html; charset=utf-8",
        b"css" => b"text/css; charset=utf-8",
        b"js" | b"mjs" => b"text/javascript; charset=utf-8",
        b"json" => b"application/json",
        b"txt" => b"text/plain; charset=utf-8",
        b"xml" => b"application/xml",
        b"svg" => b"image/svg+xml",
        b"png" => b"image/png",
        b"jpg" | b"jpeg" => b"image/jpeg",
        b"gif" => b"image/gif",
        b"webp" => b"image/webp",
        b"ico" => b"image/x-icon",
        b"wasm" => b"application/wasm",
        b"pdf" => b"application/pdf",
        b"woff" => b"font/woff",
        b"woff2" => b"font/woff2",
        b"mp4" => b"video/mp4",
        b"webm" => b"video/webm",
        b"mp3" => b"audio/mpeg",
        b"gz" => b"application/gzip",
        b"zip" => b"application/zip",
        b"tar" => b"application/x-tar",
        b"csv" => b"text/csv; charset=utf-8",
        b"md" => b"text/markdown; charset=utf-8",
        _ => b"application/octet-stream",
    }
}

fn format_etag(buf: &mut [u8; 40], secs: u64, size: u64) -> &[u8] {
    use std::io::Write;
    let mut cur = io::Cursor::new(&mut buf[..]);
    let _ = write!(cur, "\"{secs:x}-{size:x}\"");
    let n = cur.position() as usize;
    &buf[..n]
}

/// RFC 9110 13.1.2: If-None-Match wins over If-Modified-Since; weak comparison.
fn not_modified(req: &Request<'_>, etag: &[u8], mtime_secs: u64) -> bool {
    if let Some(inm) = req.header("If-None-Match") {
        return etag_list_matches(inm, etag);
    }
    if let Some(ims) = req.header("If-Modified-Since") {
        if let Some(t) = parse_http_date(ims) {
            return mtime_secs <= t;
        }
    }
    false
}

/// RFC 9110 8.8.3.2's weak comparison: the `W/` of either tag does not count.
fn etag_list_matches(list: &[u8], etag: &[u8]) -> bool {
    let etag = etag.strip_prefix(b"W/").unwrap_or(etag);
    list.split(|&c| c == b',').any(|item| {
        let item = item.trim_ascii();
        let item = item.strip_prefix(b"W/").unwrap_or(item);
        item == b"*" || item == etag
    })
}

fn if_range_ok(req: &Request<'_>, etag: &[u8], last_modified: &[u8]) -> bool {
    match req.header("If-Range") {
        None => true,
        Some(v) => {
            let v = v.trim_ascii();
            v == etag || v == last_modified
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeAnswer {
    Full,
    /// Inclusive byte positions.
    Partial(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range (RFC 9110 14.1.2). Several ranges or another unit: ignore the
/// header and send the whole file, which the RFC allows.
fn parse_range(value: &[u8], size: u64) -> RangeAnswer {
    let Some(spec) = value.trim_ascii().strip_prefix(b"bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(&b',') {
        return RangeAnswer::Full;
    }
    let Some(dash) = spec.iter().position(|&c| c == b'-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (spec[..dash].trim_ascii(), spec[dash + 1..].trim_ascii());
    let num = |s: &[u8]| -> Option<u64> {
        if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    if first.is_empty() {
        // Suffix range: the last N bytes.
        let Some(n) = num(last) else {
            return RangeAnswer::Full;
        };
        if n == 0 || size == 0 {
            return RangeAnswer::Unsatisfiable;
        }
        return RangeAnswer::Partial(size.saturating_sub(n), size - 1);
    }
    let Some(start) = num(first) else {
        return RangeAnswer::Full;
    };
    let end = if last.is_empty() {
        size.saturating_sub(1)
    } else {
        match num(last) {
            Some(e) if e >= start => e.min(size.saturating_sub(1)),
            _ => return RangeAnswer::Full,
        }
    };
    if start >= size {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Partial(start, end)
}

/// Parse an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into seconds since the epoch.
// TODO(common): a date parser belongs beside DateCache in common::http::date.
fn parse_http_date(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.len() != 29 || &v[3..5] != b", " || &v[25..] != b" GMT" {
        return None;
    }
    let n = |s: &[u8]| -> Option<u64> {
        s.iter().try_fold(0u64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u64)
        })
    };
    let day = n(&v[5..7])?;
    let month = match &v[8..11] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let year = n(&v[12..16])? as i64;
    let (h, m, s) = (n(&v[17..19])?, n(&v[20..22])?, n(&v[23..25])?);
    if h > 23 || m > 59 || s > 60 || day == 0 || day > 31 {
        return None;
    }
    // Days from civil (proleptic Gregorian), Howard Hinnant's well-known formula.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    if days < 0 {
        return None;
    }
    Some(days as u64 * 86400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses_escapes() {
        assert_eq!(decode_path("/a/b.txt").unwrap(), b"a/b.txt");
        assert_eq!(decode_path("/").unwrap(), b"");
        assert_eq!(decode_path("/a%20b").unwrap(), b"a b");
        assert_eq!(decode_path("/../etc/passwd"), Err(NoFile::NotFound));
        assert_eq!(decode_path("/%2e%2e/etc/passwd"), Err(NoFile::NotFound));
        assert_eq!(decode_path("/a/%2E%2E/%2e%2e/x"), Err(NoFile::NotFound));
        assert_eq!(decode_path("/a%00b"), Err(NoFile::BadPath));
        assert_eq!(decode_path("/a%zz"), Err(NoFile::BadPath));
        assert_eq!(decode_path("/./a//b").unwrap(), b"a/b");
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(b"bytes=0-9", 100), RangeAnswer::Partial(0, 9));
        assert_eq!(parse_range(b"bytes=90-", 100), RangeAnswer::Partial(90, 99));
        assert_eq!(parse_range(b"bytes=-10", 100), RangeAnswer::Partial(90, 99));
        assert_eq!(parse_range(b"bytes=-500", 100), RangeAnswer::Partial(0, 99));
        assert_eq!(
            parse_range(b"bytes=50-500", 100),
            RangeAnswer::Partial(50, 99)
        );
        assert_eq!(parse_range(b"bytes=100-", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=-0", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-1,5-6", 100), RangeAnswer::Full);
        assert_eq!(parse_range(b"items=0-1", 100), RangeAnswer::Full);
        assert_eq!(parse_range(b"bytes=9-3", 100), RangeAnswer::Full);
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(parse_http_date(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[test]
    fn etag_lists() {
        assert!(etag_list_matches(b"\"a\", W/\"b\"", b"\"b\""));
        assert!(etag_list_matches(b"*", b"\"b\""));
        assert!(!etag_list_matches(b"\"a\"", b"\"b\""));
    }

    /// A throwaway directory under the system temp dir, removed on drop.
    struct Dir(std::path::PathBuf);
    impl Dir {
        fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("static-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// GET `path` (with `extra` header lines) through `serve`: the output (head and any
    /// in-memory body) and the file body to stream, if any.
    fn serve_raw(files: &mut StaticFiles, path: &str, extra: &str) -> (Vec<u8>, Option<FileBody>) {
        serve_status(files, path, extra).1
    }

    fn serve_status(
        files: &mut StaticFiles,
        path: &str,
        extra: &str,
    ) -> (u16, (Vec<u8>, Option<FileBody>)) {
        with_request(path, extra, |req, w| {
            files.serve(req, w);
            // A miss is deferred: wait for the opener as the worker does, then ask again.
            if std::mem::take(&mut w.deferred) {
                wait_for_opener(files);
                files.serve(req, w);
                assert!(!w.deferred, "deferred twice");
            }
            let status = w.status.expect("answered");
            let file = w.file.take();
            (status, (w.h1_output().to_vec(), file))
        })
    }

    /// Parse GET `path` (with `extra` header lines) and hand it to `f` with a fresh
    /// keep-alive writer.
    fn with_request<R>(
        path: &str,
        extra: &str,
        f: impl FnOnce(&Request<'_>, &mut ResponseWriter<'_>) -> R,
    ) -> R {
        use uring_common::http::{new_header_storage, parse_request, Limits, Parsed};
        let raw = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
        let mut storage = new_header_storage();
        let Ok(Parsed::Complete(head)) =
            parse_request(raw.as_bytes(), &mut storage, &Limits::default())
        else {
            panic!("request for {path} did not parse");
        };
        let req = Request {
            head: &head,
            body: b"",
        };
        let mut out = Vec::new();
        let date = b"Thu, 01 Jan 1970 00:00:00 GMT";
        f(
            &req,
            &mut ResponseWriter::new(&mut out, date, false, true, false),
        )
    }

    /// Wait (at most 5 s) until the opener's eventfd is readable, then take its answers.
    fn wait_for_opener(files: &mut StaticFiles) {
        let mut pfd = libc::pollfd {
            fd: files.wake_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, live for the call.
        let n = unsafe { libc::poll(&mut pfd, 1, 5000) };
        assert_eq!(n, 1, "the opener never answered");
        files.on_wake();
    }

    /// Issue 9 (4h), issue 12: a miss is opened on the opener thread, never on the
    /// worker's: `serve` defers, the eventfd becomes readable, and the request asked again
    /// is answered (a 404 too); the same path asked twice meanwhile is opened once.
    #[test]
    fn a_miss_is_deferred_to_the_opener_thread() {
        let dir = Dir::new("opener");
        std::fs::write(dir.0.join("a.txt"), b"aaa").unwrap();
        let mut files = StaticFiles::new(&dir.0).unwrap();
        with_request("/a.txt", "", |req, w| {
            files.serve(req, w);
            assert!(w.deferred && w.status.is_none() && w.h1_output().is_empty());
            w.deferred = false;
            files.serve(req, w);
            assert!(w.deferred, "still in progress");
            assert_eq!(files.opener.asked.len(), 1, "asked once");
            wait_for_opener(&mut files);
            w.deferred = false;
            files.serve(req, w);
            assert_eq!(w.status, Some(200));
            assert!(w.h1_output().ends_with(b"aaa"));
        });
        assert_eq!(get(&mut files, "/nothing.txt").0, 404);
    }

    /// GET `path` through `serve`: the status and the body bytes, whichever way they go.
    fn get(files: &mut StaticFiles, path: &str) -> (u16, Vec<u8>) {
        use std::os::unix::fs::FileExt;
        let (status, (out, file)) = serve_status(files, path, "");
        let body = match file {
            Some(f) => {
                let mut b = vec![0u8; f.len as usize];
                f.file.read_exact_at(&mut b, f.offset).unwrap();
                b
            }
            // A small file's bytes follow the head in the output.
            None => match out.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(i) => out[i + 4..].to_vec(),
                None => Vec::new(),
            },
        };
        (status, body)
    }

    /// Issue 9 (4h): within the validity interval a hit neither opens nor stats: the
    /// file is served from the cached fd even after it was unlinked.
    #[test]
    fn hit_is_served_from_the_cached_fd() {
        let dir = Dir::new("hit");
        std::fs::write(dir.0.join("a.txt"), b"one").unwrap();
        let mut files = StaticFiles::with_cache(&dir.0, 8, Duration::from_secs(3600)).unwrap();
        assert_eq!(get(&mut files, "/a.txt"), (200, b"one".to_vec()));
        std::fs::remove_file(dir.0.join("a.txt")).unwrap();
        assert_eq!(get(&mut files, "/a.txt"), (200, b"one".to_vec()));
        assert_eq!(files.cached_files(), 1);
        // Each worker's clone starts with an empty cache of the same shape.
        let mut other = files.clone();
        assert_eq!(other.cached_files(), 0);
        assert_eq!(get(&mut other, "/a.txt").0, 404);
    }

    /// Issue 9 (4h), issue 12: a file replaced on disk (a rename over it, or rewritten in
    /// place with the same size) is served new once the validity interval has passed,
    /// from memory or streamed; a missing file is not cached.
    #[test]
    fn replaced_file_is_served_new_after_the_interval() {
        for (tag, memory_max) in [("replace-mem", 1 << 20), ("replace-stream", 0)] {
            let dir = Dir::new(tag);
            std::fs::write(dir.0.join("a.txt"), b"one").unwrap();
            std::fs::write(dir.0.join("b.txt"), b"bee").unwrap();
            std::fs::write(dir.0.join("index.html"), b"<p>1</p>").unwrap();
            let valid = Duration::from_millis(50);
            let mut files = StaticFiles::with_cache(&dir.0, 8, valid)
                .unwrap()
                .bodies(FileBodies {
                    memory_max,
                    splice: true,
                });
            assert_eq!(get(&mut files, "/a.txt"), (200, b"one".to_vec()));
            assert_eq!(get(&mut files, "/b.txt"), (200, b"bee".to_vec()));
            assert_eq!(get(&mut files, "/"), (200, b"<p>1</p>".to_vec()));
            for (name, new) in [("a.txt", &b"two, longer"[..]), ("index.html", b"<p>2</p>")] {
                let tmp = dir.0.join("tmp");
                std::fs::write(&tmp, new).unwrap();
                std::fs::rename(&tmp, dir.0.join(name)).unwrap();
            }
            // Same inode, same size: only the mtime tells.
            std::thread::sleep(Duration::from_millis(10));
            std::fs::write(dir.0.join("b.txt"), b"BEE").unwrap();
            std::thread::sleep(valid + Duration::from_millis(20));
            assert_eq!(get(&mut files, "/a.txt"), (200, b"two, longer".to_vec()));
            assert_eq!(get(&mut files, "/b.txt"), (200, b"BEE".to_vec()), "{tag}");
            assert_eq!(get(&mut files, "/"), (200, b"<p>2</p>".to_vec()));
            std::fs::remove_file(dir.0.join("a.txt")).unwrap();
            std::thread::sleep(valid + Duration::from_millis(20));
            assert_eq!(get(&mut files, "/a.txt").0, 404);
            assert_eq!(files.cached_files(), 2, "{tag}: the index and b are left");
        }
    }

    /// Issue 12: small files come from memory with the head (no file body to stream),
    /// ranges of them too; larger ones stream, spliced unless told otherwise.
    #[test]
    fn small_files_from_memory_larger_ones_streamed() {
        let dir = Dir::new("classes");
        std::fs::write(dir.0.join("s.txt"), b"0123456789").unwrap();
        std::fs::write(dir.0.join("l.txt"), vec![b'x'; 100]).unwrap();
        let bodies = FileBodies {
            memory_max: 50,
            splice: false,
        };
        let mut files = StaticFiles::new(&dir.0).unwrap().bodies(bodies);
        assert_eq!(get(&mut files, "/s.txt"), (200, b"0123456789".to_vec()));
        assert_eq!(get(&mut files, "/l.txt"), (200, vec![b'x'; 100]));
        let (mut out, file) = serve_raw(&mut files, "/s.txt", "Range: bytes=2-4\r\n");
        assert!(file.is_none());
        assert!(
            out.ends_with(b"\r\n\r\n234"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        out.clear();
        let (_, file) = serve_raw(&mut files, "/l.txt", "");
        let file = file.expect("streamed");
        assert!(!file.zero_copy, "splice off");
        let mut files = files.bodies(FileBodies::default());
        let (_, file) = serve_raw(&mut files, "/l.txt", "Range: bytes=10-\r\n");
        let file = file.expect("streamed");
        assert!(file.zero_copy);
        assert_eq!((file.offset, file.len), (10, 90));
    }

    /// Entries nobody asks for are closed after the inactive time, one per request.
    #[test]
    fn idle_entries_are_closed() {
        let dir = Dir::new("idle");
        std::fs::write(dir.0.join("a.txt"), b"a").unwrap();
        std::fs::write(dir.0.join("b.txt"), b"b").unwrap();
        let mut files = StaticFiles::with_cache(&dir.0, 8, Duration::from_millis(1)).unwrap();
        files.cache.inactive = Duration::from_millis(30);
        get(&mut files, "/a.txt");
        assert_eq!(files.cached_files(), 1);
        std::thread::sleep(Duration::from_millis(40));
        // Asking for b (a few times: the sweep looks at one entry per request) closes a.
        for _ in 0..3 {
            assert_eq!(get(&mut files, "/b.txt"), (200, b"b".to_vec()));
        }
        assert_eq!(files.cached_files(), 1);
        assert_eq!(get(&mut files, "/a.txt"), (200, b"a".to_vec()));
    }

    /// Issue 9 (4h): the cache holds at most its capacity, and evicted files are served
    /// correctly when asked for again.
    #[test]
    fn cache_is_bounded() {
        let dir = Dir::new("bounded");
        for i in 0..10 {
            std::fs::write(dir.0.join(format!("{i}.txt")), format!("file {i}")).unwrap();
        }
        let mut files = StaticFiles::with_cache(&dir.0, 4, Duration::from_secs(3600)).unwrap();
        for round in 0..3 {
            for i in 0..10 {
                let (status, body) = get(&mut files, &format!("/{i}.txt"));
                assert_eq!(
                    (status, body),
                    (200, format!("file {i}").into_bytes()),
                    "round {round}"
                );
                assert!(files.cached_files() <= 4);
            }
        }
        assert_eq!(files.cached_files(), 4);
    }

    /// Issue 23: siblings are found at open and checked with the file: one that appears,
    /// changes or goes away is seen after the validity interval; on-the-fly bodies are
    /// made once per file version and carry a weak tag.
    #[test]
    fn siblings_are_revalidated_with_their_file() {
        let dir = Dir::new("siblings");
        let text = b"some text to compress, some text to compress, some text".repeat(10);
        std::fs::write(dir.0.join("a.txt"), &text).unwrap();
        let valid = Duration::from_millis(50);
        let mut files = StaticFiles::with_cache(&dir.0, 8, valid)
            .unwrap()
            .precompressed(true);
        let gzip = "Accept-Encoding: gzip\r\n";
        let encoding = |out: &[u8]| {
            let head = String::from_utf8_lossy(out).to_ascii_lowercase();
            head.lines()
                .find_map(|l| l.strip_prefix("content-encoding: ").map(str::to_string))
        };
        let (out, _) = serve_raw(&mut files, "/a.txt", gzip);
        assert_eq!(encoding(&out), None);
        std::fs::write(dir.0.join("a.txt.gz"), b"GZ").unwrap();
        std::thread::sleep(valid + Duration::from_millis(20));
        let (out, _) = serve_raw(&mut files, "/a.txt", gzip);
        assert_eq!(
            encoding(&out).as_deref(),
            Some("gzip"),
            "a new sibling is seen"
        );
        assert!(out.ends_with(b"\r\n\r\nGZ"));
        std::thread::sleep(Duration::from_millis(10));
        std::fs::write(dir.0.join("a.txt.gz"), b"GZ2").unwrap();
        std::thread::sleep(valid + Duration::from_millis(20));
        let (out, _) = serve_raw(&mut files, "/a.txt", gzip);
        assert!(out.ends_with(b"\r\n\r\nGZ2"), "a changed sibling is seen");
        std::fs::remove_file(dir.0.join("a.txt.gz")).unwrap();
        std::thread::sleep(valid + Duration::from_millis(20));
        let (out, _) = serve_raw(&mut files, "/a.txt", gzip);
        assert_eq!(encoding(&out), None, "a removed sibling is seen");

        let on_the_fly = Compression {
            codings: Codings::parse_list("gzip").unwrap(),
            ..Compression::default()
        };
        // A new worker's cache (a clone), opening the file with compression on.
        let mut files = files.compression(on_the_fly).clone();
        let (out, _) = serve_raw(&mut files, "/a.txt", gzip);
        let head = String::from_utf8_lossy(&out);
        assert_eq!(encoding(&out).as_deref(), Some("gzip"));
        assert!(head.contains("ETag: W/\""), "{head}");
        assert!(!head.contains("Accept-Ranges"), "{head}");
        let (out, _) = serve_raw(
            &mut files,
            "/a.txt",
            "Range: bytes=0-3\r\nAccept-Encoding: gzip\r\n",
        );
        assert!(out.starts_with(b"HTTP/1.1 206") && out.ends_with(b"\r\n\r\nsome"));
        assert_eq!(encoding(&out), None, "a range is never compressed");
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(b"x/index.HTML"), b"text/html; charset=utf-8");
        assert_eq!(content_type(b"noext"), b"application/octet-stream");
    }
}
