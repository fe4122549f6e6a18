//! The detectors on generated Dutch speech: every municipality name in the national
//! number plan, spoken by espeak-ng, must produce no DTMF (talk-off), and isolated
//! names must each come out of the VAD as one utterance.

mod common;

use veertien_media::dtmf::Digit;
use veertien_media::g711::Codec;
use veertien_media::inband::{InbandDetector, generate_tone};
use veertien_media::vad::{Vad, VadEvent};

fn municipality_names() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/numberplan/gemeenten.csv");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let col = header.split(',').position(|h| h == "name").expect("gemeenten.csv has a name column");
    let names: Vec<String> = lines.map(|l| l.split(',').nth(col).unwrap().trim_matches('"').to_string()).collect();
    assert!(names.len() > 300, "expected all ~342 municipalities, got {}", names.len());
    names
}

/// G.711 round trip, as the audio arrives over a call.
fn telephone(pcm: &[i16], codec: Codec) -> Vec<i16> {
    let mut enc = Vec::new();
    codec.encode(pcm, &mut enc);
    let mut dec = Vec::new();
    codec.decode(&enc, &mut dec);
    dec
}

#[test]
fn no_dtmf_talk_off_on_every_municipality_name() {
    let names = municipality_names();
    // One sentence per name, in two voices, through both G.711 laws.
    let text = names.join(". ");
    for (voice, codec) in [("nl", Codec::Pcma), ("nl+f3", Codec::Pcmu)] {
        let Some(speech) = common::espeak(&text, voice) else { return };
        assert!(speech.len() > 8000 * 60 * 2, "espeak produced only {} samples", speech.len());
        let mut det = InbandDetector::default();
        let mut digits = Vec::new();
        det.process(&telephone(&speech, codec), &mut digits);
        assert!(digits.is_empty(), "voice {voice}: speech detected as DTMF {digits:?}");
    }
}

#[test]
fn dtmf_over_speech_is_still_found() {
    let Some(speech) = common::espeak("Noordoostpolder, Súdwest-Fryslân, 's-Hertogenbosch", "nl") else { return };
    let tone = generate_tone(Digit::D3, 100, -8.0);
    let mut mixed = telephone(&speech, Codec::Pcma);
    // Speech continues under the tone at ~ -20 dB relative (a caller talking while pressing).
    let at = mixed.len() / 2;
    for (i, t) in tone.iter().enumerate() {
        mixed[at + i] = ((mixed[at + i] as i32) / 10 + *t as i32).clamp(-32768, 32767) as i16;
    }
    let mut det = InbandDetector::default();
    let mut digits = Vec::new();
    det.process(&mixed, &mut digits);
    assert_eq!(digits, vec![Digit::D3]);
}

#[test]
fn each_spoken_name_is_one_utterance() {
    for name in ["Kapelle", "Goes", "Reimerswaal", "Noord-Beveland", "Borsele", "Haarlemmermeer", "Epe"] {
        let Some(speech) = common::espeak(name, "nl") else { return };
        let mut pcm = common::noise(600, -55.0, 3);
        pcm.extend(telephone(&speech, Codec::Pcmu));
        pcm.extend(common::noise(1200, -55.0, 4));
        let mut vad = Vad::default();
        let mut ev = Vec::new();
        for chunk in pcm.chunks(160) {
            vad.process(chunk, &mut ev);
        }
        let utts: Vec<(u64, u64)> = ev.iter().filter_map(|e| if let VadEvent::Utterance { start, end, .. } = e { Some((*start, *end)) } else { None }).collect();
        assert_eq!(utts.len(), 1, "{name}: {ev:?}");
        let (start, end) = utts[0];
        // The utterance starts before the speech (pre-roll) and covers its audible part.
        assert!(start <= 600 * 8 + 800, "{name}: starts at {start}");
        assert!(end - start >= 8 * 250, "{name}: only {} ms", (end - start) / 8);
    }
}
