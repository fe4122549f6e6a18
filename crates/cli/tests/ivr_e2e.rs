//! End to end through the real `veertien serve`: a SIPp caller dials 140113 (Goes, Kapelle,
//! Borsele, Noord-Beveland, Reimerswaal share it), the platform answers and asks, and
//! - (a) Kapelle's keypad digit as RFC 4733 events during the welcome (barge-in) puts the
//!   caller through to a SIPp UAS acting as Kapelle's contact centre;
//! - (b) "Kapelle" spoken (espeak-ng → G.711 RTP) does the same when the speech model is
//!   installed (skipped with the reason printed otherwise);
//! - (c) noise and mumbling then silence end at the keypad menu and a goodbye, never a loop:
//!   the platform hangs up by itself.
//!
//! Each test reads the call record with `veertien calls --json`. The caller's audio is a pcap
//! this test writes (SIPp `play_pcap_audio`); scenarios are in `crates/server/tests/sipp/`.
//! Loopback only; every SIPp run and the server have time limits.

#[path = "../../server/tests/ivr_support/mod.rs"]
mod ivr_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ivr_support::*;

// ---- the platform and the peers ---------------------------------------------------------

struct Serve {
    child: Child,
    dir: tempfile::TempDir,
    config: PathBuf,
    sip: SocketAddr,
    log: PathBuf,
}

impl Serve {
    /// `veertien serve` on free loopback ports; Kapelle's destination is `kapelle_uri`.
    fn start(kapelle_cbs: &str, kapelle_uri: &str, speech: bool) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let (text, sip) = serve_config(dir.path(), kapelle_cbs, kapelle_uri, speech);
        let config = dir.path().join("veertien.toml");
        std::fs::write(&config, text).unwrap();
        let log = dir.path().join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_veertien"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info,veertien_server=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("veertien serve starts");
        let mut s = Serve { child, dir, config, sip, log };
        let until = Instant::now() + Duration::from_secs(60);
        while !s.log_text().contains("SIP service started") {
            if let Some(st) = s.child.try_wait().unwrap() {
                panic!("veertien serve exited ({st}):\n{}", s.log_text());
            }
            assert!(Instant::now() < until, "serve did not start:\n{}", s.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// SIGTERM, wait for the clean stop, then the records as `veertien calls --json` prints them.
    fn stop_and_calls(mut self) -> (Vec<serde_json::Value>, String) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let until = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let out = Command::new(env!("CARGO_BIN_EXE_veertien"))
            .args(["calls", "--json", "--config"])
            .arg(&self.config)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // One JSON object per line.
        let calls: Vec<serde_json::Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("veertien calls --json: {e}\n{l}\n{}", String::from_utf8_lossy(&out.stderr))))
            .collect();
        (calls, self.log_text())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one call where the caller's audio should lead to Kapelle; checks both SIPp peers and the
/// record.
fn put_through_to_kapelle(pcap: Rtp, speech: bool) -> serde_json::Value {
    let (cbs, _) = kapelle();
    let (uas, uas_port) = kapelle_uas("uas_answer.xml");
    let serve = Serve::start(&cbs, &format!("sip:kapelle@127.0.0.1:{uas_port}"), speech);
    if speech {
        assert!(serve.wait_log("speech recogniser loaded", Duration::from_secs(120)), "model loads:\n{}", tail(&serve.log_text(), 30));
    }
    pcap.write(&serve.dir.path().join("caller.pcap"));
    // The dialogue (welcome, choice, "even geduld…"), ringing and a few seconds connected.
    let (code, out) = caller(serve.sip, serve.dir.path(), "ivr_uac_play_bye.xml", 16_000);
    let (uas_code, uas_out) = finish(uas, Duration::from_secs(20));
    let (calls, log) = serve.stop_and_calls();
    assert_eq!(code, 0, "the caller's SIPp run succeeds:\n{out}\n--- serve log:\n{}", tail(&log, 60));
    assert_eq!(uas_code, 0, "Kapelle's contact centre got the call and its BYE:\n{uas_out}\n--- serve log:\n{}", tail(&log, 60));
    let call = the_call(&calls).clone();
    assert_eq!(call["outcome"], "answered", "{call:#}");
    assert_eq!(call["municipality_cbs"], cbs.as_str(), "{call:#}");
    assert_eq!(call["delivery"], "bridge", "{call:#}");
    assert!(call["destination"].as_str().unwrap_or("").contains(&format!(":{uas_port}")), "{call:#}");
    assert_eq!(call["ivr"]["outcome"]["outcome"], "deliver", "{call:#}");
    assert!(call["answered_ms"].as_i64().is_some() && call["ringing_ms"].as_i64().is_some(), "{call:#}");
    call
}

#[test]
fn keypad_digit_by_rfc4733_during_the_welcome_reaches_kapelle() {
    let Some(_one) = needs_ivr_peers() else { return };
    let (_, digit) = kapelle();
    let mut rtp = Rtp::new();
    // 1.2 s into the call the welcome is still playing: the key barges in.
    rtp.silence(1200);
    rtp.key(digit);
    rtp.silence(1000);
    let call = put_through_to_kapelle(rtp, false);
    let digits = entries(&call, "digit");
    assert_eq!(digits.len(), 1, "{call:#}");
    assert_eq!(digits[0]["key"], digit.to_string());
    assert!(!entries(&call, "barge_in").is_empty(), "the key cut the welcome prompt: {call:#}");
    assert_eq!(call["ivr"]["speech"], false);
    assert!(call["ivr"].get("recognised_first_time").is_none(), "no name was spoken: {call:#}");
}

#[test]
fn kapelle_spoken_reaches_kapelle_when_the_model_is_installed() {
    let Some(_one) = needs_ivr_peers() else { return };
    if !speech_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut rtp = Rtp::new();
    // Spoken during the question (speech barge-in), then quiet so the utterance ends.
    rtp.silence(2500);
    rtp.ulaw(&speak_ulaw(tmp.path(), "Kapelle", "nl"));
    rtp.silence(2500);
    let call = put_through_to_kapelle(rtp, true);
    let heard = entries(&call, "heard");
    assert!(!heard.is_empty(), "the recogniser heard something: {call:#}");
    assert_eq!(call["ivr"]["speech"], true);
    assert!(entries(&call, "recognised").iter().all(|r| r["latency_ms"].as_u64().is_some()), "{call:#}");
}

#[test]
fn silence_and_garbage_end_at_the_keypad_menu_and_a_goodbye() {
    let Some(_one) = needs_ivr_peers() else { return };
    let (cbs, _) = kapelle();
    // No destination is ever called: the UAS address is never used.
    let serve = Serve::start(&cbs, "sip:kapelle@127.0.0.1:9", false);
    let mut rtp = Rtp::new();
    rtp.silence(1500);
    rtp.ulaw(&noise_ulaw(1200));
    rtp.silence(600);
    rtp.ulaw(&noise_ulaw(700));
    // Then silence, but still RTP: a caller without media would end as a hang-up (media
    // timeout), which is not what this test is about.
    rtp.silence(70_000);
    rtp.write(&serve.dir.path().join("caller.pcap"));
    let started = Instant::now();
    let (code, out) = caller(serve.sip, serve.dir.path(), "ivr_uac_play_wait_bye.xml", 0);
    let took = started.elapsed();
    let (calls, log) = serve.stop_and_calls();
    assert_eq!(code, 0, "the platform hung up by itself:\n{out}\n--- serve log:\n{}", tail(&log, 60));
    let call = the_call(&calls);
    let prompts: Vec<String> = entries(call, "prompt").iter().map(|p| p["ids"].to_string()).collect();
    assert!(prompts.iter().any(|p| p.contains("menu")), "the keypad menu was offered: {prompts:?}\n{call:#}");
    assert!(prompts.len() <= 8, "no loop: {prompts:?}");
    assert_eq!(call["ivr"]["outcome"]["outcome"], "announce", "{call:#}");
    assert_eq!(call["ivr"]["outcome"]["reason"]["kind"], "no_choice", "ends with the goodbye: {call:#}");
    assert_eq!(call["outcome"], "announcement", "{call:#}");
    assert!(entries(call, "miss").len() >= 2, "{call:#}");
    eprintln!("silence/garbage call ended by the platform after {took:?}");
}
