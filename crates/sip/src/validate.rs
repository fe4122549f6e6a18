//! Request/response validation: turns RFC 3261 8.2 checks into the exact error response.

use std::borrow::Cow;

use crate::header::{HeaderName, Method};
use crate::message::{Request, Response};
use crate::uri::UriKind;

/// What this element supports; decides 405/501/416/420/415/406/483.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Methods answered (anything else known → 405 with Allow, unknown → 501).
    pub allowed_methods: Vec<Method>,
    /// Option tags accepted in Require / Proxy-Require.
    pub supported_extensions: Vec<String>,
    /// Methods this element routes onwards (forward, redirect, bridge): Max-Forwards 0 → 483.
    pub routed_methods: Vec<Method>,
    /// Also enforce Proxy-Require (the front door acts for the routing proxy of the number).
    pub check_proxy_require: bool,
    /// Accept `tel:` Request-URIs besides `sip:`/`sips:`.
    pub accept_tel: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allowed_methods: vec![Method::Invite, Method::Ack, Method::Bye, Method::Cancel, Method::Options, Method::Info],
            supported_extensions: Vec::new(),
            routed_methods: vec![Method::Invite],
            check_proxy_require: true,
            accept_tel: true,
        }
    }
}

impl Policy {
    /// `Allow` header value for this policy.
    pub fn allow_header(&self) -> String {
        self.allowed_methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
    }
}

/// A request that must be refused, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    /// The full reason phrase, e.g. `Bad Request (Missing Call-ID)`.
    pub reason: Cow<'static, str>,
    /// Extra headers the response must carry (Allow, Unsupported, Accept, Retry-After).
    pub headers: Vec<(HeaderName, String)>,
    /// ACK is never answered (RFC 3261 17.2.3): drop instead of responding.
    pub silent: bool,
}

impl Rejection {
    pub fn new(status: u16, reason: impl Into<Cow<'static, str>>) -> Rejection {
        Rejection { status, reason: reason.into(), headers: Vec::new(), silent: false }
    }
    pub(crate) fn bad(detail: &str) -> Rejection {
        Rejection::new(400, format!("Bad Request ({detail})"))
    }
    fn with(mut self, name: HeaderName, value: String) -> Rejection {
        self.headers.push((name, value));
        self
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

/// Validates a request with the default front-door [`Policy`].
pub fn validate_request(req: &Request) -> Result<(), Rejection> {
    static DEFAULT: std::sync::LazyLock<Policy> = std::sync::LazyLock::new(Policy::default);
    validate_request_with(req, &DEFAULT)
}

/// Validates a request. The order follows RFC 3261 8.2: syntax and mandatory fields first
/// (so a malformed request never gets a policy answer), then method, URI, extensions, body.
pub fn validate_request_with(req: &Request, policy: &Policy) -> Result<(), Rejection> {
    let r = check(req, policy);
    r.map_err(|mut rej| {
        rej.silent = *req.method() == Method::Ack;
        rej
    })
}

fn check(req: &Request, policy: &Policy) -> Result<(), Rejection> {
    if !req.is_sip2() {
        return Err(Rejection::new(505, "Version Not Supported"));
    }
    if let Some(d) = req.defect() {
        return Err(Rejection::bad(d));
    }
    for (present, name) in [
        (req.via().is_empty(), "Via"),
        (req.from().is_none(), "From"),
        (req.to().is_none(), "To"),
        (req.call_id().is_none(), "Call-ID"),
        (req.cseq().is_none(), "CSeq"),
    ] {
        if present {
            return Err(Rejection::bad(&format!("Missing {name}")));
        }
    }
    if let Some(dup) = req.duplicate() {
        return Err(Rejection::bad(&format!("Multiple {dup} headers")));
    }
    let cseq = req.cseq().expect("checked above");
    if cseq.method != *req.method() {
        return Err(Rejection::bad("CSeq method does not match request method"));
    }
    if let UriKind::Sip(s) = req.uri().kind()
        && s.headers.is_some()
    {
        return Err(Rejection::bad("Headers in Request-URI"));
    }
    if !policy.allowed_methods.contains(req.method()) {
        if req.method().is_known() {
            return Err(Rejection::new(405, "Method Not Allowed").with(HeaderName::Allow, policy.allow_header()));
        }
        return Err(Rejection::new(501, "Not Implemented").with(HeaderName::Allow, policy.allow_header()));
    }
    match req.uri().kind() {
        UriKind::Sip(_) => {}
        UriKind::Tel(_) if policy.accept_tel => {}
        _ => return Err(Rejection::new(416, "Unsupported URI Scheme")),
    }
    if req.max_forwards() == Some(0) && policy.routed_methods.contains(req.method()) {
        return Err(Rejection::new(483, "Too Many Hops"));
    }
    // RFC 3261 8.2.2.3: Require is ignored in CANCEL and ACK.
    if !matches!(req.method(), Method::Ack | Method::Cancel) {
        let mut unsupported: Vec<String> = Vec::new();
        let mut collect = |name: &HeaderName| {
            for tag in req.headers().list(name) {
                let tag = String::from_utf8_lossy(tag).into_owned();
                if !policy.supported_extensions.iter().any(|s| s.eq_ignore_ascii_case(&tag))
                    && !unsupported.iter().any(|u| u.eq_ignore_ascii_case(&tag))
                {
                    unsupported.push(tag);
                }
            }
        };
        collect(&HeaderName::Require);
        if policy.check_proxy_require {
            collect(&HeaderName::ProxyRequire);
        }
        if !unsupported.is_empty() {
            return Err(Rejection::new(420, "Bad Extension").with(HeaderName::Unsupported, unsupported.join(", ")));
        }
    }
    if *req.method() == Method::Invite {
        check_invite_body(req)?;
        check_accept(req)?;
    }
    Ok(())
}

fn unsupported_media() -> Rejection {
    Rejection::new(415, "Unsupported Media Type")
        .with(HeaderName::Accept, "application/sdp".into())
        .with(HeaderName::Other(bytes::Bytes::from_static(b"Accept-Encoding")), "identity".into())
}

fn check_invite_body(req: &Request) -> Result<(), Rejection> {
    if req.body().is_empty() {
        return Ok(());
    }
    if let Some(enc) = req.headers().get(&HeaderName::ContentEncoding)
        && !enc.eq_ignore_ascii_case(b"identity")
    {
        return Err(unsupported_media());
    }
    let ct = req.content_type().ok_or_else(|| Rejection::bad("Missing Content-Type"))?;
    if ct.is("application", "sdp") {
        return Ok(());
    }
    if ct.is("multipart", "mixed") {
        let boundary = ct.param("boundary").ok_or_else(|| Rejection::bad("Multipart body without boundary"))?;
        if multipart_has_sdp(req.body(), boundary) {
            return Ok(());
        }
    }
    Err(unsupported_media())
}

/// True when a multipart body has a part of type application/sdp (RFC 2046 5.1.1).
pub(crate) fn multipart_has_sdp(body: &[u8], boundary: &[u8]) -> bool {
    multipart_sdp(body, boundary).is_some()
}

/// Returns the application/sdp part of a multipart body.
pub fn multipart_sdp<'a>(body: &'a [u8], boundary: &[u8]) -> Option<&'a [u8]> {
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&delim);
    let mut pos = finder.find(body)?;
    loop {
        let after = pos + delim.len();
        if body.get(after..after + 2) == Some(b"--") {
            return None;
        }
        let part_start = memchr::memmem::find(&body[after..], b"\r\n")? + after + 2;
        let next = finder.find(&body[part_start..]).map(|i| i + part_start)?;
        let part = &body[part_start..next];
        let (head, content) = match memchr::memmem::find(part, b"\r\n\r\n") {
            Some(i) => (&part[..i], &part[i + 4..]),
            None if part.starts_with(b"\r\n") => (&b""[..], &part[2..]),
            None => (part, &b""[..]),
        };
        for line in head.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(colon) = memchr::memchr(b':', line)
                && line[..colon].eq_ignore_ascii_case(b"Content-Type")
            {
                let v = crate::scan::trim_wsp(&line[colon + 1..]);
                let v = v.split(|&b| b == b';').next().unwrap_or(v);
                if crate::scan::trim_wsp(v).eq_ignore_ascii_case(b"application/sdp") {
                    let content = content.strip_suffix(b"\r\n").unwrap_or(content);
                    return Some(content);
                }
            }
        }
        pos = next;
    }
}

fn check_accept(req: &Request) -> Result<(), Rejection> {
    if req.headers().get(&HeaderName::Accept).is_none() {
        return Ok(());
    }
    let mut ranges = Vec::new();
    for v in req.headers().all(&HeaderName::Accept) {
        crate::header::MediaType::parse_list(v, &mut ranges).map_err(Rejection::bad)?;
    }
    if ranges.iter().any(|m| m.matches("application", "sdp")) {
        Ok(())
    } else {
        Err(Rejection::new(406, "Not Acceptable").with(HeaderName::Accept, "application/sdp".into()))
    }
}

/// Why a received response is dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("response discarded: {0}")]
pub struct Discard(pub &'static str);

/// Checks a received response as a UAC (the platform is the client on its outbound legs).
/// RFC 3261 8.1.3.3: a response with more than one Via is discarded — this is also what keeps
/// us from ever relaying a response towards a forged (e.g. broadcast) Via (RFC 4475 3.3.10).
pub fn validate_response(resp: &Response) -> Result<(), Discard> {
    if resp.via().is_empty() {
        return Err(Discard("missing Via"));
    }
    if resp.via().len() > 1 {
        return Err(Discard("more than one Via"));
    }
    if resp.from().is_none() || resp.to().is_none() || resp.call_id().is_none() || resp.cseq().is_none() {
        return Err(Discard("missing mandatory header"));
    }
    if resp.core.duplicate.is_some() {
        return Err(Discard("repeated single-valued header"));
    }
    Ok(())
}
