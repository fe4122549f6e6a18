mod common;

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use veertien_store::*;

async fn fresh() -> (tempfile::TempDir, Store, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    // Nested directories that do not exist yet: open must create them.
    let path = dir.path().join("var/lib/veertien/calls.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    (dir, store, path)
}

/// Highest step in migrations/sqlite (several engineers add steps; the test follows them).
fn latest_migration() -> i64 {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.split('_').next()?.parse().ok())
        .max()
        .unwrap()
}

#[tokio::test]
async fn open_creates_file_in_wal_mode_and_is_healthy() {
    let (_d, store, path) = fresh().await;
    assert!(path.exists());
    assert_eq!(store.engine_name(), "sqlite");
    let h = store.health().await;
    assert!(h.ok(), "{h:?}");
    assert_eq!(h.schema_version, Some(latest_migration()));
    let mut c = SqliteConnection::connect(&format!("sqlite:{}", path.display())).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut c).await.unwrap();
    assert_eq!(mode, "wal");
    // sqlite: and sqlite:// prefixes reach the same file; re-opening re-runs no migration.
    let again = Store::open(&format!("sqlite://{}", path.display())).await.unwrap();
    assert_eq!(again.health().await.schema_version, Some(latest_migration()));
}

#[tokio::test]
async fn bad_locations_are_named() {
    let e = Store::open("mysql://x/y").await.err().unwrap();
    assert!(e.to_string().contains("mysql://x/y"), "{e}");
    let e = Store::open("sqlite::memory:").await.err().unwrap();
    assert!(matches!(e, StoreError::UnsupportedUrl(_)), "{e}");
    let f = tempfile::NamedTempFile::new().unwrap();
    // A directory where a file is in the way cannot be created.
    let e = Store::open(f.path().join("sub/calls.db").to_str().unwrap()).await.err().unwrap();
    assert!(matches!(e, StoreError::CreateDir { .. }), "{e}");
}

#[tokio::test]
async fn roundtrip_and_upsert() {
    let (_d, store, _) = fresh().await;
    common::roundtrip_and_upsert(&store).await;
}

#[tokio::test]
async fn list_filters() {
    let (_d, store, _) = fresh().await;
    common::list_filters(&store).await;
}

#[tokio::test]
async fn stats_figures() {
    let (_d, store, _) = fresh().await;
    common::stats_figures(&store).await;
}

#[tokio::test]
async fn settings_and_audit() {
    let (_d, store, _) = fresh().await;
    common::settings_and_audit(&store).await;
}

#[tokio::test]
async fn notifications() {
    let (_d, store, _) = fresh().await;
    common::notifications(&store).await;
}

#[tokio::test]
async fn settings_survive_reopen() {
    let (_d, store, path) = fresh().await;
    let doc = serde_json::json!({"status": "active", "destinations": ["+31113249249"]});
    store.save_settings("GM0664", &doc, "admin@goes.nl").await.unwrap();
    store.close().await;
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    let all = store.load_all_settings().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].version, &all[0].document), (1, &doc));
}

#[tokio::test]
async fn audit_log_is_append_only_in_the_database() {
    let (_d, store, path) = fresh().await;
    store
        .save_settings("GM0664", &serde_json::json!({"status": "active"}), "admin@goes.nl")
        .await
        .unwrap();
    // Bypass the crate: even raw SQL on the file cannot rewrite history.
    let mut c = SqliteConnection::connect(&format!("sqlite:{}", path.display())).await.unwrap();
    for stmt in [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "UPDATE settings_versions SET document = '{}'",
        "DELETE FROM settings_versions",
    ] {
        let err = sqlx::query(stmt).execute(&mut c).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{stmt}: {err}");
    }
    let log = store.audit_log(&AuditFilter::default()).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].actor, "admin@goes.nl");
    // Appending still works.
    sqlx::query("INSERT INTO audit_log (at_ms, actor, what) VALUES (1, 'x', 'y')")
        .execute(&mut c)
        .await
        .unwrap();
}

#[tokio::test]
async fn health_reports_a_moved_database() {
    let (d, store, _) = fresh().await;
    assert!(store.health().await.ok());
    let dir = d.path().join("var/lib/veertien");
    let away = d.path().join("var/lib/away");
    std::fs::rename(&dir, &away).unwrap();
    let h = store.health().await;
    assert!(!h.writable, "{h:?}");
    assert!(h.error.is_some());
    std::fs::rename(&away, &dir).unwrap();
}

/// Random delivery, timings, post-dial delay and IVR use, so the rollups see every branch.
fn vary_delivery(r: &mut CallRecord, rng: &mut rand::rngs::StdRng, t: i64) {
    use rand::Rng;
    r.delivery = Some(if rng.random_bool(0.5) { Delivery::Bridge } else { Delivery::Redirect });
    r.ringing_ms = rng.random_bool(0.7).then(|| t + rng.random_range(0..5_000));
    r.answered_ms = rng.random_bool(0.6).then(|| t + rng.random_range(0..60_000));
    r.post_dial_delay_ms = rng.random_bool(0.9).then(|| rng.random_range(0..20_000));
    r.ivr = match rng.random_range(0..3) {
        0 => None,
        1 => Some(serde_json::json!({"digits": "2"})),
        _ => Some(serde_json::json!({"recognised_first_time": rng.random_bool(0.8), "corrections": rng.random_range(0..3)})),
    };
}

/// All four rollup tables equal a recount of `calls` with the backfill statements of
/// migrations 0003 and 0004, after batches that insert new calls (folded per batch by the
/// writer), write calls again in a later batch (the update triggers), and hold the same call
/// twice (its early and its final state in one batch).
#[tokio::test]
async fn rollup_tables_equal_a_recount_after_batches_with_repeats() {
    use rand::{Rng, SeedableRng};
    let (_d, store, path) = fresh().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let t0 = local_day_start_ms("2025-06-02").unwrap();
    let munis = [Some("GM0664"), Some("GM0654"), Some("GM0363"), None];
    let random_call = |rng: &mut rand::rngs::StdRng, i: usize| {
        let t = t0 + rng.random_range(0..3 * common::DAY);
        let mut r = common::call(&format!("c{i}"), t);
        r.municipality_cbs = munis[rng.random_range(0..munis.len())].map(String::from);
        r.outcome = Some(Outcome::ALL[rng.random_range(0..Outcome::ALL.len())]);
        vary_delivery(&mut r, rng, t);
        r
    };
    let early = |r: &CallRecord| {
        let mut e = r.clone();
        (e.outcome, e.answered_ms, e.post_dial_delay_ms, e.ivr) = (None, None, None, None);
        e
    };
    let mut finals = Vec::new();
    for batch in 0..6 {
        let mut b = Vec::new();
        for i in 0..400 {
            let r = random_call(&mut rng, batch * 1000 + i);
            match rng.random_range(0..4) {
                // in progress now, final in a later batch
                0 => {
                    b.push(early(&r));
                    finals.push(r);
                }
                // early and final state in this one batch
                1 => {
                    b.push(early(&r));
                    b.push(r);
                }
                _ => b.push(r),
            }
        }
        // finals of earlier batches' calls, some with another municipality than before
        let take = finals.len() / 2;
        for mut r in finals.drain(..take) {
            if rng.random_bool(0.2) {
                r.municipality_cbs = Some("GM0344".into());
            }
            b.push(r);
        }
        store.write_calls(&b).await.unwrap();
    }
    store.write_calls(&finals).await.unwrap();

    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut c = SqliteConnection::connect(&format!("sqlite:{}", path.display())).await.unwrap();
    let tables = [
        ("call_rollup", "n <> 0 OR bridged_offered <> 0 OR answered_30s <> 0 OR ivr_calls <> 0 OR name_asked <> 0 OR first_time <> 0 OR corrections <> 0"),
        ("pdd_rollup", "n <> 0"),
        ("report_rollup", "eligible <> 0 OR right_first_time <> 0 OR corrected_calls <> 0"),
        ("ttd_rollup", "n <> 0"),
    ];
    for (t, _) in tables {
        sqlx::query(&format!("CREATE TEMP TABLE recount_{t} AS SELECT * FROM {t} WHERE 0")).execute(&mut c).await.unwrap();
    }
    for file in ["0003_call_rollups.sql", "0004_report_rollups.sql"] {
        let text = std::fs::read_to_string(migrations.join(file)).unwrap();
        let mut backfill = text[text.find("-- Backfill").unwrap()..].to_string();
        for (t, _) in tables {
            backfill = backfill.replace(&format!("INSERT INTO {t} "), &format!("INSERT INTO recount_{t} "));
        }
        sqlx::raw_sql(&backfill).execute(&mut c).await.unwrap();
    }
    for (t, nonzero) in tables {
        let rows = |from: String| format!("SELECT * FROM {from} WHERE {nonzero}");
        for (a, b) in [(t.to_string(), format!("recount_{t}")), (format!("recount_{t}"), t.to_string())] {
            let q = format!("SELECT COUNT(*) FROM ({} EXCEPT {})", rows(a.clone()), rows(b.clone()));
            let n: i64 = sqlx::query_scalar(&q).fetch_one(&mut c).await.unwrap();
            assert_eq!(n, 0, "{t}: {n} rows of {a} are not in {b}");
        }
        let n: i64 = sqlx::query_scalar(&rows(t.to_string()).replace("SELECT *", "SELECT COUNT(*)")).fetch_one(&mut c).await.unwrap();
        assert!(n > 10, "{t} has {n} rows");
    }
}

/// The per-day rollups (kept by triggers, used for whole local days) must agree exactly
/// with a scan of the calls themselves (used for any other period), including after
/// records are re-submitted with a changed outcome, and across the DST change.
#[tokio::test]
async fn rollups_agree_with_a_raw_scan() {
    use rand::{Rng, SeedableRng};
    let (_d, store, _) = fresh().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // 2025-03-27 .. 2025-04-02 local days (DST starts 2025-03-30).
    let from = local_day_start_ms("2025-03-27").unwrap();
    let to = local_day_start_ms("2025-04-03").unwrap();
    let munis = ["GM0664", "GM0654", "GM0363"];
    let outcomes = Outcome::ALL;
    let mut first = Vec::new();
    let mut second = Vec::new();
    for i in 0..3000 {
        // never exactly on a boundary, so [from, to) and [from, to + 1) hold the same calls
        let t = from - 7 * common::DAY + 1 + rng.random_range(0..(to - from + 7 * common::DAY - 2));
        let mut r = common::call(&format!("r{i}"), t);
        r.municipality_cbs = if rng.random_bool(0.05) { None } else { Some(munis[i % 3].into()) };
        r.outcome = Some(outcomes[rng.random_range(0..outcomes.len())]);
        vary_delivery(&mut r, &mut rng, t);
        if rng.random_bool(0.3) {
            // submitted early (in progress), later replaced by the final record
            let mut early = r.clone();
            early.outcome = None;
            early.answered_ms = None;
            early.post_dial_delay_ms = None;
            first.push(early);
            second.push(r);
        } else {
            first.push(r);
        }
    }
    store.write_calls(&first).await.unwrap();
    store.write_calls(&second).await.unwrap();

    for m in [None, Some("GM0664".to_string())] {
        let rolled = store.stats(&StatsQuery { municipality: m.clone(), from_ms: from, to_ms: to }).await.unwrap();
        // one ms off a local midnight forces the scan path
        let raw = store.stats(&StatsQuery { municipality: m.clone(), from_ms: from, to_ms: to + 1 }).await.unwrap();
        assert!(rolled.current.calls > 100);
        let strip = |mut p: PeriodStats| {
            p.from_ms = 0;
            p.to_ms = 0;
            p
        };
        assert_eq!(strip(rolled.current), strip(raw.current), "current, {m:?}");
        // The comparison period is the 7 local days before `from` (whole days, so rollups too).
        let prev_from = local_day_start_ms("2025-03-20").unwrap();
        assert_eq!((rolled.previous.from_ms, rolled.previous.to_ms), (prev_from, from));
        let raw_prev = store.stats(&StatsQuery { municipality: m.clone(), from_ms: prev_from, to_ms: from + 1 }).await.unwrap();
        assert_eq!(strip(rolled.previous), strip(raw_prev.current), "previous, {m:?}");
    }
}
