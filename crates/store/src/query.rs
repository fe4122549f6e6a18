//! Query parameters and results for `veertien calls` and the portal's management information.

use serde::{Deserialize, Serialize};

use crate::record::Outcome;

/// Filters for listing calls, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallFilter {
    /// Only calls delivered to (or decided for) this municipality (CBS code).
    pub municipality: Option<String>,
    pub outcome: Option<Outcome>,
    /// Received at or after (unix ms).
    pub from_ms: Option<i64>,
    /// Received before (unix ms).
    pub to_ms: Option<i64>,
    /// Exact match on caller or destination; a 14-number in any accepted form (`14 020`,
    /// `+3114020`) matches the calls to it; other dialled digits match calls rejected for them.
    pub number: Option<String>,
    /// 0 means [`CallFilter::DEFAULT_LIMIT`]; capped at [`CallFilter::MAX_LIMIT`].
    pub limit: u32,
    pub offset: u32,
}

impl CallFilter {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 10_000;

    pub(crate) fn effective_limit(&self) -> i64 {
        match self.limit {
            0 => Self::DEFAULT_LIMIT as i64,
            n => n.min(Self::MAX_LIMIT) as i64,
        }
    }
}

/// A period for management figures: [from_ms, to_ms), optionally one municipality
/// (None = national). The previous period of equal length is computed too, for trends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsQuery {
    pub municipality: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Management figures for one period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeriodStats {
    pub from_ms: i64,
    pub to_ms: i64,
    pub calls: u64,
    /// (local date "YYYY-MM-DD", calls), Europe/Amsterdam days, ascending; days without
    /// calls are absent.
    pub calls_per_day: Vec<(String, u64)>,
    /// 168 buckets: index 0 = Monday 00:00–00:59 local time.
    pub calls_per_hour_of_week: Vec<u64>,
    /// Count per outcome (all nine, zero included); calls still in progress are in `in_progress`.
    pub outcomes: Vec<(Outcome, u64)>,
    pub in_progress: u64,
    /// Bridged calls that reached the destination (it rang or answered): the denominator
    /// of the sector norm "80% answered within 30 s".
    pub bridged_offered: u64,
    /// Of those, answered within 30 s of ringing start (answer without ringing counts as 0 s).
    pub answered_within_30s: u64,
    /// answered_within_30s / bridged_offered; None when no bridged call reached a destination.
    pub share_answered_within_30s: Option<f64>,
    /// Calls that went through the IVR (a dialogue was recorded).
    pub ivr_calls: u64,
    /// Callers who hung up during municipality selection.
    pub ivr_hangups: u64,
    /// Calls in which a name was asked for (the dialogue has `recognised_first_time`).
    pub name_asked: u64,
    pub name_recognised_first_time: u64,
    pub share_name_recognised_first_time: Option<f64>,
    /// Sum of corrections callers made in the IVR.
    pub corrections: u64,
    pub post_dial_delay: Option<Percentiles>,
}

/// Exact percentiles (nearest-rank) of post-dial delay in ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: i64,
    pub p90: i64,
    pub p95: i64,
    pub p99: i64,
    pub max: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// None = national.
    pub municipality: Option<String>,
    pub current: PeriodStats,
    /// The period of equal length just before `current`.
    pub previous: PeriodStats,
}

/// Nearest-rank percentiles from a sorted (value, count) histogram.
pub(crate) fn percentiles(hist: &[(i64, u64)]) -> Option<Percentiles> {
    let total: u64 = hist.iter().map(|(_, c)| c).sum();
    if total == 0 {
        return None;
    }
    let rank = |p: f64| -> i64 {
        let want = ((p * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (v, c) in hist {
            seen += c;
            if seen >= want {
                return *v;
            }
        }
        hist.last().map(|(v, _)| *v).unwrap_or_default()
    };
    Some(Percentiles {
        count: total,
        p50: rank(0.50),
        p90: rank(0.90),
        p95: rank(0.95),
        p99: rank(0.99),
        max: hist.last().map(|(v, _)| *v).unwrap_or_default(),
    })
}

pub(crate) fn share(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        // values 1..=100 once each
        let hist: Vec<(i64, u64)> = (1..=100).map(|v| (v, 1)).collect();
        let p = percentiles(&hist).unwrap();
        assert_eq!((p.p50, p.p90, p.p95, p.p99, p.max, p.count), (50, 90, 95, 99, 100, 100));
        // skewed: 9 fast, 1 slow
        let p = percentiles(&[(100, 9), (5000, 1)]).unwrap();
        assert_eq!((p.p50, p.p90, p.p95), (100, 100, 5000));
        assert!(percentiles(&[]).is_none());
    }
}
