//! Building responses (RFC 3261 8.2.6) and requests for the UAC side of a B2BUA.

use std::net::{IpAddr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::{HeaderName, Headers, Method, Transport, Via};
use crate::message::{Core, Framing, Message, ParseError, Request, Response, parse_framed};
use crate::scan;
use crate::uri::Uri;
use crate::validate::Rejection;

/// Default reason phrases.
pub fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match status / 100 {
            1 => "Session Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// Builds a response to a request, copying Via, From, To, Call-ID and CSeq as RFC 3261 8.2.6
/// requires (and Timestamp for 100 Trying).
pub struct ResponseBuilder {
    status: u16,
    reason: Bytes,
    headers: Headers,
    body: Bytes,
    to_index: Option<usize>,
    to_has_tag: bool,
    /// Typed headers copied from the request, so building does not re-parse them.
    core: Core,
}

impl Response {
    pub fn builder(req: &Request, status: u16) -> ResponseBuilder {
        let mut b = ResponseBuilder::from_parts(req.headers(), req.to().is_some_and(|t| t.tag.is_some()), status);
        let c = &req.core;
        b.core = Core {
            vias: c.vias.clone(),
            from: c.from.clone(),
            to: c.to.clone(),
            call_id: c.call_id.clone(),
            cseq: c.cseq.clone(),
            duplicate: c.duplicate.clone(),
            defect: c.defect,
            ..Core::default()
        };
        b
    }
}

impl ResponseBuilder {
    fn from_parts(src: &Headers, to_has_tag: bool, status: u16) -> ResponseBuilder {
        let mut headers = Headers(Vec::with_capacity(10));
        let mut to_index = None;
        for h in src.iter() {
            let copy = match h.name {
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => true,
                HeaderName::To => {
                    if to_index.is_none() {
                        to_index = Some(headers.0.len());
                    }
                    true
                }
                HeaderName::Timestamp => status == 100,
                _ => false,
            };
            if copy {
                headers.0.push(h.clone());
            }
        }
        ResponseBuilder {
            status,
            reason: Bytes::from_static(default_reason(status).as_bytes()),
            headers,
            body: Bytes::new(),
            to_index,
            to_has_tag,
            core: Core::default(),
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Bytes::from(reason.into());
        self
    }

    /// Adds a To tag unless the request already had one (RFC 3261 8.2.6.2). Ignored for 100.
    pub fn to_tag(mut self, tag: &str) -> Self {
        if self.status == 100 || self.to_has_tag || !scan::is_token_str(tag.as_bytes()) {
            return self;
        }
        if let Some(i) = self.to_index {
            let old = &self.headers.0[i].value;
            let mut v = BytesMut::with_capacity(old.len() + 5 + tag.len());
            v.put_slice(old);
            v.put_slice(b";tag=");
            v.put_slice(tag.as_bytes());
            let value = v.freeze();
            if let Some(to) = self.core.to.as_mut() {
                to.tag = Some(value.slice(value.len() - tag.len()..));
                to.raw = value.clone();
            }
            self.headers.0[i].value = value;
            self.to_has_tag = true;
        }
        self
    }

    pub fn header(mut self, name: impl Into<HeaderName>, value: impl Into<Bytes>) -> Self {
        let h = crate::header::Header { name: name.into(), value: value.into() };
        self.core.add(&h);
        self.headers.0.push(h);
        self
    }

    /// Contact with the target of a redirect (3xx) or the local contact of a 2xx.
    pub fn contact(self, uri: &Uri) -> Self {
        let mut v = BytesMut::with_capacity(uri.as_bytes().len() + 2);
        v.put_u8(b'<');
        v.put_slice(uri.as_bytes());
        v.put_u8(b'>');
        self.header(HeaderName::Contact, v.freeze())
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self = self.header(HeaderName::ContentType, Bytes::copy_from_slice(content_type.as_bytes()));
        self.body = body.into();
        self
    }

    pub fn build(self) -> Response {
        Response { status: self.status, reason: self.reason, headers: self.headers, body: self.body, core: self.core }
    }
}

impl Rejection {
    /// The response for this rejection, with its extra headers (Allow, Unsupported, ...).
    pub fn to_response(&self, req: &Request, to_tag: &str) -> Response {
        let mut b = Response::builder(req, self.status).reason(self.reason.to_string()).to_tag(to_tag);
        for (n, v) in &self.headers {
            b = b.header(n.clone(), Bytes::from(v.clone()));
        }
        b.build()
    }
}

/// Best-effort 400/505 for a request whose start line or framing could not be parsed: if the
/// header block still yields Via, From, To, Call-ID and CSeq, answer with the parse fault as
/// reason phrase; otherwise `None` (nothing to answer to, so drop). Responses never get one.
///
/// An ACK is never answered (RFC 3261 17.2.1 and 8.2: a UAS must not send a response to an
/// ACK), however broken: for those this is `None` too, see [`unparseable_is_ack`].
pub fn reject_unparseable(input: &[u8], err: &ParseError, to_tag: &str) -> Option<Response> {
    let start = input.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let data = &input[start..];
    if data.len() >= 4 && data[..4].eq_ignore_ascii_case(b"SIP/") {
        return None;
    }
    if unparseable_is_ack(input) {
        return None;
    }
    let line_end = memchr::memmem::find(data, b"\r\n")?;
    let hdr_end = memchr::memmem::find(data, b"\r\n\r\n").unwrap_or(data.len());
    if line_end >= hdr_end {
        return None;
    }
    // Re-parse only the header block, as if it followed a harmless request line.
    let mut synthetic = BytesMut::with_capacity(hdr_end - line_end + 40);
    synthetic.put_slice(b"OPTIONS sip:invalid SIP/2.0");
    for line in data[line_end..hdr_end].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let name_end = line.iter().position(|&b| !scan::is_token(b)).unwrap_or(line.len());
        let name = &line[..name_end];
        // Keep only the headers a response copies (and folded continuation lines).
        let keep = scan::is_wsp(line[0])
            || matches!(
                HeaderName::from_bytes(Bytes::copy_from_slice(name)),
                HeaderName::Via | HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::CSeq
            );
        if keep {
            synthetic.put_slice(b"\r\n");
            synthetic.put_slice(line);
        }
    }
    synthetic.put_slice(b"\r\nContent-Length: 0\r\n\r\n");
    let Ok((Message::Request(r), _)) = parse_framed(synthetic.freeze(), Framing::Datagram) else {
        return None;
    };
    if r.defect().is_some() || r.via().is_empty() || r.from().is_none() || r.to().is_none() || r.call_id().is_none() || r.cseq().is_none() {
        return None;
    }
    let reason = if err.status == 400 { err.reason_phrase() } else { err.reason.to_string() };
    Some(Response::builder(&r, err.status).reason(reason).to_tag(to_tag).build())
}

/// Whether bytes that did not parse as a message were meant as an ACK: the request line's
/// method is `ACK`, or (when the request line is unreadable) the CSeq header names ACK.
/// Methods are case-sensitive (RFC 3261 7.1), so `ack` is not an ACK. Such a message must be
/// dropped, never answered (RFC 3261 17.2.1): a 400 to an ACK has no transaction to go to and
/// only invites a loop with a peer that answers it in turn.
pub fn unparseable_is_ack(input: &[u8]) -> bool {
    let Some(start) = input.iter().position(|&b| b != b'\r' && b != b'\n') else { return false };
    let data = &input[start..];
    let line_end = memchr::memchr(b'\n', data).unwrap_or(data.len());
    let line = &data[..line_end];
    let method_end = line.iter().position(|&b| b == b' ' || b == b'\t' || b == b'\r').unwrap_or(line.len());
    if &line[..method_end] == b"ACK" {
        return true;
    }
    if method_end < line.len() && scan::is_token_str(&line[..method_end]) {
        // A readable method that is not ACK: the request line decides.
        return false;
    }
    let hdr_end = memchr::memmem::find(data, b"\r\n\r\n").unwrap_or(data.len());
    data[line_end.min(hdr_end)..hdr_end].split(|&b| b == b'\n').any(|h| {
        let h = h.strip_suffix(b"\r").unwrap_or(h);
        let Some(colon) = memchr::memchr(b':', h) else { return false };
        if !scan::trim_wsp(&h[..colon]).eq_ignore_ascii_case(b"cseq") {
            return false;
        }
        let value = scan::trim_wsp(&h[colon + 1..]);
        value.split(|&b| b == b' ' || b == b'\t').filter(|t| !t.is_empty()).nth(1) == Some(b"ACK".as_slice())
    })
}

/// Where to send a response over UDP (RFC 3261 18.2.2 with RFC 3581 rport), given the top Via
/// of the request and the packet's source. Never a broadcast, multicast or unspecified
/// address: such a Via can only be forged (RFC 4475 3.3.10), so the answer is `None` (drop).
pub fn response_target(top_via: &Via, source: SocketAddr) -> Option<SocketAddr> {
    let ip = top_via
        .received
        .as_ref()
        .and_then(|r| std::str::from_utf8(r).ok()?.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>().ok())
        .unwrap_or(source.ip());
    let port = match top_via.rport {
        Some(Some(p)) => p,
        Some(None) => source.port(),
        None => top_via.port.unwrap_or(if top_via.transport == Transport::Tls { 5061 } else { 5060 }),
    };
    let bad = match ip {
        IpAddr::V4(v4) => v4.is_broadcast() || v4.is_multicast() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified(),
    };
    if bad || port == 0 { None } else { Some(SocketAddr::new(ip, port)) }
}

/// Builds a new request for the UAC side (a B2BUA's outbound leg, OPTIONS pings, BYE).
pub struct RequestBuilder {
    method: Method,
    uri: Uri,
    headers: Headers,
    body: Bytes,
}

impl Request {
    pub fn builder(method: Method, uri: Uri) -> RequestBuilder {
        RequestBuilder { method, uri, headers: Headers(Vec::with_capacity(10)), body: Bytes::new() }
    }

    /// The ACK for a non-2xx final response to this INVITE (RFC 3261 17.1.1.3): same
    /// Request-URI, Call-ID, From, CSeq number, top Via and Route; To from the response.
    pub fn ack_for(&self, resp: &Response) -> Request {
        self.derived(Method::Ack, resp.headers().get(&HeaderName::To))
    }

    /// The CANCEL for this pending request (RFC 3261 9.1).
    pub fn cancel(&self) -> Request {
        self.derived(Method::Cancel, None)
    }

    fn derived(&self, method: Method, to: Option<&Bytes>) -> Request {
        let mut headers = Headers(Vec::with_capacity(8));
        if let Some(v) = self.top_via() {
            headers.push(HeaderName::Via, v.raw.clone());
        }
        for h in self.headers.iter() {
            match h.name {
                HeaderName::From | HeaderName::CallId | HeaderName::Route | HeaderName::MaxForwards => {
                    headers.0.push(h.clone())
                }
                HeaderName::To => headers.push(HeaderName::To, to.cloned().unwrap_or_else(|| h.value.clone())),
                _ => {}
            }
        }
        let seq = self.cseq().map_or(0, |c| c.seq);
        headers.push(HeaderName::CSeq, Bytes::from(format!("{seq} {}", method.as_str())));
        let core = Core::from_headers(&headers);
        Request {
            method,
            uri: self.uri.clone(),
            version: Bytes::from_static(b"SIP/2.0"),
            headers,
            body: Bytes::new(),
            core,
        }
    }
}

impl RequestBuilder {
    /// Top Via: `SIP/2.0/<transport> host[:port];branch=<branch>;rport`.
    pub fn via(self, transport: Transport, host: &str, port: Option<u16>, branch: &str) -> Self {
        self.via_with(transport, host, port, branch, false)
    }
    /// [`RequestBuilder::via`], with `;alias` (RFC 5923 connection reuse) when `alias`.
    pub fn via_with(mut self, transport: Transport, host: &str, port: Option<u16>, branch: &str, alias: bool) -> Self {
        let alias = if alias { ";alias" } else { "" };
        let v = match port {
            Some(p) => format!("SIP/2.0/{} {host}:{p};branch={branch};rport{alias}", transport.as_str()),
            None => format!("SIP/2.0/{} {host};branch={branch};rport{alias}", transport.as_str()),
        };
        self.headers.push(HeaderName::Via, Bytes::from(v));
        self
    }
    pub fn from(self, value: &str) -> Self {
        self.header(HeaderName::From, value)
    }
    pub fn to(self, value: &str) -> Self {
        self.header(HeaderName::To, value)
    }
    pub fn call_id(self, value: &str) -> Self {
        self.header(HeaderName::CallId, value)
    }
    pub fn cseq(self, seq: u32) -> Self {
        let v = format!("{seq} {}", self.method.as_str());
        self.header(HeaderName::CSeq, v.as_str())
    }
    pub fn max_forwards(self, n: u8) -> Self {
        self.header(HeaderName::MaxForwards, n.to_string().as_str())
    }
    pub fn contact(self, uri: &Uri) -> Self {
        let v = format!("<{uri}>");
        self.header(HeaderName::Contact, v.as_str())
    }
    pub fn header(mut self, name: impl Into<HeaderName>, value: &str) -> Self {
        self.headers.push(name.into(), Bytes::copy_from_slice(value.as_bytes()));
        self
    }
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.headers.push(HeaderName::ContentType, Bytes::copy_from_slice(content_type.as_bytes()));
        self.body = body.into();
        self
    }
    /// Serialises and re-parses, so the result is exactly what a peer will see and every typed
    /// accessor works; a malformed header value given to the builder is reported here.
    pub fn build(self) -> Result<Request, ParseError> {
        let mut out = BytesMut::with_capacity(256 + self.body.len());
        out.put_slice(self.method.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.uri.as_bytes());
        out.put_slice(b" SIP/2.0\r\n");
        crate::message::write_headers_and_body(&mut out, &self.headers, &self.body);
        match parse_framed(out.freeze(), Framing::Stream)? {
            (Message::Request(r), _) => match r.defect() {
                Some(d) => Err(ParseError::bad(d)),
                None => Ok(r),
            },
            (Message::Response(_), _) => Err(ParseError::bad("Malformed Request-Line")),
        }
    }
}

/// A branch parameter (RFC 3261 8.1.1.7) from caller-supplied entropy; the crate does no I/O
/// and reads no randomness itself.
pub fn branch_from(entropy: u128) -> String {
    format!("z9hG4bK{entropy:032x}")
}
