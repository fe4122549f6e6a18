#![allow(dead_code)]
//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::process::Command;

/// Dutch speech from espeak-ng, telephone band (8 kHz mono PCM16 via sox).
/// `None` when the tools are missing — except under CI, which installs them
/// (scripts/install-deps.sh), where a missing tool is a failure.
pub fn espeak(text: &str, voice: &str) -> Option<Vec<i16>> {
    let have = |t: &str| Command::new(t).arg("--version").output().is_ok_and(|o| o.status.success());
    if !have("espeak-ng") || !have("sox") {
        assert!(std::env::var_os("CI").is_none(), "espeak-ng and sox must be installed under CI");
        eprintln!("espeak-ng/sox not installed: skipping generated-speech checks");
        return None;
    }
    let dir = std::env::temp_dir();
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tag = format!("veertien-media-{}-{n}", std::process::id());
    let short: String = text.chars().take(40).collect();
    let raw: PathBuf = dir.join(format!("{tag}-{voice}.raw.wav"));
    let out: PathBuf = dir.join(format!("{tag}-{voice}.8k.wav"));
    let st = Command::new("espeak-ng").args(["-v", voice, "-w"]).arg(&raw).arg(text).status().unwrap();
    assert!(st.success(), "espeak-ng failed for {short:?}");
    let st = Command::new("sox").arg(&raw).args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"]).arg(&out).status().unwrap();
    assert!(st.success(), "sox failed for {short:?}");
    let mut r = hound::WavReader::open(&out).unwrap();
    assert_eq!(r.spec().sample_rate, 8000);
    let pcm: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
    let _ = std::fs::remove_file(raw);
    let _ = std::fs::remove_file(out);
    Some(pcm)
}

/// A voiced, syllable-modulated stand-in for speech.
pub fn speechlike(ms: u32, dbfs: f32) -> Vec<i16> {
    let a = 32767.0 * 10f32.powf(dbfs / 20.0);
    (0..ms * 8)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let env = 0.6 + 0.4 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
            let v: f32 = (1..12).map(|h| (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() / h as f32).sum();
            (a * env * v * 0.8) as i16
        })
        .collect()
}

/// Low-level background noise (deterministic).
pub fn noise(ms: u32, dbfs: f32, seed: u32) -> Vec<i16> {
    let a = 32767.0 * 10f32.powf(dbfs / 20.0) * 3f32.sqrt();
    let mut x = seed.wrapping_mul(2654435761).max(1);
    (0..ms * 8)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            ((x as f32 / u32::MAX as f32) * 2.0 - 1.0) * a
        })
        .map(|v| v as i16)
        .collect()
}
