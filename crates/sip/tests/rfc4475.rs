//! RFC 4475 torture messages: every file in data/sip/rfc4475 with the outcome the front door
//! must produce, plus robustness checks (no panics, mutated inputs).

use std::path::PathBuf;

use proptest::prelude::*;
use veertien_sip::{
    HeaderName, Message, Method, Policy, Response, reject_unparseable, response_target, validate_request,
    validate_request_with, validate_response,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Request accepted by the front door (would be processed).
    Process,
    /// Request answered with this status (either from validation or from a parse error).
    Reject(u16),
    /// Response that must be accepted.
    Accept,
    /// Response that must be discarded.
    Discard,
}
use Expect::*;

/// The expected outcome at the veertien front door (default [`Policy`]: INVITE, ACK, BYE,
/// CANCEL, OPTIONS, INFO; not a registrar, so a well-formed REGISTER gets 405).
const TABLE: &[(&str, Expect)] = &[
    ("wsinv", Process),
    ("intmeth", Reject(501)),
    ("esc01", Process),
    ("escnull", Reject(405)),
    ("esc02", Reject(501)),
    ("lwsdisp", Process),
    ("longreq", Process),
    ("dblreq", Reject(405)),
    ("semiuri", Process),
    ("transports", Process),
    ("mpart01", Reject(405)),
    ("unreason", Accept),
    ("noreason", Accept),
    ("badinv01", Reject(400)),
    ("clerr", Reject(400)),
    ("ncl", Reject(400)),
    ("scalar02", Reject(400)),
    ("scalarlg", Discard),
    ("quotbal", Reject(400)),
    ("ltgtruri", Reject(400)),
    ("lwsruri", Reject(400)),
    ("lwsstart", Reject(400)),
    ("trws", Reject(400)),
    ("escruri", Reject(400)),
    // RFC 4475 3.1.2.12 allows processing while ignoring the bad Date; we never read Date.
    ("baddate", Process),
    // 3.1.2.13-15: "robust elements may accept"; the front door is strict and refuses.
    ("regbadct", Reject(400)),
    ("badaspec", Reject(400)),
    ("baddn", Reject(400)),
    ("badvers", Reject(505)),
    ("mismatch01", Reject(400)),
    ("mismatch02", Reject(400)),
    ("bigcode", Discard),
    ("badbranch", Process),
    ("insuf", Reject(400)),
    ("unkscm", Reject(416)),
    ("novelsc", Reject(416)),
    ("unksm2", Reject(405)),
    ("bext01", Reject(420)),
    ("invut", Reject(415)),
    ("regaut01", Reject(405)),
    ("multi01", Reject(400)),
    ("mcl01", Reject(400)),
    ("bcast", Discard),
    ("zeromf", Process),
    ("cparam01", Reject(405)),
    ("cparam02", Reject(405)),
    ("regescrt", Reject(405)),
    ("sdp01", Reject(406)),
    ("inv2543", Process),
    ("test", Reject(400)),
];

/// Messages RFC 4475 calls valid REGISTERs (or valid but for a method we do not serve): with
/// a policy that allows their method they must pass validation entirely.
const VALID_OTHER_METHOD: &[&str] = &["escnull", "dblreq", "mpart01", "unksm2", "cparam01", "cparam02", "regescrt", "regaut01"];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/sip/rfc4475")
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{name}.dat"))).unwrap_or_else(|e| panic!("{name}.dat: {e}"))
}

fn outcome(bytes: &[u8]) -> (Expect, Option<String>) {
    match Message::parse(bytes) {
        Ok(Message::Request(r)) => match validate_request(&r) {
            Ok(()) => (Process, None),
            Err(rej) => (Reject(rej.status), Some(rej.reason.to_string())),
        },
        Ok(Message::Response(r)) => match validate_response(&r) {
            Ok(()) => (Accept, None),
            Err(d) => (Discard, Some(d.to_string())),
        },
        Err(e) if bytes.starts_with(b"SIP/") => (Discard, Some(e.to_string())),
        Err(e) => (Reject(e.status), Some(e.reason_phrase())),
    }
}

#[test]
fn table_covers_every_file_in_index() {
    let index = std::fs::read_to_string(dir().join("INDEX.tsv")).unwrap();
    let names: Vec<&str> = index.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(names.len(), 50);
    for n in &names {
        assert!(TABLE.iter().any(|(t, _)| t == n), "{n} missing from the table");
    }
    assert_eq!(TABLE.len(), names.len());
}

#[test]
fn every_torture_message_gets_the_expected_outcome() {
    let mut failures = Vec::new();
    for (name, expected) in TABLE {
        let (got, why) = outcome(&load(name));
        if got != *expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?} ({why:?})"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn valid_messages_for_other_methods_pass_when_the_method_is_allowed() {
    let mut policy = Policy::default();
    policy.allowed_methods.extend([Method::Register, Method::Message]);
    for name in VALID_OTHER_METHOD {
        let Message::Request(r) = Message::parse(&load(name)).unwrap() else { panic!("{name}: not a request") };
        assert_eq!(validate_request_with(&r, &policy), Ok(()), "{name}");
    }
}

#[test]
fn reason_phrases_name_the_fault() {
    let cases = [
        ("clerr", "Bad Request (Content-Length larger than message)"),
        ("ncl", "Bad Request (Invalid Content-Length)"),
        ("scalar02", "Bad Request (Invalid CSeq number)"),
        ("quotbal", "Bad Request (Unterminated quoted string)"),
        ("ltgtruri", "Bad Request (Malformed Request-URI)"),
        ("lwsstart", "Bad Request (Malformed Request-Line)"),
        ("trws", "Bad Request (Malformed Request-Line)"),
        ("escruri", "Bad Request (Headers in Request-URI)"),
        ("badinv01", "Bad Request (Malformed Via parameter)"),
        ("insuf", "Bad Request (Missing From)"),
        ("multi01", "Bad Request (Multiple CSeq headers)"),
        ("mcl01", "Bad Request (Multiple Content-Length headers)"),
        ("mismatch01", "Bad Request (CSeq method does not match request method)"),
        ("badvers", "Version Not Supported"),
        ("test", "Bad Request (Malformed Request-Line)"),
    ];
    for (name, phrase) in cases {
        let (_, why) = outcome(&load(name));
        assert_eq!(why.as_deref(), Some(phrase), "{name}");
    }
}

#[test]
fn unparseable_requests_still_get_an_answer_when_possible() {
    for name in ["clerr", "ncl", "ltgtruri", "lwsruri", "lwsstart", "trws", "mcl01"] {
        let bytes = load(name);
        let err = Message::parse(&bytes).unwrap_err();
        let resp = reject_unparseable(&bytes, &err, "vt1").unwrap_or_else(|| panic!("{name}: no response"));
        assert_eq!(resp.status(), 400, "{name}");
        assert!(resp.reason().starts_with(b"Bad Request ("), "{name}");
        // The answer must itself be a valid response a UAC would accept.
        let Message::Response(back) = Message::parse(&resp.to_bytes()).unwrap() else { panic!() };
        validate_response(&back).unwrap();
        let had_tag = memchr_find(&bytes, b";tag=3xfe");
        let tag = back.to().unwrap().tag.clone().unwrap();
        assert_eq!(&tag[..], if had_tag { &b"3xfe-9921883-z9f"[..] } else { b"vt1" }, "{name}");
    }
    // No Via at all: nothing to answer to.
    let bytes = load("test");
    let err = Message::parse(&bytes).unwrap_err();
    assert!(reject_unparseable(&bytes, &err, "x").is_none());
    // Responses are never answered.
    let bytes = load("bigcode");
    let err = Message::parse(&bytes).unwrap_err();
    assert!(reject_unparseable(&bytes, &err, "x").is_none());
}

#[test]
fn rejections_carry_required_headers() {
    let Message::Request(r) = Message::parse(&load("bext01")).unwrap() else { panic!() };
    let rej = validate_request(&r).unwrap_err();
    let resp = rej.to_response(&r, "t");
    let unsupported: Vec<&[u8]> = resp.headers().list(&HeaderName::Unsupported).collect();
    assert_eq!(
        unsupported,
        vec![&b"nothingSupportsThis"[..], b"nothingSupportsThisEither", b"noProxiesSupportThis", b"norDoAnyProxiesSupportThis"]
    );
    let Message::Request(r) = Message::parse(&load("escnull")).unwrap() else { panic!() };
    let resp = validate_request(&r).unwrap_err().to_response(&r, "t");
    assert_eq!(resp.status(), 405);
    assert_eq!(&resp.headers().get(&HeaderName::Allow).unwrap()[..], b"INVITE, ACK, BYE, CANCEL, OPTIONS, INFO");
    let Message::Request(r) = Message::parse(&load("invut")).unwrap() else { panic!() };
    let resp = validate_request(&r).unwrap_err().to_response(&r, "t");
    assert_eq!(resp.status(), 415);
    assert_eq!(&resp.headers().get(&HeaderName::Accept).unwrap()[..], b"application/sdp");
}

#[test]
fn datagram_with_two_requests_processes_only_the_first() {
    let Message::Request(r) = Message::parse(&load("dblreq")).unwrap() else { panic!() };
    assert_eq!(r.method(), &Method::Register);
    assert!(r.body().is_empty());
    // On a stream, the same bytes are two messages.
    let mut f = veertien_sip::tcp::Framer::new(65535);
    f.push(&load("dblreq")).unwrap();
    let first = f.next_message().unwrap().unwrap();
    let second = f.next_message().unwrap().unwrap();
    assert!(matches!(first, Message::Request(ref r) if *r.method() == Method::Register));
    assert!(matches!(second, Message::Request(ref r) if *r.method() == Method::Invite && r.body().len() == 150));
}

#[test]
fn tortuous_invite_fields_are_understood() {
    let Message::Request(r) = Message::parse(&load("wsinv")).unwrap() else { panic!() };
    assert_eq!(r.via().len(), 3);
    assert_eq!(r.max_forwards(), Some(68));
    assert_eq!(r.cseq().unwrap().seq, 9);
    assert_eq!(r.to().unwrap().tag.as_deref(), Some(&b"1918181833n"[..]));
    assert_eq!(r.from().unwrap().tag.as_deref(), Some(&b"98asjd8"[..]));
    assert_eq!(r.body().len(), 150);
    assert_eq!(r.contact_uri().unwrap().to_string(), "sip:jdrosen@example.com");
    let Message::Request(r) = Message::parse(&load("mpart01")).unwrap() else { panic!() };
    assert_eq!(r.body().len(), 553);
}

#[test]
fn broadcast_via_is_never_a_response_target() {
    let Message::Response(r) = Message::parse(&load("bcast")).unwrap() else { panic!() };
    assert!(validate_response(&r).is_err());
    let src = "192.0.2.198:5060".parse().unwrap();
    assert_eq!(response_target(&r.via()[1], "255.255.255.255:5060".parse().unwrap()), None);
    assert!(response_target(&r.via()[0], src).is_some());
}

#[test]
fn response_builder_copies_8_2_6_fields() {
    let Message::Request(r) = Message::parse(&load("wsinv")).unwrap() else { panic!() };
    let resp: Response = Response::builder(&r, 302)
        .to_tag("ignored-since-request-had-one")
        .contact(&veertien_sip::Uri::parse("sip:+31201234567@gemeente.example").unwrap())
        .build();
    let Message::Response(back) = Message::parse(&resp.to_bytes()).unwrap() else { panic!() };
    assert_eq!(back.via(), r.via());
    assert_eq!(back.call_id(), r.call_id());
    assert_eq!(back.cseq(), r.cseq());
    assert_eq!(back.from().unwrap().tag, r.from().unwrap().tag);
    assert_eq!(back.to().unwrap().tag, r.to().unwrap().tag);
    assert_eq!(back.contact_uri().unwrap().to_string(), "sip:+31201234567@gemeente.example");
    assert_eq!(back.status(), 302);
}

#[test]
fn no_torture_message_panics_under_truncation() {
    for (name, _) in TABLE {
        let bytes = load(name);
        for cut in 0..bytes.len() {
            let _ = outcome(&bytes[..cut]);
            let _ = outcome(&bytes[cut..]);
        }
    }
}

fn memchr_find(h: &[u8], n: &[u8]) -> bool {
    h.windows(n.len()).any(|w| w == n)
}

fn all_messages() -> Vec<Vec<u8>> {
    TABLE.iter().map(|(n, _)| load(n)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_torture_messages_never_panic(
        idx in 0usize..50,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let msgs = all_messages();
        let mut m = msgs[idx % msgs.len()].clone();
        for (pos, byte, op) in edits {
            if m.is_empty() { break; }
            let i = pos.index(m.len());
            match op {
                0 => m[i] = byte,
                1 => { m.remove(i); }
                _ => m.insert(i, byte),
            }
        }
        let (_, _) = outcome(&m);
        if let Ok(Message::Request(r)) = Message::parse(&m) {
            // Building a response from any accepted request must not panic either.
            let resp = Response::builder(&r, 400).to_tag("x").build();
            let _ = Message::parse(&resp.to_bytes());
        } else if let Err(e) = Message::parse(&m) {
            let _ = reject_unparseable(&m, &e, "x");
        }
        let mut f = veertien_sip::tcp::Framer::new(4096);
        if f.push(&m).is_ok() {
            while let Ok(Some(_)) = f.next_message() {}
        }
    }
}
