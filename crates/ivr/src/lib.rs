//! veertien-ivr: the dialogue for a shared 14+ area code ("which municipality?").
//!
//! [`Dialogue`] is an explicit, I/O-free state machine: the driver feeds it [`Event`]s (keys,
//! recogniser results, prompt ends, no-input timeouts, hang-up) and performs the [`Action`]s it
//! returns (play a prompt with barge-in, stop the prompt, finish with a [`DialogueOutcome`]).
//! Every path ends at a municipality, an operator or a spoken message; the number of events a
//! dialogue accepts is bounded, so no event sequence can keep a caller in a loop.
//!
//! [`prompts`] holds the prompt texts (Dutch, English, Frisian) as data, assembled from pieces
//! (phrase + name + phrase) so audio for fixed phrases and for names can be generated once.

pub mod announce;
pub mod audio;
pub mod dialogue;
pub mod driver;
pub mod library;
pub mod prompts;
pub mod spoken;

pub use dialogue::{
    Action, AnnounceKind, Dialogue, DialogueConfig, DialogueLog, DialogueOutcome, Event, Grammar,
    Input, LogEntry, LogWhat,
};
pub use driver::{
    CallerHistory, IvrLimits, IvrResult, IvrSetup, IvrStats, LiveScore, NameScope, NameScore,
    NameScorer, PlanAndSettings, PlanView, RecognizerScorer, ScoreError, ScoreRequest, Signal, run,
};
pub use library::{LibraryError, PromptLibrary, Rendered};
pub use prompts::{MenuItem, Piece, PieceKind, Prompt, prompt_lang};
