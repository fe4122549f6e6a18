//! A settings file (operator-edited or uploaded through the portal) against the builtin plan.
//! Invariants: nothing panics; settings we accepted serialise to TOML that we accept again
//! and that serialises identically; decide() with the accepted settings is total.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veertien_core::{CallInfo, Plan, Settings, decide};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let plan = Plan::builtin();
    let Ok(settings) = Settings::from_toml_str(s, plan) else { return };
    let text = settings.to_toml_string();
    let again = match Settings::from_toml_str(&text, plan) {
        Ok(a) => a,
        Err(e) => panic!("our own serialisation is refused: {e}\ninput:\n{s}\nserialised:\n{text}"),
    };
    assert_eq!(again.to_toml_string(), text, "settings do not round-trip\ninput:\n{s}");
    let now: jiff::Timestamp = "2026-03-11T09:00:00Z".parse().unwrap();
    for dialled in ["140113", "14020", "140111", "14 0578"] {
        let _ = decide(&CallInfo { dialled, caller: Some("0113-212345") }, plan, &settings, now);
    }
});
