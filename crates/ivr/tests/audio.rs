//! Prompt audio: the list covers the whole plan; generation (when espeak-ng and sox are installed) yields
//! 8 kHz mono PCM16 WAV and is cached.

use veertien_core::{Lang, Plan};
use veertien_ivr::audio::{audio_plan, build};
use veertien_ivr::prompts::PieceKind;

#[test]
fn every_municipality_name_and_phrase_has_a_distinct_stable_file() {
    let plan = Plan::builtin();
    let items = audio_plan(plan, &[Lang::Nl, Lang::En, Lang::Fy]);
    for m in plan.municipalities() {
        assert!(
            items.iter().any(|i| i.lang == Lang::Nl
                && i.kind == PieceKind::Name
                && i.text == m.everyday_name),
            "{}",
            m.name
        );
    }
    assert!(items.iter().any(|i| i.text == "Bedoelt u"));
    assert!(items.iter().any(|i| i.text == "vijfenzeventig"));
    let mut files: Vec<&str> = items.iter().map(|i| i.file.as_str()).collect();
    files.sort_unstable();
    let n = files.len();
    files.dedup();
    // The same text in one language is one file (e.g. "acht" is both a number and a phrase piece).
    assert!(files.len() >= n - 5, "{} of {n} distinct", files.len());
    assert_eq!(
        audio_plan(plan, &[Lang::Nl]),
        audio_plan(plan, &[Lang::Nl]),
        "file names are stable"
    );
}

#[test]
fn generated_audio_is_8khz_mono_pcm16_and_cached() {
    if std::process::Command::new("espeak-ng")
        .arg("--version")
        .output()
        .is_err()
        || std::process::Command::new("sox")
            .arg("--version")
            .output()
            .is_err()
    {
        eprintln!("espeak-ng or sox not installed: skipping audio generation");
        return;
    }
    let plan = Plan::builtin();
    let items: Vec<_> = audio_plan(plan, &[Lang::Nl, Lang::Fy])
        .into_iter()
        .filter(|i| {
            ["Kapelle", "Súdwest-Fryslân", "Bedoelt u", "achtendertig"].contains(&i.text.as_str())
        })
        .collect();
    assert!(items.len() >= 6, "{items:?}");
    let out = std::env::temp_dir().join(format!("veertien-ivr-audio-{}", std::process::id()));
    let first = build(&items, &out, |_| {}).unwrap();
    assert_eq!(first.generated, items.len());
    for it in &items {
        let wav = std::fs::read(out.join(&it.file)).unwrap();
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 1, "mono");
        assert_eq!(
            u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]),
            8000,
            "8 kHz"
        );
        assert_eq!(u16::from_le_bytes([wav[34], wav[35]]), 16, "16 bit");
        assert!(
            wav.len() > 44 + 1600,
            "{}: at least 0.1 s of audio",
            it.text
        );
    }
    let second = build(&items, &out, |_| {}).unwrap();
    assert_eq!((second.generated, second.cached), (0, items.len()));
    // A damaged file no longer matches the manifest's hash and is made again.
    std::fs::write(out.join(&items[0].file), b"RIFF").unwrap();
    let third = build(&items, &out, |_| {}).unwrap();
    assert_eq!((third.generated, third.cached), (1, items.len() - 1));
    let manifest = veertien_ivr::audio::Manifest::read(&out).unwrap();
    let e = manifest.get(&items[0].file).unwrap();
    assert_eq!((e.text.as_str(), e.voice.as_str()), (items[0].text.as_str(), "nl"));
    let _ = std::fs::remove_dir_all(&out);
}
