//! The routing decision: a call arrives for this number, from this caller, at this moment —
//! where does it go? Pure and total: every input yields a decision, never a panic.

use std::fmt;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

use crate::number::{NormaliseError, classify_nsn, normalise, parse_phone, NsnKind};
use crate::plan::{AreaCodeId, GeneralNumberKind, MunicipalityId, Plan};
use crate::settings::{ConnectionStatus, DeliveryMode, Destination, Settings};

/// What the switch knows about the call.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallInfo<'a> {
    /// The dialled number in any accepted form (see [`crate::normalise`]).
    pub dialled: &'a str,
    /// The caller's number (From / P-Asserted-Identity), if presented.
    pub caller: Option<&'a str>,
}

/// A municipality as it appears in a decision: the CBS name under `municipality`, as in
/// name resolution results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MunicipalityRef {
    #[serde(rename = "municipality_id")]
    pub id: MunicipalityId,
    /// CBS name, e.g. "Kapelle".
    #[serde(rename = "municipality")]
    pub name: String,
    pub cbs: String,
    /// The name people use, e.g. "Den Bosch".
    pub everyday_name: String,
}

impl MunicipalityRef {
    pub fn new(plan: &Plan, id: MunicipalityId) -> Self {
        let m = plan.municipality(id);
        MunicipalityRef { id, name: m.name.clone(), cbs: m.cbs.clone(), everyday_name: m.everyday_name.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum RouteStep {
    /// Play a message first (calamity).
    Announcement { message: String },
    Primary { destination: String, mode: DeliveryMode },
    /// If the primary does not answer within `after_secs`.
    Overflow { destination: String, after_secs: u16 },
    /// Calamity line replaces the primary while active.
    Calamity { destination: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    #[serde(flatten)]
    pub municipality: MunicipalityRef,
    /// Keypad digit; `None` when not in the keypad menu.
    pub digit: Option<u8>,
    pub status: ConnectionStatus,
    /// `false` for technical municipalities: reachable by name only.
    pub advertised: bool,
}

/// The caller's own number is geographic and lies in the dialled area code. The platform may use
/// it to *suggest*; it never skips the question because of it (area codes and municipal borders
/// do not coincide).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallerAreaMatch {
    /// The caller's number, E.164.
    pub caller: String,
    pub area_code: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnounceReason {
    NotConnected,
    Closed,
    Calamity,
}

/// A municipality's published general number, for announcements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneralNumberInfo {
    /// As published, e.g. "(0297) 38 75 75".
    pub raw: String,
    /// What to dial: E.164 ("+31297387575") or the 14+ number ("140113").
    pub dial: String,
    pub is_fourteen: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    Malformed(NormaliseError),
    UnknownAreaCode {
        area_code: String,
        /// A known 14+ number the dialled one extends by a digit ("140201" → "14020").
        did_you_mean: Option<String>,
    },
}

impl RejectReason {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::Malformed(_) => "malformed",
            RejectReason::UnknownAreaCode { .. } => "unknown_area_code",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::Malformed(e) => write!(f, "not a 14+ number: {e}"),
            RejectReason::UnknownAreaCode { area_code, did_you_mean } => {
                write!(f, "14 {area_code} does not exist: {area_code} is not a geographic area code of the number plan")?;
                if let Some(d) = did_you_mean {
                    write!(f, " (did you mean {d}?)")?;
                }
                Ok(())
            }
        }
    }
}

impl Serialize for RejectReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("code", self.code())?;
        m.serialize_entry("message", &self.to_string())?;
        match self {
            RejectReason::Malformed(e) => m.serialize_entry("detail", e.code())?,
            RejectReason::UnknownAreaCode { area_code, did_you_mean } => {
                m.serialize_entry("area_code", area_code)?;
                m.serialize_entry("did_you_mean", did_you_mean)?;
            }
        }
        m.end()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// Connect the call.
    Forward {
        #[serde(flatten)]
        municipality: MunicipalityRef,
        area_code: String,
        fourteen: String,
        /// Where the call goes first: the primary, or the calamity line while a calamity is active.
        destination: String,
        mode: DeliveryMode,
        /// `false` while the destination is the unconfigured trunk placeholder.
        destination_configured: bool,
        route: Vec<RouteStep>,
    },
    /// Several municipalities share the area code: ask the caller.
    Ask {
        area_code: String,
        fourteen: String,
        /// In menu order (digit 1, 2, ..., 9, 0), then those without digit.
        candidates: Vec<Candidate>,
        caller_area_match: Option<CallerAreaMatch>,
    },
    /// Tell the caller something instead of (or before) connecting.
    Announce {
        #[serde(flatten)]
        municipality: MunicipalityRef,
        area_code: String,
        fourteen: String,
        reason: AnnounceReason,
        general_number: GeneralNumberInfo,
        /// Forward after the announcement, if configured.
        forward_to: Option<String>,
        /// Calamity message.
        message: Option<String>,
        /// When closed: the next opening, RFC 3339 in Europe/Amsterdam.
        opens_at: Option<String>,
    },
    Reject { reason: RejectReason },
}

impl Decision {
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Forward { .. } => "forward",
            Decision::Ask { .. } => "ask",
            Decision::Announce { .. } => "announce",
            Decision::Reject { .. } => "reject",
        }
    }

    /// The municipality the decision is about (`None` for ask and reject).
    pub fn municipality(&self) -> Option<&MunicipalityRef> {
        match self {
            Decision::Forward { municipality, .. } | Decision::Announce { municipality, .. } => Some(municipality),
            _ => None,
        }
    }
}

/// Decide where a call to a 14+ number goes.
pub fn decide(call: &CallInfo<'_>, plan: &Plan, settings: &Settings, now: Timestamp) -> Decision {
    let number = match normalise(call.dialled) {
        Ok(n) => n,
        Err(e) => return Decision::Reject { reason: RejectReason::Malformed(e) },
    };
    let code = number.area_code();
    let Some(aid) = plan.area_code_id(code) else {
        let did_you_mean = (code.len() == 4).then(|| &code[..3]).and_then(|c| plan.area_code(c)).map(|a| a.fourteen.clone());
        return Decision::Reject { reason: RejectReason::UnknownAreaCode { area_code: code.to_string(), did_you_mean } };
    };
    let area = plan.area_code_by_id(aid);
    let menu = settings.menu(aid);
    let advertised = menu.iter().filter(|e| e.advertised).count();
    let single = match (area.municipalities.len(), advertised) {
        (1, _) => area.municipalities.first().copied(),
        // Technical municipalities are not offered, so one advertised municipality needs no question.
        (_, 1) => menu.iter().find(|e| e.advertised).map(|e| e.municipality),
        _ => None,
    };
    if let Some(m) = single {
        return decide_for(m, aid, plan, settings, now);
    }
    // With nobody advertised (all technical) the caller is still asked, among everyone.
    let candidates = menu
        .iter()
        .map(|e| Candidate {
            municipality: MunicipalityRef::new(plan, e.municipality),
            digit: e.digit,
            status: settings.get(e.municipality).status,
            advertised: e.advertised,
        })
        .collect();
    Decision::Ask {
        area_code: area.code.clone(),
        fourteen: area.fourteen.clone(),
        candidates,
        caller_area_match: caller_area_match(call.caller, plan, aid),
    }
}

fn caller_area_match(caller: Option<&str>, plan: &Plan, aid: AreaCodeId) -> Option<CallerAreaMatch> {
    let p = parse_phone(caller?).ok()?;
    if !p.is_dutch() || p.nsn.len() != 9 || classify_nsn(&p.nsn) != NsnKind::Geographic {
        return None;
    }
    (plan.area_code_of_nsn(&p.nsn) == Some(aid))
        .then(|| CallerAreaMatch { caller: p.e164, area_code: plan.area_code_by_id(aid).code.clone() })
}

/// The decision once the municipality is known: the only one on the code, or the caller's choice
/// (keypad digit via [`Settings::digit_choice`], or a resolved name) on `area_code`.
pub fn decide_for(id: MunicipalityId, area_code: AreaCodeId, plan: &Plan, settings: &Settings, now: Timestamp) -> Decision {
    let Some(m) = plan.get_municipality(id) else {
        // Not from this plan; keep the function total.
        return Decision::Reject {
            reason: RejectReason::UnknownAreaCode {
                area_code: plan.area_codes().get(area_code.index()).map(|a| a.code.clone()).unwrap_or_default(),
                did_you_mean: None,
            },
        };
    };
    let (code, fourteen) = match plan.area_codes().get(area_code.index()) {
        Some(a) => (a.code.clone(), a.fourteen.clone()),
        None => (String::new(), String::new()),
    };
    let s = settings.get(id);
    let mref = MunicipalityRef::new(plan, id);
    let gn = &m.general_number;
    let general_number = GeneralNumberInfo {
        raw: gn.raw.clone(),
        dial: gn.e164.clone().or_else(|| gn.fourteen.clone()).unwrap_or_default(),
        is_fourteen: gn.kind == GeneralNumberKind::Fourteen,
    };
    let announce = |reason, forward_to, message, opens_at| Decision::Announce {
        municipality: mref.clone(),
        area_code: code.clone(),
        fourteen: fourteen.clone(),
        reason,
        general_number: general_number.clone(),
        forward_to,
        message,
        opens_at,
    };

    if s.status == ConnectionStatus::NotConnected {
        let forward_to = s.forward_when_not_connected.then(|| {
            // The general number if it is dialable; else a configured real destination. Never the
            // 14+ number (it would come straight back) and never the trunk placeholder.
            // Nor a number the toll-fraud guard refuses (a premium general number such as 0900 1852).
            gn.e164.as_ref().filter(|e| crate::tollguard::check_e164(e).is_ok()).map(|e| format!("tel:{e}")).or_else(|| match &s.destination {
                Destination::Trunk => None,
                d => Some(d.uri(&m.cbs, settings.trunk())),
            })
        });
        return announce(AnnounceReason::NotConnected, forward_to.flatten(), None, None);
    }

    let primary = settings.destination_uri(id);
    let configured = s.destination != Destination::Trunk;
    if let Some(c) = s.calamity.as_ref().filter(|c| c.active) {
        let message = (!c.message.trim().is_empty()).then(|| c.message.clone());
        return match &c.destination {
            Some(d) => {
                let dest = d.uri(&m.cbs, settings.trunk());
                let mut route = Vec::with_capacity(2);
                if let Some(msg) = message {
                    route.push(RouteStep::Announcement { message: msg });
                }
                route.push(RouteStep::Calamity { destination: dest.clone() });
                Decision::Forward {
                    municipality: mref,
                    area_code: code,
                    fourteen,
                    destination: dest,
                    // Playing a message requires staying in the call.
                    mode: DeliveryMode::Bridge,
                    destination_configured: *d != Destination::Trunk,
                    route,
                }
            }
            None => announce(AnnounceReason::Calamity, None, message, None),
        };
    }

    if !s.opening_hours.is_open(now) {
        let opens_at = s.opening_hours.next_opening(now).map(|z| z.timestamp().display_with_offset(z.offset()).to_string());
        return announce(AnnounceReason::Closed, None, None, opens_at);
    }

    let mut route = vec![RouteStep::Primary { destination: primary.clone(), mode: s.mode }];
    let mut mode = s.mode;
    if let Some(o) = &s.overflow {
        route.push(RouteStep::Overflow { destination: o.destination.uri(&m.cbs, settings.trunk()), after_secs: o.no_answer_secs });
        // A 302 leaves the call, so overflow needs bridging.
        mode = DeliveryMode::Bridge;
        if let Some(RouteStep::Primary { mode: pm, .. }) = route.first_mut() {
            *pm = DeliveryMode::Bridge;
        }
    }
    Decision::Forward { municipality: mref, area_code: code, fourteen, destination: primary, mode, destination_configured: configured, route }
}
