//! A number-plan directory where one CSV file is replaced by fuzzed content (an operator's
//! corrected plan, `--plan DIR`). Invariants: nothing panics; a plan that loads answers its
//! own lookups consistently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veertien_core::{Plan, PlanSources, Settings};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let mut src = PlanSources::builtin();
    match which % 6 {
        0 => src.municipalities = text,
        1 => src.contact = text,
        2 => src.area_codes = text,
        3 => src.pairs = text,
        4 => src.places = text,
        _ => src.mergers = text,
    }
    let Ok(plan) = Plan::from_sources(&src) else { return };
    let _ = plan.counts();
    for m in plan.municipalities() {
        assert_eq!(plan.by_cbs(&m.cbs).map(|id| plan.municipality(id).cbs.clone()), Some(m.cbs.clone()));
    }
    for a in plan.area_codes() {
        assert!(plan.area_code(&a.code).is_some(), "area code {} not found by its own code", a.code);
    }
    let _ = Settings::defaults(&plan);
});
