//! Diagnostics: `cargo run -p veertien-speech --example transcribe -- <wav> [cand;cand;...]`
//! prints Whisper's greedy transcript and, with candidates, the closed-set ranking.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let wav = args.get(1).ok_or("usage: transcribe <wav> [cand;cand;...]")?;
    let t0 = std::time::Instant::now();
    let rec = veertien_speech::Recognizer::load(&veertien_speech::default_model_dir())?;
    eprintln!("loaded in {:?}", t0.elapsed());
    let mut samples = veertien_speech::audio::load_wav_16k(std::path::Path::new(wav))?;
    if std::env::var_os("PAD30").is_some() {
        // Whisper's own 30 s window (minus the recognizer's 0.5 s tail), for comparisons.
        samples.resize(16000 * 59 / 2, 0.0);
    }
    let t1 = std::time::Instant::now();
    println!("transcript: {:?} ({:?})", rec.transcribe_16k(&samples, 40)?, t1.elapsed());
    if let Some(c) = args.get(2) {
        let (pcm, _) = veertien_speech::audio::read_wav(std::path::Path::new(wav))?;
        let phrases: Vec<(String, String)> = c.split(';').map(|s| (s.to_string(), s.to_string())).collect();
        let r = rec.score(&pcm, &phrases)?;
        eprintln!("first call (fills the silence cache): {:?}", r.latency);
        let r = rec.score(&pcm, &phrases)?;
        println!("best {} conf {:.3} latency {:?}", r.best, r.confidence, r.latency);
        for s in &r.scores {
            println!("  {:<28} carrier {:<14} acoustic {:>8.3} total {:>8.3} p {:.3}", s.phrase, s.carrier, s.acoustic, s.total, s.probability);
        }
    }
    Ok(())
}
