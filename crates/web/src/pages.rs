//! Server-rendered pages (maud): login, overview, a municipality's settings, its audit log.
//! No JavaScript: every action is a form with the session's CSRF token.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use veertien_core::MunicipalitySettings;
use veertien_store::{AuditEntry, AuditFilter, NewAuditEntry};

use crate::auth::{self, CurrentUser, LOGIN_CSRF_COOKIE, LoginCheck, SESSION_COOKIE};
use crate::doc::{FieldError, SettingsDoc};
use crate::i18n::Ui;
use crate::users::{self, Role};
use crate::{AppState, AuthError, SaveError, save_municipality};

const CSS: &str = include_str!("app.css");

pub async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS)
}

fn layout(ui: Ui, title: &str, user: Option<&CurrentUser>, body: Markup) -> Html<String> {
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
                            span.who { (u.email()) }
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

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
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

pub async fn login(State(state): State<AppState>, ui: Ui, headers: HeaderMap, body: Bytes) -> Response {
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
    if let LoginCheck::Locked = state.sessions.check_login(&email) {
        tracing::warn!(email = %email, "login refused: account locked after repeated failures");
        let msg = ui.t(
            "Te veel mislukte pogingen. Dit account is 15 minuten geblokkeerd.",
            "Too many failed attempts. This account is locked for 15 minutes.",
        );
        return login_page(&state, ui, &email, Some(msg), StatusCode::TOO_MANY_REQUESTS);
    }
    let user = state.user(&email);
    let hash = user.as_ref().map(|u| u.password_hash.as_str()).unwrap_or(users::dummy_hash());
    let ok = users::verify_password(password, hash) && user.is_some();
    let Some(user) = user.filter(|_| ok) else {
        let locked = state.sessions.failed(&email);
        tracing::warn!(email = %email, locked, "failed login");
        let msg = ui.t("E-mailadres of wachtwoord onjuist.", "Wrong e-mail address or password.");
        return login_page(&state, ui, &email, Some(msg), StatusCode::UNAUTHORIZED);
    };
    state.sessions.succeeded(&email);
    let (id, _csrf) = state.sessions.create(&user.email);
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
    state.sessions.remove(&user.session_id);
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

async fn stored_version(state: &AppState, cbs: &str) -> i64 {
    state.store.load_all_settings().await.ok().and_then(|all| all.into_iter().find(|s| s.cbs == cbs)).map(|s| s.version).unwrap_or(0)
}

fn resolve(state: &AppState, user: &CurrentUser, cbs: &str) -> Result<(String, veertien_core::MunicipalityId), AuthError> {
    let cbs = cbs.to_uppercase();
    user.require_municipality(&cbs)?;
    let id = state.municipality_id(&cbs).ok_or(AuthError::NotFound)?;
    Ok((cbs, id))
}

pub async fn municipality(State(state): State<AppState>, ui: Ui, user: CurrentUser, Path(cbs): Path<String>) -> Result<Response, AuthError> {
    let (cbs, id) = resolve(&state, &user, &cbs)?;
    let doc = SettingsDoc::from_settings(&state.current_settings(id));
    let version = stored_version(&state, &cbs).await;
    Ok(settings_page(&state, ui, &user, &cbs, id, &doc, version, &[], None, StatusCode::OK))
}

#[allow(clippy::too_many_arguments)]
fn settings_page(
    state: &AppState,
    ui: Ui,
    user: &CurrentUser,
    cbs: &str,
    id: veertien_core::MunicipalityId,
    doc: &SettingsDoc,
    version: i64,
    errors: &[FieldError],
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let snap = state.routing.snapshot();
    let m = snap.plan.municipality(id);
    let can_write = user.user.can_write(cbs);
    let err = |f: &str| errors.iter().find(|e| e.field == f).map(|e| e.message.clone());
    let calamity_on = doc.calamity_active;
    let opt = |v: &str, cur: &str| -> Markup { html! { option value=(v) selected[v == cur] { (v) } } };
    let fieldrow = |name: &str, label: String, input: Markup| -> Markup {
        let e = err(name);
        html! {
            div.field.invalid[e.is_some()] {
                label for=(name) { (label) }
                (input)
                @if let Some(e) = e { p.error id={(name) "-error"} role="alert" { (e) } }
            }
        }
    };
    let body = html! {
        p { (m.name) " · " (cbs) " · " a href={"/m/" (cbs) "/audit"} { (ui.t("Wijzigingslog", "Audit log")) } }
        @if let Some(n) = &notice { p.notice role="status" { (n) } }
        @if !errors.is_empty() { p.error role="alert" { (ui.t("Niet opgeslagen: controleer de gemarkeerde velden.", "Not saved: check the marked fields.")) } }
        @if can_write {
            form.card.calamity method="post" action={"/m/" (cbs) "/calamity"} {
                input type="hidden" name="csrf" value=(user.csrf);
                input type="hidden" name="version" value=(version);
                input type="hidden" name="active" value=(if calamity_on { "false" } else { "true" });
                p { (ui.t("Calamiteitenlijn", "Calamity line")) ": " strong { (if calamity_on { ui.t("AAN", "ON") } else { ui.t("uit", "off") }) } }
                button.danger type="submit" { (if calamity_on { ui.t("Calamiteitenlijn uitzetten", "Switch calamity line off") } else { ui.t("Calamiteitenlijn aanzetten", "Switch calamity line on") }) }
            }
        }
        form.card method="post" action={"/m/" (cbs) "/settings"} {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="version" value=(version);
            fieldset disabled[!can_write] {
                (fieldrow("status", ui.t("Aansluitstatus", "Connection status"), html! {
                    select #status name="status" { (opt("active", &doc.status)) (opt("technical", &doc.status)) (opt("not_connected", &doc.status)) }
                }))
                (fieldrow("destination", ui.t("Bestemming (nummer, SIP-adres of 'trunk')", "Destination (number, SIP address or 'trunk')"), html! {
                    input #destination type="text" name="destination" value=(doc.destination) required;
                }))
                (fieldrow("mode", ui.t("Doorschakelen of doorverbinden", "Redirect or bridge"), html! {
                    select #mode name="mode" { (opt("redirect", &doc.mode)) (opt("bridge", &doc.mode)) }
                }))
                (fieldrow("menu_digit", ui.t("Toets in het keuzemenu (leeg = alfabetisch)", "Keypad digit (empty = alphabetical)"), html! {
                    input #menu_digit type="text" inputmode="numeric" name="menu_digit" value=[doc.menu_digit];
                }))
                (fieldrow("overflow_destination", ui.t("Overloop naar (leeg = geen)", "Overflow to (empty = none)"), html! {
                    input #overflow_destination type="text" name="overflow_destination" value=[doc.overflow_destination.as_deref()];
                }))
                (fieldrow("overflow_no_answer_secs", ui.t("Overloop na (seconden zonder antwoord)", "Overflow after (seconds without answer)"), html! {
                    input #overflow_no_answer_secs type="text" inputmode="numeric" name="overflow_no_answer_secs" value=[doc.overflow_no_answer_secs];
                }))
                (fieldrow("calamity_destination", ui.t("Calamiteitenlijn: bestemming", "Calamity line: destination"), html! {
                    input #calamity_destination type="text" name="calamity_destination" value=[doc.calamity_destination.as_deref()];
                }))
                (fieldrow("calamity_message", ui.t("Calamiteitenlijn: bericht", "Calamity line: message"), html! {
                    textarea #calamity_message name="calamity_message" rows="2" { (doc.calamity_message) }
                }))
                input type="hidden" name="calamity_active" value=(calamity_on);
                (fieldrow("forward_when_not_connected", ui.t("Niet aangesloten: na de melding doorschakelen naar het algemene nummer", "Not connected: forward to the general number after the announcement"), html! {
                    input #forward_when_not_connected type="checkbox" name="forward_when_not_connected" value="true" checked[doc.forward_when_not_connected];
                }))
                (fieldrow("languages", ui.t("Talen", "Languages"), html! {
                    @for l in ["nl", "en", "fy", "de"] {
                        label.check { input type="checkbox" name="languages" value=(l) checked[doc.languages.iter().any(|x| x == l)]; " " (l) }
                    }
                }))
                @if can_write { button type="submit" { (ui.t("Opslaan", "Save")) } }
            }
        }
    };
    (status, layout(ui, &ui.t("Instellingen", "Settings"), Some(user), body)).into_response()
}

/// The form as a document; keeps exactly what the user typed so a refused form loses nothing.
fn doc_from_form(pairs: &[(String, String)], errors: &mut Vec<FieldError>, ui: Ui) -> SettingsDoc {
    let s = |n: &str| field(pairs, n).unwrap_or("").to_string();
    let opt_s = |n: &str| field(pairs, n).map(str::trim).filter(|v| !v.is_empty()).map(String::from);
    let menu_raw = opt_s("menu_digit");
    let secs_raw = opt_s("overflow_no_answer_secs");
    let menu_digit = menu_raw.as_deref().and_then(|v| match v.parse::<u8>() {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(FieldError { field: "menu_digit".into(), message: ui.t("Kies een toets 0-9", "Choose a key 0-9") });
            None
        }
    });
    let secs = secs_raw.as_deref().and_then(|v| match v.parse::<u16>() {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(FieldError { field: "overflow_no_answer_secs".into(), message: ui.t("Geef een aantal seconden", "Give a number of seconds") });
            None
        }
    });
    SettingsDoc {
        status: s("status"),
        destination: s("destination").trim().to_string(),
        mode: s("mode"),
        menu_digit,
        overflow_destination: opt_s("overflow_destination"),
        overflow_no_answer_secs: secs,
        calamity_active: field(pairs, "calamity_active") == Some("true"),
        calamity_destination: opt_s("calamity_destination"),
        calamity_message: s("calamity_message"),
        forward_when_not_connected: field(pairs, "forward_when_not_connected") == Some("true"),
        languages: pairs.iter().filter(|(k, _)| k == "languages").map(|(_, v)| v.clone()).collect(),
    }
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
    let doc = doc_from_form(&pairs, &mut errors, ui);
    let applied = doc.apply(&state.current_settings(id), &state.trunk_refs(), ui);
    let ms = match applied {
        Ok(ms) if errors.is_empty() => ms,
        Ok(_) => return Ok(settings_page(&state, ui, &user, &cbs, id, &doc, version, &errors, None, StatusCode::UNPROCESSABLE_ENTITY)),
        Err(mut e) => {
            errors.append(&mut e);
            return Ok(settings_page(&state, ui, &user, &cbs, id, &doc, version, &errors, None, StatusCode::UNPROCESSABLE_ENTITY));
        }
    };
    Ok(finish_save(&state, ui, &user, &cbs, id, ms, &doc, version).await)
}

#[allow(clippy::too_many_arguments)]
async fn finish_save(state: &AppState, ui: Ui, user: &CurrentUser, cbs: &str, id: veertien_core::MunicipalityId, ms: MunicipalitySettings, doc: &SettingsDoc, version: i64) -> Response {
    match save_municipality(state, cbs, id, ms, user.email(), Some(version)).await {
        Ok(_) => Redirect::to(&format!("/m/{cbs}?saved=1")).into_response(),
        Err(SaveError::Conflict(m)) => {
            let errors = [FieldError { field: "menu_digit".into(), message: m }];
            settings_page(state, ui, user, cbs, id, doc, version, &errors, None, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => {
            let current = stored_version(state, cbs).await;
            settings_page(state, ui, user, cbs, id, doc, current, &[], Some(e.to_string()), StatusCode::CONFLICT)
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
    let mut doc = SettingsDoc::from_settings(&current);
    doc.calamity_active = field(&pairs, "active") == Some("true");
    match doc.apply(&current, &state.trunk_refs(), ui) {
        Ok(ms) => Ok(finish_save(&state, ui, &user, &cbs, id, ms, &doc, version).await),
        Err(errors) => Ok(settings_page(&state, ui, &user, &cbs, id, &doc, version, &errors, None, StatusCode::UNPROCESSABLE_ENTITY)),
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
