//! Criterion benchmark of `normalise` and `decide` over all 141 area codes in four forms each.
//! Run: cargo bench -p veertien-core --bench decide

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use veertien_core::{CallInfo, Plan, Settings, decide, normalise};

fn inputs(plan: &Plan) -> Vec<String> {
    plan.area_codes()
        .iter()
        .flat_map(|a| {
            let code = &a.code;
            [
                a.fourteen.clone(),
                format!("+31{}", a.fourteen),
                format!("tel:+31-14-{code}"),
                format!("sip:{}@sbc.example.nl;user=phone", a.fourteen),
            ]
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let plan = Plan::builtin();
    let settings = Settings::defaults(plan);
    let numbers = inputs(plan);
    let now: jiff::Timestamp = "2026-03-11T09:00:00Z".parse().unwrap();
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(numbers.len() as u64));
    g.bench_function("normalise_all_141_codes_x4_forms", |b| {
        b.iter(|| {
            for n in &numbers {
                black_box(normalise(black_box(n)).ok());
            }
        })
    });
    g.bench_function("decide_all_141_codes_x4_forms", |b| {
        b.iter(|| {
            for n in &numbers {
                black_box(decide(&CallInfo { dialled: black_box(n), caller: Some("0201234567") }, plan, &settings, now));
            }
        })
    });
    g.finish();
    // Loading and validating the whole plan (what an operator's reload costs) and building default settings.
    c.bench_function("load_plan_from_sources", |b| {
        b.iter(|| black_box(Plan::from_sources(&veertien_core::PlanSources::builtin()).unwrap()))
    });
    c.bench_function("settings_defaults", |b| b.iter(|| black_box(Settings::defaults(plan))));
    // A shared code with caller match (the most expensive path: 9 candidates).
    c.bench_function("decide_035_nine_candidates", |b| {
        b.iter(|| black_box(decide(&CallInfo { dialled: black_box("14035"), caller: Some("0351234567") }, plan, &settings, now)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
