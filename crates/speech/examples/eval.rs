//! `cargo run -p veertien-speech --example eval -- <manifest.tsv> [--json] [--limit N] [-v]`
//! (the same evaluation as `veertien speech eval`).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let manifest = args.iter().find(|a| !a.starts_with('-') && a.ends_with(".tsv")).ok_or("usage: eval <manifest.tsv> [--json] [--limit N] [-v]")?;
    let limit = args.iter().position(|a| a == "--limit").and_then(|i| args.get(i + 1)).map(|v| v.parse()).transpose()?;
    let rec = veertien_speech::Recognizer::load(&veertien_speech::default_model_dir())?;
    let opts = veertien_speech::EvalOptions { limit, verbose: args.iter().any(|a| a == "-v"), ..Default::default() };
    let report = veertien_speech::evaluate(&rec, std::path::Path::new(manifest), &opts)?;
    if args.iter().any(|a| a == "--json") {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}
