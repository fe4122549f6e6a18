-- Rollups for the portal's management information (crates/store/src/report.rs,
-- docs/REPORTS.md), kept exact by triggers in the same transaction as every change to
-- `calls`, like 0003. Day-aligned report periods read these; other periods (and
-- PostgreSQL) scan `calls` with the same expressions.
-- scope: municipality CBS code, '-' for calls without one, '*' for national.

-- "Routed right first time": eligible = finished and not rejected; right first time =
-- eligible, the caller did not hang up during selection and corrected nothing.
CREATE TABLE report_rollup (
    scope            TEXT NOT NULL,
    local_day        TEXT NOT NULL,
    eligible         INTEGER NOT NULL,
    right_first_time INTEGER NOT NULL,
    corrected_calls  INTEGER NOT NULL,
    PRIMARY KEY (scope, local_day)
) WITHOUT ROWID;

-- Time from the call arriving (the platform answers IVR calls at once) to the destination
-- being reached (ringing, answered, or the 302 sent), split by IVR use; buckets as pdd_rollup.
CREATE TABLE ttd_rollup (
    scope     TEXT NOT NULL,
    local_day TEXT NOT NULL,
    via_ivr   INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (scope, local_day, via_ivr, bucket_ms)
) WITHOUT ROWID;

CREATE TRIGGER report_rollup_insert AFTER INSERT ON calls
BEGIN
    INSERT INTO report_rollup (scope, local_day, eligible, right_first_time, corrected_calls)
    SELECT s.scope, NEW.local_day, (CASE WHEN NEW.outcome IS NOT NULL AND NEW.outcome <> 'rejected' THEN 1 ELSE 0 END), (CASE WHEN NEW.outcome IS NOT NULL AND NEW.outcome NOT IN ('rejected', 'caller_hung_up_during_selection') AND NEW.ivr_corrections = 0 THEN 1 ELSE 0 END), (CASE WHEN NEW.ivr_corrections > 0 THEN 1 ELSE 0 END)
    FROM (SELECT COALESCE(NEW.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s WHERE 1
    ON CONFLICT (scope, local_day) DO UPDATE SET eligible = eligible + excluded.eligible, right_first_time = right_first_time + excluded.right_first_time, corrected_calls = corrected_calls + excluded.corrected_calls;
    INSERT INTO ttd_rollup (scope, local_day, via_ivr, bucket_ms, n)
    SELECT s.scope, NEW.local_day, NEW.ivr_used, CASE WHEN (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) < 100 THEN (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) WHEN (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) < 10000 THEN (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) - (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) % 10 ELSE (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) - (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) % 100 END, 1
    FROM (SELECT COALESCE(NEW.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s
    WHERE (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) >= 0
    ON CONFLICT (scope, local_day, via_ivr, bucket_ms) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER report_rollup_update AFTER UPDATE ON calls
BEGIN
    INSERT INTO report_rollup (scope, local_day, eligible, right_first_time, corrected_calls)
    SELECT s.scope, OLD.local_day, -(CASE WHEN OLD.outcome IS NOT NULL AND OLD.outcome <> 'rejected' THEN 1 ELSE 0 END), -(CASE WHEN OLD.outcome IS NOT NULL AND OLD.outcome NOT IN ('rejected', 'caller_hung_up_during_selection') AND OLD.ivr_corrections = 0 THEN 1 ELSE 0 END), -(CASE WHEN OLD.ivr_corrections > 0 THEN 1 ELSE 0 END)
    FROM (SELECT COALESCE(OLD.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s WHERE 1
    ON CONFLICT (scope, local_day) DO UPDATE SET eligible = eligible + excluded.eligible, right_first_time = right_first_time + excluded.right_first_time, corrected_calls = corrected_calls + excluded.corrected_calls;
    INSERT INTO ttd_rollup (scope, local_day, via_ivr, bucket_ms, n)
    SELECT s.scope, OLD.local_day, OLD.ivr_used, CASE WHEN (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) < 100 THEN (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) WHEN (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) < 10000 THEN (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) - (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) % 10 ELSE (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) - (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) % 100 END, -1
    FROM (SELECT COALESCE(OLD.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s
    WHERE (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) >= 0
    ON CONFLICT (scope, local_day, via_ivr, bucket_ms) DO UPDATE SET n = n + excluded.n;
    INSERT INTO report_rollup (scope, local_day, eligible, right_first_time, corrected_calls)
    SELECT s.scope, NEW.local_day, (CASE WHEN NEW.outcome IS NOT NULL AND NEW.outcome <> 'rejected' THEN 1 ELSE 0 END), (CASE WHEN NEW.outcome IS NOT NULL AND NEW.outcome NOT IN ('rejected', 'caller_hung_up_during_selection') AND NEW.ivr_corrections = 0 THEN 1 ELSE 0 END), (CASE WHEN NEW.ivr_corrections > 0 THEN 1 ELSE 0 END)
    FROM (SELECT COALESCE(NEW.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s WHERE 1
    ON CONFLICT (scope, local_day) DO UPDATE SET eligible = eligible + excluded.eligible, right_first_time = right_first_time + excluded.right_first_time, corrected_calls = corrected_calls + excluded.corrected_calls;
    INSERT INTO ttd_rollup (scope, local_day, via_ivr, bucket_ms, n)
    SELECT s.scope, NEW.local_day, NEW.ivr_used, CASE WHEN (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) < 100 THEN (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) WHEN (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) < 10000 THEN (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) - (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) % 10 ELSE (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) - (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) % 100 END, 1
    FROM (SELECT COALESCE(NEW.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s
    WHERE (COALESCE(NEW.ringing_ms, NEW.answered_ms, CASE WHEN NEW.outcome = 'redirected' THEN NEW.ended_ms END) - NEW.received_ms) >= 0
    ON CONFLICT (scope, local_day, via_ivr, bucket_ms) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER report_rollup_delete AFTER DELETE ON calls
BEGIN
    INSERT INTO report_rollup (scope, local_day, eligible, right_first_time, corrected_calls)
    SELECT s.scope, OLD.local_day, -(CASE WHEN OLD.outcome IS NOT NULL AND OLD.outcome <> 'rejected' THEN 1 ELSE 0 END), -(CASE WHEN OLD.outcome IS NOT NULL AND OLD.outcome NOT IN ('rejected', 'caller_hung_up_during_selection') AND OLD.ivr_corrections = 0 THEN 1 ELSE 0 END), -(CASE WHEN OLD.ivr_corrections > 0 THEN 1 ELSE 0 END)
    FROM (SELECT COALESCE(OLD.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s WHERE 1
    ON CONFLICT (scope, local_day) DO UPDATE SET eligible = eligible + excluded.eligible, right_first_time = right_first_time + excluded.right_first_time, corrected_calls = corrected_calls + excluded.corrected_calls;
    INSERT INTO ttd_rollup (scope, local_day, via_ivr, bucket_ms, n)
    SELECT s.scope, OLD.local_day, OLD.ivr_used, CASE WHEN (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) < 100 THEN (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) WHEN (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) < 10000 THEN (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) - (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) % 10 ELSE (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) - (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) % 100 END, -1
    FROM (SELECT COALESCE(OLD.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s
    WHERE (COALESCE(OLD.ringing_ms, OLD.answered_ms, CASE WHEN OLD.outcome = 'redirected' THEN OLD.ended_ms END) - OLD.received_ms) >= 0
    ON CONFLICT (scope, local_day, via_ivr, bucket_ms) DO UPDATE SET n = n + excluded.n;
END;

-- Backfill for databases that already hold calls.
INSERT INTO report_rollup (scope, local_day, eligible, right_first_time, corrected_calls)
SELECT CASE WHEN k.national = 1 THEN '*' ELSE COALESCE(c.municipality_cbs, '-') END AS scope,
    c.local_day,
    SUM(CASE WHEN c.outcome IS NOT NULL AND c.outcome <> 'rejected' THEN 1 ELSE 0 END),
    SUM(CASE WHEN c.outcome IS NOT NULL AND c.outcome NOT IN ('rejected', 'caller_hung_up_during_selection') AND c.ivr_corrections = 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN c.ivr_corrections > 0 THEN 1 ELSE 0 END)
FROM calls AS c CROSS JOIN (SELECT 0 AS national UNION ALL SELECT 1) AS k
GROUP BY 1, 2;

INSERT INTO ttd_rollup (scope, local_day, via_ivr, bucket_ms, n)
SELECT CASE WHEN k.national = 1 THEN '*' ELSE COALESCE(c.municipality_cbs, '-') END AS scope,
    c.local_day, c.ivr_used, CASE WHEN (COALESCE(c.ringing_ms, c.answered_ms, CASE WHEN c.outcome = 'redirected' THEN c.ended_ms END) - c.received_ms) < 100 THEN (COALESCE(c.ringing_ms, c.answered_ms, CASE WHEN c.outcome = 'redirected' THEN c.ended_ms END) - c.received_ms) WHEN (COALESCE(c.ringing_ms, c.answered_ms, CASE WHEN c.outcome = 'redirected' THEN c.ended_ms END) - c.received_ms) < 10000 THEN (COALESCE(c.ringing_ms, c.answered_ms, CASE WHEN c.outcome = 'redirected' THEN c.ended_ms END) - c.received_ms) - (COALESCE(c.ringing_ms, c.answered_ms, CASE WHEN c.outcome = 'redirected' THEN c.ended_ms END) - c.received_ms) % 10 ELSE (COALESCE(c.ringing_ms, c.answered_ms, CASE WHEN c.outcome = 'redirected' THEN c.ended_ms END) - c.received_ms) - (COALESCE(c.ringing_ms, c.answered_ms, CASE WHEN c.outcome = 'redirected' THEN c.ended_ms END) - c.received_ms) % 100 END AS bucket,
    COUNT(*)
FROM calls AS c CROSS JOIN (SELECT 0 AS national UNION ALL SELECT 1) AS k
WHERE (COALESCE(c.ringing_ms, c.answered_ms, CASE WHEN c.outcome = 'redirected' THEN c.ended_ms END) - c.received_ms) >= 0
GROUP BY 1, 2, 3, 4;
