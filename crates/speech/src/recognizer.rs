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
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

use crate::audio::{self, LogMel};
use crate::ct2::Ct2Model;
use crate::model::{CrossKv, KvCache, Whisper};
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
    /// Bonus (in log-likelihood units) for the caller's earlier confirmed choice.
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
}

impl Default for RecognizerConfig {
    fn default() -> Self {
        Self {
            carriers: ["", "Gemeente", "Ik wil"].map(String::from).to_vec(),
            temperature: 1.7,
            gate: 0.80,
            prior_weight: 0.3,
            caller_bonus: 1.0,
            tail_seconds: 0.5,
            threads: 2,
            carrier_beam: 3.0,
            first_token_beam: f32::INFINITY,
        }
    }
}

/// Optional prior knowledge about the answer, keyed like the candidates.
#[derive(Debug, Clone)]
pub struct Priors<K> {
    /// Log prior per key (e.g. log population share); missing keys get the mean of the others.
    pub log_prior: HashMap<K, f32>,
    /// The caller's earlier confirmed choice for this area code, if known.
    pub caller_choice: Option<K>,
}

impl<K> Default for Priors<K> {
    fn default() -> Self {
        Self { log_prior: HashMap::new(), caller_choice: None }
    }
}

impl<K: Clone + Eq + Hash> Priors<K> {
    /// Log population shares among the given keys.
    pub fn from_population(pop: &[(K, u64)]) -> Self {
        let total: f64 = pop.iter().map(|(_, p)| *p as f64).sum::<f64>().max(1.0);
        let log_prior = pop.iter().map(|(k, p)| (k.clone(), ((*p as f64).max(1.0) / total).ln() as f32)).collect();
        Self { log_prior, caller_choice: None }
    }
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
        let model = pool.install(|| Whisper::from_ct2(&ct2, &device))?;
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
        let samples = audio::resample_8k_to_16k(pcm_8k)?;
        self.score_16k_from(start, &samples, phrases, priors)
    }

    /// As `score_with`, for audio already at 16 kHz (f32 in [-1, 1]).
    pub fn score_16k<K: Clone + Eq + Hash>(
        &self,
        samples: &[f32],
        phrases: &[(String, K)],
        priors: &Priors<K>,
    ) -> Result<Ranked<K>, Error> {
        self.score_16k_from(Instant::now(), samples, phrases, priors)
    }

    fn score_16k_from<K: Clone + Eq + Hash>(
        &self,
        start: Instant,
        samples: &[f32],
        phrases: &[(String, K)],
        priors: &Priors<K>,
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
            let enc = self.model.encode(&mel, n)?;
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
        let known: Vec<f32> = per_key.iter().filter_map(|(k, ..)| priors.log_prior.get(k).copied()).collect();
        let mean_prior = if known.is_empty() { 0.0 } else { known.iter().sum::<f32>() / known.len() as f32 };
        let mut scores: Vec<Scored<K>> = per_key
            .into_iter()
            .map(|(key, pi, ci, acoustic)| {
                let prior = priors.log_prior.get(&key).copied().unwrap_or(mean_prior);
                let bonus = if priors.caller_choice.as_ref() == Some(&key) { self.config.caller_bonus } else { 0.0 };
                let total = acoustic + self.config.prior_weight * (prior - mean_prior) + bonus;
                Scored {
                    key,
                    phrase: phrases[pi].0.clone(),
                    carrier: self.config.carriers[ci].clone(),
                    acoustic,
                    total,
                    probability: 0.0,
                }
            })
            .collect();
        let probs = softmax(&scores.iter().map(|s| s.total).collect::<Vec<_>>(), self.config.temperature);
        for (s, p) in scores.iter_mut().zip(probs) {
            s.probability = p;
        }
        scores.sort_by(|a, b| b.total.total_cmp(&a.total));
        let best = scores[0].key.clone();
        let confidence = scores[0].probability;
        Ok(Ranked {
            best,
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
        let lp_t = self.model.log_probs(&h.squeeze(0)?, self.n_norm)?;
        // log P(boundary) per node, reduced in candle (log-probs ≤ 0, so exp cannot overflow).
        let bidx = Tensor::from_slice(&self.boundary_ids, self.boundary_ids.len(), dev)?;
        let boundary: Vec<f32> = lp_t.index_select(&bidx, 1)?.exp()?.sum(1)?.log()?.to_vec1()?;
        let boundary0 = log_sum_exp(self.boundary_ids.iter().map(|&t| lp0[t as usize]));
        let lp: Vec<f32> = lp_t.flatten_all()?.to_vec1()?;
        tracing::trace!(
            nodes = n,
            decoder_ms = (t1 - t0).as_secs_f64() * 1e3,
            projection_ms = t1.elapsed().as_secs_f64() * 1e3,
            "trie pass"
        );
        let nv = self.n_norm;
        Ok(seqs
            .iter()
            .map(|s| {
                let mut total = 0f32;
                for j in 0..s.len() {
                    total += if j == 0 { lp0[s[0] as usize] } else {
                        let r = node_of[&s[..j]];
                        lp[r * nv + s[j] as usize]
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
