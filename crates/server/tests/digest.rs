//! Digest authentication of trunks (`[[trunk.auth]]`), end to end against the real server on
//! loopback: SIPp's own digest implementation (`-au`/`-ap`, MD5: all SIPp 3.6 speaks) and a raw
//! UDP client computing SHA-256 answers by the RFC 7616 formula, for what SIPp cannot do
//! (SHA-256, replaying a captured answer, a source outside the entry's networks).

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use support::*;
use veertien_server::Config;
use veertien_server::digest::TrunkAuth;
use veertien_sip::Response;
use veertien_store::{CallFilter, Store};

const REALM: &str = "14.veertien.test";
const USER: &str = "carrier";
const PASSWORD: &str = "Zeer-Geheim-14";

fn auth(networks: &[&str], algorithms: Option<&[&str]>, nonce_secs: u64) -> TrunkAuth {
    let mut toml = format!(
        "networks = {networks:?}\nrealm = \"{REALM}\"\nusername = \"{USER}\"\npassword = \"{PASSWORD}\"\nnonce_secs = {nonce_secs}\n"
    );
    if let Some(a) = algorithms {
        toml.push_str(&format!("algorithms = {a:?}\n"));
    }
    toml::from_str(&toml).unwrap()
}

fn with_auth(c: &mut Config, a: TrunkAuth) {
    c.trunk.auth = vec![a];
    c.validate().unwrap();
}

async fn records(db: PathBuf) -> usize {
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    store.list_calls(&CallFilter { limit: 10_000, ..Default::default() }).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_right_password_gets_302_wrong_password_gets_407_again_and_no_call() {
    let ts = TestServer::start(|c| with_auth(c, auth(&["127.0.0.0/8"], Some(&["MD5"]), 300))).await;
    let (fourteen, _, _) = unique_redirect_number();
    let udp = ts.udp;

    let f = fourteen.clone();
    let (code, log) = tokio::task::spawn_blocking(move || Uac::new(udp, "auth_refused_uac.xml", &f).calls(10, 20).timeout("60s").args(&["-au", USER, "-ap", "fout-wachtwoord"]).run()).await.unwrap();
    assert_eq!(code, 0, "wrong password: every INVITE with credentials is challenged again:\n{log}");
    let m = ts.server.engine().metrics();
    assert_eq!(m.redirected, 0, "no call went through with a wrong password: {m:?}");
    let d = ts.server.engine().digest();
    assert_eq!(d.metrics.failed.load(std::sync::atomic::Ordering::Relaxed), 10);
    assert_eq!(d.metrics.accepted.load(std::sync::atomic::Ordering::Relaxed), 0);

    let f = fourteen.clone();
    let (code, log) = tokio::task::spawn_blocking(move || Uac::new(udp, "auth_redirect_uac.xml", &f).calls(20, 20).timeout("60s").args(&["-au", USER, "-ap", PASSWORD]).run()).await.unwrap();
    assert_eq!(code, 0, "right password: 407, then 302:\n{log}");
    assert_eq!(ts.server.engine().metrics().redirected, 20);
    assert_eq!(d.metrics.accepted.load(std::sync::atomic::Ordering::Relaxed), 20);
    // Every 407 and 302 was acknowledged (the ACKs matched their INVITE transactions).
    assert_eq!(ts.server.engine().active_calls(), 0);

    let db = ts.db_path();
    ts.server.shutdown().await;
    assert_eq!(records(db).await, 20, "a record per call put through, none for challenges or refusals");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_expired_nonce_is_answered_stale_and_the_retry_succeeds() {
    // Nonces live 1 s; the scenario pauses 2.5 s between challenge and answer.
    let ts = TestServer::start(|c| with_auth(c, auth(&["127.0.0.0/8"], Some(&["MD5"]), 1))).await;
    let (fourteen, _, _) = unique_redirect_number();
    let udp = ts.udp;
    let (code, log) = tokio::task::spawn_blocking(move || Uac::new(udp, "auth_stale_uac.xml", &fourteen).calls(3, 20).timeout("60s").args(&["-au", USER, "-ap", PASSWORD]).run()).await.unwrap();
    assert_eq!(code, 0, "407, 407 stale=true, 302:\n{log}");
    let d = ts.server.engine().digest();
    assert_eq!(d.metrics.stale.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert_eq!(ts.server.engine().metrics().redirected, 3);
    ts.server.shutdown().await;
}

fn param(h: &str, name: &str) -> Option<String> {
    let i = h.find(&format!("{name}="))? + name.len() + 1;
    let rest = &h[i..];
    Some(match rest.strip_prefix('"') {
        Some(q) => q[..q.find('"')?].to_string(),
        None => rest.split([',', ' ']).next()?.to_string(),
    })
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn challenges(r: &Response) -> Vec<String> {
    r.headers().all(&"Proxy-Authenticate".into()).map(|v| String::from_utf8_lossy(v).into_owned()).collect()
}

fn invite(uri: &str, branch: &str, call_id: &str, cseq: u32, port: u16, host: &str, extra: &str) -> String {
    // The host is swapped before the URI goes in: the URI names the server, also on 127.0.0.1.
    request("INVITE", "@URI@", branch, call_id, port)
        .replace("CSeq: 1 INVITE", &format!("CSeq: {cseq} INVITE"))
        .replace("127.0.0.1", host)
        .replace("@URI@", uri)
        .replace("Content-Length: 0\r\n", &format!("{extra}Content-Length: 0\r\n"))
}

async fn client_on(host: &str, server: SocketAddr) -> Client {
    Client { sock: tokio::net::UdpSocket::bind((host, 0)).await.unwrap(), server }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_answer_is_served_a_replayed_answer_is_not_and_other_sources_are_not_asked() {
    // Default algorithms (SHA-256 preferred, MD5 second); the entry covers 127.0.0.2 only.
    let ts = TestServer::start(|c| with_auth(c, auth(&["127.0.0.2/32"], None, 300))).await;
    let (fourteen, _, _) = unique_redirect_number();
    let uri = format!("sip:{fourteen}@{}", ts.udp);
    let trunk = client_on("127.0.0.2", ts.udp).await;
    let port = trunk.port();

    trunk.send(invite(&uri, "z9hG4bK-d1", "digest-1", 1, port, "127.0.0.2", "").as_bytes()).await;
    let r = trunk.recv().await;
    assert_eq!(r.status(), 407);
    let ch = challenges(&r);
    assert_eq!(ch.len(), 2, "{ch:?}");
    assert_eq!(param(&ch[0], "algorithm").as_deref(), Some("SHA-256"), "SHA-256 offered first (RFC 8760)");
    assert_eq!(param(&ch[1], "algorithm").as_deref(), Some("MD5"));
    assert_eq!(param(&ch[0], "realm").as_deref(), Some(REALM));
    let to_tag = String::from_utf8_lossy(r.to().unwrap().param("tag").unwrap().unwrap()).into_owned();
    trunk.send(ack_for("@URI@", "z9hG4bK-d1", "digest-1", port, &to_tag).replace("127.0.0.1", "127.0.0.2").replace("@URI@", &uri).as_bytes()).await;

    let nonce = param(&ch[0], "nonce").unwrap();
    let ha1 = sha256_hex(&format!("{USER}:{REALM}:{PASSWORD}"));
    let ha2 = sha256_hex(&format!("INVITE:{uri}"));
    let response = sha256_hex(&format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    let creds = format!(
        "Proxy-Authorization: Digest username=\"{USER}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"c0ffee\"\r\n"
    );
    trunk.send(invite(&uri, "z9hG4bK-d2", "digest-1", 2, port, "127.0.0.2", &creds).as_bytes()).await;
    let r = trunk.recv().await;
    assert_eq!(r.status(), 302, "a correct SHA-256 answer is served");

    // The same answer captured and sent again as a new call: refused.
    trunk.send(invite(&uri, "z9hG4bK-d3", "digest-2", 1, port, "127.0.0.2", &creds).as_bytes()).await;
    let r = trunk.recv().await;
    assert_eq!(r.status(), 407, "a replayed nonce count is challenged, not served");
    assert!(!challenges(&r)[0].contains("stale=true"), "a replay is not a stale nonce");

    // A trusted source outside the entry's networks is not asked for credentials.
    let other = client_on("127.0.0.1", ts.udp).await;
    let p = other.port();
    other.send(invite(&uri, "z9hG4bK-d4", "digest-3", 1, p, "127.0.0.1", "").as_bytes()).await;
    assert_eq!(other.recv().await.status(), 302);

    let d = ts.server.engine().digest();
    assert_eq!(d.metrics.accepted.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(d.metrics.replayed.load(std::sync::atomic::Ordering::Relaxed), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let db = ts.db_path();
    ts.server.shutdown().await;
    assert_eq!(records(db).await, 2, "two calls put through (the authenticated one and the other source)");
}
