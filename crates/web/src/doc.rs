//! The settings document a municipality edits (portal form and API), its validation (including
//! the toll-fraud guard) and its conversion to the core's [`MunicipalitySettings`].
//!
//! The store keeps this document as JSON per municipality; the audit log diffs it field by field,
//! so field names here are what a municipality reads in its audit log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use veertien_core::{Calamity, ConnectionStatus, DeliveryMode, Destination, Holiday, Lang, MunicipalitySettings, OpeningHours, Overflow, TimeRange};

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
    /// Opening hours; absent = keep the current ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening_hours: Option<HoursDoc>,
    /// Keypad digit per shared area code ("0113": 2), overriding `menu_digit` on that code;
    /// absent = keep the current ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu_digits: Option<BTreeMap<String, u8>>,
}

/// Weekday keys of [`HoursDoc::weekly`], Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// When the contact centre takes calls (Europe/Amsterdam).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HoursDoc {
    /// Open around the clock on ordinary days (`weekly` is then ignored); holidays and
    /// exception days still apply.
    pub always_open: bool,
    /// Per weekday (`mon` … `sun`) the intervals open, "08:30-12:00"; none = closed that day.
    pub weekly: BTreeMap<String, Vec<String>>,
    /// Public holidays (e.g. `koningsdag`, `eerste_kerstdag`) on which the line is closed; the
    /// others are ordinary days.
    pub closed_on: Vec<String>,
    /// Days that differ from the schedule.
    pub exceptions: Vec<ExceptionDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExceptionDoc {
    /// YYYY-MM-DD
    pub date: String,
    /// Intervals open that day; none = closed all day.
    pub hours: Vec<String>,
    /// Why (shown in the portal and the audit log), e.g. "Kerstavond: tot 14:00".
    #[serde(default)]
    pub note: String,
}

/// The holiday's key in [`HoursDoc::closed_on`].
pub fn holiday_key(h: Holiday) -> &'static str {
    veertien_core::settings::holiday_name(h)
}

/// Parses "08:30-12:00" items, sorted; overlaps and bad times are reported on `field`.
fn ranges(field: &str, items: &[String], ui: Ui, err: &mut dyn FnMut(&str, String)) -> Vec<TimeRange> {
    let mut out: Vec<TimeRange> = Vec::new();
    for raw in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        match TimeRange::parse(raw) {
            Ok(r) => out.push(r),
            Err(e) => err(field, ui.t(&format!("Ongeldige openingstijd: {e} (schrijf bijvoorbeeld 08:30-12:00)"), &format!("Invalid opening time: {e} (write e.g. 08:30-12:00)"))),
        }
    }
    out.sort();
    if out.windows(2).any(|w| w[1].from_min < w[0].to_min) {
        err(field, ui.t("Tijdvakken overlappen elkaar", "Intervals overlap"));
    }
    out
}

impl HoursDoc {
    pub fn from_hours(h: &OpeningHours) -> HoursDoc {
        let fmt = |r: &[TimeRange]| r.iter().map(ToString::to_string).collect::<Vec<_>>();
        HoursDoc {
            always_open: h.weekly.is_none(),
            weekly: match &h.weekly {
                Some(w) => WEEKDAYS.iter().zip(w.iter()).map(|(d, r)| (d.to_string(), fmt(r))).collect(),
                None => WEEKDAYS.iter().map(|d| (d.to_string(), Vec::new())).collect(),
            },
            closed_on: Holiday::ALL.iter().filter(|x| h.closed_on.contains(x)).map(|x| holiday_key(*x).to_string()).collect(),
            exceptions: h.exceptions.iter().map(|(d, r)| ExceptionDoc { date: d.to_string(), hours: fmt(r), note: String::new() }).collect(),
        }
    }

    fn to_hours(&self, ui: Ui, err: &mut dyn FnMut(&str, String)) -> OpeningHours {
        let mut weekly: [Vec<TimeRange>; 7] = Default::default();
        for (key, items) in &self.weekly {
            match WEEKDAYS.iter().position(|d| d == key) {
                Some(i) => weekly[i] = ranges(&format!("hours.{key}"), items, ui, err),
                None => err("hours", ui.t(&format!("'{key}' is geen weekdag (mon … sun)"), &format!("'{key}' is not a weekday (mon … sun)"))),
            }
        }
        let mut closed_on = Vec::new();
        for k in &self.closed_on {
            match Holiday::ALL.iter().find(|h| holiday_key(**h) == k) {
                Some(h) if !closed_on.contains(h) => closed_on.push(*h),
                Some(_) => {}
                None => err(&format!("holiday.{k}"), ui.t(&format!("'{k}' is geen bekende feestdag"), &format!("'{k}' is not a known public holiday"))),
            }
        }
        closed_on.sort();
        let mut exceptions = BTreeMap::new();
        for (i, e) in self.exceptions.iter().enumerate() {
            let field = format!("exceptions.{i}.date");
            match e.date.trim().parse::<jiff::civil::Date>() {
                Ok(d) if exceptions.contains_key(&d) => err(&field, ui.t(&format!("{d} staat er al"), &format!("{d} is listed twice"))),
                Ok(d) => {
                    let r = ranges(&format!("exceptions.{i}.hours"), &e.hours, ui, err);
                    exceptions.insert(d, r);
                }
                Err(_) => err(&field, ui.t(&format!("'{}' is geen datum (JJJJ-MM-DD)", e.date), &format!("'{}' is not a date (YYYY-MM-DD)", e.date))),
            }
            if e.note.chars().count() > 200 {
                err(&format!("exceptions.{i}.note"), ui.t("Maximaal 200 tekens", "At most 200 characters"));
            }
        }
        if exceptions.len() > 400 {
            err("exceptions", ui.t("Maximaal 400 uitzonderingsdagen", "At most 400 exception days"));
        }
        let weekly = (!self.always_open).then_some(weekly);
        if weekly.as_ref().is_some_and(|w| w.iter().all(Vec::is_empty)) {
            err("hours", ui.t("Geen enkele openingstijd: kies 'altijd open' of vul tijden in", "No opening time at all: choose 'always open' or enter times"));
        }
        OpeningHours { weekly, closed_on, exceptions }
    }
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
            opening_hours: Some(HoursDoc::from_hours(&ms.opening_hours)),
            menu_digits: Some(ms.menu_digits.clone()),
        }
    }

    /// As [`SettingsDoc::from_settings`], with the exception-day notes of the stored document
    /// (the routing settings do not carry notes).
    pub fn from_settings_with_notes(ms: &MunicipalitySettings, stored: Option<&SettingsDoc>) -> SettingsDoc {
        let mut doc = SettingsDoc::from_settings(ms);
        let notes: BTreeMap<&str, &str> = stored
            .and_then(|s| s.opening_hours.as_ref())
            .map(|h| h.exceptions.iter().map(|e| (e.date.as_str(), e.note.as_str())).collect())
            .unwrap_or_default();
        if let Some(h) = doc.opening_hours.as_mut() {
            for e in &mut h.exceptions {
                if let Some(n) = notes.get(e.date.as_str()) {
                    e.note = n.to_string();
                }
            }
        }
        doc
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
        let mut seen = Vec::new();
        langs.retain(|l| if seen.contains(l) { false } else { seen.push(*l); true });
        if let Some(h) = &self.opening_hours {
            ms.opening_hours = h.to_hours(ui, &mut err);
        }
        if let Some(md) = &self.menu_digits {
            ms.menu_digits = BTreeMap::new();
            for (code, d) in md {
                let field = format!("menu_digits.{code}");
                if !(2..=4).contains(&code.len()) || !code.starts_with('0') || !code.bytes().all(|b| b.is_ascii_digit()) {
                    err(&field, ui.t(&format!("'{code}' is geen netnummer"), &format!("'{code}' is not an area code")));
                } else if *d > 9 {
                    err(&field, ui.t("Kies een toets 0-9", "Choose a key 0-9"));
                } else {
                    ms.menu_digits.insert(code.clone(), *d);
                }
            }
        }
        if langs.is_empty() {
            err("languages", ui.t("Kies minstens één taal", "Choose at least one language"));
        } else {
            ms.languages = langs;
        }
        if errs.is_empty() { Ok(ms) } else { Err(errs) }
    }
}
