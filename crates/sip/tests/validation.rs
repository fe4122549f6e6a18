//! Front-door validation and message building on synthetic carrier traffic.

use proptest::prelude::*;
use veertien_sip::{
    HeaderName, Message, Method, Policy, Request, Response, Transport, Uri, multipart_sdp, validate_request,
    validate_request_with,
};

fn invite_with(extra_headers: &str, content_type: Option<&str>, body: &str) -> String {
    let ct = content_type.map(|c| format!("Content-Type: {c}\r\n")).unwrap_or_default();
    format!(
        "INVITE sip:14020@veertien.example;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: <sip:14020@veertien.example;user=phone>\r\n\
From: \"Alice\" <sip:0612345678@carrier.example>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:0612345678@192.0.2.1>\r\n\
{extra_headers}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn req(text: &str) -> Request {
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

fn status_of(text: &str) -> Option<u16> {
    validate_request(&req(text)).err().map(|r| r.status)
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";

#[test]
fn a_plain_carrier_invite_passes() {
    assert_eq!(status_of(&invite_with("", Some("application/sdp"), SDP)), None);
    // Late offer (no body) is fine too.
    assert_eq!(status_of(&invite_with("", None, "")), None);
}

#[test]
fn max_forwards_zero_is_483_for_invite_but_options_is_answered() {
    let t = invite_with("", Some("application/sdp"), SDP).replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(status_of(&t), Some(483));
    let opt = "OPTIONS sip:veertien.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKo\r\nMax-Forwards: 0\r\n\
To: <sip:veertien.example>\r\nFrom: <sip:mon@carrier.example>;tag=1\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(status_of(opt), None);
}

#[test]
fn max_forwards_above_255_is_rejected() {
    let t = invite_with("", None, "").replace("Max-Forwards: 70", "Max-Forwards: 256");
    let rej = validate_request(&req(&t)).unwrap_err();
    assert_eq!((rej.status, rej.reason.as_ref()), (400, "Bad Request (Max-Forwards out of range)"));
}

#[test]
fn content_types_for_invite() {
    assert_eq!(status_of(&invite_with("", Some("text/plain"), "hello")), Some(415));
    assert_eq!(status_of(&invite_with("", None, SDP)), Some(400), "body without Content-Type");
    assert_eq!(status_of(&invite_with("Content-Encoding: gzip\r\n", Some("application/sdp"), SDP)), Some(415));
    let multipart = format!(
        "--b1\r\nContent-Type: application/isup;version=itu-t92+\r\n\r\nxyz\r\n--b1\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--b1--\r\n"
    );
    let ok = invite_with("", Some("multipart/mixed;boundary=b1"), &multipart);
    assert_eq!(status_of(&ok), None);
    let r = req(&ok);
    assert_eq!(multipart_sdp(r.body(), b"b1"), Some(SDP.as_bytes()));
    let no_sdp = "--b1\r\nContent-Type: application/isup\r\n\r\nxyz\r\n--b1--\r\n";
    assert_eq!(status_of(&invite_with("", Some("multipart/mixed; boundary=\"b1\""), no_sdp)), Some(415));
    assert_eq!(status_of(&invite_with("", Some("multipart/mixed"), no_sdp)), Some(400), "no boundary");
}

#[test]
fn accept_must_allow_sdp() {
    assert_eq!(status_of(&invite_with("Accept: text/html\r\n", None, "")), Some(406));
    assert_eq!(status_of(&invite_with("Accept: application/*\r\n", None, "")), None);
    assert_eq!(status_of(&invite_with("Accept: text/html, application/sdp;level=1\r\n", None, "")), None);
}

#[test]
fn require_and_proxy_require() {
    let rej = validate_request(&req(&invite_with("Require: 100rel, timer\r\n", None, ""))).unwrap_err();
    assert_eq!(rej.status, 420);
    assert_eq!(rej.headers, vec![(HeaderName::Unsupported, "100rel, timer".to_string())]);
    let mut p = Policy { supported_extensions: vec!["timer".into(), "100rel".into()], ..Policy::default() };
    assert_eq!(validate_request_with(&req(&invite_with("Require: 100rel, timer\r\n", None, "")), &p), Ok(()));
    assert_eq!(status_of(&invite_with("Proxy-Require: foo\r\n", None, "")), Some(420));
    p.check_proxy_require = false;
    assert_eq!(validate_request_with(&req(&invite_with("Proxy-Require: foo\r\n", None, "")), &p), Ok(()));
    // Supported is informational and never refused.
    assert_eq!(status_of(&invite_with("Supported: replaces, timer\r\n", None, "")), None);
}

#[test]
fn methods_and_schemes() {
    let sub = invite_with("", None, "").replace("INVITE sip:", "SUBSCRIBE sip:").replace("314159 INVITE", "314159 SUBSCRIBE");
    let rej = validate_request(&req(&sub)).unwrap_err();
    assert_eq!(rej.status, 405);
    assert!(rej.headers.iter().any(|(n, v)| *n == HeaderName::Allow && v.contains("INVITE")));
    let foo = invite_with("", None, "").replace("INVITE sip:", "FOO sip:").replace("314159 INVITE", "314159 FOO");
    assert_eq!(status_of(&foo), Some(501));
    let tel = invite_with("", None, "").replace("INVITE sip:14020@veertien.example;user=phone", "INVITE tel:14020;phone-context=+31");
    assert_eq!(status_of(&tel), None);
    let p = Policy { accept_tel: false, ..Policy::default() };
    assert_eq!(validate_request_with(&req(&tel), &p).unwrap_err().status, 416);
    let http = invite_with("", None, "").replace("INVITE sip:14020@veertien.example;user=phone", "INVITE http://example.com/");
    assert_eq!(status_of(&http), Some(416));
    // Methods are case-sensitive: "invite" is an unknown method whose CSeq does not match.
    let lower = invite_with("", None, "").replace("INVITE sip:", "invite sip:");
    assert_eq!(status_of(&lower), Some(400));
}

#[test]
fn version_is_checked_first() {
    let t = invite_with("", None, "").replace("user=phone SIP/2.0", "user=phone SIP/3.0").replace("Call-ID: a84", "Call-ID: a 84");
    assert_eq!(status_of(&t), Some(505));
}

#[test]
fn ack_rejections_are_silent() {
    let ack = invite_with("", None, "").replace("INVITE sip:", "ACK sip:").replace("314159 INVITE", "314159 OPTIONS");
    let rej = validate_request(&req(&ack)).unwrap_err();
    assert!(rej.silent);
}

#[test]
fn folded_and_compact_headers() {
    let t = "INVITE sip:14020@veertien.example SIP/2.0\r\nv: SIP/2.0/UDP 192.0.2.1\r\n ;branch=z9hG4bKfold\r\n\
t: <sip:14020@veertien.example>\r\nf: <sip:a@b.example>\r\n ;tag=x\r\nMax-Forwards: 9\r\ni: fold1\r\nCSeq: 1\r\n\tINVITE\r\nl: 0\r\n\r\n";
    let r = req(t);
    assert_eq!(validate_request(&r), Ok(()));
    assert_eq!(r.top_via().unwrap().branch.as_deref(), Some(&b"z9hG4bKfold"[..]));
    assert_eq!(r.from().unwrap().tag.as_deref(), Some(&b"x"[..]));
    assert_eq!(r.cseq().unwrap().method, Method::Invite);
}

#[test]
fn request_builder_and_derived_requests() {
    let r = Request::builder(Method::Invite, Uri::parse("sip:+31205551234@gemeente.example;user=phone").unwrap())
        .via(Transport::Udp, "192.0.2.50", Some(5060), &veertien_sip::branch_from(0xdead_beef))
        .max_forwards(70)
        .from("<sip:+31612345678@veertien.example>;tag=b2b1")
        .to("<sip:+31205551234@gemeente.example>")
        .call_id("leg-b-1@veertien.example")
        .cseq(1)
        .contact(&Uri::parse("sip:b2bua@192.0.2.50:5060").unwrap())
        .body("application/sdp", SDP)
        .build()
        .unwrap();
    assert_eq!(validate_request(&r), Ok(()));
    assert_eq!(r.body().len(), SDP.len());
    assert!(r.top_via().unwrap().has_rfc3261_branch());
    let cancel = r.cancel();
    assert_eq!(cancel.method(), &Method::Cancel);
    assert_eq!(cancel.cseq().unwrap().seq, 1);
    assert_eq!(cancel.top_via().unwrap().branch, r.top_via().unwrap().branch);
    assert_eq!(validate_request(&req(&String::from_utf8_lossy(&cancel.to_bytes()))), Ok(()));
    let busy = Response::builder(&r, 486).to_tag("muni").build();
    let Message::Response(busy) = Message::parse(&busy.to_bytes()).unwrap() else { panic!() };
    let ack = r.ack_for(&busy);
    assert_eq!(ack.to().unwrap().tag.as_deref(), Some(&b"muni"[..]));
    assert_eq!(ack.cseq().unwrap().method, Method::Ack);
    // A malformed value handed to the builder is reported, not sent.
    let bad = Request::builder(Method::Options, Uri::parse("sip:x.example").unwrap())
        .via(Transport::Udp, "192.0.2.50", None, "z9hG4bK1")
        .from("<sip:a@b>;tag=1")
        .to("\"unterminated <sip:x.example>")
        .call_id("c")
        .cseq(1)
        .build();
    assert!(bad.is_err());
}

#[test]
fn response_to_tag_rules() {
    let r = req(&invite_with("", None, ""));
    let trying = Response::builder(&r, 100).to_tag("x").build();
    assert!(trying.to().unwrap().tag.is_none(), "no tag on 100 Trying");
    let redirect = Response::builder(&r, 302).to_tag("vt9").build();
    assert_eq!(redirect.to().unwrap().tag.as_deref(), Some(&b"vt9"[..]));
    let text = String::from_utf8(redirect.to_bytes().to_vec()).unwrap();
    assert!(text.starts_with("SIP/2.0 302 Moved Temporarily\r\n"));
    assert!(text.contains("\r\nTo: <sip:14020@veertien.example;user=phone>;tag=vt9\r\n"));
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(Message::Request(r)) = Message::parse(&data) {
            let _ = validate_request(&r);
        }
    }

    #[test]
    fn arbitrary_header_values_never_panic(name in "[A-Za-z-]{1,12}", value in "[ -~]{0,80}") {
        let t = invite_with(&format!("{name}: {value}\r\n"), None, "");
        if let Ok(Message::Request(r)) = Message::parse(t.as_bytes())
            && let Err(rej) = validate_request(&r)
        {
            let resp = rej.to_response(&r, "t");
            // Responses copy Via/From/To/Call-ID/CSeq verbatim (RFC 3261 8.2.6), so only
            // when the random header is none of those must the answer be well-formed.
            let copied = ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"];
            if !copied.contains(&name.to_ascii_lowercase().as_str()) {
                prop_assert!(Message::parse(&resp.to_bytes()).is_ok(), "{}", resp);
            }
        }
    }
}

/// Messages as the real peers of the integration tests write them (SIPp's uac scenario,
/// baresip), so the front door never refuses its own test tools.
#[test]
fn sipp_and_baresip_style_requests_pass() {
    let sipp = "INVITE sip:14020@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-21718-1-0\r\n\
From: sipp <sip:sipp@127.0.0.1:5061>;tag=21718SIPpTag001\r\n\
To: 14020 <sip:14020@127.0.0.1:5060>\r\n\
Call-ID: 1-21718@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@127.0.0.1:5061\r\n\
Max-Forwards: 70\r\n\
Subject: Performance Test\r\n\
Content-Type: application/sdp\r\n\
Content-Length:   129\r\n\r\n\
v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    assert_eq!(validate_request(&req(sipp)), Ok(()));
    let baresip = "INVITE sip:14020@[::1]:5060;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP [::1]:43210;branch=z9hG4bK3a5d0e8f1b2c4d6e;rport\r\n\
Contact: <sip:alice-0x55d5@[::1]:43210;transport=udp>\r\n\
Max-Forwards: 70\r\n\
To: <sip:14020@[::1]>\r\n\
From: \"Alice\" <sip:alice@[::1]>;tag=0a1b2c3d4e5f\r\n\
Call-ID: 6d2a8e3c4b1f0a9e\r\n\
CSeq: 27551 INVITE\r\n\
User-Agent: baresip v3.10.1 (x86_64/linux)\r\n\
Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE\r\n\
Supported: replaces,norefersub\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 0\r\n\r\n";
    let r = req(baresip);
    assert_eq!(validate_request(&r), Ok(()));
    assert_eq!(&r.top_via().unwrap().host[..], b"[::1]");
    let src: std::net::SocketAddr = "[::1]:43210".parse().unwrap();
    let mut r = r;
    r.stamp_received(src);
    assert_eq!(veertien_sip::response_target(r.top_via().unwrap(), src), Some(src));
}

/// RFC 3261 17.2.1 / 8.2: an ACK is never answered, not even a broken one. Every variant
/// below fails to parse; the front door must get no response to send.
#[test]
fn broken_acks_are_never_answered_but_other_broken_requests_are() {
    let headers = "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: <sip:14020@veertien.example>;tag=abc\r\n\
From: <sip:0612345678@carrier.example>;tag=1928301774\r\n\
Call-ID: ack-broken@pc33.example\r\n";
    let variants = [
        format!("ACK  SIP/2.0\r\n{headers}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"),
        format!("ACK sip: SIP/2.0\r\n{headers}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"),
        format!("ACK sip:14020@[::1 SIP/2.0\r\n{headers}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"),
        // The request line is unreadable; the CSeq says what it was.
        format!(" sip:14020@veertien.example SIP/2.0\r\n{headers}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"),
    ];
    for v in &variants {
        let err = Message::parse(v.as_bytes()).expect_err(v);
        assert!(veertien_sip::unparseable_is_ack(v.as_bytes()), "{v}");
        assert!(veertien_sip::reject_unparseable(v.as_bytes(), &err, "t").is_none(), "answered: {v}");
    }
    // The same fault in an OPTIONS is answered 400 naming it; `ack` is not the ACK method.
    for v in [
        format!("OPTIONS sip: SIP/2.0\r\n{headers}CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"),
        format!("ack sip: SIP/2.0\r\n{headers}CSeq: 1 ack\r\nContent-Length: 0\r\n\r\n"),
    ] {
        let err = Message::parse(v.as_bytes()).expect_err(&v);
        assert!(!veertien_sip::unparseable_is_ack(v.as_bytes()), "{v}");
        let r = veertien_sip::reject_unparseable(v.as_bytes(), &err, "t").unwrap_or_else(|| panic!("no 400: {v}"));
        assert_eq!(r.status(), 400, "{v}");
    }
}
