//! Shared by the portal targets: the builtin plan, a municipality chosen by the first input byte
//! (its default settings are the base a document is applied to), trunks and the language.
use veertien_core::{MunicipalitySettings, Plan, Settings};
use veertien_web::Ui;

pub struct Base {
    pub settings: MunicipalitySettings,
    pub ui: Ui,
}

pub const TRUNKS: [&str; 2] = ["trunk.example.nl", "10.0.0.1"];

/// `selector` picks the municipality (builtin plan order) and the language (low bit).
pub fn base(selector: u8) -> Base {
    let plan = Plan::builtin();
    let defaults = Settings::defaults(plan);
    let munis = plan.municipalities();
    let m = &munis[(selector as usize >> 1) % munis.len()];
    Base { settings: defaults.get(m.id).clone(), ui: if selector & 1 == 0 { Ui::Nl } else { Ui::En } }
}
