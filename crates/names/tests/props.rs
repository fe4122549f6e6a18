//! Property tests: resolution is total and never invents a match from carrier words alone.

use proptest::prelude::*;
use veertien_core::{Plan, Settings};
use veertien_names::{Outcome, resolve};

fn settings() -> &'static Settings {
    static S: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();
    S.get_or_init(|| Settings::defaults(Plan::builtin()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_on_any_area_code_gives_a_consistent_resolution(text in any::<String>(), code in 0usize..141) {
        let plan = Plan::builtin();
        let area = &plan.area_codes()[code % plan.area_codes().len()];
        let r = resolve(&text, &area.municipalities, plan, settings());
        prop_assert!((0.0..=1.0).contains(&r.confidence));
        for w in r.matches.windows(2) {
            prop_assert!(w[0].score >= w[1].score);
        }
        for m in &r.matches {
            prop_assert!((0.0..=1.0).contains(&m.score));
            prop_assert_eq!(m.in_candidates, area.municipalities.contains(&m.municipality));
        }
        match &r.outcome {
            Outcome::NoMatch => prop_assert!(r.municipality.is_none()),
            Outcome::Ambiguous { options } => prop_assert!(options.len() >= 2 && r.municipality.is_none()),
            Outcome::Municipality { id } => {
                prop_assert!(area.municipalities.contains(id));
                prop_assert_eq!(r.municipality.as_deref(), Some(plan.municipality(*id).name.as_str()));
            }
            Outcome::OtherAreaCode { id, .. } => prop_assert!(!area.municipalities.contains(id)),
            Outcome::NotConnected { .. } => prop_assert!(false, "defaults connect everyone"),
        }
    }

    #[test]
    fn carrier_words_and_punctuation_alone_never_match(
        words in proptest::collection::vec(prop_oneof![
            Just("ik"), Just("wil"), Just("graag"), Just("de"), Just("gemeente"), Just("ehm"),
            Just("alstublieft"), Just("met"), Just("hallo"), Just("ja"), Just("nee"), Just("weet"),
            Just("het"), Just("niet"), Just("?"), Just("..."), Just("uh"), Just("sorry"),
        ], 0..12)
    ) {
        let plan = Plan::builtin();
        let area = plan.area_code("0113").unwrap();
        let r = resolve(&words.join(" "), &area.municipalities, plan, settings());
        prop_assert_eq!(r.outcome, Outcome::NoMatch);
    }

    #[test]
    fn a_name_wrapped_in_any_carrier_words_still_resolves(
        pre in proptest::collection::vec(prop_oneof![Just("ik"), Just("wil"), Just("graag"), Just("de"), Just("gemeente"), Just("ehm"), Just("met")], 0..5),
        post in proptest::collection::vec(prop_oneof![Just("alstublieft"), Just("graag"), Just("uh")], 0..3),
        which in 0usize..5,
    ) {
        let plan = Plan::builtin();
        let area = plan.area_code("0113").unwrap();
        let id = area.municipalities[which % area.municipalities.len()];
        let text = format!("{} {} {}", pre.join(" "), plan.municipality(id).name, post.join(" "));
        let r = resolve(&text, &area.municipalities, plan, settings());
        prop_assert_eq!(r.outcome, Outcome::Municipality { id });
    }
}
