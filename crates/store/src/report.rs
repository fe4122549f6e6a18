//! Management figures the portal's reports need beyond [`crate::Stats`]: the share of calls
//! routed right first time and the time from answer to destination (docs/REPORTS.md defines
//! every figure from the call-record fields).
//!
//! Whole local days (Europe/Amsterdam) come from the trigger-maintained rollups of SQLite
//! migration 0004; other periods, and PostgreSQL, scan `calls` with the same expressions, so
//! a figure does not depend on which path answered (`tests/report.rs` checks they agree).

use serde::{Deserialize, Serialize};

use crate::query::{Percentiles, percentiles, share};
use crate::sql::{self, Arg, Dialect, Sql, bind_args};
use crate::store::{PoolRef, check_period};
use crate::{Stats, StatsQuery, Store, StoreError};

/// Routing figures for one period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingFigures {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Finished calls that were not rejected: the platform had a municipality to route to.
    pub eligible: u64,
    /// Of those, the caller did not hang up during selection and corrected nothing.
    pub right_first_time: u64,
    /// right_first_time / eligible; None without eligible calls.
    pub share_right_first_time: Option<f64>,
    /// Calls in which the caller corrected a proposed municipality at least once.
    pub corrected_calls: u64,
    /// Time from the call arriving (the platform answers at once) until the destination was
    /// reached (rang, answered, or the 302 was sent), for calls through the IVR, in ms.
    pub time_to_destination_ivr: Option<Percentiles>,
    /// The same for calls routed without the IVR.
    pub time_to_destination_direct: Option<Percentiles>,
}

/// Everything a report page shows for one scope and period, with the previous period of equal
/// length for trends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub stats: Stats,
    pub routing: RoutingFigures,
    pub previous_routing: RoutingFigures,
}

/// SQL expressions shared by the scan path; they mirror the trigger bodies of migration 0004.
const ELIGIBLE: &str = "CASE WHEN outcome IS NOT NULL AND outcome <> 'rejected' THEN 1 ELSE 0 END";
const RIGHT_FIRST_TIME: &str = "CASE WHEN outcome IS NOT NULL AND outcome NOT IN ('rejected', \
    'caller_hung_up_during_selection') AND ivr_corrections = 0 THEN 1 ELSE 0 END";
const CORRECTED: &str = "CASE WHEN ivr_corrections > 0 THEN 1 ELSE 0 END";
const REACHED: &str = "(COALESCE(ringing_ms, answered_ms, CASE WHEN outcome = 'redirected' \
    THEN ended_ms END) - received_ms)";

fn bucket(v: &str) -> String {
    format!("CASE WHEN {v} < 100 THEN {v} WHEN {v} < 10000 THEN {v} - {v} % 10 ELSE {v} - {v} % 100 END")
}

fn period_where(q: &mut Sql, s: &StatsQuery, from: i64, to: i64) {
    q.push(" WHERE received_ms >= ").bind(Arg::I64(from));
    q.push(" AND received_ms < ").bind(Arg::I64(to));
    if let Some(m) = &s.municipality {
        q.push(" AND municipality_cbs = ").bind(Arg::Text(m.clone()));
    }
}

fn rollup_where(q: &mut Sql, s: &StatsQuery, from_day: &str, to_day: &str) {
    q.push(" WHERE scope = ").bind(Arg::Text(s.municipality.clone().unwrap_or_else(|| "*".into())));
    q.push(" AND local_day >= ").bind(Arg::Text(from_day.into()));
    q.push(" AND local_day < ").bind(Arg::Text(to_day.into()));
}

/// Returns the rows of `inner` as one JSON array in one row: handing thousands of small rows
/// over one by one through sqlx costs more than the query (see sql.rs `json_rows`).
fn as_json(d: Dialect, cols: &str, inner: Sql) -> Sql {
    let mut q = match d {
        Dialect::Sqlite => Sql::new(d, &format!("SELECT json_group_array(json_array({cols})) FROM (")),
        Dialect::Postgres => Sql::new(
            d,
            &format!("SELECT COALESCE(json_agg(json_build_array({cols})), '[]'::json)::text FROM ("),
        ),
    };
    q.text.push_str(&inner.text);
    q.args = inner.args;
    q.push(") g");
    q
}

/// (counts query, time-to-destination histogram query) for one period.
/// `use_rollups`: read migration 0004's rollups when the period is whole local days (SQLite).
fn queries(d: Dialect, s: &StatsQuery, from: i64, to: i64, use_rollups: bool) -> (Sql, Sql) {
    let rollup = match d {
        Dialect::Sqlite if use_rollups => sql::day_start(from).zip(sql::day_start(to)),
        _ => None,
    };
    match rollup {
        Some((fd, td)) => {
            let mut c = Sql::new(
                d,
                "SELECT json_array(COALESCE(SUM(eligible), 0), COALESCE(SUM(right_first_time), 0), \
                 COALESCE(SUM(corrected_calls), 0)) FROM report_rollup",
            );
            rollup_where(&mut c, s, &fd, &td);
            let mut h = Sql::new(d, "SELECT via_ivr, bucket_ms, SUM(n) AS n FROM ttd_rollup");
            rollup_where(&mut h, s, &fd, &td);
            h.push(" GROUP BY via_ivr, bucket_ms HAVING SUM(n) <> 0");
            (c, as_json(d, "via_ivr, bucket_ms, n", h))
        }
        None => {
            let sum = |e: &str| format!("CAST(COALESCE(SUM({e}), 0) AS BIGINT)");
            let counts = format!("{}, {}, {}", sum(ELIGIBLE), sum(RIGHT_FIRST_TIME), sum(CORRECTED));
            let head = match d {
                Dialect::Sqlite => format!("SELECT json_array({counts}) FROM calls"),
                Dialect::Postgres => format!("SELECT json_build_array({counts})::text FROM calls"),
            };
            let mut c = Sql::new(d, &head);
            period_where(&mut c, s, from, to);
            let mut h = Sql::new(
                d,
                &format!(
                    "SELECT CAST(ivr_used AS BIGINT) AS via_ivr, {} AS bucket_ms, COUNT(*) AS n FROM calls",
                    bucket(REACHED)
                ),
            );
            period_where(&mut h, s, from, to);
            h.push(&format!(" AND {REACHED} >= 0 GROUP BY 1, 2"));
            (c, as_json(d, "via_ivr, bucket_ms, n", h))
        }
    }
}

fn fold(from_ms: i64, to_ms: i64, counts: &str, hist: &str) -> Result<RoutingFigures, StoreError> {
    let (eligible, right_first_time, corrected_calls): (i64, i64, i64) = serde_json::from_str(counts)
        .map_err(|e| StoreError::Corrupt(format!("report counts: {e}")))?;
    let rows: Vec<(i64, i64, i64)> = sql::parse_json_rows("time-to-destination histogram", hist)?;
    let mut ivr: Vec<(i64, u64)> = Vec::new();
    let mut direct: Vec<(i64, u64)> = Vec::new();
    for (via_ivr, v, n) in rows {
        let n = u64::try_from(n)
            .map_err(|_| StoreError::Corrupt(format!("time-to-destination bucket {v}: count {n}")))?;
        if via_ivr != 0 { ivr.push((v, n)) } else { direct.push((v, n)) }
    }
    ivr.sort_unstable();
    direct.sort_unstable();
    let (eligible, right_first_time) = (eligible.max(0) as u64, right_first_time.max(0) as u64);
    Ok(RoutingFigures {
        from_ms,
        to_ms,
        eligible,
        right_first_time,
        share_right_first_time: share(right_first_time, eligible),
        corrected_calls: corrected_calls.max(0) as u64,
        time_to_destination_ivr: percentiles(&ivr),
        time_to_destination_direct: percentiles(&direct),
    })
}

/// The comparison period of `[from, to)`: the same number of local days just before `from` when
/// the period is whole Europe/Amsterdam days (every portal period), else the same length in ms.
/// Days, not milliseconds: a period containing a DST change is an hour longer or shorter, and
/// `from - len` would then start at 23:00 or 01:00 — no longer whole days, so every report
/// across a DST change fell back from the rollups to scanning the calls (1.4 s instead of
/// milliseconds on a million calls, docs/REPORTS.md), and compared against a shifted period.
pub(crate) fn previous_period(from: i64, to: i64) -> (i64, i64) {
    let whole = sql::day_start(from).zip(sql::day_start(to)).and_then(|(fd, td)| {
        let (fd, td) = (fd.parse::<jiff::civil::Date>().ok()?, td.parse::<jiff::civil::Date>().ok()?);
        let days = (td - fd).get_days();
        let start = fd.checked_sub(jiff::Span::new().days(days)).ok()?;
        crate::record::local_day_start_ms(&start.to_string()).ok()
    });
    (whole.unwrap_or(from - (to - from)), from)
}

impl Store {
    async fn routing_period(&self, s: &StatsQuery, from: i64, to: i64) -> Result<RoutingFigures, StoreError> {
        self.routing_period_via(s, from, to, true).await
    }

    async fn routing_period_via(
        &self,
        s: &StatsQuery,
        from: i64,
        to: i64,
        use_rollups: bool,
    ) -> Result<RoutingFigures, StoreError> {
        let (counts, hist): (String, String) = match self.pool_ref() {
            PoolRef::Sqlite(pool) => {
                let (c, h) = queries(Dialect::Sqlite, s, from, to, use_rollups);
                (
                    bind_args!(sqlx::query_scalar(&c.text), c.args).fetch_one(pool).await?,
                    bind_args!(sqlx::query_scalar(&h.text), h.args).fetch_one(pool).await?,
                )
            }
            PoolRef::Postgres(pool) => {
                let (c, h) = queries(Dialect::Postgres, s, from, to, false);
                (
                    bind_args!(sqlx::query_scalar(&c.text), c.args).fetch_one(pool).await?,
                    bind_args!(sqlx::query_scalar(&h.text), h.args).fetch_one(pool).await?,
                )
            }
        };
        fold(from, to, &counts, &hist)
    }

    /// Routing figures for `q`'s period and the previous period of equal length.
    pub async fn routing_figures(&self, q: &StatsQuery) -> Result<(RoutingFigures, RoutingFigures), StoreError> {
        check_period(q)?;
        let (prev_from, prev_to) = previous_period(q.from_ms, q.to_ms);
        Ok((
            self.routing_period(q, q.from_ms, q.to_ms).await?,
            self.routing_period(q, prev_from, prev_to).await?,
        ))
    }

    /// The figures of a report page: [`Store::stats`] plus [`Store::routing_figures`].
    pub async fn report(&self, q: &StatsQuery) -> Result<Report, StoreError> {
        let stats = self.stats(q).await?;
        let (routing, previous_routing) = self.routing_figures(q).await?;
        Ok(Report { stats, routing, previous_routing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_and_rollup_queries_bind_the_same_scope() {
        let s = StatsQuery { municipality: Some("GM0664".into()), from_ms: 1_748_815_200_000, to_ms: 1_748_901_600_000 };
        let (c, h) = queries(Dialect::Sqlite, &s, s.from_ms, s.to_ms, true);
        assert!(c.text.contains("report_rollup") && h.text.contains("ttd_rollup"), "{}", c.text);
        assert_eq!(c.args[0], Arg::Text("GM0664".into()));
        let (c, h) = queries(Dialect::Sqlite, &s, s.from_ms + 1, s.to_ms, true);
        assert!(c.text.contains("FROM calls") && h.text.contains("FROM calls"));
        let (c, _) = queries(Dialect::Postgres, &s, s.from_ms, s.to_ms, true);
        assert!(c.text.contains("$3") && c.text.contains("FROM calls"), "PostgreSQL has no rollups: {}", c.text);
    }

    #[test]
    fn the_previous_period_is_whole_local_days_also_across_a_dst_change() {
        let day = |d: &str| crate::record::local_day_start_ms(d).unwrap();
        // October 2025 holds the end of summer time (26th): 31 days plus one hour long.
        let (from, to) = previous_period(day("2025-10-01"), day("2025-11-01"));
        assert_eq!((from, to), (day("2025-08-31"), day("2025-10-01")));
        assert!(sql::day_start(from).is_some(), "so the rollups answer it, not a scan of the calls");
        // 30 days ending 2025-11-23 (the period of the slow national dashboard).
        assert_eq!(previous_period(day("2025-10-25"), day("2025-11-24")), (day("2025-09-25"), day("2025-10-25")));
        // Periods that are not whole days keep their length in milliseconds.
        assert_eq!(previous_period(1_000, 5_000), (-3_000, 1_000));
    }

    #[test]
    fn fold_splits_ivr_and_direct_and_refuses_garbage() {
        let f = fold(0, 1, "[10, 7, 2]", "[[1, 9000, 3], [0, 5, 4], [1, 12000, 1]]").unwrap();
        assert_eq!((f.eligible, f.right_first_time, f.corrected_calls), (10, 7, 2));
        assert_eq!(f.share_right_first_time, Some(0.7));
        let ivr = f.time_to_destination_ivr.unwrap();
        assert_eq!((ivr.count, ivr.p50, ivr.max), (4, 9000, 12000));
        assert_eq!(f.time_to_destination_direct.unwrap().p50, 5);
        assert!(fold(0, 1, "[1, 1]", "[]").is_err());
        assert!(fold(0, 1, "[0, 0, 0]", "[[0, 1, -1]]").is_err());
        let empty = fold(0, 1, "[0, 0, 0]", "[]").unwrap();
        assert_eq!(empty.share_right_first_time, None);
        assert!(empty.time_to_destination_ivr.is_none());
    }

    fn call(id: usize, received_ms: i64, cbs: Option<&str>) -> crate::CallRecord {
        use crate::{Delivery, Outcome};
        let mut r = crate::CallRecord::received(format!("c{id}"), format!("{id}@x"), "n1", "0612345678", "140113", received_ms);
        r.municipality_cbs = cbs.map(String::from);
        // Cycle through every kind of call the figures distinguish.
        match id % 7 {
            0 => {
                r.delivery = Some(Delivery::Redirect);
                r.outcome = Some(Outcome::Redirected);
                r.ended_ms = Some(received_ms + 4);
            }
            1 => {
                r.delivery = Some(Delivery::Bridge);
                r.ivr = Some(serde_json::json!({"recognised_first_time": false, "corrections": 1}));
                r.ringing_ms = Some(received_ms + 9_000 + id as i64);
                r.answered_ms = Some(received_ms + 20_000);
                r.outcome = Some(Outcome::Answered);
            }
            2 => {
                r.ivr = Some(serde_json::json!({"recognised_first_time": true, "corrections": 0}));
                r.outcome = Some(Outcome::CallerHungUpDuringSelection);
            }
            3 => r.outcome = Some(Outcome::Rejected),
            4 => {} // in progress
            5 => {
                r.delivery = Some(Delivery::Bridge);
                r.ivr = Some(serde_json::json!({"recognised_first_time": true, "corrections": 0}));
                r.ringing_ms = Some(received_ms + 12_345);
                r.outcome = Some(Outcome::NoAnswer);
            }
            _ => {
                r.delivery = Some(Delivery::Bridge);
                r.answered_ms = Some(received_ms + 700);
                r.outcome = Some(Outcome::Answered);
            }
        }
        r
    }

    /// The rollups (triggers of migration 0004, including the update path when a record is
    /// submitted again) must give exactly what a scan of `calls` gives.
    #[tokio::test]
    async fn rollups_agree_with_a_scan_after_inserts_and_updates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("r.db").to_str().unwrap()).await.unwrap();
        let day0 = crate::local_day_start_ms("2025-03-28").unwrap(); // spans the DST change
        let mut calls: Vec<_> = (0..300)
            .map(|i| call(i, day0 + (i as i64) * 1_234_567, [Some("GM0664"), Some("GM0678"), None][i % 3]))
            .collect();
        store.write_calls(&calls).await.unwrap();
        // Resubmitted: in-progress calls end, some outcomes change, one moves municipality.
        for c in calls.iter_mut().filter(|c| c.outcome.is_none()) {
            c.outcome = Some(crate::Outcome::Busy);
            c.municipality_cbs = Some("GM0664".into());
        }
        store.write_calls(&calls).await.unwrap();
        let to = crate::local_day_start_ms("2025-04-02").unwrap();
        for m in [None, Some("GM0664".to_string()), Some("GM0678".to_string())] {
            let q = StatsQuery { municipality: m.clone(), from_ms: day0, to_ms: to };
            let rolled = store.routing_period_via(&q, day0, to, true).await.unwrap();
            let scanned = store.routing_period_via(&q, day0, to, false).await.unwrap();
            assert_eq!(rolled, scanned, "{m:?}");
            assert!(rolled.eligible > 0 && rolled.corrected_calls > 0, "{rolled:?}");
            assert!(rolled.time_to_destination_ivr.is_some() && rolled.time_to_destination_direct.is_some());
        }
        let q = StatsQuery { municipality: None, from_ms: day0, to_ms: to };
        let r = store.report(&q).await.unwrap();
        let n = calls.len() as u64;
        // Every call is finished now; rejected ones (id % 7 == 3) are not eligible.
        let rejected = (0..300).filter(|i| i % 7 == 3).count() as u64;
        assert_eq!(r.routing.eligible, n - rejected);
        let wrong = (0..300).filter(|i| i % 7 == 1 || i % 7 == 2).count() as u64;
        assert_eq!(r.routing.right_first_time, n - rejected - wrong);
        assert_eq!(r.stats.current.calls, n);
        assert_eq!(r.previous_routing.eligible, 0);
    }
}
