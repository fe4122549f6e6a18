//! Shared by the store benches: the real municipalities (weighted by population) and a
//! generator of realistic call records for them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::json;
use veertien_store::*;

pub struct Muni {
    pub cbs: String,
    pub area_code: String,
    pub fourteen: String,
    pub shared: bool,
    pub weight: f64,
}

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/numberplan")
}

pub fn municipalities() -> Vec<Muni> {
    let mut pop: HashMap<String, f64> = HashMap::new();
    let mut r = csv::Reader::from_path(data_dir().join("gemeenten.csv")).expect("gemeenten.csv");
    let h = r.headers().unwrap().clone();
    let (ci, pi) = (
        h.iter().position(|c| c == "cbs_code").unwrap(),
        h.iter().position(|c| c == "population").unwrap(),
    );
    for row in r.records() {
        let row = row.unwrap();
        pop.insert(row[ci].to_string(), row[pi].parse().unwrap_or(20_000.0));
    }
    let mut per_code: HashMap<String, usize> = HashMap::new();
    let mut rows = Vec::new();
    let mut r = csv::Reader::from_path(data_dir().join("netnummers.csv")).expect("netnummers.csv");
    for row in r.records() {
        let row = row.unwrap();
        *per_code.entry(row[0].to_string()).or_default() += 1;
        rows.push((row[0].to_string(), row[1].to_string(), row[3].to_string()));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (area, fourteen, cbs) in rows {
        if !seen.insert(cbs.clone()) {
            continue;
        }
        out.push(Muni {
            weight: *pop.get(&cbs).unwrap_or(&20_000.0),
            shared: per_code[&area] > 1,
            cbs,
            area_code: area,
            fourteen,
        });
    }
    out
}

pub fn record(rng: &mut StdRng, id: u64, m: &Muni, received: i64) -> CallRecord {
    let caller = format!("06{:08}", rng.random_range(0..100_000_000u64));
    let mut r = CallRecord::received(format!("c{id:09}"), format!("{id:x}@carrier"), "node-1", caller, m.fourteen.clone(), received);
    r.normalised = Some(m.fourteen.clone());
    r.area_code = Some(m.area_code.clone());
    r.decision_kind = "forward".into();
    r.municipality_cbs = Some(m.cbs.clone());
    r.destination = Some(format!("+31{}1234567", &m.area_code[1..]));
    r.decision = json!({"kind": "forward", "cbs": m.cbs, "destination": r.destination}).into();
    let mut t = received;
    if m.shared {
        // Shared area code: the IVR asks for the municipality.
        let first = rng.random_bool(0.85);
        t += rng.random_range(4_000..15_000);
        r.ivr = Some(json!({"heard": "…", "recognised_first_time": first, "corrections": if first {0} else {1},
            "turns": [{"prompt": "welke gemeente", "score": 0.9}]}));
        if rng.random_bool(0.03) {
            r.outcome = Some(Outcome::CallerHungUpDuringSelection);
            r.ended_ms = Some(t);
            r.sip_status = Some(487);
            return r;
        }
    }
    r.decided_ms = Some(t + 1);
    if rng.random_bool(0.6) {
        r.delivery = Some(Delivery::Redirect);
        r.outcome = Some(Outcome::Redirected);
        r.sip_status = Some(302);
        r.post_dial_delay_ms = Some(rng.random_range(1..20));
        r.ended_ms = Some(t + 2);
    } else {
        r.delivery = Some(Delivery::Bridge);
        r.post_dial_delay_ms = Some(rng.random_range(50..3_000));
        let ring = t + r.post_dial_delay_ms.unwrap();
        r.ringing_ms = Some(ring);
        let x: f64 = rng.random();
        let (o, answer) = match x {
            x if x < 0.80 => (Outcome::Answered, Some(ring + rng.random_range(2_000..45_000))),
            x if x < 0.88 => (Outcome::NoAnswer, None),
            x if x < 0.92 => (Outcome::Busy, None),
            x if x < 0.99 => (Outcome::CallerHungUpWhileRinging, None),
            _ => (Outcome::Unreachable, None),
        };
        r.outcome = Some(o);
        r.answered_ms = answer;
        r.sip_status = Some(if o == Outcome::Answered { 200 } else { 480 });
        r.ended_ms = Some(answer.unwrap_or(ring) + rng.random_range(10_000..300_000));
        r.route_steps = json!([{"step": "primary", "result": o.as_str()}]).into();
    }
    r
}

