//! veertien-store: durable call records, settings and the audit log.
//!
//! * [`Store::open`] opens SQLite (default; WAL, `synchronous=FULL`) or PostgreSQL and runs
//!   the embedded migrations.
//! * [`RecordWriter`] takes finished (or updated) [`CallRecord`]s from the call path with a
//!   non-blocking [`RecordWriter::try_submit`] — the call path never waits on the database.
//! * Queries for `veertien calls` and the portal: [`Store::list_calls`], [`Store::get_call`],
//!   [`Store::stats`].
//! * Settings: [`Store::load_all_settings`], [`Store::save_settings`] (new version + audit
//!   entries in one transaction); the audit log is append-only, enforced by the database.

mod accounts;
mod engine;
mod error;
mod incidents;
mod journal;
mod postgres;
mod query;
mod record;
mod report;
mod rollup_fold;
mod settings;
mod sql;
mod sqlite;
mod store;
mod writer;

pub use accounts::{Account, NewAccount, ROLES, SessionInfo, SessionPolicy};
pub use engine::{Engine, Health, RecordSink};
pub use error::StoreError;
pub use incidents::{
    Contact, DeliveryAttempt, Incident, IncidentFilter, IncidentUpdate, MAX_PROMISE_MS, NewDelivery, NewIncident,
    NewIncidentUpdate, NewSyntheticResult, Severity, SyntheticResult, SyntheticSchedule, UpdateKind, Webhook,
    check_promise,
};
pub use query::{CallFilter, PeriodStats, Percentiles, Stats, StatsQuery};
pub use record::{
    CallRecord, Delivery, IVR_KEY_CORRECTIONS, IVR_KEY_RECOGNISED_FIRST_TIME, Outcome, RawJson,
    local_day_start_ms,
};
pub use report::{Report, RoutingFigures};
pub use settings::{AuditEntry, AuditFilter, NewAuditEntry, SavedSettings, StoredSettings};
pub use store::Store;
pub use writer::{DurableAck, Lost, RecordWriter, SubmitError, WriterConfig, WriterMetrics};
