//! `veertien speech eval`: run the recognizer over a manifest and report accuracy, accuracy and
//! coverage at the confidence gate, confusions and decision latency.
//!
//! Manifest: one utterance per line, `wav_path<TAB>expected<TAB>cand;cand;…`, paths relative to
//! the manifest's folder; empty lines and lines starting with `#` are skipped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

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
    /// Called after each item with (done, total).
    pub verbose: bool,
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
    pub confusions: Vec<Confusion>,
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
            "latency / latentie: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            self.latency_p50_ms, self.latency_p95_ms, self.latency_max_ms
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
    totals: Vec<f32>,
    expected_idx: usize,
    best: String,
    expected: String,
    latency_ms: f64,
}

pub fn evaluate(rec: &Recognizer, manifest: &Path, opts: &EvalOptions) -> Result<Report, Error> {
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
        let priors = match &opts.population {
            Some(pop) => Priors::from_population(
                &it.candidates.iter().filter_map(|c| pop.get(c).map(|p| (c.clone(), *p))).collect::<Vec<_>>(),
            ),
            None => Priors::default(),
        };
        // Production warms these at startup; keep that one-off cost out of the latency figure.
        rec.prepare(&phrases)?;
        let r = rec.score_with(&pcm, &phrases, &priors)?;
        let totals: Vec<f32> = it
            .candidates
            .iter()
            .map(|c| r.scores.iter().find(|s| &s.key == c).map(|s| s.total).unwrap_or(f32::NEG_INFINITY))
            .collect();
        let expected_idx = it.candidates.iter().position(|c| c == &it.expected).unwrap_or(0);
        if opts.verbose {
            eprintln!(
                "[{}/{}] {} expected {} got {} ({:.2}) {:.0} ms",
                i + 1,
                items.len(),
                it.wav.display(),
                it.expected,
                r.best,
                r.confidence,
                r.latency.as_secs_f64() * 1e3
            );
        }
        outcomes.push(Outcome {
            totals,
            expected_idx,
            best: r.best.clone(),
            expected: it.expected.clone(),
            latency_ms: r.latency.as_secs_f64() * 1e3,
        });
    }
    let gate = opts.gate.unwrap_or(rec.config().gate);
    let temperature = opts.temperature.unwrap_or(rec.config().temperature);
    Ok(summarise(&outcomes, gate, temperature))
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
    confusions.sort_by(|a, b| b.count.cmp(&a.count));
    let mut lat: Vec<f64> = outcomes.iter().map(|o| o.latency_ms).collect();
    lat.sort_by(f64::total_cmp);
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
        confusions,
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
            totals,
            expected_idx,
            latency_ms: 100.0,
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
