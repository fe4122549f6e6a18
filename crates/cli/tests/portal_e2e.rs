//! Issue 5 "Done when", end to end through the real `veertien serve` binary: accounts created with
//! `veertien user add`, serve with SIP + HTTP on free loopback ports and a temp store, a
//! municipality admin in headless Chromium changes the destination of a single-municipality area
//! code (Hulst, 14 0114), sees it in the audit log; a SIPp call gets the 302 with the NEW
//! destination; the call appears in the dashboard (chart + table) and in the CSV export within
//! 60 s; after SIGHUP (plan and settings file reloaded) the next call still uses the portal's
//! destination; and the same admin is refused another municipality's page and API resource.
//!
//! Skipped with a printed reason when chromium, chromedriver or sipp is not installed.

#[path = "../../web/tests/browser_support/mod.rs"]
mod browser_support;
#[path = "../../server/tests/sipp_support/mod.rs"]
mod sipp_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use browser_support::{Kill, click_and_load};
use fantoccini::Locator;
use sipp_support::{free_tcp_port, free_udp_port, scenario, tail};

const PW: &str = "een lang genoeg wachtwoord";
const ADMIN: &str = "beheer@hulst.test";
const OPERATOR: &str = "operator@veertien.test";
/// Hulst is alone on 14 0114 (data/numberplan/netnummergebieden.csv).
const HULST: &str = "GM0677";
const FOURTEEN: &str = "140114";
/// Goes: another municipality, whose page and API the Hulst admin must not open.
const GOES: &str = "GM0664";
const NEW_DESTINATION: &str = "+31114123456";

fn missing_tools() -> Option<String> {
    let mut missing = browser_support::missing_browser();
    missing.extend(Command::new("sipp").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err().then_some("sip-tester"));
    (!missing.is_empty()).then(|| format!("skipped: install the Debian package(s) {}", missing.join(", ")))
}

/// One HTTP/1.1 GET with the browser's session cookie (to read the CSV export as the admin's
/// browser would download it: WebDriver has no portable way to read a downloaded file).
fn http_get(addr: SocketAddr, path: &str, cookie: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    // The portal answers small responses with Content-Length; chunked bodies are joined.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One SIPp call to the 14+ number that must end in a 302 whose Contact is exactly `tel:<dest>`.
/// The scenario is the shared redirect_uac.xml with its Contact check narrowed to `dest`.
fn sipp_redirect_to(dir: &Path, sip: SocketAddr, dest: &str) -> (i32, String) {
    let shared = scenario("redirect_uac.xml");
    let xml = std::fs::read_to_string(&shared).unwrap();
    let generic = r#"regexp="&lt;(tel|sip):\+31[0-9]{9}""#;
    assert!(xml.contains(generic), "{} changed its Contact check; update this test", shared.display());
    let exact = format!(r#"regexp="&lt;tel:\{dest}&gt;""#);
    let scenario = dir.join("redirect_exact.xml");
    std::fs::write(&scenario, xml.replace(generic, &exact)).unwrap();
    let out = Command::new("sipp")
        .arg(sip.to_string())
        .arg("-sf")
        .arg(&scenario)
        .args(["-s", FOURTEEN, "-i", "127.0.0.1", "-p", &free_udp_port().to_string(), "-mp", &free_udp_port().to_string()])
        .args(["-m", "1", "-r", "1", "-timeout", "30s", "-timeout_error", "-nostdin"])
        .current_dir(dir)
        .output()
        .expect("sipp runs");
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), tail(&text, 40))
}

fn user_add(config: &Path, role: &str, municipality: Option<&str>, email: &str) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veertien"));
    cmd.args(["user", "add", "--role", role, "--config"]).arg(config);
    if let Some(m) = municipality {
        cmd.args(["--municipality", m]);
    }
    let mut child = cmd.arg(email).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{PW}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "veertien user add {email}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Polls `check` every 500 ms for at most 60 s (the portal's freshness promise); the last
/// observation is in the panic message.
async fn within_60s<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(()) => return,
            Err(last) if start.elapsed() > Duration::from_secs(60) => panic!("{what} not within 60 s; last seen: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_destination_in_the_browser_and_the_next_call_through_serve_uses_it() {
    if let Some(reason) = missing_tools() {
        eprintln!("{reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let sip: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let config = dir.path().join("veertien.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nudp = \"{sip}\"\ntcp = \"127.0.0.1:0\"\n[http]\nlisten = \"{http}\"\nprompts_dir = \"{}\"\n[store]\npath = \"{}\"\n",
            dir.path().join("prompts").display(),
            dir.path().join("var/veertien.db").display()
        ),
    )
    .unwrap();
    // The first operator and a municipality admin, as the README tells an operator to do.
    user_add(&config, "operator", None, OPERATOR);
    user_add(&config, "admin", Some(HULST), ADMIN);

    let log = dir.path().join("serve.log");
    let serve = Kill(
        Command::new(env!("CARGO_BIN_EXE_veertien"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let serve_log = |log: &PathBuf| std::fs::read_to_string(log).unwrap_or_default();
    let start = Instant::now();
    while TcpStream::connect(http).is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "portal not listening on {http}:\n{}", serve_log(&log));
        std::thread::sleep(Duration::from_millis(100));
    }
    let (c, _driver) = browser_support::chromium("1100,1200").await;
    let base = format!("http://{http}");
    let dirp = dir.path().to_path_buf();

    let result: Result<(), fantoccini::error::CmdError> = async {
        // Dutch, as a municipality's staff see it.
        c.goto(&format!("{base}/lang/nl")).await?;
        c.goto(&format!("{base}/login")).await?;
        c.find(Locator::Id("email")).await?.send_keys(ADMIN).await?;
        c.find(Locator::Id("password")).await?.send_keys(PW).await?;
        click_and_load(&c, c.find(Locator::Css("button[type=submit]")).await?).await?;
        assert_eq!(c.current_url().await?.path(), format!("/m/{HULST}"), "an admin lands on its own municipality");

        // Change the destination and deliver by redirect (302).
        let dest = c.find(Locator::Id("destination")).await?;
        dest.clear().await?;
        dest.send_keys("0114 123 456").await?;
        c.find(Locator::Css("#mode option[value=redirect]")).await?.click().await?;
        click_and_load(&c, c.find(Locator::Id("save")).await?).await?;
        let notice = c.find(Locator::Css("p.notice")).await?.text().await?;
        assert!(notice.contains("Opgeslagen"), "{notice}");
        assert_eq!(c.find(Locator::Id("destination")).await?.prop("value").await?.as_deref(), Some(NEW_DESTINATION));

        // The audit log shows who changed what.
        c.goto(&format!("{base}/m/{HULST}/audit")).await?;
        let table = c.find(Locator::Css("table.audit")).await?.text().await?;
        assert!(table.contains("destination") && table.contains(NEW_DESTINATION) && table.contains(ADMIN), "{table}");

        // A call through the running serve gets the new destination.
        let (code, out) = tokio::task::spawn_blocking({
            let d = dirp.clone();
            move || sipp_redirect_to(&d, sip, NEW_DESTINATION)
        })
        .await
        .unwrap();
        assert_eq!(code, 0, "SIPp expected a 302 to tel:{NEW_DESTINATION}:\n{out}");

        // The call in the dashboard: the per-day chart and the outcome table (reloaded until fresh).
        within_60s("the call in the dashboard", || {
            let (c, base) = (&c, &base);
            async move {
            c.goto(&format!("{base}/m/{HULST}/report")).await.map_err(|e| e.to_string())?;
            let chart = c
                .execute("return document.getElementById('chart-per-day')?.textContent ?? ''", vec![])
                .await
                .map_err(|e| e.to_string())?;
            let table = c.find(Locator::Css("table.outcomes")).await.map_err(|e| e.to_string())?.text().await.map_err(|e| e.to_string())?;
            let chart = chart.as_str().unwrap_or("").to_string();
            let row = table.lines().find(|l| l.starts_with("doorgeschakeld")).unwrap_or("").to_string();
            if chart.contains("Staafdiagram: 1 gesprekken") && row.split_whitespace().nth(1) == Some("1") {
                Ok(())
            } else {
                Err(format!("chart: {chart:.200} / row: {row}"))
            }
            }
        })
        .await;
        let shots = browser_support::screenshot_dir();
        std::fs::create_dir_all(&shots).unwrap();
        std::fs::write(shots.join("portal-e2e-report-after-call.png"), c.screenshot().await?).unwrap();
        // The call list links the call's own page, showing where it went.
        c.goto(&format!("{base}/m/{HULST}/calls")).await?;
        click_and_load(&c, c.find(Locator::Css("table a[href^='/m/GM0677/calls/']")).await?).await?;
        let call = c.find(Locator::Css("main")).await?.text().await?;
        assert!(call.contains(NEW_DESTINATION), "{call}");

        // And in the CSV export, downloaded with the browser's session.
        let session = c.get_named_cookie("veertien_session").await?.value().to_string();
        let cookie = format!("veertien_session={session}");
        within_60s("the call in the CSV export", || {
            let cookie = cookie.clone();
            async move {
                let (status, csv) = tokio::task::spawn_blocking(move || http_get(http, &format!("/m/{HULST}/calls?format=csv"), &cookie)).await.unwrap();
                let line = csv.lines().find(|l| l.contains(NEW_DESTINATION) && l.contains(";redirected;302;")).map(str::to_string);
                match (status, line) {
                    (200, Some(l)) if l.contains(HULST) && l.contains(FOURTEEN) => Ok(()),
                    _ => Err(format!("{status}: {csv:.300}")),
                }
            }
        })
        .await;
        let (status, outcomes) = http_get(http, &format!("/m/{HULST}/report?format=csv&table=outcomes"), &cookie);
        assert_eq!(status, 200);
        assert!(outcomes.lines().any(|l| l.starts_with("redirected;doorgeschakeld;1;")), "{outcomes}");

        // SIGHUP reloads the plan and settings file; the portal's destination stays in force.
        assert!(Command::new("kill").args(["-HUP", &serve.0.id().to_string()]).status().unwrap().success());
        within_60s("the SIGHUP reload", || {
            let log = log.clone();
            async move { if serve_log(&log).contains("SIGHUP: plan and settings reloaded") { Ok(()) } else { Err("no reload in the log yet".into()) } }
        })
        .await;
        let (code, out) = tokio::task::spawn_blocking({
            let d = dirp.clone();
            move || sipp_redirect_to(&d, sip, NEW_DESTINATION)
        })
        .await
        .unwrap();
        assert_eq!(code, 0, "after SIGHUP the call still goes to tel:{NEW_DESTINATION}:\n{out}");

        // Another municipality's page and API resource: not found, nothing of it shown.
        for path in [format!("/m/{GOES}"), format!("/m/{GOES}/report"), format!("/m/{GOES}/audit"), format!("/api/municipalities/{GOES}/settings"), format!("/api/municipalities/{GOES}/calls")] {
            c.goto(&format!("{base}{path}")).await?;
            let body = c.find(Locator::Css("body")).await?.text().await?;
            assert!(body.contains("not found") && !body.contains("Goes") && !body.contains("destination"), "{path}: {body}");
            let (status, _) = http_get(http, &path, &cookie);
            assert_eq!(status, 404, "{path}");
        }
        Ok(())
    }
    .await;
    let _ = c.close().await;
    if let Err(e) = result {
        panic!("browser: {e}\nserve log:\n{}", serve_log(&log));
    }
    drop(serve);
}
