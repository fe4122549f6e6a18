//! SQL text shared by both engines. The statements are written in the common subset of
//! SQLite and PostgreSQL; only the placeholder syntax differs (`?` vs `$n`), so each
//! statement is built through [`Sql`], which numbers placeholders for the target engine.

use std::collections::HashMap;

use crate::query::{CallFilter, StatsQuery};
use crate::record::{CallRecord, local_slot};
use crate::settings::AuditFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    I64(i64),
    OptI64(Option<i64>),
    Text(String),
    OptText(Option<String>),
}

/// A statement under construction with its bound arguments.
pub(crate) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
    dialect: Dialect,
}

impl Sql {
    pub fn new(dialect: Dialect, text: &str) -> Self {
        Sql { text: text.to_string(), args: Vec::new(), dialect }
    }

    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        match self.dialect {
            Dialect::Sqlite => self.text.push('?'),
            Dialect::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.args.len().to_string());
            }
        }
        self
    }
}

/// Column order of `calls`; [`call_args`] yields values in the same order.
pub(crate) const CALL_COLUMNS: [&str; 28] = [
    "call_id",
    "sip_call_id",
    "node_id",
    "caller",
    "dialled",
    "normalised",
    "area_code",
    "decision_kind",
    "decision",
    "municipality_cbs",
    "destination",
    "delivery",
    "received_ms",
    "decided_ms",
    "ringing_ms",
    "answered_ms",
    "ended_ms",
    "outcome",
    "reject_reason",
    "sip_status",
    "post_dial_delay_ms",
    "route_steps",
    "ivr",
    "local_day",
    "hour_of_week",
    "ivr_used",
    "ivr_first_time",
    "ivr_corrections",
];

/// Columns read back into a [`CallRecord`] (the derived ones are not part of the record).
pub(crate) const RECORD_SELECT: &str = "call_id, sip_call_id, node_id, caller, dialled, \
    normalised, area_code, decision_kind, decision, municipality_cbs, destination, delivery, \
    received_ms, decided_ms, ringing_ms, answered_ms, ended_ms, outcome, reject_reason, \
    sip_status, post_dial_delay_ms, route_steps, ivr";

/// `INSERT … ON CONFLICT (call_id) DO UPDATE` for `rows` records in one statement — a later
/// submit of the same call replaces the earlier state (a record may be submitted when decided
/// and again when finished).
fn upsert_calls_sql(dialect: Dialect, rows: usize) -> String {
    let mut s = String::from("INSERT INTO calls (");
    s.push_str(&CALL_COLUMNS.join(", "));
    s.push_str(") VALUES ");
    let mut n = 0;
    for row in 0..rows {
        s.push_str(if row == 0 { "(" } else { ", (" });
        for i in 0..CALL_COLUMNS.len() {
            if i > 0 {
                s.push_str(", ");
            }
            n += 1;
            match dialect {
                Dialect::Sqlite => s.push('?'),
                Dialect::Postgres => s.push_str(&format!("${n}")),
            }
        }
        s.push(')');
    }
    s.push_str(" ON CONFLICT (call_id) DO UPDATE SET ");
    let sets: Vec<String> = CALL_COLUMNS[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    s.push_str(&sets.join(", "));
    s
}

/// The call-record upserts a batch is written with: several records per statement, so a
/// batch of n records costs a handful of round trips to the database instead of n (with
/// SQLite each is a hop to sqlx's worker thread and back, which cost more CPU than the insert
/// itself in the redirect benchmark). A few fixed row counts keep the prepared statements few.
pub(crate) struct CallUpserts {
    /// (rows, statement), largest first; the last one has 1 row.
    by_rows: Vec<(usize, String)>,
}

impl CallUpserts {
    const ROWS: [usize; 4] = [64, 16, 4, 1];

    pub(crate) fn new(dialect: Dialect) -> CallUpserts {
        CallUpserts { by_rows: Self::ROWS.iter().map(|&n| (n, upsert_calls_sql(dialect, n))).collect() }
    }

    /// The statements that write `records`, each with its consecutive run of records, in
    /// order. A call the batch holds more than once is written once, in its last state: the
    /// upsert replaces every column, so its earlier states change nothing in `calls`, while
    /// writing them would make PostgreSQL refuse the statement (a row updated twice) and make
    /// SQLite's update trigger subtract from the rollups a row they never counted
    /// (`rollup_fold`).
    pub(crate) fn plan<'a>(&self, records: &[&'a CallRecord]) -> Vec<(&str, Vec<&'a CallRecord>)> {
        let records = latest_per_call(records);
        let mut out = Vec::new();
        let mut rest = &records[..];
        while !rest.is_empty() {
            let (n, sql) = self.by_rows.iter().find(|(n, _)| *n <= rest.len()).expect("a 1-row statement exists");
            let (head, tail) = rest.split_at(*n);
            out.push((sql.as_str(), head.to_vec()));
            rest = tail;
        }
        out
    }

    /// The arguments of one statement: every record's columns in order.
    pub(crate) fn args(records: &[&CallRecord]) -> impl Iterator<Item = Arg> {
        records.iter().flat_map(|r| call_args(r))
    }
}

pub(crate) fn call_args(r: &CallRecord) -> Vec<Arg> {
    let slot = local_slot(r.received_ms);
    vec![
        Arg::Text(r.call_id.clone()),
        Arg::Text(r.sip_call_id.clone()),
        Arg::Text(r.node_id.clone()),
        Arg::Text(r.caller.clone()),
        Arg::Text(r.dialled.clone()),
        Arg::OptText(r.normalised.clone()),
        Arg::OptText(r.area_code.clone()),
        Arg::Text(r.decision_kind.clone()),
        Arg::Text(r.decision.as_str().to_owned()),
        Arg::OptText(r.municipality_cbs.clone()),
        Arg::OptText(r.destination.clone()),
        Arg::OptText(r.delivery.map(|d| d.as_str().to_string())),
        Arg::I64(r.received_ms),
        Arg::OptI64(r.decided_ms),
        Arg::OptI64(r.ringing_ms),
        Arg::OptI64(r.answered_ms),
        Arg::OptI64(r.ended_ms),
        Arg::OptText(r.outcome.map(|o| o.as_str().to_string())),
        Arg::OptText(r.reject_reason.clone()),
        Arg::OptI64(r.sip_status.map(i64::from)),
        Arg::OptI64(r.post_dial_delay_ms),
        Arg::Text(r.route_steps.as_str().to_owned()),
        Arg::OptText(r.ivr.as_ref().map(|v| v.to_string())),
        Arg::Text(slot.day),
        Arg::I64(slot.hour_of_week),
        Arg::I64(r.ivr_used() as i64),
        Arg::OptI64(r.ivr_first_time().map(i64::from)),
        Arg::I64(r.ivr_corrections()),
    ]
}

/// Each call's last state in `records`, in the order of those last states.
fn latest_per_call<'a>(records: &[&'a CallRecord]) -> Vec<&'a CallRecord> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        last.insert(r.call_id.as_str(), i);
    }
    if last.len() == records.len() {
        return records.to_vec();
    }
    records.iter().enumerate().filter(|(i, r)| last[r.call_id.as_str()] == *i).map(|(_, r)| *r).collect()
}

/// Raw row of `calls` as read back; both engines decode into it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CallRow {
    call_id: String,
    sip_call_id: String,
    node_id: String,
    caller: String,
    dialled: String,
    normalised: Option<String>,
    area_code: Option<String>,
    decision_kind: String,
    decision: String,
    municipality_cbs: Option<String>,
    destination: Option<String>,
    delivery: Option<String>,
    received_ms: i64,
    decided_ms: Option<i64>,
    ringing_ms: Option<i64>,
    answered_ms: Option<i64>,
    ended_ms: Option<i64>,
    outcome: Option<String>,
    reject_reason: Option<String>,
    sip_status: Option<i64>,
    post_dial_delay_ms: Option<i64>,
    route_steps: String,
    ivr: Option<String>,
}

fn json(call_id: &str, col: &str, s: &str) -> Result<serde_json::Value, crate::StoreError> {
    serde_json::from_str(s)
        .map_err(|e| crate::StoreError::Corrupt(format!("call {call_id}: column {col}: {e}")))
}

fn raw_json(call_id: &str, col: &str, s: String) -> Result<crate::RawJson, crate::StoreError> {
    crate::RawJson::from_text(s)
        .map_err(|e| crate::StoreError::Corrupt(format!("call {call_id}: column {col}: {e}")))
}

impl TryFrom<CallRow> for CallRecord {
    type Error = crate::StoreError;
    fn try_from(r: CallRow) -> Result<Self, Self::Error> {
        let id = r.call_id.clone();
        let corrupt = |col: &str, v: &str| {
            crate::StoreError::Corrupt(format!("call {id}: column {col}: unknown value '{v}'"))
        };
        Ok(CallRecord {
            decision: raw_json(&r.call_id, "decision", r.decision)?,
            route_steps: raw_json(&r.call_id, "route_steps", r.route_steps)?,
            ivr: r.ivr.as_deref().map(|s| json(&r.call_id, "ivr", s)).transpose()?,
            delivery: match r.delivery.as_deref() {
                None => None,
                Some(s) => Some(crate::Delivery::parse(s).ok_or_else(|| corrupt("delivery", s))?),
            },
            outcome: match r.outcome.as_deref() {
                None => None,
                Some(s) => Some(crate::Outcome::parse(s).ok_or_else(|| corrupt("outcome", s))?),
            },
            sip_status: r
                .sip_status
                .map(|s| u16::try_from(s).map_err(|_| corrupt("sip_status", &s.to_string())))
                .transpose()?,
            call_id: r.call_id,
            sip_call_id: r.sip_call_id,
            node_id: r.node_id,
            caller: r.caller,
            dialled: r.dialled,
            normalised: r.normalised,
            area_code: r.area_code,
            decision_kind: r.decision_kind,
            municipality_cbs: r.municipality_cbs,
            destination: r.destination,
            received_ms: r.received_ms,
            decided_ms: r.decided_ms,
            ringing_ms: r.ringing_ms,
            answered_ms: r.answered_ms,
            ended_ms: r.ended_ms,
            reject_reason: r.reject_reason,
            post_dial_delay_ms: r.post_dial_delay_ms,
        })
    }
}

pub(crate) fn list_calls_sql(d: Dialect, f: &CallFilter) -> Sql {
    let mut q = Sql::new(d, "SELECT ");
    q.push(RECORD_SELECT).push(" FROM calls WHERE 1=1");
    if let Some(m) = &f.municipality {
        q.push(" AND municipality_cbs = ").bind(Arg::Text(m.clone()));
    }
    if let Some(o) = f.outcome {
        q.push(" AND outcome = ").bind(Arg::Text(o.as_str().into()));
    }
    if let Some(t) = f.from_ms {
        q.push(" AND received_ms >= ").bind(Arg::I64(t));
    }
    if let Some(t) = f.to_ms {
        q.push(" AND received_ms < ").bind(Arg::I64(t));
    }
    if let Some(n) = &f.number {
        let n = n.trim().to_string();
        // A 14-number in any accepted form matches every call to it, however the carrier
        // wrote it. Every OR term has an index (the last one a partial index, migration
        // 0008), so SQLite and PostgreSQL answer the OR from indexes instead of a scan.
        let fourteen = veertien_core::normalise(&n).map(|f| f.to_string()).unwrap_or_else(|_| n.clone());
        q.push(" AND (caller = ").bind(Arg::Text(n.clone()));
        q.push(" OR normalised = ").bind(Arg::Text(fourteen));
        q.push(" OR (normalised IS NULL AND dialled = ").bind(Arg::Text(n.clone())).push(")");
        q.push(" OR destination = ").bind(Arg::Text(n)).push(")");
    }
    // call_id breaks ties so paging with offset is stable.
    q.push(" ORDER BY received_ms DESC, call_id DESC LIMIT ")
        .bind(Arg::I64(f.effective_limit()))
        .push(" OFFSET ")
        .bind(Arg::I64(f.offset as i64));
    q
}

fn period_where(q: &mut Sql, s: &StatsQuery, from: i64, to: i64) {
    q.push(" WHERE received_ms >= ").bind(Arg::I64(from));
    q.push(" AND received_ms < ").bind(Arg::I64(to));
    if let Some(m) = &s.municipality {
        q.push(" AND municipality_cbs = ").bind(Arg::Text(m.clone()));
    }
}

/// Wraps a grouped query so the engine returns its rows as one JSON array in a single
/// row: sqlx hands SQLite rows over one by one from a worker thread (~10-20 us each), which
/// made thousands of small group rows cost more than the scan itself.
fn json_rows(d: Dialect, cols: &str, inner: Sql) -> Sql {
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

/// One pass grouped by (day, hour of week, outcome) carrying every counter the figures
/// need; the groups (at most days x 24 x 10) are folded in Rust.
pub(crate) fn stats_groups_sql(d: Dialect, s: &StatsQuery, from: i64, to: i64) -> Sql {
    let mut q = Sql::new(
        d,
        "SELECT local_day, hour_of_week, outcome, COUNT(*) AS n, \
         CAST(COALESCE(SUM(CASE WHEN delivery = 'bridge' AND (ringing_ms IS NOT NULL OR answered_ms IS NOT NULL) THEN 1 ELSE 0 END), 0) AS BIGINT) AS bridged_offered, \
         CAST(COALESCE(SUM(CASE WHEN delivery = 'bridge' AND answered_ms IS NOT NULL AND answered_ms - COALESCE(ringing_ms, answered_ms) <= 30000 THEN 1 ELSE 0 END), 0) AS BIGINT) AS answered_30s, \
         CAST(COALESCE(SUM(ivr_used), 0) AS BIGINT) AS ivr_calls, \
         CAST(COALESCE(SUM(CASE WHEN ivr_first_time IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS name_asked, \
         CAST(COALESCE(SUM(CASE WHEN ivr_first_time = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS first_time, \
         CAST(COALESCE(SUM(ivr_corrections), 0) AS BIGINT) AS corrections \
         FROM calls",
    );
    period_where(&mut q, s, from, to);
    q.push(" GROUP BY local_day, hour_of_week, outcome");
    json_rows(
        d,
        "local_day, hour_of_week, outcome, n, bridged_offered, answered_30s, ivr_calls, name_asked, first_time, corrections",
        q,
    )
}

/// Post-dial delay histogram bucket (same expression as the SQLite rollup triggers in
/// migration 0003): exact below 100 ms, 10 ms below 10 s, 100 ms above. Both the raw scan
/// and the rollups use it, so a figure does not depend on which path answered.
const PDD_BUCKET: &str = "CASE WHEN post_dial_delay_ms < 100 THEN post_dial_delay_ms \
    WHEN post_dial_delay_ms < 10000 THEN post_dial_delay_ms - post_dial_delay_ms % 10 \
    ELSE post_dial_delay_ms - post_dial_delay_ms % 100 END";

pub(crate) fn pdd_hist_sql(d: Dialect, s: &StatsQuery, from: i64, to: i64) -> Sql {
    let mut q = Sql::new(d, &format!("SELECT {PDD_BUCKET} AS v, COUNT(*) AS n FROM calls"));
    period_where(&mut q, s, from, to);
    q.push(" AND post_dial_delay_ms IS NOT NULL GROUP BY 1");
    json_rows(d, "v, n", q)
}

/// Rollup scope of a query: the municipality, or '*' for national.
fn scope(s: &StatsQuery) -> String {
    s.municipality.clone().unwrap_or_else(|| "*".into())
}

/// Same result shape as [`stats_groups_sql`], from `call_rollup` (SQLite) for whole local
/// days [from_day, to_day).
pub(crate) fn rollup_groups_sql(d: Dialect, s: &StatsQuery, from_day: &str, to_day: &str) -> Sql {
    let mut q = Sql::new(
        d,
        "SELECT local_day, hour_of_week, NULLIF(outcome, '') AS outcome, n, bridged_offered, \
         answered_30s AS answered_30s, ivr_calls, name_asked, first_time, corrections \
         FROM call_rollup WHERE scope = ",
    );
    q.bind(Arg::Text(scope(s)));
    q.push(" AND local_day >= ").bind(Arg::Text(from_day.into()));
    q.push(" AND local_day < ").bind(Arg::Text(to_day.into()));
    q.push(" AND n <> 0");
    json_rows(
        d,
        "local_day, hour_of_week, outcome, n, bridged_offered, answered_30s, ivr_calls, name_asked, first_time, corrections",
        q,
    )
}

pub(crate) fn rollup_pdd_sql(d: Dialect, s: &StatsQuery, from_day: &str, to_day: &str) -> Sql {
    let mut q = Sql::new(d, "SELECT bucket_ms AS v, SUM(n) AS n FROM pdd_rollup WHERE scope = ");
    q.bind(Arg::Text(scope(s)));
    q.push(" AND local_day >= ").bind(Arg::Text(from_day.into()));
    q.push(" AND local_day < ").bind(Arg::Text(to_day.into()));
    q.push(" GROUP BY bucket_ms HAVING SUM(n) <> 0");
    json_rows(d, "v, n", q)
}

/// The local day starting exactly at `ms`, if `ms` is a local (Europe/Amsterdam) midnight.
pub(crate) fn day_start(ms: i64) -> Option<String> {
    let day = crate::record::local_slot(ms).day;
    (crate::record::local_day_start_ms(&day).ok()? == ms).then_some(day)
}

/// (local_day, hour_of_week, outcome, n, bridged_offered, answered_30s, ivr_calls,
/// name_asked, first_time, corrections)
pub(crate) type GroupRow = (String, i64, Option<String>, i64, i64, i64, i64, i64, i64, i64);

pub(crate) fn parse_json_rows<T: serde::de::DeserializeOwned>(
    what: &str,
    text: &str,
) -> Result<Vec<T>, crate::StoreError> {
    serde_json::from_str(text).map_err(|e| crate::StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn fold_period(
    from_ms: i64,
    to_ms: i64,
    groups: Vec<GroupRow>,
    mut pdd: Vec<(i64, i64)>,
) -> Result<crate::PeriodStats, crate::StoreError> {
    use crate::Outcome;
    use std::collections::BTreeMap;
    let mut p = crate::PeriodStats {
        from_ms,
        to_ms,
        calls_per_hour_of_week: vec![0; 168],
        ..Default::default()
    };
    let mut days: BTreeMap<String, u64> = BTreeMap::new();
    let mut outcomes: BTreeMap<Outcome, u64> = Outcome::ALL.iter().map(|o| (*o, 0)).collect();
    for (day, hour_of_week, outcome, n, offered, answered_30s, ivr_calls, asked, first_time, corrections) in
        groups
    {
        let n = n as u64;
        p.calls += n;
        *days.entry(day).or_default() += n;
        let how = usize::try_from(hour_of_week)
            .ok()
            .filter(|h| *h < 168)
            .ok_or_else(|| crate::StoreError::Corrupt(format!("hour_of_week {hour_of_week}")))?;
        p.calls_per_hour_of_week[how] += n;
        match outcome.as_deref() {
            None => p.in_progress += n,
            Some(s) => {
                let o = Outcome::parse(s)
                    .ok_or_else(|| crate::StoreError::Corrupt(format!("outcome '{s}'")))?;
                *outcomes.entry(o).or_default() += n;
                if o == Outcome::CallerHungUpDuringSelection {
                    p.ivr_hangups += n;
                }
            }
        }
        p.bridged_offered += offered as u64;
        p.answered_within_30s += answered_30s as u64;
        p.ivr_calls += ivr_calls as u64;
        p.name_asked += asked as u64;
        p.name_recognised_first_time += first_time as u64;
        p.corrections += corrections as u64;
    }
    p.calls_per_day = days.into_iter().collect();
    p.outcomes = outcomes.into_iter().collect();
    p.share_answered_within_30s = crate::query::share(p.answered_within_30s, p.bridged_offered);
    p.share_name_recognised_first_time =
        crate::query::share(p.name_recognised_first_time, p.name_asked);
    pdd.sort_unstable();
    let hist: Vec<(i64, u64)> = pdd.into_iter().map(|(v, c)| (v, c as u64)).collect();
    p.post_dial_delay = crate::query::percentiles(&hist);
    Ok(p)
}

pub(crate) fn audit_list_sql(d: Dialect, f: &AuditFilter) -> Sql {
    let mut q = Sql::new(
        d,
        "SELECT id, at_ms, actor, municipality_cbs, what, before, after FROM audit_log WHERE 1=1",
    );
    if let Some(m) = &f.municipality {
        q.push(" AND municipality_cbs = ").bind(Arg::Text(m.clone()));
    }
    if let Some(t) = f.from_ms {
        q.push(" AND at_ms >= ").bind(Arg::I64(t));
    }
    if let Some(t) = f.to_ms {
        q.push(" AND at_ms < ").bind(Arg::I64(t));
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .bind(Arg::I64(f.effective_limit()))
        .push(" OFFSET ")
        .bind(Arg::I64(f.offset as i64));
    q
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub municipality_cbs: Option<String>,
    pub what: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl TryFrom<AuditRow> for crate::AuditEntry {
    type Error = crate::StoreError;
    fn try_from(r: AuditRow) -> Result<Self, Self::Error> {
        let parse = |col: &str, s: Option<String>| {
            s.map(|s| {
                serde_json::from_str(&s).map_err(|e| {
                    crate::StoreError::Corrupt(format!("audit entry {}: {col}: {e}", r.id))
                })
            })
            .transpose()
        };
        Ok(crate::AuditEntry {
            before: parse("before", r.before.clone())?,
            after: parse("after", r.after.clone())?,
            id: r.id,
            at_ms: r.at_ms,
            actor: r.actor,
            municipality_cbs: r.municipality_cbs,
            what: r.what,
        })
    }
}

/// Binds [`Arg`]s onto an sqlx query for any engine that encodes these four types.
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                $crate::sql::Arg::I64(v) => q.bind(v),
                $crate::sql::Arg::OptI64(v) => q.bind(v),
                $crate::sql::Arg::Text(v) => q.bind(v),
                $crate::sql::Arg::OptText(v) => q.bind(v),
            };
        }
        q
    }};
}
pub(crate) use bind_args;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_written_in_few_statements_each_call_once_in_its_last_state() {
        let recs: Vec<CallRecord> = (0..85)
            .map(|i| CallRecord::received(format!("c{i}"), format!("s{i}"), "n", "0612345678", "140111", 1_700_000_000_000))
            .collect();
        let refs: Vec<&CallRecord> = recs.iter().collect();
        let u = CallUpserts::new(Dialect::Sqlite);
        let plan = u.plan(&refs);
        assert_eq!(plan.iter().map(|(_, r)| r.len()).collect::<Vec<_>>(), vec![64, 16, 4, 1]);
        let order: Vec<&str> = plan.iter().flat_map(|(_, r)| r.iter().map(|c| c.call_id.as_str())).collect();
        assert_eq!(order, recs.iter().map(|c| c.call_id.as_str()).collect::<Vec<_>>());
        // c2 twice: written once, where its last state stood.
        let mut later = recs[2].clone();
        later.caller = "0201234567".into();
        let mut again = refs[..5].to_vec();
        again.push(&later);
        let kept: Vec<(&str, &str)> = u
            .plan(&again)
            .iter()
            .flat_map(|(_, r)| r.iter().map(|c| (c.call_id.as_str(), c.caller.as_str())))
            .collect();
        assert_eq!(
            kept,
            [("c0", "0612345678"), ("c1", "0612345678"), ("c3", "0612345678"), ("c4", "0612345678"), ("c2", "0201234567")]
        );
        assert_eq!(CallUpserts::args(&refs[..4]).count(), 4 * CALL_COLUMNS.len());
    }

    #[test]
    fn placeholders_follow_dialect() {
        let f = CallFilter { municipality: Some("GM0664".into()), limit: 10, ..Default::default() };
        let s = list_calls_sql(Dialect::Sqlite, &f);
        assert!(s.text.contains("municipality_cbs = ?") && s.text.ends_with("LIMIT ? OFFSET ?"));
        let p = list_calls_sql(Dialect::Postgres, &f);
        assert!(p.text.contains("municipality_cbs = $1") && p.text.ends_with("LIMIT $2 OFFSET $3"));
        assert_eq!(p.args, vec![Arg::Text("GM0664".into()), Arg::I64(10), Arg::I64(0)]);
        assert_eq!(upsert_calls_sql(Dialect::Postgres, 1).matches('$').count(), CALL_COLUMNS.len());
        let four = upsert_calls_sql(Dialect::Postgres, 4);
        assert!(four.contains(&format!("${}", 4 * CALL_COLUMNS.len())) && !four.contains(&format!("${}", 4 * CALL_COLUMNS.len() + 1)));
        assert_eq!(upsert_calls_sql(Dialect::Sqlite, 4).matches('?').count(), 4 * CALL_COLUMNS.len());
        assert_eq!(call_args(&CallRecord::received("a", "b", "n", "c", "d", 0)).len(), CALL_COLUMNS.len());
    }
}
