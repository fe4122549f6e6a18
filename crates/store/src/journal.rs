//! The record journal: no record of a finished call is lost when the process is killed.
//!
//! The writer commits records in batches behind a queue, off the call path; a process that is
//! SIGKILLed (or crashes, or is OOM-killed) loses everything still queued. So before a record
//! enters the queue, [`crate::RecordWriter`] appends it to the current journal segment with
//! **one `write(2)`** on an `O_APPEND` file. The call path submits before it sends the call's
//! final response, so every call the caller saw finish has its record either committed or in
//! the journal. A `write(2)` that returned is in the kernel's page cache, which survives the
//! death of the process; it does **not** survive a power loss or kernel crash (that would need
//! an fsync per call on the call path, ~0.6 ms on this disk; SQLite's commit is fsynced, so the
//! window on power loss is the records not yet committed: normally the last few milliseconds).
//!
//! Segments: `<dir>/<seq>.jsonl`, one JSON [`CallRecord`] per line (each line also starts with
//! a newline, so a torn write cannot glue itself to the next record). The writer task rotates
//! to a fresh segment once the current one is `rotate_bytes` long; a segment file is removed
//! when the last record appended to it has been committed (every queued record holds an `Arc`
//! of its segment; the file goes with the last reference). So the journal holds at most the
//! records in flight plus one segment: bounded by the writer's own bound.
//!
//! Start-up: segments left by a previous process are replayed into the database before (and
//! in between) new records, one segment at a time while the retry buffer has room. The upsert
//! by call id makes replay idempotent: a record already committed is written again unchanged
//! (the rollup triggers subtract the old row and add the new one). A lock file (`flock`) keeps
//! a second writer (another process on the same database) from replaying a live journal.
//!
//! Hand-written because no crate offers a per-record append log whose truncation follows
//! another component's commits; the file work is a handful of syscalls.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::CallRecord;
use crate::engine::now_ms;

const LOCK_FILE: &str = "LOCK";
const SUFFIX: &str = ".jsonl";

/// One segment file. Removed from disk when the last reference goes, unless a record in it
/// was dropped without being committed (see [`Hold`]): then it stays for the next start.
pub(crate) struct Segment {
    path: PathBuf,
    /// None for segments of a previous process (read, never appended to).
    file: Option<File>,
    bytes: AtomicU64,
    keep: AtomicBool,
}

/// A queued record's claim on its segment. [`Hold::release`] after the record was committed
/// (or refused by the database for good); a hold dropped any other way — the writer task
/// aborted at the shutdown deadline, the runtime torn down — marks the segment to be kept, so
/// the record is replayed at the next start instead of vanishing with the file.
pub(crate) struct Hold(Option<Arc<Segment>>);

impl Hold {
    pub(crate) fn release(mut self) {
        self.0.take();
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(seg) = self.0.take() {
            seg.keep.store(true, Ordering::Release);
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if !self.keep.load(Ordering::Acquire)
            && let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a committed record journal segment");
        }
    }
}

/// A segment of a previous process, waiting to be replayed.
pub(crate) struct OldSegment {
    pub path: PathBuf,
}

pub(crate) struct Journal {
    dir: PathBuf,
    current: Mutex<Option<Arc<Segment>>>,
    next_seq: AtomicU64,
    rotate_bytes: u64,
    pub(crate) errors: AtomicU64,
    last_error_log_ms: AtomicI64,
    /// Held for the journal's lifetime: the flock that makes this process the journal's owner.
    _lock: File,
}

/// Why the journal could not be opened; the writer then runs without one (and says so).
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("cannot create the record journal directory {dir}: {source}")]
    CreateDir { dir: String, source: std::io::Error },
    #[error("record journal {dir} is in use by another writer (another veertien process on the same database?)")]
    Locked { dir: String },
    #[error("record journal {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

fn seq_of(name: &str) -> Option<u64> {
    name.strip_suffix(SUFFIX)?.parse().ok()
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:012}{SUFFIX}"))
}

impl Journal {
    /// Takes the journal directory (creating it), lists the segments a previous process left
    /// (oldest first) and starts a fresh segment for this process.
    pub(crate) fn open(dir: &Path, rotate_bytes: u64) -> Result<(Journal, Vec<OldSegment>), OpenError> {
        let d = dir.display().to_string();
        std::fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir { dir: d.clone(), source })?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| OpenError::Io { path: lock_path.display().to_string(), source })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(OpenError::Locked { dir: d }),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(OpenError::Io { path: lock_path.display().to_string(), source });
            }
        }
        let mut old: Vec<(u64, PathBuf)> = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|source| OpenError::Io { path: d.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| OpenError::Io { path: d.clone(), source })?;
            if let Some(seq) = entry.file_name().to_str().and_then(seq_of) {
                old.push((seq, entry.path()));
            }
        }
        old.sort();
        let next = old.last().map_or(1, |(s, _)| s + 1);
        let journal = Journal {
            dir: dir.to_path_buf(),
            current: Mutex::new(None),
            next_seq: AtomicU64::new(next),
            rotate_bytes: rotate_bytes.max(1),
            errors: AtomicU64::new(0),
            last_error_log_ms: AtomicI64::new(i64::MIN),
            _lock: lock,
        };
        let first = journal.new_segment().map_err(|(path, source)| OpenError::Io { path, source })?;
        *journal.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(first);
        Ok((journal, old.into_iter().map(|(_, path)| OldSegment { path }).collect()))
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn new_segment(&self) -> Result<Arc<Segment>, (String, std::io::Error)> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let path = segment_path(&self.dir, seq);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| (path.display().to_string(), e))?;
        Ok(Arc::new(Segment { path, file: Some(file), bytes: AtomicU64::new(0), keep: AtomicBool::new(false) }))
    }

    /// Appends one record with a single `write(2)`; returns the segment the record is in, which
    /// the queued record holds until it is committed. None when the append failed (disk full,
    /// I/O error): the record is still accepted in memory and the failure counted and logged.
    pub(crate) fn append(&self, rec: &CallRecord) -> Option<Hold> {
        let seg = self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        // One line buffer per thread, reused: a fresh ~1 KiB vector per record was a "large"
        // request to glibc's malloc, which consolidates its fast bins first (perf, 2026-11-24).
        thread_local! {
            static LINE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(2048));
        }
        LINE.with_borrow_mut(|line| self.write_line(seg, rec, line))
    }

    fn write_line(&self, seg: Arc<Segment>, rec: &CallRecord, line: &mut Vec<u8>) -> Option<Hold> {
        line.clear();
        line.push(b'\n');
        if let Err(e) = serde_json::to_writer(&mut *line, rec) {
            self.error(&seg.path, &e.to_string());
            return None;
        }
        line.push(b'\n');
        let written = self.write_once(&seg, line);
        // Keep the buffer small after an outsized record (an IVR call's long dialogue log).
        if line.capacity() > 64 * 1024 {
            *line = Vec::with_capacity(2048);
        }
        written
    }

    fn write_once(&self, seg: &Arc<Segment>, line: &[u8]) -> Option<Hold> {
        let file = seg.file.as_ref().expect("the current segment is open for appending");
        // One write(2): O_APPEND makes concurrent appends from several threads land whole and
        // one after the other. A short write (disk full mid-line) leaves a torn line that replay
        // skips; the leading newline keeps it from swallowing the next record.
        match (&*file).write(line) {
            Ok(n) if n == line.len() => {
                seg.bytes.fetch_add(n as u64, Ordering::Relaxed);
                Some(Hold(Some(seg.clone())))
            }
            Ok(n) => {
                seg.bytes.fetch_add(n as u64, Ordering::Relaxed);
                self.error(&seg.path, &format!("short write ({n} of {} bytes)", line.len()));
                None
            }
            Err(e) => {
                self.error(&seg.path, &e.to_string());
                None
            }
        }
    }

    fn error(&self, path: &Path, msg: &str) {
        let total = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_ms();
        let last = self.last_error_log_ms.load(Ordering::Relaxed);
        if (last == i64::MIN || now - last >= 1000)
            && self.last_error_log_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::error!(
                path = %path.display(),
                error = msg,
                journal_errors = total,
                "call record not journaled (kept in memory; lost if the process dies before it is committed)"
            );
        }
    }

    /// Called by the writer task after a commit: starts a fresh segment once the current one
    /// is long enough. The old one is removed when its last queued record is committed.
    pub(crate) fn maybe_rotate(&self) {
        let due = {
            let cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
            cur.as_ref().is_some_and(|s| s.bytes.load(Ordering::Relaxed) >= self.rotate_bytes)
        };
        if !due {
            return;
        }
        match self.new_segment() {
            Ok(seg) => {
                let old = self.current.lock().unwrap_or_else(|p| p.into_inner()).replace(seg);
                drop(old);
            }
            // Keep appending to the current segment (it grows past the size; still bounded by
            // the writer's bound); try again after the next commit.
            Err((path, e)) => self.error(Path::new(&path), &format!("cannot start a new segment: {e}")),
        }
    }

    /// The writer wrote everything it accepted: the current segment is no longer needed.
    pub(crate) fn retire(&self) {
        let cur = self.current.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(cur);
    }

    /// Holds for the records of a previous process's segment: the file is removed once every
    /// one of them is committed.
    pub(crate) fn adopt(old: &OldSegment, records: usize) -> Vec<Hold> {
        let seg = Arc::new(Segment { path: old.path.clone(), file: None, bytes: AtomicU64::new(0), keep: AtomicBool::new(false) });
        (0..records).map(|_| Hold(Some(seg.clone()))).collect()
    }
}

/// Reads a previous process's segment. Lines that do not parse (a torn last write, a damaged
/// file) are skipped and reported by file and line number; they cannot be recovered.
pub(crate) fn read_segment(path: &Path) -> std::io::Result<(Vec<CallRecord>, Vec<String>)> {
    let data = std::fs::read(path)?;
    let mut records = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<CallRecord>(line) {
            Ok(r) => records.push(r),
            Err(e) => bad.push(format!("{}:{}: {e}", path.display(), i + 1)),
        }
    }
    Ok((records, bad))
}

/// The default journal directory of an SQLite database file: `<file>.records-journal` beside it
/// (not `<file>-journal`, which is SQLite's own rollback journal).
pub(crate) fn default_dir_for(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "calls.db".into());
    name.push(".records-journal");
    db.with_file_name(name)
}
