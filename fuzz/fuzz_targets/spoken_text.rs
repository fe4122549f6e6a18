//! What the caller said (speech recogniser output or typed text) resolved against random
//! candidate sets. Invariant: resolve() is total on any text and any valid candidate set.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veertien_core::{MunicipalityId, Plan, Settings};

fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| Settings::defaults(Plan::builtin()))
}

fuzz_target!(|data: &[u8]| {
    let plan = Plan::builtin();
    let Some((&n, rest)) = data.split_first() else { return };
    let total = plan.municipalities().len() as u16;
    let candidates: Vec<MunicipalityId>;
    let text_bytes;
    if n & 0x80 != 0 {
        // A real shared area code's municipalities, the case the IVR asks about.
        let codes = plan.area_codes();
        let a = &codes[(n & 0x7f) as usize * 7 % codes.len()];
        candidates = a.municipalities.clone();
        text_bytes = rest;
    } else {
        let k = ((n % 8) as usize).min(rest.len() / 2);
        candidates = rest[..2 * k].chunks_exact(2).map(|c| MunicipalityId(u16::from_le_bytes([c[0], c[1]]) % total)).collect();
        text_bytes = &rest[2 * k..];
    }
    let Ok(text) = std::str::from_utf8(text_bytes) else { return };
    let r = veertien_names::resolve(text, &candidates, plan, settings());
    let _ = r.meant();
});
