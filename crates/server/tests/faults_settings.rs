//! Fault: a settings change arrives while calls are being decided (issue 6).
//!
//! Expected: every call sees the old or the new settings, never a mix. Two settings versions
//! differ in the destination of one municipality, which a redirect carries in four places
//! (302 Contact, record destination, decision JSON, route steps). While a task swaps them
//! back and forth as fast as it can, concurrent callers check that all four name the same
//! version.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use support::{Client, TestServer, ack_for, header, request, to_tag};
use veertien_core::{Destination, Plan, Settings};
use veertien_store::CallFilter;

const A: &str = "+31111000001";
const B: &str = "+31111000002";

fn version(plan: &Plan, dest: &str) -> Settings {
    let s = Settings::defaults(plan);
    let m = plan.municipalities().iter().find(|m| m.cbs == "GM1676").expect("Schouwen-Duiveland");
    let mut ms = s.get(m.id).clone();
    ms.destination = Destination::parse(dest).unwrap();
    ms.mode = veertien_core::DeliveryMode::Redirect;
    s.with(m.id, ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_settings_swaps_never_give_a_call_a_mix() {
    let ts = TestServer::start(|_| {}).await;
    let routing = ts.server.engine().routing().clone();
    let plan = routing.snapshot().plan.clone();
    let (va, vb) = (version(&plan, A), version(&plan, B));
    routing.set_settings(va.clone());

    let stop = tokio_util::sync::CancellationToken::new();
    let swapper = {
        let (routing, stop) = (routing.clone(), stop.clone());
        tokio::spawn(async move {
            let mut swaps = 0u64;
            while !stop.is_cancelled() {
                routing.set_settings(if swaps.is_multiple_of(2) { vb.clone() } else { va.clone() });
                swaps += 1;
                tokio::task::yield_now().await;
            }
            swaps
        })
    };
    let contacts: Arc<parking_lot::Mutex<HashMap<String, String>>> = Arc::default();
    let mut callers = Vec::new();
    for c in 0..4 {
        let (contacts, udp) = (contacts.clone(), ts.udp);
        callers.push(tokio::spawn(async move {
            let client = Client::new(udp).await;
            let uri = "sip:140111@127.0.0.1";
            for n in 0..150 {
                let (branch, cid) = (format!("z9hG4bK-set-{c}-{n}"), format!("set-{c}-{n}@test"));
                client.send(request("INVITE", uri, &branch, &cid, client.port()).as_bytes()).await;
                let r = client.final_for(&cid, Duration::from_secs(5)).await.expect("a final response within 5 s");
                assert_eq!(r.status(), 302);
                client.send(ack_for(uri, &branch, &cid, client.port(), &to_tag(&r)).as_bytes()).await;
                contacts.lock().insert(cid, header(&r, "Contact").unwrap());
            }
        }));
    }
    for c in callers {
        c.await.unwrap();
    }
    stop.cancel();
    let swaps = swapper.await.unwrap();
    assert!(swaps > 100, "settings were swapped while calls ran ({swaps} swaps)");

    let store = ts.server.store().unwrap().clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.count_calls().await.unwrap() < 600 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let records = store.list_calls(&CallFilter { limit: 1000, ..Default::default() }).await.unwrap();
    assert_eq!(records.len(), 600);
    let contacts = contacts.lock().clone();
    let mut seen = HashMap::new();
    for rec in &records {
        let contact = &contacts[&rec.sip_call_id];
        let which = if contact.contains(A) { A } else if contact.contains(B) { B } else { panic!("unexpected Contact {contact}") };
        *seen.entry(which).or_insert(0) += 1;
        let dest = format!("tel:{which}");
        assert_eq!(rec.destination.as_deref(), Some(dest.as_str()), "record vs 302 of {}", rec.sip_call_id);
        let decision = rec.decision.to_string();
        let steps = rec.route_steps.to_string();
        let other = if which == A { B } else { A };
        assert!(decision.contains(which) && !decision.contains(other), "decision mixes versions: {decision}");
        assert!(steps.contains(which) && !steps.contains(other), "route mixes versions: {steps}");
    }
    assert!(seen.len() == 2, "both versions were seen by calls: {seen:?}");
    ts.server.shutdown().await;
}
