//! `veertien serve` mounts the portal on `[http] listen`: start the real binary, create an account
//! with `veertien user add`, log in over HTTP and read `/api/me`; a portal change survives a restart.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PW: &str = "een lang genoeg wachtwoord";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Serve {
    fn start(config: &Path, addr: SocketAddr) -> Serve {
        let child = Command::new(assert_cmd::cargo::cargo_bin("veertien"))
            .args(["serve", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut s = Serve(child);
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(s.0.try_wait().unwrap().is_none(), "veertien serve exited early");
            assert!(start.elapsed() < Duration::from_secs(60), "portal did not start listening on {addr}");
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    /// SIGTERM and wait: the clean shutdown path, as an operator stops the service.
    fn stop(mut self) {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let start = Instant::now();
        while self.0.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < Duration::from_secs(60), "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).find_map(|(_, v)| {
            let (k, val) = v.split(';').next()?.split_once('=')?;
            (k == name).then(|| val.to_string())
        })
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`. Written by hand because the test needs the raw
/// `Set-Cookie` headers and no redirect following, and a whole HTTP client crate for four
/// requests would only add build time.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Reply { status, headers, body: body.to_string() }
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", v.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect::<String>()))
        .collect::<Vec<_>>()
        .join("&")
}

/// Logs in through the form and returns the session cookie header and the CSRF token.
fn login(addr: SocketAddr, email: &str, password: &str) -> Result<(String, String), u16> {
    let page = http(addr, "GET", "/login", &[], "");
    assert_eq!(page.status, 200);
    let token = page.cookie("veertien_login_csrf").expect("login CSRF cookie");
    // Plain HTTP on loopback: the cookie must not be Secure, or browsers and curl would drop it.
    let raw = page.headers.iter().find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("veertien_login_csrf")).unwrap();
    assert!(!raw.1.contains("Secure"), "{}", raw.1);
    let body = form(&[("csrf", &token), ("email", email), ("password", password)]);
    let cookie = format!("veertien_login_csrf={token}");
    let r = http(addr, "POST", "/login", &[("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", &cookie)], &body);
    let Some(session) = r.cookie("veertien_session") else { return Err(r.status) };
    assert_eq!(r.status, 303);
    let cookie = format!("veertien_session={session}");
    let me = http(addr, "GET", "/api/me", &[("Cookie", &cookie)], "");
    assert_eq!(me.status, 200, "{}", me.body);
    let v: serde_json::Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(v["email"], email);
    Ok((cookie, v["csrf_token"].as_str().unwrap().to_string()))
}

#[test]
fn serve_mounts_the_portal_and_keeps_portal_changes_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = dir.path().join("veertien.toml");
    let db = dir.path().join("var/veertien.db");
    std::fs::write(
        &config,
        format!(
            "[sip]\nudp = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\n[http]\nlisten = \"{addr}\"\nprompts_dir = \"{}\"\n[store]\npath = \"{}\"\n",
            dir.path().join("prompts").display(),
            db.display()
        ),
    )
    .unwrap();
    assert_cmd::Command::cargo_bin("veertien")
        .unwrap()
        .args(["user", "add", "--role", "admin", "--municipality", "GM0664", "--config"])
        .arg(&config)
        .arg("beheer@goes.test")
        .write_stdin(format!("{PW}\n"))
        .assert()
        .success();

    let serve = Serve::start(&config, addr);
    // Anonymous: pages redirect to the login form, the API answers 401.
    let r = http(addr, "GET", "/m/GM0664", &[], "");
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    assert_eq!(http(addr, "GET", "/api/municipalities/GM0664/settings", &[], "").status, 401);
    assert_eq!(login(addr, "beheer@goes.test", "wrong password, long").unwrap_err(), 401);
    let (cookie, csrf) = login(addr, "beheer@goes.test", PW).unwrap();
    // Another municipality stays invisible over the real server too.
    assert_eq!(http(addr, "GET", "/api/municipalities/GM0678/settings", &[("Cookie", &cookie)], "").status, 404);
    // Change the destination through the API.
    let r = http(addr, "GET", "/api/municipalities/GM0664/settings", &[("Cookie", &cookie)], "");
    let mut v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    v["settings"]["destination"] = "0113 249 999".into();
    let body = serde_json::json!({ "version": v["version"], "settings": v["settings"] }).to_string();
    let r = http(
        addr,
        "PUT",
        "/api/municipalities/GM0664/settings",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf), ("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    serve.stop();

    // After a restart the stored change is what the portal (and the routing) shows.
    let serve = Serve::start(&config, addr);
    let (cookie, _) = login(addr, "beheer@goes.test", PW).unwrap();
    let r = http(addr, "GET", "/api/municipalities/GM0664/settings", &[("Cookie", &cookie)], "");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["settings"]["destination"], "+31113249999", "{}", r.body);
    serve.stop();
}
