//! Loopback tests of the B2BUA RTP relay: audio both ways, event PT mapping, latching,
//! loss counting, foreign sources and media timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;
use veertien_media::dtmf::TelephoneEvent;
use veertien_media::g711::Codec;
use veertien_media::ports::PortPool;
use veertien_media::relay::{Leg, LegPeer, RelayConfig, RelayEvent, RtpRelay};
use veertien_media::rtp::{RtpHeader, build_rtp, parse_rtp};
use veertien_media::sdp::{self, LocalEndpoint, MediaPolicy};

fn pkt(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    build_rtp(&RtpHeader { payload_type: pt, marker: false, sequence: seq, timestamp: seq as u32 * 160, ssrc }, payload, &mut v);
    v
}

async fn recv_all(sock: &UdpSocket, want: usize) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while got.len() < want {
        match timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => got.push((buf[..n].to_vec(), from)),
            _ => break,
        }
    }
    got
}

struct Call {
    relay: RtpRelay,
    events: tokio::sync::mpsc::Receiver<RelayEvent>,
    caller: UdpSocket,
    callee: UdpSocket,
}

/// Negotiates both legs with the real SDP code: the caller offers PCMA with event PT 101,
/// the B2BUA offers the destination only that codec, and the destination answers with
/// event PT 96 from a socket other than the one in its SDP (NAT).
async fn call(pool_start: u16, cfg: RelayConfig) -> Call {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), pool_start..=pool_start + 10).unwrap();
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (leg_a, leg_b) = (pool.bind().unwrap(), pool.bind().unwrap());
    let offer_a = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
        caller.local_addr().unwrap().port()
    );
    let local_a = LocalEndpoint { addr: pool.ip(), port: leg_a.port(), session_id: 1, session_version: 1 };
    let (neg_a, _answer_a) = sdp::answer(&offer_a, &MediaPolicy::default(), &local_a).unwrap();
    let policy_b = MediaPolicy { codecs: vec![neg_a.codec], ..MediaPolicy::default() };
    let local_b = LocalEndpoint { addr: pool.ip(), port: leg_b.port(), session_id: 2, session_version: 1 };
    let offer_b = sdp::offer(&policy_b, &local_b);
    assert!(offer_b.contains("RTP/AVP 8 101"), "{offer_b}");
    let sdp_port = callee.local_addr().unwrap().port() + 1; // not where it really sends from
    let answer_b = format!("v=0\r\no=- 9 9 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {sdp_port} RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\n");
    let neg_b = sdp::accept_answer(&answer_b, &policy_b).unwrap();
    assert_eq!(neg_b.codec, neg_a.codec, "same codec on both legs: no transcoding");
    let (relay, events) = RtpRelay::start(leg_a, LegPeer::from(&neg_a), leg_b, LegPeer::from(&neg_b), cfg);
    Call { relay, events, caller, callee }
}

#[tokio::test]
async fn audio_and_events_pass_both_ways_unchanged() {
    let Call { relay, caller, callee, .. } = call(43000, RelayConfig::default()).await;
    let (a, b) = (relay.local_addr(Leg::A), relay.local_addr(Leg::B));

    // The destination speaks first from its real port; the relay latches to it.
    let mut payload = Vec::new();
    Codec::Pcma.encode(&(0..160).map(|i| (i * 97 % 4000) as i16).collect::<Vec<_>>(), &mut payload);
    for s in 0..20u16 {
        callee.send_to(&pkt(8, s, 0xB, &payload), b).await.unwrap();
    }
    let to_caller = recv_all(&caller, 20).await;
    assert_eq!(to_caller.len(), 20);
    assert!(to_caller.iter().all(|(_, from)| *from == a), "caller hears the relay from the leg-A port in its SDP answer");
    assert_eq!(to_caller[0].0, pkt(8, 0, 0xB, &payload), "forwarded byte for byte");

    for s in 0..30u16 {
        caller.send_to(&pkt(8, 100 + s, 0xA, &payload), a).await.unwrap();
    }
    let ev = TelephoneEvent { event: 5, end: true, volume: 10, duration: 800 }.to_bytes();
    let mut marked = pkt(101, 130, 0xA, &ev);
    marked[1] |= 0x80;
    caller.send_to(&marked, a).await.unwrap();
    let to_callee = recv_all(&callee, 31).await;
    assert_eq!(to_callee.len(), 31, "sent to the latched source port, not the SDP port");
    let dtmf = parse_rtp(&to_callee[30].0).unwrap();
    assert_eq!((dtmf.payload_type, dtmf.marker, dtmf.payload), (96, true, &ev[..]), "event PT mapped 101 → 96, marker kept");
    assert_eq!(parse_rtp(&to_callee[0].0).unwrap().payload, &payload[..]);

    let st = relay.stop().await;
    assert_eq!((st.a_to_b.packets, st.a_to_b.bytes, st.a_to_b.lost), (31, 30 * 172 + 16, 0));
    assert_eq!((st.b_to_a.packets, st.b_to_a.lost), (20, 0));
}

#[tokio::test]
async fn loss_foreign_sources_and_garbage_are_counted_not_forwarded() {
    let Call { relay, caller, callee, .. } = call(43020, RelayConfig::default()).await;
    let a = relay.local_addr(Leg::A);
    // Until the destination has sent, the relay can only use its SDP address; let it latch.
    callee.send_to(&pkt(8, 1, 9, &[0xD5; 160]), relay.local_addr(Leg::B)).await.unwrap();
    assert_eq!(recv_all(&caller, 1).await.len(), 1);
    for s in (0..50u16).filter(|s| s % 10 != 3) {
        caller.send_to(&pkt(8, 65500u16.wrapping_add(s), 1, &[0xD5; 160]), a).await.unwrap();
    }
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    stranger.send_to(&pkt(8, 1, 2, &[0; 160]), a).await.unwrap();
    let same_ip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    same_ip.send_to(&pkt(8, 1, 3, &[0; 160]), a).await.unwrap();
    caller.send_to(b"\x00\x01junk", a).await.unwrap();
    caller.send_to(&[0x80, 200, 0, 1, 0, 0, 0, 1], a).await.unwrap(); // RTCP SR header, too short → malformed
    caller.send_to(&[0x80, 201, 0, 1, 0, 0, 0, 1], a).await.unwrap(); // RTCP RR: skipped
    let got = recv_all(&callee, 45).await;
    assert_eq!(got.len(), 45);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let st = relay.stats().a_to_b;
    assert_eq!((st.packets, st.lost, st.foreign, st.malformed, st.rtcp), (45, 5, 2, 2, 1), "{st:?}");
    assert!(recv_all(&callee, 1).await.is_empty(), "nothing else forwarded");
    relay.stop().await;
}

#[tokio::test]
async fn media_timeout_names_the_silent_leg_and_ports_are_freed() {
    let cfg = RelayConfig { media_timeout: Duration::from_millis(600), ..RelayConfig::default() };
    let Call { relay, mut events, caller, .. } = call(43040, cfg).await;
    let a = relay.local_addr(Leg::A);
    // The caller keeps talking; the destination never sends.
    let talker = async {
        for s in 0..60u16 {
            caller.send_to(&pkt(8, s, 1, &[0xD5; 160]), a).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (_, ev) = tokio::join!(talker, timeout(Duration::from_secs(3), events.recv()));
    let Some(RelayEvent::MediaTimeout { leg, silent_for }) = ev.unwrap() else { panic!() };
    assert_eq!(leg, Leg::B);
    assert!(silent_for >= Duration::from_millis(600));
    relay.stop().await;
    // Both ports are back: the same range binds again.
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 43040..=43042).unwrap();
    let (_x, _y) = (pool.bind().unwrap(), pool.bind().unwrap());
}
