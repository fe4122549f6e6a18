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
//! queued, which under normal operation is the last few milliseconds of calls.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::CallRecord;
use crate::engine::{RecordSink, now_ms};

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
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_capacity: 10_000,
            buffer_capacity: 50_000,
            batch_max: 256,
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
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

/// Snapshot of the writer's counters. `submitted = written + buffered + dropped_rejected +
/// dropped_at_shutdown` at any quiet moment; `dropped_full` were never accepted.
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
    /// Still unwritten when `flush_and_close`'s deadline passed.
    pub dropped_at_shutdown: u64,
    /// Whether the last write attempt succeeded (false while the database is failing).
    pub healthy: bool,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
}

struct Item {
    rec: CallRecord,
    ack: Option<oneshot::Sender<()>>,
}

struct Shared {
    submitted: AtomicU64,
    written: AtomicU64,
    retry_buffered: AtomicU64,
    dropped_full: AtomicU64,
    dropped_rejected: AtomicU64,
    dropped_at_shutdown: AtomicU64,
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
    /// Spawns the writer task on the current tokio runtime.
    pub fn spawn<S: RecordSink>(sink: S, config: WriterConfig) -> RecordWriter {
        let config = WriterConfig {
            queue_capacity: config.queue_capacity.max(1),
            buffer_capacity: config.buffer_capacity.max(1),
            batch_max: config.batch_max.max(1),
            ..config
        };
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let shared = Arc::new(Shared {
            submitted: AtomicU64::new(0),
            written: AtomicU64::new(0),
            retry_buffered: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
            dropped_rejected: AtomicU64::new(0),
            dropped_at_shutdown: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            last_error: Mutex::new(None),
            last_drop_log_ms: AtomicI64::new(i64::MIN),
            close: Notify::new(),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(run(sink, rx, shared.clone(), config));
        *shared.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        RecordWriter { tx, shared }
    }

    /// Hands a record to the writer without waiting. Never blocks, never awaits.
    pub fn try_submit(&self, record: CallRecord) -> Result<(), SubmitError> {
        self.submit(Item { rec: record, ack: None })
    }

    /// As [`RecordWriter::try_submit`], plus an acknowledgement that resolves once the
    /// record is durable. The call path should not await it; it exists for callers that
    /// must report durability (tests, shutdown, tools).
    pub fn try_submit_durable(&self, record: CallRecord) -> Result<DurableAck, SubmitError> {
        let (ack_tx, ack_rx) = oneshot::channel();
        self.submit(Item { rec: record, ack: Some(ack_tx) })?;
        Ok(DurableAck(ack_rx))
    }

    fn submit(&self, item: Item) -> Result<(), SubmitError> {
        match self.tx.try_send(item) {
            Ok(()) => {
                self.shared.submitted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                let (err, call_id) = match &e {
                    mpsc::error::TrySendError::Full(i) => (SubmitError::Full, i.rec.call_id.clone()),
                    mpsc::error::TrySendError::Closed(i) => {
                        (SubmitError::Closed, i.rec.call_id.clone())
                    }
                };
                let total = self.shared.dropped_full.fetch_add(1, Ordering::Relaxed) + 1;
                self.log_drop(total, &call_id, err);
                Err(err)
            }
        }
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
        if let Some(mut task) = task {
            if tokio::time::timeout(deadline, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
                let queued = (self.tx.max_capacity() - self.tx.capacity()) as u64;
                let lost = queued + self.shared.retry_buffered.swap(0, Ordering::Relaxed);
                self.shared.dropped_at_shutdown.fetch_add(lost, Ordering::Relaxed);
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

async fn run<S: RecordSink>(
    mut sink: S,
    mut rx: mpsc::Receiver<Item>,
    shared: Arc<Shared>,
    cfg: WriterConfig,
) {
    let mut pending: VecDeque<Item> = VecDeque::new();
    let mut backoff = cfg.retry_initial;
    let mut closing = false;
    let mut failing_since: Option<i64> = None;
    // After a permanent (data) error, write one record per transaction until the batch
    // that failed has been gone through, so the bad record is found and only it dropped.
    let mut isolate = 0usize;

    loop {
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
                for mut item in pending.drain(..n) {
                    if let Some(ack) = item.ack.take() {
                        let _ = ack.send(());
                    }
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
                    shared.retry_buffered.store(pending.len() as u64, Ordering::Relaxed);
                    isolate = isolate.saturating_sub(1);
                    tracing::error!(
                        call_id = %item.rec.call_id,
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
}
