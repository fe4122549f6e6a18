//! Per-frame cost of the media pipeline and per-packet cost of the relay.
//! Run: cargo bench -p veertien-media --bench media
//! Figures and method: docs/PERFORMANCE-media.md.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::net::UdpSocket;
use veertien_media::dtmf::Digit;
use veertien_media::g711::Codec;
use veertien_media::inband::{InbandDetector, generate_tone};
use veertien_media::jitter::{JitterBuffer, JitterConfig};
use veertien_media::pacer::{Pacer, Prompt, PromptAudio};
use veertien_media::ports::PortPool;
use veertien_media::relay::{LegPeer, RelayConfig, RtpRelay, Leg};
use veertien_media::rtp::{RtpHeader, build_rtp, classify};
use veertien_media::sdp::{self, LocalEndpoint, MediaPolicy};
use veertien_media::vad::Vad;

fn speechlike(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let env = 0.6 + 0.4 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
            let v: f32 = (1..12).map(|h| (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() / h as f32).sum();
            (3000.0 * env * v) as i16
        })
        .collect()
}

fn frame_benches(c: &mut Criterion) {
    let pcm = speechlike(160 * 500);
    let frame = &pcm[..160];
    let mut g = c.benchmark_group("per_20ms_frame");
    for codec in [Codec::Pcmu, Codec::Pcma] {
        let mut enc = Vec::with_capacity(160);
        g.bench_function(format!("{}_encode", codec.name()), |b| {
            b.iter(|| {
                enc.clear();
                codec.encode(black_box(frame), &mut enc);
            })
        });
        let mut bytes = Vec::new();
        codec.encode(frame, &mut bytes);
        let mut dec = Vec::with_capacity(160);
        g.bench_function(format!("{}_decode", codec.name()), |b| {
            b.iter(|| {
                dec.clear();
                codec.decode(black_box(&bytes), &mut dec);
            })
        });
    }
    // Streaming detectors: feed successive frames of a long signal, as a call does.
    let mut vad = Vad::default();
    let mut events = Vec::new();
    let mut i = 0;
    g.bench_function("vad", |b| {
        b.iter(|| {
            vad.process(black_box(&pcm[i * 160..(i + 1) * 160]), &mut events);
            events.clear();
            i = (i + 1) % 500;
        })
    });
    let mut det = InbandDetector::default();
    let mut digits = Vec::new();
    let mut tones = Vec::new();
    for d in Digit::ALL {
        tones.extend(generate_tone(d, 60, -10.0));
        tones.extend(vec![0i16; 480]);
    }
    let frames = tones.len() / 160;
    let mut j = 0;
    g.bench_function("inband_dtmf", |b| {
        b.iter(|| {
            det.process(black_box(&tones[j * 160..(j + 1) * 160]), &mut digits);
            digits.clear();
            j = (j + 1) % frames;
        })
    });
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut out = Vec::new();
    let payload = [0xD5u8; 160];
    let now = Instant::now();
    let mut seq = 0u16;
    g.bench_function("jitter_push_release", |b| {
        b.iter(|| {
            // Every other pair swapped: steady reordering.
            let s = if seq % 4 == 1 { seq.wrapping_add(1) } else if seq % 4 == 2 { seq.wrapping_sub(1) } else { seq };
            jb.push(s, s as u32 * 160, 160, black_box(&payload), now, &mut out);
            out.clear();
            seq = seq.wrapping_add(1);
        })
    });
    let mut pkt = Vec::new();
    build_rtp(&RtpHeader { payload_type: 8, marker: false, sequence: 1, timestamp: 2, ssrc: 3 }, &payload, &mut pkt);
    g.bench_function("rtp_classify", |b| b.iter(|| black_box(classify(black_box(&pkt)).is_ok())));
    let prompt: std::sync::Arc<[i16]> = speechlike(8000 * 60).into();
    let mut pacer = Pacer::new(Codec::Pcma, 8, 1, 0, 0, true);
    let mut tick = 0u64;
    g.bench_function("pacer_tick_pcm_prompt", |b| {
        b.iter(|| {
            if !pacer.is_playing() {
                pacer.enqueue(Prompt { id: tick, audio: PromptAudio::Pcm(prompt.clone()), barge_in: true });
            }
            black_box(pacer.tick(tick, &mut out_buf()));
            tick += 1;
        })
    });
    g.finish();
}

fn out_buf() -> Vec<u8> {
    Vec::with_capacity(200)
}

fn relay_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut g = c.benchmark_group("relay_per_packet");
    g.measurement_time(Duration::from_secs(5));
    let (relay, caller, callee) = rt.block_on(async {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 44000..=44010).unwrap();
        let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (a, b) = (pool.bind().unwrap(), pool.bind().unwrap());
        let offer = format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n", caller.local_addr().unwrap().port());
        let (na, _) = sdp::answer(&offer, &MediaPolicy::default(), &LocalEndpoint { addr: pool.ip(), port: a.port(), session_id: 1, session_version: 1 }).unwrap();
        let peer_b = LegPeer { remote: Some(callee.local_addr().unwrap()), telephone_event_pt: Some(101) };
        let (relay, _ev) = RtpRelay::start(a, LegPeer::from(&na), b, peer_b, RelayConfig::default());
        std::mem::forget(_ev);
        (relay, caller, callee)
    });
    let mut pkt = Vec::new();
    build_rtp(&RtpHeader { payload_type: 8, marker: false, sequence: 1, timestamp: 2, ssrc: 3 }, &[0xD5; 160], &mut pkt);
    let a: SocketAddr = relay.local_addr(Leg::A);
    let mut buf = [0u8; 2048];
    let mut seq = 0u16;
    g.bench_function("through_relay_send_recv", |b| {
        b.iter(|| {
            rt.block_on(async {
                seq = seq.wrapping_add(1);
                pkt[2..4].copy_from_slice(&seq.to_be_bytes());
                caller.send_to(&pkt, a).await.unwrap();
                callee.recv_from(&mut buf).await.unwrap();
            })
        })
    });
    // Baseline: the same send + receive without the relay in between.
    let direct = callee.local_addr().unwrap();
    g.bench_function("direct_send_recv_baseline", |b| {
        b.iter(|| {
            rt.block_on(async {
                caller.send_to(&pkt, direct).await.unwrap();
                callee.recv_from(&mut buf).await.unwrap();
            })
        })
    });
    g.finish();
    let st = relay.stats();
    eprintln!("relay stats after bench: {st:?}");
}

criterion_group!(benches, frame_benches, relay_benches);
criterion_main!(benches);
