//! `cargo run --release -p veertien-speech --example eval -- <manifest.tsv> [--json] [--limit N]
//! [--first-token-beam X] [--carrier-beam X] [--temperature T] [--end-tail-ms MS|none] [--start-lead-ms MS|none]
//! [--batch] [--dump items.jsonl] [--precision f32|int8] [-v]` — the evaluation of `veertien speech eval`, plus knobs of the recognizer for
//! ablations. Default: streamed replay (latency after the VAD's end of speech); `--batch`
//! scores each file at once (same answers, latency = compute time, much faster run).
use veertien_speech::{default_model_dir, evaluate, EvalOptions, Recognizer, RecognizerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: first statement of main, no other thread exists yet.
    unsafe { veertien_speech::init_process() };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let manifest = args.iter().find(|a| a.ends_with(".tsv")).ok_or("usage: eval <manifest.tsv> [options]")?;
    let val = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let mut cfg = RecognizerConfig::default();
    if let Some(v) = val("--first-token-beam") {
        cfg.first_token_beam = v.parse()?;
    }
    if let Some(v) = val("--carrier-beam") {
        cfg.carrier_beam = v.parse()?;
    }
    if let Some(v) = val("--end-tail-ms") {
        cfg.end_tail_ms = if v == "none" { None } else { Some(v.parse()?) };
    }
    if let Some(v) = val("--start-lead-ms") {
        cfg.start_lead_ms = if v == "none" { None } else { Some(v.parse()?) };
    }
    if let Some(v) = val("--precision") {
        cfg.precision = match v.as_str() {
            "f32" => veertien_speech::Precision::F32,
            "int8" => veertien_speech::Precision::Int8,
            _ => return Err(format!("--precision {v}: expected f32 or int8").into()),
        };
    }
    let rec = std::sync::Arc::new(Recognizer::load_with(&default_model_dir(), cfg)?);
    let opts = EvalOptions {
        limit: val("--limit").map(|v| v.parse()).transpose()?,
        temperature: val("--temperature").map(|v| v.parse()).transpose()?,
        verbose: args.iter().any(|a| a == "-v"),
        population: val("--population").map(|p| veertien_speech::population_from_csv(std::path::Path::new(&p))).transpose()?,
        ..Default::default()
    };
    let manifest = std::path::Path::new(manifest);
    let report = if args.iter().any(|a| a == "--batch") {
        evaluate(&rec, manifest, &opts)?
    } else {
        veertien_speech::evaluate_streamed(&rec, manifest, &opts, veertien_speech::StreamSim::default())?
    };
    if let Some(path) = val("--dump") {
        // One JSON object per utterance (expected, best, confidence, per-candidate acoustic
        // scores, latency): the input of the offline gate/prior calibration.
        let mut out = String::new();
        for it in &report.items {
            out += &serde_json::to_string(it)?;
            out.push('\n');
        }
        std::fs::write(&path, out)?;
    }
    if args.iter().any(|a| a == "--json") {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}
