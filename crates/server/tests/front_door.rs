//! The SIP front door in-process on free loopback ports, driven by a raw UDP/TCP client:
//! redirect with a call record, 404/484/480, OPTIONS, CANCEL, retransmissions, untrusted
//! peers, overload shedding, the RFC 4475 torture messages, clean shutdown.

mod support;

use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use veertien_sip::Message;
use veertien_store::{CallFilter, Outcome, Store};

#[tokio::test]
async fn redirect_to_the_municipality_with_a_record_of_the_call() {
    let ts = TestServer::start(|_| {}).await;
    let c = Client::new(ts.udp).await;
    let (fourteen, _, destination) = unique_redirect_number();
    let uri = format!("sip:{fourteen}@127.0.0.1");
    c.send(request("INVITE", &uri, "z9hG4bK-r1", "redirect-1", c.port()).as_bytes()).await;
    let r = c.recv().await;
    assert_eq!(r.status(), 302, "{r}");
    let contact = header(&r, "Contact").unwrap();
    assert_eq!(contact, format!("<{destination}>"));
    assert!(header(&r, "Diversion").unwrap().contains(&fourteen));
    c.send(ack_for(&uri, "z9hG4bK-r1", "redirect-1", c.port(), &to_tag(&r)).as_bytes()).await;
    // No 302 retransmission after the ACK.
    assert!(c.recv_within(Duration::from_millis(700)).await.is_none());

    let db = ts.db_path();
    let report = ts.server.shutdown().await;
    assert_eq!(report.records.as_ref().unwrap().written, 1);
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    let calls = store.list_calls(&CallFilter::default()).await.unwrap();
    assert_eq!(calls.len(), 1);
    let rec = &calls[0];
    assert_eq!(rec.sip_call_id, "redirect-1");
    assert_eq!(rec.outcome, Some(Outcome::Redirected));
    assert_eq!(rec.sip_status, Some(302));
    assert_eq!(rec.normalised.as_deref(), Some(fourteen.as_str()));
    assert_eq!(rec.destination.as_deref(), Some(destination.as_str()));
    assert_eq!(rec.caller, "0612345678");
    assert!(rec.municipality_cbs.is_some());
    assert!(rec.decided_ms.is_some() && rec.ended_ms.is_some() && rec.post_dial_delay_ms.is_some());
}

#[tokio::test]
async fn unknown_malformed_and_shared_numbers_get_the_right_refusal() {
    // Without the IVR a shared area code is refused naming the reason (with it: ivr_e2e).
    let ts = TestServer::start(|c| c.ivr.enabled = false).await;
    let c = Client::new(ts.udp).await;
    assert!(veertien_core::Plan::builtin().area_code("099").is_none());
    let cases = [
        ("sip:14099@127.0.0.1", 404, "does not exist"),
        ("sip:1402@127.0.0.1", 484, "Address Incomplete"),
        ("sip:0201234567@127.0.0.1", 404, "not a 14+ number"),
        (&*format!("sip:{}@127.0.0.1", shared_number()), 480, "selection"),
    ];
    for (i, (uri, status, phrase)) in cases.iter().enumerate() {
        c.send(request("INVITE", uri, &format!("z9hG4bK-n{i}"), &format!("n{i}"), c.port()).as_bytes()).await;
        let r = c.recv().await;
        assert_eq!(r.status(), *status, "{uri}: {r}");
        let reason = String::from_utf8_lossy(r.reason()).into_owned();
        assert!(reason.contains(phrase), "{uri}: reason '{reason}'");
    }
    let report = ts.server.shutdown().await;
    assert_eq!(report.records.unwrap().written, 4, "a record for every refused call too");
}

#[tokio::test]
async fn options_cancel_bye_and_unknown_methods() {
    let ts = TestServer::start(|_| {}).await;
    let c = Client::new(ts.udp).await;
    c.send(request("OPTIONS", "sip:127.0.0.1", "z9hG4bK-o1", "o1", c.port()).as_bytes()).await;
    let r = c.recv().await;
    assert_eq!(r.status(), 200);
    let allow = header(&r, "Allow").unwrap();
    for m in ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"] {
        assert!(allow.contains(m), "Allow: {allow}");
    }
    assert_eq!(header(&r, "Accept").as_deref(), Some("application/sdp"));

    // CANCEL of an INVITE already answered: 200 for the CANCEL, nothing else (RFC 3261 9.2).
    let (fourteen, _, _) = unique_redirect_number();
    let uri = format!("sip:{fourteen}@127.0.0.1");
    c.send(request("INVITE", &uri, "z9hG4bK-c1", "c1", c.port()).as_bytes()).await;
    assert_eq!(c.recv().await.status(), 302);
    c.send(request("CANCEL", &uri, "z9hG4bK-c1", "c1", c.port()).as_bytes()).await;
    let r = c.recv().await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.cseq().unwrap().method.as_str(), "CANCEL");
    // CANCEL matching no transaction: 481.
    c.send(request("CANCEL", &uri, "z9hG4bK-nothing", "c2", c.port()).as_bytes()).await;
    assert_eq!(c.recv().await.status(), 481);
    // BYE/INFO outside a dialog: 481. REGISTER: 405 with Allow. Unknown method: 501.
    c.send(request("BYE", &uri, "z9hG4bK-b1", "b1", c.port()).as_bytes()).await;
    assert_eq!(c.recv().await.status(), 481);
    c.send(request("INFO", &uri, "z9hG4bK-i1", "i1", c.port()).as_bytes()).await;
    assert_eq!(c.recv().await.status(), 481);
    c.send(request("REGISTER", "sip:127.0.0.1", "z9hG4bK-g1", "g1", c.port()).as_bytes()).await;
    let r = c.recv().await;
    assert_eq!(r.status(), 405);
    assert!(header(&r, "Allow").is_some());
    c.send(request("FOOBAR", "sip:127.0.0.1", "z9hG4bK-f1", "f1", c.port()).as_bytes()).await;
    assert_eq!(c.recv().await.status(), 501);
    ts.server.shutdown().await;
}

#[tokio::test]
async fn retransmitted_invite_is_absorbed_and_302_is_retransmitted_until_ack() {
    let ts = TestServer::start(|_| {}).await;
    let c = Client::new(ts.udp).await;
    let (fourteen, _, _) = unique_redirect_number();
    let uri = format!("sip:{fourteen}@127.0.0.1");
    let inv = request("INVITE", &uri, "z9hG4bK-rt", "rt-1", c.port());
    c.send(inv.as_bytes()).await;
    let first = c.recv_raw(Duration::from_secs(5)).await.unwrap();
    c.send(inv.as_bytes()).await;
    let again = c.recv_raw(Duration::from_secs(5)).await.unwrap();
    assert_eq!(first, again, "a retransmitted INVITE gets the identical response");
    // No ACK yet: Timer G resends the 302 after T1 (500 ms).
    let resent = c.recv_raw(Duration::from_secs(2)).await.expect("302 retransmitted by Timer G");
    assert_eq!(resent, first);
    let Ok(Message::Response(r)) = Message::parse(&first) else { panic!() };
    c.send(ack_for(&uri, "z9hG4bK-rt", "rt-1", c.port(), &to_tag(&r)).as_bytes()).await;
    // Drain anything in flight, then silence.
    while c.recv_raw(Duration::from_millis(1200)).await.is_some() {}
    let m = ts.server.engine().metrics();
    assert_eq!(m.invites, 1);
    assert_eq!(m.retransmissions, 1);
    let report = ts.server.shutdown().await;
    assert_eq!(report.records.unwrap().written, 1, "one call, one record");
}

#[tokio::test]
async fn untrusted_peer_gets_403_or_nothing() {
    let ts = TestServer::start(|c| c.sip.trusted_peers = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let c = Client::new(ts.udp).await;
    let (fourteen, _, _) = unique_redirect_number();
    let uri = format!("sip:{fourteen}@127.0.0.1");
    c.send(request("INVITE", &uri, "z9hG4bK-u1", "u1", c.port()).as_bytes()).await;
    let r = c.recv().await;
    assert_eq!(r.status(), 403);
    ts.server.shutdown().await;

    let ts = TestServer::start(|c| {
        c.sip.trusted_peers = vec!["10.0.0.0/8".parse().unwrap()];
        c.sip.untrusted = veertien_server::config::UntrustedPolicy::Drop;
    })
    .await;
    let c = Client::new(ts.udp).await;
    c.send(request("INVITE", &uri, "z9hG4bK-u2", "u2", c.port()).as_bytes()).await;
    assert!(c.recv_within(Duration::from_millis(500)).await.is_none());
    assert_eq!(ts.server.engine().metrics().untrusted, 1);
    let report = ts.server.shutdown().await;
    assert_eq!(report.records.unwrap().submitted, 0, "untrusted requests are not calls");
}

#[tokio::test]
async fn full_transaction_table_sheds_new_invites_with_503_retry_after() {
    let ts = TestServer::start(|c| {
        c.sip.transaction_table_size = 16;
        c.sip.retry_after_secs = 7;
    })
    .await;
    let c = Client::new(ts.udp).await;
    let (fourteen, _, _) = unique_redirect_number();
    let uri = format!("sip:{fourteen}@127.0.0.1");
    let mut statuses = Vec::new();
    // Never ACK: every answered INVITE holds its slot (Timer H), so the table fills up.
    for i in 0..24 {
        c.send(request("INVITE", &uri, &format!("z9hG4bK-ov{i}"), &format!("ov{i}"), c.port()).as_bytes()).await;
        loop {
            let r = c.recv().await;
            if r.call_id().map(|v| v.as_ref() == format!("ov{i}").as_bytes()).unwrap_or(false) {
                if r.status() == 503 {
                    assert_eq!(header(&r, "Retry-After").as_deref(), Some("7"));
                }
                statuses.push(r.status());
                break;
            }
        }
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 302).count(), 16, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 503).count(), 8, "{statuses:?}");
    assert_eq!(ts.server.engine().metrics().shed, 8);
    ts.server.shutdown().await;
}

#[tokio::test]
async fn rate_limit_per_source_drops_a_flood() {
    let ts = TestServer::start(|c| {
        c.sip.rate_limit_per_source = 5;
        c.sip.rate_burst = 5;
    })
    .await;
    let c = Client::new(ts.udp).await;
    for i in 0..50 {
        c.send(request("OPTIONS", "sip:127.0.0.1", &format!("z9hG4bK-fl{i}"), "fl", c.port()).as_bytes()).await;
    }
    let mut answered = 0;
    while c.recv_within(Duration::from_millis(300)).await.is_some() {
        answered += 1;
    }
    assert!((5..=8).contains(&answered), "{answered} of 50 answered");
    assert!(ts.server.engine().metrics().rate_limited >= 42);
    ts.server.shutdown().await;
}

#[tokio::test]
async fn draining_server_refuses_new_calls_with_503() {
    let ts = TestServer::start(|_| {}).await;
    let c = Client::new(ts.udp).await;
    ts.server.engine().start_draining();
    let (fourteen, _, _) = unique_redirect_number();
    c.send(request("INVITE", &format!("sip:{fourteen}@127.0.0.1"), "z9hG4bK-d1", "d1", c.port()).as_bytes()).await;
    let r = c.recv().await;
    assert_eq!(r.status(), 503);
    assert!(header(&r, "Retry-After").is_some());
    ts.server.shutdown().await;
}

#[tokio::test]
async fn tcp_redirect_and_malformed_stream_closes() {
    let ts = TestServer::start(|_| {}).await;
    let (fourteen, _, destination) = unique_redirect_number();
    let mut s = tokio::net::TcpStream::connect(ts.tcp).await.unwrap();
    let port = s.local_addr().unwrap().port();
    let inv = request("INVITE", &format!("sip:{fourteen}@127.0.0.1"), "z9hG4bK-t1", "t1", port).replace("/UDP", "/TCP");
    s.write_all(inv.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
    let Ok(Message::Response(r)) = Message::parse(&buf[..n]) else { panic!("{:?}", String::from_utf8_lossy(&buf[..n])) };
    assert_eq!(r.status(), 302);
    assert_eq!(header(&r, "Contact").unwrap(), format!("<{destination}>"));
    s.write_all(b"NONSENSE\r\n\r\n").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "connection closed after an unframeable message");
    ts.server.shutdown().await;
}

/// Expected answer per RFC 4475 message at the front door (see crates/sip/tests/rfc4475.rs for
/// the parser-level table). `None`: no answer must be sent (responses, and requests whose
/// headers are too broken to address an answer).
fn expected(name: &str) -> Option<u16> {
    Some(match name {
        // Valid INVITEs reach routing: their Request-URIs are not 14+ numbers → 404.
        "wsinv" | "esc01" | "longreq" | "baddate" | "inv2543" => 404,
        // Valid OPTIONS.
        "lwsdisp" | "semiuri" | "transports" | "badbranch" => 200,
        "intmeth" | "esc02" => 501,
        "escnull" | "dblreq" | "mpart01" | "unksm2" | "regaut01" | "cparam01" | "cparam02" | "regescrt" => 405,
        "unreason" | "noreason" | "scalarlg" | "bigcode" | "bcast" => return None,
        "badinv01" | "clerr" | "ncl" | "scalar02" | "quotbal" | "ltgtruri" | "lwsruri" | "lwsstart" | "trws" | "escruri"
        | "regbadct" | "badaspec" | "baddn" | "mismatch01" | "mismatch02" | "insuf" | "multi01" | "mcl01" => 400,
        // No SIP-Version and no Via: there is nowhere to send a 400.
        "test" => return None,
        "badvers" => 505,
        "unkscm" | "novelsc" => 416,
        "bext01" => 420,
        "invut" => 415,
        "sdp01" => 406,
        // OPTIONS with Max-Forwards 0 is addressed to us: a UAS may answer it (RFC 4475 3.3.11).
        "zeromf" => 200,
        other => panic!("no expectation for {other}"),
    })
}

fn call_id_of(msg: &[u8]) -> String {
    String::from_utf8_lossy(msg)
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            let name = name.trim();
            (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i")).then(|| value.trim().to_string())
        })
        .unwrap_or_default()
}

fn torture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sip/rfc4475")
}

fn torture_names() -> Vec<String> {
    let index = std::fs::read_to_string(torture_dir().join("INDEX.tsv")).unwrap();
    let names: Vec<String> =
        index.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split('\t').next()).map(str::to_owned).collect();
    assert_eq!(names.len(), 50);
    names
}

async fn torture_server() -> veertien_server::Server {
    let mut config = test_config(std::path::Path::new("/nonexistent"));
    // The torture messages carry made-up Via hosts; answer to the packet source instead.
    config.sip.respond_to_source = true;
    config.sip.tcp = None;
    // Nobody ACKs the answers here; do not wait for it at shutdown.
    config.shutdown.grace_secs = 0;
    veertien_server::Server::start(config, false, None).await.unwrap()
}

/// Each message on a fresh server: several torture messages reuse the same branch and sent-by
/// (e.g. cparam01/cparam02), which one server rightly treats as a retransmission.
#[tokio::test]
async fn rfc4475_torture_messages_over_udp_get_the_expected_answer() {
    let mut failures = Vec::new();
    for name in torture_names() {
        let server = torture_server().await;
        let c = Client::new(server.udp_addr().unwrap()).await;
        let bytes = std::fs::read(torture_dir().join(format!("{name}.dat"))).unwrap();
        c.send(&bytes).await;
        let want = expected(&name);
        let call_id = call_id_of(&bytes);
        let wait = Duration::from_millis(if want.is_some() { 3000 } else { 300 });
        let got = c.recv_raw(wait).await;
        // Parsed by hand: a 400 to a message with a broken Via rightly echoes that Via, which
        // a strict parser refuses.
        let text = got.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        let status_line = text.as_deref().and_then(|t| t.lines().next()).unwrap_or("");
        let got_status = status_line.strip_prefix("SIP/2.0 ").and_then(|r| r[..3].parse::<u16>().ok());
        if got_status != want {
            failures.push(format!("{name}: expected {want:?}, got {got_status:?} {text:?}"));
        }
        if let Some(raw) = &got {
            assert_eq!(call_id_of(raw), call_id, "{name}: the answer belongs to the request");
        }
        if got_status == Some(400) {
            let reason = &status_line["SIP/2.0 400 ".len()..];
            assert!(reason.starts_with("Bad Request (") && reason.len() > 14, "{name}: 400 must name the fault: {reason}");
        }
        server.shutdown().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// All 50 back to back on one server: it survives and keeps answering.
#[tokio::test]
async fn server_survives_all_torture_messages() {
    let server = torture_server().await;
    let c = Client::new(server.udp_addr().unwrap()).await;
    for _round in 0..3 {
        for name in torture_names() {
            c.send(&std::fs::read(torture_dir().join(format!("{name}.dat"))).unwrap()).await;
        }
    }
    while c.recv_raw(Duration::from_millis(300)).await.is_some() {}
    c.send(request("OPTIONS", "sip:127.0.0.1", "z9hG4bK-alive", "alive", c.port()).as_bytes()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let raw = c.recv_raw(deadline.saturating_duration_since(tokio::time::Instant::now())).await.expect("alive");
        if call_id_of(&raw) == "alive" {
            assert!(raw.starts_with(b"SIP/2.0 200 "));
            break;
        }
    }
    assert!(server.engine().metrics().received >= 150);
    server.shutdown().await;
}

/// A stray ACK that does not parse (no transaction, broken Request-URI or version) is
/// dropped and counted; an OPTIONS with the same fault is answered 400.
#[tokio::test]
async fn stray_malformed_acks_get_no_answer() {
    let ts = TestServer::start(|_| {}).await;
    let c = Client::new(ts.udp).await;
    let good = ack_for("sip:14020@127.0.0.1", "z9hG4bK-sa", "stray-ack", c.port(), "x");
    for bad_line in ["ACK  SIP/2.0", "ACK sip: SIP/2.0", "ACK sip:14020@127.0.0.1 SIP/3.0"] {
        c.send(good.replacen("ACK sip:14020@127.0.0.1 SIP/2.0", bad_line, 1).as_bytes()).await;
    }
    assert!(c.recv_within(Duration::from_millis(500)).await.is_none(), "an ACK is never answered");
    // The third parses (the version is a validation fault, 505 for other methods) and is
    // absorbed like any ACK matching no transaction; the first two do not parse.
    assert_eq!(ts.server.engine().metrics().malformed_acks, 2);
    let opt = request("OPTIONS", "sip:127.0.0.1", "z9hG4bK-sa2", "stray-opt", c.port()).replacen("OPTIONS sip:127.0.0.1 SIP/2.0", "OPTIONS sip: SIP/2.0", 1);
    c.send(opt.as_bytes()).await;
    assert_eq!(c.recv().await.status(), 400);
    ts.server.shutdown().await;
}
