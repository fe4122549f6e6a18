use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the directory for the database {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unsupported database location '{0}' (expected a file path, sqlite:PATH or postgres://…)")]
    UnsupportedUrl(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The thing asked for does not exist (e.g. an incident id).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request contradicts the stored state (e.g. updating a resolved incident).
    #[error("{0}")]
    Conflict(String),
    #[error(
        "settings of {cbs} were changed by someone else (expected version {expected}, current {current})"
    )]
    VersionConflict {
        cbs: String,
        expected: i64,
        current: i64,
    },
}

impl StoreError {
    /// Whether retrying the same write later can succeed (outage, lock, full disk) as
    /// opposed to the data itself being refused (constraint, type mismatch). The writer
    /// keeps transient failures buffered and isolates permanent ones so one bad record
    /// cannot block the queue.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(e) => sqlx_is_transient(e),
            StoreError::InvalidInput(_) | StoreError::Corrupt(_) => false,
            StoreError::VersionConflict { .. } | StoreError::NotFound(_) | StoreError::Conflict(_) => false,
            _ => true,
        }
    }
}

pub(crate) fn sqlx_is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if let Ok(n) = code.parse::<i64>() {
                // SQLite result codes: the primary code is the low byte.
                // CONSTRAINT(19), MISMATCH(20), TOOBIG(18), RANGE(25) are about the data;
                // everything else (BUSY, LOCKED, FULL, IOERR, READONLY incl. DBMOVED,
                // CANTOPEN, and ERROR as "no such table" in a replaced file) can heal.
                !matches!(n & 0xff, 18..=20 | 25)
            } else {
                // PostgreSQL SQLSTATE: class 22 data exception, 23 integrity violation,
                // 42 syntax/access rule are about the statement or the data.
                !(code.starts_with("22") || code.starts_with("23") || code.starts_with("42"))
            }
        }
        sqlx::Error::Encode(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => false,
        _ => true,
    }
}
