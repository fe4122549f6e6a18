//! SDP offer/answer (RFC 4566 syntax, RFC 3264 model) for G.711 audio with RFC 4733
//! telephone-event.
//!
//! Parsing uses the `sdp-types` crate; the negotiation rules are ours: exactly one audio
//! stream over plain RTP/AVP, PCMU or PCMA at 8 kHz mono, telephone-event/8000 with the
//! offerer's dynamic payload type. Other streams are declined with port 0, as RFC 3264
//! §6 requires. Real phones send assorted extras (opus, video, rtcp-fb, ssrc lines,
//! LF-only line ends); those are ignored, not errors.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use sdp_types::Session;

use crate::g711::Codec;

/// Why an SDP body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP syntax error: {0}")]
    Syntax(String),
    #[error("SDP has no audio stream")]
    NoAudio,
    #[error("audio stream uses transport {0}, only RTP/AVP is supported")]
    UnsupportedTransport(String),
    #[error("no common audio codec: offered {offered}, supported PCMU/8000 and PCMA/8000")]
    NoCommonCodec { offered: String },
    #[error("audio stream has no usable connection address: {0}")]
    BadConnection(String),
    #[error("the answer declined the audio stream")]
    Declined,
}

impl SdpError {
    /// The SIP response an INVITE carrying this offer should get: 488 Not Acceptable Here
    /// for negotiation failures, 400 for unparseable bodies.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::Syntax(_) | SdpError::BadConnection(_) => 400,
            _ => 488,
        }
    }
}

/// Media direction (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attr(s: &str) -> Option<Direction> {
        match s {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The direction to answer with.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether we should send media.
    pub fn we_send(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether we should expect media (and so run the media timeout).
    pub fn we_receive(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// What we are willing to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPolicy {
    /// Codecs we accept, in our order of preference.
    pub codecs: Vec<Codec>,
    /// Offer/accept RFC 4733 telephone-event.
    pub telephone_event: bool,
    /// When answering, pick the offerer's most preferred codec among ours (RFC 3264
    /// §6.1 recommends it) instead of our own preference.
    pub honour_offer_order: bool,
    /// Payload type we use for telephone-event in our own offers.
    pub telephone_event_pt: u8,
}

impl Default for MediaPolicy {
    fn default() -> Self {
        // A-law first: it is the norm on Dutch and European trunks.
        MediaPolicy { codecs: vec![Codec::Pcma, Codec::Pcmu], telephone_event: true, honour_offer_order: true, telephone_event_pt: 101 }
    }
}

/// Our side of the session description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalEndpoint {
    pub addr: IpAddr,
    pub port: u16,
    /// `o=` session id; keep it for the dialog's lifetime.
    pub session_id: u64,
    /// `o=` version; increment for every new offer or answer in the dialog.
    pub session_version: u64,
}

/// The agreed audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    /// Payload type of the audio on the wire (static 0/8 unless the peer mapped it dynamically).
    pub payload_type: u8,
    /// Payload type of telephone-event, when both sides support it.
    pub telephone_event_pt: Option<u8>,
    /// Where to send RTP; `None` when the peer gave no address (hold with 0.0.0.0).
    pub remote: Option<SocketAddr>,
    /// Our direction after negotiation.
    pub direction: Direction,
    /// Packet time the peer asked to receive, if any (ms).
    pub remote_ptime: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Format {
    pt: u8,
    name: String,
    clock: u32,
    channels: u32,
    fmtp: Option<String>,
}

#[derive(Debug, Clone)]
struct AudioStream {
    index: usize,
    formats: Vec<Format>,
    remote: Option<SocketAddr>,
    direction: Direction,
    ptime: Option<u32>,
}

fn parse(body: &str) -> Result<Session, SdpError> {
    Session::parse(body.as_bytes()).map_err(|e| SdpError::Syntax(e.to_string()))
}

fn is_rtp_avp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP")
}

fn formats(m: &sdp_types::Media) -> Result<Vec<Format>, SdpError> {
    let mut out = Vec::new();
    for f in m.fmt.split_ascii_whitespace() {
        let pt: u8 = f.parse().ok().filter(|p| *p < 128).ok_or_else(|| SdpError::Syntax(format!("bad payload type {f:?} in m=audio")))?;
        let mut fmt = match pt {
            0 => Format { pt, name: "PCMU".into(), clock: 8000, channels: 1, fmtp: None },
            8 => Format { pt, name: "PCMA".into(), clock: 8000, channels: 1, fmtp: None },
            _ => Format { pt, name: String::new(), clock: 0, channels: 1, fmtp: None },
        };
        for a in &m.attributes {
            let Some(v) = &a.value else { continue };
            let Some((p, rest)) = v.trim().split_once(char::is_whitespace) else { continue };
            if p.parse::<u8>().ok() != Some(pt) {
                continue;
            }
            if a.attribute.eq_ignore_ascii_case("rtpmap") {
                let mut parts = rest.trim().split('/');
                fmt.name = parts.next().unwrap_or("").trim().to_string();
                fmt.clock = parts.next().and_then(|c| c.trim().parse().ok()).unwrap_or(0);
                fmt.channels = parts.next().and_then(|c| c.trim().parse().ok()).unwrap_or(1);
            } else if a.attribute.eq_ignore_ascii_case("fmtp") {
                fmt.fmtp = Some(rest.trim().to_string());
            }
        }
        out.push(fmt);
    }
    Ok(out)
}

fn direction_of(attrs: &[sdp_types::Attribute]) -> Option<Direction> {
    attrs.iter().rev().find_map(|a| Direction::from_attr(&a.attribute.to_ascii_lowercase()))
}

/// Finds the first usable audio stream; returns (stream, all media lines).
fn audio_stream(s: &Session) -> Result<AudioStream, SdpError> {
    let mut unsupported_transport = None;
    for (index, m) in s.medias.iter().enumerate() {
        if !m.media.eq_ignore_ascii_case("audio") || m.port == 0 {
            continue;
        }
        if !is_rtp_avp(&m.proto) {
            unsupported_transport.get_or_insert(m.proto.clone());
            continue;
        }
        let conn = m.connections.first().or(s.connection.as_ref()).ok_or_else(|| SdpError::BadConnection("no c= line for the audio stream".into()))?;
        let ip = conn
            .try_address()
            .map(|a| a.ip)
            .map_err(|_| SdpError::BadConnection(format!("{:?} is not an IP address", conn.connection_address)))?;
        let mut direction = direction_of(&m.attributes).or_else(|| direction_of(&s.attributes)).unwrap_or(Direction::SendRecv);
        let remote = if ip.is_unspecified() {
            // RFC 2543-style hold: c=0.0.0.0 means "do not send to me".
            direction = match direction {
                Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
                _ => Direction::Inactive,
            };
            None
        } else {
            Some(SocketAddr::new(ip, m.port))
        };
        let ptime = m.get_first_attribute_value("ptime").flatten().and_then(|v| v.trim().parse().ok());
        return Ok(AudioStream { index, formats: formats(m)?, remote, direction, ptime });
    }
    Err(match unsupported_transport {
        Some(p) => SdpError::UnsupportedTransport(p),
        None => SdpError::NoAudio,
    })
}

fn g711_of(f: &Format) -> Option<Codec> {
    if f.clock != 8000 || f.channels != 1 {
        return None;
    }
    Codec::from_name(&f.name)
}

fn telephone_event_of(fs: &[Format]) -> Option<u8> {
    fs.iter().find(|f| f.name.eq_ignore_ascii_case("telephone-event") && f.clock == 8000).map(|f| f.pt)
}

fn describe(fs: &[Format]) -> String {
    let v: Vec<String> = fs
        .iter()
        .map(|f| if f.name.is_empty() { format!("{} (no rtpmap)", f.pt) } else { format!("{}/{}", f.name, f.clock) })
        .collect();
    if v.is_empty() { "nothing".into() } else { v.join(", ") }
}

fn write_header(out: &mut String, local: &LocalEndpoint) {
    let ipv = if local.addr.is_ipv4() { "IP4" } else { "IP6" };
    let _ = write!(
        out,
        "v=0\r\no=veertien {} {} IN {ipv} {}\r\ns=veertien\r\nc=IN {ipv} {}\r\nt=0 0\r\n",
        local.session_id, local.session_version, local.addr, local.addr
    );
}

fn write_audio(out: &mut String, port: u16, codecs: &[(Codec, u8)], te: Option<u8>, direction: Direction) {
    let mut fmts: Vec<String> = codecs.iter().map(|(_, pt)| pt.to_string()).collect();
    fmts.extend(te.map(|p| p.to_string()));
    let _ = write!(out, "m=audio {port} RTP/AVP {}\r\n", fmts.join(" "));
    for (c, pt) in codecs {
        let _ = write!(out, "a=rtpmap:{pt} {}/8000\r\n", c.name());
    }
    if let Some(p) = te {
        let _ = write!(out, "a=rtpmap:{p} telephone-event/8000\r\na=fmtp:{p} 0-16\r\n");
    }
    let _ = write!(out, "a=ptime:20\r\na={}\r\n", direction.attr());
}

/// Answers an offer: picks the codec, and returns the agreed stream plus the answer body.
pub fn answer(offer: &str, policy: &MediaPolicy, local: &LocalEndpoint) -> Result<(Negotiated, String), SdpError> {
    let session = parse(offer)?;
    let audio = audio_stream(&session)?;
    let offered: Vec<(Codec, u8)> = audio.formats.iter().filter_map(|f| g711_of(f).map(|c| (c, f.pt))).filter(|(c, _)| policy.codecs.contains(c)).collect();
    let chosen = if policy.honour_offer_order {
        offered.first().copied()
    } else {
        policy.codecs.iter().find_map(|c| offered.iter().find(|(o, _)| o == c).copied())
    };
    let Some((codec, payload_type)) = chosen else {
        return Err(SdpError::NoCommonCodec { offered: describe(&audio.formats) });
    };
    let te = if policy.telephone_event { telephone_event_of(&audio.formats) } else { None };
    let direction = audio.direction.reversed();
    let neg = Negotiated { codec, payload_type, telephone_event_pt: te, remote: audio.remote, direction, remote_ptime: audio.ptime };

    let mut out = String::with_capacity(300);
    write_header(&mut out, local);
    for (i, m) in session.medias.iter().enumerate() {
        if i == audio.index {
            write_audio(&mut out, local.port, &[(codec, payload_type)], te, direction);
        } else {
            // Declined stream: same media, proto and formats, port 0 (RFC 3264 §6).
            let _ = write!(out, "m={} 0 {} {}\r\n", m.media, m.proto, m.fmt);
        }
    }
    Ok((neg, out))
}

/// Builds an offer (for an outbound leg) with the policy's codecs in order.
pub fn offer(policy: &MediaPolicy, local: &LocalEndpoint) -> String {
    let codecs: Vec<(Codec, u8)> = policy.codecs.iter().map(|c| (*c, c.payload_type())).collect();
    let te = policy.telephone_event.then_some(policy.telephone_event_pt);
    let mut out = String::with_capacity(300);
    write_header(&mut out, local);
    write_audio(&mut out, local.port, &codecs, te, Direction::SendRecv);
    out
}

/// Reads the answer to an offer we made with `policy`.
pub fn accept_answer(answer: &str, policy: &MediaPolicy) -> Result<Negotiated, SdpError> {
    let session = parse(answer)?;
    if !session.medias.iter().any(|m| m.media.eq_ignore_ascii_case("audio") && m.port != 0) {
        return Err(if session.medias.iter().any(|m| m.media.eq_ignore_ascii_case("audio")) { SdpError::Declined } else { SdpError::NoAudio });
    }
    let audio = audio_stream(&session)?;
    // The answerer's first listed format that we offered is the one it will send.
    let chosen = audio.formats.iter().filter_map(|f| g711_of(f).map(|c| (c, f.pt))).find(|(c, _)| policy.codecs.contains(c));
    let Some((codec, payload_type)) = chosen else {
        return Err(SdpError::NoCommonCodec { offered: describe(&audio.formats) });
    };
    let te = if policy.telephone_event { telephone_event_of(&audio.formats) } else { None };
    Ok(Negotiated { codec, payload_type, telephone_event_pt: te, remote: audio.remote, direction: audio.direction.reversed(), remote_ptime: audio.ptime })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: LocalEndpoint = LocalEndpoint { addr: IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)), port: 40000, session_id: 77, session_version: 1 };

    // SIPp's built-in UAC offer (uac_pcap scenario).
    const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-11,16\r\n";

    // What baresip 1.x offers by default (LF line ends, several codecs, extras).
    const BARESIP: &str = "v=0\no=- 1863542329 4112283419 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\na=tool:baresip 1.0.0\nm=audio 10370 RTP/AVP 111 9 0 8 101\nb=AS:61\na=rtpmap:111 opus/48000/2\na=fmtp:111 stereo=1;sprop-stereo=1\na=rtpmap:9 G722/8000\na=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\na=rtcp-rsize\na=sendrecv\na=label:1\na=ssrc:2940102917 cname:sip:alice@example.net\n";

    #[test]
    fn answers_sipp_with_pcma_and_its_event_pt() {
        let (neg, body) = answer(SIPP, &MediaPolicy::default(), &LOCAL).unwrap();
        assert_eq!(neg.codec, Codec::Pcma);
        assert_eq!(neg.payload_type, 8);
        assert_eq!(neg.telephone_event_pt, Some(101));
        assert_eq!(neg.remote, Some("127.0.0.1:6000".parse().unwrap()));
        assert_eq!(neg.direction, Direction::SendRecv);
        assert!(body.contains("m=audio 40000 RTP/AVP 8 101\r\n"), "{body}");
        assert!(body.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(body.contains("c=IN IP4 127.0.0.1\r\n"));
        // Our answer is valid SDP and reads back as the same agreement.
        let back = accept_answer(&body, &MediaPolicy::default()).unwrap();
        assert_eq!((back.codec, back.payload_type, back.telephone_event_pt), (Codec::Pcma, 8, Some(101)));
    }

    #[test]
    fn answers_baresip_honouring_its_order() {
        let (neg, body) = answer(BARESIP, &MediaPolicy::default(), &LOCAL).unwrap();
        assert_eq!(neg.codec, Codec::Pcmu, "PCMU is baresip's first G.711");
        assert!(body.contains("m=audio 40000 RTP/AVP 0 101\r\n"));
        let ours = MediaPolicy { honour_offer_order: false, ..MediaPolicy::default() };
        let (neg, _) = answer(BARESIP, &ours, &LOCAL).unwrap();
        assert_eq!(neg.codec, Codec::Pcma);
    }

    #[test]
    fn no_common_codec_is_488_with_what_was_offered() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 9 111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:111 opus/48000/2\r\n";
        let e = answer(offer, &MediaPolicy::default(), &LOCAL).unwrap_err();
        assert_eq!(e.sip_status(), 488);
        assert_eq!(e.to_string(), "no common audio codec: offered G722/8000, opus/48000, supported PCMU/8000 and PCMA/8000");
        // PCMU at the wrong clock rate is not PCMU.
        let odd = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 96\r\na=rtpmap:96 PCMU/16000\r\n";
        assert!(matches!(answer(odd, &MediaPolicy::default(), &LOCAL), Err(SdpError::NoCommonCodec { .. })));
    }

    #[test]
    fn srtp_only_video_only_and_garbage_are_refused() {
        let savp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/SAVP 0\r\n";
        assert_eq!(answer(savp, &MediaPolicy::default(), &LOCAL).unwrap_err(), SdpError::UnsupportedTransport("RTP/SAVP".into()));
        let video = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 5004 RTP/AVP 96\r\n";
        assert_eq!(answer(video, &MediaPolicy::default(), &LOCAL).unwrap_err(), SdpError::NoAudio);
        let e = answer("hello", &MediaPolicy::default(), &LOCAL).unwrap_err();
        assert_eq!(e.sip_status(), 400);
        let noc = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";
        assert!(matches!(answer(noc, &MediaPolicy::default(), &LOCAL), Err(SdpError::BadConnection(_))));
    }

    #[test]
    fn extra_streams_are_declined_in_place() {
        let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 5006 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n";
        let (neg, body) = answer(offer, &MediaPolicy::default(), &LOCAL).unwrap();
        assert_eq!(neg.remote, Some("10.0.0.2:5004".parse().unwrap()), "media-level c= wins");
        assert_eq!(neg.telephone_event_pt, None);
        let m: Vec<&str> = body.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(m, vec!["m=video 0 RTP/AVP 96", "m=audio 40000 RTP/AVP 0"]);
    }

    #[test]
    fn hold_directions() {
        let base = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";
        let (n, body) = answer(&format!("{base}a=sendonly\r\n"), &MediaPolicy::default(), &LOCAL).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(body.contains("a=recvonly"));
        let (n, _) = answer(&format!("{base}a=inactive\r\n"), &MediaPolicy::default(), &LOCAL).unwrap();
        assert!(!n.direction.we_send() && !n.direction.we_receive());
        let old = base.replace("c=IN IP4 10.0.0.1", "c=IN IP4 0.0.0.0");
        let (n, _) = answer(&old, &MediaPolicy::default(), &LOCAL).unwrap();
        assert_eq!((n.remote, n.direction), (None, Direction::RecvOnly), "we must not send to 0.0.0.0");
    }

    #[test]
    fn our_offer_and_a_real_answer() {
        let local = LocalEndpoint { addr: "::1".parse().unwrap(), ..LOCAL };
        let o = offer(&MediaPolicy { codecs: vec![Codec::Pcmu], ..MediaPolicy::default() }, &local);
        assert!(o.contains("c=IN IP6 ::1\r\n") && o.contains("m=audio 40000 RTP/AVP 0 101\r\n"), "{o}");
        Session::parse(o.as_bytes()).unwrap();
        let ans = "v=0\r\no=- 5 5 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n";
        let n = accept_answer(ans, &MediaPolicy::default()).unwrap();
        assert_eq!((n.codec, n.telephone_event_pt, n.remote), (Codec::Pcmu, Some(96), Some("10.1.1.1:7000".parse().unwrap())));
        let declined = "v=0\r\no=- 5 5 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n";
        assert_eq!(accept_answer(declined, &MediaPolicy::default()), Err(SdpError::Declined));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bodies_never_panic(body in ".{0,400}") {
                let _ = answer(&body, &MediaPolicy::default(), &LOCAL);
                let _ = accept_answer(&body, &MediaPolicy::default());
            }

            #[test]
            fn any_offer_with_a_g711_codec_is_answered_with_it(
                port in 1024u16..65535,
                others in proptest::collection::vec(96u8..128, 0..4),
                pcma in any::<bool>(),
                te in proptest::option::of(96u8..128),
            ) {
                let g711 = if pcma { 8 } else { 0 };
                let mut fmts: Vec<String> = others.iter().map(|p| p.to_string()).collect();
                fmts.push(g711.to_string());
                let mut attrs: String = others.iter().map(|p| format!("a=rtpmap:{p} opus/48000/2\r\n")).collect();
                if let Some(t) = te.filter(|t| !others.contains(t)) {
                    fmts.push(t.to_string());
                    attrs.push_str(&format!("a=rtpmap:{t} telephone-event/8000\r\n"));
                }
                let offer = format!("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\n{attrs}", fmts.join(" "));
                let (neg, body) = answer(&offer, &MediaPolicy::default(), &LOCAL).unwrap();
                prop_assert_eq!(neg.payload_type, g711);
                prop_assert_eq!(neg.remote, Some(SocketAddr::new("10.0.0.1".parse().unwrap(), port)));
                prop_assert_eq!(neg.telephone_event_pt, te.filter(|t| !others.contains(t)));
                let back = accept_answer(&body, &MediaPolicy::default()).unwrap();
                prop_assert_eq!((back.codec, back.telephone_event_pt), (neg.codec, neg.telephone_event_pt));
            }
        }
    }
}
