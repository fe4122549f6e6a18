//! Real peer traffic: the RTP that SIPp plays from its shipped pcap files (`play_pcap_audio`
//! in its scenarios) — G.711 A-law at 30 ms packets and RFC 4733 key presses whose three
//! end packets even repeat the sequence number — replayed into a `MediaSession`.

use std::path::Path;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;
use veertien_media::dtmf::{Digit, DtmfSource};
use veertien_media::ports::PortPool;
use veertien_media::sdp::{self, LocalEndpoint, MediaPolicy};
use veertien_media::session::{MediaEvent, MediaSession, SessionConfig};

const SIPP_DIR: &str = "/usr/share/sip-tester";

/// UDP payloads of a classic little-endian pcap with Ethernet/IPv4 framing, as SIPp ships.
/// (Test-only reader: a dependency for 20 lines of fixed-offset parsing is not worth it.)
fn udp_payloads(path: &Path) -> Vec<Vec<u8>> {
    let d = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&d[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "{}: not a little-endian pcap", path.display());
    assert_eq!(u32::from_le_bytes(d[20..24].try_into().unwrap()), 1, "{}: link type is not Ethernet", path.display());
    let mut off = 24;
    let mut out = Vec::new();
    while off + 16 <= d.len() {
        let incl = u32::from_le_bytes(d[off + 8..off + 12].try_into().unwrap()) as usize;
        let pkt = &d[off + 16..off + 16 + incl];
        off += 16 + incl;
        let ihl = (pkt[14] & 0x0F) as usize * 4;
        assert_eq!(pkt[14 + 9], 17, "{}: non-UDP packet", path.display());
        out.push(pkt[14 + ihl + 8..].to_vec());
    }
    out
}

fn sipp_installed() -> bool {
    let ok = Path::new(SIPP_DIR).join("g711a.pcap").exists();
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "sip-tester must be installed under CI");
        eprintln!("sip-tester not installed: skipping SIPp pcap replay");
    }
    ok
}

#[tokio::test]
async fn sipp_pcap_audio_and_every_rfc4733_key() {
    if !sipp_installed() {
        return;
    }
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42300..=42310).unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // The SDP SIPp's uac_pcap scenario sends.
    let offer = format!(
        "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-11,16\r\n",
        phone.local_addr().unwrap().port()
    );
    let media = pool.bind().unwrap();
    let local = LocalEndpoint { addr: pool.ip(), port: media.port(), session_id: 3, session_version: 1 };
    let (neg, _) = sdp::answer(&offer, &MediaPolicy::default(), &local).unwrap();
    let (session, mut events) = MediaSession::start(media, neg, SessionConfig::default());
    let to = session.local_addr();

    let keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "star", "pound"];
    let want: Vec<Digit> = keys.iter().map(|k| Digit::parse(match *k { "star" => "*", "pound" => "#", d => d }).unwrap()).collect();
    let mut files = vec![Path::new(SIPP_DIR).join("g711a.pcap")];
    files.extend(keys.iter().map(|k| Path::new(SIPP_DIR).join(format!("dtmf_2833_{k}.pcap"))));
    let mut sent = 0;
    for f in &files {
        for p in udp_payloads(f) {
            phone.send_to(&p, to).await.unwrap();
            sent += 1;
            if sent % 8 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
    let mut got = Vec::new();
    let _ = timeout(Duration::from_secs(3), async {
        while let Some(e) = events.recv().await {
            if let MediaEvent::Dtmf { digit, source } = e {
                assert_eq!(source, DtmfSource::Rfc4733);
                got.push(digit);
                if got.len() == want.len() {
                    break;
                }
            }
        }
    })
    .await;
    assert_eq!(got, want);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = session.close().await;
    assert_eq!((stats.malformed, stats.foreign, stats.unknown_payload_type), (0, 0, 0), "{stats:?}");
    assert_eq!(stats.packets_in, sent);
    assert_eq!(stats.jitter.lost, 0, "30 ms A-law packets are not mistaken for loss: {stats:?}");
}
