//! An uploaded welcome prompt (WAV/MP3 bytes) → `prompt_upload::convert` (symphonia decode,
//! checks, resampling to 8 kHz, G.711 check).
//! Invariants: nothing panics, hangs or allocates without bound; an accepted prompt is 8 kHz
//! PCM within the length limits whose WAV form (`wav_bytes`, what is stored) is accepted again
//! (or refused only as clipped).
#![no_main]

use libfuzzer_sys::fuzz_target;
use veertien_web::prompt_upload::{MAX_SECONDS, MIN_SECONDS, PromptError, convert, wav_bytes};

fuzz_target!(|data: &[u8]| {
    let Ok(c) = convert(data) else { return };
    assert!(!c.pcm.is_empty());
    assert!(c.seconds <= MAX_SECONDS + 0.1 && c.seconds >= MIN_SECONDS - 0.1, "accepted {} s", c.seconds);
    // Resampling may push peaks of a loud source to full scale; that refusal is the clipping
    // check doing its job, anything else would be a defect.
    let again = convert(&wav_bytes(&c.pcm));
    assert!(matches!(again, Ok(_) | Err(PromptError::Clipped { .. })), "the stored WAV of an accepted prompt is refused: {:?}", again.err());
});
