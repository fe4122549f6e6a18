//! Capacity under concurrent callers: `cargo run --release -p veertien-speech --example
//! concurrency -- <manifest.tsv> <callers> <utterances-per-caller>`. One recognizer (one
//! bounded thread pool) is shared by `callers` threads that each score utterances back to
//! back; prints throughput and the latency each caller saw (queueing included).
use std::sync::Arc;
use std::time::Instant;

use veertien_speech::{audio, default_model_dir, eval::percentile, read_manifest, Recognizer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let manifest = args.first().ok_or("usage: concurrency <manifest.tsv> <callers> <per-caller>")?;
    let callers: usize = args.get(1).map(|v| v.parse()).transpose()?.unwrap_or(4);
    let per: usize = args.get(2).map(|v| v.parse()).transpose()?.unwrap_or(5);
    let rec = Arc::new(Recognizer::load(&default_model_dir())?);
    let items = read_manifest(std::path::Path::new(manifest))?;
    let mut work = Vec::new();
    for it in items.iter().take(callers * per) {
        let (pcm, _) = audio::read_wav(&it.wav)?;
        let phrases: Vec<(String, String)> = it.candidates.iter().map(|c| (c.clone(), c.clone())).collect();
        rec.prepare(&phrases)?;
        work.push((pcm, phrases));
    }
    let work = Arc::new(work);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..callers)
        .map(|c| {
            let rec = rec.clone();
            let work = work.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                for i in 0..per {
                    let (pcm, phrases) = &work[(c * per + i) % work.len()];
                    let t = Instant::now();
                    rec.score(pcm, phrases).expect("scoring failed");
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<f64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let wall = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    println!(
        "callers {callers}, utterances {}, wall {:.1} s, throughput {:.2} utt/s, latency p50 {:.0} ms p95 {:.0} ms",
        lat.len(),
        wall,
        lat.len() as f64 / wall,
        percentile(&lat, 0.5),
        percentile(&lat, 0.95)
    );
    Ok(())
}
