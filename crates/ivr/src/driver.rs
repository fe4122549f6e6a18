//! The async driver under the [`Dialogue`] state machine: one caller, one media leg.
//!
//! [`run`] starts a [`MediaSession`] on the call's RTP socket and moves between the two:
//!
//! | from | to the dialogue |
//! |---|---|
//! | RFC 4733 / in-band / SIP INFO ([`Signal::Dtmf`]) key | [`Event::Dtmf`] (the media leg has already cut a barge-in prompt) |
//! | voice activity starts | [`Event::SpeechStarted`] (only while the dialogue listens for speech); recognition begins ([`NameScorer::begin`]) |
//! | audio while the caller speaks | pushed to the recognition in progress, which scores each pause in the background |
//! | an utterance ends | the [`NameScorer`]'s answer for it (usually ready already), with the priors (population, the caller's [`CallerHistory`]) → [`Event::HeardRanked`], or [`Event::NotUnderstood`] on failure / after [`IvrLimits::score_timeout`] |
//! | the last prompt of a `Play` ends | [`Event::PromptFinished`], then the no-input timer ([`Input::no_input_ms`]) → [`Event::Timeout`] |
//! | speech started but no utterance followed | [`Event::NotUnderstood`] |
//! | no RTP for [`SessionConfig::media_timeout`], [`Signal::HangUp`] | [`Event::HangUp`] |
//!
//! and performs the dialogue's actions: `Play` renders the prompts from the [`PromptLibrary`]
//! and queues them (barge-in by key, and by speech only when a speech grammar is active),
//! `StopPrompt` stops playback, `Finish` ends the run.
//!
//! **Every path ends.** Each prompt has a deadline (its length plus a margin), every wait for
//! input a timer, recognition a timeout; and the whole dialogue a hard bound
//! ([`IvrLimits::max_duration`]): when it passes, the dialogue is driven to its closing message
//! (which plays, within [`IvrLimits::closing_grace`]) and the run returns. The media socket is
//! handed back in [`IvrResult`], still bound, so the bridge can reuse the port that the early
//! media SDP announced.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use veertien_core::{Decision, Lang, Plan, Settings};
use veertien_media::dtmf::Digit;
use veertien_media::pacer::{Prompt as MediaPrompt, PromptAudio};
use veertien_media::ports::MediaSocket;
use veertien_media::sdp::Negotiated;
use veertien_media::session::{MediaEvent, MediaSession, SessionConfig, SessionStats};
use veertien_names::MatchKind;
use veertien_speech::Priors;

use crate::dialogue::{
    Action, AnnounceKind, Dialogue, DialogueConfig, DialogueLog, DialogueOutcome, Event, Grammar,
    Input, LogWhat,
};
use crate::library::PromptLibrary;
use crate::prompts::{Prompt, prompt_lang};

/// The routing data a dialogue reads: the number plan and the municipalities' settings, from
/// one snapshot for the whole call. The server implements it for its routing snapshot, so a
/// call costs one `Arc` clone; [`PlanAndSettings`] serves everyone else.
pub trait PlanView: Send + Sync + 'static {
    fn plan(&self) -> &Plan;
    fn settings(&self) -> &Settings;
}

/// A plan and settings held together.
#[derive(Debug, Clone)]
pub struct PlanAndSettings {
    pub plan: Arc<Plan>,
    pub settings: Arc<Settings>,
}

impl PlanView for PlanAndSettings {
    fn plan(&self) -> &Plan {
        &self.plan
    }
    fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// What the SIP side tells the dialogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A key from SIP INFO (`application/dtmf-relay`, `application/dtmf`).
    Dtmf(char),
    /// CANCEL or BYE from the caller.
    HangUp,
}

/// The recogniser's answer for one utterance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NameScore {
    /// The best phrase, as given.
    pub text: String,
    /// Calibrated probability that `text` is what was said (0–1).
    pub confidence: f32,
    /// The best phrase of each of the best keys with the key's probability, best first (at
    /// most 5).
    pub top: Vec<(String, f32)>,
    /// The priors, not the audio, made `text` the winner (the dialogue then confirms).
    pub prior_decided: bool,
    /// The answer was computed while the caller was still on the line (before the VAD
    /// declared the end of speech).
    pub speculative: bool,
    /// Time waiting for a free core.
    pub queued: Duration,
    /// Time computing.
    pub compute: Duration,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ScoreError(pub String);

/// A boxed future, as trait objects need.
pub type ScoreFuture = Pin<Box<dyn Future<Output = Result<NameScore, ScoreError>> + Send>>;

/// What to listen for in one utterance.
#[derive(Debug, Clone)]
pub struct ScoreRequest {
    /// `(phrase, key)`: the key is what a phrase's score counts towards — the municipality's
    /// CBS code for a name, so a municipality's aliases rank as one candidate and the priors
    /// apply to it; the word itself for yes/no.
    pub phrases: Arc<[(String, String)]>,
    /// Population and the caller's earlier confirmed choices, keyed like `phrases`.
    pub priors: Priors<String>,
}

impl ScoreRequest {
    /// The phrases, without priors.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.phrases.iter().map(|(t, _)| t.as_str())
    }
}

/// "Score this utterance against these phrases": closed-set recognition as the driver needs
/// it. `pcm` is 8 kHz mono PCM16 (the endpointed utterance with pre-roll). Implementations
/// must bound their own CPU use.
pub trait NameScorer: Send + Sync {
    fn score(&self, pcm: Vec<i16>, request: ScoreRequest) -> ScoreFuture;

    /// Starts recognising an utterance while it is being spoken, so that little is left to do
    /// when the VAD declares its end. `None`: not supported, the driver calls [`Self::score`]
    /// with the whole utterance instead.
    fn begin(&self, _request: ScoreRequest) -> Option<Box<dyn LiveScore>> {
        None
    }
}

/// An utterance being scored as it arrives ([`NameScorer::begin`]). Dropping it cancels the
/// work (a key was pressed, the question changed, the caller hung up).
pub trait LiveScore: Send {
    /// The next samples of the utterance, from its first (pre-roll) sample on. Never blocks.
    fn push(&mut self, pcm: &[i16]);
    /// The VAD's utterance: the answer for exactly this audio.
    fn finish(self: Box<Self>, pcm: Vec<i16>) -> ScoreFuture;
}

/// [`NameScorer`] on [`veertien_speech::Recognizer`]. Its CPU is bounded by the recogniser's
/// own thread pool (one per process); `score` additionally waits for one of `permits` (default:
/// the machine's cores) before it blocks a thread of tokio's blocking pool, so a burst of
/// callers queues instead of piling up threads. Share one per process.
#[derive(Clone)]
pub struct RecognizerScorer {
    recognizer: Arc<veertien_speech::Recognizer>,
    permits: Arc<Semaphore>,
}

impl RecognizerScorer {
    pub fn new(recognizer: Arc<veertien_speech::Recognizer>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_permits(recognizer, cores)
    }

    pub fn with_permits(recognizer: Arc<veertien_speech::Recognizer>, permits: usize) -> Self {
        RecognizerScorer {
            recognizer,
            permits: Arc::new(Semaphore::new(permits.max(1))),
        }
    }

    pub fn recognizer(&self) -> &Arc<veertien_speech::Recognizer> {
        &self.recognizer
    }
}

fn name_score(
    ranked: veertien_speech::Ranked<String>,
    queued: Duration,
    compute: Duration,
    speculative: bool,
) -> NameScore {
    let best = &ranked.scores[0];
    NameScore {
        text: best.phrase.clone(),
        confidence: ranked.confidence,
        top: ranked
            .scores
            .iter()
            .take(5)
            .map(|s| (s.phrase.clone(), s.probability))
            .collect(),
        prior_decided: ranked.prior_decided,
        speculative,
        queued,
        compute,
    }
}

impl NameScorer for RecognizerScorer {
    fn score(&self, pcm: Vec<i16>, request: ScoreRequest) -> ScoreFuture {
        let rec = self.recognizer.clone();
        let permits = self.permits.clone();
        Box::pin(async move {
            let t0 = std::time::Instant::now();
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|_| ScoreError("recogniser closed".into()))?;
            let queued = t0.elapsed();
            let ranked = tokio::task::spawn_blocking(move || {
                rec.score_with(&pcm, &request.phrases, &request.priors)
            })
            .await
            .map_err(|e| ScoreError(format!("recogniser task: {e}")))?
            .map_err(|e| ScoreError(e.to_string()))?;
            let compute = ranked.latency;
            Ok(name_score(ranked, queued, compute, false))
        })
    }

    fn begin(&self, request: ScoreRequest) -> Option<Box<dyn LiveScore>> {
        let utterance = self
            .recognizer
            .begin(request.phrases.to_vec(), request.priors);
        Some(Box::new(LiveRecognition { utterance }))
    }
}

struct LiveRecognition {
    utterance: veertien_speech::Utterance<String>,
}

impl LiveScore for LiveRecognition {
    fn push(&mut self, pcm: &[i16]) {
        self.utterance.push(pcm);
    }

    fn finish(self: Box<Self>, pcm: Vec<i16>) -> ScoreFuture {
        let utterance = self.utterance;
        Box::pin(async move {
            // No permit here: `finish` mostly waits for the background result (a permit held
            // while waiting would make ready answers queue behind unready ones), and when it
            // scores itself the recogniser's own pool bounds the CPU. At most one blocking
            // thread per IVR call (`[ivr] max_calls`).
            let f = tokio::task::spawn_blocking(move || utterance.finish_detailed(&pcm))
                .await
                .map_err(|e| ScoreError(format!("recogniser task: {e}")))?
                .map_err(|e| ScoreError(e.to_string()))?;
            // Time beyond the scoring itself: waiting for the pool (or for the background run).
            let queued = f.ranked.latency.saturating_sub(if f.speculative { Duration::ZERO } else { f.compute });
            Ok(name_score(f.ranked, queued, f.compute, f.speculative))
        })
    }
}

/// The caller's earlier confirmed choices (municipality CBS code, times), looked up by the SIP
/// side without the call waiting for it: the driver reads it when the caller starts speaking
/// (the welcome prompt gives the lookup seconds), and an unfinished lookup counts as none.
#[derive(Debug, Clone, Default)]
pub struct CallerHistory(Arc<std::sync::OnceLock<Vec<(String, u32)>>>);

impl CallerHistory {
    /// Not known (yet).
    pub fn pending() -> Self {
        Self::default()
    }

    /// Already known.
    pub fn known(choices: Vec<(String, u32)>) -> Self {
        let h = Self::default();
        h.fill(choices);
        h
    }

    /// Sets the choices; a second fill is ignored.
    pub fn fill(&self, choices: Vec<(String, u32)>) {
        let _ = self.0.set(choices);
    }

    pub fn get(&self) -> Option<&[(String, u32)]> {
        self.0.get().map(Vec::as_slice)
    }
}

/// Which phrases the recogniser scores for a names question. More phrases cost latency
/// roughly linearly (docs/PERFORMANCE-speech.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameScope {
    /// The candidates' names, aliases and former municipalities.
    #[default]
    Municipalities,
    /// Plus their villages and towns ("Wemeldinge" on 0113).
    WithPlaces,
    /// Plus the names of every other municipality ("Epe" on 0570): hundreds of phrases.
    WithOthers,
}

/// Bounds and tunables of one run.
#[derive(Debug, Clone)]
pub struct IvrLimits {
    /// The media leg (media timeout, jitter buffer, VAD, in-band DTMF).
    pub media: SessionConfig,
    /// Hard bound on the dialogue: past it, the dialogue is driven to its closing message.
    pub max_duration: Duration,
    /// Time allowed for the closing message once `max_duration` has passed.
    pub closing_grace: Duration,
    /// Longest wait for a recognition result, queueing included.
    pub score_timeout: Duration,
    /// A prompt that has not reported its end this long after its audio should have ended
    /// counts as ended.
    pub prompt_margin: Duration,
    pub names: NameScope,
}

impl Default for IvrLimits {
    fn default() -> Self {
        IvrLimits {
            media: SessionConfig::default(),
            max_duration: Duration::from_secs(180),
            closing_grace: Duration::from_secs(30),
            score_timeout: Duration::from_secs(8),
            prompt_margin: Duration::from_secs(3),
            names: NameScope::Municipalities,
        }
    }
}

/// Everything one IVR call needs.
pub struct IvrSetup {
    /// The caller-facing RTP socket (its port is in the SDP sent to the caller).
    pub socket: MediaSocket,
    pub negotiated: Negotiated,
    /// The routing decision; must be a `Decision::Ask`.
    pub decision: Decision,
    pub routing: Arc<dyn PlanView>,
    pub config: DialogueConfig,
    pub prompts: Arc<PromptLibrary>,
    /// `None`: keypad only (`config.speech` is switched off, with a warning logged once).
    pub scorer: Option<Arc<dyn NameScorer>>,
    /// When the call arrived (opening hours are judged at this time).
    pub started: Timestamp,
    pub limits: IvrLimits,
    /// The caller's earlier confirmed choices on this area code: a prior for recognition.
    pub history: CallerHistory,
}

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IvrStats {
    #[serde(skip)]
    pub media: SessionStats,
    pub duration_ms: u64,
    pub prompts_played: u32,
    pub utterances: u32,
    pub recognitions: u32,
    /// The VAD declaring the end of speech → recognition result, per utterance (ms).
    pub recognition_latency_ms: Vec<u64>,
    /// Results computed while the caller was still on the line (before the end of speech).
    pub recognitions_speculative: u32,
    pub media_timeout: bool,
    pub time_limit: bool,
}

/// How the run ended; the socket comes back for the bridge.
pub struct IvrResult {
    pub outcome: DialogueOutcome,
    pub log: DialogueLog,
    pub socket: MediaSocket,
    pub stats: IvrStats,
}

/// Phrases said to answer "bedoelt u …?"; the dialogue reads the answer from the text.
const YES_NO: [&str; 4] = ["ja", "nee", "yes", "no"];

enum Timer {
    /// The prompt should have ended by now.
    PromptEnd,
    NoInput,
    /// Speech started; its utterance is due.
    SpeechEnd,
    Score,
}

struct Scoring {
    result: ScoreFuture,
    /// When the VAD declared the end of speech.
    declared: Instant,
    /// End of the utterance's audio (last sound + the VAD's tail).
    audio_end: Instant,
    speech_ms: u64,
}

struct Playing {
    last_id: u64,
    input: Option<Input>,
}

struct Driver<'a> {
    dialogue: Dialogue<'a>,
    plan: &'a Plan,
    routing: Arc<dyn PlanView>,
    lang: Lang,
    prompts: Arc<PromptLibrary>,
    scorer: Option<Arc<dyn NameScorer>>,
    limits: IvrLimits,
    session: MediaSession,
    origin: Instant,
    next_id: u64,
    playing: Option<Playing>,
    /// Input of the last `Play` that takes input: what the caller may do now.
    input: Option<Input>,
    timer: Option<(Instant, Timer)>,
    scoring: Option<Scoring>,
    /// The utterance in progress, scored while the caller speaks.
    live: Option<Box<dyn LiveScore>>,
    history: CallerHistory,
    speech_barge_in: bool,
    done: Option<DialogueOutcome>,
    stats: IvrStats,
}

static KEYPAD_ONLY_WARNING: Once = Once::new();

/// Runs the dialogue for one caller until it ends; see the module documentation.
pub async fn run(setup: IvrSetup, mut signals: mpsc::Receiver<Signal>) -> IvrResult {
    let IvrSetup {
        socket,
        negotiated,
        decision,
        routing,
        mut config,
        prompts,
        scorer,
        started,
        mut limits,
        history,
    } = setup;
    let origin = Instant::now();
    if scorer.is_none() && config.speech {
        KEYPAD_ONLY_WARNING.call_once(|| {
            tracing::warn!("no speech recogniser: shared area codes get the keypad menu only (`veertien model install`)")
        });
        config.speech = false;
    }
    let view = routing.clone();
    let plan = view.plan();
    let settings = view.settings();
    let lang = config.lang;
    // Audio while the caller speaks, so recognition runs before the end of speech.
    limits.media.stream_speech = config.speech && scorer.as_ref().is_some();
    let (session, mut events) = MediaSession::start(socket, negotiated, limits.media.clone());
    let dialogue = match Dialogue::new(&decision, plan, settings, config.clone(), started) {
        Some(d) => d,
        None => {
            // Not a question this plan can ask (not an Ask, or an area code the plan no longer
            // has): say so and end, as the dialogue would after a failed choice.
            tracing::error!(?decision, "IVR started without a valid Decision::Ask");
            return refuse(session, plan, lang, &prompts, &decision, &limits, origin).await;
        }
    };
    let mut d = Driver {
        dialogue,
        plan,
        routing,
        lang,
        prompts,
        scorer,
        limits,
        session,
        origin,
        next_id: 1,
        playing: None,
        input: None,
        timer: None,
        scoring: None,
        live: None,
        history,
        speech_barge_in: true,
        done: None,
        stats: IvrStats::default(),
    };
    if !config.speech {
        d.note("keypad_only", "no speech recogniser or speech switched off");
    }
    d.feed(Event::Start).await;

    let hard = origin + d.limits.max_duration;
    let mut overtime = false;
    let mut signals_open = true;
    while d.done.is_none() {
        let timer_at = d.timer.as_ref().map(|(t, _)| *t);
        let limit_at = if overtime {
            hard + d.limits.closing_grace
        } else {
            hard
        };
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => d.media_event(ev).await,
                // The session ended under us (it only does on a bug): treat as a hang-up.
                None => {
                    d.note("media_ended", "media session ended unexpectedly");
                    d.feed(Event::HangUp).await;
                }
            },
            sig = signals.recv(), if signals_open => match sig {
                Some(Signal::HangUp) => d.feed(Event::HangUp).await,
                Some(Signal::Dtmf(c)) => match Digit::parse(&c.to_string()) {
                    // Through the media leg, so it barges in and is logged like any key.
                    Some(digit) => { let _ = d.session.inject_sip_info_dtmf(digit).await; }
                    None => d.note("bad_sip_info_key", &c.to_string()),
                },
                None => signals_open = false,
            },
            r = async { d.scoring.as_mut().expect("guarded").result.as_mut().await }, if d.scoring.is_some() => {
                let Scoring { declared, audio_end, speech_ms, .. } = d.scoring.take().expect("guarded");
                d.scored(r, declared, audio_end, speech_ms).await;
            },
            _ = tokio::time::sleep_until(timer_at.unwrap_or(limit_at)), if timer_at.is_some() => {
                d.timer_fired().await;
            },
            _ = tokio::time::sleep_until(limit_at) => {
                if overtime {
                    d.force_end();
                } else {
                    overtime = true;
                    d.stats.time_limit = true;
                    d.note("time_limit", &format!("{} s", d.limits.max_duration.as_secs()));
                    d.drive_to_close().await;
                }
            },
        }
    }
    let outcome = d.done.take().expect("loop ends when done");
    let Driver {
        dialogue,
        session,
        mut stats,
        ..
    } = d;
    let (socket, media) = session.finish().await;
    stats.media = media;
    stats.duration_ms = origin.elapsed().as_millis() as u64;
    IvrResult {
        outcome,
        log: dialogue.into_log(),
        socket,
        stats,
    }
}

impl<'a> Driver<'a> {
    fn at_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn note(&mut self, what: &'static str, detail: &str) {
        let at = self.at_ms();
        self.dialogue.note(
            at,
            LogWhat::Note {
                kind: what,
                detail: detail.to_string(),
            },
        );
    }

    async fn feed(&mut self, event: Event) {
        let at = self.at_ms();
        let actions = self.dialogue.handle(event, at);
        self.perform(actions).await;
    }

    async fn perform(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Play { prompts, input, .. } => self.play(prompts, input).await,
                Action::StopPrompt => {
                    let _ = self.session.stop_prompts().await;
                    self.playing = None;
                    if matches!(self.timer, Some((_, Timer::PromptEnd | Timer::NoInput))) {
                        self.timer = None;
                    }
                }
                Action::Finish { outcome } => {
                    let _ = self.session.stop_prompts().await;
                    self.done = Some(outcome);
                }
            }
        }
    }

    async fn play(&mut self, prompts: Vec<Prompt>, input: Option<Input>) {
        if self.playing.is_some() {
            let _ = self.session.stop_prompts().await;
        }
        // A new question: an answer still being scored belongs to the previous one.
        self.scoring = None;
        self.live = None;
        self.timer = None;
        let speech = input.as_ref().is_some_and(|i| i.speech.is_some());
        if speech != self.speech_barge_in {
            let _ = self.session.set_speech_barge_in(speech).await;
            self.speech_barge_in = speech;
        }
        let rendered = self.render(prompts).await;
        let barge_in = input.is_some();
        let mut total = 0usize;
        let mut last_id = None;
        for pcm in rendered {
            let id = self.next_id;
            self.next_id += 1;
            total += pcm.len();
            let _ = self
                .session
                .play(MediaPrompt {
                    id,
                    audio: PromptAudio::Pcm(pcm),
                    barge_in,
                })
                .await;
            last_id = Some(id);
            self.stats.prompts_played += 1;
        }
        if input.is_some() {
            self.input = input.clone();
        }
        match last_id {
            Some(last_id) => {
                self.playing = Some(Playing { last_id, input });
                let length = Duration::from_millis(total as u64 / 8);
                self.timer = Some((
                    Instant::now() + length + self.limits.prompt_margin,
                    Timer::PromptEnd,
                ));
            }
            None => {
                // Nothing to play (the library failed, logged): go on as if it had played.
                self.playing = Some(Playing { last_id: 0, input });
                self.timer = Some((Instant::now(), Timer::PromptEnd));
            }
        }
    }

    /// The prompts' audio, rendered off the async workers (rendering may run espeak-ng).
    async fn render(&mut self, prompts: Vec<Prompt>) -> Vec<Arc<[i16]>> {
        let lib = self.prompts.clone();
        let routing = self.routing.clone();
        let lang = self.lang;
        let r = tokio::task::spawn_blocking(move || {
            prompts
                .iter()
                .map(|p| {
                    lib.render(p, lang, routing.plan())
                        .or_else(|e| {
                            if prompt_lang(lang) == Lang::Nl {
                                Err(e)
                            } else {
                                tracing::warn!(error = %e, "prompt audio missing; playing it in Dutch");
                                lib.render(p, Lang::Nl, routing.plan())
                            }
                        })
                        .map(|r| r.pcm)
                        .map_err(|e| e.to_string())
                })
                .collect::<Vec<_>>()
        })
        .await;
        match r {
            Ok(list) => {
                let mut out = Vec::new();
                for item in list {
                    match item {
                        Ok(pcm) => out.push(pcm),
                        Err(e) => {
                            tracing::error!(error = %e, "prompt audio missing");
                            self.note("prompt_audio_missing", &e);
                        }
                    }
                }
                out
            }
            Err(e) => {
                self.note("prompt_audio_missing", &e.to_string());
                Vec::new()
            }
        }
    }

    fn listening_for_speech(&self) -> Option<&Grammar> {
        let closing = self.playing.as_ref().is_some_and(|p| p.input.is_none());
        if closing {
            return None;
        }
        self.input.as_ref().and_then(|i| i.speech.as_ref())
    }

    async fn media_event(&mut self, ev: MediaEvent) {
        match ev {
            MediaEvent::Dtmf { digit, .. } => {
                let key = digit.as_char();
                if key.is_ascii_digit() || key == '*' || key == '#' {
                    self.feed(Event::Dtmf { key }).await;
                }
            }
            MediaEvent::SpeechStarted { .. } => {
                if let Some(grammar) = self.listening_for_speech().cloned()
                    && self.scoring.is_none()
                {
                    self.live = self
                        .scorer
                        .as_ref()
                        .and_then(|s| s.begin(self.request(&grammar)));
                    self.feed(Event::SpeechStarted).await;
                    let vad = &self.limits.media.vad;
                    let wait = Duration::from_millis(
                        u64::from(vad.max_utterance_ms) + u64::from(vad.hangover_ms) + 1000,
                    );
                    // The prompt stopped (barge-in) or had ended: now the utterance is awaited.
                    if self.playing.as_ref().is_none_or(|p| p.input.is_some()) {
                        self.timer = Some((Instant::now() + wait, Timer::SpeechEnd));
                    }
                }
            }
            MediaEvent::SpeechAudio { pcm } => {
                if let Some(live) = self.live.as_mut() {
                    live.push(&pcm);
                }
            }
            MediaEvent::Utterance { pcm, ended, started } => {
                let declared = Instant::now();
                let live = self.live.take();
                let Some(grammar) = self.listening_for_speech().cloned() else {
                    return;
                };
                let Some(scorer) = self.scorer.clone() else {
                    return;
                };
                if self.scoring.is_some() {
                    return;
                }
                self.stats.utterances += 1;
                let speech_ms = ended.saturating_duration_since(started).as_millis() as u64;
                let result = match live {
                    Some(live) => live.finish(pcm),
                    None => scorer.score(pcm, self.request(&grammar)),
                };
                let at = self.at_ms();
                self.dialogue.note(
                    at,
                    LogWhat::Note {
                        kind: "utterance",
                        detail: format!("{speech_ms} ms"),
                    },
                );
                self.scoring = Some(Scoring {
                    result,
                    declared,
                    audio_end: ended,
                    speech_ms,
                });
                self.timer = Some((Instant::now() + self.limits.score_timeout, Timer::Score));
            }
            MediaEvent::PromptFinished { id, interrupted } => {
                let Some(p) = &self.playing else { return };
                if id != p.last_id || interrupted {
                    return;
                }
                let takes_input = p.input.clone();
                self.playing = None;
                self.timer = None;
                self.feed(Event::PromptFinished).await;
                if self.done.is_none()
                    && self.playing.is_none()
                    && let Some(input) = takes_input
                {
                    self.timer = Some((
                        Instant::now() + Duration::from_millis(u64::from(input.no_input_ms)),
                        Timer::NoInput,
                    ));
                }
            }
            MediaEvent::MediaTimeout { silent_for } => {
                self.stats.media_timeout = true;
                self.note("media_timeout", &format!("no RTP for {} ms", silent_for.as_millis()));
                self.feed(Event::HangUp).await;
            }
        }
    }

    /// The phrases of `grammar` with their keys, and the priors: population shares from the
    /// plan and the caller's earlier confirmed choices (as far as the lookup has come).
    fn request(&self, grammar: &Grammar) -> ScoreRequest {
        let phrases = self.phrases(grammar);
        let priors = match grammar {
            Grammar::YesNo => Priors::default(),
            Grammar::Names { candidates } => {
                let population: Vec<(String, u64)> = candidates
                    .iter()
                    .map(|&id| {
                        let m = self.plan.municipality(id);
                        (m.cbs.clone(), u64::from(m.population))
                    })
                    .filter(|(_, p)| *p > 0)
                    .collect();
                let keys: std::collections::HashSet<&str> =
                    phrases.iter().map(|(_, k)| k.as_str()).collect();
                let history: Vec<(String, u32)> = self
                    .history
                    .get()
                    .unwrap_or_default()
                    .iter()
                    .filter(|(k, n)| *n > 0 && keys.contains(k.as_str()))
                    .cloned()
                    .collect();
                Priors::from_population(&population).with_history(history)
            }
        };
        ScoreRequest { phrases, priors }
    }

    fn phrases(&self, grammar: &Grammar) -> Arc<[(String, String)]> {
        let mut out: Vec<(String, String)> = match grammar {
            Grammar::YesNo => YES_NO.iter().map(|s| (s.to_string(), s.to_string())).collect(),
            Grammar::Names { candidates } => {
                let vocab = match self.limits.names {
                    NameScope::WithOthers => {
                        veertien_names::vocabulary_with_others(candidates, self.plan)
                    }
                    _ => veertien_names::vocabulary(candidates, self.plan),
                };
                vocab
                    .into_iter()
                    .filter(|p| match self.limits.names {
                        NameScope::Municipalities => matches!(
                            p.kind,
                            MatchKind::OfficialName
                                | MatchKind::EverydayName
                                | MatchKind::Alias
                                | MatchKind::FormerMunicipality
                        ),
                        _ => true,
                    })
                    .map(|p| {
                        let key = self.plan.municipality(p.municipality).cbs.clone();
                        (p.text, key)
                    })
                    .collect()
            }
        };
        let mut seen = std::collections::HashSet::new();
        out.retain(|(p, _)| seen.insert(p.to_lowercase()));
        out.into()
    }

    async fn scored(
        &mut self,
        r: Result<NameScore, ScoreError>,
        declared: Instant,
        audio_end: Instant,
        speech_ms: u64,
    ) {
        if matches!(self.timer, Some((_, Timer::Score))) {
            self.timer = None;
        }
        let at = self.at_ms();
        match r {
            Ok(s) => {
                self.stats.recognitions += 1;
                self.stats.recognitions_speculative += u32::from(s.speculative);
                let latency_ms = declared.elapsed().as_millis() as u64;
                self.stats.recognition_latency_ms.push(latency_ms);
                self.dialogue.note(
                    at,
                    LogWhat::Recognised {
                        speech_ms,
                        queued_ms: s.queued.as_millis() as u64,
                        compute_ms: s.compute.as_millis() as u64,
                        latency_ms,
                        after_audio_ms: audio_end.elapsed().as_millis() as u64,
                        speculative: s.speculative,
                        prior_decided: s.prior_decided,
                        best: s.text.clone(),
                        confidence: s.confidence,
                        top: s.top.clone(),
                    },
                );
                // With the ranking, the dialogue sees the margin to the runner-up and whether
                // the priors rather than the audio decided.
                self.feed(Event::HeardRanked {
                    text: s.text,
                    confidence: s.confidence,
                    top: s.top,
                    prior_decided: s.prior_decided,
                })
                .await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "speech recognition failed");
                self.dialogue
                    .note(at, LogWhat::RecognitionFailed { reason: e.0 });
                self.feed(Event::NotUnderstood).await;
            }
        }
        self.after_answer();
    }

    /// After an answer the dialogue asked nothing new (e.g. the result came after the caller
    /// stopped listening): keep a timer running so the call cannot stall.
    fn after_answer(&mut self) {
        if self.done.is_none() && self.playing.is_none() && self.timer.is_none() {
            let no_input = self.input.as_ref().map_or(5000, |i| i.no_input_ms);
            self.timer = Some((
                Instant::now() + Duration::from_millis(u64::from(no_input)),
                Timer::NoInput,
            ));
        }
    }

    async fn timer_fired(&mut self) {
        let Some((_, kind)) = self.timer.take() else {
            return;
        };
        match kind {
            Timer::PromptEnd => {
                // The media leg never reported the end: count it as ended.
                let takes_input = self.playing.take().and_then(|p| p.input);
                self.feed(Event::PromptFinished).await;
                if self.done.is_none() && self.playing.is_none() {
                    match takes_input {
                        Some(input) => {
                            self.timer = Some((
                                Instant::now() + Duration::from_millis(u64::from(input.no_input_ms)),
                                Timer::NoInput,
                            ))
                        }
                        None => self.feed(Event::Timeout).await,
                    }
                }
            }
            Timer::NoInput => self.feed(Event::Timeout).await,
            Timer::SpeechEnd => {
                self.note("no_utterance", "speech started but no utterance followed");
                self.feed(Event::NotUnderstood).await;
            }
            Timer::Score => {
                self.scoring = None;
                let at = self.at_ms();
                self.dialogue.note(
                    at,
                    LogWhat::RecognitionFailed {
                        reason: format!(
                            "no result within {} ms",
                            self.limits.score_timeout.as_millis()
                        ),
                    },
                );
                self.feed(Event::NotUnderstood).await;
            }
        }
        self.after_answer();
    }

    /// The time limit passed: lead the dialogue to its closing message and let that play.
    async fn drive_to_close(&mut self) {
        self.scoring = None;
        self.live = None;
        self.timer = None;
        let _ = self.session.stop_prompts().await;
        self.playing = None;
        // Each Timeout is a miss; the dialogue gives up after `max_misses` and is bounded by
        // `max_events`, so this ends.
        for _ in 0..1000 {
            let at = self.at_ms();
            let actions = self.dialogue.handle(Event::Timeout, at);
            let closing = actions
                .iter()
                .any(|a| matches!(a, Action::Play { input: None, .. }));
            let finished = actions.iter().any(|a| matches!(a, Action::Finish { .. }));
            if closing || finished {
                let keep: Vec<Action> = actions
                    .into_iter()
                    .filter(|a| !matches!(a, Action::Play { input: Some(_), .. }))
                    .collect();
                self.perform(keep).await;
                return;
            }
        }
        self.force_end();
    }

    /// Past the closing grace: end now, whatever plays.
    fn force_end(&mut self) {
        for _ in 0..1000 {
            let at = self.at_ms();
            for a in self.dialogue.handle(Event::Timeout, at) {
                if let Action::Finish { outcome } = a {
                    self.done = Some(outcome);
                    return;
                }
            }
            if self.dialogue.is_done() {
                break;
            }
        }
        self.done = Some(DialogueOutcome::Announce {
            municipality: None,
            reason: AnnounceKind::NoChoice,
            forward_to: None,
        });
    }
}

/// The decision is not a question: speak the no-choice message and end.
async fn refuse(
    session: MediaSession,
    plan: &Plan,
    lang: Lang,
    prompts: &PromptLibrary,
    decision: &Decision,
    limits: &IvrLimits,
    origin: Instant,
) -> IvrResult {
    let mut events_played = 0;
    if let Ok(r) = prompts.render(&Prompt::NoChoice, lang, plan) {
        let len = Duration::from_millis(r.pcm.len() as u64 / 8);
        let _ = session
            .play(MediaPrompt {
                id: 1,
                audio: PromptAudio::Pcm(r.pcm),
                barge_in: false,
            })
            .await;
        events_played = 1;
        tokio::time::sleep(len.min(limits.closing_grace)).await;
    }
    let (socket, media) = session.finish().await;
    let area_code = match decision {
        Decision::Ask { area_code, .. } => area_code.clone(),
        _ => String::new(),
    };
    IvrResult {
        outcome: DialogueOutcome::Announce {
            municipality: None,
            reason: AnnounceKind::NoChoice,
            forward_to: None,
        },
        log: DialogueLog {
            area_code,
            lang: prompt_lang(lang),
            speech: false,
            caller_in_area: false,
            recognised_first_time: None,
            corrections: 0,
            entries: Vec::new(),
        },
        socket,
        stats: IvrStats {
            media,
            duration_ms: origin.elapsed().as_millis() as u64,
            prompts_played: events_played,
            ..IvrStats::default()
        },
    }
}
