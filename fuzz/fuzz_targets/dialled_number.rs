//! A dialled number (Request-URI user part, To, or tel: URI) and a caller number from an
//! untrusted peer. Invariants: nothing panics; anything accepted re-normalises to the same
//! number from both its canonical and its spaced form; decide() on the builtin plan is total.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veertien_core::{CallInfo, Plan, Settings, decide, normalise, parse_phone};

fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| Settings::defaults(Plan::builtin()))
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    // "dialled\ncaller": the caller part is optional.
    let (dialled, caller) = match s.split_once('\n') {
        Some((d, c)) => (d, Some(c)),
        None => (s, None),
    };
    if let Ok(n) = normalise(dialled) {
        assert_eq!(normalise(&n.to_string()), Ok(n), "canonical form of {dialled:?} does not re-normalise");
        assert_eq!(normalise(&n.spaced()), Ok(n), "spaced form of {dialled:?} does not re-normalise");
        assert!(n.area_code().starts_with('0') && n.area_code().bytes().all(|b| b.is_ascii_digit()));
    }
    if let Some(c) = caller {
        if let Ok(p) = parse_phone(c) {
            let _ = p.is_dutch();
            let _ = p.tel_uri();
        }
    }
    let plan = Plan::builtin();
    // A weekday office hour and a Sunday night, so both opening-hours branches run.
    for now in ["2026-03-11T09:00:00Z", "2026-03-15T23:30:00Z"] {
        let now: jiff::Timestamp = now.parse().unwrap();
        let _ = decide(&CallInfo { dialled, caller }, plan, settings(), now);
    }
});
