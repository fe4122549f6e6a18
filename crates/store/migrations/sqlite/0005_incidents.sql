-- Outages (issue 5 item 4): incidents, their updates, notification targets, delivery log,
-- missed-update reminders and synthetic test calls. Everything that records what happened is
-- append-only (enforced by triggers): an incident is never edited, its state follows from its
-- updates; resolving is an update of kind 'resolved'.

CREATE TABLE incidents (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    declared_ms        INTEGER NOT NULL,
    declared_by        TEXT NOT NULL,
    title_nl           TEXT NOT NULL,
    title_en           TEXT,
    severity           TEXT NOT NULL,        -- minor | major | critical
    all_municipalities INTEGER NOT NULL      -- 1: affects every municipality
);
CREATE INDEX incidents_declared ON incidents (declared_ms);

CREATE TABLE incident_municipalities (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    cbs         TEXT NOT NULL,
    PRIMARY KEY (incident_id, cbs)
);
CREATE INDEX incident_municipalities_cbs ON incident_municipalities (cbs);

CREATE TABLE incident_updates (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id    INTEGER NOT NULL REFERENCES incidents (id),
    at_ms          INTEGER NOT NULL,
    author         TEXT NOT NULL,
    kind           TEXT NOT NULL,            -- declared | update | resolved
    text_nl        TEXT NOT NULL,
    text_en        TEXT,
    next_update_ms INTEGER                   -- the promise; NULL only for 'resolved'
);
CREATE INDEX incident_updates_incident ON incident_updates (incident_id, id);

-- One row per missed promise: the primary key makes "remind once" hold across restarts and nodes.
CREATE TABLE incident_reminders (
    update_id   INTEGER PRIMARY KEY NOT NULL REFERENCES incident_updates (id),
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    reminded_ms INTEGER NOT NULL
);

-- Notification targets, editable by the municipality's admin and the operator (changes are audited).
CREATE TABLE notify_contacts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    cbs        TEXT NOT NULL,
    email      TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (cbs, email)
);

CREATE TABLE notify_webhooks (
    cbs        TEXT PRIMARY KEY NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);

-- Every delivery attempt (e-mail or webhook), successful or not.
CREATE TABLE notify_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    incident_id INTEGER,
    update_id   INTEGER,
    cbs         TEXT,
    channel     TEXT NOT NULL,               -- email | webhook
    target      TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX notify_deliveries_incident ON notify_deliveries (incident_id, id);

CREATE TABLE synthetic_schedules (
    cbs           TEXT PRIMARY KEY NOT NULL,
    every_minutes INTEGER NOT NULL,
    invite        INTEGER NOT NULL,          -- 1: also an INVITE, CANCELled after 180
    updated_ms    INTEGER NOT NULL,
    updated_by    TEXT NOT NULL
);

CREATE TABLE synthetic_results (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cbs         TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    method      TEXT NOT NULL,               -- OPTIONS | INVITE
    target      TEXT NOT NULL,
    reachable   INTEGER NOT NULL,
    status_code INTEGER,
    rtt_ms      INTEGER,
    detail      TEXT NOT NULL,
    requested_by TEXT NOT NULL
);
CREATE INDEX synthetic_results_cbs ON synthetic_results (cbs, at_ms);

CREATE TRIGGER incidents_no_update BEFORE UPDATE ON incidents
BEGIN SELECT RAISE(ABORT, 'incidents is append-only'); END;
CREATE TRIGGER incidents_no_delete BEFORE DELETE ON incidents
BEGIN SELECT RAISE(ABORT, 'incidents is append-only'); END;
CREATE TRIGGER incident_municipalities_no_update BEFORE UPDATE ON incident_municipalities
BEGIN SELECT RAISE(ABORT, 'incident_municipalities is append-only'); END;
CREATE TRIGGER incident_municipalities_no_delete BEFORE DELETE ON incident_municipalities
BEGIN SELECT RAISE(ABORT, 'incident_municipalities is append-only'); END;
CREATE TRIGGER incident_updates_no_update BEFORE UPDATE ON incident_updates
BEGIN SELECT RAISE(ABORT, 'incident_updates is append-only'); END;
CREATE TRIGGER incident_updates_no_delete BEFORE DELETE ON incident_updates
BEGIN SELECT RAISE(ABORT, 'incident_updates is append-only'); END;
CREATE TRIGGER incident_reminders_no_update BEFORE UPDATE ON incident_reminders
BEGIN SELECT RAISE(ABORT, 'incident_reminders is append-only'); END;
CREATE TRIGGER incident_reminders_no_delete BEFORE DELETE ON incident_reminders
BEGIN SELECT RAISE(ABORT, 'incident_reminders is append-only'); END;
CREATE TRIGGER notify_deliveries_no_update BEFORE UPDATE ON notify_deliveries
BEGIN SELECT RAISE(ABORT, 'notify_deliveries is append-only'); END;
CREATE TRIGGER notify_deliveries_no_delete BEFORE DELETE ON notify_deliveries
BEGIN SELECT RAISE(ABORT, 'notify_deliveries is append-only'); END;
CREATE TRIGGER synthetic_results_no_update BEFORE UPDATE ON synthetic_results
BEGIN SELECT RAISE(ABORT, 'synthetic_results is append-only'); END;
CREATE TRIGGER synthetic_results_no_delete BEFORE DELETE ON synthetic_results
BEGIN SELECT RAISE(ABORT, 'synthetic_results is append-only'); END;
