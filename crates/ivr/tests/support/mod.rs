#![allow(dead_code)]
//! A caller on a UDP socket (RTP, G.711, RFC 4733) and prompt libraries for the driver tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use veertien_core::{CallInfo, Decision, Lang, Plan, Settings, decide};
use veertien_ivr::PromptLibrary;
use veertien_ivr::audio::{audio_plan, build, tools_available};
use veertien_ivr::prompts::PieceKind;
use veertien_media::dtmf::{Digit, TelephoneEvent};
use veertien_media::g711::Codec;
use veertien_media::ports::{MediaSocket, PortPool};
use veertien_media::rtp::{RtpHeader, build_rtp, parse_rtp};
use veertien_media::sdp::{self, LocalEndpoint, MediaPolicy, Negotiated};

pub fn plan() -> &'static Plan {
    Plan::builtin()
}

/// A Monday morning: every default municipality is open.
pub fn now() -> jiff::Timestamp {
    "2026-11-23T09:30:00Z".parse().unwrap()
}

pub fn ask(code: &str, settings: &Settings) -> Decision {
    let dialled = format!("14{code}");
    let d = decide(
        &CallInfo {
            dialled: &dialled,
            caller: None,
        },
        plan(),
        settings,
        now(),
    );
    assert!(matches!(d, Decision::Ask { .. }), "14{code}: {d:?}");
    d
}

/// The keypad digit of a municipality on an area code, from the settings' menu.
pub fn digit_for(code: &str, name: &str, settings: &Settings) -> char {
    let area = plan().area_code_id(code).unwrap();
    let m = plan().by_name(name).unwrap();
    let e = settings
        .menu(area)
        .iter()
        .find(|e| e.municipality == m)
        .unwrap_or_else(|| panic!("{name} not in the menu of {code}"));
    char::from_digit(u32::from(e.digit.expect("a digit")), 10).unwrap()
}

/// One received RTP packet.
#[derive(Debug, Clone)]
pub struct Rx {
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub at: Instant,
    pub audible: bool,
}

enum Cmd {
    Say(Vec<i16>),
    Key(Digit),
    /// Stop sending RTP altogether (a dead line).
    Mute,
}

/// The caller's phone: sends 20 ms G.711 packets in real time (quiet noise unless told to
/// say something), RFC 4733 keys, and records every packet the IVR sends.
pub struct Phone {
    cmd: mpsc::UnboundedSender<Cmd>,
    pub received: Arc<Mutex<Vec<Rx>>>,
    pub codec: Codec,
}

impl Phone {
    pub fn say(&self, pcm: Vec<i16>) {
        let _ = self.cmd.send(Cmd::Say(pcm));
    }

    pub fn press(&self, key: char) {
        let _ = self.cmd.send(Cmd::Key(Digit::parse(&key.to_string()).unwrap()));
    }

    pub fn mute(&self) {
        let _ = self.cmd.send(Cmd::Mute);
    }

    /// Milliseconds of audible prompt audio received so far.
    pub fn audible_ms(&self) -> u64 {
        self.received.lock().unwrap().iter().filter(|r| r.audible).count() as u64 * 20
    }

    /// Waits until at least `ms` of audible prompt audio has arrived.
    pub async fn wait_audible(&self, ms: u64, max: Duration) {
        let t0 = Instant::now();
        while self.audible_ms() < ms {
            assert!(t0.elapsed() < max, "no prompt audio arrived ({} ms so far)", self.audible_ms());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Low noise (-60 dBFS), below the VAD's speech threshold, as a quiet line carries.
fn hiss(n: usize, seed: &mut u32) -> Vec<i16> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 17;
            *seed ^= *seed << 5;
            ((*seed as f32 / u32::MAX as f32) * 2.0 - 1.0) * 50.0
        })
        .map(|v| v as i16)
        .collect()
}

/// A phone that offers `codec` (+ telephone-event 101) and the IVR's socket and negotiation.
pub async fn call(pool_start: u16, codec: Codec) -> (Phone, MediaSocket, Negotiated) {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), pool_start..=pool_start + 10).unwrap();
    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let port = sock.local_addr().unwrap().port();
    let (pt, name) = match codec {
        Codec::Pcmu => (0, "PCMU"),
        Codec::Pcma => (8, "PCMA"),
    };
    let offer = format!(
        "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    );
    let media = pool.bind().unwrap();
    let local = LocalEndpoint {
        addr: pool.ip(),
        port: media.port(),
        session_id: 1,
        session_version: 1,
    };
    let (neg, _answer) = sdp::answer(&offer, &MediaPolicy::default(), &local).unwrap();
    assert_eq!(neg.payload_type, pt);
    let to: SocketAddr = media.local_addr();
    let received = Arc::new(Mutex::new(Vec::new()));
    let (tx, mut rx) = mpsc::unbounded_channel::<Cmd>();

    let recv_sock = sock.clone();
    let rec = received.clone();
    let silence = codec.encode_sample(0);
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = recv_sock.recv_from(&mut buf).await {
            if let Ok(p) = parse_rtp(&buf[..n]) {
                let audible = p.payload.iter().any(|&b| {
                    (codec.decode_sample(b) as i32 - codec.decode_sample(silence) as i32).abs() > 64
                });
                rec.lock().unwrap().push(Rx {
                    pt: p.payload_type,
                    seq: p.sequence,
                    ts: p.timestamp,
                    ssrc: p.ssrc,
                    at: Instant::now(),
                    audible,
                });
            }
        }
    });

    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let (mut seq, mut ts, ssrc) = (100u16, 1000u32, 0xCA11u32);
        let mut speech: Vec<i16> = Vec::new();
        let mut seed = 7u32;
        let mut pkt = Vec::new();
        let mut muted = false;
        loop {
            tick.tick().await;
            loop {
                match rx.try_recv() {
                    Ok(Cmd::Say(pcm)) => speech.extend(pcm),
                    Ok(Cmd::Mute) => muted = true,
                    Ok(Cmd::Key(d)) => {
                        // RFC 4733: updates every 50 ms, end packet three times.
                        let start = ts;
                        for k in 1..=3u16 {
                            let ev = TelephoneEvent { event: d.event_code(), end: false, volume: 10, duration: 400 * k };
                            build_rtp(&RtpHeader { payload_type: 101, marker: k == 1, sequence: seq, timestamp: start, ssrc }, &ev.to_bytes(), &mut pkt);
                            let _ = sock.send_to(&pkt, to).await;
                            seq = seq.wrapping_add(1);
                        }
                        for _ in 0..3 {
                            let ev = TelephoneEvent { event: d.event_code(), end: true, volume: 10, duration: 1200 };
                            build_rtp(&RtpHeader { payload_type: 101, marker: false, sequence: seq, timestamp: start, ssrc }, &ev.to_bytes(), &mut pkt);
                            let _ = sock.send_to(&pkt, to).await;
                            seq = seq.wrapping_add(1);
                        }
                        ts = ts.wrapping_add(1200);
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            if muted {
                continue;
            }
            let frame: Vec<i16> = if speech.is_empty() {
                hiss(160, &mut seed)
            } else {
                let n = speech.len().min(160);
                let mut f: Vec<i16> = speech.drain(..n).collect();
                f.resize(160, 0);
                f
            };
            let mut payload = Vec::with_capacity(160);
            codec.encode(&frame, &mut payload);
            build_rtp(&RtpHeader { payload_type: pt, marker: false, sequence: seq, timestamp: ts, ssrc }, &payload, &mut pkt);
            let _ = sock.send_to(&pkt, to).await;
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
        }
    });
    (Phone { cmd: tx, received, codec }, media, neg)
}

/// Writes an 8 kHz mono PCM16 WAV.
pub fn write_wav(path: &Path, pcm: &[i16]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in pcm {
        w.write_sample(*s).unwrap();
    }
    w.finalize().unwrap();
}

/// A voiced, syllable-modulated stand-in for speech (-12 dBFS).
pub fn speechlike(ms: u32) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let env = 0.6 + 0.4 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
            let v: f32 = (1..12)
                .map(|h| (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() / h as f32)
                .sum();
            (8000.0 * env * v * 0.8) as i16
        })
        .collect()
}

pub fn tone(ms: u32, hz: f32) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| (6000.0 * (2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin()) as i16)
        .collect()
}

/// A prompts directory where every piece is a short tone (150 ms for names, 250 ms otherwise):
/// the dialogue runs at test speed and needs no espeak-ng.
pub fn tone_dir(tag: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ivr-tones-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    for it in audio_plan(plan(), &[Lang::Nl]) {
        let ms = if it.kind == PieceKind::Name { 150 } else { 250 };
        write_wav(&dir.join(&it.file), &tone(ms, 440.0));
    }
    dir
}

pub fn tone_library(tag: &str) -> Arc<PromptLibrary> {
    Arc::new(PromptLibrary::load_with(&tone_dir(tag), plan(), &[Lang::Nl], false).unwrap())
}

/// Real espeak-ng prompts for 0113 (every fixed phrase, the five names), built once per test
/// run (incrementally across runs); `None` when espeak-ng/sox are missing (not allowed on CI).
pub fn espeak_library() -> Option<Arc<PromptLibrary>> {
    static LIB: OnceLock<Option<Arc<PromptLibrary>>> = OnceLock::new();
    LIB.get_or_init(|| {
        if !tools_available() {
            assert!(std::env::var_os("CI").is_none(), "espeak-ng and sox must be installed under CI");
            eprintln!("espeak-ng/sox not installed: skipping tests with spoken prompts");
            return None;
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ivr-espeak-prompts");
        let area = plan().area_code_id("0113").unwrap();
        let names: Vec<String> = plan()
            .area_code_by_id(area)
            .municipalities
            .iter()
            .map(|m| plan().municipality(*m).everyday_name.clone())
            .collect();
        let mut items = audio_plan(plan(), &[Lang::Nl]);
        items.retain(|i| i.kind != PieceKind::Name || names.contains(&i.text));
        build(&items, &dir, |_| {}).unwrap();
        Some(Arc::new(PromptLibrary::load(&dir, plan(), &[Lang::Nl]).unwrap()))
    })
    .clone()
}

/// espeak-ng speech at 8 kHz, through the same synthesis the prompts use.
pub fn speak(text: &str) -> Vec<i16> {
    let path = std::env::temp_dir().join(format!(
        "veertien-ivr-say-{}-{}.wav",
        std::process::id(),
        text.replace(' ', "_")
    ));
    veertien_ivr::audio::synthesise(text, Lang::Nl, &path).unwrap();
    let (pcm, rate) = veertien_speech::audio::read_wav(&path).unwrap();
    assert_eq!(rate, 8000);
    let _ = std::fs::remove_file(&path);
    pcm
}
