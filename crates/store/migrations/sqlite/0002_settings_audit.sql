-- Current settings document per municipality (JSON, the serde form of
-- veertien-core's MunicipalitySettings), plus every version ever saved.
CREATE TABLE municipality_settings (
    cbs        TEXT PRIMARY KEY NOT NULL,
    version    INTEGER NOT NULL,
    document   TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE settings_versions (
    cbs      TEXT NOT NULL,
    version  INTEGER NOT NULL,
    document TEXT NOT NULL,
    saved_ms INTEGER NOT NULL,
    saved_by TEXT NOT NULL,
    PRIMARY KEY (cbs, version)
);

-- Who changed what, before, after, when. Append-only: enforced below, not by convention.
CREATE TABLE audit_log (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms            INTEGER NOT NULL,
    actor            TEXT NOT NULL,
    municipality_cbs TEXT,
    what             TEXT NOT NULL,
    before           TEXT,   -- JSON or NULL when absent
    after            TEXT    -- JSON or NULL when absent
);
CREATE INDEX audit_log_municipality ON audit_log (municipality_cbs, at_ms);
CREATE INDEX audit_log_at ON audit_log (at_ms);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER settings_versions_no_update BEFORE UPDATE ON settings_versions
BEGIN SELECT RAISE(ABORT, 'settings_versions is append-only'); END;
CREATE TRIGGER settings_versions_no_delete BEFORE DELETE ON settings_versions
BEGIN SELECT RAISE(ABORT, 'settings_versions is append-only'); END;
