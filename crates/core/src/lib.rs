//! veertien-core: the national 14+ number plan, per-municipality settings, dialled-number
//! normalisation and the routing decision. Pure: the only I/O is [`Plan::load_dir`].

pub mod number;
pub mod plan;
pub mod text;

pub use number::{FourteenNumber, NormaliseError, PhoneNumber, normalise, parse_phone};
pub use plan::{
    AreaCode, AreaCodeId, DataIssue, FormerMunicipality, GeneralNumber, GeneralNumberKind, MergerEvent, MergerEventKind,
    Municipality, MunicipalityId, Place, Plan, PlanCounts, PlanError, PlanSources, PlanWarning, SuccessorEvidence,
};
