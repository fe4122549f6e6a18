//! `veertien calls`: the real binary reads a store written by the SIP service's record writer
//! and lists, filters and prints the calls (JSON one object per line, or a Dutch/English table).

use assert_cmd::Command;
use serde_json::Value;
use veertien_store::{CallRecord, Delivery, Outcome, Store, WriterConfig};

fn veertien() -> Command {
    Command::cargo_bin("veertien").unwrap()
}

/// Three calls as the SIP service records them: a bridged call to Kapelle answered after
/// overflow, a redirect to Amsterdam, an unknown area code refused.
fn sample(now_ms: i64) -> Vec<CallRecord> {
    let mut answered = CallRecord::received("n1-b-1", "sip-1", "n1", "0612345678", "sip:140113@127.0.0.1", now_ms - 60_000);
    answered.normalised = Some("140113".into());
    answered.area_code = Some("0113".into());
    answered.decision_kind = "ask".into();
    answered.municipality_cbs = Some("GM0678".into());
    answered.destination = Some("sip:overflow@127.0.0.1:5072".into());
    answered.delivery = Some(Delivery::Bridge);
    answered.decided_ms = Some(now_ms - 59_990);
    answered.ringing_ms = Some(now_ms - 59_900);
    answered.answered_ms = Some(now_ms - 55_000);
    answered.ended_ms = Some(now_ms - 30_000);
    answered.outcome = Some(Outcome::Answered);
    answered.sip_status = Some(200);
    answered.post_dial_delay_ms = Some(100);
    answered.route_steps = serde_json::json!([{"label": "primary", "result": "no_answer"}, {"label": "overflow", "result": "answered"}]).into();

    let mut redirected = CallRecord::received("n1-2", "sip-2", "n1", "0201234567", "sip:14020@127.0.0.1", now_ms - 20_000);
    redirected.normalised = Some("14020".into());
    redirected.area_code = Some("020".into());
    redirected.decision_kind = "forward".into();
    redirected.municipality_cbs = Some("GM0363".into());
    redirected.destination = Some("tel:+31201234567".into());
    redirected.delivery = Some(Delivery::Redirect);
    redirected.ended_ms = Some(now_ms - 20_000);
    redirected.outcome = Some(Outcome::Redirected);
    redirected.sip_status = Some(302);
    redirected.post_dial_delay_ms = Some(1);

    let mut rejected = CallRecord::received("n1-3", "sip-3", "n1", "0612345678", "sip:14099@127.0.0.1", now_ms - 10_000);
    rejected.decision_kind = "reject".into();
    rejected.ended_ms = Some(now_ms - 10_000);
    rejected.outcome = Some(Outcome::Rejected);
    rejected.reject_reason = Some("unknown_area_code".into());
    rejected.sip_status = Some(404);
    vec![answered, redirected, rejected]
}

fn write_store(path: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = Store::open(path.to_str().unwrap()).await.unwrap();
        let w = store.writer(WriterConfig::default());
        for r in sample(jiff::Timestamp::now().as_millisecond()) {
            w.try_submit(r).unwrap();
        }
        let m = w.flush_and_close(std::time::Duration::from_secs(10)).await;
        assert_eq!(m.written, 3, "{m:?}");
        store.close().await;
    });
}

fn json_lines(args: &[&str]) -> Vec<Value> {
    let out = veertien().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn calls_lists_filters_and_prints() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calls.db");
    write_store(&db);
    let db = db.to_str().unwrap();

    let all = json_lines(&["calls", "--db", db, "--json"]);
    let ids: Vec<&str> = all.iter().map(|c| c["call_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["n1-3", "n1-2", "n1-b-1"], "newest first");
    let bridged = &all[2];
    assert_eq!(bridged["outcome"], "answered");
    assert_eq!(bridged["delivery"], "bridge");
    assert_eq!(bridged["route_steps"][1]["label"], "overflow");

    let answered = json_lines(&["calls", "--db", db, "--json", "--outcome", "answered"]);
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0]["call_id"], "n1-b-1");

    // A municipality by name or CBS code.
    let kapelle = json_lines(&["calls", "--db", db, "--json", "--municipality", "Kapelle"]);
    assert_eq!(kapelle.len(), 1);
    assert_eq!(kapelle[0]["municipality_cbs"], "GM0678");
    assert_eq!(json_lines(&["calls", "--db", db, "--json", "--municipality", "GM0363"]).len(), 1);

    assert_eq!(json_lines(&["calls", "--db", db, "--json", "--limit", "2"]).len(), 2);
    assert_eq!(json_lines(&["calls", "--db", db, "--json", "--since", "15s"]).len(), 1, "only the call 10 s ago");

    let table = veertien().args(["calls", "--db", db]).output().unwrap();
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("uitkomst"), "Dutch header by default:\n{text}");
    assert!(text.contains("beantwoord") && text.contains("doorgeschakeld") && text.contains("geweigerd (unknown_area_code)"), "{text}");
    let en = veertien().args(["calls", "--db", db, "--lang", "en"]).output().unwrap();
    assert!(String::from_utf8(en.stdout).unwrap().contains("outcome"));
}

#[test]
fn calls_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.db");
    let out = veertien().args(["calls", "--db", missing.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("none.db"), "{}", String::from_utf8_lossy(&out.stderr));

    let db = dir.path().join("calls.db");
    write_store(&db);
    let out = veertien().args(["calls", "--db", db.to_str().unwrap(), "--municipality", "Atlantis"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Atlantis"));
    let out = veertien().args(["calls", "--db", db.to_str().unwrap(), "--since", "gisteren-ish"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
}
