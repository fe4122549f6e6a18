//! The shipped plan loads, with the counts SOURCES.md/QUALITY.md state, and bad files are refused
//! naming file, line and reason.

use std::path::Path;

use veertien_core::{GeneralNumberKind, Plan, PlanError, PlanSources, SuccessorEvidence};

fn data_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/numberplan"))
}

#[test]
fn builtin_plan_has_the_documented_counts() {
    let p = Plan::builtin();
    let c = p.counts();
    assert_eq!(c.municipalities, 342);
    assert_eq!(c.area_codes, 141);
    assert_eq!(c.pairs, 365);
    assert_eq!(c.places, 2501);
    assert_eq!(c.shared_area_codes, 97);
    assert_eq!(c.fourteen_general_numbers, 131);
    assert_eq!(p.area_codes().iter().filter(|a| a.code.len() == 3).count(), 30);
    for a in p.area_codes() {
        assert_eq!(a.fourteen.len(), if a.code.len() == 3 { 5 } else { 6 }, "{}", a.code);
        assert!(!a.municipalities.is_empty());
        assert_eq!(p.area_code(&a.code).map(|x| x.id), Some(a.id));
    }
    for m in p.municipalities() {
        assert_eq!(p.by_cbs(&m.cbs), Some(m.id));
        assert!(!m.area_codes.is_empty(), "{} has no area code", m.name);
    }
}

#[test]
fn names_and_codes_of_known_municipalities() {
    let p = Plan::builtin();
    let bosch = p.municipality(p.by_name("Den Bosch").unwrap());
    assert_eq!(bosch.name, "'s-Hertogenbosch");
    let haag = p.municipality(p.by_name("den haag").unwrap());
    assert_eq!(haag.name, "'s-Gravenhage");
    let sw = p.municipality(p.by_name("Sudwest-Fryslan").unwrap());
    assert_eq!(sw.name, "Súdwest-Fryslân");

    let goes_code = p.area_code("0113").unwrap();
    assert_eq!(goes_code.fourteen, "140113");
    let names: Vec<&str> = goes_code.municipalities.iter().map(|m| p.municipality(*m).name.as_str()).collect();
    assert_eq!(names, ["Borsele", "Goes", "Kapelle", "Noord-Beveland", "Reimerswaal"]);

    let hm = p.by_name("Haarlemmermeer").unwrap();
    let codes: Vec<&str> = p.area_codes_of(hm).map(|a| a.code.as_str()).collect();
    assert_eq!(codes, ["020", "023", "0252", "0297"]);
    assert_eq!(p.municipality(hm).general_number.kind, GeneralNumberKind::NonGeographic);

    let goes = p.municipality(p.by_name("Goes").unwrap());
    assert_eq!(goes.general_number.kind, GeneralNumberKind::Fourteen);
    assert_eq!(goes.general_number.fourteen.as_deref(), Some("140113"));
    let aalsmeer = p.municipality(p.by_name("Aalsmeer").unwrap());
    assert_eq!(aalsmeer.general_number.e164.as_deref(), Some("+31297387575"));
    assert_eq!(aalsmeer.general_number.area_code.as_deref(), Some("0297"));
    // Written "(014) 013" in the register.
    let tilburg = p.municipality(p.by_name("Tilburg").unwrap());
    assert_eq!(tilburg.general_number.fourteen.as_deref(), Some("14013"));

    assert_eq!(p.area_code("035").unwrap().municipalities.len(), 9);
    assert!(p.area_code("0999").is_none());
    assert!(p.area_code("06").is_none());
}

#[test]
fn former_municipalities_map_to_successors_where_the_places_say_so() {
    let p = Plan::builtin();
    let succ = |name: &str| {
        let f = p.former_municipalities().iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name} not former"));
        f.successor.map(|s| p.municipality(s).name.clone())
    };
    assert_eq!(succ("Weesp").as_deref(), Some("Amsterdam"));
    assert_eq!(succ("Haren").as_deref(), Some("Groningen"));
    assert_eq!(succ("Heerhugowaard").as_deref(), Some("Dijk en Waard"));
    assert_eq!(succ("Beemster").as_deref(), Some("Purmerend"));
    assert_eq!(succ("Bussum").as_deref(), Some("Gooise Meren"));
    // Zeevang went to Edam-Volendam; nothing in the data says so, and it must not be guessed.
    assert_ne!(succ("Zeevang").as_deref(), Some("Gooise Meren"));
    let weesp = p.former_municipalities().iter().find(|f| f.name == "Weesp").unwrap();
    assert_eq!(weesp.evidence, SuccessorEvidence::PlaceName);
    assert_eq!(weesp.ended.to_string(), "2022-03-24");
    // Weesp is a place of Amsterdam.
    let ams = p.by_name("Amsterdam").unwrap();
    assert!(p.places_of(ams).any(|pl| pl.base_name == "Weesp"));
}

#[test]
fn loading_the_directory_gives_the_same_plan() {
    let p = Plan::load_dir(data_dir()).unwrap();
    assert_eq!(p.counts(), Plan::builtin().counts());
}

fn with_replaced(f: impl FnOnce(&mut Vec<String>), which: &str) -> Result<Plan, PlanError> {
    let b = PlanSources::builtin();
    let text = match which {
        "gemeenten" => b.municipalities,
        "contact" => b.contact,
        "netnummers" => b.pairs,
        "gebieden" => b.area_codes,
        "woonplaatsen" => b.places,
        _ => b.mergers,
    };
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    f(&mut lines);
    let owned = lines.join("\n") + "\n";
    let mut s = b;
    match which {
        "gemeenten" => s.municipalities = &owned,
        "contact" => s.contact = &owned,
        "netnummers" => s.pairs = &owned,
        "gebieden" => s.area_codes = &owned,
        "woonplaatsen" => s.places = &owned,
        _ => s.mergers = &owned,
    }
    Plan::from_sources(&s)
}

#[test]
fn bad_files_are_refused_with_file_line_and_reason() {
    // Unknown CBS code on line 11 of netnummers.csv.
    let e = with_replaced(|l| l[10] = l[10].replace("GM", "GX"), "netnummers").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("netnummers.csv:11"), "{msg}");
    assert!(msg.contains("unknown municipality"), "{msg}");

    // Wrong 14-number length.
    let e = with_replaced(|l| l[3] = l[3].replacen("140113", "14113", 1), "gebieden").unwrap_err();
    assert!(e.to_string().contains("netnummergebieden.csv:4: column fourteen_number"), "{e}");

    // Population not a number.
    let e = with_replaced(
        |l| {
            let mut f: Vec<String> = l[5].split(',').map(str::to_string).collect();
            f[3] = "many".into();
            l[5] = f.join(",");
        },
        "gemeenten",
    )
    .unwrap_err();
    assert!(e.to_string().contains("gemeenten.csv:"), "{e}");
    assert!(e.issues().iter().any(|i| i.column.as_deref() == Some("population")), "{e}");

    // Duplicate area code.
    let e = with_replaced(|l| { let d = l[5].clone(); l.push(d) }, "gebieden").unwrap_err();
    assert!(e.to_string().contains("duplicate area code"), "{e}");

    // An area code that is not geographic.
    let e = with_replaced(|l| l[1] = l[1].replace("010,14010", "060,14060"), "gebieden").unwrap_err();
    assert!(e.to_string().contains("'060' is not a geographic area code"), "{e}");

    // A municipality name that contradicts the CBS code.
    let e = with_replaced(|l| l[1] = l[1].replace("Albrandswaard", "Rotterdam"), "netnummers").unwrap_err();
    assert!(e.to_string().contains("netnummers.csv:2: column municipality_name"), "{e}");

    // Missing column.
    let e = with_replaced(|l| l[0] = l[0].replace("municipality_cbs_code", "gemeente"), "woonplaatsen").unwrap_err();
    assert!(e.to_string().contains("woonplaatsen.csv:1: column municipality_cbs_code"), "{e}");

    // Wrong field count.
    let e = with_replaced(|l| l[3].push_str(",extra"), "herindelingen").unwrap_err();
    assert!(e.to_string().contains("herindelingen.csv:4"), "{e}");

    // A municipality without contact row.
    let e = with_replaced(|l| { l.remove(1); }, "contact").unwrap_err();
    assert!(e.to_string().contains("no row for GM1680"), "{e}");
}

#[test]
fn a_corrected_plan_loads_from_a_directory() {
    // Close a known gap (QUALITY.md): Amstelveen also on 0297.
    let dir = std::env::temp_dir().join(format!("veertien-plan-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["gemeenten.csv", "gemeenten_contact.csv", "netnummergebieden.csv", "woonplaatsen.csv", "herindelingen.csv"] {
        std::fs::copy(data_dir().join(f), dir.join(f)).unwrap();
    }
    let mut pairs = std::fs::read_to_string(data_dir().join("netnummers.csv")).unwrap();
    pairs.push_str("0297,140297,Aalsmeer,GM0362,Amstelveen,Noord-Holland,council_letter,Nes aan de Amstel\n");
    std::fs::write(dir.join("netnummers.csv"), pairs).unwrap();
    let p = Plan::load_dir(&dir).unwrap();
    let amstelveen = p.by_name("Amstelveen").unwrap();
    let codes: Vec<&str> = p.area_codes_of(amstelveen).map(|a| a.code.as_str()).collect();
    assert_eq!(codes, ["020", "0297"]);
    // The summary file was not updated: a warning, not a refusal.
    assert!(p.warnings().iter().any(|w| w.message.contains("0297")));

    // A broken copy is refused as a whole.
    std::fs::write(dir.join("netnummers.csv"), "area_code,municipality_cbs_code\n0297,GM9999\n").unwrap();
    let e = Plan::load_dir(&dir).unwrap_err();
    assert!(e.to_string().contains("netnummers.csv:2"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
