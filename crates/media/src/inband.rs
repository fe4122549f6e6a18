//! In-band DTMF detection on 8 kHz PCM with the Goertzel algorithm.
//!
//! Written by hand: no maintained Rust crate does DTMF *detection* (the ones on
//! crates.io generate tones or are toy decoders without twist/energy checks), and the
//! algorithm is small. Windows of 102 samples (12.75 ms), as in spandsp's detector: at that
//! length every DTMF frequency sits close to a spectral null of its neighbours, so the
//! row/column peaks separate by ≥ 14 dB. Windows advance by half their length and a digit
//! is accepted after four consecutive windows agree (≈ 32 ms of tone): a tone of 40 ms
//! always covers four whole windows, while one shorter than 23 ms cannot produce four
//! windows that are even 70 % tone (ITU-T Q.24 recognise/reject limits). Speech is
//! rejected because it rarely puts nearly all its energy into exactly one row and one
//! column frequency with sharp peaks, and not for 32 ms on end.

use crate::dtmf::Digit;

const BLOCK: usize = 102;
const HOP: usize = BLOCK / 2;
/// Consecutive agreeing windows needed to accept a digit.
const CONFIRM: u32 = 4;
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[Digit; 4]; 4] = [
    [Digit::D1, Digit::D2, Digit::D3, Digit::A],
    [Digit::D4, Digit::D5, Digit::D6, Digit::B],
    [Digit::D7, Digit::D8, Digit::D9, Digit::C],
    [Digit::Star, Digit::D0, Digit::Hash, Digit::D],
];

/// Detector thresholds. The defaults suit telephone-band G.711 audio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InbandConfig {
    /// Minimum amplitude of each tone, dB relative to a full-scale sine.
    pub min_tone_dbfs: f32,
    /// How much louder the high (column) tone may be than the low (row) tone, dB.
    pub normal_twist_db: f32,
    /// How much louder the low (row) tone may be than the high (column) tone, dB.
    pub reverse_twist_db: f32,
    /// How far the strongest tone of a group must exceed the others of that group, dB.
    pub relative_peak_db: f32,
    /// Share of the block's energy that the two tones must carry (0–1).
    pub min_tone_share: f32,
}

impl Default for InbandConfig {
    fn default() -> Self {
        InbandConfig {
            min_tone_dbfs: -40.0,
            normal_twist_db: 8.0,
            reverse_twist_db: 8.0,
            relative_peak_db: 8.0,
            min_tone_share: 0.7,
        }
    }
}

/// Streaming DTMF detector; feed it any number of samples at a time.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    coeff_rows: [f32; 4],
    coeff_cols: [f32; 4],
    min_power: f32,
    normal_twist: f32,
    reverse_twist: f32,
    relative_peak: f32,
    min_share: f32,
    block: [f32; BLOCK],
    fill: usize,
    last_hit: Option<Digit>,
    run: u32,
    misses: u32,
    reported: Option<Digit>,
}

fn coeff(f: f32) -> f32 {
    2.0 * (2.0 * std::f32::consts::PI * f / 8000.0).cos()
}

fn db_to_power_ratio(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new(InbandConfig::default())
    }
}

impl InbandDetector {
    pub fn new(cfg: InbandConfig) -> Self {
        // Goertzel power of a sine with amplitude A over N samples is (A·N/2)².
        let a = 32767.0 * 10f32.powf(cfg.min_tone_dbfs / 20.0);
        let min_power = (a * BLOCK as f32 / 2.0).powi(2);
        InbandDetector {
            coeff_rows: ROWS.map(coeff),
            coeff_cols: COLS.map(coeff),
            min_power,
            normal_twist: db_to_power_ratio(cfg.normal_twist_db),
            reverse_twist: db_to_power_ratio(cfg.reverse_twist_db),
            relative_peak: db_to_power_ratio(cfg.relative_peak_db),
            min_share: cfg.min_tone_share,
            block: [0.0; BLOCK],
            fill: 0,
            last_hit: None,
            run: 0,
            misses: 0,
            reported: None,
        }
    }

    /// Forgets any partial block and tone state (e.g. after a stream restart).
    pub fn reset(&mut self) {
        self.fill = 0;
        self.last_hit = None;
        self.run = 0;
        self.misses = 0;
        self.reported = None;
    }

    /// Whether a key press is in progress (reported and not yet released).
    pub fn tone_present(&self) -> bool {
        self.reported.is_some()
    }

    /// Feeds samples; appends each newly detected key press to `out`.
    pub fn process(&mut self, pcm: &[i16], out: &mut Vec<Digit>) {
        for &s in pcm {
            self.block[self.fill] = s as f32;
            self.fill += 1;
            if self.fill == BLOCK {
                let hit = self.analyse_block();
                self.block.copy_within(HOP.., 0);
                self.fill = BLOCK - HOP;
                self.run = if hit.is_some() && hit == self.last_hit { self.run + 1 } else { 1 };
                if let Some(d) = hit
                    && self.run >= CONFIRM
                    && hit != self.reported
                {
                    out.push(d);
                    self.reported = hit;
                }
                // Two tone-free windows in a row end the key press; a single damaged
                // window does not, so one press is not reported twice.
                self.misses = if hit.is_none() { self.misses + 1 } else { 0 };
                if self.misses >= 2 {
                    self.reported = None;
                }
                self.last_hit = hit;
            }
        }
    }

    /// Goertzel powers of the 8 DTMF frequencies and the block energy, in one pass: the
    /// eight recurrences are independent, so the compiler runs them side by side (SIMD)
    /// instead of waiting on one serial dependency chain eight times over.
    fn analyse_powers(&self) -> ([f32; 4], [f32; 4], f32) {
        let mut c = [0.0f32; 8];
        c[..4].copy_from_slice(&self.coeff_rows);
        c[4..].copy_from_slice(&self.coeff_cols);
        let (mut s1, mut s2) = ([0.0f32; 8], [0.0f32; 8]);
        let mut energy = 0.0f32;
        for &x in &self.block {
            energy += x * x;
            for k in 0..8 {
                let s = x + c[k] * s1[k] - s2[k];
                s2[k] = s1[k];
                s1[k] = s;
            }
        }
        let p: [f32; 8] = std::array::from_fn(|k| s1[k] * s1[k] + s2[k] * s2[k] - c[k] * s1[k] * s2[k]);
        ([p[0], p[1], p[2], p[3]], [p[4], p[5], p[6], p[7]], energy)
    }

    fn analyse_block(&self) -> Option<Digit> {
        let (rows, cols, energy) = self.analyse_powers();
        let best = |p: &[f32; 4]| {
            let mut i = 0;
            for k in 1..4 {
                if p[k] > p[i] {
                    i = k;
                }
            }
            i
        };
        let (r, c) = (best(&rows), best(&cols));
        let (pr, pc) = (rows[r], cols[c]);
        if pr < self.min_power || pc < self.min_power {
            return None;
        }
        if pc > pr * self.normal_twist || pr > pc * self.reverse_twist {
            return None;
        }
        for k in 0..4 {
            if (k != r && rows[k] * self.relative_peak > pr) || (k != c && cols[k] * self.relative_peak > pc) {
                return None;
            }
        }
        // Goertzel power × 2/N is the energy a pure tone contributes to the block.
        let tone_energy = (pr + pc) * 2.0 / BLOCK as f32;
        if tone_energy < self.min_share * energy {
            return None;
        }
        Some(KEYS[r][c])
    }
}

/// Generates a DTMF tone (both frequencies at `dbfs` each) — for tests, benchmarks and tools.
pub fn generate_tone(digit: Digit, ms: u32, dbfs: f32) -> Vec<i16> {
    let (fr, fc) = digit.frequencies();
    let a = 32767.0 * 10f32.powf(dbfs / 20.0);
    let n = (ms * 8) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let v = a * ((2.0 * std::f32::consts::PI * fr * t).sin() + (2.0 * std::f32::consts::PI * fc * t).sin());
            v.clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn detect(pcm: &[i16]) -> Vec<Digit> {
        let mut d = InbandDetector::default();
        let mut out = Vec::new();
        for chunk in pcm.chunks(160) {
            d.process(chunk, &mut out);
        }
        out
    }

    fn silence(ms: u32) -> Vec<i16> {
        vec![0; (ms * 8) as usize]
    }

    fn add_noise(pcm: &mut [i16], dbfs: f32, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        // Uniform noise with RMS = a/√3.
        let a = 32767.0 * 10f32.powf(dbfs / 20.0) * 3f32.sqrt();
        for s in pcm {
            let n: f32 = rng.random_range(-a..a);
            *s = (*s as f32 + n).clamp(-32768.0, 32767.0) as i16;
        }
    }

    #[test]
    fn every_key_is_detected_once() {
        for d in Digit::ALL {
            let mut pcm = silence(30);
            pcm.extend(generate_tone(d, 80, -10.0));
            pcm.extend(silence(60));
            assert_eq!(detect(&pcm), vec![d], "key {d}");
        }
    }

    #[test]
    fn a_dialled_sequence_with_short_pauses() {
        let keys = [Digit::D1, Digit::D1, Digit::D4, Digit::D0, Digit::D1, Digit::D1, Digit::D3];
        let mut pcm = Vec::new();
        for k in keys {
            pcm.extend(generate_tone(k, 50, -12.0));
            pcm.extend(silence(45));
        }
        assert_eq!(detect(&pcm), keys.to_vec());
    }

    #[test]
    fn minimum_duration() {
        for offset in 0..BLOCK {
            let mut pcm = vec![0i16; offset];
            pcm.extend(generate_tone(Digit::D7, 40, -10.0));
            pcm.extend(silence(50));
            assert_eq!(detect(&pcm), vec![Digit::D7], "40 ms tone at offset {offset}");
            let mut short = vec![0i16; offset];
            short.extend(generate_tone(Digit::D7, 22, -10.0));
            short.extend(silence(50));
            assert!(detect(&short).is_empty(), "22 ms tone at offset {offset} must be rejected");
        }
    }

    #[test]
    fn tones_in_noise() {
        for (i, d) in Digit::ALL.into_iter().enumerate() {
            let mut pcm = silence(40);
            pcm.extend(generate_tone(d, 70, -16.0));
            pcm.extend(silence(60));
            // Each tone at -16 dBFS, noise at -30 dBFS: ~17 dB SNR on the pair.
            add_noise(&mut pcm, -30.0, i as u64);
            assert_eq!(detect(&pcm), vec![d], "key {d} in noise");
        }
    }

    #[test]
    fn twist_limits() {
        let tone = |row_db: f32, col_db: f32| {
            let (fr, fc) = Digit::D5.frequencies();
            let (ar, ac) = (32767.0 * 10f32.powf(row_db / 20.0), 32767.0 * 10f32.powf(col_db / 20.0));
            (0..800)
                .map(|i| {
                    let t = i as f32 / 8000.0;
                    (ar * (2.0 * std::f32::consts::PI * fr * t).sin() + ac * (2.0 * std::f32::consts::PI * fc * t).sin()) as i16
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(detect(&tone(-10.0, -16.0)), vec![Digit::D5]);
        assert_eq!(detect(&tone(-16.0, -10.0)), vec![Digit::D5]);
        assert!(detect(&tone(-6.0, -20.0)).is_empty(), "14 dB reverse twist");
        assert!(detect(&tone(-20.0, -6.0)).is_empty(), "14 dB normal twist");
        assert!(detect(&tone(-50.0, -50.0)).is_empty(), "too quiet");
    }

    #[test]
    fn silence_noise_and_single_tones_give_nothing() {
        assert!(detect(&silence(2000)).is_empty());
        let mut noise = silence(5000);
        add_noise(&mut noise, -20.0, 7);
        assert!(detect(&noise).is_empty());
        // A dial tone (425 Hz, the Dutch one) and a single DTMF frequency.
        let single: Vec<i16> = (0..8000).map(|i| (8000.0 * (2.0 * std::f32::consts::PI * 697.0 * i as f32 / 8000.0).sin()) as i16).collect();
        assert!(detect(&single).is_empty());
        let dial: Vec<i16> = (0..8000).map(|i| (8000.0 * (2.0 * std::f32::consts::PI * 425.0 * i as f32 / 8000.0).sin()) as i16).collect();
        assert!(detect(&dial).is_empty());
    }

    #[test]
    fn synthetic_vowels_give_nothing() {
        // Harmonic-rich voiced sounds with formants swept through the DTMF bands.
        for f0 in [90.0f32, 110.0, 130.0, 170.0, 210.0, 250.0] {
            let mut pcm = Vec::new();
            for i in 0..16000 {
                let t = i as f32 / 8000.0;
                let mut v = 0.0;
                for h in 1..30 {
                    let f = f0 * h as f32;
                    if f > 3600.0 {
                        break;
                    }
                    // Two formants moving slowly, as in a diphthong.
                    let f1 = 700.0 + 250.0 * (t * 3.0).sin();
                    let f2 = 1300.0 + 300.0 * (t * 2.0).cos();
                    let g = 1.0 / (1.0 + ((f - f1) / 120.0).powi(2)) + 1.0 / (1.0 + ((f - f2) / 150.0).powi(2));
                    v += g * (2.0 * std::f32::consts::PI * f * t).sin();
                }
                pcm.push((v * 4000.0).clamp(-32768.0, 32767.0) as i16);
            }
            assert!(detect(&pcm).is_empty(), "f0 {f0}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn detected_regardless_of_level_and_chunking(d in 0u8..16, level in -28.0f32..-4.0, ms in 45u32..200, chunk in 1usize..400) {
            let digit = Digit::from_event_code(d).unwrap();
            let mut pcm = silence(20);
            pcm.extend(generate_tone(digit, ms, level));
            pcm.extend(silence(40));
            let mut det = InbandDetector::default();
            let mut out = Vec::new();
            for c in pcm.chunks(chunk) {
                det.process(c, &mut out);
            }
            prop_assert_eq!(out, vec![digit]);
        }
    }
}
