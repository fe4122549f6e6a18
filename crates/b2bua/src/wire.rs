//! Conversions between the machine's message views and `veertien-sip` messages, so the driver
//! feeds parsed requests/responses in and puts built ones on the wire without knowing the views.

use crate::msg::{Body, InRequest, InResponse, Method, NameAddr, OutRequest, OutResponse};
use bytes::Bytes;
use veertien_sip as sip;
use veertien_sip::HeaderName;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("missing or malformed {0} header")]
    Missing(&'static str),
    #[error("malformed {header}: {why}")]
    Malformed { header: &'static str, why: String },
    #[error("bad URI `{uri}`: {why}")]
    Uri { uri: String, why: &'static str },
    #[error("built message does not parse: {0}")]
    Build(String),
}

/// The Via the driver puts on a request it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaSpec {
    pub transport: sip::Transport,
    pub host: String,
    pub port: Option<u16>,
    /// A fresh branch for a new transaction or a 2xx ACK; the INVITE's branch for a CANCEL.
    pub branch: String,
    /// `;alias` (RFC 5923): the far end may send its requests for `host:port` back on the
    /// connection this request travels on. Only over TLS (the RFC defines it for TLS alone:
    /// on bare TCP anyone could claim an address).
    pub alias: bool,
}

/// Headers the views carry in dedicated fields (or the driver writes itself).
fn is_core(name: &HeaderName) -> bool {
    matches!(
        name,
        HeaderName::Via
            | HeaderName::From
            | HeaderName::To
            | HeaderName::CallId
            | HeaderName::CSeq
            | HeaderName::Contact
            | HeaderName::RecordRoute
            | HeaderName::Route
            | HeaderName::MaxForwards
            | HeaderName::ContentLength
            | HeaderName::ContentType
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn name_addr(n: &sip::NameAddr) -> NameAddr {
    NameAddr { display: n.display.as_deref().map(text), uri: n.uri.to_string(), tag: n.tag.as_deref().map(text) }
}

fn record_route(headers: &sip::Headers) -> Result<Vec<String>, WireError> {
    let mut out = Vec::new();
    for line in headers.all(&HeaderName::RecordRoute) {
        let mut list = Vec::new();
        sip::NameAddr::parse_list(line, &mut list)
            .map_err(|why| WireError::Malformed { header: "Record-Route", why: why.to_owned() })?;
        out.extend(list.iter().map(|n| text(&n.raw).trim().to_owned()));
    }
    Ok(out)
}

fn extra_headers(headers: &sip::Headers) -> Vec<(String, String)> {
    headers.iter().filter(|h| !is_core(&h.name)).map(|h| (h.name.as_str().to_owned(), text(&h.value))).collect()
}

fn body(headers: &sip::Headers, body: &Bytes) -> Option<Body> {
    if body.is_empty() {
        return None;
    }
    let content_type =
        headers.get(&HeaderName::ContentType).map(|v| text(v)).unwrap_or_else(|| "application/octet-stream".to_owned());
    Some(Body { content_type, data: body.clone() })
}

impl InRequest {
    /// The view of a parsed (and front-door validated) request.
    pub fn from_sip(req: &sip::Request) -> Result<InRequest, WireError> {
        Ok(InRequest {
            method: Method::parse(req.method().as_str()),
            request_uri: req.uri().to_string(),
            from: name_addr(req.from().ok_or(WireError::Missing("From"))?),
            to: name_addr(req.to().ok_or(WireError::Missing("To"))?),
            call_id: text(req.call_id().ok_or(WireError::Missing("Call-ID"))?),
            cseq: req.cseq().ok_or(WireError::Missing("CSeq"))?.seq,
            contact: req.contact_uri().map(|u| u.to_string()),
            record_route: record_route(req.headers())?,
            max_forwards: req.max_forwards().map(u32::from),
            body: body(req.headers(), req.body()),
            headers: extra_headers(req.headers()),
        })
    }
}

impl InResponse {
    pub fn from_sip(resp: &sip::Response) -> Result<InResponse, WireError> {
        Ok(InResponse {
            status: resp.status(),
            reason: text(resp.reason()),
            to_tag: resp.to().ok_or(WireError::Missing("To"))?.tag.as_deref().map(text),
            contact: resp.contact_uri().map(|u| u.to_string()),
            record_route: record_route(resp.headers())?,
            body: body(resp.headers(), resp.body()),
            headers: extra_headers(resp.headers()),
        })
    }
}

fn fmt_name_addr(n: &NameAddr) -> String {
    let mut s = String::with_capacity(n.uri.len() + 32);
    if let Some(d) = &n.display {
        s.push_str(d);
        s.push(' ');
    }
    s.push('<');
    s.push_str(&n.uri);
    s.push('>');
    if let Some(t) = &n.tag {
        s.push_str(";tag=");
        s.push_str(t);
    }
    s
}

fn parse_uri(uri: &str) -> Result<sip::Uri, WireError> {
    sip::Uri::parse(uri).map_err(|e| WireError::Uri { uri: uri.to_owned(), why: e.0 })
}

impl OutRequest {
    /// The wire request. For a CANCEL, `via.branch` must be the branch of the INVITE it
    /// cancels (RFC 3261 9.1); for everything else a fresh one.
    pub fn to_sip(&self, via: &ViaSpec) -> Result<sip::Request, WireError> {
        let method = sip::Method::from_bytes(self.method.as_str().as_bytes());
        let mut b = sip::Request::builder(method, parse_uri(&self.request_uri)?)
            .via_with(via.transport, &via.host, via.port, &via.branch, via.alias)
            .max_forwards(self.max_forwards.min(255) as u8)
            .from(&fmt_name_addr(&self.from))
            .to(&fmt_name_addr(&self.to))
            .call_id(&self.call_id)
            .cseq(self.cseq);
        for r in &self.route {
            b = b.header(HeaderName::Route, r);
        }
        if let Some(c) = &self.contact {
            b = b.contact(&parse_uri(c)?);
        }
        for (n, v) in &self.headers {
            b = b.header(HeaderName::from_bytes(Bytes::copy_from_slice(n.as_bytes())), v);
        }
        if let Some(body) = &self.body {
            b = b.body(&body.content_type, body.data.clone());
        }
        b.build().map_err(|e| WireError::Build(e.reason_phrase()))
    }
}

impl OutResponse {
    /// The wire response to `req` (the request of the server transaction the action names).
    pub fn to_sip(&self, req: &sip::Request) -> Result<sip::Response, WireError> {
        let mut b = sip::Response::builder(req, self.status).reason(self.reason.clone());
        if let Some(t) = &self.to_tag {
            b = b.to_tag(t);
        }
        for rr in &self.record_route {
            b = b.header(HeaderName::RecordRoute, Bytes::copy_from_slice(rr.as_bytes()));
        }
        if let Some(c) = &self.contact {
            b = b.contact(&parse_uri(c)?);
        }
        for (n, v) in &self.headers {
            b = b.header(HeaderName::from_bytes(Bytes::copy_from_slice(n.as_bytes())), Bytes::copy_from_slice(v.as_bytes()));
        }
        if let Some(body) = &self.body {
            b = b.body(&body.content_type, body.data.clone());
        }
        Ok(b.build())
    }
}
