//! The national 14+ number plan: municipalities, area codes, places, general numbers and mergers.
//!
//! A [`Plan`] is built once (from the embedded data, or from an operator's corrected files) and is
//! immutable afterwards; every lookup the routing decision needs is an index built at load time.
//! Loading is all-or-nothing: any problem in any file refuses the whole plan, naming file, line and
//! reason, so a half-corrected plan can never route calls.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;

use crate::number::{self, PhoneNumber};
use crate::text::{fold, sort_key};

/// Index of a municipality in [`Plan::municipalities`]. Only meaningful for the plan that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MunicipalityId(pub u16);

impl MunicipalityId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of an area code in [`Plan::area_codes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AreaCodeId(pub u16);

impl AreaCodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Municipality {
    pub id: MunicipalityId,
    /// CBS code, e.g. "GM0664".
    pub cbs: String,
    /// CBS name, e.g. "Kapelle", "'s-Hertogenbosch".
    pub name: String,
    /// The name people use (ROO short name), e.g. "Den Bosch", "Den Haag". Equals `name` where ROO has none.
    pub everyday_name: String,
    /// ROO official name, e.g. "Gemeente 's-Hertogenbosch".
    pub official_name: String,
    pub province: String,
    pub population: u32,
    /// Area codes this municipality is known to be served by, in plan order (ascending code).
    pub area_codes: Vec<AreaCodeId>,
    pub general_number: GeneralNumber,
}

/// How a municipality's published general number is written and what kind of number it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneralNumber {
    /// As published, e.g. "14 0113", "(0297) 38 75 75", "(0900) 18 52".
    pub raw: String,
    pub kind: GeneralNumberKind,
    /// Dialable E.164 form ("+31297387575"); `None` for a 14+ number, which only exists inside the Netherlands.
    pub e164: Option<String>,
    /// The 14+ number without separators ("140113") when `kind` is `Fourteen`.
    pub fourteen: Option<String>,
    /// Area code of the number ("0113"), for 14+ and geographic numbers.
    pub area_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GeneralNumberKind {
    /// The general number is itself a 14+ number: evidence the municipality is connected.
    Fourteen,
    Geographic,
    /// 0800, 0900, 088, ...
    NonGeographic,
}

#[derive(Debug, Clone, Serialize)]
pub struct AreaCode {
    pub id: AreaCodeId,
    /// "0113"
    pub code: String,
    /// "140113"
    pub fourteen: String,
    /// Name of the netnummergebied in the Nummerplan, e.g. "Goes".
    pub region_name: String,
    /// libphonenumber's name for the region where it differs ("Nieuw-Vennep" for 0252), else empty.
    pub alt_region_name: String,
    /// Municipalities served, in menu order: alphabetical by CBS name, ignoring case, diacritics and a leading apostrophe.
    pub municipalities: Vec<MunicipalityId>,
}

impl AreaCode {
    pub fn is_shared(&self) -> bool {
        self.municipalities.len() > 1
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Place {
    /// As listed, e.g. "Velp GLD".
    pub name: String,
    /// Without the PostNL qualifier, e.g. "Velp".
    pub base_name: String,
    /// "GLD", "NB", "Gem Voorst", ... `None` when the name has no qualifier.
    pub qualifier: Option<String>,
    pub municipality: MunicipalityId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MergerEventKind {
    /// The municipality ceased to exist ("opgeheven").
    Ended,
    /// The municipality was created ("nieuw").
    Created,
}

/// One row of herindelingen.csv.
#[derive(Debug, Clone, Serialize)]
pub struct MergerEvent {
    pub date: jiff::civil::Date,
    pub kind: MergerEventKind,
    pub cbs: String,
    pub name: String,
    pub province: String,
}

/// A municipality that no longer exists, with its successor where the data lets us derive it.
#[derive(Debug, Clone, Serialize)]
pub struct FormerMunicipality {
    pub cbs: String,
    pub name: String,
    pub province: String,
    pub ended: jiff::civil::Date,
    pub successor: Option<MunicipalityId>,
    pub evidence: SuccessorEvidence,
}

/// Why a former municipality was linked to its successor. herindelingen.csv lists events, not
/// mappings, so the link comes from the place list: the old municipality's name survives as a
/// place (or as the tail of place names, e.g. Beemster → Middenbeemster) of exactly one current
/// municipality. Same-date "new" municipalities are deliberately *not* used: in 2016 Zeevang went to
/// an existing municipality while Gooise Meren was created in the same province on the same day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuccessorEvidence {
    /// A place with exactly the former municipality's name (in its province where the name is ambiguous).
    PlaceName,
    /// Place names ending in the former name, all in one municipality.
    PlaceNameSuffix,
    /// Not derivable from the shipped data.
    None,
}

/// A non-fatal finding shown by `veertien plan check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanWarning {
    pub file: String,
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for PlanWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// One problem in one data file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataIssue {
    pub file: String,
    /// 1-based line number in the file (the header is line 1); `None` for problems of a whole file.
    pub line: Option<u64>,
    pub column: Option<String>,
    pub reason: String,
}

impl fmt::Display for DataIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(c) = &self.column {
            write!(f, ": column {c}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found; the plan is refused as a whole.
    #[error("{}", format_issues(.0))]
    Invalid(Vec<DataIssue>),
}

impl PlanError {
    /// The problems found, empty for an I/O error.
    pub fn issues(&self) -> &[DataIssue] {
        match self {
            PlanError::Io { .. } => &[],
            PlanError::Invalid(v) => v,
        }
    }
}

fn format_issues(v: &[DataIssue]) -> String {
    const SHOWN: usize = 20;
    let mut s = format!("number plan refused ({} problem{}):", v.len(), if v.len() == 1 { "" } else { "s" });
    for i in v.iter().take(SHOWN) {
        s.push_str("\n  ");
        s.push_str(&i.to_string());
    }
    if v.len() > SHOWN {
        s.push_str(&format!("\n  ... and {} more", v.len() - SHOWN));
    }
    s
}

/// The file names of a plan directory, in the format shipped in `data/numberplan/`.
pub const FILE_MUNICIPALITIES: &str = "gemeenten.csv";
pub const FILE_CONTACT: &str = "gemeenten_contact.csv";
pub const FILE_AREA_CODES: &str = "netnummergebieden.csv";
pub const FILE_PAIRS: &str = "netnummers.csv";
pub const FILE_PLACES: &str = "woonplaatsen.csv";
pub const FILE_MERGERS: &str = "herindelingen.csv";

/// The text of the six plan files. Pure input for [`Plan::from_sources`].
#[derive(Debug, Clone, Copy)]
pub struct PlanSources<'a> {
    pub municipalities: &'a str,
    pub contact: &'a str,
    pub area_codes: &'a str,
    pub pairs: &'a str,
    pub places: &'a str,
    pub mergers: &'a str,
}

impl PlanSources<'static> {
    /// The plan shipped in `data/numberplan/`, compiled into the binary.
    pub fn builtin() -> Self {
        PlanSources {
            municipalities: include_str!("../../../data/numberplan/gemeenten.csv"),
            contact: include_str!("../../../data/numberplan/gemeenten_contact.csv"),
            area_codes: include_str!("../../../data/numberplan/netnummergebieden.csv"),
            pairs: include_str!("../../../data/numberplan/netnummers.csv"),
            places: include_str!("../../../data/numberplan/woonplaatsen.csv"),
            mergers: include_str!("../../../data/numberplan/herindelingen.csv"),
        }
    }
}

/// Counts shown by `plan check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlanCounts {
    pub municipalities: usize,
    pub area_codes: usize,
    pub pairs: usize,
    pub shared_area_codes: usize,
    pub places: usize,
    pub merger_events: usize,
    pub fourteen_general_numbers: usize,
}

#[derive(Clone)]
pub struct Plan {
    municipalities: Vec<Municipality>,
    area_codes: Vec<AreaCode>,
    places: Vec<Place>,
    merger_events: Vec<MergerEvent>,
    former: Vec<FormerMunicipality>,
    warnings: Vec<PlanWarning>,
    by_cbs: HashMap<String, MunicipalityId>,
    /// Area code lookup without hashing: index by the digits after the leading 0
    /// (two digits → `code2`, three → `code3`).
    code2: Box<[Option<AreaCodeId>; 100]>,
    code3: Box<[Option<AreaCodeId>; 1000]>,
    places_of: Vec<Vec<u32>>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The full model is thousands of rows; counts are what a reader of a log needs.
        f.debug_struct("Plan").field("counts", &self.counts()).field("warnings", &self.warnings.len()).finish()
    }
}

impl Plan {
    /// The shipped plan, parsed once on first use.
    pub fn builtin() -> &'static Plan {
        static PLAN: OnceLock<Plan> = OnceLock::new();
        PLAN.get_or_init(|| {
            Plan::from_sources(&PlanSources::builtin())
                .unwrap_or_else(|e| panic!("the shipped number plan is invalid (a build defect): {e}"))
        })
    }

    /// Load a plan from a directory holding the six files in the shipped format.
    pub fn load_dir(dir: &Path) -> Result<Plan, PlanError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| PlanError::Io { path, source })
        };
        let municipalities = read(FILE_MUNICIPALITIES)?;
        let contact = read(FILE_CONTACT)?;
        let area_codes = read(FILE_AREA_CODES)?;
        let pairs = read(FILE_PAIRS)?;
        let places = read(FILE_PLACES)?;
        let mergers = read(FILE_MERGERS)?;
        Plan::from_sources(&PlanSources {
            municipalities: &municipalities,
            contact: &contact,
            area_codes: &area_codes,
            pairs: &pairs,
            places: &places,
            mergers: &mergers,
        })
    }

    /// Parse and validate. Pure: no file system access.
    pub fn from_sources(src: &PlanSources<'_>) -> Result<Plan, PlanError> {
        build(src)
    }

    pub fn municipalities(&self) -> &[Municipality] {
        &self.municipalities
    }
    pub fn area_codes(&self) -> &[AreaCode] {
        &self.area_codes
    }
    pub fn places(&self) -> &[Place] {
        &self.places
    }
    pub fn merger_events(&self) -> &[MergerEvent] {
        &self.merger_events
    }
    /// Every municipality that ended (2016 onwards in the shipped data), with its successor where derivable.
    pub fn former_municipalities(&self) -> &[FormerMunicipality] {
        &self.former
    }
    /// Non-fatal findings (gaps an operator should know about).
    pub fn warnings(&self) -> &[PlanWarning] {
        &self.warnings
    }

    /// # Panics
    /// If `id` was not issued by this plan.
    pub fn municipality(&self, id: MunicipalityId) -> &Municipality {
        &self.municipalities[id.index()]
    }
    pub fn get_municipality(&self, id: MunicipalityId) -> Option<&Municipality> {
        self.municipalities.get(id.index())
    }
    /// # Panics
    /// If `id` was not issued by this plan.
    pub fn area_code_by_id(&self, id: AreaCodeId) -> &AreaCode {
        &self.area_codes[id.index()]
    }

    /// Look up by CBS code ("GM0664"; case-insensitive).
    pub fn by_cbs(&self, cbs: &str) -> Option<MunicipalityId> {
        if let Some(id) = self.by_cbs.get(cbs) {
            return Some(*id);
        }
        self.by_cbs.get(&cbs.to_ascii_uppercase()).copied()
    }

    /// Look up a municipality by CBS name, everyday name or official name, ignoring case and diacritics.
    pub fn by_name(&self, name: &str) -> Option<MunicipalityId> {
        let key = fold(name);
        self.municipalities
            .iter()
            .find(|m| fold(&m.name) == key || fold(&m.everyday_name) == key || fold(&m.official_name) == key)
            .map(|m| m.id)
    }

    /// Look up an area code written as "0113" (also accepts "113").
    pub fn area_code(&self, code: &str) -> Option<&AreaCode> {
        self.area_code_id(code).map(|id| &self.area_codes[id.index()])
    }

    pub fn area_code_id(&self, code: &str) -> Option<AreaCodeId> {
        let b = code.as_bytes();
        let digits = match b.first() {
            Some(b'0') => &b[1..],
            _ => b,
        };
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let value = digits.iter().fold(0usize, |acc, d| acc * 10 + (d - b'0') as usize);
        match digits.len() {
            2 => self.code2[value],
            3 => self.code3[value],
            _ => None,
        }
    }

    /// The area code that a national significant number ("113123456", without the leading 0) begins with.
    pub fn area_code_of_nsn(&self, nsn: &str) -> Option<AreaCodeId> {
        let b = nsn.as_bytes();
        if b.len() >= 2
            && let Some(id) = self.area_code_id(&nsn[..2])
        {
            return Some(id);
        }
        if b.len() >= 3 {
            return self.area_code_id(&nsn[..3]);
        }
        None
    }

    pub fn area_codes_of(&self, id: MunicipalityId) -> impl Iterator<Item = &AreaCode> {
        self.municipalities[id.index()].area_codes.iter().map(|a| &self.area_codes[a.index()])
    }

    pub fn places_of(&self, id: MunicipalityId) -> impl Iterator<Item = &Place> {
        self.places_of
            .get(id.index())
            .into_iter()
            .flatten()
            .map(|i| &self.places[*i as usize])
    }

    pub fn counts(&self) -> PlanCounts {
        PlanCounts {
            municipalities: self.municipalities.len(),
            area_codes: self.area_codes.len(),
            pairs: self.area_codes.iter().map(|a| a.municipalities.len()).sum(),
            shared_area_codes: self.area_codes.iter().filter(|a| a.is_shared()).count(),
            places: self.places.len(),
            merger_events: self.merger_events.len(),
            fourteen_general_numbers: self
                .municipalities
                .iter()
                .filter(|m| m.general_number.kind == GeneralNumberKind::Fourteen)
                .count(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// A CSV file read by header name, so operators may reorder or add columns.
struct Table<'a> {
    file: &'static str,
    header: csv::StringRecord,
    rows: Vec<(u64, csv::StringRecord)>,
    issues: &'a mut Vec<DataIssue>,
}

impl<'a> Table<'a> {
    fn parse(file: &'static str, text: &str, issues: &'a mut Vec<DataIssue>) -> Table<'a> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .flexible(false)
            .from_reader(text.as_bytes());
        let header = match rdr.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                issues.push(DataIssue { file: file.into(), line: Some(1), column: None, reason: e.to_string() });
                csv::StringRecord::new()
            }
        };
        if header.is_empty() || header.iter().all(str::is_empty) {
            issues.push(DataIssue {
                file: file.into(),
                line: Some(1),
                column: None,
                reason: "the file is empty; a header line is required".into(),
            });
        }
        let mut rows = Vec::new();
        for rec in rdr.records() {
            match rec {
                Ok(r) => {
                    let line = r.position().map(|p| p.line()).unwrap_or(0);
                    if r.iter().all(str::is_empty) {
                        continue;
                    }
                    rows.push((line, r));
                }
                Err(e) => {
                    let line = e.position().map(|p| p.line());
                    let reason = match e.kind() {
                        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                            format!("has {len} fields, the header has {expected_len}")
                        }
                        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_string(),
                        _ => e.to_string(),
                    };
                    issues.push(DataIssue { file: file.into(), line, column: None, reason });
                }
            }
        }
        Table { file, header, rows, issues }
    }

    /// Column index of a required column; records an issue when missing.
    fn col(&mut self, name: &str) -> Option<usize> {
        let i = self.header.iter().position(|h| h == name);
        if i.is_none() && !self.header.is_empty() {
            self.issues.push(DataIssue {
                file: self.file.into(),
                line: Some(1),
                column: Some(name.into()),
                reason: format!("required column '{name}' is missing from the header"),
            });
        }
        i
    }

    fn opt_col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    fn issue(&mut self, line: u64, column: &str, reason: impl Into<String>) {
        self.issues.push(DataIssue {
            file: self.file.into(),
            line: Some(line),
            column: (!column.is_empty()).then(|| column.to_string()),
            reason: reason.into(),
        });
    }
}

fn get(r: &csv::StringRecord, i: Option<usize>) -> &str {
    i.and_then(|i| r.get(i)).unwrap_or("")
}

fn valid_cbs(s: &str) -> bool {
    s.len() == 6 && s.starts_with("GM") && s[2..].bytes().all(|b| b.is_ascii_digit())
}

/// Geographic area codes are 0 + two or three digits, first digit 1–5 or 7
/// (06 is mobile, 08x/09x non-geographic; Nummerplan Bijlage 1).
fn valid_area_code(s: &str) -> bool {
    let b = s.as_bytes();
    (b.len() == 3 || b.len() == 4)
        && b[0] == b'0'
        && matches!(b[1], b'1'..=b'5' | b'7')
        && b[1..].iter().all(u8::is_ascii_digit)
}

fn build(src: &PlanSources<'_>) -> Result<Plan, PlanError> {
    let mut issues = Vec::new();
    let mut warnings = Vec::new();

    // --- gemeenten.csv
    let mut municipalities: Vec<Municipality> = Vec::new();
    let mut by_cbs: HashMap<String, MunicipalityId> = HashMap::new();
    let mut muni_line: Vec<u64> = Vec::new();
    {
        let mut t = Table::parse(FILE_MUNICIPALITIES, src.municipalities, &mut issues);
        let (c_cbs, c_name, c_prov, c_pop) = (t.col("cbs_code"), t.col("name"), t.col("province"), t.col("population"));
        let (c_short, c_off) = (t.opt_col("roo_short_name"), t.opt_col("roo_official_name"));
        let rows = std::mem::take(&mut t.rows);
        for (line, r) in &rows {
            let (cbs, name, prov, pop) = (get(r, c_cbs), get(r, c_name), get(r, c_prov), get(r, c_pop));
            let mut ok = true;
            if !valid_cbs(cbs) {
                t.issue(*line, "cbs_code", format!("'{cbs}' is not a CBS municipality code (GM + 4 digits)"));
                ok = false;
            } else if let Some(prev) = by_cbs.get(cbs) {
                let prev_line = muni_line[prev.index()];
                t.issue(*line, "cbs_code", format!("duplicate municipality {cbs} (first on line {prev_line})"));
                ok = false;
            }
            if name.is_empty() {
                t.issue(*line, "name", "empty municipality name");
                ok = false;
            }
            if prov.is_empty() {
                t.issue(*line, "province", "empty province");
                ok = false;
            }
            let population = match pop.parse::<u32>() {
                Ok(p) => p,
                Err(_) => {
                    t.issue(*line, "population", format!("'{pop}' is not a whole number of inhabitants"));
                    ok = false;
                    0
                }
            };
            if !ok {
                continue;
            }
            let id = MunicipalityId(municipalities.len() as u16);
            let short = get(r, c_short);
            let official = get(r, c_off);
            by_cbs.insert(cbs.to_string(), id);
            muni_line.push(*line);
            municipalities.push(Municipality {
                id,
                cbs: cbs.into(),
                name: name.into(),
                everyday_name: if short.is_empty() { name.into() } else { short.into() },
                official_name: if official.is_empty() { format!("Gemeente {name}") } else { official.into() },
                province: prov.into(),
                population,
                area_codes: Vec::new(),
                general_number: GeneralNumber {
                    raw: String::new(),
                    kind: GeneralNumberKind::Geographic,
                    e164: None,
                    fourteen: None,
                    area_code: None,
                },
            });
            if municipalities.len() > u16::MAX as usize {
                t.issue(*line, "", "too many municipalities");
                break;
            }
        }
        if rows.is_empty() && !t.header.is_empty() {
            t.issues.push(DataIssue {
                file: FILE_MUNICIPALITIES.into(),
                line: None,
                column: None,
                reason: "no municipalities".into(),
            });
        }
    }
    fn name_matches(munis: &[Municipality], id: MunicipalityId, given: &str) -> bool {
        given.is_empty() || munis[id.index()].name == given
    }

    // --- netnummergebieden.csv
    let mut area_codes: Vec<AreaCode> = Vec::new();
    let mut code_line: HashMap<String, u64> = HashMap::new();
    let mut summary: Vec<(u64, String)> = Vec::new();
    {
        let mut t = Table::parse(FILE_AREA_CODES, src.area_codes, &mut issues);
        let (c_code, c_14, c_name) = (t.col("area_code"), t.col("fourteen_number"), t.col("nummerplan_name"));
        let (c_alt, c_sum) = (t.opt_col("libphonenumber_name_nl"), t.opt_col("municipality_cbs_codes"));
        let rows = std::mem::take(&mut t.rows);
        for (line, r) in &rows {
            let (code, fourteen, name) = (get(r, c_code), get(r, c_14), get(r, c_name));
            if !valid_area_code(code) {
                t.issue(
                    *line,
                    "area_code",
                    format!("'{code}' is not a geographic area code (0 followed by 2 or 3 digits, not 06/08/09)"),
                );
                continue;
            }
            if let Some(prev) = code_line.get(code) {
                t.issue(*line, "area_code", format!("duplicate area code {code} (first on line {prev})"));
                continue;
            }
            let expected = format!("14{code}");
            if fourteen != expected {
                let want = if code.len() == 3 { 5 } else { 6 };
                t.issue(
                    *line,
                    "fourteen_number",
                    format!("'{fourteen}' does not match area code {code}: expected {expected} ({want} digits)"),
                );
                continue;
            }
            if name.is_empty() {
                t.issue(*line, "nummerplan_name", format!("empty region name for area code {code}"));
                continue;
            }
            let alt = get(r, c_alt);
            code_line.insert(code.to_string(), *line);
            summary.push((*line, get(r, c_sum).to_string()));
            area_codes.push(AreaCode {
                id: AreaCodeId(area_codes.len() as u16),
                code: code.into(),
                fourteen: fourteen.to_string(),
                region_name: name.into(),
                alt_region_name: if alt == name { String::new() } else { alt.into() },
                municipalities: Vec::new(),
            });
        }
    }
    // Codes must be prefix-free, otherwise a 14+ number or a caller's number could be read two ways.
    for a in &area_codes {
        for b in &area_codes {
            if a.code.len() < b.code.len() && b.code.starts_with(&a.code) {
                issues.push(DataIssue {
                    file: FILE_AREA_CODES.into(),
                    line: code_line.get(&b.code).copied(),
                    column: Some("area_code".into()),
                    reason: format!("area code {} begins with area code {}: numbers would be ambiguous", b.code, a.code),
                });
            }
        }
    }
    let mut code2 = Box::new([None; 100]);
    let mut code3 = Box::new([None; 1000]);
    for a in &area_codes {
        let v: usize = a.code[1..].parse().unwrap_or(0);
        if a.code.len() == 3 {
            code2[v] = Some(a.id);
        } else {
            code3[v] = Some(a.id);
        }
    }
    let code_id = |code: &str| -> Option<AreaCodeId> {
        let v: usize = code.get(1..)?.parse().ok()?;
        match code.len() {
            3 => code2[v],
            4 => code3[v],
            _ => None,
        }
    };

    // --- netnummers.csv
    let mut pair_line: HashMap<(AreaCodeId, MunicipalityId), u64> = HashMap::new();
    {
        let mut t = Table::parse(FILE_PAIRS, src.pairs, &mut issues);
        let (c_code, c_cbs) = (t.col("area_code"), t.col("municipality_cbs_code"));
        let (c_name, c_14) = (t.opt_col("municipality_name"), t.opt_col("fourteen_number"));
        let rows = std::mem::take(&mut t.rows);
        for (line, r) in &rows {
            let (code, cbs) = (get(r, c_code), get(r, c_cbs));
            let Some(aid) = code_id(code).filter(|_| valid_area_code(code)) else {
                t.issue(*line, "area_code", format!("area code '{code}' is not in {FILE_AREA_CODES}"));
                continue;
            };
            let Some(&mid) = by_cbs.get(cbs) else {
                t.issue(*line, "municipality_cbs_code", format!("unknown municipality '{cbs}' (not in {FILE_MUNICIPALITIES})"));
                continue;
            };
            let given = get(r, c_name);
            if !name_matches(&municipalities, mid, given) {
                t.issue(
                    *line,
                    "municipality_name",
                    format!("'{given}' but {cbs} is '{}' in {FILE_MUNICIPALITIES}", municipalities[mid.index()].name),
                );
                continue;
            }
            let f = get(r, c_14);
            if !f.is_empty() && f != format!("14{code}") {
                t.issue(*line, "fourteen_number", format!("'{f}' does not match area code {code}"));
                continue;
            }
            if let Some(prev) = pair_line.get(&(aid, mid)) {
                t.issue(*line, "", format!("duplicate pair {code} / {cbs} (first on line {prev})"));
                continue;
            }
            pair_line.insert((aid, mid), *line);
            area_codes[aid.index()].municipalities.push(mid);
            municipalities[mid.index()].area_codes.push(aid);
        }
    }
    for a in &mut area_codes {
        a.municipalities.sort_by_cached_key(|m| (sort_key(&municipalities[m.index()].name), m.0));
    }
    for m in &mut municipalities {
        m.area_codes.sort_by(|x, y| area_codes[x.index()].code.cmp(&area_codes[y.index()].code));
    }
    for (a, (line, sum)) in area_codes.iter().zip(&summary) {
        if a.municipalities.is_empty() {
            issues.push(DataIssue {
                file: FILE_PAIRS.into(),
                line: None,
                column: None,
                reason: format!(
                    "area code {} ({}, {FILE_AREA_CODES} line {line}) has no municipality: calls to {} could not be routed",
                    a.code, a.region_name, a.fourteen
                ),
            });
            continue;
        }
        // The per-code summary column is derived data; disagreement means one file was corrected
        // and the other not, which the operator should see but which must not block loading.
        if !sum.is_empty() {
            let mut listed: Vec<&str> = sum.split(';').map(str::trim).filter(|s| !s.is_empty()).collect();
            listed.sort_unstable();
            let mut actual: Vec<&str> = a.municipalities.iter().map(|m| municipalities[m.index()].cbs.as_str()).collect();
            actual.sort_unstable();
            if listed != actual {
                warnings.push(PlanWarning {
                    file: FILE_AREA_CODES.into(),
                    line: Some(*line),
                    message: format!(
                        "summary of {} lists {} but {FILE_PAIRS} has {}; {FILE_PAIRS} is used",
                        a.code,
                        listed.join(";"),
                        actual.join(";")
                    ),
                });
            }
        }
    }

    // --- gemeenten_contact.csv
    {
        let mut seen: HashMap<MunicipalityId, u64> = HashMap::new();
        let mut t = Table::parse(FILE_CONTACT, src.contact, &mut issues);
        let (c_cbs, c_raw) = (t.col("cbs_code"), t.col("general_phone_raw"));
        let (c_name, c_kind) = (t.opt_col("name"), t.opt_col("phone_kind"));
        let rows = std::mem::take(&mut t.rows);
        for (line, r) in &rows {
            let (cbs, raw) = (get(r, c_cbs), get(r, c_raw));
            let Some(&mid) = by_cbs.get(cbs) else {
                t.issue(*line, "cbs_code", format!("unknown municipality '{cbs}' (not in {FILE_MUNICIPALITIES})"));
                continue;
            };
            if let Some(prev) = seen.get(&mid) {
                t.issue(*line, "cbs_code", format!("second contact row for {cbs} (first on line {prev})"));
                continue;
            }
            seen.insert(mid, *line);
            let given = get(r, c_name);
            if !name_matches(&municipalities, mid, given) {
                t.issue(*line, "name", format!("'{given}' but {cbs} is '{}' in {FILE_MUNICIPALITIES}", municipalities[mid.index()].name));
                continue;
            }
            if raw.is_empty() {
                t.issue(*line, "general_phone_raw", format!("no general number for {cbs}"));
                continue;
            }
            let gn = match parse_general_number(raw) {
                Ok(g) => g,
                Err(reason) => {
                    t.issue(*line, "general_phone_raw", format!("'{raw}': {reason}"));
                    continue;
                }
            };
            let kind = get(r, c_kind);
            let expected_kind = match gn.kind {
                GeneralNumberKind::Fourteen => "14+netnummer",
                GeneralNumberKind::Geographic => "geographic",
                GeneralNumberKind::NonGeographic => "non-geographic",
            };
            if !kind.is_empty() && kind != expected_kind {
                t.issue(*line, "phone_kind", format!("'{kind}' but '{raw}' is a {expected_kind} number"));
                continue;
            }
            let mut gn = gn;
            if gn.kind == GeneralNumberKind::Geographic {
                let nsn = gn.e164.as_deref().and_then(|e| e.strip_prefix("+31")).unwrap_or("");
                let found = [2usize, 3].iter().filter_map(|n| nsn.get(..*n)).find_map(|p| code_id(&format!("0{p}")));
                match found {
                    Some(aid) => gn.area_code = Some(area_codes[aid.index()].code.clone()),
                    None => {
                        t.issue(*line, "general_phone_raw", format!("'{raw}': its area code is not in {FILE_AREA_CODES}"));
                        continue;
                    }
                }
            }
            if let Some(code) = &gn.area_code {
                if code_id(code).is_none() {
                    let what = if gn.kind == GeneralNumberKind::Fourteen { "14+ number" } else { "number" };
                    t.issue(*line, "general_phone_raw", format!("'{raw}': the {what} uses area code {code}, which is not in {FILE_AREA_CODES}"));
                    continue;
                }
                if gn.kind == GeneralNumberKind::Fourteen {
                    let aid = code_id(code).expect("checked above");
                    if !municipalities[mid.index()].area_codes.contains(&aid) {
                        warnings.push(PlanWarning {
                            file: FILE_CONTACT.into(),
                            line: Some(*line),
                            message: format!(
                                "{} publishes {} but {FILE_PAIRS} does not list it on area code {code}",
                                municipalities[mid.index()].name, gn.raw
                            ),
                        });
                    }
                }
            }
            municipalities[mid.index()].general_number = gn;
        }
        for m in &municipalities {
            if !seen.contains_key(&m.id) {
                t.issues.push(DataIssue {
                    file: FILE_CONTACT.into(),
                    line: None,
                    column: None,
                    reason: format!("no row for {} {} ({FILE_MUNICIPALITIES} line {})", m.cbs, m.name, muni_line[m.id.index()]),
                });
            }
        }
    }
    for m in &municipalities {
        if m.area_codes.is_empty() {
            warnings.push(PlanWarning {
                file: FILE_PAIRS.into(),
                line: None,
                message: format!("{} ({}) is on no area code: reachable only by name from another code", m.name, m.cbs),
            });
        }
    }

    // --- woonplaatsen.csv
    let mut places: Vec<Place> = Vec::new();
    let mut places_of: Vec<Vec<u32>> = vec![Vec::new(); municipalities.len()];
    {
        let mut seen: HashMap<(String, MunicipalityId), u64> = HashMap::new();
        let mut t = Table::parse(FILE_PLACES, src.places, &mut issues);
        let (c_place, c_cbs) = (t.col("place"), t.col("municipality_cbs_code"));
        let (c_base, c_q, c_name) = (t.opt_col("place_base_name"), t.opt_col("place_qualifier"), t.opt_col("municipality_name"));
        let rows = std::mem::take(&mut t.rows);
        for (line, r) in &rows {
            let (place, cbs) = (get(r, c_place), get(r, c_cbs));
            if place.is_empty() {
                t.issue(*line, "place", "empty place name");
                continue;
            }
            let Some(&mid) = by_cbs.get(cbs) else {
                t.issue(*line, "municipality_cbs_code", format!("unknown municipality '{cbs}' for place '{place}'"));
                continue;
            };
            let given = get(r, c_name);
            if !name_matches(&municipalities, mid, given) {
                t.issue(*line, "municipality_name", format!("'{given}' but {cbs} is '{}' in {FILE_MUNICIPALITIES}", municipalities[mid.index()].name));
                continue;
            }
            if let Some(prev) = seen.get(&(place.to_string(), mid)) {
                t.issue(*line, "place", format!("duplicate place '{place}' in {cbs} (first on line {prev})"));
                continue;
            }
            seen.insert((place.to_string(), mid), *line);
            let base = get(r, c_base);
            let q = get(r, c_q);
            places_of[mid.index()].push(places.len() as u32);
            places.push(Place {
                name: place.into(),
                base_name: if base.is_empty() { place.into() } else { base.into() },
                qualifier: (!q.is_empty()).then(|| q.to_string()),
                municipality: mid,
            });
        }
    }

    // --- herindelingen.csv
    let mut merger_events: Vec<MergerEvent> = Vec::new();
    {
        let mut t = Table::parse(FILE_MERGERS, src.mergers, &mut issues);
        let (c_date, c_ev, c_cbs, c_name, c_prov) =
            (t.col("date"), t.col("event"), t.col("cbs_code"), t.col("name"), t.col("province"));
        let rows = std::mem::take(&mut t.rows);
        for (line, r) in &rows {
            let (date, ev, cbs, name, prov) = (get(r, c_date), get(r, c_ev), get(r, c_cbs), get(r, c_name), get(r, c_prov));
            let Ok(date) = date.parse::<jiff::civil::Date>() else {
                t.issue(*line, "date", format!("'{date}' is not a date (YYYY-MM-DD)"));
                continue;
            };
            let kind = match ev {
                "opgeheven" => MergerEventKind::Ended,
                "nieuw" => MergerEventKind::Created,
                _ => {
                    t.issue(*line, "event", format!("'{ev}' is neither 'opgeheven' nor 'nieuw'"));
                    continue;
                }
            };
            if !valid_cbs(cbs) {
                t.issue(*line, "cbs_code", format!("'{cbs}' is not a CBS municipality code (GM + 4 digits)"));
                continue;
            }
            if name.is_empty() {
                t.issue(*line, "name", "empty municipality name");
                continue;
            }
            if kind == MergerEventKind::Ended && by_cbs.contains_key(cbs) {
                t.issue(*line, "cbs_code", format!("{cbs} {name} is listed as ended but is still in {FILE_MUNICIPALITIES}"));
                continue;
            }
            merger_events.push(MergerEvent { date, kind, cbs: cbs.into(), name: name.into(), province: prov.into() });
        }
    }

    if !issues.is_empty() {
        return Err(PlanError::Invalid(issues));
    }

    let former = derive_former(&merger_events, &municipalities, &places);
    Ok(Plan { municipalities, area_codes, places, merger_events, former, warnings, by_cbs, code2, code3, places_of })
}

fn derive_former(events: &[MergerEvent], munis: &[Municipality], places: &[Place]) -> Vec<FormerMunicipality> {
    let mut latest: BTreeMap<&str, &MergerEvent> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == MergerEventKind::Ended) {
        let keep = latest.get(e.cbs.as_str()).is_none_or(|p| p.date < e.date);
        if keep {
            latest.insert(&e.cbs, e);
        }
    }
    let folded: Vec<(String, MunicipalityId)> = places.iter().map(|p| (fold(&p.base_name), p.municipality)).collect();
    let mut out: Vec<FormerMunicipality> = latest
        .values()
        .map(|e| {
            let key = fold(&e.name);
            let exact: Vec<MunicipalityId> = dedup(folded.iter().filter(|(n, _)| *n == key).map(|(_, m)| *m));
            let exact = if exact.len() > 1 {
                dedup(exact.into_iter().filter(|m| munis[m.index()].province == e.province))
            } else {
                exact
            };
            let (successor, evidence) = if exact.len() == 1 {
                (Some(exact[0]), SuccessorEvidence::PlaceName)
            } else if exact.is_empty() && key.chars().count() >= 5 {
                let suffix: Vec<MunicipalityId> =
                    dedup(folded.iter().filter(|(n, _)| n.ends_with(&key)).map(|(_, m)| *m));
                if suffix.len() == 1 {
                    (Some(suffix[0]), SuccessorEvidence::PlaceNameSuffix)
                } else {
                    (None, SuccessorEvidence::None)
                }
            } else {
                (None, SuccessorEvidence::None)
            };
            FormerMunicipality {
                cbs: e.cbs.clone(),
                name: e.name.clone(),
                province: e.province.clone(),
                ended: e.date,
                successor,
                evidence,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.ended, &a.name).cmp(&(b.ended, &b.name)));
    out
}

fn dedup(it: impl Iterator<Item = MunicipalityId>) -> Vec<MunicipalityId> {
    let mut v: Vec<MunicipalityId> = it.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Classify a general number as published by the register ("14 0113", "0140223", "(014) 013",
/// "(0297) 38 75 75", "(0900) 18 52").
pub fn parse_general_number(raw: &str) -> Result<GeneralNumber, String> {
    let digits: String = raw.chars().filter(|c| c.is_ascii_digit()).collect();
    if let Some(bad) = raw.chars().find(|c| !(c.is_ascii_digit() || " -().+".contains(*c))) {
        return Err(format!("unexpected character '{bad}'"));
    }
    // Register entries write 14+ numbers with or without a stray trunk 0: "14 0592", "0140223", "(014) 013".
    let fourteen = digits.strip_prefix("014").map(|r| format!("14{r}")).or_else(|| digits.starts_with("14").then(|| digits.clone()));
    if let Some(f) = fourteen {
        let code = &f[2..];
        if !(code.starts_with('0') && (code.len() == 3 || code.len() == 4)) {
            return Err(format!("looks like a 14+ number but '{f}' is not 14 + an area code"));
        }
        return Ok(GeneralNumber {
            raw: raw.into(),
            kind: GeneralNumberKind::Fourteen,
            e164: None,
            area_code: Some(code.to_string()),
            fourteen: Some(f),
        });
    }
    let p = number::parse_phone(raw).map_err(|e| e.to_string())?;
    let PhoneNumber { e164, nsn } = p;
    let kind = number::classify_nsn(&nsn);
    match kind {
        number::NsnKind::Geographic => {
            if nsn.len() != 9 {
                return Err(format!("a geographic number has 10 digits, this has {}", nsn.len() + 1));
            }
            Ok(GeneralNumber { raw: raw.into(), kind: GeneralNumberKind::Geographic, e164: Some(e164), fourteen: None, area_code: None })
        }
        number::NsnKind::NonGeographic => {
            Ok(GeneralNumber { raw: raw.into(), kind: GeneralNumberKind::NonGeographic, e164: Some(e164), fourteen: None, area_code: None })
        }
        number::NsnKind::Mobile => Ok(GeneralNumber {
            raw: raw.into(),
            kind: GeneralNumberKind::NonGeographic,
            e164: Some(e164),
            fourteen: None,
            area_code: None,
        }),
        number::NsnKind::Other => Err("not a Dutch telephone number".into()),
    }
}
