-- Outages (issue 5 item 4): incidents, their updates, notification targets, delivery log,
-- missed-update reminders and synthetic test calls. Everything that records what happened is
-- append-only (enforced by triggers): an incident is never edited, its state follows from its
-- updates; resolving is an update of kind 'resolved'.

CREATE TABLE incidents (
    id                 BIGSERIAL PRIMARY KEY,
    declared_ms        BIGINT NOT NULL,
    declared_by        TEXT NOT NULL,
    title_nl           TEXT NOT NULL,
    title_en           TEXT,
    severity           TEXT NOT NULL,        -- minor | major | critical
    all_municipalities BIGINT NOT NULL      -- 1: affects every municipality
);
CREATE INDEX incidents_declared ON incidents (declared_ms);

CREATE TABLE incident_municipalities (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    cbs         TEXT NOT NULL,
    PRIMARY KEY (incident_id, cbs)
);
CREATE INDEX incident_municipalities_cbs ON incident_municipalities (cbs);

CREATE TABLE incident_updates (
    id             BIGSERIAL PRIMARY KEY,
    incident_id    BIGINT NOT NULL REFERENCES incidents (id),
    at_ms          BIGINT NOT NULL,
    author         TEXT NOT NULL,
    kind           TEXT NOT NULL,            -- declared | update | resolved
    text_nl        TEXT NOT NULL,
    text_en        TEXT,
    next_update_ms BIGINT                   -- the promise; NULL only for 'resolved'
);
CREATE INDEX incident_updates_incident ON incident_updates (incident_id, id);

-- One row per missed promise: the primary key makes "remind once" hold across restarts and nodes.
CREATE TABLE incident_reminders (
    update_id   BIGINT PRIMARY KEY NOT NULL REFERENCES incident_updates (id),
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    reminded_ms BIGINT NOT NULL
);

-- Notification targets, editable by the municipality's admin and the operator (changes are audited).
CREATE TABLE notify_contacts (
    id         BIGSERIAL PRIMARY KEY,
    cbs        TEXT NOT NULL,
    email      TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (cbs, email)
);

CREATE TABLE notify_webhooks (
    cbs        TEXT PRIMARY KEY NOT NULL,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

-- Every delivery attempt (e-mail or webhook), successful or not.
CREATE TABLE notify_deliveries (
    id          BIGSERIAL PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    incident_id BIGINT,
    update_id   BIGINT,
    cbs         TEXT,
    channel     TEXT NOT NULL,               -- email | webhook
    target      TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    ok          BIGINT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX notify_deliveries_incident ON notify_deliveries (incident_id, id);

CREATE TABLE synthetic_schedules (
    cbs           TEXT PRIMARY KEY NOT NULL,
    every_minutes BIGINT NOT NULL,
    invite        BIGINT NOT NULL,          -- 1: also an INVITE, CANCELled after 180
    updated_ms    BIGINT NOT NULL,
    updated_by    TEXT NOT NULL
);

CREATE TABLE synthetic_results (
    id          BIGSERIAL PRIMARY KEY,
    cbs         TEXT NOT NULL,
    at_ms       BIGINT NOT NULL,
    method      TEXT NOT NULL,               -- OPTIONS | INVITE
    target      TEXT NOT NULL,
    reachable   BIGINT NOT NULL,
    status_code BIGINT,
    rtt_ms      BIGINT,
    detail      TEXT NOT NULL,
    requested_by TEXT NOT NULL
);
CREATE INDEX synthetic_results_cbs ON synthetic_results (cbs, at_ms);

-- veertien_append_only() comes from migration 0002.
CREATE TRIGGER incidents_append_only BEFORE UPDATE OR DELETE ON incidents
    FOR EACH ROW EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER incidents_no_truncate BEFORE TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER incident_municipalities_append_only BEFORE UPDATE OR DELETE ON incident_municipalities
    FOR EACH ROW EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER incident_municipalities_no_truncate BEFORE TRUNCATE ON incident_municipalities
    FOR EACH STATEMENT EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER incident_updates_append_only BEFORE UPDATE OR DELETE ON incident_updates
    FOR EACH ROW EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER incident_updates_no_truncate BEFORE TRUNCATE ON incident_updates
    FOR EACH STATEMENT EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER incident_reminders_append_only BEFORE UPDATE OR DELETE ON incident_reminders
    FOR EACH ROW EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER incident_reminders_no_truncate BEFORE TRUNCATE ON incident_reminders
    FOR EACH STATEMENT EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER notify_deliveries_append_only BEFORE UPDATE OR DELETE ON notify_deliveries
    FOR EACH ROW EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER notify_deliveries_no_truncate BEFORE TRUNCATE ON notify_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER synthetic_results_append_only BEFORE UPDATE OR DELETE ON synthetic_results
    FOR EACH ROW EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER synthetic_results_no_truncate BEFORE TRUNCATE ON synthetic_results
    FOR EACH STATEMENT EXECUTE FUNCTION veertien_append_only();
