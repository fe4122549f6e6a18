//! What the recogniser makes of audio as the IVR hands it over: the caller's line through the
//! media leg's VAD (`veertien_media::vad::Vad`, 20 ms frames, its 300 ms pre-roll and 200 ms
//! tail) and then the recogniser, next to the same audio scored as given (as `veertien speech
//! eval` does). Diagnoses `serve` and `speech eval` disagreeing (docs/PERFORMANCE-speech.md).
//!
//! ```sh
//! # a manifest (as `speech eval`): each file put on a line of its own first 20 ms (digital
//! # silence or its noise) for 2 s before and 1.5 s after, through the VAD; counts both ways
//! cargo run --release -p veertien-ivr --example speech_through_vad -- target/speech-testset/manifest.tsv [--step N]
//! # a call on 0113: the caller's G.711 u-law audio, from a load test's caller.pcap (the PCMU
//! # packets SIPp replays) or raw; writes the VAD's first utterance as a WAV `speech eval` scores
//! cargo run --release -p veertien-ivr --example speech_through_vad -- --pcap caller.pcap --dump utterance.wav
//! cargo run --release -p veertien-ivr --example speech_through_vad -- --ulaw caller.ul
//! ```
//! `--start-lead-ms MS|none` sets `RecognizerConfig::start_lead_ms` (none: the scoring before it).
use veertien_media::vad::{Vad, VadEvent};
use veertien_speech::{Priors, Ranked, Recognizer, RecognizerConfig};

fn first_utterance(line: &[i16]) -> Option<Vec<i16>> {
    let mut vad = Vad::default();
    let mut events = Vec::new();
    for chunk in line.chunks(160) {
        vad.process(chunk, &mut events);
        for e in events.drain(..) {
            if let VadEvent::Utterance { pcm, .. } = e {
                return Some(pcm);
            }
        }
    }
    None
}

/// The PCMU payloads (RTP payload type 0) of a pcap of Ethernet/IPv4/UDP frames, in order, as
/// `scripts/bench/ivr_pcap.py` and the tests' `Rtp::write` make them.
fn pcmu_of_pcap(pcap: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &pcap[(at + 16).min(pcap.len())..(at + 16 + len).min(pcap.len())];
        at += 16 + len;
        // Ethernet 14, IPv4 20 (no options), UDP 8, then the RTP header of 12 bytes.
        if let Some(rtp) = frame.get(42..)
            && rtp.len() > 12
            && rtp[1] & 0x7f == 0
        {
            out.extend_from_slice(&rtp[12..]);
        }
    }
    out
}

fn show(label: &str, r: &Ranked<String>) {
    let top: Vec<String> = r.scores.iter().map(|s| format!("{} {:.3}", s.phrase, s.probability)).collect();
    println!("{label}: {}", top.join(", "));
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let val = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let mut cfg = RecognizerConfig::default();
    if let Some(v) = val("--start-lead-ms") {
        cfg.start_lead_ms = if v == "none" { None } else { Some(v.parse()?) };
    }
    let rec = Recognizer::load_with(&veertien_speech::default_model_dir(), cfg)?;
    let call = match (val("--pcap"), val("--ulaw")) {
        (Some(p), _) => Some(pcmu_of_pcap(&std::fs::read(p)?)),
        (None, Some(u)) => Some(std::fs::read(u)?),
        _ => None,
    };
    if let Some(ulaw) = call {
        let line: Vec<i16> = ulaw.iter().map(|&u| veertien_speech::audio::ulaw_to_linear(u)).collect();
        let names: Vec<(String, String)> =
            ["Borsele", "Goes", "Kapelle", "Noord-Beveland", "Reimerswaal"].map(|n| (n.to_string(), n.to_string())).to_vec();
        let utt = first_utterance(&line).ok_or("no utterance in the audio")?;
        println!("VAD utterance: {} ms", utt.len() / 8);
        show("through the VAD", &rec.score(&utt, &names)?);
        if let Some(out) = val("--dump") {
            let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
            let mut w = hound::WavWriter::create(&out, spec)?;
            for s in &utt {
                w.write_sample(*s)?;
            }
            w.finalize()?;
        }
        return Ok(());
    }
    let manifest = args.iter().find(|a| a.ends_with(".tsv")).ok_or("usage: speech_through_vad <manifest.tsv> | --ulaw FILE")?;
    let step: usize = val("--step").map(|s| s.parse()).transpose()?.unwrap_or(1);
    let (mut n, mut right_given, mut right_vad, mut same) = (0, 0, 0, 0);
    for it in veertien_speech::read_manifest(std::path::Path::new(manifest))?.iter().step_by(step.max(1)) {
        let (pcm, _) = veertien_speech::audio::read_wav(&it.wav)?;
        let phrases: Vec<(String, String)> = it.candidates.iter().map(|c| (c.clone(), c.clone())).collect();
        let given = rec.score_with(&pcm, &phrases, &Priors::default())?;
        let background = &pcm[..160.min(pcm.len())];
        let mut line: Vec<i16> = background.repeat(100);
        line.extend_from_slice(&pcm);
        line.extend(background.repeat(75));
        let Some(utt) = first_utterance(&line) else {
            println!("{}: no utterance", it.wav.display());
            continue;
        };
        let vad = rec.score_with(&utt, &phrases, &Priors::default())?;
        n += 1;
        right_given += u32::from(given.best == it.expected);
        right_vad += u32::from(vad.best == it.expected);
        same += u32::from(given.best == vad.best);
        if given.best != vad.best {
            println!(
                "{}: as given {} {:.2} | through the VAD {} {:.2} (said {})",
                it.wav.display(),
                given.best,
                given.confidence,
                vad.best,
                vad.confidence,
                it.expected
            );
        }
    }
    println!("{n} utterances: right as given {right_given}, right through the VAD {right_vad}, the same answer both ways {same}");
    Ok(())
}
