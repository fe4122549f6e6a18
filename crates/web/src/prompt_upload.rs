//! Welcome-prompt uploads: a municipality's own greeting, WAV or MP3, checked and converted to
//! what the IVR plays (8 kHz mono PCM16 WAV at `<prompts_dir>/custom/<cbs>/welcome.wav`, read by
//! `veertien_ivr::PromptLibrary` on the next call).
//!
//! Decoding is symphonia's (WAV: PCM/float/A-law/µ-law; MP3), resampling rubato's synchronous FFT
//! resampler (band-limited, so a 44.1 kHz recording does not alias into the telephone band).
//! Refused with a message the uploader can act on: more than [`MAX_BYTES`], longer than
//! [`MAX_SECONDS`], shorter than [`MIN_SECONDS`], (near) silence, clipping, undecodable files.
//! The converted audio is passed through the G.711 µ-law codec the calls use and must come back
//! within the codec's quantisation error, so what was checked is what callers hear.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::i18n::Ui;

pub const MAX_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_SECONDS: f64 = 60.0;
pub const MIN_SECONDS: f64 = 0.5;
pub const RATE: u32 = 8000;
/// Below this RMS level (dBFS) over the whole recording it is treated as silent.
pub const SILENCE_DBFS: f64 = -45.0;
/// More than this share of samples at (or within 0.1% of) full scale counts as clipped.
pub const MAX_CLIPPED_SHARE: f64 = 0.001;

/// A checked, converted welcome prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    /// 8 kHz mono PCM16.
    pub pcm: Vec<i16>,
    pub seconds: f64,
    /// RMS level in dBFS.
    pub level_dbfs: f64,
    /// Signal-to-quantisation-noise ratio of the µ-law round trip (dB).
    pub g711_snr_db: f64,
    pub source_rate: u32,
    pub source_channels: usize,
    /// "wav" or "mp3".
    pub format: &'static str,
}

/// Why an upload was refused; `message(ui)` is shown next to the upload field.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptError {
    Empty,
    TooLarge { bytes: usize },
    Undecodable(String),
    TooLong { seconds: f64 },
    TooShort { seconds: f64 },
    Silent { dbfs: f64 },
    Clipped { share: f64 },
    Codec { snr_db: f64 },
}

impl PromptError {
    pub fn message(&self, ui: Ui) -> String {
        match self {
            PromptError::Empty => ui.t("Kies een WAV- of MP3-bestand.", "Choose a WAV or MP3 file."),
            PromptError::TooLarge { bytes } => ui.t(
                &format!("Het bestand is {:.1} MB; het maximum is 10 MB.", *bytes as f64 / 1_048_576.0),
                &format!("The file is {:.1} MB; the maximum is 10 MB.", *bytes as f64 / 1_048_576.0),
            ),
            PromptError::Undecodable(e) => ui.t(
                &format!("Dit is geen leesbaar WAV- of MP3-bestand ({e})."),
                &format!("This is not a readable WAV or MP3 file ({e})."),
            ),
            PromptError::TooLong { seconds } => ui.t(
                &format!("De opname duurt {seconds:.0} seconden; het maximum is 60 seconden."),
                &format!("The recording lasts {seconds:.0} seconds; the maximum is 60 seconds."),
            ),
            PromptError::TooShort { seconds } => ui.t(
                &format!("De opname duurt maar {seconds:.1} seconden; dat is te kort voor een welkomstbericht."),
                &format!("The recording lasts only {seconds:.1} seconds; too short for a welcome message."),
            ),
            PromptError::Silent { dbfs } => ui.t(
                &format!("De opname is (bijna) stil ({dbfs:.0} dBFS). Controleer de microfoon en neem opnieuw op."),
                &format!("The recording is (almost) silent ({dbfs:.0} dBFS). Check the microphone and record again."),
            ),
            PromptError::Clipped { share } => ui.t(
                &format!("De opname is oversturd ({:.1}% van de samples op maximaal niveau). Neem zachter op.", share * 100.0),
                &format!("The recording is clipped ({:.1}% of samples at full scale). Record at a lower level.", share * 100.0),
            ),
            PromptError::Codec { snr_db } => ui.t(
                &format!("De omzetting naar telefoonkwaliteit (G.711) mislukte (SNR {snr_db:.1} dB)."),
                &format!("Conversion to telephone quality (G.711) failed (SNR {snr_db:.1} dB)."),
            ),
        }
    }
}

/// Decodes, checks and converts an upload.
pub fn convert(bytes: &[u8]) -> Result<Converted, PromptError> {
    if bytes.is_empty() {
        return Err(PromptError::Empty);
    }
    if bytes.len() > MAX_BYTES {
        return Err(PromptError::TooLarge { bytes: bytes.len() });
    }
    let (mono, rate, channels, format) = decode(bytes)?;
    let seconds = mono.len() as f64 / rate as f64;
    if seconds > MAX_SECONDS {
        return Err(PromptError::TooLong { seconds });
    }
    if seconds < MIN_SECONDS {
        return Err(PromptError::TooShort { seconds });
    }
    // Clipping is judged on the source: after band-limiting, flat-topped peaks are smoothed and
    // would hide it, while the distortion stays audible.
    let clipped = mono.iter().filter(|s| s.abs() >= 0.999).count() as f64 / mono.len().max(1) as f64;
    if clipped > MAX_CLIPPED_SHARE {
        return Err(PromptError::Clipped { share: clipped });
    }
    let resampled = resample(&mono, rate as usize, RATE as usize).map_err(PromptError::Undecodable)?;
    let pcm: Vec<i16> = resampled.iter().map(|&s| (s * 32767.0).round().clamp(-32768.0, 32767.0) as i16).collect();
    let level_dbfs = rms_dbfs(&pcm);
    if level_dbfs < SILENCE_DBFS {
        return Err(PromptError::Silent { dbfs: level_dbfs });
    }
    let g711_snr_db = g711_snr(&pcm);
    // µ-law gives about 38 dB SQNR over its range; far below means the samples did not survive.
    if g711_snr_db < 25.0 {
        return Err(PromptError::Codec { snr_db: g711_snr_db });
    }
    Ok(Converted { seconds: pcm.len() as f64 / RATE as f64, pcm, level_dbfs, g711_snr_db, source_rate: rate, source_channels: channels, format })
}

type Decoded = (Vec<f32>, u32, usize, &'static str);

/// A WAV whose `fmt ` chunk says 0 Hz. symphonia 0.5 panics on it (`TimeBase::new(1, 0)` in
/// its WAV reader; found by fuzzing, fuzz/regressions/prompt_upload/), so it is refused first.
fn wav_rate_is_zero(bytes: &[u8]) -> bool {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return false;
    }
    let mut pos = 12usize;
    while let Some(head) = bytes.get(pos..pos + 8) {
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if &head[0..4] == b"fmt " {
            return bytes.get(pos + 12..pos + 16).is_some_and(|r| r == [0, 0, 0, 0]);
        }
        pos = pos.saturating_add(8).saturating_add(size).saturating_add(size & 1);
    }
    false
}

/// Every packet of the first audio track, mixed down to mono f32.
fn decode(bytes: &[u8]) -> Result<Decoded, PromptError> {
    let bad = |e: SymError| PromptError::Undecodable(e.to_string());
    if wav_rate_is_zero(bytes) {
        return Err(PromptError::Undecodable("sample rate 0 Hz".into()));
    }
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let probed = symphonia::default::get_probe()
        .format(&Hint::new(), mss, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(bad)?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| PromptError::Undecodable("no audio track".into()))?;
    let track_id = track.id;
    let format = if track.codec_params.codec == symphonia::core::codecs::CODEC_TYPE_MP3 { "mp3" } else { "wav" };
    let mut decoder = symphonia::default::get_codecs().make(&track.codec_params, &DecoderOptions::default()).map_err(bad)?;
    let mut rate = track.codec_params.sample_rate.unwrap_or(0);
    let mut channels = track.codec_params.channels.map(|c| c.count()).unwrap_or(0);
    let mut mono = Vec::new();
    let max_samples = |r: u32| (r as f64 * (MAX_SECONDS + 1.0)) as usize;
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(bad(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let audio = match decoder.decode(&packet) {
            Ok(a) => a,
            // A damaged frame in an MP3 is skipped, as players do.
            Err(SymError::DecodeError(_)) => continue,
            Err(e) => return Err(bad(e)),
        };
        let spec = *audio.spec();
        rate = spec.rate;
        channels = spec.channels.count();
        let mut buf = SampleBuffer::<f32>::new(audio.capacity() as u64, spec);
        buf.copy_interleaved_ref(audio);
        for frame in buf.samples().chunks(channels.max(1)) {
            mono.push(frame.iter().sum::<f32>() / frame.len() as f32);
        }
        // Stop decoding early: the answer is "too long" anyway, no need to hold 10 MB of floats.
        if rate > 0 && mono.len() > max_samples(rate) {
            break;
        }
    }
    if rate == 0 || channels == 0 {
        return Err(PromptError::Undecodable("no sample rate or channels".into()));
    }
    if mono.is_empty() {
        return Err(PromptError::TooShort { seconds: 0.0 });
    }
    Ok((mono, rate, channels, format))
}

fn resample(input: &[f32], from: usize, to: usize) -> Result<Vec<f32>, String> {
    if from == to {
        return Ok(input.to_vec());
    }
    let mut rs = Fft::<f32>::new(from, to, 1024, 1, FixedSync::Input).map_err(|e| format!("resampler: {e}"))?;
    let adapter = InterleavedSlice::new(input, 1, input.len()).map_err(|e| format!("resampler input: {e}"))?;
    let out = rs.process_all(&adapter, input.len(), None).map_err(|e| format!("resampling {from} → {to} Hz: {e}"))?;
    Ok(out.take_data())
}

pub fn rms_dbfs(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return -100.0;
    }
    let e = pcm.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / pcm.len() as f64;
    10.0 * (e / (32768.0 * 32768.0)).max(1e-10).log10()
}

/// SNR of a µ-law encode/decode round trip with the codec the media path uses.
pub fn g711_snr(pcm: &[i16]) -> f64 {
    let codec = veertien_media::g711::Codec::Pcmu;
    let mut enc = Vec::with_capacity(pcm.len());
    codec.encode(pcm, &mut enc);
    let mut dec = Vec::with_capacity(pcm.len());
    codec.decode(&enc, &mut dec);
    let signal: f64 = pcm.iter().map(|&s| (s as f64).powi(2)).sum();
    let noise: f64 = pcm.iter().zip(&dec).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
    if noise == 0.0 { 100.0 } else { 10.0 * (signal / noise).log10() }
}

/// 8 kHz mono PCM16 WAV bytes.
pub fn wav_bytes(pcm: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec { channels: 1, sample_rate: RATE, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut out = Cursor::new(Vec::with_capacity(44 + pcm.len() * 2));
    {
        let mut w = hound::WavWriter::new(&mut out, spec).expect("in-memory WAV header");
        for &s in pcm {
            w.write_sample(s).expect("in-memory WAV sample");
        }
        w.finalize().expect("in-memory WAV");
    }
    out.into_inner()
}

/// Where the IVR reads a municipality's welcome prompt.
pub fn welcome_path(prompts_dir: &Path, cbs: &str) -> PathBuf {
    prompts_dir.join("custom").join(cbs).join("welcome.wav")
}

/// Writes the prompt atomically (temp file + rename), so a call never reads half a file.
pub fn store_welcome(prompts_dir: &Path, cbs: &str, pcm: &[i16]) -> std::io::Result<PathBuf> {
    let path = welcome_path(prompts_dir, cbs);
    let dir = path.parent().expect("custom/<cbs>");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".welcome.wav.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&wav_bytes(pcm))?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

// ---- HTTP handlers (routes in `crate::ROUTES`) ----

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Multipart, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::Digest;
use veertien_store::NewAuditEntry;

use crate::auth::{CSRF_HEADER, CurrentUser};
use crate::doc::FieldError;
use crate::pages::{current_doc, field, form_pairs, resolve};
use crate::settings_form::{self, PageCtx};
use crate::{AppState, AuthError};

/// What the audit log and the API report about a stored prompt.
fn describe(c: &Converted, wav: &[u8]) -> serde_json::Value {
    let sha: String = sha2::Sha256::digest(wav).iter().map(|b| format!("{b:02x}")).collect();
    serde_json::json!({
        "seconds": (c.seconds * 10.0).round() / 10.0,
        "level_dbfs": (c.level_dbfs * 10.0).round() / 10.0,
        "g711_snr_db": (c.g711_snr_db * 10.0).round() / 10.0,
        "source": format!("{} {} Hz, {} channel(s)", c.format, c.source_rate, c.source_channels),
        "sha256": sha,
    })
}

/// The stored prompt as the audit log's "before": its length and hash, or None.
fn existing(prompts_dir: &std::path::Path, cbs: &str) -> Option<serde_json::Value> {
    let bytes = std::fs::read(welcome_path(prompts_dir, cbs)).ok()?;
    let samples = bytes.len().saturating_sub(44) / 2;
    let sha: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    Some(serde_json::json!({ "seconds": (samples as f64 / RATE as f64 * 10.0).round() / 10.0, "sha256": sha }))
}

/// Converts and stores an upload, with its audit entry. The conversion runs off the async
/// workers: decoding and resampling a minute of audio is CPU work.
async fn accept(state: &AppState, user: &CurrentUser, cbs: &str, bytes: Vec<u8>) -> Result<serde_json::Value, Result<PromptError, String>> {
    let converted = tokio::task::spawn_blocking(move || convert(&bytes)).await.map_err(|e| Err(e.to_string()))?.map_err(Ok)?;
    let before = existing(&state.prompts_dir, cbs);
    let dir = state.prompts_dir.clone();
    let cbs_owned = cbs.to_string();
    let pcm = converted.pcm.clone();
    let path = tokio::task::spawn_blocking(move || store_welcome(&dir, &cbs_owned, &pcm))
        .await
        .map_err(|e| Err(e.to_string()))?
        .map_err(|e| Err(format!("cannot write the prompt: {e}")))?;
    let after = describe(&converted, &std::fs::read(&path).unwrap_or_default());
    let entry = NewAuditEntry { actor: user.email().to_string(), municipality_cbs: Some(cbs.to_string()), what: "welcome_prompt".into(), before, after: Some(after.clone()) };
    if let Err(e) = state.store.append_audit(&entry).await {
        tracing::error!(error = %e, municipality = cbs, "welcome prompt stored but not audited");
    }
    tracing::info!(municipality = cbs, actor = user.email(), seconds = converted.seconds, "welcome prompt uploaded");
    Ok(after)
}

async fn remove(state: &AppState, user: &CurrentUser, cbs: &str) -> Result<bool, String> {
    let before = existing(&state.prompts_dir, cbs);
    if before.is_none() {
        return Ok(false);
    }
    std::fs::remove_file(welcome_path(&state.prompts_dir, cbs)).map_err(|e| format!("cannot remove the prompt: {e}"))?;
    let entry = NewAuditEntry { actor: user.email().to_string(), municipality_cbs: Some(cbs.to_string()), what: "welcome_prompt".into(), before, after: None };
    if let Err(e) = state.store.append_audit(&entry).await {
        tracing::error!(error = %e, municipality = cbs, "welcome prompt removed but not audited");
    }
    Ok(true)
}

/// `GET /m/{cbs}/prompt.wav`, `GET /api/municipalities/{cbs}/prompt`: the stored 8 kHz WAV.
pub async fn get_prompt(State(state): State<AppState>, user: CurrentUser, UrlPath(cbs): UrlPath<String>) -> Result<Response, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    match tokio::fs::read(welcome_path(&state.prompts_dir, &cbs)).await {
        Ok(bytes) => Ok(([(header::CONTENT_TYPE, "audio/wav")], bytes).into_response()),
        Err(_) => Err(AuthError::NotFound),
    }
}

async fn page_with_error(state: &AppState, ui: Ui, user: &CurrentUser, cbs: &str, message: String, status: StatusCode) -> Response {
    let id = state.municipality_id(cbs).expect("resolved before");
    let (version, doc) = current_doc(state, cbs, id).await;
    let errors = [FieldError { field: "prompt".into(), message }];
    settings_form::render(state, ui, user, &doc, PageCtx { cbs, id, version, errors: &errors, notice: None, status })
}

/// `POST /m/{cbs}/prompt` (multipart: `csrf`, then `prompt`).
pub async fn upload_form(State(state): State<AppState>, ui: Ui, user: CurrentUser, UrlPath(cbs): UrlPath<String>, mut mp: Multipart) -> Result<Response, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    let mut csrf = None;
    let mut audio = None;
    loop {
        match mp.next_field().await {
            Ok(Some(f)) => match f.name() {
                Some("csrf") => csrf = f.text().await.ok(),
                Some("prompt") => {
                    // The token comes first in the form: nothing is read into memory for a forged request.
                    user.check_csrf(csrf.as_deref())?;
                    match f.bytes().await {
                        Ok(b) => audio = Some(b.to_vec()),
                        Err(e) => {
                            let msg = if e.status() == StatusCode::PAYLOAD_TOO_LARGE { PromptError::TooLarge { bytes: MAX_BYTES + 1 }.message(ui) } else { e.body_text() };
                            return Ok(page_with_error(&state, ui, &user, &cbs, msg, e.status()).await);
                        }
                    }
                }
                _ => {}
            },
            Ok(None) => break,
            Err(e) => {
                let msg = if e.status() == StatusCode::PAYLOAD_TOO_LARGE { PromptError::TooLarge { bytes: MAX_BYTES + 1 }.message(ui) } else { e.body_text() };
                return Ok(page_with_error(&state, ui, &user, &cbs, msg, e.status()).await);
            }
        }
    }
    user.check_csrf(csrf.as_deref())?;
    match accept(&state, &user, &cbs, audio.unwrap_or_default()).await {
        Ok(_) => Ok(Redirect::to(&format!("/m/{cbs}?prompt=1")).into_response()),
        Err(Ok(e)) => Ok(page_with_error(&state, ui, &user, &cbs, e.message(ui), StatusCode::UNPROCESSABLE_ENTITY).await),
        Err(Err(e)) => {
            tracing::error!(error = %e, municipality = %cbs, "welcome prompt upload failed");
            Ok(page_with_error(&state, ui, &user, &cbs, ui.t("Opslaan mislukt; probeer het later opnieuw.", "Saving failed; please try again later."), StatusCode::INTERNAL_SERVER_ERROR).await)
        }
    }
}

/// `POST /m/{cbs}/prompt/delete`: back to the standard text.
pub async fn delete_form(State(state): State<AppState>, user: CurrentUser, UrlPath(cbs): UrlPath<String>, body: Bytes) -> Result<Response, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    user.check_csrf(field(&form_pairs(&body), "csrf"))?;
    match remove(&state, &user, &cbs).await {
        Ok(_) => Ok(Redirect::to(&format!("/m/{cbs}?prompt=0")).into_response()),
        Err(e) => {
            tracing::error!(error = %e, municipality = %cbs, "welcome prompt removal failed");
            Ok((StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": e }))).into_response())
        }
    }
}

/// `PUT /api/municipalities/{cbs}/prompt`: the body is the WAV or MP3 file.
pub async fn put_api(State(state): State<AppState>, ui: Ui, user: CurrentUser, headers: HeaderMap, UrlPath(cbs): UrlPath<String>, body: Bytes) -> Result<Response, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    user.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    match accept(&state, &user, &cbs, body.to_vec()).await {
        Ok(info) => Ok(Json(info).into_response()),
        Err(Ok(e)) => {
            let errors = vec![FieldError { field: "prompt".into(), message: e.message(ui) }];
            Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(crate::api::ErrorsResponse { errors })).into_response())
        }
        Err(Err(e)) => {
            tracing::error!(error = %e, municipality = %cbs, "welcome prompt upload failed");
            Ok((StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": "saving failed" }))).into_response())
        }
    }
}

/// `DELETE /api/municipalities/{cbs}/prompt`: 204, or 404 when there was none.
pub async fn delete_api(State(state): State<AppState>, user: CurrentUser, headers: HeaderMap, UrlPath(cbs): UrlPath<String>) -> Result<Response, AuthError> {
    let (cbs, _) = resolve(&state, &user, &cbs)?;
    user.require_write(&cbs)?;
    user.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    match remove(&state, &user, &cbs).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(AuthError::NotFound),
        Err(e) => {
            tracing::error!(error = %e, municipality = %cbs, "welcome prompt removal failed");
            Ok((StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": "removing failed" }))).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spoken-like test signal: a 220 Hz tone with a 3 kHz component that must survive, and a
    /// 6 kHz component that must be filtered out (above the 4 kHz Nyquist of 8 kHz).
    fn tone(rate: u32, seconds: f64, amp: f32, channels: u16) -> Vec<u8> {
        let spec = hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let mut out = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for i in 0..(rate as f64 * seconds) as usize {
            let t = i as f32 / rate as f32;
            let v = amp * (0.6 * (2.0 * std::f32::consts::PI * 220.0 * t).sin() + 0.2 * (2.0 * std::f32::consts::PI * 3000.0 * t).sin() + 0.2 * (2.0 * std::f32::consts::PI * 6000.0 * t).sin());
            for _ in 0..channels {
                w.write_sample((v * 32767.0) as i16).unwrap();
            }
        }
        w.finalize().unwrap();
        out.into_inner()
    }

    /// Energy at `freq` (Goertzel), relative to the signal's total energy.
    fn share_at(pcm: &[i16], freq: f64) -> f64 {
        let k = 2.0 * (2.0 * std::f64::consts::PI * freq / RATE as f64).cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in pcm {
            let s = x as f64 + k * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let p = s1 * s1 + s2 * s2 - k * s1 * s2;
        let total: f64 = pcm.iter().map(|&x| (x as f64).powi(2)).sum();
        2.0 * p / (pcm.len() as f64 * total)
    }

    #[test]
    fn a_44k_stereo_wav_becomes_8k_mono_without_aliasing() {
        let c = convert(&tone(44_100, 3.0, 0.5, 2)).unwrap();
        assert_eq!((c.source_rate, c.source_channels, c.format), (44_100, 2, "wav"));
        assert!((c.seconds - 3.0).abs() < 0.05, "{}", c.seconds);
        assert!((c.pcm.len() as i64 - 24_000).abs() < 400, "{}", c.pcm.len());
        assert!(c.g711_snr_db > 30.0, "{}", c.g711_snr_db);
        // 3 kHz kept, 6 kHz gone — it would alias to 2 kHz with a naive decimator.
        assert!(share_at(&c.pcm, 3000.0) > 0.05, "{}", share_at(&c.pcm, 3000.0));
        assert!(share_at(&c.pcm, 2000.0) < 0.001, "aliasing: {}", share_at(&c.pcm, 2000.0));
        // The stored file is what the IVR reads: 8 kHz mono PCM16.
        let r = hound::WavReader::new(Cursor::new(wav_bytes(&c.pcm))).unwrap();
        assert_eq!((r.spec().sample_rate, r.spec().channels, r.spec().bits_per_sample), (8000, 1, 16));
    }

    #[test]
    fn refuses_what_a_caller_should_not_hear() {
        assert_eq!(convert(&[]), Err(PromptError::Empty));
        assert!(matches!(convert(&tone(8000, 61.0, 0.5, 1)), Err(PromptError::TooLong { .. })));
        assert!(matches!(convert(&tone(8000, 0.2, 0.5, 1)), Err(PromptError::TooShort { .. })));
        assert!(matches!(convert(&tone(16_000, 2.0, 0.001, 1)), Err(PromptError::Silent { .. })));
        assert!(matches!(convert(&tone(16_000, 2.0, 3.0, 1)), Err(PromptError::Clipped { .. })));
        assert!(matches!(convert(b"RIFF....WAVEfmt garbage garbage garbage"), Err(PromptError::Undecodable(_))));
        assert!(matches!(convert(&vec![0u8; MAX_BYTES + 1]), Err(PromptError::TooLarge { .. })));
        // Fuzzing finding: a 0 Hz WAV header made the decoder panic; now refused as unreadable.
        let crash = include_bytes!("../../../fuzz/regressions/prompt_upload/wav-sample-rate-0");
        assert!(matches!(convert(crash), Err(PromptError::Undecodable(_))));
        let mut zero = tone(8000, 1.0, 0.5, 1);
        zero[24..28].copy_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(convert(&zero), Err(PromptError::Undecodable(_))));
        let m = PromptError::TooLong { seconds: 61.0 }.message(Ui::Nl);
        assert!(m.contains("maximum is 60 seconden"), "{m}");
    }
}
