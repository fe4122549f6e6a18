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

fn item(lang: Lang, kind: PieceKind, text: String) -> AudioItem {
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
    }
    out
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BuildReport {
    pub generated: usize,
    pub cached: usize,
    pub recorded: usize,
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
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Produce every item's audio under `out`, skipping files already there (the cache), and
/// copying a recording from `recorded` (same relative path) when one exists.
pub fn build(
    items: &[AudioItem],
    out: &Path,
    recorded: Option<&Path>,
) -> Result<BuildReport, BuildError> {
    let mut report = BuildReport::default();
    for it in items {
        let dest = out.join(&it.file);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        if let Some(rec) = recorded.map(|r| r.join(&it.file)).filter(|p| p.is_file()) {
            std::fs::copy(&rec, &dest).map_err(io_err(&rec))?;
            report.recorded += 1;
            continue;
        }
        if dest.is_file() {
            report.cached += 1;
            continue;
        }
        synthesise(&it.text, it.lang, &dest)?;
        report.generated += 1;
    }
    let index = serde_json::to_string_pretty(items).map_err(|e| BuildError::Io {
        path: out.join("index.json"),
        source: e.into(),
    })?;
    std::fs::write(out.join("index.json"), index).map_err(io_err(&out.join("index.json")))?;
    Ok(report)
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
        Command::new("sox")
            .arg(&raw)
            .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
            .arg(&tmp),
        text,
    )?;
    let _ = std::fs::remove_file(&raw);
    std::fs::rename(&tmp, dest).map_err(io_err(dest))
}
