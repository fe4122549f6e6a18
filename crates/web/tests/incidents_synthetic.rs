//! Synthetic test calls against a real SIP peer: a SIPp UAS on loopback answering OPTIONS, set
//! as Goes' destination. A test now (API and page), the history, a scheduled test, and an
//! unreachable destination.

mod common;
#[path = "../../server/tests/sipp_support/mod.rs"]
mod sipp_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use common::*;
use sipp_support::{OptionsUas, free_udp_port};
use veertien_core::settings::Destination;

fn sipp_available() -> bool {
    Command::new("sipp").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn get(uri: &str, cookie: &str) -> Request<Body> {
    Request::get(uri).header(header::COOKIE, cookie).body(Body::empty()).unwrap()
}

fn set_goes_destination(p: &Portal, uri: &str) {
    let id = p.state.routing.snapshot().plan.by_cbs(GOES).unwrap();
    let mut ms = p.state.current_settings(id);
    ms.destination = Destination::Sip(uri.into());
    p.state.routing.update_settings(|s| s.with(id, ms.clone()));
}

#[tokio::test]
async fn test_calls_reach_a_sipp_destination_and_are_kept_in_the_history() {
    if !sipp_available() {
        eprintln!("SKIPPED: sipp not installed (apt-get install sip-tester)");
        return;
    }
    let mut p = portal().await;
    p.state.probe.timeout = Duration::from_millis(1500);
    p.app = veertien_web::router(p.state.clone());
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let _uas = OptionsUas::start(dir.path(), port, None);
    set_goes_destination(&p, &format!("sip:kcc@127.0.0.1:{port}"));
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();

    // SIPp needs a moment to bind; the API test waits for its probe.
    let mut result = serde_json::Value::Null;
    for _ in 0..20 {
        let req = Request::post("/api/municipalities/GM0664/tests/run").header(header::COOKIE, &goes.0).header("x-csrf-token", &goes.1).body(Body::empty()).unwrap();
        let (res, body) = send(&p.app, req).await;
        assert_eq!(res.status(), 200, "{body}");
        result = serde_json::from_str(&body).unwrap();
        if result["reachable"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(result["reachable"], true, "{result}");
    assert_eq!(result["status_code"], 200);
    assert!(result["rtt_ms"].as_i64().unwrap() >= 0);
    assert!(result["target"].as_str().unwrap().contains(&format!("127.0.0.1:{port}")));
    assert_eq!(result["requested_by"], GOES_ADMIN);

    // The page: history with the answer; a schedule every 15 minutes.
    let (_, page) = send(&p.app, get("/m/GM0664/tests", &goes.0)).await;
    assert!(page.contains("200 OK") && page.contains(" ms"), "{page}");
    let req = Request::post("/m/GM0664/tests")
        .header(header::COOKIE, &goes.0)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form(&[("csrf", &goes.1), ("every_minutes", "15")])))
        .unwrap();
    assert_eq!(send(&p.app, req).await.0.status(), 303);
    let req = Request::post("/m/GM0664/tests")
        .header(header::COOKIE, &goes.0)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form(&[("csrf", &goes.1), ("every_minutes", "7000")])))
        .unwrap();
    let (res, page) = send(&p.app, req).await;
    assert_eq!(res.status(), 422);
    assert!(page.contains("1440"), "{page}");

    // Scheduler: the last result is recent, so nothing is due now; in 15 minutes it is.
    let now = jiff::Timestamp::now().as_millisecond();
    assert!(veertien_web::synthetic::run_due(&p.state, now).await.is_empty());
    assert_eq!(veertien_web::synthetic::run_due(&p.state, now + 15 * 60_000).await, vec![GOES.to_string()]);
    for _ in 0..50 {
        let r = p.state.store.synthetic_results(GOES, 10).await.unwrap();
        if r.iter().any(|r| r.result.requested_by == "schedule") {
            assert!(r[0].result.reachable);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(p.state.store.synthetic_results(GOES, 10).await.unwrap().iter().any(|r| r.result.requested_by == "schedule"));

    // Another municipality cannot test or read Goes' line.
    let kapelle = login(&p.app, KAPELLE_ADMIN, PW).await.unwrap();
    let (res, _) = send(&p.app, get("/api/municipalities/GM0664/tests", &kapelle.0)).await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn an_unanswered_destination_is_reported_unreachable() {
    let mut p = portal().await;
    p.state.probe.timeout = Duration::from_millis(600);
    let port = free_udp_port();
    set_goes_destination(&p, &format!("sip:kcc@127.0.0.1:{port}"));
    let r = veertien_web::synthetic::run_test(&p.state, GOES, "test").await.unwrap();
    assert!(!r.reachable);
    assert_eq!(r.status_code, None);
    assert!(r.detail.contains("600 ms"), "{}", r.detail);
    // A tel: destination without an outbound trunk cannot be tested, and says why.
    let id = p.state.routing.snapshot().plan.by_cbs(GOES).unwrap();
    let mut ms = p.state.current_settings(id);
    ms.destination = Destination::Tel("+31113123456".into());
    p.state.routing.update_settings(|s| s.with(id, ms.clone()));
    let r = veertien_web::synthetic::run_test(&p.state, GOES, "test").await.unwrap();
    assert!(!r.reachable && r.detail.contains("trunk"), "{}", r.detail);
    p.state.probe.trunk = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let r = veertien_web::synthetic::run_test(&p.state, GOES, "test").await.unwrap();
    assert!(r.target.starts_with("sip:+31113123456@127.0.0.1"), "{}", r.target);
    p.app = veertien_web::router(p.state.clone());
    assert_eq!(p.state.store.synthetic_results(GOES, 10).await.unwrap().len(), 3);
}
