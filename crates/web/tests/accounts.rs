//! Accounts and sessions in the store, through the portal: sessions survive a new portal
//! instance (restart), a password change or a disabled account logs out everywhere, logout ends
//! the session server-side, per-address login throttling on top of the per-account lockout, and
//! no password, session id or CSRF token in the log.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, header};
use common::*;

fn get(uri: &str, cookie: &str) -> Request<Body> {
    Request::get(uri).header(header::COOKIE, cookie).body(Body::empty()).unwrap()
}

/// Logs in from client address `ip`; Err((status, body)) when refused.
async fn login_from(app: &axum::Router, ip: &str, email: &str, password: &str) -> Result<String, (u16, String)> {
    let (res, _) = send(app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let token = set_cookie(&res, "veertien_login_csrf").unwrap();
    let mut req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("veertien_login_csrf={token}"))
        .body(Body::from(form(&[("csrf", &token), ("email", email), ("password", password)])))
        .unwrap();
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    let (res, body) = send(app, req).await;
    match set_cookie(&res, "veertien_session") {
        Some(s) => Ok(format!("veertien_session={s}")),
        None => Err((res.status().as_u16(), body)),
    }
}

#[tokio::test]
async fn sessions_live_in_the_store_and_end_everywhere_on_a_password_change() {
    let p = portal().await;
    let (a, _) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (b, _) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (op, _) = login(&p.app, OPERATOR, PW).await.unwrap();
    // The store holds only the hash of the cookie's id.
    let id = a.trim_start_matches("veertien_session=");
    assert_eq!(p.state.store.count_sessions_of(GOES_ADMIN).await.unwrap(), 2);
    assert!(p.state.store.session(id, veertien_web::auth::session_policy()).await.unwrap().is_none());
    assert!(p.state.store.session(&veertien_web::auth::session_hash(id), veertien_web::auth::session_policy()).await.unwrap().is_some());

    // A second portal on the same store (a restart) knows the session.
    let other = veertien_web::router(p.state.clone());
    assert_eq!(send(&other, get("/api/me", &a)).await.0.status(), 200);

    veertien_web::users::set_password(&p.state.store, GOES_ADMIN, "een heel nieuw wachtwoord").await.unwrap();
    for s in [&a, &b] {
        assert_eq!(send(&p.app, get("/api/me", s)).await.0.status(), 401, "session survived the password change");
        let (res, _) = send(&p.app, get("/m/GM0664", s)).await;
        assert_eq!(res.headers()[header::LOCATION], "/login");
    }
    assert_eq!(send(&p.app, get("/api/me", &op)).await.0.status(), 200, "other accounts are not logged out");
    assert!(login(&p.app, GOES_ADMIN, PW).await.is_err());
    assert!(login(&p.app, GOES_ADMIN, "een heel nieuw wachtwoord").await.is_ok());

    // Disabling logs out and refuses new logins.
    veertien_web::users::set_disabled(&p.state.store, OPERATOR, true).await.unwrap();
    assert_eq!(send(&p.app, get("/api/me", &op)).await.0.status(), 401);
    assert_eq!(login(&p.app, OPERATOR, PW).await.unwrap_err().0, 401);
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let p = portal().await;
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let req = Request::post("/logout")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form(&[("csrf", &csrf)])))
        .unwrap();
    let (res, _) = send(&p.app, req).await;
    assert_eq!(res.headers()[header::LOCATION], "/login");
    // The old cookie, replayed, is worthless.
    assert_eq!(send(&p.app, get("/api/me", &cookie)).await.0.status(), 401);
    assert_eq!(p.state.store.count_sessions_of(GOES_ADMIN).await.unwrap(), 0);
}

#[tokio::test]
async fn one_address_cannot_try_passwords_across_accounts() {
    let p = portal().await;
    let attacker = "203.0.113.7";
    let limit = veertien_web::auth::MAX_FAILURES_PER_IP as usize;
    // Spread over many accounts, so no single account reaches its own lockout.
    for i in 0..limit {
        let who = format!("gok{}@goes.test", i % 10);
        assert_eq!(login_from(&p.app, attacker, &who, "wrong password!!").await.unwrap_err().0, 401, "attempt {i}");
    }
    // Now even the right password of a real account is refused from that address …
    let (status, body) = login_from(&p.app, attacker, KAPELLE_ADMIN, PW).await.unwrap_err();
    assert_eq!(status, 429);
    assert!(body.contains("vanaf dit adres"), "{body}");
    // … but not from another address, and the account itself is not locked.
    assert!(login_from(&p.app, "198.51.100.20", KAPELLE_ADMIN, PW).await.is_ok());
}

#[tokio::test]
async fn a_trusted_proxy_forwards_the_client_address() {
    let mut p = portal().await;
    p.state.trusted_proxies = Arc::new(vec!["127.0.0.1/32".parse().unwrap()]);
    let app = veertien_web::router(p.state.clone());
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = |ip: &str| {
        let ip = ip.to_string();
        // A different account each time: this test is about the address, not the account lockout.
        let email = format!("x{}@goes.test", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let app = app.clone();
        async move {
            let (res, _) = send(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
            let token = set_cookie(&res, "veertien_login_csrf").unwrap();
            let mut req = Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, format!("veertien_login_csrf={token}"))
                .header("x-forwarded-for", format!("10.9.9.9, {ip}"))
                .body(Body::from(form(&[("csrf", &token), ("email", &email), ("password", "wrong password!!")])))
                .unwrap();
            req.extensions_mut().insert(ConnectInfo("127.0.0.1:50000".parse::<SocketAddr>().unwrap()));
            send(&app, req).await.0.status().as_u16()
        }
    };
    for _ in 0..veertien_web::auth::MAX_FAILURES_PER_IP {
        client("192.0.2.1").await;
    }
    // The proxy's own address is not blocked (every other client behind it would be), the client is.
    assert_eq!(client("192.0.2.1").await, 429);
    assert_eq!(client("192.0.2.2").await, 401);
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

#[tokio::test]
async fn no_password_session_id_or_csrf_token_in_the_log() {
    let buf = Buf::default();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(buf.clone()).with_ansi(false).finish();
    // Global, not thread-local: callsites first hit by a parallel test would otherwise cache
    // "never log" and this test would check an empty log. It also means the other tests of this
    // binary are checked for secrets in the log as well.
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber of this test binary");
    let p = portal().await;
    let wrong = "dit-is-fout-maar-geheim";
    assert!(login(&p.app, GOES_ADMIN, wrong).await.is_err());
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let form = settings_form(&csrf, "0113 249 999");
    let req = Request::post("/m/GM0664/settings")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    assert!(send(&p.app, req).await.0.status().is_redirection());
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("failed login") && log.contains("login") && log.contains("settings saved"), "the events are logged: {log}");
    let session_id = cookie.trim_start_matches("veertien_session=");
    for secret in [PW, wrong, session_id, &veertien_web::auth::session_hash(session_id), &csrf, "$argon2"] {
        assert!(!log.contains(secret), "secret {secret:?} in the log:\n{log}");
    }
}

#[tokio::test]
async fn a_user_changes_their_own_password_and_every_other_session_ends() {
    let p = portal().await;
    let (laptop, csrf) = login(&p.app, GOES_VIEWER, PW).await.unwrap();
    let (phone, _) = login(&p.app, GOES_VIEWER, PW).await.unwrap();
    let (res, page) = send(&p.app, get("/account", &laptop)).await;
    assert_eq!(res.status(), 200);
    assert!(page.contains(GOES_VIEWER) && page.contains("Goes") && page.contains("action=\"/account/password\""), "{page}");
    let post = |cookie: &str, pairs: &[(&str, &str)]| {
        Request::post("/account/password")
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form(pairs)))
            .unwrap()
    };
    let new = "drie koeien in de wei";
    // Refusals name the field and change nothing.
    for (current, n, repeat, field, says) in [
        ("niet mijn wachtwoord", new, new, "current", "huidige wachtwoord klopt niet"),
        (PW, "kort", "kort", "new", "minstens 12 tekens"),
        (PW, "aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa", "new", "5 verschillende tekens"),
        (PW, "kijker@goes.test!!", "kijker@goes.test!!", "new", "e-mailadres"),
        (PW, PW, PW, "new", "anders zijn dan het huidige"),
        (PW, new, "drie koeien in de wij", "repeat", "niet gelijk"),
    ] {
        let (res, body) = send(&p.app, post(&laptop, &[("csrf", &csrf), ("current", current), ("new", n), ("repeat", repeat)])).await;
        assert_eq!(res.status(), 422, "{n}: {body}");
        assert!(body.contains(&format!("id=\"{field}-error\"")) && body.contains(says), "{n}: {body}");
    }
    // Without the session's CSRF token: refused.
    let (res, _) = send(&p.app, post(&laptop, &[("csrf", "forged"), ("current", PW), ("new", new), ("repeat", new)])).await;
    assert_eq!(res.status(), 403);
    assert_eq!(send(&p.app, get("/api/me", &phone)).await.0.status(), 200, "refusals end no session");

    let (res, _) = send(&p.app, post(&laptop, &[("csrf", &csrf), ("current", PW), ("new", new), ("repeat", new)])).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[header::LOCATION], "/account?changed=1");
    let fresh = format!("veertien_session={}", set_cookie(&res, "veertien_session").expect("a new session for this browser"));
    // Every earlier session is over (the phone's and this browser's old one); the new one works.
    assert_eq!(send(&p.app, get("/api/me", &phone)).await.0.status(), 401);
    assert_eq!(send(&p.app, get("/api/me", &laptop)).await.0.status(), 401);
    let (res, body) = send(&p.app, get("/account?changed=1", &fresh)).await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("Alle andere sessies zijn beëindigd"), "{body}");
    assert_eq!(login(&p.app, GOES_VIEWER, PW).await.unwrap_err().0, 401, "the old password no longer works");
    assert!(login(&p.app, GOES_VIEWER, new).await.is_ok());
    // Audited without any password in it.
    let log = p.state.store.audit_log(&Default::default()).await.unwrap();
    let e = log.iter().find(|e| e.what == "password changed").expect("audit entry");
    assert_eq!(e.actor, GOES_VIEWER);
    assert!(e.before.is_none() && e.after.is_none());
}

#[tokio::test]
async fn wrong_current_passwords_count_towards_the_account_lockout() {
    let p = portal().await;
    let (cookie, csrf) = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    for _ in 0..5 {
        let req = Request::post("/account/password")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form(&[("csrf", &csrf), ("current", "raden raden raden"), ("new", "x"), ("repeat", "x")])))
            .unwrap();
        assert_eq!(send(&p.app, req).await.0.status(), 422);
    }
    assert_eq!(login(&p.app, GOES_ADMIN, PW).await.unwrap_err().0, 429, "a stolen session cannot guess the password unthrottled");
}
