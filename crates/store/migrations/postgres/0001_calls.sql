-- Same schema as ../sqlite/0001_calls.sql; integers are BIGINT, JSON kept as TEXT so
-- both engines bind and read the same Rust types.
CREATE TABLE calls (
    call_id            TEXT PRIMARY KEY NOT NULL,
    sip_call_id        TEXT NOT NULL,
    node_id            TEXT NOT NULL,
    caller             TEXT NOT NULL,
    dialled            TEXT NOT NULL,
    normalised         TEXT,
    area_code          TEXT,
    decision_kind      TEXT NOT NULL,
    decision           TEXT NOT NULL,
    municipality_cbs   TEXT,
    destination        TEXT,
    delivery           TEXT CHECK (delivery IN ('redirect', 'bridge')),
    received_ms        BIGINT NOT NULL,
    decided_ms         BIGINT,
    ringing_ms         BIGINT,
    answered_ms        BIGINT,
    ended_ms           BIGINT,
    outcome            TEXT CHECK (outcome IN ('redirected', 'answered', 'busy', 'no_answer',
                           'unreachable', 'caller_hung_up_during_selection',
                           'caller_hung_up_while_ringing', 'announcement', 'rejected')),
    reject_reason      TEXT,
    sip_status         BIGINT,
    post_dial_delay_ms BIGINT,
    route_steps        TEXT NOT NULL,
    ivr                TEXT,
    local_day          TEXT NOT NULL,
    hour_of_week       BIGINT NOT NULL,
    ivr_used           BIGINT NOT NULL,
    ivr_first_time     BIGINT,
    ivr_corrections    BIGINT NOT NULL
);

CREATE INDEX calls_stats_national ON calls (received_ms) INCLUDE (outcome, delivery,
    local_day, hour_of_week, ringing_ms, answered_ms, post_dial_delay_ms, ivr_used,
    ivr_first_time, ivr_corrections);
CREATE INDEX calls_stats_municipality ON calls (municipality_cbs, received_ms) INCLUDE (
    outcome, delivery, local_day, hour_of_week, ringing_ms, answered_ms, post_dial_delay_ms,
    ivr_used, ivr_first_time, ivr_corrections);
CREATE INDEX calls_caller ON calls (caller, received_ms);
CREATE INDEX calls_normalised ON calls (normalised, received_ms);
CREATE INDEX calls_dialled ON calls (dialled, received_ms);
CREATE INDEX calls_destination ON calls (destination, received_ms);
CREATE INDEX calls_sip_call_id ON calls (sip_call_id);
