//! The bounded, non-blocking call record writer.
//!
//! Invariant: **the call path never waits on the database.** [`RecordWriter::try_submit`]
//! is a `try_send` on a bounded channel — no await, no lock held across I/O, no allocation
//! beyond the record itself. A background task drains the channel and writes batches in
//! one transaction each. When the database fails (unavailable, locked, disk full, file
//! moved), records stay in an in-memory retry buffer and are retried with exponential
//! backoff; the task keeps accepting new records until the buffer bound is reached, after
//! which the channel fills and further submits are refused and **counted** as dropped
//! (and logged) — never silently lost. Memory is bounded by
//! `queue_capacity + buffer_capacity` records.
//!
//! What "acknowledged" means: `try_submit` returning Ok means *accepted* (in memory, will
//! be written or its loss counted). A record is *durable* when the transaction containing
//! it has committed — with SQLite `synchronous=FULL` that means the WAL was fsynced.
//! [`RecordWriter::try_submit_durable`] returns a [`DurableAck`] that resolves at that
//! moment; a crash (SIGKILL, power loss) after that cannot lose the record. A crash can
//! lose records accepted but not yet durable: at most one batch in flight plus whatever is
//! queued, which under normal operation is the last few milliseconds of calls — unless the
//! record journal is on (the default beside an SQLite file, see [`crate::journal`]): then each
//! accepted record is first appended to the journal with one `write(2)`, and a process that is
//! killed loses none of them; they are replayed into the database at the next start.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::CallRecord;
use crate::engine::{RecordSink, now_ms};
use crate::journal::{self, Hold, Journal, OldSegment};

/// Writer tuning; the defaults suit one node at 10× the national peak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriterConfig {
    /// Records waiting for the writer task (the channel the call path submits into).
    pub queue_capacity: usize,
    /// Records held while the database is failing; beyond it records are dropped and counted.
    /// 50 000 records is ~20 minutes at 40 calls/s, days at the national average.
    pub buffer_capacity: usize,
    /// Records per transaction.
    pub batch_max: usize,
    /// After the first record of a quiet spell, wait this long for more before writing, so a
    /// steady trickle of calls shares transactions instead of paying one commit (and a round
    /// trip to the database thread) each. The journal has already made each record safe from
    /// a crash, so the wait only delays when a record shows in reports. Zero: write at once.
    #[serde(default = "default_linger", with = "millis")]
    pub batch_linger: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Journal every accepted record before it is queued, so a killed process loses none
    /// (see [`crate::journal`]). Off: records accepted but not yet committed die with the process.
    #[serde(default = "yes")]
    pub journal: bool,
    /// Where the journal lives. None: beside an SQLite database file (`<file>.records-journal`);
    /// a PostgreSQL store has no journal unless a directory is given.
    #[serde(default)]
    pub journal_dir: Option<PathBuf>,
    /// A journal segment is closed and a new one started once it is this long; a closed segment
    /// is removed when its last record is committed.
    #[serde(default = "default_rotate_bytes")]
    pub journal_rotate_bytes: u64,
}

fn yes() -> bool {
    true
}

fn default_linger() -> Duration {
    Duration::from_millis(10)
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

fn default_rotate_bytes() -> u64 {
    256 * 1024
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_capacity: 10_000,
            buffer_capacity: 50_000,
            batch_max: 256,
            batch_linger: default_linger(),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            journal: true,
            journal_dir: None,
            journal_rotate_bytes: default_rotate_bytes(),
        }
    }
}

/// Why a submit was refused; the record is counted as dropped either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("call record queue is full (database failing or too slow); record dropped and counted")]
    Full,
    #[error("call record writer is closed; record dropped and counted")]
    Closed,
}

/// The record was not made durable: dropped (rejected by the database as invalid, or
/// still unwritten at the shutdown deadline). It is counted in [`WriterMetrics::dropped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("call record was not written (dropped; see writer metrics)")]
pub struct Lost;

/// Resolves when the record is durable in the database.
#[derive(Debug)]
pub struct DurableAck(oneshot::Receiver<()>);

impl DurableAck {
    pub async fn wait(self) -> Result<(), Lost> {
        self.0.await.map_err(|_| Lost)
    }
}

/// Snapshot of the writer's counters. `submitted + replayed = written + buffered +
/// dropped_rejected + dropped_at_shutdown` at any quiet moment; `dropped_full` were never accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterMetrics {
    /// Accepted by `try_submit*`.
    pub submitted: u64,
    /// Committed to the database.
    pub written: u64,
    /// Accepted and not yet committed (queue + retry buffer).
    pub buffered: u64,
    /// All records lost: `dropped_full + dropped_rejected + dropped_at_shutdown`.
    pub dropped: u64,
    /// Refused at submit because queue and buffer were full.
    pub dropped_full: u64,
    /// Refused by the database as invalid (constraint/type), isolated so they don't block others.
    pub dropped_rejected: u64,
    /// Still unwritten when `flush_and_close`'s deadline passed. With a journal they are not
    /// lost: they stay in it and are written at the next start (then counted in `replayed`).
    pub dropped_at_shutdown: u64,
    /// Records read back from the journal a previous process left (killed, or stopped before
    /// everything was written) and queued for the database.
    #[serde(default)]
    pub replayed: u64,
    /// Journal lines that could not be read back (torn by a power loss or damaged); each is
    /// logged with its file and line.
    #[serde(default)]
    pub replay_unreadable: u64,
    /// Accepted records that could not be appended to the journal (disk full, I/O error): they
    /// are in memory only until committed.
    #[serde(default)]
    pub journal_errors: u64,
    /// The journal directory; None when the writer runs without a journal.
    #[serde(default)]
    pub journal: Option<String>,
    /// Whether the last write attempt succeeded (false while the database is failing).
    pub healthy: bool,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
}

struct Item {
    rec: CallRecord,
    ack: Option<oneshot::Sender<()>>,
    /// The journal segment holding this record, released once the record is committed.
    hold: Option<Hold>,
}

impl Item {
    fn release_journal(mut self) {
        if let Some(h) = self.hold.take() {
            h.release();
        }
    }

    /// The record is in the database: acknowledge it; its journal line may go.
    fn settle(mut self) {
        if let Some(ack) = self.ack.take() {
            let _ = ack.send(());
        }
        if let Some(h) = self.hold.take() {
            h.release();
        }
    }
}

struct Shared {
    submitted: AtomicU64,
    written: AtomicU64,
    retry_buffered: AtomicU64,
    dropped_full: AtomicU64,
    dropped_rejected: AtomicU64,
    dropped_at_shutdown: AtomicU64,
    replayed: AtomicU64,
    replay_unreadable: AtomicU64,
    journal: Option<Journal>,
    healthy: AtomicBool,
    last_error: Mutex<Option<(String, i64)>>,
    last_drop_log_ms: AtomicI64,
    close: Notify,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Shared {
    fn set_error(&self, msg: String) {
        self.healthy.store(false, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some((msg, now_ms()));
    }
}

/// Handle to the writer; clone freely (all clones feed the same task).
#[derive(Clone)]
pub struct RecordWriter {
    tx: mpsc::Sender<Item>,
    shared: Arc<Shared>,
}

impl RecordWriter {
    /// Spawns the writer task on the current tokio runtime. The journal is used when
    /// `config.journal` is on and `config.journal_dir` names a directory.
    pub fn spawn<S: RecordSink>(sink: S, config: WriterConfig) -> RecordWriter {
        Self::spawn_with_default_journal(sink, config, None)
    }

    /// As [`RecordWriter::spawn`]; `default_dir` is the engine's journal directory, used when
    /// the config names none. A journal that cannot be opened (directory not writable, in use by
    /// another process) is logged as an error and the writer runs without one.
    pub(crate) fn spawn_with_default_journal<S: RecordSink>(
        sink: S,
        config: WriterConfig,
        default_dir: Option<PathBuf>,
    ) -> RecordWriter {
        let config = WriterConfig {
            queue_capacity: config.queue_capacity.max(1),
            buffer_capacity: config.buffer_capacity.max(1),
            batch_max: config.batch_max.max(1),
            ..config
        };
        let mut old = Vec::new();
        let journal = match config.journal_dir.clone().or(default_dir).filter(|_| config.journal) {
            None => None,
            Some(dir) => match Journal::open(&dir, config.journal_rotate_bytes) {
                Ok((j, o)) => {
                    if !o.is_empty() {
                        tracing::info!(dir = %dir.display(), segments = o.len(), "replaying call records journaled by a previous run");
                    }
                    old = o;
                    Some(j)
                }
                Err(e) => {
                    tracing::error!(error = %e, "running without a call record journal: records not yet committed are lost if the process dies");
                    None
                }
            },
        };
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let shared = Arc::new(Shared {
            submitted: AtomicU64::new(0),
            written: AtomicU64::new(0),
            retry_buffered: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
            dropped_rejected: AtomicU64::new(0),
            dropped_at_shutdown: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            replay_unreadable: AtomicU64::new(0),
            journal,
            healthy: AtomicBool::new(true),
            last_error: Mutex::new(None),
            last_drop_log_ms: AtomicI64::new(i64::MIN),
            close: Notify::new(),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(run(sink, rx, shared.clone(), config, old.into()));
        *shared.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        RecordWriter { tx, shared }
    }

    /// Hands a record to the writer without waiting. Never blocks, never awaits; with the
    /// journal on, the record is appended to it (one `write(2)` to the page cache) before this
    /// returns, so submit before sending the call's final response.
    pub fn try_submit(&self, record: CallRecord) -> Result<(), SubmitError> {
        self.submit(record, None)
    }

    /// As [`RecordWriter::try_submit`], plus an acknowledgement that resolves once the
    /// record is durable. The call path should not await it; it exists for callers that
    /// must report durability (tests, shutdown, tools).
    pub fn try_submit_durable(&self, record: CallRecord) -> Result<DurableAck, SubmitError> {
        let (ack_tx, ack_rx) = oneshot::channel();
        self.submit(record, Some(ack_tx))?;
        Ok(DurableAck(ack_rx))
    }

    fn submit(&self, rec: CallRecord, ack: Option<oneshot::Sender<()>>) -> Result<(), SubmitError> {
        // Reserve the queue slot first: a refused record never reaches the journal (so a
        // replay cannot resurrect a record counted as dropped), and an accepted one is in the
        // journal before the writer task can see it, so its line can never outlive its commit
        // out of order.
        let permit = match self.tx.try_reserve() {
            Ok(p) => p,
            Err(e) => {
                let err = match e {
                    mpsc::error::TrySendError::Full(()) => SubmitError::Full,
                    mpsc::error::TrySendError::Closed(()) => SubmitError::Closed,
                };
                let total = self.shared.dropped_full.fetch_add(1, Ordering::Relaxed) + 1;
                self.log_drop(total, &rec.call_id, err);
                return Err(err);
            }
        };
        let hold = self.shared.journal.as_ref().and_then(|j| j.append(&rec));
        permit.send(Item { rec, ack, hold });
        self.shared.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Logs the first drop and then at most one line per second with the running total,
    /// so a long outage is visible in the log without flooding it.
    fn log_drop(&self, total: u64, call_id: &str, err: SubmitError) {
        let now = now_ms();
        let last = self.shared.last_drop_log_ms.load(Ordering::Relaxed);
        if (last == i64::MIN || now - last >= 1000)
            && self
                .shared
                .last_drop_log_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                dropped_total = total,
                call_id,
                error = %err,
                "call record dropped: writer queue and retry buffer are full"
            );
        }
    }

    pub fn metrics(&self) -> WriterMetrics {
        let s = &self.shared;
        let queued = (self.tx.max_capacity() - self.tx.capacity()) as u64;
        let dropped_full = s.dropped_full.load(Ordering::Relaxed);
        let dropped_rejected = s.dropped_rejected.load(Ordering::Relaxed);
        let dropped_at_shutdown = s.dropped_at_shutdown.load(Ordering::Relaxed);
        let last = s.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        WriterMetrics {
            submitted: s.submitted.load(Ordering::Relaxed),
            written: s.written.load(Ordering::Relaxed),
            buffered: queued + s.retry_buffered.load(Ordering::Relaxed),
            dropped: dropped_full + dropped_rejected + dropped_at_shutdown,
            dropped_full,
            dropped_rejected,
            dropped_at_shutdown,
            replayed: s.replayed.load(Ordering::Relaxed),
            replay_unreadable: s.replay_unreadable.load(Ordering::Relaxed),
            journal_errors: s.journal.as_ref().map_or(0, |j| j.errors.load(Ordering::Relaxed)),
            journal: s.journal.as_ref().map(|j| j.dir().display().to_string()),
            healthy: s.healthy.load(Ordering::Relaxed),
            last_error_ms: last.as_ref().map(|l| l.1),
            last_error: last.map(|l| l.0),
        }
    }

    /// Stops accepting records, writes everything accepted, and returns the final metrics.
    /// If the database does not take them before `deadline`, the rest are counted in
    /// `dropped_at_shutdown` and logged. Later calls (or calls from other clones) return
    /// the metrics at once.
    pub async fn flush_and_close(&self, deadline: Duration) -> WriterMetrics {
        self.shared.close.notify_one();
        let task = self.shared.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut task) = task
            && tokio::time::timeout(deadline, &mut task).await.is_err()
        {
            task.abort();
            let _ = task.await;
            let queued = (self.tx.max_capacity() - self.tx.capacity()) as u64;
            let lost = queued + self.shared.retry_buffered.swap(0, Ordering::Relaxed);
            self.shared.dropped_at_shutdown.fetch_add(lost, Ordering::Relaxed);
            if self.shared.journal.is_some() {
                tracing::error!(
                    not_written = lost,
                    ?deadline,
                    "call records not written before the shutdown deadline; they stay in the record journal and are written at the next start"
                );
            } else {
                tracing::error!(
                    lost,
                    ?deadline,
                    "call records not written before the shutdown deadline; counted as dropped"
                );
            }
        }
        let m = self.metrics();
        // Records still counted as queued after an abort are in `dropped_at_shutdown`.
        WriterMetrics { buffered: 0, ..m }
    }
}

/// Reads the next segment of a previous run into `pending`. A segment that cannot be read is
/// left on disk (logged) for an operator to look at; it is not removed.
fn replay_next(shared: &Shared, replay: &mut VecDeque<OldSegment>, pending: &mut VecDeque<Item>) {
    let Some(old) = replay.pop_front() else { return };
    match journal::read_segment(&old.path) {
        Ok((records, bad)) => {
            for line in &bad {
                tracing::error!(line = %line, "unreadable line in the call record journal; that record is lost");
            }
            shared.replay_unreadable.fetch_add(bad.len() as u64, Ordering::Relaxed);
            shared.replayed.fetch_add(records.len() as u64, Ordering::Relaxed);
            let holds = Journal::adopt(&old, records.len());
            for (rec, hold) in records.into_iter().zip(holds) {
                pending.push_back(Item { rec, ack: None, hold: Some(hold) });
            }
        }
        Err(e) => tracing::error!(path = %old.path.display(), error = %e, "cannot read a call record journal segment; left in place"),
    }
}

async fn run<S: RecordSink>(
    mut sink: S,
    mut rx: mpsc::Receiver<Item>,
    shared: Arc<Shared>,
    cfg: WriterConfig,
    mut replay: VecDeque<OldSegment>,
) {
    let mut pending: VecDeque<Item> = VecDeque::new();
    let mut backoff = cfg.retry_initial;
    let mut closing = false;
    let mut failing_since: Option<i64> = None;
    // After a permanent (data) error, write one record per transaction until the batch
    // that failed has been gone through, so the bad record is found and only it dropped.
    let mut isolate = 0usize;

    loop {
        // A previous run's records, a segment at a time while the retry buffer has room.
        while !replay.is_empty() && pending.len() < cfg.buffer_capacity {
            replay_next(&shared, &mut replay, &mut pending);
        }
        if pending.is_empty() {
            if closing {
                match rx.try_recv() {
                    Ok(i) => pending.push_back(i),
                    Err(_) => break,
                }
            } else {
                tokio::select! {
                    biased;
                    _ = shared.close.notified() => {
                        closing = true;
                        rx.close();
                        continue;
                    }
                    item = rx.recv() => match item {
                        Some(i) => pending.push_back(i),
                        // every handle dropped: nothing more can come
                        None => break,
                    }
                }
                // One timer per quiet spell, not a wake-up per record: what arrives meanwhile
                // waits in the channel and is drained below.
                if !closing && !cfg.batch_linger.is_zero() && failing_since.is_none() {
                    tokio::select! {
                        biased;
                        _ = shared.close.notified() => {
                            closing = true;
                            rx.close();
                        }
                        _ = tokio::time::sleep(cfg.batch_linger) => {}
                    }
                }
            }
        }
        while pending.len() < cfg.buffer_capacity {
            match rx.try_recv() {
                Ok(i) => pending.push_back(i),
                Err(_) => break,
            }
        }
        shared.retry_buffered.store(pending.len() as u64, Ordering::Relaxed);

        let n = if isolate > 0 { 1 } else { pending.len().min(cfg.batch_max) };
        let batch: Vec<&CallRecord> = pending.iter().take(n).map(|i| &i.rec).collect();
        let res = sink.write_batch(&batch).await;
        drop(batch);
        match res {
            Ok(()) => {
                for item in pending.drain(..n) {
                    item.settle();
                }
                if let Some(j) = &shared.journal {
                    j.maybe_rotate();
                }
                shared.written.fetch_add(n as u64, Ordering::Relaxed);
                shared.retry_buffered.store(pending.len() as u64, Ordering::Relaxed);
                shared.healthy.store(true, Ordering::Relaxed);
                isolate = isolate.saturating_sub(1);
                backoff = cfg.retry_initial;
                if let Some(since) = failing_since.take() {
                    tracing::info!(
                        target_db = %sink.describe(),
                        outage_ms = now_ms() - since,
                        still_buffered = pending.len(),
                        "call record store is writable again; writing buffered records"
                    );
                }
            }
            Err(e) if !e.is_transient() => {
                shared.set_error(e.to_string());
                if n == 1 {
                    let item = pending.pop_front().expect("batch came from pending");
                    shared.dropped_rejected.fetch_add(1, Ordering::Relaxed);
                    let call_id = item.rec.call_id.clone();
                    // Refused for good: replaying it would be refused again. The ack is
                    // dropped unsent, so a waiter learns the record was lost.
                    item.release_journal();
                    shared.retry_buffered.store(pending.len() as u64, Ordering::Relaxed);
                    isolate = isolate.saturating_sub(1);
                    tracing::error!(
                        call_id = %call_id,
                        error = %e,
                        "call record refused by the database; dropped and counted"
                    );
                } else {
                    isolate = n;
                }
            }
            Err(e) => {
                shared.set_error(e.to_string());
                if failing_since.is_none() {
                    failing_since = Some(now_ms());
                    tracing::error!(
                        target_db = %sink.describe(),
                        error = %e,
                        buffered = pending.len(),
                        "call record store failing; buffering records and retrying"
                    );
                } else {
                    tracing::warn!(
                        error = %e,
                        buffered = pending.len(),
                        retry_in = ?backoff,
                        "call record store still failing"
                    );
                }
                // Wait out the backoff while still taking records off the queue (up to the
                // buffer bound) so submitters keep getting room as long as memory allows.
                let sleep = tokio::time::sleep(backoff);
                tokio::pin!(sleep);
                loop {
                    let room = pending.len() < cfg.buffer_capacity;
                    tokio::select! {
                        _ = &mut sleep => break,
                        _ = shared.close.notified(), if !closing => {
                            closing = true;
                            rx.close();
                        }
                        item = rx.recv(), if room => match item {
                            Some(i) => {
                                pending.push_back(i);
                                shared.retry_buffered.store(pending.len() as u64, Ordering::Relaxed);
                            }
                            None => {
                                (&mut sleep).await;
                                break;
                            }
                        }
                    }
                }
                backoff = (backoff * 2).min(cfg.retry_max);
            }
        }
    }
    shared.retry_buffered.store(0, Ordering::Relaxed);
    // Everything accepted is committed (a previous run's segments not yet replayed stay).
    if replay.is_empty()
        && let Some(j) = &shared.journal
    {
        j.retire();
    }
}
