//! The engine seam: everything the platform asks of a database, small enough that a
//! second engine (PostgreSQL) is one more implementation of [`Engine`] and [`RecordSink`].

use serde::{Deserialize, Serialize};

use crate::{
    AuditEntry, AuditFilter, CallFilter, CallRecord, NewAuditEntry, SavedSettings, Stats,
    StatsQuery, StoreError, StoredSettings,
};

/// Result of [`crate::Store::health`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// "sqlite" or "postgres".
    pub engine: String,
    /// File path or URL without credentials.
    pub location: String,
    /// The database answered a query.
    pub reachable: bool,
    /// A write transaction could be started (not locked, read-only, moved or full).
    pub writable: bool,
    /// Highest applied migration.
    pub schema_version: Option<i64>,
    pub error: Option<String>,
}

impl Health {
    pub fn ok(&self) -> bool {
        self.reachable && self.writable && self.error.is_none()
    }
}

/// Query and settings side of an engine.
#[allow(async_fn_in_trait)] // implemented only inside this crate; futures are Send by inference
pub trait Engine: Clone + Send + Sync + 'static {
    async fn health(&self) -> Health;
    async fn write_calls(&self, records: &[CallRecord]) -> Result<(), StoreError>;
    async fn list_calls(&self, filter: &CallFilter) -> Result<Vec<CallRecord>, StoreError>;
    async fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError>;
    async fn count_calls(&self) -> Result<u64, StoreError>;
    async fn stats(&self, q: &StatsQuery) -> Result<Stats, StoreError>;
    async fn load_all_settings(&self) -> Result<Vec<StoredSettings>, StoreError>;
    async fn save_settings(
        &self,
        cbs: &str,
        document: &serde_json::Value,
        actor: &str,
        expected_version: Option<i64>,
    ) -> Result<SavedSettings, StoreError>;
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry, StoreError>;
    async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
    async fn close(&self);
}

/// Write side used by [`crate::RecordWriter`]: a dedicated connection that is dropped and
/// re-opened after a failure, so an outage (file moved, server restarted) heals without
/// restarting the process.
pub trait RecordSink: Send + 'static {
    /// Writes all records in one transaction (all or nothing). When this returns Ok the
    /// records are durable as the engine defines it (SQLite: WAL fsynced,
    /// synchronous=FULL; PostgreSQL: commit acknowledged with synchronous_commit on).
    fn write_batch<'a>(
        &'a mut self,
        records: &'a [&'a CallRecord],
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'a;
    /// Human-readable target for log lines.
    fn describe(&self) -> String;
}

pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub(crate) fn validate_settings_input(
    cbs: &str,
    document: &serde_json::Value,
    actor: &str,
) -> Result<(), StoreError> {
    if cbs.is_empty() || cbs.len() > 16 || !cbs.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(StoreError::InvalidInput(format!(
            "municipality code '{cbs}' is not a CBS code like GM0664"
        )));
    }
    if !document.is_object() {
        return Err(StoreError::InvalidInput(format!(
            "settings of {cbs} must be a JSON object, got {}",
            match document {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::Object(_) => "an object",
            }
        )));
    }
    if actor.trim().is_empty() {
        return Err(StoreError::InvalidInput("a settings change needs an actor (who)".into()));
    }
    Ok(())
}
