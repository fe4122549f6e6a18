//! `veertien plan check [DIR]` and `veertien plan show <area code|municipality>`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;
use veertien_core::text::fold;
use veertien_core::{AreaCode, Municipality, Plan, PlanError, Settings, normalise};

use super::{OutLang, Sources, load_plan, load_settings};

#[derive(Subcommand, Debug)]
pub enum PlanCommand {
    /// Een nummerplan controleren en tellen / validate a number plan and print its counts
    Check {
        /// Map met de zes CSV-bestanden / directory with the six CSV files [default: the shipped plan]
        dir: Option<PathBuf>,
        /// Instellingen om te tonen welke gemeenten nog geen bestemming hebben / settings to report unconfigured destinations against
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = OutLang::Nl)]
        lang: OutLang,
    },
    /// Een netnummer of gemeente tonen / show an area code or a municipality
    Show {
        /// "0113", "140113", "Kapelle", "Den Bosch", "GM0664", or a place ("Weesp")
        query: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        sources: Sources,
    },
}

pub fn run(c: PlanCommand) -> anyhow::Result<ExitCode> {
    match c {
        PlanCommand::Check { dir, settings, json, lang } => check(dir, settings, json, lang),
        PlanCommand::Show { query, json, sources } => show(&query, json, &sources),
    }
}

fn check(dir: Option<PathBuf>, settings: Option<PathBuf>, as_json: bool, l: OutLang) -> anyhow::Result<ExitCode> {
    let plan = match load_plan(dir.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            if let Some(pe) = e.downcast_ref::<PlanError>()
                && !pe.issues().is_empty()
            {
                eprintln!("{}", l.t(format!("Nummerplan geweigerd: {} probleem/problemen", pe.issues().len()), format!("Number plan refused: {} problem(s)", pe.issues().len())));
                for i in pe.issues() {
                    eprintln!("  {i}");
                }
                return Ok(ExitCode::from(1));
            }
            return Err(e);
        }
    };
    let s = load_settings(settings.as_deref(), &plan)?;
    let c = plan.counts();
    let former = plan.former_municipalities();
    let with_successor = former.iter().filter(|f| f.successor.is_some()).count();
    let unconfigured: Vec<&Municipality> = s.unconfigured().map(|id| plan.municipality(id)).collect();
    let source = dir.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "builtin".into());
    if as_json {
        let out = json!({
            "source": source,
            "counts": c,
            "former_municipalities": former.len(),
            "former_with_successor": with_successor,
            "warnings": plan.warnings().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "trunk": s.trunk(),
            "unconfigured_destinations": unconfigured.iter().map(|m| json!({
                "cbs": m.cbs,
                "municipality": m.name,
                "general_number": m.general_number.raw,
                "why": Settings::no_default_destination(&plan, m.id).map(|w| w.english()),
            })).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{} ({source})", l.t("Nummerplan OK", "Number plan OK"));
    outln!("  {}: {}", l.t("gemeenten", "municipalities"), c.municipalities);
    outln!("  {}: {} ({} {})", l.t("netnummers", "area codes"), c.area_codes, c.shared_area_codes, l.t("gedeeld", "shared"));
    outln!("  {}: {}", l.t("netnummer/gemeente-paren", "area code/municipality pairs"), c.pairs);
    outln!("  {}: {}", l.t("woonplaatsen", "places"), c.places);
    outln!(
        "  {}: {} ({} {}, {} {})",
        l.t("herindelingen", "merger events"),
        c.merger_events,
        former.len(),
        l.t("voormalige gemeenten", "former municipalities"),
        with_successor,
        l.t("met bekende opvolger", "with known successor")
    );
    outln!("  {}: {}", l.t("algemeen nummer is een 14+ nummer", "general number is a 14+ number"), c.fourteen_general_numbers);
    if !plan.warnings().is_empty() {
        outln!("{} ({}):", l.t("Waarschuwingen", "Warnings"), plan.warnings().len());
        for w in plan.warnings() {
            outln!("  {w}");
        }
    }
    if !unconfigured.is_empty() {
        outln!(
            "{} ({}) — {} {}:",
            l.t("Zonder eigen bestemming", "Without a destination of their own"),
            unconfigured.len(),
            l.t("oproepen gaan naar de trunk", "calls go to the trunk"),
            s.trunk()
        );
        for m in &unconfigured {
            match Settings::no_default_destination(&plan, m.id) {
                Some(why) => outln!("  {} {}: {}", m.cbs, m.name, l.t(why.to_string(), why.english())),
                None => outln!("  {} {} ({})", m.cbs, m.name, m.general_number.raw),
            }
        }
    }
    if s.trunk_is_placeholder() && !unconfigured.is_empty() {
        outln!(
            "{}",
            l.t(
                "LET OP: de trunk is nog de placeholder (.invalid); stel platform.trunk of per gemeente destination in.",
                "NOTE: the trunk is still the placeholder (.invalid); set platform.trunk or a destination per municipality."
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}

enum Found<'a> {
    Code(&'a AreaCode),
    Muni(&'a Municipality, Option<String>),
}

fn find<'a>(plan: &'a Plan, q: &str) -> Option<Found<'a>> {
    let t = q.trim();
    if let Ok(n) = normalise(t)
        && let Some(a) = plan.area_code(n.area_code())
    {
        return Some(Found::Code(a));
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return plan.area_code(t).map(Found::Code);
    }
    if let Some(id) = plan.by_cbs(t).or_else(|| plan.by_name(t)) {
        return Some(Found::Muni(plan.municipality(id), None));
    }
    let key = fold(t);
    let places: Vec<_> = plan.places().iter().filter(|p| fold(&p.name) == key || fold(&p.base_name) == key).collect();
    if let Some(f) = plan.former_municipalities().iter().find(|f| fold(&f.name) == key)
        && let Some(s) = f.successor
    {
        let note = format!("{} was a municipality until {}; now part of {}", f.name, f.ended, plan.municipality(s).name);
        return Some(Found::Muni(plan.municipality(s), Some(note)));
    }
    if let [p] = places.as_slice() {
        let m = plan.municipality(p.municipality);
        return Some(Found::Muni(m, Some(format!("{} is a place in {}", p.name, m.name))));
    }
    None
}

fn show(q: &str, as_json: bool, src: &Sources) -> anyhow::Result<ExitCode> {
    let plan = load_plan(src.plan.as_deref())?;
    let settings = load_settings(src.settings.as_deref(), &plan)?;
    let l = src.lang;
    let Some(found) = find(&plan, q) else {
        let key = fold(q.trim());
        let places: Vec<String> = plan
            .places()
            .iter()
            .filter(|p| fold(&p.base_name) == key)
            .map(|p| format!("{} ({})", p.name, plan.municipality(p.municipality).name))
            .collect();
        if places.len() > 1 {
            eprintln!("veertien: {}: {}", l.t(format!("'{q}' is een woonplaats in meerdere gemeenten"), format!("'{q}' is a place in several municipalities")), places.join(", "));
        } else {
            eprintln!("veertien: {}", l.t(format!("'{q}' is geen netnummer, gemeente of woonplaats van het plan"), format!("'{q}' is not an area code, municipality or place of the plan")));
        }
        return Ok(ExitCode::from(1));
    };
    match found {
        Found::Code(a) => show_code(&plan, &settings, a, as_json, l)?,
        Found::Muni(m, note) => show_muni(&plan, &settings, m, note, as_json, l)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn show_code(plan: &Plan, s: &Settings, a: &AreaCode, as_json: bool, l: OutLang) -> anyhow::Result<()> {
    let menu = s.menu(a.id);
    if as_json {
        let entries: Vec<_> = menu
            .iter()
            .map(|e| {
                let m = plan.municipality(e.municipality);
                json!({"municipality": m.name, "cbs": m.cbs, "digit": e.digit, "advertised": e.advertised, "status": s.get(e.municipality).status})
            })
            .collect();
        let out = json!({"area_code": a.code, "fourteen": a.fourteen, "region_name": a.region_name, "alt_region_name": a.alt_region_name, "municipalities": entries});
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let alt = if a.alt_region_name.is_empty() { String::new() } else { format!(" / {}", a.alt_region_name) };
    outln!("{} {} — 14 {} — {}{alt}", l.t("Netnummer", "Area code"), a.code, a.code, a.region_name);
    for e in menu {
        let m = plan.municipality(e.municipality);
        let digit = e.digit.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
        outln!("  {digit}  {} ({}) — {}", m.name, m.cbs, s.get(e.municipality).status.as_str());
    }
    Ok(())
}

fn show_muni(plan: &Plan, s: &Settings, m: &Municipality, note: Option<String>, as_json: bool, l: OutLang) -> anyhow::Result<()> {
    let ms = s.get(m.id);
    let codes: Vec<&AreaCode> = plan.area_codes_of(m.id).collect();
    let places: Vec<&str> = plan.places_of(m.id).map(|p| p.name.as_str()).collect();
    let former: Vec<&str> = plan.former_municipalities().iter().filter(|f| f.successor == Some(m.id)).map(|f| f.name.as_str()).collect();
    if as_json {
        let out = json!({
            "note": note,
            "municipality": m.name, "cbs": m.cbs, "everyday_name": m.everyday_name, "official_name": m.official_name,
            "province": m.province, "population": m.population, "general_number": m.general_number,
            "area_codes": codes.iter().map(|a| json!({"area_code": a.code, "fourteen": a.fourteen,
                "digit": s.menu(a.id).iter().find(|e| e.municipality == m.id).and_then(|e| e.digit)})).collect::<Vec<_>>(),
            "places": places, "former_municipalities": former,
            "status": ms.status, "destination": s.destination_uri(m.id), "mode": ms.mode,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if let Some(n) = note {
        outln!("({n})");
    }
    outln!("{} ({}) — {}, {} {}", m.name, m.cbs, m.province, m.population, l.t("inwoners", "inhabitants"));
    if m.everyday_name != m.name {
        outln!("  {}: {}", l.t("ook bekend als", "also known as"), m.everyday_name);
    }
    outln!("  {}: {}", l.t("officiële naam", "official name"), m.official_name);
    outln!("  {}: {}", l.t("algemeen nummer", "general number"), m.general_number.raw);
    for a in &codes {
        let digit = s.menu(a.id).iter().find(|e| e.municipality == m.id).and_then(|e| e.digit);
        let how = if a.is_shared() {
            match digit {
                Some(d) => l.t(format!("gedeeld, toets {d}"), format!("shared, key {d}")).into_owned(),
                None => l.t("gedeeld, niet in menu", "shared, not in menu").into_owned(),
            }
        } else {
            l.t("alleen deze gemeente", "this municipality only").into_owned()
        };
        outln!("  14 {} ({}) — {how}", a.code, a.region_name);
    }
    outln!("  status: {} — {}: {} ({})", ms.status.as_str(), l.t("bestemming", "destination"), s.destination_uri(m.id), ms.mode.as_str());
    if !former.is_empty() {
        outln!("  {}: {}", l.t("voormalige gemeenten", "former municipalities"), former.join(", "));
    }
    outln!("  {} ({}): {}", l.t("woonplaatsen", "places"), places.len(), places.join(", "));
    Ok(())
}
