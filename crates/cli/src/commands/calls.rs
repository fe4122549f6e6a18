//! `veertien calls`: recent calls from the store, newest first.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use jiff::{Span, Timestamp};
use veertien_core::Plan;
use veertien_server::Config;
use veertien_store::{CallFilter, CallRecord, Outcome, Store};

use super::OutLang;

#[derive(Args, Debug)]
pub struct CallsArgs {
    /// Configuratiebestand van `serve` (voor de databaselocatie) / `serve` config file (for the store location)
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database (pad of URL), gaat voor --config / store location (path or URL), overrides --config
    #[arg(long, value_name = "PATH")]
    pub db: Option<String>,
    /// Gemeente: CBS-code (GM0664) of naam / municipality: CBS code (GM0664) or name
    #[arg(long, value_name = "GEMEENTE")]
    pub municipality: Option<String>,
    /// Uitkomst / outcome: redirected, answered, busy, no_answer, unreachable, rejected, ...
    #[arg(long)]
    pub outcome: Option<Outcome>,
    /// Vanaf / since: RFC 3339 time, a date (2026-03-11, Amsterdam) or a period back ("2h", "3 days")
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// 14-nummer (elke schrijfwijze, zoals `14 020`), beller of bestemming / 14-number (any form, e.g. `14 020`), caller or destination
    #[arg(long)]
    pub number: Option<String>,
    /// Maximum aantal / maximum number of calls
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// JSON-uitvoer (één object per regel) / JSON output (one object per line)
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, default_value_t = OutLang::Nl)]
    pub lang: OutLang,
}

fn parse_since(s: &str, now: Timestamp) -> anyhow::Result<i64> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t.as_millisecond());
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return Ok(veertien_store::local_day_start_ms(&d.to_string())?);
    }
    if let Ok(span) = s.parse::<Span>() {
        let back = now.to_zoned(jiff::tz::TimeZone::UTC).checked_sub(span.abs())?;
        return Ok(back.timestamp().as_millisecond());
    }
    bail!("--since '{s}' is not a time (2026-03-11T09:00:00Z), a date (2026-03-11) or a period (2h, 3 days)")
}

fn municipality_cbs(s: &str) -> anyhow::Result<String> {
    let plan = Plan::builtin();
    if let Some(id) = plan.by_cbs(s).or_else(|| plan.by_cbs(&s.to_ascii_uppercase())) {
        return Ok(plan.municipality(id).cbs.clone());
    }
    match plan.by_name(s) {
        Some(id) => Ok(plan.municipality(id).cbs.clone()),
        None => bail!("--municipality '{s}': geen gemeente met die CBS-code of naam / no municipality with that CBS code or name"),
    }
}

pub fn run(a: CallsArgs) -> anyhow::Result<ExitCode> {
    let location = match (&a.db, &a.config) {
        (Some(db), _) => db.clone(),
        (None, Some(p)) => Config::load(p)?.store.path.to_string_lossy().into_owned(),
        (None, None) => Config::default().store.path.to_string_lossy().into_owned(),
    };
    if !location.contains("://") && !std::path::Path::new(&location).exists() {
        bail!("no call store at {location} (start `veertien serve` first, or pass --db / --config)");
    }
    let filter = CallFilter {
        municipality: a.municipality.as_deref().map(municipality_cbs).transpose()?,
        outcome: a.outcome,
        from_ms: a.since.as_deref().map(|s| parse_since(s, Timestamp::now())).transpose()?,
        to_ms: None,
        number: a.number.clone(),
        limit: a.limit,
        offset: 0,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let calls = runtime.block_on(async {
        let store = Store::open(&location).await.with_context(|| format!("cannot open the call store at {location}"))?;
        let calls = store.list_calls(&filter).await?;
        store.close().await;
        anyhow::Ok(calls)
    })?;
    if a.json {
        for c in &calls {
            outln!("{}", serde_json::to_string(c)?);
        }
    } else {
        print_table(&calls, a.lang);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(calls: &[CallRecord], lang: OutLang) {
    let tz = jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap_or(jiff::tz::TimeZone::UTC);
    outln!(
        "{:<19}  {:<8}  {:<14}  {:<8}  {:<30}  {:>4}  {:>6}  {}",
        lang.t("ontvangen", "received"),
        lang.t("nummer", "number"),
        lang.t("beller", "caller"),
        lang.t("gemeente", "municip."),
        lang.t("uitkomst", "outcome"),
        "SIP",
        "PDD ms",
        lang.t("bestemming", "destination")
    );
    for c in calls {
        let at = Timestamp::from_millisecond(c.received_ms)
            .map(|t| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let outcome = match c.outcome {
            Some(o) => {
                let label = match lang {
                    OutLang::Nl => o.label_nl(),
                    OutLang::En => o.label_en(),
                };
                match &c.reject_reason {
                    Some(r) => format!("{label} ({r})"),
                    None => label.to_string(),
                }
            }
            None => lang.t("bezig", "in progress").into_owned(),
        };
        outln!(
            "{:<19}  {:<8}  {:<14}  {:<8}  {:<30}  {:>4}  {:>6}  {}",
            at,
            c.normalised.as_deref().unwrap_or(&c.dialled),
            c.caller,
            c.municipality_cbs.as_deref().unwrap_or("-"),
            outcome,
            c.sip_status.map(|s| s.to_string()).unwrap_or_default(),
            c.post_dial_delay_ms.map(|d| d.to_string()).unwrap_or_default(),
            c.destination.as_deref().unwrap_or("-")
        );
    }
}
