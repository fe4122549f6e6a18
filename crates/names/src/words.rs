//! Word lists for what callers say around a name.
//!
//! Kept as plain sorted lists rather than a crate because they are specific to what a Dutch
//! (or English-speaking) caller says when asked for a municipality; no general stop-word list
//! fits (a generic Dutch stop-word list contains "een" and "best", which are also places).

/// Carrier words: said around a name ("ik wil graag de gemeente X", "ehm X", "X alstublieft",
/// "met X") and carrying no information. A caller using them is not penalised.
const FILLER: &[&str] = &[
    "a", "aan", "alsjeblieft", "alstublieft", "alsublieft", "astublieft", "aub", "bel",
    "bellen", "belt", "ben", "bent", "bij", "call", "city", "contact", "daar", "dag", "dan",
    "dank", "danku", "dankuwel", "de", "den", "denk", "der", "doe", "doorgeschakeld",
    "doorverbinden", "doorverbonden", "dorp", "dus", "een", "eh", "ehm", "eigenlijk", "er",
    "erm", "even", "geloof", "gemeente", "gemeentehuis", "gewoon", "goedemiddag", "goedemorgen",
    "goedenavond", "goedendag", "graag", "hallo", "heet", "het", "hier", "hm", "hmm", "hoi",
    "i", "ik", "in", "is", "ja", "jawel", "je", "kies", "kom", "kwam", "live", "m", "maar",
    "mag", "me", "met", "mijn", "mm", "mn", "municipality", "n", "naar", "nou", "of", "ok",
    "okay", "oke", "op", "plaats", "place", "please", "praten", "speak", "spreken", "stad",
    "te", "the", "to", "town", "u", "uh", "uhm", "uit", "um", "van", "verbinden", "verbonden",
    "village", "voor", "want", "wel", "wil", "wilde", "willen", "wonen", "woon", "woonachtig",
    "woonplaats", "woont", "worden", "zeg", "zit", "zou",
];

/// Frequent words that are not carrier words ("ik weet het niet"): never used for
/// approximate matching, so that "weet" cannot become Weert.
const COMMON: &[&str] = &[
    "acht", "afspraak", "al", "alle", "alles", "als", "ander", "andere", "dat", "deze", "die",
    "dit", "don", "dont", "drie", "eerste", "excuseer", "gaat", "geen", "goed", "haar", "heb",
    "hebben", "hebt", "heeft", "help", "hem", "hij", "hoe", "hulp", "hun", "iemand", "iets",
    "jullie", "kan", "ken", "keuze", "know", "medewerker", "meer", "mens", "menu", "minder",
    "moet", "moment", "nee", "negen", "niet", "niets", "niks", "no", "nog", "nul", "nummer",
    "om", "ons", "onze", "ook", "operator", "optie", "over", "pardon", "persoon", "slecht",
    "sorry", "tien", "toets", "tot", "twee", "tweede", "veel", "vier", "vijf", "vraag",
    "vragen", "waar", "waarom", "wacht", "was", "wat", "we", "weet", "weinig", "welke", "what",
    "wie", "wij", "yes", "ze", "zeker", "zes", "zeven", "zij", "zijn",
];

/// Dutch words that are also the name of a municipality or village ("mijn buren maken
/// lawaai" is about neighbours, not Buren). Matched only when said alone or with carrier words.
const WORD_NAMES: &[&str] = &[
    "acht", "beek", "bergen", "best", "buren", "dorst", "duiven", "ee", "een", "haar", "hoek",
    "hoorn", "horst", "loon", "made", "putten", "sluis", "ven", "wijk",
];

pub fn is_word_name(token: &str) -> bool {
    WORD_NAMES.binary_search(&token).is_ok()
}

pub fn is_filler(token: &str) -> bool {
    FILLER.binary_search(&token).is_ok()
}

pub fn is_common(token: &str) -> bool {
    is_filler(token) || COMMON.binary_search(&token).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_lowercase_ascii_for_binary_search() {
        for list in [FILLER, COMMON, WORD_NAMES] {
            for w in list.windows(2) {
                assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
            }
            for w in list {
                assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
            }
        }
        assert!(is_filler("gemeente") && is_filler("alstublieft") && is_filler("ehm"));
        assert!(is_common("weet") && !is_common("kapelle"));
    }
}
