-- Portal accounts and server-side sessions (see crates/store/src/accounts.rs).
CREATE TABLE users (
    email               TEXT PRIMARY KEY NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('operator', 'admin', 'viewer')),
    municipality_cbs    TEXT,
    password_hash       TEXT NOT NULL,
    disabled            BOOLEAN NOT NULL DEFAULT FALSE,
    password_changed_ms BIGINT NOT NULL,
    created_ms          BIGINT NOT NULL,
    updated_ms          BIGINT NOT NULL,
    CHECK (role <> 'admin' OR municipality_cbs IS NOT NULL)
);

-- Only the SHA-256 of the cookie's session id is stored.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    email        TEXT NOT NULL REFERENCES users (email) ON DELETE CASCADE,
    csrf         TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
CREATE INDEX sessions_email ON sessions (email);
