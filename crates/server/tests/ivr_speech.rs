//! A name said on 140113 reaches the municipality said, through `veertien serve` (in-process)
//! with the real speech model and a SIPp caller speaking as the load test's speech callers do
//! (`scripts/load/run.sh --ivr-speech`, `scripts/bench/ivr_pcap.py --say`): 2.5 s of digital
//! silence while the welcome plays, the name (espeak-ng, Dutch, telephone band, G.711), quiet.
//! The name is the very rendering of the load run that went wrong
//! (`crates/speech/tests/data/reimerswaal_load.ul`): sox dithers, so a fresh rendering hits the
//! old fault only now and then (1 of 12 in a sample), this one every time.
//!
//! On a digitally silent line the VAD's 300 ms pre-roll is digital silence, and scored from its
//! first sample the load test's "Reimerswaal" was put straight through to Goes (0.993) while
//! `veertien speech eval` on the name alone said Reimerswaal (1.00): the recogniser now scores
//! from a fixed lead before the first loud frame (`RecognizerConfig::start_lead_ms`).
//!
//! Skipped, with the reason printed, without sipp/espeak-ng/sox or the speech model
//! (`veertien model install`).

#![allow(
    clippy::await_holding_lock,
    reason = "the serial lock of needs_ivr_peers is held for the whole test on that test's own runtime; waiting for it blocks only a test that has to wait anyway"
)]

mod ivr_support;

use std::time::Duration;

use ivr_support::*;

const CALLER: &str = "0690000005";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reimerswaal_said_on_a_silent_line_reaches_reimerswaal_not_goes() {
    let Some(_one) = needs_ivr_peers() else { return };
    if !speech_ready() {
        return;
    }
    let (reimerswaal, _) = on_0113("Reimerswaal");
    let dir = tempfile::tempdir().unwrap();
    let (uas, uas_port) = uas("uas_answer.xml", 1);
    // Goes is reachable too, so a misrecognition shows as a call put through to Goes.
    let (server, sip) = serve_with_speech(dir.path(), uas_port, &["Reimerswaal", "Goes"]).await;
    let name = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../speech/tests/data/reimerswaal_load.ul")).unwrap();
    let mut audio = Rtp::new();
    audio.silence(2500);
    audio.ulaw(&name);
    // A caller asked "Bedoelt u …?" confirms with key 1 (as the load test's caller says "ja"),
    // so only the recogniser decides where the call goes; put through at once, the key goes
    // to the contact centre.
    audio.silence(3000);
    audio.key('1');
    audio.silence(30_000);
    let d = dir.path().to_path_buf();
    let (code, out) = tokio::task::spawn_blocking(move || caller_from(sip, &d, CALLER, &audio, 14_000)).await.unwrap();
    assert_eq!(code, 0, "caller:\n{out}");
    let (code, out) = tokio::task::spawn_blocking(move || finish(uas, Duration::from_secs(30))).await.unwrap();
    let calls = records(server, dir.path()).await;
    assert_eq!(code, 0, "the contact centre:\n{out}");
    let call = the_call(&calls);
    let heard = entries(call, "recognised");
    assert_eq!(heard.first().map(|r| &r["best"]), Some(&serde_json::json!("Reimerswaal")), "{call:#}");
    assert_eq!(
        (call["outcome"].as_str(), call["municipality_cbs"].as_str()),
        (Some("answered"), Some(reimerswaal.as_str())),
        "{call:#}"
    );
}
