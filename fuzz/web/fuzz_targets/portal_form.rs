//! The settings page's form body (application/x-www-form-urlencoded) → `doc_from_form` →
//! `SettingsDoc::apply`, and the incident forms. First byte: municipality/language and form.
//! Invariants: nothing panics; a form without field errors whose document applies gives
//! settings that, shown again as a document, apply to the same settings.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use veertien_web::SettingsDoc;
use veertien_web::settings_form::doc_from_form;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let base = common::base(sel);
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let mut errors = Vec::new();
    let doc = doc_from_form(&pairs, &mut errors, base.ui);
    let Ok(ms) = doc.apply(&base.settings, &common::TRUNKS, base.ui) else { return };
    if !errors.is_empty() {
        return;
    }
    let shown = SettingsDoc::from_settings(&ms);
    match shown.apply(&base.settings, &common::TRUNKS, base.ui) {
        Ok(again) => assert_eq!(again, ms, "settings shown again do not apply to the same settings\nform: {}", String::from_utf8_lossy(body)),
        Err(e) => panic!("settings shown again are refused: {e:?}\nform: {}", String::from_utf8_lossy(body)),
    }
});
