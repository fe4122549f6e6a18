//! Message framing and parsing (RFC 3261 7 and 25).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::{self, CSeq, Contact, Header, HeaderName, Headers, MediaType, Method, NameAddr, Via};
use crate::scan::{self, is_token};
use crate::uri::Uri;

/// Why a message could not be parsed.
///
/// For a request, `status` is what to answer if a response can still be built (see
/// [`crate::reject_unparseable`]); a response that fails to parse is silently discarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}")]
pub struct ParseError {
    pub status: u16,
    /// Short description of the fault, used in the reason phrase: `Bad Request (<reason>)`.
    pub reason: &'static str,
    /// The input ended before the message did (stream transports: wait for more bytes).
    pub incomplete: bool,
}

impl ParseError {
    pub(crate) fn bad(reason: &'static str) -> Self {
        ParseError { status: 400, reason, incomplete: false }
    }
    fn incomplete(reason: &'static str) -> Self {
        ParseError { status: 400, reason, incomplete: true }
    }
    /// The full reason phrase for a 400 answer, e.g. `Bad Request (Malformed Via)`.
    pub fn reason_phrase(&self) -> String {
        format!("Bad Request ({})", self.reason)
    }
}

/// Typed copies of the headers every component needs, parsed once at receive time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Core {
    pub vias: Vec<Via>,
    pub from: Option<NameAddr>,
    pub to: Option<NameAddr>,
    pub call_id: Option<Bytes>,
    pub cseq: Option<CSeq>,
    pub max_forwards: Option<u8>,
    pub content_type: Option<MediaType>,
    pub contact: Option<Contact>,
    /// First syntax fault found in a known header (requests are then answered 400).
    pub defect: Option<&'static str>,
    /// A single-valued header that appeared more than once.
    pub duplicate: Option<HeaderName>,
}

impl Core {
    pub(crate) fn from_headers(headers: &Headers) -> Core {
        let mut core = Core::default();
        for h in headers.iter() {
            core.add(h);
        }
        core
    }

    pub(crate) fn add(&mut self, h: &Header) {
        let v = &h.value;
        let res: Result<(), &'static str> = match &h.name {
            HeaderName::Via => Via::parse_list(v, &mut self.vias),
            HeaderName::From => set_once(&mut self.from, &mut self.duplicate, &h.name, || NameAddr::parse_single(v)),
            HeaderName::To => set_once(&mut self.to, &mut self.duplicate, &h.name, || NameAddr::parse_single(v)),
            HeaderName::CallId => set_once(&mut self.call_id, &mut self.duplicate, &h.name, || {
                if header::valid_call_id(v) { Ok(v.clone()) } else { Err("Malformed Call-ID") }
            }),
            HeaderName::CSeq => set_once(&mut self.cseq, &mut self.duplicate, &h.name, || CSeq::parse(v)),
            HeaderName::MaxForwards => set_once(&mut self.max_forwards, &mut self.duplicate, &h.name, || {
                let n = scan::parse_u64(v).ok_or("Malformed Max-Forwards")?;
                u8::try_from(n).map_err(|_| "Max-Forwards out of range")
            }),
            HeaderName::ContentType => {
                set_once(&mut self.content_type, &mut self.duplicate, &h.name, || MediaType::parse(v))
            }
            HeaderName::Contact => {
                if &v[..] == b"*" {
                    self.contact = Some(Contact::Star);
                    Ok(())
                } else {
                    let mut list = match self.contact.take() {
                        Some(Contact::List(l)) => l,
                        _ => Vec::new(),
                    };
                    let r = NameAddr::parse_list(v, &mut list);
                    self.contact = Some(Contact::List(list));
                    r
                }
            }
            HeaderName::Route | HeaderName::RecordRoute => NameAddr::parse_list(v, &mut Vec::new()),
            _ => Ok(()),
        };
        if let Err(e) = res {
            self.defect.get_or_insert(e);
        }
    }
}

fn set_once<T>(
    slot: &mut Option<T>,
    dup: &mut Option<HeaderName>,
    name: &HeaderName,
    f: impl FnOnce() -> Result<T, &'static str>,
) -> Result<(), &'static str> {
    if slot.is_some() {
        dup.get_or_insert_with(|| name.clone());
        return Ok(());
    }
    *slot = Some(f()?);
    Ok(())
}

/// A parsed SIP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Bytes,
    pub(crate) headers: Headers,
    pub(crate) body: Bytes,
    pub(crate) core: Core,
}

/// A parsed SIP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) reason: Bytes,
    pub(crate) headers: Headers,
    pub(crate) body: Bytes,
    pub(crate) core: Core,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Message {
    Request(Request),
    Response(Response),
}

macro_rules! common_accessors {
    () => {
        pub fn headers(&self) -> &Headers {
            &self.headers
        }
        pub fn body(&self) -> &Bytes {
            &self.body
        }
        /// All via-parms, top first.
        pub fn via(&self) -> &[Via] {
            &self.core.vias
        }
        pub fn top_via(&self) -> Option<&Via> {
            self.core.vias.first()
        }
        pub fn from(&self) -> Option<&NameAddr> {
            self.core.from.as_ref()
        }
        pub fn to(&self) -> Option<&NameAddr> {
            self.core.to.as_ref()
        }
        pub fn call_id(&self) -> Option<&Bytes> {
            self.core.call_id.as_ref()
        }
        pub fn cseq(&self) -> Option<&CSeq> {
            self.core.cseq.as_ref()
        }
        pub fn max_forwards(&self) -> Option<u8> {
            self.core.max_forwards
        }
        pub fn content_type(&self) -> Option<&MediaType> {
            self.core.content_type.as_ref()
        }
        /// Contact header(s); `None` if absent.
        pub fn contact(&self) -> Option<&Contact> {
            self.core.contact.as_ref()
        }
        /// The first Contact URI, if any.
        pub fn contact_uri(&self) -> Option<&Uri> {
            match self.core.contact.as_ref()? {
                Contact::List(l) => l.first().map(|n| &n.uri),
                Contact::Star => None,
            }
        }
    };
}

impl Request {
    common_accessors!();
    pub fn method(&self) -> &Method {
        &self.method
    }
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
    /// The SIP-Version of the request line as received (e.g. `SIP/2.0`).
    pub fn version(&self) -> &[u8] {
        &self.version
    }
    pub fn is_sip2(&self) -> bool {
        self.version.eq_ignore_ascii_case(b"SIP/2.0")
    }
    pub(crate) fn defect(&self) -> Option<&'static str> {
        self.core.defect
    }
    pub(crate) fn duplicate(&self) -> Option<&HeaderName> {
        self.core.duplicate.as_ref()
    }

    /// Serialises with a fresh Content-Length matching the body.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.estimated_len());
        out.put_slice(self.method.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.uri.as_bytes());
        out.put_u8(b' ');
        out.put_slice(&self.version);
        out.put_slice(b"\r\n");
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out.freeze()
    }

    fn estimated_len(&self) -> usize {
        64 + self.uri.as_bytes().len()
            + self.headers.iter().map(|h| h.name.as_str().len() + h.value.len() + 4).sum::<usize>()
            + self.body.len()
    }

    /// RFC 3261 18.2.1 / RFC 3581: record the packet's source in the top Via (`received`, and
    /// `rport` when the client asked for it) so responses go back where the request came from.
    pub fn stamp_received(&mut self, source: std::net::SocketAddr) {
        let Some(top) = self.core.vias.first() else { return };
        let ip = source.ip().to_string();
        let ip_ref = match source.ip() {
            std::net::IpAddr::V6(_) => format!("[{ip}]"),
            std::net::IpAddr::V4(_) => ip.clone(),
        };
        let host_is_ip = top.host[..] == *ip.as_bytes() || top.host[..] == *ip_ref.as_bytes();
        let want_received = !host_is_ip || top.rport == Some(None);
        if top.received.is_some() || (!want_received && top.rport != Some(None)) {
            return;
        }
        // Rebuild the top via-parm text; the rest of that header line is kept as it is.
        let mut new_parm = String::with_capacity(top.raw.len() + 40);
        let raw = String::from_utf8_lossy(&top.raw);
        for (i, part) in raw.split(';').enumerate() {
            if i > 0 {
                new_parm.push(';');
            }
            if i > 0 && part.trim().eq_ignore_ascii_case("rport") {
                new_parm.push_str(&format!("rport={}", source.port()));
            } else {
                new_parm.push_str(part);
            }
        }
        if want_received {
            new_parm.push_str(";received=");
            new_parm.push_str(&ip);
        }
        let Some(h) = self.headers.0.iter_mut().find(|h| h.name == HeaderName::Via) else { return };
        // The top via-parm is at the start of the first Via line.
        let rest = h.value.slice(top.raw.len()..);
        let mut v = BytesMut::with_capacity(new_parm.len() + rest.len());
        v.put_slice(new_parm.as_bytes());
        v.put_slice(&rest);
        h.value = v.freeze();
        let mut vias = Vec::new();
        for line in self.headers.all(&HeaderName::Via) {
            if Via::parse_list(line, &mut vias).is_err() {
                return;
            }
        }
        self.core.vias = vias;
    }
}

impl Response {
    common_accessors!();
    pub fn status(&self) -> u16 {
        self.status
    }
    pub fn reason(&self) -> &[u8] {
        &self.reason
    }
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    pub fn to_bytes(&self) -> Bytes {
        let est = 32
            + self.reason.len()
            + self.headers.iter().map(|h| h.name.as_str().len() + h.value.len() + 4).sum::<usize>()
            + self.body.len();
        let mut out = BytesMut::with_capacity(est);
        out.put_slice(b"SIP/2.0 ");
        let code = itoa3(self.status);
        out.put_slice(&code[..]);
        out.put_u8(b' ');
        out.put_slice(&self.reason);
        out.put_slice(b"\r\n");
        write_headers_and_body(&mut out, &self.headers, &self.body);
        out.freeze()
    }
}

fn itoa3(n: u16) -> [u8; 3] {
    [b'0' + (n / 100 % 10) as u8, b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}

pub(crate) fn write_headers_and_body(out: &mut BytesMut, headers: &Headers, body: &Bytes) {
    for h in headers.iter() {
        if h.name == HeaderName::ContentLength {
            continue;
        }
        out.put_slice(h.name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(&h.value);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"Content-Length: ");
    let mut buf = [0u8; 20];
    out.put_slice(fmt_usize(body.len(), &mut buf));
    out.put_slice(b"\r\n\r\n");
    out.put_slice(body);
}

fn fmt_usize(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// How the end of the body is found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Framing {
    /// UDP: a missing Content-Length means "the rest of the datagram"; trailing octets after
    /// Content-Length are ignored (RFC 3261 18.3, RFC 4475 3.1.1.8).
    Datagram,
    /// TCP/TLS: Content-Length is mandatory.
    Stream,
}

impl Message {
    /// Parses one message from a datagram (copies the input once; all fields are then slices).
    pub fn parse(input: &[u8]) -> Result<Message, ParseError> {
        Self::parse_bytes(Bytes::copy_from_slice(input))
    }

    /// Parses one message from a datagram without copying.
    pub fn parse_bytes(buf: Bytes) -> Result<Message, ParseError> {
        parse_framed(buf, Framing::Datagram).map(|(m, _)| m)
    }

    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}
impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

fn valid_version(v: &[u8]) -> bool {
    // SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT
    if v.len() < 7 || !v[..4].eq_ignore_ascii_case(b"SIP/") {
        return false;
    }
    let rest = &v[4..];
    let Some(dot) = memchr::memchr(b'.', rest) else { return false };
    let (maj, min) = (&rest[..dot], &rest[dot + 1..]);
    !maj.is_empty() && !min.is_empty() && maj.iter().all(u8::is_ascii_digit) && min.iter().all(u8::is_ascii_digit)
}

/// Parses one message from the front of `buf`. Returns the message and the number of bytes
/// it occupied (including skipped leading CRLFs).
/// Header slots reserved per parsed message: as many as fit below 1 KiB. glibc's malloc treats
/// a request of 1 KiB or more as "large" and first consolidates its fast bins; with 16 slots
/// (1.1 KiB) that ran once per received message, 3 % of the server's CPU in the varied redirect
/// benchmark (perf, 2026-11-24). A message with more headers grows the vector once.
const PARSED_HEADERS: usize = 1000 / std::mem::size_of::<Header>();

pub(crate) fn parse_framed(buf: Bytes, framing: Framing) -> Result<(Message, usize), ParseError> {
    // RFC 3261 7.5: ignore CRLFs before the start line (also keep-alives).
    let mut start = 0;
    while buf.len() >= start + 2 && &buf[start..start + 2] == b"\r\n" {
        start += 2;
    }
    let data = &buf[start..];
    // A bare LF before the first CRLF is caught by the start-line check below.
    let Some(line_end) = memchr::memchr(b'\n', data).map(|i| i.saturating_sub(1)).filter(|&i| data.get(i) == Some(&b'\r')).or_else(|| memchr::memmem::find(data, b"\r\n")) else {
        return Err(ParseError::incomplete("Incomplete message"));
    };
    static BLANK_LINE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    let Some(hdr_end) = BLANK_LINE.find(&data[line_end..]).map(|i| i + line_end) else {
        return Err(ParseError::incomplete("Incomplete message"));
    };
    let start_line = &data[..line_end];
    if start_line.contains(&b'\r') || start_line.contains(&b'\n') {
        return Err(ParseError::bad("Bare CR or LF in start line"));
    }

    let start_kind = parse_start_line(&buf, start, start_line)?;

    // Headers.
    let mut headers = Headers(Vec::with_capacity(PARSED_HEADERS));
    let mut pos = line_end + 2;
    let block_end = hdr_end + 2; // each line, including the last, ends in CRLF
    // (name, value start, value end, folded) of the header being collected
    let mut cur: Option<(HeaderName, usize, usize, bool)> = None;
    let finish = |cur: Option<(HeaderName, usize, usize, bool)>, headers: &mut Headers| {
        if let Some((name, vs, ve, folded)) = cur {
            let value = if folded {
                // Unfold: CRLF inside LWS becomes spaces; the grammar treats runs of LWS alike.
                let unf: Vec<u8> = data[vs..ve].iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect();
                let t = scan::trim_wsp(&unf);
                Bytes::copy_from_slice(t)
            } else {
                let raw = &data[vs..ve];
                let t = scan::trim_wsp(raw);
                let off = t.as_ptr() as usize - data.as_ptr() as usize;
                buf.slice(start + off..start + off + t.len())
            };
            headers.0.push(Header { name, value });
        }
    };
    while pos < block_end {
        let nl = memchr::memchr(b'\n', &data[pos..block_end]).map(|i| pos + i).ok_or(ParseError::bad("Malformed header line"))?;
        if nl == pos || data[nl - 1] != b'\r' {
            return Err(ParseError::bad("Bare LF in header"));
        }
        let line = &data[pos..nl - 1];
        if line.contains(&b'\r') {
            return Err(ParseError::bad("Bare CR in header"));
        }
        if scan::is_wsp(line.first().copied().unwrap_or(b'x')) {
            match cur.as_mut() {
                Some(c) => {
                    c.2 = nl - 1;
                    c.3 = true;
                }
                None => return Err(ParseError::bad("Malformed header line")),
            }
        } else {
            finish(cur.take(), &mut headers);
            let name_end = line.iter().position(|&b| !is_token(b)).unwrap_or(line.len());
            if name_end == 0 {
                return Err(ParseError::bad("Malformed header line"));
            }
            let mut i = name_end;
            while i < line.len() && scan::is_wsp(line[i]) {
                i += 1;
            }
            if line.get(i) != Some(&b':') {
                return Err(ParseError::bad("Malformed header line"));
            }
            let name = HeaderName::from_slice(&line[..name_end], || buf.slice(start + pos..start + pos + name_end));
            cur = Some((name, pos + i + 1, nl - 1, false));
        }
        pos = nl + 1;
    }
    finish(cur.take(), &mut headers);

    // Body framing.
    let body_start = hdr_end + 4;
    let cl_value = {
        let mut cl_headers = headers.all(&HeaderName::ContentLength);
        (cl_headers.next().cloned(), cl_headers.next().is_some())
    };
    let cl = match (cl_value.0, cl_value.1) {
        (Some(_), true) => return Err(ParseError::bad("Multiple Content-Length headers")),
        (Some(v), false) => Some(
            scan::parse_u64(&v)
                .filter(|&n| n <= u64::from(u32::MAX))
                .ok_or(ParseError::bad("Invalid Content-Length"))? as usize,
        ),
        (None, _) => None,
    };
    let (body_end, consumed) = match (cl, framing) {
        (Some(n), _) => {
            if body_start + n > data.len() {
                return Err(ParseError::incomplete("Content-Length larger than message"));
            }
            (body_start + n, body_start + n)
        }
        (None, Framing::Datagram) => (data.len(), data.len()),
        (None, Framing::Stream) => return Err(ParseError::bad("Missing Content-Length")),
    };
    let body = buf.slice(start + body_start..start + body_end);

    let core = Core::from_headers(&headers);
    let msg = match start_kind {
        StartLine::Response { status, reason } => {
            if let Some(d) = core.defect {
                return Err(ParseError::bad(d));
            }
            Message::Response(Response { status, reason, headers, body, core })
        }
        StartLine::Request { method, uri, version } => {
            Message::Request(Request { method, uri, version, headers, body, core })
        }
    };
    Ok((msg, start + consumed))
}

#[allow(clippy::large_enum_variant)]
enum StartLine {
    Request { method: Method, uri: Uri, version: Bytes },
    Response { status: u16, reason: Bytes },
}

fn parse_start_line(buf: &Bytes, start: usize, line: &[u8]) -> Result<StartLine, ParseError> {
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        parse_status_line(buf, start, line)
    } else {
        parse_request_line(buf, start, line)
    }
}

fn parse_status_line(buf: &Bytes, start: usize, line: &[u8]) -> Result<StartLine, ParseError> {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    let sp = memchr::memchr(b' ', line).ok_or(ParseError::bad("Malformed Status-Line"))?;
    if &line[..sp] != b"SIP/2.0" {
        return Err(ParseError { status: 505, reason: "Version Not Supported", incomplete: false });
    }
    let rest = &line[sp + 1..];
    if rest.len() < 4 || rest[3] != b' ' || !rest[..3].iter().all(u8::is_ascii_digit) {
        return Err(ParseError::bad("Malformed Status-Code"));
    }
    let status = u16::from(rest[0] - b'0') * 100 + u16::from(rest[1] - b'0') * 10 + u16::from(rest[2] - b'0');
    if !(100..=699).contains(&status) {
        return Err(ParseError::bad("Status-Code out of range"));
    }
    let reason = &rest[4..];
    if reason.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return Err(ParseError::bad("Control character in Reason-Phrase"));
    }
    let off = start + sp + 1 + 4;
    Ok(StartLine::Response { status, reason: buf.slice(off..off + reason.len()) })
}

fn parse_request_line(buf: &Bytes, start: usize, line: &[u8]) -> Result<StartLine, ParseError> {
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly two single spaces.
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(m), Some(u), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ParseError::bad("Malformed Request-Line"));
    };
    if !scan::is_token_str(m) {
        return Err(ParseError::bad("Malformed method"));
    }
    if u.is_empty() || v.contains(&b' ') || !valid_version(v) {
        return Err(ParseError::bad("Malformed Request-Line"));
    }
    if u.iter().any(|&b| b <= 0x20 || b >= 0x7f) {
        return Err(ParseError::bad("Malformed Request-URI"));
    }
    let uoff = start + m.len() + 1;
    let uri = Uri::from_bytes(buf.slice(uoff..uoff + u.len())).map_err(|_| ParseError::bad("Malformed Request-URI"))?;
    let voff = uoff + u.len() + 1;
    Ok(StartLine::Request { method: Method::from_bytes(m), uri, version: buf.slice(voff..voff + v.len()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:14020@veertien.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: <sip:14020@veertien.example>\r\n\
From: \"Alice\" <sip:0612345678@carrier.example>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:0612345678@192.0.2.1>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

    fn req(s: &str) -> Request {
        match Message::parse(s.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("expected request"),
        }
    }

    #[test]
    fn parses_invite_fields() {
        let r = req(INVITE);
        assert_eq!(r.method(), &Method::Invite);
        assert_eq!(r.uri().to_string(), "sip:14020@veertien.example");
        assert_eq!(&r.call_id().unwrap()[..], b"a84b4c76e66710@pc33.example");
        assert_eq!(r.cseq().unwrap().seq, 314159);
        assert_eq!(r.max_forwards(), Some(70));
        assert_eq!(&r.from().unwrap().tag.as_ref().unwrap()[..], b"1928301774");
        assert_eq!(r.to().unwrap().tag, None);
        assert_eq!(&r.body()[..], b"v=0\n");
        assert_eq!(r.top_via().unwrap().port, Some(5060));
        assert!(r.defect().is_none());
    }

    #[test]
    fn round_trips_through_to_bytes() {
        let r = req(INVITE);
        let again = req(std::str::from_utf8(&r.to_bytes()).unwrap());
        assert_eq!(r.headers(), again.headers());
        assert_eq!(r.body(), again.body());
    }

    #[test]
    fn content_length_errors() {
        let too_long = INVITE.replace("Content-Length: 4", "Content-Length: 400");
        let e = Message::parse(too_long.as_bytes()).unwrap_err();
        assert_eq!(e.reason, "Content-Length larger than message");
        assert_eq!(e.reason_phrase(), "Bad Request (Content-Length larger than message)");
        let neg = INVITE.replace("Content-Length: 4", "Content-Length: -4");
        assert_eq!(Message::parse(neg.as_bytes()).unwrap_err().reason, "Invalid Content-Length");
    }

    #[test]
    fn request_line_strictness() {
        for bad in ["INVITE  sip:a@b SIP/2.0", "INVITE sip:a@b SIP/2.0 ", "INVITE <sip:a@b> SIP/2.0", "INVITE sip:a@b", "INVITE sip:a@b; lr SIP/2.0"] {
            let m = INVITE.replacen("INVITE sip:14020@veertien.example SIP/2.0", bad, 1);
            assert!(Message::parse(m.as_bytes()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn stamp_received_fills_rport_and_received() {
        let m = INVITE.replace("branch=z9hG4bK776asdhds", "rport;branch=z9hG4bK776asdhds");
        let mut r = req(&m);
        r.stamp_received("198.51.100.7:40000".parse().unwrap());
        let v = r.top_via().unwrap();
        assert_eq!(v.rport, Some(Some(40000)));
        assert_eq!(&v.received.as_ref().unwrap()[..], b"198.51.100.7");
        assert_eq!(&v.branch.as_ref().unwrap()[..], b"z9hG4bK776asdhds");
    }
}
