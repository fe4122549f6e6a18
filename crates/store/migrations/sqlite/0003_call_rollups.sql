-- Per-day rollups of `calls`, kept exact by triggers in the same transaction as every
-- insert, update (a record submitted again when the call ends) and delete. The management
-- figures for day-aligned periods read these instead of scanning up to 12 million calls a
-- year; other periods fall back to the covering indexes of 0001.
-- scope: municipality CBS code, '-' for calls without one, '*' for national.
-- outcome: '' while the call is in progress.
CREATE TABLE call_rollup (
    scope           TEXT NOT NULL,
    local_day       TEXT NOT NULL,
    hour_of_week    INTEGER NOT NULL,
    outcome         TEXT NOT NULL,
    n               INTEGER NOT NULL,
    bridged_offered INTEGER NOT NULL,
    answered_30s    INTEGER NOT NULL,
    ivr_calls       INTEGER NOT NULL,
    name_asked      INTEGER NOT NULL,
    first_time      INTEGER NOT NULL,
    corrections     INTEGER NOT NULL,
    PRIMARY KEY (scope, local_day, hour_of_week, outcome)
) WITHOUT ROWID;

-- Post-dial delay histogram: exact below 100 ms (redirects), 10 ms buckets below 10 s,
-- 100 ms buckets above; a bucket is named by its lower bound.
CREATE TABLE pdd_rollup (
    scope     TEXT NOT NULL,
    local_day TEXT NOT NULL,
    bucket_ms INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (scope, local_day, bucket_ms)
) WITHOUT ROWID;

CREATE TRIGGER calls_rollup_insert AFTER INSERT ON calls
BEGIN
    INSERT INTO call_rollup (scope, local_day, hour_of_week, outcome, n, bridged_offered, answered_30s, ivr_calls, name_asked, first_time, corrections)
    SELECT s.scope, NEW.local_day, NEW.hour_of_week, COALESCE(NEW.outcome, ''), 1, (CASE WHEN NEW.delivery = 'bridge' AND (NEW.ringing_ms IS NOT NULL OR NEW.answered_ms IS NOT NULL) THEN 1 ELSE 0 END), (CASE WHEN NEW.delivery = 'bridge' AND NEW.answered_ms IS NOT NULL AND NEW.answered_ms - COALESCE(NEW.ringing_ms, NEW.answered_ms) <= 30000 THEN 1 ELSE 0 END), NEW.ivr_used, (CASE WHEN NEW.ivr_first_time IS NOT NULL THEN 1 ELSE 0 END), (CASE WHEN NEW.ivr_first_time = 1 THEN 1 ELSE 0 END), NEW.ivr_corrections
    FROM (SELECT COALESCE(NEW.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s WHERE 1
    ON CONFLICT (scope, local_day, hour_of_week, outcome) DO UPDATE SET n = n + excluded.n, bridged_offered = bridged_offered + excluded.bridged_offered, answered_30s = answered_30s + excluded.answered_30s, ivr_calls = ivr_calls + excluded.ivr_calls, name_asked = name_asked + excluded.name_asked, first_time = first_time + excluded.first_time, corrections = corrections + excluded.corrections;
    INSERT INTO pdd_rollup (scope, local_day, bucket_ms, n)
    SELECT s.scope, NEW.local_day,
        CASE WHEN NEW.post_dial_delay_ms < 100 THEN NEW.post_dial_delay_ms WHEN NEW.post_dial_delay_ms < 10000 THEN NEW.post_dial_delay_ms - NEW.post_dial_delay_ms % 10 ELSE NEW.post_dial_delay_ms - NEW.post_dial_delay_ms % 100 END, 1
    FROM (SELECT COALESCE(NEW.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s
    WHERE NEW.post_dial_delay_ms IS NOT NULL
    ON CONFLICT (scope, local_day, bucket_ms) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER calls_rollup_update AFTER UPDATE ON calls
BEGIN
    INSERT INTO call_rollup (scope, local_day, hour_of_week, outcome, n, bridged_offered, answered_30s, ivr_calls, name_asked, first_time, corrections)
    SELECT s.scope, OLD.local_day, OLD.hour_of_week, COALESCE(OLD.outcome, ''), -1, -(CASE WHEN OLD.delivery = 'bridge' AND (OLD.ringing_ms IS NOT NULL OR OLD.answered_ms IS NOT NULL) THEN 1 ELSE 0 END), -(CASE WHEN OLD.delivery = 'bridge' AND OLD.answered_ms IS NOT NULL AND OLD.answered_ms - COALESCE(OLD.ringing_ms, OLD.answered_ms) <= 30000 THEN 1 ELSE 0 END), -OLD.ivr_used, -(CASE WHEN OLD.ivr_first_time IS NOT NULL THEN 1 ELSE 0 END), -(CASE WHEN OLD.ivr_first_time = 1 THEN 1 ELSE 0 END), -OLD.ivr_corrections
    FROM (SELECT COALESCE(OLD.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s WHERE 1
    ON CONFLICT (scope, local_day, hour_of_week, outcome) DO UPDATE SET n = n + excluded.n, bridged_offered = bridged_offered + excluded.bridged_offered, answered_30s = answered_30s + excluded.answered_30s, ivr_calls = ivr_calls + excluded.ivr_calls, name_asked = name_asked + excluded.name_asked, first_time = first_time + excluded.first_time, corrections = corrections + excluded.corrections;
    INSERT INTO pdd_rollup (scope, local_day, bucket_ms, n)
    SELECT s.scope, OLD.local_day,
        CASE WHEN OLD.post_dial_delay_ms < 100 THEN OLD.post_dial_delay_ms WHEN OLD.post_dial_delay_ms < 10000 THEN OLD.post_dial_delay_ms - OLD.post_dial_delay_ms % 10 ELSE OLD.post_dial_delay_ms - OLD.post_dial_delay_ms % 100 END, -1
    FROM (SELECT COALESCE(OLD.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s
    WHERE OLD.post_dial_delay_ms IS NOT NULL
    ON CONFLICT (scope, local_day, bucket_ms) DO UPDATE SET n = n + excluded.n;
    INSERT INTO call_rollup (scope, local_day, hour_of_week, outcome, n, bridged_offered, answered_30s, ivr_calls, name_asked, first_time, corrections)
    SELECT s.scope, NEW.local_day, NEW.hour_of_week, COALESCE(NEW.outcome, ''), 1, (CASE WHEN NEW.delivery = 'bridge' AND (NEW.ringing_ms IS NOT NULL OR NEW.answered_ms IS NOT NULL) THEN 1 ELSE 0 END), (CASE WHEN NEW.delivery = 'bridge' AND NEW.answered_ms IS NOT NULL AND NEW.answered_ms - COALESCE(NEW.ringing_ms, NEW.answered_ms) <= 30000 THEN 1 ELSE 0 END), NEW.ivr_used, (CASE WHEN NEW.ivr_first_time IS NOT NULL THEN 1 ELSE 0 END), (CASE WHEN NEW.ivr_first_time = 1 THEN 1 ELSE 0 END), NEW.ivr_corrections
    FROM (SELECT COALESCE(NEW.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s WHERE 1
    ON CONFLICT (scope, local_day, hour_of_week, outcome) DO UPDATE SET n = n + excluded.n, bridged_offered = bridged_offered + excluded.bridged_offered, answered_30s = answered_30s + excluded.answered_30s, ivr_calls = ivr_calls + excluded.ivr_calls, name_asked = name_asked + excluded.name_asked, first_time = first_time + excluded.first_time, corrections = corrections + excluded.corrections;
    INSERT INTO pdd_rollup (scope, local_day, bucket_ms, n)
    SELECT s.scope, NEW.local_day,
        CASE WHEN NEW.post_dial_delay_ms < 100 THEN NEW.post_dial_delay_ms WHEN NEW.post_dial_delay_ms < 10000 THEN NEW.post_dial_delay_ms - NEW.post_dial_delay_ms % 10 ELSE NEW.post_dial_delay_ms - NEW.post_dial_delay_ms % 100 END, 1
    FROM (SELECT COALESCE(NEW.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s
    WHERE NEW.post_dial_delay_ms IS NOT NULL
    ON CONFLICT (scope, local_day, bucket_ms) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER calls_rollup_delete AFTER DELETE ON calls
BEGIN
    INSERT INTO call_rollup (scope, local_day, hour_of_week, outcome, n, bridged_offered, answered_30s, ivr_calls, name_asked, first_time, corrections)
    SELECT s.scope, OLD.local_day, OLD.hour_of_week, COALESCE(OLD.outcome, ''), -1, -(CASE WHEN OLD.delivery = 'bridge' AND (OLD.ringing_ms IS NOT NULL OR OLD.answered_ms IS NOT NULL) THEN 1 ELSE 0 END), -(CASE WHEN OLD.delivery = 'bridge' AND OLD.answered_ms IS NOT NULL AND OLD.answered_ms - COALESCE(OLD.ringing_ms, OLD.answered_ms) <= 30000 THEN 1 ELSE 0 END), -OLD.ivr_used, -(CASE WHEN OLD.ivr_first_time IS NOT NULL THEN 1 ELSE 0 END), -(CASE WHEN OLD.ivr_first_time = 1 THEN 1 ELSE 0 END), -OLD.ivr_corrections
    FROM (SELECT COALESCE(OLD.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s WHERE 1
    ON CONFLICT (scope, local_day, hour_of_week, outcome) DO UPDATE SET n = n + excluded.n, bridged_offered = bridged_offered + excluded.bridged_offered, answered_30s = answered_30s + excluded.answered_30s, ivr_calls = ivr_calls + excluded.ivr_calls, name_asked = name_asked + excluded.name_asked, first_time = first_time + excluded.first_time, corrections = corrections + excluded.corrections;
    INSERT INTO pdd_rollup (scope, local_day, bucket_ms, n)
    SELECT s.scope, OLD.local_day,
        CASE WHEN OLD.post_dial_delay_ms < 100 THEN OLD.post_dial_delay_ms WHEN OLD.post_dial_delay_ms < 10000 THEN OLD.post_dial_delay_ms - OLD.post_dial_delay_ms % 10 ELSE OLD.post_dial_delay_ms - OLD.post_dial_delay_ms % 100 END, -1
    FROM (SELECT COALESCE(OLD.municipality_cbs, '-') AS scope UNION ALL SELECT '*') AS s
    WHERE OLD.post_dial_delay_ms IS NOT NULL
    ON CONFLICT (scope, local_day, bucket_ms) DO UPDATE SET n = n + excluded.n;
END;

-- Backfill for databases that already hold calls.
INSERT INTO call_rollup (scope, local_day, hour_of_week, outcome, n, bridged_offered,
    answered_30s, ivr_calls, name_asked, first_time, corrections)
SELECT CASE WHEN k.national = 1 THEN '*' ELSE COALESCE(c.municipality_cbs, '-') END AS scope,
    c.local_day, c.hour_of_week, COALESCE(c.outcome, '') AS outcome, COUNT(*),
    SUM(CASE WHEN c.delivery = 'bridge' AND (c.ringing_ms IS NOT NULL OR c.answered_ms IS NOT NULL) THEN 1 ELSE 0 END),
    SUM(CASE WHEN c.delivery = 'bridge' AND c.answered_ms IS NOT NULL AND c.answered_ms - COALESCE(c.ringing_ms, c.answered_ms) <= 30000 THEN 1 ELSE 0 END),
    SUM(c.ivr_used), SUM(CASE WHEN c.ivr_first_time IS NOT NULL THEN 1 ELSE 0 END),
    SUM(CASE WHEN c.ivr_first_time = 1 THEN 1 ELSE 0 END), SUM(c.ivr_corrections)
FROM calls AS c CROSS JOIN (SELECT 0 AS national UNION ALL SELECT 1) AS k
GROUP BY 1, 2, 3, 4;

INSERT INTO pdd_rollup (scope, local_day, bucket_ms, n)
SELECT CASE WHEN k.national = 1 THEN '*' ELSE COALESCE(c.municipality_cbs, '-') END AS scope,
    c.local_day,
    CASE WHEN c.post_dial_delay_ms < 100 THEN c.post_dial_delay_ms
         WHEN c.post_dial_delay_ms < 10000 THEN c.post_dial_delay_ms - c.post_dial_delay_ms % 10
         ELSE c.post_dial_delay_ms - c.post_dial_delay_ms % 100 END AS bucket,
    COUNT(*)
FROM calls AS c CROSS JOIN (SELECT 0 AS national UNION ALL SELECT 1) AS k
WHERE c.post_dial_delay_ms IS NOT NULL
GROUP BY 1, 2, 3;
