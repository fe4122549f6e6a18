//! Anchoring SDP on the RTP relay.
//!
//! Written by hand on purpose: the SDP crates (webrtc-sdp, sdp) parse into a model and
//! re-serialise it, which reorders and normalises attributes the endpoints negotiated. A
//! media-anchoring B2BUA must change only the addresses (and its own origin line) and pass every
//! codec, fmtp and direction attribute byte-for-byte, so this is a line rewriter that validates
//! just what it needs. Full offer/answer semantics live in `veertien-media`.

use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP body is not UTF-8 text")]
    NotText,
    #[error("SDP line {line}: {what}")]
    Line { line: usize, what: String },
    #[error("SDP has no {0} line")]
    Missing(&'static str),
    #[error("SDP offers no audio stream")]
    NoAudio,
    #[error("SDP audio stream has no connection address (no c= line at session or media level)")]
    NoConnection,
}

/// Our origin (`o=`) on one leg. RFC 4566 5.2 wants the version to increase whenever the
/// session description we present changes, so each leg remembers what it last presented.
#[derive(Debug, Clone)]
pub struct Origin {
    session_id: u64,
    version: u64,
    last: Option<Vec<u8>>,
}

impl Origin {
    pub fn new(session_id: u64) -> Self {
        Origin { session_id, version: 0, last: None }
    }
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// The result of anchoring one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchored {
    /// The body to present on the other leg.
    pub body: Bytes,
    /// Where the sender of the original body wants to receive audio; `None` when the audio
    /// stream is disabled (port 0) or put on hold with the RFC 2543 `0.0.0.0` address.
    pub remote_rtp: Option<SocketAddr>,
}

/// Rewrites `input` so that its audio stream points at `anchor`, disables other streams
/// (the relay carries one audio stream), drops attributes that name the sender's transport
/// addresses, and replaces the origin with ours.
pub fn anchor(input: &[u8], anchor: SocketAddr, origin: &mut Origin) -> Result<Anchored, SdpError> {
    let text = std::str::from_utf8(input).map_err(|_| SdpError::NotText)?;
    let ip = anchor.ip();
    let (net, addr_type) = match ip {
        IpAddr::V4(_) => ("IN", "IP4"),
        IpAddr::V6(_) => ("IN", "IP6"),
    };
    let mut out_lines: Vec<String> = Vec::new();
    let mut origin_idx = None;
    let mut saw_version = false;
    let mut session_conn: Option<Option<IpAddr>> = None;
    // Per m= section: (is our audio stream, port, media-level connection)
    let mut in_audio = false;
    let mut audio_found = false;
    let mut audio_port: Option<u16> = None;
    let mut audio_conn: Option<Option<IpAddr>> = None;
    let mut seen_media = false;

    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        let bad = |what: &str| SdpError::Line { line: line_no, what: what.to_owned() };
        let (kind, value) = line
            .split_once('=')
            .filter(|(k, _)| k.len() == 1)
            .ok_or_else(|| bad("expected <type>=<value>"))?;
        if !saw_version {
            if kind != "v" || value != "0" {
                return Err(bad("first line must be v=0"));
            }
            saw_version = true;
            out_lines.push(line.to_owned());
            continue;
        }
        match kind {
            "o" => {
                if origin_idx.is_some() {
                    return Err(bad("second o= line"));
                }
                if value.split(' ').filter(|f| !f.is_empty()).count() != 6 {
                    return Err(bad("o= needs 6 fields"));
                }
                origin_idx = Some(out_lines.len());
                out_lines.push(String::new());
            }
            "c" => {
                let parsed = parse_connection(value).map_err(|w| bad(&w))?;
                if seen_media {
                    if in_audio {
                        audio_conn = Some(parsed);
                    }
                } else {
                    session_conn = Some(parsed);
                }
                out_lines.push(format!("c={net} {addr_type} {ip}"));
            }
            "m" => {
                seen_media = true;
                let mut fields = value.splitn(3, ' ');
                let media = fields.next().unwrap_or_default();
                let port_field = fields.next().ok_or_else(|| bad("m= needs media, port, proto and formats"))?;
                let rest = fields.next().ok_or_else(|| bad("m= needs media, port, proto and formats"))?;
                let port_str = port_field.split('/').next().unwrap_or_default();
                let port: u16 = port_str.parse().map_err(|_| bad("m= port is not a number 0-65535"))?;
                if media == "audio" && !audio_found {
                    audio_found = true;
                    in_audio = true;
                    audio_port = Some(port);
                    let ours = if port == 0 { 0 } else { anchor.port() };
                    out_lines.push(format!("m=audio {ours} {rest}"));
                } else {
                    in_audio = false;
                    out_lines.push(format!("m={media} 0 {rest}"));
                }
            }
            "a" => {
                let name = value.split(':').next().unwrap_or_default();
                // These name the sender's own transport addresses; passing them through
                // would steer media around the relay.
                let drop = matches!(name, "rtcp" | "candidate" | "remote-candidates" | "end-of-candidates")
                    || name.starts_with("ice-");
                if !drop {
                    out_lines.push(line.to_owned());
                }
            }
            _ => out_lines.push(line.to_owned()),
        }
    }
    if !saw_version {
        return Err(SdpError::Missing("v="));
    }
    let origin_idx = origin_idx.ok_or(SdpError::Missing("o="))?;
    if !audio_found {
        return Err(SdpError::NoAudio);
    }
    let port = audio_port.unwrap_or(0);
    let conn = match audio_conn.or(session_conn) {
        Some(c) => c,
        None if port == 0 => None,
        None => return Err(SdpError::NoConnection),
    };
    let remote_rtp = match conn {
        Some(ip) if port != 0 && !ip.is_unspecified() => Some(SocketAddr::new(ip, port)),
        _ => None,
    };

    let mut without_origin = Vec::new();
    for (i, l) in out_lines.iter().enumerate() {
        if i != origin_idx {
            without_origin.extend_from_slice(l.as_bytes());
            without_origin.extend_from_slice(b"\r\n");
        }
    }
    if origin.last.as_deref() != Some(without_origin.as_slice()) {
        origin.version += 1;
        origin.last = Some(without_origin);
    }
    out_lines[origin_idx] = format!(
        "o=veertien {} {} {net} {addr_type} {ip}",
        origin.session_id, origin.version
    );
    let mut body = String::with_capacity(out_lines.iter().map(|l| l.len() + 2).sum());
    for l in &out_lines {
        body.push_str(l);
        body.push_str("\r\n");
    }
    Ok(Anchored { body: Bytes::from(body), remote_rtp })
}

fn parse_connection(value: &str) -> Result<Option<IpAddr>, String> {
    let mut f = value.split(' ');
    let (net, kind, addr) = (f.next(), f.next(), f.next());
    if net != Some("IN") || f.next().is_some() {
        return Err("c= must be `IN IP4|IP6 <address>`".to_owned());
    }
    // Multicast forms carry /ttl and /count suffixes.
    let addr = addr.unwrap_or_default().split('/').next().unwrap_or_default();
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("c= address `{addr}` is not an IP address"))?;
    match (kind, ip) {
        (Some("IP4"), IpAddr::V4(_)) | (Some("IP6"), IpAddr::V6(_)) => Ok(Some(ip)),
        _ => Err("c= address type does not match the address".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtcp:49171\r\na=sendrecv\r\nm=video 51372 RTP/AVP 31\r\n";

    fn relay() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    #[test]
    fn audio_points_at_relay_and_codecs_survive() {
        let mut o = Origin::new(77);
        let a = anchor(OFFER.as_bytes(), relay(), &mut o).unwrap();
        let s = std::str::from_utf8(&a.body).unwrap();
        assert_eq!(a.remote_rtp, Some("192.0.2.10:49170".parse().unwrap()));
        assert!(s.contains("c=IN IP4 127.0.0.1\r\n"));
        assert!(s.contains("m=audio 40000 RTP/AVP 8 0 101\r\n"));
        assert!(s.contains("a=fmtp:101 0-15\r\n"));
        assert!(s.contains("m=video 0 RTP/AVP 31\r\n"), "{s}");
        assert!(!s.contains("192.0.2.10"), "remote address leaked: {s}");
        assert!(!s.contains("a=rtcp:"));
        assert!(s.starts_with("v=0\r\no=veertien 77 1 IN IP4 127.0.0.1\r\n"));
    }

    #[test]
    fn version_increases_only_when_content_changes() {
        let mut o = Origin::new(1);
        anchor(OFFER.as_bytes(), relay(), &mut o).unwrap();
        anchor(OFFER.as_bytes(), relay(), &mut o).unwrap();
        assert_eq!(o.version(), 1);
        let held = OFFER.replace("a=sendrecv", "a=sendonly");
        anchor(held.as_bytes(), relay(), &mut o).unwrap();
        assert_eq!(o.version(), 2);
    }

    #[test]
    fn media_level_connection_wins_and_hold_address_gives_no_target() {
        let sdp = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 0\nc=IN IP4 10.0.0.2\n";
        let a = anchor(sdp.as_bytes(), relay(), &mut Origin::new(1)).unwrap();
        assert_eq!(a.remote_rtp, Some("10.0.0.2:5004".parse().unwrap()));
        let hold = sdp.replace("10.0.0.2", "0.0.0.0");
        let a = anchor(hold.as_bytes(), relay(), &mut Origin::new(1)).unwrap();
        assert_eq!(a.remote_rtp, None);
    }

    #[test]
    fn errors_name_the_fault() {
        let e = anchor(b"o=- 1 1 IN IP4 1.2.3.4\r\n", relay(), &mut Origin::new(1)).unwrap_err();
        assert_eq!(e.to_string(), "SDP line 1: first line must be v=0");
        let e = anchor(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", relay(), &mut Origin::new(1))
            .unwrap_err();
        assert_eq!(e, SdpError::NoConnection);
        let e = anchor(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 host.example\r\n", relay(), &mut Origin::new(1))
            .unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = anchor(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=video 4 RTP/AVP 31\r\n", relay(), &mut Origin::new(1))
            .unwrap_err();
        assert_eq!(e, SdpError::NoAudio);
        // Found by the property test: a second (blank) origin used to leave an empty line.
        let e = anchor(format!("{OFFER}o=     \r\n").as_bytes(), relay(), &mut Origin::new(1)).unwrap_err();
        assert_eq!(e.to_string(), "SDP line 13: second o= line");
        let e = anchor(b"v=0\r\nm=audio 99999 RTP/AVP 0\r\n", relay(), &mut Origin::new(1)).unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
    }

    fn sdp_line() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just("v=0".to_owned()),
            "o=[a-z0-9 .]{0,30}",
            "c=IN IP[46] [0-9a-f.:]{0,20}(/[0-9]{1,3})?",
            "m=(audio|video) [0-9]{0,6}(/2)? RTP/AVP( [0-9]{1,3}){0,3}",
            "a=[a-z-]{1,12}(:[ -~]{0,20})?",
            "[a-z]=[ -~]{0,20}",
            "[ -~]{0,20}",
        ]
    }

    proptest::proptest! {
        #[test]
        fn anchoring_never_panics_and_is_stable(
            valid_head in proptest::bool::ANY,
            lines in proptest::collection::vec(sdp_line(), 0..12),
            crlf in proptest::bool::ANY,
        ) {
            // Half the cases start from a valid description so the rewrite itself is exercised.
            let head = ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0", "m=audio 4000 RTP/AVP 0"];
            let all: Vec<String> = if valid_head {
                head.iter().map(|l| l.to_string()).chain(lines).collect()
            } else {
                lines
            };
            let text = all.join(if crlf { "\r\n" } else { "\n" });
            let mut o = Origin::new(9);
            if let Ok(a) = anchor(text.as_bytes(), relay(), &mut o) {
                let out = std::str::from_utf8(&a.body).unwrap();
                proptest::prop_assert!(out.starts_with("v=0\r\no=veertien 9 "));
                // Anchoring our own output again changes nothing: it already points at the relay.
                let again = anchor(&a.body, relay(), &mut o).unwrap();
                proptest::prop_assert_eq!(&again.body, &a.body);
                proptest::prop_assert_eq!(again.remote_rtp.map(|r| r.ip()), a.remote_rtp.map(|_| relay().ip()));
            }
        }
    }

    #[test]
    fn ipv6_anchor() {
        let a = anchor(OFFER.as_bytes(), "[::1]:40002".parse().unwrap(), &mut Origin::new(5)).unwrap();
        let s = std::str::from_utf8(&a.body).unwrap();
        assert!(s.contains("c=IN IP6 ::1\r\n"));
        assert!(s.contains("o=veertien 5 1 IN IP6 ::1\r\n"));
    }
}
