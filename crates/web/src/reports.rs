//! Management information: the report dashboard (per municipality and national), the call
//! list and a page per call, each table as CSV (`?format=csv`) and every figure as JSON under
//! `/api/`. docs/REPORTS.md defines every figure from the call-record fields.
//!
//! Authorization is the pages' rule: a municipality route calls
//! [`CurrentUser::require_municipality`]; national routes need a user who reads every
//! municipality (operator, or a viewer without a municipality) and answer 404 to others, so a
//! municipality cannot even confirm they exist.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use veertien_store::{CallFilter, CallRecord, Outcome, Percentiles, Report, StatsQuery};

use crate::auth::{AuthError, CurrentUser};
use crate::charts::{self, Series};
use crate::i18n::Ui;
use crate::users::Role;
use crate::AppState;

/// Longest period a report may cover (two years: a year and its previous year side by side
/// is the longest comparison a manager asks for; longer would only slow the page).
pub const MAX_DAYS: i64 = 732;
/// Rows per page of the call list.
pub const PAGE_SIZE: u32 = 50;
/// The sector norm: share of bridged calls answered within 30 s.
pub const NORM_ANSWERED_30S: f64 = 0.80;

#[derive(OpenApi)]
#[openapi(
    paths(api_municipality_report, api_national_report, api_calls, api_municipality_calls, api_municipality_call, api_call),
    components(schemas(ReportResponse, Figure, Unit, CallsResponse))
)]
pub struct ReportsApiDoc;

// ---------------------------------------------------------------------------------------------
// Scope and period

/// Whose figures: one municipality, or every call (national).
#[derive(Debug, Clone)]
pub enum Scope {
    Municipality { cbs: String, name: String },
    National,
}

impl Scope {
    fn cbs(&self) -> Option<&str> {
        match self {
            Scope::Municipality { cbs, .. } => Some(cbs),
            Scope::National => None,
        }
    }
    fn slug(&self) -> String {
        self.cbs().map(str::to_lowercase).unwrap_or_else(|| "nationaal".into())
    }
    fn title(&self, ui: Ui) -> String {
        match self {
            Scope::Municipality { name, cbs } => format!("{name} ({cbs})"),
            Scope::National => ui.t("Landelijk", "National"),
        }
    }
    /// Base path of this scope's pages.
    fn base(&self) -> String {
        match self {
            Scope::Municipality { cbs, .. } => format!("/m/{cbs}"),
            Scope::National => "/national".into(),
        }
    }
}

fn municipality_scope(state: &AppState, user: &CurrentUser, cbs: &str) -> Result<Scope, AuthError> {
    let cbs = cbs.to_uppercase();
    user.require_municipality(&cbs)?;
    let id = state.municipality_id(&cbs).ok_or(AuthError::NotFound)?;
    let name = state.routing.snapshot().plan.municipality(id).name.clone();
    Ok(Scope::Municipality { cbs, name })
}

/// National figures and lists: operators and viewers of every municipality; 404 for others.
pub fn require_national(user: &CurrentUser) -> Result<(), AuthError> {
    match (user.role(), &user.user.municipality) {
        (Role::Operator, _) | (Role::Viewer, None) => Ok(()),
        _ => Err(AuthError::NotFound),
    }
}

/// Query string of the report pages and API.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct ReportParams {
    /// First day, `YYYY-MM-DD` (Europe/Amsterdam). Default: 29 days before `to`.
    pub from: Option<String>,
    /// Last day, inclusive, `YYYY-MM-DD`. Default: today.
    pub to: Option<String>,
    /// `csv` for a table as CSV (pages only).
    pub format: Option<String>,
    /// Which table as CSV: `figures`, `per_day`, `per_hour`, `outcomes`.
    pub table: Option<String>,
}

/// A period of whole local days, `[from, to]` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Date,
    pub to: Date,
}

fn today() -> Date {
    jiff::Timestamp::now().to_zoned(veertien_core::hours::amsterdam().clone()).date()
}

fn day_start_ms(d: Date) -> i64 {
    // Every civil date has a local midnight in Europe/Amsterdam (DST changes at 02:00/03:00).
    d.to_zoned(veertien_core::hours::amsterdam().clone()).map(|z| z.timestamp().as_millisecond()).unwrap_or_default()
}

impl Period {
    pub fn parse(from: Option<&str>, to: Option<&str>, ui: Ui) -> Result<Period, String> {
        let date = |name: &str, v: &str| -> Result<Date, String> {
            v.trim().parse::<Date>().map_err(|_| {
                ui.t(&format!("'{name}' moet een datum zijn als 2025-06-30, niet '{v}'"), &format!("'{name}' must be a date like 2025-06-30, not '{v}'"))
            })
        };
        let empty = |v: Option<&str>| v.map(str::trim).filter(|s| !s.is_empty()).map(String::from);
        let to = match empty(to) {
            Some(v) => date("to", &v)?,
            None => today(),
        };
        let from = match empty(from) {
            Some(v) => date("from", &v)?,
            None => to.checked_sub(jiff::Span::new().days(29)).map_err(|e| e.to_string())?,
        };
        if to < from {
            return Err(ui.t(&format!("de einddatum {to} ligt vóór de begindatum {from}"), &format!("the end date {to} is before the start date {from}")));
        }
        let p = Period { from, to };
        if p.days() > MAX_DAYS {
            return Err(ui.t(&format!("een periode is hoogstens {MAX_DAYS} dagen"), &format!("a period is at most {MAX_DAYS} days")));
        }
        Ok(p)
    }
    pub fn days(&self) -> i64 {
        (self.to - self.from).get_days() as i64 + 1
    }
    pub fn from_ms(&self) -> i64 {
        day_start_ms(self.from)
    }
    /// Start of the day after `to`: the half-open end.
    pub fn to_ms(&self) -> i64 {
        day_start_ms(self.to.tomorrow().unwrap_or(self.to))
    }
    /// The period of equal length just before this one.
    pub fn previous(&self) -> Period {
        let n = self.days();
        let to = self.from.yesterday().unwrap_or(self.from);
        let from = to.checked_sub(jiff::Span::new().days(n - 1)).unwrap_or(to);
        Period { from, to }
    }
    fn query(&self, scope: &Scope) -> StatsQuery {
        StatsQuery { municipality: scope.cbs().map(String::from), from_ms: self.from_ms(), to_ms: self.to_ms() }
    }
}

fn bad_request(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": msg }))).into_response()
}

fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "report query failed");
    (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": "rapport niet beschikbaar / report unavailable" }))).into_response()
}

// ---------------------------------------------------------------------------------------------
// Figures: one list feeds the table, the CSV and the JSON

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Count,
    /// A fraction 0..1 (shown as a percentage).
    Share,
    Milliseconds,
}

/// One management figure for the period, with the previous period for the trend.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Figure {
    pub key: &'static str,
    pub label_nl: &'static str,
    pub label_en: &'static str,
    pub unit: Unit,
    /// None when the figure has no basis in the period (e.g. a share of zero calls).
    pub value: Option<f64>,
    pub previous: Option<f64>,
    /// Relative change in percent for counts and times, percentage points for shares; None
    /// when either period has no value (or the previous is 0 for a relative change).
    pub change: Option<f64>,
    /// Whether a higher value is better (None = neutral, e.g. call volume).
    pub higher_is_better: Option<bool>,
}

fn pct(p: &Option<Percentiles>, f: impl Fn(&Percentiles) -> i64) -> Option<f64> {
    p.as_ref().map(|p| f(p) as f64)
}

pub fn figures(r: &Report) -> Vec<Figure> {
    let (c, p) = (&r.stats.current, &r.stats.previous);
    let (rc, rp) = (&r.routing, &r.previous_routing);
    let row = |key, label_nl, label_en, unit, value: Option<f64>, previous: Option<f64>, higher_is_better| {
        let change = match (unit, value, previous) {
            (Unit::Share, Some(v), Some(p)) => Some((v - p) * 100.0),
            (_, Some(v), Some(p)) if p != 0.0 => Some((v - p) / p * 100.0),
            _ => None,
        };
        Figure { key, label_nl, label_en, unit, value, previous, change, higher_is_better }
    };
    let n = |v: u64| Some(v as f64);
    vec![
        row("calls", "Gesprekken", "Calls", Unit::Count, n(c.calls), n(p.calls), None),
        row("right_first_time", "Direct goed doorgestuurd", "Routed right first time", Unit::Share, rc.share_right_first_time, rp.share_right_first_time, Some(true)),
        row("answered_within_30s", "Binnen 30 s beantwoord (norm 80 %)", "Answered within 30 s (norm 80 %)", Unit::Share, c.share_answered_within_30s, p.share_answered_within_30s, Some(true)),
        row("bridged_offered", "Doorverbonden gesprekken (basis norm)", "Bridged calls (basis of the norm)", Unit::Count, n(c.bridged_offered), n(p.bridged_offered), None),
        row("name_recognised_first_time", "Naam in één keer herkend", "Name recognised first time", Unit::Share, c.share_name_recognised_first_time, p.share_name_recognised_first_time, Some(true)),
        row("name_asked", "Naam gevraagd", "Name asked", Unit::Count, n(c.name_asked), n(p.name_asked), None),
        row("corrections", "Correcties (\"nee\" op de voorgestelde gemeente)", "Corrections (\"no\" to the proposed municipality)", Unit::Count, n(c.corrections), n(p.corrections), Some(false)),
        row("corrected_calls", "Gesprekken met een correctie", "Calls with a correction", Unit::Count, n(rc.corrected_calls), n(rp.corrected_calls), Some(false)),
        row("ivr_calls", "Gesprekken via het keuzemenu", "Calls through the IVR", Unit::Count, n(c.ivr_calls), n(p.ivr_calls), None),
        row("ivr_hangups", "Opgehangen tijdens de keuze", "Hung up during selection", Unit::Count, n(c.ivr_hangups), n(p.ivr_hangups), Some(false)),
        row("time_to_destination_ivr_p50", "Tijd van opnemen tot bestemming, keuzemenu (mediaan)", "Time from answer to destination, IVR (median)", Unit::Milliseconds,
            pct(&rc.time_to_destination_ivr, |x| x.p50), pct(&rp.time_to_destination_ivr, |x| x.p50), Some(false)),
        row("time_to_destination_ivr_p90", "Tijd van opnemen tot bestemming, keuzemenu (90 %)", "Time from answer to destination, IVR (90th percentile)", Unit::Milliseconds,
            pct(&rc.time_to_destination_ivr, |x| x.p90), pct(&rp.time_to_destination_ivr, |x| x.p90), Some(false)),
        row("time_to_destination_direct_p50", "Tijd tot bestemming, zonder keuzemenu (mediaan)", "Time to destination, without IVR (median)", Unit::Milliseconds,
            pct(&rc.time_to_destination_direct, |x| x.p50), pct(&rp.time_to_destination_direct, |x| x.p50), Some(false)),
        row("post_dial_delay_p95", "Kiesvertraging (95 %)", "Post-dial delay (95th percentile)", Unit::Milliseconds,
            pct(&c.post_dial_delay, |x| x.p95), pct(&p.post_dial_delay, |x| x.p95), Some(false)),
        row("in_progress", "Nog bezig", "In progress", Unit::Count, n(c.in_progress), n(p.in_progress), None),
    ]
}

/// Dutch number text: decimal comma, thousands dot.
pub fn nl_number(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(ch);
    }
    if !frac.is_empty() {
        out.push(',');
        out.push_str(frac);
    }
    if v < 0.0 && out.chars().any(|c| c.is_ascii_digit() && c != '0') { format!("-{out}") } else { out }
}

fn show_value(ui: Ui, unit: Unit, v: Option<f64>) -> String {
    let num = |v: f64, d: usize| if ui == Ui::Nl { nl_number(v, d) } else { format!("{v:.d$}") };
    match (unit, v) {
        (_, None) => "—".into(),
        (Unit::Count, Some(v)) => num(v, 0),
        (Unit::Share, Some(v)) => format!("{} %", num(v * 100.0, 1)),
        (Unit::Milliseconds, Some(v)) if v < 1000.0 => format!("{} ms", num(v, 0)),
        (Unit::Milliseconds, Some(v)) => format!("{} s", num(v / 1000.0, 1)),
    }
}

/// Arrow and change text; `class` says whether the change is good, bad or neutral.
fn trend(ui: Ui, f: &Figure) -> (String, &'static str) {
    let Some(ch) = f.change else { return ("—".into(), "flat") };
    let num = |v: f64| if ui == Ui::Nl { nl_number(v, 1) } else { format!("{v:.1}") };
    let arrow = if ch > 0.05 { "▲" } else if ch < -0.05 { "▼" } else { "▶" };
    let unit = if f.unit == Unit::Share { " pp" } else { " %" };
    let class = match f.higher_is_better {
        _ if arrow == "▶" => "flat",
        None => "flat",
        Some(up_good) => if (ch > 0.0) == up_good { "good" } else { "bad" },
    };
    (format!("{arrow} {}{}{unit}", if ch > 0.0 { "+" } else { "" }, num(ch)), class)
}

// ---------------------------------------------------------------------------------------------
// CSV

/// CSV as Dutch spreadsheets open it by double-click: `;`-separated, decimal comma, UTF-8 with
/// a byte-order mark, CRLF line ends; fields quoted per RFC 4180 when they hold `;`, `"` or a
/// line break (the csv crate does the quoting).
pub fn csv_response(filename: &str, header_row: &[&str], rows: Vec<Vec<String>>) -> Response {
    let mut w = csv::WriterBuilder::new().delimiter(b';').terminator(csv::Terminator::CRLF).from_writer(vec![0xEF, 0xBB, 0xBF]);
    let written = w.write_record(header_row).and_then(|_| rows.iter().try_for_each(|r| w.write_record(r)));
    match written.map_err(|e| e.to_string()).and_then(|_| w.into_inner().map_err(|e| e.to_string())) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => server_error(e),
    }
}

fn csv_share(v: Option<f64>) -> String {
    v.map(|v| nl_number(v * 100.0, 1)).unwrap_or_default()
}

fn csv_num(unit: Unit, v: Option<f64>) -> String {
    match unit {
        Unit::Share => csv_share(v),
        _ => v.map(|v| format!("{}", v.round() as i64)).unwrap_or_default(),
    }
}

fn report_csv(ui: Ui, scope: &Scope, period: Period, r: &Report, table: &str) -> Response {
    let file = |t: &str| format!("veertien-{}-{t}-{}-{}.csv", scope.slug(), period.from, period.to);
    match table {
        "figures" => {
            let rows = figures(r)
                .into_iter()
                .map(|f| {
                    let unit = match f.unit {
                        Unit::Count => "aantal",
                        Unit::Share => "%",
                        Unit::Milliseconds => "ms",
                    };
                    vec![
                        f.key.to_string(),
                        if ui == Ui::Nl { f.label_nl } else { f.label_en }.to_string(),
                        unit.to_string(),
                        csv_num(f.unit, f.value),
                        csv_num(f.unit, f.previous),
                        f.change.map(|c| nl_number(c, 1)).unwrap_or_default(),
                    ]
                })
                .collect();
            let h = if ui == Ui::Nl {
                ["kengetal", "omschrijving", "eenheid", "periode", "vorige periode", "verschil (% of pp)"]
            } else {
                ["figure", "description", "unit", "period", "previous period", "change (% or pp)"]
            };
            csv_response(&file("kengetallen"), &h, rows)
        }
        "per_day" => {
            let rows = r.stats.current.calls_per_day.iter().map(|(d, n)| vec![d.clone(), n.to_string()]).collect();
            csv_response(&file("per-dag"), &[&ui.t("datum", "date"), &ui.t("gesprekken", "calls")], rows)
        }
        "per_hour" => {
            let days = day_names(ui);
            let rows = r
                .stats
                .current
                .calls_per_hour_of_week
                .iter()
                .enumerate()
                .map(|(i, n)| vec![days[i / 24].to_string(), format!("{:02}:00", i % 24), n.to_string()])
                .collect();
            csv_response(&file("per-uur"), &[&ui.t("dag", "day"), &ui.t("uur", "hour"), &ui.t("gesprekken", "calls")], rows)
        }
        "outcomes" => {
            let rows = outcome_rows(r)
                .into_iter()
                .map(|(o, n, prev, share)| vec![o.as_str().to_string(), outcome_label(ui, o).to_string(), n.to_string(), prev.to_string(), csv_share(share)])
                .collect();
            let h = if ui == Ui::Nl {
                ["afloop", "omschrijving", "gesprekken", "vorige periode", "aandeel (%)"]
            } else {
                ["outcome", "description", "calls", "previous period", "share (%)"]
            };
            csv_response(&file("afloop"), &h, rows)
        }
        other => bad_request(ui.t(
            &format!("onbekende tabel '{other}' (kies figures, per_day, per_hour of outcomes)"),
            &format!("unknown table '{other}' (choose figures, per_day, per_hour or outcomes)"),
        )),
    }
}

fn day_names(ui: Ui) -> [&'static str; 7] {
    match ui {
        Ui::Nl => ["ma", "di", "wo", "do", "vr", "za", "zo"],
        Ui::En => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    }
}

pub fn outcome_label(ui: Ui, o: Outcome) -> &'static str {
    match ui {
        Ui::Nl => o.label_nl(),
        Ui::En => o.label_en(),
    }
}

/// (outcome, calls, calls in the previous period, share of finished calls).
fn outcome_rows(r: &Report) -> Vec<(Outcome, u64, u64, Option<f64>)> {
    let finished: u64 = r.stats.current.outcomes.iter().map(|(_, n)| n).sum();
    r.stats
        .current
        .outcomes
        .iter()
        .map(|(o, n)| {
            let prev = r.stats.previous.outcomes.iter().find(|(p, _)| p == o).map(|(_, n)| *n).unwrap_or(0);
            (*o, *n, prev, (finished > 0).then(|| *n as f64 / finished as f64))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Dashboard page

fn period_form(ui: Ui, action: &str, period: Period) -> Markup {
    let t = today();
    let span = |days: i64| -> String {
        let from = t.checked_sub(jiff::Span::new().days(days - 1)).unwrap_or(t);
        format!("{action}?from={from}&to={t}")
    };
    let month_start = t.first_of_month();
    let prev_month_end = month_start.yesterday().unwrap_or(month_start);
    html! {
        form.card.period method="get" action=(action) {
            div.row {
                div { label for="from" { (ui.t("Van", "From")) } input #from type="date" name="from" value=(period.from.to_string()); }
                div { label for="to" { (ui.t("Tot en met", "Up to and including")) } input #to type="date" name="to" value=(period.to.to_string()); }
                div { button type="submit" { (ui.t("Toon", "Show")) } }
            }
            p.quick {
                a href=(span(7)) { (ui.t("7 dagen", "7 days")) } " · "
                a href=(span(30)) { (ui.t("30 dagen", "30 days")) } " · "
                a href={(action) "?from=" (month_start) "&to=" (t)} { (ui.t("deze maand", "this month")) } " · "
                a href={(action) "?from=" (prev_month_end.first_of_month()) "&to=" (prev_month_end)} { (ui.t("vorige maand", "last month")) } " · "
                a href=(span(365)) { (ui.t("12 maanden", "12 months")) }
            }
        }
    }
}

fn csv_link(ui: Ui, action: &str, period: Period, table: &str) -> Markup {
    html! {
        a.csv href={(action) "?from=" (period.from) "&to=" (period.to) "&format=csv&table=" (table)} download { (ui.t("CSV downloaden", "Download CSV")) }
    }
}

fn dashboard(ui: Ui, scope: &Scope, period: Period, r: &Report) -> Markup {
    let action = format!("{}/report", scope.base());
    let cur = &r.stats.current;
    let figs = figures(r);
    let get = |k: &str| figs.iter().find(|f| f.key == k).cloned();
    let tile = |f: Option<Figure>| -> Markup {
        let Some(f) = f else { return html! {} };
        let (t, class) = trend(ui, &f);
        html! {
            div.tile {
                div.label { (if ui == Ui::Nl { f.label_nl } else { f.label_en }) }
                div.value { (show_value(ui, f.unit, f.value)) }
                div.trend.(class) title=(ui.t("t.o.v. de vorige periode", "against the previous period")) { (t) }
            }
        }
    };
    // Calls per day, every day of the period (days without calls as 0), and the previous
    // period aligned by day number for the line chart.
    let day_values = |days: &[(String, u64)], p: Period| -> Vec<f64> {
        let mut out = Vec::new();
        let mut d = p.from;
        while d <= p.to {
            let key = d.to_string();
            out.push(days.iter().find(|(k, _)| *k == key).map(|(_, n)| *n as f64).unwrap_or(0.0));
            match d.tomorrow() {
                Ok(n) => d = n,
                Err(_) => break,
            }
        }
        out
    };
    let current_days = day_values(&cur.calls_per_day, period);
    let previous_days = day_values(&r.stats.previous.calls_per_day, period.previous());
    let mut labels = Vec::new();
    let mut d = period.from;
    while d <= period.to {
        labels.push(d.strftime("%d-%m").to_string());
        match d.tomorrow() {
            Ok(n) => d = n,
            Err(_) => break,
        }
    }
    let bars: Vec<(String, f64)> = labels.iter().cloned().zip(current_days.iter().copied()).collect();
    let norm = cur.share_answered_within_30s;
    let outcome_bars: Vec<(String, f64)> = outcome_rows(r).iter().map(|(o, n, _, _)| (outcome_label(ui, *o).to_string(), *n as f64)).collect();
    let hours: Vec<u64> = cur.calls_per_hour_of_week.clone();
    let busiest = hours.iter().enumerate().max_by_key(|(_, v)| **v).filter(|(_, v)| **v > 0).map(|(i, _)| i);
    html! {
        p.subnav {
            @if let Scope::Municipality { cbs, .. } = scope {
                a href={"/m/" (cbs)} { (ui.t("Instellingen", "Settings")) } " · "
                a href={"/m/" (cbs) "/audit"} { (ui.t("Wijzigingslog", "Audit log")) } " · "
            }
            a href={(scope.base()) "/calls?from=" (period.from) "&to=" (period.to)} { (ui.t("Gesprekken", "Calls")) } " · "
            a href={"/api" (if let Some(c) = scope.cbs() { format!("/municipalities/{c}/report") } else { "/report/national".to_string() }) "?from=" (period.from) "&to=" (period.to)} { "JSON" }
        }
        (period_form(ui, &action, period))
        p.period-note {
            (ui.t("Periode", "Period")) " " strong { (period.from) " – " (period.to) } " (" (period.days()) " " (ui.t("dagen", "days")) "), "
            (ui.t("vergeleken met", "compared with")) " " (period.previous().from) " – " (period.previous().to) "."
        }
        section.tiles aria-label=(ui.t("Kerncijfers", "Key figures")) {
            (tile(get("calls")))
            (tile(get("right_first_time")))
            (tile(get("answered_within_30s")))
            (tile(get("name_recognised_first_time")))
            (tile(get("ivr_hangups")))
            (tile(get("time_to_destination_ivr_p50")))
        }
        @if let Some(share) = norm {
            p.norm.(if share >= NORM_ANSWERED_30S { "good" } else { "bad" }) role="status" {
                @if share >= NORM_ANSWERED_30S {
                    (ui.t("Sectornorm gehaald: ", "Sector norm met: ")) (show_value(ui, Unit::Share, Some(share))) (ui.t(" van de doorverbonden gesprekken binnen 30 s beantwoord (norm 80 %).", " of bridged calls answered within 30 s (norm 80 %)."))
                } @else {
                    (ui.t("Sectornorm niet gehaald: ", "Sector norm not met: ")) (show_value(ui, Unit::Share, Some(share))) (ui.t(" van de doorverbonden gesprekken binnen 30 s beantwoord (norm 80 %).", " of bridged calls answered within 30 s (norm 80 %)."))
                }
            }
        } @else {
            p.norm.flat { (ui.t("Sectornorm (80 % binnen 30 s): geen doorverbonden gesprekken in deze periode — bij doorschakelen (302) meet de gemeente zelf.", "Sector norm (80 % within 30 s): no bridged calls in this period — with redirects (302) the municipality measures it itself.")) }
        }
        section.card {
            h2 { (ui.t("Gesprekken per dag", "Calls per day")) }
            (charts::bar_chart("chart-per-day", &ui.t("Gesprekken per dag", "Calls per day"),
                &ui.t(&format!("Staafdiagram: {} gesprekken in {} dagen, van {} tot en met {}.", cur.calls, period.days(), period.from, period.to),
                      &format!("Bar chart: {} calls in {} days, from {} to {}.", cur.calls, period.days(), period.from, period.to)),
                &bars, &ui.t("gesprekken", "calls")))
            (charts::line_chart("chart-trend", &ui.t("Deze periode tegen de vorige", "This period against the previous"),
                &ui.t("Lijndiagram: gesprekken per dag in deze periode (doorgetrokken) en de vorige periode (gestreept), per dagnummer.",
                      "Line chart: calls per day in this period (solid) and the previous period (dashed), by day number."),
                &labels, &[
                    Series { name: &ui.t("deze periode", "this period"), colour: "#154273", dashed: false, values: &current_days },
                    Series { name: &ui.t("vorige periode", "previous period"), colour: "#b35c00", dashed: true, values: &previous_days },
                ]))
            (csv_link(ui, &action, period, "per_day"))
        }
        section.card {
            h2 { (ui.t("Gesprekken per uur van de week", "Calls per hour of the week")) }
            (charts::heat_map("chart-heat", &ui.t("Gesprekken per uur van de week", "Calls per hour of the week"),
                &match busiest {
                    Some(i) => ui.t(&format!("Heatmap: rijen zijn dagen (maandag eerst), kolommen uren; het drukste uur is {} {:02}:00 met {} gesprekken.", day_names(ui)[i / 24], i % 24, hours[i]),
                                    &format!("Heat map: rows are days (Monday first), columns hours; the busiest hour is {} {:02}:00 with {} calls.", day_names(ui)[i / 24], i % 24, hours[i])),
                    None => ui.t("Heatmap: geen gesprekken in deze periode.", "Heat map: no calls in this period."),
                },
                &hours, day_names(ui), &ui.t("gesprekken", "calls")))
            (csv_link(ui, &action, period, "per_hour"))
        }
        section.card {
            h2 { (ui.t("Afloop van de gesprekken", "Outcome of the calls")) }
            (charts::hbar_chart("chart-outcomes", &ui.t("Afloop van de gesprekken", "Outcome of the calls"),
                &ui.t("Liggend staafdiagram: aantal gesprekken per afloop.", "Horizontal bar chart: number of calls per outcome."),
                &outcome_bars, &ui.t("gesprekken", "calls")))
            div.scroll { table.outcomes {
                thead { tr { th { (ui.t("Afloop", "Outcome")) } th.num { (ui.t("Gesprekken", "Calls")) } th.num { (ui.t("Aandeel", "Share")) } th.num { (ui.t("Vorige periode", "Previous period")) } } }
                tbody {
                    @for (o, n, prev, share) in outcome_rows(r) {
                        tr { td { (outcome_label(ui, o)) } td.num { (show_value(ui, Unit::Count, Some(n as f64))) } td.num { (show_value(ui, Unit::Share, share)) } td.num { (show_value(ui, Unit::Count, Some(prev as f64))) } }
                    }
                }
            } }
            (csv_link(ui, &action, period, "outcomes"))
        }
        section.card {
            h2 { (ui.t("Alle kengetallen", "All figures")) }
            div.scroll { table.figures {
                thead { tr { th { (ui.t("Kengetal", "Figure")) } th.num { (ui.t("Periode", "Period")) } th.num { (ui.t("Vorige periode", "Previous period")) } th.num { (ui.t("Trend", "Trend")) } } }
                tbody {
                    @for f in &figs {
                        @let (t, class) = trend(ui, f);
                        tr {
                            td { (if ui == Ui::Nl { f.label_nl } else { f.label_en }) }
                            td.num { (show_value(ui, f.unit, f.value)) }
                            td.num { (show_value(ui, f.unit, f.previous)) }
                            td.num.trend.(class) { (t) }
                        }
                    }
                }
            } }
            (csv_link(ui, &action, period, "figures"))
            p.small { (ui.t("Definities: zie docs/REPORTS.md. Trend: verschil in % (aantallen, tijden) of procentpunten (aandelen).", "Definitions: see docs/REPORTS.md. Trend: change in % (counts, times) or percentage points (shares).")) }
        }
    }
}

async fn report_page(state: &AppState, ui: Ui, user: &CurrentUser, scope: Scope, params: ReportParams) -> Response {
    let period = match Period::parse(params.from.as_deref(), params.to.as_deref(), ui) {
        Ok(p) => p,
        Err(m) => return bad_request(m),
    };
    let report = match state.store.report(&period.query(&scope)).await {
        Ok(r) => r,
        Err(e) => return server_error(e),
    };
    if params.format.as_deref() == Some("csv") {
        return report_csv(ui, &scope, period, &report, params.table.as_deref().unwrap_or("figures"));
    }
    let title = format!("{} · {}", ui.t("Rapportage", "Report"), scope.title(ui));
    crate::pages::layout(ui, &title, Some(user), dashboard(ui, &scope, period, &report)).into_response()
}

pub async fn municipality_report(
    State(state): State<AppState>,
    ui: Ui,
    user: CurrentUser,
    Path(cbs): Path<String>,
    Query(params): Query<ReportParams>,
) -> Result<Response, AuthError> {
    let scope = municipality_scope(&state, &user, &cbs)?;
    Ok(report_page(&state, ui, &user, scope, params).await)
}

pub async fn national_report(State(state): State<AppState>, ui: Ui, user: CurrentUser, Query(params): Query<ReportParams>) -> Result<Response, AuthError> {
    require_national(&user)?;
    Ok(report_page(&state, ui, &user, Scope::National, params).await)
}

// ---------------------------------------------------------------------------------------------
// JSON

/// Every figure of a report: the definitions are in docs/REPORTS.md.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportResponse {
    /// CBS code, or null for national.
    pub municipality: Option<String>,
    /// First day (Europe/Amsterdam), inclusive.
    pub from: String,
    /// Last day, inclusive.
    pub to: String,
    pub previous_from: String,
    pub previous_to: String,
    /// The headline figures with trend, as in the dashboard's table.
    pub figures: Vec<Figure>,
    /// Everything the store computed: `stats.current`/`stats.previous` (calls per day, per hour
    /// of the week, outcomes, shares, post-dial delay percentiles) and `routing`/`previous_routing`.
    #[schema(value_type = Object)]
    pub report: Report,
}

async fn report_json(state: &AppState, scope: Scope, params: ReportParams) -> Response {
    let period = match Period::parse(params.from.as_deref(), params.to.as_deref(), Ui::En) {
        Ok(p) => p,
        Err(m) => return bad_request(m),
    };
    match state.store.report(&period.query(&scope)).await {
        Ok(report) => Json(ReportResponse {
            municipality: scope.cbs().map(String::from),
            from: period.from.to_string(),
            to: period.to.to_string(),
            previous_from: period.previous().from.to_string(),
            previous_to: period.previous().to.to_string(),
            figures: figures(&report),
            report,
        })
        .into_response(),
        Err(e) => server_error(e),
    }
}

#[utoipa::path(get, path = "/api/municipalities/{cbs}/report", params(("cbs" = String, Path, description = "CBS code, e.g. GM0664"), ReportParams),
    responses((status = 200, body = ReportResponse), (status = 400, description = "bad period"), (status = 401), (status = 404, description = "unknown, or not yours")))]
pub async fn api_municipality_report(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(cbs): Path<String>,
    Query(params): Query<ReportParams>,
) -> Result<Response, AuthError> {
    let scope = municipality_scope(&state, &user, &cbs)?;
    Ok(report_json(&state, scope, params).await)
}

#[utoipa::path(get, path = "/api/report/national", params(ReportParams),
    responses((status = 200, body = ReportResponse), (status = 400), (status = 401), (status = 404, description = "not an operator")))]
pub async fn api_national_report(State(state): State<AppState>, user: CurrentUser, Query(params): Query<ReportParams>) -> Result<Response, AuthError> {
    require_national(&user)?;
    Ok(report_json(&state, Scope::National, params).await)
}

// ---------------------------------------------------------------------------------------------
// Call list

/// Filters of the call list (page, CSV and API).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct CallParams {
    /// First day `YYYY-MM-DD` (default: 29 days before `to`).
    pub from: Option<String>,
    /// Last day, inclusive (default: today).
    pub to: Option<String>,
    /// One outcome, e.g. `no_answer`; empty = all.
    pub outcome: Option<String>,
    /// Caller, dialled number, 14-number or destination (exact).
    pub number: Option<String>,
    /// Page number from 1 (pages) .
    pub page: Option<u32>,
    /// API: rows (default 50, at most 10000) and offset.
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    /// `csv` for the whole filtered list (at most 10000 rows) as CSV (pages only).
    pub format: Option<String>,
    /// API only, operators: one municipality.
    pub municipality: Option<String>,
}

fn call_filter(p: &CallParams, scope: &Scope, ui: Ui) -> Result<(Period, CallFilter), String> {
    let period = Period::parse(p.from.as_deref(), p.to.as_deref(), ui)?;
    let outcome = match p.outcome.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(o) => Some(o.parse::<Outcome>()?),
    };
    let number = p.number.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    Ok((
        period,
        CallFilter {
            municipality: scope.cbs().map(String::from),
            outcome,
            from_ms: Some(period.from_ms()),
            to_ms: Some(period.to_ms()),
            number,
            limit: 0,
            offset: 0,
        },
    ))
}

fn local_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(veertien_core::hours::amsterdam().clone()).strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn outcome_text(ui: Ui, c: &CallRecord) -> String {
    c.outcome.map(|o| outcome_label(ui, o).to_string()).unwrap_or_else(|| ui.t("bezig", "in progress"))
}

fn calls_csv(ui: Ui, scope: &Scope, period: Period, calls: &[CallRecord]) -> Response {
    let h: Vec<String> = [
        ("gesprek", "call"), ("ontvangen", "received"), ("beller", "caller"), ("gekozen", "dialled"), ("gemeente", "municipality"),
        ("bestemming", "destination"), ("aflevering", "delivery"), ("afloop", "outcome"), ("sip-status", "sip status"),
        ("kiesvertraging (ms)", "post-dial delay (ms)"), ("beantwoord na overgaan (ms)", "answered after ringing (ms)"), ("duur (ms)", "duration (ms)"),
    ]
    .iter()
    .map(|(nl, en)| ui.t(nl, en))
    .collect();
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let rows = calls
        .iter()
        .map(|c| {
            vec![
                c.call_id.clone(),
                local_time(c.received_ms),
                c.caller.clone(),
                c.dialled.clone(),
                c.municipality_cbs.clone().unwrap_or_default(),
                c.destination.clone().unwrap_or_default(),
                c.delivery.map(|d| d.as_str().to_string()).unwrap_or_default(),
                c.outcome.map(|o| o.as_str().to_string()).unwrap_or_default(),
                c.sip_status.map(|s| s.to_string()).unwrap_or_default(),
                opt(c.post_dial_delay_ms),
                opt(c.answered_ms.map(|a| a - c.ringing_ms.unwrap_or(a))),
                opt(c.ended_ms.map(|e| e - c.received_ms)),
            ]
        })
        .collect();
    let hr: Vec<&str> = h.iter().map(String::as_str).collect();
    csv_response(&format!("veertien-{}-gesprekken-{}-{}.csv", scope.slug(), period.from, period.to), &hr, rows)
}

async fn calls_page(state: &AppState, ui: Ui, user: &CurrentUser, scope: Scope, p: CallParams) -> Response {
    let (period, mut filter) = match call_filter(&p, &scope, ui) {
        Ok(f) => f,
        Err(m) => return bad_request(m),
    };
    if p.format.as_deref() == Some("csv") {
        filter.limit = CallFilter::MAX_LIMIT;
        return match state.store.list_calls(&filter).await {
            Ok(calls) => calls_csv(ui, &scope, period, &calls),
            Err(e) => server_error(e),
        };
    }
    let page = p.page.unwrap_or(1).max(1);
    // One row more than shown tells whether there is a next page without counting.
    filter.limit = PAGE_SIZE + 1;
    filter.offset = (page - 1).saturating_mul(PAGE_SIZE);
    let mut calls = match state.store.list_calls(&filter).await {
        Ok(c) => c,
        Err(e) => return server_error(e),
    };
    let more = calls.len() > PAGE_SIZE as usize;
    calls.truncate(PAGE_SIZE as usize);
    let base = format!("{}/calls", scope.base());
    let qs = |page: u32, csv: bool| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("from", &period.from.to_string()).append_pair("to", &period.to.to_string());
        if let Some(o) = filter.outcome {
            s.append_pair("outcome", o.as_str());
        }
        if let Some(n) = &filter.number {
            s.append_pair("number", n);
        }
        if csv {
            s.append_pair("format", "csv");
        } else {
            s.append_pair("page", &page.to_string());
        }
        format!("{base}?{}", s.finish())
    };
    let national = matches!(scope, Scope::National);
    let body = html! {
        p.subnav {
            @if let Scope::Municipality { cbs, .. } = &scope { a href={"/m/" (cbs)} { (ui.t("Instellingen", "Settings")) } " · " }
            a href={(scope.base()) "/report?from=" (period.from) "&to=" (period.to)} { (ui.t("Rapportage", "Report")) }
        }
        form.card.period method="get" action=(base) {
            div.row {
                div { label for="from" { (ui.t("Van", "From")) } input #from type="date" name="from" value=(period.from.to_string()); }
                div { label for="to" { (ui.t("Tot en met", "Up to and including")) } input #to type="date" name="to" value=(period.to.to_string()); }
                div {
                    label for="outcome" { (ui.t("Afloop", "Outcome")) }
                    select #outcome name="outcome" {
                        option value="" { (ui.t("alle", "all")) }
                        @for o in Outcome::ALL { option value=(o.as_str()) selected[filter.outcome == Some(o)] { (outcome_label(ui, o)) } }
                    }
                }
                div { label for="number" { (ui.t("Nummer", "Number")) } input #number type="text" name="number" value=[filter.number.as_deref()] inputmode="tel"; }
                div { button type="submit" { (ui.t("Zoek", "Search")) } }
            }
        }
        div.scroll { table.calls {
            thead { tr {
                th { (ui.t("Ontvangen", "Received")) } th { (ui.t("Beller", "Caller")) } th { (ui.t("Gekozen", "Dialled")) }
                @if national { th { (ui.t("Gemeente", "Municipality")) } }
                th { (ui.t("Bestemming", "Destination")) } th { (ui.t("Afloop", "Outcome")) } th.num { (ui.t("Kiesvertraging", "Post-dial delay")) }
            } }
            tbody {
                @for c in &calls {
                    tr {
                        td { a href={(scope.base()) "/calls/" (c.call_id)} { (local_time(c.received_ms)) } }
                        td { (c.caller) } td { (c.dialled) }
                        @if national { td { (c.municipality_cbs.as_deref().unwrap_or("—")) } }
                        td { (c.destination.as_deref().unwrap_or("—")) }
                        td { (outcome_text(ui, c)) }
                        td.num { (c.post_dial_delay_ms.map(|v| format!("{v} ms")).unwrap_or_else(|| "—".into())) }
                    }
                }
                @if calls.is_empty() { tr { td colspan="7" { (ui.t("Geen gesprekken met deze filters.", "No calls match these filters.")) } } }
            }
        } }
        nav.pager aria-label=(ui.t("Pagina's", "Pages")) {
            @if page > 1 { a rel="prev" href=(qs(page - 1, false)) { "← " (ui.t("nieuwer", "newer")) } }
            span { (ui.t("pagina", "page")) " " (page) }
            @if more { a rel="next" href=(qs(page + 1, false)) { (ui.t("ouder", "older")) " →" } }
        }
        p { a.csv href=(qs(1, true)) download { (ui.t("CSV downloaden (hoogstens 10.000 gesprekken)", "Download CSV (at most 10,000 calls)")) } }
    };
    let title = format!("{} · {}", ui.t("Gesprekken", "Calls"), scope.title(ui));
    crate::pages::layout(ui, &title, Some(user), body).into_response()
}

pub async fn municipality_calls(
    State(state): State<AppState>,
    ui: Ui,
    user: CurrentUser,
    Path(cbs): Path<String>,
    Query(p): Query<CallParams>,
) -> Result<Response, AuthError> {
    let scope = municipality_scope(&state, &user, &cbs)?;
    Ok(calls_page(&state, ui, &user, scope, p).await)
}

pub async fn national_calls(State(state): State<AppState>, ui: Ui, user: CurrentUser, Query(p): Query<CallParams>) -> Result<Response, AuthError> {
    require_national(&user)?;
    Ok(calls_page(&state, ui, &user, Scope::National, p).await)
}

// ---------------------------------------------------------------------------------------------
// A page per call

/// The call, if it exists and belongs to the scope (404 otherwise: a municipality never learns
/// whether another's call id exists).
async fn scoped_call(state: &AppState, scope: &Scope, id: &str) -> Result<Result<CallRecord, Response>, AuthError> {
    match state.store.get_call(id).await {
        Ok(Some(c)) if scope.cbs().is_none() || c.municipality_cbs.as_deref() == scope.cbs() => Ok(Ok(c)),
        Ok(_) => Err(AuthError::NotFound),
        Err(e) => Ok(Err(server_error(e))),
    }
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The dialogue as the IVR logs it (`entries` of `veertien_ivr::DialogueLog`): what was played,
/// said, recognised and pressed, in order. Other shapes are shown as JSON.
fn dialogue(ui: Ui, ivr: &serde_json::Value) -> Markup {
    let entries = ivr.get("entries").and_then(|e| e.as_array());
    let said = |e: &serde_json::Value| -> Markup {
        let f = |k: &str| e.get(k).filter(|v| !v.is_null()).map(json_text);
        match e.get("what").and_then(|w| w.as_str()).unwrap_or("") {
            "heard" => html! {
                (ui.t("Gezegd", "Said")) ": " q { (f("text").unwrap_or_default()) }
                @if let Some(m) = f("municipality") { " → " (ui.t("herkend als", "recognised as")) " " strong { (m) } }
                @if let Some(c) = e.get("confidence").and_then(|v| v.as_f64()) { " (" (ui.t("zekerheid", "confidence")) " " (format!("{:.0} %", c * 100.0)) ")" }
            },
            "prompt" => html! { (ui.t("Afgespeeld", "Played")) ": " (f("text").unwrap_or_default()) },
            "digit" => html! { (ui.t("Toets", "Key")) " " strong { (f("key").unwrap_or_default()) } @if let Some(m) = f("municipality") { " → " (m) } },
            "answer" => html! {
                (ui.t("Antwoord", "Answer")) ": "
                (match e.get("yes").and_then(|v| v.as_bool()) { Some(true) => ui.t("ja", "yes"), Some(false) => ui.t("nee (correctie)", "no (correction)"), None => ui.t("onduidelijk", "unclear") })
                @if let Some(v) = f("via") { " (" (v) ")" }
            },
            "miss" => html! { (ui.t("Niet verstaan", "Not understood")) ": " (f("reason").unwrap_or_default()) },
            "outcome" => html! { (ui.t("Uitkomst", "Outcome")) ": " (f("outcome").unwrap_or_default()) },
            other => html! { (other) ": " (e.to_string()) },
        }
    };
    html! {
        @if let Some(entries) = entries {
            div.scroll { table.dialogue {
                thead { tr { th.num { (ui.t("Tijd", "Time")) } th { (ui.t("Wat", "What")) } } }
                tbody {
                    @for e in entries {
                        tr {
                            td.num { (e.get("at_ms").and_then(|v| v.as_i64()).map(|v| format!("{:.1} s", v as f64 / 1000.0)).unwrap_or_default()) }
                            td { (said(e)) }
                        }
                    }
                }
            } }
        }
        details { summary { (ui.t("Dialoog als JSON", "Dialogue as JSON")) } pre { (serde_json::to_string_pretty(ivr).unwrap_or_default()) } }
    }
}

fn call_page_body(ui: Ui, scope: &Scope, c: &CallRecord) -> Markup {
    let rel = |t: Option<i64>| -> String {
        match t {
            Some(t) => format!("{} (+{} ms)", local_time(t), t - c.received_ms),
            None => "—".into(),
        }
    };
    let steps: Vec<serde_json::Value> = c.route_steps.value().as_array().cloned().unwrap_or_default();
    html! {
        p.subnav {
            a href={(scope.base()) "/calls"} { (ui.t("Alle gesprekken", "All calls")) } " · "
            a href={(scope.base()) "/report"} { (ui.t("Rapportage", "Report")) }
        }
        section.card {
            h2 { (ui.t("Afloop", "Outcome")) ": " (outcome_text(ui, c)) }
            dl.facts {
                dt { (ui.t("Beller", "Caller")) } dd { (c.caller) }
                dt { (ui.t("Gekozen", "Dialled")) } dd { (c.dialled) @if let Some(n) = &c.normalised { " (" (n) ")" } }
                dt { (ui.t("Gemeente", "Municipality")) } dd { (c.municipality_cbs.as_deref().unwrap_or("—")) }
                dt { (ui.t("Beslissing", "Decision")) } dd { (c.decision_kind) }
                dt { (ui.t("Bestemming", "Destination")) } dd { (c.destination.as_deref().unwrap_or("—")) }
                dt { (ui.t("Aflevering", "Delivery")) } dd { (c.delivery.map(|d| match d { veertien_store::Delivery::Redirect => ui.t("doorschakelen (302)", "redirect (302)"), veertien_store::Delivery::Bridge => ui.t("doorverbinden", "bridge") }).unwrap_or_else(|| "—".into())) }
                dt { (ui.t("SIP-status", "SIP status")) } dd { (c.sip_status.map(|s| s.to_string()).unwrap_or_else(|| "—".into())) }
                @if let Some(r) = &c.reject_reason { dt { (ui.t("Reden weigering", "Reject reason")) } dd { (r) } }
                dt { (ui.t("Kiesvertraging", "Post-dial delay")) } dd { (c.post_dial_delay_ms.map(|v| format!("{v} ms")).unwrap_or_else(|| "—".into())) }
                dt { (ui.t("Gesprek-id", "Call id")) } dd { code { (c.call_id) } }
                dt { "SIP Call-ID" } dd { code { (c.sip_call_id) } }
                dt { (ui.t("Knooppunt", "Node")) } dd { (c.node_id) }
            }
        }
        section.card {
            h2 { (ui.t("Tijden", "Timings")) }
            div.scroll { table.timings {
                tbody {
                    tr { th { (ui.t("Ontvangen", "Received")) } td { (local_time(c.received_ms)) } }
                    tr { th { (ui.t("Besloten", "Decided")) } td { (rel(c.decided_ms)) } }
                    tr { th { (ui.t("Gaat over", "Ringing")) } td { (rel(c.ringing_ms)) } }
                    tr { th { (ui.t("Beantwoord", "Answered")) } td { (rel(c.answered_ms)) } }
                    tr { th { (ui.t("Beëindigd", "Ended")) } td { (rel(c.ended_ms)) } }
                }
            } }
        }
        section.card {
            h2 { (ui.t("Route", "Route")) }
            @if steps.is_empty() {
                p { (ui.t("Geen routestappen vastgelegd (bij doorschakelen is de route de bestemming hierboven).", "No route steps recorded (with a redirect the route is the destination above).")) }
            } @else {
                ol.steps {
                    @for s in &steps {
                        li {
                            @if let Some(o) = s.as_object() {
                                @for (i, (k, v)) in o.iter().enumerate() { @if i > 0 { ", " } (k) ": " strong { (json_text(v)) } }
                            } @else { (json_text(s)) }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { (ui.t("Keuzemenu: wat er gezegd en herkend is", "IVR: what was said and recognised")) }
            @match &c.ivr {
                Some(v) if !v.is_null() => (dialogue(ui, v)),
                _ => p { (ui.t("Dit gesprek ging niet via het keuzemenu.", "This call did not go through the IVR.")) },
            }
        }
    }
}

async fn call_page(state: &AppState, ui: Ui, user: &CurrentUser, scope: Scope, id: &str) -> Result<Response, AuthError> {
    let c = match scoped_call(state, &scope, id).await? {
        Ok(c) => c,
        Err(res) => return Ok(res),
    };
    let title = format!("{} {}", ui.t("Gesprek", "Call"), local_time(c.received_ms));
    Ok(crate::pages::layout(ui, &title, Some(user), call_page_body(ui, &scope, &c)).into_response())
}

pub async fn municipality_call(State(state): State<AppState>, ui: Ui, user: CurrentUser, Path((cbs, id)): Path<(String, String)>) -> Result<Response, AuthError> {
    let scope = municipality_scope(&state, &user, &cbs)?;
    call_page(&state, ui, &user, scope, &id).await
}

pub async fn national_call(State(state): State<AppState>, ui: Ui, user: CurrentUser, Path(id): Path<String>) -> Result<Response, AuthError> {
    require_national(&user)?;
    call_page(&state, ui, &user, Scope::National, &id).await
}

// ---------------------------------------------------------------------------------------------
// Calls as JSON

#[derive(Serialize, utoipa::ToSchema)]
pub struct CallsResponse {
    /// Newest first; the fields are `veertien_store::CallRecord`'s (times in unix ms, UTC).
    #[schema(value_type = Vec<Object>)]
    pub calls: Vec<CallRecord>,
    /// Offset of the next page, null on the last.
    pub next_offset: Option<u32>,
}

async fn calls_json(state: &AppState, scope: Scope, p: CallParams) -> Response {
    let (_, mut filter) = match call_filter(&p, &scope, Ui::En) {
        Ok(f) => f,
        Err(m) => return bad_request(m),
    };
    let limit = p.limit.unwrap_or(PAGE_SIZE).clamp(1, CallFilter::MAX_LIMIT);
    filter.limit = limit + 1;
    filter.offset = p.offset.unwrap_or(0);
    match state.store.list_calls(&filter).await {
        Ok(mut calls) => {
            let more = calls.len() > limit as usize;
            calls.truncate(limit as usize);
            Json(CallsResponse { next_offset: more.then(|| filter.offset + limit), calls }).into_response()
        }
        Err(e) => server_error(e),
    }
}

#[utoipa::path(get, path = "/api/calls", params(CallParams),
    responses((status = 200, body = CallsResponse), (status = 400), (status = 401), (status = 404, description = "municipality not yours")))]
/// Calls the user may see: a municipality's users their own; operators every call, or one
/// municipality with `?municipality=`.
pub async fn api_calls(State(state): State<AppState>, user: CurrentUser, Query(p): Query<CallParams>) -> Result<Response, AuthError> {
    let wanted = p.municipality.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_uppercase);
    let scope = match (wanted, &user.user.municipality) {
        (Some(m), _) => municipality_scope(&state, &user, &m)?,
        (None, Some(own)) => municipality_scope(&state, &user, own)?,
        (None, None) => {
            require_national(&user)?;
            Scope::National
        }
    };
    Ok(calls_json(&state, scope, p).await)
}

#[utoipa::path(get, path = "/api/municipalities/{cbs}/calls", params(("cbs" = String, Path, description = "CBS code"), CallParams),
    responses((status = 200, body = CallsResponse), (status = 400), (status = 401), (status = 404)))]
pub async fn api_municipality_calls(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(cbs): Path<String>,
    Query(p): Query<CallParams>,
) -> Result<Response, AuthError> {
    let scope = municipality_scope(&state, &user, &cbs)?;
    Ok(calls_json(&state, scope, p).await)
}

#[utoipa::path(get, path = "/api/municipalities/{cbs}/calls/{id}", params(("cbs" = String, Path, description = "CBS code"), ("id" = String, Path, description = "call id")),
    responses((status = 200, description = "the call record", body = Object), (status = 401), (status = 404)))]
pub async fn api_municipality_call(State(state): State<AppState>, user: CurrentUser, Path((cbs, id)): Path<(String, String)>) -> Result<Response, AuthError> {
    let scope = municipality_scope(&state, &user, &cbs)?;
    Ok(match scoped_call(&state, &scope, &id).await? {
        Ok(c) => Json(c).into_response(),
        Err(res) => res,
    })
}

#[utoipa::path(get, path = "/api/calls/{id}", params(("id" = String, Path, description = "call id")),
    responses((status = 200, description = "the call record", body = Object), (status = 401), (status = 404)))]
/// Any call, for operators (calls without a municipality, e.g. rejected numbers, included).
pub async fn api_call(State(state): State<AppState>, user: CurrentUser, Path(id): Path<String>) -> Result<Response, AuthError> {
    require_national(&user)?;
    Ok(match scoped_call(&state, &Scope::National, &id).await? {
        Ok(c) => Json(c).into_response(),
        Err(res) => res,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_whole_local_days_with_an_equal_previous_period() {
        let p = Period::parse(Some("2025-03-01"), Some("2025-03-31"), Ui::Nl).unwrap();
        assert_eq!(p.days(), 31);
        let prev = p.previous();
        assert_eq!((prev.from.to_string(), prev.to.to_string()), ("2025-01-29".into(), "2025-02-28".into()));
        // 2025-03-30 has 23 hours: the end is local midnight, not from + 31 × 24 h.
        assert_eq!(p.to_ms() - p.from_ms(), 31 * 86_400_000 - 3_600_000);
        assert!(Period::parse(Some("2025-02-30"), None, Ui::En).unwrap_err().contains("'from' must be a date"));
        assert!(Period::parse(Some("2025-03-02"), Some("2025-03-01"), Ui::Nl).unwrap_err().contains("vóór"));
        assert!(Period::parse(Some("2020-01-01"), Some("2025-01-01"), Ui::En).unwrap_err().contains("at most"));
        assert_eq!(Period::parse(None, None, Ui::Nl).unwrap().days(), 30);
    }

    #[test]
    fn dutch_numbers_and_trends() {
        assert_eq!(nl_number(1234567.891, 1), "1.234.567,9");
        assert_eq!(nl_number(0.5, 0), "0");
        assert_eq!(nl_number(-12.25, 1), "-12,2");
        assert_eq!(nl_number(-0.01, 1), "0,0");
        let f = Figure { key: "x", label_nl: "", label_en: "", unit: Unit::Share, value: Some(0.9), previous: Some(0.8), change: Some(10.0), higher_is_better: Some(true) };
        assert_eq!(trend(Ui::Nl, &f), ("▲ +10,0 pp".into(), "good"));
        let f = Figure { unit: Unit::Count, change: Some(-25.0), higher_is_better: Some(true), ..f };
        assert_eq!(trend(Ui::En, &f), ("▼ -25.0 %".into(), "bad"));
        assert_eq!(show_value(Ui::Nl, Unit::Milliseconds, Some(12_345.0)), "12,3 s");
        assert_eq!(show_value(Ui::Nl, Unit::Share, None), "—");
    }
}
