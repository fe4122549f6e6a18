//! Hot-path benchmarks: parse+validate an INVITE, build a 302, and a full server-transaction
//! round INVITE → 302 → ACK. Figures are recorded in docs/PERFORMANCE-sip.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use veertien_sip::transaction::{Action, Config, Peer, Table};
use veertien_sip::{Message, Request, Response, Transport, Uri, validate_request};

include!("support/messages.rs");

fn request(bytes: &[u8]) -> Request {
    match Message::parse(bytes).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn benches(c: &mut Criterion) {
    // Sanity: the benchmark input is accepted, so we measure the success path.
    validate_request(&request(INVITE.as_bytes())).unwrap();
    let target = Uri::parse("sip:+31205551234@gemeente-amsterdam.example.nl;user=phone").unwrap();

    c.bench_function("parse_validate_invite", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(INVITE.as_bytes())).unwrap();
            let Message::Request(r) = m else { unreachable!() };
            validate_request(&r).unwrap();
            black_box(r);
        })
    });

    let inv = request(INVITE.as_bytes());
    c.bench_function("build_302", |b| {
        b.iter(|| {
            let resp = Response::builder(black_box(&inv), 302).to_tag("vt-1").contact(&target).build();
            black_box(resp.to_bytes());
        })
    });

    let peer = Peer { addr: "192.0.2.10:5060".parse().unwrap(), transport: Transport::Udp };
    let mut cfg = Config::with_capacity(1024);
    cfg.trying_delay = None;
    let mut table = Table::new(cfg);
    let mut now = Instant::now();
    c.bench_function("txn_round_invite_302_ack", |b| {
        b.iter(|| {
            // Previous round's Timer I expires; the slot is reused.
            now += Duration::from_secs(6);
            table.on_timer(now);
            while table.poll_action().is_some() {}

            let Message::Request(r) = Message::parse(INVITE.as_bytes()).unwrap() else { unreachable!() };
            validate_request(&r).unwrap();
            let resp = Response::builder(&r, 302).to_tag("vt-1").contact(&target).build();
            table.on_request(r, peer, now);
            let mut tx = None;
            while let Some(a) = table.poll_action() {
                if let Action::Request { tx: t, .. } = a {
                    tx = Some(t);
                }
            }
            table.respond(tx.unwrap(), resp, now).unwrap();
            while let Some(a) = table.poll_action() {
                black_box(a);
            }
            let Message::Request(ack) = Message::parse(ACK.as_bytes()).unwrap() else { unreachable!() };
            table.on_request(ack, peer, now);
            while table.poll_action().is_some() {}
        })
    });
    assert!(table.len() <= 1);
}

criterion_group!(benches_group, benches);
criterion_main!(benches_group);
