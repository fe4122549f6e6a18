//! `cargo run -p veertien-speech --example install_model [dir]` — same as `veertien model install`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(veertien_speech::default_model_dir);
    veertien_speech::install(&dir, |p| eprintln!("{p}"))?;
    Ok(())
}
