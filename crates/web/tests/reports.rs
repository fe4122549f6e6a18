//! Management information over the real router and a real SQLite store: figures as JSON, the
//! dashboard with its SVG charts, every table as CSV, the call list with filters and paging, a
//! page per call with the dialogue, and who may see what.

mod common;

use axum::body::Body;
use axum::http::{Request, header};
use common::*;
use serde_json::{Value, json};
use veertien_store::{CallRecord, Delivery, Outcome};

const KAPELLE: &str = "GM0678";
/// 2025-06-02 (a Monday) 10:00 Europe/Amsterdam.
const MON_10H: i64 = 1_748_851_200_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const WEEK: &str = "from=2025-06-02&to=2025-06-08";

fn base(id: &str, received: i64, cbs: Option<&str>) -> CallRecord {
    let mut r = CallRecord::received(id, format!("{id}@carrier"), "node-1", "0612345678", "140113", received);
    r.normalised = Some("140113".into());
    r.area_code = Some("0113".into());
    r.decision_kind = "forward".into();
    r.municipality_cbs = cbs.map(String::from);
    r.decided_ms = Some(received + 2);
    r
}

fn redirected(id: &str, received: i64, cbs: &str) -> CallRecord {
    let mut r = base(id, received, Some(cbs));
    r.destination = Some("+31113249999".into());
    r.delivery = Some(Delivery::Redirect);
    r.outcome = Some(Outcome::Redirected);
    r.sip_status = Some(302);
    r.ended_ms = Some(received + 4);
    r.post_dial_delay_ms = Some(4);
    r
}

/// Through the IVR and bridged: rang after `select_ms`, answered `answer_after` later.
fn bridged(id: &str, received: i64, cbs: &str, select_ms: i64, answer_after: Option<i64>, corrected: bool) -> CallRecord {
    let mut r = base(id, received, Some(cbs));
    r.destination = Some("+31113249999".into());
    r.delivery = Some(Delivery::Bridge);
    r.ringing_ms = Some(received + select_ms);
    r.answered_ms = answer_after.map(|a| received + select_ms + a);
    r.outcome = Some(if answer_after.is_some() { Outcome::Answered } else { Outcome::NoAnswer });
    r.sip_status = Some(200);
    r.ended_ms = Some(received + select_ms + 60_000);
    r.post_dial_delay_ms = Some(select_ms + 150);
    r.route_steps = json!([{"step": "primary", "destination": "+31113249999", "result": "answered"}]).into();
    r.ivr = Some(json!({
        "area_code": "0113", "lang": "nl", "speech": true, "caller_in_area": true,
        "recognised_first_time": !corrected, "corrections": if corrected { 1 } else { 0 },
        "entries": [
            {"at_ms": 0, "what": "prompt", "ids": ["welcome"], "text": "Welkom bij 14 0113. Welke gemeente zoekt u?"},
            {"at_ms": 3200, "what": "heard", "text": if corrected { "kapel" } else { "goes" }, "speech_confidence": 0.91,
             "resolution": "match", "municipality": if corrected { "Kapelle" } else { "Goes" }, "resolution_confidence": 0.9, "confidence": 0.88, "top": []},
            {"at_ms": 4100, "what": "answer", "yes": !corrected, "via": "speech"},
            {"at_ms": 5200, "what": "outcome", "outcome": "deliver"}
        ]
    }));
    r
}

/// Goes in the week of 2025-06-02: 60 redirected, 8 bridged (6 answered within 30 s, 1 after
/// 45 s, 1 not answered; 2 of the 8 corrected), 2 hung up during selection; Kapelle 3
/// redirected; 2 rejected numbers without a municipality; 5 Goes calls the week before.
fn seed() -> Vec<CallRecord> {
    let mut v = Vec::new();
    for i in 0..60 {
        v.push(redirected(&format!("goes-r{i:02}"), MON_10H + i * 2 * HOUR, GOES));
    }
    for i in 0..6 {
        v.push(bridged(&format!("goes-b{i}"), MON_10H + DAY + i * HOUR, GOES, 6_000 + i * 1000, Some(10_000), i < 2));
    }
    v.push(bridged("goes-slow", MON_10H + 2 * DAY, GOES, 7_000, Some(45_000), false));
    v.push(bridged("goes-noanswer", MON_10H + 2 * DAY + HOUR, GOES, 8_000, None, false));
    for i in 0..2 {
        let mut r = base(&format!("goes-hup{i}"), MON_10H + 3 * DAY + i * HOUR, Some(GOES));
        r.outcome = Some(Outcome::CallerHungUpDuringSelection);
        r.ended_ms = Some(r.received_ms + 9_000);
        r.ivr = Some(json!({"entries": [], "recognised_first_time": false, "corrections": 0}));
        v.push(r);
    }
    for i in 0..3 {
        v.push(redirected(&format!("kapelle-r{i}"), MON_10H + i * HOUR, KAPELLE));
    }
    for i in 0..2 {
        let mut r = base(&format!("rejected{i}"), MON_10H + i * HOUR, None);
        r.dialled = "14099".into();
        r.outcome = Some(Outcome::Rejected);
        r.sip_status = Some(404);
        r.ended_ms = Some(r.received_ms + 1);
        v.push(r);
    }
    for i in 0..5 {
        v.push(redirected(&format!("goes-prev{i}"), MON_10H - 7 * DAY + i * HOUR, GOES));
    }
    v
}

async fn seeded() -> Portal {
    let p = portal().await;
    p.state.store.write_calls(&seed()).await.unwrap();
    p
}

fn get(uri: &str, s: &(String, String)) -> Request<Body> {
    Request::get(uri).header(header::COOKIE, &s.0).body(Body::empty()).unwrap()
}

fn figure(report: &Value, key: &str) -> Value {
    report["figures"].as_array().unwrap().iter().find(|f| f["key"] == key).unwrap_or_else(|| panic!("no figure {key}")).clone()
}

fn outcome(report: &Value, o: &str) -> u64 {
    report["report"]["stats"]["current"]["outcomes"].as_array().unwrap().iter().find(|x| x[0] == o).unwrap()[1].as_u64().unwrap()
}

#[tokio::test]
async fn municipality_report_json_has_every_figure_of_its_own_calls_only() {
    let p = seeded().await;
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (res, body) = send(&p.app, get(&format!("/api/municipalities/GM0664/report?{WEEK}"), &goes)).await;
    assert_eq!(res.status(), 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((r["municipality"].as_str(), r["from"].as_str(), r["to"].as_str()), (Some(GOES), Some("2025-06-02"), Some("2025-06-08")));
    assert_eq!((r["previous_from"].as_str(), r["previous_to"].as_str()), (Some("2025-05-26"), Some("2025-06-01")));
    // 60 redirected + 8 bridged + 2 hang-ups; Kapelle's and rejected calls are not Goes's.
    assert_eq!(figure(&r, "calls")["value"], 70.0);
    assert_eq!(figure(&r, "calls")["previous"], 5.0);
    assert_eq!(figure(&r, "calls")["change"], 1300.0);
    assert_eq!(outcome(&r, "redirected"), 60);
    assert_eq!(outcome(&r, "answered"), 7);
    assert_eq!(outcome(&r, "no_answer"), 1);
    assert_eq!(outcome(&r, "caller_hung_up_during_selection"), 2);
    assert_eq!(outcome(&r, "rejected"), 0);
    // Sector norm: 6 of the 8 bridged calls that rang were answered within 30 s.
    assert_eq!(figure(&r, "bridged_offered")["value"], 8.0);
    assert_eq!(figure(&r, "answered_within_30s")["value"], 0.75);
    // Right first time: 70 eligible, minus 2 corrected, minus 2 hung up during selection.
    assert_eq!(figure(&r, "right_first_time")["value"], 66.0 / 70.0);
    assert_eq!(figure(&r, "right_first_time")["previous"], 1.0);
    assert_eq!(figure(&r, "corrected_calls")["value"], 2.0);
    assert_eq!(figure(&r, "ivr_hangups")["value"], 2.0);
    // Name asked in 10 calls (8 bridged + 2 hang-ups), recognised first time in 6.
    assert_eq!(figure(&r, "name_recognised_first_time")["value"], 0.6);
    // Time from answer to destination through the IVR: rang after 6..11 s.
    let ivr = &r["report"]["routing"]["time_to_destination_ivr"];
    assert_eq!((ivr["count"].as_u64(), ivr["max"].as_i64()), (Some(8), Some(11_000)));
    assert_eq!(figure(&r, "time_to_destination_direct_p50")["value"], 4.0);
    // Calls per day and per hour of the week.
    let per_day = r["report"]["stats"]["current"]["calls_per_day"].as_array().unwrap();
    assert_eq!(per_day[0], json!(["2025-06-02", 7]));
    let per_hour = r["report"]["stats"]["current"]["calls_per_hour_of_week"].as_array().unwrap();
    assert_eq!(per_hour.len(), 168);
    assert_eq!(per_hour[10], 1, "Monday 10:00");
    assert_eq!(per_hour.iter().map(|v| v.as_u64().unwrap()).sum::<u64>(), 70);
}

#[tokio::test]
async fn national_report_is_for_operators_and_counts_every_call() {
    let p = seeded().await;
    let op = login(&p.app, OPERATOR, PW).await.unwrap();
    let (res, body) = send(&p.app, get(&format!("/api/report/national?{WEEK}"), &op)).await;
    assert_eq!(res.status(), 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["municipality"], Value::Null);
    assert_eq!(figure(&r, "calls")["value"], 75.0);
    assert_eq!(outcome(&r, "rejected"), 2);
    let (res, html) = send(&p.app, get(&format!("/national/report?{WEEK}"), &op)).await;
    assert_eq!(res.status(), 200);
    assert!(html.contains("Landelijk") || html.contains("National"), "{html}");
    // A municipality's admin and viewer get 404 for national figures, pages and lists.
    for who in [GOES_ADMIN, GOES_VIEWER] {
        let s = login(&p.app, who, PW).await.unwrap();
        for uri in ["/api/report/national", "/national/report", "/national/calls", "/api/calls/rejected0", "/national/calls/rejected0"] {
            assert_eq!(send(&p.app, get(uri, &s)).await.0.status(), 404, "{who} {uri}");
        }
    }
}

#[tokio::test]
async fn another_municipality_cannot_see_reports_calls_or_call_pages() {
    let p = seeded().await;
    let kapelle = login(&p.app, KAPELLE_ADMIN, PW).await.unwrap();
    for uri in [
        "/m/GM0664/report",
        "/m/gm0664/report?format=csv&table=outcomes",
        "/m/GM0664/calls",
        "/m/GM0664/calls/goes-b1",
        "/api/municipalities/GM0664/report",
        "/api/municipalities/GM0664/calls",
        "/api/municipalities/GM0664/calls/goes-b1",
        "/api/calls?municipality=GM0664",
        // Its own municipality in the path does not open another's call.
        "/m/GM0678/calls/goes-b1",
        "/api/municipalities/GM0678/calls/goes-b1",
    ] {
        let (res, body) = send(&p.app, get(uri, &kapelle)).await;
        assert_eq!(res.status(), 404, "{uri}: {body}");
        assert!(!body.contains("goes-b1") && !body.contains("0612345678"), "{uri}: {body}");
    }
    // Its own list holds only its own calls.
    let (_, body) = send(&p.app, get("/api/calls?from=2025-06-02&to=2025-06-08", &kapelle)).await;
    let list: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = list["calls"].as_array().unwrap().iter().map(|c| c["call_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["kapelle-r2", "kapelle-r1", "kapelle-r0"]);
}

#[tokio::test]
async fn dashboard_renders_accessible_svg_charts_tiles_trends_and_csv_links() {
    let p = seeded().await;
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (res, html) = send(&p.app, get(&format!("/m/GM0664/report?{WEEK}"), &goes)).await;
    assert_eq!(res.status(), 200, "{html}");
    for id in ["chart-per-day", "chart-trend", "chart-heat", "chart-outcomes"] {
        assert!(html.contains(&format!(r#"id="{id}""#)), "chart {id} missing");
        assert!(html.contains(&format!(r#"aria-labelledby="{id}-title {id}-desc""#)), "{id} not labelled");
    }
    // Heat map: 168 cells, the busiest hour named in its description.
    assert!(html.contains("ma 10:00–11:00: 1 gesprekken"), "heat map cell title");
    // Tiles and the trend against the previous week (5 → 70 calls).
    assert!(html.contains("▲ +1.300,0 %"), "calls trend");
    // 75 % of bridged calls answered within 30 s: the norm is not met, and it says so.
    assert!(html.contains("Sectornorm niet gehaald: 75,0 %"), "norm line");
    assert!(html.contains("beller hing op tijdens keuze"));
    for table in ["per_day", "per_hour", "outcomes", "figures"] {
        let week = WEEK.replace('&', "&amp;");
        assert!(html.contains(&format!("/m/GM0664/report?{week}&amp;format=csv&amp;table={table}")), "csv link {table}");
    }
    // English on request.
    let req = Request::get(format!("/m/GM0664/report?{WEEK}")).header(header::COOKIE, format!("{}; lang=en", goes.0)).body(Body::empty()).unwrap();
    let (_, html) = send(&p.app, req).await;
    assert!(html.contains("Sector norm not met: 75.0 %") && html.contains("Calls per hour of the week"), "english");
}

#[tokio::test]
async fn every_table_downloads_as_dutch_csv() {
    let p = seeded().await;
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let csv = |table: &str| {
        let app = p.app.clone();
        let s = goes.clone();
        let uri = format!("/m/GM0664/report?{WEEK}&format=csv&table={table}");
        async move { send(&app, get(&uri, &s)).await }
    };
    let (res, body) = csv("outcomes").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(res.headers()[header::CONTENT_DISPOSITION], "attachment; filename=\"veertien-gm0664-afloop-2025-06-02-2025-06-08.csv\"");
    assert!(body.starts_with('\u{feff}'), "BOM for spreadsheets");
    let lines: Vec<&str> = body.trim_start_matches('\u{feff}').split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "afloop;omschrijving;gesprekken;vorige periode;aandeel (%)");
    assert_eq!(lines.len(), 1 + 9);
    // 60 of 70 redirected: 85,7 % with a decimal comma.
    assert!(lines.contains(&"redirected;doorgeschakeld;60;5;85,7"), "{lines:?}");
    let (_, body) = csv("per_hour").await;
    assert_eq!(body.split("\r\n").filter(|l| !l.is_empty()).count(), 1 + 168);
    assert!(body.contains("\r\nma;10:00;1\r\n"), "{body}");
    let (_, body) = csv("per_day").await;
    assert!(body.contains("\r\n2025-06-02;7\r\n"), "{body}");
    let (_, body) = csv("figures").await;
    assert!(body.contains("answered_within_30s;Binnen 30 s beantwoord (norm 80 %);%;75,0;;"), "{body}");
    // Fields with the separator or quotes are quoted (RFC 4180 rules).
    assert!(body.contains("\"Correcties (\"\"nee\"\" op de voorgestelde gemeente)\""), "{body}");
    let (res, body) = csv("nonsense").await;
    assert_eq!(res.status(), 400);
    assert!(body.contains("nonsense") && body.contains("per_day"), "{body}");
    // The call list as CSV holds every matching call, not one page.
    let (res, body) = send(&p.app, get(&format!("/m/GM0664/calls?{WEEK}&format=csv"), &goes)).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().contains("gesprekken"));
    assert_eq!(body.split("\r\n").filter(|l| !l.is_empty()).count(), 1 + 70);
    assert!(body.contains("goes-b0;2025-06-03 10:00:00;0612345678;140113;GM0664;+31113249999;bridge;answered;200;6150;10000;66000"), "{body}");
}

#[tokio::test]
async fn call_list_filters_and_pages() {
    let p = seeded().await;
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let page = |q: String| {
        let app = p.app.clone();
        let s = goes.clone();
        async move { send(&app, get(&format!("/m/GM0664/calls?{q}"), &s)).await }
    };
    let rows = |html: &str| html.matches("<a href=\"/m/GM0664/calls/").count();
    let (res, html) = page(WEEK.into()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(rows(&html), 50);
    assert!(html.contains("rel=\"next\"") && !html.contains("rel=\"prev\""));
    let (_, html) = page(format!("{WEEK}&page=2")).await;
    assert_eq!(rows(&html), 20);
    assert!(!html.contains("rel=\"next\"") && html.contains("rel=\"prev\""));
    let (_, html) = page(format!("{WEEK}&outcome=no_answer")).await;
    assert_eq!(rows(&html), 1);
    assert!(html.contains("/m/GM0664/calls/goes-noanswer"));
    let (_, html) = page(format!("{WEEK}&outcome=answered&number=0612345678")).await;
    assert_eq!(rows(&html), 7);
    let (_, html) = page(format!("{WEEK}&number=0699999999")).await;
    assert_eq!(rows(&html), 0);
    assert!(html.contains("Geen gesprekken"));
    // The previous week holds the 5 earlier calls; a bad filter is named.
    let (_, html) = page("from=2025-05-26&to=2025-06-01".into()).await;
    assert_eq!(rows(&html), 5);
    let (res, body) = page(format!("{WEEK}&outcome=gone")).await;
    assert_eq!(res.status(), 400);
    assert!(body.contains("unknown outcome 'gone'"), "{body}");
    let (res, body) = page("from=2025-13-01".into()).await;
    assert_eq!(res.status(), 400);
    assert!(body.contains("'from'"), "{body}");
    // The API pages with offsets.
    let (_, body) = send(&p.app, get(&format!("/api/municipalities/GM0664/calls?{WEEK}&limit=30&offset=60"), &goes)).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["calls"].as_array().unwrap().len(), 10);
    assert_eq!(v["next_offset"], Value::Null);
}

#[tokio::test]
async fn call_page_shows_route_timings_and_what_was_said_and_recognised() {
    let p = seeded().await;
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let (res, html) = send(&p.app, get("/m/GM0664/calls/goes-b0", &goes)).await;
    assert_eq!(res.status(), 200, "{html}");
    for needle in [
        "Afloop: beantwoord",
        "+31113249999",
        "doorverbinden",
        "2025-06-03 10:00:06 (+6000 ms)",  // ringing
        "2025-06-03 10:00:16 (+16000 ms)", // answered
        "6150 ms",                          // post-dial delay
        "step: <strong>primary</strong>",
        "<q>kapel</q>",
        "herkend als <strong>Kapelle</strong>",
        "nee (correctie)",
    ] {
        assert!(html.contains(needle), "missing {needle:?} in call page");
    }
    let (_, html) = send(&p.app, get("/m/GM0664/calls/goes-r00", &goes)).await;
    assert!(html.contains("niet via het keuzemenu"));
    let (res, _) = send(&p.app, get("/m/GM0664/calls/does-not-exist", &goes)).await;
    assert_eq!(res.status(), 404);
    // The same record as JSON.
    let (_, body) = send(&p.app, get("/api/municipalities/GM0664/calls/goes-b0", &goes)).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ivr"]["entries"][1]["text"], "kapel");
}

#[tokio::test]
async fn a_call_ending_now_is_in_the_default_report_at_once() {
    let p = portal().await;
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    p.state.store.write_calls(&[redirected("just-now", now - 1_000, GOES)]).await.unwrap();
    let (_, body) = send(&p.app, get("/api/municipalities/GM0664/report", &goes)).await;
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(figure(&r, "calls")["value"], 1.0, "{body}");
    let (_, html) = send(&p.app, get("/m/GM0664/calls", &goes)).await;
    assert!(html.contains("/m/GM0664/calls/just-now"));
}

#[tokio::test]
async fn bad_periods_are_refused_with_the_reason() {
    let p = portal().await;
    let goes = login(&p.app, GOES_ADMIN, PW).await.unwrap();
    for (q, needle) in [
        ("from=2025-06-09&to=2025-06-08", "before"),
        ("from=yesterday", "'from' must be a date"),
        ("from=2020-01-01&to=2025-01-01", "at most 732 days"),
    ] {
        let (res, body) = send(&p.app, get(&format!("/api/municipalities/GM0664/report?{q}"), &goes)).await;
        assert_eq!(res.status(), 400, "{q}");
        assert!(body.contains(needle), "{q}: {body}");
    }
}

#[tokio::test]
async fn openapi_describes_the_report_and_call_resources() {
    let p = portal().await;
    let (_, body) = send(&p.app, Request::get("/api/openapi.json").body(Body::empty()).unwrap()).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    for path in ["/api/municipalities/{cbs}/report", "/api/report/national", "/api/calls", "/api/calls/{id}", "/api/municipalities/{cbs}/calls", "/api/municipalities/{cbs}/calls/{id}"] {
        assert!(v["paths"][path]["get"].is_object(), "{path} not in the OpenAPI description");
    }
    assert!(v["components"]["schemas"]["ReportResponse"].is_object());
}
