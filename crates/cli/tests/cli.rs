//! The real `veertien` binary: JSON keys scripts rely on, exit codes, plan and settings commands.

use assert_cmd::Command;
use serde_json::Value;

fn veertien() -> Command {
    Command::cargo_bin("veertien").unwrap()
}

fn json(args: &[&str]) -> Value {
    let out = veertien().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/numberplan")
}

#[test]
fn route_0113_asks_among_the_five() {
    let v = json(&["route", "140113", "--json"]);
    assert_eq!(v["decision"]["kind"], "ask");
    assert_eq!(v["number"], "140113");
    let names: Vec<&str> = v["decision"]["candidates"].as_array().unwrap().iter().map(|c| c["municipality"].as_str().unwrap()).collect();
    assert_eq!(names, ["Borsele", "Goes", "Kapelle", "Noord-Beveland", "Reimerswaal"]);
    assert!(v.get("resolution").is_none());
}

#[test]
fn route_with_caller_in_the_same_area() {
    let v = json(&["route", "14020", "--from", "0201234567", "--json"]);
    assert_eq!(v["decision"]["kind"], "ask");
    assert_eq!(v["decision"]["caller_area_match"]["caller"], "+31201234567");
}

#[test]
fn route_unique_code_forwards() {
    let v = json(&["route", "tel:+31-14-0111", "--json"]);
    assert_eq!(v["decision"]["kind"], "forward");
    assert_eq!(v["decision"]["municipality"], "Schouwen-Duiveland");
    assert_eq!(v["decision"]["destination"], "tel:+31111452000");
}

#[test]
fn bad_numbers_exit_non_zero_with_the_reason_on_stderr() {
    veertien()
        .args(["route", "14099"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("099 is not a geographic area code"));
    veertien()
        .args(["route", "0201234567", "--json"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("does not start with 14"))
        .stdout(predicates::str::contains("\"kind\": \"reject\""));
    veertien().args(["route", "14 02x"]).assert().code(1).stderr(predicates::str::contains("unexpected character 'x'"));
}

#[test]
fn settings_file_changes_the_decision() {
    let dir = std::env::temp_dir().join(format!("veertien-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("settings.toml");
    std::fs::write(&f, "[municipality.GM1676]\nstatus = \"not_connected\"\nforward_when_not_connected = true\n").unwrap();
    let v = json(&["route", "140111", "--json", "--settings", f.to_str().unwrap()]);
    assert_eq!(v["decision"]["kind"], "announce");
    assert_eq!(v["decision"]["reason"], "not_connected");
    assert_eq!(v["decision"]["forward_to"], "tel:+31111452000");

    std::fs::write(&f, "[municipality.GM1676]\ndestination = \"140111\"\n").unwrap();
    veertien()
        .args(["route", "140111", "--settings", f.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("settings line 2: municipality.GM1676.destination"));

    // Opening hours and --at.
    std::fs::write(&f, "[municipality.GM1676.opening_hours]\nmonday = \"08:00-17:00\"\n").unwrap();
    let v = json(&["route", "140111", "--json", "--settings", f.to_str().unwrap(), "--at", "2026-03-16T09:00"]);
    assert_eq!(v["decision"]["kind"], "forward");
    let v = json(&["route", "140111", "--json", "--settings", f.to_str().unwrap(), "--at", "2026-03-17T09:00"]);
    assert_eq!(v["decision"]["reason"], "closed");
    assert_eq!(v["decision"]["opens_at"], "2026-03-23T08:00:00+01:00");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn plan_check_counts_and_lists_unconfigured() {
    let v = json(&["plan", "check", "--json"]);
    assert_eq!(v["counts"]["municipalities"], 342);
    assert_eq!(v["counts"]["area_codes"], 141);
    // 131 whose general number is their 14+ number, plus Haarlemmermeer, whose published 0900 1852
    // the toll-fraud guard refuses as a destination.
    let unconfigured = v["unconfigured_destinations"].as_array().unwrap();
    assert_eq!(unconfigured.len(), 132);
    let why = |name: &str| unconfigured.iter().find(|m| m["municipality"] == name).map(|m| m["why"].as_str().unwrap().to_owned());
    assert_eq!(why("Haarlemmermeer").unwrap(), "the published general number is refused: +319001852 is a premium-rate number (090x): not allowed as destination");
    assert_eq!(why("Goes").unwrap(), "the general number is the 14+ number itself");
    veertien()
        .args(["plan", "check", data_dir().to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicates::str::contains("gemeenten: 342"))
        .stdout(predicates::str::contains("GM0394 Haarlemmermeer: het gepubliceerde algemene nummer wordt geweigerd: +319001852 is een betaalnummer"));
}

/// An operator who sees a call go to the placeholder trunk is told why the municipality has no
/// destination yet: the 14+ number itself is the published number, or the published number is
/// one the toll-fraud guard refuses (Haarlemmermeer's 0900).
#[test]
fn route_says_why_a_municipality_has_no_destination_yet() {
    veertien()
        .args(["route", "14023", "--say", "Haarlemmermeer", "--lang", "en"])
        .assert()
        .success()
        .stdout(predicates::str::contains("NOTE: no destination configured yet (the published general number is refused: +319001852 is a premium-rate number"));
    veertien()
        .args(["route", "140113", "--say", "Goes"])
        .assert()
        .success()
        .stdout(predicates::str::contains("LET OP: nog geen eigen bestemming ingesteld (het algemene nummer is het 14+ nummer zelf)"));
}

#[test]
fn plan_check_refuses_a_bad_directory_naming_file_and_line() {
    let dir = std::env::temp_dir().join(format!("veertien-cli-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(data_dir()).unwrap() {
        let e = e.unwrap();
        if e.path().extension().is_some_and(|x| x == "csv") {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    let p = dir.join("netnummergebieden.csv");
    let text = std::fs::read_to_string(&p).unwrap().replacen("0111,140111", "0111,14111", 1);
    std::fs::write(&p, text).unwrap();
    veertien()
        .args(["plan", "check", dir.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("netnummergebieden.csv:3: column fourteen_number"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn plan_show_area_code_municipality_and_place() {
    let v = json(&["plan", "show", "0113", "--json"]);
    assert_eq!(v["fourteen"], "140113");
    assert_eq!(v["municipalities"].as_array().unwrap().len(), 5);
    let v = json(&["plan", "show", "Den Bosch", "--json"]);
    assert_eq!(v["municipality"], "'s-Hertogenbosch");
    let v = json(&["plan", "show", "Weesp", "--json"]);
    assert_eq!(v["municipality"], "Amsterdam");
    let v = json(&["plan", "show", "Haarlemmermeer", "--json"]);
    assert_eq!(v["area_codes"].as_array().unwrap().len(), 4);
    veertien().args(["plan", "show", "Velp"]).assert().code(1).stderr(predicates::str::contains("Rheden"));
    veertien().args(["plan", "show", "Atlantis"]).assert().code(1);
}

#[test]
fn settings_defaults_is_valid_toml_for_all() {
    let out = veertien().args(["settings", "defaults"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("[municipality.GM").count(), 342);
    let dir = std::env::temp_dir().join(format!("veertien-cli-defaults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("s.toml");
    std::fs::write(&f, &text).unwrap();
    veertien().args(["settings", "check", f.to_str().unwrap()]).assert().success();
    std::fs::remove_dir_all(&dir).ok();
}

fn say(number: &str, text: &str, extra: &[&str]) -> Value {
    let mut args = vec!["route", number, "--json", "--say", text];
    args.extend_from_slice(extra);
    json(&args)
}

#[test]
fn say_resolves_the_meant_municipality() {
    // The README example.
    let v = say("14020", "Amstelveen", &["--from", "0201234567"]);
    assert_eq!(v["decision"]["kind"], "ask");
    assert_eq!(v["resolution"]["municipality"], "Amstelveen");
    assert_eq!(v["after_choice"]["kind"], "forward");
    assert_eq!(v["after_choice"]["municipality"], "Amstelveen");

    // Weesp is a place of Amsterdam.
    let v = say("14020", "ik wil Weesp", &[]);
    assert_eq!(v["resolution"]["municipality"], "Amsterdam");

    // Another area code: the resolution names the municipality and its 14+ number.
    let v = say("140570", "ehm Epe", &[]);
    assert_eq!(v["resolution"]["municipality"], "Epe");
    assert_eq!(v["resolution"]["outcome"]["fourteen_number"], "140578");
    assert!(v["after_choice"].is_null());

    // Velp on a code that serves neither Velp: still ambiguous.
    let v = say("14020", "Velp", &[]);
    assert!(v["resolution"]["municipality"].is_null());

    // Den Bosch by its everyday name.
    let v = say("14073", "gemeente Den Bosch", &[]);
    assert_eq!(v["resolution"]["municipality"], "'s-Hertogenbosch");
}

#[test]
fn say_a_municipality_that_is_not_connected() {
    let dir = std::env::temp_dir().join(format!("veertien-cli-say-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("settings.toml");
    std::fs::write(&f, "[municipality.GM0394]\nname = \"Haarlemmermeer\"\nstatus = \"not_connected\"\n").unwrap();
    let v = say("14023", "Haarlemmermeer", &["--settings", f.to_str().unwrap()]);
    assert_eq!(v["resolution"]["municipality"], "Haarlemmermeer");
    assert_eq!(v["after_choice"]["kind"], "announce");
    assert_eq!(v["after_choice"]["reason"], "not_connected");
    assert_eq!(v["after_choice"]["general_number"]["raw"], "(0900) 18 52");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_unquoted_number_with_spaces_is_one_number() {
    let v = json(&["route", "14", "0111", "--json"]);
    assert_eq!(v["number"], "140111");
    assert_eq!(v["decision"]["kind"], "forward");
    veertien().args(["route", "140111", "--lang", "en"]).assert().success().stdout(predicates::str::contains("Forward to municipality Schouwen-Duiveland"));
}

#[test]
fn route_with_a_corrected_plan_directory() {
    // Close a known gap of the shipped data (QUALITY.md): Amstelveen's villages in 0297.
    let dir = std::env::temp_dir().join(format!("veertien-cli-corrected-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(data_dir()).unwrap() {
        let e = e.unwrap();
        if e.path().extension().is_some_and(|x| x == "csv") {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    let before = json(&["route", "140297", "--json"]);
    let has = |v: &Value| v["decision"]["candidates"].as_array().unwrap().iter().any(|c| c["municipality"] == "Amstelveen");
    assert!(!has(&before));
    let p = dir.join("netnummers.csv");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str("0297,140297,Aalsmeer,GM0362,Amstelveen,Noord-Holland,council_letter,Nes aan de Amstel\n");
    std::fs::write(&p, text).unwrap();
    let after = json(&["route", "140297", "--json", "--plan", dir.to_str().unwrap()]);
    assert!(has(&after));
    // plan check reports the now stale summary file as a warning, not an error.
    veertien()
        .args(["plan", "check", dir.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicates::str::contains("netnummergebieden.csv"));
    std::fs::remove_dir_all(&dir).ok();
}
