//! JSON bodies of the portal's API: `PUT /api/municipalities/{cbs}/settings` (`PutSettings`
//! → `SettingsDoc::apply`), incidents (`IncidentForm::validate`, `UpdateForm::validate`) and
//! contacts (`ContactsDoc`). First byte: which body (low 2 bits) and the municipality/language.
//! Invariants: nothing panics; settings accepted by `apply`, shown again as a document
//! (`SettingsDoc::from_settings`, what GET returns), are accepted again and give the same settings.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use veertien_core::Plan;
use veertien_web::SettingsDoc;
use veertien_web::api::PutSettings;
use veertien_web::incidents::{IncidentForm, UpdateForm};
use veertien_web::incidents_contacts::ContactsDoc;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let base = common::base(sel >> 2);
    match sel & 3 {
        0 => {
            let Ok(req) = serde_json::from_slice::<PutSettings>(body) else { return };
            let Ok(ms) = req.settings.apply(&base.settings, &common::TRUNKS, base.ui) else { return };
            let shown = SettingsDoc::from_settings(&ms);
            match shown.apply(&base.settings, &common::TRUNKS, base.ui) {
                Ok(again) => assert_eq!(again, ms, "settings shown by GET do not apply to the same settings\nbody: {}", String::from_utf8_lossy(body)),
                Err(e) => panic!("settings shown by GET are refused: {e:?}\nbody: {}", String::from_utf8_lossy(body)),
            }
        }
        1 => {
            if let Ok(f) = serde_json::from_slice::<IncidentForm>(body) {
                let _ = f.validate(Plan::builtin(), "fuzz@example.nl", true, base.ui);
            }
        }
        2 => {
            if let Ok(f) = serde_json::from_slice::<UpdateForm>(body) {
                let _ = f.validate(false, "fuzz@example.nl", true, base.ui);
                let _ = f.validate(true, "fuzz@example.nl", true, base.ui);
            }
        }
        _ => {
            if let Ok(doc) = serde_json::from_slice::<ContactsDoc>(body) {
                let _ = serde_json::to_vec(&doc);
            }
        }
    }
});
