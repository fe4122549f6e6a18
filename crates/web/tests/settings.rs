//! Editing a municipality's settings through the portal: the toll-fraud guard per range with the
//! message next to the field, nothing typed lost, the audit log, and the next call's route.

mod common;

use axum::body::Body;
use axum::http::{Request, header};
use common::*;
use veertien_core::{CallInfo, Decision, decide_for};

fn post_form(cookie: &str, uri: &str, body: String) -> Request<Body> {
    Request::post(uri)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

fn next_call_destination(p: &Portal) -> String {
    let snap = p.state.routing.snapshot();
    let goes = snap.plan.by_cbs(GOES).unwrap();
    let code = snap.plan.area_code_id("0113").unwrap();
    let _ = CallInfo { dialled: "140113", caller: None };
    match decide_for(goes, code, &snap.plan, &snap.settings, "2026-03-11T09:00:00Z".parse().unwrap()) {
        Decision::Forward { destination, .. } => destination,
        d => panic!("{d:?}"),
    }
}

#[tokio::test]
async fn forbidden_destinations_are_refused_next_to_the_field_keeping_the_input() {
    let p = portal().await;
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let before = next_call_destination(&p);
    for (typed, dutch) in [
        ("0900 1234567", "betaalnummer"),
        ("0906-1234567", "betaalnummer"),
        ("0909 1234567", "betaalnummer"),
        ("06 12345678", "mobiel"),
        ("+32 2 123 45 67", "buitenlands"),
        ("+599 7 123456", "buitenlands"),
        ("084 1234567", "geen klantcontactlijn"),
        ("112", "Geen geldig nummer"),
        ("14 0113", "Geen geldig nummer"),
        ("sip:kcc@evil.example", "geen van de geconfigureerde trunks"),
    ] {
        let (res, body) = send(&p.app, post_form(&cookie, "/m/GM0664/settings", settings_form(&csrf, typed))).await;
        assert_eq!(res.status(), 422, "{typed}");
        let field_start = body.find("id=\"destination\"").expect("destination field");
        let err = body.find("id=\"destination-error\"").unwrap_or_else(|| panic!("{typed}: no error next to the field"));
        assert!(err > field_start && body[err..].contains(dutch), "{typed}: {}", &body[err..err + 300]);
        let escaped = maud::html! { (typed) }.into_string();
        assert!(body.contains(&format!("value=\"{escaped}\"")), "{typed}: input lost");
    }
    assert_eq!(next_call_destination(&p), before, "a refused form changed routing");
    assert!(p.state.store.audit_log(&Default::default()).await.unwrap().iter().all(|e| e.what == "login"));
}

#[tokio::test]
async fn english_messages_on_request() {
    let p = portal().await;
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (res, body) = send(&p.app, post_form(&format!("{cookie}; lang=en"), "/m/GM0664/settings", settings_form(&csrf, "0900 1234567"))).await;
    assert_eq!(res.status(), 422);
    assert!(body.contains("premium-rate number"), "{body}");
}

#[tokio::test]
async fn a_saved_destination_is_audited_and_used_by_the_next_call() {
    let p = portal().await;
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let old = next_call_destination(&p);
    let (res, body) = send(&p.app, post_form(&cookie, "/m/GM0664/settings", settings_form(&csrf, "0113 249 999"))).await;
    assert!(res.status().is_redirection(), "{} {body}", res.status());
    assert_eq!(next_call_destination(&p), "tel:+31113249999");
    // The audit page shows who changed what from what to what.
    let (res, body) = send(&p.app, Request::get("/m/GM0664/audit").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(res.status(), 200);
    let row = body.split("<tr>").find(|r| r.contains("<td>destination</td>")).expect("audit row for destination");
    assert!(row.contains(GOES_ADMIN) && row.contains("+31113249999"), "{row}");
    assert!(row.contains(old.trim_start_matches("tel:").trim_start_matches("sip:").split('@').next().unwrap()) || old.contains("kcc.invalid"));
    // Stale form (version 0 again) is refused instead of overwriting.
    let (res, _) = send(&p.app, post_form(&cookie, "/m/GM0664/settings", settings_form(&csrf, "0113 111 111"))).await;
    assert_eq!(res.status(), 409);
    assert_eq!(next_call_destination(&p), "tel:+31113249999");
}

#[tokio::test]
async fn calamity_line_in_one_click_and_via_the_api() {
    let p = portal().await;
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let form = settings_form(&csrf, "0113 249 999").replace("calamity_destination=&", "calamity_destination=0113+777+777&");
    let (res, _) = send(&p.app, post_form(&cookie, "/m/GM0664/settings", form)).await;
    assert!(res.status().is_redirection());
    let (_, page) = send(&p.app, Request::get("/m/GM0664").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    let calamity_form = &page[page.find("/m/GM0664/calamity").unwrap()..];
    let version = hidden(calamity_form, "version").unwrap();
    let (res, _) = send(&p.app, post_form(&cookie, "/m/GM0664/calamity", common::form(&[("csrf", &csrf), ("version", &version), ("active", "true")]))).await;
    assert!(res.status().is_redirection());
    assert_eq!(next_call_destination(&p), "tel:+31113777777");
    // The API shows it, and refuses a premium overflow with a field error.
    let (_, body) = send(&p.app, Request::get("/api/municipalities/GM0664/settings").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["settings"]["calamity_active"], true);
    let mut s = v["settings"].clone();
    s["overflow_destination"] = "0909 1234567".into();
    let req = Request::put("/api/municipalities/GM0664/settings")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::json!({ "version": v["version"], "settings": s }).to_string()))
        .unwrap();
    let (res, body) = send(&p.app, req).await;
    assert_eq!(res.status(), 422);
    let e: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(e["errors"][0]["field"], "overflow_destination");
}

#[tokio::test]
async fn stored_settings_survive_a_restart() {
    let p = portal().await;
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (res, _) = send(&p.app, post_form(&cookie, "/m/GM0664/settings", settings_form(&csrf, "0113 249 999"))).await;
    assert!(res.status().is_redirection());
    let fresh = veertien_server::Routing::load(None, None).unwrap();
    let n = veertien_web::load_stored_settings(&p.state.store, &fresh, &p.state.trunk_refs()).await.unwrap();
    assert_eq!(n, 1);
    let snap = fresh.snapshot();
    assert_eq!(snap.settings.destination_uri(snap.plan.by_cbs(GOES).unwrap()), "tel:+31113249999");
}

#[tokio::test]
async fn openapi_describes_the_api() {
    let p = portal().await;
    let (res, body) = send(&p.app, Request::get("/api/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    for path in ["/api/me", "/api/municipalities", "/api/municipalities/{cbs}/settings", "/api/audit"] {
        assert!(v["paths"][path].is_object(), "{path} missing");
    }
    assert!(v["paths"]["/api/municipalities/{cbs}/settings"]["put"].is_object());
}
