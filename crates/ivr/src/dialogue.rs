//! The dialogue state machine. No I/O, no clock: the driver passes the time of each event.

use jiff::Timestamp;
use serde::Serialize;
use veertien_core::{
    AnnounceReason, AreaCodeId, Candidate, Decision, Lang, MunicipalityId, MunicipalityRef, Plan,
    Settings, decide_for,
};
use veertien_names::{MatchKind, Outcome, Resolution, resolve};

use crate::prompts::{MenuItem, Prompt, prompt_lang};

/// How the dialogue behaves for one area code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DialogueConfig {
    pub lang: Lang,
    /// A recogniser is available; without one the caller gets the keypad menu straight away.
    pub speech: bool,
    /// Put through without asking when the combined confidence reaches this (and the margin
    /// and name checks below pass).
    pub put_through: f32,
    /// ... and the best municipality's probability exceeds the runner-up's by at least this
    /// (the runner-up from [`Event::HeardRanked`]'s list; with [`Event::Heard`], `1 − confidence`).
    pub put_through_margin: f32,
    /// Names that are easily mistaken never go through without "Bedoelt u …?": a name that is
    /// the start or end of another name in the grammar or has one as its start or end
    /// (Haarlem/Haarlemmermeer, Weert/Nederweert), and names of three letters or fewer (Epe,
    /// Ede, Oss). Homonyms (Velp) are always asked "which one" anyway.
    pub confirm_confusable: bool,
    /// Ask "did you mean …?" from here up to `put_through`; below it the answer counts as a miss.
    pub confirm: f32,
    /// The group's human operator (a SIP URI); taken on the second miss when set.
    pub operator: Option<String>,
    /// A caller naming a municipality of another area code is put through to it instead of
    /// being told its 14+ number.
    pub forward_other_area_code: bool,
    /// How long to wait for input after a prompt ends.
    pub no_input_ms: u32,
    /// Misses (silence, not understood, wrong key, "no") before the dialogue gives up.
    pub max_misses: u8,
    /// Hard bound on the events one dialogue accepts; beyond it the dialogue ends (operator or
    /// a spoken message), whatever the caller does.
    pub max_events: u32,
}

impl Default for DialogueConfig {
    fn default() -> Self {
        DialogueConfig {
            lang: Lang::Nl,
            speech: true,
            // Calibrated on the generated set's tune half (odd manifest lines) for zero
            // misroutes; held-out half: 0 misroutes, 57 % put through unasked
            // (docs/PERFORMANCE-speech.md). Binding only with `HeardRanked` rankings where
            // several phrases share the mass; with `Heard` it follows from `put_through`.
            put_through: 0.95,
            put_through_margin: 0.8,
            confirm_confusable: true,
            confirm: 0.5,
            operator: None,
            forward_other_area_code: false,
            no_input_ms: 5000,
            max_misses: 3,
            max_events: 60,
        }
    }
}

/// What happened on the line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The call is answered and media runs: start the dialogue.
    Start,
    PromptFinished,
    /// A key ('0'–'9', '*', '#'), from RFC 4733, SIP INFO or in-band.
    Dtmf {
        key: char,
    },
    /// Voice activity began (barge-in).
    SpeechStarted,
    /// The recogniser's best phrase for an utterance, with its calibrated probability.
    Heard {
        text: String,
        confidence: f32,
    },
    /// [`Event::Heard`] with the recogniser's ranking, so the dialogue can require a margin to
    /// the runner-up before putting a caller through unasked.
    HeardRanked {
        text: String,
        confidence: f32,
        /// The best phrases with their probabilities, best first (the heard one included).
        top: Vec<(String, f32)>,
        /// The priors (municipality size, the caller's history), not the audio, made `text`
        /// the winner: confirm, never put through directly.
        prior_decided: bool,
    },
    /// An utterance ended but nothing was recognised (garbage, or no recogniser).
    NotUnderstood,
    /// No input within the no-input time after a prompt (or the prompt never ended).
    Timeout,
    HangUp,
}

/// What the recogniser should listen for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "grammar", rename_all = "snake_case")]
pub enum Grammar {
    /// Names of these municipalities (their places and aliases), plus the names of every other
    /// municipality so "Epe" on 0570 is heard: `veertien_names::vocabulary_with_others`.
    Names { candidates: Vec<MunicipalityId> },
    /// "ja" / "nee" (and "yes"/"no", Frisian "ja"/"nee").
    YesNo,
}

/// What input the caller may give during and after a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Input {
    /// `None`: keys only.
    pub speech: Option<Grammar>,
    /// Start the no-input timer when the prompt ends; send [`Event::Timeout`] when it fires.
    pub no_input_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Play these prompts in order. With `input`, the caller may barge in (key or speech) and
    /// the driver listens afterwards; without, play to the end and report `PromptFinished`.
    Play {
        prompts: Vec<Prompt>,
        text: String,
        input: Option<Input>,
    },
    /// Barge-in: stop the prompt that is playing.
    StopPrompt,
    /// The dialogue is over.
    Finish { outcome: DialogueOutcome },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnnounceKind {
    NotConnected,
    Closed,
    Calamity,
    /// The municipality has its own 14+ number.
    OtherAreaCode {
        fourteen: String,
    },
    /// No municipality could be chosen.
    NoChoice,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DialogueOutcome {
    /// Put the call through per `decision` (a `Decision::Forward`: destination, mode, route).
    Deliver {
        municipality: MunicipalityRef,
        decision: Box<Decision>,
    },
    /// The message was spoken; hang up, or forward to `forward_to` when set.
    Announce {
        municipality: Option<MunicipalityRef>,
        reason: AnnounceKind,
        forward_to: Option<String>,
    },
    /// Put the call through to the group's human operator.
    Operator {
        destination: String,
    },
    CallerHungUp,
}

/// The dialogue log, for the call record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DialogueLog {
    pub area_code: String,
    pub lang: Lang,
    pub speech: bool,
    /// The caller's own number lies in the dialled area code (logged, never used to skip the question).
    pub caller_in_area: bool,
    /// The caller's first spoken answer named a municipality and led to it without a miss,
    /// a "nee" or a failed recognition. Absent when the caller never spoke a name (keys only,
    /// silence, keypad-only IVR). Read by the reports (`veertien_store::IVR_KEY_RECOGNISED_FIRST_TIME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recognised_first_time: Option<bool>,
    /// "Nee" (voice or key 2) to a proposed municipality (`veertien_store::IVR_KEY_CORRECTIONS`).
    pub corrections: u32,
    pub entries: Vec<LogEntry>,
}

impl DialogueLog {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    /// Milliseconds since the dialogue started, as the driver reported them.
    pub at_ms: u64,
    #[serde(flatten)]
    pub what: LogWhat,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum LogWhat {
    Prompt {
        ids: Vec<&'static str>,
        text: String,
    },
    BargeIn {
        by: &'static str,
    },
    Digit {
        key: char,
        municipality: Option<String>,
    },
    Heard {
        text: String,
        speech_confidence: f32,
        /// Name resolution: outcome kind, the municipality meant, its confidence, the top matches.
        resolution: String,
        municipality: Option<String>,
        resolution_confidence: f32,
        confidence: f32,
        top: Vec<(String, f32)>,
    },
    Answer {
        yes: Option<bool>,
        via: &'static str,
    },
    Miss {
        reason: &'static str,
        misses: u8,
    },
    Outcome {
        outcome: DialogueOutcome,
    },
    /// The driver's account of one utterance sent to the recogniser: how long the caller spoke,
    /// how long recognition waited for a free core and computed, the delay from the end of
    /// speech (the VAD's declaration, after its hangover) to the result, the delay from the end
    /// of the utterance's audio (last sound + tail, what the caller perceives; it includes the
    /// hangover), whether the answer was computed while the caller was still on the line, and
    /// the recogniser's own ranking (before name resolution).
    Recognised {
        speech_ms: u64,
        queued_ms: u64,
        compute_ms: u64,
        latency_ms: u64,
        after_audio_ms: u64,
        speculative: bool,
        prior_decided: bool,
        best: String,
        confidence: f32,
        top: Vec<(String, f32)>,
    },
    /// Recognition failed or took too long; the dialogue treats it as not understood.
    RecognitionFailed {
        reason: String,
    },
    /// Something the driver did or saw that is not an event of the dialogue: "media_timeout",
    /// "time_limit", "keypad_only", "prompt_audio_missing".
    Note {
        kind: &'static str,
        detail: String,
    },
}

/// What a confirmed choice leads to.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// A candidate of this area code (or a municipality of another code when forwarding).
    Municipality(MunicipalityId),
    /// Tell the caller about another municipality (other area code, or not connected).
    Resolved(Outcome),
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    NotStarted,
    /// Asked for a name (or the menu, without speech); `menu` when the keypad menu was played.
    Asking {
        menu: bool,
    },
    Confirming {
        target: Target,
        name: String,
    },
    /// Which of these homonyms; `said` is the place name.
    Choosing {
        options: Vec<MunicipalityId>,
    },
    /// The final message plays; then finish.
    Closing(DialogueOutcome),
    Done,
}

/// One caller's dialogue for one `Decision::Ask`.
pub struct Dialogue<'a> {
    plan: &'a Plan,
    settings: &'a Settings,
    area: AreaCodeId,
    candidates: Vec<Candidate>,
    config: DialogueConfig,
    now: Timestamp,
    state: State,
    misses: u8,
    events: u32,
    /// Municipalities the caller said "nee" to: never proposed again, and after any "nee"
    /// no spoken answer is put through without confirmation.
    rejected: Vec<MunicipalityId>,
    log: DialogueLog,
}

impl<'a> Dialogue<'a> {
    /// A dialogue for `decision`, which must be a `Decision::Ask`; `None` otherwise.
    /// `now` is the call's time, for opening hours.
    pub fn new(
        decision: &Decision,
        plan: &'a Plan,
        settings: &'a Settings,
        config: DialogueConfig,
        now: Timestamp,
    ) -> Option<Self> {
        let Decision::Ask {
            area_code,
            candidates,
            caller_area_match,
            ..
        } = decision
        else {
            return None;
        };
        let area = plan.area_code_id(area_code)?;
        let log = DialogueLog {
            area_code: area_code.clone(),
            lang: prompt_lang(config.lang),
            speech: config.speech,
            caller_in_area: caller_area_match.is_some(),
            recognised_first_time: None,
            corrections: 0,
            entries: Vec::new(),
        };
        Some(Dialogue {
            plan,
            settings,
            area,
            candidates: candidates.clone(),
            config,
            now,
            state: State::NotStarted,
            misses: 0,
            events: 0,
            rejected: Vec::new(),
            log,
        })
    }

    pub fn log(&self) -> &DialogueLog {
        &self.log
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Adds the driver's own entry to the log (recognition timings, media timeout, ...).
    pub fn note(&mut self, at_ms: u64, what: LogWhat) {
        self.entry(at_ms, what);
    }

    /// Consumes the dialogue, keeping its log.
    pub fn into_log(self) -> DialogueLog {
        self.log
    }

    /// Feed one event (at `at_ms` since the dialogue started); returns what to do.
    pub fn handle(&mut self, event: Event, at_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Done {
            return out;
        }
        self.events += 1;
        if self.events > self.config.max_events
            && event != Event::HangUp
            && !matches!(self.state, State::Closing(_))
        {
            // Whatever keeps arriving, the caller is not kept here.
            self.give_up(at_ms, &mut out);
            return out;
        }
        let state = std::mem::replace(&mut self.state, State::Done);
        match (state, event) {
            (_, Event::HangUp) => self.finish(DialogueOutcome::CallerHungUp, at_ms, &mut out),
            (State::NotStarted, Event::Start) => {
                let mut prompts = vec![Prompt::Welcome];
                if self.config.speech {
                    prompts.push(Prompt::AskName);
                    self.ask(prompts, false, at_ms, &mut out);
                } else {
                    prompts.push(self.menu());
                    self.ask(prompts, true, at_ms, &mut out);
                }
            }
            (State::NotStarted, _) => self.state = State::NotStarted,
            (State::Closing(outcome), Event::PromptFinished | Event::Timeout) => {
                self.finish(outcome, at_ms, &mut out)
            }
            (s @ State::Closing(_), _) => self.state = s,
            (s, Event::SpeechStarted) => {
                self.state = s;
                if self.config.speech {
                    self.entry(at_ms, LogWhat::BargeIn { by: "speech" });
                    out.push(Action::StopPrompt);
                }
            }
            // The prompt ended: the driver starts its no-input timer (announced in `Input`).
            (s, Event::PromptFinished | Event::Start) => self.state = s,
            (s, Event::Timeout) => {
                self.state = s;
                self.miss("silence", at_ms, &mut out);
            }
            (s, Event::NotUnderstood) => {
                self.state = s;
                self.miss("not_understood", at_ms, &mut out);
            }
            (State::Asking { menu }, Event::Dtmf { key }) => {
                self.entry(at_ms, LogWhat::BargeIn { by: "key" });
                out.push(Action::StopPrompt);
                self.state = State::Asking { menu };
                match key
                    .to_digit(10)
                    .and_then(|d| self.settings.digit_choice(self.area, d as u8))
                {
                    Some(m) => {
                        self.entry(
                            at_ms,
                            LogWhat::Digit {
                                key,
                                municipality: Some(self.plan.municipality(m).name.clone()),
                            },
                        );
                        self.choose(m, at_ms, &mut out);
                    }
                    None => {
                        self.entry(
                            at_ms,
                            LogWhat::Digit {
                                key,
                                municipality: None,
                            },
                        );
                        self.miss("invalid_key", at_ms, &mut out);
                    }
                }
            }
            (State::Asking { menu }, Event::Heard { text, confidence }) => {
                self.state = State::Asking { menu };
                self.heard_name(&text, confidence, &[], false, at_ms, &mut out);
            }
            (
                State::Asking { menu },
                Event::HeardRanked {
                    text,
                    confidence,
                    top,
                    prior_decided,
                },
            ) => {
                self.state = State::Asking { menu };
                self.heard_name(&text, confidence, &top, prior_decided, at_ms, &mut out);
            }
            (State::Confirming { target, name }, Event::Dtmf { key }) => {
                out.push(Action::StopPrompt);
                self.entry(
                    at_ms,
                    LogWhat::Digit {
                        key,
                        municipality: None,
                    },
                );
                self.state = State::Confirming {
                    target: target.clone(),
                    name,
                };
                match key {
                    '1' => self.confirmed(target, "key", at_ms, &mut out),
                    '2' => {
                        self.entry(
                            at_ms,
                            LogWhat::Answer {
                                yes: Some(false),
                                via: "key",
                            },
                        );
                        self.rejected_proposal(&target);
                        self.miss("no", at_ms, &mut out);
                    }
                    _ => self.miss("invalid_key", at_ms, &mut out),
                }
            }
            (
                State::Confirming { target, name },
                Event::Heard { text, confidence } | Event::HeardRanked { text, confidence, .. },
            ) => {
                self.state = State::Confirming {
                    target: target.clone(),
                    name,
                };
                match yes_no(&text) {
                    Some(true) if confidence >= self.config.confirm => {
                        self.confirmed(target, "voice", at_ms, &mut out)
                    }
                    Some(false) if confidence >= self.config.confirm => {
                        self.entry(
                            at_ms,
                            LogWhat::Answer {
                                yes: Some(false),
                                via: "voice",
                            },
                        );
                        self.rejected_proposal(&target);
                        self.miss("no", at_ms, &mut out);
                    }
                    _ => {
                        self.entry(
                            at_ms,
                            LogWhat::Answer {
                                yes: None,
                                via: "voice",
                            },
                        );
                        self.miss("not_understood", at_ms, &mut out);
                    }
                }
            }
            (State::Choosing { options }, Event::Dtmf { key }) => {
                out.push(Action::StopPrompt);
                let pick = key
                    .to_digit(10)
                    .and_then(|d| d.checked_sub(1))
                    .and_then(|i| options.get(i as usize).copied());
                self.entry(
                    at_ms,
                    LogWhat::Digit {
                        key,
                        municipality: pick.map(|m| self.plan.municipality(m).name.clone()),
                    },
                );
                self.state = State::Choosing { options };
                match pick {
                    Some(m) => self.chosen_anywhere(m, at_ms, &mut out),
                    None => self.miss("invalid_key", at_ms, &mut out),
                }
            }
            (
                State::Choosing { options },
                Event::Heard { text, confidence } | Event::HeardRanked { text, confidence, .. },
            ) => {
                let r = resolve(&text, &options, self.plan, self.settings);
                let conf = self.log_heard(&text, confidence, &r, at_ms);
                self.state = State::Choosing {
                    options: options.clone(),
                };
                match r.meant().filter(|m| options.contains(m)) {
                    Some(m) if conf >= self.config.put_through && self.rejected.is_empty() => {
                        self.chosen_anywhere(m, at_ms, &mut out)
                    }
                    // Not sure enough to act on: ask, as for any other spoken answer.
                    Some(m) if conf >= self.config.confirm && !self.rejected.contains(&m) => {
                        self.confirm_choice(m, at_ms, &mut out)
                    }
                    _ => self.miss("not_understood", at_ms, &mut out),
                }
            }
            (State::Done, _) => {}
        }
        out
    }

    fn entry(&mut self, at_ms: u64, what: LogWhat) {
        self.log.entries.push(LogEntry { at_ms, what });
    }

    fn log_heard(&mut self, text: &str, speech_confidence: f32, r: &Resolution, at_ms: u64) -> f32 {
        let confidence = speech_confidence.clamp(0.0, 1.0) * r.confidence.clamp(0.0, 1.0);
        let kind = serde_json::to_value(&r.outcome)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
            .unwrap_or_default();
        self.entry(
            at_ms,
            LogWhat::Heard {
                text: text.to_string(),
                speech_confidence,
                resolution: kind,
                municipality: r.municipality.clone(),
                resolution_confidence: r.confidence,
                confidence,
                top: r
                    .matches
                    .iter()
                    .take(3)
                    .map(|m| (m.name.clone(), m.score))
                    .collect(),
            },
        );
        confidence
    }

    fn menu_items(&self) -> Vec<MenuItem> {
        self.candidates
            .iter()
            .filter_map(|c| {
                c.digit.map(|digit| MenuItem {
                    digit,
                    name: c.municipality.everyday_name.clone(),
                })
            })
            .collect()
    }

    fn menu(&self) -> Prompt {
        Prompt::Menu {
            items: self.menu_items(),
        }
    }

    fn play(
        &mut self,
        prompts: Vec<Prompt>,
        input: Option<Input>,
        at_ms: u64,
        out: &mut Vec<Action>,
    ) {
        let lang = self.config.lang;
        let text = prompts
            .iter()
            .map(|p| p.text(lang))
            .collect::<Vec<_>>()
            .join(" ");
        self.entry(
            at_ms,
            LogWhat::Prompt {
                ids: prompts.iter().map(Prompt::id).collect(),
                text: text.clone(),
            },
        );
        out.push(Action::Play {
            prompts,
            text,
            input,
        });
    }

    fn ask(&mut self, prompts: Vec<Prompt>, menu: bool, at_ms: u64, out: &mut Vec<Action>) {
        let input = Input {
            speech: self.names_grammar(),
            no_input_ms: self.config.no_input_ms,
        };
        self.play(prompts, Some(input), at_ms, out);
        self.state = State::Asking { menu };
    }

    fn names_grammar(&self) -> Option<Grammar> {
        self.config.speech.then(|| Grammar::Names {
            candidates: self.candidates.iter().map(|c| c.municipality.id).collect(),
        })
    }

    /// Speak the final message, then finish with `outcome` once it has played.
    fn close(
        &mut self,
        prompt: Prompt,
        outcome: DialogueOutcome,
        at_ms: u64,
        out: &mut Vec<Action>,
    ) {
        self.play(vec![prompt], None, at_ms, out);
        self.state = State::Closing(outcome);
    }

    fn finish(&mut self, outcome: DialogueOutcome, at_ms: u64, out: &mut Vec<Action>) {
        self.log.recognised_first_time = recognised_first_time(&self.log.entries);
        self.entry(
            at_ms,
            LogWhat::Outcome {
                outcome: outcome.clone(),
            },
        );
        out.push(Action::Finish { outcome });
        self.state = State::Done;
    }

    fn give_up(&mut self, at_ms: u64, out: &mut Vec<Action>) {
        match self.config.operator.clone() {
            Some(destination) => self.close(
                Prompt::Operator,
                DialogueOutcome::Operator { destination },
                at_ms,
                out,
            ),
            None => self.close(
                Prompt::NoChoice,
                DialogueOutcome::Announce {
                    municipality: None,
                    reason: AnnounceKind::NoChoice,
                    forward_to: None,
                },
                at_ms,
                out,
            ),
        }
    }

    /// Silence, garbage, a wrong key or "no": first → keypad menu; second → operator if the
    /// group has one, else the menu again; at `max_misses` → operator or a closing message.
    fn miss(&mut self, reason: &'static str, at_ms: u64, out: &mut Vec<Action>) {
        self.misses = self.misses.saturating_add(1);
        self.entry(
            at_ms,
            LogWhat::Miss {
                reason,
                misses: self.misses,
            },
        );
        let operator_now = self.misses >= 2 && self.config.operator.is_some();
        if operator_now
            || self.misses >= self.config.max_misses.max(1)
            || self.menu_items().is_empty()
        {
            self.give_up(at_ms, out);
            return;
        }
        let lead = match reason {
            "invalid_key" => Some(Prompt::InvalidKey),
            "silence" if self.state == (State::Asking { menu: false }) => None,
            "no" => None,
            _ => Some(Prompt::NotUnderstood),
        };
        let prompts = lead.into_iter().chain([self.menu()]).collect();
        self.ask(prompts, true, at_ms, out);
    }

    /// A spoken answer to the names question.
    fn heard_name(
        &mut self,
        text: &str,
        confidence: f32,
        top: &[(String, f32)],
        prior_decided: bool,
        at_ms: u64,
        out: &mut Vec<Action>,
    ) {
        let ids: Vec<MunicipalityId> = self.candidates.iter().map(|c| c.municipality.id).collect();
        let r = resolve(text, &ids, self.plan, self.settings);
        let conf = self.log_heard(text, confidence, &r, at_ms);
        let direct = match self.direct_blocker(text, confidence, top, prior_decided, &r, &ids) {
            None => true,
            Some(why) => {
                self.entry(
                    at_ms,
                    LogWhat::Note {
                        kind: "confirm_required",
                        detail: why,
                    },
                );
                false
            }
        };
        self.on_resolution(text, r, conf, direct, at_ms, out);
    }

    /// Why this answer must not be put through without "Bedoelt u …?" (`None`: it may, if the
    /// confidence is high enough). Misroutes are what callers notice most, so every doubt the
    /// dialogue can see blocks the direct route: an earlier "nee", priors deciding, a small
    /// margin to the runner-up, a name easily mistaken for another.
    fn direct_blocker(
        &self,
        text: &str,
        confidence: f32,
        top: &[(String, f32)],
        prior_decided: bool,
        r: &Resolution,
        ids: &[MunicipalityId],
    ) -> Option<String> {
        if !self.rejected.is_empty() {
            return Some("the caller said no to an earlier proposal".into());
        }
        if prior_decided {
            return Some("the priors, not the audio, chose this name".into());
        }
        let meant = r.meant()?;
        // Probability per municipality from the ranked phrases (aliases of one municipality
        // add up); without a ranking, the runner-up has at most 1 − confidence.
        let (best, second) = if top.is_empty() {
            (confidence, 1.0 - confidence)
        } else {
            let mut per: Vec<(Option<MunicipalityId>, f32)> = Vec::new();
            for (phrase, p) in top {
                let m = if phrase == text {
                    Some(meant)
                } else {
                    resolve(phrase, ids, self.plan, self.settings).meant()
                };
                match per.iter_mut().find(|(k, _)| *k == m && m.is_some()) {
                    Some(e) => e.1 += p,
                    None => per.push((m, *p)),
                }
            }
            let best = per.iter().filter(|(k, _)| *k == Some(meant)).map(|e| e.1).sum::<f32>().max(confidence);
            let second = per.iter().filter(|(k, _)| *k != Some(meant)).map(|e| e.1).fold(0.0, f32::max);
            (best, second)
        };
        if best - second < self.config.put_through_margin {
            return Some(format!(
                "margin to the runner-up {:.2} < {:.2}",
                best - second,
                self.config.put_through_margin
            ));
        }
        if self.config.confirm_confusable
            && let Some(other) = self.confusable_with(text, meant, ids)
        {
            return Some(format!("{text:?} is easily mistaken ({other})"));
        }
        None
    }

    /// A name of the grammar `text` (meaning `meant`) is easily confused with: a short name,
    /// or one that is the start or end of another municipality's name or has it as its start
    /// or end (compared without case, spaces, hyphens and apostrophes).
    fn confusable_with(&self, text: &str, meant: MunicipalityId, ids: &[MunicipalityId]) -> Option<String> {
        let squash = |t: &str| veertien_names::tokens(t).concat();
        let own: Vec<String> = {
            let m = self.plan.municipality(meant);
            let mut v = vec![squash(text), squash(&m.everyday_name)];
            v.retain(|x| !x.is_empty());
            v
        };
        if own.iter().any(|o| o.chars().count() <= 3) {
            return Some("short name".into());
        }
        // A homonym anywhere in the country (Velp in Rheden and in Land van Cuijk, Bergen in
        // Noord-Holland and Limburg): the caller may mean the other one.
        let said = squash(text);
        let all: Vec<MunicipalityId> = self.plan.municipalities().iter().map(|m| m.id).collect();
        if let Some(p) = veertien_names::vocabulary(&all, self.plan)
            .into_iter()
            .find(|p| p.municipality != meant && squash(&p.text) == said)
        {
            return Some(format!("also a name in {}", self.plan.municipality(p.municipality).name));
        }
        veertien_names::vocabulary(ids, self.plan)
            .into_iter()
            .filter(|p| p.municipality != meant)
            .filter(|p| {
                matches!(
                    p.kind,
                    MatchKind::OfficialName | MatchKind::EverydayName | MatchKind::Alias | MatchKind::FormerMunicipality
                )
            })
            .find(|p| {
                let q = squash(&p.text);
                !q.is_empty()
                    && own.iter().any(|o| {
                        q.starts_with(o.as_str()) || o.starts_with(q.as_str()) || q.ends_with(o.as_str()) || o.ends_with(q.as_str())
                    })
            })
            .map(|p| p.text)
    }

    /// The caller said "nee" to `target`.
    fn rejected_proposal(&mut self, target: &Target) {
        self.log.corrections += 1;
        let id = match target {
            Target::Municipality(id) => Some(*id),
            Target::Resolved(o) => match o {
                Outcome::OtherAreaCode { id, .. } | Outcome::NotConnected { id, .. } | Outcome::Municipality { id } => {
                    Some(*id)
                }
                _ => None,
            },
        };
        self.rejected.extend(id);
    }

    /// "Bedoelt u …?" for `id`, a candidate or any other municipality.
    fn confirm_choice(&mut self, id: MunicipalityId, at_ms: u64, out: &mut Vec<Action>) {
        let target = match self.anywhere(id) {
            Outcome::Municipality { id } => Target::Municipality(id),
            o => Target::Resolved(o),
        };
        self.propose(target, id, at_ms, out);
    }

    fn propose(&mut self, target: Target, id: MunicipalityId, at_ms: u64, out: &mut Vec<Action>) {
        let name = self.plan.municipality(id).everyday_name.clone();
        let input = Input {
            speech: self.config.speech.then_some(Grammar::YesNo),
            no_input_ms: self.config.no_input_ms,
        };
        self.play(vec![Prompt::Confirm { name: name.clone() }], Some(input), at_ms, out);
        self.state = State::Confirming { target, name };
    }

    fn on_resolution(
        &mut self,
        said: &str,
        r: Resolution,
        conf: f32,
        direct: bool,
        at_ms: u64,
        out: &mut Vec<Action>,
    ) {
        let (put_through, confirm) = (self.config.put_through, self.config.confirm);
        let meant = r.meant();
        if meant.is_some_and(|m| self.rejected.contains(&m)) {
            // The name the caller just said no to: asking again would go round in circles.
            return self.miss("rejected_again", at_ms, out);
        }
        let said = r
            .matches
            .first()
            .map(|m| m.phrase.clone())
            .unwrap_or_else(|| said.to_string());
        match r.outcome {
            Outcome::NoMatch => self.miss("no_match", at_ms, out),
            _ if conf < confirm => self.miss("low_confidence", at_ms, out),
            Outcome::Ambiguous { options } => {
                let items = options
                    .iter()
                    .enumerate()
                    .map(|(i, m)| MenuItem {
                        digit: (i + 1) as u8,
                        name: self.plan.municipality(*m).everyday_name.clone(),
                    })
                    .collect();
                let input = Input {
                    speech: self.config.speech.then(|| Grammar::Names {
                        candidates: options.clone(),
                    }),
                    no_input_ms: self.config.no_input_ms,
                };
                self.play(
                    vec![Prompt::WhichOne {
                        said,
                        options: items,
                    }],
                    Some(input),
                    at_ms,
                    out,
                );
                self.state = State::Choosing { options };
            }
            Outcome::Municipality { id } if conf >= put_through && direct => self.choose(id, at_ms, out),
            outcome @ (Outcome::OtherAreaCode { .. } | Outcome::NotConnected { .. })
                if conf >= put_through && direct =>
            {
                self.resolved(outcome, at_ms, out)
            }
            outcome => {
                let Some(id) = meant else {
                    return self.miss("no_match", at_ms, out);
                };
                let target = match outcome {
                    Outcome::Municipality { id } => Target::Municipality(id),
                    o => Target::Resolved(o),
                };
                self.propose(target, id, at_ms, out);
            }
        }
    }

    fn confirmed(&mut self, target: Target, via: &'static str, at_ms: u64, out: &mut Vec<Action>) {
        self.entry(
            at_ms,
            LogWhat::Answer {
                yes: Some(true),
                via,
            },
        );
        match target {
            Target::Municipality(id) => self.choose(id, at_ms, out),
            Target::Resolved(o) => self.resolved(o, at_ms, out),
        }
    }

    /// A homonym was settled: a candidate is put through; any other is handled as name
    /// resolution would (other area code / not connected).
    fn chosen_anywhere(&mut self, id: MunicipalityId, at_ms: u64, out: &mut Vec<Action>) {
        match self.anywhere(id) {
            Outcome::Municipality { id } => self.choose(id, at_ms, out),
            o => self.resolved(o, at_ms, out),
        }
    }

    /// What choosing `id` means here: a candidate, or (as name resolution would say) a
    /// municipality of another area code or one not connected.
    fn anywhere(&self, id: MunicipalityId) -> Outcome {
        if self.candidates.iter().any(|c| c.municipality.id == id) {
            return Outcome::Municipality { id };
        }
        let m = self.plan.municipality(id);
        if self.settings.get(id).status == veertien_core::ConnectionStatus::NotConnected {
                Outcome::NotConnected {
                    id,
                    general_number: m.general_number.clone(),
                }
            } else {
                let fourteen = m
                    .area_codes
                    .first()
                    .map(|a| self.plan.area_code_by_id(*a).fourteen.clone())
                    .unwrap_or_default();
                Outcome::OtherAreaCode {
                    id,
                    fourteen_number: fourteen,
                }
            }
    }

    fn resolved(&mut self, outcome: Outcome, at_ms: u64, out: &mut Vec<Action>) {
        match outcome {
            Outcome::OtherAreaCode {
                id,
                fourteen_number,
            } => {
                let m = self.plan.municipality(id);
                let home = m.area_codes.first().copied();
                if self.config.forward_other_area_code
                    && let Some(area) = home
                {
                    return self.apply(id, area, at_ms, out);
                }
                let prompt = Prompt::OtherAreaCode {
                    name: m.everyday_name.clone(),
                    fourteen: fourteen_number.clone(),
                    forwarding: false,
                };
                let outcome = DialogueOutcome::Announce {
                    municipality: Some(MunicipalityRef::new(self.plan, id)),
                    reason: AnnounceKind::OtherAreaCode {
                        fourteen: fourteen_number,
                    },
                    forward_to: None,
                };
                self.close(prompt, outcome, at_ms, out);
            }
            Outcome::NotConnected { id, .. } => {
                let area = self
                    .plan
                    .municipality(id)
                    .area_codes
                    .first()
                    .copied()
                    .unwrap_or(self.area);
                self.apply(id, area, at_ms, out);
            }
            Outcome::Municipality { id } => self.choose(id, at_ms, out),
            Outcome::Ambiguous { .. } | Outcome::NoMatch => self.miss("no_match", at_ms, out),
        }
    }

    /// A candidate of this area code was chosen.
    fn choose(&mut self, id: MunicipalityId, at_ms: u64, out: &mut Vec<Action>) {
        self.apply(id, self.area, at_ms, out)
    }

    /// The core's decision for the chosen municipality, spoken and turned into the outcome.
    fn apply(&mut self, id: MunicipalityId, area: AreaCodeId, at_ms: u64, out: &mut Vec<Action>) {
        let decision = decide_for(id, area, self.plan, self.settings, self.now);
        let name = self.plan.municipality(id).everyday_name.clone();
        match decision {
            Decision::Forward {
                ref municipality, ..
            } => {
                let outcome = DialogueOutcome::Deliver {
                    municipality: municipality.clone(),
                    decision: Box::new(decision.clone()),
                };
                self.close(Prompt::PuttingThrough { name }, outcome, at_ms, out);
            }
            Decision::Announce {
                municipality,
                reason,
                general_number,
                forward_to,
                message,
                opens_at,
                ..
            } => {
                let (prompt, kind) = match reason {
                    AnnounceReason::NotConnected => (
                        Prompt::NotConnected {
                            name,
                            number: general_number.raw.clone(),
                            forwarding: forward_to.is_some(),
                        },
                        AnnounceKind::NotConnected,
                    ),
                    AnnounceReason::Closed => (
                        Prompt::Closed {
                            name,
                            opens: opens_at.as_deref().and_then(opening),
                        },
                        AnnounceKind::Closed,
                    ),
                    AnnounceReason::Calamity => {
                        (Prompt::Calamity { name, message }, AnnounceKind::Calamity)
                    }
                };
                let outcome = DialogueOutcome::Announce {
                    municipality: Some(municipality),
                    reason: kind,
                    forward_to,
                };
                self.close(prompt, outcome, at_ms, out);
            }
            // Not reachable for a municipality of the plan; still end with words, not silence.
            Decision::Ask { .. } | Decision::Reject { .. } => self.give_up(at_ms, out),
        }
    }
}

/// Whether the caller's first spoken answer named a municipality and led to it without a miss,
/// a "nee" or a failed recognition; `None` when the caller never spoke a name.
fn recognised_first_time(entries: &[LogEntry]) -> Option<bool> {
    let spoke = |e: &LogEntry| match &e.what {
        LogWhat::Heard { .. } | LogWhat::RecognitionFailed { .. } => true,
        LogWhat::Miss { reason, .. } => matches!(*reason, "not_understood" | "no_match" | "low_confidence"),
        _ => false,
    };
    let first = entries.iter().position(spoke)?;
    let LogWhat::Heard {
        municipality: Some(_),
        ..
    } = &entries[first].what
    else {
        return Some(false);
    };
    let trouble = entries[first + 1..].iter().any(|e| {
        matches!(
            e.what,
            LogWhat::Miss { .. } | LogWhat::Answer { yes: Some(false), .. } | LogWhat::RecognitionFailed { .. }
        )
    });
    Some(!trouble)
}

/// "2026-11-23T08:30:00+01:00" → (weekday Monday = 0, 8, 30).
fn opening(rfc3339: &str) -> Option<(u8, i8, i8)> {
    let z: jiff::Zoned = rfc3339.parse().ok().or_else(|| {
        let ts: Timestamp = rfc3339.parse().ok()?;
        ts.in_tz("Europe/Amsterdam").ok()
    })?;
    Some((
        z.weekday().to_monday_zero_offset() as u8,
        z.hour(),
        z.minute(),
    ))
}

/// A yes/no answer in Dutch, English or Frisian; `None` when it is neither or both.
fn yes_no(text: &str) -> Option<bool> {
    const YES: &[&str] = &[
        "ja",
        "jawel",
        "klopt",
        "jazeker",
        "yes",
        "yeah",
        "yep",
        "correct",
        "precies",
        "jo",
        "dat klopt",
    ];
    const NO: &[&str] = &["nee", "neen", "nope", "no", "niet", "fout", "nein"];
    let words: Vec<String> = veertien_names::tokens(text);
    let yes = words.iter().any(|w| YES.contains(&w.as_str()));
    let no = words.iter().any(|w| NO.contains(&w.as_str()));
    match (yes, no) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}
