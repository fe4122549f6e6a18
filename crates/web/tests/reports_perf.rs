//! Response times of the management-information pages, CSV exports and JSON figures on one
//! million call records in SQLite (docs/REPORTS.md "Performance" has the figures and machine).
//! A measurement, not a test of a threshold: it prints a table and asserts only that every
//! answer is complete and correct in shape. Ignored by default (it generates ~1 GB of data):
//!
//! ```sh
//! cargo test -p veertien-web --test reports_perf -- --ignored --nocapture
//! VEERTIEN_PERF_CALLS=200000 cargo test -p veertien-web --test reports_perf -- --ignored --nocapture
//! ```
//!
//! The records are generated with the `sqlite3` shell (one `INSERT … SELECT` over a recursive
//! sequence per hour), because a million records through the writer takes minutes on the shared
//! box; the rollup triggers of migrations 0003/0004 fire for every row exactly as for the
//! writer, so the rollups the pages read are the real ones. The database is kept under the cargo
//! target dir and reused.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use common::*;
use veertien_store::Store;
use veertien_web::{AppState, Role, add_user};

const DAY: i64 = 86_400_000;

/// Office hours dominate, weekends are quiet (the shape of a municipality's phone traffic).
fn hour_weight(weekday: i8, hour: i8) -> f64 {
    let w = match hour {
        8..=16 => 10.0,
        7 | 17 => 4.0,
        18..=21 => 1.5,
        _ => 0.3,
    };
    if weekday >= 6 { w * 0.15 } else { w }
}

fn dataset(n: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("veertien-web-reports-perf");
    let db = dir.join(format!("calls-{n}.db"));
    let done = dir.join(format!("calls-{n}.done"));
    if done.exists() {
        return db;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The schema (every migration) from the store itself.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        Store::open(db.to_str().unwrap()).await.unwrap().close().await;
    });
    let plan = veertien_core::Plan::builtin();
    let tz = veertien_core::hours::amsterdam();
    let mut sql = String::from("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=OFF;\nPRAGMA cache_size=-500000;\n");
    // The store benchmark's generator draws a municipality by cumulative weight (`cum`); weight 1
    // each gives the uniform draw this measurement wants.
    sql.push_str("CREATE TEMP TABLE m (idx INTEGER PRIMARY KEY, cbs TEXT, area TEXT, fourteen TEXT, shared INTEGER, cum INTEGER);\n");
    let mut idx = 0;
    for a in plan.area_codes() {
        for &id in &a.municipalities {
            let m = plan.municipality(id);
            sql.push_str(&format!(
                "INSERT INTO m VALUES ({idx}, '{}', '{}', '{}', {}, {});\n",
                m.cbs,
                a.code,
                a.fourteen,
                u8::from(a.municipalities.len() > 1),
                idx + 1
            ));
            idx += 1;
        }
    }
    sql.push_str("CREATE INDEX temp.m_cum ON m (cum);\n");
    let munis = idx;
    // The year up to the start of today (local), hour by hour.
    let today = jiff::Timestamp::now().to_zoned(tz.clone()).start_of_day().unwrap().timestamp().as_millisecond();
    let start = today - 365 * DAY;
    let hours: Vec<(i64, String, i64, f64)> = (0..365 * 24)
        .map(|h| {
            let t = start + h * 3_600_000;
            let z = jiff::Timestamp::from_millisecond(t).unwrap().to_zoned(tz.clone());
            let wd = z.weekday().to_monday_one_offset();
            let how = (wd as i64 - 1) * 24 + z.hour() as i64;
            (t, z.date().to_string(), how, hour_weight(wd, z.hour()))
        })
        .collect();
    let total: f64 = hours.iter().map(|h| h.3).sum();
    let template = include_str!("../../store/benches/generate_hour.sql");
    for (i, (t, day, how, w)) in hours.iter().enumerate() {
        let count = ((w / total) * n as f64).round() as i64;
        if i % 24 == 0 {
            sql.push_str("BEGIN;\n");
        }
        // A quiet hour rounds to no call with a small VEERTIEN_PERF_CALLS; its day's
        // transaction still opens and closes.
        if count > 0 {
            let params = [count.to_string(), munis.to_string(), i.to_string(), t.to_string(), format!("'{day}'"), how.to_string()];
            sql.push_str(&inline_params(template, &params));
        }
        if i % 24 == 23 {
            sql.push_str("COMMIT;\n");
        }
    }
    sql.push_str("PRAGMA wal_checkpoint(TRUNCATE);\nSELECT COUNT(*) FROM calls;\n");
    let t0 = Instant::now();
    let mut child = std::process::Command::new("sqlite3")
        .arg("-bail")
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the sqlite3 shell (Debian package sqlite3)");
    child.stdin.take().unwrap().write_all(sql.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    eprintln!("generated {} calls in {:.0} s", String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("?"), t0.elapsed().as_secs_f64());
    std::fs::write(&done, b"").unwrap();
    db
}

/// `sql` with `?1`, `?2`, … replaced by `params` (SQL literals), for the `sqlite3` shell, which
/// takes the script as text.
fn inline_params(sql: &str, params: &[String]) -> String {
    // Highest first, so `?1` never eats the start of `?10`.
    params.iter().enumerate().rev().fold(sql.to_owned(), |s, (i, p)| s.replace(&format!("?{}", i + 1), p))
}

async fn time(app: &axum::Router, cookie: &str, uri: &str) -> (Duration, Duration, usize) {
    let mut runs = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let (res, body) = send(app, Request::get(uri).header(header::COOKIE, cookie).body(Body::empty()).unwrap()).await;
        runs.push(t.elapsed());
        assert_eq!(res.status(), 200, "{uri}: {body:.300}");
        size = body.len();
    }
    runs.sort();
    (runs[2], runs[4], size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "generates 1 million call records; run with --ignored --nocapture"]
async fn report_pages_csv_and_json_on_a_million_calls() {
    let n: u64 = std::env::var("VEERTIEN_PERF_CALLS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let db = tokio::task::spawn_blocking(move || dataset(n)).await.unwrap();
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let stored = store.count_calls().await.unwrap();
    add_user(&store, OPERATOR, Role::Operator, None, PW).await.unwrap();
    add_user(&store, GOES_ADMIN, Role::Admin, Some(GOES), PW).await.unwrap();
    let mut state = AppState::new(store, Arc::new(veertien_server::Routing::load(None, None).unwrap()));
    state.secure_cookies = false;
    let app = veertien_web::router(state);
    let (op, _) = login(&app, OPERATOR, PW).await.unwrap();
    let (goes, _) = login(&app, GOES_ADMIN, PW).await.unwrap();
    let today = jiff::Zoned::now().with_time_zone(veertien_core::hours::amsterdam().clone()).date();
    let year = format!("from={}&to={today}", today.checked_sub(jiff::Span::new().days(364)).unwrap());
    let cases = [
        ("municipality dashboard, 30 days", &goes, "/m/GM0664/report".to_string()),
        ("municipality dashboard, 365 days", &goes, format!("/m/GM0664/report?{year}")),
        ("municipality JSON figures, 365 days", &goes, format!("/api/municipalities/GM0664/report?{year}")),
        ("municipality CSV per day, 365 days", &goes, format!("/m/GM0664/report?{year}&format=csv&table=per_day")),
        ("municipality call list, page 1", &goes, "/m/GM0664/calls".to_string()),
        ("municipality calls CSV, 365 days (≤ 10 000 rows)", &goes, format!("/m/GM0664/calls?{year}&format=csv")),
        ("national dashboard, 30 days", &op, "/national/report".to_string()),
        ("national dashboard, 365 days", &op, format!("/national/report?{year}")),
        ("national JSON figures, 365 days", &op, format!("/api/report/national?{year}")),
        ("national CSV per hour of week, 365 days", &op, format!("/national/report?{year}&format=csv&table=per_hour")),
        ("national call list, page 1", &op, "/national/calls".to_string()),
        ("national calls CSV, 30 days (≤ 10 000 rows)", &op, "/national/calls?format=csv".to_string()),
        ("API calls, 100 newest", &op, "/api/calls?limit=100".to_string()),
    ];
    println!("\n{stored} call records, {} MB\n", std::fs::metadata(&db).map(|m| m.len() / 1_000_000).unwrap_or(0));
    println!("| request | median ms | max ms (5 runs) | bytes |\n| --- | ---: | ---: | ---: |");
    for (what, cookie, uri) in &cases {
        let (median, max, size) = time(&app, cookie.as_str(), uri).await;
        println!("| {what} `{}` | {:.1} | {:.1} | {size} |", uri.split('?').next().unwrap(), median.as_secs_f64() * 1e3, max.as_secs_f64() * 1e3);
    }
    assert!(stored as f64 > n as f64 * 0.99, "{stored} records of {n}");
}
