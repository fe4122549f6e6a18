//! Behaviour checks shared by the SQLite and PostgreSQL test suites: each takes an empty,
//! freshly opened store.
#![allow(dead_code)]

use serde_json::json;
use veertien_store::*;

/// 2025-06-02 (a Monday) 00:00 Europe/Amsterdam.
pub const MON_2025_06_02: i64 = 1_748_815_200_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;

/// A finished, bridged, answered call to Goes via 14 0113 (shared area code, IVR used).
pub fn call(id: &str, received_ms: i64) -> CallRecord {
    let mut r = CallRecord::received(id, format!("{id}@carrier.example"), "node-1", "0612345678", "140113", received_ms);
    r.normalised = Some("140113".into());
    r.area_code = Some("0113".into());
    r.decision_kind = "forward".into();
    r.decision = json!({"kind": "forward", "cbs": "GM0664", "via": "ivr"}).into();
    r.municipality_cbs = Some("GM0664".into());
    r.destination = Some("+31113249249".into());
    r.delivery = Some(Delivery::Bridge);
    r.decided_ms = Some(received_ms + 40);
    r.ringing_ms = Some(received_ms + 9_000);
    r.answered_ms = Some(received_ms + 15_000);
    r.ended_ms = Some(received_ms + 200_000);
    r.outcome = Some(Outcome::Answered);
    r.sip_status = Some(200);
    r.post_dial_delay_ms = Some(120);
    r.route_steps = json!([{"step": "primary", "destination": "+31113249249", "result": "answered"}]).into();
    r.ivr = Some(json!({"heard": "goes", "scores": [{"cbs": "GM0664", "score": 0.93}],
        "recognised_first_time": true, "corrections": 0}));
    r
}

pub fn redirect(id: &str, received_ms: i64, cbs: &str, caller: &str) -> CallRecord {
    let mut r = CallRecord::received(id, format!("{id}@carrier.example"), "node-1", caller, "14020", received_ms);
    r.normalised = Some("14020".into());
    r.area_code = Some("020".into());
    r.decision_kind = "forward".into();
    r.decision = json!({"kind": "forward", "cbs": cbs}).into();
    r.municipality_cbs = Some(cbs.into());
    r.destination = Some("+31201234567".into());
    r.delivery = Some(Delivery::Redirect);
    r.decided_ms = Some(received_ms + 2);
    r.ended_ms = Some(received_ms + 3);
    r.outcome = Some(Outcome::Redirected);
    r.sip_status = Some(302);
    r.post_dial_delay_ms = Some(3);
    r
}

pub async fn roundtrip_and_upsert(store: &Store) {
    // In-progress record first, then the finished one replaces it.
    let mut early = CallRecord::received("c1", "abc@carrier", "node-1", "0612345678", "140113", MON_2025_06_02);
    early.decision_kind = "ask".into();
    store.write_calls(&[early.clone()]).await.unwrap();
    let got = store.get_call("c1").await.unwrap().unwrap();
    assert_eq!(got, early);
    assert!(!got.is_finished());

    let done = call("c1", MON_2025_06_02);
    store.write_calls(std::slice::from_ref(&done)).await.unwrap();
    assert_eq!(store.get_call("c1").await.unwrap().unwrap(), done);
    assert_eq!(store.count_calls().await.unwrap(), 1);
    assert!(store.get_call("nope").await.unwrap().is_none());
}

pub async fn list_filters(store: &Store) {
    let t = MON_2025_06_02;
    let mut recs = vec![
        call("a", t),
        redirect("b", t + HOUR, "GM0363", "0201111111"),
        redirect("c", t + 2 * HOUR, "GM0363", "0202222222"),
        redirect("d", t + 3 * HOUR, "GM0599", "0201111111"),
    ];
    let mut busy = call("e", t + 4 * HOUR);
    busy.outcome = Some(Outcome::Busy);
    busy.answered_ms = None;
    busy.sip_status = Some(486);
    recs.push(busy);
    store.write_calls(&recs).await.unwrap();

    let ids = |v: Vec<CallRecord>| v.into_iter().map(|r| r.call_id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_calls(&CallFilter::default()).await.unwrap()), ["e", "d", "c", "b", "a"]);
    let f = CallFilter { municipality: Some("GM0363".into()), ..Default::default() };
    assert_eq!(ids(store.list_calls(&f).await.unwrap()), ["c", "b"]);
    let f = CallFilter { outcome: Some(Outcome::Busy), ..Default::default() };
    assert_eq!(ids(store.list_calls(&f).await.unwrap()), ["e"]);
    let f = CallFilter { from_ms: Some(t + HOUR), to_ms: Some(t + 3 * HOUR), ..Default::default() };
    assert_eq!(ids(store.list_calls(&f).await.unwrap()), ["c", "b"]);
    let f = CallFilter { number: Some(" 0201111111 ".into()), ..Default::default() };
    assert_eq!(ids(store.list_calls(&f).await.unwrap()), ["d", "b"]);
    let f = CallFilter { number: Some("140113".into()), ..Default::default() };
    assert_eq!(ids(store.list_calls(&f).await.unwrap()), ["e", "a"]);
    let f = CallFilter { limit: 2, offset: 1, ..Default::default() };
    assert_eq!(ids(store.list_calls(&f).await.unwrap()), ["d", "c"]);
    let f = CallFilter { municipality: Some("GM0363".into()), outcome: Some(Outcome::Busy), ..Default::default() };
    assert!(store.list_calls(&f).await.unwrap().is_empty());

    // A 14-number in another form finds the calls to it, however the carrier wrote it;
    // digits that are no 14-number find the calls rejected for them.
    let mut plus = redirect("f", t + 5 * HOUR, "GM0363", "0203333333");
    plus.dialled = "tel:+31-14-020".into();
    let mut junk = CallRecord::received("g", "g@carrier.example", "node-1", "0204444444", "0900123456", t + 6 * HOUR);
    junk.decision_kind = "reject".into();
    junk.outcome = Some(Outcome::Rejected);
    store.write_calls(&[plus, junk]).await.unwrap();
    for form in ["14 020", "+3114020", "14020"] {
        let f = CallFilter { number: Some(form.into()), ..Default::default() };
        assert_eq!(ids(store.list_calls(&f).await.unwrap()), ["f", "d", "c", "b"], "{form}");
    }
    let f = CallFilter { number: Some("0900123456".into()), ..Default::default() };
    assert_eq!(ids(store.list_calls(&f).await.unwrap()), ["g"]);
}

pub async fn stats_figures(store: &Store) {
    let t = MON_2025_06_02;
    let mut recs = Vec::new();
    // Current period: Mon 2 June and Tue 3 June 2025 (local days).
    // Four bridged calls to Goes: ringing→answer after 6 s, 29 s, 31 s, and one never answered.
    for (i, wait) in [6_000, 29_000, 31_000].into_iter().enumerate() {
        let mut r = call(&format!("g{i}"), t + 9 * HOUR + i as i64);
        r.answered_ms = Some(r.ringing_ms.unwrap() + wait);
        r.post_dial_delay_ms = Some(100 * (i as i64 + 1));
        recs.push(r);
    }
    let mut na = call("g3", t + DAY + 10 * HOUR);
    na.answered_ms = None;
    na.outcome = Some(Outcome::NoAnswer);
    na.post_dial_delay_ms = Some(400);
    na.ivr = Some(json!({"recognised_first_time": false, "corrections": 2}));
    recs.push(na);
    // Caller hung up in the IVR (no name asked: keypad only).
    let mut hup = call("g4", t + DAY + 23 * HOUR + 30 * 60_000);
    hup.delivery = None;
    hup.ringing_ms = None;
    hup.answered_ms = None;
    hup.outcome = Some(Outcome::CallerHungUpDuringSelection);
    hup.post_dial_delay_ms = None;
    hup.ivr = Some(json!({"digits": "1"}));
    recs.push(hup);
    // A redirect elsewhere (national figures only) and one still in progress.
    recs.push(redirect("r1", t + 12 * HOUR, "GM0363", "0201111111"));
    let mut live = call("live", t + DAY + 11 * HOUR);
    live.outcome = None;
    live.ended_ms = None;
    live.ringing_ms = None;
    live.answered_ms = None;
    live.post_dial_delay_ms = None;
    live.ivr = None;
    recs.push(live);
    // Previous period (Sat 31 May, Sun 1 June): two redirects for Goes.
    recs.push(redirect("p1", t - DAY - 14 * HOUR, "GM0664", "0611111111"));
    recs.push(redirect("p2", t - 2 * HOUR, "GM0664", "0611111111"));
    // Outside both periods.
    recs.push(redirect("old", t - 10 * DAY, "GM0664", "0611111111"));
    store.write_calls(&recs).await.unwrap();

    let q = StatsQuery { municipality: Some("GM0664".into()), from_ms: t, to_ms: t + 2 * DAY };
    let s = store.stats(&q).await.unwrap();
    let c = &s.current;
    assert_eq!(c.calls, 6);
    assert_eq!(c.calls_per_day, vec![("2025-06-02".to_string(), 3), ("2025-06-03".to_string(), 3)]);
    assert_eq!(c.calls_per_hour_of_week.len(), 168);
    assert_eq!(c.calls_per_hour_of_week[9], 3); // Monday 09h
    assert_eq!(c.calls_per_hour_of_week[24 + 10], 1); // Tuesday 10h
    assert_eq!(c.calls_per_hour_of_week[24 + 23], 1); // Tuesday 23h
    let count = |o: Outcome| c.outcomes.iter().find(|(x, _)| *x == o).unwrap().1;
    assert_eq!(c.outcomes.len(), 9);
    assert_eq!(count(Outcome::Answered), 3);
    assert_eq!(count(Outcome::NoAnswer), 1);
    assert_eq!(count(Outcome::CallerHungUpDuringSelection), 1);
    assert_eq!(count(Outcome::Redirected), 0);
    assert_eq!(c.in_progress, 1);
    // 30 s norm: 4 bridged calls reached the destination, 2 answered within 30 s.
    assert_eq!((c.bridged_offered, c.answered_within_30s), (4, 2));
    assert_eq!(c.share_answered_within_30s, Some(0.5));
    assert_eq!(c.ivr_hangups, 1);
    assert_eq!(c.ivr_calls, 5);
    assert_eq!((c.name_asked, c.name_recognised_first_time), (4, 3));
    assert_eq!(c.share_name_recognised_first_time, Some(0.75));
    assert_eq!(c.corrections, 2);
    let p = c.post_dial_delay.clone().unwrap();
    assert_eq!((p.count, p.p50, p.p95, p.max), (4, 200, 400, 400));

    assert_eq!(s.previous.calls, 2);
    assert_eq!(s.previous.from_ms, t - 2 * DAY);
    assert_eq!(s.previous.calls_per_day, vec![("2025-05-31".to_string(), 1), ("2025-06-01".to_string(), 1)]);
    assert_eq!(s.previous.share_answered_within_30s, None);

    // National: the Amsterdam redirect counts too.
    let n = store.stats(&StatsQuery { municipality: None, ..q.clone() }).await.unwrap();
    assert_eq!(n.current.calls, 7);
    assert_eq!(n.current.outcomes.iter().find(|(o, _)| *o == Outcome::Redirected).unwrap().1, 1);

    let bad = StatsQuery { municipality: None, from_ms: t, to_ms: t };
    assert!(matches!(store.stats(&bad).await, Err(StoreError::InvalidInput(_))));
}

pub async fn settings_and_audit(store: &Store) {
    assert!(store.load_all_settings().await.unwrap().is_empty());
    let v1 = json!({"status": "active", "destinations": ["+31113249249"], "delivery": "bridge",
        "overflow": {"partner": "GM0678", "timeout_s": 20}});
    let s1 = store.save_settings("GM0664", &v1, "admin@goes.nl").await.unwrap();
    assert_eq!(s1.version, 1);
    let whats: Vec<&str> = s1.changes.iter().map(|c| c.what.as_str()).collect();
    assert_eq!(whats, ["delivery", "destinations", "overflow", "status"]);
    assert!(s1.changes.iter().all(|c| c.before.is_none()));

    let mut v2 = v1.clone();
    v2["overflow"]["timeout_s"] = json!(30);
    v2["destinations"] = json!(["+31113000000"]);
    let s2 = store.save_settings("GM0664", &v2, "admin@goes.nl").await.unwrap();
    assert_eq!(s2.version, 2);
    assert_eq!(s2.changes.len(), 2);
    let to = s2.changes.iter().find(|c| c.what == "overflow.timeout_s").unwrap();
    assert_eq!((to.before.clone(), to.after.clone()), (Some(json!(20)), Some(json!(30))));

    // Identical document: no new version, no audit noise.
    let s3 = store.save_settings("GM0664", &v2, "someone").await.unwrap();
    assert_eq!((s3.version, s3.changes.len()), (2, 0));

    // Stale edit refused.
    let err = store.save_settings_if_version("GM0664", &v1, "other@goes.nl", 1).await.unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict { expected: 1, current: 2, .. }), "{err}");
    store.save_settings_if_version("GM0654", &v1, "admin@borsele.nl", 0).await.unwrap();

    // Bad input named.
    let e = store.save_settings("GM0664", &json!([1]), "x").await.unwrap_err();
    assert!(e.to_string().contains("JSON object"), "{e}");
    assert!(store.save_settings("GM 0664", &v1, "x").await.is_err());
    assert!(store.save_settings("GM0664", &v1, " ").await.is_err());

    let all = store.load_all_settings().await.unwrap();
    assert_eq!(all.iter().map(|s| (s.cbs.as_str(), s.version)).collect::<Vec<_>>(), [("GM0654", 1), ("GM0664", 2)]);
    assert_eq!(all[1].document, v2);
    assert_eq!(all[1].updated_by, "admin@goes.nl");

    let ev = store
        .append_audit(&NewAuditEntry {
            actor: "operator".into(),
            municipality_cbs: None,
            what: "incident.declared".into(),
            before: None,
            after: Some(json!({"title": "storing"})),
        })
        .await
        .unwrap();
    let goes = store
        .audit_log(&AuditFilter { municipality: Some("GM0664".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(goes.len(), 6);
    assert!(goes.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert!(goes.iter().all(|e| e.municipality_cbs.as_deref() == Some("GM0664")));
    let all = store.audit_log(&AuditFilter::default()).await.unwrap();
    assert_eq!(all[0], ev);
    assert_eq!(all.len(), 6 + 4 + 1);
}

/// Notification contacts, webhooks, the delivery log and synthetic test calls
/// (`incidents.rs`), read back through the same row mappings on either engine.
pub async fn notifications(s: &Store) {
    let c = s.add_contact("gm0664", " KCC@Goes.nl ", "KCC", "beheer@goes.nl").await.unwrap();
    assert_eq!(c.email, "kcc@goes.nl");
    assert!(matches!(s.add_contact("GM0664", "kcc@goes.nl", "", "x").await, Err(StoreError::Conflict(_))));
    assert!(!s.remove_contact("GM0678", c.id, "x").await.unwrap(), "another municipality's id removes nothing");
    // Every column read back as written.
    assert_eq!(s.contacts("GM0664").await.unwrap(), vec![c.clone()]);
    assert_eq!(s.all_contacts().await.unwrap(), vec![c.clone()]);
    assert!(s.remove_contact("GM0664", c.id, "x").await.unwrap());
    assert!(s.contacts("GM0664").await.unwrap().is_empty());
    s.set_webhook("GM0664", Some(("https://hooks.goes.nl/14", "0123456789abcdef0123")), "x").await.unwrap();
    let hook = s.webhook("GM0664").await.unwrap().unwrap();
    assert_eq!((hook.cbs.as_str(), hook.url.as_str(), hook.secret.as_str(), hook.updated_by.as_str()), ("GM0664", "https://hooks.goes.nl/14", "0123456789abcdef0123", "x"));
    assert_eq!(s.all_webhooks().await.unwrap(), vec![hook]);
    let log = s.audit_log(&Default::default()).await.unwrap();
    assert!(log.iter().all(|e| !e.after.as_ref().is_some_and(|a| a.to_string().contains("0123456789abcdef"))), "secret leaked into the audit log");
    s.set_webhook("GM0664", None, "x").await.unwrap();
    assert!(s.webhook("GM0664").await.unwrap().is_none());
    let id = s
        .log_delivery(&NewDelivery { incident_id: Some(1), update_id: Some(1), cbs: Some("GM0664".into()), channel: "email".into(), target: "a@b.nl".into(), attempt: 1, ok: false, detail: "421".into() })
        .await
        .unwrap();
    assert_eq!(s.deliveries(Some(1), 0).await.unwrap()[0].id, id);
    assert!(s.deliveries(Some(2), 0).await.unwrap().is_empty());
    s.set_synthetic_schedule("GM0664", Some(5), false, "x").await.unwrap();
    assert!(s.set_synthetic_schedule("GM0664", Some(0), false, "x").await.is_err());
    let r = NewSyntheticResult { cbs: "GM0664".into(), at_ms: 5, method: "OPTIONS".into(), target: "sip:a@127.0.0.1".into(), reachable: true, status_code: Some(200), rtt_ms: Some(3), detail: "200 OK".into(), requested_by: "schedule".into() };
    s.record_synthetic(&r).await.unwrap();
    let sch = s.synthetic_schedules().await.unwrap();
    assert_eq!((sch[0].every_minutes, sch[0].last_run_ms), (5, Some(5)));
    assert_eq!(s.synthetic_results("gm0664", 10).await.unwrap()[0].result, r);
}
