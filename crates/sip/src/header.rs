//! Header names (with compact forms), raw header storage and the typed headers the platform
//! needs on its hot path: Via, From/To/Contact (name-addr), CSeq, Content-Type.

use std::fmt;

use bytes::Bytes;

use crate::scan::{self, Cursor, is_token};
use crate::uri::Uri;

static KNOWN: &[(&[u8], HeaderName)] = {
    use HeaderName::*;
    &[
        (b"Via", Via),
        (b"From", From),
        (b"To", To),
        (b"Call-ID", CallId),
        (b"CSeq", CSeq),
        (b"Max-Forwards", MaxForwards),
        (b"Content-Length", ContentLength),
        (b"Content-Type", ContentType),
        (b"Content-Encoding", ContentEncoding),
        (b"Contact", Contact),
        (b"Route", Route),
        (b"Record-Route", RecordRoute),
        (b"Require", Require),
        (b"Proxy-Require", ProxyRequire),
        (b"Supported", Supported),
        (b"Unsupported", Unsupported),
        (b"Accept", Accept),
        (b"Allow", Allow),
        (b"Retry-After", RetryAfter),
        (b"Expires", Expires),
        (b"Subject", Subject),
        (b"Timestamp", Timestamp),
        (b"Server", Server),
        (b"User-Agent", UserAgent),
    ]
};

/// Header names the stack interprets. Everything else is `Other` and kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    ContentLength,
    ContentType,
    ContentEncoding,
    Contact,
    Route,
    RecordRoute,
    Require,
    ProxyRequire,
    Supported,
    Unsupported,
    Accept,
    Allow,
    RetryAfter,
    Expires,
    Subject,
    Timestamp,
    Server,
    UserAgent,
    Other(Bytes),
}

impl HeaderName {
    /// Maps a received header name (full or compact form, any case).
    pub fn from_bytes(name: Bytes) -> HeaderName {
        let n = name.clone();
        Self::from_slice(&n, || name)
    }

    /// Like `from_bytes`, but only materialises the `Bytes` for an unknown name.
    pub(crate) fn from_slice(n: &[u8], owned: impl FnOnce() -> Bytes) -> HeaderName {
        use HeaderName::*;
        if n.len() == 1 {
            return match n[0].to_ascii_lowercase() {
                b'v' => Via,
                b'f' => From,
                b't' => To,
                b'i' => CallId,
                b'l' => ContentLength,
                b'c' => ContentType,
                b'e' => ContentEncoding,
                b'm' => Contact,
                b'k' => Supported,
                b's' => Subject,
                _ => Other(owned()),
            };
        }
        // Dispatch on the first letter so a lookup compares against at most a few names.
        let first = n.first().map(u8::to_ascii_lowercase);
        for (k, v) in KNOWN {
            if k.len() == n.len() && Some(k[0].to_ascii_lowercase()) == first && k.eq_ignore_ascii_case(n) {
                return v.clone();
            }
        }
        Other(owned())
    }

    pub fn as_str(&self) -> &str {
        use HeaderName::*;
        match self {
            Via => "Via",
            From => "From",
            To => "To",
            CallId => "Call-ID",
            CSeq => "CSeq",
            MaxForwards => "Max-Forwards",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            ContentEncoding => "Content-Encoding",
            Contact => "Contact",
            Route => "Route",
            RecordRoute => "Record-Route",
            Require => "Require",
            ProxyRequire => "Proxy-Require",
            Supported => "Supported",
            Unsupported => "Unsupported",
            Accept => "Accept",
            Allow => "Allow",
            RetryAfter => "Retry-After",
            Expires => "Expires",
            Subject => "Subject",
            Timestamp => "Timestamp",
            Server => "Server",
            UserAgent => "User-Agent",
            Other(b) => std::str::from_utf8(b).unwrap_or("X-Invalid"),
        }
    }

    /// Headers that RFC 3261 allows only once in a message.
    pub fn is_single_valued(&self) -> bool {
        use HeaderName::*;
        matches!(self, From | To | CallId | CSeq | MaxForwards | ContentLength | ContentType)
    }
}

impl From<&str> for HeaderName {
    fn from(s: &str) -> Self {
        HeaderName::from_bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line: the value is unfolded and trimmed, otherwise byte-exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: Bytes,
}

/// Headers in message order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub(crate) Vec<Header>);

impl Headers {
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }
    pub fn get(&self, name: &HeaderName) -> Option<&Bytes> {
        self.0.iter().find(|h| &h.name == name).map(|h| &h.value)
    }
    /// Finds an extension header by name (case-insensitive).
    pub fn get_str(&self, name: &str) -> Option<&Bytes> {
        let n = HeaderName::from(name);
        self.get(&n).or_else(|| {
            self.0.iter().find(|h| h.name.as_str().eq_ignore_ascii_case(name)).map(|h| &h.value)
        })
    }
    pub fn all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.0.iter().filter(move |h| &h.name == name).map(|h| &h.value)
    }
    /// All comma-separated elements of every line of a list header (e.g. Require, Allow).
    pub fn list<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.all(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .map(scan::trim_wsp)
            .filter(|e| !e.is_empty())
    }
    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| &h.name == name).count()
    }
    pub fn push(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.0.push(Header { name, value: value.into() });
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// SIP request methods. Methods are case-sensitive (RFC 3261 7.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Info,
    Prack,
    Update,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Other(Bytes),
}

impl Method {
    pub fn from_bytes(b: &[u8]) -> Method {
        match b {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"REGISTER" => Method::Register,
            b"INFO" => Method::Info,
            b"PRACK" => Method::Prack,
            b"UPDATE" => Method::Update,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"PUBLISH" => Method::Publish,
            other => Method::Other(Bytes::copy_from_slice(other)),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(b) => std::str::from_utf8(b).unwrap_or("?"),
        }
    }
    /// True for methods defined by an RFC (answered with 405 if not allowed, not 501).
    pub fn is_known(&self) -> bool {
        !matches!(self, Method::Other(_))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(v: &[u8]) -> Result<CSeq, &'static str> {
        let mut c = Cursor::new(v);
        let (a, b) = c.take_while(|b| b.is_ascii_digit());
        // RFC 3261 8.1.1.5: the sequence number MUST be less than 2**31.
        let seq = scan::parse_u64(&v[a..b]).filter(|&n| n < (1 << 31)).ok_or("Invalid CSeq number")?;
        let ws = c.pos;
        c.skip_ws();
        if c.pos == ws {
            return Err("Malformed CSeq");
        }
        let (ma, mb) = c.token().ok_or("Malformed CSeq")?;
        if !c.at_end() {
            return Err("Malformed CSeq");
        }
        Ok(CSeq { seq: seq as u32, method: Method::from_bytes(&v[ma..mb]) })
    }
}

/// Transport of a Via or of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
    Other,
}

impl Transport {
    pub fn from_bytes(b: &[u8]) -> Transport {
        let up = |s: &[u8]| b.eq_ignore_ascii_case(s);
        if up(b"UDP") {
            Transport::Udp
        } else if up(b"TCP") {
            Transport::Tcp
        } else if up(b"TLS") {
            Transport::Tls
        } else if up(b"SCTP") {
            Transport::Sctp
        } else if up(b"WS") {
            Transport::Ws
        } else if up(b"WSS") {
            Transport::Wss
        } else {
            Transport::Other
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other => "UNKNOWN",
        }
    }
    /// Reliable transports get no retransmissions (RFC 3261 17).
    pub fn is_reliable(&self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// Pushes `item`, starting an empty list with room for one. A Vec's first growth makes room for
/// four, which for a `Via` (~300 bytes) is an allocation over 1 KiB, and glibc consolidates its
/// fast bins before every such request (3 % of the process's CPU under redirect load, plus
/// `unlink_chunk`; docs/PERFORMANCE-sip-load.md), while nearly every message has one Via, one
/// From/To and one Contact.
fn push_one<T>(out: &mut Vec<T>, item: T) {
    if out.capacity() == 0 {
        out.reserve_exact(1);
    }
    out.push(item);
}

/// One via-parm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// The whole via-parm as received (used when copying into responses).
    pub raw: Bytes,
    pub protocol_version: Bytes,
    pub transport: Transport,
    pub transport_raw: Bytes,
    pub host: Bytes,
    pub port: Option<u16>,
    /// `branch`, `received`, `rport`, `maddr` as received.
    pub branch: Option<Bytes>,
    pub received: Option<Bytes>,
    /// `Some(None)` for a bare `;rport` (RFC 3581 request to fill it in).
    pub rport: Option<Option<u16>>,
    pub maddr: Option<Bytes>,
    /// The sent-by text (`host[:port]`) as received, for transaction matching.
    pub sent_by: Bytes,
}

impl Via {
    pub const MAGIC_COOKIE: &'static [u8] = b"z9hG4bK";

    /// Parses a Via header value that may contain several comma-separated via-parms.
    pub fn parse_list(v: &Bytes, out: &mut Vec<Via>) -> Result<(), &'static str> {
        let mut c = Cursor::new(v);
        loop {
            let start = c.pos;
            let name = c.token().ok_or("Malformed Via")?;
            if !c.sep(b'/') {
                return Err("Malformed Via");
            }
            let ver = c.token().ok_or("Malformed Via")?;
            if !c.sep(b'/') {
                return Err("Malformed Via");
            }
            let tr = c.token().ok_or("Malformed Via")?;
            if !v[name.0..name.1].eq_ignore_ascii_case(b"SIP") {
                return Err("Malformed Via");
            }
            let ws = c.pos;
            c.skip_ws();
            if c.pos == ws {
                return Err("Malformed Via");
            }
            let hp = c.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
            let (host, port) = scan::split_hostport(&v[hp.0..hp.1]).ok_or("Malformed Via sent-by")?;
            let host_len = host.len();
            let mut via = Via {
                raw: Bytes::new(),
                protocol_version: v.slice(ver.0..ver.1),
                transport: Transport::from_bytes(&v[tr.0..tr.1]),
                transport_raw: v.slice(tr.0..tr.1),
                host: v.slice(hp.0..hp.0 + host_len),
                port,
                branch: None,
                received: None,
                rport: None,
                maddr: None,
                sent_by: v.slice(hp.0..hp.1),
            };
            while c.sep(b';') {
                let (na, nb) = c.token().ok_or("Malformed Via parameter")?;
                let val = if c.sep(b'=') { Some(c.gen_value()?) } else { None };
                let name = &v[na..nb];
                let val_b = val.map(|(a, b)| v.slice(a..b));
                if name.eq_ignore_ascii_case(b"branch") {
                    let b = val_b.ok_or("Malformed Via branch")?;
                    if !scan::is_token_str(&b) {
                        return Err("Malformed Via branch");
                    }
                    via.branch = Some(b);
                } else if name.eq_ignore_ascii_case(b"received") {
                    let r = val_b.ok_or("Malformed Via received")?;
                    if r.parse_ip().is_none() {
                        return Err("Malformed Via received");
                    }
                    via.received = Some(r);
                } else if name.eq_ignore_ascii_case(b"rport") {
                    via.rport = Some(match val_b {
                        None => None,
                        Some(p) => Some(scan::parse_port(&p).ok_or("Malformed Via rport")?),
                    });
                } else if name.eq_ignore_ascii_case(b"maddr") {
                    via.maddr = Some(val_b.ok_or("Malformed Via maddr")?);
                }
            }
            via.raw = v.slice(start..c.pos);
            push_one(out, via);
            c.skip_ws();
            if c.at_end() {
                return Ok(());
            }
            if !c.sep(b',') {
                return Err("Malformed Via");
            }
        }
    }

    /// True when the branch follows RFC 3261 (magic cookie plus a unique part).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch
            .as_ref()
            .is_some_and(|b| b.len() > Self::MAGIC_COOKIE.len() && b.starts_with(Self::MAGIC_COOKIE))
    }
}

trait ParseIp {
    fn parse_ip(&self) -> Option<std::net::IpAddr>;
}
impl ParseIp for Bytes {
    fn parse_ip(&self) -> Option<std::net::IpAddr> {
        let s = std::str::from_utf8(self).ok()?;
        let s = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(s);
        s.parse().ok()
    }
}

/// A From/To/Contact/Route value: `[display-name] <URI>` or a bare URI, with parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// The whole element as received.
    pub raw: Bytes,
    /// Display name as received (quoted-string including quotes, or the token sequence).
    pub display: Option<Bytes>,
    pub uri: Uri,
    /// Header parameters after the URI, raw, without the leading `;`.
    pub params: Bytes,
    pub tag: Option<Bytes>,
}

impl NameAddr {
    /// Parses one name-addr / addr-spec at the cursor. Stops before a top-level `,` or end.
    fn parse_at(v: &Bytes, c: &mut Cursor<'_>) -> Result<NameAddr, &'static str> {
        let start = c.pos;
        let mut display = None;
        let uri;
        if c.peek() == Some(b'"') {
            let (a, b) = c.quoted_string()?;
            display = Some(v.slice(a..b));
            c.skip_ws();
            uri = Self::bracketed(v, c)?;
        } else if c.peek() == Some(b'<') {
            uri = Self::bracketed(v, c)?;
        } else {
            // Either `token *(LWS token) <uri>` or a bare addr-spec `scheme:...`.
            let (a, b) = c.token().ok_or("Malformed name-addr")?;
            if c.peek() == Some(b':') {
                // addr-spec: it ends at a parameter, separator or whitespace. RFC 3261 20.10:
                // a URI with ',', '?' or ';' must be enclosed in <>.
                c.pos = a;
                let (ua, ub) = c.take_while(|b| !matches!(b, b';' | b',' | b' ' | b'\t'));
                let text = &v[ua..ub];
                if text.contains(&b'?') {
                    return Err("URI with headers must be enclosed in <>");
                }
                uri = Uri::from_bytes(v.slice(ua..ub)).map_err(|e| e.0)?;
            } else {
                let mut end = b;
                loop {
                    c.skip_ws();
                    match c.peek() {
                        Some(b'<') => break,
                        Some(x) if is_token(x) => {
                            end = c.token().map(|r| r.1).unwrap_or(end);
                        }
                        _ => return Err("Malformed display name"),
                    }
                }
                display = Some(v.slice(a..end));
                uri = Self::bracketed(v, c)?;
            }
        }
        let mut tag = None;
        let pstart = c.pos;
        let mut params = Bytes::new();
        while c.sep(b';') {
            let (na, nb) = c.token().ok_or("Malformed header parameter")?;
            let val = if c.sep(b'=') { Some(c.gen_value()?) } else { None };
            if v[na..nb].eq_ignore_ascii_case(b"tag") {
                let (a, b) = val.ok_or("Malformed tag")?;
                if !scan::is_token_str(&v[a..b]) {
                    return Err("Malformed tag");
                }
                tag = Some(v.slice(a..b));
            }
            params = v.slice(pstart..c.pos);
        }
        if !params.is_empty() {
            // drop the leading SWS ";" for callers
            let p = &params[..];
            let semi = memchr::memchr(b';', p).map_or(0, |i| i + 1);
            params = params.slice(semi..);
        }
        Ok(NameAddr { raw: v.slice(start..c.pos), display, uri, params, tag })
    }

    fn bracketed(v: &Bytes, c: &mut Cursor<'_>) -> Result<Uri, &'static str> {
        if c.peek() != Some(b'<') {
            return Err("Malformed name-addr");
        }
        c.pos += 1;
        let (a, b) = c.take_while(|b| b != b'>' && b != b'<' && b > b' ' && b != 0x7f);
        if c.peek() != Some(b'>') {
            return Err("Malformed URI in name-addr");
        }
        c.pos += 1;
        c.skip_ws();
        Uri::from_bytes(v.slice(a..b)).map_err(|e| e.0)
    }

    /// Parses a single-valued From/To value.
    pub fn parse_single(v: &Bytes) -> Result<NameAddr, &'static str> {
        let mut c = Cursor::new(v);
        let na = Self::parse_at(v, &mut c)?;
        c.skip_ws();
        if !c.at_end() {
            return Err("Malformed name-addr");
        }
        Ok(na)
    }

    /// Parses a comma-separated list (Contact, Route, Record-Route).
    pub fn parse_list(v: &Bytes, out: &mut Vec<NameAddr>) -> Result<(), &'static str> {
        let mut c = Cursor::new(v);
        loop {
            push_one(out, Self::parse_at(v, &mut c)?);
            c.skip_ws();
            if c.at_end() {
                return Ok(());
            }
            if !c.sep(b',') {
                return Err("Malformed name-addr list");
            }
        }
    }

    pub fn param(&self, name: &str) -> Option<Option<&[u8]>> {
        scan::find_param(&self.params, name.as_bytes())
    }
}

/// Contact is either `*` (REGISTER only) or a list of name-addrs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact {
    Star,
    List(Vec<NameAddr>),
}

/// `Content-Type` / an Accept media-range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType {
    pub mtype: Bytes,
    pub subtype: Bytes,
    /// Raw parameters without the leading `;`.
    pub params: Bytes,
}

impl MediaType {
    pub fn parse(v: &Bytes) -> Result<MediaType, &'static str> {
        let mut c = Cursor::new(v);
        let m = Self::parse_at(v, &mut c)?;
        c.skip_ws();
        if !c.at_end() {
            return Err("Malformed Content-Type");
        }
        Ok(m)
    }
    fn parse_at(v: &Bytes, c: &mut Cursor<'_>) -> Result<MediaType, &'static str> {
        let (a, b) = c.token().ok_or("Malformed Content-Type")?;
        if !c.sep(b'/') {
            return Err("Malformed Content-Type");
        }
        let (sa, sb) = c.token().ok_or("Malformed Content-Type")?;
        let pstart = c.pos;
        let mut pend = pstart;
        while c.sep(b';') {
            c.token().ok_or("Malformed Content-Type")?;
            if !c.sep(b'=') {
                return Err("Malformed Content-Type");
            }
            c.gen_value()?;
            pend = c.pos;
        }
        let params = if pend > pstart {
            let p = &v[pstart..pend];
            let semi = memchr::memchr(b';', p).map_or(0, |i| i + 1);
            v.slice(pstart + semi..pend)
        } else {
            Bytes::new()
        };
        Ok(MediaType { mtype: v.slice(a..b), subtype: v.slice(sa..sb), params })
    }
    /// Parses an Accept list; an empty header yields an empty list.
    pub fn parse_list(v: &Bytes, out: &mut Vec<MediaType>) -> Result<(), &'static str> {
        let mut c = Cursor::new(v);
        if c.at_end() {
            return Ok(());
        }
        loop {
            push_one(out, Self::parse_at(v, &mut c)?);
            c.skip_ws();
            if c.at_end() {
                return Ok(());
            }
            if !c.sep(b',') {
                return Err("Malformed Accept");
            }
        }
    }
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype.as_bytes()) && self.subtype.eq_ignore_ascii_case(subtype.as_bytes())
    }
    /// Whether this media-range (possibly with `*`) accepts the given type.
    pub fn matches(&self, mtype: &str, subtype: &str) -> bool {
        (&self.mtype[..] == b"*" || self.mtype.eq_ignore_ascii_case(mtype.as_bytes()))
            && (&self.subtype[..] == b"*" || self.subtype.eq_ignore_ascii_case(subtype.as_bytes()))
    }
    pub fn param(&self, name: &str) -> Option<&[u8]> {
        scan::find_param(&self.params, name.as_bytes()).flatten().map(|v| {
            if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' { &v[1..v.len() - 1] } else { v }
        })
    }
}

/// Validates a Call-ID: `word ["@" word]`.
pub(crate) fn valid_call_id(v: &[u8]) -> bool {
    let mut parts = v.splitn(2, |&b| b == b'@');
    let w1 = parts.next().unwrap_or_default();
    let ok = |w: &[u8]| !w.is_empty() && w.iter().all(|&b| scan::is_word(b));
    ok(w1) && parts.next().is_none_or(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn compact_and_case_insensitive_names() {
        assert_eq!(HeaderName::from_bytes(b("v")), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b("MaX-fOrWaRdS")), HeaderName::MaxForwards);
        assert_eq!(HeaderName::from_bytes(b("l")), HeaderName::ContentLength);
        assert_eq!(HeaderName::from_bytes(b("X-Foo")).as_str(), "X-Foo");
    }

    #[test]
    fn via_with_lws_and_params() {
        let mut out = Vec::new();
        Via::parse_list(
            &b("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8  ,  SIP / 2.0 / UDP 192.168.255.111:5061;received=192.0.2.1;rport"),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].transport, Transport::Tcp);
        assert_eq!(&out[0].branch.as_ref().unwrap()[..], b"z9hG4bK9ikj8");
        assert_eq!(out[1].port, Some(5061));
        assert_eq!(out[1].rport, Some(None));
        assert_eq!(&out[1].received.as_ref().unwrap()[..], b"192.0.2.1");
        let mut out = Vec::new();
        assert!(Via::parse_list(&b("SIP/2.0/UDP 192.0.2.15;;,;,,"), &mut out).is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse_single(&b(r#""J Rosenberg \\\""  <sip:jdrosen@example.com> ; tag = 98asjd8"#)).unwrap();
        assert_eq!(&n.tag.unwrap()[..], b"98asjd8");
        let n = NameAddr::parse_single(&b("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n")).unwrap();
        assert_eq!(&n.uri.sip().unwrap().host[..], b"chair-dnrc.example.com");
        let n = NameAddr::parse_single(&b("caller<sip:caller@example.com>;tag=323")).unwrap();
        assert_eq!(&n.display.unwrap()[..], b"caller");
        assert!(NameAddr::parse_single(&b(r#""Mr. J. User <sip:j.user@example.com>"#)).is_err());
        assert!(NameAddr::parse_single(&b("Bell, Alexander <sip:a.g.bell@example.com>;tag=43")).is_err());
        assert!(NameAddr::parse_single(&b(r#""Watson, Thomas" < sip:t.watson@example.org >"#)).is_err());
        assert!(NameAddr::parse_single(&b("sip:user@example.com?Route=%3Csip:sip.example.com%3E")).is_err());
    }

    #[test]
    fn cseq_bounds() {
        assert_eq!(CSeq::parse(b"0009 INVITE").unwrap().seq, 9);
        assert!(CSeq::parse(b"36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse(b"2147483648 INVITE").is_err());
        assert!(CSeq::parse(b"1INVITE").is_err());
    }
}
