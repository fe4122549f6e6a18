-- Portal accounts and server-side sessions (see crates/store/src/accounts.rs).
CREATE TABLE users (
    email               TEXT PRIMARY KEY NOT NULL,   -- lower-cased login name
    role                TEXT NOT NULL CHECK (role IN ('operator', 'admin', 'viewer')),
    municipality_cbs    TEXT,
    password_hash       TEXT NOT NULL,               -- argon2id PHC string, never a password
    disabled            BOOLEAN NOT NULL DEFAULT 0,
    password_changed_ms INTEGER NOT NULL,
    created_ms          INTEGER NOT NULL,
    updated_ms          INTEGER NOT NULL,
    CHECK (role <> 'admin' OR municipality_cbs IS NOT NULL)
);

-- The cookie holds a random id; only its SHA-256 is stored, so a copy of the database does not
-- give anyone a live session.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    email        TEXT NOT NULL REFERENCES users (email) ON DELETE CASCADE,
    csrf         TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE INDEX sessions_email ON sessions (email);
