//! Sessions, CSRF tokens, login throttling and the [`CurrentUser`] extractor.
//!
//! Sessions are server-side, in the store (`sessions` table): the cookie holds a random 256-bit
//! id, the store only its SHA-256, so nothing about the user is in the cookie and a copy of the
//! database holds no live session. Sessions end after [`SESSION_IDLE`] without a request, at the
//! latest [`SESSION_MAX`] after login, at logout, and for every session of an account when its
//! password changes or it is disabled. They survive a restart of `veertien serve`.
//!
//! Login throttling is in memory (per process): [`MAX_FAILURES`] wrong passwords lock an account
//! for [`LOCKOUT`]; [`MAX_FAILURES_PER_IP`] failures from one address within [`IP_WINDOW`] refuse
//! further attempts from that address, so one client cannot try a password against every account.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use parking_lot::Mutex;
use rand::RngCore;
use sha2::Digest;
use veertien_store::SessionPolicy;

use crate::AppState;
use crate::users::{Role, User};

pub const SESSION_COOKIE: &str = "veertien_session";
pub const LOGIN_CSRF_COOKIE: &str = "veertien_login_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Idle sessions end after this long.
pub const SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);
/// Every session ends this long after login, however active.
pub const SESSION_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
/// Failed logins for one account before it is locked for [`LOCKOUT`].
pub const MAX_FAILURES: u32 = 5;
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Failed logins from one client address within [`IP_WINDOW`] before that address is refused
/// until the window ends. Higher than [`MAX_FAILURES`]: a municipality's office shares one
/// address among many people who mistype.
pub const MAX_FAILURES_PER_IP: u32 = 20;
pub const IP_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Bound of each throttle table, so a flood of distinct addresses cannot exhaust memory.
const THROTTLE_ENTRIES: usize = 100_000;

pub fn session_policy() -> SessionPolicy {
    SessionPolicy { idle_ms: SESSION_IDLE.as_millis() as i64, max_ms: SESSION_MAX.as_millis() as i64 }
}

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What the store keeps of a session id.
pub fn session_hash(id: &str) -> String {
    let d = sha2::Sha256::digest(id.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares secrets without an early exit, so a token cannot be guessed byte by byte by timing.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug)]
struct Failures {
    count: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

/// Failed-login counters per account and per client address.
#[derive(Default)]
pub struct Throttle {
    accounts: Mutex<HashMap<String, Failures>>,
    ips: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginCheck {
    Allowed,
    /// The account is locked.
    Locked,
    /// The client address made too many failed attempts.
    AddressBlocked,
}

fn bounded<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Failures>, now: Instant, window: Duration) {
    if map.len() >= THROTTLE_ENTRIES {
        map.retain(|_, f| f.locked_until.is_some_and(|t| t > now) || now.duration_since(f.since) < window);
        if map.len() >= THROTTLE_ENTRIES {
            map.clear();
        }
    }
}

impl Throttle {
    pub fn check_login(&self, email: &str, ip: Option<IpAddr>) -> LoginCheck {
        let now = Instant::now();
        if let Some(ip) = ip
            && self.ips.lock().get(&ip).and_then(|f| f.locked_until).is_some_and(|t| now < t)
        {
            return LoginCheck::AddressBlocked;
        }
        match self.accounts.lock().get(email).and_then(|f| f.locked_until) {
            Some(t) if now < t => LoginCheck::Locked,
            _ => LoginCheck::Allowed,
        }
    }

    /// Records a failed attempt; returns true when the account or the address is now locked.
    pub fn failed(&self, email: &str, ip: Option<IpAddr>) -> bool {
        let now = Instant::now();
        let mut locked = false;
        {
            let mut all = self.accounts.lock();
            bounded(&mut all, now, LOCKOUT);
            let f = all.entry(email.to_string()).or_insert(Failures { count: 0, since: now, locked_until: None });
            if f.locked_until.is_some_and(|t| now >= t) || now.duration_since(f.since) >= LOCKOUT {
                *f = Failures { count: 0, since: now, locked_until: None };
            }
            f.count += 1;
            if f.count >= MAX_FAILURES {
                f.locked_until = Some(now + LOCKOUT);
                locked = true;
            }
        }
        if let Some(ip) = ip {
            let mut all = self.ips.lock();
            bounded(&mut all, now, IP_WINDOW);
            let f = all.entry(ip).or_insert(Failures { count: 0, since: now, locked_until: None });
            if now.duration_since(f.since) >= IP_WINDOW && f.locked_until.is_none_or(|t| now >= t) {
                *f = Failures { count: 0, since: now, locked_until: None };
            }
            f.count += 1;
            if f.count >= MAX_FAILURES_PER_IP {
                f.locked_until = Some(f.since + IP_WINDOW);
                locked = true;
            }
        }
        locked
    }

    /// A successful login clears the account's counter (not the address's: an attacker who
    /// owns one account must not reset the counter of the address they guess from).
    pub fn succeeded(&self, email: &str) {
        self.accounts.lock().remove(email);
    }
}

/// The client's address: the TCP peer, or — when the peer is a configured trusted proxy — the
/// last address the proxy appended to `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let Some(peer) = peer else { return Ok(ClientIp(None)) };
        if state.trusted_proxies.iter().any(|n| n.contains(&peer)) {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back();
            return Ok(ClientIp(forwarded.or(Some(peer))));
        }
        Ok(ClientIp(Some(peer)))
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
    /// The store did not answer.
    Unavailable,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            AuthError::Unauthenticated { api: false } => return Redirect::to("/login").into_response(),
            AuthError::Unauthenticated { api: true } => (StatusCode::UNAUTHORIZED, "niet ingelogd / not logged in"),
            AuthError::Forbidden => (StatusCode::FORBIDDEN, "geen toestemming / forbidden"),
            AuthError::NotFound => (StatusCode::NOT_FOUND, "niet gevonden / not found"),
            AuthError::Csrf => (StatusCode::FORBIDDEN, "ongeldig formulier-token (CSRF) / invalid CSRF token"),
            AuthError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "de database is niet bereikbaar / the database is unavailable"),
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
        // The account is read with the session on every request: a disabled or demoted account
        // loses access at once.
        let info = match state.store.session(&session_hash(&id), session_policy()).await {
            Ok(i) => i.ok_or(unauth)?,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the session from the store");
                return Err(AuthError::Unavailable);
            }
        };
        let user = User::try_from(info.account).map_err(|e| {
            tracing::error!(error = %e, "stored account refused");
            unauth
        })?;
        Ok(CurrentUser { user, session_id: id, csrf: info.csrf })
    }
}
