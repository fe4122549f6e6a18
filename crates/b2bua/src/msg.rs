//! The message views the call machine consumes and produces.
//!
//! The driver parses wire messages with `veertien-sip` and fills these views; for output it
//! builds wire messages from them (adding Via, Max-Forwards defaults, Content-Length). They hold
//! exactly what a B2BUA needs to keep two dialogs correct, so the machine stays independent of
//! the parser's representation and can be tested with synthetic messages.

use bytes::Bytes;

/// SIP methods the machine distinguishes. Everything else arrives as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Info,
    Update,
    Options,
    Prack,
    Other(String),
}

impl Method {
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Options => "OPTIONS",
            Method::Prack => "PRACK",
            Method::Other(m) => m,
        }
    }

    /// Parses a method token; unknown tokens become `Other` (case-sensitive per RFC 3261).
    pub fn parse(token: &str) -> Method {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "OPTIONS" => Method::Options,
            "PRACK" => Method::Prack,
            other => Method::Other(other.to_owned()),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A From/To value: optional display name, the URI (without angle brackets) and the tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: String,
    pub tag: Option<String>,
}

impl NameAddr {
    pub fn new(uri: impl Into<String>) -> Self {
        NameAddr { display: None, uri: uri.into(), tag: None }
    }
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }
}

/// A message body with its Content-Type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub content_type: String,
    pub data: Bytes,
}

impl Body {
    pub fn sdp(data: impl Into<Bytes>) -> Self {
        Body { content_type: "application/sdp".to_owned(), data: data.into() }
    }
    pub fn is_sdp(&self) -> bool {
        self.content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
    }
}

/// A request as received on one of the legs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InRequest {
    pub method: Method,
    pub request_uri: String,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: u32,
    /// The Contact URI (without angle brackets), if any.
    pub contact: Option<String>,
    /// Record-Route entries in the order they appear in the message, each one
    /// `<uri;params>` as on the wire (one entry per comma-separated value).
    pub record_route: Vec<String>,
    pub max_forwards: Option<u32>,
    pub body: Option<Body>,
    /// Headers the B2BUA copies to the other leg when present (see
    /// [`crate::CallConfig::pass_headers`]); others may be left out by the driver.
    pub headers: Vec<(String, String)>,
}

/// A response as received for a request the machine sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InResponse {
    pub status: u16,
    pub reason: String,
    pub to_tag: Option<String>,
    pub contact: Option<String>,
    /// Record-Route entries in message order.
    pub record_route: Vec<String>,
    pub body: Option<Body>,
    pub headers: Vec<(String, String)>,
}

/// A request the driver must send. The driver adds Via (with a fresh branch, except for a
/// CANCEL, which reuses the branch of the INVITE it cancels), Content-Length and framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRequest {
    pub method: Method,
    pub request_uri: String,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: u32,
    /// Route header values, in order (empty: no Route header).
    pub route: Vec<String>,
    pub contact: Option<String>,
    pub max_forwards: u32,
    pub body: Option<Body>,
    pub headers: Vec<(String, String)>,
}

impl OutRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// A response the driver must send on the server transaction it names. The driver copies
/// Via, From, To, Call-ID and CSeq from that transaction's request and adds `to_tag` to To
/// when the request had none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutResponse {
    pub status: u16,
    pub reason: String,
    pub to_tag: Option<String>,
    pub contact: Option<String>,
    /// Record-Route values to put in the response (copied from the request for responses
    /// that create a dialog, RFC 3261 12.1.1).
    pub record_route: Vec<String>,
    pub body: Option<Body>,
    pub headers: Vec<(String, String)>,
}

impl OutResponse {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        OutResponse {
            status,
            reason: reason.into(),
            to_tag: None,
            contact: None,
            record_route: Vec::new(),
            body: None,
            headers: Vec::new(),
        }
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

pub(crate) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The standard reason phrase for the statuses the machine generates itself.
pub(crate) fn reason_for(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        302 => "Moved Temporarily",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "",
    }
}
