//! Text normalisation shared by the vocabulary and by what a caller said, so that both
//! sides of every comparison went through exactly the same steps.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Splits text into lowercase ASCII-folded word tokens.
///
/// Diacritics are dropped (Súdwest-Fryslân → sudwest fryslan) because PostNL place names and
/// speech-recogniser output both omit them inconsistently; hyphens, apostrophes and any other
/// punctuation separate words ('s-Hertogenbosch → s hertogenbosch) because callers and
/// recognisers write these names with and without them.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        // The Dutch ij ligature and a few letters NFKD does not decompose.
        let folded: &str = match c {
            'ĳ' | 'Ĳ' => "ij",
            'ß' => "ss",
            'æ' | 'Æ' => "ae",
            'ø' | 'Ø' => "o",
            'œ' | 'Œ' => "oe",
            'ł' | 'Ł' => "l",
            _ => "",
        };
        if !folded.is_empty() {
            cur.push_str(folded);
            continue;
        }
        if c.is_alphanumeric() {
            for l in c.to_lowercase() {
                if l.is_ascii_alphanumeric() {
                    cur.push(l);
                }
                // Non-Latin letters are dropped: no Dutch name uses them, and keeping them
                // would only create keys nothing in the vocabulary can equal.
            }
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The spacing-insensitive key of a token sequence: "Noord Beveland", "Noord-Beveland" and
/// "Noordbeveland" all become "noordbeveland". Token boundaries still matter for *which*
/// spans are compared (see the matcher), which is what keeps "Haarlem" out of "Haarlemmermeer".
pub fn compact<S: AsRef<str>>(tokens: &[S]) -> String {
    let mut s = String::with_capacity(tokens.iter().map(|t| t.as_ref().len()).sum());
    for t in tokens {
        s.push_str(t.as_ref());
    }
    s
}

/// A Dutch phonetic key, used to forgive the spellings a speech recogniser or a caller's
/// accent produces for the same sounds.
///
/// Written by hand because no maintained crate implements Dutch phonetics (Soundex,
/// Metaphone and the Kölner Phonetik in `rphonetic` encode English/German sound rules, which
/// merge or split the wrong Dutch sounds and drop vowels that distinguish Dutch names).
/// The rules cover the confusions that matter for names: ij/ei/y, au/ou(w), g/ch, final d/t/dt,
/// v/f, z/s, c/k/s, ph/f, th/t, doubled letters and long vowels.
pub fn phonetic(compact: &str) -> String {
    let b = compact.as_bytes();
    let n = b.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let at = |i: usize| -> u8 { if i < n { b[i] } else { 0 } };
    let mut i = 0;
    while i < n {
        let c = b[i];
        let c1 = at(i + 1);
        let c2 = at(i + 2);
        let (code, adv): (&[u8], usize) = match c {
            b'i' if c1 == b'j' => (b"Y", 2),
            b'e' if c1 == b'i' => (b"Y", 2),
            b'y' => (b"Y", 1),
            b'a' if c1 == b'u' && c2 == b'w' => (b"U", 3),
            b'o' if c1 == b'u' && c2 == b'w' => (b"U", 3),
            b'a' if c1 == b'u' => (b"U", 2),
            b'o' if c1 == b'u' => (b"U", 2),
            b'a' if c1 == b'e' => (b"a", 2),
            b'i' if c1 == b'e' => (b"i", 2),
            b's' if c1 == b'c' && c2 == b'h' => {
                // Final "sch" is a plain s (Den Bosch); elsewhere s + guttural.
                if i + 3 >= n { (b"s", 3) } else { (b"sG", 3) }
            }
            b'c' if c1 == b'h' => (b"G", 2),
            b'g' if c1 == b'h' => (b"G", 2),
            b'g' => (b"G", 1),
            b'c' if c1 == b'k' => (b"k", 2),
            b'c' if matches!(c1, b'e' | b'i' | b'y') => (b"s", 1),
            b'c' | b'q' => (b"k", 1),
            b'x' => (b"ks", 1),
            b'p' if c1 == b'h' => (b"f", 2),
            b't' if c1 == b'h' => (b"t", 2),
            b'd' if c1 == b't' => (b"t", 2),
            b'd' if i + 1 == n => (b"t", 1),
            b'v' => (b"f", 1),
            b'z' => (b"s", 1),
            b'w' if c1 == b'r' => (b"fr", 1),
            _ => (std::slice::from_ref(&b[i]), 1),
        };
        for &k in code {
            // Doubled letters and long vowels (aa, ee, oo, uu, ll, ss...) collapse.
            if out.last() != Some(&k) {
                out.push(k);
            }
        }
        i += adv;
    }
    // Only ASCII bytes were pushed.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        compact(&tokens(s))
    }

    #[test]
    fn diacritics_hyphens_apostrophes_and_case_fold() {
        assert_eq!(tokens("Súdwest-Fryslân"), ["sudwest", "fryslan"]);
        assert_eq!(key("Súdwest-Fryslân"), key("sudwest fryslan"));
        assert_eq!(key("Noardeast-Fryslân"), key("NOARDEAST FRYSLAN"));
        assert_eq!(tokens("'s-Hertogenbosch"), ["s", "hertogenbosch"]);
        assert_eq!(tokens("Bergen (NH.)"), ["bergen", "nh"]);
        assert_eq!(tokens("Nuenen, Gerwen en Nederwetten"), ["nuenen", "gerwen", "en", "nederwetten"]);
        assert_eq!(key("IJsselstein"), key("Ĳsselstein"));
        assert!(tokens("  ?!  ").is_empty());
    }

    #[test]
    fn phonetic_merges_dutch_spelling_confusions() {
        let p = |s: &str| phonetic(&key(s));
        assert_eq!(p("Zeist"), p("Zijst"));
        assert_eq!(p("Heerenveen"), p("Herenveen"));
        assert_eq!(p("Oudewater"), p("Audewater"));
        assert_eq!(p("Gouda"), p("Chouda"));
        assert_eq!(p("Cuijk"), p("Cuyk"));
        assert_eq!(p("Stad"), p("Stat"));
        assert_eq!(p("Den Bosch"), p("den bos"));
        assert_ne!(p("Ede"), p("Epe"));
        assert_ne!(p("Weert"), p("Weesp"));
        assert_ne!(p("Haarlem"), p("Haarlemmermeer"));
    }
}
