//! CPU per call record as the server pays it: realistic records (the real municipalities
//! weighted by population, random callers, random carrier Call-IDs) submitted at a steady
//! rate through the server's writer (journal on, 50 ms batches, SQLite WAL synchronous=FULL),
//! after a prefill so the indexes are not trivially small. Prints the process CPU time
//! (user + system, getrusage) per record over the paced part and the bytes the process
//! wrote per record (`wchar` of /proc/self/io: journal, WAL and checkpoints). The redirect load
//! benchmark's default sends one number from one caller, which keeps every index append-only and
//! so understates this cost; this bench is the realistic figure.
//!
//!   cargo bench -p veertien-store --bench writer_cpu
//!   VEERTIEN_BENCH_RATE=200 VEERTIEN_BENCH_SECS=20 cargo bench -p veertien-store --bench writer_cpu
//!
//! `VEERTIEN_BENCH_LINGER_MS` and `VEERTIEN_BENCH_BATCH_MAX` override the writer's batch linger
//! and size (`[store] record_batch_ms`, `record_batch_max`).
//! `VEERTIEN_BENCH_SQL` is run on the database before the prefill, for A/B comparisons of the
//! schema (e.g. `CREATE INDEX calls_sip_call_id ON calls (sip_call_id)` brings back the index
//! migration 0007 dropped).

use std::time::{Duration, Instant};

use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use veertien_store::*;

mod common;
use common::{municipalities, record};

const START: i64 = 1_763_000_000_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn cpu_us() -> f64 {
    // SAFETY: getrusage only writes into the struct we hand it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 * 1e6 + v.tv_usec as f64;
    t(u.ru_utime) + t(u.ru_stime)
}

fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("wchar:").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rate = env_or("VEERTIEN_BENCH_RATE", 1000);
    let secs = env_or("VEERTIEN_BENCH_SECS", 10);
    let prefill = env_or("VEERTIEN_BENCH_PREFILL", 200_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let munis = municipalities();
    let by_population = WeightedIndex::new(munis.iter().map(|m| m.weight)).expect("populations are positive");
    let mut rng = StdRng::seed_from_u64(7);
    let mut next = 0u64;
    let mut make = |rng: &mut StdRng, at: i64| {
        let m = &munis[by_population.sample(rng)];
        let mut r = record(rng, next, m, at);
        r.sip_call_id = format!("{:016x}{:016x}@carrier.example", rng.random::<u64>(), rng.random::<u64>());
        next += 1;
        r
    };
    rt.block_on(async {
        let store = Store::open(db.to_str().unwrap()).await.unwrap();
        if let Ok(extra) = std::env::var("VEERTIEN_BENCH_SQL") {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
            sqlx::raw_sql(&extra).execute(&mut c).await.unwrap();
            eprintln!("ran VEERTIEN_BENCH_SQL: {extra}");
        }
        let fill = store.writer(WriterConfig { queue_capacity: 400_000, journal: false, ..WriterConfig::default() });
        let mut last = None;
        for i in 0..prefill {
            last = Some(fill.try_submit_durable(make(&mut rng, START + i as i64 * 10)).unwrap());
        }
        if let Some(l) = last {
            l.wait().await.unwrap();
        }
        fill.flush_and_close(Duration::from_secs(120)).await;

        // The server's writer: `[store] record_batch_ms` defaults to 250 ms and `record_batch_max`
        // to 2 048 (WriterConfig's own defaults, 10 ms and 256, are what library users get).
        let linger_ms = env_or("VEERTIEN_BENCH_LINGER_MS", 250);
        let batch_max = env_or("VEERTIEN_BENCH_BATCH_MAX", 2048) as usize;
        let cfg = WriterConfig { batch_linger: Duration::from_millis(linger_ms), batch_max, ..WriterConfig::default() };
        let linger = cfg.batch_linger;
        let w = store.writer(cfg);
        let n = rate * secs;
        // Submitted in 10 ms ticks, so the pacing loop's own wake-ups stay a small part of
        // what is measured (the server pays one wake-up per datagram, not per record).
        let ticks = secs * 100;
        let (c0, w0, t0) = (cpu_us(), written_bytes(), Instant::now());
        let mut sent = 0u64;
        for t in 1..=ticks {
            tokio::time::sleep_until((t0 + Duration::from_millis(10 * t)).into()).await;
            while sent < n * t / ticks {
                w.try_submit(make(&mut rng, START + (prefill + sent) as i64 * 10)).unwrap();
                sent += 1;
            }
        }
        let m = w.flush_and_close(Duration::from_secs(60)).await;
        let (cpu, wrote) = (cpu_us() - c0, written_bytes() - w0);
        println!(
            "writer_cpu: {n} records at {rate}/s after {prefill} prefilled, linger {linger:?}, at most {batch_max} per batch: \
             {:.1} us CPU per record, {:.1} KB written per record, wall {:.1} s, written {}",
            cpu / n as f64,
            wrote as f64 / 1024.0 / n as f64,
            t0.elapsed().as_secs_f64(),
            m.written
        );
    });
}
