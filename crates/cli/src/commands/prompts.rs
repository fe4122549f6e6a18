//! `veertien prompts build`: generate the IVR's prompt audio (espeak-ng + sox) into a prompts
//! directory, incrementally (see crates/ivr/src/audio.rs and library.rs).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use veertien_core::Lang;
use veertien_ivr::audio::{BuildProgress, audio_plan, build, tools_available};
use veertien_ivr::prompts::PieceKind;

use super::load_plan;

#[derive(Subcommand, Debug)]
pub enum PromptsCommand {
    /// Gesproken prompts genereren (espeak-ng) / generate the spoken prompts (espeak-ng)
    Build(BuildArgs),
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Promptmap / prompts directory
    #[arg(long, value_name = "DIR", default_value = "prompts")]
    pub dir: PathBuf,
    /// Talen / languages (nl, en, fy; de is spoken in English)
    #[arg(long, value_delimiter = ',', default_value = "nl,en,fy")]
    pub lang: Vec<String>,
    /// Alleen de namen van de gemeenten van dit netnummer (plus alle vaste zinnen) / only the
    /// names of this area code's municipalities (plus every fixed phrase)
    #[arg(long, value_name = "AREA_CODE")]
    pub area: Option<String>,
    /// Alleen vaste zinnen en getallen, geen namen / only fixed phrases and numbers, no names
    #[arg(long)]
    pub only_fixed: bool,
    /// Map met een (gecorrigeerd) nummerplan / directory with a (corrected) number plan
    #[arg(long, value_name = "DIR")]
    pub plan: Option<PathBuf>,
}

pub fn run(cmd: PromptsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PromptsCommand::Build(a) => build_cmd(a),
    }
}

fn parse_lang(s: &str) -> anyhow::Result<Lang> {
    Ok(match s.trim().to_ascii_lowercase().as_str() {
        "nl" => Lang::Nl,
        "en" => Lang::En,
        "fy" => Lang::Fy,
        "de" => Lang::De,
        other => bail!("onbekende taal / unknown language {other:?} (nl, en, fy, de)"),
    })
}

fn build_cmd(a: BuildArgs) -> anyhow::Result<ExitCode> {
    let plan = load_plan(a.plan.as_deref())?;
    let langs = a
        .lang
        .iter()
        .map(|l| parse_lang(l))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let names: Option<Vec<String>> = match &a.area {
        None => None,
        Some(code) => {
            let id = plan.area_code_id(code.trim()).with_context(|| {
                format!("netnummer / area code {code:?} staat niet in het nummerplan / is not in the number plan")
            })?;
            Some(
                plan.area_code_by_id(id)
                    .municipalities
                    .iter()
                    .map(|m| plan.municipality(*m).everyday_name.clone())
                    .collect(),
            )
        }
    };
    let mut items = audio_plan(&plan, &langs);
    items.retain(|it| match it.kind {
        PieceKind::Name if a.only_fixed => false,
        PieceKind::Name => names.as_ref().is_none_or(|n| n.contains(&it.text)),
        _ => true,
    });
    // The same text in one language is one file (e.g. "acht" is a number and a phrase piece).
    let mut seen = std::collections::HashSet::new();
    items.retain(|it| seen.insert(it.file.clone()));
    if !tools_available() {
        bail!(
            "espeak-ng en sox zijn nodig / espeak-ng and sox are needed: apt-get install espeak-ng sox"
        );
    }
    let tty = std::io::stderr().is_terminal();
    let t0 = Instant::now();
    let report = build(&items, &a.dir, |p: BuildProgress<'_>| {
        if tty {
            eprint!(
                "\r\x1b[K[{}/{}] {} {:?}",
                p.done,
                p.total,
                p.item.lang.as_str(),
                p.item.text
            );
        } else if p.generated || p.done == p.total {
            eprintln!(
                "[{}/{}] {} {:?}",
                p.done,
                p.total,
                p.item.lang.as_str(),
                p.item.text
            );
        }
    })?;
    if tty {
        eprintln!();
    }
    outln!(
        "{} gegenereerd, {} al actueel / {} generated, {} up to date — {:.1} MB in {} ({:.1} s)",
        report.generated,
        report.cached,
        report.generated,
        report.cached,
        report.bytes as f64 / 1e6,
        a.dir.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
