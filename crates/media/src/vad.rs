//! Voice activity detection: finds where the caller starts and stops speaking and
//! hands over the utterance audio (with pre-roll) for recognition.
//!
//! Energy + zero-crossing detector with an adaptive noise floor and hangover, by hand:
//! the `webrtc-vad` crate wraps C code through a build script and only classifies single
//! frames; the start/end logic, pre-roll and noise tracking we need are on top of it
//! anyway, and on narrow-band G.711 audio an energy detector relative to the tracked
//! noise floor is what telephony IVRs have long used.

use std::collections::VecDeque;

/// Samples per analysis frame (20 ms at 8 kHz).
pub const FRAME: usize = 160;
/// Frames (200 ms) at the start of a stream used only to learn the noise floor.
const WARMUP_FRAMES: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// A frame is speech-like when its level exceeds the noise floor by this much (dB).
    pub start_margin_db: f32,
    /// While in speech, a frame continues it above this margin (dB) — hysteresis.
    pub continue_margin_db: f32,
    /// Frames quieter than this (dBFS) are never speech, whatever the noise floor.
    pub min_level_dbfs: f32,
    /// Consecutive speech-like frames needed to declare speech started.
    pub start_frames: usize,
    /// Non-speech time after the last speech frame that ends the utterance.
    pub hangover_ms: u32,
    /// Audio kept from before the detected start (speech onsets are soft).
    pub pre_roll_ms: u32,
    /// Audio kept after the last speech frame.
    pub tail_ms: u32,
    /// An utterance is cut off after this long.
    pub max_utterance_ms: u32,
    /// Zero-crossing rate (per sample) above which a quieter frame still counts as
    /// continuing speech: unvoiced fricatives (s, f, ch) are weak but noisy.
    pub fricative_zcr: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            start_margin_db: 12.0,
            continue_margin_db: 6.0,
            min_level_dbfs: -50.0,
            start_frames: 4,
            hangover_ms: 700,
            pre_roll_ms: 300,
            tail_ms: 200,
            max_utterance_ms: 10_000,
            fricative_zcr: 0.3,
        }
    }
}

/// Something the detector noticed. Positions count samples since the detector was
/// created (8 kHz), so the caller can map them to wall-clock times.
#[derive(Debug, Clone, PartialEq)]
pub enum VadEvent {
    SpeechStarted { at: u64 },
    /// The utterance, from `start` (including pre-roll) to `end` (including tail).
    Utterance { pcm: Vec<i16>, start: u64, end: u64 },
}

#[derive(Debug, Clone)]
enum State {
    Silence { run: usize },
    Speech { start: u64, last_speech_end: u64, quiet_frames: usize },
}

#[derive(Debug, Clone)]
pub struct Vad {
    cfg: VadConfig,
    noise_db: f32,
    state: State,
    /// The most recent audio (pre-roll + candidate start frames) while not in speech.
    history: VecDeque<i16>,
    utterance: Vec<i16>,
    frame: [i16; FRAME],
    fill: usize,
    pos: u64,
    frames_seen: u64,
}

fn level_dbfs(frame: &[i16]) -> f32 {
    let e: f64 = frame.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / frame.len() as f64;
    (10.0 * (e / (32768.0 * 32768.0)).max(1e-10).log10()) as f32
}

fn zero_crossing_rate(frame: &[i16]) -> f32 {
    let z = frame.windows(2).filter(|w| (w[0] >= 0) != (w[1] >= 0)).count();
    z as f32 / (frame.len() - 1) as f32
}

impl Default for Vad {
    fn default() -> Self {
        Self::new(VadConfig::default())
    }
}

impl Vad {
    pub fn new(cfg: VadConfig) -> Self {
        Vad {
            cfg,
            // Start pessimistic (quiet line); the floor rises within ~0.5 s if the line is noisy.
            noise_db: -70.0,
            state: State::Silence { run: 0 },
            history: VecDeque::new(),
            utterance: Vec::new(),
            frame: [0; FRAME],
            fill: 0,
            pos: 0,
            frames_seen: 0,
        }
    }

    /// Current noise floor estimate (dBFS).
    pub fn noise_floor_dbfs(&self) -> f32 {
        self.noise_db
    }

    /// Samples fed so far (the clock event positions are measured on).
    pub fn position(&self) -> u64 {
        self.pos + self.fill as u64
    }

    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speech { .. })
    }

    /// The audio of the utterance in progress, from its first sample (pre-roll included) to
    /// now, hangover frames included: what its `Utterance` will start with. Lets a recogniser
    /// work while the caller is still speaking.
    pub fn speech_so_far(&self) -> Option<&[i16]> {
        self.in_speech().then_some(self.utterance.as_slice())
    }

    /// Drops any speech in progress without reporting it (e.g. it was a DTMF tone).
    pub fn cancel(&mut self) {
        self.state = State::Silence { run: 0 };
        self.utterance.clear();
        self.history.clear();
    }

    /// Feeds samples; appends events to `out`.
    pub fn process(&mut self, pcm: &[i16], out: &mut Vec<VadEvent>) {
        let mut rest = pcm;
        while !rest.is_empty() {
            let n = (FRAME - self.fill).min(rest.len());
            self.frame[self.fill..self.fill + n].copy_from_slice(&rest[..n]);
            self.fill += n;
            rest = &rest[n..];
            if self.fill == FRAME {
                self.fill = 0;
                let frame = self.frame;
                self.frame_done(&frame, out);
            }
        }
    }

    fn ms(&self, ms: u32) -> usize {
        ms as usize * 8
    }

    fn frame_done(&mut self, frame: &[i16; FRAME], out: &mut Vec<VadEvent>) {
        let level = level_dbfs(frame);
        let zcr = zero_crossing_rate(frame);
        let frame_start = self.pos;
        self.pos += FRAME as u64;
        self.frames_seen += 1;
        let above = |margin: f32, noise: f32, min: f32| level > noise + margin && level > min;
        match &mut self.state {
            State::Silence { run } => {
                // The first frames only calibrate the noise floor.
                let warming_up = self.frames_seen <= WARMUP_FRAMES;
                let speechy = !warming_up && above(self.cfg.start_margin_db, self.noise_db, self.cfg.min_level_dbfs);
                self.history.extend(frame.iter());
                let keep = self.cfg.pre_roll_ms as usize * 8 + self.cfg.start_frames * FRAME;
                while self.history.len() > keep {
                    self.history.pop_front();
                }
                if speechy {
                    *run += 1;
                } else {
                    *run = 0;
                    // Track the floor: fall fast, rise slowly, so speech bursts barely move it.
                    let rate = if warming_up { 0.5 } else if level < self.noise_db { 0.3 } else { 0.03 };
                    self.noise_db += (level - self.noise_db) * rate;
                }
                if *run >= self.cfg.start_frames {
                    let start_of_speech = self.pos - (self.cfg.start_frames * FRAME) as u64;
                    let pre = (self.history.len() as u64).min(self.pos);
                    let start = self.pos - pre;
                    self.utterance.clear();
                    self.utterance.extend(self.history.drain(..));
                    out.push(VadEvent::SpeechStarted { at: start_of_speech });
                    self.state = State::Speech { start, last_speech_end: self.pos, quiet_frames: 0 };
                }
            }
            State::Speech { start, last_speech_end, quiet_frames } => {
                self.utterance.extend_from_slice(frame);
                let speechy = above(self.cfg.continue_margin_db, self.noise_db, self.cfg.min_level_dbfs)
                    || (zcr > self.cfg.fricative_zcr && above(self.cfg.continue_margin_db / 2.0, self.noise_db, self.cfg.min_level_dbfs));
                if speechy {
                    *quiet_frames = 0;
                    *last_speech_end = frame_start + FRAME as u64;
                    // Very slow upward drift so a sudden permanent noise cannot hold us in speech forever.
                    self.noise_db += (level - self.noise_db) * 0.002;
                } else {
                    *quiet_frames += 1;
                }
                let too_long = self.pos - *start >= self.cfg.max_utterance_ms as u64 * 8;
                let ended = *quiet_frames * FRAME >= self.cfg.hangover_ms as usize * 8;
                if ended || too_long {
                    let (start, last) = (*start, *last_speech_end);
                    let end = if too_long { self.pos } else { (last + self.ms(self.cfg.tail_ms) as u64).min(self.pos) };
                    self.utterance.truncate((end - start) as usize);
                    let pcm = std::mem::take(&mut self.utterance);
                    out.push(VadEvent::Utterance { pcm, start, end });
                    self.history.clear();
                    self.state = State::Silence { run: 0 };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn noise(ms: u32, dbfs: f32, seed: u64) -> Vec<i16> {
        let mut rng = StdRng::seed_from_u64(seed);
        let a = 32767.0 * 10f32.powf(dbfs / 20.0) * 3f32.sqrt();
        (0..ms * 8).map(|_| rng.random_range(-a..a) as i16).collect()
    }

    /// A voiced, syllable-modulated signal (4 Hz envelope) at roughly `dbfs`.
    fn speechlike(ms: u32, dbfs: f32) -> Vec<i16> {
        let a = 32767.0 * 10f32.powf(dbfs / 20.0);
        (0..ms * 8)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let env = 0.6 + 0.4 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
                let v: f32 = (1..12).map(|h| (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() / h as f32).sum();
                (a * env * v * 0.8) as i16
            })
            .collect()
    }

    fn mix(a: &mut [i16], b: &[i16]) {
        for (x, y) in a.iter_mut().zip(b) {
            *x = x.saturating_add(*y);
        }
    }

    fn run(pcm: &[i16], chunk: usize) -> Vec<VadEvent> {
        let mut v = Vad::default();
        let mut out = Vec::new();
        for c in pcm.chunks(chunk) {
            v.process(c, &mut out);
        }
        out
    }

    #[test]
    fn finds_one_utterance_with_pre_roll_and_tail() {
        let mut pcm = noise(1000, -60.0, 1);
        pcm.extend(speechlike(800, -20.0));
        let mut tail = noise(1500, -60.0, 2);
        pcm.append(&mut tail);
        let ev = run(&pcm, 160);
        assert_eq!(ev.len(), 2, "{ev:?}");
        let VadEvent::SpeechStarted { at } = ev[0] else { panic!() };
        assert!((8000..8000 + 4 * 160 + 160).contains(&(at as usize)), "started at {at}");
        let VadEvent::Utterance { pcm: u, start, end } = &ev[1] else { panic!() };
        assert_eq!(u.len() as u64, end - start);
        // Pre-roll reaches ~300 ms before the onset; the tail ~200 ms past its end.
        assert!(*start <= 8000 - 2000 && *start >= 8000 - 2600, "start {start}");
        assert!(*end >= 8000 + 6400 + 1400 && *end <= 8000 + 6400 + 1800, "end {end}");
    }

    #[test]
    fn silence_and_steady_noise_are_not_speech() {
        assert!(run(&vec![0; 80_000], 160).is_empty());
        assert!(run(&noise(10_000, -45.0, 3), 160).is_empty());
        // Noise that starts loud: the floor adapts before the start threshold is met.
        assert!(run(&noise(10_000, -25.0, 4), 160).is_empty());
    }

    #[test]
    fn speech_in_noise_is_found() {
        let mut pcm = noise(3000, -40.0, 5);
        let mut s = vec![0i16; 8000];
        s.extend(speechlike(700, -18.0));
        mix(&mut pcm, &s);
        let ev = run(&pcm, 333);
        let utts: Vec<_> = ev.iter().filter(|e| matches!(e, VadEvent::Utterance { .. })).collect();
        assert_eq!(utts.len(), 1, "{ev:?}");
    }

    #[test]
    fn two_words_with_a_long_pause_are_two_utterances_short_pause_one() {
        let mut pcm = noise(500, -60.0, 6);
        pcm.extend(speechlike(400, -20.0));
        pcm.extend(noise(300, -60.0, 7));
        pcm.extend(speechlike(400, -20.0));
        pcm.extend(noise(1200, -60.0, 8));
        pcm.extend(speechlike(400, -20.0));
        pcm.extend(noise(1200, -60.0, 9));
        let n = run(&pcm, 160).iter().filter(|e| matches!(e, VadEvent::Utterance { .. })).count();
        assert_eq!(n, 2);
    }

    #[test]
    fn endless_speech_is_cut_at_the_maximum() {
        let mut pcm = noise(300, -60.0, 10);
        pcm.extend(speechlike(12_000, -20.0));
        let ev = run(&pcm, 160);
        let VadEvent::Utterance { pcm: u, .. } = ev.iter().find(|e| matches!(e, VadEvent::Utterance { .. })).unwrap() else { panic!() };
        assert!(u.len() <= 10_000 * 8);
    }

    #[test]
    fn cancel_drops_speech_in_progress() {
        let mut v = Vad::default();
        let mut out = Vec::new();
        v.process(&noise(500, -60.0, 11), &mut out);
        v.process(&speechlike(300, -20.0), &mut out);
        assert!(v.in_speech());
        v.cancel();
        v.process(&noise(1500, -60.0, 12), &mut out);
        assert!(out.iter().all(|e| !matches!(e, VadEvent::Utterance { .. })));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn events_are_well_formed_for_any_chunking(chunk in 1usize..700, gap in 800u32..2000, level in -35.0f32..-10.0) {
            let mut pcm = noise(600, -60.0, 13);
            pcm.extend(speechlike(500, level));
            pcm.extend(noise(gap, -60.0, 14));
            pcm.extend(speechlike(500, level));
            pcm.extend(noise(1000, -60.0, 15));
            let ev = run(&pcm, chunk);
            prop_assert_eq!(ev.len(), 4);
            for pair in ev.chunks(2) {
                let is_pair = matches!((&pair[0], &pair[1]), (VadEvent::SpeechStarted { at }, VadEvent::Utterance { start, end, pcm }) if start <= at && at < end && pcm.len() as u64 == end - start);
                prop_assert!(is_pair);
            }
        }
    }
}
