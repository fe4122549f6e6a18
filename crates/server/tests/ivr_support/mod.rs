//! Helpers of the IVR end-to-end tests (this crate's `ivr_e2e.rs` and the CLI's, which
//! runs the real binary): the caller's audio as a pcap SIPp replays (RFC 4733 keys, G.711
//! speech from espeak-ng, noise), SIPp as caller and as Kapelle's contact centre, and the
//! call record's dialogue.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use veertien_core::{CallInfo, Decision, Plan, Settings, decide};

#[path = "../sipp_support/mod.rs"]
mod sipp_support;
pub use sipp_support::*;

/// The tests share two cores with the server and Whisper: one at a time.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Every IVR test's start: the serial lock, held for the whole test, or `None` with the
/// reason printed when SIPp (the caller and the contact centre) or espeak-ng (the prompts)
/// is missing, so the test is skipped rather than failed on a machine without them.
pub fn needs_ivr_peers() -> Option<MutexGuard<'static, ()>> {
    let one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !have("sipp") || !have("espeak-ng") {
        eprintln!("skipped: needs sipp and espeak-ng");
        return None;
    }
    Some(one)
}

/// For the tests that speak to the real recogniser, on top of [`needs_ivr_peers`]: sox (the
/// telephone band of the caller's speech) and the installed speech model; false, with the
/// reason printed, when either is missing.
pub fn speech_ready() -> bool {
    if !have("sox") {
        eprintln!("skipped: needs sox");
        return false;
    }
    let model = veertien_speech::default_model_dir();
    if !veertien_speech::is_installed(&model) {
        eprintln!("skipped: speech model not installed in {} (veertien model install)", model.display());
        return false;
    }
    true
}

/// Kapelle's CBS code and its keypad digit on 0113, from the routing decision itself.
pub fn kapelle() -> (String, char) {
    on_0113("Kapelle")
}

/// A municipality on 0113: its CBS code and keypad digit, from the routing decision itself.
pub fn on_0113(name: &str) -> (String, char) {
    let plan = Plan::builtin();
    let d = decide(&CallInfo { dialled: "140113", caller: None }, plan, &Settings::defaults(plan), jiff::Timestamp::now());
    let Decision::Ask { candidates, .. } = d else { panic!("140113 is a shared area code: {d:?}") };
    let c = candidates.iter().find(|c| c.municipality.name == name).unwrap_or_else(|| panic!("{name} on 0113"));
    let digit = c.digit.unwrap_or_else(|| panic!("{name} is in the keypad menu"));
    (c.municipality.cbs.clone(), char::from_digit(u32::from(digit), 10).unwrap())
}

// ---- the caller's audio as a pcap ------------------------------------------------------

pub struct Rtp {
    seq: u16,
    ts: u32,
    /// Microseconds since the start of the capture.
    at_us: u64,
    packets: Vec<(u64, Vec<u8>)>,
}

impl Rtp {
    pub fn new() -> Rtp {
        Rtp { seq: 1000, ts: 16_000, at_us: 0, packets: Vec::new() }
    }

    fn packet(&mut self, pt: u8, marker: bool, ts: u32, payload: &[u8]) {
        let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(payload);
        self.packets.push((self.at_us, p));
        self.seq = self.seq.wrapping_add(1);
    }

    /// G.711 u-law audio, 20 ms per packet.
    pub fn ulaw(&mut self, samples: &[u8]) {
        for chunk in samples.chunks(160) {
            let mut c = chunk.to_vec();
            c.resize(160, 0xFF);
            let ts = self.ts;
            self.packet(0, false, ts, &c);
            self.ts = self.ts.wrapping_add(160);
            self.at_us += 20_000;
        }
    }

    pub fn silence(&mut self, ms: u32) {
        self.ulaw(&vec![0xFFu8; (ms * 8) as usize]);
    }

    /// One key as RFC 4733 events (PT 101): 100 ms, three end packets.
    pub fn key(&mut self, key: char) {
        let code = match key {
            '0'..='9' => key as u8 - b'0',
            '*' => 10,
            '#' => 11,
            _ => panic!("key {key}"),
        };
        let ts = self.ts;
        for i in 1..=5u16 {
            let dur = i * 160;
            self.packet(101, i == 1, ts, &[code, 10, (dur >> 8) as u8, dur as u8]);
            self.at_us += 20_000;
        }
        for _ in 0..3 {
            self.packet(101, false, ts, &[code, 0x80 | 10, 0x03, 0x20]);
        }
        self.ts = self.ts.wrapping_add(800);
    }

    /// Writes a pcap (Ethernet/IPv4/UDP) SIPp can replay.
    pub fn write(&self, path: &Path) {
        let mut f = std::fs::File::create(path).unwrap();
        let mut h = Vec::new();
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&65_535u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        f.write_all(&h).unwrap();
        for (at, rtp) in &self.packets {
            let udp_len = 8 + rtp.len();
            let ip_len = 20 + udp_len;
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&[0x08, 0x00]);
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&(ip_len as u16).to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
            let sum = ip.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum::<u32>();
            let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            frame.extend_from_slice(&ip);
            frame.extend_from_slice(&6000u16.to_be_bytes());
            frame.extend_from_slice(&6002u16.to_be_bytes());
            frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
            frame.extend_from_slice(&[0, 0]);
            frame.extend_from_slice(rtp);
            let mut rec = Vec::new();
            rec.extend_from_slice(&((1_700_000_000 + at / 1_000_000) as u32).to_le_bytes());
            rec.extend_from_slice(&((at % 1_000_000) as u32).to_le_bytes());
            rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            rec.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            f.write_all(&rec).unwrap();
            f.write_all(&frame).unwrap();
        }
    }
}

/// `text` spoken by espeak-ng (Dutch), telephone band, as G.711 u-law bytes.
pub fn speak_ulaw(dir: &Path, text: &str, voice: &str) -> Vec<u8> {
    let wav = dir.join("speech.wav");
    let raw = dir.join("speech.ul");
    let ok = Command::new("espeak-ng").args(["-v", voice, "-s", "150", "-w"]).arg(&wav).arg(text).status().unwrap();
    assert!(ok.success(), "espeak-ng");
    // -R: sox seeds its dither with a fixed number, so a test hears the same audio every
    // run (with random dither a name near a recognition boundary made tests flaky).
    let ok = Command::new("sox")
        .arg("-R")
        .arg(&wav)
        .args(["-r", "8000", "-c", "1", "-t", "ul"])
        .arg(&raw)
        .args(["sinc", "300-3400"])
        .status()
        .unwrap();
    assert!(ok.success(), "sox");
    std::fs::read(raw).unwrap()
}

/// White-ish noise in u-law (a radio in the room, not a name).
pub fn noise_ulaw(ms: u32) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..ms * 8)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Mid-level codes of both signs: loud enough to trigger voice activity.
            let level = 0x20 + (x % 0x20) as u8;
            if x & 0x8000 != 0 { level } else { level | 0x80 }
        })
        .collect()
}

// ---- the peers ------------------------------------------------------------------------

/// SIPp as Kapelle's contact centre running `scenario_file` for one call (`uas_answer.xml`:
/// answers, echoes the audio, waits for the BYE).
pub fn kapelle_uas(scenario_file: &str) -> (Child, u16) {
    uas(scenario_file, 1)
}

/// SIPp as a contact centre running `scenario_file` for `calls` calls.
pub fn uas(scenario_file: &str, calls: u32) -> (Child, u16) {
    let port = free_udp_port();
    let child = Command::new("sipp")
        .args(["-sf", scenario(scenario_file).to_str().unwrap()])
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-mp", &free_media_port().to_string()])
        .args(["-m", &calls.to_string(), "-rtp_echo", "-nostdin", "-timeout", "120s", "-timeout_error"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp runs (Debian package sip-tester)");
    (child, port)
}

pub fn finish(mut child: Child, within: Duration) -> (i32, String) {
    let until = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (st.code().unwrap_or(-1), tail(&format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)), 40));
        }
        if Instant::now() > until {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            return (-2, tail(&String::from_utf8_lossy(&out.stdout), 40));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIPp as the caller: runs `scenario_file` in `dir` (where caller.pcap is), `pause_ms` for its
/// `<pause/>`.
pub fn caller(server: SocketAddr, dir: &Path, scenario_file: &str, pause_ms: u32) -> (i32, String) {
    caller_with(server, dir, scenario_file, pause_ms, &[])
}

/// As [`caller`], with more SIPp arguments (`-t t1` for TCP, `-key name value`...).
pub fn caller_with(server: SocketAddr, dir: &Path, scenario_file: &str, pause_ms: u32, extra: &[&str]) -> (i32, String) {
    let pause = pause_ms.to_string();
    Uac::new(server, scenario_file, "140113").dir(dir).default_rate().timeout("150s").args(extra).args(&["-d", &pause]).run()
}

/// The caller (`scenario_file` in `dir`, as [`caller_with`]) on the server at `sip`, then the
/// contact centre's SIPp `uas`, which must be done within 20 s of the caller: each side's
/// (exit code, output tail). Both run off the runtime's threads, which serve the call.
pub async fn caller_and_centre(
    sip: SocketAddr,
    dir: &Path,
    scenario_file: &'static str,
    pause_ms: u32,
    extra: &[&str],
    uas: Child,
) -> ((i32, String), (i32, String)) {
    let d = dir.to_path_buf();
    let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
    let caller = tokio::task::spawn_blocking(move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        caller_with(sip, &d, scenario_file, pause_ms, &extra)
    })
    .await
    .unwrap();
    let centre = tokio::task::spawn_blocking(move || finish(uas, Duration::from_secs(20))).await.unwrap();
    (caller, centre)
}

/// SIPp as the caller `from` on 140113 (`ivr_uac_inf_play_bye.xml`): plays `audio` from its own
/// directory under `dir`, stays on the line for `pause_ms`, hangs up.
pub fn caller_from(server: SocketAddr, dir: &Path, from: &str, audio: &Rtp, pause_ms: u32) -> (i32, String) {
    let d = dir.join(format!("caller-{from}"));
    std::fs::create_dir_all(&d).unwrap();
    audio.write(&d.join("caller.pcap"));
    std::fs::write(d.join("numbers.csv"), format!("SEQUENTIAL\n140113;{from};\n")).unwrap();
    caller_with(server, &d, "ivr_uac_inf_play_bye.xml", pause_ms, &["-inf", "numbers.csv"])
}

/// The questions the dialogue asked ("Bedoelt u …?" and keypad menus), as spoken.
pub fn questions(call: &serde_json::Value) -> Vec<String> {
    entries(call, "prompt")
        .into_iter()
        .filter(|p| p["ids"].as_array().is_some_and(|ids| ids.iter().any(|i| i == "confirm" || i == "menu")))
        .map(|p| p["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub fn the_call(calls: &[serde_json::Value]) -> &serde_json::Value {
    let ivr: Vec<_> = calls.iter().filter(|c| c["decision_kind"] == "ask").collect();
    assert_eq!(ivr.len(), 1, "one IVR call recorded: {calls:#?}");
    ivr[0]
}

pub fn entries<'a>(call: &'a serde_json::Value, what: &str) -> Vec<&'a serde_json::Value> {
    call["ivr"]["entries"].as_array().map(|a| a.iter().filter(|e| e["what"] == what).collect()).unwrap_or_default()
}


/// The `veertien serve` config of these tests: free loopback ports, Kapelle bridged to
/// `kapelle_uri`, short no-input time. Returns (config text, SIP address).
pub fn serve_config(dir: &Path, kapelle_cbs: &str, kapelle_uri: &str, speech: bool) -> (String, SocketAddr) {
    let sip = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
    let settings = dir.join("settings.toml");
    std::fs::write(&settings, format!("[municipality.{kapelle_cbs}]\nmode = \"bridge\"\ndestination = \"{kapelle_uri}\"\n")).unwrap();
    let text = format!(
        "node_id = \"ivr-e2e\"\n[sip]\nudp = \"{sip}\"\ntcp = \"127.0.0.1:{tcp}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\nprompts_dir = \"{prompts}\"\n\
         [store]\npath = \"{db}\"\n[plan]\nsettings = \"{settings}\"\n[ivr]\nspeech = {speech}\nno_input_ms = 2500\nmax_dialogue_secs = 90\n[shutdown]\ngrace_secs = 2\n",
        tcp = free_tcp_port(),
        http = free_tcp_port(),
        prompts = dir.join("prompts").display(),
        db = dir.join("calls.db").display(),
        settings = settings.display(),
    );
    (text, sip)
}

/// `veertien serve` in-process for an IVR test: Kapelle at `kapelle_uri`, with an optional
/// settings file (e.g. Kapelle in redirect mode), its store in the returned directory.
pub async fn start_server(
    kapelle_uri: &str,
    settings: Option<&str>,
) -> (veertien_server::Server, tempfile::TempDir, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let (server, sip) = start_server_in(dir.path(), kapelle_uri, settings, false).await;
    (server, dir, sip)
}

/// As [`start_server`], in `dir` (where a test may have put earlier calls in `calls.db`), with
/// speech recognition on or off.
pub async fn start_server_in(
    dir: &Path,
    kapelle_uri: &str,
    settings: Option<&str>,
    speech: bool,
) -> (veertien_server::Server, SocketAddr) {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("info,veertien_server=debug").try_init();
    let (cbs, _) = kapelle();
    let (text, sip) = serve_config(dir, &cbs, kapelle_uri, speech);
    if let Some(settings) = settings {
        std::fs::write(dir.join("settings.toml"), settings).unwrap();
    }
    let config = veertien_server::Config::parse(&text).expect("test config is valid");
    let server = veertien_server::Server::start(config, true, None).await.expect("server starts");
    (server, sip)
}

/// `veertien serve` in `dir` with speech on and the municipalities `names` of 0113 bridged to
/// the SIPp contact centre on `uas_port` (`sip:<name>@…`); returns once the model is loaded.
pub async fn serve_with_speech(dir: &Path, uas_port: u16, names: &[&str]) -> (veertien_server::Server, SocketAddr) {
    let settings: String = names
        .iter()
        .map(|name| {
            let user = name.to_lowercase().replace(' ', "-");
            format!("[municipality.{}]\nmode = \"bridge\"\ndestination = \"sip:{user}@127.0.0.1:{uas_port}\"\n\n", on_0113(name).0)
        })
        .collect();
    let (server, sip) = start_server_in(dir, &format!("sip:kapelle@127.0.0.1:{uas_port}"), Some(&settings), true).await;
    let ivr = server.engine().call_layer().unwrap().ivr().unwrap().clone();
    let until = Instant::now() + Duration::from_secs(120);
    while !ivr.status().speech {
        assert!(Instant::now() < until, "the speech model did not load: {:?}", ivr.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (server, sip)
}

/// Stops the server (flushing its records) and returns every call record as JSON.
pub async fn records(server: veertien_server::Server, dir: &Path) -> Vec<serde_json::Value> {
    server.shutdown().await;
    let store = veertien_store::Store::open(dir.join("calls.db").to_str().unwrap()).await.unwrap();
    let filter = veertien_store::CallFilter { limit: 100, ..Default::default() };
    let calls = store.list_calls(&filter).await.unwrap();
    calls.iter().map(|c| serde_json::to_value(c).unwrap()).collect()
}

/// The caller's audio for a keypad choice of Kapelle: silence, its digit (RFC 4733), silence.
pub fn key_pcap(dir: &Path) {
    let (_, digit) = kapelle();
    let mut rtp = Rtp::new();
    rtp.silence(1200);
    rtp.key(digit);
    rtp.silence(1000);
    rtp.write(&dir.join("caller.pcap"));
}
