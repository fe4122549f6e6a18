//! CPU cost of the call machine per bridged call, without I/O: what the server spends in the
//! B2BUA logic on top of parsing, transactions and sockets.
//!
//! Run: `cargo bench -p veertien-b2bua --bench call`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use veertien_b2bua::*;

const A_SDP: &str = "v=0\r\no=carrier 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
const B_SDP: &str = "v=0\r\no=pbx 5 5 IN IP4 203.0.113.20\r\ns=-\r\nc=IN IP4 203.0.113.20\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

fn invite() -> InRequest {
    InRequest {
        method: Method::Invite,
        request_uri: "sip:14020@192.0.2.1".into(),
        from: NameAddr { display: None, uri: "sip:+31612345678@carrier.example".into(), tag: Some("ctag".into()) },
        to: NameAddr::new("sip:14020@192.0.2.1"),
        call_id: "bench@198.51.100.7".into(),
        cseq: 1,
        contact: Some("sip:+31612345678@198.51.100.7".into()),
        record_route: vec!["<sip:edge.carrier.example;lr>".into()],
        max_forwards: Some(70),
        body: Some(Body::sdp(A_SDP)),
        headers: vec![],
    }
}

fn resp(status: u16, sdp: Option<&'static str>) -> InResponse {
    InResponse {
        status,
        reason: String::new(),
        to_tag: Some("pbx".into()),
        contact: Some("sip:agent@10.9.9.9".into()),
        record_route: vec![],
        body: sdp.map(Body::sdp),
        headers: vec![],
    }
}

fn route() -> Vec<RouteStep> {
    let bridge = |label: &str, d: &str| RouteStep {
        label: label.into(),
        target: StepTarget::Bridge { destination: d.into() },
        no_answer: None,
    };
    vec![bridge("primary", "sip:+31201234567@trunk"), bridge("overflow", "sip:+31207654321@trunk")]
}

fn drain(call: &mut Call) -> Option<RequestId> {
    let mut last = None;
    while let Some(a) = call.poll_action() {
        if let Action::Send { id, kind: SendKind::Transaction, .. } = &a {
            last = Some(*id);
        }
        black_box(a);
    }
    last
}

/// INVITE → 180 → 200 → ACK → caller BYE → 200: one complete answered call.
fn answered_call(cfg: &CallConfig, anchor: MediaAnchor, now: jiff::Timestamp) {
    let mut call = Call::new(cfg.clone(), "0123456789abcdef", anchor, route(), ServerTxn(1), invite(), now, &AllAlive, &AllUdp);
    let inv = drain(&mut call).unwrap();
    call.handle(Event::Response { id: inv, response: resp(180, None) }, now, &AllAlive, &AllUdp);
    drain(&mut call);
    call.handle(Event::Response { id: inv, response: resp(200, Some(B_SDP)) }, now, &AllAlive, &AllUdp);
    drain(&mut call);
    let mut ack = invite();
    ack.method = Method::Ack;
    ack.to.tag = Some("0123456789abcdefa".into());
    ack.body = None;
    call.handle(Event::Ack { request: ack.clone() }, now, &AllAlive, &AllUdp);
    let mut bye = ack;
    bye.method = Method::Bye;
    bye.cseq = 2;
    call.handle(Event::Request { txn: ServerTxn(2), request: bye }, now, &AllAlive, &AllUdp);
    let b_bye = drain(&mut call).unwrap();
    call.handle(Event::Response { id: b_bye, response: resp(200, None) }, now, &AllAlive, &AllUdp);
    drain(&mut call);
    black_box(call.summary());
}

/// Primary busy, overflow answers, callee hangs up.
fn overflow_call(cfg: &CallConfig, anchor: MediaAnchor, now: jiff::Timestamp) {
    let mut call = Call::new(cfg.clone(), "0123456789abcdef", anchor, route(), ServerTxn(1), invite(), now, &AllAlive, &AllUdp);
    let inv = drain(&mut call).unwrap();
    call.handle(Event::Response { id: inv, response: resp(486, None) }, now, &AllAlive, &AllUdp);
    let inv2 = drain(&mut call).unwrap();
    call.handle(Event::Response { id: inv2, response: resp(200, Some(B_SDP)) }, now, &AllAlive, &AllUdp);
    drain(&mut call);
    black_box(call.summary());
}

fn bench(c: &mut Criterion) {
    let cfg = CallConfig::default();
    let anchor = MediaAnchor { a_facing: "127.0.0.1:20000".parse().unwrap(), b_facing: "127.0.0.1:20002".parse().unwrap() };
    let now: jiff::Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
    c.bench_function("answered_call_lifecycle", |b| b.iter(|| answered_call(&cfg, anchor, now)));
    c.bench_function("busy_then_overflow_answer", |b| b.iter(|| overflow_call(&cfg, anchor, now)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
