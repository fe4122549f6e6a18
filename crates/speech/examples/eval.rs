//! `cargo run --release -p veertien-speech --example eval -- <manifest.tsv> [--json] [--limit N]
//! [--first-token-beam X] [--carrier-beam X] [--temperature T] [-v]` — the evaluation of
//! `veertien speech eval`, plus knobs of the recognizer for ablations.
use veertien_speech::{default_model_dir, evaluate, EvalOptions, Recognizer, RecognizerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let rec = Recognizer::load_with(&default_model_dir(), cfg)?;
    let opts = EvalOptions {
        limit: val("--limit").map(|v| v.parse()).transpose()?,
        temperature: val("--temperature").map(|v| v.parse()).transpose()?,
        verbose: args.iter().any(|a| a == "-v"),
        population: val("--population").map(|p| veertien_speech::population_from_csv(std::path::Path::new(&p))).transpose()?,
        ..Default::default()
    };
    let report = evaluate(&rec, std::path::Path::new(manifest), &opts)?;
    if args.iter().any(|a| a == "--json") {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}
