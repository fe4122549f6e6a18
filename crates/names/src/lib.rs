//! veertien-names: what did the caller say? Maps spoken text (already transcribed, or the
//! phrase the closed-set recogniser picked) to a municipality of the national plan.
//!
//! Pure: no I/O. The vocabulary comes from the plan (CBS and everyday names, places, former
//! municipalities) plus two small curated tables shipped with this crate
//! (`data/aliases.csv`, `data/former_municipalities.csv`).
//!
//! The whole plan is searched, not just the candidates: a caller on 0570 who says "Epe" means
//! Epe (14 0578), and must be told so rather than be put through to a Deventer village.

mod curated;
mod matcher;
mod normalize;
mod words;

use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use veertien_core::{ConnectionStatus, GeneralNumber, MunicipalityId, Plan, Settings};

pub use normalize::{phonetic, tokens};

/// How a phrase denotes its municipality, or how loosely it was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The CBS name, also without its CBS qualifier ("Bergen (NH.)" and "Bergen").
    OfficialName,
    /// The name residents use ("Den Bosch", "Den Haag").
    EverydayName,
    /// Another name: Frisian/Dutch/English renderings, "Hertogenbosch", "Bergen Limburg".
    Alias,
    /// A village or town (woonplaats) of the municipality.
    Place,
    /// A municipality merged into this one since 2016 (Weesp → Amsterdam).
    FormerMunicipality,
    /// Sounds the same as a phrase but is spelt differently (ij/ei, g/ch, dt, ou/au, doubled letters).
    Phonetic,
    /// A small edit away from a phrase, as a recogniser's near miss.
    Fuzzy,
}

/// One municipality the text may denote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    pub municipality: MunicipalityId,
    /// CBS name of the municipality.
    pub name: String,
    /// 0..1. ≥ 0.9: a phrase of the vocabulary was said (possibly with carrier words); 0.75–0.9:
    /// said with other words around it or spelt differently; below 0.75: a near miss.
    pub score: f32,
    pub via: MatchKind,
    /// The vocabulary phrase that matched ("Velp", "Den Bosch").
    pub phrase: String,
    /// The words of the caller's text that matched it (normalised).
    pub matched_text: String,
    /// Whether the municipality is one of the candidates the call was for.
    pub in_candidates: bool,
}

/// What the dialogue should do with the text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Clearly one of the candidates, and reachable.
    Municipality { id: MunicipalityId },
    /// The caller means a municipality this area code does not serve: tell them its 14+ number
    /// (or forward, if configured).
    OtherAreaCode { id: MunicipalityId, fourteen_number: String },
    /// The municipality meant is not connected to 14+: say so and give its general number.
    NotConnected { id: MunicipalityId, general_number: GeneralNumber },
    /// Several municipalities fit equally well (Velp: Rheden or Land van Cuijk): ask which.
    Ambiguous { options: Vec<MunicipalityId> },
    NoMatch,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolution {
    pub outcome: Outcome,
    /// CBS name of the municipality the caller means, also when it is not connected or on
    /// another area code; `None` while ambiguous or unmatched.
    pub municipality: Option<String>,
    /// Calibrated confidence in `outcome` (0..1): the winner's score, lowered when a rival
    /// comes close. The dialogue gates on this (put through / confirm / keypad menu).
    pub confidence: f32,
    /// Ranked best first, one entry per municipality.
    pub matches: Vec<Match>,
}

impl Resolution {
    /// The municipality the caller means, when the outcome names exactly one.
    pub fn meant(&self) -> Option<MunicipalityId> {
        match &self.outcome {
            Outcome::Municipality { id } | Outcome::OtherAreaCode { id, .. } | Outcome::NotConnected { id, .. } => Some(*id),
            Outcome::Ambiguous { .. } | Outcome::NoMatch => None,
        }
    }
}

/// A phrase that denotes a municipality: what the speech recogniser scores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phrase {
    /// As written/spoken: "Den Bosch", "Velp", "Súdwest-Fryslân".
    pub text: String,
    pub municipality: MunicipalityId,
    pub kind: MatchKind,
    pub in_candidates: bool,
}

/// Below this the text is treated as not naming anything.
pub const MIN_SCORE: f32 = 0.5;
/// A candidate is preferred over a better-scoring non-candidate within this margin: a village
/// "Hengelo" of Bronckhorst beats the municipality Hengelo for a caller on 0575.
const PREFER_CANDIDATE_MARGIN: f32 = 0.06;
/// Matches this close are indistinguishable: ask.
const AMBIGUITY_MARGIN: f32 = 0.03;
/// A rival within this distance lowers the confidence.
const RIVAL_WINDOW: f32 = 0.15;

/// The search structures for one plan. Build once per plan (a few milliseconds) and reuse;
/// [`resolve`] does that for you.
#[derive(Debug)]
pub struct NameIndex {
    ix: matcher::Index,
    n: usize,
}

impl NameIndex {
    pub fn new(plan: &Plan) -> NameIndex {
        let n = plan.municipalities().len();
        let mut ix = matcher::Index::new(n);
        let homonym = curated::homonym_bases(plan);
        for m in plan.municipalities() {
            let i = m.id.index();
            let bare = curated::strip_cbs_qualifier(&m.name);
            if bare != m.name {
                // "Bergen (NH.)" is written, not said; the recogniser gets "Bergen" and
                // "Bergen Noord-Holland".
                ix.add(i, MatchKind::OfficialName, bare);
                ix.add_written(i, MatchKind::OfficialName, &m.name);
            } else {
                ix.add(i, MatchKind::OfficialName, &m.name);
            }
            if m.everyday_name != m.name {
                if curated::is_written_form(&m.everyday_name) {
                    ix.add_written(i, MatchKind::EverydayName, &m.everyday_name);
                } else {
                    ix.add(i, MatchKind::EverydayName, &m.everyday_name);
                }
            }
            for alias in curated::derived_aliases(&m.name) {
                ix.add(i, MatchKind::Alias, &alias);
            }
            if homonym.contains(&normalize::compact(&tokens(bare))) {
                for q in curated::province_qualified(bare, &m.province) {
                    ix.add(i, MatchKind::Alias, &q);
                }
            }
        }
        // Plan::by_name scans and folds every municipality; one map serves all curated rows.
        let by_name: std::collections::HashMap<&str, MunicipalityId> =
            plan.municipalities().iter().map(|m| (m.name.as_str(), m.id)).collect();
        for (name, alias) in curated::aliases() {
            if let Some(&id) = by_name.get(name.as_str()) {
                ix.add(id.index(), MatchKind::Alias, alias);
            }
        }
        for p in plan.places() {
            let i = p.municipality.index();
            let base = curated::place_display(&p.base_name);
            ix.add(i, MatchKind::Place, &base);
            if p.name != p.base_name {
                ix.add_written(i, MatchKind::Place, &p.name);
            }
            if homonym.contains(&normalize::compact(&tokens(&base))) {
                let province = &plan.municipality(p.municipality).province;
                for q in curated::province_qualified(&base, province) {
                    ix.add(i, MatchKind::Place, &q);
                }
            }
        }
        for f in plan.former_municipalities() {
            if let Some(succ) = f.successor {
                ix.add(succ.index(), MatchKind::FormerMunicipality, &f.name);
            }
        }
        for (former, successor) in curated::former_municipalities() {
            if let Some(&id) = by_name.get(successor.as_str()) {
                ix.add(id.index(), MatchKind::FormerMunicipality, former);
            }
        }
        NameIndex { ix, n }
    }

    /// Every phrase denoting one of `candidates`: names, aliases, places, former municipalities.
    pub fn vocabulary(&self, candidates: &[MunicipalityId]) -> Vec<Phrase> {
        let mut out = Vec::new();
        for &c in candidates {
            if let Some(ids) = self.ix.by_muni.get(c.index()) {
                out.extend(ids.iter().filter(|&&id| self.ix.entries[id as usize].spoken).map(|&id| self.phrase(id, true)));
            }
        }
        out
    }

    /// [`Self::vocabulary`] plus the names (not the villages) of every other municipality, so a
    /// recogniser can also hear "Epe" on 0570 and the dialogue can redirect the caller.
    pub fn vocabulary_with_others(&self, candidates: &[MunicipalityId]) -> Vec<Phrase> {
        let mut out = self.vocabulary(candidates);
        for m in 0..self.n {
            if candidates.iter().any(|c| c.index() == m) {
                continue;
            }
            for &id in &self.ix.by_muni[m] {
                let e = &self.ix.entries[id as usize];
                if e.spoken && matches!(e.kind, MatchKind::OfficialName | MatchKind::EverydayName | MatchKind::Alias) {
                    out.push(self.phrase(id, false));
                }
            }
        }
        out
    }

    fn phrase(&self, id: u32, in_candidates: bool) -> Phrase {
        let e = &self.ix.entries[id as usize];
        Phrase { text: e.text.clone(), municipality: MunicipalityId(e.muni as u16), kind: e.kind, in_candidates }
    }

    pub fn resolve(&self, text: &str, candidates: &[MunicipalityId], plan: &Plan, settings: &Settings) -> Resolution {
        let mut is_cand = vec![false; self.n];
        for c in candidates {
            if let Some(x) = is_cand.get_mut(c.index()) {
                *x = true;
            }
        }
        let (toks, hits) = self.ix.search(text, &|m| is_cand[m]);

        // Best hit per municipality.
        let mut best: Vec<Option<&matcher::Hit>> = vec![None; self.n];
        for h in &hits {
            let m = self.ix.entries[h.entry as usize].muni;
            let better = match best[m] {
                None => true,
                Some(b) => {
                    h.score > b.score
                        || (h.score == b.score && matcher::base_score(h.via) > matcher::base_score(b.via))
                }
            };
            if better {
                best[m] = Some(h);
            }
        }
        let mut matches: Vec<Match> = best
            .iter()
            .enumerate()
            .filter_map(|(m, h)| {
                let h = (*h)?;
                let e = &self.ix.entries[h.entry as usize];
                let id = MunicipalityId(m as u16);
                Some(Match {
                    municipality: id,
                    name: plan.municipality(id).name.clone(),
                    score: h.score,
                    via: h.via,
                    phrase: e.text.clone(),
                    matched_text: toks[h.start..h.end].join(" "),
                    in_candidates: is_cand[m],
                })
            })
            .collect();
        matches.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(b.in_candidates.cmp(&a.in_candidates))
                .then(plan.municipality(b.municipality).population.cmp(&plan.municipality(a.municipality).population))
                .then(a.municipality.cmp(&b.municipality))
        });

        let top = |inside: bool| matches.iter().filter(|m| m.in_candidates == inside && m.score >= MIN_SCORE).map(|m| m.score).next();
        let group = match (top(true), top(false)) {
            (None, None) => None,
            (Some(i), Some(o)) => Some(i >= o - PREFER_CANDIDATE_MARGIN),
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
        };
        let Some(inside) = group else {
            return Resolution { outcome: Outcome::NoMatch, municipality: None, confidence: 0.0, matches };
        };
        let ranked: Vec<&Match> = matches.iter().filter(|m| m.in_candidates == inside).collect();
        let lead = ranked[0].score;
        let tied: Vec<MunicipalityId> =
            ranked.iter().filter(|m| m.score >= lead - AMBIGUITY_MARGIN).map(|m| m.municipality).collect();
        if tied.len() > 1 {
            return Resolution { outcome: Outcome::Ambiguous { options: tied }, municipality: None, confidence: lead, matches };
        }
        let id = tied[0];
        let approx = |k: MatchKind| matches!(k, MatchKind::Phonetic | MatchKind::Fuzzy);
        let mut rival = ranked.get(1).map(|m| m.score).unwrap_or(0.0);
        if approx(ranked[0].via) {
            // An approximate winner against an exact name elsewhere ("horn" on 0229: Hoorn,
            // or the village Horn in Leudal?) is worth a confirmation.
            let outside = matches.iter().filter(|m| m.in_candidates != inside && !approx(m.via)).map(|m| m.score);
            rival = outside.fold(rival, f32::max);
        }
        let confidence = (lead - (RIVAL_WINDOW - (lead - rival)).max(0.0)).clamp(0.0, 1.0);
        let m = plan.municipality(id);
        let outcome = if settings.get(id).status == ConnectionStatus::NotConnected {
            Outcome::NotConnected { id, general_number: m.general_number.clone() }
        } else if inside {
            Outcome::Municipality { id }
        } else {
            Outcome::OtherAreaCode { id, fourteen_number: fourteen_number_for(plan, id, ranked[0]) }
        };
        Resolution { outcome, municipality: Some(m.name.clone()), confidence, matches }
    }
}

/// The 14+ number to give a caller who meant `id`: the one the municipality publishes; else the
/// area code named after the place they said (Nieuw-Vennep → 0252); else the area code of its
/// general number; else its first area code.
fn fourteen_number_for(plan: &Plan, id: MunicipalityId, m: &Match) -> String {
    let muni = plan.municipality(id);
    if let Some(f) = &muni.general_number.fourteen {
        return f.clone();
    }
    let said = normalize::compact(&tokens(&m.phrase));
    let codes: Vec<_> = plan.area_codes_of(id).collect();
    if let Some(a) = codes.iter().find(|a| {
        [&a.region_name, &a.alt_region_name].iter().any(|n| !n.is_empty() && normalize::compact(&tokens(n)) == said)
    }) {
        return a.fourteen.clone();
    }
    if let Some(code) = &muni.general_number.area_code
        && let Some(a) = codes.iter().find(|a| &a.code == code)
    {
        return a.fourteen.clone();
    }
    codes.first().map(|a| a.fourteen.clone()).unwrap_or_default()
}

/// The index for `plan`: the shipped plan's is built once; an operator's plan is indexed on
/// first use and kept while it stays the current plan. The cache is keyed by a content
/// fingerprint (about 100 µs to compute), not by address, since a reloaded plan may reuse the
/// address of the one it replaced. Hold the returned index per plan load to skip that check.
pub fn index_for(plan: &Plan) -> Arc<NameIndex> {
    static BUILTIN: OnceLock<Arc<NameIndex>> = OnceLock::new();
    static OTHER: Mutex<Option<(u64, Arc<NameIndex>)>> = Mutex::new(None);
    if std::ptr::eq(plan, Plan::builtin()) {
        return BUILTIN.get_or_init(|| Arc::new(NameIndex::new(Plan::builtin()))).clone();
    }
    let fp = curated::fingerprint(plan);
    let mut slot = OTHER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((f, ix)) = slot.as_ref()
        && *f == fp
    {
        return ix.clone();
    }
    let ix = Arc::new(NameIndex::new(plan));
    *slot = Some((fp, ix.clone()));
    ix
}

/// Resolve what the caller said against the candidates of the dialled area code.
/// Total: any text gives a [`Resolution`]; garbage gives [`Outcome::NoMatch`].
pub fn resolve(text: &str, candidates: &[MunicipalityId], plan: &Plan, settings: &Settings) -> Resolution {
    index_for(plan).resolve(text, candidates, plan, settings)
}

/// Every phrase denoting one of `candidates` (see [`NameIndex::vocabulary`]).
pub fn vocabulary(candidates: &[MunicipalityId], plan: &Plan) -> Vec<Phrase> {
    index_for(plan).vocabulary(candidates)
}

/// [`vocabulary`] plus the names of every other municipality (see [`NameIndex::vocabulary_with_others`]).
pub fn vocabulary_with_others(candidates: &[MunicipalityId], plan: &Plan) -> Vec<Phrase> {
    index_for(plan).vocabulary_with_others(candidates)
}
