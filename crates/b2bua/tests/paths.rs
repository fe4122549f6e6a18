//! Every delivery path of a bridged call, walked with synthetic messages.

mod support;

use std::collections::BTreeSet;
use support::*;
use veertien_b2bua::*;

/// Answers the current attempt and returns (invite id, invite, actions of the answer).
fn answer(h: &mut H, id: RequestId) -> Vec<Action> {
    h.respond(id, resp(180, Some("t1"), None));
    h.respond(id, resp(200, Some("t1"), Some(B_SDP)))
}

#[test]
fn answered_call_anchors_media_and_keeps_both_dialogs_right() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    // 100 Trying at once, before anything else reaches the caller.
    assert_eq!(statuses(&first, Leg::A), vec![100]);
    assert!(first.contains(&Action::Media(MediaAction::Connect { side: Leg::A, remote: "198.51.100.7:30000".parse().unwrap() })));
    let (id, inv) = the_invite(&first);
    assert_eq!(inv.request_uri, PRIMARY);
    assert_eq!(inv.route, vec!["<sip:trunk.example.net;lr>".to_string()]);
    assert_eq!(inv.cseq, 1);
    assert_eq!(inv.max_forwards, 68);
    assert_eq!(inv.from.uri, "sip:+31612345678@carrier.example");
    assert_eq!(inv.from.display.as_deref(), Some("Burger"));
    assert_ne!(inv.from.tag.as_deref(), Some("ctag"), "B-leg needs its own tag");
    assert_ne!(inv.call_id, A_CALL_ID, "B-leg needs its own Call-ID");
    assert_eq!(inv.to.tag, None);
    assert_eq!(inv.contact.as_deref(), Some("sip:veertien@10.1.1.1:5060"));
    assert_eq!(inv.header("P-Asserted-Identity"), Some("<sip:+31612345678@carrier.example>"));
    assert_eq!(inv.header("X-Internal"), None, "only configured headers cross the B2BUA");
    let offer = body_text(&inv.body);
    assert!(offer.contains("c=IN IP4 127.0.0.1\r\n") && offer.contains("m=audio 20002 RTP/AVP 8 0 101\r\n"), "{offer}");
    assert!(!offer.contains("198.51.100.7"));

    let ring = h.respond(id, resp(180, Some("t1"), None));
    let r = &responses(&ring, Leg::A)[0].1;
    assert_eq!((r.status, r.to_tag.as_deref()), (180, Some(A_TAG)));
    assert_eq!(r.contact.as_deref(), Some("sip:veertien@192.0.2.1:5060"));
    assert_eq!(r.record_route, invite_a(None).record_route, "Record-Route echoed in dialog-creating responses");
    assert!(ring.iter().any(|a| matches!(a, Action::Record(RecordEvent::Ringing { .. }))));

    h.clock += std::time::Duration::from_secs(3);
    let ans = h.respond(id, resp(200, Some("t1"), Some(B_SDP)));
    let acks = sends_of(&ans, Method::Ack);
    assert_eq!(acks.len(), 1);
    let ack = &acks[0].3;
    assert_eq!(acks[0].2, SendKind::Ack);
    assert_eq!((ack.cseq, ack.to.tag.as_deref()), (1, Some("t1")));
    assert_eq!(ack.request_uri, "sip:agent7@10.9.9.9:5070", "ACK goes to the 2xx Contact");
    assert_eq!(
        ack.route,
        vec!["<sip:sbc1.gemeente.example;lr>".to_string(), "<sip:sbc2.gemeente.example;lr>".to_string()],
        "UAC route set is the reversed Record-Route"
    );
    assert!(ans.contains(&Action::Media(MediaAction::Connect { side: Leg::B, remote: "203.0.113.20:40000".parse().unwrap() })));
    let ok = &responses(&ans, Leg::A)[0].1;
    assert_eq!((ok.status, ok.to_tag.as_deref()), (200, Some(A_TAG)));
    let answer_sdp = body_text(&ok.body);
    assert!(answer_sdp.contains("m=audio 20000 RTP/AVP 8 101\r\n") && !answer_sdp.contains("203.0.113.20"), "{answer_sdp}");
    assert!(h.has_timer(TimerId::Retransmit2xx(Leg::A)));

    // 2xx retransmitted until the ACK arrives; a retransmitted B 2xx is re-ACKed.
    let re = h.fire(TimerId::Retransmit2xx(Leg::A));
    assert_eq!(statuses(&re, Leg::A), vec![200]);
    let re = h.respond(id, resp(200, Some("t1"), Some(B_SDP)));
    assert_eq!(sends_of(&re, Method::Ack).len(), 1);
    h.ev(Event::Ack { request: a_req(Method::Ack, 10, None) });
    assert!(!h.has_timer(TimerId::Retransmit2xx(Leg::A)) && !h.has_timer(TimerId::AckWait(Leg::A)));

    // Caller hangs up: 200 to the caller, BYE on B in the B dialog.
    h.clock += std::time::Duration::from_secs(60);
    let hangup_at = h.now();
    let bye = h.ev(Event::Request { txn: ServerTxn(7), request: a_req(Method::Bye, 11, None) });
    assert_eq!(responses(&bye, Leg::A), vec![(ServerTxn(7), {
        let mut r = OutResponse::new(200, "OK");
        r.to_tag = None;
        r
    })]);
    let b_bye = sends_of(&bye, Method::Bye);
    assert_eq!(b_bye.len(), 1);
    let (bye_id, _, _, b) = &b_bye[0];
    assert_eq!((b.cseq, b.call_id.as_str(), b.to.tag.as_deref()), (2, inv.call_id.as_str(), Some("t1")));
    assert_eq!(b.request_uri, "sip:agent7@10.9.9.9:5070");
    assert!(summary(&bye).is_none(), "call ends when the B-leg confirms the BYE");
    let done = h.respond(*bye_id, resp(200, Some("t1"), None));
    assert!(done.contains(&Action::Media(MediaAction::Release)));
    let s = summary(&done).unwrap();
    assert_eq!(s.outcome, Outcome::Answered);
    assert_eq!(s.ended_by, Some(Party::Caller));
    assert_eq!(s.destination.as_deref(), Some(PRIMARY));
    assert_eq!(s.ringing_at, Some(t0()));
    assert_eq!(s.answered_at, Some(t0() + std::time::Duration::from_secs(3)));
    assert_eq!(s.ended_at, hangup_at);
    assert_eq!(s.attempts.len(), 1);
    assert_eq!(s.attempts[0].result, AttemptResult::Answered);
    assert!(h.call.is_finished());
}

#[test]
fn busy_primary_moves_to_overflow_partner() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    let busy = h.respond(id, resp(486, Some("x"), None));
    assert!(statuses(&busy, Leg::A).is_empty(), "the caller is not failed: {busy:#?}");
    let (id2, inv2) = the_invite(&busy);
    assert_eq!(inv2.request_uri, OVERFLOW);
    assert_eq!(inv2.cseq, 1);
    let ans = answer(&mut h, id2);
    assert_eq!(statuses(&ans, Leg::A), vec![200]);
    h.ev(Event::Ack { request: a_req(Method::Ack, 10, None) });
    let b_inv = inv2.clone();
    let bye = h.ev(Event::Request { txn: ServerTxn(9), request: b_req(Method::Bye, &b_inv, "t1", 1, None) });
    assert_eq!(statuses(&bye, Leg::B), vec![200]);
    let a_bye = sends_of(&bye, Method::Bye);
    assert_eq!(a_bye.len(), 1);
    let a = &a_bye[0].3;
    assert_eq!(a_bye[0].1, Leg::A);
    assert_eq!(a.call_id, A_CALL_ID);
    assert_eq!((a.from.tag.as_deref(), a.to.tag.as_deref()), (Some(A_TAG), Some("ctag")));
    assert_eq!(a.request_uri, "sip:+31612345678@198.51.100.7:5060", "BYE goes to the caller's Contact");
    assert_eq!(a.route, invite_a(None).record_route, "UAS route set keeps Record-Route order");
    let done = h.respond(a_bye[0].0, resp(200, Some("ctag"), None));
    let s = summary(&done).unwrap();
    assert_eq!(s.outcome, Outcome::Answered);
    assert_eq!(s.ended_by, Some(Party::Callee));
    assert_eq!(s.destination.as_deref(), Some(OVERFLOW));
    let results: Vec<_> = s.attempts.iter().map(|a| (a.label.as_str(), a.result.clone())).collect();
    assert_eq!(results, vec![("primary", AttemptResult::Busy { status: 486 }), ("overflow", AttemptResult::Answered)]);
}

#[test]
fn no_answer_cancels_waits_for_487_then_overflows_then_announcement() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, inv) = the_invite(&first);
    h.respond(id, resp(100, None, None));
    h.respond(id, resp(180, Some("r1"), None));
    assert_eq!(h.timers[&TimerId::NoAnswer(1)], std::time::Duration::from_secs(20), "per-step timeout");
    let t = h.fire(TimerId::NoAnswer(1));
    let c = sends_of(&t, Method::Cancel);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].2, SendKind::Cancel { invite: id });
    let cancel = &c[0].3;
    assert_eq!((cancel.cseq, cancel.request_uri.as_str(), cancel.call_id.as_str()), (1, inv.request_uri.as_str(), inv.call_id.as_str()));
    assert_eq!((cancel.from.clone(), cancel.to.clone(), cancel.route.clone()), (inv.from.clone(), inv.to.clone(), inv.route.clone()));
    assert!(sends_of(&t, Method::Invite).is_empty(), "waits for the 487 first");
    h.respond(c[0].0, resp(200, Some("r1"), None));
    let t = h.respond(id, resp(487, Some("r1"), None));
    let (id2, inv2) = the_invite(&t);
    assert_eq!(inv2.request_uri, OVERFLOW);
    assert_ne!(inv2.call_id, inv.call_id);
    h.respond(id2, resp(183, Some("o1"), Some(B2_SDP)));
    let t = h.fire(TimerId::NoAnswer(2));
    let c2 = sends_of(&t, Method::Cancel);
    // The 487 never comes: after the cancel wait the next step starts anyway.
    let t = h.fire(TimerId::CancelWait(2));
    let (id3, inv3) = the_invite(&t);
    assert_eq!(inv3.request_uri, CALAMITY);
    // Calamity destination has no response at all (not even 100): unreachable quickly, and no
    // CANCEL may be sent without a provisional response.
    let t = h.fire(TimerId::NoResponse(3));
    assert!(sends_of(&t, Method::Cancel).is_empty());
    let hand = t.iter().find_map(|a| match a {
        Action::HandOff(h) => Some(h.clone()),
        _ => None,
    });
    let hand = hand.expect("announcement hand-off");
    assert_eq!((hand.prompt.as_str(), hand.txn, hand.to_tag.as_str()), ("gesloten", ServerTxn(1), A_TAG));
    let s = summary(&t).unwrap();
    assert_eq!(s.outcome, Outcome::Announcement);
    assert_eq!(s.final_status, None);
    assert_eq!(
        s.attempts.iter().map(|a| a.result.as_str()).collect::<Vec<_>>(),
        vec!["no_answer", "no_answer", "unreachable"]
    );
    assert!(!h.call.is_finished(), "stragglers still need cleanup");
    // The overflow partner answers after all (CANCEL lost the race): ACK and BYE it.
    let late = h.respond(id2, resp(200, Some("o1"), Some(B2_SDP)));
    let s = sends(&late);
    assert_eq!(s.iter().map(|x| x.3.method.clone()).collect::<Vec<_>>(), vec![Method::Ack, Method::Bye]);
    assert!(s.iter().all(|x| x.3.call_id == inv2.call_id && x.3.to.tag.as_deref() == Some("o1")));
    assert!(statuses(&late, Leg::A).is_empty(), "the caller is already with the announcement");
    // The calamity destination wakes up late: now a CANCEL is allowed.
    let late = h.respond(id3, resp(180, Some("c1"), None));
    assert_eq!(sends_of(&late, Method::Cancel).len(), 1);
    let _ = c2;
    h.run_out();
    assert!(h.call.is_finished());
    assert_eq!(h.finished, 1);
}

#[test]
fn unreachable_destinations_skip_to_general_number_redirect() {
    let route = vec![bridge("primary", PRIMARY, None), bridge("overflow", OVERFLOW, None), redirect(GENERAL)];
    let (mut h, first) = H::start(route, invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    let t = h.respond(id, resp(503, None, None));
    let (id2, _) = the_invite(&t);
    let t = h.ev(Event::RequestFailed { id: id2, reason: "ICMP port unreachable".into() });
    let r = responses(&t, Leg::A);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].1.status, r[0].1.contact.as_deref()), (302, Some(GENERAL)));
    let s = summary(&t).unwrap();
    assert_eq!(s.outcome, Outcome::Redirected);
    assert_eq!(s.destination.as_deref(), Some(GENERAL));
    assert_eq!(
        s.attempts.iter().map(|a| a.result.clone()).collect::<Vec<_>>(),
        vec![
            AttemptResult::Unreachable { reason: "503 Service Unavailable".into() },
            AttemptResult::Unreachable { reason: "ICMP port unreachable".into() }
        ]
    );
    assert!(h.call.is_finished());
}

#[test]
fn dead_destinations_are_skipped_and_marked_dead_mid_call_bypassed() {
    let dead: BTreeSet<String> = [PRIMARY.to_string()].into();
    let (mut h, first) = H::start_with(config(), full_route(), invite_a(Some(A_SDP)), dead);
    let (id, inv) = the_invite(&first);
    assert_eq!(inv.request_uri, OVERFLOW, "dead primary is not even tried");
    h.respond(id, resp(100, None, None));
    // Probing declares the overflow dead before it rings: bypass at once, no 32 s wait.
    let t = h.ev(Event::DestinationDown { destination: OVERFLOW.into() });
    assert_eq!(sends_of(&t, Method::Cancel).len(), 1);
    let (_, inv3) = the_invite(&t);
    assert_eq!(inv3.request_uri, CALAMITY);
    let s = h.call.summary();
    assert_eq!(s.attempts[0].result, AttemptResult::SkippedDead);
    assert_eq!(s.attempts[0].started_at, None);
    assert!(matches!(&s.attempts[1].result, AttemptResult::Unreachable { reason } if reason.contains("OPTIONS")));
}

#[test]
fn ringing_destination_is_not_dropped_by_a_probe() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    h.respond(id, resp(180, Some("r"), None));
    let t = h.ev(Event::DestinationDown { destination: PRIMARY.into() });
    assert!(sends(&t).is_empty());
}

#[test]
fn route_exhausted_gives_clear_final_status() {
    let route = vec![bridge("primary", PRIMARY, None), bridge("overflow", OVERFLOW, None)];
    let (mut h, first) = H::start(route, invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    let t = h.respond(id, resp(600, None, None));
    let (id2, _) = the_invite(&t);
    let t = h.respond(id2, resp(486, None, None));
    assert_eq!(statuses(&t, Leg::A), vec![486]);
    let s = summary(&t).unwrap();
    assert_eq!((s.outcome.clone(), s.final_status), (Outcome::Busy, Some(486)));
    assert_eq!(responses(&t, Leg::A)[0].1.to_tag.as_deref(), Some(A_TAG));

    let (mut h, first) = H::start(vec![bridge("primary", PRIMARY, Some(5))], invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    h.respond(id, resp(180, Some("q"), None));
    let c = h.fire(TimerId::NoAnswer(1));
    assert_eq!(sends_of(&c, Method::Cancel).len(), 1);
    let t = h.respond(id, resp(487, Some("q"), None));
    assert_eq!(statuses(&t, Leg::A), vec![480]);
    assert_eq!(summary(&t).unwrap().outcome, Outcome::NoAnswer);
}

#[test]
fn same_destination_twice_in_a_route_is_not_looped() {
    let route = vec![bridge("primary", PRIMARY, None), bridge("overflow", PRIMARY, None), redirect(GENERAL)];
    let (mut h, first) = H::start(route, invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    let t = h.respond(id, resp(486, None, None));
    assert!(sends_of(&t, Method::Invite).is_empty());
    assert_eq!(statuses(&t, Leg::A), vec![302]);
    assert_eq!(summary(&t).unwrap().attempts[1].result, AttemptResult::SkippedDuplicate);
}

#[test]
fn caller_cancel_while_ringing_and_cancel_racing_200() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, inv) = the_invite(&first);
    h.respond(id, resp(180, Some("r1"), None));
    let mut cancel = invite_a(None);
    cancel.method = Method::Cancel;
    let t = h.ev(Event::Request { txn: ServerTxn(2), request: cancel });
    let r = responses(&t, Leg::A);
    assert_eq!(r.iter().map(|(txn, r)| (*txn, r.status)).collect::<Vec<_>>(), vec![(ServerTxn(2), 200), (ServerTxn(1), 487)]);
    assert_eq!(sends_of(&t, Method::Cancel).len(), 1);
    let s = summary(&t).unwrap();
    assert_eq!(s.outcome, Outcome::CallerHungUpWhileRinging);
    assert_eq!(s.attempts[0].result, AttemptResult::CallerHungUp);
    // The agent picks up just as the CANCEL travels: ACK + BYE on the B-leg, nothing to A.
    let t = h.respond(id, resp(200, Some("r1"), Some(B_SDP)));
    let s = sends(&t);
    assert_eq!(s.iter().map(|x| (x.1, x.3.method.clone())).collect::<Vec<_>>(), vec![(Leg::B, Method::Ack), (Leg::B, Method::Bye)]);
    assert_eq!(s[1].3.cseq, 2);
    assert_eq!(s[1].3.call_id, inv.call_id);
    assert!(statuses(&t, Leg::A).is_empty());
    // Retransmitted 2xx: ACK again, no second BYE.
    let t = h.respond(id, resp(200, Some("r1"), Some(B_SDP)));
    assert_eq!(sends(&t).iter().map(|x| x.3.method.clone()).collect::<Vec<_>>(), vec![Method::Ack]);
    h.run_out();
    assert!(h.call.is_finished());
    assert_eq!(h.finished, 1);
}

#[test]
fn cancel_before_any_provisional_waits_to_cancel() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    let mut cancel = invite_a(None);
    cancel.method = Method::Cancel;
    let t = h.ev(Event::Request { txn: ServerTxn(2), request: cancel });
    assert!(sends_of(&t, Method::Cancel).is_empty(), "RFC 3261 9.1: no CANCEL before a provisional");
    let t = h.respond(id, resp(100, None, None));
    assert_eq!(sends_of(&t, Method::Cancel).len(), 1);
}

#[test]
fn forked_early_dialogs_then_second_fork_answers() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    let e1 = h.respond(id, resp(183, Some("f1"), Some(B_SDP)));
    let e2 = h.respond(id, resp(180, Some("f2"), Some(B2_SDP)));
    let r1 = &responses(&e1, Leg::A)[0].1;
    let r2 = &responses(&e2, Leg::A)[0].1;
    // The caller sees one dialog: our tag on every provisional response.
    assert_eq!((r1.status, r1.to_tag.as_deref()), (183, Some(A_TAG)));
    assert_eq!((r2.status, r2.to_tag.as_deref()), (180, Some(A_TAG)));
    // Early media follows the latest fork through the relay.
    assert!(e1.contains(&Action::Media(MediaAction::Connect { side: Leg::B, remote: "203.0.113.20:40000".parse().unwrap() })));
    assert!(e2.contains(&Action::Media(MediaAction::Connect { side: Leg::B, remote: "203.0.113.30:42000".parse().unwrap() })));
    let v1 = body_text(&r1.body);
    let v2 = body_text(&r2.body);
    assert!(v1.contains("o=veertien ") && v2.contains("m=audio 20000 "));
    assert_ne!(v1.lines().nth(1), v2.lines().nth(1), "changed SDP gets a new origin version");
    let ans = h.respond(id, resp(200, Some("f2"), Some(B2_SDP)));
    assert_eq!(statuses(&ans, Leg::A), vec![200]);
    // Fork 1 answers too: ACK and BYE it, keep the call with fork 2.
    let extra = h.respond(id, resp(200, Some("f1"), Some(B_SDP)));
    let s = sends(&extra);
    assert_eq!(s.iter().map(|x| (x.3.method.clone(), x.3.to.tag.clone())).collect::<Vec<_>>(), vec![
        (Method::Ack, Some("f1".into())),
        (Method::Bye, Some("f1".into()))
    ]);
    assert!(statuses(&extra, Leg::A).is_empty());
}

#[test]
fn reinvite_forwarded_end_to_end_with_glare_and_cseq_rules() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, inv) = the_invite(&first);
    answer(&mut h, id);
    h.ev(Event::Ack { request: a_req(Method::Ack, 10, None) });

    // Caller puts the call on hold.
    let hold = A_SDP.replace("a=sendrecv", "a=sendonly");
    let t = h.ev(Event::Request { txn: ServerTxn(20), request: a_req(Method::Invite, 11, Some(&hold)) });
    let fwd = sends_of(&t, Method::Invite);
    assert_eq!(fwd.len(), 1);
    let (fid, leg, _, req) = &fwd[0];
    assert_eq!((*leg, req.cseq, req.to.tag.as_deref()), (Leg::B, 2, Some("t1")));
    let body = body_text(&req.body);
    assert!(body.contains("a=sendonly") && body.contains("m=audio 20002 "), "{body}");
    assert!(body.contains("o=veertien ") && body.contains(" 2 IN IP4"), "version bumped for the changed offer: {body}");

    // Glare: the municipality sends its own re-INVITE meanwhile → 491.
    let t = h.ev(Event::Request { txn: ServerTxn(21), request: b_req(Method::Invite, &inv, "t1", 1, Some(B_SDP)) });
    assert_eq!(statuses(&t, Leg::B), vec![491]);

    let answer_hold = B_SDP.replace("a=sendrecv", "a=recvonly");
    let t = h.respond(*fid, resp(200, Some("t1"), Some(&answer_hold)));
    let ack = sends_of(&t, Method::Ack);
    assert_eq!((ack.len(), ack[0].3.cseq), (1, 2));
    let r = responses(&t, Leg::A);
    assert_eq!((r[0].0, r[0].1.status), (ServerTxn(20), 200));
    assert!(body_text(&r[0].1.body).contains("a=recvonly"));
    // Our 2xx to the re-INVITE is retransmitted until the caller's ACK.
    assert!(h.has_timer(TimerId::Retransmit2xx(Leg::A)));
    h.ev(Event::Ack { request: a_req(Method::Ack, 11, None) });
    assert!(!h.has_timer(TimerId::Retransmit2xx(Leg::A)));

    // A request with an old CSeq is out of order.
    let t = h.ev(Event::Request { txn: ServerTxn(22), request: a_req(Method::Info, 11, None) });
    assert_eq!(responses(&t, Leg::A)[0].1.status, 500);

    // Session refresh without SDP is answered locally with the SDP the caller last got.
    let t = h.ev(Event::Request { txn: ServerTxn(23), request: a_req(Method::Invite, 12, None) });
    assert!(sends(&t).is_empty());
    let r = &responses(&t, Leg::A)[0].1;
    assert_eq!(r.status, 200);
    assert!(body_text(&r.body).contains("a=recvonly"));

    // The municipality's 491 to a forwarded offer is relayed.
    h.ev(Event::Ack { request: a_req(Method::Ack, 12, None) });
    let t = h.ev(Event::Request { txn: ServerTxn(24), request: a_req(Method::Update, 13, Some(A_SDP)) });
    let (uid, _, _, up) = sends_of(&t, Method::Update)[0].clone();
    assert_eq!(up.cseq, 3);
    let t = h.respond(uid, resp(491, Some("t1"), None));
    assert_eq!(responses(&t, Leg::A)[0], (ServerTxn(24), OutResponse::new(491, "Whatever")));
}

#[test]
fn info_is_relayed_both_ways() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, inv) = the_invite(&first);
    answer(&mut h, id);
    h.ev(Event::Ack { request: a_req(Method::Ack, 10, None) });
    let mut info = b_req(Method::Info, &inv, "t1", 5, None);
    info.body = Some(Body { content_type: "application/dtmf-relay".into(), data: "Signal=5\r\nDuration=160\r\n".into() });
    let t = h.ev(Event::Request { txn: ServerTxn(30), request: info });
    let s = sends_of(&t, Method::Info);
    assert_eq!((s[0].1, s[0].3.call_id.as_str(), s[0].3.cseq), (Leg::A, A_CALL_ID, 1));
    assert_eq!(s[0].3.body.as_ref().unwrap().content_type, "application/dtmf-relay");
    let t = h.respond(s[0].0, resp(200, Some("ctag"), None));
    assert_eq!(responses(&t, Leg::B)[0].0, ServerTxn(30));
}

/// RFC 6086: the caller's DTMF INFO while the destination rings is fine (200), and absorbed:
/// nothing goes to the ringing destination, and the call still connects afterwards.
#[test]
fn info_while_the_destination_rings_is_answered_200_and_absorbed() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    h.respond(id, resp(180, Some("t1"), None));
    let mut info = a_req(Method::Info, 11, None);
    info.body = Some(Body { content_type: "application/dtmf-relay".into(), data: "Signal=5\r\nDuration=160\r\n".into() });
    let t = h.ev(Event::Request { txn: ServerTxn(40), request: info });
    assert_eq!(responses(&t, Leg::A), vec![(ServerTxn(40), OutResponse::new(200, "OK"))]);
    assert!(sends(&t).is_empty(), "not relayed into the early dialog: {t:?}");
    let t = h.respond(id, resp(200, Some("t1"), Some(B_SDP)));
    assert_eq!(statuses(&t, Leg::A), vec![200]);
}

#[test]
fn callee_bye_before_callers_ack_waits_for_the_ack() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, inv) = the_invite(&first);
    answer(&mut h, id);
    let t = h.ev(Event::Request { txn: ServerTxn(40), request: b_req(Method::Bye, &inv, "t1", 2, None) });
    assert_eq!(statuses(&t, Leg::B), vec![200]);
    assert!(sends_of(&t, Method::Bye).is_empty(), "RFC 3261: no BYE before the ACK of our 2xx");
    let t = h.ev(Event::Ack { request: a_req(Method::Ack, 10, None) });
    let bye = sends_of(&t, Method::Bye);
    assert_eq!(bye[0].1, Leg::A);
    let t = h.respond(bye[0].0, resp(200, Some("ctag"), None));
    assert_eq!(summary(&t).unwrap().ended_by, Some(Party::Callee));
}

#[test]
fn missing_ack_tears_the_call_down() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    answer(&mut h, id);
    let mut retransmits = 0;
    while h.has_timer(TimerId::Retransmit2xx(Leg::A))
        && h.timers[&TimerId::Retransmit2xx(Leg::A)] < h.timers[&TimerId::AckWait(Leg::A)]
    {
        h.fire(TimerId::Retransmit2xx(Leg::A));
        retransmits += 1;
    }
    // T1=500ms doubling to T2=4s within 64*T1=32s: 0.5,1,2,4,4,4,4,4,4,4 → 10 sends.
    assert_eq!(retransmits, 10);
    let t = h.fire(TimerId::AckWait(Leg::A));
    let byes = sends_of(&t, Method::Bye);
    let mut legs: Vec<_> = byes.iter().map(|b| b.1).collect();
    legs.sort();
    assert_eq!(legs, vec![Leg::A, Leg::B], "both legs hung up");
    h.run_out();
    let s = h.call.summary();
    assert_eq!(s.ended_by, Some(Party::Platform));
    assert!(h.call.is_finished());
}

#[test]
fn bad_offer_is_rejected_with_488_naming_the_fault() {
    let (h, first) = H::start(full_route(), invite_a(Some("v=0\r\no=x 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=video 5 RTP/AVP 31\r\nc=IN IP4 1.2.3.4\r\n")));
    assert_eq!(statuses(&first, Leg::A), vec![100, 488]);
    let s = summary(&first).unwrap();
    assert_eq!(s.outcome, Outcome::Rejected { status: 488, reason: "SDP offers no audio stream".into() });
    assert!(sends(&first).is_empty());
    assert!(h.call.is_finished());
}

#[test]
fn late_offer_carries_the_callers_answer_in_the_b_leg_ack() {
    let (mut h, first) = H::start(full_route(), invite_a(None));
    let (id, inv) = the_invite(&first);
    assert!(inv.body.is_none());
    let t = h.respond(id, resp(200, Some("t1"), Some(B_SDP)));
    assert!(sends_of(&t, Method::Ack).is_empty(), "ACK waits for the caller's answer");
    let offer = body_text(&responses(&t, Leg::A)[0].1.body);
    assert!(offer.contains("m=audio 20000 "));
    let t = h.ev(Event::Ack { request: a_req(Method::Ack, 10, Some(A_SDP)) });
    let ack = &sends_of(&t, Method::Ack)[0].3;
    assert!(body_text(&ack.body).contains("m=audio 20002 RTP/AVP 8 0 101"));
    assert!(t.contains(&Action::Media(MediaAction::Connect { side: Leg::A, remote: "198.51.100.7:30000".parse().unwrap() })));
}

#[test]
fn setup_timeout_gives_up_on_bridging_and_uses_the_fallback() {
    let mut cfg = config();
    cfg.setup_timeout = std::time::Duration::from_secs(25);
    let (mut h, first) = H::start_with(cfg, full_route(), invite_a(Some(A_SDP)), BTreeSet::new());
    let (id, _) = the_invite(&first);
    h.respond(id, resp(180, Some("r"), None));
    let t = h.fire(TimerId::Setup);
    assert_eq!(sends_of(&t, Method::Cancel).len(), 1);
    let t = h.respond(id, resp(487, Some("r"), None));
    assert!(sends_of(&t, Method::Invite).is_empty(), "no more bridge attempts after the setup limit");
    assert!(t.iter().any(|a| matches!(a, Action::HandOff(_))));
    let s = summary(&t).unwrap();
    assert_eq!(
        s.attempts.iter().map(|a| a.result.as_str()).collect::<Vec<_>>(),
        vec!["setup_timeout", "setup_timeout", "setup_timeout"]
    );
}

#[test]
fn max_forwards_zero_is_a_loop() {
    let mut inv = invite_a(Some(A_SDP));
    inv.max_forwards = Some(0);
    let (_, first) = H::start(full_route(), inv);
    assert_eq!(statuses(&first, Leg::A), vec![100, 483]);
}

#[test]
fn unknown_dialog_and_methods_get_proper_errors() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    answer(&mut h, id);
    h.ev(Event::Ack { request: a_req(Method::Ack, 10, None) });
    let mut forged = a_req(Method::Bye, 50, None);
    forged.to.tag = Some("not-ours".into());
    let t = h.ev(Event::Request { txn: ServerTxn(60), request: forged });
    assert_eq!(statuses(&t, Leg::A), vec![481]);
    let t = h.ev(Event::Request { txn: ServerTxn(61), request: a_req(Method::Other("REFER".into()), 51, None) });
    let r = &responses(&t, Leg::A)[0].1;
    assert_eq!(r.status, 501);
    assert!(r.header("Allow").is_some());
    let t = h.ev(Event::Request { txn: ServerTxn(62), request: a_req(Method::Options, 52, None) });
    assert_eq!(responses(&t, Leg::A)[0].1.header("Allow"), Some("INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"));
}

#[test]
fn strict_trunk_router_is_honoured() {
    let mut cfg = config();
    cfg.trunk_route = vec!["<sip:old-trunk.example.net>".into()];
    let (_, first) = H::start_with(cfg, full_route(), invite_a(Some(A_SDP)), BTreeSet::new());
    let (_, inv) = the_invite(&first);
    assert_eq!(inv.request_uri, "sip:old-trunk.example.net");
    assert_eq!(inv.route, vec![format!("<{PRIMARY}>")]);
}

#[test]
fn callee_reinvite_goes_to_the_caller_and_our_2xx_waits_for_the_callee_ack() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, inv) = the_invite(&first);
    answer(&mut h, id);
    h.ev(Event::Ack { request: a_req(Method::Ack, 10, None) });
    // The agent's phone moves media (new address) with a re-INVITE on the B dialog.
    let moved = B_SDP.replace("203.0.113.20", "203.0.113.99");
    let t = h.ev(Event::Request { txn: ServerTxn(70), request: b_req(Method::Invite, &inv, "t1", 2, Some(&moved)) });
    assert!(t.contains(&Action::Media(MediaAction::Connect { side: Leg::B, remote: "203.0.113.99:40000".parse().unwrap() })));
    let fwd = sends_of(&t, Method::Invite);
    let (fid, leg, _, req) = fwd[0].clone();
    assert_eq!(leg, Leg::A);
    // First request we send on the A dialog; it targets the caller's Contact via its route set.
    assert_eq!((req.cseq, req.call_id.as_str()), (1, A_CALL_ID));
    assert_eq!((req.from.tag.as_deref(), req.to.tag.as_deref()), (Some(A_TAG), Some("ctag")));
    assert_eq!(req.request_uri, "sip:+31612345678@198.51.100.7:5060");
    assert!(body_text(&req.body).contains("m=audio 20000 "), "caller still sends to the relay");
    let t = h.respond(fid, resp(200, Some("ctag"), Some(A_SDP)));
    let ack = sends_of(&t, Method::Ack);
    assert_eq!((ack[0].1, ack[0].3.cseq), (Leg::A, 1));
    let r = responses(&t, Leg::B);
    assert_eq!((r[0].0, r[0].1.status), (ServerTxn(70), 200));
    assert!(body_text(&r[0].1.body).contains("m=audio 20002 "));
    assert!(h.has_timer(TimerId::Retransmit2xx(Leg::B)));
    h.ev(Event::Ack { request: b_req(Method::Ack, &inv, "t1", 2, None) });
    assert!(!h.has_timer(TimerId::Retransmit2xx(Leg::B)) && !h.has_timer(TimerId::AckWait(Leg::B)));
    // A later BYE from the caller uses the next CSeq on the B dialog (ours: INVITE=1).
    let t = h.ev(Event::Request { txn: ServerTxn(71), request: a_req(Method::Bye, 11, None) });
    assert_eq!(sends_of(&t, Method::Bye)[0].3.cseq, 2);
}

#[test]
fn update_with_offer_is_forwarded_and_answered() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    answer(&mut h, id);
    h.ev(Event::Ack { request: a_req(Method::Ack, 10, None) });
    let t = h.ev(Event::Request { txn: ServerTxn(80), request: a_req(Method::Update, 11, Some(A_SDP)) });
    let (uid, _, _, up) = sends_of(&t, Method::Update)[0].clone();
    assert!(up.body.is_some());
    let t = h.respond(uid, resp(200, Some("t1"), Some(B_SDP)));
    assert!(sends_of(&t, Method::Ack).is_empty(), "UPDATE is not ACKed");
    let r = &responses(&t, Leg::A)[0];
    assert_eq!((r.0, r.1.status), (ServerTxn(80), 200));
    assert!(r.1.body.is_some());
    assert!(!h.has_timer(TimerId::Retransmit2xx(Leg::A)), "non-INVITE 2xx is not retransmitted by us");
}

#[test]
fn info_flood_is_bounded() {
    let (mut h, first) = H::start(full_route(), invite_a(Some(A_SDP)));
    let (id, _) = the_invite(&first);
    answer(&mut h, id);
    h.ev(Event::Ack { request: a_req(Method::Ack, 10, None) });
    let mut forwarded = 0;
    let mut refused = 0;
    for i in 0..40 {
        let t = h.ev(Event::Request { txn: ServerTxn(100 + i), request: a_req(Method::Info, 11 + i as u32, None) });
        forwarded += sends_of(&t, Method::Info).len();
        refused += responses(&t, Leg::A).iter().filter(|(_, r)| r.status == 500 && r.header("Retry-After").is_some()).count();
    }
    assert_eq!((forwarded, refused), (16, 24));
}
