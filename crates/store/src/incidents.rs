//! Outages (issue 5 item 4): incidents with their updates and promises, the municipalities'
//! notification targets, the delivery log, missed-update reminders and synthetic test calls.
//!
//! Append-only by construction: an incident row is never changed; its state (open/resolved,
//! latest text, the promised next-update time) follows from its updates, and resolving is an
//! update of kind [`UpdateKind::Resolved`]. Triggers in migration 0005 refuse UPDATE/DELETE on
//! every table that records what happened. Each declare/update/resolve and every contact or
//! webhook change is written to the audit log in the same transaction.
//!
//! The SQL is the common subset of SQLite and PostgreSQL, written with `?` placeholders that
//! [`q`] numbers for PostgreSQL; [`on_pool!`] runs the same code against either pool.

use serde::{Deserialize, Serialize};

use crate::engine::now_ms;
use crate::sql::Dialect;
use crate::store::PoolRef;
use crate::{Store, StoreError};

/// The longest promise an update may make: a day. Longer silences are exactly what issue 5
/// says municipalities complained about.
pub const MAX_PROMISE_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Some calls affected, a workaround exists.
    #[default]
    Minor,
    /// Many calls fail for the affected municipalities.
    Major,
    /// The 14+ number does not work at all.
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Minor, Severity::Major, Severity::Critical];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateKind {
    Declared,
    Update,
    Resolved,
}

impl UpdateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateKind::Declared => "declared",
            UpdateKind::Update => "update",
            UpdateKind::Resolved => "resolved",
        }
    }
    fn parse(s: &str) -> Option<UpdateKind> {
        [UpdateKind::Declared, UpdateKind::Update, UpdateKind::Resolved].into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentUpdate {
    pub id: i64,
    pub incident_id: i64,
    pub at_ms: i64,
    pub author: String,
    pub kind: UpdateKind,
    pub text_nl: String,
    pub text_en: Option<String>,
    /// When the next update will come; None only for the resolving update.
    pub next_update_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: i64,
    pub declared_ms: i64,
    pub declared_by: String,
    pub title_nl: String,
    pub title_en: Option<String>,
    pub severity: Severity,
    /// Affects every municipality (then `municipalities` is empty).
    pub all_municipalities: bool,
    /// CBS codes, sorted.
    pub municipalities: Vec<String>,
    /// Oldest first; never empty (the first is the declaration).
    pub updates: Vec<IncidentUpdate>,
}

impl Incident {
    pub fn latest(&self) -> &IncidentUpdate {
        self.updates.last().expect("an incident always has its declaration")
    }
    pub fn resolved_ms(&self) -> Option<i64> {
        let l = self.latest();
        (l.kind == UpdateKind::Resolved).then_some(l.at_ms)
    }
    pub fn is_open(&self) -> bool {
        self.resolved_ms().is_none()
    }
    /// The promised time of the next update while open.
    pub fn next_update_ms(&self) -> Option<i64> {
        if self.is_open() { self.latest().next_update_ms } else { None }
    }
    /// Open and the promised time has passed without an update.
    pub fn overdue(&self, now_ms: i64) -> bool {
        self.next_update_ms().is_some_and(|t| t <= now_ms)
    }
    pub fn affects(&self, cbs: &str) -> bool {
        self.all_municipalities || self.municipalities.iter().any(|m| m.eq_ignore_ascii_case(cbs))
    }
}

/// A declaration. `municipalities` empty = all municipalities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewIncident {
    pub title_nl: String,
    pub title_en: Option<String>,
    pub severity: Severity,
    pub municipalities: Vec<String>,
    pub text_nl: String,
    pub text_en: Option<String>,
    pub next_update_ms: i64,
    pub actor: String,
}

/// An update (`next_update_ms` Some) or the resolution (None).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewIncidentUpdate {
    pub text_nl: String,
    pub text_en: Option<String>,
    pub next_update_ms: Option<i64>,
    pub actor: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentFilter {
    /// Only incidents affecting this municipality (or all).
    pub municipality: Option<String>,
    /// Open incidents, plus those resolved at or after this time (None = every incident).
    pub resolved_since_ms: Option<i64>,
    /// 0 means 200.
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Contact {
    pub id: i64,
    pub cbs: String,
    pub email: String,
    pub name: String,
    pub created_ms: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Webhook {
    pub cbs: String,
    pub url: String,
    /// HMAC-SHA256 key for the signature header.
    pub secret: String,
    pub updated_ms: i64,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDelivery {
    pub incident_id: Option<i64>,
    pub update_id: Option<i64>,
    pub cbs: Option<String>,
    /// "email" or "webhook".
    pub channel: String,
    pub target: String,
    pub attempt: u32,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub id: i64,
    pub at_ms: i64,
    pub incident_id: Option<i64>,
    pub update_id: Option<i64>,
    pub cbs: Option<String>,
    pub channel: String,
    pub target: String,
    pub attempt: u32,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticSchedule {
    pub cbs: String,
    pub every_minutes: u32,
    pub invite: bool,
    pub updated_ms: i64,
    pub updated_by: String,
    /// Time of the latest result, if any.
    pub last_run_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSyntheticResult {
    pub cbs: String,
    pub at_ms: i64,
    /// "OPTIONS" or "INVITE".
    pub method: String,
    pub target: String,
    pub reachable: bool,
    pub status_code: Option<u16>,
    pub rtt_ms: Option<i64>,
    pub detail: String,
    pub requested_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticResult {
    pub id: i64,
    #[serde(flatten)]
    pub result: NewSyntheticResult,
}

/// Numbers `?` placeholders as `$1, $2, …` for PostgreSQL. The statements in this module never
/// contain a literal `?`.
fn q(d: Dialect, sql: &str) -> String {
    match d {
        Dialect::Sqlite => sql.to_string(),
        Dialect::Postgres => {
            let mut out = String::with_capacity(sql.len() + 16);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}

/// Runs `$body` with `$pool` bound to the engine's pool and `$d` to its dialect; the body is
/// compiled once per engine, so plain sqlx calls work on both.
macro_rules! on_pool {
    ($store:expr, |$pool:ident, $d:ident| $body:expr) => {
        match $store.pool_ref() {
            PoolRef::Sqlite($pool) => {
                let $d = Dialect::Sqlite;
                $body
            }
            PoolRef::Postgres($pool) => {
                let $d = Dialect::Postgres;
                $body
            }
        }
    };
}

/// SQLite takes the write lock at BEGIN so two writers serialise instead of failing on upgrade.
fn begin_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
    }
}

/// Every read of contacts and webhooks selects the same columns, mapped by name (`FromRow`).
const CONTACT_SELECT: &str = "SELECT id, cbs, email, name, created_ms, created_by FROM notify_contacts";
const WEBHOOK_SELECT: &str = "SELECT cbs, url, secret, updated_ms, updated_by FROM notify_webhooks";

const AUDIT_INSERT: &str = "INSERT INTO audit_log (at_ms, actor, municipality_cbs, what, before, after) VALUES (?, ?, ?, ?, ?, ?)";

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidInput(msg.into())
}

fn check_text(field: &str, v: &str, max: usize) -> Result<(), StoreError> {
    if v.trim().is_empty() {
        return Err(invalid(format!("{field} is empty")));
    }
    if v.chars().count() > max {
        return Err(invalid(format!("{field} is longer than {max} characters")));
    }
    Ok(())
}

fn check_opt_text(field: &str, v: &Option<String>, max: usize) -> Result<(), StoreError> {
    match v {
        Some(t) if !t.trim().is_empty() => check_text(field, t, max),
        _ => Ok(()),
    }
}

/// The promise of an update: after `now`, at most [`MAX_PROMISE_MS`] later.
pub fn check_promise(next_update_ms: i64, now_ms: i64) -> Result<(), StoreError> {
    if next_update_ms <= now_ms {
        return Err(invalid("the next update time must be in the future"));
    }
    if next_update_ms - now_ms > MAX_PROMISE_MS {
        return Err(invalid("the next update time must be within 24 hours"));
    }
    Ok(())
}

fn check_cbs(cbs: &str) -> Result<(), StoreError> {
    if cbs.len() == 6 && cbs.starts_with("GM") && cbs[2..].bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid(format!("'{cbs}' is not a CBS municipality code (GMxxxx)")))
    }
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

#[derive(sqlx::FromRow)]
struct IncidentRow {
    id: i64,
    declared_ms: i64,
    declared_by: String,
    title_nl: String,
    title_en: Option<String>,
    severity: String,
    all_municipalities: i64,
}

#[derive(sqlx::FromRow)]
struct UpdateRow {
    id: i64,
    incident_id: i64,
    at_ms: i64,
    author: String,
    kind: String,
    text_nl: String,
    text_en: Option<String>,
    next_update_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    at_ms: i64,
    incident_id: Option<i64>,
    update_id: Option<i64>,
    cbs: Option<String>,
    channel: String,
    target: String,
    attempt: i64,
    ok: i64,
    detail: String,
}

#[derive(sqlx::FromRow)]
struct ResultRow {
    id: i64,
    cbs: String,
    at_ms: i64,
    method: String,
    target: String,
    reachable: i64,
    status_code: Option<i64>,
    rtt_ms: Option<i64>,
    detail: String,
    requested_by: String,
}

fn assemble(rows: Vec<IncidentRow>, munis: Vec<(i64, String)>, updates: Vec<UpdateRow>) -> Result<Vec<Incident>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let severity = Severity::parse(&r.severity)
            .ok_or_else(|| StoreError::Corrupt(format!("incident {}: severity '{}'", r.id, r.severity)))?;
        let mut municipalities: Vec<String> = munis.iter().filter(|(i, _)| *i == r.id).map(|(_, c)| c.clone()).collect();
        municipalities.sort();
        let ups = updates
            .iter()
            .filter(|u| u.incident_id == r.id)
            .map(|u| {
                Ok(IncidentUpdate {
                    id: u.id,
                    incident_id: u.incident_id,
                    at_ms: u.at_ms,
                    author: u.author.clone(),
                    kind: UpdateKind::parse(&u.kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("incident update {}: kind '{}'", u.id, u.kind)))?,
                    text_nl: u.text_nl.clone(),
                    text_en: u.text_en.clone(),
                    next_update_ms: u.next_update_ms,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if ups.is_empty() {
            return Err(StoreError::Corrupt(format!("incident {} has no declaration", r.id)));
        }
        out.push(Incident {
            id: r.id,
            declared_ms: r.declared_ms,
            declared_by: r.declared_by,
            title_nl: r.title_nl,
            title_en: r.title_en,
            severity,
            all_municipalities: r.all_municipalities != 0,
            municipalities,
            updates: ups,
        });
    }
    Ok(out)
}

/// Comma-separated `?` list of `n` placeholders.
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl Store {
    /// Declares an incident: the incident, its municipalities, the declaration update and an
    /// audit entry, in one transaction.
    pub async fn declare_incident(&self, n: &NewIncident) -> Result<Incident, StoreError> {
        check_text("title", &n.title_nl, 200)?;
        check_opt_text("English title", &n.title_en, 200)?;
        check_text("text", &n.text_nl, 5000)?;
        check_opt_text("English text", &n.text_en, 5000)?;
        check_text("actor", &n.actor, 320)?;
        let at = now_ms();
        check_promise(n.next_update_ms, at)?;
        let mut munis: Vec<String> = n.municipalities.iter().map(|m| m.trim().to_uppercase()).collect();
        munis.sort();
        munis.dedup();
        for m in &munis {
            check_cbs(m)?;
        }
        let all = munis.is_empty();
        let id: i64 = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(begin_sql(d)).await?;
            let id: i64 = sqlx::query_scalar(&q(
                d,
                "INSERT INTO incidents (declared_ms, declared_by, title_nl, title_en, severity, all_municipalities) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            ))
            .bind(at)
            .bind(&n.actor)
            .bind(n.title_nl.trim())
            .bind(non_empty(&n.title_en))
            .bind(n.severity.as_str())
            .bind(all as i64)
            .fetch_one(&mut *tx)
            .await?;
            for m in &munis {
                sqlx::query(&q(d, "INSERT INTO incident_municipalities (incident_id, cbs) VALUES (?, ?)"))
                    .bind(id)
                    .bind(m)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(&q(
                d,
                "INSERT INTO incident_updates (incident_id, at_ms, author, kind, text_nl, text_en, next_update_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(id)
            .bind(at)
            .bind(&n.actor)
            .bind(UpdateKind::Declared.as_str())
            .bind(n.text_nl.trim())
            .bind(non_empty(&n.text_en))
            .bind(Some(n.next_update_ms))
            .execute(&mut *tx)
            .await?;
            let after = serde_json::json!({
                "id": id, "title": n.title_nl.trim(), "severity": n.severity.as_str(),
                "municipalities": if all { serde_json::json!("all") } else { serde_json::json!(munis) },
                "next_update_ms": n.next_update_ms,
            });
            sqlx::query(&q(d, AUDIT_INSERT))
                .bind(at)
                .bind(&n.actor)
                .bind(None::<String>)
                .bind("incident.declare")
                .bind(None::<String>)
                .bind(Some(after.to_string()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            id
        });
        self.incident(id).await?.ok_or_else(|| StoreError::Corrupt(format!("incident {id} vanished after insert")))
    }

    /// Posts an update (with a new promise) or, with `next_update_ms: None`, resolves. Refused
    /// on a resolved incident. Resolving an incident twice is refused too, so the log shows
    /// exactly one resolution.
    pub async fn post_incident_update(&self, incident_id: i64, u: &NewIncidentUpdate) -> Result<Incident, StoreError> {
        check_text("text", &u.text_nl, 5000)?;
        check_opt_text("English text", &u.text_en, 5000)?;
        check_text("actor", &u.actor, 320)?;
        let at = now_ms();
        if let Some(t) = u.next_update_ms {
            check_promise(t, at)?;
        }
        let kind = if u.next_update_ms.is_some() { UpdateKind::Update } else { UpdateKind::Resolved };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(begin_sql(d)).await?;
            let last: Option<String> = sqlx::query_scalar(&q(
                d,
                "SELECT kind FROM incident_updates WHERE incident_id = ? ORDER BY id DESC LIMIT 1",
            ))
            .bind(incident_id)
            .fetch_optional(&mut *tx)
            .await?;
            match last.as_deref() {
                None => return Err(StoreError::NotFound(format!("incident {incident_id}"))),
                Some("resolved") => {
                    return Err(StoreError::Conflict(format!("incident {incident_id} is already resolved")));
                }
                Some(_) => {}
            }
            sqlx::query(&q(
                d,
                "INSERT INTO incident_updates (incident_id, at_ms, author, kind, text_nl, text_en, next_update_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(incident_id)
            .bind(at)
            .bind(&u.actor)
            .bind(kind.as_str())
            .bind(u.text_nl.trim())
            .bind(non_empty(&u.text_en))
            .bind(u.next_update_ms)
            .execute(&mut *tx)
            .await?;
            let after = serde_json::json!({ "id": incident_id, "text": u.text_nl.trim(), "next_update_ms": u.next_update_ms });
            sqlx::query(&q(d, AUDIT_INSERT))
                .bind(at)
                .bind(&u.actor)
                .bind(None::<String>)
                .bind(if kind == UpdateKind::Resolved { "incident.resolve" } else { "incident.update" })
                .bind(None::<String>)
                .bind(Some(after.to_string()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        self.incident(incident_id).await?.ok_or_else(|| StoreError::NotFound(format!("incident {incident_id}")))
    }

    pub async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        let mut v = self.load_incidents(Some(id), &IncidentFilter::default()).await?;
        Ok(v.pop())
    }

    /// Newest first.
    pub async fn incidents(&self, f: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        self.load_incidents(None, f).await
    }

    async fn load_incidents(&self, id: Option<i64>, f: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let limit = match f.limit {
            0 => 200,
            n => n.min(10_000) as i64,
        };
        on_pool!(self, |pool, d| {
            let mut sql = String::from(
                "SELECT i.id, i.declared_ms, i.declared_by, i.title_nl, i.title_en, i.severity, i.all_municipalities FROM incidents i WHERE 1=1",
            );
            if id.is_some() {
                sql.push_str(" AND i.id = ?");
            }
            if f.municipality.is_some() {
                sql.push_str(" AND (i.all_municipalities = 1 OR EXISTS (SELECT 1 FROM incident_municipalities m WHERE m.incident_id = i.id AND m.cbs = ?))");
            }
            if f.resolved_since_ms.is_some() {
                // Open (latest update not a resolution), or resolved recently.
                sql.push_str(
                    " AND NOT EXISTS (SELECT 1 FROM incident_updates u WHERE u.incident_id = i.id AND u.kind = 'resolved' AND u.at_ms < ?)",
                );
            }
            sql.push_str(" ORDER BY i.id DESC LIMIT ?");
            let sql = q(d, &sql);
            let mut query = sqlx::query_as::<_, IncidentRow>(&sql);
            if let Some(id) = id {
                query = query.bind(id);
            }
            if let Some(m) = &f.municipality {
                query = query.bind(m.to_uppercase());
            }
            if let Some(t) = f.resolved_since_ms {
                query = query.bind(t);
            }
            let rows = query.bind(limit).fetch_all(pool).await?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let in_list = marks(ids.len());
            // The IN list is only placeholders, built from the row count.
            let msql = q(d, &format!("SELECT incident_id, cbs FROM incident_municipalities WHERE incident_id IN ({in_list})"));
            let mut mq = sqlx::query_as::<_, (i64, String)>(&msql);
            for i in &ids {
                mq = mq.bind(*i);
            }
            let munis = mq.fetch_all(pool).await?;
            let usql = q(
                d,
                &format!(
                    "SELECT id, incident_id, at_ms, author, kind, text_nl, text_en, next_update_ms FROM incident_updates WHERE incident_id IN ({in_list}) ORDER BY id"
                ),
            );
            let mut uq = sqlx::query_as::<_, UpdateRow>(&usql);
            for i in &ids {
                uq = uq.bind(*i);
            }
            let updates = uq.fetch_all(pool).await?;
            assemble(rows, munis, updates)
        })
    }

    /// Open incidents whose latest promise passed at `now_ms` and for which no reminder was
    /// recorded yet: (incident, id of the update that made the promise).
    pub async fn incidents_needing_reminder(&self, now_ms: i64) -> Result<Vec<(Incident, i64)>, StoreError> {
        let open = self.incidents(&IncidentFilter { resolved_since_ms: Some(i64::MAX), limit: 10_000, ..Default::default() }).await?;
        let mut out = Vec::new();
        for inc in open.into_iter().filter(|i| i.overdue(now_ms)) {
            let update_id = inc.latest().id;
            let done: Option<i64> = on_pool!(self, |pool, d| {
                sqlx::query_scalar(&q(d, "SELECT update_id FROM incident_reminders WHERE update_id = ?"))
                    .bind(update_id)
                    .fetch_optional(pool)
                    .await?
            });
            if done.is_none() {
                out.push((inc, update_id));
            }
        }
        Ok(out)
    }

    /// Records that the promise made by `update_id` was reminded. Returns false when it already
    /// was (another node or an earlier round got there first), so each missed promise is
    /// reminded once.
    pub async fn record_reminder(&self, incident_id: i64, update_id: i64) -> Result<bool, StoreError> {
        let at = now_ms();
        let n = on_pool!(self, |pool, d| {
            sqlx::query(&q(
                d,
                "INSERT INTO incident_reminders (update_id, incident_id, reminded_ms) VALUES (?, ?, ?) ON CONFLICT (update_id) DO NOTHING",
            ))
            .bind(update_id)
            .bind(incident_id)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Update ids whose promise was reminded, for the incident pages.
    pub async fn reminded_updates(&self, incident_id: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(on_pool!(self, |pool, d| {
            sqlx::query_as::<_, (i64, i64)>(&q(d, "SELECT update_id, reminded_ms FROM incident_reminders WHERE incident_id = ? ORDER BY update_id"))
                .bind(incident_id)
                .fetch_all(pool)
                .await?
        }))
    }

    pub async fn contacts(&self, cbs: &str) -> Result<Vec<Contact>, StoreError> {
        let cbs = cbs.to_uppercase();
        Ok(on_pool!(self, |pool, d| {
            sqlx::query_as(&q(d, &format!("{CONTACT_SELECT} WHERE cbs = ? ORDER BY email"))).bind(&cbs).fetch_all(pool).await?
        }))
    }

    /// Every municipality's contacts (for notifying an incident that affects all).
    pub async fn all_contacts(&self) -> Result<Vec<Contact>, StoreError> {
        Ok(on_pool!(self, |pool, d| {
            sqlx::query_as(&q(d, &format!("{CONTACT_SELECT} ORDER BY cbs, email"))).fetch_all(pool).await?
        }))
    }

    pub async fn all_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        Ok(on_pool!(self, |pool, d| {
            sqlx::query_as(&q(d, &format!("{WEBHOOK_SELECT} ORDER BY cbs"))).fetch_all(pool).await?
        }))
    }

    /// Adds a contact (audited). Refuses a second entry for the same address.
    pub async fn add_contact(&self, cbs: &str, email: &str, name: &str, actor: &str) -> Result<Contact, StoreError> {
        let cbs = cbs.to_uppercase();
        check_cbs(&cbs)?;
        let email = email.trim().to_lowercase();
        check_text("e-mail address", &email, 320)?;
        check_text("actor", actor, 320)?;
        if name.chars().count() > 200 {
            return Err(invalid("name is longer than 200 characters"));
        }
        let at = now_ms();
        let id: i64 = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(begin_sql(d)).await?;
            let exists: Option<i64> = sqlx::query_scalar(&q(d, "SELECT id FROM notify_contacts WHERE cbs = ? AND email = ?"))
                .bind(&cbs)
                .bind(&email)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                return Err(StoreError::Conflict(format!("{email} is already a contact of {cbs}")));
            }
            let id: i64 = sqlx::query_scalar(&q(
                d,
                "INSERT INTO notify_contacts (cbs, email, name, created_ms, created_by) VALUES (?, ?, ?, ?, ?) RETURNING id",
            ))
            .bind(&cbs)
            .bind(&email)
            .bind(name.trim())
            .bind(at)
            .bind(actor)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(&q(d, AUDIT_INSERT))
                .bind(at)
                .bind(actor)
                .bind(Some(cbs.clone()))
                .bind("notify.contact")
                .bind(None::<String>)
                .bind(Some(serde_json::json!(email).to_string()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            id
        });
        Ok(Contact { id, cbs, email, name: name.trim().to_string(), created_ms: at, created_by: actor.to_string() })
    }

    /// Removes a contact of `cbs` (audited). Returns false when there was no such contact.
    pub async fn remove_contact(&self, cbs: &str, id: i64, actor: &str) -> Result<bool, StoreError> {
        let cbs = cbs.to_uppercase();
        let at = now_ms();
        Ok(on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(begin_sql(d)).await?;
            // Scoped by cbs, so an id of another municipality's contact removes nothing.
            let email: Option<String> = sqlx::query_scalar(&q(d, "SELECT email FROM notify_contacts WHERE id = ? AND cbs = ?"))
                .bind(id)
                .bind(&cbs)
                .fetch_optional(&mut *tx)
                .await?;
            match email {
                None => false,
                Some(email) => {
                    sqlx::query(&q(d, "DELETE FROM notify_contacts WHERE id = ? AND cbs = ?")).bind(id).bind(&cbs).execute(&mut *tx).await?;
                    sqlx::query(&q(d, AUDIT_INSERT))
                        .bind(at)
                        .bind(actor)
                        .bind(Some(cbs.clone()))
                        .bind("notify.contact")
                        .bind(Some(serde_json::json!(email).to_string()))
                        .bind(None::<String>)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    true
                }
            }
        }))
    }

    pub async fn webhook(&self, cbs: &str) -> Result<Option<Webhook>, StoreError> {
        let cbs = cbs.to_uppercase();
        Ok(on_pool!(self, |pool, d| {
            sqlx::query_as(&q(d, &format!("{WEBHOOK_SELECT} WHERE cbs = ?"))).bind(&cbs).fetch_optional(pool).await?
        }))
    }

    /// Sets (Some) or removes (None) the municipality's webhook (audited; the secret is never
    /// written to the audit log).
    pub async fn set_webhook(&self, cbs: &str, hook: Option<(&str, &str)>, actor: &str) -> Result<(), StoreError> {
        let cbs = cbs.to_uppercase();
        check_cbs(&cbs)?;
        check_text("actor", actor, 320)?;
        if let Some((url, secret)) = hook {
            check_text("webhook URL", url, 2000)?;
            if secret.len() < 16 {
                return Err(invalid("the webhook secret must be at least 16 characters"));
            }
        }
        let before = self.webhook(&cbs).await?.map(|w| w.url);
        let at = now_ms();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(begin_sql(d)).await?;
            match hook {
                Some((url, secret)) => {
                    sqlx::query(&q(
                        d,
                        "INSERT INTO notify_webhooks (cbs, url, secret, updated_ms, updated_by) VALUES (?, ?, ?, ?, ?) \
                         ON CONFLICT (cbs) DO UPDATE SET url = excluded.url, secret = excluded.secret, updated_ms = excluded.updated_ms, updated_by = excluded.updated_by",
                    ))
                    .bind(&cbs)
                    .bind(url.trim())
                    .bind(secret)
                    .bind(at)
                    .bind(actor)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query(&q(d, "DELETE FROM notify_webhooks WHERE cbs = ?")).bind(&cbs).execute(&mut *tx).await?;
                }
            }
            sqlx::query(&q(d, AUDIT_INSERT))
                .bind(at)
                .bind(actor)
                .bind(Some(cbs.clone()))
                .bind("notify.webhook")
                .bind(before.map(|b| serde_json::json!(b).to_string()))
                .bind(hook.map(|(u, _)| serde_json::json!(u.trim()).to_string()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn log_delivery(&self, n: &NewDelivery) -> Result<i64, StoreError> {
        let at = now_ms();
        Ok(on_pool!(self, |pool, d| {
            sqlx::query_scalar::<_, i64>(&q(
                d,
                "INSERT INTO notify_deliveries (at_ms, incident_id, update_id, cbs, channel, target, attempt, ok, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            ))
            .bind(at)
            .bind(n.incident_id)
            .bind(n.update_id)
            .bind(&n.cbs)
            .bind(&n.channel)
            .bind(&n.target)
            .bind(n.attempt as i64)
            .bind(n.ok as i64)
            .bind(&n.detail)
            .fetch_one(pool)
            .await?
        }))
    }

    /// Delivery attempts, newest first; of one incident, or all.
    pub async fn deliveries(&self, incident_id: Option<i64>, limit: u32) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let limit = if limit == 0 { 500 } else { limit.min(10_000) } as i64;
        let rows: Vec<DeliveryRow> = on_pool!(self, |pool, d| {
            let base = "SELECT id, at_ms, incident_id, update_id, cbs, channel, target, attempt, ok, detail FROM notify_deliveries";
            match incident_id {
                Some(i) => sqlx::query_as(&q(d, &format!("{base} WHERE incident_id = ? ORDER BY id DESC LIMIT ?")))
                    .bind(i)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?,
                None => sqlx::query_as(&q(d, &format!("{base} ORDER BY id DESC LIMIT ?"))).bind(limit).fetch_all(pool).await?,
            }
        });
        Ok(rows
            .into_iter()
            .map(|r| DeliveryAttempt {
                id: r.id,
                at_ms: r.at_ms,
                incident_id: r.incident_id,
                update_id: r.update_id,
                cbs: r.cbs,
                channel: r.channel,
                target: r.target,
                attempt: r.attempt.clamp(0, u32::MAX as i64) as u32,
                ok: r.ok != 0,
                detail: r.detail,
            })
            .collect())
    }

    /// Schedules (Some(minutes)) or stops (None) the periodic test call of `cbs` (audited).
    pub async fn set_synthetic_schedule(&self, cbs: &str, every_minutes: Option<u32>, invite: bool, actor: &str) -> Result<(), StoreError> {
        let cbs = cbs.to_uppercase();
        check_cbs(&cbs)?;
        check_text("actor", actor, 320)?;
        if let Some(m) = every_minutes
            && !(1..=1440).contains(&m)
        {
            return Err(invalid("the test interval must be between 1 and 1440 minutes"));
        }
        let at = now_ms();
        let before = self.synthetic_schedules().await?.into_iter().find(|s| s.cbs == cbs).map(|s| s.every_minutes);
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(begin_sql(d)).await?;
            match every_minutes {
                Some(m) => {
                    sqlx::query(&q(
                        d,
                        "INSERT INTO synthetic_schedules (cbs, every_minutes, invite, updated_ms, updated_by) VALUES (?, ?, ?, ?, ?) \
                         ON CONFLICT (cbs) DO UPDATE SET every_minutes = excluded.every_minutes, invite = excluded.invite, updated_ms = excluded.updated_ms, updated_by = excluded.updated_by",
                    ))
                    .bind(&cbs)
                    .bind(m as i64)
                    .bind(invite as i64)
                    .bind(at)
                    .bind(actor)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query(&q(d, "DELETE FROM synthetic_schedules WHERE cbs = ?")).bind(&cbs).execute(&mut *tx).await?;
                }
            }
            sqlx::query(&q(d, AUDIT_INSERT))
                .bind(at)
                .bind(actor)
                .bind(Some(cbs.clone()))
                .bind("synthetic.every_minutes")
                .bind(before.map(|b| b.to_string()))
                .bind(every_minutes.map(|b| b.to_string()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn synthetic_schedules(&self) -> Result<Vec<SyntheticSchedule>, StoreError> {
        let rows: Vec<(String, i64, i64, i64, String, Option<i64>)> = on_pool!(self, |pool, d| {
            sqlx::query_as(&q(
                d,
                "SELECT s.cbs, s.every_minutes, s.invite, s.updated_ms, s.updated_by, (SELECT MAX(r.at_ms) FROM synthetic_results r WHERE r.cbs = s.cbs) \
                 FROM synthetic_schedules s ORDER BY s.cbs",
            ))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(cbs, m, invite, updated_ms, updated_by, last)| SyntheticSchedule {
                cbs,
                every_minutes: m.clamp(1, 1440) as u32,
                invite: invite != 0,
                updated_ms,
                updated_by,
                last_run_ms: last,
            })
            .collect())
    }

    pub async fn record_synthetic(&self, r: &NewSyntheticResult) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool, d| {
            sqlx::query_scalar::<_, i64>(&q(
                d,
                "INSERT INTO synthetic_results (cbs, at_ms, method, target, reachable, status_code, rtt_ms, detail, requested_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            ))
            .bind(r.cbs.to_uppercase())
            .bind(r.at_ms)
            .bind(&r.method)
            .bind(&r.target)
            .bind(r.reachable as i64)
            .bind(r.status_code.map(i64::from))
            .bind(r.rtt_ms)
            .bind(&r.detail)
            .bind(&r.requested_by)
            .fetch_one(pool)
            .await?
        }))
    }

    /// Newest first.
    pub async fn synthetic_results(&self, cbs: &str, limit: u32) -> Result<Vec<SyntheticResult>, StoreError> {
        let limit = if limit == 0 { 100 } else { limit.min(10_000) } as i64;
        let rows: Vec<ResultRow> = on_pool!(self, |pool, d| {
            sqlx::query_as(&q(
                d,
                "SELECT id, cbs, at_ms, method, target, reachable, status_code, rtt_ms, detail, requested_by FROM synthetic_results WHERE cbs = ? ORDER BY at_ms DESC, id DESC LIMIT ?",
            ))
            .bind(cbs.to_uppercase())
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| SyntheticResult {
                id: r.id,
                result: NewSyntheticResult {
                    cbs: r.cbs,
                    at_ms: r.at_ms,
                    method: r.method,
                    target: r.target,
                    reachable: r.reachable != 0,
                    status_code: r.status_code.and_then(|c| u16::try_from(c).ok()),
                    rtt_ms: r.rtt_ms,
                    detail: r.detail,
                    requested_by: r.requested_by,
                },
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("t.db").to_str().unwrap()).await.unwrap();
        (s, dir)
    }

    fn decl(munis: &[&str], next: i64) -> NewIncident {
        NewIncident {
            title_nl: "Storing 14 0113".into(),
            title_en: Some("Outage 14 0113".into()),
            severity: Severity::Major,
            municipalities: munis.iter().map(|s| s.to_string()).collect(),
            text_nl: "Bellers krijgen een bezettoon.".into(),
            text_en: None,
            next_update_ms: next,
            actor: "operator@veertien.test".into(),
        }
    }

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(q(Dialect::Postgres, "a = ? AND b IN (?, ?)"), "a = $1 AND b IN ($2, $3)");
        assert_eq!(q(Dialect::Sqlite, "a = ?"), "a = ?");
    }

    #[tokio::test]
    async fn lifecycle_is_append_only_and_audited() {
        let (s, _d) = store().await;
        let now = now_ms();
        let i = s.declare_incident(&decl(&["gm0664", "GM0678", "GM0664"], now + 3_600_000)).await.unwrap();
        assert_eq!(i.municipalities, vec!["GM0664", "GM0678"]);
        assert!(i.is_open() && i.affects("GM0664") && !i.affects("GM0363"));
        assert_eq!(i.next_update_ms(), Some(now + 3_600_000));
        let u = NewIncidentUpdate { text_nl: "Oorzaak gevonden.".into(), text_en: Some("Cause found.".into()), next_update_ms: Some(now + 7_200_000), actor: "op@x.nl".into() };
        let i = s.post_incident_update(i.id, &u).await.unwrap();
        assert_eq!(i.updates.len(), 2);
        assert_eq!(i.next_update_ms(), Some(now + 7_200_000));
        let r = NewIncidentUpdate { text_nl: "Opgelost.".into(), text_en: None, next_update_ms: None, actor: "op@x.nl".into() };
        let i = s.post_incident_update(i.id, &r).await.unwrap();
        assert!(!i.is_open());
        assert_eq!(i.next_update_ms(), None);
        assert!(matches!(s.post_incident_update(i.id, &u).await, Err(StoreError::Conflict(_))));
        assert!(matches!(s.post_incident_update(i.id, &r).await, Err(StoreError::Conflict(_))));
        assert!(matches!(s.post_incident_update(999, &u).await, Err(StoreError::NotFound(_))));
        let whats: Vec<String> = s.audit_log(&Default::default()).await.unwrap().into_iter().map(|e| e.what).collect();
        assert_eq!(whats, vec!["incident.resolve", "incident.update", "incident.declare"]);
        // The database itself refuses edits.
        let PoolRef::Sqlite(pool) = s.pool_ref() else { unreachable!() };
        assert!(sqlx::query("UPDATE incident_updates SET text_nl = 'x'").execute(pool).await.is_err());
        assert!(sqlx::query("DELETE FROM incidents").execute(pool).await.is_err());
    }

    #[tokio::test]
    async fn promises_are_validated() {
        let (s, _d) = store().await;
        let now = now_ms();
        for bad in [now - 1000, now + MAX_PROMISE_MS + 60_000] {
            assert!(matches!(s.declare_incident(&decl(&[], bad)).await, Err(StoreError::InvalidInput(_))), "{bad}");
        }
        assert!(matches!(s.declare_incident(&decl(&["0664"], now + 60_000)).await, Err(StoreError::InvalidInput(_))));
        let mut empty = decl(&[], now + 60_000);
        empty.text_nl = "  ".into();
        assert!(matches!(s.declare_incident(&empty).await, Err(StoreError::InvalidInput(_))));
    }

    #[tokio::test]
    async fn filters_and_reminders() {
        let (s, _d) = store().await;
        let now = now_ms();
        let all = s.declare_incident(&decl(&[], now + 1_000)).await.unwrap();
        let goes = s.declare_incident(&decl(&["GM0664"], now + 3_600_000)).await.unwrap();
        let kapelle = s.incidents(&IncidentFilter { municipality: Some("GM0678".into()), ..Default::default() }).await.unwrap();
        assert_eq!(kapelle.iter().map(|i| i.id).collect::<Vec<_>>(), vec![all.id]);
        let g = s.incidents(&IncidentFilter { municipality: Some("gm0664".into()), ..Default::default() }).await.unwrap();
        assert_eq!(g.iter().map(|i| i.id).collect::<Vec<_>>(), vec![goes.id, all.id]);
        // Only the first promise has passed two seconds from now; it is reminded once.
        let due = s.incidents_needing_reminder(now + 2_000).await.unwrap();
        assert_eq!(due.iter().map(|(i, u)| (i.id, *u)).collect::<Vec<_>>(), vec![(all.id, all.updates[0].id)]);
        assert!(s.record_reminder(all.id, all.updates[0].id).await.unwrap());
        assert!(!s.record_reminder(all.id, all.updates[0].id).await.unwrap());
        assert!(s.incidents_needing_reminder(now + 2_000).await.unwrap().is_empty());
        // A resolved incident leaves the "open" view once resolved before the cut-off.
        let r = NewIncidentUpdate { text_nl: "Opgelost.".into(), text_en: None, next_update_ms: None, actor: "op".into() };
        s.post_incident_update(goes.id, &r).await.unwrap();
        let open_now = s.incidents(&IncidentFilter { resolved_since_ms: Some(i64::MAX), ..Default::default() }).await.unwrap();
        assert_eq!(open_now.iter().map(|i| i.id).collect::<Vec<_>>(), vec![all.id]);
        let recent = s.incidents(&IncidentFilter { resolved_since_ms: Some(now - 1000), ..Default::default() }).await.unwrap();
        assert_eq!(recent.len(), 2);
    }
}
