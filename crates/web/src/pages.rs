//! Server-rendered pages (maud): login, overview, a municipality's settings, its audit log.
//! No JavaScript: every action is a form with the session's CSRF token.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use veertien_core::MunicipalitySettings;
use veertien_store::{AuditEntry, AuditFilter, NewAuditEntry};

use crate::auth::{self, ClientIp, CurrentUser, LOGIN_CSRF_COOKIE, LoginCheck, SESSION_COOKIE};
use crate::doc::{FieldError, SettingsDoc};
use crate::i18n::Ui;
use crate::users::{self, Role};
use crate::settings_form::{self, PageCtx};
use crate::{AppState, AuthError, SaveError, save_municipality};

const CSS: &str = include_str!("app.css");

pub async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS)
}

pub(crate) fn layout(ui: Ui, title: &str, user: Option<&CurrentUser>, body: Markup) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang=(ui.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · veertien 14+" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                header {
                    a.brand href="/" { "14+ veertien" }
                    nav {
                        a href="/lang/nl" lang="nl" { "NL" } " · " a href="/lang/en" lang="en" { "EN" }
                        @if let Some(u) = user {
                            a.who href="/account" title=(ui.t("Mijn account", "My account")) { (u.email()) }
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(u.csrf);
                                button type="submit" { (ui.t("Uitloggen", "Log out")) }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    Html(page.into_string())
}

pub(crate) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

pub(crate) fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub async fn set_lang(Path(lang): Path<String>, State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = if lang == "en" { "en" } else { "nl" };
    // Back to where the user was, but only to a path on this site.
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("://").map(|i| &r[i + 3..]).and_then(|r| r.find('/').map(|j| r[j..].to_string())))
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/".into());
    ([(header::SET_COOKIE, auth::set_cookie(&state, "lang", lang, Some(365 * 86400)))], Redirect::to(&back)).into_response()
}

fn login_page(state: &AppState, ui: Ui, email: &str, error: Option<String>, status: StatusCode) -> Response {
    let token = auth::random_token();
    let body = html! {
        form.card method="post" action="/login" {
            input type="hidden" name="csrf" value=(token);
            @if let Some(e) = &error { p.error role="alert" { (e) } }
            label for="email" { (ui.t("E-mailadres", "E-mail address")) }
            input #email type="email" name="email" value=(email) autocomplete="username" required;
            label for="password" { (ui.t("Wachtwoord", "Password")) }
            input #password type="password" name="password" autocomplete="current-password" required;
            button type="submit" { (ui.t("Inloggen", "Log in")) }
        }
    };
    let mut res = (status, layout(ui, &ui.t("Inloggen", "Log in"), None, body)).into_response();
    if let Ok(v) = auth::set_cookie(state, LOGIN_CSRF_COOKIE, &token, Some(3600)).parse() {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

pub async fn login_form(State(state): State<AppState>, ui: Ui) -> Response {
    login_page(&state, ui, "", None, StatusCode::OK)
}

pub async fn login(State(state): State<AppState>, ui: Ui, ClientIp(ip): ClientIp, headers: HeaderMap, body: Bytes) -> Response {
    let pairs = form_pairs(&body);
    let email = field(&pairs, "email").unwrap_or("").trim().to_lowercase();
    let password = field(&pairs, "password").unwrap_or("");
    // Double-submit token: a cross-site page cannot read our cookie to copy it into its form.
    let token_ok = match (field(&pairs, "csrf"), auth::cookie_value(&headers, LOGIN_CSRF_COOKIE)) {
        (Some(f), Some(c)) => auth::same_secret(f, c),
        _ => false,
    };
    if !token_ok {
        let msg = ui.t("Het formulier is verlopen; probeer het opnieuw.", "The form expired; please try again.");
        return login_page(&state, ui, &email, Some(msg), StatusCode::FORBIDDEN);
    }
    match state.throttle.check_login(&email, ip) {
        LoginCheck::Allowed => {}
        LoginCheck::Locked => {
            tracing::warn!(email = %email, "login refused: account locked after repeated failures");
            let msg = ui.t(
                "Te veel mislukte pogingen. Dit account is 15 minuten geblokkeerd.",
                "Too many failed attempts. This account is locked for 15 minutes.",
            );
            return login_page(&state, ui, &email, Some(msg), StatusCode::TOO_MANY_REQUESTS);
        }
        LoginCheck::AddressBlocked => {
            tracing::warn!(ip = ?ip, "login refused: too many failed attempts from this address");
            let msg = ui.t(
                "Te veel mislukte pogingen vanaf dit adres. Probeer het over 15 minuten opnieuw.",
                "Too many failed attempts from this address. Try again in 15 minutes.",
            );
            return login_page(&state, ui, &email, Some(msg), StatusCode::TOO_MANY_REQUESTS);
        }
    }
    let user = state.user(&email).await;
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| users::dummy_hash().to_string());
    // argon2 takes tens of milliseconds of CPU: off the async workers, so logins cannot stall
    // other requests.
    let pw = password.to_string();
    let verified = tokio::task::spawn_blocking(move || users::verify_password(&pw, &hash)).await.unwrap_or(false);
    let Some(user) = user.filter(|_| verified) else {
        let locked = state.throttle.failed(&email, ip);
        tracing::warn!(email = %email, ip = ?ip, locked, "failed login");
        let msg = ui.t("E-mailadres of wachtwoord onjuist.", "Wrong e-mail address or password.");
        return login_page(&state, ui, &email, Some(msg), StatusCode::UNAUTHORIZED);
    };
    state.throttle.succeeded(&email);
    let id = auth::random_token();
    if let Err(e) = state.store.create_session(&auth::session_hash(&id), &user.email, &auth::random_token()).await {
        tracing::error!(error = %e, "cannot store the session");
        let msg = ui.t("Inloggen lukt nu niet (database). Probeer het later opnieuw.", "Logging in is not possible now (database). Please try again later.");
        return login_page(&state, ui, &email, Some(msg), StatusCode::SERVICE_UNAVAILABLE);
    }
    tracing::info!(email = %user.email, role = ?user.role, "login");
    let _ = state
        .store
        .append_audit(&NewAuditEntry { actor: user.email.clone(), municipality_cbs: user.municipality.clone(), what: "login".into(), before: None, after: None })
        .await;
    let mut res = Redirect::to("/").into_response();
    if let Ok(v) = auth::set_cookie(&state, SESSION_COOKIE, &id, None).parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    if let Ok(v) = auth::set_cookie(&state, LOGIN_CSRF_COOKIE, "", Some(0)).parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

pub async fn logout(State(state): State<AppState>, user: CurrentUser, body: Bytes) -> Result<Response, AuthError> {
    user.check_csrf(field(&form_pairs(&body), "csrf"))?;
    if let Err(e) = state.store.end_session(&auth::session_hash(&user.session_id)).await {
        tracing::error!(error = %e, "cannot end the session");
        return Err(AuthError::Unavailable);
    }
    let mut res = Redirect::to("/login").into_response();
    if let Ok(v) = auth::set_cookie(&state, SESSION_COOKIE, "", Some(0)).parse() {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

pub async fn home(State(state): State<AppState>, ui: Ui, user: CurrentUser) -> Response {
    if let (Role::Admin | Role::Viewer, Some(m)) = (user.role(), &user.user.municipality) {
        return Redirect::to(&format!("/m/{m}")).into_response();
    }
    let snap = state.routing.snapshot();
    let body = html! {
        p { (ui.t("Kies een gemeente.", "Choose a municipality.")) }
        ul.list {
            @for m in snap.plan.municipalities() {
                li { a href={"/m/" (m.cbs)} { (m.name) } " " small { (m.cbs) } }
            }
        }
    };
    layout(ui, &ui.t("Gemeenten", "Municipalities"), Some(&user), body).into_response()
}

/// The stored version (0 = never saved) and document of a municipality.
pub(crate) async fn stored(state: &AppState, cbs: &str) -> (i64, Option<SettingsDoc>) {
    let found = state.store.load_all_settings().await.ok().and_then(|all| all.into_iter().find(|s| s.cbs == cbs));
    match found {
        Some(s) => (s.version, serde_json::from_value(s.document).ok()),
        None => (0, None),
    }
}

pub(crate) fn resolve(state: &AppState, user: &CurrentUser, cbs: &str) -> Result<(String, veertien_core::MunicipalityId), AuthError> {
    let cbs = cbs.to_uppercase();
    user.require_municipality(&cbs)?;
    let id = state.municipality_id(&cbs).ok_or(AuthError::NotFound)?;
    Ok((cbs, id))
}

pub(crate) async fn current_doc(state: &AppState, cbs: &str, id: veertien_core::MunicipalityId) -> (i64, SettingsDoc) {
    let (version, stored) = stored(state, cbs).await;
    (version, SettingsDoc::from_settings_with_notes(&state.current_settings(id), stored.as_ref()))
}

pub async fn municipality(
    State(state): State<AppState>,
    ui: Ui,
    user: CurrentUser,
    Path(cbs): Path<String>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Result<Response, AuthError> {
    let (cbs, id) = resolve(&state, &user, &cbs)?;
    let (version, doc) = current_doc(&state, &cbs, id).await;
    let q = q.unwrap_or_default();
    let notice = if q.contains("saved=1") {
        Some(ui.t("Opgeslagen. Het volgende gesprek gebruikt de nieuwe instellingen.", "Saved. The next call uses the new settings."))
    } else if q.contains("prompt=1") {
        Some(ui.t("Welkomstbericht opgeslagen. Het volgende gesprek gebruikt het.", "Welcome message saved. The next call uses it."))
    } else if q.contains("prompt=0") {
        Some(ui.t("Eigen welkomstbericht verwijderd.", "Own welcome message removed."))
    } else {
        None
    };
    let ctx = PageCtx { cbs: &cbs, id, version, errors: &[], notice, status: StatusCode::OK };
    Ok(settings_form::render(&state, ui, &user, &doc, ctx))
}

pub async fn save_settings(
    State(state): State<AppState>,
    ui: Ui,
    user: CurrentUser,
    Path(cbs): Path<String>,
    body: Bytes,
) -> Result<Response, AuthError> {
    let (cbs, id) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    let pairs = form_pairs(&body);
    user.check_csrf(field(&pairs, "csrf"))?;
    let version = field(&pairs, "version").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut errors = Vec::new();
    let doc = settings_form::doc_from_form(&pairs, &mut errors, ui);
    let applied = doc.apply(&state.current_settings(id), &state.trunk_refs(), ui);
    let ms = match applied {
        Ok(ms) if errors.is_empty() => ms,
        Ok(_) => return Ok(settings_form::render(&state, ui, &user, &doc, PageCtx::refused(&cbs, id, version, &errors))),
        Err(mut e) => {
            errors.append(&mut e);
            return Ok(settings_form::render(&state, ui, &user, &doc, PageCtx::refused(&cbs, id, version, &errors)));
        }
    };
    Ok(finish_save(&state, ui, &user, &cbs, id, ms, &doc, version).await)
}

#[allow(clippy::too_many_arguments)]
async fn finish_save(state: &AppState, ui: Ui, user: &CurrentUser, cbs: &str, id: veertien_core::MunicipalityId, ms: MunicipalitySettings, doc: &SettingsDoc, version: i64) -> Response {
    match save_municipality(state, cbs, id, ms, doc, user.email(), Some(version)).await {
        Ok(_) => Redirect::to(&format!("/m/{cbs}?saved=1")).into_response(),
        Err(SaveError::Conflict { field, message }) => {
            let errors = [FieldError { field, message }];
            settings_form::render(state, ui, user, doc, PageCtx::refused(cbs, id, version, &errors))
        }
        Err(e) => {
            let (current, _) = stored(state, cbs).await;
            settings_form::render(state, ui, user, doc, PageCtx { cbs, id, version: current, errors: &[], notice: Some(e.to_string()), status: StatusCode::CONFLICT })
        }
    }
}

pub async fn toggle_calamity(
    State(state): State<AppState>,
    ui: Ui,
    user: CurrentUser,
    Path(cbs): Path<String>,
    body: Bytes,
) -> Result<Response, AuthError> {
    let (cbs, id) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    let pairs = form_pairs(&body);
    user.check_csrf(field(&pairs, "csrf"))?;
    let version = field(&pairs, "version").and_then(|v| v.parse().ok()).unwrap_or(0);
    let current = state.current_settings(id);
    let (_, mut doc) = current_doc(&state, &cbs, id).await;
    doc.calamity_active = field(&pairs, "active") == Some("true");
    match doc.apply(&current, &state.trunk_refs(), ui) {
        Ok(ms) => Ok(finish_save(&state, ui, &user, &cbs, id, ms, &doc, version).await),
        Err(errors) => Ok(settings_form::render(&state, ui, &user, &doc, PageCtx::refused(&cbs, id, version, &errors))),
    }
}

pub async fn audit(State(state): State<AppState>, ui: Ui, user: CurrentUser, Path(cbs): Path<String>) -> Result<Response, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    let entries = state
        .store
        .audit_log(&AuditFilter { municipality: Some(cbs.clone()), limit: 500, ..AuditFilter::default() })
        .await
        .unwrap_or_default();
    let body = html! {
        p { a href={"/m/" (cbs)} { (ui.t("Terug naar de instellingen", "Back to settings")) } }
        (audit_table(ui, &entries))
    };
    Ok(layout(ui, &ui.t("Wijzigingslog", "Audit log"), Some(&user), body).into_response())
}

fn show(v: &Option<serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => "—".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

fn audit_table(ui: Ui, entries: &[AuditEntry]) -> Markup {
    html! {
        div.scroll { table.audit {
            thead { tr { th { (ui.t("Wanneer", "When")) } th { (ui.t("Wie", "Who")) } th { (ui.t("Wat", "What")) } th { (ui.t("Was", "Before")) } th { (ui.t("Wordt", "After")) } } }
            tbody {
                @for e in entries {
                    tr {
                        td { (jiff::Timestamp::from_millisecond(e.at_ms).map(|t| t.to_zoned(veertien_core::hours::amsterdam().clone()).strftime("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()) }
                        td { (e.actor) } td { (e.what) } td { (show(&e.before)) } td { (show(&e.after)) }
                    }
                }
            }
        } }
    }
}
