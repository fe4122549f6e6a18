//! Sessions, CSRF tokens, login throttling and the [`CurrentUser`] extractor.
//!
//! Sessions are server-side (random 256-bit id in the cookie, state in memory): logging out or
//! removing an account ends them at once, and nothing about the user is in the cookie. A restart
//! logs everyone out, which is acceptable for a portal used a few times a week.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use parking_lot::Mutex;
use rand::RngCore;

use crate::AppState;
use crate::users::{Role, User};

pub const SESSION_COOKIE: &str = "veertien_session";
pub const LOGIN_CSRF_COOKIE: &str = "veertien_login_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Idle sessions end after this long.
pub const SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);
/// Failed logins for one account before it is locked for [`LOCKOUT`].
pub const MAX_FAILURES: u32 = 5;
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Compares secrets without an early exit, so a token cannot be guessed byte by byte by timing.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Clone)]
struct Session {
    email: String,
    csrf: String,
    last_seen: Instant,
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Failures>>,
}

pub enum LoginCheck {
    Allowed,
    Locked,
}

impl Sessions {
    pub fn create(&self, email: &str) -> (String, String) {
        let id = random_token();
        let csrf = random_token();
        let mut s = self.sessions.lock();
        let now = Instant::now();
        s.retain(|_, v| now.duration_since(v.last_seen) < SESSION_IDLE);
        s.insert(id.clone(), Session { email: email.to_string(), csrf: csrf.clone(), last_seen: now });
        (id, csrf)
    }

    /// The session's user e-mail and CSRF token; refreshes its idle timer.
    fn touch(&self, id: &str) -> Option<(String, String)> {
        let mut s = self.sessions.lock();
        let now = Instant::now();
        let sess = s.get_mut(id)?;
        if now.duration_since(sess.last_seen) >= SESSION_IDLE {
            s.remove(id);
            return None;
        }
        sess.last_seen = now;
        Some((sess.email.clone(), sess.csrf.clone()))
    }

    pub fn remove(&self, id: &str) {
        self.sessions.lock().remove(id);
    }

    pub fn check_login(&self, email: &str) -> LoginCheck {
        let f = self.failures.lock();
        match f.get(email).and_then(|f| f.locked_until) {
            Some(t) if Instant::now() < t => LoginCheck::Locked,
            _ => LoginCheck::Allowed,
        }
    }

    /// Records a failed attempt; returns true when the account is now locked.
    pub fn failed(&self, email: &str) -> bool {
        let mut all = self.failures.lock();
        let f = all.entry(email.to_string()).or_default();
        if f.locked_until.is_some_and(|t| Instant::now() >= t) {
            *f = Failures::default();
        }
        f.count += 1;
        if f.count >= MAX_FAILURES {
            f.locked_until = Some(Instant::now() + LOCKOUT);
            true
        } else {
            false
        }
    }

    pub fn succeeded(&self, email: &str) {
        self.failures.lock().remove(email);
    }
}

pub fn cookie_value<'a>(parts: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    parts.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// A `Set-Cookie` value with the portal's cookie policy.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<u64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if state.secure_cookies {
        c.push_str("; Secure");
    }
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    c
}

/// The logged-in user of a request. Rejects with 401 (API) or a redirect to the login page.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub session_id: String,
    /// The session's CSRF token: every form carries it, every state-changing API call sends it
    /// in `X-CSRF-Token`.
    pub csrf: String,
}

impl CurrentUser {
    pub fn email(&self) -> &str {
        &self.user.email
    }
    pub fn role(&self) -> Role {
        self.user.role
    }
    /// 404 when the user may not see `cbs` at all (another municipality's existence is not
    /// confirmed), Ok otherwise.
    pub fn require_municipality(&self, cbs: &str) -> Result<(), AuthError> {
        if self.user.can_read(cbs) { Ok(()) } else { Err(AuthError::NotFound) }
    }
    /// As [`CurrentUser::require_municipality`], and 403 when the user may only read.
    pub fn require_write(&self, cbs: &str) -> Result<(), AuthError> {
        self.require_municipality(cbs)?;
        if self.user.can_write(cbs) { Ok(()) } else { Err(AuthError::Forbidden) }
    }
    pub fn require_operator(&self) -> Result<(), AuthError> {
        if self.user.role == Role::Operator { Ok(()) } else { Err(AuthError::Forbidden) }
    }
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), AuthError> {
        match token {
            Some(t) if same_secret(t, &self.csrf) => Ok(()),
            _ => Err(AuthError::Csrf),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// Not logged in.
    Unauthenticated { api: bool },
    Forbidden,
    NotFound,
    Csrf,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            AuthError::Unauthenticated { api: false } => return Redirect::to("/login").into_response(),
            AuthError::Unauthenticated { api: true } => (StatusCode::UNAUTHORIZED, "niet ingelogd / not logged in"),
            AuthError::Forbidden => (StatusCode::FORBIDDEN, "geen toestemming / forbidden"),
            AuthError::NotFound => (StatusCode::NOT_FOUND, "niet gevonden / not found"),
            AuthError::Csrf => (StatusCode::FORBIDDEN, "ongeldig formulier-token (CSRF) / invalid CSRF token"),
        };
        (status, axum::Json(serde_json::json!({ "error": msg }))).into_response()
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let api = parts.uri.path().starts_with("/api/");
        let unauth = AuthError::Unauthenticated { api };
        let id = cookie_value(&parts.headers, SESSION_COOKIE).ok_or(unauth)?.to_string();
        let (email, csrf) = state.sessions.touch(&id).ok_or(unauth)?;
        // Re-read the account on every request: a removed or demoted account loses access at once.
        let user = state.user(&email).ok_or(unauth)?;
        Ok(CurrentUser { user, session_id: id, csrf })
    }
}
