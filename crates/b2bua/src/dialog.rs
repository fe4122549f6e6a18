//! Dialog state for one leg (RFC 3261 section 12) and in-dialog request construction.

use crate::msg::{Method, NameAddr, OutRequest};

/// One dialog as a UAS or UAC sees it. Public so a driver that answers a call itself (the
/// IVR in front of a bridge) builds its in-dialog requests (BYE, REFER) by the same rules.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    /// Our side: the From we put in requests we send (with our tag).
    pub local: NameAddr,
    /// Their side: the To we put in requests we send (with their tag).
    pub remote: NameAddr,
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    /// Highest CSeq seen in requests from the peer; `None` before the first one.
    pub remote_cseq: Option<u32>,
    pub local_contact: String,
}

impl Dialog {
    /// The dialog we create by answering `invite` with To-tag `local_tag` (RFC 3261 12.1.1):
    /// the route set is the Record-Route in order, the remote target its Contact.
    pub fn uas(invite: &crate::msg::InRequest, local_tag: &str, local_contact: &str) -> Dialog {
        Dialog {
            call_id: invite.call_id.clone(),
            local: NameAddr { tag: Some(local_tag.to_owned()), ..invite.to.clone() },
            remote: invite.from.clone(),
            remote_target: invite.contact.clone().unwrap_or_else(|| invite.from.uri.clone()),
            route_set: invite.record_route.clone(),
            local_cseq: 0,
            remote_cseq: Some(invite.cseq),
            local_contact: local_contact.to_owned(),
        }
    }

    /// A new in-dialog request with the next CSeq (RFC 3261 12.2.1.1).
    pub fn request(&mut self, method: Method) -> OutRequest {
        self.local_cseq = self.local_cseq.wrapping_add(1).max(1);
        let cseq = self.local_cseq;
        self.request_with_cseq(method, cseq)
    }

    /// ACK for a 2xx: same CSeq number as the INVITE it acknowledges (RFC 3261 13.2.2.4).
    pub fn ack(&self, invite_cseq: u32) -> OutRequest {
        self.request_with_cseq(Method::Ack, invite_cseq)
    }

    fn request_with_cseq(&self, method: Method, cseq: u32) -> OutRequest {
        let (request_uri, route) = target_and_route(&self.remote_target, &self.route_set);
        OutRequest {
            contact: matches!(method, Method::Invite | Method::Update).then(|| self.local_contact.clone()),
            method,
            request_uri,
            from: self.local.clone(),
            to: self.remote.clone(),
            call_id: self.call_id.clone(),
            cseq,
            route,
            max_forwards: 70,
            body: None,
            headers: Vec::new(),
        }
    }

    /// Checks an incoming in-dialog request's CSeq (RFC 3261 12.2.2): it must be higher than
    /// any seen before. Returns false for an out-of-order request (to be answered 500).
    pub fn accept_remote_cseq(&mut self, cseq: u32) -> bool {
        match self.remote_cseq {
            Some(prev) if cseq <= prev => false,
            _ => {
                self.remote_cseq = Some(cseq);
                true
            }
        }
    }
}

/// Request-URI and Route header for a target and route set, handling strict routers
/// (first route without `;lr`) per RFC 3261 12.2.1.1.
pub(crate) fn target_and_route(remote_target: &str, route_set: &[String]) -> (String, Vec<String>) {
    match route_set.first() {
        None => (remote_target.to_owned(), Vec::new()),
        Some(first) if is_loose(first) => (remote_target.to_owned(), route_set.to_vec()),
        Some(first) => {
            let uri = strip_uri_params(&bare_uri(first));
            let mut route: Vec<String> = route_set[1..].to_vec();
            route.push(format!("<{remote_target}>"));
            (uri, route)
        }
    }
}

/// The URI inside a `<...>` route entry (or the entry itself when it has no brackets).
pub(crate) fn bare_uri(entry: &str) -> String {
    let e = entry.trim();
    match (e.find('<'), e.rfind('>')) {
        (Some(s), Some(t)) if s < t => e[s + 1..t].to_owned(),
        _ => e.split(';').next().unwrap_or(e).to_owned(),
    }
}

fn is_loose(entry: &str) -> bool {
    bare_uri(entry)
        .split(';')
        .skip(1)
        .any(|p| p.split('=').next().is_some_and(|n| n.trim().eq_ignore_ascii_case("lr")))
}

/// RFC 3261 19.1.5: a Request-URI taken from a strict route drops parameters not allowed there;
/// method and header parts are never allowed.
fn strip_uri_params(uri: &str) -> String {
    let no_headers = uri.split('?').next().unwrap_or(uri);
    no_headers
        .split(';')
        .enumerate()
        .filter(|(i, p)| *i == 0 || !p.to_ascii_lowercase().starts_with("method="))
        .map(|(_, p)| p)
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_routing_keeps_target() {
        let rs = vec!["<sip:p1.example.net;lr>".to_owned(), "<sip:p2.example.net;lr>".to_owned()];
        let (ruri, route) = target_and_route("sip:agent@10.0.0.5:5060", &rs);
        assert_eq!(ruri, "sip:agent@10.0.0.5:5060");
        assert_eq!(route, rs);
    }

    #[test]
    fn strict_router_becomes_request_uri() {
        let rs = vec!["<sip:strict.example.net>".to_owned(), "<sip:p2.example.net;lr>".to_owned()];
        let (ruri, route) = target_and_route("sip:agent@10.0.0.5", &rs);
        assert_eq!(ruri, "sip:strict.example.net");
        assert_eq!(route, vec!["<sip:p2.example.net;lr>".to_owned(), "<sip:agent@10.0.0.5>".to_owned()]);
    }

    #[test]
    fn remote_cseq_must_increase() {
        let mut d = Dialog {
            call_id: "c".into(),
            local: NameAddr::new("sip:a"),
            remote: NameAddr::new("sip:b"),
            remote_target: "sip:b".into(),
            route_set: vec![],
            local_cseq: 0,
            remote_cseq: Some(5),
            local_contact: "sip:me".into(),
        };
        assert!(!d.accept_remote_cseq(5));
        assert!(!d.accept_remote_cseq(3));
        assert!(d.accept_remote_cseq(6));
        assert_eq!(d.request(Method::Bye).cseq, 1);
        assert_eq!(d.request(Method::Bye).cseq, 2);
    }
}
