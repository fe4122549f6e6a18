//! Is `confidence` calibrated? Over every shared area code of the real plan, every phrase of
//! every candidate is said cleanly, inside carrier phrases, with extra words, and with the
//! errors a recogniser makes (a dropped, doubled or swapped letter, Dutch sound confusions);
//! plus garbage. Accuracy is then tallied per confidence band, which is what the dialogue
//! gates on (see docs/PERFORMANCE-names.md for the table):
//! `cargo test -p veertien-names --release --test calibration -- --nocapture`

use veertien_core::{MunicipalityId, Plan, Settings};
use veertien_names::{MatchKind, Outcome, resolve, vocabulary};

const CARRIERS: &[(&str, &str)] = &[
    ("", ""),
    ("gemeente ", ""),
    ("ik wil ", ""),
    ("ik wil graag de gemeente ", " alstublieft"),
    ("ehm ", ""),
    ("", " alstublieft"),
    ("met ", ""),
    ("ik woon in ", ""),
];

const CONFUSIONS: &[(&str, &str)] =
    &[("ij", "ei"), ("ei", "ij"), ("g", "ch"), ("ch", "g"), ("dt", "t"), ("d", "t"), ("ou", "au"), ("aa", "a"), ("ee", "e"), ("oo", "o"), ("v", "f"), ("z", "s")];

const GARBAGE: &[&str] = &[
    "ik weet het niet",
    "hallo?",
    "ik wil een afspraak maken",
    "mag ik iemand spreken",
    "sorry wat zegt u",
    "ik bel over mijn paspoort",
    "mijn buren maken lawaai",
    "nee",
    "ehm",
    "de burgemeester graag",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Noise {
    Clean,
    Carrier,
    ExtraWord,
    Confusion,
    Typo,
}

fn corrupt(rng: &mut fastrand::Rng, text: &str, noise: Noise) -> Option<String> {
    let lower = text.to_lowercase();
    match noise {
        Noise::Clean => Some(text.to_string()),
        Noise::Carrier => {
            let (a, b) = CARRIERS[rng.usize(1..CARRIERS.len())];
            Some(format!("{a}{text}{b}"))
        }
        Noise::ExtraWord => {
            let w = ["zeg", "eigenlijk", "toch", "zo", "nou", "even"][rng.usize(..6)];
            Some(if rng.bool() { format!("{w} {text}") } else { format!("{text} {w}") })
        }
        Noise::Confusion => {
            let options: Vec<_> = CONFUSIONS.iter().filter(|(from, _)| lower.contains(from)).collect();
            let (from, to) = options.get(rng.usize(..options.len().max(1)))?;
            let at: Vec<_> = lower.match_indices(from).map(|(i, _)| i).collect();
            let i = at[rng.usize(..at.len())];
            Some(format!("{}{}{}", &lower[..i], to, &lower[i + from.len()..]))
        }
        Noise::Typo => {
            let chars: Vec<char> = lower.chars().collect();
            if chars.len() < 5 {
                return None;
            }
            let i = rng.usize(1..chars.len() - 1);
            let mut c = chars.clone();
            match rng.usize(..3) {
                0 => {
                    c.remove(i);
                }
                1 => c.insert(i, chars[i]),
                _ => c.swap(i, i + 1),
            }
            Some(c.into_iter().collect())
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    n: u32,
    right: u32,
    wrong: u32,
    asked: u32,
    none: u32,
}

fn band(conf: f32) -> usize {
    match conf {
        c if c >= 0.9 => 0,
        c if c >= 0.75 => 1,
        c if c >= 0.6 => 2,
        c if c > 0.0 => 3,
        _ => 4,
    }
}

const BANDS: [&str; 5] = ["≥ 0.90", "0.75–0.90", "0.60–0.75", "< 0.60", "0 (no match)"];

#[test]
fn confidence_bands_are_calibrated_on_the_real_area_code_groups() {
    let plan = Plan::builtin();
    let settings = Settings::defaults(plan);
    let mut rng = fastrand::Rng::with_seed(14);
    let mut by_band = [Tally::default(); 5];
    let mut by_noise: Vec<(Noise, Tally)> = Vec::new();
    let mut garbage_confident = Vec::new();
    for a in plan.area_codes().iter().filter(|a| a.is_shared()) {
        let cands: &[MunicipalityId] = &a.municipalities;
        for phrase in vocabulary(cands, plan) {
            if phrase.kind == MatchKind::Place && rng.u8(..4) != 0 {
                continue; // a sample of the villages keeps the run short
            }
            for noise in [Noise::Clean, Noise::Carrier, Noise::ExtraWord, Noise::Confusion, Noise::Typo] {
                let Some(said) = corrupt(&mut rng, &phrase.text, noise) else { continue };
                let r = resolve(&said, cands, plan, &settings);
                let t = &mut by_band[band(r.confidence)];
                t.n += 1;
                let nt = match by_noise.iter_mut().find(|(k, _)| *k == noise) {
                    Some((_, t)) => t,
                    None => {
                        by_noise.push((noise, Tally::default()));
                        &mut by_noise.last_mut().unwrap().1
                    }
                };
                nt.n += 1;
                match &r.outcome {
                    Outcome::Ambiguous { options } if options.contains(&phrase.municipality) => {
                        t.asked += 1;
                        nt.asked += 1;
                    }
                    Outcome::NoMatch => {
                        t.none += 1;
                        nt.none += 1;
                    }
                    _ if r.meant() == Some(phrase.municipality) => {
                        t.right += 1;
                        nt.right += 1;
                    }
                    _ => {
                        t.wrong += 1;
                        nt.wrong += 1;
                        if r.confidence >= 0.9 {
                            println!("confident miss on {}: {said:?} ({}) → {:?} {}", a.code, phrase.text, r.outcome, r.confidence);
                        }
                    }
                }
            }
        }
        for g in GARBAGE {
            let r = resolve(g, cands, plan, &settings);
            if r.confidence >= 0.6 {
                garbage_confident.push(format!("{g:?} on {}: {:?}", a.code, r.outcome));
            }
        }
    }
    println!("| confidence | n | right | wrong | asked (homonym) | no match | wrong among decided |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (i, t) in by_band.iter().enumerate() {
        let decided = (t.right + t.wrong).max(1);
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2}% |",
            BANDS[i],
            t.n,
            t.right,
            t.wrong,
            t.asked,
            t.none,
            100.0 * t.wrong as f64 / decided as f64
        );
    }
    println!("| noise | n | right | wrong | asked | no match |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (k, t) in &by_noise {
        println!("| {k:?} | {} | {} | {} | {} | {} |", t.n, t.right, t.wrong, t.asked, t.none);
    }
    assert!(garbage_confident.is_empty(), "{garbage_confident:#?}");
    let high = by_band[0];
    assert!(high.n > 1000, "too few samples: {}", high.n);
    // Put through without confirmation only where that is (nearly) always right.
    assert!((high.wrong as f64) / (high.right + high.wrong) as f64 <= 0.005, "≥0.9 band misroutes {} of {}", high.wrong, high.n);
    let mid = by_band[1];
    assert!((mid.wrong as f64) / ((mid.right + mid.wrong).max(1) as f64) <= 0.05, "0.75–0.9 band: {} wrong of {}", mid.wrong, mid.n);
    // Clean and carrier-phrase input is always decided correctly or asked (real homonyms).
    for (k, t) in &by_noise {
        if matches!(k, Noise::Clean | Noise::Carrier) {
            assert_eq!(t.wrong + t.none, 0, "{k:?}: {} wrong, {} no match", t.wrong, t.none);
        }
    }
}
