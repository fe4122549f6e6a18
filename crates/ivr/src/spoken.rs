//! Numbers as words, for text-to-speech and for prompts assembled from recorded pieces.
//!
//! Written by hand: the crates that spell numbers (e.g. `num2words`) have no Frisian and do not
//! follow the Dutch convention for telephone numbers (area code digit by digit, then pairs as
//! numbers: "nul twee negen zeven, achtendertig, vijfenzeventig, vijfenzeventig").

use veertien_core::Lang;

const NL_UNITS: [&str; 20] = [
    "nul",
    "één",
    "twee",
    "drie",
    "vier",
    "vijf",
    "zes",
    "zeven",
    "acht",
    "negen",
    "tien",
    "elf",
    "twaalf",
    "dertien",
    "veertien",
    "vijftien",
    "zestien",
    "zeventien",
    "achttien",
    "negentien",
];
const NL_TENS: [&str; 10] = [
    "", "", "twintig", "dertig", "veertig", "vijftig", "zestig", "zeventig", "tachtig", "negentig",
];
const EN_UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const EN_TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const FY_UNITS: [&str; 20] = [
    "nul",
    "ien",
    "twa",
    "trije",
    "fjouwer",
    "fiif",
    "seis",
    "sân",
    "acht",
    "njoggen",
    "tsien",
    "alve",
    "tolve",
    "trettjin",
    "fjirtjin",
    "fyftjin",
    "sechstjin",
    "santjin",
    "achttjin",
    "njoggentjin",
];
const FY_TENS: [&str; 10] = [
    "",
    "",
    "tweintich",
    "tritich",
    "fjirtich",
    "fyftich",
    "sechstich",
    "santich",
    "tachtich",
    "njoggentich",
];

/// Prompts exist in Dutch, English and Frisian; German callers get English.
fn text_lang(lang: Lang) -> Lang {
    match lang {
        Lang::De => Lang::En,
        l => l,
    }
}

/// 0..=99 as words; larger numbers digit by digit (the prompts never need them as numbers).
pub fn number(n: u32, lang: Lang) -> String {
    let (units, tens) = match text_lang(lang) {
        Lang::En => (&EN_UNITS, &EN_TENS),
        Lang::Fy => (&FY_UNITS, &FY_TENS),
        _ => (&NL_UNITS, &NL_TENS),
    };
    if n < 20 {
        return units[n as usize].to_string();
    }
    if n >= 100 {
        return digits(&n.to_string(), lang);
    }
    let (t, u) = ((n / 10) as usize, (n % 10) as usize);
    if u == 0 {
        return tens[t].to_string();
    }
    match text_lang(lang) {
        Lang::En => format!("{}-{}", tens[t], units[u]),
        _ => {
            // Dutch and Frisian put the unit first: "vijfenzeventig"; "één" loses its accents
            // there ("eenentwintig"), and a unit ending in e takes a diaeresis ("tweeëntwintig").
            let unit = if u == 1 && text_lang(lang) == Lang::Nl {
                "een"
            } else {
                units[u]
            };
            let joint = if unit.ends_with('e') { "ën" } else { "en" };
            format!("{unit}{joint}{}", tens[t])
        }
    }
}

/// Every digit of `s` as a word ("0113" → "nul één één drie"); other characters are skipped.
pub fn digits(s: &str, lang: Lang) -> String {
    s.chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| number(d, lang))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A telephone number read group by group, as written ("(0297) 38 75 75", "14 0113").
///
/// Dutch and Frisian read a two-digit group not starting with 0 as a number ("achtendertig"),
/// and the 14 of a 14+ number as "veertien"; every other group digit by digit. English reads
/// everything digit by digit. Groups are separated by a comma so the synthesiser pauses.
pub fn phone_number(written: &str, lang: Lang) -> String {
    let groups: Vec<&str> = written
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    let groups: Vec<String> = if groups.len() == 1 && groups[0].len() >= 8 {
        // One unbroken run: split the way it is written on paper.
        split_unbroken(groups[0])
    } else {
        groups.iter().map(|g| g.to_string()).collect()
    };
    groups
        .iter()
        .map(|g| {
            let as_number = text_lang(lang) != Lang::En && g.len() == 2 && !g.starts_with('0');
            if as_number {
                number(g.parse().unwrap_or(0), lang)
            } else {
                digits(g, lang)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// "140578" → ["14", "0578"]; "0297387575" → ["0297", "38", "75", "75"].
fn split_unbroken(d: &str) -> Vec<String> {
    if let Some(rest) = d.strip_prefix("14").filter(|r| (3..=4).contains(&r.len())) {
        return vec!["14".into(), rest.into()];
    }
    let (head, tail) = d.split_at(4.min(d.len()));
    let mut out = vec![head.to_string()];
    out.extend(
        tail.as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned()),
    );
    out
}

/// A 14+ number as said: "140578" → "veertien, nul vijf zeven acht".
pub fn fourteen(number: &str, lang: Lang) -> String {
    let d: String = number.chars().filter(|c| c.is_ascii_digit()).collect();
    match d.strip_prefix("14") {
        Some(code) => format!("{}, {}", self::number(14, lang), digits(code, lang)),
        None => phone_number(number, lang),
    }
}

/// A weekday (jiff's Monday = 1) as a word.
pub fn weekday(day: jiff::civil::Weekday, lang: Lang) -> &'static str {
    let i = day.to_monday_zero_offset() as usize;
    match text_lang(lang) {
        Lang::En => [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ][i],
        Lang::Fy => [
            "moandei",
            "tiisdei",
            "woansdei",
            "tongersdei",
            "freed",
            "sneon",
            "snein",
        ][i],
        _ => [
            "maandag",
            "dinsdag",
            "woensdag",
            "donderdag",
            "vrijdag",
            "zaterdag",
            "zondag",
        ][i],
    }
}

/// A clock time as said: 8:00 → "acht uur", 8:30 → "acht uur dertig"; English "eight o'clock",
/// "eight thirty". Uses the 24-hour clock as Dutch municipal announcements do.
pub fn clock(hour: i8, minute: i8, lang: Lang) -> String {
    let h = number(hour.max(0) as u32, lang);
    let m = number(minute.max(0) as u32, lang);
    match (text_lang(lang), minute) {
        (Lang::En, 0) => format!("{h} o'clock"),
        (Lang::En, _) => format!("{h} {}", if minute < 10 { format!("oh {m}") } else { m }),
        (Lang::Fy, 0) => format!("{h} oere"),
        (Lang::Fy, _) => format!("{h} oere {m}"),
        (_, 0) => format!("{h} uur"),
        (_, _) => format!("{h} uur {m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dutch_numbers_follow_spelling_rules() {
        assert_eq!(number(0, Lang::Nl), "nul");
        assert_eq!(number(14, Lang::Nl), "veertien");
        assert_eq!(number(21, Lang::Nl), "eenentwintig");
        assert_eq!(number(22, Lang::Nl), "tweeëntwintig");
        assert_eq!(number(38, Lang::Nl), "achtendertig");
        assert_eq!(number(75, Lang::Nl), "vijfenzeventig");
        assert_eq!(number(90, Lang::Nl), "negentig");
        assert_eq!(number(23, Lang::Fy), "trijeëntweintich");
        assert_eq!(number(45, Lang::Fy), "fiifenfjirtich");
        assert_eq!(number(42, Lang::En), "forty-two");
        assert_eq!(number(42, Lang::De), "forty-two");
    }

    #[test]
    fn phone_numbers_are_read_in_their_written_groups() {
        assert_eq!(
            phone_number("(0297) 38 75 75", Lang::Nl),
            "nul twee negen zeven, achtendertig, vijfenzeventig, vijfenzeventig"
        );
        assert_eq!(
            phone_number("(0297) 38 75 75", Lang::En),
            "zero two nine seven, three eight, seven five, seven five"
        );
        // A group starting with 0 is never a number: "06" is "nul zes".
        assert_eq!(
            phone_number("023 567 05 11", Lang::Nl),
            "nul twee drie, vijf zes zeven, nul vijf, elf"
        );
        assert_eq!(
            phone_number("0297387575", Lang::Nl),
            "nul twee negen zeven, achtendertig, vijfenzeventig, vijfenzeventig"
        );
        assert_eq!(
            fourteen("140578", Lang::Nl),
            "veertien, nul vijf zeven acht"
        );
        assert_eq!(fourteen("14 020", Lang::Fy), "fjirtjin, nul twa nul");
        assert_eq!(
            phone_number("14 0113", Lang::Nl),
            "veertien, nul één één drie"
        );
    }

    #[test]
    fn clock_times() {
        assert_eq!(clock(8, 0, Lang::Nl), "acht uur");
        assert_eq!(clock(8, 30, Lang::Nl), "acht uur dertig");
        assert_eq!(clock(13, 5, Lang::En), "thirteen oh five");
        assert_eq!(weekday(jiff::civil::Weekday::Monday, Lang::Fy), "moandei");
    }
}
