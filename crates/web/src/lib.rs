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

pub mod account;
pub mod api;
pub mod auth;
pub mod charts;
pub mod doc;
pub mod i18n;
pub mod incidents;
pub mod incidents_contacts;
pub mod notify;
pub mod pages;
pub mod prompt_upload;
pub mod reports;
pub mod settings_form;
pub mod status;
pub mod synthetic;
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
pub use users::{Role, User, add_user, import_users_file, load_users, users_path_for_store};

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The live routing snapshot of the call path; saving settings swaps it.
    pub routing: Arc<Routing>,
    /// Failed-login counters (sessions themselves are in the store).
    pub throttle: Arc<auth::Throttle>,
    /// `false` only for plain-HTTP development on 127.0.0.1: drops `Secure` from cookies.
    pub secure_cookies: bool,
    /// SIP hosts (or trunk URI patterns) a municipality may send calls to, besides phone numbers.
    pub trunks: Arc<Vec<String>>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for per-address login throttling).
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// Prompts directory shared with the IVR (uploaded welcome prompts go to `custom/<cbs>/`).
    pub prompts_dir: PathBuf,
    /// Incident e-mails/webhooks and reminders (`[notify]`).
    pub notify: Arc<notify::Notifier>,
    /// Where synthetic test calls go (trunk, local address, timeout).
    pub probe: synthetic::ProbeConfig,
    /// The settings documents municipalities saved, re-applied after every SIGHUP reload.
    pub saved: Arc<SavedSettings>,
}

impl AppState {
    pub fn new(store: Store, routing: Arc<Routing>) -> AppState {
        let trunk = routing.snapshot().settings.trunk().to_string();
        let notify = Arc::new(notify::Notifier::new(store.clone(), Default::default()));
        AppState {
            store,
            routing,
            throttle: Arc::default(),
            secure_cookies: true,
            trunks: Arc::new(vec![trunk]),
            trusted_proxies: Arc::default(),
            prompts_dir: PathBuf::from("prompts"),
            notify,
            probe: synthetic::ProbeConfig::default(),
            saved: Arc::default(),
        }
    }

    /// The enabled account with this e-mail (None also when the store fails; that is logged).
    pub async fn user(&self, email: &str) -> Option<User> {
        match users::find_user(&self.store, email).await {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the account");
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
    // The own account (account.rs).
    ("GET", "/account", Access::LoggedIn),
    ("POST", "/account/password", Access::LoggedIn),
    ("GET", "/m/{cbs}", Access::Read),
    ("GET", "/m/{cbs}/audit", Access::Read),
    ("POST", "/m/{cbs}/settings", Access::Write),
    ("POST", "/m/{cbs}/calamity", Access::Write),
    ("GET", "/api/municipalities/{cbs}/settings", Access::Read),
    ("PUT", "/api/municipalities/{cbs}/settings", Access::Write),
    ("GET", "/api/municipalities/{cbs}/audit", Access::Read),
    ("GET", "/api/audit", Access::LoggedIn),
    // Welcome prompt (prompt_upload.rs).
    ("GET", "/m/{cbs}/prompt.wav", Access::Read),
    ("POST", "/m/{cbs}/prompt", Access::Write),
    ("POST", "/m/{cbs}/prompt/delete", Access::Write),
    ("GET", "/api/municipalities/{cbs}/prompt", Access::Read),
    ("PUT", "/api/municipalities/{cbs}/prompt", Access::Write),
    ("DELETE", "/api/municipalities/{cbs}/prompt", Access::Write),
    // Management information (reports.rs).
    ("GET", "/m/{cbs}/report", Access::Read),
    ("GET", "/m/{cbs}/calls", Access::Read),
    ("GET", "/m/{cbs}/calls/{id}", Access::Read),
    ("GET", "/national/report", Access::National),
    ("GET", "/national/calls", Access::National),
    ("GET", "/national/calls/{id}", Access::National),
    ("GET", "/api/municipalities/{cbs}/report", Access::Read),
    ("GET", "/api/report/national", Access::National),
    ("GET", "/api/calls", Access::LoggedIn),
    ("GET", "/api/calls/{id}", Access::National),
    ("GET", "/api/municipalities/{cbs}/calls", Access::Read),
    ("GET", "/api/municipalities/{cbs}/calls/{id}", Access::Read),
    // Outages (incidents.rs, incidents_contacts.rs, status.rs). Resolving stays last: the
    // generated authorization test posts updates to the same incident before resolving it.
    ("GET", "/status", Access::Public),
    ("GET", "/status.json", Access::Public),
    ("GET", "/status.atom", Access::Public),
    ("GET", "/static/status.css", Access::Public),
    ("GET", "/incidents", Access::LoggedIn),
    ("POST", "/incidents", Access::Operator),
    ("GET", "/incidents/{incident}", Access::LoggedIn),
    ("POST", "/incidents/{incident}/updates", Access::Operator),
    ("GET", "/api/incidents", Access::LoggedIn),
    ("POST", "/api/incidents", Access::Operator),
    ("GET", "/api/incidents/{incident}", Access::LoggedIn),
    ("POST", "/api/incidents/{incident}/updates", Access::Operator),
    ("GET", "/api/incidents/{incident}/deliveries", Access::Operator),
    ("GET", "/m/{cbs}/contacts", Access::Read),
    ("POST", "/m/{cbs}/contacts", Access::Write),
    ("POST", "/m/{cbs}/contacts/remove", Access::Write),
    ("POST", "/m/{cbs}/webhook", Access::Write),
    ("GET", "/api/municipalities/{cbs}/contacts", Access::Read),
    ("PUT", "/api/municipalities/{cbs}/contacts", Access::Write),
    ("GET", "/m/{cbs}/tests", Access::Read),
    ("POST", "/m/{cbs}/tests", Access::Write),
    ("POST", "/m/{cbs}/tests/run", Access::Write),
    ("GET", "/api/municipalities/{cbs}/tests", Access::Read),
    ("POST", "/api/municipalities/{cbs}/tests/run", Access::Write),
    ("POST", "/incidents/{incident}/resolve", Access::Operator),
    ("POST", "/api/incidents/{incident}/resolve", Access::Operator),
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
    /// Users who read every municipality (operator, a viewer without a municipality): national
    /// figures and calls; 404 for everyone else.
    National,
    /// The operator only (declaring and updating incidents); 403 for everyone else.
    Operator,
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
        ("GET", "/account") => get(account::page),
        ("POST", "/account/password") => post(account::change_password),
        ("GET", "/m/{cbs}") => get(pages::municipality),
        ("GET", "/m/{cbs}/audit") => get(pages::audit),
        ("POST", "/m/{cbs}/settings") => post(pages::save_settings),
        ("POST", "/m/{cbs}/calamity") => post(pages::toggle_calamity),
        ("GET", "/api/municipalities/{cbs}/settings") => get(api::get_settings),
        ("PUT", "/api/municipalities/{cbs}/settings") => axum::routing::put(api::put_settings),
        ("GET", "/api/municipalities/{cbs}/audit") => get(api::municipality_audit),
        ("GET", "/api/audit") => get(api::audit),
        ("GET", "/m/{cbs}/prompt.wav") => get(prompt_upload::get_prompt),
        ("POST", "/m/{cbs}/prompt") => post(prompt_upload::upload_form).layer(axum::extract::DefaultBodyLimit::max(prompt_upload::MAX_BYTES + 64 * 1024)),
        ("POST", "/m/{cbs}/prompt/delete") => post(prompt_upload::delete_form),
        ("GET", "/api/municipalities/{cbs}/prompt") => get(prompt_upload::get_prompt),
        ("PUT", "/api/municipalities/{cbs}/prompt") => axum::routing::put(prompt_upload::put_api).layer(axum::extract::DefaultBodyLimit::max(prompt_upload::MAX_BYTES + 64 * 1024)),
        ("DELETE", "/api/municipalities/{cbs}/prompt") => axum::routing::delete(prompt_upload::delete_api),
        ("GET", "/m/{cbs}/report") => get(reports::municipality_report),
        ("GET", "/m/{cbs}/calls") => get(reports::municipality_calls),
        ("GET", "/m/{cbs}/calls/{id}") => get(reports::municipality_call),
        ("GET", "/national/report") => get(reports::national_report),
        ("GET", "/national/calls") => get(reports::national_calls),
        ("GET", "/national/calls/{id}") => get(reports::national_call),
        ("GET", "/api/municipalities/{cbs}/report") => get(reports::api_municipality_report),
        ("GET", "/api/report/national") => get(reports::api_national_report),
        ("GET", "/api/calls") => get(reports::api_calls),
        ("GET", "/api/calls/{id}") => get(reports::api_call),
        ("GET", "/api/municipalities/{cbs}/calls") => get(reports::api_municipality_calls),
        ("GET", "/api/municipalities/{cbs}/calls/{id}") => get(reports::api_municipality_call),
        ("GET", "/status") => get(status::page),
        ("GET", "/status.json") => get(status::json),
        ("GET", "/status.atom") => get(status::atom),
        ("GET", "/static/status.css") => get(status::css),
        ("GET", "/incidents") => get(incidents::list_page),
        ("POST", "/incidents") => post(incidents::declare),
        ("GET", "/incidents/{incident}") => get(incidents::incident_page),
        ("POST", "/incidents/{incident}/updates") => post(incidents::post_update),
        ("POST", "/incidents/{incident}/resolve") => post(incidents::resolve),
        ("GET", "/api/incidents") => get(incidents::api_list),
        ("POST", "/api/incidents") => post(incidents::api_declare),
        ("GET", "/api/incidents/{incident}") => get(incidents::api_get),
        ("POST", "/api/incidents/{incident}/updates") => post(incidents::api_update),
        ("POST", "/api/incidents/{incident}/resolve") => post(incidents::api_resolve),
        ("GET", "/api/incidents/{incident}/deliveries") => get(incidents::api_deliveries),
        ("GET", "/m/{cbs}/contacts") => get(incidents_contacts::contacts_page),
        ("POST", "/m/{cbs}/contacts") => post(incidents_contacts::add_contact),
        ("POST", "/m/{cbs}/contacts/remove") => post(incidents_contacts::remove_contact),
        ("POST", "/m/{cbs}/webhook") => post(incidents_contacts::set_webhook),
        ("GET", "/api/municipalities/{cbs}/contacts") => get(incidents_contacts::api_contacts),
        ("PUT", "/api/municipalities/{cbs}/contacts") => axum::routing::put(incidents_contacts::api_put_contacts),
        ("GET", "/m/{cbs}/tests") => get(incidents_contacts::tests_page),
        ("POST", "/m/{cbs}/tests") => post(incidents_contacts::schedule_tests),
        ("POST", "/m/{cbs}/tests/run") => post(incidents_contacts::run_test_now),
        ("GET", "/api/municipalities/{cbs}/tests") => get(incidents_contacts::api_tests),
        ("POST", "/api/municipalities/{cbs}/tests/run") => post(incidents_contacts::api_run_test),
        _ => unreachable!("ROUTES entry {method} {path} has no handler"),
    }
}

pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for (method, path, _) in ROUTES {
        r = r.route(path, handler(method, path));
    }
    r
        .layer(axum::middleware::from_fn_with_state(state.clone(), incidents::overdue_banner))
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
/// `submitted` carries what the routing settings do not (exception-day notes).
pub async fn save_municipality(
    state: &AppState,
    cbs: &str,
    id: MunicipalityId,
    ms: MunicipalitySettings,
    submitted: &SettingsDoc,
    actor: &str,
    expected_version: Option<i64>,
) -> Result<i64, SaveError> {
    // Refuse keypad-digit conflicts before anything is written.
    state.routing.snapshot().settings.try_with(id, ms.clone()).map_err(|e| {
        let field = e.field.rsplit_once(".menu_digits.").map(|(_, code)| format!("menu_digits.{code}")).unwrap_or_else(|| "menu_digit".into());
        SaveError::Conflict { field, message: e.message }
    })?;
    // A destination this server could never call (TLS without [trunk] tls_ca, ...) is refused
    // on its field now, not found out on a caller's call.
    state.routing.check_municipality(id, &ms).map_err(|r| SaveError::Conflict {
        field: r.form_field().into(),
        message: format!("Het platform kan deze bestemming nooit bellen / the platform can never call this destination: {}", r.reason),
    })?;
    let doc = serde_json::to_value(SettingsDoc::from_settings_with_notes(&ms, Some(submitted))).expect("settings serialise");
    let saved = match expected_version {
        Some(v) => state.store.save_settings_if_version(cbs, &doc, actor, v).await,
        None => state.store.save_settings(cbs, &doc, actor).await,
    };
    let saved = saved.map_err(|e| match e {
        veertien_store::StoreError::VersionConflict { .. } => SaveError::Stale,
        e => SaveError::Store(e.to_string()),
    })?;
    // The cache first: a SIGHUP reload racing with this save then re-applies the new document.
    state.saved.put(cbs, SettingsDoc::from_settings_with_notes(&ms, Some(submitted)));
    state.routing.update_settings(|s| s.with(id, ms.clone()));
    tracing::info!(municipality = cbs, actor, version = saved.version, changes = saved.changes.len(), "settings saved");
    Ok(saved.version)
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// A keypad digit already taken on a shared area code; `field` names the form field.
    #[error("{message}")]
    Conflict { field: String, message: String },
    #[error("de instellingen zijn intussen door iemand anders gewijzigd / settings were changed by someone else meanwhile")]
    Stale,
    #[error("opslaan mislukt / saving failed: {0}")]
    Store(String),
}

/// Applies every stored settings document to the routing snapshot (at start-up). Documents that
/// no longer validate (e.g. a destination the guard now refuses) are skipped with an error in the
/// log, so the municipality keeps its defaults rather than a forbidden route.
pub async fn load_stored_settings(store: &Store, routing: &Routing, trunks: &[&str]) -> Result<usize, veertien_store::StoreError> {
    let saved = SavedSettings::default();
    load_saved_settings(store, routing, trunks, &saved).await
}

/// As [`load_stored_settings`], keeping the documents in `saved` for [`SavedSettings::reload_hook`].
pub async fn load_saved_settings(store: &Store, routing: &Routing, trunks: &[&str], saved: &SavedSettings) -> Result<usize, veertien_store::StoreError> {
    for d in store.load_all_settings().await? {
        match serde_json::from_value::<SettingsDoc>(d.document) {
            Ok(doc) => saved.put(&d.cbs, doc),
            Err(e) => tracing::error!(municipality = %d.cbs, error = %e, "stored settings unreadable; defaults kept"),
        }
    }
    let snap = routing.snapshot();
    let (settings, n) = saved.apply(&snap.plan, snap.settings.clone(), trunks);
    routing.set_settings(settings);
    Ok(n)
}

/// The settings documents saved through the portal, by CBS code. `Routing::reload` (SIGHUP)
/// re-reads only the plan and the settings file; its hook ([`SavedSettings::reload_hook`])
/// lays these documents over the result, synchronously and in the same swap, so a reload never
/// undoes a municipality's change, not even for one call. Written on every save (after the
/// store), so it holds what the store holds for this process.
#[derive(Debug, Default)]
pub struct SavedSettings(parking_lot::RwLock<std::collections::BTreeMap<String, SettingsDoc>>);

impl SavedSettings {
    pub fn put(&self, cbs: &str, doc: SettingsDoc) {
        self.0.write().insert(cbs.to_uppercase(), doc);
    }

    /// `settings` with every saved document applied; documents that no longer validate against
    /// this plan and guard are skipped with an error in the log. Returns the number applied.
    pub fn apply(&self, plan: &veertien_core::Plan, mut settings: veertien_core::Settings, trunks: &[&str]) -> (veertien_core::Settings, usize) {
        let mut n = 0;
        for (cbs, doc) in self.0.read().iter() {
            let Some(id) = plan.by_cbs(cbs) else {
                tracing::error!(municipality = %cbs, "saved settings for a municipality no longer in the plan; ignored");
                continue;
            };
            match doc.apply(settings.get(id), trunks, Ui::En) {
                Ok(ms) => {
                    settings = settings.with(id, ms);
                    n += 1;
                }
                Err(errs) => tracing::error!(municipality = %cbs, errors = ?errs, "stored settings refused; defaults kept"),
            }
        }
        (settings, n)
    }

    /// The hook for [`Routing::on_reload`].
    pub fn reload_hook(self: &Arc<Self>, trunks: Vec<String>) -> veertien_server::routing::ReloadHook {
        let saved = self.clone();
        Arc::new(move |plan, settings| {
            let refs: Vec<&str> = trunks.iter().map(String::as_str).collect();
            let (settings, n) = saved.apply(plan, settings, &refs);
            tracing::info!(municipalities = n, "portal settings re-applied after reload");
            settings
        })
    }
}

/// The server hook: `veertien serve` passes `Some(Box::new(Portal::default()))`. Cookie policy,
/// trunks and the prompts directory come from the `[http]` section of the serve config.
#[derive(Debug, Clone, Default)]
pub struct Portal {
    /// Plain-HTTP development on loopback only: cookies without `Secure` even when the config
    /// asks for them (ignored on any other address).
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
            let http = &ctx.config.http;
            // Accounts moved from users.json into the store: take over an old file once.
            if !ctx.config.store.path.to_string_lossy().contains("://")
                && let Err(e) = import_users_file(&store, &users_path_for_store(&ctx.config.store.path)).await
            {
                tracing::error!(error = %e, "cannot import the legacy users file");
            }
            let mut state = AppState::new(store, ctx.routing.clone());
            state.trusted_proxies = Arc::new(http.trusted_proxies.clone());
            state.prompts_dir = http.prompts_dir.clone();
            let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
            state.secure_cookies = http.effective_secure_cookies() && !(self.insecure_dev_cookies && loopback);
            if !http.trunks.is_empty() {
                let mut trunks = http.trunks.clone();
                trunks.push(ctx.routing.snapshot().settings.trunk().to_string());
                state.trunks = Arc::new(trunks);
            }
            let trunk_refs = state.trunk_refs();
            match load_saved_settings(&state.store, &state.routing, &trunk_refs, &state.saved).await {
                Ok(n) => tracing::info!(municipalities = n, "stored portal settings applied"),
                Err(e) => tracing::error!(error = %e, "cannot load stored settings"),
            }
            state.routing.on_reload(state.saved.reload_hook(state.trunks.to_vec()));
            match state.store.prune_sessions(auth::session_policy()).await {
                Ok(n) => tracing::info!(expired_sessions = n, "expired portal sessions removed"),
                Err(e) => tracing::error!(error = %e, "cannot prune sessions"),
            }
            if state.store.count_accounts().await.unwrap_or(1) == 0 {
                tracing::warn!("no portal accounts yet: create the first operator with `veertien user add --role operator EMAIL`");
            }
            // Outages: notifications, reminders and synthetic test calls (incidents.rs, notify.rs).
            let notify_cfg = ctx.config.notify.clone();
            notify_cfg.validate().map_err(|e| std::io::Error::other(e.to_string()))?;
            state.notify = Arc::new(notify::Notifier::new(state.store.clone(), notify_cfg.clone()));
            state.probe = synthetic::ProbeConfig {
                trunk: ctx.config.trunk.outbound,
                local_ip: ctx.config.sip.udp.map(|a| a.ip()).filter(|ip| !ip.is_unspecified()).unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
                timeout: std::time::Duration::from_millis(ctx.config.health.timeout_ms.max(1_000)),
                dead_statuses: ctx.config.health.dead_statuses.clone(),
                ..Default::default()
            };
            status::spawn_background(state.clone(), std::time::Duration::from_secs(notify_cfg.check_interval_secs), shutdown.clone());
            tracing::info!(listen = ?listener.local_addr().ok(), secure_cookies = state.secure_cookies, "portal listening");
            let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
        })
    }
}
