//! How many simultaneous IVR calls one machine holds with speech.
//!
//! `cargo run --release -p veertien-speech --example concurrency -- <manifest.tsv>
//! [--levels 1,2,4,8,12,16] [--seconds 40] [--period 8]`
//!
//! One recognizer (loaded once, one bounded 2-thread pool) is shared by N simulated callers.
//! Each caller says one utterance every `period` seconds (callers evenly staggered), streamed
//! in real time in 20 ms frames through [`veertien_speech::Utterance`] exactly as the IVR
//! driver would: the WAV is the VAD's utterance, followed by the rest of the VAD's hangover
//! (500 ms), then `finish`. Per level it prints the decision latency after end of speech
//! (p50/p95/max), the compute time per decision, the share answered from background scoring,
//! the CPU the process used (cores) and the load average, and at the end the first N whose
//! p95 exceeds 1 s.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use veertien_speech::eval::percentile;
use veertien_speech::{audio, default_model_dir, read_manifest, Priors, Recognizer, StreamSim};

/// Process CPU time (user + system) from /proc/self/stat. The kernel reports it in USER_HZ
/// ticks, which the Linux ABI fixes at 100 per second.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

struct Sample {
    latency_ms: f64,
    compute_ms: f64,
    speculative: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: first statement of main, no other thread exists yet.
    unsafe { veertien_speech::init_process() };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let manifest = args
        .iter()
        .find(|a| a.ends_with(".tsv"))
        .ok_or("usage: concurrency <manifest.tsv> [--levels 1,2,4] [--seconds 40] [--period 8]")?;
    let val = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let levels: Vec<usize> = val("--levels")
        .unwrap_or_else(|| "1,2,4,8,12,16".into())
        .split(',')
        .map(|v| v.trim().parse())
        .collect::<Result<_, _>>()?;
    let seconds: f64 = val("--seconds").map(|v| v.parse()).transpose()?.unwrap_or(40.0);
    let period: f64 = val("--period").map(|v| v.parse()).transpose()?.unwrap_or(8.0);
    let sim = StreamSim::default();

    let rec = Arc::new(Recognizer::load(&default_model_dir())?);
    let mut work = Vec::new();
    for it in read_manifest(Path::new(manifest))? {
        let (pcm, rate) = audio::read_wav(&it.wav)?;
        if rate != 8000 {
            return Err(format!("{}: {rate} Hz, expected 8000", it.wav.display()).into());
        }
        let phrases: Vec<(String, String)> = it.candidates.iter().map(|c| (c.clone(), c.clone())).collect();
        rec.prepare(&phrases)?;
        work.push((pcm, phrases));
    }
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    println!(
        "{} utterances; each caller speaks every {period} s; {seconds} s per level; nproc {}",
        work.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("callers  utterances  p50_ms  p95_ms  max_ms  compute_p50  compute_p95  background  cpu_cores  loadavg");
    let mut crossing = None;
    for &n in &levels {
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|c| {
                let (rec, work, next) = (rec.clone(), work.clone(), next.clone());
                std::thread::spawn(move || {
                    let mut out = Vec::new();
                    let offset = period * c as f64 / n as f64;
                    let mut k = 0u32;
                    loop {
                        let due = t0 + Duration::from_secs_f64(offset + period * k as f64);
                        if due.duration_since(t0).as_secs_f64() >= seconds {
                            break;
                        }
                        if let Some(w) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(w);
                        }
                        let (pcm, phrases) = &work[next.fetch_add(1, Ordering::Relaxed) % work.len()];
                        let mut u = rec.begin(phrases.clone(), Priors::default());
                        let rest = vec![0i16; sim.hangover_ms.saturating_sub(sim.tail_ms) as usize * 8];
                        let start = Instant::now();
                        for (i, frame) in pcm.chunks(160).chain(rest.chunks(160)).enumerate() {
                            let at = start + Duration::from_millis(20 * (i as u64 + 1));
                            if let Some(w) = at.checked_duration_since(Instant::now()) {
                                std::thread::sleep(w);
                            }
                            u.push(frame);
                        }
                        let f = u.finish_detailed(pcm).expect("scoring failed");
                        out.push(Sample {
                            latency_ms: f.ranked.latency.as_secs_f64() * 1e3,
                            compute_ms: f.compute.as_secs_f64() * 1e3,
                            speculative: f.speculative,
                        });
                        k += 1;
                    }
                    out
                })
            })
            .collect();
        let samples: Vec<Sample> = handles.into_iter().flat_map(|h| h.join().expect("caller thread")).collect();
        let wall = t0.elapsed().as_secs_f64();
        let cores = (cpu_seconds() - cpu0) / wall;
        let mut lat: Vec<f64> = samples.iter().map(|s| s.latency_ms).collect();
        lat.sort_by(f64::total_cmp);
        let mut comp: Vec<f64> = samples.iter().map(|s| s.compute_ms).collect();
        comp.sort_by(f64::total_cmp);
        let bg = samples.iter().filter(|s| s.speculative).count() as f64 / samples.len().max(1) as f64;
        let p95 = percentile(&lat, 0.95);
        println!(
            "{n:>7}  {:>10}  {:>6.0}  {p95:>6.0}  {:>6.0}  {:>11.0}  {:>11.0}  {:>9.0}%  {cores:>9.2}  {}",
            samples.len(),
            percentile(&lat, 0.5),
            lat.last().copied().unwrap_or(0.0),
            percentile(&comp, 0.5),
            percentile(&comp, 0.95),
            100.0 * bg,
            loadavg()
        );
        if crossing.is_none() && p95 > 1000.0 {
            crossing = Some(n);
        }
    }
    match crossing {
        Some(n) => println!("decision p95 after end of speech first exceeds 1 s at {n} simultaneous callers"),
        None => println!("decision p95 after end of speech stayed within 1 s at every level measured"),
    }
    Ok(())
}
