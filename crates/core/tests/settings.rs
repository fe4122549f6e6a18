//! Settings defaults, TOML round trip and precise errors.

use veertien_core::*;

fn plan() -> &'static Plan {
    Plan::builtin()
}

#[test]
fn defaults_route_everyone_and_round_trip_through_toml() {
    let d = Settings::defaults(plan());
    for m in plan().municipalities() {
        let s = d.get(m.id);
        assert_eq!(s.status, ConnectionStatus::Active);
        match m.general_number.kind {
            GeneralNumberKind::Fourteen => assert_eq!(s.destination, Destination::Trunk),
            // A premium general number (Haarlemmermeer's 0900 1852) is never a default destination.
            _ if veertien_core::check_e164(m.general_number.e164.as_deref().unwrap()).is_err() => {
                assert_eq!(s.destination, Destination::Trunk, "{}", m.name)
            }
            _ => assert_eq!(s.destination, Destination::Tel(m.general_number.e164.clone().unwrap())),
        }
    }
    let text = d.to_toml_string();
    let back = Settings::from_toml_str(&text, plan()).unwrap();
    assert_eq!(back, d);
    assert_eq!(back.to_toml_string(), text);
    // A settings file cannot send calls to a premium number either.
    let e = Settings::from_toml_str("[municipality.GM0394]\ndestination = \"0900 1852\"\n", plan()).unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("0900") || e.message.contains("+319001852"), "{e}");
    assert!(Settings::from_toml_str("[municipality.GM0394]\noverflow = { destination = \"+44 20 1234 5678\" }\n", plan()).is_err());
    // Frisian offered in Fryslân.
    let sw = plan().by_name("Súdwest-Fryslân").unwrap();
    assert!(d.get(sw).languages.contains(&Lang::Fy));
}

#[test]
fn configured_settings_round_trip() {
    let toml = r#"
[platform]
trunk = "sip:{cbs}@kcc.example.nl"

[municipality.GM0664]
name = "Goes"
status = "technical"
destination = "sip:kcc@goes.example"
menu_digits = { "0113" = 7 }
overflow = { destination = "+31113 123456" }
calamity = { active = false, message = "Bel 112 bij nood" }
languages = ["nl"]
[municipality.GM0664.opening_hours]
monday = ["08:00-12:00", "13:00-17:00"]
saturday = "closed"
closed_on = ["nieuwjaarsdag", "goede_vrijdag"]
[municipality.GM0664.opening_hours.exceptions]
"2026-12-31" = "closed"
"#;
    let s = Settings::from_toml_str(toml, plan()).unwrap();
    let goes = plan().by_cbs("GM0664").unwrap();
    let g = s.get(goes);
    assert_eq!(g.status, ConnectionStatus::Technical);
    assert_eq!(g.mode, DeliveryMode::Bridge);
    assert_eq!(g.overflow.as_ref().unwrap().no_answer_secs, 30);
    assert_eq!(g.opening_hours.closed_on, [Holiday::Nieuwjaarsdag, Holiday::GoedeVrijdag]);
    // Alkmaar publishes 14 072: its calls go to the configured trunk.
    assert_eq!(s.destination_uri(plan().by_cbs("GM0361").unwrap()), "sip:GM0361@kcc.example.nl");
    assert!(!s.trunk_is_placeholder());
    let back = Settings::from_toml_str(&s.to_toml_string(), plan()).unwrap();
    assert_eq!(back, s);
}

fn err(toml: &str) -> SettingsError {
    Settings::from_toml_str(toml, plan()).unwrap_err()
}

#[test]
fn errors_name_line_and_field() {
    let e = err("[municipality.GM0664]\nname = \"Goes\"\ndestination = \"14 0113\"\n");
    assert_eq!(e.line, Some(3));
    assert_eq!(e.field, "municipality.GM0664.destination");
    assert!(e.message.contains("loop"), "{e}");
    assert!(e.to_string().starts_with("settings line 3: municipality.GM0664.destination:"), "{e}");

    let e = err("\n[municipality.GM9999]\nstatus = \"active\"\n");
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("unknown municipality 'GM9999'"), "{e}");

    let e = err("[municipality.GM0664]\nstatus = \"online\"\n");
    assert_eq!((e.line, e.field.as_str()), (Some(2), "municipality.GM0664.status"));

    let e = err("[municipality.GM0664]\nname = \"Kapelle\"\n");
    assert!(e.message.contains("GM0664 is Goes"), "{e}");

    let e = err("[municipality.GM0664]\nmenu_digits = { \"020\" = 1 }\n");
    assert!(e.message.contains("not on area code 020"), "{e}");

    let e = err("[municipality.GM0664]\nmenu_digit = 12\n");
    assert!(e.message.contains("not a keypad digit"), "{e}");

    let e = err("[municipality.GM0664]\nmenu_digit = 3\n[municipality.GM0678]\nmenu_digit = 3\n");
    assert_eq!(e.line, Some(4));
    assert!(e.message.contains("already taken by Goes"), "{e}");

    let e = err("[municipality.GM0664]\ncolour = \"blue\"\n");
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("colour"), "{e}");

    let e = err("[municipality.GM0664.opening_hours]\nmonday = \"17:00-08:00\"\n");
    assert_eq!((e.line, e.field.as_str()), (Some(2), "municipality.GM0664.opening_hours.monday"));

    let e = err("[municipality.GM0664.opening_hours]\nclosed_on = [\"carnaval\"]\n");
    assert!(e.message.contains("'carnaval' is not a holiday"), "{e}");

    let e = err("[platform]\ntrunk = \"kcc.example\"\n");
    assert_eq!((e.line, e.field.as_str()), (Some(2), "platform.trunk"));

    let e = err("[municipality.GM0664\n");
    assert_eq!(e.line, Some(1));
}

#[test]
fn destinations_parse() {
    assert_eq!(Destination::parse("trunk"), Ok(Destination::Trunk));
    assert_eq!(Destination::parse("(0297) 38 75 75"), Ok(Destination::Tel("+31297387575".into())));
    assert_eq!(Destination::parse("tel:+31-297-387575"), Ok(Destination::Tel("+31297387575".into())));
    assert_eq!(Destination::parse("sip:kcc@aalsmeer.example"), Ok(Destination::Sip("sip:kcc@aalsmeer.example".into())));
    assert!(Destination::parse("+3114020").unwrap_err().contains("loop"));
    assert!(Destination::parse("sip:14020@sbc.example;user=phone").unwrap_err().contains("loop"));
    assert!(Destination::parse("sip:").is_err());
    assert!(Destination::parse("hello").is_err());
}

#[test]
fn try_with_refuses_a_taken_digit() {
    let d = Settings::defaults(plan());
    let goes = plan().by_cbs("GM0664").unwrap();
    let kapelle = plan().by_cbs("GM0678").unwrap();
    let mut g = d.get(goes).clone();
    g.menu_digits.insert("0113".into(), 7);
    let s = d.try_with(goes, g).unwrap();
    let mut k = s.get(kapelle).clone();
    k.menu_digit = Some(7);
    let e = s.try_with(kapelle, k.clone()).unwrap_err();
    assert_eq!(e.field, "municipality.GM0678.menu_digits.0113");
    assert!(e.message.contains("already taken by Goes"), "{e}");
    // `with` keeps routing total: Kapelle falls back to an automatic digit and a warning says why.
    let s2 = s.with(kapelle, k);
    assert_eq!(s2.warnings().len(), 1);
    let code = plan().area_code_id("0113").unwrap();
    assert_eq!(s2.digit_choice(code, 7), Some(goes));
    assert!(s2.menu(code).iter().any(|e| e.municipality == kapelle && e.digit.is_some()));
    // Settings serialise to JSON for the portal.
    let v = serde_json::to_value(s2.get(goes)).unwrap();
    assert_eq!(v["menu_digits"]["0113"], 7);
    assert_eq!(v["status"], "active");
}
