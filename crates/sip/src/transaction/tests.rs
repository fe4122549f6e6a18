//! State-machine tests with synthetic time.

use super::*;
use crate::message::Message;

const UDP_PEER: &str = "192.0.2.10:5060";

fn peer(transport: Transport) -> Peer {
    Peer { addr: UDP_PEER.parse().unwrap(), transport }
}

fn request(method: &str, branch: &str, call_id: &str, extra: &str) -> Request {
    let cseq_method = method;
    let text = format!(
        "{method} sip:14020@veertien.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch}\r\n\
Max-Forwards: 70\r\n\
To: <sip:14020@veertien.example>{extra}\r\n\
From: <sip:0612345678@carrier.example>;tag=abc\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 {cseq_method}\r\n\
Content-Length: 0\r\n\r\n"
    );
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        _ => unreachable!(),
    }
}

fn drain(t: &mut Table) -> Vec<Action> {
    std::iter::from_fn(|| t.poll_action()).collect()
}

fn sent_statuses(actions: &[Action]) -> Vec<u16> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { bytes, .. } => match Message::parse(bytes).ok()? {
                Message::Response(r) => Some(r.status()),
                Message::Request(_) => Some(0),
            },
            _ => None,
        })
        .collect()
}

fn new_tx(actions: &[Action]) -> TxId {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Request { tx, .. } => Some(*tx),
            _ => None,
        })
        .expect("request delivered to TU")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn server_invite_redirect_with_retransmissions_and_ack() {
    let mut t = Table::new(Config::with_capacity(16));
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKa1", "c1", "");
    t.on_request(inv.clone(), peer(Transport::Udp), t0);
    let tx = new_tx(&drain(&mut t));
    // No 100 Trying before 200 ms; one after.
    t.on_timer(t0 + ms(199));
    assert!(drain(&mut t).is_empty());
    t.on_timer(t0 + ms(200));
    assert_eq!(sent_statuses(&drain(&mut t)), vec![100]);
    // A retransmitted INVITE gets the last provisional again and is not delivered again.
    t.on_request(inv.clone(), peer(Transport::Udp), t0 + ms(500));
    assert_eq!(sent_statuses(&drain(&mut t)), vec![100]);

    let resp = Response::builder(&inv, 302).to_tag("vt").contact(&crate::Uri::parse("sip:+31201234567@gw.example").unwrap()).build();
    t.respond(tx, resp, t0 + ms(600)).unwrap();
    assert_eq!(sent_statuses(&drain(&mut t)), vec![302]);
    t.on_request(inv.clone(), peer(Transport::Udp), t0 + ms(700));
    assert_eq!(sent_statuses(&drain(&mut t)), vec![302]);
    // Timer G: 500 ms, then 1 s.
    t.on_timer(t0 + ms(1100));
    assert_eq!(sent_statuses(&drain(&mut t)), vec![302]);
    t.on_timer(t0 + ms(2000));
    assert!(drain(&mut t).is_empty());
    t.on_timer(t0 + ms(2100));
    assert_eq!(sent_statuses(&drain(&mut t)), vec![302]);
    // ACK (same branch) is absorbed and stops retransmissions.
    let ack = request("ACK", "z9hG4bKa1", "c1", ";tag=vt");
    t.on_request(ack.clone(), peer(Transport::Udp), t0 + ms(2200));
    assert!(drain(&mut t).is_empty());
    assert_eq!(t.state(tx), Some((Kind::ServerInvite, State::Confirmed)));
    t.on_request(ack, peer(Transport::Udp), t0 + ms(2300));
    assert!(drain(&mut t).is_empty(), "ACK retransmission absorbed");
    // Timer I (T4) ends it.
    t.on_timer(t0 + ms(2200) + ms(4999));
    assert!(drain(&mut t).is_empty());
    t.on_timer(t0 + ms(2200) + ms(5000));
    assert_eq!(drain(&mut t), vec![Action::Terminated { tx }]);
    assert!(t.is_empty());
    assert_eq!(t.respond(tx, Response::builder(&inv, 200).build(), t0), Err(TxError::UnknownTransaction));
}

#[test]
fn server_invite_without_ack_times_out_with_capped_retransmissions() {
    let mut cfg = Config::with_capacity(4);
    cfg.trying_delay = None;
    let mut t = Table::new(cfg);
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKa2", "c2", "");
    t.on_request(inv.clone(), peer(Transport::Udp), t0);
    let tx = new_tx(&drain(&mut t));
    t.respond(tx, Response::builder(&inv, 486).to_tag("x").build(), t0).unwrap();
    drain(&mut t);
    let mut sends = 0;
    let mut at = t0;
    let mut timed_out = false;
    while at < t0 + Duration::from_secs(40) {
        at += ms(100);
        t.on_timer(at);
        for a in drain(&mut t) {
            match a {
                Action::Send { .. } => sends += 1,
                Action::Timeout { tx: id } => {
                    assert_eq!(id, tx);
                    assert!(at >= t0 + Duration::from_secs(32) && at < t0 + Duration::from_millis(32_100));
                    timed_out = true;
                }
                _ => {}
            }
        }
    }
    assert!(timed_out);
    // G fires at 0.5, 1.5, 3.5, 7.5, then every 4 s (T2) until H at 32 s: 10 retransmissions.
    assert_eq!(sends, 10);
    assert!(t.is_empty());
}

#[test]
fn server_invite_2xx_is_retransmitted_until_ack_and_retransmitted_invite_absorbed() {
    let mut cfg = Config::with_capacity(4);
    cfg.trying_delay = Some(Duration::ZERO);
    let mut t = Table::new(cfg);
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKa3", "c3", "");
    t.on_request(inv.clone(), peer(Transport::Udp), t0);
    let acts = drain(&mut t);
    assert_eq!(sent_statuses(&acts), vec![100], "immediate 100 Trying");
    let tx = new_tx(&acts);
    t.respond(tx, Response::builder(&inv, 200).to_tag("ok").build(), t0).unwrap();
    assert_eq!(sent_statuses(&drain(&mut t)), vec![200]);
    t.on_timer(t0 + ms(500));
    assert_eq!(sent_statuses(&drain(&mut t)), vec![200]);
    t.on_request(inv.clone(), peer(Transport::Udp), t0 + ms(600));
    assert!(drain(&mut t).is_empty(), "RFC 6026: INVITE retransmission absorbed in Accepted");
    // The ACK for a 2xx has its own branch; it is matched by dialog and delivered.
    let ack = request("ACK", "z9hG4bKother", "c3", ";tag=ok");
    t.on_request(ack, peer(Transport::Udp), t0 + ms(700));
    let acts = drain(&mut t);
    assert!(matches!(acts.as_slice(), [Action::Ack { invite: Some(id), .. }] if *id == tx));
    t.on_timer(t0 + ms(1500));
    assert!(drain(&mut t).is_empty(), "no 2xx retransmission after the ACK");
    t.on_timer(t0 + Duration::from_secs(32));
    assert_eq!(drain(&mut t), vec![Action::Terminated { tx }], "timer L, no Timeout since ACKed");
}

#[test]
fn server_non_invite_udp_and_tcp() {
    let mut t = Table::new(Config::with_capacity(4));
    let t0 = Instant::now();
    let opt = request("OPTIONS", "z9hG4bKo1", "o1", "");
    t.on_request(opt.clone(), peer(Transport::Udp), t0);
    let tx = new_tx(&drain(&mut t));
    t.on_request(opt.clone(), peer(Transport::Udp), t0 + ms(10));
    assert!(drain(&mut t).is_empty(), "retransmission in Trying absorbed");
    t.respond(tx, Response::builder(&opt, 200).to_tag("x").build(), t0 + ms(20)).unwrap();
    assert_eq!(sent_statuses(&drain(&mut t)), vec![200]);
    t.on_request(opt.clone(), peer(Transport::Udp), t0 + ms(30));
    assert_eq!(sent_statuses(&drain(&mut t)), vec![200]);
    t.on_timer(t0 + ms(20) + Duration::from_secs(32));
    assert_eq!(drain(&mut t), vec![Action::Terminated { tx }], "timer J");

    let opt = request("OPTIONS", "z9hG4bKo2", "o2", "");
    t.on_request(opt.clone(), peer(Transport::Tcp), t0);
    let tx = new_tx(&drain(&mut t));
    t.respond(tx, Response::builder(&opt, 200).build(), t0).unwrap();
    let acts = drain(&mut t);
    assert_eq!(sent_statuses(&acts), vec![200]);
    assert!(acts.contains(&Action::Terminated { tx }), "timer J is zero on TCP");
}

fn response_to(req: &Request, status: u16) -> Response {
    let r = Response::builder(req, status).to_tag("far").build();
    match Message::parse(&r.to_bytes()).unwrap() {
        Message::Response(r) => r,
        _ => unreachable!(),
    }
}

#[test]
fn client_invite_retransmits_then_times_out() {
    let mut t = Table::new(Config::with_capacity(4));
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKc1", "k1", "");
    let tx = t.send_request(inv, peer(Transport::Udp), t0).unwrap();
    assert_eq!(sent_statuses(&drain(&mut t)), vec![0]);
    let mut sends = Vec::new();
    let mut at = t0;
    let mut timeout_at = None;
    while at < t0 + Duration::from_secs(40) {
        at += ms(50);
        t.on_timer(at);
        for a in drain(&mut t) {
            match a {
                Action::Send { .. } => sends.push(at - t0),
                Action::Timeout { tx: id } if id == tx => timeout_at = Some(at - t0),
                _ => {}
            }
        }
    }
    // Timer A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; timer B at 32 s.
    assert_eq!(sends, [500, 1500, 3500, 7500, 15500, 31500].map(ms).to_vec());
    assert_eq!(timeout_at, Some(Duration::from_secs(32)));
}

#[test]
fn client_invite_provisional_stops_retransmission_and_failure_is_acked() {
    let mut t = Table::new(Config::with_capacity(4));
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKc2", "k2", "");
    let tx = t.send_request(inv.clone(), peer(Transport::Udp), t0).unwrap();
    drain(&mut t);
    t.on_response(response_to(&inv, 180), peer(Transport::Udp), t0 + ms(100));
    assert!(matches!(drain(&mut t).as_slice(), [Action::Response { response, .. }] if response.status() == 180));
    t.on_timer(t0 + Duration::from_secs(60));
    assert!(drain(&mut t).is_empty(), "no retransmission and no timer B in Proceeding");

    t.on_response(response_to(&inv, 486), peer(Transport::Udp), t0 + Duration::from_secs(61));
    let acts = drain(&mut t);
    let ack = acts.iter().find_map(|a| match a {
        Action::Send { bytes, .. } => Some(bytes.clone()),
        _ => None,
    });
    let Message::Request(ack) = Message::parse(&ack.expect("ACK sent")).unwrap() else { panic!() };
    assert_eq!(ack.method(), &Method::Ack);
    assert_eq!(ack.cseq().unwrap().seq, 1);
    assert_eq!(ack.to().unwrap().tag.as_deref(), Some(&b"far"[..]));
    assert_eq!(ack.top_via().unwrap().branch, inv.top_via().unwrap().branch);
    assert!(acts.iter().any(|a| matches!(a, Action::Response { response, .. } if response.status() == 486)));
    // A retransmitted 486 is answered with the same ACK and not delivered again.
    t.on_response(response_to(&inv, 486), peer(Transport::Udp), t0 + Duration::from_secs(62));
    let acts = drain(&mut t);
    assert_eq!(acts.len(), 1);
    assert!(matches!(&acts[0], Action::Send { .. }));
    // Timer D.
    t.on_timer(t0 + Duration::from_secs(61 + 32));
    assert_eq!(drain(&mut t), vec![Action::Terminated { tx }]);
}

#[test]
fn client_invite_2xx_accepted_passes_retransmitted_2xx() {
    let mut t = Table::new(Config::with_capacity(4));
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKc3", "k3", "");
    let tx = t.send_request(inv.clone(), peer(Transport::Udp), t0).unwrap();
    drain(&mut t);
    t.on_response(response_to(&inv, 200), peer(Transport::Udp), t0 + ms(10));
    assert_eq!(drain(&mut t).len(), 1);
    t.on_response(response_to(&inv, 200), peer(Transport::Udp), t0 + ms(600));
    assert!(matches!(drain(&mut t).as_slice(), [Action::Response { response, .. }] if response.status() == 200));
    t.on_timer(t0 + ms(10) + Duration::from_secs(32));
    assert_eq!(drain(&mut t), vec![Action::Terminated { tx }], "timer M");
}

#[test]
fn client_non_invite_caps_at_t2_and_times_out() {
    let mut t = Table::new(Config::with_capacity(4));
    let t0 = Instant::now();
    let opt = request("OPTIONS", "z9hG4bKc4", "k4", "");
    let tx = t.send_request(opt, peer(Transport::Udp), t0).unwrap();
    drain(&mut t);
    let mut sends = Vec::new();
    let mut at = t0;
    let mut timed_out = false;
    while at <= t0 + Duration::from_secs(33) {
        at += ms(50);
        t.on_timer(at);
        for a in drain(&mut t) {
            match a {
                Action::Send { .. } => sends.push((at - t0).as_millis() as u64),
                Action::Timeout { tx: id } => timed_out = id == tx,
                _ => {}
            }
        }
    }
    assert_eq!(&sends[..5], &[500, 1500, 3500, 7500, 11500]);
    assert!(sends.windows(2).skip(3).all(|w| w[1] - w[0] == 4000));
    assert!(timed_out, "timer F");
}

#[test]
fn client_non_invite_over_tcp_has_no_retransmissions_and_no_wait() {
    let mut t = Table::new(Config::with_capacity(4));
    let t0 = Instant::now();
    let bye = request("BYE", "z9hG4bKc5", "k5", "");
    let tx = t.send_request(bye.clone(), peer(Transport::Tcp), t0).unwrap();
    drain(&mut t);
    t.on_timer(t0 + Duration::from_secs(10));
    assert!(drain(&mut t).is_empty());
    t.on_response(response_to(&bye, 200), peer(Transport::Tcp), t0 + Duration::from_secs(11));
    let acts = drain(&mut t);
    assert!(matches!(acts.as_slice(), [Action::Response { .. }, Action::Terminated { tx: id }] if *id == tx));
}

/// A lost TCP connection fails the requests still waiting on it at once (no Timer B wait),
/// leaves those on other peers alone, and does not touch one that already has its answer.
#[test]
fn lost_connection_fails_only_the_requests_still_waiting_on_it() {
    let mut t = Table::new(Config::with_capacity(8));
    let t0 = Instant::now();
    let tcp = peer(Transport::Tcp);
    let inv = request("INVITE", "z9hG4bKl1", "l1", "");
    let waiting = t.send_request(inv, tcp, t0).unwrap();
    let bye = request("BYE", "z9hG4bKl2", "l2", "");
    let answered = t.send_request(bye.clone(), tcp, t0).unwrap();
    let elsewhere = Peer { addr: "192.0.2.99:5060".parse().unwrap(), transport: Transport::Tcp };
    let other = t.send_request(request("INVITE", "z9hG4bKl3", "l3", ""), elsewhere, t0).unwrap();
    t.on_response(response_to(&bye, 200), tcp, t0 + ms(5));
    drain(&mut t);

    let udp_same_addr = t.send_request(request("INVITE", "z9hG4bKl4", "l4", ""), peer(Transport::Udp), t0).unwrap();
    let tls_same_addr = t.send_request(request("INVITE", "z9hG4bKl5", "l5", ""), peer(Transport::Tls), t0).unwrap();
    drain(&mut t);
    assert_eq!(t.on_connection_lost(tcp), 1);
    assert_eq!(drain(&mut t), vec![Action::TransportError { tx: waiting }, Action::Terminated { tx: waiting }]);
    assert!(t.state(waiting).is_none());
    assert!(t.state(other).is_some(), "a request to another peer keeps waiting");
    assert!(t.state(udp_same_addr).is_some(), "a request over UDP needs no connection");
    assert!(t.state(tls_same_addr).is_some(), "a TLS connection to the same address is another connection");
    assert!(t.state(answered).is_none(), "the answered BYE over TCP was already done");
    assert_eq!(t.on_connection_lost(tcp), 0, "nothing is failed twice");
}

#[test]
fn cancel_matches_its_invite() {
    let mut t = Table::new(Config::with_capacity(8));
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKx1", "x1", "");
    t.on_request(inv.clone(), peer(Transport::Udp), t0);
    let inv_tx = new_tx(&drain(&mut t));
    let cancel = inv.cancel();
    let cancel = match Message::parse(&cancel.to_bytes()).unwrap() {
        Message::Request(r) => r,
        _ => unreachable!(),
    };
    t.on_request(cancel.clone(), peer(Transport::Udp), t0 + ms(50));
    let acts = drain(&mut t);
    let [Action::Cancel { tx: ctx, invite: Some(i), .. }] = acts.as_slice() else { panic!("{acts:?}") };
    assert_eq!(*i, inv_tx);
    t.respond(*ctx, Response::builder(&cancel, 200).build(), t0 + ms(60)).unwrap();
    t.respond(inv_tx, Response::builder(&inv, 487).to_tag("t").build(), t0 + ms(60)).unwrap();
    assert_eq!(sent_statuses(&drain(&mut t)), vec![200, 487]);
    // A CANCEL for an unknown INVITE is still delivered (the TU answers 481).
    let stray = request("CANCEL", "z9hG4bKnone", "x2", "");
    t.on_request(stray, peer(Transport::Udp), t0);
    assert!(matches!(drain(&mut t).as_slice(), [Action::Cancel { invite: None, .. }]));
}

#[test]
fn rfc2543_matching_without_branch() {
    let mut t = Table::new(Config::with_capacity(8));
    let t0 = Instant::now();
    for (n, branch_param) in ["", ";branch=z9hG4bK"].into_iter().enumerate() {
        let text = format!(
            "INVITE sip:UserB@example.com SIP/2.0\r\nVia: SIP/2.0/UDP iftgw.example.com{branch_param}\r\n\
From: <sip:+13035551111@ift.client.example.net;user=phone>;tag=f1\r\nTo: sip:+16505552222@ss1.example.net;user=phone\r\n\
Call-ID: inv2543-{n}\r\nCSeq: 56 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let Message::Request(inv) = Message::parse(text.as_bytes()).unwrap() else { panic!() };
        assert!(matches!(Key::server(&inv), Some(Key::Server2543 { .. })));
        t.on_request(inv.clone(), peer(Transport::Udp), t0);
        let tx = new_tx(&drain(&mut t));
        t.respond(tx, Response::builder(&inv, 404).to_tag("nf").build(), t0).unwrap();
        drain(&mut t);
        t.on_request(inv.clone(), peer(Transport::Udp), t0 + ms(10));
        assert_eq!(sent_statuses(&drain(&mut t)), vec![404], "retransmission matched");
        let ack_text = text.replacen("INVITE sip", "ACK sip", 1).replace("56 INVITE", "56 ACK").replace("user=phone\r\nCall", "user=phone;tag=nf\r\nCall");
        let Message::Request(ack) = Message::parse(ack_text.as_bytes()).unwrap() else { panic!() };
        t.on_request(ack, peer(Transport::Udp), t0 + ms(20));
        assert!(drain(&mut t).is_empty());
        assert_eq!(t.state(tx), Some((Kind::ServerInvite, State::Confirmed)));
    }
}

#[test]
fn full_table_sheds_invites_with_503_but_keeps_room_for_bye() {
    let mut cfg = Config::with_capacity(10);
    cfg.retry_after_secs = 7;
    let mut t = Table::new(cfg);
    let t0 = Instant::now();
    for i in 0..9 {
        t.on_request(request("INVITE", &format!("z9hG4bKf{i}"), &format!("f{i}"), ""), peer(Transport::Udp), t0);
    }
    drain(&mut t);
    assert_eq!(t.len(), 9);
    t.on_request(request("INVITE", "z9hG4bKover", "over", ""), peer(Transport::Udp), t0);
    let acts = drain(&mut t);
    let Some(Action::Send { bytes, .. }) = acts.first() else { panic!("{acts:?}") };
    let Message::Response(r) = Message::parse(bytes).unwrap() else { panic!() };
    assert_eq!(r.status(), 503);
    assert_eq!(&r.headers().get(&HeaderName::RetryAfter).unwrap()[..], b"7");
    assert!(r.to().unwrap().tag.is_some());
    assert!(matches!(acts.last(), Some(Action::Refused { .. })));
    assert_eq!(t.len(), 9, "no state kept for the refused INVITE");
    // The reserve lets a BYE through, then even non-INVITEs are refused.
    t.on_request(request("BYE", "z9hG4bKbye", "f0", ";tag=x"), peer(Transport::Udp), t0);
    assert!(matches!(drain(&mut t).as_slice(), [Action::Request { .. }]));
    t.on_request(request("BYE", "z9hG4bKbye2", "f1", ";tag=x"), peer(Transport::Udp), t0);
    assert_eq!(sent_statuses(&drain(&mut t)), vec![503]);
    assert_eq!(t.refused_count(), 2);
    assert_eq!(t.send_request(request("OPTIONS", "z9hG4bKcl", "cl", ""), peer(Transport::Udp), t0), Err(TxError::Full));
}

#[test]
fn churn_keeps_memory_bounded() {
    let mut cfg = Config::with_capacity(64);
    cfg.trying_delay = Some(ms(200));
    let mut t = Table::new(cfg);
    let cap = t.timer_cap;
    let t0 = Instant::now();
    let mut now = t0;
    let mut max_len = 0;
    for i in 0..20_000u32 {
        now += ms(1);
        let inv = request("INVITE", &format!("z9hG4bKch{i}"), &format!("ch{i}"), "");
        t.on_request(inv.clone(), peer(Transport::Udp), now);
        let acts = drain(&mut t);
        if let Some(tx) = acts.iter().find_map(|a| if let Action::Request { tx, .. } = a { Some(*tx) } else { None }) {
            // Responding cancels the Trying timer, leaving a stale heap entry behind.
            t.respond(tx, Response::builder(&inv, 302).to_tag("t").build(), now).unwrap();
        }
        t.on_timer(now);
        drain(&mut t);
        max_len = max_len.max(t.len());
        assert!(t.timer_entries() <= cap, "timer heap exceeded its bound");
        assert!(t.timers.capacity() <= cap.max(t.timers.capacity()));
    }
    assert!(max_len <= 64);
    assert!(t.refused_count() > 0, "offered load beyond capacity was shed");
    // Everything drains once the load stops.
    t.on_timer(now + Duration::from_secs(40));
    drain(&mut t);
    assert!(t.is_empty());
}

#[test]
fn broadcast_via_gets_no_response_bytes() {
    let mut t = Table::new(Config::with_capacity(4));
    let t0 = Instant::now();
    let text = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 255.255.255.255;received=255.255.255.255;branch=z9hG4bKbc\r\n\
To: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\nCall-ID: bc\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let Message::Request(r) = Message::parse(text.as_bytes()).unwrap() else { panic!() };
    t.on_request(r.clone(), peer(Transport::Udp), t0);
    let tx = new_tx(&drain(&mut t));
    t.respond(tx, Response::builder(&r, 200).build(), t0).unwrap();
    assert!(drain(&mut t).iter().all(|a| !matches!(a, Action::Send { .. })));
}

#[test]
fn a_tu_that_never_answers_cannot_hold_a_slot() {
    let mut t = Table::new(Config::with_capacity(4));
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bKlost", "lost", "");
    t.on_request(inv, peer(Transport::Udp), t0);
    let tx = new_tx(&drain(&mut t));
    let opt = request("OPTIONS", "z9hG4bKlost2", "lost2", "");
    t.on_request(opt, peer(Transport::Udp), t0);
    let otx = new_tx(&drain(&mut t));
    // Ringing keeps the INVITE alive, but not for ever.
    t.respond(tx, Response::builder(&t.request(tx).unwrap().clone(), 180).to_tag("r").build(), t0).unwrap();
    drain(&mut t);
    t.on_timer(t0 + Duration::from_secs(32));
    let acts = drain(&mut t);
    assert!(acts.contains(&Action::Timeout { tx: otx }));
    assert_eq!(sent_statuses(&acts), vec![408]);
    t.on_timer(t0 + Duration::from_secs(299));
    assert!(drain(&mut t).iter().all(|a| !matches!(a, Action::Timeout { .. })));
    t.on_timer(t0 + Duration::from_secs(300));
    let acts = drain(&mut t);
    assert!(acts.contains(&Action::Timeout { tx }));
    assert_eq!(sent_statuses(&acts), vec![408]);
    assert_eq!(t.state(tx), Some((Kind::ServerInvite, State::Completed)));
    t.on_timer(t0 + Duration::from_secs(400));
    drain(&mut t);
    assert!(t.is_empty());
}

/// A table that does not preallocate still enforces its bound (and so needs no room until
/// transactions arrive).
#[test]
fn unpreallocated_table_keeps_its_bound() {
    let mut t = Table::new(Config { preallocate: false, ..Config::with_capacity(2) });
    let t0 = Instant::now();
    t.send_request(request("OPTIONS", "z9hG4bKp1", "p1", ""), peer(Transport::Udp), t0).unwrap();
    t.send_request(request("OPTIONS", "z9hG4bKp2", "p2", ""), peer(Transport::Udp), t0).unwrap();
    assert_eq!(t.send_request(request("OPTIONS", "z9hG4bKp3", "p3", ""), peer(Transport::Udp), t0), Err(TxError::Full));
    assert_eq!(t.len(), 2);
}
