//! Closed-set recognition: score each candidate phrase by Whisper's forced-decoding
//! log-likelihood instead of transcribing freely.
//!
//! For a phrase `p` and a carrier `c` (a few words callers put in front of the name, e.g.
//! "gemeente", "ik wil"), the decoder is forced through
//! `<|startoftranscript|><|nl|><|transcribe|><|notimestamps|> c p` and the score is
//! `log P(c p | audio) + log P(word boundary | c p, audio)` — the second term (end-of-text,
//! a space-initial token or punctuation next) keeps "Haarlem" from matching the start of
//! "Haarlemmermeer". Raw likelihoods favour short, frequent names, so each variant's score on
//! silence is subtracted (PMI correction; cached per variant). A phrase takes its best carrier,
//! a municipality its best phrase; priors (log population share, the caller's earlier confirmed
//! choice) are added, and `softmax(score / T)` gives the confidence, with `T` fitted on the
//! generated test set (see docs/PERFORMANCE-speech.md).
//!
//! Cost control: the 4 prompt tokens are decoded once per utterance and their keys/values
//! shared by all variants; all variants are decoded as one batch; the expensive vocabulary
//! projection runs once per distinct token prefix (carrier prefixes and common phrase starts
//! are shared).

use std::collections::HashMap;
use std::hash::Hash;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

use crate::audio::{self, LogMel};
use crate::ct2::Ct2Model;
use crate::model::{CrossKv, KvCache, Precision, Whisper};
use crate::Error;

/// Tunables. Defaults are documented in docs/PERFORMANCE-speech.md.
#[derive(Debug, Clone)]
pub struct RecognizerConfig {
    /// Words a caller may say before the name; "" = the bare name. Case as Whisper writes them
    /// at the start of a sentence.
    pub carriers: Vec<String>,
    /// Softmax temperature for the confidence (fitted on the generated set).
    pub temperature: f32,
    /// Confidence at or above which the dialogue may put the caller through without asking.
    pub gate: f32,
    /// Weight of the log prior (population share) added to the acoustic score.
    pub prior_weight: f32,
    /// Bonus (in log-likelihood units) for a candidate the caller confirmed once before;
    /// `caller_bonus · log2(1 + n)` after `n` confirmations.
    pub caller_bonus: f32,
    /// Audio added after the utterance before encoding (Whisper expects some trailing context).
    pub tail_seconds: f32,
    /// Worker threads for the model (bounded: shared 2-core machines).
    pub threads: usize,
    /// Carriers whose first token is this many nats less likely than the best are skipped.
    pub carrier_beam: f32,
    /// Variants whose (carrier +) first phrase token scores this many nats below the best are
    /// skipped before the full pass. Off (`f32::INFINITY`) by default: at 8 nats it cost 3.6
    /// points of accuracy on the generated set for a 7% latency gain (docs/PERFORMANCE-speech.md).
    pub first_token_beam: f32,
    /// Audio kept after the last loud frame, in ms (`None`: score the utterance as given).
    /// Scoring only up to the end of speech makes the input independent of how long the VAD
    /// waited (its hangover), which is what lets [`Utterance`] score while the caller is
    /// silent but the VAD has not yet declared the end. 200 ms = the VAD's own tail.
    pub end_tail_ms: Option<u32>,
    /// Audio kept before the first loud frame, in ms (`None`: score from the utterance's first
    /// sample). The VAD's pre-roll, a test file's padding or a caller who starts at once put
    /// different amounts of quiet in front of the same speech, and on a short window Whisper's
    /// answer depends on it ([`audio::speech_start`]); a fixed lead makes the scored audio, and
    /// so the answer, the same in the IVR and in `speech eval`.
    pub start_lead_ms: Option<u32>,
    /// Weights of the linear layers and the vocabulary projection (docs/PERFORMANCE-speech.md:
    /// int8 cuts the compute per decision by about half for no measured loss in accuracy).
    pub precision: Precision,
}

impl Default for RecognizerConfig {
    fn default() -> Self {
        Self {
            carriers: ["", "Gemeente", "Ik wil"].map(String::from).to_vec(),
            temperature: 1.7,
            // The dialogue's put-through threshold (veertien-ivr DialogueConfig::put_through).
            gate: 0.95,
            prior_weight: 0.3,
            caller_bonus: 1.0,
            tail_seconds: 0.5,
            threads: 2,
            carrier_beam: 3.0,
            first_token_beam: f32::INFINITY,
            end_tail_ms: Some(200),
            start_lead_ms: Some(200),
            precision: Precision::default(),
        }
    }
}

/// Optional prior knowledge about the answer, keyed like the candidates.
///
/// The total a candidate is ranked by is
/// `acoustic + prior_weight · (log_prior − mean log_prior) + caller_bonus · ln(1 + n)`, where
/// `n` is how often this caller confirmed that candidate before (`caller_history`, plus one
/// for `caller_choice`). See [`combine`].
#[derive(Debug, Clone)]
pub struct Priors<K> {
    /// Log prior per key (e.g. log population share); missing keys get the mean of the others.
    pub log_prior: HashMap<K, f32>,
    /// The caller's earlier confirmed choice for this area code, if known (counts as one
    /// confirmation in `caller_history`).
    pub caller_choice: Option<K>,
    /// How often this caller confirmed each municipality of this area code before (from the
    /// call records: a put-through after "ja", a keypad choice or a confident answer that was
    /// not corrected). Empty for a first-time or anonymous caller.
    pub caller_history: HashMap<K, u32>,
}

impl<K> Default for Priors<K> {
    fn default() -> Self {
        Self { log_prior: HashMap::new(), caller_choice: None, caller_history: HashMap::new() }
    }
}

impl<K: Clone + Eq + Hash> Priors<K> {
    /// Log population shares among the given keys.
    pub fn from_population(pop: &[(K, u64)]) -> Self {
        let total: f64 = pop.iter().map(|(_, p)| *p as f64).sum::<f64>().max(1.0);
        let log_prior = pop.iter().map(|(k, p)| (k.clone(), ((*p as f64).max(1.0) / total).ln() as f32)).collect();
        Self { log_prior, ..Self::default() }
    }

    /// Adds the caller's earlier confirmed choices (key, times confirmed).
    pub fn with_history(mut self, history: impl IntoIterator<Item = (K, u32)>) -> Self {
        for (k, n) in history {
            *self.caller_history.entry(k).or_insert(0) += n;
        }
        self
    }

    /// Times the caller confirmed `key` before.
    pub fn confirmations(&self, key: &K) -> u32 {
        self.caller_history.get(key).copied().unwrap_or(0) + u32::from(self.caller_choice.as_ref() == Some(key))
    }
}

/// Whether the priors, not the audio, decided an answer: another key wins on the audio alone,
/// or the priors lifted an answer that the audio alone does not carry to the gate over it. A
/// caller's history pointing at the wrong municipality must never put them through unasked.
pub fn prior_decided(other_acoustic_winner: bool, acoustic_confidence: f32, confidence: f32, config: &RecognizerConfig) -> bool {
    other_acoustic_winner || (acoustic_confidence < config.gate && confidence >= config.gate)
}

/// The ranking totals for keys with these acoustic scores under `priors` (see [`Priors`]).
/// Exposed so evaluations can re-weigh recorded acoustic scores without the model.
pub fn combine<K: Clone + Eq + Hash>(acoustic: &[(K, f32)], priors: &Priors<K>, config: &RecognizerConfig) -> Vec<f32> {
    let known: Vec<f32> = acoustic.iter().filter_map(|(k, _)| priors.log_prior.get(k).copied()).collect();
    let mean_prior = if known.is_empty() { 0.0 } else { known.iter().sum::<f32>() / known.len() as f32 };
    acoustic
        .iter()
        .map(|(key, a)| {
            let prior = priors.log_prior.get(key).copied().unwrap_or(mean_prior);
            let n = priors.confirmations(key);
            let bonus = if n > 0 { config.caller_bonus * (1.0 + n as f32).ln() / std::f32::consts::LN_2 } else { 0.0 };
            a + config.prior_weight * (prior - mean_prior) + bonus
        })
        .collect()
}

/// Score of one candidate key.
#[derive(Debug, Clone)]
pub struct Scored<K> {
    pub key: K,
    /// The phrase (and carrier) that scored best for this key.
    pub phrase: String,
    pub carrier: String,
    /// PMI-corrected acoustic score.
    pub acoustic: f32,
    /// Acoustic + priors: what is ranked.
    pub total: f32,
    /// softmax(total / T) over the keys.
    pub probability: f32,
}

/// Result of recognising one utterance, best first.
#[derive(Debug, Clone)]
pub struct Ranked<K> {
    pub best: K,
    /// The priors, not the audio, put `best` first (the acoustically best key is another).
    /// Such an answer should be confirmed with the caller, never put through directly.
    pub prior_decided: bool,
    pub confidence: f32,
    /// True when `confidence >= gate`.
    pub accepted: bool,
    pub scores: Vec<Scored<K>>,
    /// Time spent in `score` (front-end + model), i.e. decision latency after end of speech.
    pub latency: Duration,
}

pub struct Recognizer {
    model: Whisper,
    tokenizer: Tokenizer,
    mel: LogMel,
    prompt: Vec<u32>,
    eot: u32,
    /// Vocabulary entries over which probabilities are normalised (text tokens + end-of-text).
    n_norm: usize,
    /// Token ids that may follow a complete name: end-of-text, space-initial, punctuation.
    boundary_ids: Vec<u32>,
    silence: CrossKv,
    silence_cache: Mutex<HashMap<Vec<u32>, f32>>,
    pool: rayon::ThreadPool,
    config: RecognizerConfig,
}

impl Recognizer {
    /// Loads `model.bin` + `tokenizer.json` from `dir` with default settings.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        Self::load_with(dir, RecognizerConfig::default())
    }

    pub fn load_with(dir: &Path, config: RecognizerConfig) -> Result<Self, Error> {
        let model_path = dir.join("model.bin");
        if !model_path.is_file() {
            return Err(Error::NotInstalled(dir.to_path_buf()));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads.max(1))
            .thread_name(|i| format!("veertien-speech-{i}"))
            .build()
            .map_err(|e| Error::Model(format!("thread pool: {e}")))?;
        let device = Device::Cpu;
        let ct2 = Ct2Model::load(&model_path)?;
        let mut model = pool.install(|| Whisper::from_ct2(&ct2, &device, config.precision))?;
        drop(ct2);
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| Error::Model(format!("{}: {e}", tok_path.display())))?;
        let id = |t: &str| {
            tokenizer.token_to_id(t).ok_or_else(|| Error::Model(format!("{}: no token {t}", tok_path.display())))
        };
        let prompt = vec![id("<|startoftranscript|>")?, id("<|nl|>")?, id("<|transcribe|>")?, id("<|notimestamps|>")?];
        let eot = id("<|endoftext|>")?;
        let n_norm = eot as usize + 1;
        pool.install(|| model.prepare_projection(n_norm))?;
        let mut boundary_ids = vec![eot];
        for i in 0..eot {
            if let Some(t) = tokenizer.id_to_token(i) {
                // Byte-level BPE: 'Ġ' is a space, 'Ċ' a newline.
                let first = t.chars().next();
                if matches!(first, Some('Ġ' | 'Ċ' | '.' | ',' | '!' | '?' | ';' | ':' | '"' | ')')) {
                    boundary_ids.push(i);
                }
            }
        }
        let mel = LogMel::new();
        // PMI reference: one second of digital silence plus the usual tail, as Whisper pads.
        let silence_samples = vec![0f32; ((1.0 + config.tail_seconds) * audio::SAMPLE_RATE as f32) as usize];
        let (m, n) = mel.compute(&silence_samples)?;
        let silence = pool.install(|| -> candle_core::Result<CrossKv> {
            let enc = model.encode(&m, n)?;
            model.cross_kv(&enc)
        })?;
        Ok(Self {
            model,
            tokenizer,
            mel,
            prompt,
            eot,
            n_norm,
            boundary_ids,
            silence,
            silence_cache: Mutex::new(HashMap::new()),
            pool,
            config,
        })
    }

    pub fn config(&self) -> &RecognizerConfig {
        &self.config
    }

    /// Tokens of `text` as Whisper writes it after the prompt (leading space).
    pub fn tokens(&self, text: &str) -> Result<Vec<u32>, Error> {
        let enc = self
            .tokenizer
            .encode(format!(" {}", text.trim()), false)
            .map_err(|e| Error::Model(format!("tokenizing {text:?}: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Precomputes the silence (PMI) scores of these candidates so the first real utterance
    /// does not pay for them; call at startup for every area code's vocabulary.
    pub fn prepare<K>(&self, phrases: &[(String, K)]) -> Result<(), Error> {
        let mut seqs = Vec::new();
        for (text, _) in phrases {
            for c in &self.config.carriers {
                let full = if c.is_empty() { text.clone() } else { format!("{c} {text}") };
                seqs.push(self.tokens(&full)?);
            }
        }
        self.pool.install(|| self.silence_scores(&seqs)).map(|_| ())
    }

    /// Scores 8 kHz mono PCM against `(phrase, key)` candidates without priors.
    pub fn score<K: Clone + Eq + Hash>(&self, pcm_8k: &[i16], phrases: &[(String, K)]) -> Result<Ranked<K>, Error> {
        self.score_with(pcm_8k, phrases, &Priors::default())
    }

    /// Scores 8 kHz mono PCM against `(phrase, key)` candidates, combining priors.
    pub fn score_with<K: Clone + Eq + Hash>(
        &self,
        pcm_8k: &[i16],
        phrases: &[(String, K)],
        priors: &Priors<K>,
    ) -> Result<Ranked<K>, Error> {
        let start = Instant::now();
        let region = &pcm_8k[self.speech_region(pcm_8k)];
        self.score_region(start, region, phrases, priors, &AtomicBool::new(false))
    }

    /// The part of an 8 kHz utterance that is scored: from `start_lead_ms` before the first
    /// loud frame ([`audio::speech_start`]) to `end_tail_ms` after the last
    /// ([`audio::speech_end`]); without these settings, from the first or to the last sample.
    pub fn speech_region(&self, pcm_8k: &[i16]) -> std::ops::Range<usize> {
        self.region_in(&audio::frame_levels(pcm_8k), pcm_8k.len())
    }

    /// Length of the part of an 8 kHz utterance that is scored: up to `end_tail_ms` after the
    /// last loud frame ([`audio::speech_end`]), or all of it.
    pub fn speech_region_end(&self, pcm_8k: &[i16]) -> usize {
        self.speech_region(pcm_8k).end
    }

    /// [`Self::speech_region`] of `len` samples whose frame levels are `levels`.
    fn region_in(&self, levels: &[f32], len: usize) -> std::ops::Range<usize> {
        let end = self.tail_samples().and_then(|tail| audio::speech_end(levels, tail)).map_or(len, |e| e.min(len));
        let start = self.lead_samples().and_then(|lead| audio::speech_start(levels, lead)).unwrap_or(0);
        start.min(end)..end
    }

    fn tail_samples(&self) -> Option<usize> {
        self.config.end_tail_ms.map(|ms| ms as usize * 8)
    }

    fn lead_samples(&self) -> Option<usize> {
        self.config.start_lead_ms.map(|ms| ms as usize * 8)
    }

    fn score_region<K: Clone + Eq + Hash>(
        &self,
        start: Instant,
        region: &[i16],
        phrases: &[(String, K)],
        priors: &Priors<K>,
        cancel: &AtomicBool,
    ) -> Result<Ranked<K>, Error> {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let samples = audio::resample_8k_to_16k(region)?;
        self.score_16k_inner(start, &samples, phrases, priors, cancel)
    }

    /// Starts recognising an utterance while it is still being spoken. Push the caller's audio
    /// as it arrives ([`Utterance::push`]); whenever the caller has been quiet for
    /// `end_tail_ms`, the audio so far is scored in the background on this recognizer's
    /// thread pool, so that by the time the VAD declares the end of speech (after its
    /// hangover, 700 ms by default) the answer is usually ready. [`Utterance::finish`] with
    /// the VAD's utterance returns exactly what [`Recognizer::score_with`] would, only sooner.
    ///
    /// Push the same audio the VAD's utterance will hold, from its first sample (pre-roll
    /// included): the speculative result is reused only when the scored audio is identical.
    /// Otherwise `finish` scores synchronously, which is correct but slower.
    pub fn begin<K>(self: &Arc<Self>, phrases: Vec<(String, K)>, priors: Priors<K>) -> Utterance<K>
    where
        K: Clone + Eq + Hash + Send + Sync + 'static,
    {
        Utterance {
            rec: self.clone(),
            phrases: Arc::new(phrases),
            priors: Arc::new(priors),
            pcm: Vec::new(),
            levels: Vec::new(),
            job: None,
            speculations: 0,
        }
    }

    /// As `score_with`, for audio already at 16 kHz (f32 in [-1, 1]).
    pub fn score_16k<K: Clone + Eq + Hash>(
        &self,
        samples: &[f32],
        phrases: &[(String, K)],
        priors: &Priors<K>,
    ) -> Result<Ranked<K>, Error> {
        self.score_16k_inner(Instant::now(), samples, phrases, priors, &AtomicBool::new(false))
    }

    fn score_16k_inner<K: Clone + Eq + Hash>(
        &self,
        start: Instant,
        samples: &[f32],
        phrases: &[(String, K)],
        priors: &Priors<K>,
        cancel: &AtomicBool,
    ) -> Result<Ranked<K>, Error> {
        if phrases.is_empty() {
            return Err(Error::NoCandidates);
        }
        // Variants: (phrase index, carrier index, tokens).
        let mut all_variants: Vec<(usize, usize, Vec<u32>)> = Vec::new();
        let max_len = self.model.max_target_positions - self.prompt.len() - 1;
        for (pi, (text, _)) in phrases.iter().enumerate() {
            for (ci, c) in self.config.carriers.iter().enumerate() {
                let full = if c.is_empty() { text.clone() } else { format!("{c} {text}") };
                let toks = self.tokens(&full)?;
                if toks.is_empty() || toks.len() > max_len {
                    return Err(Error::BadPhrase(text.clone()));
                }
                all_variants.push((pi, ci, toks));
            }
        }

        let max_samples = self.model.max_source_positions * 2 * audio::HOP_LENGTH;
        let tail = (self.config.tail_seconds * audio::SAMPLE_RATE as f32) as usize;
        let mut padded = Vec::with_capacity(samples.len() + tail);
        padded.extend_from_slice(&samples[..samples.len().min(max_samples.saturating_sub(tail))]);
        padded.resize(padded.len() + tail, 0.0);

        let (variants, audio_scores, silence_scores) = self.pool.install(|| -> Result<_, Error> {
            let t0 = Instant::now();
            let (mel, n) = self.mel.compute(&padded)?;
            let t1 = Instant::now();
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let enc = self.model.encode(&mel, n)?;
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let cross = self.model.cross_kv(&enc)?;
            let t2 = Instant::now();
            let (cache, lp0) = self.prompt_state(&cross)?;
            let variants = self.prune_carriers(&lp0, all_variants);
            let variants = if self.config.first_token_beam.is_finite() {
                self.prune_first_token(&cross, &cache, &lp0, variants)?
            } else {
                variants
            };
            let seqs: Vec<Vec<u32>> = variants.iter().map(|v| v.2.clone()).collect();
            let a = self.score_sequences_after(&cross, &cache, &lp0, &seqs)?;
            let t3 = Instant::now();
            let s = self.silence_scores(&seqs)?;
            tracing::debug!(
                mel_ms = (t1 - t0).as_secs_f64() * 1e3,
                encoder_ms = (t2 - t1).as_secs_f64() * 1e3,
                decoder_ms = (t3 - t2).as_secs_f64() * 1e3,
                silence_ms = t3.elapsed().as_secs_f64() * 1e3,
                frames = n,
                sequences = seqs.len(),
                "speech scoring"
            );
            if std::env::var_os("VEERTIEN_SPEECH_TIMING").is_some() {
                eprintln!(
                    "mel {:.0} ms, encoder {:.0} ms ({n} frames), decoder {:.0} ms ({} seqs), silence {:.0} ms",
                    (t1 - t0).as_secs_f64() * 1e3,
                    (t2 - t1).as_secs_f64() * 1e3,
                    (t3 - t2).as_secs_f64() * 1e3,
                    seqs.len(),
                    t3.elapsed().as_secs_f64() * 1e3
                );
            }
            Ok((variants, a, s))
        })?;

        // Best variant per key.
        let mut per_key: Vec<(K, usize, usize, f32)> = Vec::new();
        let mut index: HashMap<K, usize> = HashMap::new();
        for (vi, (pi, ci, _)) in variants.iter().enumerate() {
            let pmi = audio_scores[vi] - silence_scores[vi];
            let key = &phrases[*pi].1;
            match index.get(key) {
                Some(&i) if per_key[i].3 >= pmi => {}
                Some(&i) => per_key[i] = (key.clone(), *pi, *ci, pmi),
                None => {
                    index.insert(key.clone(), per_key.len());
                    per_key.push((key.clone(), *pi, *ci, pmi));
                }
            }
        }
        let totals = combine(&per_key.iter().map(|(k, _, _, a)| (k.clone(), *a)).collect::<Vec<_>>(), priors, &self.config);
        let mut scores: Vec<Scored<K>> = per_key
            .into_iter()
            .zip(totals)
            .map(|((key, pi, ci, acoustic), total)| Scored {
                key,
                phrase: phrases[pi].0.clone(),
                carrier: self.config.carriers[ci].clone(),
                acoustic,
                total,
                probability: 0.0,
            })
            .collect();
        let acoustic_best = scores
            .iter()
            .max_by(|a, b| a.acoustic.total_cmp(&b.acoustic))
            .map(|s| s.key.clone())
            .expect("at least one candidate");
        let probs = softmax(&scores.iter().map(|s| s.total).collect::<Vec<_>>(), self.config.temperature);
        for (s, p) in scores.iter_mut().zip(probs) {
            s.probability = p;
        }
        scores.sort_by(|a, b| b.total.total_cmp(&a.total));
        let best = scores[0].key.clone();
        let confidence = scores[0].probability;
        let acoustic_confidence = {
            let a: Vec<f32> = scores.iter().map(|s| s.acoustic).collect();
            softmax(&a, self.config.temperature)[0]
        };
        let prior_decided = prior_decided(best != acoustic_best, acoustic_confidence, confidence, &self.config);
        Ok(Ranked {
            best,
            prior_decided,
            confidence,
            accepted: confidence >= self.config.gate,
            scores,
            latency: start.elapsed(),
        })
    }

    /// Silence scores for the sequences, computed once per distinct sequence and cached.
    fn silence_scores(&self, seqs: &[Vec<u32>]) -> Result<Vec<f32>, Error> {
        let missing: Vec<Vec<u32>> = {
            let cache = self.silence_cache.lock().unwrap_or_else(|e| e.into_inner());
            let mut m: Vec<Vec<u32>> = seqs.iter().filter(|s| !cache.contains_key(*s)).cloned().collect();
            m.sort();
            m.dedup();
            m
        };
        if !missing.is_empty() {
            let s = self.score_sequences(&self.silence, &missing)?;
            let mut cache = self.silence_cache.lock().unwrap_or_else(|e| e.into_inner());
            for (seq, v) in missing.into_iter().zip(s) {
                cache.insert(seq, v);
            }
        }
        let cache = self.silence_cache.lock().unwrap_or_else(|e| e.into_inner());
        Ok(seqs.iter().map(|s| cache[s]).collect())
    }

    /// Beam over carriers on the first token: a carrier whose first token is far less likely
    /// than the best alternative (another carrier, or any bare name) cannot win, so its
    /// variants are dropped before the expensive pass. Keeps all carriers within
    /// `carrier_beam` nats of the best.
    fn prune_carriers(&self, lp0: &[f32], variants: Vec<(usize, usize, Vec<u32>)>) -> Vec<(usize, usize, Vec<u32>)> {
        let nc = self.config.carriers.len();
        // Mass of each carrier's possible first tokens (distinct tokens, summed).
        let mut firsts: Vec<Vec<u32>> = vec![Vec::new(); nc];
        for (_, ci, t) in &variants {
            if !firsts[*ci].contains(&t[0]) {
                firsts[*ci].push(t[0]);
            }
        }
        let mass: Vec<f32> = firsts.iter().map(|f| log_sum_exp(f.iter().map(|&t| lp0[t as usize]))).collect();
        let best = mass.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let keep: Vec<bool> = mass.iter().map(|&m| m >= best - self.config.carrier_beam).collect();
        variants.into_iter().filter(|(_, ci, _)| keep[*ci]).collect()
    }

    /// Beam on the first word's first token: scores every variant up to (carrier +) the first
    /// token of the phrase — a pass over the carrier prefixes only — and drops variants more
    /// than `first_token_beam` nats below the best before the full pass. With nine candidates
    /// and three carriers this removes most of the trie.
    fn prune_first_token(
        &self,
        cross: &CrossKv,
        cache: &KvCache,
        lp0: &[f32],
        variants: Vec<(usize, usize, Vec<u32>)>,
    ) -> Result<Vec<(usize, usize, Vec<u32>)>, Error> {
        let carrier_len: Vec<usize> = self
            .config
            .carriers
            .iter()
            .map(|c| if c.is_empty() { Ok(0) } else { self.tokens(c).map(|t| t.len()) })
            .collect::<Result<_, _>>()?;
        let partial: Vec<Vec<u32>> = variants
            .iter()
            .map(|(_, ci, t)| t[..(carrier_len[*ci] + 1).min(t.len())].to_vec())
            .collect();
        let scores = self.score_trie(cross, cache, lp0, &partial, false)?;
        let best = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        Ok(variants
            .into_iter()
            .zip(scores)
            .filter(|(_, sc)| *sc >= best - self.config.first_token_beam)
            .map(|(v, _)| v)
            .collect())
    }

    /// Decodes the prompt once for an utterance: its keys/values and the log-probabilities of
    /// the first token.
    fn prompt_state(&self, cross: &CrossKv) -> Result<(KvCache, Vec<f32>), Error> {
        let prompt = Tensor::new(self.prompt.as_slice(), self.model.device())?.unsqueeze(0)?;
        let (hp, cache) = self.model.decode(&prompt, None, cross)?;
        let hp = hp.narrow(1, self.prompt.len() - 1, 1)?.squeeze(1)?;
        let lp = self.model.log_probs(&hp, self.n_norm)?.flatten_all()?.to_vec1()?;
        Ok((cache, lp))
    }

    /// `log P(seq | prompt, audio) + log P(boundary | prompt, seq, audio)` for each sequence.
    ///
    /// All sequences are laid out as one token trie and decoded in a single pass with a tree
    /// attention mask (each node sees the prompt and its ancestors), so shared prefixes
    /// (carrier words, common name starts) cost once and nothing is padded; the vocabulary
    /// projection runs once per trie node.
    pub(crate) fn score_sequences(&self, cross: &CrossKv, seqs: &[Vec<u32>]) -> Result<Vec<f32>, Error> {
        let (cache, lp0) = self.prompt_state(cross)?;
        self.score_sequences_after(cross, &cache, &lp0, seqs)
    }

    fn score_sequences_after(
        &self,
        cross: &CrossKv,
        cache: &KvCache,
        lp0: &[f32],
        seqs: &[Vec<u32>],
    ) -> Result<Vec<f32>, Error> {
        self.score_trie(cross, cache, lp0, seqs, true)
    }

    /// Trie pass; without the boundary term the last token of each sequence needs no node of
    /// its own (only the distribution before it), which makes prefix scoring cheap.
    fn score_trie(
        &self,
        cross: &CrossKv,
        cache: &KvCache,
        lp0: &[f32],
        seqs: &[Vec<u32>],
        with_boundary: bool,
    ) -> Result<Vec<f32>, Error> {
        let dev = self.model.device();
        // Trie nodes in creation order (parents before children).
        let mut node_of: HashMap<&[u32], usize> = HashMap::new();
        let mut nodes: Vec<(u32, Option<usize>, usize)> = Vec::new(); // (token, parent, depth)
        let node_len = |s: &[u32]| if with_boundary { s.len() } else { s.len().saturating_sub(1) };
        for s in seqs {
            let mut parent = None;
            for j in 0..node_len(s) {
                let id = *node_of.entry(&s[..=j]).or_insert_with(|| {
                    nodes.push((s[j], parent, j));
                    nodes.len() - 1
                });
                parent = Some(id);
            }
        }
        let n = nodes.len();
        if n == 0 {
            return Ok(seqs.iter().map(|s| s.first().map(|&t| lp0[t as usize]).unwrap_or(0.0)).collect());
        }
        let p = cache.len();
        let mut mask = vec![f32::NEG_INFINITY; n * (p + n)];
        for i in 0..n {
            let row = &mut mask[i * (p + n)..(i + 1) * (p + n)];
            row[..p].fill(0.0);
            let mut cur = Some(i);
            while let Some(c) = cur {
                row[p + c] = 0.0;
                cur = nodes[c].1;
            }
        }
        let mask = Tensor::from_vec(mask, (n, p + n), dev)?;
        let positions: Vec<usize> = nodes.iter().map(|&(_, _, d)| p + d).collect();
        let tokens = Tensor::from_vec(nodes.iter().map(|&(t, ..)| t).collect::<Vec<_>>(), (1, n), dev)?;
        let t0 = Instant::now();
        let (h, _) = self.model.decode_masked(&tokens, &positions, &mask, Some(cache), cross)?;
        let t1 = Instant::now();
        let rows = self.model.logit_rows(&h.squeeze(0)?, self.n_norm)?;
        // Per node: log of the softmax normaliser and of the boundary tokens' mass, in one
        // exp pass over the row (the full log-softmax matrix is never materialised).
        use rayon::prelude::*;
        let (lse, boundary): (Vec<f32>, Vec<f32>) = rows
            .par_iter()
            .map(|row| {
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let total: f32 = row.iter().map(|&x| (x - m).exp()).sum();
                let b: f32 = self.boundary_ids.iter().map(|&t| (row[t as usize] - m).exp()).sum();
                let lse = m + total.ln();
                (lse, m + b.ln() - lse)
            })
            .unzip();
        let boundary0 = log_sum_exp(self.boundary_ids.iter().map(|&t| lp0[t as usize]));
        if std::env::var_os("VEERTIEN_SPEECH_TIMING").is_some() {
            eprintln!(
                "trie: {n} nodes, decoder layers {:.0} ms, vocabulary projection {:.0} ms",
                (t1 - t0).as_secs_f64() * 1e3,
                t1.elapsed().as_secs_f64() * 1e3
            );
        }
        tracing::trace!(
            nodes = n,
            decoder_ms = (t1 - t0).as_secs_f64() * 1e3,
            projection_ms = t1.elapsed().as_secs_f64() * 1e3,
            "trie pass"
        );
        Ok(seqs
            .iter()
            .map(|s| {
                let mut total = 0f32;
                for j in 0..s.len() {
                    total += if j == 0 { lp0[s[0] as usize] } else {
                        let r = node_of[&s[..j]];
                        rows[r][s[j] as usize] - lse[r]
                    };
                }
                if !with_boundary {
                    return total;
                }
                total + if s.is_empty() { boundary0 } else { boundary[node_of[&s[..]]] }
            })
            .collect())
    }

    /// Greedy transcription (diagnostics only: the dialogue never uses free text).
    pub fn transcribe_16k(&self, samples: &[f32], max_tokens: usize) -> Result<String, Error> {
        let tail = (self.config.tail_seconds * audio::SAMPLE_RATE as f32) as usize;
        let mut padded = samples.to_vec();
        padded.resize(padded.len() + tail, 0.0);
        self.pool.install(|| {
            let (mel, n) = self.mel.compute(&padded)?;
            let enc = self.model.encode(&mel, n)?;
            let cross = self.model.cross_kv(&enc)?;
            let mut toks = self.prompt.clone();
            let mut out = Vec::new();
            for _ in 0..max_tokens {
                let t = Tensor::new(toks.as_slice(), self.model.device())?.unsqueeze(0)?;
                let (h, _) = self.model.decode(&t, None, &cross)?;
                let last = h.narrow(1, toks.len() - 1, 1)?.squeeze(1)?;
                let lp: Vec<f32> = self.model.log_probs(&last, self.n_norm)?.flatten_all()?.to_vec1()?;
                let next = lp.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i as u32).unwrap_or(self.eot);
                if next == self.eot {
                    break;
                }
                out.push(next);
                toks.push(next);
            }
            self.tokenizer.decode(&out, true).map_err(|e| Error::Model(format!("decode: {e}")))
        })
    }
}

/// Background scoring of one stretch of an utterance.
struct Job<K> {
    /// The scored audio (samples from the utterance's first sample).
    region: std::ops::Range<usize>,
    cancel: Arc<AtomicBool>,
    result: mpsc::Receiver<Result<Ranked<K>, Error>>,
}

/// An utterance being recognised while it is spoken; see [`Recognizer::begin`].
///
/// Dropping it cancels any background work (e.g. the caller hung up or pressed a key).
pub struct Utterance<K> {
    rec: Arc<Recognizer>,
    phrases: Arc<Vec<(String, K)>>,
    priors: Arc<Priors<K>>,
    pcm: Vec<i16>,
    levels: Vec<f32>,
    job: Option<Job<K>>,
    speculations: usize,
}

/// The outcome of [`Utterance::finish_detailed`].
#[derive(Debug, Clone)]
pub struct Finished<K> {
    /// `ranked.latency` is the time from `finish` to the answer: the decision latency after
    /// end of speech as the driver sees it.
    pub ranked: Ranked<K>,
    /// The answer came from the background scoring started during the caller's silence.
    pub speculative: bool,
    /// Time the scoring itself took (wherever it ran).
    pub compute: Duration,
    /// Background scorings started for this utterance (all but the last were superseded
    /// because the caller went on speaking).
    pub speculations: usize,
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static> Utterance<K> {
    /// Adds audio (8 kHz mono PCM16) as it arrives; never blocks on the model.
    pub fn push(&mut self, pcm: &[i16]) {
        self.pcm.extend_from_slice(pcm);
        let done = self.levels.len() * audio::TRIM_FRAME;
        self.levels.extend(audio::frame_levels(&self.pcm[done..]));
        let Some(tail) = self.rec.tail_samples() else { return };
        let Some(end) = audio::speech_end(&self.levels, tail) else { return };
        let start = self.rec.lead_samples().and_then(|lead| audio::speech_start(&self.levels, lead)).unwrap_or(0);
        let region = start.min(end)..end;
        if self.job.as_ref().is_some_and(|j| j.region != region) {
            // The caller went on speaking: that stretch cannot be the answer any more.
            self.cancel();
        }
        if self.job.is_none() && end <= self.pcm.len() {
            self.speculate(region);
        }
    }

    fn speculate(&mut self, scored: std::ops::Range<usize>) {
        let (tx, rx) = mpsc::sync_channel(1);
        let cancel = Arc::new(AtomicBool::new(false));
        let (rec, phrases, priors) = (self.rec.clone(), self.phrases.clone(), self.priors.clone());
        let region = self.pcm[scored.clone()].to_vec();
        let flag = cancel.clone();
        self.rec.pool.spawn(move || {
            let r = rec.score_region(Instant::now(), &region, &phrases, &priors, &flag);
            let _ = tx.send(r);
        });
        self.speculations += 1;
        self.job = Some(Job { region: scored, cancel, result: rx });
    }

    fn cancel(&mut self) {
        if let Some(j) = self.job.take() {
            j.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// The audio pushed so far.
    pub fn audio(&self) -> &[i16] {
        &self.pcm
    }

    /// End of speech: the answer for the VAD's utterance `pcm` (what [`Recognizer::score_with`]
    /// returns for it), from the background scoring when that covered the same audio.
    /// Blocks until the answer is ready; call it off the async runtime (`spawn_blocking`).
    pub fn finish(self, pcm: &[i16]) -> Result<Ranked<K>, Error> {
        self.finish_detailed(pcm).map(|f| f.ranked)
    }

    /// [`Self::finish`] with where the answer came from and what it cost.
    pub fn finish_detailed(mut self, pcm: &[i16]) -> Result<Finished<K>, Error> {
        let start = Instant::now();
        let region = self.rec.speech_region(pcm);
        let end = region.end;
        let speculations = self.speculations;
        if let Some(job) = self.job.take() {
            if job.region == region && self.pcm.get(..end) == Some(&pcm[..end]) {
                match job.result.recv() {
                    Ok(Ok(mut ranked)) => {
                        let compute = ranked.latency;
                        ranked.latency = start.elapsed();
                        return Ok(Finished { ranked, speculative: true, compute, speculations });
                    }
                    Ok(Err(Error::Cancelled)) | Err(_) => {}
                    Ok(Err(e)) => return Err(e),
                }
            } else {
                job.cancel.store(true, Ordering::Relaxed);
            }
        }
        let t = Instant::now();
        let mut ranked =
            self.rec.score_region(start, &pcm[region], &self.phrases, &self.priors, &AtomicBool::new(false))?;
        let compute = t.elapsed();
        ranked.latency = start.elapsed();
        Ok(Finished { ranked, speculative: false, compute, speculations })
    }
}

impl<K> Drop for Utterance<K> {
    fn drop(&mut self) {
        if let Some(j) = self.job.take() {
            j.cancel.store(true, Ordering::Relaxed);
        }
    }
}

fn log_sum_exp(it: impl Iterator<Item = f32> + Clone) -> f32 {
    let m = it.clone().fold(f32::NEG_INFINITY, f32::max);
    if m == f32::NEG_INFINITY {
        return m;
    }
    m + it.map(|x| (x - m).exp()).sum::<f32>().ln()
}

/// `softmax(x / t)`.
pub fn softmax(x: &[f32], t: f32) -> Vec<f32> {
    let t = t.max(1e-6);
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = x.iter().map(|v| ((v - m) / t).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}
