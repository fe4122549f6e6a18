//! Random event sequences never panic and always settle the caller's leg.

mod support;

use proptest::prelude::*;
use std::collections::BTreeSet;
use support::*;
use veertien_b2bua::*;

#[derive(Debug, Clone)]
enum Op {
    Respond { pick: u8, status: u16, tag: u8, sdp: u8 },
    Fail { pick: u8 },
    Fire { pick: u8 },
    ACancel,
    ARequest { method: u8, cseq_back: bool, sdp: bool },
    AAck { sdp: bool },
    BRequest { invite: u8, tag: u8, method: u8, sdp: bool },
    BAck { invite: u8, tag: u8 },
    Down { dest: u8 },
}

const STATUSES: &[u16] = &[100, 180, 183, 200, 200, 486, 487, 503, 600, 404, 408, 302, 491, 481, 500];
const DESTS: &[&str] = &[PRIMARY, OVERFLOW, CALAMITY];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), prop::sample::select(STATUSES), 0u8..3, 0u8..3)
            .prop_map(|(pick, status, tag, sdp)| Op::Respond { pick, status, tag, sdp }),
        1 => any::<u8>().prop_map(|pick| Op::Fail { pick }),
        3 => any::<u8>().prop_map(|pick| Op::Fire { pick }),
        1 => Just(Op::ACancel),
        2 => (0u8..6, any::<bool>(), any::<bool>()).prop_map(|(method, cseq_back, sdp)| Op::ARequest { method, cseq_back, sdp }),
        2 => any::<bool>().prop_map(|sdp| Op::AAck { sdp }),
        2 => (any::<u8>(), 0u8..3, 0u8..6, any::<bool>()).prop_map(|(invite, tag, method, sdp)| Op::BRequest { invite, tag, method, sdp }),
        1 => (any::<u8>(), 0u8..3).prop_map(|(invite, tag)| Op::BAck { invite, tag }),
        1 => (0u8..3).prop_map(|dest| Op::Down { dest }),
    ]
}

fn step() -> impl Strategy<Value = RouteStep> {
    prop_oneof![
        4 => (0usize..3, prop::option::of(5u64..40)).prop_map(|(d, t)| bridge("step", DESTS[d], t)),
        1 => Just(redirect(GENERAL)),
        1 => Just(announce("gesloten")),
    ]
}

fn method(m: u8) -> Method {
    match m {
        0 => Method::Bye,
        1 => Method::Invite,
        2 => Method::Update,
        3 => Method::Info,
        4 => Method::Options,
        _ => Method::Other("REFER".into()),
    }
}

const TAGS: &[&str] = &["t1", "t2", "t3"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_events_never_panic_and_always_end_the_a_leg(
        route in prop::collection::vec(step(), 0..5),
        offer in 0u8..3,
        dead in prop::collection::btree_set(0usize..3, 0..3),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        let invite = match offer {
            0 => invite_a(Some(A_SDP)),
            1 => invite_a(None),
            _ => invite_a(Some("v=0\r\nm=audio x\r\n")),
        };
        let dead: BTreeSet<String> = dead.into_iter().map(|i| DESTS[i].to_string()).collect();
        let (mut h, _) = H::start_with(config(), route, invite, dead);
        let mut a_cseq = 10u32;
        // (invite id, to-tag) of every 2xx fed for a B-leg INVITE
        let mut b_2xx: Vec<(RequestId, Option<String>)> = vec![];
        for op in ops {
            let b_invites: Vec<(RequestId, OutRequest)> = sends_of(&h.log, Method::Invite)
                .into_iter().filter(|s| s.1 == Leg::B && s.3.cseq == 1).map(|s| (s.0, s.3)).collect();
            match op {
                Op::Respond { pick, status, tag, sdp } => {
                    // The transaction layer passes nothing after a non-2xx final; after a 2xx it
                    // passes retransmissions and other forks' 2xx (RFC 6026).
                    let ids: Vec<RequestId> = h.outstanding.keys().copied()
                        .chain(b_invites.iter().map(|b| b.0).filter(|id| !h.gone.contains(id)))
                        .collect::<BTreeSet<_>>().into_iter().collect();
                    if ids.is_empty() { continue; }
                    let id = ids[pick as usize % ids.len()];
                    let body = [Some(B_SDP), Some(B2_SDP), None][sdp as usize];
                    let tag = (status != 100).then(|| TAGS[tag as usize]);
                    if (200..300).contains(&status) && b_invites.iter().any(|b| b.0 == id) {
                        b_2xx.push((id, tag.map(Into::into)));
                    }
                    h.respond(id, resp(status, tag, body));
                }
                Op::Fail { pick } => {
                    let ids: Vec<RequestId> = h.outstanding.keys().copied().collect();
                    if ids.is_empty() { continue; }
                    let id = ids[pick as usize % ids.len()];
                    h.ev(Event::RequestFailed { id, reason: "timeout".into() });
                }
                Op::Fire { pick } => {
                    let ts: Vec<TimerId> = h.timers.keys().copied().collect();
                    if ts.is_empty() { continue; }
                    h.fire(ts[pick as usize % ts.len()]);
                }
                Op::ACancel => {
                    let mut c = invite_a(None);
                    c.method = Method::Cancel;
                    h.ev(Event::Request { txn: ServerTxn(1000 + a_cseq as u64), request: c });
                }
                Op::ARequest { method: m, cseq_back, sdp } => {
                    if !cseq_back { a_cseq += 1; }
                    let req = a_req(method(m), a_cseq, sdp.then_some(A_SDP));
                    h.ev(Event::Request { txn: ServerTxn(2000 + a_cseq as u64), request: req });
                }
                Op::AAck { sdp } => {
                    let req = a_req(Method::Ack, a_cseq, sdp.then_some(A_SDP));
                    h.ev(Event::Ack { request: req });
                }
                Op::BRequest { invite, tag, method: m, sdp } => {
                    if b_invites.is_empty() { continue; }
                    let inv = &b_invites[invite as usize % b_invites.len()].1;
                    let req = b_req(method(m), inv, TAGS[tag as usize], 100 + h.log.len() as u32, sdp.then_some(B_SDP));
                    h.ev(Event::Request { txn: ServerTxn(5000 + h.log.len() as u64), request: req });
                }
                Op::BAck { invite, tag } => {
                    if b_invites.is_empty() { continue; }
                    let inv = &b_invites[invite as usize % b_invites.len()].1;
                    let req = b_req(Method::Ack, inv, TAGS[tag as usize], 1, None);
                    h.ev(Event::Ack { request: req });
                }
                Op::Down { dest } => {
                    h.dead.insert(DESTS[dest as usize].to_string());
                    h.ev(Event::DestinationDown { destination: DESTS[dest as usize].into() });
                }
            }
        }
        h.run_out();

        prop_assert!(h.call.is_finished(), "call not finished");
        prop_assert_eq!(h.finished, 1, "Finished exactly once");
        let releases = h.log.iter().filter(|a| **a == Action::Media(MediaAction::Release)).count();
        prop_assert_eq!(releases, 1);

        // The caller's INVITE ends in exactly one way: one final status (2xx may repeat as
        // retransmissions) or a hand-off to the announcement.
        let finals: BTreeSet<u16> = responses(&h.log, Leg::A).iter()
            .filter(|(txn, r)| *txn == ServerTxn(1) && r.status >= 200).map(|(_, r)| r.status).collect();
        let handoffs = h.log.iter().filter(|a| matches!(a, Action::HandOff(_))).count();
        prop_assert_eq!(finals.len() + handoffs, 1, "finals {:?} handoffs {}", finals, handoffs);
        let s = h.call.summary().clone();
        prop_assert_eq!(s.answered_at.is_some(), s.outcome == Outcome::Answered);
        if finals.contains(&200) {
            prop_assert_eq!(&s.outcome, &Outcome::Answered);
            // An answered call is hung up on both legs unless that leg hung up itself.
            prop_assert!(s.ended_by.is_some());
        }
        if handoffs == 1 {
            prop_assert_eq!(&s.outcome, &Outcome::Announcement);
        }

        // Every 2xx to a B-leg INVITE was ACKed (RFC 3261 13.2.2.4), whatever state we were in.
        let acks: Vec<OutRequest> = sends_of(&h.log, Method::Ack).into_iter().map(|s| s.3).collect();
        for (id, tag) in &b_2xx {
            let inv = sends(&h.log).into_iter().find(|s| s.0 == *id).unwrap().3;
            prop_assert!(acks.iter().any(|a| a.call_id == inv.call_id && a.to.tag == *tag),
                "2xx from {:?} on {} never ACKed", tag, inv.call_id);
        }
        // The walk never loops: each destination gets at most one INVITE.
        let dests: Vec<String> = sends_of(&h.log, Method::Invite).into_iter()
            .filter(|s| s.1 == Leg::B && s.3.cseq == 1).map(|s| s.3.to.uri).collect();
        let unique: BTreeSet<&String> = dests.iter().collect();
        prop_assert_eq!(unique.len(), dests.len());
    }
}
