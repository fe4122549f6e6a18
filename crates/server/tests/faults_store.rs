//! Fault: the database's disk becomes full while calls run (issue 6).
//!
//! Expected: calls keep being routed from the in-memory plan (every INVITE still gets its
//! 302), records are buffered within the bound and written when the disk has room again,
//! and records beyond the bound are counted as dropped, never lost silently.
//!
//! "Disk full" is made real without root-only tricks (root ignores chmod, and there is no
//! tiny tmpfs in CI): `setrlimit(RLIMIT_FSIZE)` makes every write past the limit fail with
//! EFBIG, exactly where SQLite appends WAL frames, and SIGXFSZ is ignored so the write
//! returns an error instead of killing the process. The limit is per process, so this file
//! holds ONE test (tests in one binary run as threads of one process).

mod support;

use std::time::{Duration, Instant};

use support::{Client, TestServer, ack_for, request, to_tag, unique_redirect_number};
use veertien_store::{CallRecord, Store, SubmitError, WriterConfig};

fn set_file_size_limit(limit: Option<u64>) {
    // SAFETY: plain libc calls on a stack value; SIG_IGN for SIGXFSZ has no handler state.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut r), 0);
        r.rlim_cur = limit.unwrap_or(r.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &r), 0, "setrlimit(RLIMIT_FSIZE)");
    }
}

/// One redirected call: INVITE → 302 → ACK. Returns the 302's latency.
async fn call(client: &Client, number: &str, n: usize) -> Duration {
    let uri = format!("sip:{number}@127.0.0.1");
    let (branch, cid) = (format!("z9hG4bK-disk-{n}"), format!("disk-{n}@test"));
    let t = Instant::now();
    client.send(request("INVITE", &uri, &branch, &cid, client.port()).as_bytes()).await;
    let r = client.final_for(&cid, Duration::from_secs(5)).await.expect("a final response within 5 s");
    let latency = t.elapsed();
    assert_eq!(r.status(), 302, "call {n} not routed: {} {}", r.status(), String::from_utf8_lossy(r.reason()));
    client.send(ack_for(&uri, &branch, &cid, client.port(), &to_tag(&r)).as_bytes()).await;
    latency
}

async fn wait_count(store: &Store, want: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let n = store.count_calls().await.unwrap_or(0);
        if n >= want || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_while_calls_run_buffers_records_and_counts_only_what_exceeds_the_bound() {
    // Part 1: the real server. Calls before, during and after a "disk full" outage.
    let ts = TestServer::start(|_| {}).await;
    let (number, _, _) = unique_redirect_number();
    let client = Client::new(ts.udp).await;
    let store = ts.server.store().expect("server runs with a store").clone();
    for n in 0..50 {
        call(&client, &number, n).await;
    }
    assert_eq!(wait_count(&store, 50, Duration::from_secs(10)).await, 50, "records before the outage");

    set_file_size_limit(Some(0));
    let mut during = Vec::new();
    for n in 50..250 {
        during.push(call(&client, &number, n).await);
    }
    // Give the writer time to try (and fail) a few times: nothing may reach the file.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = ts.server.engine().metrics();
    assert_eq!(m.redirected, 250, "every call was routed while the disk was full");
    assert_eq!(m.records_dropped, 0, "200 records fit the buffer: none may be dropped");

    set_file_size_limit(None);
    assert_eq!(
        wait_count(&store, 250, Duration::from_secs(30)).await,
        250,
        "buffered records are written once the disk has room again"
    );
    let db = ts.db_path();
    let _dir = ts.dir;
    let report = ts.server.shutdown().await;
    let rec = report.records.expect("writer metrics");
    assert_eq!((rec.written, rec.dropped, rec.buffered), (250, 0, 0), "{rec:?}");
    let ids: std::collections::HashSet<String> = {
        let reopened = Store::open(&db.to_string_lossy()).await.unwrap();
        let calls = reopened.list_calls(&veertien_store::CallFilter { limit: 1000, ..Default::default() }).await.unwrap();
        reopened.close().await;
        calls.into_iter().map(|c| c.sip_call_id).collect()
    };
    for n in 0..250 {
        assert!(ids.contains(&format!("disk-{n}@test")), "record of call {n} missing");
    }

    // Part 2: the bound. A writer with room for 4 queued + 8 buffered records is offered 100
    // while the disk is full: what does not fit is refused at submit and counted; everything
    // accepted is written once the disk is back.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bound.db").to_string_lossy()).await.unwrap();
    let writer = store.writer(WriterConfig {
        queue_capacity: 4,
        buffer_capacity: 8,
        batch_max: 4,
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        ..WriterConfig::default()
    });
    set_file_size_limit(Some(0));
    let (mut accepted, mut refused) = (0u64, 0u64);
    for n in 0..100 {
        let rec = CallRecord::received(format!("b-{n}"), format!("bound-{n}@test"), "fault", "0612345678", "140111", 1_700_000_000_000 + n);
        match writer.try_submit(rec) {
            Ok(()) => accepted += 1,
            Err(SubmitError::Full) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
        // Let the writer task move records from the queue into its retry buffer.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let m = writer.metrics();
    assert!(accepted <= 4 + 8 + 4, "accepted {accepted}: more than queue + buffer + one batch");
    assert!(refused >= 100 - 16, "refused {refused}");
    assert_eq!(m.dropped_full, refused, "every refused record is counted: {m:?}");
    assert!(!m.healthy && m.last_error.is_some(), "the failure is reported: {m:?}");
    set_file_size_limit(None);
    let m = writer.flush_and_close(Duration::from_secs(20)).await;
    assert_eq!(m.written, accepted, "{m:?}");
    assert_eq!(m.dropped, refused, "{m:?}");
    assert_eq!(store.count_calls().await.unwrap(), accepted);
    store.close().await;
}
