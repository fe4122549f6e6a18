//! Bridged calls with real SIP peers: SIPp as the carrier (UAC) and SIPp as the municipality's
//! contact centre and its overflow partner (UAS), the in-process server in between. Each test
//! checks what both peers saw (SIPp's exit status) and the call record the server wrote.
//! Scenarios are in `tests/sipp/` of this crate.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use veertien_core::{Plan, Settings};
use veertien_sip::{HeaderName, Message, Method, Request, Response, tcp::Framer};
use veertien_store::{CallRecord, Delivery, Outcome};

/// SIPp runs are serialised: the box has two cores and the timings (no-answer after 1 s)
/// should not depend on how many other calls run at the same time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts a server whose settings bridge `cbs` to `primary`, with an optional overflow.
async fn bridge_server(cbs: &str, primary: &str, overflow: Option<(&str, u16)>, adjust: impl FnOnce(&mut veertien_server::Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("settings.toml");
    let mut toml = format!("[municipality.{cbs}]\nmode = \"bridge\"\ndestination = \"{primary}\"\n");
    if let Some((o, secs)) = overflow {
        toml.push_str(&format!("overflow = {{ destination = \"{o}\", no_answer_secs = {secs} }}\n"));
    }
    // The file must be valid for the real plan, as `serve` would load it.
    Settings::from_toml_str(&toml, Plan::builtin()).expect("test settings are valid");
    std::fs::write(&settings, toml).unwrap();
    let primary_addr: SocketAddr = primary.rsplit('@').next().unwrap().split(';').next().unwrap().parse().unwrap();
    TestServer::start_in(dir, |c| {
        c.plan.settings = Some(settings.clone());
        c.trunk.outbound = Some(primary_addr);
        c.trunk.no_response_ms = 1_000;
        // SIPp scenarios do not expect OPTIONS probes; dead destinations are found by the
        // no-response timer here (probing has its own tests in faults_destination.rs).
        c.health.enabled = false;
        c.rtp.port_min = 31_000;
        c.rtp.port_max = 31_999;
        adjust(c);
    })
    .await
}

fn steps(rec: &CallRecord) -> Vec<(String, String)> {
    rec.route_steps
        .value()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["label"].as_str().unwrap().to_owned(), s["result"].as_str().unwrap().to_owned()))
        .collect()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Where the municipality's primary destination is.
#[derive(Clone, Copy)]
enum Primary {
    /// A SIPp UAS running this scenario.
    Sipp(&'static str),
    /// Nothing listens: the INVITE gets no response at all.
    Nobody,
    /// Reached over TCP (`;transport=tcp`) on a port where nothing listens: the connection
    /// is refused.
    RefusesTcp,
}
use Primary::*;

/// One bridged call between SIPp peers and what it must give: both peers end their scenario
/// cleanly, the one record has this outcome, final status and route steps, and `more` holds.
struct Case {
    name: &'static str,
    primary: Primary,
    /// The overflow partner: its SIPp scenario and the no-answer time (s) before it.
    overflow: Option<(&'static str, u16)>,
    caller: &'static str,
    outcome: Outcome,
    sip_status: u16,
    steps: &'static [(&'static str, &'static str)],
    more: fn(&Bridged),
}

/// A finished case: the record, the municipality's CBS code and the call layer's counters.
struct Bridged {
    record: CallRecord,
    cbs: String,
    bridged: u64,
    rtp_a_to_b: u64,
    rtp_b_to_a: u64,
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { name: "answered, audio relayed, caller hangs up", primary: Sipp("uas_answer.xml"), overflow: None, caller: "bridge_uac.xml", outcome: Outcome::Answered, sip_status: 200, steps: &[("primary", "answered")], more: answered_with_audio },
    Case { name: "answered, the municipality hangs up", primary: Sipp("uas_answer_then_bye.xml"), overflow: None, caller: "bridge_uac_callee_hangs_up.xml", outcome: Outcome::Answered, sip_status: 200, steps: &[("primary", "answered")], more: answered_without_ringing },
    Case { name: "caller cancels while the municipality rings", primary: Sipp("uas_ring_forever.xml"), overflow: None, caller: "cancel_uac.xml", outcome: Outcome::CallerHungUpWhileRinging, sip_status: 487, steps: &[("primary", "caller_hung_up")], more: rang_unanswered },
    // INFO after 180 answered 200 (RFC 6086, early dialog); the municipality sees no INFO.
    Case { name: "INFO while the municipality rings", primary: Sipp("uas_ring_forever.xml"), overflow: None, caller: "bridge_uac_info_while_ringing.xml", outcome: Outcome::CallerHungUpWhileRinging, sip_status: 487, steps: &[("primary", "caller_hung_up")], more: rang_unanswered },
    Case { name: "no answer moves to the overflow partner", primary: Sipp("uas_ring_forever.xml"), overflow: Some(("uas_answer.xml", 1)), caller: "bridge_uac.xml", outcome: Outcome::Answered, sip_status: 200, steps: &[("primary", "no_answer"), ("overflow", "answered")], more: overflow_after_a_second_of_ringing },
    Case { name: "busy moves to the overflow partner", primary: Sipp("uas_busy.xml"), overflow: Some(("uas_answer.xml", 20)), caller: "bridge_uac.xml", outcome: Outcome::Answered, sip_status: 200, steps: &[("primary", "busy"), ("overflow", "answered")], more: at_the_overflow },
    Case { name: "a dead destination is bypassed", primary: Nobody, overflow: Some(("uas_answer.xml", 20)), caller: "bridge_uac.xml", outcome: Outcome::Answered, sip_status: 200, steps: &[("primary", "unreachable"), ("overflow", "answered")], more: bypassed_after_the_no_response_timer },
    Case { name: "a destination refusing the TCP connection is passed", primary: RefusesTcp, overflow: Some(("uas_answer.xml", 20)), caller: "bridge_uac.xml", outcome: Outcome::Answered, sip_status: 200, steps: &[("primary", "unreachable"), ("overflow", "answered")], more: passed_on_the_refused_connection },
];

fn answered_with_audio(b: &Bridged) {
    let r = &b.record;
    assert_eq!(b.bridged, 1);
    // Audio went through the relay both ways: the caller played G.711 for 1.5 s (20 ms
    // packets) and the municipality's side echoed it.
    assert!(b.rtp_a_to_b >= 40 && b.rtp_b_to_a >= 40, "RTP relayed: caller→kcc {}, kcc→caller {}", b.rtp_a_to_b, b.rtp_b_to_a);
    assert_eq!(r.delivery, Some(Delivery::Bridge));
    assert_eq!(r.municipality_cbs.as_deref(), Some(b.cbs.as_str()));
    assert!(r.destination.as_deref().unwrap().starts_with("sip:kcc@127.0.0.1:"), "{r:?}");
    let (rx, ring, ans, end) = (r.received_ms, r.ringing_ms.unwrap(), r.answered_ms.unwrap(), r.ended_ms.unwrap());
    assert!(rx <= ring && ring <= ans && ans < end, "timestamps in order: {r:?}");
    // The caller played 1.5 s of audio before hanging up.
    assert!(end - ans >= 1_000, "{r:?}");
    assert_eq!(r.post_dial_delay_ms, Some(ring - rx));
}

fn answered_without_ringing(b: &Bridged) {
    assert!(b.record.answered_ms.is_some() && b.record.ringing_ms.is_none(), "answered without ringing: {:?}", b.record);
}

fn rang_unanswered(b: &Bridged) {
    assert!(b.record.ringing_ms.is_some() && b.record.answered_ms.is_none(), "{:?}", b.record);
}

fn at_the_overflow(b: &Bridged) {
    assert!(b.record.destination.as_deref().unwrap().starts_with("sip:overflow@"), "{:?}", b.record);
}

fn overflow_after_a_second_of_ringing(b: &Bridged) {
    at_the_overflow(b);
    // The primary rang for the configured second before the call moved on.
    assert!(b.record.answered_ms.unwrap() - b.record.ringing_ms.unwrap() >= 1_000, "{:?}", b.record);
}

fn bypassed_after_the_no_response_timer(b: &Bridged) {
    at_the_overflow(b);
    // Bypassed after the configured 1 s without any response, not after the 32 s SIP timeout.
    let wait = b.record.answered_ms.unwrap() - b.record.received_ms;
    assert!((1_000..10_000).contains(&wait), "{:?}", b.record);
}

fn passed_on_the_refused_connection(b: &Bridged) {
    at_the_overflow(b);
    // Passed because the connection was refused, not by the no-response timer (which the
    // "dead destination" case shows says "no response within …").
    let steps = b.record.route_steps.value();
    let detail = steps[0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("TCP connection to the destination failed") && detail.contains("refused"), "{:?}", b.record);
}

/// Runs one case end to end.
async fn bridged(case: &Case) -> Bridged {
    let name = case.name;
    let (fourteen, cbs) = lone_municipality();
    let (primary, primary_uri) = match case.primary {
        Sipp(scenario_file) => {
            let uas = Uas::start(scenario_file, 1);
            let uri = uas.uri("kcc");
            (Some(uas), uri)
        }
        Nobody => (None, format!("sip:kcc@127.0.0.1:{}", free_udp_port())),
        RefusesTcp => {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            (None, format!("sip:kcc@127.0.0.1:{closed};transport=tcp"))
        }
    };
    let partner = case.overflow.map(|(scenario_file, secs)| (Uas::start(scenario_file, 1), secs));
    let overflow = partner.as_ref().map(|(uas, secs)| (uas.uri("overflow"), *secs));
    let ts = bridge_server(&cbs, &primary_uri, overflow.as_ref().map(|(uri, secs)| (uri.as_str(), *secs)), |_| {}).await;
    let (udp, caller) = (ts.udp, case.caller);
    let (code, log) = blocking(move || Uac::new(udp, caller, &fourteen).run()).await;
    assert_eq!(code, 0, "{name}: the caller's SIPp run ({caller}):\n{log}");
    for (uas, role) in [(primary, "municipality"), (partner.map(|p| p.0), "overflow partner")] {
        if let Some(uas) = uas {
            let (code, log) = blocking(move || uas.finish(Duration::from_secs(10))).await;
            assert_eq!(code, 0, "{name}: the {role}'s SIPp run:\n{log}");
        }
    }
    let layer = &ts.server.engine().call_layer().unwrap().metrics;
    let (rtp_a_to_b, rtp_b_to_a) = (layer.rtp_a_to_b.load(Relaxed), layer.rtp_b_to_a.load(Relaxed));
    let bridged = ts.server.engine().metrics().bridged;
    let mut recs = records(ts).await;
    assert_eq!(recs.len(), 1, "{name}: one record: {recs:?}");
    Bridged { record: recs.remove(0), cbs, bridged, rtp_a_to_b, rtp_b_to_a }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridged_calls_between_sipp_peers() {
    let _g = SERIAL.lock().await;
    for case in CASES {
        let b = bridged(case).await;
        let r = &b.record;
        assert_eq!(r.outcome, Some(case.outcome), "{}: {r:?}", case.name);
        assert_eq!(r.sip_status, Some(case.sip_status), "{}: {r:?}", case.name);
        let want: Vec<(String, String)> = case.steps.iter().map(|(l, s)| (l.to_string(), s.to_string())).collect();
        assert_eq!(steps(r), want, "{}: {r:?}", case.name);
        (case.more)(&b);
    }
}

/// Every destination busy and `[trunk] route_end = "announce"`: the route ends in its message
/// step. The caller is answered (200 with an SDP answer), hears the notice (RTP counted on the
/// socket its SDP names), gets our BYE; the record says `announcement` after the busy attempt.
/// Before, the hand-off to the message answered 480.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_route_ends_in_the_spoken_message_then_bye() {
    if Command::new("espeak-ng").arg("--version").output().is_err() {
        eprintln!("SKIPPED: espeak-ng is not installed (the message is synthesised)");
        return;
    }
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let kcc = Uas::start("uas_busy.xml", 1);
    let ts = bridge_server(&cbs, &kcc.uri("kcc"), None, |c| c.trunk.route_end = veertien_server::config::RouteEnd::Announce).await;
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    let counter = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        let mut packets = 0u32;
        while let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_secs(5), rtp.recv_from(&mut buf)).await {
            if n > 12 && buf[0] >> 6 == 2 {
                packets += 1;
            }
        }
        packets
    });
    let udp = ts.udp;
    let port = rtp_port.to_string();
    let (code, log) = blocking(move || Uac::new(udp, "announce_uac.xml", &fourteen).args(&["-key", "rtp_port", &port]).run()).await;
    assert_eq!(code, 0, "caller: answered 200, BYE from the platform after the message:\n{log}");
    let (code, log) = blocking(move || kcc.finish(Duration::from_secs(10))).await;
    assert_eq!(code, 0, "the municipality's 486 was ACKed:\n{log}");
    let packets = counter.await.unwrap();
    // At least a second of 20 ms packets: the notice names the municipality and says goodbye.
    assert!(packets >= 50, "the caller received the message as RTP: {packets} packets");
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    let r = &recs[0];
    assert_eq!(r.outcome, Some(Outcome::Announcement), "{r:?}");
    assert_eq!(r.sip_status, Some(200), "{r:?}");
    assert_eq!(r.delivery, Some(Delivery::Bridge), "{r:?}");
    assert_eq!(steps(r), vec![("primary".into(), "busy".into()), ("announcement".into(), "played".into())]);
    let message = &r.route_steps.value()[1]["messages"][0];
    assert_eq!((message["prompt"].as_str(), message["complete"].as_bool()), (Some("unreachable"), Some(true)), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_destination_busy_gives_the_caller_486() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let kcc = Uas::start("uas_busy.xml", 1);
    let ts = bridge_server(&cbs, &kcc.uri("kcc"), None, |_| {}).await;
    let c = Client::new(ts.udp).await;
    let uri = format!("sip:{fourteen}@127.0.0.1");
    c.send(request("INVITE", &uri, "z9hG4bK-busy1", "busy-1", c.port()).as_bytes()).await;
    let mut last = c.recv().await;
    while last.status() < 200 {
        last = c.recv().await;
    }
    assert_eq!(last.status(), 486);
    c.send(ack_for(&uri, "z9hG4bK-busy1", "busy-1", c.port(), &to_tag(&last)).as_bytes()).await;
    let (code, log) = blocking(move || kcc.finish(Duration::from_secs(10))).await;
    assert_eq!(code, 0, "{log}");
    let recs = records(ts).await;
    assert_eq!(recs[0].outcome, Some(Outcome::Busy), "{:?}", recs[0]);
    assert_eq!(recs[0].sip_status, Some(486));
}

/// 8 kHz mono PCM16 WAV of a 440 Hz tone (what the caller says, as far as the bridge cares).
fn tone_wav(path: &std::path::Path, secs: u32) {
    let n = 8_000 * secs;
    let mut b = Vec::with_capacity(44 + 2 * n as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&8_000u32.to_le_bytes());
    b.extend_from_slice(&16_000u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(2 * n).to_le_bytes());
    for i in 0..n {
        let v = (f64::from(i) * 440.0 * std::f64::consts::TAU / 8_000.0).sin() * 12_000.0;
        b.extend_from_slice(&(v as i16).to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// A real SIP phone as the caller: baresip dials the 14+ number, sends 3 s of G.711 from a
/// WAV file and hangs up; the municipality (SIPp) echoes the audio. The relay must have
/// carried it both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_caller_audio_through_the_bridge() {
    if Command::new("baresip").arg("-h").output().is_err() {
        eprintln!("SKIPPED: baresip is not installed (Debian package baresip)");
        return;
    }
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let kcc = Uas::start("uas_answer.xml", 1);
    let ts = bridge_server(&cbs, &kcc.uri("kcc"), None, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("caller.wav");
    tone_wav(&wav, 3);
    let cfg = dir.path().join("baresip");
    std::fs::create_dir_all(&cfg).unwrap();
    let rtp = free_media_port();
    std::fs::write(
        cfg.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{}\naudio_player aufile,{dir}/heard.wav\n\
             audio_source aufile,{wav}\naudio_alert aufile,{wav}\naudio_srate 8000\naudio_channels 1\n\
             rtp_ports {rtp}-{}\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\n\
             module aufile.so\nmodule_app account.so\nmodule_app menu.so\n",
            free_udp_port(),
            rtp + 3,
            dir = dir.path().display(),
            wav = wav.display(),
        ),
    )
    .unwrap();
    std::fs::write(cfg.join("accounts"), "<sip:0612345678@127.0.0.1>;regint=0;audio_codecs=PCMA,PCMU\n").unwrap();
    std::fs::write(cfg.join("contacts"), "").unwrap();
    let target = format!("sip:{fourteen}@{}", ts.udp);
    let out = blocking(move || {
        Command::new("timeout")
            // `-n 127.0.0.1`: put the loopback address in the SDP (not the machine's first interface).
            .args(["20", "baresip", "-n", "127.0.0.1", "-f", cfg.to_str().unwrap(), "-e", &format!("/dial {target}"), "-t", "8"])
            .output()
            .unwrap()
    })
    .await;
    let log = tail(&String::from_utf8_lossy(&out.stdout), 60);
    assert!(log.contains("Call established"), "baresip's call was answered through the bridge:\n{log}");
    let (code, uas_log) = blocking(move || kcc.finish(Duration::from_secs(10))).await;
    assert_eq!(code, 0, "{uas_log}");
    let calls = &ts.server.engine().call_layer().unwrap().metrics;
    let (a_to_b, b_to_a) = (calls.rtp_a_to_b.load(Relaxed), calls.rtp_b_to_a.load(Relaxed));
    // 3 s of 20 ms packets = 150 each way; allow for start-up and the echo's latency.
    assert!(a_to_b >= 100 && b_to_a >= 100, "RTP relayed: baresip→kcc {a_to_b}, kcc→baresip {b_to_a}\n{log}");
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].outcome, Some(Outcome::Answered), "{:?}", recs[0]);
    assert!(recs[0].ended_ms.unwrap() - recs[0].answered_ms.unwrap() >= 2_500, "the call lasted the 3 s of audio: {:?}", recs[0]);
}

/// A carrier on TCP: the INVITE, the responses and the caller's ACK and BYE travel on its one
/// connection (SIPp `-t t1`); the municipality's leg is UDP. The call is bridged (before, an
/// INVITE over TCP with a bridge decision was redirected instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridged_call_from_a_tcp_carrier() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let kcc = Uas::start("uas_answer.xml", 1);
    let ts = bridge_server(&cbs, &kcc.uri("kcc"), None, |_| {}).await;
    let tcp = ts.tcp;
    let (code, log) = blocking(move || Uac::new(tcp, "bridge_uac.xml", &fourteen).args(&["-t", "t1"]).run()).await;
    assert_eq!(code, 0, "caller over TCP: answered through the bridge, BYE answered:\n{log}");
    let (code, log) = blocking(move || kcc.finish(Duration::from_secs(10))).await;
    assert_eq!(code, 0, "municipality: INVITE, ACK and BYE seen:\n{log}");
    let m = ts.server.engine().metrics();
    assert_eq!((m.bridged, m.redirected), (1, 0), "{m:?}");
    let calls = &ts.server.engine().call_layer().unwrap().metrics;
    let (a_to_b, b_to_a) = (calls.rtp_a_to_b.load(Relaxed), calls.rtp_b_to_a.load(Relaxed));
    assert!(a_to_b >= 40 && b_to_a >= 40, "RTP relayed: caller→kcc {a_to_b}, kcc→caller {b_to_a}");
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].outcome, Some(Outcome::Answered), "{:?}", recs[0]);
    assert_eq!(recs[0].delivery, Some(Delivery::Bridge));
    assert_eq!(steps(&recs[0]), vec![("primary".to_owned(), "answered".to_owned())]);
}

/// A municipality reached over TCP (`;transport=tcp` in its destination; SIPp UAS `-t t1`,
/// which listens on TCP only): two bridged calls from a UDP carrier, both answered with audio
/// relayed, over one connection the platform opened and reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn municipality_reached_over_tcp_with_one_reused_connection() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let kcc = Uas::start_on("uas_answer.xml", 2, "t1");
    let ts = bridge_server(&cbs, &format!("{};transport=tcp", kcc.uri("kcc")), None, |_| {}).await;
    for call in 1..=2 {
        let (udp, n) = (ts.udp, fourteen.clone());
        let (code, log) = blocking(move || Uac::new(udp, "bridge_uac.xml", &n).run()).await;
        assert_eq!(code, 0, "call {call}: answered by the municipality over TCP, BYE answered:\n{log}");
    }
    let (code, log) = blocking(move || kcc.finish(Duration::from_secs(10))).await;
    assert_eq!(code, 0, "municipality over TCP: two INVITEs, ACKs and BYEs:\n{log}");
    let layer = ts.server.engine().call_layer().unwrap();
    assert_eq!(layer.metrics.tcp_dials.load(Relaxed), 1, "one connection for both calls");
    // SIPp has exited and closed it: the connection is unregistered (its slot under the bound
    // freed), so a next call would dial again.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while layer.tcp_outbound() != 0 && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(layer.tcp_outbound(), 0, "the closed connection was unregistered");
    let (a_to_b, b_to_a) = (layer.metrics.rtp_a_to_b.load(Relaxed), layer.metrics.rtp_b_to_a.load(Relaxed));
    assert!(a_to_b >= 80 && b_to_a >= 80, "RTP relayed: caller→kcc {a_to_b}, kcc→caller {b_to_a}");
    let recs = records(ts).await;
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(r.outcome, Some(Outcome::Answered), "{r:?}");
        assert!(r.destination.as_deref().unwrap().ends_with(";transport=tcp"), "{r:?}");
    }
}

/// The municipality hangs up a call whose caller is on TCP: our BYE reaches the caller on
/// its connection, and its 200 comes back on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn municipality_hangs_up_on_a_tcp_caller() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let kcc = Uas::start("uas_answer_then_bye.xml", 1);
    let ts = bridge_server(&cbs, &kcc.uri("kcc"), None, |_| {}).await;
    let tcp = ts.tcp;
    let (code, log) = blocking(move || Uac::new(tcp, "bridge_uac_callee_hangs_up.xml", &fourteen).args(&["-t", "t1"]).run()).await;
    assert_eq!(code, 0, "caller over TCP receives the BYE:\n{log}");
    let (code, log) = blocking(move || kcc.finish(Duration::from_secs(10))).await;
    assert_eq!(code, 0, "municipality's BYE answered 200:\n{log}");
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].outcome, Some(Outcome::Answered), "{:?}", recs[0]);
}

/// A finished call's task lingers up to 64*T1 to answer retransmissions, but it no longer
/// holds a call slot: with room for one call, three calls in a row are all put through (before,
/// the second got 503 for 32 s; at 800 bridged calls/s the lingering tasks filled all 20 000
/// slots). The RTP ports go back at once too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_call_gives_back_its_slot_at_once() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let kcc = Uas::start("uas_answer.xml", 3);
    let ts = bridge_server(&cbs, &kcc.uri("kcc"), None, |c| {
        c.sip.max_concurrent_calls = 1;
        // Ports for two calls' relays: if lingering calls kept theirs, the third would be refused.
        c.rtp.port_min = 31_100;
        c.rtp.port_max = 31_103;
    })
    .await;
    for call in 1..=3 {
        let (udp, n) = (ts.udp, fourteen.clone());
        let (code, log) = blocking(move || Uac::new(udp, "bridge_uac.xml", &n).run()).await;
        assert_eq!(code, 0, "call {call} put through though earlier calls still linger:\n{log}");
    }
    let layer = ts.server.engine().call_layer().unwrap();
    // The last call's BYE to the municipality may still be on its way.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while layer.calls_in_progress() != 0 && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(layer.calls_in_progress(), 0);
    assert!(layer.tasks() >= 1, "the finished calls still answer retransmissions");
    let (code, log) = blocking(move || kcc.finish(Duration::from_secs(10))).await;
    assert_eq!(code, 0, "{log}");
    let recs = records(ts).await;
    assert_eq!(recs.iter().filter(|r| r.outcome == Some(Outcome::Answered)).count(), 3, "{recs:?}");
}

/// The next request of `method` on the municipality's UDP socket and where it came from; a
/// retransmitted INVITE on the way is answered `again` (RFC 3261 17.2.1).
async fn udp_request(sock: &tokio::net::UdpSocket, method: Method, again: Option<&Response>) -> (Request, SocketAddr) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf)).await.expect("a request in time").unwrap();
        match Message::parse(&buf[..n]).expect("the platform's messages parse") {
            Message::Request(q) if *q.method() == method => return (q, from),
            Message::Request(q) if *q.method() == Method::Invite && again.is_some() => {
                let ok = again.expect("checked in the guard");
                sock.send_to(&ok.to_bytes(), from).await.unwrap();
            }
            other => panic!("expected {method:?}, got {other:?}"),
        }
    }
}

fn text_of(headers: &veertien_sip::Headers, name: &str) -> String {
    headers.get_str(name).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_else(|| panic!("no {name}"))
}

/// The municipality's SDP with a long codec list: over 1300 bytes, more than RFC 3261 18.1.1
/// lets a UA send over UDP without knowing the path MTU, so such a re-INVITE comes over TCP.
fn sdp_too_large_for_udp(rtp_port: u16) -> String {
    let pts: Vec<String> = (96..=127).map(|pt| pt.to_string()).collect();
    let mut sdp = format!("v=0\r\no=kcc 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 0 {}\r\n", pts.join(" "));
    for pt in &pts {
        sdp.push_str(&format!("a=rtpmap:{pt} x-pbx-codec-{pt}/8000\r\na=fmtp:{pt} mode=20;annexb=no\r\n"));
    }
    assert!(sdp.len() > 1300, "{} bytes", sdp.len());
    sdp
}

/// The municipality (a Rust peer on UDP, as SIPp cannot change transport within a call)
/// answers over UDP, then re-INVITEs with an offer too large for UDP, over TCP to our
/// listener. Our 200 to it must name the dialog's UDP Contact, not our TCP listener: the
/// dialog was set up over UDP and is not retargeted. The call goes on: the offer reaches the
/// caller (SIPp checks its last codec) and its answer comes back; the municipality's ACK and
/// BYE over UDP end both legs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_invite_over_tcp_in_a_udp_dialog_keeps_it_on_udp() {
    let _g = SERIAL.lock().await;
    let (fourteen, cbs) = lone_municipality();
    let kcc_sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let kcc = kcc_sock.local_addr().unwrap();
    let ts = bridge_server(&cbs, &format!("sip:kcc@{kcc}"), None, |_| {}).await;
    let (udp, tcp) = (ts.udp, ts.tcp);
    let caller = blocking(move || Uac::new(udp, "bridge_uac_reinvited.xml", &fourteen).run());
    let municipality = async move {
        let (invite, from) = udp_request(&kcc_sock, Method::Invite, None).await;
        let sdp = "v=0\r\no=kcc 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
        let ok = Response::builder(&invite, 200)
            .to_tag("kcc1")
            .header(HeaderName::Contact, format!("<sip:kcc@{kcc}>"))
            .body("application/sdp", sdp)
            .build();
        kcc_sock.send_to(&ok.to_bytes(), from).await.unwrap();
        udp_request(&kcc_sock, Method::Ack, Some(&ok)).await;

        let h = invite.headers();
        let our_contact = text_of(h, "Contact");
        let target = our_contact.trim_matches(['<', '>']).to_owned();
        assert_eq!(target, format!("sip:veertien@{udp}"), "our INVITE names the dialog's UDP Contact");
        let (us, them, call_id) = (text_of(h, "From"), format!("<sip:kcc@{kcc}>;tag=kcc1"), text_of(h, "Call-ID"));
        let in_dialog = |method: &str, cseq: u32, via: &str, body: &str| {
            let content = if body.is_empty() { String::new() } else { "Content-Type: application/sdp\r\n".to_owned() };
            format!(
                "{method} {target} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: {them}\r\nTo: {us}\r\n\
                 Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:kcc@{kcc}>\r\n{content}\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };

        let mut conn = tokio::net::TcpStream::connect(tcp).await.unwrap();
        let local = conn.local_addr().unwrap();
        let via = format!("SIP/2.0/TCP {local};branch=z9hG4bKkcc-reinvite");
        conn.write_all(in_dialog("INVITE", 2, &via, &sdp_too_large_for_udp(40002)).as_bytes()).await.unwrap();
        let mut framer = Framer::new(65_535);
        let mut buf = [0u8; 8192];
        let answer = loop {
            match framer.next_message().expect("our messages frame") {
                Some(Message::Response(r)) if r.status() >= 200 => break r,
                Some(_) => continue,
                None => {}
            }
            let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await.expect("our answer in time").unwrap();
            assert!(n > 0, "the platform closed the connection");
            framer.push(&buf[..n]).unwrap();
        };
        assert_eq!(answer.status(), 200, "{answer:?}");
        assert_eq!(header(&answer, "Contact"), Some(our_contact), "the dialog stays on UDP");
        assert!(String::from_utf8_lossy(answer.body()).contains("m=audio "), "the caller's answer: {answer:?}");

        // Small requests go to our UDP Contact again.
        let via = |branch: &str| format!("SIP/2.0/UDP {kcc};branch={branch}");
        kcc_sock.send_to(in_dialog("ACK", 2, &via("z9hG4bKkcc-ack"), "").as_bytes(), udp).await.unwrap();
        kcc_sock.send_to(in_dialog("BYE", 3, &via("z9hG4bKkcc-bye"), "").as_bytes(), udp).await.unwrap();
        let mut buf = vec![0u8; 65_535];
        loop {
            let (n, _) = tokio::time::timeout(Duration::from_secs(10), kcc_sock.recv_from(&mut buf)).await.expect("our 200 to the BYE").unwrap();
            if let Ok(Message::Response(r)) = Message::parse(&buf[..n])
                && r.cseq().is_some_and(|c| c.method == Method::Bye)
            {
                assert_eq!(r.status(), 200, "{r:?}");
                break;
            }
        }
    };
    let ((code, log), ()) = tokio::join!(caller, municipality);
    assert_eq!(code, 0, "caller: answered, re-INVITE with the municipality's offer answered, BYE received:\n{log}");
    let recs = records(ts).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].outcome, Some(Outcome::Answered), "{:?}", recs[0]);
    assert_eq!(steps(&recs[0]), vec![("primary".to_owned(), "answered".to_owned())]);
}
