//! Our Contact on the B-leg follows how the driver carries that leg (`BLegSetup`): the
//! destination sends its BYE and re-INVITE to it, so over TCP or TLS it must name an address
//! that reaches us over that transport, in our requests and in our answers alike.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use support::*;
use veertien_b2bua::*;

const TLS_US: &str = "sip:veertien@10.1.1.1:5061;transport=tls";

fn carried(route: Vec<RouteStep>, legs: &[(&str, Result<LegTransport, String>)]) -> (H, Vec<Action>) {
    let legs: BTreeMap<String, Result<LegTransport, String>> = legs.iter().map(|(u, t)| (u.to_string(), t.clone())).collect();
    H::start_carried(config(), route, invite_a(Some(A_SDP)), BTreeSet::new(), legs)
}

fn tls(at: &str) -> Result<LegTransport, String> {
    Ok(LegTransport::Tls(at.parse().unwrap()))
}

/// Answers the B-leg INVITE `id` and ACKs our 200 on the caller's leg.
fn answered(h: &mut H, id: RequestId) {
    h.respond(id, resp(200, Some("t1"), Some(B_SDP)));
    h.ev(Event::Ack { request: a_req(Method::Ack, 10, None) });
}

/// The contact of our only response on `leg` among `actions`, with its status.
fn answer_contact(actions: &[Action], leg: Leg) -> (u16, Option<String>) {
    let r = responses(actions, leg);
    assert_eq!(r.len(), 1, "expected one response on {leg:?} in {actions:#?}");
    (r[0].1.status, r[0].1.contact.clone())
}

#[test]
fn a_tls_leg_names_our_tls_address_in_requests_and_in_answers() {
    let primary = "sip:kcc@10.0.0.5;transport=tls";
    let (mut h, first) = carried(vec![bridge("primary", primary, None)], &[(primary, tls("10.1.1.1:5061"))]);
    let (id, inv) = the_invite(&first);
    assert_eq!(inv.contact.as_deref(), Some(TLS_US));
    answered(&mut h, id);

    // The destination refreshes the session without SDP: we answer, and stay on TLS.
    let t = h.ev(Event::Request { txn: ServerTxn(30), request: b_req(Method::Invite, &inv, "t1", 2, None) });
    assert_eq!(answer_contact(&t, Leg::B), (200, Some(TLS_US.into())));
    h.ev(Event::Ack { request: b_req(Method::Ack, &inv, "t1", 2, None) });

    // Its re-INVITE with SDP goes to the caller; our 200 relaying the caller's answer too.
    let moved = B_SDP.replace("203.0.113.20", "203.0.113.99");
    let t = h.ev(Event::Request { txn: ServerTxn(31), request: b_req(Method::Invite, &inv, "t1", 3, Some(&moved)) });
    let (fid, leg, _, to_caller) = sends_of(&t, Method::Invite)[0].clone();
    assert_eq!((leg, to_caller.contact.as_deref()), (Leg::A, Some("sip:veertien@192.0.2.1:5060")), "the caller's leg keeps its own");
    let t = h.respond(fid, resp(200, Some("ctag"), Some(A_SDP)));
    assert_eq!(answer_contact(&t, Leg::B), (200, Some(TLS_US.into())));
    h.ev(Event::Ack { request: b_req(Method::Ack, &inv, "t1", 3, None) });

    // The caller's re-INVITE reaches the destination as ours, naming TLS again.
    let hold = A_SDP.replace("a=sendrecv", "a=sendonly");
    let t = h.ev(Event::Request { txn: ServerTxn(32), request: a_req(Method::Invite, 11, Some(&hold)) });
    let (_, leg, _, to_destination) = sends_of(&t, Method::Invite)[0].clone();
    assert_eq!((leg, to_destination.contact.as_deref()), (Leg::B, Some(TLS_US)));
}

#[test]
fn a_sips_dialog_gets_a_sips_contact_at_our_end_of_the_connection() {
    // Without a TLS listener the driver names its own end of the connection it opens.
    let primary = "sips:kcc@10.0.0.5";
    let (mut h, first) = carried(vec![bridge("primary", primary, None)], &[(primary, tls("10.1.1.1:40123"))]);
    let (id, inv) = the_invite(&first);
    assert_eq!(inv.contact.as_deref(), Some("sips:veertien@10.1.1.1:40123"));
    answered(&mut h, id);
    let t = h.ev(Event::Request { txn: ServerTxn(30), request: b_req(Method::Invite, &inv, "t1", 2, None) });
    assert_eq!(answer_contact(&t, Leg::B), (200, Some("sips:veertien@10.1.1.1:40123".into())));

    // A `sips:` first Route makes the dialog `sips:` too (RFC 3261 8.1.1.8).
    let cfg = CallConfig { trunk_route: vec!["<SIPS:sbc.gemeente.example;lr>".into()], ..config() };
    let legs = BTreeMap::from([(PRIMARY.to_owned(), tls("10.1.1.1:40124"))]);
    let (_, first) = H::start_carried(cfg, vec![bridge("primary", PRIMARY, None)], invite_a(Some(A_SDP)), BTreeSet::new(), legs);
    assert_eq!(the_invite(&first).1.contact.as_deref(), Some("sips:veertien@10.1.1.1:40124"));
}

#[test]
fn a_tcp_leg_names_tcp_and_an_ipv6_address_in_brackets() {
    let primary = "sip:kcc@[2001:db8::5];transport=tcp";
    let tcp = Ok(LegTransport::Tcp("[2001:db8::1]:5060".parse().unwrap()));
    let (_, first) = carried(vec![bridge("primary", primary, None)], &[(primary, tcp)]);
    assert_eq!(the_invite(&first).1.contact.as_deref(), Some("sip:veertien@[2001:db8::1]:5060;transport=tcp"));
}

#[test]
fn a_udp_leg_keeps_the_configured_contact_after_a_tls_one() {
    // The primary is reached over TLS and is busy; the overflow is a UDP leg with our
    // configured Contact, in its INVITE and in our answer to its session refresh.
    let primary = "sip:kcc@10.0.0.5;transport=tls";
    let route = vec![bridge("primary", primary, None), bridge("overflow", OVERFLOW, None)];
    let (mut h, first) = carried(route, &[(primary, tls("10.1.1.1:5061"))]);
    let (id, _) = the_invite(&first);
    let t = h.respond(id, resp(486, Some("t1"), None));
    let (id, inv) = the_invite(&t);
    assert_eq!((inv.to.uri.as_str(), inv.contact.as_deref()), (OVERFLOW, Some("sip:veertien@10.1.1.1:5060")));
    answered(&mut h, id);
    let t = h.ev(Event::Request { txn: ServerTxn(30), request: b_req(Method::Invite, &inv, "t1", 2, None) });
    assert_eq!(answer_contact(&t, Leg::B), (200, Some("sip:veertien@10.1.1.1:5060".into())));
}

#[test]
fn a_leg_the_driver_cannot_carry_is_passed_as_unreachable_with_its_reason() {
    let primary = "sips:kcc@10.0.0.5";
    let why = "no TLS connection may be opened (sip.tcp_max_connections reached)";
    let route = vec![bridge("primary", primary, None), bridge("overflow", OVERFLOW, None)];
    let (mut h, first) = carried(route, &[(primary, Err(why.to_owned()))]);
    // No INVITE to the primary: the overflow is called at once.
    let (id, inv) = the_invite(&first);
    assert_eq!(inv.to.uri, OVERFLOW);
    assert_eq!(inv.call_id, format!("{TOKEN}-2"), "the primary's attempt keeps its number");
    answered(&mut h, id);
    let t = h.ev(Event::Request { txn: ServerTxn(30), request: b_req(Method::Bye, &inv, "t1", 2, None) });
    let t = h.respond(sends_of(&t, Method::Bye)[0].0, resp(200, None, None));
    let s = summary(&t).expect("the call is over");
    assert_eq!(s.outcome, Outcome::Answered);
    assert_eq!(s.attempts[0].destination, primary);
    assert_eq!(s.attempts[0].result, AttemptResult::Unreachable { reason: why.to_owned() });
    assert!(s.attempts[0].started_at.is_some());
}

/// The destination's SDP with a long codec list: over 1300 bytes, so a UA whose path MTU is
/// unknown sends the request carrying it over TCP (RFC 3261 18.1.1), here from `rtp`.
fn sdp_too_large_for_udp(rtp: &str) -> String {
    let (ip, port) = rtp.split_once(':').unwrap();
    let pts: Vec<String> = (96..=127).map(|pt| pt.to_string()).collect();
    let mut sdp = format!("v=0\r\no=pbx 5 6 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8 {}\r\n", pts.join(" "));
    for pt in &pts {
        sdp.push_str(&format!("a=rtpmap:{pt} x-pbx-codec-{pt}/8000\r\na=fmtp:{pt} mode=20;annexb=no\r\n"));
    }
    sdp.push_str("a=sendrecv\r\n");
    assert!(sdp.len() > 1300, "{} bytes", sdp.len());
    sdp
}

#[test]
fn a_udp_dialog_stays_udp_when_the_destination_re_invites_over_tcp() {
    // The machine never sees the transport a request came on; what it sees of TCP here is the
    // destination's Contact naming it. Our answer must still name the dialog's own UDP
    // Contact: a TCP one would retarget the destination's later requests of this dialog to a
    // transport the leg was not set up on.
    let udp_us = "sip:veertien@10.1.1.1:5060";
    let (mut h, first) = H::start(vec![bridge("primary", PRIMARY, None)], invite_a(Some(A_SDP)));
    let (id, inv) = the_invite(&first);
    assert_eq!(inv.contact.as_deref(), Some(udp_us));
    answered(&mut h, id);

    let mut reinvite = b_req(Method::Invite, &inv, "t1", 2, Some(&sdp_too_large_for_udp("203.0.113.99:40002")));
    reinvite.contact = Some("sip:agent7@10.9.9.9:5070;transport=tcp".into());
    let t = h.ev(Event::Request { txn: ServerTxn(30), request: reinvite });
    assert!(responses(&t, Leg::B).is_empty(), "an offer is the caller's to answer: {t:#?}");
    assert!(t.contains(&Action::Media(MediaAction::Connect { side: Leg::B, remote: "203.0.113.99:40002".parse().unwrap() })));
    let (fid, leg, _, to_caller) = sends_of(&t, Method::Invite)[0].clone();
    assert_eq!(leg, Leg::A);
    let offer = body_text(&to_caller.body);
    assert!(offer.contains("m=audio 20000 RTP/AVP 8 96 ") && offer.contains("a=rtpmap:127 x-pbx-codec-127/8000"), "{offer}");

    let t = h.respond(fid, resp(200, Some("ctag"), Some(A_SDP)));
    assert_eq!(answer_contact(&t, Leg::B), (200, Some(udp_us.into())));
    assert_eq!(sends_of(&t, Method::Ack).len(), 1, "the caller's 200 is ACKed: {t:#?}");
    h.ev(Event::Ack { request: b_req(Method::Ack, &inv, "t1", 2, None) });

    // The call still works: the destination's BYE ends both legs.
    let t = h.ev(Event::Request { txn: ServerTxn(31), request: b_req(Method::Bye, &inv, "t1", 3, None) });
    assert_eq!(statuses(&t, Leg::B), vec![200]);
    let bye = sends_of(&t, Method::Bye);
    assert_eq!((bye.len(), bye[0].1), (1, Leg::A), "{t:#?}");
    let s = summary(&h.respond(bye[0].0, resp(200, Some("ctag"), None))).expect("the call is over");
    assert_eq!((s.outcome, s.ended_by), (Outcome::Answered, Some(Party::Callee)));
}
