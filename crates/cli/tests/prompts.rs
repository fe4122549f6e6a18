//! `veertien prompts build`: incremental prompt audio with a manifest (needs espeak-ng + sox).

use assert_cmd::Command;

fn tools() -> bool {
    ["espeak-ng", "sox"].iter().all(|t| std::process::Command::new(t).arg("--version").output().is_ok())
}

#[test]
fn builds_one_area_codes_prompts_incrementally_with_a_manifest() {
    if !tools() {
        assert!(std::env::var_os("CI").is_none(), "espeak-ng and sox must be installed under CI");
        eprintln!("espeak-ng/sox not installed: skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        Command::cargo_bin("veertien")
            .unwrap()
            .args(["prompts", "build", "--lang", "nl", "--area", "0113", "--dir"])
            .arg(dir.path())
            .assert()
            .success()
    };
    let first = String::from_utf8(run().get_output().stdout.clone()).unwrap();
    assert!(!first.starts_with("0 gegenereerd"), "{first}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap()).unwrap();
    let entries = manifest["entries"].as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "name")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 5, "the five municipalities of 0113 only: {names:?}");
    assert!(names.contains(&"Kapelle") && !names.contains(&"Amsterdam"));
    assert!(entries.iter().any(|e| e["text"] == "Bedoelt u" && e["voice"] == "nl"));
    for e in entries {
        assert!(dir.path().join(e["file"].as_str().unwrap()).is_file());
        assert_eq!(e["sha256"].as_str().unwrap().len(), 64);
    }
    // Nothing changed: nothing is generated again.
    let second = String::from_utf8(run().get_output().stdout.clone()).unwrap();
    assert!(second.starts_with("0 gegenereerd"), "{second}");
    // A changed file (e.g. truncated) is rebuilt, and only that one.
    let f = entries[0]["file"].as_str().unwrap();
    std::fs::write(dir.path().join(f), b"RIFF").unwrap();
    let third = String::from_utf8(run().get_output().stdout.clone()).unwrap();
    assert!(third.starts_with("1 gegenereerd"), "{third}");
}

#[test]
fn an_unknown_area_code_or_language_is_refused_with_its_name() {
    let out = Command::cargo_bin("veertien")
        .unwrap()
        .args(["prompts", "build", "--area", "0999", "--dir", "/nonexistent-veertien"])
        .assert()
        .failure();
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("0999"), "{err}");
    let out = Command::cargo_bin("veertien")
        .unwrap()
        .args(["prompts", "build", "--lang", "nl,xx", "--dir", "/nonexistent-veertien"])
        .assert()
        .failure();
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("\"xx\""), "{err}");
}
