-- One row per call. See crates/store/src/record.rs for field meanings.
-- Column types are kept to what PostgreSQL also has (see ../postgres/0001_calls.sql),
-- so both engines run the same queries with only placeholder syntax differing.
CREATE TABLE calls (
    call_id            TEXT PRIMARY KEY NOT NULL,
    sip_call_id        TEXT NOT NULL,
    node_id            TEXT NOT NULL,
    caller             TEXT NOT NULL,
    dialled            TEXT NOT NULL,
    normalised         TEXT,
    area_code          TEXT,
    decision_kind      TEXT NOT NULL,
    decision           TEXT NOT NULL,            -- JSON
    municipality_cbs   TEXT,
    destination        TEXT,
    delivery           TEXT CHECK (delivery IN ('redirect', 'bridge')),
    received_ms        INTEGER NOT NULL,
    decided_ms         INTEGER,
    ringing_ms         INTEGER,
    answered_ms        INTEGER,
    ended_ms           INTEGER,
    outcome            TEXT CHECK (outcome IN ('redirected', 'answered', 'busy', 'no_answer',
                           'unreachable', 'caller_hung_up_during_selection',
                           'caller_hung_up_while_ringing', 'announcement', 'rejected')),
    reject_reason      TEXT,
    sip_status         INTEGER,
    post_dial_delay_ms INTEGER,
    route_steps        TEXT NOT NULL,            -- JSON array
    ivr                TEXT,                     -- JSON, filled by the IVR
    -- Derived at write time (Europe/Amsterdam) so management figures group on plain
    -- columns instead of converting 12 million timestamps per query.
    local_day          TEXT NOT NULL,            -- 'YYYY-MM-DD'
    hour_of_week       INTEGER NOT NULL,         -- 0 = Monday 00h
    ivr_used           INTEGER NOT NULL,         -- 0/1
    ivr_first_time     INTEGER,                  -- 1/0/NULL (no name asked)
    ivr_corrections    INTEGER NOT NULL
);

-- Covering indexes for the management figures: every column the aggregates read is in
-- the index, so a period scan never touches the wide rows (JSON columns).
-- The national one also serves "recent calls" (ORDER BY received_ms DESC) and time ranges.
CREATE INDEX calls_stats_national ON calls (received_ms, outcome, delivery, local_day,
    hour_of_week, ringing_ms, answered_ms, post_dial_delay_ms, ivr_used, ivr_first_time,
    ivr_corrections);
CREATE INDEX calls_stats_municipality ON calls (municipality_cbs, received_ms, outcome,
    delivery, local_day, hour_of_week, ringing_ms, answered_ms, post_dial_delay_ms, ivr_used,
    ivr_first_time, ivr_corrections);
-- Number search ("who called", "calls to this destination").
CREATE INDEX calls_caller ON calls (caller, received_ms);
CREATE INDEX calls_normalised ON calls (normalised, received_ms);
CREATE INDEX calls_dialled ON calls (dialled, received_ms);
CREATE INDEX calls_destination ON calls (destination, received_ms);
CREATE INDEX calls_sip_call_id ON calls (sip_call_id);
