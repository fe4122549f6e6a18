//! SQLite engine: one file in WAL mode.
//!
//! Durability choice: `synchronous=FULL`. In WAL mode `NORMAL` survives a process crash
//! (SIGKILL) but a power loss or kernel crash can roll back the last committed
//! transactions — that would lose records of finished calls, which issue 3 forbids.
//! `FULL` fsyncs the WAL at every commit; because the writer batches records into one
//! transaction, the cost is one fsync per batch, not per call (see docs/PERFORMANCE-store.md).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Row};

use crate::engine::{Engine, Health, RecordSink, now_ms, validate_settings_input};
use crate::settings::diff;
use crate::sql::{self, Dialect, bind_args};
use crate::{
    AuditEntry, AuditFilter, CallFilter, CallRecord, NewAuditEntry, SavedSettings, Stats,
    StatsQuery, StoreError, StoredSettings,
};

const D: Dialect = Dialect::Sqlite;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteEngine {
    pool: SqlitePool,
    path: PathBuf,
    opts: SqliteConnectOptions,
}

fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        // A writer waiting on a lock is off the call path, so waiting a little beats
        // failing and buffering; a longer lock counts as an outage.
        .busy_timeout(Duration::from_secs(2))
}

impl SqliteEngine {
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let opts = connect_options(path);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            // Recycle connections so a replaced or restored file is picked up.
            .max_lifetime(Duration::from_secs(300))
            .idle_timeout(Duration::from_secs(60))
            .connect_with(opts.clone().create_if_missing(true))
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteEngine { pool, path: path.to_path_buf(), opts })
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) fn sink(&self) -> SqliteSink {
        SqliteSink {
            // The file exists once open() ran; if it disappears later the sink must not
            // silently start a fresh empty database, so it waits for the file to return.
            opts: self
                .opts
                .clone()
                .create_if_missing(false)
                // A batch is one multi-row upsert with rollup triggers inside a transaction,
                // so SQLite keeps a statement journal (the original of every page the statement
                // changes). On disk that was a new temp file per batch and more bytes than the
                // WAL itself; in memory it is at most one batch's pages and freed at commit.
                // Only this connection: the portal's big sorts keep spilling to temp files.
                .pragma("temp_store", "memory")
                // Checkpoint every ~40 MB of WAL instead of ~4 MB: the same hot pages (rollups,
                // index tails, interior pages) are copied into the database once per checkpoint,
                // not ten times. writer_cpu: 68 -> 51 KB written per record (PERFORMANCE-store.md).
                .pragma("wal_autocheckpoint", "10000"),
            conn: None,
            file_id: None,
            sql: sql::CallUpserts::new(D),
            path: self.path.clone(),
        }
    }

    /// The record journal's default place: beside the database file.
    pub(crate) fn journal_dir(&self) -> PathBuf {
        crate::journal::default_dir_for(&self.path)
    }

    /// Writes through a pooled connection whose file was removed would land in an unlinked
    /// inode and vanish; refuse them instead.
    fn check_file(&self) -> Result<(), StoreError> {
        file_id(&self.path).map(|_| ())
    }

    async fn fetch_groups(
        &self,
        q: &StatsQuery,
        from: i64,
        to: i64,
    ) -> Result<crate::PeriodStats, StoreError> {
        // Whole local days come from the trigger-maintained rollups (migration 0003);
        // anything else scans the covering index.
        let (g, h) = match (sql::day_start(from), sql::day_start(to)) {
            (Some(fd), Some(td)) => {
                (sql::rollup_groups_sql(D, q, &fd, &td), sql::rollup_pdd_sql(D, q, &fd, &td))
            }
            _ => (sql::stats_groups_sql(D, q, from, to), sql::pdd_hist_sql(D, q, from, to)),
        };
        let groups: String =
            bind_args!(sqlx::query_scalar(&g.text), g.args).fetch_one(&self.pool).await?;
        let groups: Vec<sql::GroupRow> = sql::parse_json_rows("stats groups", &groups)?;
        let pdd: String =
            bind_args!(sqlx::query_scalar(&h.text), h.args).fetch_one(&self.pool).await?;
        let pdd: Vec<(i64, i64)> = sql::parse_json_rows("post-dial delay histogram", &pdd)?;
        sql::fold_period(from, to, groups, pdd)
    }
}

pub(crate) async fn write_records(
    conn: &mut SqliteConnection,
    upserts: &sql::CallUpserts,
    records: &[&CallRecord],
) -> Result<(), StoreError> {
    // IMMEDIATE: the watermark is read under the write lock, so no other writer's rows land
    // between it and our inserts (a deferred read would instead fail to upgrade to a write
    // with SQLITE_BUSY_SNAPSHOT when another writer committed, and the batch be retried).
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let watermark: i64 = sqlx::query_scalar(crate::rollup_fold::WATERMARK).fetch_one(&mut *tx).await?;
    for (upsert, rows) in upserts.plan(records) {
        bind_args!(sqlx::query(upsert), sql::CallUpserts::args(&rows)).execute(&mut *tx).await?;
    }
    for fold in crate::rollup_fold::FOLDS {
        sqlx::query(fold).bind(watermark).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

impl Engine for SqliteEngine {
    async fn health(&self) -> Health {
        let mut h = Health {
            engine: "sqlite".into(),
            location: self.path.display().to_string(),
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
        if let Err(e) = self.check_file() {
            h.error = Some(e.to_string());
            return h;
        }
        // BEGIN IMMEDIATE takes the write lock: it fails when the file is read-only,
        // moved/removed, or locked longer than the busy timeout.
        let probe = async {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            // Touching the schema makes SQLite check that the file is still in place.
            sqlx::query("DELETE FROM calls WHERE 0").execute(&mut *tx).await?;
            tx.rollback().await
        };
        match probe.await {
            Ok(()) => h.writable = true,
            Err(e) => h.error = Some(e.to_string()),
        }
        h
    }

    async fn write_calls(&self, records: &[CallRecord]) -> Result<(), StoreError> {
        self.check_file()?;
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
        let text = format!("SELECT {} FROM calls WHERE call_id = ?", sql::RECORD_SELECT);
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
        self.check_file()?;
        // IMMEDIATE: take the write lock before reading the current version, so two
        // concurrent saves serialise instead of both computing a diff against the same base.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<(i64, String)> =
            sqlx::query_as("SELECT version, document FROM municipality_settings WHERE cbs = ?")
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
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (cbs) DO UPDATE SET version = excluded.version, \
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
            "INSERT INTO settings_versions (cbs, version, document, saved_ms, saved_by) VALUES (?, ?, ?, ?, ?)",
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
                 VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
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
        self.check_file()?;
        let at = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_log (at_ms, actor, municipality_cbs, what, before, after) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
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

/// (device, inode) of the file at `path`.
fn file_id(path: &Path) -> Result<(u64, u64), StoreError> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| (m.dev(), m.ino()))
        .map_err(|e| StoreError::Unavailable(format!("database file {}: {e}", path.display())))
}

/// The writer's own connection (see [`RecordSink`]).
pub struct SqliteSink {
    opts: SqliteConnectOptions,
    conn: Option<SqliteConnection>,
    /// Identity of the file the connection has open. In WAL mode SQLite keeps writing to
    /// a file that was moved or deleted (into an unlinked inode: silently lost), so before
    /// each batch the path is checked to still name that file.
    file_id: Option<(u64, u64)>,
    sql: sql::CallUpserts,
    path: PathBuf,
}

impl RecordSink for SqliteSink {
    async fn write_batch<'a>(
        &'a mut self,
        records: &'a [&'a CallRecord],
    ) -> Result<(), StoreError> {
        let now = file_id(&self.path);
        if now.as_ref().ok() != self.file_id.as_ref()
            && let Some(c) = self.conn.take()
        {
            let _ = c.close_hard().await;
        }
        let now = now?;
        if self.conn.is_none() {
            self.conn = Some(SqliteConnection::connect_with(&self.opts).await?);
            self.file_id = Some(now);
        }
        let conn = self.conn.as_mut().expect("connected above");
        let res = write_records(conn, &self.sql, records).await;
        // A handle on a moved/removed file or a broken WAL stays broken; start over.
        if let Err(e) = &res
            && e.is_transient()
            && let Some(c) = self.conn.take()
        {
            let _ = c.close_hard().await;
        }
        res
    }

    fn describe(&self) -> String {
        format!("sqlite {}", self.path.display())
    }
}

/// Parses `sqlite:PATH`, `sqlite://PATH` or a plain path.
pub(crate) fn parse_location(s: &str) -> Option<PathBuf> {
    let rest = s
        .strip_prefix("sqlite://")
        .or_else(|| s.strip_prefix("sqlite:"))
        .unwrap_or(s);
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() || rest == ":memory:" || rest.contains("://") {
        return None;
    }
    PathBuf::from_str(rest).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The portal's number search must stay fast on a year of calls: every OR term is
    /// answered from an index (SQLite's multi-index OR), never by scanning the calls table.
    #[tokio::test]
    async fn number_search_reads_indexes_not_the_whole_table() {
        let dir = tempfile::tempdir().unwrap();
        let engine = SqliteEngine::open(&dir.path().join("c.db")).await.unwrap();
        for number in ["14 020", "+3114020", "0612345678", "0900123456", "tel:+31201234567"] {
            let f = CallFilter { number: Some(number.into()), ..Default::default() };
            let q = sql::list_calls_sql(D, &f);
            let explain = format!("EXPLAIN QUERY PLAN {}", q.text);
            let rows = bind_args!(sqlx::query(&explain), q.args)
                .fetch_all(engine.pool())
                .await
                .unwrap_or_else(|e| panic!("{number}: {e}"));
            let plan = rows.iter().map(|r| r.get::<String, _>("detail")).collect::<Vec<_>>().join("\n");
            assert!(!plan.contains("SCAN calls"), "search for {number} scans the table:\n{plan}");
            assert!(plan.contains("MULTI-INDEX OR"), "search for {number}:\n{plan}");
        }
    }
}
