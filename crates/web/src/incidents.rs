//! Outages in the portal: the operator declares, updates and resolves incidents; municipality
//! users read the incidents that affect them; contacts/webhooks per municipality; synthetic test
//! calls. Pages (forms with CSRF, errors next to the field) and the JSON API share the
//! validation in [`IncidentForm`] / [`UpdateForm`].
//!
//! Every change goes to the store first (append-only, audited), then the notifications are
//! queued ([`crate::notify::Notifier::incident_changed`]) — queuing never waits, so a slow SMTP
//! relay or webhook never slows the operator's form.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use veertien_core::Plan;
use veertien_store::{Incident, IncidentFilter, NewIncident, NewIncidentUpdate, Severity, StoreError, UpdateKind};

use crate::auth::{CSRF_HEADER, CurrentUser};
use crate::doc::FieldError;
use crate::i18n::Ui;
use crate::notify::local_time;
use crate::users::Role;
use crate::{AppState, AuthError};

/// How far back the lists and the public status page look.
pub const HISTORY_MS: i64 = 90 * 86_400_000;

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

fn fe(field: &str, ui: Ui, nl: &str, en: &str) -> FieldError {
    FieldError { field: field.into(), message: ui.t(nl, en) }
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

pub fn severity_label(ui: Ui, s: Severity) -> String {
    match s {
        Severity::Minor => ui.t("Beperkt", "Minor"),
        Severity::Major => ui.t("Ernstig", "Major"),
        Severity::Critical => ui.t("Kritiek", "Critical"),
    }
}

/// Resolves "GM0664, Kapelle, 0113" to sorted CBS codes: CBS codes, municipality names (CBS or
/// everyday name) and area codes (every municipality sharing it). Unknown entries are returned
/// as the error.
pub fn resolve_municipalities(plan: &Plan, text: &str) -> Result<Vec<String>, Vec<String>> {
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for part in text.split([',', ';', '\n']).map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(id) = plan.by_cbs(&part.to_uppercase()) {
            out.push(plan.municipality(id).cbs.clone());
        } else if part.bytes().all(|b| b.is_ascii_digit()) && plan.area_code(part).is_some() {
            let ac = plan.area_code(part).expect("checked");
            out.extend(ac.municipalities.iter().map(|id| plan.municipality(*id).cbs.clone()));
        } else if let Some(m) = plan
            .municipalities()
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(part) || m.everyday_name.eq_ignore_ascii_case(part))
        {
            out.push(m.cbs.clone());
        } else {
            unknown.push(part.to_string());
        }
    }
    if !unknown.is_empty() {
        return Err(unknown);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A promised next-update time from a form (`datetime-local`, Europe/Amsterdam) or the API
/// (RFC 3339). Must be in the future and at most 24 h ahead.
fn parse_promise(raw: &str, api: bool, now: i64, ui: Ui) -> Result<i64, FieldError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(fe("next_update", ui, "Geef aan wanneer de volgende update komt.", "State when the next update will come."));
    }
    let ms = if api {
        raw.parse::<jiff::Timestamp>().map(|t| t.as_millisecond()).map_err(|_| {
            fe("next_update", ui, "Geen geldige tijd (RFC 3339, bijv. 2026-11-23T14:30:00+01:00).", "Not a valid time (RFC 3339, e.g. 2026-11-23T14:30:00+01:00).")
        })?
    } else {
        raw.parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|dt| dt.to_zoned(veertien_core::hours::amsterdam().clone()).ok())
            .map(|z| z.timestamp().as_millisecond())
            .ok_or_else(|| fe("next_update", ui, "Geen geldige datum en tijd.", "Not a valid date and time."))?
    };
    if ms <= now {
        return Err(fe("next_update", ui, "Het tijdstip van de volgende update moet in de toekomst liggen.", "The next update time must be in the future."));
    }
    if ms - now > veertien_store::MAX_PROMISE_MS {
        return Err(fe("next_update", ui, "De volgende update moet binnen 24 uur komen.", "The next update must come within 24 hours."));
    }
    Ok(ms)
}

/// A declaration as typed (kept whole so a refused form loses nothing).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentForm {
    pub title_nl: String,
    #[serde(default)]
    pub title_en: Option<String>,
    /// minor | major | critical
    pub severity: String,
    /// Form: "all" or "some". API: omitted; an empty `municipalities` list means all.
    #[serde(default, skip_serializing)]
    pub scope: String,
    /// Form: comma-separated CBS codes, names or area codes. API: a list of the same.
    #[serde(default)]
    pub municipalities: Vec<String>,
    pub text_nl: String,
    #[serde(default)]
    pub text_en: Option<String>,
    /// Form: local time (`YYYY-MM-DDTHH:MM`, Europe/Amsterdam). API: RFC 3339.
    pub next_update: String,
}

impl IncidentForm {
    fn from_pairs(p: &[(String, String)]) -> IncidentForm {
        IncidentForm {
            title_nl: field(p, "title_nl").to_string(),
            title_en: opt(field(p, "title_en")),
            severity: field(p, "severity").to_string(),
            scope: field(p, "scope").to_string(),
            municipalities: vec![field(p, "municipalities").to_string()],
            text_nl: field(p, "text_nl").to_string(),
            text_en: opt(field(p, "text_en")),
            next_update: field(p, "next_update").to_string(),
        }
    }

    pub fn validate(&self, plan: &Plan, actor: &str, api: bool, ui: Ui) -> Result<NewIncident, Vec<FieldError>> {
        let now = now_ms();
        let mut errors = Vec::new();
        if self.title_nl.trim().is_empty() {
            errors.push(fe("title_nl", ui, "Geef een titel.", "Give a title."));
        } else if self.title_nl.chars().count() > 200 {
            errors.push(fe("title_nl", ui, "De titel is langer dan 200 tekens.", "The title is longer than 200 characters."));
        }
        let severity = Severity::parse(self.severity.trim()).unwrap_or_else(|| {
            errors.push(fe("severity", ui, "Kies een ernst.", "Choose a severity."));
            Severity::Minor
        });
        let joined = self.municipalities.join(",");
        let municipalities = if (!api && self.scope == "all") || (api && joined.trim().is_empty()) {
            Vec::new()
        } else {
            match resolve_municipalities(plan, &joined) {
                Ok(m) if m.is_empty() => {
                    errors.push(fe("municipalities", ui, "Noem de getroffen gemeenten, of kies 'alle gemeenten'.", "Name the affected municipalities, or choose 'all municipalities'."));
                    Vec::new()
                }
                Ok(m) => m,
                Err(unknown) => {
                    errors.push(FieldError {
                        field: "municipalities".into(),
                        message: format!("{}: {}", ui.t("Onbekend (gebruik CBS-code, naam of netnummer)", "Unknown (use a CBS code, name or area code)"), unknown.join(", ")),
                    });
                    Vec::new()
                }
            }
        };
        if self.text_nl.trim().is_empty() {
            errors.push(fe("text_nl", ui, "Beschrijf wat bellers merken.", "Describe what callers notice."));
        } else if self.text_nl.chars().count() > 5000 {
            errors.push(fe("text_nl", ui, "De tekst is langer dan 5000 tekens.", "The text is longer than 5000 characters."));
        }
        let next = parse_promise(&self.next_update, api, now, ui).map_err(|e| errors.push(e)).ok();
        match next {
            Some(next_update_ms) if errors.is_empty() => Ok(NewIncident {
                title_nl: self.title_nl.trim().into(),
                title_en: self.title_en.as_deref().and_then(opt),
                severity,
                municipalities,
                text_nl: self.text_nl.trim().into(),
                text_en: self.text_en.as_deref().and_then(opt),
                next_update_ms,
                actor: actor.into(),
            }),
            _ => Err(errors),
        }
    }
}

/// An update (with its promise) or, for resolving, just the texts.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateForm {
    pub text_nl: String,
    #[serde(default)]
    pub text_en: Option<String>,
    /// Required for an update, ignored when resolving. Form: local time; API: RFC 3339.
    #[serde(default)]
    pub next_update: String,
}

impl UpdateForm {
    fn from_pairs(p: &[(String, String)]) -> UpdateForm {
        UpdateForm { text_nl: field(p, "text_nl").into(), text_en: opt(field(p, "text_en")), next_update: field(p, "next_update").into() }
    }

    pub fn validate(&self, resolve: bool, actor: &str, api: bool, ui: Ui) -> Result<NewIncidentUpdate, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.text_nl.trim().is_empty() {
            errors.push(fe("text_nl", ui, "Schrijf wat er veranderd is.", "Write what has changed."));
        } else if self.text_nl.chars().count() > 5000 {
            errors.push(fe("text_nl", ui, "De tekst is langer dan 5000 tekens.", "The text is longer than 5000 characters."));
        }
        let next = if resolve { None } else { parse_promise(&self.next_update, api, now_ms(), ui).map_err(|e| errors.push(e)).ok() };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(NewIncidentUpdate {
            text_nl: self.text_nl.trim().into(),
            text_en: self.text_en.as_deref().and_then(opt),
            next_update_ms: next,
            actor: actor.into(),
        })
    }
}

/// The incident when `user` may see it (operators and national viewers: all; others: those
/// affecting their municipality or all) — otherwise 404, so ids of other municipalities'
/// incidents are not confirmed.
async fn visible(state: &AppState, user: &CurrentUser, id: i64) -> Result<Incident, AuthError> {
    let inc = state.store.incident(id).await.ok().flatten().ok_or(AuthError::NotFound)?;
    if can_see(user, &inc) { Ok(inc) } else { Err(AuthError::NotFound) }
}

fn can_see(user: &CurrentUser, inc: &Incident) -> bool {
    match (user.role(), &user.user.municipality) {
        (Role::Operator, _) | (Role::Viewer, None) => true,
        (_, Some(m)) => inc.affects(m),
        (Role::Admin, None) => false,
    }
}

fn filter_for(user: &CurrentUser) -> IncidentFilter {
    let municipality = match (user.role(), &user.user.municipality) {
        (Role::Operator, _) | (Role::Viewer, None) => None,
        (_, m) => Some(m.clone().unwrap_or_else(|| "-".into())),
    };
    IncidentFilter { municipality, resolved_since_ms: Some(now_ms() - HISTORY_MS), limit: 500 }
}

fn names(plan: &Plan, inc: &Incident, ui: Ui) -> String {
    if inc.all_municipalities {
        return ui.t("alle gemeenten", "all municipalities");
    }
    inc.municipalities.iter().map(|c| plan.by_cbs(c).map(|id| plan.municipality(id).name.clone()).unwrap_or_else(|| c.clone())).collect::<Vec<_>>().join(", ")
}

/// After a change: notifications queued (never awaited beyond reading the contact list).
async fn notify(state: &AppState, inc: &Incident) {
    let plan = state.routing.snapshot().plan.clone();
    let n = state.notify.incident_changed(inc, &plan).await;
    tracing::info!(incident = inc.id, kind = inc.latest().kind.as_str(), deliveries = n, "incident notifications queued");
}

fn store_error(ui: Ui, e: StoreError) -> Response {
    let (status, msg) = match &e {
        StoreError::NotFound(_) => (StatusCode::NOT_FOUND, ui.t("niet gevonden", "not found")),
        StoreError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
        StoreError::InvalidInput(m) => (StatusCode::UNPROCESSABLE_ENTITY, m.clone()),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, ui.t("opslaan mislukt", "saving failed")),
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "incident store error");
    }
    (status, Json(serde_json::json!({ "error": msg }))).into_response()
}

// ---------------------------------------------------------------- pages

fn page(ui: Ui, title: &str, user: &CurrentUser, body: Markup) -> axum::response::Html<String> {
    crate::pages::layout(
        ui,
        title,
        Some(user),
        html! {
            link rel="stylesheet" href="/static/status.css";
            nav.sub {
                a href="/incidents" { (ui.t("Storingen", "Incidents")) }
                @if let Some(m) = &user.user.municipality {
                    a href={"/m/" (m) "/contacts"} { (ui.t("Contactpersonen", "Contacts")) }
                    a href={"/m/" (m) "/tests"} { (ui.t("Testoproepen", "Test calls")) }
                }
                a href="/status" { (ui.t("Publieke statuspagina", "Public status page")) }
            }
            (body)
        },
    )
}

fn err_of<'a>(errors: &'a [FieldError], f: &str) -> Option<&'a str> {
    errors.iter().find(|e| e.field == f).map(|e| e.message.as_str())
}

fn row(errors: &[FieldError], name: &str, label: String, input: Markup) -> Markup {
    let e = err_of(errors, name);
    html! {
        div.field.invalid[e.is_some()] {
            label for=(name) { (label) }
            (input)
            @if let Some(e) = e { p.error id={(name) "-error"} role="alert" { (e) } }
        }
    }
}

fn default_promise() -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(60);
    t.to_zoned(veertien_core::hours::amsterdam().clone()).strftime("%Y-%m-%dT%H:%M").to_string()
}

fn declare_form(ui: Ui, user: &CurrentUser, f: &IncidentForm, errors: &[FieldError]) -> Markup {
    let sev = if f.severity.is_empty() { "major" } else { f.severity.as_str() };
    let next = if f.next_update.is_empty() { default_promise() } else { f.next_update.clone() };
    html! {
        form.card #declare method="post" action="/incidents" {
            h2 { (ui.t("Storing melden", "Declare an incident")) }
            @if !errors.is_empty() { p.error role="alert" { (ui.t("Niet gemeld: controleer de gemarkeerde velden.", "Not declared: check the marked fields.")) } }
            input type="hidden" name="csrf" value=(user.csrf);
            (row(errors, "title_nl", ui.t("Titel (Nederlands)", "Title (Dutch)"), html! { input #title_nl type="text" name="title_nl" value=(f.title_nl) required; }))
            (row(errors, "title_en", ui.t("Titel (Engels, optioneel)", "Title (English, optional)"), html! { input #title_en type="text" name="title_en" value=[f.title_en.as_deref()]; }))
            (row(errors, "severity", ui.t("Ernst", "Severity"), html! {
                select #severity name="severity" { @for s in Severity::ALL { option value=(s.as_str()) selected[s.as_str() == sev] { (severity_label(ui, s)) } } }
            }))
            (row(errors, "municipalities", ui.t("Getroffen gemeenten", "Affected municipalities"), html! {
                label.check { input type="radio" name="scope" value="all" checked[f.scope == "all"]; " " (ui.t("alle gemeenten", "all municipalities")) }
                label.check { input type="radio" name="scope" value="some" checked[f.scope != "all"]; " " (ui.t("alleen:", "only:")) }
                input #municipalities type="text" name="municipalities" value=(f.municipalities.join(", ")) placeholder=(ui.t("bijv. Goes, GM0678, 0113", "e.g. Goes, GM0678, 0113"));
            }))
            (row(errors, "text_nl", ui.t("Wat merken bellers? (Nederlands)", "What do callers notice? (Dutch)"), html! { textarea #text_nl name="text_nl" rows="3" required { (f.text_nl) } }))
            (row(errors, "text_en", ui.t("Engelse tekst (optioneel)", "English text (optional)"), html! { textarea #text_en name="text_en" rows="2" { (f.text_en.as_deref().unwrap_or("")) } }))
            (row(errors, "next_update", ui.t("Volgende update uiterlijk (binnen 24 uur)", "Next update by (within 24 hours)"), html! { input #next_update type="datetime-local" name="next_update" value=(next) required; }))
            button.danger type="submit" { (ui.t("Storing melden", "Declare incident")) }
        }
    }
}

fn incident_list(ui: Ui, plan: &Plan, list: &[Incident]) -> Markup {
    let now = now_ms();
    html! {
        @if list.is_empty() { p { (ui.t("Geen storingen in de afgelopen 90 dagen.", "No incidents in the past 90 days.")) } }
        div.scroll { table {
            thead { tr { th { "#" } th { (ui.t("Titel", "Title")) } th { (ui.t("Ernst", "Severity")) } th { (ui.t("Gemeenten", "Municipalities")) } th { (ui.t("Status", "Status")) } } }
            tbody { @for i in list {
                tr {
                    td { (i.id) }
                    td { a href={"/incidents/" (i.id)} { (i.title_nl) } }
                    td { span class={"sev sev-" (i.severity.as_str())} { (severity_label(ui, i.severity)) } }
                    td { (names(plan, i, ui)) }
                    td {
                        @match (i.resolved_ms(), i.next_update_ms()) {
                            (Some(t), _) => { (ui.t("opgelost", "resolved")) " " (local_time(t)) }
                            (None, Some(t)) if t <= now => { strong.overdue { (ui.t("update te laat, beloofd ", "update overdue, promised ")) (local_time(t)) } }
                            (None, Some(t)) => { (ui.t("volgende update ", "next update ")) (local_time(t)) }
                            (None, None) => {}
                        }
                    }
                }
            } }
        } }
    }
}

pub async fn list_page(State(state): State<AppState>, ui: Ui, user: CurrentUser) -> Response {
    list_response(&state, ui, &user, &IncidentForm { scope: "some".into(), ..Default::default() }, &[], StatusCode::OK).await
}

async fn list_response(state: &AppState, ui: Ui, user: &CurrentUser, f: &IncidentForm, errors: &[FieldError], status: StatusCode) -> Response {
    let list = state.store.incidents(&filter_for(user)).await.unwrap_or_default();
    let plan = state.routing.snapshot().plan.clone();
    let body = html! {
        (incident_list(ui, &plan, &list))
        @if user.role() == Role::Operator { (declare_form(ui, user, f, errors)) }
    };
    (status, page(ui, &ui.t("Storingen", "Incidents"), user, body)).into_response()
}

pub async fn declare(State(state): State<AppState>, ui: Ui, user: CurrentUser, body: Bytes) -> Result<Response, AuthError> {
    user.require_operator()?;
    let pairs = form_pairs(&body);
    user.check_csrf(Some(field(&pairs, "csrf")))?;
    let f = IncidentForm::from_pairs(&pairs);
    let plan = state.routing.snapshot().plan.clone();
    let n = match f.validate(&plan, user.email(), false, ui) {
        Ok(n) => n,
        Err(errors) => return Ok(list_response(&state, ui, &user, &f, &errors, StatusCode::UNPROCESSABLE_ENTITY).await),
    };
    match state.store.declare_incident(&n).await {
        Ok(inc) => {
            notify(&state, &inc).await;
            Ok(Redirect::to(&format!("/incidents/{}", inc.id)).into_response())
        }
        Err(e) => Ok(store_error(ui, e)),
    }
}

pub async fn incident_page(State(state): State<AppState>, ui: Ui, user: CurrentUser, Path(id): Path<i64>) -> Result<Response, AuthError> {
    let inc = visible(&state, &user, id).await?;
    Ok(incident_response(&state, ui, &user, &inc, &UpdateForm::default(), &[], None, StatusCode::OK).await)
}

#[allow(clippy::too_many_arguments)]
async fn incident_response(
    state: &AppState,
    ui: Ui,
    user: &CurrentUser,
    inc: &Incident,
    f: &UpdateForm,
    errors: &[FieldError],
    error_form: Option<&str>,
    status: StatusCode,
) -> Response {
    let plan = state.routing.snapshot().plan.clone();
    let operator = user.role() == Role::Operator;
    let reminded = state.store.reminded_updates(inc.id).await.unwrap_or_default();
    let deliveries = if operator { state.store.deliveries(Some(inc.id), 500).await.unwrap_or_default() } else { Vec::new() };
    let now = now_ms();
    let next = if f.next_update.is_empty() { default_promise() } else { f.next_update.clone() };
    let errs_for = |form: &str| if error_form == Some(form) { errors } else { &[][..] };
    let body = html! {
        div.card {
            p { span class={"sev sev-" (inc.severity.as_str())} { (severity_label(ui, inc.severity)) } " · " (names(&plan, inc, ui)) }
            @if let Some(en) = &inc.title_en { p lang="en" { em { (en) } } }
            p { (ui.t("Gemeld", "Declared")) " " (local_time(inc.declared_ms)) " · " (inc.declared_by) }
            @match (inc.resolved_ms(), inc.next_update_ms()) {
                (Some(t), _) => p.notice { (ui.t("Opgelost op ", "Resolved at ")) (local_time(t)) }
                (None, Some(t)) if t <= now => p.error.overdue role="alert" { (ui.t("De beloofde update (uiterlijk ", "The promised update (by ")) (local_time(t)) (ui.t(") is te laat.", ") is overdue.")) }
                (None, Some(t)) => p { (ui.t("Volgende update uiterlijk ", "Next update by ")) strong { (local_time(t)) } }
                (None, None) => {}
            }
        }
        h2 { (ui.t("Verloop", "Timeline")) }
        ol.timeline {
            @for (i, u) in inc.updates.iter().enumerate().rev() {
                li {
                    p { strong { (local_time(u.at_ms)) } " · " (kind_label(ui, u.kind)) " · " (u.author) }
                    p { (u.text_nl) }
                    @if let Some(en) = &u.text_en { p lang="en" { em { (en) } } }
                    @if let Some(t) = u.next_update_ms { p.small { (ui.t("Beloofd: volgende update uiterlijk ", "Promised: next update by ")) (local_time(t)) } }
                    @if let Some(next_u) = inc.updates.get(i + 1) {
                        @if u.next_update_ms.is_some_and(|t| next_u.at_ms > t) { p.small.overdue { (ui.t("Deze belofte is niet gehaald.", "This promise was not kept.")) } }
                    }
                    @if let Some((_, at)) = reminded.iter().find(|(uid, _)| *uid == u.id) {
                        p.small.overdue { (ui.t("Operator herinnerd op ", "Operator reminded at ")) (local_time(*at)) }
                    }
                }
            }
        }
        @if operator && inc.is_open() {
            form.card #update method="post" action={"/incidents/" (inc.id) "/updates"} {
                h2 { (ui.t("Update plaatsen", "Post an update")) }
                input type="hidden" name="csrf" value=(user.csrf);
                (row(errs_for("update"), "text_nl", ui.t("Tekst (Nederlands)", "Text (Dutch)"), html! { textarea #text_nl name="text_nl" rows="3" required { (if error_form == Some("update") { f.text_nl.as_str() } else { "" }) } }))
                (row(errs_for("update"), "text_en", ui.t("Engelse tekst (optioneel)", "English text (optional)"), html! { textarea #text_en name="text_en" rows="2" { (if error_form == Some("update") { f.text_en.as_deref().unwrap_or("") } else { "" }) } }))
                (row(errs_for("update"), "next_update", ui.t("Volgende update uiterlijk (binnen 24 uur)", "Next update by (within 24 hours)"), html! { input #next_update type="datetime-local" name="next_update" value=(next) required; }))
                button type="submit" { (ui.t("Update plaatsen", "Post update")) }
            }
            form.card #resolve method="post" action={"/incidents/" (inc.id) "/resolve"} {
                h2 { (ui.t("Storing oplossen", "Resolve the incident")) }
                input type="hidden" name="csrf" value=(user.csrf);
                (row(errs_for("resolve"), "resolve_text_nl", ui.t("Slotbericht (Nederlands)", "Closing message (Dutch)"), html! { textarea #resolve_text_nl name="text_nl" rows="2" required { (if error_form == Some("resolve") { f.text_nl.as_str() } else { "" }) } }))
                (row(errs_for("resolve"), "resolve_text_en", ui.t("Engels (optioneel)", "English (optional)"), html! { textarea #resolve_text_en name="text_en" rows="2" {} }))
                button type="submit" { (ui.t("Opgelost", "Resolve")) }
            }
        }
        @if operator {
            h2 { (ui.t("Verzonden meldingen", "Notifications sent")) }
            @if deliveries.is_empty() { p { (ui.t("Nog geen bezorgpogingen (geen contactpersonen of webhooks voor deze gemeenten?).", "No delivery attempts yet (no contacts or webhooks for these municipalities?).")) } }
            div.scroll { table.deliveries {
                thead { tr { th { (ui.t("Wanneer", "When")) } th { (ui.t("Kanaal", "Channel")) } th { (ui.t("Aan", "To")) } th { (ui.t("Poging", "Attempt")) } th { (ui.t("Resultaat", "Result")) } } }
                tbody { @for d in &deliveries {
                    tr { td { (local_time(d.at_ms)) } td { (d.channel) } td { (d.target) " " small { (d.cbs.as_deref().unwrap_or("")) } } td { (d.attempt) }
                         td { @if d.ok { "✓ " } @else { "✗ " } (d.detail) } }
                } }
            } }
        }
    };
    (status, page(ui, &format!("#{} {}", inc.id, inc.title_nl), user, body)).into_response()
}

fn kind_label(ui: Ui, k: UpdateKind) -> String {
    match k {
        UpdateKind::Declared => ui.t("Gemeld", "Declared"),
        UpdateKind::Update => ui.t("Update", "Update"),
        UpdateKind::Resolved => ui.t("Opgelost", "Resolved"),
    }
}

async fn page_update(state: AppState, ui: Ui, user: CurrentUser, id: i64, body: Bytes, resolve: bool) -> Result<Response, AuthError> {
    user.require_operator()?;
    let pairs = form_pairs(&body);
    user.check_csrf(Some(field(&pairs, "csrf")))?;
    let inc = visible(&state, &user, id).await?;
    let f = UpdateForm::from_pairs(&pairs);
    let which = if resolve { "resolve" } else { "update" };
    let n = match f.validate(resolve, user.email(), false, ui) {
        Ok(n) => n,
        Err(mut errors) => {
            if resolve {
                for e in &mut errors {
                    e.field = format!("resolve_{}", e.field);
                }
            }
            return Ok(incident_response(&state, ui, &user, &inc, &f, &errors, Some(which), StatusCode::UNPROCESSABLE_ENTITY).await);
        }
    };
    match state.store.post_incident_update(id, &n).await {
        Ok(inc) => {
            notify(&state, &inc).await;
            Ok(Redirect::to(&format!("/incidents/{id}")).into_response())
        }
        // Resolving twice (a double click, two operators): show the incident as it is.
        Err(StoreError::Conflict(_)) => Ok(Redirect::to(&format!("/incidents/{id}")).into_response()),
        Err(e) => Ok(store_error(ui, e)),
    }
}

pub async fn post_update(State(state): State<AppState>, ui: Ui, user: CurrentUser, Path(id): Path<i64>, body: Bytes) -> Result<Response, AuthError> {
    page_update(state, ui, user, id, body, false).await
}

pub async fn resolve(State(state): State<AppState>, ui: Ui, user: CurrentUser, Path(id): Path<i64>, body: Bytes) -> Result<Response, AuthError> {
    page_update(state, ui, user, id, body, true).await
}

// ---------------------------------------------------------------- API

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorsBody {
    pub errors: Vec<FieldError>,
}

fn unprocessable(errors: Vec<FieldError>) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(ErrorsBody { errors })).into_response()
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Vec<FieldError>> {
    serde_json::from_slice(body).map_err(|e| vec![FieldError { field: "body".into(), message: e.to_string() }])
}

fn api_csrf(user: &CurrentUser, headers: &HeaderMap) -> Result<(), AuthError> {
    user.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))
}

pub async fn api_list(State(state): State<AppState>, user: CurrentUser) -> Json<Vec<Incident>> {
    Json(state.store.incidents(&filter_for(&user)).await.unwrap_or_default())
}

pub async fn api_get(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Json<Incident>, AuthError> {
    Ok(Json(visible(&state, &user, id).await?))
}

pub async fn api_declare(State(state): State<AppState>, ui: Ui, user: CurrentUser, headers: HeaderMap, body: Bytes) -> Result<Response, AuthError> {
    user.require_operator()?;
    api_csrf(&user, &headers)?;
    let f: IncidentForm = match parse_json(&body) {
        Ok(f) => f,
        Err(errors) => return Ok(unprocessable(errors)),
    };
    let plan = state.routing.snapshot().plan.clone();
    let n = match f.validate(&plan, user.email(), true, ui) {
        Ok(n) => n,
        Err(errors) => return Ok(unprocessable(errors)),
    };
    match state.store.declare_incident(&n).await {
        Ok(inc) => {
            notify(&state, &inc).await;
            Ok((StatusCode::CREATED, [(header::LOCATION, format!("/api/incidents/{}", inc.id))], Json(inc)).into_response())
        }
        Err(e) => Ok(store_error(ui, e)),
    }
}

async fn api_post(state: AppState, ui: Ui, user: CurrentUser, headers: HeaderMap, id: i64, body: Bytes, resolve: bool) -> Result<Response, AuthError> {
    user.require_operator()?;
    api_csrf(&user, &headers)?;
    visible(&state, &user, id).await?;
    let f: UpdateForm = match parse_json(&body) {
        Ok(f) => f,
        Err(errors) => return Ok(unprocessable(errors)),
    };
    let n = match f.validate(resolve, user.email(), true, ui) {
        Ok(n) => n,
        Err(errors) => return Ok(unprocessable(errors)),
    };
    match state.store.post_incident_update(id, &n).await {
        Ok(inc) => {
            notify(&state, &inc).await;
            Ok(Json(inc).into_response())
        }
        // Resolving a resolved incident is idempotent: the incident as it stands.
        Err(StoreError::Conflict(_)) if resolve => Ok(Json(visible(&state, &user, id).await?).into_response()),
        Err(e) => Ok(store_error(ui, e)),
    }
}

pub async fn api_update(State(state): State<AppState>, ui: Ui, user: CurrentUser, headers: HeaderMap, Path(id): Path<i64>, body: Bytes) -> Result<Response, AuthError> {
    api_post(state, ui, user, headers, id, body, false).await
}

pub async fn api_resolve(State(state): State<AppState>, ui: Ui, user: CurrentUser, headers: HeaderMap, Path(id): Path<i64>, body: Bytes) -> Result<Response, AuthError> {
    api_post(state, ui, user, headers, id, body, true).await
}

pub async fn api_deliveries(State(state): State<AppState>, user: CurrentUser, Path(id): Path<i64>) -> Result<Json<Vec<veertien_store::DeliveryAttempt>>, AuthError> {
    user.require_operator()?;
    visible(&state, &user, id).await?;
    Ok(Json(state.store.deliveries(Some(id), 1000).await.unwrap_or_default()))
}

// ---------------------------------------------------------------- overdue banner

/// Puts a banner at the top of every portal page an operator opens while an incident's
/// promised update is overdue. A layer rather than a call in each page, so no page can forget it.
pub async fn overdue_banner(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let page_request = req.method() == axum::http::Method::GET && !path.starts_with("/api/") && !path.starts_with("/static/") && !path.starts_with("/status") && path != "/login";
    if !page_request {
        return next.run(req).await;
    }
    let ui = Ui::from_headers(req.headers());
    let now = now_ms();
    let overdue: Vec<Incident> = state
        .store
        .incidents(&IncidentFilter { resolved_since_ms: Some(i64::MAX), limit: 1000, ..Default::default() })
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.overdue(now))
        .collect();
    if overdue.is_empty() {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let user = <CurrentUser as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &state).await.ok();
    let res = next.run(Request::from_parts(parts, body)).await;
    if !user.is_some_and(|u| u.role() == Role::Operator) || res.status() != StatusCode::OK {
        return res;
    }
    let is_html = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if !is_html {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4 * 1024 * 1024).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "page too large").into_response();
    };
    let html = String::from_utf8_lossy(&bytes);
    let banner = html! {
        link rel="stylesheet" href="/static/status.css";
        div.banner role="alert" {
            strong { (ui.t("Beloofde update te laat:", "Promised update overdue:")) }
            @for i in &overdue {
                " " a href={"/incidents/" (i.id)} { "#" (i.id) " " (i.title_nl) } " (" (i.next_update_ms().map(local_time).unwrap_or_default()) ")"
            }
        }
    }
    .into_string();
    let out = match html.find("<main>") {
        Some(at) => format!("{}{}{}", &html[..at + 6], banner, &html[at + 6..]),
        None => html.into_owned(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(out))
}
