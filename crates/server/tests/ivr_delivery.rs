//! Delivery by REFER after the IVR (RFC 3515): Kapelle is in `redirect` mode, so once the
//! caller on 140113 chose it (RFC 4733 key during the welcome), the platform asks the
//! caller's side to call Kapelle itself. SIPp is the caller: it accepts the REFER and reports
//! the new call answered (the platform hangs up, record `redirected`), refuses it (603), or
//! reports the new call failed (sipfrag 486); the last two fall back to bridging the caller
//! to Kapelle (a SIPp UAS). And an IVR call from a carrier on TCP.

#![allow(
    clippy::await_holding_lock,
    reason = "the serial lock of needs_ivr_peers is held for the whole test on that test's own runtime; waiting for it blocks only a test that has to wait anyway"
)]

mod ivr_support;

use ivr_support::*;
use veertien_server::{Config, Server};

/// Kapelle in redirect mode: delivery after the dialogue is a REFER (`[ivr] transfer`
/// defaults to "refer").
async fn start(kapelle_uri: &str) -> (Server, tempfile::TempDir, std::net::SocketAddr) {
    let (cbs, _) = kapelle();
    let settings = format!("[municipality.{cbs}]\nmode = \"redirect\"\ndestination = \"{kapelle_uri}\"\n");
    start_server(kapelle_uri, Some(&settings)).await
}

fn counters(server: &Server) -> (u64, u64, u64) {
    let m = &server.engine().call_layer().unwrap().metrics;
    let l = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    (l(&m.refer_sent), l(&m.refer_succeeded), l(&m.refer_fell_back))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_accepted_and_answered_ends_our_part_as_redirected() {
    let Some(_one) = needs_ivr_peers() else { return };
    // Nobody listens at Kapelle's address: the platform must not call it itself.
    let kapelle_uri = format!("sip:kapelle@127.0.0.1:{}", free_udp_port());
    let (server, dir, sip) = start(&kapelle_uri).await;
    key_pcap(dir.path());
    let d = dir.path().to_path_buf();
    let (code, out) = tokio::task::spawn_blocking(move || caller(sip, &d, "ivr_uac_refer_accept.xml", 0)).await.unwrap();
    let refer = counters(&server);
    let calls = records(server, dir.path()).await;
    assert_eq!(code, 0, "caller: REFER to Kapelle, NOTIFYs answered, BYE from the platform:\n{out}");
    assert_eq!(refer, (1, 1, 0), "(sent, succeeded, fell back)");
    let call = the_call(&calls);
    assert_eq!(call["outcome"], "redirected", "{call:#}");
    assert_eq!(call["delivery"], "redirect", "{call:#}");
    assert_eq!(call["destination"], kapelle_uri.as_str(), "{call:#}");
    let (cbs, digit) = kapelle();
    assert_eq!(call["municipality_cbs"], cbs.as_str());
    assert_eq!(entries(call, "digit")[0]["key"], digit.to_string(), "{call:#}");
    let steps = call["route_steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "no bridge attempt: {call:#}");
    assert_eq!(steps[0]["label"], "refer");
    assert_eq!(steps[0]["result"], "redirected");
    assert_eq!(steps[0]["notify"], serde_json::json!([100, 200]), "{call:#}");
}

/// A refused or failing transfer: the caller is bridged to Kapelle, which answers; the
/// record has the REFER step first, then the bridge attempt.
async fn falls_back_to_the_bridge(scenario: &'static str, refer_result: &str) {
    let Some(_one) = needs_ivr_peers() else { return };
    let (uas, uas_port) = kapelle_uas("uas_answer.xml");
    let (server, dir, sip) = start(&format!("sip:kapelle@127.0.0.1:{uas_port}")).await;
    key_pcap(dir.path());
    // The caller stays 6 s after its answer to the REFER: bridged and answered meanwhile.
    let ((code, out), (uas_code, uas_out)) = caller_and_centre(sip, dir.path(), scenario, 6_000, &[], uas).await;
    let refer = counters(&server);
    let calls = records(server, dir.path()).await;
    assert_eq!(code, 0, "caller:\n{out}");
    assert_eq!(uas_code, 0, "Kapelle answered the bridged call and got the BYE:\n{uas_out}");
    assert_eq!(refer, (1, 0, 1), "(sent, succeeded, fell back)");
    let call = the_call(&calls);
    assert_eq!(call["outcome"], "answered", "{call:#}");
    assert_eq!(call["delivery"], "bridge", "{call:#}");
    let steps = call["route_steps"].as_array().unwrap();
    assert_eq!((steps[0]["label"].as_str(), steps[0]["result"].as_str()), (Some("refer"), Some(refer_result)), "{call:#}");
    assert_eq!((steps[1]["label"].as_str(), steps[1]["result"].as_str()), (Some("primary"), Some("answered")), "{call:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_refused_falls_back_to_bridging() {
    falls_back_to_the_bridge("ivr_uac_refer_reject.xml", "refused").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_whose_new_call_fails_falls_back_to_bridging() {
    falls_back_to_the_bridge("ivr_uac_refer_notify_fail.xml", "failed").await;
}

/// An IVR call over TCP (SIPp `-t t1`): answered, the key chosen during the welcome, put
/// through to Kapelle (bridge mode here), and the caller's BYE on its connection ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivr_call_from_a_tcp_carrier_is_put_through() {
    let Some(_one) = needs_ivr_peers() else { return };
    let (uas, uas_port) = kapelle_uas("uas_answer.xml");
    let dir = tempfile::tempdir().unwrap();
    let (cbs, _) = kapelle();
    let (text, _) = serve_config(dir.path(), &cbs, &format!("sip:kapelle@127.0.0.1:{uas_port}"), false);
    let config = Config::parse(&text).expect("test config is valid");
    let server = Server::start(config, true, None).await.expect("server starts");
    let tcp = server.tcp_addr().unwrap();
    key_pcap(dir.path());
    let ((code, out), (uas_code, uas_out)) =
        caller_and_centre(tcp, dir.path(), "ivr_uac_play_bye.xml", 14_000, &["-t", "t1"], uas).await;
    let m = server.engine().metrics();
    let calls = records(server, dir.path()).await;
    assert_eq!(code, 0, "caller over TCP:\n{out}");
    assert_eq!(uas_code, 0, "Kapelle's contact centre:\n{uas_out}");
    assert_eq!(m.ivr, 1, "answered by the IVR, not refused 480: {m:?}");
    let call = the_call(&calls);
    assert_eq!(call["outcome"], "answered", "{call:#}");
    assert_eq!(call["delivery"], "bridge", "{call:#}");
    assert_eq!(call["route_steps"][0]["result"], "answered", "{call:#}");
}

/// Keys by SIP INFO (RFC 6086): the caller chooses Kapelle with an INFO during the welcome
/// (200, and the choice is made), then presses a key while Kapelle's contact centre rings:
/// that INFO reaches the bridge machine and must get 200 too (it used to get 403). The
/// caller hangs up 2 s after that answer; the record shows the attempt was already under way
/// by then, so the INFO really arrived while the destination rang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_during_the_ivr_and_while_the_destination_rings_gets_200() {
    let Some(_one) = needs_ivr_peers() else { return };
    let (uas, uas_port) = kapelle_uas("uas_ring_forever.xml");
    let (server, dir, sip) = start_server(&format!("sip:kapelle@127.0.0.1:{uas_port}"), None).await;
    let (_, digit) = kapelle();
    let key = digit.to_string();
    let ((code, out), (uas_code, uas_out)) =
        caller_and_centre(sip, dir.path(), "ivr_uac_info_while_ringing.xml", 12_000, &["-key", "digit", &key], uas).await;
    let calls = records(server, dir.path()).await;
    assert_eq!(code, 0, "caller: both INFOs answered 200, BYE answered:\n{out}");
    assert_eq!(uas_code, 0, "Kapelle rang and got the CANCEL:\n{uas_out}");
    let call = the_call(&calls);
    assert_eq!(entries(call, "digit")[0]["key"], digit.to_string(), "the INFO key chose Kapelle: {call:#}");
    assert_eq!(call["outcome"], "caller_hung_up_while_ringing", "{call:#}");
    let step = &call["route_steps"][0];
    assert_eq!(step["result"], "caller_hung_up", "{call:#}");
    let (started, ended) = (step["started_ms"].as_i64().unwrap(), call["ended_ms"].as_i64().unwrap());
    assert!(started <= ended - 2_000, "the second INFO came while Kapelle rang (attempt started {started}, call ended {ended})");
}
