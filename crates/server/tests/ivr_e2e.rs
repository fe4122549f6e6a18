//! IVR calls in the server (in-process; the same flows through the real binary are in
//! `crates/cli/tests/ivr_e2e.rs`): a SIPp caller on 140113 presses Kapelle's digit as RFC 4733
//! events during the welcome and is put through to a SIPp UAS; when Kapelle is busy the caller
//! hears that it cannot be reached and the platform hangs up.

#![allow(
    clippy::await_holding_lock,
    reason = "the serial lock of needs_ivr_peers is held for the whole test on that test's own runtime; waiting for it blocks only a test that has to wait anyway"
)]

mod ivr_support;

use ivr_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_during_the_welcome_puts_the_caller_through_to_kapelle() {
    let Some(_one) = needs_ivr_peers() else { return };
    let (uas, uas_port) = kapelle_uas("uas_answer.xml");
    let (server, dir, sip) = start_server(&format!("sip:kapelle@127.0.0.1:{uas_port}"), None).await;
    key_pcap(dir.path());
    let ((code, out), (uas_code, uas_out)) = caller_and_centre(sip, dir.path(), "ivr_uac_play_bye.xml", 14_000, &[], uas).await;
    let m = server.engine().metrics();
    let put_through = server.engine().call_layer().unwrap().metrics.ivr_put_through.load(std::sync::atomic::Ordering::Relaxed);
    let calls = records(server, dir.path()).await;
    assert_eq!(code, 0, "caller:\n{out}");
    assert_eq!(uas_code, 0, "Kapelle's contact centre:\n{uas_out}");
    assert_eq!((m.ivr, put_through), (1, 1), "{m:?}");
    let call = the_call(&calls);
    assert_eq!(call["outcome"], "answered", "{call:#}");
    assert_eq!(call["delivery"], "bridge");
    assert_eq!(call["sip_status"], 200);
    let (_, digit) = kapelle();
    assert_eq!(entries(call, "digit")[0]["key"], digit.to_string(), "{call:#}");
    assert_eq!(call["route_steps"][0]["result"], "answered", "{call:#}");
    // Figures for docs/IVR.md (not asserted: wall-clock on a shared box).
    eprintln!(
        "IVR answered after {} ms (INVITE → 200); key → destination ringing after {} ms of the call",
        call["post_dial_delay_ms"],
        call["ringing_ms"].as_i64().unwrap_or(0) - call["received_ms"].as_i64().unwrap_or(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_destination_after_the_choice_is_told_and_the_platform_hangs_up() {
    let Some(_one) = needs_ivr_peers() else { return };
    let (uas, uas_port) = kapelle_uas("uas_busy.xml");
    let (server, dir, sip) = start_server(&format!("sip:kapelle@127.0.0.1:{uas_port}"), None).await;
    key_pcap(dir.path());
    let ((code, out), (uas_code, uas_out)) = caller_and_centre(sip, dir.path(), "ivr_uac_play_wait_bye.xml", 0, &[], uas).await;
    let calls = records(server, dir.path()).await;
    assert_eq!(code, 0, "the platform hung up after telling the caller:\n{out}");
    assert_eq!(uas_code, 0, "{uas_out}");
    let call = the_call(&calls);
    assert_eq!(call["outcome"], "busy", "{call:#}");
    let said: Vec<&str> = call["ivr"]["messages"].as_array().unwrap().iter().filter_map(|m| m["prompt"].as_str()).collect();
    assert_eq!(said, ["unreachable"], "{call:#}");
    assert!(call["ivr"]["messages"][0]["text"].as_str().unwrap().contains("niet bereikbaar"), "{call:#}");
}
