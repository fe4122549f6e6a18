//! Prompt audio generated from text with espeak-ng + sox: 8 kHz mono PCM16 WAV, one file per
//! piece (fixed phrase, municipality name, number word, weekday), cached by a hash of voice and
//! text so a rebuild only synthesises what changed. A municipality's own recording (a file of the
//! same name under the `recorded` directory) replaces the generated one.
//!
//! espeak-ng has no Frisian voice: Frisian text is spoken with the Dutch voice (intelligible, with
//! a Dutch accent) until a Frisian voice or recordings are provided.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use veertien_core::{Lang, Plan};

use crate::prompts::{PieceKind, Prompt, prompt_lang};
use crate::spoken;

/// One piece of audio to have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AudioItem {
    pub lang: Lang,
    pub kind: PieceKind,
    pub text: String,
    /// Relative to the output directory: "nl/name/3f2a….wav".
    pub file: String,
}

/// The espeak-ng voice for a prompt language.
pub fn voice(lang: Lang) -> &'static str {
    match prompt_lang(lang) {
        Lang::En => "en-gb",
        _ => "nl",
    }
}

/// FNV-1a, written out because the file names must stay the same across Rust releases
/// (std's hasher does not promise that) and this needs no cryptographic strength.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub(crate) fn item(lang: Lang, kind: PieceKind, text: String) -> AudioItem {
    let k = match kind {
        PieceKind::Phrase => "phrase",
        PieceKind::Name => "name",
        PieceKind::Number => "number",
        PieceKind::Free => "free",
    };
    let file = format!(
        "{}/{k}/{:016x}.wav",
        lang.as_str(),
        fnv1a(&format!("{}|{}", voice(lang), text))
    );
    AudioItem {
        lang,
        kind,
        text,
        file,
    }
}

/// Every piece the prompts of `langs` can need: all fixed phrases, every municipality's
/// everyday name, the number words 0–99 and the weekdays.
pub fn audio_plan(plan: &Plan, langs: &[Lang]) -> Vec<AudioItem> {
    let mut out = Vec::new();
    for &lang in langs {
        out.extend(
            Prompt::all_phrases(lang)
                .into_iter()
                .map(|t| item(lang, PieceKind::Phrase, t)),
        );
        let mut names: Vec<&str> = plan
            .municipalities()
            .iter()
            .map(|m| m.everyday_name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        out.extend(
            names
                .into_iter()
                .map(|n| item(lang, PieceKind::Name, n.to_string())),
        );
        out.extend((0..100).map(|n| item(lang, PieceKind::Number, spoken::number(n, lang))));
        for d in 0..7 {
            if let Ok(wd) = jiff::civil::Weekday::from_monday_zero_offset(d) {
                out.push(item(
                    lang,
                    PieceKind::Number,
                    spoken::weekday(wd, lang).to_string(),
                ));
            }
        }
        // The other words read-out numbers use ("uur", "vanaf", "o'clock"): a number piece is
        // played word by word from these.
        let mut extra: Vec<String> = [(0, 8, 0), (0, 8, 5), (0, 8, 30)]
            .into_iter()
            .flat_map(|opens| {
                Prompt::Closed {
                    name: String::new(),
                    opens: Some(opens),
                }
                .pieces(lang)
            })
            .filter(|p| p.kind == PieceKind::Number)
            .flat_map(|p| number_words(&p.text).map(str::to_string).collect::<Vec<_>>())
            .filter(|w| !out.iter().any(|i| i.lang == lang && i.text == *w))
            .collect();
        extra.sort();
        extra.dedup();
        out.extend(
            extra
                .into_iter()
                .map(|w| item(lang, PieceKind::Number, w)),
        );
    }
    out
}

/// The words of a read-out number ("nul twee drie, vijfenzeventig." → nul, twee, drie,
/// vijfenzeventig): each has its own audio piece.
pub fn number_words(text: &str) -> impl Iterator<Item = &str> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| matches!(c, ',' | '.' | '?' | '!' | ':' | ';')))
        .filter(|w| !w.is_empty())
}

/// How pieces are synthesised; part of every manifest entry, so a change rebuilds the files.
pub const SYNTH_PARAMS: &str = "espeak-ng -s 150 | sox -r 8000 -c 1 -b 16 -e signed-integer";

/// The manifest's name inside a prompts directory.
pub const MANIFEST: &str = "manifest.json";

/// One built file, as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ManifestEntry {
    pub file: String,
    pub lang: Lang,
    pub kind: PieceKind,
    pub text: String,
    pub voice: String,
    pub params: String,
    /// SHA-256 of the WAV file: a truncated or edited file is rebuilt.
    pub sha256: String,
}

/// `manifest.json`: what every generated file holds. Entries of files no longer wanted (a
/// narrower `--lang`, a renamed municipality) are kept, so building a subset never forgets
/// what was built before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Manifest {
    pub entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// Reads `<dir>/manifest.json`; a missing file is an empty manifest.
    pub fn read(dir: &Path) -> Result<Manifest, BuildError> {
        let path = dir.join(MANIFEST);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| BuildError::Manifest {
                path,
                line: e.line(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(source) => Err(BuildError::Io { path, source }),
        }
    }

    fn write(&self, dir: &Path) -> Result<(), BuildError> {
        let path = dir.join(MANIFEST);
        let tmp = dir.join("manifest.json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| BuildError::Io {
            path: path.clone(),
            source: e.into(),
        })?;
        std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))
    }

    pub fn get(&self, file: &str) -> Option<&ManifestEntry> {
        self.entries.iter().find(|e| e.file == file)
    }
}

/// SHA-256 of a file's bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `it` is built under `out` exactly as the manifest says (same text, voice and
/// synthesis parameters, file unchanged since).
pub fn up_to_date(it: &AudioItem, out: &Path, manifest: &Manifest) -> bool {
    let Some(e) = manifest.get(&it.file) else {
        return false;
    };
    if e.text != it.text || e.voice != voice(it.lang) || e.params != SYNTH_PARAMS {
        return false;
    }
    std::fs::read(out.join(&it.file)).is_ok_and(|b| sha256_hex(&b) == e.sha256)
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BuildReport {
    pub generated: usize,
    /// Already built and unchanged: skipped.
    pub cached: usize,
    /// Bytes of audio of all items (generated and cached).
    pub bytes: u64,
}

/// Progress of [`build`], reported once per item.
#[derive(Debug, Clone, Copy)]
pub struct BuildProgress<'a> {
    pub done: usize,
    pub total: usize,
    pub item: &'a AudioItem,
    pub generated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "{tool} is needed to generate prompt audio ({source}); install it with `apt-get install {tool}`"
    )]
    MissingTool {
        tool: &'static str,
        source: io::Error,
    },
    #[error("{tool} failed on {text:?}: {stderr}")]
    ToolFailed {
        tool: &'static str,
        text: String,
        stderr: String,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} line {line}: not a prompts manifest: {message}")]
    Manifest {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Produce every item's audio under `out`, skipping the ones [`up_to_date`], and record them
/// in `out/manifest.json` (written after every 50 items too, so an interrupted build keeps
/// what it made). A municipality's own recordings are not copied here: the
/// [`PromptLibrary`](crate::library::PromptLibrary) reads them from `out/custom/` when it plays.
pub fn build(
    items: &[AudioItem],
    out: &Path,
    mut progress: impl FnMut(BuildProgress<'_>),
) -> Result<BuildReport, BuildError> {
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let mut manifest = Manifest::read(out)?;
    let mut report = BuildReport::default();
    let mut unsaved = 0usize;
    for (i, it) in items.iter().enumerate() {
        let dest = out.join(&it.file);
        let generated = if up_to_date(it, out, &manifest) {
            report.cached += 1;
            false
        } else {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            synthesise(&it.text, it.lang, &dest)?;
            let bytes = std::fs::read(&dest).map_err(io_err(&dest))?;
            let entry = ManifestEntry {
                file: it.file.clone(),
                lang: it.lang,
                kind: it.kind,
                text: it.text.clone(),
                voice: voice(it.lang).to_string(),
                params: SYNTH_PARAMS.to_string(),
                sha256: sha256_hex(&bytes),
            };
            match manifest.entries.iter_mut().find(|e| e.file == it.file) {
                Some(e) => *e = entry,
                None => manifest.entries.push(entry),
            }
            report.generated += 1;
            unsaved += 1;
            if unsaved >= 50 {
                manifest.write(out)?;
                unsaved = 0;
            }
            true
        };
        report.bytes += std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
        progress(BuildProgress {
            done: i + 1,
            total: items.len(),
            item: it,
            generated,
        });
    }
    manifest.entries.sort_by(|a, b| a.file.cmp(&b.file));
    manifest.write(out)?;
    Ok(report)
}

/// Whether espeak-ng and sox can be run (prompt audio can be synthesised here).
pub fn tools_available() -> bool {
    ["espeak-ng", "sox"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok()
    })
}

fn run(tool: &'static str, cmd: &mut Command, text: &str) -> Result<(), BuildError> {
    let o = cmd
        .output()
        .map_err(|source| BuildError::MissingTool { tool, source })?;
    if o.status.success() {
        Ok(())
    } else {
        Err(BuildError::ToolFailed {
            tool,
            text: text.to_string(),
            stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
        })
    }
}

/// `text` → 8 kHz mono PCM16 WAV at `dest` (written via a temporary file so a crash leaves no
/// half file in the cache).
pub fn synthesise(text: &str, lang: Lang, dest: &Path) -> Result<(), BuildError> {
    let raw = dest.with_extension("espeak.wav");
    let tmp = dest.with_extension("tmp.wav");
    run(
        "espeak-ng",
        Command::new("espeak-ng")
            .args(["-v", voice(lang), "-s", "150", "-w"])
            .arg(&raw)
            .arg("--")
            .arg(text),
        text,
    )?;
    run(
        "sox",
        // -R (repeatable): dither seeded with a fixed number, so the same text always gives
        // the same audio (prompt builds and the tests that speak through this are reproducible).
        Command::new("sox")
            .arg("-R")
            .arg(&raw)
            .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
            .arg(&tmp),
        text,
    )?;
    let _ = std::fs::remove_file(&raw);
    std::fs::rename(&tmp, dest).map_err(io_err(dest))
}
