-- One hour of generated national traffic, for the store benchmark (benches/store.rs, bound
-- parameters) and the portal's report timings (crates/web/tests/reports_perf.rs, parameters
-- inlined for the sqlite3 shell). Temp table m (idx, cbs, area, fourteen, shared, cum): the
-- municipality is drawn by cumulative weight `cum` (population in the benchmark; 1 each, i.e.
-- uniform, in the report timings). ?1 calls in this hour, ?2 total weight, ?3 hour index,
-- ?4 hour start (unix ms), ?5 local day, ?6 hour of week. MATERIALIZED keeps each random()
-- drawn once per row.
WITH RECURSIVE seq(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM seq WHERE x + 1 < ?1),
r AS MATERIALIZED (
    SELECT x, abs(random()) % ?2 AS pick, abs(random()) % 1000 AS u, abs(random()) % 1000 AS v,
        ?4 + abs(random()) % 3600000 AS t, abs(random()) % 100000000 AS caller,
        4000 + abs(random()) % 11000 AS ivr_ms, 50 + abs(random()) % 2950 AS bridge_pdd,
        1 + abs(random()) % 19 AS redirect_pdd, 2000 + abs(random()) % 43000 AS answer_after,
        abs(random()) % 1000 AS w, abs(random()) % 1000 AS ft
    FROM seq
),
d AS MATERIALIZED (
    SELECT r.*, m.cbs, m.area, m.fourteen, m.shared,
        CASE WHEN m.shared = 1 AND r.v < 30 THEN 'hup' WHEN r.u < 600 THEN 'redirect' ELSE 'bridge' END AS kind,
        CASE WHEN m.shared = 1 THEN r.ivr_ms ELSE 0 END AS sel_ms
    FROM r JOIN m ON m.idx = (SELECT idx FROM m WHERE cum > r.pick ORDER BY cum LIMIT 1)
)
INSERT INTO calls (call_id, sip_call_id, node_id, caller, dialled, normalised, area_code,
    decision_kind, decision, municipality_cbs, destination, delivery, received_ms, decided_ms,
    ringing_ms, answered_ms, ended_ms, outcome, reject_reason, sip_status, post_dial_delay_ms,
    route_steps, ivr, local_day, hour_of_week, ivr_used, ivr_first_time, ivr_corrections)
SELECT
    printf('c%04d%07d', ?3, x),
    printf('%x@carrier', ?3 * 10000000 + x),
    'node-1',
    printf('06%08d', caller),
    fourteen, fourteen, area, 'forward',
    json_object('kind', 'forward', 'cbs', cbs),
    cbs,
    '+31' || substr(area, 2) || '1234567',
    CASE kind WHEN 'hup' THEN NULL ELSE kind END,
    t,
    CASE kind WHEN 'hup' THEN NULL ELSE t + sel_ms + 1 END,
    CASE kind WHEN 'bridge' THEN t + sel_ms + bridge_pdd END,
    CASE WHEN kind = 'bridge' AND w < 800 THEN t + sel_ms + bridge_pdd + answer_after END,
    t + sel_ms + 60000,
    CASE kind WHEN 'hup' THEN 'caller_hung_up_during_selection' WHEN 'redirect' THEN 'redirected'
        ELSE CASE WHEN w < 800 THEN 'answered' WHEN w < 880 THEN 'no_answer' WHEN w < 920 THEN 'busy'
            WHEN w < 990 THEN 'caller_hung_up_while_ringing' ELSE 'unreachable' END END,
    NULL,
    CASE kind WHEN 'hup' THEN 487 WHEN 'redirect' THEN 302 ELSE CASE WHEN w < 800 THEN 200 ELSE 480 END END,
    CASE kind WHEN 'hup' THEN NULL WHEN 'redirect' THEN redirect_pdd ELSE bridge_pdd END,
    CASE kind WHEN 'bridge' THEN '[{"step":"primary"}]' ELSE '[]' END,
    CASE WHEN shared = 1 THEN json_object('heard', 'gemeente', 'recognised_first_time',
        json(CASE WHEN ft < 850 THEN 'true' ELSE 'false' END), 'corrections', CASE WHEN ft < 850 THEN 0 ELSE 1 END) END,
    ?5, ?6,
    shared,
    CASE WHEN shared = 1 THEN (ft < 850) END,
    CASE WHEN shared = 1 AND ft >= 850 THEN 1 ELSE 0 END
FROM d;
