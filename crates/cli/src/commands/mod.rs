//! One module per subcommand, plus what they share: loading the plan and settings, bilingual text.

/// `println!` that ends the process quietly when stdout is closed (`veertien ... | head`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}

/// `print!` counterpart of `outln!`.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if write!(std::io::stdout().lock(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}

pub mod plan;
pub mod route;
pub mod settings;
pub mod model;
pub mod speech;
pub mod serve;
pub mod calls;
pub mod user;
pub mod prompts;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use veertien_core::{Plan, Settings};

/// Language of human-readable output: Dutch first, English available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutLang {
    #[default]
    Nl,
    En,
}

impl OutLang {
    pub fn t<'a>(self, nl: impl Into<Cow<'a, str>>, en: impl Into<Cow<'a, str>>) -> Cow<'a, str> {
        match self {
            OutLang::Nl => nl.into(),
            OutLang::En => en.into(),
        }
    }
}

/// Options every command that needs a plan and settings accepts.
#[derive(Args, Debug, Clone)]
pub struct Sources {
    /// Map met een (gecorrigeerd) nummerplan / directory with a (corrected) number plan [default: the shipped plan]
    #[arg(long, value_name = "DIR")]
    pub plan: Option<PathBuf>,
    /// Instellingenbestand (TOML) / settings file (TOML) [default: the built-in defaults]
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,
    /// Taal van de uitvoer / output language
    #[arg(long, value_enum, default_value_t = OutLang::Nl)]
    pub lang: OutLang,
}

pub enum PlanRef {
    Builtin(&'static Plan),
    Loaded(Box<Plan>),
}

impl std::ops::Deref for PlanRef {
    type Target = Plan;
    fn deref(&self) -> &Plan {
        match self {
            PlanRef::Builtin(p) => p,
            PlanRef::Loaded(p) => p,
        }
    }
}

pub fn load_plan(dir: Option<&Path>) -> anyhow::Result<PlanRef> {
    match dir {
        None => Ok(PlanRef::Builtin(Plan::builtin())),
        Some(d) => Ok(PlanRef::Loaded(Box::new(Plan::load_dir(d)?))),
    }
}

pub fn load_settings(file: Option<&Path>, plan: &Plan) -> anyhow::Result<Settings> {
    match file {
        None => Ok(Settings::defaults(plan)),
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
            Settings::from_toml_str(&text, plan).with_context(|| format!("{}", f.display()))
        }
    }
}
