//! One UDP datagram from an untrusted peer: parse, validate, answer, and re-parse our answer.
//! Invariants: nothing panics; a message we parsed serialises to bytes we parse again; every
//! response we build to a request we accepted parses back with the same status. Rejections
//! (and best-effort 400s to unparseable input) copy the peer's From/To/Via verbatim as RFC 3261
//! §8.2.6.2 requires, so when those headers are the malformed part the response cannot parse
//! either (RFC 4475 3.1.2.x do exactly that); for them only the status line is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veertien_sip::{Message, Response, reject_unparseable, validate_request, validate_response};

fn must_parse_response(bytes: &[u8], status: u16, what: &str) {
    match Message::parse(bytes) {
        Ok(Message::Response(r)) => assert_eq!(r.status(), status, "{what}: status changed on re-parse"),
        Ok(Message::Request(_)) => panic!("{what}: our response re-parsed as a request"),
        Err(e) => panic!("{what}: our response does not parse: {e}\n{}", String::from_utf8_lossy(bytes)),
    }
}

fn must_start_with_status(bytes: &[u8], status: u16, what: &str) {
    let line = format!("SIP/2.0 {status} ");
    assert!(bytes.starts_with(line.as_bytes()), "{what}: bad status line\n{}", String::from_utf8_lossy(bytes));
}

fuzz_target!(|data: &[u8]| {
    match Message::parse(data) {
        Ok(Message::Request(req)) => {
            let again = req.to_bytes();
            if let Err(e) = Message::parse(&again) {
                panic!("re-serialised request does not parse: {e}\n{}", String::from_utf8_lossy(&again));
            }
            match validate_request(&req) {
                Ok(()) => {
                    for status in [100u16, 180, 200, 302, 486, 503] {
                        let resp = Response::builder(&req, status).to_tag("fz1").build();
                        must_parse_response(&resp.to_bytes(), status, "built response");
                    }
                }
                Err(rej) => {
                    if !rej.silent {
                        let resp = rej.to_response(&req, "fz1");
                        must_start_with_status(&resp.to_bytes(), rej.status, "rejection");
                    }
                }
            }
        }
        Ok(Message::Response(resp)) => {
            let _ = validate_response(&resp);
            let again = resp.to_bytes();
            if let Err(e) = Message::parse(&again) {
                panic!("re-serialised response does not parse: {e}\n{}", String::from_utf8_lossy(&again));
            }
        }
        Err(err) => {
            if let Some(resp) = reject_unparseable(data, &err, "fz1") {
                let status = resp.status();
                must_start_with_status(&resp.to_bytes(), status, "reject_unparseable");
            }
        }
    }
});
