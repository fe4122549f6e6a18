//! Text folding shared by name lookups and menu ordering.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower case without diacritics: "Súdwest-Fryslân" → "sudwest-fryslan". Punctuation is kept.
pub fn fold(s: &str) -> String {
    s.nfd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect()
}

/// Sort key for menus: folded, leading apostrophes/punctuation ignored ("'s-Gravenhage" sorts under s).
pub fn sort_key(s: &str) -> String {
    let f = fold(s);
    f.trim_start_matches(|c: char| !c.is_alphanumeric()).to_string()
}
