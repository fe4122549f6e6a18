//! Resolution over the real national plan: every municipality, every place, every area code.

use veertien_core::{MunicipalityId, Plan, Settings};
use veertien_names::{MatchKind, NameIndex, Outcome, resolve, vocabulary};

fn ctx() -> (&'static Plan, Settings) {
    let plan = Plan::builtin();
    (plan, Settings::defaults(plan))
}

#[test]
fn every_municipality_resolves_by_its_names_from_every_area_code_it_is_on() {
    let (plan, settings) = ctx();
    let mut checked = 0;
    for m in plan.municipalities() {
        let mut names = vec![m.name.clone(), m.everyday_name.clone(), format!("gemeente {}", m.name)];
        if let Some(i) = m.name.find(" (") {
            names.push(m.name[..i].to_string());
        }
        for a in plan.area_codes_of(m.id) {
            for said in &names {
                let r = resolve(said, &a.municipalities, plan, &settings);
                assert_eq!(r.outcome, Outcome::Municipality { id: m.id }, "{said:?} on {}: {r:#?}", a.code);
                assert_eq!(r.municipality.as_deref(), Some(m.name.as_str()));
                assert!(r.confidence >= 0.9, "{said:?} on {}: confidence {}", a.code, r.confidence);
                checked += 1;
            }
        }
    }
    assert!(checked >= 365 * 3, "{checked}");
}

#[test]
fn every_municipality_said_on_an_area_code_it_is_not_on_gets_its_own_number() {
    let (plan, settings) = ctx();
    for a in plan.area_codes() {
        for m in plan.municipalities() {
            if a.municipalities.contains(&m.id) {
                continue;
            }
            let r = resolve(&m.name, &a.municipalities, plan, &settings);
            match &r.outcome {
                Outcome::OtherAreaCode { id, fourteen_number } => {
                    assert_eq!(*id, m.id, "{} on {}", m.name, a.code);
                    assert!(
                        plan.area_codes_of(m.id).any(|c| &c.fourteen == fourteen_number)
                            || m.general_number.fourteen.as_ref() == Some(fourteen_number),
                        "{} on {}: {fourteen_number} is not one of its numbers",
                        m.name,
                        a.code
                    );
                }
                // Only allowed where a candidate has a village of exactly that name.
                Outcome::Municipality { id } => {
                    assert!(
                        plan.places_of(*id).any(|p| veertien_names::tokens(&p.base_name) == veertien_names::tokens(&m.name)),
                        "{} on {} resolved to {}: {r:#?}",
                        m.name,
                        a.code,
                        plan.municipality(*id).name
                    );
                }
                other => panic!("{} on {}: {other:?}", m.name, a.code),
            }
        }
    }
}

#[test]
fn every_place_resolves_to_its_municipality_from_its_area_codes() {
    let (plan, settings) = ctx();
    let mut ambiguous = 0;
    let mut count = 0;
    for p in plan.places() {
        for a in plan.area_codes_of(p.municipality) {
            count += 1;
            let r = resolve(&p.name, &a.municipalities, plan, &settings);
            match &r.outcome {
                Outcome::Municipality { id } if *id == p.municipality => {}
                Outcome::Ambiguous { options } => {
                    // Only real homonyms: every option has a place or name like this one.
                    assert!(options.contains(&p.municipality), "{} on {}: {r:#?}", p.name, a.code);
                    ambiguous += 1;
                }
                Outcome::Municipality { id } => {
                    // The place shares its name with a candidate municipality itself (the
                    // municipality wins over a same-named village, as residents expect).
                    let winner = plan.municipality(*id);
                    let key = veertien_names::tokens(&p.base_name);
                    assert!(
                        veertien_names::tokens(&winner.name) == key
                            || veertien_names::tokens(&winner.everyday_name) == key
                            || plan.places_of(*id).any(|q| veertien_names::tokens(&q.base_name) == key),
                        "{} on {} went to {}: {r:#?}",
                        p.name,
                        a.code,
                        winner.name
                    );
                }
                other => panic!("{} ({}) on {}: {other:?}", p.name, plan.municipality(p.municipality).name, a.code),
            }
        }
    }
    assert!(count >= 2501, "{count}");
    // Border places listed under two municipalities of one area code, and true homonyms.
    assert!(ambiguous < 60, "{ambiguous} ambiguous");
}

#[test]
fn vocabulary_covers_names_aliases_places_and_former_municipalities() {
    let plan = Plan::builtin();
    let id = |n: &str| plan.by_name(n).unwrap();
    let v = vocabulary(&[id("Amsterdam"), id("'s-Hertogenbosch"), id("Súdwest-Fryslân")], plan);
    let has = |text: &str, kind: MatchKind| v.iter().any(|p| p.text == text && p.kind == kind);
    assert!(has("Amsterdam", MatchKind::OfficialName));
    assert!(has("Weesp", MatchKind::FormerMunicipality));
    assert!(has("Den Bosch", MatchKind::EverydayName));
    assert!(has("Hertogenbosch", MatchKind::Alias));
    assert!(has("Rosmalen", MatchKind::Place));
    assert!(has("Zuidwest-Friesland", MatchKind::Alias));
    assert!(v.iter().all(|p| p.in_candidates));
    assert!(!v.iter().any(|p| p.text == "Goes"));
    // Written-only forms are not offered to the recogniser.
    let b = vocabulary(&[id("Bergen (NH.)")], plan);
    assert!(b.iter().any(|p| p.text == "Bergen") && b.iter().any(|p| p.text == "Bergen Noord-Holland"), "{b:?}");
    assert!(!b.iter().any(|p| p.text.contains('(') || p.text.ends_with(" NH")), "{b:?}");

    let ix = NameIndex::new(plan);
    let all = ix.vocabulary_with_others(&[id("Deventer")]);
    assert!(all.iter().any(|p| p.text == "Epe" && !p.in_candidates));
    // Villages of other municipalities are not in the recogniser's set.
    assert!(!all.iter().any(|p| p.text == "Vaassen"));
    // Every phrase of the vocabulary resolves to the municipality it denotes or is a homonym.
    for p in ix.vocabulary(&plan.area_code("0113").unwrap().municipalities) {
        let r = resolve(&p.text, &plan.area_code("0113").unwrap().municipalities, plan, &Settings::defaults(plan));
        assert!(r.matches.iter().any(|m| m.municipality == p.municipality), "{p:?}: {r:?}");
    }
}

#[test]
fn candidates_from_another_plan_are_ignored_not_a_panic() {
    let (plan, settings) = ctx();
    let r = resolve("Goes", &[MunicipalityId(60000)], plan, &settings);
    assert!(matches!(r.outcome, Outcome::OtherAreaCode { .. }), "{r:?}");
}

#[test]
fn an_operator_loaded_plan_is_indexed_and_a_changed_plan_is_reindexed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/numberplan");
    let plan = Plan::load_dir(&dir).expect("the shipped files load");
    let settings = Settings::defaults(&plan);
    let area = plan.area_code("0113").unwrap();
    let r = resolve("Kapelle", &area.municipalities, &plan, &settings);
    assert_eq!(r.outcome, Outcome::Municipality { id: plan.by_name("Kapelle").unwrap() });
    let a = veertien_names::index_for(&plan);
    assert!(std::sync::Arc::ptr_eq(&a, &veertien_names::index_for(&plan)), "cached while unchanged");

    // The same files with one village renamed: the cache must not serve the old index.
    let tmp = std::env::temp_dir().join(format!("veertien-names-plan-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap();
        if f.path().extension().is_some_and(|e| e == "csv") {
            let text = std::fs::read_to_string(f.path()).unwrap();
            let text = if f.file_name() == "woonplaatsen.csv" { text.replace("Yerseke,Yerseke,", "Yerseke-Dorp,Yerseke-Dorp,") } else { text };
            std::fs::write(tmp.join(f.file_name()), text).unwrap();
        }
    }
    let changed = Plan::load_dir(&tmp).expect("the edited files load");
    let _ = std::fs::remove_dir_all(&tmp);
    let s2 = Settings::defaults(&changed);
    let codes = &changed.area_code("0113").unwrap().municipalities;
    let r = resolve("Yerseke Dorp", codes, &changed, &s2);
    assert_eq!(r.outcome, Outcome::Municipality { id: changed.by_name("Reimerswaal").unwrap() }, "{r:#?}");
    assert!(!std::sync::Arc::ptr_eq(&a, &veertien_names::index_for(&changed)));
}
