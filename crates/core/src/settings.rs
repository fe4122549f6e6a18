//! Per-municipality settings: connection status, destination, delivery mode, keypad-menu digits,
//! overflow, calamity line, opening hours, languages. Read from and written to TOML; the portal
//! will edit the same model later.
//!
//! Defaults route all municipalities out of the box:
//! * status `active` for every municipality (only the 131 whose general number is a 14+ number are
//!   *evidenced* as connected, but the platform must not refuse the others until an operator says so);
//! * destination: the published general number as E.164 (mode `redirect`, a 302 to a dialable
//!   number) — except where that number is the 14+ number itself, which would loop back into the
//!   platform. Those municipalities get destination `trunk`: the operator's contact-centre trunk,
//!   `sip:{cbs}@kcc.invalid` until configured (mode `bridge`, since carriers do not follow a 302 to a
//!   private trunk). `.invalid` never resolves, so a forgotten configuration fails loudly instead
//!   of ringing a wrong number; `veertien plan check` lists these municipalities.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use jiff::civil::Date;
use serde::{Deserialize, Serialize, Serializer};
use toml::Spanned;

use crate::hours::{Holiday, OpeningHours, TimeRange};
use crate::number::{normalise, parse_phone};
use crate::plan::{AreaCodeId, GeneralNumberKind, MunicipalityId, Plan};

pub const DEFAULT_TRUNK: &str = "sip:{cbs}@kcc.invalid";
pub const DEFAULT_NO_ANSWER_SECS: u16 = 30;
/// Keypad digits in menu order: 0 last, as callers expect "1" to be the first choice.
pub const MENU_DIGITS: [u8; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    /// Reachable but not advertised: not in the keypad menu, still reachable by name.
    Technical,
    NotConnected,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::Technical => "technical",
            ConnectionStatus::NotConnected => "not_connected",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(ConnectionStatus::Active),
            "technical" => Some(ConnectionStatus::Technical),
            "not_connected" => Some(ConnectionStatus::NotConnected),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// 302 with number diversion: the platform leaves the call.
    Redirect,
    /// B2BUA: the platform stays in the call (needed for overflow and announcements mid-call).
    Bridge,
}

impl DeliveryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::Redirect => "redirect",
            DeliveryMode::Bridge => "bridge",
        }
    }
}

/// Where calls for a municipality go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An E.164 number, "+31113123456".
    Tel(String),
    /// A SIP URI, "sip:kcc@goes.example".
    Sip(String),
    /// The platform's contact-centre trunk (see [`Settings::trunk`]); "to be configured".
    Trunk,
}

impl Destination {
    /// Accepts "trunk", a SIP URI, or a telephone number in any usual form. Refuses 14+ numbers,
    /// which would route the call back into the platform.
    pub fn parse(s: &str) -> Result<Destination, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("trunk") {
            return Ok(Destination::Trunk);
        }
        if normalise(t).is_ok() {
            return Err(format!("'{t}' is a 14+ number: forwarding there would loop back into the platform"));
        }
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            let rest = &t[t.find(':').unwrap_or(0) + 1..];
            let host = rest.rsplit('@').next().unwrap_or("");
            let host = host.split([';', '?', ':']).next().unwrap_or("");
            if host.is_empty() || t.chars().any(char::is_whitespace) {
                return Err(format!("'{t}' is not a valid SIP URI (sip:user@host)"));
            }
            return Ok(Destination::Sip(t.to_string()));
        }
        match parse_phone(t) {
            Ok(p) => Ok(Destination::Tel(p.e164)),
            Err(e) => Err(format!("'{t}' is neither a telephone number, a SIP URI nor 'trunk': {e}")),
        }
    }

    /// The concrete URI to send the call to.
    pub fn uri(&self, cbs: &str, trunk: &str) -> String {
        match self {
            Destination::Tel(e) => format!("tel:{e}"),
            Destination::Sip(u) => u.clone(),
            Destination::Trunk => trunk.replace("{cbs}", cbs),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Tel(e) => f.write_str(e),
            Destination::Sip(u) => f.write_str(u),
            Destination::Trunk => f.write_str("trunk"),
        }
    }
}

impl Serialize for Destination {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overflow {
    pub destination: Destination,
    pub no_answer_secs: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Calamity {
    pub active: bool,
    pub destination: Option<Destination>,
    /// Spoken before forwarding, or instead of it when there is no destination.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    Nl,
    En,
    /// Frisian, offered by default in Fryslân.
    Fy,
    De,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
            Lang::Fy => "fy",
            Lang::De => "de",
        }
    }
    fn parse(s: &str) -> Option<Lang> {
        match s {
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            "fy" => Some(Lang::Fy),
            "de" => Some(Lang::De),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MunicipalitySettings {
    pub status: ConnectionStatus,
    pub destination: Destination,
    pub mode: DeliveryMode,
    /// Keypad digit on every shared area code of this municipality (overridden by `menu_digits`).
    pub menu_digit: Option<u8>,
    /// Keypad digit per area code ("0113" → 2): a municipality on several codes may differ per code.
    pub menu_digits: BTreeMap<String, u8>,
    pub overflow: Option<Overflow>,
    pub calamity: Option<Calamity>,
    pub opening_hours: OpeningHours,
    /// When not connected: forward to the general number after the announcement.
    pub forward_when_not_connected: bool,
    pub languages: Vec<Lang>,
}

impl MunicipalitySettings {
    fn generic() -> &'static MunicipalitySettings {
        static G: OnceLock<MunicipalitySettings> = OnceLock::new();
        G.get_or_init(|| MunicipalitySettings {
            status: ConnectionStatus::Active,
            destination: Destination::Trunk,
            mode: DeliveryMode::Bridge,
            menu_digit: None,
            menu_digits: BTreeMap::new(),
            overflow: None,
            calamity: None,
            opening_hours: OpeningHours::always_open(),
            forward_when_not_connected: false,
            languages: vec![Lang::Nl, Lang::En],
        })
    }
}

/// One line of an area code's keypad menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MenuEntry {
    pub municipality: MunicipalityId,
    /// `None`: not in the keypad menu (technical, or more than ten municipalities on the code).
    pub digit: Option<u8>,
    /// `false` for `technical` municipalities.
    pub advertised: bool,
}

/// Settings could not be read. Names the line and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {message}", line.map(|l| format!("settings line {l}: ")).unwrap_or_default())]
pub struct SettingsError {
    pub line: Option<usize>,
    /// Dotted path, e.g. "municipality.GM0664.destination".
    pub field: String,
    pub message: String,
}

/// Why a municipality's published general number is not its default destination
/// ([`Settings::no_default_destination`]). `Display` is Dutch; [`NoDefaultDestination::english`]
/// gives English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoDefaultDestination {
    /// The general number is the 14+ number itself: forwarding to it would loop.
    FourteenItself,
    /// The published text is no usable phone number.
    NotANumber { raw: String },
    /// The toll-fraud guard refuses it (a premium-rate 0900 number, for one).
    Refused(crate::tollguard::ForbiddenDestination),
}

impl NoDefaultDestination {
    pub fn english(&self) -> String {
        match self {
            Self::FourteenItself => "the general number is the 14+ number itself".into(),
            Self::NotANumber { raw } => format!("the published general number \"{raw}\" is not a usable phone number"),
            Self::Refused(why) => format!("the published general number is refused: {}", why.english()),
        }
    }
}

impl fmt::Display for NoDefaultDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FourteenItself => write!(f, "het algemene nummer is het 14+ nummer zelf"),
            Self::NotANumber { raw } => write!(f, "het gepubliceerde algemene nummer \"{raw}\" is geen bruikbaar telefoonnummer"),
            Self::Refused(why) => write!(f, "het gepubliceerde algemene nummer wordt geweigerd: {why}"),
        }
    }
}

/// What the settings need to know about the plan; shared so that `with` stays cheap.
#[derive(Debug)]
struct PlanCtx {
    cbs: Vec<String>,
    names: Vec<String>,
    codes: Vec<String>,
    members: Vec<Vec<MunicipalityId>>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    trunk: String,
    munis: Vec<MunicipalitySettings>,
    ctx: Arc<PlanCtx>,
    menus: Vec<Vec<MenuEntry>>,
    warnings: Vec<String>,
}

impl Settings {
    /// Defaults for every municipality of `plan` (see the module documentation).
    pub fn defaults(plan: &Plan) -> Settings {
        let munis = plan.municipalities().iter().map(|m| Settings::default_for(plan, m.id)).collect();
        Settings::assemble(ctx_of(plan), DEFAULT_TRUNK.to_string(), munis)
    }

    /// Why a municipality's published general number cannot be its default destination, so its
    /// calls go to the trunk until it is configured; `None` when it can.
    pub fn no_default_destination(plan: &Plan, id: MunicipalityId) -> Option<NoDefaultDestination> {
        let gn = &plan.municipality(id).general_number;
        match (&gn.kind, &gn.e164) {
            (GeneralNumberKind::Fourteen, _) => Some(NoDefaultDestination::FourteenItself),
            (_, None) => Some(NoDefaultDestination::NotANumber { raw: gn.raw.clone() }),
            // A published number the toll-fraud guard refuses (Haarlemmermeer publishes 0900 1852)
            // is never a default: such municipalities wait for configuration like 14+-numbered ones.
            (_, Some(e164)) => crate::tollguard::check_e164(e164).err().map(NoDefaultDestination::Refused),
        }
    }

    /// The default settings of one municipality.
    pub fn default_for(plan: &Plan, id: MunicipalityId) -> MunicipalitySettings {
        let m = plan.municipality(id);
        let (destination, mode) = match (Settings::no_default_destination(plan, id), &m.general_number.e164) {
            (None, Some(e164)) => (Destination::Tel(e164.clone()), DeliveryMode::Redirect),
            _ => (Destination::Trunk, DeliveryMode::Bridge),
        };
        let mut languages = vec![Lang::Nl, Lang::En];
        if m.province == "Friesland" || m.province == "Fryslân" {
            languages.insert(1, Lang::Fy);
        }
        MunicipalitySettings {
            status: ConnectionStatus::Active,
            destination,
            mode,
            menu_digit: None,
            menu_digits: BTreeMap::new(),
            overflow: None,
            calamity: None,
            opening_hours: OpeningHours::always_open(),
            forward_when_not_connected: false,
            languages,
        }
    }

    fn assemble(ctx: Arc<PlanCtx>, trunk: String, munis: Vec<MunicipalitySettings>) -> Settings {
        let (menus, conflicts) = compute_menus(&ctx, &munis);
        let warnings = conflicts.into_iter().map(|c| c.message).collect();
        Settings { trunk, munis, ctx, menus, warnings }
    }

    /// Settings of one municipality. Ids from another plan get the generic defaults, so routing stays total.
    pub fn get(&self, id: MunicipalityId) -> &MunicipalitySettings {
        self.munis.get(id.index()).unwrap_or_else(|| MunicipalitySettings::generic())
    }

    /// A copy with one municipality's settings replaced; menus are recomputed. A menu digit that
    /// collides with another municipality's explicit digit is dropped (see [`Settings::warnings`]).
    pub fn with(&self, id: MunicipalityId, ms: MunicipalitySettings) -> Settings {
        let mut munis = self.munis.clone();
        if let Some(slot) = munis.get_mut(id.index()) {
            *slot = ms;
        }
        Settings::assemble(self.ctx.clone(), self.trunk.clone(), munis)
    }

    /// Like [`Settings::with`], but refuses a keypad digit that another municipality on the same
    /// area code already has (for editors such as the portal, which must show the conflict).
    pub fn try_with(&self, id: MunicipalityId, ms: MunicipalitySettings) -> Result<Settings, SettingsError> {
        let cbs = self.ctx.cbs.get(id.index()).cloned().unwrap_or_default();
        if let Some(d) = ms.menu_digit.iter().chain(ms.menu_digits.values()).find(|d| **d > 9) {
            return Err(SettingsError { line: None, field: format!("municipality.{cbs}.menu_digit"), message: format!("{d} is not a keypad digit 0-9") });
        }
        let next = self.with(id, ms);
        let (_, conflicts) = compute_menus(&next.ctx, &next.munis);
        match conflicts.into_iter().find(|c| c.municipality == id) {
            Some(c) => Err(SettingsError { line: None, field: format!("municipality.{cbs}.menu_digits.{}", c.code), message: c.message }),
            None => Ok(next),
        }
    }

    /// A copy with another trunk pattern (`{cbs}` is replaced by the CBS code).
    pub fn with_trunk(&self, pattern: &str) -> Result<Settings, SettingsError> {
        validate_trunk(pattern).map_err(|message| SettingsError { line: None, field: "platform.trunk".into(), message })?;
        let mut s = self.clone();
        s.trunk = pattern.to_string();
        Ok(s)
    }

    pub fn trunk(&self) -> &str {
        &self.trunk
    }

    /// Whether the trunk is still the placeholder that cannot route.
    pub fn trunk_is_placeholder(&self) -> bool {
        self.trunk.contains(".invalid")
    }

    /// The keypad menu of an area code in menu order (digits 1–9, 0; then entries without digit).
    pub fn menu(&self, area_code: AreaCodeId) -> &[MenuEntry] {
        self.menus.get(area_code.index()).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Which municipality a keypad digit selects on an area code.
    pub fn digit_choice(&self, area_code: AreaCodeId, digit: u8) -> Option<MunicipalityId> {
        self.menu(area_code).iter().find(|e| e.digit == Some(digit)).map(|e| e.municipality)
    }

    /// The concrete URI calls for `id` are sent to.
    pub fn destination_uri(&self, id: MunicipalityId) -> String {
        let cbs = self.ctx.cbs.get(id.index()).map(String::as_str).unwrap_or("");
        self.get(id).destination.uri(cbs, &self.trunk)
    }

    /// Municipalities whose destination is still the trunk placeholder ("to be configured").
    pub fn unconfigured(&self) -> impl Iterator<Item = MunicipalityId> + '_ {
        self.munis
            .iter()
            .enumerate()
            .filter(|(_, m)| m.destination == Destination::Trunk)
            .map(|(i, _)| MunicipalityId(i as u16))
    }

    /// Menu digit conflicts resolved by dropping a digit (only possible through [`Settings::with`]).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Parse a settings file. Municipalities not in the file keep their defaults.
    pub fn from_toml_str(s: &str, plan: &Plan) -> Result<Settings, SettingsError> {
        parse_toml(s, plan)
    }

    /// The settings as TOML that [`Settings::from_toml_str`] reads back to equal settings.
    pub fn to_toml_string(&self) -> String {
        write_toml(self)
    }
}

impl PartialEq for Settings {
    fn eq(&self, other: &Self) -> bool {
        self.trunk == other.trunk && self.munis == other.munis && self.ctx.cbs == other.ctx.cbs
    }
}

fn ctx_of(plan: &Plan) -> Arc<PlanCtx> {
    Arc::new(PlanCtx {
        cbs: plan.municipalities().iter().map(|m| m.cbs.clone()).collect(),
        names: plan.municipalities().iter().map(|m| m.name.clone()).collect(),
        codes: plan.area_codes().iter().map(|a| a.code.clone()).collect(),
        members: plan.area_codes().iter().map(|a| a.municipalities.clone()).collect(),
    })
}

struct Conflict {
    municipality: MunicipalityId,
    code: String,
    message: String,
}

/// Keypad menus per area code. Members are already in alphabetical order (the plan sorts them).
/// Explicit digits are placed first; the others take the lowest free digit in 1–9, 0 order, so a
/// municipality's automatic digit does not move when an unrelated explicit digit is set elsewhere
/// on another code.
fn compute_menus(ctx: &PlanCtx, munis: &[MunicipalitySettings]) -> (Vec<Vec<MenuEntry>>, Vec<Conflict>) {
    let generic = MunicipalitySettings::generic();
    let get = |m: MunicipalityId| munis.get(m.index()).unwrap_or(generic);
    let mut conflicts = Vec::new();
    let menus = ctx
        .members
        .iter()
        .zip(&ctx.codes)
        .map(|(members, code)| {
            let mut taken: [Option<MunicipalityId>; 10] = [None; 10];
            let mut entries: Vec<MenuEntry> = Vec::with_capacity(members.len());
            let advertised: Vec<MunicipalityId> =
                members.iter().copied().filter(|m| get(*m).status != ConnectionStatus::Technical).collect();
            let mut pending = Vec::new();
            for &m in &advertised {
                let s = get(m);
                match s.menu_digits.get(code).copied().or(s.menu_digit) {
                    Some(d) if (d as usize) < 10 && taken[d as usize].is_none() => {
                        taken[d as usize] = Some(m);
                        entries.push(MenuEntry { municipality: m, digit: Some(d), advertised: true });
                    }
                    Some(d) => {
                        let holder = taken.get(d as usize).copied().flatten();
                        conflicts.push(Conflict {
                            municipality: m,
                            code: code.clone(),
                            message: format!(
                                "area code {code}: digit {d} of {} is already taken{}",
                                ctx.names.get(m.index()).map(String::as_str).unwrap_or("?"),
                                holder
                                    .and_then(|h| ctx.names.get(h.index()))
                                    .map(|n| format!(" by {n}"))
                                    .unwrap_or_default()
                            ),
                        });
                        pending.push(m);
                    }
                    None => pending.push(m),
                }
            }
            for m in pending {
                let free = MENU_DIGITS.iter().copied().find(|d| taken[*d as usize].is_none());
                if let Some(d) = free {
                    taken[d as usize] = Some(m);
                }
                entries.push(MenuEntry { municipality: m, digit: free, advertised: true });
            }
            let order = |d: Option<u8>| match d {
                Some(0) => 10,
                Some(d) => d,
                None => 11,
            };
            entries.sort_by_key(|e| order(e.digit));
            for &m in members {
                if get(m).status == ConnectionStatus::Technical {
                    entries.push(MenuEntry { municipality: m, digit: None, advertised: false });
                }
            }
            entries
        })
        .collect();
    (menus, conflicts)
}

fn validate_trunk(p: &str) -> Result<(), String> {
    let l = p.to_ascii_lowercase();
    if !(l.starts_with("sip:") || l.starts_with("sips:")) || p.chars().any(char::is_whitespace) || !p.contains('@') {
        return Err(format!("'{p}' is not a SIP URI pattern like sip:{{cbs}}@kcc.example.nl"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// TOML

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    platform: Option<RawPlatform>,
    #[serde(default)]
    municipality: BTreeMap<Spanned<String>, Spanned<RawMuni>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    trunk: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMuni {
    name: Option<Spanned<String>>,
    status: Option<Spanned<String>>,
    destination: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    menu_digit: Option<Spanned<i64>>,
    menu_digits: Option<BTreeMap<Spanned<String>, Spanned<i64>>>,
    overflow: Option<Spanned<RawOverflow>>,
    calamity: Option<Spanned<RawCalamity>>,
    opening_hours: Option<Spanned<RawHours>>,
    forward_when_not_connected: Option<bool>,
    languages: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverflow {
    destination: Spanned<String>,
    no_answer_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalamity {
    #[serde(default)]
    active: bool,
    destination: Option<Spanned<String>>,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDay {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHours {
    monday: Option<Spanned<RawDay>>,
    tuesday: Option<Spanned<RawDay>>,
    wednesday: Option<Spanned<RawDay>>,
    thursday: Option<Spanned<RawDay>>,
    friday: Option<Spanned<RawDay>>,
    saturday: Option<Spanned<RawDay>>,
    sunday: Option<Spanned<RawDay>>,
    closed_on: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    exceptions: BTreeMap<Spanned<String>, Spanned<RawDay>>,
}

const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// Parses a destination from a settings file and applies the toll-fraud guard to telephone
/// numbers. SIP URIs in a file are the operator's own configuration and are not restricted to
/// trunk hosts here; the portal checks those against the configured trunks.
fn guarded_destination(s: &str) -> Result<Destination, String> {
    let d = Destination::parse(s)?;
    if let Destination::Tel(e164) = &d {
        crate::tollguard::check_e164(e164).map_err(|e| format!("{e} / {}", e.english()))?;
    }
    Ok(d)
}

fn parse_toml(src: &str, plan: &Plan) -> Result<Settings, SettingsError> {
    let raw: RawFile = toml::from_str(src).map_err(|e| {
        let line = e.span().map(|s| line_of(src, s.start));
        let msg = e.message().trim().to_string();
        SettingsError { line, field: String::new(), message: msg }
    })?;
    let err = |span: std::ops::Range<usize>, field: String, message: String| SettingsError {
        line: Some(line_of(src, span.start)),
        field,
        message,
    };
    let ctx = ctx_of(plan);
    let trunk = match raw.platform.and_then(|p| p.trunk) {
        Some(t) => {
            validate_trunk(t.get_ref()).map_err(|m| err(t.span(), "platform.trunk".into(), m))?;
            t.into_inner()
        }
        None => DEFAULT_TRUNK.to_string(),
    };
    let mut munis: Vec<MunicipalitySettings> =
        plan.municipalities().iter().map(|m| Settings::default_for(plan, m.id)).collect();
    let mut explicit: Vec<(MunicipalityId, usize)> = Vec::new();
    for (key, value) in raw.municipality {
        let cbs = key.get_ref().clone();
        let base = format!("municipality.{cbs}");
        let id = plan.by_cbs(&cbs).ok_or_else(|| {
            err(key.span(), base.clone(), format!("unknown municipality '{cbs}' (expected a CBS code such as GM0664 from the plan)"))
        })?;
        let mspan = value.span();
        let r = value.into_inner();
        let ms = &mut munis[id.index()];
        let m = plan.municipality(id);
        if let Some(n) = r.name
            && n.get_ref() != &m.name
            && n.get_ref() != &m.everyday_name
        {
            return Err(err(n.span(), format!("{base}.name"), format!("'{}' but {cbs} is {} in the plan", n.get_ref(), m.name)));
        }
        if let Some(s) = r.status {
            ms.status = ConnectionStatus::parse(s.get_ref()).ok_or_else(|| {
                err(s.span(), format!("{base}.status"), format!("'{}' is not one of active, technical, not_connected", s.get_ref()))
            })?;
        }
        let mut dest_set = false;
        if let Some(d) = r.destination {
            ms.destination = guarded_destination(d.get_ref()).map_err(|e| err(d.span(), format!("{base}.destination"), e))?;
            dest_set = true;
        }
        match r.mode {
            Some(mo) => {
                ms.mode = match mo.get_ref().as_str() {
                    "redirect" => DeliveryMode::Redirect,
                    "bridge" => DeliveryMode::Bridge,
                    other => return Err(err(mo.span(), format!("{base}.mode"), format!("'{other}' is not one of redirect, bridge"))),
                }
            }
            // A new destination without a mode gets the mode that suits its kind.
            None if dest_set => {
                ms.mode = match ms.destination {
                    Destination::Tel(_) => DeliveryMode::Redirect,
                    _ => DeliveryMode::Bridge,
                }
            }
            None => {}
        }
        let digit = |v: &Spanned<i64>, field: String| -> Result<u8, SettingsError> {
            let d = *v.get_ref();
            if (0..=9).contains(&d) { Ok(d as u8) } else { Err(err(v.span(), field, format!("{d} is not a keypad digit 0-9"))) }
        };
        if let Some(d) = &r.menu_digit {
            ms.menu_digit = Some(digit(d, format!("{base}.menu_digit"))?);
            explicit.push((id, d.span().start));
        }
        if let Some(map) = &r.menu_digits {
            for (code, d) in map {
                let field = format!("{base}.menu_digits.{}", code.get_ref());
                let Some(aid) = plan.area_code_id(code.get_ref()) else {
                    return Err(err(code.span(), field, format!("'{}' is not an area code of the plan", code.get_ref())));
                };
                if !plan.area_code_by_id(aid).municipalities.contains(&id) {
                    return Err(err(code.span(), field, format!("{} is not on area code {}", m.name, code.get_ref())));
                }
                ms.menu_digits.insert(plan.area_code_by_id(aid).code.clone(), digit(d, field)?);
                explicit.push((id, d.span().start));
            }
        }
        if let Some(o) = r.overflow {
            let o = o.into_inner();
            let destination = guarded_destination(o.destination.get_ref())
                .map_err(|e| err(o.destination.span(), format!("{base}.overflow.destination"), e))?;
            let secs = match o.no_answer_secs {
                Some(s) => {
                    let v = *s.get_ref();
                    if !(1..=600).contains(&v) {
                        return Err(err(s.span(), format!("{base}.overflow.no_answer_secs"), format!("{v} is not between 1 and 600 seconds")));
                    }
                    v as u16
                }
                None => DEFAULT_NO_ANSWER_SECS,
            };
            ms.overflow = Some(Overflow { destination, no_answer_secs: secs });
        }
        if let Some(c) = r.calamity {
            let cspan = c.span();
            let c = c.into_inner();
            let destination = match c.destination {
                Some(d) => Some(guarded_destination(d.get_ref()).map_err(|e| err(d.span(), format!("{base}.calamity.destination"), e))?),
                None => None,
            };
            if c.active && destination.is_none() && c.message.trim().is_empty() {
                return Err(err(cspan, format!("{base}.calamity"), "an active calamity needs a message or a destination".into()));
            }
            ms.calamity = Some(Calamity { active: c.active, destination, message: c.message });
        }
        if let Some(h) = r.opening_hours {
            ms.opening_hours = parse_hours(h.into_inner(), &base, &err)?;
        }
        if let Some(f) = r.forward_when_not_connected {
            ms.forward_when_not_connected = f;
        }
        if let Some(l) = r.languages {
            let span = l.span();
            let mut langs = Vec::new();
            for s in l.into_inner() {
                let lang = Lang::parse(&s)
                    .ok_or_else(|| err(span.clone(), format!("{base}.languages"), format!("'{s}' is not one of nl, en, fy, de")))?;
                if !langs.contains(&lang) {
                    langs.push(lang);
                }
            }
            if langs.is_empty() {
                return Err(err(span, format!("{base}.languages"), "at least one language is needed".into()));
            }
            ms.languages = langs;
        }
        let _ = mspan;
    }
    let (menus, conflicts) = compute_menus(&ctx, &munis);
    if let Some(c) = conflicts.into_iter().next() {
        let line = explicit.iter().filter(|(id, _)| *id == c.municipality).map(|(_, off)| line_of(src, *off)).max();
        let cbs = &ctx.cbs[c.municipality.index()];
        return Err(SettingsError { line, field: format!("municipality.{cbs}.menu_digits.{}", c.code), message: c.message });
    }
    Ok(Settings { trunk, munis, ctx, menus, warnings: Vec::new() })
}

fn parse_day(
    d: Spanned<RawDay>,
    field: String,
    err: &dyn Fn(std::ops::Range<usize>, String, String) -> SettingsError,
) -> Result<Vec<TimeRange>, SettingsError> {
    let span = d.span();
    let items = match d.into_inner() {
        RawDay::One(s) => vec![s],
        RawDay::Many(v) => v,
    };
    let mut out = Vec::new();
    for s in items {
        if s.trim().eq_ignore_ascii_case("closed") {
            continue;
        }
        out.push(TimeRange::parse(&s).map_err(|m| err(span.clone(), field.clone(), m))?);
    }
    out.sort();
    if out.windows(2).any(|w| w[1].from_min < w[0].to_min) {
        return Err(err(span, field, "time ranges overlap".into()));
    }
    Ok(out)
}

fn parse_hours(
    h: RawHours,
    base: &str,
    err: &dyn Fn(std::ops::Range<usize>, String, String) -> SettingsError,
) -> Result<OpeningHours, SettingsError> {
    let days = [h.monday, h.tuesday, h.wednesday, h.thursday, h.friday, h.saturday, h.sunday];
    let any_day = days.iter().any(Option::is_some);
    let mut weekly: [Vec<TimeRange>; 7] = Default::default();
    for (i, d) in days.into_iter().enumerate() {
        if let Some(d) = d {
            weekly[i] = parse_day(d, format!("{base}.opening_hours.{}", WEEKDAYS[i]), err)?;
        }
    }
    let closed_on = match h.closed_on {
        Some(list) => {
            let span = list.span();
            let mut v = Vec::new();
            for s in list.into_inner() {
                let hol = Holiday::ALL.into_iter().find(|x| holiday_name(*x) == s).ok_or_else(|| {
                    err(
                        span.clone(),
                        format!("{base}.opening_hours.closed_on"),
                        format!("'{s}' is not a holiday; use one of {}", Holiday::ALL.map(holiday_name).join(", ")),
                    )
                })?;
                if !v.contains(&hol) {
                    v.push(hol);
                }
            }
            v
        }
        // A schedule without an explicit holiday list closes on the usual holidays.
        None if any_day => Holiday::DEFAULT_CLOSED.to_vec(),
        None => Vec::new(),
    };
    let mut exceptions = BTreeMap::new();
    for (k, v) in h.exceptions {
        let field = format!("{base}.opening_hours.exceptions.{}", k.get_ref());
        let date: Date = k
            .get_ref()
            .parse()
            .map_err(|_| err(k.span(), field.clone(), format!("'{}' is not a date (YYYY-MM-DD)", k.get_ref())))?;
        exceptions.insert(date, parse_day(v, field, err)?);
    }
    Ok(OpeningHours { weekly: any_day.then_some(weekly), closed_on, exceptions })
}

pub fn holiday_name(h: Holiday) -> &'static str {
    match h {
        Holiday::Nieuwjaarsdag => "nieuwjaarsdag",
        Holiday::GoedeVrijdag => "goede_vrijdag",
        Holiday::EerstePaasdag => "eerste_paasdag",
        Holiday::TweedePaasdag => "tweede_paasdag",
        Holiday::Koningsdag => "koningsdag",
        Holiday::Bevrijdingsdag => "bevrijdingsdag",
        Holiday::Hemelvaartsdag => "hemelvaartsdag",
        Holiday::EerstePinksterdag => "eerste_pinksterdag",
        Holiday::TweedePinksterdag => "tweede_pinksterdag",
        Holiday::EersteKerstdag => "eerste_kerstdag",
        Holiday::TweedeKerstdag => "tweede_kerstdag",
    }
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn ranges(r: &[TimeRange]) -> String {
    if r.is_empty() {
        return q("closed");
    }
    format!("[{}]", r.iter().map(|t| q(&t.to_string())).collect::<Vec<_>>().join(", "))
}

fn write_toml(s: &Settings) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "# veertien settings: one table per municipality, keyed by CBS code.");
    let _ = writeln!(o, "# status: active | technical (reachable, not in the keypad menu) | not_connected");
    let _ = writeln!(o, "# destination: E.164 number, SIP URI, or \"trunk\" (= platform.trunk with {{cbs}} replaced;");
    let _ = writeln!(o, "#   used where the published general number is the 14+ number itself or cannot be used,");
    let _ = writeln!(o, "#   e.g. a premium-rate 0900 number: TO BE CONFIGURED)");
    let _ = writeln!(o, "# mode: redirect (302) | bridge (stay in the call)");
    let _ = writeln!(o, "# Municipalities left out of this file get these defaults.\n");
    let _ = writeln!(o, "[platform]\ntrunk = {}\n", q(&s.trunk));
    for (i, m) in s.munis.iter().enumerate() {
        let id = MunicipalityId(i as u16);
        let cbs = &s.ctx.cbs[i];
        let _ = writeln!(o, "[municipality.{cbs}]");
        let _ = writeln!(o, "name = {}", q(&s.ctx.names[i]));
        let _ = writeln!(o, "status = {}", q(m.status.as_str()));
        let _ = writeln!(o, "destination = {}", q(&m.destination.to_string()));
        let _ = writeln!(o, "mode = {}", q(m.mode.as_str()));
        if let Some(d) = m.menu_digit {
            let _ = writeln!(o, "menu_digit = {d}");
        }
        if !m.menu_digits.is_empty() {
            let parts: Vec<String> = m.menu_digits.iter().map(|(c, d)| format!("{} = {d}", q(c))).collect();
            let _ = writeln!(o, "menu_digits = {{ {} }}", parts.join(", "));
        }
        let auto: Vec<String> = s
            .menus
            .iter()
            .enumerate()
            .filter(|(_, menu)| menu.len() > 1)
            .filter_map(|(a, menu)| menu.iter().find(|e| e.municipality == id).map(|e| (a, e)))
            .map(|(a, e)| format!("{} → {}", s.ctx.codes[a], e.digit.map(|d| d.to_string()).unwrap_or_else(|| "-".into())))
            .collect();
        if !auto.is_empty() {
            let _ = writeln!(o, "# keypad: {}", auto.join(", "));
        }
        let _ = writeln!(o, "forward_when_not_connected = {}", m.forward_when_not_connected);
        let langs: Vec<String> = m.languages.iter().map(|l| q(l.as_str())).collect();
        let _ = writeln!(o, "languages = [{}]", langs.join(", "));
        if let Some(ov) = &m.overflow {
            let _ = writeln!(o, "overflow = {{ destination = {}, no_answer_secs = {} }}", q(&ov.destination.to_string()), ov.no_answer_secs);
        }
        if let Some(c) = &m.calamity {
            let dest = c.destination.as_ref().map(|d| format!(", destination = {}", q(&d.to_string()))).unwrap_or_default();
            let _ = writeln!(o, "calamity = {{ active = {}{dest}, message = {} }}", c.active, q(&c.message));
        }
        let h = &m.opening_hours;
        if !h.is_always_open() {
            let _ = writeln!(o, "[municipality.{cbs}.opening_hours]");
            if let Some(w) = &h.weekly {
                for (d, r) in WEEKDAYS.iter().zip(w.iter()) {
                    let _ = writeln!(o, "{d} = {}", ranges(r));
                }
            }
            let names: Vec<String> = h.closed_on.iter().map(|x| q(holiday_name(*x))).collect();
            let _ = writeln!(o, "closed_on = [{}]", names.join(", "));
            if !h.exceptions.is_empty() {
                let _ = writeln!(o, "[municipality.{cbs}.opening_hours.exceptions]");
                for (d, r) in &h.exceptions {
                    let _ = writeln!(o, "{} = {}", q(&d.to_string()), ranges(r));
                }
            }
        }
        o.push('\n');
    }
    o
}
