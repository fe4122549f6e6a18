//! What the record journal costs per call: the call path's `try_submit` and the whole
//! process's CPU (submitting thread + writer task: journal append, commit, segment rotation and
//! removal), journal off vs on, on a redirect record as the SIP service writes it.
//!
//!   cargo bench -p veertien-store --bench journal
//!
//! Plain timing, not criterion: the quantity is CPU per record across two threads while the
//! writer commits behind the submitter, which criterion's per-iteration model does not capture.
//! CPU time comes from /proc/self/task/*/schedstat (nanoseconds, every thread of the process).

use std::time::{Duration, Instant};

use veertien_store::{CallRecord, Delivery, Outcome, Store, WriterConfig};

const RECORDS: usize = 20_000;
const ROUNDS: usize = 5;

fn redirect(i: usize) -> CallRecord {
    let now = 1_763_900_000_000 + i as i64;
    let mut r = CallRecord::received(
        format!("kill-{i:08}-0000000000000000"),
        format!("{i}-4242@192.0.2.10"),
        "node-1",
        "0612345678",
        "14020",
        now,
    );
    r.normalised = Some("14020".into());
    r.area_code = Some("020".into());
    r.decision_kind = "forward".into();
    r.decision = serde_json::json!({"kind": "forward", "cbs": "GM0363", "destination": "+31202550000",
        "destination_configured": true, "via": "direct", "route": [{"step": "primary", "destination": "+31202550000"}]}).into();
    r.municipality_cbs = Some("GM0363".into());
    r.destination = Some("sip:+31202550000@127.0.0.1;user=phone".into());
    r.delivery = Some(Delivery::Redirect);
    r.decided_ms = Some(now);
    r.ended_ms = Some(now + 1);
    r.outcome = Some(Outcome::Redirected);
    r.sip_status = Some(302);
    r.post_dial_delay_ms = Some(1);
    r.route_steps = serde_json::json!([{"step": "primary", "destination": "+31202550000"}]).into();
    r
}

/// One mode's rounds: whether the journal is on, then per round the mean `try_submit` ns, the CPU ns
/// per record and the `try_submit` p99 ns.
type ModeRounds = (bool, Vec<f64>, Vec<f64>, Vec<u64>);

/// CPU nanoseconds used so far by every thread of this process.
fn process_cpu_ns() -> u64 {
    let mut total = 0;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            total += s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

fn main() {
    // cargo bench passes --bench; nothing else to parse.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let recs: Vec<CallRecord> = (0..RECORDS * ROUNDS * 2).map(redirect).collect();
    let mut next = 0;
    println!("{RECORDS} redirect records per round, {ROUNDS} rounds per mode, alternating; medians");
    let mut results: Vec<ModeRounds> = vec![(false, vec![], vec![], vec![]), (true, vec![], vec![], vec![])];
    for _ in 0..ROUNDS {
        for res in results.iter_mut() {
            let journal = res.0;
            let dir = tempfile::tempdir().unwrap();
            let batch: Vec<CallRecord> = recs[next..next + RECORDS].to_vec();
            next += RECORDS;
            let (submit_ns, cpu_ns, p99) = rt.block_on(async {
                let store = Store::open(dir.path().join("calls.db").to_str().unwrap()).await.unwrap();
                let w = store.writer(WriterConfig { journal, queue_capacity: RECORDS * 2, ..WriterConfig::default() });
                // Warm the connection and the journal's first segment.
                w.try_submit_durable(redirect(usize::MAX / 2)).unwrap().wait().await.unwrap();
                let mut lat = Vec::with_capacity(RECORDS);
                let cpu0 = process_cpu_ns();
                let t0 = Instant::now();
                for r in batch {
                    // The call path's own call: try_submit, no acknowledgement.
                    let s = Instant::now();
                    w.try_submit(r).unwrap();
                    lat.push(s.elapsed().as_nanos() as u64);
                    // ~ the pace of a busy node rather than a burst: let the writer interleave.
                    if lat.len() % 256 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                let submit = t0.elapsed();
                // FIFO: once this one is durable, every record before it is.
                w.try_submit_durable(redirect(usize::MAX / 3)).unwrap().wait().await.unwrap();
                let cpu = process_cpu_ns() - cpu0;
                let m = w.flush_and_close(Duration::from_secs(60)).await;
                assert_eq!(m.written as usize, RECORDS + 2);
                assert_eq!(m.journal.is_some(), journal);
                lat.sort_unstable();
                (submit.as_nanos() as f64 / RECORDS as f64, cpu as f64 / RECORDS as f64, lat[lat.len() * 99 / 100])
            });
            res.1.push(submit_ns);
            res.2.push(cpu_ns);
            res.3.push(p99);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    for (journal, mut submit, mut cpu, mut p99) in results {
        p99.sort_unstable();
        println!(
            "journal {:3}: try_submit {:6.2} µs mean per call (p99 {:6.2} µs); process CPU {:6.2} µs per record (submit + commit + journal upkeep)",
            if journal { "on" } else { "off" },
            med(&mut submit) / 1000.0,
            p99[p99.len() / 2] as f64 / 1000.0,
            med(&mut cpu) / 1000.0
        );
    }
}
