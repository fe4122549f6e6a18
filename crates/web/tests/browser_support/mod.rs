//! Shared by the browser tests (this crate's `browser.rs` and the CLI's `portal_e2e.rs`,
//! which includes it with `#[path]`): headless Chromium through a chromedriver of the test's
//! own, where the screenshots go, and a click that waits for the page it loads.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::Locator;

/// Where the browser's screenshots go: the documentation's own (`docs/screenshots`) only when
/// they are refreshed on purpose with `VEERTIEN_UPDATE_SCREENSHOTS=1`; an ordinary test run
/// writes them under `target/screenshots` instead of changing tracked files.
pub fn screenshot_dir() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if std::env::var_os("VEERTIEN_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/screenshots")
    } else {
        root.join("target/screenshots")
    }
}

/// A child process killed (and reaped) when this is dropped, so that a failing test leaves no
/// chromedriver or server behind.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Debian packages of the browser that are not installed (the tests skip without them).
pub fn missing_browser() -> Vec<&'static str> {
    [("/usr/bin/chromium", "chromium"), ("/usr/bin/chromedriver", "chromium-driver")]
        .into_iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(_, package)| package)
        .collect()
}

/// What the browser lives on: chromedriver is killed, then the profile removed, when dropped.
pub struct Driver {
    _chromedriver: Kill,
    _profile: tempfile::TempDir,
}

/// Headless Chromium with a fresh profile and a window of `window` (`"width,height"`, which is
/// what the screenshots show), through a chromedriver of its own on a free port.
pub async fn chromium(window: &str) -> (fantoccini::Client, Driver) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let chromedriver = Kill(Command::new("/usr/bin/chromedriver").arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let profile = tempfile::tempdir().unwrap();
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", format!("--window-size={window}"), format!("--user-data-dir={}", profile.path().display())]
        }
    }))
    .unwrap();
    // chromedriver takes a moment to listen.
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        match fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new()).capabilities(caps.clone()).connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => panic!("chromedriver did not start: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    (client, Driver { _chromedriver: chromedriver, _profile: profile })
}

/// Clicks something that loads a new page and waits until the old page is gone and the new one
/// has loaded: WebDriver's click does not always wait for a form POST + redirect, and a `find`
/// right after it may hit the old page (that made a browser test flaky once).
pub async fn click_and_load(c: &fantoccini::Client, what: fantoccini::elements::Element) -> Result<(), fantoccini::error::CmdError> {
    let old = c.find(Locator::Css("html")).await?;
    what.click().await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match old.tag_name().await {
            Err(e) if e.is_stale_element_reference() => break,
            _ if Instant::now() > deadline => panic!("the page did not change within 30 s after a click"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    c.wait().at_most(Duration::from_secs(30)).for_element(Locator::Css("body")).await?;
    loop {
        let ready = c.execute("return document.readyState", vec![]).await?;
        if ready.as_str() == Some("complete") {
            return Ok(());
        }
        assert!(Instant::now() < deadline, "the new page did not finish loading");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
