//! veertien-web: the portal and HTTP API of the 14+ platform.
//!
//! * [`router`] builds the whole portal + `/api/` for an [`AppState`].
//! * [`Portal`] implements the server's [`veertien_server::HttpApp`] hook, so `veertien serve`
//!   mounts it with `veertien_server::serve(config, Some(Box::new(veertien_web::Portal::default())))`.
//! * Saving settings writes a new version plus audit entries to the store and swaps the running
//!   routing snapshot ([`veertien_server::Routing::update_settings`]): the next call uses it.
//!
//! Authorization: every handler takes a [`CurrentUser`] (401 for `/api/`, redirect to `/login`
//! for pages) and calls [`CurrentUser::require_municipality`] / [`CurrentUser::require_write`]
//! before touching a municipality; state-changing requests check the session's CSRF token.

pub mod api;
pub mod auth;
pub mod doc;
pub mod i18n;
pub mod pages;
pub mod users;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use veertien_core::{MunicipalityId, MunicipalitySettings};
use veertien_server::Routing;
use veertien_store::Store;

pub use auth::{AuthError, CurrentUser};
pub use doc::{FieldError, SettingsDoc};
pub use i18n::Ui;
pub use users::{Role, User, add_user, load_users, users_path_for_store};

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The live routing snapshot of the call path; saving settings swaps it.
    pub routing: Arc<Routing>,
    /// Accounts file (see [`users`]).
    pub users_path: PathBuf,
    pub sessions: Arc<auth::Sessions>,
    /// `false` only for plain-HTTP development on 127.0.0.1: drops `Secure` from cookies.
    pub secure_cookies: bool,
    /// SIP hosts (or trunk URI patterns) a municipality may send calls to, besides phone numbers.
    pub trunks: Arc<Vec<String>>,
}

impl AppState {
    pub fn new(store: Store, routing: Arc<Routing>, users_path: PathBuf) -> AppState {
        let trunk = routing.snapshot().settings.trunk().to_string();
        AppState { store, routing, users_path, sessions: Arc::default(), secure_cookies: true, trunks: Arc::new(vec![trunk]) }
    }

    pub fn user(&self, email: &str) -> Option<User> {
        match users::load_users(&self.users_path) {
            Ok(us) => us.into_iter().find(|u| u.email == email),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the users file");
                None
            }
        }
    }

    pub fn municipality_id(&self, cbs: &str) -> Option<MunicipalityId> {
        self.routing.snapshot().plan.by_cbs(&cbs.to_uppercase())
    }

    pub fn current_settings(&self, id: MunicipalityId) -> MunicipalitySettings {
        self.routing.snapshot().settings.get(id).clone()
    }

    pub fn trunk_refs(&self) -> Vec<&str> {
        self.trunks.iter().map(String::as_str).collect()
    }
}

/// The portal's routes, one table: the generated authorization test iterates over it, so a route
/// added here without being listed fails that test's completeness check.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/login", Access::Public),
    ("POST", "/login", Access::Public),
    ("GET", "/lang/{lang}", Access::Public),
    ("GET", "/static/app.css", Access::Public),
    ("GET", "/api/openapi.json", Access::Public),
    ("POST", "/logout", Access::LoggedIn),
    ("GET", "/", Access::LoggedIn),
    ("GET", "/api/me", Access::LoggedIn),
    ("GET", "/api/municipalities", Access::LoggedIn),
    ("GET", "/m/{cbs}", Access::Read),
    ("GET", "/m/{cbs}/audit", Access::Read),
    ("POST", "/m/{cbs}/settings", Access::Write),
    ("POST", "/m/{cbs}/calamity", Access::Write),
    ("GET", "/api/municipalities/{cbs}/settings", Access::Read),
    ("PUT", "/api/municipalities/{cbs}/settings", Access::Write),
    ("GET", "/api/municipalities/{cbs}/audit", Access::Read),
    ("GET", "/api/audit", Access::LoggedIn),
];

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// Any logged-in user (results filtered to what the user may see).
    LoggedIn,
    /// Users who may read municipality `{cbs}`.
    Read,
    /// Users who may change municipality `{cbs}` (operator, its admin).
    Write,
}

/// The handler of one [`ROUTES`] entry. The router is built from the table through this match, so
/// a route cannot exist without being in the table the authorization test iterates.
fn handler(method: &str, path: &str) -> axum::routing::MethodRouter<AppState> {
    match (method, path) {
        ("GET", "/login") => get(pages::login_form),
        ("POST", "/login") => post(pages::login),
        ("GET", "/lang/{lang}") => get(pages::set_lang),
        ("GET", "/static/app.css") => get(pages::css),
        ("GET", "/api/openapi.json") => get(api::openapi_json),
        ("POST", "/logout") => post(pages::logout),
        ("GET", "/") => get(pages::home),
        ("GET", "/api/me") => get(api::me),
        ("GET", "/api/municipalities") => get(api::municipalities),
        ("GET", "/m/{cbs}") => get(pages::municipality),
        ("GET", "/m/{cbs}/audit") => get(pages::audit),
        ("POST", "/m/{cbs}/settings") => post(pages::save_settings),
        ("POST", "/m/{cbs}/calamity") => post(pages::toggle_calamity),
        ("GET", "/api/municipalities/{cbs}/settings") => get(api::get_settings),
        ("PUT", "/api/municipalities/{cbs}/settings") => axum::routing::put(api::put_settings),
        ("GET", "/api/municipalities/{cbs}/audit") => get(api::municipality_audit),
        ("GET", "/api/audit") => get(api::audit),
        _ => unreachable!("ROUTES entry {method} {path} has no handler"),
    }
}

pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for (method, path, _) in ROUTES {
        r = r.route(path, handler(method, path));
    }
    r
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

async fn security_headers(mut res: axum::response::Response) -> axum::response::Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}

/// Saves a validated settings change: store (new version + audit entries, refused when the
/// version moved on) and then the live routing snapshot, so the next call uses it.
pub async fn save_municipality(
    state: &AppState,
    cbs: &str,
    id: MunicipalityId,
    ms: MunicipalitySettings,
    actor: &str,
    expected_version: Option<i64>,
) -> Result<i64, SaveError> {
    // Refuse keypad-digit conflicts before anything is written.
    state.routing.snapshot().settings.try_with(id, ms.clone()).map_err(|e| SaveError::Conflict(e.message))?;
    let doc = serde_json::to_value(SettingsDoc::from_settings(&ms)).expect("settings serialise");
    let saved = match expected_version {
        Some(v) => state.store.save_settings_if_version(cbs, &doc, actor, v).await,
        None => state.store.save_settings(cbs, &doc, actor).await,
    };
    let saved = saved.map_err(|e| match e {
        veertien_store::StoreError::VersionConflict { .. } => SaveError::Stale,
        e => SaveError::Store(e.to_string()),
    })?;
    state.routing.update_settings(|s| s.with(id, ms.clone()));
    tracing::info!(municipality = cbs, actor, version = saved.version, changes = saved.changes.len(), "settings saved");
    Ok(saved.version)
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{0}")]
    Conflict(String),
    #[error("de instellingen zijn intussen door iemand anders gewijzigd / settings were changed by someone else meanwhile")]
    Stale,
    #[error("opslaan mislukt / saving failed: {0}")]
    Store(String),
}

/// Applies every stored settings document to the routing snapshot (at start-up). Documents that
/// no longer validate (e.g. a destination the guard now refuses) are skipped with an error in the
/// log, so the municipality keeps its defaults rather than a forbidden route.
pub async fn load_stored_settings(store: &Store, routing: &Routing, trunks: &[&str]) -> Result<usize, veertien_store::StoreError> {
    let docs = store.load_all_settings().await?;
    let snap = routing.snapshot();
    let mut settings = snap.settings.clone();
    let mut n = 0;
    for d in docs {
        let Some(id) = snap.plan.by_cbs(&d.cbs) else { continue };
        let parsed = serde_json::from_value::<SettingsDoc>(d.document).map_err(|e| vec![FieldError { field: "document".into(), message: e.to_string() }]);
        match parsed.and_then(|doc| doc.apply(settings.get(id), trunks, Ui::En)) {
            Ok(ms) => {
                settings = settings.with(id, ms);
                n += 1;
            }
            Err(errs) => tracing::error!(municipality = %d.cbs, errors = ?errs, "stored settings refused; defaults kept"),
        }
    }
    routing.set_settings(settings);
    Ok(n)
}

/// The server hook: `veertien serve` passes `Some(Box::new(Portal::default()))`.
#[derive(Debug, Clone, Default)]
pub struct Portal {
    /// Plain-HTTP development on 127.0.0.1 only: cookies without `Secure`.
    pub insecure_dev_cookies: bool,
}

impl veertien_server::HttpApp for Portal {
    fn serve(
        self: Box<Self>,
        listener: tokio::net::TcpListener,
        ctx: veertien_server::AppContext,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> veertien_server::server::BoxFuture {
        Box::pin(async move {
            let Some(store) = ctx.store.clone() else {
                return Err(std::io::Error::other("the portal needs the store (run with a store)"));
            };
            let users_path = users_path_for_store(&ctx.config.store.path);
            let mut state = AppState::new(store, ctx.routing.clone(), users_path);
            let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
            state.secure_cookies = !(self.insecure_dev_cookies && loopback);
            let trunks = state.trunks.clone();
            let trunk_refs: Vec<&str> = trunks.iter().map(String::as_str).collect();
            match load_stored_settings(&state.store, &state.routing, &trunk_refs).await {
                Ok(n) => tracing::info!(municipalities = n, "stored portal settings applied"),
                Err(e) => tracing::error!(error = %e, "cannot load stored settings"),
            }
            let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
        })
    }
}
