//! `veertien route <number>`: the routing decision for one call, as text or JSON.

use std::fmt::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use jiff::Timestamp;
use serde_json::json;
use veertien_core::hours::amsterdam;
use veertien_core::{AnnounceReason, CallInfo, Decision, DeliveryMode, MunicipalityId, Plan, RouteStep, Settings, decide, decide_for, normalise};
use veertien_names::{Outcome, Resolution};

use super::{OutLang, Sources, load_plan, load_settings};

#[derive(Args, Debug)]
pub struct RouteArgs {
    /// Het gekozen nummer / the dialled number: 140113, "14 020", +3114020, tel:..., sip:...
    /// (several words are joined with spaces, so `veertien route 14 020` works unquoted)
    #[arg(required = true, num_args = 1..)]
    pub number: Vec<String>,
    /// Nummer van de beller / the caller's number
    #[arg(long, value_name = "CALLER")]
    pub from: Option<String>,
    /// Moment van de oproep / moment of the call: RFC 3339 ("2026-03-11T09:00:00Z") or local
    /// Amsterdam time ("2026-03-11T10:00") [default: now]
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Wat de beller zei / what the caller said (already as text), resolved to a municipality
    #[arg(long, value_name = "TEXT")]
    pub say: Option<String>,
    /// JSON-uitvoer / JSON output: {"decision": {...}, "resolution": {...}}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub sources: Sources,
}

fn parse_at(s: &str) -> anyhow::Result<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let dt: jiff::civil::DateTime =
        s.parse().with_context(|| format!("--at '{s}' is not a time (2026-03-11T09:00:00Z or 2026-03-11T10:00)"))?;
    Ok(dt.to_zoned(amsterdam().clone())?.timestamp())
}

pub fn run(a: RouteArgs) -> anyhow::Result<ExitCode> {
    let plan = load_plan(a.sources.plan.as_deref())?;
    let settings = load_settings(a.sources.settings.as_deref(), &plan)?;
    let now = match &a.at {
        Some(s) => parse_at(s)?,
        None => Timestamp::now(),
    };
    let number = a.number.join(" ");
    let call = CallInfo { dialled: &number, caller: a.from.as_deref() };
    let decision = decide(&call, &plan, &settings, now);
    let lang = a.sources.lang;
    let said = a.say.as_deref().map(|text| said(text, &number, &decision, &plan, &settings, now));
    if a.json {
        let mut out = json!({
            "number": normalise(&number).ok().map(|n| n.to_string()),
            "decision": decision,
        });
        if let Some((resolution, after)) = &said {
            out["resolution"] = serde_json::to_value(resolution)?;
            // The decision once the caller's answer picked a municipality of this area code.
            out["after_choice"] = serde_json::to_value(after)?;
        }
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else if !matches!(decision, Decision::Reject { .. }) {
        out!("{}", render(&decision, &plan, lang));
        if let Some((resolution, after)) = &said {
            out!("{}", render_resolution(resolution, a.say.as_deref().unwrap_or(""), &plan, lang));
            if let Some(d) = after {
                out!("{} {}", lang.t("Daarna:", "Then:"), render(d, &plan, lang));
            }
        }
    }
    if let Decision::Reject { reason } = &decision {
        eprintln!("veertien: {}: {reason}", lang.t("geen geldig 14+ nummer", "not a valid 14+ number"));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolve `--say` against the municipalities of the dialled area code (all of them: technical
/// ones are reachable by name) and, when that picks one of them after a question, the follow-up decision.
fn said(text: &str, number: &str, decision: &Decision, plan: &Plan, settings: &Settings, now: Timestamp) -> (Resolution, Option<Decision>) {
    let area = normalise(number).ok().and_then(|n| plan.area_code_id(n.area_code()));
    let candidates: Vec<MunicipalityId> = area.map(|a| plan.area_code_by_id(a).municipalities.clone()).unwrap_or_default();
    let resolution = veertien_names::resolve(text, &candidates, plan, settings);
    let after = match (&resolution.outcome, decision, area) {
        (Outcome::Municipality { id } | Outcome::NotConnected { id, .. }, Decision::Ask { .. }, Some(a)) if candidates.contains(id) => {
            Some(decide_for(*id, a, plan, settings, now))
        }
        _ => None,
    };
    (resolution, after)
}

fn render_resolution(r: &Resolution, text: &str, plan: &Plan, l: OutLang) -> String {
    let name = |id: &MunicipalityId| plan.municipality(*id).name.clone();
    let what = match &r.outcome {
        Outcome::Municipality { id } => l.t(format!("gemeente {}", name(id)), format!("municipality {}", name(id))).into_owned(),
        Outcome::OtherAreaCode { id, fourteen_number } => l
            .t(
                format!("gemeente {} — niet op dit netnummer; bel {}", name(id), spaced(fourteen_number)),
                format!("municipality {} — not on this area code; call {}", name(id), spaced(fourteen_number)),
            )
            .into_owned(),
        Outcome::NotConnected { id, general_number } => l
            .t(
                format!("gemeente {} — niet aangesloten; algemeen nummer {}", name(id), general_number.raw),
                format!("municipality {} — not connected; general number {}", name(id), general_number.raw),
            )
            .into_owned(),
        Outcome::Ambiguous { options } => {
            let names: Vec<String> = options.iter().map(name).collect();
            l.t(format!("onduidelijk, vraag door: {}", names.join(" / ")), format!("ambiguous, ask again: {}", names.join(" / "))).into_owned()
        }
        Outcome::NoMatch => l.t("niet herkend", "not recognised").into_owned(),
    };
    format!("{} \"{text}\": {what} ({} {:.2})\n", l.t("Gezegd", "Said"), l.t("zekerheid", "confidence"), r.confidence)
}

fn mode(m: DeliveryMode, l: OutLang) -> String {
    match m {
        DeliveryMode::Redirect => l.t("redirect (302, platform verlaat het gesprek)", "redirect (302, the platform leaves the call)").into(),
        DeliveryMode::Bridge => l.t("bridge (platform blijft in het gesprek)", "bridge (the platform stays in the call)").into(),
    }
}

fn spaced(fourteen: &str) -> String {
    format!("14 {}", fourteen.get(2..).unwrap_or(""))
}

/// Human-readable rendering of a decision.
pub fn render(d: &Decision, plan: &Plan, l: OutLang) -> String {
    let mut o = String::new();
    match d {
        Decision::Forward { municipality: m, fourteen, destination, mode: md, destination_configured, route, .. } => {
            let _ = writeln!(
                o,
                "{} {} ({}) — {}",
                l.t("Doorverbinden met gemeente", "Forward to municipality"),
                m.name,
                m.cbs,
                spaced(fourteen)
            );
            let _ = writeln!(o, "  {}: {destination}", l.t("bestemming", "destination"));
            let _ = writeln!(o, "  {}: {}", l.t("wijze", "mode"), mode(*md, l));
            if !destination_configured {
                let why = Settings::no_default_destination(plan, m.id);
                let (nl, en) = why.map_or_else(Default::default, |w| (format!(" ({w})"), format!(" ({})", w.english())));
                let _ = writeln!(
                    o,
                    "  {}",
                    l.t(
                        format!("LET OP: nog geen eigen bestemming ingesteld{nl}"),
                        format!("NOTE: no destination configured yet{en}")
                    )
                );
            }
            for (i, step) in route.iter().enumerate() {
                let s = match step {
                    RouteStep::Announcement { message } => format!("{}: \"{message}\"", l.t("mededeling", "announcement")),
                    RouteStep::Primary { destination, .. } => format!("{}: {destination}", l.t("primair", "primary")),
                    RouteStep::Overflow { destination, after_secs } => {
                        format!("{} {after_secs} s: {destination}", l.t("overloop na", "overflow after"))
                    }
                    RouteStep::Calamity { destination } => format!("{}: {destination}", l.t("calamiteitenlijn", "calamity line")),
                };
                let _ = writeln!(o, "  {}. {s}", i + 1);
            }
        }
        Decision::Ask { fourteen, candidates, caller_area_match, .. } => {
            let _ = writeln!(
                o,
                "{} {} {}",
                spaced(fourteen),
                l.t("wordt gedeeld door", "is shared by"),
                l.t(format!("{} gemeenten; vraag de beller:", candidates.len()), format!("{} municipalities; ask the caller:", candidates.len()))
            );
            for c in candidates {
                let digit = c.digit.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
                let mut note = String::new();
                if c.municipality.everyday_name != c.municipality.name {
                    let _ = write!(note, " ({})", c.municipality.everyday_name);
                }
                match c.status {
                    veertien_core::ConnectionStatus::NotConnected => {
                        note.push_str(&l.t(" — niet aangesloten", " — not connected"));
                    }
                    veertien_core::ConnectionStatus::Technical => {
                        note.push_str(&l.t(" — technisch: niet in het menu", " — technical: not in the menu"));
                    }
                    veertien_core::ConnectionStatus::Active => {}
                }
                let _ = writeln!(o, "  {digit}  {}{note}", c.municipality.name);
            }
            if let Some(m) = caller_area_match {
                let _ = writeln!(
                    o,
                    "  {}",
                    l.t(
                        format!("De beller ({}) belt zelf uit netnummer {}; toch vragen.", m.caller, m.area_code),
                        format!("The caller ({}) is in area code {} too; ask anyway.", m.caller, m.area_code)
                    )
                );
            }
        }
        Decision::Announce { municipality: m, fourteen, reason, general_number, forward_to, message, opens_at, .. } => {
            let head = match reason {
                AnnounceReason::NotConnected => l.t(
                    format!("Gemeente {} is niet aangesloten op {}.", m.name, spaced(fourteen)),
                    format!("Municipality {} is not connected to {}.", m.name, spaced(fourteen)),
                ),
                AnnounceReason::Closed => l.t(format!("Gemeente {} is nu gesloten.", m.name), format!("Municipality {} is closed now.", m.name)),
                AnnounceReason::Calamity => l.t(format!("Calamiteit bij gemeente {}.", m.name), format!("Calamity at municipality {}.", m.name)),
            };
            let _ = writeln!(o, "{head}");
            if let Some(msg) = message {
                let _ = writeln!(o, "  {}: \"{msg}\"", l.t("mededeling", "message"));
            }
            if let Some(t) = opens_at {
                let _ = writeln!(o, "  {}: {t}", l.t("weer open", "opens again"));
            }
            let _ = writeln!(o, "  {}: {} ({})", l.t("algemeen nummer", "general number"), general_number.raw, general_number.dial);
            if let Some(f) = forward_to {
                let _ = writeln!(o, "  {}: {f}", l.t("daarna doorverbinden met", "then forward to"));
            }
        }
        Decision::Reject { reason } => {
            let _ = writeln!(o, "{}: {reason}", l.t("Geweigerd", "Rejected"));
        }
    }
    o
}
