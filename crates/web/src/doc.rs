//! The settings document a municipality edits (portal form and API), its validation (including
//! the toll-fraud guard) and its conversion to the core's [`MunicipalitySettings`].
//!
//! The store keeps this document as JSON per municipality; the audit log diffs it field by field,
//! so field names here are what a municipality reads in its audit log.

use serde::{Deserialize, Serialize};
use veertien_core::{Calamity, ConnectionStatus, DeliveryMode, Destination, Lang, MunicipalitySettings, Overflow};

use crate::i18n::Ui;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SettingsDoc {
    /// active | technical | not_connected
    pub status: String,
    /// Dutch number (geographic, 085, 088, 0800), a SIP URI on an operator trunk, or "trunk".
    pub destination: String,
    /// redirect | bridge
    pub mode: String,
    /// Keypad digit 0-9 on shared area codes; null = alphabetical order.
    pub menu_digit: Option<u8>,
    pub overflow_destination: Option<String>,
    pub overflow_no_answer_secs: Option<u16>,
    pub calamity_active: bool,
    pub calamity_destination: Option<String>,
    pub calamity_message: String,
    pub forward_when_not_connected: bool,
    /// Subset of nl, en, fy, de, in the order offered.
    pub languages: Vec<String>,
}

/// One invalid field: the form shows `message` next to the field named `field`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl SettingsDoc {
    pub fn from_settings(ms: &MunicipalitySettings) -> SettingsDoc {
        SettingsDoc {
            status: ms.status.as_str().into(),
            destination: ms.destination.to_string(),
            mode: ms.mode.as_str().into(),
            menu_digit: ms.menu_digit,
            overflow_destination: ms.overflow.as_ref().map(|o| o.destination.to_string()),
            overflow_no_answer_secs: ms.overflow.as_ref().map(|o| o.no_answer_secs),
            calamity_active: ms.calamity.as_ref().is_some_and(|c| c.active),
            calamity_destination: ms.calamity.as_ref().and_then(|c| c.destination.as_ref()).map(ToString::to_string),
            calamity_message: ms.calamity.as_ref().map(|c| c.message.clone()).unwrap_or_default(),
            forward_when_not_connected: ms.forward_when_not_connected,
            languages: ms.languages.iter().map(|l| l.as_str().to_string()).collect(),
        }
    }

    /// Validates every field (all errors at once, so the form can mark each) and applies the
    /// document on top of `base`, which keeps what the document does not carry (opening hours,
    /// per-code digits).
    pub fn apply(&self, base: &MunicipalitySettings, trunks: &[&str], ui: Ui) -> Result<MunicipalitySettings, Vec<FieldError>> {
        let mut errs = Vec::new();
        let mut err = |field: &str, message: String| errs.push(FieldError { field: field.into(), message });
        let mut ms = base.clone();
        match self.status.as_str() {
            "active" => ms.status = ConnectionStatus::Active,
            "technical" => ms.status = ConnectionStatus::Technical,
            "not_connected" => ms.status = ConnectionStatus::NotConnected,
            other => err("status", ui.t(&format!("'{other}' is geen geldige status"), &format!("'{other}' is not a valid status"))),
        }
        let mut dest = |field: &str, raw: &str| -> Option<Destination> {
            match Destination::parse(raw) {
                Err(e) => {
                    err(field, ui.t(&format!("Geen geldig nummer of SIP-adres: {e}"), &format!("Not a valid number or SIP address: {e}")));
                    None
                }
                Ok(d) => match veertien_core::check_destination(&d, trunks) {
                    Ok(()) => Some(d),
                    Err(f) => {
                        err(field, ui.t(&f.to_string(), &f.english()));
                        None
                    }
                },
            }
        };
        if let Some(d) = dest("destination", &self.destination) {
            ms.destination = d;
        }
        let overflow = match self.overflow_destination.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(raw) => dest("overflow_destination", raw).map(|d| Some((d, self.overflow_no_answer_secs))),
            None => Some(None),
        };
        let calamity_dest = match self.calamity_destination.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(raw) => dest("calamity_destination", raw).map(Some),
            None => Some(None),
        };
        match self.mode.as_str() {
            "redirect" => ms.mode = DeliveryMode::Redirect,
            "bridge" => ms.mode = DeliveryMode::Bridge,
            other => err("mode", ui.t(&format!("'{other}' is geen geldige afleverwijze"), &format!("'{other}' is not a valid delivery mode"))),
        }
        match self.menu_digit {
            Some(d) if d > 9 => err("menu_digit", ui.t("Kies een toets 0-9", "Choose a key 0-9")),
            d => ms.menu_digit = d,
        }
        if let Some(o) = overflow {
            ms.overflow = match o {
                None => None,
                Some((destination, secs)) => {
                    let secs = secs.unwrap_or(veertien_core::settings::DEFAULT_NO_ANSWER_SECS);
                    if !(5..=600).contains(&secs) {
                        err("overflow_no_answer_secs", ui.t("Tussen 5 en 600 seconden", "Between 5 and 600 seconds"));
                    }
                    Some(Overflow { destination, no_answer_secs: secs })
                }
            };
        }
        if let Some(cd) = calamity_dest {
            let message = self.calamity_message.trim().to_string();
            if self.calamity_active && cd.is_none() && message.is_empty() {
                err(
                    "calamity_message",
                    ui.t("Een actieve calamiteitenlijn heeft een bestemming of een bericht nodig", "An active calamity line needs a destination or a message"),
                );
            }
            if message.chars().count() > 1000 {
                err("calamity_message", ui.t("Maximaal 1000 tekens", "At most 1000 characters"));
            }
            ms.calamity = (self.calamity_active || cd.is_some() || !message.is_empty())
                .then_some(Calamity { active: self.calamity_active, destination: cd, message });
        }
        ms.forward_when_not_connected = self.forward_when_not_connected;
        let mut langs = Vec::new();
        for l in &self.languages {
            match l.as_str() {
                "nl" => langs.push(Lang::Nl),
                "en" => langs.push(Lang::En),
                "fy" => langs.push(Lang::Fy),
                "de" => langs.push(Lang::De),
                other => err("languages", ui.t(&format!("Onbekende taal '{other}'"), &format!("Unknown language '{other}'"))),
            }
        }
        langs.dedup();
        if langs.is_empty() {
            err("languages", ui.t("Kies minstens één taal", "Choose at least one language"));
        } else {
            ms.languages = langs;
        }
        if errs.is_empty() { Ok(ms) } else { Err(errs) }
    }
}
