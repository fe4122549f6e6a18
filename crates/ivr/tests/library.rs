//! The prompt library: every piece loaded at start-up, prompts rendered from pieces, a
//! municipality's own recording in place of generated audio, and never silence.

mod support;

use std::path::PathBuf;

use support::*;
use veertien_core::Lang;
use veertien_ivr::library::AudioSource;
use veertien_ivr::{LibraryError, MenuItem, Prompt, PromptLibrary};

fn menu_0113() -> Prompt {
    let area = plan().area_code_id("0113").unwrap();
    let items = plan()
        .area_code_by_id(area)
        .municipalities
        .iter()
        .enumerate()
        .map(|(i, m)| MenuItem {
            digit: i as u8 + 1,
            name: plan().municipality(*m).everyday_name.clone(),
        })
        .collect();
    Prompt::Menu { items }
}

#[test]
fn missing_pieces_without_espeak_is_a_clear_error_at_startup() {
    let dir = tone_dir("missing");
    let gone = veertien_ivr::audio::audio_plan(plan(), &[Lang::Nl])
        .into_iter()
        .find(|i| i.text == "Kapelle")
        .unwrap();
    std::fs::remove_file(dir.join(&gone.file)).unwrap();
    let err = PromptLibrary::load_with(&dir, plan(), &[Lang::Nl], false).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, LibraryError::Missing { count: 1, .. }), "{msg}");
    assert!(msg.contains("\"Kapelle\"") && msg.contains("veertien prompts build"), "{msg}");
    // English was never built: asking for it is refused the same way.
    let err = PromptLibrary::load_with(&tone_dir("missing-en"), plan(), &[Lang::Nl, Lang::En], false)
        .unwrap_err();
    assert!(matches!(err, LibraryError::Missing { .. }), "{err}");
}

#[test]
fn a_bad_generated_file_is_named() {
    let dir = tone_dir("badfile");
    let it = veertien_ivr::audio::audio_plan(plan(), &[Lang::Nl]).remove(0);
    std::fs::write(dir.join(&it.file), b"not a wav").unwrap();
    let err = PromptLibrary::load_with(&dir, plan(), &[Lang::Nl], false).unwrap_err();
    assert!(err.to_string().contains(&it.file), "{err}");
}

#[test]
fn prompts_are_assembled_from_pieces_with_pauses_and_numbers_word_by_word() {
    let lib = PromptLibrary::load_with(&tone_dir("render"), plan(), &[Lang::Nl], false).unwrap();
    assert_eq!(lib.report().missing, 0);
    // 5 × ("Voor" 250 + name 150 + ", toets" 250 + digit word 250 ms) plus the pauses.
    let menu = lib.render(&menu_0113(), Lang::Nl, plan()).unwrap();
    assert_eq!(menu.source, AudioSource::Generated);
    let speech_ms = 5 * (250 + 150 + 250 + 250);
    assert!(menu.duration_ms() > speech_ms + 5 * 200, "{} ms", menu.duration_ms());
    assert!(menu.duration_ms() < speech_ms + 5 * 1200, "{} ms", menu.duration_ms());
    // A telephone number is read from number words; no synthesiser needed.
    let n = lib
        .render(
            &Prompt::NotConnected {
                name: "Haarlemmermeer".into(),
                number: "(023) 567 56 75".into(),
                forwarding: false,
            },
            Lang::Nl,
            plan(),
        )
        .unwrap();
    // nul twee drie | vijf zes zeven | zesenvijftig | vijfenzeventig: 8 number words.
    assert!(n.duration_ms() >= 8 * 250, "{} ms", n.duration_ms());
    // A free text typed by a municipality needs the synthesiser, and says so when it is absent.
    let err = lib
        .render(
            &Prompt::Calamity {
                name: "Goes".into(),
                message: Some("Door een storing zijn wij niet bereikbaar.".into()),
            },
            Lang::Nl,
            plan(),
        )
        .unwrap_err();
    assert!(matches!(err, LibraryError::NoSynthesiser { .. }), "{err}");
}

#[test]
fn a_municipalitys_recording_replaces_the_generated_audio_and_an_upload_counts_at_once() {
    let dir = tone_dir("custom");
    let lib = PromptLibrary::load_with(&dir, plan(), &[Lang::Nl], false).unwrap();
    let before = lib.render(&menu_0113(), Lang::Nl, plan()).unwrap();
    assert!(before.recorded_names.is_empty());

    // Kapelle (GM0678) records its own name: 700 ms instead of the 150 ms generated piece.
    let custom: PathBuf = dir.join("custom/GM0678");
    write_wav(&custom.join("name.wav"), &tone(700, 660.0));
    let after = lib.render(&menu_0113(), Lang::Nl, plan()).unwrap();
    assert_eq!(after.recorded_names, ["GM0678"]);
    assert_eq!(after.duration_ms(), before.duration_ms() + 700 - 150);

    // The portal's welcome upload is Kapelle's greeting once a caller has chosen it.
    let through = Prompt::PuttingThrough { name: "Kapelle".into() };
    assert_eq!(lib.render(&through, Lang::Nl, plan()).unwrap().source, AudioSource::Generated);
    write_wav(&custom.join("welcome.wav"), &tone(2000, 550.0));
    let r = lib.render(&through, Lang::Nl, plan()).unwrap();
    assert_eq!(r.source, AudioSource::Recorded { file: custom.join("welcome.wav") });
    assert_eq!(r.duration_ms(), 2000, "the recording as uploaded (only silence is trimmed)");
    // Goes has no recording: its prompt stays generated.
    let goes = Prompt::PuttingThrough { name: "Goes".into() };
    assert_eq!(lib.render(&goes, Lang::Nl, plan()).unwrap().source, AudioSource::Generated);

    // A replaced upload is used on the next call; an unusable one falls back to generated audio.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_wav(&custom.join("welcome.wav"), &tone(1000, 550.0));
    assert_eq!(lib.render(&through, Lang::Nl, plan()).unwrap().duration_ms(), 1000);
    std::fs::write(custom.join("welcome.wav"), b"RIFF....WAVEjunk").unwrap();
    assert_eq!(lib.render(&through, Lang::Nl, plan()).unwrap().source, AudioSource::Generated);
}

#[test]
fn with_espeak_a_missing_piece_is_synthesised_once_and_kept() {
    if !veertien_ivr::audio::tools_available() {
        assert!(std::env::var_os("CI").is_none(), "espeak-ng and sox must be installed under CI");
        eprintln!("espeak-ng/sox not installed: skipping");
        return;
    }
    let dir = tone_dir("synth");
    let it = veertien_ivr::audio::audio_plan(plan(), &[Lang::Nl])
        .into_iter()
        .find(|i| i.text == "Kapelle")
        .unwrap();
    std::fs::remove_file(dir.join(&it.file)).unwrap();
    let lib = PromptLibrary::load_with(&dir, plan(), &[Lang::Nl], true).unwrap();
    assert_eq!(lib.report().missing, 1);
    let r = lib
        .render(&Prompt::PuttingThrough { name: "Kapelle".into() }, Lang::Nl, plan())
        .unwrap();
    assert!(r.duration_ms() > 300);
    assert!(dir.join(&it.file).is_file(), "kept in the prompts directory for the next start");
    let calamity = Prompt::Calamity {
        name: "Goes".into(),
        message: Some("Wij zijn tijdelijk niet bereikbaar.".into()),
    };
    let spoken = lib.render(&calamity, Lang::Nl, plan()).unwrap();
    assert!(spoken.duration_ms() > 1000, "{} ms", spoken.duration_ms());
}
