//! The own account page: who am I, and changing the own password (current password, the new one
//! twice, the strength rule). A change ends every session of the account, on every device, and
//! this browser gets a fresh session, so a stolen session id is useless afterwards.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use veertien_store::NewAuditEntry;

use crate::auth::{self, ClientIp, CurrentUser, SESSION_COOKIE};
use crate::i18n::Ui;
use crate::pages::{field, form_pairs, layout};
use crate::users::{self, Role};
use crate::{AppState, AuthError};

/// Minimum length of a new password (also what `veertien user add` requires).
pub const MIN_LEN: usize = 12;

/// Why a new password is refused, or Ok. The rule: at least [`MIN_LEN`] characters, at least 5
/// different characters (no "aaaaaaaaaaaa"), not the e-mail address or its name part, and not
/// the current password. Length over composition rules, as NIST SP 800-63B recommends.
pub fn check_new_password(ui: Ui, email: &str, current: &str, new: &str) -> Result<(), String> {
    if new.chars().count() < MIN_LEN {
        return Err(ui.t("Het nieuwe wachtwoord moet minstens 12 tekens lang zijn.", "The new password must be at least 12 characters long."));
    }
    let distinct: std::collections::BTreeSet<char> = new.chars().collect();
    if distinct.len() < 5 {
        return Err(ui.t("Het nieuwe wachtwoord moet minstens 5 verschillende tekens bevatten.", "The new password must contain at least 5 different characters."));
    }
    let lower = new.to_lowercase();
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if lower.contains(&email.to_lowercase()) || (local.chars().count() >= 3 && lower.contains(&local)) {
        return Err(ui.t("Het nieuwe wachtwoord mag uw e-mailadres niet bevatten.", "The new password must not contain your e-mail address."));
    }
    if new == current {
        return Err(ui.t("Het nieuwe wachtwoord moet anders zijn dan het huidige.", "The new password must differ from the current one."));
    }
    Ok(())
}

fn role_label(ui: Ui, role: Role) -> String {
    match role {
        Role::Operator => ui.t("Beheerder van het platform", "Platform operator"),
        Role::Admin => ui.t("Beheerder van de gemeente", "Municipality administrator"),
        Role::Viewer => ui.t("Alleen lezen", "Read only"),
    }
}

/// Which field an error belongs to, so it is shown next to that field.
enum Problem {
    Current(String),
    New(String),
    Repeat(String),
    Other(String),
}

fn render(state: &AppState, ui: Ui, user: &CurrentUser, notice: Option<String>, problem: Option<Problem>, status: StatusCode) -> Response {
    let municipality = user.user.municipality.as_deref().and_then(|cbs| state.municipality_id(cbs).map(|id| (cbs, id)));
    let snap = state.routing.snapshot();
    let err = |p: &Option<Problem>, which: u8| -> Option<String> {
        match (p, which) {
            (Some(Problem::Current(m)), 0) | (Some(Problem::New(m)), 1) | (Some(Problem::Repeat(m)), 2) => Some(m.clone()),
            _ => None,
        }
    };
    let body = html! {
        @if let Some(n) = &notice { p.notice role="status" { (n) } }
        @if let Some(Problem::Other(m)) = &problem { p.error role="alert" { (m) } }
        section.card {
            dl {
                dt { (ui.t("E-mailadres", "E-mail address")) } dd #account-email { (user.email()) }
                dt { (ui.t("Rol", "Role")) } dd { (role_label(ui, user.role())) }
                @if let Some((cbs, id)) = municipality {
                    dt { (ui.t("Gemeente", "Municipality")) } dd { a href={"/m/" (cbs)} { (snap.plan.municipality(id).name) } " " small { (cbs) } }
                }
            }
        }
        form.card method="post" action="/account/password" {
            h2 { (ui.t("Wachtwoord wijzigen", "Change password")) }
            p.hint { (ui.t(
                "Minstens 12 tekens; een zin van een paar woorden is sterk en goed te onthouden. Na het wijzigen wordt u op alle andere apparaten uitgelogd.",
                "At least 12 characters; a sentence of a few words is strong and easy to remember. After the change you are logged out on every other device.",
            )) }
            input type="hidden" name="csrf" value=(user.csrf);
            @for (i, (id, nl, en, auto)) in [("current", "Huidig wachtwoord", "Current password", "current-password"),
                                              ("new", "Nieuw wachtwoord", "New password", "new-password"),
                                              ("repeat", "Nieuw wachtwoord nogmaals", "New password again", "new-password")].into_iter().enumerate() {
                @let e = err(&problem, i as u8);
                div.field.invalid[e.is_some()] {
                    label for=(id) { (ui.t(nl, en)) }
                    @if let Some(m) = &e { p.error id={(id) "-error"} { (m) } }
                    input id=(id) type="password" name=(id) autocomplete=(auto) required minlength=[(i > 0).then_some(MIN_LEN)]
                        aria-describedby=[e.as_ref().map(|_| format!("{id}-error"))];
                }
            }
            button #change-password type="submit" { (ui.t("Wachtwoord wijzigen", "Change password")) }
        }
    };
    let mut res = layout(ui, &ui.t("Mijn account", "My account"), Some(user), body).into_response();
    *res.status_mut() = status;
    res
}

pub async fn page(State(state): State<AppState>, ui: Ui, user: CurrentUser, RawQuery(q): RawQuery) -> Response {
    let notice = q.as_deref().is_some_and(|q| q.contains("changed=1")).then(|| {
        ui.t("Uw wachtwoord is gewijzigd. Alle andere sessies zijn beëindigd.", "Your password was changed. Every other session has ended.")
    });
    render(&state, ui, &user, notice, None, StatusCode::OK)
}

pub async fn change_password(State(state): State<AppState>, ui: Ui, user: CurrentUser, ClientIp(ip): ClientIp, body: Bytes) -> Result<Response, AuthError> {
    let pairs = form_pairs(&body);
    user.check_csrf(field(&pairs, "csrf"))?;
    let current = field(&pairs, "current").unwrap_or("").to_string();
    let new = field(&pairs, "new").unwrap_or("");
    let repeat = field(&pairs, "repeat").unwrap_or("");
    let refuse = |p: Problem, status: StatusCode| Ok(render(&state, ui, &user, None, Some(p), status));
    // A stolen session must not become a way around the login throttle: wrong current passwords
    // count as failed logins of this account.
    if state.throttle.check_login(user.email(), ip) != auth::LoginCheck::Allowed {
        let m = ui.t("Te veel mislukte pogingen. Probeer het over 15 minuten opnieuw.", "Too many failed attempts. Try again in 15 minutes.");
        return refuse(Problem::Current(m), StatusCode::TOO_MANY_REQUESTS);
    }
    let hash = user.user.password_hash.clone();
    let pw = current.clone();
    let verified = tokio::task::spawn_blocking(move || users::verify_password(&pw, &hash)).await.unwrap_or(false);
    if !verified {
        state.throttle.failed(user.email(), ip);
        tracing::warn!(email = %user.email(), "password change refused: wrong current password");
        return refuse(Problem::Current(ui.t("Het huidige wachtwoord klopt niet.", "The current password is wrong.")), StatusCode::UNPROCESSABLE_ENTITY);
    }
    if let Err(m) = check_new_password(ui, user.email(), &current, new) {
        return refuse(Problem::New(m), StatusCode::UNPROCESSABLE_ENTITY);
    }
    if new != repeat {
        return refuse(Problem::Repeat(ui.t("De twee nieuwe wachtwoorden zijn niet gelijk.", "The two new passwords differ.")), StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Ends every session of the account (this one too) in the same transaction as the change.
    if let Err(e) = users::set_password(&state.store, user.email(), new).await {
        tracing::error!(error = %e, "cannot change the password");
        return refuse(Problem::Other(ui.t("Wijzigen lukt nu niet (database). Probeer het later opnieuw.", "Changing is not possible now (database). Please try again later.")), StatusCode::SERVICE_UNAVAILABLE);
    }
    state.throttle.succeeded(user.email());
    let _ = state
        .store
        .append_audit(&NewAuditEntry { actor: user.email().to_string(), municipality_cbs: user.user.municipality.clone(), what: "password changed".into(), before: None, after: None })
        .await;
    tracing::info!(email = %user.email(), "password changed; every session ended");
    // This browser continues in a new session.
    let id = auth::random_token();
    let mut res = Redirect::to("/account?changed=1").into_response();
    match state.store.create_session(&auth::session_hash(&id), user.email(), &auth::random_token()).await {
        Ok(()) => {
            if let Ok(v) = auth::set_cookie(&state, SESSION_COOKIE, &id, None).parse() {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store the new session after a password change");
            res = Redirect::to("/login").into_response();
        }
    }
    Ok(res)
}
