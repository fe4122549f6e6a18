//! End to end in headless Chromium (driven through chromedriver with fantoccini): a municipality
//! admin logs in, changes the destination, sees it in the audit log, and cannot open another
//! municipality's page or API resource. Screenshots go to docs/screenshots/.
//!
//! Skipped (with a message) when /usr/bin/chromedriver or /usr/bin/chromium is not installed.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::{ClientBuilder, Locator};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_destination_sees_audit_and_cannot_open_another_municipality() {
    if !std::path::Path::new("/usr/bin/chromedriver").exists() || !std::path::Path::new("/usr/bin/chromium").exists() {
        eprintln!("skipped: chromium/chromedriver not installed");
        return;
    }
    let p = portal().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = p.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let port = free_port();
    let _driver = Kill(Command::new("/usr/bin/chromedriver").arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let profile = tempfile::tempdir().unwrap();
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--window-size=1000,1100", format!("--user-data-dir={}", profile.path().display())]
        }
    }))
    .unwrap();
    let mut client = None;
    for _ in 0..50 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new()).capabilities(caps.clone()).connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let c = client.expect("chromedriver did not start");
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let result: Result<(), fantoccini::error::CmdError> = async {
        c.goto(&format!("{base}/login")).await?;
        c.find(Locator::Id("email")).await?.send_keys(GOES_ADMIN).await?;
        c.find(Locator::Id("password")).await?.send_keys(PW).await?;
        std::fs::write(shots.join("portal-login.png"), c.screenshot().await?).unwrap();
        c.find(Locator::Css("button[type=submit]")).await?.click().await?;
        // An admin lands on its own municipality's settings.
        assert!(c.current_url().await?.path().ends_with("/m/GM0664"));
        // A premium number is refused next to the field.
        let dest = c.find(Locator::Id("destination")).await?;
        dest.clear().await?;
        dest.send_keys("0900 1234567").await?;
        c.find(Locator::Css("form[action='/m/GM0664/settings'] button[type=submit]")).await?.click().await?;
        let err = c.find(Locator::Id("destination-error")).await?.text().await?;
        assert!(err.contains("(090x)"), "{err}");
        std::fs::write(shots.join("portal-toll-fraud-guard.png"), c.screenshot().await?).unwrap();
        // A valid number is saved.
        let dest = c.find(Locator::Id("destination")).await?;
        dest.clear().await?;
        dest.send_keys("0113 249 999").await?;
        c.find(Locator::Css("form[action='/m/GM0664/settings'] button[type=submit]")).await?.click().await?;
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
        Ok(())
    }
    .await;
    let _ = c.close().await;
    result.unwrap();
    // And the next call goes to the new destination.
    let snap = p.state.routing.snapshot();
    assert_eq!(snap.settings.destination_uri(snap.plan.by_cbs(GOES).unwrap()), "tel:+31113249999");
}
