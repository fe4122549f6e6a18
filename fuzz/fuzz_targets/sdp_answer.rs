//! An SDP body from an untrusted peer, as offer (we answer) and as answer (to our offer).
//! Invariants: nothing panics; when we answer an offer, our own answer is acceptable to an
//! offerer with the same policy and agrees on the codec.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use veertien_media::sdp::{self, LocalEndpoint, MediaPolicy};
use veertien_media::g711::Codec;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Ok(body) = std::str::from_utf8(rest) else { return };
    let policy = MediaPolicy {
        codecs: match flags & 3 {
            0 => vec![Codec::Pcma, Codec::Pcmu],
            1 => vec![Codec::Pcmu, Codec::Pcma],
            2 => vec![Codec::Pcma],
            _ => vec![Codec::Pcmu],
        },
        telephone_event: flags & 4 != 0,
        honour_offer_order: flags & 8 != 0,
        telephone_event_pt: 96 + (flags >> 4),
    };
    let addr = if flags & 0x80 != 0 { IpAddr::V6(Ipv6Addr::LOCALHOST) } else { IpAddr::V4(Ipv4Addr::LOCALHOST) };
    let local = LocalEndpoint { addr, port: 40000, session_id: 7, session_version: 1 };

    if let Ok((neg, ours)) = sdp::answer(body, &policy, &local) {
        match sdp::accept_answer(&ours, &policy) {
            Ok(back) => assert_eq!(back.codec, neg.codec, "our answer names another codec\n{ours}"),
            Err(e) => panic!("our own answer is refused: {e}\noffer:\n{body}\nanswer:\n{ours}"),
        }
    }
    let _ = sdp::accept_answer(body, &policy);
    let _ = sdp::offer(&policy, &local);
});
