//! [`Store`]: the handle the rest of the platform uses; dispatches to an engine.

use crate::engine::{Engine, Health};
use crate::postgres::PgEngine;
use crate::sqlite::SqliteEngine;
use crate::writer::{RecordWriter, WriterConfig};
use crate::{
    AuditEntry, AuditFilter, CallFilter, CallRecord, NewAuditEntry, SavedSettings, Stats,
    StatsQuery, StoreError, StoredSettings,
};

/// Cheap to clone (connection pools are shared).
#[derive(Clone)]
pub struct Store {
    engine: EngineKind,
}

#[derive(Clone)]
enum EngineKind {
    Sqlite(SqliteEngine),
    Postgres(PgEngine),
}

macro_rules! dispatch {
    ($self:expr, $e:ident => $body:expr) => {
        match &$self.engine {
            EngineKind::Sqlite($e) => $body,
            EngineKind::Postgres($e) => $body,
        }
    };
}

/// The engine's query pool, for the crate's own query modules (e.g. report.rs) that add
/// queries without widening the [`Engine`] seam.
pub(crate) enum PoolRef<'a> {
    Sqlite(&'a sqlx::SqlitePool),
    Postgres(&'a sqlx::PgPool),
}

impl Store {
    pub(crate) fn pool_ref(&self) -> PoolRef<'_> {
        match &self.engine {
            EngineKind::Sqlite(e) => PoolRef::Sqlite(e.pool()),
            EngineKind::Postgres(e) => PoolRef::Postgres(e.pool()),
        }
    }
}

pub(crate) fn check_period(q: &StatsQuery) -> Result<(), StoreError> {
    if q.to_ms <= q.from_ms {
        return Err(StoreError::InvalidInput(format!(
            "period end ({}) must be after its start ({})",
            q.to_ms, q.from_ms
        )));
    }
    Ok(())
}

impl Store {
    /// Opens (creating file and directories if needed) and migrates the database.
    ///
    /// `location`: a file path, `sqlite:PATH`, `sqlite://PATH`, or `postgres://…` /
    /// `postgresql://…`. SQLite is opened in WAL mode with `synchronous=FULL`.
    pub async fn open(location: &str) -> Result<Store, StoreError> {
        let engine = if location.starts_with("postgres://") || location.starts_with("postgresql://")
        {
            EngineKind::Postgres(PgEngine::open(location).await?)
        } else {
            let path = crate::sqlite::parse_location(location)
                .ok_or_else(|| StoreError::UnsupportedUrl(location.to_string()))?;
            EngineKind::Sqlite(SqliteEngine::open(&path).await?)
        };
        Ok(Store { engine })
    }

    /// "sqlite" or "postgres".
    pub fn engine_name(&self) -> &'static str {
        match self.engine {
            EngineKind::Sqlite(_) => "sqlite",
            EngineKind::Postgres(_) => "postgres",
        }
    }

    /// Starts a [`RecordWriter`] with its own connection; call from within a tokio runtime.
    /// With SQLite the record journal defaults to `<file>.records-journal` beside the database
    /// (records a killed process had not committed are replayed from it here).
    pub fn writer(&self, config: WriterConfig) -> RecordWriter {
        match &self.engine {
            EngineKind::Sqlite(e) => RecordWriter::spawn_with_default_journal(e.sink(), config, Some(e.journal_dir())),
            EngineKind::Postgres(e) => RecordWriter::spawn(e.sink(), config),
        }
    }

    /// Reachability, writability and schema version; never fails (errors are in the result).
    pub async fn health(&self) -> Health {
        dispatch!(self, e => e.health().await)
    }

    /// Writes records directly in one transaction, bypassing the writer — for tools,
    /// imports and tests, never for the call path (it waits on the database).
    pub async fn write_calls(&self, records: &[CallRecord]) -> Result<(), StoreError> {
        dispatch!(self, e => e.write_calls(records).await)
    }

    /// Recent calls, newest first.
    pub async fn list_calls(&self, filter: &CallFilter) -> Result<Vec<CallRecord>, StoreError> {
        dispatch!(self, e => e.list_calls(filter).await)
    }

    pub async fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        dispatch!(self, e => e.get_call(call_id).await)
    }

    pub async fn count_calls(&self) -> Result<u64, StoreError> {
        dispatch!(self, e => e.count_calls().await)
    }

    /// Management figures for a period and the previous period of equal length.
    pub async fn stats(&self, q: &StatsQuery) -> Result<Stats, StoreError> {
        dispatch!(self, e => e.stats(q).await)
    }

    /// Every municipality's current settings document, for start-up.
    pub async fn load_all_settings(&self) -> Result<Vec<StoredSettings>, StoreError> {
        dispatch!(self, e => e.load_all_settings().await)
    }

    /// Saves a new version of a municipality's settings and one audit entry per changed
    /// field, in one transaction. Saving an identical document writes nothing.
    pub async fn save_settings(
        &self,
        cbs: &str,
        document: &serde_json::Value,
        actor: &str,
    ) -> Result<SavedSettings, StoreError> {
        dispatch!(self, e => e.save_settings(cbs, document, actor, None).await)
    }

    /// As [`Store::save_settings`], but refuses with [`StoreError::VersionConflict`] when
    /// the current version is not `expected_version` (0 = no settings yet), so a portal
    /// form edited from a stale copy cannot overwrite someone else's change.
    pub async fn save_settings_if_version(
        &self,
        cbs: &str,
        document: &serde_json::Value,
        actor: &str,
        expected_version: i64,
    ) -> Result<SavedSettings, StoreError> {
        dispatch!(self, e => e.save_settings(cbs, document, actor, Some(expected_version)).await)
    }

    /// Appends an event to the audit log (e.g. a login, an incident update, a calamity switch).
    pub async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry, StoreError> {
        dispatch!(self, e => e.append_audit(entry).await)
    }

    /// Audit entries, newest first.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        dispatch!(self, e => e.audit_log(filter).await)
    }

    /// Closes the query pool (the writer has its own connection; close it first with
    /// [`RecordWriter::flush_and_close`]).
    pub async fn close(&self) {
        dispatch!(self, e => e.close().await)
    }
}
