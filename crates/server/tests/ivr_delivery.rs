//! Delivery by REFER after the IVR (RFC 3515): Kapelle is in `redirect` mode, so once the
//! caller on 140113 chose it (RFC 4733 key during the welcome), the platform asks the
//! caller's side to call Kapelle itself. SIPp is the caller: it accepts the REFER and reports
//! the new call answered (the platform hangs up, record `redirected`), refuses it (603), or
//! reports the new call failed (sipfrag 486); the last two fall back to bridging the caller
//! to Kapelle (a SIPp UAS). And an IVR call from a carrier on TCP.

mod ivr_support;

use std::time::Duration;

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
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !have("sipp") || !have("espeak-ng") {
        eprintln!("skipped: needs sipp and espeak-ng");
        return;
    }
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
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !have("sipp") || !have("espeak-ng") {
        eprintln!("skipped: needs sipp and espeak-ng");
        return;
    }
    let (uas, uas_port) = kapelle_uas("uas_answer.xml");
    let (server, dir, sip) = start(&format!("sip:kapelle@127.0.0.1:{uas_port}")).await;
    key_pcap(dir.path());
    let d = dir.path().to_path_buf();
    // The caller stays 6 s after its answer to the REFER: bridged and answered meanwhile.
    let (code, out) = tokio::task::spawn_blocking(move || caller(sip, &d, scenario, 6_000)).await.unwrap();
    let (uas_code, uas_out) = tokio::task::spawn_blocking(move || finish(uas, Duration::from_secs(20))).await.unwrap();
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
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !have("sipp") || !have("espeak-ng") {
        eprintln!("skipped: needs sipp and espeak-ng");
        return;
    }
    let (uas, uas_port) = kapelle_uas("uas_answer.xml");
    let dir = tempfile::tempdir().unwrap();
    let (cbs, _) = kapelle();
    let (text, _) = serve_config(dir.path(), &cbs, &format!("sip:kapelle@127.0.0.1:{uas_port}"), false);
    let config = Config::parse(&text).expect("test config is valid");
    let server = Server::start(config, true, None).await.expect("server starts");
    let tcp = server.tcp_addr().unwrap();
    key_pcap(dir.path());
    let d = dir.path().to_path_buf();
    let (code, out) = tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("sipp")
            .current_dir(&d)
            .arg(tcp.to_string())
            .args(["-t", "t1", "-sf", scenario("ivr_uac_play_bye.xml").to_str().unwrap()])
            .args(["-s", "140113", "-i", "127.0.0.1", "-p", &free_udp_port().to_string(), "-mp", &free_media_port().to_string()])
            .args(["-d", "14000", "-m", "1", "-timeout", "150s", "-timeout_error", "-nostdin"])
            .output()
            .expect("sipp runs (Debian package sip-tester)");
        let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), tail(&text, 40))
    })
    .await
    .unwrap();
    let (uas_code, uas_out) = tokio::task::spawn_blocking(move || finish(uas, Duration::from_secs(20))).await.unwrap();
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
