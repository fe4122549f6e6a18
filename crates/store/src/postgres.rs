//! PostgreSQL engine: same schema and statements as SQLite (see `sql.rs`), for
//! deployments that run several nodes against one database.
//!
//! Durability: a commit returns after the server has flushed its WAL (the default
//! `synchronous_commit = on`); the sink sets it explicitly so a server-wide `off` cannot
//! weaken the "no finished call lost" guarantee.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Row};

use crate::engine::{Engine, Health, RecordSink, now_ms, validate_settings_input};
use crate::settings::diff;
use crate::sql::{self, Dialect, bind_args};
use crate::{
    AuditEntry, AuditFilter, CallFilter, CallRecord, NewAuditEntry, SavedSettings, Stats,
    StatsQuery, StoreError, StoredSettings,
};

const D: Dialect = Dialect::Postgres;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone)]
pub struct PgEngine {
    pool: PgPool,
    opts: PgConnectOptions,
    location: String,
}

impl PgEngine {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let opts: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::InvalidInput(format!("bad PostgreSQL URL: {e}")))?;
        let opts = opts.options([("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        // Never log or report the password.
        let location = format!(
            "postgres://{}@{}:{}/{}",
            opts.get_username(),
            opts.get_host(),
            opts.get_port(),
            opts.get_database().unwrap_or("")
        );
        Ok(PgEngine { pool, opts, location })
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn sink(&self) -> PgSink {
        PgSink {
            opts: self.opts.clone(),
            conn: None,
            sql: sql::CallUpserts::new(D),
            location: self.location.clone(),
        }
    }

    async fn fetch_groups(
        &self,
        q: &StatsQuery,
        from: i64,
        to: i64,
    ) -> Result<crate::PeriodStats, StoreError> {
        let g = sql::stats_groups_sql(D, q, from, to);
        let groups: String =
            bind_args!(sqlx::query_scalar(&g.text), g.args).fetch_one(&self.pool).await?;
        let groups: Vec<sql::GroupRow> = sql::parse_json_rows("stats groups", &groups)?;
        let h = sql::pdd_hist_sql(D, q, from, to);
        let pdd: String =
            bind_args!(sqlx::query_scalar(&h.text), h.args).fetch_one(&self.pool).await?;
        let pdd: Vec<(i64, i64)> = sql::parse_json_rows("post-dial delay histogram", &pdd)?;
        sql::fold_period(from, to, groups, pdd)
    }
}

async fn write_records(
    conn: &mut PgConnection,
    upserts: &sql::CallUpserts,
    records: &[&CallRecord],
) -> Result<(), StoreError> {
    let mut tx = conn.begin().await?;
    for (upsert, rows) in upserts.plan(records) {
        bind_args!(sqlx::query(upsert), sql::CallUpserts::args(&rows)).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

impl Engine for PgEngine {
    async fn health(&self) -> Health {
        let mut h = Health {
            engine: "postgres".into(),
            location: self.location.clone(),
            reachable: false,
            writable: false,
            schema_version: None,
            error: None,
        };
        match sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.pool)
        .await
        {
            Ok(v) => {
                h.reachable = true;
                h.schema_version = v;
            }
            Err(e) => {
                h.error = Some(e.to_string());
                return h;
            }
        }
        match sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()").fetch_one(&self.pool).await
        {
            Ok(false) => h.writable = true,
            Ok(true) => h.error = Some("server is a read-only standby".into()),
            Err(e) => h.error = Some(e.to_string()),
        }
        h
    }

    async fn write_calls(&self, records: &[CallRecord]) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        write_records(&mut conn, &sql::CallUpserts::new(D), &records.iter().collect::<Vec<_>>()).await
    }

    async fn list_calls(&self, filter: &CallFilter) -> Result<Vec<CallRecord>, StoreError> {
        let q = sql::list_calls_sql(D, filter);
        let rows: Vec<sql::CallRow> =
            bind_args!(sqlx::query_as(&q.text), q.args).fetch_all(&self.pool).await?;
        rows.into_iter().map(CallRecord::try_from).collect()
    }

    async fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        let text = format!("SELECT {} FROM calls WHERE call_id = $1", sql::RECORD_SELECT);
        let row: Option<sql::CallRow> =
            sqlx::query_as(&text).bind(call_id).fetch_optional(&self.pool).await?;
        row.map(CallRecord::try_from).transpose()
    }

    async fn count_calls(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM calls").fetch_one(&self.pool).await?;
        Ok(n as u64)
    }

    async fn stats(&self, q: &StatsQuery) -> Result<Stats, StoreError> {
        crate::store::check_period(q)?;
        let (prev_from, prev_to) = crate::report::previous_period(q.from_ms, q.to_ms);
        Ok(Stats {
            municipality: q.municipality.clone(),
            current: self.fetch_groups(q, q.from_ms, q.to_ms).await?,
            previous: self.fetch_groups(q, prev_from, prev_to).await?,
        })
    }

    async fn load_all_settings(&self) -> Result<Vec<StoredSettings>, StoreError> {
        let rows = sqlx::query(
            "SELECT cbs, version, document, updated_ms, updated_by FROM municipality_settings ORDER BY cbs",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let cbs: String = r.try_get("cbs")?;
                let doc: String = r.try_get("document")?;
                Ok(StoredSettings {
                    document: serde_json::from_str(&doc).map_err(|e| {
                        StoreError::Corrupt(format!("settings of {cbs}: {e}"))
                    })?,
                    version: r.try_get("version")?,
                    updated_ms: r.try_get("updated_ms")?,
                    updated_by: r.try_get("updated_by")?,
                    cbs,
                })
            })
            .collect()
    }

    async fn save_settings(
        &self,
        cbs: &str,
        document: &serde_json::Value,
        actor: &str,
        expected_version: Option<i64>,
    ) -> Result<SavedSettings, StoreError> {
        validate_settings_input(cbs, document, actor)?;
        let mut tx = self.pool.begin().await?;
        // Serialise saves of one municipality, including its very first save (no row to lock yet).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('veertien.settings.' || $1))")
            .bind(cbs)
            .execute(&mut *tx)
            .await?;
        let current: Option<(i64, String)> =
            sqlx::query_as("SELECT version, document FROM municipality_settings WHERE cbs = $1")
                .bind(cbs)
                .fetch_optional(&mut *tx)
                .await?;
        let (cur_version, before) = match &current {
            Some((v, d)) => (
                *v,
                serde_json::from_str(d)
                    .map_err(|e| StoreError::Corrupt(format!("settings of {cbs}: {e}")))?,
            ),
            None => (0, serde_json::Value::Object(Default::default())),
        };
        if let Some(exp) = expected_version.filter(|e| *e != cur_version) {
            return Err(StoreError::VersionConflict {
                cbs: cbs.into(),
                expected: exp,
                current: cur_version,
            });
        }
        let changes = diff(&before, document);
        if changes.is_empty() && current.is_some() {
            tx.rollback().await?;
            return Ok(SavedSettings { version: cur_version, changes: vec![] });
        }
        let version = cur_version + 1;
        let at = now_ms();
        let doc_text = document.to_string();
        sqlx::query(
            "INSERT INTO municipality_settings (cbs, version, document, updated_ms, updated_by) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (cbs) DO UPDATE SET version = excluded.version, \
             document = excluded.document, updated_ms = excluded.updated_ms, updated_by = excluded.updated_by",
        )
        .bind(cbs)
        .bind(version)
        .bind(&doc_text)
        .bind(at)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO settings_versions (cbs, version, document, saved_ms, saved_by) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(cbs)
        .bind(version)
        .bind(&doc_text)
        .bind(at)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        let mut entries = Vec::with_capacity(changes.len());
        for (what, b, a) in changes {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO audit_log (at_ms, actor, municipality_cbs, what, before, after) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(at)
            .bind(actor)
            .bind(cbs)
            .bind(&what)
            .bind(b.as_ref().map(|v| v.to_string()))
            .bind(a.as_ref().map(|v| v.to_string()))
            .fetch_one(&mut *tx)
            .await?;
            entries.push(AuditEntry {
                id,
                at_ms: at,
                actor: actor.into(),
                municipality_cbs: Some(cbs.into()),
                what,
                before: b,
                after: a,
            });
        }
        tx.commit().await?;
        Ok(SavedSettings { version, changes: entries })
    }

    async fn append_audit(&self, e: &NewAuditEntry) -> Result<AuditEntry, StoreError> {
        if e.actor.trim().is_empty() || e.what.trim().is_empty() {
            return Err(StoreError::InvalidInput("an audit entry needs an actor and a 'what'".into()));
        }
        let at = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_log (at_ms, actor, municipality_cbs, what, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(at)
        .bind(&e.actor)
        .bind(&e.municipality_cbs)
        .bind(&e.what)
        .bind(e.before.as_ref().map(|v| v.to_string()))
        .bind(e.after.as_ref().map(|v| v.to_string()))
        .fetch_one(&self.pool)
        .await?;
        Ok(AuditEntry {
            id,
            at_ms: at,
            actor: e.actor.clone(),
            municipality_cbs: e.municipality_cbs.clone(),
            what: e.what.clone(),
            before: e.before.clone(),
            after: e.after.clone(),
        })
    }

    async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let q = sql::audit_list_sql(D, filter);
        let rows: Vec<sql::AuditRow> =
            bind_args!(sqlx::query_as(&q.text), q.args).fetch_all(&self.pool).await?;
        rows.into_iter().map(AuditEntry::try_from).collect()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// The writer's own connection to PostgreSQL.
pub struct PgSink {
    opts: PgConnectOptions,
    conn: Option<PgConnection>,
    sql: sql::CallUpserts,
    location: String,
}

impl RecordSink for PgSink {
    async fn write_batch<'a>(
        &'a mut self,
        records: &'a [&'a CallRecord],
    ) -> Result<(), StoreError> {
        if self.conn.is_none() {
            self.conn = Some(self.opts.connect().await?);
        }
        let conn = self.conn.as_mut().expect("connected above");
        let res = write_records(conn, &self.sql, records).await;
        if let Err(e) = &res
            && e.is_transient()
            && let Some(c) = self.conn.take()
        {
            let _ = c.close_hard().await;
        }
        res
    }

    fn describe(&self) -> String {
        self.location.clone()
    }
}
