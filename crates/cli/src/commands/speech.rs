//! `veertien speech eval`: closed-set recognition accuracy and latency on a manifest.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum SpeechCommand {
    /// Herkenning meten op een manifest / evaluate recognition on a manifest
    /// (`wav<TAB>expected<TAB>cand;cand;…`, paths relative to the manifest)
    Eval {
        manifest: PathBuf,
        /// JSON-uitvoer / JSON output (keys n, accuracy, gated_accuracy, coverage, latency_p50_ms, latency_p95_ms, …)
        #[arg(long)]
        json: bool,
        /// Betrouwbaarheidsdrempel / confidence gate [default: the recognizer's]
        #[arg(long)]
        gate: Option<f32>,
        /// Softmax-temperatuur / softmax temperature [default: the recognizer's]
        #[arg(long)]
        temperature: Option<f32>,
        /// Inwonertallen als prior (gemeenten.csv) / population prior (gemeenten.csv)
        #[arg(long, value_name = "CSV")]
        population: Option<PathBuf>,
        /// Alleen de eerste N uitingen / only the first N utterances
        #[arg(long)]
        limit: Option<usize>,
        /// Modelmap / model directory [default: $VEERTIEN_MODEL_DIR or ~/.cache/veertien/whisper-base]
        #[arg(long, value_name = "DIR")]
        model_dir: Option<PathBuf>,
        /// Voortgang per uiting / progress per utterance (stderr)
        #[arg(short, long)]
        verbose: bool,
    },
}

pub fn run(cmd: SpeechCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SpeechCommand::Eval { manifest, json, gate, temperature, population, limit, model_dir, verbose } => {
            let dir = model_dir.unwrap_or_else(veertien_speech::default_model_dir);
            let rec = veertien_speech::Recognizer::load(&dir)?;
            let population = population
                .map(|p| veertien_speech::population_from_csv(&p))
                .transpose()?;
            let opts = veertien_speech::EvalOptions { gate, temperature, population, limit, verbose };
            let report = veertien_speech::evaluate(&rec, &manifest, &opts)
                .with_context(|| format!("evaluating {}", manifest.display()))?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                out!("{}", report.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
