CREATE TABLE municipality_settings (
    cbs        TEXT PRIMARY KEY NOT NULL,
    version    BIGINT NOT NULL,
    document   TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE settings_versions (
    cbs      TEXT NOT NULL,
    version  BIGINT NOT NULL,
    document TEXT NOT NULL,
    saved_ms BIGINT NOT NULL,
    saved_by TEXT NOT NULL,
    PRIMARY KEY (cbs, version)
);

CREATE TABLE audit_log (
    id               BIGSERIAL PRIMARY KEY,
    at_ms            BIGINT NOT NULL,
    actor            TEXT NOT NULL,
    municipality_cbs TEXT,
    what             TEXT NOT NULL,
    before           TEXT,
    after            TEXT
);
CREATE INDEX audit_log_municipality ON audit_log (municipality_cbs, at_ms);
CREATE INDEX audit_log_at ON audit_log (at_ms);

CREATE FUNCTION veertien_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER settings_versions_append_only BEFORE UPDATE OR DELETE ON settings_versions
    FOR EACH ROW EXECUTE FUNCTION veertien_append_only();
CREATE TRIGGER settings_versions_no_truncate BEFORE TRUNCATE ON settings_versions
    FOR EACH STATEMENT EXECUTE FUNCTION veertien_append_only();
