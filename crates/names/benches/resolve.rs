//! `cargo bench -p veertien-names --bench resolve`
//!
//! Criterion timings of `resolve` over the whole national plan, plus a per-call latency
//! distribution (p50/p99/max) printed before the criterion runs, because criterion reports
//! means and medians of batches, not tail latency of single calls.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use veertien_core::{MunicipalityId, Plan, Settings};
use veertien_names::{NameIndex, resolve, vocabulary};

/// (candidates, what the caller said).
type Cases = Vec<(Vec<MunicipalityId>, String)>;

/// (candidates, text) for every area code × every candidate's CBS name.
fn all_pairs(plan: &Plan) -> Cases {
    let mut out = Vec::new();
    for a in plan.area_codes() {
        for &m in &a.municipalities {
            out.push((a.municipalities.clone(), plan.municipality(m).name.clone()));
        }
    }
    out
}

fn workloads(plan: &Plan) -> Vec<(&'static str, Cases)> {
    let pairs = all_pairs(plan);
    let carrier = pairs.iter().map(|(c, n)| (c.clone(), format!("ehm ik wil graag de gemeente {n} alstublieft"))).collect();
    let places = plan
        .places()
        .iter()
        .map(|p| (plan.area_codes_of(p.municipality).next().unwrap().municipalities.clone(), p.base_name.clone()))
        .collect();
    // A recogniser's near miss: the name with one letter dropped from its middle.
    let misheard = pairs
        .iter()
        .map(|(c, n)| {
            let chars: Vec<char> = n.chars().collect();
            let mid = chars.len() / 2;
            (c.clone(), chars[..mid].iter().chain(&chars[mid + 1..]).collect())
        })
        .collect();
    let other_code = plan
        .area_codes()
        .iter()
        .zip(plan.municipalities().iter().rev().cycle())
        .map(|(a, m)| (a.municipalities.clone(), m.name.clone()))
        .collect();
    let garbage = plan
        .area_codes()
        .iter()
        .flat_map(|a| {
            ["ik weet het niet", "hallo?", "ik wil een afspraak maken over mijn paspoort"]
                .map(|g| (a.municipalities.clone(), g.to_string()))
        })
        .collect();
    vec![
        ("exact_name", pairs),
        ("carrier_phrase", carrier),
        ("place", places),
        ("other_area_code", other_code),
        ("misheard_fuzzy", misheard),
        ("garbage", garbage),
    ]
}

/// CPU time of the calling thread: unlike wall time it excludes the time the thread waits
/// while other processes use the 2 shared cores, which otherwise dominates the tail.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn percentiles(name: &str, plan: &Plan, settings: &Settings, cases: &[(Vec<MunicipalityId>, String)]) {
    let mut wall: Vec<u64> = Vec::with_capacity(cases.len() * 20);
    let mut cpu: Vec<u64> = Vec::with_capacity(cases.len() * 20);
    for _ in 0..20 {
        for (cands, text) in cases {
            let c = thread_cpu_ns();
            let t = Instant::now();
            black_box(resolve(black_box(text), cands, plan, settings));
            wall.push(t.elapsed().as_nanos() as u64);
            cpu.push(thread_cpu_ns() - c);
        }
    }
    for (kind, v) in [("wall", &mut wall), ("cpu ", &mut cpu)] {
        v.sort_unstable();
        let q = |p: f64| v[((v.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
        println!(
            "latency {name:<16} {kind} n={:>6}  p50 {:>8.2} µs  p99 {:>8.2} µs  max {:>8.2} µs",
            v.len(),
            q(0.5),
            q(0.99),
            *v.last().unwrap() as f64 / 1000.0
        );
    }
}

fn bench(c: &mut Criterion) {
    let plan = Plan::builtin();
    let settings = Settings::defaults(plan);
    let work = workloads(plan);
    // Warm the shared index so the first timed call is not the build.
    black_box(resolve("Goes", &[], plan, &settings));
    for (name, cases) in &work {
        percentiles(name, plan, &settings, cases);
    }
    for (name, cases) in &work {
        c.bench_function(&format!("resolve/{name} ({} calls)", cases.len()), |b| {
            b.iter(|| {
                for (cands, text) in cases {
                    black_box(resolve(black_box(text), cands, plan, &settings));
                }
            })
        });
    }
    c.bench_function("NameIndex::new (whole plan)", |b| b.iter(|| black_box(NameIndex::new(plan))));
    let a = plan.area_code("035").unwrap();
    c.bench_function("vocabulary (035, 9 municipalities)", |b| b.iter(|| black_box(vocabulary(&a.municipalities, plan))));
    // An operator-loaded plan goes through the fingerprinted cache on every call.
    let loaded = plan.clone();
    let loaded_settings = Settings::defaults(&loaded);
    black_box(resolve("Goes", &[], &loaded, &loaded_settings));
    c.bench_function("resolve/exact_name on a loaded (non-builtin) plan, 1 call", |b| {
        b.iter(|| black_box(resolve(black_box("Kapelle"), &a.municipalities, &loaded, &loaded_settings)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
