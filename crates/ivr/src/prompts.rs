//! The prompt texts, as data: Dutch first, English and Frisian (German callers hear English).
//!
//! A prompt is assembled from pieces — fixed phrases, municipality names, spoken numbers and
//! free text a municipality configured (a calamity message) — so the audio of every fixed
//! phrase and every name can be generated once and concatenated per call, and a
//! municipality's own recording can replace one piece. The Frisian texts are a first version
//! and want review by a native speaker.

use serde::Serialize;
use veertien_core::Lang;

use crate::spoken;

/// One keypad menu line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MenuItem {
    pub digit: u8,
    /// The name callers use ("Den Bosch").
    pub name: String,
}

/// What the caller hears, independent of language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "prompt", rename_all = "snake_case")]
pub enum Prompt {
    Welcome,
    /// "Say the name of your municipality, or stay on the line for the menu."
    AskName,
    /// "For Goes, press 1; for Kapelle, press 2; ..."
    Menu {
        items: Vec<MenuItem>,
    },
    /// "Did you mean Kapelle? Say yes or press 1, say no or press 2."
    Confirm {
        name: String,
    },
    /// "Which Velp do you mean: in Rheden or in Land van Cuijk?" followed by their keys.
    WhichOne {
        said: String,
        options: Vec<MenuItem>,
    },
    NotUnderstood,
    InvalidKey,
    PuttingThrough {
        name: String,
    },
    /// "X is not connected to 14+; you can call <number>", then optionally "putting you through".
    NotConnected {
        name: String,
        number: String,
        forwarding: bool,
    },
    /// "Epe belongs to 14 0578; please call that number" (or "putting you through").
    OtherAreaCode {
        name: String,
        fourteen: String,
        forwarding: bool,
    },
    /// `opens`: weekday (Monday = 0) and clock time of the next opening, if known.
    Closed {
        name: String,
        opens: Option<(u8, i8, i8)>,
    },
    /// The municipality's own message if it set one, else a standard notice.
    Calamity {
        name: String,
        message: Option<String>,
    },
    Operator,
    /// No choice could be made: tell the caller what to do instead, and say goodbye.
    NoChoice,
    /// The chosen municipality did not answer (busy, no answer, unreachable on every route
    /// step) after the caller was already answered by the IVR: say so and say goodbye.
    Unreachable {
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PieceKind {
    /// A fixed phrase of the prompt set: generate once per language.
    Phrase,
    /// A municipality name: generate once per name and language.
    Name,
    /// A number read out: generate per call or from digit pieces.
    Number,
    /// Text a municipality configured (calamity message): synthesise as given.
    Free,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Piece {
    pub kind: PieceKind,
    pub text: String,
}

/// The language the texts exist in for `lang` (German → English).
pub fn prompt_lang(lang: Lang) -> Lang {
    match lang {
        Lang::De => Lang::En,
        l => l,
    }
}

/// A phrase in the three prompt languages.
fn t(lang: Lang, nl: &str, en: &str, fy: &str) -> Piece {
    let text = match prompt_lang(lang) {
        Lang::En => en,
        Lang::Fy => fy,
        _ => nl,
    };
    Piece {
        kind: PieceKind::Phrase,
        text: text.to_string(),
    }
}

fn name(n: &str) -> Piece {
    Piece {
        kind: PieceKind::Name,
        text: n.to_string(),
    }
}

fn num(text: String) -> Piece {
    Piece {
        kind: PieceKind::Number,
        text,
    }
}

impl Prompt {
    /// Stable identifier for logs and audio file names.
    pub fn id(&self) -> &'static str {
        match self {
            Prompt::Welcome => "welcome",
            Prompt::AskName => "ask_name",
            Prompt::Menu { .. } => "menu",
            Prompt::Confirm { .. } => "confirm",
            Prompt::WhichOne { .. } => "which_one",
            Prompt::NotUnderstood => "not_understood",
            Prompt::InvalidKey => "invalid_key",
            Prompt::PuttingThrough { .. } => "putting_through",
            Prompt::NotConnected { .. } => "not_connected",
            Prompt::OtherAreaCode { .. } => "other_area_code",
            Prompt::Closed { .. } => "closed",
            Prompt::Calamity { .. } => "calamity",
            Prompt::Operator => "operator",
            Prompt::NoChoice => "no_choice",
            Prompt::Unreachable { .. } => "unreachable",
        }
    }

    /// The pieces to play, in order.
    pub fn pieces(&self, lang: Lang) -> Vec<Piece> {
        let l = lang;
        match self {
            Prompt::Welcome => vec![t(
                l,
                "Welkom bij het telefoonnummer van uw gemeente.",
                "Welcome to the telephone number of your municipality.",
                "Wolkom by it telefoannûmer fan jo gemeente.",
            )],
            Prompt::AskName => vec![t(
                l,
                "Zeg de naam van uw gemeente, of blijf aan de lijn voor het keuzemenu.",
                "Please say the name of your municipality, or stay on the line for the menu.",
                "Sis de namme fan jo gemeente, of bliuw oan 'e line foar it keuzemenu.",
            )],
            Prompt::Menu { items } => menu_items(items, l),
            Prompt::Confirm { name: n } => vec![
                t(l, "Bedoelt u", "Did you mean", "Bedoele jo"),
                name(n),
                t(
                    l,
                    "? Zeg ja of toets 1. Zeg nee of toets 2.",
                    "? Say yes or press 1. Say no or press 2.",
                    "? Sis ja of toets 1. Sis nee of toets 2.",
                ),
            ],
            Prompt::WhichOne { said, options } => {
                let mut v = vec![
                    t(l, "Welke", "Which", "Hokker"),
                    name(said),
                    t(l, "bedoelt u:", "do you mean:", "bedoele jo:"),
                ];
                for (i, o) in options.iter().enumerate() {
                    if i > 0 {
                        v.push(t(l, "of", "or", "of"));
                    }
                    v.push(t(l, "in", "in", "yn"));
                    v.push(name(&o.name));
                }
                v.push(t(l, "?", "?", "?"));
                v.extend(menu_items(options, l));
                v
            }
            Prompt::NotUnderstood => vec![t(
                l,
                "Ik heb u niet verstaan.",
                "Sorry, I did not understand you.",
                "Ik haw jo net ferstien.",
            )],
            Prompt::InvalidKey => vec![t(
                l,
                "Die toets hoort niet bij het menu.",
                "That key is not in the menu.",
                "Dy toets heart net by it menu.",
            )],
            Prompt::PuttingThrough { name: n } => vec![
                t(
                    l,
                    "Even geduld, u wordt doorverbonden met de gemeente",
                    "One moment please, we are putting you through to the municipality of",
                    "Efkes geduld, jo wurde trochferbûn mei de gemeente",
                ),
                name(n),
            ],
            Prompt::NotConnected {
                name: n,
                number,
                forwarding,
            } => {
                let mut v = vec![
                    t(l, "De gemeente", "The municipality of", "De gemeente"),
                    name(n),
                    t(
                        l,
                        "is niet aangesloten op veertien plus. U kunt bellen met",
                        "is not connected to fourteen plus. You can call",
                        "is net oansletten op fjirtjin plus. Jo kinne skilje mei",
                    ),
                    num(format!("{}.", spoken::phone_number(number, l))),
                ];
                if *forwarding {
                    v.push(forwarding_piece(l));
                }
                v
            }
            Prompt::OtherAreaCode {
                name: n,
                fourteen,
                forwarding,
            } => {
                let mut v = vec![
                    t(l, "De gemeente", "The municipality of", "De gemeente"),
                    name(n),
                    t(l, "hoort bij", "belongs to", "heart by"),
                    num(format!("{}.", spoken::fourteen(fourteen, l))),
                ];
                v.push(if *forwarding {
                    forwarding_piece(l)
                } else {
                    t(
                        l,
                        "Belt u dat nummer.",
                        "Please call that number.",
                        "Skilje jo dat nûmer.",
                    )
                });
                v
            }
            Prompt::Closed { name: n, opens } => {
                let mut v = vec![
                    t(l, "De gemeente", "The municipality of", "De gemeente"),
                    name(n),
                    t(l, "is nu gesloten.", "is closed now.", "is no ticht."),
                ];
                if let Some((day, h, m)) = opens {
                    let wd = jiff::civil::Weekday::from_monday_zero_offset(*day as i8)
                        .unwrap_or(jiff::civil::Weekday::Monday);
                    v.push(t(
                        l,
                        "U kunt weer bellen op",
                        "You can call again on",
                        "Jo kinne wer skilje op",
                    ));
                    v.push(num(format!(
                        "{} {} {}",
                        spoken::weekday(wd, l),
                        t(l, "vanaf", "from", "fan").text,
                        spoken::clock(*h, *m, l)
                    )));
                    v.push(t(l, ".", ".", "ôf."));
                }
                v
            }
            Prompt::Calamity { name: n, message } => match message {
                Some(m) => vec![Piece {
                    kind: PieceKind::Free,
                    text: m.clone(),
                }],
                None => vec![
                    t(l, "De gemeente", "The municipality of", "De gemeente"),
                    name(n),
                    t(
                        l,
                        "is door een calamiteit nu niet bereikbaar.",
                        "cannot be reached now because of an emergency.",
                        "is troch in kalamiteit no net te berikken.",
                    ),
                ],
            },
            Prompt::Operator => vec![t(
                l,
                "Even geduld, u wordt doorverbonden met een medewerker.",
                "One moment please, we are putting you through to an operator.",
                "Efkes geduld, jo wurde trochferbûn mei in meiwurker.",
            )],
            Prompt::NoChoice => vec![t(
                l,
                "Het is helaas niet gelukt om uw gemeente te kiezen. Bel het algemene nummer van uw gemeente. Tot ziens.",
                "Unfortunately we could not determine your municipality. Please call your municipality's general number. Goodbye.",
                "It is spitigernôch net slagge om jo gemeente te kiezen. Skilje it algemiene nûmer fan jo gemeente. Oant sjen.",
            )],
            Prompt::Unreachable { name: n } => vec![
                t(l, "De gemeente", "The municipality of", "De gemeente"),
                name(n),
                t(
                    l,
                    "is op dit moment niet bereikbaar. Probeert u het later nog eens. Tot ziens.",
                    "cannot be reached at the moment. Please try again later. Goodbye.",
                    "is op dit stuit net te berikken. Besykje it letter noch ris. Oant sjen.",
                ),
            ],
        }
    }

    /// The whole prompt as one text, for text-to-speech and the dialogue log.
    pub fn text(&self, lang: Lang) -> String {
        let mut out = String::new();
        for p in self.pieces(lang) {
            let glue = p.text.starts_with(['?', '.', ',']);
            if !out.is_empty() && !glue {
                out.push(' ');
            }
            out.push_str(&p.text);
        }
        out
    }

    /// Every fixed phrase of the prompt set in `lang`, for generating their audio.
    pub fn all_phrases(lang: Lang) -> Vec<String> {
        let item = MenuItem {
            digit: 1,
            name: String::new(),
        };
        let samples = [
            Prompt::Welcome,
            Prompt::AskName,
            Prompt::Menu {
                items: vec![item.clone()],
            },
            Prompt::Confirm {
                name: String::new(),
            },
            Prompt::WhichOne {
                said: String::new(),
                options: vec![item.clone(), item],
            },
            Prompt::NotUnderstood,
            Prompt::InvalidKey,
            Prompt::PuttingThrough {
                name: String::new(),
            },
            Prompt::NotConnected {
                name: String::new(),
                number: String::new(),
                forwarding: true,
            },
            Prompt::OtherAreaCode {
                name: String::new(),
                fourteen: String::new(),
                forwarding: false,
            },
            Prompt::OtherAreaCode {
                name: String::new(),
                fourteen: String::new(),
                forwarding: true,
            },
            Prompt::Closed {
                name: String::new(),
                opens: Some((0, 8, 0)),
            },
            Prompt::Calamity {
                name: String::new(),
                message: None,
            },
            Prompt::Operator,
            Prompt::NoChoice,
            Prompt::Unreachable {
                name: String::new(),
            },
        ];
        let mut out: Vec<String> = samples
            .iter()
            .flat_map(|p| p.pieces(lang))
            .filter(|p| p.kind == PieceKind::Phrase)
            .map(|p| p.text)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

fn forwarding_piece(l: Lang) -> Piece {
    t(
        l,
        "U wordt nu doorverbonden.",
        "We are putting you through now.",
        "Jo wurde no trochferbûn.",
    )
}

fn menu_items(items: &[MenuItem], l: Lang) -> Vec<Piece> {
    let mut v = Vec::with_capacity(items.len() * 3);
    for it in items {
        v.push(t(l, "Voor", "For", "Foar"));
        v.push(name(&it.name));
        v.push(t(l, ", toets", ", press", ", toets"));
        v.push(num(format!("{}.", spoken::number(it.digit as u32, l))));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(names: &[&str]) -> Vec<MenuItem> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| MenuItem {
                digit: (i + 1) as u8,
                name: n.to_string(),
            })
            .collect()
    }

    #[test]
    fn keypad_menu_is_built_from_the_candidates() {
        let p = Prompt::Menu {
            items: items(&["Borsele", "Goes", "Kapelle"]),
        };
        assert_eq!(
            p.text(Lang::Nl),
            "Voor Borsele, toets één. Voor Goes, toets twee. Voor Kapelle, toets drie."
        );
        assert_eq!(
            p.text(Lang::En),
            "For Borsele, press one. For Goes, press two. For Kapelle, press three."
        );
        assert_eq!(
            p.text(Lang::Fy),
            "Foar Borsele, toets ien. Foar Goes, toets twa. Foar Kapelle, toets trije."
        );
    }

    #[test]
    fn confirm_which_one_and_not_connected_read_naturally() {
        assert_eq!(
            Prompt::Confirm {
                name: "Kapelle".into()
            }
            .text(Lang::Nl),
            "Bedoelt u Kapelle? Zeg ja of toets 1. Zeg nee of toets 2."
        );
        let w = Prompt::WhichOne {
            said: "Velp".into(),
            options: items(&["Rheden", "Land van Cuijk"]),
        };
        assert_eq!(
            w.text(Lang::Nl),
            "Welke Velp bedoelt u: in Rheden of in Land van Cuijk? Voor Rheden, toets één. Voor Land van Cuijk, toets twee."
        );
        let n = Prompt::NotConnected {
            name: "Haarlemmermeer".into(),
            number: "(023) 567 56 75".into(),
            forwarding: false,
        };
        assert_eq!(
            n.text(Lang::Nl),
            "De gemeente Haarlemmermeer is niet aangesloten op veertien plus. U kunt bellen met nul twee drie, vijf zes zeven, zesenvijftig, vijfenzeventig."
        );
        let o = Prompt::OtherAreaCode {
            name: "Epe".into(),
            fourteen: "140578".into(),
            forwarding: false,
        };
        assert_eq!(
            o.text(Lang::Nl),
            "De gemeente Epe hoort bij veertien, nul vijf zeven acht. Belt u dat nummer."
        );
        assert_eq!(
            o.text(Lang::En),
            "The municipality of Epe belongs to fourteen, zero five seven eight. Please call that number."
        );
    }

    #[test]
    fn closed_notice_names_the_next_opening() {
        let c = Prompt::Closed {
            name: "Goes".into(),
            opens: Some((0, 8, 30)),
        };
        assert_eq!(
            c.text(Lang::Nl),
            "De gemeente Goes is nu gesloten. U kunt weer bellen op maandag vanaf acht uur dertig."
        );
        assert_eq!(
            c.text(Lang::Fy),
            "De gemeente Goes is no ticht. Jo kinne wer skilje op moandei fan acht oere tritich ôf."
        );
    }

    #[test]
    fn every_language_has_every_phrase_and_german_falls_back_to_english() {
        let nl = Prompt::all_phrases(Lang::Nl);
        let en = Prompt::all_phrases(Lang::En);
        let fy = Prompt::all_phrases(Lang::Fy);
        assert!(nl.len() > 20, "{nl:?}");
        assert!(nl.iter().all(|p| !p.trim().is_empty()));
        // The languages differ, phrase for phrase (no untranslated Dutch left in English).
        assert!(
            en.iter()
                .all(|p| !nl.contains(p) || p.len() <= 2 || p == "in"),
            "{en:?}"
        );
        assert!(fy.iter().any(|p| p.contains("jo")));
        assert_eq!(Prompt::all_phrases(Lang::De), en);
    }
}
