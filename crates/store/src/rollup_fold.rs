//! SQLite: the per-day rollups (migrations 0003, 0004) of a batch's new calls, added in one
//! statement per rollup table instead of one trigger run per call.
//!
//! Until migration 0009 an `AFTER INSERT` trigger added every new call to the four rollup
//! tables: two scopes (municipality, national) × four upserts, eight B-tree upserts per call,
//! at most a quarter of a record's CPU (measured by dropping them, docs/PERFORMANCE-store.md).
//! Now the writer inserts the batch and then runs these statements over the rows it just
//! inserted: the rows with a rowid above the table's largest rowid before the batch (SQLite
//! gives a new row a rowid above every existing one; nothing here sets rowids). Grouped, a
//! batch costs one upsert per (scope, day, …) group.
//!
//! The formulas repeat the backfill statements of 0003 and 0004 (which the update triggers
//! match expression for expression) with the rowid bound added. They are written out rather
//! than cut from the migration files because an applied migration never changes while this
//! code may; `tests/sqlite.rs::rollup_tables_equal_a_recount_after_batches_with_repeats`
//! holds the two to the same result.
//!
//! **Invariant: a batch writes each call at most once**, in its last state
//! ([`crate::sql::CallUpserts::plan`]). A row inserted and then updated in the same
//! transaction would reach the rollups twice: the `AFTER UPDATE` trigger (still there for
//! calls written again in a later batch: it subtracts the old row and adds the new one) would
//! subtract a row these statements never added, and these would add its final state.

/// The largest rowid before the batch; read inside the batch's write transaction.
pub(crate) const WATERMARK: &str = "SELECT COALESCE(MAX(rowid), 0) FROM calls";

/// One statement per rollup table; bind the watermark as the only argument.
pub(crate) const FOLDS: [&str; 4] = [
    "INSERT INTO call_rollup (scope, local_day, hour_of_week, outcome, n, bridged_offered,
        answered_30s, ivr_calls, name_asked, first_time, corrections)
    SELECT CASE WHEN k.national = 1 THEN '*' ELSE COALESCE(c.municipality_cbs, '-') END AS scope,
        c.local_day, c.hour_of_week, COALESCE(c.outcome, '') AS outcome, COUNT(*),
        SUM(CASE WHEN c.delivery = 'bridge' AND (c.ringing_ms IS NOT NULL OR c.answered_ms IS NOT NULL) THEN 1 ELSE 0 END),
        SUM(CASE WHEN c.delivery = 'bridge' AND c.answered_ms IS NOT NULL AND c.answered_ms - COALESCE(c.ringing_ms, c.answered_ms) <= 30000 THEN 1 ELSE 0 END),
        SUM(c.ivr_used), SUM(CASE WHEN c.ivr_first_time IS NOT NULL THEN 1 ELSE 0 END),
        SUM(CASE WHEN c.ivr_first_time = 1 THEN 1 ELSE 0 END), SUM(c.ivr_corrections)
    FROM calls AS c CROSS JOIN (SELECT 0 AS national UNION ALL SELECT 1) AS k
    WHERE c.rowid > ?1
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (scope, local_day, hour_of_week, outcome) DO UPDATE SET n = n + excluded.n,
        bridged_offered = bridged_offered + excluded.bridged_offered,
        answered_30s = answered_30s + excluded.answered_30s, ivr_calls = ivr_calls + excluded.ivr_calls,
        name_asked = name_asked + excluded.name_asked, first_time = first_time + excluded.first_time,
        corrections = corrections + excluded.corrections",
    "INSERT INTO pdd_rollup (scope, local_day, bucket_ms, n)
    SELECT CASE WHEN k.national = 1 THEN '*' ELSE COALESCE(c.municipality_cbs, '-') END AS scope,
        c.local_day,
        CASE WHEN c.post_dial_delay_ms < 100 THEN c.post_dial_delay_ms
             WHEN c.post_dial_delay_ms < 10000 THEN c.post_dial_delay_ms - c.post_dial_delay_ms % 10
             ELSE c.post_dial_delay_ms - c.post_dial_delay_ms % 100 END AS bucket,
        COUNT(*)
    FROM calls AS c CROSS JOIN (SELECT 0 AS national UNION ALL SELECT 1) AS k
    WHERE c.rowid > ?1 AND c.post_dial_delay_ms IS NOT NULL
    GROUP BY 1, 2, 3
    ON CONFLICT (scope, local_day, bucket_ms) DO UPDATE SET n = n + excluded.n",
    "INSERT INTO report_rollup (scope, local_day, eligible, right_first_time, corrected_calls)
    SELECT CASE WHEN k.national = 1 THEN '*' ELSE COALESCE(c.municipality_cbs, '-') END AS scope,
        c.local_day,
        SUM(CASE WHEN c.outcome IS NOT NULL AND c.outcome <> 'rejected' THEN 1 ELSE 0 END),
        SUM(CASE WHEN c.outcome IS NOT NULL AND c.outcome NOT IN ('rejected', 'caller_hung_up_during_selection') AND c.ivr_corrections = 0 THEN 1 ELSE 0 END),
        SUM(CASE WHEN c.ivr_corrections > 0 THEN 1 ELSE 0 END)
    FROM calls AS c CROSS JOIN (SELECT 0 AS national UNION ALL SELECT 1) AS k
    WHERE c.rowid > ?1
    GROUP BY 1, 2
    ON CONFLICT (scope, local_day) DO UPDATE SET eligible = eligible + excluded.eligible,
        right_first_time = right_first_time + excluded.right_first_time,
        corrected_calls = corrected_calls + excluded.corrected_calls",
    "INSERT INTO ttd_rollup (scope, local_day, via_ivr, bucket_ms, n)
    SELECT scope, local_day, via_ivr,
        CASE WHEN ttd < 100 THEN ttd WHEN ttd < 10000 THEN ttd - ttd % 10 ELSE ttd - ttd % 100 END AS bucket,
        COUNT(*)
    FROM (SELECT CASE WHEN k.national = 1 THEN '*' ELSE COALESCE(c.municipality_cbs, '-') END AS scope,
            c.local_day AS local_day, c.ivr_used AS via_ivr,
            COALESCE(c.ringing_ms, c.answered_ms, CASE WHEN c.outcome = 'redirected' THEN c.ended_ms END) - c.received_ms AS ttd
        FROM calls AS c CROSS JOIN (SELECT 0 AS national UNION ALL SELECT 1) AS k
        WHERE c.rowid > ?1)
    WHERE ttd >= 0
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (scope, local_day, via_ivr, bucket_ms) DO UPDATE SET n = n + excluded.n",
];
