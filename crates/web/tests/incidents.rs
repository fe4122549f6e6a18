//! Outages end to end, in-process against a portal on a fresh SQLite store with the real
//! national plan: declaring, updating and resolving through the pages and the API; e-mails to a
//! local SMTP sink (written below with tokio: it speaks just enough SMTP for lettre) with the
//! right recipients and content; webhooks to a local axum receiver with a valid signature and a
//! retry after a 503; the missed-update reminder (once per promise, e-mail and banner); the
//! public status page, JSON and Atom feed without login; who may see what.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use common::*;
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use veertien_server::config::NotifyConfig;
use veertien_store::{NewIncident, Severity};
use veertien_web::notify::{Notifier, SIGNATURE_HEADER, verify};

const KAPELLE: &str = "GM0678";

#[derive(Debug, Clone)]
struct Mail {
    from: String,
    to: Vec<String>,
    /// Headers and body, quoted-printable soft breaks and escapes decoded.
    data: String,
}

/// A minimal SMTP server on 127.0.0.1:0 that accepts every message.
struct SmtpSink {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

fn qp_decode(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl SmtpSink {
    async fn start() -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
        let m = mails.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let m = m.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut r = BufReader::new(r);
                    w.write_all(b"220 sink.test ESMTP\r\n").await.unwrap();
                    let (mut from, mut to) = (String::new(), Vec::new());
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let cmd = line.trim_end().to_string();
                        let upper = cmd.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") {
                            b"250-sink.test\r\n250 8BITMIME\r\n"
                        } else if upper.starts_with("MAIL FROM:") {
                            from = cmd[10..].trim().trim_matches(['<', '>']).to_string();
                            to.clear();
                            b"250 OK\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            to.push(cmd[8..].trim().trim_matches(['<', '>']).to_string());
                            b"250 OK\r\n"
                        } else if upper == "DATA" {
                            w.write_all(b"354 go ahead\r\n").await.unwrap();
                            let mut data = String::new();
                            loop {
                                line.clear();
                                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                if line == ".\r\n" || line == ".\n" {
                                    break;
                                }
                                data.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
                            }
                            m.lock().push(Mail { from: from.clone(), to: to.clone(), data: qp_decode(&data) });
                            b"250 queued\r\n"
                        } else if upper == "QUIT" {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"250 OK\r\n"
                        };
                        if w.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SmtpSink { port, mails }
    }

    fn to(&self, addr: &str) -> Vec<Mail> {
        self.mails.lock().iter().filter(|m| m.to.iter().any(|t| t == addr)).cloned().collect()
    }

    /// Waits (bounded) until `addr` has received `n` mails.
    async fn wait_for(&self, addr: &str, n: usize) -> Vec<Mail> {
        for _ in 0..200 {
            let got = self.to(addr);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{addr} did not receive {n} mail(s); sink has {:#?}", self.mails.lock());
    }
}

#[derive(Debug, Clone)]
struct Hook {
    signature: String,
    event: String,
    body: String,
}

/// A webhook receiver that answers 503 to its first request and 200 afterwards.
async fn hook_receiver() -> (String, Arc<Mutex<Vec<Hook>>>, Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::{HeaderMap, StatusCode};
    let got: Arc<Mutex<Vec<Hook>>> = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (g, c) = (got.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (g, c) = (g.clone(), c.clone());
            async move {
                if c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                g.lock().push(Hook { signature: h(SIGNATURE_HEADER), event: h("x-veertien-event"), body });
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got, calls)
}

fn notify_config(smtp_port: u16) -> NotifyConfig {
    NotifyConfig {
        smtp_host: "127.0.0.1".into(),
        smtp_port,
        smtp_security: "plain".into(),
        from: "14+ storingen <storingen@operator.test>".into(),
        operator_emails: vec!["dienst@operator.test".into()],
        public_url: "https://14plus.test".into(),
        timeout_secs: 5,
        attempts: 3,
        retry_base_ms: 50,
        allow_http_webhooks: true,
        ..NotifyConfig::default()
    }
}

/// The common portal with notifications going to `sink`.
async fn portal_with(sink: &SmtpSink) -> Portal {
    let mut p = portal().await;
    p.state.notify = Arc::new(Notifier::new(p.state.store.clone(), notify_config(sink.port)));
    p.app = veertien_web::router(p.state.clone());
    p
}

fn post_form(uri: &str, cookie: &str, pairs: &[(&str, &str)]) -> Request<Body> {
    Request::post(uri)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form(pairs)))
        .unwrap()
}

fn api(method: &str, uri: &str, s: &(String, String), json: serde_json::Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, &s.0)
        .header("x-csrf-token", &s.1)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json.to_string()))
        .unwrap()
}

fn get(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

/// `datetime-local` value `minutes` from now, Europe/Amsterdam.
fn local_in(minutes: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(minutes))
        .to_zoned(jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap())
        .strftime("%Y-%m-%dT%H:%M")
        .to_string()
}

fn rfc3339_in(minutes: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(minutes)).to_string()
}

#[tokio::test]
async fn lifecycle_mails_the_affected_contacts_and_signs_webhooks() {
    let sink = SmtpSink::start().await;
    let p = portal_with(&sink).await;
    let (hook_url, hooks, hook_calls) = hook_receiver().await;
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let kapelle = login(&p.app, KAPELLE_ADMIN, PW).await.unwrap();
    let op = login(&p.app, OPERATOR, PW).await.unwrap();

    // Each admin maintains its own contacts; Goes also a webhook.
    let (res, _) = send(&p.app, post_form("/m/GM0664/contacts", &goes.0, &[("csrf", &goes.1), ("email", "KCC@goes.test"), ("name", "KCC")])).await;
    assert_eq!(res.status(), 303);
    let (res, _) = send(&p.app, post_form("/m/GM0664/webhook", &goes.0, &[("csrf", &goes.1), ("webhook_url", &hook_url)])).await;
    assert_eq!(res.status(), 303);
    let (res, _) = send(&p.app, post_form("/m/GM0678/contacts", &kapelle.0, &[("csrf", &kapelle.1), ("email", "kcc@kapelle.test")])).await;
    assert_eq!(res.status(), 303);
    let (_, page) = send(&p.app, get("/m/GM0664/contacts", Some(&goes.0))).await;
    assert!(page.contains("kcc@goes.test") && page.contains(&hook_url), "{page}");
    let secret = p.state.store.webhook(GOES).await.unwrap().unwrap().secret;
    assert!(page.contains(&secret), "the admin sees the secret to verify signatures");

    // The operator declares an incident for Goes only, through the page.
    let next = local_in(45);
    let (res, body) = send(
        &p.app,
        post_form(
            "/incidents",
            &op.0,
            &[
                ("csrf", &op.1),
                ("title_nl", "Storing 14 0113 Goes"),
                ("title_en", "Outage 14 0113 Goes"),
                ("severity", "major"),
                ("scope", "some"),
                ("municipalities", "Goes"),
                ("text_nl", "Bellers naar Goes horen een bezettoon."),
                ("text_en", "Callers to Goes hear a busy tone."),
                ("next_update", &next),
            ],
        ),
    )
    .await;
    assert_eq!(res.status(), 303, "{body}");
    let location = res.headers()[header::LOCATION].to_str().unwrap().to_string();
    let id: i64 = location.rsplit('/').next().unwrap().parse().unwrap();

    let mails = sink.wait_for("kcc@goes.test", 1).await;
    let m = &mails[0];
    assert_eq!(m.to, vec!["kcc@goes.test"], "one recipient per message");
    assert_eq!(m.from, "storingen@operator.test");
    for needle in [
        "Storing 14 0113 Goes",
        "Bellers naar Goes horen een bezettoon.",
        "Callers to Goes hear a busy tone.",
        "Volgende update uiterlijk:",
        &next.replace('T', " "),
        "https://14plus.test/status",
    ] {
        assert!(m.data.contains(needle), "mail lacks {needle:?}:\n{}", m.data);
    }
    // Kapelle is not affected: no mail to its contact.
    assert!(sink.to("kcc@kapelle.test").is_empty());

    // Webhook: the first attempt got 503, the retry delivered a correctly signed body.
    for _ in 0..100 {
        if !hooks.lock().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h = hooks.lock()[0].clone();
    assert_eq!(h.event, "incident.declared");
    assert!(verify(&secret, &h.signature, h.body.as_bytes()), "bad signature {}", h.signature);
    assert!(!verify("another-secret-0123456789", &h.signature, h.body.as_bytes()));
    let j: serde_json::Value = serde_json::from_str(&h.body).unwrap();
    assert_eq!(j["municipality"], GOES);
    assert_eq!(j["incident"]["id"], id);
    assert_eq!(j["update"]["text"]["nl"], "Bellers naar Goes horen een bezettoon.");
    assert_eq!(hook_calls.load(std::sync::atomic::Ordering::SeqCst), 2);

    // An update through the API, with its promise.
    let (res, body) = send(&p.app, api("POST", &format!("/api/incidents/{id}/updates"), &op, serde_json::json!({
        "text_nl": "Oorzaak gevonden bij de trunk.", "next_update": rfc3339_in(30) }))).await;
    assert_eq!(res.status(), 200, "{body}");
    let mails = sink.wait_for("kcc@goes.test", 2).await;
    assert!(mails.iter().any(|m| m.data.contains("Oorzaak gevonden bij de trunk.")));

    // Resolve through the page; the resolution mail says so and has no promise.
    let (res, _) = send(&p.app, post_form(&format!("/incidents/{id}/resolve"), &op.0, &[("csrf", &op.1), ("text_nl", "Opgelost: trunk hersteld.")])).await;
    assert_eq!(res.status(), 303);
    let mails = sink.wait_for("kcc@goes.test", 3).await;
    let last = mails.iter().find(|m| m.data.contains("Opgelost: trunk hersteld.")).expect("resolution mail");
    assert!(last.data.contains("Deze storing is opgelost.") && !last.data.contains("Volgende update uiterlijk"));
    // Resolving again changes nothing (idempotent for the operator, one resolution in the log).
    let (res, _) = send(&p.app, api("POST", &format!("/api/incidents/{id}/resolve"), &op, serde_json::json!({ "text_nl": "nogmaals" }))).await;
    assert_eq!(res.status(), 200);
    let inc = p.state.store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.updates.len(), 3);
    // Updating a resolved incident is refused.
    let (res, _) = send(&p.app, api("POST", &format!("/api/incidents/{id}/updates"), &op, serde_json::json!({ "text_nl": "x", "next_update": rfc3339_in(30) }))).await;
    assert_eq!(res.status(), 409);

    // Every attempt is in the operator's delivery log, including the failed first webhook.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (res, body) = send(&p.app, get(&format!("/api/incidents/{id}/deliveries"), Some(&op.0))).await;
    assert_eq!(res.status(), 200);
    let log: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert!(log.iter().any(|d| d["channel"] == "webhook" && d["ok"] == false && d["detail"] == "HTTP 503" && d["attempt"] == 1), "{body}");
    assert!(log.iter().any(|d| d["channel"] == "webhook" && d["ok"] == true && d["attempt"] == 2), "{body}");
    assert_eq!(log.iter().filter(|d| d["channel"] == "email" && d["ok"] == true).count(), 3, "{body}");
    let (_, page) = send(&p.app, get(&format!("/incidents/{id}"), Some(&op.0))).await;
    assert!(page.contains("HTTP 503") && page.contains("kcc@goes.test"), "operator sees the attempts");
    // The municipality admin sees the incident, not the delivery log.
    let (res, page) = send(&p.app, get(&format!("/incidents/{id}"), Some(&goes.0))).await;
    assert_eq!(res.status(), 200);
    assert!(page.contains("Oorzaak gevonden bij de trunk.") && !page.contains("HTTP 503"));
    // Audit log: declare, update, resolve, and the contact/webhook changes.
    let whats: Vec<String> = p.state.store.audit_log(&Default::default()).await.unwrap().into_iter().map(|e| e.what).collect();
    for w in ["incident.declare", "incident.update", "incident.resolve", "notify.contact", "notify.webhook"] {
        assert!(whats.iter().any(|x| x == w), "{w} not audited: {whats:?}");
    }
}

#[tokio::test]
async fn forms_and_api_refuse_bad_input_with_messages_next_to_the_field() {
    let sink = SmtpSink::start().await;
    let p = portal_with(&sink).await;
    let op = login(&p.app, OPERATOR, PW).await.unwrap();
    let base = |next: &str, munis: &str, title: &str| {
        post_form(
            "/incidents",
            &op.0,
            &[("csrf", &op.1), ("title_nl", title), ("severity", "minor"), ("scope", "some"), ("municipalities", munis), ("text_nl", "Tekst"), ("next_update", next)],
        )
    };
    let (res, page) = send(&p.app, base(&local_in(-10), "Atlantis, Goes", "")).await;
    assert_eq!(res.status(), 422);
    assert!(page.contains("id=\"title_nl-error\""), "{page}");
    assert!(page.contains("id=\"next_update-error\"") && page.contains("in de toekomst"), "{page}");
    assert!(page.contains("id=\"municipalities-error\"") && page.contains("Atlantis"), "{page}");
    // What was typed is kept.
    assert!(page.contains("value=\"Atlantis, Goes\""));
    let (res, page) = send(&p.app, base(&local_in(25 * 60), "0113", "Storing")).await;
    assert_eq!(res.status(), 422);
    assert!(page.contains("binnen 24 uur"), "{page}");
    let (res, page) = send(&p.app, base("gisteren", "0113", "Storing")).await;
    assert_eq!(res.status(), 422);
    assert!(page.contains("Geen geldige datum"), "{page}");
    assert!(p.state.store.incidents(&Default::default()).await.unwrap().is_empty());

    // An area code names every municipality sharing it.
    let (res, _) = send(&p.app, base(&local_in(60), "0113", "Storing 0113")).await;
    assert_eq!(res.status(), 303);
    let inc = &p.state.store.incidents(&Default::default()).await.unwrap()[0];
    assert!(inc.municipalities.contains(&GOES.to_string()) && inc.municipalities.contains(&KAPELLE.to_string()), "{:?}", inc.municipalities);

    // API: JSON errors per field, English on request.
    let mut req = api("POST", "/api/incidents", &op, serde_json::json!({ "title_nl": "", "severity": "huge", "text_nl": "x", "next_update": "soon" }));
    req.headers_mut().insert(header::ACCEPT_LANGUAGE, "en".parse().unwrap());
    let (res, body) = send(&p.app, req).await;
    assert_eq!(res.status(), 422);
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    let fields: Vec<&str> = j["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["title_nl", "severity", "next_update"], "{body}");
    let (res, body) = send(&p.app, api("POST", "/api/incidents", &op, serde_json::json!({ "title_nl": "Landelijke storing", "severity": "critical",
        "municipalities": [], "text_nl": "Geen enkele 14+ oproep komt aan.", "next_update": rfc3339_in(20) }))).await;
    assert_eq!(res.status(), 201, "{body}");
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["all_municipalities"], true);
    // Unknown JSON fields are refused rather than ignored.
    let (res, _) = send(&p.app, api("POST", "/api/incidents", &op, serde_json::json!({ "title": "typo" }))).await;
    assert_eq!(res.status(), 422);
    // A contact address must be an address.
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (res, page) = send(&p.app, post_form("/m/GM0664/contacts", &goes.0, &[("csrf", &goes.1), ("email", "geen adres")])).await;
    assert_eq!(res.status(), 422);
    assert!(page.contains("id=\"email-error\""), "{page}");
    // A webhook must be https unless the operator allowed http for a local receiver.
    let mut strict = p.state.clone();
    strict.notify = Arc::new(Notifier::new(p.state.store.clone(), NotifyConfig::default()));
    let app = veertien_web::router(strict);
    let (res, page) = send(&app, post_form("/m/GM0664/webhook", &goes.0, &[("csrf", &goes.1), ("webhook_url", "http://intern.goes.test/hook")])).await;
    assert_eq!(res.status(), 422);
    assert!(page.contains("id=\"webhook_url-error\"") && page.contains("https://"), "{page}");
}

#[tokio::test]
async fn municipalities_see_only_their_incidents_and_contacts() {
    let sink = SmtpSink::start().await;
    let p = portal_with(&sink).await;
    let now = jiff::Timestamp::now().as_millisecond();
    let decl = |m: &[&str], title: &str| NewIncident {
        title_nl: title.into(),
        title_en: None,
        severity: Severity::Minor,
        municipalities: m.iter().map(|s| s.to_string()).collect(),
        text_nl: "Tekst".into(),
        text_en: None,
        next_update_ms: now + 3_600_000,
        actor: OPERATOR.into(),
    };
    let goes_only = p.state.store.declare_incident(&decl(&[GOES], "Alleen Goes")).await.unwrap();
    let everyone = p.state.store.declare_incident(&decl(&[], "Iedereen")).await.unwrap();
    p.state.store.add_contact(GOES, "geheim@goes.test", "", OPERATOR).await.unwrap();
    let kapelle = login(&p.app, KAPELLE_ADMIN, PW).await.unwrap();
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();

    let (res, _) = send(&p.app, get(&format!("/incidents/{}", goes_only.id), Some(&kapelle.0))).await;
    assert_eq!(res.status(), 404);
    let (res, _) = send(&p.app, get(&format!("/api/incidents/{}", goes_only.id), Some(&kapelle.0))).await;
    assert_eq!(res.status(), 404);
    let (res, _) = send(&p.app, get(&format!("/incidents/{}", everyone.id), Some(&kapelle.0))).await;
    assert_eq!(res.status(), 200);
    let (_, body) = send(&p.app, get("/api/incidents", Some(&kapelle.0))).await;
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.iter().map(|i| i["id"].as_i64().unwrap()).collect::<Vec<_>>(), vec![everyone.id]);
    let (_, page) = send(&p.app, get("/incidents", Some(&goes.0))).await;
    assert!(page.contains("Alleen Goes") && page.contains("Iedereen"));
    assert!(!page.contains("id=\"declare\""), "no declare form for a municipality");

    // Municipality users cannot declare, update or resolve.
    for s in [&kapelle, &goes] {
        let (res, _) = send(&p.app, post_form("/incidents", &s.0, &[("csrf", &s.1), ("title_nl", "x")])).await;
        assert_eq!(res.status(), 403);
        let (res, _) = send(&p.app, api("POST", &format!("/api/incidents/{}/resolve", everyone.id), s, serde_json::json!({ "text_nl": "x" }))).await;
        assert_eq!(res.status(), 403);
    }
    // Another municipality's contacts are not there at all.
    for uri in ["/m/GM0664/contacts", "/api/municipalities/GM0664/contacts", "/api/municipalities/gm0664/contacts"] {
        let (res, body) = send(&p.app, get(uri, Some(&kapelle.0))).await;
        assert_eq!(res.status(), 404, "{uri}");
        assert!(!body.contains("geheim@goes.test"));
    }
    let (res, _) = send(&p.app, post_form("/m/GM0664/contacts/remove", &kapelle.0, &[("csrf", &kapelle.1), ("id", "1")])).await;
    assert_eq!(res.status(), 404);
    assert_eq!(p.state.store.contacts(GOES).await.unwrap().len(), 1);
    // A viewer reads the contacts but not the webhook secret.
    p.state.store.set_webhook(GOES, Some(("https://hooks.goes.test/14", "zeer-geheim-0123456789")), OPERATOR).await.unwrap();
    let viewer = login(&p.app, GOES_VIEWER, PW).await.unwrap();
    let (res, body) = send(&p.app, get("/api/municipalities/GM0664/contacts", Some(&viewer.0))).await;
    assert_eq!(res.status(), 200);
    assert!(body.contains("geheim@goes.test") && !body.contains("zeer-geheim"), "{body}");
    let (_, body) = send(&p.app, get("/api/municipalities/GM0664/contacts", Some(&goes.0))).await;
    assert!(body.contains("zeer-geheim-0123456789"));
    // PUT replaces the list (audited per change).
    let (res, body) = send(&p.app, api("PUT", "/api/municipalities/GM0664/contacts", &goes, serde_json::json!({
        "contacts": [{ "email": "nieuw@goes.test", "name": "Nieuw" }], "webhook_url": "https://hooks.goes.test/14" }))).await;
    assert_eq!(res.status(), 200, "{body}");
    let emails: Vec<String> = p.state.store.contacts(GOES).await.unwrap().into_iter().map(|c| c.email).collect();
    assert_eq!(emails, vec!["nieuw@goes.test"]);
}

#[tokio::test]
async fn status_page_is_public_and_shows_the_promise() {
    let sink = SmtpSink::start().await;
    let p = portal_with(&sink).await;
    let op = login(&p.app, OPERATOR, PW).await.unwrap();
    let (res, body) = send(&p.app, api("POST", "/api/incidents", &op, serde_json::json!({
        "title_nl": "Storing 14 020 Amsterdam", "title_en": "Outage 14 020 Amsterdam", "severity": "critical",
        "municipalities": ["GM0363"], "text_nl": "Bellers horen stilte.", "text_en": "Callers hear silence.", "next_update": rfc3339_in(90) }))).await;
    assert_eq!(res.status(), 201, "{body}");
    let inc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let promised = veertien_web::notify::local_time(inc["updates"][0]["next_update_ms"].as_i64().unwrap());

    let (res, page) = send(&p.app, get("/status", None)).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    for needle in ["Storing 14 020 Amsterdam", "Bellers horen stilte.", "Volgende update uiterlijk", &promised, "Amsterdam", "name=\"viewport\""] {
        assert!(page.contains(needle), "status page lacks {needle:?}");
    }
    assert!(!page.contains(OPERATOR), "no operator addresses on the public page");
    let (_, en) = send(&p.app, get("/status?lang=en", None)).await;
    assert!(en.contains("Outage 14 020 Amsterdam") && en.contains("Callers hear silence.") && en.contains("Next update by"), "{en}");

    let (res, body) = send(&p.app, get("/status.json", None)).await;
    assert_eq!(res.status(), 200);
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["current"][0]["title"]["nl"], "Storing 14 020 Amsterdam");
    assert_eq!(j["current"][0]["municipalities"][0]["name"], "Amsterdam");
    assert!(j["current"][0]["next_update_at"].is_string());
    assert!(!body.contains(OPERATOR));

    let (res, feed) = send(&p.app, get("/status.atom", None)).await;
    assert!(res.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/atom+xml"));
    assert!(feed.starts_with("<?xml") && feed.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\">"), "{feed}");
    assert!(feed.contains("<entry>") && feed.contains("Storing 14 020 Amsterdam") && feed.contains("</link>"), "{feed}");

    // Resolved: moves to the past 90 days.
    let id = inc["id"].as_i64().unwrap();
    let (res, _) = send(&p.app, api("POST", &format!("/api/incidents/{id}/resolve"), &op, serde_json::json!({ "text_nl": "Weer bereikbaar." }))).await;
    assert_eq!(res.status(), 200);
    let (_, page) = send(&p.app, get("/status", None)).await;
    let past = page.find("Afgelopen 90 dagen").unwrap();
    assert!(page.contains("Geen storingen bekend"));
    assert!(page[past..].contains("Storing 14 020 Amsterdam") && page[past..].contains("Weer bereikbaar."));
}

#[tokio::test]
async fn a_missed_promise_reminds_the_operator_once_by_mail_and_banner() {
    let sink = SmtpSink::start().await;
    let p = portal_with(&sink).await;
    let now = jiff::Timestamp::now().as_millisecond();
    let inc = p
        .state
        .store
        .declare_incident(&NewIncident {
            title_nl: "Storing 0570".into(),
            title_en: None,
            severity: Severity::Major,
            municipalities: vec!["GM0150".into()],
            text_nl: "Deventer onbereikbaar.".into(),
            text_en: None,
            next_update_ms: now + 60_000,
            actor: OPERATOR.into(),
        })
        .await
        .unwrap();
    // Not yet due.
    assert!(p.state.notify.check_reminders(now + 59_000).await.is_empty());
    // Past the promise: reminded once, however often the check runs.
    assert_eq!(p.state.notify.check_reminders(now + 61_000).await, vec![inc.id]);
    assert!(p.state.notify.check_reminders(now + 120_000).await.is_empty());
    let mails = sink.wait_for("dienst@operator.test", 1).await;
    assert!(mails[0].data.contains("te laat") && mails[0].data.contains("https://14plus.test/incidents/"), "{}", mails[0].data);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.to("dienst@operator.test").len(), 1, "one reminder per missed promise");

    // A new update makes a new promise, which is reminded again when it passes.
    let op = login(&p.app, OPERATOR, PW).await.unwrap();
    let (res, _) = send(&p.app, api("POST", &format!("/api/incidents/{}/updates", inc.id), &op, serde_json::json!({ "text_nl": "Monteur onderweg.", "next_update": rfc3339_in(10) }))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(p.state.notify.check_reminders(now + 11 * 60_000 + 60_000).await, vec![inc.id]);
}

#[tokio::test]
async fn the_background_check_fires_the_reminder_and_the_banner_shows_it() {
    let sink = SmtpSink::start().await;
    let p = portal_with(&sink).await;
    let now = jiff::Timestamp::now().as_millisecond();
    let inc = p
        .state
        .store
        .declare_incident(&NewIncident {
            title_nl: "Korte belofte".into(),
            title_en: None,
            severity: Severity::Minor,
            municipalities: vec![],
            text_nl: "Test.".into(),
            text_en: None,
            // Passes in a second; the check runs every 100 ms.
            next_update_ms: now + 1_000,
            actor: OPERATOR.into(),
        })
        .await
        .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = veertien_web::status::spawn_background(p.state.clone(), Duration::from_millis(100), stop.clone());
    let mails = sink.wait_for("dienst@operator.test", 1).await;
    assert!(mails[0].data.contains(&format!("#{}", inc.id)));
    stop.cancel();
    task.await.unwrap();
    assert!(p.state.store.reminded_updates(inc.id).await.unwrap().len() == 1);

    // The banner is on the operator's pages, not on a municipality's.
    let op = login(&p.app, OPERATOR, PW).await.unwrap();
    let (_, page) = send(&p.app, get("/incidents", Some(&op.0))).await;
    assert!(page.contains("class=\"banner\"") && page.contains("Korte belofte"), "{page}");
    let (_, page) = send(&p.app, get("/m/GM0664", Some(&op.0))).await;
    assert!(page.contains("class=\"banner\""), "every operator page");
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (_, page) = send(&p.app, get("/m/GM0664", Some(&goes.0))).await;
    assert!(!page.contains("class=\"banner\""));
    // The incident page marks the reminder in the timeline.
    let (_, page) = send(&p.app, get(&format!("/incidents/{}", inc.id), Some(&op.0))).await;
    assert!(page.contains("Operator herinnerd op"), "{page}");
}
