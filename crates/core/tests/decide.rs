//! Routing decisions over the whole shipped plan and the named cases of issue 2.

use std::collections::BTreeSet;

use jiff::Timestamp;
use veertien_core::*;

fn plan() -> &'static Plan {
    Plan::builtin()
}

fn now() -> Timestamp {
    // A Wednesday, 10:00 in Amsterdam.
    "2026-03-11T09:00:00Z".parse().unwrap()
}

fn id(name: &str) -> MunicipalityId {
    plan().by_name(name).unwrap_or_else(|| panic!("no municipality {name}"))
}

fn route(number: &str, caller: Option<&str>, settings: &Settings) -> Decision {
    decide(&CallInfo { dialled: number, caller }, plan(), settings, now())
}

fn candidate_names(d: &Decision) -> Vec<(String, Option<u8>)> {
    match d {
        Decision::Ask { candidates, .. } => candidates.iter().map(|c| (c.municipality.name.clone(), c.digit)).collect(),
        other => panic!("expected ask, got {other:?}"),
    }
}

/// Whether the decision is about `m` or offers it.
fn contains(d: &Decision, m: MunicipalityId) -> bool {
    match d {
        Decision::Forward { municipality, .. } | Decision::Announce { municipality, .. } => municipality.id == m,
        Decision::Ask { candidates, .. } => candidates.iter().any(|c| c.municipality.id == m),
        Decision::Reject { .. } => false,
    }
}

#[test]
fn every_area_code_routes_and_menus_are_complete() {
    let s = Settings::defaults(plan());
    for a in plan().area_codes() {
        let d = route(&a.fourteen, None, &s);
        match &d {
            Decision::Forward { municipality, destination, area_code, .. } => {
                assert_eq!(a.municipalities, vec![municipality.id], "{}", a.code);
                assert_eq!(area_code, &a.code);
                assert!(normalise(destination).is_err(), "{}: destination {destination} is a 14+ number", a.code);
            }
            Decision::Ask { candidates, area_code, .. } => {
                assert!(a.is_shared());
                assert_eq!(area_code, &a.code);
                let got: BTreeSet<MunicipalityId> = candidates.iter().map(|c| c.municipality.id).collect();
                let want: BTreeSet<MunicipalityId> = a.municipalities.iter().copied().collect();
                assert_eq!(got, want, "{}", a.code);
                // Digits 1..n, unique, in order.
                let digits: Vec<u8> = candidates.iter().map(|c| c.digit.unwrap()).collect();
                let expected: Vec<u8> = (1..=candidates.len() as u8).map(|d| d % 10).collect();
                assert_eq!(digits, expected, "{}", a.code);
                for c in candidates {
                    assert_eq!(s.digit_choice(a.id, c.digit.unwrap()), Some(c.municipality.id));
                }
            }
            other => panic!("{}: {other:?}", a.code),
        }
        // Deterministic.
        assert_eq!(d, route(&a.fourteen, None, &s));
    }
}

#[test]
fn every_municipality_is_reachable_on_each_of_its_codes() {
    let s = Settings::defaults(plan());
    for m in plan().municipalities() {
        for a in plan().area_codes_of(m.id) {
            let d = route(&format!("+31{}", &a.fourteen), None, &s);
            assert!(contains(&d, m.id), "{} not in decision for {}", m.name, a.fourteen);
            match decide_for(m.id, a.id, plan(), &s, now()) {
                Decision::Forward { municipality, destination, .. } => {
                    assert_eq!(municipality.cbs, m.cbs);
                    assert!(normalise(&destination).is_err(), "{} would loop via {destination}", m.name);
                    assert!(!destination.is_empty());
                }
                other => panic!("{}: {other:?}", m.name),
            }
        }
    }
}

/// The municipalities whose published general number is a 14+ number, read from the data file at
/// test time (not hard-coded), all route to a decision containing them — and never back to 14+.
#[test]
fn municipalities_publishing_a_14_number_are_routed() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/numberplan/gemeenten_contact.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let h = rdr.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|x| x == n).unwrap();
    let (c_cbs, c_kind, c_14) = (col("cbs_code"), col("phone_kind"), col("fourteen_number"));
    let s = Settings::defaults(plan());
    let mut n = 0;
    for r in rdr.records() {
        let r = r.unwrap();
        if &r[c_kind] != "14+netnummer" {
            continue;
        }
        n += 1;
        let m = plan().by_cbs(&r[c_cbs]).unwrap();
        let d = route(&r[c_14], None, &s);
        assert!(contains(&d, m), "{} ({}) not in {d:?}", &r[c_cbs], &r[c_14]);
        let aid = plan().area_code_id(&r[c_14][2..]).unwrap();
        let Decision::Forward { destination, destination_configured, .. } = decide_for(m, aid, plan(), &s, now()) else {
            panic!("{} not forwarded", &r[c_cbs]);
        };
        // Their general number cannot be the destination: they go to the trunk until configured.
        assert_eq!(destination, format!("sip:{}@kcc.invalid", &r[c_cbs]));
        assert!(!destination_configured);
        assert!(s.unconfigured().any(|u| u == m));
    }
    assert_eq!(n, 131);
    // Plus the municipalities whose published number the toll-fraud guard refuses (premium 0900):
    // they wait for configuration too.
    let refused: Vec<_> = plan()
        .municipalities()
        .iter()
        .filter(|m| m.general_number.e164.as_deref().is_some_and(|e| veertien_core::check_e164(e).is_err()))
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(refused, ["Haarlemmermeer"]);
    assert_eq!(s.unconfigured().count(), 131 + refused.len());
}

#[test]
fn goes_0113_asks_among_five_in_alphabetical_order() {
    let s = Settings::defaults(plan());
    for form in ["140113", "14 0113", "+31140113", "0031 14 0113", "tel:+31-14-0113", "sip:140113@sbc.example;user=phone"] {
        let d = route(form, None, &s);
        assert_eq!(
            candidate_names(&d),
            [
                ("Borsele".to_string(), Some(1)),
                ("Goes".to_string(), Some(2)),
                ("Kapelle".to_string(), Some(3)),
                ("Noord-Beveland".to_string(), Some(4)),
                ("Reimerswaal".to_string(), Some(5))
            ],
            "{form}"
        );
    }
    // Caller from a Goes-area landline: said, but still asked.
    let d = route("140113", Some("0113-212345"), &s);
    let Decision::Ask { caller_area_match: Some(m), .. } = &d else { panic!("{d:?}") };
    assert_eq!(m.caller, "+31113212345");
    assert_eq!(m.area_code, "0113");
    let d = route("140113", Some("sip:+31113212345@carrier.example;user=phone"), &s);
    assert!(matches!(d, Decision::Ask { caller_area_match: Some(_), .. }));
    // Other area, mobile, anonymous, garbage: no match.
    for caller in ["0201234567", "0612345678", "anonymous", ""] {
        let d = route("140113", Some(caller), &s);
        assert!(matches!(d, Decision::Ask { caller_area_match: None, .. }), "{caller}");
    }
}

#[test]
fn epe_and_deventer_are_different_codes() {
    let s = Settings::defaults(plan());
    let epe = route("140578", None, &s);
    let deventer = route("140570", None, &s);
    assert!(contains(&epe, id("Epe")) && !contains(&epe, id("Deventer")));
    assert!(contains(&deventer, id("Deventer")) && !contains(&deventer, id("Epe")));
    assert!(contains(&deventer, id("Voorst")));
    // Ede is not Epe.
    assert!(!contains(&epe, id("Ede")));
}

#[test]
fn haarlemmermeer_on_four_codes_and_not_connected() {
    let hm = id("Haarlemmermeer");
    let defaults = Settings::defaults(plan());
    let mut ms = defaults.get(hm).clone();
    ms.status = ConnectionStatus::NotConnected;
    let s = defaults.with(hm, ms.clone());
    for code in ["14020", "14023", "140252", "140297"] {
        let d = route(code, None, &s);
        let Decision::Ask { candidates, .. } = &d else { panic!("{code}: {d:?}") };
        let c = candidates.iter().find(|c| c.municipality.id == hm).expect("still offered, flagged");
        assert_eq!(c.status, ConnectionStatus::NotConnected);
        assert!(c.digit.is_some());
        let aid = plan().area_code_id(&code[2..]).unwrap();
        let d = decide_for(hm, aid, plan(), &s, now());
        let Decision::Announce { reason, general_number, forward_to, .. } = &d else { panic!("{d:?}") };
        assert_eq!(*reason, AnnounceReason::NotConnected);
        assert_eq!(general_number.raw, "(0900) 18 52");
        assert_eq!(general_number.dial, "+319001852");
        assert_eq!(forward_to, &None);
    }
    ms.forward_when_not_connected = true;
    let s = defaults.with(hm, ms);
    let d = decide_for(hm, plan().area_code_id("023").unwrap(), plan(), &s, now());
    // Its general number 0900 1852 is premium rate: the toll-fraud guard never forwards there.
    assert!(matches!(&d, Decision::Announce { forward_to: None, .. }), "{d:?}");
    // Connected by default, but the premium general number is never a default destination: the
    // trunk placeholder (to be configured, listed by `veertien plan check`).
    assert_eq!(defaults.get(hm).destination, veertien_core::Destination::Trunk);
    assert!(defaults.unconfigured().any(|m| m == hm));
    let d = decide_for(hm, plan().area_code_id("020").unwrap(), plan(), &defaults, now());
    assert!(matches!(&d, Decision::Forward { destination, mode: DeliveryMode::Bridge, .. } if destination == "sip:GM0394@kcc.invalid"), "{d:?}");
}

#[test]
fn not_connected_with_a_14_general_number_never_forwards_to_14() {
    let goes = id("Goes");
    let d0 = Settings::defaults(plan());
    let mut ms = d0.get(goes).clone();
    ms.status = ConnectionStatus::NotConnected;
    ms.forward_when_not_connected = true;
    let s = d0.with(goes, ms);
    let d = decide_for(goes, plan().area_code_id("0113").unwrap(), plan(), &s, now());
    let Decision::Announce { general_number, forward_to, .. } = &d else { panic!("{d:?}") };
    assert!(general_number.is_fourteen);
    assert_eq!(general_number.dial, "140113");
    assert_eq!(*forward_to, None);
}

#[test]
fn den_bosch_and_weesp() {
    let s = Settings::defaults(plan());
    let d = route("14073", None, &s);
    let Decision::Ask { candidates, .. } = &d else { panic!() };
    let bosch = candidates.iter().find(|c| c.municipality.cbs == "GM0796").unwrap();
    assert_eq!(bosch.municipality.name, "'s-Hertogenbosch");
    assert_eq!(bosch.municipality.everyday_name, "Den Bosch");
    // 's-Hertogenbosch sorts under s, after Heusden.
    let names: Vec<&str> = candidates.iter().map(|c| c.municipality.name.as_str()).collect();
    assert_eq!(names, ["Heusden", "'s-Hertogenbosch", "Sint-Michielsgestel", "Vught"]);
    // Weesp (netnummergebied 0294) is Amsterdam since 2022.
    let d = route("140294", None, &s);
    assert!(matches!(&d, Decision::Forward { municipality, .. } if municipality.name == "Amsterdam"), "{d:?}");
}

#[test]
fn bad_numbers_are_rejected_with_precise_reasons() {
    let s = Settings::defaults(plan());
    let reject = |n: &str| match route(n, None, &s) {
        Decision::Reject { reason } => reason,
        d => panic!("{n}: {d:?}"),
    };
    assert!(matches!(reject("14099"), RejectReason::UnknownAreaCode { area_code, .. } if area_code == "099"));
    assert!(matches!(reject("140201"), RejectReason::UnknownAreaCode { did_you_mean: Some(d), .. } if d == "14020"));
    assert_eq!(reject("140201").to_string(), "14 0201 does not exist: 0201 is not a geographic area code of the number plan (did you mean 14020?)");
    assert!(matches!(reject("0201234567"), RejectReason::Malformed(NormaliseError::NotFourteen { .. })));
    assert!(matches!(reject("14 0x13"), RejectReason::Malformed(NormaliseError::InvalidCharacter { ch: 'x', .. })));
    assert!(matches!(reject("+3214020"), RejectReason::Malformed(NormaliseError::Foreign { .. })));
    assert!(matches!(reject(""), RejectReason::Malformed(NormaliseError::Empty)));
    let json = serde_json::to_value(route("14099", None, &s)).unwrap();
    assert_eq!(json["kind"], "reject");
    assert_eq!(json["reason"]["code"], "unknown_area_code");
}

#[test]
fn technical_municipalities_are_not_in_the_menu() {
    let goes = id("Goes");
    let d0 = Settings::defaults(plan());
    let mut ms = d0.get(goes).clone();
    ms.status = ConnectionStatus::Technical;
    let s = d0.with(goes, ms);
    let d = route("140113", None, &s);
    assert_eq!(
        candidate_names(&d),
        [
            ("Borsele".to_string(), Some(1)),
            ("Kapelle".to_string(), Some(2)),
            ("Noord-Beveland".to_string(), Some(3)),
            ("Reimerswaal".to_string(), Some(4)),
            ("Goes".to_string(), None)
        ]
    );
    let Decision::Ask { candidates, .. } = &d else { panic!() };
    assert!(!candidates[4].advertised);
    // Epe technical on 0578: only Heerde is advertised, so no question.
    let epe = id("Epe");
    let mut ms = d0.get(epe).clone();
    ms.status = ConnectionStatus::Technical;
    let s = d0.with(epe, ms);
    assert!(matches!(route("140578", None, &s), Decision::Forward { municipality, .. } if municipality.name == "Heerde"));
}

#[test]
fn explicit_menu_digits_per_code() {
    let hm = id("Haarlemmermeer");
    let d0 = Settings::defaults(plan());
    let mut ms = d0.get(hm).clone();
    ms.menu_digit = Some(9);
    ms.menu_digits.insert("023".into(), 1);
    let s = d0.with(hm, ms);
    let a020 = plan().area_code_id("020").unwrap();
    let a023 = plan().area_code_id("023").unwrap();
    assert_eq!(s.digit_choice(a020, 9), Some(hm));
    assert_eq!(s.digit_choice(a023, 1), Some(hm));
    // Others fill the free digits in alphabetical order.
    assert_eq!(s.digit_choice(a023, 2), Some(id("Bloemendaal")));
    assert_eq!(s.digit_choice(a020, 1), Some(id("Amstelveen")));
    assert!(s.warnings().is_empty());
}

#[test]
fn opening_hours_holidays_and_calamity() {
    let kapelle = id("Kapelle");
    let toml = r#"
[municipality.GM0678]
name = "Kapelle"
destination = "+31113 333 000"
overflow = { destination = "sip:overflow@kcc.example", no_answer_secs = 20 }
[municipality.GM0678.opening_hours]
monday = "08:30-17:00"
tuesday = "08:30-17:00"
wednesday = ["08:30-12:00", "13:00-17:00"]
thursday = "08:30-17:00"
friday = "08:30-12:00"
[municipality.GM0678.opening_hours.exceptions]
"2026-12-24" = "08:30-12:00"
"#;
    let s = Settings::from_toml_str(toml, plan()).unwrap();
    let aid = plan().area_code_id("0113").unwrap();
    let at = |t: &str| decide_for(kapelle, aid, plan(), &s, t.parse().unwrap());
    // Wednesday 10:00 CET: open, with overflow → bridged.
    let d = at("2026-03-11T09:00:00Z");
    let Decision::Forward { destination, mode, route, .. } = &d else { panic!("{d:?}") };
    assert_eq!(destination, "tel:+31113333000");
    assert_eq!(*mode, DeliveryMode::Bridge);
    assert_eq!(route.len(), 2);
    // Wednesday 12:30: lunch.
    let d = at("2026-03-11T11:30:00Z");
    assert!(matches!(&d, Decision::Announce { reason: AnnounceReason::Closed, opens_at: Some(o), .. } if o.starts_with("2026-03-11T13:00:00+01:00")), "{d:?}");
    // Saturday: next opening Monday 08:30.
    let d = at("2026-03-14T10:00:00Z");
    assert!(matches!(&d, Decision::Announce { opens_at: Some(o), .. } if o.starts_with("2026-03-16T08:30:00+01:00")), "{d:?}");
    // Koningsdag 2026 is Monday 27 April; Tweede Paasdag 6 April 2026; Hemelvaart 14 May 2026 (CEST).
    for t in ["2026-04-27T08:00:00Z", "2026-04-06T08:00:00Z", "2026-05-14T08:00:00Z", "2026-12-25T09:00:00Z"] {
        assert!(matches!(at(t), Decision::Announce { reason: AnnounceReason::Closed, .. }), "{t}");
    }
    // Tuesday after Easter is a normal day; summer time: 08:45 CEST = 06:45Z open.
    assert!(matches!(at("2026-04-07T06:45:00Z"), Decision::Forward { .. }));
    assert!(matches!(at("2026-04-07T06:15:00Z"), Decision::Announce { .. }));
    // Christmas Eve exception: Thursday, open only in the morning.
    assert!(matches!(at("2026-12-24T10:00:00Z"), Decision::Forward { .. }));
    assert!(matches!(at("2026-12-24T12:00:00Z"), Decision::Announce { .. }));

    // A calamity line overrides hours.
    let mut ms = s.get(kapelle).clone();
    ms.calamity = Some(Calamity { active: true, destination: Some(Destination::parse("0113 999 999").unwrap()), message: "Calamiteit".into() });
    let s2 = s.with(kapelle, ms.clone());
    let d = decide_for(kapelle, aid, plan(), &s2, "2026-03-14T10:00:00Z".parse().unwrap());
    let Decision::Forward { destination, route, .. } = &d else { panic!("{d:?}") };
    assert_eq!(destination, "tel:+31113999999");
    assert_eq!(route[0], RouteStep::Announcement { message: "Calamiteit".into() });
    ms.calamity = Some(Calamity { active: true, destination: None, message: "Gemeentehuis gesloten".into() });
    let d = decide_for(kapelle, aid, plan(), &s.with(kapelle, ms), now());
    assert!(matches!(&d, Decision::Announce { reason: AnnounceReason::Calamity, message: Some(_), .. }));
}

#[test]
fn easter_and_holiday_dates() {
    for (y, m, d) in [(2024, 3, 31), (2025, 4, 20), (2026, 4, 5), (2027, 3, 28), (2038, 4, 25), (2000, 4, 23)] {
        assert_eq!(easter_sunday(y), jiff::civil::date(y, m, d));
    }
    // 2025: 27 April is a Sunday, King's Day on Saturday 26 April.
    assert_eq!(Holiday::Koningsdag.date(2025), jiff::civil::date(2025, 4, 26));
    assert_eq!(Holiday::Hemelvaartsdag.date(2025), jiff::civil::date(2025, 5, 29));
    assert_eq!(Holiday::TweedePinksterdag.date(2025), jiff::civil::date(2025, 6, 9));
    assert_eq!(Holiday::GoedeVrijdag.date(2026), jiff::civil::date(2026, 4, 3));
}

#[test]
fn decision_json_shape() {
    let s = Settings::defaults(plan());
    let v = serde_json::to_value(route("14020", Some("0201234567"), &s)).unwrap();
    assert_eq!(v["kind"], "ask");
    assert_eq!(v["candidates"][0]["municipality"], "Amstelveen");
    assert_eq!(v["candidates"][0]["digit"], 1);
    assert_eq!(v["caller_area_match"]["area_code"], "020");
    let v = serde_json::to_value(route("14038", None, &s)).unwrap();
    assert_eq!(v["kind"], "ask");
    let v = serde_json::to_value(route("140111", None, &s)).unwrap();
    assert_eq!(v["kind"], "forward");
    assert_eq!(v["municipality"], "Schouwen-Duiveland");
    assert_eq!(v["cbs"], "GM1676");
    assert_eq!(v["route"][0]["step"], "primary");
}
