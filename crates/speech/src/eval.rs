//! `veertien speech eval`: run the recognizer over a manifest and report accuracy, accuracy and
//! coverage at the confidence gate, confusions and decision latency.
//!
//! Manifest: one utterance per line, `wav_path<TAB>expected<TAB>cand;cand;…`, paths relative to
//! the manifest's folder; empty lines and lines starting with `#` are skipped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::recognizer::{softmax, Priors};
use crate::{audio, Error, Recognizer};

#[derive(Debug, Clone, PartialEq)]
pub struct ManifestItem {
    pub wav: PathBuf,
    pub expected: String,
    pub candidates: Vec<String>,
    pub line: usize,
}

pub fn read_manifest(path: &Path) -> Result<Vec<ManifestItem>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let err = |msg: String| Error::Manifest { file: path.display().to_string(), line: line_no, msg };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 3 {
            return Err(err(format!("expected 3 tab-separated columns (wav, expected, candidates), found {}", cols.len())));
        }
        let candidates: Vec<String> =
            cols[2].split(';').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
        let expected = cols[1].trim().to_string();
        if candidates.is_empty() {
            return Err(err("no candidates".into()));
        }
        if !candidates.contains(&expected) {
            return Err(err(format!("expected {expected:?} is not among the candidates")));
        }
        if cols[0].trim().is_empty() {
            return Err(err("empty wav path".into()));
        }
        items.push(ManifestItem { wav: base.join(cols[0].trim()), expected, candidates, line: line_no });
    }
    Ok(items)
}

#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// Confidence gate; default: the recognizer's configured gate.
    pub gate: Option<f32>,
    /// Softmax temperature for confidences; default: the recognizer's configured one.
    pub temperature: Option<f32>,
    /// Population per candidate name, used as prior when given.
    pub population: Option<HashMap<String, u64>>,
    /// Stop after this many items (quick runs).
    pub limit: Option<usize>,
    /// Progress per utterance on stderr.
    pub verbose: bool,
}

/// How `evaluate` replays an utterance to measure latency as the IVR driver sees it: the
/// WAV is taken as the VAD's endpointed utterance (pre-roll + speech + `tail_ms`); its
/// 20 ms frames are pushed into a [`crate::Utterance`] in real time, followed by the rest of
/// the VAD's hangover (`hangover_ms − tail_ms` of silence), and then `finish` is called with
/// the WAV's audio. Latency is the time `finish` takes: the decision latency after the VAD
/// declared the end of speech. One utterance at a time, so the run takes about as long as
/// the audio plus the hangovers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamSim {
    pub hangover_ms: u32,
    pub tail_ms: u32,
}

impl Default for StreamSim {
    /// The VAD's defaults (veertien-media `VadConfig`).
    fn default() -> Self {
        Self { hangover_ms: 700, tail_ms: 200 }
    }
}

/// One utterance's result, for callers that simulate what follows (e.g. the dialogue).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ItemResult {
    pub wav: PathBuf,
    pub line: usize,
    pub expected: String,
    pub candidates: Vec<String>,
    /// The recognised candidate and its calibrated confidence.
    pub best: String,
    pub confidence: f32,
    /// Decision latency after end of speech.
    pub latency_ms: f64,
    /// Time the scoring took.
    pub compute_ms: f64,
    /// Answered from the background scoring started before the VAD's end of speech.
    pub speculative: bool,
    /// Per candidate (manifest order): the PMI-corrected acoustic score, before priors. Kept
    /// so the dialogue gate and the priors can be calibrated offline without re-running the
    /// model.
    pub acoustic: Vec<f32>,
    /// Per candidate (manifest order): the calibrated probability after priors.
    #[serde(default)]
    pub probabilities: Vec<f32>,
    /// The priors, not the audio, made `best` the winner.
    #[serde(default)]
    pub prior_decided: bool,
}

/// Population per municipality name from the plan's `gemeenten.csv` (columns `name`,
/// `population`, optionally `roo_short_name`), keyed by the CBS name, the ROO short name and the
/// name without a CBS qualifier such as " (NH.)", so spoken-form manifests find their prior.
pub fn population_from_csv(path: &Path) -> Result<HashMap<String, u64>, Error> {
    let file = path.display().to_string();
    let mut rdr = csv::Reader::from_path(path).map_err(|e| Error::Manifest { file: file.clone(), line: 1, msg: e.to_string() })?;
    let headers = rdr.headers().map_err(|e| Error::Manifest { file: file.clone(), line: 1, msg: e.to_string() })?.clone();
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (Some(name_c), Some(pop_c)) = (col("name"), col("population")) else {
        return Err(Error::Manifest { file, line: 1, msg: "needs the columns name and population".into() });
    };
    let short_c = col("roo_short_name");
    let mut out = HashMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| Error::Manifest { file: file.clone(), line, msg: e.to_string() })?;
        let pop: u64 = rec[pop_c].trim().parse().map_err(|_| Error::Manifest {
            file: file.clone(),
            line,
            msg: format!("population {:?} is not a whole number", &rec[pop_c]),
        })?;
        let name = rec[name_c].trim().to_string();
        let bare = match name.find(" (") {
            Some(i) => name[..i].to_string(),
            None => name.clone(),
        };
        if let Some(c) = short_c {
            out.entry(rec[c].trim().to_string()).or_insert(pop);
        }
        out.entry(bare).or_insert(pop);
        out.insert(name, pop);
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct Confusion {
    pub expected: String,
    pub recognised: String,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub n: usize,
    pub correct: usize,
    /// Share of utterances whose best candidate is the expected one (first utterance, 0–1).
    pub accuracy: f64,
    /// Accuracy among utterances with confidence ≥ gate (these would be put through directly).
    pub gated_accuracy: f64,
    /// Share of utterances with confidence ≥ gate.
    pub coverage: f64,
    /// Utterances above the gate that were wrong: direct misroutes without confirmation.
    pub gated_errors: usize,
    pub gate: f32,
    pub temperature: f32,
    /// Temperature minimising the negative log-likelihood of the expected answers on this set.
    pub fitted_temperature: f32,
    pub mean_candidates: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub latency_max_ms: f64,
    /// "stream" (latency after the VAD's end of speech, replayed in real time) or "batch"
    /// (latency = compute time of `score_with` on the whole file).
    pub latency_mode: String,
    /// Compute time per decision, wherever it ran (background or after end of speech).
    pub compute_p50_ms: f64,
    pub compute_p95_ms: f64,
    /// Share of decisions answered from the background scoring (stream mode).
    pub speculative_share: f64,
    pub confusions: Vec<Confusion>,
    /// Per utterance, in manifest order (not serialised: large).
    #[serde(skip)]
    pub items: Vec<ItemResult>,
}

impl Report {
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        use std::fmt::Write;
        let _ = writeln!(s, "utterances / uitingen:            {}", self.n);
        let _ = writeln!(s, "mean candidates / gem. kandidaten: {:.2}", self.mean_candidates);
        let _ = writeln!(s, "accuracy / nauwkeurigheid:        {:.1}% ({}/{})", 100.0 * self.accuracy, self.correct, self.n);
        let _ = writeln!(
            s,
            "gate {:.2} (T={:.2}): coverage {:.1}%, gated accuracy {:.1}%, direct misroutes {}",
            self.gate,
            self.temperature,
            100.0 * self.coverage,
            100.0 * self.gated_accuracy,
            self.gated_errors
        );
        let _ = writeln!(s, "fitted temperature on this set:   {:.2}", self.fitted_temperature);
        let _ = writeln!(
            s,
            "latency after end of speech / latentie na einde spraak ({}): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            self.latency_mode, self.latency_p50_ms, self.latency_p95_ms, self.latency_max_ms
        );
        let _ = writeln!(
            s,
            "compute per decision / rekentijd per beslissing: p50 {:.0} ms, p95 {:.0} ms; answered from background scoring: {:.1}%",
            self.compute_p50_ms,
            self.compute_p95_ms,
            100.0 * self.speculative_share
        );
        if !self.confusions.is_empty() {
            let _ = writeln!(s, "confusions / verwisselingen (expected -> recognised):");
            for c in &self.confusions {
                let _ = writeln!(s, "  {:>3}× {} -> {}", c.count, c.expected, c.recognised);
            }
        }
        s
    }
}

/// Per-utterance outcome, kept for temperature fitting.
struct Outcome {
    prior_decided: bool,
    totals: Vec<f32>,
    acoustic: Vec<f32>,
    expected_idx: usize,
    best: String,
    expected: String,
    latency_ms: f64,
    compute_ms: f64,
    speculative: bool,
}

/// Replays `pcm` as [`StreamSim`] describes and returns what `finish` gave.
fn replay(
    rec: &Arc<Recognizer>,
    pcm: &[i16],
    phrases: Vec<(String, String)>,
    priors: Priors<String>,
    sim: StreamSim,
) -> Result<crate::Finished<String>, Error> {
    const FRAME: usize = audio::TRIM_FRAME;
    let mut u = rec.begin(phrases, priors);
    let rest = vec![0i16; sim.hangover_ms.saturating_sub(sim.tail_ms) as usize * 8];
    let t0 = Instant::now();
    for (i, frame) in pcm.chunks(FRAME).chain(rest.chunks(FRAME)).enumerate() {
        // A frame can be pushed once it has been spoken entirely.
        let due = t0 + Duration::from_millis(20 * (i as u64 + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        u.push(frame);
    }
    u.finish_detailed(pcm)
}

/// Scores each file at once with [`Recognizer::score_with`]; latency = compute time.
pub fn evaluate(rec: &Recognizer, manifest: &Path, opts: &EvalOptions) -> Result<Report, Error> {
    run(rec, None, manifest, opts)
}

/// Replays each file as a call delivers it ([`StreamSim`]); latency = time after the VAD's end
/// of speech. Answers are identical to [`evaluate`]'s.
pub fn evaluate_streamed(
    rec: &Arc<Recognizer>,
    manifest: &Path,
    opts: &EvalOptions,
    sim: StreamSim,
) -> Result<Report, Error> {
    run(rec, Some((rec, sim)), manifest, opts)
}

fn run(
    rec: &Recognizer,
    stream: Option<(&Arc<Recognizer>, StreamSim)>,
    manifest: &Path,
    opts: &EvalOptions,
) -> Result<Report, Error> {
    let mut items = read_manifest(manifest)?;
    if let Some(l) = opts.limit {
        items.truncate(l);
    }
    let mut outcomes = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let (pcm, rate) = audio::read_wav(&it.wav).map_err(|e| Error::Manifest {
            file: manifest.display().to_string(),
            line: it.line,
            msg: e.to_string(),
        })?;
        if rate != 8000 {
            return Err(Error::Manifest {
                file: manifest.display().to_string(),
                line: it.line,
                msg: format!("{}: sample rate {rate} Hz, expected 8000", it.wav.display()),
            });
        }
        let phrases: Vec<(String, String)> = it.candidates.iter().map(|c| (c.clone(), c.clone())).collect();
        let priors = population_priors(&it.candidates, opts.population.as_ref());
        // Production warms these at startup; keep that one-off cost out of the latency figure.
        rec.prepare(&phrases)?;
        let (r, compute, speculative) = match stream {
            Some((arc, sim)) => {
                let f = replay(arc, &pcm, phrases, priors, sim)?;
                (f.ranked, f.compute, f.speculative)
            }
            None => {
                let r = rec.score_with(&pcm, &phrases, &priors)?;
                let c = r.latency;
                (r, c, false)
            }
        };
        let totals: Vec<f32> = it
            .candidates
            .iter()
            .map(|c| r.scores.iter().find(|s| &s.key == c).map(|s| s.total).unwrap_or(f32::NEG_INFINITY))
            .collect();
        let acoustic: Vec<f32> = it
            .candidates
            .iter()
            .map(|c| r.scores.iter().find(|s| &s.key == c).map(|s| s.acoustic).unwrap_or(UNSCORED))
            .collect();
        let expected_idx = it.candidates.iter().position(|c| c == &it.expected).unwrap_or(0);
        if opts.verbose {
            eprintln!(
                "[{}/{}] {} expected {} got {} ({:.2}) {:.0} ms after end of speech, {:.0} ms compute{}",
                i + 1,
                items.len(),
                it.wav.display(),
                it.expected,
                r.best,
                r.confidence,
                r.latency.as_secs_f64() * 1e3,
                compute.as_secs_f64() * 1e3,
                if speculative { " (background)" } else { "" }
            );
        }
        outcomes.push(Outcome {
            prior_decided: r.prior_decided,
            totals,
            acoustic,
            expected_idx,
            best: r.best.clone(),
            expected: it.expected.clone(),
            latency_ms: r.latency.as_secs_f64() * 1e3,
            compute_ms: compute.as_secs_f64() * 1e3,
            speculative,
        });
    }
    let gate = opts.gate.unwrap_or(rec.config().gate);
    let temperature = opts.temperature.unwrap_or(rec.config().temperature);
    let mut report = summarise(&outcomes, gate, temperature);
    report.latency_mode = if stream.is_some() { "stream" } else { "batch" }.to_string();
    report.items = items
        .iter()
        .zip(&outcomes)
        .map(|(it, o)| {
            let p = softmax(&o.totals, temperature);
            ItemResult {
                wav: it.wav.clone(),
                line: it.line,
                expected: it.expected.clone(),
                candidates: it.candidates.clone(),
                best: o.best.clone(),
                confidence: p.iter().copied().fold(0.0, f32::max),
                latency_ms: o.latency_ms,
                compute_ms: o.compute_ms,
                speculative: o.speculative,
                acoustic: o.acoustic.clone(),
                prior_decided: o.prior_decided,
                probabilities: p.clone(),
            }
        })
        .collect();
    Ok(report)
}

/// Acoustic score recorded for a candidate the recognizer pruned (finite, so it survives JSON).
const UNSCORED: f32 = -1e30;

/// Population priors for `candidates` (none without a population table).
pub fn population_priors(candidates: &[String], population: Option<&HashMap<String, u64>>) -> Priors<String> {
    match population {
        Some(pop) => Priors::from_population(
            &candidates.iter().filter_map(|c| pop.get(c).map(|p| (c.clone(), *p))).collect::<Vec<_>>(),
        ),
        None => Priors::default(),
    }
}

/// Rebuilds a report from recorded per-utterance acoustic scores (`ItemResult::acoustic`, as
/// saved by `veertien speech eval --save-scores`), re-applying priors with `config`'s weights:
/// the gate and the priors can be calibrated without running the model again. `priors` gives
/// each utterance's priors; the items' `best`, `confidence`, `probabilities` and
/// `prior_decided` are updated. Latency figures are the recorded ones.
pub fn report_from_scores(
    items: &mut [ItemResult],
    priors: impl Fn(&ItemResult) -> Priors<String>,
    config: &crate::RecognizerConfig,
    gate: f32,
    temperature: f32,
) -> Report {
    let mut outcomes = Vec::with_capacity(items.len());
    for it in items.iter_mut() {
        let keyed: Vec<(String, f32)> = it.candidates.iter().cloned().zip(it.acoustic.iter().copied()).collect();
        let totals = crate::recognizer::combine(&keyed, &priors(it), config);
        let argmax = |v: &[f32]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
        let best = argmax(&totals);
        let p = softmax(&totals, temperature);
        it.best = it.candidates[best].clone();

        let acoustic_conf = softmax(&it.acoustic, temperature)[best];
        it.prior_decided = crate::recognizer::prior_decided(argmax(&it.acoustic) != best, acoustic_conf, p[best], config);
        it.confidence = p[best];
        it.probabilities = p;
        outcomes.push(Outcome {
            prior_decided: it.prior_decided,
            totals,
            acoustic: it.acoustic.clone(),
            expected_idx: it.candidates.iter().position(|c| c == &it.expected).unwrap_or(0),
            best: it.best.clone(),
            expected: it.expected.clone(),
            latency_ms: it.latency_ms,
            compute_ms: it.compute_ms,
            speculative: it.speculative,
        });
    }
    let mut r = summarise(&outcomes, gate, temperature);
    r.latency_mode = "recorded".into();
    r.items = items.to_vec();
    r
}

/// Reads per-utterance results saved as JSON lines (`--save-scores`).
pub fn read_scores(path: &Path) -> Result<Vec<ItemResult>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let it: ItemResult = serde_json::from_str(l).map_err(|e| Error::Manifest {
                file: path.display().to_string(),
                line: i + 1,
                msg: format!("not a saved utterance result: {e}"),
            })?;
            if it.acoustic.len() != it.candidates.len() {
                return Err(Error::Manifest {
                    file: path.display().to_string(),
                    line: i + 1,
                    msg: format!("{} acoustic scores for {} candidates", it.acoustic.len(), it.candidates.len()),
                });
            }
            Ok(it)
        })
        .collect()
}

fn summarise(outcomes: &[Outcome], gate: f32, temperature: f32) -> Report {
    let n = outcomes.len();
    let correct = outcomes.iter().filter(|o| o.best == o.expected).count();
    let mut gated = 0;
    let mut gated_ok = 0;
    for o in outcomes {
        let p = softmax(&o.totals, temperature);
        let conf = p.iter().copied().fold(0.0, f32::max);
        if conf >= gate {
            gated += 1;
            if o.best == o.expected {
                gated_ok += 1;
            }
        }
    }
    let mut confusions: BTreeMap<(String, String), usize> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| o.best != o.expected) {
        *confusions.entry((o.expected.clone(), o.best.clone())).or_default() += 1;
    }
    let mut confusions: Vec<Confusion> = confusions
        .into_iter()
        .map(|((expected, recognised), count)| Confusion { expected, recognised, count })
        .collect();
    confusions.sort_by_key(|c| std::cmp::Reverse(c.count));
    let mut lat: Vec<f64> = outcomes.iter().map(|o| o.latency_ms).collect();
    lat.sort_by(f64::total_cmp);
    let mut compute: Vec<f64> = outcomes.iter().map(|o| o.compute_ms).collect();
    compute.sort_by(f64::total_cmp);
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Report {
        n,
        correct,
        accuracy: ratio(correct, n),
        gated_accuracy: ratio(gated_ok, gated),
        coverage: ratio(gated, n),
        gated_errors: gated - gated_ok,
        gate,
        temperature,
        fitted_temperature: fit_temperature(outcomes),
        mean_candidates: ratio(outcomes.iter().map(|o| o.totals.len()).sum(), n),
        latency_p50_ms: percentile(&lat, 0.50),
        latency_p95_ms: percentile(&lat, 0.95),
        latency_max_ms: lat.last().copied().unwrap_or(0.0),
        latency_mode: "batch".into(),
        compute_p50_ms: percentile(&compute, 0.50),
        compute_p95_ms: percentile(&compute, 0.95),
        speculative_share: ratio(outcomes.iter().filter(|o| o.speculative).count(), n),
        confusions,
        items: Vec::new(),
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Grid search (log-spaced 0.05…50) for the temperature minimising the mean negative
/// log-likelihood of the expected candidate: the standard "temperature scaling" calibration.
fn fit_temperature(outcomes: &[Outcome]) -> f32 {
    let nll = |t: f32| -> f64 {
        outcomes
            .iter()
            .filter(|o| o.totals.len() > 1)
            .map(|o| -(softmax(&o.totals, t)[o.expected_idx].max(1e-12) as f64).ln())
            .sum()
    };
    let mut best = (f64::INFINITY, 1.0f32);
    for i in 0..=200 {
        let t = 0.05f32 * (1000f32).powf(i as f32 / 200.0);
        let v = nll(t);
        if v < best.0 {
            best = (v, t);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_errors_name_file_and_line() {
        let dir = std::env::temp_dir().join(format!("veertien-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.tsv");
        std::fs::write(&p, "# comment\na.wav\tGoes\tGoes;Kapelle\nb.wav\tTholen\tGoes;Kapelle\n").unwrap();
        let err = read_manifest(&p).unwrap_err().to_string();
        assert!(err.contains("m.tsv line 3"), "{err}");
        assert!(err.contains("Tholen"), "{err}");
        std::fs::write(&p, "sub/a.wav\tGoes\tGoes; Kapelle\n").unwrap();
        let items = read_manifest(&p).unwrap();
        assert_eq!(items[0].wav, dir.join("sub/a.wav"));
        assert_eq!(items[0].candidates, vec!["Goes".to_string(), "Kapelle".to_string()]);
        std::fs::remove_dir_all(&dir).ok();
    }

    fn outcome(totals: Vec<f32>, expected_idx: usize, best: usize) -> Outcome {
        Outcome {
            expected: format!("c{expected_idx}"),
            best: format!("c{best}"),
            acoustic: totals.clone(),
            prior_decided: false,
            totals,
            expected_idx,
            latency_ms: 100.0,
            compute_ms: 100.0,
            speculative: false,
        }
    }

    #[test]
    fn summary_counts_gate_and_confusions() {
        let outs = vec![
            outcome(vec![10.0, 0.0], 0, 0), // confident, right
            outcome(vec![0.2, 0.0], 0, 0),  // unsure, right
            outcome(vec![0.0, 9.0], 0, 1),  // confident, wrong
            outcome(vec![0.0, 0.1], 0, 1),  // unsure, wrong
        ];
        let r = summarise(&outs, 0.9, 1.0);
        assert_eq!(r.n, 4);
        assert_eq!(r.correct, 2);
        assert!((r.coverage - 0.5).abs() < 1e-9);
        assert!((r.gated_accuracy - 0.5).abs() < 1e-9);
        assert_eq!(r.gated_errors, 1);
        assert_eq!(r.confusions.len(), 1);
        assert_eq!(r.confusions[0].count, 2);
    }

    #[test]
    fn fitted_temperature_grows_when_scores_are_overconfident() {
        // Large score gaps but half of them wrong: a good calibration must flatten (large T).
        let over: Vec<Outcome> =
            (0..10).map(|i| outcome(vec![20.0, 0.0], i % 2, 0)).collect();
        // Right every time with small gaps: sharpen (small T).
        let under: Vec<Outcome> = (0..10).map(|_| outcome(vec![1.0, 0.0], 0, 0)).collect();
        assert!(fit_temperature(&over) > 10.0 * fit_temperature(&under));
    }

    #[test]
    fn population_of_the_shipped_plan_covers_spoken_forms() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/numberplan/gemeenten.csv");
        let pop = population_from_csv(&p).unwrap();
        assert!(pop.len() >= 342);
        assert_eq!(pop["Laren"], pop["Laren (NH.)"]);
        assert_eq!(pop["Den Haag"], pop["'s-Gravenhage"]);
        assert!(pop["Amsterdam"] > pop["Goes"]);
    }

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(|x| x as f64).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
    }
}
