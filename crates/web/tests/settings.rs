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
async fn portal_settings_survive_a_sighup_reload_of_the_settings_file() {
    // serve with a settings file (as an operator runs it): Goes and Borsele configured there.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("settings.toml");
    let toml = |borsele: &str| format!("[municipality.GM0664]\ndestination = \"+31113111111\"\n[municipality.GM0654]\ndestination = \"{borsele}\"\n");
    std::fs::write(&file, toml("+31113222222")).unwrap();
    let store = veertien_store::Store::open(dir.path().join("v.db").to_str().unwrap()).await.unwrap();
    veertien_web::add_user(&store, GOES_ADMIN, veertien_web::Role::Admin, Some(GOES), PW).await.unwrap();
    let routing = std::sync::Arc::new(veertien_server::Routing::load(None, Some(&file)).unwrap());
    let mut state = veertien_web::AppState::new(store, routing.clone());
    state.secure_cookies = false;
    // What `veertien serve` does at start-up.
    veertien_web::load_saved_settings(&state.store, &routing, &state.trunk_refs(), &state.saved).await.unwrap();
    routing.on_reload(state.saved.reload_hook(state.trunks.to_vec()));
    let app = veertien_web::router(state.clone());
    let p = Portal { app, state, _dir: tempfile::tempdir().unwrap() };
    assert_eq!(next_call_destination(&p), "tel:+31113111111", "the file's destination before any portal change");

    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (res, _) = send(&p.app, post_form(&cookie, "/m/GM0664/settings", settings_form(&csrf, "0113 249 999"))).await;
    assert!(res.status().is_redirection());
    assert_eq!(next_call_destination(&p), "tel:+31113249999");
    // The operator edits the file (Borsele) and sends SIGHUP: the file's change is in force and
    // Goes keeps what its admin saved in the portal.
    std::fs::write(&file, toml("+31113333333")).unwrap();
    let before = routing.snapshot().version;
    routing.reload().unwrap();
    let snap = routing.snapshot();
    assert!(snap.version > before);
    assert_eq!(snap.settings.destination_uri(snap.plan.by_cbs("GM0654").unwrap()), "tel:+31113333333");
    assert_eq!(next_call_destination(&p), "tel:+31113249999", "the portal's destination after the reload");
    // A second save and reload: still the latest portal value.
    let (_, body) = send(&p.app, Request::get("/m/GM0664").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    let version = hidden(&body, "version").unwrap();
    let form = settings_form(&csrf, "0113 249 998").replace("version=0", &format!("version={version}"));
    let (res, _) = send(&p.app, post_form(&cookie, "/m/GM0664/settings", form)).await;
    assert!(res.status().is_redirection());
    routing.reload().unwrap();
    assert_eq!(next_call_destination(&p), "tel:+31113249998");
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

/// What the next call to 14 0113 choosing Goes gets at local Amsterdam time `local` ("2026-03-11T09:00").
fn decision_at(p: &Portal, local: &str) -> &'static str {
    let snap = p.state.routing.snapshot();
    let goes = snap.plan.by_cbs(GOES).unwrap();
    let code = snap.plan.area_code_id("0113").unwrap();
    let now = local.parse::<jiff::civil::DateTime>().unwrap().to_zoned(jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap()).unwrap().timestamp();
    match decide_for(goes, code, &snap.plan, &snap.settings, now) {
        Decision::Forward { .. } => "open",
        Decision::Announce { reason: veertien_core::AnnounceReason::Closed, .. } => "closed",
        d => panic!("{d:?}"),
    }
}

/// The full settings form with opening hours, holidays and exception days.
fn hours_form(csrf: &str, version: i64, weekday: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![
        ("csrf", csrf), ("status", "active"), ("destination", "0113 249 999"), ("mode", "bridge"), ("menu_digit", ""),
        ("overflow_destination", ""), ("overflow_no_answer_secs", ""), ("calamity_destination", ""), ("calamity_message", ""),
        ("calamity_active", "false"), ("languages", "nl"), ("languages", "fy"),
        ("hours.mon", weekday), ("hours.tue", weekday), ("hours.wed", weekday), ("hours.thu", weekday), ("hours.fri", weekday),
        ("hours.sat", ""), ("hours.sun", ""), ("closed_on", "koningsdag"), ("closed_on", "eerste_kerstdag"),
        ("exceptions.0.date", "2026-12-24"), ("exceptions.0.hours", "08:30-14:00"), ("exceptions.0.note", "Kerstavond: tot 14:00"),
        ("exceptions.1.date", "2026-03-13"), ("exceptions.1.hours", ""), ("exceptions.1.note", "Personeelsdag"),
        ("exceptions.2.date", ""), ("exceptions.2.hours", ""), ("exceptions.2.note", ""),
    ];
    pairs.extend_from_slice(extra);
    let v = version.to_string();
    pairs.push(("version", &v));
    common::form(&pairs)
}

async fn version_of(p: &Portal) -> i64 {
    p.state.store.load_all_settings().await.unwrap().iter().find(|s| s.cbs == GOES).map_or(0, |s| s.version)
}

#[tokio::test]
async fn opening_hours_holidays_and_exception_days_decide_the_next_call() {
    let p = portal().await;
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    assert_eq!(decision_at(&p, "2026-03-14T10:00"), "open", "default: always open");
    let (res, body) = send(&p.app, post_form(&cookie, "/m/GM0664/settings", hours_form(&csrf, 0, "08:30-12:00, 13:00-17:00", &[]))).await;
    assert!(res.status().is_redirection(), "{} {body}", res.status());
    for (at, expect) in [
        ("2026-03-11T09:00", "open"),    // Wednesday morning
        ("2026-03-11T12:30", "closed"),  // lunch break between the two intervals
        ("2026-03-11T16:59", "open"),
        ("2026-03-11T17:00", "closed"),
        ("2026-03-14T10:00", "closed"),  // Saturday
        ("2026-04-27T10:00", "closed"),  // Koningsdag (a Monday), ticked closed
        ("2026-04-06T10:00", "open"),    // Tweede paasdag, not ticked: an ordinary Monday
        ("2026-03-13T10:00", "closed"),  // exception: closed all day (a Friday)
        ("2026-12-24T13:00", "open"),    // exception hours
        ("2026-12-24T15:00", "closed"),
        ("2026-12-25T10:00", "closed"),  // Eerste kerstdag
    ] {
        assert_eq!(decision_at(&p, at), expect, "{at}");
    }
    // The page shows the schedule, the holidays with their dates, and the notes.
    let (_, page) = send(&p.app, Request::get("/m/GM0664").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert!(page.contains("value=\"08:30-12:00, 13:00-17:00\""), "weekly schedule shown");
    assert!(page.contains("Koningsdag") && page.contains("ma 27 apr 2026"), "holiday with its date");
    assert!(page.contains("Kerstavond: tot 14:00") && page.contains("Personeelsdag"), "exception notes kept");
    assert!(p.state.current_settings(p.state.municipality_id(GOES).unwrap()).languages.contains(&veertien_core::Lang::Fy));
    // Each change is in the audit log, the note included.
    let audit = p.state.store.audit_log(&Default::default()).await.unwrap();
    let what: Vec<&str> = audit.iter().map(|e| e.what.as_str()).collect();
    assert!(what.contains(&"opening_hours"), "{what:?}");
    assert!(audit.iter().any(|e| e.what == "opening_hours" && e.after.as_ref().is_some_and(|a| a.to_string().contains("Personeelsdag"))));
    // Removing an exception day through the form.
    let v = version_of(&p).await;
    let form = hours_form(&csrf, v, "08:30-12:00, 13:00-17:00", &[]).replace("exceptions.2.date=&", "exceptions.1.delete=true&exceptions.2.date=&");
    let (res, _) = send(&p.app, post_form(&cookie, "/m/GM0664/settings", form)).await;
    assert!(res.status().is_redirection());
    assert_eq!(decision_at(&p, "2026-03-13T10:00"), "open", "exception removed");
    // From the second save on, the audit log names the field that changed.
    let audit = p.state.store.audit_log(&Default::default()).await.unwrap();
    let e = audit.iter().find(|e| e.what == "opening_hours.exceptions").expect("field-level entry");
    assert!(e.before.as_ref().unwrap().to_string().contains("Personeelsdag") && !e.after.as_ref().unwrap().to_string().contains("Personeelsdag"));
}

#[tokio::test]
async fn bad_opening_hours_are_refused_next_to_the_field_keeping_the_input() {
    let p = portal().await;
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    for (typed, message) in [("17:00-08:30", "ends before it starts"), ("08:00-12:00, 11:00-13:00", "overlappen"), ("8 tot 5", "Ongeldige openingstijd")] {
        let form = hours_form(&csrf, 0, "08:30-17:00", &[]).replace("hours.tue=08%3A30-17%3A00", &format!("hours.tue={}", common::form(&[("x", typed)]).trim_start_matches("x=")));
        let (res, body) = send(&p.app, post_form(&cookie, "/m/GM0664/settings", form)).await;
        assert_eq!(res.status(), 422, "{typed}");
        let err = body.find("id=\"hours.tue-error\"").unwrap_or_else(|| panic!("{typed}: no error next to Tuesday"));
        assert!(body[err..].contains(message), "{typed}: {}", &body[err..err + 200]);
        let escaped = maud::html! { (typed) }.into_string();
        assert!(body.contains(&format!("value=\"{escaped}\"")), "{typed}: input lost");
    }
    let form = hours_form(&csrf, 0, "08:30-17:00", &[]).replace("exceptions.2.date=", "exceptions.2.date=31-12-2026");
    let (res, body) = send(&p.app, post_form(&cookie, "/m/GM0664/settings", form)).await;
    assert_eq!(res.status(), 422);
    assert!(body.contains("id=\"exceptions.2.date-error\""), "date error next to its field");
    assert_eq!(decision_at(&p, "2026-03-14T10:00"), "open", "nothing saved");
}

#[tokio::test]
async fn keypad_digit_per_area_code_changes_the_menu_and_refuses_a_taken_digit() {
    let p = portal().await;
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let digit_of = |p: &Portal, cbs: &str| {
        let snap = p.state.routing.snapshot();
        let id = snap.plan.by_cbs(cbs).unwrap();
        snap.settings.menu(snap.plan.area_code_id("0113").unwrap()).iter().find(|e| e.municipality == id).unwrap().digit
    };
    let (_, page) = send(&p.app, Request::get("/m/GM0664").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert!(page.contains("id=\"menu_digits.0113\""), "a select for the shared code 0113");
    assert!(page.contains("Huidige volgorde"), "the current menu order is shown");
    let (res, body) = send(&p.app, post_form(&cookie, "/m/GM0664/settings", hours_form(&csrf, 0, "08:30-17:00", &[("menu_digits.0113", "7")]))).await;
    assert!(res.status().is_redirection(), "{body}");
    assert_eq!(digit_of(&p, GOES), Some(7));
    // Kapelle (same area code) cannot take 7.
    let (kc, kcsrf) = login(&p.app, KAPELLE_ADMIN, PW).await.unwrap();
    let form = hours_form(&kcsrf, 0, "08:30-17:00", &[("menu_digits.0113", "7")]).replace("destination=0113+249+999", "destination=0113+111+222");
    let (res, body) = send(&p.app, post_form(&kc, "/m/GM0678/settings", form)).await;
    assert_eq!(res.status(), 422, "{body}");
    let err = body.find("id=\"menu_digits.0113-error\"").expect("conflict shown next to the 0113 select");
    assert!(body[err..].contains("already taken") && body[err..].contains("Goes"), "{}", &body[err..err + 300]);
    assert_eq!(digit_of(&p, GOES), Some(7));
}

#[tokio::test]
async fn the_calamity_switch_asks_for_confirmation_without_javascript() {
    let p = portal().await;
    let (cookie, _) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (_, page) = send(&p.app, Request::get("/m/GM0664").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    let form = &page[page.find("action=\"/m/GM0664/calamity\"").unwrap()..];
    let form = &form[..form.find("</form>").unwrap()];
    assert!(form.contains("<details") && form.contains("<summary") && form.contains("id=\"calamity-confirm\""), "{form}");
    assert!(!page.contains("<script"), "no JavaScript");
    // A viewer sees the state but no switch.
    let (vc, _) = login(&p.app, GOES_VIEWER, PW).await.unwrap();
    let (_, page) = send(&p.app, Request::get("/m/GM0664").header(header::COOKIE, &vc).body(Body::empty()).unwrap()).await;
    assert!(page.contains("Calamiteitenlijn") && !page.contains("calamity-confirm"));
}

fn multipart_post(cookie: &str, uri: &str, ct: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(uri).header(header::COOKIE, cookie).header(header::CONTENT_TYPE, ct).body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn welcome_prompt_upload_converts_to_8k_stores_audits_and_plays() {
    let p = portal().await;
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (ct, body) = prompt_multipart(&csrf, "welkom.wav", &tone_wav(44_100, 2.0, 0.4));
    let (res, page) = send(&p.app, multipart_post(&cookie, "/m/GM0664/prompt", &ct, body)).await;
    assert!(res.status().is_redirection(), "{} {page}", res.status());
    // Where the IVR's PromptLibrary reads it: 8 kHz mono PCM16.
    let path = p.state.prompts_dir.join("custom/GM0664/welcome.wav");
    let r = hound::WavReader::open(&path).unwrap();
    assert_eq!((r.spec().sample_rate, r.spec().channels, r.spec().bits_per_sample), (8000, 1, 16));
    assert!((r.duration() as i64 - 16_000).abs() < 200, "{}", r.duration());
    let audit = p.state.store.audit_log(&Default::default()).await.unwrap();
    let e = audit.iter().find(|e| e.what == "welcome_prompt").expect("audited");
    assert_eq!(e.actor, GOES_ADMIN);
    assert!(e.before.is_none() && e.after.as_ref().unwrap()["seconds"] == 2.0, "{:?}", e.after);
    // The page plays it; the file comes from the portal.
    let (_, page) = send(&p.app, Request::get("/m/GM0664?prompt=1").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert!(page.contains("<audio") && page.contains("src=\"/m/GM0664/prompt.wav\""));
    let (res, _) = send(&p.app, Request::get("/m/GM0664/prompt.wav").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(res.headers()[header::CONTENT_TYPE], "audio/wav");

    // MP3 (44.1 kHz stereo speech) through the API.
    let mp3 = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/welkom-44k-stereo.mp3")).unwrap();
    let req = Request::put("/api/municipalities/GM0664/prompt")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .header(header::CONTENT_TYPE, "audio/mpeg")
        .body(Body::from(mp3))
        .unwrap();
    let (res, body) = send(&p.app, req).await;
    assert_eq!(res.status(), 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["source"], "mp3 44100 Hz, 2 channel(s)");
    assert!(v["g711_snr_db"].as_f64().unwrap() > 30.0, "{v}");
    assert!((v["seconds"].as_f64().unwrap() - 4.0).abs() < 0.2, "{v}");

    // Removing it: the file is gone, the audit log says so.
    let (res, _) = send(&p.app, post_form(&cookie, "/m/GM0664/prompt/delete", common::form(&[("csrf", &csrf)]))).await;
    assert!(res.status().is_redirection());
    assert!(!path.exists());
    let audit = p.state.store.audit_log(&Default::default()).await.unwrap();
    assert!(audit.iter().any(|e| e.what == "welcome_prompt" && e.after.is_none() && e.before.is_some()));
}

#[tokio::test]
async fn unusable_recordings_are_refused_with_a_clear_message() {
    let p = portal().await;
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    for (name, bytes, message) in [
        ("stil.wav", tone_wav(16_000, 2.0, 0.0005), "(bijna) stil"),
        ("lang.wav", tone_wav(8_000, 61.0, 0.3), "maximum is 60 seconden"),
        ("hard.wav", tone_wav(16_000, 2.0, 2.0), "oversturd"),
        ("tekst.wav", b"dit is geen geluid".to_vec(), "geen leesbaar WAV- of MP3-bestand"),
    ] {
        let (ct, body) = prompt_multipart(&csrf, name, &bytes);
        let (res, page) = send(&p.app, multipart_post(&cookie, "/m/GM0664/prompt", &ct, body)).await;
        assert_eq!(res.status(), 422, "{name}");
        let err = page.find("id=\"prompt-error\"").unwrap_or_else(|| panic!("{name}: no message next to the upload field"));
        assert!(page[err..].contains(message), "{name}: {}", &page[err..err + 300]);
    }
    // Larger than 10 MB: refused before decoding.
    let (ct, body) = prompt_multipart(&csrf, "groot.wav", &vec![0u8; 11 * 1024 * 1024]);
    let (res, page) = send(&p.app, multipart_post(&cookie, "/m/GM0664/prompt", &ct, body)).await;
    assert_eq!(res.status(), 413);
    assert!(page.contains("maximum is 10 MB"), "{}", &page[..page.len().min(500)]);
    // A forged upload (no CSRF token) is refused; nothing stored or audited.
    let (ct, body) = prompt_multipart("vervalst", "welkom.wav", &tone_wav(16_000, 2.0, 0.3));
    assert_eq!(send(&p.app, multipart_post(&cookie, "/m/GM0664/prompt", &ct, body)).await.0.status(), 403);
    assert!(!p.state.prompts_dir.join("custom/GM0664/welcome.wav").exists());
    assert!(p.state.store.audit_log(&Default::default()).await.unwrap().iter().all(|e| e.what == "login"));
}
