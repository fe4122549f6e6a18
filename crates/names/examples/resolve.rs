//! `cargo run -p veertien-names --example resolve -- <area code> "<what the caller said>"...`
//! prints each resolution as JSON (the CLI's `veertien route --say` is the user-facing form).

use veertien_core::{Plan, Settings};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((code, texts)) = args.split_first() else {
        eprintln!("gebruik / usage: resolve <netnummer> \"<tekst>\"...");
        std::process::exit(2);
    };
    let plan = Plan::builtin();
    let settings = Settings::defaults(plan);
    let Some(area) = plan.area_code(code) else {
        eprintln!("onbekend netnummer / unknown area code: {code}");
        std::process::exit(2);
    };
    for t in texts {
        let r = veertien_names::resolve(t, &area.municipalities, plan, &settings);
        println!("{t:?} on {code}: {}", serde_json::to_string(&r).expect("serialisable"));
    }
}
