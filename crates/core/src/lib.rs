//! veertien-core: the national 14+ number plan, per-municipality settings, dialled-number
//! normalisation and the routing decision. Pure: the only I/O is [`Plan::load_dir`].

pub mod decide;
pub mod hours;
pub mod number;
pub mod plan;
pub mod settings;
pub mod text;

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
pub use settings::{
    Calamity, ConnectionStatus, DeliveryMode, Destination, Lang, MenuEntry, MunicipalitySettings, Overflow, Settings,
    SettingsError,
};
