//! `veertien speech eval`: closed-set recognition accuracy and latency on a manifest, and what
//! the caller dialogue makes of the recognised answers (put through directly, after "Bedoelt u
//! …?", via the keypad menu, misrouted).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;
use veertien_core::{CallInfo, Decision, MunicipalityId, Plan, Settings, decide};
use veertien_ivr::{Action, Dialogue, DialogueConfig, DialogueOutcome, Event, Prompt};
use veertien_speech::ItemResult;

#[derive(Subcommand, Debug)]
pub enum SpeechCommand {
    /// Herkenning meten op een manifest / evaluate recognition on a manifest
    /// (`wav<TAB>expected<TAB>cand;cand;…`, paths relative to the manifest)
    Eval {
        manifest: PathBuf,
        /// JSON-uitvoer / JSON output (keys n, accuracy, gated_accuracy, coverage, latency_p50_ms,
        /// latency_p95_ms, put_through_share, misroutes, dialogue, …)
        #[arg(long)]
        json: bool,
        /// Elk bestand in één keer scoren i.p.v. in realtime afspelen (sneller, zelfde antwoorden;
        /// latentie = rekentijd) / score each file at once instead of replaying it in real time
        /// (faster, same answers; latency = compute time)
        #[arg(long)]
        batch: bool,
        /// Betrouwbaarheidsdrempel / confidence gate [default: the recognizer's]
        #[arg(long)]
        gate: Option<f32>,
        /// Softmax-temperatuur / softmax temperature [default: the recognizer's]
        #[arg(long)]
        temperature: Option<f32>,
        /// Inwonertallen als prior (gemeenten.csv) / population prior (gemeenten.csv)
        #[arg(long, value_name = "CSV")]
        population: Option<PathBuf>,
        /// Alleen de eerste N uitingen / only the first N utterances
        #[arg(long)]
        limit: Option<usize>,
        /// Modelmap / model directory [default: $VEERTIEN_MODEL_DIR or ~/.cache/veertien/whisper-base]
        #[arg(long, value_name = "DIR")]
        model_dir: Option<PathBuf>,
        /// Map met het nummerplan / number plan directory [default: the built-in plan]
        #[arg(long, value_name = "DIR")]
        plan: Option<PathBuf>,
        /// Instellingenbestand (TOML) voor de dialoogsimulatie / settings file (TOML) for the
        /// dialogue simulation [default: the built-in defaults]
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
        /// Voortgang per uiting / progress per utterance (stderr)
        #[arg(short, long)]
        verbose: bool,
        /// Scores per uiting bewaren (JSON-regels) / save per-utterance scores (JSON lines)
        #[arg(long, value_name = "FILE")]
        save_scores: Option<PathBuf>,
        /// Bewaarde scores gebruiken i.p.v. het model / use saved scores instead of the model
        /// (priors and the dialogue gate are re-applied; latency figures are the recorded ones)
        #[arg(long, value_name = "FILE")]
        scores: Option<PathBuf>,
        /// Alleen de helft van de regels / only half of the manifest lines: `tune` (odd lines)
        /// or `held-out` (even lines); the generated set lists each name's utterances in pairs
        #[arg(long, value_parser = ["tune", "held-out"])]
        half: Option<String>,
        /// Drempel direct doorverbinden / put-through threshold [default: the dialogue's]
        #[arg(long)]
        put_through: Option<f32>,
        /// Minimale marge tot de tweede / minimum margin to the runner-up [default: the dialogue's]
        #[arg(long)]
        margin: Option<f32>,
        /// Beller met eerdere keuze simuleren / simulate a returning caller whose earlier
        /// confirmed choice is the right municipality (`right`) or the recogniser's strongest
        /// wrong candidate (`wrong`)
        #[arg(long, value_parser = ["right", "wrong"])]
        history: Option<String>,
        /// Drempels zoeken: nul misroutes, zoveel mogelijk direct / search the put-through
        /// threshold and margin with zero misroutes and the most direct put-throughs
        #[arg(long)]
        calibrate: bool,
    },
}

pub fn run(cmd: SpeechCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SpeechCommand::Eval {
            manifest,
            json,
            batch,
            gate,
            temperature,
            population,
            limit,
            model_dir,
            plan,
            settings,
            verbose,
            save_scores,
            scores,
            half,
            put_through,
            margin,
            history,
            calibrate,
        } => {
            let plan = super::load_plan(plan.as_deref())?;
            let settings = super::load_settings(settings.as_deref(), &plan)?;
            let population = population.map(|p| veertien_speech::population_from_csv(&p)).transpose()?;
            let rec_config = veertien_speech::RecognizerConfig::default();
            let mut report = match &scores {
                Some(path) => {
                    // The manifest still names the set: its lines must match the saved ones.
                    let lines: Vec<usize> =
                        veertien_speech::read_manifest(&manifest)?.iter().map(|i| i.line).collect();
                    let mut items = veertien_speech::read_scores(path)?;
                    items.retain(|it| lines.contains(&it.line));
                    if let Some(l) = limit {
                        items.truncate(l);
                    }
                    anyhow::ensure!(!items.is_empty(), "{}: no saved scores for lines of {}", path.display(), manifest.display());
                    items
                }
                None => {
                    let dir = model_dir.unwrap_or_else(veertien_speech::default_model_dir);
                    let rec = Arc::new(veertien_speech::Recognizer::load(&dir)?);
                    let opts = veertien_speech::EvalOptions { gate, temperature, population: population.clone(), limit, verbose };
                    let report = if batch {
                        veertien_speech::evaluate(&rec, &manifest, &opts)
                    } else {
                        veertien_speech::evaluate_streamed(&rec, &manifest, &opts, veertien_speech::StreamSim::default())
                    }
                    .with_context(|| format!("evaluating {}", manifest.display()))?;
                    report.items
                }
            };
            if let Some(path) = &save_scores {
                let mut out = String::new();
                for it in &report {
                    out += &serde_json::to_string(it)?;
                    out.push('\n');
                }
                std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
            }
            if let Some(h) = &half {
                let keep_odd = h == "tune";
                report.retain(|it| (it.line % 2 == 1) == keep_odd);
            }
            // Priors re-applied to the acoustic scores (the same combination the recogniser uses).
            let wrong_choice = |it: &veertien_speech::ItemResult| -> Option<String> {
                it.candidates
                    .iter()
                    .zip(&it.acoustic)
                    .filter(|(c, _)| **c != it.expected)
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(c, _)| c.clone())
            };
            let priors = |it: &veertien_speech::ItemResult| {
                let p = veertien_speech::population_priors(&it.candidates, population.as_ref());
                match history.as_deref() {
                    Some("right") => p.with_history([(it.expected.clone(), 1)]),
                    Some("wrong") => p.with_history(wrong_choice(it).map(|c| (c, 1))),
                    _ => p,
                }
            };
            let mut report = veertien_speech::report_from_scores(
                &mut report,
                priors,
                &rec_config,
                gate.unwrap_or(rec_config.gate),
                temperature.unwrap_or(rec_config.temperature),
            );
            if scores.is_none() {
                report.latency_mode = if batch { "batch" } else { "stream" }.into();
            }
            let mut config = DialogueConfig::default();
            if let Some(v) = put_through {
                config.put_through = v;
            }
            if let Some(v) = margin {
                config.put_through_margin = v;
            }
            if calibrate {
                let table = calibrate_gate(&report.items, &plan, &settings, &config)?;
                if json {
                    outln!("{}", serde_json::to_string_pretty(&table)?);
                } else {
                    for row in &table {
                        outln!(
                            "put through ≥ {:.3}, margin ≥ {:.2}: direct {:.1}%, misroutes {}",
                            row.put_through,
                            row.margin,
                            100.0 * row.put_through_share,
                            row.misroutes
                        );
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            let dialogue = simulate_dialogues(&report.items, &plan, &settings, config)
                .with_context(|| format!("simulating the dialogue over {}", manifest.display()))?;
            if json {
                let mut v = serde_json::to_value(&report)?;
                v["put_through_share"] = serde_json::json!(dialogue.put_through_share);
                v["misroutes"] = serde_json::json!(dialogue.misroutes);
                v["dialogue"] = serde_json::to_value(&dialogue)?;
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                out!("{}", report.to_text());
                out!("{}", dialogue.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What the dialogue made of each utterance's recognition.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DialogueReport {
    pub n: usize,
    /// Put through (or told the right message) on the first answer, without confirmation.
    pub put_through_direct: usize,
    pub put_through_share: f64,
    /// Reached the right municipality after "Bedoelt u …?".
    pub after_confirmation: usize,
    /// Reached it through the keypad menu.
    pub via_keypad: usize,
    /// Ended at another municipality than the caller wanted (target: 0).
    pub misroutes: usize,
    /// Ended without a municipality (operator, or the closing message).
    pub not_routed: usize,
    pub put_through_threshold: f32,
    pub confirm_threshold: f32,
    /// How the simulated caller behaves after the first utterance.
    pub caller_model: &'static str,
    /// Misrouted utterances: (wav, expected, reached).
    pub misrouted: Vec<(String, String, String)>,
}

const CALLER_MODEL: &str = "says the name once (the recognised utterance); answers \"Bedoelt u X?\" \
    correctly (key 1 if X is the municipality meant, else 2) and picks the right digit in the keypad menu";

impl DialogueReport {
    pub fn to_text(&self) -> String {
        let pct = |k: usize| if self.n == 0 { 0.0 } else { 100.0 * k as f64 / self.n as f64 };
        let mut s = format!(
            "dialogue / dialoog (put through ≥ {:.2}, confirm ≥ {:.2}; caller: {}):\n",
            self.put_through_threshold, self.confirm_threshold, self.caller_model
        );
        s += &format!(
            "  put through without confirmation / direct doorverbonden: {:.1}% ({}/{})\n",
            100.0 * self.put_through_share,
            self.put_through_direct,
            self.n
        );
        s += &format!(
            "  after confirmation / na bevestiging: {:.1}%, via keypad / via keuzemenu: {:.1}%, not routed / niet doorverbonden: {}\n",
            pct(self.after_confirmation),
            pct(self.via_keypad),
            self.not_routed
        );
        s += &format!("  misroutes after the whole dialogue / verkeerd doorverbonden: {}\n", self.misroutes);
        for (wav, want, got) in &self.misrouted {
            s += &format!("    {wav}: {want} -> {got}\n");
        }
        s
    }
}

/// How one simulated call ended.
#[derive(Debug, Clone, PartialEq)]
enum CallEnd {
    Reached { id: MunicipalityId, confirmed: bool, keypad: bool },
    NotRouted,
}

/// Runs the real [`Dialogue`] for every evaluated utterance on the area code its candidates
/// belong to: the first utterance's recognition is the caller's answer, then the caller
/// behaves as [`CALLER_MODEL`] says.
pub fn simulate_dialogues(
    items: &[ItemResult],
    plan: &Plan,
    settings: &Settings,
    config: DialogueConfig,
) -> anyhow::Result<DialogueReport> {
    // A weekday morning, so opening hours never get in the way of routing.
    let now: jiff::Timestamp = "2026-11-23T09:30:00Z".parse()?;
    let mut areas: HashMap<Vec<String>, (String, Vec<MunicipalityId>)> = HashMap::new();
    let mut r = DialogueReport {
        put_through_threshold: config.put_through,
        confirm_threshold: config.confirm,
        caller_model: CALLER_MODEL,
        ..Default::default()
    };
    for it in items {
        let key = it.candidates.clone();
        if !areas.contains_key(&key) {
            let found = area_code_for(&it.candidates, plan, settings, now).with_context(|| {
                format!("{} (manifest line {}): no shared area code has exactly these municipalities: {}", it.wav.display(), it.line, it.candidates.join(";"))
            })?;
            areas.insert(key.clone(), found);
        }
        let (code, ids) = &areas[&key];
        let pos = it.candidates.iter().position(|c| c == &it.expected).context("expected not among candidates")?;
        let expected = ids[pos];
        r.n += 1;
        match run_call(code, it, expected, plan, settings, config.clone(), now)? {
            CallEnd::Reached { id, confirmed, keypad } if id == expected => {
                if keypad {
                    r.via_keypad += 1;
                } else if confirmed {
                    r.after_confirmation += 1;
                } else {
                    r.put_through_direct += 1;
                }
            }
            CallEnd::Reached { id, .. } => {
                r.misroutes += 1;
                r.misrouted.push((
                    it.wav.display().to_string(),
                    plan.municipality(expected).name.clone(),
                    plan.municipality(id).name.clone(),
                ));
            }
            CallEnd::NotRouted => r.not_routed += 1,
        }
    }
    r.put_through_share = if r.n == 0 { 0.0 } else { r.put_through_direct as f64 / r.n as f64 };
    Ok(r)
}

/// The recogniser's ranking of one utterance, best first (what the driver passes on).
fn ranking(it: &ItemResult) -> Vec<(String, f32)> {
    let mut top: Vec<(String, f32)> = it.candidates.iter().cloned().zip(it.probabilities.iter().copied()).collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(5);
    top
}

/// One point of the put-through calibration.
#[derive(Debug, Clone, Serialize)]
pub struct GateRow {
    pub put_through: f32,
    pub margin: f32,
    pub put_through_share: f64,
    pub misroutes: usize,
}

/// Runs the dialogue simulation over a grid of put-through thresholds and margins; returns the
/// points with zero misroutes, most direct put-throughs first (then the lowest thresholds), or,
/// when no point reaches zero, the ones with the fewest misroutes.
pub fn calibrate_gate(
    items: &[ItemResult],
    plan: &Plan,
    settings: &Settings,
    base: &DialogueConfig,
) -> anyhow::Result<Vec<GateRow>> {
    let mut rows = Vec::new();
    let thresholds = [0.5f32, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999];
    for &t in &thresholds {
        for &m in &[0.0f32, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95] {
            let config = DialogueConfig { put_through: t, put_through_margin: m, confirm: base.confirm.min(t), ..base.clone() };
            let r = simulate_dialogues(items, plan, settings, config)?;
            rows.push(GateRow { put_through: t, margin: m, put_through_share: r.put_through_share, misroutes: r.misroutes });
        }
    }
    let fewest = rows.iter().map(|r| r.misroutes).min().unwrap_or(0);
    rows.retain(|r| r.misroutes == fewest);
    rows.sort_by(|a, b| {
        b.put_through_share
            .total_cmp(&a.put_through_share)
            .then(a.put_through.total_cmp(&b.put_through))
            .then(a.margin.total_cmp(&b.margin))
    });
    rows.truncate(10);
    Ok(rows)
}

/// The shared area code whose municipalities are exactly `names` (in the spoken forms the test
/// set uses, matched through the platform's own name resolution), and their ids in `names`' order.
fn area_code_for(
    names: &[String],
    plan: &Plan,
    settings: &Settings,
    now: jiff::Timestamp,
) -> Option<(String, Vec<MunicipalityId>)> {
    for area in plan.area_codes() {
        let dialled = format!("14{}", area.code);
        let Decision::Ask { candidates, .. } = decide(&CallInfo { dialled: &dialled, caller: None }, plan, settings, now)
        else {
            continue;
        };
        if candidates.len() != names.len() {
            continue;
        }
        let ids: Vec<MunicipalityId> = candidates.iter().map(|c| c.municipality.id).collect();
        let resolved: Option<Vec<MunicipalityId>> = names
            .iter()
            .map(|n| veertien_names::resolve(n, &ids, plan, settings).meant().filter(|m| ids.contains(m)))
            .collect();
        if let Some(r) = resolved {
            let mut distinct = r.clone();
            distinct.sort();
            distinct.dedup();
            if distinct.len() == ids.len() {
                return Some((area.code.clone(), r));
            }
        }
    }
    None
}

/// One call: dial 14 + `code`, answer the question with `heard` at `confidence`, then behave
/// as [`CALLER_MODEL`] says until the dialogue finishes.
#[allow(clippy::too_many_arguments)]
fn run_call(
    code: &str,
    heard: &ItemResult,
    expected: MunicipalityId,
    plan: &Plan,
    settings: &Settings,
    config: DialogueConfig,
    now: jiff::Timestamp,
) -> anyhow::Result<CallEnd> {
    let dialled = format!("14{code}");
    let decision = decide(&CallInfo { dialled: &dialled, caller: None }, plan, settings, now);
    let mut d = Dialogue::new(&decision, plan, settings, config, now)
        .with_context(|| format!("14{code} does not ask for a municipality"))?;
    let want = &plan.municipality(expected).everyday_name;
    let digit = |items: &[veertien_ivr::MenuItem]| {
        items.iter().find(|i| &i.name == want).and_then(|i| char::from_digit(u32::from(i.digit) % 10, 10))
    };
    let (mut answered, mut confirmed, mut keypad) = (false, false, false);
    let mut t = 0u64;
    let mut actions = d.handle(Event::Start, t);
    // The dialogue bounds its own events; this only guards the simulation.
    for _ in 0..64 {
        t += 1000;
        let mut next = None;
        for a in &actions {
            match a {
                Action::Finish { outcome } => {
                    let id = match outcome {
                        DialogueOutcome::Deliver { municipality, .. } => Some(municipality.id),
                        DialogueOutcome::Announce { municipality, .. } => municipality.as_ref().map(|m| m.id),
                        DialogueOutcome::Operator { .. } | DialogueOutcome::CallerHungUp => None,
                    };
                    return Ok(match id {
                        Some(id) => CallEnd::Reached { id, confirmed, keypad },
                        None => CallEnd::NotRouted,
                    });
                }
                Action::Play { prompts, input: None, .. } if !prompts.is_empty() => next = Some(Event::PromptFinished),
                Action::Play { prompts, input: Some(_), .. } => {
                    next = Some(if !answered {
                        answered = true;
                        Event::HeardRanked {
                            text: heard.best.clone(),
                            confidence: heard.confidence,
                            top: ranking(heard),
                            prior_decided: heard.prior_decided,
                        }
                    } else if let Some(Prompt::Confirm { name }) = prompts.iter().find(|p| matches!(p, Prompt::Confirm { .. })) {
                        confirmed = true;
                        Event::Dtmf { key: if name == want { '1' } else { '2' } }
                    } else if let Some(k) = prompts.iter().find_map(|p| match p {
                        Prompt::Menu { items } | Prompt::WhichOne { options: items, .. } => digit(items.as_slice()),
                        _ => None,
                    }) {
                        keypad = true;
                        Event::Dtmf { key: k }
                    } else {
                        Event::Timeout
                    });
                }
                _ => {}
            }
        }
        actions = d.handle(next.unwrap_or(Event::Timeout), t);
    }
    anyhow::bail!("the dialogue for 14{code} did not finish")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(expected: &str, best: &str, confidence: f32, candidates: &str) -> ItemResult {
        ItemResult {
            wav: PathBuf::from(format!("{expected}.wav")),
            line: 1,
            expected: expected.into(),
            candidates: candidates.split(';').map(String::from).collect(),
            best: best.into(),
            confidence,
            latency_ms: 0.0,
            compute_ms: 0.0,
            speculative: false,
            acoustic: Vec::new(),
            probabilities: Vec::new(),
            prior_decided: false,
        }
    }

    const G0113: &str = "Borsele;Goes;Kapelle;Noord-Beveland;Reimerswaal";

    #[test]
    fn dialogue_paths_on_the_real_plan() {
        let plan = Plan::builtin();
        let settings = Settings::defaults(plan);
        let items = vec![
            item("Kapelle", "Kapelle", 0.97, G0113), // direct
            item("Kapelle", "Kapelle", 0.6, G0113),  // confirmed
            item("Kapelle", "Goes", 0.6, G0113),     // "nee" → keypad → Kapelle
            item("Kapelle", "Goes", 0.2, G0113),     // too unsure → keypad
            item("Kapelle", "Goes", 0.97, G0113),    // confident and wrong: a misroute
            // Spoken forms and qualifiers: Den Haag is 's-Gravenhage on 070.
            item("Den Haag", "Den Haag", 0.99, "Den Haag;Leidschendam-Voorburg;Rijswijk;Wassenaar"),
        ];
        let r = simulate_dialogues(&items, plan, &settings, DialogueConfig::default()).unwrap();
        assert_eq!(r.n, 6);
        assert_eq!(r.put_through_direct, 2, "{r:#?}");
        assert_eq!(r.after_confirmation, 1, "{r:#?}");
        assert_eq!(r.via_keypad, 2, "{r:#?}");
        assert_eq!(r.misroutes, 1, "{r:#?}");
        assert_eq!(r.misrouted[0].2, "Goes");
        assert!((r.put_through_share - 2.0 / 6.0).abs() < 1e-9);
        assert!(r.to_text().contains("misroutes after the whole dialogue"));
    }

    #[test]
    fn unknown_candidate_set_is_named_in_the_error() {
        let plan = Plan::builtin();
        let settings = Settings::defaults(plan);
        let items = vec![item("Goes", "Goes", 0.9, "Goes;Amsterdam")];
        let e = simulate_dialogues(&items, plan, &settings, DialogueConfig::default()).unwrap_err();
        assert!(format!("{e:#}").contains("Goes;Amsterdam"), "{e:#}");
    }
}
