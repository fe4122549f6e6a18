//! The machine driven with real wire messages through `veertien-sip`, and routes from the real
//! national number plan through `veertien-core`.

mod support;

use support::*;
use veertien_b2bua::*;
use veertien_core::{Decision, Plan, Settings, decide_for};
use veertien_sip as sip;

const CARRIER_INVITE: &str = "INVITE sip:140113@192.0.2.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKcarrier1\r\n\
Record-Route: <sip:edge1.carrier.example;lr>, <sip:edge2.carrier.example;lr>\r\n\
Max-Forwards: 69\r\n\
From: \"Burger\" <sip:+31612345678@carrier.example;user=phone>;tag=ctag\r\n\
To: <sip:140113@192.0.2.1>\r\n\
Call-ID: carrier-call-1@198.51.100.7\r\n\
CSeq: 10 INVITE\r\n\
Contact: <sip:+31612345678@198.51.100.7:5060>\r\n\
P-Asserted-Identity: <sip:+31612345678@carrier.example;user=phone>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: LEN\r\n\r\n";

fn wire_invite() -> sip::Request {
    let text = CARRIER_INVITE.replace("LEN", &A_SDP.len().to_string()) + A_SDP;
    match sip::Message::parse(text.as_bytes()).expect("test INVITE parses") {
        sip::Message::Request(r) => {
            sip::validate_request(&r).expect("test INVITE is valid");
            r
        }
        _ => unreachable!(),
    }
}

fn via(branch: &str) -> ViaSpec {
    ViaSpec { transport: sip::Transport::Udp, host: "10.1.1.1".into(), port: Some(5060), branch: branch.into(), alias: false }
}

/// Serialises and re-parses, as the peer would.
fn reparse_request(r: &sip::Request) -> sip::Request {
    match sip::Message::parse(&r.to_bytes()).unwrap() {
        sip::Message::Request(r) => r,
        _ => unreachable!(),
    }
}

fn reparse_response(r: &sip::Response) -> sip::Response {
    match sip::Message::parse(&r.to_bytes()).unwrap() {
        sip::Message::Response(r) => r,
        _ => unreachable!(),
    }
}

#[test]
fn wire_invite_becomes_a_valid_b_leg_invite_and_responses_go_back_valid() {
    let invite = wire_invite();
    let view = InRequest::from_sip(&invite).unwrap();
    assert_eq!(view.record_route, vec!["<sip:edge1.carrier.example;lr>", "<sip:edge2.carrier.example;lr>"]);
    assert_eq!(view.from.tag.as_deref(), Some("ctag"));
    assert_eq!(view.max_forwards, Some(69));
    assert!(view.body.as_ref().unwrap().is_sdp());

    let (mut h, first) = H::start(full_route(), view);
    // 100 Trying on the wire.
    let (_, trying) = &responses(&first, Leg::A)[0];
    let t = reparse_response(&trying.to_sip(&invite).unwrap());
    assert_eq!(t.status(), 100);
    sip::validate_response(&t).unwrap();

    let (id, b_inv) = the_invite(&first);
    let wire = reparse_request(&b_inv.to_sip(&via("z9hG4bKb1")).unwrap());
    sip::validate_request(&wire).unwrap();
    assert_eq!(wire.method(), &sip::Method::Invite);
    assert_eq!(wire.uri().to_string(), PRIMARY);
    assert_eq!(wire.max_forwards(), Some(68));
    assert_eq!(wire.from().unwrap().uri.to_string(), "sip:+31612345678@carrier.example;user=phone");
    assert_eq!(wire.headers().get_str("Route").map(|v| v.as_ref()), Some(&b"<sip:trunk.example.net;lr>"[..]));
    assert!(wire.headers().get_str("P-Asserted-Identity").is_some());
    assert!(wire.content_type().unwrap().is("application", "sdp"));
    assert!(std::str::from_utf8(wire.body()).unwrap().contains("m=audio 20002 "));

    // The municipality's 180 and 200 arrive as wire responses built on that INVITE.
    let ringing = sip::Response::builder(&wire, 180).to_tag("pbx1").build();
    let ringing = reparse_response(&ringing);
    let a = h.respond(id, InResponse::from_sip(&ringing).unwrap());
    let (_, r180) = &responses(&a, Leg::A)[0];
    let r180 = reparse_response(&r180.to_sip(&invite).unwrap());
    sip::validate_response(&r180).unwrap();
    assert_eq!(r180.to().unwrap().tag.as_deref(), Some(A_TAG.as_bytes()));
    assert_eq!(r180.headers().all(&sip::HeaderName::RecordRoute).count(), 2, "Record-Route copied in order");
    assert!(r180.contact_uri().is_some());

    let ok = sip::Response::builder(&wire, 200)
        .to_tag("pbx1")
        .header(sip::HeaderName::RecordRoute, bytes::Bytes::from_static(b"<sip:sbc.gemeente.example;lr>"))
        .contact(&sip::Uri::parse("sip:agent7@10.9.9.9:5070").unwrap())
        .body("application/sdp", bytes::Bytes::from_static(B_SDP.as_bytes()))
        .build();
    let ok = reparse_response(&ok);
    let a = h.respond(id, InResponse::from_sip(&ok).unwrap());
    let ack = &sends_of(&a, Method::Ack)[0].3;
    let ack = reparse_request(&ack.to_sip(&via("z9hG4bKack")).unwrap());
    sip::validate_request(&ack).unwrap();
    assert_eq!(ack.uri().to_string(), "sip:agent7@10.9.9.9:5070");
    assert_eq!(ack.cseq().unwrap().seq, 1);
    assert_eq!(ack.to().unwrap().tag.as_deref(), Some(&b"pbx1"[..]));
    let (_, r200) = &responses(&a, Leg::A)[0];
    let r200 = reparse_response(&r200.to_sip(&invite).unwrap());
    sip::validate_response(&r200).unwrap();
    assert!(std::str::from_utf8(r200.body()).unwrap().contains("m=audio 20000 RTP/AVP 8 101"));
}

#[test]
fn real_plan_route_with_overflow_walks_primary_then_partner() {
    let plan = Plan::builtin();
    let kapelle = plan.by_cbs("GM0678").expect("Kapelle is in the national plan");
    let toml = r#"
[municipality.GM0678]
name = "Kapelle"
destination = "+31113 333 000"
mode = "bridge"
overflow = { destination = "sip:overflow@kcc.example", no_answer_secs = 20 }
"#;
    let settings = Settings::from_toml_str(toml, plan).unwrap();
    let aid = plan.area_code_id("0113").unwrap();
    // A Wednesday morning: open under the default opening hours.
    let d = decide_for(kapelle, aid, plan, &settings, "2026-03-11T09:00:00Z".parse().unwrap());
    let Decision::Forward { route, .. } = &d else { panic!("{d:?}") };
    let planned = plan_route(route, Some(StepTarget::Redirect { destination: "tel:+31113377377".into() }));
    assert_eq!(planned.pre_announcement, None);
    assert_eq!(
        planned.steps.iter().map(|s| (s.label.as_str(), s.no_answer)).collect::<Vec<_>>(),
        vec![("primary", Some(std::time::Duration::from_secs(20))), ("overflow", None), ("fallback", None)]
    );

    let mut cfg = config();
    cfg.trunk_domain = Some("trunk.example.net".into());
    let (mut h, first) = H::start_with(cfg, planned.steps, invite_a(Some(A_SDP)), Default::default());
    let (id, inv) = the_invite(&first);
    assert_eq!(inv.request_uri, "sip:+31113333000@trunk.example.net;user=phone");
    assert_eq!(h.timers[&TimerId::NoAnswer(1)], std::time::Duration::from_secs(20));
    h.respond(id, resp(180, Some("k"), None));
    let c = h.fire(TimerId::NoAnswer(1));
    h.respond(sends_of(&c, Method::Cancel)[0].0, resp(200, Some("k"), None));
    let t = h.respond(id, resp(487, Some("k"), None));
    let (id2, inv2) = the_invite(&t);
    assert_eq!(inv2.request_uri, "sip:overflow@kcc.example");
    let t = h.respond(id2, resp(486, None, None));
    let r = &responses(&t, Leg::A)[0].1;
    assert_eq!((r.status, r.contact.as_deref()), (302, Some("tel:+31113377377")));
}

#[test]
fn calamity_message_is_played_before_the_calamity_line() {
    let route = vec![
        veertien_core::RouteStep::Announcement { message: "Calamiteit".into() },
        veertien_core::RouteStep::Calamity { destination: "tel:+31113999999".into() },
    ];
    let p = plan_route(&route, None);
    assert_eq!(p.pre_announcement.as_deref(), Some("Calamiteit"));
    assert_eq!(p.steps.len(), 1);
    assert_eq!(p.steps[0].label, "calamity");
}
