//! A datagram on an RTP port (RTP, RTCP or garbage), its RFC 4733 payload, and a SIP INFO
//! DTMF body. Invariants: nothing panics; an RTP packet we parsed rebuilds to a packet that
//! parses to the same header and payload; telephone-event blocks round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veertien_media::dtmf::{EventDeduplicator, TelephoneEvent, parse_sip_info};
use veertien_media::rtp::{Datagram, RtpHeader, build_rtp, classify, parse_rtp};

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    if let Ok(view) = parse_rtp(data) {
        let h = RtpHeader {
            payload_type: view.payload_type,
            marker: view.marker,
            sequence: view.sequence,
            timestamp: view.timestamp,
            ssrc: view.ssrc,
        };
        let mut out = Vec::new();
        build_rtp(&h, view.payload, &mut out);
        let back = parse_rtp(&out).expect("a packet we built does not parse");
        assert_eq!(
            (back.payload_type, back.marker, back.sequence, back.timestamp, back.ssrc, back.payload),
            (h.payload_type, h.marker, h.sequence, h.timestamp, h.ssrc, view.payload)
        );
        if let Ok(ev) = TelephoneEvent::parse(view.payload) {
            assert_eq!(TelephoneEvent::parse(&ev.to_bytes()), Ok(ev));
            let mut dedup = EventDeduplicator::new();
            let _ = dedup.push(view.ssrc, view.timestamp, ev);
            let _ = ev.digit();
        }
    }
    if let Ok(Datagram::Rtp(v)) = classify(data) {
        let _ = TelephoneEvent::parse(v.payload);
    }
    // Every 4-byte window as a telephone-event stream, so the deduplicator sees sequences.
    let mut dedup = EventDeduplicator::new();
    for (i, block) in data.chunks_exact(4).enumerate() {
        if let Ok(ev) = TelephoneEvent::parse(block) {
            let _ = dedup.push(1, (i as u32 / 3) * 160, ev);
        }
    }
    // SIP INFO: "content-type\nbody".
    if let Ok(s) = std::str::from_utf8(data) {
        let (ct, body) = s.split_once('\n').unwrap_or(("application/dtmf-relay", s));
        let _ = parse_sip_info(ct, body);
        let _ = parse_sip_info("application/dtmf-relay", s);
        let _ = parse_sip_info("application/dtmf", s);
    }
});
