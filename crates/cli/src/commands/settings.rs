//! `veertien settings defaults|check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{load_plan, load_settings};

#[derive(Subcommand, Debug)]
pub enum SettingsCommand {
    /// Standaardinstellingen als TOML / print the default settings as TOML
    Defaults {
        /// Map met een nummerplan / number plan directory [default: the shipped plan]
        #[arg(long, value_name = "DIR")]
        plan: Option<PathBuf>,
    },
    /// Een instellingenbestand controleren / validate a settings file
    Check {
        file: PathBuf,
        #[arg(long, value_name = "DIR")]
        plan: Option<PathBuf>,
    },
}

pub fn run(c: SettingsCommand) -> anyhow::Result<ExitCode> {
    match c {
        SettingsCommand::Defaults { plan } => {
            let plan = load_plan(plan.as_deref())?;
            out!("{}", veertien_core::Settings::defaults(&plan).to_toml_string());
        }
        SettingsCommand::Check { file, plan } => {
            let plan = load_plan(plan.as_deref())?;
            let s = load_settings(Some(&file), &plan)?;
            let unconfigured = s.unconfigured().count();
            outln!("{}: OK", file.display());
            outln!("  trunk: {}{}", s.trunk(), if s.trunk_is_placeholder() { " (placeholder: not routable)" } else { "" });
            outln!("  municipalities on the trunk (no own destination): {unconfigured}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
