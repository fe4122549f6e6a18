//! Store benchmarks on a generated year of national 14+ traffic (12 million calls by
//! default, spread over the real municipalities of data/numberplan weighted by population,
//! office-hours heavy). The generated database is cached under the cargo target dir and
//! reused. Results and method: docs/PERFORMANCE-store.md.
//!
//!   cargo bench -p veertien-store --bench store
//!   VEERTIEN_BENCH_CALLS=1000000 cargo bench -p veertien-store --bench store   # smaller set

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::SeedableRng;
use veertien_store::*;

mod common;
use common::{municipalities, record};

const YEAR_START: i64 = 1_735_686_000_000; // 2025-01-01 00:00 Europe/Amsterdam
const DAY: i64 = 86_400_000;

/// Relative call volume per local hour: office hours dominate, nights are near zero.
fn hour_weight(weekday: i64, hour: i64) -> f64 {
    let base = match hour {
        8..=11 => 10.0,
        12..=16 => 8.0,
        17..=19 => 2.0,
        7 | 20..=22 => 0.8,
        _ => 0.1,
    };
    if weekday >= 5 { base * 0.15 } else { base }
}

/// (local day, hour of week) in Europe/Amsterdam, as the store derives them.
fn local_slot(ms: i64) -> (String, i64) {
    let tz = jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap();
    let z = jiff::Timestamp::from_millisecond(ms).unwrap().to_zoned(tz);
    (z.date().to_string(), z.weekday().to_monday_zero_offset() as i64 * 24 + z.hour() as i64)
}

/// Bulk generation in SQL: per hour of the year one INSERT … SELECT over a recursive CTE
/// (the per-row cost through sqlx + triggers would make 12 M rows take over an hour on this
/// box). The rollup triggers are dropped during the load and the rollups rebuilt afterwards
/// with the backfill statements of migration 0003 — the same result the triggers give, as
/// tests/sqlite.rs `rollups_agree_with_a_raw_scan` checks. Local day / hour of week are
/// computed per hour in Rust (Amsterdam offsets are whole hours).
fn generate(store_path: &Path, n: u64) {
    use sqlx::Connection;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(store_path.to_str().unwrap()).await.unwrap();
        store.close().await;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", store_path.display())).await.unwrap();
        let migration = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite/0003_call_rollups.sql"),
        )
        .unwrap();
        let backfill = &migration[migration.find("-- Backfill").unwrap()..];
        for t in ["calls_rollup_insert", "calls_rollup_update", "calls_rollup_delete"] {
            sqlx::query(&format!("DROP TRIGGER IF EXISTS {t}")).execute(&mut c).await.unwrap();
        }
        sqlx::query("PRAGMA synchronous=OFF").execute(&mut c).await.unwrap();
        sqlx::query("PRAGMA cache_size=-1000000").execute(&mut c).await.unwrap();
        sqlx::query("CREATE TEMP TABLE m (idx INTEGER PRIMARY KEY, cbs TEXT, area TEXT, fourteen TEXT, shared INTEGER, cum INTEGER)")
            .execute(&mut c).await.unwrap();
        let munis = municipalities();
        let mut cum = 0i64;
        for (i, m) in munis.iter().enumerate() {
            cum += m.weight as i64;
            sqlx::query("INSERT INTO m VALUES (?, ?, ?, ?, ?, ?)")
                .bind(i as i64).bind(&m.cbs).bind(&m.area_code).bind(&m.fourteen).bind(m.shared as i64).bind(cum)
                .execute(&mut c).await.unwrap();
        }
        sqlx::query("CREATE INDEX temp.m_cum ON m (cum)").execute(&mut c).await.unwrap();
        let mut hours = Vec::new();
        for h in 0..(365 * 24) {
            let weekday = (h / 24 + 2) % 7; // 2025-01-01 was a Wednesday (Mon = 0)
            hours.push(hour_weight(weekday, h % 24));
        }
        let total_w: f64 = hours.iter().sum();
        let t0 = Instant::now();
        let mut made = 0i64;
        let sql = include_str!("generate_hour.sql");
        for (h, w) in hours.iter().enumerate() {
            let count = ((w / total_w) * n as f64).round() as i64;
            if count == 0 {
                continue;
            }
            let start = YEAR_START + h as i64 * 3_600_000;
            let slot = local_slot(start);
            if h % 24 == 0 {
                sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            }
            sqlx::query(sql)
                .bind(count).bind(cum).bind(h as i64).bind(start).bind(&slot.0).bind(slot.1)
                .execute(&mut c).await.unwrap();
            if h % 24 == 23 {
                sqlx::query("COMMIT").execute(&mut c).await.unwrap();
            }
            made += count;
        }
        let load = t0.elapsed();
        sqlx::raw_sql(backfill).execute(&mut c).await.unwrap();
        let mut q = String::new();
        // Recreate the triggers exactly as the migration defines them.
        let start = migration.find("CREATE TRIGGER").unwrap();
        let end = migration.find("-- Backfill").unwrap();
        q.push_str(&migration[start..end]);
        sqlx::raw_sql(&q).execute(&mut c).await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut c).await.unwrap();
        eprintln!(
            "generated {made} calls: load {:.0} s, rollup rebuild {:.0} s",
            load.as_secs_f64(),
            t0.elapsed().as_secs_f64() - load.as_secs_f64()
        );
    });
}

fn dataset() -> (PathBuf, u64) {
    let n: u64 = std::env::var("VEERTIEN_BENCH_CALLS").ok().and_then(|s| s.parse().ok()).unwrap_or(12_000_000);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("veertien-store-bench");
    let path = dir.join(format!("year-{n}.db"));
    let done = dir.join(format!("year-{n}.done"));
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        generate(&path, n);
        std::fs::write(&done, b"").unwrap();
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!("dataset {} ({} MB)", path.display(), size / 1_000_000);
    (path, n)
}

fn queries(c: &mut Criterion) {
    let (path, _) = dataset();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(Store::open(path.to_str().unwrap())).unwrap();
    // June 2025 in local days (the portal asks for day-aligned periods; see PERFORMANCE-store.md).
    let month = StatsQuery {
        municipality: None,
        from_ms: local_day_start_ms("2025-06-01").unwrap(),
        to_ms: local_day_start_ms("2025-07-01").unwrap(),
    };
    let year = StatsQuery { municipality: None, from_ms: YEAR_START, to_ms: YEAR_START + 365 * DAY };
    let ams = Some("GM0363".to_string());
    let small = Some("GM1680".to_string()); // Aa en Hunze, ~26k inhabitants
    let sample = rt.block_on(store.list_calls(&CallFilter { from_ms: Some(month.from_ms), limit: 1, ..Default::default() })).unwrap();
    let some_id = sample[0].call_id.clone();
    let some_caller = sample[0].caller.clone();

    let f_recent = CallFilter::default();
    let f_ams = CallFilter { municipality: ams.clone(), ..Default::default() };
    let f_ams_na = CallFilter {
        municipality: ams.clone(),
        outcome: Some(Outcome::NoAnswer),
        from_ms: Some(month.from_ms),
        to_ms: Some(month.to_ms),
        ..Default::default()
    };
    let f_caller = CallFilter { number: Some(some_caller.clone()), ..Default::default() };
    let q_small_month = StatsQuery { municipality: small.clone(), ..month.clone() };
    let q_ams_month = StatsQuery { municipality: ams.clone(), ..month.clone() };
    let q_ams_year = StatsQuery { municipality: ams.clone(), ..year.clone() };

    let mut g = c.benchmark_group("calls");
    g.bench_function("list_recent_50_national", |b| {
        b.to_async(&rt).iter(|| store.list_calls(&f_recent))
    });
    g.bench_function("list_recent_50_amsterdam", |b| {
        b.to_async(&rt).iter(|| store.list_calls(&f_ams))
    });
    g.bench_function("list_50_amsterdam_no_answer_in_june", |b| {
        b.to_async(&rt).iter(|| store.list_calls(&f_ams_na))
    });
    g.bench_function("list_by_caller_number", |b| {
        b.to_async(&rt).iter(|| store.list_calls(&f_caller))
    });
    g.bench_function("get_call", |b| b.to_async(&rt).iter(|| store.get_call(&some_id)));
    g.finish();

    // The scan path (periods not on local midnights) is too slow for criterion's sampling
    // at national scale; time single runs.
    for (name, q) in [
        ("scan_month_amsterdam", StatsQuery { from_ms: q_ams_month.from_ms + 1, ..q_ams_month.clone() }),
        ("scan_month_national", StatsQuery { from_ms: month.from_ms + 1, ..month.clone() }),
        ("scan_year_national", StatsQuery { from_ms: year.from_ms + 1, ..year.clone() }),
    ] {
        if std::env::var_os("VEERTIEN_BENCH_SKIP_SCANS").is_some() {
            break;
        }
        let t = Instant::now();
        let s = rt.block_on(store.stats(&q)).unwrap();
        eprintln!("stats/{name}: {:.2} s (single run, {} calls in period)", t.elapsed().as_secs_f64(), s.current.calls);
    }

    let mut g = c.benchmark_group("stats");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("month_small_municipality", |b| {
        b.to_async(&rt).iter(|| store.stats(&q_small_month))
    });
    g.bench_function("month_amsterdam", |b| {
        b.to_async(&rt).iter(|| store.stats(&q_ams_month))
    });
    g.bench_function("month_national", |b| b.to_async(&rt).iter(|| store.stats(&month)));
    g.bench_function("year_amsterdam", |b| {
        b.to_async(&rt).iter(|| store.stats(&q_ams_year))
    });
    g.bench_function("year_national", |b| b.to_async(&rt).iter(|| store.stats(&year)));
    g.finish();
}

fn writer(_c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let munis = municipalities();
    let mut rng = StdRng::seed_from_u64(1);
    let recs: Vec<CallRecord> =
        (0..100_000).map(|i| record(&mut rng, i, &munis[i as usize % munis.len()], YEAR_START + i as i64)).collect();

    // Sustained throughput to disk, synchronous=FULL: submit 100k, time until all durable.
    rt.block_on(async {
        let store = Store::open(dir.path().join("t.db").to_str().unwrap()).await.unwrap();
        let w = store.writer(WriterConfig { queue_capacity: 200_000, ..WriterConfig::default() });
        let input: Vec<CallRecord> = recs.clone();
        let mut lat = Vec::with_capacity(input.len());
        let t0 = Instant::now();
        let mut last = None;
        for r in input {
            // Latency of the call-path operation itself, while the writer commits behind it.
            let s = Instant::now();
            last = Some(w.try_submit_durable(r).unwrap());
            lat.push(s.elapsed().as_nanos() as u64);
        }
        let submit = t0.elapsed();
        lat.sort_unstable();
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        eprintln!(
            "try_submit latency over {} submits: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
            lat.len(), pct(0.5), pct(0.99), pct(0.999), lat[lat.len() - 1]
        );
        last.unwrap().wait().await.unwrap();
        let all = t0.elapsed();
        let m = w.flush_and_close(Duration::from_secs(60)).await;
        eprintln!(
            "writer throughput: {} records durable in {:.2} s = {:.0} records/s (submitting took {:.1} ms); metrics {:?}",
            m.written,
            all.as_secs_f64(),
            m.written as f64 / all.as_secs_f64(),
            submit.as_secs_f64() * 1000.0,
            m
        );
    });
}

criterion_group!(benches, queries, writer);
criterion_main!(benches);
