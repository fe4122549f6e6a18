//! Loopback end-to-end tests of `MediaSession`: a test socket plays the caller's phone.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;
use veertien_media::dtmf::{Digit, DtmfSource, TelephoneEvent};
use veertien_media::g711::Codec;
use veertien_media::inband::generate_tone;
use veertien_media::pacer::{Prompt, PromptAudio};
use veertien_media::ports::PortPool;
use veertien_media::rtp::{RtpHeader, build_rtp, parse_rtp};
use veertien_media::sdp::{self, LocalEndpoint, MediaPolicy};
use veertien_media::session::{MediaEvent, MediaSession, SessionConfig};

/// The caller's phone: sends PCMU and RFC 4733 (PT 101) like SIPp/baresip do.
struct Phone {
    sock: UdpSocket,
    to: SocketAddr,
    seq: u16,
    ts: u32,
    ssrc: u32,
}

impl Phone {
    async fn send_audio(&mut self, pcm: &[i16]) {
        let mut pkt = Vec::new();
        for (i, frame) in pcm.chunks(160).enumerate() {
            let mut payload = Vec::new();
            Codec::Pcmu.encode(frame, &mut payload);
            payload.resize(160, 0xFF);
            build_rtp(&RtpHeader { payload_type: 0, marker: false, sequence: self.seq, timestamp: self.ts, ssrc: self.ssrc }, &payload, &mut pkt);
            self.sock.send_to(&pkt, self.to).await.unwrap();
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(160);
            // Faster than real time, but gently enough for the socket buffers.
            if i % 8 == 7 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }

    /// One key press as RFC 4733 recommends: updates every 50 ms, end packet three times.
    async fn send_digit(&mut self, d: Digit) {
        let start = self.ts;
        let mut pkt = Vec::new();
        let mut packets: Vec<TelephoneEvent> = (1..=3).map(|k| TelephoneEvent { event: d.event_code(), end: false, volume: 10, duration: 400 * k }).collect();
        packets.extend(std::iter::repeat_n(TelephoneEvent { event: d.event_code(), end: true, volume: 10, duration: 1200 }, 3));
        for (i, ev) in packets.iter().enumerate() {
            build_rtp(&RtpHeader { payload_type: 101, marker: i == 0, sequence: self.seq, timestamp: start, ssrc: self.ssrc }, &ev.to_bytes(), &mut pkt);
            self.sock.send_to(&pkt, self.to).await.unwrap();
            self.seq = self.seq.wrapping_add(1);
        }
        self.ts = self.ts.wrapping_add(1200);
    }
}

async fn setup(cfg: SessionConfig, pool_start: u16) -> (MediaSession, Receiver<MediaEvent>, Phone) {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), pool_start..=pool_start + 20).unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let phone_port = sock.local_addr().unwrap().port();
    let offer = format!(
        "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {phone_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    );
    let media = pool.bind().unwrap();
    let local = LocalEndpoint { addr: pool.ip(), port: media.port(), session_id: 1, session_version: 1 };
    let (neg, answer) = sdp::answer(&offer, &MediaPolicy::default(), &local).unwrap();
    assert!(answer.contains(&format!("m=audio {} RTP/AVP 0 101", media.port())));
    let (session, events) = MediaSession::start(media, neg, cfg);
    let to = session.local_addr();
    (session, events, Phone { sock, to, seq: 1000, ts: 5000, ssrc: 0x1234 })
}

async fn collect(events: &mut Receiver<MediaEvent>, until: impl Fn(&[MediaEvent]) -> bool, max: Duration) -> Vec<MediaEvent> {
    let mut got = Vec::new();
    let _ = timeout(max, async {
        while let Some(e) = events.recv().await {
            got.push(e);
            if until(&got) {
                break;
            }
        }
    })
    .await;
    got
}

fn dtmf(ev: &[MediaEvent]) -> Vec<(Digit, DtmfSource)> {
    ev.iter().filter_map(|e| if let MediaEvent::Dtmf { digit, source } = e { Some((*digit, *source)) } else { None }).collect()
}

#[tokio::test]
async fn caller_audio_gives_inband_digit_speech_and_rfc4733_digit() {
    let (session, mut events, mut phone) = setup(SessionConfig::default(), 42000).await;
    let speech = common::espeak("Kapelle", "nl").unwrap_or_else(|| common::speechlike(700, -18.0));
    let speech_ms = speech.len() as u32 / 8;

    phone.send_audio(&common::noise(500, -60.0, 1)).await;
    phone.send_audio(&generate_tone(Digit::D7, 80, -10.0)).await;
    phone.send_audio(&common::noise(500, -60.0, 2)).await;
    phone.send_audio(&speech).await;
    phone.send_audio(&common::noise(1200, -60.0, 3)).await;
    phone.send_digit(Digit::D5).await;
    phone.send_audio(&common::noise(300, -60.0, 4)).await;

    let ev = collect(&mut events, |e| dtmf(e).len() >= 2, Duration::from_secs(5)).await;
    assert_eq!(dtmf(&ev), vec![(Digit::D7, DtmfSource::InBand), (Digit::D5, DtmfSource::Rfc4733)], "{ev:#?}");
    let starts = ev.iter().filter(|e| matches!(e, MediaEvent::SpeechStarted { .. })).count();
    let utts: Vec<_> = ev.iter().filter_map(|e| if let MediaEvent::Utterance { pcm, started, ended } = e { Some((pcm.len(), *started, *ended)) } else { None }).collect();
    assert_eq!((starts, utts.len()), (1, 1), "one utterance expected: {ev:#?}");
    let (len, started, ended) = utts[0];
    let ms = len as u32 / 8;
    // The spoken audio plus ≤300 ms pre-roll and ≤200 ms tail; espeak pads its output with silence.
    assert!(ms + 100 >= speech_ms.min(1500) / 2 && ms <= speech_ms + 500 + 100, "utterance {ms} ms for {speech_ms} ms of audio");
    assert!(ended > started);
    let stats = session.close().await;
    assert_eq!(stats.foreign, 0);
    assert!(stats.packets_in > 150);
}

#[tokio::test]
async fn prompts_are_paced_rtp_with_marker_and_finish() {
    let (session, mut events, phone) = setup(SessionConfig { send_silence: false, ..SessionConfig::default() }, 42030).await;
    // Latch: the phone speaks first (symmetric RTP), as SIPp does.
    let mut phone = phone;
    phone.send_audio(&common::noise(40, -60.0, 9)).await;
    let tone: Arc<[i16]> = generate_tone(Digit::D1, 300, -12.0).into();
    session.play(Prompt { id: 11, audio: PromptAudio::Pcm(tone.clone()), barge_in: false }).await.unwrap();
    let mut buf = [0u8; 2048];
    let mut got = Vec::new();
    let t0 = tokio::time::Instant::now();
    while got.len() < 15 {
        let (n, from) = timeout(Duration::from_secs(2), phone.sock.recv_from(&mut buf)).await.expect("prompt RTP").unwrap();
        assert_eq!(from, session.local_addr(), "symmetric RTP: sent from the port in our SDP");
        let p = parse_rtp(&buf[..n]).unwrap();
        got.push((p.sequence, p.timestamp, p.marker, p.payload_type, p.payload.to_vec()));
    }
    let elapsed = t0.elapsed();
    assert!(got[0].2 && got[1..].iter().all(|g| !g.2), "marker only on the first packet");
    for w in got.windows(2) {
        assert_eq!(w[1].0, w[0].0.wrapping_add(1));
        assert_eq!(w[1].1.wrapping_sub(w[0].1), 160);
    }
    assert!(got.iter().all(|g| g.3 == 0 && g.4.len() == 160));
    // The audio is the prompt, PCMU-encoded.
    let mut want = Vec::new();
    Codec::Pcmu.encode(&tone[..160], &mut want);
    assert_eq!(got[0].4, want);
    // 15 packets of 20 ms are paced out over ~280 ms, not burst.
    assert!(elapsed >= Duration::from_millis(200), "paced, took {elapsed:?}");
    let ev = collect(&mut events, |e| e.iter().any(|x| matches!(x, MediaEvent::PromptFinished { .. })), Duration::from_secs(2)).await;
    assert!(ev.contains(&MediaEvent::PromptFinished { id: 11, interrupted: false }), "{ev:?}");
    session.close().await;
}

#[tokio::test]
async fn dtmf_barge_in_stops_the_prompt_and_sip_info_is_injected() {
    let (session, mut events, mut phone) = setup(SessionConfig::default(), 42060).await;
    let long: Arc<[i16]> = vec![1000i16; 8000 * 10].into();
    session.play(Prompt { id: 1, audio: PromptAudio::Pcm(long.clone()), barge_in: true }).await.unwrap();
    session.play(Prompt { id: 2, audio: PromptAudio::Pcm(long), barge_in: true }).await.unwrap();
    phone.send_audio(&common::noise(200, -60.0, 5)).await;
    phone.send_digit(Digit::D2).await;
    let ev = collect(&mut events, |e| e.iter().filter(|x| matches!(x, MediaEvent::PromptFinished { .. })).count() >= 2 && !dtmf(e).is_empty(), Duration::from_secs(3)).await;
    assert!(ev.contains(&MediaEvent::PromptFinished { id: 1, interrupted: true }), "{ev:?}");
    assert!(ev.contains(&MediaEvent::PromptFinished { id: 2, interrupted: true }), "queued prompt dropped too: {ev:?}");
    assert_eq!(dtmf(&ev), vec![(Digit::D2, DtmfSource::Rfc4733)]);

    session.inject_sip_info_dtmf(Digit::Hash).await.unwrap();
    let ev = collect(&mut events, |e| !dtmf(e).is_empty(), Duration::from_secs(2)).await;
    assert_eq!(dtmf(&ev), vec![(Digit::Hash, DtmfSource::SipInfo)]);
    session.close().await;
}

#[tokio::test]
async fn speech_barge_in_respects_the_prompt_flag() {
    let (session, mut events, mut phone) = setup(SessionConfig::default(), 42090).await;
    let long: Arc<[i16]> = vec![500i16; 8000 * 10].into();
    session.play(Prompt { id: 5, audio: PromptAudio::Pcm(long.clone()), barge_in: false }).await.unwrap();
    phone.send_audio(&common::noise(400, -60.0, 6)).await;
    phone.send_audio(&common::speechlike(400, -18.0)).await;
    let ev = collect(&mut events, |e| e.iter().any(|x| matches!(x, MediaEvent::SpeechStarted { .. })), Duration::from_secs(3)).await;
    assert!(ev.iter().any(|x| matches!(x, MediaEvent::SpeechStarted { .. })));
    assert!(!ev.iter().any(|x| matches!(x, MediaEvent::PromptFinished { .. })), "non-interruptible prompt keeps playing");
    session.stop_prompts().await.unwrap();
    phone.send_audio(&common::noise(1000, -60.0, 7)).await;
    session.play(Prompt { id: 6, audio: PromptAudio::Pcm(long), barge_in: true }).await.unwrap();
    phone.send_audio(&common::speechlike(400, -18.0)).await;
    let ev = collect(&mut events, |e| e.contains(&MediaEvent::PromptFinished { id: 6, interrupted: true }), Duration::from_secs(3)).await;
    assert!(ev.contains(&MediaEvent::PromptFinished { id: 5, interrupted: true }), "{ev:?}");
    assert!(ev.contains(&MediaEvent::PromptFinished { id: 6, interrupted: true }), "{ev:?}");
    session.close().await;
}

#[tokio::test]
async fn rtp_from_unexpected_sources_is_ignored() {
    let (session, mut events, mut phone) = setup(SessionConfig::default(), 42120).await;
    // Not the SDP address: 127.0.0.2 is loopback too, but not what the offer said.
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let mut intruder = Phone { sock: stranger, to: phone.to, seq: 1, ts: 1, ssrc: 99 };
    intruder.send_digit(Digit::D9).await;
    // The phone latches; afterwards another port on the right address is ignored too.
    phone.send_audio(&common::noise(100, -60.0, 8)).await;
    let other_port = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut same_host = Phone { sock: other_port, to: phone.to, seq: 1, ts: 1, ssrc: 98 };
    same_host.send_digit(Digit::D8).await;
    phone.send_digit(Digit::D3).await;
    let ev = collect(&mut events, |e| !dtmf(e).is_empty(), Duration::from_secs(2)).await;
    assert_eq!(dtmf(&ev), vec![(Digit::D3, DtmfSource::Rfc4733)]);
    // Garbage on the port is counted, not fatal.
    phone.sock.send_to(b"\x40garbage-not-rtp", phone.to).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = session.close().await;
    assert_eq!(stats.foreign, 12, "6 packets each from two strangers");
    assert_eq!(stats.malformed, 1);
}

#[tokio::test]
async fn silence_on_the_wire_raises_media_timeout_once() {
    let cfg = SessionConfig { media_timeout: Duration::from_millis(300), ..SessionConfig::default() };
    let (session, mut events, mut phone) = setup(cfg, 42150).await;
    let ev = collect(&mut events, |e| e.iter().any(|x| matches!(x, MediaEvent::MediaTimeout { .. })), Duration::from_secs(3)).await;
    let Some(MediaEvent::MediaTimeout { silent_for }) = ev.last() else { panic!("no timeout: {ev:?}") };
    assert!(*silent_for >= Duration::from_millis(300));
    // Media resumes, then stops again: a second timeout.
    phone.send_audio(&common::noise(60, -60.0, 10)).await;
    let ev = collect(&mut events, |e| e.iter().any(|x| matches!(x, MediaEvent::MediaTimeout { .. })), Duration::from_secs(3)).await;
    assert_eq!(ev.iter().filter(|x| matches!(x, MediaEvent::MediaTimeout { .. })).count(), 1);
    session.close().await;
}

#[tokio::test]
async fn a_long_key_press_is_one_digit_and_not_speech() {
    let (session, mut events, mut phone) = setup(SessionConfig::default(), 42180).await;
    phone.send_audio(&common::noise(400, -60.0, 11)).await;
    phone.send_audio(&generate_tone(Digit::Hash, 600, -8.0)).await;
    phone.send_audio(&common::noise(1500, -60.0, 12)).await;
    let ev = collect(&mut events, |_| false, Duration::from_millis(800)).await;
    assert_eq!(dtmf(&ev), vec![(Digit::Hash, DtmfSource::InBand)]);
    assert!(!ev.iter().any(|e| matches!(e, MediaEvent::SpeechStarted { .. } | MediaEvent::Utterance { .. })), "{ev:?}");
    session.close().await;
}

/// The IVR scores an utterance while it is spoken: the streamed audio must be the utterance's
/// own samples, from its first (pre-roll) sample, so a result computed on it can be reused.
#[tokio::test]
async fn streamed_speech_audio_starts_with_the_utterance() {
    let cfg = SessionConfig { stream_speech: true, ..SessionConfig::default() };
    let (session, mut events, mut phone) = setup(cfg, 42040).await;
    let speech = common::espeak("Kapelle", "nl").unwrap_or_else(|| common::speechlike(700, -18.0));
    phone.send_audio(&common::noise(500, -60.0, 1)).await;
    phone.send_audio(&speech).await;
    phone.send_audio(&common::noise(1200, -60.0, 3)).await;

    let ev = collect(&mut events, |e| e.iter().any(|x| matches!(x, MediaEvent::Utterance { .. })), Duration::from_secs(5)).await;
    let started = ev.iter().position(|e| matches!(e, MediaEvent::SpeechStarted { .. })).expect("speech started");
    let ended = ev.iter().position(|e| matches!(e, MediaEvent::Utterance { .. })).expect("utterance");
    let Some(MediaEvent::Utterance { pcm: utterance, .. }) = ev.get(ended) else { unreachable!() };
    let streamed: Vec<i16> = ev[started..ended]
        .iter()
        .filter_map(|e| if let MediaEvent::SpeechAudio { pcm } = e { Some(pcm.as_slice()) } else { None })
        .flatten()
        .copied()
        .collect();
    let chunks = ev[started..ended].iter().filter(|e| matches!(e, MediaEvent::SpeechAudio { .. })).count();
    assert!(chunks > 5, "audio arrives while the caller speaks, not in one piece at the end ({chunks} chunks)");
    assert!(streamed.len() >= utterance.len(), "streamed {} < utterance {}", streamed.len(), utterance.len());
    assert_eq!(&streamed[..utterance.len()], utterance.as_slice());
    assert!(!ev[..started].iter().any(|e| matches!(e, MediaEvent::SpeechAudio { .. })), "no audio before speech starts");
    session.close().await;
}
