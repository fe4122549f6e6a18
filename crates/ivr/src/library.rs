//! [`PromptLibrary`]: the audio of every prompt piece, in memory, ready to be paced out as G.711.
//!
//! A prompts directory (built by `veertien prompts build`, see [`crate::audio::build`]) holds one
//! 8 kHz mono PCM16 WAV per piece — fixed phrase, municipality name, number word — per language,
//! and `manifest.json`. [`PromptLibrary::load`] reads all of them at start-up (about 6 MB of audio
//! per language for the whole plan), so a bad or missing file is found before the first call,
//! not during one. A prompt is rendered by concatenating its pieces with short pauses that follow
//! the punctuation ("Voor Goes, toets twee." pauses after the comma and the full stop).
//!
//! **A municipality's own recordings** live in `<dir>/custom/<cbs>/<prompt>.wav` (CBS code as in
//! the plan, e.g. `GM0664`; 8 kHz mono, PCM16 or G.711 µ-law/A-law WAV, as the portal's upload
//! writes them). They are read when a prompt is played — a new upload takes effect on the next
//! call, without a restart — and replace the generated audio:
//!
//! | file | replaces |
//! |---|---|
//! | `name.wav` | the municipality's name wherever a prompt says it (menu, "bedoelt u …") |
//! | `putting_through.wav`, else `welcome.wav` | "even geduld, u wordt doorverbonden met de gemeente X" once X is chosen: the municipality's own greeting |
//! | `closed.wav`, `calamity.wav`, `not_connected.wav` | that whole notice for the municipality |
//!
//! **Missing audio is never silence.** A piece without a file (a plan with a new municipality, a
//! calamity message typed in the portal) is synthesised on the fly with espeak-ng once and kept
//! (in the directory when it is writable, in memory in any case). Without espeak-ng, loading a
//! directory that lacks pieces fails with an error that says how to build them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;
use veertien_core::{Lang, MunicipalityId, Plan};

use crate::audio::{self, AudioItem, BuildError};
use crate::prompts::{PieceKind, Prompt, prompt_lang};

/// Sample rate of every piece and rendered prompt.
pub const SAMPLE_RATE: u32 = 8000;

/// At most this many pieces synthesised at run time are kept (free texts: calamity messages).
const MAX_EXTRA: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error(
        "prompt audio: {count} pieces missing in {dir} (first: {examples}) and espeak-ng/sox are not installed to make them; run `veertien prompts build --dir {dir}` (or `apt-get install espeak-ng sox`)"
    )]
    Missing {
        dir: PathBuf,
        count: usize,
        examples: String,
    },
    #[error("{path}: {reason}; rebuild it with `veertien prompts build`")]
    BadFile { path: PathBuf, reason: String },
    #[error("prompt audio for {text:?} ({lang}): {source}")]
    Synthesis {
        text: String,
        lang: &'static str,
        source: BuildError,
    },
    #[error("prompt audio for {text:?} ({lang}) is missing and espeak-ng is not installed")]
    NoSynthesiser { text: String, lang: &'static str },
}

/// What [`PromptLibrary::load`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    pub pieces: usize,
    /// Pieces without a file, to be synthesised when first needed.
    pub missing: usize,
    /// Total audio held in memory.
    pub samples: u64,
    pub langs: Vec<Lang>,
}

/// Where a rendered prompt's audio came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum AudioSource {
    Generated,
    /// A municipality's recording replaced the whole prompt.
    Recorded { file: PathBuf },
}

/// One prompt as audio.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// 8 kHz mono PCM16.
    pub pcm: Arc<[i16]>,
    pub source: AudioSource,
    /// Recorded name pieces used (municipality CBS codes).
    pub recorded_names: Vec<String>,
}

impl Rendered {
    pub fn duration_ms(&self) -> u64 {
        self.pcm.len() as u64 * 1000 / u64::from(SAMPLE_RATE)
    }
}

/// A custom recording as last read: file time and size, so an upload is noticed.
type CustomEntry = (Option<SystemTime>, u64, Option<Arc<[i16]>>);

/// Piece audio by language and the piece's text.
type Pieces = HashMap<(Lang, String), Arc<[i16]>>;

/// All prompt audio of one prompts directory. `Send + Sync`; share one per process in an `Arc`.
pub struct PromptLibrary {
    dir: PathBuf,
    pieces: Pieces,
    extra: Mutex<Pieces>,
    custom: Mutex<HashMap<PathBuf, CustomEntry>>,
    synth: bool,
    report: LoadReport,
}

impl std::fmt::Debug for PromptLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptLibrary")
            .field("dir", &self.dir)
            .field("report", &self.report)
            .finish()
    }
}

impl PromptLibrary {
    /// Loads every piece [`audio::audio_plan`] lists for `plan` and `langs` from `dir`.
    pub fn load(dir: &Path, plan: &Plan, langs: &[Lang]) -> Result<PromptLibrary, LibraryError> {
        Self::load_with(dir, plan, langs, audio::tools_available())
    }

    /// As [`load`](Self::load), stating whether espeak-ng/sox may be used for missing pieces.
    pub fn load_with(
        dir: &Path,
        plan: &Plan,
        langs: &[Lang],
        synthesiser: bool,
    ) -> Result<PromptLibrary, LibraryError> {
        let mut langs: Vec<Lang> = langs.iter().map(|&l| prompt_lang(l)).collect();
        langs.sort_by_key(|l| l.as_str());
        langs.dedup();
        let items = audio::audio_plan(plan, &langs);
        let mut pieces = HashMap::with_capacity(items.len());
        let mut missing: Vec<&AudioItem> = Vec::new();
        let mut samples = 0u64;
        for it in &items {
            let key = (it.lang, it.text.clone());
            if pieces.contains_key(&key) {
                continue;
            }
            let path = dir.join(&it.file);
            if !path.is_file() {
                missing.push(it);
                continue;
            }
            let pcm = read_piece(&path)?;
            samples += pcm.len() as u64;
            pieces.insert(key, pcm);
        }
        if !missing.is_empty() && !synthesiser {
            let examples = missing
                .iter()
                .take(3)
                .map(|i| format!("{:?} ({})", i.text, i.lang.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(LibraryError::Missing {
                dir: dir.to_path_buf(),
                count: missing.len(),
                examples,
            });
        }
        if !missing.is_empty() {
            tracing::warn!(
                dir = %dir.display(),
                missing = missing.len(),
                "prompt audio incomplete: missing pieces are synthesised when first needed; run `veertien prompts build`"
            );
        }
        let report = LoadReport {
            pieces: pieces.len(),
            missing: missing.len(),
            samples,
            langs,
        };
        Ok(PromptLibrary {
            dir: dir.to_path_buf(),
            pieces,
            extra: Mutex::new(HashMap::new()),
            custom: Mutex::new(HashMap::new()),
            synth: synthesiser,
            report,
        })
    }

    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The audio of `prompt` in `lang` (German → English), with a municipality's recordings
    /// in place of generated audio where they exist. May run espeak-ng (tens of milliseconds)
    /// for a piece never heard before: call it off the async runtime's worker threads.
    pub fn render(&self, prompt: &Prompt, lang: Lang, plan: &Plan) -> Result<Rendered, LibraryError> {
        let lang = prompt_lang(lang);
        if let Some(m) = prompt_municipality(prompt, plan) {
            let cbs = &plan.municipality(m).cbs;
            for name in whole_prompt_recordings(prompt) {
                let file = self.dir.join("custom").join(cbs).join(format!("{name}.wav"));
                if let Some(pcm) = self.custom(&file) {
                    return Ok(Rendered {
                        pcm,
                        source: AudioSource::Recorded { file },
                        recorded_names: Vec::new(),
                    });
                }
            }
        }
        let pieces = prompt.pieces(lang);
        let mut out: Vec<i16> = Vec::new();
        let mut recorded_names = Vec::new();
        let mut prev: Option<&str> = None;
        for p in &pieces {
            if let Some(prev) = prev {
                pause(&mut out, gap_ms(prev, &p.text));
            }
            prev = Some(&p.text);
            match p.kind {
                PieceKind::Name => {
                    if let Some(m) = unique_by_everyday_name(plan, &p.text) {
                        let cbs = &plan.municipality(m).cbs;
                        let file = self.dir.join("custom").join(cbs).join("name.wav");
                        if let Some(pcm) = self.custom(&file) {
                            out.extend_from_slice(&pcm);
                            recorded_names.push(cbs.clone());
                            continue;
                        }
                    }
                    out.extend_from_slice(&self.piece(lang, PieceKind::Name, &p.text)?);
                }
                PieceKind::Number => {
                    let key = (lang, p.text.clone());
                    if let Some(pcm) = self.pieces.get(&key) {
                        out.extend_from_slice(pcm);
                        continue;
                    }
                    // Read word by word from the number pieces: no synthesis per phone number.
                    let words: Vec<&str> = audio::number_words(&p.text).collect();
                    let mut w_prev: Option<&str> = None;
                    for (w, raw) in words.iter().zip(p.text.split_whitespace()) {
                        if let Some(wp) = w_prev {
                            pause(&mut out, gap_ms(wp, raw));
                        }
                        w_prev = Some(raw);
                        out.extend_from_slice(&self.piece(lang, PieceKind::Number, w)?);
                    }
                }
                kind => out.extend_from_slice(&self.piece(lang, kind, &p.text)?),
            }
        }
        Ok(Rendered {
            pcm: out.into(),
            source: AudioSource::Generated,
            recorded_names,
        })
    }

    /// One piece: from the directory, from earlier run-time synthesis, or synthesised now.
    fn piece(&self, lang: Lang, kind: PieceKind, text: &str) -> Result<Arc<[i16]>, LibraryError> {
        let key = (lang, text.to_string());
        if let Some(p) = self.pieces.get(&key) {
            return Ok(p.clone());
        }
        if let Some(p) = lock(&self.extra).get(&key) {
            return Ok(p.clone());
        }
        if !self.synth {
            return Err(LibraryError::NoSynthesiser {
                text: text.to_string(),
                lang: lang.as_str(),
            });
        }
        let it = audio::item(lang, kind, text.to_string());
        let synth_err = |source| LibraryError::Synthesis {
            text: text.to_string(),
            lang: lang.as_str(),
            source,
        };
        // Into the prompts directory when possible (the next start finds it); a read-only
        // installation still plays the piece from a temporary file.
        let in_dir = self.dir.join(&it.file);
        let (path, temporary) = match in_dir
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .ok()
            .and_then(|_| audio::synthesise(&it.text, lang, &in_dir).ok())
        {
            Some(()) => (in_dir, false),
            None => {
                let tmp = std::env::temp_dir().join(format!(
                    "veertien-prompt-{}-{}",
                    std::process::id(),
                    it.file.replace('/', "-")
                ));
                audio::synthesise(&it.text, lang, &tmp).map_err(synth_err)?;
                (tmp, true)
            }
        };
        let pcm = read_piece(&path);
        // Only the fallback file goes: a prompts directory may itself live under the
        // temporary directory, and its pieces are kept for the next start.
        if temporary {
            let _ = std::fs::remove_file(&path);
        }
        let pcm = pcm?;
        tracing::info!(text, lang = lang.as_str(), "prompt piece synthesised on the fly");
        let mut extra = lock(&self.extra);
        if extra.len() >= MAX_EXTRA {
            extra.clear();
        }
        extra.insert(key, pcm.clone());
        Ok(pcm)
    }

    /// A recording, re-read when its file changed; `None` when absent or unusable (logged).
    fn custom(&self, file: &Path) -> Option<Arc<[i16]>> {
        let meta = std::fs::metadata(file).ok()?;
        let stamp = (meta.modified().ok(), meta.len());
        let mut cache = lock(&self.custom);
        if let Some((t, len, pcm)) = cache.get(file)
            && (*t, *len) == stamp
        {
            return pcm.clone();
        }
        let pcm = match read_piece(file) {
            Ok(p) if !p.is_empty() => Some(p),
            Ok(_) => {
                tracing::warn!(file = %file.display(), "recorded prompt is empty; using generated audio");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "recorded prompt unusable; using generated audio");
                None
            }
        };
        cache.insert(file.to_path_buf(), (stamp.0, stamp.1, pcm.clone()));
        pcm
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An 8 kHz WAV (PCM16 or G.711) with the silence espeak-ng puts around speech trimmed to
/// 30 ms, so the pauses between pieces are the ones [`gap_ms`] chooses.
fn read_piece(path: &Path) -> Result<Arc<[i16]>, LibraryError> {
    let (pcm, rate) =
        veertien_speech::audio::read_wav(path).map_err(|e| LibraryError::BadFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if rate != SAMPLE_RATE {
        return Err(LibraryError::BadFile {
            path: path.to_path_buf(),
            reason: format!("{rate} Hz, expected 8000 Hz mono"),
        });
    }
    Ok(trim_silence(&pcm).into())
}

fn trim_silence(pcm: &[i16]) -> &[i16] {
    const THRESHOLD: i16 = 200;
    const KEEP: usize = 240;
    let loud = |s: &i16| s.unsigned_abs() > THRESHOLD as u16;
    let (Some(first), Some(last)) = (pcm.iter().position(loud), pcm.iter().rposition(loud)) else {
        return pcm;
    };
    &pcm[first.saturating_sub(KEEP)..(last + 1 + KEEP).min(pcm.len())]
}

/// Pause between two pieces, from the punctuation at the seam.
fn gap_ms(prev: &str, next: &str) -> u32 {
    let end = prev.trim_end().chars().last();
    let start = next.trim_start().chars().next();
    match (end, start) {
        (Some('.' | '?' | '!'), _) | (_, Some('.' | '?' | '!')) => 450,
        (Some(':' | ';'), _) => 300,
        (Some(','), _) | (_, Some(',')) => 200,
        _ => 60,
    }
}

fn pause(out: &mut Vec<i16>, ms: u32) {
    out.resize(out.len() + (ms * SAMPLE_RATE / 1000) as usize, 0);
}

/// The municipality a whole-prompt recording may speak for.
fn prompt_municipality(prompt: &Prompt, plan: &Plan) -> Option<MunicipalityId> {
    match prompt {
        Prompt::PuttingThrough { name }
        | Prompt::NotConnected { name, .. }
        | Prompt::Closed { name, .. }
        | Prompt::Calamity { name, .. }
        | Prompt::Unreachable { name } => unique_by_everyday_name(plan, name),
        _ => None,
    }
}

/// Recording names that replace `prompt`, in order of preference.
fn whole_prompt_recordings(prompt: &Prompt) -> &'static [&'static str] {
    match prompt {
        Prompt::PuttingThrough { .. } => &["putting_through", "welcome"],
        Prompt::NotConnected { .. } => &["not_connected"],
        Prompt::Closed { .. } => &["closed"],
        // The municipality's own typed message is read out as written; its recording
        // replaces only the standard notice.
        Prompt::Calamity { message: None, .. } => &["calamity"],
        _ => &[],
    }
}

/// The one municipality with this everyday name; `None` when no or several share it.
fn unique_by_everyday_name(plan: &Plan, name: &str) -> Option<MunicipalityId> {
    let mut found = plan
        .municipalities()
        .iter()
        .filter(|m| m.everyday_name == name)
        .map(|m| m.id);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_follow_punctuation() {
        assert_eq!(gap_ms("Voor", "Goes"), 60);
        assert_eq!(gap_ms("Goes", ", toets"), 200);
        assert_eq!(gap_ms("twee.", "Voor"), 450);
        assert_eq!(gap_ms("Bedoelt u", "Kapelle"), 60);
        assert_eq!(gap_ms("Kapelle", "? Zeg ja of toets 1."), 450);
    }

    #[test]
    fn silence_around_speech_is_trimmed_to_a_short_margin() {
        let mut pcm = vec![0i16; 4000];
        pcm.extend(std::iter::repeat_n(3000i16, 800));
        pcm.extend(vec![5i16; 4000]);
        let t = trim_silence(&pcm);
        assert_eq!(t.len(), 800 + 2 * 240);
        assert_eq!(trim_silence(&[0; 100]).len(), 100, "all-silent audio is kept as is");
    }

    #[test]
    fn everyday_names_identify_one_municipality() {
        let plan = Plan::builtin();
        let kapelle = unique_by_everyday_name(plan, "Kapelle").unwrap();
        assert_eq!(plan.municipality(kapelle).cbs, "GM0678");
        assert_eq!(unique_by_everyday_name(plan, "Nergensdorp"), None);
    }
}
