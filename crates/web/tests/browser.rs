//! End to end in headless Chromium (driven through chromedriver with fantoccini): a municipality
//! admin logs in, changes the destination, sees it in the audit log, and cannot open another
//! municipality's page or API resource. Screenshots go to docs/screenshots/.
//!
//! Skipped (with a message) when /usr/bin/chromedriver or /usr/bin/chromium is not installed.

mod browser_support;
mod common;

use browser_support::click_and_load;
use common::*;
use fantoccini::Locator;

/// No horizontal scrolling: names the elements sticking out when there is.
async fn assert_fits_a_phone(c: &fantoccini::Client) -> Result<(), fantoccini::error::CmdError> {
    let js = "const w = document.documentElement.clientWidth; \
              const out = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 0.5) \
                .map(e => e.tagName + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '') + ' ' + Math.round(e.getBoundingClientRect().right)); \
              return [document.documentElement.scrollWidth - w, out.slice(0, 10).join(', ')];";
    let v = c.execute(js, vec![]).await?;
    assert!(v[0].as_i64().unwrap_or(99) <= 0, "page wider than a phone by {} px: {}", v[0], v[1]);
    Ok(())
}

/// 60 days of calls up to now for a few municipalities, shaped like a municipality's week
/// (office hours, quieter weekends), with every outcome, so the dashboards in the screenshots
/// show what a manager would see. Deterministic (a fixed LCG), no clock-dependent assertions.
async fn seed_calls(store: &veertien_store::Store) {
    use veertien_store::{CallRecord, Delivery, Outcome};
    let now = jiff::Timestamp::now().as_millisecond();
    let hour = 3_600_000i64;
    let mut x: u64 = 0x1405_0113;
    let mut rnd = move |n: u64| {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let mut calls = Vec::new();
    for day in 0..60i64 {
        let day_start = now - (day + 1) * 24 * hour;
        let weekday = (day_start / (24 * hour) + 4) % 7; // 0 = Monday (1970-01-01 was a Thursday)
        for (cbs, per_day, bridged) in [(GOES, 40, true), ("GM0678", 12, false), ("GM0654", 18, true), ("GM0677", 15, false)] {
            let n = if weekday >= 5 { per_day / 8 } else { per_day + rnd(per_day / 3 + 1) };
            for i in 0..n {
                let received = day_start + (8 * hour) + rnd(9 * hour as u64) as i64;
                if received > now {
                    continue;
                }
                let id = format!("{cbs}-{day}-{i}");
                let mut r = CallRecord::received(&id, format!("{id}@carrier"), "node-1", "0612345678", "140113", received);
                r.normalised = Some("140113".into());
                r.area_code = Some("0113".into());
                r.decision_kind = "forward".into();
                r.municipality_cbs = Some(cbs.into());
                r.decided_ms = Some(received + 3);
                r.destination = Some("+31113249999".into());
                let roll = rnd(100);
                if !bridged {
                    r.delivery = Some(Delivery::Redirect);
                    r.outcome = Some(if roll < 97 { Outcome::Redirected } else { Outcome::Rejected });
                    r.sip_status = Some(if roll < 97 { 302 } else { 404 });
                    r.ended_ms = Some(received + 5);
                    r.post_dial_delay_ms = Some(5);
                } else {
                    let select = 5_000 + rnd(6_000) as i64;
                    let corrected = rnd(10) == 0;
                    r.delivery = Some(Delivery::Bridge);
                    r.ivr = Some(serde_json::json!({"area_code": "0113", "lang": "nl", "speech": true,
                        "recognised_first_time": !corrected, "corrections": u8::from(corrected), "entries": []}));
                    if roll < 4 {
                        r.outcome = Some(Outcome::CallerHungUpDuringSelection);
                        r.ended_ms = Some(received + select);
                    } else {
                        r.ringing_ms = Some(received + select);
                        r.post_dial_delay_ms = Some(select + 150);
                        let (outcome, answer) = match roll {
                            4..=9 => (Outcome::NoAnswer, None),
                            10..=12 => (Outcome::Busy, None),
                            13..=22 => (Outcome::Answered, Some(30_000 + rnd(40_000) as i64)),
                            _ => (Outcome::Answered, Some(3_000 + rnd(25_000) as i64)),
                        };
                        r.outcome = Some(outcome);
                        r.sip_status = Some(if outcome == Outcome::Busy { 486 } else { 200 });
                        r.answered_ms = answer.map(|a| received + select + a);
                        r.ended_ms = Some(received + select + answer.unwrap_or(20_000) + 120_000);
                    }
                }
                calls.push(r);
            }
        }
    }
    store.write_calls(&calls).await.unwrap();
}

/// An open incident affecting Goes with two updates, for the incident page and the status page.
async fn seed_incident(store: &veertien_store::Store) -> i64 {
    let now = jiff::Timestamp::now().as_millisecond();
    let i = store
        .declare_incident(&veertien_store::NewIncident {
            title_nl: "Storing bij het doorschakelen naar Goes".into(),
            title_en: Some("Fault forwarding calls to Goes".into()),
            severity: veertien_store::Severity::Major,
            municipalities: vec![GOES.into()],
            text_nl: "Bellers van 14 0113 die Goes kiezen, krijgen in gesprek. We onderzoeken de oorzaak.".into(),
            text_en: Some("Callers of 14 0113 choosing Goes get a busy tone. We are investigating.".into()),
            next_update_ms: now + 30 * 60_000,
            actor: OPERATOR.into(),
        })
        .await
        .unwrap();
    store
        .post_incident_update(i.id, &veertien_store::NewIncidentUpdate {
            text_nl: "De oorzaak ligt bij de verbinding met het klantcontactcentrum van Goes; de aanbieder herstelt die.".into(),
            text_en: Some("The cause is the link to the Goes contact centre; the provider is restoring it.".into()),
            next_update_ms: Some(now + 60 * 60_000),
            actor: OPERATOR.into(),
        })
        .await
        .unwrap();
    i.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_destination_sees_audit_and_cannot_open_another_municipality() {
    let missing = browser_support::missing_browser();
    if !missing.is_empty() {
        eprintln!("skipped: install the Debian package(s) {}", missing.join(", "));
        return;
    }
    let p = portal().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = p.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (c, _driver) = browser_support::chromium("1000,1100").await;
    let shots = browser_support::screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();

    let result: Result<(), fantoccini::error::CmdError> = async {
        c.goto(&format!("{base}/login")).await?;
        c.find(Locator::Id("email")).await?.send_keys(GOES_ADMIN).await?;
        c.find(Locator::Id("password")).await?.send_keys(PW).await?;
        std::fs::write(shots.join("portal-login.png"), c.screenshot().await?).unwrap();
        click_and_load(&c, c.find(Locator::Css("button[type=submit]")).await?).await?;
        // An admin lands on its own municipality's settings.
        assert!(c.current_url().await?.path().ends_with("/m/GM0664"));
        // A premium number is refused next to the field.
        let dest = c.find(Locator::Id("destination")).await?;
        dest.clear().await?;
        dest.send_keys("0900 1234567").await?;
        click_and_load(&c, c.find(Locator::Css("form[action='/m/GM0664/settings'] button[type=submit]")).await?).await?;
        let err = c.find(Locator::Id("destination-error")).await?.text().await?;
        assert!(err.contains("(090x)"), "{err}");
        std::fs::write(shots.join("portal-toll-fraud-guard.png"), c.screenshot().await?).unwrap();
        // A valid number is saved.
        let dest = c.find(Locator::Id("destination")).await?;
        dest.clear().await?;
        dest.send_keys("0113 249 999").await?;
        click_and_load(&c, c.find(Locator::Css("form[action='/m/GM0664/settings'] button[type=submit]")).await?).await?;
        assert_eq!(c.find(Locator::Id("destination")).await?.prop("value").await?.as_deref(), Some("+31113249999"));
        std::fs::write(shots.join("portal-settings.png"), c.screenshot().await?).unwrap();
        // The audit log shows it.
        c.goto(&format!("{base}/m/GM0664/audit")).await?;
        let table = c.find(Locator::Css("table.audit")).await?.text().await?;
        assert!(table.contains("destination") && table.contains("+31113249999") && table.contains(GOES_ADMIN), "{table}");
        std::fs::write(shots.join("portal-audit.png"), c.screenshot().await?).unwrap();
        // Kapelle's page and API resource are not reachable.
        c.goto(&format!("{base}/m/GM0678")).await?;
        let body = c.find(Locator::Css("body")).await?.text().await?;
        assert!(body.contains("not found") && !body.contains("Kapelle"), "{body}");
        c.goto(&format!("{base}/api/municipalities/GM0678/settings")).await?;
        let body = c.find(Locator::Css("body")).await?.text().await?;
        assert!(body.contains("not found") && !body.contains("destination"), "{body}");

        // Opening hours and a calamity message, saved in one form.
        c.goto(&format!("{base}/m/GM0664")).await?;
        for d in ["mon", "tue", "wed", "thu", "fri"] {
            let f = c.find(Locator::Id(&format!("hours.{d}"))).await?;
            f.clear().await?;
            f.send_keys("08:30-12:00, 13:00-17:00").await?;
        }
        c.find(Locator::Id("always_open")).await?.click().await?;
        // Typing into a date input depends on the browser's locale; set the ISO value directly.
        c.execute("document.getElementById('exceptions.0.date').value = '2026-12-24'", vec![]).await?;
        c.find(Locator::Id("exceptions.0.hours")).await?.send_keys("08:30-14:00").await?;
        c.find(Locator::Id("exceptions.0.note")).await?.send_keys("Kerstavond").await?;
        c.find(Locator::Id("calamity_message")).await?.send_keys("Door een storing zijn wij beperkt bereikbaar.").await?;
        click_and_load(&c, c.find(Locator::Id("save")).await?).await?;
        let notice = c.find(Locator::Css("p.notice")).await?.text().await?;
        // Headless Chromium asks for English (Accept-Language), so either language.
        assert!(notice.contains("Opgeslagen") || notice.contains("Saved"), "{notice}");
        assert_eq!(c.find(Locator::Id("exceptions.0.note")).await?.prop("value").await?.as_deref(), Some("Kerstavond"));
        // The calamity switch: one big button, then a confirmation.
        c.find(Locator::Css("details.confirm summary")).await?.click().await?;
        std::fs::write(shots.join("portal-calamity-confirm.png"), c.screenshot().await?).unwrap();
        click_and_load(&c, c.find(Locator::Id("calamity-confirm")).await?).await?;
        let state = c.find(Locator::Id("calamity-title")).await?.text().await?;
        assert!(state.contains("AAN") || state.contains("ON"), "{state}");
        // A welcome prompt (MP3), playable in the page.
        let mp3 = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/welkom-44k-stereo.mp3");
        c.find(Locator::Id("prompt")).await?.send_keys(&mp3.display().to_string()).await?;
        click_and_load(&c, c.find(Locator::Id("prompt-upload")).await?).await?;
        let notice = c.find(Locator::Css("p.notice")).await?.text().await?;
        assert!(notice.contains("Welkomstbericht opgeslagen") || notice.contains("Welcome message saved"), "{notice}");
        c.find(Locator::Id("prompt-player")).await?;
        std::fs::write(shots.join("portal-settings-full.png"), c.screenshot().await?).unwrap();
        // English on request, and the phone layout (390 px wide) without horizontal scrolling.
        click_and_load(&c, c.find(Locator::Css("a[lang=en]")).await?).await?;
        let h1 = c.find(Locator::Css("h1")).await?.text().await?;
        assert_eq!(h1, "Settings");
        c.set_window_size(390, 844).await?;
        assert_fits_a_phone(&c).await?;
        std::fs::write(shots.join("portal-settings-phone-en.png"), c.screenshot().await?).unwrap();
        click_and_load(&c, c.find(Locator::Css("a[lang=nl]")).await?).await?;
        assert_fits_a_phone(&c).await?;
        std::fs::write(shots.join("portal-settings-phone.png"), c.screenshot().await?).unwrap();

        // The operator's view, on 60 days of calls: dashboards, the status page, an incident.
        c.set_window_size(1100, 1400).await?;
        seed_calls(&p.state.store).await;
        let incident = seed_incident(&p.state.store).await;
        click_and_load(&c, c.find(Locator::Css("form[action='/logout'] button")).await?).await?;
        c.find(Locator::Id("email")).await?.send_keys(OPERATOR).await?;
        c.find(Locator::Id("password")).await?.send_keys(PW).await?;
        click_and_load(&c, c.find(Locator::Css("button[type=submit]")).await?).await?;
        c.goto(&format!("{base}/m/GM0664/report")).await?;
        let tiles = c.find(Locator::Css("section.tiles")).await?.text().await?;
        assert!(!tiles.is_empty());
        for chart in ["chart-per-day", "chart-trend", "chart-heat", "chart-outcomes"] {
            c.find(Locator::Id(chart)).await?;
        }
        std::fs::write(shots.join("portal-report-municipality.png"), c.screenshot().await?).unwrap();
        c.goto(&format!("{base}/national/report")).await?;
        c.find(Locator::Id("chart-per-day")).await?;
        std::fs::write(shots.join("portal-report-national.png"), c.screenshot().await?).unwrap();
        c.goto(&format!("{base}/incidents/{incident}")).await?;
        let page = c.find(Locator::Css("main")).await?.text().await?;
        assert!(page.contains("Storing bij het doorschakelen") || page.contains("Fault forwarding"), "{page}");
        std::fs::write(shots.join("portal-incident.png"), c.screenshot().await?).unwrap();
        // The public status page, without a session.
        c.delete_all_cookies().await?;
        c.goto(&format!("{base}/status")).await?;
        let page = c.find(Locator::Css("body")).await?.text().await?;
        assert!(page.contains("Storing bij het doorschakelen") || page.contains("Fault forwarding"), "{page}");
        std::fs::write(shots.join("status-page.png"), c.screenshot().await?).unwrap();
        Ok(())
    }
    .await;
    let _ = c.close().await;
    result.unwrap();
    // And the next call goes to the new destination.
    let snap = p.state.routing.snapshot();
    let goes = snap.plan.by_cbs(GOES).unwrap();
    assert_eq!(snap.settings.destination_uri(goes), "tel:+31113249999");
    let ms = snap.settings.get(goes);
    assert!(ms.calamity.as_ref().is_some_and(|c| c.active), "calamity switched on for the next call");
    assert!(ms.opening_hours.weekly.is_some(), "opening hours in force");
    assert!(p.state.prompts_dir.join("custom/GM0664/welcome.wav").exists());
}
