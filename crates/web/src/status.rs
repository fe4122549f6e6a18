//! The public status page (no login): `/status` (HTML, Dutch first, `?lang=en`), `/status.json`
//! and `/status.atom`. Current incidents with their latest update and the promised time of the
//! next one; incidents resolved in the past 90 days.
//!
//! Only public fields leave this module: no operator e-mail addresses, no delivery details.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};
use veertien_core::Plan;
use veertien_store::{Incident, IncidentFilter, UpdateKind};

use crate::AppState;
use crate::i18n::Ui;
use crate::incidents::{HISTORY_MS, severity_label};
use crate::notify::local_time;

const CSS: &str = include_str!("status.css");

pub async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], CSS)
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    pub lang: Option<String>,
}

/// `?lang=` wins (so a link can be shared in either language), then the portal's cookie and
/// the browser's preference.
fn ui_of(q: &LangQuery, headers: &HeaderMap) -> Ui {
    match q.lang.as_deref() {
        Some("en") => Ui::En,
        Some("nl") => Ui::Nl,
        _ => Ui::from_headers(headers),
    }
}

async fn load(state: &AppState) -> (Vec<Incident>, Vec<Incident>) {
    let now = jiff::Timestamp::now().as_millisecond();
    let all = state
        .store
        .incidents(&IncidentFilter { resolved_since_ms: Some(now - HISTORY_MS), limit: 1000, ..Default::default() })
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "status page: cannot read incidents");
            Vec::new()
        });
    all.into_iter().partition(Incident::is_open)
}

fn scope(plan: &Plan, inc: &Incident, ui: Ui) -> String {
    if inc.all_municipalities {
        return ui.t("Alle gemeenten", "All municipalities");
    }
    inc.municipalities.iter().map(|c| plan.by_cbs(c).map(|id| plan.municipality(id).name.clone()).unwrap_or_else(|| c.clone())).collect::<Vec<_>>().join(", ")
}

fn title(inc: &Incident, ui: Ui) -> &str {
    match ui {
        Ui::En => inc.title_en.as_deref().unwrap_or(&inc.title_nl),
        Ui::Nl => &inc.title_nl,
    }
}

fn text(u: &veertien_store::IncidentUpdate, ui: Ui) -> &str {
    match ui {
        Ui::En => u.text_en.as_deref().unwrap_or(&u.text_nl),
        Ui::Nl => &u.text_nl,
    }
}

fn kind(ui: Ui, k: UpdateKind) -> String {
    match k {
        UpdateKind::Declared => ui.t("Gemeld", "Declared"),
        UpdateKind::Update => ui.t("Update", "Update"),
        UpdateKind::Resolved => ui.t("Opgelost", "Resolved"),
    }
}

fn incident_card(plan: &Plan, inc: &Incident, ui: Ui, now: i64) -> Markup {
    let latest = inc.latest();
    html! {
        article.card.incident id={"incident-" (inc.id)} {
            h3 { span class={"sev sev-" (inc.severity.as_str())} { (severity_label(ui, inc.severity)) } " " (title(inc, ui)) }
            p.small { (scope(plan, inc, ui)) " · " (ui.t("sinds ", "since ")) (local_time(inc.declared_ms)) }
            p { strong { (local_time(latest.at_ms)) " " (kind(ui, latest.kind)) ": " } (text(latest, ui)) }
            @match (inc.resolved_ms(), inc.next_update_ms()) {
                (Some(t), _) => p.notice { (ui.t("Opgelost op ", "Resolved at ")) (local_time(t)) }
                (None, Some(t)) if t <= now => p.next.overdue { (ui.t("Volgende update werd verwacht om ", "Next update was expected at ")) (local_time(t)) (ui.t(" en volgt zo snel mogelijk.", " and will follow as soon as possible.")) }
                (None, Some(t)) => p.next { (ui.t("Volgende update uiterlijk ", "Next update by ")) strong { (local_time(t)) } }
                (None, None) => {}
            }
            @if inc.updates.len() > 1 {
                details {
                    summary { (ui.t("Eerdere berichten", "Earlier messages")) " (" (inc.updates.len() - 1) ")" }
                    ol.timeline { @for u in inc.updates.iter().rev().skip(1) {
                        li { strong { (local_time(u.at_ms)) " " (kind(ui, u.kind)) ": " } (text(u, ui)) }
                    } }
                }
            }
        }
    }
}

pub async fn page(State(state): State<AppState>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let ui = ui_of(&q, &headers);
    let (current, past) = load(&state).await;
    let plan = state.routing.snapshot().plan.clone();
    let now = jiff::Timestamp::now().as_millisecond();
    let page = html! {
        (DOCTYPE)
        html lang=(ui.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (ui.t("Status 14+ netnummer", "14+ number status")) }
                link rel="stylesheet" href="/static/status.css";
                link rel="alternate" type="application/atom+xml" href="/status.atom" title=(ui.t("Storingen 14+ (Atom)", "14+ incidents (Atom)"));
            }
            body.status {
                header.status-head {
                    span.brand { "14+ " (ui.t("status", "status")) }
                    nav { a href="/status?lang=nl" lang="nl" { "Nederlands" } " · " a href="/status?lang=en" lang="en" { "English" } }
                }
                main {
                    h1 { (ui.t("Status van het 14+ netnummer", "Status of the 14+ number")) }
                    p.small { (ui.t("Bijgewerkt ", "Updated ")) (local_time(now)) " · " a href="/status.atom" { "Atom" } " · " a href="/status.json" { "JSON" } }
                    h2 { (ui.t("Huidige storingen", "Current incidents")) }
                    @if current.is_empty() {
                        p.card.allgood { (ui.t("Geen storingen bekend: 14+ werkt normaal.", "No known incidents: 14+ is working normally.")) }
                    }
                    @for inc in &current { (incident_card(&plan, inc, ui, now)) }
                    h2 { (ui.t("Afgelopen 90 dagen", "Past 90 days")) }
                    @if past.is_empty() { p { (ui.t("Geen opgeloste storingen in de afgelopen 90 dagen.", "No resolved incidents in the past 90 days.")) } }
                    @for inc in &past { (incident_card(&plan, inc, ui, now)) }
                }
            }
        }
    };
    // Short caching: a status page is hit hardest during an outage.
    ([(header::CACHE_CONTROL, "public, max-age=15")], Html(page.into_string())).into_response()
}

#[derive(Serialize)]
struct PublicText<'a> {
    nl: &'a str,
    en: Option<&'a str>,
}

#[derive(Serialize)]
struct PublicUpdate<'a> {
    at: String,
    kind: &'static str,
    text: PublicText<'a>,
    next_update_at: Option<String>,
}

#[derive(Serialize)]
struct PublicIncident<'a> {
    id: i64,
    title: PublicText<'a>,
    severity: &'static str,
    /// "all" or a list of {cbs, name}.
    municipalities: serde_json::Value,
    declared_at: String,
    resolved_at: Option<String>,
    next_update_at: Option<String>,
    next_update_overdue: bool,
    updates: Vec<PublicUpdate<'a>>,
}

fn ts(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default()
}

fn public<'a>(plan: &Plan, inc: &'a Incident, now: i64) -> PublicIncident<'a> {
    let municipalities = if inc.all_municipalities {
        serde_json::json!("all")
    } else {
        serde_json::Value::Array(
            inc.municipalities
                .iter()
                .map(|c| serde_json::json!({ "cbs": c, "name": plan.by_cbs(c).map(|id| plan.municipality(id).name.clone()) }))
                .collect(),
        )
    };
    PublicIncident {
        id: inc.id,
        title: PublicText { nl: &inc.title_nl, en: inc.title_en.as_deref() },
        severity: inc.severity.as_str(),
        municipalities,
        declared_at: ts(inc.declared_ms),
        resolved_at: inc.resolved_ms().map(ts),
        next_update_at: inc.next_update_ms().map(ts),
        next_update_overdue: inc.overdue(now),
        updates: inc
            .updates
            .iter()
            .map(|u| PublicUpdate { at: ts(u.at_ms), kind: u.kind.as_str(), text: PublicText { nl: &u.text_nl, en: u.text_en.as_deref() }, next_update_at: u.next_update_ms.map(ts) })
            .collect(),
    }
}

pub async fn json(State(state): State<AppState>) -> Response {
    let (current, past) = load(&state).await;
    let plan = state.routing.snapshot().plan.clone();
    let now = jiff::Timestamp::now().as_millisecond();
    let body = serde_json::json!({
        "generated_at": ts(now),
        "current": current.iter().map(|i| public(&plan, i, now)).collect::<Vec<_>>(),
        "past_90_days": past.iter().map(|i| public(&plan, i, now)).collect::<Vec<_>>(),
    });
    ([(header::CACHE_CONTROL, "public, max-age=15"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], Json(body)).into_response()
}

/// Atom 1.0 (RFC 4287): one entry per incident message, newest first. maud escapes text and
/// attributes; elements that must be empty are written with an explicit end tag, which is valid
/// XML (maud's `tag;` form would be an unclosed HTML void element).
pub async fn atom(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (current, past) = load(&state).await;
    let plan = state.routing.snapshot().plan.clone();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let base = format!("http://{host}");
    let mut entries: Vec<(&Incident, &veertien_store::IncidentUpdate)> = current.iter().chain(past.iter()).flat_map(|i| i.updates.iter().map(move |u| (i, u))).collect();
    entries.sort_by_key(|(_, u)| std::cmp::Reverse(u.at_ms));
    entries.truncate(100);
    let updated = entries.first().map(|(_, u)| ts(u.at_ms)).unwrap_or_else(|| ts(0));
    let feed = html! {
        (PreEscaped("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"))
        feed xmlns="http://www.w3.org/2005/Atom" {
            title { "Storingen 14+ netnummer" }
            id { (base) "/status" }
            updated { (updated) }
            link rel="self" href={(base) "/status.atom"} {}
            link rel="alternate" type="text/html" href={(base) "/status"} {}
            author { name { "veertien 14+" } }
            @for (inc, u) in &entries {
                entry {
                    title { "#" (inc.id) " " (inc.title_nl) " — " (kind(Ui::Nl, u.kind)) }
                    id { (base) "/status#update-" (u.id) }
                    updated { (ts(u.at_ms)) }
                    link rel="alternate" type="text/html" href={(base) "/status#incident-" (inc.id)} {}
                    summary {
                        (u.text_nl)
                        " [" (scope(&plan, inc, Ui::Nl)) "]"
                        @if let Some(t) = u.next_update_ms { " Volgende update uiterlijk " (local_time(t)) "." }
                        @if let Some(en) = &u.text_en { " — EN: " (en) }
                    }
                }
            }
        }
    };
    ([(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=60")], feed.into_string()).into_response()
}

/// The reminder and test-call scheduler: every `interval`, remind the operator of missed
/// promises and start due test calls. Ends with `shutdown`.
pub fn spawn_background(state: AppState, interval: std::time::Duration, shutdown: tokio_util::sync::CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    let now = jiff::Timestamp::now().as_millisecond();
                    state.notify.check_reminders(now).await;
                    crate::synthetic::run_due(&state, now).await;
                }
            }
        }
    })
}
