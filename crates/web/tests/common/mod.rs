//! Shared test setup: a portal on a fresh SQLite store with the real national plan and four
//! accounts, driven in-process through `tower::ServiceExt::oneshot`.
#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use veertien_server::Routing;
use veertien_store::Store;
use veertien_web::{AppState, Role, add_user};

pub const PW: &str = "een lang genoeg wachtwoord";
pub const OPERATOR: &str = "operator@veertien.test";
/// Admin of Goes (GM0664).
pub const GOES_ADMIN: &str = "beheer@goes.test";
pub const GOES_VIEWER: &str = "kijker@goes.test";
/// Admin of Kapelle (GM0678): shares 14 0113 with Goes.
pub const KAPELLE_ADMIN: &str = "beheer@kapelle.test";
pub const GOES: &str = "GM0664";

pub struct Portal {
    pub app: Router,
    pub state: AppState,
    pub _dir: tempfile::TempDir,
}

pub async fn portal() -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("veertien.db").to_str().unwrap()).await.unwrap();
    let routing = Arc::new(Routing::load(None, None).unwrap());
    add_user(&store, OPERATOR, Role::Operator, None, PW).await.unwrap();
    add_user(&store, GOES_ADMIN, Role::Admin, Some(GOES), PW).await.unwrap();
    add_user(&store, GOES_VIEWER, Role::Viewer, Some(GOES), PW).await.unwrap();
    add_user(&store, KAPELLE_ADMIN, Role::Admin, Some("GM0678"), PW).await.unwrap();
    let mut state = AppState::new(store, routing);
    state.prompts_dir = dir.path().join("prompts");
    state.secure_cookies = false;
    Portal { app: veertien_web::router(state.clone()), state, _dir: dir }
}

pub async fn send(app: &Router, req: Request<Body>) -> (Response<()>, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (Response::from_parts(parts, ()), String::from_utf8_lossy(&bytes).into_owned())
}

pub fn set_cookie(res: &Response<()>, name: &str) -> Option<String> {
    res.headers().get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

pub fn hidden(body: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let i = body.find(&needle)? + needle.len();
    Some(body[i..].split('"').next()?.to_string())
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// A logged-in session: (cookie header value, CSRF token).
pub async fn login(app: &Router, email: &str, password: &str) -> Result<(String, String), (u16, String)> {
    let (res, body) = send(app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let token = set_cookie(&res, "veertien_login_csrf").unwrap();
    assert_eq!(hidden(&body, "csrf").as_deref(), Some(token.as_str()));
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("veertien_login_csrf={token}"))
        .body(Body::from(form(&[("csrf", &token), ("email", email), ("password", password)])))
        .unwrap();
    let (res, body) = send(app, req).await;
    let Some(session) = set_cookie(&res, "veertien_session") else { return Err((res.status().as_u16(), body)) };
    let cookie = format!("veertien_session={session}");
    let (res, me) = send(app, Request::get("/api/me").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(res.status(), 200);
    let me: serde_json::Value = serde_json::from_str(&me).unwrap();
    Ok((cookie, me["csrf_token"].as_str().unwrap().to_string()))
}

/// The settings form of Goes as the page renders it, with `destination` replaced.
pub fn settings_form(csrf: &str, destination: &str) -> String {
    form(&[
        ("csrf", csrf),
        ("version", "0"),
        ("status", "active"),
        ("destination", destination),
        ("mode", "bridge"),
        ("menu_digit", ""),
        ("overflow_destination", ""),
        ("overflow_no_answer_secs", ""),
        ("calamity_destination", ""),
        ("calamity_message", ""),
        ("calamity_active", "false"),
        ("languages", "nl"),
        ("languages", "en"),
    ])
}

/// A mono 16-bit WAV: a 220 Hz tone with a 3 kHz overtone (`amp` of full scale).
pub fn tone_wav(rate: u32, seconds: f64, amp: f32) -> Vec<u8> {
    let spec = hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    for i in 0..(rate as f64 * seconds) as usize {
        let t = i as f32 / rate as f32;
        let v = amp * (0.8 * (2.0 * std::f32::consts::PI * 220.0 * t).sin() + 0.2 * (2.0 * std::f32::consts::PI * 3000.0 * t).sin());
        w.write_sample((v * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    out.into_inner()
}

/// A multipart/form-data body with the CSRF token and one file field `prompt`:
/// (content type, body).
pub fn prompt_multipart(csrf: &str, filename: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "veertien-test-boundary-7d3f";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n").as_bytes());
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"prompt\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Puts a welcome prompt for `cbs` where the IVR reads it (for routes that need one to exist).
pub fn write_prompt(p: &Portal, cbs: &str) {
    let path = veertien_web::prompt_upload::welcome_path(&p.state.prompts_dir, cbs);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, tone_wav(8000, 1.0, 0.3)).unwrap();
}
