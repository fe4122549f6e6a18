//! Audio front-end: 8 kHz telephone PCM → 16 kHz → Whisper log-mel, exactly as OpenAI's
//! `whisper/audio.py` (`log_mel_spectrogram`): periodic Hann window, n_fft 400, hop 160,
//! centred STFT with reflect padding, last frame dropped, power spectrum, Slaney mel filters
//! (librosa `filters.mel(sr=16000, n_fft=400, n_mels=80)`), log10 clamped at 1e-10, floor at
//! max − 8, then (x + 4) / 4. candle-transformers' own front-end deviates by up to 0.87 from
//! this, which is why it is not used.

use std::sync::Arc;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

use crate::Error;

pub const SAMPLE_RATE: usize = 16_000;
pub const N_FFT: usize = 400;
pub const HOP_LENGTH: usize = 160;
pub const N_MELS: usize = 80;
pub const N_FREQS: usize = N_FFT / 2 + 1;

/// Slaney-style mel filterbank, row-major `[N_MELS][N_FREQS]`, as librosa computes it
/// (`htk=False`, `norm="slaney"`). Whisper ships these numbers in `mel_filters.npz`; we compute
/// them so no extra asset is needed, and the unit test checks them against reference values.
pub fn mel_filters(sr: usize, n_fft: usize, n_mels: usize) -> Vec<f32> {
    fn hz_to_mel(f: f64) -> f64 {
        let f_sp = 200.0 / 3.0;
        let min_log_hz = 1000.0;
        let min_log_mel = min_log_hz / f_sp;
        let logstep = (6.4f64).ln() / 27.0;
        if f >= min_log_hz { min_log_mel + (f / min_log_hz).ln() / logstep } else { f / f_sp }
    }
    fn mel_to_hz(m: f64) -> f64 {
        let f_sp = 200.0 / 3.0;
        let min_log_hz = 1000.0;
        let min_log_mel = min_log_hz / f_sp;
        let logstep = (6.4f64).ln() / 27.0;
        if m >= min_log_mel { min_log_hz * (logstep * (m - min_log_mel)).exp() } else { f_sp * m }
    }
    let n_freqs = n_fft / 2 + 1;
    let fftfreqs: Vec<f64> =
        (0..n_freqs).map(|i| i as f64 * (sr as f64 / 2.0) / (n_freqs - 1) as f64).collect();
    let (mmin, mmax) = (hz_to_mel(0.0), hz_to_mel(sr as f64 / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mmin + (mmax - mmin) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut w = vec![0f32; n_mels * n_freqs];
    for m in 0..n_mels {
        let fdiff_lo = mel_f[m + 1] - mel_f[m];
        let fdiff_hi = mel_f[m + 2] - mel_f[m + 1];
        let enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
        for (k, &f) in fftfreqs.iter().enumerate() {
            let lower = (f - mel_f[m]) / fdiff_lo;
            let upper = (mel_f[m + 2] - f) / fdiff_hi;
            w[m * n_freqs + k] = (0f64.max(lower.min(upper)) * enorm) as f32;
        }
    }
    w
}

/// Log-mel front-end with precomputed window, filters and FFT plan. Cheap to share.
pub struct LogMel {
    filters: Vec<f32>,
    window: Vec<f32>,
    fft: Arc<dyn rustfft::Fft<f32>>,
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

impl LogMel {
    pub fn new() -> Self {
        // torch.hann_window(400) is periodic: 0.5 − 0.5 cos(2πn/N).
        let window = (0..N_FFT)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32
            })
            .collect();
        let fft = FftPlanner::new().plan_fft_forward(N_FFT);
        Self { filters: mel_filters(SAMPLE_RATE, N_FFT, N_MELS), window, fft }
    }

    /// Log-mel spectrogram of 16 kHz samples in [-1, 1]. Returns `(data, n_frames)` with data
    /// row-major `[N_MELS][n_frames]`; `n_frames = len / 160` like Whisper (last STFT frame dropped).
    pub fn compute(&self, samples: &[f32]) -> Result<(Vec<f32>, usize), Error> {
        let n_frames = samples.len() / HOP_LENGTH;
        if n_frames == 0 {
            return Ok((Vec::new(), 0));
        }
        let pad = N_FFT / 2;
        let len = samples.len() as isize;
        // Reflect padding (numpy/torch "reflect": the edge sample is not repeated).
        let at = |i: isize| -> f32 {
            if len == 0 {
                return 0.0;
            }
            let mut j = i;
            // Repeated reflection keeps very short inputs (< pad) well defined.
            loop {
                if j < 0 {
                    j = -j;
                } else if j >= len {
                    j = 2 * (len - 1) - j;
                } else {
                    break;
                }
                if len == 1 {
                    j = 0;
                }
            }
            samples[j as usize]
        };
        let mut power = vec![0f32; n_frames * N_FREQS];
        let mut buf = vec![Complex::new(0f32, 0f32); N_FFT];
        let mut scratch = vec![Complex::new(0f32, 0f32); self.fft.get_inplace_scratch_len()];
        for t in 0..n_frames {
            let start = (t * HOP_LENGTH) as isize - pad as isize;
            for (n, c) in buf.iter_mut().enumerate() {
                *c = Complex::new(at(start + n as isize) * self.window[n], 0.0);
            }
            self.fft.process_with_scratch(&mut buf, &mut scratch);
            for k in 0..N_FREQS {
                power[t * N_FREQS + k] = buf[k].norm_sqr();
            }
        }
        // Filterbank as one matrix product in candle (optimised even in debug builds).
        let mel = (|| -> candle_core::Result<Vec<f32>> {
            let dev = candle_core::Device::Cpu;
            let f = candle_core::Tensor::from_slice(&self.filters, (N_MELS, N_FREQS), &dev)?;
            let p = candle_core::Tensor::from_vec(power, (n_frames, N_FREQS), &dev)?;
            f.matmul(&p.t()?)?.flatten_all()?.to_vec1::<f32>()
        })();
        let mut out = mel?;
        let mut max = f32::NEG_INFINITY;
        for v in out.iter_mut() {
            *v = v.max(1e-10).log10();
            max = max.max(*v);
        }
        for v in out.iter_mut() {
            *v = ((*v).max(max - 8.0) + 4.0) / 4.0;
        }
        Ok((out, n_frames))
    }
}

/// 8 kHz telephone PCM → 16 kHz f32 in [-1, 1], with rubato's synchronous FFT resampler
/// (windowed, anti-aliased; delay trimmed so the output is time-aligned with the input).
pub fn resample_8k_to_16k(pcm: &[i16]) -> Result<Vec<f32>, Error> {
    let input: Vec<f32> = pcm.iter().map(|&s| s as f32 / 32768.0).collect();
    resample(&input, 8000, SAMPLE_RATE)
}

pub fn resample(input: &[f32], from: usize, to: usize) -> Result<Vec<f32>, Error> {
    if from == to || input.is_empty() {
        return Ok(input.to_vec());
    }
    let mut rs = Fft::<f32>::new(from, to, 1024, 1, FixedSync::Input)
        .map_err(|e| Error::Audio(format!("resampler: {e}")))?;
    let adapter = InterleavedSlice::new(input, 1, input.len())
        .map_err(|e| Error::Audio(format!("resampler input: {e}")))?;
    let out = rs
        .process_all(&adapter, input.len(), None)
        .map_err(|e| Error::Audio(format!("resampling {from} → {to} Hz: {e}")))?;
    Ok(out.take_data())
}

/// Samples per level frame of [`speech_end`] (20 ms at 8 kHz, the RTP packet size).
pub const TRIM_FRAME: usize = 160;
/// Frames at the start of an utterance (the VAD's pre-roll) that set the noise floor.
const FLOOR_FRAMES: usize = 8;

/// Level of each complete 20 ms frame of 8 kHz PCM, in dBFS (digital silence: −100).
pub fn frame_levels(pcm: &[i16]) -> Vec<f32> {
    pcm.chunks_exact(TRIM_FRAME)
        .map(|f| {
            let e = f.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / TRIM_FRAME as f64;
            (10.0 * (e / (32768.0 * 32768.0)).max(1e-10).log10()) as f32
        })
        .collect()
}

/// Where the speech of an endpointed 8 kHz utterance ends: `tail` samples after the last
/// frame loud enough to be speech, or `None` when no frame is (silence, or too short to tell).
///
/// A frame is loud when it is 10 dB above the noise floor (the quietest of the first 160 ms:
/// the VAD's pre-roll; the quietest frame sits a few dB under the average noise the VAD tracks,
/// so this stays above the VAD's 6 dB continue margin and the end found here is not later than
/// the VAD's) and within 40 dB of the loudest frame, but the threshold never exceeds
/// the loudest frame − 15 dB (so a caller who starts talking at once is not cut) and never
/// drops below −55 dBFS.
///
/// The rule only looks at the floor frames, the loudest frame and frames up to the end it
/// returns, so it gives the same end for any longer stretch of the same audio whose extra
/// frames are quiet. That is what lets [`crate::Utterance`] score the audio speculatively
/// while the VAD is still waiting out its hangover and reuse the result at end of speech.
///
/// `levels` are [`frame_levels`] of the audio; the returned end is not clipped to its length
/// (an end beyond it means the tail has not all arrived yet).
pub fn speech_end(levels: &[f32], tail: usize) -> Option<usize> {
    let threshold = loud_threshold(levels)?;
    let last = levels.iter().rposition(|&l| l > threshold)?;
    Some((last + 1) * TRIM_FRAME + tail)
}

/// Where the speech of an endpointed 8 kHz utterance starts, less `lead` samples (never before
/// the first sample): the first frame loud by the rule of [`speech_end`], or `None` when no
/// frame is.
///
/// The VAD hands over its utterance with a pre-roll (300 ms) of whatever the line carried
/// before the caller spoke; other sources (a test file, another VAD setting) have more, less or
/// none. Whisper's answer on a short window depends on that lead-in: a digitally silent 300 ms
/// in front of "Reimerswaal" made it "Goes" at 0.99, where 0 to 250 ms gave Reimerswaal at 1.00
/// (docs/PERFORMANCE-speech.md). Scoring from a fixed lead before the first loud frame makes
/// the answer independent of how much quiet precedes the speech.
///
/// Only the floor frames, the loudest frame and the frames up to the one returned count, so a
/// longer stretch of the same audio extended by quiet has the same start (as for
/// [`speech_end`]), and so does the same speech after more of the same quiet, once there is
/// at least `lead` of it and the floor frames are quiet in both.
pub fn speech_start(levels: &[f32], lead: usize) -> Option<usize> {
    let threshold = loud_threshold(levels)?;
    let first = levels.iter().position(|&l| l > threshold)?;
    Some((first * TRIM_FRAME).saturating_sub(lead))
}

/// The level a frame must exceed to count as speech (see [`speech_end`]); `None` when no frame
/// is loud enough to be speech at all.
fn loud_threshold(levels: &[f32]) -> Option<f32> {
    let floor = levels.iter().take(FLOOR_FRAMES).copied().fold(f32::INFINITY, f32::min);
    let peak = levels.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if peak.is_nan() || peak <= -55.0 {
        return None;
    }
    Some((floor + 10.0).max(peak - 40.0).min(peak - 15.0).max(-55.0))
}

/// ITU-T G.711 µ-law byte → linear PCM16.
pub fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let t = (((u & 0x0f) as i32) << 3) + 0x84;
    let t = t << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// ITU-T G.711 A-law byte → linear PCM16.
pub fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = ((a & 0x0f) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// Reads a WAV file as mono PCM16 at its own rate: PCM16 (via hound) or G.711 µ-law/A-law
/// (format tags 7/6, which hound does not support, so those chunks are read here directly).
/// Multi-channel audio is mixed down by taking the first channel.
pub fn read_wav(path: &std::path::Path) -> Result<(Vec<i16>, u32), Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
    let bad = |m: &str| Error::Audio(format!("{}: {m}", path.display()));
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad("not a RIFF/WAVE file"));
    }
    let mut p = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while p + 8 <= bytes.len() {
        let id = &bytes[p..p + 4];
        let size = u32::from_le_bytes([bytes[p + 4], bytes[p + 5], bytes[p + 6], bytes[p + 7]])
            as usize;
        let body = &bytes[p + 8..(p + 8 + size).min(bytes.len())];
        if id == b"fmt " {
            if body.len() < 16 {
                return Err(bad("fmt chunk too short"));
            }
            let tag = u16::from_le_bytes([body[0], body[1]]);
            let ch = u16::from_le_bytes([body[2], body[3]]);
            let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            let bits = u16::from_le_bytes([body[14], body[15]]);
            fmt = Some((tag, ch, rate, bits));
        } else if id == b"data" {
            let (tag, ch, rate, bits) = fmt.ok_or_else(|| bad("data chunk before fmt chunk"))?;
            let ch = ch.max(1) as usize;
            let pcm: Vec<i16> = match (tag, bits) {
                (1, 16) | (0xFFFE, 16) => body
                    .chunks_exact(2 * ch)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect(),
                (7, 8) => body.chunks_exact(ch).map(|c| ulaw_to_linear(c[0])).collect(),
                (6, 8) => body.chunks_exact(ch).map(|c| alaw_to_linear(c[0])).collect(),
                _ => {
                    return Err(bad(&format!(
                        "unsupported WAV encoding (format tag {tag}, {bits} bits); \
                         expected PCM16, G.711 µ-law or A-law"
                    )))
                }
            };
            return Ok((pcm, rate));
        }
        p += 8 + size + (size & 1);
    }
    Err(bad("no data chunk"))
}

/// Loads a WAV and returns 16 kHz mono f32 ready for the front-end.
pub fn load_wav_16k(path: &std::path::Path) -> Result<Vec<f32>, Error> {
    let (pcm, rate) = read_wav(path)?;
    let x: Vec<f32> = pcm.iter().map(|&s| s as f32 / 32768.0).collect();
    resample(&x, rate as usize, SAMPLE_RATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same deterministic signal as scripts/speech/mel_reference.py.
    fn signal() -> Vec<f32> {
        (0..SAMPLE_RATE)
            .map(|i| {
                let t = i as f64 / SAMPLE_RATE as f64;
                let two_pi = 2.0 * std::f64::consts::PI;
                let chirp = (two_pi * (300.0 * t + 0.5 * 2700.0 * t * t)).sin();
                (0.3 * (two_pi * 440.0 * t).sin() + 0.2 * (two_pi * 1250.0 * t).sin() + 0.1 * chirp) as f32
            })
            .collect()
    }

    #[test]
    fn log_mel_matches_numpy_reference_of_whisper_audio_py() {
        let reference: serde_json::Value =
            serde_json::from_str(include_str!("../tests/data/mel_reference.json")).unwrap();
        let (mel, n) = LogMel::new().compute(&signal()).unwrap();
        assert_eq!(n, reference["n_frames"].as_u64().unwrap() as usize);
        let frames: Vec<usize> = reference["frames"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let mels: Vec<usize> = reference["mels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let mut worst = 0f32;
        for (mi, &m) in mels.iter().enumerate() {
            for (fi, &t) in frames.iter().enumerate() {
                let want = reference["values"][mi][fi].as_f64().unwrap() as f32;
                let got = mel[m * n + t];
                worst = worst.max((want - got).abs());
            }
        }
        // candle-transformers' front-end is off by up to 0.87; ours must agree to float precision.
        assert!(worst < 2e-3, "max abs deviation {worst}");
        let max = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let min = mel.iter().copied().fold(f32::INFINITY, f32::min);
        let mean = mel.iter().sum::<f32>() / mel.len() as f32;
        assert!((max - reference["max"].as_f64().unwrap() as f32).abs() < 2e-3);
        assert!((min - reference["min"].as_f64().unwrap() as f32).abs() < 2e-3);
        assert!((mean - reference["mean"].as_f64().unwrap() as f32).abs() < 1e-3);
    }

    #[test]
    fn slaney_filters_match_librosa_reference() {
        let reference: serde_json::Value =
            serde_json::from_str(include_str!("../tests/data/mel_reference.json")).unwrap();
        let f = mel_filters(SAMPLE_RATE, N_FFT, N_MELS);
        for (i, r) in [0usize, 10, 79].into_iter().enumerate() {
            let row = &f[r * N_FREQS..(r + 1) * N_FREQS];
            let sum: f32 = row.iter().sum();
            let (argmax, peak) = row.iter().enumerate().fold((0, 0f32), |a, (k, &v)| if v > a.1 { (k, v) } else { a });
            let want = &reference["filters"];
            assert!((sum as f64 - want["sums"][i].as_f64().unwrap()).abs() < 1e-5, "row {r} sum");
            assert_eq!(argmax as u64, want["argmax"][i].as_u64().unwrap(), "row {r} argmax");
            assert!((peak as f64 - want["peak"][i].as_f64().unwrap()).abs() < 1e-6, "row {r} peak");
        }
    }

    #[test]
    fn silence_is_constant_minus_one_and_a_half() {
        // Whisper's padding: log10(1e-10) = -10 everywhere → (−10 + 4) / 4.
        let (mel, n) = LogMel::new().compute(&vec![0.0; 8000]).unwrap();
        assert_eq!(n, 50);
        assert!(mel.iter().all(|&v| (v + 1.5).abs() < 1e-6));
    }

    #[test]
    fn resampling_keeps_a_telephone_band_tone_and_doubles_the_length() {
        let pcm: Vec<i16> = (0..8000)
            .map(|i| ((2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin() * 10000.0) as i16)
            .collect();
        let out = resample_8k_to_16k(&pcm).unwrap();
        assert!((out.len() as i64 - 16000).abs() <= 2, "len {}", out.len());
        // The middle of the output must be the same 1 kHz tone at 16 kHz: compare with the ideal.
        let amp = 10000.0 / 32768.0;
        let err: f64 = (4000..12000)
            .map(|i| {
                let want = (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 16000.0).sin() * amp;
                (out[i] as f64 - want).powi(2)
            })
            .sum::<f64>()
            / 8000.0;
        assert!(err.sqrt() < 0.01 * amp, "rms error {}", err.sqrt());
    }

    /// 8 kHz PCM: `quiet_ms` of noise at `noise_dbfs`, a 1 kHz tone for `tone_ms` at −10 dBFS
    /// (over the noise), then `after_ms` of the same noise.
    fn burst(quiet_ms: usize, tone_ms: usize, after_ms: usize, noise_dbfs: f32) -> Vec<i16> {
        let amp_noise = 32767.0 * 10f32.powf(noise_dbfs / 20.0) * 3f32.sqrt();
        let mut seed = 14u32;
        let mut noise = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * amp_noise
        };
        let n = (quiet_ms + tone_ms + after_ms) * 8;
        (0..n)
            .map(|i| {
                let in_tone = i >= quiet_ms * 8 && i < (quiet_ms + tone_ms) * 8;
                let tone = if in_tone { (i as f32 * 2.0 * std::f32::consts::PI / 8.0).sin() * 10362.0 } else { 0.0 };
                (tone + noise()).clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    #[test]
    fn speech_end_is_the_tail_after_the_last_loud_frame() {
        let tail = 1600;
        for noise in [-90.0, -50.0, -35.0] {
            let pcm = burst(300, 800, 900, noise);
            let end = speech_end(&frame_levels(&pcm), tail).unwrap_or_else(|| panic!("no speech at noise {noise}"));
            assert_eq!(end, (300 + 800) * 8 + tail, "noise {noise} dBFS");
        }
        // Nothing loud: silence and steady noise have no end of speech.
        assert_eq!(speech_end(&frame_levels(&vec![0i16; 8000]), tail), None);
        assert_eq!(speech_end(&frame_levels(&burst(1000, 0, 0, -60.0)), tail), None);
    }

    #[test]
    fn speech_end_does_not_depend_on_the_quiet_that_follows() {
        // What lets the recognizer score during the VAD's hangover: a longer stretch of the same
        // audio, extended only by quiet, has the same end of speech.
        let pcm = burst(300, 1000, 1200, -45.0);
        let full = speech_end(&frame_levels(&pcm), 1600).unwrap();
        for cut in (full..=pcm.len()).step_by(160) {
            assert_eq!(speech_end(&frame_levels(&pcm[..cut]), 1600), Some(full), "prefix of {cut} samples");
        }
    }

    #[test]
    fn speech_start_is_the_lead_before_the_first_loud_frame() {
        let lead = 1600;
        for noise in [-90.0, -50.0, -35.0] {
            let pcm = burst(300, 800, 900, noise);
            assert_eq!(speech_start(&frame_levels(&pcm), lead), Some(300 * 8 - lead), "noise {noise} dBFS");
        }
        // Less quiet than the lead: from the first sample.
        assert_eq!(speech_start(&frame_levels(&burst(0, 800, 900, -60.0)), lead), Some(0));
        assert_eq!(speech_start(&frame_levels(&vec![0i16; 8000]), lead), None);
    }

    #[test]
    fn the_scored_stretch_does_not_depend_on_the_quiet_around_it() {
        // The same speech after 300 ms of digital silence (the VAD's pre-roll on a silent line)
        // or after more of it, with more or less quiet after it: the stretch from the lead
        // before the first loud frame to the tail after the last holds the same samples.
        let (lead, tail) = (1600, 1600);
        let stretch = |pcm: &[i16]| {
            let levels = frame_levels(pcm);
            let (s, e) = (speech_start(&levels, lead).unwrap(), speech_end(&levels, tail).unwrap());
            pcm[s..e.min(pcm.len())].to_vec()
        };
        let speech = &burst(300, 1000, 0, -90.0)[300 * 8..];
        let said = |before_ms: usize, after_ms: usize| {
            let mut pcm = vec![0i16; before_ms * 8];
            pcm.extend_from_slice(speech);
            pcm.extend(vec![0i16; after_ms * 8]);
            pcm
        };
        let base = stretch(&said(300, 900));
        assert_eq!(base.len(), lead + speech.len() + tail);
        for (before_ms, after_ms) in [(200, 900), (500, 200), (1000, 2000)] {
            assert_eq!(stretch(&said(before_ms, after_ms)), base, "{before_ms} ms before, {after_ms} ms after");
        }
    }

    #[test]
    fn a_caller_who_speaks_at_once_is_not_cut() {
        // No pre-roll: the "noise floor" frames are speech, yet the end is found after the tone.
        let pcm = burst(0, 1200, 600, -60.0);
        assert_eq!(speech_end(&frame_levels(&pcm), 1600), Some(1200 * 8 + 1600));
    }

    #[test]
    fn g711_decoding_known_values() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    #[test]
    fn reads_pcm16_and_alaw_wavs_and_rejects_other_encodings() {
        fn wav(tag: u16, bits: u16, data: &[u8]) -> Vec<u8> {
            let mut b = Vec::new();
            b.extend_from_slice(b"RIFF");
            b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
            b.extend_from_slice(b"WAVEfmt ");
            b.extend_from_slice(&16u32.to_le_bytes());
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&1u16.to_le_bytes());
            b.extend_from_slice(&8000u32.to_le_bytes());
            b.extend_from_slice(&(8000 * bits as u32 / 8).to_le_bytes());
            b.extend_from_slice(&(bits / 8).to_le_bytes());
            b.extend_from_slice(&bits.to_le_bytes());
            b.extend_from_slice(b"data");
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(data);
            b
        }
        let dir = std::env::temp_dir().join(format!("veertien-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.wav");
        std::fs::write(&p, wav(1, 16, &[0x10, 0x00, 0xF0, 0xFF])).unwrap();
        assert_eq!(read_wav(&p).unwrap(), (vec![16, -16], 8000));
        std::fs::write(&p, wav(6, 8, &[0xD5, 0xAA])).unwrap();
        assert_eq!(read_wav(&p).unwrap(), (vec![8, 32256], 8000));
        std::fs::write(&p, wav(3, 32, &[0, 0, 0, 0])).unwrap();
        let e = read_wav(&p).unwrap_err().to_string();
        assert!(e.contains("format tag 3") && e.contains("a.wav"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
