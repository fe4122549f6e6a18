//! Name variants derived from the plan and the two curated tables shipped with this crate.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use veertien_core::Plan;

use crate::normalize::{compact, tokens};

const ALIASES_CSV: &str = include_str!("../data/aliases.csv");
const FORMER_CSV: &str = include_str!("../data/former_municipalities.csv");

/// Parses one of the embedded tables: (first column, second column) per row.
fn pairs(file: &str, text: &str, cols: (&str, &str)) -> Result<Vec<(String, String)>, String> {
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let header = rdr.headers().map_err(|e| format!("{file}: line 1: {e}"))?.clone();
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| format!("{file}: line 1: missing column `{name}`"))
    };
    let (a, b) = (col(cols.0)?, col(cols.1)?);
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| format!("{file}: {e}"))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let (x, y) = (rec.get(a).unwrap_or(""), rec.get(b).unwrap_or(""));
        if x.is_empty() || y.is_empty() {
            return Err(format!("{file}: line {line}: `{}` and `{}` must both be filled", cols.0, cols.1));
        }
        out.push((x.to_string(), y.to_string()));
    }
    Ok(out)
}

/// (CBS name of the municipality, alias). A defect in the embedded table is a build defect,
/// caught by this crate's tests.
pub fn aliases() -> &'static [(String, String)] {
    static T: OnceLock<Vec<(String, String)>> = OnceLock::new();
    T.get_or_init(|| {
        pairs("crates/names/data/aliases.csv", ALIASES_CSV, ("municipality", "alias")).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// (former municipality, CBS name of its successor) for mergers the plan cannot derive.
pub fn former_municipalities() -> &'static [(String, String)] {
    static T: OnceLock<Vec<(String, String)>> = OnceLock::new();
    T.get_or_init(|| {
        pairs("crates/names/data/former_municipalities.csv", FORMER_CSV, ("former_name", "successor_name"))
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

/// "Bergen (NH.)" → "Bergen"; names without a CBS qualifier are returned unchanged.
pub fn strip_cbs_qualifier(name: &str) -> &str {
    match name.rfind(" (") {
        Some(i) if name.ends_with(')') => &name[..i],
        _ => name,
    }
}

/// Abbreviated register spellings nobody says aloud: "Bergen NH", "Nuenen c.a.", "Beek (L.)".
pub fn is_written_form(name: &str) -> bool {
    let last = name.rsplit(' ').next().unwrap_or("");
    name.contains(['(', '.']) || (name.contains(' ') && last.len() <= 3 && last.bytes().all(|b| b.is_ascii_uppercase()))
}

/// Variants callers use for names with a leading article: "'s-Hertogenbosch" → "Hertogenbosch".
pub fn derived_aliases(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["'s-", "'s ", "'t-", "'t "] {
        if let Some(rest) = name.strip_prefix(prefix) {
            out.push(rest.to_string());
        }
    }
    out
}

/// How callers disambiguate a homonym aloud: "Bergen Limburg", "Velp in Gelderland".
pub fn province_qualified(base: &str, province: &str) -> Vec<String> {
    let mut spoken = vec![province.to_string()];
    match province {
        "Noord-Brabant" => spoken.push("Brabant".into()),
        "Friesland" | "Fryslân" => spoken.extend(["Friesland".into(), "Fryslân".into()]),
        _ => {}
    }
    spoken.iter().flat_map(|p| [format!("{base} {p}"), format!("{base} in {p}")]).collect()
}

/// A PostNL place name as it should be shown and spoken: "Bergen Op Zoom" → "Bergen op Zoom",
/// "Bavel Ac" → "Bavel" (Ac is PostNL's mark for Alphen-Chaam, not part of the name).
pub fn place_display(base: &str) -> String {
    const PARTICLES: &[&str] = &["aan", "bij", "de", "den", "der", "en", "het", "in", "onder", "op", "over", "te", "ten", "ter", "van"];
    let base = base.strip_suffix(" Ac").unwrap_or(base);
    base.split(' ')
        .enumerate()
        .map(|(i, w)| {
            let lower = w.to_lowercase();
            if i > 0 && PARTICLES.contains(&lower.as_str()) { lower } else { w.to_string() }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Compact keys of names that denote more than one municipality (a municipality's own bare
/// name or a place base name), which therefore get province-qualified variants.
pub fn homonym_bases(plan: &Plan) -> HashSet<String> {
    let mut owners: HashMap<String, HashSet<u16>> = HashMap::new();
    for m in plan.municipalities() {
        owners.entry(compact(&tokens(strip_cbs_qualifier(&m.name)))).or_default().insert(m.id.0);
    }
    for p in plan.places() {
        owners.entry(compact(&tokens(&place_display(&p.base_name)))).or_default().insert(p.municipality.0);
    }
    owners.into_iter().filter(|(_, o)| o.len() > 1).map(|(k, _)| k).collect()
}

/// A content hash of everything the index is built from.
pub fn fingerprint(plan: &Plan) -> u64 {
    let mut h = DefaultHasher::new();
    for m in plan.municipalities() {
        (&m.name, &m.everyday_name, &m.province, &m.area_codes, &m.general_number.fourteen).hash(&mut h);
    }
    for p in plan.places() {
        (&p.base_name, p.municipality).hash(&mut h);
    }
    for f in plan.former_municipalities() {
        (&f.name, f.successor).hash(&mut h);
    }
    for a in plan.area_codes() {
        (&a.code, &a.region_name, &a.alt_region_name).hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tables_parse_and_name_real_municipalities() {
        let plan = Plan::builtin();
        assert!(aliases().len() >= 15);
        for (m, a) in aliases() {
            assert!(plan.by_name(m).is_some(), "aliases.csv: unknown municipality {m} (alias {a})");
        }
        for (former, succ) in former_municipalities() {
            assert!(plan.by_name(succ).is_some(), "former_municipalities.csv: unknown successor {succ} of {former}");
            assert!(plan.by_name(former).is_none(), "{former} is still a municipality");
            // Every row must be a real ending in the plan's merger events.
            let ended = plan.former_municipalities().iter().find(|f| f.name == *former);
            let f = ended.unwrap_or_else(|| panic!("{former} has no 'opgeheven' event in herindelingen.csv"));
            // Where the plan derives a successor itself, it must agree with the table.
            if let Some(s) = f.successor {
                assert_eq!(&plan.municipality(s).name, succ, "successor of {former}");
            }
        }
    }

    #[test]
    fn qualifiers_and_display() {
        assert_eq!(strip_cbs_qualifier("Bergen (NH.)"), "Bergen");
        assert_eq!(strip_cbs_qualifier("Goes"), "Goes");
        assert!(is_written_form("Bergen NH") && is_written_form("Nuenen c.a.") && is_written_form("Beek (L.)"));
        assert!(!is_written_form("Den Bosch") && !is_written_form("Ede") && !is_written_form("Bergen op Zoom"));
        assert_eq!(derived_aliases("'s-Hertogenbosch"), ["Hertogenbosch"]);
        assert_eq!(place_display("Bergen Op Zoom"), "Bergen op Zoom");
        assert_eq!(place_display("Bavel Ac"), "Bavel");
        assert_eq!(place_display("De Heen"), "De Heen");
        assert!(province_qualified("Velp", "Noord-Brabant").contains(&"Velp Brabant".to_string()));
    }

    #[test]
    fn pairs_reports_file_and_line() {
        let e = pairs("x.csv", "a,b\nfoo,\n", ("a", "b")).unwrap_err();
        assert!(e.contains("x.csv") && e.contains("line 2"), "{e}");
        let e = pairs("x.csv", "a,c\n", ("a", "b")).unwrap_err();
        assert!(e.contains("missing column `b`"), "{e}");
    }
}
