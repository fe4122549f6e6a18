//! The text-matching engine: an index of every phrase that denotes a municipality and the
//! span search over what a caller said. Knows nothing of area codes or settings; it works on
//! dense municipality indices that `lib.rs` maps to the plan.

use std::collections::HashMap;

use crate::MatchKind;
use crate::normalize::{compact, phonetic, tokens};
use crate::words::{is_common, is_filler, is_word_name};

/// One phrase of the vocabulary.
#[derive(Debug, Clone)]
pub struct Entry {
    pub muni: usize,
    pub kind: MatchKind,
    /// As it should be shown or spoken ("Den Bosch", "Velp").
    pub text: String,
    pub phon: String,
    /// Letters present in `phon`, to rule out most approximate comparisons cheaply.
    pub mask: u32,
    /// False for written-only forms ("Velp GLD"): matched, but not offered to the recogniser.
    pub spoken: bool,
}

/// Base score of an exact match per kind: names a resident uses for the municipality itself
/// are certain; a village or former municipality is slightly less, so a municipality's own
/// name wins over a same-named village elsewhere.
pub fn base_score(kind: MatchKind) -> f32 {
    match kind {
        MatchKind::OfficialName | MatchKind::EverydayName => 1.0,
        MatchKind::Alias => 0.97,
        MatchKind::FormerMunicipality => 0.96,
        MatchKind::Place => 0.95,
        MatchKind::Phonetic | MatchKind::Fuzzy => 0.9,
    }
}

/// An exact hit whose text differs but sounds the same (ij/ei, g/ch, dt...).
const PHONETIC_FACTOR: f32 = 0.9;
/// Per word of the utterance that is neither part of the name nor a carrier word.
const UNKNOWN_WORD_FACTOR: f32 = 0.85;
const MAX_UNKNOWN_PENALISED: i32 = 4;
/// A name that is itself a common word ("Een", "Acht") said on its own.
const COMMON_WORD_ALONE_FACTOR: f32 = 0.8;

#[derive(Debug, Default)]
pub struct Index {
    pub entries: Vec<Entry>,
    exact: HashMap<String, Vec<u32>>,
    phon: HashMap<String, Vec<u32>>,
    /// Entries per municipality, for approximate matching within the candidates.
    pub by_muni: Vec<Vec<u32>>,
    /// Entries naming a municipality (not its villages): approximate matching against these
    /// is done for every municipality, so a slightly misheard "Epe" on 0570 is still
    /// recognised as Epe rather than forced onto a Deventer village.
    names: Vec<u32>,
    max_tokens: usize,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub entry: u32,
    pub start: usize,
    pub end: usize,
    pub via: MatchKind,
    pub score: f32,
}

impl Index {
    pub fn new(n_munis: usize) -> Self {
        Index { by_muni: vec![Vec::new(); n_munis], ..Default::default() }
    }

    /// Adds a phrase; duplicates (same municipality, same key) keep the strongest kind.
    pub fn add(&mut self, muni: usize, kind: MatchKind, text: &str) {
        self.add_form(muni, kind, text, true);
    }

    /// Adds a written-only form, such as a PostNL name with its qualifier.
    pub fn add_written(&mut self, muni: usize, kind: MatchKind, text: &str) {
        self.add_form(muni, kind, text, false);
    }

    fn add_form(&mut self, muni: usize, kind: MatchKind, text: &str, spoken: bool) {
        let toks = tokens(text);
        if toks.is_empty() {
            return;
        }
        let key = compact(&toks);
        if let Some(ids) = self.exact.get(&key) {
            for &id in ids {
                let e = &mut self.entries[id as usize];
                if e.muni == muni {
                    if base_score(kind) > base_score(e.kind) {
                        e.kind = kind;
                    }
                    // Keep the spoken form's text for the recogniser.
                    if spoken && (!e.spoken || base_score(kind) > base_score(e.kind)) {
                        e.text = text.to_string();
                    }
                    e.spoken |= spoken;
                    return;
                }
            }
        }
        let phon = phonetic(&key);
        let id = self.entries.len() as u32;
        self.max_tokens = self.max_tokens.max(toks.len());
        self.exact.entry(key).or_default().push(id);
        self.phon.entry(phon.clone()).or_default().push(id);
        self.by_muni[muni].push(id);
        if kind != MatchKind::Place {
            self.names.push(id);
        }
        let mask = letter_mask(&phon);
        self.entries.push(Entry { muni, kind, text: text.to_string(), phon, mask, spoken });
    }

    /// Every hit in `text`, scored. `in_candidates(muni)` restricts approximate matching of
    /// villages to the candidate municipalities.
    pub fn search(&self, text: &str, in_candidates: &dyn Fn(usize) -> bool) -> (Vec<String>, Vec<Hit>) {
        let toks = tokens(text);
        let n = toks.len();
        let mut hits: Vec<Hit> = Vec::new();
        let max_span = self.max_tokens.max(1);
        let mut covered = vec![false; n];

        for i in 0..n {
            for j in (i + 1)..=(i + max_span).min(n) {
                let key = compact(&toks[i..j]);
                let exact = self.exact.get(&key);
                if let Some(ids) = exact {
                    for &id in ids {
                        let kind = self.entries[id as usize].kind;
                        hits.push(Hit { entry: id, start: i, end: j, via: kind, score: base_score(kind) });
                    }
                    covered[i..j].iter_mut().for_each(|c| *c = true);
                }
                if key.len() < 4 {
                    continue;
                }
                // Also when the text is exactly some other name: "horn" is the village Horn
                // (Leudal) but, said on 0229, more likely a misheard Hoorn.
                if let Some(ids) = self.phon.get(&phonetic(&key)) {
                    for &id in ids.iter().filter(|id| !exact.is_some_and(|e| e.contains(id))) {
                        let kind = self.entries[id as usize].kind;
                        hits.push(Hit {
                            entry: id,
                            start: i,
                            end: j,
                            via: MatchKind::Phonetic,
                            score: base_score(kind) * PHONETIC_FACTOR,
                        });
                    }
                    covered[i..j].iter_mut().for_each(|c| *c = true);
                }
            }
        }

        // Approximate matching only where nothing matched and never on common words.
        let needs_fuzzy = (0..n).any(|k| !covered[k] && !is_common(&toks[k]));
        let fuzzy_pool: Vec<u32> = if needs_fuzzy {
            let candidate_places = self
                .by_muni
                .iter()
                .enumerate()
                .filter(|(m, _)| in_candidates(*m))
                .flat_map(|(_, ids)| ids.iter().copied())
                .filter(|&id| self.entries[id as usize].kind == MatchKind::Place);
            self.names.iter().copied().chain(candidate_places).collect()
        } else {
            Vec::new()
        };
        for i in 0..n {
            if covered[i] || is_common(&toks[i]) {
                continue;
            }
            for j in (i + 1)..=(i + max_span).min(n) {
                if covered[j - 1] || is_common(&toks[j - 1]) {
                    break;
                }
                let key = compact(&toks[i..j]);
                if key.len() < 4 {
                    continue;
                }
                let p = phonetic(&key);
                let mask = letter_mask(&p);
                for &id in &fuzzy_pool {
                    let e = &self.entries[id as usize];
                    // One edit changes the set of letters by at most two: a far cheaper test
                    // than the edit distance, and it rejects almost every entry.
                    if (mask ^ e.mask).count_ones() > 2 * MAX_EDITS {
                        continue;
                    }
                    if let Some(score) = fuzzy_score(&p, &e.phon) {
                        hits.push(Hit {
                            entry: id,
                            start: i,
                            end: j,
                            via: MatchKind::Fuzzy,
                            score: base_score(e.kind) * score,
                        });
                    }
                }
            }
        }

        // A hit inside a longer hit is part of a longer name ("Bergen" in "Bergen op Zoom",
        // "Haarlem" in "Haarlem mermeer" as a recogniser may split it).
        let spans: Vec<(usize, usize, f32)> = hits.iter().map(|h| (h.start, h.end, h.score)).collect();
        hits.retain(|h| {
            !spans.iter().any(|&(s, e, sc)| s <= h.start && e >= h.end && (e - s) > (h.end - h.start) && sc >= h.score - 0.1)
        });

        // Words around the name: carrier words are free, anything else lowers confidence.
        for h in &mut hits {
            let unknown = (0..n).filter(|&k| k < h.start || k >= h.end).filter(|&k| !is_filler(&toks[k])).count() as i32;
            h.score *= UNKNOWN_WORD_FACTOR.powi(unknown.min(MAX_UNKNOWN_PENALISED));
            let span = &toks[h.start..h.end];
            if span.iter().all(|t| is_common(t)) {
                // "ik wil een afspraak" must not become the village Een; "Een" alone may, but
                // only as written: "nee de" is not Neede.
                let alone = unknown == 0 && span.len() == 1 && h.via != MatchKind::Phonetic;
                h.score *= if alone { COMMON_WORD_ALONE_FACTOR } else { 0.0 };
            } else if unknown > 0 && span.len() == 1 && is_word_name(&span[0]) {
                // "mijn buren maken lawaai": the word, not the municipality.
                h.score = 0.0;
            }
        }
        hits.retain(|h| h.score > 0.0);
        (toks, hits)
    }
}

const MAX_EDITS: u32 = 3;

fn letter_mask(s: &str) -> u32 {
    s.bytes().fold(0u32, |m, b| m | 1 << (b % 32))
}

/// Similarity of two phonetic keys as a score factor, or None when they are too far apart to
/// be the same name. Short names must be nearly exact: one edit in "Epe" is another town.
fn fuzzy_score(a: &str, b: &str) -> Option<f32> {
    let la = a.len();
    let lb = b.len();
    let l = la.max(lb);
    // Short names must be exact: one letter turns "Best" into "test", "Ede" into "Epe".
    let allowed = match l {
        0..=4 => 0,
        5..=6 => 1,
        7..=10 => 2,
        _ => 3,
    };
    if allowed == 0 || la.abs_diff(lb) > allowed {
        return None;
    }
    // Optimal string alignment: edits plus adjacent transpositions, without the per-call
    // alphabet map of the unrestricted Damerau distance (several times faster here).
    let d = strsim::osa_distance(a, b);
    if d == 0 || d > allowed {
        // d == 0 is a phonetic hit, already found by lookup.
        return None;
    }
    let s = 0.88 - 1.3 * (d as f32 / l as f32);
    (s >= 0.5).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        let mut ix = Index::new(5);
        ix.add(0, MatchKind::OfficialName, "Haarlem");
        ix.add(1, MatchKind::OfficialName, "Haarlemmermeer");
        ix.add(1, MatchKind::Place, "Nieuw-Vennep");
        ix.add(2, MatchKind::OfficialName, "Bergen op Zoom");
        ix.add(3, MatchKind::OfficialName, "Bergen (NH.)");
        ix.add(3, MatchKind::OfficialName, "Bergen");
        ix.add(4, MatchKind::Place, "Een");
        ix
    }

    fn best(ix: &Index, text: &str) -> Option<(usize, MatchKind, f32)> {
        let (_, hits) = ix.search(text, &|_| true);
        hits.iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .map(|h| (ix.entries[h.entry as usize].muni, h.via, h.score))
    }

    #[test]
    fn word_boundaries_keep_haarlem_out_of_haarlemmermeer() {
        let ix = index();
        assert_eq!(best(&ix, "Haarlemmermeer").unwrap().0, 1);
        assert_eq!(best(&ix, "haarlemmer meer").unwrap().0, 1);
        assert_eq!(best(&ix, "Haarlem").unwrap().0, 0);
        let (_, hits) = ix.search("Haarlemmermeer", &|_| true);
        assert!(hits.iter().all(|h| ix.entries[h.entry as usize].muni != 0), "{hits:?}");
    }

    #[test]
    fn longer_names_swallow_their_prefixes() {
        let ix = index();
        let (_, hits) = ix.search("ik wil Bergen op Zoom", &|_| true);
        assert!(hits.iter().all(|h| ix.entries[h.entry as usize].muni == 2), "{hits:?}");
    }

    #[test]
    fn carrier_words_are_free_and_unknown_words_cost() {
        let ix = index();
        assert_eq!(best(&ix, "ehm ik wil graag de gemeente Haarlem alstublieft").unwrap().2, 1.0);
        assert!(best(&ix, "blabla Haarlem").unwrap().2 < 1.0);
    }

    #[test]
    fn common_words_do_not_match_inside_sentences() {
        let ix = index();
        assert!(best(&ix, "ik wil een afspraak").is_none());
        assert_eq!(best(&ix, "Een").unwrap().0, 4);
    }

    #[test]
    fn approximate_matches_score_lower() {
        let ix = index();
        let (m, via, s) = best(&ix, "Haarlemermeer").unwrap();
        assert_eq!((m, via), (1, MatchKind::Phonetic));
        assert!(s < 1.0 && s > 0.8);
        let (m, via, s) = best(&ix, "Nieuw Fennap").unwrap();
        assert_eq!((m, via), (1, MatchKind::Fuzzy));
        assert!(s < 0.85);
    }
}
