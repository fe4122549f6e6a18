//! Authorization over every route of the router, generated from `veertien_web::ROUTES` (the table
//! the router itself is built from): unauthenticated → 401 or redirect to /login; another
//! municipality's admin → 403/404; a viewer never writes; the own admin and the operator may.

mod common;

use axum::body::Body;
use axum::http::{Request, header};
use common::*;
use veertien_web::{Access, ROUTES};

/// `version`: the stored settings version, so writes test authorization rather than the stale-form check.
fn request_v(method: &str, path: &str, session: Option<&(String, String)>, version: i64) -> Request<Body> {
    let uri = path.replace("{cbs}", GOES).replace("{lang}", "en").replace("{id}", CALL_ID).replace("{incident}", "1");
    let mut b = Request::builder().method(method).uri(&uri);
    let csrf = session.map(|s| s.1.as_str()).unwrap_or("");
    if let Some((cookie, csrf)) = session {
        b = b.header(header::COOKIE, cookie).header("x-csrf-token", csrf);
    }
    // Welcome-prompt uploads carry audio, not text.
    match (method, path) {
        ("POST", "/m/{cbs}/prompt") => {
            let (ct, body) = prompt_multipart(csrf, "welkom.wav", &tone_wav(16_000, 1.0, 0.3));
            return b.header(header::CONTENT_TYPE, ct).body(Body::from(body)).unwrap();
        }
        ("PUT", "/api/municipalities/{cbs}/prompt") => return b.header(header::CONTENT_TYPE, "audio/wav").body(Body::from(tone_wav(16_000, 1.0, 0.3))).unwrap(),
        _ => {}
    }
    let body = match (method, path) {
        ("POST", "/m/{cbs}/settings") => settings_form(csrf, "0113 123456").replace("version=0", &format!("version={version}")),
        ("POST", "/m/{cbs}/calamity") => form(&[("csrf", csrf), ("version", &version.to_string()), ("active", "false")]),
        ("POST", "/incidents") => form(&[("csrf", csrf), ("title_nl", "Authz"), ("severity", "minor"), ("scope", "all"), ("text_nl", "x"), ("next_update", &incident_promise(false))]),
        ("POST", "/incidents/{incident}/updates") => form(&[("csrf", csrf), ("text_nl", "x"), ("next_update", &incident_promise(false))]),
        ("POST", "/incidents/{incident}/resolve") => form(&[("csrf", csrf), ("text_nl", "x")]),
        ("POST", "/api/incidents") => serde_json::json!({ "title_nl": "Authz", "severity": "minor", "text_nl": "x", "next_update": incident_promise(true) }).to_string(),
        ("POST", "/api/incidents/{incident}/updates") => serde_json::json!({ "text_nl": "x", "next_update": incident_promise(true) }).to_string(),
        ("POST", "/api/incidents/{incident}/resolve") => serde_json::json!({ "text_nl": "x" }).to_string(),
        ("POST", "/m/{cbs}/contacts") => form(&[("csrf", csrf), ("email", &format!("authz{}@goes.test", CONTACTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))]),
        ("POST", "/m/{cbs}/contacts/remove") => form(&[("csrf", csrf), ("id", "0")]),
        ("POST", "/m/{cbs}/webhook") => form(&[("csrf", csrf), ("webhook_url", "https://hooks.goes.test/14")]),
        ("POST", "/account/password") => form(&[("csrf", csrf), ("current", PW), ("new", NEW_PW), ("repeat", NEW_PW)]),
        ("POST", "/m/{cbs}/tests") => form(&[("csrf", csrf), ("every_minutes", "15")]),
        ("PUT", "/api/municipalities/{cbs}/contacts") => serde_json::json!({ "contacts": [], "webhook_url": null }).to_string(),
        ("POST", _) => form(&[("csrf", csrf)]),
        ("PUT", _) => serde_json::json!({ "settings": {
            "status": "active", "destination": "+31113123456", "mode": "bridge", "menu_digit": null,
            "overflow_destination": null, "overflow_no_answer_secs": null, "calamity_active": false,
            "calamity_destination": null, "calamity_message": "", "forward_when_not_connected": false,
            "languages": ["nl", "en"] } })
        .to_string(),
        _ => String::new(),
    };
    let ct = if method == "PUT" { "application/json" } else { "application/x-www-form-urlencoded" };
    b.header(header::CONTENT_TYPE, ct).body(Body::from(body)).unwrap()
}

/// Outage routes: a next-update time an hour ahead (form: Amsterdam local time; API: RFC 3339).
fn incident_promise(api: bool) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(60);
    if api { t.to_string() } else { t.to_zoned(jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap()).strftime("%Y-%m-%dT%H:%M").to_string() }
}

/// The own-password route changes the password of whoever calls it; the test sets it back.
const NEW_PW: &str = "een ander lang wachtwoord";

static CONTACTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Incident 1, affecting every municipality, for the `{incident}` routes.
async fn seed_incident(p: &Portal) {
    let i = p
        .state
        .store
        .declare_incident(&veertien_store::NewIncident {
            title_nl: "Authz".into(),
            title_en: None,
            severity: veertien_store::Severity::Minor,
            municipalities: vec![],
            text_nl: "x".into(),
            text_en: None,
            next_update_ms: jiff::Timestamp::now().as_millisecond() + 3_600_000,
            actor: OPERATOR.into(),
        })
        .await
        .unwrap();
    assert_eq!(i.id, 1);
}

fn request(method: &str, path: &str, session: Option<&(String, String)>) -> Request<Body> {
    request_v(method, path, session, 0)
}

async fn version(p: &Portal) -> i64 {
    p.state.store.load_all_settings().await.unwrap().iter().find(|s| s.cbs == GOES).map_or(0, |s| s.version)
}

fn allowed(status: u16) -> bool {
    (200..400).contains(&status) && status != 401
}

/// A call of Goes, so `{id}` routes have something the allowed roles may open.
const CALL_ID: &str = "authz-goes-call";

async fn seed_call(p: &Portal) {
    let mut c = veertien_store::CallRecord::received(CALL_ID, "authz@carrier", "node-1", "0612345678", "140113", 1_750_000_000_000);
    c.municipality_cbs = Some(GOES.into());
    c.outcome = Some(veertien_store::Outcome::Redirected);
    c.ended_ms = Some(1_750_000_000_005);
    p.state.store.write_calls(&[c]).await.unwrap();
}

#[tokio::test]
async fn every_route_enforces_its_access_rule() {
    let p = portal().await;
    seed_call(&p).await;
    seed_incident(&p).await;
    assert!(ROUTES.len() >= 17);
    for (method, path, access) in ROUTES {
        let what = format!("{method} {path}");
        // Unauthenticated.
        let (res, _) = send(&p.app, request(method, path, None)).await;
        let s = res.status().as_u16();
        match access {
            Access::Public => assert!(s < 500 && s != 401 && s != 404 && s != 405, "{what}: public route answered {s}"),
            _ if path.starts_with("/api/") => assert_eq!(s, 401, "{what} without login"),
            _ => {
                assert!(res.status().is_redirection(), "{what} without login: {s}");
                assert_eq!(res.headers()[header::LOCATION], "/login", "{what}");
            }
        }
        if *access == Access::Public {
            continue;
        }
        // Each role in a fresh session (so /logout does not end the next check's session).
        for (email, expect_ok) in [
            (OPERATOR, true),
            (GOES_ADMIN, !matches!(access, Access::National | Access::Operator)),
            (GOES_VIEWER, !matches!(access, Access::Write | Access::National | Access::Operator)),
            (KAPELLE_ADMIN, matches!(access, Access::LoggedIn)),
        ] {
            let session = login(&p.app, email, PW).await.unwrap();
            // Prompt routes answer 404 when there is no prompt: give every check one to find.
            write_prompt(&p, GOES);
            let (res, body) = send(&p.app, request_v(method, path, Some(&session), version(&p).await)).await;
            let s = res.status().as_u16();
            if *path == "/account/password" {
                veertien_web::users::set_password(&p.state.store, email, PW).await.unwrap();
            }
            if expect_ok {
                assert!(allowed(s), "{what} as {email}: {s} {body}");
                // Logging out legitimately ends on the login page.
                if res.status().is_redirection() && *path != "/logout" {
                    assert_ne!(res.headers()[header::LOCATION], "/login", "{what} as {email}");
                }
            } else {
                assert!(s == 403 || s == 404, "{what} as {email}: expected 403/404, got {s}");
            }
        }
    }
}

#[tokio::test]
async fn other_municipality_data_never_leaks_through_lists() {
    let p = portal().await;
    let kapelle = login(&p.app, KAPELLE_ADMIN, PW).await.unwrap();
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (res, _) = send(&p.app, request("PUT", "/api/municipalities/{cbs}/settings", Some(&goes))).await;
    assert_eq!(res.status(), 200);
    // Kapelle's audit view (default and explicitly filtered) shows nothing of Goes.
    let get = |uri: &str, s: &(String, String)| Request::get(uri).header(header::COOKIE, &s.0).body(Body::empty()).unwrap();
    let (_, body) = send(&p.app, get("/api/audit", &kapelle)).await;
    assert!(!body.contains(GOES) && !body.contains("+31113123456"), "{body}");
    let (res, _) = send(&p.app, get("/api/audit?municipality=GM0664", &kapelle)).await;
    assert_eq!(res.status(), 404);
    let (_, body) = send(&p.app, get("/api/municipalities", &kapelle)).await;
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["cbs"], "GM0678");
    // Lower-case codes are the same municipality, not a way around the check.
    let (res, _) = send(&p.app, get("/api/municipalities/gm0664/settings", &kapelle)).await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn state_changes_need_the_sessions_csrf_token() {
    let p = portal().await;
    let (cookie, _csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (other_cookie, other_csrf) = login(&p.app, OPERATOR, PW).await.unwrap();
    let _ = other_cookie;
    for token in ["", "forged", other_csrf.as_str()] {
        let req = Request::post("/m/GM0664/settings")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(settings_form(token, "0113 123456")))
            .unwrap();
        let (res, _) = send(&p.app, req).await;
        assert_eq!(res.status(), 403, "token {token:?}");
        let req = Request::put("/api/municipalities/GM0664/settings")
            .header(header::COOKIE, &cookie)
            .header("x-csrf-token", token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        assert_eq!(send(&p.app, req).await.0.status(), 403, "token {token:?}");
    }
    // Nothing was written.
    assert!(p.state.store.audit_log(&Default::default()).await.unwrap().iter().all(|e| e.what == "login"));
}

#[tokio::test]
async fn login_locks_after_repeated_failures_and_sets_strict_cookies() {
    let p = portal().await;
    for _ in 0..5 {
        assert_eq!(login(&p.app, GOES_ADMIN, "wrong password!!").await.unwrap_err().0, 401);
    }
    // Locked now, even with the right password; another account is unaffected.
    let (status, body) = login(&p.app, GOES_ADMIN, PW).await.unwrap_err();
    assert_eq!(status, 429);
    assert!(body.contains("geblokkeerd"), "{body}");
    assert!(login(&p.app, KAPELLE_ADMIN, PW).await.is_ok());
    // Unknown accounts get the same answer as a wrong password.
    assert_eq!(login(&p.app, "niemand@nergens.test", PW).await.unwrap_err().0, 401);
}

#[tokio::test]
async fn security_headers_and_cookie_flags() {
    let mut p = portal().await;
    p.state.secure_cookies = true;
    let app = veertien_web::router(p.state.clone());
    let (res, _) = send(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let h = res.headers();
    assert!(h[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    let c = h[header::SET_COOKIE].to_str().unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(c.contains(flag), "{c}");
    }
}
