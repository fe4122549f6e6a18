//! Portal accounts and server-side sessions (migration 0006), on SQLite and PostgreSQL alike.
//!
//! The store keeps what the portal decides: argon2 PHC strings (never passwords), roles as text,
//! and sessions by the SHA-256 of their cookie id (the portal hashes; the store never sees the
//! id). Changing a password or disabling an account ends every session of that account in the
//! same transaction, so "log out everywhere" cannot half-happen.

use serde::{Deserialize, Serialize};

use crate::engine::now_ms;
use crate::store::PoolRef;
use crate::{Store, StoreError};

/// Roles the portal knows; anything else is refused before it reaches the database.
pub const ROLES: [&str; 3] = ["operator", "admin", "viewer"];

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Account {
    /// Lower-cased login name.
    pub email: String,
    /// operator | admin | viewer
    pub role: String,
    pub municipality_cbs: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
    pub password_changed_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// An account to create or update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount<'a> {
    pub email: &'a str,
    pub role: &'a str,
    pub municipality_cbs: Option<&'a str>,
    pub password_hash: &'a str,
}

/// A live session with its (enabled) account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub account: Account,
    pub csrf: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
}

/// When sessions end: after `idle_ms` without a request, and `max_ms` after login whatever the
/// activity (a stolen cookie does not live forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_ms: i64,
    pub max_ms: i64,
}

/// A session's `last_seen_ms` is written at most this often: every page view must not be a
/// database write, and idle expiry does not need millisecond precision.
const TOUCH_EVERY_MS: i64 = 60_000;

macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.pool_ref() {
            PoolRef::Sqlite($pool) => $body,
            PoolRef::Postgres($pool) => $body,
        }
    };
}

const ACCOUNT_COLS: &str =
    "email, role, municipality_cbs, password_hash, disabled, password_changed_ms, created_ms, updated_ms";

fn check(a: &NewAccount<'_>) -> Result<(), StoreError> {
    if a.email.is_empty() || a.email != a.email.trim().to_lowercase() {
        return Err(StoreError::InvalidInput(format!("account e-mail '{}' must be non-empty and lower-case", a.email)));
    }
    if !ROLES.contains(&a.role) {
        return Err(StoreError::InvalidInput(format!("role '{}' is not one of operator, admin, viewer", a.role)));
    }
    if a.role == "admin" && a.municipality_cbs.is_none() {
        return Err(StoreError::InvalidInput(format!("admin account {} needs a municipality", a.email)));
    }
    if !a.password_hash.starts_with("$argon2") {
        return Err(StoreError::InvalidInput(format!("password of {} must be an argon2 PHC hash", a.email)));
    }
    Ok(())
}

impl Store {
    /// Creates an account, or replaces role, municipality and password of an existing one (and
    /// re-enables it). A changed password ends every session of the account. Returns true when
    /// the account is new.
    pub async fn upsert_account(&self, a: &NewAccount<'_>) -> Result<bool, StoreError> {
        check(a)?;
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let old: Option<String> = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
                .bind(a.email).fetch_optional(&mut *tx).await?;
            match &old {
                None => {
                    sqlx::query(
                        "INSERT INTO users (email, role, municipality_cbs, password_hash, disabled, password_changed_ms, created_ms, updated_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $6, $6)",
                    )
                    .bind(a.email).bind(a.role).bind(a.municipality_cbs).bind(a.password_hash).bind(false).bind(now)
                    .execute(&mut *tx).await?;
                }
                Some(old_hash) => {
                    let changed = old_hash != a.password_hash;
                    sqlx::query(
                        "UPDATE users SET role = $2, municipality_cbs = $3, password_hash = $4, disabled = $5, \
                         password_changed_ms = CASE WHEN $6 THEN $7 ELSE password_changed_ms END, updated_ms = $7 WHERE email = $1",
                    )
                    .bind(a.email).bind(a.role).bind(a.municipality_cbs).bind(a.password_hash).bind(false).bind(changed).bind(now)
                    .execute(&mut *tx).await?;
                    // A role or municipality change also ends sessions: their CSRF tokens and open
                    // pages were issued for the old rights.
                    sqlx::query("DELETE FROM sessions WHERE email = $1").bind(a.email).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok(old.is_none())
        })
    }

    /// Inserts the account only when no account with that e-mail exists (for imports, which
    /// must not overwrite what was changed since). Returns true when inserted.
    pub async fn insert_account_if_absent(&self, a: &NewAccount<'_>) -> Result<bool, StoreError> {
        check(a)?;
        let now = now_ms();
        let n = with_pool!(self, pool => sqlx::query(
            "INSERT INTO users (email, role, municipality_cbs, password_hash, disabled, password_changed_ms, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $6) ON CONFLICT (email) DO NOTHING",
        )
        .bind(a.email).bind(a.role).bind(a.municipality_cbs).bind(a.password_hash).bind(false).bind(now)
        .execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    pub async fn account(&self, email: &str) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM users WHERE email = $1");
        Ok(with_pool!(self, pool => sqlx::query_as::<_, Account>(&sql).bind(email).fetch_optional(pool).await?))
    }

    /// Every account, ordered by e-mail.
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM users ORDER BY email");
        Ok(with_pool!(self, pool => sqlx::query_as::<_, Account>(&sql).fetch_all(pool).await?))
    }

    pub async fn count_accounts(&self) -> Result<u64, StoreError> {
        let n: i64 = with_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?);
        Ok(n as u64)
    }

    /// Sets a new password hash and ends every session of the account (logout everywhere).
    /// Returns false when the account does not exist.
    pub async fn set_password(&self, email: &str, password_hash: &str) -> Result<bool, StoreError> {
        if !password_hash.starts_with("$argon2") {
            return Err(StoreError::InvalidInput(format!("password of {email} must be an argon2 PHC hash")));
        }
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE users SET password_hash = $2, password_changed_ms = $3, updated_ms = $3 WHERE email = $1")
                .bind(email).bind(password_hash).bind(now).execute(&mut *tx).await?.rows_affected();
            sqlx::query("DELETE FROM sessions WHERE email = $1").bind(email).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// Disables (ending every session) or re-enables an account. Returns false when the
    /// account does not exist.
    pub async fn set_account_disabled(&self, email: &str, disabled: bool) -> Result<bool, StoreError> {
        let now = now_ms();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE users SET disabled = $2, updated_ms = $3 WHERE email = $1")
                .bind(email).bind(disabled).bind(now).execute(&mut *tx).await?.rows_affected();
            if disabled {
                sqlx::query("DELETE FROM sessions WHERE email = $1").bind(email).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// Stores a new session (`id_hash`: SHA-256 of the cookie id, hex).
    pub async fn create_session(&self, id_hash: &str, email: &str, csrf: &str) -> Result<(), StoreError> {
        let now = now_ms();
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO sessions (id_hash, email, csrf, created_ms, last_seen_ms) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id_hash).bind(email).bind(csrf).bind(now).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// The session and its account, or None when unknown, expired under `policy` (then it is
    /// deleted) or its account is disabled. Refreshes the idle timer.
    pub async fn session(&self, id_hash: &str, policy: SessionPolicy) -> Result<Option<SessionInfo>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            csrf: String,
            created_ms: i64,
            last_seen_ms: i64,
            email: String,
        }
        let now = now_ms();
        let row = with_pool!(self, pool => sqlx::query_as::<_, Row>(
            "SELECT csrf, created_ms, last_seen_ms, email FROM sessions WHERE id_hash = $1",
        )
        .bind(id_hash).fetch_optional(pool).await?);
        let Some(row) = row else { return Ok(None) };
        if now - row.last_seen_ms >= policy.idle_ms || now - row.created_ms >= policy.max_ms {
            self.end_session(id_hash).await?;
            return Ok(None);
        }
        let Some(account) = self.account(&row.email).await?.filter(|a| !a.disabled) else { return Ok(None) };
        let mut last_seen_ms = row.last_seen_ms;
        if now - row.last_seen_ms >= TOUCH_EVERY_MS {
            with_pool!(self, pool => sqlx::query("UPDATE sessions SET last_seen_ms = $2 WHERE id_hash = $1")
                .bind(id_hash).bind(now).execute(pool).await?.rows_affected());
            last_seen_ms = now;
        }
        Ok(Some(SessionInfo { account, csrf: row.csrf, created_ms: row.created_ms, last_seen_ms }))
    }

    pub async fn end_session(&self, id_hash: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Ends every session of an account; returns how many there were.
    pub async fn end_sessions_of(&self, email: &str) -> Result<u64, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query("DELETE FROM sessions WHERE email = $1").bind(email).execute(pool).await?.rows_affected()))
    }

    /// Deletes sessions expired under `policy`; returns how many.
    pub async fn prune_sessions(&self, policy: SessionPolicy) -> Result<u64, StoreError> {
        let now = now_ms();
        Ok(with_pool!(self, pool => sqlx::query("DELETE FROM sessions WHERE last_seen_ms <= $1 OR created_ms <= $2")
            .bind(now - policy.idle_ms).bind(now - policy.max_ms).execute(pool).await?.rows_affected()))
    }

    /// Live sessions of an account (for tests and the operator's view).
    pub async fn count_sessions_of(&self, email: &str) -> Result<u64, StoreError> {
        let n: i64 = with_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE email = $1")
            .bind(email).fetch_one(pool).await?);
        Ok(n as u64)
    }
}
