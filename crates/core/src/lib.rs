//! veertien-core: the national 14+ number plan, per-municipality settings, dialled-number
//! normalisation and the routing decision. Pure: the only I/O is [`Plan::load_dir`].
//!
//! ```
//! use veertien_core::{CallInfo, Decision, Plan, Settings, decide};
//!
//! let plan = Plan::builtin();
//! let settings = Settings::defaults(plan);
//! let now: jiff::Timestamp = "2026-03-11T09:00:00Z".parse().unwrap();
//!
//! // 14 0113 is shared by five municipalities: ask, with keypad digits in alphabetical order.
//! let d = decide(&CallInfo { dialled: "+31 14 0113", caller: Some("0113-212345") }, plan, &settings, now);
//! let Decision::Ask { candidates, caller_area_match, .. } = &d else { panic!() };
//! assert_eq!(candidates[0].municipality.name, "Borsele");
//! assert_eq!(candidates[0].digit, Some(1));
//! assert!(caller_area_match.is_some()); // said, never used to skip the question
//!
//! // The caller pressed 3: Kapelle.
//! let code = plan.area_code_id("0113").unwrap();
//! let kapelle = settings.digit_choice(code, 3).unwrap();
//! let d = veertien_core::decide_for(kapelle, code, plan, &settings, now);
//! assert!(matches!(d, Decision::Forward { .. }));
//! assert_eq!(serde_json::to_value(&d).unwrap()["municipality"], "Kapelle");
//! ```

pub mod decide;
pub mod hours;
pub mod number;
pub mod plan;
pub mod settings;
pub mod text;
pub mod tollguard;

pub use decide::{
    AnnounceReason, CallInfo, CallerAreaMatch, Candidate, Decision, GeneralNumberInfo, MunicipalityRef, RejectReason, RouteStep,
    decide, decide_for,
};
pub use hours::{Holiday, OpeningHours, TimeRange, easter_sunday};
pub use number::{FourteenNumber, NormaliseError, PhoneNumber, normalise, parse_phone};
pub use plan::{
    AreaCode, AreaCodeId, DataIssue, FormerMunicipality, GeneralNumber, GeneralNumberKind, MergerEvent, MergerEventKind,
    Municipality, MunicipalityId, Place, Plan, PlanCounts, PlanError, PlanSources, PlanWarning, SuccessorEvidence,
};
pub use tollguard::{ForbiddenDestination, check_destination, check_e164};
pub use settings::{
    Calamity, ConnectionStatus, DeliveryMode, Destination, Lang, MenuEntry, MunicipalitySettings, NoDefaultDestination,
    Overflow, Settings, SettingsError,
};
