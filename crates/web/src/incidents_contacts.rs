//! Per-municipality notification targets (contacts, webhook) and synthetic test calls: pages
//! and API. Readable by whoever may read the municipality, changeable by its admin and the
//! operator; another municipality's contacts answer 404. The webhook secret is shown only to
//! those who may change it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use veertien_store::{Contact, StoreError};

use crate::auth::{CSRF_HEADER, CurrentUser};
use crate::doc::FieldError;
use crate::i18n::Ui;
use crate::notify::local_time;
use crate::{AppState, AuthError};

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

fn resolve(state: &AppState, user: &CurrentUser, cbs: &str) -> Result<(String, String), AuthError> {
    let cbs = cbs.to_uppercase();
    user.require_municipality(&cbs)?;
    let snap = state.routing.snapshot();
    let id = snap.plan.by_cbs(&cbs).ok_or(AuthError::NotFound)?;
    Ok((cbs, snap.plan.municipality(id).name.clone()))
}

/// A plausible e-mail address: one `@`, a dotted domain, no spaces or angle brackets (lettre
/// does the full RFC 5322 parse when sending).
pub fn valid_email(e: &str) -> bool {
    let e = e.trim();
    let Some((local, domain)) = e.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.contains(char::is_whitespace)
        && !e.contains(['<', '>', ',', ';', '"'])
        && !domain.contains('@')
        && e.len() <= 254
        && e.parse::<lettre::Address>().is_ok()
}

fn new_secret() -> String {
    crate::auth::random_token()
}

fn card_errors(errors: &[FieldError], f: &str) -> Option<String> {
    errors.iter().find(|e| e.field == f).map(|e| e.message.clone())
}

#[allow(clippy::too_many_arguments)]
async fn contacts_response(state: &AppState, ui: Ui, user: &CurrentUser, cbs: &str, name: &str, errors: &[FieldError], typed: (&str, &str, &str), status: StatusCode) -> Response {
    let contacts = state.store.contacts(cbs).await.unwrap_or_default();
    let hook = state.store.webhook(cbs).await.ok().flatten();
    let can_write = user.user.can_write(cbs);
    let email_err = card_errors(errors, "email");
    let url_err = card_errors(errors, "webhook_url");
    let body = html! {
        p { (name) " · " (cbs) " · " a href={"/m/" (cbs)} { (ui.t("Instellingen", "Settings")) } " · " a href={"/m/" (cbs) "/tests"} { (ui.t("Testoproepen", "Test calls")) } }
        p { (ui.t("Deze adressen krijgen elke storingsmelding, update en oplossing per e-mail.", "These addresses receive every incident declaration, update and resolution by e-mail.")) }
        div.scroll { table.contacts {
            thead { tr { th { (ui.t("E-mail", "E-mail")) } th { (ui.t("Naam", "Name")) } th { (ui.t("Toegevoegd", "Added")) } @if can_write { th {} } } }
            tbody { @for c in &contacts {
                tr { td { (c.email) } td { (c.name) } td { (local_time(c.created_ms)) " · " (c.created_by) }
                    @if can_write { td { form.inline method="post" action={"/m/" (cbs) "/contacts/remove"} {
                        input type="hidden" name="csrf" value=(user.csrf);
                        input type="hidden" name="id" value=(c.id);
                        button type="submit" { (ui.t("Verwijderen", "Remove")) }
                    } } }
                }
            } }
        } }
        @if can_write {
            form.card #add-contact method="post" action={"/m/" (cbs) "/contacts"} {
                input type="hidden" name="csrf" value=(user.csrf);
                div.field.invalid[email_err.is_some()] {
                    label for="email" { (ui.t("E-mailadres", "E-mail address")) }
                    input #email type="email" name="email" value=(typed.0) required;
                    @if let Some(e) = &email_err { p.error #email-error role="alert" { (e) } }
                }
                div.field { label for="name" { (ui.t("Naam of functie (optioneel)", "Name or role (optional)")) } input #name type="text" name="name" value=(typed.1); }
                button type="submit" { (ui.t("Toevoegen", "Add")) }
            }
        }
        h2 { "Webhook" }
        p { (ui.t("Elke melding wordt ook als JSON gepost, ondertekend met HMAC-SHA256 in de header X-Veertien-Signature (t=<unix>,v1=<hex> over \"<t>.<body>\").",
                  "Every notification is also POSTed as JSON, signed with HMAC-SHA256 in the X-Veertien-Signature header (t=<unix>,v1=<hex> over \"<t>.<body>\").")) }
        @if let Some(h) = &hook {
            p { "URL: " code { (h.url) } }
            @if can_write { p { (ui.t("Geheim: ", "Secret: ")) code.secret { (h.secret) } } }
        } @else { p { (ui.t("Geen webhook ingesteld.", "No webhook configured.")) } }
        @if can_write {
            form.card #webhook method="post" action={"/m/" (cbs) "/webhook"} {
                input type="hidden" name="csrf" value=(user.csrf);
                div.field.invalid[url_err.is_some()] {
                    label for="webhook_url" { (ui.t("Webhook-URL (leeg = uitzetten; een nieuwe URL krijgt een nieuw geheim)", "Webhook URL (empty = off; a new URL gets a new secret)")) }
                    input #webhook_url type="text" inputmode="url" name="webhook_url" value=(if typed.2.is_empty() { hook.as_ref().map(|h| h.url.as_str()).unwrap_or("") } else { typed.2 });
                    @if let Some(e) = &url_err { p.error #webhook_url-error role="alert" { (e) } }
                }
                button type="submit" { (ui.t("Webhook opslaan", "Save webhook")) }
            }
        }
    };
    (status, page(ui, &ui.t("Contactpersonen voor storingen", "Incident contacts"), user, body)).into_response()
}

fn page(ui: Ui, title: &str, user: &CurrentUser, body: Markup) -> axum::response::Html<String> {
    crate::pages::layout(ui, title, Some(user), html! { link rel="stylesheet" href="/static/status.css"; (body) })
}

pub async fn contacts_page(State(state): State<AppState>, ui: Ui, user: CurrentUser, Path(cbs): Path<String>) -> Result<Response, AuthError> {
    let (cbs, name) = resolve(&state, &user, &cbs)?;
    Ok(contacts_response(&state, ui, &user, &cbs, &name, &[], ("", "", ""), StatusCode::OK).await)
}

pub async fn add_contact(State(state): State<AppState>, ui: Ui, user: CurrentUser, Path(cbs): Path<String>, body: Bytes) -> Result<Response, AuthError> {
    let (cbs, name) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    let pairs = form_pairs(&body);
    user.check_csrf(Some(field(&pairs, "csrf")))?;
    let (email, cname) = (field(&pairs, "email").trim(), field(&pairs, "name").trim());
    let err = |nl: &str, en: &str| vec![FieldError { field: "email".into(), message: ui.t(nl, en) }];
    let errors = if !valid_email(email) {
        err("Geen geldig e-mailadres.", "Not a valid e-mail address.")
    } else if cname.chars().count() > 200 {
        vec![FieldError { field: "name".into(), message: ui.t("Naam te lang.", "Name too long.") }]
    } else {
        match state.store.add_contact(&cbs, email, cname, user.email()).await {
            Ok(_) => return Ok(Redirect::to(&format!("/m/{cbs}/contacts")).into_response()),
            Err(StoreError::Conflict(_)) => err("Dit adres staat al in de lijst.", "This address is already listed."),
            Err(e) => {
                tracing::error!(error = %e, "cannot add contact");
                err("Opslaan mislukt.", "Saving failed.")
            }
        }
    };
    Ok(contacts_response(&state, ui, &user, &cbs, &name, &errors, (email, cname, ""), StatusCode::UNPROCESSABLE_ENTITY).await)
}

/// Removing an id that is not (or no longer) this municipality's contact changes nothing and
/// returns to the list, so a double click or a stale page is harmless.
pub async fn remove_contact(State(state): State<AppState>, user: CurrentUser, Path(cbs): Path<String>, body: Bytes) -> Result<Response, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    let pairs = form_pairs(&body);
    user.check_csrf(Some(field(&pairs, "csrf")))?;
    if let Ok(id) = field(&pairs, "id").parse::<i64>()
        && let Err(e) = state.store.remove_contact(&cbs, id, user.email()).await
    {
        tracing::error!(error = %e, "cannot remove contact");
    }
    Ok(Redirect::to(&format!("/m/{cbs}/contacts")).into_response())
}

pub async fn set_webhook(State(state): State<AppState>, ui: Ui, user: CurrentUser, Path(cbs): Path<String>, body: Bytes) -> Result<Response, AuthError> {
    let (cbs, name) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    let pairs = form_pairs(&body);
    user.check_csrf(Some(field(&pairs, "csrf")))?;
    let url = field(&pairs, "webhook_url").trim();
    match save_webhook(&state, &cbs, url, user.email(), ui).await {
        Ok(()) => Ok(Redirect::to(&format!("/m/{cbs}/contacts")).into_response()),
        Err(errors) => Ok(contacts_response(&state, ui, &user, &cbs, &name, &errors, ("", "", url), StatusCode::UNPROCESSABLE_ENTITY).await),
    }
}

/// Empty URL removes; the same URL keeps its secret; a new URL gets a new secret.
async fn save_webhook(state: &AppState, cbs: &str, url: &str, actor: &str, ui: Ui) -> Result<(), Vec<FieldError>> {
    let current = state.store.webhook(cbs).await.ok().flatten();
    let res = if url.is_empty() {
        if current.is_none() {
            return Ok(());
        }
        state.store.set_webhook(cbs, None, actor).await
    } else {
        if let Err((nl, en)) = state.notify.check_webhook_url(url) {
            return Err(vec![FieldError { field: "webhook_url".into(), message: ui.t(&nl, &en) }]);
        }
        if current.as_ref().is_some_and(|h| h.url == url) {
            return Ok(());
        }
        state.store.set_webhook(cbs, Some((url, &new_secret())), actor).await
    };
    res.map_err(|e| vec![FieldError { field: "webhook_url".into(), message: e.to_string() }])
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactItem {
    pub email: String,
    #[serde(default)]
    pub name: String,
}

/// `GET`/`PUT /api/municipalities/{cbs}/contacts`. `PUT` replaces the list and the webhook URL.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactsDoc {
    pub contacts: Vec<ContactItem>,
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Only shown to users who may change it; ignored on `PUT`.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

async fn contacts_doc(state: &AppState, user: &CurrentUser, cbs: &str) -> ContactsDoc {
    let contacts = state.store.contacts(cbs).await.unwrap_or_default();
    let hook = state.store.webhook(cbs).await.ok().flatten();
    ContactsDoc {
        contacts: contacts.into_iter().map(|c: Contact| ContactItem { email: c.email, name: c.name }).collect(),
        webhook_url: hook.as_ref().map(|h| h.url.clone()),
        webhook_secret: hook.filter(|_| user.user.can_write(cbs)).map(|h| h.secret),
    }
}

pub async fn api_contacts(State(state): State<AppState>, user: CurrentUser, Path(cbs): Path<String>) -> Result<Json<ContactsDoc>, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    Ok(Json(contacts_doc(&state, &user, &cbs).await))
}

pub async fn api_put_contacts(State(state): State<AppState>, ui: Ui, user: CurrentUser, headers: HeaderMap, Path(cbs): Path<String>, body: Bytes) -> Result<Response, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    user.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    let doc: ContactsDoc = match serde_json::from_slice(&body) {
        Ok(d) => d,
        Err(e) => return Ok(unprocessable(vec![FieldError { field: "body".into(), message: e.to_string() }])),
    };
    let mut errors = Vec::new();
    for (i, c) in doc.contacts.iter().enumerate() {
        if !valid_email(&c.email) {
            errors.push(FieldError { field: format!("contacts[{i}].email"), message: ui.t("Geen geldig e-mailadres.", "Not a valid e-mail address.") });
        }
    }
    let url = doc.webhook_url.as_deref().unwrap_or("").trim();
    if !url.is_empty()
        && let Err((nl, en)) = state.notify.check_webhook_url(url)
    {
        errors.push(FieldError { field: "webhook_url".into(), message: ui.t(&nl, &en) });
    }
    if !errors.is_empty() {
        return Ok(unprocessable(errors));
    }
    let current = state.store.contacts(&cbs).await.unwrap_or_default();
    let wanted: Vec<String> = doc.contacts.iter().map(|c| c.email.trim().to_lowercase()).collect();
    for c in current.iter().filter(|c| !wanted.contains(&c.email)) {
        let _ = state.store.remove_contact(&cbs, c.id, user.email()).await;
    }
    for c in doc.contacts.iter().filter(|c| !current.iter().any(|k| k.email == c.email.trim().to_lowercase())) {
        match state.store.add_contact(&cbs, &c.email, &c.name, user.email()).await {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Ok((StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": e.to_string() }))).into_response()),
        }
    }
    if let Err(errors) = save_webhook(&state, &cbs, url, user.email(), ui).await {
        return Ok(unprocessable(errors));
    }
    Ok(Json(contacts_doc(&state, &user, &cbs).await).into_response())
}

fn unprocessable(errors: Vec<FieldError>) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({ "errors": errors }))).into_response()
}

// ---------------------------------------------------------------- synthetic test calls

const INTERVALS: [u32; 6] = [5, 15, 30, 60, 240, 1440];

async fn tests_response(state: &AppState, ui: Ui, user: &CurrentUser, cbs: &str, name: &str, error: Option<String>, status: StatusCode) -> Response {
    let results = state.store.synthetic_results(cbs, 200).await.unwrap_or_default();
    let schedule = state.store.synthetic_schedules().await.unwrap_or_default().into_iter().find(|s| s.cbs == cbs);
    let can_write = user.user.can_write(cbs);
    let destination = state.routing.snapshot().plan.by_cbs(cbs).map(|id| state.routing.snapshot().settings.destination_uri(id)).unwrap_or_default();
    let current = schedule.as_ref().map(|s| s.every_minutes).unwrap_or(0);
    let body = html! {
        p { (name) " · " (cbs) " · " a href={"/m/" (cbs)} { (ui.t("Instellingen", "Settings")) } " · " a href={"/m/" (cbs) "/contacts"} { (ui.t("Contactpersonen", "Contacts")) } }
        p { (ui.t("Een testoproep stuurt een SIP OPTIONS vanaf het platform naar de bestemming ", "A test call sends a SIP OPTIONS from the platform to the destination ")) code { (destination) } "." }
        @if let Some(e) = &error { p.error role="alert" { (e) } }
        @if can_write {
            div.card {
                form.inline method="post" action={"/m/" (cbs) "/tests/run"} {
                    input type="hidden" name="csrf" value=(user.csrf);
                    button type="submit" { (ui.t("Nu testen", "Test now")) }
                }
                form method="post" action={"/m/" (cbs) "/tests"} {
                    input type="hidden" name="csrf" value=(user.csrf);
                    label for="every_minutes" { (ui.t("Automatisch testen", "Test automatically")) }
                    select #every_minutes name="every_minutes" {
                        option value="0" selected[current == 0] { (ui.t("uit", "off")) }
                        @for m in INTERVALS { option value=(m) selected[current == m] { (ui.t("elke ", "every ")) (m) (ui.t(" minuten", " minutes")) } }
                    }
                    button type="submit" { (ui.t("Opslaan", "Save")) }
                }
            }
        } @else if let Some(s) = &schedule {
            p { (ui.t("Automatisch getest elke ", "Tested automatically every ")) (s.every_minutes) (ui.t(" minuten.", " minutes.")) }
        }
        div.scroll { table.tests {
            thead { tr { th { (ui.t("Wanneer", "When")) } th { (ui.t("Bereikbaar", "Reachable")) } th { (ui.t("Antwoord", "Response")) } th { "RTT" } th { (ui.t("Doel", "Target")) } th { (ui.t("Door", "By")) } } }
            tbody { @for r in &results {
                tr {
                    td { (local_time(r.result.at_ms)) }
                    td { @if r.result.reachable { span.ok { (ui.t("ja", "yes")) } } @else { span.overdue { (ui.t("nee", "no")) } } }
                    td { (r.result.detail) }
                    td { @if let Some(ms) = r.result.rtt_ms { (ms) " ms" } }
                    td { small { (r.result.target) } }
                    td { small { (r.result.requested_by) } }
                }
            } }
        } }
    };
    (status, page(ui, &ui.t("Testoproepen", "Test calls"), user, body)).into_response()
}

pub async fn tests_page(State(state): State<AppState>, ui: Ui, user: CurrentUser, Path(cbs): Path<String>) -> Result<Response, AuthError> {
    let (cbs, name) = resolve(&state, &user, &cbs)?;
    Ok(tests_response(&state, ui, &user, &cbs, &name, None, StatusCode::OK).await)
}

pub async fn schedule_tests(State(state): State<AppState>, ui: Ui, user: CurrentUser, Path(cbs): Path<String>, body: Bytes) -> Result<Response, AuthError> {
    let (cbs, name) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    let pairs = form_pairs(&body);
    user.check_csrf(Some(field(&pairs, "csrf")))?;
    let every = match field(&pairs, "every_minutes").trim().parse::<u32>() {
        Ok(0) => None,
        Ok(m) if (1..=1440).contains(&m) => Some(m),
        _ => {
            let msg = ui.t("Kies een interval tussen 1 en 1440 minuten, of uit.", "Choose an interval between 1 and 1440 minutes, or off.");
            return Ok(tests_response(&state, ui, &user, &cbs, &name, Some(msg), StatusCode::UNPROCESSABLE_ENTITY).await);
        }
    };
    if let Err(e) = state.store.set_synthetic_schedule(&cbs, every, false, user.email()).await {
        return Ok(tests_response(&state, ui, &user, &cbs, &name, Some(e.to_string()), StatusCode::INTERNAL_SERVER_ERROR).await);
    }
    Ok(Redirect::to(&format!("/m/{cbs}/tests")).into_response())
}

/// Starts a test in the background (a probe can take seconds) and returns to the history.
pub async fn run_test_now(State(state): State<AppState>, user: CurrentUser, Path(cbs): Path<String>, body: Bytes) -> Result<Response, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    user.check_csrf(Some(field(&form_pairs(&body), "csrf")))?;
    let (st, c, who) = (state.clone(), cbs.clone(), user.email().to_string());
    tokio::spawn(async move {
        if let Err(e) = crate::synthetic::run_test(&st, &c, &who).await {
            tracing::error!(municipality = %c, error = %e, "test call not stored");
        }
    });
    Ok(Redirect::to(&format!("/m/{cbs}/tests?started=1")).into_response())
}

#[derive(Serialize)]
pub struct TestsDoc {
    /// Minutes between automatic tests; None = off.
    pub every_minutes: Option<u32>,
    pub results: Vec<veertien_store::SyntheticResult>,
}

pub async fn api_tests(State(state): State<AppState>, user: CurrentUser, Path(cbs): Path<String>) -> Result<Json<TestsDoc>, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    let every_minutes = state.store.synthetic_schedules().await.unwrap_or_default().into_iter().find(|s| s.cbs == cbs).map(|s| s.every_minutes);
    Ok(Json(TestsDoc { every_minutes, results: state.store.synthetic_results(&cbs, 500).await.unwrap_or_default() }))
}

/// Runs a test now and answers with its result (waits for the probe, at most its timeout).
pub async fn api_run_test(State(state): State<AppState>, user: CurrentUser, headers: HeaderMap, Path(cbs): Path<String>) -> Result<Response, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    user.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    match crate::synthetic::run_test(&state, &cbs, user.email()).await {
        Ok(r) => Ok(Json(r).into_response()),
        Err(e) => Ok((StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": e.to_string() }))).into_response()),
    }
}
