//! Per-call latency distribution of `decide` (p50/p99/p99.9/max) with an HDR histogram: criterion
//! reports means, the target is a percentile.
//! Run: cargo bench -p veertien-core --bench decide_latency
//!
//! Each call is timed individually with `Instant`, so every figure includes one clock read
//! (~20–40 ns on this machine; printed as "timer overhead" for reference).

use std::hint::black_box;
use std::time::Instant;

use hdrhistogram::Histogram;
use veertien_core::{CallInfo, Plan, Settings, decide};

const ROUNDS: usize = 2_000;

fn main() {
    // `cargo bench` passes "--bench"; a filter argument that does not match skips the run.
    if std::env::args().skip(1).any(|a| !a.starts_with("--") && !"decide_latency".contains(a.as_str())) {
        return;
    }
    let plan = Plan::builtin();
    let settings = Settings::defaults(plan);
    let now: jiff::Timestamp = "2026-03-11T09:00:00Z".parse().unwrap();
    let mut numbers = Vec::new();
    for a in plan.area_codes() {
        numbers.push(a.fourteen.clone());
        numbers.push(format!("+31{}", a.fourteen));
        numbers.push(format!("tel:+31-14-{}", a.code));
        numbers.push(format!("sip:{}@sbc.example.nl;user=phone", a.fourteen));
    }
    let callers = [None, Some("0201234567"), Some("+31612345678")];

    let mut timer = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
    for _ in 0..100_000 {
        let t = Instant::now();
        let u = Instant::now();
        timer.record((u - t).as_nanos() as u64).ok();
    }

    // Warm-up.
    for n in &numbers {
        black_box(decide(&CallInfo { dialled: n, caller: None }, plan, &settings, now));
    }
    let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
    let started = Instant::now();
    for r in 0..ROUNDS {
        let caller = callers[r % callers.len()];
        for n in &numbers {
            let t = Instant::now();
            let d = decide(&CallInfo { dialled: black_box(n), caller }, plan, &settings, now);
            let e = t.elapsed();
            black_box(d);
            h.record(e.as_nanos() as u64).ok();
        }
    }
    let wall = started.elapsed();
    println!("decide latency over {} calls ({} inputs: 141 area codes x 4 forms, 3 caller variants)", h.len(), numbers.len());
    for q in [0.5, 0.9, 0.99, 0.999] {
        println!("  p{:<5} {:>7} ns", q * 100.0, h.value_at_quantile(q));
    }
    println!("  max    {:>7} ns", h.max());
    println!("  mean   {:>7.0} ns", h.mean());
    println!("  throughput {:.0} decisions/s on one core", h.len() as f64 / wall.as_secs_f64());
    println!("  timer overhead p50 {} ns, p99 {} ns", timer.value_at_quantile(0.5), timer.value_at_quantile(0.99));
}
