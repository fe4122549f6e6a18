//! RTP (RFC 3550) parsing and building on top of the `rtp-types` crate, plus the
//! RTP/RTCP demultiplexing of RFC 5761 §4 so that RTCP arriving on the RTP port is
//! recognised, length-checked and skipped instead of being misread as audio.

use rtp_types::{RtpPacket, RtpPacketBuilder, RtpParseError};

/// Why a datagram was not accepted as RTP or RTCP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("RTP packet too short: {actual} bytes, need at least {expected}")]
    Truncated { expected: usize, actual: usize },
    #[error("RTP version {0} is not supported (only version 2)")]
    BadVersion(u8),
    #[error("RTP padding length {0} is invalid")]
    BadPadding(u8),
    #[error("malformed RTCP: {0}")]
    Rtcp(String),
}

impl From<RtpParseError> for PacketError {
    fn from(e: RtpParseError) -> Self {
        match e {
            RtpParseError::UnsupportedVersion(v) => PacketError::BadVersion(v),
            RtpParseError::Truncated { expected, actual } => PacketError::Truncated { expected, actual },
            RtpParseError::PaddingInvalid(p) => PacketError::BadPadding(p),
        }
    }
}

/// A validated RTP packet, borrowed from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Payload without header, CSRCs, extension or padding.
    pub payload: &'a [u8],
}

/// What arrived on an RTP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    Rtp(RtpView<'a>),
    /// A structurally valid (compound) RTCP packet; we do not act on RTCP reports.
    Rtcp,
}

/// Parses one RTP packet, validating version, CSRC count, header extension length and padding.
pub fn parse_rtp(data: &[u8]) -> Result<RtpView<'_>, PacketError> {
    let p = RtpPacket::parse(data)?;
    let start = p.payload_offset();
    let payload = &data[start..start + p.payload_len()];
    Ok(RtpView {
        payload_type: p.payload_type(),
        marker: p.marker_bit(),
        sequence: p.sequence_number(),
        timestamp: p.timestamp(),
        ssrc: p.ssrc(),
        payload,
    })
}

/// RFC 5761 §4: with RTP and RTCP on one port, the second byte of RTCP is a packet
/// type 192–223, which as RTP would be marker + payload type 64–95 — a range RTP
/// profiles avoid for exactly this reason.
pub fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 2 && (192..=223).contains(&data[1])
}

/// Classifies and validates a datagram received on an RTP port.
pub fn classify(data: &[u8]) -> Result<Datagram<'_>, PacketError> {
    if is_rtcp(data) {
        let compound = rtcp_types::Compound::parse(data).map_err(|e| PacketError::Rtcp(e.to_string()))?;
        for p in compound {
            p.map_err(|e| PacketError::Rtcp(e.to_string()))?;
        }
        return Ok(Datagram::Rtcp);
    }
    parse_rtp(data).map(Datagram::Rtp)
}

/// Header fields of an RTP packet we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// Writes a plain RTP packet (no CSRC, no extension, no padding) into `out`, replacing
/// its contents. `payload_type` must be below 128.
pub fn build_rtp(h: &RtpHeader, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(h.payload_type < 128, "RTP payload type {} out of range", h.payload_type);
    out.clear();
    RtpPacketBuilder::<&[u8], &[u8]>::new()
        .payload_type(h.payload_type & 0x7F)
        .marker_bit(h.marker)
        .sequence_number(h.sequence)
        .timestamp(h.timestamp)
        .ssrc(h.ssrc)
        .payload(payload)
        .write_into_vec_unchecked(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet(pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        build_rtp(&RtpHeader { payload_type: pt, marker: true, sequence: 65535, timestamp: 0xDEADBEEF, ssrc: 42 }, payload, &mut v);
        v
    }

    #[test]
    fn build_then_parse() {
        let v = packet(8, &[1, 2, 3]);
        assert_eq!(v.len(), 15);
        assert_eq!(v[0], 0x80);
        assert_eq!(v[1], 0x88);
        let p = parse_rtp(&v).unwrap();
        assert_eq!((p.payload_type, p.marker, p.sequence, p.timestamp, p.ssrc), (8, true, 65535, 0xDEADBEEF, 42));
        assert_eq!(p.payload, &[1, 2, 3]);
    }

    #[test]
    fn csrc_extension_and_padding_are_stripped_from_payload() {
        // V=2 P=1 X=1 CC=1, PT 0; 1 CSRC; extension of 1 word; payload 2 bytes; 2 bytes padding.
        let mut v = vec![0xB1, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
        v.extend_from_slice(&[0, 0, 0, 9]); // CSRC
        v.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension header + 1 word
        v.extend_from_slice(&[0xAA, 0xBB]); // payload
        v.extend_from_slice(&[0, 2]); // padding, last byte = count
        let p = parse_rtp(&v).unwrap();
        assert_eq!(p.payload, &[0xAA, 0xBB]);
        assert_eq!(p.timestamp, 160);
    }

    #[test]
    fn malformed_packets_are_rejected_with_a_reason() {
        assert_eq!(parse_rtp(&[0x80, 0, 0]), Err(PacketError::Truncated { expected: 12, actual: 3 }));
        let mut v1 = packet(0, &[1]);
        v1[0] = 0x40; // version 1
        assert_eq!(parse_rtp(&v1), Err(PacketError::BadVersion(1)));
        let mut cc = packet(0, &[]);
        cc[0] = 0x83; // three CSRCs announced, none present
        assert!(matches!(parse_rtp(&cc), Err(PacketError::Truncated { expected: 24, .. })));
        let mut ext = packet(0, &[]);
        ext[0] = 0x90; // extension announced, missing
        assert!(matches!(parse_rtp(&ext), Err(PacketError::Truncated { .. })));
        let mut pad = packet(0, &[1, 2, 0]);
        pad[0] = 0xA0; // padding with count 0
        assert_eq!(parse_rtp(&pad), Err(PacketError::BadPadding(0)));
        let mut pad2 = packet(0, &[1, 2, 200]);
        pad2[0] = 0xA0; // padding longer than the packet
        assert!(matches!(parse_rtp(&pad2), Err(PacketError::Truncated { .. })));
        assert!(parse_rtp(&pad2).unwrap_err().to_string().contains("too short"));
    }

    #[test]
    fn rtcp_is_recognised_and_skipped() {
        // Receiver report with no blocks: V=2, RC=0, PT=201, length=1 (8 bytes).
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 5];
        assert_eq!(classify(&rr), Ok(Datagram::Rtcp));
        // Length field claims more than is there.
        let bad = [0x80, 201, 0, 7, 0, 0, 0, 5];
        assert!(matches!(classify(&bad), Err(PacketError::Rtcp(_))));
        let rtp = packet(0, &[0xFF; 160]);
        assert!(matches!(classify(&rtp), Ok(Datagram::Rtp(_))));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(Datagram::Rtp(p)) = classify(&data) {
                prop_assert!(p.payload.len() + 12 <= data.len());
            }
        }

        #[test]
        fn round_trip(pt in 0u8..128, marker: bool, seq: u16, ts: u32, ssrc: u32,
                      payload in proptest::collection::vec(any::<u8>(), 0..400)) {
            prop_assume!(!(64..96).contains(&pt)); // RTCP range per RFC 5761
            let mut v = Vec::new();
            build_rtp(&RtpHeader { payload_type: pt, marker, sequence: seq, timestamp: ts, ssrc }, &payload, &mut v);
            let Datagram::Rtp(p) = classify(&v).unwrap() else { panic!("not RTP") };
            prop_assert_eq!((p.payload_type, p.marker, p.sequence, p.timestamp, p.ssrc), (pt, marker, seq, ts, ssrc));
            prop_assert_eq!(p.payload, &payload[..]);
        }
    }
}
