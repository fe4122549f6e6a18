//! Real SIP peers: SIPp (Debian package sip-tester) drives the in-process server over
//! loopback with the scenarios in this crate's tests/sipp/. Bounded in calls and time.

mod support;

use support::*;
use veertien_store::{CallFilter, Outcome, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_redirect_calls_all_succeed_with_one_record_each() {
    let ts = TestServer::start(|_| {}).await;
    let (fourteen, _, destination) = unique_redirect_number();
    let udp = ts.udp;
    let (code, log) = tokio::task::spawn_blocking(move || Uac::new(udp, "redirect_uac.xml", &fourteen).calls(200, 100).timeout("60s").run()).await.unwrap();
    assert_eq!(code, 0, "all SIPp calls succeed:\n{log}");
    // Every 302 was acknowledged (the ACK matched its INVITE transaction).
    assert_eq!(ts.server.engine().active_calls(), 0);
    let db = ts.db_path();
    let report = ts.server.shutdown().await;
    let m = report.metrics;
    assert_eq!(m.redirected, 200, "{m:?}");
    assert_eq!(report.records.unwrap().written, 200);
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let calls = store.list_calls(&CallFilter { limit: 1000, ..Default::default() }).await.unwrap();
    assert_eq!(calls.len(), 200);
    assert!(calls.iter().all(|c| c.outcome == Some(Outcome::Redirected) && c.destination.as_deref() == Some(destination.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_refused_calls_get_404_484_480() {
    // IVR off: a shared area code is refused 480 (with the IVR it is answered: ivr_e2e).
    let ts = TestServer::start(|c| c.ivr.enabled = false).await;
    let udp = ts.udp;
    for (number, _) in [("14099", 404), ("1402", 484), (shared_number().as_str(), 480)] {
        let n = number.to_string();
        let (code, log) = tokio::task::spawn_blocking(move || Uac::new(udp, "reject_uac.xml", &n).calls(10, 50).timeout("60s").run()).await.unwrap();
        assert_eq!(code, 0, "{number}: SIPp calls end as expected:\n{log}");
    }
    assert_eq!(ts.server.engine().active_calls(), 0, "every refusal was acknowledged");
    let db = ts.db_path();
    ts.server.shutdown().await;
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let calls = store.list_calls(&CallFilter { limit: 1000, ..Default::default() }).await.unwrap();
    assert_eq!(calls.len(), 30);
    for (dialled, status) in [("14099", 404), ("1402", 484), (shared_number().as_str(), 480)] {
        let matching: Vec<_> = calls.iter().filter(|c| c.dialled.starts_with(&format!("sip:{dialled}@"))).collect();
        assert_eq!(matching.len(), 10, "{dialled}");
        assert!(matching.iter().all(|c| c.sip_status == Some(status) && c.outcome == Some(Outcome::Rejected)), "{dialled}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_options_ping() {
    let ts = TestServer::start(|_| {}).await;
    let udp = ts.udp;
    let (code, log) = tokio::task::spawn_blocking(move || Uac::new(udp, "options_uac.xml", "ping").calls(20, 50).timeout("60s").run()).await.unwrap();
    assert_eq!(code, 0, "{log}");
    let report = ts.server.shutdown().await;
    assert_eq!(report.records.unwrap().submitted, 0, "OPTIONS are not calls");
}

/// RFC 3261 17.2.1/8.2: an ACK is never answered, however broken. SIPp sends two ACKs with a
/// broken Request-URI after the 302, then a good one, then an OPTIONS: an answer to a broken
/// ACK would reach SIPp before the OPTIONS' 200 and fail the call. Over UDP and TCP (a framed
/// message that does not parse no longer costs the carrier its connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_malformed_acks_are_dropped_never_answered() {
    let ts = TestServer::start(|_| {}).await;
    let (fourteen, _, _) = unique_redirect_number();
    let (udp, tcp) = (ts.udp, ts.tcp);
    let f = fourteen.clone();
    let (code, log) = tokio::task::spawn_blocking(move || Uac::new(udp, "ack_malformed_uac.xml", &f).calls(5, 10).timeout("60s").run()).await.unwrap();
    assert_eq!(code, 0, "UDP: no answer to a broken ACK:\n{log}");
    let (code, log) =
        tokio::task::spawn_blocking(move || Uac::new(tcp, "ack_malformed_uac.xml", &fourteen).calls(5, 10).timeout("60s").args(&["-t", "t1"]).run()).await.unwrap();
    assert_eq!(code, 0, "TCP: no answer to a broken ACK, connection kept:\n{log}");
    let m = ts.server.engine().metrics();
    assert_eq!(m.malformed_acks, 20, "two broken ACKs per call, counted: {m:?}");
    assert_eq!(m.redirected, 10, "{m:?}");
    // The good ACK still ended each INVITE transaction (no 302 retransmitted until Timer H).
    assert_eq!(ts.server.engine().active_calls(), 0);
    ts.server.shutdown().await;
}
